"""Reading the gradebook into one row per student: scores per part, notes, the CSV.

:func:`collect_grades` returns a ``pandas.DataFrame`` (one row per student; the
points each part is worth in ``frame.attrs``); :func:`write_csv` writes it with
``to_csv``. Notes about a test cell that crashed, timed out or called kit code
that is off while grading come from what the trusted checker recorded
(:mod:`.results`), never from parsing feedback text.

Example:
    >>> notes_from_results([{"grade_id": "test_f_hidden", "function": "f",
    ...                      "status": "kit-refused", "message": "f(x): pk.prune.magnitude ..."}])
    ['test_f_hidden: f called kit code that is off while it is graded (no points for the kit: f(x): pk.prune.magnitude ...)']
"""

from pathlib import Path

from . import results
from .preflight import function_of, source_cells


def autograded_notebook(course_dir, assignment, student, name):
    return Path(course_dir) / "autograded" / student / assignment / f"{name}.ipynb"


_NOTES = {
    "timeout": "{function} did not finish in time",
    "crashed": "{function} stopped the process it ran in",
    "kit-refused": "{function} called kit code that is off while it is graded (no points for "
                   "the kit: {message})",
    "protocol": "{function} sent data the grader could not read",
    "grader-error": "the grader could not check {function}: tell the course's maintainers",
    "missing": "{function} is not defined",
}


def notes_from_results(rows):
    """Sentences for the grades CSV about test cells that need a human look."""
    notes = []
    for row in rows:
        template = _NOTES.get(row.get("status"))
        if template:
            text = template.format(function=row.get("function") or row.get("grade_id"),
                                   message=(row.get("message") or "")[:160])
            notes.append(f"{row.get('grade_id')}: {text}")
    return notes


def collect_grades(course_dir, assignment, students, notes_by_student, db_url=None):
    """Read scores from the gradebook into one row per student.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        students: student ids, in the order of the rows.
        notes_by_student: {student: (gradable, notes)} from ``preflight``.
        db_url: the gradebook's SQLAlchemy URL (PostgreSQL when several graders
            share it); None reads the course's ``gradebook.db``.

    Returns:
        a ``pandas.DataFrame``, one row per student: ``student``, ``status``,
        ``autograded``, ``manual`` (None until every written answer is graded by
        hand), ``manual_state`` (see :func:`manual_state`), ``notes`` (a list),
        then one column per function and written answer in the notebook's order.
        ``frame.attrs``: ``points`` (part -> points it is worth),
        ``autograded_max``, ``manual_max``, ``parts`` (the part columns in order).
    """
    import pandas as pd
    from nbgrader.api import Gradebook, MissingEntry

    db = db_url or f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"
    try:
        recorded = results.read(db, assignment)
    except Exception:  # noqa: BLE001 - a gradebook graded before results were recorded
        recorded = []
    rows = []
    with Gradebook(db) as gb:
        record = gb.find_assignment(assignment)
        parts = {}  # part -> max points (functions by their tests; answers by cell)
        manual = {}
        order = []
        for notebook in record.notebooks:
            for cell in sorted(notebook.grade_cells, key=lambda c: c.id):
                if cell.cell_type == "code":
                    key = function_of(cell.name) or cell.name
                    if key not in parts:
                        order.append(key)
                    parts[key] = parts.get(key, 0) + cell.max_score
                else:
                    manual[cell.name] = cell.max_score
        auto_max = sum(parts.values())
        # functions and written answers in one order: the notebook's
        source_order = [gid for cells in source_cells(course_dir, assignment).values()
                        for gid in cells]
        position = {}
        for i, gid in enumerate(source_order):
            position.setdefault(function_of(gid) or gid, i)
        order.sort(key=lambda k: position.get(k, 1e9))
        columns_order = sorted(order + list(manual), key=lambda k: position.get(k, 1e9))
        for student in students:
            gradable, notes = notes_by_student.get(student, (True, []))
            row = {"student": student, "autograded": 0.0, "notes": list(notes)}
            graded = [autograded_notebook(course_dir, assignment, student, nb.name)
                      for nb in record.notebooks]
            ok = all(p.exists() for p in graded)
            row["notes"] += notes_from_results([r for r in recorded if r["student"] == student])
            scores = {key: 0.0 for key in order}
            answers = {name: "" for name in manual}
            manual_total = 0.0
            if ok:
                for notebook in record.notebooks:
                    try:
                        sub = gb.find_submission_notebook(notebook.name, assignment, student)
                    except MissingEntry:
                        ok = False
                        continue
                    for grade in sub.grades:
                        cell = grade.cell
                        if cell.cell_type == "code":
                            key = function_of(grade.name) or grade.name
                            scores[key] += grade.auto_score or 0.0
                        else:  # a written answer: graded by hand, or 0 when left blank
                            value = grade.manual_score
                            if value is None and not grade.needs_manual_grade:
                                value = grade.auto_score
                            if value is not None:
                                answers[grade.name] = value
                                manual_total += value
            if ok:
                row["status"] = "graded" + (" (review notes)" if any(
                    n.startswith("review:") for n in row["notes"]) else "")
            elif not gradable:
                row["status"] = "not graded: unreadable notebook"
            else:
                row["status"] = (f"not graded: nbgrader failed on this notebook (see "
                                 f"autograded/autograde_{assignment}.log)")
            row["autograded"] = sum(scores.values()) if ok else 0.0
            graded_by_hand = ok and all(v != "" for v in answers.values())
            row["manual"] = manual_total if graded_by_hand else None
            row["manual_state"] = manual_state(answers, manual) if ok else "not graded"
            row.update({k: (v if ok else 0.0) for k, v in scores.items()})
            row.update({k: (None if v == "" else v) for k, v in answers.items()})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["student", "status", "autograded", "manual",
                                        "manual_state", "notes", *columns_order])
    frame.attrs.update(points={**parts, **manual}, parts=list(columns_order),
                       autograded_max=auto_max, manual_max=sum(manual.values()))
    return frame


def manual_state(answers, max_points):
    """Where the hand grading of one submission stands, in words.

    Args:
        answers: {answer cell: points given, or "" while not graded yet}.
        max_points: {answer cell: points it is worth}.

    Example:
        >>> manual_state({"a": "", "b": 2.0}, {"a": 2, "b": 2})
        'not graded yet: 1 of 2 answers (2 points)'
        >>> manual_state({"a": 1.0, "b": 2.0}, {"a": 2, "b": 2})
        'graded: 3/4'
        >>> manual_state({}, {})
        'none to grade'
    """
    if not max_points:
        return "none to grade"
    pending = [name for name, value in answers.items() if value == ""]
    if pending:
        points = sum(max_points[name] for name in pending)
        return (f"not graded yet: {len(pending)} of {len(max_points)} answers "
                f"({points:g} points)")
    given = sum(value for value in answers.values())
    return f"graded: {given:g}/{sum(max_points.values()):g}"


def write_csv(frame, path):
    """Write the grades (:func:`collect_grades`) as CSV: one row per student, the points each
    column is worth in its header, notes joined with "; "."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = frame.attrs["points"]
    out = frame.copy()
    out["notes"] = out["notes"].map("; ".join)
    out = out[["student", "status", "autograded", "manual", *frame.attrs["parts"], "notes"]]
    out = out.rename(columns={
        "student": "student_id",
        "autograded": f"autograded ({frame.attrs['autograded_max']:g})",
        "manual": f"manual ({frame.attrs['manual_max']:g}, empty until graded)",
        **{part: f"{part} ({points[part]:g})" for part in frame.attrs["parts"]}})
    out.to_csv(path, index=False, float_format="%g")
    return path
