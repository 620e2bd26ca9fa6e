"""Checks and hidden tests of the ``pruning`` assignment, parts 1-6 (the lab is :mod:`.lab`).

Each section starts with the function's contract as numbered clauses (as the
notebook states it), then the check that decides them on one input, then the
hidden test cell: the inputs it runs the check on. Every clause has a
diagnosis code ``function/mistake`` that its check raises, and a planted mutant
in ``tests/support/pruning_answers.py`` that breaks only it. A check names the
clause a result breaks; where the result fits a mistake students really make
(signed values, local pruning, a fraction of all weights...), the message says
so and the code names that mistake.
"""

import copy

import torch

from ...judging import (CheckFailed, allowed_counts, call, count_text, describe_call, fail, fmt,
                        raised_a, random_tensor, show, tensor_result, type_name, unchanged)
from ...remote import Remote
from . import ASSIGNMENT


def echo_call(function, *args):
    """``(result, args after the call)``: what the student's function returned, and its arguments
    as its code left them (to check that it changed none of them).

    ``function`` is the grader's handle on the student's function; a local function (the
    references, in examples) is called on copies.
    """
    if not hasattr(function, "call_and_inputs"):
        copies = copy.deepcopy(args)
        return call(function, *copies), copies

    def attempt(*arguments):
        result, after, _ = function.call_and_inputs(*arguments)
        return result, after

    attempt.__name__ = function.__name__
    attempt.parameter_names = function.parameter_names
    return call(attempt, *args)


def shown(value):
    """A value for a message; a student's object that stayed in their process by its type."""
    return f"a {type_name(value)}" if isinstance(value, Remote) else show(value)


def dict_result(value, what, keys, *, function, noun="key"):
    """``value`` as a dict with exactly ``keys`` (any order), else ``function/type``/``/keys``."""
    if not isinstance(value, dict):
        fail(f"{what} is a {type_name(value)}, expected a dict", f"{function}/type")
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys]
    if missing or extra:
        parts = ([f"missing {noun}s {missing}"] if missing else []) + (
            [f"unexpected {noun}s {extra}"] if extra else [])
        fail(f"{what} has {' and '.join(parts)}: expected exactly {list(keys)}",
             f"{function}/keys")
    return value


def mask_values(mask, what, *, function):
    """Fail ``function/values`` unless every entry of ``mask`` is 0 or 1."""
    if not bool(((mask == 0) | (mask == 1)).all()):
        bad = mask[(mask != 0) & (mask != 1)].flatten()[0].item()
        fail(f"{what} must hold only 0 and 1, found {fmt(bad)}", f"{function}/values")


def as_tensor(values, dtype=torch.float32):
    return values.clone() if isinstance(values, torch.Tensor) else torch.tensor(values, dtype=dtype)


# ---------------------------------------------------------------------------
# Part 1: magnitude_mask(weight, sparsity)

ASSIGNMENT.clause("magnitude_mask", 1, "returns a torch.Tensor", diagnosis="magnitude_mask/type")
ASSIGNMENT.clause("magnitude_mask", 2, "the mask has weight's shape",
                  diagnosis="magnitude_mask/shape")
ASSIGNMENT.clause("magnitude_mask", 3, "the mask has weight's dtype (so weight * mask keeps it)",
                  diagnosis="magnitude_mask/dtype")
ASSIGNMENT.clause("magnitude_mask", 4, "the mask holds only 0 and 1",
                  diagnosis="magnitude_mask/values")
ASSIGNMENT.clause("magnitude_mask", 5, "exactly round(sparsity * weight.numel()) zeros (off by "
                  "one only on a rounding boundary), ties included",
                  diagnosis="magnitude_mask/count")
ASSIGNMENT.clause("magnitude_mask", 6, "the zeros are at the smallest abs(weight)",
                  diagnosis="magnitude_mask/order")
ASSIGNMENT.clause("magnitude_mask", 7, "ranked by magnitude, not by signed value: -5 matters as "
                  "much as +5", diagnosis="magnitude_mask/signed")
ASSIGNMENT.clause("magnitude_mask", 8, "weight is not changed", diagnosis="magnitude_mask/in-place")
ASSIGNMENT.clause("magnitude_mask", 9, "a sparsity outside [0, 1] raises ValueError",
                  diagnosis="magnitude_mask/range")

SIGNED_HINT = ("These zeros fit the smallest SIGNED values: rank by abs(weight), since a "
               "weight of -5 matters as much as one of +5")


def smallest_pruned(keep, scores, fraction, what, *, score_name, function, signed=None):
    """The zeros of the flat 0/1 ``keep`` are ``round(fraction * n)`` at the smallest ``scores``.

    ``signed``: the signed values; when the zeros fit them instead, the message says so
    (diagnosis ``function/signed``).
    """
    keep = keep.flatten()
    scores = scores.flatten().double()
    zeros = int((keep == 0).sum())
    counts, text = count_text(fraction, keep.numel())
    if zeros not in counts:
        fail(f"{what} has {zeros} zeros, expected {text}", f"{function}/count")
    if not fits(keep, scores):
        pruned, kept = scores[keep == 0], scores[keep == 1]
        message = (f"{what} does not zero the smallest {score_name}: an entry with {score_name} "
                   f"= {fmt(pruned.max().item())} was pruned while one with "
                   f"{fmt(kept.min().item())} was kept")
        if signed is not None and fits(keep, signed.flatten().double()):
            fail(f"{message}. {SIGNED_HINT}", f"{function}/signed")
        fail(message, f"{function}/order")


def fits(keep, scores):
    """True when the zeros of the flat 0/1 ``keep`` sit at the smallest ``scores``."""
    pruned, kept = scores[keep == 0], scores[keep != 0]
    return not (len(pruned) and len(kept) and pruned.max() > kept.min())


