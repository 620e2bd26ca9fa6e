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

from pruning_kit.course import autograde, execute, grades, preflight, release, sample
from pruning_kit.course.course_dir import run_nbgrader
from pruning_kit.course.checks import ASSIGNMENTS

from kit_wrappers import WRAPPERS  # noqa: E402 - tests/ is on sys.path under pytest

REPO = Path(__file__).resolve().parents[1]
MAX = {  # points per function: visible + hidden
    "pruning": {"magnitude_mask": 4, "global_magnitude_masks": 4, "snip_scores": 5,
                "snip_masks": 3, "imp_step": 5, "l1_filter_order": 3,
                "sensitivity_scan": 4, "sparsity_plan": 5, "remove_neurons": 5},
    "binarized": {"quantize_affine": 5, "dequantize_affine": 3, "quantize_symmetric": 4,
                  "binarize": 3, "SignSTE": 4, "BinaryLinear": 5, "quantize_bias": 3,
                  "integer_linear": 5, "quantized_linear": 5, "BinarizedMLP": 5,
                  "train_binarized": 5},
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

# The pruning lab, one mistake in each task (each task is graded on its own)
SCAN_ALL_LAYERS_AT_ONCE = '''
def sensitivity_scan(model, data, sparsities):
    scan = {}
    for name, _ in pk.models.prunable(model):
        scan[name] = []
        for s in sparsities:
            pruned = copy.deepcopy(model)
            for _, layer in pk.models.prunable(pruned):
                layer.weight.detach().mul_(magnitude_mask(layer.weight, s))
            scan[name].append(pk.train.evaluate(pruned, data))
    return scan
'''

MACS_WITH_BIASES = '''
def remove_neurons(model, keep):
    small = copy.deepcopy(model)
    cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
    for name in ("fc1", "fc2", "fc3"):
        old = getattr(model, name)
        rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
        new = nn.Linear(int(cols.sum()), int(rows.sum()))
        new.weight = nn.Parameter(old.weight.detach()[rows][:, cols].clone())
        new.bias = nn.Parameter(old.bias.detach()[rows].clone())
        setattr(small, name, new)
        cols = rows
    return small, sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in small.parameters())
'''

# 10.0x fewer weights, but 1.8 points below the dense accuracy after fine-tuning: 0 hidden points
PLAN_UNIFORM_90 = "def sparsity_plan():\n    return {'fc1': 0.9, 'fc2': 0.9, 'fc3': 0.9}\n"
# 6.7x fewer weights within 1 point: the partial credit, 2 of the 4 hidden points
PLAN_5X = "def sparsity_plan():\n    return {'fc1': 0.85, 'fc2': 0.85, 'fc3': 0.85}\n"

# The binarized assignment's parts 2 and 3, one mistake in each task (graded on its own)
BINARIZED_LAB_WRONG = {
    "quantize_bias": """
def quantize_bias(bias, input_scale, weight_scale):
    return torch.round(bias / weight_scale).to(torch.int32)
""",
    "integer_linear": """
def integer_linear(x_q, x_zero_point, w_q, bias_q):
    return x_q.to(torch.int32) @ w_q.to(torch.int32).t() + bias_q
""",
    "quantized_linear": """
def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
    acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
    return torch.round(acc * (x_scale * w_scale / out_scale)).clamp(0, 255).to(torch.uint8)
""",
    "BinarizedMLP": """
class BinarizedMLP(nn.Module):
    def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
        super().__init__()
        self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
        self.fc3, self.bn3 = BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes)

    def forward(self, x):
        x = F.hardtanh(self.bn1(self.fc1(x.flatten(1))))
        return self.bn3(self.fc3(F.hardtanh(self.bn2(self.fc2(x)))))
""",
    "train_binarized": """
def train_binarized(model, train, epochs, seed):
    return pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False).loss
""",
}

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
    "sensitivity_scan": ("def sensitivity_scan(model, data, sparsities):\n"
                         "    return {n: AlwaysEqual() for n, _ in pk.models.prunable(model)}\n"),
    "sparsity_plan": "def sparsity_plan():\n    return {'fc1': AlwaysEqual(), 'fc2': 0.9, 'fc3': 0.9}\n",
    "remove_neurons": "def remove_neurons(model, keep):\n    return model, AlwaysEqual()\n",
}


