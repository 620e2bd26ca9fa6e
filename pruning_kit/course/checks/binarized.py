"""Checks of the ``binarized`` assignment: affine and symmetric quantization, sign, STE, BinaryLinear.

A test cell of ``solutions/binarized/binarized.ipynb`` reads::

    from importlib import reload
    import pruning_kit.course.checks.binarized as checks
    g = reload(checks)                        # clean helpers, whatever ran before
    with g.isolated(globals(), "quantize_affine") as quantize_affine:
        g.check_quantize_affine(quantize_affine, [-1.0, 0.0, 1.0, 3.0], 8)

Example:
    >>> check_binarize(reference("binarize"), [-2.0, 0.0, 3.0])
"""

import importlib as _importlib

import torch
import torch.nn.functional as F
from torch import nn

from . import core as _core

_importlib.reload(_core)  # a test cell reloads this module: the core's helpers come back clean too

# check_raises, random_tensor, ...: re-exported for the test cells (``g.random_tensor(3, seed=1)``)
from .core import (SAFE, allowed_counts, call, check_close, check_raises,  # noqa: E402
                   check_unchanged, count_text, first_mismatch, flatten, fmt, fmt_list,
                   fresh_tensor, is_plain_tensor, number, random_tensor, read_dict, snapshot,
                   tensor_values, type_name, unravel)

# Functions below look builtins up in the copy captured on the first import: replacing
# ``builtins.round`` or ``builtins.len`` in the notebook does not reach them.
__builtins__ = SAFE.builtins
SAFE.module_dicts[__name__] = globals()

FUNCTIONS = ("quantize_affine", "dequantize_affine", "quantize_symmetric", "binarize", "SignSTE", "BinaryLinear")
"""The functions students write, in notebook order."""

KIT = {
    "quantize_affine": ("pruning_kit.quant.quantize_affine", "pruning_kit.quant.fake_quantize"),
    "dequantize_affine": ("pruning_kit.quant.dequantize_affine", "pruning_kit.quant.fake_quantize"),
    "quantize_symmetric": ("pruning_kit.quant.quantize_symmetric",
                           "pruning_kit.quant.fake_quantize"),
    "binarize": ("pruning_kit.quant.binarize",),
    "SignSTE": ("pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize"),
    "BinaryLinear": ("pruning_kit.quant.BinaryLinear", "pruning_kit.quant.SignSTE"),
}
"""The kit functions that would do each graded function's work: they refuse while it is tested."""

# ---------------------------------------------------------------------------
# Quantization

def _rounding_options(value):
    """round(value), and its neighbour when value sits within 1e-4 of a half."""
    options = {round(value)}
    lower = SAFE.floor(value)
    if abs(value - lower - 0.5) <= 1e-4 * max(1.0, abs(value)):
        options |= {lower, lower + 1}
    return options


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def _check_q(q_values, x_values, scale, offset, qmin, qmax, what, shape):
    for i, (qv, xv) in enumerate(zip(q_values, x_values)):
        options = {_clamp(r + offset, qmin, qmax) for r in _rounding_options(xv / scale)}
        if qv not in options:
            expected = _clamp(round(xv / scale) + offset, qmin, qmax)
            raise AssertionError(
                f"{what}: q at {unravel(i, shape)} is {qv}, expected {expected} = clamp(round("
                f"{fmt(xv)} / {fmt(scale)}) + {offset}, {qmin}, {qmax})")


