"""Does structured pruning move the best learning rate and weight decay?

A small version of the study "Are hyperparameters overrated?" (Matthiesen,
Ask, Ödman, tinyML EMEA 2023): train a base model on a learning-rate x
weight-decay grid, prune it structurally at a few ratios, train the pruned
architecture on the same grid, both from scratch (``"retrain"``) and from the
pruned weights (``"finetune"``), and compare the accuracy surfaces:

- :func:`grid_search` / :func:`sensitivity_study`: the grids, as one pandas
  DataFrame (one row per setting, learning rate and weight decay);
- :func:`top_configs`: the configurations within 0.5% / 1% of the best;
- :func:`confidence_ellipse`: the 2-sigma ellipse (86.47% of a Gaussian) of the
  top configurations in log10 space;
- :func:`surface_distance` (Wasserstein) and :func:`top_overlap` (Jaccard):
  how far the pruned surface moved from the base one; :func:`summary` puts
  them in one table;
- :func:`plot_heatmap` / :func:`plot_heatmaps`: seaborn heatmaps with the top
  cells marked and the ellipse drawn;
- :func:`optuna_search` and :func:`grid_around`: a Bayesian search (TPE with a
  Hyperband pruner, like BOHB) to find the region before spanning the grid.

Every analysis works in log10 space, so every learning rate and weight decay
must be positive (use 1e-6 rather than 0 for "no weight decay").

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"setting": "base", "lr": [1e-3, 1e-2, 1e-3, 1e-2],
    ...                       "weight_decay": [1e-4, 1e-4, 1e-3, 1e-3],
    ...                       "accuracy": [0.90, 0.95, 0.80, 0.946]})
    >>> top_configs(frame, within=0.005)[["lr", "weight_decay"]].values.tolist()
    [[0.01, 0.0001], [0.01, 0.001]]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from . import metrics
from .train import Recipe, evaluate, fit, seed_everything, uses_recipe
from ._checks import (InvalidParameterError, check_model, check_int, check_number, check_fraction,
                      check_callable, check_choice)

__all__ = ["COLUMNS", "TWO_SIGMA_MASS", "grid_search", "sensitivity_study", "top_configs",
           "Ellipse", "confidence_ellipse", "surface", "surface_distance", "top_overlap",
           "summary", "plot_heatmap", "plot_heatmaps", "optuna_search", "grid_around",
           "reinitialize", "TARGETS", "MODES"]

COLUMNS = ["setting", "ratio", "mode", "lr", "weight_decay", "accuracy", "params", "macs"]
TWO_SIGMA_MASS = 1 - math.exp(-2)   # share of a 2-D Gaussian inside its 2-sigma ellipse: 86.47%


# --------------------------------------------------------------------------------------------
# Running the grids
# --------------------------------------------------------------------------------------------

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

    from .structured import l1_filter_prune, macs_target_ratios

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


# --------------------------------------------------------------------------------------------
# Analysing one surface
# --------------------------------------------------------------------------------------------

def _check_frame(frame):
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(f"frame must be a pandas DataFrame (from grid_search or "
                                    f"sensitivity_study), got {type(frame).__name__}")
    missing = {"lr", "weight_decay", "accuracy"} - set(frame.columns)
    if missing:
        raise InvalidParameterError(f"frame lacks the columns {sorted(missing)}; it needs lr, "
                                    "weight_decay and accuracy (and setting when it holds several grids)")
    if len(frame) == 0:
        raise InvalidParameterError("frame is empty")
    if (frame.lr <= 0).any() or (frame.weight_decay <= 0).any():
        raise InvalidParameterError("lr and weight_decay must all be positive: the analysis works in log10 "
                                    "space (use 1e-6 rather than 0)")


def _one_setting(frame, setting):
    """The rows of one grid; ``setting`` may be omitted when the frame holds only one."""
    _check_frame(frame)
    if "setting" not in frame.columns:
        if setting is not None:
            raise InvalidParameterError("frame has no 'setting' column to select from")
        return frame
    settings = list(dict.fromkeys(frame.setting))
    if setting is None:
        if len(settings) > 1:
            raise InvalidParameterError(f"frame holds several settings {settings}; pass setting=... "
                                        "to choose one")
        return frame
    if setting not in settings:
        raise InvalidParameterError(f"setting {setting!r} is not in the frame; it has {settings}")
    return frame[frame.setting == setting]


def _check_within(within) -> float:
    return check_fraction("within", within, high_open=True,
                          hint="an accuracy difference: 0.005 = 0.5 percentage points")


def top_configs(frame, within: float = 0.01, *, setting: str | None = None):
    """The configurations whose accuracy is within ``within`` of the best (absolute).

    ``within=0.005`` keeps everything at most 0.5 percentage points below the
    best accuracy of the same setting; with several settings in the frame and
    no ``setting`` given, each setting is compared with its own best.

    Returns:
        the matching rows, in the frame's order.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "weight_decay": 1e-4,
        ...                   "accuracy": [0.97, 0.975, 0.5]})
        >>> top_configs(f, within=0.01).lr.tolist()
        [0.001, 0.01]
    """
    within = _check_within(within)
    _check_frame(frame)
    if setting is None and "setting" in frame.columns:
        best = frame.groupby("setting").accuracy.transform("max")
        return frame[frame.accuracy >= best - within - 1e-12]
    rows = _one_setting(frame, setting)
    return rows[rows.accuracy >= rows.accuracy.max() - within - 1e-12]


@dataclass
class Ellipse:
    """A confidence ellipse in (log10 lr, log10 weight decay) space.

    ``width`` and ``height`` are full axis lengths (2 * n_std * sqrt of the
    covariance's eigenvalues) and ``angle`` is in degrees from the lr axis,
    as :class:`matplotlib.patches.Ellipse` takes them.
    """

    center: tuple
    width: float
    height: float
    angle: float
    covariance: np.ndarray
    n_points: int
    n_std: float = 2.0

    @property
    def mass(self) -> float:
        """Share of a 2-D Gaussian inside the ellipse (86.47% for 2 sigma)."""
        return 1 - math.exp(-self.n_std ** 2 / 2)

    def contains(self, log_lr: float, log_wd: float) -> bool:
        """Whether a point (in log10 units) lies inside or on the ellipse."""
        d = np.array([log_lr - self.center[0], log_wd - self.center[1]])
        if self.width == 0 and self.height == 0:
            return bool(np.allclose(d, 0))
        inv = np.linalg.pinv(self.covariance)
        inside = float(d @ inv @ d) <= self.n_std ** 2 + 1e-9
        in_span = np.allclose(self.covariance @ inv @ d, d, atol=1e-9)   # degenerate ellipses
        return bool(inside and in_span)


def confidence_ellipse(frame, within: float = 0.01, *, setting: str | None = None,
                       n_std: float = 2.0) -> Ellipse:
    """The ``n_std``-sigma ellipse of the top configurations in log10 space.

    The mean and covariance of ``(log10 lr, log10 weight_decay)`` over
    :func:`top_configs` give a Gaussian; its 2-sigma ellipse holds
    ``1 - exp(-2) = 86.47%`` of that Gaussian's mass. With one top point the
    ellipse is that point; with points on a line it is a segment.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-3, 1e-2], "weight_decay": [1e-4, 1e-4, 1e-3, 1e-3],
        ...                   "accuracy": [0.95, 0.95, 0.95, 0.5]})
        >>> e = confidence_ellipse(f, within=0.01)
        >>> [round(c, 3) for c in e.center], e.n_points, round(e.mass, 4)
        ([-2.667, -3.667], 3, 0.8647)
    """
    check_number("n_std", n_std, low=0, low_open=True)
    top = top_configs(_one_setting(frame, setting), within)
    points = np.log10(top[["lr", "weight_decay"]].to_numpy(dtype=float))
    center = points.mean(axis=0)
    cov = np.cov(points, rowvar=False) if len(points) > 1 else np.zeros((2, 2))
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 0, None)
    major = vectors[:, 1]
    angle = math.degrees(math.atan2(major[1], major[0]))
    return Ellipse((float(center[0]), float(center[1])),
                   width=float(2 * n_std * math.sqrt(values[1])),
                   height=float(2 * n_std * math.sqrt(values[0])),
                   angle=angle, covariance=cov, n_points=len(points), n_std=float(n_std))


def surface(frame, setting: str | None = None):
    """Accuracy as a table: rows weight decay (largest first), columns learning rate.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"lr": [1e-3, 1e-2], "weight_decay": 1e-4, "accuracy": [0.9, 0.8]})
        >>> surface(f).values.tolist()
        [[0.9, 0.8]]
    """
    rows = _one_setting(frame, setting)
    if rows.duplicated(["lr", "weight_decay"]).any():
        raise InvalidParameterError("the frame has several rows for one (lr, weight_decay) pair; "
                                    "select one setting")
    table = rows.pivot(index="weight_decay", columns="lr", values="accuracy")
    return table.sort_index(ascending=False).sort_index(axis=1)


# --------------------------------------------------------------------------------------------
# Comparing two surfaces
# --------------------------------------------------------------------------------------------

def _weights(rows, within):
    if within is None:
        w = rows.accuracy.to_numpy(dtype=float) - rows.accuracy.min()
    else:
        w = rows.accuracy.to_numpy(dtype=float) >= rows.accuracy.max() - _check_within(within) \
            - 1e-12
        w = w.astype(float)
    return w / w.sum() if w.sum() > 0 else np.full(len(rows), 1 / len(rows))


def surface_distance(frame, a: str = "base", b: str | None = None, *,
                     within: float | None = None) -> float:
    """Wasserstein (earth mover's) distance between two accuracy surfaces, in log10 decades.

    Each surface becomes a distribution over its grid points in
    ``(log10 lr, log10 weight_decay)``: the weight of a point is its accuracy
    minus the surface's worst accuracy, normalised to sum to 1 (or, with
    ``within``, uniform over the top configurations). The distance is how far,
    on average, mass must move to turn one into the other: 0 when the good
    regions coincide, 1 when one sits a decade away.

    Args:
        frame: a frame holding both settings.
        a, b: the settings compared (``b`` may be omitted when there are two).
        within: compare only the top configurations of each surface.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"setting": ["base"] * 2 + ["pruned"] * 2,
        ...                   "lr": [1e-3, 1e-2] * 2, "weight_decay": 1e-4,
        ...                   "accuracy": [0.9, 0.1, 0.1, 0.9]})
        >>> round(surface_distance(f, "base", "pruned"), 6)
        1.0
    """
    from scipy.stats import wasserstein_distance_nd

    rows_a, rows_b = _pair(frame, a, b)
    points_a = np.log10(rows_a[["lr", "weight_decay"]].to_numpy(dtype=float))
    points_b = np.log10(rows_b[["lr", "weight_decay"]].to_numpy(dtype=float))
    distance = wasserstein_distance_nd(points_a, points_b, _weights(rows_a, within),
                                       _weights(rows_b, within))
    return max(0.0, float(distance))   # the solver can return -1e-16 for identical surfaces


def _pair(frame, a, b):
    _check_frame(frame)
    if "setting" not in frame.columns:
        raise InvalidParameterError("frame needs a 'setting' column naming the grids to compare")
    settings = list(dict.fromkeys(frame.setting))
    if b is None:
        others = [s for s in settings if s != a]
        if len(others) != 1:
            raise InvalidParameterError(f"pass b=...: the frame holds the settings {settings}")
        b = others[0]
    return _one_setting(frame, a), _one_setting(frame, b)


def top_overlap(frame, a: str = "base", b: str | None = None, *, within: float = 0.01) -> float:
    """Jaccard overlap of the two settings' top configurations (1 = same set, 0 = disjoint).

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"setting": ["base"] * 3 + ["pruned"] * 3,
        ...                   "lr": [1e-3, 1e-2, 1e-1] * 2, "weight_decay": 1e-4,
        ...                   "accuracy": [0.9, 0.9, 0.1, 0.1, 0.9, 0.9]})
        >>> round(top_overlap(f, "base", "pruned"), 3)
        0.333
    """
    rows_a, rows_b = _pair(frame, a, b)
    key = lambda rows: set(map(tuple, top_configs(rows, within)[["lr", "weight_decay"]]
                               .to_numpy(dtype=float).round(12)))
    set_a, set_b = key(rows_a), key(rows_b)
    return len(set_a & set_b) / len(set_a | set_b)


def summary(frame, reference: str = "base", *, within: float = 0.01):
    """One row per setting: best accuracy and configuration, how robust, how far from the base.

    Columns: ``setting, best_accuracy, best_lr, best_weight_decay,
    share_within`` (fraction of the grid within ``within`` of the best: a
    larger share means less sensitive to the hyperparameters),
    ``ellipse_lr, ellipse_wd`` (the ellipse centre, log10), ``wasserstein``
    (:func:`surface_distance` to ``reference``, whole surfaces),
    ``wasserstein_top`` (the same between the top configurations only) and
    ``top_overlap`` (:func:`top_overlap` with ``reference``).

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"setting": ["base"] * 2 + ["pruned"] * 2,
        ...                   "lr": [1e-3, 1e-2] * 2, "weight_decay": 1e-4,
        ...                   "accuracy": [0.9, 0.5, 0.8, 0.79]})
        >>> summary(f)[["setting", "best_lr", "share_within", "top_overlap"]].values.tolist()
        [['base', 0.001, 0.5, 1.0], ['pruned', 0.001, 1.0, 0.5]]
    """
    import pandas as pd

    _check_frame(frame)
    if "setting" not in frame.columns:
        raise InvalidParameterError("frame needs a 'setting' column (as from sensitivity_study)")
    settings = list(dict.fromkeys(frame.setting))
    if reference not in settings:
        raise InvalidParameterError(f"reference {reference!r} is not a setting of the frame: {settings}")
    rows = []
    for s in settings:
        part = frame[frame.setting == s]
        best = part.loc[part.accuracy.idxmax()]
        ellipse = confidence_ellipse(part, within)
        rows.append({"setting": s, "best_accuracy": float(best.accuracy),
                     "best_lr": float(best.lr), "best_weight_decay": float(best.weight_decay),
                     "share_within": len(top_configs(part, within)) / len(part),
                     "ellipse_lr": ellipse.center[0], "ellipse_wd": ellipse.center[1],
                     "wasserstein": surface_distance(frame, reference, s),
                     "wasserstein_top": surface_distance(frame, reference, s, within=within),
                     "top_overlap": top_overlap(frame, reference, s, within=within)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Heatmaps
# --------------------------------------------------------------------------------------------

def _cell_step(grid: np.ndarray) -> float:
    """log10 change from one heatmap cell to the next (exact for log-spaced grids)."""
    if len(grid) == 1:
        return 1.0
    return float(np.polyfit(np.arange(len(grid)), np.log10(grid), 1)[0])


def _log_to_cell(grid: np.ndarray) -> Callable[[float], float]:
    """Map a log10 value to heatmap cell coordinates (cell i spans [i, i + 1])."""
    first, step = float(np.log10(grid[0])), _cell_step(grid)
    return lambda v: 0.5 + (v - first) / step


def plot_heatmap(frame, setting: str | None = None, *, ax=None, within=(0.005, 0.01),
                 ellipse: bool = True, annot: bool = True, cmap: str = "viridis",
                 vmin: float | None = None, vmax: float | None = None, title: str | None = None,
                 legend: bool = True):
    """Seaborn heatmap of accuracy over learning rate x weight decay, with the ellipse.

    Cells within the first ``within`` of the best get a star, within the second
    a dot; the 2-sigma ellipse of the configurations within ``max(within)`` is
    drawn in grid coordinates (exact for log-spaced grids).

    Args:
        frame: the grid(s); pick one with ``setting`` when it holds several.
        ax: matplotlib Axes to draw on (a new figure when None).
        within: one or two accuracy tolerances for the markers.
        ellipse: draw the confidence ellipse.
        annot: write the accuracies in the cells.
        cmap, vmin, vmax: colour scale (share vmin/vmax to compare plots).
        title: defaults to the setting's name.
        legend: explain the markers and the ellipse under the plot.

    Returns:
        the matplotlib Axes.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-3, 1e-2], "weight_decay": [1e-4, 1e-4, 1e-3, 1e-3],
        ...                   "accuracy": [0.95, 0.95, 0.95, 0.5]})
        >>> ax = plot_heatmap(f, title="toy")
        >>> ax.get_title(), len(ax.patches)   # the ellipse is the one patch
        ('toy', 1)
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Ellipse as EllipsePatch

    rows = _one_setting(frame, setting)
    within = (within,) if isinstance(within, (int, float)) else tuple(within)
    if not 1 <= len(within) <= 2:
        raise InvalidParameterError(f"within must be one or two tolerances, got {within!r}")
    within = tuple(sorted(_check_within(w) for w in within))
    table = surface(rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.9 * table.shape[1], 0.8 + 0.7 * table.shape[0]))
    sns.heatmap(table * 100, ax=ax, annot=annot, fmt=".1f", cmap=cmap,
                vmin=None if vmin is None else vmin * 100, vmax=None if vmax is None else vmax * 100,
                cbar_kws={"label": "accuracy (%)"},
                xticklabels=[f"{v:.0e}" for v in table.columns],
                yticklabels=[f"{v:.0e}" for v in table.index])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    lr_grid, wd_grid = np.array(table.columns, dtype=float), np.array(table.index, dtype=float)
    to_x, to_y = _log_to_cell(lr_grid), _log_to_cell(wd_grid)   # rows run largest first
    best = rows.accuracy.max()
    for tolerance, marker in zip(within, ["*", "."]):
        top = rows[rows.accuracy >= best - tolerance - 1e-12]
        if marker == "." and len(within) == 2:   # the dots mark only what the stars do not
            top = top[top.accuracy < best - within[0] - 1e-12]
        # markers sit in the cell's upper-right corner, clear of the written accuracy
        ax.scatter([to_x(v) + 0.32 for v in np.log10(top.lr)],
                   [to_y(v) - 0.3 for v in np.log10(top.weight_decay)],
                   marker=marker, s=90 if marker == "*" else 40, color="white",
                   edgecolors="black", linewidths=0.5, zorder=3,
                   label=f"within {tolerance:.1%} of best")
    if ellipse:
        e = confidence_ellipse(rows, within[-1])
        # the covariance in cell units (y runs downwards), redrawn from its eigenvectors
        scale = np.diag([1 / _cell_step(lr_grid), 1 / _cell_step(wd_grid)])
        values, vectors = np.linalg.eigh(scale @ e.covariance @ scale)
        values = np.clip(values, 0, None)
        angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
        ax.add_patch(EllipsePatch((to_x(e.center[0]), to_y(e.center[1])),
                                  2 * e.n_std * math.sqrt(values[1]),
                                  2 * e.n_std * math.sqrt(values[0]), angle=angle, fill=False,
                                  edgecolor="red", linewidth=2, zorder=4,
                                  label=f"{e.mass:.2%} ellipse"))
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18), fontsize="small", frameon=False,
                  ncol=2)
    if title is None:
        title = str(rows.setting.iloc[0]) if "setting" in rows.columns else ""
    ax.set_title(title)
    return ax


