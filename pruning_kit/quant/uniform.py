"""Uniform quantization of one tensor: the affine and symmetric formulas, and their error.

The formulas of the ``binarized`` assignment, rounding with ``torch.round``
(halves to even):

- :func:`quantize_affine` / :func:`dequantize_affine`: ``q = clamp(round(x /
  scale) + zero_point, 0, 2**bits - 1)``, ``x_hat = scale * (q - zero_point)``;
  per tensor, or per channel with ``dim=``.
- :func:`quantize_symmetric` / :func:`dequantize_symmetric`: zero point 0,
  ``q`` in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
- :func:`fake_quantize` (quantize then dequantize), and two measures of what
  it costs: :func:`quantization_mse` and :func:`sqnr_db`.

Example:
    >>> import torch
    >>> q, scale, zero_point = quantize_affine(torch.tensor([-1.0, 0.0, 0.5, 2.0]), bits=2)
    >>> q.tolist(), scale, zero_point
    ([0, 1, 1, 3], 1.0, 1)
    >>> dequantize_affine(q, scale, zero_point)
    tensor([-1.,  0.,  0.,  2.])
"""

from __future__ import annotations

import math

import torch

from .._checks import InvalidParameterError, check_int, check_choice, check_tensor

__all__ = ["quantize_affine", "dequantize_affine", "quantize_symmetric",
           "dequantize_symmetric", "fake_quantize", "quantization_mse", "sqnr_db", "SCHEMES",
           "MAX_BITS"]

SCHEMES = ("affine", "symmetric")
"""The quantization schemes :func:`fake_quantize` (and the model functions) accept."""

MAX_BITS = 32
"""The widest bit width of one tensor's levels (they are stored as int64)."""


# --------------------------------------------------------------------------------------
# argument checks and per-channel shapes


def _check_dim(x: torch.Tensor, dim) -> int | None:
    """The channel dimension as a non-negative int, or None (per tensor)."""
    if dim is None:
        return None
    if x.dim() == 0:
        raise InvalidParameterError(f"dim must be None for a 0-dimensional tensor (it has no "
                                    f"channels), got {dim!r}")
    dim = check_int("dim", dim, low=-x.dim(), high=x.dim() - 1,
                    hint=f"a dimension of x, whose shape is {tuple(x.shape)}; or None")
    return dim % x.dim()


