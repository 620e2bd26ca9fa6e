"""Plain data across the grading boundary, in a format that cannot carry code.

During grading the student's code runs in a sandboxed process and the checks
run in the grader's own process (see ``grader/`` and :mod:`.agent`). What
crosses between them is a *frame*: a JSON header plus raw byte buffers, one per
tensor. Nothing is ever unpickled or evaluated on the receiving side: JSON is
parsed with :func:`json.loads`, tensor bytes become tensors with
:func:`torch.frombuffer` after their dtype, shape and length are checked, and
a receiver enforces size, depth and count limits before it looks at a value.

A frame on the stream::

    b"PKW1"  header length (4 bytes)  number of buffers (4 bytes)
    one 8-byte length per buffer  the JSON header  the buffers

Values are plain JSON where JSON suffices (``None``, ``bool``, ``int``,
``str``, finite ``float``, ``list``); everything else is a tagged object:

====================  =======================================================
``{"$float": "nan"}``  a non-finite float
``{"$tuple": [...]}``  a tuple
``{"$dict": [[k, v]]}`` a dict (keys: str, int, float, bool or None), in order
``{"$tensor": {...}}``  a tensor (dtype, shape, buffer index, requires_grad,
                        the type it had: ``numpy.ndarray``, a subclass...)
``{"$scalar": {...}}``  a numpy scalar (its value and type name)
``{"$dataset": {...}}`` a :class:`pruning_kit.data.TensorData`
``{"$build": {...}}``   a model the receiver builds: a factory among
                        :data:`FACTORIES`, its arguments and a state dict
``{"$remote": {...}}``  an object that stays on the sender's side (a model, a
                        class, a function...): its handle, kind, type name and,
                        for a model, a description of its modules
``{"$ref": id}``        one of the receiver's own remote objects, sent back
====================  =======================================================

Example:
    >>> import torch
    >>> header, buffers = encode({"mask": torch.tensor([1.0, 0.0]), "k": (1, float("inf"))})
    >>> decode(header, buffers)
    {'mask': tensor([1., 0.]), 'k': (1, inf)}
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time

import torch

MAGIC = b"PKW1"

LIMITS = {
    "header_bytes": 8 * 1024 * 1024,     # the JSON header
    "buffer_bytes": 512 * 1024 * 1024,   # one tensor's bytes
    "total_bytes": 1024 * 1024 * 1024,   # all buffers of one frame
    "buffers": 10_000,                   # tensors in one frame
    "depth": 64,                         # nesting of lists, tuples and dicts
    "nodes": 1_000_000,                  # JSON values in one frame
    "string": 1_000_000,                 # characters in one string
}
"""What a receiver accepts in one frame; anything larger is refused (:class:`WireError`)."""

DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16,
    "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
}
"""Tensor dtypes that cross the boundary, by name."""

_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

FACTORIES = ("pruning_kit.models.", "torch.nn.")
"""Prefixes of the callables a ``$build`` may name (the receiver imports them)."""

PLAIN_DICTS = ("collections.OrderedDict", "collections.defaultdict")
"""Dict types the sender turns into plain dicts (a scan kept in a ``defaultdict(list)`` is a dict)."""


class WireError(ValueError):
    """A frame or value that breaks the format or its limits."""


class WireTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


class WireClosed(EOFError):
    """The other side closed the stream (it exited or was killed)."""


# ---------------------------------------------------------------------------
# Values

def type_path(obj) -> str:
    """``module.QualName`` of ``obj``'s type, at most 120 characters.

    Example:
        >>> type_path(1.5), type_path(torch.zeros(1))
        ('float', 'torch.Tensor')
    """
    cls = type(obj)
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None)
    module = module if isinstance(module, str) else "?"
    name = name if isinstance(name, str) else "?"
    text = name if module == "builtins" else f"{module}.{name}"
    return text[:120]


class Encoder:
    """Turns values into a JSON-able header and a list of byte buffers.

    Args:
        remote: called with an object that has no plain form (a model, a
            class, a function); returns the dict to put under ``$remote``, or
            None to refuse it. The student's side keeps such objects and sends
            handles; the grader's side sends none.
    """

    def __init__(self, remote=None, *, structures=False):
        self.remote = remote
        self.structures = structures
        self.buffers = []

    def __call__(self, value, depth=0):
        if depth > LIMITS["depth"]:
            raise WireError(f"value nested deeper than {LIMITS['depth']} levels")
        cls = type(value)
        if value is None or cls is bool or cls is int or cls is str:
            return value
        if cls is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if cls is list:
            return [self(v, depth + 1) for v in value]
        if cls is tuple:
            return {"$tuple": [self(v, depth + 1) for v in value]}
        if cls is dict or (isinstance(value, dict) and type_path(value) in PLAIN_DICTS):
            return {"$dict": [[self._key(k), self(v, depth + 1)] for k, v in value.items()]}
        if isinstance(value, torch.Tensor):
            return {"$tensor": self._tensor(value, type_path(value))}
        module = getattr(cls, "__module__", "") or ""
        if module == "numpy" and cls.__name__ == "ndarray":
            return {"$tensor": self._tensor(torch.from_numpy(value.copy()), "numpy.ndarray")}
        if module == "numpy" and hasattr(value, "item") and hasattr(value, "dtype"):
            item = value.item()
            if type(item) in (bool, int, float):
                return {"$scalar": {"value": self(item, depth + 1), "type": type_path(value)}}
        if isinstance(value, _Built):
            return {"$build": value.header(self, depth)}
        if type_path(value) == "pruning_kit.data.TensorData":
            return {"$dataset": {"images": self(value.images, depth + 1),
                                 "labels": self(value.labels, depth + 1),
                                 "name": str(value.name)[:200]}}
        if self.structures and isinstance(value, torch.nn.Module):
            return {"$module": self._module(value, depth)}
        if isinstance(value, Ref):
            return {"$ref": value.id}
        if hasattr(type(value), "__wire_ref__"):  # the grader's proxy of a student's object
            return {"$ref": value.__wire_ref__().id}
        described = self.remote(value) if self.remote is not None else None
        if described is None:
            raise WireError(f"a {type_path(value)} cannot be sent: send tensors, numbers, "
                            "strings, lists, tuples and dicts of them")
        return {"$remote": described}

    def _module(self, module, depth):
        """A model made of torch.nn layers and the kit's models, by structure (class, plain
        attributes, parameters, buffers, children): rebuilt on the other side without pickle."""
        if depth > LIMITS["depth"]:
            raise WireError("model nested too deeply")
        path = f"{type(module).__module__}.{type(module).__qualname__}"
        if not path.startswith(FACTORIES):
            raise WireError(f"a {path} cannot be sent by structure: only torch.nn layers and "
                            f"pruning_kit.models (use build_from_source for another class)")
        attrs = {}
        for key, value in vars(module).items():
            if key in ("_parameters", "_buffers", "_modules", "training"):
                continue
            plain = _plain(value)
            if plain is not _SKIP:
                attrs[key] = self(plain, depth + 1)
        return {"class": path, "training": bool(module.training), "attrs": attrs,
                "params": [[k, None if v is None else self(v.detach(), depth + 1)]
                           for k, v in module._parameters.items()],
                "buffers": [[k, None if v is None else self(v, depth + 1)]
                            for k, v in module._buffers.items()],
                "children": [[k, None if v is None else self._module(v, depth + 1)]
                             for k, v in module._modules.items()]}

    def _key(self, key):
        if key is None or type(key) in (bool, int, str):
            return key
        if type(key) is float:
            return key if math.isfinite(key) else {"$float": repr(key)}
        raise WireError(f"a dict key of type {type_path(key)} cannot be sent: use str or int keys")

    def _tensor(self, tensor, shown_type):
        base = torch._C.TensorBase
        plain = base.detach(tensor)
        if base.is_sparse.__get__(plain) or plain.layout != torch.strided:
            plain = plain.to_dense()
        dtype = base.dtype.__get__(plain)
        if dtype not in _DTYPE_NAMES:
            raise WireError(f"a tensor of dtype {dtype} cannot be sent: use one of "
                            f"{', '.join(DTYPES)}")
        plain = base.contiguous(base.cpu(plain))
        raw = plain.reshape(-1).view(torch.uint8) if base.numel(plain) else torch.zeros(
            0, dtype=torch.uint8)
        self.buffers.append(bytes(raw.numpy().tobytes()))
        return {"dtype": _DTYPE_NAMES[dtype], "shape": list(base.size(plain)),
                "buffer": len(self.buffers) - 1,
                "requires_grad": bool(base.requires_grad.__get__(tensor)),
                "type": shown_type}


_SKIP = object()


def _plain(value):
    """``value`` if it is plain data (numbers, strings, tuples and lists of them), else _SKIP."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (tuple, list) and len(value) <= 64:
        items = [_plain(v) for v in value]
        if all(v is not _SKIP for v in items):
            return type(value)(items)
    return _SKIP


