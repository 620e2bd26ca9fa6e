"""Part 2 of ``binarized``: an integer-only linear layer (int32 bias, accumulator, requantization).

The accumulator is computed here exactly, in int64. The clause "no
floating-point matrix product" rests on instrumentation: the call runs in the
student's process inside a ``TorchFunctionMode`` that notes every matrix
product on float tensors (:func:`.student_side.watched_call`), so its report is
the student side's word; the values (exact int32 sums, which float32 cannot
hold above 2**24) are decided here. Products in float64 that do not go through
a matrix product (elementwise, then summed) are exact at these sizes and pass.
"""

import math
import random

import torch

from pruning_kit.course.testing import show

from ...judging import fail, fmt, random_tensor
from . import ASSIGNMENT
from .common import (all_in, as_tensor, attempt, clamp, echo_call, first_outside, index,
                     rounded_options, tensor_value, unchanged)
from .student_side import source_of, watched_call

_WATCHED = source_of(watched_call)
_FLOAT_NOTE = ("rests on instrumentation: a TorchFunctionMode in the student's process notes "
               "matrix products on float tensors (numpy is not seen: there the exact int32 "
               "values above 2**24 decide)")


def watched(student, function, args, what):
    """``student[function](*args)`` run inside the float-product watch: ``(value, args after)``;
    a matrix product on floats fails with ``function/float-products``."""
    out = attempt(lambda: student.run(_WATCHED, name=function, args=list(args)), function, what)
    if out["float_products"]:
        name, dtype = out["float_products"][0]
        fail(f"{what} ran a matrix product ({name}) on {dtype} tensors: an integer-only layer "
             f"multiplies and accumulates integers, convert x_q and w_q to torch.int32 and "
             f"multiply those", f"{function}/float-products")
    return out["value"], out["args"]


def accumulator(x_q, x_zero_point, w_q, bias_q):
    """The exact accumulator ``sum_j (x_q - x_zero_point) * w_q + bias_q``, in int64."""
    return (x_q.long() - x_zero_point) @ w_q.long().t() + bias_q.long()


# ---------------------------------------------------------------------------
# 2.1 quantize_bias(bias, input_scale, weight_scale)

QB = "quantize_bias"
ASSIGNMENT.clause(QB, 1, "returns a torch.Tensor shaped like bias", diagnosis=f"{QB}/shape")
ASSIGNMENT.clause(QB, 2, "int32 (it joins the int32 accumulator)", diagnosis=f"{QB}/dtype")
ASSIGNMENT.clause(QB, 3, "q_bias = round(bias / (input_scale * weight_scale)), zero point 0",
                  diagnosis=f"{QB}/values")
ASSIGNMENT.clause(QB, 4, "the scale is input_scale * weight_scale, neither one alone",
                  diagnosis=f"{QB}/scale")
ASSIGNMENT.clause(QB, 5, "rounded to nearest, not truncated", diagnosis=f"{QB}/truncation")
ASSIGNMENT.clause(QB, 6, "divided by the scale, not multiplied", diagnosis=f"{QB}/divide")
ASSIGNMENT.clause(QB, 7, "bias is not changed", diagnosis=f"{QB}/in-place")


