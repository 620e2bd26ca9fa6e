"""Part 1.1-1.3 of ``binarized``: affine quantization, dequantization, symmetric quantization.

Each section states the function's contract as numbered clauses (as the
notebook states it), then the check of one input, then the hidden test: the
inputs it runs the check on. Integer codes computed from a quotient on a
rounding boundary may go either way (:func:`.common.rounding_options`).
"""

import torch

from pruning_kit.course.testing import show

from ...judging import fail, fmt, random_tensor
from . import ASSIGNMENT
from .common import (as_tensor, clamp, echo_call, first_far, first_outside, index,
                     number_value, result_tuple, rounded_options, tensor_value, unchanged)

# ---------------------------------------------------------------------------
# 1.1 quantize_affine(x, bits)

QA = "quantize_affine"
ASSIGNMENT.clause(QA, 1, "returns a tuple (q, scale, zero_point)", diagnosis=f"{QA}/result")
ASSIGNMENT.clause(QA, 2, "q is a torch.Tensor shaped like x", diagnosis=f"{QA}/shape")
ASSIGNMENT.clause(QA, 3, "q is int64", diagnosis=f"{QA}/dtype")
ASSIGNMENT.clause(QA, 4, "scale = (hi - lo) / (2**bits - 1), a number", diagnosis=f"{QA}/scale")
ASSIGNMENT.clause(QA, 5, "the range holds 0: lo = min(min(x), 0) and hi = max(max(x), 0)",
                  diagnosis=f"{QA}/range-holds-zero")
ASSIGNMENT.clause(QA, 6, "an all-zero x gives scale 1.0 and zero_point 0 (no division by zero)",
                  diagnosis=f"{QA}/all-zero")
ASSIGNMENT.clause(QA, 7, "zero_point = clamp(round(qmin - lo / scale), qmin, qmax), an int",
                  diagnosis=f"{QA}/zero-point")
ASSIGNMENT.clause(QA, 8, "the zero point's sign: qmin - lo / scale, positive when min(x) < 0",
                  diagnosis=f"{QA}/zero-point-sign")
ASSIGNMENT.clause(QA, 9, "every code lies in [0, 2**bits - 1] (clamped: a value half a step "
                  "beyond the top level at a tie is clamped to it)", diagnosis=f"{QA}/clamp")
ASSIGNMENT.clause(QA, 10, "q = clamp(round(x / scale) + zero_point, qmin, qmax), rounded to "
                  "nearest (halves to even; either neighbour on a tie)", diagnosis=f"{QA}/codes")
ASSIGNMENT.clause(QA, 11, "x is not changed", diagnosis=f"{QA}/in-place")


