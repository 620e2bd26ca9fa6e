"""Checks of the ``pruning`` assignment: magnitude masks, SNIP, one IMP round, L1 filter order.

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

import importlib as _importlib

import torch
import torch.nn.functional as F

from . import core as _core

_importlib.reload(_core)  # a test cell reloads this module: the core's helpers come back clean too

# check_raises, random_tensor, ...: re-exported for the test cells (``g.random_tensor(3, seed=1)``)
from .core import (SAFE, allowed_counts, call, check_close, check_raises,  # noqa: E402
                   check_unchanged, count_text, first_mismatch, flatten, fmt, fmt_list,
                   fresh_tensor, is_plain_tensor, number, random_tensor, read_dict, snapshot,
                   tensor_values, type_name, unravel)

# Functions below look builtins up in the copy captured on the first import: replacing
# ``builtins.round`` or ``builtins.len`` in the notebook does not reach them.
__builtins__ = SAFE.builtins
SAFE.module_dicts[__name__] = globals()

FUNCTIONS = ("magnitude_mask", "global_magnitude_masks", "snip_scores", "snip_masks", "imp_step", "l1_filter_order")
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
}
"""The kit functions that would do each graded function's work: they refuse while it is tested."""

# ---------------------------------------------------------------------------
# Masks: pruning by the smallest scores

