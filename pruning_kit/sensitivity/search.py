"""Finding the region first: a Bayesian search with early stopping (BOHB-like).

:func:`optuna_search` searches learning rate and weight decay with Optuna's
TPE sampler and Hyperband pruner; :func:`grid_around` spans a log-spaced grid
around the best configuration it found, ready for
:func:`pruning_kit.sensitivity.grid_search`.

Example:
    >>> lrs, wds = grid_around({"lr": 1e-2, "weight_decay": 1e-4}, points=3, decades=2)
    >>> [f"{v:.0e}" for v in lrs]
    ['1e-03', '1e-02', '1e-01']
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from torch import nn

from ..train import evaluate, fit, seed_everything
from .._checks import InvalidParameterError, check_int, check_number, check_callable

__all__ = ["optuna_search", "grid_around"]


def optuna_search(model_fn: Callable[[], nn.Module], train, val, *, n_trials: int = 20,
                  lr_range: tuple = (1e-4, 1e-1), weight_decay_range: tuple = (1e-6, 1e-2),
                  epochs: int = 3, optimizer: str = "adam", batch_size: int = 64, seed: int = 0,
                  storage: str | None = None,
                  study_name: str = "lr_weight_decay", timeout: float | None = None,
                  verbose: bool = False):
    """Search learning rate and weight decay with Optuna: TPE sampler + Hyperband pruner.

    Every trial trains ``model_fn()`` for up to ``epochs`` epochs and reports
    validation accuracy after each; Hyperband stops unpromising trials early
    (the "BOHB" idea: Bayesian optimisation + Hyperband). The study lives in
    memory unless ``storage`` names a database (``"sqlite:///study.db"``): then
    it is saved there and resumed when it exists, so a long search can be
    interrupted and continued. Nothing is written by default.

    Args:
        model_fn: returns a new, untrained model.
        train, val: data to train on and to score trials with.
        n_trials, timeout: how long to search.
        lr_range, weight_decay_range: (low, high), searched log-uniformly.
        epochs, optimizer, batch_size, seed: training of each trial.
        storage, study_name: where the study lives (``None``: in memory).
        verbose: Optuna's per-trial log lines.

    Returns:
        the ``optuna.Study`` (``study.best_params`` has ``lr`` and ``weight_decay``).

    Example:
        >>> import torch, pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,)))
        >>> study = optuna_search(lambda: pk.models.lenet_300_100(64), data, data, n_trials=2,
        ...                       epochs=1)
        >>> sorted(study.best_params)
        ['lr', 'weight_decay']
    """
    import optuna

    check_callable("model_fn", model_fn, hint="one that returns a new, untrained model each "
                   "call, e.g. pk.models.lenet_300_100")
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