def check_quantize_affine(function, x, bits, *, dtype=None):
    """Check ``quantize_affine(x, bits)`` against the asymmetric scheme of the contract.

    ``scale = (max - min) / (qmax - qmin)`` (1.0 for a constant tensor),
    ``zero_point = clamp(int(round(qmin - min / scale)), qmin, qmax)``,
    ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64, with
    qmin 0 and qmax 2**bits - 1.

    Args:
        function: the student's ``quantize_affine``.
        x: nested list or tensor.
        bits: int.
        dtype: dtype to build ``x`` with (default float32).

    Example:
        >>> check_quantize_affine(reference("quantize_affine"), [-1.0, 0.0, 2.0], 8)
    """
    t = fresh_tensor(x, dtype, "x")
    before = snapshot(t)
    shape, _, values = before
    kind = "constant x" if min(values) == max(values) else "x"
    what = f"quantize_affine({kind} of shape {shape}, bits={bits})"
    result = call(function, t, bits, what=what)
    check_unchanged(t, before, "x", what)
    if type(result) not in (tuple, list) or len(result) != 3:
        raise AssertionError(f"{what} should return a tuple (q, scale, zero_point), "
                             f"got {type_name(result)}")
    q, scale, zero_point = result
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(values), max(values)
    constant = lo == hi
    expected_scale = 1.0 if constant else (hi - lo) / (qmax - qmin)
    got_scale = number(scale, f"scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        how = ("1.0 for a constant tensor" if constant
               else f"(max - min) / (qmax - qmin) = ({fmt(hi)} - {fmt(lo)}) / {qmax - qmin}")
        raise AssertionError(f"{what}: scale is {fmt(got_scale)}, expected "
                             f"{fmt(expected_scale)} = {how}")
    got_zero = number(zero_point, f"zero_point of {what}", integer=True)
    z_options = {_clamp(r, qmin, qmax) for r in _rounding_options(qmin - lo / got_scale)}
    if got_zero not in z_options:
        expected_zero = _clamp(round(qmin - lo / expected_scale), qmin, qmax)
        message = (f"{what}: zero_point is {got_zero}, expected {expected_zero} = "
                   f"clamp(round(qmin - min / scale), {qmin}, {qmax}) with min = {fmt(lo)}")
        if got_zero == _clamp(round(qmin + lo / expected_scale), qmin, qmax):
            message += "; check the sign: zero_point = qmin - min / scale"
        raise AssertionError(message)
    qv = tensor_values(q, f"q of {what}", shape=shape, dtype=SAFE.int64)
    _check_q(qv, values, got_scale, got_zero, qmin, qmax, f"q of {what}", shape)


def check_dequantize_affine(function, q, scale, zero_point):
    """Check ``dequantize_affine(q, scale, zero_point)``: ``scale * (q - zero_point)`` as float32.

    Args:
        function: the student's ``dequantize_affine``.
        q: nested list of ints (built as int64) or an int64 tensor.
        scale: float.
        zero_point: int.

    Example:
        >>> check_dequantize_affine(reference("dequantize_affine"), [0, 64, 255], 0.5, 64)
    """
    t = fresh_tensor(q, SAFE.int64, "q")
    before = snapshot(t)
    shape, _, values = before
    what = f"dequantize_affine(q of shape {shape}, scale={scale!r}, zero_point={zero_point!r})"
    result = call(function, t, scale, zero_point, what=what)
    check_unchanged(t, before, "q", what)
    got = tensor_values(result, f"the result of {what}", shape=shape, dtype=SAFE.float32)
    expected = [scale * (v - zero_point) for v in values]
    found = first_mismatch(got, expected, 1e-6, 1e-7 * abs(scale))
    if found is not None:
        i, a, e = found
        message = (f"{what}: element {unravel(i, shape)} is {fmt(a)}, expected "
                   f"scale * (q - zero_point) = {fmt(scale)} * ({values[i]} - {zero_point}) "
                   f"= {fmt(e)}")
        if abs(a - scale * (values[i] + zero_point)) <= 1e-6 * max(1.0, abs(a)):
            message += "; subtract the zero point, do not add it"
        raise AssertionError(message)


