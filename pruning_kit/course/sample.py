"""A test submission built from the reference solution, as a student would hand it in.

Copying ``solutions/<name>/`` into ``submitted/`` grades badly: its test cells
hold the hidden tests, so every one is "edited", and the solution cells keep
their ``### BEGIN/END SOLUTION`` lines. :func:`sample_submission` starts from the
released notebook instead and fills each solution cell (code and written
answers) with the reference code, the markers removed: grading it must give
full marks with no notes. Command line::

    python -m pruning_kit.course sample-submission pruning demo_student

Example:
    >>> strip_solution_markers("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION")
    'def f():\\n    return 1'
"""

import json
import re
from pathlib import Path

from .course_dir import check_assignment, course_config
from .execute import nbgrader_meta

MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*$")


def strip_solution_markers(source):
    """``source`` without its ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines."""
    return "\n".join(line for line in source.split("\n") if not MARKER.match(line))


def _text(source):
    return "".join(source) if isinstance(source, list) else source


def sample_notebook(released, source):
    """The released notebook (dict) with every solution cell filled from ``source``.

    Args:
        released: the released notebook, as parsed JSON.
        source: the source notebook (solutions and hidden tests), as parsed JSON.

    Returns:
        a new notebook dict; cells other than solution cells are the released ones.

    Raises:
        ValueError: a solution cell of the release has no counterpart in the source.
    """
    answers = {nbgrader_meta(c).get("grade_id"): _text(c["source"]) for c in source["cells"]
               if nbgrader_meta(c).get("solution")}
    notebook = json.loads(json.dumps(released))
    for cell in notebook["cells"]:
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        gid = meta.get("grade_id")
        if gid not in answers:
            raise ValueError(f"the released solution cell {gid!r} is not in the source notebook: "
                             f"the release is out of date (run `make release`)")
        cell["source"] = strip_solution_markers(answers[gid])
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def sample_submission(course_dir, assignment, student, *, force=False):
    """Write ``submitted/<student>/<assignment>/``: the release with the reference solutions in it.

    Args:
        course_dir: the course root (``nbgrader_config.py``).
        assignment: the assignment name.
        student: the student id to submit as (a folder name).
        force: replace an existing submission of that student.

    Returns:
        list of the notebook paths written.

    Raises:
        ValueError: unknown assignment, no release, a bad student id, or an existing
            submission without ``force``.
    """
    course_dir = Path(course_dir)
    check_assignment(course_dir, assignment)
    if not (isinstance(student, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", student)):
        raise ValueError(f"student must be a folder name of letters, digits, '_', '.', '-', "
                         f"got {student!r}")
    source_dir, release_dir = course_config(course_dir)
    target = course_dir / "submitted" / student / assignment
    if target.exists() and any(target.iterdir()) and not force:
        raise ValueError(f"{target} exists: pass --force to replace this submission")
    written = []
    for path in sorted((course_dir / source_dir / assignment).glob("*.ipynb")):
        released = course_dir / release_dir / assignment / path.name
        if not released.exists():
            raise ValueError(f"{released} is missing: release the assignment first "
                             f"(make release)")
        notebook = sample_notebook(json.loads(released.read_text()), json.loads(path.read_text()))
        target.mkdir(parents=True, exist_ok=True)
        out = target / path.name
        out.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(out)
    return written
