"""Answer keys rendered from the lessons they answer, so that their numbers cannot drift.

An answer key is written as a template, ``instructor/answers/templates/NN_topic.md``:
Markdown in which

- every fenced block opened with ```` ```python run ```` is executed, in order, in the
  kernel of the lesson ``NN_topic`` just executed at its default parameters: the
  answers to the exercises are really run, after the lesson's own cells, and see
  everything the lesson defined (``trained_copy()``, ``test``, ...);
- every ``{{ expression }}`` is evaluated in that kernel, after the run blocks above
  it, and replaced by ``str()`` of its value; formats go in f-strings:
  ``{{ f"{100 * dense_acc:.1f}" }}``. An expression cannot contain ``}}``.

The rendered key, ``instructor/answers/NN_topic.md``, is what instructors read: the run
blocks appear as ordinary ```` ```python ```` blocks and every placeholder as its value.
Run blocks seed whatever random numbers they draw (``pk.train.seed_everything``) and
work on copies of the lesson's models (``trained_copy()``, ``pk.prune.clone``): the
names they bind are dropped again after the key, but objects changed in place stay
changed. ``tests/test_lessons.py`` renders every template in the kernel that executes
its lesson and fails when the committed key differs from the rendering.

Usage:
    .venv/bin/python tools/build_answer_keys.py            # every lesson with a template
    .venv/bin/python tools/build_answer_keys.py 01 03      # lessons whose name starts so
    .venv/bin/python tools/build_answer_keys.py --check 01 # exit 1 if a committed key differs
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import execute_lessons  # noqa: E402  (this folder is put on the path just above)

ROOT = execute_lessons.ROOT
ANSWERS_DIR = ROOT / "instructor" / "answers"
TEMPLATES_DIR = ANSWERS_DIR / "templates"
MIME = "application/x-answer-key+json"     # how placeholder values leave the kernel
RUN_FENCE = re.compile(r"^```python[ \t]+run[ \t]*$")
PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", flags=re.S)
HEADER = ("<!-- Rendered by tools/build_answer_keys.py from templates/{name}.md after running "
          "lessons/{name}.ipynb at its defaults: edit the template, not this file. -->\n\n")
# Before the key's cells, the harness remembers the lesson's names; after them it restores
# them, so that a check run later in the same kernel sees the lesson as the lesson left it.
SAVE_NAMES = "__answer_key_saved_names__ = dict(get_ipython().user_ns)"
RESTORE_NAMES = """\
def __answer_key_restore__(ns=get_ipython().user_ns, saved=__answer_key_saved_names__):
    for name in set(ns) - set(saved):
        del ns[name]
    ns.update(saved)


__answer_key_restore__()"""


class TemplateError(ValueError):
    """A template that cannot be rendered: an unclosed block or a malformed placeholder."""


@dataclass(frozen=True)
class Part:
    """A piece of a template: Markdown text (with placeholders) or a run block's code."""

    kind: str          # "text" or "run"
    source: str
    line: int          # 1-based line of the template where the piece starts


@dataclass(frozen=True)
class Template:
    """A parsed answer-key template."""

    name: str          # the lesson's stem, e.g. "01_magnitude_pruning"
    parts: tuple[Part, ...]

    @property
    def location(self) -> str:
        return f"instructor/answers/templates/{self.name}.md"


def parse(text: str, *, name: str = "template") -> Template:
    """Split a template into text and run blocks.

    Example:
        >>> t = parse("Acc {{ acc }}.\\n```python run\\nacc = 0.5\\n```\\nNow {{ acc }}.\\n")
        >>> [(p.kind, p.line) for p in t.parts]
        [('text', 1), ('run', 2), ('text', 5)]
        >>> placeholders(t.parts[2])
        [(' acc ', 5)]
    """
    parts, buffer, start, code, code_start = [], [], 1, None, 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if code is None:
            if RUN_FENCE.match(line.rstrip("\n")):
                if buffer:
                    parts.append(Part("text", "".join(buffer), start))
                buffer, code, code_start = [], [], number
            else:
                if not buffer:
                    start = number
                buffer.append(line)
        elif line.rstrip() == "```":
            parts.append(Part("run", "".join(code), code_start))
            code = None
        else:
            code.append(line)
    if code is not None:
        raise TemplateError(f"{name}: the ```python run block opened on line {code_start} is "
                            "never closed (a line holding only ``` closes it)")
    if buffer:
        parts.append(Part("text", "".join(buffer), start))
    template = Template(name, tuple(parts))
    for part in template.parts:
        if part.kind == "text":
            for expression, line in placeholders(part):
                if not expression.strip():
                    raise TemplateError(f"{name}, line {line}: empty placeholder {{{{ }}}}")
                try:
                    compile(f"({expression.strip()})", name, "eval")
                except SyntaxError as error:
                    raise TemplateError(f"{name}, line {line}: {{{{{expression}}}}} is not a "
                                        f"Python expression ({error.msg})") from None
    return template


