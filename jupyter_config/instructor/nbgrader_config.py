"""nbgrader settings of `make lab-instructor` (tools/lab.py puts this folder on JUPYTER_CONFIG_PATH).

The exchange is the course's own `.hub/exchange`, the folder `make hub` serves to students:
assignments released from this formgrader reach the students of the local hub, and the
formgrader finds an exchange in a fresh clone (tools/lab.py makes the folder). A class on a
real hub sets its own exchange (hub/real/instructor/nbgrader_config.py).
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

COURSE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
c.Exchange.root = os.path.join(COURSE_ROOT, ".hub", "exchange")
