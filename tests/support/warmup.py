"""A temporary course with a tiny assignment, ``warmup``, graded by the real pipeline.

The real assignments take tens of seconds a submission; ``warmup`` grades in a
few seconds, so tests of the class machinery (hub, workers, report) stay lean.
It is graded like the real ones: its test cells are decided by the trusted
checker (this module is its registry: ``ASSIGNMENT``), the student's code runs
in the sandbox, one mistake costs only its function's points, a function that
kills its process costs only its own.

Its checks recognise two mistakes, so reports have diagnoses to count:
``add/subtracts`` and ``mean/off-by-one``.

Example:
    >>> ASSIGNMENT.function_of("test_mean_hidden"), sorted(POINTS)
    ('mean', ['add', 'mean'])
"""

import json
import shutil
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pruning_grader.judging import call, describe_call, fail
from pruning_grader.registry import Assignment
from pruning_kit.course import release

REPO = Path(__file__).resolve().parents[2]
NAME = ASSIGNMENT_NAME = "warmup"
POINTS = {"add": 2, "mean": 3}
VISIBLE_POINTS = 1

# The repository's configuration plus: this module as the warmup's registry (importable by the
# nbgrader processes), short limits for a busy test machine.
TEST_CONFIG = f"""
import sys as _sys
_sys.path.insert(0, {str(REPO / "tests")!r})
c.CheckedExecute.assignments = {{"warmup": "support.warmup:ASSIGNMENT"}}
c.Execute.timeout = 60
"""


# -- the course's versions and the grader's registry ------------------------------------------

def add(a, b):
    return a + b


def mean(xs):
    return sum(xs) / len(xs)


ASSIGNMENT = Assignment(NAME, functions=("add", "mean"), references=sys.modules[__name__])
ASSIGNMENT.clause("add", 1, "returns a + b", diagnosis="add/subtracts")
ASSIGNMENT.clause("mean", 1, "returns sum(xs) / len(xs)", diagnosis="mean/off-by-one")


def _check(function, args, expected, mistake):
    value = call(function, *args)
    if value != expected:
        hint = mistake(*args)
        fail(f"{describe_call(function, args)} returned {value!r}, expected {expected!r}"
             + (f". {hint[1]}" if hint and value == hint[0] else ""),
             hint[2] if hint and value == hint[0] else f"{function.__name__}/wrong")


@ASSIGNMENT.hidden("add", points=POINTS["add"] - VISIBLE_POINTS)
def add_hidden(student):
    for a, b in ((2, 3), (-1, 1), (0.5, 0.25)):
        _check(student["add"], (a, b), a + b,
               lambda a, b: (a - b, "you subtracted b instead of adding it", "add/subtracts"))


@ASSIGNMENT.hidden("mean", points=POINTS["mean"] - VISIBLE_POINTS)
def mean_hidden(student):
    for xs in ([1, 2, 3], [4.0], [2, 4, 6, 8]):
        _check(student["mean"], (xs,), sum(xs) / len(xs),
               lambda xs: (sum(xs) / (len(xs) + 1), "divide by len(xs), not len(xs) + 1",
                           "mean/off-by-one"))


# -- answers students give --------------------------------------------------------------------

CORRECT = {
    "add": "def add(a, b):\n    return a + b\n",
    "mean": "def mean(xs):\n    return sum(xs) / len(xs)\n",
}
ONE_WRONG = {**CORRECT, "mean": "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n"}
CRASHES = {**CORRECT, "mean": "import os\n\n\ndef mean(xs):\n    os._exit(1)\n"}


# -- the course on disk -----------------------------------------------------------------------

def _cell(kind, source, **meta):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if meta:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False,
                                     "grade": False, **meta}
    return cell


def source_notebook():
    """The instructor's version: solutions between markers, a visible and a hidden test cell
    per function (the hidden one only a comment: the grader holds its tests)."""
    cells = [_cell("markdown", "# Warm-up\nWrite `add` and `mean`.", grade_id="intro",
                   locked=True),
             _cell("code", "from pruning_kit.course.testing import expect", grade_id="setup",
                   locked=True)]
    visible = {"add": "expect(add, 1, 2, returns=3)\nexpect(add, -1, 1, returns=0)",
               "mean": "expect(mean, [1, 2, 3], returns=2.0)\nexpect(mean, [4.0], returns=4.0)"}
    for name, points in POINTS.items():
        body = CORRECT[name].rstrip().split("\n")
        cells.append(_cell("code", "\n".join([body[0], "    ### BEGIN SOLUTION", *body[1:],
                                              "    ### END SOLUTION"]),
                           grade_id=name, solution=True))
        cells.append(_cell("code", visible[name], grade_id=f"test_{name}_visible", grade=True,
                           locked=True, points=VISIBLE_POINTS))
        cells.append(_cell("code", f"# Hidden tests for {name}: the grader runs them.",
                           grade_id=f"test_{name}_hidden", grade=True, locked=True,
                           points=points - VISIBLE_POINTS))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    return nb


def make_course(root):
    """A course at ``root``: the repository's nbgrader_config.py (+ TEST_CONFIG), ``warmup``
    in solutions/, released to assignments/. Returns ``root``."""
    root = Path(root)
    (root / "solutions" / NAME).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "solutions" / NAME / f"{NAME}.ipynb")
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                             + TEST_CONFIG)
    release.release(root, [NAME])
    return root


def submission(root, code):
    """The released notebook with each function's cell replaced by ``code[name]``."""
    nb = json.loads((root / "assignments" / NAME / f"{NAME}.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in code:
            cell["source"] = code[gid]
    return nb


def submit(root, student, code):
    """Put ``student``'s notebook in ``submitted/<student>/warmup/`` (what nbgrader collects)."""
    folder = root / "submitted" / student / NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{NAME}.ipynb").write_text(json.dumps(submission(root, code), indent=1))


def copy_course(src, dst):
    """A copy of a course folder without its grading results."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
        "autograded", "feedback", "gradebook.db", ".nbgrader.log"))
    return Path(dst)