def encode(value, *, remote=None):
    """``(header, buffers)`` for ``value`` (see the module docstring for the format).

    Example:
        >>> header, buffers = encode([1, (2.5, "x")])
        >>> header, buffers
        ([1, {'$tuple': [2.5, 'x']}], [])
        >>> from collections import OrderedDict
        >>> encode(OrderedDict(a=1))[0]
        {'$dict': [['a', 1]]}
    """
    encoder = Encoder(remote)
    return encoder(value), encoder.buffers


class Ref:
    """An object of the receiver's, sent back to name it (``$ref``): a handle it gave earlier,
    or a name in the student's notebook."""

    def __init__(self, id_):
        if not (type(id_) is int or type(id_) is str):
            raise WireError(f"a reference is an int handle or a str name, got {type_path(id_)}")
        self.id = id_

    def __repr__(self):
        return f"Ref({self.id})"


class _Built:
    """A model to be built on the receiving side by a named factory (see :func:`build`)."""

    def __init__(self, factory, args, kwargs, state, training, source=None):
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.state, self.training, self.source = state, training, source

    def header(self, encoder, depth):
        header = {"factory": self.factory, "args": encoder(list(self.args), depth + 1),
                  "kwargs": encoder(dict(self.kwargs), depth + 1),
                  "state": encoder(dict(self.state), depth + 1), "training": self.training}
        if self.source is not None:
            header["source"] = self.source
        return header


