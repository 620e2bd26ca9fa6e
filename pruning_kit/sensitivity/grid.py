"""Running the grids: a model trained for every (learning rate, weight decay) pair.

- :func:`grid_search`: one grid for one architecture, as a pandas DataFrame
  with the columns :data:`COLUMNS`, one row per configuration;
- :func:`sensitivity_study`: the base grid, then the same grid for the model
  pruned structurally at a few ratios, retrained from scratch
  (``"retrain"``, through :func:`reinitialize`) and fine-tuned from the
  pruned weights (``"finetune"``).

Example:
    >>> import torch, pruning_kit as pk
    >>> data = pk.data.TensorData(torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,)))
    >>> frame = grid_search(lambda: pk.models.lenet_300_100(64), data, data, lrs=[1e-3, 1e-2],
    ...                     weight_decays=[1e-5], epochs=1, progress=False)
    >>> list(frame.columns) == COLUMNS, len(frame)
    (True, 2)
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..train import Recipe, evaluate, fit, seed_everything, uses_recipe
from .._checks import (InvalidParameterError, check_model, check_int, check_number,
                       check_callable, check_choice)

__all__ = ["COLUMNS", "MODES", "TARGETS", "grid_search", "sensitivity_study", "reinitialize"]

COLUMNS = ["setting", "ratio", "mode", "lr", "weight_decay", "accuracy", "params", "macs"]


def _check_values(name: str, values) -> list[float]:
    if isinstance(values, (int, float)):
        values = [values]
    try:
        values = [float(v) for v in values]
    except TypeError:
        raise InvalidParameterError(f"{name} must be a list of positive numbers, got {values!r}") from None
    if not values or any(not v > 0 or not math.isfinite(v) for v in values):
        raise InvalidParameterError(f"{name} must be a non-empty list of positive numbers (the analysis "
                                    f"works in log10 space; use 1e-6 rather than 0), got {values!r}")
    if len(set(values)) != len(values):
        raise InvalidParameterError(f"{name} has repeated values: {values!r}")
    return sorted(values)


def _check_model_fn(model_fn) -> None:
    check_callable("model_fn", model_fn, hint="one that returns a new model each call, e.g. "
                   "pk.models.lenet5 or lambda: pk.models.vgg(11, width=0.25)")


@uses_recipe
def grid_search(model_fn: Callable[[], nn.Module], train, test, *, lrs: Iterable[float],
                weight_decays: Iterable[float], epochs: int = 2, optimizer: str = "adam",
                batch_size: int = 64, seed: int = 0, setting: str = "base", ratio: float = 0.0,
                mode: str = "base", example_input: torch.Tensor | None = None,
                progress: bool = True, recipe: Recipe | None = None):
    """Train a fresh model for every (learning rate, weight decay) pair and record test accuracy.

    The global seed is reset before each ``model_fn()`` call, so every
    configuration starts from the same weights and sees the same batches.

    Args:
        model_fn: returns a new model each call (a copy of a pruned model to
            fine-tune, or a freshly initialised one).
        train, test: :class:`pruning_kit.data.TensorData` to train and score on.
        lrs, weight_decays: positive values, best spaced evenly in log10.
        epochs, optimizer, batch_size, seed: for :func:`pruning_kit.train.fit`.
        setting, ratio, mode: labels written into every row.
        example_input: when given, ``params`` and ``macs`` are filled in.
        progress: a tqdm bar over the configurations.
        recipe: a :class:`pruning_kit.train.Recipe` with epochs, optimizer,
            batch_size and seed (lr and weight decay are the grid's axes).

    Returns:
        pandas DataFrame with columns :data:`COLUMNS`, one row per pair.

    Example:
        >>> import pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,)))
        >>> frame = grid_search(lambda: pk.models.lenet_300_100(64), data, data,
        ...                     lrs=[1e-3, 1e-2], weight_decays=[1e-5], epochs=1, progress=False)
        >>> frame[["lr", "weight_decay"]].values.tolist(), bool(frame.accuracy.between(0, 1).all())
        ([[0.001, 1e-05], [0.01, 1e-05]], True)
    """
    import pandas as pd
    from tqdm.auto import tqdm

    _check_model_fn(model_fn)
    lrs = _check_values("lrs", lrs)
    weight_decays = _check_values("weight_decays", weight_decays)
    check_int("epochs", epochs, low=1)
    configs = [(lr, wd) for wd in weight_decays for lr in lrs]
    rows = []
    for lr, wd in tqdm(configs, desc=setting, disable=not progress, leave=False):
        seed_everything(seed)
        model = model_fn()
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(f"model_fn must return an nn.Module, got {type(model).__name__}")
        fit(model, train, epochs=epochs, lr=lr, optimizer=optimizer, weight_decay=wd,
            batch_size=batch_size, seed=seed, progress=False)
        row = {"setting": setting, "ratio": float(ratio), "mode": mode, "lr": lr,
               "weight_decay": wd, "accuracy": evaluate(model, test),
               "params": metrics.count_params(model), "macs": np.nan}
        if example_input is not None:
            row["macs"] = metrics.macs(model, example_input)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def reinitialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fresh random weights for every layer that has ``reset_parameters`` (in place).

    This is "retraining from scratch": the pruned architecture, not its weights.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> before = layer.weight.clone()
        >>> torch.equal(reinitialize(layer, seed=1).weight, before)
        False
    """
    check_model(model)
    seed_everything(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return model


MODES = ("retrain", "finetune")
TARGETS = ("filters", "macs")
"""What a pruning ratio of :func:`sensitivity_study` counts: filters per conv, or MACs."""


@uses_recipe
def sensitivity_study(model_fn: Callable[[], nn.Module], train, test,
                      example_input: torch.Tensor, *, lrs: Iterable[float],
                      weight_decays: Iterable[float], ratios: Iterable[float] = (0.2, 0.4, 0.6),
                      modes: Iterable[str] = MODES, epochs: int = 2,
                      finetune_epochs: int | None = None, reference: tuple | None = None,
                      prune_ratios: dict | None = None, importance="l1",
                      target: str = "filters",
                      optimizer: str = "adam", batch_size: int = 64, seed: int = 0,
                      progress: bool = True, recipe: Recipe | None = None):
    """Learning-rate x weight-decay grids for a base model and its structurally pruned versions.

    1. The base architecture is trained on the grid (setting ``"base"``).
    2. A reference model is trained at ``reference = (lr, weight_decay)``
       (default: the base grid's best) and pruned with
       :func:`pruning_kit.structured.l1_filter_prune` at each ratio: with
       ``target="filters"`` a ratio is the fraction of filters removed from
       every conv (Li et al.); with ``target="macs"`` it is the share of the
       MACs removed, spread over the convs non-uniformly by
       :func:`pruning_kit.structured.macs_target_ratios` (the talk defines its
       ratios by FLOPs).
    3. Each pruned model is trained on the same grid: ``"retrain"`` from fresh
       random weights for ``epochs``, ``"finetune"`` from its pruned weights for
       ``finetune_epochs`` (default ``epochs``).

    Args:
        model_fn: returns a new, untrained base model.
        train, test: data to train on and to score with.
        example_input: a batch the model accepts (for pruning and MACs).
        lrs, weight_decays: the grid (positive values, log-spaced).
        ratios: pruning ratios in [0, 1): fractions of filters, or of MACs
            with ``target="macs"``.
        modes: any of ``"retrain"`` and ``"finetune"``.
        epochs, finetune_epochs: training length.
        reference: the configuration of the model that is pruned.
        prune_ratios, importance: passed to ``l1_filter_prune`` as ``ratios=``
            and ``importance=`` (non-uniform pruning, other scorings);
            ``prune_ratios`` only with ``target="filters"``.
        target: ``"filters"`` or ``"macs"`` (what a ratio counts).
        optimizer, batch_size, seed, progress: for :func:`grid_search`.
        recipe: a :class:`pruning_kit.train.Recipe` with epochs, optimizer,
            batch_size and seed (lr and weight decay are the grid's axes).

    Returns:
        one DataFrame with columns :data:`COLUMNS`; settings are named
        ``"base"``, ``"retrain 20%"``, ``"finetune 20%"``, ...;
        ``frame.attrs["filters_removed"]`` holds, per ratio label (``"20%"``),
        the fraction of filters each conv lost, and ``frame.attrs["target"]``
        the target.

    Example:
        >>> import pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,)))
        >>> frame = sensitivity_study(pk.models.lenet5, data, data, data.images[:1],
        ...     lrs=[1e-3, 1e-2], weight_decays=[1e-4], ratios=[0.5], epochs=1, progress=False)
        >>> frame.groupby("setting", sort=False).size().to_dict()
        {'base': 2, 'retrain 50%': 2, 'finetune 50%': 2}
        >>> frame.attrs["filters_removed"]
        {'50%': {'conv1': 0.5, 'conv2': 0.5}}
    """
    import pandas as pd

    from ..structured import l1_filter_prune, macs_target_ratios

    _check_model_fn(model_fn)
    modes = list(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InvalidParameterError(f"modes must be chosen from {MODES}, got {unknown}")
    ratios = list(ratios)
    for r in ratios:
        check_number("each of ratios", r, low=0, high=1, low_open=True, high_open=True)
    check_choice("target", target, TARGETS)
    if target == "macs" and prune_ratios is not None:
        raise InvalidParameterError("prune_ratios sets per-layer filter ratios by hand; with "
                                    "target='macs' the per-layer ratios are computed: pass one or "
                                    "the other")
    check_int("epochs", epochs, low=1)
    if finetune_epochs is None:
        finetune_epochs = epochs
    check_int("finetune_epochs", finetune_epochs, low=1)
    common = dict(lrs=lrs, weight_decays=weight_decays, optimizer=optimizer,
                  batch_size=batch_size, seed=seed, example_input=example_input,
                  progress=progress)
    base = grid_search(model_fn, train, test, epochs=epochs, **common)
    frames = [base]
    if reference is None:
        best = base.loc[base.accuracy.idxmax()]
        reference = (best.lr, best.weight_decay)
    if not isinstance(reference, (tuple, list)) or len(reference) != 2:
        raise InvalidParameterError(f"reference must be a (lr, weight_decay) pair, got {reference!r}")
    seed_everything(seed)
    trained = model_fn()
    fit(trained, train, epochs=epochs, lr=float(reference[0]), optimizer=optimizer,
        weight_decay=float(reference[1]), batch_size=batch_size, seed=seed, progress=False)
    filters_removed = {}
    for ratio in ratios:
        label = f"{ratio:.0%}"
        if target == "macs":
            per_layer = macs_target_ratios(trained, ratio, example_input, importance=importance)
            pruned = l1_filter_prune(trained, 0.0, example_input, ratios=per_layer,
                                     importance=importance)
        else:
            pruned = l1_filter_prune(trained, ratio, example_input, ratios=prune_ratios,
                                     importance=importance)
        before = {n: m.out_channels for n, m in trained.named_modules() if hasattr(m, "out_channels")}
        filters_removed[label] = {
            n: 1 - m.out_channels / before[n] for n, m in pruned.named_modules()
            if hasattr(m, "out_channels") and n in before and m.out_channels != before[n]}
        if "retrain" in modes:
            frames.append(grid_search(
                lambda: reinitialize(copy.deepcopy(pruned), seed), train, test, epochs=epochs,
                setting=f"retrain {label}", ratio=ratio, mode="retrain", **common))
        if "finetune" in modes:
            frames.append(grid_search(
                lambda: copy.deepcopy(pruned), train, test, epochs=finetune_epochs,
                setting=f"finetune {label}", ratio=ratio, mode="finetune", **common))
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["target"] = target
    frame.attrs["filters_removed"] = filters_removed
    return frame