def check_quantize_affine(student, x, bits, *, dtype=torch.float32):
    """Check ``quantize_affine(x, bits)`` on one input (every clause above)."""
    x = as_tensor(x, dtype)
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    zero = lo == hi
    what = f"quantize_affine({'all-zero x' if zero else show(x)}, bits={bits})"
    result, after = echo_call(student, QA, (x, bits), what,
                              code=f"{QA}/all-zero" if zero else None,
                              hint="an all-zero x uses scale 1.0 and zero point 0")
    unchanged(x, after[0], "x", what, f"{QA}/in-place")
    q, scale, zero_point = result_tuple(result, ("q", "scale", "zero_point"), what, f"{QA}/result")
    q = tensor_value(q, f"q of {what}", shape=x.shape, shape_code=f"{QA}/shape")
    scale = number_value(scale, f"the scale of {what}", code=f"{QA}/all-zero" if zero else
                         f"{QA}/scale")
    expected_scale = 1.0 if zero else (hi - lo) / (qmax - qmin)
    if zero:
        zero_point = number_value(zero_point, f"the zero point of {what}", integer=True,
                                  code=f"{QA}/all-zero")
        if scale != 1.0 or zero_point != 0:
            fail(f"{what} returned scale {fmt(scale)} and zero point {show(zero_point)}: an "
                 f"all-zero x uses scale 1.0 and zero point 0", f"{QA}/all-zero")
    elif abs(scale - expected_scale) > 1e-5 * expected_scale:
        span = x.max().item() - x.min().item()
        message = (f"the scale of {what} is {fmt(scale)}, expected {fmt(expected_scale)} = "
                   f"(hi - lo) / (2**{bits} - 1) with lo = min(min(x), 0) = {fmt(lo)} and "
                   f"hi = max(max(x), 0) = {fmt(hi)}")
        if span > 0 and abs(scale - span / (qmax - qmin)) <= 1e-5 * scale:
            fail(f"{message}: the range must hold 0, so that 0 is exact; widen "
                 f"[min(x), max(x)] to include 0 before computing the scale",
                 f"{QA}/range-holds-zero")
        fail(message, f"{QA}/scale")
    zero_point = number_value(zero_point, f"the zero point of {what}", integer=True,
                              code=f"{QA}/zero-point")
    allowed = rounded_options([qmin - lo / scale], qmin, qmax)[0]
    if zero_point not in allowed:
        expected = clamp(round(qmin - lo / expected_scale), qmin, qmax)
        message = (f"the zero point of {what} is {zero_point}, expected {expected} = "
                   f"clamp(round(qmin - lo / scale), {qmin}, {qmax}) with lo = {fmt(lo)}")
        if zero_point in rounded_options([qmin + lo / scale], qmin, qmax)[0]:
            fail(f"{message}: check the sign, zero_point = qmin - lo / scale (the integer "
                 f"that stands for the real 0)", f"{QA}/zero-point-sign")
        fail(message, f"{QA}/zero-point")
    if q.dtype != torch.int64:
        fail(f"q of {what} has dtype {q.dtype}, expected torch.int64 (.to(torch.int64))",
             f"{QA}/dtype")
    got = q.flatten().tolist()
    outside = next((i for i, v in enumerate(got) if not qmin <= v <= qmax), None)
    if outside is not None:
        fail(f"q of {what} holds {got[outside]} at {index(outside, x.shape)}, outside "
             f"[{qmin}, {qmax}]: clamp the codes to the {bits}-bit range (a value half a step "
             f"beyond the top level rounds past it on a tie)", f"{QA}/clamp")
    options = rounded_options((x.double().flatten() / scale).tolist(), qmin, qmax, zero_point)
    bad = first_outside(got, options)
    if bad is not None:
        value = x.flatten()[bad].item()
        fail(f"q of {what} is {got[bad]} at {index(bad, x.shape)}, expected "
             f"{clamp(round(value / scale) + zero_point, qmin, qmax)} = clamp(round(x / scale) "
             f"+ zero_point, {qmin}, {qmax}) with x = {fmt(value)}: round to the nearest "
             f"integer (torch.round)", f"{QA}/codes")


@ASSIGNMENT.hidden(QA, points=4)
def quantize_affine_hidden(student):
    check = lambda x, bits, **kw: check_quantize_affine(student, x, bits, **kw)  # noqa: E731
    # the zero point's sign: min(x) < 0 gives a positive zero point; round(63.75) = 64
    check([[-2.0, -0.5], [0.25, 1.0]], 8)
    check([-1.0, 0.0, 1.0, 3.0], 8)
    check(random_tensor(6, 7, seed=1), 8)
    # all positive: the range is [0, max(x)] and the zero point 0; [1, 2, 5] comes back exactly
    check([1.0, 2.0, 5.0], 8)
    check([0.5, 1.5, 2.5, 4.0], 8)
    check(random_tensor(4, 5, seed=4).abs() + 0.5, 4)
    # all negative: the range is [min(x), 0] and the zero point qmax
    check([-3.0, -2.0, -1.0], 8)
    check(-(random_tensor(9, seed=5).abs() + 2.0), 8)
    # fewer bits; a tie at the top: S = 1, Z = 2, round(1.5) + 2 = 4 is clamped to 3
    check(random_tensor(20, seed=2), 4)
    check([-1.0, -0.2, 0.3, 0.9, 2.0], 2)
    check([-1.5, 1.5], 2)
    # constant tensors: the range still holds 0; all zero uses scale 1.0 and zero point 0
    check([0.75, 0.75, 0.75], 8)
    check([[-2.0, -2.0]], 8)
    check([[0.0, 0.0], [0.0, 0.0]], 8)
    # float64 input, 3-D, a wide range
    check(random_tensor(2, 3, 4, seed=3, dtype=torch.float64) * 100, 8, dtype=torch.float64)


