"""The ticket explorer: step through iterative magnitude pruning, round by round.

Lottery tickets (Frankle & Carbin 2019): where each round of ``pk.lottery.imp``
sits on the accuracy and early-stopping curves, and the first layer's mask in
that round.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch

from .._checks import InvalidParameterError, check_choice, type_name
from .base import ACCENT, FONT, KEPT, Explorer, mask_picture, percent, style_axes

__all__ = ["TicketExplorer", "ticket_explorer", "TICKET_FIELDS"]

TICKET_FIELDS = ("round", "remaining", "accuracy", "early_stop_iteration", "masks")


def _field(record, name: str):
    if isinstance(record, dict):
        return record[name]
    return getattr(record, name)


def _optional_float(value) -> float:
    return math.nan if value is None else float(value)


def _check_rounds(rounds) -> list:
    if isinstance(rounds, (str, bytes, dict)) or not hasattr(rounds, "__iter__"):
        raise InvalidParameterError("rounds must be a list of TicketRound (from pk.lottery.imp), "
                                    f"got {type_name(rounds)}")
    rounds = list(rounds)
    if not rounds:
        raise InvalidParameterError("rounds is empty: pass the list pk.lottery.imp returns")
    for i, r in enumerate(rounds):
        missing = [f for f in TICKET_FIELDS if not (
            f in r if isinstance(r, dict) else hasattr(r, f))]
        if missing:
            raise InvalidParameterError(f"rounds[{i}] lacks {missing}; each round needs the "
                                        f"fields {TICKET_FIELDS} (as pk.lottery.TicketRound has)")
        if not isinstance(_field(r, "masks"), dict):
            raise InvalidParameterError(f"rounds[{i}].masks must be a dict {{layer name: mask}}, "
                                        f"got {type_name(_field(r, 'masks'))}")
    return rounds


class TicketExplorer(Explorer):
    """Step through iterative magnitude pruning, round by round (lottery tickets).

    ``pk.widgets.ticket_explorer(rounds)`` is this class.

    Shows, for the selected round, where it sits on the accuracy and
    early-stopping curves against the weights remaining (log axis, as in
    Frankle & Carbin 2019), and the first layer's mask in that round. A play
    button steps through the rounds by itself.

    Args:
        rounds: what ``pk.lottery.imp`` returns: a list of records with the
            fields ``round``, ``remaining`` (fraction left, 1.0 = dense),
            ``accuracy``, ``early_stop_iteration`` and ``masks`` (``{layer
            name: 0/1 mask}``, may be empty for the dense round); objects or dicts.
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``.

    Its controls are ``ex.round_slider`` (index into ``rounds``) and
    ``ex.play``; ``ex.update(round=...)`` drives it.

    Example:
        >>> import torch
        >>> masks = {"fc1": (torch.arange(16).reshape(2, 8) % 3 > 0).float()}
        >>> rounds = [{"round": 0, "remaining": 1.0, "accuracy": 0.95,
        ...            "early_stop_iteration": 900, "masks": {}},
        ...           {"round": 1, "remaining": 0.7, "accuracy": 0.96,
        ...            "early_stop_iteration": 700, "masks": masks}]
        >>> ex = ticket_explorer(rounds, backend="image")
        >>> ex.update(round=1)["accuracy"], ex.round_slider.value
        (0.96, 1)
    """

    figsize = (13, 4.6)

    def __init__(self, rounds, *, backend: str = "auto"):
        rounds = _check_rounds(rounds)
        remaining = [float(_field(r, "remaining")) for r in rounds]
        # remaining is a fraction (1.0 = dense); a list in percent (100 = dense) is accepted too
        unit = 100.0 if max(remaining) > 1 else 1.0
        self.remaining = [100 * v / unit for v in remaining]
        if not all(0 < v <= 100 for v in self.remaining):
            raise InvalidParameterError("remaining must be the fraction of weights left, in "
                                        f"(0, 1], got {remaining}")
        super().__init__(backend)
        self.rounds = rounds
        self.accuracy = [_optional_float(_field(r, "accuracy")) for r in rounds]
        self.early_stop = [_optional_float(_field(r, "early_stop_iteration")) for r in rounds]
        self.round_numbers = [int(_field(r, "round")) for r in rounds]
        names = [n for r in rounds for n in _field(r, "masks")]
        self.layer = names[0] if names else None
        self._shape = next((tuple(_field(r, "masks")[self.layer].shape) for r in rounds
                            if self.layer in _field(r, "masks")), None)

        self.round_slider = widgets.IntSlider(value=0, min=0, max=len(rounds) - 1,
                                              description="round", continuous_update=True,
                                              layout=widgets.Layout(width="420px"))
        self.round_slider.add_class("pk-round-slider")
        self.play = widgets.Play(value=0, min=0, max=len(rounds) - 1, interval=1200,
                                 description="play the rounds")
        widgets.jslink((self.play, "value"), (self.round_slider, "value"))
        self._build_figure()
        self._start([self.play, self.round_slider], {"index": 0})

    def _picture(self, index: int) -> tuple[np.ndarray, str]:
        masks = _field(self.rounds[index], "masks")
        mask = masks.get(self.layer)
        keep = torch.ones(self._shape) if mask is None else torch.as_tensor(mask) != 0
        return mask_picture(keep)

    def _build_figure(self) -> None:
        fig, live = self.figure, self.live_figure
        grid = fig.add_gridspec(1, 3, left=0.06, right=0.97, top=0.88, bottom=0.16, wspace=0.35)
        ax_acc, ax_stop, ax_mask = (fig.add_subplot(grid[0, i]) for i in range(3))
        low = min(self.remaining)
        ticks = (sorted(set(round(v, 1) for v in self.remaining)) if len(self.remaining) <= 7
                 else [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if t >= low * 0.8])
        self._markers = []
        for ax, values, title, ylabel in (
                (ax_acc, [100 * a for a in self.accuracy], "test accuracy", "accuracy %"),
                (ax_stop, self.early_stop, "early-stop iteration", "iteration")):
            ax.plot(self.remaining, values, "o-", color=KEPT, lw=2, ms=6)
            (marker,) = ax.plot([], [], "o", ms=15, mfc="none", mec=ACCENT, mew=3)
            self._markers.append(live.animate(marker))
            ax.set_xscale("log")
            ax.set_xlim(110, low * 0.8)
            ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
            ax.minorticks_off()
            finite = [v for v in values if math.isfinite(v)]
            if finite and ax is ax_acc:     # zoom in: the differences are a few points
                ax.set_ylim(max(0, min(finite) - 5), min(100, max(finite) + 3))
            elif finite:
                ax.set_ylim(min(0, min(finite)), max(finite) * 1.12 if max(finite) > 0 else 1)
            style_axes(ax, title, "weights remaining %", ylabel)
        self._values = ([100 * a for a in self.accuracy], self.early_stop)
        if self.layer is not None:
            picture, what = self._picture(0)
            self._mask_image = live.animate(ax_mask.imshow(
                picture, vmin=0, vmax=1, cmap="viridis", interpolation="nearest",
                aspect="equal" if picture.shape[0] == picture.shape[1] else "auto"))
            bar = fig.colorbar(self._mask_image, ax=ax_mask, fraction=0.05, pad=0.03)
            bar.ax.tick_params(labelsize=FONT["tick"])
            ax_mask.set_title(f"{self.layer}: {what}", fontsize=FONT["title"] - 1)
        else:
            self._mask_image = None
            ax_mask.text(0.5, 0.5, "no masks", ha="center", fontsize=FONT["title"])
        ax_mask.set_xticks([])
        ax_mask.set_yticks([])

    def _compute(self, index: int) -> dict:
        for marker, values in zip(self._markers, self._values):
            marker.set_data([self.remaining[index]], [values[index]])
        if self._mask_image is not None:
            self._mask_image.set_data(self._picture(index)[0])
        stop = self.early_stop[index]
        return {"round": self.round_numbers[index], "remaining": self.remaining[index] / 100,
                "accuracy": self.accuracy[index],
                "early_stop_iteration": int(stop) if math.isfinite(stop) else None}

    def _readout(self, r: dict) -> str:
        stop = "—" if r["early_stop_iteration"] is None else f"{r['early_stop_iteration']:,}"
        return (f"round <b>{r['round']}</b> &nbsp;·&nbsp; {percent(r['remaining'])} of weights "
                f"left &nbsp;·&nbsp; accuracy <b class='pk-accuracy'>{percent(r['accuracy'])}"
                f"</b> &nbsp;·&nbsp; early stop at iteration {stop}")

    def _settings_from_controls(self) -> dict:
        return {"index": self.round_slider.value}

    def _show_settings(self, settings: dict) -> None:
        self.round_slider.value = settings["index"]

    def update(self, round: int | None = None) -> dict:  # noqa: A002 (the field's name)
        """Show one round; ``round`` is a round number present in ``rounds``.

        Returns:
            ``{"round", "remaining", "accuracy", "early_stop_iteration", "ms"}``
            (``remaining`` as a fraction).

        Example:
            >>> rounds = [{"round": k, "remaining": 0.5 ** k, "accuracy": 0.9 + k / 100,
            ...            "early_stop_iteration": 1000 - 100 * k, "masks": {}} for k in range(4)]
            >>> r = ticket_explorer(rounds).update(round=2)
            >>> r["remaining"], r["early_stop_iteration"]
            (0.25, 800)
        """
        if round is None:
            index = self._last_settings["index"]
        else:
            index = self.round_numbers.index(check_choice("round", round, self.round_numbers))
        return self._update({"index": index})


ticket_explorer = TicketExplorer   # the documented entry point is the class itself
