"""An assignment as the grader knows it: graded names, the course's versions, the hidden tests.

Each assignment module (``pruning_grader.assignments.pruning``, ...) builds one
:class:`Assignment`: the functions students write, in notebook order; for each,
the kit code that would do its work (removed from the student's process while
grading, see :mod:`.kit_view`); which other graded functions it calls (while it
is tested those are the course's versions, so one mistake costs only its own
points); the course's versions themselves (``references``, a module whose
functions and classes carry the graded names); and its hidden tests.

How to add a graded function (the one pattern):

1. In ``solutions/<assignment>/<assignment>.ipynb``: a markdown cell with its
   contract, an answer cell (``grade_id`` = the function's name) between
   ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers, a visible test cell
   ``test_<name>_visible`` that calls :func:`pruning_kit.course.testing.expect`
   (or a check helper of ``testing``) with values spelled out in the cell, and a
   hidden test cell ``test_<name>_hidden`` whose source is only a comment: the
   grader holds the tests.
2. Here: the name in ``functions``; its course version in the references module;
   ``kit`` entries for kit code that does the same work; ``uses`` for the other
   graded names it calls.
3. In the assignment's module: its contract as numbered clauses (``clauses``),
   the checks of each clause, and the hidden test::

       @ASSIGNMENT.hidden("magnitude_mask", points=3)
       def magnitude_mask_hidden(student):
           check_magnitude_mask(student["magnitude_mask"], [[-5.0, 0.1], [2.0, -0.2]], 0.5)

   A hidden test raises :class:`~pruning_kit.course.testing.CheckFailed` (with a
   diagnosis code for a recognised mistake) when something is wrong; it returns
   None for full points, or a number of points for partial credit.
4. In ``tests/``: a mutant per clause (``tests/support/mutation.py``).

Example:
    >>> a = Assignment("toy", functions=("add",))
    >>> @a.hidden("add", points=2)
    ... def add_hidden(student):
    ...     pass
    >>> a.test_of("test_add_hidden").points, a.function_of("test_add_visible")
    (2, 'add')
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

DEFAULT_TIME_LIMIT_S = 30
"""Seconds a test cell may take unless it declares more (tests call functions on small inputs)."""


@dataclass(frozen=True)
class HiddenTest:
    """One hidden test cell: its grade id, the function it grades, its points and time limit."""

    grade_id: str
    function: str
    points: float
    run: Callable
    time_limit: float = DEFAULT_TIME_LIMIT_S


@dataclass(frozen=True)
class Clause:
    """One numbered clause of a graded function's contract and how it is checked.

    ``check`` names what decides it (a check function and the diagnosis code it
    raises); ``mutant`` names the planted mistake in ``tests/`` that breaks only
    this clause; ``note`` says what cannot be checked exactly and what is checked instead.
    """

    function: str
    number: int
    text: str
    diagnosis: str
    note: str = ""


@dataclass
class Assignment:
    """The grader's registry of one assignment (see the module docstring)."""

    name: str
    functions: tuple = ()
    kit: dict = field(default_factory=dict)
    uses: dict = field(default_factory=dict)
    references: object = None
    setup_cells: tuple = ("parameters", "setup")
    tests: dict = field(default_factory=dict)
    clauses: list = field(default_factory=list)

    def hidden(self, function, *, points, time_limit=DEFAULT_TIME_LIMIT_S, grade_id=None):
        """Register a hidden test of ``function`` (decorator)."""
        if function not in self.functions:
            raise ValueError(f"{function!r} is not a graded function of {self.name}: "
                             f"{list(self.functions)}")
        grade_id = grade_id or f"test_{function}_hidden"

        def register(run):
            if grade_id in self.tests:
                raise ValueError(f"{grade_id} is registered twice")
            self.tests[grade_id] = HiddenTest(grade_id, function, points, run, time_limit)
            return run

        return register

    def test_of(self, grade_id):
        """The hidden test registered for ``grade_id``, or None."""
        return self.tests.get(grade_id)

    def function_of(self, grade_id):
        """The graded function a test cell checks (``test_<name>_visible`` / ``_hidden``)."""
        test = self.tests.get(grade_id)
        if test is not None:
            return test.function
        for name in sorted(self.functions, key=len, reverse=True):
            if grade_id in (f"test_{name}_visible", f"test_{name}_hidden") or grade_id.startswith(
                    f"test_{name}_"):
                return name
        return None

    def kit_paths(self):
        """Every kit path of the assignment: all of them are missing from the grading view."""
        return sorted({path for paths in self.kit.values() for path in paths})

    def standins(self, function):
        """``[(name, source)]`` of the course's versions of the graded names ``function`` uses.

        Only those: the course's version of the function under test never enters
        the student's process.
        """
        out = []
        for name in self.uses.get(function, ()):
            if name == function:
                continue
            obj = getattr(self.references, name, None)
            if obj is None:
                raise ValueError(f"{self.name}: no course version of {name!r} in "
                                 f"{getattr(self.references, '__name__', self.references)}")
            out.append((name, inspect.getsource(obj)))
        return out

    def reference(self, name):
        """The course's version of graded ``name`` (for the grader's own use)."""
        if name not in self.functions:
            raise ValueError(f"{name!r} is not a graded function of {self.name}")
        return getattr(self.references, name)

    def clause(self, function, number, text, *, diagnosis, note=""):
        """Record clause ``number`` of ``function``'s contract (see :class:`Clause`)."""
        self.clauses.append(Clause(function, number, text, diagnosis, note))
