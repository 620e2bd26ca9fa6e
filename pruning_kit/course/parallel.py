"""Grading fanned out: one process, with its own kernel, per student; one gradebook for all.

nbgrader grades a class one submission after another in one process (its open
wish for parallel autograding is jupyter/nbgrader#174). Here every student is a
job of its own, ``nbgrader autograde ASSIGNMENT --force --student ID``, run

- on this machine by a pool of ``workers`` (each job a fresh process forked from
  a server that has nbgrader imported already, so a job pays for its kernel, not
  for importing nbgrader again), or
- on a Dask cluster (``scheduler="tcp://host:8786"``): the same jobs, sent to
  the cluster's workers, which see the course folder at the same path (shared
  storage) and the same gradebook (PostgreSQL).

What each job guarantees is what the one-process grader guarantees per student
(the kernel survives crashes and hangs, see :mod:`.execute`). Around the job:

- a job whose process dies (killed by a signal: the out-of-memory killer, a
  lost Dask worker) is graded again once, then reported; a grading process
  dies with the worker that started it, so a lost worker leaves nothing
  writing behind;
- a job that runs past ``timeout`` seconds is stopped and reported, and the
  other students go on;
- every job writes with ``--force``: grading again replaces a student's
  results, never duplicates them;
- a job also writes its student's HTML feedback, so feedback for a class of
  thousands is fanned out like the grading.

The gradebook must know the assignment and the students before jobs start
(:func:`pruning_kit.course.gradebook.ensure_gradebook`): two processes that
create an empty gradebook at once break it.

Example:
    >>> StudentRun("ada", "graded").ok
    True
"""

import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .._checks import check_int
from .course_dir import grading_environment
from .gradebook import db_options

DEFAULT_TIMEOUT_S = 1800   # one student's whole notebook; cells have their own, shorter limits
STATUSES = ("graded", "failed", "died", "timed out")


@dataclass
class StudentRun:
    """How grading one student went.

    ``status``: ``"graded"`` (nbgrader finished), ``"failed"`` (nbgrader stopped
    with an error, e.g. an unreadable notebook), ``"died"`` (the process was
    killed by a signal, twice when ``attempts`` is 2), ``"timed out"``.
    """

    student: str
    status: str
    attempts: int = 1
    seconds: float = 0.0
    exitcode: int = 0
    log: str = ""

    @property
    def ok(self):
        return self.status == "graded"

    def note(self):
        """A sentence for the grades CSV when the job itself went wrong, else None."""
        if self.status == "died":
            return (f"the grading process died {self.attempts} time(s) (exit {self.exitcode}: "
                    f"killed by a signal); not graded")
        if self.status == "timed out":
            return f"grading took longer than {self.seconds:.0f} s and was stopped; not graded"
        return None


# ---------------------------------------------------------------------------
# One student, one process

try:  # looked up once, here: a child between fork and exec must not load libraries
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: a lost worker's job may finish on its own
    _PRCTL = None
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Linux: SIGKILL this process when its parent dies (a lost worker leaves no grader behind)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def _nbgrader_in_this_process(course_dir, args, log_path, env):
    """Run in a forked child: nbgrader's command line, output to ``log_path``."""
    _die_with_parent()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(course_dir)
    sys.argv = ["nbgrader", *args]
    code = 1
    try:
        from nbgrader.apps.nbgraderapp import NbGraderApp

        NbGraderApp.launch_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_FORKSERVER = None


def _forkserver():
    """A forkserver context with nbgrader (and this module) imported once, in the server."""
    global _FORKSERVER
    if _FORKSERVER is None:
        context = multiprocessing.get_context("forkserver")
        # what every job imports anyway: nbgrader's apps and what nbgrader_config.py loads
        context.set_forkserver_preload(["nbgrader.apps.nbgraderapp", "nbgrader.converters",
                                        "pruning_kit.course.execute", __name__])
        _FORKSERVER = context
    return _FORKSERVER


def _can_fork():
    # A daemonic process (a Dask worker under its nanny) may not start children
    # with multiprocessing: such a job runs nbgrader as a plain subprocess instead.
    return (sys.platform.startswith("linux")
            and not multiprocessing.current_process().daemon)


def _run_nbgrader_process(course_dir, args, timeout, on_start, student):
    """One nbgrader command in a process of its own; ``(exitcode, stopped, log text)``."""
    env = grading_environment()
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
        log_path = Path(tmp) / "nbgrader.log"
        stopped = False
        if _can_fork():
            process = _forkserver().Process(
                target=_nbgrader_in_this_process,
                args=(str(course_dir.resolve()), args, str(log_path), env), daemon=False)
            process.start()
            if on_start is not None:
                on_start(student, process.pid)
            process.join(timeout)
            if process.exitcode is None:
                stopped = True
                process.kill()
                process.join()
            exitcode = process.exitcode
        else:
            with open(log_path, "wb") as log:
                process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args],
                                           cwd=course_dir, env=env, stdout=log,
                                           stderr=subprocess.STDOUT,
                                           preexec_fn=_die_with_parent)
            if on_start is not None:
                on_start(student, process.pid)
            try:
                exitcode = process.wait(timeout)
            except subprocess.TimeoutExpired:
                stopped = True
                process.kill()
                exitcode = process.wait()
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return exitcode, stopped, log_text


