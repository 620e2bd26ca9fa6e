"""The trusted checker against a small assignment: what crosses the boundary, and what cannot.

Each test grades a notebook of one or two answer cells with
:func:`pruning_grader.checker.check_notebook`, sandbox on, as ``make grade``
does (without the nbgrader pipeline around it). The assignment here is the
test's own: its hidden tests record what the student's function returned, so the
tests can see what student code could and could not reach from its process.
"""

import sys

import pytest
import torch

from pruning_grader import boundary
from pruning_grader.checker import check_notebook
from pruning_grader.judging import fail
from pruning_grader.registry import Assignment
from pruning_kit.course import wire
from support.assignments import REPO

pytestmark = pytest.mark.e2e

SEEN = []  # what the student's function returned to a hidden test


def double(x):
    return 2 * x


def twice_double(x):
    return double(double(x))


ASSIGNMENT = Assignment("toy", functions=("double", "twice_double"),
                        kit={"double": ("pruning_kit.prune.magnitude",
                                        "pruning_kit.quant.BinaryLinear")},
                        uses={"twice_double": ("double",)}, references=sys.modules[__name__])


@ASSIGNMENT.hidden("double", points=2, time_limit=8)
def double_hidden(student):
    value = student["double"](torch.tensor([1.0, 2.0]))
    SEEN.append(value)
    if not (isinstance(value, torch.Tensor) and torch.equal(value, torch.tensor([2.0, 4.0]))):
        fail(f"double returned {value!r}", "double/wrong")


@ASSIGNMENT.hidden("twice_double", points=2, time_limit=8)
def twice_double_hidden(student):
    value = student["twice_double"](3)
    if value != 12:
        fail(f"twice_double(3) returned {value!r}, expected 12", "twice_double/wrong")


def cell(source, **nbgrader):
    return {"cell_type": "code", "source": source, "outputs": [],
            "metadata": {"nbgrader": nbgrader}}


def notebook(double_source, twice_source="def twice_double(x):\n    return double(double(x))\n"):
    return {"cells": [
        cell("import torch\nimport pruning_kit as pk\n"
             "from pruning_kit.course.testing import expect", grade_id="setup", locked=True),
        cell(double_source, grade_id="double", solution=True),
        cell("expect(double, 2, returns=4)", grade_id="test_double_visible", grade=True,
             locked=True, points=1),
        cell("# hidden", grade_id="test_double_hidden", grade=True, locked=True, points=2),
        cell(twice_source, grade_id="twice_double", solution=True),
        cell("# hidden", grade_id="test_twice_double_hidden", grade=True, locked=True,
             points=2),
    ]}


def grade(double_source, **kwargs):
    SEEN.clear()
    return check_notebook(ASSIGNMENT, notebook(double_source, **kwargs), define_timeout=10)


def outcome(results, grade_id="test_double_hidden"):
    r = results[grade_id]
    return r.points, r.status


def test_a_correct_answer_earns_every_point():
    results = grade("def double(x):\n    return 2 * x\n")
    assert {gid: r.points for gid, r in results.items()} == {
        "test_double_visible": 1, "test_double_hidden": 2, "test_twice_double_hidden": 2}


def test_a_function_that_uses_another_gets_the_course_version_of_it():
    # double is wrong: its own cells score 0, twice_double (which calls double) keeps its points
    results = grade("def double(x):\n    return 3 * x\n")
    assert outcome(results) == (0, "failed")
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_the_function_under_test_never_finds_its_own_reference_in_its_process():
    # every function of the course that the student's process holds (the stand-ins of the
    # functions this one uses) was compiled from the grader's source as "<course NAME>"
    probe = (
        "import gc\n"
        "def double(x):\n"
        "    names = []\n"
        "    for obj in gc.get_objects():\n"
        "        try:\n"
        "            filename = obj.__code__.co_filename\n"
        "        except Exception:\n"
        "            continue\n"
        "        if isinstance(filename, str) and filename.startswith('<course'):\n"
        "            names.append(filename)\n"
        "    return sorted(set(names))\n")
    grade(probe)
    assert SEEN == [[]]  # double uses nothing: no course code at all while it is tested
    results = grade("import gc\ndef double(x):\n    return 2 * x\n",
                    twice_source=probe.replace("def double(x)", "def twice_double(x)"))
    assert results["test_twice_double_hidden"].status == "failed"
    assert "<course double>" in results["test_twice_double_hidden"].message


