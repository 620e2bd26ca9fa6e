"""Moved: the assignment checks live in :mod:`pruning_kit.course.checks`.

A notebook that still imports ``pruning_kit.grading`` was released by an older
version of the course. The instructor regenerates the assignments with
``make release`` and hands out the new ``assignments/`` notebooks.
"""

raise ImportError(
    "pruning_kit.grading moved to pruning_kit.course.checks: this assignment notebook was "
    "released by an older version of the course. Instructors: run `make release` and hand out "
    "the regenerated assignments/ notebooks. Students: ask for the current release of the "
    "assignment and copy your answers into it.")
