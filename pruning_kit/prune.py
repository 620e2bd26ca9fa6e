"""Unstructured pruning on top of ``torch.nn.utils.prune``.

Every function here keeps its masks where PyTorch keeps them: a pruned layer
has a parameter ``weight_orig`` (the values, still trainable), a buffer
``weight_mask`` (0/1) and a forward pre-hook that sets ``weight =
weight_orig * weight_mask`` before each call. So any code that knows
``torch.nn.utils.prune`` (``prune.remove``, ``prune.is_pruned``, saved
``state_dict`` files) works on models pruned here.

- :func:`magnitude` and :func:`random`: prune by ``abs(weight)`` or at random,
  over all prunable layers at once (``scope="global"``) or layer by layer
  (``scope="local"``). A sparsity ``s`` prunes exactly ``round(s * n)``
  weights of the ``n`` in scope, as PyTorch rounds. Pruning again only adds
  to what is already pruned, so ``s`` is always the fraction of the whole
  scope: ``magnitude(m, 0.5)`` then ``magnitude(m, 0.8)`` leaves 80% pruned.
- :func:`n_m` and :func:`n_m_mask`: N:M semi-structured sparsity, ``n`` kept in
  every group of ``m`` consecutive input weights (2:4 runs on NVIDIA's Sparse
  Tensor Cores, Mishra et al. 2021).
- :func:`snip_scores` and :func:`snip`: SNIP's connection sensitivity
  ``abs(dL/dw * w)`` (Lee et al. 2019), normalised to sum to 1.
- :func:`hessian_diagonal`, :func:`obd_scores` and :func:`obd`: Optimal Brain
  Damage's second-order saliency ``0.5 * h_kk * w_k**2`` (LeCun et al. 1990),
  with the exact diagonal of the loss's curvature for ``nn.Linear`` layers.
- :func:`magnitude_step`: prune a fraction of what remains (one round of the
  lottery-ticket procedure); :func:`iterative`: prune, fine-tune, repeat
  (Han et al. 2015).
- :func:`sparsity`, :func:`layer_sparsity`, :func:`masks`,
  :func:`apply_masks`, :func:`finalize`, :func:`clone`: inspect, move and
  bake in masks, and copy pruned models (``copy.deepcopy`` fails on a pruned
  model that has run forward: its ``weight`` is not a graph leaf).

Only the weights of ``nn.Linear`` and ``nn.Conv2d`` layers are pruned
(``pk.models.prunable``); biases never are. ``rates={"fc3": 0.1}`` gives a
layer its own sparsity (the papers prune the output layer less).

One rule for the scope: every function that takes ``scope`` (here, and
``pk.lottery.imp``) defaults to ``"global"``, one ranking over all the
layers in scope, as ``torch.nn.utils.prune.global_unstructured`` and SNIP do;
layer-by-layer pruning is asked for by name, ``scope="local"``. Options are
keyword-only: the model and the one quantity (``sparsity``, ``rate``,
``target``) may be positional.

Example:
    >>> import pruning_kit as pk
    >>> model = pk.models.lenet_300_100()
    >>> _ = pk.prune.magnitude(model, 0.9, scope="local", rates={"fc3": 0.5})
    >>> pk.prune.layer_sparsity(model)
    {'fc1': 0.9, 'fc2': 0.9, 'fc3': 0.5}
    >>> sorted(name for name, _ in model.fc1.named_buffers())
    ['weight_mask']
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
import torch.nn.utils.prune as torch_prune
from torch import nn
from ._checks import (InvalidParameterError, check_model, check_int, check_fraction, check_choice,
                      check_seed)
from .train import Recipe, uses_recipe

__all__ = ["magnitude", "magnitude_step", "random", "n_m", "n_m_mask", "snip_scores", "snip",
           "hessian_diagonal", "obd_scores", "obd", "sparsity", "layer_sparsity",
           "masks", "apply_masks", "finalize", "clone", "iterative", "is_pruned",
           "PruneStep", "SCOPES"]

SCOPES = ("global", "local")


# ----------------------------------------------------------------------------- checks


def prunable_layers(model) -> list[tuple[str, nn.Module]]:
    """The ``(name, layer)`` pairs pruning acts on; a clear error when there are none.

    The ``nn.Linear`` and ``nn.Conv2d`` layers of ``model`` in definition order
    (:func:`pruning_kit.models.prunable`), checked: a model with none raises.

    Example:
        >>> import pruning_kit as pk
        >>> [name for name, _ in prunable_layers(pk.models.lenet_300_100())]
        ['fc1', 'fc2', 'fc3']
        >>> prunable_layers(nn.ReLU())
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: model (ReLU) has no nn.Linear or nn.Conv2d layer: there is nothing to prune
    """
    check_model(model)
    from .models import prunable

    layers = prunable(model)
    if not layers:
        raise InvalidParameterError(f"model ({type(model).__name__}) has no nn.Linear or "
                                    "nn.Conv2d layer: there is nothing to prune")
    return layers


def _check_sparsity(name: str, value) -> float:
    return check_fraction(name, value, hint="the fraction of weights pruned")


def _check_rates(rates, names) -> dict:
    if rates is None:
        return {}
    if not isinstance(rates, dict):
        raise InvalidParameterError(f"rates must be a dict {{layer name: sparsity}}, got "
                                    f"{type(rates).__name__}")
    unknown = [name for name in rates if name not in names]
    if unknown:
        raise InvalidParameterError(f"rates names unknown layers {unknown}; prunable layers "
                                    f"are {names}")
    return {name: _check_sparsity(f"rates[{name!r}]", value) for name, value in rates.items()}


# ------------------------------------------------------------------- masks in torch's place


def is_pruned(layer: nn.Module) -> bool:
    """Whether ``layer`` carries a ``torch.nn.utils.prune`` mask on its weight.

    Example:
        >>> layer = nn.Linear(4, 2)
        >>> is_pruned(layer), is_pruned(apply_masks(layer, {"": torch.ones(2, 4)}))
        (False, True)
    """
    return hasattr(layer, "weight_mask") and hasattr(layer, "weight_orig")


def stored_weight(layer: nn.Module) -> torch.Tensor:
    """The weight values a layer stores: ``weight_orig`` when pruned, else ``weight``.

    The parameter itself (trainable, unmasked); see :func:`weights` for the
    masked values the forward pass uses.

    Example:
        >>> layer = apply_masks(nn.Linear(2, 1), {"": torch.tensor([[1.0, 0.0]])})
        >>> stored_weight(layer) is layer.weight_orig
        True
    """
    return layer.weight_orig if is_pruned(layer) else layer.weight


def _current_mask(layer: nn.Module) -> torch.Tensor | None:
    return layer.weight_mask if is_pruned(layer) else None


def _effective(layer: nn.Module) -> torch.Tensor:
    """The weight the forward pass uses (mask applied), computed fresh."""
    if is_pruned(layer):
        return layer.weight_orig.detach() * layer.weight_mask
    return layer.weight.detach()


def _refresh(layer: nn.Module) -> None:
    """Recompute ``layer.weight`` from ``weight_orig * weight_mask``.

    Done without autograd, so that the attribute is a plain leaf tensor (and the
    model deep-copies) until the next forward pass rebuilds it, as the hook does.
    """
    with torch.no_grad():
        layer.weight = layer.weight_orig * layer.weight_mask


def _set_mask(layer: nn.Module, mask: torch.Tensor) -> None:
    """Make ``mask`` the layer's weight mask (replacing any earlier one)."""
    values = stored_weight(layer)
    mask = mask.to(device=values.device, dtype=values.dtype)
    if is_pruned(layer):
        with torch.no_grad():
            layer.weight_mask.copy_(mask)
    else:
        torch_prune.custom_from_mask(layer, "weight", mask)
    _refresh(layer)


