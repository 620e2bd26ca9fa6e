"""Quantization: fewer bits per weight, from the affine formula to real int8 kernels.

Uniform quantization (the formulas of the ``binarized`` assignment, rounding
with ``torch.round``, halves to even):

- :func:`quantize_affine` / :func:`dequantize_affine`: ``q = clamp(round(x /
  scale) + zero_point, 0, 2**bits - 1)``, ``x_hat = scale * (q - zero_point)``;
  per tensor, or per channel with ``dim=``.
- :func:`quantize_symmetric` / :func:`dequantize_symmetric`: zero point 0,
  ``q`` in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
- :func:`fake_quantize` (quantize then dequantize), :func:`quantization_mse`,
  :func:`sqnr_db`; :func:`fake_quantize_model` simulates any bit width 1-8 on
  the weights of a whole model.
- Quantization-aware training: :func:`prepare_qat` puts a fake quantizer with a
  straight-through gradient on every weight (and, with ``activation_bits``,
  on every layer input); :func:`qat_vs_ptq` compares it with post-training
  quantization at several bit widths.

Deep Compression (Han et al. 2016): :func:`kmeans_share` (weight sharing with
linear centroid initialisation), :func:`share_weights` (a model whose layers
compute with shared centroids that fine-tune with gradients summed per
cluster), Huffman coding (:mod:`pruning_kit.huffman`) and :func:`deep_compress`,
which chains prune -> retrain -> share -> fine-tune -> Huffman and reports
bytes, ratio and accuracy per stage.

Binarized layers (:mod:`pruning_kit.binary`) are re-exported here:
:func:`binarize`, :class:`SignSTE`, :class:`BinaryLinear`,
:class:`BinaryConv2d`, :func:`binarized_mlp`, :func:`clip_latent_weights`.

Real int8 on the CPU, :func:`int8`. Measured on the course's 2-core machine
(torch 2.14.1, one thread, LeNet-300-100 trained on mnist5k, batch 256; the
torchao rows in a separate run whose fp32 took 1.65-1.75 ms):

==============================================================  =========  ========
path                                                            latency    accuracy
==============================================================  =========  ========
fp32                                                            1.60 ms    94.4 %
``torch.ao.quantization.quantize_dynamic`` (int8 Linear)        0.41 ms    94.4 %
``torch.ao.quantization`` eager static, x86 backend, calibrated  0.35 ms    94.1 %
torchao 0.18 ``Int8DynamicActivationInt8WeightConfig``, eager   6.24 ms    94.4 %
torchao 0.18 ``Int8WeightOnlyConfig``, eager                    1.9-2.3 ms 94.4 %
==============================================================  =========  ========

A later run timed by CPU time (steady under load) agreed: fp32 1.83 ms,
``quantize_dynamic`` 0.68 ms, torchao dynamic 2.64 ms, torchao weight-only
2.10 ms. torchao's int8 paths are built for ``torch.compile``; run eagerly they
were slower than fp32 here, and compiling needs a C++ toolchain that a student's
laptop may lack (torchao is also not a dependency). So :func:`int8` uses the
``torch.ao.quantization`` kernels (fbgemm/oneDNN): dynamic quantization for
models made of Linear layers (2.8-3.9x faster across runs, accuracy unchanged,
state_dict 3.9x smaller), eager static quantization calibrated on
``calibration_data`` for models with convolutions (LeNet-5 at batch 64:
2.2-4.2x faster). ``torch.ao.quantization``
is deprecated in favour of torchao but still works in torch 2.14; its
deprecation warnings are silenced inside :func:`int8` only.
``benchmarks/int8_speedup.py`` re-measures the ratios.

Example:
    >>> import torch
    >>> q, scale, zero_point = quantize_affine(torch.tensor([-1.0, 0.0, 0.5, 2.0]), bits=2)
    >>> q.tolist(), scale, zero_point
    ([0, 1, 1, 3], 1.0, 1)
    >>> dequantize_affine(q, scale, zero_point)
    tensor([-1.,  0.,  0.,  2.])
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from torch import nn

from .binary import (BinaryConv2d, BinaryLinear, SignSTE, binarize, binarized_mlp,
                     clip_latent_weights)
from .huffman import HuffmanCode, huffman_code, huffman_decode, huffman_encode
from .models import PRUNABLE_TYPES
from ._checks import InvalidParameterError, check_model

__all__ = ["quantize_affine", "dequantize_affine", "quantize_symmetric",
           "dequantize_symmetric", "fake_quantize", "quantization_mse", "sqnr_db",
           "fake_quantize_model", "prepare_qat", "convert_qat", "qat_vs_ptq",
           "FakeQuantizer", "ActivationQuantizer",
           "kmeans_share", "share_weights", "unshare_weights", "SharedWeight", "relative_indices",
           "indices_from_relative",
           "compressed_size", "deep_compress", "int8", "SCHEMES", "INT8_METHODS",
           "binarize", "SignSTE", "BinaryLinear", "BinaryConv2d", "binarized_mlp",
           "clip_latent_weights", "HuffmanCode", "huffman_code", "huffman_encode",
           "huffman_decode"]

SCHEMES = ("affine", "symmetric")
MAX_BITS = 32


# --------------------------------------------------------------------------------------
# argument checks


def _check_tensor(x, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise InvalidParameterError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InvalidParameterError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                                    f"convert it first, e.g. {name}.float()")
    if x.numel() == 0:
        raise InvalidParameterError(f"{name} is empty (shape {tuple(x.shape)}): there is no range to "
                                    "quantize; pass a tensor with at least one element")
    if not bool(torch.isfinite(x).all()):
        raise InvalidParameterError(f"{name} contains NaN or infinite values, which have no quantized "
                                    "level")


def _check_bits(bits, low: int = 1, high: int = MAX_BITS, why: str = "") -> int:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise InvalidParameterError(f"bits must be an int, got {type(bits).__name__} {bits!r}")
    if not low <= bits <= high:
        raise InvalidParameterError(f"bits must be an int in [{low}, {high}]{why}, got {bits}")
    return bits


def _check_dim(x: torch.Tensor, dim) -> int | None:
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise InvalidParameterError(f"dim must be an int or None, got {type(dim).__name__} {dim!r}")
    if x.dim() == 0 or not -x.dim() <= dim < x.dim():
        raise InvalidParameterError(f"dim must be in [{-x.dim()}, {x.dim() - 1}] for a tensor of shape "
                                    f"{tuple(x.shape)}, got {dim}")
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


# --------------------------------------------------------------------------------------
# uniform quantization


def quantize_affine(x: torch.Tensor, bits: int = 8, *, dim: int | None = None):
    """Asymmetric (affine) quantization to the integers ``0 .. 2**bits - 1``.

    With ``qmin = 0`` and ``qmax = 2**bits - 1`` (min and max taken over the
    whole tensor, or over each slice along ``dim``):

    - ``scale = (max - min) / (qmax - qmin)``, or 1.0 for a constant tensor;
    - ``zero_point = round(qmin - min / scale)``, clamped to [qmin, qmax];
    - ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64.

    ``round`` sends halves to even. Note the clamp of the zero point: when all
    values are positive (or all negative) the range is not stretched to reach
    0, so the levels farthest from 0 are cut off (see the last example).

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
        >>> quantize_affine(torch.tensor([1.0, 2.0, 3.0, 4.0]), bits=2)   # zero_point clamped
        (tensor([1, 2, 3, 3]), 1.0, 0)
    """
    _check_tensor(x)
    bits = _check_bits(bits)
    dim = _check_dim(x, dim)
    qmin, qmax = 0, 2 ** bits - 1
    rows = _rows(x, dim)
    low, high = rows.min(dim=1).values, rows.max(dim=1).values
    scale = torch.where(high > low, (high - low) / (qmax - qmin), torch.ones_like(low))
    zero_point = torch.round(qmin - low / scale).clamp(qmin, qmax)
    x64 = x.detach().to(torch.float64)
    q = torch.round(x64 / _per_channel(scale, x, dim)) + _per_channel(zero_point, x, dim)
    q = q.clamp(qmin, qmax).to(torch.int64)
    if dim is None:
        return q, float(scale[0]), int(zero_point[0])
    return q, scale, zero_point.to(torch.int64)


def _check_scale_zero_point(q, scale, zero_point, dim):
    if isinstance(scale, torch.Tensor) or isinstance(zero_point, torch.Tensor):
        if dim is None:
            if all(not isinstance(t, torch.Tensor) or t.numel() == 1
                   for t in (scale, zero_point)):
                scale = float(scale)
                zero_point = int(zero_point)
            else:
                raise InvalidParameterError("scale/zero_point hold one value per channel: pass dim= "
                                            "(the dimension they were computed along)")
    if dim is None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
                math.isfinite(scale) and scale > 0):
            raise InvalidParameterError(f"scale must be a positive finite number, got {scale!r}")
        if isinstance(zero_point, bool) or not isinstance(zero_point, int):
            raise InvalidParameterError(f"zero_point must be an int, got {zero_point!r}")
        return scale, zero_point
    dim = _check_dim(q, dim)
    channels = q.shape[dim]
    scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    zero_point = torch.as_tensor(zero_point).reshape(-1)
    if zero_point.is_floating_point() and not bool((zero_point == zero_point.round()).all()):
        raise InvalidParameterError("zero_point must hold integers")
    for name, t in (("scale", scale), ("zero_point", zero_point)):
        if t.numel() not in (1, channels):
            raise InvalidParameterError(f"{name} must have one value per channel ({channels} along dim "
                                        f"{dim}), got {t.numel()}")
    if not bool((torch.isfinite(scale) & (scale > 0)).all()):
        raise InvalidParameterError("scale must be positive and finite in every channel")
    return _per_channel(scale.expand(channels), q, dim), _per_channel(
        zero_point.to(torch.float64).expand(channels), q, dim)


def _check_q(q, name="q"):
    if not isinstance(q, torch.Tensor):
        raise InvalidParameterError(f"{name} must be a torch.Tensor, got {type(q).__name__}")
    if q.dtype == torch.bool or q.is_complex():
        raise InvalidParameterError(f"{name} must hold integer levels, got dtype {q.dtype}")


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
    _check_q(q)
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
            :func:`binarize` for sign quantization).
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
    _check_tensor(x)
    bits = _check_bits(bits, low=2, why=" for symmetric quantization (1 bit leaves only the "
                       "level 0; use binarize)")
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
    _check_q(q)
    zero = 0 if dim is None else torch.zeros(q.shape[_check_dim(q, dim)], dtype=torch.int64)
    return dequantize_affine(q, scale, zero, dim=dim)


def _check_scheme(scheme):
    if scheme not in SCHEMES:
        raise InvalidParameterError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


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
    _check_scheme(scheme)
    if scheme == "affine":
        q, scale, zero_point = quantize_affine(x, bits, dim=dim)
        x_hat = dequantize_affine(q, scale, zero_point, dim=dim)
    else:
        q, scale = quantize_symmetric(x, bits, dim=dim)
        x_hat = dequantize_symmetric(q, scale, dim=dim)
    return x_hat.to(x.dtype)


def _check_pair(x, x_hat):
    for name, t in (("x", x), ("x_hat", x_hat)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise InvalidParameterError(f"{name} must be a floating-point tensor, got "
                                        f"{getattr(t, 'dtype', type(t).__name__)}")
    if x.shape != x_hat.shape:
        raise InvalidParameterError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and "
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


# --------------------------------------------------------------------------------------
# whole models: weight-only simulation and quantization-aware training


def _copy(model: nn.Module) -> nn.Module:
    """An independent copy, also of models pruned with ``torch.nn.utils.prune``."""
    from . import prune

    return prune.clone(model)


def _quantizable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]


def _check_model_bits(bits, scheme):
    low = 1 if scheme == "affine" else 2
    hint = "" if scheme == "affine" else " (1 bit needs scheme='affine')"
    return _check_bits(bits, low=low, high=8, why=f" for scheme={scheme!r} on a model{hint}")


def _check_per_channel(per_channel):
    if not isinstance(per_channel, bool):
        raise InvalidParameterError(f"per_channel must be True or False, got {per_channel!r}")
    return per_channel


def _check_model_quantization(model, bits, scheme, per_channel, activation_bits):
    """Validate the settings shared by fake_quantize_model and prepare_qat.

    Returns ``(bits, dim)``: the checked bit width and the channel dim (0 or None).
    """
    check_model(model)
    _check_scheme(scheme)
    bits = _check_model_bits(bits, scheme)
    dim = 0 if _check_per_channel(per_channel) else None
    if activation_bits is not None:
        _check_bits(activation_bits, high=8, why=" for activation_bits")
    return bits, dim


def _fake_quantize_range(x, low, high, bits):
    """:func:`fake_quantize` (affine) with a given range instead of the tensor's own."""
    qmax = 2 ** bits - 1
    scale = (high - low) / qmax if high > low else 1.0
    zero_point = min(max(round(-low / scale), 0), qmax)
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, qmax)
    return (q - zero_point) * scale