# ---------------------------------------------------------------------------
# 1.2 dequantize_affine(q, scale, zero_point)

DQ = "dequantize_affine"
ASSIGNMENT.clause(DQ, 1, "returns a torch.Tensor shaped like q", diagnosis=f"{DQ}/shape")
ASSIGNMENT.clause(DQ, 2, "the result is float32", diagnosis=f"{DQ}/dtype")
ASSIGNMENT.clause(DQ, 3, "x_hat = scale * (q - zero_point)", diagnosis=f"{DQ}/values")
ASSIGNMENT.clause(DQ, 4, "the zero point is subtracted, not added", diagnosis=f"{DQ}/zero-point-sign")
ASSIGNMENT.clause(DQ, 5, "q is not changed", diagnosis=f"{DQ}/in-place")


def check_dequantize_affine(student, q, scale, zero_point):
    """Check ``dequantize_affine(q, scale, zero_point)`` on one input."""
    q = as_tensor(q, torch.int64)
    what = f"dequantize_affine({show(q)}, scale={fmt(scale)}, zero_point={zero_point})"
    result, after = echo_call(student, DQ, (q, scale, zero_point), what)
    unchanged(q, after[0], "q", what, f"{DQ}/in-place")
    x_hat = tensor_value(result, f"the result of {what}", shape=q.shape,
                         shape_code=f"{DQ}/shape")
    if x_hat.dtype != torch.float32:
        fail(f"the result of {what} has dtype {x_hat.dtype}, expected torch.float32 "
             f"(.to(torch.float32))", f"{DQ}/dtype")
    expected = scale * (q.double() - zero_point)
    tolerance = {"rtol": 1e-6, "atol": 1e-6 * abs(scale)}
    bad = first_far(x_hat, expected, **tolerance)
    if bad is not None:
        i = index(bad, q.shape)
        message = (f"{what} returned {fmt(x_hat.flatten()[bad].item())} at {i}, expected "
                   f"{fmt(expected.flatten()[bad].item())} = scale * (q - zero_point) = "
                   f"{fmt(scale)} * ({q.flatten()[bad].item()} - {zero_point})")
        if first_far(x_hat, scale * (q.double() + zero_point), **tolerance) is None:
            fail(f"{message}: subtract the zero point, do not add it", f"{DQ}/zero-point-sign")
        fail(message, f"{DQ}/values")


@ASSIGNMENT.hidden(DQ, points=2)
def dequantize_affine_hidden(student):
    check_dequantize_affine(student, [[0, 1], [2, 3]], 0.1, 2)
    check_dequantize_affine(student, [[10, 200, 255, 0]], 4 / 255, 64)
    check_dequantize_affine(student, [5, 6, 7], 1.0, 0)
    check_dequantize_affine(student, [-127, 0, 127], 0.0078125, 0)
    check_dequantize_affine(student, [[3, 0], [255, 17]], 0.25, 255)


# ---------------------------------------------------------------------------
# 1.3 quantize_symmetric(x, bits), bits >= 2

QS = "quantize_symmetric"
ASSIGNMENT.clause(QS, 1, "returns a tuple (q, scale)", diagnosis=f"{QS}/result")
ASSIGNMENT.clause(QS, 2, "q is a torch.Tensor shaped like x", diagnosis=f"{QS}/shape")
ASSIGNMENT.clause(QS, 3, "q is int64", diagnosis=f"{QS}/dtype")
ASSIGNMENT.clause(QS, 4, "scale = max(abs(x)) / (2**(bits-1) - 1), a number",
                  diagnosis=f"{QS}/scale")
ASSIGNMENT.clause(QS, 5, "the range is symmetric, [-(2**(bits-1) - 1), 2**(bits-1) - 1]: one "
                  "level narrower than [-2**(bits-1), 2**(bits-1) - 1]",
                  diagnosis=f"{QS}/symmetric-range")
ASSIGNMENT.clause(QS, 6, "an all-zero x gives scale 1.0 (no division by zero)",
                  diagnosis=f"{QS}/all-zero")
