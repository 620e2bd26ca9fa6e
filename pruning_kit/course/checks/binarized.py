"""Checks of the ``binarized`` assignment: quantization, an integer-only layer, a binarized network.

Part 1, one tensor at a time: affine and symmetric quantization, sign, the
straight-through estimator, an XNOR-scaled binary linear layer. Part 2, an
integer-only linear layer (Jacob et al. 2018): the int32 bias, the int32
accumulator, requantization to uint8. Part 3, a binarized network trained on
``mnist5k``: binary weights *and* activations, and the training loop that clips
the latent weights.

A test cell of ``solutions/binarized/binarized.ipynb`` reads::

    from importlib import reload
    import pruning_kit.course.checks.binarized as checks
    g = reload(checks)                        # clean helpers, whatever ran before
    with g.isolated(globals(), "quantize_affine") as quantize_affine:
        g.check_quantize_affine(quantize_affine, [-1.0, 0.0, 1.0, 3.0], 8)

Every failure message opens with a short sentence that says what is wrong
("The scale is 0.0156863, not 0.0196078: ..."), then the formula with the
numbers, then the call (``Call: ...``).

Example:
    >>> check_binarize(reference("binarize"), [-2.0, 0.0, 3.0])
"""

import contextlib as _contextlib
import importlib as _importlib
import random as _random
import types as _types

import numpy as _np
import torch
import torch.nn.functional as F
from torch import nn

from . import core as _core

_importlib.reload(_core)  # a test cell reloads this module: the core's helpers come back clean too

# check_raises, random_tensor, ...: re-exported for the test cells (``g.random_tensor(3, seed=1)``)
from .core import (SAFE, allowed_counts, call, check_close, check_raises,  # noqa: E402
                   check_unchanged, count_text, first_mismatch, flatten, fmt, fmt_list,
                   fresh_tensor, is_plain_tensor, number, random_tensor, read_dict,
                   require_tensor, snapshot, tensor_values, type_name, unravel)

# Functions below look builtins up in the copy captured on the first import: replacing
# ``builtins.round`` or ``builtins.len`` in the notebook does not reach them.
__builtins__ = SAFE.builtins
SAFE.module_dicts[__name__] = globals()

# What parts 2 and 3 use besides ``SAFE``, captured on the first import (before any notebook
# cell runs; ``reload`` keeps it): a notebook that rebinds ``pk.data.load``, ``torch.optim.Adam``
# or ``torch.where`` does not change what the checks compute.
try:
    TRUSTED  # noqa: B018 - defined by an earlier import of this module
except NameError:
    import pruning_kit.data as _data
    from torch.optim.optimizer import register_optimizer_step_pre_hook as _pre_hook

    _TB = torch._C.TensorBase
    TRUSTED = _types.SimpleNamespace(
        load=_data.load, TensorData=_data.TensorData,
        uint8=torch.uint8, int8=torch.int8, float64=torch.float64,
        linear=F.linear, cross_entropy=F.cross_entropy, where=torch.where,
        ones_like=torch.ones_like, Adam=torch.optim.Adam,
        Cosine=torch.optim.lr_scheduler.CosineAnnealingLR, Generator=torch.Generator,
        randperm=torch.randperm, manual_seed=torch.manual_seed, fork_rng=torch.random.fork_rng,
        random_getstate=_random.getstate, random_setstate=_random.setstate,
        random_seed=_random.seed, numpy_getstate=_np.random.get_state,
        numpy_setstate=_np.random.set_state, numpy_seed=_np.random.seed,
        get_num_threads=torch.get_num_threads, set_num_threads=torch.set_num_threads,
        optimizer_pre_hook=_pre_hook, FunctionMode=torch.overrides.TorchFunctionMode,
        BatchNorm1d=nn.BatchNorm1d, module_train=nn.Module.train,
        forward_hook=nn.Module.register_forward_hook, module_modules=nn.Module.modules,
        abs=_TB.abs, amax=_TB.amax, item=_TB.item, to=_TB.to, reshape=_TB.reshape,
        index=_TB.__getitem__, ge=_TB.__ge__, mul=_TB.__mul__, mean=_TB.mean,
        numel=_TB.numel,
    )
    del _TB, _data, _pre_hook

FUNCTIONS = ("quantize_affine", "dequantize_affine", "quantize_symmetric", "binarize", "SignSTE",
             "BinaryLinear", "quantize_bias", "integer_linear", "quantized_linear",
             "BinarizedMLP", "train_binarized")
"""The functions students write, in notebook order."""

_FLOAT_PATH = ("pruning_kit.quant.int8", "pruning_kit.quant.quantize_affine",
               "pruning_kit.quant.dequantize_affine", "pruning_kit.quant.dequantize_symmetric",
               "pruning_kit.quant.fake_quantize")
_INTEGER_KIT = ("pruning_kit.quant.integer_conv2d", "pruning_kit.quant.requantize",
                "pruning_kit.quant.fixed_point_multiplier", "pruning_kit.quant.IntegerConv2d")
_BINARY_KIT = ("pruning_kit.quant.BinaryLinear", "pruning_kit.quant.BinaryConv2d",
               "pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize",
               "pruning_kit.quant.binarized_mlp", "pruning_kit.quant.clip_latent_weights")

KIT = {
    "quantize_affine": ("pruning_kit.quant.quantize_affine", "pruning_kit.quant.fake_quantize"),
    "dequantize_affine": ("pruning_kit.quant.dequantize_affine", "pruning_kit.quant.fake_quantize"),
    "quantize_symmetric": ("pruning_kit.quant.quantize_symmetric",
                           "pruning_kit.quant.fake_quantize"),
    "binarize": ("pruning_kit.quant.binarize",),
    "SignSTE": ("pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize"),
    "BinaryLinear": ("pruning_kit.quant.BinaryLinear", "pruning_kit.quant.SignSTE"),
    # part 2: the kit's integer convolution does this work with a 1 x 1 kernel; the float path
    # would skip it
    "quantize_bias": ("pruning_kit.quant.quantize_symmetric", "pruning_kit.quant.quantize_affine",
                      "pruning_kit.quant.fake_quantize", "pruning_kit.quant.IntegerConv2d"),
    "integer_linear": _FLOAT_PATH + _INTEGER_KIT,
    "quantized_linear": _FLOAT_PATH + _INTEGER_KIT,
    # part 3: the kit's binarized layers, network and clipping (pk.train.fit stays allowed)
    "BinarizedMLP": _BINARY_KIT,
    "train_binarized": _BINARY_KIT,
}
"""The kit functions that would do each graded function's work: they refuse while it is tested."""

LAB_DATASET = "mnist5k"
"""The data of part 3: the embedded 5,000 MNIST digits (4,000 train, 1,000 test)."""

TRAINING = {"hidden": 256, "epochs": 10, "seed": 0, "threshold": 0.90}
"""How the hidden tests of part 3 train: ``BinarizedMLP(784, 256, 10)``, 10 epochs, seed 0,
one thread, and the test accuracy it must reach."""


def _fail(short, details, what):
    """An ``AssertionError``: the short sentence first, then the details, then the call."""
    return AssertionError(f"{short}: {details}. Call: {what}")


# ---------------------------------------------------------------------------
# Part 1: quantization of one tensor

