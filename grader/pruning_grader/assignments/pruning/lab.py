"""Checks and hidden tests of the ``pruning`` lab (parts 7-9): scan, plan, neuron removal.

The lab works on a LeNet-300-100 trained on ``mnist5k``. The data follow one
rule, the notebook's and the grader's alike (:func:`lab_data`): the 500
validation images that ``pk.lottery.split_validation`` carves out of the 4,000
training images (seed 0) are never trained on; the dense model and every
fine-tuning use the other 3,500; the 1,000 test images only decide the grade.

- ``sensitivity_scan`` gets the grader's own trained models (sent by structure)
  and data; every accuracy is compared with the grader's scan, recomputed here.
- ``sparsity_plan`` returns plain numbers: the grader trains the dense model,
  applies the plan with the kit, fine-tunes and counts, all in its own process
  (:func:`plan_outcome`), and awards 4, 2 or 0 points (:data:`PLAN_RULE`).
- ``remove_neurons`` returns a model that stays in the student's process: its
  structure is read from its description, its weights from its state dict, and
  its outputs are asked for there and compared with the masked network's,
  recomputed here from the grader's model and from the small model's state dict.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import pruning_kit as pk
from pruning_kit.course.agent import describe

from ...judging import CheckFailed, call, fail, fmt, random_tensor, type_name
from . import ASSIGNMENT
from .checks import dict_result, echo_call, shown

LAB_DATASET = "mnist5k"
"""The data of the lab: the embedded 5,000 MNIST digits (4,000 train, 1,000 test)."""

VALIDATION_SIZE = 500
"""Training images held out for validation: ``pk.lottery.split_validation(train, 500)``."""

DENSE_RECIPE = {"epochs": 10, "lr": 2e-3, "seed": 0}
"""How the lab's dense LeNet-300-100 is trained (after ``torch.manual_seed(0)``; Adam, batch 64)."""

FINE_TUNE = {"epochs": 3, "lr": 1e-3, "seed": 0}
"""The fixed fine-tuning budget a sparsity plan gets (Adam, batch 64, one thread)."""

PLAN_LAYERS = ("fc1", "fc2", "fc3")
"""The layers a sparsity plan names: the prunable layers of LeNet-300-100."""

PLAN_RULE = {"full": (10, 4), "partial": (5, 2), "within_correct": 10, "dense_floor": 900}
"""Points for a plan: 4 at >= 10x fewer weights, 2 at >= 5x, each within 1 point (10 of
1,000 test images) of the dense accuracy; the dense model must reach 900 correct."""

LINEAR = "torch.nn.modules.linear.Linear"
CONV = "torch.nn.modules.conv.Conv2d"


# ---------------------------------------------------------------------------
# The lab's data and models, trained in the grader's process

@lru_cache(maxsize=1)
def lab_data():
    """``(train, val, test)``: the lab's split of :data:`LAB_DATASET` (the notebook's rule).

    Example:
        >>> train, val, test = lab_data()
        >>> len(train), len(val), len(test)
        (3500, 500, 1000)
    """
    full, test = pk.data.load(LAB_DATASET)
    train, val = pk.lottery.split_validation(full, VALIDATION_SIZE)
    return train, val, test


@lru_cache(maxsize=1)
def _dense_state():
    train, _, _ = lab_data()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = pk.models.lenet_300_100()
        pk.train.fit(model, train, progress=False, threads=1, **DENSE_RECIPE)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_dense():
    """The lab's dense LeNet-300-100 (the notebook's setup cell), in eval mode.

    Trained once per grading process: ``torch.manual_seed(0)``, then :data:`DENSE_RECIPE`
    on the 3,500 training images of :func:`lab_data`; callers get fresh copies.
    """
    model = pk.models.lenet_300_100()
    model.load_state_dict(_dense_state())
    return model.eval()


def plan_sizes():
    """Weights of each layer a plan names: ``{"fc1": 235200, "fc2": 30000, "fc3": 1000}``."""
    model = pk.models.lenet_300_100()
    return {name: getattr(model, name).weight.numel() for name in PLAN_LAYERS}


def plan_kept(plan):
    """Weights a plan keeps in each layer of LeNet-300-100: ``n - round(s * n)``.

    Example:
        >>> plan_kept({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9})
        {'fc1': 23520, 'fc2': 3000, 'fc3': 100}
    """
    return {name: n - round(plan[name] * n) for name, n in plan_sizes().items()}


@lru_cache(maxsize=64)
def _outcome(plan_items):
    plan = dict(plan_items)
    train, _, test = lab_data()
    model = train_dense()
    dense_correct = int(pk.train.correct(model, test).sum())
    with torch.random.fork_rng():
        pk.prune.magnitude(model, 0.0, scope="local", rates=plan)
        pk.train.fit(model, train, progress=False, threads=1, **FINE_TUNE)
        pk.prune.finalize(model)
    kept = sum(int((getattr(model, name).weight != 0).sum()) for name in PLAN_LAYERS)
    return dense_correct, int(pk.train.correct(model, test).sum()), kept, len(test)


