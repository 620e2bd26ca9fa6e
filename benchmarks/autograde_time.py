"""Time to autograde submissions with the real nbgrader pipeline, per assignment.

Budget: under 60 s per submission on 2 CPU cores, training parts included (DESIGN.md), for
`nbgrader autograde` plus `nbgrader generate_feedback`, as `make grade` runs them.

A temporary course uses the repository's nbgrader_config.py unchanged; the
reference solution is submitted as one student and graded twice (the second run
has warm file caches), then three more copies are graded in one call to show the
cost of each extra student. Wall time is what the budget is about; CPU time (of
nbgrader and the kernel) is printed too, because another busy process on a
2-core machine stretches wall time without changing the work done.

The trusted checker decides every test cell in the grader's process while the notebook runs
in its kernel (grader/pruning_grader). Its cost is printed per assignment (the checker alone,
on the reference submission: its checks train models too) and as its fixed cost per
submission (budget: under 2 s): the checker on the tiny ``warmup`` assignment of the test
suite, whose checks take no time, so what remains is starting the sandboxed student process,
defining the answer cells and forking a child per test cell.

The cost of the grading sandbox (pruning_kit/course/sandbox.py) is measured in the
same run (budget: well under a second per submission). What the sandbox adds does not
depend on what the notebook computes (starting bwrap, copying the student's folder,
checking once per nbgrader process that a sandbox starts), while a busy 2-core machine
moves the time of a training notebook by seconds from one run to the next; so the same
small submission (``warmup``) is autograded alternately with and without the sandbox, 5
times each, and the fastest runs are compared. The start of a bare kernel with and without
it (the part paid again at every kernel restart) is printed too.

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
sys.path.insert(0, str(REPO / "tests"))  # the warmup course of the test suite

from pruning_kit.course import autograde, course_dir, release, sample, sandbox  # noqa: E402

BUDGET_S = 60.0
SANDBOX_BUDGET_S = 1.0
CHECKER_BUDGET_S = 2.0
UNSANDBOXED = """
# the unsandboxed runs of the benchmark: kernels and the checker's student process
c.RobustExecute.kernel_provisioner = ''
c.Sandbox.bwrap = '/nonexistent/bwrap'
c.Sandbox.allow_unsandboxed_grading = True
"""


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def autograded_points(root, assignment):
    """The points the test cells of the released notebook are worth."""
    nb = json.loads((root / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in nb["cells"]
               if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("grade"))


def submit_solution(root, assignment, student="student"):
    sample.sample_submission(root, assignment, student, force=True)


def kernel_start_s(root, sandboxed, repeats=5):
    """Median seconds to start a kernel and get its first reply, working in autograded/student."""
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    workdir = root / "autograded" / "student"
    times = []
    for _ in range(repeats):
        km = KernelManager(kernel_name="python3", config=config)
        if sandboxed:
            km.kernel_spec.metadata["kernel_provisioner"] = {
                "provisioner_name": sandbox.PROVISIONER, "config": {}}
        start = time.perf_counter()
        km.start_kernel(cwd=str(workdir))
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        times.append(time.perf_counter() - start)
        client.stop_channels()
        km.shutdown_kernel(now=True)
    return sorted(times)[len(times) // 2]


def checker_s(root, assignment, student="student"):
    """Seconds of the trusted checker alone on one student's submitted notebook, and cells."""
    import nbformat

    from pruning_grader.checker import check_notebook
    from pruning_grader.nbgrader import load_assignment
    from pruning_kit.course.sandbox import load_course_config

    path = root / "submitted" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    config = load_course_config(root)
    start = time.perf_counter()
    # the course's own registries (the warmup course names its registry in its config)
    registries = dict(config.get("CheckedExecute", {}).get("assignments", {}))
    results = check_notebook(load_assignment(assignment, registries), nb, workdir=path.parent,
                             config=config)
    return time.perf_counter() - start, results


def warmup_course(root):
    """The test suite's warmup course (its own registry) with one correct submission."""
    from support import warmup

    course = warmup.make_course(root / "warmup-course")
    warmup.submit(course, "student", warmup.CORRECT)
    return course


