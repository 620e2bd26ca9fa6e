"""Time to autograde submissions with the real nbgrader pipeline, per assignment.

Budget: under 15 s per submission on 2 CPU cores (DESIGN.md), for
`nbgrader autograde` plus `nbgrader generate_feedback`, as `make grade` runs them.

A temporary course uses the repository's nbgrader_config.py unchanged; the
reference solution is submitted as one student and graded twice (the second run
has warm file caches), then three more copies are graded in one call to show the
cost of each extra student. Wall time is what the budget is about; CPU time (of
nbgrader and the kernel) is printed too, because another busy process on a
2-core machine stretches wall time without changing the work done.

    .venv/bin/python benchmarks/autograde_time.py
"""

import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pruning_kit.course import autograde, course_dir, release  # noqa: E402

BUDGET_S = 15.0


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def submit_solution(root, assignment, student="student"):
    released = json.loads((root / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    source = json.loads((root / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    solutions = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
                 if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"}
    for cell in released["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell["source"] = solutions[gid]
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(json.dumps(released))


def main():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="autograde-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "solutions", root / "solutions")
        shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
        release.release(root)
        for assignment in course_dir.assignments(root):
            submit_solution(root, assignment)
            for run in (1, 2):
                cpu, start = children_cpu(), time.perf_counter()
                rows = autograde.grade(root, assignment, feedback=False, out=io.StringIO())
                graded, graded_cpu = time.perf_counter() - start, children_cpu() - cpu
                cpu, start = children_cpu(), time.perf_counter()
                course_dir.run_nbgrader(root, "generate_feedback", assignment, "--force")
                feedback, feedback_cpu = time.perf_counter() - start, children_cpu() - cpu
                total = graded + feedback
                print(f"{assignment:>10} run {run}: autograde {graded:5.1f} s wall "
                      f"({graded_cpu:4.1f} s CPU), + feedback {feedback:4.1f} s wall "
                      f"({feedback_cpu:4.1f} s CPU) = {total:5.1f} s; score "
                      f"{rows[0]['autograded']:g}/24; budget ratio {total / BUDGET_S:.2f}")
                if run == 2:
                    worst = max(worst, total)
                    single = total
            # a class: nbgrader's start-up is paid once per call, not once per student
            for i in range(2, 5):
                submit_solution(root, assignment, f"student{i}")
            start = time.perf_counter()
            autograde.grade(root, assignment, out=io.StringIO())
            four = time.perf_counter() - start
            print(f"{assignment:>10} 4 submissions in one call: {four:5.1f} s, "
                  f"{(four - single) / 3:4.1f} s for each extra submission")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"slowest warm run (autograde + feedback): {worst:.1f} s = "
          f"{worst / BUDGET_S:.2f} x the {BUDGET_S:g} s budget")


if __name__ == "__main__":
    main()
