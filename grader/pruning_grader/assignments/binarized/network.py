"""Part 3 of ``binarized``: the binarized network and its training loop.

Models stay in the student's process. ``BinarizedMLP`` is built there; one
forward pass in training mode runs with hooks on every module
(:func:`.student_side.trace_forward`), and each recorded call is checked here
against the model's state dict: every layer's output is recomputed from its
parameters and the input it received, and each layer's input from the previous
layer's output, so a trace that does not describe a forward pass of the
contract's architecture fails. The accuracy clauses train in the student's
process and decide the accuracy here, from the state dict, with this module's
own forward pass of the contract's architecture (after it agrees with the
student's on a sample).
"""

import inspect
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812

import pruning_kit as pk
from pruning_kit.course.testing import RaisedRemotely, show

from ...judging import fail, fmt, random_tensor
from . import ASSIGNMENT, references
from .binary_layers import signs
from .common import attempt, number_value, raised_code, raised_message
from .student_side import seeded_training, source_of, trace_forward, train_course_loop, \
    watched_training

LAB_DATASET = "mnist5k"
TRAINING = {"hidden": 256, "epochs": 10, "seed": 0, "threshold": 0.90}
"""How the hidden tests of part 3 train: ``BinarizedMLP(784, 256, 10)``, 10 epochs, seed 0,
one thread, and the test accuracy it must reach (the notebook's parameters say the same)."""

_TRACE = source_of(trace_forward)
_COURSE_LOOP = source_of(train_course_loop)
_WATCHED = source_of(watched_training)
_SEEDED = source_of(seeded_training)
_BUILD = ("import torch\ntorch.manual_seed(seed)\n"
          "result = student['BinarizedMLP'](*args)\n")
_MODULE = "torch.nn.modules.module.Module"
_ACCURACY_NOTE = ("a trained model's accuracy: trained in the student's process ({}), decided "
                  "in the grader's process from the state dict with the grader's own forward "
                  "pass of the contract's architecture, after it agrees with the student's "
                  "model on 100 test images")


@lru_cache(maxsize=1)
def lab_data():
    """``(train, test)`` of part 3, loaded in the grader's process (never the student's copy)."""
    return pk.data.load(LAB_DATASET)


def subset(data, n):
    return pk.data.TensorData(data.images[:n].clone(), data.labels[:n].clone(), name=LAB_DATASET)


def short_type(type_path):
    return str(type_path).rpartition(".")[2]


# ---------------------------------------------------------------------------
# 3.1 BinarizedMLP(in_features=784, hidden=256, num_classes=10, binary_activations=True)

M = "BinarizedMLP"
ASSIGNMENT.clause(M, 1, "a class derived from nn.Module; building it gives an nn.Module",
                  diagnosis=f"{M}/class")
ASSIGNMENT.clause(M, 2, "the signature BinarizedMLP(in_features=784, hidden=256, num_classes=10, "
                  "binary_activations=True), names and defaults (the notebook builds "
                  "BinarizedMLP(in_features, HIDDEN) and passes binary_activations=False)",
                  diagnosis=f"{M}/signature")
ASSIGNMENT.clause(M, 3, "the forward pass runs three BinaryLinear layers, in -> hidden -> "
                  "hidden -> num_classes", diagnosis=f"{M}/layers")
ASSIGNMENT.clause(M, 4, "every parameter lives in a BinaryLinear or a BatchNorm1d (no float "
                  "nn.Linear)", diagnosis=f"{M}/float-layer")
ASSIGNMENT.clause(M, 5, "each BinaryLinear is followed by its own BatchNorm1d",
                  diagnosis=f"{M}/batch-norm")
ASSIGNMENT.clause(M, 6, "the input is flattened (images N x 1 x 28 x 28 or rows N x in) and the "
                  "first layer sees it unchanged: the pixels are not binarized",
                  diagnosis=f"{M}/real-input")
ASSIGNMENT.clause(M, 7, "each layer computes what its parameters say, and each BinaryLinear's "
                  "output goes unchanged into its batch norm", diagnosis=f"{M}/forward",
                  note="recomputed in the grader's process from the state dict and the inputs "
                       "the trace recorded")