def plan_outcome(plan):
    """Apply a plan to the lab's dense model, fine-tune, count: what the hidden test awards.

    Each layer is pruned by magnitude at its own sparsity (``pk.prune.magnitude(model, 0.0,
    scope="local", rates=plan)``), fine-tuned with :data:`FINE_TUNE` on the training images,
    and the weights kept and the test images classified right are counted (the same plan
    gives the same numbers: computed once per grading process).

    Returns:
        a namespace: ``dense_correct``, ``pruned_correct``, ``n_test``, ``kept``, ``total``,
        ``ratio``, ``within``, ``points`` and ``text`` (one line for the student).
    """
    values = {name: float(plan[name]) for name in PLAN_LAYERS}
    dense_correct, pruned_correct, kept, n_test = _outcome(tuple(sorted(values.items())))
    total = sum(plan_sizes().values())
    within = pruned_correct >= dense_correct - PLAN_RULE["within_correct"]
    ratio = total / kept if kept else math.inf
    points = 0
    for level in ("full", "partial"):
        times, level_points = PLAN_RULE[level]
        if within and kept * times <= total:
            points = level_points
            break
    drop = (dense_correct - pruned_correct) * 100 / n_test
    change = (f"{drop:.1f} points below" if drop > 0 else
              f"{-drop:.1f} points above" if drop < 0 else "the same as")
    text = (f"{kept:,} of {total:,} weights kept ({ratio:.2f}x fewer); test accuracy after "
            f"fine-tuning {pruned_correct / n_test:.3f}, {change} the dense "
            f"{dense_correct / n_test:.3f}: {points} of {PLAN_RULE['full'][1]} points")
    return SimpleNamespace(plan=values, dense_correct=dense_correct, pruned_correct=pruned_correct,
                           n_test=n_test, kept=kept, total=total, ratio=ratio, within=within,
                           points=points, text=text)


@lru_cache(maxsize=None)
def _trained_state(kind, seed, epochs):
    train, _, _ = lab_data()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _untrained(kind)
        pk.train.fit(model, train, epochs=epochs, lr=2e-3, seed=seed, progress=False, threads=1)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _untrained(kind):
    if kind == "lenet":
        return pk.models.lenet_300_100()
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, stride=3), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10))


def trained_model(kind="lenet", seed=0, epochs=1):
    """A small model trained on the lab's training images, and 500 test images to scan on.

    Args:
        kind: ``"lenet"`` (LeNet-300-100) or ``"conv"`` (a conv layer, ReLU and a linear
            layer: prunable layers ``"0"`` and ``"3"``).
        seed: seeds the initial weights and the data order.
        epochs: training epochs (Adam, lr 2e-3, batch 64, one thread).

    Returns:
        ``(model, data)``: a fresh copy of the model in eval mode, the first 500 test images.

    Example:
        >>> model, data = trained_model("conv")
        >>> [name for name, _ in model.named_children()], len(data)
        (['0', '1', '2', '3'], 500)
    """
    if kind not in ("lenet", "conv"):
        raise ValueError(f"kind must be 'lenet' or 'conv', got {kind!r}")
    _, _, test = lab_data()
    model = _untrained(kind)
    model.load_state_dict(_trained_state(kind, seed, epochs))
    data = pk.data.TensorData(test.images[:500], test.labels[:500], name="mnist5k-test[:500]")
    return model.eval(), data


# ---------------------------------------------------------------------------
# A model the student's process holds, or one of the grader's: read alike

def structure(model):
    """``[(path, type path)]`` of every module of a model (the grader's, or a student's handle)."""
    info = describe(model) if isinstance(model, torch.nn.Module) else model.info
    return [(m.get("path"), m.get("type")) for m in info.get("modules") or []]


def modules_of(model):
    """``{path: description}`` (type, attrs, parameter shapes) of a model's modules."""
    info = describe(model) if isinstance(model, torch.nn.Module) else model.info
    return {m.get("path"): m for m in info.get("modules") or []}


def is_model(value):
    return isinstance(value, torch.nn.Module) or getattr(value, "kind", None) == "module"


def state_of(model):
    state = model.state_dict()
    return {k: v.detach() for k, v in state.items()} if isinstance(state, dict) else state


def check_model_unchanged(before_structure, before_state, after, call_text, *, function, fix):
    """Fail ``function/in-place`` when the model a function got is not as it was sent."""
    if structure(after) != before_structure:
        fail(f"{call_text} changed the model's layers: {fix}", f"{function}/in-place")
    state = state_of(after)
    if not isinstance(state, dict) or set(state) != set(before_state):
        fail(f"{call_text} changed the model's parameters: {fix}", f"{function}/in-place")
    for key, value in before_state.items():
        now = state[key]
        if not (isinstance(now, torch.Tensor) and now.shape == value.shape
                and torch.equal(now.to(value.dtype), value)):
            fail(f"{call_text} changed the model's {key}: {fix}", f"{function}/in-place")


