"""Checking a student's result against what the notebook promises, in a sentence they can act on.

The visible test cells of the assignments use :func:`expect`::

    from pruning_kit.course.testing import expect
    expect(magnitude_mask, torch.tensor([[0.5, -2.0], [0.1, 1.0]]), 0.5,
           returns=torch.tensor([[1.0, 1.0], [0.0, 1.0]]))

In a student's notebook (JupyterLab's Validate) the cell calls the student's
function and shows at most one line when something is wrong: a
:class:`CheckFailed` renders itself without a traceback. When the notebook is
graded, the grader runs the same cell in its own process, where
``magnitude_mask`` stands for the student's function across the grading
boundary and every result arrives as plain data: the same comparison decides
there, out of the student code's reach. The hidden tests live with the grader,
not here, and nothing in this module computes a graded answer: it compares
with values the cell spells out.

Example:
    >>> import torch
    >>> expect(torch.abs, torch.tensor([-1.0, 2.0]), returns=torch.tensor([1.0, 2.0]))
    >>> expect(torch.neg, torch.tensor([-1.0, 2.0]), returns=torch.tensor([1.0, 2.0]))
    Traceback (most recent call last):
    ...
    pruning_kit.course.testing.CheckFailed: neg(tensor([-1.0, 2.0])) returned a wrong value: element (1,) is -2, expected 2 (1 of 2 differ)
"""

from __future__ import annotations

import inspect
import math

import torch

from .._checks import type_name as _type_name

_NOTHING = object()

MESSAGE_CHARS = 600
"""The longest message shown (the grader's messages are cut to the same length)."""


class CheckFailed(AssertionError):
    """A test's verdict: what is wrong, in one sentence first, with an optional diagnosis code.

    Args:
        message: what is wrong and, where it helps, what to do.
        diagnosis: a stable code for a recognised mistake (``"magnitude_mask/signed"``),
            recorded by the grader for the class report; None when the mistake is not a known one.

    Example:
        >>> CheckFailed("the mask has 2 zeros, expected 3", diagnosis="magnitude_mask/count")
        CheckFailed('the mask has 2 zeros, expected 3')
    """

    def __init__(self, message, *, diagnosis=None):
        text = " ".join(str(message).split())
        if len(text) > MESSAGE_CHARS:
            text = text[:MESSAGE_CHARS - 1] + "…"
        super().__init__(text)
        self.diagnosis = diagnosis

    def _render_traceback_(self):
        """What IPython shows for it: one line, no traceback through the checks."""
        return [f"\x1b[0;31m✗\x1b[0m {self}"]


class RaisedRemotely(Exception):
    """What the student's code raised in the student's process, as the grader sees it.

    ``type_name`` is the exception's class name and ``type_names`` it with the names of
    the built-in exceptions it derives from; ``kit_refused`` is true when it was a kit
    function refusing to do graded work; ``not_implemented`` when the function still
    raises ``NotImplementedError``.
    """

    def __init__(self, type_name, message, *, bases=(), kit_refused=False,
                 not_implemented=False):
        super().__init__(message)
        self.type_name = type_name
        self.type_names = (type_name, *bases)
        self.kit_refused = kit_refused
        self.not_implemented = not_implemented


# ---------------------------------------------------------------------------
# Describing calls and values

def type_name(value) -> str:
    """The type of ``value`` as a message names it: ``tensor``, ``list``, ``numpy.ndarray``.

    Example:
        >>> type_name(torch.zeros(1)), type_name([1]), type_name(None)
        ('tensor', 'list', 'None')
    """
    if value is None:
        return "None"
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return "tensor"
    shown = getattr(value, "type_name", None)  # a proxy, or a value that arrived as another type
    if isinstance(shown, str):
        return shown
    return _type_name(value)


