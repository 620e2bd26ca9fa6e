"""The student's objects as check code sees them: proxies that call across the boundary.

A check receives a :class:`Student` for one test cell. ``student["magnitude_mask"]``
is a :class:`RemoteCallable`: calling it sends the arguments to the student's
process (tensors, numbers, strings, lists, dicts, models built from a named
factory) and returns what the function returned, decoded into plain values
built here: plain tensors, numbers, strings, lists, tuples and dicts. An object
that has no plain form (a model, a class instance) stays in the student's
process and comes back as a proxy: a :class:`RemoteModule` describes the
model's modules, parameters' shapes, attributes and modes, fetches its state
dict, and calls its ``forward`` or methods there. What the student's code
raised arrives as :class:`~pruning_kit.course.testing.RaisedRemotely`.

Example:
    >>> RemoteCallable(None, {"kind": "function", "name": "f", "params": ["x"]}).parameter_names
    ['x']
"""

from __future__ import annotations

from pruning_kit.course.testing import RaisedRemotely
from pruning_kit.course.wire import Ref

from .boundary import StudentError


def _raise_remote(error: StudentError):
    """Turn a failure on the student's side into what check code handles."""
    if error.kind == "raised":
        raised = error.raised
        bases = raised.get("bases")
        bases = [str(b)[:100] for b in bases[:12]] if isinstance(bases, list) else []
        raise RaisedRemotely(str(raised.get("type", "Exception"))[:100],
                             str(raised.get("message", ""))[:1000], bases=bases,
                             kit_refused=error.kit_refused,
                             not_implemented=error.not_implemented) from None
    raise error


class Student:
    """The student's process for one test cell (see :class:`pruning_grader.boundary.Child`)."""

    def __init__(self, child):
        self.child = child

    def _decode_as(self, info):
        if not isinstance(info, dict):
            return RemoteObject(self.child, {"kind": "object"})
        kind = info.get("kind")
        if kind == "module":
            return RemoteModule(self.child, info, self)
        if kind in ("function", "class"):
            return RemoteCallable(self.child, info, self)
        return RemoteObject(self.child, info, self)

    def request(self, message, **payload):
        try:
            return self.child.request(message, payload or None, decode_as=self._decode_as)
        except StudentError as error:
            _raise_remote(error)

    def __getitem__(self, name):
        """The student's object named ``name`` in the notebook (a function, class...)."""
        summary = self.child.defined.get(name) if self.child is not None else None
        info = {"kind": "function", "name": name, **(summary or {}), "target": name}
        if summary is None:
            info["missing"] = True
        return RemoteCallable(self.child, info, self)

    def defines(self, name) -> bool:
        return name in self.child.defined

    def call(self, target, *args, **kwargs):
        return self.request({"op": "call", "target": target}, args=list(args), kwargs=kwargs)

    def run(self, source, **inputs):
        """Run the grader's helper code in the student's process; its ``result`` comes back.

        The code sees ``student`` (the notebook's namespace there) and ``inputs``
        by name; remote objects passed in arrive as the objects themselves.
        """
        return self.request({"op": "run", "source": source}, inputs=inputs)

    def grad(self, target, args, upstream, method=None):
        """Call ``target(*args)`` there with float inputs requiring grad and backpropagate.

        Returns a dict: ``output``, ``input_grads`` (one per argument, None where
        none arrived), ``param_grads`` (name -> gradient, for a model).
        """
        return self.request({"op": "grad", "target": target, "method": method},
                            args=list(args), upstream=upstream)


class Remote:
    """An object in the student's process."""

    def __init__(self, child, info, student=None):
        self._child, self.info, self._student = child, info, student

    @property
    def target(self):
        target = self.info.get("target")
        return target if target is not None else self.info.get("id")

    @property
    def type_name(self):
        return str(self.info.get("type") or self.info.get("name") or "object")

    @property
    def kind(self):
        return self.info.get("kind")

    @property
    def shown(self):
        """How a message shows it (``testing.show``): by its type, without a request (a model's
        attributes are looked up in the student's process)."""
        return f"a {self.type_name.rpartition('.')[2]}"

    def _request(self, message, **payload):
        student = self._student or Student(self._child)
        return student.request(message, **payload)

    def __wire_ref__(self):
        """How this object is named when sent back to the student's process."""
        return Ref(self.target)

    def __repr__(self):
        return f"<student's {self.type_name}>"


