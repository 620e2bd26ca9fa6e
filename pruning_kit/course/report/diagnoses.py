"""What the class missed: the checker's diagnoses, ranked by how many students each one hit.

Every failed test cell carries a diagnosis code when the checker recognised the
mistake (``magnitude_mask/signed``: the smallest signed weights were pruned, not
the smallest magnitudes). The report counts students, not cells (a mistake
that fails a function's visible and hidden tests is one student), and for each
code shows the concept it points to (the contract clause whose check raises
it, from the grader's registry; a sentence of its own for what every function
can do wrong, such as ``not-written`` or ``timeout``), the lesson section that
teaches the function, and one failing message as an example with the
student's id and name taken out.

A failed cell without a code counts as ``<function>/<status>`` (``timeout``,
``grader-error``, ...) or, when it simply failed, ``<function>/unrecognised``,
unless another cell of the same student and function was recognised.

Example:
    >>> rows = [{"student": "ada", "function": "f", "status": "failed", "diagnosis": "f/signed",
    ...          "message": "ada's f(x) kept -5"},
    ...         {"student": "bob", "function": "f", "status": "failed", "diagnosis": "f/signed",
    ...          "message": "f(x) kept -5"}]
    >>> [(d.code, d.count, d.example) for d in rank(rows, names={"ada": ["ada"]})]
    [('f/signed', 2, 'f(x) kept -5')]
    >>> anonymise("Ada Lovelace's f failed for ada", ["ada", "Ada", "Lovelace"])
    "<student> <student>'s f failed for <student>"
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

FAILED = ("failed", "partial", "not-written", "kit-refused", "raised", "missing", "timeout",
          "crashed", "protocol", "grader-error")
"""Statuses of a test cell that lost points."""

UNRECOGNISED = "unrecognised"

GENERIC = {
    "not-written": "left as released: it still raises NotImplementedError",
    "missing": "not defined under the name the notebook gives",
    "raised": "raised an exception on an input the contract allows",
    "crashed": "stopped the process it ran in (os._exit, a crash of the interpreter, the memory "
               "limit)",
    "timeout": "did not return within the test's time limit (an endless loop, or far too much "
               "work)",
    "kit-refused": "called the kit function that does this work, which is off while it is graded",
    "protocol": "returned something that could not be sent back as plain data",
    "grader-error": "the grader could not check it: a problem of the grader, not the student",
    "type": "returns the wrong type",
    "shape": "returns the wrong shape",
    "dtype": "returns the wrong dtype",
    "in-place": "changes its input in place",
    "wrong": "returns a wrong value (no recognised mistake)",
    UNRECOGNISED: "failed a check without a recognised mistake",
}
"""What a diagnosis code's last part means when no contract clause names it."""


@dataclass
class Diagnosis:
    """One diagnosis code and the students it hit."""

    code: str
    function: str
    students: list = field(default_factory=list)
    concept: str = ""
    clause: int | None = None
    example: str = ""
    section: object = None

    @property
    def count(self):
        return len(self.students)

    @property
    def recognised(self):
        """True when the code names a recognised mistake (not a generic failure)."""
        return self.code.rpartition("/")[2] != UNRECOGNISED


def anonymise(message, names):
    """``message`` with each of ``names`` (id, first and last name) replaced by ``<student>``."""
    for name in sorted({n for n in names if n and len(n) > 1}, key=len, reverse=True):
        message = re.sub(rf"(?<![\w<]){re.escape(name)}(?![\w>])", "<student>", message,
                         flags=re.IGNORECASE)
    return message


def code_of(row):
    """The diagnosis code a failed result row counts under.

    Example:
        >>> code_of({"function": "f", "grade_id": "test_f_hidden", "status": "grader-error"})
        'f/grader-error'
        >>> code_of({"function": "f", "grade_id": "test_f_visible", "status": "failed"})
        'f/unrecognised'
    """
    if row.get("diagnosis"):
        return row["diagnosis"]
    status = row.get("status")
    suffix = status if status in GENERIC and status not in ("failed", "partial") else UNRECOGNISED
    return f"{row.get('function') or row['grade_id']}/{suffix}"


def concept_of(code, clauses):
    """``(text, clause number)`` of the concept ``code`` points to."""
    clause = clauses.get(code)
    if clause is not None:
        return clause.text, clause.number
    suffix = code.rpartition("/")[2]
    return GENERIC.get(suffix, GENERIC[UNRECOGNISED]), None


def _example(messages):
    """The message most students got (ties: the shortest, then the first alphabetically)."""
    counts = Counter(messages)
    return min(counts, key=lambda m: (-counts[m], len(m), m)) if counts else ""


def rank(results, *, clauses=None, names=None, sections=None):
    """The diagnoses of ``results`` (check result rows), most students first.

    Args:
        results: rows of :func:`pruning_kit.course.results.read`.
        clauses: ``{diagnosis code: Clause}`` from the grader's registry.
        names: ``{student: [id, first name, last name]}`` to take out of the examples.
        sections: ``{function: LessonSection}``.

    Returns:
        a list of :class:`Diagnosis`, by students hit (most first), then by code.
    """
    clauses, names, sections = clauses or {}, names or {}, sections or {}
    hit = defaultdict(set)
    messages = defaultdict(list)
    recognised = set()
    failed = [row for row in results if row["status"] in FAILED]
    for row in failed:
        if row.get("diagnosis"):
            recognised.add((row["student"], row.get("function")))
    for row in failed:
        if not row.get("diagnosis") and (row["student"], row.get("function")) in recognised:
            continue  # e.g. the visible test of a mistake the hidden test names
        code = code_of(row)
        hit[code].add(row["student"])
        messages[code].append(anonymise(row.get("message") or "",
                                        names.get(row["student"], [row["student"]])))
    out = []
    for code, students in hit.items():
        function = code.rpartition("/")[0]
        text, number = concept_of(code, clauses)
        out.append(Diagnosis(code, function, sorted(students), text, number,
                             _example(messages[code]), sections.get(function)))
    out.sort(key=lambda d: (-d.count, d.code))
    return out
