"""The lessons: all seven exist, follow the skeleton, are committed clean, and run headless.

Every ``lessons/*.ipynb`` is picked up by the glob, so a lesson added later is
checked and executed without editing this file. Execution uses nbclient on a
temporary copy of ``lessons/`` (the repository is never written to), one
OpenMP thread per kernel and a headless matplotlib backend; any cell error
fails the test.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"
REQUIRED = ("00_compression_overview", "01_magnitude_pruning", "02_lottery_ticket", "03_snip",
            "04_quantization", "05_structured_pruning", "06_hyperparameters_under_pruning")
DEMO = "demo_live"
EMBEDDED_DATASETS = ("mnist5k", "digits")
CELL_TIMEOUT_S = 600          # generous: a slow shared CI runner must not fail a correct lesson
STARTUP_TIMEOUT_S = 180

NOTEBOOKS = sorted(LESSONS_DIR.glob("*.ipynb"))
NUMBERED = [p for p in NOTEBOOKS if re.match(r"\d\d_", p.name)]


def ids(paths):
    return [p.stem for p in paths]


def read(path: Path):
    return nbformat.read(path, as_version=4)


HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*\S)")
BOLD_LEAD = re.compile(r"^\s{0,3}\*\*([^*]+)\*\*")     # a paragraph opening with **bold text**


def markdown_headings(nb, *, bold: bool = False) -> list[tuple[tuple[int, int], str]]:
    """((cell index, line index), text) of every markdown heading, in order.

    With ``bold=True`` a line that opens with bold text (``**Prerequisites:** ...``)
    counts as a heading too: lessons introduce their goals either way.
    """
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for line_no, line in enumerate(cell.source.splitlines()):
            match = HEADING.match(line) or (BOLD_LEAD.match(line) if bold else None)
            if match:
                found.append(((index, line_no), match.group(1).strip()))
    return found


def heading_position(nb, pattern: str, *, bold: bool = False) -> tuple[int, int] | None:
    """(cell, line) of the first heading matching ``pattern`` (case-insensitive), or None."""
    for position, text in markdown_headings(nb, bold=bold):
        if re.search(pattern, text, flags=re.IGNORECASE):
            return position
    return None


def parameters_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]


def assigned_constants(source: str) -> dict:
    """``NAME = literal`` assignments of a cell, evaluated; other statements are ignored."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = ...
    return values


def execute(path: Path, workdir: Path, monkeypatch, *, parameters: dict | None = None,
            checks: str | None = None) -> None:
    """Run every cell of ``path`` in a copy of its folder under ``workdir``; raise on an error.

    ``parameters`` replace values of the lesson's parameters cell (as ``papermill -p`` does);
    ``checks`` is code run as one more cell at the end, in the lesson's namespace (the
    assertions on a lesson's results live here, not in the lesson).
    """
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    copy_dir = workdir / "lessons"
    shutil.copytree(path.parent, copy_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # The kernel inherits this environment: one OpenMP thread (2-core machines), a headless
    # matplotlib backend, and the repository importable even without `pip install -e`.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nb = read(copy_dir / path.name)
    if parameters:
        cell = parameters_cells(nb)[0]
        unknown = set(parameters) - set(assigned_constants(cell.source))
        assert not unknown, f"{path.name} has no parameters {sorted(unknown)}"
        cell.source += "\n# injected by the test\n" + "\n".join(
            f"{name} = {value!r}" for name, value in parameters.items())
    if checks:
        nb.cells.append(new_code_cell(checks))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=STARTUP_TIMEOUT_S,
                            kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(copy_dir)}})
    client.execute()


# ----------------------------------------------------------------------------- presence

@pytest.mark.parametrize("name", REQUIRED + (DEMO,))
def test_required_lesson_exists(name):
    path = LESSONS_DIR / f"{name}.ipynb"
    assert path.is_file(), f"lessons/{name}.ipynb is missing (issue 6 requires it)"


def test_the_glob_finds_the_lessons():
    # Guards against a test run that checks nothing because the folder moved.
    assert NOTEBOOKS, f"no notebooks found in {LESSONS_DIR}"


# ----------------------------------------------------------------------------- committed state

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_is_committed_without_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs or execution counts; clear "
                       "them (Kernel > Restart and Clear Outputs, or `jupyter nbconvert "
                       "--clear-output --inplace`)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_has_exactly_one_parameters_cell(path):
    cells = parameters_cells(read(path))
    assert len(cells) == 1, (f"{path.name}: {len(cells)} code cells are tagged 'parameters'; "
                             "papermill needs exactly one")


