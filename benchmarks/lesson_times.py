"""Execute every lesson headless and print how long each takes.

Budget (DESIGN.md): each lesson under 60 s with its default parameters, all
lessons together under 5 minutes, on a 2-core laptop CPU. Each lesson runs in a
fresh kernel on a temporary copy of ``lessons/`` (nothing in the repository is
written), with one OpenMP thread and a headless matplotlib backend, one lesson
after the other. The time of a lesson includes starting its kernel, which is
what a student waits for after "Restart and Run All".

The machine's load average is printed before and after: on a shared machine
other processes slow every lesson down, and the numbers only compare within
one run.

Usage:
    .venv/bin/python benchmarks/lesson_times.py                 # every lessons/*.ipynb
    .venv/bin/python benchmarks/lesson_times.py 00 03           # lessons whose name starts so
    .venv/bin/python benchmarks/lesson_times.py --strict        # exit 1 when over budget too

Exit status: 1 when a lesson fails to execute (or, with ``--strict``, is over budget).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from notebook_timing import ROOT, cell_seconds, kernel_environment, run_timed

LESSONS_DIR = ROOT / "lessons"
LESSON_BUDGET_S = 60.0
TOTAL_BUDGET_S = 300.0


def time_lesson(path: Path, workdir: Path, cell_timeout: int) -> dict:
    """Execute one lesson; return its wall time, slowest cell and error (if any)."""
    import nbformat

    copy_dir = workdir / path.stem
    shutil.copytree(LESSONS_DIR, copy_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nb = nbformat.read(copy_dir / path.name, as_version=4)
    seconds, error = run_timed(nb, copy_dir, cell_timeout)
    # (cell index in the notebook, counting markdown cells too; seconds) for each code cell
    cells = [(i, cell_seconds(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    slowest, slowest_s = max(cells, key=lambda item: item[1]) if cells else (-1, 0.0)
    return {"lesson": path.stem, "seconds": seconds, "cells_s": sum(s for _, s in cells),
            "slowest_cell": slowest, "slowest_s": slowest_s, "error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="only lessons whose file name starts so")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument("--strict", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args(argv)

    lessons = sorted(LESSONS_DIR.glob("*.ipynb"))
    if args.prefixes:
        lessons = [p for p in lessons if p.name.startswith(tuple(args.prefixes))]
    if not lessons:
        print(f"no lessons found in {LESSONS_DIR} matching {args.prefixes or '*'}")
        return 1
    kernel_environment()
    load_before = os.getloadavg()[0]
    print(f"{len(lessons)} lessons, {os.cpu_count()} CPUs, 1 OpenMP thread per kernel, "
          f"load average at start {load_before:.2f}")
    print("seconds: kernel start + all cells; in cells: the cells alone; slowest cell: its index "
          "in the notebook (0 = first cell)")
    print(f"{'lesson':40s} {'seconds':>8s} {'in cells':>9s} {'slowest cell':>14s}  status")
    results = []
    with tempfile.TemporaryDirectory(prefix="lesson_times_") as tmp:
        for path in lessons:
            r = time_lesson(path, Path(tmp), args.timeout)
            results.append(r)
            status = ("FAILED " + r["error"]) if r["error"] else (
                "ok" if r["seconds"] < LESSON_BUDGET_S else f"OVER BUDGET ({LESSON_BUDGET_S:.0f} s)")
            slowest = f"#{r['slowest_cell']} {r['slowest_s']:.1f} s"
            print(f"{r['lesson']:40s} {r['seconds']:8.1f} {r['cells_s']:9.1f} {slowest:>14s}  "
                  f"{status}", flush=True)
    total = sum(r["seconds"] for r in results)
    worst = max(results, key=lambda r: r["seconds"])
    print(f"{'total':40s} {total:8.1f}   budget {TOTAL_BUDGET_S:.0f} s: "
          f"{'ok' if total < TOTAL_BUDGET_S else 'OVER BUDGET'}")
    print(f"slowest lesson {worst['lesson']} at {worst['seconds']:.1f} s = "
          f"{worst['seconds'] / LESSON_BUDGET_S:.2f} of the per-lesson budget; "
          f"load average at end {os.getloadavg()[0]:.2f}")
    failed = [r for r in results if r["error"]]
    over = [r for r in results if r["seconds"] >= LESSON_BUDGET_S] or total >= TOTAL_BUDGET_S
    return 1 if failed or (args.strict and over) else 0


if __name__ == "__main__":
    sys.exit(main())
