"""Live explorers for lectures: move a slider, and the plots answer at once.

Five explorers, each a small ipywidgets app around one matplotlib figure:

- :func:`sparsity_explorer`: prune a trained model from 0 to 99% with one of
  four criteria and watch accuracy, the weight histogram, per-layer sparsity,
  the first layer's mask and the accuracy-vs-sparsity curve.
- :func:`bits_explorer`: quantize the weights to 1-8 bits, per tensor or per
  channel, affine or symmetric; weights snap to the levels.
- :func:`ticket_explorer`: step through the rounds of iterative magnitude
  pruning (lottery tickets).
- :func:`filter_explorer`: remove a fraction of the filters of a CNN and see
  parameters, MACs and measured latency shrink.
- :func:`grid_explorer`: a learning-rate x weight-decay accuracy grid, one
  heatmap per pruning level.

Why a slider move is fast (the budget is 100 ms, in front of a class):

- Everything that does not depend on the slider is computed once, when the
  explorer is built: the order in which each criterion prunes the weights
  (ranks from sorted magnitudes, a fixed random permutation, SNIP scores), the
  evaluation batch, the histogram bins. A move then costs one comparison per
  weight (``rank >= k``) and one forward pass on the evaluation batch.
- The figure is drawn once. Its moving parts (bars, curves, image, labels)
  are *animated* artists: an update restores the saved background and redraws
  only them (blitting); nothing is cleared or re-created. The picture goes
  to the browser as a PNG in an ``ipywidgets.Image`` (works in JupyterLab,
  Voilà, VS Code), or, after ``%matplotlib widget``, through an ipympl
  canvas, which ships only the pixels that changed.
- Moves that arrive while an update runs do not queue up: the next update
  starts from the slider's latest value, and the moves in between are skipped.

The user's model is never changed: explorers work on a private copy.

Every explorer has ``.update(...)`` (returns a dict with the numbers shown,
including ``"ms"``, the time of the update with its redraw), keeps its
controls as attributes (``ex.sparsity_slider``, ...) and shows itself with
``display(ex)`` or ``ex.widget``.

Example:
    >>> import torch, pruning_kit as pk
    >>> _, test = pk.data.load("digits")
    >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
    >>> ex = pk.widgets.sparsity_explorer(model, test, methods=("global", "random"))
    >>> r = ex.update(sparsity=0.5, method="global")
    >>> r["method"], r["sparsity"], r["compression"], 0 <= r["accuracy"] <= 1
    ('global', 0.5, 2.0, True)
    >>> ex.sparsity_slider.value, pk.prune.sparsity(model)   # the user's model is untouched
    (50, 0.0)
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
import math
import numbers
import struct
import sys
import time
import warnings
import zlib
from contextlib import contextmanager

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ._checks import InvalidParameterError, check_model
from .data import as_dataset, subset
from .models import prunable
from .train import num_threads

__all__ = ["sparsity_explorer", "bits_explorer", "ticket_explorer", "filter_explorer",
           "grid_explorer", "SparsityExplorer", "BitsExplorer", "TicketExplorer",
           "FilterExplorer", "GridExplorer", "METHODS", "BACKENDS", "GRANULARITIES", "SCHEMES"]

METHODS = ("global", "local", "random", "snip")
METHOD_LABELS = {"global": "magnitude, global", "local": "magnitude, per layer",
                 "random": "random, per layer", "snip": "SNIP, global"}
BACKENDS = ("auto", "ipympl", "image")
GRANULARITIES = ("per-tensor", "per-channel")
SCHEMES = ("affine", "symmetric")

COALESCE_S = 0.03      # moves closer together than this share one update
DPI = 100
FONT = {"title": 15, "label": 14, "tick": 12, "legend": 12, "text": 12}
KEPT, PRUNED, ACCENT = "#1f77b4", "#f2a7a0", "#d62728"
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                "#17becf", "#7f7f7f")
READOUT_STYLE = "font-size: 20px; line-height: 1.5; padding: 4px 0"
# Controls large enough to read from the back of a lecture hall.
CONTROLS_CSS = """<style>
.pk-explorer .widget-label, .pk-explorer .widget-readout, .pk-explorer select,
.pk-explorer .widget-toggle-button { font-size: 17px; }
.pk-explorer .widget-readout { min-width: 3em; }
</style>"""


# ----------------------------------------------------------------------------- checks


def _check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise InvalidParameterError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an int in [{low}, {high}], got "
                                    f"{type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise InvalidParameterError(f"{name} must be an int in [{low}, {high}], got {value}")
    return int(value)


def _check_fraction(name: str, value, high: float, hint: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a number in [0, {high}], got "
                                    f"{type(value).__name__} {value!r}")
    if not 0 <= value <= high:
        raise InvalidParameterError(f"{name} must be a number in [0, {high}]{hint}, got {value!r}")
    return float(value)


IPYMPL_BACKENDS = ("module://ipympl.backend_nbagg", "widget", "ipympl")


def _ipympl_active() -> bool:
    """Whether matplotlib's backend is ipympl's (``%matplotlib widget``), without resolving it."""
    import matplotlib

    getter = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    backend = getter() if getter else matplotlib.rcParams.get("backend")
    return isinstance(backend, str) and backend.lower() in IPYMPL_BACKENDS


def _import_ipympl():
    """ipympl's backend module, imported without changing matplotlib's backend.

    ``import ipympl`` calls ``matplotlib.use(ipympl)`` when matplotlib is loaded,
    which would turn every later pyplot figure of the notebook into an ipympl
    widget; the explorers only need its canvas class, so the backend is put back.
    """
    import matplotlib

    if "ipympl.backend_nbagg" in sys.modules:
        return sys.modules["ipympl.backend_nbagg"]
    before = dict.__getitem__(matplotlib.rcParams, "backend")    # raw: may be "auto"
    import ipympl.backend_nbagg as module

    if dict.__getitem__(matplotlib.rcParams, "backend") != before:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.switch_backend(before)
        else:
            dict.__setitem__(matplotlib.rcParams, "backend", before)
    return module


def _check_backend(backend) -> str:
    _check_choice("backend", backend, BACKENDS)
    if backend == "image" or (backend == "auto" and not _ipympl_active()):
        return "image"
    try:
        _import_ipympl()
    except ImportError:
        if backend == "ipympl":
            raise InvalidParameterError("backend='ipympl' needs the ipympl package (pip install ipympl); "
                                        "use backend='image' for a plain PNG") from None
        return "image"
    return "ipympl"


def _private_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with any pruning masks baked in, in eval mode, without gradients."""
    from . import prune

    copy = prune.finalize(prune.clone(model)).eval()
    for p in copy.parameters():
        p.requires_grad_(False)
    return copy


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def _short(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n:,}"


