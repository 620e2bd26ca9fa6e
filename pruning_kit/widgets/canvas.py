"""Where the explorers meet ipympl: which display to use, and two workarounds.

An explorer shows its figure either as a PNG in an ``ipywidgets.Image``
(``backend="image"``: works wherever ipywidgets does) or in ipympl's canvas
widget (``backend="ipympl"``: after ``%matplotlib widget``; it sends the
browser only the pixels that changed). :func:`check_backend` picks one.

ipympl needs three workarounds, each kept here with the reason next to it:

- ``import ipympl`` switches matplotlib's backend to its own, which would turn
  every later pyplot figure of the notebook into a widget: :func:`import_ipympl`
  puts the backend back.
- A canvas's size reaches the browser in one "resize" message; one sent before
  the browser has made the canvas's view is lost and the figure stays 0 x 0
  (seen in Voilà: voila-dashboards/voila#1319, "ipympl widget shows controls but
  no chart"). The canvas of :func:`quick_canvas` says its size once more.
- Until the browser has said "initialized", ipympl keeps the last frame in the
  synced trait ``_data_url``, which the browser uses as an image's address; ipympl
  0.10 stores the bare base64 text there, without ``data:image/png;base64,``, so
  the browser requests ``/iVBORw0KGgo...`` from the server and draws a broken
  image ("Error setting state: ... drawImage ... 'broken' state"). The canvas of
  :func:`quick_canvas` stores a real data URL.

That canvas also encodes its frames with :func:`pruning_kit.widgets.png.encode_png`
(see there for why).

Example:
    >>> check_backend("image"), check_backend("auto")    # tests run on matplotlib's Agg
    ('image', 'image')
"""

from __future__ import annotations

import asyncio
import base64
import functools
import sys

import numpy as np

from .._checks import InvalidParameterError, check_choice
from .png import encode_png

__all__ = ["BACKENDS", "IPYMPL_BACKENDS", "check_backend", "ipympl_active", "import_ipympl",
           "quick_canvas", "running_loop"]

BACKENDS = ("auto", "ipympl", "image")
IPYMPL_BACKENDS = ("module://ipympl.backend_nbagg", "widget", "ipympl")
RESEND_SIZE_AFTER_S = 1.0     # time for the browser to make the canvas's views


def running_loop():
    """The asyncio loop running now (a Jupyter kernel's), or ``None`` (plain Python, tests).

    Example:
        >>> running_loop() is None
        True
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def ipympl_active() -> bool:
    """Whether matplotlib's backend is ipympl's (``%matplotlib widget``), without resolving it.

    Example:
        >>> ipympl_active()       # the tests run on Agg
        False
    """
    import matplotlib

    getter = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    backend = getter() if getter else matplotlib.rcParams.get("backend")
    return isinstance(backend, str) and backend.lower() in IPYMPL_BACKENDS


def import_ipympl():
    """ipympl's backend module, imported without changing matplotlib's backend.

    ``import ipympl`` calls ``matplotlib.use("ipympl")`` when matplotlib is
    loaded, which would turn every later pyplot figure of the notebook into an
    ipympl widget. The explorers only need its canvas class, so the backend
    found before the import is put back.

    Returns:
        the module ``ipympl.backend_nbagg``; ``ImportError`` without ipympl.

    Example:
        >>> import matplotlib
        >>> before = matplotlib.rcParams._get_backend_or_none()
        >>> import_ipympl().Canvas.__name__, matplotlib.rcParams._get_backend_or_none() == before
        ('Canvas', True)
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


def check_backend(backend) -> str:
    """Check an explorer's ``backend`` argument and say which display it means.

    Args:
        backend: ``"image"``, ``"ipympl"``, or ``"auto"``: ipympl when it is
            matplotlib's active backend (``%matplotlib widget``), else image.

    Returns:
        ``"image"`` or ``"ipympl"``; ``"auto"`` without ipympl installed is
        ``"image"``, while ``"ipympl"`` without it raises.

    Example:
        >>> check_backend("svg")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: backend must be one of ('auto', 'ipympl', 'image'), got 'svg'
    """
    check_choice("backend", backend, BACKENDS)
    if backend == "image" or (backend == "auto" and not ipympl_active()):
        return "image"
    try:
        import_ipympl()
    except ImportError:
        if backend == "ipympl":
            raise InvalidParameterError("backend='ipympl' needs the ipympl package (pip install "
                                        "ipympl); use backend='image' for a plain PNG") from None
        return "image"
    return "ipympl"


@functools.lru_cache(maxsize=None)
def quick_canvas():
    """ipympl's canvas class, with both workarounds (ipympl is imported on first call).

    The subclass (``QuickCanvas``):

    - encodes frames with :func:`~pruning_kit.widgets.png.encode_png`. Its
      ``get_diff_image`` repeats matplotlib's (send the full frame, or only the
      pixels that changed since the last one) with the faster encoder; with a
      matplotlib whose canvas lacks the attributes it relies on, matplotlib's
      own method runs instead;
    - says its size once more after the browser's "initialized" message
      (voila-dashboards/voila#1319, see the module's docstring).

    Example:
        >>> quick_canvas().__name__, quick_canvas().__mro__[1] is import_ipympl().Canvas
        ('QuickCanvas', True)
    """
    Canvas = import_ipympl().Canvas
    if not all(hasattr(Canvas, name) for name in ("set_image_mode", "get_diff_image")):
        return Canvas
    state = ("_png_is_old", "_force_full", "_last_buff")    # matplotlib's, read by get_diff_image
    data_url = "data:image/png;base64,"

    class QuickCanvas(Canvas):
        def _handle_message(self, widget, content, buffers):
            super()._handle_message(widget, content, buffers)
            loop = running_loop()
            if content.get("type") == "initialized" and loop is not None:
                # The browser sizes a canvas view only when a "resize" message reaches it; one
                # that arrives before the view exists is lost and the figure stays 0 x 0 (seen
                # in Voilà, voila#1319). Say the size once more when the views have had time
                # to appear.
                loop.call_later(RESEND_SIZE_AFTER_S, self._resend_size)

        def _resend_size(self):
            _, _, width, height = self.figure.bbox.bounds
            self.manager.resize(width, height)

        def send_binary(self, data):
            # ipympl's own keeps the frame for a browser that has not said "initialized" yet as
            # bare base64 in _data_url, which the browser takes for a relative address
            # (see the module's docstring): the same, as a data URL.
            if getattr(self, "syncing_data_url", False) and hasattr(self, "_last_buff"):
                full = self._last_buff.view(np.uint8).reshape((*self._last_buff.shape, 4))
                self._data_url = data_url + base64.b64encode(encode_png(full)).decode("ascii")
            self.send({"data": '{"type": "binary"}'}, buffers=[data])

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
            return encode_png(output.view(np.uint8).reshape((*output.shape, 4)))

    return QuickCanvas
