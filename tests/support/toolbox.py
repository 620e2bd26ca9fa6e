"""A test course for the class report: ``toolbox``, three 5-15 line functions and a written answer.

``warmup`` (:mod:`support.warmup`) has one-line functions: every correct answer
is the same line, so no similarity check could tell copies from independent
work. ``toolbox`` asks for functions long enough that students who work alone
write them differently: ``top_k`` (indices of the k largest values),
``moving_average`` and ``histogram``, plus a written answer graded by hand. It
is graded like the real assignments (this module is its registry,
``ASSIGNMENT``; the checker decides every test cell in the grader's process;
the student's code runs in the sandbox) and its checks recognise mistakes with
diagnosis codes such as ``moving_average/off-by-one`` and ``top_k/smallest``.

:data:`CLASS` is a synthetic class: five students who wrote every function
correctly, each in their own way; two near-copies (``fay`` renamed ``eve``'s
variables and reordered her lines); students with planted mistakes in known
numbers (:data:`PLANTED`), some of them two; one whose function kills its
process, one whose function never returns, one whose error message names
them, and one who submitted after the due date (:data:`LATE`). Functions a
student did not write stay as released (``not-written``).

Example:
    >>> ASSIGNMENT.function_of("test_top_k_hidden"), sorted(CLASS)[:3]
    ('top_k', ['ada', 'bob', 'cyd'])
    >>> top_k([3, 1, 3, 2], 2), moving_average([1, 2, 3, 4], 3), histogram([0, 4, 10], 2, 0, 10)
    ([0, 2], [2.0, 3.0], [2, 1])
"""

import datetime
import json
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pruning_grader.judging import call, describe_call, fail, show
from pruning_grader.registry import Assignment
from pruning_kit.course import release
from support.warmup import copy_course  # noqa: F401 - a course folder without its grading

REPO = Path(__file__).resolve().parents[2]
NAME = "toolbox"
FUNCTIONS = ("top_k", "moving_average", "histogram")
HIDDEN_POINTS = {"top_k": 3, "moving_average": 3, "histogram": 3}
VISIBLE_POINTS = 1
WRITTEN_POINTS = 2
TIME_LIMIT_S = 4
"""Seconds one test cell may take: short, so the function that never returns costs little."""

TEST_CONFIG = f"""
import sys as _sys
_sys.path.insert(0, {str(REPO / "tests")!r})
c.CheckedExecute.assignments = {{"toolbox": "support.toolbox:ASSIGNMENT"}}
c.Execute.timeout = 60
"""

DUE = datetime.datetime(2030, 3, 1, 12, 0, 0)
"""The due date the tests give the assignment (UTC)."""


# -- the course's versions --------------------------------------------------------------------

def top_k(values, k):
    if not 0 <= k <= len(values):
        raise ValueError(f"k must be in [0, {len(values)}], got {k}")
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]


def moving_average(xs, window):
    if not 1 <= window <= len(xs):
        raise ValueError(f"window must be in [1, {len(xs)}], got {window}")
    return [sum(xs[i:i + window]) / window for i in range(len(xs) - window + 1)]


def histogram(xs, bins, lo, hi):
    width = (hi - lo) / bins
    counts = [0] * bins
    for x in xs:
        if lo <= x <= hi:
            counts[min(int((x - lo) / width), bins - 1)] += 1
    return counts


# -- the grader's registry: clauses and hidden tests ------------------------------------------

ASSIGNMENT = Assignment(NAME, functions=FUNCTIONS, references=sys.modules[__name__])
ASSIGNMENT.clause("top_k", 1, "returns the indices of the k largest values, largest first",
                  diagnosis="top_k/smallest")
ASSIGNMENT.clause("top_k", 2, "equal values keep their order: the lower index comes first",
                  diagnosis="top_k/ties")
ASSIGNMENT.clause("top_k", 3, "a k outside [0, len(values)] raises ValueError",
                  diagnosis="top_k/range")