def _style_axes(ax, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(title, fontsize=FONT["title"])
    ax.set_xlabel(xlabel, fontsize=FONT["label"])
    ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    ax.spines[["top", "right"]].set_visible(False)


# ------------------------------------------------------------------------ live figure


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _png(pixels: np.ndarray, level: int = 1) -> bytes:
    """Encode an ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA) uint8 array as PNG, quickly.

    No row filters and zlib level 1: about four times faster than Pillow's
    default for the mostly flat pictures of a plot (the bytes only travel to
    the browser on the same machine), which is most of the cost of a frame.

    Example:
        >>> from PIL import Image
        >>> pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
        >>> np.array_equal(np.asarray(Image.open(io.BytesIO(_png(pixels)))), pixels)
        True
    """
    height, width, channels = pixels.shape
    rows = np.zeros((height, width * channels + 1), np.uint8)    # filter byte 0: none
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + _png_chunk(b"IEND", b""))


@functools.lru_cache(maxsize=None)
def _ipympl_canvas():
    """ipympl's canvas class, with frames encoded by :func:`_png` when it is safe to.

    The override repeats matplotlib's ``get_diff_image`` (send the full frame,
    or only the pixels that changed) with the faster encoder; with a matplotlib
    whose canvas lacks the attributes it relies on, ipympl's own class is used.
    """
    Canvas = _import_ipympl().Canvas
    if not all(hasattr(Canvas, name) for name in ("set_image_mode", "get_diff_image")):
        return Canvas
    state = ("_png_is_old", "_force_full", "_last_buff")

    class QuickCanvas(Canvas):
        def _handle_message(self, widget, content, buffers):
            super()._handle_message(widget, content, buffers)
            loop = _running_loop()
            if content.get("type") == "initialized" and loop is not None:
                # The browser sizes a canvas view only when a "resize" message reaches it; one
                # that arrives before the view exists is lost and the figure stays 0 x 0 (seen
                # in Voilà). Say the size once more when the views have had time to appear.
                loop.call_later(1.0, self._resend_size)

        def _resend_size(self):
            _, _, width, height = self.figure.bbox.bounds
            self.manager.resize(width, height)

        def get_diff_image(self):
            if not all(hasattr(self, name) for name in state):
                return super().get_diff_image()
            if not self._png_is_old:
                return None
            pixels = np.asarray(self.get_renderer().buffer_rgba())
            frame = pixels.view(np.uint32).squeeze(2)
            if (self._force_full or frame.shape != self._last_buff.shape
                    or (pixels[:, :, 3] != 255).any()):
                self.set_image_mode("full")
                output = frame
            else:
                self.set_image_mode("diff")
                output = np.where(frame != self._last_buff, frame, 0)
            self._last_buff = frame.copy()
            self._force_full = False
            self._png_is_old = False
            return _png(output.view(np.uint8).reshape((*output.shape, 4)))

    return QuickCanvas


class _LiveFigure:
    """A matplotlib figure drawn once, then updated by redrawing only its moving artists.

    The static part (axes, ticks, labels, legends) is rendered once and kept as
    a background bitmap; :meth:`refresh` restores it and draws the artists
    registered with :meth:`animate` on top (blitting). With ``backend="ipympl"``
    the figure lives in an ipympl canvas, which sends the browser only the
    pixels that changed; with ``"image"`` an ``ipywidgets.Image`` gets a PNG.
    """

    def __init__(self, figsize: tuple, backend: str):
        self.backend = _check_backend(backend)
        self.figure = Figure(figsize=figsize, dpi=DPI, facecolor="white")
        if self.backend == "ipympl":
            FigureManager = _import_ipympl().FigureManager
            canvas = _ipympl_canvas()(self.figure)
            with warnings.catch_warnings():
                # ipympl's toolbar passes the canvas on to traitlets, which warns about it
                warnings.filterwarnings("ignore", category=DeprecationWarning,
                                        module="traitlets")
                FigureManager(canvas, 0)    # gives the canvas its manager; pyplot never sees it
            canvas.header_visible = False
            canvas.footer_visible = False
            canvas.toolbar_visible = False
            canvas.resizable = False
            self.widget = canvas
        else:
            FigureCanvasAgg(self.figure)
            self.widget = widgets.Image(format="png")
        self.widget.add_class("pk-figure")
        self._animated: list = []
        self._background = None
        self._renderer = None
        self.figure.canvas.mpl_connect("draw_event", self._on_draw)

    def animate(self, artist):
        """Register ``artist`` as moving: drawn on every refresh, never baked in the background."""
        artist.set_animated(True)
        self._animated.append(artist)
        return artist

    def _on_draw(self, event) -> None:
        # Runs inside every full draw (ours, the browser's resize or DPI change, savefig):
        # keep the fresh background and put the moving artists back on top.
        canvas = self.figure.canvas
        renderer = event.renderer
        if isinstance(canvas, FigureCanvasAgg) and renderer is canvas.get_renderer():
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._renderer = renderer
        for artist in self._animated:
            artist.draw(renderer)

    def refresh(self, full: bool = False) -> None:
        """Show the current state of the artists (``full=True`` redraws everything)."""
        canvas = self.figure.canvas
        if full or self._background is None or canvas.get_renderer() is not self._renderer:
            canvas.draw()
        else:
            canvas.restore_region(self._background)
            for artist in self._animated:
                artist.draw(self._renderer)
            if self.backend == "ipympl":
                canvas.blit(self.figure.bbox)
        if self.backend == "image":
            self._send_png()

    def _send_png(self) -> None:
        self.widget.value = _png(np.asarray(self.figure.canvas.buffer_rgba())[:, :, :3])

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        with io.BytesIO() as out:
            self.figure.savefig(out, format="png")
            return out.getvalue()


# --------------------------------------------------------------------------- explorer