def check_magnitude_mask(magnitude_mask, weight, sparsity, *, dtype=torch.float32,
                         expected=None):
    """Check ``magnitude_mask(weight, sparsity)`` on one input (clauses 1-8).

    Example:
        >>> from pruning_grader.assignments.pruning.references import magnitude_mask
        >>> check_magnitude_mask(magnitude_mask, [3.0, -1.0, 2.0], 1 / 3, expected=[1, 0, 1])
    """
    weight = as_tensor(weight, dtype)
    what = f"the mask of {describe_call(magnitude_mask, (weight, sparsity))}"
    mask, (after, _) = echo_call(magnitude_mask, weight, sparsity)
    mask = tensor_result(mask, what, shape=weight.shape, dtype=weight.dtype,
                         diagnosis="magnitude_mask")
    mask_values(mask, what, function="magnitude_mask")
    smallest_pruned(mask, weight.abs(), sparsity, what, score_name="abs(weight)",
                    function="magnitude_mask", signed=weight)
    unchanged(weight, after, "weight", describe_call(magnitude_mask, (weight, sparsity)),
              diagnosis="magnitude_mask")
    if expected is not None:
        expected = torch.tensor(expected, dtype=weight.dtype)
        if not torch.equal(mask, expected):
            index = tuple((mask != expected).nonzero()[0].tolist())
            fail(f"{what}: element {index} is {fmt(mask[index].item())}, expected "
                 f"{fmt(expected[index].item())}", "magnitude_mask/order")


def check_raises_value_error(function, args, bad, index, name, *, rule="must be in [0, 1]"):
    """``function`` raises ValueError when argument ``index`` (named ``name``) is ``bad``."""
    args = list(args)
    args[index] = bad
    what = describe_call(function, args)
    try:
        value = function(*args)
    except Exception as exc:  # noqa: BLE001 - the student's own exception, compared by name
        if raised_a(exc, ValueError):
            return
        if getattr(exc, "not_implemented", False):
            call(function, *args)  # words it as "not written yet"
        fail(f"{what} should raise ValueError ({name} {rule}), but it raised "
             f"{getattr(exc, 'type_name', type(exc).__name__)}", f"{function.__name__}/range")
    fail(f"{what} should raise ValueError ({name} {rule}), but it returned a "
         f"{type_name(value)}", f"{function.__name__}/range")


@ASSIGNMENT.hidden("magnitude_mask", points=3)
def magnitude_mask_hidden(student):
    magnitude_mask = student["magnitude_mask"]
    # absolute values: large negative weights are kept
    check_magnitude_mask(magnitude_mask, [[-5.0, 0.1], [2.0, -0.2]], 0.5, expected=[[1, 0], [1, 0]])
    check_magnitude_mask(magnitude_mask, [-4.0, -3.0, -2.0, -1.0, 0.5, 6.0], 0.5,
                         expected=[1, 1, 0, 0, 0, 1])
    # sparsity 0 and 1
    check_magnitude_mask(magnitude_mask, [[1.0, -2.0], [3.0, 0.0]], 0.0, expected=[[1, 1], [1, 1]])
    check_magnitude_mask(magnitude_mask, [[1.0, -2.0], [3.0, 0.0]], 1.0, expected=[[0, 0], [0, 0]])
    # odd sizes where rounding matters: 0.37 * 7 = 2.59 -> 3, 0.29 * 33 = 9.57 -> 10, 0.7 * 9 -> 6
    check_magnitude_mask(magnitude_mask, random_tensor(7, seed=1), 0.37)
    check_magnitude_mask(magnitude_mask, random_tensor(3, 11, seed=2), 0.29)
    check_magnitude_mask(magnitude_mask, random_tensor(9, seed=3), 0.7)
    # a product on a rounding boundary: 0.5 * 5 = 2.5 -> 2 (3 also accepted)
    check_magnitude_mask(magnitude_mask, random_tensor(5, seed=4), 0.5)
    # ties: exactly round(s * n) zeros even when magnitudes repeat
    check_magnitude_mask(magnitude_mask, [0.1] * 6 + [1.0], 0.5)
    check_magnitude_mask(magnitude_mask, [[1.0, -1.0, 1.0], [-1.0, 2.0, 1.0]], 0.5)
    # other dtypes and ranks: float64, a 4-D conv weight
    check_magnitude_mask(magnitude_mask, random_tensor(4, 3, seed=5, dtype=torch.float64), 0.25)
    check_magnitude_mask(magnitude_mask, random_tensor(2, 3, 3, 3, seed=6), 0.6)
    # a sparsity outside [0, 1] is refused
    for bad in (-0.1, 1.5):
        check_raises_value_error(magnitude_mask, (torch.ones(3), 0.5), bad, 1, "sparsity")


# ---------------------------------------------------------------------------
# Parts 2 and 4: global masks, by magnitude (global_magnitude_masks) or by score (snip_masks)

for _function, _argument, _score in (("global_magnitude_masks", "weights", "abs(weight)"),
                                     ("snip_masks", "scores", "score")):
    ASSIGNMENT.clause(_function, 1, "returns a dict", diagnosis=f"{_function}/type")
    ASSIGNMENT.clause(_function, 2, f"with exactly the keys of {_argument}",
                      diagnosis=f"{_function}/keys")
    ASSIGNMENT.clause(_function, 3, f"each mask is a tensor with the shape of its {_argument} "
                      f"entry", diagnosis=f"{_function}/shape")
    ASSIGNMENT.clause(_function, 4, f"each mask has the dtype of its {_argument} entry",
                      diagnosis=f"{_function}/dtype")
    ASSIGNMENT.clause(_function, 5, "masks hold only 0 and 1", diagnosis=f"{_function}/values")
    ASSIGNMENT.clause(_function, 6, "exactly round(sparsity * total) zeros over all entries "
                      "(off by one only on a rounding boundary), ties included",
                      diagnosis=f"{_function}/count")
    ASSIGNMENT.clause(_function, 7, f"the zeros are at the smallest {_score} over all entries",
                      diagnosis=f"{_function}/order")
    ASSIGNMENT.clause(_function, 8, "one threshold over all layers together, not the same "
                      "fraction in every layer", diagnosis=f"{_function}/local")
    ASSIGNMENT.clause(_function, 9, f"{_argument} are not changed",
                      diagnosis=f"{_function}/in-place")
