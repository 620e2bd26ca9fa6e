"""The two commands: `make lab` opens JupyterLab with the course's extensions, `.ci/run` runs
the README's test command."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1")
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


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
