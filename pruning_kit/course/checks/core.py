"""The trusted core of the assignment checks: read, compare and call without trusting student code.

Every ``check_*`` function of :mod:`pruning_kit.course.checks.pruning` and
:mod:`pruning_kit.course.checks.binarized` builds its inputs, calls the
student's function through :func:`call`, and raises ``AssertionError`` with a
message the student can act on. This module holds what they share.

Hard to fool. Student code runs in the same kernel before the tests, so:

- results are read only through methods of ``torch._C.TensorBase`` (an
  immutable C type) after an exact type check: tensor subclasses, objects with
  an always-true ``__eq__`` and ``__torch_function__`` tricks are rejected;
- values are compared as plain Python numbers by code in these modules; no
  ``torch.equal``, ``allclose``, ``assert_close`` or numpy testing function is
  used, so replacing those changes nothing;
- the classes, factories and builtins the checks rely on are captured on the
  first import (the grading pipeline imports the checks before any notebook
  cell) and kept across ``reload``; each assignment module reloads this one, so
  a test cell's ``reload`` restores every helper a submission may have replaced,
  and each call into student code restores the namespaces of all check modules
  afterwards;
- :func:`isolated` swaps the student's *other* assignment functions for
  reference implementations while one function is tested, so one mistake costs
  only the points of the function that has it.

Rounding follows the assignments' contract: ``round`` halves to even, and an
integer computed from a product that sits on a rounding boundary (``0.5 * 5``)
may be off by one, so float32 and float64 arithmetic both pass.

Messages say what is wrong first, in a short sentence: ``nbgrader validate`` in
a terminal cuts lines at about 90 characters, so the first sentence (up to the
first ". " or ": ") stays within :data:`FIRST_SENTENCE` characters and a long
description of the call moves to the end (:func:`explain`).

Example:
    >>> check_close([1.0, 2.0000001], [1.0, 2.0], "scores")
    >>> allowed_counts(0.5, 5)
    [2, 3]
"""

import builtins as _builtins_module
import contextlib
import copy
import functools
import io
import math
import re
import types
import warnings

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------
# Trusted references, captured once. ``reload`` re-runs this file in the same
# module dictionary, so the names below survive and keep the first capture.
try:
    _BUILTINS  # noqa: B018 - defined by an earlier import of this module
except NameError:
    _BUILTINS = dict(_builtins_module.__dict__)
# Functions defined below look builtins up in this private copy: replacing
# ``builtins.round`` or ``builtins.len`` in the notebook does not reach them.
__builtins__ = _BUILTINS

try:
    SAFE  # noqa: B018
except NameError:
    SAFE = types.SimpleNamespace(
        Tensor=torch.Tensor,
        TensorBase=torch._C.TensorBase,
        Parameter=nn.Parameter,
        Module=nn.Module,
        Function=torch.autograd.Function,
        Linear=nn.Linear,
        Conv2d=nn.Conv2d,
        tensor=torch.tensor,
        zeros=torch.zeros,
        full=torch.full,
        randn=torch.randn,
        Generator=torch.Generator,
        no_grad=torch.no_grad,
        enable_grad=torch.enable_grad,
        autograd_grad=torch.autograd.grad,
        autograd_backward=torch.autograd.backward,
        cross_entropy=F.cross_entropy,
        float16=torch.float16, bfloat16=torch.bfloat16, float32=torch.float32,
        float64=torch.float64, int64=torch.int64, int32=torch.int32, bool=torch.bool,
        floating=(torch.float16, torch.bfloat16, torch.float32, torch.float64),
        deepcopy=copy.deepcopy,
        redirect_stderr=contextlib.redirect_stderr,
        catch_warnings=warnings.catch_warnings,
        simplefilter=warnings.simplefilter,
        StringIO=io.StringIO,
        floor=math.floor,
        isfinite=math.isfinite,
        fsum=math.fsum,
        dict_items=dict.items,
        dict_keys=dict.keys,
        dict_getitem=dict.__getitem__,
        module_dicts={},  # every check module's namespace, restored after student code
        refusals=None,    # the kit objects that refuse while student code runs
        partial=functools.partial,
    )
    _TB = torch._C.TensorBase
    SAFE.tolist = _TB.tolist
    SAFE.size = _TB.size
    SAFE.clone = _TB.clone
    SAFE.detach = _TB.detach
    SAFE.copy_ = _TB.copy_
    SAFE.requires_grad_ = _TB.requires_grad_
    SAFE.get_dtype = _TB.__dict__["dtype"].__get__
    SAFE.get_grad = _TB.__dict__["grad"].__get__
    SAFE.set_grad = _TB.__dict__["grad"].__set__
    SAFE.get_requires_grad = _TB.__dict__["requires_grad"].__get__
    SAFE.named_modules = nn.Module.named_modules
    SAFE.named_parameters = nn.Module.named_parameters
    SAFE.module_call = nn.Module.__call__
    del _TB
    try:
        import numpy as _np
        SAFE.numpy_scalars = (_np.float16, _np.float32, _np.float64, _np.int8, _np.int16,
                               _np.int32, _np.int64, _np.uint8, _np.uint16, _np.uint32,
                               _np.uint64)
        SAFE.numpy_ints = (_np.int8, _np.int16, _np.int32, _np.int64, _np.uint8, _np.uint16,
                            _np.uint32, _np.uint64)
        del _np
    except ImportError:  # pragma: no cover - numpy ships with torch's wheels
        SAFE.numpy_scalars = ()
        SAFE.numpy_ints = ()

