"""What every explorer shares: a live figure, controls whose moves never pile up, styling.

- :class:`LiveFigure`: a matplotlib figure drawn once, then updated by
  redrawing only its moving artists (blitting), shown in an ipympl canvas or
  as a PNG in an ``ipywidgets.Image``.
- :class:`Explorer`: controls + readout + live figure. A control's move
  updates at once, or, when updates arrive faster than they run, once with the
  latest value (moves in between are skipped).
- :class:`ModelExplorer`: an explorer of a trained model: checks the arguments
  the model explorers share, keeps a private copy (the user's model is never
  changed) and a fixed evaluation batch.
- Styling for a lecture hall: :data:`FONT`, the colours, :func:`style_axes`,
  and small helpers the explorers' readouts and pictures use.

Example:
    >>> live = LiveFigure((2, 1), "image")
    >>> ax = live.figure.add_subplot()
    >>> (line,) = ax.plot([0, 1], [0, 1])
    >>> _ = live.animate(line)
    >>> live.refresh()                        # first call: a full draw
    >>> line.set_ydata([1, 0]); live.refresh()   # then: background + moving artists
    >>> bytes(live.widget.value[:4]), live.drawn
    (b'\\x89PNG', True)
"""

from __future__ import annotations

import html
import io
import math
import time
import warnings
from contextlib import contextmanager

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_int, check_model
from ..data import as_dataset, subset
from ..models import prunable
from ..prune import prunable_layers
from ..train import num_threads
from .canvas import check_backend, import_ipympl, quick_canvas, running_loop
from .png import encode_png

__all__ = ["Explorer", "ModelExplorer", "LiveFigure", "style_axes", "percent", "short_count",
           "mask_picture", "private_copy", "COALESCE_S", "DPI", "FONT", "KEPT", "PRUNED",
           "ACCENT", "CURVE_COLORS", "READOUT_STYLE", "CONTROLS_CSS"]

# Moves closer together than this share one update: long enough for messages that queued up
# during an update to land (they arrive back to back), short because a browser sends a slider's
# next value only once the kernel is idle again, and every millisecond of rest is one between
# the hand and the readout.
COALESCE_S = 0.002
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


# ------------------------------------------------------------------------------ helpers


def percent(x: float) -> str:
    """A fraction as a readout shows it.

    Example:
        >>> percent(0.9123)
        '91.2%'
    """
    return f"{100 * x:.1f}%"


def short_count(n: int) -> str:
    """A count in a few characters: ``266,610`` -> ``267k``.

    Example:
        >>> short_count(784), short_count(266_610), short_count(2_500_000)
        ('784', '267k', '2.5M')
    """
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n:,}"


def style_axes(ax, title: str, xlabel: str = "", ylabel: str = "") -> None:
    """Title, labels and ticks in :data:`FONT`'s sizes; no top or right spine.

    Example:
        >>> ax = Figure().add_subplot()
        >>> style_axes(ax, "weights", "value", "count")
        >>> ax.get_title(), ax.title.get_fontsize()
        ('weights', 15.0)
    """
    ax.set_title(title, fontsize=FONT["title"])
    ax.set_xlabel(xlabel, fontsize=FONT["label"])
    ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    ax.spines[["top", "right"]].set_visible(False)


def mask_picture(keep: torch.Tensor) -> tuple[np.ndarray, str]:
    """An image of a 0/1 mask and what it shows.

    A Linear layer on square images is shown per input pixel (the fraction of
    its connections kept); any other mask as a matrix, one row per output.

    Example:
        >>> picture, what = mask_picture(torch.ones(300, 784))
        >>> picture.shape, what
        ((28, 28), 'kept per input pixel')
        >>> mask_picture(torch.ones(20, 1, 5, 5))[0].shape
        (20, 25)
    """
    keep = keep.float()
    if keep.dim() == 2:
        side = math.isqrt(keep.shape[1])
        if side * side == keep.shape[1] and side >= 4:
            return keep.mean(0).reshape(side, side).numpy(), "kept per input pixel"
    return keep.reshape(keep.shape[0], -1).numpy(), "mask (rows: outputs)"


