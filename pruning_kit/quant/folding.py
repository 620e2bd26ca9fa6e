"""Batch-norm folding: a BatchNorm after a convolution becomes part of its weights and bias.

At inference a ``BatchNorm2d`` applies a fixed affine map per channel, ``y =
gamma (z - mean) / sqrt(var + eps) + beta``, to the output ``z = w * x + b`` of
the convolution before it. Written out, that is one convolution again (Jacob
et al. 2018, section 3.2, Eq. 14), with per output channel ``c``::

    w_fold[c] = gamma[c] / sqrt(var[c] + eps) * w[c]
    b_fold[c] = beta[c] + gamma[c] * (b[c] - mean[c]) / sqrt(var[c] + eps)

so an integer engine never runs a batch norm: it quantizes ``w_fold``. Each
channel's weights are multiplied by a different factor, which is one reason the
weights of a folded network want one scale per output channel.

- :func:`fold_batchnorm`: one ``Conv2d`` and the ``BatchNorm2d`` after it.
- :func:`fold_batchnorms`: a copy of a model with every ``Conv2d`` that a
  ``BatchNorm2d`` directly follows inside an ``nn.Sequential`` folded.

Both use the running statistics (eval-mode batch norm): folding is for a
trained network about to be quantized.

Example:
    >>> import torch
    >>> from torch import nn
    >>> conv, bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)
    >>> bn.running_mean.fill_(0.5), bn.running_var.fill_(4.0)   # doctest: +ELLIPSIS
    (...)
    >>> folded = fold_batchnorm(conv, bn)
    >>> x = torch.rand(1, 1, 5, 5)
    >>> torch.allclose(folded(x), bn.eval()(conv(x)), atol=1e-6)
    True
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import InvalidParameterError, check_model

__all__ = ["fold_batchnorm", "fold_batchnorms"]


def _check_pair(conv, bn):
    if not isinstance(conv, nn.Conv2d):
        raise InvalidParameterError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    if not isinstance(bn, nn.BatchNorm2d):
        raise InvalidParameterError(f"bn must be a torch.nn.BatchNorm2d, got {type(bn).__name__}")
    if bn.num_features != conv.out_channels:
        raise InvalidParameterError(
            f"bn normalises {bn.num_features} channels but conv has {conv.out_channels} output "
            "channels: pass the BatchNorm2d that directly follows this conv")
    if bn.running_mean is None or bn.running_var is None:
        raise InvalidParameterError(
            "bn keeps no running statistics (track_running_stats=False), so it has no fixed "
            "affine map to fold; fold only a batch norm that tracks them")
    if hasattr(conv, "weight_orig") or torch.nn.utils.parametrize.is_parametrized(conv):
        raise InvalidParameterError(
            "conv is pruned or parametrized: bake its weights in first (pk.prune.finalize, or "
            "pk.quant.float_copy)")


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One ``Conv2d`` computing ``bn(conv(x))`` with ``bn`` in eval mode (Jacob et al. 2018, Eq. 14).

    Args:
        conv: the convolution (left unchanged); with or without a bias.
        bn: the ``BatchNorm2d`` that follows it (left unchanged); its running
            mean and variance are used, and its ``weight``/``bias`` (gamma and
            beta) when it has them.

    Returns:
        A new ``Conv2d`` with the same geometry (stride, padding, dilation,
        groups) and a bias, holding ``w_fold`` and ``b_fold`` (module docstring).

    Example:
        >>> conv, bn = nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1)
        >>> with torch.no_grad():
        ...     _ = conv.weight.fill_(2.0), bn.weight.fill_(3.0), bn.bias.fill_(1.0)
        ...     _ = bn.running_mean.fill_(4.0), bn.running_var.fill_(1.0 - bn.eps)
        >>> folded = fold_batchnorm(conv, bn)     # 3 * (2x - 4) / 1 + 1 = 6x - 11
        >>> folded.weight.item(), folded.bias.item()
        (6.0, -11.0)
    """
    _check_pair(conv, bn)
    with torch.no_grad():
        inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(inv_std)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(inv_std)
        factor = gamma * inv_std                                  # one per output channel
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(inv_std)
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                           stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                           groups=conv.groups, bias=True, padding_mode=conv.padding_mode)
        folded = folded.to(device=conv.weight.device, dtype=conv.weight.dtype)
        shape = (-1,) + (1,) * (conv.weight.dim() - 1)
        folded.weight.copy_(conv.weight.double() * factor.reshape(shape))
        folded.bias.copy_(beta + factor * (bias - bn.running_mean.double()))
    return folded


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every ``Conv2d`` -> ``BatchNorm2d`` pair is one folded ``Conv2d``.

    A pair is folded where the batch norm is the module right after the
    convolution inside an ``nn.Sequential`` (the layout of ``pk.models.vgg``);
    the batch norm is replaced by ``nn.Identity``, so indices and names stay
    valid. Batch norms elsewhere (a ResNet block calling ``self.bn1`` in its
    ``forward``) are left in place. In eval mode the copy computes what the
    model computes, up to float rounding. Pruning masks are baked in first.

    Args:
        model: the network (left unchanged).

    Returns:
        A new model in eval mode; ``result.folded`` lists the names of the
        folded convolutions.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.vgg(11, width=0.125, in_channels=1, image_size=28).eval()
        >>> folded = fold_batchnorms(model)
        >>> len(folded.folded), sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        (8, 0)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> torch.allclose(folded(x), model(x), atol=1e-5)
        True
    """
    from .. import prune

    check_model(model)
    copy = prune.finalize(prune.clone(model))      # a pruned conv folds with its zeros
    folded_names = []
    for parent_name, parent in copy.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for (name, module), (next_name, following) in zip(children, children[1:]):
            if isinstance(module, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                setattr(parent, name, fold_batchnorm(module, following))
                setattr(parent, next_name, nn.Identity())
                folded_names.append(f"{parent_name}.{name}" if parent_name else name)
    copy.folded = folded_names
    return copy.eval()
