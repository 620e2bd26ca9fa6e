"""The class report as one self-contained HTML page (``page.html.j2``).

Everything the page needs is in it: styles in a ``<style>`` element, figures
as ``data:`` URIs, no script, no font or stylesheet from elsewhere, so it
opens from disk, from the formgrader's Jupyter server or attached to an
e-mail, offline. Its tables carry ``data-`` attributes (``data-diagnosis``,
``data-students``, ``data-student``, ``data-kind``, ``data-pair``) so a
script or a test can read the numbers back without parsing prose.

Example:
    >>> from pruning_kit.course.report.gather import ClassData
    >>> html = render(ClassData("toy", Path("."), ""), Path("."))
    >>> "<h1>toy: what the class understood</h1>" in html and "http" not in html
    True
"""

from __future__ import annotations

from pathlib import Path

from . import plots
from .attention import hand_grading_progress, needs_a_human, pending_written
from .diagnoses import rank
from .lessons import section
from .similarity import THRESHOLD, common_limit, similar_pairs

TEMPLATE = Path(__file__).with_name("page.html.j2")


def _function_rows(data, scores):
    rows = []
    for function in data.functions:
        most = data.function_points.get(function, 0.0)
        values = [s.get(function, 0.0) for s in scores.values()]
        rows.append({"function": function, "points": most,
                     "mean": sum(values) / len(values) if values else 0.0,
                     "full": sum(1 for v in values if v >= most - 1e-9 and most > 0),
                     "none": sum(1 for v in values if v <= 0)})
    return rows


def context(data, out_dir, *, sections=None, similarity=None):
    """The values ``page.html.j2`` shows, computed from a :class:`~.gather.ClassData`.

    Args:
        data: the class.
        out_dir: the folder the page will be written to (lesson links are relative to it).
        sections: ``{function: (lesson, heading phrase)}`` (default
            :data:`~.lessons.SECTIONS`).
        similarity: options for :func:`~.similarity.similar_pairs`.
    """
    lessons_dir = Path(data.course_dir) / "lessons"
    found = {f: section(f, lessons_dir, sections) for f in data.functions}
    graded = data.graded_students()
    graded_set = set(graded)
    scores = {s: v for s, v in data.scores().items() if s in graded_set}
    auto_max = sum(data.function_points.get(f, 0.0) for f in data.functions)
    figures = {}
    if scores and data.functions:
        figures["functions"] = plots.function_scores(data.function_points, scores,
                                                     data.functions)
        figures["totals"] = plots.totals({s: sum(v.values()) for s, v in scores.items()},
                                         auto_max)
    if data.written and data.students:
        figures["written"] = plots.written_scores(data.written, data.written_scores)
    run = {}
    options = dict(similarity or {})
    pairs = similar_pairs(data.answers, data.templates, run=run, **options)
    run.setdefault("submissions", 0)
    run.setdefault("cells", len(data.templates))
    run.setdefault("candidates", 0)
    hand_done, _, answers_done, answers_total = hand_grading_progress(data)
    attention = needs_a_human(data)
    pending = [a for a in attention if "written" in a.kinds]
    return {
        "assignment": data.assignment,
        "duedate": data.duedate.strftime("%Y-%m-%d %H:%M") if data.duedate else None,
        "class_size": data.class_size,
        "graded": len(graded),
        "auto_max": auto_max,
        "manual_max": sum(data.written.values()),
        "written": data.written,
        "hand_done": hand_done,
        "answers_done": answers_done,
        "answers_total": answers_total,
        "notes": data.notes,
        "figures": figures,
        "function_rows": _function_rows(data, scores),
        "diagnoses": rank(data.results, clauses=data.clauses, names=data.names, sections=found),
        "flagged": [a for a in attention if any(r.kind != "written" for r in a.reasons)],
        "pending": pending,
        "pending_points": sum(pending_written(data, a.student)[1] for a in pending),
        "pairs": pairs,
        "similarity": run,
        "threshold": options.get("threshold", THRESHOLD),
        "common_limit": options.get("limit") or common_limit(len(data.answers)),
        "out_dir": Path(out_dir),
    }


def render(data, out_dir, **options):
    """The page's HTML for ``data`` (see :func:`context` for ``options``)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATE.parent)),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=False,
                      keep_trailing_newline=True)
    return env.get_template(TEMPLATE.name).render(**context(data, out_dir, **options))
