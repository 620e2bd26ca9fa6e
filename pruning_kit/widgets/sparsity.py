"""The sparsity explorer: prune a trained model from 0 to 99% live, with one of four criteria.

Why a move is fast: the order in which each criterion prunes the weights is
computed once, when the explorer is built (ranks from sorted magnitudes, a
fixed random permutation, SNIP scores); a move then costs one comparison per
weight (``rank >= k``) and one forward pass on the evaluation batch.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from .._checks import InvalidParameterError, check_choice, check_fraction
from ..data import as_dataset
from .base import (CURVE_COLORS, FONT, KEPT, PRUNED, ModelExplorer, mask_picture, percent,
                   short_count, style_axes)

__all__ = ["SparsityExplorer", "sparsity_explorer", "METHODS", "METHOD_LABELS"]

METHODS = ("global", "local", "random", "snip")
METHOD_LABELS = {"global": "magnitude, global", "local": "magnitude, per layer",
                 "random": "random, per layer", "snip": "SNIP, global"}
SNIP_EXAMPLES = 500      # SNIP scores are computed once, on at most this many examples


def _ranks(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Position of every entry in the ascending order of ``scores`` (all tensors as one)."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    order = torch.argsort(flat, stable=True)
    rank = torch.empty(len(flat), dtype=torch.int32)
    rank[order] = torch.arange(len(flat), dtype=torch.int32)
    return [r.reshape(s.shape) for r, s in zip(rank.split([s.numel() for s in scores]), scores)]


def _check_methods(methods) -> tuple:
    if isinstance(methods, str) or not isinstance(methods, (tuple, list)) or not methods:
        raise InvalidParameterError(f"methods must be a non-empty tuple of names from {METHODS}, "
                                    f"got {methods!r}")
    for m in methods:
        check_choice("each method", m, METHODS)
    if len(set(methods)) != len(methods):
        raise InvalidParameterError(f"methods has duplicates: {methods!r}")
    return tuple(methods)


class SparsityExplorer(ModelExplorer):
    """A slider that prunes a trained model live, for lectures.

    ``pk.widgets.sparsity_explorer(model, test)`` is this class.

    Shows accuracy and compression ratio, the weight histogram with the pruned
    part shaded (and, for global magnitude pruning, the threshold band), the
    sparsity of each layer, the first layer's mask (for a Linear layer on
    square images: the fraction of connections each input pixel keeps), and
    the accuracy-vs-sparsity curve of each criterion, filled in as the slider
    moves (a criterion enters the curve's legend with its first point). Sparsity ``s`` prunes exactly ``round(s * n)`` weights of the ``n``
    in scope, as :mod:`pruning_kit.prune` does:

    - ``"global"``: the smallest ``abs(w)`` over all layers at once;
    - ``"local"``: the smallest ``abs(w)`` of each layer, every layer at ``s``;
    - ``"random"``: a fixed random order (seeded), every layer at ``s``;
    - ``"snip"``: the smallest SNIP scores (``pk.prune.snip_scores``) over all
      layers, scored once on up to 500 examples of ``snip_data``.

    Args:
        model: a trained network (never modified: the explorer prunes a copy,
            with any existing masks baked in).
        test: evaluation data, a ``TensorData`` or ``(images, labels)``.
        methods: the criteria offered, a tuple from ``("global", "local",
            "random", "snip")``.
        eval_size: accuracy is measured on a fixed, class-stratified batch of
            this many test examples (all of them when ``test`` is smaller).
        snip_data: data to score SNIP on, e.g. the training set (default: the
            evaluation batch).
        seed: seeds the evaluation subset and the random order.
        backend: ``"ipympl"`` (an ipympl canvas, which receives only the
            pixels that change), ``"image"`` (a PNG in an ``ipywidgets.Image``:
            works wherever ipywidgets does), or ``"auto"``: ipympl when it is
            matplotlib's active backend (``%matplotlib widget``), else image.

    ``display(ex)`` shows it; ``ex.update(sparsity=0.9, method="global")``
    drives it from code; its controls are ``ex.sparsity_slider`` (0-99,
    percent) and ``ex.method_dropdown``.

    Example:
        >>> import torch, pruning_kit as pk
        >>> _, test = pk.data.load("digits")
        >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
        >>> ex = sparsity_explorer(model, test, methods=("global", "local"), backend="image")
        >>> ex.update(sparsity=0.75, method="local")["compression"]
        4.0
        >>> ex.sparsity_slider.value, ex.method_dropdown.value
        (75, 'local')
    """

    figsize = (13, 7.2)

    def __init__(self, model: nn.Module, test, *, methods=METHODS, eval_size: int = 1000,
                 snip_data=None, seed: int = 0, backend: str = "auto"):
        self.methods = _check_methods(methods)
        snip_data = as_dataset(snip_data) if snip_data is not None else None
        super().__init__(model, test, eval_size=eval_size, seed=seed, backend=backend)
        self._sizes = {name: w.numel() for name, w in self._dense.items()}
        self.total = sum(self._sizes.values())

        # What each criterion needs is computed here, once: the rank of every weight in
        # the order the criterion prunes them. Sparsity s then prunes ranks < round(s * n).
        values = list(self._dense.values())
        self._scope, self._rank = {}, {}
        for method in self.methods:
            if method == "global":
                ranks = _ranks([v.abs() for v in values])
            elif method == "local":
                ranks = [_ranks([v.abs()])[0] for v in values]
            elif method == "random":
                gen = torch.Generator().manual_seed(self.seed)
                ranks = [torch.randperm(v.numel(), generator=gen).to(torch.int32).reshape(v.shape)
                         for v in values]
            else:
                from .. import prune

                images, labels = ((snip_data.images, snip_data.labels) if snip_data is not None
                                  else (self._x, self._y))
                n = min(len(labels), SNIP_EXAMPLES)
                scores = prune.snip_scores(self._model, images[:n], labels[:n])
                ranks = _ranks([scores[name] for name in self.layer_names])
            self._scope[method] = "local" if method in ("local", "random") else "global"
            self._rank[method] = dict(zip(self.layer_names, ranks))
        flat = torch.cat([v.reshape(-1) for v in values])
        self._sorted_abs = flat.abs().sort().values
        self._curve = {m: {} for m in self.methods}

        self.sparsity_slider = widgets.IntSlider(
            value=0, min=0, max=99, step=1, description="pruned %", continuous_update=True,
            style={"description_width": "initial"}, layout=widgets.Layout(width="520px"))
        self.sparsity_slider.add_class("pk-sparsity-slider")
        self.method_dropdown = widgets.Dropdown(
            options=[(METHOD_LABELS[m], m) for m in self.methods], value=self.methods[0],
            description="criterion", style={"description_width": "initial"},
            layout=widgets.Layout(width="320px"))
        self.method_dropdown.add_class("pk-method")
        self._build_figure(flat)
        self._start([self.sparsity_slider, self.method_dropdown],
                    {"sparsity": 0.0, "method": self.methods[0]})

    # ---- figure
    def _build_figure(self, flat: torch.Tensor) -> None:
        fig, live = self.figure, self.live_figure
        grid = fig.add_gridspec(2, 2, left=0.09, right=0.97, top=0.94, bottom=0.09,
                                hspace=0.42, wspace=0.3)
        ax_hist, ax_layers = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        ax_mask, ax_curve = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])

        # weight histogram: all weights in red (pruned), the kept ones drawn over them in blue
        bins = 80
        reach = float(torch.quantile(flat.abs()[:: max(1, len(flat) // 200_000)], 0.999)) or 1.0
        self._edges = np.linspace(-reach, reach, bins + 1)
        self._bin = ((flat + reach) / (2 * reach) * bins).floor().clamp(0, bins - 1).long()
        dense_counts = torch.bincount(self._bin, minlength=bins).numpy()
        ax_hist.stairs(dense_counts, self._edges, fill=True, color=PRUNED, label="pruned")
        self._kept_hist = live.animate(ax_hist.stairs(dense_counts, self._edges, fill=True,
                                                      color=KEPT, label="kept"))
        self._band = [live.animate(ax_hist.axvline(0, color="black", ls="--", lw=1.5))
                      for _ in range(2)]
        ax_hist.set_xlim(-reach, reach)
        ax_hist.set_ylim(0, dense_counts.max() * 1.1)
        ax_hist.legend(fontsize=FONT["legend"], loc="upper right", frameon=False)
        style_axes(ax_hist, "weights (all layers)", "weight value", "count")

        # per-layer sparsity bars
        y = np.arange(len(self.layer_names))
        self._layer_bars = [live.animate(bar) for bar in
                            ax_layers.barh(y, np.zeros(len(y)), height=0.6, color=KEPT)]
        labels = [f"{n} ({short_count(self._sizes[n])})" for n in self.layer_names]
        ax_layers.set_yticks(y, labels)
        ax_layers.set_ylim(len(y) - 0.5, -0.5)
        ax_layers.set_xlim(0, 100)
        self._layer_texts = [live.animate(ax_layers.text(0, i, "", va="center",
                                                         fontsize=FONT["text"]))
                             for i in range(len(y))] if len(y) <= 12 else []
        style_axes(ax_layers, "sparsity per layer", "pruned %")

        # first layer's mask
        first = self.layer_names[0]
        picture, what = mask_picture(torch.ones_like(self._dense[first]))
        self._mask_image = live.animate(ax_mask.imshow(
            picture, vmin=0, vmax=1, cmap="viridis", interpolation="nearest",
            aspect="equal" if picture.shape[0] == picture.shape[1] else "auto"))
        colorbar = fig.colorbar(self._mask_image, ax=ax_mask, fraction=0.05, pad=0.03)
        colorbar.set_label("kept", fontsize=FONT["label"])
        colorbar.ax.tick_params(labelsize=FONT["tick"])
        ax_mask.set_xticks([])
        ax_mask.set_yticks([])
        ax_mask.set_title(f"{first}: {what}", fontsize=FONT["title"])

        # accuracy vs sparsity, filled in as the slider moves; the legend lists a criterion
        # once it has a point (see _show_in_legend)
        self._ax_curve = ax_curve
        self._dense_line = ax_curve.axhline(100 * self.dense_accuracy, color="grey", ls="--",
                                            lw=1.5, label=f"dense {percent(self.dense_accuracy)}")
        self._in_legend: list[str] = []
        self._lines = {}
        for i, method in enumerate(self.methods):
            (line,) = ax_curve.plot([], [], "o-", ms=5, lw=2, color=CURVE_COLORS[i],
                                    label=METHOD_LABELS[method])
            self._lines[method] = live.animate(line)
        (self._current_point,) = ax_curve.plot([], [], "o", ms=14, mfc="none", mec="black",
                                               mew=2.5)
        live.animate(self._current_point)
        ax_curve.set_xlim(0, 100)
        ax_curve.set_ylim(0, 100)
        self._show_in_legend()
        style_axes(ax_curve, "accuracy vs sparsity", "pruned %", "accuracy %")

    def _show_in_legend(self, method: str | None = None) -> None:
        """Add ``method`` to the curve's legend (the dense line is always there)."""
        if method is not None:
            if method in self._in_legend:
                return
            self._in_legend.append(method)
        shown = [m for m in self.methods if m in self._in_legend]    # in the dropdown's order
        self._ax_curve.legend(handles=[self._dense_line] + [self._lines[m] for m in shown],
                              fontsize=FONT["legend"], loc="lower left", frameon=False)
        self.live_figure.invalidate()     # the legend is part of the background

    # ---- computation
    def _keep(self, method: str, sparsity: float) -> dict[str, torch.Tensor]:
        ranks = self._rank[method]
        if self._scope[method] == "global":
            k = round(sparsity * self.total)
            return {name: r >= k for name, r in ranks.items()}
        return {name: r >= round(sparsity * self._sizes[name]) for name, r in ranks.items()}

    def _compute(self, sparsity: float, method: str) -> dict:
        keep = self._keep(method, sparsity)
        with torch.no_grad():
            for name, mask in keep.items():
                self._weights[name].copy_(self._dense[name] * mask)
        accuracy = self._accuracy()
        kept_per_layer = {name: int(mask.sum()) for name, mask in keep.items()}
        kept = sum(kept_per_layer.values())
        self._keep_now = keep

        counts = torch.bincount(self._bin[torch.cat([m.reshape(-1) for m in keep.values()])],
                                minlength=len(self._edges) - 1)
        self._kept_hist.set_data(counts.numpy())
        pruned = self.total - kept
        threshold = float(self._sorted_abs[pruned - 1]) if pruned else 0.0
        for line, x in zip(self._band, (-threshold, threshold)):
            line.set_xdata([x, x])
            line.set_visible(method == "global" and pruned > 0)
        for i, name in enumerate(self.layer_names):
            share = 100 * (1 - kept_per_layer[name] / self._sizes[name])
            self._layer_bars[i].set_width(share)
            if self._layer_texts:
                inside = share > 75   # long bars carry their label inside, in white
                text = self._layer_texts[i]
                text.set_text(f"{share:.1f}% " if inside else f" {share:.1f}%")
                text.set_x(share)
                text.set_horizontalalignment("right" if inside else "left")
                text.set_color("white" if inside else "black")
        self._mask_image.set_data(mask_picture(keep[self.layer_names[0]])[0])
        points = self._curve[method]
        points[round(100 * sparsity, 2)] = 100 * accuracy
        self._show_in_legend(method)
        xs = sorted(points)
        self._lines[method].set_data(xs, [points[x] for x in xs])
        self._current_point.set_data([100 * sparsity], [100 * accuracy])
        return {"sparsity": sparsity, "method": method, "accuracy": accuracy,
                "compression": self.total / kept if kept else math.inf, "kept": kept}

    def _readout(self, r: dict) -> str:
        return (f"accuracy <b class='pk-accuracy'>{percent(r['accuracy'])}</b> "
                f"<span style='color:#777'>(dense {percent(self.dense_accuracy)})</span>"
                f" &nbsp;·&nbsp; compression <b class='pk-compression'>{r['compression']:.1f}×"
                f"</b> &nbsp;·&nbsp; {r['kept']:,} of {self.total:,} weights kept"
                f" &nbsp;·&nbsp; <span class='pk-ms' style='color:#777' title='time to these "
                f"numbers in the kernel; the figure follows'>{r['ms']:.0f} ms</span>")

    # ---- controls
    def _settings_from_controls(self) -> dict:
        return {"sparsity": self.sparsity_slider.value / 100, "method": self.method_dropdown.value}

    def _show_settings(self, settings: dict) -> None:
        self.sparsity_slider.value = round(100 * settings["sparsity"])
        self.method_dropdown.value = settings["method"]

    def update(self, sparsity: float | None = None, *, method: str | None = None) -> dict:
        """Prune to ``sparsity`` with ``method``, evaluate, redraw; move the controls to match.

        Args:
            sparsity: fraction of the weights to prune, in [0, 0.99] (the slider's
                range); ``None`` keeps the current value.
            method: one of the explorer's ``methods``; ``None`` keeps the current one.

        Returns:
            ``{"sparsity", "method", "accuracy", "compression", "kept", "ms"}``:
            accuracy on the evaluation batch, dense/kept weight count, weights kept,
            and the time the update took with its redraw.

        Example:
            >>> import torch, pruning_kit as pk
            >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
            >>> ex = sparsity_explorer(model, pk.data.load("digits")[1], methods=("local",))
            >>> r = ex.update(sparsity=0.9)
            >>> r["kept"], round(r["compression"], 2)
            (5020, 10.0)
        """
        settings = self._current(sparsity=sparsity, method=method)
        settings["sparsity"] = check_fraction("sparsity", settings["sparsity"], high=0.99,
                                              hint="a fraction: 0.9 prunes 90% of the weights")
        check_choice("method", settings["method"], self.methods)
        return self._update(settings)

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """The current masks, ``{layer name: float 0/1 tensor}`` (1 = kept)."""
        return {name: mask.float() for name, mask in self._keep_now.items()}

    def __repr__(self) -> str:
        return (f"SparsityExplorer(methods={self.methods}, layers={self.layer_names}, "
                f"eval_size={len(self._y)}, backend={self.live_figure.backend!r})")


sparsity_explorer = SparsityExplorer   # the documented entry point is the class itself