def _prune_groups(layers: dict, groups: list, scores: dict) -> None:
    """Prune ``k`` weights in each group of layers, at the smallest scores.

    ``groups`` holds ``(names, k)``: ``k`` is the total number of pruned weights
    the group ends with. Weights already pruned are counted in ``k`` and stay
    pruned; when more than ``k`` are already pruned nothing is revived.
    """
    new_masks = {}
    for names, k in groups:
        if not names:
            continue
        flat = torch.cat([scores[n].detach().reshape(-1) for n in names])
        old = [_current_mask(layers[n]) for n in names]
        if any(m is not None for m in old):
            old_flat = torch.cat([(m if m is not None else torch.ones_like(scores[n])).reshape(-1)
                                  for m, n in zip(old, names)])
            already = int((old_flat == 0).sum())
            if k <= already:
                continue
            flat = flat.masked_fill(old_flat == 0, -math.inf)
        mask = torch.ones_like(flat)
        if k > 0:
            mask[torch.topk(flat, k, largest=False, sorted=False).indices] = 0
        for name, part in zip(names, torch.split(mask, [scores[n].numel() for n in names])):
            new_masks[name] = part.view_as(scores[name])
    for name, mask in new_masks.items():
        _set_mask(layers[name], mask)


def _plan(layers: dict, fraction: float, scope: str, rates: dict) -> list:
    """Groups ``(names, k)`` with ``k = round(s * n)`` for each scope."""
    sizes = {name: layer.weight_mask.numel() if is_pruned(layer) else layer.weight.numel()
             for name, layer in layers.items()}
    groups = [([name], round(rates[name] * sizes[name])) for name in layers if name in rates]
    rest = [name for name in layers if name not in rates]
    if scope == "local":
        groups += [([name], round(fraction * sizes[name])) for name in rest]
    elif rest:
        groups.append((rest, round(fraction * sum(sizes[n] for n in rest))))
    return groups


def _prepare(model, sparsity, scope, rates):
    layers = dict(prunable_layers(model))
    sparsity = _check_sparsity("sparsity", sparsity)
    scope = check_choice("scope", scope, SCOPES, hint="'global': one threshold over all prunable layers, 'local': each layer on its own")
    rates = _check_rates(rates, list(layers))
    return layers, sparsity, scope, rates


# ---------------------------------------------------------------------------- pruning


