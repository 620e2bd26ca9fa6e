"""What students get holds no hidden test and no reference solution.

Students of a graded class get the wheel built from ``pyproject.toml``, the
lessons and the released assignments (``python -m pruning_kit.course
student-kit``), or on a hub a server whose environment has the same wheel. The
hidden tests and the reference solutions live in the grader package
(``grader/``), which only grading installs. These tests build each of those
things and search every file of them for the lines of every hidden test,
reference solution and instructor's answer.
"""

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pruning_kit.course.student_kit import build_student_kit, build_wheel
from support.assignments import REPO
from support.secrets import COMMON_IDIOMS, leaks, secret_lines

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secrets():
    lines = secret_lines()
    assert len(lines) > 50, "the grader's hidden tests and references were not found"
    return lines


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(REPO, tmp_path_factory.mktemp("wheel"))


def test_the_lines_excused_as_idioms_are_exactly_those_the_kit_shares_with_the_grader():
    everything = secret_lines(idioms=True)
    shared = set()
    for path in (REPO / "pruning_kit").rglob("*.py"):
        shared.update(leaks(path.read_text(), everything))
    assert shared == COMMON_IDIOMS


def test_the_wheel_holds_the_kit_and_nothing_of_the_grader(wheel, secrets):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert any(n == "pruning_kit/prune.py" for n in names)
        assert any(n == "pruning_kit/course/testing.py" for n in names)
        assert not [n for n in names if not n.startswith(("pruning_kit/", "pruning_kit-"))]
        assert not [n for n in names if "grader" in n or "solutions" in n or "/checks/" in n]
        for name in names:
            text = archive.read(name).decode("utf-8", errors="replace")
            assert not leaks(text, secrets), (name, leaks(text, secrets)[:3])


def test_the_installed_wheel_cannot_import_the_grader_or_read_a_reference(wheel, tmp_path,
                                                                           secrets):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    # A student's environment: the kit from the wheel and the third-party packages, without
    # the instructor's editable installs (their .pth files are not processed).
    site = sysconfig.get_paths()["purelib"]
    probe = (
        "import sys, importlib.util, pathlib, json\n"
        f"sys.path[:0] = [{str(target)!r}, {site!r}]\n"
        "import pruning_kit, pruning_kit.course.testing\n"
        "found = {name: importlib.util.find_spec(name) is not None for name in "
        "('pruning_grader', 'pruning_kit.course.checks')}\n"
        "files = [str(p) for p in pathlib.Path(pruning_kit.__file__).parent.rglob('*') "
        "if p.is_file()]\n"
        "print(json.dumps({'kit': pruning_kit.__file__, 'found': found, 'files': files}))\n")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True,
                          text=True, check=True)
    report = json.loads(done.stdout)
    assert report["kit"].startswith(str(target))
    assert report["found"] == {"pruning_grader": False, "pruning_kit.course.checks": False}
    for name in report["files"]:
        text = Path(name).read_bytes().decode("utf-8", errors="replace")
        assert not leaks(text, secrets), (name, leaks(text, secrets)[:3])


def test_the_student_kit_is_the_wheel_the_lessons_and_the_released_assignments(tmp_path,
                                                                               secrets):
    folder = build_student_kit(REPO, tmp_path / "kit")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "README.md" in files
    assert any(f.startswith("wheels/pruning_kit-") and f.endswith(".whl") for f in files)
    assert {f for f in files if f.startswith("assignments/")} == {
        "assignments/pruning/pruning.ipynb", "assignments/binarized/binarized.ipynb"}
    assert len([f for f in files if f.startswith("lessons/")]) == len(
        list((REPO / "lessons").glob("*.ipynb")))
    assert not [f for f in files if f.split("/")[0] in (
        "solutions", "grader", "instructor", "tests", "hub")]
    for name in files:
        data = (folder / name).read_bytes()
        if name.endswith(".whl"):
            with zipfile.ZipFile(folder / name) as archive:
                text = "\n".join(archive.read(n).decode("utf-8", errors="replace")
                                 for n in archive.namelist())
        elif name.endswith(".ipynb"):
            text = "\n".join("".join(c["source"]) for c in json.loads(data)["cells"])
        else:
            text = data.decode("utf-8", errors="replace")
        assert not leaks(text, secrets), (name, leaks(text, secrets)[:3])
    assert (tmp_path / "kit.zip").is_file()


def test_the_students_repository_for_nbgitpuller_holds_only_what_students_get(tmp_path, secrets):
    from pruning_kit.course.student_kit import publish_student_repository

    path, branch = publish_student_repository(REPO, tmp_path / "student-course")
    tracked = subprocess.run(["git", "-C", str(path), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert branch == "main" and "README.md" in tracked
    assert {f.split("/")[0] for f in tracked} == {"README.md", "nbgrader_config.py", "lessons",
                                                  "assignments"}
    for name in tracked:
        data = (path / name).read_bytes()
        text = ("\n".join("".join(c["source"]) for c in json.loads(data)["cells"])
                if name.endswith(".ipynb") else data.decode("utf-8", errors="replace"))
        assert not leaks(text, secrets), (name, leaks(text, secrets)[:3])
    # publishing again with nothing changed makes no new commit
    count = lambda: subprocess.run(["git", "-C", str(path), "rev-list", "--count", "HEAD"],  # noqa: E731
                                   capture_output=True, text=True, check=True).stdout.strip()
    before = count()
    publish_student_repository(REPO, path)
    assert count() == before == "1"
