"""Training and evaluation: :func:`fit`, :func:`evaluate`, :func:`seed_everything`.

The loop is closed and small on purpose; what a lesson needs to see during
training (rewinding snapshots, early-stop evaluations) comes in through
``callbacks`` and ``eval_every``. Small models on a 2-core laptop run faster
on one thread than on two (OpenMP spin-waits), so :func:`fit` and
:func:`evaluate` run single-threaded unless told otherwise.

Example:
    >>> import pruning_kit as pk
    >>> train, test = pk.data.load("digits")
    >>> model = pk.models.lenet_300_100(in_features=64)
    >>> history = pk.train.fit(model, train, epochs=3, seed=0, progress=False)
    >>> len(history.loss), pk.train.evaluate(model, test) > 0.85
    (3, True)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (InvalidParameterError, check_model, check_int, check_number, check_choice,
                      check_seed)
from .data import as_dataset, loader

__all__ = ["fit", "evaluate", "correct", "evaluate_loss", "seed_everything", "num_threads", "History",
           "Recipe", "uses_recipe", "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = (None, "cosine", "step")
LOSSES = ("cross_entropy", "reconstruction")


@dataclass(frozen=True)
class Recipe:
    """How to train: the settings every training function of the kit shares.

    In the manner of open_lth's hyperparameter dataclasses: one object to pass
    around instead of six keyword arguments. Every function that trains takes
    ``recipe=`` beside its own keyword arguments (``pk.train.fit``,
    ``pk.prune.iterative``, ``pk.lottery.imp``, ``pk.quant.deep_compress``,
    ``pk.structured.alpha_prune``, ``pk.sensitivity.grid_search``, ...).

    A recipe overrides only the settings it was given: a setting left out
    (``None``) keeps the default of the function the recipe is passed to, so
    ``pk.lottery.imp(..., recipe=Recipe(lr=1e-3))`` trains ``imp``'s 10 epochs,
    not ``fit``'s 5. Giving a setting both in the recipe and as a keyword
    argument is an error, so nothing is silently overridden.

    Args:
        epochs: passes over the training data (>= 0).
        lr: learning rate (> 0).
        optimizer: ``"adam"`` or ``"sgd"``.
        weight_decay: L2 penalty (>= 0).
        batch_size: examples per step (>= 1).
        seed: seeds the data order (and, where a function builds models, their
            initialisation).

    Example:
        >>> import pruning_kit as pk
        >>> quick = Recipe(epochs=1, lr=2e-3)
        >>> quick.given()
        {'epochs': 1, 'lr': 0.002}
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(64)
        >>> len(fit(model, train, recipe=quick, progress=False).loss)
        1
        >>> quick.replace(epochs=3).epochs, quick.epochs, quick.optimizer is None
        (3, 1, True)
        >>> Recipe(lr=0)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: lr must be a positive number, got 0
    """

    epochs: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    seed: int | None = None

    def __post_init__(self):
        if self.epochs is not None:
            check_int("epochs", self.epochs, low=0)
        if self.lr is not None:
            check_number("lr", self.lr, low=0, low_open=True)
        if self.optimizer is not None:
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.weight_decay is not None:
            check_number("weight_decay", self.weight_decay, low=0)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        if self.seed is not None:
            check_seed(self.seed)

    def given(self) -> dict:
        """The settings this recipe sets, ``{name: value}`` (those left at ``None`` are not in it)."""
        return {name: getattr(self, name) for name in RECIPE_FIELDS
                if getattr(self, name) is not None}

    def replace(self, **changes) -> "Recipe":
        """A copy with some settings changed: ``recipe.replace(lr=1e-4)``."""
        return dataclasses.replace(self, **changes)


RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))


def uses_recipe(function=None, **names):
    """Let a training function take ``recipe=`` in place of its training keyword arguments.

    The decorated function declares ``recipe=None`` (keyword-only) and its own
    keyword arguments for the settings. Called with a :class:`Recipe`, each
    setting the recipe gives replaces the function's own default; the settings
    it leaves out keep the function's defaults. Passing a setting explicitly
    as well raises, and so does a recipe that gives a setting the function has
    no use for (``qat_vs_ptq`` has no optimizer choice).

    The wrapper's ``recipe_parameters`` maps each recipe field the function
    takes to its parameter's name.

    Args:
        function: the function to wrap.
        **names: the function's name for a recipe field where it differs
            (``epochs="retrain_epochs"``).

    Example:
        >>> @uses_recipe(epochs="rounds")
        ... def train_toy(*, rounds=1, lr=0.1, seed=7, recipe=None):
        ...     return rounds, lr, seed
        >>> train_toy(recipe=Recipe(epochs=4, lr=0.5))      # seed keeps train_toy's 7
        (4, 0.5, 7)
        >>> train_toy.recipe_parameters
        {'epochs': 'rounds', 'lr': 'lr', 'seed': 'seed'}
        >>> train_toy(rounds=2, recipe=Recipe(epochs=3))
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: train_toy got both recipe= and rounds=; pass the setting in the recipe (recipe.replace(epochs=...)) or leave recipe out
    """
    if function is None:
        return functools.partial(uses_recipe, **names)
    signature = inspect.signature(function)
    if "recipe" not in signature.parameters:
        raise TypeError(f"{function.__name__} must declare a keyword argument recipe=None")
    unknown = set(names) - set(RECIPE_FIELDS)
    if unknown:
        raise TypeError(f"{sorted(unknown)} are not Recipe fields {RECIPE_FIELDS}")
    parameters = {f: names.get(f, f) for f in RECIPE_FIELDS
                  if names.get(f, f) in signature.parameters}

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        # Calls go through __wrapped__ (functools' name for the undecorated function), so a
        # test can stand in for the training and see exactly which settings arrive.
        inner = wrapper.__wrapped__
        bound = signature.bind(*args, **kwargs)
        recipe = bound.arguments.get("recipe")
        if recipe is None:
            return inner(*args, **kwargs)
        if not isinstance(recipe, Recipe):
            raise InvalidParameterError(f"recipe must be a pk.train.Recipe, got "
                                        f"{type(recipe).__name__}")
        for field_name, value in recipe.given().items():
            parameter = parameters.get(field_name)
            if parameter is None:
                raise InvalidParameterError(
                    f"recipe sets {field_name}={value!r}, which {function.__name__} does not "
                    f"use; leave it out of the recipe (recipe.replace({field_name}=None))")
            if parameter in bound.arguments:
                raise InvalidParameterError(
                    f"{function.__name__} got both recipe= and {parameter}=; pass the "
                    f"setting in the recipe (recipe.replace({field_name}=...)) or leave "
                    f"recipe out")
            bound.arguments[parameter] = value
        bound.arguments["recipe"] = None
        return inner(*bound.args, **bound.kwargs)

    wrapper.recipe_parameters = parameters
    return wrapper


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run repeats exactly.

    Example:
        >>> seed_everything(1); a = torch.rand(2)
        >>> seed_everything(1); torch.equal(a, torch.rand(2))
        True
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def num_threads(n: int | None):
    """Run a block with ``n`` PyTorch threads (``None`` leaves the setting alone).

    Example:
        >>> with num_threads(1):
        ...     torch.get_num_threads()
        1
    """
    if n is None:
        yield
        return
    check_int("threads", n, low=1, hint="or None to leave the setting alone")
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


@dataclass
class History:
    """What :func:`fit` records: one entry per epoch, plus periodic evaluations.

    ``evals`` holds ``{"iteration", "loss", "accuracy"}`` dicts measured on the
    ``val`` data every ``eval_every`` iterations (empty when not asked for).
    """

    loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    iterations: int = 0

    def frame(self):
        """The per-epoch record as a pandas DataFrame."""
        import pandas as pd

        data = {"epoch": list(range(1, len(self.loss) + 1)), "loss": self.loss,
                "train_accuracy": self.train_accuracy, "lr": self.lr}
        if self.val_accuracy:
            data["val_accuracy"] = self.val_accuracy
        return pd.DataFrame(data)

    def best_eval(self) -> dict | None:
        """The evaluation with the lowest validation loss (early-stopping point)."""
        return min(self.evals, key=lambda e: (e["loss"], e["iteration"])) if self.evals else None


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return lambda out, x, y: F.cross_entropy(out, y)
    if loss == "reconstruction":
        return lambda out, x, y: F.mse_loss(out, x)
    raise InvalidParameterError(f"loss must be one of {LOSSES} or a callable(output, images, labels), "
                                f"got {loss!r}")


def _make_optimizer(name, params, lr, weight_decay, momentum):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise InvalidParameterError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def _make_schedule(name, optimizer, epochs):
    if name is None:
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    raise InvalidParameterError(f"schedule must be one of {SCHEDULES}, got {name!r}")


@uses_recipe
def fit(model: nn.Module, train, *, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
        weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0, progress: bool = True,
        momentum: float = 0.9, schedule: str | None = None, loss="cross_entropy",
        val=None, eval_every: int | None = None, iterations: int | None = None,
        callbacks: Iterable[Callable] = (), threads: int | None = 1,
        recipe: Recipe | None = None) -> History:
    """Train ``model`` in place on ``train`` and return a :class:`History`.

    Args:
        model: the network; pruned models (``torch.nn.utils.prune``) train with
            their masks held fixed.
        train: a :class:`pruning_kit.data.TensorData` or ``(images, labels)``.
        epochs: passes over the data.
        lr: learning rate (> 0).
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        weight_decay: L2 penalty (>= 0).
        batch_size: examples per step.
        seed: seeds the shuffling (the model's initial weights are the caller's).
        progress: show a tqdm progress bar (notebook-aware); ``False`` is silent.
        schedule: ``None``, ``"cosine"`` or ``"step"`` (x0.1 at 50% and 75%).
        loss: ``"cross_entropy"``, ``"reconstruction"`` (MSE to the input, for
            autoencoders) or ``callable(output, images, labels)``.
        val: data evaluated at each epoch end, and every ``eval_every`` steps.
        eval_every: record ``val`` loss/accuracy every this many iterations.
        iterations: stop after this many optimizer steps (overrides ``epochs``).
        callbacks: called as ``callback(model, iteration)`` after every step
            (and once with iteration 0 before the first).
        threads: PyTorch threads while training (1 is fastest for small nets
            on a laptop; ``None`` keeps the current setting).
        recipe: a :class:`Recipe`; the settings it gives (epochs, lr,
            optimizer, weight_decay, batch_size, seed) replace these defaults.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> h1 = fit(pk.models.lenet_300_100(64), train, epochs=1, seed=3, progress=False)
        >>> len(h1.frame())
        1
    """
    check_model(model)
    train = as_dataset(train)
    Recipe(epochs, lr, optimizer, weight_decay, batch_size, seed)  # checks the settings
    if eval_every is not None:
        check_int("eval_every", eval_every, low=1)
        if val is None:
            raise InvalidParameterError("eval_every needs val= data to evaluate on")
    if iterations is not None:
        check_int("iterations", iterations, low=0)
    batches = loader(train, batch_size=batch_size, shuffle=True, seed=seed)
    if iterations is not None:
        epochs = -(-iterations // max(1, len(batches)))
    loss_fn = _loss_fn(loss)
    opt = _make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad],
                          lr, weight_decay, momentum)
    scheduler = _make_schedule(schedule, opt, epochs)
    callbacks = list(callbacks)
    history = History()
    classify = loss != "reconstruction"

    from tqdm.auto import tqdm

    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    step = 0
    with num_threads(threads):
        for cb in callbacks:
            cb(model, 0)
        if eval_every and val is not None:
            history.evals.append({"iteration": 0, **_measure(model, val, loss_fn, classify)})
        for _ in bar:
            model.train()
            total, correct, seen = 0.0, 0, 0
            for x, y in batches:
                opt.zero_grad(set_to_none=True)
                out = model(x)
                batch_loss = loss_fn(out, x, y)
                batch_loss.backward()
                opt.step()
                step += 1
                total += batch_loss.item() * len(y)
                seen += len(y)
                if classify:
                    correct += (out.argmax(1) == y).sum().item()
                for cb in callbacks:
                    cb(model, step)
                if eval_every and step % eval_every == 0:
                    history.evals.append({"iteration": step,
                                          **_measure(model, val, loss_fn, classify)})
                    model.train()
                if iterations is not None and step >= iterations:
                    break
            history.loss.append(total / max(1, seen))
            history.train_accuracy.append(correct / max(1, seen) if classify else float("nan"))
            history.lr.append(opt.param_groups[0]["lr"])
            if val is not None:
                history.val_accuracy.append(_measure(model, val, loss_fn, classify)["accuracy"])
            if scheduler is not None:
                scheduler.step()
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
            if iterations is not None and step >= iterations:
                break
    history.iterations = step
    model.eval()
    return history


@torch.no_grad()
def _measure(model, data, loss_fn, classify, batch_size=1000) -> dict:
    data = as_dataset(data)
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for x, y in loader(data, batch_size=batch_size):
        out = model(x)
        total += loss_fn(out, x, y).item() * len(y)
        if classify:
            correct += (out.argmax(1) == y).sum().item()
    model.train(was_training)
    n = max(1, len(data))
    return {"loss": total / n, "accuracy": correct / n if classify else float("nan")}


def evaluate(model: nn.Module, data, *, batch_size: int = 1000, threads: int | None = 1) -> float:
    """Top-1 accuracy of ``model`` on ``data``, a float in [0, 1].

    The model is evaluated in eval mode and put back in the mode it was in.

    Example:
        >>> import pruning_kit as pk
        >>> _, test = pk.data.load("digits")
        >>> 0.0 <= evaluate(pk.models.lenet_300_100(64), test) <= 1.0
        True
    """
    check_model(model)
    with num_threads(threads):
        return _measure(model, data, _loss_fn("cross_entropy"), True, batch_size)["accuracy"]


def correct(model: nn.Module, data, *, batch_size: int = 1000,
            threads: int | None = 1) -> torch.Tensor:
    """Which test examples ``model`` classifies correctly: a bool tensor, one entry per example.

    ``correct(model, test).float().mean()`` is :func:`evaluate`'s accuracy; two
    models' results on the same examples are what :func:`pruning_kit.stats.paired`
    compares. The model is evaluated in eval mode and put back in the mode it was in.

    Example:
        >>> import pruning_kit as pk
        >>> _, test = pk.data.load("digits")
        >>> right = correct(pk.models.lenet_300_100(64), test)
        >>> right.dtype, len(right) == len(test)
        (torch.bool, True)
    """
    check_model(model)
    data = as_dataset(data)
    was_training = model.training
    model.eval()
    parts = []
    with num_threads(threads), torch.no_grad():
        for x, y in loader(data, batch_size=batch_size):
            parts.append(model(x).argmax(1) == y)
    model.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)


def evaluate_loss(model: nn.Module, data, *, loss="cross_entropy", batch_size: int = 1000,
                  threads: int | None = 1) -> float:
    """Mean loss of ``model`` on ``data`` (``loss="reconstruction"`` for autoencoders).

    Example:
        >>> import pruning_kit as pk
        >>> _, test = pk.data.load("mnist5k")
        >>> evaluate_loss(pk.models.autoencoder(), test, loss="reconstruction") > 0
        True
    """
    check_model(model)
    with num_threads(threads):
        return _measure(model, data, _loss_fn(loss), loss != "reconstruction", batch_size)["loss"]