def check_quantize_symmetric(function, x, bits, *, dtype=None):
    """Check ``quantize_symmetric(x, bits)``.

    ``scale = max(abs(x)) / (2**(bits-1) - 1)`` (1.0 for an all-zero tensor),
    ``q = clamp(round(x / scale), -(2**(bits-1) - 1), 2**(bits-1) - 1)`` as int64.

    Args:
        function: the student's ``quantize_symmetric``.
        x: nested list or tensor.
        bits: int.
        dtype: dtype to build ``x`` with (default float32).

    Example:
        >>> check_quantize_symmetric(reference("quantize_symmetric"), [-1.0, 0.5, 0.25], 8)
    """
    t = fresh_tensor(x, dtype, "x")
    before = snapshot(t)
    shape, _, values = before
    kind = "all-zero x" if not any(values) else "x"
    what = f"quantize_symmetric({kind} of shape {shape}, bits={bits})"
    result = call(function, t, bits, what=what)
    check_unchanged(t, before, "x", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"{what} should return a tuple (q, scale), got {type_name(result)}")
    q, scale = result
    qmax = 2 ** (bits - 1) - 1
    peak = max(abs(v) for v in values)
    expected_scale = 1.0 if peak == 0 else peak / qmax
    got_scale = number(scale, f"scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        message = (f"{what}: scale is {fmt(got_scale)}, expected {fmt(expected_scale)} = "
                   + ("1.0 for an all-zero tensor" if peak == 0 else
                      f"max(abs(x)) / (2**{bits - 1} - 1) = {fmt(peak)} / {qmax}"))
        if peak and abs(got_scale - peak / (qmax + 1)) <= 1e-5 * got_scale:
            message += (f"; the symmetric range is [-{qmax}, {qmax}], one level narrower than "
                        f"[-{qmax + 1}, {qmax}], so divide by {qmax}")
        raise AssertionError(message)
    qv = tensor_values(q, f"q of {what}", shape=shape, dtype=SAFE.int64)
    _check_q(qv, values, got_scale, 0, -qmax, qmax, f"q of {what}", shape)


# ---------------------------------------------------------------------------
# Binarized networks

def check_binarize(function, x, *, dtype=None):
    """Check ``binarize(x)``: +1 where x >= 0, else -1, same shape and dtype.

    Args:
        function: the student's ``binarize``.
        x: nested list or tensor.
        dtype: dtype to build ``x`` with (default float32).

    Example:
        >>> check_binarize(reference("binarize"), [-2.0, 0.0, 3.0])
    """
    t = fresh_tensor(x, dtype, "x")
    before = snapshot(t)
    shape, xdtype, values = before
    what = f"binarize(x of shape {shape}, dtype {xdtype})"
    result = call(function, t, what=what)
    check_unchanged(t, before, "x", what)
    got = tensor_values(result, f"the result of {what}", shape=shape, dtype=xdtype)
    _check_signs(got, values, what, shape)


def _check_signs(got, values, what, shape):
    for i, (g, v) in enumerate(zip(got, values)):
        e = 1.0 if v >= 0 else -1.0
        if g != e:
            message = f"{what}: element {unravel(i, shape)} (x = {fmt(v)}) is {fmt(g)}, expected {e:+.0f}"
            if v == 0:
                message += "; x = 0 maps to +1 (torch.sign would give 0)"
            raise AssertionError(message)


