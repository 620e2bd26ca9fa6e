"""The trusted checker: decides every test cell of a submission in the grader's own process.

:func:`check_notebook` takes the cells of a submitted notebook (the setup cells
and test cells as the gradebook holds them, the student's answer cells as
submitted), starts the student's process in the sandbox with the assignment's
kit view (:mod:`.boundary`), defines the answer cells there once, and for every
test cell forks a fresh child and runs that cell's checks *here*:

- a visible test cell's own source (instructor code, from the gradebook) runs in
  this process with each graded name bound to a proxy of the student's object
  (:mod:`.remote`): the same ``expect`` calls students run with Validate, but
  every result arrives as plain data;
- a hidden test cell's source is only a comment: its checks are the
  assignment's registered hidden test (:mod:`.registry`).

Whatever the student's code did (replaced ``importlib.reload``, IPython's
input transformers or display hooks, the checks' module, comparison methods,
frames), it did it in another process: nothing here runs student code, and
nothing that arrives from there is unpickled or executed. Each test cell ends
as a :class:`Result`: points, a status, a message a student can act on, and a
diagnosis code for a recognised mistake.

Example:
    >>> Result("test_f_hidden", "f", 0, 3, "failed", "f(1) returned 2, expected 1").passed
    False
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from dataclasses import asdict, dataclass

from pruning_kit.course.testing import CheckFailed, RaisedRemotely, describe_exception

from .boundary import StudentError, StudentProcess
from .kit_view import view_for
from .registry import DEFAULT_TIME_LIMIT_S
from .remote import Student

STATUSES = ("passed", "partial", "failed", "not-written", "kit-refused", "raised", "missing",
            "timeout", "crashed", "protocol", "grader-error")
"""What a test cell can end as (``passed`` and ``partial`` earn points)."""

TIME_LIMIT = re.compile(r"^# grading time limit: (\d+) s\b", re.M)
FORK_TIMEOUT_S = 60


@dataclass
class Result:
    """The verdict on one test cell."""

    grade_id: str
    function: str | None
    points: float
    max_points: float
    status: str
    message: str = ""
    diagnosis: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self):
        return asdict(self)


def nbgrader_meta(cell):
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def source_of(cell):
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def cells_of(nb, assignment):
    """``(setup, answers, tests)`` of a notebook: lists of ``{"id", "source", "points"}``.

    Setup cells are the locked code cells the assignment names (``parameters``,
    ``setup``); answer cells are autograded solution code cells; test cells are
    graded code cells that are not solutions.
    """
    setup, answers, tests = [], [], []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        entry = {"id": grade_id, "source": source_of(cell), "points": meta.get("points") or 0}
        if grade_id in assignment.setup_cells:
            setup.append(entry)
        elif meta.get("solution") and not meta.get("grade"):
            answers.append(entry)
        elif meta.get("grade") and not meta.get("solution"):
            tests.append(entry)
    return setup, answers, tests


def time_limit_of(test, assignment):
    hidden = assignment.test_of(test["id"])
    if hidden is not None:
        return hidden.time_limit
    match = TIME_LIMIT.search(test["source"])
    return int(match.group(1)) if match else DEFAULT_TIME_LIMIT_S


def trusted_namespace(setup):
    """The setup cells run here (instructor code from the gradebook): the visible cells' globals."""
    namespace = {"__name__": "__visible_test__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in setup:
            code = "\n".join(line for line in cell["source"].splitlines()
                             if not line.lstrip().startswith(("%", "!")))
            exec(compile(code, f"<setup {cell['id']}>", "exec"), namespace)  # noqa: S102
    return namespace


def _not_defined(name, answers, process):
    cell = next((c for c in answers if c["id"] == name), None)
    error = process.cell_errors.get(name) if cell else None
    skipped = process.skipped.get(name) if cell else None
    if skipped:
        return (f"{name} is not defined: its answer cell was not run because {skipped} "
                f"(code at the top level of a cell runs when the cell is defined)")
    if error:
        return f"{name} is not defined: its answer cell raised {error}"
    return (f"{name} is not defined: write it in its answer cell and keep the name the notebook "
            f"gives")


def check_notebook(assignment, nb, *, workdir=None, config=None, log=None, only=None,
                   define_timeout=60.0):
    """Decide every test cell of ``nb`` (an nbformat notebook or dict); ``{grade_id: Result}``.

    Args:
        assignment: the :class:`~pruning_grader.registry.Assignment`.
        nb: the submitted notebook, its locked cells as the gradebook holds them.
        workdir: the student's folder (the student's process works in a copy).
        config: the course's traitlets config (sandbox settings).
        log: a logger.
        only: grade ids to check (default: every test cell).
    """
    setup, answers, tests = cells_of(nb, assignment)
    if only is not None:
        tests = [t for t in tests if t["id"] in only]
    results = {}
    if not tests:
        return results
    view = view_for(assignment.kit_paths())
    trusted = trusted_namespace(setup)
    with StudentProcess(setup + answers, view, workdir, config=config, log=log,
                        define_timeout=define_timeout) as process:
        for test in tests:
            results[test["id"]] = _check_cell(assignment, test, answers, process, trusted, log)
    return results


def _as_failure(function, exc):
    """What the student's function raised, worded as :func:`pruning_kit.course.testing.call`
    words it (``not-written``, ``kit-refused`` or ``raised``)."""
    if exc.not_implemented:
        return CheckFailed(f"{function} is not written yet: replace `raise NotImplementedError()` "
                           f"with your code", diagnosis=f"{function}/not-written")
    if exc.kit_refused:
        return CheckFailed(f"{function}: {str(exc).split(': ', 1)[-1]}",
                           diagnosis=f"{function}/kit-refused")
    return CheckFailed(f"{function} raised {describe_exception(exc)}",
                       diagnosis=f"{function}/raised")


def _check_cell(assignment, test, answers, process, trusted, log):
    start = time.monotonic()
    grade_id, points = test["id"], float(test["points"] or 0)
    function = assignment.function_of(grade_id)
    result = Result(grade_id, function, 0.0, points, "failed")
    if function is None:
        result.status, result.message = "grader-error", f"no check is registered for {grade_id}"
        return result
    child = None
    try:
        child = process.child(function, assignment.standins(function), assignment.functions,
                              deadline=time.monotonic() + FORK_TIMEOUT_S)
        child.deadline = time.monotonic() + time_limit_of(test, assignment)
        student = Student(child)
        if not student.defines(function):
            raise CheckFailed(_not_defined(function, answers, process),
                              diagnosis=f"{function}/missing")
        hidden = assignment.test_of(grade_id)
        if hidden is not None:
            earned = hidden.run(student)
        else:
            namespace = dict(trusted)
            namespace.update({name: student[name] for name in assignment.functions})
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(test["source"], f"<{grade_id}>", "exec"), namespace)  # noqa: S102
            earned = None
        if earned is None:
            result.points, result.status = points, "passed"
        else:
            result.points = max(0.0, min(points, float(earned)))
            result.status = "passed" if result.points >= points else "partial"
            result.message = getattr(hidden.run, "partial_message", "") if hidden else ""
    except CheckFailed as failed:
        result.message, result.diagnosis = str(failed), failed.diagnosis
        code = (failed.diagnosis or "").rpartition("/")[2]
        result.status = {"not-written": "not-written", "kit-refused": "kit-refused",
                         "raised": "raised", "missing": "missing"}.get(code, "failed")
        if getattr(failed, "points", None):  # partial credit that still says what was wrong
            result.points = max(0.0, min(points, float(failed.points)))
            result.status = "partial"
    except StudentError as error:
        result.status = {"timeout": "timeout", "crashed": "crashed", "missing": "missing",
                         "unsendable": "failed", "raised": "raised"}.get(error.kind, "protocol")
        limit = time_limit_of(test, assignment)
        result.message = {
            "timeout": f"{function} did not finish within the {limit:g} s this test allows "
                       f"(an endless loop, or far too much work?)",
            "crashed": f"{function} stopped the process it ran in: {error}",
            "unsendable": f"{function} returned something that is not plain data: {error}",
        }.get(error.kind, f"{function}: {error}")
        result.diagnosis = f"{function}/{result.status}"
    except RaisedRemotely as exc:  # a check that let the student's exception through
        failed = _as_failure(function, exc)
        result.message, result.diagnosis = str(failed), failed.diagnosis
        result.status = failed.diagnosis.rpartition("/")[2]
    except Exception as exc:  # noqa: BLE001 - a bug of the grader's: loud in the log, no points
        result.status = "grader-error"
        result.message = (f"The grader could not check {function} ({type(exc).__name__}: "
                          f"{exc}); tell your instructor.")
        if log is not None:
            log.exception("grader error in %s", grade_id)
    finally:
        if child is not None:
            child.finish(kill=result.status in ("timeout", "protocol"))
        result.seconds = round(time.monotonic() - start, 3)
    return result