# A submission that hands a function and a class to the kit: those score 0 (the kit refuses while
# they are tested, and the CSV notes say which kit function was called), the others full marks.
# One submission (each costs a notebook run); tests/test_no_answers_given.py runs every wrapper
# of both assignments in-process.
KIT_WRAPPED = {"binarized": {n: WRAPPERS["binarized"][n] for n in ("quantize_affine", "BinaryLinear")}}


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

    sample.sample_submission(root, "pruning", "solution")  # what the README tells instructors
    submit(root, "released", "pruning", make_submission(root, "pruning"))
    submit(root, "one_wrong", "pruning",
           make_submission(root, "pruning", {"global_magnitude_masks": LOCAL_NOT_GLOBAL}))
    submit(root, "hangs", "pruning", make_submission(
        root, "pruning", {"l1_filter_order": HANGS_ON_TIES, "sparsity_plan": PLAN_5X}))
    submit(root, "lab_wrong", "pruning", make_submission(
        root, "pruning", {"sensitivity_scan": SCAN_ALL_LAYERS_AT_ONCE, "sparsity_plan": PLAN_UNIFORM_90,
                          "remove_neurons": MACS_WITH_BIASES}))
    submit(root, "crashes", "pruning", make_submission(
        root, "pruning", {"imp_step": KILLS_THE_KERNEL, "snip_scores": EATS_ALL_MEMORY}))
    submit(root, "cheats", "pruning", make_submission(
        root, "pruning", CHEATING_FUNCTIONS, delete={"test_snip_scores_hidden", "test_imp_step_hidden"},
        edit=_cheat_edits))
    submit(root, "removed_cells", "pruning", make_submission(
        root, "pruning", {}, delete={"test_magnitude_mask_visible", "test_magnitude_mask_hidden",
                                     "l1_filter_order", "test_l1_filter_order_visible"}))
    submit(root, "broken_json", "pruning", raw='{"cells": [{"cell_type": "code", "source": "x = 1"')

    sample.sample_submission(root, "binarized", "solution")
    for assignment, code in KIT_WRAPPED.items():
        submit(root, "kit_wrapper", assignment, make_submission(root, assignment, code))
    submit(root, "released", "binarized", make_submission(root, "binarized"))
    submit(root, "one_wrong", "binarized", make_submission(
        root, "binarized", {"SignSTE": STE_WITHOUT_CUT, **BINARIZED_LAB_WRONG}))

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
    assert row["autograded"] == sum(MAX[assignment].values())


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_released_notebook_scores_zero_and_grading_completes(course, assignment):
    row = course.rows[assignment]["released"]
    assert row["status"] == "graded", row
    assert row["autograded"] == 0.0 and set(scores(row, assignment).values()) == {0.0}


def test_one_wrong_function_loses_exactly_its_points(course):
    pruning = course.rows["pruning"]["one_wrong"]
    assert scores(pruning, "pruning") == full("pruning", global_magnitude_masks=0)
    # SignSTE is wrong; BinaryLinear (which uses it) is tested with a correct SignSTE. Each task
    # of parts 2 and 3 has one mistake too: each loses its own points and nothing else (the
    # bias scale, the input zero point, the output zero point, float activations, no clipping)
    binarized = course.rows["binarized"]["one_wrong"]
    assert scores(binarized, "binarized") == full("binarized", SignSTE=0, **{
        name: 0 for name in BINARIZED_LAB_WRONG})


