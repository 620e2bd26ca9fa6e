"""Checks used by the tests of the nbgrader assignments ``pruning`` and ``binarized``.

Every ``check_*`` function builds its inputs, calls the student's function, and
raises ``AssertionError`` with a message the student can act on ("mask has 31
zeros, expected 30 = round(0.3 * 100)"). A test cell reads::

    from importlib import reload
    import pruning_kit.grading as grading
    g = reload(grading)                       # clean helpers, whatever ran before
    with g.isolated(globals(), "magnitude_mask") as magnitude_mask:
        g.check_magnitude_mask(magnitude_mask, [[0.5, -2.0], [0.1, 1.0]], 0.5)

Hard to fool. Student code runs in the same kernel before the tests, so:

- results are read only through methods of ``torch._C.TensorBase`` (an
  immutable C type) after an exact type check: tensor subclasses, objects with
  an always-true ``__eq__`` and ``__torch_function__`` tricks are rejected;
- values are compared as plain Python numbers by code in this module; no
  ``torch.equal``, ``allclose``, ``assert_close`` or numpy testing function is
  used, so replacing those changes nothing;
- the classes, factories and builtins this module relies on are captured on its
  first import (the grading pipeline imports it before any notebook cell) and
  kept across ``reload``; reloading restores every helper a submission may have
  replaced, and each call into student code restores this module's namespace
  afterwards;
- ``isolated`` swaps the student's *other* assignment functions for reference
  implementations while one function is tested, so one mistake costs only the
  points of the function that has it.

Rounding follows the assignments' contract: ``round`` halves to even, and an
integer computed from a product that sits on a rounding boundary (``0.5 * 5``)
may be off by one, so float32 and float64 arithmetic both pass.

Example:
    >>> import torch
    >>> def magnitude_mask(weight, sparsity):
    ...     k = round(sparsity * weight.numel())
    ...     mask = torch.ones_like(weight)
    ...     mask.view(-1)[weight.abs().flatten().argsort()[:k]] = 0
    ...     return mask
    >>> check_magnitude_mask(magnitude_mask, [[0.5, -2.0, 0.1], [-0.3, 1.0, 4.0]], 0.5,
    ...                      expected=[[0, 1, 0], [0, 1, 1]])
"""

import builtins as _builtins_module
import contextlib
import copy
import io
import math
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
    _SAFE  # noqa: B018
except NameError:
    _SAFE = types.SimpleNamespace(
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
        module_dict=None,  # filled below
    )
    _TB = torch._C.TensorBase
    _SAFE.tolist = _TB.tolist
    _SAFE.size = _TB.size
    _SAFE.clone = _TB.clone
    _SAFE.detach = _TB.detach
    _SAFE.copy_ = _TB.copy_
    _SAFE.requires_grad_ = _TB.requires_grad_
    _SAFE.get_dtype = _TB.__dict__["dtype"].__get__
    _SAFE.get_grad = _TB.__dict__["grad"].__get__
    _SAFE.set_grad = _TB.__dict__["grad"].__set__
    _SAFE.get_requires_grad = _TB.__dict__["requires_grad"].__get__
    _SAFE.named_modules = nn.Module.named_modules
    _SAFE.named_parameters = nn.Module.named_parameters
    _SAFE.module_call = nn.Module.__call__
    del _TB
    try:
        import numpy as _np
        _SAFE.numpy_scalars = (_np.float16, _np.float32, _np.float64, _np.int8, _np.int16,
                               _np.int32, _np.int64, _np.uint8, _np.uint16, _np.uint32,
                               _np.uint64)
        _SAFE.numpy_ints = (_np.int8, _np.int16, _np.int32, _np.int64, _np.uint8, _np.uint16,
                            _np.uint32, _np.uint64)
        del _np
    except ImportError:  # pragma: no cover - numpy ships with torch's wheels
        _SAFE.numpy_scalars = ()
        _SAFE.numpy_ints = ()

_SAFE.module_dict = globals()

ASSIGNMENTS = {
    "pruning": ("magnitude_mask", "global_magnitude_masks", "snip_scores", "snip_masks",
                "imp_step", "l1_filter_order"),
    "binarized": ("quantize_affine", "dequantize_affine", "quantize_symmetric", "binarize",
                  "SignSTE", "BinaryLinear"),
}
"""The functions students write, by assignment, in notebook order."""

_BOUNDARY = 1e-6  # how close to .5 a product may be and still count as a rounding boundary


# ---------------------------------------------------------------------------
# Reading values without trusting the student's objects

def _type_name(obj):
    cls = type(obj)
    module = getattr(cls, "__module__", "")
    name = getattr(cls, "__qualname__", "?")
    return name if module in ("builtins", "") else f"{module}.{name}"


def _is_tensor(obj):
    return type(obj) is _SAFE.Tensor or type(obj) is _SAFE.Parameter


def _require_tensor(obj, what):
    if not _is_tensor(obj):
        raise AssertionError(f"{what} should be a torch.Tensor, got {_type_name(obj)}"
                             + (" (a subclass of torch.Tensor is not accepted: return a plain"
                                " tensor)" if isinstance(obj, torch.Tensor) else ""))
    return obj


def _flatten(nested):
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
        raise TypeError(f"what must be a str naming the value, got {_type_name(what)}")
    _require_tensor(obj, what)
    actual_shape = tuple(_SAFE.size(obj))
    actual_dtype = _SAFE.get_dtype(obj)
    if shape is not None and actual_shape != tuple(shape):
        raise AssertionError(f"{what} has shape {actual_shape}, expected {tuple(shape)}")
    if dtype is not None and actual_dtype is not dtype:
        raise AssertionError(f"{what} has dtype {actual_dtype}, expected {dtype}")
    if dtypes is not None and actual_dtype not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise AssertionError(f"{what} has dtype {actual_dtype}, expected one of {allowed}")
    try:
        return _flatten(_SAFE.tolist(obj))
    except Exception as exc:  # a sparse or meta tensor, for example
        raise AssertionError(f"could not read the values of {what}: {exc}") from None


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
        raise TypeError(f"what must be a str naming the value, got {_type_name(what)}")
    kind = "an int" if integer else "a number (float)"
    cls = type(obj)
    if cls is int or cls is float:
        value = obj
    elif cls in _SAFE.numpy_scalars:
        value = cls.item(obj)
    elif _is_tensor(obj):
        if tuple(_SAFE.size(obj)) not in ((), (1,)):
            raise AssertionError(f"{what} should be {kind}, got a tensor of shape "
                                 f"{tuple(_SAFE.size(obj))}")
        value = _flatten(_SAFE.tolist(obj))[0]
        if type(value) is bool:
            value = int(value)
    else:
        raise AssertionError(f"{what} should be {kind}, got {_type_name(obj)}")
    if integer and type(value) is not int:
        raise AssertionError(f"{what} should be an int, got {type(value).__name__} {value!r}")
    return value


