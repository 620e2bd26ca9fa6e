"""The report's figures (seaborn), as PNG ``data:`` URIs the page holds inline.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, no
global backend or style), so building a report never changes the plotting
state of the process that builds it.

Example:
    >>> uri = function_scores({"f": 2.0}, {"ada": {"f": 2.0}, "bob": {"f": 0.0}}, ["f"])
    >>> uri.startswith("data:image/png;base64,")
    True
"""

from __future__ import annotations

import base64
import io
import math

OUTCOME_COLORS = {"full marks": "#3a923a", "partial": "#e1812c", "no points": "#c03d3e",
                  "not graded yet": "#9d9d9d"}
"""One color per outcome, the same in every figure."""


def _outcome(points, most):
    if points >= most - 1e-9:
        return "full marks"
    return "partial" if points > 0 else "no points"


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(count, width=3.3, height=2.6, columns=3):
    from matplotlib.figure import Figure

    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    fig = Figure(figsize=(width * columns, height * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _bars(ax, counts, xlabel, title):
    """Bars of students per points value, colored by outcome, on ``ax``."""
    import pandas as pd
    import seaborn as sns

    frame = pd.DataFrame([{"points": f"{value:g}" if isinstance(value, float) else value,
                           "students": count, "outcome": outcome}
                          for (value, outcome), count in counts])
    sns.barplot(data=frame, x="points", y="students", hue="outcome", dodge=False,
                palette=OUTCOME_COLORS, saturation=1.0, hue_order=[o for o in OUTCOME_COLORS
                                                   if o in set(frame["outcome"])],
                legend=False, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("students")
    ax.set_title(title, fontsize=10)
    ax.yaxis.get_major_locator().set_params(integer=True)


def _legend(fig, outcomes):
    from matplotlib.patches import Patch

    handles = [Patch(color=OUTCOME_COLORS[o], label=o) for o in OUTCOME_COLORS if o in outcomes]
    fig.tight_layout()
    # above the panels; savefig's tight bounding box makes room for it
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               title="outcome", bbox_to_anchor=(0.5, 1.0))


def function_scores(points, scores, functions):
    """Students per points earned, one panel per graded function (autograded tests).

    Args:
        points: ``{function: most points}``.
        scores: ``{student: {function: points}}``.
        functions: the panels, in notebook order.
    """
    fig, axes = _grid(len(functions))
    seen = set()
    for ax, function in zip(axes, functions):
        most = points.get(function, 0.0)
        counts = {}
        for student_scores in scores.values():
            value = round(student_scores.get(function, 0.0), 2)
            key = (value, _outcome(value, most))
            counts[key] = counts.get(key, 0) + 1
        seen |= {outcome for _, outcome in counts}
        _bars(ax, sorted(counts.items()), f"points (of {most:g})", function)
    _legend(fig, seen)
    return _png(fig)


def written_scores(points, scores):
    """Students per points given, one panel per written answer, "not graded yet" as its own bar.

    Args:
        points: ``{answer: most points}``.
        scores: ``{student: {answer: points, or None while not graded}}``.
    """
    answers = list(points)
    fig, axes = _grid(len(answers))
    seen = set()
    for ax, answer in zip(axes, answers):
        most = points[answer]
        counts = {}
        for student_scores in scores.values():
            value = student_scores.get(answer)
            key = (("not graded", "not graded yet") if value is None
                   else (f"{round(value, 2):g}", _outcome(value, most)))
            counts[key] = counts.get(key, 0) + 1
        seen |= {outcome for _, outcome in counts}
        ordered = sorted(counts.items(), key=lambda item: (
            item[0][0] == "not graded", float(item[0][0]) if item[0][0] != "not graded" else 0))
        _bars(ax, ordered, f"points (of {most:g})", answer)
    _legend(fig, seen)
    return _png(fig)


def totals(totals_by_student, most):
    """A histogram of the autograded total per student."""
    import pandas as pd
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 2.8))
    ax = fig.subplots()
    frame = pd.DataFrame({"points": list(totals_by_student.values())})
    frame["outcome"] = [_outcome(v, most) for v in frame["points"]]
    sns.histplot(data=frame, x="points", hue="outcome", multiple="stack", discrete=True,
                 palette=OUTCOME_COLORS, hue_order=[o for o in OUTCOME_COLORS
                                                    if o in set(frame["outcome"])],
                 binrange=(0, max(most, 1)), ax=ax)
    ax.set_xlabel(f"autograded points (of {most:g})")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return _png(fig)
