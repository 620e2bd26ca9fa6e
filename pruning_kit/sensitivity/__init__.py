"""Does structured pruning move the best learning rate and weight decay?

A small version of the study "Are hyperparameters overrated?" (Matthiesen,
Ask, Ödman, tinyML EMEA 2023): train a base model on a learning-rate x
weight-decay grid, prune it structurally at a few ratios, train the pruned
architecture on the same grid, both from scratch (``"retrain"``) and from the
pruned weights (``"finetune"``), and compare the accuracy surfaces. One module
per step:

- :mod:`.grid`: :func:`grid_search` / :func:`sensitivity_study` run the grids,
  one pandas DataFrame with a row per setting, learning rate and weight decay;
- :mod:`.analysis`: :func:`top_configs`, :func:`confidence_ellipse`,
  :func:`surface_distance` (Wasserstein), :func:`top_overlap` (Jaccard) and
  :func:`summary` compare the surfaces;
- :mod:`.search`: :func:`optuna_search` and :func:`grid_around` find the
  region first (TPE with a Hyperband pruner, like BOHB);
- the heatmaps are figures, in :mod:`pruning_kit.plots`
  (:func:`~pruning_kit.plots.plot_heatmap`, :func:`~pruning_kit.plots.plot_heatmaps`),
  and answer here too.

Every analysis works in log10 space, so every learning rate and weight decay
must be positive (use 1e-6 rather than 0 for "no weight decay").

Example:
    >>> import pandas as pd, pruning_kit as pk
    >>> frame = pd.DataFrame({"setting": "base", "lr": [1e-3, 1e-2, 1e-3, 1e-2],
    ...                       "weight_decay": [1e-4, 1e-4, 1e-3, 1e-3],
    ...                       "accuracy": [0.90, 0.95, 0.80, 0.946]})
    >>> pk.sensitivity.top_configs(frame, within=0.005)[["lr", "weight_decay"]].values.tolist()
    [[0.01, 0.0001], [0.01, 0.001]]
"""

from ..plots import plot_heatmap, plot_heatmaps
from .analysis import (TWO_SIGMA_MASS, Ellipse, confidence_ellipse, settings, summary, surface,
                       surface_distance, top_configs, top_overlap)
from .grid import COLUMNS, MODES, TARGETS, grid_search, reinitialize, sensitivity_study
from .search import grid_around, optuna_search

__all__ = ["COLUMNS", "TWO_SIGMA_MASS", "grid_search", "sensitivity_study", "top_configs",
           "Ellipse", "confidence_ellipse", "surface", "surface_distance", "top_overlap",
           "summary", "plot_heatmap", "plot_heatmaps", "optuna_search", "grid_around",
           "reinitialize", "TARGETS", "MODES", "settings"]