# ---------------------------------------------------------------------------
# Part 7: sensitivity_scan(model, data, sparsities)

ASSIGNMENT.clause("sensitivity_scan", 1, "returns a dict", diagnosis="sensitivity_scan/type")
ASSIGNMENT.clause("sensitivity_scan", 2, "one key per nn.Linear / nn.Conv2d layer, named as in "
                  "model.named_modules()", diagnosis="sensitivity_scan/keys")
ASSIGNMENT.clause("sensitivity_scan", 3, "each value is a list (or tuple) of one number per "
                  "sparsity", diagnosis="sensitivity_scan/form")
ASSIGNMENT.clause("sensitivity_scan", 4, "each number is the accuracy on data, within one example, "
                  "of the model with only that layer magnitude-pruned at that sparsity (exactly "
                  "round(s * n) of its weights), without retraining, in the order of sparsities",
                  diagnosis="sensitivity_scan/values",
                  note="compared with the grader's own scan, allowing one test example (another "
                       "batch size can flip a near tie)")
ASSIGNMENT.clause("sensitivity_scan", 5, "an accuracy, not an error rate",
                  diagnosis="sensitivity_scan/error-rate")
ASSIGNMENT.clause("sensitivity_scan", 6, "a fraction in [0, 1], not a percentage",
                  diagnosis="sensitivity_scan/percent")
ASSIGNMENT.clause("sensitivity_scan", 7, "every other layer keeps all its weights: each layer and "
                  "each sparsity starts from the model as given",
                  diagnosis="sensitivity_scan/cumulative")
ASSIGNMENT.clause("sensitivity_scan", 8, "only the scanned layer is pruned, not every layer at "
                  "once", diagnosis="sensitivity_scan/all-layers")
ASSIGNMENT.clause("sensitivity_scan", 9, "pruned by magnitude, not by signed value",
                  diagnosis="sensitivity_scan/signed")
ASSIGNMENT.clause("sensitivity_scan", 10, "biases are never pruned",
                  diagnosis="sensitivity_scan/bias")
ASSIGNMENT.clause("sensitivity_scan", 11, "the model comes back unchanged",
                  diagnosis="sensitivity_scan/in-place")
ASSIGNMENT.clause("sensitivity_scan", 12, "the data are not changed",
                  diagnosis="sensitivity_scan/data")


def _prunable_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear,
                                                                  torch.nn.Conv2d))]


def _correct(model, data):
    with torch.no_grad():
        return int((model.eval()(data.images).argmax(1) == data.labels).sum())


def scan(model, data, sparsities, variant="correct"):
    """The per-layer scan (``variant="correct"``) or a known mistake, as accuracies.

    Variants: ``"cumulative"`` (one copy for the whole scan: earlier layers stay pruned),
    ``"all layers"`` (every layer pruned at once), ``"signed"`` (the smallest signed
    weights), ``"bias"`` (the layer's bias pruned too, at the same sparsity). Pruning
    ``round(s * n)`` weights in the order of the original magnitudes is the magnitude mask;
    pruning a layer that already has zeros prunes those first, the same order again.

    Example:
        >>> model, data = trained_model("conv")
        >>> result = scan(model, data, [0.0, 1.0])
        >>> list(result), result["3"][1] < result["3"][0]
        (['0', '3'], True)
    """
    names = _prunable_names(model)
    modules = dict(model.named_modules())

    def order(tensor, signed=False):
        values = tensor.detach().flatten().double()
        return (values if signed else values.abs()).argsort(stable=True)

    orders = {n: order(modules[n].weight, variant == "signed") for n in names}
    bias_orders = {n: order(modules[n].bias) for n in names if modules[n].bias is not None}
    shared = copy.deepcopy(model)
    result = {}
    for name in names:
        result[name] = []
        for s in sparsities:
            twin = shared if variant == "cumulative" else copy.deepcopy(model)
            targets = names if variant == "all layers" else [name]
            twin_modules = dict(twin.named_modules())
            with torch.no_grad():
                for target in targets:
                    weight = twin_modules[target].weight
                    weight.view(-1)[orders[target][:round(s * weight.numel())]] = 0.0
                    if variant == "bias" and target in bias_orders:
                        bias = twin_modules[target].bias
                        bias.view(-1)[bias_orders[target][:round(s * bias.numel())]] = 0.0
            result[name].append(_correct(twin, data) / len(data))
    return result


SCAN_MISTAKES = (
    ("cumulative", "cumulative", "Layers scanned earlier were still pruned: restore each layer "
                                 "(or work on a fresh copy of the model) before pruning the next "
                                 "one"),
    ("all layers", "all-layers", "These are the accuracies with EVERY layer pruned at once: prune "
                                 "only the layer being scanned and leave the others as they are"),
    ("signed", "signed", "These fit pruning the smallest SIGNED weights: rank by abs(weight)"),
    ("bias", "bias", "These fit pruning each layer's bias too: biases are never pruned, only "
                     "the weights"),
)