def _read_dict(obj, what, keys):
    if not isinstance(obj, dict):
        raise AssertionError(f"{what} should be a dict, got {_type_name(obj)}")
    items = list(_SAFE.dict_items(obj))
    got = [k for k, _ in items]
    missing = [k for k in keys if k not in got]
    extra = [k for k in got if k not in keys]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"unexpected keys {extra}")
        raise AssertionError(f"{what}: " + ", ".join(parts) + f"; expected exactly {list(keys)}")
    return {k: v for k, v in items}


def _fresh(values, dtype, what="input"):
    """A freshly built tensor from nested lists (or a clone of a tensor)."""
    if _is_tensor(values):
        return _SAFE.clone(_SAFE.detach(values))
    if type(values) is not list:
        raise TypeError(f"{what} must be a nested list of numbers or a tensor, "
                        f"got {_type_name(values)}")
    return _SAFE.tensor(values, dtype=dtype if dtype is not None else _SAFE.float32)


def _snapshot(t):
    return (tuple(_SAFE.size(t)), _SAFE.get_dtype(t), _flatten(_SAFE.tolist(t)))


def _check_unchanged(t, snapshot, name, what):
    if not _is_tensor(t) or _snapshot(t) != snapshot:
        changed = ""
        if _is_tensor(t) and tuple(_SAFE.size(t)) == snapshot[0]:
            now = _flatten(_SAFE.tolist(t))
            diffs = [i for i, (a, b) in enumerate(zip(now, snapshot[2])) if a != b]
            if diffs:
                i = diffs[0]
                changed = f" (element {i} was {snapshot[2][i]!r}, is now {now[i]!r})"
        raise AssertionError(f"{what} changed its input {name}{changed}: work on a copy "
                             f"(for example weight.abs() or weight.clone()), never in place")


def _fmt(x):
    if type(x) is float:
        return f"{x:.6g}"
    return repr(x)


