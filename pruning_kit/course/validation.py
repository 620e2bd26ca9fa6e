"""Validate that says, for each failing test, which function and what to fix, in one line.

JupyterLab's Validate button runs nbgrader's validator in the student's own
kernel and lists every failing cell with its source and its error. A visible
test cell's error is already one line (:class:`~pruning_kit.course.testing.CheckFailed`
renders itself without a traceback); :class:`ShortVerdicts`, added after the
validator's Execute step, also replaces each failing test cell's source by a
label (``magnitude_mask — visible tests``) and cuts its message to one short
line, so the dialog reads as a list: one test, one sentence. Nothing is written
back to the notebook: the validator works on a copy in memory, and the full
message stays under the cell when the student runs it.

nbgrader's ``Validator`` does not take its steps from the configuration, so
``nbgrader_config.py`` of the course (and of the student kit) calls
:func:`use_short_verdicts`, which makes them the validator's default steps in
the process that reads the configuration (JupyterLab's Validate handler, or
``nbgrader validate``).

Example:
    >>> short_line("magnitude_mask(tensor of shape (2, 3), sparsity=0.5) returned a wrong "
    ...            "value: element (0, 0) is 1, expected 0 (2 of 6 differ)", width=60)
    'magnitude_mask(tensor of shape (2, 3), sparsity=0.5)…'
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute
from nbgrader.utils import compute_checksum
from traitlets import Integer

from .execute import is_test_cell, nbgrader_meta

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short_line(text, width=110):
    """``text`` on one line of at most ``width`` characters (cut at a word, with an ellipsis)."""
    line = " ".join(ANSI.sub("", str(text)).split())
    if len(line) <= width:
        return line
    cut = line[:width - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _failure(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            value = output.get("evalue") or ""
            if output.get("ename") not in ("CheckFailed", "AssertionError") and value:
                value = f"{output.get('ename')}: {value}"
            return value or output.get("ename") or "failed"
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return output.get("text", "")
    return None


def label(cell):
    """``magnitude_mask — visible tests`` for a test cell (its grade id otherwise)."""
    gid = nbgrader_meta(cell).get("grade_id") or "a test cell"
    match = re.match(r"^test_(.+)_(visible|hidden)$", gid)
    return f"{match.group(1)} — {match.group(2)} tests" if match else gid


class ShortVerdicts(Preprocessor):
    """After the validator's Execute: each failing test cell shown as its label and one line."""

    width = Integer(110, help="The longest message line Validate shows.").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if not is_test_cell(cell):
            return cell, resources
        failure = _failure(cell)
        if failure is None:
            return cell, resources
        meta = nbgrader_meta(cell)
        unchanged = meta.get("checksum") == compute_checksum(cell)
        cell.source = label(cell)
        message = f"✗ {short_line(failure, self.width)}"
        cell.outputs = [NotebookNode(output_type="error", ename="CheckFailed", evalue=message,
                                     traceback=[message])]
        if unchanged:  # an edited locked cell must still be reported as changed
            meta["checksum"] = compute_checksum(cell)
        return cell, resources


VALIDATE_STEPS = [CheckCellMetadata, ClearOutput, Execute, ShortVerdicts]
"""The validator's steps with :class:`ShortVerdicts` last."""


def use_short_verdicts():
    """Make :data:`VALIDATE_STEPS` the steps of every ``nbgrader.validator.Validator`` created
    from now on in this process.

    Example:
        >>> from nbgrader.validator import Validator
        >>> use_short_verdicts()
        >>> Validator().preprocessors[-1].__name__
        'ShortVerdicts'
    """
    from nbgrader.validator import Validator

    Validator.class_traits()["preprocessors"].default_value = list(VALIDATE_STEPS)
