"""What the instructor and the students see: feedback pages and the formgrader, offline.

``nbgrader_config.py`` plugs this in:

- :class:`FeedbackGrades` replaces nbgrader's ``GetGrades`` step of
  ``generate_feedback``: each graded cell gets a label naming what it grades
  (``magnitude_mask — hidden tests``, ``answer_rewinding — written answer``), and
  written answers nobody has graded yet are marked, so the feedback page says
  "not graded yet" instead of counting them as 0 (26/28 for a perfect notebook).
- :data:`TEMPLATES` holds the course's versions of nbgrader's ``feedback`` page
  and, for the formgrader, a MathJax loader: both load MathJax from the Jupyter
  server itself (the ``jupyter-server-mathjax`` package serves it at
  :data:`MATHJAX_PATH`), never from a CDN, so an offline formgrader shows
  typeset math instead of raw LaTeX. The formgrader's grading page also links
  to the class report of its assignment (``formgrade/formgrade_macros.html.j2``).

Example:
    >>> cell_label({"cell_type": "code", "metadata": {"nbgrader": {
    ...     "grade": True, "solution": False, "grade_id": "test_magnitude_mask_hidden"}}})
    'magnitude_mask — hidden tests'
"""

from pathlib import Path

from nbgrader.preprocessors import GetGrades

from .preflight import function_of

TEMPLATES = Path(__file__).resolve().with_name("templates")
"""The course's nbconvert templates (``feedback/``, ``formgrade/``), searched before nbgrader's."""

MATHJAX_PATH = "static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
"""Where a Jupyter server with ``jupyter-server-mathjax`` serves MathJax, under its base URL."""


def template_dirs():
    """``c.HTMLExporter.extra_template_basedirs``: the course's templates, then nbgrader's.

    Example:
        >>> [Path(d).name for d in template_dirs()]
        ['templates', 'templates']
    """
    import nbgrader.server_extensions.formgrader.handlers as formgrader

    return [str(TEMPLATES), str(Path(formgrader.template_path).resolve())]


def template_paths():
    """``c.HTMLExporter.extra_template_paths``: nbgrader's formgrader folder, as a search path.

    So the course's formgrade macros (which add a link to the class report, see
    :mod:`pruning_kit.course.report`) can import nbgrader's own by the name
    ``templates/formgrade/formgrade_macros.html.j2`` and add to them instead of copying them.

    Example:
        >>> (Path(template_paths()[0]) / "templates" / "formgrade").is_dir()
        True
    """
    import nbgrader.server_extensions.formgrader.handlers as formgrader

    return [str(Path(formgrader.template_path).resolve().parent)]


def cell_label(cell):
    """What a graded cell grades, in words, for the feedback page.

    Args:
        cell: a notebook cell with nbgrader metadata.

    Returns:
        ``"NAME — visible tests"`` / ``"NAME — hidden tests"`` for a test cell,
        ``"ID — written answer"`` for a hand-graded answer, ``"ID — your code"``
        for a hand-graded code cell, ``"ID — task"`` for a task, None otherwise.
    """
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id")
    if not gid:
        return None
    if meta.get("task"):
        return f"{gid} — task"
    if not meta.get("grade"):
        return f"{gid} — your code" if meta.get("solution") else None
    if meta.get("solution"):
        return f"{gid} — {'written answer' if cell.get('cell_type') == 'markdown' else 'your code'}"
    name = function_of(gid)
    if name:
        return f"{name} — {gid.rsplit('_', 1)[1]} tests"
    return f"{gid} — tests"


class FeedbackGrades(GetGrades):
    """nbgrader's ``GetGrades``, plus labels and the state of the hand grading.

    Adds to each graded cell's ``nbgrader`` metadata ``label`` (:func:`cell_label`)
    and ``pending`` (True while a written answer waits for a grader), and to
    ``resources["nbgrader"]``: ``pending_points`` (points not graded yet),
    ``auto_score`` / ``auto_max`` (the autograded tests) and ``graded_max``
    (the points graded so far). The course's feedback template shows
    "not graded yet" for pending cells and scores only what was graded.
    """

    def preprocess(self, nb, resources):
        self._totals = {"pending": 0.0, "auto_score": 0.0, "auto_max": 0.0}
        nb, resources = super().preprocess(nb, resources)
        info = resources["nbgrader"]
        info["pending_points"] = self._totals["pending"]
        info["auto_score"] = self._totals["auto_score"]
        info["auto_max"] = self._totals["auto_max"]
        info["graded_max"] = info["max_score"] - self._totals["pending"]
        return nb, resources

    def _get_score(self, cell, resources):
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"],
                                          self.notebook_id, self.assignment_id, self.student_id)
        meta = cell.metadata.nbgrader
        meta["score"] = grade.score
        meta["points"] = grade.max_score
        meta["pending"] = bool(grade.needs_manual_grade and grade.manual_score is None)
        meta["label"] = cell_label(cell) or meta["grade_id"]
        if meta["pending"]:
            self._totals["pending"] += grade.max_score or 0.0
        elif not meta.get("solution") and not meta.get("task"):
            self._totals["auto_score"] += grade.score or 0.0
            self._totals["auto_max"] += grade.max_score or 0.0

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade") and "label" not in meta:
            meta["label"] = cell_label(cell)
        return cell, resources
