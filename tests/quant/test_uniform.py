"""pk.quant.uniform: the affine and symmetric formulas (by hand and against DESIGN.md), per
tensor and per channel, their errors, and what quantization costs (MSE, SQNR)."""

import math

import pytest
import torch

from pruning_kit import quant

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
