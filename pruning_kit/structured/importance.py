"""Scoring: one number per output filter; lower means "remove first".

Li et al. 2017 rank a conv's filters by the L1 norm of their weights; the L2
norm and random scores are the alternatives a lesson compares it with. A
scoring function takes a weight whose first dimension indexes output filters
and returns one score per filter; :data:`IMPORTANCES` maps the names the other
functions of :mod:`pruning_kit.structured` accept (``importance="l1"``) to
them, and :func:`importance_fn` turns such a name, or any callable, into the
function to use. Nothing here cuts a model: swap the scoring and the code that
removes channels stays the same.

A channel can also be scored from the other side: by how strongly the *next*
layer reads it. :func:`reading_weights` gathers, per channel, the next layer's
weights that read it (input channel ``c`` of every filter of a next conv, or
the ``H * W`` columns of a Linear after flattening), and
:func:`next_layer_scores` applies a scoring to them: a channel the next layer
barely reads contributes little, however large the filter that makes it.

Example:
    >>> w = torch.tensor([[3., 4.], [1., 0.], [0., -2.]])
    >>> l1_filter_scores(w), l1_filter_order(w)
    (tensor([7., 1., 2.]), tensor([1, 2, 0]))
"""

from __future__ import annotations

from typing import Callable

import torch

from .._checks import InvalidParameterError, check_seed, check_tensor

__all__ = ["l1_filter_scores", "l2_filter_scores", "random_filter_scores", "l1_filter_order",
           "IMPORTANCES", "importance_fn", "reading_weights", "next_layer_scores"]


def _weight(weight) -> torch.Tensor:
    check_tensor("weight", weight, min_dim=2,
                 hint="its first dimension indexes output filters and there is at least one "
                      "more (out x in x kh x kw for a conv)")
    return weight.detach()


def l1_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    """L1 norm of each output filter: ``sum(|w[i]|)`` over all but the first dimension.

    Args:
        weight: a conv weight ``out x in x kh x kw`` (or any tensor whose first
            dimension indexes output filters).

    Returns:
        float tensor of length ``out``.

    Example:
        >>> w = torch.tensor([[[[1., -2.]]], [[[0.5, 0.]]]])   # 2 filters, 1x1x2
        >>> l1_filter_scores(w)
        tensor([3.0000, 0.5000])
    """
    return _weight(weight).abs().flatten(1).sum(1)


def l2_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each output filter (an alternative scoring to compare with L1).

    Args:
        weight: as in :func:`l1_filter_scores`.

    Returns:
        float tensor of length ``out``.

    Example:
        >>> l2_filter_scores(torch.tensor([[3., 4.], [1., 0.]]))
        tensor([5., 1.])
    """
    return _weight(weight).flatten(1).norm(dim=1)


def random_filter_scores(weight: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Random scores, the control that shows whether L1 ranking beats chance.

    Args:
        weight: as in :func:`l1_filter_scores` (only its first dimension is used).
        seed: the random generator's seed; the same seed gives the same scores.

    Returns:
        float tensor of length ``out``, uniform in [0, 1).

    Example:
        >>> w = torch.ones(4, 3, 3, 3)
        >>> torch.equal(random_filter_scores(w, seed=1), random_filter_scores(w, seed=1))
        True
    """
    weight = _weight(weight)
    generator = torch.Generator().manual_seed(check_seed(seed))
    return torch.rand(weight.shape[0], generator=generator)


def l1_filter_order(conv_weight: torch.Tensor) -> torch.Tensor:
    """Output-filter indices in ascending L1 norm (stable: ties keep index order).

    The first ``n`` entries are the filters that L1 pruning removes at ``n``.

    Args:
        conv_weight: a conv weight ``out x in x kh x kw``.

    Returns:
        LongTensor of length ``out``.

    Example:
        >>> w = torch.stack([torch.full((2, 3, 3), v) for v in (0.3, 0.1, 0.2, 0.1)])
        >>> l1_filter_order(w)
        tensor([1, 3, 2, 0])
    """
    return torch.argsort(l1_filter_scores(conv_weight), stable=True)


