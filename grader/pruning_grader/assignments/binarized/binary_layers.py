"""Part 1.4-1.6 of ``binarized``: binarize, the straight-through estimator, a binary linear layer.

``SignSTE`` and ``BinaryLinear`` are called in the student's process with
:meth:`~pruning_grader.remote.Student.grad` (forward, then backward of a given
upstream gradient there); outputs and gradients come back as plain tensors and
are compared here with what autograd gives on the contract's formula in float64.
"""

import torch

from pruning_kit.course.testing import show

from ...judging import fail, fmt, random_tensor
from . import ASSIGNMENT
from .common import as_tensor, attempt, close, echo_call, first_far, index, tensor_value, unchanged

# ---------------------------------------------------------------------------
# 1.4 binarize(x)

B = "binarize"
ASSIGNMENT.clause(B, 1, "returns a torch.Tensor shaped like x", diagnosis=f"{B}/shape")
ASSIGNMENT.clause(B, 2, "in x's dtype", diagnosis=f"{B}/dtype")
ASSIGNMENT.clause(B, 3, "+1 where x > 0, -1 where x < 0", diagnosis=f"{B}/values")
ASSIGNMENT.clause(B, 4, "0 (and -0.0) maps to +1 (torch.sign would give 0)", diagnosis=f"{B}/zero")
ASSIGNMENT.clause(B, 5, "x is not changed", diagnosis=f"{B}/in-place")