SAFE.builtins = _BUILTINS
SAFE.module_dicts[__name__] = globals()


BOUNDARY = 1e-6  # how close to .5 a product may be and still count as a rounding boundary

FIRST_SENTENCE = 80  # the most characters before a message's first ". " or ": "
LONG_CALL = 40       # a call description longer than this moves to the end of the message

_CALL = re.compile(r"^(?P<lead>(?:[\w'-]+ )*?of )?(?P<name>[A-Za-z_][\w.]*)\(.*\)\S*$", re.S)
_SENTENCE_END = re.compile(r"\. |: |\n")


# ---------------------------------------------------------------------------
# Messages: the short sentence first

def first_sentence(message):
    """The part of ``message`` a terminal shows first: up to its first ". " or ": ".

    Example:
        >>> first_sentence("The mask has 2 zeros, expected 3: round(0.37 * 7) = 3.")
        'The mask has 2 zeros, expected 3:'
    """
    end = _SENTENCE_END.search(message)
    return message[:end.start() + 1].rstrip() if end else message


def explain(what, rest):
    """``what + rest``, with a long call description in ``what`` moved to the end.

    ``what`` names the value or call being checked (``"the mask of
    magnitude_mask(weight of shape (2, 3), sparsity=0.5)"``); ``rest`` says what is
    wrong and starts with a space or ": ". When ``what`` is longer than
    :data:`LONG_CALL` characters and holds a call, the message starts with the
    function's name and ends with the call, so its first sentence stays short.

    Example:
        >>> explain("f(x)", " raised ValueError: bad x")
        'f(x) raised ValueError: bad x'
        >>> explain("the mask of magnitude_mask(weight of shape (2, 3), sparsity=0.5)",
        ...         " has dtype torch.bool, expected torch.float32")
        'the mask of magnitude_mask has dtype torch.bool, expected torch.float32. Call: magnitude_mask(weight of shape (2, 3), sparsity=0.5)'
    """
    match = _CALL.match(what) if len(what) > LONG_CALL else None
    if match is None:
        return f"{what}{rest}"
    lead = match.group("lead") or ""
    text = f"{lead}{match.group('name')}{rest}".rstrip()
    return f"{text}{' ' if text.endswith('.') else '. '}Call: {what[len(lead):]}"


# ---------------------------------------------------------------------------
# Reading values without trusting the student's objects

def type_name(obj):
    """The type of ``obj`` as messages name it (``list``, ``numpy.ndarray``)."""
    cls = type(obj)
    module = getattr(cls, "__module__", "")
    name = getattr(cls, "__qualname__", "?")
    return name if module in ("builtins", "") else f"{module}.{name}"


