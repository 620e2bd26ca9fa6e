"""Budgets: per-conv ratios that remove a target share of the MACs.

A "60%" filter ratio removes 60% of the filters of every conv, but a conv
whose input channels were also cut loses more than 60% of its MACs (both
factors shrink), so the network loses far more compute than the number says.
Studies that report compute budgets (J. Matthiesen, A. Ask, D. Ödman, "Are
Hyperparameters Overrated? From large models to tinyML", tinyML EMEA 2023,
define their pruning ratios by FLOPs) choose per-layer ratios so
that a given share of the multiply-accumulates disappears.
:func:`macs_target_ratios` finds such ratios for a plain stack, either the
same for every conv (``uniform=True``) or non-uniform: filters of all convs
ranked together by their score divided by their layer's mean score (so that a
layer with a large fan-in, whose L1 norms are large, is not spared for that
reason), removed weakest first until the MACs have shrunk enough.

Example:
    >>> import torch, pruning_kit as pk
    >>> model, x = pk.models.lenet5(), torch.zeros(1, 1, 28, 28)
    >>> ratios = macs_target_ratios(model, 0.5, x, uniform=True)
    >>> small = pk.structured.l1_filter_prune(model, 0.0, x, ratios=ratios)
    >>> round(1 - pk.metrics.macs(small, x) / pk.metrics.macs(model, x), 2)
    0.5
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import metrics
from .._checks import InvalidParameterError, check_bool, check_fraction
from .coupling import channel_units, check_example_input, check_unmasked_model
from .importance import importance_fn
from .surgery import remove_filters

__all__ = ["macs_target_ratios"]


def _layer_scores(unit, score) -> torch.Tensor:
    weight = unit.producer.weight.detach()
    if isinstance(unit.producer, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)   # stored in x out x kh x kw
    return torch.as_tensor(score(weight), dtype=torch.float64).reshape(-1)


def macs_target_ratios(model: nn.Module, macs_removed: float, example_input: torch.Tensor, *,
                       importance="l1", uniform: bool = False) -> dict[str, float]:
    """Per-conv filter ratios that remove about ``macs_removed`` of the model's MACs.

    MACs are counted over every conv and Linear layer
    (:func:`pruning_kit.metrics.macs`), the output layer included (it is never
    pruned, but loses inputs). Filters come in whole units, so the target is
    met as closely as the model allows: of the two nearest achievable cuts,
    the one closer to the target (the larger on a tie).

    - ``uniform=False``: every filter of every prunable conv gets its
      ``importance`` score divided by the mean score of its layer; filters are
      removed in ascending order of that normalised score, across layers,
      always keeping one per conv. Layers lose different shares.
    - ``uniform=True``: the same filter ratio for every conv, the smallest one
      that reaches the target (or the nearer neighbour).

    Args:
        model: a plain stack (see :func:`~.coupling.channel_units`); not changed.
        macs_removed: the share of MACs to remove, in [0, 1).
        example_input: a batch the model accepts.
        importance: ``"l1"``, ``"l2"``, ``"random"`` or a callable ``weight ->
            scores`` (as in :func:`~pruning_kit.structured.l1_filter_prune`).
        uniform: one ratio for every conv instead of a non-uniform allocation.

    Returns:
        ``{conv name: ratio}`` for every prunable conv, ready for
        ``l1_filter_prune(model, 0.0, x, ratios=..., importance=...)``, which then
        removes exactly the filters counted here (the lowest-scored of each conv).
        A warning says when even the largest cut stays short of the target.

    Example:
        >>> import pruning_kit as pk
        >>> model, x = pk.models.vgg(11, width=0.25), torch.zeros(1, 3, 32, 32)
        >>> ratios = macs_target_ratios(model, 0.6, x)
        >>> small = pk.structured.l1_filter_prune(model, 0.0, x, ratios=ratios)
        >>> removed = 1 - pk.metrics.macs(small, x) / pk.metrics.macs(model, x)
        >>> round(removed, 2), len(set(ratios.values())) > 1      # non-uniform
        (0.6, True)
    """
    check_unmasked_model(model)
    check_example_input(example_input)
    target = check_fraction("macs_removed", macs_removed, high_open=True,
                            hint="the share of the model's multiply-accumulates to remove")
    check_bool("uniform", uniform)
    score = importance_fn(importance)
    all_units = channel_units(model, example_input)
    units = [u for u in all_units if u.prunable]
    if not units:
        raise InvalidParameterError(f"{type(model).__name__} has no prunable conv layers (convs "
                                    "followed by another layer)")
    channels = {u.name: u.channels for u in units}
    dense = metrics.macs(model, example_input)

    def removed_share(counts: dict) -> float:
        plan = {name: torch.arange(k) for name, k in counts.items() if k}
        if not plan:
            return 0.0
        small = remove_filters(model, plan, example_input, units=all_units)
        return 1 - metrics.macs(small, example_input) / dense

    if uniform:
        rates = sorted({k / n for n in channels.values() for k in range(n)})
        candidates = [{name: min(int(round(r * n)), n - 1) for name, n in channels.items()}
                      for r in rates]
        labels = rates
    else:
        ranked = []
        for index, unit in enumerate(units):
            scores = _layer_scores(unit, score)
            mean = float(scores.mean())
            normalised = scores / mean if mean > 0 else torch.ones_like(scores)
            keep_one = torch.argsort(normalised, stable=True)[:-1]   # the strongest always stays
            ranked += [(float(normalised[i]), index, position)
                       for position, i in enumerate(keep_one.tolist())]
        ranked.sort()
        candidates, counts = [{u.name: 0 for u in units}], {u.name: 0 for u in units}
        for _, index, _ in ranked:
            counts[units[index].name] += 1
            candidates.append(dict(counts))
        labels = None
    # the share removed grows with the candidate's index: bisect for the first that reaches it
    low, high = 0, len(candidates) - 1
    if removed_share(candidates[high]) < target:
        warnings.warn(f"the largest cut removes {removed_share(candidates[high]):.1%} of the MACs, "
                      f"less than macs_removed={target:g}: returning it", stacklevel=2)
        low = high
    while low < high:
        middle = (low + high) // 2
        if removed_share(candidates[middle]) >= target:
            high = middle
        else:
            low = middle + 1
    best = low
    if best > 0 and target - removed_share(candidates[best - 1]) < \
            removed_share(candidates[best]) - target:
        best -= 1
    if uniform:
        return {name: labels[best] for name in channels}
    return {name: k / channels[name] for name, k in candidates[best].items()}