def plot_heatmaps(frame, settings: Iterable[str] | None = None, *, ncols: int = 3,
                  within=(0.005, 0.01), shared_scale: bool = False, **kwargs):
    """One :func:`plot_heatmap` per setting, side by side; returns the Figure.

    The legend is drawn under the first plot only; ``shared_scale=True`` gives
    all plots one colour scale.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"setting": ["base"] * 2 + ["pruned"] * 2,
        ...                   "lr": [1e-3, 1e-2] * 2, "weight_decay": 1e-4,
        ...                   "accuracy": [0.9, 0.5, 0.8, 0.79]})
        >>> [ax.get_title() for ax in plot_heatmaps(f).axes if ax.get_title()]
        ['base', 'pruned']
    """
    import matplotlib.pyplot as plt

    _check_frame(frame)
    if "setting" not in frame.columns:
        raise InvalidParameterError("frame needs a 'setting' column (as from sensitivity_study)")
    settings = list(dict.fromkeys(frame.setting)) if settings is None else list(settings)
    check_int("ncols", ncols, low=1)
    ncols = min(ncols, len(settings))
    nrows = -(-len(settings) // ncols)
    n_lr, n_wd = frame.lr.nunique(), frame.weight_decay.nunique()
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(ncols * (1.5 + 0.9 * n_lr), nrows * (1.3 + 0.7 * n_wd)))
    if shared_scale:
        kwargs.setdefault("vmin", float(frame.accuracy.min()))
        kwargs.setdefault("vmax", float(frame.accuracy.max()))
    for i, (ax, s) in enumerate(zip(axes.flat, settings)):
        plot_heatmap(frame, s, ax=ax, within=within, legend=(i == 0), **kwargs)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Finding the region first: Bayesian search with early stopping (BOHB-like)