def test_an_infinite_loop_times_out_its_cell_and_the_rest_is_graded(course):
    row = course.rows["pruning"]["hangs"]
    assert row["status"] == "graded"
    # the visible test has no ties and passes; the hidden test's ties loop forever
    # (its sparsity plan reaches only 5x: 2 of the 4 hidden points, see the lab tests below)
    assert scores(row, "pruning") == full("pruning", l1_filter_order=1, sparsity_plan=3)
    assert any("test_l1_filter_order_hidden: timed out" in n for n in row["notes"]), row["notes"]


def test_one_mistake_in_each_lab_task_loses_exactly_that_tasks_points(course):
    row = course.rows["pruning"]["lab_wrong"]
    assert row["status"] == "graded", row
    # the scan prunes every layer at once and the MACs count the biases: visible and hidden
    # tests fail; the plan is well formed (visible point) but misses the accuracy bar
    assert scores(row, "pruning") == full("pruning", sensitivity_scan=0, remove_neurons=0,
                                          sparsity_plan=1)
    html = (course.root / "feedback" / "lab_wrong" / "pruning" / "pruning.html").read_text()
    assert "EVERY layer" in html and "counts the biases too" in html


def test_a_plan_that_misses_the_target_gets_the_stated_credit(course):
    # the rule stated in part 8: 4 hidden points at 10x fewer weights within 1 point of the
    # dense accuracy, 2 at 5x, 0 otherwise; nbgrader takes the 2 from the number the cell shows
    assert course.rows["pruning"]["solution"]["sparsity_plan"] == 5.0
    assert course.rows["pruning"]["hangs"]["sparsity_plan"] == 3.0
    assert course.rows["pruning"]["lab_wrong"]["sparsity_plan"] == 1.0
    partial = (course.root / "feedback" / "hangs" / "pruning" / "pruning.html").read_text()
    assert "(6.67x fewer)" in partial and "2 of 4 points" in partial
    missed = (course.root / "feedback" / "lab_wrong" / "pruning" / "pruning.html").read_text()
    assert "The plan loses more than 1 point of accuracy" in missed and "(10.00x fewer)" in missed


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
    auto = sum(MAX["pruning"].values())
    assert solution[f"autograded ({auto})"] == str(auto) and solution["magnitude_mask (4)"] == "4"
    # written answers wait for a human; left blank they score 0 at once
    assert solution["manual (14, empty until graded)"] == "" and solution["answer_rewinding (2)"] == ""
    released = next(r for r in table if r["student_id"] == "released")
    assert released["manual (14, empty until graded)"] == "0" and released["answer_rewinding (2)"] == "0"
    html = course.root / "feedback" / "one_wrong" / "pruning" / "pruning.html"
    assert "that is local pruning" in html.read_text()
    assert not (course.root / "feedback" / "broken_json" / "pruning").exists()
    for student in course.rows["pruning"]:
        assert student in course.printed
    assert "grades: " in course.printed


# ---------------------------------------------------------------------------
# The instructor's view: test submissions, kit wrappers, feedback, CSV, formgrader


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_the_sample_submission_scores_full_marks_with_no_notes(course, assignment):
    row = course.rows[assignment]["solution"]
    assert row["status"] == "graded" and row["notes"] == [], row
    assert scores(row, assignment) == full(assignment)
    nb = json.loads((course.root / "submitted" / "solution" / assignment / f"{assignment}.ipynb")
                    .read_text())
    filled = "\n".join("".join(c["source"]) for c in nb["cells"]
                       if c["metadata"].get("nbgrader", {}).get("solution"))
    assert "### BEGIN SOLUTION" not in filled and "# YOUR CODE HERE" not in filled
    assert "YOUR ANSWER HERE" not in filled
    with pytest.raises(ValueError, match="pass --force"):
        sample.sample_submission(course.root, assignment, "solution")


@pytest.mark.parametrize("assignment", sorted(KIT_WRAPPED))
def test_a_submission_wrapping_the_kit_scores_nothing_on_those_functions(course, assignment):
    row = course.rows[assignment]["kit_wrapper"]
    wrapped = KIT_WRAPPED[assignment]
    assert scores(row, assignment) == full(assignment, **{name: 0 for name in wrapped}), row
    for name in wrapped:
        assert any(re.search(rf"test_{name}_(visible|hidden): {name} calls pk\.[\w.]+, which is "
                             rf"off while it is graded", note) for note in row["notes"]), row["notes"]


