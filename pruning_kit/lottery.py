"""Lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

:func:`imp` trains a network, prunes a fraction of the weights that remain
(smallest magnitudes), puts the survivors back to their values at iteration
``rewind_iteration`` of the first training (0: the original initialisation)
and trains again, round after round. The controls train the same sparsity
pattern without the ticket's initialisation: :func:`reinit_control` keeps the
masks and draws fresh initial weights; :func:`random_prune_control` draws
random masks with the same count per layer.

Every training records, on a validation split carved out of the training
data, the iteration with the lowest validation loss (the paper's early-stop
iteration), and the test accuracy at the end and at that iteration.

Example:
    >>> import pruning_kit as pk
    >>> train, test = pk.data.load("digits")
    >>> model_fn = lambda: pk.models.lenet_300_100(in_features=64)
    >>> rounds = pk.lottery.imp(model_fn, train, test, rounds=2, epochs=2, val_size=200)
    >>> [round(r.remaining, 3) for r in rounds]
    [1.0, 0.802, 0.643]
    >>> control = pk.lottery.reinit_control(model_fn, rounds[-1].masks, train, test, epochs=2,
    ...                                     val_size=200)
    >>> control.kind, round(control.remaining, 3)
    ('reinit', 0.643)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import prune
from .data import TensorData, as_dataset
from .train import Recipe, correct, evaluate, fit, seed_everything, uses_recipe
from ._checks import InvalidParameterError, check_int, check_fraction, check_choice, check_seed

__all__ = ["imp", "reinit_control", "random_prune_control", "split_validation", "TicketRound"]

#: Seed of the validation split, the same for every run so tickets and controls compare.
VAL_SEED = 0


@dataclass
class TicketRound:
    """What one training of a (sparse) network achieved.

    Attributes:
        round: pruning round (0 = dense); -1 for a control.
        remaining: fraction of prunable weights left (1.0 = dense).
        accuracy: test accuracy at the end of training.
        early_stop_iteration: iteration with the lowest validation loss.
        masks: ``{layer name: 0/1 mask}`` the network was trained with.
        early_stop_accuracy: test accuracy at ``early_stop_iteration``.
        val_loss: the lowest validation loss.
        kind: ``"dense"``, ``"ticket"``, ``"reinit"`` or ``"random"``.
        evals: the validation curve, ``{"iteration", "loss", "accuracy"}`` every
            ``eval_every`` iterations (as ``pk.train.History.evals``); for plots
            of training progress like the paper's Figure 3.
        early_stop_correct: which test examples the network got right at
            ``early_stop_iteration`` (a bool tensor, ``pk.train.correct``): two
            runs' tensors are what ``pk.stats.paired`` compares.
    """

    round: int
    remaining: float
    accuracy: float
    early_stop_iteration: int
    masks: dict = field(repr=False)
    early_stop_accuracy: float = math.nan
    val_loss: float = math.nan
    kind: str = "ticket"
    evals: list = field(default_factory=list, repr=False)
    early_stop_correct: torch.Tensor | None = field(default=None, repr=False)

    def row(self) -> dict:
        """The record without the masks and the curve (for a pandas DataFrame)."""
        return {"round": self.round, "kind": self.kind, "remaining": self.remaining,
                "accuracy": self.accuracy, "early_stop_iteration": self.early_stop_iteration,
                "early_stop_accuracy": self.early_stop_accuracy, "val_loss": self.val_loss}


def split_validation(train, size: int = 500, *, seed: int = VAL_SEED):
    """Split ``size`` random examples off ``train`` for validation.

    Args:
        train: a ``TensorData`` or ``(images, labels)``.
        size: number of validation examples (between 1 and ``len(train) - 1``).
        seed: seed of the split (fixed by default, so every run uses the same one).

    Returns:
        ``(train_part, val)`` as ``TensorData``.

    Example:
        >>> import pruning_kit as pk
        >>> train, _ = pk.data.load("digits")
        >>> part, val = split_validation(train, 300)
        >>> len(part) + len(val) == len(train), len(val)
        (True, 300)
    """
    train = as_dataset(train)
    check_int("val_size", size, low=1, high=len(train) - 1,
              hint=f"the validation examples taken out of {len(train)} training examples")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(seed)))
    keep, held = order[size:].sort().values, order[:size].sort().values
    name = getattr(train, "name", "data")
    return (TensorData(train.images[keep], train.labels[keep], name=f"{name}-train"),
            TensorData(train.images[held], train.labels[held], name=f"{name}-val"))


@dataclass
class _Settings:
    train: TensorData
    val: TensorData
    test: TensorData
    epochs: int
    lr: float
    batch_size: int
    optimizer: str
    weight_decay: float
    eval_every: int
    progress: bool


def _settings(train, test, epochs, lr, val, val_size, eval_every, batch_size, optimizer,
              weight_decay, progress) -> _Settings:
    test = as_dataset(test)
    if val is None:
        train, val = split_validation(train, val_size)
    else:
        train, val = as_dataset(train), as_dataset(val)
    Recipe(epochs, lr, optimizer, weight_decay, batch_size)  # checks the training settings
    check_int("epochs", epochs, low=1)
    check_int("eval_every", eval_every, low=1, hint="iterations between validation checks")
    return _Settings(train, val, test, epochs, float(lr), batch_size, optimizer, weight_decay,
                     eval_every, progress)


def _build(model_fn: Callable, seed: int) -> nn.Module:
    """A fresh model from ``model_fn`` with the global RNG seeded first."""
    if not callable(model_fn) or isinstance(model_fn, nn.Module):
        raise InvalidParameterError("model_fn must be a function returning a new model, e.g. "
                                    f"pk.models.lenet_300_100; got {type(model_fn).__name__}")
    seed_everything(seed)
    model = model_fn()
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model_fn must return a torch.nn.Module, got {type(model).__name__}")
    layers = prune.prunable_layers(model)
    if any(prune.is_pruned(layer) for _, layer in layers):
        raise InvalidParameterError("model_fn must return an unpruned model (masks are managed here)")
    return model


def _remaining(masks: dict) -> float:
    kept = sum(int(m.sum()) for m in masks.values())
    return kept / sum(m.numel() for m in masks.values())


def _train(model, s: _Settings, seed: int, round_: int, kind: str, on_step=None) -> TicketRound:
    """Train ``model`` in place and record a :class:`TicketRound`."""
    test_accuracy, test_correct = {}, {}

    def watch(net, step):
        if step % s.eval_every == 0:
            right = test_correct[step] = correct(net, s.test)
            test_accuracy[step] = int(right.sum()) / max(1, len(right))   # = evaluate(net, test)
        if on_step is not None:
            on_step(net, step)

    seed_everything(seed)
    history = fit(model, s.train, epochs=s.epochs, lr=s.lr, optimizer=s.optimizer,
                  weight_decay=s.weight_decay, batch_size=s.batch_size, seed=seed,
                  progress=s.progress, val=s.val, eval_every=s.eval_every, callbacks=[watch])
    best = history.best_eval()
    mask = prune.masks(model)
    return TicketRound(round=round_, remaining=_remaining(mask), accuracy=evaluate(model, s.test),
                       early_stop_iteration=best["iteration"], masks=mask,
                       early_stop_accuracy=test_accuracy.get(best["iteration"], math.nan),
                       val_loss=best["loss"], kind=kind,
                       evals=[dict(e) for e in history.evals],
                       early_stop_correct=test_correct.get(best["iteration"]))


@uses_recipe
def imp(model_fn: Callable[[], nn.Module], train, test, *, rounds: int = 5, rate: float = 0.2,
        rewind_iteration: int = 0, epochs: int = 10, lr: float = 2e-3, seed: int = 0,
        scope: str = "global", output_rate: float | None = None, output_layer: str | None = None,
        rates: dict | None = None, val=None, val_size: int = 500, eval_every: int = 25,
        batch_size: int = 64, optimizer: str = "adam", weight_decay: float = 0.0,
        progress: bool = False, recipe: Recipe | None = None) -> list[TicketRound]:
    """Iterative magnitude pruning with rewinding: find winning tickets.

    Round 0 trains the dense network from ``model_fn()`` (built after
    ``seed_everything(seed)``). Each later round prunes ``rate`` of the weights
    still remaining (by magnitude of the trained weights; the output layer at
    ``output_rate``), resets the surviving weights and the biases to their
    values at iteration ``rewind_iteration`` of round 0, and trains again with
    the same data order. After ``r`` rounds about ``(1 - rate) ** r`` of the
    weights are left.

    Args:
        model_fn: returns a new, unpruned model (e.g. ``pk.models.lenet_300_100``).
        train: training data; ``val_size`` examples are held out for
            validation unless ``val`` is given.
        test: data the recorded accuracies are measured on.
        rounds: number of pruning rounds (>= 0).
        rate: fraction of the remaining weights pruned per round, in [0, 1].
        rewind_iteration: iteration of round 0 whose weights the tickets start
            from (0 = the original initialisation, as in the 2019 paper;
            small k > 0 = "late resetting" for deeper networks).
        epochs, lr, batch_size, optimizer, weight_decay: training settings
            (Adam at 2e-3 for 10 epochs reaches ~94% on mnist5k).
        seed: seeds the initialisation and the data order; the same seed
            gives the same rounds.
        scope: ``"global"`` (one threshold over the layers other than the
            output layer, as the paper prunes VGG-19 and ResNet-18; the kit's
            default wherever a scope is chosen) or ``"local"`` (every layer
            loses ``rate`` of what it has left, the paper's LeNet setting).
        output_rate: rate for the output layer; ``None`` means ``rate / 2``
            (the paper's convention). Pass ``rate`` to treat it like the others.
        output_layer: name of the output layer; ``None``: the last prunable layer.
        rates: ``{layer name: rate}`` for layers pruned at their own rate each
            round (the paper's conv networks prune the convolutions at 10-15%
            and the fully connected layers at 20%); they override ``rate`` and
            ``output_rate`` for those layers.
        val: validation data (then ``train`` is used whole).
        val_size: size of the split held out of ``train`` when ``val`` is None
            (always the same examples, see :func:`split_validation`).
        eval_every: iterations between validation (and test) measurements.
        progress: show progress bars.
        recipe: a :class:`pruning_kit.train.Recipe`; the settings it gives
            (epochs, lr, optimizer, weight_decay, batch_size, seed) replace
            these defaults, the others keep them.

    Returns:
        ``rounds + 1`` :class:`TicketRound` records, round 0 first (dense).

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> rounds = imp(lambda: pk.models.lenet_300_100(64), train, test, rounds=1, rate=0.5,
        ...              epochs=1, val_size=200)
        >>> [(r.round, r.kind, round(r.remaining, 3)) for r in rounds]
        [(0, 'dense', 1.0), (1, 'ticket', 0.505)]
    """
    check_int("rounds", rounds, low=0)
    rate = check_fraction("rate", rate, hint="the fraction of the remaining weights pruned")
    output_rate = rate / 2 if output_rate is None else check_fraction("output_rate", output_rate)
    check_choice("scope", scope, prune.SCOPES)
    seed = check_seed(seed)
    s = _settings(train, test, epochs, lr, val, val_size, eval_every, batch_size, optimizer,
                  weight_decay, progress)
    model = _build(model_fn, seed)
    names = [name for name, _ in prune.prunable_layers(model)]
    if output_layer is None:
        output_layer = names[-1]
    elif output_layer not in names:
        raise InvalidParameterError(f"output_layer must name a prunable layer {names}, got {output_layer!r}")
    layer_rates = {output_layer: output_rate}
    if rates is not None:
        if not isinstance(rates, dict) or set(rates) - set(names):
            raise InvalidParameterError(f"rates must be a dict {{layer name: rate}} over the prunable "
                                        f"layers {names}, got {rates!r}")
        layer_rates.update({name: check_fraction(f"rates[{name!r}]", value,
                                                 hint="the fraction of that layer's remaining "
                                                      "weights pruned per round")
                            for name, value in rates.items()})
    per_epoch = -(-len(s.train) // s.batch_size)
    total = per_epoch * s.epochs
    check_int("rewind_iteration", rewind_iteration, low=0, high=total,
              hint="the iterations of one training")

    rewind = {}

    def snapshot(net, step):
        if step == rewind_iteration:
            rewind.update({k: v.detach().clone() for k, v in net.state_dict().items()})

    results = [_train(model, s, seed, 0, "dense", on_step=snapshot)]
    for round_ in range(1, rounds + 1):
        prune.magnitude_step(model, rate, scope=scope, rates=layer_rates)
        masks = prune.masks(model)
        model = _build(model_fn, seed)
        model.load_state_dict(rewind)
        prune.apply_masks(model, masks)
        results.append(_train(model, s, seed, round_, "ticket"))
    return results


@uses_recipe
def reinit_control(model_fn: Callable[[], nn.Module], masks: dict, train, test, *,
                   epochs: int = 10, lr: float = 2e-3, seed: int = 1,
                   data_seed: int | None = None, val=None,
                   val_size: int = 500, eval_every: int = 25, batch_size: int = 64,
                   optimizer: str = "adam", weight_decay: float = 0.0,
                   progress: bool = False,
                   recipe: Recipe | None = None) -> TicketRound:
    """Train a ticket's masks from a fresh random initialisation (the paper's control).

    Builds ``model_fn()`` after ``seed_everything(seed)`` (use a seed other
    than the one the ticket came from), applies ``masks`` and trains with the
    same settings and validation split as :func:`imp`. Frankle & Carbin's
    control changes the initial weights only: pass the ticket's seed as
    ``data_seed`` so that the examples come in the same order as in
    :func:`imp`, and only the initialisation differs.

    Args:
        model_fn: returns a new, unpruned model of the masks' architecture.
        masks: ``{layer name: 0/1 mask}``, e.g. ``rounds[-1].masks``.
        train, test, epochs, lr, val, val_size, eval_every, batch_size,
        optimizer, weight_decay, progress, recipe: as in :func:`imp`.
        seed: seed of the new initialisation (and of the data order when
            ``data_seed`` is None).
        data_seed: seed of the data order (the shuffling of every epoch);
            ``None`` uses ``seed``.

    Returns:
        A :class:`TicketRound` with ``round=-1`` and ``kind="reinit"``.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> m = pk.prune.masks(pk.prune.magnitude(pk.models.lenet_300_100(64), 0.8, scope="local"))
        >>> r = reinit_control(lambda: pk.models.lenet_300_100(64), m, train, test, epochs=2,
        ...                    val_size=200)
        >>> round(r.remaining, 3), r.accuracy > 0.5
        (0.2, True)
    """
    seed = check_seed(seed)
    data_seed = seed if data_seed is None else check_seed(data_seed, "data_seed")
    s = _settings(train, test, epochs, lr, val, val_size, eval_every, batch_size, optimizer,
                  weight_decay, progress)
    model = _build(model_fn, seed)
    prune.apply_masks(model, masks)
    return _train(model, s, data_seed, -1, "reinit")


@uses_recipe
def random_prune_control(model_fn: Callable[[], nn.Module], masks: dict, train, test, *,
                         epochs: int = 10, lr: float = 2e-3, seed: int = 2,
                         data_seed: int | None = None, val=None,
                         val_size: int = 500, eval_every: int = 25, batch_size: int = 64,
                         optimizer: str = "adam", weight_decay: float = 0.0,
                         progress: bool = False,
                         recipe: Recipe | None = None) -> TicketRound:
    """Train random masks with as many weights per layer as ``masks`` keep.

    The sparsity pattern is drawn at random (``seed``), layer by layer with the
    same count per layer, then trained from a fresh initialisation (``seed``).

    Args:
        model_fn, masks, train, test, epochs, lr, val, val_size, eval_every,
        batch_size, optimizer, weight_decay, progress, recipe: as in :func:`reinit_control`.
        seed: seed of the random masks and the initialisation (and of the data
            order when ``data_seed`` is None).
        data_seed: seed of the data order; ``None`` uses ``seed``. Pass the
            ticket's seed to train in the same order as :func:`imp`.

    Returns:
        A :class:`TicketRound` with ``round=-1`` and ``kind="random"``.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> m = pk.prune.masks(pk.prune.magnitude(pk.models.lenet_300_100(64), 0.8, scope="local"))
        >>> r = random_prune_control(lambda: pk.models.lenet_300_100(64), m, train, test,
        ...                          epochs=1, val_size=200)
        >>> r.kind, {k: int(v.sum()) for k, v in r.masks.items()} == {
        ...     k: int(v.sum()) for k, v in m.items()}
        ('random', True)
    """
    seed = check_seed(seed)
    data_seed = seed if data_seed is None else check_seed(data_seed, "data_seed")
    s = _settings(train, test, epochs, lr, val, val_size, eval_every, batch_size, optimizer,
                  weight_decay, progress)
    model = _build(model_fn, seed)
    layers = dict(prune.prunable_layers(model))
    if not isinstance(masks, dict) or set(masks) - set(layers):
        raise InvalidParameterError(f"masks must be a dict keyed by the model's prunable layers "
                                    f"{list(layers)}, got keys {list(masks) if isinstance(masks, dict) else masks!r}")
    counts = {name: int((m == 0).sum()) for name, m in masks.items()}
    generator = torch.Generator().manual_seed(seed)
    random_masks = {}
    for name, mask in masks.items():
        flat = torch.ones(mask.numel(), dtype=prune.stored_weight(layers[name]).dtype)
        flat[torch.randperm(mask.numel(), generator=generator)[:counts[name]]] = 0
        random_masks[name] = flat.view_as(mask)
    prune.apply_masks(model, random_masks)
    return _train(model, s, data_seed, -1, "random")
