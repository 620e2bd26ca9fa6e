"""The pruning lab's checks, in-process: the sensitivity scan, the sparsity plan, neuron removal.

Like ``test_grading.py``, the visible and hidden test cells of
``solutions/pruning/pruning.ipynb`` run here against alternative correct
implementations (``LAB_ALTERNATIVES``: full marks) and the mistakes students
make (``LAB_MISTAKES``: the hidden tests fail, naming the mistake). The plan's
partial credit (4, 2 or 0 points under the rule stated in the notebook) is
checked on plans measured when the lab was designed (dense 944/1000 correct):

======================================  ======  =====================  ======
plan (fc1, fc2, fc3)                    fewer   correct after tuning   points
======================================  ======  =====================  ======
0.92, 0.88, 0.50 (the reference)        11.62x  941 (-3)               4
0.92, 0.85, 0.50                        11.18x  940 (-4)               4
0.90, 0.90, 0.90 (uniform 90%)          10.00x  926 (-18)              0
0.85, 0.85, 0.85                         6.67x  939 (-5)               2
0.90, 0.90, 0.00                         9.67x  939 (-5)               2
======================================  ======  =====================  ======
"""

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest
import torch

from pruning_kit.course.checks import core
from pruning_kit.course.checks import pruning as checks

REPO = Path(__file__).resolve().parents[1]
LAB = ("sensitivity_scan", "sparsity_plan", "remove_neurons")


def notebook(folder="solutions"):
    return json.loads((REPO / folder / "pruning" / "pruning.ipynb").read_text())


