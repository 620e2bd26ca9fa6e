"""One-shot pruning with a decaying alpha, and the iterative baseline.

:func:`alpha_prune` chooses the filters once, multiplies them by a factor
alpha that an :class:`AlphaSchedule` decays to 0 while the whole network is
fine-tuned, then cuts them: the rest of the network has learned to do without
them by then. :func:`iterative_filter_prune` is the classic prune / fine-tune
loop it is compared with; :func:`compare_alpha_iterative` runs both (and
one-shot cutting) to the same final size with the same training. The method
is the one of P. Gschoßmann's tutorial "Model Pruning" (tutorial week 7 of a
course "Learning for Self-Driving Cars"), which pruned a VGG-16 and an RGB
autoencoder's bottleneck this way.

Example:
    >>> [AlphaSchedule("step", rate=0.5)(k) for k in range(4)]
    [1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from .. import metrics
from .._checks import (InvalidParameterError, check_bool, check_choice, check_fraction, check_int,
                       check_number)
from ..train import Recipe, evaluate, evaluate_loss, fit, uses_recipe
from .coupling import channel_units, check_unmasked_model
from .filter_pruning import l1_filter_prune
from .importance import importance_fn
from .masking import copy_without_masks, mask_filters
from .selection import select_filters
from .surgery import remove_filters

__all__ = ["SCHEDULE_KINDS", "DEFAULT_RATES", "FROZEN_TYPES", "AlphaSchedule", "StructuredResult",
           "alpha_prune", "iterative_filter_prune", "compare_alpha_iterative"]

SCHEDULE_KINDS = ("step", "exponential", "multiplicative")
"""The kinds of :class:`AlphaSchedule`."""
DEFAULT_RATES = {"step": 0.25, "exponential": 1.0, "multiplicative": 0.7}
"""Each kind's rate when none is given: alpha reaches 0 in 4-5 steps."""
FROZEN_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
"""The layers whose weights ``alpha_prune(..., freeze_pretrained=True)`` keeps fixed."""


@dataclass
class AlphaSchedule:
    """How the factor on the filters chosen for removal decays to 0.

    With ``k`` decay steps done (one step every ``every`` epochs):

    - ``"step"``: ``alpha = max(0, 1 - rate * k)``, e.g. -0.1 per step;
    - ``"exponential"``: ``alpha = exp(-rate * k)``;
    - ``"multiplicative"``: ``alpha = (1 - rate) ** k``, i.e. times ``1 - rate``
      each step.

    Alpha below ``zero_below`` counts as 0 (the exponential kinds never reach
    it). Without a ``rate``, each kind gets one that reaches 0 in 4-5 steps:
    step 0.25, exponential 1.0, multiplicative 0.7.

    Example:
        >>> [AlphaSchedule("step")(k) for k in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
        >>> round(AlphaSchedule("multiplicative", rate=0.5)(3), 3)
        0.125
        >>> [AlphaSchedule(kind).steps_to_zero() for kind in ("step", "exponential", "multiplicative")]
        [4, 5, 4]
    """

    kind: str = "step"
    rate: float | None = None
    every: float = 1.0
    zero_below: float = 0.01

    def __post_init__(self):
        check_choice("kind", self.kind, SCHEDULE_KINDS)
        if self.rate is None:
            self.rate = DEFAULT_RATES[self.kind]
        check_number("rate", self.rate, low=0, low_open=True,
                     high=None if self.kind == "exponential" else 1, hint=f"for kind={self.kind!r}")
        check_number("every", self.every, low=0, low_open=True, hint="epochs per decay step")
        check_fraction("zero_below", self.zero_below, high_open=True)

    def __call__(self, k: float) -> float:
        """alpha after ``k`` decay steps."""
        if self.kind == "step":
            alpha = max(0.0, 1.0 - self.rate * k)
        elif self.kind == "exponential":
            alpha = math.exp(-self.rate * k)
        else:
            alpha = (1.0 - self.rate) ** k
        return 0.0 if alpha < self.zero_below else float(alpha)

    def steps_to_zero(self) -> int:
        """Decay steps until alpha is 0."""
        k = 0
        while self(k) > 0:
            k += 1
        return k