def private_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with any pruning masks baked in, in eval mode, without gradients.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> copy = private_copy(model)
        >>> copy is model, copy.training, copy.fc1.weight.requires_grad
        (False, False, False)
    """
    from .. import prune

    copy = prune.finalize(prune.clone(model)).eval()
    for p in copy.parameters():
        p.requires_grad_(False)
    return copy


# -------------------------------------------------------------------------- live figure


class LiveFigure:
    """A matplotlib figure drawn once, then updated by redrawing only its moving artists.

    The static part (axes, ticks, labels, legends) is rendered once and kept as
    a background bitmap; :meth:`refresh` restores it and draws the artists
    registered with :meth:`animate` on top (blitting); nothing is cleared or
    re-created. With ``backend="ipympl"`` the figure lives in an ipympl canvas
    (:func:`~pruning_kit.widgets.canvas.quick_canvas`), which sends the browser
    only the pixels that changed; with ``"image"`` an ``ipywidgets.Image`` gets
    a PNG (:func:`~pruning_kit.widgets.png.encode_png`).

    Args:
        figsize: the figure's size in inches (at :data:`DPI` dots per inch).
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``
            (:func:`~pruning_kit.widgets.canvas.check_backend`).

    Attributes:
        figure: the matplotlib ``Figure``.
        widget: what shows it: the ipympl canvas, or an ``ipywidgets.Image``.
        backend: ``"ipympl"`` or ``"image"``.
    """

    def __init__(self, figsize: tuple, backend: str):
        self.backend = check_backend(backend)
        self.figure = Figure(figsize=figsize, dpi=DPI, facecolor="white")
        if self.backend == "ipympl":
            FigureManager = import_ipympl().FigureManager
            canvas = quick_canvas()(self.figure)
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

    @property
    def drawn(self) -> bool:
        """Whether the figure has had its first full draw."""
        return self._background is not None

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

    def invalidate(self) -> None:
        """The static part changed (a legend entry, a label): the next refresh redraws it all."""
        self._background = None

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
            self.widget.value = encode_png(np.asarray(canvas.buffer_rgba())[:, :, :3])

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        with io.BytesIO() as out:
            self.figure.savefig(out, format="png")
            return out.getvalue()


# ----------------------------------------------------------------------------- explorer


class Explorer:
    """Controls + readout + live figure, with updates that never pile up.

    A subclass sets the class attribute ``figsize``, calls
    ``super().__init__(backend)`` once its arguments are checked, draws its
    figure on ``self.figure`` (registering moving artists with
    ``self.live_figure.animate``), then calls :meth:`_start` with its controls
    and first settings. It defines:

    - ``_settings_from_controls() -> dict``: the settings the controls show;
    - ``_show_settings(settings)``: move the controls to ``settings``;
    - ``_compute(**settings) -> dict``: apply the settings, move the artists,
      return the numbers shown;
    - ``_readout(result) -> str``: the readout line, HTML;
    - ``update(...)``: check its arguments, then ``return self._update(settings)``.

    Attributes:
        figure, live_figure, figure_widget: the matplotlib figure, its
            :class:`LiveFigure`, and the widget showing it.
        readout: an ``ipywidgets.HTML`` line with the numbers.
        results: every result so far, oldest first.
        coalesce_s: moves closer together than this (seconds) share one update.

    Example:
        >>> class Counter(Explorer):
        ...     figsize = (2, 1)
        ...     def __init__(self):
        ...         super().__init__("image")
        ...         self.slider = widgets.IntSlider(value=0, max=9)
        ...         self._text = self.live_figure.animate(self.figure.text(0.5, 0.5, ""))
        ...         self._start([self.slider], {"n": 0})
        ...     def _settings_from_controls(self): return {"n": self.slider.value}
        ...     def _show_settings(self, settings): self.slider.value = settings["n"]
        ...     def _compute(self, n): self._text.set_text(str(n)); return {"n": n}
        ...     def _readout(self, r): return f"n = {r['n']}"
        ...     def update(self, n=None): return self._update(self._current(n=n))
        >>> ex = Counter()
        >>> ex.slider.value = 3        # outside an event loop, a move updates at once
        >>> ex.results[-1]["n"], ex.update(n=5)["n"], ex.slider.value
        (3, 5, 5)
    """

    figsize: tuple = (10, 5)
    coalesce_s = COALESCE_S

    def __init__(self, backend: str):
        self.live_figure = LiveFigure(self.figsize, backend)
        self.figure = self.live_figure.figure
        self.figure_widget = self.live_figure.widget
        self.readout = widgets.HTML()
        self.readout.add_class("pk-readout")
        self.results: list[dict] = []
        self._controls: list = []
        self._last_settings: dict = {}
        self._quiet = False
        self._pending = False
        self._last_end = -math.inf
        self._widget = None

    # ---- wiring
    def _start(self, controls: list, settings: dict) -> None:
        """Watch ``controls`` (in display order) and apply the first ``settings`` (no redraw)."""
        self._controls = list(controls)
        for control in self._controls:
            control.observe(self._on_change, names="value")
        self._update(settings, render=False)

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
        loop = running_loop()
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
        # The numbers go out first, the redrawn figure right after: the readout reaches the
        # browser one redraw sooner. It shows the time to its numbers; the result's "ms"
        # includes the redraw.
        result["ms"] = (time.perf_counter() - start) * 1e3
        self.readout.value = f"<div style='{READOUT_STYLE}'>{self._readout(result)}</div>"
        if render:
            self.live_figure.refresh()
        result["ms"] = (time.perf_counter() - start) * 1e3
        self._last_settings = dict(settings)
        self.results.append(dict(result))
        return result

    def _update(self, settings: dict, render: bool = True) -> dict:
        """Move the controls to ``settings`` (quietly), apply them, redraw; the result."""
        with self._quietly():
            self._show_settings(settings)
        result = self._apply(settings, render)
        self._last_end = time.perf_counter()
        return result

    def _current(self, **given) -> dict:
        """The settings shown now, with those ``given`` (not None) in their place."""
        return {**self._last_settings, **{k: v for k, v in given.items() if v is not None}}

    # ---- display
    @property
    def widget(self) -> widgets.VBox:
        """The whole explorer as one widget: controls, readout, figure."""
        if not self.live_figure.drawn:     # first drawn when first shown
            self.live_figure.refresh()
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
        return self.live_figure.png()


class ModelExplorer(Explorer):
    """An explorer of a trained model: a private copy, evaluated on a fixed batch.

    Checks the arguments every model explorer takes, builds the figure, then keeps:

    - ``_model``: a copy of ``model`` with any masks baked in, in eval mode,
      without gradients (:func:`private_copy`): the user's model is never changed;
    - ``layer_names`` (its ``nn.Linear``/``nn.Conv2d`` layers), ``_weights``
      (``{name: the copy's weight}``, which updates may change in place) and
      ``_dense`` (``{name: that weight as it was}``);
    - ``_x``, ``_y``: a fixed, class-stratified batch of ``eval_size`` test
      examples (all of them when ``test`` is smaller), and ``dense_accuracy``
      on it. Where ``test_optional`` is True, ``test=None`` leaves these None.

    Args:
        model: a trained network with at least one ``nn.Linear``/``nn.Conv2d``.
        test: evaluation data, a ``TensorData`` or ``(images, labels)``.
        eval_size: a positive int.
        seed: a non-negative int; seeds the evaluation subset.
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``.

    Example:
        >>> import pruning_kit as pk
        >>> _, test = pk.data.load("digits")
        >>> ex = ModelExplorer(pk.models.lenet_300_100(in_features=64), test, eval_size=100)
        >>> ex.layer_names, len(ex._y), 0 <= ex.dense_accuracy <= 1
        (['fc1', 'fc2', 'fc3'], 100, True)
    """

    test_optional = False

    def __init__(self, model: nn.Module, test, *, eval_size: int = 1000, seed: int = 0,
                 backend: str = "auto"):
        check_model(model)
        if test is not None or not self.test_optional:
            test = as_dataset(test)
        check_int("eval_size", eval_size, low=1)
        self.seed = check_int("seed", seed, low=0)
        prunable_layers(model)                       # a model with none fails here, not later
        super().__init__(backend)
        self._model = private_copy(model)
        layers = prunable(self._model)
        self.layer_names = [name for name, _ in layers]
        self._weights = {name: layer.weight for name, layer in layers}
        self._dense = {name: w.detach().clone() for name, w in self._weights.items()}
        self._x = self._y = self.dense_accuracy = None
        if test is not None:
            data = subset(test, eval_size, seed=seed) if eval_size < len(test) else test
            self._x, self._y = data.images, data.labels
            self.dense_accuracy = self._accuracy()

    def _accuracy(self, model: nn.Module | None = None) -> float:
        """Accuracy of ``model`` (default: the private copy as it is now) on the batch."""
        model = self._model if model is None else model
        with torch.inference_mode(), num_threads(1):
            return (model(self._x).argmax(1) == self._y).float().mean().item()
