"""``python -m pruning_kit.course release | check | grade ASSIGNMENT``: see :mod:`.autograde`."""

import sys

from .autograde import main

sys.exit(main())
