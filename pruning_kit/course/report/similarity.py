"""Pairs of submissions whose answer code is unusually similar, for a human to read.

Only the students' own code is compared, function by function (answer cell
with answer cell of the same ``grade_id``):

1. **Fingerprints** (copydetect, the winnowing method of Schleimer, Wilkerson and
   Aiken, "Winnowing: local algorithms for document fingerprinting", SIGMOD
   2003): each answer cell is tokenised with Pygments, comments and whitespace
   dropped, every variable, function and class name replaced by one letter, so
   renaming changes nothing; every run of :data:`K` characters of what is left
   is hashed. The released notebook's version of the cell is fingerprinted the
   same way and its hashes are removed (copydetect's boilerplate), so the
   template's signature, docstring and ``raise NotImplementedError()`` make no
   two students alike.
2. **Candidates** from an inverted index: a fragment found in more than
   :func:`common_limit` submissions is how the class writes that step (an
   idiom), not evidence, and is set aside like the template; the remaining
   fragments shared by two students are counted per pair and function. Only
   pairs that share many fragments are compared in full, so the cost grows
   with the number of fragments shared by few students, not with the number
   of pairs: ``O(n * L)`` to fingerprint ``n`` submissions of ``L``
   characters, plus ``O(sum over fragments of df**2)`` with every ``df`` at
   most the common limit (``benchmarks/class_report.py`` measures it).
3. **Comparison** (copydetect's ``compare_files``): the share of each student's
   code in the function (after the template and the class's idioms are set
   aside) that is found in the other's. A function matches when that share is
   at least :data:`THRESHOLD` on both sides and the shared code is at least
   :data:`MIN_SHARED` characters of normalised code (a few lines), so a short
   idiomatic function can't match on its own.

copydetect's own driver (``CopyDetector``) is not used: it reads files from
folders, compares every pair of files (``n**2 / 2``: 12.5 million pairs for
5,000 students, each function separately nine times that) and writes a report
of its own. Its fingerprint and comparison pieces serve this shape of input
as they are: one cell's code from memory, the template as boilerplate.

Lines in a different order still match: fingerprints don't care where a
fragment is. What this does not see: code rewritten in another structure,
code copied from outside the class (two students copying one web page look
alike, one student alone does not), and a group larger than the common limit
sharing one source (their code becomes "how the class writes it").

Example:
    >>> a = ("def f(xs):\\n    total = 0\\n    for x in xs:\\n        total += x * x\\n"
    ...      "    return total\\n")
    >>> b = ("def f(values):\\n    acc = 0\\n    for v in values:\\n        acc += v * v\\n"
    ...      "    return acc\\n")
    >>> pairs = similar_pairs({"ada": {"f": a}, "bob": {"f": b}}, {"f": "def f(xs):\\n    pass\\n"},
    ...                       min_shared=10)
    >>> [(p.students, p.functions) for p in pairs]
    [(('ada', 'bob'), ['f'])]
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

K = 25
"""Characters of normalised code per fingerprint (copydetect's default noise threshold)."""
WINDOW = 1
"""Winnowing window: 1 keeps every fingerprint (copydetect's default: guarantee = noise
threshold), so the result does not depend on Python's per-process string hashing."""
THRESHOLD = 0.6
"""Share of each student's own code in a function that must be found in the other's."""
MIN_SHARED = 80
"""Characters of normalised code two students must share in a function before it can match."""
MIN_COMMON = 10
"""A fragment is common (set aside) when more than this many submissions have it ..."""
COMMON_SHARE = 0.02
"""... or more than this share of the class, whichever is larger."""


@dataclass
class FunctionMatch:
    """One function two students wrote alike: the shares, and both cells highlighted (HTML)."""

    grade_id: str
    share_a: float
    share_b: float
    shared_chars: int
    html_a: str
    html_b: str


@dataclass
class SimilarPair:
    """Two submissions, the functions they wrote alike, and the share of all their own code."""

    students: tuple
    matches: list = field(default_factory=list)
    share: float = 0.0

    @property
    def functions(self):
        return [m.grade_id for m in self.matches]


@dataclass
class SimilarityRun:
    """What was compared, the pairs found, and the numbers that say how it was done."""

    pairs: list
    submissions: int
    cells: int
    common_limit: int
    candidates: int
    seconds: dict = field(default_factory=dict)


def common_limit(n):
    """How many submissions may share a fragment before it counts as the class's idiom.

    Example:
        >>> common_limit(30), common_limit(1000), common_limit(5000)
        (10, 20, 100)
    """
    return max(MIN_COMMON, math.ceil(COMMON_SHARE * n))


def fingerprint(code, boilerplate=None):
    """copydetect's fingerprint of ``code`` (Python), without the ``boilerplate`` hashes."""
    from copydetect import CodeFingerprint

    if boilerplate is not None and len(boilerplate):
        boilerplate = np.fromiter(boilerplate, dtype=np.int64, count=len(boilerplate))
    else:
        boilerplate = None
    return CodeFingerprint("answer.py", K, WINDOW, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(code))


def _hash_array(fp):
    return np.fromiter(fp.hashes, dtype=np.int64, count=len(fp.hashes))


def _candidates(index, n, n_cells, limit):
    """Shared rare fragments per (cell, a, b) and each document's rare-fragment count.

    ``index``: ``{cell number: (hashes, owner)}`` arrays of every fingerprint of that cell.
    Returns ``(keys, shared, rare_count, common)``: ``keys`` encode ``(cell, a, b)`` with
    ``a < b``; ``rare_count[cell * n + owner]``; ``common[cell]`` the set-aside hashes.
    """
    keys, common = [], {}
    rare_count = np.zeros(max(n_cells, 1) * n, dtype=np.int64)
    for cell, (hashes, owner) in index.items():
        order = np.lexsort((owner, hashes))
        hashes, owner = hashes[order], owner[order]
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        sizes = np.diff(np.r_[starts, len(hashes)])
        common[cell] = set(hashes[starts[sizes > limit]].tolist())
        rare = np.repeat(sizes <= limit, sizes)
        rare_count[cell * n:(cell + 1) * n] = np.bincount(owner[rare], minlength=n)
        for m in np.unique(sizes[(sizes >= 2) & (sizes <= limit)]):
            members = owner[starts[sizes == m][:, None] + np.arange(m)]
            a, b = np.triu_indices(int(m), 1)
            keys.append(((cell * n + members[:, a]) * n + members[:, b]).ravel())
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), rare_count, common
    found, shared = np.unique(np.concatenate(keys), return_counts=True)
    return found, shared, rare_count, common