# --------------------------------------------------------------------------------------------

def optuna_search(model_fn: Callable[[], nn.Module], train, val, *, n_trials: int = 20,
                  lr_range: tuple = (1e-4, 1e-1), weight_decay_range: tuple = (1e-6, 1e-2),
                  epochs: int = 3, optimizer: str = "adam", batch_size: int = 64, seed: int = 0,
                  storage: str | None = "sqlite:///optuna_sensitivity.db",
                  study_name: str = "lr_weight_decay", timeout: float | None = None,
                  verbose: bool = False):
    """Search learning rate and weight decay with Optuna: TPE sampler + Hyperband pruner.

    Every trial trains ``model_fn()`` for up to ``epochs`` epochs and reports
    validation accuracy after each; Hyperband stops unpromising trials early
    (the "BOHB" idea: Bayesian optimisation + Hyperband). The study is saved in
    ``storage`` (SQLite by default, resumed when it exists; ``None`` keeps it in
    memory), so a long search can be interrupted and continued.

    Args:
        model_fn: returns a new, untrained model.
        train, val: data to train on and to score trials with.
        n_trials, timeout: how long to search.
        lr_range, weight_decay_range: (low, high), searched log-uniformly.
        epochs, optimizer, batch_size, seed: training of each trial.
        storage, study_name: where the study lives.
        verbose: Optuna's per-trial log lines.

    Returns:
        the ``optuna.Study`` (``study.best_params`` has ``lr`` and ``weight_decay``).

    Example:
        >>> import pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,)))
        >>> study = optuna_search(lambda: pk.models.lenet_300_100(64), data, data, n_trials=2,
        ...                       epochs=1, storage=None)
        >>> sorted(study.best_params)
        ['lr', 'weight_decay']
    """
    import optuna

    _check_model_fn(model_fn)
    for name, (low, high) in (("lr_range", lr_range), ("weight_decay_range", weight_decay_range)):
        if not 0 < low < high:
            raise InvalidParameterError(f"{name} must be (low, high) with 0 < low < high, got {(low, high)}")
    check_int("epochs", epochs, low=1)
    check_int("n_trials", n_trials, low=1)
    steps_per_epoch = max(1, -(-len(train) // batch_size))

    def objective(trial):
        lr = trial.suggest_float("lr", *lr_range, log=True)
        wd = trial.suggest_float("weight_decay", *weight_decay_range, log=True)
        seed_everything(seed)
        model = model_fn()
        scores = []

        def report(net, iteration):
            if iteration and iteration % steps_per_epoch == 0:
                scores.append(evaluate(net, val))
                trial.report(scores[-1], len(scores))
                if trial.should_prune():
                    raise optuna.TrialPruned()

        fit(model, train, epochs=epochs, lr=lr, optimizer=optimizer, weight_decay=wd,
            batch_size=batch_size, seed=seed, progress=False, callbacks=[report])
        return scores[-1] if len(scores) == epochs else evaluate(model, val)

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=study_name, storage=storage, load_if_exists=True, direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs))
        study.optimize(objective, n_trials=n_trials, timeout=timeout)
    finally:
        optuna.logging.set_verbosity(old)
    return study


