"""Argument checks shared by every module: one error type, messages that teach.

In scikit-learn's manner (``sklearn.utils._param_validation``): every public
function checks its arguments at the entry point with these helpers, and every
bad argument raises :class:`InvalidParameterError`, which is both a
``ValueError`` and a ``TypeError``, so callers may catch either. A message
names the argument, says what is allowed and shows what was given::

    sparsity must be a number in [0, 1] (the fraction of weights pruned), got 1.5

Each check returns the value, normalised (``check_int`` returns an ``int`` even
for a numpy integer), so a function reads ``bits = check_int("bits", bits,
low=1, high=8)``.

This is the one private module other modules may import from.

Example:
    >>> check_fraction("sparsity", 0.9)
    0.9
    >>> check_fraction("sparsity", 1.5)
    Traceback (most recent call last):
    ...
    pruning_kit._checks.InvalidParameterError: sparsity must be a number in [0, 1], got 1.5
"""

from __future__ import annotations

import math
import numbers

__all__ = ["InvalidParameterError", "type_name", "check_model", "check_int", "check_number",
           "check_fraction", "check_choice", "check_bool", "check_seed", "check_tensor",
           "check_callable"]


class InvalidParameterError(ValueError, TypeError):
    """A bad argument: its type or its value is not what the function allows.

    Subclasses both ``ValueError`` and ``TypeError``, so ``except ValueError``
    and ``except TypeError`` both catch it.

    Example:
        >>> isinstance(InvalidParameterError("x"), ValueError), issubclass(
        ...     InvalidParameterError, TypeError)
        (True, True)
    """


def _fail(message: str, hint: str = ""):
    raise InvalidParameterError(message + (f"; {hint}" if hint else ""))


def _must(name: str, wanted: str, got: str, hint: str = ""):
    """Raise "NAME must be WANTED (HINT), got GOT"."""
    raise InvalidParameterError(f"{name} must be {wanted}{f' ({hint})' if hint else ''}, got {got}")


def type_name(value) -> str:
    """The type of ``value`` as a message shows it: ``int``, ``numpy.ndarray``.

    Example:
        >>> type_name(3), type_name([1])
        ('int', 'list')
    """
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    return cls.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{cls.__qualname__}"


def _shown(value) -> str:
    """``value`` for a message: short reprs as they are, anything else by type."""
    text = repr(value)
    return text if len(text) <= 60 else f"a {type_name(value)}"


def check_model(model, name: str = "model"):
    """Require a ``torch.nn.Module``.

    Example:
        >>> check_model("lenet")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: model must be a torch.nn.Module, got str
    """
    from torch import nn

    if not isinstance(model, nn.Module):
        _fail(f"{name} must be a torch.nn.Module, got {type_name(model)}")
    return model


