"""A fresh clone of the course for a test: what a student or an instructor starts from.

    course = fresh_clone(tmp_path / "course")     # this repository's committed files, branch main
    commit(course, "fix lesson 1")                # a change the course publishes (`git pull`)
"""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIT_USER = ["-c", "user.email=course@example.org", "-c", "user.name=Course"]


def git(*args, cwd) -> str:
    """Run git in ``cwd`` (with a committer identity); its output."""
    return subprocess.run(["git", *GIT_USER, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def fresh_clone(folder: Path) -> Path:
    """A clone of this repository's committed state in ``folder``, on a branch named main.

    A clone holds what a fresh user has: no gradebook, no exchange, no working copy.
    """
    git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(folder), cwd=ROOT)
    git("checkout", "--quiet", "-B", "main", cwd=folder)      # a detached clone gets a branch
    return Path(folder)


def commit(folder: Path, message: str) -> None:
    """Commit every change of tracked files in ``folder``."""
    git("commit", "--quiet", "-am", message, cwd=folder)


def status(folder: Path) -> str:
    """``git status --porcelain`` of ``folder``: empty when nothing tracked or new changed."""
    return git("status", "--porcelain", cwd=folder)
