"""Which gradebook a course grades into, and getting it ready before graders start.

sqlite (``gradebook.db`` in the course root) is the default for one instructor
grading on one machine. When several processes or people grade at once, the
gradebook lives in PostgreSQL: pass ``--db postgresql://USER@HOST:PORT/DB``
(``make grade DB=...``), or set ``c.CourseDirectory.db_url`` in
``nbgrader_config.py``. A password belongs in ``~/.pgpass`` or ``PGPASSWORD``,
not in the URL (the URL shows in the process list).

The PostgreSQL driver is psycopg 3 (``psycopg[binary]``, installed with the
course): SQLAlchemy's default for ``postgresql://`` since 2.1. The course names
it in every URL it hands on (``postgresql+psycopg://``), so the plain spelling
means psycopg 3 whatever SQLAlchemy's default; ``postgresql+psycopg2://`` is
refused with a message, as psycopg2 is not installed.

Two nbgrader processes that create an empty gradebook at the same time break it
(PostgreSQL: a unique violation; sqlite: a database ``nbgrader db upgrade``
can't repair), so :func:`ensure_gradebook` records the assignment and the
students once, before any worker starts.

Example:
    >>> gradebook_url("/srv/course", "postgresql://grader@127.0.0.1:5432/gradebook")
    'postgresql+psycopg://grader@127.0.0.1:5432/gradebook'
    >>> db_options("postgresql://grader@db/gradebook")
    ['--CourseDirectory.db_url=postgresql+psycopg://grader@db/gradebook']
    >>> db_options(None)
    []
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from .course_dir import run_nbgrader

POSTGRESQL = "postgresql://"
PSYCOPG = "postgresql+psycopg://"       # psycopg 3, the driver the course installs
DB_SCHEMES = ("sqlite:///", POSTGRESQL, PSYCOPG)


def check_db_url(db_url):
    """``db_url`` with its PostgreSQL driver named; ``ValueError`` unless the course can open it.

    Accepted: ``sqlite:///PATH``, ``postgresql://...`` and ``postgresql+psycopg://...``
    (both psycopg 3). Returned: the same URL, a PostgreSQL one as ``postgresql+psycopg://``.

    Example:
        >>> check_db_url("postgresql://grader@db:5432/gradebook")
        'postgresql+psycopg://grader@db:5432/gradebook'
        >>> check_db_url("mysql://x/y")
        Traceback (most recent call last):
        ...
        ValueError: db_url must be a sqlite:/// or postgresql:// URL (the gradebook nbgrader writes), got 'mysql://x/y'
        >>> check_db_url("postgresql+psycopg2://grader@db/gradebook")
        Traceback (most recent call last):
        ...
        ValueError: db_url names the psycopg2 driver, which the course does not install: write postgresql://grader@db/gradebook (psycopg 3)
    """
    if isinstance(db_url, str) and db_url.startswith("postgresql+psycopg2://"):
        plain = POSTGRESQL + db_url[len("postgresql+psycopg2://"):]
        raise ValueError(f"db_url names the psycopg2 driver, which the course does not install: "
                         f"write {plain} (psycopg 3)")
    if not isinstance(db_url, str) or not db_url.startswith(DB_SCHEMES):
        raise ValueError(f"db_url must be a sqlite:/// or postgresql:// URL (the gradebook "
                         f"nbgrader writes), got {db_url!r}")
    if db_url.startswith(POSTGRESQL):
        return PSYCOPG + db_url[len(POSTGRESQL):]
    return db_url


def configured(course_dir, name):
    """``c.CourseDirectory.<name>`` as the course's ``nbgrader_config.py`` sets it, or None.

    Example:
        >>> import pruning_kit
        >>> configured(Path(pruning_kit.__file__).parents[1], "source_directory")
        'solutions'
    """
    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        return None
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    value = config.CourseDirectory.get(name) if "CourseDirectory" in config else None
    return value or None


def gradebook_url(course_dir, db_url=None):
    """The gradebook URL: ``db_url`` if given, else the course's configured one, else sqlite.

    Args:
        course_dir: the course root.
        db_url: an explicit SQLAlchemy URL (``--db``), or None.

    Returns:
        the URL nbgrader and the grades CSV read.

    Example:
        >>> import pruning_kit
        >>> gradebook_url(Path(pruning_kit.__file__).parents[1]).endswith("/gradebook.db")
        True
    """
    if db_url is not None:
        return check_db_url(db_url)
    configured_url = configured(course_dir, "db_url")
    if configured_url:
        return check_db_url(configured_url)
    return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"


def db_options(db_url):
    """The nbgrader command-line option that selects ``db_url`` (none for the default)."""
    return [] if db_url is None else [f"--CourseDirectory.db_url={check_db_url(db_url)}"]


@contextlib.contextmanager
def open_gradebook(db_url, course_id="default_course"):
    """nbgrader's ``Gradebook`` at ``db_url``, with this Python's ``bin`` on PATH meanwhile.

    nbgrader runs ``alembic`` from PATH when it creates a new gradebook.
    """
    from nbgrader.api import Gradebook

    bin_dir = str(Path(sys.executable).parent)
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = bin_dir + os.pathsep + saved
    try:
        with Gradebook(check_db_url(db_url), course_id) as gb:
            yield gb
    finally:
        os.environ["PATH"] = saved


def ensure_gradebook(course_dir, assignment, students=(), db_url=None):
    """Record the assignment (its notebooks and cells) and the students before grading starts.

    The assignment comes from ``nbgrader generate_assignment`` into a temporary
    release folder when the gradebook does not know it yet; students are added
    if missing. Safe to call again: nothing is duplicated.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        students: student ids to record.
        db_url: an explicit gradebook URL (None: the course's own, see :func:`gradebook_url`).

    Returns:
        True when the assignment had to be generated, False when it was already there.
    """
    from nbgrader.api import MissingEntry

    url = gradebook_url(course_dir, db_url)
    if not url.startswith("sqlite") and not configured(course_dir, "course_id"):
        raise ValueError("a PostgreSQL gradebook needs a course id: set "
                         "c.CourseDirectory.course_id in nbgrader_config.py")
    generate = True
    sqlite_file = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
    if sqlite_file is None or sqlite_file.exists():
        with open_gradebook(url) as gb:
            try:
                generate = not gb.find_assignment(assignment).notebooks
            except MissingEntry:
                pass
    if generate:
        with tempfile.TemporaryDirectory(prefix="release-") as tmp:
            run_nbgrader(course_dir, "generate_assignment", assignment, "--force",
                         f"--CourseDirectory.release_directory={tmp}", *db_options(db_url))
    if students:
        with open_gradebook(url) as gb:
            known = {s.id for s in gb.students}
            for student in students:
                if student not in known:
                    gb.add_student(student)
    return generate


def submission_counts(db_url, assignment):
    """``{"submissions": n, "notebooks": n, "grades": n}`` recorded for ``assignment``.

    What a re-run must leave unchanged: grading twice duplicates nothing.
    """
    from nbgrader.api import Assignment, Grade, SubmittedAssignment, SubmittedNotebook

    with open_gradebook(db_url) as gb:
        query = gb.db.query
        submissions = query(SubmittedAssignment).join(Assignment).filter(
            Assignment.name == assignment)
        notebooks = query(SubmittedNotebook).join(SubmittedAssignment).join(Assignment).filter(
            Assignment.name == assignment)
        grades = query(Grade).join(SubmittedNotebook).join(SubmittedAssignment).join(
            Assignment).filter(Assignment.name == assignment)
        return {"submissions": submissions.count(), "notebooks": notebooks.count(),
                "grades": grades.count()}


def assignment_scores(db_url, assignment):
    """``{student: {grade_id: score}}`` as the gradebook holds them for ``assignment``.

    Read straight from the gradebook (not the CSV): what every grader, serial,
    pooled or on a cluster, must agree on.
    """
    with open_gradebook(db_url) as gb:
        out = {}
        for submission in gb.assignment_submissions(assignment):
            scores = out.setdefault(submission.student_id, {})
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    scores[grade.name] = grade.score
        return out