def _interval(low, high, low_open=False, high_open=False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def check_int(name: str, value, *, low=None, high=None, hint: str = "") -> int:
    """Require an int (not a bool) in ``[low, high]`` (either bound may be None).

    Example:
        >>> check_int("bits", 4, low=1, high=8)
        4
        >>> check_int("epochs", 2.5, low=1)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: epochs must be a positive int, got 2.5
    """
    if low in (0, 1) and high is None:
        wanted = "a positive int" if low == 1 else "a non-negative int"
    else:
        wanted = f"an int {_interval(low, high)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _must(name, wanted, _shown(value), hint)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        _must(name, wanted, str(value), hint)
    return value


def check_number(name: str, value, *, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, hint: str = "") -> float:
    """Require a real number (not a bool, not NaN) within the given bounds.

    Args:
        name: the argument's name, as the caller wrote it.
        value: what was passed.
        low, high: bounds (None: unbounded).
        low_open, high_open: exclude the bound itself.
        hint: what the number means, shown in parentheses after the rule.

    Example:
        >>> check_number("lr", 0.01, low=0, low_open=True)
        0.01
        >>> check_number("lr", 0, low=0, low_open=True)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: lr must be a positive number, got 0
    """
    if low == 0 and low_open and high is None:
        wanted = "a positive number"
    else:
        wanted = f"a number {_interval(low, high, low_open, high_open)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _must(name, wanted, _shown(value), hint)
    number = float(value)
    bad = math.isnan(number)
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        _must(name, wanted, repr(value), hint)
    return number


def check_fraction(name: str, value, *, high: float = 1.0, high_open: bool = False,
                   hint: str = "") -> float:
    """Require a number in ``[0, high]`` (a sparsity, a rate, a ratio).

    Example:
        >>> check_fraction("rate", 0.2)
        0.2
        >>> check_fraction("ratio", 1.0, high_open=True, hint="1.0 would remove every filter")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: ratio must be a number in [0, 1) (1.0 would remove every filter), got 1.0
    """
    return check_number(name, value, low=0.0, high=high, high_open=high_open, hint=hint)


def check_choice(name: str, value, allowed, *, hint: str = ""):
    """Require one of ``allowed``.

    Example:
        >>> check_choice("scope", "global", ("global", "local"))
        'global'
        >>> check_choice("scope", "layer", ("global", "local"))
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: scope must be one of ('global', 'local'), got 'layer'
    """
    allowed = tuple(allowed)
    try:
        ok = value in allowed
    except TypeError:  # e.g. an unhashable value tested against a set-like
        ok = False
    if isinstance(value, bool) and not any(a is value for a in allowed):
        ok = False  # True == 1: a bool is not the int 1
    if not ok:
        _must(name, f"one of {allowed}", _shown(value), hint)
    return value


def check_bool(name: str, value) -> bool:
    """Require ``True`` or ``False`` (not 0/1, not a string).

    Example:
        >>> check_bool("per_channel", "yes")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: per_channel must be True or False, got 'yes'
    """
    if not isinstance(value, bool):
        _fail(f"{name} must be True or False, got {_shown(value)}")
    return value


def check_seed(seed, name: str = "seed") -> int:
    """Require an int seed (any sign; numpy integers accepted).

    Example:
        >>> check_seed(3), check_seed(-1)
        (3, -1)
    """
    return check_int(name, seed)


def check_tensor(name: str, value, *, floating: bool = False, real: bool = False,
                 nonempty: bool = False, finite: bool = False, min_dim: int | None = None,
                 hint: str = ""):
    """Require a ``torch.Tensor``, optionally floating point, real, non-empty, finite.

    Args:
        name: the argument's name.
        value: what was passed.
        floating: require a floating-point dtype.
        real: require real numbers (not bool, not complex).
        nonempty: require at least one element.
        finite: require no NaN or infinity.
        min_dim: require at least this many dimensions.
        hint: appended to the message of a wrong type.

    Example:
        >>> import torch
        >>> check_tensor("x", torch.ones(2), floating=True).shape
        torch.Size([2])
        >>> check_tensor("x", torch.ones(2, dtype=torch.int64), floating=True)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: x must be a floating-point tensor, got dtype torch.int64; convert it first, e.g. x.float()
    """
    import torch

    if not isinstance(value, torch.Tensor):
        _fail(f"{name} must be a torch.Tensor, got {type_name(value)}", hint)
    if floating and not value.is_floating_point():
        _fail(f"{name} must be a floating-point tensor, got dtype {value.dtype}",
              f"convert it first, e.g. {name}.float()")
    if real and (value.dtype == torch.bool or value.is_complex()):
        _fail(f"{name} must hold real numbers, got dtype {value.dtype}")
    if min_dim is not None and value.dim() < min_dim:
        _fail(f"{name} must have at least {min_dim} dimensions, got shape {tuple(value.shape)}",
              hint)
    if nonempty and value.numel() == 0:
        _fail(f"{name} is empty (shape {tuple(value.shape)}); pass a tensor with at least one "
              "element")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        _fail(f"{name} contains NaN or infinite values")
    return value


def check_callable(name: str, value, *, hint: str = ""):
    """Require something callable that is not a model instance (a factory, a loss).

    Example:
        >>> check_callable("model_fn", 3, hint="e.g. pk.models.lenet_300_100")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: model_fn must be a function, got int; e.g. pk.models.lenet_300_100
    """
    from torch import nn

    if isinstance(value, nn.Module) or not callable(value):
        shown = "a model instance" if isinstance(value, nn.Module) else type_name(value)
        _fail(f"{name} must be a function, got {shown}", hint)
    return value
