"""A course folder and the nbgrader command line: where things are, and how nbgrader is run.

The course root is the folder with ``nbgrader_config.py``; its source folder
(``solutions/``) holds one folder per assignment. Every nbgrader step runs the
real ``nbgrader`` command line with this Python's ``bin`` folder first on
``PATH`` (nbgrader shells out to ``alembic``).

Example:
    >>> import pruning_kit
    >>> from pathlib import Path
    >>> course_config(Path(pruning_kit.__file__).parents[1])
    ('solutions', 'assignments')
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ASSIGNMENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def grading_environment():
    """The environment nbgrader runs in: this Python's ``bin`` first on ``PATH`` (nbgrader
    shells out to ``alembic`` and ``jupyter``), one OpenMP thread, a headless backend."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def run_nbgrader(course_dir, *args, check=True):
    """Run ``nbgrader <args>`` in ``course_dir`` and return the finished process.

    The command runs with this Python's ``bin`` folder first on ``PATH`` (nbgrader
    calls ``alembic``) and one OpenMP thread per kernel unless set otherwise.

    Args:
        course_dir: the course root (holds ``nbgrader_config.py``).
        *args: the nbgrader subcommand and its arguments.
        check: raise ``RuntimeError`` with the log tail when nbgrader fails.

    Returns:
        ``subprocess.CompletedProcess`` with ``stdout`` (stderr merged into it).

    Example:
        >>> run_nbgrader("/nonexistent/course", "--version")
        Traceback (most recent call last):
        ...
        ValueError: course_dir must be an existing folder, got '/nonexistent/course'
    """
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise ValueError(f"course_dir must be an existing folder, got {str(course_dir)!r}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *map(str, args)], cwd=course_dir,
                          env=grading_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if check and done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise RuntimeError(f"nbgrader {' '.join(map(str, args))} failed "
                           f"(exit {done.returncode}):\n{tail}")
    return done


def course_config(course_dir):
    """``(source, release)``: the folder names ``nbgrader_config.py`` sets (``solutions``, ``assignments``)."""
    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        raise ValueError(f"course_dir must be a course root with an nbgrader_config.py, "
                         f"got {str(course_dir)!r}")
    text = path.read_text()

    def find(key, default):
        m = re.search(rf"c\.CourseDirectory\.{key}\s*=\s*['\"]([^'\"]+)['\"]", text)
        return m.group(1) if m else default

    return find("source_directory", "source"), find("release_directory", "release")


def assignments(course_dir="."):
    """The assignment names: the folders of the source directory (``solutions/``).

    Example:
        >>> import pruning_kit
        >>> assignments(Path(pruning_kit.__file__).parents[1])
        ['binarized', 'pruning']
    """
    source, _ = course_config(course_dir)
    root = Path(course_dir) / source
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and ASSIGNMENT_NAME.match(p.name) and any(p.glob("*.ipynb")))


def check_assignment(course_dir, assignment):
    """Raise ``ValueError`` unless ``assignment`` names a folder of the source directory."""
    if not isinstance(assignment, str) or not ASSIGNMENT_NAME.match(assignment):
        raise ValueError(f"assignment must be a folder name like 'pruning', got {assignment!r}")
    known = assignments(course_dir)
    if assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}; the source folder has {known}")
