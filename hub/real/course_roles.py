"""JupyterHub snippet for a real course hub: instructors and students get their nbgrader config.

TLJH: copy to /opt/tljh/config/jupyterhub_config.d/course_roles.py. Z2JH: hub.extraConfig
(hub/z2jh/values.yaml carries a copy). The config folders come from hub/real/{instructor,student}
and live at /srv/course-hub/config/ on every single-user server.
"""

# The hub names of the instructors (the formgrader, the course root); everyone else is a student.
INSTRUCTORS = {"teacher"}
CONFIG_ROOT = "/srv/course-hub/config"


def course_roles(spawner):
    role = "instructor" if spawner.user.name in INSTRUCTORS else "student"
    spawner.environment = {**spawner.environment,
                           "JUPYTER_CONFIG_PATH": f"{CONFIG_ROOT}/{role}",
                           "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


c = get_config()  # noqa: F821
c.Spawner.pre_spawn_hook = course_roles
c.Spawner.default_url = "/lab"
