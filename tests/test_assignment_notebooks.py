"""The assignments' notebooks follow the cell rules the grader relies on, and agree with it.

Fast: nothing is graded here. Each graded function has an answer cell of its own
(its ``def``/``class`` line and docstring outside the solution), a visible test
cell of values spelled out, and a hidden test cell that is only a comment (the
grader holds the hidden tests); the grader's registry knows every test cell and
gives it the points the notebook says; the points table at the top adds up.
"""

import ast
import re

import pytest

from pruning_grader.nbgrader import load_assignment
from support.assignments import ASSIGNMENTS, source_notebook


def cells_by_id(assignment):
    cells = source_notebook(assignment)["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells
            if c["metadata"].get("nbgrader", {}).get("grade_id")}


def meta(cell):
    return cell["metadata"]["nbgrader"]


def source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_graded_function_has_its_answer_cell_and_two_test_cells(assignment):
    registry = load_assignment(assignment)
    by_id = cells_by_id(assignment)
    for name in registry.functions:
        answer = by_id[name]
        assert meta(answer)["solution"] and not meta(answer)["grade"], name
        header = source(answer).split("### BEGIN SOLUTION")[0]
        assert re.search(rf"^(def|class) {name}\b", header, re.M), name
        assert '"""' in header, f"{name}: the docstring must survive in the released stub"
        defined = [n.name for n in ast.parse(source(answer)).body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [name], defined
        visible, hidden = by_id[f"test_{name}_visible"], by_id[f"test_{name}_hidden"]
        for test in (visible, hidden):
            assert meta(test)["grade"] and meta(test)["locked"] and not meta(test)["solution"]
        assert 0 < meta(visible)["points"] < meta(hidden)["points"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_test_cells_are_comments_and_the_grader_holds_their_tests(assignment):
    registry = load_assignment(assignment)
    by_id = cells_by_id(assignment)
    hidden_cells = {gid for gid in by_id if gid.startswith("test_") and gid.endswith("_hidden")}
    assert hidden_cells == set(registry.tests), "every hidden cell has its registered test"
    for gid in hidden_cells:
        lines = [line for line in source(by_id[gid]).splitlines() if line.strip()]
        assert lines and all(line.lstrip().startswith("#") for line in lines), gid
        assert registry.tests[gid].points == meta(by_id[gid])["points"], gid


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_visible_tests_call_only_their_own_function_and_what_it_uses(assignment):
    registry = load_assignment(assignment)
    by_id = cells_by_id(assignment)
    for name in registry.functions:
        code = source(by_id[f"test_{name}_visible"])
        used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
        assert name in used, name
        # other graded names only where grading puts the course's versions in their place
        others = used & (set(registry.functions) - {name}) - set(registry.uses.get(name, ()))
        assert not others, (name, others)
        assert "pruning_grader" not in code and "BEGIN HIDDEN TESTS" not in code


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_setup_cells_the_grader_runs_exist_and_import_what_visible_tests_use(assignment):
    registry = load_assignment(assignment)
    by_id = cells_by_id(assignment)
    for gid in registry.setup_cells:
        assert meta(by_id[gid])["locked"] and by_id[gid]["cell_type"] == "code", gid
    setup = "\n".join(source(by_id[gid]) for gid in registry.setup_cells)
    assert "from pruning_kit.course.testing import" in setup
    assert "import pruning_kit as pk" in setup


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_written_answers_outputs_and_parameters(assignment):
    cells = source_notebook(assignment)["cells"]
    assert any(c["cell_type"] == "markdown" and c["metadata"].get("nbgrader", {}).get("grade")
               and c["metadata"]["nbgrader"].get("solution") for c in cells)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in cells if c["cell_type"] == "code")
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_points_table_at_the_top_matches_the_cells(assignment):
    cells = source_notebook(assignment)["cells"]
    intro = source(cells[0])
    points = {"visible": 0, "hidden": 0, "manual": 0}
    per_function = {}
    for c in cells:
        m = c["metadata"].get("nbgrader", {})
        if not m.get("grade"):
            continue
        gid = m["grade_id"]
        if m.get("solution"):
            points["manual"] += m["points"]
            continue
        kind = gid.rsplit("_", 1)[1]
        points[kind] += m["points"]
        per_function.setdefault(gid[len("test_"):-len(kind) - 1], {})[kind] = m["points"]
    auto = points["visible"] + points["hidden"]
    total = auto + points["manual"]
    assert (f"**Points: {total} in total** — {auto} autograded ({points['visible']} in visible "
            f"tests, {points['hidden']} in hidden tests) and {points['manual']} graded by hand"
            in intro)
    for name, p in per_function.items():
        assert re.search(rf"\| `{name}` \| {p['visible']} \| {p['hidden']} \|", intro), name
    assert points["hidden"] > 2 * points["visible"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_kit_entry_names_kit_code(assignment):
    import importlib

    registry = load_assignment(assignment)
    assert set(registry.kit) <= set(registry.functions)
    for path in registry.kit_paths():
        module, _, attribute = path.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), path
    for name, used in registry.uses.items():
        assert name in registry.functions and set(used) <= set(registry.functions) - {name}