ASSIGNMENT.clause("moving_average", 1, "returns len(xs) - window + 1 means: the last window "
                  "ends at the last value", diagnosis="moving_average/off-by-one")
ASSIGNMENT.clause("moving_average", 2, "each value is the mean of window consecutive values",
                  diagnosis="moving_average/values")
ASSIGNMENT.clause("histogram", 1, "the last bin includes hi: a value equal to hi is counted",
                  diagnosis="histogram/edge",
                  note="interior bin edges are not tested: floating point puts them on either "
                       "side in correct solutions")
ASSIGNMENT.clause("histogram", 2, "values outside [lo, hi] are not counted",
                  diagnosis="histogram/outside")


def _returned(function, args, value, expected, mistake=None):
    """Fail unless ``value == expected``; name the recognised mistake when ``mistake`` matches."""
    if value == expected:
        return
    text = f"{describe_call(function, args)} returned {show(value)}, expected {show(expected)}"
    if mistake is not None and mistake[0](value):
        fail(f"{text}. {mistake[1]}", mistake[2])
    fail(text, f"{function.__name__}/wrong")


@ASSIGNMENT.hidden("top_k", points=HIDDEN_POINTS["top_k"], time_limit=TIME_LIMIT_S)
def top_k_hidden(student):
    f = student["top_k"]
    values = [0.5, 4.0, -1.0, 2.5, 3.0]
    smallest = sorted(range(len(values)), key=lambda i: (values[i], i))[:3]
    _returned(f, (values, 3), call(f, values, 3), [1, 4, 3],
              (lambda got: got == smallest, "These are the k SMALLEST values: sort from the "
               "largest down", "top_k/smallest"))
    tied = [1.0, 2.0, 1.0, 2.0]
    _returned(f, (tied, 3), call(f, tied, 3), [1, 3, 0],
              (lambda got: sorted(got) == [0, 1, 3], "Equal values keep their order: the lower "
               "index first", "top_k/ties"))
    for k in (-1, len(values) + 1):
        try:
            value = f(values, k)
        except Exception as exc:  # noqa: BLE001 - what the student's code raised
            if getattr(exc, "type_name", type(exc).__name__) == "ValueError":
                continue
            fail(f"{describe_call(f, (values, k))} raised {getattr(exc, 'type_name', '')}, "
                 f"expected ValueError", "top_k/range")
        fail(f"{describe_call(f, (values, k))} returned {show(value)}, expected a ValueError "
             f"(k must be in [0, len(values)])", "top_k/range")


@ASSIGNMENT.hidden("moving_average", points=HIDDEN_POINTS["moving_average"],
                   time_limit=TIME_LIMIT_S)
def moving_average_hidden(student):
    f = student["moving_average"]
    for xs, window in (([1.0, 3.0, 5.0, 7.0, 9.0], 2), ([2.0, 4.0, 9.0], 3)):
        expected = moving_average(xs, window)
        value = call(f, xs, window)
        if isinstance(value, list) and len(value) == len(expected) - 1:
            fail(f"{describe_call(f, (xs, window))} returned {len(value)} means, expected "
                 f"{len(expected)} = len(xs) - window + 1: the last window ends at the last "
                 f"value", "moving_average/off-by-one")
        if not (isinstance(value, list) and len(value) == len(expected) and all(
                abs(a - b) < 1e-9 for a, b in zip(value, expected))):
            fail(f"{describe_call(f, (xs, window))} returned {show(value)}, expected "
                 f"{show(expected)}", "moving_average/values")


