"""The ``warmup`` test course: moved to ``tests/support/warmup.py`` (kept for the hub tests)."""

from support.warmup import (CORRECT, CRASHES, ONE_WRONG, POINTS, TEST_CONFIG,  # noqa: F401
                            copy_course, make_course, source_notebook, submission, submit)
from support.warmup import NAME as ASSIGNMENT  # noqa: F401
