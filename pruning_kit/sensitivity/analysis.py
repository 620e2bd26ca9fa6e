"""Analysing accuracy surfaces over learning rate x weight decay.

- :func:`settings`, :func:`surface`: which grids a frame holds, one of them as a table;
- :func:`top_configs`: the configurations within 0.5% / 1% of the best;
- :func:`confidence_ellipse`: the 2-sigma ellipse (86.47% of a Gaussian) of the
  top configurations in log10 space;
- :func:`surface_distance` (Wasserstein) and :func:`top_overlap` (Jaccard):
  how far a pruned surface moved from the base one; :func:`summary` puts
  them in one table.

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

import math
from dataclasses import dataclass

import numpy as np

from .._checks import InvalidParameterError, check_number, check_fraction

__all__ = ["TWO_SIGMA_MASS", "settings", "top_configs", "Ellipse", "confidence_ellipse",
           "surface", "surface_distance", "top_overlap", "summary"]

TWO_SIGMA_MASS = 1 - math.exp(-2)   # share of a 2-D Gaussian inside its 2-sigma ellipse: 86.47%


# --------------------------------------------------------------------------------------------
# One surface
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


def settings(frame) -> list:
    """The settings (grids) a frame holds, in the order they first appear.

    Example:
        >>> import pandas as pd
        >>> settings(pd.DataFrame({"setting": ["base", "base", "pruned"], "lr": 1e-3,
        ...                        "weight_decay": 1e-4, "accuracy": [0.9, 0.8, 0.7]}))
        ['base', 'pruned']
    """
    _check_frame(frame)
    if "setting" not in frame.columns:
        raise InvalidParameterError("frame needs a 'setting' column naming its grids (as from "
                                    "sensitivity_study)")
    return list(dict.fromkeys(frame.setting))


def _one_setting(frame, setting):
    """The rows of one grid; ``setting`` may be omitted when the frame holds only one."""
    _check_frame(frame)
    if "setting" not in frame.columns:
        if setting is not None:
            raise InvalidParameterError("frame has no 'setting' column to select from")
        return frame
    names = settings(frame)
    if setting is None:
        if len(names) > 1:
            raise InvalidParameterError(f"frame holds several settings {names}; pass setting=... "
                                        "to choose one")
        return frame
    if setting not in names:
        raise InvalidParameterError(f"setting {setting!r} is not in the frame; it has {names}")
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
    names = settings(frame)
    if b is None:
        others = [s for s in names if s != a]
        if len(others) != 1:
            raise InvalidParameterError(f"pass b=...: the frame holds the settings {names}")
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

    names = settings(frame)
    if reference not in names:
        raise InvalidParameterError(f"reference {reference!r} is not a setting of the frame: {names}")
    rows = []
    for s in names:
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
