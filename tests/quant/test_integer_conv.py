"""pk.quant.integer_conv: a convolution in integers (uint8 in, int8 per-channel weights, uint8 out)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruning_kit as pk
from pruning_kit.quant import (IntegerConv2d, fixed_point_multiplier, integer_conv2d,
                               requantize)


def random_codes(seed, n=2, c_in=3, c_out=4, size=7, k=3):
    generator = torch.Generator().manual_seed(seed)
    q_x = torch.randint(0, 256, (n, c_in, size, size), generator=generator).to(torch.uint8)
    q_w = torch.randint(-127, 128, (c_out, c_in, k, k), generator=generator).to(torch.int8)
    q_b = torch.randint(-5000, 5000, (c_out,), generator=generator).to(torch.int32)
    return q_x, q_w, q_b


# ------------------------------------------------------------------ fixed point


@pytest.mark.parametrize("multiplier", [1e-6, 1.2e-4, 0.0123, 0.5, 0.75, 0.999999999, 1.0, 3.7,
                                        1000.0])
def test_fixed_point_multiplier_is_an_int32_mantissa_and_a_shift(multiplier):
    m0, shift = fixed_point_multiplier(multiplier)
    assert isinstance(m0, int) and isinstance(shift, int)
    assert 2 ** 30 <= m0 < 2 ** 31 and shift >= 1
    assert abs(m0 / 2 ** shift / multiplier - 1) <= 2 ** -31


def test_fixed_point_multiplier_errors():
    for bad in (0, -0.5, 2.0 ** 30, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match="multiplier must be a number in"):
            fixed_point_multiplier(bad)


# ------------------------------------------------------------------ requantization


def test_requantize_matches_the_float_formula_except_on_ties():
    torch.manual_seed(0)
    acc = torch.randint(-2 ** 20, 2 ** 20, (4000,), dtype=torch.int32)
    for multiplier, zero_point in ((1.37e-4, 128), (0.02, 0), (0.4, 255)):
        got = requantize(acc, multiplier, zero_point)
        exact = acc.double() * multiplier
        expected = (torch.round(exact) + zero_point).clamp(0, 255)
        tie = ((exact - exact.floor()) - 0.5).abs() < 1e-6
        assert got.dtype == torch.uint8
        assert torch.equal(got.double()[~tie], expected[~tie])
        assert bool(((got.double() - expected).abs() <= 1).all())


def test_requantize_saturates_takes_one_multiplier_per_channel_and_fuses_relu():
    acc = torch.tensor([[1000, 1000], [-1000, 100000]], dtype=torch.int32)
    assert requantize(acc, 0.01, 100).tolist() == [[110, 110], [90, 255]]
    per_channel = requantize(acc, torch.tensor([0.01, 0.001]), 100, dim=1)
    assert per_channel.tolist() == [[110, 101], [90, 200]]
    assert requantize(acc, 0.01, 100, relu=True).tolist() == [[110, 110], [100, 255]]


def test_requantize_errors():
    acc = torch.zeros(2, 3, dtype=torch.int32)
    with pytest.raises(ValueError, match="acc must be an int32 tensor"):
        requantize(acc.long(), 0.1, 0)
    with pytest.raises(ValueError, match="zero_point must be an int in"):
        requantize(acc, 0.1, 256)
    with pytest.raises(ValueError, match="one value per channel: pass dim="):
        requantize(acc, [0.1, 0.2, 0.3], 0)
    with pytest.raises(ValueError, match=r"one value per channel \(3 along dim 1\)"):
        requantize(acc, [0.1, 0.2], 0, dim=1)
    with pytest.raises(ValueError, match="multiplier must be a number"):
        requantize(acc, 0.0, 0)


# ------------------------------------------------------------------ the accumulator


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), ((2, 1), (0, 2))])
@pytest.mark.parametrize("zero_point", [0, 37, 255])
def test_accumulator_is_the_exact_integer_sum(stride, padding, zero_point):
    q_x, q_w, q_b = random_codes(stride if isinstance(stride, int) else 5)
    acc = integer_conv2d(q_x, zero_point, q_w, q_b, stride=stride, padding=padding)
    # the definition, in float64 (exact for these integers): padding holds the real 0
    centred = q_x.double() - zero_point
    expected = F.conv2d(centred, q_w.double(), q_b.double(), stride=stride, padding=padding)
    assert acc.dtype == torch.int32 and acc.shape == expected.shape
    assert torch.equal(acc.double(), expected)


def test_accumulator_example_of_the_linear_layer_and_no_bias():
    q_x = torch.tensor([[100, 150, 50]], dtype=torch.uint8)[:, :, None, None]
    q_w = torch.tensor([[100, 50, -50], [-100, 20, 30]], dtype=torch.int8)[:, :, None, None]
    q_b = torch.tensor([2500, -1000], dtype=torch.int32)
    assert integer_conv2d(q_x, 100, q_w, q_b).flatten().tolist() == [7500, -1500]
    assert integer_conv2d(q_x, 100, q_w).flatten().tolist() == [5000, -500]


def test_accumulator_leaves_inputs_unchanged():
    q_x, q_w, q_b = random_codes(3)
    copies = [t.clone() for t in (q_x, q_w, q_b)]
    integer_conv2d(q_x, 12, q_w, q_b, padding=1)
    assert all(torch.equal(a, b) for a, b in zip((q_x, q_w, q_b), copies))


def test_accumulator_errors():
    q_x, q_w, q_b = random_codes(4)
    with pytest.raises(ValueError, match="q_x must be a 4-D uint8 tensor"):
        integer_conv2d(q_x.to(torch.int32), 0, q_w)
    with pytest.raises(ValueError, match="q_w must be a 4-D int8 tensor"):
        integer_conv2d(q_x, 0, q_w.to(torch.int32))
    with pytest.raises(ValueError, match="q_w takes 3 input channels but q_x has 2"):
        integer_conv2d(q_x[:, :2], 0, q_w)
    with pytest.raises(ValueError, match="x_zero_point must be an int in"):
        integer_conv2d(q_x, -1, q_w)
    with pytest.raises(ValueError, match=r"q_b must be an int32 tensor of shape \(4,\)"):
        integer_conv2d(q_x, 0, q_w, q_b[:3])
    with pytest.raises(ValueError, match="kernel does not fit"):
        integer_conv2d(q_x[:, :, :2, :2], 0, q_w)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        integer_conv2d(q_x, 0, q_w, stride=0)
    wide = torch.full((1, 70000, 1, 1), 255, dtype=torch.uint8)
    with pytest.raises(OverflowError, match="exceeds int32"):
        integer_conv2d(wide, 0, torch.full((1, 70000, 1, 1), 127, dtype=torch.int8))


# ------------------------------------------------------------------ the layer


def calibrated(conv, x):
    """Input codes and the input/output quantization of ``conv`` on ``x`` (uint8, min/max)."""
    q_x, s_x, z_x = pk.quant.quantize_affine(x, 8)
    with torch.no_grad():
        y = conv(x)
    _, s_y, z_y = pk.quant.quantize_affine(y, 8)
    return q_x.to(torch.uint8), s_x, z_x, y, s_y, z_y


def test_integer_layer_stays_within_its_error_bound_of_the_float_layer():
    torch.manual_seed(6)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.1, 3.0, 6).reshape(-1, 1, 1, 1))   # uneven channels
    x = torch.randn(4, 3, 8, 8)                                             # both signs: z_x > 0
    q_x, s_x, z_x, y, s_y, z_y = calibrated(conv, x)
    assert 0 < z_x < 255
    for per_channel in (True, False):
        layer = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y, per_channel=per_channel)
        assert layer.weight_q.dtype == torch.int8 and layer.bias_q.dtype == torch.int32
        assert int(layer.weight_q.abs().max()) <= 127
        y_int = pk.quant.dequantize_affine(layer(q_x), s_y, z_y)
        s_w = layer.weight_scale.reshape(1, -1, 1, 1)
        w_hat = layer.weight_q.double() * layer.weight_scale.reshape(-1, 1, 1, 1)
        bound = (s_y / 2 + s_x / 2 * w_hat.abs().sum(dim=(1, 2, 3)).reshape(1, -1, 1, 1)
                 + s_w / 2 * F.conv2d(x.double().abs(), torch.ones(1, 3, 3, 3, dtype=torch.float64),
                                      padding=1) + s_x * s_w / 2)
        assert bool(((y_int.double() - y.double()).abs() <= bound + 1e-6).all())
    per_channel = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y)
    per_tensor = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y, per_channel=False)
    assert per_channel.weight_scale.unique().numel() == 6
    assert per_tensor.weight_scale.unique().numel() == 1
    # the quiet channel keeps its resolution only with its own scale
    assert int(per_channel.weight_q[0].abs().max()) == 127 > int(per_tensor.weight_q[0].abs().max())


def test_integer_layer_relu_and_multiplier_and_unchanged_conv():
    torch.manual_seed(7)
    conv = nn.Conv2d(2, 3, 3, stride=2)
    state = {k: v.clone() for k, v in conv.state_dict().items()}
    q_x, s_x, z_x, y, s_y, z_y = calibrated(conv, torch.randn(2, 2, 9, 9))
    plain = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y)
    fused = IntegerConv2d.from_float(conv, s_x, z_x, s_y, z_y, relu=True)
    assert torch.equal(fused(q_x), plain(q_x).clamp(min=z_y))
    assert torch.allclose(plain.multiplier, s_x * plain.weight_scale / s_y)
    assert plain(q_x).shape == y.shape and plain.accumulate(q_x).dtype == torch.int32
    assert all(torch.equal(v, conv.state_dict()[k]) for k, v in state.items())
    assert "relu=False" in repr(plain)


def test_integer_layer_errors():
    conv = nn.Conv2d(2, 2, 3)
    with pytest.raises(ValueError, match="conv must be a torch.nn.Conv2d"):
        IntegerConv2d.from_float(nn.Linear(2, 2), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="groups=1, dilation=1"):
        IntegerConv2d.from_float(nn.Conv2d(2, 2, 3, groups=2), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="groups=1, dilation=1"):
        IntegerConv2d.from_float(nn.Conv2d(2, 2, 3, dilation=2), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="input_scale must be a positive number"):
        IntegerConv2d.from_float(conv, 0.0, 0, 0.1, 0)
    with pytest.raises(ValueError, match="output_zero_point must be an int in"):
        IntegerConv2d.from_float(conv, 0.1, 0, 0.1, 300)
    with pytest.raises(OverflowError, match="bias does not fit in int32"):
        with torch.no_grad():
            conv.bias.fill_(1e6)
        IntegerConv2d.from_float(conv, 1e-6, 0, 0.1, 0)
    assert math.isfinite(float(IntegerConv2d.from_float(nn.Conv2d(1, 1, 1), 0.1, 0, 0.1, 0)
                               .multiplier))
