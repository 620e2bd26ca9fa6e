"""Cutting: slice the tensors of a conv, its BatchNorm and the layer that reads it.

Given the filters to remove per conv (from :mod:`.selection`, or chosen by
hand), :func:`remove_filters` returns a physically smaller copy: the conv's
weight rows and bias entries, the BatchNorm's weight, bias and running
statistics, and the next layer's input channels go. A Linear after a flatten
reads ``H * W`` inputs per channel; they go together. How the filters were
scored plays no part here.

Example:
    >>> import pruning_kit as pk
    >>> small = remove_filters(pk.models.lenet5(), {"conv2": range(40)}, torch.zeros(1, 1, 28, 28))
    >>> small.conv2.out_channels, small.fc1.in_features
    (10, 160)
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .._checks import InvalidParameterError
from .coupling import ChannelUnit, channel_units, check_removed
from .masking import copy_without_masks

__all__ = ["remove_filters"]


def _keep_of(removed: torch.Tensor, channels: int) -> torch.Tensor:
    keep = torch.ones(channels, dtype=torch.bool)
    keep[removed] = False
    return keep.nonzero().flatten()


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(value.clone(), requires_grad=old.requires_grad))
    else:
        setattr(module, name, value.clone())   # a buffer (BatchNorm running statistics)


def _cut_outputs(unit: ChannelUnit, keep: torch.Tensor) -> None:
    conv = unit.producer
    out_dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    _set(conv, "weight", conv.weight.data.index_select(out_dim, keep))
    if conv.bias is not None:
        _set(conv, "bias", conv.bias.data[keep])
    conv.out_channels = len(keep)
    bn = unit.batchnorm
    if bn is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name, None) is not None:
                _set(bn, name, getattr(bn, name).data[keep])
        bn.num_features = len(keep)


def _cut_inputs(unit: ChannelUnit, keep: torch.Tensor) -> None:
    layer = unit.consumer
    if isinstance(layer, nn.Linear):
        # after flattening N x C x H x W, channel c feeds inputs c*H*W ... (c+1)*H*W - 1
        w = layer.weight.data.view(layer.out_features, unit.channels, unit.positions)
        _set(layer, "weight", w[:, keep].reshape(layer.out_features, -1))
        layer.in_features = len(keep) * unit.positions
    else:
        in_dim = 0 if isinstance(layer, nn.ConvTranspose2d) else 1
        _set(layer, "weight", layer.weight.data.index_select(in_dim, keep))
        layer.in_channels = len(keep)


def remove_filters(model: nn.Module, removed: dict, example_input: torch.Tensor, *,
                   units: list[ChannelUnit] | None = None) -> nn.Module:
    """A new model without the given output filters (the cutting step alone).

    For each named conv, its filters (weights and bias), the matching
    BatchNorm channels (weight, bias, running mean and variance) and the next
    layer's input channels are sliced away. For a Linear after flattening,
    each channel's ``H * W`` inputs go together.

    Args:
        model: a plain stack (see :func:`~.coupling.channel_units`); not changed.
        removed: ``{conv name: indices of the output filters to remove}``.
        example_input: a batch the model accepts.
        units: the model's :func:`~.coupling.channel_units` when already traced
            (then ``example_input`` is not used).

    Returns:
        a deep copy of ``model`` with smaller layers, in the original's train/eval mode.

    Raises:
        InvalidParameterError: a name that is no prunable conv, an index out of
            range, or every filter of a conv (at least one must stay).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet5()
        >>> small = remove_filters(model, {"conv1": [0, 1, 2]}, torch.zeros(1, 1, 28, 28))
        >>> small.conv1.weight.shape, small.conv2.weight.shape, model.conv1.out_channels
        (torch.Size([17, 1, 5, 5]), torch.Size([50, 17, 5, 5]), 20)
    """
    if units is None:
        units = channel_units(model, example_input)
    by_name = {u.name: u for u in units}
    keeps = {}
    for name, idx in check_removed(removed, units).items():
        idx = idx.unique()
        channels = by_name[name].channels
        if len(idx) >= channels:
            raise InvalidParameterError(f"removed[{name!r}] removes all {channels} filters; keep at "
                                        "least one")
        keeps[name] = _keep_of(idx, channels)
    small = copy_without_masks(model)
    modules = dict(small.named_modules())
    for name, keep in keeps.items():
        unit = by_name[name]
        copied = replace(unit, producer=modules[unit.name],   # the same unit, in the copy
                         batchnorm=modules.get(unit.batchnorm_name),
                         consumer=modules[unit.consumer_name])
        _cut_inputs(copied, keep)    # first: it reads the producer's channel count
        _cut_outputs(copied, keep)
    return small
