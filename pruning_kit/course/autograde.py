"""Autograding a class: every submission of one assignment into the gradebook, a CSV and feedback.

``python -m pruning_kit.course grade pruning`` (``make grade``; see
:mod:`pruning_kit.course.__main__` for the command line) calls :func:`grade`,
which runs in named steps: find the submissions, say whether grading is
sandboxed (refusing where it must), make the gradebook ready, check each
submission before nbgrader reads it (:mod:`.preflight`), autograde (one
``nbgrader autograde`` for the class, or one process per student:
:mod:`.parallel`), write the feedback, read the grades into a table
(:mod:`.grades`) and write the CSV, and print a summary. Every nbgrader step runs
the real ``nbgrader`` command line with this Python's ``bin`` folder first on
``PATH`` (nbgrader shells out to ``alembic``).

Every test cell is decided by the trusted checker of the course's grader package
(``grader/``), set up in ``nbgrader_config.py``; the notebooks themselves run in
sandboxed kernels (:mod:`.sandbox`, :mod:`.execute`).
"""

import shutil
import sys
import time
from pathlib import Path

from .._checks import check_int
from .course_dir import check_assignment, run_nbgrader
from .gradebook import db_options, ensure_gradebook, gradebook_url
from .grades import collect_grades, write_csv
from .parallel import DEFAULT_TIMEOUT_S, grade_students
from .preflight import preflight
from .report import report_after_grading
from .sandbox import grading_mode


def submitted_students(course_dir, assignment):
    """The students with a ``submitted/<student>/<assignment>/`` folder, sorted.

    Raises:
        ValueError: nobody submitted.
    """
    submitted = Path(course_dir) / "submitted"
    students = sorted(p.name for p in submitted.iterdir()
                      if (p / assignment).is_dir()) if submitted.is_dir() else []
    if not students:
        raise ValueError(f"no submissions: expected folders submitted/<student>/{assignment}/ "
                         f"under {Path(course_dir).resolve()}")
    return students


def _grade_serially(course_dir, assignment, db_args, log_dir):
    """One ``nbgrader autograde`` for the class; (failed for everyone?, log tail)."""
    done = run_nbgrader(course_dir, "autograde", assignment, "--force", *db_args, check=False)
    (log_dir / f"autograde_{assignment}.log").write_text(done.stdout)
    return done.returncode != 0, "\n".join(done.stdout.splitlines()[-20:])


def _grade_fanned_out(course_dir, assignment, students, notes, log_dir, **options):
    """One process per student (a pool or a Dask cluster); (failed for everyone?, log tail)."""
    runs = grade_students(course_dir, assignment, students, **options)
    (log_dir / f"autograde_{assignment}.log").write_text("".join(
        f"===== {r.student}: {r.status} in {r.seconds:.1f} s (attempt {r.attempts}) =====\n"
        f"{r.log}\n" for r in runs.values()))
    for student, run in runs.items():
        if run.note():  # the process died twice or ran out of time: nothing half-graded
            notes[student][1].append(run.note())
            for stale in (log_dir / student / assignment,
                          Path(course_dir) / "feedback" / student / assignment):
                shutil.rmtree(stale, ignore_errors=True)
    tail = "\n".join(next(iter(runs.values())).log.splitlines()[-20:])
    return not any(r.ok for r in runs.values()), tail


def _summary(frame, assignment, elapsed, how, csv_path, feedback, out):
    auto_max, manual_max = frame.attrs["autograded_max"], frame.attrs["manual_max"]
    print(f"{assignment}: {len(frame)} submissions in {elapsed:.1f} s{how} "
          f"(autograded out of {auto_max:g}; {manual_max:g} more points to grade by hand)",
          file=out)
    width = max(len(s) for s in frame["student"])
    for row in frame.itertuples():
        print(f"  {row.student:<{width}}  {row.autograded:>5g}/{auto_max:g}  {row.status}; "
              f"written answers {row.manual_state}", file=out)
        for note in row.notes:
            print(f"  {'':<{width}}         - {note}", file=out)
    print(f"grades: {csv_path}", file=out)
    if feedback:
        print(f"feedback: {Path(csv_path).parents[1] / 'feedback'}/<student>/{assignment}/*.html",
              file=out)