@dataclass
class StructuredResult:
    """A pruned model with how it got there: removed filters, training history, alphas."""

    model: nn.Module
    removed: dict
    histories: list = field(default_factory=list)
    alphas: list = field(default_factory=list)


def _train_kwargs(epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress):
    Recipe(epochs, lr, optimizer, weight_decay, batch_size, seed)  # checks the settings
    return dict(lr=lr, optimizer=optimizer, weight_decay=weight_decay, batch_size=batch_size,
                seed=seed, loss=loss, progress=progress)


@uses_recipe
def alpha_prune(model: nn.Module, ratio: float, example_input: torch.Tensor, train, *,
                ratios: dict | None = None, schedule: AlphaSchedule | str = "step",
                rate: float | None = None, epochs: int = 5, lr: float = 1e-3,
                optimizer: str = "adam", weight_decay: float = 0.0, batch_size: int = 64,
                seed: int = 0, loss="cross_entropy", importance="l1",
                freeze_pretrained: bool = False, progress: bool = False,
                recipe: Recipe | None = None) -> StructuredResult:
    """One-shot pruning with a decaying alpha: fade the chosen filters out, then cut them.

    The filters :func:`~.selection.select_filters` picks are multiplied by
    ``alpha`` (after their BatchNorm); alpha follows ``schedule`` while all
    weights are fine-tuned, so the rest of the network learns to do without
    them; once training ends (alpha forced to 0) they are removed physically.
    A warning says when alpha had not reached 0 before the end (the final cut
    is then abrupt: use more epochs or a faster decay).

    Should the pretrained weights be frozen or updated while alpha decays (the
    open question of Gschoßmann's tutorial, answered there by trial)? ``freeze_pretrained=True`` keeps the weights of
    every conv and Linear layer as they were trained and lets only the biases
    and normalisation parameters learn (batch-norm statistics follow the data
    as in any training): the network can shift its activations but cannot
    re-learn features to replace the fading ones. The default updates all of
    them, the tutorial's final setup.

    Args:
        model: a trained plain stack; not changed.
        ratio, ratios, importance: which filters, as in
            :func:`~pruning_kit.structured.l1_filter_prune`.
        example_input: a batch the model accepts.
        train: the fine-tuning data.
        schedule: an :class:`AlphaSchedule` or its kind (``"step"``,
            ``"exponential"``, ``"multiplicative"``), with ``rate`` if given.
        epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress:
            passed to :func:`pruning_kit.train.fit` (``loss="reconstruction"``
            for autoencoders).
        freeze_pretrained: train only biases and normalisation parameters
            (conv and Linear weights stay fixed) while alpha decays.
        recipe: a :class:`pruning_kit.train.Recipe`; the settings it gives replace
            these defaults, the others keep them.

    Returns:
        :class:`StructuredResult` with the small model (every parameter
        trainable again), the removed filters, the fine-tuning history and the
        alpha used at each epoch.

    Example:
        >>> import pruning_kit as pk
        >>> train = pk.data.TensorData(torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)))
        >>> x = train.images[:2]
        >>> result = alpha_prune(pk.models.lenet5(), 0.5, x, train, schedule="step", rate=0.5,
        ...                      epochs=3)
        >>> result.alphas, result.model.conv2.out_channels
        ([1.0, 0.5, 0.0], 25)
        >>> frozen = alpha_prune(pk.models.lenet5(), 0.5, x, train, rate=0.5, epochs=3,
        ...                      freeze_pretrained=True)
        >>> all(p.requires_grad for p in frozen.model.parameters())
        True
    """
    check_unmasked_model(model)
    check_bool("freeze_pretrained", freeze_pretrained)
    kwargs = _train_kwargs(epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress)
    if isinstance(schedule, str):
        schedule = AlphaSchedule(schedule, rate)
    elif not isinstance(schedule, AlphaSchedule):
        raise InvalidParameterError(f"schedule must be an AlphaSchedule or one of {SCHEDULE_KINDS}, "
                                    f"got {type(schedule).__name__}")
    elif rate is not None:
        raise InvalidParameterError("give rate inside the AlphaSchedule, not as well as one")
    removed = select_filters(model, ratio, example_input, ratios=ratios, importance=importance)
    removed = {n: idx for n, idx in removed.items() if len(idx)}
    work = copy_without_masks(model)
    if freeze_pretrained:
        for module in work.modules():
            if isinstance(module, FROZEN_TYPES):
                module.weight.requires_grad_(False)
        if not any(p.requires_grad for p in work.parameters()):
            raise InvalidParameterError(
                "freeze_pretrained=True leaves nothing to train: this model has no biases or "
                "normalisation parameters besides its conv and Linear weights")
    mask = mask_filters(work, removed, example_input, alpha=1.0)
    steps_per_epoch = max(1, math.ceil(len(train) / batch_size))
    alphas = []          # alpha in effect at the start of each epoch
    last_used = [1.0]    # alpha of the latest optimizer step

    def update_alpha(net, iteration):   # fit calls this before the first step and after each
        if iteration > 0:
            last_used[0] = mask.alpha
        epoch = iteration / steps_per_epoch
        mask.alpha = schedule(math.floor(epoch / schedule.every + 1e-9))
        if iteration % steps_per_epoch == 0 and len(alphas) < epochs:
            alphas.append(mask.alpha)

    try:
        history = fit(work, train, epochs=epochs, callbacks=[update_alpha], **kwargs)
    finally:
        mask.remove()
    final_alpha = last_used[0]
    if final_alpha > 0:
        warnings.warn(f"alpha was still {final_alpha:.3g} when fine-tuning ended; the filters were "
                      "cut anyway. Use more epochs or a larger decay rate", stacklevel=2)
    small = remove_filters(work, removed, example_input)
    for parameter in small.parameters():
        parameter.requires_grad_(True)
    small.train(model.training)
    return StructuredResult(small, removed, [history], alphas)