def magnitude(model: nn.Module, sparsity: float, *, scope: str = "global",
              rates: dict | None = None) -> nn.Module:
    """Prune the weights with the smallest ``abs(weight)`` (Han et al. 2015).

    In place: masks go into ``torch.nn.utils.prune`` buffers. Exactly
    ``round(sparsity * n)`` weights end up pruned among the ``n`` in scope
    (ties broken so the count is exact). On a model that is already pruned,
    the pruned weights stay pruned and more are chosen among the rest until
    the target is reached; a target below the current sparsity changes nothing.

    Args:
        model: any ``nn.Module``; its ``nn.Linear``/``nn.Conv2d`` weights are pruned.
        sparsity: target fraction of pruned weights, in [0, 1].
        scope: ``"global"`` (one threshold over all prunable layers; the same
            masks as ``torch.nn.utils.prune.global_unstructured`` with
            ``L1Unstructured``) or ``"local"`` (``sparsity`` in every layer).
        rates: ``{layer name: sparsity}`` for layers pruned at their own rate
            (each on its own; the others follow ``sparsity`` and ``scope``).

    Returns:
        ``model`` (the same object).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> _ = magnitude(model, 0.5)
        >>> round(sparsity(model), 4)
        0.5
        >>> _ = magnitude(model, 0.8)      # prunes among what remains
        >>> round(sparsity(model), 4), int((model.fc1.weight_mask == 0).sum()) > 0
        (0.8, True)
    """
    layers, fraction, scope, rates = _prepare(model, sparsity, scope, rates)
    scores = {name: stored_weight(layer).detach().abs() for name, layer in layers.items()}
    _prune_groups(layers, _plan(layers, fraction, scope, rates), scores)
    return model


def magnitude_step(model: nn.Module, rate: float, *, scope: str = "global",
                   rates: dict | None = None) -> nn.Module:
    """Prune a fraction ``rate`` of the weights that remain, by magnitude.

    The step of iterative magnitude pruning (Frankle & Carbin 2019): in each
    scope, ``round(rate * r)`` more weights are pruned, ``r`` being the number
    still unpruned there, choosing the smallest ``abs(weight)`` among them.

    Args:
        model: the network (pruned or not), changed in place.
        rate: fraction of the remaining weights to prune, in [0, 1].
        scope: ``"global"`` (one threshold over the layers not in ``rates``) or
            ``"local"`` (each layer loses ``rate`` of its remaining weights, as the
            lottery-ticket paper prunes LeNet).
        rates: ``{layer name: rate}`` for layers pruned at their own rate
            (the lottery-ticket paper prunes the output layer at half the rate).

    Returns:
        ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> for _ in range(2):
        ...     _ = magnitude_step(model, 0.2, scope="local", rates={"fc3": 0.1})
        >>> {name: round(1 - s, 4) for name, s in layer_sparsity(model).items()}
        {'fc1': 0.64, 'fc2': 0.64, 'fc3': 0.81}
    """
    layers, fraction, scope, rates = _prepare(model, rate, scope, rates)
    groups = []
    for names, _ in _plan(layers, fraction, scope, rates):
        sizes = [stored_weight(layers[n]).numel() for n in names]
        pruned = sum(int((layers[n].weight_mask == 0).sum()) if is_pruned(layers[n]) else 0
                     for n in names)
        share = rates[names[0]] if names[0] in rates else fraction
        groups.append((names, pruned + round(share * (sum(sizes) - pruned))))
    scores = {name: stored_weight(layer).detach().abs() for name, layer in layers.items()}
    _prune_groups(layers, groups, scores)
    return model


def random(model: nn.Module, sparsity: float, *, scope: str = "global", seed: int = 0,
           rates: dict | None = None) -> nn.Module:
    """Prune weights chosen uniformly at random (the baseline every method must beat).

    Same counting and scopes as :func:`magnitude`. The draw uses its own
    generator seeded with ``seed``: the global random state is not touched, and
    the same seed gives the same masks.

    Args:
        model: any ``nn.Module`` with ``nn.Linear``/``nn.Conv2d`` layers.
        sparsity: target fraction of pruned weights, in [0, 1].
        scope: ``"global"`` (one draw over all prunable layers) or ``"local"``
            (exactly ``sparsity`` in every layer).
        seed: seed of the random choice.
        rates: ``{layer name: sparsity}`` overrides, as in :func:`magnitude`.

    Returns:
        ``model``, pruned in place.

    Example:
        >>> import pruning_kit as pk
        >>> a = random(pk.models.lenet_300_100(), 0.9, scope="local", seed=1)
        >>> b = random(pk.models.lenet_300_100(), 0.9, scope="local", seed=1)
        >>> torch.equal(a.fc2.weight_mask, b.fc2.weight_mask), layer_sparsity(a)["fc3"]
        (True, 0.9)
    """
    layers, fraction, scope, rates = _prepare(model, sparsity, scope, rates)
    generator = torch.Generator().manual_seed(check_seed(seed))
    scores = {name: torch.rand(stored_weight(layer).shape, generator=generator).to(
        stored_weight(layer).device) for name, layer in layers.items()}
    _prune_groups(layers, _plan(layers, fraction, scope, rates), scores)
    return model


def _check_n_m(n, m) -> tuple[int, int]:
    m = check_int("m", m, low=1, hint="the size of a group of consecutive weights, 4 for 2:4")
    n = check_int("n", n, low=1, high=m,
                  hint=f"the nonzeros kept in every group of m={m} weights, at most m")
    return n, m