@ASSIGNMENT.hidden("histogram", points=HIDDEN_POINTS["histogram"], time_limit=TIME_LIMIT_S)
def histogram_hidden(student):
    f = student["histogram"]
    xs = [0.0, 0.5, 3.1, 4.9, 7.3, 10.0]
    _returned(f, (xs, 5, 0.0, 10.0), call(f, xs, 5, 0.0, 10.0), [2, 1, 1, 1, 1],
              (lambda got: got == [2, 1, 1, 1, 0], "A value equal to hi belongs to the last "
               "bin", "histogram/edge"))
    outside = [-3.0, 1.0, 11.0, 12.5]
    _returned(f, (outside, 2, 0.0, 10.0), call(f, outside, 2, 0.0, 10.0), [1, 0],
              (lambda got: sum(got or []) > 1, "Values outside [lo, hi] are not counted",
               "histogram/outside"))


# -- the notebook -----------------------------------------------------------------------------

PROMPTS = {
    "top_k": ("## 1. The k largest\n`top_k(values, k)` returns the indices of the `k` largest "
              "values, largest first; equal values keep their order (the lower index first); a "
              "`k` outside `[0, len(values)]` raises `ValueError`."),
    "moving_average": ("## 2. A moving average\n`moving_average(xs, window)` returns the mean "
                       "of every `window` consecutive values: `len(xs) - window + 1` of them; a "
                       "`window` outside `[1, len(xs)]` raises `ValueError`."),
    "histogram": ("## 3. A histogram\n`histogram(xs, bins, lo, hi)` counts the values in `bins` "
                  "equal-width bins over `[lo, hi]`; the last bin includes `hi`; values outside "
                  "are not counted."),
}
SIGNATURES = {"top_k": "def top_k(values, k):",
              "moving_average": "def moving_average(xs, window):",
              "histogram": "def histogram(xs, bins, lo, hi):"}
DOCSTRINGS = {"top_k": "Indices of the k largest values, largest first.",
              "moving_average": "The mean of every window consecutive values.",
              "histogram": "Counts of xs in bins equal-width bins over [lo, hi]."}
VISIBLE = {
    "top_k": "expect(top_k, [1.0, 5.0, 3.0], 2, returns=[1, 2])",
    "moving_average": "expect(moving_average, [1.0, 2.0, 3.0, 4.0], 2, returns=[1.5, 2.5, 3.5])",
    "histogram": "expect(histogram, [0.0, 2.5, 10.0], 2, 0.0, 10.0, returns=[2, 1])",
}


def _cell(kind, source, **meta):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if meta:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False,
                                     "grade": False, **meta}
    return cell


def _solution_cell(name):
    reference = {"top_k": ["    if not 0 <= k <= len(values):",
                           "        raise ValueError('k must be in [0, len(values)]')",
                           "    return sorted(range(len(values)),",
                           "                  key=lambda i: (-values[i], i))[:k]"],
                 "moving_average": ["    if not 1 <= window <= len(xs):",
                                    "        raise ValueError('window must be in [1, len(xs)]')",
                                    "    return [sum(xs[i:i + window]) / window",
                                    "            for i in range(len(xs) - window + 1)]"],
                 "histogram": ["    width = (hi - lo) / bins",
                               "    counts = [0] * bins",
                               "    for x in xs:",
                               "        if lo <= x <= hi:",
                               "            counts[min(int((x - lo) / width), bins - 1)] += 1",
                               "    return counts"]}[name]
    return "\n".join([SIGNATURES[name], f'    """{DOCSTRINGS[name]}"""', "    ### BEGIN SOLUTION",
                      *reference, "    ### END SOLUTION"])