def autograde_student(course_dir, assignment, student, *, db_url=None,
                      timeout=DEFAULT_TIMEOUT_S, feedback=False, on_start=None):
    """Grade one student in a process of its own: ``nbgrader autograde A --force --student ID``.

    Args:
        course_dir: the course root (absolute on a cluster: the workers' path).
        assignment: the assignment name.
        student: the student id (``submitted/<student>/<assignment>/``).
        db_url: the gradebook URL (None: the course's configured one).
        timeout: seconds before the process is stopped (None: no limit).
        feedback: then write the student's HTML feedback (``nbgrader generate_feedback``,
            a second short process), so a class's feedback is fanned out too.
        on_start: called as ``on_start(student, pid)`` once the grading process runs.

    Returns:
        a :class:`StudentRun` (one attempt; see :func:`grade_students` for the retry).

    Example:
        >>> autograde_student("/nonexistent/course", "pruning", "ada")
        Traceback (most recent call last):
        ...
        ValueError: course_dir must be an existing folder, got '/nonexistent/course'
    """
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise ValueError(f"course_dir must be an existing folder, got {str(course_dir)!r}")
    options = ["--force", "--student", student, *db_options(db_url)]
    start = time.perf_counter()
    exitcode, stopped, log_text = _run_nbgrader_process(
        course_dir, ["autograde", assignment, *options], timeout, on_start, student)
    if stopped:
        status = "timed out"
    elif exitcode < 0:
        status = "died"
    elif exitcode > 0:
        status = "failed"
    else:
        status = "graded"
    if status == "graded" and feedback:
        left = None if timeout is None else max(timeout - (time.perf_counter() - start), 1.0)
        code, _, fb_log = _run_nbgrader_process(
            course_dir, ["generate_feedback", assignment, *options], left, None, student)
        log_text += f"\n----- feedback (exit {code}) -----\n{fb_log}"
    return StudentRun(student, status, 1, time.perf_counter() - start, exitcode, log_text)


# ---------------------------------------------------------------------------
# A class: a local pool or a Dask cluster

def _progress_bar(total, assignment, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"grading {assignment}", unit="student", file=sys.stderr,
                disable=not progress, dynamic_ncols=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} done{postfix} |{bar}| "
                           "{elapsed} elapsed, {remaining} left")


def grade_students(course_dir, assignment, students, *, workers=2, db_url=None, scheduler=None,
                   timeout=DEFAULT_TIMEOUT_S, feedback=False, progress=True, on_start=None):
    """Grade every student in a process of its own, ``workers`` at a time or on a Dask cluster.

    The gradebook must already hold the assignment and the students
    (:func:`pruning_kit.course.gradebook.ensure_gradebook`). A job whose process
    dies is graded again once; a second death, a timeout or an nbgrader error is
    reported in the student's :class:`StudentRun` and the others go on.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        students: the student ids.
        workers: processes at a time on this machine (ignored with ``scheduler``).
        db_url: the gradebook URL every job writes to (None: the course's own).
        scheduler: a Dask scheduler address (``tcp://host:8786``), or None for a local pool.
        timeout: seconds one student may take (None: no limit).
        feedback: also write each graded student's HTML feedback in their job.
        progress: show a progress bar (students done, failed, time left) on stderr.
        on_start: ``on_start(student, pid)`` for each local process started (not with Dask).

    Returns:
        ``{student: StudentRun}`` in the order of ``students``.

    Example:
        >>> grade_students(".", "pruning", ["ada"], workers=0)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: workers must be a positive int (processes grading at once), got 0
    """
    workers = check_int("workers", workers, low=1, hint="processes grading at once")
    course_dir = Path(course_dir).resolve()
    students = list(students)
    options = dict(db_url=db_url, timeout=timeout, feedback=feedback)
    results = {}
    failed = 0
    bar = _progress_bar(len(students), assignment, progress)
    bar.set_postfix_str("0 failed", refresh=False)

    def finish(run):
        nonlocal failed
        results[run.student] = run
        failed += not run.ok
        bar.set_postfix_str(f"{failed} failed", refresh=False)
        bar.update(1)

    try:
        if scheduler is None:
            def job(student):
                run = autograde_student(course_dir, assignment, student, on_start=on_start,
                                        **options)
                if run.status == "died":  # graded again once, then reported
                    run = autograde_student(course_dir, assignment, student, on_start=on_start,
                                            **options)
                    run.attempts = 2
                return run

            with ThreadPoolExecutor(max_workers=min(workers, max(len(students), 1))) as pool:
                for future in as_completed([pool.submit(job, s) for s in students]):
                    finish(future.result())
        else:
            _grade_on_dask(scheduler, course_dir, assignment, students, options, finish)
    finally:
        bar.close()
    return {s: results[s] for s in students}


def _grade_on_dask(scheduler, course_dir, assignment, students, options, finish):
    from distributed import Client, as_completed as dask_completed
    from distributed.scheduler import KilledWorker

    with Client(scheduler, timeout=30) as client:
        def submit(student, attempt):
            key = f"autograde-{assignment}-{student}-{attempt}-{uuid.uuid4().hex[:8]}"
            return client.submit(autograde_student, str(course_dir), assignment, student,
                                 key=key, pure=False, retries=0, **options)

        pending = {}
        for student in students:
            pending[submit(student, 1)] = (student, 1)
        queue = dask_completed(list(pending))
        for future in queue:
            student, attempt = pending.pop(future)
            try:
                run = future.result()
            except KilledWorker as exc:  # the worker died while grading this student
                run = StudentRun(student, "died", attempt, 0.0, -9, f"Dask: {exc}")
            except Exception as exc:  # noqa: BLE001 - reported for this student, others go on
                run = StudentRun(student, "failed", attempt, 0.0, 1,
                                 f"Dask: {type(exc).__name__}: {exc}")
            if run.status == "died" and attempt == 1:
                again = submit(student, 2)
                pending[again] = (student, 2)
                queue.add(again)
                continue
            run.attempts = attempt
            finish(run)