@uses_recipe(epochs="epochs_per_step")
def iterative_filter_prune(model: nn.Module, ratio: float, example_input: torch.Tensor, train, *,
                           ratios: dict | None = None, steps: int = 3, epochs_per_step: int = 1,
                           lr: float = 1e-3, optimizer: str = "adam", weight_decay: float = 0.0,
                           batch_size: int = 64, seed: int = 0, loss="cross_entropy",
                           importance="l1", progress: bool = False,
                           recipe: Recipe | None = None) -> StructuredResult:
    """Classic prune / fine-tune: remove the filters in ``steps`` rounds, fine-tuning after each.

    The final size equals one-shot :func:`~pruning_kit.structured.l1_filter_prune`
    with the same ``ratio``/``ratios``: each conv ends with
    ``round(ratio * channels)`` fewer filters, removed in near-equal parts, each
    time the lowest-scored of what remains (scores of the fine-tuned weights).

    Args:
        model: a trained plain stack; not changed.
        ratio, ratios, importance, example_input: as in
            :func:`~pruning_kit.structured.l1_filter_prune`.
        train: fine-tuning data.
        steps: pruning rounds (>= 1).
        epochs_per_step: fine-tuning epochs after each round.
        lr, optimizer, weight_decay, batch_size, seed, loss, progress: for
            :func:`pruning_kit.train.fit`.
        recipe: a :class:`pruning_kit.train.Recipe`; the settings it gives replace
            these defaults, the others keep them.

    Returns:
        :class:`StructuredResult` (``removed`` counts filters removed per conv).

    Example:
        >>> import pruning_kit as pk
        >>> train = pk.data.TensorData(torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)))
        >>> result = iterative_filter_prune(pk.models.lenet5(), 0.5, train.images[:2], train,
        ...                                 steps=2)
        >>> result.model.conv1.out_channels, result.removed
        (10, {'conv1': 10, 'conv2': 25})
    """
    check_unmasked_model(model)
    kwargs = _train_kwargs(epochs_per_step, lr, optimizer, weight_decay, batch_size, seed, loss,
                           progress)
    steps = check_int("steps", steps, low=1)
    target = {n: len(idx) for n, idx in
              select_filters(model, ratio, example_input, ratios=ratios).items()}
    score = importance_fn(importance)
    work = copy_without_masks(model)
    histories = []
    for step in range(1, steps + 1):
        units = {u.name: u for u in channel_units(work, example_input)}
        removed = {}
        for name, total in target.items():
            now = round(total * step / steps) - round(total * (step - 1) / steps)
            if now > 0:
                weight = units[name].producer.weight.detach()
                if isinstance(units[name].producer, nn.ConvTranspose2d):
                    weight = weight.transpose(0, 1)
                order = torch.argsort(torch.as_tensor(score(weight)), stable=True)
                removed[name] = order[:now].sort().values
        work = remove_filters(work, removed, example_input)
        histories.append(fit(work, train, epochs=epochs_per_step, **kwargs))
    work.train(model.training)
    return StructuredResult(work, target, histories, [])


