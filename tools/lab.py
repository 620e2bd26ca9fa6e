"""The course's two JupyterLab views: ``make lab`` (students) and ``make lab-instructor``.

``student`` (``make lab``): JupyterLab in the student's working copy ``work/``
(``tools/working_copy.py``: made on first run, course updates merged in at each
start), so running, saving and validating never touch the repository's tracked
files. Of nbgrader's tools only Validate: the Assignment List needs nbgrader's
exchange, which a class on a hub has (``make hub``, ``hub/README.md``) and a
student working from the repository does not (``jupyter_config/student``).

``instructor`` (``make lab-instructor``): JupyterLab in the course root with all
of nbgrader's tools. Their exchange is ``.hub/exchange`` (the one ``make hub``
serves to students; ``jupyter_config/instructor``), made here on first use, so
the formgrader can release and collect. The formgrader creates the gradebook
``gradebook.db`` in the course root the first time it opens; the course state
(``gradebook.db``, ``submitted/``, ``autograded/``, ``feedback/``, ``.hub/``) is
git-ignored.

Each view keeps its own JupyterLab settings and workspace (open tabs, layout) in
``.lab/<view>/``, so one view never reopens the other's tabs.

Usage:
    .venv/bin/python tools/lab.py student          # make lab
    .venv/bin/python tools/lab.py instructor       # make lab-instructor
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import working_copy  # noqa: E402  (the tools folder is put on the path just above)

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("student", "instructor")
FIRST_LESSON = Path("lessons") / "00_compression_overview.ipynb"
EXCHANGE = Path(".hub") / "exchange"       # hub/jupyterhub_config.py's, too (make hub)
COURSE_STATE = ("gradebook.db", "submitted/", "autograded/", "feedback/", ".hub/")
# Offline: no news fetching and no popup asking about it.
QUIET_NEWS = ("@jupyterlab/apputils-extension", "notification.jupyterlab-settings",
              {"fetchNews": "false", "checkForUpdates": False})


def _check_view(view: str) -> str:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return view


def state_dir(view: str, root: Path = ROOT) -> Path:
    """Where ``view`` keeps its JupyterLab settings and workspaces: ``root/.lab/<view>``."""
    return Path(root).resolve() / ".lab" / _check_view(view)


def environment(view: str, root: Path = ROOT, base=None) -> dict:
    """The environment ``view``'s server runs with (``base``: default ``os.environ``).

    Example:
        >>> env = environment("student", Path("/course"), base={"PATH": "/usr/bin"})
        >>> env["JUPYTER_CONFIG_PATH"], env["JUPYTERLAB_WORKSPACES_DIR"]
        ('/course/jupyter_config/student', '/course/.lab/student/workspaces')
    """
    root = Path(root).resolve()
    base = dict(os.environ if base is None else base)
    config = str(root / "jupyter_config" / _check_view(view))
    if base.get("JUPYTER_CONFIG_PATH"):
        config += os.pathsep + base["JUPYTER_CONFIG_PATH"]
    state = state_dir(view, root)
    bin_dir = str(Path(sys.executable).parent)
    return {**base, "JUPYTER_CONFIG_PATH": config,
            "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
            # nbgrader runs alembic and jupyter from its own environment
            "PATH": bin_dir + os.pathsep + base.get("PATH", "")}


def served_folder(view: str, root: Path = ROOT) -> Path:
    """The folder ``view``'s JupyterLab shows: the working copy, or the course root."""
    root = Path(root).resolve()
    return root / working_copy.FOLDER if _check_view(view) == "student" else root


def prepare(view: str, root: Path = ROOT, *, log=print) -> Path:
    """Make what ``view`` needs before its server starts; the folder it serves.

    student: the working copy, made or brought up to date; instructor: the exchange.
    Both: the settings folder, with news fetching off (it fails offline).
    """
    root = Path(root).resolve()
    settings = state_dir(view, root) / "settings" / QUIET_NEWS[0] / QUIET_NEWS[1]
    if not settings.exists():
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(QUIET_NEWS[2]) + "\n")
    if view == "student":
        return working_copy.ensure(root, log=log)
    exchange = root / EXCHANGE
    if not exchange.is_dir():
        exchange.mkdir(parents=True)
        os.chmod(exchange, 0o1777)      # every student's server writes here, as nbgrader expects
    log(f"course state (git-ignored) in {root}: {', '.join(COURSE_STATE)}; the formgrader "
        f"creates gradebook.db when it first opens; nbgrader's exchange is {exchange}")
    return root


def command(view: str, root: Path = ROOT, *, port: int | None = None, open_browser: bool = True,
            token: str | None = None, base_env=None) -> tuple[list[str], dict]:
    """``(argv, env)`` that start ``view``'s JupyterLab (run it with ``cwd=root``).

    Args:
        view: ``"student"`` or ``"instructor"``.
        root: the course folder.
        port: the port on 127.0.0.1 (None: JupyterLab's default, 8888 or the next free one).
        open_browser: open the first lesson in a browser.
        token: the server's token (None: JupyterLab makes one; "" for none, in tests).
        base_env: the environment to start from (default ``os.environ``).
    """
    root = Path(root).resolve()
    folder = served_folder(view, root)
    argv = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={folder}",
            "--ServerApp.ip=127.0.0.1"]
    if open_browser:
        argv.append(str(folder / FIRST_LESSON))
    else:
        argv.append("--no-browser")
    if port is not None:
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if os.geteuid() == 0:
        argv.append("--allow-root")
    return argv, environment(view, root, base_env)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("view", choices=VIEWS)
    parser.add_argument("--root", type=Path, default=ROOT, help="the course folder")
    args = parser.parse_args(argv)
    try:
        prepare(args.view, args.root)
    except working_copy.WorkingCopyError as error:
        print(error, file=sys.stderr)
        return 1
    command_line, env = command(args.view, args.root)
    os.chdir(args.root)
    os.execve(command_line[0], command_line, env)
    return 0        # not reached


if __name__ == "__main__":
    sys.exit(main())