def _rows(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """``x`` as float64 with one row per channel (a single row when ``dim`` is None)."""
    x64 = x.detach().to(torch.float64)
    if dim is None:
        return x64.reshape(1, -1)
    return x64.movedim(dim, 0).reshape(x.shape[dim], -1)


def _per_channel(values: torch.Tensor, x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Reshape one value per channel so that it broadcasts against ``x`` along ``dim``."""
    if dim is None:
        return values.reshape(())
    shape = [1] * x.dim()
    shape[dim] = -1
    return values.reshape(shape)


def _check_scale_zero_point(q, scale, zero_point, dim):
    """``scale`` and ``zero_point`` checked, per channel reshaped to broadcast against ``q``."""
    if isinstance(scale, torch.Tensor) or isinstance(zero_point, torch.Tensor):
        if dim is None:
            if all(not isinstance(t, torch.Tensor) or t.numel() == 1
                   for t in (scale, zero_point)):
                scale = float(scale)
                zero_point = int(zero_point)
            else:
                raise InvalidParameterError(
                    "scale/zero_point hold one value per channel: pass dim= "
                    "(the dimension they were computed along)")
    if dim is None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
                math.isfinite(scale) and scale > 0):
            raise InvalidParameterError(f"scale must be a positive finite number, got {scale!r}")
        return scale, check_int("zero_point", zero_point)
    dim = _check_dim(q, dim)
    channels = q.shape[dim]
    scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    zero_point = torch.as_tensor(zero_point).reshape(-1)
    if zero_point.is_floating_point() and not bool((zero_point == zero_point.round()).all()):
        raise InvalidParameterError("zero_point must hold integers")
    for name, t in (("scale", scale), ("zero_point", zero_point)):
        if t.numel() not in (1, channels):
            raise InvalidParameterError(
                f"{name} must have one value per channel ({channels} along dim "
                f"{dim}), got {t.numel()}")
    if not bool((torch.isfinite(scale) & (scale > 0)).all()):
        raise InvalidParameterError("scale must be positive and finite in every channel")
    return _per_channel(scale.expand(channels), q, dim), _per_channel(
        zero_point.to(torch.float64).expand(channels), q, dim)


# --------------------------------------------------------------------------------------
# uniform quantization


def quantize_affine(x: torch.Tensor, bits: int = 8, *, dim: int | None = None):
    """Asymmetric (affine) quantization to the integers ``0 .. 2**bits - 1``.

    With ``qmin = 0`` and ``qmax = 2**bits - 1``, the range always holds 0 (as
    in Jacob et al. 2018 and torch's ``MinMaxObserver``), with min and max
    taken over the whole tensor, or over each slice along ``dim``:

    - ``lo = min(min(x), 0)``, ``hi = max(max(x), 0)``;
    - ``scale = (hi - lo) / (qmax - qmin)``, or 1.0 for an all-zero tensor;
    - ``zero_point = round(qmin - lo / scale)`` (clamped to [qmin, qmax], which
      only guards against rounding);
    - ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64.

    ``round`` sends halves to even. So 0 is exact (padding and ReLU zeros stay
    zeros) and every value in ``[min(x), max(x)]`` comes back from
    :func:`dequantize_affine` within ``scale / 2``. The clamp acts inside that
    range only on a tie: when ``-lo / scale`` ends in exactly .5 and rounds up,
    ``max(x)`` lands one level above ``qmax`` and is clipped, by exactly
    ``scale / 2`` (``[-1.5, 1.5]`` at 2 bits: scale 1, zero point 2, and 1.5
    would land on level 4).

    Args:
        x: a non-empty floating-point tensor without NaN or inf.
        bits: an int in [1, 32].
        dim: ``None`` for one scale for the whole tensor, or the dimension
            that indexes channels (0 for the output channels of a Linear or
            Conv2d weight) for one scale and zero point per channel.

    Returns:
        ``(q, scale, zero_point)``: ``q`` int64 with ``x``'s shape; per tensor,
        ``scale`` a Python float and ``zero_point`` a Python int; per channel,
        a float64 tensor and an int64 tensor of length ``x.shape[dim]``.

    Example:
        >>> x = torch.tensor([0.0, 0.5, 1.5, 2.5, 3.0])
        >>> quantize_affine(x, bits=2)   # scale 1: halves go to the even level
        (tensor([0, 0, 2, 2, 3]), 1.0, 0)
        >>> q, s, z = quantize_affine(torch.tensor([[-1.0, 1.0], [0.0, 6.0]]), bits=8, dim=0)
        >>> q.tolist(), [round(v, 5) for v in s.tolist()], z.tolist()
        ([[0, 255], [0, 255]], [0.00784, 0.02353], [128, 0])
        >>> q, s, z = quantize_affine(torch.tensor([1.0, 2.0, 5.0]), bits=8)  # range [0, 5]
        >>> q.tolist(), z, dequantize_affine(q, s, z).tolist()
        ([51, 102, 255], 0, [1.0, 2.0, 5.0])
        >>> q, s, z = quantize_affine(torch.tensor([-1.5, 1.5]), bits=2)      # a tie at the top
        >>> q.tolist(), s, z, dequantize_affine(q, s, z).tolist()
        ([0, 3], 1.0, 2, [-2.0, 1.0])
    """
    check_tensor("x", x, floating=True, nonempty=True, finite=True)
    bits = check_int("bits", bits, low=1, high=MAX_BITS)
    dim = _check_dim(x, dim)
    qmin, qmax = 0, 2 ** bits - 1
    rows = _rows(x, dim)
    low = rows.min(dim=1).values.clamp(max=0.0)   # the range always holds 0
    high = rows.max(dim=1).values.clamp(min=0.0)
    scale = torch.where(high > low, (high - low) / (qmax - qmin), torch.ones_like(low))
    zero_point = torch.round(qmin - low / scale).clamp(qmin, qmax)
    x64 = x.detach().to(torch.float64)
    q = torch.round(x64 / _per_channel(scale, x, dim)) + _per_channel(zero_point, x, dim)
    q = q.clamp(qmin, qmax).to(torch.int64)
    if dim is None:
        return q, float(scale[0]), int(zero_point[0])
    return q, scale, zero_point.to(torch.int64)


def dequantize_affine(q: torch.Tensor, scale, zero_point, *, dim: int | None = None):
    """Back to real numbers: ``scale * (q - zero_point)`` as float32.

    Args:
        q: the integer levels (any integer dtype; float tensors holding
            integers are accepted too).
        scale: a positive float, or per channel a tensor of them (with ``dim``).
        zero_point: an int, or per channel an integer tensor (with ``dim``).
        dim: the channel dimension the per-channel values run along.

    Returns:
        A float32 tensor with ``q``'s shape.

    Example:
        >>> dequantize_affine(torch.tensor([0, 1, 255]), 0.5, 1)
        tensor([ -0.5000,   0.0000, 127.0000])
        >>> x = torch.tensor([[-1.0, 1.0], [0.0, 6.0]])
        >>> dequantize_affine(*quantize_affine(x, bits=8, dim=0), dim=0)
        tensor([[-1.0039,  0.9961],
                [ 0.0000,  6.0000]])
    """
    check_tensor("q", q, real=True)
    scale, zero_point = _check_scale_zero_point(q, scale, zero_point, dim)
    return (scale * (q.to(torch.float64) - zero_point)).to(torch.float32)


def quantize_symmetric(x: torch.Tensor, bits: int = 8, *, dim: int | None = None):
    """Symmetric quantization: zero point 0, levels ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1``.

    ``scale = max(|x|) / (2**(bits-1) - 1)`` (1.0 for an all-zero tensor or
    channel) and ``q = clamp(round(x / scale), -qmax, qmax)`` as int64; the
    level ``-2**(bits-1)`` is left unused so that the grid is symmetric.

    Args:
        x: a non-empty floating-point tensor without NaN or inf.
        bits: an int in [2, 32] (1 bit leaves no level besides 0; use
            :func:`pruning_kit.quant.binarize` for sign quantization).
        dim: ``None`` (per tensor) or the channel dimension (per channel).

    Returns:
        ``(q, scale)``: ``q`` int64 with ``x``'s shape; ``scale`` a Python float,
        or per channel a float64 tensor of length ``x.shape[dim]``.

    Example:
        >>> quantize_symmetric(torch.tensor([-3.0, -0.5, 0.5, 1.5]), bits=3)   # scale 1
        (tensor([-3,  0,  0,  2]), 1.0)
        >>> quantize_symmetric(torch.tensor([[0.0, 0.0], [-2.0, 1.0]]), bits=2, dim=0)
        (tensor([[ 0,  0],
                [-1,  0]]), tensor([1., 2.], dtype=torch.float64))
    """
    check_tensor("x", x, floating=True, nonempty=True, finite=True)
    bits = check_int("bits", bits, low=2, high=MAX_BITS,
                     hint="symmetric quantization: 1 bit leaves only the level 0; use binarize")
    dim = _check_dim(x, dim)
    qmax = 2 ** (bits - 1) - 1
    peak = _rows(x, dim).abs().max(dim=1).values
    scale = torch.where(peak > 0, peak / qmax, torch.ones_like(peak))
    x64 = x.detach().to(torch.float64)
    q = torch.round(x64 / _per_channel(scale, x, dim)).clamp(-qmax, qmax).to(torch.int64)
    if dim is None:
        return q, float(scale[0])
    return q, scale


def dequantize_symmetric(q: torch.Tensor, scale, *, dim: int | None = None) -> torch.Tensor:
    """``scale * q`` as float32 (``dim`` for per-channel scales).

    Example:
        >>> dequantize_symmetric(*quantize_symmetric(torch.tensor([-3.0, 0.4, 1.5]), bits=3))
        tensor([-3.,  0.,  2.])
    """
    check_tensor("q", q, real=True)
    zero = 0 if dim is None else torch.zeros(q.shape[_check_dim(q, dim)], dtype=torch.int64)
    return dequantize_affine(q, scale, zero, dim=dim)


def fake_quantize(x: torch.Tensor, bits: int = 8, *, scheme: str = "affine",
                  dim: int | None = None) -> torch.Tensor:
    """Quantize then dequantize: the values a ``bits``-bit tensor can represent.

    Args:
        x: a non-empty floating-point tensor.
        bits: [1, 32] for ``"affine"``, [2, 32] for ``"symmetric"``.
        scheme: ``"affine"`` or ``"symmetric"``.
        dim: ``None`` (per tensor) or the channel dimension (per channel).

    Returns:
        A tensor with ``x``'s shape and dtype, holding at most ``2**bits``
        distinct values (per channel).

    Example:
        >>> fake_quantize(torch.tensor([0.0, 0.3, 0.6, 1.0]), bits=1)
        tensor([0., 0., 1., 1.])
        >>> fake_quantize(torch.tensor([-1.0, -0.2, 0.2, 0.7]), bits=2, scheme="symmetric")
        tensor([-1.,  0.,  0.,  1.])
    """
    check_choice("scheme", scheme, SCHEMES)
    if scheme == "affine":
        q, scale, zero_point = quantize_affine(x, bits, dim=dim)
        x_hat = dequantize_affine(q, scale, zero_point, dim=dim)
    else:
        q, scale = quantize_symmetric(x, bits, dim=dim)
        x_hat = dequantize_symmetric(q, scale, dim=dim)
    return x_hat.to(x.dtype)


# --------------------------------------------------------------------------------------
# what quantization costs


def _check_pair(x, x_hat):
    check_tensor("x", x, floating=True)
    check_tensor("x_hat", x_hat, floating=True)
    if x.shape != x_hat.shape:
        raise InvalidParameterError(
            f"x and x_hat must have the same shape, got {tuple(x.shape)} and "
            f"{tuple(x_hat.shape)}")
    if x.numel() == 0:
        raise InvalidParameterError("x is empty: there is no error to measure")


def quantization_mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean squared error between a tensor and its quantized version.

    Example:
        >>> quantization_mse(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.5]))
        0.125
    """
    _check_pair(x, x_hat)
    return float(((x.detach().double() - x_hat.detach().double()) ** 2).mean())


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in decibels: ``10 log10(sum x^2 / sum (x - x_hat)^2)``.

    Each extra bit adds about 6 dB for a uniformly spread signal; an exact
    reconstruction gives ``inf``.

    Example:
        >>> sqnr_db(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.5]))   # 25 / 0.25
        20.0
        >>> x = torch.linspace(-1, 1, 10001)
        >>> round(sqnr_db(x, fake_quantize(x, 8)) - sqnr_db(x, fake_quantize(x, 7)))
        6
    """
    _check_pair(x, x_hat)
    x64, h64 = x.detach().double(), x_hat.detach().double()
    noise = float(((x64 - h64) ** 2).sum())
    signal = float((x64 ** 2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)
