"""Checks of the ``pruning`` assignment: masks, SNIP, one IMP round, L1 order, and the lab.

Parts 1-6 are small functions checked on hand-made inputs. The lab (parts 7-9)
works on a LeNet-300-100 trained on ``mnist5k``: :func:`check_sensitivity_scan`
compares a per-layer scan with the reference scan of a fixed trained model,
:func:`check_sparsity_plan` trains the dense model itself, applies the
student's plan with the kit, fine-tunes for a fixed budget and awards 4, 2 or 0
points (:data:`PLAN_RULE`; the test cell shows the number, which nbgrader takes
as partial credit), and :func:`check_remove_neurons` compares a physically
smaller model with the masked one and its MACs with ``pk.metrics.macs``.

A test cell of ``solutions/pruning/pruning.ipynb`` reads::

    from importlib import reload
    import pruning_kit.course.checks.pruning as checks
    g = reload(checks)                        # clean helpers, whatever ran before
    with g.isolated(globals(), "magnitude_mask") as magnitude_mask:
        g.check_magnitude_mask(magnitude_mask, [[0.5, -2.0], [0.1, 1.0]], 0.5)

Each ``check_*`` builds fresh inputs, calls the student's function through
:func:`pruning_kit.course.checks.core.call` and raises ``AssertionError`` with
a message that says what was expected and, for the common mistakes, why.

Example:
    >>> import torch
    >>> def magnitude_mask(weight, sparsity):
    ...     k = round(sparsity * weight.numel())
    ...     mask = torch.ones_like(weight)
    ...     mask.view(-1)[weight.abs().flatten().argsort()[:k]] = 0
    ...     return mask
    >>> check_magnitude_mask(magnitude_mask, [[0.5, -2.0, 0.1], [-0.3, 1.0, 4.0]], 0.5,
    ...                      expected=[[0, 1, 0], [0, 1, 1]])
"""

import contextlib as _contextlib
import importlib as _importlib
import types as _types

import torch
import torch.nn.functional as F

from . import core as _core

_importlib.reload(_core)  # a test cell reloads this module: the core's helpers come back clean too

# check_raises, random_tensor, ...: re-exported for the test cells (``g.random_tensor(3, seed=1)``)
from .core import (SAFE, allowed_counts, call, check_close, check_raises,  # noqa: E402
                   check_unchanged, count_text, explain, first_mismatch, flatten, fmt, fmt_list,
                   fresh_tensor, is_plain_tensor, number, random_tensor, read_dict, snapshot,
                   tensor_values, type_name, unravel)

# Functions below look builtins up in the copy captured on the first import: replacing
# ``builtins.round`` or ``builtins.len`` in the notebook does not reach them.
__builtins__ = SAFE.builtins
SAFE.module_dicts[__name__] = globals()

FUNCTIONS = ("magnitude_mask", "global_magnitude_masks", "snip_scores", "snip_masks", "imp_step",
             "l1_filter_order", "sensitivity_scan", "sparsity_plan", "remove_neurons")
"""The functions students write, in notebook order."""

KIT = {
    "magnitude_mask": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step"),
    "global_magnitude_masks": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step"),
    "snip_scores": ("pruning_kit.prune.snip_scores", "pruning_kit.prune.snip"),
    "snip_masks": ("pruning_kit.prune.snip", "pruning_kit.prune.magnitude"),
    "imp_step": ("pruning_kit.prune.magnitude_step", "pruning_kit.prune.magnitude",
                 "pruning_kit.lottery.imp"),
    "l1_filter_order": ("pruning_kit.structured.l1_filter_order",
                        "pruning_kit.structured.l1_filter_scores",
                        "pruning_kit.structured.select_filters"),
    # evaluating (pk.train.evaluate) and listing layers (pk.models.prunable) stay allowed
    "sensitivity_scan": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step"),
    # a plan is the numbers the student chose from the scan, not global pruning's
    "sparsity_plan": ("pruning_kit.prune.magnitude", "pruning_kit.prune.snip",
                      "pruning_kit.prune.layer_sparsity"),
    "remove_neurons": ("pruning_kit.structured.remove_filters",
                       "pruning_kit.structured.l1_filter_prune",
                       "pruning_kit.structured.dependency_graph_prune",
                       "pruning_kit.metrics.macs"),
}
"""The kit functions that would do each graded function's work: they refuse while it is tested."""

# ---------------------------------------------------------------------------
# Masks: pruning by the smallest scores

def _mask_values(mask, what, shape, dtype=None):
    flat = tensor_values(mask, what, shape=shape, dtype=dtype)
    bad = [v for v in flat if v not in (0, 1)]
    if bad:
        raise AssertionError(explain(what, f" must contain only 0 and 1, found {fmt(bad[0])}"))
    return [int(v) for v in flat]


def _consistent(keep, scores):
    """True when the zeros of ``keep`` sit at the smallest ``scores``."""
    pruned = [s for k, s in zip(keep, scores) if not k]
    kept = [s for k, s in zip(keep, scores) if k]
    return not (pruned and kept and max(pruned) > min(kept))


def _check_smallest_pruned(keep, scores, fraction, what, *, score_name, alternatives=()):
    """keep: flat 0/1 list; scores: flat list (the value pruning orders by).

    alternatives: (scores, hint) pairs of a known mistake; the hint is added
    when the mask fits that mistake.
    """
    n = len(keep)
    zeros = n - sum(keep)
    counts, text = count_text(fraction, n, "zeros")
    if zeros not in counts:
        raise AssertionError(explain(what, f": mask has {zeros} zeros, expected {text}"))
    if not _consistent(keep, scores):
        worst = max(s for k, s in zip(keep, scores) if not k)
        best = min(s for k, s in zip(keep, scores) if k)
        message = (f": the zeros are not at the smallest {score_name}: an entry with "
                   f"{score_name} = {fmt(worst)} was pruned while one with {fmt(best)} was kept")
        for alt_scores, hint in alternatives:
            if _consistent(keep, alt_scores):
                message += f". {hint}"
                break
        raise AssertionError(explain(what, message))


_SIGNED_HINT = ("These zeros fit the smallest SIGNED values: rank by abs(weight), since a "
                "weight of -5 matters as much as one of +5")


def check_magnitude_mask(function, weight, sparsity, *, dtype=None, expected=None):
    """Check ``magnitude_mask(weight, sparsity)`` on one input.

    Contract: a tensor of 0/1 with the weight's shape and dtype, exactly
    ``round(sparsity * weight.numel())`` zeros (off by one allowed on a
    rounding boundary) at the smallest ``abs(weight)``; the weight unchanged.

    Args:
        function: the student's ``magnitude_mask``.
        weight: nested list of numbers, or a tensor (a copy is passed).
        sparsity: float in [0, 1].
        dtype: dtype to build ``weight`` with (default float32).
        expected: optional nested 0/1 list the mask must equal (use only where ties cannot occur).

    Example:
        >>> check_magnitude_mask(reference("magnitude_mask"), [3.0, -1.0, 2.0], 1 / 3,
        ...                      expected=[1, 0, 1])
    """
    w = fresh_tensor(weight, dtype, "weight")
    before = snapshot(w)
    shape, wdtype, wvals = before
    what = f"magnitude_mask(weight of shape {shape}, sparsity={sparsity!r})"
    mask = call(function, w, sparsity, what=what)
    check_unchanged(w, before, "weight", what)
    keep = _mask_values(mask, f"the mask of {what}", shape, wdtype)
    _check_smallest_pruned(keep, [abs(v) for v in wvals], sparsity, what,
                           score_name="abs(weight)", alternatives=[(wvals, _SIGNED_HINT)])
    if expected is not None:
        check_close(keep, flatten(expected), f"the mask of {what}", rtol=0, atol=0, shape=shape)


