"""Which gradebook a course grades into: the URLs the README documents open with the driver the
course installs, and grading writes into a real PostgreSQL server through them.

The README tells instructors `make grade DB=postgresql://grader@dbhost:5432/gradebook`;
`make grade` hands DB to `python -m pruning_kit.course grade --db`. The test takes that URL
from the README, points its host and port at a throwaway server (`postgres` fixture: user
`grader`, database `gradebook`, as written) and grades the tiny `warmup` course with it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import warmup as tc
from pruning_kit.course.gradebook import assignment_scores, check_db_url, gradebook_url

REPO = Path(__file__).resolve().parents[1]


def readme_db_url():
    """The PostgreSQL URL of `make grade DB=...` in the README's "Running a class"."""
    found = re.search(r"`make grade DB=(postgresql://[^`\s]+)`", (REPO / "README.md").read_text())
    assert found, "the README no longer shows `make grade DB=postgresql://...`"
    return found.group(1)


def test_every_documented_url_form_names_psycopg_3():
    assert check_db_url("postgresql://grader@db:5432/gradebook") == \
        "postgresql+psycopg://grader@db:5432/gradebook"
    assert check_db_url("postgresql+psycopg://grader@db/gradebook") == \
        "postgresql+psycopg://grader@db/gradebook"
    assert check_db_url("sqlite:////srv/course/gradebook.db") == "sqlite:////srv/course/gradebook.db"
    with pytest.raises(ValueError, match="write postgresql://grader@db/gradebook"):
        check_db_url("postgresql+psycopg2://grader@db/gradebook")
    import psycopg  # noqa: F401  (the driver those URLs name is installed with the course)


def test_a_course_configured_with_the_plain_url_gets_the_same_driver(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.db_url = 'postgresql://grader@db/gradebook'\n")
    assert gradebook_url(tmp_path) == "postgresql+psycopg://grader@db/gradebook"


def test_grading_into_postgresql_with_the_readme_url(tmp_path, postgres):
    documented = urlsplit(readme_db_url())
    url = documented._replace(netloc=f"{documented.username}@127.0.0.1:{postgres.port}").geturl()
    assert url.startswith("postgresql://grader@") and url.endswith("/gradebook")
    assert (postgres.user, postgres.database) == ("grader", "gradebook")

    course = tc.make_course(tmp_path / "course")
    tc.submit(course, "ada", tc.CORRECT)
    tc.submit(course, "grace", tc.ONE_WRONG)
    done = subprocess.run(
        [sys.executable, "-m", "pruning_kit.course", "--course-dir", str(course), "grade",
         tc.NAME, "--db", url],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scores = assignment_scores(url, tc.NAME)
    assert {s: sum(v.values()) for s, v in scores.items()} == {"ada": 5.0, "grace": 2.0}
    sqlite = f"sqlite:///{course / 'gradebook.db'}"       # make_course's release wrote this one
    assert not assignment_scores(sqlite, tc.NAME), "graded into sqlite, not PostgreSQL"


def test_grading_processes_that_start_at_once_all_store_their_check_results(postgres):
    # each grading worker opens the check-results table on first use; six at once on a fresh
    # PostgreSQL database (as `make grade --workers` on a class hub) must all get it
    url = check_db_url(postgres.create_database("racing"))
    store = ("import sys; from pruning_kit.course import results; "
             "results.record(sys.argv[1], 'warmup', sys.argv[2], 'warmup', [dict("
             "grade_id='test_mean_hidden', function='mean', status='passed', diagnosis=None, "
             "points=3, max_points=3, message='', seconds=0.1)])")
    workers = [subprocess.Popen([sys.executable, "-c", store, url, f"student{i}"],
                                stderr=subprocess.PIPE, text=True) for i in range(6)]
    errors = [w.communicate()[1] for w in workers if w.wait() != 0]
    assert not errors, errors[0]
    from pruning_kit.course import results
    assert sorted(r["student"] for r in results.read(url, "warmup")) == [
        f"student{i}" for i in range(6)]
