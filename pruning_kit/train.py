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

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import as_dataset, loader
from ._checks import InvalidParameterError, check_model

__all__ = ["fit", "evaluate", "evaluate_loss", "seed_everything", "num_threads", "History",
           "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = (None, "cosine", "step")
LOSSES = ("cross_entropy", "reconstruction")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run repeats exactly.

    Example:
        >>> seed_everything(1); a = torch.rand(2)
        >>> seed_everything(1); torch.equal(a, torch.rand(2))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParameterError(f"seed must be an int, got {seed!r}")
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
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameterError(f"threads must be a positive int or None, got {n!r}")
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


def fit(model: nn.Module, train, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
        weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0, progress: bool = True,
        *, momentum: float = 0.9, schedule: str | None = None, loss="cross_entropy",
        val=None, eval_every: int | None = None, iterations: int | None = None,
        callbacks: Iterable[Callable] = (), threads: int | None = 1) -> History:
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

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> h1 = fit(pk.models.lenet_300_100(64), train, epochs=1, seed=3, progress=False)
        >>> len(h1.frame())
        1
    """
    check_model(model)
    train = as_dataset(train)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InvalidParameterError(f"epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise InvalidParameterError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise InvalidParameterError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise InvalidParameterError(f"eval_every must be a positive int or None, got {eval_every!r}")
    if eval_every is not None and val is None:
        raise InvalidParameterError("eval_every needs val= data to evaluate on")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 0):
        raise InvalidParameterError(f"iterations must be a non-negative int or None, got {iterations!r}")
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


def evaluate(model: nn.Module, data, batch_size: int = 1000, *, threads: int | None = 1) -> float:
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


def evaluate_loss(model: nn.Module, data, loss="cross_entropy", batch_size: int = 1000, *,
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
