"""What students get: the kit package, the lessons and the released assignments, and nothing else.

The course repository is the instructor's: it holds the solutions (``solutions/``),
the grader's hidden tests and reference solutions (``grader/``), the answer keys
(``instructor/``). Students of a graded class get only

- the package they install: the wheel built from ``pyproject.toml``
  (``pruning_kit``; the grader package is a separate distribution that only
  grading installs);
- the lessons (``lessons/*.ipynb``, without outputs);
- the released assignments (``assignments/<name>/<name>.ipynb``: visible tests
  only; the hidden tests live in the grader package, never in a notebook);
- a README saying how to install and work.

On a hub, the student servers install the same wheel (see ``hub/``). For a class
without a hub, :func:`build_student_kit` writes that set as a folder (and a zip)::

    python -m pruning_kit.course student-kit _build/student-kit     # or: make student-kit

Example:
    >>> sorted(KIT_README.split("## ")[1:][0].splitlines()[:1])
    ['Install']
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .course_dir import check_assignment

KIT_README = """# Neural-network compression: the student kit

Lessons and assignments of the course, and the `pruning_kit` package they use.

## Install

Python 3.10 or later. In a fresh virtual environment:

```
python -m venv .venv
.venv/bin/pip install wheels/pruning_kit-*.whl      # installs torch, JupyterLab, nbgrader...
.venv/bin/jupyter lab
```

The lessons run offline on a laptop CPU; each takes about a minute from top to bottom.

## Work

- `lessons/`: open a lesson, run it from the top (Run > Run All Cells), move the sliders, do
  the exercises at the end.
- `assignments/<name>/<name>.ipynb`: write each function in its answer cell. The visible test
  cell below it checks a few cases and says what is wrong in one line; **Validate** (the
  notebook toolbar) runs them all. Your instructor grades the notebook with more tests: every
  rule the notebook states is checked, so read each contract carefully.
- Submit the notebook as your instructor says (the Assignment List of your class's JupyterHub,
  or by uploading the file).
"""


STUDENT_CONFIG = """# Read by nbgrader's Validate in JupyterLab started from this folder: each failing test is
# listed as the function it tests and one line saying what to fix.
from pruning_kit.course.validation import use_short_verdicts

use_short_verdicts()
"""


def build_wheel(repo: Path, out: Path) -> Path:
    """Build the ``pruning_kit`` wheel from ``repo``'s pyproject.toml into ``out``; its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pk-wheel-") as scratch:
        # built from a copy of what the wheel is made of, so the build writes nothing into the
        # repository and nothing else of it can end up in the wheel
        source = Path(scratch) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(repo / name, source / name)
        shutil.copytree(repo / "pruning_kit", source / "pruning_kit",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--quiet", "--wheel-dir", scratch, str(source)],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"building the pruning_kit wheel failed:\n{done.stderr[-2000:]}")
        wheels = sorted(Path(scratch).glob("pruning_kit-*.whl"))
        if not wheels:
            raise RuntimeError("pip wheel wrote no pruning_kit wheel")
        target = out / wheels[-1].name
        shutil.copy2(wheels[-1], target)
    return target


def publish_student_repository(repo, target, *, assignments=None):
    """A git repository of what students get (no wheel), committed anew when it changed.

    This is what nbgitpuller links point at: a student's copy of the course comes from it and
    later updates merge from it. Never point a link at the course repository itself: it holds
    ``solutions/`` and the grader. ``target`` is created on first use; each call replaces its
    files with the current lessons and released assignments and commits the difference.

    Returns:
        ``(path, branch)`` of the repository.
    """
    import subprocess

    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(target), "-c", "user.name=course", "-c",
           "user.email=course@localhost", "-c", "commit.gpgsign=false"]
    if not (target / ".git").is_dir():
        subprocess.run([*git, "init", "--quiet", "--initial-branch=main"], check=True)
    with tempfile.TemporaryDirectory(prefix="pk-student-repo-") as scratch:
        kit = build_student_kit(repo, Path(scratch) / "kit", assignments=assignments,
                                archive=False, wheel=False)
        for entry in target.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for entry in kit.iterdir():
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target / entry.name)
    subprocess.run([*git, "add", "--all"], check=True)
    if subprocess.run([*git, "diff", "--cached", "--quiet"]).returncode != 0:
        subprocess.run([*git, "commit", "--quiet", "-m", "The course's lessons and assignments"],
                       check=True)
    return target, "main"


def build_student_kit(repo=".", out="_build/student-kit", *, assignments=None, archive=True,
                      wheel=True):
    """Write what students get under ``out``; returns the folder (and makes ``out.zip``).

    Args:
        repo: the course repository (its ``lessons/``, released ``assignments/`` and
            ``pyproject.toml``).
        out: the folder to write (replaced if it exists).
        assignments: names of released assignments to include (default: all).
        archive: also write ``<out>.zip``.
        wheel: include the kit's wheel (``wheels/``).

    Raises:
        ValueError: an unknown assignment, or one whose release is missing.
    """
    repo, out = Path(repo).resolve(), Path(out).resolve()
    released = repo / "assignments"
    names = sorted(p.name for p in released.iterdir() if p.is_dir()) if released.is_dir() else []
    chosen = names if assignments is None else list(assignments)
    for name in chosen:
        check_assignment(repo, name)
        if not (released / name / f"{name}.ipynb").is_file():
            raise ValueError(f"assignment {name!r} is not released: run `make release` first")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if wheel:
        build_wheel(repo, out / "wheels")
    (out / "lessons").mkdir()
    for lesson in sorted((repo / "lessons").glob("*.ipynb")):
        shutil.copy2(lesson, out / "lessons" / lesson.name)
    for name in chosen:
        shutil.copytree(released / name, out / "assignments" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (out / "README.md").write_text(KIT_README)
    (out / "nbgrader_config.py").write_text(STUDENT_CONFIG)
    if archive:
        shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return out
