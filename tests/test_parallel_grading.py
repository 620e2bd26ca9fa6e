"""Grading fanned out: one process per student, a local pool or a real Dask cluster, one
gradebook (sqlite or a real PostgreSQL server), the same scores as grading one by one.

- The real ``pruning`` assignment (a correct submission, and one with a wrong function and a
  function that kills the kernel) graded by today's one-process grader into sqlite and by
  two workers into PostgreSQL: the same score in every cell and the same feedback.
- The tiny ``warmup`` assignment (tests/support/warmup.py) for what costs many gradings: a
  process that dies is graded again once, then reported; a stuck one is stopped at its
  timeout; neither stalls the others; grading again duplicates nothing; a Dask cluster
  (a scheduler and two workers started as processes) gives the same scores as the pool,
  even when a worker is killed in the middle of grading.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support import warmup as tc
from support.local_server import stop
from pruning_kit.course import autograde
from pruning_kit.course.gradebook import (assignment_scores, ensure_gradebook, gradebook_url,
                                          submission_counts)
from pruning_kit.course.loopback import free_port, wait_for_port
from pruning_kit.course.parallel import grade_students
from pruning_kit.course.release import release

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def new_database(postgres, name):
    """A fresh database on the module's server; its SQLAlchemy URL."""
    return postgres.create_database(name)


def totals(scores):
    return {student: sum(cells.values()) for student, cells in scores.items()}


def feedback_summary(course, student, assignment):
    """What a feedback page tells a student: every score line and every error it shows.

    (Not the whole page: the notebooks print timings, which differ from run to run.)
    """
    html = (course / "feedback" / student / assignment / f"{assignment}.html").read_text()
    scores = [re.sub(r"\s+", " ", s).strip() for s in re.findall(r"Score[^<]*", html)]
    errors = sorted(re.findall(r"\b(?:[A-Z][A-Za-z]*Error|KernelDied|NotRun|Crashed|TimedOut|"
                               r"KitRefused|NotWritten|NotDefined|CheckFailed)\b", html))
    return scores, errors


# ---------------------------------------------------------------------------
# The real assignment: serial (sqlite) and two workers (PostgreSQL) agree

