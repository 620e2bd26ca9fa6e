"""Parametrized weights: find the one a layer computes with, bake it into a plain tensor.

Quantization-aware training (:class:`~pruning_kit.quant.FakeQuantizer`) and
weight sharing (:class:`~pruning_kit.quant.SharedWeight`) both replace a
layer's ``weight`` by a ``torch.nn.utils.parametrize`` parametrization: the
layer keeps trainable latent values in ``layer.parametrizations.weight.original``
and computes ``weight`` from them in every forward pass. Once training is done,
:func:`baked_copy` turns such weights back into plain ``nn.Parameter`` tensors
holding the computed values.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from torch.nn.utils import parametrize
    >>> class Double(nn.Module):
    ...     def forward(self, w):
    ...         return 2 * w
    >>> layer = nn.Linear(2, 1, bias=False)
    >>> _ = parametrize.register_parametrization(layer, "weight", Double())
    >>> type(find_parametrization(layer, Double)).__name__
    'Double'
    >>> plain = baked_copy(layer, Double)
    >>> type(plain.weight).__name__, torch.equal(plain.weight, layer.weight)
    ('Parameter', True)
"""

from __future__ import annotations

from torch import nn

__all__ = ["find_parametrization", "bake_parametrization", "baked_copy"]


def find_parametrization(module: nn.Module, kind: type, *, name: str = "weight"):
    """The first parametrization of type ``kind`` on ``module.<name>``, or ``None``.

    Args:
        module: any module (a layer that is not parametrized gives ``None``).
        kind: the parametrization class looked for.
        name: the parametrized tensor's name.

    Example:
        >>> find_parametrization(nn.Linear(2, 2), nn.Identity) is None
        True
    """
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(module, name):
        for p in getattr(module.parametrizations, name):
            if isinstance(p, kind):
                return p
    return None


def bake_parametrization(module: nn.Module, *, name: str = "weight") -> None:
    """``remove_parametrizations(leave_parametrized=True)`` that is safe on a deep copy.

    A deep copy of a parametrized module shares its generated class, and removing a
    parametrization deletes the property from that class, which would break the
    original model too; the copy gets a class of its own first. In place.

    Example:
        >>> import copy
        >>> from torch.nn.utils import parametrize
        >>> layer = nn.Linear(2, 1)
        >>> _ = parametrize.register_parametrization(layer, "weight", nn.Identity())
        >>> twin = copy.deepcopy(layer)
        >>> bake_parametrization(twin)
        >>> parametrize.is_parametrized(twin), parametrize.is_parametrized(layer)
        (False, True)
    """
    from torch.nn.utils import parametrize

    cls = module.__class__
    own = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, own)
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def baked_copy(model: nn.Module, kind, *, name: str = "weight") -> nn.Module:
    """A copy of ``model`` whose ``name`` tensors parametrized only by ``kind`` are baked in.

    Every module whose ``name`` parametrizations are all instances of
    ``kind`` gets a plain ``nn.Parameter`` holding the values it computed;
    other parametrizations stay. The copy is made with
    ``pk.prune.clone``, so pruned models work too. ``model`` is left unchanged.

    Args:
        model: the network.
        kind: the parametrization class to bake in, or a tuple of classes.
        name: the parametrized tensor's name.

    Returns:
        A new model (in the training mode of ``model``).

    Example:
        >>> baked_copy(nn.Linear(2, 1), nn.Identity).weight.shape
        torch.Size([1, 2])
    """
    from torch.nn.utils import parametrize

    from .. import prune

    plain = prune.clone(model)
    for module in plain.modules():
        if parametrize.is_parametrized(module, name) and all(
                isinstance(p, kind) for p in getattr(module.parametrizations, name)):
            bake_parametrization(module, name=name)
    return plain