class _RangeSTE(torch.autograd.Function):
    """Forward: fake-quantize to a fixed range; backward: pass the gradient inside it."""

    @staticmethod
    def forward(ctx, x, low, high, bits):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return _fake_quantize_range(x, low, high, bits)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.low) & (x <= ctx.high)
        return grad_output * inside.to(grad_output.dtype), None, None, None


class ActivationQuantizer(nn.Module):
    """Fake-quantizes a layer's input to ``bits`` bits (affine, one range per tensor).

    The range ``[low, high]`` is learnt from data: in training mode as an
    exponential moving average of each batch's min and max (``momentum``),
    and while ``observing`` is True (post-training calibration) as the min and
    max over every batch seen. In eval mode the stored range is used as is.
    The gradient passes straight through inside the range and is zero outside.
    """

    def __init__(self, bits: int, momentum: float = 0.1):
        super().__init__()
        self.bits, self.momentum, self.observing = bits, momentum, False
        self.register_buffer("low", torch.tensor(math.inf))
        self.register_buffer("high", torch.tensor(-math.inf))

    def forward(self, x):
        if self.training or self.observing:
            with torch.no_grad():
                low, high = x.detach().min(), x.detach().max()
                if not bool(torch.isfinite(self.low)):
                    self.low.copy_(low), self.high.copy_(high)
                elif self.observing:
                    self.low.copy_(torch.minimum(self.low, low))
                    self.high.copy_(torch.maximum(self.high, high))
                else:
                    self.low.lerp_(low, self.momentum), self.high.lerp_(high, self.momentum)
        if not bool(torch.isfinite(self.low)):
            raise RuntimeError("ActivationQuantizer has no range yet: run data through the "
                               "model in training mode or calibrate it first")
        return _RangeSTE.apply(x, float(self.low), float(self.high), self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, low={float(self.low):.4g}, high={float(self.high):.4g}"


def _quantize_input(module, args):
    return (module.input_quantizer(args[0]),) + tuple(args[1:])


def _add_input_quantizers(model: nn.Module, bits: int) -> None:
    for _, layer in _quantizable(model):
        if not hasattr(layer, "input_quantizer"):
            layer.input_quantizer = ActivationQuantizer(bits)
            layer.register_forward_pre_hook(_quantize_input)


def _calibrate(model: nn.Module, data, batch_size: int = 500) -> None:
    from .train import num_threads

    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuantizer)]
    model.eval()
    for q in quantizers:
        q.observing = True
    try:
        with torch.no_grad(), num_threads(1):
            for images in _calibration_batches(data, batch_size):
                model(images)
    finally:
        for q in quantizers:
            q.observing = False


