"""The course's command line: ``python -m pruning_kit.course COMMAND``.

Run from the course root (the folder with ``nbgrader_config.py``)::

    python -m pruning_kit.course release              # solutions/ -> assignments/
    python -m pruning_kit.course check                # fails if assignments/ is stale
    python -m pruning_kit.course grade pruning        # submitted/ -> grades CSV + feedback
    python -m pruning_kit.course grade pruning --workers 4 --db postgresql://grader@db/gradebook
    python -m pruning_kit.course grade pruning --scheduler tcp://head:8786 --db postgresql://...
    python -m pruning_kit.course sample-submission pruning demo   # a test submission
    python -m pruning_kit.course student-kit _build/student-kit   # what students get
    python -m pruning_kit.course report pruning       # the class report
    python -m pruning_kit.course hub --roster hub/roster.example.csv

``make release``, ``make grade``, ``make student-kit`` and ``make hub`` call these.
"""

import argparse
import sys


def parser():
    """The argument parser of the command line."""
    from .parallel import DEFAULT_TIMEOUT_S

    top = argparse.ArgumentParser(prog="python -m pruning_kit.course",
                                  description="Release, autograde and hand out the course.")
    top.add_argument("--course-dir", default=".", help="course root (default: .)")
    sub = top.add_subparsers(dest="command", required=True)
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
    p_kit = sub.add_parser("student-kit", help="write what students get (the kit's wheel, the "
                                               "lessons, the released assignments) as a folder "
                                               "and a zip")
    p_kit.add_argument("out", nargs="?", default="_build/student-kit")
    p_kit.add_argument("--assignment", action="append", dest="assignments", default=None,
                       help="include only this assignment (repeatable; default: all released)")
    p_kit.add_argument("--no-zip", action="store_true", help="write the folder only")
    return top


def main(argv=None):
    """Run the command line; returns the exit status (0, 1 for a stale release, 2 on errors).

    Example:
        >>> main(["--course-dir", "/nonexistent/course", "grade", "pruning"])
        2
    """
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            from .release import release

            for path in release(args.course_dir, args.assignments):
                print(f"wrote {path}")
        elif args.command == "check":
            from .release import stale_release

            problems = stale_release(args.course_dir, args.assignments)
            for problem in problems:
                print(problem)
            if problems:
                print("The release is out of date: run `make release` and commit assignments/.")
                return 1
            print("assignments/ is up to date with solutions/")
        elif args.command == "sample-submission":
            from .sample import sample_submission

            for path in sample_submission(args.course_dir, args.assignment, args.student,
                                          force=args.force):
                print(f"wrote {path}")
        elif args.command == "student-kit":
            from .student_kit import build_student_kit

            folder = build_student_kit(args.course_dir, args.out, assignments=args.assignments,
                                       archive=not args.no_zip)
            print(f"wrote {folder}" + ("" if args.no_zip else f" and {folder}.zip"))
        elif args.command == "report":
            from .report import build_report

            path = build_report(args.course_dir, args.assignment, db_url=args.db, out=args.out)
            print(f"report: {path}")
        elif args.command == "hub":
            from .hub import serve

            serve(args.course_dir, args.roster, port=args.port, state_dir=args.state,
                  db_url=args.db)
        else:
            from .autograde import grade

            grade(args.course_dir, args.assignment, csv_path=args.csv,
                  feedback=not args.no_feedback, workers=args.workers, db_url=args.db,
                  scheduler=args.scheduler, timeout=args.timeout)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