IMPORTANCES = {"l1": l1_filter_scores, "l2": l2_filter_scores, "random": random_filter_scores}
"""Scoring functions by the name ``importance=`` accepts."""


def importance_fn(importance) -> Callable:
    """The scoring function an ``importance`` argument names (checked).

    Args:
        importance: a name in :data:`IMPORTANCES` (``"l1"``, ``"l2"``,
            ``"random"``) or a callable ``weight -> scores`` (one score per
            output filter, low = remove first), returned as it is.

    Returns:
        the scoring function.

    Raises:
        InvalidParameterError: an unknown name, or neither a name nor a callable.

    Example:
        >>> importance_fn("l2") is l2_filter_scores
        True
        >>> importance_fn("l3")
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: importance must be one of ['l1', 'l2', 'random'] or a callable weight -> scores per output filter, got 'l3'
    """
    if isinstance(importance, str):
        if importance not in IMPORTANCES:
            raise InvalidParameterError(f"importance must be one of {sorted(IMPORTANCES)} or a callable "
                                        f"weight -> scores per output filter, got {importance!r}")
        return IMPORTANCES[importance]
    if callable(importance):
        return importance
    raise InvalidParameterError(f"importance must be a name in {sorted(IMPORTANCES)} or a callable, "
                                f"got {type(importance).__name__}")


def reading_weights(next_weight: torch.Tensor, channels: int, *,
                    transposed: bool = False) -> torch.Tensor:
    """The next layer's weights grouped by the input channel they read: ``channels x ...``.

    Row ``c`` of the result holds every weight of the next layer that
    multiplies channel ``c``: for a conv (``out x in x kh x kw``) its slice
    ``[:, c]``; for a Linear after a flatten (``out x (channels * H * W)``) the
    ``H * W`` columns of channel ``c`` in every row; for a transposed conv
    (``in x out x kh x kw``, ``transposed=True``) its slice ``[c]``. Any filter
    scoring (:data:`IMPORTANCES`) applied to the result scores the channels by
    how the next layer reads them.

    Args:
        next_weight: the weight of the layer that reads the channels.
        channels: how many channels it reads (the producing conv's ``out_channels``).
        transposed: ``next_weight`` belongs to an ``nn.ConvTranspose2d``.

    Returns:
        a tensor whose first dimension indexes the channels.

    Example:
        >>> fc = torch.arange(12.).reshape(2, 6)          # reads 3 channels of 2 positions
        >>> reading_weights(fc, 3)[1]                     # channel 1: columns 2 and 3
        tensor([[2., 3.],
                [8., 9.]])
    """
    weight = _weight(next_weight)
    if transposed:
        weight = weight.transpose(0, 1)
    inputs = weight.shape[1]
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1 \
            or inputs % channels:
        raise InvalidParameterError(
            f"channels must be a positive int that divides the next layer's {inputs} inputs (a "
            f"{tuple(next_weight.shape)} weight), got {channels!r}")
    if weight.dim() == 2:                    # Linear: channel-major columns after a flatten
        weight = weight.reshape(weight.shape[0], channels, inputs // channels)
    return weight.transpose(0, 1)


def next_layer_scores(next_weight: torch.Tensor, channels: int, *, transposed: bool = False,
                      importance="l1") -> torch.Tensor:
    """Score each channel by the next layer's weights that read it (L1 by default).

    ``importance`` applied to :func:`reading_weights`: with ``"l1"`` a channel's
    score is the sum of ``abs`` of every next-layer weight that multiplies it.
    Low means "remove first", as for filter scores.

    Args:
        next_weight, channels, transposed: as in :func:`reading_weights`.
        importance: a name in :data:`IMPORTANCES` or a callable ``weight -> scores``.

    Returns:
        float tensor of length ``channels``.

    Example:
        >>> conv2 = torch.zeros(4, 3, 1, 1)
        >>> conv2[:, 0] = 1.0; conv2[0, 2] = -0.5        # channel 1 is never read
        >>> next_layer_scores(conv2, 3)
        tensor([4.0000, 0.0000, 0.5000])
    """
    return importance_fn(importance)(reading_weights(next_weight, channels, transposed=transposed))
