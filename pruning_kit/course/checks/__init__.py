"""The checks behind the nbgrader assignments' test cells, one module per assignment.

- :mod:`.core`: reading results and calling student code without trusting it
  (shared by every assignment);
- :mod:`.pruning`, :mod:`.binarized`: the ``check_*`` functions and reference
  implementations of each assignment.

Example:
    >>> from pruning_kit.course.checks import ASSIGNMENTS
    >>> ASSIGNMENTS["pruning"][0]
    'magnitude_mask'
"""

from . import binarized, pruning

ASSIGNMENTS = {"pruning": pruning.FUNCTIONS, "binarized": binarized.FUNCTIONS}
"""The functions students write, by assignment, in notebook order."""
