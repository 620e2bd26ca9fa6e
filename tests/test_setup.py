"""The two commands: `make lab` opens JupyterLab with the course's extensions, `.ci/run` runs
the README's test command.

`make lab` is the students' view (tools/lab.py student): their working copy work/, and of
nbgrader's tools only Validate (jupyter_config/student switches off Create Assignment,
Formgrader, Course List and the Assignment List, which needs a class's exchange, in the
browser and on the server); `make lab-instructor` (tools/lab.py instructor) has them all.
Each view keeps its own JupyterLab settings and workspace.
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

from support.local_server import stop
from pruning_kit.course.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tools"))

import lab  # noqa: E402  (tools/ is put on the path just above)

NBGRADER_STUDENT_TOOLS = ("@jupyter/nbgrader:validate-assignment",)
NBGRADER_INSTRUCTOR_TOOLS = ("@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                             "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:assignment-list")
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
    """The Jupyter variables of the view `make TARGET` starts (tools/lab.py VIEW)."""
    view = re.search(r"tools/lab\.py (\w+)", _make_plan(target)).group(1)
    return {k: v for k, v in lab.environment(view, base={}).items() if k.startswith("JUPYTER")}


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


def test_make_lab_opens_jupyterlab_on_the_students_working_copy():
    assert "tools/lab.py student" in _run("make", "-n", "lab")
    argv, _ = lab.command("student")
    assert argv[1] == "lab" and f"--ServerApp.root_dir={ROOT / 'work'}" in argv
    assert str(ROOT / "work" / "lessons" / "00_compression_overview.ipynb") in argv
    argv, _ = lab.command("instructor")
    assert f"--ServerApp.root_dir={ROOT}" in argv


def test_the_launch_tools_examples_run():
    import doctest

    import demo

    for module in (lab, demo):
        assert doctest.testmod(module).failed == 0, module.__name__
    assert "tools/demo.py lessons/demo_live.ipynb --port 8866" in _run("make", "-n", "demo")


def test_the_views_keep_their_own_settings_and_workspaces():
    student, instructor = (lab.environment(view, base={}) for view in lab.VIEWS)
    for name in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        assert student[name] != instructor[name]
        assert Path(student[name]).is_relative_to(ROOT / ".lab" / "student")
        assert Path(instructor[name]).is_relative_to(ROOT / ".lab" / "instructor")
    for path in (".lab/student/settings", "work/lessons/01.ipynb"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode
        assert ignored == 0, f"{path} must be git-ignored (the views' state, the working copy)"


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
    config = Path(instructor["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0])
    assert config == ROOT / "jupyter_config" / "instructor", instructor
    assert not (config / "labconfig").exists(), "the instructor's view hides none of nbgrader"


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
    view = {"lab": "student", "lab-instructor": "instructor"}[target]
    port = free_port()
    command, env = lab.command(view, port=port, open_browser=False, token="")
    command = [a for a in command if not a.startswith("--ServerApp.root_dir=")]
    command.append(f"--ServerApp.root_dir={tmp_path}")
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(tmp_path / name.lower())
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
        assignments = _get(f"http://127.0.0.1:{port}/assignments?course_id=x")[0]
        validate_ok = "@jupyter/nbgrader:validate-assignment" not in disabled
    finally:
        stop(server, timeout=15)
    assert validate_ok and not set(NBGRADER_STUDENT_TOOLS) & disabled
    if target == "lab":
        assert set(NBGRADER_INSTRUCTOR_TOOLS) <= disabled, disabled
        assert (formgrader, courses, assignments) == (404, 404, 404)
        assert "Unwritable directory" not in log.read_text(errors="replace")
    else:
        assert not {p for p in disabled if p.startswith("@jupyter/nbgrader")}, disabled
        assert formgrader != 404 and courses != 404, (formgrader, courses)
