"""nbgrader settings of every student's server on a real course hub (TLJH or Z2JH).

Installed at /srv/course-hub/config/student/ and put on JUPYTER_CONFIG_PATH of students'
servers by hub/real/course_roles.py (see hub/README.md).
"""
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "pruning-course"
c.Exchange.root = "/srv/nbgrader/exchange"
# The hub name, not the Unix user: TLJH's Unix users are jupyter-<name>, Z2JH's are all jovyan.
c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
