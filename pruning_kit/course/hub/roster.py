"""The class roster: who may log in to the course hub, with which role.

A CSV file with a header ``username,role`` (``instructor`` or ``student``) and
optional ``first_name,last_name,email``; LMS exports convert to it easily. See
``hub/roster.example.csv``. The students go into the gradebook with their names,
so the formgrader lists them before anyone submits.

Example:
    >>> import io
    >>> roster = read_roster(io.StringIO("username,role\\nteacher,instructor\\nada,student\\n"))
    >>> [(m.username, m.role) for m in roster]
    [('teacher', 'instructor'), ('ada', 'student')]
"""

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROLES = ("instructor", "student")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Member:
    """One line of the roster."""

    username: str
    role: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


def read_roster(source):
    """Read a roster CSV (a path or an open text file) into a list of :class:`Member`.

    Usernames are the hub names: lower case letters, digits, ``.``, ``_`` and
    ``-`` (nbgrader's exchange splits on ``+``). At least one instructor.

    Example:
        >>> read_roster(io.StringIO("username,role\\nAda Lovelace,student\\n"))
        Traceback (most recent call last):
        ...
        ValueError: roster line 2: username must be lower case letters, digits, '.', '_' or '-' (a hub name), got 'Ada Lovelace'
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"roster must be a CSV file (username,role,...), got {str(path)!r}")
        text = path.read_text(encoding="utf-8")
    else:
        text = source.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "username" not in rows[0] or "role" not in rows[0]:
        raise ValueError("roster must have a header line 'username,role' and one line per person")
    members, seen = [], set()
    for line, row in enumerate(rows, start=2):
        name = (row.get("username") or "").strip()
        role = (row.get("role") or "").strip().lower()
        if not USERNAME.match(name):
            raise ValueError(f"roster line {line}: username must be lower case letters, digits, "
                             f"'.', '_' or '-' (a hub name), got {name!r}")
        if role not in ROLES:
            raise ValueError(f"roster line {line}: role must be 'instructor' or 'student', "
                             f"got {role!r}")
        if name in seen:
            raise ValueError(f"roster line {line}: {name!r} is listed twice")
        seen.add(name)
        members.append(Member(name, role, *((row.get(k) or "").strip()
                                            for k in ("first_name", "last_name", "email"))))
    if not any(m.role == "instructor" for m in members):
        raise ValueError("roster must list at least one instructor (role 'instructor')")
    return members


def register_students(course_dir, members, db_url=None):
    """Add the roster's students (with their names) to the course gradebook for the formgrader."""
    from ..gradebook import configured, gradebook_url, open_gradebook

    url = gradebook_url(course_dir, db_url)
    course_id = configured(course_dir, "course_id") or "default_course"
    with open_gradebook(url, course_id) as gb:
        for m in members:
            if m.role == "student":
                gb.update_or_create_student(m.username, first_name=m.first_name or None,
                                            last_name=m.last_name or None,
                                            email=m.email or None)