@pytest.mark.parametrize("reach", [
    "import pruning_kit.prune as p\nkept = p.magnitude\ndef double(x):\n    return kept(x)\n",
    "import pruning_kit as pk\ndef double(x):\n"
    "    import importlib, pruning_kit.prune\n"
    "    return importlib.reload(pruning_kit.prune).magnitude(x)\n",
    "import pruning_kit as pk\ndef double(x):\n"
    "    def f(*a, **k): pass\n"
    "    f.__code__ = pk.prune.magnitude.__code__\n"
    "    return f(x)\n",
    "import pruning_kit as pk\ndef double(x):\n"
    "    return pk.quant.BinaryLinear(2, 2)(x)\n",
])
def test_the_kit_s_graded_work_is_unreachable_however_it_is_reached(reach):
    results = grade(reach)
    assert outcome(results) == (0, "kit-refused"), results["test_double_hidden"].message
    assert "not available while double is graded" in results["test_double_hidden"].message


def test_the_kit_s_source_in_the_student_process_is_the_stub():
    grade("import inspect, pruning_kit.prune as p\n"
          "def double(x):\n    return inspect.getsource(p.magnitude)\n")
    assert SEEN and "refuse(" in SEEN[0] and "argsort" not in SEEN[0]


def test_student_code_reads_nothing_of_the_course_or_the_grader():
    probe = (
        "import os, importlib.util\n"
        "def double(x):\n"
        "    out = {'grader': importlib.util.find_spec('pruning_grader') is not None}\n"
        f"    for path in ({str(REPO / 'solutions')!r}, {str(REPO / 'grader')!r}, "
        f"{str(REPO / 'tests')!r}):\n"
        "        out[path] = [f for _, _, files in os.walk(path) for f in files]\n"
        "    return out\n")
    grade(probe)
    assert SEEN and not any(SEEN[0].values()), SEEN


def test_a_crash_costs_only_its_cell():
    results = grade("import os\ndef double(x):\n    os._exit(3)\n")
    assert outcome(results) == (0, "crashed")
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_a_hang_times_out_and_the_next_cell_starts_fresh():
    results = grade("def double(x):\n    while True:\n        pass\n")
    assert outcome(results) == (0, "timeout")
    assert "did not finish within the 8 s" in results["test_double_hidden"].message
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_code_that_hangs_at_the_top_of_a_cell_costs_only_that_cell():
    results = grade("while True:\n    pass\n")
    assert outcome(results) == (0, "missing")
    assert "did not finish" in results["test_double_hidden"].message
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_a_memory_blow_up_costs_only_its_cell():
    results = grade("import torch\ndef double(x):\n    return torch.empty(2 ** 40)\n")
    assert outcome(results) in ((0, "raised"), (0, "crashed"))
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_garbage_written_on_the_protocol_stream_costs_only_its_cell():
    results = grade("import os\ndef double(x):\n"
                    "    for fd in range(3, 12):\n"
                    "        try:\n            os.write(fd, b'PKW1 not a frame' * 10)\n"
                    "        except OSError:\n            pass\n"
                    "    return 2 * x\n")
    assert results["test_double_hidden"].points == 0
    assert results["test_double_hidden"].status in ("protocol", "crashed")
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_an_enormous_result_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setitem(wire.LIMITS, "buffer_bytes", 1_000_000)
    results = grade("import torch\ndef double(x):\n    return torch.zeros(2_000_000)\n")
    assert outcome(results) == (0, "protocol")
    assert "a buffer of" in results["test_double_hidden"].message
    assert outcome(results, "test_twice_double_hidden") == (2, "passed")


def test_objects_that_are_not_plain_data_come_back_as_proxies():
    grade("class Weird:\n    def __eq__(self, other):\n        return True\n"
          "def double(x):\n    return Weird()\n")
    assert SEEN and type(SEEN[0]).__name__ == "RemoteObject" and SEEN[0] != torch.tensor([2.0, 4.0])


def test_student_errors_pass_through_checks_that_catch_exceptions():
    assert issubclass(boundary.StudentError, BaseException)
    assert not issubclass(boundary.StudentError, Exception)
