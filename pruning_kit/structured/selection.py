"""Choosing: which filters each conv loses.

Each prunable conv loses ``round(ratio * out_channels)`` filters (at least one
is kept): those its scoring function (:mod:`.importance`) ranks lowest.
``ratios`` sets a different fraction for some convs, by name or by container.
Two choices shape the scores:

- ``score_by``: a filter's own weights (``"filter"``, Li et al. 2017), or the
  next layer's weights that read its channel (``"next_layer"``);
- ``strategy`` (Li et al. 2017, §3.3 "Pruning filters across multiple
  layers", Fig. 3): ``"independent"`` scores every layer on its full weights;
  ``"greedy"`` goes through the layers in order and leaves out, when scoring a
  layer's filters, the kernels that read channels already removed upstream.

This step only chooses; :mod:`.surgery` cuts and :mod:`.masking` fades the
choice out.

Example:
    >>> import pruning_kit as pk
    >>> removed = select_filters(pk.models.lenet5(), 0.5, torch.zeros(1, 1, 28, 28))
    >>> {name: len(idx) for name, idx in removed.items()}
    {'conv1': 10, 'conv2': 25}
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .._checks import InvalidParameterError, check_choice, check_fraction
from .coupling import ChannelUnit, channel_units
from .importance import importance_fn, next_layer_scores

__all__ = ["select_filters", "check_ratio", "layer_ratios", "check_ignored_layers", "SCORE_BY",
           "STRATEGIES"]

SCORE_BY = ("filter", "next_layer")
"""What a channel's score reads: its filter's weights, or the next layer's weights that read it."""
STRATEGIES = ("independent", "greedy")
"""Li et al.'s two ways to score several layers: each on its full weights, or without the kernels
of channels already removed upstream."""


def check_ratio(value, name: str = "ratio") -> float:
    """Require a fraction of output filters to remove, in [0, 1).

    Args:
        value: what was passed.
        name: how the message names it (``"ratio"``, ``"ratios['conv1']"``).

    Returns:
        the ratio as a float.

    Example:
        >>> check_ratio(0.5)
        0.5
        >>> check_ratio(1.0)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: ratio must be a number in [0, 1) (the fraction of output filters removed from a conv; 1.0 would remove them all), got 1.0
    """
    return check_fraction(name, value, high_open=True,
                          hint="the fraction of output filters removed from a conv; 1.0 would "
                               "remove them all")


def check_ignored_layers(model: nn.Module, ignored_layers: Iterable[str] | str) -> list[str]:
    """Require names of modules of ``model`` (convs, or containers of convs, to leave whole).

    Args:
        model: the network.
        ignored_layers: a name or an iterable of names.

    Returns:
        the names as a list.

    Example:
        >>> import pruning_kit as pk
        >>> check_ignored_layers(pk.models.lenet5(), "conv1")
        ['conv1']
        >>> check_ignored_layers(pk.models.lenet5(), ["conv9"])
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: ignored_layers names ['conv9'], not modules of this model
    """
    if isinstance(ignored_layers, str):
        ignored_layers = [ignored_layers]
    ignored_layers = list(ignored_layers)
    modules = dict(model.named_modules())
    unknown = [n for n in ignored_layers if n not in modules]
    if unknown:
        raise InvalidParameterError(f"ignored_layers names {unknown}, not modules of this model")
    return ignored_layers


def _count_removed(ratio: float, channels: int) -> int:
    """round(ratio * channels) filters, always leaving at least one."""
    return min(int(round(ratio * channels)), channels - 1)


def layer_ratios(model: nn.Module, conv_names: list[str], output_names: list[str], ratio, *,
                 ratios=None) -> dict[str, float]:
    """Per-conv ratio: ``ratio`` everywhere, overridden by ``ratios`` (names or containers).

    Args:
        model: the network (to find the convs inside a container name).
        conv_names: the prunable convs.
        output_names: the convs whose channels are the model's outputs (refused in ``ratios``).
        ratio: the default fraction, in [0, 1).
        ratios: ``{conv or container name: ratio}`` or None.

    Returns:
        ``{conv name: ratio}`` for every name in ``conv_names``.

    Example:
        >>> import pruning_kit as pk
        >>> ae = pk.models.autoencoder()
        >>> layer_ratios(ae, ["encoder.0", "decoder.0"], ["decoder.4"], 0.0, ratios={"encoder": 0.6})
        {'encoder.0': 0.6, 'decoder.0': 0.0}
    """
    ratio = check_ratio(ratio, "ratio")
    result = {name: ratio for name in conv_names}
    if ratios is None:
        return result
    if not isinstance(ratios, dict):
        raise InvalidParameterError("ratios must be a dict {layer name: ratio}, got "
                                    f"{type(ratios).__name__}")
    modules = dict(model.named_modules())
    for key, value in ratios.items():
        value = check_ratio(value, f"ratios[{key!r}]")
        if key in output_names:
            raise InvalidParameterError(f"ratios names {key!r}, the output layer: its channels are the "
                                        "model's outputs and cannot be removed")
        if key in conv_names:
            result[key] = value
            continue
        inside = [n for n in conv_names if key and n.startswith(key + ".")]
        if key not in modules or not inside:
            raise InvalidParameterError(f"ratios names {key!r}, which is not a prunable conv of this model "
                                        f"nor a module containing one; prunable convs: {conv_names}")
        for name in inside:
            result[name] = value
    return result


