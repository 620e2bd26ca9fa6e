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

The package keeps three ideas apart: the roster (``roster.py``: who, with which
role), the configuration the hub runs on (``config.py``: role configs, the state
folder and settings, JupyterHub's config object) and the process it runs
(``process.py``: ``make hub``).
"""

from .config import (FRAME_POLICY, SETTINGS_ENV, STUDENT_OFF_LAB, STUDENT_OFF_SERVER,
                     STUDENT_ON_SERVER, configure, load_settings, prepare_hub, pull_link,
                     write_role_config)
from .process import hub_command, serve
from .roster import ROLES, USERNAME, Member, read_roster, register_students

__all__ = ["Member", "read_roster", "register_students", "ROLES", "USERNAME",
           "write_role_config", "prepare_hub", "load_settings", "configure", "FRAME_POLICY",
           "SETTINGS_ENV", "STUDENT_OFF_LAB", "STUDENT_OFF_SERVER", "STUDENT_ON_SERVER",
           "pull_link", "hub_command", "serve"]