ASSIGNMENT.clause(M, 8, "binary_activations=True: the inputs of the second and third layers are "
                  "the signs (+-1) of the first two batch norms' outputs",
                  diagnosis=f"{M}/binary-activations")
ASSIGNMENT.clause(M, 9, "those signs come from SignSTE.apply: the gradient reaches each batch "
                  "norm's output where abs(x) <= 1", diagnosis=f"{M}/ste",
                  note="decided from the gradients recorded at the batch norm's output and the "
                       "next layer's input, not from the autograd graph's node names")
ASSIGNMENT.clause(M, 10, "binary_activations=False: those inputs are hardtanh of the batch norms' "
                  "outputs (real values in [-1, 1])", diagnosis=f"{M}/flag")
ASSIGNMENT.clause(M, 11, "returns the last batch norm's output, the logits N x num_classes "
                  "(no sign after it)", diagnosis=f"{M}/logits")
ASSIGNMENT.clause(M, 12, "BinarizedMLP(784, 256, 10) trained with the course's loop (10 epochs, "
                  "Adam 1e-2, cosine, clipping) reaches 90% test accuracy",
                  diagnosis=f"{M}/accuracy",
                  note=_ACCURACY_NOTE.format("the course's train_binarized"))


def check_signature(student):
    """The class, its parameter names in order, and the sizes its defaults build."""
    cls = student[M]
    if _MODULE not in cls.mro:
        fail(f"BinarizedMLP is a {cls.type_name}, not a class derived from nn.Module: write "
             f"class BinarizedMLP(nn.Module) with __init__ and forward", f"{M}/class")
    names = ["in_features", "hidden", "num_classes", "binary_activations"]
    if cls.parameter_names[:4] != names:
        fail(f"BinarizedMLP takes {cls.parameter_names}, expected {names} in this order (the "
             f"notebook passes binary_activations by name)", f"{M}/signature")
    model = attempt(lambda: cls(), M, "BinarizedMLP()")
    if getattr(model, "kind", None) != "module":
        fail(f"BinarizedMLP() built a {getattr(model, 'type_name', '?')}, not an nn.Module: "
             f"derive from nn.Module and call super().__init__()", f"{M}/class")
    shapes = sorted(tuple(info["shape"]) for m in model.modules
                    for key, info in (m.get("params") or {}).items()
                    if key == "weight" and info and len(info["shape"]) == 2)
    expected = sorted([(256, 784), (256, 256), (10, 256)])
    if shapes != expected:
        fail(f"BinarizedMLP() builds layers with weights of shapes {shapes}, expected "
             f"{expected}: the defaults are in_features=784, hidden=256, num_classes=10",
             f"{M}/signature")


def _position(items, item):
    """Where ``item`` itself is in ``items`` (never ``==``: the entries hold tensors)."""
    return next(i for i, other in enumerate(items) if other is item)


def _layout(calls, state, sizes, what):
    """The BinaryLinear and BatchNorm1d calls of a trace, checked: ``[(linear, norm)]``."""
    kinds = [c for c in calls if c["type"] in ("BinaryLinear", "BatchNorm1d")]
    linear = [c for c in kinds if c["type"] == "BinaryLinear"]
    if not linear:
        fail(f"the forward pass of {what} ran no BinaryLinear layer: build the three layers "
             f"with BinaryLinear(...) in __init__ and call them in forward", f"{M}/layers")
    if len(linear) != 3:
        fail(f"the forward pass of {what} ran {len(linear)} BinaryLinear layers, expected 3 "
             f"(in -> hidden -> hidden -> classes)", f"{M}/layers")
    for k, (call, (n_in, n_out)) in enumerate(zip(linear, sizes), 1):
        weight = state.get(f"{call['path']}.weight")
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
        if shape != (n_out, n_in):
            fail(f"BinaryLinear {k} of {what} has a weight of shape {shape}, expected "
                 f"{(n_out, n_in)} (in -> hidden -> hidden -> classes)", f"{M}/layers")
    pairs = []
    for k, call in enumerate(linear, 1):
        position = _position(kinds, call)
        after = kinds[position + 1] if position + 1 < len(kinds) else None
        if after is None or after["type"] != "BatchNorm1d":
            fail(f"BinaryLinear {k} of {what} is not followed by a BatchNorm1d: each layer's "
                 f"output goes through its own nn.BatchNorm1d", f"{M}/batch-norm")
        pairs.append((call, after))
    norms = [n["path"] for _, n in pairs]
    if len(set(norms)) != 3 or len(kinds) != 6:
        fail(f"the forward pass of {what} ran {len(kinds) - 3} BatchNorm1d calls of "
             f"{len(set(norms))} modules: one BatchNorm1d of its own after each BinaryLinear",
             f"{M}/batch-norm")
    return pairs


