"""The grader's end of the boundary: a sandboxed student process and the requests it answers.

:class:`StudentProcess` starts ``python -m pruning_kit.course.agent`` in the
grading sandbox (bubblewrap, see :mod:`pruning_kit.course.sandbox`) with the
*kit view* of the assignment bound in place of ``pruning_kit`` (see
:mod:`.kit_view`), runs the notebook's setup cells and the student's answer
cells there once, and forks one :class:`Child` per test cell. Only frames of
plain data cross (:mod:`pruning_kit.course.wire`); every read has a deadline
and size limits. A child that crashes, hangs, blows its memory or sends
malformed data fails its own test cell: the sandbox is killed and the next
child starts from a fresh one (the answer cell that hung while being defined is
skipped from then on).

Example:
    >>> from pruning_grader.boundary import StudentError
    >>> str(StudentError("timeout", "magnitude_mask did not finish in 30 s"))
    'magnitude_mask did not finish in 30 s'
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from pruning_kit.course import wire
from pruning_kit.course.sandbox import Sandbox, python_path, sandbox_uid

PRELOAD = ("torch", "torch.nn.functional", "numpy", "pruning_kit", "pruning_kit.data",
           "pruning_kit.models", "pruning_kit.train", "pruning_kit.prune", "pruning_kit.metrics",
           "pruning_kit.quant", "pruning_kit.structured", "pruning_kit.lottery",
           # the first backward through a custom autograd.Function imports this (seconds);
           # imported once here, not again in every test cell's child
           "torch.fx.experimental.symbolic_shapes")
"""Modules the student process imports before any student code (paid once per submission)."""

START_TIMEOUT_S = 120.0
"""How long the student process may take to start and import the kit."""


class StudentError(BaseException):
    """What went wrong on the student's side, in words a student can act on.

    A ``BaseException``: check code that catches ``Exception`` (to report what a student's
    function raised) lets it through to the checker.

    ``kind`` is one of ``"raised"`` (the student's code raised; see ``raised``),
    ``"missing"`` (a name the notebook should define is not there),
    ``"timeout"``, ``"crashed"``, ``"unsendable"`` (a result that is not plain
    data) and ``"protocol"`` (malformed or oversized data).
    """

    def __init__(self, kind, message, *, raised=None):
        super().__init__(message)
        self.kind = kind
        self.raised = raised or {}

    @property
    def kit_refused(self):
        return bool(self.raised.get("kit_refused"))

    @property
    def not_implemented(self):
        return bool(self.raised.get("not_implemented"))


class StudentProcess:
    """One submission's sandboxed process: the answer cells defined once, a child per test cell.

    Args:
        cells: ``[{"id": grade_id, "source": code}]``: the setup cells and the answer cells,
            in notebook order.
        view: the kit view folder (it holds a ``pruning_kit`` package).
        workdir: the student's folder (the sandbox works in a copy of it).
        config: the course's traitlets config (``c.Sandbox.*``), or None.
        define_timeout: seconds each cell may take to run while being defined.
    """

    def __init__(self, cells, view, workdir=None, *, config=None, define_timeout=60.0, log=None):
        self.cells = list(cells)
        self.view = Path(view)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="pk-student-"))
        self.config = config
        self.define_timeout = define_timeout
        self.log = log
        self.skipped = {}       # cell id -> why it is no longer run (it hung or killed the process)
        self.cell_errors = {}   # cell id -> what it raised while being defined
        self.process = None
        self.stream = None
        self.sandboxed = None
        self.starts = 0

    # -- the process ------------------------------------------------------------------------

    def _command(self):
        settings = Sandbox(config=self.config) if self.config is not None else Sandbox()
        argv = [python_path(), "-m", "pruning_kit.course.agent"]
        problem = settings.problem()
        if problem is None:
            self.sandboxed = True
            args = settings.arguments(argv, self.workdir, env={}, uid=sandbox_uid(),
                                      kit_view=self.view)
            return args, None, None
        if not settings.allow_unsandboxed_grading:
            raise RuntimeError(problem)
        self.sandboxed = False
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(self.view),
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
               "MPLBACKEND": "Agg", "HOME": str(self.workdir),
               "PYTHONDONTWRITEBYTECODE": "1"}
        limit = settings.memory_limit_mb * 1024 * 1024

        def limits():  # pragma: no cover - runs in the child before exec
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return argv, env, limits

    def start(self):
        """Start the process, import the kit view, define the cells (skipping those that hung)."""
        self.stop()
        args, env, preexec = self._command()
        self.starts += 1
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, preexec_fn=preexec,
                                        cwd=str(self.workdir), start_new_session=True)
        self.stream = wire.Stream(self.process.stdout.fileno(), self.process.stdin.fileno())
        self._request({"op": "hello", "preload": list(PRELOAD)}, START_TIMEOUT_S)
        cells = [c for c in self.cells if c["id"] not in self.skipped]
        self.stream.send({"op": "define", "cells": cells})
        current = None
        while True:
            try:
                message, _ = self.stream.receive(time.monotonic() + self.define_timeout)
            except (wire.WireTimeout, wire.WireClosed, wire.WireError) as exc:
                self.stop()
                if current is None:
                    raise StudentError("crashed", f"the student process stopped while starting "
                                                  f"({exc})") from None
                self.skipped[current] = ("it did not finish in "
                                         f"{self.define_timeout:.0f} s" if isinstance(
                                             exc, wire.WireTimeout) else "it stopped the process")
                return self.start()
            if message.get("event") == "cell":
                current = message.get("id")
                continue
            break
        self.cell_errors = {c["id"]: c["error"] for c in message.get("cells", [])
                            if isinstance(c, dict) and c.get("error")}
        return self

    def stop(self):
        """Kill the sandbox and everything in it."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.kill()
            self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.process = self.stream = None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def _request(self, message, timeout, buffers=()):
        self.stream.send(message, buffers)
        reply, _ = self.stream.receive(time.monotonic() + timeout)
        if "error" in reply:
            raise StudentError("protocol", f"the student process refused the request: "
                                           f"{reply['error']}")
        return reply

    def child(self, under_test, standins=(), names=(), deadline=None):
        """A fresh child for one test cell (see :class:`Child`); restarts the process if needed."""
        if not self.alive():
            self.start()
        child = Child(self, deadline)
        try:
            self.stream.send({"op": "fork", "under_test": under_test,
                              "standins": [{"name": n, "source": s} for n, s in standins],
                              "names": list(names)})
        except (wire.WireClosed, OSError):
            self.stop()
            raise StudentError("crashed", "the student's process stopped") from None
        reply, _ = child.receive()
        if "error" in reply:
            child.finish(kill=True)
            raise StudentError("protocol", f"the course's versions of the other functions could "
                                           f"not be defined: {reply['error']}")
        child.defined = reply.get("defined", {})
        return child

    def close(self):
        if self.alive():
            try:
                self.stream.send({"op": "bye"})
                self.stream.receive(time.monotonic() + 5)
            except (wire.WireClosed, wire.WireTimeout, wire.WireError, OSError):
                pass
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Child:
    """The student's process for one test cell: requests with one deadline for the whole cell.

    Every method raises :class:`StudentError` when the student's side fails;
    after a timeout, a crash or malformed data the child is gone (and its
    sandbox with it): the next test cell gets a fresh one.
    """

    def __init__(self, process: StudentProcess, deadline=None):
        self.process = process
        self.deadline = deadline
        self.defined = {}
        self.finished = False
        self.failure = None

    # -- plumbing ---------------------------------------------------------------------------

    def receive(self):
        if self.finished:
            raise self.failure or StudentError("crashed", "the student process has already "
                                                          "stopped")
        try:
            message, buffers = self.process.stream.receive(self.deadline)
        except wire.WireTimeout:
            self._fail(StudentError("timeout", "it did not finish in time"))
        except wire.WireClosed:
            self._fail(StudentError("crashed", "the student's process stopped (it exited or ran "
                                               "out of memory)"))
        except wire.WireError as exc:
            self._fail(StudentError("protocol", f"the student's process sent malformed data "
                                                f"({exc})"))
        if message.get("event") == "exited":
            self.finished = True
            self.failure = StudentError("crashed", f"the student's code ended its process "
                                                   f"({message.get('status')})")
            raise self.failure
        return message, buffers

    def _fail(self, error):
        self.finished = True
        self.failure = error
        self.process.stop()
        raise error

    def request(self, message, payload=None, decode_as=None):
        """Send ``message`` (+ ``payload`` values encoded under their keys); the decoded reply."""
        if self.finished:
            raise self.failure or StudentError("crashed", "the student process has stopped")
        header, buffers = {}, []
        if payload:
            encoder = wire.Encoder(structures=True)  # the grader's own models go by structure
            for key, value in payload.items():
                header[key] = encoder(value)
            buffers = encoder.buffers
        try:
            self.process.stream.send({**message, **header}, buffers)
        except (wire.WireClosed, OSError):
            self._fail(StudentError("crashed", "the student's process stopped"))
        reply, reply_buffers = self.receive()
        if "missing" in reply:
            raise StudentError("missing", f"{reply['missing']} is not defined")
        if "raised" in reply:
            raised = reply["raised"] if isinstance(reply["raised"], dict) else {}
            raise StudentError("raised", str(raised.get("message", "?"))[:1000], raised=raised)
        if "unsendable" in reply:
            raise StudentError("unsendable", str(reply["unsendable"])[:500])
        if "error" in reply:
            self._fail(StudentError("protocol", f"the student's process refused the request "
                                                f"({str(reply['error'])[:300]})"))
        if "value" not in reply:
            self._fail(StudentError("protocol", "the student's process sent a reply without a "
                                                "value"))
        try:
            return wire.decode(reply["value"], reply_buffers, remote=decode_as)
        except wire.WireError as exc:
            self._fail(StudentError("protocol", f"the student's process sent malformed data "
                                                f"({exc})"))

    def finish(self, kill=False):
        """End the child (``bye``); the process reports how it ended. Kills on any trouble."""
        if self.finished:
            return
        self.finished = True
        if kill:
            self.process.stop()
            return
        try:
            self.process.stream.send({"op": "bye"})
            deadline = time.monotonic() + 10
            while True:
                message, _ = self.process.stream.receive(deadline)
                if message.get("event") == "exited":
                    return
        except (wire.WireClosed, wire.WireTimeout, wire.WireError, OSError):
            self.process.stop()