def _check_global(result, tensors, fraction, what, *, score_name, scores, signed=None,
                  dtypes=None):
    """Shared by global magnitude masks and SNIP masks."""
    names = list(tensors)
    masks = read_dict(result, f"the result of {what}", names)
    keep = {}
    for name in names:
        shape = tuple(SAFE.size(tensors[name]))
        keep[name] = _mask_values(masks[name], f"mask {name!r} of {what}", shape,
                                  dtypes.get(name) if dtypes else None)
    flat_keep = [k for name in names for k in keep[name]]
    flat_scores = [s for name in names for s in scores[name]]
    n = len(flat_keep)
    zeros = n - sum(flat_keep)
    counts, text = count_text(fraction, n, "zeros")
    if zeros not in counts:
        per_layer = ", ".join(f"{name!r}: {len(keep[name]) - sum(keep[name])}" for name in names)
        raise AssertionError(explain(what, f": {zeros} zeros in total ({per_layer}), expected {text} "
                             f"over all {n} entries"))
    pruned = [(s, name) for k, s, name in zip(flat_keep, flat_scores,
                                              [nm for nm in names for _ in keep[nm]]) if not k]
    kept = [(s, name) for k, s, name in zip(flat_keep, flat_scores,
                                            [nm for nm in names for _ in keep[nm]]) if k]
    if pruned and kept:
        worst = max(pruned)
        best = min(kept)
        if worst[0] > best[0]:
            local = all(len(keep[nm]) - sum(keep[nm]) in allowed_counts(fraction, len(keep[nm]))
                        and _consistent(keep[nm], scores[nm]) for nm in names)
            message = (f": the zeros are not at the smallest {score_name} over all layers: "
                       f"{score_name} = {fmt(worst[0])} in {worst[1]!r} was pruned while "
                       f"{fmt(best[0])} in {best[1]!r} was kept")
            if signed is not None and _consistent(
                    flat_keep, [v for name in names for v in signed[name]]):
                message += ". " + _SIGNED_HINT
            elif local and len(names) > 1:
                message += (". Every layer lost the same fraction: that is local pruning; "
                            "global pruning uses one threshold over all layers together")
            raise AssertionError(explain(what, message))
    return keep


def check_global_magnitude_masks(function, weights, sparsity, *, dtype=None, expected=None):
    """Check ``global_magnitude_masks(weights, sparsity)`` on one input.

    Contract: one threshold over all tensors; exactly ``round(sparsity * total)``
    zeros in total at the smallest ``abs(weight)``; a dict with the same keys,
    each mask 0/1 with its weight's shape; the weights unchanged.

    Args:
        function: the student's ``global_magnitude_masks``.
        weights: dict name -> nested list (or tensor).
        sparsity: float in [0, 1].
        dtype: dtype to build the weights with (default float32).
        expected: optional dict name -> nested 0/1 list.

    Example:
        >>> check_global_magnitude_masks(reference("global_magnitude_masks"),
        ...     {"a": [0.1, -0.2], "b": [3.0, -4.0]}, 0.5,
        ...     expected={"a": [0, 0], "b": [1, 1]})
    """
    _check_global_masks(function, weights, sparsity, argument="weights",
                        function_name="global_magnitude_masks", dtype=dtype, expected=expected,
                        by_magnitude=True)


def check_snip_masks(function, scores, sparsity, *, dtype=None, expected=None):
    """Check ``snip_masks(scores, sparsity)``: global, exact count, at the smallest scores.

    Args:
        function: the student's ``snip_masks``.
        scores: dict name -> nested list (or tensor) of non-negative scores.
        sparsity: float in [0, 1].
        dtype: dtype to build the scores with (default float32).
        expected: optional dict name -> nested 0/1 list.

    Example:
        >>> check_snip_masks(reference("snip_masks"), {"a": [0.1, 0.4], "b": [0.3, 0.2]}, 0.5,
        ...                  expected={"a": [0, 1], "b": [1, 0]})
    """
    _check_global_masks(function, scores, sparsity, argument="scores", function_name="snip_masks",
                        dtype=dtype, expected=expected, by_magnitude=False)


def _check_global_masks(function, values, sparsity, *, argument, function_name, dtype, expected,
                        by_magnitude):
    """The body of both global-mask checks: magnitude masks score ``abs(value)``, SNIP the value."""
    tensors, before = _fresh_dict(values, argument, dtype)
    shapes = ", ".join(f"{name!r}: {before[name][0]}" for name in tensors)
    what = f"{function_name}({{{shapes}}}, sparsity={sparsity!r})"
    result = call(function, dict(tensors), sparsity, what=what)
    _check_dict_unchanged(tensors, before, argument, what)
    signed = {name: before[name][2] for name in tensors}
    if by_magnitude:
        scores = {name: [abs(v) for v in signed[name]] for name in tensors}
        keep = _check_global(result, tensors, sparsity, what, score_name="abs(weight)",
                             scores=scores, signed=signed)
    else:
        keep = _check_global(result, tensors, sparsity, what, score_name="score", scores=signed)
    if expected is not None:
        for name in tensors:
            check_close(keep[name], flatten(expected[name]), f"mask {name!r} of {what}",
                        rtol=0, atol=0, shape=before[name][0])


def _fresh_dict(values, argument, dtype):
    """Fresh tensors from a dict name -> values, and their snapshots (to prove them untouched)."""
    if not isinstance(values, dict) or not values:
        raise TypeError(f"{argument} must be a non-empty dict name -> values")
    tensors = {name: fresh_tensor(v, dtype, f"{argument}[{name!r}]") for name, v in values.items()}
    return tensors, {name: snapshot(t) for name, t in tensors.items()}


def _check_dict_unchanged(tensors, before, argument, what):
    for name, t in tensors.items():
        check_unchanged(t, before[name], f"{argument}[{name!r}]", what)


# ---------------------------------------------------------------------------
# SNIP scores

def _prunable_names(model):
    return [name for name, module in SAFE.named_modules(model)
            if isinstance(module, (SAFE.Linear, SAFE.Conv2d))]


def _expected_snip(model, inputs, targets):
    """|dL/dw * w| / sum over all layers, in float64 on a copy of the model."""
    twin = SAFE.deepcopy(model).double()
    modules = dict(SAFE.named_modules(twin))
    names = _prunable_names(twin)
    weights = [modules[name].weight for name in names]
    with SAFE.enable_grad():
        loss = SAFE.cross_entropy(twin(inputs.double()), targets)
        grads = SAFE.autograd_grad(loss, weights)
    raw = {name: [abs(g * w) for g, w in zip(flatten(SAFE.tolist(grad)),
                                             flatten(SAFE.tolist(weight)))]
           for name, grad, weight in zip(names, grads, weights)}
    grads_flat = {name: flatten(SAFE.tolist(grad)) for name, grad in zip(names, grads)}
    total = SAFE.fsum(v for name in names for v in raw[name])
    return names, {name: [v / total for v in raw[name]] for name in names}, grads_flat


