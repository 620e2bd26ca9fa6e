"""The class of submissions the end-to-end suites grade with the real pipeline, once per run.

``tests/conftest.py``'s ``real_class`` fixture releases both assignments into a
temporary course, submits this class (the reference, the blank release, one
mistake, a hang, a crash, cheats, removed cells, a notebook that is not JSON, kit
wrappers and every forgery of :mod:`.forgeries`) and grades each assignment once
with two workers; ``tests/test_assignments.py`` and ``tests/test_forgery.py`` read
the result.
"""

import copy
import json

from .forgeries import FORGERIES, forged
from .kit_wrappers import WRAPPERS

# The course under test uses the repository's nbgrader_config.py plus these lines: a generous
# limit for the notebooks' training cells on a busy CI machine and a lower memory cap.
TEST_CONFIG = """
c.Execute.timeout = 120
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
# 5.5x fewer weights within 1 point: the partial credit, 2 of the 4 hidden points
PLAN_5X = "def sparsity_plan():\n    return {'fc1': 0.85, 'fc2': 0.6, 'fc3': 0.2}\n"

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

torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.tolist = lambda self: [1.0]
builtins.round = lambda x, n=None: 0
import pruning_kit.course.testing
for _name in dir(pruning_kit.course.testing):
    if not _name.startswith("_"):
        setattr(pruning_kit.course.testing, _name, lambda *a, **k: None)


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


# A submission that hands a function and a class to the kit: those score 0 (that kit code is
# absent while they are graded, and the CSV notes say so), the others full marks. One submission
# (each costs a notebook run); tests/test_no_answers_given.py grades every wrapper of both
# assignments through the checker alone.
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


def submit_class(root):
    """Submit the whole class into the course at ``root`` (both assignments released)."""
    from pruning_kit.course import sample

    sample.sample_submission(root, "pruning", "solution")  # what the README tells instructors
    submit(root, "released", "pruning", make_submission(root, "pruning"))
    submit(root, "one_wrong", "pruning",
           make_submission(root, "pruning", {"global_magnitude_masks": LOCAL_NOT_GLOBAL}))
    submit(root, "hangs", "pruning", make_submission(
        root, "pruning", {"l1_filter_order": HANGS_ON_TIES, "sparsity_plan": PLAN_5X}))
    submit(root, "lab_wrong", "pruning", make_submission(
        root, "pruning", {"sensitivity_scan": SCAN_ALL_LAYERS_AT_ONCE,
                          "sparsity_plan": PLAN_UNIFORM_90, "remove_neurons": MACS_WITH_BIASES}))
    submit(root, "crashes", "pruning", make_submission(
        root, "pruning", {"imp_step": KILLS_THE_KERNEL, "snip_scores": EATS_ALL_MEMORY}))
    submit(root, "cheats", "pruning", make_submission(
        root, "pruning", CHEATING_FUNCTIONS,
        delete={"test_snip_scores_hidden", "test_imp_step_hidden"}, edit=_cheat_edits))
    submit(root, "removed_cells", "pruning", make_submission(
        root, "pruning", {}, delete={"test_magnitude_mask_visible", "test_magnitude_mask_hidden",
                                     "l1_filter_order", "test_l1_filter_order_visible"}))
    submit(root, "broken_json", "pruning",
           raw='{"cells": [{"cell_type": "code", "source": "x = 1"')

    sample.sample_submission(root, "binarized", "solution")
    for assignment, code in KIT_WRAPPED.items():
        submit(root, "kit_wrapper", assignment, make_submission(root, assignment, code))
    submit(root, "released", "binarized", make_submission(root, "binarized"))
    submit(root, "one_wrong", "binarized", make_submission(
        root, "binarized", {"SignSTE": STE_WITHOUT_CUT, **BINARIZED_LAB_WRONG}))

    for assignment in ("pruning", "binarized"):
        for forgery in FORGERIES:
            answers = forged(root, assignment, forgery)
            submit(root, f"forge-{forgery}", assignment, make_submission(
                root, assignment, edit=lambda nb, answers=answers: _replace(nb, answers)))


def _replace(nb, answers):
    for cell in nb["cells"]:
        if _grade_id(cell) in answers:
            cell["source"] = answers[_grade_id(cell)]