@pytest.fixture(scope="module")
def pruning_both_ways(tmp_path_factory, postgres):
    from support.real_class import (KILLS_THE_KERNEL, LOCAL_NOT_GLOBAL, TEST_CONFIG,
                                    make_submission, submit)

    serial = tmp_path_factory.mktemp("serial")
    (serial / "solutions").mkdir()
    shutil.copytree(REPO / "solutions" / "pruning", serial / "solutions" / "pruning",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (serial / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                               + TEST_CONFIG)
    release(serial, ["pruning"])
    submit(serial, "correct", "pruning", make_submission(serial, "pruning", {}))
    submit(serial, "flawed", "pruning", make_submission(  # one wrong function, one crash
        serial, "pruning", {"global_magnitude_masks": LOCAL_NOT_GLOBAL,
                            "imp_step": KILLS_THE_KERNEL}))
    pooled = tc.copy_course(serial, tmp_path_factory.mktemp("pooled") / "course")
    db = new_database(postgres, "pruning")
    autograde.grade(serial, "pruning", out=open(os.devnull, "w"))
    autograde.grade(pooled, "pruning", workers=2, db_url=db, out=open(os.devnull, "w"))
    return serial, pooled, db


def test_two_workers_on_postgresql_score_every_cell_as_serial_grading(pruning_both_ways):
    serial, pooled, db = pruning_both_ways
    one_by_one = assignment_scores(gradebook_url(serial), "pruning")
    fanned_out = assignment_scores(db, "pruning")
    assert fanned_out == one_by_one
    # the submissions are what they claim: full marks; a wrong function and a crash that
    # cost only their own points
    flawed, correct = one_by_one["flawed"], one_by_one["correct"]
    lost = {cell for cell in correct if flawed[cell] < correct[cell]}
    assert lost and all(re.match(r"test_(global_magnitude_masks|imp_step)_", c) for c in lost)


def test_two_workers_write_the_same_feedback(pruning_both_ways):
    serial, pooled, _ = pruning_both_ways
    for student in ("correct", "flawed"):
        summary = feedback_summary(pooled, student, "pruning")
        assert summary == feedback_summary(serial, student, "pruning"), student
        assert len(summary[0]) > 10, summary  # a score for every graded cell
    page = (pooled / "feedback" / "flawed" / "pruning" / "pruning.html").read_text()
    assert "imp_step stopped the process it ran in" in page


# ---------------------------------------------------------------------------
# The tiny assignment: deaths, hangs, re-runs, a Dask cluster

@pytest.fixture(scope="module")
def warmup(tmp_path_factory):
    """A course with four warm-up submissions and their gradebook ready (sqlite)."""
    course = tc.make_course(tmp_path_factory.mktemp("warmup") / "course")
    for student, code in {"ada": tc.CORRECT, "bob": tc.CORRECT, "grace": tc.ONE_WRONG,
                          "alan": tc.CRASHES}.items():
        tc.submit(course, student, code)
    return course


EXPECTED = {"ada": 5.0, "bob": 5.0, "grace": 2.0, "alan": 2.0}


def test_a_dead_process_is_graded_again_once_and_a_stuck_one_stopped(warmup, capsys):
    students = sorted(EXPECTED)
    ensure_gradebook(warmup, tc.NAME, students)
    starts = {s: 0 for s in students}

    def sabotage(student, pid):
        starts[student] += 1
        if student == "ada" and starts[student] == 1:
            os.kill(pid, signal.SIGKILL)        # dies once: graded again
        elif student == "grace":
            os.kill(pid, signal.SIGKILL)        # dies every time: reported after the retry
        elif student == "alan":
            os.kill(pid, signal.SIGSTOP)        # hangs: stopped at the timeout

    start = time.perf_counter()
    runs = grade_students(warmup, tc.NAME, students, workers=2, timeout=30,
                          progress=True, on_start=sabotage)
    took = time.perf_counter() - start
    assert (runs["ada"].status, runs["ada"].attempts) == ("graded", 2)
    assert (runs["grace"].status, runs["grace"].attempts) == ("died", 2)
    assert "died 2 time(s)" in runs["grace"].note()
    assert runs["alan"].status == "timed out" and runs["alan"].attempts == 1
    assert runs["bob"].status == "graded"
    assert starts == {"ada": 2, "bob": 1, "grace": 2, "alan": 1}
    scores = totals(assignment_scores(gradebook_url(warmup), tc.NAME))
    assert scores["ada"] == scores["bob"] == 5.0
    assert took < 30 + 60, f"a stuck student stalled the others: {took:.0f} s"
    progress = capsys.readouterr().err
    assert re.search(r"4/4 done, 2 failed .* left", progress), progress


def test_grading_again_duplicates_nothing_and_loses_nothing(warmup, postgres):
    db = new_database(postgres, "warmup_rerun")
    sink = open(os.devnull, "w")
    autograde.grade(warmup, tc.NAME, workers=2, db_url=db, feedback=False, out=sink)
    first = (submission_counts(db, tc.NAME), assignment_scores(db, tc.NAME))
    autograde.grade(warmup, tc.NAME, workers=2, db_url=db, feedback=False, out=sink)
    second = (submission_counts(db, tc.NAME), assignment_scores(db, tc.NAME))
    assert first == second
    assert first[0] == {"submissions": 4, "notebooks": 4, "grades": 16}
    assert totals(first[1]) == EXPECTED


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real Dask cluster on loopback: ``dask scheduler`` and ``dask worker`` processes."""
    pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           # a job whose worker dies comes back to us at once; we grade it again once
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0", "OMP_NUM_THREADS": "1",
           # non-daemonic worker processes may fork a grading process per student from a
           # server with nbgrader imported once (daemonic ones start `nbgrader` afresh)
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    processes = []
    try:
        with open(logs / "scheduler.log", "wb") as log:
            processes.append(subprocess.Popen(
                [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, env=env))
        assert wait_for_port(port, 60), (logs / "scheduler.log").read_text()
        with open(logs / "worker.log", "wb") as log:
            processes.append(subprocess.Popen(
                [str(bin_dir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0"],
                stdout=log, stderr=subprocess.STDOUT, env=env))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            stop(process)


def test_a_dask_cluster_grades_like_the_pool_even_when_a_worker_dies(warmup, postgres,
                                                                     dask_cluster, tmp_path):
    from distributed import Client

    course = tc.copy_course(warmup, tmp_path / "course")
    db = new_database(postgres, "warmup_dask")
    killed = []

    def kill_a_busy_worker():
        with Client(dask_cluster, timeout=60) as client:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not killed:
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    time.sleep(1.0)  # in the middle of grading
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.2)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        rows = autograde.grade(course, tc.NAME, scheduler=dask_cluster, db_url=db,
                               feedback=False, out=open(os.devnull, "w"))
    finally:
        killer.join()
    assert killed, "no worker was busy to kill"
    assert rows["status"].str.startswith("graded").all(), rows
    assert totals(assignment_scores(db, tc.NAME)) == EXPECTED  # as the local pool
    assert submission_counts(db, tc.NAME) == {"submissions": 4, "notebooks": 4, "grades": 16}
    log = (course / "autograded" / f"autograde_{tc.NAME}.log").read_text()
    assert "(attempt 2)" in log, "the student of the dead worker was not graded again"