def _calibration_batches(data, batch_size: int):
    """Image batches from a TensorData, an (images, labels) pair, a tensor or a loader."""
    from .data import TensorData, as_dataset

    if isinstance(data, torch.Tensor):
        images = data
    elif isinstance(data, (TensorData, tuple, list)):
        images = as_dataset(data).images
    elif hasattr(data, "__iter__"):
        batches = [b[0] if isinstance(b, (tuple, list)) else b for b in data]
        if not batches or not all(isinstance(b, torch.Tensor) for b in batches):
            raise InvalidParameterError("calibration_data yielded no image batches")
        return batches
    else:
        raise InvalidParameterError("calibration_data must be a TensorData, an (images, labels) pair, a "
                                    f"tensor of images or an iterable of batches, got {type(data).__name__}")
    if len(images) == 0:
        raise InvalidParameterError("calibration_data is empty: pass at least one example")
    return [images[i:i + batch_size] for i in range(0, len(images), batch_size)]


def fake_quantize_model(model: nn.Module, bits: int, per_channel: bool = True, *,
                        scheme: str = "affine", activation_bits: int | None = None,
                        calibration_data=None) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d weights take only ``2**bits`` values.

    Weight-only simulation by default: every weight tensor is replaced by
    :func:`fake_quantize` of itself (per output channel with
    ``per_channel=True``, i.e. ``dim=0``); biases, activations and arithmetic
    stay float32. This shows the accuracy a ``bits``-bit model would have,
    not its speed (see :func:`int8` for real kernels). Pruned layers keep
    their masks, and their zeros stay exactly zero; a model from
    :func:`prepare_qat` has its quantized weights baked in (and keeps its
    learnt activation ranges).

    With ``activation_bits``, the input of every Linear/Conv2d layer is also
    fake-quantized (affine, per tensor) to a range observed on
    ``calibration_data`` (post-training static calibration).

    Args:
        model: the network (left unchanged).
        bits: weight bits, an int in [1, 8] (``scheme="symmetric"``: [2, 8]).
        per_channel: one scale per output channel rather than per tensor.
        scheme: ``"affine"`` or ``"symmetric"``.
        activation_bits: ``None`` (float activations) or an int in [1, 8].
        calibration_data: needed with ``activation_bits``: a TensorData, an
            ``(images, labels)`` pair, a tensor of images or a loader.

    Returns:
        A new model in eval mode.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> q4 = fake_quantize_model(model, bits=4)
        >>> [int(q4.fc1.weight[c].unique().numel()) <= 16 for c in range(3)]
        [True, True, True]
        >>> torch.equal(q4.fc1.bias, model.fc1.bias), q4.fc1.weight.equal(model.fc1.weight)
        (True, False)
        >>> w4a4 = fake_quantize_model(model, 4, activation_bits=4,
        ...                            calibration_data=torch.rand(8, 1, 28, 28))
        >>> w4a4.fc2.input_quantizer
        ActivationQuantizer(bits=4, low=0, high=...)
    """
    bits, dim = _check_model_quantization(model, bits, scheme, per_channel, activation_bits)
    if activation_bits is not None and calibration_data is None:
        raise InvalidParameterError("activation_bits needs calibration_data= to observe the ranges "
                                    "of the activations")
    quantized = convert_qat(model) if _has_fake_quant(model) else _copy(model)
    with torch.no_grad():
        for _, layer in _quantizable(quantized):
            if hasattr(layer, "weight_orig") and hasattr(layer, "weight_mask"):
                effective = layer.weight_orig * layer.weight_mask
                layer.weight_orig.copy_(fake_quantize(effective, bits, scheme=scheme, dim=dim))
                layer.weight = layer.weight_orig * layer.weight_mask
            elif torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
                raise InvalidParameterError("fake_quantize_model does not handle parametrized weights "
                                            "other than prepare_qat's; remove the parametrizations first")
            else:
                layer.weight.copy_(fake_quantize(layer.weight, bits, scheme=scheme, dim=dim))
    if activation_bits is not None:
        _add_input_quantizers(quantized, activation_bits)
        _calibrate(quantized, calibration_data)
    return quantized.eval()


class _FakeQuantSTE(torch.autograd.Function):
    """Forward: :func:`fake_quantize`; backward: the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, w, bits, scheme, dim):
        return fake_quantize(w, bits, scheme=scheme, dim=dim)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None, None


