"""Comparing two results honestly: a difference with its confidence interval.

One accuracy measured on ``n`` test images is a binomial proportion: its standard
error is ``sqrt(p (1 - p) / n)``, about 0.75 point at 94% on 1,000 images. The
difference of two *independent* accuracies has a standard error about ``sqrt(2)``
times larger (about 1.1 points). Two models scored on the *same* images are
paired: most images are right (or wrong) for both, and only the images on which
they disagree carry information about the difference, so a paired interval is
narrower. This module gives

- :func:`standard_error` and :func:`accuracy_interval` for one accuracy;
- :func:`paired`: the difference of two models' accuracies on the same test
  images, with a paired bootstrap interval (resample the images, keep the pairs);
- :func:`over_seeds`: the difference of two training recipes measured over
  several seeds (paired by seed), with a Student-t interval;
- :func:`paired_values`: the same paired bootstrap as :func:`paired` for any
  per-image number (a reconstruction error, a loss), where lower may be better;

and a :class:`Comparison` whose :meth:`~Comparison.sentence` is what a lesson
says: "A beats B by x points (95% CI a to b)" only when the interval excludes 0,
otherwise "no difference this run can detect".

Example:
    >>> import torch
    >>> a = torch.tensor([True] * 950 + [False] * 50)
    >>> b = torch.tensor([True] * 900 + [False] * 100)
    >>> result = paired(a, b, names=("magnitude", "random"))
    >>> print(result.sentence())
    magnitude beats random by 5.0 points (95% CI +3.7 to +6.4 points, 1,000 paired test images)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import InvalidParameterError, check_int, check_number, type_name

__all__ = ["Comparison", "standard_error", "accuracy_interval", "paired", "over_seeds",
           "paired_values"]


@dataclass(frozen=True)
class Comparison:
    """A difference ``a - b`` between two results, with its interval.

    Attributes:
        name_a, name_b: what was compared, as a sentence names them.
        value_a, value_b: the two results (accuracies as fractions, or means over seeds).
        difference: ``value_a - value_b``.
        low, high: the confidence interval of the difference.
        confidence: its level (0.95).
        n: how many paired test images, or seeds.
        method: ``"paired bootstrap"`` or ``"paired t over seeds"``.
        higher_is_better: False for errors and losses: then the smaller value wins.
    """

    name_a: str
    name_b: str
    value_a: float
    value_b: float
    difference: float
    low: float
    high: float
    confidence: float
    n: int
    method: str
    higher_is_better: bool = True

    @property
    def detectable(self) -> bool:
        """True when the interval excludes 0: this run can tell the two apart."""
        return self.low > 0 or self.high < 0

    @property
    def winner(self) -> str | None:
        """The name of the better one when the difference is detectable, else None."""
        if not self.detectable:
            return None
        return self.name_a if (self.difference > 0) == self.higher_is_better else self.name_b

    def interval_text(self, *, unit: str = "points", scale: float = 100.0,
                      flip: bool = False) -> str:
        """``"95% CI +3.7 to +6.4 points, 1,000 paired test images"``.

        ``flip=True`` gives the interval of ``b - a`` (the sentence then says B beats A).
        """
        what = {"paired bootstrap": "paired test images", "paired t over seeds": "seeds"}.get(
            self.method, "pairs")
        low, high = (-self.high, -self.low) if flip else (self.low, self.high)
        return (f"{100 * self.confidence:.0f}% CI {scale * low:+.1f} to "
                f"{scale * high:+.1f} {unit}, {self.n:,} {what}")

    def sentence(self, *, unit: str = "points", scale: float = 100.0) -> str:
        """What a lesson may say about the difference, with its interval.

        "A beats B by x points (95% CI ...)" when the interval excludes 0, else
        "no difference this run can detect between A and B (x points, 95% CI ...)".
        ``scale`` turns fractions into the unit (100: points of accuracy).

        Example:
            >>> c = Comparison("A", "B", 0.9, 0.89, 0.01, -0.004, 0.024, 0.95, 1000,
            ...                "paired bootstrap")
            >>> c.sentence()
            'no difference this run can detect between A and B (+1.0 points, 95% CI -0.4 to +2.4 points, 1,000 paired test images)'
            >>> Comparison("A", "B", 0.89, 0.9, -0.012, -0.021, -0.003, 0.95, 1000,
            ...            "paired bootstrap").sentence()
            'B beats A by 1.2 points (95% CI +0.3 to +2.1 points, 1,000 paired test images)'
        """
        interval = self.interval_text(unit=unit, scale=scale)
        if not self.detectable:
            return (f"no difference this run can detect between {self.name_a} and {self.name_b} "
                    f"({scale * self.difference:+.1f} {unit}, {interval})")
        better, worse = ((self.name_a, self.name_b) if (self.difference > 0) == self.higher_is_better
                         else (self.name_b, self.name_a))
        # the interval of the margin the sentence states ("by x"), so that it reads positive
        interval = self.interval_text(unit=unit, scale=scale, flip=self.difference < 0)
        return f"{better} beats {worse} by {scale * abs(self.difference):.1f} {unit} ({interval})"

    def __str__(self) -> str:
        return self.sentence()


def standard_error(accuracy: float, n: int) -> float:
    """The binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy on ``n`` images.

    Example:
        >>> round(100 * standard_error(0.94, 1000), 2)  # points
        0.75
    """
    p = check_number("accuracy", accuracy, low=0.0, high=1.0)
    n = check_int("n", n, low=1, hint="the number of test images")
    return math.sqrt(p * (1.0 - p) / n)


def _as_correct(name: str, value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
    elif isinstance(value, (list, tuple)):
        flat = torch.tensor(value).flatten()
    else:
        raise InvalidParameterError(
            f"{name} must be a bool tensor (or list) with one entry per test image, True where "
            f"the model is right (pk.train.correct gives it), got {type_name(value)}")
    if flat.numel() == 0:
        raise InvalidParameterError(f"{name} is empty: pass one entry per test image")
    if flat.dtype != torch.bool:
        if not bool(((flat == 0) | (flat == 1)).all()):
            raise InvalidParameterError(
                f"{name} must hold only True/False (or 0/1), one per test image; found other "
                "values: pass pk.train.correct(model, test), not the model's outputs")
        flat = flat != 0
    return flat


def _check_confidence(confidence) -> float:
    return check_number("confidence", confidence, low=0.5, high=1.0, high_open=True,
                        hint="for example 0.95")


def accuracy_interval(correct, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of one accuracy, from the per-image results.

    Example:
        >>> import torch
        >>> low, high = accuracy_interval(torch.tensor([True] * 940 + [False] * 60))
        >>> round(low, 3), round(high, 3)
        (0.924, 0.953)
    """
    flat = _as_correct("correct", correct)
    z = _z(_check_confidence(confidence))
    n = flat.numel()
    p = flat.float().mean().item()
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def paired(correct_a, correct_b, *, names: tuple[str, str] = ("A", "B"),
           confidence: float = 0.95, resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Accuracy of A minus accuracy of B on the same test images, with a bootstrap interval.

    The test images are resampled with replacement ``resamples`` times, keeping
    each image's pair of results together; the interval is the central
    ``confidence`` share of the resampled differences. Fixed ``seed``: the same
    inputs always give the same interval.

    Args:
        correct_a, correct_b: bool tensors (or lists), one entry per test image, True where
            that model classified the image correctly (:func:`pruning_kit.train.correct`).
        names: how a sentence names A and B.
        confidence: the interval's level.
        resamples: bootstrap resamples.
        seed: the resampling's seed.

    Returns:
        a :class:`Comparison`.

    Example:
        >>> import torch
        >>> same = torch.tensor([True, False] * 500)
        >>> paired(same, same).detectable
        False
    """
    a = _as_correct("correct_a", correct_a)
    b = _as_correct("correct_b", correct_b)
    if a.numel() != b.numel():
        raise InvalidParameterError(
            f"correct_a and correct_b must score the same test images: got {a.numel()} and "
            f"{b.numel()} entries")
    if not (isinstance(names, (tuple, list)) and len(names) == 2
            and all(isinstance(n, str) for n in names)):
        raise InvalidParameterError(f"names must be two strings (A, B), got {names!r}")
    confidence = _check_confidence(confidence)
    resamples = check_int("resamples", resamples, low=100)
    seed = check_int("seed", seed, low=0)
    per_image = a.float() - b.float()  # +1, 0 or -1 per image
    low, high = _bootstrap_interval(per_image, confidence, resamples, seed)
    value_a, value_b = a.float().mean().item(), b.float().mean().item()
    return Comparison(names[0], names[1], value_a, value_b, value_a - value_b, low, high,
                      confidence, a.numel(), "paired bootstrap")


def _bootstrap_interval(per_image: torch.Tensor, confidence: float, resamples: int,
                        seed: int) -> tuple[float, float]:
    """The central ``confidence`` share of the means of ``per_image`` resampled with replacement."""
    n = per_image.numel()
    generator = torch.Generator().manual_seed(seed)
    diffs = torch.empty(resamples, dtype=torch.float64)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        index = torch.randint(n, (size, n), generator=generator)
        diffs[start:start + size] = per_image.double()[index].mean(dim=1)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(diffs, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high


def paired_values(values_a, values_b, *, names: tuple[str, str] = ("A", "B"),
                  higher_is_better: bool = True, confidence: float = 0.95,
                  resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Mean of A minus mean of B for a number measured per test image, with a bootstrap interval.

    The paired bootstrap of :func:`paired` for real values: two models'
    reconstruction errors (or losses, or confidences) on the same images.
    With ``higher_is_better=False`` the smaller mean wins the sentence.

    Args:
        values_a, values_b: 1-D float tensors (or lists), one value per test image,
            the same images in the same order.
        names: how a sentence names A and B.
        higher_is_better: False for errors and losses.
        confidence, resamples, seed: as in :func:`paired`.

    Returns:
        a :class:`Comparison` (``n`` images, method ``"paired bootstrap"``).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> error_a = torch.rand(500, generator=g) * 0.01
        >>> result = paired_values(error_a, error_a + 0.002, names=("fine-tuned", "cut"),
        ...                        higher_is_better=False)
        >>> result.winner, round(result.difference, 4)
        ('fine-tuned', -0.002)
        >>> print(result.sentence(unit="x 1e-3", scale=1000))
        fine-tuned beats cut by 2.0 x 1e-3 (95% CI +2.0 to +2.0 x 1e-3, 500 paired test images)
    """
    a, b = (_as_values(name, v) for name, v in (("values_a", values_a), ("values_b", values_b)))
    if a.numel() != b.numel():
        raise InvalidParameterError(
            f"values_a and values_b must be measured on the same test images: got {a.numel()} and "
            f"{b.numel()} values")
    if not (isinstance(names, (tuple, list)) and len(names) == 2
            and all(isinstance(n, str) for n in names)):
        raise InvalidParameterError(f"names must be two strings (A, B), got {names!r}")
    if not isinstance(higher_is_better, bool):
        raise InvalidParameterError(f"higher_is_better must be True or False, got {higher_is_better!r}")
    confidence = _check_confidence(confidence)
    resamples = check_int("resamples", resamples, low=100)
    seed = check_int("seed", seed, low=0)
    low, high = _bootstrap_interval(a - b, confidence, resamples, seed)
    value_a, value_b = a.mean().item(), b.mean().item()
    return Comparison(names[0], names[1], value_a, value_b, value_a - value_b, low, high,
                      confidence, a.numel(), "paired bootstrap", higher_is_better)


def _as_values(name: str, value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
    elif isinstance(value, (list, tuple)):
        flat = torch.tensor(value).flatten()
    else:
        raise InvalidParameterError(f"{name} must be a tensor (or list) with one number per test "
                                    f"image, got {type_name(value)}")
    if flat.numel() == 0 or flat.dtype == torch.bool or flat.is_complex():
        raise InvalidParameterError(f"{name} must hold one real number per test image (for right / "
                                    "wrong per image use pk.stats.paired)")
    flat = flat.double()
    if not bool(torch.isfinite(flat).all()):
        raise InvalidParameterError(f"{name} holds NaN or infinite values")
    return flat


def over_seeds(values_a, values_b, *, names: tuple[str, str] = ("A", "B"),
               confidence: float = 0.95, higher_is_better: bool = True) -> Comparison:
    """Mean of A minus mean of B over seeds (paired by seed), with a Student-t interval.

    Use it where a lesson trains each recipe with several seeds: entry ``i`` of
    both lists comes from seed ``i``. With two or three seeds the interval is
    wide; that is the honest answer.

    Args:
        values_a, values_b: sequences of numbers of the same length (at least 2).
        names: how a sentence names A and B.
        confidence: the interval's level.
        higher_is_better: False for losses and regrets: then the smaller mean wins.

    Example:
        >>> print(over_seeds([0.95, 0.96, 0.955], [0.90, 0.91, 0.905], names=("ticket", "reinit")))
        ticket beats reinit by 5.0 points (95% CI +5.0 to +5.0 points, 3 seeds)
        >>> over_seeds([0.01, 0.0, 0.02], [0.05, 0.04, 0.05], names=("fine-tuning", "retraining"),
        ...            higher_is_better=False).winner
        'fine-tuning'
    """
    from scipy.stats import t as student_t

    if not (isinstance(names, (tuple, list)) and len(names) == 2
            and all(isinstance(n, str) for n in names)):
        raise InvalidParameterError(f"names must be two strings (A, B), got {names!r}")
    try:
        a = [float(v) for v in values_a]
        b = [float(v) for v in values_b]
    except (TypeError, ValueError):
        raise InvalidParameterError("values_a and values_b must be sequences of numbers, one per "
                                    "seed") from None
    if len(a) != len(b) or len(a) < 2:
        raise InvalidParameterError(
            f"values_a and values_b need the same number of seeds, at least 2: got {len(a)} and "
            f"{len(b)}")
    confidence = _check_confidence(confidence)
    if not isinstance(higher_is_better, bool):
        raise InvalidParameterError(f"higher_is_better must be True or False, got {higher_is_better!r}")
    diffs = [x - y for x, y in zip(a, b)]
    k = len(diffs)
    mean = sum(diffs) / k
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (k - 1))
    half = student_t.ppf(0.5 + confidence / 2, k - 1) * sd / math.sqrt(k)
    return Comparison(names[0], names[1], sum(a) / k, sum(b) / k, mean, mean - half, mean + half,
                      confidence, k, "paired t over seeds", higher_is_better)
