"""A student's own copy of the lessons and assignments, which course updates merge into.

Students work in ``work/`` (git-ignored), never in the repository's tracked notebooks:
running a lesson, JupyterLab's autosave and nbgrader's Validate write outputs and
metadata into the notebooks they open, and a clone whose tracked files changed
conflicts on the next ``git pull`` of a corrected lesson. ``make lab`` makes the
copy on first run and opens JupyterLab in it; ``git pull`` updates the repository
(which stays clean), then ``make update`` (``make lab`` too, each time it starts)
merges the corrected lessons into ``work/``.

The copy is a git clone of this repository's current branch holding only
``lessons/``, ``assignments/`` and ``data/`` (a sparse checkout); updates merge
exactly as nbgitpuller merges on a course hub (its ``GitPuller``, the same code):

- a file changed upstream but not by the student is updated;
- a file the student changed keeps the student's changes; where the same lines
  changed on both sides, the student's lines win (``git merge -Xours``);
- a file the student deleted comes back from the course;
- a file the student created where the course now adds one is renamed
  ``name__TIMESTAMP.ext`` and the course's is put in place.

A repository without git (a downloaded archive) gets a plain copy once, which no
update reaches.

Usage:
    .venv/bin/python tools/working_copy.py            # make the copy if missing, then merge updates
    .venv/bin/python tools/working_copy.py --root DIR # a course folder elsewhere
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "work"
CONTENT = ("lessons", "assignments", "data")     # what students open; data/: the lessons' ../data


class WorkingCopyError(RuntimeError):
    """The working copy can't be made or updated (the message says why and what to do)."""


def _git(*args, cwd, check=True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise WorkingCopyError(f"git {' '.join(args)} failed in {cwd}: "
                               f"{(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


def is_git_repository(root: Path) -> bool:
    """Whether ``root`` is (inside) a git work tree."""
    return shutil.which("git") is not None and subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True,
        text=True).stdout.strip() == "true"


def course_branch(root: Path) -> str:
    """The branch the repository has checked out: the one the working copy follows."""
    branch = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=root)
    if branch == "HEAD":
        raise WorkingCopyError(f"{root} has no branch checked out (a detached HEAD): "
                               f"`git checkout main` (or the course's branch) first")
    return branch


def create(root: Path = ROOT, folder: str = FOLDER, *, log=print) -> Path:
    """Clone the course's current branch into ``root/folder``, checking out only :data:`CONTENT`.

    Returns:
        the working copy's path.
    """
    root = Path(root).resolve()
    target = root / folder
    if not is_git_repository(root):
        target.mkdir()
        for name in CONTENT:
            if (root / name).is_dir():
                shutil.copytree(root / name, target / name)
        log(f"made {target} (a plain copy: this folder is not a git clone, so course "
            f"updates can't be merged into it)")
        return target
    branch = course_branch(root)
    _git("clone", "--quiet", "--no-checkout", "--branch", branch, "--", str(root), str(target),
         cwd=root)
    _git("sparse-checkout", "set", "--no-cone", *(f"/{name}/" for name in CONTENT), cwd=target)
    _git("checkout", "--quiet", branch, cwd=target)
    log(f"made {target}: your copy of lessons/ and assignments/ (branch {branch})")
    return target


def update(root: Path = ROOT, folder: str = FOLDER, *, log=print) -> list[str]:
    """Merge the course's committed changes into ``root/folder`` as nbgitpuller does.

    Returns:
        the files the merge changed in the working copy (paths inside it).
    """
    from nbgitpuller.pull import GitPuller

    root, target = Path(root).resolve(), Path(root).resolve() / folder
    if not (target / ".git").exists():
        log(f"{target} is a plain copy: course updates can't be merged into it")
        return []
    branch = course_branch(root)
    before = _git("rev-parse", "HEAD", cwd=target)
    puller = GitPuller(str(root), str(target), branch=branch, depth=0)
    try:
        for line in puller.update():
            if line.startswith(("Renamed", "Caught")):
                log(line.strip())
    except subprocess.CalledProcessError as error:
        raise WorkingCopyError(f"merging the course's changes into {target} failed "
                               f"({' '.join(error.cmd)}): your files are unchanged; "
                               f"`git -C {target} status` shows where it stopped") from None
    changed = _git("diff", "--name-only", before, "HEAD", "--", *CONTENT, cwd=target).split()
    upstream = set(_git("diff", "--name-only", before, f"origin/{branch}", cwd=target).split())
    return [name for name in changed if name in upstream]


def ensure(root: Path = ROOT, folder: str = FOLDER, *, log=print) -> Path:
    """The working copy, made on first use and brought up to date with the course."""
    target = Path(root).resolve() / folder
    if not target.exists():
        return create(root, folder, log=log)
    updated = update(root, folder, log=log)
    if updated:
        log(f"merged the course's changes into {target}: {', '.join(updated)}")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the course folder")
    args = parser.parse_args(argv)
    try:
        target = ensure(args.root)
    except WorkingCopyError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"your working copy: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
