"""The answer-key generator: templates parsed, run in a lesson's kernel and rendered exactly.

The comparison of every committed key with its rendering happens where the lessons are
executed anyway (``tests/test_lessons.py``, one kernel per lesson); here the generator
itself is checked: how a template is split, what runs in the kernel, how values come
back and are put in place, its errors, and one small notebook run end to end through
``tools/execute_lessons.py`` as ``tools/build_answer_keys.py`` runs a lesson.
"""

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_answer_keys as keys  # noqa: E402  (tools/ is put on the path just above)
import execute_lessons  # noqa: E402

TEMPLATE = """\
# Lesson 9 — a demo: answer key

Before any block the lesson's value is {{ value }}.

```python run
doubled = 2 * value
```

After the block: {{ doubled }}, formatted {{ f"{doubled:.2f}" }}; a dict {{ {"a": 1} }}.

```python
not_run = 1 / 0   # an ordinary block is only shown
```
"""


def test_a_template_splits_into_text_and_run_blocks_with_their_lines():
    template = keys.parse(TEMPLATE, name="09_demo")
    assert [(p.kind, p.line) for p in template.parts] == [("text", 1), ("run", 5), ("text", 8)]
    assert template.parts[1].source == "doubled = 2 * value\n"
    assert [line for _, line in keys.placeholders(template.parts[2])] == [9, 9, 9]


def test_rendering_shows_run_blocks_as_python_and_puts_every_value_in_place():
    template = keys.parse(TEMPLATE, name="09_demo")
    text = keys.render(template, ["21", "42", "42.00", "{'a': 1}"])
    assert text.startswith("<!-- Rendered by tools/build_answer_keys.py from templates/09_demo.md")
    body = text.split("-->\n\n", 1)[1]
    assert "lesson's value is 21." in body
    assert "After the block: 42, formatted 42.00; a dict {'a': 1}." in body
    assert "```python\ndoubled = 2 * value\n```" in body and "python run" not in body
    assert "not_run = 1 / 0" in body and "{{" not in body


def test_the_kernel_cells_save_and_restore_names_and_evaluate_placeholders_in_order():
    cells = keys.cells(keys.parse(TEMPLATE, name="09_demo"))
    assert cells[0] == keys.SAVE_NAMES and cells[-1] == keys.RESTORE_NAMES
    assert len(cells) == 5                  # save, placeholders, run block, placeholders, restore
    assert "doubled = 2 * value" in cells[2] and "not_run" not in "".join(cells)
    assert cells[1].startswith("# instructor/answers/templates/09_demo.md, placeholders from line 1")


def test_values_come_back_from_the_displayed_outputs_only():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n"),
                    nbformat.v4.new_output("display_data", data={keys.MIME: ["1", "2"]})]
    assert keys.values([cell]) == ["1", "2"]


@pytest.mark.parametrize("text,message", [
    ("```python run\nx = 1\n", "never closed"),
    ("a {{ }} b", "empty placeholder"),
    ("a {{ 1 + }} b", "is not a Python expression"),
])
def test_a_broken_template_is_refused_with_its_line(text, message):
    with pytest.raises(keys.TemplateError, match=message):
        keys.parse(text, name="09_demo")


def test_a_count_mismatch_is_an_error_not_a_shifted_key():
    with pytest.raises(keys.TemplateError, match="2 placeholders but 1 values"):
        keys.render(keys.parse("{{ 1 }} {{ 2 }}"), ["1"])


def test_every_template_belongs_to_a_lesson_and_parses():
    lessons = {p.stem for p in execute_lessons.lessons()}
    for path in sorted(keys.TEMPLATES_DIR.glob("*.md")):
        assert path.stem in lessons, f"{path.name}: no lesson lessons/{path.stem}.ipynb"
        template = keys.parse(path.read_text(encoding="utf-8"), name=path.stem)
        assert any(p.kind == "text" and keys.placeholders(p) for p in template.parts), (
            f"{path.name} has no {{{{ placeholder }}}}: its numbers would be typed by hand")


def test_a_rendered_key_says_it_is_generated_and_templates_stay_out_of_the_key_list():
    for path in sorted(keys.TEMPLATES_DIR.glob("*.md")):
        key = keys.ANSWERS_DIR / path.name
        assert key.is_file(), f"instructor/answers/{path.name} was never rendered"
        assert key.read_text(encoding="utf-8").startswith(
            keys.HEADER.format(name=path.stem)), f"{key.name} lacks the generated-file header"


@pytest.mark.slow
def test_a_notebook_and_its_template_render_in_one_kernel(tmp_path, monkeypatch):
    # The path tools/build_answer_keys.py takes, on a two-cell notebook instead of a lesson.
    lesson_dir = tmp_path / "lessons"
    lesson_dir.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("value = 21")])
    nbformat.write(nb, lesson_dir / "09_demo.ipynb")
    monkeypatch.setattr(execute_lessons, "LESSONS_DIR", lesson_dir)
    monkeypatch.setattr(execute_lessons, "ROOT", tmp_path)
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MPLBACKEND", "PYTHONPATH"):
        monkeypatch.setenv(name, os.environ.get(name, ""))   # run() sets them; undone after
    template = keys.parse(TEMPLATE + "{{ 'doubled' in dir() }}\n", name="09_demo")
    extra = keys.cells(template) + ["assert 'doubled' not in dir() and value == 21"]
    executed = execute_lessons.run(lesson_dir / "09_demo.ipynb", extra_cells=extra,
                                   log=lambda *_: None)
    text = keys.rendered_from(template, executed, 1)
    assert "lesson's value is 21." in text and "After the block: 42, formatted 42.00" in text
    assert re.search(r"^True$", text, flags=re.M)   # evaluated before the names are restored


def test_the_generator_docstring_examples_run():
    import doctest

    result = doctest.testmod(keys, verbose=False)
    assert result.attempted and not result.failed
