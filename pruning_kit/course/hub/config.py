"""What the course hub runs on: the role configs its servers read, its state folder and settings,
and the JupyterHub configuration built from them.

- :func:`write_role_config`: one role's Jupyter config folder (``JUPYTER_CONFIG_DIR`` of
  its servers): nbgrader's course id and exchange, the student id from the hub name,
  the formgrader only for instructors, the iframe header;
- :func:`prepare_hub`: the state folder (exchange, homes, role configs, passwords) and
  ``settings.json``, which :func:`load_settings` reads back;
- :func:`configure`: fills JupyterHub's config object from those settings
  (``hub/jupyterhub_config.py`` calls it).
"""

import json
import os
import secrets
import sys
from dataclasses import asdict
from pathlib import Path

from ..gradebook import check_db_url
from ..loopback import free_port
from .roster import ROLES, Member, read_roster

SETTINGS_ENV = "PRUNING_KIT_HUB_SETTINGS"
FRAME_POLICY = "frame-ancestors 'self'"
STUDENT_OFF_SERVER = ("nbgrader.server_extensions.formgrader",
                      "nbgrader.server_extensions.course_list")
STUDENT_OFF_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list")
# Students' copies of the lessons come from nbgitpuller links (see pull_link)
STUDENT_ON_SERVER = ("nbgitpuller",)
FIRST_LESSON = "lessons/00_compression_overview.ipynb"


def _nbgrader_config(role, course_dir, course_id, exchange, db_url):
    lines = ['"""nbgrader settings of every %s server on the course hub (written by make hub)."""'
             % role, "import os", "", "c = get_config()  # noqa: F821",
             f"c.CourseDirectory.course_id = {course_id!r}",
             f"c.Exchange.root = {str(exchange)!r}"]
    if role == "student":
        lines += ["# The hub name, not the Unix user (nbgrader reads JUPYTERHUB_USER only for",
                  "# 'jovyan'): every student runs as the same Unix user in the local demo.",
                  'c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]']
    else:
        lines += [f"c.CourseDirectory.root = {str(course_dir)!r}",
                  "# Submissions in the exchange belong to the hub's Unix user, not to a",
                  "# Unix account per student: don't treat that as cheating.",
                  "c.ExchangeCollect.check_owner = False"]
        if db_url:
            lines.append(f"c.CourseDirectory.db_url = {check_db_url(db_url)!r}")
    return "\n".join(lines) + "\n"


def _server_config(role):
    server = {"tornado_settings": {"headers": {"Content-Security-Policy": FRAME_POLICY}}}
    if role == "student":
        server["jpserver_extensions"] = {**{name: False for name in STUDENT_OFF_SERVER},
                                         **{name: True for name in STUDENT_ON_SERVER}}
    return {"ServerApp": server}


def pull_link(hub_url, repo, *, branch="main", folder="course", open_path=FIRST_LESSON):
    """The nbgitpuller link that gives a student their copy of the course and its updates.

    Opening it (logged in to the hub) clones ``repo`` into ``~/<folder>`` the first time;
    later it merges the course's new commits into that folder, keeping the student's own
    changes (nbgitpuller's merge: local edits win where both changed a line), then opens
    ``open_path`` inside it in JupyterLab.

    Example:
        >>> pull_link("https://hub.example.edu", "https://github.com/example/pruning-course")
        'https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fexample%2Fpruning-course&branch=main&targetpath=course&urlpath=lab%2Ftree%2Fcourse%2Flessons%2F00_compression_overview.ipynb'
    """
    from urllib.parse import urlencode

    query = urlencode({"repo": str(repo), "branch": branch, "targetpath": folder,
                       "urlpath": f"lab/tree/{folder}/{open_path}"})
    return f"{hub_url.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def write_role_config(folder, role, course_dir, course_id, exchange, db_url=None):
    """Write one role's Jupyter config folder (``JUPYTER_CONFIG_DIR`` of its servers).

    Args:
        folder: the config folder to fill.
        role: ``"instructor"`` or ``"student"``.
        course_dir: the course root (the instructor's server starts there).
        course_id: nbgrader's course id.
        exchange: the exchange folder.
        db_url: the gradebook URL for the instructor (None: the course's own).

    Returns:
        the folder.
    """
    folder = Path(folder)
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        _nbgrader_config(role, course_dir, course_id, exchange, db_url))
    (folder / "jupyter_server_config.json").write_text(
        json.dumps(_server_config(role), indent=2) + "\n")
    disabled = {name: True for name in STUDENT_OFF_LAB} if role == "student" else {}
    (folder / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled}, indent=2) + "\n")
    return folder


