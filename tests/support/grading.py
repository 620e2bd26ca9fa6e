"""Grading answers through the real trusted checker, sandbox on, without the nbgrader pipeline.

``grade("pruning", {"magnitude_mask": source})`` runs the checker on the instructor's notebook
with that answer cell replaced (the others keep the reference answers): the student's process
starts in the grading sandbox with the assignment's kit view, exactly as ``make grade`` does.

Example (slow: starts a sandboxed process):
    >>> results = grade("pruning", only=["test_magnitude_mask_visible"])  # doctest: +SKIP
    >>> results["test_magnitude_mask_visible"].status  # doctest: +SKIP
    'passed'
"""

from __future__ import annotations

from pruning_grader.checker import check_notebook
from pruning_grader.nbgrader import load_assignment

from .assignments import notebook_with, test_cells


def grade(assignment, answers=None, *, only=None, function=None):
    """``{grade_id: Result}`` of the test cells (``only`` those, or those of ``function``)."""
    if function is not None:
        only = test_cells(assignment, function)
    return check_notebook(load_assignment(assignment), notebook_with(assignment, answers),
                          only=only)


def points(results):
    """``{grade_id: points}`` of a grading."""
    return {gid: r.points for gid, r in results.items()}