def n_m_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """The N:M mask of a weight: in every group of ``m`` consecutive input weights keep ``n``.

    Groups run along the input dimension, the one a matrix product sums over:
    the columns of a Linear weight (``out x in``), and the input channels of a
    conv weight (``out x in x kh x kw``) at each output filter and kernel
    position, as NVIDIA's sparsity tools lay out convolutions. In each group
    the ``n`` weights of largest ``abs`` are kept (ties: the first ones), so
    exactly ``n / m`` of the weights survive. 2:4 is the pattern the Sparse
    Tensor Cores of NVIDIA's Ampere GPUs run (Mishra et al. 2021,
    "Accelerating Sparse Deep Neural Networks").

    Args:
        weight: a Linear or conv weight (at least 2 dimensions); its input
            dimension (``weight.shape[1]``) must be a multiple of ``m``.
        n: weights kept per group, in [1, m].
        m: group size.

    Returns:
        a float 0/1 tensor of ``weight``'s shape and dtype.

    Example:
        >>> w = torch.tensor([[0.1, -0.9, 0.3, 0.2, 1.0, 0.0, -0.5, 0.4]])
        >>> n_m_mask(w, 2, 4)
        tensor([[0., 1., 1., 0., 1., 0., 1., 0.]])
    """
    from ._checks import check_tensor

    check_tensor("weight", weight, floating=True, min_dim=2,
                 hint="a Linear (out x in) or conv (out x in x kh x kw) weight")
    n, m = _check_n_m(n, m)
    inputs = weight.shape[1]
    if inputs % m:
        raise InvalidParameterError(
            f"the input dimension of a {tuple(weight.shape)} weight is {inputs}, not a multiple of "
            f"m={m}: N:M groups of {m} consecutive inputs cannot tile it (leave this layer dense)")
    values = weight.detach().abs().movedim(1, -1)          # out x (kh x kw x) in
    groups = values.reshape(-1, m)
    order = torch.argsort(groups, dim=1, descending=True, stable=True)
    keep = torch.zeros_like(groups)
    keep.scatter_(1, order[:, :n], 1.0)
    return keep.reshape(values.shape).movedim(-1, 1).contiguous().to(weight.dtype)


def n_m(model: nn.Module, n: int = 2, m: int = 4, *, layers: Iterable[str] | None = None
        ) -> nn.Module:
    """Prune to N:M semi-structured sparsity: ``n`` of every ``m`` consecutive input weights stay.

    In place, in ``torch.nn.utils.prune``'s buffers like :func:`magnitude`.
    Each chosen layer keeps exactly ``n / m`` of its weights (2:4: 50%), the
    largest by ``abs`` in every group of :func:`n_m_mask`. A layer that is
    already pruned keeps its pruned weights pruned (groups are then chosen
    among the weights that remain).

    Args:
        model: the network.
        n, m: keep ``n`` in every group of ``m`` (2:4 by default).
        layers: names of the prunable layers to prune (default: all of
            :func:`prunable_layers`); every one needs an input dimension that
            is a multiple of ``m``.

    Returns:
        ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> model = n_m(pk.models.lenet_300_100(), 2, 4)
        >>> layer_sparsity(model)
        {'fc1': 0.5, 'fc2': 0.5, 'fc3': 0.5}
        >>> bool((model.fc1.weight_mask.view(300, -1, 4).sum(-1) == 2).all())
        True
    """
    named = dict(prunable_layers(model))
    n, m = _check_n_m(n, m)
    if layers is None:
        chosen = list(named)
    else:
        chosen = [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in chosen if name not in named]
        if unknown or not chosen:
            raise InvalidParameterError(f"layers must name prunable layers of the model, got "
                                        f"{unknown or chosen}; prunable layers are {list(named)}")
    untileable = {name: named[name].weight.shape[1] if not is_pruned(named[name])
                  else named[name].weight_orig.shape[1] for name in chosen}
    untileable = {name: inputs for name, inputs in untileable.items() if inputs % m}
    if untileable:
        raise InvalidParameterError(
            f"N:M pruning groups {m} consecutive inputs, but the layers {untileable} (name: input "
            f"size) have an input size that is not a multiple of {m}; leave them dense with "
            f"layers=[...] (e.g. {[name for name in chosen if name not in untileable]})")
    for name in chosen:
        layer = named[name]
        mask = n_m_mask(_effective(layer), n, m)
        old = _current_mask(layer)
        _set_mask(layer, mask if old is None else mask * old)
    return model


def _check_batch(inputs, targets, where: str = "") -> None:
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise InvalidParameterError(f"inputs and targets{where} must be torch.Tensors, got "
                                    f"{type(inputs).__name__} and {type(targets).__name__}")
    if inputs.dim() == 0 or len(inputs) == 0:
        raise InvalidParameterError(f"inputs{where} must hold at least one example, got shape "
                                    f"{tuple(inputs.shape)}")
    if targets.dim() == 0 or len(targets) != len(inputs):
        raise InvalidParameterError(f"targets{where} must have one entry per input: got "
                                    f"{len(inputs)} inputs and targets of shape {tuple(targets.shape)}")


def _batches_of(inputs, targets, batches, *, class_targets: bool = False) -> list:
    """The ``(inputs, targets)`` pairs a scoring function was given, checked.

    ``class_targets``: the targets must be class indices (for the cross-entropy).
    """
    if batches is None:
        if inputs is None or targets is None:
            raise InvalidParameterError("give inputs and targets, or batches=[(inputs, targets), ...]")
        batches = [(inputs, targets)]
    elif inputs is not None or targets is not None:
        raise InvalidParameterError("give either inputs and targets, or batches, not both")
    else:
        if isinstance(batches, torch.Tensor) or not isinstance(batches, Iterable):
            raise InvalidParameterError("batches must be an iterable of (inputs, targets) pairs, got "
                                        f"{type(batches).__name__}")
        batches = list(batches)
        if not batches:
            raise InvalidParameterError("batches is empty: give at least one (inputs, targets) pair")
    for i, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise InvalidParameterError(f"batch {i} must be a pair (inputs, targets), got "
                                        f"{type(batch).__name__}")
        _check_batch(*batch, where=f" of batch {i}" if len(batches) > 1 else "")
        if class_targets and (batch[1].dim() != 1 or batch[1].dtype not in (torch.int64, torch.int32)):
            raise InvalidParameterError(
                f"targets{f' of batch {i}' if len(batches) > 1 else ''} must be class indices (a 1-D "
                f"integer tensor) for the cross-entropy, got dtype {batch[1].dtype} and shape "
                f"{tuple(batch[1].shape)}")
    return batches