def cell_source(grade_id, folder="solutions"):
    for cell in notebook(folder)["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def namespace(implementation=None, name=None):
    ns = {"__name__": "__main__"}
    for gid in ("parameters", "setup"):
        exec(cell_source(gid), ns)
    exec(textwrap.dedent(implementation) if implementation else cell_source(name), ns)
    return ns


def run_cell(source, ns):
    """Run a cell as Jupyter does; return the value of its last expression (or None)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), ns)
    if last is not None:
        return eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)
    return None


def run_tests(name, implementation=None, kinds=("visible", "hidden")):
    """{kind: None or the failure message} for the test cells of ``name``."""
    ns = namespace(implementation, name)
    results = {}
    for kind in kinds:
        try:
            run_cell(cell_source(f"test_{name}_{kind}"), ns)
            results[kind] = None
        except AssertionError as exc:
            results[kind] = str(exc)
    return results


@pytest.fixture(scope="module")
def dense():
    """The lab's dense LeNet-300-100, trained once for the plan tests."""
    return checks.train_dense()


def plan_function(plan):
    return lambda: dict(plan)


# ---------------------------------------------------------------------------
# Alternative correct implementations earn every point

LAB_ALTERNATIVES = {
    "sensitivity_scan": {
        "in place, weights put back": """
            def sensitivity_scan(model, data, sparsities):
                result = {}
                for name, layer in pk.models.prunable(model):
                    saved = layer.weight.detach().clone()
                    result[name] = []
                    for s in sparsities:
                        with torch.no_grad():
                            layer.weight.mul_(magnitude_mask(layer.weight, s))
                        result[name].append(pk.train.evaluate(model, data))
                        with torch.no_grad():
                            layer.weight.copy_(saved)
                return result
        """,
        "torch.nn.utils.prune on a copy, numpy accuracies": """
            import numpy as np
            import torch.nn.utils.prune as torch_prune

            def sensitivity_scan(model, data, sparsities):
                names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
                out = {n: [] for n in names}
                for n in names:
                    for s in sparsities:
                        twin = copy.deepcopy(model)
                        layer = dict(twin.named_modules())[n]
                        torch_prune.l1_unstructured(layer, "weight", amount=round(s * layer.weight.numel()))
                        with torch.no_grad():
                            predicted = twin(data.images).argmax(1).numpy()
                        out[n].append(np.mean(predicted == data.labels.numpy()))
                return out
        """,
        "state_dict copies, sort, accuracy as 0-d tensors in batches": """
            def sensitivity_scan(model, data, sparsities):
                state = {k: v.clone() for k, v in model.state_dict().items()}
                layers = [n for n, _ in pk.models.prunable(model)]
                twin = copy.deepcopy(model).eval()
                scan = {}
                for name in layers:
                    accuracies = []
                    for s in sparsities:
                        twin.load_state_dict(state)
                        w = twin.get_submodule(name).weight
                        k = round(s * w.numel())
                        order = torch.sort(w.detach().abs().flatten()).indices
                        with torch.no_grad():
                            w.view(-1)[order[:k]] = 0.0
                            right = sum((twin(data.images[i:i + 128]).argmax(1) ==
                                         data.labels[i:i + 128]).sum() for i in range(0, len(data), 128))
                        accuracies.append(right / len(data))
                    scan[name] = tuple(accuracies)
                return scan
        """,
    },
    "sparsity_plan": {
        "numpy numbers": """
            import numpy as np

            def sparsity_plan():
                return {"fc3": np.float64(0.5), "fc2": np.float32(0.85), "fc1": 0.92}
        """,
    },
    "remove_neurons": {
        "nn.Sequential with boolean indexing, numpy int": """
            import numpy as np

            def remove_neurons(model, keep):
                layers = [model.fc1, model.fc2, model.fc3]
                masks = [keep.get("fc1", torch.ones(model.fc1.out_features, dtype=torch.bool)),
                         keep.get("fc2", torch.ones(model.fc2.out_features, dtype=torch.bool)),
                         torch.ones(model.fc3.out_features, dtype=torch.bool)]
                cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
                new = []
                for layer, rows in zip(layers, masks):
                    lin = nn.Linear(int(cols.sum()), int(rows.sum()))
                    with torch.no_grad():
                        lin.weight.copy_(layer.weight[rows][:, cols])
                        lin.bias.copy_(layer.bias[rows])
                    new.append(lin)
                    cols = rows
                small = nn.Sequential(nn.Flatten(), new[0], nn.ReLU(), new[1], nn.ReLU(), new[2])
                count = lambda ls: sum(l.weight.numel() for l in ls)
                return small, np.int64(count(layers) - count(new))
        """,
        "a fresh LeNet with index_select": """
            def remove_neurons(model, keep):
                kept = {}
                for name in ("fc1", "fc2"):
                    n = getattr(model, name).out_features
                    kept[name] = torch.tensor([i for i in range(n) if name not in keep or bool(keep[name][i])],
                                              dtype=torch.long)
                small = pk.models.lenet_300_100(model.fc1.in_features, model.fc3.out_features)
                w1 = model.fc1.weight.detach().index_select(0, kept["fc1"])
                w2 = model.fc2.weight.detach().index_select(0, kept["fc2"]).index_select(1, kept["fc1"])
                w3 = model.fc3.weight.detach().index_select(1, kept["fc2"])
                small.fc1, small.fc2, small.fc3 = (nn.Linear(w.shape[1], w.shape[0]) for w in (w1, w2, w3))
                with torch.no_grad():
                    for layer, w, b in ((small.fc1, w1, model.fc1.bias[kept["fc1"]]),
                                        (small.fc2, w2, model.fc2.bias[kept["fc2"]]),
                                        (small.fc3, w3, model.fc3.bias)):
                        layer.weight.copy_(w)
                        layer.bias.copy_(b)
                macs = lambda m: m.fc1.in_features * m.fc1.out_features + \\
                    m.fc2.in_features * m.fc2.out_features + m.fc3.in_features * m.fc3.out_features
                return small, macs(model) - macs(small)
        """,
    },
}


@pytest.mark.parametrize("name,label", [(n, label) for n, alts in LAB_ALTERNATIVES.items()
                                        for label in alts])
def test_other_correct_implementations_get_full_marks(name, label):
    kinds = ("visible",) if name == "sparsity_plan" else ("visible", "hidden")
    assert run_tests(name, LAB_ALTERNATIVES[name][label], kinds) == {k: None for k in kinds}


# ---------------------------------------------------------------------------
# The mistakes students make lose the points, with a message that names them

SCAN_HEADER = """
def sensitivity_scan(model, data, sparsities):
    scan = {}
"""

LAB_MISTAKES = {
    ("sensitivity_scan", "earlier layers stay pruned"): ("""
        def sensitivity_scan(model, data, sparsities):
            twin = copy.deepcopy(model)  # one copy for the whole scan
            scan = {}
            for name, layer in pk.models.prunable(twin):
                scan[name] = []
                for s in sparsities:
                    with torch.no_grad():
                        layer.weight.mul_(magnitude_mask(layer.weight, s))
                    scan[name].append(pk.train.evaluate(twin, data))
            return scan
    """, ["were still pruned"]),
    ("sensitivity_scan", "prunes the model it was given"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, layer in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    with torch.no_grad():
                        layer.weight.mul_(magnitude_mask(layer.weight, s))
                    scan[name].append(pk.train.evaluate(model, data))
            return scan
    """, ["changed the model's parameter", "copy.deepcopy"]),
    ("sensitivity_scan", "every layer pruned at once"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, _ in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    with torch.no_grad():
                        for _, layer in pk.models.prunable(twin):
                            layer.weight.mul_(magnitude_mask(layer.weight, s))
                    scan[name].append(pk.train.evaluate(twin, data))
            return scan
    """, ["EVERY layer"]),
    ("sensitivity_scan", "smallest signed weights"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, _ in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    w = twin.get_submodule(name).weight
                    with torch.no_grad():
                        w.view(-1)[w.flatten().argsort()[:round(s * w.numel())]] = 0
                    scan[name].append(pk.train.evaluate(twin, data))
            return scan
    """, ["SIGNED"]),
    ("sensitivity_scan", "error rates"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, _ in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    w = twin.get_submodule(name).weight
                    with torch.no_grad():
                        w.mul_(magnitude_mask(w, s))
                    scan[name].append(1 - pk.train.evaluate(twin, data))
            return scan
    """, ["error rates"]),
    ("sensitivity_scan", "percentages"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, _ in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    w = twin.get_submodule(name).weight
                    with torch.no_grad():
                        w.mul_(magnitude_mask(w, s))
                    scan[name].append(100 * pk.train.evaluate(twin, data))
            return scan
    """, ["percentages"]),
    ("sensitivity_scan", "prunes the bias too"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, _ in pk.models.prunable(model):
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    layer = twin.get_submodule(name)
                    with torch.no_grad():
                        layer.weight.mul_(magnitude_mask(layer.weight, s))
                        layer.bias.mul_(magnitude_mask(layer.bias, s))
                    scan[name].append(pk.train.evaluate(twin, data))
            return scan
    """, ["with only"]),
    ("sensitivity_scan", "only the Linear layers"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for name, layer in model.named_modules():
                if not isinstance(layer, nn.Linear):
                    continue
                scan[name] = []
                for s in sparsities:
                    twin = copy.deepcopy(model)
                    w = twin.get_submodule(name).weight
                    with torch.no_grad():
                        w.mul_(magnitude_mask(w, s))
                    scan[name].append(pk.train.evaluate(twin, data))
            return scan
    """, ["missing keys ['0']"]),
    ("sensitivity_scan", "one row per sparsity"): ("""
        def sensitivity_scan(model, data, sparsities):
            scan = {}
            for s in sparsities:
                scan[s] = {}
                for name, _ in pk.models.prunable(model):
                    twin = copy.deepcopy(model)
                    w = twin.get_submodule(name).weight
                    with torch.no_grad():
                        w.mul_(magnitude_mask(w, s))
                    scan[s][name] = pk.train.evaluate(twin, data)
            return scan
    """, ["unexpected keys"]),
    ("remove_neurons", "zeros instead of removing"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            with torch.no_grad():
                for name, k in keep.items():
                    getattr(small, name).weight[~k] = 0
                    getattr(small, name).bias[~k] = 0
            return small, 0
    """, ["MACs per example, expected", "not zeros"]),
    ("remove_neurons", "changes the model in place"): ("""
        def remove_neurons(model, keep):
            before = sum(l.weight.numel() for l in (model.fc1, model.fc2, model.fc3))
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(model, name, new)
                cols = rows
            return model, before - sum(l.weight.numel() for l in (model.fc1, model.fc2, model.fc3))
    """, ["changed the model"]),
    ("remove_neurons", "the next layer keeps every input"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            for name in ("fc1", "fc2"):
                if name in keep:
                    old = getattr(model, name)
                    new = nn.Linear(old.in_features, int(keep[name].sum()))
                    with torch.no_grad():
                        new.weight.copy_(old.weight[keep[name]])
                        new.bias.copy_(old.bias[keep[name]])
                    setattr(small, name, new)
            return small, 0
    """, ["raised RuntimeError"]),
    ("remove_neurons", "counts the biases as MACs"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            params = lambda m: sum(p.numel() for p in m.parameters())
            return small, params(model) - params(small)
    """, ["counts the biases"]),
    ("remove_neurons", "the small model's MACs"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            return small, sum(l.weight.numel() for l in (small.fc1, small.fc2, small.fc3))
    """, ["SAVED"]),
    ("remove_neurons", "forgets the inputs the next layer loses"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            saved = 0
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
                saved += old.in_features * int((~rows).sum())
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            return small, saved
    """, ["in_features shrinks"]),
    ("remove_neurons", "hard-coded 300 and 100"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            k1 = keep.get("fc1", torch.ones(300, dtype=torch.bool))
            k2 = keep.get("fc2", torch.ones(100, dtype=torch.bool))
            small.fc1 = nn.Linear(model.fc1.in_features, int(k1.sum()))
            small.fc2 = nn.Linear(int(k1.sum()), int(k2.sum()))
            small.fc3 = nn.Linear(int(k2.sum()), 10)
            with torch.no_grad():
                small.fc1.weight.copy_(model.fc1.weight[k1]); small.fc1.bias.copy_(model.fc1.bias[k1])
                small.fc2.weight.copy_(model.fc2.weight[k2][:, k1]); small.fc2.bias.copy_(model.fc2.bias[k2])
                small.fc3.weight.copy_(model.fc3.weight[:, k2]); small.fc3.bias.copy_(model.fc3.bias)
            macs = lambda m: sum(l.weight.numel() for l in (m.fc1, m.fc2, m.fc3))
            return small, macs(model) - macs(small)
    """, ["raised"]),
    ("remove_neurons", "squeeze loses the last dimension"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            cols = torch.arange(model.fc1.in_features)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep[name].nonzero().squeeze() if name in keep else torch.arange(old.out_features)
                w = old.weight.detach()[rows][:, cols]
                new = nn.Linear(w.shape[1], w.shape[0])
                with torch.no_grad():
                    new.weight.copy_(w)
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            macs = lambda m: sum(l.weight.numel() for l in (m.fc1, m.fc2, m.fc3))
            return small, macs(model) - macs(small)
    """, ["raised"]),
    ("remove_neurons", "removes the neurons keep marks True"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = ~keep[name] if name in keep else torch.ones(old.out_features, dtype=torch.bool)
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            macs = lambda m: sum(l.weight.numel() for l in (m.fc1, m.fc2, m.fc3))
            return small, macs(model) - macs(small)
    """, ["differs from the masked model"]),
    ("remove_neurons", "MACs as a float"): ("""
        def remove_neurons(model, keep):
            small = copy.deepcopy(model)
            cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
            for name in ("fc1", "fc2", "fc3"):
                old = getattr(model, name)
                rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
                new = nn.Linear(int(cols.sum()), int(rows.sum()))
                with torch.no_grad():
                    new.weight.copy_(old.weight[rows][:, cols])
                    new.bias.copy_(old.bias[rows])
                setattr(small, name, new)
                cols = rows
            macs = lambda m: sum(l.weight.numel() for l in (m.fc1, m.fc2, m.fc3))
            return small, float(macs(model) - macs(small))
    """, ["should be an int"]),
    ("sparsity_plan", "a fraction of the weights to KEEP"): ("""
        def sparsity_plan():
            return {"fc1": 0.08, "fc2": 0.12, "fc3": 0.5}
    """, ["keeps too many weights"]),
    ("sparsity_plan", "uniform 90%"): ("""
        def sparsity_plan():
            return {"fc1": 0.9, "fc2": 0.9, "fc3": 0.9}
    """, ["loses more than 1 point"]),
}


@pytest.mark.parametrize("name,mistake", list(LAB_MISTAKES))
def test_conceptual_errors_lose_the_points(name, mistake):
    implementation, hints = LAB_MISTAKES[(name, mistake)]
    message = run_tests(name, implementation, kinds=("hidden",))["hidden"]
    assert message is not None, f"the hidden tests of {name} accepted {mistake!r}"
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"
    first = core.first_sentence(message) if hasattr(core, "first_sentence") else message
    assert len(first) <= 80, f"the first sentence is too long: {first!r}"


def test_released_stubs_score_nothing():
    for name in LAB:
        stub = re.sub(r"^( *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION\n?",
                      lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()\n",
                      cell_source(name) + "\n", flags=re.S | re.M)
        results = run_tests(name, stub)
        assert "raised NotImplementedError" in results["visible"], results
        assert "raised NotImplementedError" in results["hidden"], results


# ---------------------------------------------------------------------------
# The plan: the rule, partial credit, the same score every time


@pytest.mark.parametrize("plan,points", [
    ({"fc1": 0.92, "fc2": 0.88, "fc3": 0.5}, 4),
    ({"fc1": 0.92, "fc2": 0.85, "fc3": 0.5}, 4),
    ({"fc1": 0.85, "fc2": 0.85, "fc3": 0.85}, 2),
    ({"fc1": 0.9, "fc2": 0.9, "fc3": 0.0}, 2),
    ({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9}, 0),
    ({"fc1": 0.5, "fc2": 0.5, "fc3": 0.5}, 0),
])
def test_plans_earn_the_points_of_the_stated_rule(dense, plan, points, capsys):
    if points:
        assert checks.check_sparsity_plan(plan_function(plan), dense=dense) == points
        assert f"{points} of 4 points" in capsys.readouterr().out
    else:
        with pytest.raises(AssertionError) as failure:
            checks.check_sparsity_plan(plan_function(plan), dense=dense)
        assert len(core.first_sentence(str(failure.value))) <= 80 if hasattr(
            core, "first_sentence") else True
        assert "0 of 4 points" in str(failure.value)


def test_uniform_90_percent_is_exactly_10x_and_fails_on_accuracy(dense):
    outcome = checks.plan_outcome({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9}, dense)
    assert outcome.kept * 10 == outcome.total == 266200  # on the size bar, not past it by rounding
    assert not outcome.within and outcome.points == 0
    again = checks.plan_outcome({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9}, dense)
    assert (again.dense_correct, again.pruned_correct, again.kept) == (
        outcome.dense_correct, outcome.pruned_correct, outcome.kept)  # deterministic


def test_the_hidden_plan_test_shows_its_partial_points_to_nbgrader(capsys):
    """The cell's last expression is the points: nbgrader reads it as partial credit."""
    ns = namespace("def sparsity_plan():\n    return {'fc1': 0.85, 'fc2': 0.85, 'fc3': 0.85}\n")
    assert run_cell(cell_source("test_sparsity_plan_hidden"), ns) == 2
    assert "2 of 4 points" in capsys.readouterr().out
    source = cell_source("test_sparsity_plan_hidden")
    assert re.search(r"^# grading time limit: \d+ s$", source, re.M)
    assert source.rstrip().splitlines()[-2].startswith("plan_points")


def test_the_visible_plan_test_checks_the_form_only():
    bad = {
        "missing layer": ("{'fc1': 0.9, 'fc2': 0.9}", "missing keys ['fc3']"),
        "extra layer": ("{'fc1': 0.9, 'fc2': 0.9, 'fc3': 0.5, 'fc4': 0.1}", "unexpected keys"),
        "percent": ("{'fc1': 92, 'fc2': 88, 'fc3': 50}", "sparsity in [0, 1]"),
        "string": ("{'fc1': '0.9', 'fc2': 0.9, 'fc3': 0.5}", "should be a number"),
        "list": ("[0.92, 0.88, 0.5]", "should be a dict"),
        "bool": ("{'fc1': True, 'fc2': 0.9, 'fc3': 0.5}", "should be a number"),
    }
    for label, (value, hint) in bad.items():
        message = run_tests("sparsity_plan", f"def sparsity_plan():\n    return {value}\n",
                            kinds=("visible",))["visible"]
        assert message and hint in message, (label, message)
    assert run_tests("sparsity_plan", "def sparsity_plan():\n    return {'fc1': 1, 'fc2': 0, "
                     "'fc3': 0.5}\n", kinds=("visible",)) == {"visible": None}


def test_the_notebook_states_the_rule_the_checks_apply():
    text = "".join(cell_source("test_sparsity_plan_hidden"))
    prompt = next("".join(c["source"]) for c in notebook()["cells"]
                  if "".join(c["source"]).startswith("## 8. A per-layer sparsity plan"))
    total = sum(checks._plan_sizes().values())
    assert total == 266200 and f"{total:,}".replace(",", "{,}") in prompt
    assert f"{total // 10:,}".replace(",", "{,}") in prompt  # 26,620
    assert f"{total // 5:,}".replace(",", "{,}") in prompt   # 53,240
    assert "c_\\text{dense} - 10" in prompt and checks.PLAN_RULE["within_correct"] == 10
    assert "3 epochs, Adam, learning rate 1e-3" in prompt and checks.FINE_TUNE == {
        "epochs": 3, "lr": 1e-3, "seed": 0}
    assert "(4 points)" in text and checks.PLAN_RULE["full"] == (10, 4)
    assert checks.PLAN_RULE["partial"] == (5, 2)


def test_the_lab_setup_cell_trains_the_graders_dense_model(dense):
    ns = namespace(name="magnitude_mask")
    exec(cell_source("lab_setup"), ns)
    mine, theirs = ns["dense"].state_dict(), dense.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_the_try_it_cell_prints_what_the_hidden_test_awards(dense, capsys):
    outcome = checks.plan_outcome(checks.reference("sparsity_plan")(), dense)
    assert outcome.points == 4 and outcome.dense_correct >= checks.PLAN_RULE["dense_floor"]
    assert "4 of 4 points" in outcome.text
    assert "checks.plan_outcome(sparsity_plan(), dense)" in cell_source("try_plan")


def test_a_plan_cannot_fool_the_count_by_switching_pruning_off(dense):
    def sneaky():
        checks._LAB.magnitude.__globals__["_prune_groups"] = lambda *a, **k: None
        return {"fc1": 0.99, "fc2": 0.99, "fc3": 0.99}

    import pruning_kit.prune as kit_prune

    original = kit_prune._prune_groups
    try:
        with pytest.raises(AssertionError, match="keeps too many weights"):
            checks.check_sparsity_plan(sneaky, dense=dense)
    finally:
        kit_prune._prune_groups = original


# ---------------------------------------------------------------------------
# The scan and the removal: what the checks themselves guarantee


def test_scan_check_rejects_a_model_or_data_changed_and_accepts_one_example_off():
    model, data = checks.trained_model("conv")
    exact = checks._scan(model, data, [0.0, 0.9])

    def one_off(model_, data_, sparsities):
        return {n: [v + 1 / len(data_) for v in exact[n]] for n in exact}

    checks.check_sensitivity_scan(one_off, model, data, [0.0, 0.9])

    def two_off(model_, data_, sparsities):
        return {n: [v - 2 / len(data_) for v in exact[n]] for n in exact}

    with pytest.raises(AssertionError, match=r"scan\['0'\] at sparsity 0 is"):
        checks.check_sensitivity_scan(two_off, model, data, [0.0, 0.9])

    def normalises_in_place(model_, data_, sparsities):
        data_.images.mul_(2)
        return exact

    with pytest.raises(AssertionError, match="changed its input data.images"):
        checks.check_sensitivity_scan(normalises_in_place, model, data, [0.0, 0.9])


def test_trained_models_are_copies_of_one_training():
    a, _ = checks.trained_model("lenet")
    with torch.no_grad():
        a.fc1.weight.zero_()
    b, _ = checks.trained_model("lenet")
    assert b.fc1.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="kind must be"):
        checks.trained_model("vgg")


def test_remove_neurons_check_uses_the_kits_mac_count():
    import pruning_kit as pk

    model = checks.lenet(64, (12, 6), 10, seed=3)
    keep = {"fc1": checks.random_keep(12, 5, seed=1), "fc2": checks.random_keep(6, 2, seed=2)}
    small, saved = checks.reference("remove_neurons")(model, keep)
    x = torch.zeros(1, 64)
    assert saved == pk.metrics.macs(model, x) - pk.metrics.macs(small, x) == 64 * 5 + (72 - 7 * 4) + 2 * 10
    assert checks._count_macs(small, x, "small(x)") == pk.metrics.macs(small, x)
    assert int(checks.random_keep(300, 90, seed=2).sum()) == 210


# ---------------------------------------------------------------------------
# The kit refuses; the notebook keeps its promises


def test_the_kit_refuses_for_the_lab_functions():
    from kit_wrappers import WRAPPERS

    for name in LAB:
        results = run_tests(name, WRAPPERS["pruning"][name], kinds=("visible",))
        assert re.search(rf"KitRefused: pk\.[\w.]+ is off while {name} is graded",
                         results["visible"] or ""), results


def test_no_lab_solution_line_stands_in_the_released_notebook():
    released = "\n".join(" ".join(line.split()) for cell in notebook("assignments")["cells"]
                         for line in "".join(cell["source"]).splitlines())
    for gid in LAB + ("plot_sensitivity", "answer_sensitivity", "answer_macs_latency"):
        block = cell_source(gid).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        for line in block.splitlines():
            text = " ".join(line.split())
            if len(text) >= 20 and not text.startswith(("#", "return ", "import ")):
                assert text not in released, f"{gid}: {text!r} is in the released notebook"


def test_lab_cells_that_use_the_kit_are_locked():
    # preflight flags pk.prune / pk.structured calls in unlocked cells for review
    for cell in notebook()["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"\bpk\.(prune|structured)\.|checks\.", src):
            meta = cell["metadata"].get("nbgrader", {})
            assert meta.get("locked"), src[:80]