def _feedback(course, student, assignment="pruning"):
    return (course.root / "feedback" / student / assignment / f"{assignment}.html").read_text()


def assert_mathjax_is_local(html):
    assert "jupyter_server_mathjax/MathJax.js" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//[^\"' >]*mathjax", html, re.I)
    assert "cdnjs" not in html and "cdn.jsdelivr" not in html


def test_feedback_names_each_test_and_waits_for_the_hand_grading(course):
    html = _feedback(course, "solution")
    for name in ASSIGNMENTS["pruning"]:
        assert f"{name} — visible tests" in html and f"{name} — hidden tests" in html
    assert ">Test cell<" not in html
    # written answers nobody graded yet are not counted as 0
    assert "not graded yet" in html
    auto = course.rows["pruning"]["solution"]["autograded"]
    assert f"Score so far: {auto:g} / {auto:g};" in html
    assert "written answer" in html
    assert_mathjax_is_local(html)
    # blank answers are graded at once (0 points): nothing waits
    released = _feedback(course, "released")
    assert "not graded yet" not in released and "Score: 0 / " in released


def test_once_the_answers_are_graded_feedback_and_grades_show_the_real_score(course):
    from nbgrader.api import Gradebook

    student = "one_wrong"  # its written answers wait for a grader
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook("pruning", "pruning", student)
        answers = [g for g in submission.grades if g.cell.cell_type == "markdown"]
        for grade in answers:  # what the formgrader does when a grader enters a score
            grade.manual_score = grade.max_score
            grade.needs_manual_grade = False
        gb.db.commit()
        total, maximum = submission.score, submission.max_score
    run_nbgrader(course.root, "generate_feedback", "pruning", "--student", student, "--force")
    html = _feedback(course, student)
    assert "not graded yet" not in html and f"(Score: {total:g} / {maximum:g})" in html
    _, rows, _, manual_max = grades.collect_grades(course.root, "pruning", [student], {})
    assert rows[0]["manual_state"] == f"graded: {manual_max:g}/{manual_max:g}"
    assert rows[0]["manual"] == manual_max


def test_grades_csv_columns_follow_the_notebook(course):
    with (course.root / "autograded" / "grades_pruning.csv").open() as handle:
        header = next(csv.reader(handle))
    nb = json.loads((course.root / "solutions" / "pruning" / "pruning.ipynb").read_text())
    expected = []
    for cell in nb["cells"]:
        gid, meta = _grade_id(cell), cell["metadata"].get("nbgrader", {})
        key = preflight.function_of(gid or "") or (gid if meta.get("grade") else None)
        if key and key not in expected:
            expected.append(key)
    parts = [re.sub(r" \([\d.]+\)$", "", h) for h in header[4:-1]]
    assert parts == expected
    assert header[:2] == ["student_id", "status"] and header[2].startswith("autograded (")


def test_the_summary_says_whether_the_hand_grading_is_done(course):
    line = next(l for l in course.printed.splitlines() if l.strip().startswith("solution "))
    assert re.search(r"\d+/\d+\s+graded; written answers not graded yet", line), line
    released = next(l for l in course.printed.splitlines() if l.strip().startswith("released "))
    assert "written answers graded: 0/" in released, released


def test_the_formgrader_serves_mathjax_itself(course):
    from nbgrader.api import Gradebook

    from local_server import jupyter_server

    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        submission_id = gb.find_submission_notebook("pruning", "pruning", "solution").id
    with jupyter_server(course.root) as server:
        status, page = server.get(f"/formgrader/submissions/{submission_id}/")
        assert status == 200 and "magnitude_mask" in page
        assert_mathjax_is_local(page)
        status, script = server.get("/static/jupyter_server_mathjax/MathJax.js")
        assert status == 200 and "MathJax" in script


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
