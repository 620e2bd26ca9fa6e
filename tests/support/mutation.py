"""Planted mistakes: one correct source per graded function plus a one-line change.

Example:
    >>> mutate("def f(x):\\n    return abs(x)\\n", "return abs(x)", "return x")
    'def f(x):\\n    return x\\n'
"""

from __future__ import annotations


def mutate(source: str, old: str, new: str) -> str:
    """``source`` with the one line containing ``old`` changed so that ``old`` reads ``new``.

    Raises ValueError unless ``old`` occurs on exactly one line, so a mutant always says which
    line it breaks.
    """
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if old in line]
    if len(hits) != 1:
        raise ValueError(f"{old!r} occurs on {len(hits)} lines of the source, expected exactly 1")
    lines[hits[0]] = lines[hits[0]].replace(old, new)
    return "".join(lines)
