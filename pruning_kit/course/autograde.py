"""The grading pipeline around nbgrader: release, check, autograde, feedback, grades CSV.

Run from the course root (the folder with ``nbgrader_config.py``)::

    python -m pruning_kit.course release              # solutions/ -> assignments/
    python -m pruning_kit.course check                # fails if assignments/ is stale
    python -m pruning_kit.course grade pruning        # submitted/ -> grades CSV + feedback

``make release`` and ``make grade ASSIGNMENT=pruning`` call these. Every
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
import sys
import tempfile
import time
from pathlib import Path

from .course_dir import check_assignment, run_nbgrader
from .grades import collect_grades, write_csv
from .preflight import preflight
from .release import release, stale_release


def _ensure_gradebook(course_dir, assignment):
    """Record the assignment in gradebook.db if ``make release`` never ran here."""
    from nbgrader.api import Gradebook, MissingEntry

    db_path = Path(course_dir) / "gradebook.db"
    if db_path.exists():
        with Gradebook(f"sqlite:///{db_path.resolve()}") as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return False
            except MissingEntry:
                pass
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        run_nbgrader(course_dir, "generate_assignment", assignment, "--force",
                     f"--CourseDirectory.release_directory={tmp}")
    return True


def grade(course_dir=".", assignment="pruning", csv_path=None, feedback=True, out=sys.stdout):
    """Autograde every submission of one assignment; write the grades CSV and HTML feedback.

    Args:
        course_dir: the course root (``submitted/<student>/<assignment>/`` lives here).
        assignment: the assignment name.
        csv_path: where to write the CSV (default ``autograded/grades_<assignment>.csv``).
        feedback: also run ``nbgrader generate_feedback`` (HTML under ``feedback/``).
        out: where to print the summary table.

    Returns:
        list of row dicts, one per student (see ``_collect``).

    Example:
        >>> import pruning_kit
        >>> grade(Path(pruning_kit.__file__).parents[1], "lottery")
        Traceback (most recent call last):
        ...
        ValueError: unknown assignment 'lottery'; the source folder has ['binarized', 'pruning']
    """
    course_dir = Path(course_dir)
    check_assignment(course_dir, assignment)
    start = time.perf_counter()
    submitted = course_dir / "submitted"
    students = sorted(p.name for p in submitted.iterdir()
                      if (p / assignment).is_dir()) if submitted.is_dir() else []
    if not students:
        raise ValueError(f"no submissions: expected folders submitted/<student>/{assignment}/ "
                         f"under {course_dir.resolve()}")
    _ensure_gradebook(course_dir, assignment)
    notes = {s: preflight(course_dir, assignment, s) for s in students}
    log_dir = course_dir / "autograded"
    log_dir.mkdir(exist_ok=True)
    done = run_nbgrader(course_dir, "autograde", assignment, "--force", check=False)
    (log_dir / f"autograde_{assignment}.log").write_text(done.stdout)
    gradable = [s for s in students if notes[s][0]]
    if done.returncode != 0 and gradable and not any(
            (log_dir / s / assignment).is_dir() for s in gradable):
        tail = "\n".join(done.stdout.splitlines()[-20:])
        raise RuntimeError(f"nbgrader autograde failed for every submission:\n{tail}")
    if feedback:
        fb = run_nbgrader(course_dir, "generate_feedback", assignment, "--force", check=False)
        (log_dir / f"feedback_{assignment}.log").write_text(fb.stdout)
    columns, rows, auto_max, manual_max = collect_grades(course_dir, assignment, students, notes)
    csv_path = Path(csv_path) if csv_path else log_dir / f"grades_{assignment}.csv"
    write_csv(csv_path, columns, rows, auto_max, manual_max)
    elapsed = time.perf_counter() - start
    width = max(len(r["student"]) for r in rows)
    print(f"{assignment}: {len(rows)} submissions in {elapsed:.1f} s "
          f"(autograded out of {auto_max:g}; {manual_max:g} more points to grade by hand)", file=out)
    for row in rows:
        print(f"  {row['student']:<{width}}  {row['autograded']:>5g}  {row['status']}", file=out)
        for note in row["notes"]:
            print(f"  {'':<{width}}         - {note}", file=out)
    print(f"grades: {csv_path}", file=out)
    if feedback:
        print(f"feedback: {course_dir / 'feedback'}/<student>/{assignment}/*.html", file=out)
    return rows


def main(argv=None):
    """Command line: ``release``, ``check`` or ``grade ASSIGNMENT``; returns the exit status.

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
        else:
            grade(args.course_dir, args.assignment, csv_path=args.csv,
                  feedback=not args.no_feedback)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