def prepare_hub(state_dir, course_dir, roster, *, port=8000, course_id=None, db_url=None,
                api_token=None):
    """Create the hub's state folder (exchange, homes, role configs, passwords, settings).

    Args:
        state_dir: the folder for the hub's state (``.hub`` for ``make hub``).
        course_dir: the course root (with ``nbgrader_config.py``).
        roster: a roster CSV path, or a list of :class:`Member`.
        port: the port the hub listens on, on 127.0.0.1.
        course_id: nbgrader's course id (default: the course's
            ``c.CourseDirectory.course_id``, else the folder's name).
        db_url: the gradebook URL the instructor's formgrader uses (None: the course's own).
        api_token: a token for a ``course-admin`` service that may manage users and
            servers over the REST API (tests and scripts); None for none.

    Returns:
        the settings dict, also written to ``<state_dir>/settings.json``.
    """
    from ..gradebook import configured

    state_dir = Path(state_dir).resolve()
    course_dir = Path(course_dir).resolve()
    if not (course_dir / "nbgrader_config.py").is_file():
        raise ValueError(f"course_dir must be a course root with an nbgrader_config.py, "
                         f"got {str(course_dir)!r}")
    members = roster if isinstance(roster, list) else read_roster(roster)
    course_id = course_id or configured(course_dir, "course_id") or course_dir.name
    exchange = state_dir / "exchange"
    for folder in (state_dir, exchange, state_dir / "homes"):
        folder.mkdir(parents=True, exist_ok=True)
    # Everyone's server writes here (in the demo, one Unix user; on a real server,
    # one per student): world-writable with the sticky bit, as nbgrader expects.
    os.chmod(exchange, 0o1777)
    os.chmod(state_dir / "homes", 0o755)
    for role in ROLES:
        write_role_config(state_dir / "config" / role, role, course_dir, course_id, exchange,
                          db_url)
    passwords_file = state_dir / "passwords.json"
    if not passwords_file.exists():
        passwords_file.touch(mode=0o600)
        passwords_file.write_text(json.dumps({
            "student_password": os.environ.get("HUB_PASSWORD") or secrets.token_urlsafe(9),
            "instructor_password": (os.environ.get("HUB_ADMIN_PASSWORD")
                                    or secrets.token_urlsafe(32)),
        }, indent=2) + "\n")
    # what nbgitpuller links pull: the lessons and released assignments, never this repository
    from ..student_kit import publish_student_repository

    student_repo, _ = publish_student_repository(course_dir, state_dir / "student-course")
    settings = {
        "student_repo": str(student_repo),
        "course_dir": str(course_dir), "course_id": course_id, "state_dir": str(state_dir),
        "exchange": str(exchange), "port": int(port), "hub_port": free_port(),
        "proxy_api_port": free_port(), "passwords_file": str(passwords_file),
        "db_url": db_url, "api_token": api_token, "python": sys.executable,
        "members": [asdict(m) for m in members],
    }
    path = state_dir / "settings.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def student_server_command(cmd, settings, home, log=None):
    """A student's server command, inside the grading sandbox's bubblewrap (network kept).

    Every server of the trial hub runs as one Unix user, the one that owns the course
    repository; without a sandbox a student's code could read ``solutions/`` and ``grader/``.
    In it, the course root and the grader package are empty folders, and only the Python
    installation, the kit, the student's home, the exchange, the students' Jupyter
    configuration and the students' repository are there. Where bubblewrap can't start, the
    server runs as before and the log says so.
    """
    from traitlets.config import Config

    from ..sandbox import Sandbox

    config = Config()
    config.CourseDirectory.root = settings["course_dir"]
    sandbox = Sandbox(config=config)
    problem = sandbox.problem()
    if problem is not None:
        if log is not None:
            log.warning("student servers run WITHOUT a sandbox: %s", problem.splitlines()[0])
        return cmd
    state = Path(settings["state_dir"])
    return sandbox.server_arguments(
        cmd, home, writable=[settings["exchange"]],
        readable=[state / "config" / "student", settings.get("student_repo") or state])


def load_settings(path=None):
    """The settings :func:`prepare_hub` wrote (``path`` or ``$PRUNING_KIT_HUB_SETTINGS``)."""
    path = Path(path or os.environ.get(SETTINGS_ENV, ".hub/settings.json"))
    if not path.is_file():
        raise ValueError(f"no hub settings at {str(path)!r}: start the hub with `make hub` "
                         f"(python -m pruning_kit.course hub --roster ROSTER)")
    return json.loads(path.read_text())


def configure(c, settings):
    """Fill a JupyterHub config object ``c`` for the local demo hub from ``settings``.

    ``hub/jupyterhub_config.py`` calls this; see the module docstring for what
    it sets up.
    """
    state = Path(settings["state_dir"])
    python_bin = Path(settings["python"]).parent
    members = [Member(**m) for m in settings["members"]]
    instructors = {m.username for m in members if m.role == "instructor"}
    passwords = json.loads(Path(settings["passwords_file"]).read_text())

    c.JupyterHub.bind_url = f"http://127.0.0.1:{settings['port']}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings['hub_port']}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
    c.ConfigurableHTTPProxy.command = [str(python_bin / "configurable-http-proxy")]
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

    # For trying it out only: one shared password for students, one for instructors.
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = passwords["student_password"]
    c.SharedPasswordAuthenticator.admin_password = passwords["instructor_password"]
    c.Authenticator.admin_users = instructors
    c.Authenticator.allowed_users = {m.username for m in members}

    # For trying it out only: every server a local process of this Unix user.
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
    c.Spawner.cmd = [str(python_bin / "jupyterhub-singleuser")]
    c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    c.Spawner.environment = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                             "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def pre_spawn_hook(spawner):
        role = "instructor" if spawner.user.name in instructors else "student"
        home = Path(spawner.home_dir)
        settings_dir = home / ".jupyter" / "lab" / "user-settings"
        news = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        if not news.exists():  # offline: no news fetching, no popup asking about it
            news.parent.mkdir(parents=True, exist_ok=True)
            news.write_text('{"fetchNews": "false", "checkForUpdates": false}\n')
        spawner.environment = {
            **spawner.environment,
            "JUPYTER_CONFIG_DIR": str(state / "config" / role),
            "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / ".jupyter" / "lab" / "workspaces"),
        }
        if role == "instructor":
            spawner.notebook_dir = settings["course_dir"]
        else:
            spawner.cmd = student_server_command(list(spawner.cmd), settings, home, spawner.log)

    c.Spawner.pre_spawn_hook = pre_spawn_hook

    if settings.get("api_token"):
        c.JupyterHub.services = [{"name": "course-admin", "api_token": settings["api_token"]}]
        c.JupyterHub.load_roles = [{
            "name": "course-admin", "services": ["course-admin"],
            "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
        }]