ASSIGNMENT.clause("global_magnitude_masks", 10, "ranked by magnitude, not by signed value",
                  diagnosis="global_magnitude_masks/signed")

LOCAL_HINT = ("Every layer lost the same fraction: that is local pruning; global pruning uses "
              "one threshold over all layers together")


def check_global_masks(function, values, sparsity, *, by_magnitude, dtype=torch.float32,
                       expected=None):
    """Check ``function(values, sparsity)`` (a global mask function) on one input.

    ``by_magnitude``: masks rank ``abs(value)`` (``global_magnitude_masks``), else the
    value itself (``snip_masks``, whose scores are non-negative).

    Example:
        >>> from pruning_grader.assignments.pruning import references
        >>> check_global_masks(references.global_magnitude_masks, {"a": [0.1, -0.2],
        ...                    "b": [3.0, -4.0]}, 0.5, by_magnitude=True,
        ...                    expected={"a": [0, 0], "b": [1, 1]})
    """
    name = function.__name__
    tensors = {key: as_tensor(v, dtype) for key, v in values.items()}
    shapes = ", ".join(f"{key!r}: {tuple(t.shape)}" for key, t in tensors.items())
    call_text = f"{name}({{{shapes}}}, sparsity={sparsity!r})"
    result, (after, _) = echo_call(function, dict(tensors), sparsity)
    masks = dict_result(result, f"the result of {call_text}", list(tensors), function=name)
    for key, t in tensors.items():
        what = f"mask {key!r} of {call_text}"
        masks[key] = tensor_result(masks[key], what, shape=t.shape, dtype=t.dtype, diagnosis=name)
        mask_values(masks[key], what, function=name)
    keys = list(tensors)
    keep = torch.cat([masks[k].flatten().double() for k in keys])
    scores = {k: (t.abs() if by_magnitude else t).flatten().double() for k, t in tensors.items()}
    flat = torch.cat([scores[k] for k in keys])
    zeros = int((keep == 0).sum())
    counts, text = count_text(sparsity, keep.numel())
    if zeros not in counts:
        per_layer = ", ".join(f"{k!r}: {int((masks[k] == 0).sum())}" for k in keys)
        fail(f"{call_text} has {zeros} zeros in total ({per_layer}), expected {text} over all "
             f"{keep.numel()} entries", f"{name}/count")
    score_name = "abs(weight)" if by_magnitude else "score"
    if not fits(keep, flat):
        layer_of = [k for k in keys for _ in range(tensors[k].numel())]
        pruned = [(s.item(), layer_of[i]) for i, s in enumerate(flat) if keep[i] == 0]
        kept = [(s.item(), layer_of[i]) for i, s in enumerate(flat) if keep[i] != 0]
        worst, best = max(pruned), min(kept)
        message = (f"{call_text} does not zero the smallest {score_name} over all layers: "
                   f"{score_name} = {fmt(worst[0])} in {worst[1]!r} was pruned while "
                   f"{fmt(best[0])} in {best[1]!r} was kept")
        signed = torch.cat([tensors[k].flatten().double() for k in keys])
        local = len(keys) > 1 and all(
            int((masks[k] == 0).sum()) in allowed_counts(sparsity, tensors[k].numel())
            and fits(masks[k].flatten(), scores[k]) for k in keys)
        if by_magnitude and fits(keep, signed):
            fail(f"{message}. {SIGNED_HINT}", f"{name}/signed")
        if local:
            fail(f"{message}. {LOCAL_HINT}", f"{name}/local")
        fail(message, f"{name}/order")
    unchanged(tensors, after, values_name(name), call_text, diagnosis=name)
    if expected is not None:
        for key in keys:
            want = torch.tensor(expected[key], dtype=tensors[key].dtype)
            if not torch.equal(masks[key], want):
                index = tuple((masks[key] != want).nonzero()[0].tolist())
                fail(f"mask {key!r} of {call_text}: element {index} is "
                     f"{fmt(masks[key][index].item())}, expected {fmt(want[index].item())}",
                     f"{name}/order")


def values_name(function):
    return "weights" if function == "global_magnitude_masks" else "scores"


