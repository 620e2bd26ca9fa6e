"""The submissions that need a human: what the autograder could not settle on its own.

- a function that crashed its process, ran out of time, sent back something
  that is not plain data, or could not be checked (a grader problem): the
  points it lost may not say what the student knew;
- a function that called the kit's version of itself (refused while graded);
- written answers nobody has graded yet;
- a submission after the due date (nbgrader records the time; the late
  policy is the instructor's);
- a submission with no check results at all (its grading failed or has not run).

Example:
    >>> from pruning_kit.course.report.gather import ClassData
    >>> data = ClassData("toy", None, "", students=["ada"], written={"essay": 2.0},
    ...                  written_scores={"ada": {"essay": None}}, seconds_late={"ada": 5400.0},
    ...                  results=[{"student": "ada", "function": "f", "status": "timeout",
    ...                            "grade_id": "test_f_hidden", "message": "f took too long"}])
    >>> [(n.kind, n.text) for n in needs_a_human(data)[0].reasons]  # doctest: +NORMALIZE_WHITESPACE
    [('timeout', 'f timed out: f took too long'), ('written', '1 written answer not graded yet
      (2 points)'), ('late', 'submitted 1 h 30 min after the due date')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUS_WORDS = {"crashed": "crashed", "timeout": "timed out", "protocol": "sent back bad data",
                "grader-error": "could not be checked", "kit-refused": "called the kit"}
"""Check statuses a human should look at, and how the report words them."""


@dataclass(frozen=True)
class Reason:
    kind: str
    text: str


@dataclass
class Attention:
    """One submission that needs a human, and why."""

    student: str
    reasons: list = field(default_factory=list)

    @property
    def kinds(self):
        return sorted({r.kind for r in self.reasons})


def duration(seconds):
    """``seconds`` in words: days, hours and minutes.

    Example:
        >>> duration(90061), duration(59), duration(3600)
        ('1 d 1 h 1 min', 'under a minute', '1 h')
    """
    minutes = int(seconds // 60)
    if minutes == 0:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def pending_written(data, student):
    """``(answers, points)`` of ``student``'s written answers no human has graded yet."""
    scores = data.written_scores.get(student, {})
    pending = [name for name in data.written if scores.get(name) is None]
    return len(pending), sum(data.written[name] for name in pending)


def needs_a_human(data):
    """The submissions of ``data`` (a :class:`~.gather.ClassData`) that need a human, by student."""
    graded = set(data.graded_students())
    by_student = {}
    seen = set()
    for row in data.results:
        status = row["status"]
        if status not in STATUS_WORDS:
            continue
        function = row.get("function") or row["grade_id"]
        if (row["student"], function, status) in seen:
            continue  # one line per function, not per test cell
        seen.add((row["student"], function, status))
        text = f"{function} {STATUS_WORDS[status]}: {row.get('message') or ''}".rstrip(": ")
        by_student.setdefault(row["student"], []).append(Reason(status, text))
    for student in data.students:
        reasons = by_student.setdefault(student, [])
        if student not in graded:
            reasons.insert(0, Reason("not-graded", "no check results: its grading failed or "
                                                   "has not run yet"))
        count, points = pending_written(data, student)
        if count:
            reasons.append(Reason("written", f"{count} written answer{'s' if count > 1 else ''} "
                                             f"not graded yet ({points:g} points)"))
        late = data.seconds_late.get(student) or 0.0
        if late > 0:
            reasons.append(Reason("late", f"submitted {duration(late)} after the due date"))
    return [Attention(student, reasons) for student, reasons in sorted(by_student.items())
            if reasons]


def hand_grading_progress(data):
    """``(submissions fully graded by hand, submissions, answers graded, answers)``."""
    answers = len(data.written) * len(data.students)
    pending = [pending_written(data, s)[0] for s in data.students]
    done = sum(1 for count in pending if count == 0) if data.written else 0
    return done, len(data.students), answers - sum(pending), answers