def linear_out(x, state, path):
    weight = state[f"{path}.weight"].float()
    alpha = weight.abs().mean(dim=1, keepdim=True)
    return F.linear(x, alpha * signs(weight), state.get(f"{path}.bias"))


def norm_out(x, state, path, eps, *, train):
    mean, var = state.get(f"{path}.running_mean"), state.get(f"{path}.running_var")
    batch_stats = train or mean is None
    return F.batch_norm(x, None if batch_stats else mean, None if batch_stats else var,
                        state.get(f"{path}.weight"), state.get(f"{path}.bias"), batch_stats,
                        0.0, eps)


def contract_forward(state, layout, x, *, binary=True, train=False):
    """The contract's forward pass from a state dict: ``layout`` is ``[(linear path, norm path,
    eps)]`` in the order the layers run."""
    h = x.flatten(1).float()
    for k, (linear, norm, eps) in enumerate(layout):
        h = norm_out(linear_out(h, state, linear), state, norm, eps, train=train)
        if k < len(layout) - 1:
            h = signs(h) if binary else F.hardtanh(h)
    return h


def _matches(recorded, recompute, tolerance=1e-4):
    """True when a recorded tensor equals what ``recompute()`` gives here (shapes included)."""
    if not isinstance(recorded, torch.Tensor):
        return False
    try:
        expected = recompute()
    except (RuntimeError, TypeError, KeyError, AttributeError):  # shapes that do not fit
        return False
    return (isinstance(expected, torch.Tensor) and recorded.shape == expected.shape
            and bool(torch.allclose(recorded.double(), expected.double(), rtol=tolerance,
                                    atol=tolerance)))


def _eps(model, path):
    module = model.module(path) or {}
    eps = (module.get("attrs") or {}).get("eps", 1e-5)
    return eps if isinstance(eps, float) else 1e-5


def _trace(student, model, x, upstream, what, *, images):
    try:
        return student.run(_TRACE, model=model, x=x, upstream=upstream, mode="train")
    except RaisedRemotely as exc:
        if images:
            try:
                student.run(_TRACE, model=model, x=x.flatten(1), upstream=upstream,
                            mode="train")
            except RaisedRemotely:
                pass
            else:
                fail(f"the forward pass of {what} on images of shape {tuple(x.shape)} raised "
                     f"{exc.type_name}, on rows of shape {tuple(x.flatten(1).shape)} it runs: "
                     f"flatten the input to N x in_features (x.flatten(1))", f"{M}/real-input")
        fail(raised_message(f"the forward pass of {what}", exc), raised_code(M, exc))