def _fmt_list(values, limit=8):
    shown = ", ".join(_fmt(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _first_mismatch(actual, expected, rtol, atol):
    for i, (a, e) in enumerate(zip(actual, expected)):
        if type(a) is bool:
            a = int(a)
        ok = (a == e) if rtol == 0 and atol == 0 else (
            _SAFE.isfinite(a) and abs(a - e) <= atol + rtol * abs(e))
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
        raise AssertionError(f"{what}: {len(actual)} values, expected {len(expected)}")
    found = _first_mismatch(actual, expected, rtol, atol)
    if found is not None:
        i, a, e = found
        count = sum(1 for k in range(len(actual))
                    if _first_mismatch([actual[k]], [expected[k]], rtol, atol) is not None)
        where = f"element {i}" if shape is None else f"element {_unravel(i, shape)}"
        raise AssertionError(f"{what}: {where} is {_fmt(a)}, expected {_fmt(e)} "
                             f"({len(actual)} of {len(actual)} elements checked; {count} differ)")


def _unravel(index, shape):
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
    lower = _SAFE.floor(exact)
    if abs(exact - lower - 0.5) <= _BOUNDARY * max(1.0, abs(exact)):
        counts |= {lower, lower + 1}
    return sorted(counts)


def _count_text(fraction, n, noun):
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
    a deprecation warning should not cost points). Afterwards this module's
    namespace is restored, so student code cannot replace the checks that run
    next.

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
        raise AssertionError(f"{what or 'the object under test'} is not callable "
                             f"(got {_type_name(function)}): define it as in the notebook")
    what = what or getattr(function, "__name__", "the function")
    module_dict = _SAFE.module_dict
    saved = dict(module_dict)
    quiet = _SAFE.catch_warnings, _SAFE.simplefilter, _SAFE.redirect_stderr, _SAFE.StringIO
    try:
        with quiet[0]():
            quiet[1]("ignore")
            with quiet[2](quiet[3]()):
                return function(*args, **kwargs)
    except AssertionError:
        raise
    except NotImplementedError:
        raise AssertionError(f"{what} raised NotImplementedError: write your code in place of "
                             f"`raise NotImplementedError()`") from None
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from exc
    finally:
        _restore(module_dict, saved)


def _restore(module_dict, saved):
    """Put this module's namespace back as it was before student code ran."""
    for key in [k for k in module_dict if k not in saved]:
        del module_dict[key]
    module_dict.update(saved)


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
    module_dict = _SAFE.module_dict
    saved = dict(module_dict)
    quiet = _SAFE.catch_warnings, _SAFE.simplefilter, _SAFE.redirect_stderr, _SAFE.StringIO
    try:
        with quiet[0]():
            quiet[1]("ignore")
            with quiet[2](quiet[3]()):
                result = function(*args)
    except exception:
        return
    except NotImplementedError:
        raise AssertionError(f"{what} raised NotImplementedError: write your code in place of "
                             f"`raise NotImplementedError()`") from None
    except Exception as exc:
        raise AssertionError(f"{what} should raise {exception.__name__}, "
                             f"but it raised {type(exc).__name__}: {exc}") from None
    finally:
        _restore(module_dict, saved)
    shown = "a tensor" if _is_tensor(result) else _fmt(result) if type(result) in (
        int, float, str) else _type_name(result)
    raise AssertionError(f"{what} should raise {exception.__name__}, but it returned {shown}")


@contextlib.contextmanager
def isolated(namespace, name):
    """Test one student function in isolation.

    Looks ``name`` up in the notebook's namespace (a clear message if it is
    missing), and for the duration of the block replaces the student's other
    functions of the same assignment with reference implementations, so a test
    of ``BinaryLinear`` does not fail because ``SignSTE`` is wrong. The
    namespace is restored afterwards.

    Args:
        namespace: the notebook's ``globals()``.
        name: the function under test, one of ``ASSIGNMENTS[...]``.

    Yields:
        the student's object named ``name``.

    Example:
        >>> ns = {"binarize": lambda x: x}
        >>> with isolated(ns, "binarize") as fn:
        ...     fn is ns["binarize"] and ns["SignSTE"] is reference("SignSTE")
        True
        >>> "SignSTE" in ns
        False
    """
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict (pass globals()), got {_type_name(namespace)}")
    assignment = next((a for a, names in ASSIGNMENTS.items() if name in names), None)
    if assignment is None:
        known = [n for names in ASSIGNMENTS.values() for n in names]
        raise ValueError(f"name must be one of {known}, got {name!r}")
    if name not in namespace:
        raise AssertionError(f"{name} is not defined: run the cell that defines it (and keep "
                             f"its name as given in the notebook)")
    target = namespace[name]
    others = [n for n in ASSIGNMENTS[assignment] if n != name]
    missing = object()
    saved = {n: namespace.get(n, missing) for n in others}
    for n in others:
        namespace[n] = reference(n)
    try:
        yield target
    finally:
        for n, value in saved.items():
            if value is missing:
                namespace.pop(n, None)
            else:
                namespace[n] = value


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
    generator = _SAFE.Generator().manual_seed(seed)
    return _SAFE.randn(*shape, generator=generator,
                       dtype=dtype if dtype is not None else _SAFE.float32)


# ---------------------------------------------------------------------------
# Masks: pruning by the smallest scores

def _mask_values(mask, what, shape, dtype=None):
    flat = tensor_values(mask, what, shape=shape, dtype=dtype)
    bad = [v for v in flat if v not in (0, 1)]
    if bad:
        raise AssertionError(f"{what} must contain only 0 and 1, found {_fmt(bad[0])}")
    return [int(v) for v in flat]


def _consistent(keep, scores):
    """True when the zeros of ``keep`` sit at the smallest ``scores``."""
    pruned = [s for k, s in zip(keep, scores) if not k]
    kept = [s for k, s in zip(keep, scores) if k]
    return not (pruned and kept and max(pruned) > min(kept))


def _check_smallest_pruned(keep, scores, fraction, what, *, score_name, alternatives=()):
    """keep: flat 0/1 list; scores: flat list (the value pruning orders by).

    alternatives: (scores, hint) pairs of a known mistake; the hint is added
    when the mask fits that mistake.
    """
    n = len(keep)
    zeros = n - sum(keep)
    counts, text = _count_text(fraction, n, "zeros")
    if zeros not in counts:
        raise AssertionError(f"{what}: mask has {zeros} zeros, expected {text}")
    if not _consistent(keep, scores):
        worst = max(s for k, s in zip(keep, scores) if not k)
        best = min(s for k, s in zip(keep, scores) if k)
        message = (f"{what}: the zeros are not at the smallest {score_name}: an entry with "
                   f"{score_name} = {_fmt(worst)} was pruned while one with {_fmt(best)} was kept")
        for alt_scores, hint in alternatives:
            if _consistent(keep, alt_scores):
                message += f". {hint}"
                break
        raise AssertionError(message)


_SIGNED_HINT = ("These zeros fit the smallest SIGNED values: rank by abs(weight), since a "
                "weight of -5 matters as much as one of +5")


def check_magnitude_mask(function, weight, sparsity, *, dtype=None, expected=None):
    """Check ``magnitude_mask(weight, sparsity)`` on one input.

    Contract: a tensor of 0/1 with the weight's shape and dtype, exactly
    ``round(sparsity * weight.numel())`` zeros (off by one allowed on a
    rounding boundary) at the smallest ``abs(weight)``; the weight unchanged.

    Args:
        function: the student's ``magnitude_mask``.
        weight: nested list of numbers, or a tensor (a copy is passed).
        sparsity: float in [0, 1].
        dtype: dtype to build ``weight`` with (default float32).
        expected: optional nested 0/1 list the mask must equal (use only where ties cannot occur).

    Example:
        >>> check_magnitude_mask(reference("magnitude_mask"), [3.0, -1.0, 2.0], 1 / 3,
        ...                      expected=[1, 0, 1])
    """
    w = _fresh(weight, dtype, "weight")
    before = _snapshot(w)
    shape, wdtype, wvals = before
    what = f"magnitude_mask(weight of shape {shape}, sparsity={sparsity!r})"
    mask = call(function, w, sparsity, what=what)
    _check_unchanged(w, before, "weight", what)
    keep = _mask_values(mask, f"the mask of {what}", shape, wdtype)
    _check_smallest_pruned(keep, [abs(v) for v in wvals], sparsity, what,
                           score_name="abs(weight)", alternatives=[(wvals, _SIGNED_HINT)])
    if expected is not None:
        check_close(keep, _flatten(expected), f"the mask of {what}", rtol=0, atol=0, shape=shape)


def _check_global(result, tensors, fraction, what, *, score_name, scores, signed=None,
                  dtypes=None):
    """Shared by global magnitude masks and SNIP masks."""
    names = list(tensors)
    masks = _read_dict(result, f"the result of {what}", names)
    keep = {}
    for name in names:
        shape = tuple(_SAFE.size(tensors[name]))
        keep[name] = _mask_values(masks[name], f"mask {name!r} of {what}", shape,
                                  dtypes.get(name) if dtypes else None)
    flat_keep = [k for name in names for k in keep[name]]
    flat_scores = [s for name in names for s in scores[name]]
    n = len(flat_keep)
    zeros = n - sum(flat_keep)
    counts, text = _count_text(fraction, n, "zeros")
    if zeros not in counts:
        per_layer = ", ".join(f"{name!r}: {len(keep[name]) - sum(keep[name])}" for name in names)
        raise AssertionError(f"{what}: {zeros} zeros in total ({per_layer}), expected {text} "
                             f"over all {n} entries")
    pruned = [(s, name) for k, s, name in zip(flat_keep, flat_scores,
                                              [nm for nm in names for _ in keep[nm]]) if not k]
    kept = [(s, name) for k, s, name in zip(flat_keep, flat_scores,
                                            [nm for nm in names for _ in keep[nm]]) if k]
    if pruned and kept:
        worst = max(pruned)
        best = min(kept)
        if worst[0] > best[0]:
            local = all(len(keep[nm]) - sum(keep[nm]) in allowed_counts(fraction, len(keep[nm]))
                        and _consistent(keep[nm], scores[nm]) for nm in names)
            message = (f"{what}: the zeros are not at the smallest {score_name} over all layers: "
                       f"{score_name} = {_fmt(worst[0])} in {worst[1]!r} was pruned while "
                       f"{_fmt(best[0])} in {best[1]!r} was kept")
            if signed is not None and _consistent(
                    flat_keep, [v for name in names for v in signed[name]]):
                message += ". " + _SIGNED_HINT
            elif local and len(names) > 1:
                message += (". Every layer lost the same fraction: that is local pruning; "
                            "global pruning uses one threshold over all layers together")
            raise AssertionError(message)
    return keep


def check_global_magnitude_masks(function, weights, sparsity, *, dtype=None, expected=None):
    """Check ``global_magnitude_masks(weights, sparsity)`` on one input.

    Contract: one threshold over all tensors; exactly ``round(sparsity * total)``
    zeros in total at the smallest ``abs(weight)``; a dict with the same keys,
    each mask 0/1 with its weight's shape; the weights unchanged.

    Args:
        function: the student's ``global_magnitude_masks``.
        weights: dict name -> nested list (or tensor).
        sparsity: float in [0, 1].
        dtype: dtype to build the weights with (default float32).
        expected: optional dict name -> nested 0/1 list.

    Example:
        >>> check_global_magnitude_masks(reference("global_magnitude_masks"),
        ...     {"a": [0.1, -0.2], "b": [3.0, -4.0]}, 0.5,
        ...     expected={"a": [0, 0], "b": [1, 1]})
    """
    if not isinstance(weights, dict) or not weights:
        raise TypeError("weights must be a non-empty dict name -> values")
    tensors = {name: _fresh(v, dtype, f"weights[{name!r}]") for name, v in weights.items()}
    before = {name: _snapshot(t) for name, t in tensors.items()}
    shapes = ", ".join(f"{name!r}: {before[name][0]}" for name in tensors)
    what = f"global_magnitude_masks({{{shapes}}}, sparsity={sparsity!r})"
    result = call(function, dict(tensors), sparsity, what=what)
    for name, t in tensors.items():
        _check_unchanged(t, before[name], f"weights[{name!r}]", what)
    scores = {name: [abs(v) for v in before[name][2]] for name in tensors}
    signed = {name: before[name][2] for name in tensors}
    keep = _check_global(result, tensors, sparsity, what, score_name="abs(weight)", scores=scores,
                         signed=signed)
    if expected is not None:
        for name in tensors:
            check_close(keep[name], _flatten(expected[name]), f"mask {name!r} of {what}",
                        rtol=0, atol=0, shape=before[name][0])


def check_snip_masks(function, scores, sparsity, *, dtype=None, expected=None):
    """Check ``snip_masks(scores, sparsity)``: global, exact count, at the smallest scores.

    Args:
        function: the student's ``snip_masks``.
        scores: dict name -> nested list (or tensor) of non-negative scores.
        sparsity: float in [0, 1].
        dtype: dtype to build the scores with (default float32).
        expected: optional dict name -> nested 0/1 list.

    Example:
        >>> check_snip_masks(reference("snip_masks"), {"a": [0.1, 0.4], "b": [0.3, 0.2]}, 0.5,
        ...                  expected={"a": [0, 1], "b": [1, 0]})
    """
    if not isinstance(scores, dict) or not scores:
        raise TypeError("scores must be a non-empty dict name -> values")
    tensors = {name: _fresh(v, dtype, f"scores[{name!r}]") for name, v in scores.items()}
    before = {name: _snapshot(t) for name, t in tensors.items()}
    shapes = ", ".join(f"{name!r}: {before[name][0]}" for name in tensors)
    what = f"snip_masks({{{shapes}}}, sparsity={sparsity!r})"
    result = call(function, dict(tensors), sparsity, what=what)
    for name, t in tensors.items():
        _check_unchanged(t, before[name], f"scores[{name!r}]", what)
    values = {name: before[name][2] for name in tensors}
    keep = _check_global(result, tensors, sparsity, what, score_name="score", scores=values)
    if expected is not None:
        for name in tensors:
            check_close(keep[name], _flatten(expected[name]), f"mask {name!r} of {what}",
                        rtol=0, atol=0, shape=before[name][0])


# ---------------------------------------------------------------------------
# SNIP scores

def _prunable_names(model):
    return [name for name, module in _SAFE.named_modules(model)
            if isinstance(module, (_SAFE.Linear, _SAFE.Conv2d))]


def _expected_snip(model, inputs, targets):
    """|dL/dw * w| / sum over all layers, in float64 on a copy of the model."""
    twin = _SAFE.deepcopy(model).double()
    modules = dict(_SAFE.named_modules(twin))
    names = _prunable_names(twin)
    weights = [modules[name].weight for name in names]
    with _SAFE.enable_grad():
        loss = _SAFE.cross_entropy(twin(inputs.double()), targets)
        grads = _SAFE.autograd_grad(loss, weights)
    raw = {name: [abs(g * w) for g, w in zip(_flatten(_SAFE.tolist(grad)),
                                             _flatten(_SAFE.tolist(weight)))]
           for name, grad, weight in zip(names, grads, weights)}
    grads_flat = {name: _flatten(_SAFE.tolist(grad)) for name, grad in zip(names, grads)}
    total = _SAFE.fsum(v for name in names for v in raw[name])
    return names, {name: [v / total for v in raw[name]] for name in names}, grads_flat


def check_snip_scores(function, model, inputs, targets, *, stale_grad=None,
                      rtol=1e-4, atol=1e-7):
    """Check ``snip_scores(model, inputs, targets)`` against float64 autograd.

    Contract: a dict module name -> tensor for every ``nn.Linear``/``nn.Conv2d``
    weight, ``abs(grad * weight)`` of the mean cross-entropy on the batch
    divided by the sum over all layers; the model's weights unchanged.

    Args:
        function: the student's ``snip_scores``.
        model: an ``nn.Module`` (the test builds it).
        inputs, targets: the batch.
        stale_grad: if a float, every parameter's ``.grad`` is set to this value
            before the call (a correct function ignores gradients left over).
        rtol, atol: tolerance on each score.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
        >>> x, y = random_tensor(4, 3), torch.tensor([0, 1, 1, 0])
        >>> check_snip_scores(reference("snip_scores"), model, x, y)
    """
    if not isinstance(model, _SAFE.Module):
        raise TypeError(f"model must be an nn.Module, got {_type_name(model)}")
    modules = dict(_SAFE.named_modules(model))
    layers = _prunable_names(model)
    if not layers or any(type(modules[n]) not in (_SAFE.Linear, _SAFE.Conv2d) for n in layers):
        raise AssertionError("the test model should be built from plain nn.Linear / nn.Conv2d "
                             "layers: was torch.nn changed before the tests ran?")
    names, expected, grads = _expected_snip(model, inputs, targets)
    weights = {name: modules[name].weight for name in names}
    before = {name: _snapshot(w) for name, w in weights.items()}
    if stale_grad is not None:
        for param in [p for _, p in _SAFE.named_parameters(model)]:
            _SAFE.set_grad(param, _SAFE.full(tuple(_SAFE.size(param)), float(stale_grad),
                                             dtype=_SAFE.get_dtype(param)))
    what = f"snip_scores(model with layers {names}, inputs of shape {tuple(_SAFE.size(inputs))})"
    result = call(function, model, inputs, targets, what=what)
    for name, w in weights.items():
        _check_unchanged(w, before[name], f"weight of {name!r}", what)
        if modules[name].weight is not w:
            raise AssertionError(f"{what} replaced the weight parameter of {name!r}: "
                                 f"leave the model's parameters as they were")
    scores = _read_dict(result, f"the result of {what}", names)
    actual = {}
    for name in names:
        actual[name] = tensor_values(scores[name], f"scores[{name!r}] of {what}",
                                     shape=before[name][0], dtypes=_SAFE.floating)
    for name in names:
        found = _first_mismatch(actual[name], expected[name], rtol, atol)
        if found is None:
            continue
        hint = _snip_hint(actual, expected, grads, before, names, stale_grad, rtol, atol)
        i, a, e = found
        raise AssertionError(f"{what}: scores[{name!r}] element {_unravel(i, before[name][0])} "
                             f"is {_fmt(a)}, expected {_fmt(e)}" + (f". {hint}" if hint else ""))


def _snip_hint(actual, expected, grads, before, names, stale_grad, rtol, atol):
    def matches(candidate):
        return all(_first_mismatch(actual[n], candidate[n], rtol, atol) is None for n in names)

    def normalised(raw, per_layer=False):
        if per_layer:
            return {n: [v / (_SAFE.fsum(raw[n]) or 1.0) for v in raw[n]] for n in names}
        total = _SAFE.fsum(v for n in names for v in raw[n]) or 1.0
        return {n: [v / total for v in raw[n]] for n in names}

    weights = {n: before[n][2] for n in names}
    abs_grad = {n: [abs(g) for g in grads[n]] for n in names}
    raw = {n: [abs(g * w) for g, w in zip(grads[n], weights[n])] for n in names}
    if matches(normalised(abs_grad)):
        return "These are |grad| only: SNIP multiplies by the weight, abs(grad * weight)"
    if any(v < 0 for n in names for v in actual[n]):
        return "Some scores are negative: take abs(grad * weight)"
    if matches(normalised(raw, per_layer=True)):
        return "Each layer sums to 1: divide by the sum over ALL layers, not per layer"
    if matches(raw):
        return "The scores do not sum to 1: divide by the sum over all layers"
    if stale_grad is not None:
        stale = {n: [abs((g + stale_grad) * w) for g, w in zip(grads[n], weights[n])]
                 for n in names}
        if matches(normalised(stale)):
            return ("The gradients include what was already stored in .grad before the call: "
                    "zero them first (model.zero_grad()) or use torch.autograd.grad")
    return None


# ---------------------------------------------------------------------------
# Iterative magnitude pruning step

def check_imp_step(function, trained, init, masks, rate, *, dtype=None):
    """Check ``imp_step(trained, init, masks, rate)`` on one input.

    Contract: per layer, prune ``round(rate * remaining)`` more weights among
    those still unmasked, by ``abs(trained)``; pruned weights stay pruned;
    return ``(new_masks, init * new_masks)``; inputs unchanged.

    Args:
        function: the student's ``imp_step``.
        trained, init, masks: dicts name -> nested list (or tensor), same keys and shapes.
        rate: float in [0, 1].
        dtype: dtype to build the tensors with (default float32).

    Example:
        >>> check_imp_step(reference("imp_step"), {"a": [4.0, -1.0, 3.0, 2.0]},
        ...                {"a": [1.0, 1.0, 1.0, 1.0]}, {"a": [1.0, 1.0, 0.0, 1.0]}, 0.34)
    """
    names = list(trained)
    if not names or list(init) != names or list(masks) != names:
        raise TypeError("trained, init and masks must be non-empty dicts with the same keys")
    t_trained = {n: _fresh(trained[n], dtype, f"trained[{n!r}]") for n in names}
    t_init = {n: _fresh(init[n], dtype, f"init[{n!r}]") for n in names}
    t_masks = {n: _fresh(masks[n], dtype, f"masks[{n!r}]") for n in names}
    snaps = {(kind, n): _snapshot(t) for kind, group in
             (("trained", t_trained), ("init", t_init), ("masks", t_masks))
             for n, t in group.items()}
    shapes = ", ".join(f"{n!r}: {snaps[('trained', n)][0]}" for n in names)
    what = f"imp_step(trained, init, masks with layers {{{shapes}}}, rate={rate!r})"
    result = call(function, dict(t_trained), dict(t_init), dict(t_masks), rate, what=what)
    for (kind, n), snap in snaps.items():
        group = {"trained": t_trained, "init": t_init, "masks": t_masks}[kind]
        _check_unchanged(group[n], snap, f"{kind}[{n!r}]", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"{what} should return a tuple (new_masks, rewound_weights), "
                             f"got {_type_name(result)}")
    new_masks = _read_dict(result[0], f"new_masks of {what}", names)
    rewound = _read_dict(result[1], f"the rewound weights of {what}", names)
    for n in names:
        shape, _, old = snaps[("masks", n)]
        trained_abs = [abs(v) for v in snaps[("trained", n)][2]]
        new = _mask_values(new_masks[n], f"new_masks[{n!r}] of {what}", shape)
        revived = [i for i, (o, m) in enumerate(zip(old, new)) if o == 0 and m == 1]
        if revived:
            raise AssertionError(f"{what}: new_masks[{n!r}] brings back weight "
                                 f"{_unravel(revived[0], shape)}, which the old mask had pruned: "
                                 f"pruned weights stay pruned")
        remaining = [i for i, o in enumerate(old) if o == 1]
        newly = [i for i in remaining if new[i] == 0]
        counts, text = _count_text(rate, len(remaining), "weights")
        if len(newly) not in counts:
            message = (f"{what}: layer {n!r} pruned {len(newly)} more weights, expected {text} "
                       f"of the {len(remaining)} still unmasked")
            total = len(old)
            if len(newly) in allowed_counts(rate, total) and total != len(remaining):
                message += (f". {len(newly)} = round({rate!r} * {total}) prunes a fraction of ALL "
                            f"weights; IMP prunes a fraction of those that remain")
            raise AssertionError(message)
        sub_keep = [new[i] for i in remaining]
        if not _consistent(sub_keep, [trained_abs[i] for i in remaining]):
            pruned = [trained_abs[i] for i in newly]
            kept = [trained_abs[i] for i in remaining if new[i] == 1]
            message = (f"{what}: layer {n!r}: among the unmasked weights, one with "
                       f"abs(trained) = {_fmt(max(pruned))} was pruned while one with "
                       f"{_fmt(min(kept))} was kept")
            if _consistent(sub_keep, [snaps[("trained", n)][2][i] for i in remaining]):
                message += ". " + _SIGNED_HINT
            raise AssertionError(message)
        init_values = snaps[("init", n)][2]
        rew = tensor_values(rewound[n], f"rewound weights {n!r} of {what}", shape=shape,
                            dtype=snaps[("init", n)][1])
        expected = [v * m for v, m in zip(init_values, new)]
        found = _first_mismatch(rew, expected, 0, 0)
        if found is not None:
            trained_values = snaps[("trained", n)][2]
            hint = ""
            if _first_mismatch(rew, [v * m for v, m in zip(trained_values, new)], 0, 0) is None:
                hint = (". These are trained * mask: a lottery ticket rewinds to the initial "
                        "weights, init * new_mask")
            i, a, e = found
            raise AssertionError(f"{what}: rewound weights {n!r} element {_unravel(i, shape)} "
                                 f"is {_fmt(a)}, expected init * new_mask = {_fmt(e)}{hint}")


# ---------------------------------------------------------------------------
# L1 filter order

def check_l1_filter_order(function, conv_weight, *, dtype=None, expected=None):
    """Check ``l1_filter_order(conv_weight)``: filter indices by ascending L1 norm, stable.

    Args:
        function: the student's ``l1_filter_order``.
        conv_weight: nested list (out x in x kh x kw) or tensor.
        dtype: dtype to build it with (default float32).
        expected: optional list of indices.

    Example:
        >>> check_l1_filter_order(reference("l1_filter_order"),
        ...     [[[[1.0]]], [[[-0.5]]], [[[0.5]]]], expected=[1, 2, 0])
    """
    w = _fresh(conv_weight, dtype, "conv_weight")
    before = _snapshot(w)
    shape, _, values = before
    if len(shape) != 4:
        raise ValueError(f"conv_weight must be 4-D (out, in, kh, kw), got shape {shape}")
    what = f"l1_filter_order(conv_weight of shape {shape})"
    order = call(function, w, what=what)
    _check_unchanged(w, before, "conv_weight", what)
    out = shape[0]
    per = len(values) // out if out else 0
    norms = [_SAFE.fsum(abs(v) for v in values[f * per:(f + 1) * per]) for f in range(out)]
    got = tensor_values(order, f"the result of {what}", dtype=_SAFE.int64)
    if len(got) != out or tuple(_SAFE.size(order)) != (out,):
        raise AssertionError(f"the result of {what} has shape {tuple(_SAFE.size(order))}, "
                             f"expected ({out},): one index per output filter (weight.shape[0])")
    if sorted(got) != list(range(out)):
        raise AssertionError(f"the result of {what} should contain each filter index "
                             f"0..{out - 1} once, got {_fmt_list(got)}")
    for a, b in zip(got, got[1:]):
        tol = 1e-6 * max(1.0, norms[a], norms[b])
        if norms[a] > norms[b] + tol:
            message = (f"{what}: filter {a} (L1 norm {_fmt(norms[a])}) comes before filter {b} "
                       f"(L1 norm {_fmt(norms[b])}); the order must be ascending")
            if got == sorted(range(out), key=lambda f: -norms[f]):
                message += " (yours is descending)"
            elif any(v < 0 for v in values):
                message += ". The L1 norm sums abs(w) over in, kh, kw"
            raise AssertionError(message)
        if norms[a] == norms[b] and a > b:
            raise AssertionError(f"{what}: filters {b} and {a} have the same L1 norm "
                                 f"{_fmt(norms[a])}; a stable order keeps {b} before {a}")
    if expected is not None:
        check_close(got, list(expected), f"the result of {what}", rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Quantization

def _rounding_options(value):
    """round(value), and its neighbour when value sits within 1e-4 of a half."""
    options = {round(value)}
    lower = _SAFE.floor(value)
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
                f"{what}: q at {_unravel(i, shape)} is {qv}, expected {expected} = clamp(round("
                f"{_fmt(xv)} / {_fmt(scale)}) + {offset}, {qmin}, {qmax})")


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
    t = _fresh(x, dtype, "x")
    before = _snapshot(t)
    shape, _, values = before
    kind = "constant x" if min(values) == max(values) else "x"
    what = f"quantize_affine({kind} of shape {shape}, bits={bits})"
    result = call(function, t, bits, what=what)
    _check_unchanged(t, before, "x", what)
    if type(result) not in (tuple, list) or len(result) != 3:
        raise AssertionError(f"{what} should return a tuple (q, scale, zero_point), "
                             f"got {_type_name(result)}")
    q, scale, zero_point = result
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(values), max(values)
    constant = lo == hi
    expected_scale = 1.0 if constant else (hi - lo) / (qmax - qmin)
    got_scale = number(scale, f"scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        how = ("1.0 for a constant tensor" if constant
               else f"(max - min) / (qmax - qmin) = ({_fmt(hi)} - {_fmt(lo)}) / {qmax - qmin}")
        raise AssertionError(f"{what}: scale is {_fmt(got_scale)}, expected "
                             f"{_fmt(expected_scale)} = {how}")
    got_zero = number(zero_point, f"zero_point of {what}", integer=True)
    z_options = {_clamp(r, qmin, qmax) for r in _rounding_options(qmin - lo / got_scale)}
    if got_zero not in z_options:
        expected_zero = _clamp(round(qmin - lo / expected_scale), qmin, qmax)
        message = (f"{what}: zero_point is {got_zero}, expected {expected_zero} = "
                   f"clamp(round(qmin - min / scale), {qmin}, {qmax}) with min = {_fmt(lo)}")
        if got_zero == _clamp(round(qmin + lo / expected_scale), qmin, qmax):
            message += "; check the sign: zero_point = qmin - min / scale"
        raise AssertionError(message)
    qv = tensor_values(q, f"q of {what}", shape=shape, dtype=_SAFE.int64)
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
    t = _fresh(q, _SAFE.int64, "q")
    before = _snapshot(t)
    shape, _, values = before
    what = f"dequantize_affine(q of shape {shape}, scale={scale!r}, zero_point={zero_point!r})"
    result = call(function, t, scale, zero_point, what=what)
    _check_unchanged(t, before, "q", what)
    got = tensor_values(result, f"the result of {what}", shape=shape, dtype=_SAFE.float32)
    expected = [scale * (v - zero_point) for v in values]
    found = _first_mismatch(got, expected, 1e-6, 1e-7 * abs(scale))
    if found is not None:
        i, a, e = found
        message = (f"{what}: element {_unravel(i, shape)} is {_fmt(a)}, expected "
                   f"scale * (q - zero_point) = {_fmt(scale)} * ({values[i]} - {zero_point}) "
                   f"= {_fmt(e)}")
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
    t = _fresh(x, dtype, "x")
    before = _snapshot(t)
    shape, _, values = before
    kind = "all-zero x" if not any(values) else "x"
    what = f"quantize_symmetric({kind} of shape {shape}, bits={bits})"
    result = call(function, t, bits, what=what)
    _check_unchanged(t, before, "x", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"{what} should return a tuple (q, scale), got {_type_name(result)}")
    q, scale = result
    qmax = 2 ** (bits - 1) - 1
    peak = max(abs(v) for v in values)
    expected_scale = 1.0 if peak == 0 else peak / qmax
    got_scale = number(scale, f"scale of {what}")
    if abs(got_scale - expected_scale) > 1e-5 * abs(expected_scale):
        message = (f"{what}: scale is {_fmt(got_scale)}, expected {_fmt(expected_scale)} = "
                   + ("1.0 for an all-zero tensor" if peak == 0 else
                      f"max(abs(x)) / (2**{bits - 1} - 1) = {_fmt(peak)} / {qmax}"))
        if peak and abs(got_scale - peak / (qmax + 1)) <= 1e-5 * got_scale:
            message += (f"; the symmetric range is [-{qmax}, {qmax}], one level narrower than "
                        f"[-{qmax + 1}, {qmax}], so divide by {qmax}")
        raise AssertionError(message)
    qv = tensor_values(q, f"q of {what}", shape=shape, dtype=_SAFE.int64)
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
    t = _fresh(x, dtype, "x")
    before = _snapshot(t)
    shape, xdtype, values = before
    what = f"binarize(x of shape {shape}, dtype {xdtype})"
    result = call(function, t, what=what)
    _check_unchanged(t, before, "x", what)
    got = tensor_values(result, f"the result of {what}", shape=shape, dtype=xdtype)
    _check_signs(got, values, what, shape)


def _check_signs(got, values, what, shape):
    for i, (g, v) in enumerate(zip(got, values)):
        e = 1.0 if v >= 0 else -1.0
        if g != e:
            message = f"{what}: element {_unravel(i, shape)} (x = {_fmt(v)}) is {_fmt(g)}, expected {e:+.0f}"
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
    if not (isinstance(function, type) and issubclass(function, _SAFE.Function)):
        raise AssertionError(f"SignSTE should be a subclass of torch.autograd.Function, got "
                             f"{_type_name(function) if not isinstance(function, type) else function}")
    t = _SAFE.requires_grad_(_fresh(x, dtype, "x"))
    g = _fresh(upstream, _SAFE.get_dtype(t), "upstream")
    before = _snapshot(t)
    shape, xdtype, values = before
    what = f"SignSTE.apply(x of shape {shape})"
    out = call(function.apply, t, what=what)
    got = tensor_values(out, f"the output of {what}", shape=shape, dtype=xdtype)
    _check_signs(got, values, what, shape)
    try:
        _SAFE.autograd_backward(out, g)
    except Exception as exc:
        raise AssertionError(f"backward through {what} failed: {type(exc).__name__}: {exc}") from None
    grad = _SAFE.get_grad(t)
    if grad is None:
        raise AssertionError(f"after backward through {what}, x.grad is None: the output is not "
                             f"connected to x (return a tensor computed in forward)")
    got_grad = tensor_values(grad, f"x.grad after backward through {what}", shape=shape)
    upstream_values = _snapshot(g)[2]
    expected = [u if abs(v) <= 1 else 0.0 for u, v in zip(upstream_values, values)]
    found = _first_mismatch(got_grad, expected, 1e-6, 0)
    if found is not None:
        i, a, e = found
        v = values[i]
        message = (f"{what}: x.grad at {_unravel(i, shape)} (x = {_fmt(v)}, incoming grad "
                   f"{_fmt(upstream_values[i])}) is {_fmt(a)}, expected {_fmt(e)} = grad * "
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
    if not (isinstance(cls, type) and issubclass(cls, _SAFE.Module)):
        raise AssertionError("BinaryLinear should be a class derived from nn.Module")
    out_f, in_f = len(weight), len(weight[0])
    has_bias = bias is not None
    what = f"BinaryLinear({in_f}, {out_f}, bias={has_bias})"
    layer = call(cls, in_f, out_f, bias=has_bias, what=what)
    if not isinstance(layer, _SAFE.Module):
        raise AssertionError(f"{what} did not build an nn.Module")
    params = dict(_SAFE.named_parameters(layer))
    expected_names = ["weight", "bias"] if has_bias else ["weight"]
    if sorted(params) != sorted(expected_names):
        raise AssertionError(f"{what} has parameters {sorted(params)}, expected exactly "
                             f"{expected_names} (real-valued, like nn.Linear)")
    if not has_bias and getattr(layer, "bias", None) is not None:
        raise AssertionError(f"{what}: layer.bias should be None, like nn.Linear(bias=False)")
    w_param = params["weight"]
    if type(w_param) is not _SAFE.Parameter or tuple(_SAFE.size(w_param)) != (out_f, in_f):
        raise AssertionError(f"{what}: weight should be an nn.Parameter of shape "
                             f"({out_f}, {in_f}) (out x in), got {_type_name(w_param)} of shape "
                             f"{tuple(_SAFE.size(w_param)) if _is_tensor(w_param) else '?'}")
    init_values = _flatten(_SAFE.tolist(w_param))
    if len(set(init_values)) < 2:
        raise AssertionError(f"{what}: the initial weights are all {_fmt(init_values[0])}: "
                             f"initialise them like nn.Linear (random)")
    if has_bias:
        b_param = params["bias"]
        if type(b_param) is not _SAFE.Parameter or tuple(_SAFE.size(b_param)) != (out_f,):
            raise AssertionError(f"{what}: bias should be an nn.Parameter of shape ({out_f},)")
    with _SAFE.no_grad():
        _SAFE.copy_(w_param, _SAFE.tensor(weight, dtype=_SAFE.get_dtype(w_param)))
        if has_bias:
            _SAFE.copy_(params["bias"], _SAFE.tensor(bias, dtype=_SAFE.get_dtype(params["bias"])))
    W = _flatten(_SAFE.tolist(w_param))  # noqa: N806 - the matrix of the formula
    W = [W[i * in_f:(i + 1) * in_f] for i in range(out_f)]  # noqa: N806
    b = _flatten(_SAFE.tolist(params["bias"])) if has_bias else [0.0] * out_f
    xt = _SAFE.requires_grad_(_SAFE.tensor(x, dtype=_SAFE.float32))
    n = len(x)
    forward_what = f"{what}(x of shape ({n}, {in_f}))"
    y = call(_SAFE.module_call, layer, xt, what=forward_what)
    got = tensor_values(y, f"the output of {forward_what}", shape=(n, out_f))
    alpha = [_SAFE.fsum(abs(v) for v in row) / in_f for row in W]
    wb = [[alpha[i] * (1.0 if v >= 0 else -1.0) for v in W[i]] for i in range(out_f)]
    xs = _flatten(_SAFE.tolist(xt))
    xs = [xs[r * in_f:(r + 1) * in_f] for r in range(n)]
    expected = [_SAFE.fsum(xs[r][j] * wb[i][j] for j in range(in_f)) + b[i]
                for r in range(n) for i in range(out_f)]
    found = _first_mismatch(got, expected, 1e-5, 1e-6)
    if found is not None:
        i, a, e = found
        message = (f"{forward_what}: output element {_unravel(i, (n, out_f))} is {_fmt(a)}, "
                   f"expected {_fmt(e)} = F.linear(x, alpha * sign(W), bias) with alpha = "
                   f"mean(abs(W), dim=1) = {_fmt_list(alpha)}")
        plain = [_SAFE.fsum(xs[r][j] * (1.0 if W[c][j] >= 0 else -1.0) for j in range(in_f))
                 + b[c] for r in range(n) for c in range(out_f)]
        if _first_mismatch(got, plain, 1e-5, 1e-6) is None:
            message += "; you left out the XNOR scaling factor alpha"
        raise AssertionError(message)
    g = _SAFE.tensor(upstream, dtype=_SAFE.float32)
    try:
        _SAFE.autograd_backward(y, g)
    except Exception as exc:
        raise AssertionError(f"backward through {forward_what} failed: "
                             f"{type(exc).__name__}: {exc}") from None
    gs = _flatten(upstream)
    gs = [gs[r * out_f:(r + 1) * out_f] for r in range(n)]
    w_grad = _SAFE.get_grad(w_param)
    if w_grad is None:
        raise AssertionError(f"after backward through {forward_what}, weight.grad is None: use "
                             f"SignSTE.apply(self.weight) so gradients reach the real weights")
    got_w = tensor_values(w_grad, f"weight.grad after backward through {forward_what}",
                          shape=(out_f, in_f))
    expected_w = [alpha[i] * _SAFE.fsum(gs[r][i] * xs[r][j] for r in range(n))
                  * (1.0 if abs(W[i][j]) <= 1 else 0.0)
                  for i in range(out_f) for j in range(in_f)]
    found = _first_mismatch(got_w, expected_w, 1e-5, 1e-6)
    if found is not None:
        i, a, e = found
        r, c = _unravel(i, (out_f, in_f))
        message = (f"{forward_what}: weight.grad at ({r}, {c}) (W = {_fmt(W[r][c])}) is {_fmt(a)}, "
                   f"expected {_fmt(e)} = alpha * (grad_out^T x) * (abs(W) <= 1), with alpha "
                   f"detached")
        if abs(W[r][c]) > 1 and a != 0:
            message += "; no gradient may pass where abs(W) > 1 (use SignSTE)"
        raise AssertionError(message)
    x_grad = _SAFE.get_grad(xt)
    if x_grad is None:
        raise AssertionError(f"after backward through {forward_what}, x.grad is None")
    got_x = tensor_values(x_grad, f"x.grad after backward through {forward_what}", shape=(n, in_f))
    expected_x = [_SAFE.fsum(gs[r][i] * wb[i][j] for i in range(out_f))
                  for r in range(n) for j in range(in_f)]
    check_close(got_x, expected_x, f"x.grad after backward through {forward_what}",
                rtol=1e-5, atol=1e-6, shape=(n, in_f))
    if has_bias:
        b_grad = _SAFE.get_grad(params["bias"])
        got_b = tensor_values(b_grad, f"bias.grad after backward through {forward_what}",
                              shape=(out_f,)) if b_grad is not None else None
        if got_b is None:
            raise AssertionError(f"after backward through {forward_what}, bias.grad is None: "
                                 f"pass self.bias to F.linear")
        check_close(got_b, [_SAFE.fsum(gs[r][i] for r in range(n)) for i in range(out_f)],
                    f"bias.grad after backward through {forward_what}", rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Reference implementations (used by ``isolated`` to isolate one function)

def _ref_magnitude_mask(weight, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    k = round(sparsity * weight.numel())
    mask = torch.ones_like(weight)
    mask.view(-1)[weight.detach().abs().flatten().argsort(stable=True)[:k]] = 0
    return mask


def _ref_global_masks(tensors, sparsity):
    names = list(tensors)
    flat = torch.cat([tensors[n].detach().flatten().double() for n in names])
    keep = torch.ones_like(flat)
    keep[flat.argsort(stable=True)[:round(sparsity * flat.numel())]] = 0
    masks, start = {}, 0
    for n in names:
        size = tensors[n].numel()
        masks[n] = keep[start:start + size].view_as(tensors[n]).to(tensors[n].dtype)
        start += size
    return masks


def _ref_global_magnitude_masks(weights, sparsity):
    return _ref_global_masks({n: w.detach().abs() for n, w in weights.items()}, sparsity)


def _ref_snip_scores(model, inputs, targets):
    names = _prunable_names(model)
    modules = dict(model.named_modules())
    weights = [modules[n].weight for n in names]
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, weights)
    raw = [(g * w).detach().abs() for g, w in zip(grads, weights)]
    total = sum(r.sum() for r in raw)
    return {n: r / total for n, r in zip(names, raw)}


def _ref_snip_masks(scores, sparsity):
    return _ref_global_masks(scores, sparsity)


def _ref_imp_step(trained, init, masks, rate):
    new_masks = {}
    for n in trained:
        mask = masks[n].clone()
        alive = mask.flatten().nonzero().flatten()
        k = round(rate * alive.numel())
        order = trained[n].detach().abs().flatten()[alive].argsort(stable=True)
        mask.view(-1)[alive[order[:k]]] = 0
        new_masks[n] = mask
    return new_masks, {n: init[n] * new_masks[n] for n in trained}


def _ref_l1_filter_order(conv_weight):
    return conv_weight.detach().abs().flatten(1).sum(dim=1).argsort(stable=True)


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
    "magnitude_mask": _ref_magnitude_mask,
    "global_magnitude_masks": _ref_global_magnitude_masks,
    "snip_scores": _ref_snip_scores,
    "snip_masks": _ref_snip_masks,
    "imp_step": _ref_imp_step,
    "l1_filter_order": _ref_l1_filter_order,
    "quantize_affine": _ref_quantize_affine,
    "dequantize_affine": _ref_dequantize_affine,
    "quantize_symmetric": _ref_quantize_symmetric,
    "binarize": _ref_binarize,
    "SignSTE": _RefSignSTE,
    "BinaryLinear": _RefBinaryLinear,
}


def reference(name):
    """The reference implementation of an assignment function (what ``isolated`` substitutes).

    Args:
        name: one of the names in ``ASSIGNMENTS``.

    Returns:
        the function or class.

    Example:
        >>> import torch
        >>> reference("binarize")(torch.tensor([-0.5, 0.0]))
        tensor([-1.,  1.])
    """
    if name not in _REFERENCES:
        raise ValueError(f"name must be one of {sorted(_REFERENCES)}, got {name!r}")
    return _REFERENCES[name]
