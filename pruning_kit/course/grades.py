"""Reading the gradebook into one row per student: scores per part, notes, the CSV.

Example:
    >>> execution_notes  # doctest: +ELLIPSIS
    <function execution_notes at ...>
"""

import csv
import json
import re
from pathlib import Path

from .execute import KERNEL_DIED, NOT_RUN, is_test_cell, nbgrader_meta
from .preflight import function_of, source_cells


def autograded_notebook(course_dir, assignment, student, name):
    return Path(course_dir) / "autograded" / student / assignment / f"{name}.ipynb"


KIT_REFUSED = re.compile(r"raised KitRefused: (pk\.[\w.]+) is off while (\w+) is graded")


def execution_notes(path):
    """Notes on what happened in the test cells of an autograded notebook.

    A kernel that died or hung, a timeout, cells not run after too many
    crashes, and a graded function that called the kit's version of itself
    (the kit refuses while the function's tests run, so it earns nothing).
    """
    notes = []
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if not is_test_cell(cell):
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == KERNEL_DIED:
                notes.append(f"{gid}: the kernel died or hung here; restarted, later cells graded")
            elif out.get("ename") == "CellTimeoutError":
                notes.append(f"{gid}: timed out")
            elif out.get("ename") == NOT_RUN:
                notes.append(f"{gid}: not run (too many kernel crashes)")
            else:
                used = KIT_REFUSED.search(str(out.get("evalue", "")))
                if used:
                    notes.append(f"{gid}: {used.group(2)} calls {used.group(1)}, which is off "
                                 f"while it is graded (no points for the kit's version)")
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
        ``(columns, rows, autograded_max, manual_max)``: ``columns`` lists
        (key, label, max points) per function and written answer, in the order
        of the notebook; each row is a dict with ``student``, ``status``,
        ``autograded``, ``manual`` (empty until every written answer is graded
        by hand), ``manual_state`` (see :func:`manual_state`), per-part scores
        and ``notes``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    db = db_url or f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"
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
            for path in graded:
                if path.exists():
                    row["notes"] += execution_notes(path)
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
            row["manual"] = manual_total if graded_by_hand else ""
            row["manual_state"] = manual_state(answers, manual) if ok else "not graded"
            row.update({k: (v if ok else 0.0) for k, v in scores.items()})
            row.update(answers)
            rows.append(row)
    points = {**parts, **manual}
    columns = [(k, k, points[k]) for k in columns_order]
    return columns, rows, auto_max, sum(manual.values())


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


def write_csv(path, columns, rows, auto_max, manual_max):
    """Write one row per student: status, autograded score, each part, notes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (["student_id", "status", f"autograded ({auto_max:g})",
               f"manual ({manual_max:g}, empty until graded)"]
              + [f"{label} ({points:g})" for _, label, points in columns] + ["notes"])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            manual = f"{row['manual']:g}" if row["manual"] != "" else ""
            writer.writerow([row["student"], row["status"], f"{row['autograded']:g}", manual]
                            + [(f"{row[k]:g}" if isinstance(row[k], float) else row[k])
                               for k, _, _ in columns]
                            + ["; ".join(row["notes"])])
    return path