ASSIGNMENT.clause(QS, 7, "q = clamp(round(x / scale), -qmax, qmax), rounded to nearest",
                  diagnosis=f"{QS}/codes")
ASSIGNMENT.clause(QS, 8, "x is not changed", diagnosis=f"{QS}/in-place",
                  note="bits >= 2 is a precondition (at 1 bit the top level is 0): the checks "
                       "use 2, 4 and 8 bits")


def check_quantize_symmetric(student, x, bits, *, dtype=torch.float32):
    """Check ``quantize_symmetric(x, bits)`` on one input."""
    x = as_tensor(x, dtype)
    qmax = 2 ** (bits - 1) - 1
    peak = x.abs().max().item()
    zero = peak == 0
    what = f"quantize_symmetric({'all-zero x' if zero else show(x)}, bits={bits})"
    result, after = echo_call(student, QS, (x, bits), what,
                              code=f"{QS}/all-zero" if zero else None,
                              hint="an all-zero x uses scale 1.0")
    unchanged(x, after[0], "x", what, f"{QS}/in-place")
    q, scale = result_tuple(result, ("q", "scale"), what, f"{QS}/result")
    q = tensor_value(q, f"q of {what}", shape=x.shape, shape_code=f"{QS}/shape")
    if zero:
        scale = number_value(scale, f"the scale of {what}", code=f"{QS}/all-zero")
        if scale != 1.0:
            fail(f"the scale of {what} is {fmt(scale)}: an all-zero x uses scale 1.0",
                 f"{QS}/all-zero")
    else:
        scale = number_value(scale, f"the scale of {what}", code=f"{QS}/scale")
        expected = peak / qmax
        if abs(scale - expected) > 1e-5 * expected:
            message = (f"the scale of {what} is {fmt(scale)}, expected {fmt(expected)} = "
                       f"max(abs(x)) / (2**{bits - 1} - 1) = {fmt(peak)} / {qmax}")
            if abs(scale - peak / (qmax + 1)) <= 1e-5 * scale:
                fail(f"{message}: the symmetric range is [-{qmax}, {qmax}], one level narrower "
                     f"than [-{qmax + 1}, {qmax}], so that +max(abs(x)) and -max(abs(x)) both "
                     f"fit: divide by {qmax}", f"{QS}/symmetric-range")
            fail(message, f"{QS}/scale")
    if q.dtype != torch.int64:
        fail(f"q of {what} has dtype {q.dtype}, expected torch.int64 (.to(torch.int64))",
             f"{QS}/dtype")
    got = q.flatten().tolist()
    outside = next((i for i, v in enumerate(got) if not -qmax <= v <= qmax), None)
    if outside is not None:
        fail(f"q of {what} holds {got[outside]}, outside the symmetric range [-{qmax}, {qmax}]",
             f"{QS}/symmetric-range")
    options = rounded_options((x.double().flatten() / scale).tolist(), -qmax, qmax)
    bad = first_outside(got, options)
    if bad is not None:
        value = x.flatten()[bad].item()
        fail(f"q of {what} is {got[bad]} at {index(bad, x.shape)}, expected "
             f"{clamp(round(value / scale), -qmax, qmax)} = clamp(round(x / scale), -{qmax}, "
             f"{qmax}) with x = {fmt(value)}: round to the nearest integer (torch.round)",
             f"{QS}/codes")


@ASSIGNMENT.hidden(QS, points=3)
def quantize_symmetric_hidden(student):
    check = lambda x, bits, **kw: check_quantize_symmetric(student, x, bits, **kw)  # noqa: E731
    # the largest magnitude maps to +-127 exactly (a range one level too wide would give 128)
    check([2.0, -0.5, 1.0], 8)
    check(random_tensor(5, 6, seed=1), 8)
    # the peak is negative
    check([-3.0, 1.0, 0.1], 8)
    # fewer bits: 4 bits -> [-7, 7], 2 bits -> [-1, 1]
    check(random_tensor(30, seed=2), 4)
    check([-0.4, 0.2, 0.9], 2)
    # all zero uses scale 1.0
    check([[0.0, 0.0], [0.0, 0.0]], 8)
    # float64, 4-D
    check(random_tensor(2, 3, 3, 3, seed=3, dtype=torch.float64), 8, dtype=torch.float64)