def check_sign_ste(function, x, upstream, *, dtype=None):
    """Check ``SignSTE``: forward ``binarize(x)``; backward ``grad * (abs(x) <= 1)``.

    Args:
        function: the student's ``SignSTE`` class.
        x: nested list or tensor (a leaf requiring grad is built from it).
        upstream: nested list, the gradient fed to backward (same shape).
        dtype: dtype to build the tensors with (default float32).

    Example:
        >>> check_sign_ste(reference("SignSTE"), [-2.0, -1.0, 0.0, 0.5, 1.5], [1.0, 2.0, 3.0, 4.0, 5.0])
    """
    if not (isinstance(function, type) and issubclass(function, SAFE.Function)):
        raise AssertionError(f"SignSTE should be a subclass of torch.autograd.Function, got "
                             f"{type_name(function) if not isinstance(function, type) else function}")
    t = SAFE.requires_grad_(fresh_tensor(x, dtype, "x"))
    g = fresh_tensor(upstream, SAFE.get_dtype(t), "upstream")
    before = snapshot(t)
    shape, xdtype, values = before
    what = f"SignSTE.apply(x of shape {shape})"
    out = call(function.apply, t, what=what)
    got = tensor_values(out, f"the output of {what}", shape=shape, dtype=xdtype)
    _check_signs(got, values, what, shape)
    try:
        SAFE.autograd_backward(out, g)
    except Exception as exc:
        raise AssertionError(f"backward through {what} failed: {type(exc).__name__}: {exc}") from None
    grad = SAFE.get_grad(t)
    if grad is None:
        raise AssertionError(f"after backward through {what}, x.grad is None: the output is not "
                             f"connected to x (return a tensor computed in forward)")
    got_grad = tensor_values(grad, f"x.grad after backward through {what}", shape=shape)
    upstream_values = snapshot(g)[2]
    expected = [u if abs(v) <= 1 else 0.0 for u, v in zip(upstream_values, values)]
    found = first_mismatch(got_grad, expected, 1e-6, 0)
    if found is not None:
        i, a, e = found
        v = values[i]
        message = (f"{what}: x.grad at {unravel(i, shape)} (x = {fmt(v)}, incoming grad "
                   f"{fmt(upstream_values[i])}) is {fmt(a)}, expected {fmt(e)} = grad * "
                   f"(abs(x) <= 1)")
        if abs(v) > 1 and a == upstream_values[i]:
            message += "; the straight-through estimator passes no gradient where abs(x) > 1"
        elif abs(v) <= 1 and a == 0:
            message += "; inside [-1, 1] (bounds included) the gradient passes straight through"
        raise AssertionError(message)