def grade(course_dir=".", assignment="pruning", csv_path=None, feedback=True, out=sys.stdout, *,
          workers=None, db_url=None, scheduler=None, timeout=DEFAULT_TIMEOUT_S, progress=None):
    """Autograde every submission of one assignment; write the grades CSV and HTML feedback.

    Without ``workers`` and ``scheduler``, one ``nbgrader autograde`` grades the
    class one submission after another (one instructor, one laptop). With
    ``workers=N`` each student is graded in a process of its own, N at a time;
    with ``scheduler`` the same per-student jobs run on a Dask cluster (see
    :mod:`.parallel`). Either way all results land in one gradebook and the
    scores are the same.

    Args:
        course_dir: the course root (``submitted/<student>/<assignment>/`` lives here).
        assignment: the assignment name.
        csv_path: where to write the CSV (default ``autograded/grades_<assignment>.csv``).
        feedback: also run ``nbgrader generate_feedback`` (HTML under ``feedback/``).
        out: where to print the summary table.
        workers: grade one student per process, this many at a time (None: one
            nbgrader process for the whole class).
        db_url: the gradebook URL, e.g. ``postgresql://grader@db:5432/gradebook``
            (None: ``c.CourseDirectory.db_url`` of the course, else ``gradebook.db``).
        scheduler: a Dask scheduler address (``tcp://host:8786``) to grade on a cluster.
        timeout: seconds one student may take when graded per process.
        progress: show a progress bar on stderr (default: when stderr is a terminal).

    Returns:
        the grades as a ``pandas.DataFrame`` (see :func:`.grades.collect_grades`).

    Example:
        >>> import pruning_kit
        >>> grade(Path(pruning_kit.__file__).parents[1], "lottery")
        Traceback (most recent call last):
        ...
        ValueError: unknown assignment 'lottery'; the source folder has ['binarized', 'pruning']
    """
    course_dir = Path(course_dir)
    check_assignment(course_dir, assignment)
    if workers is not None:
        workers = check_int("workers", workers, low=1, hint="processes grading at once")
    if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
        raise ValueError(f"scheduler must be a Dask scheduler address like "
                         f"'tcp://host:8786', got {scheduler!r}")
    fanned_out = workers is not None or scheduler is not None
    start = time.perf_counter()
    students = submitted_students(course_dir, assignment)
    print(grading_mode(course_dir), file=out)  # refuses (RuntimeError) where it must
    # before any worker starts: two processes creating an empty gradebook at once break it
    ensure_gradebook(course_dir, assignment, students if fanned_out else (), db_url)
    notes = {s: preflight(course_dir, assignment, s) for s in students}
    log_dir = course_dir / "autograded"
    log_dir.mkdir(exist_ok=True)
    if fanned_out:
        failed_everywhere, tail = _grade_fanned_out(
            course_dir, assignment, students, notes, log_dir, workers=workers or 1,
            db_url=db_url, scheduler=scheduler, timeout=timeout, feedback=feedback,
            progress=sys.stderr.isatty() if progress is None else progress)
    else:
        failed_everywhere, tail = _grade_serially(course_dir, assignment, db_options(db_url),
                                                  log_dir)
    gradable = [s for s in students if notes[s][0]]
    if failed_everywhere and gradable and not any(
            (log_dir / s / assignment).is_dir() for s in gradable):
        raise RuntimeError(f"nbgrader autograde failed for every submission:\n{tail}")
    if feedback and not fanned_out:  # fanned out, each job wrote its student's feedback
        done = run_nbgrader(course_dir, "generate_feedback", assignment, "--force",
                            *db_options(db_url), check=False)
        (log_dir / f"feedback_{assignment}.log").write_text(done.stdout)
    frame = collect_grades(course_dir, assignment, students, notes,
                           db_url=gradebook_url(course_dir, db_url))
    csv_path = Path(csv_path) if csv_path else log_dir / f"grades_{assignment}.csv"
    write_csv(frame, csv_path)
    how = ("" if not fanned_out else f" on the Dask cluster {scheduler}" if scheduler
           else f" with {workers} worker{'s' if workers != 1 else ''}")
    _summary(frame, assignment, time.perf_counter() - start, how, csv_path, feedback, out)
    report_after_grading(course_dir, assignment, gradebook_url(course_dir, db_url), out)
    return frame
