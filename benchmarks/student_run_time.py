"""How long a student waits for "Restart Kernel and Run All Cells…" on the reference solution.

Budget: each assignment's reference solution runs top to bottom in
under 3 minutes on a 2-core laptop. The notebook run is the one a student has at
the end: the released notebook with the reference code filled into the solution
cells (``pruning_kit.course.sample``, as ``sample-submission`` writes it), so the
visible tests and every training and plotting cell run, the hidden tests do not.
One fresh kernel per assignment, one OpenMP thread, a headless matplotlib
backend, in a temporary folder (nothing in the repository is written). The time
includes starting the kernel.

The machine's load average is printed before and after: other processes on a
shared machine slow every cell down, so numbers compare only within one run.

Usage:
    .venv/bin/python benchmarks/student_run_time.py              # every assignment
    .venv/bin/python benchmarks/student_run_time.py binarized    # one of them
    .venv/bin/python benchmarks/student_run_time.py --strict     # exit 1 when over budget too

Exit status: 1 when a notebook fails to run (or, with ``--strict``, is over budget).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from notebook_timing import ROOT, cell_seconds, kernel_environment, run_timed  # noqa: E402

sys.path.insert(0, str(ROOT))

from pruning_kit.course.course_dir import assignments  # noqa: E402
from pruning_kit.course.sample import sample_notebook  # noqa: E402

BUDGET_S = 180.0


def _label(cell, index) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"#{index} {gid}" if gid else f"#{index}"


def time_assignment(name: str, workdir: Path, cell_timeout: int) -> dict:
    """Run one assignment's reference solution as a student would; return its times."""
    import nbformat

    released = json.loads((ROOT / "assignments" / name / f"{name}.ipynb").read_text())
    source = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    nb = nbformat.reads(json.dumps(sample_notebook(released, source)), as_version=4)
    folder = workdir / name
    folder.mkdir()
    seconds, error = run_timed(nb, folder, cell_timeout)
    cells = sorted(((cell_seconds(c), _label(c, i)) for i, c in enumerate(nb.cells)
                    if c.cell_type == "code"), reverse=True)
    return {"assignment": name, "seconds": seconds, "cells_s": sum(s for s, _ in cells),
            "slowest": cells[:3], "error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="assignments (default: all)")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument("--strict", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args(argv)
    names = args.names or assignments(ROOT)
    kernel_environment()
    print(f"{len(names)} assignments, {os.cpu_count()} CPUs, 1 OpenMP thread per kernel, "
          f"load average at start {os.getloadavg()[0]:.2f}; budget {BUDGET_S:.0f} s each")
    print(f"{'assignment':12s} {'seconds':>8s} {'in cells':>9s}  slowest cells  status")
    results = []
    with tempfile.TemporaryDirectory(prefix="student_run_time_") as tmp:
        for name in names:
            r = time_assignment(name, Path(tmp), args.timeout)
            results.append(r)
            status = ("FAILED " + r["error"]) if r["error"] else (
                "ok" if r["seconds"] < BUDGET_S else f"OVER BUDGET ({BUDGET_S:.0f} s)")
            slowest = ", ".join(f"{label} {s:.1f} s" for s, label in r["slowest"])
            print(f"{name:12s} {r['seconds']:8.1f} {r['cells_s']:9.1f}  {slowest}  {status}",
                  flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    failed = [r for r in results if r["error"]]
    over = [r for r in results if r["seconds"] >= BUDGET_S]
    return 1 if failed or (args.strict and over) else 0


if __name__ == "__main__":
    sys.exit(main())