def _scan_mistake(actual, expected, model, data, sparsities, tolerance):
    names = list(expected)

    def matches(candidate, scale=1.0):
        return all(math.isfinite(a) and abs(a - e) <= tolerance * scale
                   for n in names for a, e in zip(actual[n], candidate[n]))

    if matches({n: [1 - v for v in expected[n]] for n in names}):
        return "error-rate", "These are error rates (1 - accuracy): return the accuracy"
    if matches({n: [100 * v for v in expected[n]] for n in names}, scale=100.0):
        return "percent", "These are percentages: return accuracies as fractions in [0, 1]"
    for variant, code, hint in SCAN_MISTAKES:
        if matches(scan(model, data, sparsities, variant)):
            return code, hint
    return None


def _numbers(values, name, count, what):
    if not isinstance(values, (list, tuple)) or len(values) != count:
        got = (f"a {type_name(values)} of length {len(values)}"
               if isinstance(values, (list, tuple)) else f"a {type_name(values)}")
        fail(f"{what}[{name!r}] is {got}, expected a list with one accuracy per sparsity "
             f"({count})", "sensitivity_scan/form")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            fail(f"{what}[{name!r}][{i}] is a {type_name(v)}, expected a number (an accuracy)",
                 "sensitivity_scan/form")
        out.append(float(v))
    return out


def check_sensitivity_scan(sensitivity_scan, model, data, sparsities):
    """Check ``sensitivity_scan(model, data, sparsities)`` against the grader's scan.

    Example:
        >>> from pruning_grader.assignments.pruning.references import sensitivity_scan
        >>> model, data = trained_model("conv")
        >>> check_sensitivity_scan(sensitivity_scan, model, data, [0.0, 0.9])
    """
    sparsities = [float(s) for s in sparsities]
    names = _prunable_names(model)
    expected = scan(model, data, sparsities)
    before_structure, before_state = structure(model), {
        k: v.detach().clone() for k, v in model.state_dict().items()}
    images, labels = data.images.clone(), data.labels.clone()
    call_text = (f"sensitivity_scan(model with layers {names}, data of {len(data)} images, "
                 f"sparsities={sparsities})")
    result, after = echo_call(sensitivity_scan, model, data, list(sparsities))
    check_model_unchanged(before_structure, before_state, after[0], call_text,
                          function="sensitivity_scan",
                          fix="prune a copy (copy.deepcopy(model)), or put every weight back")
    back = after[1]
    back_images = back.get("images") if isinstance(back, dict) else getattr(back, "images", None)
    back_labels = back.get("labels") if isinstance(back, dict) else getattr(back, "labels", None)
    if not (isinstance(back_images, torch.Tensor) and back_images.shape == images.shape
            and torch.equal(back_images, images) and isinstance(back_labels, torch.Tensor)
            and torch.equal(back_labels, labels)):
        fail(f"{call_text} changed the data it was given: evaluate on the data as they are",
             "sensitivity_scan/data")
    what = "the scan"
    result = dict_result(result, f"the result of {call_text}", names,
                         function="sensitivity_scan", noun="layer")
    actual = {n: _numbers(result[n], n, len(sparsities), what) for n in names}
    tolerance = 1 / len(data) + 1e-9
    for n in names:
        for i, (a, e) in enumerate(zip(actual[n], expected[n])):
            if math.isfinite(a) and abs(a - e) <= tolerance:
                continue
            message = (f"{what}[{n!r}] at sparsity {fmt(sparsities[i])} is {fmt(a)}, expected "
                       f"{e:.4f}: the accuracy on data with only {n!r} pruned")
            mistake = _scan_mistake(actual, expected, model, data, sparsities, tolerance)
            if mistake is not None:
                fail(f"{message}. {mistake[1]}", f"sensitivity_scan/{mistake[0]}")
            fail(message, "sensitivity_scan/values")


@ASSIGNMENT.hidden("sensitivity_scan", points=3, time_limit=60)
def sensitivity_scan_hidden(student):
    sensitivity_scan = student["sensitivity_scan"]
    # LeNet-300-100: three layers of very different sizes, sparsity 0 and 1, near-total pruning
    model, data = trained_model("lenet")
    check_sensitivity_scan(sensitivity_scan, model, data, [0.0, 0.3, 0.8, 0.95, 1.0])
    # a conv net, sparsities out of order and a rounding case: each starts from the trained weights
    model, data = trained_model("conv", seed=1)
    check_sensitivity_scan(sensitivity_scan, model, data, [0.9, 0.0, 0.37, 0.5])


# ---------------------------------------------------------------------------
# Part 8: sparsity_plan()

ASSIGNMENT.clause("sparsity_plan", 1, "returns a dict", diagnosis="sparsity_plan/type")
ASSIGNMENT.clause("sparsity_plan", 2, "with exactly the keys 'fc1', 'fc2' and 'fc3'",
                  diagnosis="sparsity_plan/keys")