def sandbox_cost(root, assignment, repeats=5):
    """Fastest autograde of one submission with and without the sandbox (alternating); seconds."""
    config = root / "nbgrader_config.py"
    text = config.read_text()
    runs = {True: [], False: []}
    try:
        for sandboxed in (True, False) * repeats:
            config.write_text(text if sandboxed else text + UNSANDBOXED)
            os.environ[sandbox.ALLOW_ENV] = "0" if sandboxed else "1"
            start = time.perf_counter()
            autograde.grade(root, assignment, feedback=False, out=io.StringIO())
            runs[sandboxed].append(time.perf_counter() - start)
    finally:
        config.write_text(text)
        os.environ.pop(sandbox.ALLOW_ENV, None)
    return min(runs[True]), min(runs[False])


def main():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="autograde-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "solutions", root / "solutions")
        shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
        release.release(root)
        print(sandbox.grading_mode(root))
        for assignment in course_dir.assignments(root):
            submit_solution(root, assignment)
            for run in (1, 2):
                cpu, start = children_cpu(), time.perf_counter()
                rows = autograde.grade(root, assignment, feedback=False, out=io.StringIO())
                maximum = autograded_points(root, assignment)
                graded, graded_cpu = time.perf_counter() - start, children_cpu() - cpu
                cpu, start = children_cpu(), time.perf_counter()
                course_dir.run_nbgrader(root, "generate_feedback", assignment, "--force")
                feedback, feedback_cpu = time.perf_counter() - start, children_cpu() - cpu
                total = graded + feedback
                print(f"{assignment:>10} run {run}: autograde {graded:5.1f} s wall "
                      f"({graded_cpu:4.1f} s CPU), + feedback {feedback:4.1f} s wall "
                      f"({feedback_cpu:4.1f} s CPU) = {total:5.1f} s; score "
                      f"{rows.loc[0, 'autograded']:g}/{maximum:g}; budget ratio "
                      f"{total / BUDGET_S:.2f}")
                if run == 2:
                    worst = max(worst, total)
                    single = total
            seconds, results = checker_s(root, assignment)
            slowest = max(results.values(), key=lambda r: r.seconds)
            print(f"{assignment:>10} the trusted checker alone: {seconds:5.1f} s for "
                  f"{len(results)} test cells (it runs beside the notebook's kernel; slowest "
                  f"cell {slowest.grade_id} {slowest.seconds:.1f} s)")
            # a class: nbgrader's start-up is paid once per call, not once per student
            for i in range(2, 5):
                submit_solution(root, assignment, f"student{i}")
            start = time.perf_counter()
            autograde.grade(root, assignment, out=io.StringIO())
            four = time.perf_counter() - start
            print(f"{assignment:>10} 4 submissions in one call: {four:5.1f} s, "
                  f"{(four - single) / 3:4.1f} s for each extra submission")
        # the checker's fixed cost, and the sandbox: the warmup submission, in this run
        warmup = warmup_course(root)
        runs = [checker_s(warmup, "warmup") for _ in range(3)]
        fixed, results = min(runs, key=lambda run: run[0])
        per_cell = sorted(r.seconds for r in results.values())[len(results) // 2]
        print(f"the checker's own cost per submission: {fixed:.2f} s for {len(results)} test "
              f"cells (fastest of 3; median {per_cell * 1000:.0f} ms a cell): budget ratio "
              f"{fixed / CHECKER_BUDGET_S:.2f} of {CHECKER_BUDGET_S:g} s")
        on, off = sandbox_cost(warmup, "warmup")
        print(f"sandbox: autograde of one submission {on:5.2f} s sandboxed vs {off:5.2f} s "
              f"unsandboxed = {on - off:+.2f} s per submission (budget {SANDBOX_BUDGET_S:g} s; "
              f"fastest of 5 each, alternating)")
        on, off = kernel_start_s(warmup, True), kernel_start_s(warmup, False)
        print(f"sandbox: kernel start (to its first reply, median of 5) {on * 1000:.0f} ms "
              f"sandboxed vs {off * 1000:.0f} ms unsandboxed = {(on - off) * 1000:+.0f} ms "
              f"per kernel (paid again at each restart)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"slowest warm run (autograde + feedback): {worst:.1f} s = "
          f"{worst / BUDGET_S:.2f} x the {BUDGET_S:g} s budget")


if __name__ == "__main__":
    main()