class _Explorer:
    """Controls + readout + live figure, with updates that never pile up.

    Subclasses define ``_controls`` (the widgets, in display order),
    ``_settings_from_controls()``, ``_show_settings(settings)`` (set the
    controls quietly), ``_compute(**settings) -> dict`` (update the artists)
    and ``_readout(result) -> str`` (HTML).
    """

    coalesce_s = COALESCE_S

    def __init__(self, figsize: tuple, backend: str):
        self._panel = _LiveFigure(figsize, backend)
        self.figure = self._panel.figure
        self.figure_widget = self._panel.widget
        self.readout = widgets.HTML()
        self.readout.add_class("pk-readout")
        self.results: list[dict] = []
        self._last_settings = None
        self._quiet = False
        self._pending = False
        self._last_end = -math.inf
        self._widget = None

    # ---- wiring
    def _watch(self) -> None:
        for control in self._controls:
            control.observe(self._on_change, names="value")

    @contextmanager
    def _quietly(self):
        self._quiet, old = True, self._quiet
        try:
            yield
        finally:
            self._quiet = old

    def _on_change(self, change) -> None:
        """A control moved: update now, or soon if an update has just run."""
        if self._quiet:
            return
        loop = _running_loop()
        if loop is None:                 # plain Python (scripts, tests): update at once
            self._update_from_controls()
            return
        if self._pending:                # an update is scheduled: it will read the latest value
            return
        wait = self.coalesce_s - (time.perf_counter() - self._last_end)
        if wait <= 0:
            self._update_from_controls()
        else:
            # Moves that queued up while the last update ran arrive now, one after the
            # other; let them all land, then run once with the latest value.
            self._pending = True
            loop.call_later(wait, self._run_pending)

    def _run_pending(self) -> None:
        self._pending = False
        self._update_from_controls()

    def _update_from_controls(self) -> None:
        try:
            settings = self._settings_from_controls()
            if settings != self._last_settings:
                self._apply(settings)
        except Exception as error:  # a widget callback has nowhere else to report to
            self.readout.value = (f"<div style='{READOUT_STYLE}; color: {ACCENT}'>"
                                  f"{type(error).__name__}: {html.escape(str(error))}</div>")
        finally:
            self._last_end = time.perf_counter()

    def _apply(self, settings: dict, render: bool = True) -> dict:
        start = time.perf_counter()
        result = self._compute(**settings)
        if render:
            self._panel.refresh()
        result["ms"] = (time.perf_counter() - start) * 1e3
        self._last_settings = dict(settings)
        self.results.append(dict(result))
        self.readout.value = f"<div style='{READOUT_STYLE}'>{self._readout(result)}</div>"
        return result

    def _update(self, settings: dict, render: bool = True) -> dict:
        with self._quietly():
            self._show_settings(settings)
        result = self._apply(settings, render)
        self._last_end = time.perf_counter()
        return result

    # ---- display
    @property
    def widget(self) -> widgets.VBox:
        """The whole explorer as one widget: controls, readout, figure."""
        if self._panel._background is None:     # first drawn when first shown
            self._panel.refresh()
        if self._widget is None:
            box = widgets.VBox([widgets.HTML(CONTROLS_CSS), widgets.HBox(self._controls),
                                self.readout, self.figure_widget])
            box.add_class("pk-explorer")
            self._widget = box
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes (for saving or for a static page)."""
        return self._panel.png()


def _mask_picture(keep: torch.Tensor) -> tuple[np.ndarray, str]:
    """An image of a 0/1 mask: per input pixel for a Linear layer on square images."""
    keep = keep.float()
    if keep.dim() == 2:
        side = math.isqrt(keep.shape[1])
        if side * side == keep.shape[1] and side >= 4:
            return keep.mean(0).reshape(side, side).numpy(), "kept per input pixel"
    return keep.reshape(keep.shape[0], -1).numpy(), "mask (rows: outputs)"


# ------------------------------------------------------------------ sparsity explorer


def _ranks(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Position of every entry in the ascending order of ``scores`` (all tensors as one)."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    order = torch.argsort(flat, stable=True)
    rank = torch.empty(len(flat), dtype=torch.int32)
    rank[order] = torch.arange(len(flat), dtype=torch.int32)
    return [r.reshape(s.shape) for r, s in zip(rank.split([s.numel() for s in scores]), scores)]


class SparsityExplorer(_Explorer):
    """Prune a trained model live; see :func:`sparsity_explorer`."""

    def __init__(self, model, test, methods=METHODS, *, eval_size: int = 1000, snip_data=None,
                 seed: int = 0, backend: str = "auto"):
        check_model(model)
        test = as_dataset(test)
        if isinstance(methods, str) or not isinstance(methods, (tuple, list)) or not methods:
            raise InvalidParameterError(f"methods must be a non-empty tuple of names from {METHODS}, "
                                        f"got {methods!r}")
        for m in methods:
            _check_choice("each method", m, METHODS)
        if len(set(methods)) != len(methods):
            raise InvalidParameterError(f"methods has duplicates: {methods!r}")
        _check_int("eval_size", eval_size, 1, 10**9)
        _check_int("seed", seed, 0, 2**63 - 1)
        snip_data = as_dataset(snip_data) if snip_data is not None else None
        _check_backend(backend)
        if not prunable(model):
            raise InvalidParameterError("model has no nn.Linear or nn.Conv2d layer to prune")
        super().__init__((13, 7.2), backend)
        self.methods = tuple(methods)

        self._model = _private_copy(model)
        layers = prunable(self._model)
        self.layer_names = [name for name, _ in layers]
        self._weights = {name: layer.weight for name, layer in layers}
        self._dense = {name: w.detach().clone() for name, w in self._weights.items()}
        self._sizes = {name: w.numel() for name, w in self._dense.items()}
        self.total = sum(self._sizes.values())
        data = subset(test, eval_size, seed=seed) if eval_size < len(test) else test
        self._x, self._y = data.images, data.labels
        self.dense_accuracy = self._accuracy()

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
                gen = torch.Generator().manual_seed(seed)
                ranks = [torch.randperm(v.numel(), generator=gen).to(torch.int32).reshape(v.shape)
                         for v in values]
            else:
                from . import prune

                source = snip_data if snip_data is not None else data
                n = min(len(source), 500)
                scores = prune.snip_scores(self._model, source.images[:n], source.labels[:n])
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
        self._controls = [self.sparsity_slider, self.method_dropdown]
        self._build_figure(flat)
        self._watch()
        self._update({"sparsity": 0.0, "method": self.methods[0]}, render=False)

    # ---- figure
    def _build_figure(self, flat: torch.Tensor) -> None:
        fig, live = self.figure, self._panel
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
        _style_axes(ax_hist, "weights (all layers)", "weight value", "count")

        # per-layer sparsity bars
        y = np.arange(len(self.layer_names))
        self._layer_bars = [live.animate(bar) for bar in
                            ax_layers.barh(y, np.zeros(len(y)), height=0.6, color=KEPT)]
        labels = [f"{n} ({_short(self._sizes[n])})" for n in self.layer_names]
        ax_layers.set_yticks(y, labels)
        ax_layers.set_ylim(len(y) - 0.5, -0.5)
        ax_layers.set_xlim(0, 100)
        self._layer_texts = [live.animate(ax_layers.text(0, i, "", va="center",
                                                         fontsize=FONT["text"]))
                             for i in range(len(y))] if len(y) <= 12 else []
        _style_axes(ax_layers, "sparsity per layer", "pruned %")

        # first layer's mask
        first = self.layer_names[0]
        picture, what = _mask_picture(torch.ones_like(self._dense[first]))
        self._mask_image = live.animate(ax_mask.imshow(
            picture, vmin=0, vmax=1, cmap="viridis", interpolation="nearest",
            aspect="equal" if picture.shape[0] == picture.shape[1] else "auto"))
        colorbar = fig.colorbar(self._mask_image, ax=ax_mask, fraction=0.05, pad=0.03)
        colorbar.set_label("kept", fontsize=FONT["label"])
        colorbar.ax.tick_params(labelsize=FONT["tick"])
        ax_mask.set_xticks([])
        ax_mask.set_yticks([])
        ax_mask.set_title(f"{first}: {what}", fontsize=FONT["title"])

        # accuracy vs sparsity, filled in as the slider moves
        ax_curve.axhline(100 * self.dense_accuracy, color="grey", ls="--", lw=1.5,
                         label=f"dense {_percent(self.dense_accuracy)}")
        self._lines = {}
        for i, method in enumerate(self.methods):
            (line,) = ax_curve.plot([], [], "o-", ms=5, lw=2, color=CURVE_COLORS[i],
                                    label=METHOD_LABELS[method])
            self._lines[method] = live.animate(line)
        (self._current,) = ax_curve.plot([], [], "o", ms=14, mfc="none", mec="black", mew=2.5)
        live.animate(self._current)
        ax_curve.set_xlim(0, 100)
        ax_curve.set_ylim(0, 100)
        ax_curve.legend(fontsize=FONT["legend"], loc="lower left", frameon=False)
        _style_axes(ax_curve, "accuracy vs sparsity", "pruned %", "accuracy %")

    # ---- computation
    def _accuracy(self) -> float:
        with torch.inference_mode(), num_threads(1):
            return (self._model(self._x).argmax(1) == self._y).float().mean().item()

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
        self._mask_image.set_data(_mask_picture(keep[self.layer_names[0]])[0])
        points = self._curve[method]
        points[round(100 * sparsity, 2)] = 100 * accuracy
        xs = sorted(points)
        self._lines[method].set_data(xs, [points[x] for x in xs])
        self._current.set_data([100 * sparsity], [100 * accuracy])
        return {"sparsity": sparsity, "method": method, "accuracy": accuracy,
                "compression": self.total / kept if kept else math.inf, "kept": kept}

    def _readout(self, r: dict) -> str:
        return (f"accuracy <b class='pk-accuracy'>{_percent(r['accuracy'])}</b> "
                f"<span style='color:#777'>(dense {_percent(self.dense_accuracy)})</span>"
                f" &nbsp;·&nbsp; compression <b class='pk-compression'>{r['compression']:.1f}×"
                f"</b> &nbsp;·&nbsp; {r['kept']:,} of {self.total:,} weights kept"
                f" &nbsp;·&nbsp; <span class='pk-ms' style='color:#777'>{r['ms']:.0f} ms</span>")

    # ---- controls
    def _settings_from_controls(self) -> dict:
        return {"sparsity": self.sparsity_slider.value / 100, "method": self.method_dropdown.value}

    def _show_settings(self, settings: dict) -> None:
        self.sparsity_slider.value = round(100 * settings["sparsity"])
        self.method_dropdown.value = settings["method"]

    def update(self, sparsity: float | None = None, method: str | None = None) -> dict:
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
        current = self._last_settings or {}
        if sparsity is None:
            sparsity = current.get("sparsity", 0.0)
        sparsity = _check_fraction("sparsity", sparsity, 0.99,
                                   " (a fraction: 0.9 prunes 90% of the weights)")
        method = current.get("method", self.methods[0]) if method is None else method
        _check_choice("method", method, self.methods)
        return self._update({"sparsity": sparsity, "method": method})

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """The current masks, ``{layer name: float 0/1 tensor}`` (1 = kept)."""
        return {name: mask.float() for name, mask in self._keep_now.items()}

    def __repr__(self) -> str:
        return (f"SparsityExplorer(methods={self.methods}, layers={self.layer_names}, "
                f"eval_size={len(self._y)}, backend={self._panel.backend!r})")


def sparsity_explorer(model: nn.Module, test, methods=METHODS, *, eval_size: int = 1000,
                      snip_data=None, seed: int = 0, backend: str = "auto") -> SparsityExplorer:
    """A slider that prunes a trained model live, for lectures.

    Shows accuracy and compression ratio, the weight histogram with the pruned
    part shaded (and, for global magnitude pruning, the threshold band), the
    sparsity of each layer, the first layer's mask (for a Linear layer on
    square images: the fraction of connections each input pixel keeps), and
    the accuracy-vs-sparsity curve of each criterion, filled in as the slider
    moves. Sparsity ``s`` prunes exactly ``round(s * n)`` weights of the ``n``
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

    Returns:
        A :class:`SparsityExplorer`: ``display(ex)`` shows it; ``ex.update(
        sparsity=0.9, method="global")`` drives it from code; its controls are
        ``ex.sparsity_slider`` (0-99, percent) and ``ex.method_dropdown``.

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
    return SparsityExplorer(model, test, methods, eval_size=eval_size, snip_data=snip_data,
                            seed=seed, backend=backend)