def check_model(student, model, in_features, hidden, classes, *, binary=True, images=False,
                n=8, seed=0):
    """Structure and one traced forward pass of a built model; the layout for own forwards."""
    what = f"BinarizedMLP({in_features}, {hidden}, {classes}, binary_activations={binary})"
    if getattr(model, "kind", None) != "module":
        fail(f"{what} built a {getattr(model, 'type_name', '?')}, not an nn.Module: derive "
             f"from nn.Module and call super().__init__()", f"{M}/class")
    for module in model.modules:
        own = [k for k, info in (module.get("params") or {}).items() if info]
        kind = short_type(module.get("type"))
        if own and kind not in ("BinaryLinear", "BatchNorm1d"):
            where = f"model.{module['path']}" if module.get("path") else "the model itself"
            detail = ("an nn.Linear with float weights: binary weights come from BinaryLinear "
                      "layers" if kind == "Linear" else
                      f"a {kind} holding parameters {own}: every parameter lives in a "
                      f"BinaryLinear or a BatchNorm1d")
            fail(f"{where} of {what} is {detail}", f"{M}/float-layer")
    side = int(round(in_features ** 0.5))
    shape = (n, 1, side, side) if images and side * side == in_features else (n, in_features)
    x = random_tensor(*shape, seed=seed).abs() if images else random_tensor(*shape, seed=seed)
    upstream = random_tensor(n, classes, seed=seed + 100)
    trace = _trace(student, model, x, upstream, what, images=images)
    state = attempt(model.state_dict, M, f"the state of {what}")
    sizes = [(in_features, hidden), (hidden, hidden), (hidden, classes)]
    pairs = _layout(trace["calls"], state, sizes, what)
    first = pairs[0][0]["input"]
    if not (isinstance(first, torch.Tensor) and tuple(first.shape) == (n, in_features)
            and torch.equal(first, x.flatten(1))):
        fail(f"the first BinaryLinear of {what} does not see the real input: flatten x to "
             f"(N, in_features) and feed it as it is (only the hidden activations are "
             f"binarized)", f"{M}/real-input")
    calls = trace["calls"]
    layout = []
    for k, (linear, norm) in enumerate(pairs, 1):
        eps = _eps(model, norm["path"])
        layout.append((linear["path"], norm["path"], eps))
        if not _matches(linear["output"], lambda: linear_out(linear["input"].float(), state,
                                                             linear["path"])):
            fail(f"BinaryLinear {k} of {what} does not compute F.linear(input, alpha * sign(W), "
                 f"bias) from its own weights", f"{M}/forward")
        if not _matches(norm["input"], lambda: linear["output"], tolerance=1e-6):
            fail(f"the output of BinaryLinear {k} of {what} is changed before its BatchNorm1d: "
                 f"feed it to the batch norm as it is", f"{M}/forward")
        if not _matches(norm["output"], lambda: norm_out(norm["input"].float(), state,
                                                         norm["path"], eps, train=True)):
            fail(f"BatchNorm1d {k} of {what} does not compute a batch norm of its input with "
                 f"its own parameters", f"{M}/forward")
    for k in (0, 1):
        before, nxt = pairs[k][1], pairs[k + 1][0]
        value, seen = before["output"], nxt["input"]
        where = f"the input of BinaryLinear {k + 2} of {what}"
        if not (isinstance(seen, torch.Tensor) and isinstance(value, torch.Tensor)
                and seen.shape == value.shape):
            fail(f"{where} is not an activation of BatchNorm1d {k + 1}'s output (shapes "
                 f"{show(seen)} and {show(value)})",
                 f"{M}/binary-activations" if binary else f"{M}/flag")
        if binary:
            odd = seen[(seen != 1) & (seen != -1)]
            if len(odd):
                fail(f"{where} holds {fmt(odd[0].item())}, not only +-1: binarize the hidden "
                     f"activations with SignSTE.apply after each batch norm",
                     f"{M}/binary-activations")
            decided = value.abs() > 1e-6
            if not torch.equal(seen[decided], signs(value)[decided]):
                fail(f"{where} is not the sign of BatchNorm1d {k + 1}'s output: binarize each "
                     f"batch norm's output with SignSTE.apply", f"{M}/binary-activations")
            grads = trace["grads"]
            g_value = grads[_position(calls, before)][1]
            g_seen = grads[_position(calls, nxt)][0]
            expected = None if g_seen is None else g_seen * (value.abs() <= 1)
            if g_value is None or expected is None or not torch.allclose(
                    g_value, expected, rtol=1e-4, atol=1e-6):
                fail(f"{where} is +-1 but no straight-through gradient reaches BatchNorm1d "
                     f"{k + 1}'s output: binarize the activations with SignSTE.apply (the "
                     f"straight-through estimator is what lets gradients reach the earlier "
                     f"layers)", f"{M}/ste")
        elif not torch.allclose(seen, value.clamp(-1, 1), rtol=1e-5, atol=1e-6):
            fail(f"{where} is not hardtanh of BatchNorm1d {k + 1}'s output: with "
                 f"binary_activations=False the activation is F.hardtanh (real values clipped "
                 f"to [-1, 1])", f"{M}/flag")
    out = trace["output"]
    last = pairs[2][1]["output"]
    if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (n, classes)
            and torch.equal(out, last)):
        shown = f"{show(out)}" if not isinstance(out, torch.Tensor) else (
            "+-1 values" if bool(((out == 1) | (out == -1)).all()) else
            f"a tensor of shape {tuple(out.shape)}")
        fail(f"{what} returns {shown}, not the last batch norm's output: return the logits, "
             f"N x {classes}, with no activation after the last BatchNorm1d", f"{M}/logits")
    return layout