def check_binary_linear(cls, weight, bias, x, upstream):
    """Check ``BinaryLinear``: parameters like ``nn.Linear``, XNOR-scaled forward, STE backward.

    Builds ``cls(in_features, out_features, bias=...)``, loads ``weight`` (and
    ``bias``) into its parameters, runs ``x`` forward and ``upstream`` backward,
    and compares output and gradients with
    ``F.linear(x, alpha * sign(W), b)``, ``alpha = mean(abs(W), dim=1)``
    (detached) and the ``abs(W) <= 1`` cut.

    Args:
        cls: the student's ``BinaryLinear`` class.
        weight: nested list out x in.
        bias: list of out numbers, or None for ``bias=False``.
        x: nested list N x in.
        upstream: nested list N x out, the gradient fed to backward.

    Example:
        >>> check_binary_linear(reference("BinaryLinear"), [[0.5, -2.0], [0.0, 0.25]],
        ...                     [0.1, -0.1], [[1.0, 2.0]], [[1.0, -1.0]])
    """
    if not (isinstance(cls, type) and issubclass(cls, SAFE.Module)):
        raise AssertionError("BinaryLinear should be a class derived from nn.Module")
    out_f, in_f = len(weight), len(weight[0])
    has_bias = bias is not None
    what = f"BinaryLinear({in_f}, {out_f}, bias={has_bias})"
    layer = call(cls, in_f, out_f, bias=has_bias, what=what)
    if not isinstance(layer, SAFE.Module):
        raise AssertionError(f"{what} did not build an nn.Module")
    params = dict(SAFE.named_parameters(layer))
    expected_names = ["weight", "bias"] if has_bias else ["weight"]
    if sorted(params) != sorted(expected_names):
        raise AssertionError(f"{what} has parameters {sorted(params)}, expected exactly "
                             f"{expected_names} (real-valued, like nn.Linear)")
    if not has_bias and getattr(layer, "bias", None) is not None:
        raise AssertionError(f"{what}: layer.bias should be None, like nn.Linear(bias=False)")
    w_param = params["weight"]
    if type(w_param) is not SAFE.Parameter or tuple(SAFE.size(w_param)) != (out_f, in_f):
        raise AssertionError(f"{what}: weight should be an nn.Parameter of shape "
                             f"({out_f}, {in_f}) (out x in), got {type_name(w_param)} of shape "
                             f"{tuple(SAFE.size(w_param)) if is_plain_tensor(w_param) else '?'}")
    init_values = flatten(SAFE.tolist(w_param))
    if len(set(init_values)) < 2:
        raise AssertionError(f"{what}: the initial weights are all {fmt(init_values[0])}: "
                             f"initialise them like nn.Linear (random)")
    if has_bias:
        b_param = params["bias"]
        if type(b_param) is not SAFE.Parameter or tuple(SAFE.size(b_param)) != (out_f,):
            raise AssertionError(f"{what}: bias should be an nn.Parameter of shape ({out_f},)")
    with SAFE.no_grad():
        SAFE.copy_(w_param, SAFE.tensor(weight, dtype=SAFE.get_dtype(w_param)))
        if has_bias:
            SAFE.copy_(params["bias"], SAFE.tensor(bias, dtype=SAFE.get_dtype(params["bias"])))
    W = flatten(SAFE.tolist(w_param))  # noqa: N806 - the matrix of the formula
    W = [W[i * in_f:(i + 1) * in_f] for i in range(out_f)]  # noqa: N806
    b = flatten(SAFE.tolist(params["bias"])) if has_bias else [0.0] * out_f
    xt = SAFE.requires_grad_(SAFE.tensor(x, dtype=SAFE.float32))
    n = len(x)
    forward_what = f"{what}(x of shape ({n}, {in_f}))"
    y = call(SAFE.module_call, layer, xt, what=forward_what)
    got = tensor_values(y, f"the output of {forward_what}", shape=(n, out_f))
    alpha = [SAFE.fsum(abs(v) for v in row) / in_f for row in W]
    wb = [[alpha[i] * (1.0 if v >= 0 else -1.0) for v in W[i]] for i in range(out_f)]
    xs = flatten(SAFE.tolist(xt))
    xs = [xs[r * in_f:(r + 1) * in_f] for r in range(n)]
    expected = [SAFE.fsum(xs[r][j] * wb[i][j] for j in range(in_f)) + b[i]
                for r in range(n) for i in range(out_f)]
    found = first_mismatch(got, expected, 1e-5, 1e-6)
    if found is not None:
        i, a, e = found
        message = (f"{forward_what}: output element {unravel(i, (n, out_f))} is {fmt(a)}, "
                   f"expected {fmt(e)} = F.linear(x, alpha * sign(W), bias) with alpha = "
                   f"mean(abs(W), dim=1) = {fmt_list(alpha)}")
        plain = [SAFE.fsum(xs[r][j] * (1.0 if W[c][j] >= 0 else -1.0) for j in range(in_f))
                 + b[c] for r in range(n) for c in range(out_f)]
        if first_mismatch(got, plain, 1e-5, 1e-6) is None:
            message += "; you left out the XNOR scaling factor alpha"
        raise AssertionError(message)
    g = SAFE.tensor(upstream, dtype=SAFE.float32)
    try:
        SAFE.autograd_backward(y, g)
    except Exception as exc:
        raise AssertionError(f"backward through {forward_what} failed: "
                             f"{type(exc).__name__}: {exc}") from None
    gs = flatten(upstream)
    gs = [gs[r * out_f:(r + 1) * out_f] for r in range(n)]
    w_grad = SAFE.get_grad(w_param)
    if w_grad is None:
        raise AssertionError(f"after backward through {forward_what}, weight.grad is None: use "
                             f"SignSTE.apply(self.weight) so gradients reach the real weights")
    got_w = tensor_values(w_grad, f"weight.grad after backward through {forward_what}",
                          shape=(out_f, in_f))
    expected_w = [alpha[i] * SAFE.fsum(gs[r][i] * xs[r][j] for r in range(n))
                  * (1.0 if abs(W[i][j]) <= 1 else 0.0)
                  for i in range(out_f) for j in range(in_f)]
    found = first_mismatch(got_w, expected_w, 1e-5, 1e-6)
    if found is not None:
        i, a, e = found
        r, c = unravel(i, (out_f, in_f))
        message = (f"{forward_what}: weight.grad at ({r}, {c}) (W = {fmt(W[r][c])}) is {fmt(a)}, "
                   f"expected {fmt(e)} = alpha * (grad_out^T x) * (abs(W) <= 1), with alpha "
                   f"detached")
        if abs(W[r][c]) > 1 and a != 0:
            message += "; no gradient may pass where abs(W) > 1 (use SignSTE)"
        raise AssertionError(message)
    x_grad = SAFE.get_grad(xt)
    if x_grad is None:
        raise AssertionError(f"after backward through {forward_what}, x.grad is None")
    got_x = tensor_values(x_grad, f"x.grad after backward through {forward_what}", shape=(n, in_f))
    expected_x = [SAFE.fsum(gs[r][i] * wb[i][j] for i in range(out_f))
                  for r in range(n) for j in range(in_f)]
    check_close(got_x, expected_x, f"x.grad after backward through {forward_what}",
                rtol=1e-5, atol=1e-6, shape=(n, in_f))
    if has_bias:
        b_grad = SAFE.get_grad(params["bias"])
        got_b = tensor_values(b_grad, f"bias.grad after backward through {forward_what}",
                              shape=(out_f,)) if b_grad is not None else None
        if got_b is None:
            raise AssertionError(f"after backward through {forward_what}, bias.grad is None: "
                                 f"pass self.bias to F.linear")
        check_close(got_b, [SAFE.fsum(gs[r][i] for r in range(n)) for i in range(out_f)],
                    f"bias.grad after backward through {forward_what}", rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Reference implementations (used by ``isolated`` to isolate one function)

def _ref_quantize_affine(x, bits):
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = x.min().item(), x.max().item()
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
    zero_point = min(max(int(round(qmin - lo / scale)), qmin), qmax)
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int64)
    return q, scale, zero_point