def is_plain_tensor(obj):
    """True for a plain ``torch.Tensor`` or ``nn.Parameter``, never a subclass."""
    return type(obj) is SAFE.Tensor or type(obj) is SAFE.Parameter


def require_tensor(obj, what):
    """Return ``obj`` if it is a plain tensor, else raise ``AssertionError`` naming ``what``."""
    if not is_plain_tensor(obj):
        raise AssertionError(explain(what, f" should be a torch.Tensor, got {type_name(obj)}" + (
            ". Note: a subclass of torch.Tensor is not accepted, return a plain tensor"
            if isinstance(obj, torch.Tensor) else "")))
    return obj


def flatten(nested):
    """A nested list (as ``tolist`` returns) as one flat list, row-major."""
    if type(nested) is not list:
        return [nested]
    flat = []
    stack = [nested]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def tensor_values(obj, what, *, shape=None, dtype=None, dtypes=None):
    """Check that ``obj`` is a plain ``torch.Tensor`` and return its values as a flat list.

    The tensor is read through ``torch._C.TensorBase`` methods, so a tensor
    subclass, a ``__torch_function__`` override or a patched ``torch.Tensor``
    method cannot change what the test sees.

    Args:
        obj: the value to check (typically what a student's function returned).
        what: how to name it in the error message.
        shape: the required shape (tuple), or None for any.
        dtype: the required dtype, or None for any.
        dtypes: a tuple of allowed dtypes (alternative to ``dtype``).

    Returns:
        list of Python numbers in row-major order.

    Raises:
        AssertionError: wrong type, shape or dtype, with a message naming both.

    Example:
        >>> import torch
        >>> tensor_values(torch.tensor([[1.0, 0.0]]), "mask", shape=(1, 2), dtype=torch.float32)
        [1.0, 0.0]
        >>> tensor_values([1.0, 0.0], "mask")
        Traceback (most recent call last):
        ...
        AssertionError: mask should be a torch.Tensor, got list
    """
    if type(what) is not str:
        raise TypeError(f"what must be a str naming the value, got {type_name(what)}")
    require_tensor(obj, what)
    actual_shape = tuple(SAFE.size(obj))
    actual_dtype = SAFE.get_dtype(obj)
    if shape is not None and actual_shape != tuple(shape):
        raise AssertionError(explain(what, f" has shape {actual_shape}, expected {tuple(shape)}"))
    if dtype is not None and actual_dtype is not dtype:
        raise AssertionError(explain(what, f" has dtype {actual_dtype}, expected {dtype}"))
    if dtypes is not None and actual_dtype not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise AssertionError(explain(what, f" has dtype {actual_dtype}, expected one of {allowed}"))
    try:
        return flatten(SAFE.tolist(obj))
    except Exception as exc:  # a sparse or meta tensor, for example
        raise AssertionError(explain(what, f": could not read its values ({exc})")) from None


def number(obj, what, *, integer=False):
    """Return ``obj`` as a plain Python number after a strict type check.

    Accepted: ``int`` and ``float`` (not ``bool``), numpy scalars, and plain
    tensors with one element. Anything else (including objects whose ``==``
    is always true) raises ``AssertionError``.

    Args:
        obj: the value to check.
        what: how to name it in the error message.
        integer: require an integer (``int``, numpy integer, or integer tensor).

    Returns:
        int or float.

    Example:
        >>> number(3, "zero_point", integer=True)
        3
        >>> number(0.5, "zero_point", integer=True)
        Traceback (most recent call last):
        ...
        AssertionError: zero_point should be an int, got float 0.5
    """
    if type(what) is not str:
        raise TypeError(f"what must be a str naming the value, got {type_name(what)}")
    kind = "an int" if integer else "a number (float)"
    cls = type(obj)
    if cls is int or cls is float:
        value = obj
    elif cls in SAFE.numpy_scalars:
        value = cls.item(obj)
    elif is_plain_tensor(obj):
        if tuple(SAFE.size(obj)) not in ((), (1,)):
            raise AssertionError(explain(what, f" should be {kind}, got a tensor of shape "
                                               f"{tuple(SAFE.size(obj))}"))
        value = flatten(SAFE.tolist(obj))[0]
        if type(value) is bool:
            value = int(value)
    else:
        raise AssertionError(explain(what, f" should be {kind}, got {type_name(obj)}"))
    if integer and type(value) is not int:
        raise AssertionError(explain(what, f" should be an int, got {type(value).__name__} "
                                           f"{value!r}"))
    return value


