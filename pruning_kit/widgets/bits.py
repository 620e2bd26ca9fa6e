"""The bits explorer: quantize a trained model's weights to 1-8 bits live.

Per tensor or per output channel, affine or symmetric (``pk.quant``); the
first layer's weights snap to the levels, each layer's relative error and the
accuracy-vs-bits curve follow the controls. At one bit both schemes binarize:
sign times the mean magnitude (XNOR-Net), as ``pk.quant.binary_approximation``
computes it, because a 1-bit affine grid has the levels {0, max - min} (no sign)
and a 1-bit symmetric grid only 0.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_int
from .base import ACCENT, CURVE_COLORS, FONT, KEPT, ModelExplorer, percent, style_axes

__all__ = ["BitsExplorer", "bits_explorer", "GRANULARITIES", "SCHEMES"]

GRANULARITIES = ("per-tensor", "per-channel")
SCHEMES = ("affine", "symmetric")


def _quantized(w: torch.Tensor, bits: int, granularity: str, scheme: str) -> torch.Tensor:
    """``w`` as the network computes with it at ``bits`` bits (``pk.quant`` does the work)."""
    from .. import quant

    dim = 0 if granularity == "per-channel" else None
    if bits == 1:
        return quant.binary_approximation(w, dim=dim)
    return quant.fake_quantize(w, bits, scheme=scheme, dim=dim)


class BitsExplorer(ModelExplorer):
    """A bit-width slider that quantizes a trained model's weights live.

    ``pk.widgets.bits_explorer(model, test)`` is this class.

    The weights of every ``nn.Linear``/``nn.Conv2d`` layer are rounded to
    ``2**bits`` levels (``pk.quant.fake_quantize``, affine or symmetric), per
    tensor or per output channel (``dim=0``); at 1 bit they are binarized to
    sign times the mean magnitude (``pk.quant.binary_approximation``) whichever
    the scheme; biases stay in float32. Shows accuracy, the first layer's histogram before
    and after (the weights pile up on the levels), the relative weight error
    of each layer, and accuracy vs bits, filled in as the controls move.

    Args:
        model: a trained network (never modified: the explorer works on a copy).
        test: evaluation data, a ``TensorData`` or ``(images, labels)``.
        eval_size: accuracy is measured on a fixed, class-stratified batch of
            this many test examples.
        seed: seeds the evaluation subset.
        backend: ``"auto"``, ``"ipympl"`` or ``"image"`` (see :class:`SparsityExplorer`).

    Its controls are ``ex.bits_slider`` (1-8), ``ex.granularity_toggle`` and
    ``ex.scheme_toggle``; ``ex.update(bits=, granularity=, scheme=)`` drives it.

    Example:
        >>> import torch, pruning_kit as pk
        >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
        >>> ex = bits_explorer(model, pk.data.load("digits")[1], backend="image")
        >>> r = ex.update(bits=4, granularity="per-channel")
        >>> r["compression"], 0 < r["error"] < 0.2
        (8.0, True)
    """

    figsize = (13, 4.9)

    def __init__(self, model: nn.Module, test, *, eval_size: int = 1000, seed: int = 0,
                 backend: str = "auto"):
        super().__init__(model, test, eval_size=eval_size, seed=seed, backend=backend)
        self._norms = {name: float(w.double().norm()) for name, w in self._dense.items()}
        self._curve = {}

        self.bits_slider = widgets.IntSlider(
            value=8, min=1, max=8, step=1, description="bits", continuous_update=True,
            layout=widgets.Layout(width="360px"))
        self.bits_slider.add_class("pk-bits-slider")
        self.granularity_toggle = widgets.ToggleButtons(
            options=[("per tensor", "per-tensor"), ("per channel", "per-channel")],
            value="per-tensor", style={"button_width": "auto"},
            tooltips=["one scale for the whole layer", "one scale per output channel"])
        self.granularity_toggle.add_class("pk-granularity")
        self.scheme_toggle = widgets.ToggleButtons(
            options=[("affine", "affine"), ("symmetric", "symmetric")],
            value="affine", style={"button_width": "auto"},
            tooltips=["levels from min to max, with a zero point",
                      "levels symmetric around 0, from -max|w| to max|w|"])
        self.scheme_toggle.add_class("pk-scheme")
        self._build_figure()
        self._start([self.bits_slider, self.granularity_toggle, self.scheme_toggle],
                    {"bits": 8, "granularity": "per-tensor", "scheme": "affine"})

    def _build_figure(self) -> None:
        fig, live = self.figure, self.live_figure
        grid = fig.add_gridspec(1, 3, left=0.06, right=0.98, top=0.89, bottom=0.15, wspace=0.42)
        ax_hist, ax_err, ax_curve = (fig.add_subplot(grid[0, i]) for i in range(3))

        first = self.layer_names[0]
        w = self._dense[first].reshape(-1)
        reach = float(w.abs().max()) * 1.02 or 1.0
        self._hist_range = (-reach, reach)
        self._hist_bins = 200
        edges = np.linspace(-reach, reach, self._hist_bins + 1)
        counts = torch.histc(w, self._hist_bins, -reach, reach).numpy()
        ax_hist.stairs(np.maximum(counts, 0.5), edges, fill=True, color="#cccccc",
                       label="float32", baseline=0.5)
        self._quant_hist = live.animate(ax_hist.stairs(np.maximum(counts, 0.5), edges,
                                                       color=ACCENT, lw=1.5, label="quantized",
                                                       baseline=0.5))
        ax_hist.set_yscale("log")
        ax_hist.set_xlim(-reach, reach)
        ax_hist.set_ylim(0.8, w.numel() * 1.5)
        ax_hist.legend(fontsize=FONT["legend"], loc="upper right", frameon=False)
        style_axes(ax_hist, f"{first} weights snap to levels", "weight value", "count (log)")

        y = np.arange(len(self.layer_names))
        self._err_floor = 1e-4
        self._err_bars = [live.animate(bar) for bar in ax_err.barh(
            y, np.full(len(y), self._err_floor), left=self._err_floor, height=0.6, color=KEPT)]
        self._err_texts = [live.animate(ax_err.text(self._err_floor, i, "", va="center",
                                                    fontsize=FONT["text"]))
                           for i in range(len(y))] if len(y) <= 12 else []
        ax_err.set_xscale("log")
        ax_err.set_xlim(self._err_floor, 3)
        ax_err.set_yticks(y, self.layer_names)
        ax_err.set_ylim(len(y) - 0.5, -0.5)
        style_axes(ax_err, "weight error per layer", "‖w − ŵ‖ / ‖w‖")

        ax_curve.axhline(100 * self.dense_accuracy, color="grey", ls="--", lw=1.5,
                         label=f"float32 {percent(self.dense_accuracy)}")
        self._lines = {}
        for i, (scheme, granularity) in enumerate(
                (s, g) for s in SCHEMES for g in GRANULARITIES):
            (line,) = ax_curve.plot([], [], "o-", ms=5, lw=2, color=CURVE_COLORS[i],
                                    label=f"{scheme}, {granularity}")
            self._lines[scheme, granularity] = live.animate(line)
        (self._current_point,) = ax_curve.plot([], [], "o", ms=14, mfc="none", mec="black", mew=2.5)
        live.animate(self._current_point)
        ax_curve.set_xlim(0.7, 8.3)
        ax_curve.set_xticks(range(1, 9))
        ax_curve.set_ylim(0, 100)
        ax_curve.legend(fontsize=FONT["legend"] - 1, loc="lower right", frameon=False)
        style_axes(ax_curve, "accuracy vs bits", "bits per weight", "accuracy %")

    def _compute(self, bits: int, granularity: str, scheme: str) -> dict:
        errors, total_error, total_norm = {}, 0.0, 0.0
        with torch.no_grad():
            for name, dense in self._dense.items():
                w_hat = _quantized(dense, bits, granularity, scheme)
                self._weights[name].copy_(w_hat)
                error = float((dense - w_hat).double().norm())
                errors[name] = error / self._norms[name] if self._norms[name] else 0.0
                total_error += error ** 2
                total_norm += self._norms[name] ** 2
        accuracy = self._accuracy()
        error = math.sqrt(total_error / total_norm) if total_norm else 0.0

        first = self._weights[self.layer_names[0]].detach().reshape(-1)
        counts = torch.histc(first, self._hist_bins, *self._hist_range).numpy()
        self._quant_hist.set_data(np.maximum(counts, 0.5))
        for i, name in enumerate(self.layer_names):
            shown = min(max(errors[name], self._err_floor), 3)
            self._err_bars[i].set_width(shown - self._err_floor)
            if self._err_texts:
                inside = shown > 0.25
                text = self._err_texts[i]
                text.set_text(f"{100 * errors[name]:.2g}% " if inside
                              else f" {100 * errors[name]:.2g}%")
                text.set_x(shown)
                text.set_horizontalalignment("right" if inside else "left")
                text.set_color("white" if inside else "black")
        points = self._curve.setdefault((scheme, granularity), {})
        points[bits] = 100 * accuracy
        xs = sorted(points)
        self._lines[scheme, granularity].set_data(xs, [points[x] for x in xs])
        self._current_point.set_data([bits], [100 * accuracy])
        return {"bits": bits, "granularity": granularity, "scheme": scheme,
                "accuracy": accuracy, "error": error, "compression": 32 / bits}

    def _readout(self, r: dict) -> str:
        width = "1 bit (sign × mean |w|)" if r["bits"] == 1 else f"{r['bits']} bits"
        return (f"accuracy <b class='pk-accuracy'>{percent(r['accuracy'])}</b> "
                f"<span style='color:#777'>(float32 {percent(self.dense_accuracy)})</span>"
                f" &nbsp;·&nbsp; weight error <b class='pk-error'>{100 * r['error']:.2g}%</b>"
                f" &nbsp;·&nbsp; {width}: weights {r['compression']:.1f}× smaller"
                f" &nbsp;·&nbsp; <span class='pk-ms' style='color:#777'>{r['ms']:.0f} ms</span>")

    def _settings_from_controls(self) -> dict:
        return {"bits": self.bits_slider.value, "granularity": self.granularity_toggle.value,
                "scheme": self.scheme_toggle.value}

    def _show_settings(self, settings: dict) -> None:
        self.bits_slider.value = settings["bits"]
        self.granularity_toggle.value = settings["granularity"]
        self.scheme_toggle.value = settings["scheme"]

    def update(self, bits: int | None = None, *, granularity: str | None = None,
               scheme: str | None = None) -> dict:
        """Quantize the weights, evaluate, redraw; move the controls to match.

        Args:
            bits: bits per weight, an int in [1, 8]; ``None`` keeps the current value.
            granularity: ``"per-tensor"`` (one scale per layer) or ``"per-channel"``
                (one per output channel).
            scheme: ``"affine"`` (levels from min to max, with a zero point) or
                ``"symmetric"`` (levels symmetric around 0). At 1 bit both
                binarize: sign times the mean magnitude (XNOR-Net).

        Returns:
            ``{"bits", "granularity", "scheme", "accuracy", "error",
            "compression", "ms"}``; ``error`` is ``‖w − ŵ‖ / ‖w‖`` over all
            quantized weights, ``compression`` is ``32 / bits``.

        Example:
            >>> import torch, pruning_kit as pk
            >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
            >>> ex = bits_explorer(model, pk.data.load("digits")[1])
            >>> coarse, fine = ex.update(bits=2)["error"], ex.update(bits=6)["error"]
            >>> fine < coarse / 10, ex.bits_slider.value
            (True, 6)
        """
        settings = self._current(bits=bits, granularity=granularity, scheme=scheme)
        settings["bits"] = check_int("bits", settings["bits"], low=1, high=8)
        check_choice("granularity", settings["granularity"], GRANULARITIES)
        check_choice("scheme", settings["scheme"], SCHEMES)
        return self._update(settings)

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The weights as quantized now, ``{layer name: tensor}`` (copies)."""
        return {name: w.detach().clone() for name, w in self._weights.items()}

    def __repr__(self) -> str:
        return (f"BitsExplorer(layers={self.layer_names}, eval_size={len(self._y)}, "
                f"backend={self.live_figure.backend!r})")



bits_explorer = BitsExplorer   # the documented entry point is the class itself
