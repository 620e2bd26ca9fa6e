"""Execute lessons once, with their default parameters, and keep the executed copies.

`make book` and `make slides` show lessons with their outputs: figures, tables and
the prose the lessons compute. Both take them from here. Each lesson runs in a
fresh kernel, in a temporary copy of ``lessons/`` (the repository is
never written to), on one OpenMP thread with matplotlib's inline backend, as the
tests and ``benchmarks/lesson_times.py`` run them. A cell that raises stops the
build with the lesson's name and the error.

An executed lesson is kept in ``_build/executed/NAME.ipynb`` with a key: the hash
of the lesson file and of every source file of ``pruning_kit``. The next build
reuses it while the key matches, and runs the lesson again as soon as the lesson
or the kit changes.

Usage:
    .venv/bin/python tools/execute_lessons.py            # every numbered lesson
    .venv/bin/python tools/execute_lessons.py 01 03      # lessons whose name starts so
    .venv/bin/python tools/execute_lessons.py --force 01 # run again even if the key matches
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = ROOT / "tools"
# Loaded into each lesson's kernel: every figure's description, the book's alt text.
KERNEL_EXTENSION = TOOLS_DIR / "figure_alt.py"
LESSONS_DIR = ROOT / "lessons"
BUILD_DIR = ROOT / "_build"
EXECUTED_DIR = BUILD_DIR / "executed"
CELL_TIMEOUT_S = 600         # generous: a busy 2-core laptop must not fail a correct lesson
STARTUP_TIMEOUT_S = 180


class LessonError(RuntimeError):
    """A lesson could not be found or raised while it ran."""


def lessons(prefixes=()) -> list[Path]:
    """The numbered lessons (``lessons/NN_topic.ipynb``) whose name starts with a prefix.

    Args:
        prefixes: name prefixes such as ``"01"`` or ``"03_snip"``; none means every lesson.

    Returns:
        The lesson paths, sorted by name.

    Example:
        >>> [p.name for p in lessons(["00"])]
        ['00_compression_overview.ipynb']
    """
    numbered = sorted(p for p in LESSONS_DIR.glob("*.ipynb") if re.match(r"\d\d_", p.name))
    if not prefixes:
        return numbered
    chosen = [p for p in numbered if any(p.stem.startswith(str(x)) for x in prefixes)]
    unknown = [x for x in prefixes if not any(p.stem.startswith(str(x)) for p in numbered)]
    if unknown:
        raise LessonError(f"no lesson name starts with {', '.join(map(repr, unknown))}; the "
                          f"lessons are {', '.join(p.stem for p in numbered)}")
    return chosen


def source_key(path: Path) -> str:
    """Hash of a lesson and of the kit it imports: an executed copy is valid while it matches.

    Example:
        >>> len(source_key(lessons(["00"])[0]))
        64
    """
    digest = hashlib.sha256(path.read_bytes())
    digest.update(KERNEL_EXTENSION.read_bytes())
    for source in sorted((ROOT / "pruning_kit").rglob("*.py")):
        if "course" in source.relative_to(ROOT / "pruning_kit").parts:
            continue                 # grading machinery: lessons never import it
        digest.update(str(source.relative_to(ROOT)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _kernel_environment() -> None:
    """What every kernel inherits: one thread, a headless backend, the repository importable."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(TOOLS_DIR)]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _run_folder(workdir: Path) -> Path:
    """A copy of ``lessons/`` in ``workdir`` beside a link to ``data/`` (lessons read ``../data``)."""
    shutil.copytree(LESSONS_DIR, workdir / "lessons",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.out.ipynb"))
    (ROOT / "data").mkdir(exist_ok=True)
    (workdir / "data").symlink_to(ROOT / "data", target_is_directory=True)
    return workdir / "lessons"


def run(path: Path, *, extra_cells=(), log=print):
    """Execute one lesson in a fresh kernel, then ``extra_cells`` in the same kernel.

    The lesson runs as everywhere else (a temporary copy of ``lessons/``, one OpenMP
    thread, the inline backend); the extra cells see the lesson's namespace, as code
    typed after "Run All" would (``tools/build_answer_keys.py`` runs the answer keys'
    code this way).

    Args:
        path: a lesson notebook.
        extra_cells: source strings of code cells appended after the lesson's own cells.
        log: where progress lines go.

    Returns:
        The executed notebook (``nbformat.NotebookNode``), extra cells included.

    Raises:
        LessonError: when a cell raises (the message names the lesson).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell

    _kernel_environment()
    log(f"  {path.stem}: executing ...")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lesson-run-") as workdir:
        folder = _run_folder(Path(workdir))
        nb = nbformat.read(folder / path.name, as_version=4)
        nb.cells.extend(new_code_cell(source) for source in extra_cells)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=STARTUP_TIMEOUT_S,
                                kernel_name="python3", allow_errors=False,
                                extra_arguments=[f"--InteractiveShellApp.extensions="
                                                 f"{KERNEL_EXTENSION.stem}"],
                                resources={"metadata": {"path": str(folder)}})
        try:
            client.execute()
        except CellExecutionError as error:
            message = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
            raise LessonError(f"lesson {path.name} stopped with an error:\n{message[-3000:]}\n"
                              f"-> {path.name} failed to execute (see above); the other "
                              "lessons can still be built, e.g. make book LESSONS=\"00 01\"") from None
    log(f"  {path.stem}: done in {time.perf_counter() - start:.0f} s")
    return nb


def execute(path: Path, *, force: bool = False, log=print) -> Path:
    """The executed copy of one lesson, running it only when its key changed.

    Args:
        path: a lesson notebook.
        force: run it even when a copy with the same key exists.
        log: where progress lines go (``print``, or a function that ignores them).

    Returns:
        The path of the executed notebook in ``_build/executed/``.

    Raises:
        LessonError: when a cell of the lesson raises (the message names the lesson).
    """
    import nbformat

    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    target = EXECUTED_DIR / path.name
    key_file = target.with_suffix(".key")
    key = source_key(path)
    if not force and target.exists() and key_file.exists() and key_file.read_text() == key:
        log(f"  {path.stem}: unchanged, executed copy reused")
        return target
    nb = run(path, log=log)
    # Written under temporary names, then renamed: a build running at the same time (or one
    # killed half-way) never sees a notebook without its key or a key without its notebook.
    key_file.unlink(missing_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    nbformat.write(nb, partial)
    os.replace(partial, target)
    partial_key = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    partial_key.write_text(key)
    os.replace(partial_key, key_file)
    return target


def execute_all(paths, *, force: bool = False, log=print) -> list[Path]:
    """:func:`execute` each lesson in turn; the executed copies in the same order."""
    return [execute(path, force=force, log=log) for path in paths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson name prefixes (default: all)")
    parser.add_argument("--force", action="store_true", help="execute even if unchanged")
    args = parser.parse_args(argv)
    try:
        for path in execute_all(lessons(args.lessons), force=args.force):
            print(path.relative_to(ROOT))
    except LessonError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