def _ref_dequantize_affine(q, scale, zero_point):
    return (scale * (q - zero_point)).to(torch.float32)


def _ref_quantize_symmetric(x, bits):
    qmax = 2 ** (bits - 1) - 1
    peak = x.abs().max().item()
    scale = peak / qmax if peak > 0 else 1.0
    return torch.clamp(torch.round(x / scale), -qmax, qmax).to(torch.int64), scale


def _ref_binarize(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class _RefSignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _ref_binarize(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class _RefBinaryLinear(nn.Linear):
    def forward(self, x):
        alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
        return F.linear(x, alpha * _RefSignSTE.apply(self.weight), self.bias)



_REFERENCES = {
    "quantize_affine": _ref_quantize_affine,
    "dequantize_affine": _ref_dequantize_affine,
    "quantize_symmetric": _ref_quantize_symmetric,
    "binarize": _ref_binarize,
    "SignSTE": _RefSignSTE,
    "BinaryLinear": _RefBinaryLinear,
}


def reference(name):
    """The reference implementation of an assignment function (what :func:`isolated` substitutes).

    Args:
        name: one of :data:`FUNCTIONS`.

    Example:
        >>> reference("quantize_affine").__name__.lstrip("_")
        'ref_quantize_affine'
    """
    if name not in _REFERENCES:
        raise ValueError(f"name must be one of {list(FUNCTIONS)}, got {name!r}")
    return _REFERENCES[name]


def isolated(namespace, name):
    """Test ``name`` with the student's other functions replaced by references, the kit's off.

    See :func:`pruning_kit.course.checks.core.isolated`; :data:`KIT` lists what refuses.

    Example:
        >>> ns = {"quantize_affine": lambda *args: None}
        >>> with isolated(ns, "quantize_affine") as fn:
        ...     ns["dequantize_affine"] is reference("dequantize_affine")
        True
    """
    return _core.isolated(namespace, name, _REFERENCES, kit=KIT.get(name, ()))