# ---------------------------------------------------------------------- bits explorer


def _fake_quantize(w: torch.Tensor, bits: int, granularity: str, scheme: str) -> torch.Tensor:
    """``w`` rounded to a ``bits``-bit grid and mapped back to real numbers."""
    from . import quant

    dim = 0 if granularity == "per-channel" else None
    if scheme == "affine":
        q, scale, zero_point = quant.quantize_affine(w, bits, dim=dim)
        return quant.dequantize_affine(q, scale, zero_point, dim=dim)
    if bits == 1:
        # The symmetric grid has no 1-bit version (its only level would be 0): use the
        # sign times the mean magnitude, as XNOR-Net does (Rastegari et al. 2016).
        magnitude = w.abs().reshape(w.shape[0], -1).mean(1) if dim == 0 else w.abs().mean()
        return magnitude.reshape(-1, *[1] * (w.dim() - 1)) * quant.binarize(w) if dim == 0 \
            else magnitude * quant.binarize(w)
    q, scale = quant.quantize_symmetric(w, bits, dim=dim)
    return quant.dequantize_symmetric(q, scale, dim=dim)


class BitsExplorer(_Explorer):
    """Quantize a trained model's weights live; see :func:`bits_explorer`."""

    def __init__(self, model, test, *, eval_size: int = 1000, seed: int = 0,
                 backend: str = "auto"):
        check_model(model)
        test = as_dataset(test)
        _check_int("eval_size", eval_size, 1, 10**9)
        _check_int("seed", seed, 0, 2**63 - 1)
        _check_backend(backend)
        if not prunable(model):
            raise InvalidParameterError("model has no nn.Linear or nn.Conv2d layer to quantize")
        super().__init__((13, 4.9), backend)
        self._model = _private_copy(model)
        layers = prunable(self._model)
        self.layer_names = [name for name, _ in layers]
        self._weights = {name: layer.weight for name, layer in layers}
        self._dense = {name: w.detach().clone() for name, w in self._weights.items()}
        self._norms = {name: float(w.double().norm()) for name, w in self._dense.items()}
        data = subset(test, eval_size, seed=seed) if eval_size < len(test) else test
        self._x, self._y = data.images, data.labels
        self.dense_accuracy = self._accuracy()
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
        self._controls = [self.bits_slider, self.granularity_toggle, self.scheme_toggle]
        self._build_figure()
        self._watch()
        self._update({"bits": 8, "granularity": "per-tensor", "scheme": "affine"}, render=False)

    def _accuracy(self) -> float:
        with torch.inference_mode(), num_threads(1):
            return (self._model(self._x).argmax(1) == self._y).float().mean().item()

    def _build_figure(self) -> None:
        fig, live = self.figure, self._panel
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
        _style_axes(ax_hist, f"{first} weights snap to levels", "weight value", "count (log)")

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
        _style_axes(ax_err, "weight error per layer", "‖w − ŵ‖ / ‖w‖")

        ax_curve.axhline(100 * self.dense_accuracy, color="grey", ls="--", lw=1.5,
                         label=f"float32 {_percent(self.dense_accuracy)}")
        self._lines = {}
        for i, (scheme, granularity) in enumerate(
                (s, g) for s in SCHEMES for g in GRANULARITIES):
            (line,) = ax_curve.plot([], [], "o-", ms=5, lw=2, color=CURVE_COLORS[i],
                                    label=f"{scheme}, {granularity}")
            self._lines[scheme, granularity] = live.animate(line)
        (self._current,) = ax_curve.plot([], [], "o", ms=14, mfc="none", mec="black", mew=2.5)
        live.animate(self._current)
        ax_curve.set_xlim(0.7, 8.3)
        ax_curve.set_xticks(range(1, 9))
        ax_curve.set_ylim(0, 100)
        ax_curve.legend(fontsize=FONT["legend"] - 1, loc="lower right", frameon=False)
        _style_axes(ax_curve, "accuracy vs bits", "bits per weight", "accuracy %")

    def _compute(self, bits: int, granularity: str, scheme: str) -> dict:
        errors, total_error, total_norm = {}, 0.0, 0.0
        with torch.no_grad():
            for name, dense in self._dense.items():
                w_hat = _fake_quantize(dense, bits, granularity, scheme)
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
        self._current.set_data([bits], [100 * accuracy])
        return {"bits": bits, "granularity": granularity, "scheme": scheme,
                "accuracy": accuracy, "error": error, "compression": 32 / bits}

    def _readout(self, r: dict) -> str:
        return (f"accuracy <b class='pk-accuracy'>{_percent(r['accuracy'])}</b> "
                f"<span style='color:#777'>(float32 {_percent(self.dense_accuracy)})</span>"
                f" &nbsp;·&nbsp; weight error <b class='pk-error'>{100 * r['error']:.2g}%</b>"
                f" &nbsp;·&nbsp; {r['bits']} bits: weights {r['compression']:.1f}× smaller"
                f" &nbsp;·&nbsp; <span class='pk-ms' style='color:#777'>{r['ms']:.0f} ms</span>")

    def _settings_from_controls(self) -> dict:
        return {"bits": self.bits_slider.value, "granularity": self.granularity_toggle.value,
                "scheme": self.scheme_toggle.value}

    def _show_settings(self, settings: dict) -> None:
        self.bits_slider.value = settings["bits"]
        self.granularity_toggle.value = settings["granularity"]
        self.scheme_toggle.value = settings["scheme"]

    def update(self, bits: int | None = None, granularity: str | None = None,
               scheme: str | None = None) -> dict:
        """Quantize the weights, evaluate, redraw; move the controls to match.

        Args:
            bits: bits per weight, an int in [1, 8]; ``None`` keeps the current value.
            granularity: ``"per-tensor"`` (one scale per layer) or ``"per-channel"``
                (one per output channel).
            scheme: ``"affine"`` (levels from min to max, with a zero point) or
                ``"symmetric"`` (levels symmetric around 0; at 1 bit, sign times
                the mean magnitude).

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
        current = self._last_settings
        bits = current["bits"] if bits is None else _check_int("bits", bits, 1, 8)
        granularity = current["granularity"] if granularity is None else granularity
        scheme = current["scheme"] if scheme is None else scheme
        _check_choice("granularity", granularity, GRANULARITIES)
        _check_choice("scheme", scheme, SCHEMES)
        return self._update({"bits": bits, "granularity": granularity, "scheme": scheme})

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The weights as quantized now, ``{layer name: tensor}`` (copies)."""
        return {name: w.detach().clone() for name, w in self._weights.items()}

    def __repr__(self) -> str:
        return (f"BitsExplorer(layers={self.layer_names}, eval_size={len(self._y)}, "
                f"backend={self._panel.backend!r})")