class FakeQuantizer(nn.Module):
    """Parametrization used by :func:`prepare_qat`: ``weight = fake_quantize(latent)``.

    The range (and so the scale) follows the latent weights at every step;
    the straight-through estimator passes the gradient unchanged (with a
    min/max range nothing is clipped, so there is no region to cancel).
    """

    def __init__(self, bits: int, scheme: str = "affine", dim: int | None = 0):
        super().__init__()
        self.bits, self.scheme, self.dim = bits, scheme, dim

    def forward(self, w):
        return _FakeQuantSTE.apply(w, self.bits, self.scheme, self.dim)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scheme={self.scheme!r}, dim={self.dim}"


def _has_fake_quant(model: nn.Module) -> bool:
    return any(isinstance(m, FakeQuantizer) for m in model.modules())


def prepare_qat(model: nn.Module, bits: int, per_channel: bool = True, *,
                scheme: str = "affine", activation_bits: int | None = None) -> nn.Module:
    """A copy of ``model`` ready for quantization-aware training (QAT).

    Every Linear/Conv2d weight gets a :class:`FakeQuantizer` parametrization:
    the forward pass computes with the ``bits``-bit version of the latent
    float weights, and the straight-through estimator lets the gradient
    update the latent weights as if rounding were the identity. With
    ``activation_bits``, every layer's input also goes through an
    :class:`ActivationQuantizer` whose range is learnt during training. Train
    the copy with ``pk.train.fit``; :func:`convert_qat` (or
    :func:`fake_quantize_model`) then bakes the quantized weights in.

    Args:
        model: the network (left unchanged); pruned models must be finalized
            first (``pk.prune.finalize``), or training would regrow pruned weights.
        bits: an int in [1, 8] (``scheme="symmetric"``: [2, 8]).
        per_channel: one scale per output channel.
        scheme: ``"affine"`` or ``"symmetric"``.
        activation_bits: ``None`` (float activations) or an int in [1, 8].

    Returns:
        A new model whose ``layer.weight`` is fake-quantized and whose latent
        weights are ``layer.parametrizations.weight.original``.

    Example:
        >>> import pruning_kit as pk
        >>> qat = prepare_qat(pk.models.lenet_300_100(), bits=2)
        >>> qat.fc2.weight.unique().numel() <= 4 * 100
        True
        >>> qat(torch.zeros(5, 784)).sum().backward()
        >>> qat.fc3.parametrizations.weight.original.grad.shape
        torch.Size([10, 100])
    """
    from torch.nn.utils import parametrize

    bits, dim = _check_model_quantization(model, bits, scheme, per_channel, activation_bits)
    for name, layer in _quantizable(model):
        if hasattr(layer, "weight_orig") or parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(f"layer {name!r} is pruned or already parametrized; call "
                                        "pk.prune.finalize(model) (or convert_qat) first")
    qat = _copy(model)
    for _, layer in _quantizable(qat):
        parametrize.register_parametrization(layer, "weight", FakeQuantizer(bits, scheme, dim))
    if activation_bits is not None:
        _add_input_quantizers(qat, activation_bits)
    return qat


def _bake_parametrization(module: nn.Module, name: str = "weight") -> None:
    """``remove_parametrizations(leave_parametrized=True)`` that is safe on a deep copy.

    A deep copy of a parametrized module shares its generated class, and removing a
    parametrization deletes the property from that class, which would break the
    original model too; the copy gets a class of its own first.
    """
    from torch.nn.utils import parametrize

    cls = module.__class__
    own = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, own)
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def convert_qat(model: nn.Module) -> nn.Module:
    """A copy of a :func:`prepare_qat` model with its quantized weights baked in.

    Activation quantizers (and the ranges they learnt) stay in place.

    Example:
        >>> import pruning_kit as pk
        >>> plain = convert_qat(prepare_qat(pk.models.lenet_300_100(), bits=3))
        >>> type(plain.fc1.weight).__name__, plain.fc1.weight[0].unique().numel() <= 8
        ('Parameter', True)
    """
    from torch.nn.utils import parametrize

    check_model(model)
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if parametrize.is_parametrized(module, "weight") and all(
                isinstance(p, FakeQuantizer) for p in module.parametrizations.weight):
            _bake_parametrization(module, "weight")
    return plain.eval()


