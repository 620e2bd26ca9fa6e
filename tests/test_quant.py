"""pk.quant: the quantization formulas (checked by hand and against DESIGN.md), weight
sharing, Huffman coding, Deep Compression, int8 kernels, binarized layers and QAT."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruning_kit as pk
from pruning_kit import quant


# ------------------------------------------------------------------ reference formulas
# Written literally from the `binarized` assignment table in DESIGN.md, the way a
# student would (float32 tensor arithmetic, Python round), to check the library
# agrees with the semantics the reference solutions follow.


def design_quantize_affine(x, bits):
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)   # the range holds 0
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
    zero_point = int(round(qmin - float(lo) / scale))
    zero_point = min(max(zero_point, qmin), qmax)
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int64)
    return q, scale, zero_point


def design_quantize_symmetric(x, bits):
    qmax = 2 ** (bits - 1) - 1
    peak = float(x.abs().max())
    scale = peak / qmax if peak > 0 else 1.0
    return torch.clamp(torch.round(x / scale), -qmax, qmax).to(torch.int64), scale


def assert_levels_agree(q, ref, x, scale):
    """Equal levels, except off by one where x / scale sits on a rounding boundary
    (within float32 precision of it, as DESIGN.md allows)."""
    diff = (q - ref).abs()
    assert int(diff.max()) <= 1
    ratio = (x.double() / scale).flatten()[diff.flatten() > 0]
    tolerance = 1e-6 * ratio.abs() + 1e-9
    assert bool(((ratio - ratio.floor() - 0.5).abs() < tolerance).all())


# ------------------------------------------------------------------ affine, by hand


def test_affine_hand_computed_with_halves_to_even():
    # bits=2: levels 0..3; range [0, 3] gives scale 1 and zero point 0
    q, scale, zero_point = quant.quantize_affine(torch.tensor([0.0, 0.5, 1.5, 2.5, 3.0]), 2)
    assert (scale, zero_point) == (1.0, 0)
    assert q.tolist() == [0, 0, 2, 2, 3]          # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    assert q.dtype == torch.int64
    assert isinstance(scale, float) and isinstance(zero_point, int)


def test_affine_mixed_signs():
    q, scale, zero_point = quant.quantize_affine(torch.tensor([-1.0, 0.0, 0.5, 2.0]), bits=2)
    # scale = 3 / 3 = 1, zero_point = round(0 - (-1) / 1) = 1, q = round(x) + 1
    assert (q.tolist(), scale, zero_point) == ([0, 1, 1, 3], 1.0, 1)
    assert quant.dequantize_affine(q, scale, zero_point).tolist() == [-1.0, 0.0, 0.0, 2.0]


def test_affine_negative_range():
    # min -3, max 0: scale 1, zero_point 3; round(-2.5) = -2 (half to even)
    q, scale, zero_point = quant.quantize_affine(torch.tensor([-3.0, -2.5, -1.0, 0.0]), 2)
    assert (q.tolist(), scale, zero_point) == ([0, 1, 2, 3], 1.0, 3)
    # all negative, away from 0: the range stretches to [-6, 0], scale 2, zero_point 3 = qmax
    q, scale, zero_point = quant.quantize_affine(torch.tensor([-6.0, -4.0, -3.0, -2.0]), 2)
    assert (q.tolist(), scale, zero_point) == ([0, 1, 1, 2], 2.0, 3)   # -1.5 -> -2, -1 -> -1
    assert quant.dequantize_affine(q, scale, zero_point).tolist() == [-6.0, -4.0, -4.0, -2.0]


def test_affine_range_always_holds_zero_so_every_value_in_range_comes_back_within_half_a_step():
    # [1, 2, 5] at 8 bits: the range is [0, 5], zero_point 0, and 5 comes back as 5 (the old
    # rule without 0 in the range clamped the zero point and returned [1, 2, 4])
    q, scale, zero_point = quant.quantize_affine(torch.tensor([1.0, 2.0, 5.0]), 8)
    assert (q.tolist(), zero_point) == ([51, 102, 255], 0) and math.isclose(scale, 5 / 255)
    assert quant.dequantize_affine(q, scale, zero_point).tolist() == pytest.approx([1, 2, 5])
    q, scale, zero_point = quant.quantize_affine(torch.tensor([1.0, 2.0, 3.0, 4.0]), 2)
    assert (q.tolist(), zero_point) == ([1, 2, 2, 3], 0) and math.isclose(scale, 4 / 3)
    # all negative: zero_point is qmax, and 0 is exact
    q, scale, zero_point = quant.quantize_affine(torch.tensor([-3.0, -2.0, -1.0]), 8)
    assert zero_point == 255 and int(q[0]) == 0
    for x in (torch.rand(200) + 1.0, -torch.rand(200) - 1.0, torch.randn(200) * 4 + 7):
        for bits in (2, 4, 8):
            q, scale, zero_point = quant.quantize_affine(x, bits)
            x_hat = quant.dequantize_affine(q, scale, zero_point)
            assert float((x_hat - x).abs().max()) <= scale / 2 * (1 + 1e-5)
            assert quant.dequantize_affine(torch.tensor([zero_point]), scale, zero_point) == 0
    # a range that starts at 0 (ReLU outputs, images) is represented exactly at its ends
    x = torch.tensor([0.0, 0.25, 1.0])
    q, scale, zero_point = quant.quantize_affine(x, 8)
    assert zero_point == 0 and q.tolist() == [0, round(0.25 * 255), 255]
    assert math.isclose(scale, 1 / 255)


def test_affine_clamp_acts_in_range_only_on_the_top_value_at_a_tie_and_by_half_a_step():
    # the counterexample to "nothing in the range is clipped": [-1.5, 1.5] at 2 bits, scale 1,
    # -lo / scale = 1.5 rounds (to even) to zero point 2, and round(1.5) + 2 = 4 > qmax = 3
    x = torch.tensor([-1.5, 1.5])
    q, scale, zero_point = quant.quantize_affine(x, 2)
    assert (q.tolist(), scale, zero_point) == ([0, 3], 1.0, 2)
    assert (torch.round(x / scale) + zero_point).tolist() == [0.0, 4.0]
    assert quant.dequantize_affine(q, scale, zero_point).tolist() == [-2.0, 1.0]
    # every tie of the zero point, at every width: only the largest value can pass qmax (by one
    # level), the bottom never passes 0, and every value stays within half a step
    for bits in range(1, 9):
        qmax = 2 ** bits - 1
        for zero_star in [m + 0.5 for m in range(qmax)]:
            lo, hi = -zero_star, qmax - zero_star          # scale 1: x / scale = x
            x = torch.cat([torch.tensor([lo, hi]), torch.linspace(lo, hi, 97)]).double()
            q, scale, zero_point = quant.quantize_affine(x, bits)
            assert scale == 1.0
            unclamped = torch.round(x) + zero_point
            assert int(unclamped.min()) >= 0 and int(unclamped.max()) <= qmax + 1
            assert bool((x[unclamped > qmax] == hi).all())
            x_hat = quant.dequantize_affine(q, scale, zero_point).double()
            assert float((x_hat - x).abs().max()) <= 0.5 + 1e-9


@pytest.mark.parametrize("value,expected", [(5.0, (255, 0, 5 / 255)), (-3.0, (0, 255, 3 / 255)),
                                            (0.0, (0, 0, 1.0)), (300.0, (255, 0, 300 / 255))])
def test_affine_constant_tensor_spans_zero_to_its_value(value, expected):
    # the range [min(v, 0), max(v, 0)]: a constant is exact; only an all-zero tensor uses scale 1
    q, scale, zero_point = quant.quantize_affine(torch.full((3,), value), 8)
    assert (int(q[0]), zero_point) == expected[:2] and math.isclose(scale, expected[2])
    assert bool((q == q[0]).all())
    assert quant.dequantize_affine(q, scale, zero_point)[0].item() == pytest.approx(value)


def test_dequantize_affine_formula_and_dtype():
    x_hat = quant.dequantize_affine(torch.tensor([0, 1, 255]), 0.5, 1)
    assert x_hat.dtype == torch.float32
    assert x_hat.tolist() == [-0.5, 0.0, 127.0]
    # float64 data comes back as float32 too
    q, s, z = quant.quantize_affine(torch.tensor([-1.0, 1.0], dtype=torch.float64), 8)
    assert quant.dequantize_affine(q, s, z).dtype == torch.float32


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_affine_matches_design_reference(bits, dtype):
    torch.manual_seed(bits)
    for x in (torch.randn(500, dtype=dtype) * 3 + 1, torch.rand(64, dtype=dtype) - 2.0,
              torch.rand(64, dtype=dtype) + 0.5):
        q, scale, zero_point = quant.quantize_affine(x, bits)
        ref_q, ref_scale, ref_zero_point = design_quantize_affine(x, bits)
        assert math.isclose(scale, ref_scale, rel_tol=1e-6)
        assert zero_point == ref_zero_point
        assert_levels_agree(q, ref_q, x, scale)
        x_hat = quant.dequantize_affine(q, scale, zero_point)
        ref_hat = (ref_scale * (ref_q - ref_zero_point)).float()
        assert torch.allclose(x_hat, ref_hat, atol=scale * 1.001)


def test_affine_error_is_at_most_half_a_step_inside_the_range():
    torch.manual_seed(0)
    x = torch.randn(1000)
    q, scale, zero_point = quant.quantize_affine(x, 6)
    assert float((quant.dequantize_affine(q, scale, zero_point) - x).abs().max()) <= \
        scale / 2 + 1e-6
    assert int(q.min()) == 0 and int(q.max()) == 63


# ------------------------------------------------------------------ per channel


def test_affine_per_channel_equals_per_tensor_on_each_slice():
    torch.manual_seed(1)
    w = torch.randn(6, 3, 3, 3) * torch.arange(1.0, 7.0).reshape(6, 1, 1, 1)
    for dim in (0, 1, -1):
        q, scale, zero_point = quant.quantize_affine(w, 4, dim=dim)
        size = w.shape[dim]
        assert scale.shape == (size,) and zero_point.shape == (size,)
        assert zero_point.dtype == torch.int64
        x_hat = quant.dequantize_affine(q, scale, zero_point, dim=dim)
        for c in range(size):
            qc, sc, zc = quant.quantize_affine(w.select(dim, c), 4)
            assert torch.equal(q.select(dim, c), qc)
            assert math.isclose(float(scale[c]), sc) and int(zero_point[c]) == zc
            assert torch.allclose(x_hat.select(dim, c), quant.dequantize_affine(qc, sc, zc))


def test_per_channel_keeps_small_channels_that_per_tensor_wipes_out():
    torch.manual_seed(2)
    w = torch.randn(8, 50) * torch.logspace(-2, 0, 8).reshape(8, 1)
    per_tensor = quant.fake_quantize(w, 4)
    per_channel = quant.fake_quantize(w, 4, dim=0)
    assert quant.quantization_mse(w, per_channel) < quant.quantization_mse(w, per_tensor)
    # the smallest channel: one coarse shared grid leaves it almost all zero
    assert quant.sqnr_db(w[0], per_tensor[0]) < 3
    assert quant.sqnr_db(w[0], per_channel[0]) > 15


def test_per_channel_ranges_hold_zero_and_an_all_zero_row_uses_scale_one():
    w = torch.tensor([[2.0, 2.0], [-1.0, 1.0], [0.0, 0.0], [3.0, 6.0]])
    q, scale, zero_point = quant.quantize_affine(w, 8, dim=0)
    assert q[0].tolist() == [255, 255] and int(zero_point[0]) == 0
    assert scale[2].item() == 1.0 and q[2].tolist() == [0, 0] and int(zero_point[2]) == 0
    assert q[3].tolist() == [128, 255] and math.isclose(scale[3].item(), 6 / 255)


# ------------------------------------------------------------------ symmetric


def test_symmetric_hand_computed():
    q, scale = quant.quantize_symmetric(torch.tensor([-3.0, -0.5, 0.5, 1.5]), bits=3)
    assert (q.tolist(), scale) == ([-3, 0, 0, 2], 1.0)          # halves to even
    q, scale = quant.quantize_symmetric(torch.tensor([-4.0, 1.0]), bits=3)
    assert math.isclose(scale, 4 / 3) and q.tolist() == [-3, 1]  # 1 / (4/3) = 0.75 -> 1
    assert quant.dequantize_symmetric(q, scale).tolist() == pytest.approx([-4.0, 4 / 3])


def test_symmetric_all_zero_and_all_positive():
    q, scale = quant.quantize_symmetric(torch.zeros(5), bits=8)
    assert scale == 1.0 and q.tolist() == [0] * 5
    q, scale = quant.quantize_symmetric(torch.tensor([1.0, 2.0, 4.0]), bits=4)
    assert math.isclose(scale, 4 / 7) and q.tolist() == [2, 4, 7]   # 1.75 -> 2, 3.5 -> 4


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_symmetric_matches_design_reference_and_never_uses_minus_2_pow(bits):
    torch.manual_seed(bits)
    x = torch.randn(400) * 2
    q, scale = quant.quantize_symmetric(x, bits)
    ref_q, ref_scale = design_quantize_symmetric(x, bits)
    assert math.isclose(scale, ref_scale, rel_tol=1e-6)
    assert_levels_agree(q, ref_q, x, scale)
    qmax = 2 ** (bits - 1) - 1
    assert -qmax <= int(q.min()) and int(q.max()) <= qmax
    assert int(q.abs().max()) == qmax         # the largest |x| lands on the last level


def test_symmetric_per_channel():
    w = torch.tensor([[0.0, 0.0], [-2.0, 1.0], [0.5, 0.25]])
    q, scale = quant.quantize_symmetric(w, bits=2, dim=0)
    assert scale.tolist() == [1.0, 2.0, 0.5]
    assert q.tolist() == [[0, 0], [-1, 0], [1, 0]]     # 0.5 -> 0 and 0.25/0.5 = 0.5 -> 0
    assert quant.dequantize_symmetric(q, scale, dim=0).tolist() == \
        [[0.0, 0.0], [-2.0, 0.0], [0.5, 0.0]]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("bits", [0, 33, -1])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match=r"bits must be an int in \[1, 32\]"):
        quant.quantize_affine(torch.randn(4), bits)


@pytest.mark.parametrize("bits", [2.0, "8", True, None])
def test_bits_wrong_type(bits):
    with pytest.raises(TypeError, match="bits must be an int"):
        quant.quantize_affine(torch.randn(4), bits)


def test_symmetric_bits_limits():
    with pytest.raises(ValueError, match=r"\[2, 32\]"):
        quant.quantize_symmetric(torch.randn(4), 1)
    with pytest.raises(ValueError, match=r"\[2, 32\]"):
        quant.quantize_symmetric(torch.randn(4), 33)


@pytest.mark.parametrize("fn", [quant.quantize_affine, quant.quantize_symmetric,
                                quant.fake_quantize])
def test_bad_tensors(fn):
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.tensor([1, 2, 3]), 8)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([1.0, 2.0], 8)
    with pytest.raises(ValueError, match="empty"):
        fn(torch.tensor([]), 8)
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.tensor([1.0, float("nan")]), 8)
    with pytest.raises(ValueError, match="dim must be an int in"):
        fn(torch.randn(3, 4), 8, dim=2)


def test_dequantize_errors():
    q = torch.tensor([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="scale must be a positive"):
        quant.dequantize_affine(q, 0.0, 0)
    with pytest.raises(ValueError, match="pass dim="):
        quant.dequantize_affine(q, torch.tensor([1.0, 2.0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="one value per channel"):
        quant.dequantize_affine(q, torch.tensor([1.0, 2.0, 3.0]), 0, dim=0)
    with pytest.raises(TypeError, match="zero_point must be an int"):
        quant.dequantize_affine(q, 1.0, 0.5)


# ------------------------------------------------------------------ error measures


def test_mse_and_sqnr_by_hand():
    assert quant.quantization_mse(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.5])) == 0.125
    assert quant.sqnr_db(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.5])) == \
        pytest.approx(20.0)
    assert quant.sqnr_db(torch.ones(3), torch.ones(3)) == math.inf
    with pytest.raises(ValueError, match="same shape"):
        quant.sqnr_db(torch.ones(3), torch.ones(4))


def test_sqnr_gains_about_six_db_per_bit():
    x = torch.linspace(-1, 1, 20001)
    sqnr = [quant.sqnr_db(x, quant.fake_quantize(x, b)) for b in range(3, 9)]
    steps = [b - a for a, b in zip(sqnr, sqnr[1:])]
    assert all(5.8 < s < 6.8 for s in steps)


# ------------------------------------------------------------------ whole models


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_fake_quantize_model_levels_and_copy(bits):
    torch.manual_seed(0)
    model = pk.models.lenet_300_100()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quant.fake_quantize_model(model, bits)
    for name, layer in pk.models.prunable(q):
        levels = [layer.weight[c].unique().numel() for c in range(layer.out_features)]
        assert max(levels) <= 2 ** bits
        assert torch.equal(layer.bias, getattr(model, name).bias)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    per_tensor = quant.fake_quantize_model(model, bits, per_channel=False, scheme="affine")
    assert per_tensor.fc1.weight.unique().numel() <= 2 ** bits


def test_fake_quantize_model_keeps_pruned_zeros():
    model = pk.prune.magnitude(pk.models.lenet_300_100(), 0.8)
    q = quant.fake_quantize_model(model, 3, scheme="symmetric")
    assert pk.prune.is_pruned(q.fc1)
    assert torch.equal(q.fc1.weight_mask, model.fc1.weight_mask)
    assert bool((q.fc1.weight[model.fc1.weight_mask == 0] == 0).all())
    assert q.fc1.weight[0].unique().numel() <= 7      # symmetric 3 bits: levels -3..3


def test_fake_quantize_model_errors():
    model = pk.models.lenet_300_100()
    for bits in (0, 9):
        with pytest.raises(ValueError, match=r"\[1, 8\]"):
            quant.fake_quantize_model(model, bits)
    with pytest.raises(ValueError, match=r"\[2, 8\]"):
        quant.fake_quantize_model(model, 1, scheme="symmetric")
    with pytest.raises(ValueError, match="scheme must be one of"):
        quant.fake_quantize_model(model, 4, scheme="log")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        quant.fake_quantize_model(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="calibration_data"):
        quant.fake_quantize_model(model, 4, activation_bits=4)


def test_qat_gradient_is_straight_through():
    layer = nn.Linear(4, 3)
    qat = quant.prepare_qat(layer, bits=2)
    x = torch.randn(5, 4)
    qat(x).pow(2).sum().backward()
    w_hat = qat.weight.detach().requires_grad_()
    F.linear(x, w_hat, qat.bias.detach()).pow(2).sum().backward()
    assert torch.allclose(qat.parametrizations.weight.original.grad, w_hat.grad)
    plain = quant.convert_qat(qat)
    assert isinstance(plain.weight, nn.Parameter)
    assert torch.equal(plain.weight, qat.weight.detach())
    assert plain.weight[0].unique().numel() <= 4
    with pytest.raises(ValueError, match="finalize"):
        quant.prepare_qat(pk.prune.magnitude(pk.models.lenet_300_100(), 0.5), 4)


def _small_mlp(hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def test_qat_beats_ptq_at_4_bits(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    model = _small_mlp()
    pk.train.fit(model, train, epochs=10, lr=2e-3, seed=0, progress=False)
    table = quant.qat_vs_ptq(model, train, test, bits=(4,))
    row = table.iloc[0]
    assert row.qat_accuracy > row.ptq_accuracy
    assert row.qat_accuracy > 0.85


# ------------------------------------------------------------------ binarized


def test_binarize_sign_of_zero_and_dtype():
    for dtype in (torch.float32, torch.float64, torch.float16):
        out = quant.binarize(torch.tensor([-2.0, -0.0, 0.0, 1e-3, -1e-3], dtype=dtype))
        assert out.dtype == dtype
        assert out.tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0]


def test_sign_ste_gradient_mask():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 1.0, 1.0001, 2.0], requires_grad=True)
    upstream = torch.arange(1.0, 8.0)
    y = quant.SignSTE.apply(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.backward(upstream)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]   # |x| <= 1 passes


def test_binary_linear_follows_design():
    torch.manual_seed(0)
    layer = quant.BinaryLinear(6, 3)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (3, 6) and layer.bias.shape == (3,)
    assert quant.BinaryLinear(6, 3, bias=False).bias is None
    with torch.no_grad():
        layer.weight.mul_(4)          # some latent weights beyond the STE window
    x = torch.randn(5, 6)
    alpha = layer.weight.detach().abs().mean(dim=1, keepdim=True)
    assert torch.allclose(layer.alpha(), alpha)
    expected = F.linear(x, alpha * torch.where(layer.weight >= 0, 1.0, -1.0), layer.bias)
    out = layer(x)
    assert torch.allclose(out, expected)
    out.sum().backward()
    # alpha is a constant: dL/dW = (dL/dW_b) * alpha * (|W| <= 1)
    grad_wb = torch.ones(5, 3).T @ x
    manual = grad_wb * alpha * (layer.weight.detach().abs() <= 1)
    assert torch.allclose(layer.weight.grad, manual)
    assert bool((layer.weight.grad[layer.weight.detach().abs() > 1] == 0).all())


def test_binary_linear_binarized_input():
    layer = quant.BinaryLinear(4, 2, binarize_input=True)
    x = torch.tensor([[0.3, -0.2, 0.0, 5.0]])
    expected = F.linear(torch.tensor([[1.0, -1.0, 1.0, 1.0]]), layer.binary_weight(), layer.bias)
    assert torch.allclose(layer(x), expected)


def test_binary_conv_xnor_scaling():
    torch.manual_seed(0)
    conv = quant.BinaryConv2d(3, 4, 3, padding=1)
    alpha = conv.weight.detach().abs().mean(dim=(1, 2, 3))
    assert torch.allclose(conv.alpha().flatten(), alpha)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, alpha.reshape(4, 1, 1, 1) * torch.sign(conv.weight), conv.bias,
                        padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    both = quant.BinaryConv2d(3, 4, 3, binarize_input=True)
    assert torch.allclose(both(x), F.conv2d(quant.binarize(x), both.binary_weight(), both.bias))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        conv(torch.randn(2, 2, 8, 8))


def test_binary_layer_errors():
    with pytest.raises(ValueError, match="in_features"):
        quant.BinaryLinear(0, 3)
    with pytest.raises(ValueError, match="expects input of shape"):
        quant.BinaryLinear(4, 2)(torch.randn(3, 5))
    with pytest.raises(ValueError, match="hidden"):
        quant.binarized_mlp(hidden=())
    with pytest.raises(TypeError, match="real numbers"):
        quant.binarize(torch.tensor([True, False]))


def test_binarized_mlp_learns_mnist5k(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    model = quant.binarized_mlp(hidden=(256,))
    pk.train.fit(model, train, epochs=5, lr=1e-3, seed=0, progress=False,
                 callbacks=[quant.clip_latent_weights])
    assert float(model[1].weight.detach().abs().max()) <= 1.0
    assert pk.train.evaluate(model, test) >= 0.85


# ------------------------------------------------------------------ Huffman


def test_huffman_known_code_and_lengths():
    code = quant.huffman_code([0, 0, 0, 0, 1, 1, 2, 3])
    assert code.codes == {0: "0", 1: "10", 2: "110", 3: "111"}
    assert code.encoded_bits == 4 * 1 + 2 * 2 + 1 * 3 + 1 * 3
    assert quant.huffman_code([7, 7]).codes == {7: "0"}


def test_huffman_round_trip_and_prefix_free():
    torch.manual_seed(0)
    symbols = torch.multinomial(torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05]), 3000,
                                replacement=True)
    code = quant.huffman_code(symbols)
    words = list(code.codes.values())
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    bits = quant.huffman_encode(symbols, code)
    assert len(bits) == code.encoded_bits
    assert quant.huffman_decode(bits, code) == symbols.tolist()
    # fewer bits than the 3-bit fixed-width code, at least the entropy
    p = torch.bincount(symbols).double() / len(symbols)
    entropy = float(-(p * p.log2()).sum()) * len(symbols)
    assert entropy <= code.encoded_bits < 3 * len(symbols)


def test_huffman_errors():
    with pytest.raises(ValueError, match="no symbols"):
        quant.huffman_code([])
    code = quant.huffman_code("aaabbc")         # a: 0, b: 10, c: 11
    with pytest.raises(ValueError, match="has no code"):
        quant.huffman_encode("abd", code)
    with pytest.raises(ValueError, match="middle of a code word"):
        quant.huffman_decode("1", code)
    with pytest.raises(ValueError, match="'0' and '1'"):
        quant.huffman_decode("012", code)


# ------------------------------------------------------------------ weight sharing


def test_kmeans_linear_init_and_zeros_left_out():
    w = torch.tensor([[-1.0, -0.9, 0.0], [0.1, 1.0, 1.1]])
    centroids, labels = quant.kmeans_share(w, bits=1)
    # linear init at -1 and 1.1; midpoint 0.05 splits {-1, -0.9} from {0.1, 1.0, 1.1}
    assert torch.allclose(centroids, torch.tensor([-0.95, 2.2 / 3]))
    assert labels.tolist() == [[0, 0, -1], [1, 1, 1]]
    centroids, labels = quant.kmeans_share(w, n_clusters=3, ignore_zeros=False)
    assert labels[0, 2] >= 0 and bool((centroids[1:] >= centroids[:-1]).all())


def test_kmeans_linear_init_is_exact_on_evenly_spaced_values():
    values = torch.tensor([-1.5, -0.5, 0.5, 1.5])
    w = values[torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(0))]
    w[:4] = values
    centroids, labels = quant.kmeans_share(w, bits=2)
    assert torch.equal(centroids[labels], w)


def test_kmeans_errors():
    with pytest.raises(ValueError, match="cannot make 32 clusters from 3 nonzero weights"):
        quant.kmeans_share(torch.tensor([1.0, 0.0, 2.0, 3.0]), bits=5)
    with pytest.raises(ValueError, match="cannot make 8 clusters from 4 weights"):
        quant.kmeans_share(torch.tensor([1.0, 0.0, 2.0, 3.0]), n_clusters=8,
                           ignore_zeros=False)
    with pytest.raises(TypeError, match="floating-point"):
        quant.kmeans_share(torch.tensor([1, 2, 3]), bits=1)
    with pytest.raises(ValueError, match="empty"):
        quant.kmeans_share(torch.tensor([]), bits=1)


def test_shared_centroid_gradient_is_sum_over_cluster():
    torch.manual_seed(0)
    model = pk.prune.finalize(pk.prune.magnitude(nn.Sequential(nn.Linear(20, 8)), 0.5))
    shared = quant.share_weights(model, bits=2)
    layer = shared[0]
    labels = layer.parametrizations.weight[0].labels
    mask = layer.parametrizations.weight[0].mask
    x = torch.randn(7, 20)
    layer(x).pow(2).sum().backward()
    w = layer.weight.detach().requires_grad_()
    F.linear(x, w, layer.bias.detach()).pow(2).sum().backward()
    expected = torch.zeros(4).index_add_(0, labels.flatten(), (w.grad * mask).flatten())
    assert torch.allclose(layer.parametrizations.weight.original.grad, expected, atol=1e-5)
    # a training step moves the centroids; pruned weights stay zero and levels stay 4
    before = layer.parametrizations.weight.original.detach().clone()
    torch.optim.SGD(shared.parameters(), lr=0.1).step()
    assert not torch.equal(layer.parametrizations.weight.original, before)
    assert bool((shared[0].weight[mask == 0] == 0).all())
    assert shared[0].weight[mask == 1].unique().numel() <= 4
    plain = quant.unshare_weights(shared)
    assert torch.equal(plain[0].weight, shared[0].weight)


def test_share_weights_leaves_model_and_errors_name_the_layer():
    model = pk.models.lenet_300_100()
    before = model.fc1.weight.clone()
    quant.share_weights(model, bits=3)
    assert torch.equal(model.fc1.weight, before)
    with pytest.raises(ValueError, match="layer 'fc2'.*cannot make 65536 clusters"):
        quant.share_weights(model, bits=16)


# ------------------------------------------------------------------ relative indices, sizes


@pytest.mark.parametrize("index_bits", [1, 2, 3, 5])
def test_relative_indices_round_trip(index_bits):
    g = torch.Generator().manual_seed(index_bits)
    mask = torch.rand(40, 30, generator=g) < 0.05
    mask[0, 0] = True
    symbols = quant.relative_indices(mask, index_bits)
    assert int(symbols.max()) <= 2 ** index_bits - 1
    assert torch.equal(quant.indices_from_relative(symbols, index_bits),
                       torch.nonzero(mask.flatten()).flatten())
    assert quant.relative_indices(torch.zeros(3, 3), index_bits).numel() == 0


def test_compressed_size_by_hand():
    layer = nn.Linear(10, 2, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 1.0
        layer.weight[1, 9] = -1.0     # positions 0 and 19: gaps 1 and 19
    # pruned: 2 values x 32 bits + index symbols [1, 0, 4] (19 = 15 + 4) x 4 bits = 76 bits
    assert quant.compressed_size(layer, index_bits=4) == math.ceil(76 / 8)
    # shared, 1 bit: 2 centroids x 32 + 2 x 1-bit labels + the same 12 bits of index
    shared = quant.share_weights(nn.Sequential(layer), bits=1)
    assert quant.compressed_size(shared, index_bits=4) == math.ceil((64 + 2 + 12) / 8)
    dense = pk.models.lenet_300_100()
    assert quant.compressed_size(dense) == 4 * pk.metrics.count_params(dense)


# ------------------------------------------------------------------ Deep Compression


@pytest.mark.slow
def test_deep_compress_lenet_30x_within_one_point(trained_lenet, mnist5k):
    train, test = mnist5k
    before = {k: v.clone() for k, v in trained_lenet.state_dict().items()}
    report, model = quant.deep_compress(trained_lenet, train, test, sparsity=0.92, bits=5,
                                        return_model=True)
    assert report.stage.tolist() == ["dense", "pruned", "shared", "huffman"]
    assert list(report.columns) == ["stage", "bytes", "ratio", "accuracy"]
    dense, *_, final = report.itertuples()
    assert dense.bytes == 266_610 * 4 and dense.ratio == 1.0
    assert final.ratio >= 30
    assert final.accuracy >= dense.accuracy - 0.01
    assert bool(report.bytes.is_monotonic_decreasing)
    assert pk.train.evaluate(model, test) == final.accuracy
    assert all(torch.equal(before[k], v) for k, v in trained_lenet.state_dict().items())


def test_deep_compress_argument_errors(trained_lenet, mnist5k):
    train, test = mnist5k
    with pytest.raises(ValueError, match="sparsity"):
        quant.deep_compress(trained_lenet, train, test, sparsity=1.0)
    with pytest.raises(ValueError, match="bits"):
        quant.deep_compress(trained_lenet, train, test, bits=0)
    with pytest.raises(ValueError, match="retrain_epochs"):
        quant.deep_compress(trained_lenet, train, test, retrain_epochs=-1)


# ------------------------------------------------------------------ int8 kernels


def test_int8_lenet_accuracy_within_half_a_point(trained_lenet, mnist5k):
    train, test = mnist5k
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # students see no deprecation notices
        fast = quant.int8(trained_lenet, train)
        fast(test.images[:4])
    assert fast.int8_method == "dynamic"
    assert "Quantized" in fast.fc1._get_name()
    assert abs(pk.train.evaluate(fast, test) - pk.train.evaluate(trained_lenet, test)) <= 0.005
    assert isinstance(trained_lenet.fc1, nn.Linear) and trained_lenet.fc1.weight.dtype == \
        torch.float32


def test_int8_static_for_convolutions_and_fallback(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    lenet5 = pk.models.lenet5().eval()
    fast = quant.int8(lenet5, pk.data.subset(train, 200))
    assert fast.int8_method == "static"
    with torch.no_grad():
        ref, out = lenet5(test.images[:64]), fast(test.images[:64])
    assert (ref.argmax(1) == out.argmax(1)).float().mean() > 0.9
    resnet = pk.models.resnet(20, in_channels=1, image_size=28)
    with pytest.warns(UserWarning, match="static int8 quantization failed"):
        fallback = quant.int8(resnet, test.images[:32])
    assert fallback.int8_method == "dynamic"
    with pytest.raises(ValueError, match="no quantized kernel"):
        quant.int8(resnet, test.images[:32], method="static")


def test_int8_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        quant.int8(pk.models.lenet_300_100(), method="fp8")
    with pytest.raises(ValueError, match="needs calibration_data"):
        quant.int8(pk.models.lenet5(), method="static")
    with pytest.raises(ValueError, match="has none"):
        quant.int8(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(TypeError, match="calibration_data must be"):
        quant.int8(pk.models.lenet_300_100(), 3)