def check_quantize_bias(student, bias, input_scale, weight_scale, *, dtype=torch.float32):
    """Check ``quantize_bias(bias, input_scale, weight_scale)`` on one input."""
    bias = as_tensor(bias, dtype)
    what = (f"quantize_bias({show(bias)}, input_scale={fmt(input_scale)}, "
            f"weight_scale={fmt(weight_scale)})")
    result, after = echo_call(student, QB, (bias, input_scale, weight_scale), what)
    unchanged(bias, after[0], "bias", what, f"{QB}/in-place")
    q = tensor_value(result, f"the result of {what}", shape=bias.shape, shape_code=f"{QB}/shape")
    if q.dtype != torch.int32:
        fail(f"the result of {what} has dtype {q.dtype}, expected torch.int32: it is added to "
             f"the int32 accumulator (8 bits would overflow: the bias scale is tiny)",
             f"{QB}/dtype")
    values = bias.double().flatten().tolist()
    got = q.flatten().tolist()
    scale = input_scale * weight_scale
    options = rounded_options([v / scale for v in values])
    bad = first_outside(got, options)
    if bad is None:
        return
    message = (f"the result of {what} is {got[bad]} at {index(bad, bias.shape)}, expected "
               f"{round(values[bad] / scale)} = round(bias / (input_scale * weight_scale)) = "
               f"round({fmt(values[bad])} / {fmt(scale)})")
    if any(all_in(got, rounded_options([v / s for v in values]))
           for s in (weight_scale, input_scale)):
        fail(f"{message}: the bias scale is input_scale * weight_scale, the scale of the "
             f"products it is added to", f"{QB}/scale")
    if all_in(got, [{int(v / scale)} for v in values]) or all_in(
            got, [{math.floor(v / scale)} for v in values]):
        fail(f"{message}: round to the nearest integer (torch.round), do not truncate",
             f"{QB}/truncation")
    if all_in(got, rounded_options([v * scale for v in values])):
        fail(f"{message}: divide by the scale, do not multiply", f"{QB}/divide")
    fail(message, f"{QB}/values")


@ASSIGNMENT.hidden(QB, points=2)
def quantize_bias_hidden(student):
    # the scale is input_scale * weight_scale, neither one alone
    check_quantize_bias(student, [0.37, -1.25, 0.004, 2.0], 0.05, 0.003)
    # round to nearest, do not truncate: 299.9 -> 300, -137.7 -> -138
    check_quantize_bias(student, [0.02999, -0.01377, 0.0], 0.01, 0.01)
    # random biases, float64, other scales
    check_quantize_bias(student, random_tensor(16, seed=1), 4 / 255, 0.0123)
    check_quantize_bias(student, random_tensor(7, seed=2, dtype=torch.float64), 1 / 255, 0.002,
                        dtype=torch.float64)
    check_quantize_bias(student, random_tensor(5, seed=3) * 10, 0.1, 0.5)


# ---------------------------------------------------------------------------
# 2.2 integer_linear(x_q, x_zero_point, w_q, bias_q)

IL = "integer_linear"
ASSIGNMENT.clause(IL, 1, "returns a torch.Tensor of shape (N, out)", diagnosis=f"{IL}/shape")
ASSIGNMENT.clause(IL, 2, "int32", diagnosis=f"{IL}/dtype")
ASSIGNMENT.clause(IL, 3, "acc = sum_j (x_q - x_zero_point) * w_q + bias_q, exactly",
                  diagnosis=f"{IL}/values")
ASSIGNMENT.clause(IL, 4, "the input's zero point is subtracted from x_q",
                  diagnosis=f"{IL}/input-zero-point")
ASSIGNMENT.clause(IL, 5, "bias_q is added", diagnosis=f"{IL}/bias")
ASSIGNMENT.clause(IL, 6, "x_q - x_zero_point does not wrap around (not in uint8)",
                  diagnosis=f"{IL}/uint8-wrap")
ASSIGNMENT.clause(IL, 7, "exact above 2**24 (not accumulated in float32)",
                  diagnosis=f"{IL}/float32")
ASSIGNMENT.clause(IL, 8, "integers only: no matrix product on floating-point tensors",
                  diagnosis=f"{IL}/float-products", note=_FLOAT_NOTE)
ASSIGNMENT.clause(IL, 9, "x_q, w_q and bias_q are not changed", diagnosis=f"{IL}/in-place")