def show(value, limit=60) -> str:
    """A short text for a value in a message: tensors by shape, numbers as written.

    Example:
        >>> show(torch.zeros(2, 3)), show(0.5), show({"fc1": torch.zeros(2)})
        ('tensor of shape (2, 3)', '0.5', "{'fc1': tensor([0.0, 0.0])}")
    """
    if isinstance(value, torch.Tensor):
        if value.numel() <= 6 and value.dim() <= 1:
            return f"tensor({value.tolist()})"
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)) and len(value) <= 6:
        inner = ", ".join(show(v, limit) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    elif isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(_number(value) if isinstance(value, float) else value)
    else:
        text = getattr(value, "shown", None) or type_name(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _number(value):
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return int(value)
    return value


def parameter_names(function):
    """The names of ``function``'s parameters (a proxy of the grader knows them too), or []."""
    names = getattr(function, "parameter_names", None)
    if isinstance(names, list):
        return names
    try:
        return [p for p in inspect.signature(function).parameters if p not in ("self", "ctx")]
    except (TypeError, ValueError):
        return []


def function_name(function) -> str:
    name = getattr(function, "__name__", None) or getattr(function, "name", None)
    return name if isinstance(name, str) else "the function"


def describe_call(function, args=(), kwargs=None) -> str:
    """``magnitude_mask(weight of shape (2, 3), sparsity=0.5)`` for messages.

    Example:
        >>> def magnitude_mask(weight, sparsity): ...
        >>> describe_call(magnitude_mask, (torch.zeros(2, 3), 0.5))
        'magnitude_mask(tensor of shape (2, 3), sparsity=0.5)'
    """
    names = parameter_names(function)
    parts = []
    for i, value in enumerate(args):
        text = show(value)
        if i > 0 and i < len(names) and not isinstance(value, torch.Tensor):
            text = f"{names[i]}={text}"
        parts.append(text)
    parts += [f"{k}={show(v)}" for k, v in (kwargs or {}).items()]
    return f"{function_name(function)}({', '.join(parts)})"


def describe_exception(exc) -> str:
    """``ValueError: sparsity must be in [0, 1]``, also for what the student's process raised."""
    name = getattr(exc, "type_name", None) or type(exc).__name__
    text = str(exc)
    prefix = f"{name}: "
    if text.startswith(prefix):  # the student's process sends "Type: message"
        text = text[len(prefix):]
    return f"{name}: {text}" if text else name


# ---------------------------------------------------------------------------
# Calling and comparing

def call(function, *args, **kwargs):
    """Call a student's function; what it raises becomes a :class:`CheckFailed` that says so.

    Example:
        >>> def f(x):
        ...     raise NotImplementedError()
        >>> call(f, 1)
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: f(1) is not written yet: replace `raise NotImplementedError()` with your code
    """
    try:
        return function(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - reported to the student
        raise CheckFailed(_raised_message(describe_call(function, args, kwargs), exc),
                          diagnosis=_raised_diagnosis(function, exc)) from None


def _raised_message(what, exc):
    if isinstance(exc, NotImplementedError) or getattr(exc, "not_implemented", False):
        return f"{what} is not written yet: replace `raise NotImplementedError()` with your code"
    if getattr(exc, "kit_refused", False):
        return f"{what}: {str(exc).split(': ', 1)[-1]}"
    return f"{what} raised {describe_exception(exc)}"


def _raised_diagnosis(function, exc):
    name = function_name(function)
    if isinstance(exc, NotImplementedError) or getattr(exc, "not_implemented", False):
        return f"{name}/not-written"
    if getattr(exc, "kit_refused", False):
        return f"{name}/kit-refused"
    return f"{name}/raised"


def raised_a(exc, exception_class) -> bool:
    """Whether ``exc`` is an ``exception_class``: here, or raised in the student's process as
    that class or a subclass of it (see :class:`RaisedRemotely`).

    Example:
        >>> raised_a(RaisedRemotely("InvalidParameterError", "", bases=["ValueError"]), ValueError)
        True
    """
    return (isinstance(exc, exception_class)
            or exception_class.__name__ in getattr(exc, "type_names", ()))


def expect(function, *args, returns=_NOTHING, raises=None, rtol=1e-5, atol=1e-6, hint=None,
           **kwargs):
    """Call ``function(*args, **kwargs)`` and check what it returns (or raises).

    Args:
        function: the student's function (or class).
        *args, **kwargs: its arguments, spelled out in the cell.
        returns: the expected value: a tensor (same shape, dtype and values; floats
            within ``rtol``/``atol``), a number, or a tuple/list/dict of them.
        raises: instead of ``returns``, the exception class the call must raise.
        hint: a sentence added to the message when the value is wrong.

    Raises:
        CheckFailed: with the call, what differs, and the hint.

    Example:
        >>> expect(int, "x", raises=ValueError)
        >>> expect(int, "1", raises=ValueError)
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: int('1') should raise ValueError, but it returned 1
    """
    what = describe_call(function, args, kwargs)
    if raises is not None:
        try:
            value = function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if raised_a(exc, raises):
                return
            if isinstance(exc, NotImplementedError) or getattr(exc, "not_implemented", False):
                raise CheckFailed(_raised_message(what, exc),
                                  diagnosis=_raised_diagnosis(function, exc)) from None
            raise CheckFailed(f"{what} should raise {raises.__name__}, but it raised "
                              f"{describe_exception(exc)}") from None
        raise CheckFailed(f"{what} should raise {raises.__name__}, but it returned {show(value)}")
    if returns is _NOTHING:
        raise TypeError("expect needs returns=... or raises=...")
    value = call(function, *args, **kwargs)
    problem = difference(value, returns, rtol=rtol, atol=atol)
    if problem is not None:
        message = (f"{what} returned {problem[3:]}" if problem.startswith("is ")
                   else f"{what} returned a wrong value: {problem}")
        if hint:
            message += f". {hint}"
        raise CheckFailed(message)


def difference(actual, expected, *, rtol=1e-5, atol=1e-6, where=""):
    """What differs between ``actual`` and ``expected``, in words, or None when they agree.

    Tensors must match in type, shape and dtype and in every value (floats
    within ``rtol``/``atol``); numbers within the same tolerance; tuples,
    lists and dicts element by element.

    Example:
        >>> difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) is None
        True
        >>> difference((torch.zeros(2), 3), (torch.zeros(2), 4))
        '[1] is 3, expected 4'
    """
    label = f"{where} " if where else ""
    if isinstance(expected, torch.Tensor):
        if type(actual) not in (torch.Tensor, torch.nn.Parameter):
            return f"{label}is a {type_name(actual)}, expected a torch.Tensor".strip()
        if tuple(actual.shape) != tuple(expected.shape):
            return f"{label}has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
        if actual.dtype != expected.dtype:
            return f"{label}has dtype {actual.dtype}, expected {expected.dtype}"
        a, e = actual.detach(), expected.detach()
        if e.is_floating_point():
            bad = ~torch.isclose(a.double(), e.double(), rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = a != e
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0].tolist())
            return (f"{label}element {index} is {show(_number(a[index].item()))}, expected "
                    f"{show(_number(e[index].item()))} ({int(bad.sum())} of {e.numel()} differ)")
        return None
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(actual) is not type(expected) or actual != expected:
            return f"{label}is {show(actual)}, expected {show(expected)}"
        return None
    if isinstance(expected, (int, float)):
        if isinstance(actual, torch.Tensor) and actual.numel() == 1:
            actual = actual.item()
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return f"{label}is a {type_name(actual)}, expected a number ({show(expected)})"
        if isinstance(expected, int) and not isinstance(expected, bool) and not isinstance(
                actual, int):
            return f"{label}is {show(actual)} ({type_name(actual)}), expected the int {expected}"
        if not math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol):
            return f"{label}is {show(actual)}, expected {show(expected)}"
        return None
    if isinstance(expected, (tuple, list)):
        kind = "tuple" if isinstance(expected, tuple) else "list"
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return (f"{label}is {show(actual)}, expected a {kind} of {len(expected)} values"
                    .strip())
        for i, (a, e) in enumerate(zip(actual, expected)):
            problem = difference(a, e, rtol=rtol, atol=atol, where=f"{where}[{i}]")
            if problem is not None:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{label}is a {type_name(actual)}, expected a dict".strip()
        if list(actual) != list(expected) and set(actual) != set(expected):
            return f"{label}has keys {list(actual)}, expected {list(expected)}".strip()
        for key in expected:
            problem = difference(actual[key], expected[key], rtol=rtol, atol=atol,
                                 where=f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    raise TypeError(f"expected values must be tensors, numbers, strings, tuples, lists or dicts; "
                    f"got {type_name(expected)}")


# ---------------------------------------------------------------------------
# Gradients and models in visible tests (the binarized assignment's section)
#
# Generic helpers that compute no graded answer. In a student's kernel they run autograd
# and read modules directly; when the notebook is graded, the same cell holds the grader's
# proxies of the student's objects, which answer through the grading boundary
# (``__remote_grad__``, a module's description).

def _is_remote(obj) -> bool:
    """True for the grader's proxy of a student's object (looked up on the type: no call)."""
    return not isinstance(obj, torch.nn.Module) and hasattr(type(obj), "__remote_grad__")


def _label(function, name=None) -> str:
    if name:
        return name
    if isinstance(function, torch.nn.Module) or hasattr(type(function), "state_dict"):
        return type_name(function).rpartition(".")[2]  # a model: its class, never its attributes
    return function_name(function)


def backward(function, *args, upstream):
    """Call ``function(*args)`` with float inputs that require grad and backpropagate ``upstream``.

    Args:
        function: a function, ``SomeFunction.apply`` or a model (its parameters' gradients
            are reported too).
        *args: its arguments.
        upstream: the gradient fed to backward (the output's shape).

    Returns:
        ``{"output": ..., "input_grads": [one per argument, None where none arrived],
        "param_grads": {name: gradient or None}}``.

    Example:
        >>> result = backward(torch.mul, torch.tensor([1.0, -2.0]), torch.tensor([3.0, 4.0]),
        ...                   upstream=torch.ones(2))
        >>> result["output"], result["input_grads"]
        (tensor([ 3., -8.]), [tensor([3., 4.]), tensor([ 1., -2.])])
    """
    if _is_remote(function):
        return type(function).__remote_grad__(function, args, upstream)
    inputs = [a.detach().clone().requires_grad_(True)
              if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    params = dict(function.named_parameters()) if isinstance(function, torch.nn.Module) else {}
    for p in params.values():
        p.grad = None
    with torch.enable_grad():
        out = function(*inputs)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.backward(upstream)
    return {"output": out.detach() if isinstance(out, torch.Tensor) else out,
            "input_grads": [a.grad if isinstance(a, torch.Tensor) else None for a in inputs],
            "param_grads": {k: p.grad for k, p in params.items()}}


def expect_backward(function, *args, upstream, returns, grads=(), params=None, rtol=1e-5,
                    atol=1e-6, name=None, hint=None):
    """Check the output of ``function(*args)`` and the gradients that ``upstream`` sends back.

    Args:
        function, *args, upstream: as for :func:`backward`.
        returns: the expected output (see :func:`expect`).
        grads: the expected gradient of each argument, in order (None: not checked).
        params: ``{parameter name: expected gradient}`` for a model.
        name: how messages name the function (default: its name or its class's).
        hint: a sentence added when something differs.

    Example:
        >>> expect_backward(torch.mul, torch.tensor([1.0, -2.0]), torch.tensor([3.0, 4.0]),
        ...                 upstream=torch.ones(2), returns=torch.tensor([3.0, -8.0]),
        ...                 grads=(torch.tensor([3.0, 4.0]), torch.tensor([1.0, -1.0])))
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: after backward through mul(tensor([1.0, -2.0]), tensor([3.0, 4.0])), the gradient of argument 2: element (1,) is -2, expected -1 (1 of 2 differ)
    """
    label = _label(function, name)
    what = f"{label}({', '.join(show(a) for a in args)})"
    try:
        result = backward(function, *args, upstream=upstream)
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - reported to the student
        not_written = isinstance(exc, NotImplementedError) or getattr(exc, "not_implemented",
                                                                        False)
        code = "not-written" if not_written else "kit-refused" if getattr(
            exc, "kit_refused", False) else "raised"
        raise CheckFailed(_raised_message(what, exc),
                          diagnosis=f"{label.split('.')[0]}/{code}") from None
    suffix = f". {hint}" if hint else ""
    problem = difference(result["output"], returns, rtol=rtol, atol=atol)
    if problem is not None:
        shown = problem[3:] if problem.startswith("is ") else f"a wrong value: {problem}"
        raise CheckFailed(f"{what} returned {shown}{suffix}")
    checks = [(f"argument {i + 1}", result["input_grads"][i] if i < len(
        result["input_grads"]) else None, expected) for i, expected in enumerate(grads)]
    checks += [(f"{key}.grad", result["param_grads"].get(key), expected)
               for key, expected in (params or {}).items()]
    for where, actual, expected in checks:
        if expected is None:
            continue
        if actual is None:
            raise CheckFailed(f"after backward through {what}, the gradient of {where} is None: "
                              f"the output is not connected to it{suffix}")
        problem = difference(actual, expected, rtol=rtol, atol=atol)
        if problem is not None:
            raise CheckFailed(f"after backward through {what}, the gradient of {where}: "
                              f"{problem}{suffix}")


def expect_that(condition, message):
    """Fail with ``message`` unless ``condition`` holds (a property the cell states).

    Example:
        >>> expect_that(2 + 2 == 4, "arithmetic is broken")
    """
    if not condition:
        raise CheckFailed(message)


def layer_types(model):
    """``[(path, class name)]`` of a model and all its submodules (the model itself first).

    Example:
        >>> layer_types(torch.nn.Sequential(torch.nn.Linear(2, 2)))
        [('', 'Sequential'), ('0', 'Linear')]
    """
    if _is_remote(model):
        return [(m.get("path"), str(m.get("type")).rpartition(".")[2]) for m in model.modules]
    return [(path, type(m).__name__) for path, m in model.named_modules()]


def in_training_mode(model) -> bool:
    """True when the model or any of its submodules is in training mode (``model.train()``).

    Example:
        >>> in_training_mode(torch.nn.Sequential(torch.nn.BatchNorm1d(2)).eval())
        False
    """
    if _is_remote(model):
        model.refresh()
        return any(m.get("training") for m in model.modules)
    return any(m.training for m in model.modules())


# Results that are more than one value (assignment ``pruning``): the items of a returned tuple,
# an attribute of a returned model, a model's outputs, a dict of fractions. Each works on the
# student's own objects (Validate) and on the grader's handles on them (grading) alike, and
# compares only with values the cell spells out.

def _shown(value):
    """``show(value)``, without asking a handle on a student's object for anything."""
    if hasattr(type(value), "__wire_ref__"):  # the grader's handle: its type name is known here
        return f"a {type_name(value)}"
    return show(value)


def items(value, count, what):
    """``value`` as a tuple of ``count`` items (it must be a tuple or a list of that length).

    Example:
        >>> items((1, 2), 2, "f(x)")
        (1, 2)
        >>> items(3, 2, "f(x)")
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: f(x) returned 3, expected a tuple of 2 items
    """
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise CheckFailed(f"{what} returned {_shown(value)}, expected a tuple of {count} items")
    return tuple(value)


def attribute(obj, path, what):
    """``obj.fc1.out_features`` for ``path="fc1.out_features"``; CheckFailed when a step is missing.

    Example:
        >>> attribute(torch.nn.Linear(3, 2), "out_features", "the layer")
        2
        >>> attribute(torch.nn.ReLU(), "fc1.out_features", "the model")
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: the model has no attribute fc1 (it is a torch.ReLU)
    """
    current, walked = obj, what
    for part in path.split("."):
        try:
            current = getattr(current, part)
        except Exception:  # noqa: BLE001 - missing here, or raised in the student's process
            raise CheckFailed(f"{walked} has no attribute {part} (it is a "
                              f"{type_name(current)})") from None
        walked = f"{walked}.{part}"
    return current


def expect_equal(actual, expected, what, *, rtol=1e-5, atol=1e-6, hint=None):
    """Compare a value the cell obtained (``what`` names it) with the value it spells out.

    Example:
        >>> expect_equal(torch.nn.Linear(3, 2).in_features, 3, "layer.in_features")
        >>> expect_equal(2, 3, "layer.in_features", hint="count the inputs")
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: layer.in_features is 2, expected 3. count the inputs
    """
    problem = difference(actual, expected, rtol=rtol, atol=atol)
    if problem is not None:
        message = f"{what} {problem}" if problem.startswith(("is ", "has ")) else (
            f"{what}: {problem}")
        raise CheckFailed(message + (f". {hint}" if hint else ""))


def expect_output(model, x, *, returns, what="the model", rtol=1e-4, atol=1e-5):
    """Run ``model(x)`` without gradients and compare its output with ``returns``.

    Example:
        >>> layer = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.fill_(1.0), layer.bias.fill_(0.5)
        >>> expect_output(layer, torch.tensor([[1.0, 2.0]]), returns=torch.tensor([[3.5]]))
    """
    try:
        with torch.no_grad():
            output = model(x)
    except Exception as exc:  # noqa: BLE001 - reported to the student
        raise CheckFailed(f"{what}({show(x)}) raised {describe_exception(exc)}") from None
    expect_equal(output, returns, f"{what}({show(x)})", rtol=rtol, atol=atol)


def expect_fractions(function, *args, keys, **kwargs):
    """Call ``function``: it must return a dict with exactly ``keys``, each a number in [0, 1].

    A property check, not an answer: any fractions pass. Returns the dict with plain floats.

    Example:
        >>> expect_fractions(lambda: {"a": 0.5, "b": 1}, keys=("a", "b"))
        {'a': 0.5, 'b': 1.0}
        >>> expect_fractions(lambda: {"a": 50}, keys=("a",))
        Traceback (most recent call last):
        ...
        pruning_kit.course.testing.CheckFailed: <lambda>()['a'] is 50: a fraction in [0, 1] is expected (0.9 means 90%)
    """
    value = call(function, *args, **kwargs)
    what = describe_call(function, args, kwargs)
    if not isinstance(value, dict):
        raise CheckFailed(f"{what} returned a {type_name(value)}, expected a dict with keys "
                          f"{list(keys)}")
    if set(value) != set(keys):
        raise CheckFailed(f"{what} has keys {list(value)}, expected exactly {list(keys)}")
    out = {}
    for key in keys:
        number = value[key]
        if isinstance(number, torch.Tensor) and number.numel() == 1:
            number = number.item()
        elif type(number).__module__ == "numpy" and hasattr(number, "item"):
            number = number.item()
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise CheckFailed(f"{what}[{key!r}] is a {type_name(value[key])}, expected a number")
        if not (math.isfinite(number) and 0 <= number <= 1):
            raise CheckFailed(f"{what}[{key!r}] is {show(number)}: a fraction in [0, 1] is "
                              f"expected (0.9 means 90%)")
        out[key] = float(number)
    return out