def check_network(student, in_features, hidden, classes, *, binary=True, images=False, seed=0):
    """Build ``BinarizedMLP(in, hidden, classes, binary_activations=binary)`` and check it."""
    what = f"BinarizedMLP({in_features}, {hidden}, {classes}, binary_activations={binary})"
    cls = student[M]
    model = attempt(lambda: cls(in_features, hidden, classes, binary_activations=binary), M, what)
    return check_model(student, model, in_features, hidden, classes, binary=binary,
                       images=images, seed=seed)


def agrees(ours, theirs, share=0.02):
    """True when at most ``share`` of the rows differ by more than 1e-3 (a sign flip on a value
    within rounding of 0 may move a row)."""
    if not (isinstance(theirs, torch.Tensor) and theirs.shape == ours.shape):
        return False
    far = ((ours.double() - theirs.double()).abs() > 1e-3).any(dim=1)
    return int(far.sum()) <= share * len(ours)


def accuracy_of(state, layout, test, *, binary=True):
    with torch.no_grad():
        logits = contract_forward(state, layout, test.images, binary=binary)
    return float((logits.argmax(dim=1) == test.labels).float().mean())


def check_trains(student, *, hidden=None, epochs=None, seed=None, threshold=None):
    """Train ``BinarizedMLP(784, hidden, 10)`` with the course's loop in the student's process;
    the accuracy of its state dict, computed here, must reach ``threshold``."""
    hidden = TRAINING["hidden"] if hidden is None else hidden
    epochs = TRAINING["epochs"] if epochs is None else epochs
    seed = TRAINING["seed"] if seed is None else seed
    threshold = TRAINING["threshold"] if threshold is None else threshold
    train, test = lab_data()
    what = f"BinarizedMLP(784, {hidden}, 10) trained {epochs} epochs by the course's loop"
    model = attempt(lambda: student.run(_BUILD, args=[784, hidden, 10], seed=seed), M,
                    f"BinarizedMLP(784, {hidden}, 10)")
    layout = check_model(student, model, 784, hidden, 10, images=True, seed=seed)
    loop = inspect.getsource(references.train_binarized)
    attempt(lambda: student.run(_COURSE_LOOP, model=model, train=train, epochs=epochs,
                                seed=seed, loop_source=loop), M, f"training {what}")
    state = attempt(model.state_dict, M, f"the state of {what}")
    sample = test.images[:100]
    theirs = attempt(lambda: model(sample), M, f"the forward pass of {what} in eval mode")
    with torch.no_grad():
        ours = contract_forward(state, layout, sample)
    if not agrees(ours, theirs):
        fail(f"in eval mode, {what} does not compute what its parameters say (its outputs on "
             f"test images differ from a batch-normed binary network with its weights)",
             f"{M}/forward")
    accuracy = accuracy_of(state, layout, test)
    if accuracy < threshold:
        fail(f"{what} reaches {accuracy:.1%} test accuracy, below {threshold:.0%}: check that "
             f"each BinaryLinear is followed by its BatchNorm1d, that the activations go "
             f"through SignSTE, and that the batch norms keep their running statistics",
             f"{M}/accuracy")