def source_notebook():
    """The instructor's notebook: per function a prompt, an answer cell, a visible and a hidden
    test cell (the hidden one only a comment); then a written answer graded by hand."""
    cells = [_cell("markdown", "# Toolbox\nThree small functions and one written answer.",
                   grade_id="intro", locked=True),
             _cell("code", "from pruning_kit.course.testing import expect", grade_id="setup",
                   locked=True)]
    for name in FUNCTIONS:
        cells.append(_cell("markdown", PROMPTS[name], grade_id=f"prompt_{name}", locked=True))
        cells.append(_cell("code", _solution_cell(name), grade_id=name, solution=True))
        cells.append(_cell("code", f"# grading time limit: {TIME_LIMIT_S} s\n{VISIBLE[name]}",
                           grade_id=f"test_{name}_visible", grade=True, locked=True,
                           points=VISIBLE_POINTS))
        cells.append(_cell("code", f"# Hidden tests for {name}: the grader runs them.",
                           grade_id=f"test_{name}_hidden", grade=True, locked=True,
                           points=HIDDEN_POINTS[name]))
    cells.append(_cell("markdown", "## 4. In your words\nWhen is a moving average a bad summary?",
                       grade_id="prompt_written", locked=True))
    cells.append(_cell("markdown", "### BEGIN SOLUTION\nWhen the signal jumps.\n### END SOLUTION",
                       grade_id="answer_written", solution=True, grade=True,
                       points=WRITTEN_POINTS))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    return nb


def make_course(root):
    """A course at ``root`` with ``toolbox`` in solutions/, released to assignments/."""
    root = Path(root)
    (root / "solutions" / NAME).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "solutions" / NAME / f"{NAME}.ipynb")
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                             + TEST_CONFIG)
    release.release(root, [NAME])
    return root


