"""The glue: L1 filter pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

:func:`l1_filter_prune` only connects the other modules: it scores and chooses
the filters (:mod:`.importance`, :mod:`.selection`), follows which tensors
share them (:mod:`.coupling`), cuts them (:mod:`.surgery`) and checks the cut
against the dense model with the same channels zeroed (:mod:`.masking`).
Networks that are no plain stack go to Torch-Pruning's dependency graph
(:mod:`.dependency_graph`).

Example:
    >>> import pruning_kit as pk
    >>> small = l1_filter_prune(pk.models.lenet5(), 0.5, torch.zeros(1, 1, 28, 28))
    >>> small.conv1.out_channels, small.conv2.out_channels
    (10, 25)
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .._checks import InvalidParameterError, check_choice
from .coupling import (ChannelUnit, NotPlainStackError, channel_units, check_example_input,
                       check_unmasked_model)
from .dependency_graph import dependency_graph_prune
from .importance import importance_fn
from .masking import FilterMask
from .selection import SCORE_BY, STRATEGIES, check_ignored_layers, check_ratio, select_filters
from .surgery import remove_filters

__all__ = ["l1_filter_prune", "BACKENDS"]

BACKENDS = ("auto", "plain", "torch_pruning")
"""The ``backend`` values of :func:`l1_filter_prune`."""


def l1_filter_prune(model: nn.Module, ratio: float = 0.5, example_input: torch.Tensor = None, *,
                    ratios: dict | None = None, importance="l1", ignored_layers: Iterable[str] = (),
                    backend: str = "auto", verify: bool = True, score_by: str = "filter",
                    strategy: str = "independent") -> nn.Module:
    """Remove the lowest-L1 output filters of every conv and return a new, smaller model.

    Li et al. 2017: in each prunable conv, the ``round(ratio * out_channels)``
    filters with the smallest sum of absolute weights are removed, with the
    matching BatchNorm channels and the next layer's input channels. The output
    layer is never pruned. The original model is not changed.

    Plain stacks (LeNet-5, Conv-2/4/6, VGG, the autoencoder) are cut by the
    readable code of this package; networks whose channels are coupled by
    residual additions (ResNet) are pruned by Torch-Pruning's dependency graph
    (its group L1 importance: coupled layers are scored together).

    Args:
        model: the network to prune.
        ratio: fraction of output filters removed from each conv, in [0, 1).
        example_input: a batch the model accepts (traced to find coupled layers).
        ratios: ``{layer or container name: ratio}`` overriding ``ratio`` per conv
            (non-uniform pruning); ``ratio=0`` with ``ratios={"encoder": 0.6}``
            prunes only inside ``model.encoder``.
        importance: ``"l1"``, ``"l2"``, ``"random"`` or ``weight -> scores``.
        ignored_layers: names of convs to leave whole.
        backend: ``"auto"`` (plain code when possible, else Torch-Pruning),
            ``"plain"`` (error if the model is not a plain stack) or
            ``"torch_pruning"``.
        verify: plain path only: check that the cut model equals the dense one
            with the removed channels zeroed (catches layers between a conv and
            its consumer that do not map 0 to 0, or a channel-mixing reshape).
        score_by, strategy: plain path only, as in
            :func:`~.selection.select_filters`: score a channel by its filter
            (``"filter"``) or by the next layer's weights that read it
            (``"next_layer"``); Li et al.'s ``"independent"`` or ``"greedy"``
            scoring across layers.

    Returns:
        a new ``nn.Module`` with fewer channels, in ``model``'s train/eval mode.

    Raises:
        ValueError: ratio outside [0, 1), a name in ``ratios`` that is no
            prunable conv, a model without convs, or one neither path can prune.

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> small = l1_filter_prune(pk.models.resnet(20), 0.5, x)   # via Torch-Pruning
        >>> small(x).shape, pk.metrics.count_params(small) < 0.4 * 272474
        (torch.Size([1, 10]), True)
        >>> ae = pk.models.autoencoder()
        >>> small = l1_filter_prune(ae, 0.0, torch.zeros(1, 1, 28, 28), ratios={"encoder": 0.6})
        >>> [m.out_channels for m in small.encoder if isinstance(m, nn.Conv2d)]
        [6, 13, 3]
    """
    check_unmasked_model(model)
    check_example_input(example_input)
    check_ratio(ratio, "ratio")
    check_choice("backend", backend, BACKENDS)
    ignored_layers = check_ignored_layers(model, ignored_layers)
    importance_fn(importance)
    check_choice("score_by", score_by, SCORE_BY)
    check_choice("strategy", strategy, STRATEGIES)
    plain_error = None
    if backend != "torch_pruning":
        try:
            units = channel_units(model, example_input)
        except NotPlainStackError as error:
            plain_error = error
            if backend == "plain":
                raise NotPlainStackError(f"{type(model).__name__} is not a plain stack: {error}. "
                                         "Use backend='auto' or 'torch_pruning' to prune it with "
                                         "Torch-Pruning's dependency graph") from error
    if backend == "torch_pruning" or plain_error is not None:
        if (score_by, strategy) != ("filter", "independent"):
            raise InvalidParameterError(
                f"score_by={score_by!r} and strategy={strategy!r} are implemented for plain stacks; "
                f"{type(model).__name__} goes through Torch-Pruning's dependency graph, which scores "
                "each coupled group of filters together: use score_by='filter', "
                "strategy='independent' (the defaults)")
        return dependency_graph_prune(model, ratio, example_input, ratios=ratios,
                                      importance=importance, ignored_layers=ignored_layers)
    if not any(u.prunable for u in units):
        raise InvalidParameterError(f"{type(model).__name__} has no prunable conv layers (convs followed by "
                                    "another layer); filter pruning removes conv filters (use pk.prune for "
                                    "fully connected networks)")
    removed = select_filters(model, ratio, ratios=ratios, importance=importance, units=units,
                             score_by=score_by, strategy=strategy)
    for name in ignored_layers:
        for conv in list(removed):
            if conv == name or conv.startswith(name + "."):
                del removed[conv]
    removed = {name: idx for name, idx in removed.items() if len(idx)}
    small = remove_filters(model, removed, example_input, units=units)
    if verify:
        _verify_cut(model, small, units, removed, example_input)
    return small


def _verify_cut(model: nn.Module, small: nn.Module, units: list[ChannelUnit], removed: dict,
                example_input: torch.Tensor) -> None:
    """The cut model must equal the dense model with the removed channels zeroed.

    The zeroing hooks go on ``model`` itself for one forward pass (no copy of a
    large model) and come off again; its weights are never touched.
    """
    mask = FilterMask(model, removed, example_input, alpha=0.0, units=units)
    modes = model.training, small.training
    try:
        model.eval()
        small.eval()
        with torch.no_grad():
            expected, got = model(example_input), small(example_input)
    finally:
        mask.remove()
        model.train(modes[0])
        small.train(modes[1])
    scale = expected.abs().max().item() + 1e-12
    if not torch.allclose(expected, got, rtol=1e-3, atol=1e-4 * scale):
        raise InvalidParameterError("after cutting, the model's outputs differ from the dense model "
                                    "with the removed channels zeroed: a layer between a conv and its "
                                    "consumer does not map 0 to 0 (e.g. a sigmoid), or the flatten is not "
                                    "channel-major. Pass verify=False to accept the cut anyway, or "
                                    "backend='torch_pruning'")