@ASSIGNMENT.hidden(M, points=4, time_limit=120)
def binarized_mlp_hidden(student):
    check_signature(student)
    # images, other sizes, both kinds of activation
    check_network(student, 784, 32, 10, images=True, seed=1)
    check_network(student, 36, 24, 3, binary=False, seed=2)
    check_network(student, 50, 40, 7, seed=3)
    # it learns: BinarizedMLP(784, 256, 10), 10 epochs of the course's loop, >= 90% test accuracy
    check_trains(student)


# ---------------------------------------------------------------------------
# 3.2 train_binarized(model, train, epochs, seed)

T = "train_binarized"
_STEP_NOTE = ("rests on instrumentation: an optimizer step pre-hook in the student's process "
              "reads the largest latent weight before every step; the final weights are read "
              "from the state dict")
ASSIGNMENT.clause(T, 1, "returns a list of epochs numbers (finite, >= 0)",
                  diagnosis=f"{T}/result")
ASSIGNMENT.clause(T, 2, "trains the model passed in, in place", diagnosis=f"{T}/in-place")
ASSIGNMENT.clause(T, 3, "trains with a torch.optim optimizer", diagnosis=f"{T}/optimizer",
                  note="rests on instrumentation: an optimizer step pre-hook counts the steps")
ASSIGNMENT.clause(T, 4, "after every optimizer step, every BinaryLinear weight is in [-1, 1] "
                  "(clipped after each step, the last one too)", diagnosis=f"{T}/clip",
                  note=_STEP_NOTE)
ASSIGNMENT.clause(T, 5, "only the BinaryLinear weights are clipped (batch-norm scales may "
                  "exceed 1)", diagnosis=f"{T}/clip-only-binary")
ASSIGNMENT.clause(T, 6, "leaves the model in eval mode (the same images get the same logits "
                  "whatever batch they are scored in)", diagnosis=f"{T}/eval-mode",
                  note="decided from the model's description and from the logits of the same "
                       "images scored in two batches")
ASSIGNMENT.clause(T, 7, "each value is the epoch's mean training cross-entropy, over its "
                  "batches", diagnosis=f"{T}/epoch-mean",
                  note="rests on instrumentation: a forward hook records each training "
                       "batch's logits and a fingerprint of its images (which give the labels "
                       "here); the grader recomputes each step's cross-entropy and each "
                       "epoch's mean (weighted by batch size, or the plain mean of the batch "
                       "means)")
ASSIGNMENT.clause(T, 8, "seed decides the order of the batches (shuffled: another seed, "
                  "another order)", diagnosis=f"{T}/seed")
ASSIGNMENT.clause(T, 9, "train_binarized(BinarizedMLP(784, 256, 10), train, 10, 0) on the "
                  "4,000 training images reaches 90% test accuracy", diagnosis=f"{T}/accuracy",
                  note=_ACCURACY_NOTE.format("the student's loop on the course's BinarizedMLP"))


def _fingerprint():
    return torch.randn(784, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)


def _labels_of(fingerprints, train, vector, what):
    """The training labels of the rows a forward pass saw, found by their fingerprints."""
    known = train.images.flatten(1).double() @ vector
    order = known.argsort()
    ranked = known[order]
    labels = []
    for rows in fingerprints:
        where = torch.searchsorted(ranked, rows.double()).clamp(max=len(ranked) - 1)
        below = (where - 1).clamp(min=0)
        nearer = torch.where((ranked[below] - rows).abs() < (ranked[where] - rows).abs(), below,
                             where)
        if bool(((ranked[nearer] - rows).abs() > 1e-6 * (1 + rows.abs())).any()):
            fail(f"{what} trained on inputs that are not the training images (as given): "
                 f"train on train.images and train.labels", f"{T}/epoch-mean")
        labels.append(train.labels[order[nearer]])
    return labels


def _check_losses(losses, epochs, what):
    if type(losses) not in (list, tuple) or len(losses) != epochs:
        shown = show(losses) if type(losses) not in (list, tuple) else \
            f"a {type(losses).__name__} of {len(losses)} values"
        fail(f"{what} returned {shown}, expected a list of {epochs} mean losses, one per epoch",
             f"{T}/result")
    values = [number_value(v, f"loss {k} returned by {what}", code=f"{T}/result")
              for k, v in enumerate(losses)]
    for k, value in enumerate(values):
        if value < 0:
            fail(f"loss {k} returned by {what} is {fmt(value)}: the mean cross-entropy of an "
                 f"epoch is finite and >= 0", f"{T}/result")
    return values


