"""The student's side of grading: runs the answer cells and answers the grader's calls.

While a submission is graded, the grader (``grader/``, the instructor's package)
starts this module in the grading sandbox (:mod:`.sandbox`)::

    python -m pruning_kit.course.agent

and talks to it over its standard input and output in frames of plain data
(:mod:`.wire`). Nothing this side sends is trusted: the grader checks every
value it receives and decides every point itself, in a process where no
student code ever ran. What runs here:

1. ``hello``: import torch and the kit. The kit here is a *grading view* of
   ``pruning_kit`` bound into the sandbox in place of the real one: the kit
   functions that would do a graded function's work are missing from its files
   (each is a stub raising ``KitRefused``), so no reference kept, code object
   copied or module re-imported can reach them.
2. ``define``: run the notebook's setup cells and the student's answer cells, in
   order, each in its own try (a cell that raises costs nothing by itself).
3. ``fork``: for one test cell, a child process with a copy of that namespace
   in which the *other* graded names are the course's stand-ins (so a mistake in
   one function never fails another's test). The child answers ``call``,
   ``attr``, ``state``, ``grad`` and ``run`` requests until ``bye``; then this
   process reports how the child ended. A child that crashes, hangs or blows its
   memory takes only its test cell with it.

Student code printing to the terminal goes nowhere: the protocol owns copies of
the original standard input and output.

Example:
    >>> describe(len)["kind"], describe(int)["kind"]
    ('function', 'class')
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
import warnings

from . import wire

ATTR_TYPES = (bool, int, float, str, type(None))


# ---------------------------------------------------------------------------
# Describing objects that stay here

def _signature(obj):
    try:
        return [p for p in inspect.signature(obj).parameters][:20]
    except (TypeError, ValueError):
        return None


def _plain_attrs(module):
    out = {}
    for key, value in list(vars(module).items())[:200]:
        if key.startswith("_"):
            continue
        if type(value) in ATTR_TYPES and not (type(value) is str and len(value) > 200):
            out[key] = value
        elif type(value) is tuple and len(value) <= 8 and all(type(v) is int for v in value):
            out[key] = {"$tuple": list(value)}
    return out


def _tensor_info(tensor):
    if tensor is None:
        return None
    base = __import__("torch")._C.TensorBase
    return {"shape": list(base.size(tensor)), "dtype": str(base.dtype.__get__(tensor))[6:],
            "type": wire.type_path(tensor)}


def describe(obj, handle=None):
    """What the grader learns of an object that stays here: kind, type, signature, modules.

    Example:
        >>> import torch
        >>> info = describe(torch.nn.Linear(3, 2))
        >>> info["kind"], info["modules"][0]["attrs"]["in_features"]
        ('module', 3)
    """
    import torch

    info = {"id": handle, "type": wire.type_path(obj)}
    if isinstance(obj, type):
        info.update(kind="class", name=str(getattr(obj, "__name__", "?"))[:100],
                    mro=[f"{c.__module__}.{c.__qualname__}"[:120] for c in obj.__mro__][:12],
                    params=_signature(obj))
    elif isinstance(obj, torch.nn.Module):
        modules = []
        for path, sub in list(torch.nn.Module.named_modules(obj))[:500]:
            modules.append({
                "path": path, "type": wire.type_path(sub), "training": bool(sub.training),
                "attrs": _plain_attrs(sub),
                "params": {k: _tensor_info(v) for k, v in list(sub._parameters.items())[:50]},
                "buffers": {k: _tensor_info(v) for k, v in list(sub._buffers.items())[:50]},
            })
        info.update(kind="module", modules=modules)
    elif callable(obj):
        info.update(kind="function", name=str(getattr(obj, "__name__", "?"))[:100],
                    params=_signature(obj))
    else:
        info.update(kind="object")
    return info


# ---------------------------------------------------------------------------
# The process

class Agent:
    """One side of the protocol: the namespace, the objects handed out, the stream."""

    def __init__(self, stream):
        self.stream = stream
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles = {}

    # -- values ----------------------------------------------------------------------------

    def _register(self, obj):
        handle = len(self.handles) + 1
        self.handles[handle] = obj
        return describe(obj, handle)

    def _ref(self, handle):
        if isinstance(handle, str):
            if handle not in self.namespace:
                raise _Missing(handle)
            return self.namespace[handle]
        if handle not in self.handles:
            raise wire.WireError(f"no object with handle {handle}")
        return self.handles[handle]

    def _build(self, spec):
        factory = spec["factory"]
        if isinstance(spec.get("source"), str):  # a class of the grader's, defined here
            scope = _course_namespace()
            exec(compile(spec["source"], f"<grader {factory}>", "exec"), scope)  # noqa: S102
            maker = scope[factory]
        elif isinstance(factory, str) and factory.startswith(wire.FACTORIES):
            module_name, _, name = factory.rpartition(".")
            maker = getattr(importlib.import_module(module_name), name)
        else:
            raise wire.WireError(f"cannot build with {factory!r}")
        model = maker(*spec["args"], **spec["kwargs"])
        if spec["state"]:
            model.load_state_dict(spec["state"])
        return model.train(spec["training"])

    @staticmethod
    def _dataset(images, labels, name):
        from pruning_kit.data import TensorData

        return TensorData(images, labels, name=name)

    def decode(self, header, buffers):
        return wire.decode(header, buffers, ref=self._ref, build=self._build,
                           dataset=self._dataset, structures=True)

    def reply(self, message, value=None, *, key="value"):
        header, buffers = wire.encode(value, remote=self._register)
        self.stream.send({**message, key: header}, buffers)

    # -- requests --------------------------------------------------------------------------

    def serve(self, child=False):
        """Answer requests until ``bye`` (or the stream closes)."""
        while True:
            try:
                message, buffers = self.stream.receive()
            except (wire.WireClosed, OSError):
                return
            op = message.get("op")
            if op == "bye":
                self.stream.send({"ok": True})
                return
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None or (op in ("fork", "define", "hello") and child) or (
                    op in ("call", "attr", "state", "grad", "run") and not child):
                self.stream.send({"error": f"unknown request {op!r}"})
                continue
            try:
                handler(message, buffers)
            except wire.WireError as exc:
                self.stream.send({"error": f"bad data: {exc}"})

    def op_hello(self, message, buffers):
        import torch

        torch.set_num_threads(1)
        for name in message.get("preload", []):
            try:
                importlib.import_module(name)
            except Exception:  # a module the view lacks: the cells will say so
                pass
        self.stream.send({"ok": True, "python": sys.version.split()[0],
                          "torch": torch.__version__})

    def op_define(self, message, buffers):
        from IPython.core.inputtransformer2 import TransformerManager

        transform = TransformerManager().transform_cell
        self.namespace.setdefault("get_ipython", _NoIPython)
        self.namespace.setdefault("display", _no_display)
        results = []
        for cell in message.get("cells", []):
            self.stream.send({"event": "cell", "id": cell.get("id")})
            error = None
            try:
                code = compile(transform(cell.get("source", "")), f"<cell {cell.get('id')}>",
                               "exec")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(code, self.namespace)  # noqa: S102 - the student's own answer cells
            except BaseException as exc:  # noqa: BLE001 - anything a cell raises is its own
                error = _exception_text(exc)
            results.append({"id": cell.get("id"), "error": error})
        self.stream.send({"ok": True, "cells": results})

    def op_fork(self, message, buffers):
        pid = os.fork()
        if pid:
            _, status = os.waitpid(pid, 0)
            self.stream.send({"event": "exited", "status": _exit_text(status)})
            return
        try:  # the child: stand-ins in, then the test cell's requests
            _mark_under_test(message.get("under_test"))
            course = _course_namespace()
            for standin in message.get("standins", []):
                try:
                    exec(compile(standin["source"], f"<course {standin['name']}>", "exec"),
                         course)  # noqa: S102 - the grader's code
                    self.namespace[standin["name"]] = course[standin["name"]]
                except Exception as exc:
                    self.stream.send({"error": f"stand-in {standin.get('name')}: "
                                               f"{_exception_text(exc)}"})
                    os._exit(3)
            self.stream.send({"ok": True, "defined": {
                name: _summary(self.namespace[name])
                for name in message.get("names", []) if name in self.namespace}})
            self.serve(child=True)
        finally:
            os._exit(0)

    def _target(self, message):
        target = message.get("target")
        if isinstance(target, str):
            if target not in self.namespace:
                raise _Missing(target)
            obj = self.namespace[target]
        elif isinstance(target, int):
            obj = self._ref(target)
        else:
            raise wire.WireError("target must be a name or a handle")
        method = message.get("method")
        if method is not None:
            if not isinstance(method, str) or method.startswith("__") and method != "__call__":
                raise wire.WireError(f"method {method!r} not allowed")
            obj = getattr(obj, method)
        return obj

    def _student(self, message, work):
        """Run ``work()`` (student code) and reply with its value or what it raised."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = work()
        except _Missing as missing:
            self.stream.send({"missing": missing.name})
            return
        except wire.WireError:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported, judged by the grader
            self.stream.send({"raised": _raised(exc)})
            return
        try:
            self.reply({"ok": True}, value)
        except wire.WireError as exc:
            self.stream.send({"unsendable": str(exc)[:500]})
        except Exception as exc:  # noqa: BLE001 - an object that breaks when read
            self.stream.send({"unsendable": _exception_text(exc)})

    def op_call(self, message, buffers):
        """Call the target; with ``echo``, also send back the arguments as they are afterwards
        (the grader checks that a function left its inputs unchanged)."""
        def work():
            args = self.decode(message.get("args", []), buffers)
            kwargs = self.decode(message.get("kwargs", {"$dict": []}), buffers)
            value = self._target(message)(*args, **kwargs)
            if message.get("echo"):
                return {"result": value, "args": args, "kwargs": kwargs}
            return value

        self._student(message, work)

    def op_attr(self, message, buffers):
        self._student(message, lambda: getattr(self._target(message), message.get("name", "")))

    def op_state(self, message, buffers):
        import torch

        def state():
            obj = self._target(message)
            if not isinstance(obj, torch.nn.Module):
                raise TypeError(f"{wire.type_path(obj)} is not an nn.Module")
            return dict(torch.nn.Module.state_dict(obj))

        self._student(message, state)

    def op_grad(self, message, buffers):
        """Call, then backpropagate ``upstream``: the output and the gradients reached."""
        import torch

        def forward_backward():
            args = self.decode(message.get("args", []), buffers)
            upstream = self.decode(message.get("upstream"), buffers)
            inputs = [a.detach().clone().requires_grad_(True)
                      if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                      for a in args]
            target = self._target(message)
            with torch.enable_grad():
                out = target(*inputs)
                params = dict(torch.nn.Module.named_parameters(target)) if isinstance(
                    target, torch.nn.Module) else {}
                for p in params.values():
                    p.grad = None
                if isinstance(out, torch.Tensor) and out.requires_grad:
                    out.backward(upstream)
            grads = [a.grad if isinstance(a, torch.Tensor) else None for a in inputs]
            return {"output": out.detach() if isinstance(out, torch.Tensor) else out,
                    "input_grads": grads,
                    "param_grads": {k: p.grad for k, p in params.items()}}

        self._student(message, forward_backward)

    def op_run(self, message, buffers):
        """Run the grader's helper code here (a training loop, hooks) on the student's objects."""
        def run():
            inputs = self.decode(message.get("inputs", {"$dict": []}), buffers)
            scope = {"student": self.namespace, **inputs}
            exec(compile(message.get("source", ""), "<grader helper>", "exec"), scope)  # noqa: S102
            return scope.get("result")

        self._student(message, run)