def read_dict(obj, what, keys):
    """A student's dict result, checked to have exactly ``keys``, as a plain dict."""
    if not isinstance(obj, dict):
        raise AssertionError(explain(what, f" should be a dict, got {type_name(obj)}"))
    items = list(SAFE.dict_items(obj))
    got = [k for k, _ in items]
    missing = [k for k in keys if k not in got]
    extra = [k for k in got if k not in keys]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"unexpected keys {extra}")
        raise AssertionError(explain(what, ": " + ", ".join(parts)
                                     + f"; expected exactly {list(keys)}"))
    return {k: v for k, v in items}


def fresh_tensor(values, dtype, what="input"):
    """A freshly built tensor from nested lists (or a clone of a tensor)."""
    if is_plain_tensor(values):
        return SAFE.clone(SAFE.detach(values))
    if type(values) is not list:
        raise TypeError(f"{what} must be a nested list of numbers or a tensor, "
                        f"got {type_name(values)}")
    return SAFE.tensor(values, dtype=dtype if dtype is not None else SAFE.float32)


def snapshot(t):
    """``(shape, dtype, flat values)`` of a tensor, read through trusted methods."""
    return (tuple(SAFE.size(t)), SAFE.get_dtype(t), flatten(SAFE.tolist(t)))


def check_unchanged(t, before, name, what):
    """Assert that tensor ``t`` still matches ``before`` (from :func:`snapshot`): no in-place edits."""
    if not is_plain_tensor(t) or snapshot(t) != before:
        changed = ""
        if is_plain_tensor(t) and tuple(SAFE.size(t)) == before[0]:
            now = flatten(SAFE.tolist(t))
            diffs = [i for i, (a, b) in enumerate(zip(now, before[2])) if a != b]
            if diffs:
                i = diffs[0]
                changed = f" (element {i} was {before[2][i]!r}, is now {now[i]!r})"
        raise AssertionError(explain(what, f" changed its input {name}{changed}: work on a "
                                           f"copy (for example weight.abs() or weight.clone()), "
                                           f"never in place"))


def fmt(x):
    """A number for a message: floats with 6 significant digits."""
    if type(x) is float:
        return f"{x:.6g}"
    return repr(x)