def _binary_weights(state):
    return {k: v for k, v in state.items() if k.startswith("fc") and k.endswith(".weight")}


def check_watched_run(student, *, hidden=64, epochs=2, train_size=600, seed=1):
    """One watched training of the course's small network (every clause but the accuracy's);
    returns the order the first epoch's batches came in (their images' fingerprints)."""
    train, test = lab_data()
    data = subset(train, train_size)
    vector = _fingerprint()
    what = (f"train_binarized(BinarizedMLP(784, {hidden}, 10), train of {train_size} images, "
            f"epochs={epochs}, seed={seed})")
    out = attempt(lambda: student.run(_WATCHED, train=data, epochs=epochs, seed=seed,
                                      hidden=hidden, probe=test.images[:64], fingerprint=vector),
                  T, what)
    losses = _check_losses(out["losses"], epochs, what)
    initial, final = _binary_weights(out["initial"]), _binary_weights(out["final"])
    if all(torch.equal(initial[k], final[k]) for k in initial):
        fail(f"after {what} the model's weights are unchanged: train the model passed in, in "
             f"place (not a copy)", f"{T}/in-place")
    steps = out["steps"]
    if not steps:
        fail(f"{what} made no optimizer step: train with a torch.optim optimizer (Adam, for "
             f"example), one step per batch", f"{T}/optimizer")
    for k, (_, largest) in enumerate(steps[1:], 2):
        if largest > 1 + 1e-6:
            fail(f"during {what}, a latent weight is {fmt(largest)} before optimizer step {k}: "
                 f"clip every BinaryLinear weight to [-1, 1] after each optimizer step, so that "
                 f"it stays where the straight-through estimator passes gradients",
                 f"{T}/clip")
    largest = max(float(w.abs().max()) for w in final.values())
    if largest > 1 + 1e-6:
        fail(f"after {what} a latent weight is {fmt(largest)}: clip the BinaryLinear weights "
             f"to [-1, 1] after every optimizer step, the last one too", f"{T}/clip")
    if float(out["final"]["bn1.weight"][0]) <= 1.0:
        fail(f"{what} clipped a BatchNorm1d weight too (2.5 became "
             f"{fmt(float(out['final']['bn1.weight'][0]))}): clip only the BinaryLinear "
             f"weights, batch-norm scales may exceed 1", f"{T}/clip-only-binary")
    model = out["model"]
    training = [m["path"] or "the model" for m in model.refresh().modules if m.get("training")]
    whole, part = out["probe"]
    if training or not agrees(whole, part, share=2 / 16):
        which = ", ".join(training[:3]) if training else "its outputs depend on the batch"
        fail(f"after {what} the model is in training mode ({which}): the same images get "
             f"different logits in different batches; call model.eval() before returning",
             f"{T}/eval-mode")
    if len(steps) % epochs:
        fail(f"{what} made {len(steps)} optimizer steps in {epochs} epochs: one pass over the "
             f"data per epoch, the same batches' count each time", f"{T}/epoch-mean")
    labels = _labels_of(out["fingerprints"], data, vector, what)
    per_step = []
    for k, (seen, _) in enumerate(steps, 1):
        if seen == 0:
            fail(f"{what} made optimizer step {k} before any forward pass in training mode",
                 f"{T}/epoch-mean")
        logits = out["logits"][seen - 1]
        loss = F.cross_entropy(logits.double(), labels[seen - 1])
        per_step.append((float(loss), len(logits)))
    per_epoch = len(steps) // epochs
    for e, value in enumerate(losses):
        chunk = per_step[e * per_epoch:(e + 1) * per_epoch]
        weighted = sum(loss * n for loss, n in chunk) / sum(n for _, n in chunk)
        plain = sum(loss for loss, _ in chunk) / len(chunk)
        if min(abs(value - weighted), abs(value - plain)) > 1e-4 + 1e-3 * abs(weighted):
            fail(f"{what} returned {fmt(value)} for epoch {e + 1}, but the mean cross-entropy "
                 f"of that epoch's {len(chunk)} batches is {fmt(weighted)} (its last batch's "
                 f"is {fmt(chunk[-1][0])}): return the mean training loss of each epoch",
                 f"{T}/epoch-mean")
    return [f for f in out["fingerprints"][:steps[0][0]]]


