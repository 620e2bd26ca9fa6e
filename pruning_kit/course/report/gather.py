"""Everything the class report shows, read once: gradebook, check results, notebooks, registry.

- nbgrader's gradebook (sqlite or PostgreSQL): who submitted and when, the due
  date, the points of every cell, the written answers and whether a human has
  graded them yet;
- the checker's verdicts (:mod:`pruning_kit.course.results`, the table
  ``pk_check_results`` beside the grades): status, diagnosis code, message per
  test cell, written by the trusted side of grading;
- the course folder: each student's answer code cells as submitted and the
  released notebook's version of those cells (the template);
- the grader's registry of the assignment, when the grader package is
  installed: its graded functions and its contract clauses (the concept each
  diagnosis code points to). Only the registry is read: never a reference
  solution or a hidden test.

Example:
    >>> data = ClassData("toy", Path("."), "sqlite:///:memory:")
    >>> data.class_size, data.functions
    (0, [])
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import results as stored
from ..gradebook import gradebook_url, open_gradebook
from ..preflight import function_of as default_function_of

DEFAULT_DIRS = {"release_directory": "release", "submitted_directory": "submitted",
                "autograded_directory": "autograded"}


@dataclass
class ClassData:
    """One assignment's class as the report sees it (see the module docstring)."""

    assignment: str
    course_dir: Path
    db_url: str
    students: list = field(default_factory=list)
    names: dict = field(default_factory=dict)
    functions: list = field(default_factory=list)
    function_points: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    written: dict = field(default_factory=dict)
    written_scores: dict = field(default_factory=dict)
    submitted_at: dict = field(default_factory=dict)
    seconds_late: dict = field(default_factory=dict)
    duedate: datetime.datetime | None = None
    clauses: dict = field(default_factory=dict)
    answers: dict = field(default_factory=dict)
    templates: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def class_size(self):
        """How many students submitted."""
        return len(self.students)

    def scores(self):
        """``{student: {function: points}}`` from the check results (0 for a missing cell)."""
        out = {student: {f: 0.0 for f in self.functions} for student in self.students}
        for row in self.results:
            if row["student"] in out and row["function"] in out[row["student"]]:
                out[row["student"]][row["function"]] += float(row["points"] or 0.0)
        return out

    def graded_students(self):
        """Students with check results (the others were never graded, or grading failed)."""
        return sorted({row["student"] for row in self.results} & set(self.students))


def course_config(course_dir):
    """The course's ``nbgrader_config.py`` as traitlets loads it (an empty config without one)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def _setting(config, section, name, default=None):
    if section in config and name in config[section]:
        return config[section][name]
    return default


def load_registry(assignment, config):
    """The grader's :class:`~pruning_grader.registry.Assignment`, or None (with the reason)."""
    try:
        from pruning_grader.nbgrader import load_assignment
    except ImportError:
        return None, "the grader package (grader/) is not installed: no clause texts"
    try:
        registry = load_assignment(assignment, _setting(config, "CheckedExecute", "assignments",
                                                        {}))
    except Exception as exc:  # noqa: BLE001 - the report goes on without clause texts
        return None, f"the grader's registry of {assignment} could not be loaded ({exc!r})"
    if registry is None:
        return None, f"no grader registry for {assignment}: no clause texts"
    return registry, None


def _source(cell):
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def answer_cells(nb):
    """``{grade_id: source}`` of the code cells a student writes (nbgrader solution cells)."""
    out = {}
    for cell in nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            out[meta["grade_id"]] = _source(cell)
    return out


def _read_notebook(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_gradebook(data, function_of):
    from nbgrader.api import MissingEntry

    if data.db_url.startswith("sqlite:///") and not Path(data.db_url[10:]).is_file():
        raise ValueError(f"no gradebook at {data.db_url[10:]}: grade the assignment first "
                         f"(make grade ASSIGNMENT={data.assignment}), or pass its --db URL")
    with open_gradebook(data.db_url) as gb:
        try:
            record = gb.find_assignment(data.assignment)
        except MissingEntry:
            known = sorted(a.name for a in gb.assignments)
            raise ValueError(f"the gradebook has no assignment {data.assignment!r} (it has "
                             f"{known}): grade it first") from None
        data.duedate = record.duedate
        notebooks = [nb.name for nb in record.notebooks]
        order = []
        for notebook in record.notebooks:
            manual = ({c.name for c in notebook.solution_cells}
                      | {c.name for c in notebook.task_cells})
            for cell in sorted(notebook.grade_cells, key=lambda c: c.id):
                if cell.name in manual:
                    data.written[cell.name] = float(cell.max_score or 0.0)
                    continue
                function = function_of(cell.name) or cell.name
                if function not in data.function_points:
                    order.append(function)
                data.function_points[function] = (data.function_points.get(function, 0.0)
                                                  + float(cell.max_score or 0.0))
        for submission in gb.assignment_submissions(data.assignment):
            student = submission.student
            data.students.append(student.id)
            data.names[student.id] = [n for n in (student.id, student.first_name,
                                                  student.last_name) if n]
            data.submitted_at[student.id] = submission.timestamp
            data.seconds_late[student.id] = float(submission.total_seconds_late or 0.0)
            scores = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.name not in data.written:
                        continue
                    value = grade.manual_score
                    if value is None and not grade.needs_manual_grade:
                        value = grade.auto_score  # a blank answer nbgrader scored itself
                    scores[grade.name] = None if value is None else float(value)
            data.written_scores[student.id] = scores
    data.students.sort()
    return notebooks, order


def gather(course_dir, assignment, db_url=None):
    """Read everything the report of ``assignment`` needs; a :class:`ClassData`.

    Args:
        course_dir: the course root (``nbgrader_config.py``, ``submitted/``, the release).
        assignment: the assignment's name.
        db_url: the gradebook's SQLAlchemy URL (default: the course's, see
            :func:`pruning_kit.course.gradebook.gradebook_url`).
    """
    course_dir = Path(course_dir).resolve()
    config = course_config(course_dir)
    url = gradebook_url(course_dir, db_url)
    data = ClassData(assignment, course_dir, url)
    registry, problem = load_registry(assignment, config)
    if problem:
        data.notes.append(problem)
    function_of = registry.function_of if registry is not None else default_function_of
    notebooks, order = _read_gradebook(data, function_of)
    submitted = set(data.students)
    data.results = [row for row in stored.read(url, assignment) if row["student"] in submitted]
    if registry is not None:
        data.clauses = {}
        for clause in registry.clauses:
            data.clauses.setdefault(clause.diagnosis, clause)
        data.functions = [f for f in registry.functions if f in data.function_points] or list(
            registry.functions)
    else:
        data.functions = order
    dirs = {name: _setting(config, "CourseDirectory", name, default)
            for name, default in DEFAULT_DIRS.items()}
    for name in notebooks:
        released = _read_notebook(course_dir / dirs["release_directory"] / assignment
                                  / f"{name}.ipynb")
        if released is None:
            data.notes.append(f"no released {name}.ipynb: the similarity check counts the "
                              f"template's text as the students' own")
            continue
        data.templates.update(answer_cells(released))
    for student in data.students:
        code = {}
        for name in notebooks:
            nb = None
            for folder in (dirs["submitted_directory"], dirs["autograded_directory"]):
                nb = _read_notebook(course_dir / folder / student / assignment / f"{name}.ipynb")
                if nb is not None:
                    break
            if nb is not None:
                code.update(answer_cells(nb))
        data.answers[student] = code
    return data
