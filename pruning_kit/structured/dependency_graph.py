"""Coupled networks: Torch-Pruning's dependency graph.

In a ResNet, a residual addition makes the convs of a stage share their output
channels; removing channel ``c`` means removing it from all of them at once.
Torch-Pruning (Fang et al. 2023, "DepGraph") traces such groups of coupled
tensors and prunes each group as one; :func:`dependency_graph_prune` hands it
our scoring functions (L1 as its group magnitude importance, any other summed
over the convs of a group). Plain stacks do not need this: :mod:`.surgery`
cuts them with code a student can read.

Example:
    >>> import pruning_kit as pk
    >>> x = torch.zeros(1, 3, 32, 32)
    >>> small = dependency_graph_prune(pk.models.resnet(20), 0.5, x)
    >>> small.conv1.out_channels, small(x).shape
    (8, torch.Size([1, 10]))
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from .._checks import InvalidParameterError
from .coupling import CONV_TYPES, check_example_input, check_unmasked_model, execution_order
from .importance import importance_fn, l1_filter_scores
from .masking import copy_without_masks
from .selection import check_ignored_layers, check_ratio, layer_ratios

__all__ = ["dependency_graph_prune"]


def _torch_pruning_importance(score: Callable):
    """Wrap a per-filter scoring function as a Torch-Pruning group importance."""
    import torch_pruning as tp

    class FilterScoreImportance(tp.importance.Importance):
        """Sum of ``score`` over the convs whose output channels the group removes."""

        @torch.no_grad()
        def __call__(self, group):
            total = None
            for i, (dep, idxs) in enumerate(group):
                layer = dep.layer
                # pruning functions are bound methods: compare with ==, not `is`
                if not isinstance(layer, CONV_TYPES) or \
                        dep.pruning_fn != tp.pruner.function.prune_conv_out_channels:
                    continue
                weight = layer.weight.transpose(0, 1) if layer.transposed else layer.weight
                scores = torch.as_tensor(score(weight.detach()))[idxs].float()
                root = torch.as_tensor(group[i].root_idxs)
                if total is None:
                    total = torch.zeros(len(idxs))
                total.scatter_add_(0, root, scores)
            return total

    return FilterScoreImportance()


def dependency_graph_prune(model: nn.Module, ratio: float = 0.5,
                           example_input: torch.Tensor = None, *, ratios: dict | None = None,
                           importance="l1", ignored_layers: Iterable[str] = ()) -> nn.Module:
    """Remove output filters with Torch-Pruning, which keeps coupled channels consistent.

    The path :func:`~pruning_kit.structured.l1_filter_prune` takes for networks
    that are no plain stack (``backend="torch_pruning"``, or ``"auto"`` on a
    ResNet). The last conv or Linear the forward pass runs is the output layer
    and is never pruned.

    Args:
        model: the network; not changed.
        ratio, example_input, ratios, importance, ignored_layers: as in
            :func:`~pruning_kit.structured.l1_filter_prune`.

    Returns:
        a new, smaller ``nn.Module`` in ``model``'s train/eval mode.

    Raises:
        InvalidParameterError: a bad argument, a model without convs, or one
            Torch-Pruning cannot prune (its error is quoted).

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.zeros(1, 1, 28, 28)
        >>> dependency_graph_prune(pk.models.lenet5(), 0.5, x).conv2.out_channels
        25
    """
    check_unmasked_model(model)
    check_example_input(example_input)
    check_ratio(ratio, "ratio")
    ignored = check_ignored_layers(model, ignored_layers)
    score = importance_fn(importance)
    import torch_pruning as tp

    small = copy_without_masks(model)
    order = [(n, m) for n, m in execution_order(small, example_input)
             if isinstance(m, (nn.Linear,) + CONV_TYPES)]
    if not any(isinstance(m, CONV_TYPES) for _, m in order):
        raise InvalidParameterError(f"{type(model).__name__} has no conv layers; filter pruning removes conv "
                                    "filters (use pk.prune for fully connected networks)")
    modules = dict(small.named_modules())
    output_name = order[-1][0]
    ignored_modules = [modules[output_name]] + [modules[n] for n in ignored]
    conv_names = [n for n, m in order if isinstance(m, CONV_TYPES) and n != output_name]
    layer_ratio = layer_ratios(small, conv_names, [output_name], ratio, ratios=ratios)
    ratio_dict = {modules[n]: r for n, r in layer_ratio.items() if ratios is not None}
    if score is l1_filter_scores:
        imp = tp.importance.GroupMagnitudeImportance(p=1)
    else:
        imp = _torch_pruning_importance(score)
    was_training = small.training
    small.eval()
    try:
        pruner = tp.pruner.BasePruner(
            small, example_input, importance=imp, pruning_ratio=float(ratio),
            pruning_ratio_dict=ratio_dict or None, ignored_layers=ignored_modules,
            root_module_types=[nn.modules.conv._ConvNd])
        pruner.step()
        with torch.no_grad():
            small(example_input)
    except Exception as error:
        raise InvalidParameterError(f"Torch-Pruning could not prune {type(model).__name__}: "
                                    f"{type(error).__name__}: {error}") from error
    finally:
        small.train(was_training)
    return small