def _rounding_options(value):
    """round(value), and its neighbour when value sits within 1e-4 of a half."""
    options = {round(value)}
    lower = SAFE.floor(value)
    if abs(value - lower - 0.5) <= 1e-4 * max(1.0, abs(value)):
        options |= {lower, lower + 1}
    return options


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def _check_q(q_values, x_values, scale, offset, qmin, qmax, what, shape, formula):
    for i, (qv, xv) in enumerate(zip(q_values, x_values)):
        options = {_clamp(r + offset, qmin, qmax) for r in _rounding_options(xv / scale)}
        if qv not in options:
            expected = _clamp(round(xv / scale) + offset, qmin, qmax)
            raise _fail(f"Element {unravel(i, shape)} of q is {qv}, not {expected}",
                        f"{formula} with x = {fmt(xv)}, scale = {fmt(scale)}"
                        + (f", zero_point = {offset}" if offset else ""), what)


def _int_values(obj, name, what, shape, dtype, hint):
    """The values of an integer tensor result ``name`` of the call ``what``, dtype checked."""
    require_tensor(obj, f"{name} of {what}")
    got = SAFE.get_dtype(obj)
    if got is not dtype:
        raise _fail(f"{name[:1].upper()}{name[1:]} is {got}, not {dtype}", hint, what)
    return tensor_values(obj, f"{name} of {what}", shape=shape)


def _result_tuple(result, size, names, what):
    if type(result) not in (tuple, list) or len(result) != size:
        shown = type_name(result) + (f" of {len(result)}" if type(result) in (tuple, list) else "")
        raise _fail(f"The result should be a tuple {names}, not {shown}",
                    "return all of them, in this order", what)
    return result


