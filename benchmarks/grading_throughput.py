"""Grading throughput: a class of 24 `pruning` submissions, serially and with 2 workers.

Budget (DESIGN.md): 2 workers grade at least 1.6x as many submissions per minute as
serial grading, on 2 CPU cores.

- serial: today's grader, one `nbgrader autograde` for the class, into sqlite;
- 2 workers: one process (one kernel) per student, two at a time, into a real PostgreSQL
  server started for the run (Debian's binaries; `sudo apt-get install postgresql`).

Both are the whole `grade()` an instructor waits for: preflight, autograding, HTML
feedback, the grades CSV. The submissions are the reference solution (every cell runs,
the most work a submission can cause) in a temporary course with the repository's
nbgrader_config.py unchanged (the grading sandbox included).

From the measured cost per submission it projects the minutes for 300 and 5,000
students at 16 and 64 workers, assuming one core per worker, a course folder every
worker sees (shared storage on a cluster) and the PostgreSQL gradebook keeping up
(each submission writes a few dozen rows). Another busy process on a 2-core machine
stretches every number here: the load average is printed before and after.

    .venv/bin/python benchmarks/grading_throughput.py [SUBMISSIONS] [--unsandboxed]

``--unsandboxed`` grades without the kernel sandbox (where bubblewrap is missing), to
measure the fan-out alone.
"""

import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the throwaway PostgreSQL server of the test suite

from pruning_kit.course import autograde, release, sample  # noqa: E402
from support.postgres import LocalPostgres, install_postgres  # noqa: E402

ASSIGNMENT = "pruning"
SUBMISSIONS = 24
WORKERS = 2
BUDGET_RATIO = 1.6
PROJECTION = [(300, 16), (300, 64), (5000, 16), (5000, 64)]
UNSANDBOXED = ('\nc.RobustExecute.kernel_provisioner = ""  # the --unsandboxed run\n'
               'c.Sandbox.bwrap = "/nonexistent/bwrap"  # the checker\'s student process too\n'
               'c.Sandbox.allow_unsandboxed_grading = True\n')


def make_course(root, submissions, sandboxed=True):
    """A temporary course with ``submissions`` copies of the reference solution."""
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                             + ("" if sandboxed else UNSANDBOXED))
    release.release(root, [ASSIGNMENT])
    for i in range(submissions):
        sample.sample_submission(root, ASSIGNMENT, f"student{i:03d}")
    return root


def timed_grade(course, **options):
    start = time.perf_counter()
    frame = autograde.grade(course, ASSIGNMENT, out=io.StringIO(), progress=False, **options)
    rows = frame.to_dict("records")
    seconds = time.perf_counter() - start
    graded = sum(r["status"].startswith("graded") for r in rows)
    return seconds, graded, rows


def main(submissions=SUBMISSIONS, sandboxed=True):
    problem = install_postgres()
    if problem:
        print(f"cannot run: {problem}")
        return 1
    print(f"{submissions} submissions of {ASSIGNMENT!r}, {os.cpu_count()} CPU cores, "
          f"{'sandboxed' if sandboxed else 'UNSANDBOXED'}, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        serial_course = make_course(Path(tmp) / "serial", submissions, sandboxed)
        pooled_course = Path(tmp) / "pooled"
        shutil.copytree(serial_course, pooled_course)

        serial_s, serial_ok, serial_rows = timed_grade(serial_course)
        with LocalPostgres() as pg:
            pooled_s, pooled_ok, pooled_rows = timed_grade(pooled_course, workers=WORKERS,
                                                           db_url=pg.url)
    same = ({r["student"]: r["autograded"] for r in serial_rows}
            == {r["student"]: r["autograded"] for r in pooled_rows})
    serial_rate = 60 * submissions / serial_s
    pooled_rate = 60 * submissions / pooled_s
    ratio = pooled_rate / serial_rate
    print(f"serial (sqlite):          {serial_s:6.1f} s = {serial_rate:5.1f} submissions/min "
          f"({serial_ok}/{submissions} graded)")
    print(f"{WORKERS} workers (PostgreSQL):  {pooled_s:6.1f} s = {pooled_rate:5.1f} submissions/min "
          f"({pooled_ok}/{submissions} graded; same scores as serial: {same})")
    print(f"ratio: {ratio:.2f}x (budget >= {BUDGET_RATIO}x on 2 cores: "
          f"{'met' if ratio >= BUDGET_RATIO else 'MISSED'})")
    # One worker's cost per submission: what a core spends on one student when workers
    # run side by side (start-up, kernel, the notebook, writing grades).
    per_submission = pooled_s * WORKERS / submissions
    print(f"measured cost per submission: {serial_s / submissions:.1f} s serially, "
          f"{per_submission:.1f} worker-seconds with {WORKERS} workers")
    print("projection (one core per worker, shared course folder, PostgreSQL gradebook):")
    print(f"  {'students':>8} {'workers':>7} {'minutes':>8}   (serially: minutes)")
    for students, workers in PROJECTION:
        minutes = students * per_submission / workers / 60
        print(f"  {students:>8} {workers:>7} {minutes:8.1f}   "
              f"({students * serial_s / submissions / 60:.0f})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    sys.exit(main(int(numbers[0]) if numbers else SUBMISSIONS,
                  sandboxed="--unsandboxed" not in sys.argv[1:]))
