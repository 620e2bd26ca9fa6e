"""The two commands: `make lab` opens JupyterLab with the course's extensions, `.ci/run` runs
the README's test command.

`make lab` is the students' view: of nbgrader's tools only the Assignment List and
Validate (the config in jupyter_config/student switches off Create Assignment, Formgrader
and Course List, in the browser and on the server); `make lab-instructor` has them all.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local_server import stop
from pruning_kit.course.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NBGRADER_STUDENT_TOOLS = ("@jupyter/nbgrader:assignment-list",
                          "@jupyter/nbgrader:validate-assignment")
NBGRADER_INSTRUCTOR_TOOLS = ("@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                             "@jupyter/nbgrader:course-list")
LAB_START_TIMEOUT_S = 90


def _run(*args, env=None):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1",
               **(env or {}))
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


def _make_plan(target: str) -> str:
    """What `make TARGET` would run (the virtualenv taken as installed)."""
    return _run("make", "-n", "-o", ".venv/.installed", target)


def _view_environment(target: str) -> dict:
    """The Jupyter variables `make TARGET` sets on its `jupyter lab` line (NAME="value")."""
    line = next(line for line in _make_plan(target).splitlines() if "jupyter lab" in line)
    return dict(re.findall(r'\b(JUPYTER\w*)="([^"]*)"', line))


def _disabled_extensions(listing: str) -> set[str]:
    """The plugins `jupyter labextension list` reports under "Disabled extensions"."""
    if "Disabled extensions:" not in listing:
        return set()
    section = listing.split("Disabled extensions:", 1)[1]
    return set(re.findall(r"^\s+(@?[\w./-]+:[\w-]+)", section, flags=re.M))


def test_lab_extensions_enabled():
    listing = _run(str(BIN / "jupyter"), "labextension", "list")
    for extension in ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager",
                      "jupyter-matplotlib"):
        assert re.search(re.escape(extension) + r" v\S+ enabled OK", listing), listing


def test_nbgrader_server_extensions_enabled():
    listing = _run(str(BIN / "jupyter"), "server", "extension", "list")
    assert "nbgrader.server_extensions.formgrader enabled" in listing, listing


def test_make_lab_opens_jupyterlab_on_the_course():
    plan = _run("make", "-n", "lab")
    assert "jupyter lab" in plan and "lessons/" in plan


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert re.search(r"^make test$", ci, re.M)


def test_make_lab_is_the_students_view_and_lab_instructor_the_instructors():
    student, instructor = _view_environment("lab"), _view_environment("lab-instructor")
    config = Path(student.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)[0])
    assert config == ROOT / "jupyter_config" / "student", student
    assert (config / "labconfig" / "page_config.json").is_file()
    assert not instructor, f"make lab-instructor must run plain JupyterLab, sets {instructor}"
    assert "jupyter lab" in _make_plan("lab-instructor")


def test_student_view_hides_the_instructor_tools():
    student = _disabled_extensions(_run(str(BIN / "jupyter"), "labextension", "list",
                                        env=_view_environment("lab")))
    assert set(NBGRADER_INSTRUCTOR_TOOLS) <= student, student
    assert not set(NBGRADER_STUDENT_TOOLS) & student, student
    # (the instructor's view is JupyterLab's default: test_lab_extensions_enabled lists it)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, ConnectionError):      # not listening yet
        return 0, ""


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["lab", "lab-instructor"])
def test_the_running_server_serves_each_view(target, tmp_path):
    # What the browser really gets: the page config of /lab, and nbgrader's instructor pages.
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               **_view_environment(target))
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(tmp_path / name.lower())
    port = free_port()
    command = [str(BIN / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               "--IdentityProvider.token=", f"--ServerApp.root_dir={tmp_path}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while _get(f"http://127.0.0.1:{port}/api")[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        status, page = _get(f"http://127.0.0.1:{port}/lab")
        assert status == 200
        data = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                         page, flags=re.S)
        disabled = set(json.loads(data.group(1)).get("disabledExtensions", []))
        formgrader = _get(f"http://127.0.0.1:{port}/formgrader")[0]
        courses = _get(f"http://127.0.0.1:{port}/formgraders")[0]
        validate_ok = "@jupyter/nbgrader:validate-assignment" not in disabled
    finally:
        stop(server, timeout=15)
    assert validate_ok and not set(NBGRADER_STUDENT_TOOLS) & disabled
    if target == "lab":
        assert set(NBGRADER_INSTRUCTOR_TOOLS) <= disabled, disabled
        assert formgrader == 404 and courses == 404, (formgrader, courses)
    else:
        assert not {p for p in disabled if p.startswith("@jupyter/nbgrader")}, disabled
        assert formgrader != 404 and courses != 404, (formgrader, courses)
