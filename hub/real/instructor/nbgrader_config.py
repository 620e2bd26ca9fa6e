"""nbgrader settings of the instructors' servers on a real course hub (TLJH or Z2JH).

Installed at /srv/course-hub/config/instructor/ and put on JUPYTER_CONFIG_PATH of the
instructors' servers by hub/real/course_roles.py (see hub/README.md). The course root is the
instructor's clone of this repository (COURSE_ROOT, default ~/course); its own
nbgrader_config.py (solutions/, assignments/, the grading sandbox) applies too.
"""
import os

c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.expanduser(os.environ.get("COURSE_ROOT", "~/course"))
c.CourseDirectory.course_id = "pruning-course"
c.Exchange.root = "/srv/nbgrader/exchange"
# Students are named by the hub (JUPYTERHUB_USER), not by the Unix owner of their files.
c.ExchangeCollect.check_owner = False
# Several graders or workers: the gradebook in PostgreSQL (password in ~/.pgpass).
if os.environ.get("NBGRADER_DB_URL"):
    c.CourseDirectory.db_url = os.environ["NBGRADER_DB_URL"]