def _scored_weight(unit: ChannelUnit, removed_upstream) -> torch.Tensor:
    """The unit's filters as ``out x in x ...``, with the inputs removed upstream zeroed."""
    weight = unit.producer.weight.detach()
    if isinstance(unit.producer, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)   # ConvTranspose2d stores in x out x kh x kw
    if removed_upstream is not None and len(removed_upstream):
        weight = weight.clone()
        weight[:, removed_upstream] = 0   # greedy: those kernels read channels that are gone
    return weight


def select_filters(model: nn.Module, ratio: float = 0.5, example_input: torch.Tensor = None, *,
                   ratios: dict | None = None, importance="l1",
                   units: list[ChannelUnit] | None = None, score_by: str = "filter",
                   strategy: str = "independent") -> dict[str, torch.Tensor]:
    """The filters :func:`~pruning_kit.structured.l1_filter_prune` would remove, per conv.

    Each prunable conv loses ``round(ratio * out_channels)`` filters (at least
    one is kept), those with the lowest ``importance`` scores.

    Args:
        model: a plain stack (see :func:`~.coupling.channel_units`); not changed.
        ratio: fraction of filters removed from every prunable conv, in [0, 1).
        example_input: a batch the model accepts.
        ratios: ``{name: ratio}`` overriding ``ratio`` for some convs; a name may
            also be a container (``"encoder"``) to set all convs inside it.
        importance: ``"l1"`` (default), ``"l2"``, ``"random"`` or a callable
            ``weight -> scores`` (one score per output filter, low = remove).
        units: the model's :func:`~.coupling.channel_units` when already traced
            (then ``example_input`` is not used).
        score_by: ``"filter"`` (default: the filter's own weights, Li et al.) or
            ``"next_layer"`` (the next layer's weights that read the channel,
            :func:`~.importance.next_layer_scores`).
        strategy: ``"independent"`` (default: every layer scored on its full
            weights) or ``"greedy"`` (a layer's filters are scored without the
            kernels that read channels removed from the layer before; Li et al.
            2017, §3.3). With ``score_by="next_layer"`` the two agree: removing
            a layer's inputs does not change how the next layer reads its outputs.

    Returns:
        ``{conv name: LongTensor of removed filter indices, sorted}``.

    Example:
        >>> import pruning_kit as pk
        >>> model, x = pk.models.lenet5(), torch.zeros(1, 1, 28, 28)
        >>> removed = select_filters(model, 0.5, x)
        >>> {name: len(idx) for name, idx in removed.items()}
        {'conv1': 10, 'conv2': 25}
        >>> greedy = select_filters(model, 0.5, x, strategy="greedy")
        >>> torch.equal(greedy["conv1"], removed["conv1"])   # nothing upstream of conv1
        True
    """
    score_by = check_choice("score_by", score_by, SCORE_BY,
                            hint="'filter': the filter's own weights; 'next_layer': the next "
                                 "layer's weights that read its channel")
    strategy = check_choice("strategy", strategy, STRATEGIES,
                            hint="'independent': each layer on its full weights; 'greedy': "
                                 "without the kernels of channels already removed upstream")
    if units is None:
        units = channel_units(model, example_input)
    score = importance_fn(importance)
    conv_names = [u.name for u in units if u.prunable]
    outputs = [u.name for u in units if not u.prunable]
    layer_ratio = layer_ratios(model, conv_names, outputs, ratio, ratios=ratios)
    feeds = {u.consumer_name: u.name for u in units if u.prunable}   # consumer -> its producer
    removed = {}
    for unit in units:
        if not unit.prunable:
            continue
        n = _count_removed(layer_ratio[unit.name], unit.channels)
        if score_by == "next_layer":
            scores = next_layer_scores(unit.consumer.weight, unit.channels, importance=score,
                                       transposed=isinstance(unit.consumer, nn.ConvTranspose2d))
        else:
            upstream = removed.get(feeds.get(unit.name)) if strategy == "greedy" else None
            scores = score(_scored_weight(unit, upstream))
        scores = torch.as_tensor(scores)
        if scores.shape != (unit.channels,):
            raise InvalidParameterError(f"importance returned shape {tuple(scores.shape)} for {unit.name!r}; "
                                        f"it must return one score per output filter ({unit.channels},)")
        order = torch.argsort(scores, stable=True)
        removed[unit.name] = order[:n].sort().values
    return removed
