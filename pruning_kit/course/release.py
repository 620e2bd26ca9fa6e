"""Releasing assignments: ``solutions/`` -> ``assignments/`` with ``nbgrader generate_assignment``.

``make release`` regenerates the student versions; :func:`stale_release`
tells whether the committed ones are out of date (a test runs it).

Example:
    >>> import pruning_kit
    >>> committed = Path(pruning_kit.__file__).parents[1] / "assignments"
    >>> release_differences(committed, committed, ["pruning"])
    []
"""

import difflib
import json
import shutil
import tempfile
from pathlib import Path

from .course_dir import assignments, check_assignment, course_config, run_nbgrader


def release(course_dir=".", names=None):
    """Regenerate the student versions with ``nbgrader generate_assignment``.

    Args:
        course_dir: the course root.
        names: assignment names (default: all in the source folder).

    Returns:
        list of the notebooks written.

    Example:
        >>> import pruning_kit
        >>> release(Path(pruning_kit.__file__).parents[1], ["lottery"])
        Traceback (most recent call last):
        ...
        ValueError: unknown assignment 'lottery'; the source folder has ['binarized', 'pruning']
    """
    names = list(names) if names else assignments(course_dir)
    for name in names:
        check_assignment(course_dir, name)
    _, release_dir = course_config(course_dir)
    # one nbgrader process for all of them when possible (each start costs seconds)
    targets = ["*"] if set(names) == set(assignments(course_dir)) else names
    for target in targets:
        run_nbgrader(course_dir, "generate_assignment", target, "--force")
    return [str(p) for name in names
            for p in sorted((Path(course_dir) / release_dir / name).glob("*.ipynb"))]


def _normalised(path):
    nb = json.loads(Path(path).read_text())
    return json.dumps(nb, indent=1, sort_keys=True).splitlines()


def stale_release(course_dir=".", names=None):
    """Differences between the committed release and what the solutions generate now.

    Generates every assignment into a temporary folder (the committed release
    folder is not touched) and compares notebooks and other files.

    Args:
        course_dir: the course root.
        names: assignment names (default: all).

    Returns:
        list of human-readable differences; empty when the release is up to date.

    Example:
        >>> stale_release("/nonexistent/course")
        Traceback (most recent call last):
        ...
        ValueError: course_dir must be a course root with an nbgrader_config.py, got '/nonexistent/course'
    """
    course_dir = Path(course_dir).resolve()
    names = list(names) if names else assignments(course_dir)
    source, release_dir = course_config(course_dir)
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        tmp = Path(tmp)
        shutil.copy(course_dir / "nbgrader_config.py", tmp / "nbgrader_config.py")
        for name in names:
            check_assignment(course_dir, name)
            shutil.copytree(course_dir / source / name, tmp / source / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        run_nbgrader(tmp, "generate_assignment", "*", "--force")
        return release_differences(tmp / release_dir, course_dir / release_dir, names)


def release_differences(fresh_root, committed_root, names):
    """Compare two release folders assignment by assignment.

    Args:
        fresh_root: release folder just generated (``<course>/assignments``).
        committed_root: the committed release folder.
        names: assignment names to compare.

    Returns:
        list of human-readable differences (empty when identical).

    Example:
        >>> import pruning_kit
        >>> committed = Path(pruning_kit.__file__).parents[1] / "assignments"
        >>> release_differences(committed, committed, ["pruning", "binarized"])
        []
    """
    fresh_root, committed_root = Path(fresh_root), Path(committed_root)
    label = committed_root.name
    problems = []
    for name in names:
        fresh_dir, committed_dir = fresh_root / name, committed_root / name
        fresh = {p.relative_to(fresh_dir) for p in fresh_dir.rglob("*") if p.is_file()}
        committed = ({p.relative_to(committed_dir) for p in committed_dir.rglob("*")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts}
                     if committed_dir.is_dir() else set())
        for rel in sorted(fresh - committed):
            problems.append(f"{label}/{name}/{rel} is missing")
        for rel in sorted(committed - fresh):
            problems.append(f"{label}/{name}/{rel} is not generated from the solutions")
        for rel in sorted(fresh & committed):
            if rel.suffix == ".ipynb":
                a, b = _normalised(committed_dir / rel), _normalised(fresh_dir / rel)
            else:
                a, b = ((committed_dir / rel).read_bytes(),), ((fresh_dir / rel).read_bytes(),)
            if a != b:
                diff = ""
                if rel.suffix == ".ipynb":
                    diff = "\n".join(list(difflib.unified_diff(a, b, "committed", "generated",
                                                               n=1, lineterm=""))[:12])
                problems.append(f"{label}/{name}/{rel} differs from what the solutions "
                                f"generate\n{diff}".rstrip())
    return problems