ASSIGNMENT.clause("sparsity_plan", 3, "each value is a number", diagnosis="sparsity_plan/number")
ASSIGNMENT.clause("sparsity_plan", 4, "each value is a sparsity in [0, 1] (0.9 prunes 90%)",
                  diagnosis="sparsity_plan/range")
ASSIGNMENT.clause("sparsity_plan", 5, "for 4 points the plan keeps at most a tenth of the 266,200 "
                  "weights (2 points: a fifth)", diagnosis="sparsity_plan/too-dense")
ASSIGNMENT.clause("sparsity_plan", 6, "after the fixed fine-tuning the pruned model gets at most "
                  "10 fewer of the 1,000 test images right than the dense one",
                  diagnosis="sparsity_plan/accuracy",
                  note="a trained model's accuracy: decided by the stated procedure run in the "
                       "grader's process (the same plan earns the same points on the same machine; "
                       "a plan on the edge may differ on another processor)")


def plan_values(plan, what):
    """A plan, checked: exactly the keys of :data:`PLAN_LAYERS`, each a number in [0, 1]."""
    plan = dict_result(plan, what, list(PLAN_LAYERS), function="sparsity_plan", noun="key")
    values = {}
    for name in PLAN_LAYERS:
        value = plan[name]
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{what}[{name!r}] is a {type_name(value)}, expected a number (a sparsity "
                 f"such as 0.9)", "sparsity_plan/number")
        if not (math.isfinite(value) and 0 <= value <= 1):
            hint = (f": write {fmt(value / 100)} for {fmt(value)}%" if 1 < value <= 100 else "")
            fail(f"{what}[{name!r}] is {fmt(value)}, expected a sparsity in [0, 1] (0.9 prunes "
                 f"90% of the layer's weights){hint}", "sparsity_plan/range")
        values[name] = float(value)
    return values


def score_plan(plan):
    """What the hidden test of ``sparsity_plan`` decides for ``plan`` (a dict of numbers).

    Returns None (4 points), or raises CheckFailed: with ``points = 2`` for a plan that
    reaches 5x, else with no points.
    """
    outcome = plan_outcome(plan)
    if outcome.dense_correct < PLAN_RULE["dense_floor"]:
        raise RuntimeError(f"the grader's dense model reached only {outcome.dense_correct} of "
                           f"{outcome.n_test} correct (about 940 expected)")
    if outcome.points == PLAN_RULE["full"][1]:
        return None
    if not outcome.within:
        fail(f"The plan loses more than 1 point of accuracy: {outcome.text}. A plan must stay "
             f"within 1 point (at most {PLAN_RULE['within_correct']} fewer correct of "
             f"{outcome.n_test}) after the fixed fine-tuning: prune the sensitive layers less",
             "sparsity_plan/accuracy")
    message = (f"The plan keeps too many weights for full credit: {outcome.text}. 4 points need "
               f"at least 10x fewer (at most {outcome.total // 10:,} kept), 2 points 5x "
               f"(at most {outcome.total // 5:,})")
    if all(v < 0.5 for v in plan.values()) and outcome.kept * 2 > outcome.total:
        message += (". These look like the fractions to KEEP: a sparsity is the fraction of "
                    "weights to prune")
    failure = CheckFailed(message, diagnosis="sparsity_plan/too-dense")
    if outcome.points:
        failure.points = outcome.points
    raise failure


@ASSIGNMENT.hidden("sparsity_plan", points=4, time_limit=120)
def sparsity_plan_hidden(student):
    # the plan is plain numbers: pruned, fine-tuned and counted here (see plan_outcome)
    plan = call(student["sparsity_plan"])
    return score_plan(plan_values(plan, "sparsity_plan()"))


# ---------------------------------------------------------------------------
# Part 9: remove_neurons(model, keep)

ASSIGNMENT.clause("remove_neurons", 1, "returns a tuple (small, macs_saved)",
                  diagnosis="remove_neurons/type")
ASSIGNMENT.clause("remove_neurons", 2, "small is an nn.Module", diagnosis="remove_neurons/module")
ASSIGNMENT.clause("remove_neurons", 3, "model is not changed (small is a new model)",
                  diagnosis="remove_neurons/in-place")
ASSIGNMENT.clause("remove_neurons", 4, "keep is not changed", diagnosis="remove_neurons/keep")
ASSIGNMENT.clause("remove_neurons", 5, "small has layers fc1, fc2 and fc3, each an nn.Linear (the "
                  "next cell reads them)", diagnosis="remove_neurons/names")
ASSIGNMENT.clause("remove_neurons", 6, "fc1 and fc2 hold only the kept neurons (out_features = "
                  "how many are kept; all of a layer not in keep), and small has no other "
                  "Linear or Conv2d layer", diagnosis="remove_neurons/sizes")