def snip_scores(model: nn.Module, inputs: torch.Tensor | None = None,
                targets: torch.Tensor | None = None, *, loss_fn: Callable = F.cross_entropy,
                batches: Iterable | None = None) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity ``abs(dL/dw * w)`` of every prunable weight.

    ``L`` is ``loss_fn(model(inputs), targets)`` (mean cross-entropy by default),
    ``w`` the weight the forward pass uses (so already-pruned weights score 0).
    The scores are divided by their sum over all layers, so they add up to 1
    (Lee et al. 2019, eq. 6). With ``batches``, the gradient is that of the
    mean loss over all their examples (each batch weighted by its size).

    The model's weights, gradients (``.grad``) and buffers are left exactly as
    they were; the forward pass runs in the model's current train/eval mode.

    Args:
        model: any ``nn.Module`` with ``nn.Linear``/``nn.Conv2d`` layers.
        inputs: a batch of inputs (give ``inputs`` and ``targets``, or ``batches``).
        targets: one target per input.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``.
        batches: an iterable of ``(inputs, targets)`` (a ``pk.data.loader``
            works) to accumulate the gradient over.

    Returns:
        ``{layer name: tensor shaped like its weight}``, summing to 1 overall.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(in_features=64)
        >>> scores = snip_scores(model, train.images[:100], train.labels[:100])
        >>> list(scores), round(float(sum(s.sum() for s in scores.values())), 5)
        (['fc1', 'fc2', 'fc3'], 1.0)
    """
    layers = dict(prunable_layers(model))
    if not callable(loss_fn):
        raise InvalidParameterError(f"loss_fn must be callable(outputs, targets), got {loss_fn!r}")
    batches = _batches_of(inputs, targets, batches)

    # Differentiate with respect to detached copies of the stored values, so that
    # nothing is accumulated into the model's own .grad and no graph is kept.
    keys = {name: ("weight_orig" if is_pruned(layer) else "weight")
            for name, layer in layers.items()}
    prefix = {name: f"{name}." if name else "" for name in layers}
    leaves = {name: getattr(layer, keys[name]).detach().clone().requires_grad_(True)
              for name, layer in layers.items()}
    replace = {prefix[name] + keys[name]: leaves[name] for name in layers}
    saved_buffers = {name: buf.clone() for name, buf in model.named_buffers()}
    total = sum(len(x) for x, _ in batches)
    grads = {name: torch.zeros_like(leaf) for name, leaf in leaves.items()}
    try:
        with torch.enable_grad():
            for x, y in batches:
                out = torch.func.functional_call(model, replace, (x,))
                loss = loss_fn(out, y)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise InvalidParameterError("loss_fn must return a scalar tensor, got "
                                                f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
                parts = torch.autograd.grad(loss * (len(x) / total), list(leaves.values()),
                                            allow_unused=True)
                for name, g in zip(leaves, parts):
                    if g is not None:
                        grads[name] += g
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in saved_buffers:
                    buf.copy_(saved_buffers[name])
            for layer in layers.values():
                if is_pruned(layer):
                    _refresh(layer)
    scores = {name: (grads[name] * _effective(layers[name])).abs() for name in layers}
    norm = sum(float(s.double().sum()) for s in scores.values())
    if not norm > 0:
        raise InvalidParameterError("every connection sensitivity is zero (the loss does not depend on "
                                    "any remaining weight); use a batch with a nonzero gradient")
    return {name: s / norm for name, s in scores.items()}


def snip(model: nn.Module, inputs: torch.Tensor | None = None,
         targets: torch.Tensor | None = None, sparsity: float | None = None, *,
         loss_fn: Callable = F.cross_entropy, batches: Iterable | None = None,
         scope: str = "global", rates: dict | None = None) -> nn.Module:
    """SNIP: prune at initialisation the weights the loss is least sensitive to.

    Scores every weight with :func:`snip_scores` and prunes exactly
    ``round(sparsity * n)`` with the smallest scores over the whole network
    (Lee et al. 2019), in place, through ``torch.nn.utils.prune``.

    Args:
        model: the network, usually freshly initialised.
        inputs, targets: one batch (or pass ``batches=``).
        sparsity: target fraction of pruned weights, in [0, 1].
        loss_fn: ``loss_fn(outputs, targets)``; mean cross-entropy by default.
        batches: iterable of ``(inputs, targets)`` to accumulate the scores over.
        scope: ``"global"`` (the paper) or ``"local"``.
        rates: ``{layer name: sparsity}`` for layers pruned on their own, as in
            :func:`magnitude` (``sparsity=0.0, rates={"fc3": 0.9}`` prunes one layer).

    Returns:
        ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(in_features=64)
        >>> _ = snip(model, train.images[:100], train.labels[:100], sparsity=0.9)
        >>> round(pk.prune.sparsity(model), 4)
        0.9
    """
    if sparsity is None:
        raise InvalidParameterError("snip needs sparsity=, the fraction of weights to prune in [0, 1]")
    layers, fraction, scope, rates = _prepare(model, sparsity, scope, rates)
    scores = snip_scores(model, inputs, targets, loss_fn=loss_fn, batches=batches)
    _prune_groups(layers, _plan(layers, fraction, scope, rates), scores)
    return model


def hessian_diagonal(model: nn.Module, inputs: torch.Tensor | None = None,
                     targets: torch.Tensor | None = None, *,
                     batches: Iterable | None = None) -> dict[str, torch.Tensor]:
    """The diagonal of the cross-entropy's curvature for every ``nn.Linear`` weight.

    For the mean cross-entropy ``L`` of a classifier with logits ``z``, the curvature
    with respect to a layer's weights is ``(1/N) sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n``
    (the Gauss-Newton matrix), with ``p_n`` the softmax and ``J_n`` the Jacobian of the
    logits of example ``n``. When everything between the layer and the logits is
    piecewise linear (ReLU, max-pooling, linear layers), the logits are piecewise
    linear in the layer's weights and this *is* the exact Hessian of ``L`` with respect
    to them, almost everywhere. Its diagonal is computed exactly, without forming the
    matrix: ``diag(p) - p p^T = S S^T`` with ``S = (diag(p) - p p^T) diag(p)^(-1/2)``,
    one backward pass per class pushes a column of ``S`` back to every layer's outputs,
    and ``h[i, j] = (1/N) sum_n a_nj^2 sum_c g_nci^2`` for the layer's input ``a``.

    The model is evaluated in eval mode (put back as it was); its weights and ``.grad``
    are untouched. Only ``nn.Linear`` layers are scored (a ``Conv2d`` shares a weight
    across positions, which this shortcut does not cover).

    Args:
        model: a classifier whose prunable layers are ``nn.Linear``.
        inputs, targets: one batch (class indices), or ``batches=`` of such pairs.
        batches: an iterable of ``(inputs, targets)``; the result is the curvature of
            the mean loss over all their examples.

    Returns:
        ``{layer name: tensor shaped like its weight}``, all entries >= 0.

    Example:
        >>> import torch, pruning_kit as pk
        >>> torch.manual_seed(0) and None
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> h = hessian_diagonal(net, x, y)["0"]
        >>> w = net[0].weight.detach().clone().requires_grad_(True)
        >>> loss = lambda v: torch.nn.functional.cross_entropy(x @ v.view(3, 4).T + net[0].bias, y)
        >>> exact = torch.autograd.functional.hessian(loss, w.flatten()).diagonal().view(3, 4)
        >>> torch.allclose(h, exact, atol=1e-6)
        True
    """
    layers = dict(prunable_layers(model))
    others = [name for name, layer in layers.items() if not isinstance(layer, nn.Linear)]
    if others:
        raise InvalidParameterError(
            f"hessian_diagonal covers nn.Linear layers only; {others} are not (a Conv2d shares its "
            "weights across positions): score a fully connected model, or prune those layers "
            "with another criterion")
    batches = _batches_of(inputs, targets, batches, class_targets=True)
    inputs_of, outputs_of = {}, {}

    def keep(name):
        def hook(module, args, output):
            inputs_of[name] = args[0].detach().reshape(-1, module.in_features)
            outputs_of[name] = output
        return hook

    hooks = [layer.register_forward_hook(keep(name)) for name, layer in layers.items()]
    was_training = model.training
    total = sum(len(x) for x, _ in batches)
    diag = {name: torch.zeros_like(stored_weight(layer), dtype=torch.float64)
            for name, layer in layers.items()}
    model.eval()
    try:
        with torch.enable_grad():
            for x, y in batches:
                logits = model(x)
                if logits.dim() != 2 or logits.shape[0] != len(x):
                    raise InvalidParameterError(
                        f"the model must map a batch of {len(x)} inputs to logits of shape "
                        f"({len(x)}, classes), got {tuple(logits.shape)}")
                p = torch.softmax(logits.detach().double(), dim=1)
                squares = {name: torch.zeros(outputs_of[name].shape, dtype=torch.float64)
                           for name in layers}
                targets_needed = [outputs_of[name] for name in layers]
                for c in range(logits.shape[1]):
                    # column c of S: sqrt(p_c) (e_c - p), one per example
                    column = -p * p[:, c:c + 1].sqrt()
                    column[:, c] += p[:, c].sqrt()
                    grads = torch.autograd.grad(logits, targets_needed,
                                                grad_outputs=column.to(logits.dtype),
                                                retain_graph=True, allow_unused=True)
                    for name, g in zip(layers, grads):
                        if g is not None:
                            squares[name] += g.detach().double() ** 2
                for name in layers:
                    diag[name] += squares[name].reshape(-1, squares[name].shape[-1]).T \
                        @ inputs_of[name].double() ** 2
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {name: (d / total).to(stored_weight(layers[name]).dtype) for name, d in diag.items()}


def obd_scores(model: nn.Module, inputs: torch.Tensor | None = None,
               targets: torch.Tensor | None = None, *,
               batches: Iterable | None = None) -> dict[str, torch.Tensor]:
    """Optimal Brain Damage saliency ``0.5 * h_kk * w_k**2`` of every ``nn.Linear`` weight.

    LeCun, Denker & Solla (1990) expand the loss to second order around a trained
    network, where the gradient is (close to) zero, keep only the diagonal of the
    Hessian, and estimate the rise of the loss when weight ``k`` is set to 0 as
    ``0.5 * h_kk * w_k**2`` (:func:`hessian_diagonal` gives ``h``). Already pruned
    weights score 0. Unlike SNIP's scores these are not normalised: they are in
    units of the loss.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(in_features=64)
        >>> scores = obd_scores(model, train.images[:100], train.labels[:100])
        >>> list(scores), all(bool((s >= 0).all()) for s in scores.values())
        (['fc1', 'fc2', 'fc3'], True)
    """
    layers = dict(prunable_layers(model))
    h = hessian_diagonal(model, inputs, targets, batches=batches)
    return {name: 0.5 * h[name] * _effective(layers[name]).detach() ** 2 for name in layers}


def obd(model: nn.Module, inputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None, sparsity: float | None = None, *,
        batches: Iterable | None = None, scope: str = "global",
        rates: dict | None = None) -> nn.Module:
    """Prune the weights with the smallest Optimal Brain Damage saliency, in place.

    Scores with :func:`obd_scores` and prunes exactly ``round(sparsity * n)``
    weights with the smallest scores among the ``n`` in scope, as :func:`snip`
    does with its scores. OBD scores a *trained* network (LeCun et al. 1990 then
    retrain and repeat).

    Args:
        model: a trained classifier whose prunable layers are ``nn.Linear``.
        inputs, targets: data to measure the curvature on (or ``batches=``).
        sparsity: fraction of weights to prune, in [0, 1].
        scope, rates: as in :func:`magnitude`.

    Returns:
        ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(in_features=64)
        >>> _ = obd(model, train.images[:200], train.labels[:200], 0.0, rates={"fc3": 0.5})
        >>> pk.prune.layer_sparsity(model)
        {'fc1': 0.0, 'fc2': 0.0, 'fc3': 0.5}
    """
    if sparsity is None:
        raise InvalidParameterError("obd needs sparsity, the fraction of weights to prune in [0, 1]")
    layers, fraction, scope, rates = _prepare(model, sparsity, scope, rates)
    scores = obd_scores(model, inputs, targets, batches=batches)
    _prune_groups(layers, _plan(layers, fraction, scope, rates), scores)
    return model


# ------------------------------------------------------------------------- inspecting


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights in each prunable layer (masks applied).

    Example:
        >>> import pruning_kit as pk
        >>> layer_sparsity(magnitude(pk.models.lenet_300_100(), 0.5, scope="local"))
        {'fc1': 0.5, 'fc2': 0.5, 'fc3': 0.5}
    """
    out = {}
    for name, layer in prunable_layers(model):
        weight = _effective(layer)
        out[name] = float((weight == 0).sum()) / weight.numel()
    return out


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all prunable layers (masks applied).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> sparsity(model), round(sparsity(magnitude(model, 0.9)), 4)
        (0.0, 0.9)
    """
    zeros = total = 0
    for _, layer in prunable_layers(model):
        weight = _effective(layer)
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the weight masks of every prunable layer.

    A layer that is not pruned gets a mask of ones. The result can be given to
    :func:`apply_masks` on another model of the same architecture.

    Returns:
        ``{layer name: 0/1 float tensor shaped like the weight}``.

    Example:
        >>> import pruning_kit as pk
        >>> m = masks(magnitude(pk.models.lenet_300_100(), 0.75, scope="local"))
        >>> {name: int(mask.sum()) for name, mask in m.items()}
        {'fc1': 58800, 'fc2': 7500, 'fc3': 250}
    """
    return {name: (layer.weight_mask.detach().clone() if is_pruned(layer)
                   else torch.ones_like(layer.weight, requires_grad=False).detach())
            for name, layer in prunable_layers(model)}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Set the weight masks of the named layers (in place), replacing earlier ones.

    The stored values (``weight_orig``) are kept, so a mask with more ones
    brings earlier-pruned weights back. Layers not named keep their state.
    Everything is checked before anything changes.

    Args:
        model: the network.
        masks: ``{layer name: tensor}`` of 0/1 values shaped like the layer's
            weight (e.g. from :func:`masks`); names as in ``pk.models.prunable``.

    Returns:
        ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> source = magnitude(pk.models.lenet_300_100(), 0.9)
        >>> target = apply_masks(pk.models.lenet_300_100(), masks(source))
        >>> torch.equal(target.fc1.weight_mask, source.fc1.weight_mask)
        True
    """
    layers = dict(prunable_layers(model))
    if not isinstance(masks, dict):
        raise InvalidParameterError(f"masks must be a dict {{layer name: 0/1 tensor}}, got "
                                    f"{type(masks).__name__}")
    checked = {}
    for name, mask in masks.items():
        if name not in layers:
            raise InvalidParameterError(f"masks names an unknown layer {name!r}; prunable layers are "
                                        f"{list(layers)}")
        if not isinstance(mask, torch.Tensor):
            raise InvalidParameterError(f"masks[{name!r}] must be a tensor, got {type(mask).__name__}")
        shape = stored_weight(layers[name]).shape
        if mask.shape != shape:
            raise InvalidParameterError(f"masks[{name!r}] has shape {tuple(mask.shape)}, but the layer's "
                                        f"weight has shape {tuple(shape)}")
        mask = mask.detach().to(stored_weight(layers[name]).dtype)
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InvalidParameterError(f"masks[{name!r}] must hold only 0 and 1")
        checked[name] = mask
    for name, mask in checked.items():
        _set_mask(layers[name], mask)
    return model


def finalize(model: nn.Module) -> nn.Module:
    """Bake the masks in: ``weight`` becomes a plain parameter with zeros.

    Calls ``torch.nn.utils.prune.remove`` on every pruned layer. The zeros
    stay (pruning is not undone), but they are no longer held at zero during
    training. Returns ``model``.

    Example:
        >>> import pruning_kit as pk
        >>> model = finalize(magnitude(pk.models.lenet_300_100(), 0.9))
        >>> is_pruned(model.fc1), round(sparsity(model), 4), "fc1.weight" in model.state_dict()
        (False, 0.9, True)
    """
    for _, layer in prunable_layers(model):
        for hook in list(layer._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(layer, hook._tensor_name)
    return model


def clone(model: nn.Module) -> nn.Module:
    """An independent deep copy of ``model`` that also works when it is pruned.

    ``copy.deepcopy`` fails on a pruned model after a forward pass (its derived
    ``weight`` attribute is not a graph leaf). This removes the derived
    attributes for the copy, then recomputes them in both models.

    Example:
        >>> import pruning_kit as pk
        >>> model = magnitude(pk.models.lenet_300_100(), 0.9)
        >>> _ = model(torch.zeros(1, 784))        # now copy.deepcopy(model) would fail
        >>> twin = clone(model)
        >>> torch.equal(twin.fc1.weight, model.fc1.weight), twin.fc1 is model.fc1
        (True, False)
    """
    check_model(model)
    stash = []
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, torch_prune.BasePruningMethod):
                name = hook._tensor_name
                if name in module.__dict__:
                    stash.append((module, name, module.__dict__.pop(name)))
    try:
        twin = copy.deepcopy(model)
    finally:
        for module, name, value in stash:
            module.__dict__[name] = value
    for pruned in (model, twin):
        for module in pruned.modules():
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, torch_prune.BasePruningMethod):
                    name = hook._tensor_name
                    with torch.no_grad():
                        setattr(module, name, getattr(module, name + "_orig")
                                * getattr(module, name + "_mask"))
    return twin


# ------------------------------------------------------------------ prune and retrain


@dataclass
class PruneStep:
    """One step of :func:`iterative`: the sparsity reached and how it did after retraining."""

    step: int
    sparsity: float
    train_loss: float
    accuracy: float | None = None


@uses_recipe(epochs="retrain_epochs")
def iterative(model: nn.Module, train, target: float, *, steps: int = 3,
              retrain_epochs: int = 2, scope: str = "global", rates: dict | None = None, lr: float = 1e-3,
              test=None, seed: int = 0, batch_size: int = 64, optimizer: str = "adam",
              weight_decay: float = 0.0, progress: bool = False,
              recipe: Recipe | None = None) -> list[PruneStep]:
    """Prune and fine-tune in turns until ``target`` sparsity (Han et al. 2015).

    Step ``i`` of ``steps`` prunes by magnitude to sparsity
    ``1 - (1 - target) ** (i / steps)`` (the same fraction of what remains each
    step, landing exactly on ``target`` at the last step), then fine-tunes the
    surviving weights for ``retrain_epochs`` with the masks held fixed.
    Layers in ``rates`` follow the same schedule toward their own target.

    Args:
        model: a trained network, pruned and retrained in place.
        train: training data (``TensorData`` or ``(images, labels)``).
        target: final sparsity in [0, 1].
        steps: number of prune-retrain rounds (>= 1).
        retrain_epochs: epochs of fine-tuning after each pruning step (>= 0).
        scope: ``"global"`` or ``"local"``, as in :func:`magnitude`.
        rates: ``{layer name: final sparsity}`` overrides.
        lr, batch_size, optimizer, weight_decay: passed to ``pk.train.fit``.
        test: data to measure accuracy on after each step (optional).
        seed: seeds the shuffling of each retraining (``seed + step``).
        progress: show progress bars.
        recipe: a :class:`pruning_kit.train.Recipe`; the settings it gives
            replace these defaults (its ``epochs`` are the retraining epochs per step).

    Returns:
        A list of :class:`PruneStep`, one per step.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(in_features=64)
        >>> _ = pk.train.fit(model, train, epochs=2, progress=False)
        >>> log = iterative(model, train, 0.9, steps=2, retrain_epochs=1, test=test)
        >>> [round(s.sparsity, 3) for s in log], log[-1].accuracy > 0.5
        ([0.684, 0.9], True)
    """
    from . import train as training
    from .data import as_dataset

    layers, target, scope, rates = _prepare(model, target, scope, rates)
    check_int("steps", steps, low=1)
    check_int("retrain_epochs", retrain_epochs, low=0)
    Recipe(retrain_epochs, lr, optimizer, weight_decay, batch_size, seed)  # checks the settings
    train = as_dataset(train)
    test = as_dataset(test) if test is not None else None

    def schedule(final: float, step: int) -> float:
        return final if step == steps else 1.0 - (1.0 - final) ** (step / steps)

    log = []
    for step in range(1, steps + 1):
        magnitude(model, schedule(target, step), scope=scope,
                  rates={name: schedule(rate, step) for name, rate in rates.items()})
        history = training.fit(model, train, epochs=retrain_epochs, lr=lr, optimizer=optimizer,
                               weight_decay=weight_decay, batch_size=batch_size,
                               seed=seed + step, progress=progress)
        log.append(PruneStep(step=step, sparsity=sparsity(model),
                             train_loss=history.loss[-1] if history.loss else float("nan"),
                             accuracy=training.evaluate(model, test) if test is not None
                             else None))
    return log