def grid_around(best, *, points: int = 5, decades: float = 2.0) -> tuple[list, list]:
    """Log-spaced ``lrs`` and ``weight_decays`` centred on a best configuration.

    Args:
        best: an ``optuna.Study``, a dict with ``lr`` and ``weight_decay``, or a
            ``(lr, weight_decay)`` pair.
        points: values per axis.
        decades: total width of each axis in powers of ten.

    Returns:
        ``(lrs, weight_decays)``, ready for :func:`grid_search`.

    Example:
        >>> lrs, wds = grid_around((1e-3, 1e-4), points=3, decades=2)
        >>> [f"{v:.0e}" for v in lrs], [f"{v:.0e}" for v in wds]
        (['1e-04', '1e-03', '1e-02'], ['1e-05', '1e-04', '1e-03'])
    """
    if hasattr(best, "best_params"):
        best = best.best_params
    if isinstance(best, dict):
        best = (best.get("lr"), best.get("weight_decay"))
    if not isinstance(best, (tuple, list)) or len(best) != 2 or \
            not all(isinstance(v, (int, float)) and v > 0 for v in best):
        raise InvalidParameterError("best must be an optuna Study, a dict with positive 'lr' and "
                                    f"'weight_decay', or a (lr, weight_decay) pair, got {best!r}")
    check_int("points", points, low=1)
    check_number("decades", decades, low=0)
    offsets = np.linspace(-decades / 2, decades / 2, points) if points > 1 else np.zeros(1)
    return tuple([float(10 ** (math.log10(v) + o)) for o in offsets] for v in best)
