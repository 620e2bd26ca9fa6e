"""A convolution run in integers: uint8 in, int8 weights with one scale per output channel, uint8 out.

The course's integer scheme, the one PyTorch's fbgemm/x86 backend and TensorFlow
Lite's int8 specification use (a simplification of Jacob et al. 2018, who store
weights as uint8 with a zero point of their own, section 2.4):

- input ``x ~ s_x (q_x - z_x)``: ``q_x`` uint8, one scale and zero point per tensor;
- weights ``W[c] ~ s_w[c] q_w[c]``: ``q_w`` int8 in [-127, 127] with zero point 0
  (the int8 range of Jacob et al. section 3.1), one scale per output channel ``c``;
- bias ``b[c] ~ s_x s_w[c] q_b[c]``: ``q_b`` int32 with zero point 0 (section 2.4);
- output ``y ~ s_y (q_y - z_y)``: ``q_y`` uint8.

An output of channel ``c`` is ``s_x s_w[c] (sum q_w (q_x - z_x) + q_b[c])``
(section 2.2 with the weights' zero point 0). Expanding the product as in
section 2.3 (Eq. 7-8), ``sum q_w (q_x - z_x) = sum q_w q_x - z_x sum q_w``: the
second term depends on the weights only, so it is computed once and folded into
the bias. What runs for every output is a plain sum of uint8 x int8 products
in a 32-bit accumulator (one VNNI instruction does four of them). Padding pads
with ``z_x``, the code of the real 0. The accumulator is requantized with
``M[c] = s_x s_w[c] / s_y``, stored in fixed point as ``M[c] = m0 / 2**shift``
(section 2.2, Eq. 5-6): ``q_y = clamp(round(M[c] acc) + z_y, 0, 255)``.

- :func:`fixed_point_multiplier` and :func:`requantize`: the fixed-point multiply.
- :func:`integer_conv2d`: the int32 accumulator of a convolution, integers only.
- :class:`IntegerConv2d`: a whole layer built from a float ``Conv2d``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> import pruning_kit as pk
    >>> _ = torch.manual_seed(0)
    >>> conv = nn.Conv2d(1, 2, 3, padding=1)
    >>> x = torch.rand(1, 1, 4, 4)
    >>> q_x, s_x, z_x = pk.quant.quantize_affine(x, 8)
    >>> y = conv(x).detach()
    >>> _, s_y, z_y = pk.quant.quantize_affine(y, 8)
    >>> layer = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y)
    >>> q_y = layer(q_x.to(torch.uint8))
    >>> q_y.dtype, bool(((s_y * (q_y.double() - z_y) - y).abs() <= 2 * s_y).all())
    (torch.uint8, True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import InvalidParameterError, check_bool, check_int, check_number, check_tensor

__all__ = ["fixed_point_multiplier", "requantize", "integer_conv2d", "IntegerConv2d"]

INT32_MAX = 2 ** 31 - 1
MAX_MULTIPLIER = 2.0 ** 30
"""Requantization multipliers must be below this (shift >= 1); in practice they are below 1."""


# --------------------------------------------------------------------------------------
# requantization


def fixed_point_multiplier(multiplier: float) -> tuple[int, int]:
    """A positive real multiplier as an int32 mantissa and a right shift: ``M ~ m0 / 2**shift``.

    Jacob et al. (2018, section 2.2, Eq. 6) write ``M = 2**-n M0`` with ``M0`` in
    [0.5, 1) stored as the int32 ``round(M0 * 2**31)``; here ``m0`` is that
    integer (in [2**30, 2**31)) and ``shift = 31 + n``. The relative error is
    below ``2**-31``.

    Args:
        multiplier: a number in (0, 2**30).

    Returns:
        ``(m0, shift)``, two Python ints.

    Example:
        >>> fixed_point_multiplier(0.75)          # 0.75 = 1610612736 / 2**31
        (1610612736, 31)
        >>> m0, shift = fixed_point_multiplier(1.2e-4)
        >>> m0, shift, abs(m0 / 2 ** shift / 1.2e-4 - 1) < 2 ** -31
        (2111062325, 44, True)
    """
    multiplier = check_number("multiplier", multiplier, low=0, high=MAX_MULTIPLIER,
                              low_open=True, high_open=True,
                              hint="the requantization multiplier s_x s_w / s_y")
    mantissa, exponent = math.frexp(multiplier)             # multiplier = mantissa * 2**exponent
    m0 = round(mantissa * 2 ** 31)
    shift = 31 - exponent
    if m0 == 2 ** 31:                                       # the mantissa rounded up to 1
        m0, shift = 2 ** 30, shift - 1
    return m0, shift


def _per_channel_multipliers(multiplier, channels, dim):
    """The multiplier(s) as a list, one per channel along ``dim`` (or one for the tensor)."""
    if isinstance(multiplier, torch.Tensor):
        values = multiplier.detach().reshape(-1).tolist()
    elif isinstance(multiplier, (list, tuple)):
        values = list(multiplier)
    else:
        return [multiplier]
    if dim is None:
        if len(values) != 1:
            raise InvalidParameterError("multiplier holds one value per channel: pass dim= (the "
                                        "channel dimension of acc)")
        return values
    if len(values) not in (1, channels):
        raise InvalidParameterError(f"multiplier must hold one value per channel ({channels} "
                                    f"along dim {dim}) or one value, got {len(values)}")
    return values * channels if len(values) == 1 else values


def requantize(acc: torch.Tensor, multiplier, zero_point: int, *, dim: int | None = None,
               relu: bool = False) -> torch.Tensor:
    """An int32 accumulator to uint8 codes: ``clamp(round(M * acc) + zero_point, 0, 255)``.

    ``M`` is applied in fixed point (:func:`fixed_point_multiplier`): an
    integer product and a rounding right shift, no float on the way. The shift
    rounds halves up (towards +infinity), where ``torch.round`` sends them to
    the even neighbour: the two differ only on exact ties. With ``relu`` the
    lower clamp is ``zero_point`` (the code of the real 0) instead of 0: a ReLU
    that follows the layer costs nothing (Jacob et al. 2018, section 2.4).

    Args:
        acc: an int32 tensor (the accumulator, bias included).
        multiplier: ``s_x s_w / s_y``, a number in (0, 2**30), or one per
            channel (a 1-D tensor or list) along ``dim``.
        zero_point: the output's zero point, an int in [0, 255].
        dim: the channel dimension of ``acc`` for per-channel multipliers (1
            for a convolution's N x C x H x W output).
        relu: clamp at ``zero_point`` from below.

    Returns:
        A uint8 tensor of ``acc``'s shape.

    Example:
        >>> requantize(torch.tensor([7500, -1500], dtype=torch.int32), 0.02, 50)
        tensor([200,  20], dtype=torch.uint8)
        >>> requantize(torch.tensor([[100, 100]], dtype=torch.int32), [0.5, 2.0], 10, dim=1)
        tensor([[ 60, 210]], dtype=torch.uint8)
        >>> requantize(torch.tensor([-1500], dtype=torch.int32), 0.02, 50, relu=True)
        tensor([50], dtype=torch.uint8)
    """
    check_tensor("acc", acc)
    if acc.dtype != torch.int32:
        raise InvalidParameterError(f"acc must be an int32 tensor (the accumulator), got dtype "
                                    f"{acc.dtype}; convert it with acc.to(torch.int32)")
    zero_point = check_int("zero_point", zero_point, low=0, high=255)
    check_bool("relu", relu)
    if dim is not None:
        dim = check_int("dim", dim, low=-acc.dim(), high=acc.dim() - 1,
                        hint=f"a dimension of acc, whose shape is {tuple(acc.shape)}") % acc.dim()
    channels = acc.shape[dim] if dim is not None else 1
    pairs = [fixed_point_multiplier(m) for m in _per_channel_multipliers(multiplier, channels, dim)]
    shape = [1] * acc.dim()
    if dim is not None:
        shape[dim] = -1
    m0 = torch.tensor([p[0] for p in pairs], dtype=torch.int64).reshape(shape)
    shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64).reshape(shape)
    product = acc.to(torch.int64) * m0                      # |acc| < 2**31, m0 < 2**31: fits int64
    rounded = (product + (1 << (shift - 1))) >> shift       # round half up, then drop the shift
    low = zero_point if relu else 0
    return (rounded + zero_point).clamp(low, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------
# the integer convolution


def _pair(name, value, low):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidParameterError(f"{name} must be an int or a pair of ints, got {value!r}")
        return tuple(check_int(name, v, low=low) for v in value)
    value = check_int(name, value, low=low, hint="or a pair of ints")
    return value, value


def integer_conv2d(q_x: torch.Tensor, x_zero_point: int, q_w: torch.Tensor,
                   q_b: torch.Tensor | None = None, *, stride=1, padding=0) -> torch.Tensor:
    """The int32 accumulator of a convolution: ``sum q_w (q_x - x_zero_point) + q_b``, in integers.

    Computed as Jacob et al. (2018, section 2.3) expand it: the sum of the
    uint8 x int8 products ``q_w q_x`` over each window (the input padded with
    ``x_zero_point``, the code of the real 0), plus ``q_b - x_zero_point * sum
    q_w`` per output channel, a constant of the weights. Every step is integer
    arithmetic (int64 inside, int32 out).

    Args:
        q_x: uint8 input codes, N x C_in x H x W.
        x_zero_point: the input's zero point, an int in [0, 255].
        q_w: int8 weight codes, C_out x C_in x kH x kW (zero point 0).
        q_b: int32 bias codes (C_out,), on the scale ``s_x s_w[c]``; None for none.
        stride: an int or a pair of ints >= 1.
        padding: an int or a pair of ints >= 0 (zero padding in real terms).

    Returns:
        An int32 tensor N x C_out x H_out x W_out.

    Raises:
        OverflowError: if a sum does not fit in int32 (an engine would wrap around).

    Example:
        >>> q_x = torch.tensor([[[[100, 150, 50]]]], dtype=torch.uint8)     # 1 x 1 x 1 x 3
        >>> q_w = torch.tensor([[[[100, 50, -50]]], [[[-100, 20, 30]]]], dtype=torch.int8)
        >>> integer_conv2d(q_x, 100, q_w, torch.tensor([2500, -1000], dtype=torch.int32))
        tensor([[[[ 7500]],
        <BLANKLINE>
                 [[-1500]]]], dtype=torch.int32)
    """
    check_tensor("q_x", q_x)
    check_tensor("q_w", q_w)
    if q_x.dtype != torch.uint8 or q_x.dim() != 4:
        raise InvalidParameterError(f"q_x must be a 4-D uint8 tensor (N x C x H x W input codes), "
                                    f"got dtype {q_x.dtype} and shape {tuple(q_x.shape)}")
    if q_w.dtype != torch.int8 or q_w.dim() != 4:
        raise InvalidParameterError(f"q_w must be a 4-D int8 tensor (C_out x C_in x kH x kW weight "
                                    f"codes), got dtype {q_w.dtype} and shape {tuple(q_w.shape)}")
    if q_w.shape[1] != q_x.shape[1]:
        raise InvalidParameterError(f"q_w takes {q_w.shape[1]} input channels but q_x has "
                                    f"{q_x.shape[1]}")
    x_zero_point = check_int("x_zero_point", x_zero_point, low=0, high=255)
    if q_b is not None:
        check_tensor("q_b", q_b)
        if q_b.dtype != torch.int32 or tuple(q_b.shape) != (q_w.shape[0],):
            raise InvalidParameterError(f"q_b must be an int32 tensor of shape ({q_w.shape[0]},), "
                                        f"got dtype {q_b.dtype} and shape {tuple(q_b.shape)}")
    (sh, sw), (ph, pw) = _pair("stride", stride, 1), _pair("padding", padding, 0)
    n, _, height, width = q_x.shape
    out_c, _, kh, kw = q_w.shape
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    if out_h < 1 or out_w < 1:
        raise InvalidParameterError(f"the {kh} x {kw} kernel does not fit the {height} x {width} "
                                    f"input with padding {(ph, pw)}")
    x = F.pad(q_x.to(torch.int64), (pw, pw, ph, ph), value=x_zero_point)
    w = q_w.to(torch.int64)
    acc = torch.zeros(n, out_c, out_h, out_w, dtype=torch.int64)
    for i in range(kh):
        for j in range(kw):
            window = x[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
            acc += torch.einsum("nchw,oc->nohw", window, w[:, :, i, j])
    constant = -x_zero_point * w.sum(dim=(1, 2, 3))            # the zero point's term, folded
    if q_b is not None:
        constant = constant + q_b.to(torch.int64)
    acc += constant.reshape(1, -1, 1, 1)
    if bool((acc.abs() > INT32_MAX).any()):
        raise OverflowError("the accumulator exceeds int32: an engine would wrap around; use "
                            "fewer input channels per output or a smaller kernel")
    return acc.to(torch.int32)


class IntegerConv2d(nn.Module):
    """A ``Conv2d`` that runs in integers: uint8 codes in, uint8 codes out (module docstring).

    Build it with :meth:`from_float`. Buffers: ``weight_q`` (int8),
    ``weight_scale`` (float64, one per output channel), ``bias_q`` (int32, on
    the scale ``input_scale * weight_scale[c]``) and ``multiplier`` (float64,
    ``input_scale * weight_scale[c] / output_scale``); :meth:`accumulate` gives
    the int32 accumulator, ``forward`` the requantized uint8 output, which
    ``pk.quant.dequantize_affine(q_y, output_scale, output_zero_point)`` turns
    back into real numbers.

    Example:
        >>> conv = nn.Conv2d(1, 3, 3, padding=1)
        >>> layer = IntegerConv2d.from_float(conv, 1 / 255, 0, 0.01, 128, per_channel=False)
        >>> layer.weight_scale.unique().numel(), layer.weight_q.dtype, layer.bias_q.dtype
        (1, torch.int8, torch.int32)
        >>> layer(torch.zeros(1, 1, 4, 4, dtype=torch.uint8)).shape
        torch.Size([1, 3, 4, 4])
    """

    def __init__(self, weight_q, weight_scale, bias_q, input_scale, input_zero_point,
                 output_scale, output_zero_point, *, stride=(1, 1), padding=(0, 0),
                 relu=False):
        super().__init__()
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias_q", bias_q)
        self.input_scale, self.input_zero_point = input_scale, input_zero_point
        self.output_scale, self.output_zero_point = output_scale, output_zero_point
        self.stride, self.padding, self.relu = stride, padding, relu
        self.register_buffer("multiplier", input_scale * weight_scale / output_scale)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, input_scale: float, input_zero_point: int,
                   output_scale: float, output_zero_point: int, *, per_channel: bool = True,
                   relu: bool = False) -> "IntegerConv2d":
        """The integer version of ``conv`` for the given input and output quantization.

        The weights are quantized symmetrically to int8 (``pk.quant.quantize_symmetric``),
        one scale per output channel (or one for the tensor with ``per_channel=False``);
        the bias becomes ``round(b[c] / (input_scale * weight_scale[c]))`` in int32.

        Args:
            conv: a float ``nn.Conv2d`` (groups 1, dilation 1, zero padding), left
                unchanged; fold a batch norm into it first (``pk.quant.fold_batchnorm``).
            input_scale, input_zero_point: how the input is quantized (uint8).
            output_scale, output_zero_point: how the output is quantized (uint8).
            per_channel: one weight scale per output channel.
            relu: fuse a ReLU into the requantization.

        Returns:
            An ``IntegerConv2d``.
        """
        from .uniform import quantize_symmetric

        if not isinstance(conv, nn.Conv2d):
            raise InvalidParameterError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" \
                or isinstance(conv.padding, str):
            raise InvalidParameterError(
                "IntegerConv2d runs plain convolutions: groups=1, dilation=1, numeric zero "
                f"padding; got groups={conv.groups}, dilation={conv.dilation}, "
                f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        input_scale = check_number("input_scale", input_scale, low=0, low_open=True)
        output_scale = check_number("output_scale", output_scale, low=0, low_open=True)
        input_zero_point = check_int("input_zero_point", input_zero_point, low=0, high=255)
        output_zero_point = check_int("output_zero_point", output_zero_point, low=0, high=255)
        check_bool("per_channel", per_channel)
        check_bool("relu", relu)
        weight = conv.weight.detach()
        q_w, scale = quantize_symmetric(weight, 8, dim=0 if per_channel else None)
        scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1).expand(
            conv.out_channels).clone()
        bias = (conv.bias.detach().double() if conv.bias is not None
                else torch.zeros(conv.out_channels, dtype=torch.float64))
        q_b = torch.round(bias / (input_scale * scale))
        if bool((q_b.abs() > INT32_MAX).any()):
            raise OverflowError("a bias does not fit in int32 at the scale input_scale * "
                                "weight_scale: check input_scale")
        return cls(q_w.to(torch.int8), scale, q_b.to(torch.int32), input_scale, input_zero_point,
                   output_scale, output_zero_point, stride=conv.stride, padding=conv.padding,
                   relu=relu)

    def accumulate(self, q_x: torch.Tensor) -> torch.Tensor:
        """The int32 accumulator (bias included) for uint8 input codes ``q_x``."""
        return integer_conv2d(q_x, self.input_zero_point, self.weight_q, self.bias_q,
                              stride=self.stride, padding=self.padding)

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        return requantize(self.accumulate(q_x), self.multiplier, self.output_zero_point, dim=1,
                          relu=self.relu)

    def extra_repr(self) -> str:
        return (f"{self.weight_q.shape[1]}, {self.weight_q.shape[0]}, "
                f"kernel_size={tuple(self.weight_q.shape[2:])}, stride={self.stride}, "
                f"padding={self.padding}, input=({self.input_scale:.4g}, {self.input_zero_point}), "
                f"output=({self.output_scale:.4g}, {self.output_zero_point}), relu={self.relu}")