def _score(model, test, loss) -> float:
    if loss == "reconstruction":
        return evaluate_loss(model, test, loss="reconstruction")
    return evaluate(model, test)


@uses_recipe
def compare_alpha_iterative(model: nn.Module, train, test, ratio: float,
                            example_input: torch.Tensor, *, ratios: dict | None = None,
                            epochs: int = 6, steps: int = 3,
                            schedules: Iterable = ("step", "exponential", "multiplicative"),
                            lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                            loss="cross_entropy", progress: bool = False,
                            recipe: Recipe | None = None):
    """Alpha-schedule one-shot pruning vs iterative prune / fine-tune, same final size and epochs.

    Rows: the dense model; one-shot cut with no fine-tuning; one-shot cut then
    fine-tuned ``epochs``; one row per alpha schedule (``epochs`` of decay and
    fine-tuning); iterative pruning in ``steps`` rounds with ``epochs // steps``
    epochs each.

    Args:
        model: a trained plain stack; not changed.
        train, test: data to fine-tune on and to score with.
        ratio, ratios, example_input: which filters, as in
            :func:`~pruning_kit.structured.l1_filter_prune`.
        epochs: fine-tuning epochs given to every method.
        steps: rounds of the iterative method (``epochs`` must be a multiple).
        schedules: :class:`AlphaSchedule` objects or kinds with default rates.
        lr, batch_size, seed, loss, progress: for :func:`pruning_kit.train.fit`.
        recipe: a :class:`pruning_kit.train.Recipe`; the settings it gives replace
            these defaults, the others keep them.

    Returns:
        pandas DataFrame with columns ``method, params, macs, score, metric``
        (``metric`` is ``"accuracy"``, higher is better, or ``"mse"`` for
        ``loss="reconstruction"``, lower is better).

    Example:
        >>> import pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,)))
        >>> frame = compare_alpha_iterative(pk.models.lenet5(), data, data, 0.5, data.images[:1],
        ...     epochs=2, steps=2, schedules=[AlphaSchedule("step", 0.5)])
        >>> list(frame.method)
        ['dense', 'one-shot, no fine-tuning', 'one-shot + fine-tune', 'alpha step (rate 0.5)', 'iterative (2 steps)']
        >>> frame.params.iloc[1:].nunique()    # every pruned model has the same size
        1
    """
    import pandas as pd

    check_unmasked_model(model)
    steps = check_int("steps", steps, low=1)
    if check_int("epochs", epochs, low=steps) % steps:
        raise InvalidParameterError(f"epochs must be a positive multiple of steps={steps} so that "
                                    f"every method gets the same training, got {epochs!r}")
    metric = "mse" if loss == "reconstruction" else "accuracy"
    common = dict(lr=lr, batch_size=batch_size, seed=seed, loss=loss, progress=progress)
    rows = []

    def add(method, net):
        rows.append({"method": method, "params": metrics.count_params(net),
                     "macs": metrics.macs(net, example_input), "score": _score(net, test, loss),
                     "metric": metric})

    add("dense", model)
    cut = l1_filter_prune(model, ratio, example_input, ratios=ratios)
    add("one-shot, no fine-tuning", cut)
    fit(cut, train, epochs=epochs, **common)
    add("one-shot + fine-tune", cut)
    for schedule in schedules:
        if isinstance(schedule, str):
            schedule = AlphaSchedule(schedule)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = alpha_prune(model, ratio, example_input, train, ratios=ratios,
                                 schedule=schedule, epochs=epochs, **common)
        add(f"alpha {schedule.kind} (rate {schedule.rate:g})", result.model)
    result = iterative_filter_prune(model, ratio, example_input, train, ratios=ratios, steps=steps,
                                    epochs_per_step=epochs // steps, **common)
    add(f"iterative ({steps} steps)", result.model)
    return pd.DataFrame(rows, columns=["method", "params", "macs", "score", "metric"])