def bits_explorer(model: nn.Module, test, *, eval_size: int = 1000, seed: int = 0,
                  backend: str = "auto") -> BitsExplorer:
    """A bit-width slider that quantizes a trained model's weights live.

    The weights of every ``nn.Linear``/``nn.Conv2d`` layer are rounded to
    ``2**bits`` levels (``pk.quant.quantize_affine`` / ``quantize_symmetric``,
    then back to real numbers), per tensor or per output channel (``dim=0``);
    biases stay in float32. Shows accuracy, the first layer's histogram before
    and after (the weights pile up on the levels), the relative weight error
    of each layer, and accuracy vs bits, filled in as the controls move.

    Args:
        model: a trained network (never modified: the explorer works on a copy).
        test: evaluation data, a ``TensorData`` or ``(images, labels)``.
        eval_size: accuracy is measured on a fixed, class-stratified batch of
            this many test examples.
        seed: seeds the evaluation subset.
        backend: ``"auto"``, ``"ipympl"`` or ``"image"`` (see :func:`sparsity_explorer`).

    Returns:
        A :class:`BitsExplorer` with controls ``ex.bits_slider`` (1-8),
        ``ex.granularity_toggle`` and ``ex.scheme_toggle``, and ``ex.update(bits=,
        granularity=, scheme=)``.

    Example:
        >>> import torch, pruning_kit as pk
        >>> _ = torch.manual_seed(0); model = pk.models.lenet_300_100(in_features=64)
        >>> ex = bits_explorer(model, pk.data.load("digits")[1], backend="image")
        >>> r = ex.update(bits=4, granularity="per-channel")
        >>> r["compression"], 0 < r["error"] < 0.2
        (8.0, True)
    """
    return BitsExplorer(model, test, eval_size=eval_size, seed=seed, backend=backend)


