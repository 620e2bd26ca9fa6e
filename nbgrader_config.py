"""nbgrader configuration of the course. The course root is this folder.

Students get `assignments/<name>/` (generated from `solutions/<name>/` by
`make release`, never edited by hand); their work goes to
`submitted/<student>/<name>/`; `make grade ASSIGNMENT=<name>` autogrades it.
nbgrader calls `alembic` from its own environment: run it with the course
virtualenv's `bin` first on PATH (the Makefile does).
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute, OverwriteCells

try:
    from pruning_kit.course.execute import RobustOverwriteCells
    from pruning_kit.course.feedback import FeedbackGrades, template_dirs, template_paths
    from pruning_kit.course.validation import use_short_verdicts
    from pruning_grader.nbgrader import CheckedExecute
except ImportError as exc:  # pragma: no cover - wrong environment
    raise ImportError("nbgrader_config.py needs the course package and the grader package "
                      "(grader/): run nbgrader from the course virtualenv (make setup; "
                      "PATH=.venv/bin:$PATH)") from exc

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# The course's name in nbgrader's exchange (the hub) and in a PostgreSQL gradebook, which
# refuses assignments of a course without one.
c.CourseDirectory.course_id = "pruning-course"

# Per-cell timeout in seconds. nbgrader reads `Execute.timeout`; the spelling
# `ExecutePreprocessor.timeout` is ignored. The longest cells (loading the
# embedded digits and training a few epochs on them) take a few seconds on
# 2 cores; 60 s leaves room for a slow or busy machine.
c.Execute.timeout = 60

# A test cell a student deleted is put back (and run) instead of going missing;
# RobustOverwriteCells also copes when the cells around it were deleted too.
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    RobustOverwriteCells if step is OverwriteCells else step
    for step in Autograde.class_traits()["sanitize_preprocessors"].default()
]

# Every test cell is decided by the trusted checker (grader/pruning_grader), in this process,
# against the student's answer cells run in a separate sandboxed process: student code never
# runs where a point is decided. The notebook itself still runs in a sandboxed kernel (written
# answers, plots and tables for the manual grader), restarted when a cell kills or wedges it.
c.Autograde.autograde_preprocessors = [
    CheckedExecute if step is Execute else step
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
]
c.RobustExecute.max_restarts = 10          # kernel restarts per notebook (CheckedExecute is one)
c.RobustExecute.memory_limit_mb = 8192     # address space per kernel (torch maps ~4.5 GB, ~1 GB resident)

# Every kernel that runs student code starts in a sandbox (bubblewrap; pruning_kit/course/sandbox.py):
# read-only system, a private copy of the student's own folder, no network, nothing of this
# course folder, home folders or the grader's environment. Where it can't start, grading refuses
# and says what to install; `make grade UNSANDBOXED=1` or
# `c.Sandbox.allow_unsandboxed_grading = True` grade without it (student code then runs with
# your rights). Limits: c.Sandbox.max_processes, cpu_time_s, writable_mb (memory: the line above).
c.RobustExecute.kernel_provisioner = "pruning-kit-sandbox"

# What the instructor and students see (pruning_kit/course/feedback.py): feedback names each
# test cell by the function it grades and says "not graded yet" for written answers nobody has
# graded; the feedback pages and the formgrader load MathJax from the Jupyter server
# (jupyter-server-mathjax), not a CDN, so math is typeset offline.
c.GenerateFeedback.preprocessors = [FeedbackGrades, CSSHTMLHeaderPreprocessor]
c.HTMLExporter.extra_template_basedirs = template_dirs()

# Validate (JupyterLab's button, `nbgrader validate`): each failing test as its label and one line.
use_short_verdicts()

# The formgrader's grading page links to the class report (make report / make grade write it):
# the course's formgrade macros add the link to nbgrader's own, found through this search path.
c.HTMLExporter.extra_template_paths = template_paths()