def check_seed(student, first_order, *, hidden=64, train_size=600, seed=2):
    """One more epoch with another seed: its first batch must differ from the first run's."""
    train, test = lab_data()
    data = subset(train, train_size)
    what = (f"train_binarized(BinarizedMLP(784, {hidden}, 10), train of {train_size} images, "
            f"epochs=1, seed={seed})")
    out = attempt(lambda: student.run(_WATCHED, train=data, epochs=1, seed=seed, hidden=hidden,
                                      probe=test.images[:16], fingerprint=_fingerprint()),
                  T, what)
    if not out["steps"]:
        fail(f"{what} made no optimizer step: train with a torch.optim optimizer",
             f"{T}/optimizer")
    order = out["fingerprints"][:out["steps"][0][0]]
    if len(order) == len(first_order) and all(
            a.shape == b.shape and torch.equal(a, b) for a, b in zip(order, first_order)):
        fail(f"{what} trains on the same first batch as with seed=1: shuffle the batches with "
             f"seed (pk.data.loader(train, batch_size=..., shuffle=True, seed=seed))",
             f"{T}/seed")


def check_training_accuracy(student, *, hidden=None, epochs=None, seed=None, threshold=None):
    """The grader's run: the student's loop on the course's ``BinarizedMLP(784, hidden, 10)``."""
    hidden = TRAINING["hidden"] if hidden is None else hidden
    epochs = TRAINING["epochs"] if epochs is None else epochs
    seed = TRAINING["seed"] if seed is None else seed
    threshold = TRAINING["threshold"] if threshold is None else threshold
    train, test = lab_data()
    what = (f"train_binarized(BinarizedMLP(784, {hidden}, 10), train, {epochs}, {seed}) on "
            f"{len(train):,} images")
    out = attempt(lambda: student.run(_SEEDED, train=train, epochs=epochs, seed=seed,
                                      hidden=hidden), T, what)
    reference = references.BinarizedMLP(784, hidden, 10)
    try:
        reference.load_state_dict(out["state"])
    except (RuntimeError, KeyError) as exc:
        fail(f"after {what} the model's state no longer fits BinarizedMLP(784, {hidden}, 10) "
             f"({str(exc)[:200]}): train the model's own parameters, in place", f"{T}/in-place")
    reference.eval()
    sample = test.images[:100]
    model = out["model"]
    attempt(lambda: model.eval(), T, f"model.eval() after {what}")
    theirs = attempt(lambda: model(sample), T, f"the model after {what}, on test images")
    with torch.no_grad():
        ours = reference(sample)
        if not agrees(ours, theirs):
            fail(f"after {what} the model does not compute what its state dict says (its "
                 f"outputs on test images differ from the course's BinarizedMLP with the same "
                 f"weights): train the model passed in, in place", f"{T}/in-place")
        accuracy = float((reference(test.images).argmax(dim=1) == test.labels).float().mean())
    if accuracy < threshold:
        fail(f"{what} reaches {accuracy:.1%} test accuracy, below {threshold:.0%}: check the "
             f"optimizer, learning rate, schedule and batch size (Adam at 1e-2 with a decaying "
             f"schedule works well)", f"{T}/accuracy")


@ASSIGNMENT.hidden(T, points=4, time_limit=120)
def train_binarized_hidden(student):
    # two epochs on 600 images: clipped after every step, batch norms not, epoch means, eval mode
    order = check_watched_run(student)
    # another seed, another order of the batches
    check_seed(student, order)
    # the grader's run: BinarizedMLP(784, 256, 10), 10 epochs, 4,000 images, >= 90% test accuracy
    check_training_accuracy(student)
