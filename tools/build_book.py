"""Build the course book: the lessons, executed with their defaults, as a static HTML site.

Steps:
1. execute the lessons (``tools/execute_lessons.py``: each once, reused while neither
   the lesson nor ``pruning_kit`` changed);
2. copy ``book/`` (Sphinx configuration, front page, style) and the executed lessons,
   their widgets made static (``tools/static_widgets.py``), into ``_build/book_src/``;
3. run Sphinx with MyST-NB into ``_build/book/`` (or ``--out``).

Open ``_build/book/index.html`` in a browser: the site needs no server and no network
(MathJax, fonts and icons are inside the folder).

Usage:
    .venv/bin/python tools/build_book.py            # every lesson (make book)
    .venv/bin/python tools/build_book.py 00 03      # only the lessons named so
    .venv/bin/python tools/build_book.py --out /tmp/book 01
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import execute_lessons  # noqa: E402  (the tools folder is put on the path just above)
import static_widgets  # noqa: E402

ROOT = execute_lessons.ROOT
BOOK_DIR = ROOT / "book"
OUT_DIR = execute_lessons.BUILD_DIR / "book"


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
ALTS_FILE = "figure_alts.json"      # read by book/conf.py


def figure_alts(nb) -> dict[str, str]:
    """``{sha256 of an image output's bytes: its description}`` for a notebook's figures.

    MyST-NB writes each image output to a file named by the sha256 of its bytes; the
    description comes from the output's metadata (``tools/figure_alt.py`` put it there
    while the lesson ran; ``tools/static_widgets.py`` for an explorer's picture).
    An image without one is described by the cell's first comment or line of code.
    """
    alts = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime in IMAGE_TYPES:
                if mime not in output.get("data", {}):
                    continue
                digest = hashlib.sha256(base64.b64decode(output["data"][mime])).hexdigest()
                alt = output.get("metadata", {}).get(mime, {}).get("alt")
                if not alt:
                    first = next((line.strip("# ").strip() for line in cell.source.splitlines()
                                  if line.strip()), "")
                    alt = f"A figure drawn by the code “{first}”."
                alts[digest] = alt
    return alts


def prepare_source(executed: list[Path], source: Path) -> Path:
    """A Sphinx source folder: ``book/`` plus the executed lessons under ``lessons/``.

    Also writes :data:`ALTS_FILE`, every figure's description by image hash, which
    ``book/conf.py`` gives the pictures as their ``alt`` text.

    Args:
        executed: executed lesson notebooks.
        source: the folder to (re)create.

    Returns:
        ``source``.
    """
    import nbformat

    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(BOOK_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "lessons").mkdir()
    alts = {}
    for path in executed:
        nb = static_widgets.make_static(nbformat.read(path, as_version=4))
        alts.update(figure_alts(nb))
        nbformat.write(nb, source / "lessons" / path.name)
    (source / ALTS_FILE).write_text(json.dumps(alts, indent=1, ensure_ascii=False))
    return source


def sphinx_build(source: Path, out: Path, doctrees: Path) -> None:
    """Run ``sphinx-build -b html`` (a fresh build, so no page of an earlier build lingers)."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(doctrees, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E",
               "-d", str(doctrees), str(source), str(out)]
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"sphinx-build failed (exit code {done.returncode}): "
                         f"{' '.join(command)}")


def build(prefixes=(), *, out: Path = OUT_DIR, force: bool = False, log=print) -> Path:
    """Execute the chosen lessons and build the book; the path of its ``index.html``."""
    start = time.perf_counter()
    paths = execute_lessons.lessons(prefixes)
    log(f"executing {len(paths)} lesson(s) with their default parameters")
    executed = execute_lessons.execute_all(paths, force=force, log=log)
    executed_s = time.perf_counter() - start
    out = Path(out).resolve()
    work = execute_lessons.BUILD_DIR if out == OUT_DIR else out.parent
    source = prepare_source(executed, work / f"{out.name}_src")
    log("building the HTML pages with Sphinx and MyST-NB")
    sphinx_build(source, out, work / f"{out.name}_doctrees")
    log(f"book built in {time.perf_counter() - start:.0f} s "
        f"(lessons {executed_s:.0f} s, pages {time.perf_counter() - start - executed_s:.0f} s)")
    return out / "index.html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson name prefixes (default: all)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--force", action="store_true", help="execute lessons even if unchanged")
    args = parser.parse_args(argv)
    try:
        index = build(args.lessons, out=args.out, force=args.force)
    except execute_lessons.LessonError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"open {index} in a browser (file://{index})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