def check_snip_scores(function, model, inputs, targets, *, stale_grad=None,
                      rtol=1e-4, atol=1e-7):
    """Check ``snip_scores(model, inputs, targets)`` against float64 autograd.

    Contract: a dict module name -> tensor for every ``nn.Linear``/``nn.Conv2d``
    weight, ``abs(grad * weight)`` of the mean cross-entropy on the batch
    divided by the sum over all layers; the model's weights unchanged.

    Args:
        function: the student's ``snip_scores``.
        model: an ``nn.Module`` (the test builds it).
        inputs, targets: the batch.
        stale_grad: if a float, every parameter's ``.grad`` is set to this value
            before the call (a correct function ignores gradients left over).
        rtol, atol: tolerance on each score.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
        >>> x, y = random_tensor(4, 3), torch.tensor([0, 1, 1, 0])
        >>> check_snip_scores(reference("snip_scores"), model, x, y)
    """
    if not isinstance(model, SAFE.Module):
        raise TypeError(f"model must be an nn.Module, got {type_name(model)}")
    modules = dict(SAFE.named_modules(model))
    layers = _prunable_names(model)
    if not layers or any(type(modules[n]) not in (SAFE.Linear, SAFE.Conv2d) for n in layers):
        raise AssertionError("the test model should be built from plain nn.Linear / nn.Conv2d "
                             "layers: was torch.nn changed before the tests ran?")
    names, expected, grads = _expected_snip(model, inputs, targets)
    weights = {name: modules[name].weight for name in names}
    before = {name: snapshot(w) for name, w in weights.items()}
    if stale_grad is not None:
        for param in [p for _, p in SAFE.named_parameters(model)]:
            SAFE.set_grad(param, SAFE.full(tuple(SAFE.size(param)), float(stale_grad),
                                             dtype=SAFE.get_dtype(param)))
    what = f"snip_scores(model with layers {names}, inputs of shape {tuple(SAFE.size(inputs))})"
    result = call(function, model, inputs, targets, what=what)
    for name, w in weights.items():
        check_unchanged(w, before[name], f"weight of {name!r}", what)
        if modules[name].weight is not w:
            raise AssertionError(explain(what, f" replaced the weight parameter of {name!r}: "
                                 f"leave the model's parameters as they were"))
    scores = read_dict(result, f"the result of {what}", names)
    actual = {}
    for name in names:
        actual[name] = tensor_values(scores[name], f"scores[{name!r}] of {what}",
                                     shape=before[name][0], dtypes=SAFE.floating)
    for name in names:
        found = first_mismatch(actual[name], expected[name], rtol, atol)
        if found is None:
            continue
        hint = _snip_hint(actual, expected, grads, before, names, stale_grad, rtol, atol)
        i, a, e = found
        raise AssertionError(explain(what, f": scores[{name!r}] element {unravel(i, before[name][0])} "
                             f"is {fmt(a)}, expected {fmt(e)}" + (f". {hint}" if hint else "")))


def _snip_hint(actual, expected, grads, before, names, stale_grad, rtol, atol):
    def matches(candidate):
        return all(first_mismatch(actual[n], candidate[n], rtol, atol) is None for n in names)

    def normalised(raw, per_layer=False):
        if per_layer:
            return {n: [v / (SAFE.fsum(raw[n]) or 1.0) for v in raw[n]] for n in names}
        total = SAFE.fsum(v for n in names for v in raw[n]) or 1.0
        return {n: [v / total for v in raw[n]] for n in names}

    weights = {n: before[n][2] for n in names}
    abs_grad = {n: [abs(g) for g in grads[n]] for n in names}
    raw = {n: [abs(g * w) for g, w in zip(grads[n], weights[n])] for n in names}
    if matches(normalised(abs_grad)):
        return "These are |grad| only: SNIP multiplies by the weight, abs(grad * weight)"
    if any(v < 0 for n in names for v in actual[n]):
        return "Some scores are negative: take abs(grad * weight)"
    if matches(normalised(raw, per_layer=True)):
        return "Each layer sums to 1: divide by the sum over ALL layers, not per layer"
    if matches(raw):
        return "The scores do not sum to 1: divide by the sum over all layers"
    if stale_grad is not None:
        stale = {n: [abs((g + stale_grad) * w) for g, w in zip(grads[n], weights[n])]
                 for n in names}
        if matches(normalised(stale)):
            return ("The gradients include what was already stored in .grad before the call: "
                    "zero them first (model.zero_grad()) or use torch.autograd.grad")
    return None


# ---------------------------------------------------------------------------
# Iterative magnitude pruning step

