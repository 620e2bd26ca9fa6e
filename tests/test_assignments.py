"""The nbgrader pipeline end to end, with the real nbgrader command line in a temporary course.

One course is built per module: the assignments are released from a copy of
``solutions/``, a class of submissions (correct, untouched, one mistake,
hanging, crashing, cheating, broken, with cells removed) is autograded in one
``nbgrader autograde`` call per assignment through ``pruning_kit.course.autograde``,
and the tests read the grades CSV rows, notes and feedback.
"""

import copy
import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.utils import determine_grade

from pruning_kit.course import autograde, execute, preflight, release
from pruning_kit.course.course_dir import assignments, run_nbgrader
from pruning_kit.course.checks import ASSIGNMENTS

REPO = Path(__file__).resolve().parents[1]
MAX = {  # points per function: visible + hidden
    "pruning": {"magnitude_mask": 4, "global_magnitude_masks": 4, "snip_scores": 5,
                "snip_masks": 3, "imp_step": 5, "l1_filter_order": 3},
    "binarized": {"quantize_affine": 5, "dequantize_affine": 3, "quantize_symmetric": 4,
                  "binarize": 3, "SignSTE": 4, "BinaryLinear": 5},
}

# The course under test uses the repository's nbgrader_config.py plus these lines:
# a generous limit for the training cells of a busy CI machine, a short one for test
# cells (so the hanging submission costs seconds), and a lower memory cap.
TEST_CONFIG = """
c.Execute.timeout = 120
c.RobustExecute.test_timeout = 15
c.RobustExecute.memory_limit_mb = 6144
"""

HANGS_ON_TIES = '''
def l1_filter_order(conv_weight):
    """Bubble sort with >=: swaps equal norms back and forth forever."""
    norms = conv_weight.abs().sum(dim=(1, 2, 3)).tolist()
    order = list(range(len(norms)))
    swapped = True
    while swapped:
        swapped = False
        for i in range(len(order) - 1):
            if norms[order[i]] >= norms[order[i + 1]]:
                order[i], order[i + 1] = order[i + 1], order[i]
                swapped = True
    return torch.tensor(order)
'''

KILLS_THE_KERNEL = '''
import os
import signal


def imp_step(trained, init, masks, rate):
    if rate == 0.5:  # the visible test
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
'''

EATS_ALL_MEMORY = '''
def snip_scores(model, inputs, targets):
    blocks = []
    while True:
        blocks.append(torch.ones(2 ** 27))  # 512 MB at a time
'''

LOCAL_NOT_GLOBAL = '''
def global_magnitude_masks(weights, sparsity):
    masks = {}
    for name, w in weights.items():
        m = torch.ones_like(w)
        m.view(-1)[w.abs().flatten().argsort()[:round(sparsity * w.numel())]] = 0
        masks[name] = m
    return masks
'''

STE_WITHOUT_CUT = '''
class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output
'''

CHEATS_AT_THE_TOP = '''
import builtins
import numpy
import torch
import torch.testing
import pruning_kit.course.checks.binarized
import pruning_kit.course.checks.core
import pruning_kit.course.checks.pruning

torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.tolist = lambda self: [1.0]
builtins.round = lambda x, n=None: 0
for G in (pruning_kit.course.checks.core, pruning_kit.course.checks.pruning,
          pruning_kit.course.checks.binarized):
    for _name in dir(G):
        if _name.startswith("check_") or _name in ("tensor_values", "number", "call", "isolated"):
            setattr(G, _name, lambda *a, **k: None)


class AlwaysEqual:
    shape = torch.Size([2, 3])
    dtype = torch.float32

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


class Liar(torch.Tensor):
    def __eq__(self, other):
        return torch.tensor(True)
'''