def _highlight(fp, slices):
    from copydetect.utils import highlight_overlap

    html, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", escape_html=True)
    return html


def similar_pairs(answers, templates, *, threshold=THRESHOLD, min_shared=MIN_SHARED,
                  limit=None, run=None):
    """The pairs of submissions with at least one function written alike, most alike first.

    Args:
        answers: ``{student: {grade_id: code}}`` of the answer cells as submitted.
        templates: ``{grade_id: code}`` of the same cells as released; only these cells
            are compared (all of them when ``templates`` is empty).
        threshold: share of each side's own code in a function found in the other's.
        min_shared: normalised characters the two must share in that function.
        limit: fragments in more submissions than this are set aside (default
            :func:`common_limit` of the class size).
        run: a dict that receives the numbers of the run (see :class:`SimilarityRun`).

    Returns:
        a list of :class:`SimilarPair`, by functions matched, then share of all code.
    """
    import time

    clock = {"start": time.perf_counter()}
    students = sorted(answers)
    n = max(len(students), 1)
    cells = sorted(templates) if templates else sorted({g for a in answers.values() for g in a})
    limit = limit if limit is not None else common_limit(len(students))
    template_hashes = {g: fingerprint(templates[g]).hashes if templates.get(g) else set()
                       for g in cells}
    prints = {}
    index = {}
    for c, grade_id in enumerate(cells):
        hashes, owners = [], []
        for i, student in enumerate(students):
            code = answers[student].get(grade_id)
            if not code or not code.strip():
                continue
            fp = fingerprint(code, template_hashes[grade_id])
            prints[(c, i)] = fp
            if fp.hashes:
                hashes.append(_hash_array(fp))
                owners.append(np.full(len(fp.hashes), i, dtype=np.int64))
        if hashes:
            index[c] = (np.concatenate(hashes), np.concatenate(owners))
    clock["fingerprints"] = time.perf_counter()
    keys, shared, rare_count, common = _candidates(index, n, len(cells), limit)
    cell_of, rest = np.divmod(keys, n * n)
    first, second = np.divmod(rest, n)
    # A lenient filter on fragment counts; the comparison below decides.
    sizes_a, sizes_b = rare_count[cell_of * n + first], rare_count[cell_of * n + second]
    promising = shared >= 0.5 * threshold * np.maximum(np.maximum(sizes_a, sizes_b), 1)
    clock["candidates"] = time.perf_counter()
    refined = {}

    def without_common(c, i):
        if (c, i) not in refined:
            grade_id = cells[c]
            refined[(c, i)] = fingerprint(answers[students[i]][grade_id],
                                          template_hashes[grade_id] | common.get(c, set()))
        return refined[(c, i)]

    from copydetect import compare_files

    matches = {}
    for c, a, b in zip(cell_of[promising], first[promising], second[promising]):
        c, a, b = int(c), int(a), int(b)
        fa, fb = without_common(c, a), without_common(c, b)
        overlap, (share_a, share_b), (slices_a, slices_b) = compare_files(fa, fb)
        chars_b = share_b * fb.token_coverage
        if min(share_a, share_b) < threshold or min(overlap, chars_b) < min_shared:
            continue
        matches.setdefault((a, b), []).append(FunctionMatch(
            cells[c], float(share_a), float(share_b), int(overlap),
            _highlight(fa, slices_a), _highlight(fb, slices_b)))
    pairs = []
    for (a, b), found in matches.items():
        found.sort(key=lambda m: cells.index(m.grade_id))
        own = {i: sum(without_common(c, i).token_coverage for c in range(len(cells))
                      if (c, i) in prints) for i in (a, b)}
        in_common = sum(m.share_a * without_common(cells.index(m.grade_id), a).token_coverage
                        + m.share_b * without_common(cells.index(m.grade_id), b).token_coverage
                        for m in found)
        share = in_common / max(own[a] + own[b], 1)
        pairs.append(SimilarPair((students[a], students[b]), found, float(share)))
    pairs.sort(key=lambda p: (-len(p.matches), -p.share, p.students))
    clock["compare"] = time.perf_counter()
    if run is not None:
        run.update(submissions=sum(1 for s in students if any(
            (answers[s].get(g) or "").strip() for g in cells)), cells=len(cells),
            common_limit=limit, candidates=int(promising.sum()),
            seconds={"fingerprints": clock["fingerprints"] - clock["start"],
                     "candidates": clock["candidates"] - clock["fingerprints"],
                     "compare": clock["compare"] - clock["candidates"]})
    return pairs
