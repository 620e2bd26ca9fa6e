"""What the binarized checks share: calling the student's function, reading its results, rounding.

Every helper raises :class:`~pruning_kit.course.testing.CheckFailed` through
:func:`~pruning_grader.judging.fail`, with the diagnosis code of the clause it
checks (``function/mistake``).

Example:
    >>> sorted(rounding_options(2.5)), sorted(rounding_options(2.4))
    ([2, 3], [2])
"""

from __future__ import annotations

import math

import torch

from pruning_kit.course.testing import RaisedRemotely, describe_exception, show
from pruning_kit.course.wire import shown_as

from ...judging import fail, fmt

TIE = 1e-4
"""How close to a half (relative to the value) a quotient may be and still count as a tie:
float32 and float64 arithmetic may round it either way."""


def rounding_options(value, tolerance=TIE):
    """``{round(value)}``, and both neighbours when ``value`` sits within ``tolerance`` of a half.

    Example:
        >>> sorted(rounding_options(-1.5)), sorted(rounding_options(63.75))
        ([-2, -1], [64])
    """
    options = {round(value)}
    lower = math.floor(value)
    if abs(value - lower - 0.5) <= tolerance * max(1.0, abs(value)):
        options |= {lower, lower + 1}
    return options


def clamp(value, low, high):
    """``value`` clamped to ``[low, high]``.

    Example:
        >>> clamp(4, 0, 3), clamp(-1, 0, 3)
        (3, 0)
    """
    return low if value < low else high if value > high else value


def rounded_options(values, low=None, high=None, offset=0, rounding=rounding_options):
    """For each value: the set of integers ``clamp(r + offset, low, high)`` for r in its roundings."""
    out = []
    for v in values:
        options = {r + offset for r in rounding(v)}
        if low is not None:
            options = {clamp(o, low, high) for o in options}
        out.append(options)
    return out


def all_in(got, options):
    """True when every integer of ``got`` is one of the accepted values at its position."""
    return len(got) == len(options) and all(g in o for g, o in zip(got, options))


def first_outside(got, options):
    """The first position whose integer is not accepted, or None."""
    return next((i for i, (g, o) in enumerate(zip(got, options)) if g not in o), None)


def index(i, shape):
    """The multi-index of flat position ``i`` in ``shape`` (for messages).

    Example:
        >>> index(5, (2, 3))
        (1, 2)
    """
    out = []
    for size in reversed(tuple(shape) or (1,)):
        out.append(i % size)
        i //= size
    return tuple(reversed(out))


def raised_code(function, exc):
    """The diagnosis of what a student's function raised: not written, kit refused, or raised."""
    if getattr(exc, "not_implemented", False) or isinstance(exc, NotImplementedError):
        return f"{function}/not-written"
    if getattr(exc, "kit_refused", False):
        return f"{function}/kit-refused"
    return f"{function}/raised"


def raised_message(what, exc):
    """How a message says what a call raised."""
    if getattr(exc, "not_implemented", False) or isinstance(exc, NotImplementedError):
        return f"{what} is not written yet: replace `raise NotImplementedError()` with your code"
    if getattr(exc, "kit_refused", False):
        return f"{what}: {str(exc).split(': ', 1)[-1]}"
    return f"{what} raised {describe_exception(exc)}"


def attempt(work, function, what, *, code=None, hint=""):
    """``work()`` (a call into the student's process); what the student's code raised fails
    with ``function/raised`` (or ``code``: a clause that names the case), never the grader."""
    try:
        return work()
    except RaisedRemotely as exc:
        default = raised_code(function, exc)
        if code is not None and default.endswith("/raised"):
            fail(f"{raised_message(what, exc)}{': ' + hint if hint else ''}", code)
        fail(raised_message(what, exc), default)


def echo_call(student, function, args, what, *, code=None, hint=""):
    """Call ``student[function](*args)``: ``(result, args as they are after the call)``."""
    proxy = student[function]
    result, after, _ = attempt(lambda: proxy.call_and_inputs(*args), function, what, code=code,
                               hint=hint)
    return result, list(after)


def tensor_value(value, what, *, shape=None, dtype=None, shape_code, dtype_code=None):
    """``value`` as a plain tensor: a tensor (code ``shape_code``) of ``shape`` (same code) and
    ``dtype`` (``dtype_code``)."""
    shown = shown_as(value)
    if shown is not None:
        fail(f"{what} is a {shown[1]}, expected a torch.Tensor"
             + (" (convert with torch.from_numpy)" if shown[1] == "numpy.ndarray" else
                " (return a plain tensor, not a subclass)"), shape_code)
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        fail(f"{what} is {show(value)}, expected a torch.Tensor", shape_code)
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}", shape_code)
    if dtype is not None and value.dtype != dtype:
        fail(f"{what} has dtype {value.dtype}, expected {dtype}", dtype_code)
    return value.detach()


def number_value(value, what, *, integer=False, code):
    """``value`` as a Python number (a one-element tensor counts), else ``code`` fails."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if integer and value.is_floating_point():
            fail(f"{what} is a float tensor ({fmt(value.item())}), expected an int", code)
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{what} is {show(value)}, expected {'an int' if integer else 'a number'}", code)
    if integer and not isinstance(value, int):
        fail(f"{what} is the float {fmt(value)}, expected an int", code)
    if not math.isfinite(value):
        fail(f"{what} is {value}, expected a finite number", code)
    return value


def result_tuple(result, names, what, code):
    """The ``len(names)`` values of a tuple result (a list of them counts too)."""
    if type(result) not in (tuple, list) or len(result) != len(names):
        shown = show(result) if type(result) not in (tuple, list) else \
            f"a {type(result).__name__} of {len(result)} values"
        fail(f"{what} returned {shown}, expected a tuple ({', '.join(names)})", code)
    return tuple(result)


def unchanged(before, after, name, what, code):
    """Fail with ``code`` when the student's function changed its input ``name`` in place."""
    same = (isinstance(after, torch.Tensor) and after.shape == before.shape
            and after.dtype == before.dtype and torch.equal(after, before))
    if not same:
        detail = ""
        if isinstance(after, torch.Tensor) and after.shape == before.shape:
            diff = (after != before).flatten().nonzero()
            if len(diff):
                i = int(diff[0])
                detail = (f" (element {i} was {fmt(before.flatten()[i].item())}, is now "
                          f"{fmt(after.flatten()[i].item())})")
        fail(f"{what} changed its input {name}{detail}: leave the inputs as they are (work on "
             f"a copy, never in place)", code)


def close(a, b, *, rtol, atol):
    """True when float tensors ``a`` and ``b`` agree (float64 comparison)."""
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol,
                                                      atol=atol))


def first_far(a, b, *, rtol, atol):
    """The first flat position where ``a`` and ``b`` disagree, or None."""
    bad = ~torch.isclose(a.double().flatten(), b.double().flatten(), rtol=rtol, atol=atol)
    positions = bad.nonzero()
    return int(positions[0]) if len(positions) else None


def as_tensor(values, dtype=torch.float32):
    """A fresh tensor of ``values`` (a nested list or a tensor)."""
    if isinstance(values, torch.Tensor):
        return values.detach().clone().to(dtype)
    return torch.tensor(values, dtype=dtype)