def submission(root, code, written=""):
    """The released notebook with each function's cell replaced by ``code[name]``."""
    nb = json.loads((root / "assignments" / NAME / f"{NAME}.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in code:
            cell["source"] = code[gid]
        elif gid == "answer_written" and written:
            cell["source"] = written
    return nb


def submit(root, student, code, *, when=None, written="I would look at the raw data first."):
    """Put ``student``'s notebook (and its submission time) in ``submitted/<student>/toolbox/``."""
    folder = root / "submitted" / student / NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{NAME}.ipynb").write_text(json.dumps(submission(root, code, written), indent=1))
    when = when or DUE - datetime.timedelta(hours=1)
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def submit_class(root):
    """Every student of :data:`CLASS`, on time except :data:`LATE`."""
    for student, code in CLASS.items():
        late = LATE.get(student)
        submit(root, student, code, when=DUE + late if late else None)


# -- the class --------------------------------------------------------------------------------
# Five students who wrote every function correctly, each in their own way.

TOP_K = {
    "ada": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    if k < 0 or k > len(values):
        raise ValueError("k must be between 0 and len(values)")
    indexed = list(enumerate(values))
    indexed.sort(key=lambda pair: (-pair[1], pair[0]))
    result = []
    for index, _ in indexed[:k]:
        result.append(index)
    return result
''',
    "bob": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    n = len(values)
    if not (0 <= k <= n):
        raise ValueError(f"k={k} is outside [0, {n}]")
    chosen = []
    remaining = set(range(n))
    while len(chosen) < k:
        best = None
        for i in sorted(remaining):
            if best is None or values[i] > values[best]:
                best = i
        chosen.append(best)
        remaining.remove(best)
    return chosen
''',
    "cyd": '''import heapq


def top_k(values, k):
    """Indices of the k largest values, largest first."""
    if k not in range(len(values) + 1):
        raise ValueError("bad k")
    heap = [(-v, i) for i, v in enumerate(values)]
    heapq.heapify(heap)
    return [heapq.heappop(heap)[1] for _ in range(k)]
''',
    "dee": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    count = len(values)
    if k > count or k < 0:
        raise ValueError("k out of range: " + str(k))
    positions = list(range(count))
    # sorted() is stable, also with reverse=True: equal values keep their order
    positions = sorted(positions, key=values.__getitem__, reverse=True)
    top = positions[0:k]
    return [int(p) for p in top]
''',
    "eve": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    if k < 0:
        raise ValueError("k is negative")
    if k > len(values):
        raise ValueError("k is larger than the list")
    pairs = [(values[j], -j) for j in range(len(values))]
    pairs.sort(reverse=True)
    answer = [-p[1] for p in pairs[:k]]
    return answer
''',
}

MOVING_AVERAGE = {
    "ada": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if window < 1 or window > len(xs):
        raise ValueError("window must be in [1, len(xs)]")
    averages = []
    for start in range(len(xs) - window + 1):
        chunk = xs[start:start + window]
        averages.append(sum(chunk) / window)
    return averages
''',
    "bob": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    n = len(xs)
    if not 1 <= window <= n:
        raise ValueError(f"window={window} must be between 1 and {n}")
    total = sum(xs[:window])
    means = [total / window]
    for i in range(window, n):
        total += xs[i] - xs[i - window]
        means.append(total / window)
    return means
''',
    "cyd": '''from itertools import accumulate


def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if window not in range(1, len(xs) + 1):
        raise ValueError("bad window")
    prefix = [0] + list(accumulate(xs))
    return [(prefix[j + window] - prefix[j]) / window
            for j in range(len(prefix) - window)]
''',
    "dee": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if window > len(xs) or window <= 0:
        raise ValueError("window out of range")
    out = []
    i = 0
    while i + window <= len(xs):
        s = 0.0
        for x in xs[i:i + window]:
            s = s + x
        out.append(s / window)
        i += 1
    return out
''',
    "eve": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if window <= 0:
        raise ValueError("window must be positive")
    if window > len(xs):
        raise ValueError("window longer than xs")
    count = len(xs) - window + 1
    result = [0.0] * count
    for pos in range(count):
        result[pos] = sum(xs[pos:pos + window]) / window
    return result
''',
}

HISTOGRAM = {
    "ada": '''def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    width = (hi - lo) / bins
    counts = [0] * bins
    for x in xs:
        if x < lo or x > hi:
            continue
        b = int((x - lo) / width)
        if b == bins:
            b = bins - 1
        counts[b] += 1
    return counts
''',
    "bob": '''def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    result = []
    for i in range(bins):
        left, right = edges[i], edges[i + 1]
        last = i == bins - 1
        n = sum(1 for x in xs if left <= x < right or (last and x == right))
        result.append(n)
    return result
''',
    "cyd": '''import bisect


def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    step = (hi - lo) / bins
    edges = [lo + step * j for j in range(1, bins)]
    counts = [0 for _ in range(bins)]
    for value in xs:
        if lo <= value <= hi:
            counts[bisect.bisect_right(edges, value)] += 1
    return counts
''',
    "dee": '''from collections import Counter


def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    inside = [x for x in xs if lo <= x <= hi]
    scale = bins / (hi - lo)
    which = Counter(min(bins - 1, int((x - lo) * scale)) for x in inside)
    return [which.get(b, 0) for b in range(bins)]
''',
    "eve": '''def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    tally = []
    for _ in range(bins):
        tally.append(0)
    span = hi - lo
    for x in xs:
        if lo <= x <= hi:
            position = (x - lo) / span * bins
            slot = bins - 1 if x == hi else int(position)
            tally[slot] = tally[slot] + 1
    return tally
''',
}

# fay: eve's code with the variables renamed and lines reordered.
FAY = {
    "top_k": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    if k > len(values):
        raise ValueError("k is larger than the list")
    if k < 0:
        raise ValueError("k is negative")
    items = [(values[idx], -idx) for idx in range(len(values))]
    items.sort(reverse=True)
    out = [-item[1] for item in items[:k]]
    return out
''',
    "moving_average": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if window > len(xs):
        raise ValueError("window longer than xs")
    if window <= 0:
        raise ValueError("window must be positive")
    n_out = len(xs) - window + 1
    smoothed = [0.0] * n_out
    for p in range(n_out):
        smoothed[p] = sum(xs[p:p + window]) / window
    return smoothed
''',
    "histogram": '''def histogram(xs, bins, lo, hi):
    """Counts of xs in bins equal-width bins over [lo, hi]."""
    width_all = hi - lo
    bars = []
    for _ in range(bins):
        bars.append(0)
    for v in xs:
        if lo <= v <= hi:
            where = (v - lo) / width_all * bins
            b = bins - 1 if v == hi else int(where)
            bars[b] = bars[b] + 1
    return bars
''',
}

# Planted mistakes, each written in its own way; the other functions are left as released.
OFF_BY_ONE = {
    "gus": '''def moving_average(xs, window):
    if window < 1 or window > len(xs):
        raise ValueError("window out of range")
    res = []
    for k in range(len(xs) - window):
        res.append(sum(xs[k:k + window]) / window)
    return res
''',
    "hal": '''def moving_average(xs, window):
    """The mean of every window consecutive values."""
    if not (0 < window <= len(xs)):
        raise ValueError("invalid window")
    steps = len(xs) - window
    return [sum(xs[t:t + window]) / float(window) for t in range(steps)]
''',
    "ned": '''def moving_average(xs, window):
    length = len(xs)
    if window <= 0 or window > length:
        raise ValueError("window")
    output = []
    idx = 0
    while idx < length - window:
        output.append(sum(xs[idx:idx + window]) / window)
        idx = idx + 1
    return output
''',
}
SMALLEST = {
    "gus": '''def top_k(values, k):
    if k < 0 or k > len(values):
        raise ValueError("k outside the list")
    by_value = sorted(range(len(values)), key=lambda i: values[i])
    picked = by_value[:k]
    return picked
''',
    "kim": '''def top_k(values, k):
    """Indices of the k largest values, largest first."""
    if k not in range(0, len(values) + 1):
        raise ValueError(k)
    order = []
    for v, i in sorted(zip(values, range(len(values)))):
        order.append(i)
    return order[:k]
''',
}
EDGE = {
    "hal": '''def histogram(xs, bins, lo, hi):
    size = (hi - lo) / bins
    hist = [0] * bins
    for x in xs:
        if lo <= x < hi:
            hist[int((x - lo) // size)] += 1
    return hist
''',
}
NAMES_ITSELF = '''def histogram(xs, bins, lo, hi):
    raise ValueError("kim has not finished this yet")
'''
CRASHES = '''import os


def histogram(xs, bins, lo, hi):
    os._exit(1)
'''
NEVER_RETURNS = '''def top_k(values, k):
    while True:
        pass
'''

CLASS = {student: {"top_k": TOP_K[student], "moving_average": MOVING_AVERAGE[student],
                   "histogram": HISTOGRAM[student]} for student in TOP_K}
CLASS["fay"] = dict(FAY)
CLASS["kim"] = {"histogram": NAMES_ITSELF}
CLASS["moe"] = {"histogram": CRASHES}
CLASS["ned"] = {"top_k": NEVER_RETURNS}
# Students with planted mistakes may make two: each function is its own count.
for planted in (OFF_BY_ONE, SMALLEST, EDGE):
    for student, code in planted.items():
        function = code.split("def ", 1)[1].split("(", 1)[0]
        CLASS.setdefault(student, {})[function] = code

INDEPENDENT = ("ada", "bob", "cyd", "dee", "eve")
"""Students who wrote everything correctly on their own."""
COPIES = ("eve", "fay")
LATE = {"dee": datetime.timedelta(hours=5)}
CRASHED = {"moe": "histogram"}
TIMED_OUT = {"ned": "top_k"}

PLANTED = {"moving_average/off-by-one": len(OFF_BY_ONE), "top_k/smallest": len(SMALLEST),
           "histogram/edge": len(EDGE), "histogram/raised": 1, "histogram/crashed": 1,
           "top_k/timeout": 1}
"""How many students each recognised mistake hits, by construction."""
for _function in FUNCTIONS:  # every function a student left as released
    PLANTED[f"{_function}/not-written"] = sum(_function not in code for code in CLASS.values())
