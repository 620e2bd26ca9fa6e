"""What the grader found in each test cell, stored beside the grades in the gradebook.

nbgrader's gradebook keeps a score per cell. The trusted checker knows more: a
test cell passed, failed with a recognised mistake (a diagnosis code such as
``magnitude_mask/signed``), failed without one, crashed, timed out, or called
kit code that is off while grading. The grading side writes one row per test
cell into the table :data:`TABLE` of the same database (sqlite or PostgreSQL);
the class report and the grades CSV read it. Rows are written only by the
grader's process, never parsed back out of feedback text.

Example:
    >>> import tempfile, os
    >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "gradebook.db")
    >>> record(url, "pruning", "ada", "pruning", [{"grade_id": "test_f_hidden",
    ...        "function": "f", "status": "failed", "diagnosis": "f/signed", "points": 0,
    ...        "max_points": 3, "message": "...", "seconds": 0.1}])
    >>> [(r["student"], r["diagnosis"]) for r in read(url, "pruning")]
    [('ada', 'f/signed')]
"""

from __future__ import annotations

import datetime

from sqlalchemy import (Column, DateTime, Float, Integer, MetaData, String, Table, Text,
                        create_engine, delete, insert, select)
from sqlalchemy.exc import IntegrityError, ProgrammingError

TABLE = "pk_check_results"
"""The table's name in the gradebook database."""

_metadata = MetaData()
results_table = Table(
    TABLE, _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("assignment", String(128), nullable=False, index=True),
    Column("student", String(128), nullable=False, index=True),
    Column("notebook", String(128), nullable=False),
    Column("grade_id", String(128), nullable=False),
    Column("function", String(128)),
    Column("status", String(32), nullable=False),
    Column("diagnosis", String(128)),
    Column("points", Float, nullable=False),
    Column("max_points", Float, nullable=False),
    Column("message", Text),
    Column("seconds", Float),
    Column("graded_at", DateTime, nullable=False),
)

FIELDS = ("grade_id", "function", "status", "diagnosis", "points", "max_points", "message",
          "seconds")

_ENGINES = {}


def _engine(db_url):
    if db_url not in _ENGINES:
        engine = create_engine(db_url)
        try:
            _metadata.create_all(engine, checkfirst=True)
        except (IntegrityError, ProgrammingError):
            # another grading process created the table between the check and the CREATE
            # (PostgreSQL: a duplicate pg_type row or "relation already exists"); it is there now
            _metadata.create_all(engine, checkfirst=True)
        _ENGINES[db_url] = engine
    return _ENGINES[db_url]


def record(db_url, assignment, student, notebook, rows):
    """Replace the results of one student's notebook with ``rows`` (dicts of :data:`FIELDS`)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    engine = _engine(db_url)
    with engine.begin() as connection:
        connection.execute(delete(results_table).where(
            (results_table.c.assignment == assignment) & (results_table.c.student == student)
            & (results_table.c.notebook == notebook)))
        if rows:
            connection.execute(insert(results_table), [
                {"assignment": assignment, "student": student, "notebook": notebook,
                 "graded_at": now, **{k: row.get(k) for k in FIELDS}} for row in rows])


def read(db_url, assignment, student=None):
    """The stored rows of ``assignment`` (one student's, or all), as dicts in grading order."""
    engine = _engine(db_url)
    query = select(results_table).where(results_table.c.assignment == assignment)
    if student is not None:
        query = query.where(results_table.c.student == student)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(results_table.c.student,
                                                 results_table.c.id)).mappings().all()
    return [dict(row) for row in rows]