def _mask_values(mask, what, shape, dtype=None):
    flat = tensor_values(mask, what, shape=shape, dtype=dtype)
    bad = [v for v in flat if v not in (0, 1)]
    if bad:
        raise AssertionError(f"{what} must contain only 0 and 1, found {fmt(bad[0])}")
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
        raise AssertionError(f"{what}: mask has {zeros} zeros, expected {text}")
    if not _consistent(keep, scores):
        worst = max(s for k, s in zip(keep, scores) if not k)
        best = min(s for k, s in zip(keep, scores) if k)
        message = (f"{what}: the zeros are not at the smallest {score_name}: an entry with "
                   f"{score_name} = {fmt(worst)} was pruned while one with {fmt(best)} was kept")
        for alt_scores, hint in alternatives:
            if _consistent(keep, alt_scores):
                message += f". {hint}"
                break
        raise AssertionError(message)


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
        raise AssertionError(f"{what}: {zeros} zeros in total ({per_layer}), expected {text} "
                             f"over all {n} entries")
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
            message = (f"{what}: the zeros are not at the smallest {score_name} over all layers: "
                       f"{score_name} = {fmt(worst[0])} in {worst[1]!r} was pruned while "
                       f"{fmt(best[0])} in {best[1]!r} was kept")
            if signed is not None and _consistent(
                    flat_keep, [v for name in names for v in signed[name]]):
                message += ". " + _SIGNED_HINT
            elif local and len(names) > 1:
                message += (". Every layer lost the same fraction: that is local pruning; "
                            "global pruning uses one threshold over all layers together")
            raise AssertionError(message)
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
    if not isinstance(weights, dict) or not weights:
        raise TypeError("weights must be a non-empty dict name -> values")
    tensors = {name: fresh_tensor(v, dtype, f"weights[{name!r}]") for name, v in weights.items()}
    before = {name: snapshot(t) for name, t in tensors.items()}
    shapes = ", ".join(f"{name!r}: {before[name][0]}" for name in tensors)
    what = f"global_magnitude_masks({{{shapes}}}, sparsity={sparsity!r})"
    result = call(function, dict(tensors), sparsity, what=what)
    for name, t in tensors.items():
        check_unchanged(t, before[name], f"weights[{name!r}]", what)
    scores = {name: [abs(v) for v in before[name][2]] for name in tensors}
    signed = {name: before[name][2] for name in tensors}
    keep = _check_global(result, tensors, sparsity, what, score_name="abs(weight)", scores=scores,
                         signed=signed)
    if expected is not None:
        for name in tensors:
            check_close(keep[name], flatten(expected[name]), f"mask {name!r} of {what}",
                        rtol=0, atol=0, shape=before[name][0])


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
    if not isinstance(scores, dict) or not scores:
        raise TypeError("scores must be a non-empty dict name -> values")
    tensors = {name: fresh_tensor(v, dtype, f"scores[{name!r}]") for name, v in scores.items()}
    before = {name: snapshot(t) for name, t in tensors.items()}
    shapes = ", ".join(f"{name!r}: {before[name][0]}" for name in tensors)
    what = f"snip_masks({{{shapes}}}, sparsity={sparsity!r})"
    result = call(function, dict(tensors), sparsity, what=what)
    for name, t in tensors.items():
        check_unchanged(t, before[name], f"scores[{name!r}]", what)
    values = {name: before[name][2] for name in tensors}
    keep = _check_global(result, tensors, sparsity, what, score_name="score", scores=values)
    if expected is not None:
        for name in tensors:
            check_close(keep[name], flatten(expected[name]), f"mask {name!r} of {what}",
                        rtol=0, atol=0, shape=before[name][0])


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
            raise AssertionError(f"{what} replaced the weight parameter of {name!r}: "
                                 f"leave the model's parameters as they were")
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
        raise AssertionError(f"{what}: scores[{name!r}] element {unravel(i, before[name][0])} "
                             f"is {fmt(a)}, expected {fmt(e)}" + (f". {hint}" if hint else ""))


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
    t_trained = {n: fresh_tensor(trained[n], dtype, f"trained[{n!r}]") for n in names}
    t_init = {n: fresh_tensor(init[n], dtype, f"init[{n!r}]") for n in names}
    t_masks = {n: fresh_tensor(masks[n], dtype, f"masks[{n!r}]") for n in names}
    snaps = {(kind, n): snapshot(t) for kind, group in
             (("trained", t_trained), ("init", t_init), ("masks", t_masks))
             for n, t in group.items()}
    shapes = ", ".join(f"{n!r}: {snaps[('trained', n)][0]}" for n in names)
    what = f"imp_step(trained, init, masks with layers {{{shapes}}}, rate={rate!r})"
    result = call(function, dict(t_trained), dict(t_init), dict(t_masks), rate, what=what)
    for (kind, n), snap in snaps.items():
        group = {"trained": t_trained, "init": t_init, "masks": t_masks}[kind]
        check_unchanged(group[n], snap, f"{kind}[{n!r}]", what)
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"{what} should return a tuple (new_masks, rewound_weights), "
                             f"got {type_name(result)}")
    new_masks = read_dict(result[0], f"new_masks of {what}", names)
    rewound = read_dict(result[1], f"the rewound weights of {what}", names)
    for n in names:
        shape, _, old = snaps[("masks", n)]
        trained_abs = [abs(v) for v in snaps[("trained", n)][2]]
        new = _mask_values(new_masks[n], f"new_masks[{n!r}] of {what}", shape)
        revived = [i for i, (o, m) in enumerate(zip(old, new)) if o == 0 and m == 1]
        if revived:
            raise AssertionError(f"{what}: new_masks[{n!r}] brings back weight "
                                 f"{unravel(revived[0], shape)}, which the old mask had pruned: "
                                 f"pruned weights stay pruned")
        remaining = [i for i, o in enumerate(old) if o == 1]
        newly = [i for i in remaining if new[i] == 0]
        counts, text = count_text(rate, len(remaining), "weights")
        if len(newly) not in counts:
            message = (f"{what}: layer {n!r} pruned {len(newly)} more weights, expected {text} "
                       f"of the {len(remaining)} still unmasked")
            total = len(old)
            if len(newly) in allowed_counts(rate, total) and total != len(remaining):
                message += (f". {len(newly)} = round({rate!r} * {total}) prunes a fraction of ALL "
                            f"weights; IMP prunes a fraction of those that remain")
            raise AssertionError(message)
        sub_keep = [new[i] for i in remaining]
        if not _consistent(sub_keep, [trained_abs[i] for i in remaining]):
            pruned = [trained_abs[i] for i in newly]
            kept = [trained_abs[i] for i in remaining if new[i] == 1]
            message = (f"{what}: layer {n!r}: among the unmasked weights, one with "
                       f"abs(trained) = {fmt(max(pruned))} was pruned while one with "
                       f"{fmt(min(kept))} was kept")
            if _consistent(sub_keep, [snaps[("trained", n)][2][i] for i in remaining]):
                message += ". " + _SIGNED_HINT
            raise AssertionError(message)
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
            raise AssertionError(f"{what}: rewound weights {n!r} element {unravel(i, shape)} "
                                 f"is {fmt(a)}, expected init * new_mask = {fmt(e)}{hint}")


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
        raise AssertionError(f"the result of {what} has shape {tuple(SAFE.size(order))}, "
                             f"expected ({out},): one index per output filter (weight.shape[0])")
    if sorted(got) != list(range(out)):
        raise AssertionError(f"the result of {what} should contain each filter index "
                             f"0..{out - 1} once, got {fmt_list(got)}")
    for a, b in zip(got, got[1:]):
        tol = 1e-6 * max(1.0, norms[a], norms[b])
        if norms[a] > norms[b] + tol:
            message = (f"{what}: filter {a} (L1 norm {fmt(norms[a])}) comes before filter {b} "
                       f"(L1 norm {fmt(norms[b])}); the order must be ascending")
            if got == sorted(range(out), key=lambda f: -norms[f]):
                message += " (yours is descending)"
            elif any(v < 0 for v in values):
                message += ". The L1 norm sums abs(w) over in, kh, kw"
            raise AssertionError(message)
        if norms[a] == norms[b] and a > b:
            raise AssertionError(f"{what}: filters {b} and {a} have the same L1 norm "
                                 f"{fmt(norms[a])}; a stable order keeps {b} before {a}")
    if expected is not None:
        check_close(got, list(expected), f"the result of {what}", rtol=0, atol=0)


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



_REFERENCES = {
    "magnitude_mask": _ref_magnitude_mask,
    "global_magnitude_masks": _ref_global_magnitude_masks,
    "snip_scores": _ref_snip_scores,
    "snip_masks": _ref_snip_masks,
    "imp_step": _ref_imp_step,
    "l1_filter_order": _ref_l1_filter_order,
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
