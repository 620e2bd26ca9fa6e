"""Figures for the lessons: one plotting helper and a few compression plots.

Every function draws into ``axes`` when given one (so a lesson can lay out
subplots) or into a new figure, labels its axes with units, adds a legend,
and returns the ``matplotlib`` Axes. Importing this module changes no global
matplotlib or seaborn setting; call :func:`style` once at the top of a
notebook for large, projector-friendly fonts.

- :func:`style`: seaborn theme with big fonts and a colour-blind-safe palette.
- :func:`plot`: d2l-style one-line line plot of one or several series.
- :func:`mean_spread`: mean and spread per method and x (the table behind the bands).
- :func:`accuracy_vs_sparsity`: accuracy curves with mean +/- spread bands.
- :func:`weight_histogram`: distribution of weights with the pruned band shaded.
- :func:`layer_sparsity_bars`: fraction pruned per layer (one or several methods).
- :func:`mask_image`: a pruning mask shown as a black (kept) / white (pruned) image.
- :func:`plot_heatmap` / :func:`plot_heatmaps`: accuracy over learning rate x weight
  decay (``pk.sensitivity`` grids), the top cells marked and the 2-sigma ellipse drawn.

Example:
    >>> import numpy as np, pruning_kit as pk
    >>> x = np.linspace(0, 1, 5)
    >>> ax = pk.plots.plot(x, [x, x ** 2], "sparsity (fraction pruned)", "value (a.u.)",
    ...                    legend=["x", "x squared"])
    >>> ax.get_xlabel(), len(ax.get_lines())
    ('sparsity (fraction pruned)', 2)
    >>> pk.plots.close(ax)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from ._checks import InvalidParameterError, check_int, check_number, check_fraction, check_choice

__all__ = ["style", "plot", "mean_spread", "accuracy_vs_sparsity", "weight_histogram",
           "layer_sparsity_bars", "mask_image", "plot_heatmap", "plot_heatmaps", "close",
           "FIGSIZE", "SCALES", "SPREADS"]

FIGSIZE = (7.0, 4.5)
SCALES = ("linear", "log", "symlog", "logit")
SPREADS = ("minmax", "std", "sem", None)
X_AXES = ("sparsity", "remaining")
LEGEND_ROOM = 0.3     # share of a histogram's height kept free above its bars for the legend


# --------------------------------------------------------------------------- helpers

def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _new_axes(axes, figsize=FIGSIZE, legend_loc=None):
    """Return ``axes`` or a fresh Axes on a new figure (constrained layout).

    A new figure whose legend goes outside is made wider, so the plot keeps its width.
    """
    if axes is None:
        if legend_loc == "outside":
            figsize = (figsize[0] + 3.0, figsize[1])
        _, axes = _pyplot().subplots(figsize=figsize, layout="constrained")
        return axes
    from matplotlib.axes import Axes

    if not isinstance(axes, Axes):
        raise InvalidParameterError(f"axes must be a matplotlib Axes or None, got {type(axes).__name__}")
    return axes


def _check_label(name, value):
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(f"{name} must be a non-empty string (say what and in which unit, "
                                    f"e.g. 'sparsity (% of weights pruned)'), got {value!r}")


def _as_array(values, name) -> np.ndarray:
    """A float NumPy array from a tensor, array or sequence."""
    try:
        import torch

        if isinstance(values, torch.Tensor):
            return values.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(values, (str, bytes)) or values is None:
        raise InvalidParameterError(f"{name} must be numbers (a tensor, array or sequence), "
                                    f"got {type(values).__name__}")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(f"{name} must be numbers (a tensor, array or sequence): {err}") from None


def _is_series_list(ys) -> bool:
    """True when ``ys`` holds several series rather than one series of numbers."""
    if isinstance(ys, np.ndarray):
        return ys.ndim == 2
    try:
        import torch

        if isinstance(ys, torch.Tensor):
            return ys.dim() == 2
    except ImportError:  # pragma: no cover
        pass
    return (isinstance(ys, Sequence) and len(ys) > 0
            and all(np.ndim(_as_array(y, "ys")) == 1 for y in ys))


def _check_legend_loc(loc) -> None:
    from matplotlib.legend import Legend

    if loc != "outside" and loc not in Legend.codes:
        raise InvalidParameterError(f"legend_loc must be 'outside' or a matplotlib location among "
                                    f"{sorted(Legend.codes)}, got {loc!r}")


def _legend(ax, loc, **kwargs):
    """Draw the legend at a matplotlib location, or ``"outside"`` to the right of the axes."""
    _check_legend_loc(loc)
    if loc == "outside":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)
    return ax.legend(loc=loc, **kwargs)


def _leave_room_above(ax, share: float) -> None:
    """Raise the top of the y axis so the data fill only the lower ``1 - share`` of the axes.

    A legend in an upper corner then sits over empty space, not over the tallest bars.
    """
    bottom, top = ax.get_ylim()
    if ax.get_yscale() == "log":
        low, high = np.log10(bottom), np.log10(top)
        ax.set_ylim(bottom, 10 ** (high + share / (1 - share) * (high - low)))
    else:
        ax.set_ylim(bottom, top + share / (1 - share) * (top - bottom))


def _bar_labels(ax, bars, line_at: float | None, fontsize="x-small") -> None:
    """Write each bar's percentage where no horizontal line at ``line_at`` crosses it.

    Above the bar by default; inside its top (in white) where a line would run
    through the label above; above the line where it would cross both places.
    """
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=fontsize).get_size_in_points()
    bottom, top = ax.get_ylim()
    axes_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    text = (1.3 * size + 5) / axes_pt * (top - bottom)      # a label and its gaps, in data units
    for bar in bars:
        height = bar.get_height()
        if not np.isfinite(height):
            continue
        x, label = bar.get_x() + bar.get_width() / 2, f"{height:.0f}%"
        where = {"xy": (x, height), "xytext": (0, 2), "va": "bottom", "color": "black"}
        if line_at is not None and height - 0.5 <= line_at <= height + text:
            if height - text > 0 and not height - text <= line_at <= height:
                where = {"xy": (x, height), "xytext": (0, -4), "va": "top", "color": "white"}
            else:
                where = {"xy": (x, max(height, line_at)), "xytext": (0, 4), "va": "bottom",
                         "color": "black"}
        ax.annotate(label, where["xy"], xytext=where["xytext"], textcoords="offset points",
                    ha="center", va=where["va"], color=where["color"], fontsize=fontsize)


def close(axes) -> None:
    """Close the figure an Axes belongs to (frees memory in loops and tests).

    Example:
        >>> ax = plot([0, 1], [0, 1], "x (a.u.)", "y (a.u.)")
        >>> close(ax)
    """
    from matplotlib.axes import Axes

    if not isinstance(axes, Axes):
        raise InvalidParameterError(f"axes must be a matplotlib Axes, got {type(axes).__name__}")
    _pyplot().close(axes.figure)


# --------------------------------------------------------------------------- style

def style(context: str = "talk", *, font_scale: float = 1.0, palette: str = "colorblind") -> dict:
    """Apply a projector-friendly seaborn theme (large fonts, white grid).

    This is the only function in the module that changes global matplotlib
    settings; call it once at the top of a lesson.

    Args:
        context: seaborn context, one of ``"paper"``, ``"notebook"``, ``"talk"``
            (default, readable from the back of a lecture hall), ``"poster"``.
        font_scale: extra factor on every font size (> 0).
        palette: a seaborn palette name; ``"colorblind"`` by default.

    Returns:
        The matplotlib settings that were applied (a dict of rcParams).

    Example:
        >>> import matplotlib as mpl
        >>> with mpl.rc_context():          # keep the doctest from changing global state
        ...     rc = style()
        ...     mpl.rcParams["axes.labelsize"] >= 16
        True
    """
    contexts = ("paper", "notebook", "talk", "poster")
    if context not in contexts:
        raise InvalidParameterError(f"context must be one of {contexts}, got {context!r}")
    check_number("font_scale", font_scale, low=0, low_open=True)
    if not isinstance(palette, str):
        raise InvalidParameterError(f"palette must be a seaborn palette name, got {type(palette).__name__}")
    import matplotlib as mpl
    import seaborn as sns

    rc = {"figure.figsize": FIGSIZE, "figure.dpi": 100, "axes.titleweight": "bold",
          "lines.linewidth": 2.5, "legend.frameon": True, "legend.framealpha": 0.9,
          "savefig.bbox": "tight"}
    sns.set_theme(context=context, style="whitegrid", palette=palette, font_scale=font_scale,
                  rc=rc)
    keys = set(rc) | {k for k in mpl.rcParams if k.endswith(("size", "width"))}
    return {k: mpl.rcParams[k] for k in sorted(keys)}


# --------------------------------------------------------------------------- line plot

def plot(x, ys, xlabel: str, ylabel: str, *, legend=None, axes=None, xscale: str = "linear",
         yscale: str = "linear", title: str | None = None, fmts=None, xlim=None, ylim=None,
         legend_loc: str = "best"):
    """Plot one or several series against ``x`` in one line (the d2l helper).

    Args:
        x: the x values (tensor, array or sequence), shared by every series,
            or a list with one x sequence per series.
        ys: one series, or a list of series (each the length of its ``x``).
        xlabel, ylabel: axis labels; say the unit, e.g. ``"epoch"``,
            ``"test accuracy (%)"``.
        legend: one label per series (needed when there are several).
        axes: draw here; ``None`` makes a new figure.
        xscale, yscale: ``"linear"``, ``"log"``, ``"symlog"`` or ``"logit"``.
        title: optional title.
        fmts: matplotlib format strings, one per series (cycled), e.g.
            ``("-", "m--", "g-.")``.
        xlim, ylim: optional ``(low, high)`` limits.
        legend_loc: where the legend goes: a matplotlib location (``"best"``,
            ``"lower left"``, ...) or ``"outside"`` (right of the axes).

    Returns:
        The matplotlib Axes.

    Example:
        >>> ax = plot([1, 2, 3], [[0.9, 0.8, 0.5], [0.9, 0.6, 0.2]], "round", "accuracy (%)",
        ...           legend=["magnitude", "random"], fmts=("-o", "--s"))
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['magnitude', 'random']
        >>> close(ax)
    """
    _check_label("xlabel", xlabel)
    _check_label("ylabel", ylabel)
    _check_legend_loc(legend_loc)
    check_choice("xscale", xscale, SCALES)
    check_choice("yscale", yscale, SCALES)
    series = [_as_array(y, "ys") for y in ys] if _is_series_list(ys) else [_as_array(ys, "ys")]
    if any(s.ndim != 1 for s in series):
        raise InvalidParameterError("ys must be one 1-D series or a list of 1-D series, got shapes "
                                    f"{[s.shape for s in series]}")
    if _is_series_list(x):
        xs = [_as_array(v, "x") for v in x]
        if len(xs) != len(series):
            raise InvalidParameterError(f"x holds {len(xs)} x sequences but ys holds {len(series)} series; "
                                        "pass one shared x or one x per series")
    else:
        xs = [_as_array(x, "x")] * len(series)
    for i, (xv, yv) in enumerate(zip(xs, series)):
        if xv.ndim != 1 or len(xv) != len(yv):
            raise InvalidParameterError(f"series {i} has {len(yv)} values but its x has shape {xv.shape}; "
                                        "each series needs one y per x")
    if legend is not None:
        if isinstance(legend, str):
            legend = [legend]
        if len(legend) != len(series):
            raise InvalidParameterError(f"legend has {len(legend)} labels for {len(series)} series; "
                                        "give one label per series")
    elif len(series) > 1:
        raise InvalidParameterError(f"{len(series)} series need a legend: pass legend=[one label each]")
    if fmts is None:
        fmts = ("-",)
    elif isinstance(fmts, str):
        fmts = (fmts,)
    ax = _new_axes(axes, legend_loc=legend_loc)
    for i, (xv, yv) in enumerate(zip(xs, series)):
        label = legend[i] if legend is not None else None
        ax.plot(xv, yv, fmts[i % len(fmts)], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    if legend is not None:
        _legend(ax, legend_loc)
    return ax


# --------------------------------------------------------------------------- accuracy vs sparsity

def _frame(frame_or_records):
    import pandas as pd

    if isinstance(frame_or_records, pd.DataFrame):
        return frame_or_records
    if isinstance(frame_or_records, Sequence) and not isinstance(frame_or_records, str) \
            and all(isinstance(r, Mapping) for r in frame_or_records):
        return pd.DataFrame(list(frame_or_records))
    raise InvalidParameterError("expected a pandas DataFrame or a list of dicts (records), got "
                                f"{type(frame_or_records).__name__}")


def mean_spread(frame_or_records, *, x: str = "sparsity", y: str = "accuracy",
                hue: str | None = "method", spread: str | None = "minmax"):
    """Mean and spread of ``y`` for every ``hue`` (method) and ``x`` value.

    Args:
        frame_or_records: a DataFrame or a list of dicts, one row per run
            (e.g. ``{"method": "global", "sparsity": 0.9, "seed": 0, "accuracy": 0.95}``).
        x, y: column names of the x and y values.
        hue: column that names the method (``None``: one group).
        spread: ``"minmax"`` (min and max over runs, as in Frankle & Carbin),
            ``"std"`` (mean +/- one standard deviation), ``"sem"`` (+/- standard
            error) or ``None`` (no band).

    Returns:
        A DataFrame with columns ``hue`` (if any), ``x``, ``mean``, ``low``,
        ``high``, ``runs``, sorted by method then x.

    Example:
        >>> rows = [{"method": "m", "sparsity": 0.5, "accuracy": a} for a in (0.8, 0.9, 1.0)]
        >>> mean_spread(rows).round(3).to_dict("records")
        [{'method': 'm', 'sparsity': 0.5, 'mean': 0.9, 'low': 0.8, 'high': 1.0, 'runs': 3}]
    """
    frame = _frame(frame_or_records)
    if spread not in SPREADS:
        raise InvalidParameterError(f"spread must be one of {SPREADS}, got {spread!r}")
    columns = [c for c in (hue, x, y) if c is not None]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidParameterError(f"columns {missing} not found; the data has {list(frame.columns)}")
    if frame.empty:
        raise InvalidParameterError("the data has no rows to plot")
    keys = [hue, x] if hue is not None else [x]
    grouped = frame.groupby(keys, sort=True)[y]
    table = grouped.agg(["mean", "min", "max", "std", "count"]).reset_index()
    std = table["std"].fillna(0.0)
    if spread == "minmax":
        low, high = table["min"], table["max"]
    elif spread == "std":
        low, high = table["mean"] - std, table["mean"] + std
    elif spread == "sem":
        sem = std / np.sqrt(table["count"])
        low, high = table["mean"] - sem, table["mean"] + sem
    else:
        low, high = table["mean"], table["mean"]
    out = table[keys].copy()
    out["mean"], out["low"], out["high"] = table["mean"], low, high
    out["runs"] = table["count"].astype(int)
    return out


def accuracy_vs_sparsity(frame_or_records, *, x: str = "sparsity", y: str = "accuracy",
                         hue: str | None = "method", axes=None, x_axis: str = "sparsity",
                         log: bool = False, spread: str | None = "minmax", percent: bool = True,
                         ylabel: str = "test accuracy", title: str | None = None,
                         reference: float | None = None, reference_label: str = "dense",
                         legend_loc: str = "outside"):
    """Accuracy against sparsity: one line per method, mean over runs, spread band.

    Args:
        frame_or_records: one row per run with columns ``x`` (a sparsity,
            fraction of weights pruned, in [0, 1]), ``y`` (an accuracy in
            [0, 1]) and ``hue`` (method name); extra columns (seed) are ignored.
        x, y, hue: the column names.
        axes: draw here; ``None`` makes a new figure.
        x_axis: ``"sparsity"`` (% of weights pruned, left to right) or
            ``"remaining"`` (% of weights left, 100% at the left, as in the
            lottery-ticket paper).
        log: logarithmic x axis; with ``x_axis="remaining"`` this spreads out
            the interesting high-sparsity end (100, 10, 1 %).
        spread: band drawn around the mean: ``"minmax"``, ``"std"``, ``"sem"``
            or ``None`` (see :func:`mean_spread`); the legend's title says which
            and over how many runs (the most any point has).
        percent: show x and y in percent (values stay fractions in the data).
        ylabel: y label without unit (the unit is added).
        title: optional title.
        reference: draw a horizontal dashed line at this accuracy (e.g. the
            dense network), labelled ``reference_label``.

    Returns:
        The matplotlib Axes.

    Example:
        >>> rows = [{"method": m, "sparsity": s, "seed": k, "accuracy": 0.95 - s ** 4 * f + 0.01 * k}
        ...         for m, f in (("magnitude", 0.2), ("random", 0.8))
        ...         for s in (0.0, 0.5, 0.9) for k in range(3)]
        >>> ax = accuracy_vs_sparsity(rows, x_axis="remaining", log=True, reference=0.96)
        >>> ax.get_xlabel(), ax.get_xscale(), len(ax.collections)
        ('weights remaining (%, log scale)', 'log', 2)
        >>> close(ax)
    """
    if x_axis not in X_AXES:
        raise InvalidParameterError(f"x_axis must be one of {X_AXES}, got {x_axis!r}")
    _check_label("ylabel", ylabel)
    _check_legend_loc(legend_loc)
    table = mean_spread(frame_or_records, x=x, y=y, hue=hue, spread=spread)
    xs = table[x].to_numpy(dtype=float)
    if np.any(xs < 0) or np.any(xs > 1):
        raise InvalidParameterError(f"column {x!r} must hold sparsities (fractions pruned) in [0, 1], got "
                                    f"values from {xs.min()} to {xs.max()}")
    if x_axis == "remaining" and log and np.any(xs >= 1):
        raise InvalidParameterError("a log x axis of weights remaining cannot show sparsity 1 "
                                    "(nothing left); drop those rows or use log=False")
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else "fraction"
    ax = _new_axes(axes, legend_loc=legend_loc)
    groups = table.groupby(hue, sort=False) if hue is not None else [(None, table)]
    for name, group in groups:
        gx = group[x].to_numpy(dtype=float)
        if x_axis == "remaining":
            gx = 1.0 - gx
        gx = gx * scale
        mean = group["mean"].to_numpy(dtype=float) * scale
        line, = ax.plot(gx, mean, "-o", label=str(name) if name is not None else y)
        if spread is not None:
            ax.fill_between(gx, group["low"].to_numpy(dtype=float) * scale,
                            group["high"].to_numpy(dtype=float) * scale,
                            color=line.get_color(), alpha=0.2, linewidth=0)
    if reference is not None:
        check_number("reference", reference)
        ax.axhline(reference * scale, color="0.3", linestyle="--", linewidth=1.5,
                   label=reference_label)
    if x_axis == "remaining":
        xlabel = f"weights remaining ({unit}"
        ax.invert_xaxis()
    else:
        xlabel = f"sparsity ({unit} of weights pruned"
    ax.set_xlabel(xlabel + (", log scale)" if log else ")"))
    if log:
        ax.set_xscale("log")
        from matplotlib import ticker

        # plain tick labels (100, 50, 20, 10, ...) rather than 10^k powers
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylabel(f"{ylabel} ({unit})")
    if title:
        ax.set_title(title)
    band = {"minmax": "min-max", "std": "+/- 1 std", "sem": "+/- 1 s.e.m.", None: None}[spread]
    runs = int(table["runs"].max())
    if band:
        band += f" over {runs} runs" if runs > 1 else " (one run: no spread)"
    _legend(ax, legend_loc, title=f"mean; band:\n{band}" if band else "mean")
    return ax


# --------------------------------------------------------------------------- weights and masks

def _flat_weights(weights) -> np.ndarray:
    """All weights as one flat float array (tensor, array, list, dict or module)."""
    from torch import nn

    if isinstance(weights, nn.Module):
        from .models import prunable

        layers = prunable(weights)
        if not layers:
            raise InvalidParameterError("the model has no Linear/Conv2d layers to take weights from")
        weights = [m.weight for _, m in layers]
    if isinstance(weights, Mapping):
        weights = list(weights.values())
    if isinstance(weights, (list, tuple)) and weights and not np.isscalar(weights[0]):
        arrays = [_as_array(w, "weights").ravel() for w in weights]
        flat = np.concatenate(arrays)
    else:
        flat = _as_array(weights, "weights").ravel()
    if flat.size == 0:
        raise InvalidParameterError("weights is empty: nothing to draw")
    return flat


def weight_histogram(weights, *, pruned_threshold: float | None = None, axes=None,
                     bins: int = 100, label: str = "weights", drop_zeros: bool = False,
                     log_count: bool = False, title: str | None = None, legend_loc: str = "best"):
    """Histogram of weight values; the band ``|w| <= pruned_threshold`` is shaded.

    The count axis leaves room above the tallest bar, so a legend in an upper
    corner (here or one the caller draws later) never covers the peak.

    Args:
        weights: a tensor/array, a list or dict of them, or a model (its
            Linear/Conv2d weights as the forward pass sees them, masks applied).
        pruned_threshold: the threshold τ: weights with ``|w| <= τ`` are (to be)
            pruned, as a magnitude mask that removes the k smallest does when τ is
            the k-th smallest ``|w|``; shades ``[-τ, τ]`` and reports the fraction inside.
        axes: draw here; ``None`` makes a new figure.
        bins: number of histogram bins (>= 1).
        label: legend label of the histogram.
        drop_zeros: leave exact zeros out (pruned weights would otherwise make
            one tall spike at 0 that flattens the rest).
        log_count: logarithmic count axis.
        title: optional title.
        legend_loc: a matplotlib location, or ``"outside"`` (right of the axes).

    Returns:
        The matplotlib Axes.

    Example:
        >>> import torch
        >>> w = torch.tensor([-0.9, -0.2, 0.1, 0.3, 0.8])
        >>> ax = weight_histogram(w, pruned_threshold=0.25, bins=20)
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['weights', 'pruned band |w| ≤ τ = 0.25 (40.0% of weights)']
        >>> close(ax)
    """
    check_int("bins", bins, low=1)
    _check_label("label", label)
    _check_legend_loc(legend_loc)
    flat = _flat_weights(weights)
    if pruned_threshold is not None:
        check_number("pruned_threshold", pruned_threshold, low=0)
    shown = flat[flat != 0] if drop_zeros else flat
    if shown.size == 0:
        raise InvalidParameterError("every weight is zero and drop_zeros=True: nothing left to draw")
    ax = _new_axes(axes, legend_loc=legend_loc)
    ax.hist(shown, bins=bins, color="C0", alpha=0.85, label=label)
    if pruned_threshold is not None:
        inside = float(np.mean(np.abs(flat) <= pruned_threshold))
        t = float(pruned_threshold)
        ax.axvspan(-t, t, color="C3", alpha=0.2,
                   label=f"pruned band |w| ≤ τ = {t:.3g} ({100 * inside:.1f}% of weights)")
    ax.set_xlabel("weight value (dimensionless)")
    ax.set_ylabel("number of weights" + (" (log scale)" if log_count else ""))
    if log_count:
        ax.set_yscale("log")
    _leave_room_above(ax, LEGEND_ROOM)
    if title:
        ax.set_title(title)
    _legend(ax, legend_loc)
    return ax


def layer_sparsity_bars(sparsities: Mapping, axes=None, *, overall: float | None = None,
                        title: str | None = None, annotate: bool = True,
                        legend_loc: str = "outside"):
    """Bar chart of the fraction of weights pruned in each layer.

    Args:
        sparsities: ``{layer: sparsity}`` with sparsities in [0, 1] (e.g.
            ``pk.prune.layer_sparsity(model)``), or ``{method: {layer:
            sparsity}}`` for grouped bars (e.g. local vs global pruning).
        axes: draw here; ``None`` makes a new figure.
        overall: draw the whole network's sparsity as a dashed line.
        title: optional title.
        annotate: write the percentage on each bar.
        legend_loc: ``"outside"`` (default, right of the axes) or a matplotlib location.

    Returns:
        The matplotlib Axes.

    Example:
        >>> ax = layer_sparsity_bars({"local": {"fc1": 0.9, "fc2": 0.9},
        ...                           "global": {"fc1": 0.95, "fc2": 0.6}}, overall=0.9)
        >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_ylabel()
        (['fc1', 'fc2'], 'sparsity (% of weights pruned)')
        >>> close(ax)
    """
    if not isinstance(sparsities, Mapping) or not sparsities:
        raise InvalidParameterError("sparsities must be a non-empty dict {layer: sparsity} or "
                                    f"{{method: {{layer: sparsity}}}}, got {sparsities!r}")
    grouped = all(isinstance(v, Mapping) for v in sparsities.values())
    groups = dict(sparsities) if grouped else {"sparsity": dict(sparsities)}
    layers: list = []
    for method, values in groups.items():
        if not isinstance(values, Mapping) or not values:
            raise InvalidParameterError(f"sparsities[{method!r}] must be a non-empty dict {{layer: sparsity}}")
        for layer, s in values.items():
            check_fraction(f"sparsity of layer {layer!r}", s)
            if layer not in layers:
                layers.append(layer)
    if overall is not None:
        check_fraction("overall", overall)
    _check_legend_loc(legend_loc)
    ax = _new_axes(axes, legend_loc=legend_loc)
    positions = np.arange(len(layers))
    width = 0.8 / len(groups)
    all_bars = []
    for i, (method, values) in enumerate(groups.items()):
        heights = [100.0 * values.get(layer, np.nan) for layer in layers]
        bars = ax.bar(positions + (i - (len(groups) - 1) / 2) * width, heights, width,
                      label=str(method), color=f"C{i}")
        all_bars.append(bars)
    if overall is not None:
        ax.axhline(100.0 * overall, color="0.2", linestyle="--", linewidth=1.5,
                   label=f"whole network ({100 * overall:.1f}%)")
    ax.set_xticks(positions, [str(layer) for layer in layers])
    ax.set_xlabel("layer")
    ax.set_ylabel("sparsity (% of weights pruned)")
    ax.set_ylim(0, 112)
    if annotate:     # after the limits: a label's place depends on the line's
        for bars in all_bars:
            _bar_labels(ax, bars, None if overall is None else 100.0 * overall)
    if title:
        ax.set_title(title)
    _legend(ax, legend_loc)
    return ax


def mask_image(mask, axes=None, *, title: str | None = None, max_size: int = 400,
               legend_loc: str = "outside"):
    """Show a pruning mask: black pixels are kept weights, white are pruned.

    Args:
        mask: a 2-D (out x in) or 4-D conv (out x in x kh x kw, shown as
            out x (in*kh*kw)) tensor/array of 0/1 values (any nonzero counts as kept).
        axes: draw here; ``None`` makes a new figure.
        title: optional title; the kept fraction is always added.
        max_size: rows/columns beyond this are shown by striding (every k-th),
            so big layers stay legible; the kept fraction uses the whole mask.
        legend_loc: ``"outside"`` (default, right of the image) or a matplotlib location.

    Returns:
        The matplotlib Axes.

    Example:
        >>> import torch
        >>> m = (torch.arange(12).reshape(3, 4) % 2).float()
        >>> ax = mask_image(m, title="fc1")
        >>> ax.get_title(), ax.get_xlabel()
        ('fc1: 50.0% of weights kept', 'input unit (column of the weight matrix)')
        >>> close(ax)
    """
    values = _as_array(mask, "mask")
    if values.ndim == 4:
        values = values.reshape(values.shape[0], -1)
    if values.ndim != 2 or values.size == 0:
        raise InvalidParameterError("mask must be a non-empty 2-D (out x in) or 4-D (conv) tensor, got "
                                    f"shape {values.shape}")
    check_int("max_size", max_size, low=1)
    _check_legend_loc(legend_loc)
    kept = values != 0
    fraction = float(kept.mean())
    row_step = -(-kept.shape[0] // max_size)
    col_step = -(-kept.shape[1] // max_size)
    shown = kept[::row_step, ::col_step]
    ax = _new_axes(axes, legend_loc=legend_loc)
    ax.imshow(shown, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
              extent=(-0.5, kept.shape[1] - 0.5, kept.shape[0] - 0.5, -0.5))
    from matplotlib.patches import Patch

    _legend(ax, legend_loc, handles=[Patch(facecolor="black", edgecolor="0.5", label="kept"),
                                     Patch(facecolor="white", edgecolor="0.5", label="pruned")])
    ax.set_xlabel("input unit (column of the weight matrix)")
    ax.set_ylabel("output unit (row)")
    ax.grid(False)
    prefix = f"{title}: " if title else ""
    ax.set_title(f"{prefix}{100 * fraction:.1f}% of weights kept")
    return ax


# --------------------------------------------------------------------------- sensitivity heatmaps

def _cell_step(grid: np.ndarray) -> float:
    """log10 change from one heatmap cell to the next (exact for log-spaced grids)."""
    if len(grid) == 1:
        return 1.0
    return float(np.polyfit(np.arange(len(grid)), np.log10(grid), 1)[0])


def _log_to_cell(grid: np.ndarray) -> Callable[[float], float]:
    """Map a log10 value to heatmap cell coordinates (cell i spans [i, i + 1])."""
    first, step = float(np.log10(grid[0])), _cell_step(grid)
    return lambda v: 0.5 + (v - first) / step


def plot_heatmap(frame, setting: str | None = None, *, ax=None, within=(0.005, 0.01),
                 ellipse: bool = True, annot: bool = True, cmap: str = "viridis",
                 vmin: float | None = None, vmax: float | None = None, title: str | None = None,
                 legend: bool = True):
    """Seaborn heatmap of accuracy over learning rate x weight decay, with the ellipse.

    Cells within the first ``within`` of the best get a star, within the second
    a dot; the 2-sigma ellipse of the configurations within ``max(within)`` is
    drawn in grid coordinates (exact for log-spaced grids).

    Args:
        frame: the grid(s); pick one with ``setting`` when it holds several.
        ax: matplotlib Axes to draw on (a new figure when None).
        within: one or two accuracy tolerances for the markers.
        ellipse: draw the confidence ellipse.
        annot: write the accuracies in the cells.
        cmap, vmin, vmax: colour scale (share vmin/vmax to compare plots).
        title: defaults to the setting's name.
        legend: explain the markers and the ellipse under the plot.

    Returns:
        the matplotlib Axes.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-3, 1e-2], "weight_decay": [1e-4, 1e-4, 1e-3, 1e-3],
        ...                   "accuracy": [0.95, 0.95, 0.95, 0.5]})
        >>> ax = plot_heatmap(f, title="toy")
        >>> ax.get_title(), len(ax.patches)   # the ellipse is the one patch
        ('toy', 1)
        >>> close(ax)
    """
    import seaborn as sns
    from matplotlib.patches import Ellipse as EllipsePatch

    from .sensitivity import analysis

    within = (within,) if isinstance(within, (int, float)) else tuple(within)
    if not 1 <= len(within) <= 2:
        raise InvalidParameterError(f"within must be one or two tolerances, got {within!r}")
    within = tuple(sorted(check_fraction("within", w, high_open=True,
                                         hint="an accuracy difference: 0.005 = 0.5 percentage "
                                              "points") for w in within))
    table = analysis.surface(frame, setting)
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(1.0 + 0.9 * table.shape[1], 0.8 + 0.7 * table.shape[0]))
    sns.heatmap(table * 100, ax=ax, annot=annot, fmt=".1f", cmap=cmap,
                vmin=None if vmin is None else vmin * 100, vmax=None if vmax is None else vmax * 100,
                cbar_kws={"label": "accuracy (%)"},
                xticklabels=[f"{v:.0e}" for v in table.columns],
                yticklabels=[f"{v:.0e}" for v in table.index])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    lr_grid, wd_grid = np.array(table.columns, dtype=float), np.array(table.index, dtype=float)
    to_x, to_y = _log_to_cell(lr_grid), _log_to_cell(wd_grid)   # rows run largest first
    tops = [analysis.top_configs(frame, tolerance, setting=setting) for tolerance in within]
    for tolerance, marker, top in zip(within, ["*", "."], tops):
        if marker == ".":   # the dots mark only what the stars do not
            top = top[~top.index.isin(tops[0].index)]
        # markers sit in the cell's upper-right corner, clear of the written accuracy
        ax.scatter([to_x(v) + 0.32 for v in np.log10(top.lr)],
                   [to_y(v) - 0.3 for v in np.log10(top.weight_decay)],
                   marker=marker, s=90 if marker == "*" else 40, color="white",
                   edgecolors="black", linewidths=0.5, zorder=3,
                   label=f"within {tolerance:.1%} of best")
    if ellipse:
        e = analysis.confidence_ellipse(frame, within[-1], setting=setting)
        # the covariance in cell units (y runs downwards), redrawn from its eigenvectors
        scale = np.diag([1 / _cell_step(lr_grid), 1 / _cell_step(wd_grid)])
        values, vectors = np.linalg.eigh(scale @ e.covariance @ scale)
        values = np.clip(values, 0, None)
        angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
        ax.add_patch(EllipsePatch((to_x(e.center[0]), to_y(e.center[1])),
                                  2 * e.n_std * math.sqrt(values[1]),
                                  2 * e.n_std * math.sqrt(values[0]), angle=angle, fill=False,
                                  edgecolor="red", linewidth=2, zorder=4,
                                  label=f"{e.mass:.2%} ellipse"))
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18), fontsize="small", frameon=False,
                  ncol=2)
    if title is None:
        title = (str(setting) if setting is not None
                 else str(frame.setting.iloc[0]) if "setting" in frame.columns else "")
    ax.set_title(title)
    return ax


def plot_heatmaps(frame, settings: Iterable[str] | None = None, *, ncols: int = 3,
                  within=(0.005, 0.01), shared_scale: bool = False, **kwargs):
    """One :func:`plot_heatmap` per setting, side by side; returns the Figure.

    The legend is drawn under the first plot only; ``shared_scale=True`` gives
    all plots one colour scale.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"setting": ["base"] * 2 + ["pruned"] * 2,
        ...                   "lr": [1e-3, 1e-2] * 2, "weight_decay": 1e-4,
        ...                   "accuracy": [0.9, 0.5, 0.8, 0.79]})
        >>> fig = plot_heatmaps(f)
        >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
        ['base', 'pruned']
        >>> close(fig.axes[0])
    """
    from .sensitivity import analysis

    settings = analysis.settings(frame) if settings is None else list(settings)
    check_int("ncols", ncols, low=1)
    ncols = min(ncols, len(settings))
    nrows = -(-len(settings) // ncols)
    n_lr, n_wd = frame.lr.nunique(), frame.weight_decay.nunique()
    fig, axes = _pyplot().subplots(nrows, ncols, squeeze=False,
                             figsize=(ncols * (1.5 + 0.9 * n_lr), nrows * (1.3 + 0.7 * n_wd)))
    if shared_scale:
        kwargs.setdefault("vmin", float(frame.accuracy.min()))
        kwargs.setdefault("vmax", float(frame.accuracy.max()))
    for i, (ax, s) in enumerate(zip(axes.flat, settings)):
        plot_heatmap(frame, s, ax=ax, within=within, legend=(i == 0), **kwargs)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