def check_integer_linear(student, x_q, x_zero_point, w_q, bias_q):
    """Check ``integer_linear(x_q, x_zero_point, w_q, bias_q)`` on one input."""
    x, w, b = as_tensor(x_q, torch.uint8), as_tensor(w_q, torch.int8), as_tensor(bias_q,
                                                                                  torch.int32)
    n, out_f = x.shape[0], w.shape[0]
    what = (f"integer_linear(x_q of shape {tuple(x.shape)}, x_zero_point={x_zero_point}, "
            f"w_q of shape {tuple(w.shape)}, bias_q)")
    value, after = watched(student, IL, (x, x_zero_point, w, b), what)
    for before, changed, name in ((x, after[0], "x_q"), (w, after[2], "w_q"),
                                  (b, after[3], "bias_q")):
        unchanged(before, changed, name, what, f"{IL}/in-place")
    acc = tensor_value(value, f"the accumulator of {what}", shape=(n, out_f), dtype=torch.int32,
                       shape_code=f"{IL}/shape", dtype_code=f"{IL}/dtype")
    expected = accumulator(x, x_zero_point, w, b)
    if torch.equal(acc.long(), expected):
        return
    got = acc.long()
    bad = int((got != expected).flatten().nonzero()[0])
    r, i = index(bad, (n, out_f))
    message = (f"accumulator ({r}, {i}) of {what} is {got[r, i].item()}, expected "
               f"{expected[r, i].item()} = sum over j of (x_q - x_zero_point) * w_q, plus bias_q")
    big = expected.abs() > 2 ** 24
    if bool(big.any()) and bool(((got - expected).abs() <= expected.abs() // 1_000_000 + 1).all()):
        fail(f"{message}: float32 cannot hold every integer above 2**24 = 16777216, accumulate "
             f"in int32", f"{IL}/float32")
    if torch.equal(got, accumulator(x, 0, w, b)):
        fail(f"{message}: subtract the input's zero point from x_q before multiplying",
             f"{IL}/input-zero-point")
    if torch.equal(got, expected - b.long()):
        fail(f"{message}: add bias_q", f"{IL}/bias")
    wrapped = (x.long() - x_zero_point) % 256
    if torch.equal(got, wrapped @ w.long().t() + b.long()):
        fail(f"{message}: x_q - x_zero_point wrapped around in uint8 (0 - 1 = 255), convert "
             f"to torch.int32 first", f"{IL}/uint8-wrap")
    fail(message, f"{IL}/values")


@ASSIGNMENT.hidden(IL, points=4)
def integer_linear_hidden(student):
    # random layers; zero points 0 (input >= 0) and 255 (input <= 0)
    for seed, kwargs in ((1, {}), (2, {"x_range": (0.0, 1.0)}), (3, {"x_range": (-2.0, -0.5)})):
        case = layer_case(seed, 4, 16, 5, **kwargs)
        check_integer_linear(student, case["x_q"], case["x_zero_point"], case["w_q"],
                             case["bias_q"])
    # codes below the zero point: uint8 arithmetic would wrap around
    check_integer_linear(student, [[0, 10, 255], [128, 127, 129]], 128,
                         [[1, -1, 2], [-127, 127, 0]], [0, -5])
    # accumulators beyond 2**24: exact in int32, not in float32
    check_integer_linear(student, [[255] * 600, [255] * 300 + [0] * 300], 0,
                         [[127] * 600, [-127] * 600], [1, -1])
    # one input, one output
    check_integer_linear(student, [[7]], 3, [[-2]], [5])


# ---------------------------------------------------------------------------
# 2.3 quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point)

QL = "quantized_linear"
ASSIGNMENT.clause(QL, 1, "returns a torch.Tensor of shape (N, out)", diagnosis=f"{QL}/shape")
ASSIGNMENT.clause(QL, 2, "uint8 (the next layer's 8-bit input)", diagnosis=f"{QL}/dtype")
ASSIGNMENT.clause(QL, 3, "q_y = clamp(round(M * acc) + out_zero_point, 0, 255) with "
                  "M = x_scale * w_scale / out_scale: within half a step of the float layer "
                  "where it lies in range", diagnosis=f"{QL}/values")
ASSIGNMENT.clause(QL, 4, "out_zero_point is added after scaling", diagnosis=f"{QL}/out-zero-point")
ASSIGNMENT.clause(QL, 5, "outputs beyond the range saturate at 0 or 255 (clamped before the "
                  "uint8 conversion, which would wrap around)", diagnosis=f"{QL}/saturation")
ASSIGNMENT.clause(QL, 6, "rounded to nearest, not truncated", diagnosis=f"{QL}/truncation")
ASSIGNMENT.clause(QL, 7, "M = x_scale * w_scale / out_scale, not its inverse",
                  diagnosis=f"{QL}/multiplier")
ASSIGNMENT.clause(QL, 8, "the accumulator subtracts the input's zero point",
                  diagnosis=f"{QL}/input-zero-point")
ASSIGNMENT.clause(QL, 9, "integers only: no matrix product on floating-point tensors",
                  diagnosis=f"{QL}/float-products", note=_FLOAT_NOTE)
ASSIGNMENT.clause(QL, 10, "x_q, w_q and bias_q are not changed", diagnosis=f"{QL}/in-place")


def check_quantized_linear(student, x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale,
                           out_zero_point):
    """Check ``quantized_linear`` on one input (every clause above)."""
    x, w, b = as_tensor(x_q, torch.uint8), as_tensor(w_q, torch.int8), as_tensor(bias_q,
                                                                                  torch.int32)
    n, out_f = x.shape[0], w.shape[0]
    what = (f"quantized_linear(x_q of shape {tuple(x.shape)}, ..., out_scale={fmt(out_scale)}, "
            f"out_zero_point={out_zero_point})")
    args = (x, x_scale, x_zero_point, w, w_scale, b, out_scale, out_zero_point)
    value, after = watched(student, QL, args, what)
    for before, changed, name in ((x, after[0], "x_q"), (w, after[3], "w_q"),
                                  (b, after[5], "bias_q")):
        unchanged(before, changed, name, what, f"{QL}/in-place")
    y = tensor_value(value, f"the output of {what}", shape=(n, out_f), dtype=torch.uint8,
                     shape_code=f"{QL}/shape", dtype_code=f"{QL}/dtype")
    acc = accumulator(x, x_zero_point, w, b).flatten().tolist()
    got = y.flatten().tolist()
    m, z = x_scale * w_scale / out_scale, out_zero_point
    if all_in(got, rounded_options([m * a for a in acc], 0, 255, z)):
        return
    bad = first_outside(got, rounded_options([m * a for a in acc], 0, 255, z))
    r, i = index(bad, (n, out_f))
    level = m * acc[bad] + z  # the float layer's output, in output steps
    expected = clamp(round(m * acc[bad]) + z, 0, 255)
    if 0 <= level <= 255 and abs(got[bad] - level) > 1:
        short = (f"output ({r}, {i}) of {what} is {got[bad]}, {abs(got[bad] - level):.1f} steps "
                 f"from the float layer's {level:.2f}")
    else:
        short = f"output ({r}, {i}) of {what} is {got[bad]}, expected {expected}"
    message = (f"{short} = clamp(round(M * acc) + out_zero_point, 0, 255) with M = x_scale * "
               f"w_scale / out_scale = {fmt(m)} and acc = {acc[bad]}")
    if not 0 <= level <= 255:
        message += (f" (the float layer's output lies beyond the uint8 range: it saturates at "
                    f"{expected})")
    if all_in(got, rounded_options([m * a for a in acc], 0, 255)):
        fail(f"{message}: add out_zero_point after scaling", f"{QL}/out-zero-point")
    if all_in(got, [{v % 256 for v in o} for o in rounded_options([m * a for a in acc],
                                                                   offset=z)]):
        fail(f"{message}: clamp to [0, 255] before .to(torch.uint8), the conversion wraps "
             f"around instead of saturating", f"{QL}/saturation")
    for truncate in (lambda v: {math.floor(v)}, lambda v: {int(v)}):
        if all_in(got, rounded_options([m * a for a in acc], 0, 255, z, rounding=truncate)):
            fail(f"{message}: round to the nearest integer (torch.round), do not truncate",
                 f"{QL}/truncation")
    if all_in(got, rounded_options([a / m for a in acc], 0, 255, z)):
        fail(f"{message}: M = x_scale * w_scale / out_scale, not its inverse",
             f"{QL}/multiplier")
    plain = accumulator(x, 0, w, b).flatten().tolist()
    if all_in(got, rounded_options([m * a for a in plain], 0, 255, z)):
        fail(f"{message}: subtract x_zero_point from x_q in the accumulator",
             f"{QL}/input-zero-point")
    fail(message, f"{QL}/values")


def layer_case(seed, n, in_features, out_features, *, x_range=(-1.0, 3.0), out_margin=1.0,
               out_zero=None):
    """Arguments of ``quantized_linear`` for a random float layer, quantized as in part 2.

    The input (uniform in ``x_range``) is quantized with the affine rule, the
    weights (normal, std 0.5) symmetrically to int8, the bias with
    ``input_scale * weight_scale``; the output's range is that of the float
    outputs, scaled by ``out_margin`` (below 1 some outputs saturate).

    Example:
        >>> case = layer_case(3, 8, 16, 6, out_margin=0.4)
        >>> m = case["x_scale"] * case["w_scale"] / case["out_scale"]
        >>> acc = accumulator(torch.tensor(case["x_q"]), case["x_zero_point"],
        ...                   torch.tensor(case["w_q"]), torch.tensor(case["bias_q"]))
        >>> levels = m * acc + case["out_zero_point"]
        >>> bool(levels.min() < 0), bool(levels.max() > 255)   # both ends saturate
        (True, True)
        >>> layer_case(1, 2, 3, 4, x_range=(-2.0, -0.5))["x_zero_point"]
        255
    """
    rng = random.Random(seed)
    low, high = x_range
    x = [[rng.uniform(low, high) for _ in range(in_features)] for _ in range(n)]
    w = [[rng.gauss(0.0, 0.5) for _ in range(in_features)] for _ in range(out_features)]
    bias = [rng.gauss(0.0, 0.5) for _ in range(out_features)]
    x_lo, x_hi = min(min(min(r) for r in x), 0.0), max(max(max(r) for r in x), 0.0)
    x_scale = (x_hi - x_lo) / 255
    x_zero = clamp(round(-x_lo / x_scale), 0, 255)
    x_q = [[clamp(round(v / x_scale) + x_zero, 0, 255) for v in r] for r in x]
    w_scale = max(abs(v) for r in w for v in r) / 127
    w_q = [[clamp(round(v / w_scale), -127, 127) for v in r] for r in w]
    bias_q = [round(v / (x_scale * w_scale)) for v in bias]
    acc = accumulator(torch.tensor(x_q), x_zero, torch.tensor(w_q), torch.tensor(bias_q))
    real = (x_scale * w_scale * acc.double()).flatten().tolist()
    lo, hi = min(min(real), 0.0) * out_margin, max(max(real), 0.0) * out_margin
    out_scale = (hi - lo) / 255 if hi > lo else 1.0
    zero = clamp(round(-lo / out_scale), 0, 255) if out_zero is None else out_zero
    return {"x_q": x_q, "x_scale": x_scale, "x_zero_point": x_zero, "w_q": w_q,
            "w_scale": w_scale, "bias_q": bias_q, "out_scale": out_scale,
            "out_zero_point": zero}


@ASSIGNMENT.hidden(QL, points=4)
def quantized_linear_hidden(student):
    check = lambda *args, **kwargs: check_quantized_linear(student, *args, **kwargs)  # noqa: E731
    # random layers: every output within half a step of the float layer's
    check(**layer_case(1, 6, 20, 7))
    check(**layer_case(2, 3, 64, 10, x_range=(0.0, 1.0)))
    # saturation at both ends: an output range narrower than the float outputs
    check(**layer_case(3, 8, 16, 6, out_margin=0.4))
    # output zero points 0 and 255: what lies below (above) the range saturates
    check(**layer_case(4, 5, 12, 4, out_zero=0))
    check(**layer_case(5, 5, 12, 4, out_zero=255))
    # an input below its zero point, an output that saturates at 0
    check([[0, 255]], 0.1, 200, [[5, -7], [127, 127]], 0.05, [30, -900], 0.2, 128)

