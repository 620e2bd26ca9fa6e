"""A description of every figure a lesson draws, for readers who can't see it (the book's alt text).

:func:`describe` reads a matplotlib figure the way a sighted reader skims it: its
title, then each panel's title, what is plotted against what (the axis labels),
what kind of plot it is, and what the legend names. Loaded into the kernel that
executes a lesson (``tools/execute_lessons.py`` starts it with
``--InteractiveShellApp.extensions=figure_alt``), it adds that description to the
metadata of every figure the inline backend shows, as ``{"image/png": {"alt":
...}}``; ``tools/build_book.py`` turns it into the figure's ``alt`` attribute.

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> ax = fig.add_subplot()
    >>> _ = ax.plot([0, 1], [1, 0], label="magnitude")
    >>> _ = ax.set(title="Accuracy vs sparsity", xlabel="sparsity (%)", ylabel="accuracy (%)")
    >>> _ = ax.legend()
    >>> describe(fig)
    'Figure: Accuracy vs sparsity: a line plot of accuracy (%) against sparsity (%); legend: magnitude.'
"""

from __future__ import annotations

import re
from collections import Counter

MAX_LEGEND = 8          # legend entries named before "and N more"


def _clean(text: str) -> str:
    """Plain text from a matplotlib label: mathtext's $...$ and backslashes dropped."""
    text = re.sub(r"\$([^$]*)\$", lambda m: m.group(1).replace("\\", ""), text or "")
    return " ".join(text.split())


def _kind(ax) -> str:
    """What an axes shows: a line plot, bars, a histogram, an image, points, a table of text."""
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    if any(isinstance(a, (AxesImage, QuadMesh)) for a in ax.get_children()):
        return "a heat map" if ax.collections or ax.texts else "an image"
    # bars and data lines, not the bands and reference lines of axvspan / axhline (drawn
    # partly in axes coordinates)
    bars = [p for p in ax.patches
            if isinstance(p, Rectangle) and p.get_data_transform() == ax.transData]
    lines = [line for line in ax.get_lines() if line.get_transform() == ax.transData]
    if bars:
        widths = Counter(round(b.get_width(), 9) for b in bars)
        even = widths.most_common(1)[0][1] == len(bars)          # bins of one width
        return "a histogram" if even and len(bars) > 10 else "a bar chart"
    if any(isinstance(c, PathCollection) for c in ax.collections) and not lines:
        return "a scatter plot"
    if lines or ax.collections:
        return "a line plot"
    return "a panel"


def _panel(ax) -> str:
    if getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>":
        label = _clean(ax.get_ylabel() or ax.get_xlabel())
        return f"a colour scale{': ' + label if label else ''}"
    parts = []
    title = _clean(ax.get_title()) or _clean(ax.get_title("left"))
    xlabel, ylabel = _clean(ax.get_xlabel()), _clean(ax.get_ylabel())
    kind = _kind(ax)
    if xlabel and ylabel:
        what = f"{kind} of {ylabel} against {xlabel}"
    elif xlabel or ylabel:
        what = f"{kind} of {xlabel or ylabel}"
    else:
        what = kind
    parts.append(f"{title}: {what}" if title else what)
    legend = ax.get_legend()
    if legend is not None:
        names = [_clean(t.get_text()) for t in legend.get_texts() if t.get_text().strip()]
        if names:
            more = f" and {len(names) - MAX_LEGEND} more" if len(names) > MAX_LEGEND else ""
            parts.append("legend: " + "; ".join(names[:MAX_LEGEND]) + more)
    return "; ".join(parts)


def describe(fig) -> str:
    """One or a few sentences saying what ``fig`` shows, from its titles, labels and legends."""
    axes = [ax for ax in fig.get_axes() if ax.get_visible() and ax.axison or ax.get_images()]
    title = _clean(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) else ""
    panels = [_panel(ax) for ax in axes]
    if not panels:
        return f"Figure: {title}." if title else "Figure."
    head = f"Figure: {title}. " if title else "Figure: "
    if len(panels) == 1:
        return f"{head}{panels[0]}."
    return head + f"{len(panels)} panels. " + " ".join(
        f"{i}) {p}." for i, p in enumerate(panels, 1))


def _metadata_with_alt(original):
    def fetch(fig):
        metadata = original(fig) or {}
        try:
            metadata.setdefault("image/png", {})["alt"] = describe(fig)
        except Exception:            # a description must never stop a lesson
            pass
        return metadata
    return fetch


def load_ipython_extension(ipython):
    """Describe every figure the inline backend shows (``%load_ext figure_alt``)."""
    from matplotlib_inline import backend_inline

    if not getattr(backend_inline._fetch_figure_metadata, "describes", False):
        fetch = _metadata_with_alt(backend_inline._fetch_figure_metadata)
        fetch.describes = True
        backend_inline._fetch_figure_metadata = fetch
