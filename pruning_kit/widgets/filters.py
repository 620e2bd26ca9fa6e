"""The filter explorer: remove a fraction of a CNN's filters and measure what shrinks.

Structured pruning (Li et al. 2017, ``pk.structured.l1_filter_prune``) makes
the tensors themselves smaller: parameters, MACs and measured latency follow,
as a percentage of the dense model's.
"""

from __future__ import annotations

import math
import numbers

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_fraction, check_int, check_number, check_tensor
from .base import FONT, KEPT, ModelExplorer, percent, short_count, style_axes

__all__ = ["FilterExplorer", "filter_explorer"]


class FilterExplorer(ModelExplorer):
    """A slider that removes filters (``pk.structured.l1_filter_prune``) and measures the result.

    ``pk.widgets.filter_explorer(model, example_input)`` is this class.

    For each ratio, the model is physically pruned (smaller tensors, not
    masks) and its parameters, MACs and single-thread latency (timed
    alternately with the dense model, ``pk.metrics.latency_ms``) are shown as a
    percentage of the dense model's, with accuracy without fine-tuning when
    ``test`` is given. Each ratio is pruned and timed once, then cached.

    Args:
        model: a CNN (never modified).
        example_input: a batch the model accepts; MACs and latency are measured on it.
        test: optional evaluation data for the accuracy bar.
        max_ratio, step: the slider runs over ``0, step, 2*step, ... max_ratio``.
        repeats: timed runs per model and ratio.
        eval_size, seed: size and seed of the evaluation subset.
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``.

    Its control is ``ex.ratio_slider``; ``ex.update(ratio=...)`` drives it.

    Example:
        >>> import torch, pruning_kit as pk
        >>> _ = torch.manual_seed(0); model = pk.models.lenet5()
        >>> ex = filter_explorer(model, torch.zeros(1, 1, 28, 28), max_ratio=0.5, step=0.5,
        ...                      repeats=2, backend="image")
        >>> r = ex.update(ratio=0.5)
        >>> r["macs"] < pk.metrics.macs(model, torch.zeros(1, 1, 28, 28)) / 2
        True
    """

    figsize = (9, 4.8)
    test_optional = True

    def __init__(self, model: nn.Module, example_input: torch.Tensor, *, test=None,
                 max_ratio: float = 0.9, step: float = 0.1, repeats: int = 10,
                 eval_size: int = 1000, seed: int = 0, backend: str = "auto"):
        from .. import metrics

        check_tensor("example_input", example_input, min_dim=2,
                     hint="pass a batch (N x C x H x W) the model accepts")
        max_ratio = check_fraction("max_ratio", max_ratio, high=0.99)
        step = check_number("step", step, low=0, low_open=True, high=max_ratio,
                            hint="the slider's step, at most max_ratio")
        self._repeats = check_int("repeats", repeats, low=1)
        super().__init__(model, test, eval_size=eval_size, seed=seed, backend=backend)
        self._input = example_input
        self.dense_params = metrics.count_params(self._model)
        self.dense_macs = metrics.macs(self._model, example_input)
        self.ratios = [round(i * step, 6) for i in range(math.floor(max_ratio / step + 1e-9) + 1)]
        self._cache = {}

        self.ratio_slider = widgets.SelectionSlider(
            options=[(f"{100 * r:g}%", r) for r in self.ratios], value=0.0,
            description="filters removed", continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="480px"))
        self.ratio_slider.add_class("pk-ratio-slider")
        self._build_figure()
        self._start([self.ratio_slider], {"ratio": 0.0})

    def _build_figure(self) -> None:
        ax = self.figure.add_axes((0.1, 0.14, 0.86, 0.74))
        self._labels = ["parameters", "MACs", "latency"]
        x = np.arange(len(self._labels))
        colors = [KEPT, KEPT, "#ff7f0e"]
        live = self.live_figure
        self._bars = [live.animate(bar) for bar in ax.bar(x, np.zeros(len(x)), width=0.6,
                                                          color=colors)]
        self._texts = [live.animate(ax.text(i, 0, "", ha="center", va="bottom",
                                            fontsize=FONT["text"] + 1))
                       for i in range(len(x))]
        ax.axhline(100, color="grey", ls="--", lw=1.5)
        ax.set_xticks(x, self._labels)
        ax.set_ylim(0, 130)
        style_axes(ax, "pruned model, as % of the dense one", "", "% of dense")

    def _measure(self, ratio: float) -> dict:
        from .. import metrics, structured

        if ratio not in self._cache:
            small = (structured.l1_filter_prune(self._model, ratio, self._input) if ratio
                     else self._model)
            times = metrics.latency_ms({"dense": self._model, "pruned": small}, self._input,
                                       repeats=self._repeats)
            entry = {"params": metrics.count_params(small),
                     "macs": metrics.macs(small, self._input),
                     "latency_ms": times["pruned"], "dense_latency_ms": times["dense"]}
            if self._x is not None:
                entry["accuracy"] = self._accuracy(small)
            self._cache[ratio] = entry
        return self._cache[ratio]

    def _compute(self, ratio: float) -> dict:
        m = self._measure(ratio)
        shares = [100 * m["params"] / self.dense_params, 100 * m["macs"] / self.dense_macs,
                  100 * m["latency_ms"] / m["dense_latency_ms"]]
        for bar, text, share in zip(self._bars, self._texts, shares):
            shown = min(share, 128)
            bar.set_height(shown)
            text.set_text(f"{share:.0f}%")
            text.set_y(shown + 1)
        return {"ratio": ratio, **m}

    def _readout(self, r: dict) -> str:
        accuracy = ("" if "accuracy" not in r else
                    f" &nbsp;·&nbsp; accuracy without fine-tuning <b class='pk-accuracy'>"
                    f"{percent(r['accuracy'])}</b> (dense {percent(self.dense_accuracy)})")
        return (f"{short_count(r['params'])} parameters &nbsp;·&nbsp; "
                f"{short_count(r['macs'])} MACs"
                f" &nbsp;·&nbsp; latency <b>{r['latency_ms']:.2f} ms</b> (dense "
                f"{r['dense_latency_ms']:.2f} ms){accuracy}")

    def _settings_from_controls(self) -> dict:
        return {"ratio": self.ratio_slider.value}

    def _show_settings(self, settings: dict) -> None:
        self.ratio_slider.value = settings["ratio"]

    def update(self, ratio: float | None = None) -> dict:
        """Prune ``ratio`` of every conv's filters (one of ``ex.ratios``), measure, redraw.

        Returns:
            ``{"ratio", "params", "macs", "latency_ms", "dense_latency_ms", "ms"}``
            and ``"accuracy"`` when test data was given.
        """
        if ratio is None:
            ratio = self._last_settings["ratio"]
        if isinstance(ratio, numbers.Real) and not isinstance(ratio, bool):   # 3 * 0.1 means 0.3
            ratio = next((r for r in self.ratios if abs(r - ratio) < 1e-9), ratio)
        return self._update({"ratio": check_choice("ratio", ratio, self.ratios)})


filter_explorer = FilterExplorer   # the documented entry point is the class itself
