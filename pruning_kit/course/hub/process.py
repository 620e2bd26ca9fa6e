"""The course hub's process: ``make hub`` prepares the state and becomes JupyterHub.

:func:`hub_command` gives the command line and environment that start JupyterHub
on a prepared state folder (tests start it so, too); :func:`serve` prepares the
state from the roster, records the students in the gradebook, prints the address
and passwords, and replaces the current process with JupyterHub.
"""

import json
import os
from pathlib import Path

from .config import SETTINGS_ENV, load_settings, prepare_hub, pull_link
from .roster import Member, register_students


def hub_command(settings_path, config_file):
    """``(argv, env)`` that start JupyterHub with ``config_file`` on the prepared state."""
    settings = load_settings(settings_path)
    python_bin = Path(settings["python"]).parent
    env = {**os.environ, SETTINGS_ENV: str(Path(settings_path).resolve()),
           "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    return [str(python_bin / "jupyterhub"), "-f", str(config_file)], env


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
          f"  (in {settings['passwords_file']}; exchange: {settings['exchange']})\n"
          f"  students get their copy of the lessons (and later updates) from this link\n"
          f"  (it pulls {settings['student_repo']}: lessons and released assignments only):\n"
          f"  {pull_link(f'http://127.0.0.1:{port}', settings['student_repo'])}",
          flush=True)
    argv, env = hub_command(state_dir / "settings.json", config_file)
    os.chdir(state_dir)
    os.execve(argv[0], argv, env)