@ASSIGNMENT.hidden("global_magnitude_masks", points=3)
def global_magnitude_masks_hidden(student):
    function = student["global_magnitude_masks"]

    def check(values, sparsity, **options):
        check_global_masks(function, values, sparsity, by_magnitude=True, **options)

    # one threshold, not the same fraction per layer (0.5 * 4 + 0.5 * 6 = 0.5 * 10: a local
    # mask has the right count and is told apart by where its zeros are)
    check({"a": [0.01, 0.02, 0.03, 0.04], "b": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, 0.5,
          expected={"a": [0, 0, 0, 0], "b": [0, 1, 1, 1, 1, 1]})
    # absolute values across layers
    check({"a": [-9.0, 0.5], "b": [[1.0, -0.1], [-8.0, 0.2]]}, 0.5,
          expected={"a": [1, 0], "b": [[1, 0], [1, 0]]})
    # sparsity 0 and 1
    w = {"conv": random_tensor(2, 1, 3, 3, seed=1), "fc": random_tensor(3, 4, seed=2)}
    check(w, 0.0)
    check(w, 1.0)
    # rounding on an odd total: 0.5 * 7 = 3.5 -> 4 (3 also accepted); 0.35 * 30 = 10.5 -> 10
    # (11 also accepted); 0.45 * 11 = 4.95 -> 5, where int() would give 4
    check({"a": random_tensor(3, seed=3), "b": random_tensor(4, seed=4)}, 0.5)
    check(w, 0.35)
    # ties across layers, and names with dots as in a real model
    check({"features.0": [0.5, 0.5, 0.5], "classifier.1": [0.5, -0.5, 2.0]}, 0.5)
    # three layers of very different scales in float64; a float32 layer beside a float64 one
    check({"fc1": random_tensor(30, 20, seed=5, dtype=torch.float64) * 0.1,
           "fc2": random_tensor(10, 30, seed=6, dtype=torch.float64),
           "fc3": random_tensor(3, 10, seed=7, dtype=torch.float64) * 3}, 0.8)
    check({"a": random_tensor(6, seed=8), "b": random_tensor(5, seed=9, dtype=torch.float64)}, 0.45)


@ASSIGNMENT.hidden("snip_masks", points=2)
def snip_masks_hidden(student):
    function = student["snip_masks"]

    def check(values, sparsity, **options):
        check_global_masks(function, values, sparsity, by_magnitude=False, **options)

    # global, not per layer (0.5 * 4 + 0.5 * 6 = 0.5 * 10)
    check({"a": [0.01, 0.02, 0.03, 0.04], "b": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}, 0.5,
          expected={"a": [0, 0, 0, 0], "b": [0, 1, 1, 1, 1, 1]})
    # sparsity 0 and 1, rounding (0.45 * 11 = 4.95 -> 5; 0.5 * 7 = 3.5 -> 4), ties
    s = {"conv": random_tensor(2, 1, 2, 2, seed=1).abs(), "fc": random_tensor(3, seed=2).abs()}
    check(s, 0.0)
    check(s, 1.0)
    check(s, 0.45)
    check({"a": random_tensor(3, seed=5).abs(), "b": random_tensor(4, seed=6).abs()}, 0.5)
    check({"a": [0.25, 0.25, 0.25], "b": [0.25, 0.0]}, 0.6)
    # scores in float64 and a larger model-sized input
    check({"fc1": random_tensor(50, 40, seed=3, dtype=torch.float64).abs(),
           "fc2": random_tensor(10, 50, seed=4, dtype=torch.float64).abs()}, 0.97)


# ---------------------------------------------------------------------------
# Part 3: snip_scores(model, inputs, targets)

ASSIGNMENT.clause("snip_scores", 1, "returns a dict", diagnosis="snip_scores/type")
ASSIGNMENT.clause("snip_scores", 2, "one key per nn.Linear / nn.Conv2d module, named as in "
                  "model.named_modules(); biases are not scored", diagnosis="snip_scores/keys")
ASSIGNMENT.clause("snip_scores", 3, "each value is a tensor shaped like that module's weight",
                  diagnosis="snip_scores/shape")
ASSIGNMENT.clause("snip_scores", 4, "each value has that module's weight's dtype",
                  diagnosis="snip_scores/dtype")
ASSIGNMENT.clause("snip_scores", 5, "each score is abs(grad * weight) / (sum over all layers), "
                  "the gradient of the cross-entropy on the batch",
                  diagnosis="snip_scores/values",
                  note="the mean and the summed cross-entropy give the same normalised scores, "
                       "so which of the two a submission uses cannot be told apart (nor need it)")
ASSIGNMENT.clause("snip_scores", 6, "scores are non-negative: abs(grad * weight)",
                  diagnosis="snip_scores/signed")
ASSIGNMENT.clause("snip_scores", 7, "the score multiplies the gradient by the weight",
                  diagnosis="snip_scores/no-weight")
ASSIGNMENT.clause("snip_scores", 8, "the scores are normalised: all of them add up to 1",
                  diagnosis="snip_scores/not-normalised")
ASSIGNMENT.clause("snip_scores", 9, "normalised over all layers together, not per layer",
                  diagnosis="snip_scores/per-layer")
ASSIGNMENT.clause("snip_scores", 10, "the gradients are this batch's only: whatever .grad held "
                  "before the call does not leak in", diagnosis="snip_scores/stale-grad")
ASSIGNMENT.clause("snip_scores", 11, "the model's parameters are not changed",
                  diagnosis="snip_scores/in-place",
                  note="what .grad holds afterwards is not part of the contract")

SNIP_MODELS = '''
class TwoStage(nn.Module):
    """A conv stage and a linear head; every parameter's .grad is ``stale`` when given."""

    def __init__(self, stale=None):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12, 8, bias=False), nn.ReLU(),
                                  nn.Linear(8, 4))
        if stale is not None:
            for p in self.parameters():
                p.grad = torch.full_like(p, float(stale))

    def forward(self, x):
        return self.head(self.features(x))
'''
"""The grader's own model class for SNIP: built here, and in the student's process from source."""


def snip_model(name, *, seed, stale=None):
    """``(model here, what to send)``: the grader's model of class ``name`` from
    :data:`SNIP_MODELS`, and the same model (same weights, stale gradients) for the student."""
    from pruning_kit.course import wire

    scope = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    exec(compile(SNIP_MODELS, "<snip models>", "exec"), scope)  # noqa: S102 - the grader's code
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = scope[name]()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model, wire.build_from_source(SNIP_MODELS, name, stale=stale, state=state)


def snip_expected(model, inputs, targets):
    """``(names, scores, grads, weights)`` in float64: the reference and what hints compare."""
    twin = copy.deepcopy(model).double()
    modules = dict(twin.named_modules())
    names = [n for n, m in twin.named_modules() if isinstance(m, (torch.nn.Linear,
                                                                  torch.nn.Conv2d))]
    weights = [modules[n].weight for n in names]
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(twin(inputs.double()), targets)
        grads = torch.autograd.grad(loss, weights)
    raw = [(g * w).abs().detach() for g, w in zip(grads, weights)]
    total = sum(r.sum() for r in raw)
    return (names, {n: r / total for n, r in zip(names, raw)},
            {n: g.detach() for n, g in zip(names, grads)},
            {n: w.detach() for n, w in zip(names, weights)})


def _close(actual, expected, rtol=1e-4, atol=1e-7):
    return all(torch.allclose(actual[n], expected[n], rtol=rtol, atol=atol) for n in expected)


def snip_mistake(actual, grads, weights, stale):
    """``(code, hint)`` of the SNIP mistake ``actual`` fits, or None."""
    names = list(grads)

    def normalised(raw, per_layer=False):
        if per_layer:
            return {n: raw[n] / raw[n].sum() for n in names}
        total = sum(raw[n].sum() for n in names)
        return {n: raw[n] / total for n in names}

    raw = {n: (grads[n] * weights[n]).abs() for n in names}
    if _close(actual, normalised({n: grads[n].abs() for n in names})):
        return "no-weight", ("These are |grad| only: SNIP multiplies by the weight, "
                             "abs(grad * weight)")
    if any(bool((actual[n] < 0).any()) for n in names):
        return "signed", "Some scores are negative: take abs(grad * weight)"
    if len(names) > 1 and _close(actual, normalised(raw, per_layer=True)):
        return "per-layer", "Each layer sums to 1: divide by the sum over ALL layers, not per layer"
    if _close(actual, raw):
        return "not-normalised", "The scores do not sum to 1: divide by the sum over all layers"
    if stale is not None and _close(actual, normalised(
            {n: ((grads[n] + stale) * weights[n]).abs() for n in names})):
        return "stale-grad", ("The gradients include what was already stored in .grad before "
                              "the call: zero them first (model.zero_grad()) or use "
                              "torch.autograd.grad")
    return None


def check_snip_scores(snip_scores, model, inputs, targets, *, sent=None, stale=None):
    """Check ``snip_scores(model, inputs, targets)`` against float64 autograd (clauses 1-11).

    Args:
        snip_scores: the student's function (the grader's handle on it).
        model: the grader's model (its scores are computed here).
        inputs, targets: the batch.
        sent: what goes to the student instead of ``model`` (a :func:`snip_model` build with
            stale gradients); default ``model`` itself, by structure.
        stale: the value of the stale gradients ``sent`` carries (for the hint).

    Example:
        >>> from pruning_grader.assignments.pruning.references import snip_scores
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2))
        >>> check_snip_scores(snip_scores, net, random_tensor(4, 3), torch.tensor([0, 1, 1, 0]))
    """
    names, expected, grads, weights = snip_expected(model, inputs, targets)
    shapes = {n: tuple(w.shape) for n, w in weights.items()}
    dtypes = {n: m.weight.dtype for n, m in model.named_modules() if n in weights}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    call_text = (f"snip_scores(model with layers {names}, inputs of shape "
                 f"{tuple(inputs.shape)}, targets)")
    result, (after, _, _) = echo_call(snip_scores, model if sent is None else sent, inputs,
                                      targets)
    if isinstance(result, dict) and any("bias" in str(k) for k in result if k not in names):
        fail(f"the result of {call_text} has keys {list(result)[:8]}, expected exactly {names}: "
             f"one per nn.Linear / nn.Conv2d module, named as the module; biases are not scored",
             "snip_scores/keys")
    scores = dict_result(result, f"the result of {call_text}", names, function="snip_scores",
                         noun="key")
    for n in names:
        scores[n] = tensor_result(scores[n], f"scores[{n!r}] of {call_text}", shape=shapes[n],
                                  dtype=dtypes[n], diagnosis="snip_scores")
    actual = {n: scores[n].double() for n in names}
    for n in names:
        if torch.allclose(actual[n], expected[n], rtol=1e-4, atol=1e-7):
            continue
        bad = (~torch.isclose(actual[n], expected[n], rtol=1e-4, atol=1e-7)).nonzero()[0]
        index = tuple(bad.tolist())
        message = (f"scores[{n!r}] of {call_text}: element {index} is "
                   f"{fmt(actual[n][index].item())}, expected abs(grad * weight) / total = "
                   f"{fmt(expected[n][index].item())}")
        mistake = snip_mistake(actual, grads, weights, stale)
        if mistake is not None:
            fail(f"{message}. {mistake[1]}", f"snip_scores/{mistake[0]}")
        fail(message, "snip_scores/values")
    now = after.state_dict() if hasattr(after, "state_dict") else None
    if not isinstance(now, dict) or set(now) != set(state):
        fail(f"{call_text} changed the model's parameters: compute the scores without changing "
             f"the model", "snip_scores/in-place")
    unchanged(state, now, "model", call_text, diagnosis="snip_scores")


@ASSIGNMENT.hidden("snip_scores", points=4)
def snip_scores_hidden(student):
    snip_scores = student["snip_scores"]
    # a conv stage and a linear head: scored layers "features.0", "head.1", "head.3"
    model, sent = snip_model("TwoStage", seed=1)
    x, y = random_tensor(8, 2, 4, 4, seed=2), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    check_snip_scores(snip_scores, model, x, y, sent=sent)
    # gradients left in .grad from earlier must not leak into the scores
    _, stale = snip_model("TwoStage", seed=1, stale=5.0)
    check_snip_scores(snip_scores, model, x, y, sent=stale, stale=5.0)
    # one layer: the scores still sum to 1; a single-example batch
    with torch.random.fork_rng():
        torch.manual_seed(3)
        single = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(9, 3))
        lenet = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 12), torch.nn.ReLU(),
                                    torch.nn.Linear(12, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    check_snip_scores(snip_scores, single, random_tensor(1, 1, 3, 3, seed=4), torch.tensor([2]))
    # a LeNet-like model with several Linear layers of different sizes
    check_snip_scores(snip_scores, lenet, random_tensor(10, 1, 4, 4, seed=6),
                      torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]))