ASSIGNMENT.clause("remove_neurons", 7, "the next layer loses the removed neurons' inputs (fc2 and "
                  "fc3 in_features)", diagnosis="remove_neurons/inputs")
ASSIGNMENT.clause("remove_neurons", 8, "the weights and biases of the kept neurons and their "
                  "inputs, in their original order", diagnosis="remove_neurons/weights")
ASSIGNMENT.clause("remove_neurons", 9, "new layers: small shares no parameter with model",
                  diagnosis="remove_neurons/shared")
ASSIGNMENT.clause("remove_neurons", 10, "small(x) returns the masked network's outputs, for flat "
                  "inputs and images alike", diagnosis="remove_neurons/outputs")
ASSIGNMENT.clause("remove_neurons", 11, "macs_saved is an int", diagnosis="remove_neurons/int")
ASSIGNMENT.clause("remove_neurons", 12, "macs_saved = the MACs per example of model minus those "
                  "of small (in_features * out_features per layer)",
                  diagnosis="remove_neurons/macs")

_SHARED = """
import torch
theirs = {p.untyped_storage().data_ptr() for p in torch.nn.Module.parameters(model)}
result = [name for name, p in torch.nn.Module.named_parameters(small)
          if p.numel() and p.untyped_storage().data_ptr() in theirs]
"""