class RemoteCallable(Remote):
    """A student's function or class: call it, or one of its methods (``SignSTE.apply``)."""

    @property
    def __name__(self):
        return str(self.info.get("name") or self.info.get("target") or "?")

    name = __name__

    @property
    def parameter_names(self):
        params = self.info.get("params")
        if isinstance(params, list):
            return [p for p in params if p not in ("self", "ctx")]
        return []

    @property
    def mro(self):
        """Type names of a class's bases (``torch.nn.modules.module.Module``), else []."""
        return list(self.info.get("mro") or [])

    def is_subclass_of(self, type_path: str) -> bool:
        return type_path in self.mro

    def __call__(self, *args, **kwargs):
        return self._request({"op": "call", "target": self.target}, args=list(args),
                             kwargs=kwargs)

    def method(self, name, *args, **kwargs):
        return self._request({"op": "call", "target": self.target, "method": name},
                             args=list(args), kwargs=kwargs)

    def call_and_inputs(self, *args, **kwargs):
        """``(result, args, kwargs)``: what it returned, and its arguments as they are after the
        call (as the student's code left them: a function that should not change its inputs
        must leave them equal to what was sent)."""
        echoed = self._request({"op": "call", "target": self.target, "echo": True},
                               args=list(args), kwargs=kwargs)
        return echoed["result"], echoed["args"], echoed["kwargs"]

    def __remote_grad__(self, args, upstream):
        """Call it there with float inputs requiring grad, backpropagate ``upstream``
        (:meth:`Student.grad`): what ``pruning_kit.course.testing.backward`` uses."""
        student = self._student or Student(self._child)
        return student.grad(self.target, list(args), upstream)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _BoundMethod(self, name)


class _BoundMethod:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name
        self.__name__ = f"{owner.__name__}.{name}"

    @property
    def parameter_names(self):
        return []

    def __call__(self, *args, **kwargs):
        return self.owner.method(self.name, *args, **kwargs)

    def __remote_grad__(self, args, upstream):
        """``SignSTE.apply`` called there, then backpropagated (see :meth:`Student.grad`)."""
        student = self.owner._student or Student(self.owner._child)
        return student.grad(self.owner.target, list(args), upstream, method=self.name)


class RemoteModule(Remote):
    """A student's ``nn.Module``: its description, its state, and calls into it.

    ``modules`` lists ``{"path", "type", "training", "attrs", "params", "buffers"}``
    for every submodule (``""`` is the model itself), as it was when the model
    crossed or when :meth:`refresh` last asked.
    """

    @property
    def modules(self):
        return list(self.info.get("modules") or [])

    def module(self, path=""):
        """The description of the submodule at ``path`` (``"fc1"``), or None."""
        return next((m for m in self.modules if m.get("path") == path), None)

    @property
    def training(self):
        root = self.module("")
        return bool(root and root.get("training"))

    def refresh(self):
        """Describe the model again (after student code changed it in place)."""
        info = self._request({"op": "run", "source": "from pruning_kit.course.agent import "
                                                     "describe\nresult = describe(model)"},
                             inputs={"model": self})
        if isinstance(info, dict):
            self.info = {**info, "id": self.info.get("id")}
        return self

    def state_dict(self):
        """Its state dict (name -> plain tensor), read in the student's process."""
        return self._request({"op": "state", "target": self.info["id"]})

    def __call__(self, *args, **kwargs):
        return self._request({"op": "call", "target": self.info["id"]}, args=list(args),
                             kwargs=kwargs)

    def method(self, name, *args, **kwargs):
        return self._request({"op": "call", "target": self.info["id"], "method": name},
                             args=list(args), kwargs=kwargs)

    def attr(self, name):
        return self._request({"op": "attr", "target": self.info["id"], "name": name})

    def __remote_grad__(self, args, upstream):
        """Its forward called there on float inputs requiring grad, then backpropagated:
        output, input gradients and parameter gradients (see :meth:`Student.grad`)."""
        student = self._student or Student(self._child)
        return student.grad(self.info["id"], list(args), upstream)

    def train(self, mode=True):
        self.method("train", mode)
        return self.refresh()

    def eval(self):
        return self.train(False)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.attr(name)


class RemoteObject(Remote):
    """Any other object of the student's: only its type name is known here."""
