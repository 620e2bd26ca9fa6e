"""Masking: fade filters out with a factor alpha instead of cutting them at once.

A :class:`FilterMask` multiplies chosen output channels by ``alpha`` with
forward hooks, after the BatchNorm when there is one. At ``alpha = 1`` the
model is untouched, at ``alpha = 0`` it computes exactly what the cut model
computes, so the channels can then be removed without changing the outputs
(the alpha schedule of :mod:`.alpha` walks from one to the other while
fine-tuning). The hooks are marked, so :func:`copy_without_masks` leaves them
behind when a model is copied for cutting.

Example:
    >>> import pruning_kit as pk
    >>> model = pk.models.lenet5()
    >>> mask = mask_filters(model, {"conv1": [0, 1]}, torch.zeros(1, 1, 28, 28), alpha=0.5)
    >>> mask.alpha = 0.0
    >>> mask.remove()
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .._checks import check_fraction
from .coupling import ChannelUnit, channel_units, check_removed, check_unmasked_model

__all__ = ["FilterMask", "mask_filters", "copy_without_masks"]


def _scaling_hook(scale: torch.Tensor) -> Callable:
    def hook(module, inputs, output):
        return output * scale.view(1, -1, 1, 1)

    hook._pk_filter_mask = True   # lets copies of the model drop it (see copy_without_masks)
    return hook


def copy_without_masks(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without the :class:`FilterMask` hooks (those belong to the original).

    Args:
        model: any network; not changed.

    Returns:
        the copy; other forward hooks are copied along.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet5()
        >>> mask = mask_filters(model, {"conv1": [0]}, torch.zeros(1, 1, 28, 28))
        >>> len(model.conv1._forward_hooks), len(copy_without_masks(model).conv1._forward_hooks)
        (1, 0)
        >>> mask.remove()
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for key, hook in list(module._forward_hooks.items()):
            if getattr(hook, "_pk_filter_mask", False):
                del module._forward_hooks[key]
    return clone


class FilterMask:
    """Forward hooks that multiply chosen output channels by ``alpha``.

    The hook sits after the BatchNorm when there is one (a BatchNorm would
    otherwise undo the scaling), so with ``alpha = 0`` the channels are exactly
    zero and removing them does not change the model's outputs. Set
    ``mask.alpha`` to change the factor; ``mask.remove()`` takes the hooks off.

    Args:
        model: a plain stack; gets hooks, its weights are not changed.
        removed: ``{conv name: filter indices}``.
        example_input: a batch the model accepts.
        alpha: the starting factor, in [0, 1].
        units: the model's channel units when already traced (then
            ``example_input`` is not used).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet5()
        >>> mask = FilterMask(model, {"conv1": [0, 1]}, torch.zeros(1, 1, 28, 28), alpha=1.0)
        >>> mask.alpha, mask.removed
        (1.0, {'conv1': tensor([0, 1])})
        >>> mask.remove()
    """

    def __init__(self, model: nn.Module, removed: dict, example_input: torch.Tensor,
                 alpha: float = 0.0, *, units: list[ChannelUnit] | None = None):
        if units is None:
            units = channel_units(model, example_input)
        by_name = {u.name: u for u in units}
        modules = dict(model.named_modules())
        self.removed = check_removed(removed, units)
        self._scales, self._handles = [], []
        for name, idx in self.removed.items():
            unit = by_name[name]
            scale = torch.ones(unit.channels)
            self._scales.append((scale, idx))
            self._handles.append(
                modules[unit.last_name].register_forward_hook(_scaling_hook(scale)))
        self.alpha = alpha

    @property
    def alpha(self) -> float:
        """The factor applied to the masked channels (1 = untouched, 0 = removed)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = check_fraction("alpha", value)
        for scale, idx in self._scales:
            scale[idx] = self._alpha

    def remove(self) -> None:
        """Take the hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []


def mask_filters(model: nn.Module, removed: dict, example_input: torch.Tensor,
                 alpha: float = 0.0) -> FilterMask:
    """Scale the given output channels by ``alpha`` with forward hooks (in place).

    Args:
        model: a plain stack; gets hooks, its weights are not changed.
        removed: ``{conv name: filter indices}``, as from
            :func:`~.selection.select_filters`.
        example_input: a batch the model accepts.
        alpha: the factor, in [0, 1].

    Returns:
        a :class:`FilterMask`; change ``.alpha`` later, call ``.remove()`` to undo.

    Example:
        >>> import pruning_kit as pk
        >>> from pruning_kit.structured import select_filters, remove_filters
        >>> x = torch.rand(2, 1, 28, 28)
        >>> model = pk.models.lenet5().eval()
        >>> removed = select_filters(model, 0.5, x)
        >>> mask = mask_filters(model, removed, x, alpha=0.0)
        >>> small = remove_filters(model, removed, x)   # the hooks are not copied along
        >>> torch.allclose(model(x), small(x), atol=1e-5)
        True
        >>> mask.remove()
    """
    check_unmasked_model(model)
    return FilterMask(model, removed, example_input, alpha)