@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_parameters_default_to_the_embedded_data_and_switch_to_paper_scale(path):
    import papermill

    params = papermill.inspect_notebook(str(path))
    assert {"DATASET", "FULL"} <= set(params), (
        f"{path.name}: the parameters cell must define DATASET and FULL, has {sorted(params)}")
    values = assigned_constants(parameters_cells(read(path))[0].source)
    assert values["DATASET"] in EMBEDDED_DATASETS, (
        f"{path.name}: DATASET defaults to {values['DATASET']!r}; the default must be embedded "
        f"({EMBEDDED_DATASETS}) so the lesson runs offline")
    assert values["FULL"] is False, f"{path.name}: FULL must default to False"
    source = "".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert re.search(r"pk\.data\.load\(\s*DATASET", source), (
        f"{path.name}: load the data with pk.data.load(DATASET, ...) so DATASET='mnist' switches "
        "to the paper-scale data")


# ----------------------------------------------------------------------------- skeleton

@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_lesson_opens_with_goals_and_prerequisites_and_ends_with_exercises_and_references(path):
    nb = read(path)
    numbered = r"^(?:[\d.]+\s*)?"        # "Exercises" or "7. Exercises"
    found = {
        "learning goals": heading_position(
            nb, r"learning goals|after this lesson you|you will be able", bold=True),
        "prerequisites": heading_position(nb, r"prerequisite", bold=True),
        "exercises": heading_position(nb, numbered + r"exercises?\b"),
        "references": heading_position(nb, numbered + r"references\b")}
    missing = [key for key, index in found.items() if index is None]
    assert not missing, (f"{path.name}: no markdown heading for {missing} (goals and prerequisites "
                         "may also be a paragraph opening with bold text); headings are "
                         f"{[text for _, text in markdown_headings(nb)]}")
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert found["learning goals"][0] < first_code and found["prerequisites"][0] < first_code, (
        f"{path.name}: learning goals and prerequisites must come before the first code cell")
    assert found["learning goals"] < found["exercises"] < found["references"], (
        f"{path.name}: the order must be learning goals ... exercises, then references")
    cell, line = found["references"]
    references = "\n".join(["\n".join(nb.cells[cell].source.splitlines()[line:])]
                           + [c.source for c in nb.cells[cell + 1:] if c.cell_type == "markdown"])
    assert re.search(r"\]\(https?://", references), (
        f"{path.name}: the references must link to the papers ([title](https://...))")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_imports_pruning_kit_as_pk(path):
    source = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert re.search(r"^\s*import pruning_kit as pk\b", source, flags=re.MULTILINE), (
        f"{path.name}: lessons use the library through `import pruning_kit as pk`")


@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_lesson_has_a_widget_from_pruning_kit(path):
    source = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert "pk.widgets." in source, (
        f"{path.name}: every lesson has at least one control from pruning_kit.widgets "
        "(e.g. pk.widgets.sparsity_explorer(model, test))")


# ----------------------------------------------------------------------------- execution

# What each lesson's results must show with its default parameters (the shape of the papers'
# figures). They run as a last cell in the lesson's namespace, so a lesson never stops a student
# with an assertion; a lesson without an entry is only executed.
RESULT_CHECKS: dict[str, str] = {
}

# Parameter changes the lessons' exercises suggest: the lesson must still run to the end.
EXERCISE_PARAMETERS: dict[str, list[dict]] = {
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_executes_headless_and_shows_the_papers_results(path, tmp_path, monkeypatch):
    execute(path, tmp_path, monkeypatch, checks=RESULT_CHECKS.get(path.stem))


@pytest.mark.slow
@pytest.mark.parametrize("stem,parameters", [(stem, p) for stem, runs in EXERCISE_PARAMETERS.items()
                                             for p in runs])
def test_lesson_runs_with_the_parameters_its_exercises_suggest(stem, parameters, tmp_path,
                                                                monkeypatch):
    execute(LESSONS_DIR / f"{stem}.ipynb", tmp_path, monkeypatch, parameters=parameters)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_lesson_cell_asserts(path):
    # a student exploring must never be stopped by an AssertionError: lessons print checks
    offenders = []
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        if any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code))):
            offenders.append(index)
    assert not offenders, f"{path.name}: cells {offenders} use assert; print a check instead"


@pytest.mark.slow
def test_execution_fails_on_a_cell_error_and_runs_headless_on_one_thread(tmp_path, monkeypatch):
    # The harness itself: a lesson that raises must fail, and kernels get the CI settings.
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook

    source = tmp_path / "src"
    source.mkdir()
    good = new_notebook(cells=[new_code_cell(
        "import os, matplotlib, pruning_kit as pk\n"
        "assert os.environ['OMP_NUM_THREADS'] == '1'\n"
        "assert 'inline' in matplotlib.get_backend() or matplotlib.get_backend().lower() == 'agg'\n"
        "assert os.path.basename(os.getcwd()) == 'lessons'")])
    bad = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise RuntimeError('boom')")])
    nbformat.write(good, source / "good.ipynb")
    nbformat.write(bad, source / "bad.ipynb")
    execute(source / "good.ipynb", tmp_path / "run_good", monkeypatch)
    with pytest.raises(CellExecutionError, match="boom"):
        execute(source / "bad.ipynb", tmp_path / "run_bad", monkeypatch)