# ---------------------------------------------------------------------------
# Part 5: imp_step(trained, init, masks, rate)

ASSIGNMENT.clause("imp_step", 1, "returns a tuple (new_masks, rewound) of two dicts",
                  diagnosis="imp_step/type")
ASSIGNMENT.clause("imp_step", 2, "both dicts have exactly the keys of masks",
                  diagnosis="imp_step/keys")
ASSIGNMENT.clause("imp_step", 3, "each new mask has its old mask's shape",
                  diagnosis="imp_step/shape")
ASSIGNMENT.clause("imp_step", 4, "each new mask has its old mask's dtype",
                  diagnosis="imp_step/dtype")
ASSIGNMENT.clause("imp_step", 5, "new masks hold only 0 and 1", diagnosis="imp_step/values")
ASSIGNMENT.clause("imp_step", 6, "weights already pruned stay pruned",
                  diagnosis="imp_step/revived")
ASSIGNMENT.clause("imp_step", 7, "each layer prunes exactly round(rate * r) more weights, r = "
                  "the weights it still has (off by one only on a rounding boundary)",
                  diagnosis="imp_step/count")
ASSIGNMENT.clause("imp_step", 8, "a fraction of the weights that REMAIN, not of all weights",
                  diagnosis="imp_step/of-total")