def qat_vs_ptq(model: nn.Module, train, test, bits=(8, 4, 2), *, activations: bool = True,
               epochs: int = 3, lr: float = 3e-4, per_channel: bool = False,
               scheme: str = "symmetric", seed: int = 0, progress: bool = False):
    """Post-training quantization vs quantization-aware training, per bit width.

    For each bit width ``b``: PTQ is :func:`fake_quantize_model` of the
    trained ``model`` (activation ranges calibrated on ``train``); QAT
    fine-tunes :func:`prepare_qat` of the same model for ``epochs`` on
    ``train``, then bakes the weights in. Both are simulations evaluated on
    ``test``, with ``b``-bit weights and, when ``activations``, ``b``-bit
    layer inputs (weight-only quantization of an MNIST MLP loses almost
    nothing down to 4 bits; quantizing the activations too is where QAT pays).

    Args:
        model: a trained network (left unchanged).
        train, test: data as ``pk.train.fit`` / ``pk.train.evaluate`` take it.
        bits: bit widths to compare (each in [1, 8]).
        activations: quantize the layer inputs too, at the same bit width.
        epochs, lr, seed: the QAT fine-tuning (Adam).
        per_channel, scheme: the quantizer, the same for PTQ and QAT.
        progress: show progress bars.

    Returns:
        A pandas DataFrame with columns ``bits``, ``float_accuracy``,
        ``ptq_accuracy``, ``qat_accuracy``, one row per bit width.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(64)
        >>> _ = pk.train.fit(model, train, epochs=3, progress=False)
        >>> table = qat_vs_ptq(model, train, test, bits=(3,), epochs=1)
        >>> list(table.columns), table.bits.tolist()
        (['bits', 'float_accuracy', 'ptq_accuracy', 'qat_accuracy'], [3])
    """
    import pandas as pd

    from .train import evaluate, fit

    check_model(model)
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if not bits:
        raise InvalidParameterError("bits must name at least one bit width")
    for b in bits:
        _check_model_bits(b, _check_scheme(scheme))
    baseline = evaluate(model, test)
    rows = []
    for b in bits:
        a = b if activations else None
        ptq = evaluate(fake_quantize_model(model, b, per_channel, scheme=scheme,
                                           activation_bits=a, calibration_data=train), test)
        qat = prepare_qat(model, b, per_channel, scheme=scheme, activation_bits=a)
        fit(qat, train, epochs=epochs, lr=lr, seed=seed, progress=progress)
        rows.append({"bits": b, "float_accuracy": baseline, "ptq_accuracy": ptq,
                     "qat_accuracy": evaluate(convert_qat(qat), test)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Deep Compression: k-means weight sharing, relative indices, Huffman, the pipeline


def kmeans_share(weight: torch.Tensor, bits: int = 5, *, n_clusters: int | None = None,
                 iterations: int = 50, ignore_zeros: bool = True):
    """Cluster the values of one weight tensor with 1-D k-means (Deep Compression).

    Centroids start evenly spaced between the smallest and largest weight
    (linear initialisation, which Han et al. found best: it keeps centroids
    for the rare large weights that matter most), then Lloyd iterations
    assign every weight to its nearest centroid and move each centroid to the
    mean of its weights, until no assignment changes.

    Args:
        weight: a non-empty floating-point tensor.
        bits: index width; ``2**bits`` clusters (an int in [1, 16]).
        n_clusters: the number of clusters, overriding ``bits``.
        iterations: at most this many Lloyd iterations.
        ignore_zeros: leave exact zeros (pruned weights) out of the clustering.

    Returns:
        ``(centroids, labels)``: float32 centroids in ascending order, and an
        int64 tensor of ``weight``'s shape with each weight's cluster, ``-1``
        for the zeros left out.

    Example:
        >>> w = torch.tensor([[-1.0, -0.9, 0.0], [0.1, 1.0, 1.1]])
        >>> centroids, labels = kmeans_share(w, bits=1)
        >>> centroids, labels
        (tensor([-0.9500,  0.7333]), tensor([[ 0,  0, -1],
                [ 1,  1,  1]]))
    """
    _check_tensor(weight, "weight")
    if n_clusters is None:
        k = 2 ** _check_bits(bits, high=16, why=" for weight sharing")
    elif isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 1:
        raise InvalidParameterError(f"n_clusters must be a positive int, got {n_clusters!r}")
    else:
        k = n_clusters
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InvalidParameterError(f"iterations must be a positive int, got {iterations!r}")
    flat = weight.detach().reshape(-1).to(torch.float64)
    keep = flat != 0 if ignore_zeros else torch.ones_like(flat, dtype=torch.bool)
    values = flat[keep]
    if k > values.numel():
        what = "nonzero weights" if ignore_zeros else "weights"
        raise InvalidParameterError(f"cannot make {k} clusters from {values.numel()} {what}; use fewer "
                                    "bits / n_clusters (at most one cluster per weight)")
    centroids = torch.linspace(float(values.min()), float(values.max()), k, dtype=torch.float64)
    labels = None
    for _ in range(iterations):
        new = torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, labels, values)
        counts = torch.bincount(labels, minlength=k)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        centroids, order = torch.sort(centroids)
        labels = torch.argsort(order)[labels]
    out = torch.full_like(flat, -1, dtype=torch.int64)
    out[keep] = labels
    return centroids.to(torch.float32), out.reshape(weight.shape)


class SharedWeight(nn.Module):
    """Parametrization used by :func:`share_weights`: ``weight = centroids[labels] * mask``.

    The trainable tensor (``layer.parametrizations.weight.original``) is the
    codebook of centroids. Indexing sends back to every centroid the sum of the
    gradients of the weights that share it, which is exactly Deep
    Compression's centroid fine-tuning rule; pruned positions (``mask`` 0)
    stay zero.
    """

    def __init__(self, centroids: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.register_buffer("labels", labels.clamp(min=0))
        self.register_buffer("mask", (labels >= 0).to(centroids.dtype))
        self._initial = centroids

    def forward(self, centroids):
        return centroids[self.labels] * self.mask

    def right_inverse(self, weight):
        return self._initial.to(weight.dtype).clone()


def _shared(layer) -> SharedWeight | None:
    if torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
        for p in layer.parametrizations.weight:
            if isinstance(p, SharedWeight):
                return p
    return None


def share_weights(model: nn.Module, bits: int = 5, *, iterations: int = 50) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers each share ``2**bits`` weight values.

    Each layer's nonzero weights are clustered with :func:`kmeans_share`; the
    layer then computes with its centroids through a :class:`SharedWeight`
    parametrization, so ``pk.train.fit`` fine-tunes the centroids (gradients
    summed per cluster) while every weight keeps its cluster and pruned
    weights stay zero. Pruning masks of the input model are baked in first.

    Args:
        model: the network (left unchanged).
        bits: index width per weight, an int in [1, 16].
        iterations: k-means iterations per layer.

    Returns:
        A new model; ``layer.parametrizations.weight.original`` is the
        codebook of ``layer``.

    Example:
        >>> import pruning_kit as pk
        >>> shared = share_weights(pk.models.lenet_300_100(), bits=4)
        >>> shared.fc1.weight.unique().numel(), shared.fc1.parametrizations.weight.original.shape
        (16, torch.Size([16]))
    """
    from torch.nn.utils import parametrize

    from . import prune

    check_model(model)
    bits = _check_bits(bits, high=16, why=" for weight sharing")
    for name, layer in _quantizable(model):
        if parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(f"layer {name!r} is already parametrized (shared or QAT); "
                                        "share a plain or pruned model")
    shared = prune.finalize(_copy(model))
    for name, layer in _quantizable(shared):
        try:
            centroids, labels = kmeans_share(layer.weight, bits, iterations=iterations)
        except ValueError as err:
            raise InvalidParameterError(f"layer {name!r}: {err}") from None
        parametrize.register_parametrization(layer, "weight", SharedWeight(centroids, labels),
                                             unsafe=True)
        _shared(layer)._initial = None
    return shared


def unshare_weights(model: nn.Module) -> nn.Module:
    """A copy of a :func:`share_weights` model with plain weight tensors again.

    Example:
        >>> import pruning_kit as pk
        >>> plain = unshare_weights(share_weights(pk.models.lenet_300_100(), bits=2))
        >>> type(plain.fc2.weight).__name__, plain.fc2.weight.unique().numel()
        ('Parameter', 4)
    """
    check_model(model)
    plain = copy.deepcopy(model)
    for _, layer in _quantizable(plain):
        if _shared(layer) is not None:
            _bake_parametrization(layer, "weight")
    return plain


def _check_index_bits(index_bits):
    if isinstance(index_bits, bool) or not isinstance(index_bits, int) or not (
            1 <= index_bits <= 32):
        raise InvalidParameterError(f"index_bits must be an int in [1, 32], got {index_bits!r}")
    return index_bits


def relative_indices(mask: torch.Tensor, index_bits: int = 5) -> torch.Tensor:
    """Positions of the nonzeros of ``mask`` as gaps that fit in ``index_bits`` bits.

    The tensor is read in row-major order. Each kept entry stores the distance
    from the previous one (the first from position -1), a symbol in
    ``1 .. 2**index_bits - 1``; a gap too long for that is preceded by as many
    ``0`` symbols as needed, each meaning "skip ``2**index_bits - 1``
    positions, no weight here" (Deep Compression pads with a zero weight
    instead; an escape symbol stores the same thing without a fake weight).

    Args:
        mask: any tensor; its nonzero entries are the kept weights.
        index_bits: bits per symbol, an int in [1, 32].

    Returns:
        A 1-D int64 tensor of symbols; :func:`indices_from_relative` inverts it.

    Example:
        >>> mask = torch.tensor([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        >>> relative_indices(mask, index_bits=3)      # gaps 2, 9 (= 7 + 2), 1
        tensor([2, 0, 2, 1])
    """
    if not isinstance(mask, torch.Tensor):
        raise InvalidParameterError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    max_gap = 2 ** _check_index_bits(index_bits) - 1
    positions = torch.nonzero(mask.reshape(-1)).reshape(-1)
    if positions.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    gaps = torch.diff(positions, prepend=torch.tensor([-1]))
    fillers = (gaps - 1) // max_gap
    remainders = gaps - fillers * max_gap
    counts = fillers + 1
    symbols = torch.zeros(int(counts.sum()), dtype=torch.int64)
    symbols[torch.cumsum(counts, 0) - 1] = remainders
    return symbols


def indices_from_relative(symbols: torch.Tensor, index_bits: int = 5) -> torch.Tensor:
    """Flat positions back from :func:`relative_indices` symbols.

    Example:
        >>> indices_from_relative(torch.tensor([2, 0, 2, 1]), index_bits=3)
        tensor([ 1, 10, 11])
    """
    if not isinstance(symbols, torch.Tensor) or symbols.is_floating_point():
        raise InvalidParameterError("symbols must be an integer tensor from relative_indices")
    max_gap = 2 ** _check_index_bits(index_bits) - 1
    symbols = symbols.reshape(-1).to(torch.int64)
    if bool(((symbols < 0) | (symbols > max_gap)).any()):
        raise InvalidParameterError(f"symbols must lie in [0, {max_gap}] for index_bits={index_bits}")
    steps = torch.where(symbols == 0, torch.full_like(symbols, max_gap), symbols)
    return (torch.cumsum(steps, 0) - 1)[symbols != 0]


def _huffman_bits(symbols: torch.Tensor, alphabet_bits: int) -> int:
    if symbols.numel() == 0:
        return 0
    code = huffman_code(symbols)
    return code.encoded_bits + code.table_bits(symbol_bits=alphabet_bits)


def _layer_bits(layer, index_bits: int, huffman: bool) -> int:
    """Storage of one Linear/Conv2d weight: dense float32, sparse, or shared (+ Huffman)."""
    shared = _shared(layer)
    with torch.no_grad():
        if shared is not None:
            mask = shared.mask.reshape(-1) != 0
            centroids = layer.parametrizations.weight.original
            value_bits = max(1, math.ceil(math.log2(centroids.numel())))
            codes = shared.labels.reshape(-1)[mask]
            codebook = centroids.numel() * 32
            if huffman:
                values = _huffman_bits(codes, value_bits)
            else:
                values = codes.numel() * value_bits
        else:
            weight = layer.weight
            mask = weight.reshape(-1) != 0
            dense = weight.numel() * 32
            if bool(mask.all()):
                return dense
            codebook, values = 0, int(mask.sum()) * 32
        if bool(mask.all()):
            index = 0   # nothing pruned: positions are implicit
        else:
            symbols = relative_indices(mask, index_bits)
            index = (_huffman_bits(symbols, index_bits) if huffman
                     else symbols.numel() * index_bits)
        total = codebook + values + index
        return total if shared is not None else min(total, dense)


def compressed_size(model: nn.Module, *, index_bits: int = 5, huffman: bool = False) -> int:
    """Bytes to store ``model`` the Deep Compression way.

    Per Linear/Conv2d weight: a layer without zeros is stored dense (32 bits
    per weight); a layer with zeros stores its kept values and their
    :func:`relative_indices` (``index_bits`` each), or dense when that is
    smaller; a :func:`share_weights` layer stores ``ceil(log2(k))``-bit
    cluster indices plus a float32 codebook of ``k`` centroids. With
    ``huffman=True`` both the cluster indices and the index gaps are Huffman
    coded (counting the code table: one code length per symbol). Every other
    parameter (biases, batch norm) counts 32 bits.

    Args:
        model: a plain, pruned or shared network.
        index_bits: bits per relative index (5 for the fully connected
            layers of the paper, 8 for convolutions).
        huffman: Huffman-code the shared indices and the gaps.

    Returns:
        Size in bytes (an int).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> compressed_size(model) == 4 * pk.metrics.count_params(model)
        True
        >>> compressed_size(share_weights(model, bits=4)) < compressed_size(model) / 7
        True
    """
    check_model(model)
    _check_index_bits(index_bits)
    parametrized = set()
    total = 0
    for _, layer in _quantizable(model):
        total += _layer_bits(layer, index_bits, huffman)
        parametrized.add(id(layer))
    for module in model.modules():
        if isinstance(module, torch.nn.utils.parametrize.ParametrizationList):
            continue
        for name, param in module.named_parameters(recurse=False):
            if id(module) in parametrized and name in ("weight", "weight_orig"):
                continue
            total += param.numel() * 32
    return -(-total // 8)


def deep_compress(model: nn.Module, train, test, sparsity: float = 0.92, bits: int = 5, *,
                  index_bits: int = 5, prune_steps: int = 1, retrain_epochs: int = 8,
                  finetune_epochs: int = 3,
                  lr: float = 1e-3, finetune_lr: float = 1e-4, scope: str = "global",
                  seed: int = 0, progress: bool = False, return_model: bool = False):
    """Deep Compression (Han et al. 2016): prune, retrain, share weights, Huffman-code.

    1. ``dense``: the model as given (trained), 32 bits per parameter.
    2. ``pruned``: magnitude pruning to ``sparsity`` (``scope``) in
       ``prune_steps`` rounds, each retrained ``retrain_epochs`` with the masks
       fixed (``pk.prune.iterative``); stored as kept float32 values plus
       ``index_bits``-bit relative indices.
    3. ``shared``: each layer's kept weights clustered into ``2**bits``
       centroids (:func:`share_weights`), centroids fine-tuned
       ``finetune_epochs``; stored as ``bits``-bit indices + codebook.
    4. ``huffman``: the same model with cluster indices and index gaps
       Huffman-coded (lossless: same accuracy).

    Args:
        model: a trained network (left unchanged).
        train, test: data for retraining / evaluation.
        sparsity: fraction of weights pruned, in [0, 1).
        bits: bits per shared weight index, an int in [1, 16].
        index_bits: bits per relative index.
        prune_steps: prune-retrain rounds (1: prune once, then retrain).
        retrain_epochs, lr: retraining after each pruning round (Adam).
        finetune_epochs, finetune_lr: centroid fine-tuning (Adam).
        scope: ``"global"`` or ``"local"`` pruning.
        seed: seeds the shuffling of the retraining.
        progress: show progress bars.
        return_model: also return the final (shared) model.

    Returns:
        A pandas DataFrame with one row per stage (``"dense"``, ``"pruned"``,
        ``"shared"``, ``"huffman"``) and columns ``stage``, ``bytes``,
        ``ratio`` (dense float32 bytes / bytes) and ``accuracy``; with
        ``return_model=True``, ``(report, model)``.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(64)
        >>> _ = pk.train.fit(model, train, epochs=3, progress=False)
        >>> report = deep_compress(model, train, test, sparsity=0.9, bits=4,
        ...                        retrain_epochs=1, finetune_epochs=1)
        >>> report.stage.tolist(), bool(report.ratio.is_monotonic_increasing)
        (['dense', 'pruned', 'shared', 'huffman'], True)
    """
    import pandas as pd

    from . import prune
    from .train import evaluate, fit

    check_model(model)
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not (
            0 <= sparsity < 1):
        raise InvalidParameterError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    bits = _check_bits(bits, high=16, why=" for weight sharing")
    _check_index_bits(index_bits)
    for label, value in (("retrain_epochs", retrain_epochs), ("finetune_epochs", finetune_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameterError(f"{label} must be an int >= 0, got {value!r}")
    if not _quantizable(model):
        raise InvalidParameterError("model has no nn.Linear / nn.Conv2d layer to compress")
    dense_bytes = sum(p.numel() for p in model.parameters()) * 4
    rows = [("dense", dense_bytes, evaluate(model, test))]

    pruned = _copy(model)
    prune.iterative(pruned, train, sparsity, steps=prune_steps, retrain_epochs=retrain_epochs,
                    scope=scope, lr=lr, seed=seed, progress=progress)
    prune.finalize(pruned)
    rows.append(("pruned", compressed_size(pruned, index_bits=index_bits),
                 evaluate(pruned, test)))

    shared = share_weights(pruned, bits)
    if finetune_epochs:
        fit(shared, train, epochs=finetune_epochs, lr=finetune_lr, seed=seed + 1,
            progress=progress)
    shared_accuracy = evaluate(shared, test)
    rows.append(("shared", compressed_size(shared, index_bits=index_bits), shared_accuracy))
    rows.append(("huffman", compressed_size(shared, index_bits=index_bits, huffman=True),
                 shared_accuracy))
    report = pd.DataFrame(rows, columns=["stage", "bytes", "accuracy"])
    report.insert(2, "ratio", dense_bytes / report["bytes"])
    return (report, shared.eval()) if return_model else report


# --------------------------------------------------------------------------------------
# real int8 kernels on the CPU

INT8_METHODS = ("auto", "dynamic", "static")


class _quiet_torch_ao(warnings.catch_warnings):
    """Silence torch.ao.quantization's notices while converting (deprecated, still works)."""

    def __enter__(self):
        result = super().__enter__()
        warnings.simplefilter("ignore")
        return result


def _float_copy(model: nn.Module) -> nn.Module:
    """A plain float copy: pruning masks, QAT quantizers and shared weights baked in."""
    from . import prune

    if any(isinstance(m, ActivationQuantizer) for m in model.modules()):
        raise InvalidParameterError("model carries activation fake-quantizers; int8 needs a float model "
                                    "(use the model before prepare_qat/fake_quantize_model)")
    plain = convert_qat(model) if _has_fake_quant(model) else _copy(model)
    if any(_shared(layer) is not None for _, layer in _quantizable(plain)):
        plain = unshare_weights(plain)
    for name, layer in _quantizable(plain):
        if torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(f"layer {name!r} has a parametrized weight that int8 cannot read")
    return prune.finalize(plain).eval()


def _static_int8(float_model: nn.Module, batches) -> nn.Module:
    aq = torch.ao.quantization
    engine = torch.backends.quantized.engine
    if engine == "none":
        raise RuntimeError("this PyTorch build has no quantized CPU engine; supported: "
                           f"{torch.backends.quantized.supported_engines}")
    wrapped = nn.Sequential(aq.QuantStub(), float_model, aq.DeQuantStub()).eval()
    wrapped.qconfig = aq.get_default_qconfig(engine)
    prepared = aq.prepare(wrapped)
    with torch.no_grad():
        for images in batches:
            prepared(images)
    quantized = aq.convert(prepared)
    with torch.no_grad():
        quantized(batches[0][:2])       # fails here if an op has no quantized kernel
    return quantized


def int8(model: nn.Module, calibration_data=None, *, method: str = "auto") -> nn.Module:
    """A copy of ``model`` that runs real int8 kernels on the CPU (fbgemm / oneDNN).

    - ``"dynamic"``: ``torch.ao.quantization.quantize_dynamic``: Linear
      weights stored as int8 (per tensor), activations quantized on the fly
      per batch. No calibration needed; Conv2d layers stay float.
    - ``"static"``: eager-mode post-training static quantization: Linear and
      Conv2d weights int8 per channel, activations uint8 with ranges observed
      on ``calibration_data`` (histogram observers), the model wrapped in
      ``QuantStub``/``DeQuantStub``. Needs every op of the forward pass to
      have a quantized kernel (ReLU, pooling, flatten do; a residual ``+`` does not).
    - ``"auto"``: ``"static"`` for models with convolutions when
      ``calibration_data`` is given (falling back to ``"dynamic"`` with a
      warning if the forward pass cannot run quantized), else ``"dynamic"``,
      which measured fastest and lossless for LeNet-300-100 (module docstring).

    Pruning masks, QAT quantizers and shared weights are baked in first.
    The chosen method is recorded in ``result.int8_method``.

    Args:
        model: a float network (left unchanged).
        calibration_data: a TensorData, an ``(images, labels)`` pair, a tensor of
            images or a loader of batches (a few hundred examples suffice).
        method: ``"auto"``, ``"dynamic"`` or ``"static"``.

    Returns:
        A new model in eval mode (CPU only).

    Example:
        >>> import pruning_kit as pk
        >>> fast = int8(pk.models.lenet_300_100(), torch.rand(64, 1, 28, 28))
        >>> fast.int8_method, fast.fc1._get_name(), fast(torch.rand(2, 1, 28, 28)).shape
        ('dynamic', 'DynamicQuantizedLinear', torch.Size([2, 10]))
        >>> conv = int8(pk.models.lenet5(), torch.rand(64, 1, 28, 28))
        >>> conv.int8_method, conv[1].conv1._get_name()
        ('static', 'QuantizedConv2d')
    """
    check_model(model)
    if method not in INT8_METHODS:
        raise InvalidParameterError(f"method must be one of {INT8_METHODS}, got {method!r}")
    batches = None if calibration_data is None else _calibration_batches(calibration_data, 256)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if method == "static" and batches is None:
        raise InvalidParameterError("method='static' needs calibration_data to observe activation ranges")
    if method == "dynamic" or (method == "auto" and not (has_conv and batches is not None)):
        if not any(isinstance(m, nn.Linear) for m in model.modules()):
            raise InvalidParameterError("dynamic int8 quantizes nn.Linear layers and the model has none; "
                                        "pass calibration_data for static quantization of convolutions")
        chosen = "dynamic"
    else:
        chosen = "static"
    float_model = _float_copy(model)
    failure = None
    if chosen == "static":
        try:
            with _quiet_torch_ao(), torch.no_grad():
                quantized = _static_int8(float_model, batches)
        except (RuntimeError, NotImplementedError, TypeError, ValueError) as err:
            if method == "static":
                raise InvalidParameterError("static int8 quantization failed, most likely an op in "
                                            "forward() has no quantized kernel (e.g. a residual '+'); "
                                            f"use method='dynamic'. Cause: {err}") from err
            failure = err
    if failure is not None:
        cause = (str(failure).splitlines() or [""])[0][:160]
        warnings.warn(f"static int8 quantization failed ({type(failure).__name__}: {cause}); "
                      "using dynamic quantization of the Linear layers instead", stacklevel=2)
        chosen, float_model = "dynamic", _float_copy(model)
    if chosen == "dynamic":
        with _quiet_torch_ao():
            quantized = torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear},
                                                               dtype=torch.qint8)
    quantized.int8_method = chosen
    return quantized.eval()
