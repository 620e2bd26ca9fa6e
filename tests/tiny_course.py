"""A temporary course with a tiny assignment, for tests of the class machinery (hub, workers).

The real assignments take ~10 s a submission to grade; ``warmup`` grades in
about a second past the kernel start, so hub and pool tests stay lean. It has
two functions, each with its own test cell, like the real ones: a mistake in
one costs only its points, and a function that kills the kernel costs only its
own (RobustExecute restarts the kernel).
"""

import json
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pruning_kit.course import release

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "warmup"
POINTS = {"add": 2, "mean": 3}

# The repository's configuration plus: no check modules preloaded into the kernel (this
# assignment tests plain Python), short limits for a busy test machine.
TEST_CONFIG = """
c.RobustExecute.preamble = ""
c.Execute.timeout = 60
c.RobustExecute.test_timeout = 20
"""

CORRECT = {
    "add": "def add(a, b):\n    return a + b\n",
    "mean": "def mean(xs):\n    return sum(xs) / len(xs)\n",
}
ONE_WRONG = {**CORRECT, "mean": "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n"}
CRASHES = {**CORRECT, "mean": "import os\n\n\ndef mean(xs):\n    os._exit(1)\n"}


def _cell(kind, source, **meta):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if meta:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False,
                                     "grade": False, **meta}
    return cell


def source_notebook():
    """The instructor's version: solutions between markers, one test cell per function."""
    cells = [_cell("markdown", "# Warm-up\nWrite `add` and `mean`.", grade_id="intro",
                   locked=True)]
    for name, points in POINTS.items():
        body = CORRECT[name].rstrip().split("\n")
        cells.append(_cell("code", "\n".join([body[0], "    ### BEGIN SOLUTION", *body[1:],
                                              "    ### END SOLUTION"]),
                           grade_id=name, solution=True))
        test = {"add": "assert add(1, 2) == 3\nassert add(-1, 1) == 0",
                "mean": "assert mean([1, 2, 3]) == 2\nassert mean([4.0]) == 4.0"}[name]
        cells.append(_cell("code", test, grade_id=f"test_{name}_visible", grade=True,
                           locked=True, points=points))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    return nb


def make_course(root):
    """A course at ``root``: the repository's nbgrader_config.py (+ TEST_CONFIG), ``warmup``
    in solutions/, released to assignments/. Returns ``root``."""
    root = Path(root)
    (root / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                             + TEST_CONFIG)
    release.release(root, [ASSIGNMENT])
    return root


def submission(root, code):
    """The released notebook with each function's cell replaced by ``code[name]``."""
    nb = json.loads((root / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in code:
            cell["source"] = code[gid]
    return nb


def submit(root, student, code):
    """Put ``student``'s notebook in ``submitted/<student>/warmup/`` (what nbgrader collects)."""
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(submission(root, code), indent=1))


def copy_course(src, dst):
    """A copy of a course folder without its grading results."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
        "autograded", "feedback", "gradebook.db", ".nbgrader.log"))
    return Path(dst)
