"""What every hidden check shares: reading a result, counting under the rounding rule, one wording.

Values arrive from the student's process already decoded into plain data
(:mod:`pruning_kit.course.wire`): a tensor here is a plain tensor built by the
grader, a number a plain number. So a check compares with ordinary torch and
Python; nothing a student's object does can change the comparison. What remains
is to say precisely what is wrong: :func:`fail` raises a
:class:`~pruning_kit.course.testing.CheckFailed` with the short sentence first
and a diagnosis code (``function/mistake``) the class report counts.

Rounding follows the assignments' contract: ``round`` halves to even, and a
count computed from a product that sits on a rounding boundary (``0.5 * 5``)
may be off by one, so float32 and float64 arithmetic both pass.

Example:
    >>> allowed_counts(0.5, 5)
    [2, 3]
    >>> tensor_result([1, 0], "the mask of f(x)", diagnosis="f/type")
    Traceback (most recent call last):
    ...
    pruning_kit.course.testing.CheckFailed: the mask of f(x) is a list, expected a torch.Tensor
"""

from __future__ import annotations

import math

import torch

from pruning_kit.course.testing import CheckFailed, call, describe_call, raised_a, show, type_name
from pruning_kit.course.wire import shown_as

BOUNDARY = 1e-6
"""How close to .5 a product may be and still count as a rounding boundary."""

__all__ = ["CheckFailed", "call", "describe_call", "raised_a", "show", "type_name", "fail", "fmt",
           "allowed_counts", "count_text", "tensor_result", "number_result", "unchanged",
           "random_tensor", "BOUNDARY"]


def fail(message, diagnosis=None):
    """Raise the verdict: ``message`` (short sentence first) and its diagnosis code."""
    raise CheckFailed(message, diagnosis=diagnosis)


def fmt(x):
    """A number for a message: floats with 6 significant digits.

    Example:
        >>> fmt(1 / 3), fmt(2.0), fmt(7)
        ('0.333333', '2', '7')
    """
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def allowed_counts(fraction, n):
    """The counts ``round(fraction * n)`` may take: both neighbours on a rounding boundary.

    Example:
        >>> allowed_counts(0.3, 100)
        [30]
    """
    exact = fraction * n
    counts = {round(exact)}
    lower = math.floor(exact)
    if abs(exact - lower - 0.5) <= BOUNDARY * max(1.0, abs(exact)):
        counts |= {lower, lower + 1}
    return sorted(counts)


def count_text(fraction, n):
    """The accepted counts and how a message explains them.

    Example:
        >>> count_text(0.5, 5)
        ([2, 3], '2 = round(0.5 * 5) (3 also accepted: 0.5 * 5 sits on a rounding boundary)')
    """
    counts = allowed_counts(fraction, n)
    expected = round(fraction * n)
    text = f"{expected} = round({fraction!r} * {n})"
    others = [c for c in counts if c != expected]
    if others:
        text += f" ({others[0]} also accepted: {fraction!r} * {n} sits on a rounding boundary)"
    return counts, text


def tensor_result(value, what, *, shape=None, dtype=None, dtypes=None, diagnosis=None):
    """``value`` as a plain tensor, after checking its type, shape and dtype.

    Args:
        value: what the student's function returned (decoded).
        what: how the message names it.
        shape, dtype, dtypes: what the contract requires (None: anything).
        diagnosis: the function's name, for the codes ``NAME/type``, ``NAME/shape``, ``NAME/dtype``.
    """
    name = diagnosis or "result"
    shown = shown_as(value)
    if shown is not None:
        fail(f"{what} is a {shown[1]}, expected a torch.Tensor"
             + (" (convert with torch.from_numpy)" if shown[1] == "numpy.ndarray" else
                " (return a plain tensor, not a subclass)"), f"{name}/type")
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        fail(f"{what} is a {type_name(value)}, expected a torch.Tensor", f"{name}/type")
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}", f"{name}/shape")
    if dtype is not None and value.dtype != dtype:
        fail(f"{what} has dtype {value.dtype}, expected {dtype}", f"{name}/dtype")
    if dtypes is not None and value.dtype not in dtypes:
        fail(f"{what} has dtype {value.dtype}, expected one of "
             f"{', '.join(str(d) for d in dtypes)}", f"{name}/dtype")
    return value.detach()


def number_result(value, what, *, integer=False, diagnosis=None):
    """``value`` as a plain Python number (a one-element tensor counts), else a failure."""
    name = diagnosis or "result"
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{what} is a {type_name(value)}, expected {'an int' if integer else 'a number'}",
             f"{name}/type")
    if integer and not isinstance(value, int):
        fail(f"{what} is the float {fmt(value)}, expected an int", f"{name}/type")
    return value


def unchanged(before, after, name, what, *, diagnosis=None):
    """Fail when the student's function changed an input in place (``after`` vs what was sent)."""
    if isinstance(before, torch.Tensor):
        if not (isinstance(after, torch.Tensor) and after.shape == before.shape
                and after.dtype == before.dtype and torch.equal(after, before)):
            detail = ""
            if isinstance(after, torch.Tensor) and after.shape == before.shape:
                diff = (after != before).flatten().nonzero()
                if len(diff):
                    i = int(diff[0])
                    detail = (f" (element {i} was {fmt(before.flatten()[i].item())}, is now "
                              f"{fmt(after.flatten()[i].item())})")
            fail(f"{what} changed its input {name}{detail}: work on a copy (weight.abs(), "
                 f"weight.clone()), never in place", f"{diagnosis or 'result'}/in-place")
    elif isinstance(before, dict):
        for key, value in before.items():
            unchanged(value, after.get(key) if isinstance(after, dict) else None,
                      f"{name}[{key!r}]", what, diagnosis=diagnosis)


def random_tensor(*shape, seed=0, dtype=torch.float32):
    """A reproducible standard-normal tensor.

    Example:
        >>> random_tensor(2, 3, seed=0).shape
        torch.Size([2, 3])
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype)