def check_quantize_affine(function, x, bits, *, dtype=None):
    """Check ``quantize_affine(x, bits)`` against the asymmetric scheme of the contract.

    With qmin 0 and qmax 2**bits - 1, the range always holds 0 (Jacob et al.
    2018, torch's ``MinMaxObserver``): ``lo = min(min(x), 0)``,
    ``hi = max(max(x), 0)``, ``scale = (hi - lo) / (qmax - qmin)`` (1.0 for an
    all-zero tensor), ``zero_point = clamp(int(round(qmin - lo / scale)), qmin,
    qmax)``, ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64.

    Args:
        function: the student's ``quantize_affine``.
        x: nested list or tensor.
        bits: int.
        dtype: dtype to build ``x`` with (default float32).

    Example:
        >>> check_quantize_affine(reference("quantize_affine"), [-1.0, 0.0, 2.0], 8)
        >>> check_quantize_affine(reference("quantize_affine"), [1.0, 2.0, 5.0], 8)
    """
    t = fresh_tensor(x, dtype, "x")
    before = snapshot(t)
    shape, _, values = before
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    zero = lo == hi
    what = f"quantize_affine({'all-zero x' if zero else 'x'} of shape {shape}, bits={bits})"
    result = call(function, t, bits, what=what)
    check_unchanged(t, before, "x", what)
    q, scale, zero_point = _result_tuple(result, 3, "(q, scale, zero_point)", what)
    qmin, qmax = 0, 2 ** bits - 1
    expected_scale = 1.0 if zero else (hi - lo) / (qmax - qmin)
    got_scale = number(scale, f"the scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        short = f"The scale is {fmt(got_scale)}, not {fmt(expected_scale)}"
        if zero:
            raise _fail(short, "an all-zero x uses scale 1.0 (and zero point 0)", what)
        details = (f"scale = (hi - lo) / (qmax - qmin) = ({fmt(hi)} - {fmt(lo)}) / {qmax - qmin} "
                   f"with lo = min(min(x), 0) and hi = max(max(x), 0)")
        span = max(values) - min(values)
        if span > 0 and abs(got_scale - span / (qmax - qmin)) <= 1e-5 * got_scale:
            details += ("; the range must hold 0, so that 0 is exact: widen [min(x), max(x)] "
                        "to include 0 before computing the scale")
        raise _fail(short, details, what)
    got_zero = number(zero_point, f"the zero_point of {what}", integer=True)
    z_options = {_clamp(r, qmin, qmax) for r in _rounding_options(qmin - lo / got_scale)}
    if got_zero not in z_options:
        expected_zero = _clamp(round(qmin - lo / expected_scale), qmin, qmax)
        details = (f"zero_point = clamp(round(qmin - lo / scale), {qmin}, {qmax}) with "
                   f"lo = min(min(x), 0) = {fmt(lo)}")
        if got_zero == _clamp(round(qmin + lo / expected_scale), qmin, qmax):
            details += "; check the sign: zero_point = qmin - lo / scale"
        raise _fail(f"The zero point is {got_zero}, not {expected_zero}", details, what)
    qv = _int_values(q, "q", what, shape, SAFE.int64,
                     "return the integer codes as int64 (.to(torch.int64))")
    _check_q(qv, values, got_scale, got_zero, qmin, qmax, what, shape,
             f"q = clamp(round(x / scale) + zero_point, {qmin}, {qmax})")


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
    got = tensor_values(result, f"the result of {what}", shape=shape)
    if SAFE.get_dtype(result) is not SAFE.float32:
        raise AssertionError(f"The result is {SAFE.get_dtype(result)}, not torch.float32: "
                             f"return float32 values (.to(torch.float32)). Call: {what}")
    expected = [scale * (v - zero_point) for v in values]
    found = first_mismatch(got, expected, 1e-6, 1e-7 * abs(scale))
    if found is not None:
        i, a, e = found
        details = (f"x_hat = scale * (q - zero_point) = {fmt(scale)} * ({values[i]} - "
                   f"{zero_point}) = {fmt(e)}")
        if abs(a - scale * (values[i] + zero_point)) <= 1e-6 * max(1.0, abs(a)):
            details += "; subtract the zero point, do not add it"
        raise _fail(f"Element {unravel(i, shape)} is {fmt(a)}, not {fmt(e)}", details, what)


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
    q, scale = _result_tuple(result, 2, "(q, scale)", what)
    qmax = 2 ** (bits - 1) - 1
    peak = max(abs(v) for v in values)
    expected_scale = 1.0 if peak == 0 else peak / qmax
    got_scale = number(scale, f"the scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        details = ("an all-zero x uses scale 1.0" if peak == 0 else
                   f"scale = max(abs(x)) / (2**{bits - 1} - 1) = {fmt(peak)} / {qmax}")
        if peak and abs(got_scale - peak / (qmax + 1)) <= 1e-5 * got_scale:
            details += (f"; the symmetric range is [-{qmax}, {qmax}], one level narrower than "
                        f"[-{qmax + 1}, {qmax}], so divide by {qmax}")
        raise _fail(f"The scale is {fmt(got_scale)}, not {fmt(expected_scale)}", details, what)
    qv = _int_values(q, "q", what, shape, SAFE.int64,
                     "return the integer codes as int64 (.to(torch.int64))")
    _check_q(qv, values, got_scale, 0, -qmax, qmax, what, shape,
             f"q = clamp(round(x / scale), -{qmax}, {qmax})")


# ---------------------------------------------------------------------------
# Part 1: binarized layers

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
    got = tensor_values(result, f"the result of {what}", shape=shape)
    if SAFE.get_dtype(result) is not xdtype:
        raise AssertionError(f"The result is {SAFE.get_dtype(result)}, not {xdtype}: keep x's "
                             f"dtype (torch.ones_like(x) has it). Call: {what}")
    _check_signs(got, values, what, shape)


def _check_signs(got, values, what, shape):
    for i, (g, v) in enumerate(zip(got, values)):
        e = 1.0 if v >= 0 else -1.0
        if g != e:
            details = "binarize(x) is +1 where x >= 0 and -1 where x < 0"
            if v == 0:
                details += "; x = 0 maps to +1 (torch.sign would give 0)"
            raise _fail(f"Element {unravel(i, shape)} (x = {fmt(v)}) is {fmt(g)}, not {e:+.0f}",
                        details, what)


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
        shown = type_name(function) if not isinstance(function, type) else function.__name__
        raise AssertionError(f"SignSTE should be a torch.autograd.Function: got {shown}; write "
                             f"class SignSTE(torch.autograd.Function) with static forward and "
                             f"backward")
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
        raise AssertionError(f"Backward through SignSTE failed: {type(exc).__name__}: {exc}. "
                             f"Call: {what}") from None
    grad = SAFE.get_grad(t)
    if grad is None:
        raise _fail("After backward, x.grad is None", "the output is not connected to x "
                    "(return a tensor computed in forward, and the gradient from backward)", what)
    got_grad = tensor_values(grad, f"x.grad after backward through {what}", shape=shape)
    upstream_values = snapshot(g)[2]
    expected = [u if abs(v) <= 1 else 0.0 for u, v in zip(upstream_values, values)]
    found = first_mismatch(got_grad, expected, 1e-6, 0)
    if found is not None:
        i, a, e = found
        v = values[i]
        details = (f"x.grad = grad * (abs(x) <= 1) with x = {fmt(v)} and incoming grad "
                   f"{fmt(upstream_values[i])}")
        if abs(v) > 1 and a == upstream_values[i]:
            details += "; the straight-through estimator passes no gradient where abs(x) > 1"
        elif abs(v) <= 1 and a == 0:
            details += "; inside [-1, 1] (bounds included) the gradient passes straight through"
        raise _fail(f"x.grad at {unravel(i, shape)} is {fmt(a)}, not {fmt(e)}", details, what)


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
        raise AssertionError("BinaryLinear should be a class derived from nn.Module: write "
                             "class BinaryLinear(nn.Module) with __init__ and forward")
    out_f, in_f = len(weight), len(weight[0])
    has_bias = bias is not None
    what = f"BinaryLinear({in_f}, {out_f}, bias={has_bias})"
    layer = call(cls, in_f, out_f, bias=has_bias, what=what)
    if not isinstance(layer, SAFE.Module):
        raise _fail("The layer is not an nn.Module", "call super().__init__() and derive from "
                    "nn.Module", what)
    params = dict(SAFE.named_parameters(layer))
    expected_names = ["weight", "bias"] if has_bias else ["weight"]
    if sorted(params) != sorted(expected_names):
        raise _fail(f"The layer has parameters {sorted(params)}, not {expected_names}",
                    "keep real-valued weight and bias parameters like nn.Linear (none for "
                    "bias=False)", what)
    if not has_bias and getattr(layer, "bias", None) is not None:
        raise _fail("layer.bias should be None", "like nn.Linear(bias=False)", what)
    w_param = params["weight"]
    if type(w_param) is not SAFE.Parameter or tuple(SAFE.size(w_param)) != (out_f, in_f):
        shape = tuple(SAFE.size(w_param)) if is_plain_tensor(w_param) else "?"
        raise _fail(f"The weight should be an nn.Parameter of shape ({out_f}, {in_f})",
                    f"got {type_name(w_param)} of shape {shape} (out x in, like nn.Linear)", what)
    init_values = flatten(SAFE.tolist(w_param))
    if len(set(init_values)) < 2:
        raise _fail(f"The initial weights are all {fmt(init_values[0])}",
                    "initialise them like nn.Linear (random)", what)
    if has_bias:
        b_param = params["bias"]
        if type(b_param) is not SAFE.Parameter or tuple(SAFE.size(b_param)) != (out_f,):
            raise _fail(f"The bias should be an nn.Parameter of shape ({out_f},)",
                        f"got {type_name(b_param)}", what)
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
        details = (f"y = x (alpha * sign(W))^T + b with alpha = mean(abs(W), dim=1) = "
                   f"{fmt_list(alpha)}")
        plain = [SAFE.fsum(xs[r][j] * (1.0 if W[c][j] >= 0 else -1.0) for j in range(in_f))
                 + b[c] for r in range(n) for c in range(out_f)]
        if first_mismatch(got, plain, 1e-5, 1e-6) is None:
            details += "; you left out the XNOR scaling factor alpha"
        raise _fail(f"Output {unravel(i, (n, out_f))} is {fmt(a)}, not {fmt(e)}", details,
                    forward_what)
    g = SAFE.tensor(upstream, dtype=SAFE.float32)
    try:
        SAFE.autograd_backward(y, g)
    except Exception as exc:
        raise AssertionError(f"Backward through the layer failed: {type(exc).__name__}: {exc}. "
                             f"Call: {forward_what}") from None
    gs = flatten(upstream)
    gs = [gs[r * out_f:(r + 1) * out_f] for r in range(n)]
    w_grad = SAFE.get_grad(w_param)
    if w_grad is None:
        raise _fail("After backward, weight.grad is None", "use SignSTE.apply(self.weight) so "
                    "that gradients reach the real weights", forward_what)
    got_w = tensor_values(w_grad, f"weight.grad after backward through {forward_what}",
                          shape=(out_f, in_f))
    expected_w = [alpha[i] * SAFE.fsum(gs[r][i] * xs[r][j] for r in range(n))
                  * (1.0 if abs(W[i][j]) <= 1 else 0.0)
                  for i in range(out_f) for j in range(in_f)]
    found = first_mismatch(got_w, expected_w, 1e-5, 1e-6)
    if found is not None:
        i, a, e = found
        r, c = unravel(i, (out_f, in_f))
        details = (f"weight.grad = alpha * (grad_out^T x) * (abs(W) <= 1) with W = "
                   f"{fmt(W[r][c])} and alpha detached")
        if abs(W[r][c]) > 1 and a != 0:
            details += "; no gradient may pass where abs(W) > 1 (use SignSTE)"
        raise _fail(f"weight.grad at ({r}, {c}) is {fmt(a)}, not {fmt(e)}", details, forward_what)
    x_grad = SAFE.get_grad(xt)
    if x_grad is None:
        raise _fail("After backward, x.grad is None", "compute the output from x",
                    forward_what)
    got_x = tensor_values(x_grad, f"x.grad after backward through {forward_what}", shape=(n, in_f))
    expected_x = [SAFE.fsum(gs[r][i] * wb[i][j] for i in range(out_f))
                  for r in range(n) for j in range(in_f)]
    check_close(got_x, expected_x, f"x.grad after backward through {forward_what}",
                rtol=1e-5, atol=1e-6, shape=(n, in_f))
    if has_bias:
        b_grad = SAFE.get_grad(params["bias"])
        if b_grad is None:
            raise _fail("After backward, bias.grad is None", "add self.bias to the output",
                        forward_what)
        got_b = tensor_values(b_grad, f"bias.grad after backward through {forward_what}",
                              shape=(out_f,))
        check_close(got_b, [SAFE.fsum(gs[r][i] for r in range(n)) for i in range(out_f)],
                    f"bias.grad after backward through {forward_what}", rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Part 2: an integer-only linear layer

_MATRIX_PRODUCTS = frozenset((
    "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "addbmm", "baddbmm", "mv",
    "addmv", "dot", "vdot", "inner", "outer", "ger", "addr", "linear", "bilinear", "einsum",
    "tensordot", "chain_matmul", "conv1d", "conv2d", "kron"))


def _floating(obj):
    if isinstance(obj, (list, tuple)):
        return next((d for d in (_floating(o) for o in obj) if d is not None), None)
    if isinstance(obj, SAFE.TensorBase):
        dtype = SAFE.get_dtype(obj)
        return dtype if dtype in SAFE.floating else None
    return None


class _FloatProducts(TRUSTED.FunctionMode):
    """Notes every matrix product that runs on floating-point tensors while it is active."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _MATRIX_PRODUCTS:
            dtype = _floating(list(args) + list(kwargs.values()))
            if dtype is not None:
                self.seen.append((name, dtype))
        return func(*args, **kwargs)


def _call_integer_path(function, args, what):
    """Call the student's function and fail if a matrix product ran in floating point."""
    with _FloatProducts() as watch:
        result = call(function, *args, what=what)
    if watch.seen:
        name, dtype = watch.seen[0]
        raise _fail(f"A matrix product ({name}) ran in {dtype}",
                    "an integer-only layer multiplies and accumulates integers: convert x_q "
                    "and w_q to torch.int32 and multiply those", what)
    return result


def _integer_inputs(x_q, w_q, bias_q):
    x = fresh_tensor(x_q, TRUSTED.uint8, "x_q")
    w = fresh_tensor(w_q, TRUSTED.int8, "w_q")
    b = fresh_tensor(bias_q, SAFE.int32, "bias_q")
    return x, w, b


def _accumulator(xs, z, ws, bs):
    """The exact accumulator, as Python ints: ``sum_j (x - z) * w + b`` for every (n, i)."""
    return [[sum((xv - z) * wv for xv, wv in zip(row, wrow)) + bs[i]
             for i, wrow in enumerate(ws)] for row in xs]


def _rows(values, width):
    return [values[r * width:(r + 1) * width] for r in range(len(values) // width)]


def check_quantize_bias(function, bias, input_scale, weight_scale, *, dtype=None):
    """Check ``quantize_bias(bias, input_scale, weight_scale)``: int32 codes, zero point 0.

    ``q_bias = round(bias / (input_scale * weight_scale))`` as int32: the bias
    is added to the accumulator of products ``x_q * w_q``, whose scale is
    ``input_scale * weight_scale``.

    Args:
        function: the student's ``quantize_bias``.
        bias: list or tensor of floats.
        input_scale, weight_scale: positive floats.
        dtype: dtype to build ``bias`` with (default float32).

    Example:
        >>> check_quantize_bias(reference("quantize_bias"), [0.5, -0.2], 0.02, 0.01)
    """
    t = fresh_tensor(bias, dtype, "bias")
    before = snapshot(t)
    shape, _, values = before
    what = (f"quantize_bias(bias of shape {shape}, input_scale={fmt(input_scale)}, "
            f"weight_scale={fmt(weight_scale)})")
    result = call(function, t, input_scale, weight_scale, what=what)
    check_unchanged(t, before, "bias", what)
    got = _int_values(result, "the quantized bias", what, shape, SAFE.int32,
                      "it is added to the int32 accumulator, so it is stored in int32 (8 bits "
                      "would overflow: the bias scale is tiny)")
    scale = input_scale * weight_scale
    for i, (g, b) in enumerate(zip(got, values)):
        if g in _rounding_options(b / scale):
            continue
        details = (f"q_bias = round(bias / (input_scale * weight_scale)) = round({fmt(b)} / "
                   f"{fmt(scale)})")
        if g in _rounding_options(b / weight_scale) or g in _rounding_options(b / input_scale):
            details += ("; the bias scale is input_scale * weight_scale, the scale of the "
                        "products it is added to")
        elif g == int(b / scale):
            details += "; round to the nearest integer (torch.round), do not truncate"
        elif g in _rounding_options(b * scale):
            details += "; divide by the scale, do not multiply"
        raise _fail(f"Element {unravel(i, shape)} is {g}, not {round(b / scale)}", details, what)


def check_integer_linear(function, x_q, x_zero_point, w_q, bias_q):
    """Check ``integer_linear(x_q, x_zero_point, w_q, bias_q)``: the exact int32 accumulator.

    ``acc[n, i] = sum_j (x_q[n, j] - x_zero_point) * w_q[i, j] + bias_q[i]``,
    computed with integers only: the result must be an int32 tensor holding the
    exact sums (float32 cannot hold every integer above 2**24), and no matrix
    product may run on floating-point tensors.

    Args:
        function: the student's ``integer_linear``.
        x_q: nested list N x in of ints in [0, 255] (built as uint8).
        x_zero_point: int in [0, 255].
        w_q: nested list out x in of ints in [-127, 127] (built as int8).
        bias_q: list of out ints (built as int32).

    Example:
        >>> check_integer_linear(reference("integer_linear"), [[100, 150, 50]], 100,
        ...                      [[100, 50, -50], [-100, 20, 30]], [2500, -1000])
    """
    x, w, b = _integer_inputs(x_q, w_q, bias_q)
    snaps = [snapshot(t) for t in (x, w, b)]
    (n, in_f), (out_f, _) = snaps[0][0], snaps[1][0]
    what = (f"integer_linear(x_q of shape ({n}, {in_f}), x_zero_point={x_zero_point}, "
            f"w_q of shape ({out_f}, {in_f}), bias_q)")
    result = _call_integer_path(function, (x, x_zero_point, w, b), what)
    for t, before, name in zip((x, w, b), snaps, ("x_q", "w_q", "bias_q")):
        check_unchanged(t, before, name, what)
    got = _int_values(result, "the accumulator", what, (n, out_f), SAFE.int32,
                      "accumulate the products in int32 and return that accumulator")
    xs, ws, bs = _rows(snaps[0][2], in_f), _rows(snaps[1][2], in_f), snaps[2][2]
    expected = [v for row in _accumulator(xs, x_zero_point, ws, bs) for v in row]
    found = first_mismatch(got, expected, 0, 0)
    if found is None:
        return
    k, g, e = found
    r, i = unravel(k, (n, out_f))
    details = "acc = sum over j of (x_q - x_zero_point) * w_q, plus bias_q"
    wrapped = [[(v - x_zero_point) % 256 for v in row] for row in xs]
    if abs(e) > 2 ** 24 and abs(g - e) <= abs(e) * 1e-5:
        details += ("; float32 cannot hold every integer above 2**24 = 16777216: accumulate "
                    "in int32")
    elif got == [v for row in _accumulator(xs, 0, ws, bs) for v in row]:
        details += "; subtract the input zero point from x_q before multiplying"
    elif got == [v - bs[c] for v, c in zip(expected, [c for _ in range(n) for c in range(out_f)])]:
        details += "; add bias_q"
    elif got == [v for row in _accumulator(wrapped, 0, ws, bs) for v in row]:
        details += ("; x_q - x_zero_point wrapped around in uint8 (0 - 1 = 255): convert to "
                    "torch.int32 first")
    raise _fail(f"Accumulator ({r}, {i}) is {g}, not {e}", details, what)


def _all_in(got, options):
    """True if every value of ``got`` is one of the accepted values at its position."""
    return len(got) == len(options) and all(g in o for g, o in zip(got, options))


def check_quantized_linear(function, x_q, x_scale, x_zero_point, w_q, w_scale, bias_q,
                           out_scale, out_zero_point):
    """Check ``quantized_linear``: integer-only layer, requantized to uint8, close to the float one.

    With ``acc`` the exact int32 accumulator (see :func:`check_integer_linear`)
    and ``M = x_scale * w_scale / out_scale``, the output is
    ``clamp(round(M * acc) + out_zero_point, 0, 255)`` as uint8 (halves on a
    rounding boundary may go either way). So where the float layer's output
    ``x_scale * w_scale * acc`` lies inside the uint8 range it comes back within
    half a step (``out_scale / 2``), and beyond it the output saturates at 0 or
    255. No matrix product may run on floating-point tensors.

    Args:
        function: the student's ``quantized_linear``.
        x_q: nested list N x in of ints in [0, 255] (built as uint8).
        x_scale, x_zero_point: the input's scale and zero point.
        w_q: nested list out x in of ints in [-127, 127] (built as int8).
        w_scale: the weights' scale (one for the tensor; zero point 0).
        bias_q: list of out ints (built as int32).
        out_scale, out_zero_point: the output's scale and zero point.

    Example:
        >>> check_quantized_linear(reference("quantized_linear"), [[100, 150, 50]], 0.02, 100,
        ...                        [[100, 50, -50], [-100, 20, 30]], 0.01, [2500, -1000],
        ...                        0.01, 50)
    """
    x, w, b = _integer_inputs(x_q, w_q, bias_q)
    snaps = [snapshot(t) for t in (x, w, b)]
    (n, in_f), (out_f, _) = snaps[0][0], snaps[1][0]
    what = (f"quantized_linear(x_q of shape ({n}, {in_f}), ..., out_scale={fmt(out_scale)}, "
            f"out_zero_point={out_zero_point})")
    args = (x, x_scale, x_zero_point, w, w_scale, b, out_scale, out_zero_point)
    result = _call_integer_path(function, args, what)
    for t, before, name in zip((x, w, b), snaps, ("x_q", "w_q", "bias_q")):
        check_unchanged(t, before, name, what)
    got = _int_values(result, "the output", what, (n, out_f), TRUSTED.uint8,
                      "the output is the next layer's 8-bit input: clamp to [0, 255], then "
                      ".to(torch.uint8)")
    xs, ws, bs = _rows(snaps[0][2], in_f), _rows(snaps[1][2], in_f), snaps[2][2]
    acc = [v for row in _accumulator(xs, x_zero_point, ws, bs) for v in row]
    m = x_scale * w_scale / out_scale
    z = out_zero_point

    def outputs(values, scale, offset=z, low=0, high=255, rounding=_rounding_options):
        return [{_clamp(r + offset, low, high) if low is not None else r + offset
                 for r in rounding(scale * a)} for a in values]

    options = outputs(acc, m)
    bad = next((k for k, (g, o) in enumerate(zip(got, options)) if g not in o), None)
    if bad is None:
        return
    r, i = unravel(bad, (n, out_f))
    g, a = got[bad], acc[bad]
    expected = _clamp(round(m * a) + z, 0, 255)
    level = m * a + z  # the float layer's output, in output steps
    formula = (f"out = clamp(round(M * acc) + out_zero_point, 0, 255) with M = x_scale * "
               f"w_scale / out_scale = {fmt(m)} and acc = {a}")
    if 0 <= level <= 255 and abs(g - level) > 1:
        short = (f"Output ({r}, {i}) is {g}, {abs(g - level):.1f} steps from the float "
                 f"layer's {level:.2f}")
    else:
        short = f"Output ({r}, {i}) is {g}, not {expected}"
        if not 0 <= level <= 255:
            formula += (f"; the float layer's output ({fmt(out_scale * (level - z))}) lies "
                        f"beyond the uint8 range, so the output saturates at {expected}")
    floor = lambda v: {SAFE.floor(v)}  # noqa: E731
    without_x_zero = [v for row in _accumulator(xs, 0, ws, bs) for v in row]
    if _all_in(got, outputs(acc, m, offset=0)):
        formula += "; add out_zero_point after scaling"
    elif _all_in(got, [{v % 256 for v in o} for o in outputs(acc, m, low=None)]):
        formula += ("; clamp to [0, 255] before .to(torch.uint8): the conversion wraps around "
                    "instead of saturating")
    elif _all_in(got, outputs(acc, m, rounding=floor)) or _all_in(
            got, outputs(acc, m, rounding=lambda v: {int(v)})):
        formula += "; round to the nearest integer (torch.round), do not truncate"
    elif _all_in(got, outputs(acc, 1 / m)):
        formula += "; M = x_scale * w_scale / out_scale, not its inverse"
    elif _all_in(got, outputs(without_x_zero, m)):
        formula += "; subtract x_zero_point from x_q before multiplying"
    raise _fail(short, formula, what)


def layer_case(seed, n, in_features, out_features, *, x_range=(-1.0, 3.0), out_margin=1.0,
               out_zero=None):
    """Arguments of ``quantized_linear`` for a random float layer, quantized as in part 2.

    The input (uniform in ``x_range``) is quantized with the affine rule, the
    weights (normal, std 0.5) symmetrically to int8, the bias with
    ``input_scale * weight_scale``; the output's range is that of the float
    outputs, scaled by ``out_margin`` (below 1 some outputs saturate).

    Args:
        seed: int.
        n, in_features, out_features: the sizes.
        x_range: (low, high) of the real input.
        out_margin: the output range as a multiple of the float outputs' range.
        out_zero: force the output zero point (an int in [0, 255]), or None.

    Returns:
        dict of keyword arguments for :func:`check_quantized_linear`.

    Example:
        >>> sorted(layer_case(0, 2, 3, 4))[:3]
        ['bias_q', 'out_scale', 'out_zero_point']
    """
    rng = _random.Random(seed)
    low, high = x_range
    x = [[rng.uniform(low, high) for _ in range(in_features)] for _ in range(n)]
    w = [[rng.gauss(0.0, 0.5) for _ in range(in_features)] for _ in range(out_features)]
    bias = [rng.gauss(0.0, 0.5) for _ in range(out_features)]
    x_lo, x_hi = min(min(min(r) for r in x), 0.0), max(max(max(r) for r in x), 0.0)
    x_scale = (x_hi - x_lo) / 255
    x_zero = _clamp(round(-x_lo / x_scale), 0, 255)
    x_q = [[_clamp(round(v / x_scale) + x_zero, 0, 255) for v in r] for r in x]
    w_scale = max(abs(v) for r in w for v in r) / 127
    w_q = [[_clamp(round(v / w_scale), -127, 127) for v in r] for r in w]
    bias_q = [round(v / (x_scale * w_scale)) for v in bias]
    acc = _accumulator(x_q, x_zero, w_q, bias_q)
    real = [x_scale * w_scale * a for r in acc for a in r]
    lo, hi = min(min(real), 0.0) * out_margin, max(max(real), 0.0) * out_margin
    out_scale = (hi - lo) / 255 if hi > lo else 1.0
    zero = _clamp(round(-lo / out_scale), 0, 255) if out_zero is None else out_zero
    return {"x_q": x_q, "x_scale": x_scale, "x_zero_point": x_zero, "w_q": w_q,
            "w_scale": w_scale, "bias_q": bias_q, "out_scale": out_scale,
            "out_zero_point": zero}


# ---------------------------------------------------------------------------
# Part 3: a binarized network and its training loop

def lab_data():
    """``(train, test)`` of part 3: fresh copies of :data:`LAB_DATASET`, checked.

    Example:
        >>> train, test = lab_data()
        >>> len(train), len(test)
        (4000, 1000)
    """
    train, test = TRUSTED.load(LAB_DATASET)
    out = []
    for data, per_class in ((train, 400), (test, 100)):
        images = SAFE.clone(SAFE.detach(data.images))
        labels = SAFE.clone(SAFE.detach(data.labels))
        counts = [0] * 10
        for y in SAFE.tolist(labels):
            counts[y] += 1
        if counts != [per_class] * 10:
            raise AssertionError(f"The {LAB_DATASET} data was changed: {counts} examples per "
                                 f"class, not {per_class} each; restart the kernel")
        out.append(TRUSTED.TensorData(images, labels, name=LAB_DATASET))
    return tuple(out)


@_contextlib.contextmanager
def _seeded(seed):
    """One thread, every random generator seeded; the caller's states come back afterwards."""
    threads = TRUSTED.get_num_threads()
    py_state, np_state = TRUSTED.random_getstate(), TRUSTED.numpy_getstate()
    with TRUSTED.fork_rng():
        TRUSTED.set_num_threads(1)
        TRUSTED.manual_seed(seed)
        TRUSTED.random_seed(seed)
        TRUSTED.numpy_seed(seed)
        try:
            yield
        finally:
            TRUSTED.set_num_threads(threads)
            TRUSTED.random_setstate(py_state)
            TRUSTED.numpy_setstate(np_state)


def _accuracy(model, data):
    """Top-1 accuracy of ``model`` on ``data`` (argmax, first on ties), computed here."""
    TRUSTED.module_train(model, False)
    correct = 0
    with SAFE.no_grad():
        logits = SAFE.module_call(model, data.images)
    rows = tensor_values(logits, "the network's output", shape=(len(data), 10))
    labels = SAFE.tolist(data.labels)
    for k, y in enumerate(labels):
        row = rows[k * 10:(k + 1) * 10]
        if max(range(10), key=row.__getitem__) == y:
            correct += 1
    return correct / len(labels)


def _is_binary_linear(module):
    """A module of a class named ``BinaryLinear`` (the notebook's, the reference, or another)."""
    return type(module).__name__ == "BinaryLinear" and isinstance(module, SAFE.Module)


def _own_parameters(module):
    return list(SAFE.named_parameters(module, recurse=False))


def _sign_ste_on_activation(tensor):
    """True if ``tensor`` was computed through ``SignSTE`` from something other than a weight."""
    start = getattr(tensor, "grad_fn", None)
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        forward_cls = getattr(type(node), "_forward_cls", None)
        parents = [p for p, _ in getattr(node, "next_functions", ()) if p is not None]
        if getattr(forward_cls, "__name__", "") == "SignSTE" and parents and not all(
                type(p).__name__ == "AccumulateGrad" for p in parents):
            return True
        if len(seen) < 200:
            todo.extend(parents)
    return False


def _layer_calls(model, x, what):
    """Run ``model(x)`` in training mode with hooks: [(kind, module, input, output)] in call order."""
    calls = []

    def record(module, inputs, output):
        kind = "linear" if _is_binary_linear(module) else "norm"
        calls.append((kind, module, inputs[0] if inputs else None, output))

    handles = [TRUSTED.forward_hook(m, record) for m in TRUSTED.module_modules(model)
               if _is_binary_linear(m) or isinstance(m, TRUSTED.BatchNorm1d)]
    try:
        call(TRUSTED.module_train, model, True, what=f"{what}.train()")
        with SAFE.enable_grad():
            out = call(SAFE.module_call, model, x, what=f"the forward pass of {what}")
    finally:
        for handle in handles:
            handle.remove()
    return calls, out


def check_binarized_mlp(cls, in_features, hidden, num_classes, *, binary_activations=True,
                        n=8, seed=0, images=False):
    """Check the structure and the forward pass of ``BinarizedMLP``.

    ``cls(in_features, hidden, num_classes, binary_activations=...)`` must be an
    ``nn.Module`` whose forward pass flattens its input, then runs three
    ``BinaryLinear`` layers (in -> hidden -> hidden -> classes), each followed by
    a ``BatchNorm1d``; every parameter lives in one of them. The first layer
    sees the real input. With ``binary_activations`` the input of the second
    and third layers is +-1 and was computed through ``SignSTE.apply``; without,
    it is ``hardtanh`` of the previous batch norm (real values in [-1, 1]).
    Every ``BinaryLinear`` computes ``F.linear(input, alpha * sign(W), bias)``.

    Args:
        cls: the student's ``BinarizedMLP`` class.
        in_features, hidden, num_classes: the sizes to build it with.
        binary_activations: the flag to build it with.
        n: the batch size of the forward pass checked.
        seed: seed of the random input.
        images: feed images (n x 1 x H x W, in_features = H * W) instead of rows.

    Example:
        >>> check_binarized_mlp(reference("BinarizedMLP"), 20, 16, 5)
        >>> check_binarized_mlp(reference("BinarizedMLP"), 20, 16, 5, binary_activations=False)
    """
    if not (isinstance(cls, type) and issubclass(cls, SAFE.Module)):
        raise AssertionError("BinarizedMLP should be a class derived from nn.Module: write "
                             "class BinarizedMLP(nn.Module) with __init__ and forward")
    what = (f"BinarizedMLP({in_features}, {hidden}, {num_classes}, "
            f"binary_activations={binary_activations})")
    with _seeded(seed):
        model = call(cls, in_features, hidden, num_classes,
                     binary_activations=binary_activations, what=what)
        if not isinstance(model, SAFE.Module):
            raise _fail("BinarizedMLP did not build an nn.Module", "call super().__init__()",
                        what)
        _check_parameters(model, what)
        side = int(in_features ** 0.5)
        shape = (n, 1, side, side) if images and side * side == in_features else (n, in_features)
        x = random_tensor(*shape, seed=seed)
        calls, out = _layer_calls(model, x, what)
    _check_calls(calls, x, in_features, hidden, num_classes, binary_activations, what)
    tensor_values(out, f"the output of {what}", shape=(n, num_classes))


def _check_parameters(model, what):
    for name, module in SAFE.named_modules(model):
        params = _own_parameters(module)
        if not params or _is_binary_linear(module) or isinstance(module, TRUSTED.BatchNorm1d):
            continue
        where = f"model.{name}" if name else "the model itself"
        if isinstance(module, SAFE.Linear):
            raise _fail(f"{where} is an nn.Linear with float weights",
                        "binary weights come from BinaryLinear layers", what)
        raise _fail(f"{where} ({type(module).__name__}) holds parameters",
                    "every parameter should live in a BinaryLinear or a BatchNorm1d", what)


def _check_calls(calls, x, in_features, hidden, num_classes, binary_activations, what):
    kinds = [kind for kind, *_ in calls]
    linear_calls = [c for c in calls if c[0] == "linear"]
    if not linear_calls:
        raise _fail("The forward pass ran no BinaryLinear layer",
                    "build the three layers with BinaryLinear(...) in __init__ and use them "
                    "in forward", what)
    if len(linear_calls) != 3:
        raise _fail(f"The forward pass ran {len(linear_calls)} BinaryLinear layers, not 3",
                    "in -> hidden -> hidden -> classes", what)
    sizes = [(in_features, hidden), (hidden, hidden), (hidden, num_classes)]
    for k, ((_, module, inp, out), (n_in, n_out)) in enumerate(zip(linear_calls, sizes)):
        weight = getattr(module, "weight", None)
        got = tuple(SAFE.size(weight)) if is_plain_tensor(weight) else None
        if got != (n_out, n_in):
            raise _fail(f"BinaryLinear {k + 1} has a weight of shape {got}, not "
                        f"{(n_out, n_in)}", "the layers map in -> hidden -> hidden -> classes",
                        what)
        _check_binary_forward(module, inp, out, k + 1, what)
    for k, (kind, module, _, _) in enumerate(calls):
        if kind == "linear" and (k + 1 >= len(calls) or calls[k + 1][0] != "norm"):
            raise _fail(f"BinaryLinear {linear_calls.index(calls[k]) + 1} is not followed by a "
                        f"BatchNorm1d", "each layer's output goes through its own "
                        "nn.BatchNorm1d before the activation", what)
    if kinds.count("norm") != 3:
        raise _fail(f"The forward pass ran {kinds.count('norm')} BatchNorm1d layers, not 3",
                    "one after each BinaryLinear", what)
    first_in = linear_calls[0][2]
    rows = SAFE.size(x)[0]
    flat = flatten(SAFE.tolist(x))
    if not is_plain_tensor(first_in) or tuple(SAFE.size(first_in)) != (rows, in_features) or \
            first_mismatch(flatten(SAFE.tolist(first_in)), flat, 0, 0) is not None:
        raise _fail("The first BinaryLinear does not see the real input",
                    "flatten x to (N, in_features) and feed it as it is: only the hidden "
                    "activations are binarized", what)
    for k in (1, 2):
        inp = linear_calls[k][2]
        values = flatten(SAFE.tolist(inp))
        if binary_activations:
            odd = next((v for v in values if v not in (1.0, -1.0)), None)
            if odd is not None:
                raise _fail(f"The input of BinaryLinear {k + 1} holds {fmt(odd)}, not only +-1",
                            "binarize the hidden activations with SignSTE.apply after each "
                            "batch norm", what)
            if not _sign_ste_on_activation(inp):
                raise _fail(f"The input of BinaryLinear {k + 1} is +-1 but not from SignSTE",
                            "binarize the activations with SignSTE.apply: the straight-through "
                            "estimator is what lets gradients reach the earlier layers", what)
        else:
            if any(not -1.0 <= v <= 1.0 for v in values) or all(v in (1.0, -1.0)
                                                                for v in values):
                raise _fail(f"The input of BinaryLinear {k + 1} is not hardtanh of real values",
                            "with binary_activations=False the activation is F.hardtanh (real "
                            "values clipped to [-1, 1])", what)


def _check_binary_forward(module, inp, out, k, what):
    """The layer's output equals ``F.linear(input, alpha * sign(W), bias)``."""
    weight = SAFE.detach(module.weight)
    bias = getattr(module, "bias", None)
    bias = SAFE.detach(bias) if is_plain_tensor(bias) else None
    alpha = TRUSTED.mean(TRUSTED.abs(weight), dim=1, keepdim=True)
    signs = TRUSTED.where(TRUSTED.ge(weight, 0), 1.0, -1.0)
    with SAFE.no_grad():
        expected = TRUSTED.linear(SAFE.detach(inp), TRUSTED.mul(alpha, signs), bias)
    got = tensor_values(out, f"the output of BinaryLinear {k}")
    found = first_mismatch(got, flatten(SAFE.tolist(expected)), 1e-4, 1e-5)
    if found is not None:
        raise _fail(f"BinaryLinear {k} does not compute with binary weights",
                    "its output should be F.linear(input, alpha * sign(W), bias)", what)


class _ClipWatch:
    """Counts optimizer steps; from the second one on, the latent weights must be in [-1, 1]."""

    def __init__(self, model):
        self.weights = [m.weight for m in TRUSTED.module_modules(model) if _is_binary_linear(m)]
        self.steps = 0
        self.failure = None
        self.handle = None

    def largest(self):
        return max(TRUSTED.item(TRUSTED.amax(TRUSTED.abs(SAFE.detach(w)))) for w in self.weights)

    def __call__(self, optimizer, args, kwargs):
        self.steps += 1
        if self.steps >= 2 and self.failure is None:
            peak = self.largest()
            if peak > 1.0 + 1e-6:
                self.failure = (self.steps, peak)
                raise AssertionError(
                    f"A latent weight is {fmt(peak)} before step {self.steps}: clip every "
                    f"BinaryLinear weight to [-1, 1] after each optimizer step")

    def __enter__(self):
        self.handle = TRUSTED.optimizer_pre_hook(self)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return False


def check_train_binarized(function, *, hidden=32, epochs=1, seed=0, train_size=300,
                          threshold=None):
    """Check ``train_binarized(model, train, epochs, seed)`` on a reference ``BinarizedMLP``.

    The model is built with ``torch.manual_seed(seed)``; a few latent weights
    are set to +-3 (outside the STE window) and one batch-norm weight to 2.5.
    During training, every optimizer step from the second on must find all
    ``BinaryLinear`` weights in [-1, 1] (clipped after each step) and training
    must end with them there; the batch-norm weight must not be clipped; the
    model passed in must be the one trained; the result must be a list of
    ``epochs`` finite mean losses. With ``threshold``, the trained model must
    reach that test accuracy. Everything runs on one thread with every random
    generator seeded, so the same submission always gets the same result.

    Args:
        function: the student's ``train_binarized``.
        hidden: the width of the reference network's hidden layers.
        epochs: passed on.
        seed: passed on, and seeds the model's initialisation.
        train_size: train on the first this many training images (None: all 4,000).
        threshold: the test accuracy to reach, or None.

    Example:
        >>> check_train_binarized(reference("train_binarized"), hidden=16, train_size=200)
    """
    if not callable(function):
        raise AssertionError(f"train_binarized should be a function, got {type_name(function)}")
    train, test = lab_data()
    if train_size is not None:
        train = TRUSTED.TensorData(train.images[:train_size], train.labels[:train_size],
                                   name=LAB_DATASET)
    what = (f"train_binarized(BinarizedMLP(784, {hidden}, 10), train of {len(train)} images, "
            f"epochs={epochs}, seed={seed})")
    with _seeded(seed):
        model = _RefBinarizedMLP(784, hidden, 10)
        layers = [m for m in TRUSTED.module_modules(model) if _is_binary_linear(m)]
        with SAFE.no_grad():
            for layer in layers:
                SAFE.copy_(TRUSTED.index(layer.weight, (0, slice(0, 2))),
                           SAFE.tensor([3.0, -3.0]))
            SAFE.copy_(TRUSTED.index(model.bn1.weight, 0), SAFE.tensor(2.5))
        before = [SAFE.clone(SAFE.detach(layer.weight)) for layer in layers]
        with _ClipWatch(model) as watch:
            losses = call(function, model, train, epochs, seed, what=what)
    if watch.failure is not None:
        step, peak = watch.failure
        raise _fail(f"A latent weight is {fmt(peak)} before step {step}",
                    "clip every BinaryLinear weight to [-1, 1] after each optimizer step, so "
                    "that it stays where the straight-through estimator passes gradients", what)
    if watch.steps == 0:
        raise _fail("train_binarized made no optimizer step",
                    "train with a torch.optim optimizer (Adam, for example): the tests watch "
                    "its steps", what)
    peak = watch.largest()
    if peak > 1.0 + 1e-6:
        raise _fail(f"After training, a latent weight is {fmt(peak)}",
                    "clip the BinaryLinear weights to [-1, 1] after every step, the last one "
                    "too", what)
    if TRUSTED.item(TRUSTED.index(SAFE.detach(model.bn1.weight), 0)) <= 1.0:
        raise _fail("A BatchNorm1d weight was clipped too",
                    "clip only the BinaryLinear weights (batch-norm scales may exceed 1)", what)
    if all(first_mismatch(flatten(SAFE.tolist(layer.weight)), flatten(SAFE.tolist(old)), 0, 0)
           is None for layer, old in zip(layers, before)):
        raise _fail("The model's weights did not change",
                    "train the model passed in, in place (not a copy)", what)
    if type(losses) not in (list, tuple) or len(losses) != epochs:
        shown = type_name(losses) + (f" of {len(losses)}" if type(losses) in (list, tuple)
                                     else "")
        raise _fail(f"The result should be a list of {epochs} mean losses, not {shown}",
                    "return the mean training loss of each epoch", what)
    for k, value in enumerate(losses):
        value = number(value, f"loss {k} returned by train_binarized")
        if not (SAFE.isfinite(value) and value >= 0):
            raise _fail(f"Loss {k} is {fmt(value)}", "return the mean cross-entropy of each "
                        "epoch: finite and non-negative", what)
    if threshold is not None:
        accuracy = call(_accuracy, model, test, what=f"evaluating the model after {what}")
        if accuracy < threshold:
            raise _fail(f"Test accuracy is {accuracy:.1%}, below {threshold:.0%}",
                        f"after {epochs} epochs of your loop the network does not learn enough: "
                        f"check the optimizer, learning rate and batch size", what)


def check_binarized_mlp_trains(cls, *, hidden=None, epochs=None, seed=None, threshold=None):
    """Train ``cls(784, hidden, 10)`` with the reference loop; it must reach ``threshold``.

    Defaults come from :data:`TRAINING` (256 hidden units, 10 epochs, seed 0,
    90%), on one thread with every random generator seeded. The model's
    forward pass runs inside :func:`call`, so the kit's binarized layers refuse.

    Example:
        >>> check_binarized_mlp_trains(reference("BinarizedMLP"), hidden=16, epochs=1,
        ...                            threshold=0.5)
    """
    hidden = TRAINING["hidden"] if hidden is None else hidden
    epochs = TRAINING["epochs"] if epochs is None else epochs
    seed = TRAINING["seed"] if seed is None else seed
    threshold = TRAINING["threshold"] if threshold is None else threshold
    train, test = lab_data()
    what = f"BinarizedMLP(784, {hidden}, 10) trained {epochs} epochs (Adam, lr 1e-2, seed {seed})"
    with _seeded(seed):
        model = call(cls, 784, hidden, 10, what=f"BinarizedMLP(784, {hidden}, 10)")
        if not isinstance(model, SAFE.Module):
            raise _fail("BinarizedMLP did not build an nn.Module", "call super().__init__()",
                        what)
        calls, _ = _layer_calls(model, SAFE.clone(train.images[:8]), what)
        _check_calls(calls, train.images[:8], 784, hidden, 10, True, what)
        call(_ref_train_binarized, model, train, epochs, seed, what=what)
        accuracy = call(_accuracy, model, test, what=f"evaluating {what}")
    if accuracy < threshold:
        raise _fail(f"Test accuracy is {accuracy:.1%}, below {threshold:.0%}",
                    "the network does not learn: check that each BinaryLinear is followed by "
                    "its BatchNorm1d and that the activations go through SignSTE", what)


# ---------------------------------------------------------------------------
# Reference implementations (used by ``isolated`` to isolate one function)

def _ref_quantize_affine(x, bits):
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
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


# The reference classes carry the graded names, so that code which recognises layers by their
# class name (``type(m).__name__ == "BinaryLinear"``) works with them as with the student's own.
class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _ref_binarize(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
        return F.linear(x, alpha * _RefSignSTE.apply(self.weight), self.bias)


_RefSignSTE, _RefBinaryLinear = SignSTE, BinaryLinear
del SignSTE, BinaryLinear


def _ref_quantize_bias(bias, input_scale, weight_scale):
    return torch.round(bias.to(torch.float64) / (input_scale * weight_scale)).to(torch.int32)


def _ref_integer_linear(x_q, x_zero_point, w_q, bias_q):
    x = x_q.to(torch.int32) - x_zero_point
    return x @ w_q.to(torch.int32).t() + bias_q.to(torch.int32)


def _ref_quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale,
                          out_zero_point):
    acc = _ref_integer_linear(x_q, x_zero_point, w_q, bias_q)
    out = torch.round(acc.to(torch.float64) * (x_scale * w_scale / out_scale)) + out_zero_point
    return out.clamp(0, 255).to(torch.uint8)


class BinarizedMLP(nn.Module):
    def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
        super().__init__()
        self.binary_activations = binary_activations
        self.fc1, self.bn1 = _RefBinaryLinear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = _RefBinaryLinear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden)
        self.fc3 = _RefBinaryLinear(hidden, num_classes, bias=False)
        self.bn3 = nn.BatchNorm1d(num_classes)

    def activation(self, x):
        return _RefSignSTE.apply(x) if self.binary_activations else F.hardtanh(x)

    def forward(self, x):
        x = self.activation(self.bn1(self.fc1(x.flatten(1))))
        x = self.activation(self.bn2(self.fc2(x)))
        return self.bn3(self.fc3(x))


_RefBinarizedMLP = BinarizedMLP
del BinarizedMLP


def _ref_train_binarized(model, train, epochs, seed):
    generator = TRUSTED.Generator().manual_seed(seed)
    optimizer = TRUSTED.Adam(model.parameters(), lr=1e-2)
    n, batch = len(train.labels), 100
    schedule = TRUSTED.Cosine(optimizer, T_max=max(1, epochs * -(-n // batch)))
    layers = [m for m in model.modules() if _is_binary_linear(m)]
    losses = []
    for _ in range(epochs):
        model.train()
        order = TRUSTED.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = TRUSTED.cross_entropy(model(train.images[idx]), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                for layer in layers:
                    layer.weight.clamp_(-1.0, 1.0)
            total += loss.item() * len(idx)
        losses.append(total / n)
    model.eval()
    return losses


_REFERENCES = {
    "quantize_affine": _ref_quantize_affine,
    "dequantize_affine": _ref_dequantize_affine,
    "quantize_symmetric": _ref_quantize_symmetric,
    "binarize": _ref_binarize,
    "SignSTE": _RefSignSTE,
    "BinaryLinear": _RefBinaryLinear,
    "quantize_bias": _ref_quantize_bias,
    "integer_linear": _ref_integer_linear,
    "quantized_linear": _ref_quantized_linear,
    "BinarizedMLP": _RefBinarizedMLP,
    "train_binarized": _ref_train_binarized,
}


def reference(name):
    """The reference implementation of an assignment function (what :func:`isolated` substitutes).

    Args:
        name: one of :data:`FUNCTIONS`.

    Example:
        >>> reference("quantize_affine").__name__.lstrip("_")
        'ref_quantize_affine'
        >>> reference("BinaryLinear").__name__
        'BinaryLinear'
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
