"""The assignments' notebooks as tests use them: reference answers, and notebooks with other answers.

Example:
    >>> source = solution("pruning", "magnitude_mask")
    >>> source.startswith("def magnitude_mask(weight, sparsity):") and "BEGIN SOLUTION" not in source
    True
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("pruning", "binarized")


@lru_cache(maxsize=None)
def source_notebook(assignment):
    """The instructor's notebook ``solutions/<assignment>/<assignment>.ipynb`` as a dict."""
    return json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def strip_markers(source):
    """A solution cell's code without the ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(line for line in source.splitlines()
                     if not re.match(r"\s*### (BEGIN|END) SOLUTION", line)) + "\n"


def answer_cells(assignment):
    """``{grade_id: source}`` of the autograded answer cells of the instructor's notebook."""
    out = {}
    for cell in source_notebook(assignment)["cells"]:
        meta = _meta(cell)
        if cell["cell_type"] == "code" and meta.get("solution") and not meta.get("grade"):
            out[meta["grade_id"]] = "".join(cell["source"])
    return out


def solution(assignment, name):
    """The reference answer for ``name``: its answer cell without the solution markers."""
    return strip_markers(answer_cells(assignment)[name])


def notebook_with(assignment, answers=None):
    """The instructor's notebook with some answer cells replaced (``{grade_id: source}``); the
    others keep the reference answers. Locked and test cells stay as the gradebook has them."""
    nb = copy.deepcopy(source_notebook(assignment))
    answers = answers or {}
    for cell in nb["cells"]:
        meta = _meta(cell)
        if cell["cell_type"] != "code" or not meta.get("solution") or meta.get("grade"):
            continue
        gid = meta["grade_id"]
        cell["source"] = answers[gid] if gid in answers else strip_markers("".join(cell["source"]))
    return nb


def test_cells(assignment, function=None):
    """Grade ids of the test cells (of one graded function, when given), in notebook order."""
    out = []
    for cell in source_notebook(assignment)["cells"]:
        meta = _meta(cell)
        if cell["cell_type"] == "code" and meta.get("grade") and not meta.get("solution"):
            gid = meta["grade_id"]
            if function is None or gid in (f"test_{function}_visible", f"test_{function}_hidden"):
                out.append(gid)
    return out
