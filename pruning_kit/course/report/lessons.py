"""Where each graded function's idea is taught: a lesson and a heading in it.

The class report links every diagnosis to the lesson section that teaches the
idea behind it. :data:`SECTIONS` names, for each graded function of the
course's assignments, a lesson notebook and a phrase of the heading; the
heading itself is looked up in the lesson when the report is built, so a
heading that is reworded around the phrase still gets its link (its anchor is
the heading text with spaces as dashes, as JupyterLab and nbconvert make it).

Example:
    >>> anchor("2. The magnitude rule")
    '2.-The-magnitude-rule'
    >>> SECTIONS["magnitude_mask"]
    ('01_magnitude_pruning', 'magnitude rule')
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SECTIONS = {
    # pruning
    "magnitude_mask": ("01_magnitude_pruning", "magnitude rule"),
    "global_magnitude_masks": ("01_magnitude_pruning", "local or global"),
    "snip_scores": ("03_snip", "sensitivity, computed"),
    "snip_masks": ("03_snip", "SNIP mask"),
    "imp_step": ("02_lottery_ticket", "one round of IMP"),
    "l1_filter_order": ("05_structured_pruning", "ranking filters by their L1 norm"),
    "sensitivity_scan": ("05_structured_pruning", "sensitivity scan"),
    "sparsity_plan": ("00_compression_overview", "each layer's share"),
    "remove_neurons": ("05_structured_pruning", "physical removal"),
    # binarized
    "quantize_affine": ("04_quantization", "affine quantization"),
    "dequantize_affine": ("04_quantization", "affine quantization"),
    "quantize_symmetric": ("04_quantization", "symmetric quantization"),
    "binarize": ("04_quantization", "one bit"),
    "SignSTE": ("04_quantization", "straight-through estimator"),
    "BinaryLinear": ("04_quantization", "one bit"),
    "quantize_bias": ("04_quantization", "integer arithmetic"),
    "integer_linear": ("04_quantization", "integer arithmetic"),
    "quantized_linear": ("04_quantization", "integer arithmetic"),
    "BinarizedMLP": ("04_quantization", "one bit"),
    "train_binarized": ("04_quantization", "one bit"),
}
"""Graded function -> (lesson notebook name in ``lessons/``, a phrase of its section heading)."""

HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class LessonSection:
    """A lesson section: its title as the report shows it, the notebook's path, the anchor."""

    lesson: str
    heading: str
    path: Path
    anchor: str

    def href(self, start):
        """The link from a page in folder ``start`` to this section."""
        return f"{Path(os.path.relpath(self.path, start)).as_posix()}#{self.anchor}"


def anchor(heading):
    """The anchor JupyterLab and nbconvert give a markdown heading (spaces become dashes)."""
    text = re.sub(r"[`*]", "", heading).strip()
    return text.replace(" ", "-")


@lru_cache(maxsize=64)
def _headings(path, mtime):
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        for line in source.splitlines():
            match = HEADING.match(line)
            if match:
                found.append((len(match.group(1)), match.group(2)))
    return found


def section(function, lessons_dir, sections=None):
    """The :class:`LessonSection` that teaches ``function``, or None when none is known.

    Args:
        function: a graded function's name.
        lessons_dir: the course's ``lessons/`` folder.
        sections: ``{function: (lesson, phrase)}`` (default :data:`SECTIONS`).

    Returns:
        the first heading of the lesson that contains the phrase (case-insensitive);
        the lesson's title when no heading does; None when the lesson is missing.

    Example:
        >>> import pruning_kit
        >>> lessons = Path(pruning_kit.__file__).parents[1] / "lessons"
        >>> section("imp_step", lessons).path.name
        '02_lottery_ticket.ipynb'
        >>> section("no_such_function", lessons) is None
        True
    """
    entry = (sections if sections is not None else SECTIONS).get(function)
    if entry is None:
        return None
    lesson, phrase = entry
    path = Path(lessons_dir) / f"{lesson}.ipynb"
    if not path.is_file():
        return None
    headings = _headings(str(path), path.stat().st_mtime)
    if not headings:
        return LessonSection(lesson, lesson, path, "")
    title = next((text for level, text in headings if level == 1), headings[0][1])
    for _, text in headings:
        if phrase.lower() in text.lower():
            return LessonSection(title, text, path, anchor(text))
    return LessonSection(title, title, path, anchor(title))
