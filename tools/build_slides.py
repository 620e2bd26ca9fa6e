"""Export a lesson as reveal.js slides that open offline (`make slides LESSON=01`).

The lesson is executed with its default parameters (``tools/execute_lessons.py``; a
copy executed for the book is reused), its widgets are made static
(``tools/static_widgets.py``), and nbconvert's slides exporter writes
``_build/slides/NN_topic.slides.html``. reveal.js (from the PyPI package
sphinx-revealjs) and MathJax 3 (from sphinx-mathjax-offline) are copied beside it,
so the deck needs no network; the template in ``tools/templates/pk_reveal`` loads
nothing from a CDN.

The lessons carry no slide metadata of their own, so this script adds it (the
lesson files are not changed):

- a markdown cell is split at its headings; a level-1 or level-2 heading starts a
  new slide, a deeper heading a sub-slide (reveal.js's vertical stack);
- a code cell appears as a fragment: the next key press shows it with its output;
- other markdown continues the current slide.

A notebook whose cells already have ``slideshow`` metadata is left as its author
set it. Slides taller than the screen scroll.

Usage:
    .venv/bin/python tools/build_slides.py 01              # lesson 01, executed
    .venv/bin/python tools/build_slides.py 01 --no-execute # the code only, no outputs
    .venv/bin/python tools/build_slides.py 03 --out /tmp/slides
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import execute_lessons  # noqa: E402  (the tools folder is put on the path just above)
import static_widgets  # noqa: E402

ROOT = execute_lessons.ROOT
OUT_DIR = execute_lessons.BUILD_DIR / "slides"
TEMPLATES = Path(__file__).resolve().parent / "templates"
REVEAL_DIR = "reveal.js"                     # beside the deck
MATHJAX_DIR = "mathjax"
THEME = "white"          # reveal.js themes such as "simple" import web fonts; "white" ships its own
MATHJAX_FILES = ("tex-svg-full.js", "ui")
REVEAL_FILES = ("dist", "plugin/notes")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+\S")


def _package_folder(package: str, *parts: str) -> Path:
    """A folder shipped inside an installed package, or a clear error naming the package."""
    spec = importlib.util.find_spec(package)
    folder = Path(spec.origin).parent.joinpath(*parts) if spec and spec.origin else None
    if folder is None or not folder.is_dir():
        raise SystemExit(f"the slides need files from the PyPI package {package} "
                         f"({'/'.join(parts)}): run `make setup` (or pip install -e '.[dev]')")
    return folder


def reveal_source() -> Path:
    """reveal.js as sphinx-revealjs ships it (``dist/``, ``plugin/``)."""
    return _package_folder("sphinx_revealjs", "_static", "revealjs")


def mathjax_source() -> Path:
    """MathJax 3 as sphinx-mathjax-offline ships it."""
    return _package_folder("sphinx-mathjax-offline", "static", "mathjax")


def split_at_headings(source: str) -> list[str]:
    """A markdown text cut before each heading line (code fences respected).

    Example:
        >>> split_at_headings("intro\\n## One\\ntext\\n### Two")
        ['intro', '## One\\ntext', '### Two']
    """
    pieces, current, fenced = [], [], False
    for line in source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and HEADING.match(line) and any(s.strip() for s in current):
            pieces.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(s.strip() for s in current):
        pieces.append("\n".join(current).strip("\n"))
    return pieces


def slide_type(cell) -> str:
    """The reveal.js role of a cell under the rules of this module.

    Example:
        >>> from nbformat.v4 import new_code_cell, new_markdown_cell
        >>> [slide_type(c) for c in (new_markdown_cell("# Title"), new_markdown_cell("### Detail"),
        ...                          new_markdown_cell("Text."), new_code_cell("x = 1"))]
        ['slide', 'subslide', '-', 'fragment']
    """
    if cell.cell_type == "code":
        return "fragment"
    match = HEADING.match(cell.source.lstrip("\n"))
    if match:
        return "slide" if len(match.group(1)) <= 2 else "subslide"
    return "-"


def add_slide_metadata(nb):
    """Give every cell a ``slideshow.slide_type`` (in place) unless the notebook has some."""
    from nbformat.v4 import new_markdown_cell

    if any("slideshow" in cell.metadata for cell in nb.cells):
        return nb
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            pieces = split_at_headings(cell.source)
            if len(pieces) <= 1:
                cells.append(cell)
                continue
            extra = {"attachments": cell.attachments} if cell.get("attachments") else {}
            cells.extend(new_markdown_cell(piece, **extra) for piece in pieces)
        else:
            cells.append(cell)
    for index, cell in enumerate(cells):
        kind = slide_type(cell)
        cell.metadata["slideshow"] = {"slide_type": "slide" if index == 0 else kind}
    nb.cells = cells
    return nb


def _copy_assets(out: Path) -> None:
    reveal, mathjax = reveal_source(), mathjax_source()
    for part in REVEAL_FILES:
        shutil.copytree(reveal / part, out / REVEAL_DIR / part, dirs_exist_ok=True)
    (out / MATHJAX_DIR).mkdir(parents=True, exist_ok=True)
    for name in MATHJAX_FILES:
        if (mathjax / name).is_dir():
            shutil.copytree(mathjax / name, out / MATHJAX_DIR / name, dirs_exist_ok=True)
        else:
            shutil.copy2(mathjax / name, out / MATHJAX_DIR / name)


def export(nb, name: str, out: Path) -> Path:
    """Write ``nb`` as ``out/<name>.slides.html`` with its assets beside it; the HTML path."""
    from nbconvert.exporters import SlidesExporter

    nb = add_slide_metadata(static_widgets.make_static(nb))
    exporter = SlidesExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="pk_reveal")
    exporter.reveal_url_prefix = REVEAL_DIR
    exporter.reveal_theme = THEME
    resources = {"metadata": {"name": name}, "pk_mathjax_url": f"{MATHJAX_DIR}/{MATHJAX_FILES[0]}"}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    out.mkdir(parents=True, exist_ok=True)
    _copy_assets(out)
    target = out / f"{name}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def build(prefix: str, *, out: Path = OUT_DIR, execute: bool = True, log=print) -> Path:
    """Export the lesson whose name starts with ``prefix``; the path of the deck."""
    import nbformat

    paths = execute_lessons.lessons([prefix])
    if len(paths) != 1:
        raise execute_lessons.LessonError(
            f"LESSON={prefix!r} names {len(paths)} lessons ({', '.join(p.stem for p in paths)}); "
            "give one, e.g. LESSON=01")
    path = paths[0]
    source = execute_lessons.execute(path, log=log) if execute else path
    return export(nbformat.read(source, as_version=4), path.stem, Path(out))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lesson", help="lesson number or name prefix, e.g. 01")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--no-execute", dest="execute", action="store_false",
                        help="export the lesson's code without running it (no outputs)")
    args = parser.parse_args(argv)
    try:
        deck = build(args.lesson, out=args.out, execute=args.execute)
    except execute_lessons.LessonError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"open {deck} in a browser (file://{deck.resolve()}); press S for speaker notes, "
          "Esc for the overview")
    return 0


if __name__ == "__main__":
    sys.exit(main())
