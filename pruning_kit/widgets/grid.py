"""The grid explorer: a learning-rate x weight-decay heatmap for each pruning level.

For "are hyperparameters overrated?"-style questions: does pruning move the
best region of the grid? One colour scale across levels, the best cell outlined.
"""

from __future__ import annotations

import math
import numbers

import ipywidgets as widgets
import numpy as np

from .._checks import InvalidParameterError, check_choice, type_name
from .base import ACCENT, FONT, Explorer, percent, style_axes

__all__ = ["GridExplorer", "grid_explorer"]


def _tick(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if value != 0 and (abs(value) < 0.01 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


class GridExplorer(Explorer):
    """A slider over pruning levels showing the learning-rate x weight-decay heatmap of each.

    ``pk.widgets.grid_explorer(frame)`` is this class.

    Repeated runs of the same cell (seeds) are averaged. Colours share one
    scale across levels, so the best region can be compared as the slider
    moves; the best cell is outlined.

    Args:
        frame: a pandas DataFrame with one row per run, e.g. columns ``lr``,
            ``weight_decay``, ``accuracy``, ``pruning``.
        by: the column the slider walks through.
        x, y: the heatmap's columns and rows.
        value: the column shown in colour (higher is better).
        backend: ``"auto"``, ``"ipympl"`` or ``"image"``.

    Its control is ``ex.level_slider``; ``ex.update(pruning=...)`` (the
    ``by`` column's name, or ``level=``) drives it.

    Example:
        >>> import itertools, pandas as pd
        >>> rows = [{"pruning": p, "lr": lr, "weight_decay": wd, "accuracy": 0.9 - abs(lr - 0.01)}
        ...         for p, lr, wd in itertools.product([0.0, 0.5], [0.001, 0.01, 0.1], [0, 1e-4])]
        >>> ex = grid_explorer(pd.DataFrame(rows), backend="image")
        >>> ex.update(pruning=0.5)["best_lr"], ex.levels
        (0.01, [0.0, 0.5])
    """

    figsize = (8.5, 6.4)

    def __init__(self, frame, *, by: str = "pruning", x: str = "weight_decay", y: str = "lr",
                 value: str = "accuracy", backend: str = "auto"):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise InvalidParameterError(f"frame must be a pandas DataFrame, got {type_name(frame)}")
        missing = [c for c in (by, x, y, value) if c not in frame.columns]
        if missing:
            raise InvalidParameterError(f"frame lacks the columns {missing}; it has "
                                        f"{list(frame.columns)} (name them with by=, x=, y=, "
                                        "value=)")
        if frame.empty:
            raise InvalidParameterError("frame is empty")
        if not pd.api.types.is_numeric_dtype(frame[value]):
            raise InvalidParameterError(f"column {value!r} must be numeric, got "
                                        f"{frame[value].dtype}")
        super().__init__(backend)
        self.by, self.x, self.y, self.value = by, x, y, value
        self.levels = sorted(frame[by].unique().tolist())
        self.xs = sorted(frame[x].unique().tolist())
        self.ys = sorted(frame[y].unique().tolist())
        self._tables = {}
        for level in self.levels:
            part = frame[frame[by] == level]
            table = part.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
            self._tables[level] = table.reindex(index=self.ys, columns=self.xs).to_numpy(float)
        stacked = np.stack(list(self._tables.values()))
        finite = stacked[np.isfinite(stacked)]
        self._vmin, self._vmax = (float(finite.min()), float(finite.max())) if finite.size \
            else (0.0, 1.0)
        self._percent = 0 <= self._vmin and self._vmax <= 1

        self.level_slider = widgets.SelectionSlider(
            options=[(_tick(level), level) for level in self.levels], value=self.levels[0],
            description=by, continuous_update=True, style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"))
        self.level_slider.add_class("pk-level-slider")
        self._build_figure()
        self._start([self.level_slider], {"level": self.levels[0]})

    def _build_figure(self) -> None:
        from matplotlib.patches import Rectangle

        fig, live = self.figure, self.live_figure
        ax = fig.add_axes((0.16, 0.13, 0.66, 0.76))
        cax = fig.add_axes((0.85, 0.13, 0.03, 0.76))
        self._image = live.animate(ax.imshow(
            self._tables[self.levels[0]], cmap="viridis", vmin=self._vmin, vmax=self._vmax,
            aspect="auto", interpolation="nearest", origin="lower"))
        bar = fig.colorbar(self._image, cax=cax)
        bar.set_label(self.value, fontsize=FONT["label"])
        bar.ax.tick_params(labelsize=FONT["tick"])
        ax.set_xticks(range(len(self.xs)), [_tick(v) for v in self.xs], rotation=30)
        ax.set_yticks(range(len(self.ys)), [_tick(v) for v in self.ys])
        self._cells = []
        if len(self.xs) * len(self.ys) <= 100:
            self._cells = [[live.animate(ax.text(j, i, "", ha="center", va="center",
                                                 fontsize=FONT["text"] - 1))
                            for j in range(len(self.xs))] for i in range(len(self.ys))]
        self._best = live.animate(ax.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False,
                                                         edgecolor=ACCENT, lw=3.5)))
        style_axes(ax, "", self.x, self.y)
        self._title = live.animate(ax.set_title("", fontsize=FONT["title"]))

    def _compute(self, level) -> dict:
        table = self._tables[level]
        self._image.set_data(table)
        middle = (self._vmin + self._vmax) / 2
        for i, row in enumerate(self._cells):
            for j, text in enumerate(row):
                v = table[i, j]
                text.set_text("" if not np.isfinite(v) else
                              f"{100 * v:.1f}" if self._percent else f"{v:.3g}")
                text.set_color("black" if np.isfinite(v) and v > middle else "white")
        result = {"level": level, self.by: level}
        if np.isfinite(table).any():
            i, j = np.unravel_index(np.nanargmax(table), table.shape)
            self._best.set_xy((j - 0.5, i - 0.5))
            self._best.set_visible(True)
            result.update({self.value: float(table[i, j]), f"best_{self.y}": self.ys[i],
                           f"best_{self.x}": self.xs[j]})
        else:
            self._best.set_visible(False)
            result.update({self.value: math.nan, f"best_{self.y}": None,
                           f"best_{self.x}": None})
        self._title.set_text(f"{self.value} at {self.by} = {_tick(level)}")
        return result

    def _readout(self, r: dict) -> str:
        best = r[self.value]
        shown = percent(best) if self._percent and math.isfinite(best) else f"{best:.4g}"
        return (f"{self.by} {_tick(r['level'])} &nbsp;·&nbsp; best {self.value} "
                f"<b class='pk-accuracy'>{shown}</b> at {self.y} = "
                f"{_tick(r[f'best_{self.y}']) if r[f'best_{self.y}'] is not None else '—'}, "
                f"{self.x} = "
                f"{_tick(r[f'best_{self.x}']) if r[f'best_{self.x}'] is not None else '—'}")

    def _settings_from_controls(self) -> dict:
        return {"level": self.level_slider.value}

    def _show_settings(self, settings: dict) -> None:
        self.level_slider.value = settings["level"]

    def update(self, level=None, **by_name) -> dict:
        """Show the grid of one level, given as ``level=`` or by the column's name.

        Returns:
            ``{"level", <by>: level, <value>: best value, "best_<y>", "best_<x>", "ms"}``.

        Example:
            >>> import pandas as pd
            >>> frame = pd.DataFrame({"pruning": [0, 0, 0.5, 0.5], "lr": [1e-3, 1e-2] * 2,
            ...                       "weight_decay": [0.0] * 4,
            ...                       "accuracy": [0.90, 0.95, 0.93, 0.91]})
            >>> r = grid_explorer(frame).update(pruning=0.5)
            >>> r["accuracy"], r["best_lr"]
            (0.93, 0.001)
        """
        unknown = set(by_name) - {self.by}
        if unknown:
            raise InvalidParameterError(f"update() takes level= or {self.by}=, got "
                                        f"{sorted(unknown)}")
        if by_name:
            if level is not None:
                raise InvalidParameterError(f"give level= or {self.by}=, not both")
            level = by_name[self.by]
        if level is None:
            level = self._last_settings["level"]
        level = check_choice(self.by, level, self.levels)
        level = self.levels[self.levels.index(level)]
        return self._update({"level": level})


grid_explorer = GridExplorer   # the documented entry point is the class itself
