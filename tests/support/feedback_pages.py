"""Rendering the course's feedback and formgrader pages without running nbgrader.

Example:
    >>> "FeedbackGrades" in repr(course_config().GenerateFeedback.preprocessors)
    True
"""

from pathlib import Path

import nbformat
import nbgrader
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

from pruning_kit.course import feedback

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = (Path(nbgrader.__file__).parent
             / "server_extensions/formgrader/static/node_modules/bootstrap/dist/css")


def course_config():
    """The repository's nbgrader_config.py, loaded as nbgrader loads it."""
    config = Config()
    namespace = {"get_config": lambda: config, "__file__": str(REPO / "nbgrader_config.py")}
    exec((REPO / "nbgrader_config.py").read_text(), namespace)
    return config


def graded_notebook(assignment, pending=True):
    """The source notebook with the metadata FeedbackGrades adds: full marks, answers pending."""
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    auto = manual = 0.0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            meta["label"] = feedback.cell_label(cell)
        if meta.get("grade"):
            answer = bool(meta.get("solution"))
            meta["pending"] = answer and pending
            meta["score"] = 0.0 if meta["pending"] else float(meta["points"])
            auto += 0 if answer else meta["points"]
            manual += meta["points"] if answer else 0
    info = {"notebook": assignment, "late_penalty": 0, "auto_score": auto, "auto_max": auto,
            "max_score": auto + manual, "pending_points": manual if pending else 0.0}
    info["score"] = auto + (0 if pending else manual)
    info["graded_max"] = info["max_score"] - info["pending_points"]
    return nb, {"nbgrader": info}


def render(template, nb, resources):
    """``nb`` as the course's ``template`` (``feedback``, ``formgrade``) renders it."""
    config = course_config()
    config.HTMLExporter.template_name = template
    config.HTMLExporter.extra_template_paths = [*config.HTMLExporter.extra_template_paths,
                                                str(BOOTSTRAP)]
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]
