"""nbgrader's Execute step with every test cell decided by the trusted checker.

``nbgrader_config.py`` puts :class:`CheckedExecute` in place of nbgrader's
``Execute``. It runs the submitted notebook in the sandboxed kernel as before
(written answers, plots and tables stay for the manual grader; a crash or a
hang there restarts the kernel, see :class:`pruning_kit.course.execute.RobustExecute`)
but never runs a test cell in that kernel. Meanwhile, in a thread of this
process, :func:`pruning_grader.checker.check_notebook` decides every test cell
against the student's answer cells in a separate sandboxed process; each test
cell then gets outputs written here:

- passed: a line saying so (nbgrader gives full points);
- partial credit: the points as the cell's result (nbgrader reads the number);
- failed: an error output whose one line is the checker's message (nbgrader gives 0).

Every result is also recorded with its status and diagnosis in the gradebook's
:data:`pruning_kit.course.results.TABLE`. Which checks belong to which
assignment: ``c.CheckedExecute.assignments`` (default: the module
``pruning_grader.assignments.<name>``, attribute ``ASSIGNMENT``). An assignment
with test cells and no registered checks is refused: its tests would otherwise
run in the student's kernel.

Example:
    >>> outputs_for({"status": "passed", "function": "f", "points": 3, "max_points": 3,
    ...              "grade_id": "test_f_hidden", "message": ""})[0]["text"]
    '✓ f: hidden tests passed (3 of 3 points)\\n'
"""

from __future__ import annotations

import importlib
import threading
import time

from nbformat import NotebookNode
from traitlets import Dict, Float

from pruning_kit.course import results as stored
from pruning_kit.course.execute import RobustExecute, is_test_cell

from .checker import check_notebook

ERROR_NAMES = {"timeout": "TimedOut", "crashed": "Crashed", "kit-refused": "KitRefused",
               "not-written": "NotWritten", "missing": "NotDefined", "protocol": "BadData",
               "grader-error": "GraderError", "raised": "Raised"}


def load_assignment(name, registries=None):
    """The :class:`~pruning_grader.registry.Assignment` of ``name``, or None when none exists."""
    spec = (registries or {}).get(name, f"pruning_grader.assignments.{name}:ASSIGNMENT")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, attribute or "ASSIGNMENT")


def _label(result):
    grade_id = result["grade_id"]
    kind = "visible tests" if grade_id.endswith("_visible") else "hidden tests" if \
        grade_id.endswith("_hidden") else "tests"
    return f"{result.get('function') or grade_id}: {kind}"


def outputs_for(result):
    """The outputs a test cell gets for a result (a :class:`~pruning_grader.checker.Result` dict)."""
    status = result["status"]
    points, most = result["points"], result["max_points"]
    if status == "passed":
        return [NotebookNode(output_type="stream", name="stdout",
                             text=f"✓ {_label(result)} passed ({points:g} of {most:g} points)\n")]
    if status == "partial":
        note = f" {result['message']}" if result.get("message") else ""
        return [NotebookNode(output_type="stream", name="stdout",
                             text=f"◐ {_label(result)}: {points:g} of {most:g} points.{note}\n"),
                NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                             data={"text/plain": f"{points:g}"})]
    name = ERROR_NAMES.get(status, "CheckFailed")
    message = result.get("message") or "failed"
    return [NotebookNode(output_type="error", ename=name, evalue=message,
                         traceback=[f"\x1b[0;31m✗ {_label(result)}\x1b[0m: {message}"])]


class CheckedExecute(RobustExecute):
    """RobustExecute whose test cells are decided by the trusted checker (module docstring)."""

    assignments = Dict(
        help="Assignment name -> 'module:attribute' of its pruning_grader Assignment (default "
             "pruning_grader.assignments.<name>:ASSIGNMENT).",
    ).tag(config=True)

    define_timeout = Float(
        60.0, help="Seconds each answer cell may take to run in the checker's student process "
                   "before it is skipped (code at a cell's top level runs there too).",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        info = (resources or {}).get("nbgrader", {})
        name = info.get("assignment")
        tests = [i for i, cell in enumerate(nb.cells) if is_test_cell(cell)]
        assignment = load_assignment(name, self.assignments) if name else None
        if tests and assignment is None:
            raise RuntimeError(
                f"assignment {name!r} has test cells but no trusted checks "
                f"(pruning_grader.assignments.{name}): grading refuses, because its tests "
                f"would run in the student's own process")
        outcome = {}
        workdir = (resources or {}).get("metadata", {}).get("path") or None

        def check():
            start = time.monotonic()
            try:
                outcome["results"] = check_notebook(
                    assignment, nb, workdir=workdir, config=self.config, log=self.log,
                    define_timeout=self.define_timeout)
            except BaseException as exc:  # noqa: BLE001 - reported below, grading goes on
                outcome["error"] = exc
            outcome["seconds"] = time.monotonic() - start

        thread = threading.Thread(target=check, name="trusted-checker", daemon=True)
        if tests:
            thread.start()
        nb, resources = super().preprocess(nb, resources, km)
        if not tests:
            return nb, resources
        thread.join()
        found = outcome.get("results", {})
        if "error" in outcome:
            self.log.error("The trusted checker failed: %r", outcome["error"])
        rows = []
        for index in tests:
            cell = nb.cells[index]
            meta = cell.metadata.get("nbgrader", {})
            grade_id = meta.get("grade_id")
            result = found.get(grade_id)
            row = result.as_dict() if result is not None else {
                "grade_id": grade_id, "function": assignment.function_of(grade_id),
                "points": 0.0, "max_points": float(meta.get("points") or 0),
                "status": "grader-error", "diagnosis": None, "seconds": 0.0,
                "message": "The grader could not check this cell "
                           f"({outcome.get('error')!r}); tell your instructor."}
            cell.outputs = outputs_for(row)
            rows.append(row)
        self.log.info("Trusted checks of %s: %d test cells in %.1f s", info.get("student"),
                      len(rows), outcome.get("seconds", 0.0))
        if info.get("db_url"):
            stored.record(info["db_url"], name, info.get("student", "?"),
                          info.get("notebook", "?"), rows)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        """Run a cell in the student's kernel, unless it is a test cell (the checker decides it)."""
        if is_test_cell(cell):
            cell.outputs = []
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