def lenet(in_features=784, widths=(300, 100), num_classes=10, seed=0):
    """A LeNet-300-100 (``pk.models.lenet_300_100``) with hidden widths ``widths``, in eval mode.

    Example:
        >>> lenet(6, (5, 4), 3).fc2
        Linear(in_features=5, out_features=4, bias=True)
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = pk.models.lenet_300_100(in_features, num_classes)
        if tuple(widths) != (300, 100):
            model.fc1 = torch.nn.Linear(in_features, widths[0])
            model.fc2 = torch.nn.Linear(widths[0], widths[1])
            model.fc3 = torch.nn.Linear(widths[1], num_classes)
    return model.eval()


def random_keep(n, removed, seed=0):
    """A bool tensor of ``n`` neurons with exactly ``removed`` of them False (removed).

    Example:
        >>> int(random_keep(5, 2, seed=1).sum())
        3
    """
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:removed]] = False
    return keep


def masked_output(model, keep, x):
    """The masked network's output in float64: each removed neuron's output is 0."""
    h = x.detach().flatten(1).double()
    for name in PLAN_LAYERS:
        layer = getattr(model, name)
        h = F.linear(h, layer.weight.detach().double(),
                     None if layer.bias is None else layer.bias.detach().double())
        if name != "fc3":
            h = h.clamp(min=0)
            if name in keep:
                h = h * keep[name].double()
    return h


def output_from_state(state, x):
    """What fc1 -> ReLU -> fc2 -> ReLU -> fc3 computes with the weights of ``state`` (float64)."""
    h = x.detach().flatten(1).double()
    for name in PLAN_LAYERS:
        bias = state.get(f"{name}.bias")
        h = F.linear(h, state[f"{name}.weight"].double(), None if bias is None else bias.double())
        if name != "fc3":
            h = h.clamp(min=0)
    return h


def _macs(sizes):
    return sum(n_in * n_out for n_in, n_out in sizes)


def check_remove_neurons(remove_neurons, model, keep, *, student=None, batch=4, seed=0,
                         images=False):
    """Check ``remove_neurons(model, keep)`` on one input (clauses 1-12).

    Args:
        remove_neurons: the student's function (the grader's handle on it).
        model: a LeNet built by :func:`lenet`.
        keep: ``{"fc1"/"fc2": bool tensor}``.
        student: the student's process (for the shared-parameter check); None checks locally.
        batch, seed: the test input; ``images``: N x 1 x side x side instead of flat vectors.

    Example:
        >>> from pruning_grader.assignments.pruning.references import remove_neurons
        >>> check_remove_neurons(remove_neurons, lenet(6, (5, 4), 3),
        ...                      {"fc1": torch.tensor([True, False, True, True, False])})
    """
    layers = [getattr(model, name) for name in PLAN_LAYERS]
    in_features = layers[0].in_features
    widths = [layer.out_features for layer in layers]
    rows = {name: (keep[name].nonzero().flatten() if name in keep else torch.arange(width))
            for name, width in zip(PLAN_LAYERS, widths)}
    kept = [len(rows[name]) for name in PLAN_LAYERS]
    ins = [in_features, kept[0], kept[1]]
    before_macs = _macs(zip([in_features] + widths[:2], widths))
    after_macs = _macs(zip(ins, kept))
    saved = before_macs - after_macs
    if images:
        side = math.isqrt(in_features)
        x = random_tensor(batch, 1, side, side, seed=seed)
    else:
        x = random_tensor(batch, in_features, seed=seed)
    expected = masked_output(model, keep, x)
    before_structure = structure(model)
    before_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    keep_sent = {name: value.clone() for name, value in keep.items()}
    kept_text = {name: f"{int(v.sum())} of {len(v)} kept" for name, v in keep.items()}
    call_text = (f"remove_neurons(LeNet {in_features}-{widths[0]}-{widths[1]}-{widths[2]}, "
                 f"keep={{{', '.join(f'{k!r}: {v}' for k, v in kept_text.items())}}})")
    result, (model_after, keep_after) = echo_call(remove_neurons, model, dict(keep_sent))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{call_text} returned {shown(result)}, expected a tuple (small, macs_saved)",
             "remove_neurons/type")
    small, macs_saved = result
    if not is_model(small):
        fail(f"the small model {call_text} returned is a {type_name(small)}, expected an "
             f"nn.Module", "remove_neurons/module")
    check_model_unchanged(before_structure, before_state, model_after, call_text,
                          function="remove_neurons",
                          fix="build the small model as a new one and leave model as it was")
    if not (isinstance(keep_after, dict) and set(keep_after) == set(keep_sent) and all(
            isinstance(keep_after[k], torch.Tensor) and torch.equal(keep_after[k], v)
            for k, v in keep_sent.items())):
        fail(f"{call_text} changed keep: leave the dict and its tensors as they were",
             "remove_neurons/keep")
    described = modules_of(small)
    for name in PLAN_LAYERS:
        entry = described.get(name)
        if entry is None or entry.get("type") != LINEAR:
            got = "no layer" if entry is None else f"a {entry.get('type')}"
            fail(f"the small model has {got} named {name}, expected an nn.Linear: small must "
                 f"have layers fc1, fc2 and fc3 (the next cell reads them), as the LeNet it "
                 f"comes from", "remove_neurons/names")
    others = [path for path, entry in described.items()
              if entry.get("type") in (LINEAR, CONV) and path not in PLAN_LAYERS]
    if others:
        fail(f"the small model holds other layers besides fc1, fc2 and fc3 ({others[:3]}): it "
             f"should be only the smaller fc1, fc2 and fc3", "remove_neurons/sizes")
    attrs = {name: described[name].get("attrs") or {} for name in PLAN_LAYERS}
    state = state_of(small)
    for name, want, width in zip(PLAN_LAYERS, kept, widths):
        got = attrs[name].get("out_features")
        if got != want:
            message = (f"small.{name} has {got} neurons (out_features), expected {want}: the "
                       f"{'kept' if name in keep else 'all'} neurons of {name}")
            weight = state.get(f"{name}.weight") if isinstance(state, dict) else None
            if name in keep and got == width and isinstance(weight, torch.Tensor) and \
                    weight.shape[0] == width and not bool(weight[~keep[name]].any()):
                fail(f"{message}. The removed neurons are zeros, not gone: give {name} only "
                     f"the kept rows, so the layer really gets smaller", "remove_neurons/zeros")
            if name in keep and got == width - want and want != width - want:
                fail(f"{message}. That is how many keep marks False: keep the neurons marked "
                     f"True", "remove_neurons/inverted")
            fail(message, "remove_neurons/sizes")
    for name, want in zip(PLAN_LAYERS, ins):
        got = attrs[name].get("in_features")
        if got != want:
            hint = ("" if name == "fc1" else
                    f": {PLAN_LAYERS[PLAN_LAYERS.index(name) - 1]} keeps {want} neurons, and "
                    f"{name} no longer receives the removed ones")
            fail(f"small.{name} takes {got} inputs (in_features), expected {want}{hint}",
                 "remove_neurons/inputs")
    if not isinstance(state, dict):
        fail(f"the small model's state dict is a {type_name(state)}, expected a dict",
             "remove_neurons/weights")
    previous = torch.arange(in_features)
    for name, layer in zip(PLAN_LAYERS, layers):
        want = {f"{name}.weight": layer.weight.detach()[rows[name]][:, previous]}
        if layer.bias is not None:
            want[f"{name}.bias"] = layer.bias.detach()[rows[name]]
        for key, value in want.items():
            got = state.get(key)
            if not (isinstance(got, torch.Tensor) and got.shape == value.shape
                    and torch.allclose(got.double(), value.double(), rtol=1e-6, atol=0)):
                detail = (f"has shape {tuple(got.shape)}, expected {tuple(value.shape)}"
                          if isinstance(got, torch.Tensor) and got.shape != value.shape else
                          "holds other values" if isinstance(got, torch.Tensor) else "is missing")
                fail(f"small's {key} {detail}: keep the rows of the kept neurons and the "
                     f"columns of the inputs still there, in their original order",
                     "remove_neurons/weights")
        previous = rows[name]
    if student is not None:
        shared = student.run(_SHARED, model=model_after, small=small)
    else:
        theirs = {p.untyped_storage().data_ptr() for p in model_after.parameters()}
        shared = [n for n, p in small.named_parameters() if p.untyped_storage().data_ptr()
                  in theirs]
    if shared:
        fail(f"the small model shares {shared[0]} with model: build new layers (copy the "
             f"kept weights), so that training one does not change the other",
             "remove_neurons/shared")
    recomputed = output_from_state(state, x)
    if not torch.allclose(recomputed, expected, rtol=1e-4, atol=1e-5):
        fail("the small model's weights do not compute the masked network's outputs",
             "remove_neurons/weights")
    what = f"small(x) for x of shape {tuple(x.shape)}"
    try:
        with torch.no_grad():
            out = small(x)
    except Exception as exc:  # noqa: BLE001 - what the student's model raised
        name = getattr(exc, "type_name", type(exc).__name__)
        fail(f"{what} raised {name}: {str(exc).split(': ', 1)[-1][:200]}. small must accept the "
             f"inputs model accepts (flat vectors and images)", "remove_neurons/outputs")
    if not (isinstance(out, torch.Tensor) and out.is_floating_point()
            and tuple(out.shape) == tuple(expected.shape)):
        fail(f"{what} returned {shown(out)}, expected a float tensor of shape "
             f"{tuple(expected.shape)}", "remove_neurons/outputs")
    if not torch.allclose(out.detach().double(), recomputed, rtol=1e-4, atol=1e-5):
        index = tuple((~torch.isclose(out.detach().double(), recomputed, rtol=1e-4,
                                      atol=1e-5)).nonzero()[0].tolist())
        fail(f"{what} differs from the masked network's outputs: element {index} is "
             f"{fmt(out[index].item())}, expected {fmt(recomputed[index].item())}",
             "remove_neurons/outputs")
    if isinstance(macs_saved, torch.Tensor) and macs_saved.numel() == 1 and \
            not macs_saved.is_floating_point():
        macs_saved = macs_saved.item()
    if isinstance(macs_saved, bool) or not isinstance(macs_saved, int):
        got = (f"the float {macs_saved!r}" if isinstance(macs_saved, float) else
               shown(macs_saved))
        fail(f"macs_saved (the second item {call_text} returned) is {got}, expected an int "
             f"(a count of multiply-accumulates)", "remove_neurons/int")
    if macs_saved != saved:
        message = (f"macs_saved is {macs_saved:,}, expected {saved:,}: {before_macs:,} MACs per "
                   f"example before, {after_macs:,} after")
        biases_too = saved + sum(widths[:2]) - sum(kept[:2])
        rows_only = sum(n_in * (width - k) for n_in, width, k in
                        zip([in_features] + widths[:2], widths, kept))
        if macs_saved == after_macs:
            fail(f"{message}. That is the small model's count: return how many MACs were SAVED",
                 "remove_neurons/small-count")
        if macs_saved == biases_too:
            fail(f"{message}. That counts the biases too: a MAC is one multiply-accumulate of a "
                 f"weight, in_features * out_features per Linear layer", "remove_neurons/bias-macs")
        if macs_saved == rows_only:
            fail(f"{message}. The next layer loses the removed neurons' inputs too: its "
                 f"in_features shrinks", "remove_neurons/rows-only")
        if macs_saved == saved * batch:
            fail(f"{message}. Count per example, not per batch", "remove_neurons/per-batch")
        fail(message, "remove_neurons/macs")


@ASSIGNMENT.hidden("remove_neurons", points=4)
def remove_neurons_hidden(student):
    remove_neurons = student["remove_neurons"]

    def check(model, keep, **options):
        check_remove_neurons(remove_neurons, model, keep, student=student, **options)

    # 30% of both hidden layers of a LeNet-300-100, as in the measurement of the notebook
    check(lenet(seed=1), {"fc1": random_keep(300, 90, seed=2), "fc2": random_keep(100, 30, seed=3)})
    # one layer named in keep: the other keeps all its neurons; images as input
    check(lenet(64, seed=4), {"fc2": random_keep(100, 40, seed=5)})
    check(lenet(64, seed=6), {"fc1": random_keep(300, 150, seed=7)}, images=True)
    # other widths (nothing hard-coded), a single neuron kept, a batch of one
    check(lenet(10, (7, 5), 4, seed=8), {"fc1": random_keep(7, 3, seed=9),
                                         "fc2": random_keep(5, 4, seed=10)})
    check(lenet(64, (12, 6), 10, seed=11), {"fc1": random_keep(12, 11, seed=12)}, images=True,
          batch=1)
    # nothing removed: the same outputs, 0 MACs saved
    check(lenet(10, (7, 5), 4, seed=13), {"fc1": torch.ones(7, dtype=torch.bool),
                                          "fc2": torch.ones(5, dtype=torch.bool)})


__all__ = ["lab_data", "train_dense", "plan_outcome", "plan_kept", "plan_sizes", "score_plan",
           "plan_values", "trained_model", "scan", "check_sensitivity_scan", "lenet",
           "random_keep", "check_remove_neurons", "masked_output", "PLAN_RULE", "FINE_TUNE",
           "DENSE_RECIPE", "VALIDATION_SIZE"]