def check_imp_step(function, trained, init, masks, rate, *, dtype=None):
    """Check ``imp_step(trained, init, masks, rate)`` on one input.

    Contract: per layer, prune ``round(rate * remaining)`` more weights among
    those still unmasked, by ``abs(trained)``; pruned weights stay pruned;
    return ``(new_masks, init * new_masks)``; inputs unchanged.

    Args:
        function: the student's ``imp_step``.
        trained, init, masks: dicts name -> nested list (or tensor), same keys and shapes.
        rate: float in [0, 1].
        dtype: dtype to build the tensors with (default float32).

    Example:
        >>> check_imp_step(reference("imp_step"), {"a": [4.0, -1.0, 3.0, 2.0]},
        ...                {"a": [1.0, 1.0, 1.0, 1.0]}, {"a": [1.0, 1.0, 0.0, 1.0]}, 0.34)
    """
    names = list(trained)
    if not names or list(init) != names or list(masks) != names:
        raise TypeError("trained, init and masks must be non-empty dicts with the same keys")
    t_trained, trained_before = _fresh_dict(trained, "trained", dtype)
    t_init, init_before = _fresh_dict(init, "init", dtype)
    t_masks, masks_before = _fresh_dict(masks, "masks", dtype)
    snaps = {(kind, n): snap for kind, group in
             (("trained", trained_before), ("init", init_before), ("masks", masks_before))
             for n, snap in group.items()}
    shapes = ", ".join(f"{n!r}: {snaps[('trained', n)][0]}" for n in names)
    what = f"imp_step(trained, init, masks with layers {{{shapes}}}, rate={rate!r})"
    result = call(function, dict(t_trained), dict(t_init), dict(t_masks), rate, what=what)
    _check_dict_unchanged(t_trained, trained_before, "trained", what)
    _check_dict_unchanged(t_init, init_before, "init", what)
    _check_dict_unchanged(t_masks, masks_before, "masks", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(explain(what, f" should return a tuple (new_masks, rewound_weights), "
                             f"got {type_name(result)}"))
    new_masks = read_dict(result[0], f"new_masks of {what}", names)
    rewound = read_dict(result[1], f"the rewound weights of {what}", names)
    for n in names:
        shape, _, old = snaps[("masks", n)]
        trained_abs = [abs(v) for v in snaps[("trained", n)][2]]
        new = _mask_values(new_masks[n], f"new_masks[{n!r}] of {what}", shape)
        revived = [i for i, (o, m) in enumerate(zip(old, new)) if o == 0 and m == 1]
        if revived:
            raise AssertionError(explain(what, f": new_masks[{n!r}] brings back weight "
                                 f"{unravel(revived[0], shape)}, which the old mask had pruned: "
                                 f"pruned weights stay pruned"))
        remaining = [i for i, o in enumerate(old) if o == 1]
        newly = [i for i in remaining if new[i] == 0]
        counts, text = count_text(rate, len(remaining), "weights")
        if len(newly) not in counts:
            message = (f": layer {n!r} pruned {len(newly)} more weights, expected {text} "
                       f"of the {len(remaining)} still unmasked")
            total = len(old)
            if len(newly) in allowed_counts(rate, total) and total != len(remaining):
                message += (f". {len(newly)} = round({rate!r} * {total}) prunes a fraction of ALL "
                            f"weights; IMP prunes a fraction of those that remain")
            raise AssertionError(explain(what, message))
        sub_keep = [new[i] for i in remaining]
        if not _consistent(sub_keep, [trained_abs[i] for i in remaining]):
            pruned = [trained_abs[i] for i in newly]
            kept = [trained_abs[i] for i in remaining if new[i] == 1]
            message = (f": layer {n!r}: among the unmasked weights, one with "
                       f"abs(trained) = {fmt(max(pruned))} was pruned while one with "
                       f"{fmt(min(kept))} was kept")
            if _consistent(sub_keep, [snaps[("trained", n)][2][i] for i in remaining]):
                message += ". " + _SIGNED_HINT
            raise AssertionError(explain(what, message))
        init_values = snaps[("init", n)][2]
        rew = tensor_values(rewound[n], f"rewound weights {n!r} of {what}", shape=shape,
                            dtype=snaps[("init", n)][1])
        expected = [v * m for v, m in zip(init_values, new)]
        found = first_mismatch(rew, expected, 0, 0)
        if found is not None:
            trained_values = snaps[("trained", n)][2]
            hint = ""
            if first_mismatch(rew, [v * m for v, m in zip(trained_values, new)], 0, 0) is None:
                hint = (". These are trained * mask: a lottery ticket rewinds to the initial "
                        "weights, init * new_mask")
            i, a, e = found
            raise AssertionError(explain(what, f": rewound weights {n!r} element {unravel(i, shape)} "
                                 f"is {fmt(a)}, expected init * new_mask = {fmt(e)}{hint}"))


# ---------------------------------------------------------------------------
# L1 filter order

def check_l1_filter_order(function, conv_weight, *, dtype=None, expected=None):
    """Check ``l1_filter_order(conv_weight)``: filter indices by ascending L1 norm, stable.

    Args:
        function: the student's ``l1_filter_order``.
        conv_weight: nested list (out x in x kh x kw) or tensor.
        dtype: dtype to build it with (default float32).
        expected: optional list of indices.

    Example:
        >>> check_l1_filter_order(reference("l1_filter_order"),
        ...     [[[[1.0]]], [[[-0.5]]], [[[0.5]]]], expected=[1, 2, 0])
    """
    w = fresh_tensor(conv_weight, dtype, "conv_weight")
    before = snapshot(w)
    shape, _, values = before
    if len(shape) != 4:
        raise ValueError(f"conv_weight must be 4-D (out, in, kh, kw), got shape {shape}")
    what = f"l1_filter_order(conv_weight of shape {shape})"
    order = call(function, w, what=what)
    check_unchanged(w, before, "conv_weight", what)
    out = shape[0]
    per = len(values) // out if out else 0
    norms = [SAFE.fsum(abs(v) for v in values[f * per:(f + 1) * per]) for f in range(out)]
    got = tensor_values(order, f"the result of {what}", dtype=SAFE.int64)
    if len(got) != out or tuple(SAFE.size(order)) != (out,):
        raise AssertionError(explain(f"the result of {what}", f" has shape {tuple(SAFE.size(order))}, "
                             f"expected ({out},): one index per output filter (weight.shape[0])"))
    if sorted(got) != list(range(out)):
        raise AssertionError(explain(f"the result of {what}", f" should contain each filter index "
                             f"0..{out - 1} once, got {fmt_list(got)}"))
    for a, b in zip(got, got[1:]):
        tol = 1e-6 * max(1.0, norms[a], norms[b])
        if norms[a] > norms[b] + tol:
            message = (f": filter {a} (L1 norm {fmt(norms[a])}) comes before filter {b} "
                       f"(L1 norm {fmt(norms[b])}); the order must be ascending")
            if got == sorted(range(out), key=lambda f: -norms[f]):
                message += " (yours is descending)"
            elif any(v < 0 for v in values):
                message += ". The L1 norm sums abs(w) over in, kh, kw"
            raise AssertionError(explain(what, message))
        if norms[a] == norms[b] and a > b:
            raise AssertionError(explain(what, f": filters {b} and {a} have the same L1 norm "
                                 f"{fmt(norms[a])}; a stable order keeps {b} before {a}"))
    if expected is not None:
        check_close(got, list(expected), f"the result of {what}", rtol=0, atol=0)


# ---------------------------------------------------------------------------
# The lab: a per-layer sensitivity scan, a sparsity plan, physical neuron removal
#
# The kit functions the lab checks train and measure with, captured on the first
# import (before any notebook cell runs): a notebook that rebinds ``pk.train.fit``
# or ``pk.metrics.macs`` does not change what the checks compute.
try:
    _LAB  # noqa: B018 - defined by an earlier import of this module
except NameError:
    import pruning_kit as _pk

    _LAB = _types.SimpleNamespace(
        load=_pk.data.load, TensorData=_pk.data.TensorData,
        lenet_300_100=_pk.models.lenet_300_100, fit=_pk.train.fit,
        magnitude=_pk.prune.magnitude, finalize=_pk.prune.finalize, macs=_pk.metrics.macs,
        fork_rng=torch.random.fork_rng, manual_seed=torch.manual_seed,
        Sequential=torch.nn.Sequential, ReLU=torch.nn.ReLU, Flatten=torch.nn.Flatten,
        randperm=torch.randperm, ones=torch.ones, float64=torch.float64,
        module_train=torch.nn.Module.train, named_buffers=torch.nn.Module.named_buffers,
        load_state_dict=torch.nn.Module.load_state_dict, state_dict=torch.nn.Module.state_dict,
    )
    del _pk
    _TRAINED = {}  # (kind, seed, epochs) -> the model trained_model returns copies of

LAB_DATASET = "mnist5k"
"""The data of the lab: the embedded 5,000 MNIST digits (4,000 train, 1,000 test)."""

DENSE_RECIPE = {"epochs": 10, "lr": 2e-3, "seed": 0}
"""How the lab's dense LeNet-300-100 is trained (after ``torch.manual_seed(0)``; Adam, batch 64)."""

FINE_TUNE = {"epochs": 3, "lr": 1e-3, "seed": 0}
"""The fixed fine-tuning budget a sparsity plan gets (Adam, batch 64, one thread)."""

PLAN_LAYERS = ("fc1", "fc2", "fc3")
"""The layers a sparsity plan names: the prunable layers of LeNet-300-100."""

PLAN_RULE = {"full": (10, 4), "partial": (5, 2), "within_correct": 10, "dense_floor": 900}
"""Points for a plan: 4 at >= 10x fewer weights, 2 at >= 5x, each within 1 point (10 of
1,000 test images) of the dense accuracy; the dense model must reach 900 correct."""


def _quietly():
    """Silence warnings and stderr while the checks train (stderr would fail the cell)."""
    stack = _contextlib.ExitStack()
    stack.enter_context(SAFE.catch_warnings())
    SAFE.simplefilter("ignore")
    stack.enter_context(SAFE.redirect_stderr(SAFE.StringIO()))
    return stack


def _correct(model, data):
    """How many examples of ``data`` the model classifies right (argmax, first on ties)."""
    _LAB.module_train(model, False)
    with SAFE.no_grad():
        logits = SAFE.module_call(model, data.images)
    rows = SAFE.tolist(logits)
    labels = SAFE.tolist(data.labels)
    return sum(1 for row, y in zip(rows, labels)
               if max(range(len(row)), key=row.__getitem__) == y)


def lab_data():
    """``(train, test)`` of the lab: :data:`LAB_DATASET` as ``pk.data.load`` returns it.

    Example:
        >>> train, test = lab_data()
        >>> len(train), len(test)
        (4000, 1000)
    """
    return _LAB.load(LAB_DATASET)


def train_dense(train=None):
    """The lab's dense LeNet-300-100: ``torch.manual_seed(0)``, then :data:`DENSE_RECIPE`.

    The same weights as the notebook's lab setup cell, on one thread, without
    touching the caller's random state.

    Args:
        train: the training data (default: :func:`lab_data`'s).

    Returns:
        the trained model, in eval mode.
    """
    if train is None:
        train, _ = lab_data()
    with _LAB.fork_rng(), _quietly():
        _LAB.manual_seed(0)
        model = _LAB.lenet_300_100()
        _LAB.fit(model, train, progress=False, threads=1, **DENSE_RECIPE)
    return model


def _plan_values(plan, what):
    """A student's plan, checked: exactly the keys of :data:`PLAN_LAYERS`, numbers in [0, 1]."""
    entries = read_dict(plan, what, list(PLAN_LAYERS))
    values = {}
    for name in PLAN_LAYERS:
        value = number(entries[name], f"{what}[{name!r}]")
        if not (SAFE.isfinite(value) and 0 <= value <= 1):
            raise AssertionError(f"{what}[{name!r}] must be a sparsity in [0, 1], got "
                                 f"{fmt(value)}: 0.9 prunes 90% of the layer's weights")
        values[name] = float(value)
    return values


def _plan_sizes():
    model = _LAB.lenet_300_100()
    modules = dict(SAFE.named_modules(model))
    return {name: len(flatten(SAFE.tolist(modules[name].weight))) for name in PLAN_LAYERS}


def plan_kept(plan):
    """Weights a plan keeps in each layer of LeNet-300-100: ``n - round(s * n)``.

    Example:
        >>> plan_kept({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9})
        {'fc1': 23520, 'fc2': 3000, 'fc3': 100}
    """
    sizes = _plan_sizes()
    return {name: sizes[name] - round(plan[name] * sizes[name]) for name in PLAN_LAYERS}


def plan_outcome(plan, dense=None):
    """Apply a sparsity plan to the lab's dense model, fine-tune it, and score it.

    What the hidden test of ``sparsity_plan`` runs: the dense LeNet-300-100 of
    :func:`train_dense` (or a copy of ``dense``), each layer pruned by magnitude
    at its own sparsity (``pk.prune.magnitude(model, 0.0, scope="local",
    rates=plan)``), fine-tuned with :data:`FINE_TUNE`, then the kept weights
    and the correct test predictions counted.

    Args:
        plan: dict ``{"fc1": s1, "fc2": s2, "fc3": s3}`` of sparsities in [0, 1].
        dense: a trained LeNet-300-100 to start from (copied, not changed);
            default: train it here as :func:`train_dense` does.

    Returns:
        a namespace with ``dense_correct``, ``pruned_correct``, ``total``
        (weights of the three layers), ``kept``, ``ratio`` (total / kept),
        ``points`` and ``text`` (one line for the student).
    """
    values = _plan_values(plan, "the plan")
    train, test = lab_data()
    model = _LAB.lenet_300_100()
    if dense is None:
        dense = train_dense(train)
    if not isinstance(dense, SAFE.Module):
        raise TypeError(f"dense must be a trained LeNet-300-100, got {type_name(dense)}")
    _LAB.load_state_dict(model, {k: SAFE.clone(SAFE.detach(v))
                                 for k, v in _LAB.state_dict(dense).items()})
    dense_correct = _correct(model, test)
    with _LAB.fork_rng(), _quietly():
        _LAB.magnitude(model, 0.0, scope="local", rates=dict(values))
        _LAB.fit(model, train, progress=False, threads=1, **FINE_TUNE)
        _LAB.finalize(model)
    modules = dict(SAFE.named_modules(model))
    kept = sum(1 for name in PLAN_LAYERS
               for w in flatten(SAFE.tolist(modules[name].weight)) if w != 0)
    total = sum(_plan_sizes().values())
    pruned_correct = _correct(model, test)
    return _plan_score(values, dense_correct, pruned_correct, kept, total, len(test))


def _plan_score(values, dense_correct, pruned_correct, kept, total, n_test):
    rule = PLAN_RULE
    within = pruned_correct >= dense_correct - rule["within_correct"]
    ratio = total / kept if kept else float("inf")
    points = 0
    for level in ("full", "partial"):
        times, level_points = rule[level]
        if within and kept * times <= total:
            points = level_points
            break
    drop = (dense_correct - pruned_correct) * 100 / n_test
    change = (f"{drop:.1f} points below" if drop > 0 else
              f"{-drop:.1f} points above" if drop < 0 else "the same as")
    text = (f"{kept:,} of {total:,} weights kept ({ratio:.2f}x fewer); accuracy after "
            f"fine-tuning {pruned_correct / n_test:.3f}, {change} the dense "
            f"{dense_correct / n_test:.3f}: {points} of {rule['full'][1]} points")
    return _types.SimpleNamespace(plan=values, dense_correct=dense_correct,
                                  pruned_correct=pruned_correct, n_test=n_test, kept=kept,
                                  total=total, ratio=ratio, within=within, points=points,
                                  text=text)


def check_plan_format(function):
    """Check that ``sparsity_plan()`` returns a valid plan (the visible test; no training).

    Prints the weights the plan keeps and the compression it reaches.

    Example:
        >>> check_plan_format(reference("sparsity_plan"))  # doctest: +ELLIPSIS
        sparsity_plan(): keeps 22,916 of 266,200 weights (11.62x fewer); ...
    """
    plan = call(function, what="sparsity_plan")
    values = _plan_values(plan, "the plan")
    kept = plan_kept(values)
    total = sum(_plan_sizes().values())
    ratio = total / sum(kept.values()) if sum(kept.values()) else float("inf")
    layers = ", ".join(f"{name} {kept[name]:,}" for name in PLAN_LAYERS)
    print(f"sparsity_plan(): keeps {sum(kept.values()):,} of {total:,} weights ({ratio:.2f}x "
          f"fewer); per layer: {layers}")
    return values


def check_sparsity_plan(function, dense=None):
    """Score ``sparsity_plan()``: prune the lab's dense model, fine-tune, count (partial credit).

    Rule (:data:`PLAN_RULE`): 4 points when the plan keeps at most a tenth of
    the 266,200 weights of fc1, fc2 and fc3 and the fine-tuned model gets at
    most 10 fewer of the 1,000 test images right than the dense one (1 point
    of accuracy); 2 points at a fifth of the weights under the same accuracy
    rule; otherwise 0, with an ``AssertionError`` that says why.

    Args:
        function: the student's ``sparsity_plan``.
        dense: a trained dense model to start from (tests only; the hidden
            test trains its own with :func:`train_dense`).

    Returns:
        the points earned (4 or 2), for the test cell to show: nbgrader gives
        a test cell whose result is a number that many points.
    """
    plan = call(function, what="sparsity_plan")
    values = _plan_values(plan, "the plan")
    outcome = plan_outcome(values, dense)
    if outcome.dense_correct < PLAN_RULE["dense_floor"]:
        raise AssertionError(f"The dense model reached only {outcome.dense_correct} of "
                             f"{outcome.n_test} correct: was pruning_kit or torch changed in "
                             f"this notebook? The lab's dense LeNet-300-100 gets about 944")
    if outcome.points:
        print(f"sparsity_plan: {outcome.text}")
        return outcome.points
    if not outcome.within:
        raise AssertionError(
            f"The plan loses more than 1 point of accuracy: {outcome.text}. A plan must stay "
            f"within 1 point (at most {PLAN_RULE['within_correct']} fewer correct of "
            f"{outcome.n_test}) after the fixed fine-tuning: prune the sensitive layers less")
    raise AssertionError(
        f"The plan keeps too many weights for credit: {outcome.text}. 2 points need at "
        f"least 5x fewer (at most {outcome.total // 5:,} kept), 4 points 10x fewer "
        f"(at most {outcome.total // 10:,})")


# --- the sensitivity scan

def trained_model(kind="lenet", seed=0, epochs=1):
    """A small model trained on the lab's data, the same every time, and the test data.

    Args:
        kind: ``"lenet"`` (LeNet-300-100) or ``"conv"`` (a conv layer, ReLU and
            a linear layer: prunable layers ``"0"`` and ``"3"``).
        seed: seeds the initial weights.
        epochs: training epochs (Adam, lr 2e-3, batch 64, one thread).

    Returns:
        ``(model, test)``: the model in eval mode and the first 500 test images of the lab.

    Example:
        >>> model, test = trained_model("conv")
        >>> [name for name, _ in model.named_children()], len(test)
        (['0', '1', '2', '3'], 500)
    """
    if kind not in ("lenet", "conv"):
        raise ValueError(f"kind must be 'lenet' or 'conv', got {kind!r}")
    train, test = lab_data()
    test = _LAB.TensorData(test.images[:500], test.labels[:500], name="mnist5k test, 500")
    key = (kind, seed, epochs)
    if key not in _TRAINED:  # each kernel trains a model once; callers get copies
        with _LAB.fork_rng(), _quietly():
            _LAB.manual_seed(seed)
            if kind == "lenet":
                model = _LAB.lenet_300_100()
            else:
                model = _LAB.Sequential(SAFE.Conv2d(1, 4, 5, stride=3), _LAB.ReLU(),
                                        _LAB.Flatten(), SAFE.Linear(4 * 8 * 8, 10))
            _LAB.fit(model, train, epochs=epochs, lr=2e-3, seed=seed, progress=False, threads=1)
        _TRAINED[key] = model
    return _LAB.module_train(SAFE.deepcopy(_TRAINED[key]), False), test


def _model_snapshot(model):
    entries = [(f"parameter {n}", p) for n, p in SAFE.named_parameters(model)]
    entries += [(f"buffer {n}", b) for n, b in _LAB.named_buffers(model)]
    modules = [(n, type(m)) for n, m in SAFE.named_modules(model)]
    return modules, [(name, t, snapshot(t)) for name, t in entries]


def _check_model_unchanged(model, before, what, fix):
    modules, entries = before
    now_modules = [(n, type(m)) for n, m in SAFE.named_modules(model)]
    now_names = [f"parameter {n}" for n, _ in SAFE.named_parameters(model)]
    now_names += [f"buffer {n}" for n, _ in _LAB.named_buffers(model)]
    if now_modules != modules or now_names != [name for name, _, _ in entries]:
        raise AssertionError(explain(what, f" changed the model's layers or parameters: {fix}"))
    current = dict(SAFE.named_parameters(model))
    current.update({n: b for n, b in _LAB.named_buffers(model)})
    for name, _, snap in entries:
        tensor = current[name.split(" ", 1)[1]]
        if not is_plain_tensor(tensor) or snapshot(tensor) != snap:
            raise AssertionError(explain(what, f" changed the model's {name}: {fix}"))


def _smallest_first(weight, signed=False):
    """Flat indices of ``weight`` from the smallest ``abs(weight)`` (or signed value) up, stable."""
    with SAFE.no_grad():
        scores = SAFE.detach(weight).flatten().double()
        return (scores if signed else scores.abs()).argsort(stable=True)


def _scan(model, data, sparsities, variant="correct"):
    """The per-layer scan (``variant="correct"``) or a known mistake, as accuracies.

    Pruning ``round(s * n)`` weights in the order of :func:`_smallest_first` is
    the magnitude mask; pruning a layer that already has zeros (the
    ``"cumulative"`` mistake) prunes the zeros first, the same order again.
    """
    names = _prunable_names(model)
    modules = dict(SAFE.named_modules(model))
    orders = {name: _smallest_first(modules[name].weight, signed=variant == "signed")
              for name in names}
    n = len(data)
    result = {}
    shared = SAFE.deepcopy(model)
    for name in names:
        result[name] = []
        for s in sparsities:
            if variant == "cumulative":
                twin = shared  # earlier layers stay pruned
                targets = [name]
            else:
                twin = SAFE.deepcopy(model)
                targets = names if variant == "all layers" else [name]
            twin_modules = dict(SAFE.named_modules(twin))
            with SAFE.no_grad():
                for target in targets:
                    weight = twin_modules[target].weight
                    k = round(s * len(orders[target]))
                    weight.view(-1)[orders[target][:k]] = 0.0
            result[name].append(_correct(twin, data) / n)
    return result


_SCAN_HINTS = (
    ("cumulative", "Layers scanned earlier were still pruned: restore each layer (or work on a "
                   "fresh copy of the model) before pruning the next one"),
    ("all layers", "These are the accuracies with EVERY layer pruned at once: prune only the "
                   "layer being scanned and leave the others as they are"),
    ("signed", "These fit pruning the smallest SIGNED weights: rank by abs(weight)"),
)


def check_sensitivity_scan(function, model, data, sparsities):
    """Check ``sensitivity_scan(model, data, sparsities)`` against the reference scan.

    Contract: a dict with one key per ``nn.Linear``/``nn.Conv2d`` layer (names
    as in ``model.named_modules()``), each a list of accuracies in [0, 1], one
    per sparsity in the given order: the accuracy on ``data`` with only that
    layer magnitude-pruned (exactly ``round(s * n)`` smallest ``abs(weight)``
    zeroed), no retraining; the model itself unchanged. Each accuracy may
    differ from the reference by one test example (evaluation in other batch
    sizes can flip a near tie).

    Args:
        function: the student's ``sensitivity_scan``.
        model: a trained model (the test builds it with :func:`trained_model`).
        data: the test data (a ``pk.data.TensorData``).
        sparsities: list of floats in [0, 1].

    Example:
        >>> model, test = trained_model("conv")
        >>> check_sensitivity_scan(reference("sensitivity_scan"), model, test, [0.0, 0.9])
    """
    sparsities = [float(s) for s in sparsities]
    names = _prunable_names(model)
    expected = _scan(model, data, sparsities)  # before the call: the data stay as given
    before = _model_snapshot(model)
    images = snapshot(data.images)
    what = "sensitivity_scan"
    result = call(function, model, data, list(sparsities), what=what)
    _check_model_unchanged(model, before, what,
                           "prune a copy (copy.deepcopy(model)), or put every weight back")
    check_unchanged(data.images, images, "data.images", what)
    scan = read_dict(result, "the scan", names)
    n = len(data)
    tolerance = 1 / n + 1e-9
    actual = {}
    for name in names:
        values = scan[name]
        if type(values) not in (list, tuple) or len(values) != len(sparsities):
            got = (f"{type_name(values)} of length {len(values)}"
                   if type(values) in (list, tuple) else type_name(values))
            raise AssertionError(f"scan[{name!r}] should be a list with one accuracy per "
                                 f"sparsity ({len(sparsities)}), got {got}")
        actual[name] = [number(v, f"scan[{name!r}][{i}]") for i, v in enumerate(values)]
    for name in names:
        for i, (a, e) in enumerate(zip(actual[name], expected[name])):
            if SAFE.isfinite(a) and abs(a - e) <= tolerance:
                continue
            message = (f"scan[{name!r}] at sparsity {fmt(sparsities[i])} is {fmt(a)}, "
                       f"expected {e:.4f}: accuracy on the data with only {name!r} pruned")
            hint = _scan_hint(actual, model, data, sparsities, expected, tolerance)
            raise AssertionError(message + (f". {hint}" if hint else ""))


def _scan_hint(actual, model, data, sparsities, expected, tolerance):
    names = list(expected)

    def matches(candidate):
        return all(SAFE.isfinite(a) and abs(a - e) <= tolerance
                   for name in names for a, e in zip(actual[name], candidate[name]))

    if matches({n: [1 - v for v in expected[n]] for n in names}):
        return "These are error rates (1 - accuracy): return the accuracy"
    if matches({n: [100 * v for v in expected[n]] for n in names}):
        return "These are percentages: return accuracies as fractions in [0, 1]"
    for variant, hint in _SCAN_HINTS:
        if matches(_scan(model, data, sparsities, variant)):
            return hint
    return None


# --- removing neurons

def lenet(in_features=784, widths=(300, 100), num_classes=10, seed=0):
    """A LeNet-300-100 (``pk.models.lenet_300_100``) with hidden widths ``widths``.

    Layers ``fc1`` (in_features -> widths[0]), ``fc2`` and ``fc3``, ReLU between;
    the weights drawn with ``seed``, without touching the caller's random state.

    Example:
        >>> model = lenet(6, (5, 4), 3)
        >>> model.fc2
        Linear(in_features=5, out_features=4, bias=True)
    """
    with _LAB.fork_rng():
        _LAB.manual_seed(seed)
        model = _LAB.lenet_300_100(in_features, num_classes)
        if tuple(widths) != (300, 100):
            model.fc1 = SAFE.Linear(in_features, widths[0])
            model.fc2 = SAFE.Linear(widths[0], widths[1])
            model.fc3 = SAFE.Linear(widths[1], num_classes)
    return _LAB.module_train(model, False)


def random_keep(n, removed, seed=0):
    """A bool tensor of ``n`` neurons with exactly ``removed`` of them False (removed).

    Example:
        >>> random_keep(5, 2, seed=1).sum().item()
        3
    """
    generator = SAFE.Generator().manual_seed(seed)
    keep = _LAB.ones(n, dtype=SAFE.bool)
    keep[_LAB.randperm(n, generator=generator)[:removed]] = False
    return keep


def _linear_layers(model):
    modules = dict(SAFE.named_modules(model))
    return [modules[name] for name in ("fc1", "fc2", "fc3")]


def _masked_output(model, keep, x):
    """The masked model's output in float64: each removed neuron's output is 0."""
    layers = _linear_layers(model)
    h = SAFE.clone(SAFE.detach(x)).flatten(1).to(_LAB.float64)
    with SAFE.no_grad():
        for name, layer in zip(("fc1", "fc2", "fc3"), layers):
            h = F.linear(h, layer.weight.to(_LAB.float64),
                         None if layer.bias is None else layer.bias.to(_LAB.float64))
            if name != "fc3":
                h = h.clamp(min=0)
                if name in keep:
                    h = h * keep[name].to(_LAB.float64)
    return flatten(SAFE.tolist(h))


def _count_macs(model, x, what):
    """MACs per example of the Linear/Conv2d layers that run on ``x`` (student code via call)."""
    total = [0]

    def hook(module, inputs, output):
        size = tuple(SAFE.size(output))
        if isinstance(module, SAFE.Linear):
            positions = 1
            for d in size[1:-1]:
                positions *= d
            total[0] += positions * module.in_features * module.out_features
        else:
            w = tuple(SAFE.size(module.weight))
            total[0] += size[2] * size[3] * w[0] * w[1] * w[2] * w[3]

    handles = [m.register_forward_hook(hook) for _, m in SAFE.named_modules(model)
               if isinstance(m, (SAFE.Linear, SAFE.Conv2d))]
    try:
        with SAFE.no_grad():
            call(SAFE.module_call, model, x, what=what)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def check_remove_neurons(function, model, keep, *, batch=4, seed=0, images=False):
    """Check ``remove_neurons(model, keep)``: a smaller model, the same outputs, the MACs saved.

    Contract: returns ``(small, macs_saved)``. ``small`` is a new model whose
    fc1/fc2 have only the kept neurons (fewer rows in that layer, fewer input
    columns in the next) and whose outputs equal the masked model's (each
    removed neuron's output set to 0); ``macs_saved`` is the int
    ``macs(model) - macs(small)`` per example (as ``pk.metrics.macs`` counts:
    ``in_features * out_features`` per Linear layer). ``model`` and ``keep``
    are not changed.

    Args:
        function: the student's ``remove_neurons``.
        model: a LeNet-300-100 built by :func:`lenet`.
        keep: dict ``"fc1"``/``"fc2"`` -> list or bool tensor (True = keep).
        batch: examples in the test input.
        seed: seed of the test input.
        images: feed images (N x 1 x side x side) rather than flat vectors.

    Example:
        >>> check_remove_neurons(reference("remove_neurons"), lenet(6, (5, 4), 3),
        ...                      {"fc1": [True, False, True, True, False]})
    """
    keep_t = {name: fresh_tensor(value, SAFE.bool, f"keep[{name!r}]") for name, value in keep.items()}
    keep_before = {name: snapshot(t) for name, t in keep_t.items()}
    layers = _linear_layers(model)
    in_features = layers[0].in_features
    if images:
        side = SAFE.floor(in_features ** 0.5 + 0.5)
        x = random_tensor(batch, 1, side, side, seed=seed)
    else:
        x = random_tensor(batch, in_features, seed=seed)
    expected = _masked_output(model, keep_t, x)
    x1 = SAFE.clone(x[:1])
    dense_macs = _LAB.macs(model, x1)
    ref_small, _ = _ref_remove_neurons(model, keep_t)
    small_macs = _LAB.macs(ref_small, x1)
    saved = dense_macs - small_macs
    before = _model_snapshot(model)
    what = "remove_neurons"
    result = call(function, model, dict(keep_t), what=what)
    _check_model_unchanged(model, before, what,
                           "build the small model from a copy and leave the original as it was")
    for name, t in keep_t.items():
        check_unchanged(t, keep_before[name], f"keep[{name!r}]", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"remove_neurons should return a tuple (small_model, macs_saved), "
                             f"got {type_name(result)}")
    small, macs_saved = result
    if not isinstance(small, SAFE.Module):
        raise AssertionError(f"the small model should be an nn.Module, got {type_name(small)}")
    if small is model:
        raise AssertionError("remove_neurons returned the model it was given: return a new, "
                             "smaller model and leave the original as it was")
    _LAB.module_train(small, False)
    try:
        with SAFE.no_grad():
            out = call(SAFE.module_call, small, x, what="small(x)")
    except AssertionError as failure:
        text = str(failure)
        if "shape" in text or "size" in text:
            text += (f" (x of shape {tuple(SAFE.size(x))}). The layers' sizes do not fit "
                     f"together: a removed neuron is also an input column of the next layer")
        raise AssertionError(text) from None
    actual = tensor_values(out, f"small(x) for x of shape {tuple(SAFE.size(x))}",
                           shape=(batch, layers[2].out_features), dtypes=SAFE.floating)
    found = first_mismatch(actual, expected, 1e-4, 1e-5)
    if found is not None:
        i, a, e = found
        raise AssertionError(f"small(x) differs from the masked model: element "
                             f"{unravel(i, (batch, layers[2].out_features))} is {fmt(a)}, "
                             f"expected {fmt(e)}. Keep the kept rows of a layer's weight and "
                             f"bias, and the matching input columns of the next layer")
    measured = _count_macs(small, x1, "small(x)")
    if measured != small_macs:
        raise AssertionError(f"The small model does {measured:,} MACs per example, expected "
                             f"{small_macs:,}: give each layer only the kept neurons (new "
                             f"nn.Linear layers with fewer rows and input columns), not zeros")
    value = number(macs_saved, "macs_saved (the second item returned)", integer=True)
    if value != saved:
        message = (f"macs_saved is {value:,}, expected {saved:,}: {dense_macs:,} MACs per "
                   f"example before, {small_macs:,} after")
        params_saved = sum(l.in_features * l.out_features + l.out_features
                           for l in layers) - sum(
            l.in_features * l.out_features + l.out_features for l in _linear_layers(ref_small))
        rows_only = sum(layers[i].in_features * (layers[i].out_features -
                                                  _linear_layers(ref_small)[i].out_features)
                        for i in range(3))
        if value == small_macs:
            message += ". That is the small model's count: return how many MACs were SAVED"
        elif value == params_saved:
            message += (". That counts the biases too: a MAC is one multiply-accumulate of a "
                        "weight, in_features * out_features per Linear layer")
        elif value == rows_only:
            message += (". The next layer loses the removed neurons' inputs too: its "
                        "in_features shrinks")
        elif value == saved * batch:
            message += ". Count per example, not per batch"
        raise AssertionError(message)


# ---------------------------------------------------------------------------
# Reference implementations (used by ``isolated`` to isolate one function)

def _ref_magnitude_mask(weight, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    k = round(sparsity * weight.numel())
    mask = torch.ones_like(weight)
    mask.view(-1)[weight.detach().abs().flatten().argsort(stable=True)[:k]] = 0
    return mask


def _ref_global_masks(tensors, sparsity):
    names = list(tensors)
    flat = torch.cat([tensors[n].detach().flatten().double() for n in names])
    keep = torch.ones_like(flat)
    keep[flat.argsort(stable=True)[:round(sparsity * flat.numel())]] = 0
    masks, start = {}, 0
    for n in names:
        size = tensors[n].numel()
        masks[n] = keep[start:start + size].view_as(tensors[n]).to(tensors[n].dtype)
        start += size
    return masks


def _ref_global_magnitude_masks(weights, sparsity):
    return _ref_global_masks({n: w.detach().abs() for n, w in weights.items()}, sparsity)


def _ref_snip_scores(model, inputs, targets):
    names = _prunable_names(model)
    modules = dict(model.named_modules())
    weights = [modules[n].weight for n in names]
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, weights)
    raw = [(g * w).detach().abs() for g, w in zip(grads, weights)]
    total = sum(r.sum() for r in raw)
    return {n: r / total for n, r in zip(names, raw)}


def _ref_snip_masks(scores, sparsity):
    return _ref_global_masks(scores, sparsity)


def _ref_imp_step(trained, init, masks, rate):
    new_masks = {}
    for n in trained:
        mask = masks[n].clone()
        alive = mask.flatten().nonzero().flatten()
        k = round(rate * alive.numel())
        order = trained[n].detach().abs().flatten()[alive].argsort(stable=True)
        mask.view(-1)[alive[order[:k]]] = 0
        new_masks[n] = mask
    return new_masks, {n: init[n] * new_masks[n] for n in trained}


def _ref_l1_filter_order(conv_weight):
    return conv_weight.detach().abs().flatten(1).sum(dim=1).argsort(stable=True)



def _ref_sensitivity_scan(model, data, sparsities):
    scan = {}
    for name in _prunable_names(model):
        scan[name] = []
        for s in sparsities:
            twin = SAFE.deepcopy(model)
            weight = dict(twin.named_modules())[name].weight
            with torch.no_grad():
                weight.mul_(_ref_magnitude_mask(weight, s))
            scan[name].append(_correct(twin, data) / len(data))
    return scan


def _ref_sparsity_plan():
    return {"fc1": 0.92, "fc2": 0.88, "fc3": 0.5}


def _ref_remove_neurons(model, keep):
    small = SAFE.deepcopy(model)
    inputs = None
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(model, name)
        rows = (keep[name].nonzero().flatten() if name in keep
                else torch.arange(layer.out_features))
        cols = torch.arange(layer.in_features) if inputs is None else inputs
        new = torch.nn.Linear(len(cols), len(rows), bias=layer.bias is not None)
        with torch.no_grad():
            new.weight.copy_(layer.weight[rows][:, cols])
            if layer.bias is not None:
                new.bias.copy_(layer.bias[rows])
        setattr(small, name, new)
        inputs = rows
    before = sum(getattr(model, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
    after = sum(getattr(small, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
    return small, before - after


_REFERENCES = {
    "magnitude_mask": _ref_magnitude_mask,
    "global_magnitude_masks": _ref_global_magnitude_masks,
    "snip_scores": _ref_snip_scores,
    "snip_masks": _ref_snip_masks,
    "imp_step": _ref_imp_step,
    "l1_filter_order": _ref_l1_filter_order,
    "sensitivity_scan": _ref_sensitivity_scan,
    "sparsity_plan": _ref_sparsity_plan,
    "remove_neurons": _ref_remove_neurons,
}


def reference(name):
    """The reference implementation of an assignment function (what :func:`isolated` substitutes).

    Args:
        name: one of :data:`FUNCTIONS`.

    Example:
        >>> reference("magnitude_mask").__name__.lstrip("_")
        'ref_magnitude_mask'
    """
    if name not in _REFERENCES:
        raise ValueError(f"name must be one of {list(FUNCTIONS)}, got {name!r}")
    return _REFERENCES[name]


def isolated(namespace, name):
    """Test ``name`` with the student's other functions replaced by references, the kit's off.

    See :func:`pruning_kit.course.checks.core.isolated`; :data:`KIT` lists what refuses.

    Example:
        >>> ns = {"magnitude_mask": lambda *args: None}
        >>> with isolated(ns, "magnitude_mask") as fn:
        ...     ns["global_magnitude_masks"] is reference("global_magnitude_masks")
        True
    """
    return _core.isolated(namespace, name, _REFERENCES, kit=KIT.get(name, ()))