def build(factory: str, *args, state=None, training=False, **kwargs):
    """A model the other side builds with ``factory(*args, **kwargs)`` and loads ``state`` into.

    Args:
        factory: a dotted path starting with one of :data:`FACTORIES`
            (``"pruning_kit.models.lenet_300_100"``, ``"torch.nn.Linear"``).
        *args, **kwargs: plain values for the factory.
        state: a state dict (name -> tensor) to load, or None to keep the factory's.
        training: the mode the model is left in.

    Example:
        >>> header, buffers = encode(build("torch.nn.Linear", 2, 1))
        >>> header["$build"]["factory"], len(buffers)
        ('torch.nn.Linear', 0)
    """
    if not (isinstance(factory, str) and factory.startswith(FACTORIES)):
        raise WireError(f"factory must be a dotted path starting with one of {FACTORIES}, "
                        f"got {factory!r}")
    return _Built(factory, args, kwargs, dict(state or {}), bool(training))


def build_from_source(source: str, name: str, *args, state=None, training=False, **kwargs):
    """Like :func:`build`, with a class the grader defines: its ``source`` is run on the other
    side (where ``torch``, ``nn`` and ``F`` are imported) and ``name`` is called.

    Sent only from the grader to the student's process, which runs the grader's code anyway.

    Example:
        >>> header, _ = encode(build_from_source("class Tiny(nn.Module): pass", "Tiny"))
        >>> header["$build"]["factory"], header["$build"]["source"][:5]
        ('Tiny', 'class')
    """
    if not (isinstance(source, str) and isinstance(name, str) and name.isidentifier()):
        raise WireError("build_from_source needs the class's source and its name")
    return _Built(name, args, kwargs, dict(state or {}), bool(training), source=source)