ASSIGNMENT.clause("imp_step", 9, "the k newly pruned are chosen among the weights still there: "
                  "weights already pruned do not count among them",
                  diagnosis="imp_step/ranks-pruned")
ASSIGNMENT.clause("imp_step", 10, "layer by layer, not one threshold over all layers",
                  diagnosis="imp_step/global")
ASSIGNMENT.clause("imp_step", 11, "the newly pruned are the smallest abs(trained) among the "
                  "weights still there", diagnosis="imp_step/order")
ASSIGNMENT.clause("imp_step", 12, "ranked by magnitude, not by signed value",
                  diagnosis="imp_step/signed")
ASSIGNMENT.clause("imp_step", 13, "rewound[name] is init[name] * new_masks[name], with init's "
                  "shape and dtype", diagnosis="imp_step/rewound")
ASSIGNMENT.clause("imp_step", 14, "rewinds to the initial weights, not the trained ones",
                  diagnosis="imp_step/no-rewind")
ASSIGNMENT.clause("imp_step", 15, "trained, init and masks are not changed",
                  diagnosis="imp_step/in-place")


def _pair(result, call_text):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"{call_text} returned {shown(result)}, expected a tuple (new_masks, rewound)",
             "imp_step/type")
    return result


def _global_fit(new, old, trained, rate):
    """True when ``new`` is what one threshold over all layers' remaining weights gives."""
    names = list(old)
    alive = torch.cat([old[n].flatten() != 0 for n in names])
    scores = torch.cat([trained[n].abs().flatten().double() for n in names])
    newly = torch.cat([(old[n].flatten() != 0) & (new[n].flatten() == 0) for n in names])
    if int(newly.sum()) not in allowed_counts(rate, int(alive.sum())):
        return False
    return fits((~newly[alive]).double(), scores[alive])


def check_imp_step(imp_step, trained, init, masks, rate, *, dtype=torch.float32):
    """Check ``imp_step(trained, init, masks, rate)`` on one input (clauses 1-15).

    Example:
        >>> from pruning_grader.assignments.pruning.references import imp_step
        >>> check_imp_step(imp_step, {"a": [4.0, -1.0, 3.0, 2.0]}, {"a": [1.0, 1.0, 1.0, 1.0]},
        ...                {"a": [1.0, 1.0, 0.0, 1.0]}, 0.34)
    """
    trained = {n: as_tensor(v, dtype) for n, v in trained.items()}
    init = {n: as_tensor(v, dtype) for n, v in init.items()}
    masks = {n: as_tensor(v, dtype) for n, v in masks.items()}
    names = list(masks)
    shapes = ", ".join(f"{n!r}: {tuple(masks[n].shape)}" for n in names)
    call_text = f"imp_step(trained, init, masks with layers {{{shapes}}}, rate={rate!r})"
    result, after = echo_call(imp_step, dict(trained), dict(init), dict(masks), rate)
    new_masks, rewound = _pair(result, call_text)
    new_masks = dict_result(new_masks, f"new_masks of {call_text}", names, function="imp_step")
    rewound = dict_result(rewound, f"the rewound weights of {call_text}", names,
                          function="imp_step")
    for n in names:
        what = f"new_masks[{n!r}] of {call_text}"
        new_masks[n] = tensor_result(new_masks[n], what, shape=masks[n].shape,
                                     dtype=masks[n].dtype, diagnosis="imp_step")
        mask_values(new_masks[n], what, function="imp_step")
    for n in names:
        old = masks[n].flatten()
        what = f"new_masks[{n!r}] of {call_text}"
        new = new_masks[n].flatten()
        revived = ((old == 0) & (new != 0)).nonzero().flatten()
        if len(revived):
            index = tuple(divmod_index(int(revived[0]), masks[n].shape))
            fail(f"{what} brings back weight {index}, which the old mask had pruned: pruned "
                 f"weights stay pruned", "imp_step/revived")
        remaining = (old != 0).nonzero().flatten()
        newly = int(((old != 0) & (new == 0)).sum())
        scores = trained[n].abs().flatten().double()
        counts, text = count_text(rate, len(remaining))
        if newly not in counts:
            message = (f"{call_text}: layer {n!r} pruned {newly} more weights, expected {text} "
                       f"of the {len(remaining)} still unmasked")
            total = old.numel()
            k = round(rate * len(remaining))
            smallest_overall = set(scores.argsort(stable=True)[:k].tolist())
            zeros_now = set((new == 0).nonzero().flatten().tolist())
            zeros_before = set((old == 0).nonzero().flatten().tolist())
            if total != len(remaining) and newly in allowed_counts(rate, total):
                fail(f"{message}. {newly} = round({rate!r} * {total}) prunes a fraction of ALL "
                     f"weights; IMP prunes a fraction of those that remain", "imp_step/of-total")
            if len(names) > 1 and _global_fit(new_masks, masks, trained, rate):
                fail(f"{message}. The layers were pruned with one threshold over all of them: "
                     f"IMP prunes each layer on its own", "imp_step/global")
            if zeros_before and zeros_now == zeros_before | smallest_overall:
                fail(f"{message}. Some of the {k} went to weights that were already pruned: "
                     f"rank only the weights still there", "imp_step/ranks-pruned")
            fail(message, "imp_step/count")
        keep_remaining = (new[remaining] != 0).double()
        if not fits(keep_remaining, scores[remaining]):
            pruned = scores[remaining][keep_remaining == 0]
            kept = scores[remaining][keep_remaining == 1]
            message = (f"{call_text}: layer {n!r}: among the unmasked weights, one with "
                       f"abs(trained) = {fmt(pruned.max().item())} was pruned while one with "
                       f"{fmt(kept.min().item())} was kept")
            if fits(keep_remaining, trained[n].flatten().double()[remaining]):
                fail(f"{message}. {SIGNED_HINT}", "imp_step/signed")
            fail(message, "imp_step/order")
    for n in names:
        what = f"the rewound weights {n!r} of {call_text}"
        value = rewound[n]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(init[n].shape) \
                or value.dtype != init[n].dtype:
            shown = (f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
                     if isinstance(value, torch.Tensor) else f"a {type_name(value)}")
            fail(f"{what} is {shown}, expected init[{n!r}] * new_masks[{n!r}]: shape "
                 f"{tuple(init[n].shape)}, dtype {init[n].dtype}", "imp_step/rewound")
        want = init[n] * new_masks[n]
        if not torch.equal(value.detach(), want):
            index = tuple((value.detach() != want).nonzero()[0].tolist())
            message = (f"{what}: element {index} is {fmt(value[index].item())}, expected "
                       f"init * new_mask = {fmt(want[index].item() + 0.0)}")
            if torch.equal(value.detach(), trained[n] * new_masks[n]):
                fail(f"{message}. These are trained * mask: a lottery ticket rewinds to the "
                     f"initial weights, init * new_mask", "imp_step/no-rewind")
            fail(message, "imp_step/rewound")
    for label, sent, back in zip(("trained", "init", "masks"), (trained, init, masks), after):
        unchanged(sent, back, label, call_text, diagnosis="imp_step")