def placeholders(part: Part) -> list[tuple[str, int]]:
    """(expression, template line) of every ``{{ expression }}`` in a text part."""
    return [(m.group(1), part.line + part.source.count("\n", 0, m.start()))
            for m in PLACEHOLDER.finditer(part.source)]


def cells(template: Template) -> list[str]:
    """The code cells that run a template in a lesson's kernel, in order.

    Each run block is one cell; each text part with placeholders is one cell that
    displays the ``str()`` of its values under :data:`MIME`. The first and last cells
    save and restore the lesson's names.

    Example:
        >>> [c.splitlines()[0] for c in cells(parse("x = {{ 1 + 1 }}\\n", name="00_demo"))][1]
        '# instructor/answers/templates/00_demo.md, placeholders from line 1'
    """
    out = [SAVE_NAMES]
    for part in template.parts:
        if part.kind == "run":
            out.append(f"# {template.location}, run block of line {part.line}\n{part.source}")
            continue
        found = placeholders(part)
        if not found:
            continue
        values = "".join(f"    # line {line}\n    str((\n{expression.strip()}\n    )),\n"
                         for expression, line in found)
        out.append(f"# {template.location}, placeholders from line {part.line}\n"
                   f"__import__('IPython').display.display({{{MIME!r}: [\n{values}]}}, raw=True)")
    out.append(RESTORE_NAMES)
    return out


def values(executed_cells) -> list[str]:
    """The placeholder values that the cells of :func:`cells` displayed, in order."""
    found = []
    for cell in executed_cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                value = data[MIME]
                found.extend(json.loads(value) if isinstance(value, str) else value)
    return found


def render(template: Template, found: list[str]) -> str:
    """The answer key: run blocks shown as ``python`` blocks, placeholders replaced.

    Example:
        >>> t = parse("Two is {{ 1 + 1 }}.\\n```python run\\nx = 1\\n```\\n", name="00_demo")
        >>> print(render(t, ["2"]).split("\\n\\n", 1)[1], end="")
        Two is 2.
        ```python
        x = 1
        ```
    """
    expected = sum(len(placeholders(p)) for p in template.parts if p.kind == "text")
    if len(found) != expected:
        raise TemplateError(f"{template.location}: {expected} placeholders but {len(found)} "
                            "values came back from the kernel")
    remaining = iter(found)
    pieces = [HEADER.format(name=template.name)]
    for part in template.parts:
        if part.kind == "run":
            pieces.append(f"```python\n{part.source}```\n")
        else:
            pieces.append(PLACEHOLDER.sub(lambda _: next(remaining), part.source))
    return "".join(pieces)


def template_path(lesson: Path) -> Path:
    """Where the answer-key template of a lesson lives."""
    return TEMPLATES_DIR / f"{lesson.stem}.md"


def load(lesson: Path) -> Template | None:
    """The parsed template of a lesson, or None when it has none (yet)."""
    path = template_path(lesson)
    if not path.is_file():
        return None
    return parse(path.read_text(encoding="utf-8"), name=lesson.stem)


def rendered_from(template: Template, executed_nb, first_cell: int) -> str:
    """Render ``template`` from a notebook whose cells ``first_cell`` on are its :func:`cells`."""
    return render(template, values(executed_nb.cells[first_cell:]))


def build(prefixes=(), *, check: bool = False, log=print) -> list[str]:
    """Render the keys of the lessons with a template; write them, or only compare.

    Returns:
        The keys (relative paths) that differ from their rendering (``check=True``) or
        that were written.
    """
    changed = []
    for lesson in execute_lessons.lessons(prefixes):
        template = load(lesson)
        if template is None:
            if prefixes:
                log(f"  {lesson.stem}: no template {template_path(lesson).relative_to(ROOT)}")
            continue
        extra = cells(template)
        nb = execute_lessons.run(lesson, extra_cells=extra, log=log)
        text = rendered_from(template, nb, len(nb.cells) - len(extra))
        target = ANSWERS_DIR / f"{lesson.stem}.md"
        old = target.read_text(encoding="utf-8") if target.exists() else ""
        if old == text:
            log(f"  {target.relative_to(ROOT)}: up to date")
            continue
        changed.append(str(target.relative_to(ROOT)))
        if check:
            log("".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                             "committed", "rendered")))
        else:
            target.write_text(text, encoding="utf-8")
            log(f"  {target.relative_to(ROOT)}: written")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson name prefixes (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a committed key differs")
    args = parser.parse_args(argv)
    try:
        changed = build(args.lessons, check=args.check)
    except (execute_lessons.LessonError, TemplateError) as error:
        print(error, file=sys.stderr)
        return 1
    if args.check and changed:
        print("differs from its template's rendering: " + ", ".join(changed)
              + "\n-> run .venv/bin/python tools/build_answer_keys.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