def signs(x):
    """+1 where ``x >= 0``, else -1, in ``x``'s dtype (what the contract asks, for comparison)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def check_binarize(student, x, *, dtype=torch.float32):
    """Check ``binarize(x)`` on one input."""
    x = as_tensor(x, dtype)
    what = f"binarize({show(x)}, dtype {x.dtype})" if x.numel() > 6 else f"binarize({show(x)})"
    result, after = echo_call(student, B, (x,), what)
    unchanged(x, after[0], "x", what, f"{B}/in-place")
    got = tensor_value(result, f"the result of {what}", shape=x.shape, shape_code=f"{B}/shape")
    if got.dtype != x.dtype:
        fail(f"the result of {what} has dtype {got.dtype}, expected {x.dtype}: keep x's dtype "
             f"(torch.ones_like(x) has it)", f"{B}/dtype")
    wrong = (got != signs(x)).flatten()
    if bool(wrong.any()):
        i = int(wrong.nonzero()[0])
        value = x.flatten()[i].item()
        message = (f"{what} is {fmt(got.flatten()[i].item())} at {index(i, x.shape)} where "
                   f"x = {fmt(value)}, expected {'+1' if value >= 0 else '-1'}")
        if bool((x.flatten()[wrong] == 0).all()):
            fail(f"{message}: 0 maps to +1 (torch.sign would give 0, a third value)",
                 f"{B}/zero")
        fail(f"{message}: +1 where x >= 0, -1 where x < 0", f"{B}/values")


@ASSIGNMENT.hidden(B, points=2)
def binarize_hidden(student):
    # zero, negative zero and tiny values
    check_binarize(student, [[0.0, -0.0], [1e-30, -1e-30]])
    # dtype and shape are kept
    check_binarize(student, random_tensor(2, 3, 4, seed=1, dtype=torch.float64),
                   dtype=torch.float64)
    check_binarize(student, random_tensor(50, seed=2) * 1000)
    check_binarize(student, [0.0, 0.0, 0.0])


# ---------------------------------------------------------------------------
# 1.5 SignSTE: forward binarize, backward grad * (abs(x) <= 1)

S = "SignSTE"
ASSIGNMENT.clause(S, 1, "a torch.autograd.Function (used as SignSTE.apply(x))",
                  diagnosis=f"{S}/class")
ASSIGNMENT.clause(S, 2, "forward returns a tensor with x's shape and dtype",
                  diagnosis=f"{S}/dtype")
ASSIGNMENT.clause(S, 3, "forward is binarize(x): +1 where x >= 0, else -1",
                  diagnosis=f"{S}/forward")
ASSIGNMENT.clause(S, 4, "backward returns a gradient for x (x.grad is set, shaped like x)",
                  diagnosis=f"{S}/backward")
ASSIGNMENT.clause(S, 5, "no gradient passes where abs(x) > 1 (the cut)", diagnosis=f"{S}/cut")
ASSIGNMENT.clause(S, 6, "the cut includes its bounds: abs(x) <= 1 passes",
                  diagnosis=f"{S}/cut-bounds")
ASSIGNMENT.clause(S, 7, "the incoming gradient is passed on (not replaced by 1)",
                  diagnosis=f"{S}/upstream")

_FUNCTION = "torch.autograd.function.Function"


def check_sign_ste(student, x, upstream, *, dtype=torch.float32):
    """Check ``SignSTE.apply(x)`` forward and backward (``upstream`` fed to backward)."""
    cls = student[S]
    if _FUNCTION not in cls.mro:
        fail(f"SignSTE is a {cls.type_name}, not a torch.autograd.Function: write class "
             f"SignSTE(torch.autograd.Function) with static forward(ctx, x) and "
             f"backward(ctx, grad_output)", f"{S}/class")
    x, upstream = as_tensor(x, dtype), as_tensor(upstream, dtype)
    what = f"SignSTE.apply({show(x)})"
    out = attempt(lambda: cls.apply(x), S, what)
    out = tensor_value(out, f"the output of {what}", shape=x.shape, dtype=x.dtype,
                       shape_code=f"{S}/dtype", dtype_code=f"{S}/dtype")
    wrong = (out != signs(x)).flatten()
    if bool(wrong.any()):
        i = int(wrong.nonzero()[0])
        value = x.flatten()[i].item()
        fail(f"{what} is {fmt(out.flatten()[i].item())} at {index(i, x.shape)} where "
             f"x = {fmt(value)}, expected {'+1' if value >= 0 else '-1'}: forward is "
             f"binarize(x), +1 where x >= 0 (0 too), else -1", f"{S}/forward")
    result = attempt(lambda: student.grad(S, [x], upstream, method="apply"), S,
                     f"backward through {what}")
    grad = result["input_grads"][0] if result["input_grads"] else None
    where = f"x.grad after backward through {what} with incoming gradient {show(upstream)}"
    if not isinstance(grad, torch.Tensor):
        fail(f"{where} is {show(grad)}: forward must return a tensor computed from x and "
             f"backward the gradient for x", f"{S}/backward")
    grad = tensor_value(grad, where, shape=x.shape, shape_code=f"{S}/backward")
    inside = x.abs() <= 1
    expected = upstream * inside.to(dtype)
    if close(grad, expected, rtol=1e-6, atol=1e-7):
        return
    bad = first_far(grad, expected, rtol=1e-6, atol=1e-7)
    message = (f"{where} is {fmt(grad.flatten()[bad].item())} at {index(bad, x.shape)} where "
               f"x = {fmt(x.flatten()[bad].item())}, expected "
               f"{fmt(expected.flatten()[bad].item())} = grad_output * (abs(x) <= 1)")
    if close(grad, upstream, rtol=1e-6, atol=1e-7):
        fail(f"{message}: the straight-through estimator passes no gradient where abs(x) > 1",
             f"{S}/cut")
    if close(grad, upstream * (x.abs() < 1).to(dtype), rtol=1e-6, atol=1e-7):
        fail(f"{message}: the window includes its bounds, abs(x) <= 1", f"{S}/cut-bounds")
    if close(grad, inside.to(dtype), rtol=1e-6, atol=1e-7):
        fail(f"{message}: multiply the incoming gradient by the mask, do not replace it",
             f"{S}/upstream")
    fail(message, f"{S}/backward")


@ASSIGNMENT.hidden(S, points=3)
def sign_ste_hidden(student):
    # the cut includes its bounds: abs(x) <= 1
    check_sign_ste(student, [-1.0, 1.0, -1.0001, 1.0001], [2.0, 3.0, 4.0, 5.0])
    # the incoming gradient is passed on, not replaced by 1; zero maps to +1
    check_sign_ste(student, [[0.3, -0.7], [1.5, -3.0]], [[-2.0, 0.5], [7.0, 1.0]])
    check_sign_ste(student, [0.0, -0.0, 0.5, -2.0], [1.5, -1.0, 0.25, 3.0])
    # float64 keeps its dtype; a larger random input
    check_sign_ste(student, random_tensor(3, 4, seed=1, dtype=torch.float64),
                   random_tensor(3, 4, seed=2, dtype=torch.float64), dtype=torch.float64)
    check_sign_ste(student, random_tensor(40, seed=3) * 2, random_tensor(40, seed=4))


# ---------------------------------------------------------------------------
# 1.6 BinaryLinear(in_features, out_features, bias=True)

L = "BinaryLinear"
ASSIGNMENT.clause(L, 1, "a class derived from nn.Module; BinaryLinear(in, out, bias=...) "
                  "builds an nn.Module", diagnosis=f"{L}/class")
ASSIGNMENT.clause(L, 2, "its parameters are weight (out x in) and bias (out), like nn.Linear; "
                  "with bias=False only weight, and layer.bias is None",
                  diagnosis=f"{L}/parameters")
ASSIGNMENT.clause(L, 3, "the weights start random, like nn.Linear's (inside [-1, 1])",
                  diagnosis=f"{L}/init")
ASSIGNMENT.clause(L, 4, "forward is F.linear(x, alpha * sign(W), bias) (its gradients for x "
                  "and bias follow)", diagnosis=f"{L}/forward")
ASSIGNMENT.clause(L, 5, "alpha scales the signs (the XNOR-Net factor)", diagnosis=f"{L}/no-alpha")
ASSIGNMENT.clause(L, 6, "alpha is one per output row: mean(abs(W), dim=1)",
                  diagnosis=f"{L}/alpha-dim")
ASSIGNMENT.clause(L, 7, "the gradient reaches the real weights through SignSTE",
                  diagnosis=f"{L}/weight-grad")
ASSIGNMENT.clause(L, 8, "no gradient reaches a weight with abs(W) > 1 (SignSTE's cut)",
                  diagnosis=f"{L}/cut")
ASSIGNMENT.clause(L, 9, "alpha is a constant for autograd (computed from W detached)",
                  diagnosis=f"{L}/alpha-detached")

_MODULE = "torch.nn.modules.module.Module"
_LOAD = """
import torch
with torch.no_grad():
    for name, value in state.items():
        getattr(model, name).copy_(value)
