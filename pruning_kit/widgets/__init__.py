"""Live explorers for lectures: move a slider, and the plots answer at once.

Five explorers, each a small ipywidgets app around one matplotlib figure, one
module each:

- :func:`sparsity_explorer` (``sparsity.py``): prune a trained model from 0 to
  99% with one of four criteria and watch accuracy, the weight histogram,
  per-layer sparsity, the first layer's mask and the accuracy-vs-sparsity curve.
- :func:`bits_explorer` (``bits.py``): quantize the weights to 1-8 bits, per
  tensor or per channel, affine or symmetric; weights snap to the levels.
- :func:`ticket_explorer` (``tickets.py``): step through the rounds of
  iterative magnitude pruning (lottery tickets).
- :func:`filter_explorer` (``filters.py``): remove a fraction of the filters of
  a CNN and see parameters, MACs and measured latency shrink.
- :func:`grid_explorer` (``grid.py``): a learning-rate x weight-decay accuracy
  grid, one heatmap per pruning level.

Each ``*_explorer`` is its explorer's class (``sparsity_explorer is
SparsityExplorer``). What they share lives beside them: ``base.py`` (the
:class:`Explorer` base, its live figure, styling), ``canvas.py`` (choosing the
display, and the ipympl workarounds), ``png.py`` (a fast PNG encoder);
``cache.py`` (:func:`trained_model`) keeps a demo's trained network on disk, so a
live demo opens in seconds the second time.

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

from .base import Explorer, LiveFigure, ModelExplorer
from .bits import GRANULARITIES, SCHEMES, BitsExplorer, bits_explorer
from .cache import trained_model
from .canvas import BACKENDS
from .filters import FilterExplorer, filter_explorer
from .grid import GridExplorer, grid_explorer
from .sparsity import METHODS, SparsityExplorer, sparsity_explorer
from .tickets import TicketExplorer, ticket_explorer

__all__ = ["sparsity_explorer", "bits_explorer", "ticket_explorer", "filter_explorer",
           "grid_explorer", "SparsityExplorer", "BitsExplorer", "TicketExplorer",
           "FilterExplorer", "GridExplorer", "METHODS", "BACKENDS", "GRANULARITIES", "SCHEMES",
           "Explorer", "ModelExplorer", "LiveFigure", "trained_model"]