CHEATING_FUNCTIONS = {
    "magnitude_mask": "def magnitude_mask(weight, sparsity):\n    return AlwaysEqual()\n",
    "global_magnitude_masks": ("def global_magnitude_masks(weights, sparsity):\n"
                               "    return {k: torch.zeros_like(v).as_subclass(Liar) for k, v in weights.items()}\n"),
    "snip_scores": ("def snip_scores(model, inputs, targets):\n"
                    "    return {n: torch.zeros_like(m.weight).as_subclass(Liar)\n"
                    "            for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}\n"),
    "snip_masks": "def snip_masks(scores, sparsity):\n    return AlwaysEqual()\n",
    "imp_step": "def imp_step(trained, init, masks, rate):\n    return AlwaysEqual(), AlwaysEqual()\n",
    "l1_filter_order": ("def l1_filter_order(conv_weight):\n"
                        "    return torch.zeros(conv_weight.shape[0], dtype=torch.int64).as_subclass(Liar)\n"),
}


def _strip_markers(source):
    return "\n".join(line for line in source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def _grade_id(cell):
    return cell["metadata"].get("nbgrader", {}).get("grade_id")


def make_submission(root, assignment, code=None, delete=(), edit=None):
    """The released notebook, with solution cells filled from the source (or ``code``)."""
    released = json.loads((root / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    source = json.loads((root / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    solutions = {_grade_id(c): "".join(c["source"]) for c in source["cells"]
                 if c["metadata"].get("nbgrader", {}).get("solution")}
    cells = []
    for cell in released["cells"]:
        gid = _grade_id(cell)
        if gid in delete:
            continue
        cell = copy.deepcopy(cell)
        if code is not None and gid in solutions:  # functions, and the written answers
            cell["source"] = code.get(gid, _strip_markers(solutions[gid]))
        cells.append(cell)
    released["cells"] = cells
    if edit:
        edit(released)
    return released


def submit(root, student, assignment, notebook=None, raw=None):
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else json.dumps(notebook, indent=1)
    (folder / f"{assignment}.ipynb").write_text(text)


def _cheat_edits(nb):
    nb["cells"].insert(0, {"cell_type": "code", "execution_count": None, "metadata": {},
                           "outputs": [], "source": CHEATS_AT_THE_TOP})
    for cell in nb["cells"]:
        gid = _grade_id(cell) or ""
        if gid.startswith("test_") and gid.endswith("_visible"):
            cell["source"] = "pass  # tests? what tests?"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text() + TEST_CONFIG)
    release.release(root)

    submit(root, "solution", "pruning", make_submission(root, "pruning", {}))
    submit(root, "released", "pruning", make_submission(root, "pruning"))
    submit(root, "one_wrong", "pruning",
           make_submission(root, "pruning", {"global_magnitude_masks": LOCAL_NOT_GLOBAL}))
    submit(root, "hangs", "pruning", make_submission(root, "pruning", {"l1_filter_order": HANGS_ON_TIES}))
    submit(root, "crashes", "pruning", make_submission(
        root, "pruning", {"imp_step": KILLS_THE_KERNEL, "snip_scores": EATS_ALL_MEMORY}))
    submit(root, "cheats", "pruning", make_submission(
        root, "pruning", CHEATING_FUNCTIONS, delete={"test_snip_scores_hidden", "test_imp_step_hidden"},
        edit=_cheat_edits))
    submit(root, "removed_cells", "pruning", make_submission(
        root, "pruning", {}, delete={"test_magnitude_mask_visible", "test_magnitude_mask_hidden",
                                     "l1_filter_order", "test_l1_filter_order_visible"}))
    submit(root, "broken_json", "pruning", raw='{"cells": [{"cell_type": "code", "source": "x = 1"')

    submit(root, "solution", "binarized", make_submission(root, "binarized", {}))
    submit(root, "released", "binarized", make_submission(root, "binarized"))
    submit(root, "one_wrong", "binarized", make_submission(root, "binarized", {"SignSTE": STE_WITHOUT_CUT}))

    printed = io.StringIO()
    rows = {"pruning": autograde.grade(root, "pruning", out=printed),
            "binarized": autograde.grade(root, "binarized", feedback=False, out=printed)}
    return SimpleNamespace(root=root, printed=printed.getvalue(),
                           rows={a: {r["student"]: r for r in rs} for a, rs in rows.items()})


def scores(row, assignment):
    return {name: row[name] for name in ASSIGNMENTS[assignment]}


def full(assignment, **changes):
    out = {name: float(p) for name, p in MAX[assignment].items()}
    out.update({k: float(v) for k, v in changes.items()})
    return out


# ---------------------------------------------------------------------------
# Release


def test_committed_release_is_up_to_date_with_the_solutions(course):
    problems = release.release_differences(course.root / "assignments", REPO / "assignments",
                                             sorted(ASSIGNMENTS))
    assert not problems, ("assignments/ is out of date with solutions/: run `make release`\n"
                          + "\n".join(problems))


def test_release_check_reports_stale_missing_and_extra_files(course, tmp_path):
    stale = tmp_path / "assignments"
    shutil.copytree(course.root / "assignments", stale)
    nb = json.loads((stale / "pruning" / "pruning.ipynb").read_text())
    nb["cells"][0]["source"] = "# an old title"
    (stale / "pruning" / "pruning.ipynb").write_text(json.dumps(nb))
    (stale / "binarized" / "binarized.ipynb").unlink()
    (stale / "binarized" / "notes.txt").write_text("hand-edited")
    problems = release.release_differences(course.root / "assignments", stale, sorted(ASSIGNMENTS))
    assert len(problems) == 3, problems
    assert any("pruning.ipynb differs" in p and "an old title" in p for p in problems)
    assert any("binarized.ipynb is missing" in p for p in problems)
    assert any("notes.txt is not generated" in p for p in problems)


def test_release_keeps_signatures_and_docstrings_and_hides_solutions_and_tests(course):
    for assignment, names in ASSIGNMENTS.items():
        text = (course.root / "assignments" / assignment / f"{assignment}.ipynb").read_text()
        nb = json.loads(text)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        for name in names:
            cell = next(c for c in nb["cells"] if _grade_id(c) == name)
            src = "".join(cell["source"])
            assert re.search(rf"^(def|class) {name}\b", src, re.M) and '"""' in src
            assert "raise NotImplementedError()" in src
            hidden = "".join(next(c for c in nb["cells"] if _grade_id(c) == f"test_{name}_hidden")["source"])
            assert "g.check" not in hidden


# ---------------------------------------------------------------------------
# Scores


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_reference_solution_scores_full_marks(course, assignment):
    row = course.rows[assignment]["solution"]
    assert row["status"] == "graded", row
    assert scores(row, assignment) == full(assignment)
    assert row["autograded"] == 24.0


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_released_notebook_scores_zero_and_grading_completes(course, assignment):
    row = course.rows[assignment]["released"]
    assert row["status"] == "graded", row
    assert row["autograded"] == 0.0 and set(scores(row, assignment).values()) == {0.0}


def test_one_wrong_function_loses_exactly_its_points(course):
    pruning = course.rows["pruning"]["one_wrong"]
    assert scores(pruning, "pruning") == full("pruning", global_magnitude_masks=0)
    # SignSTE is wrong; BinaryLinear (which uses it) is tested with a correct SignSTE
    binarized = course.rows["binarized"]["one_wrong"]
    assert scores(binarized, "binarized") == full("binarized", SignSTE=0)


def test_an_infinite_loop_times_out_its_cell_and_the_rest_is_graded(course):
    row = course.rows["pruning"]["hangs"]
    assert row["status"] == "graded"
    # the visible test has no ties and passes; the hidden test's ties loop forever
    assert scores(row, "pruning") == full("pruning", l1_filter_order=1)
    assert any("test_l1_filter_order_hidden: timed out" in n for n in row["notes"]), row["notes"]


def test_a_killed_kernel_costs_only_the_functions_that_kill_it(course):
    row = course.rows["pruning"]["crashes"]
    assert row["status"].startswith("graded"), row
    # imp_step kills the kernel (os._exit, then SIGKILL); snip_scores exhausts its memory
    # limit; l1_filter_order, tested after the crashes, still earns its points
    assert scores(row, "pruning") == full("pruning", imp_step=0, snip_scores=0)
    died = [n for n in row["notes"] if "kernel died" in n]
    assert len(died) == 2 and all("test_imp_step" in n for n in died), row["notes"]


def test_cheating_scores_nothing(course):
    row = course.rows["pruning"]["cheats"]
    assert row["autograded"] == 0.0, row
    notes = "\n".join(row["notes"])
    assert "review: unnamed cell 0" in notes
    assert "test_imp_step_hidden was deleted; nbgrader put the original back" in notes
    assert "read-only cell test_magnitude_mask_visible was edited" in notes


def test_a_notebook_that_is_not_json_gets_a_message_and_the_others_are_graded(course):
    row = course.rows["pruning"]["broken_json"]
    assert row["status"] == "not graded: unreadable notebook" and row["autograded"] == 0.0
    assert any("is not valid JSON (line 1, column" in n for n in row["notes"]), row["notes"]
    graded = [r for r in course.rows["pruning"].values() if r["status"].startswith("graded")]
    assert len(graded) == len(course.rows["pruning"]) - 1


def test_removed_cells_are_restored_or_cost_only_their_function(course):
    row = course.rows["pruning"]["removed_cells"]
    assert row["status"] == "graded", row
    assert scores(row, "pruning") == full("pruning", l1_filter_order=0)
    notes = "\n".join(row["notes"])
    assert "test cell test_magnitude_mask_hidden was deleted; nbgrader put the original back" in notes
    assert "the cell for l1_filter_order was deleted: its tests score 0" in notes


def test_preflight_flags_code_that_needs_a_human_look(course):
    calls_library = "def quantize_affine(x, bits):\n    return pk.quant.quantize_affine(x, bits)\n"
    submit(course.root, "library_caller", "binarized",
           make_submission(course.root, "binarized", {"quantize_affine": calls_library}))
    try:
        gradable, notes = preflight.preflight(course.root, "binarized", "library_caller")
    finally:
        shutil.rmtree(course.root / "submitted" / "library_caller")
    assert gradable
    assert notes == ["review: quantize_affine calls the course library's version "
                     "('pk.quant.quantize_affine')"]


def test_grades_csv_feedback_and_summary(course):
    with (course.root / "autograded" / "grades_pruning.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert {r["student_id"] for r in table} == set(course.rows["pruning"])
    solution = next(r for r in table if r["student_id"] == "solution")
    assert solution["autograded (24)"] == "24" and solution["magnitude_mask (4)"] == "4"
    # written answers wait for a human; left blank they score 0 at once
    assert solution["manual (4, empty until graded)"] == "" and solution["answer_rewinding (2)"] == ""
    released = next(r for r in table if r["student_id"] == "released")
    assert released["manual (4, empty until graded)"] == "0" and released["answer_rewinding (2)"] == "0"
    html = course.root / "feedback" / "one_wrong" / "pruning" / "pruning.html"
    assert "that is local pruning" in html.read_text()
    assert not (course.root / "feedback" / "broken_json" / "pruning").exists()
    for student in course.rows["pruning"]:
        assert student in course.printed
    assert "grades: " in course.printed


def test_check_command_says_the_committed_release_is_current(capsys):
    assert autograde.main(["--course-dir", str(REPO), "check"]) == 0
    assert "assignments/ is up to date with solutions/" in capsys.readouterr().out


def test_makefile_release_and_grade_targets():
    dry = subprocess.run(["make", "-n", "release", "grade", "ASSIGNMENT=binarized"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "-m pruning_kit.course release" in dry
    assert "-m pruning_kit.course grade binarized" in dry


def test_grade_rejects_unknown_assignments_and_empty_courses(course, tmp_path):
    with pytest.raises(ValueError, match="unknown assignment 'lottery'"):
        autograde.grade(course.root, "lottery")
    empty = tmp_path / "empty"
    shutil.copytree(course.root / "solutions", empty / "solutions")
    shutil.copy(course.root / "nbgrader_config.py", empty / "nbgrader_config.py")
    with pytest.raises(ValueError, match="no submissions"):
        autograde.grade(empty, "pruning")


# ---------------------------------------------------------------------------
# RobustExecute on small notebooks (no torch, fast kernels)


def _test_cell(source, gid, points=1):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": gid, "points": points, "schema_version": 3}
    return cell


def _execute(cells, tmp_path, **options):
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    options.setdefault("timeout", 60)
    executor = execute.RobustExecute(preamble="", **options)
    executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return nb


def _errors(cell):
    return [o["ename"] for o in cell.get("outputs", []) if o["output_type"] == "error"]


def _score(cell):
    return determine_grade(cell)[0]


def test_a_crash_fails_its_cell_and_grading_goes_on_with_the_definitions_replayed(tmp_path):
    nb = _execute([new_code_cell("import os\n\ndef f():\n    return 1"),
                   _test_cell("assert f() == 1", "before"),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("assert f() == 1", "after"),
                   new_code_cell("x = 2"),
                   _test_cell("assert x == 2", "later")], tmp_path)
    assert [_score(c) for c in nb.cells[1:4]] == [1, 0, 1] and _score(nb.cells[5]) == 1
    assert _errors(nb.cells[2]) == [execute.KERNEL_DIED]


def test_past_the_restart_limit_nothing_after_the_crash_counts_as_passed(tmp_path):
    nb = _execute([new_code_cell("import os"),
                   _test_cell("pass", "before"),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("pass", "after"),
                   _test_cell("pass", "later")], tmp_path, max_restarts=0)
    assert [_score(c) for c in nb.cells[1:]] == [1, 0, 0, 0]
    assert _errors(nb.cells[3]) == [execute.NOT_RUN]


def test_a_cell_that_ignores_the_interrupt_is_stopped_by_a_restart(tmp_path):
    stubborn = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    time.sleep(0.05)")
    nb = _execute([new_code_cell("y = 3"),
                   _test_cell(stubborn, "stuck"),
                   _test_cell("assert y == 3", "after")], tmp_path, test_timeout=2, iopub_timeout=1)
    assert _score(nb.cells[1]) == 0 and execute.KERNEL_DIED in _errors(nb.cells[1])
    assert _score(nb.cells[2]) == 1


def test_a_replayed_cell_that_kills_the_kernel_is_skipped(tmp_path):
    # kills the kernel only when run a second time, i.e. when replayed after a crash
    second_time_kills = ("import os, pathlib\nmarker = pathlib.Path('ran-once')\n"
                         "if marker.exists():\n    os._exit(3)\nmarker.write_text('x')\nz = 5")
    nb = _execute([new_code_cell("w = 1"),
                   new_code_cell(second_time_kills),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("assert w == 1", "w_replayed"),
                   _test_cell("assert 'z' not in globals()", "z_skipped")], tmp_path)
    assert [_score(c) for c in nb.cells[2:]] == [0, 1, 1]


def test_the_kernel_runs_under_a_memory_limit(tmp_path):
    nb = _execute([_test_cell("import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
                              "assert soft == 1536 * 2 ** 20, soft\n"
                              "data = bytearray(2 * 2 ** 30)  # more than the limit", "limited")],
                  tmp_path, memory_limit_mb=1536)
    assert _errors(nb.cells[0]) == ["MemoryError"]


def test_nbgrader_config_uses_the_robust_steps_and_the_execute_timeout():
    namespace = {"get_config": lambda: config, "__file__": str(REPO / "nbgrader_config.py")}
    from traitlets.config import Config

    config = Config()
    exec((REPO / "nbgrader_config.py").read_text(), namespace)
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "assignments"
    assert config.CourseDirectory.root == str(REPO)
    assert config.Execute.timeout >= 30 and "timeout" not in config.ExecutePreprocessor
    assert execute.RobustExecute in config.Autograde.autograde_preprocessors
    assert execute.RobustOverwriteCells in config.Autograde.sanitize_preprocessors
    assert config.OverwriteCells.add_missing_cells is True