# -------------------------------------------------------------------- ticket explorer


TICKET_FIELDS = ("round", "remaining", "accuracy", "early_stop_iteration", "masks")


def _field(record, name: str):
    if isinstance(record, dict):
        return record[name]
    return getattr(record, name)


def _optional_float(value) -> float:
    return math.nan if value is None else float(value)


class TicketExplorer(_Explorer):
    """Step through the rounds of iterative magnitude pruning; see :func:`ticket_explorer`."""

    def __init__(self, rounds, *, backend: str = "auto"):
        if isinstance(rounds, (str, bytes, dict)) or not hasattr(rounds, "__iter__"):
            raise InvalidParameterError("rounds must be a list of TicketRound (from pk.lottery.imp), got "
                                        f"{type(rounds).__name__}")
        rounds = list(rounds)
        if not rounds:
            raise InvalidParameterError("rounds is empty: pass the list pk.lottery.imp returns")
        for i, r in enumerate(rounds):
            missing = [f for f in TICKET_FIELDS if not (
                f in r if isinstance(r, dict) else hasattr(r, f))]
            if missing:
                raise InvalidParameterError(f"rounds[{i}] lacks {missing}; each round needs the fields "
                                            f"{TICKET_FIELDS} (as pk.lottery.TicketRound has)")
            if not isinstance(_field(r, "masks"), dict):
                raise InvalidParameterError(f"rounds[{i}].masks must be a dict {{layer name: mask}}, got "
                                            f"{type(_field(r, 'masks')).__name__}")
        _check_backend(backend)
        remaining = [float(_field(r, "remaining")) for r in rounds]
        # remaining is a fraction (1.0 = dense); a list in percent (100 = dense) is accepted too
        unit = 100.0 if max(remaining) > 1 else 1.0
        self.remaining = [100 * v / unit for v in remaining]
        if not all(0 < v <= 100 for v in self.remaining):
            raise InvalidParameterError(f"remaining must be the fraction of weights left, in (0, 1], got "
                                        f"{remaining}")
        super().__init__((13, 4.6), backend)
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
        self._controls = [self.play, self.round_slider]
        self._build_figure()
        self._watch()
        self._update({"index": 0}, render=False)

    def _picture(self, index: int) -> np.ndarray:
        masks = _field(self.rounds[index], "masks")
        mask = masks.get(self.layer)
        keep = torch.ones(self._shape) if mask is None else torch.as_tensor(mask) != 0
        return _mask_picture(keep)

    def _build_figure(self) -> None:
        fig, live = self.figure, self._panel
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
            _style_axes(ax, title, "weights remaining %", ylabel)
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
        return (f"round <b>{r['round']}</b> &nbsp;·&nbsp; {_percent(r['remaining'])} of weights "
                f"left &nbsp;·&nbsp; accuracy <b class='pk-accuracy'>{_percent(r['accuracy'])}"
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
            if round not in self.round_numbers:
                raise InvalidParameterError(f"round must be one of {self.round_numbers}, got {round!r}")
            index = self.round_numbers.index(round)
        return self._update({"index": index})


def ticket_explorer(rounds, *, backend: str = "auto") -> TicketExplorer:
    """Step through iterative magnitude pruning, round by round (lottery tickets).

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

    Returns:
        A :class:`TicketExplorer` with controls ``ex.round_slider`` (index into
        ``rounds``) and ``ex.play``, and ``ex.update(round=...)``.

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
    return TicketExplorer(rounds, backend=backend)


# -------------------------------------------------------------------- filter explorer


class FilterExplorer(_Explorer):
    """Remove filters from a CNN live; see :func:`filter_explorer`."""

    def __init__(self, model, example_input, *, test=None, max_ratio: float = 0.9,
                 step: float = 0.1, repeats: int = 10, eval_size: int = 1000, seed: int = 0,
                 backend: str = "auto"):
        from . import metrics

        check_model(model)
        if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
            raise InvalidParameterError("example_input must be a batched tensor (N x C x H x W) the model "
                                        f"accepts, got {getattr(example_input, 'shape', example_input)!r}")
        test = as_dataset(test) if test is not None else None
        _check_fraction("max_ratio", max_ratio, 0.99)
        _check_fraction("step", step, 1.0)
        if not 0 < step <= max_ratio:
            raise InvalidParameterError(f"step must be in (0, max_ratio={max_ratio}], got {step!r}")
        _check_int("repeats", repeats, 1, 10**6)
        _check_int("eval_size", eval_size, 1, 10**9)
        _check_backend(backend)
        super().__init__((9, 4.8), backend)
        self._model = _private_copy(model)
        self._input = example_input
        self._repeats = repeats
        self.dense_params = metrics.count_params(self._model)
        self.dense_macs = metrics.macs(self._model, example_input)
        if test is not None:
            data = subset(test, eval_size, seed=seed) if eval_size < len(test) else test
            self._x, self._y = data.images, data.labels
            self.dense_accuracy = self._accuracy(self._model)
        else:
            self._x = self._y = None
            self.dense_accuracy = None
        self.ratios = [round(i * step, 6) for i in range(math.floor(max_ratio / step + 1e-9) + 1)]
        self._cache = {}

        self.ratio_slider = widgets.SelectionSlider(
            options=[(f"{100 * r:g}%", r) for r in self.ratios], value=0.0,
            description="filters removed", continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="480px"))
        self.ratio_slider.add_class("pk-ratio-slider")
        self._controls = [self.ratio_slider]
        self._build_figure()
        self._watch()
        self._update({"ratio": 0.0}, render=False)

    def _accuracy(self, model) -> float:
        with torch.inference_mode(), num_threads(1):
            return (model(self._x).argmax(1) == self._y).float().mean().item()

    def _build_figure(self) -> None:
        ax = self.figure.add_axes((0.1, 0.14, 0.86, 0.74))
        self._labels = ["parameters", "MACs", "latency"]
        x = np.arange(len(self._labels))
        colors = [KEPT, KEPT, "#ff7f0e"]
        self._bars = [self._panel.animate(bar) for bar in ax.bar(x, np.zeros(len(x)),
                                                                 width=0.6, color=colors)]
        self._texts = [self._panel.animate(ax.text(i, 0, "", ha="center", va="bottom",
                                                   fontsize=FONT["text"] + 1))
                       for i in range(len(x))]
        ax.axhline(100, color="grey", ls="--", lw=1.5)
        ax.set_xticks(x, self._labels)
        ax.set_ylim(0, 130)
        _style_axes(ax, "pruned model, as % of the dense one", "", "% of dense")

    def _measure(self, ratio: float) -> dict:
        from . import metrics, structured

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
                    f"{_percent(r['accuracy'])}</b> (dense {_percent(self.dense_accuracy)})")
        return (f"{_short(r['params'])} parameters &nbsp;·&nbsp; {_short(r['macs'])} MACs"
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
        match = [r for r in self.ratios if isinstance(ratio, numbers.Real)
                 and not isinstance(ratio, bool) and abs(r - ratio) < 1e-9]
        if not match:
            raise InvalidParameterError(f"ratio must be one of {self.ratios}, got {ratio!r}")
        return self._update({"ratio": match[0]})


def filter_explorer(model: nn.Module, example_input: torch.Tensor, *, test=None,
                    max_ratio: float = 0.9, step: float = 0.1, repeats: int = 10,
                    eval_size: int = 1000, seed: int = 0,
                    backend: str = "auto") -> FilterExplorer:
    """A slider that removes filters (``pk.structured.l1_filter_prune``) and measures the result.

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

    Returns:
        A :class:`FilterExplorer` with ``ex.ratio_slider`` and ``ex.update(ratio=...)``.

    Example:
        >>> import torch, pruning_kit as pk
        >>> _ = torch.manual_seed(0); model = pk.models.lenet5()
        >>> ex = filter_explorer(model, torch.zeros(1, 1, 28, 28), max_ratio=0.5, step=0.5,
        ...                      repeats=2, backend="image")
        >>> r = ex.update(ratio=0.5)
        >>> r["macs"] < pk.metrics.macs(model, torch.zeros(1, 1, 28, 28)) / 2
        True
    """
    return FilterExplorer(model, example_input, test=test, max_ratio=max_ratio, step=step,
                          repeats=repeats, eval_size=eval_size, seed=seed, backend=backend)


# ---------------------------------------------------------------------- grid explorer


def _tick(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if value != 0 and (abs(value) < 0.01 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


class GridExplorer(_Explorer):
    """Heatmaps of a hyperparameter grid, one per pruning level; see :func:`grid_explorer`."""

    def __init__(self, frame, *, by: str = "pruning", x: str = "weight_decay", y: str = "lr",
                 value: str = "accuracy", backend: str = "auto"):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise InvalidParameterError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in (by, x, y, value) if c not in frame.columns]
        if missing:
            raise InvalidParameterError(f"frame lacks the columns {missing}; it has {list(frame.columns)} "
                                        "(name them with by=, x=, y=, value=)")
        if frame.empty:
            raise InvalidParameterError("frame is empty")
        if not pd.api.types.is_numeric_dtype(frame[value]):
            raise InvalidParameterError(f"column {value!r} must be numeric, got {frame[value].dtype}")
        _check_backend(backend)
        super().__init__((8.5, 6.4), backend)
        self.by, self.x, self.y, self.value = by, x, y, value
        self.levels = sorted(frame[by].unique().tolist())
        self.xs = sorted(frame[x].unique().tolist())
        self.ys = sorted(frame[y].unique().tolist())
        self._tables = {}
        for level in self.levels:
            part = frame[frame[by] == level]
            table = part.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
            self._tables[level] = table.reindex(index=self.ys, columns=self.xs).to_numpy(float)
        stacked = np.stack(list(self._tables.values()))
        finite = stacked[np.isfinite(stacked)]
        self._vmin, self._vmax = (float(finite.min()), float(finite.max())) if finite.size \
            else (0.0, 1.0)
        self._percent = 0 <= self._vmin and self._vmax <= 1

        self.level_slider = widgets.SelectionSlider(
            options=[(_tick(level), level) for level in self.levels], value=self.levels[0],
            description=by, continuous_update=True, style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"))
        self.level_slider.add_class("pk-level-slider")
        self._controls = [self.level_slider]
        self._build_figure()
        self._watch()
        self._update({"level": self.levels[0]}, render=False)

    def _build_figure(self) -> None:
        from matplotlib.patches import Rectangle

        fig, live = self.figure, self._panel
        ax = fig.add_axes((0.16, 0.13, 0.66, 0.76))
        cax = fig.add_axes((0.85, 0.13, 0.03, 0.76))
        self._image = live.animate(ax.imshow(
            self._tables[self.levels[0]], cmap="viridis", vmin=self._vmin, vmax=self._vmax,
            aspect="auto", interpolation="nearest", origin="lower"))
        bar = fig.colorbar(self._image, cax=cax)
        bar.set_label(self.value, fontsize=FONT["label"])
        bar.ax.tick_params(labelsize=FONT["tick"])
        ax.set_xticks(range(len(self.xs)), [_tick(v) for v in self.xs], rotation=30)
        ax.set_yticks(range(len(self.ys)), [_tick(v) for v in self.ys])
        self._cells = []
        if len(self.xs) * len(self.ys) <= 100:
            self._cells = [[live.animate(ax.text(j, i, "", ha="center", va="center",
                                                 fontsize=FONT["text"] - 1))
                            for j in range(len(self.xs))] for i in range(len(self.ys))]
        self._best = live.animate(ax.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False,
                                                         edgecolor=ACCENT, lw=3.5)))
        _style_axes(ax, "", self.x, self.y)
        self._title = live.animate(ax.set_title("", fontsize=FONT["title"]))

    def _compute(self, level) -> dict:
        table = self._tables[level]
        self._image.set_data(table)
        middle = (self._vmin + self._vmax) / 2
        for i, row in enumerate(self._cells):
            for j, text in enumerate(row):
                v = table[i, j]
                text.set_text("" if not np.isfinite(v) else
                              f"{100 * v:.1f}" if self._percent else f"{v:.3g}")
                text.set_color("black" if np.isfinite(v) and v > middle else "white")
        result = {"level": level, self.by: level}
        if np.isfinite(table).any():
            i, j = np.unravel_index(np.nanargmax(table), table.shape)
            self._best.set_xy((j - 0.5, i - 0.5))
            self._best.set_visible(True)
            result.update({self.value: float(table[i, j]), f"best_{self.y}": self.ys[i],
                           f"best_{self.x}": self.xs[j]})
        else:
            self._best.set_visible(False)
            result.update({self.value: math.nan, f"best_{self.y}": None,
                           f"best_{self.x}": None})
        self._title.set_text(f"{self.value} at {self.by} = {_tick(level)}")
        return result

    def _readout(self, r: dict) -> str:
        best = r[self.value]
        shown = _percent(best) if self._percent and math.isfinite(best) else f"{best:.4g}"
        return (f"{self.by} {_tick(r['level'])} &nbsp;·&nbsp; best {self.value} "
                f"<b class='pk-accuracy'>{shown}</b> at {self.y} = "
                f"{_tick(r[f'best_{self.y}']) if r[f'best_{self.y}'] is not None else '—'}, "
                f"{self.x} = "
                f"{_tick(r[f'best_{self.x}']) if r[f'best_{self.x}'] is not None else '—'}")

    def _settings_from_controls(self) -> dict:
        return {"level": self.level_slider.value}

    def _show_settings(self, settings: dict) -> None:
        self.level_slider.value = settings["level"]

    def update(self, level=None, **by_name) -> dict:
        """Show the grid of one level, given as ``level=`` or by the column's name.

        Returns:
            ``{"level", <by>: level, <value>: best value, "best_<y>", "best_<x>", "ms"}``.

        Example:
            >>> import pandas as pd
            >>> frame = pd.DataFrame({"pruning": [0, 0, 0.5, 0.5], "lr": [1e-3, 1e-2] * 2,
            ...                       "weight_decay": [0.0] * 4,
            ...                       "accuracy": [0.90, 0.95, 0.93, 0.91]})
            >>> r = grid_explorer(frame).update(pruning=0.5)
            >>> r["accuracy"], r["best_lr"]
            (0.93, 0.001)
        """
        unknown = set(by_name) - {self.by}
        if unknown:
            raise InvalidParameterError(f"update() takes level= or {self.by}=, got {sorted(unknown)}")
        if by_name:
            if level is not None:
                raise InvalidParameterError(f"give level= or {self.by}=, not both")
            level = by_name[self.by]
        if level is None:
            level = self._last_settings["level"]
        if level not in self.levels:
            raise InvalidParameterError(f"{self.by} must be one of {self.levels}, got {level!r}")
        level = self.levels[self.levels.index(level)]
        return self._update({"level": level})


def grid_explorer(frame, *, by: str = "pruning", x: str = "weight_decay", y: str = "lr",
                  value: str = "accuracy", backend: str = "auto") -> GridExplorer:
    """A slider over pruning levels showing the learning-rate x weight-decay heatmap of each.

    Repeated runs of the same cell (seeds) are averaged. Colours share one
    scale across levels, so the best region can be compared as the slider
    moves; the best cell is outlined.

    Args:
        frame: a pandas DataFrame with one row per run, e.g. columns ``lr``,
            ``weight_decay``, ``accuracy``, ``pruning``.
        by: the column the slider walks through.
        x, y: the heatmap's columns and rows.
        value: the column shown in colour (higher is better).
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``.

    Returns:
        A :class:`GridExplorer` with ``ex.level_slider`` and ``ex.update(pruning=...)``.

    Example:
        >>> import itertools, pandas as pd
        >>> rows = [{"pruning": p, "lr": lr, "weight_decay": wd, "accuracy": 0.9 - abs(lr - 0.01)}
        ...         for p, lr, wd in itertools.product([0.0, 0.5], [0.001, 0.01, 0.1], [0, 1e-4])]
        >>> ex = grid_explorer(pd.DataFrame(rows), backend="image")
        >>> ex.update(pruning=0.5)["best_lr"], ex.levels
        (0.01, [0.0, 0.5])
    """
    return GridExplorer(frame, by=by, x=x, y=y, value=value, backend=backend)
