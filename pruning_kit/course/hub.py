"""A JupyterHub for a class, from a roster: ``make hub`` (``python -m pruning_kit.course hub``).

The local demo, **for trying the course out on one machine only**:

- JupyterHub on ``127.0.0.1:HUB_PORT`` with the pure-Python
  ``configurable-http-proxy`` from PyPI (installed with the course);
- everyone on the roster may log in; students with one shared password, the
  instructors (the hub's admins) with a second, longer one
  (``SharedPasswordAuthenticator``). Anyone who knows the student password
  can log in as any student;
- every single-user server is a local process of the same Unix user
  (``SimpleLocalProcessSpawner``): students are not isolated from each other.

A real class uses a real authenticator and one container or Unix account per
student: see ``hub/README.md`` (The Littlest JupyterHub, Zero to JupyterHub).

What carries over to a real class is the course setup around the hub:

- nbgrader's exchange lives in a course-owned folder (``<state>/exchange``);
- the instructor's server starts in the course root with the formgrader, the
  students' servers in their own homes with the Assignment List (the
  formgrader and course list are switched off for them);
- a student is recorded under their **hub name** (``JUPYTERHUB_USER``), not
  the Unix user: nbgrader reads the hub name only when the Unix user is
  ``jovyan``, and under one Unix user every student would otherwise be the
  same person;
- the formgrader's iframe is allowed by the single-user servers
  (``frame-ancestors 'self'``; JupyterHub 4.1 and later forbid every frame).

The roster is a CSV file with a header ``username,role`` (``instructor`` or
``student``) and optional ``first_name,last_name,email``; LMS exports convert
to it easily. See ``hub/roster.example.csv``.

Example:
    >>> import io
    >>> roster = read_roster(io.StringIO("username,role\\nteacher,instructor\\nada,student\\n"))
    >>> [(m.username, m.role) for m in roster]
    [('teacher', 'instructor'), ('ada', 'student')]
"""

import csv
import io
import json
import os
import re
import secrets
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .loopback import free_port

ROLES = ("instructor", "student")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SETTINGS_ENV = "PRUNING_KIT_HUB_SETTINGS"
FRAME_POLICY = "frame-ancestors 'self'"
STUDENT_OFF_SERVER = ("nbgrader.server_extensions.formgrader",
                      "nbgrader.server_extensions.course_list")
STUDENT_OFF_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list")


@dataclass(frozen=True)
class Member:
    """One line of the roster."""

    username: str
    role: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


def read_roster(source):
    """Read a roster CSV (a path or an open text file) into a list of :class:`Member`.

    Usernames are the hub names: lower case letters, digits, ``.``, ``_`` and
    ``-`` (nbgrader's exchange splits on ``+``). At least one instructor.

    Example:
        >>> read_roster(io.StringIO("username,role\\nAda Lovelace,student\\n"))
        Traceback (most recent call last):
        ...
        ValueError: roster line 2: username must be lower case letters, digits, '.', '_' or '-' (a hub name), got 'Ada Lovelace'
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"roster must be a CSV file (username,role,...), got {str(path)!r}")
        text = path.read_text(encoding="utf-8")
    else:
        text = source.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "username" not in rows[0] or "role" not in rows[0]:
        raise ValueError("roster must have a header line 'username,role' and one line per person")
    members, seen = [], set()
    for line, row in enumerate(rows, start=2):
        name = (row.get("username") or "").strip()
        role = (row.get("role") or "").strip().lower()
        if not USERNAME.match(name):
            raise ValueError(f"roster line {line}: username must be lower case letters, digits, "
                             f"'.', '_' or '-' (a hub name), got {name!r}")
        if role not in ROLES:
            raise ValueError(f"roster line {line}: role must be 'instructor' or 'student', "
                             f"got {role!r}")
        if name in seen:
            raise ValueError(f"roster line {line}: {name!r} is listed twice")
        seen.add(name)
        members.append(Member(name, role, *((row.get(k) or "").strip()
                                            for k in ("first_name", "last_name", "email"))))
    if not any(m.role == "instructor" for m in members):
        raise ValueError("roster must list at least one instructor (role 'instructor')")
    return members


# ---------------------------------------------------------------------------
# The configuration each role's single-user server reads

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
            lines.append(f"c.CourseDirectory.db_url = {db_url!r}")
    return "\n".join(lines) + "\n"


def _server_config(role):
    server = {"tornado_settings": {"headers": {"Content-Security-Policy": FRAME_POLICY}}}
    if role == "student":
        server["jpserver_extensions"] = {name: False for name in STUDENT_OFF_SERVER}
    return {"ServerApp": server}


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


# ---------------------------------------------------------------------------
# Preparing a hub's state folder, configuring JupyterHub from it

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
    from .gradebook import configured

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
    settings = {
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

    c.Spawner.pre_spawn_hook = pre_spawn_hook

    if settings.get("api_token"):
        c.JupyterHub.services = [{"name": "course-admin", "api_token": settings["api_token"]}]
        c.JupyterHub.load_roles = [{
            "name": "course-admin", "services": ["course-admin"],
            "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
        }]


def hub_command(settings_path, config_file):
    """``(argv, env)`` that start JupyterHub with ``config_file`` on the prepared state."""
    settings = load_settings(settings_path)
    python_bin = Path(settings["python"]).parent
    env = {**os.environ, SETTINGS_ENV: str(Path(settings_path).resolve()),
           "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    return [str(python_bin / "jupyterhub"), "-f", str(config_file)], env


def register_students(course_dir, members, db_url=None):
    """Add the roster's students (with their names) to the course gradebook for the formgrader."""
    from .gradebook import configured, gradebook_url, open_gradebook

    url = gradebook_url(course_dir, db_url)
    course_id = configured(course_dir, "course_id") or "default_course"
    with open_gradebook(url, course_id) as gb:
        for m in members:
            if m.role == "student":
                gb.update_or_create_student(m.username, first_name=m.first_name or None,
                                            last_name=m.last_name or None,
                                            email=m.email or None)


def serve(course_dir=".", roster="hub/roster.example.csv", *, port=8000, state_dir=None,
          db_url=None, config_file=None):
    """Prepare the state and replace this process with JupyterHub (``make hub``).

    Prints the address and the two passwords first.
    """
    course_dir = Path(course_dir).resolve()
    state_dir = Path(state_dir) if state_dir else course_dir / ".hub"
    config_file = Path(config_file) if config_file else course_dir / "hub" / "jupyterhub_config.py"
    if not config_file.is_file():
        raise ValueError(f"no JupyterHub config at {str(config_file)!r} (the course's "
                         f"hub/jupyterhub_config.py)")
    settings = prepare_hub(state_dir, course_dir, roster, port=port, db_url=db_url)
    register_students(course_dir, [Member(**m) for m in settings["members"]], db_url)
    passwords = json.loads(Path(settings["passwords_file"]).read_text())
    names = [m["username"] for m in settings["members"]]
    print(f"Course hub for {settings['course_id']!r} at http://127.0.0.1:{port}/ "
          f"({len(names)} people on the roster)\n"
          f"  FOR TRYING IT OUT ONLY: shared passwords, every server runs as this Unix user.\n"
          f"  students log in with:    {passwords['student_password']}\n"
          f"  instructors log in with: {passwords['instructor_password']}\n"
          f"  (in {settings['passwords_file']}; exchange: {settings['exchange']})", flush=True)
    argv, env = hub_command(state_dir / "settings.json", config_file)
    os.chdir(state_dir)
    os.execve(argv[0], argv, env)