result = None
"""


def _parameter_names(layer):
    names = []
    for module in layer.modules:
        path = module.get("path") or ""
        for key, info in (module.get("params") or {}).items():
            if info is not None:
                names.append(f"{path}.{key}" if path else key)
    return names


def _weight_grad(weight, x, bias, upstream, *, detach=True, cut=True):
    """weight.grad of ``F.linear(x, alpha * ste(W), b)`` in float64 (the variants of a mistake)."""
    w = weight.double().clone().requires_grad_(True)
    alpha = (w.detach() if detach else w).abs().mean(dim=1, keepdim=True)
    window = (w.detach().abs() <= 1).double() if cut else 1.0
    binary = signs(w.detach()) + (w - w.detach()) * window
    y = x.double() @ (alpha * binary).t()
    if bias is not None:
        y = y + bias.double()
    y.backward(upstream.double())
    return w.grad


def check_binary_linear(student, weight, bias, x, upstream):
    """Build ``BinaryLinear(in, out, bias=...)``, load ``weight``/``bias``, check one forward and
    backward (every clause above)."""
    cls = student[L]
    if _MODULE not in cls.mro:
        fail(f"BinaryLinear is a {cls.type_name}, not a class derived from nn.Module: write "
             f"class BinaryLinear(nn.Module) with __init__ and forward", f"{L}/class")
    weight = as_tensor(weight)
    out_f, in_f = weight.shape
    has_bias = bias is not None
    bias = as_tensor(bias) if has_bias else None
    x, upstream = as_tensor(x), as_tensor(upstream)
    what = f"BinaryLinear({in_f}, {out_f}, bias={has_bias})"
    layer = attempt(lambda: cls(in_f, out_f, bias=has_bias), L, what)
    if getattr(layer, "kind", None) != "module":
        fail(f"{what} built a {getattr(layer, 'type_name', type(layer).__name__)}, not an "
             f"nn.Module: derive from nn.Module and call super().__init__()", f"{L}/class")
    names = _parameter_names(layer)
    expected = ["weight", "bias"] if has_bias else ["weight"]
    if sorted(names) != sorted(expected):
        fail(f"{what} has the parameters {sorted(names)}, expected {expected}: keep real-valued "
             f"weight and bias parameters like nn.Linear (no bias with bias=False)",
             f"{L}/parameters")
    root = layer.module("") or {}
    shape = (root.get("params") or {}).get("weight", {}).get("shape")
    if tuple(shape or ()) != (out_f, in_f):
        fail(f"the weight of {what} has shape {tuple(shape or ())}, expected ({out_f}, {in_f}) "
             f"(out x in, like nn.Linear)", f"{L}/parameters")
    if has_bias and tuple(root["params"]["bias"]["shape"]) != (out_f,):
        fail(f"the bias of {what} has shape {tuple(root['params']['bias']['shape'])}, expected "
             f"({out_f},)", f"{L}/parameters")
    if not has_bias and not (root.get("params", {}).get("bias", 0) is None
                             or (root.get("attrs") or {}).get("bias", 0) is None):
        fail(f"{what} has no attribute bias = None: like nn.Linear(bias=False), keep "
             f"layer.bias and set it to None", f"{L}/parameters")
    initial = attempt(layer.state_dict, L, f"the state of {what}")["weight"]
    if initial.unique().numel() < min(2, initial.numel()) or initial.abs().max() > 1:
        fail(f"{what} starts with weights from {fmt(initial.min().item())} to "
             f"{fmt(initial.max().item())}: initialise them at random like nn.Linear "
             f"(uniform in +-1/sqrt(in_features)), inside the window where SignSTE passes "
             f"gradients", f"{L}/init")
    state = {"weight": weight, **({"bias": bias} if has_bias else {})}
    attempt(lambda: student.run(_LOAD, model=layer, state=state), L,
            f"loading weights into {what}")
    run = f"{what} with weight {show(weight)}, on x = {show(x)}"
    result = attempt(lambda: student.grad(layer.target, [x], upstream), L,
                     f"forward and backward through {run}")
    out = tensor_value(result["output"], f"the output of {run}", shape=(len(x), out_f),
                       shape_code=f"{L}/forward")
    alpha = weight.double().abs().mean(dim=1, keepdim=True)
    binary = alpha * signs(weight.double())
    offset = bias.double() if has_bias else 0.0
    expected = x.double() @ binary.t() + offset
    tolerance = {"rtol": 1e-5, "atol": 1e-5}
    bad = first_far(out, expected, **tolerance)
    if bad is not None:
        message = (f"the output of {run} is {fmt(out.flatten()[bad].item())} at "
                   f"{index(bad, out.shape)}, expected {fmt(expected.flatten()[bad].item())} = "
                   f"x (alpha * sign(W))^T + b with alpha = mean(abs(W), dim=1) = "
                   f"{[round(a, 4) for a in alpha.flatten().tolist()]}")
        if close(out, x.double() @ signs(weight.double()).t() + offset, **tolerance):
            fail(f"{message}: you left out the XNOR scaling factor alpha", f"{L}/no-alpha")
        by_column = weight.double().abs().mean(dim=0, keepdim=True) * signs(weight.double())
        if close(out, x.double() @ by_column.t() + offset, **tolerance):
            fail(f"{message}: alpha is one number per OUTPUT row, the mean over dim=1",
                 f"{L}/alpha-dim")
        fail(message, f"{L}/forward")
    x_grad = result["input_grads"][0] if result["input_grads"] else None
    if not isinstance(x_grad, torch.Tensor) or not close(x_grad, upstream.double() @ binary,
                                                         **tolerance):
        fail(f"x.grad after backward through {run} is {show(x_grad)}, expected "
             f"{show(upstream.double() @ binary)}: compute the output from x with "
             f"F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)", f"{L}/forward")
    if has_bias:
        b_grad = result["param_grads"].get("bias")
        if not isinstance(b_grad, torch.Tensor) or not close(b_grad, upstream.double().sum(0),
                                                             **tolerance):
            fail(f"bias.grad after backward through {run} is {show(b_grad)}, expected "
                 f"{show(upstream.sum(0))}: add self.bias to the output", f"{L}/forward")
    w_grad = result["param_grads"].get("weight")
    if not isinstance(w_grad, torch.Tensor):
        fail(f"after backward through {run}, weight.grad is {show(w_grad)}: binarize the weights "
             f"with SignSTE.apply(self.weight), so that gradients reach the real weights",
             f"{L}/weight-grad")
    expected_grad = _weight_grad(weight, x, bias, upstream)
    if close(w_grad, expected_grad, **tolerance):
        return
    bad = first_far(w_grad, expected_grad, **tolerance)
    r, c = index(bad, weight.shape)
    message = (f"weight.grad after backward through {run} is {fmt(w_grad[r, c].item())} at "
               f"({r}, {c}), expected {fmt(expected_grad[r, c].item())} = alpha * (grad_out^T x) "
               f"* (abs(W) <= 1) with W = {fmt(weight[r, c].item())}")
    if close(w_grad, _weight_grad(weight, x, bias, upstream, cut=False), **tolerance):
        fail(f"{message}: no gradient may pass where abs(W) > 1 (binarize with SignSTE.apply)",
             f"{L}/cut")
    if close(w_grad, _weight_grad(weight, x, bias, upstream, detach=False), **tolerance):
        fail(f"{message}: alpha is a constant for autograd, compute it from "
             f"self.weight.detach()", f"{L}/alpha-detached")
    fail(message, f"{L}/weight-grad")


@ASSIGNMENT.hidden(L, points=4)
def binary_linear_hidden(student):
    # alpha per OUTPUT row (dim=1) of a non-square weight; weights beyond +-1 get no gradient
    check_binary_linear(student,
                        weight=[[0.2, -0.4, 1.6, 0.8], [-3.0, 0.5, 0.5, -0.5],
                                [0.1, 0.1, -0.1, 0.0]],
                        bias=[0.0, 1.0, -1.0],
                        x=[[1.0, -1.0, 0.5, 2.0], [0.0, 3.0, -2.0, 1.0]],
                        upstream=[[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]])
    # bias=False: no bias parameter, layer.bias is None
    check_binary_linear(student, weight=[[1.0, -1.0], [0.5, 2.5]], bias=None,
                        x=[[2.0, 1.0], [-1.0, 0.5], [0.0, 0.0]],
                        upstream=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # weights exactly at +-1 still pass gradient; a random batch; a wider layer
    check_binary_linear(student, weight=[[1.0, -1.0, 0.5], [-1.0, 1.0, 2.0]], bias=[0.5, 0.5],
                        x=random_tensor(5, 3, seed=1), upstream=random_tensor(5, 2, seed=2))
    check_binary_linear(student, weight=random_tensor(6, 9, seed=3), bias=random_tensor(6, seed=4),
                        x=random_tensor(4, 9, seed=5), upstream=random_tensor(4, 6, seed=6))
