"""What the class understood: one HTML page per assignment, from a graded class.

``python -m pruning_kit.course report pruning`` (``make report ASSIGNMENT=pruning``)
writes ``autograded/report_pruning.html``; ``make grade`` writes it after every
grading and prints where it is, and the formgrader's grading pages link to it.
The page shows the score distribution per graded function and for the written
answers, the diagnoses ranked by how many students they hit (with the concept
and the lesson section each points to), the submissions that need a human, and
the pairs of submissions whose own code is unusually similar.

One module per idea: :mod:`.gather` reads the class (gradebook, check results,
notebooks, the grader's clause table), :mod:`.diagnoses` ranks the mistakes,
:mod:`.lessons` finds where each function is taught, :mod:`.attention` lists what
needs a human, :mod:`.similarity` compares the students' code (copydetect),
:mod:`.plots` draws the figures (seaborn) and :mod:`.page` writes the page.

Example:
    >>> default_path("/srv/course", "pruning").as_posix()
    '/srv/course/autograded/report_pruning.html'
"""

from __future__ import annotations

from pathlib import Path


def default_path(course_dir, assignment):
    """Where the report of ``assignment`` goes: beside the grades CSV in ``autograded/``."""
    return Path(course_dir) / "autograded" / f"report_{assignment}.html"


def build_report(course_dir=".", assignment="pruning", *, db_url=None, out=None, sections=None,
                 similarity=None):
    """Write the class report of ``assignment``; returns its path.

    Args:
        course_dir: the course root.
        assignment: the assignment's name.
        db_url: the gradebook's URL (default: the course's, as ``make grade`` uses it).
        out: the HTML file to write (default :func:`default_path`).
        sections: ``{function: (lesson, heading phrase)}`` for the lesson links
            (default :data:`.lessons.SECTIONS`).
        similarity: options for :func:`.similarity.similar_pairs` (``threshold``, ...).
    """
    from .gather import gather
    from .page import render

    out = Path(out) if out else default_path(course_dir, assignment)
    data = gather(course_dir, assignment, db_url)
    html = render(data, out.resolve().parent, sections=sections, similarity=similarity)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def report_after_grading(course_dir, assignment, db_url, out):
    """Build the report at the end of ``grade()`` and print where it is; never fails grading."""
    try:
        path = build_report(course_dir, assignment, db_url=db_url)
    except Exception as exc:  # noqa: BLE001 - grading succeeded; the report is extra
        print(f"report: not written ({type(exc).__name__}: {exc}); try "
              f"`python -m pruning_kit.course report {assignment}`", file=out)
        return None
    print(f"report: {path}", file=out)
    return path