def fmt_list(values, limit=8):
    """The first ``limit`` values of a list for a message."""
    shown = ", ".join(fmt(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def first_mismatch(actual, expected, rtol, atol):
    """``(index, actual, expected)`` of the first element out of tolerance, or None."""
    for i, (a, e) in enumerate(zip(actual, expected)):
        if type(a) is bool:
            a = int(a)
        ok = (a == e) if rtol == 0 and atol == 0 else (
            SAFE.isfinite(a) and abs(a - e) <= atol + rtol * abs(e))
        if not ok:
            return i, a, e
    return None


def check_close(actual, expected, what, *, rtol=1e-5, atol=1e-8, shape=None):
    """Assert that a flat list of numbers matches ``expected`` within a tolerance.

    Args:
        actual: flat list of numbers (from ``tensor_values``).
        expected: flat list of numbers, the same length.
        what: how to name the values in the message.
        rtol, atol: relative and absolute tolerance; both 0 means exact.
        shape: the tensor's shape, to print a multi-index in the message.

    Raises:
        AssertionError: naming the first element that differs.

    Example:
        >>> check_close([1.0, 2.0000001], [1.0, 2.0], "scores")
        >>> check_close([1.0, 2.5], [1.0, 2.0], "scores")
        Traceback (most recent call last):
        ...
        AssertionError: scores: element 1 is 2.5, expected 2 (2 of 2 elements checked; 1 differ)
    """
    if len(actual) != len(expected):
        raise AssertionError(explain(what, f": {len(actual)} values, expected {len(expected)}"))
    found = first_mismatch(actual, expected, rtol, atol)
    if found is not None:
        i, a, e = found
        count = sum(1 for k in range(len(actual))
                    if first_mismatch([actual[k]], [expected[k]], rtol, atol) is not None)
        where = f"element {i}" if shape is None else f"element {unravel(i, shape)}"
        raise AssertionError(explain(what, f": {where} is {fmt(a)}, expected {fmt(e)} "
                                           f"({len(actual)} of {len(actual)} elements checked; "
                                           f"{count} differ)"))


def unravel(index, shape):
    """The multi-index of flat ``index`` in a tensor of ``shape``."""
    out = []
    for size in reversed(shape):
        out.append(index % size)
        index //= size
    return tuple(reversed(out))


def allowed_counts(fraction, n):
    """The integer counts ``round(fraction * n)`` may take under the assignments' rules.

    ``round`` halves to even; when ``fraction * n`` sits on a rounding boundary
    (within 1e-6 of a half), both neighbours are accepted, so float32 and
    float64 arithmetic both pass.

    Args:
        fraction: a float in [0, 1].
        n: a non-negative int.

    Returns:
        sorted list of accepted ints.

    Example:
        >>> allowed_counts(0.3, 100)
        [30]
        >>> allowed_counts(0.5, 5)
        [2, 3]
    """
    if type(n) is not int or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    exact = fraction * n
    counts = {round(exact)}
    lower = SAFE.floor(exact)
    if abs(exact - lower - 0.5) <= BOUNDARY * max(1.0, abs(exact)):
        counts |= {lower, lower + 1}
    return sorted(counts)


def count_text(fraction, n, noun):
    """The accepted counts for ``round(fraction * n)`` and how a message explains them."""
    counts = allowed_counts(fraction, n)
    expected = round(fraction * n)
    text = f"{expected} = round({fraction!r} * {n})"
    others = [c for c in counts if c != expected]
    if others:
        text += f" ({others[0]} also accepted: {fraction!r} * {n} sits on a rounding boundary)"
    return counts, text


# ---------------------------------------------------------------------------
# Calling student code

def call(function, *args, what=None, **kwargs):
    """Call a student's function and turn its failures into a readable ``AssertionError``.

    While the function runs, warnings are silenced and ``sys.stderr`` is
    captured (nbgrader scores a test cell that printed to stderr as failed, and
    a deprecation warning should not cost points), and the kit functions that
    :func:`isolated` named refuse to run (:class:`KitRefused`). Afterwards the
    check modules' namespaces are restored, so student code cannot replace the
    checks that run next.

    Args:
        function: the student's callable.
        *args, **kwargs: passed on.
        what: text describing the call for the message (default: the function's name).

    Returns:
        whatever the function returned.

    Example:
        >>> call(int, "12")
        12
        >>> def magnitude_mask(weight, sparsity):
        ...     raise NotImplementedError()
        >>> call(magnitude_mask, None, 0.5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: magnitude_mask raised NotImplementedError: write your code in place of ...
    """
    if not callable(function):
        raise AssertionError(explain(what or "the object under test",
                                     f" is not callable (got {type_name(function)}): define it "
                                     f"as in the notebook"))
    what = what or getattr(function, "__name__", "the function")
    try:
        with _student_code():
            return function(*args, **kwargs)
    except AssertionError:
        raise
    except NotImplementedError:
        raise AssertionError(explain(what, _NOT_IMPLEMENTED)) from None
    except Exception as exc:
        raise AssertionError(explain(what, f" raised {type(exc).__name__}: {exc}")) from exc


_NOT_IMPLEMENTED = " raised NotImplementedError: write your code in place of " \
                   "`raise NotImplementedError()`"


@contextlib.contextmanager
def _student_code():
    """While student code runs: warnings off, stderr captured, the kit's refusals on; afterwards
    the check modules' namespaces restored, whatever the code replaced."""
    saved = _save()
    try:
        with SAFE.catch_warnings():
            SAFE.simplefilter("ignore")
            with SAFE.redirect_stderr(SAFE.StringIO()), _refusing():
                yield
    finally:
        _restore(saved)


def _save():
    return [(namespace, dict(namespace)) for namespace in SAFE.module_dicts.values()]


def _restore(saved):
    """Put the check modules' namespaces back as they were before student code ran."""
    for namespace, copy_ in saved:
        for key in [k for k in namespace if k not in copy_]:
            del namespace[key]
        namespace.update(copy_)


def check_raises(function, args, exception, what):
    """Assert that ``function(*args)`` raises ``exception``.

    Args:
        function: the student's callable.
        args: tuple of positional arguments.
        exception: the exception class the contract requires.
        what: text describing the call.

    Example:
        >>> check_raises(int, ("x",), ValueError, "int('x')")
        >>> check_raises(int, ("1",), ValueError, "int('1')")
        Traceback (most recent call last):
        ...
        AssertionError: int('1') should raise ValueError, but it returned 1
    """
    if not (isinstance(exception, type) and issubclass(exception, BaseException)):
        raise TypeError(f"exception must be an exception class, got {exception!r}")
    try:
        with _student_code():
            result = function(*args)
    except exception:
        return
    except NotImplementedError:
        raise AssertionError(explain(what, _NOT_IMPLEMENTED)) from None
    except Exception as exc:
        raise AssertionError(explain(what, f" should raise {exception.__name__}, but it raised "
                                           f"{type(exc).__name__}: {exc}")) from None
    shown = "a tensor" if is_plain_tensor(result) else fmt(result) if type(result) in (
        int, float, str) else type_name(result)
    raise AssertionError(explain(what, f" should raise {exception.__name__}, but it returned "
                                       f"{shown}"))


@contextlib.contextmanager
def isolated(namespace, name, references, kit=()):
    """Test one student function in isolation, and without the kit's version of it.

    Looks ``name`` up in the notebook's namespace (a clear message if it is
    missing), and for the duration of the block replaces the student's other
    functions of the same assignment with reference implementations, so a test
    of ``BinaryLinear`` does not fail because ``SignSTE`` is wrong. While
    :func:`call` runs student code inside the block, the kit functions and
    classes named in ``kit`` refuse to run (:class:`KitRefused`), however the
    student reached them (``pk.prune.magnitude``, a name imported earlier, a
    subclass, another kit function calling them). The namespace is restored
    afterwards. Each assignment module wraps this with its own references and
    kit lists (``checks.pruning.isolated(globals(), "magnitude_mask")``).

    Args:
        namespace: the notebook's ``globals()``.
        name: the function under test, a key of ``references``.
        references: dict name -> reference implementation of every function of
            the assignment.
        kit: dotted paths of kit functions or classes that would do the work
            (``"pruning_kit.prune.magnitude"``).

    Yields:
        the student's object named ``name``.

    Example:
        >>> ns = {"f": lambda x: x}
        >>> with isolated(ns, "f", {"f": abs, "g": max}) as fn:
        ...     fn is ns["f"] and ns["g"] is max
        True
        >>> "g" in ns
        False
        >>> import pruning_kit as pk
        >>> def f(weight, sparsity):
        ...     return pk.prune.layer_sparsity(weight)
        >>> with isolated({"f": f}, "f", {"f": abs}, kit=["pruning_kit.prune.layer_sparsity"]) as fn:
        ...     call(fn, None, 0.5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: f raised KitRefused: pk.prune.layer_sparsity is off while f is graded: ...
    """
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict (pass globals()), got {type_name(namespace)}")
    if name not in references:
        raise ValueError(f"name must be one of {list(references)}, got {name!r}")
    if name not in namespace:
        raise AssertionError(f"{name} is not defined: run the cell that defines it (and keep "
                             f"its name as given in the notebook)")
    # the kit's versions, and this assignment's own reference of the function under test
    # (importable from the installed course package) refuse while student code runs
    refusals = [_Refusal(path, name) for path in kit]
    if _Refusal.possible(references[name]):
        refusals.append(_Refusal(references[name], name))
    target = namespace[name]
    others = [n for n in references if n != name]
    missing = object()
    saved = {n: namespace.get(n, missing) for n in others}
    for n in others:
        namespace[n] = references[n]
    outer = SAFE.refusals
    SAFE.refusals = refusals
    try:
        yield target
    finally:
        SAFE.refusals = outer
        for n, value in saved.items():
            if value is missing:
                namespace.pop(n, None)
            else:
                namespace[n] = value


# ---------------------------------------------------------------------------
# The kit refuses to do a graded function's work

class KitRefused(Exception):
    """Raised by a kit function or class while a graded function that it would do is tested."""


def _refuser(*args, _kit_refusal=None, **kwargs):
    raise _kit_refusal[0](_kit_refusal[1])


def _shown_path(path):
    return "pk." + path[len("pruning_kit."):] if path.startswith("pruning_kit.") else path


class _Refusal:
    """One kit object that refuses to run: a function's code, or a class's methods, swapped.

    Swapping the code object of the function itself (not the name in its
    module) reaches every reference a submission may hold. A decorated function
    is refused at the function it wraps.
    """

    CLASS_METHODS = ("__init__", "forward", "backward", "__call__")

    @staticmethod
    def possible(obj):
        """Whether ``obj`` can be made to refuse: a class, or a function without a closure."""
        while hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        return isinstance(obj, type) or (isinstance(obj, types.FunctionType)
                                         and not obj.__code__.co_freevars)

    def __init__(self, path, graded):
        import importlib

        if isinstance(path, str):
            module_name, _, attr = path.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"kit entry {path!r} does not name a kit function or class: "
                                 f"{exc}") from None
        else:  # an object: a reference implementation
            obj = path
            path = f"{obj.__module__}.{obj.__qualname__}"
        while hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        shown = _shown_path(path)
        self.message = (f"{shown} is off while {graded} is graded: write {graded} yourself "
                        f"with plain torch ({shown} is the course's version, for the lessons)")
        self.obj = obj
        if isinstance(obj, type):
            self.kind = "class"
        elif isinstance(obj, types.FunctionType) and not obj.__code__.co_freevars:
            self.kind = "function"
        else:
            raise ValueError(f"kit entry {path!r} must be a class or a plain function")
        self.saved = None

    def apply(self):
        refusal = (KitRefused, self.message)
        if self.kind == "function":
            f = self.obj
            self.saved = (f.__code__, f.__defaults__, f.__kwdefaults__)
            f.__code__ = _refuser.__code__
            f.__defaults__ = None
            f.__kwdefaults__ = {"_kit_refusal": refusal}
            return
        cls = self.obj
        self.saved = {}
        stub = SAFE.partial(_refuser, _kit_refusal=refusal)
        for method in self.CLASS_METHODS:
            if method in ("forward", "backward") and not hasattr(cls, method):
                continue
            self.saved[method] = cls.__dict__.get(method, _ABSENT)
            replacement = staticmethod(stub) if isinstance(
                cls.__dict__.get(method), staticmethod) or method == "backward" else (
                lambda self_, *a, _stub=stub, **k: _stub())
            type.__setattr__(cls, method, replacement)

    def restore(self):
        if self.saved is None:
            return
        if self.kind == "function":
            f = self.obj
            f.__code__, f.__defaults__, f.__kwdefaults__ = self.saved
        else:
            for method, value in self.saved.items():
                if value is _ABSENT:
                    type.__delattr__(self.obj, method)
                else:
                    type.__setattr__(self.obj, method, value)
        self.saved = None


_ABSENT = object()


@contextlib.contextmanager
def _refusing():
    """Turn on the refusals of the innermost :func:`isolated` block while student code runs."""
    active = list(SAFE.refusals or ())
    for refusal in active:
        refusal.apply()
    try:
        yield
    finally:
        for refusal in reversed(active):
            refusal.restore()


def random_tensor(*shape, seed=0, dtype=None):
    """A reproducible standard-normal tensor, built with the factories captured at import.

    Args:
        *shape: ints.
        seed: int seed of a private generator.
        dtype: torch dtype (default float32).

    Example:
        >>> random_tensor(2, 3, seed=0).shape
        torch.Size([2, 3])
    """
    generator = SAFE.Generator().manual_seed(seed)
    return SAFE.randn(*shape, generator=generator,
                       dtype=dtype if dtype is not None else SAFE.float32)