def _summary(obj):
    """Kind, name, parameters and bases of a graded name, without its modules' details."""
    info = describe(obj)
    return {k: info[k] for k in ("kind", "type", "name", "params", "mro") if k in info}


class _Missing(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


class _NoIPython:
    """``get_ipython()`` in a grading process: magics do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _no_display(*args, **kwargs):
    return None


def _exception_text(exc):
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - an exception whose str() raises
        text = type(exc).__name__
    return text[:1000]


def _raised(exc):
    try:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        line = where.lineno if where.filename.startswith("<cell") else None
    except Exception:  # noqa: BLE001
        line = None
    kit_refused = type(exc).__name__ == "KitRefused" and type(exc).__module__.startswith(
        "pruning_kit")
    # the built-in classes it derives from, so that `raises=ValueError` accepts a subclass
    builtin = [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"][:12]
    return {"type": str(type(exc).__name__)[:100], "bases": builtin,
            "message": _exception_text(exc),
            "not_implemented": isinstance(exc, NotImplementedError),
            "kit_refused": kit_refused, "line": line}


def _exit_text(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.WEXITSTATUS(status)}"


def _course_namespace():
    """Where the course's versions of other graded functions are defined: imports of their own."""
    import copy
    import math

    import torch

    import pruning_kit

    return {"__name__": "course", "torch": torch, "nn": torch.nn, "F": torch.nn.functional,
            "math": math, "copy": copy, "pk": pruning_kit}


def _mark_under_test(name):
    """Name the function under test in the kit view's refusals (absent outside the view)."""
    try:
        view = importlib.import_module("pruning_kit._grading_view")
    except ImportError:
        return
    if isinstance(name, str):
        view.UNDER_TEST = name


def main():
    """Serve the protocol on copies of stdin/stdout; the originals go to /dev/null."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    Agent(wire.Stream(read_fd, write_fd)).serve()


if __name__ == "__main__":
    main()
