"""Running a notebook the way a student or CI does, and timing it: shared by the benchmarks.

``lesson_times.py`` and ``student_run_time.py`` both run notebooks in a fresh kernel with one
OpenMP thread and a headless backend, and report the wall time, the time spent in cells and the
slowest cells. The scripts in this folder import it as a sibling module.
"""

import datetime
import os
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kernel_environment() -> None:
    """What every kernel inherits: one thread, a headless backend, this checkout first."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)


def cell_seconds(cell) -> float:
    """Seconds a cell ran, from the timestamps nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run_timed(nb, folder: Path, cell_timeout: int) -> tuple[float, str | None]:
    """Execute notebook ``nb`` in place with ``folder`` as its working directory.

    Returns ``(wall seconds including the kernel's start, error or None)``; a failing cell is
    reported, not raised, so a benchmark goes on with the next notebook.
    """
    from nbclient import NotebookClient

    # ipykernel warns at every start that its loopback TCP link is unencrypted: noise between the
    # rows of a timing table (a cell's own errors still come back through nbclient).
    client = NotebookClient(nb, timeout=cell_timeout, startup_timeout=180, kernel_name="python3",
                            allow_errors=False, resources={"metadata": {"path": str(folder)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    error = None
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()    # drop terminal colours
        error = f"{type(exc).__name__}: {message.splitlines()[-1][:200] if message else ''}"
    return time.perf_counter() - start, error