def divmod_index(flat, shape):
    """The index tuple of flat position ``flat`` in a tensor of ``shape``."""
    index = []
    for size in reversed(tuple(shape)):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return list(reversed(index))


@ASSIGNMENT.hidden("imp_step", points=4)
def imp_step_hidden(student):
    imp_step = student["imp_step"]
    # a fraction of what REMAINS: 8 of 16 remain, round(0.25 * 8) = 2 more (not round(0.25 * 16))
    mask = [[1.0, 0.0] * 4, [0.0, 1.0] * 4]
    check_imp_step(imp_step, {"fc": random_tensor(2, 8, seed=1)},
                   {"fc": random_tensor(2, 8, seed=2)}, {"fc": mask}, 0.25)
    # pruned weights stay pruned even where their trained value is large
    check_imp_step(imp_step, {"fc": [9.0, 8.0, 0.1, 0.2, 0.3, 7.0]},
                   {"fc": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, {"fc": [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]},
                   0.5)
    # already pruned weights do not count among the k, even where their trained value is smallest
    check_imp_step(imp_step, {"fc": [0.01, 0.02, 5.0, 4.0, 3.0, 2.0]},
                   {"fc": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, {"fc": [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]},
                   0.5)
    # magnitude, not signed value; rewinding to init, not keeping the trained weights
    check_imp_step(imp_step, {"fc": [-5.0, 0.1, -0.2, 4.0]}, {"fc": [0.5, -0.5, 0.25, -0.25]},
                   {"fc": [1.0, 1.0, 1.0, 1.0]}, 0.5)
    # per layer, not global: layers of very different scales each lose round(0.2 * remaining)
    trained = {"conv": random_tensor(3, 2, 3, 3, seed=3) * 0.01,
               "fc": random_tensor(5, 6, seed=4) * 10}
    init = {"conv": random_tensor(3, 2, 3, 3, seed=5), "fc": random_tensor(5, 6, seed=6)}
    check_imp_step(imp_step, trained, init,
                   {"conv": torch.ones(3, 2, 3, 3), "fc": torch.ones(5, 6)}, 0.2)
    # rounding: 7 remain, 0.2 * 7 = 1.4 -> 1; 6 remain, 0.45 * 6 = 2.7 -> 3; 5 remain,
    # 0.5 * 5 = 2.5 -> 2 (3 also accepted)
    check_imp_step(imp_step, {"a": random_tensor(7, seed=7)}, {"a": random_tensor(7, seed=8)},
                   {"a": [1.0] * 7}, 0.2)
    check_imp_step(imp_step, {"a": random_tensor(6, seed=11)}, {"a": random_tensor(6, seed=12)},
                   {"a": [1.0] * 6}, 0.45)
    check_imp_step(imp_step, {"a": random_tensor(8, seed=9)}, {"a": random_tensor(8, seed=10)},
                   {"a": [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]}, 0.5)
    # rate 0 changes nothing; a fully pruned layer stays empty
    check_imp_step(imp_step, {"a": [1.0, 2.0, 3.0]}, {"a": [0.1, 0.2, 0.3]}, {"a": [1.0, 0.0, 1.0]},
                   0.0)
    check_imp_step(imp_step, {"a": [1.0, 2.0]}, {"a": [0.1, 0.2]}, {"a": [0.0, 0.0]}, 0.5)
    # ties among the remaining weights: still exactly k; float64 throughout
    check_imp_step(imp_step, {"a": [0.5, -0.5, 0.5, 0.5, 2.0]}, {"a": [1.0, 1.0, 1.0, 1.0, 1.0]},
                   {"a": [1.0] * 5}, 0.4)
    check_imp_step(imp_step, {"a": random_tensor(4, 5, seed=13)},
                   {"a": random_tensor(4, 5, seed=14)}, {"a": torch.ones(4, 5)}, 0.3,
                   dtype=torch.float64)


# ---------------------------------------------------------------------------
# Part 6: l1_filter_order(conv_weight)

ASSIGNMENT.clause("l1_filter_order", 1, "returns a torch.Tensor", diagnosis="l1_filter_order/type")
ASSIGNMENT.clause("l1_filter_order", 2, "of dtype int64 (a LongTensor)",
                  diagnosis="l1_filter_order/dtype")
ASSIGNMENT.clause("l1_filter_order", 3, "of shape (out_channels,): one index per output filter "
                  "(conv_weight.shape[0])", diagnosis="l1_filter_order/shape")
ASSIGNMENT.clause("l1_filter_order", 4, "holds each filter index 0..out_channels-1 once",
                  diagnosis="l1_filter_order/permutation")
ASSIGNMENT.clause("l1_filter_order", 5, "in ascending order of L1 norm",
                  diagnosis="l1_filter_order/descending")
ASSIGNMENT.clause("l1_filter_order", 6, "the L1 norm sums abs(w) over in_channels, kh and kw "
                  "(not the signed sum)", diagnosis="l1_filter_order/signed")
ASSIGNMENT.clause("l1_filter_order", 7, "filters with equal norms keep their index order "
                  "(stable)", diagnosis="l1_filter_order/stable")
ASSIGNMENT.clause("l1_filter_order", 8, "conv_weight is not changed",
                  diagnosis="l1_filter_order/in-place")


def _order_of(scores):
    return scores.argsort(stable=True).tolist()


def check_l1_filter_order(l1_filter_order, conv_weight, *, dtype=torch.float32, expected=None):
    """Check ``l1_filter_order(conv_weight)`` on one input (clauses 1-8).

    Example:
        >>> from pruning_grader.assignments.pruning.references import l1_filter_order
        >>> check_l1_filter_order(l1_filter_order, [[[[1.0]]], [[[-0.5]]], [[[0.5]]]],
        ...                       expected=[1, 2, 0])
    """
    weight = as_tensor(conv_weight, dtype)
    out = weight.shape[0]
    call_text = f"l1_filter_order(conv_weight of shape {tuple(weight.shape)})"
    what = f"the result of {call_text}"
    order, (after,) = echo_call(l1_filter_order, weight)
    order = tensor_result(order, what, diagnosis="l1_filter_order")
    if order.dtype != torch.int64:
        fail(f"{what} has dtype {order.dtype}, expected torch.int64 (a LongTensor of indices)",
             "l1_filter_order/dtype")
    if tuple(order.shape) != (out,):
        hint = (" (that is one per INPUT channel, weight.shape[1])"
                if order.dim() == 1 and order.numel() == weight.shape[1] else "")
        fail(f"{what} has shape {tuple(order.shape)}, expected ({out},): one index per output "
             f"filter (weight.shape[0]){hint}", "l1_filter_order/shape")
    got = order.tolist()
    if sorted(got) != list(range(out)):
        fail(f"{what} should hold each filter index 0..{out - 1} once, got {got[:16]}",
             "l1_filter_order/permutation")
    flat = weight.double().flatten(1)
    norms = flat.abs().sum(1)
    for a, b in zip(got, got[1:]):
        if norms[a] > norms[b] + 1e-6 * max(1.0, norms[a].item(), norms[b].item()):
            message = (f"{call_text}: filter {a} (L1 norm {fmt(norms[a].item())}) comes before "
                       f"filter {b} (L1 norm {fmt(norms[b].item())}); the order must be "
                       f"ascending")
            if got == _order_of(-norms):
                fail(f"{message} (yours is descending)", "l1_filter_order/descending")
            if got == _order_of(flat.sum(1)):
                fail(f"{message}. That is the order of the signed sums: the L1 norm sums abs(w) "
                     f"over in, kh, kw", "l1_filter_order/signed")
            if got == _order_of(flat.pow(2).sum(1)):
                fail(f"{message}. That is the order of the L2 norms (sums of squares): Li et "
                     f"al. rank filters by the L1 norm, the sum of abs(w)", "l1_filter_order/l2")
            fail(message, "l1_filter_order/order")
        if norms[a] == norms[b] and a > b:
            fail(f"{call_text}: filters {b} and {a} have the same L1 norm "
                 f"{fmt(norms[a].item())}; a stable order keeps {b} before {a}",
                 "l1_filter_order/stable")
    unchanged(weight, after, "conv_weight", call_text, diagnosis="l1_filter_order")
    if expected is not None and got != list(expected):
        fail(f"{what} is {got}, expected {list(expected)}", "l1_filter_order/order")


@ASSIGNMENT.hidden("l1_filter_order", points=2)
def l1_filter_order_hidden(student):
    l1_filter_order = student["l1_filter_order"]
    # signed sums would order these differently: norms 4, 2, 3
    check_l1_filter_order(l1_filter_order, [[[[-2.0, -2.0]]], [[[1.0, 1.0]]], [[[3.0, 0.0]]]],
                          expected=[1, 2, 0])
    # more input channels than output filters (index by dim 0), 3x3 kernels
    check_l1_filter_order(l1_filter_order, random_tensor(4, 6, 3, 3, seed=1))
    check_l1_filter_order(l1_filter_order, random_tensor(16, 3, 5, 5, seed=2, dtype=torch.float64),
                          dtype=torch.float64)
    # exact ties keep index order (values are powers of two, so every sum is exact)
    check_l1_filter_order(l1_filter_order, [[[[0.5, -0.5]]], [[[0.25, 0.0]]], [[[-1.0, 0.0]]],
                                            [[[0.0, 0.25]]], [[[0.75, 0.25]]]],
                          expected=[1, 3, 0, 2, 4])
    # a single filter
    check_l1_filter_order(l1_filter_order, [[[[1.0, 2.0], [3.0, 4.0]]]], expected=[0])


__all__ = ["CheckFailed", "echo_call", "shown", "dict_result", "mask_values", "smallest_pruned",
           "fits", "check_magnitude_mask", "check_raises_value_error", "check_global_masks",
           "check_snip_scores", "check_imp_step", "check_l1_filter_order", "SIGNED_HINT"]
