"""Checking submissions before nbgrader sees them.

A notebook that is not valid JSON, a missing notebook, deleted or edited cells
and suspicious code (replacing ``torch.equal``, touching the grading checks)
each give a clear note for that student; the rest of the class is graded.

Example:
    >>> function_of("test_magnitude_mask_hidden")
    'magnitude_mask'
"""

import json
import re
import warnings
from pathlib import Path

import nbformat

from .course_dir import course_config
from .execute import is_test_cell, nbgrader_meta


SUSPICIOUS = [
    (re.compile(r"\b(torch|np|numpy)\s*\.\s*(testing\s*\.\s*)?\w+\s*=(?!=)"),
     "assigns to a torch/numpy function"),
    (re.compile(r"setattr\s*\(\s*(torch|np|numpy|builtins|nn)\b"), "patches torch/numpy/builtins"),
    (re.compile(r"\bbuiltins\b"), "touches builtins"),
    (re.compile(r"pruning_kit\s*\.\s*(grading|course)|\bimport\s+(grading|checks)\b"
                r"|\b(grading|checks|core)\s*\.\s*\w+"),
     "touches the grading checks (pruning_kit.course)"),
    (re.compile(r"\b(pk|pruning_kit)\s*\.\s*(prune|quant|binary|lottery|structured)\s*\.\s*\w+"),
     "calls the course library's version"),
    (re.compile(r"__eq__|__torch_function__|__instancecheck__"), "defines comparison hooks"),
    (re.compile(r"\bos\s*\.\s*(_exit|kill)\b|\bsignal\s*\.\s*SIG"), "kills the process"),
    (re.compile(r"\bsys\s*\.\s*(modules|settrace|setprofile)\b|\bimportlib\b"),
     "changes the import system or tracing"),
    (re.compile(r"get_ipython\s*\(\s*\)\s*\.\s*(set_custom_exc|events|run_cell)"),
     "changes how the notebook runs"),
]


def source_cells(course_dir, assignment):
    """{notebook name: {grade_id: cell}} from the release (what students received)."""
    source, release_dir = course_config(course_dir)
    out = {}
    for path in sorted((Path(course_dir) / source / assignment).glob("*.ipynb")):
        released = Path(course_dir) / release_dir / assignment / path.name
        nb = json.loads((released if released.exists() else path).read_text())
        cells = {}
        for cell in nb["cells"]:
            meta = nbgrader_meta(cell)
            if meta.get("grade_id"):
                cells[meta["grade_id"]] = cell
        out[path.stem] = cells
    return out


def _joined(source):
    return "".join(source) if isinstance(source, list) else str(source)


def function_of(grade_id):
    m = re.match(r"^test_(.+)_(visible|hidden)$", grade_id)
    return m.group(1) if m else None


def preflight(course_dir, assignment, student):
    """Check one student's submission before autograding.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        student: the student id (folder name under ``submitted/``).

    Returns:
        ``(gradable, notes)``: ``gradable`` is False when nbgrader cannot read the
        notebook; ``notes`` are sentences for the student and the instructor.

    Example:
        >>> import pruning_kit
        >>> preflight(Path(pruning_kit.__file__).parents[1], "pruning", "nobody")
        (True, ['no pruning.ipynb submitted: scored 0'])
    """
    notes = []
    gradable = True
    folder = Path(course_dir) / "submitted" / student / assignment
    expected = source_cells(course_dir, assignment)
    for name, cells_of_notebook in expected.items():
        path = folder / f"{name}.ipynb"
        if not path.exists():
            others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
            hint = f" (found {', '.join(others)}: rename it to {name}.ipynb)" if others else ""
            notes.append(f"no {name}.ipynb submitted{hint}: scored 0")
            continue
        raw = path.read_bytes()
        try:
            nb = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            notes.append(f"{name}.ipynb is not UTF-8 text ({exc}); not graded. Save the notebook "
                         f"from Jupyter and submit it again")
            gradable = False
            continue
        except json.JSONDecodeError as exc:
            notes.append(f"{name}.ipynb is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); not graded. Open it in Jupyter, save it, and submit it "
                         f"again (do not edit .ipynb files in a text editor)")
            gradable = False
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. cells without ids: nbgrader copes
                nbformat.validate(nbformat.from_dict(nb), version=4)
        except Exception as exc:  # nbformat.ValidationError, or a non-notebook JSON
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(f"{name}.ipynb is JSON but not a valid notebook ({first}); not graded")
            gradable = False
            continue
        submitted = {}
        for cell in nb["cells"]:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid:
                submitted[gid] = cell
        for gid, cell in cells_of_notebook.items():
            meta = nbgrader_meta(cell)
            if gid not in submitted:
                if is_test_cell(cell):
                    notes.append(f"test cell {gid} was deleted; nbgrader put the original back "
                                 f"and ran it")
                elif meta.get("solution") and not meta.get("grade"):
                    notes.append(f"the cell for {gid} was deleted: its tests score 0")
                elif meta.get("grade"):
                    notes.append(f"answer cell {gid} was deleted; restored empty")
                elif meta.get("locked"):
                    notes.append(f"read-only cell {gid} was deleted")
            elif meta.get("locked") and _joined(submitted[gid].get("source", "")) != _joined(
                    cell.get("source", "")):
                notes.append(f"read-only cell {gid} was edited; nbgrader restored the original")
        for i, cell in enumerate(nb["cells"]):
            if cell.get("cell_type") != "code" or nbgrader_meta(cell).get("locked"):
                continue
            text = _joined(cell.get("source", ""))
            gid = nbgrader_meta(cell).get("grade_id") or f"unnamed cell {i}"
            for pattern, why in SUSPICIOUS:
                m = pattern.search(text)
                if m:
                    notes.append(f"review: {gid} {why} ({m.group(0).strip()!r})")
                    break
    return gradable, notes