class Decoder:
    """Turns a header and its buffers back into values, checking every limit.

    Args:
        buffers: the frame's byte buffers.
        remote: called with the dict under a ``$remote`` tag; returns the object
            that stands for it here (the grader's proxy). Default: the dict.
        ref: called with the id of a ``$ref``; returns the object it names
            (the student's side keeps a table of them). Default: refuse.
        build: called with the ``$build`` dict (values decoded); returns the
            model. Default: refuse.
        dataset: called with ``(images, labels, name)``; default: a dict.
    """

    def __init__(self, buffers, *, remote=None, ref=None, build=None, dataset=None,
                 structures=False):
        self.buffers = buffers
        self.remote, self.ref, self.build, self.dataset = remote, ref, build, dataset
        self.structures = structures
        self.nodes = 0

    def __call__(self, obj, depth=0):
        self.nodes += 1
        if self.nodes > LIMITS["nodes"]:
            raise WireError(f"more than {LIMITS['nodes']:,} values in one frame")
        if depth > LIMITS["depth"]:
            raise WireError(f"value nested deeper than {LIMITS['depth']} levels")
        cls = type(obj)
        if obj is None or cls in (bool, int, float):
            return obj
        if cls is str:
            if len(obj) > LIMITS["string"]:
                raise WireError(f"a string of {len(obj):,} characters (at most "
                                f"{LIMITS['string']:,})")
            return obj
        if cls is list:
            return [self(v, depth + 1) for v in obj]
        if cls is not dict or len(obj) != 1:
            raise WireError(f"unexpected JSON value of type {cls.__name__}")
        (tag, body), = obj.items()
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise WireError(f"bad $float {body!r}")
            return float(body)
        if tag == "$tuple":
            return tuple(self(_list(body, tag), depth + 1))
        if tag == "$dict":
            out = {}
            for pair in _list(body, tag):
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("a $dict entry must be a [key, value] pair")
                key = pair[0] if not (type(pair[0]) is dict) else self(pair[0], depth + 1)
                if not (key is None or type(key) in (bool, int, float, str)):
                    raise WireError("a $dict key must be a str, int, float, bool or null")
                out[key] = self(pair[1], depth + 1)
            return out
        if tag == "$tensor":
            return self._tensor(_dict(body, tag))
        if tag == "$scalar":
            body = _dict(body, tag)
            value = self(body.get("value"), depth + 1)
            if type(value) not in (bool, int, float):
                raise WireError("a $scalar holds a bool, int or float")
            return value
        if tag == "$dataset":
            body = _dict(body, tag)
            images, labels = self(body.get("images"), depth + 1), self(body.get("labels"), depth + 1)
            if not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor)):
                raise WireError("a $dataset holds two tensors, images and labels")
            name = body.get("name", "data")
            name = name if type(name) is str else "data"
            if self.dataset is None:
                return {"images": images, "labels": labels, "name": name}
            return self.dataset(images, labels, name[:200])
        if tag == "$build":
            if self.build is None:
                raise WireError("this side does not build models ($build)")
            body = _dict(body, tag)
            spec = {"factory": body.get("factory"), "source": body.get("source"),
                    "args": self(body.get("args", []), depth + 1),
                    "kwargs": self(body.get("kwargs", {"$dict": []}), depth + 1),
                    "state": self(body.get("state", {"$dict": []}), depth + 1),
                    "training": bool(body.get("training", False))}
            return self.build(spec)
        if tag == "$module":
            if not self.structures:
                raise WireError("this side does not build models ($module)")
            return self._module(_dict(body, tag), depth)
        if tag == "$remote":
            body = _dict(body, tag)
            return body if self.remote is None else self.remote(body)
        if tag == "$ref":
            if self.ref is None or type(body) not in (int, str):
                raise WireError("a $ref must be an int or a str naming an object of this side")
            return self.ref(body)
        raise WireError(f"unknown tag {tag!r}")

    def _module(self, body, depth):
        import importlib

        path = body.get("class")
        if not (isinstance(path, str) and path.startswith(FACTORIES)):
            raise WireError(f"cannot build a module of class {path!r}")
        module_name, _, name = path.rpartition(".")
        cls = importlib.import_module(module_name)
        for part in name.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise WireError(f"{path} is not an nn.Module class")
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        for key, value in _dict(body.get("attrs", {}), "attrs").items():
            object.__setattr__(module, key, self(value, depth + 1))
        for key, value in _list(body.get("params", []), "params"):
            value = self(value, depth + 1) if value is not None else None
            module.register_parameter(key, None if value is None else torch.nn.Parameter(
                value, requires_grad=value.is_floating_point()))
        for key, value in _list(body.get("buffers", []), "buffers"):
            module.register_buffer(key, self(value, depth + 1) if value is not None else None)
        for key, child in _list(body.get("children", []), "children"):
            module.add_module(key, None if child is None else self._module(_dict(child, "child"),
                                                                             depth + 1))
        module.training = bool(body.get("training", False))  # children keep their own modes
        return module

    def _tensor(self, body):
        dtype = DTYPES.get(body.get("dtype"))
        shape = body.get("shape")
        index = body.get("buffer")
        if dtype is None:
            raise WireError(f"a tensor of unknown dtype {body.get('dtype')!r}")
        if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape) \
                or len(shape) > 16:
            raise WireError("a tensor's shape must be a list of at most 16 non-negative ints")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise WireError("a tensor names a buffer the frame does not have")
        numel = math.prod(shape)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        raw = self.buffers[index]
        if len(raw) != numel * itemsize:
            raise WireError(f"a tensor of shape {tuple(shape)} and dtype {body['dtype']} needs "
                            f"{numel * itemsize} bytes, its buffer has {len(raw)}")
        if numel == 0:
            tensor = torch.zeros(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
        if body.get("requires_grad") is True and tensor.is_floating_point():
            tensor.requires_grad_(True)
        shown = body.get("type")
        if type(shown) is str and shown not in ("torch.Tensor", "torch.nn.parameter.Parameter"):
            return _Shown(tensor, shown[:120])
        return tensor


class _Shown:
    """A tensor that arrived as something else (a numpy array, a tensor subclass)."""

    def __init__(self, tensor, type_name):
        self.tensor, self.type_name = tensor, type_name

    def __repr__(self):
        return f"<{self.type_name} of shape {tuple(self.tensor.shape)}>"


def shown_as(value):
    """``(tensor, type name)`` when ``value`` arrived as a numpy array or tensor subclass, else None.

    Example:
        >>> import numpy as np
        >>> tensor, name = shown_as(decode(*encode(np.zeros(2))))
        >>> name, tensor.dtype
        ('numpy.ndarray', torch.float64)
    """
    return (value.tensor, value.type_name) if isinstance(value, _Shown) else None


def decode(header, buffers, **hooks):
    """The value that :func:`encode` turned into ``(header, buffers)``; see :class:`Decoder`.

    Example:
        >>> decode({"$dict": [["a", {"$tuple": [1, {"$float": "nan"}]}]]}, [])
        {'a': (1, nan)}
        >>> decode({"$pickle": "..."}, [])
        Traceback (most recent call last):
        ...
        pruning_kit.course.wire.WireError: unknown tag '$pickle'
    """
    return Decoder(buffers, **hooks)(header)


def _list(body, tag):
    if type(body) is not list:
        raise WireError(f"{tag} must hold a list")
    return body


def _dict(body, tag):
    if type(body) is not dict:
        raise WireError(f"{tag} must hold an object")
    return body


# ---------------------------------------------------------------------------
# Frames on a stream (a pipe's file descriptor)

_PREFIX = struct.Struct("!4sII")
_LENGTH = struct.Struct("!Q")


def pack(message, buffers=()) -> bytes:
    """A frame: ``message`` (JSON-able) and its buffers, as bytes.

    Example:
        >>> unpack(pack({"op": "bye"}))
        ({'op': 'bye'}, [])
    """
    header = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([_PREFIX.pack(MAGIC, len(header), len(buffers)),
                     *(_LENGTH.pack(len(b)) for b in buffers), header, *buffers])


def unpack(data: bytes):
    """``(message, buffers)`` of one whole frame held in ``data``."""
    reader = _BytesReader(data)
    frame = read_frame(reader.read)
    if reader.offset != len(data):
        raise WireError("bytes after the end of the frame")
    return frame


class _BytesReader:
    def __init__(self, data):
        self.data, self.offset = data, 0

    def read(self, n):
        chunk = self.data[self.offset:self.offset + n]
        self.offset += len(chunk)
        if len(chunk) < n:
            raise WireClosed("the frame ends early")
        return chunk


def read_frame(read_exactly):
    """Read one frame with ``read_exactly(n) -> bytes``; checks every limit before reading on."""
    magic, header_len, count = _PREFIX.unpack(read_exactly(_PREFIX.size))
    if magic != MAGIC:
        raise WireError("not a frame of this protocol (bad magic bytes)")
    if header_len > LIMITS["header_bytes"]:
        raise WireError(f"a header of {header_len:,} bytes (at most {LIMITS['header_bytes']:,})")
    if count > LIMITS["buffers"]:
        raise WireError(f"{count:,} buffers in one frame (at most {LIMITS['buffers']:,})")
    lengths = [_LENGTH.unpack(read_exactly(_LENGTH.size))[0] for _ in range(count)]
    if any(n > LIMITS["buffer_bytes"] for n in lengths):
        raise WireError(f"a buffer of {max(lengths):,} bytes (at most "
                        f"{LIMITS['buffer_bytes']:,})")
    if sum(lengths) > LIMITS["total_bytes"]:
        raise WireError(f"{sum(lengths):,} bytes of buffers in one frame (at most "
                        f"{LIMITS['total_bytes']:,})")
    try:
        message = json.loads(read_exactly(header_len))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"the header is not JSON: {exc}") from None
    buffers = [read_exactly(n) for n in lengths]
    return message, buffers


class Stream:
    """Frames over a pair of file descriptors (a pipe to and from another process).

    Reads honour a deadline (``time.monotonic()`` seconds): :class:`WireTimeout`
    when no whole frame arrives in time, :class:`WireClosed` when the other
    side goes away.
    """

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd
        self.deadline = None

    def send(self, message, buffers=()):
        data = memoryview(pack(message, buffers))
        while data:
            try:
                written = os.write(self.write_fd, data)
            except BrokenPipeError:
                raise WireClosed("the other side closed the stream") from None
            data = data[written:]

    def receive(self, deadline=None):
        self.deadline = deadline
        return read_frame(self._read_exactly)

    def _read_exactly(self, n):
        parts, got = [], 0
        while got < n:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise WireTimeout("no answer before the deadline")
                ready, _, _ = select.select([self.read_fd], [], [], left)
                if not ready:
                    raise WireTimeout("no answer before the deadline")
            chunk = os.read(self.read_fd, min(n - got, 1 << 20))
            if not chunk:
                raise WireClosed("the other side closed the stream")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)
