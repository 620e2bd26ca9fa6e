"""The grading pipeline around nbgrader: release, check, autograde, feedback, grades CSV.

Run from the course root (the folder with ``nbgrader_config.py``)::

    python -m pruning_kit.course release              # solutions/ -> assignments/
    python -m pruning_kit.course check                # fails if assignments/ is stale
    python -m pruning_kit.course grade pruning        # submitted/ -> grades CSV + feedback
    python -m pruning_kit.course grade pruning --workers 4 --db postgresql://grader@db/gradebook
    python -m pruning_kit.course grade pruning --scheduler tcp://head:8786 --db postgresql://...
    python -m pruning_kit.course sample-submission pruning demo   # a test submission (:mod:`.sample`)
    python -m pruning_kit.course report pruning       # the class report (:mod:`.report`)

``make release`` and ``make grade ASSIGNMENT=pruning [WORKERS=4 DB=... SCHEDULER=...]``
call these (``make hub`` serves a class: :mod:`.hub`). Every
nbgrader step runs the real ``nbgrader`` command line with this Python's
``bin`` folder first on ``PATH`` (nbgrader shells out to ``alembic``).

What no submission can break:

- The kernel survives crashes, hangs and memory blow-ups
  (:mod:`pruning_kit.course.execute`, set in ``nbgrader_config.py``).
- Before nbgrader runs, every submission is checked: a notebook that is not
  valid JSON, a missing notebook, deleted or edited cells and suspicious code
  (replacing ``torch.equal``, touching ``pruning_kit.course``) each give a
  clear note for that student, and all other students are graded.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

from .._checks import check_int
from .course_dir import check_assignment, run_nbgrader
from .gradebook import db_options, ensure_gradebook, gradebook_url
from .grades import collect_grades, write_csv
from .hub import serve
from .parallel import DEFAULT_TIMEOUT_S, grade_students
from .preflight import preflight
from .release import release, stale_release
from .report import build_report, report_after_grading
from .sample import sample_submission
from .sandbox import grading_mode


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
        list of row dicts, one per student (see ``grades.collect_grades``).

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
    submitted = course_dir / "submitted"
    students = sorted(p.name for p in submitted.iterdir()
                      if (p / assignment).is_dir()) if submitted.is_dir() else []
    if not students:
        raise ValueError(f"no submissions: expected folders submitted/<student>/{assignment}/ "
                         f"under {course_dir.resolve()}")
    # -- sandbox (issue 15): say whether kernels run sandboxed; RuntimeError (refuse) when the
    # sandbox can't start and unsandboxed grading is not allowed. See .sandbox.
    print(grading_mode(course_dir), file=out)
    url = gradebook_url(course_dir, db_url)
    db_args = db_options(db_url)
    # Before any worker starts: two processes creating an empty gradebook at once break it.
    ensure_gradebook(course_dir, assignment, students if fanned_out else (), db_url)
    notes = {s: preflight(course_dir, assignment, s) for s in students}
    log_dir = course_dir / "autograded"
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / f"autograde_{assignment}.log"
    if fanned_out:
        if progress is None:
            progress = sys.stderr.isatty()
        runs = grade_students(course_dir, assignment, students, workers=workers or 1,
                              db_url=db_url, scheduler=scheduler, timeout=timeout,
                              feedback=feedback, progress=progress)
        log_path.write_text("".join(
            f"===== {r.student}: {r.status} in {r.seconds:.1f} s (attempt {r.attempts}) =====\n"
            f"{r.log}\n" for r in runs.values()))
        for student, run in runs.items():
            if run.note():  # the process died twice or ran out of time: nothing half-graded
                notes[student][1].append(run.note())
                for stale in (log_dir / student / assignment,
                              course_dir / "feedback" / student / assignment):
                    shutil.rmtree(stale, ignore_errors=True)
        failed_everywhere = not any(r.ok for r in runs.values())
        tail = "\n".join(next(iter(runs.values())).log.splitlines()[-20:])
    else:
        done = run_nbgrader(course_dir, "autograde", assignment, "--force", *db_args,
                            check=False)
        log_path.write_text(done.stdout)
        failed_everywhere = done.returncode != 0
        tail = "\n".join(done.stdout.splitlines()[-20:])
    gradable = [s for s in students if notes[s][0]]
    if failed_everywhere and gradable and not any(
            (log_dir / s / assignment).is_dir() for s in gradable):
        raise RuntimeError(f"nbgrader autograde failed for every submission:\n{tail}")
    if feedback and not fanned_out:  # fanned out, each job wrote its student's feedback
        fb = run_nbgrader(course_dir, "generate_feedback", assignment, "--force", *db_args,
                          check=False)
        (log_dir / f"feedback_{assignment}.log").write_text(fb.stdout)
    columns, rows, auto_max, manual_max = collect_grades(course_dir, assignment, students, notes,
                                                         db_url=url)
    csv_path = Path(csv_path) if csv_path else log_dir / f"grades_{assignment}.csv"
    write_csv(csv_path, columns, rows, auto_max, manual_max)
    elapsed = time.perf_counter() - start
    width = max(len(r["student"]) for r in rows)
    how = ("" if not fanned_out else f" on the Dask cluster {scheduler}" if scheduler
           else f" with {workers} worker{'s' if workers != 1 else ''}")
    print(f"{assignment}: {len(rows)} submissions in {elapsed:.1f} s{how} "
          f"(autograded out of {auto_max:g}; {manual_max:g} more points to grade by hand)", file=out)
    for row in rows:
        print(f"  {row['student']:<{width}}  {row['autograded']:>5g}/{auto_max:g}  {row['status']}; "
              f"written answers {row.get('manual_state', '')}", file=out)
        for note in row["notes"]:
            print(f"  {'':<{width}}         - {note}", file=out)
    print(f"grades: {csv_path}", file=out)
    if feedback:
        print(f"feedback: {course_dir / 'feedback'}/<student>/{assignment}/*.html", file=out)
    # -- the class report (issue 23): built from what was just graded; see .report
    report_after_grading(course_dir, assignment, url, out)
    return rows


def main(argv=None):
    """Command line: ``release``, ``check``, ``grade ASSIGNMENT``, ``report ASSIGNMENT`` or ``hub``.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when ``check`` finds a stale release, 2 on a usage error.

    Example:
        >>> main(["--course-dir", "/nonexistent/course", "grade", "pruning"])
        2
    """
    parser = argparse.ArgumentParser(prog="python -m pruning_kit.course",
                                     description="Release and autograde the course assignments.")
    parser.add_argument("--course-dir", default=".", help="course root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_release = sub.add_parser("release", help="regenerate the release folder from the solutions")
    p_release.add_argument("assignments", nargs="*")
    p_check = sub.add_parser("check", help="exit 1 if the release folder is out of date")
    p_check.add_argument("assignments", nargs="*")
    p_grade = sub.add_parser("grade", help="autograde submitted/, write CSV and feedback")
    p_grade.add_argument("assignment")
    p_grade.add_argument("--csv", default=None, help="CSV path (default autograded/grades_A.csv)")
    p_grade.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    p_grade.add_argument("--workers", type=int, default=None, metavar="N",
                         help="grade each student in a process of its own, N at a time")
    p_grade.add_argument("--db", default=None, metavar="URL",
                         help="gradebook URL, e.g. postgresql://grader@host:5432/gradebook "
                              "(default: the course's db_url, else gradebook.db)")
    p_grade.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="send the per-student jobs to a Dask cluster (tcp://host:8786)")
    p_grade.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                         help=f"seconds one student may take with --workers/--scheduler "
                              f"(default {DEFAULT_TIMEOUT_S})")
    p_report = sub.add_parser("report", help="write the class report of a graded assignment "
                                             "(one HTML page: scores, mistakes, what needs a "
                                             "human, similar code)")
    p_report.add_argument("assignment")
    p_report.add_argument("--db", default=None, metavar="URL",
                          help="gradebook URL (default: the course's db_url, else gradebook.db)")
    p_report.add_argument("--out", default=None, metavar="PATH",
                          help="the HTML file (default autograded/report_ASSIGNMENT.html)")
    p_hub = sub.add_parser("hub", help="serve the course on a local JupyterHub (for trying "
                                       "it out: shared passwords, one Unix user)")
    p_hub.add_argument("--roster", default="hub/roster.example.csv",
                       help="CSV with username,role (instructor|student)")
    p_hub.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    p_hub.add_argument("--state", default=None, help="the hub's state folder (default .hub)")
    p_hub.add_argument("--db", default=None, metavar="URL",
                       help="gradebook URL for the instructor's formgrader")
    p_sample = sub.add_parser("sample-submission",
                              help="submit the reference solution as STUDENT, as a student would")
    p_sample.add_argument("assignment")
    p_sample.add_argument("student")
    p_sample.add_argument("--force", action="store_true", help="replace that student's submission")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            for path in release(args.course_dir, args.assignments):
                print(f"wrote {path}")
        elif args.command == "check":
            problems = stale_release(args.course_dir, args.assignments)
            for problem in problems:
                print(problem)
            if problems:
                print("The release is out of date: run `make release` and commit assignments/.")
                return 1
            print("assignments/ is up to date with solutions/")
        elif args.command == "sample-submission":
            for path in sample_submission(args.course_dir, args.assignment, args.student,
                                          force=args.force):
                print(f"wrote {path}")
        elif args.command == "report":
            path = build_report(args.course_dir, args.assignment, db_url=args.db, out=args.out)
            print(f"report: {path}")
        elif args.command == "hub":
            serve(args.course_dir, args.roster, port=args.port, state_dir=args.state,
                  db_url=args.db)
        else:
            grade(args.course_dir, args.assignment, csv_path=args.csv,
                  feedback=not args.no_feedback, workers=args.workers, db_url=args.db,
                  scheduler=args.scheduler, timeout=args.timeout)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
