"""Grades no submission can forge: each forgery mounted through the real pipeline scores nothing.

A copy of the course, both assignments released, graded with the course's own
``nbgrader_config.py`` by the real ``nbgrader`` command line (two workers),
sandbox on. Every forgery below is a *blank* submission (the released notebook,
no function written) with one change in its first answer cell. Each worked
against the old design, where test cells ran in the student's kernel after the
student's code; now every test cell is decided by the trusted checker in the
grader's process, and the student's code runs in another (sandboxed) process
that only answers calls with plain data. So each forgery scores exactly what the
blank submission scores (0), while the reference solution, graded in the same
run, scores full marks.

The same run shows that the feedback page of a graded submission holds none of
the hidden tests' source and none of the reference solutions.
"""

import inspect
import json
import re
import shutil
from pathlib import Path

import pytest

from pruning_grader.nbgrader import load_assignment
from pruning_kit.course import autograde, release
from support.assignments import (ASSIGNMENTS, REPO, answer_cells, source_notebook,
                                 strip_markers)

pytestmark = pytest.mark.e2e

FIRST = {"pruning": ("magnitude_mask", "weight, sparsity", "weight"),
         "binarized": ("quantize_affine", "x, bits", "x")}
"""The first graded function of each assignment, its parameters and its tensor argument."""

# Lines added at the top of the first answer cell; each replaced a piece of the old in-kernel
# test machinery, and each was seen to earn every autograded point of a blank notebook.
PREPENDED = {
    "reload": "import importlib\nimportlib.reload = lambda module, *args, **kwargs: module\n",
    "input-transformer": (
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"),
    "exception-handler": (
        "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"),
    "showtraceback": ("get_ipython().showtraceback = lambda *args, **kwargs: None\n"
                      "get_ipython()._showtraceback = lambda *args, **kwargs: None\n"),
    "display-formatter": (
        "_ip = get_ipython()\n"
        "_ip.display_formatter.formatters['text/plain'].for_type(object, "
        "lambda obj, p, cycle: p.text('100'))\n"
        "_ip.events.register('post_run_cell', lambda result: _ip.displayhook(100))\n"),
    "checks-module": (
        "import sys, types\n"
        "_fake = types.ModuleType('fake')\n"
        "_fake.expect = lambda *args, **kwargs: None\n"
        "for _name in ('pruning_kit.course.testing', 'pruning_grader', "
        "'pruning_grader.checker', 'pruning_kit.course.checks.pruning', "
        "'pruning_kit.course.checks.binarized', 'pruning_kit.course.checks.core'):\n"
        "    sys.modules[_name] = _fake\n"),
}

# Bodies of the first graded function that try to pass its tests without doing its work.
BODIES = {
    "caller-frames": (
        "    import sys\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        for key in ('expected', 'returns', 'reference', 'want'):\n"
        "            if key in frame.f_locals:\n"
        "                return frame.f_locals[key]\n"
        "        frame = frame.f_back\n"
        "    raise NotImplementedError()\n"),
    "always-equal": (
        "    class AlwaysEqual:\n"
        "        def __eq__(self, other): return True\n"
        "        def __ne__(self, other): return False\n"
        "        def __bool__(self): return True\n"
        "        def __getattr__(self, name): return lambda *a, **k: self\n"
        "    return AlwaysEqual()\n"),
    "torch-function": (
        "    import torch\n"
        "    class Agreeable(torch.Tensor):\n"
        "        @classmethod\n"
        "        def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "            return True\n"
        "    return torch.zeros_like({tensor}).as_subclass(Agreeable)\n"),
    "tensor-subclass": (
        "    import torch\n"
        "    class Liar(torch.Tensor):\n"
        "        def __eq__(self, other): return torch.ones_like(self, dtype=torch.bool)\n"
        "        def equal(self, other): return True\n"
        "    return torch.zeros_like({tensor}).as_subclass(Liar)\n"),
}

FORGERIES = sorted([*PREPENDED, *BODIES])


def autograded_points(assignment):
    """The autograded points of an assignment: the sum over its test cells."""
    return sum(cell["metadata"]["nbgrader"]["points"]
               for cell in source_notebook(assignment)["cells"]
               if cell["metadata"].get("nbgrader", {}).get("grade")
               and not cell["metadata"]["nbgrader"].get("solution"))


def released_answers(course, assignment):
    """``{grade_id: source}`` of the answer cells of the released (blank) notebook."""
    nb = json.loads((course / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")
            and not c["metadata"]["nbgrader"].get("grade")}


def forged(course, assignment, forgery):
    """The blank notebook's answer cells with one forgery in the first graded function's cell."""
    answers = released_answers(course, assignment)
    name, params, tensor = FIRST[assignment]
    if forgery in PREPENDED:
        answers[name] = PREPENDED[forgery] + answers[name]
    else:
        body = BODIES[forgery].replace("{tensor}", tensor)
        answers[name] = f"def {name}({params}):\n{body}"
    return answers


def submit(course, student, assignment, answers):
    nb = json.loads((course / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Both assignments graded: the blank, the reference and every forgery, in one run each."""
    course = tmp_path_factory.mktemp("forgery") / "course"
    course.mkdir()
    shutil.copytree(REPO / "solutions", course / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    config = (REPO / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(config)
    release.release(course, list(ASSIGNMENTS))
    rows = {}
    for assignment in ASSIGNMENTS:
        submit(course, "blank", assignment, {})
        submit(course, "reference", assignment,
               {gid: strip_markers(src) for gid, src in answer_cells(assignment).items()})
        for forgery in FORGERIES:
            submit(course, f"forge-{forgery}", assignment, forged(course, assignment, forgery))
        rows[assignment] = {row["student"]: row for row in autograde.grade(
            course, assignment, workers=2, progress=False)}
    return course, rows


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_scores_full_marks_and_the_blank_nothing(graded, assignment):
    _, rows = graded
    reference, blank = rows[assignment]["reference"], rows[assignment]["blank"]
    assert reference["autograded"] == autograded_points(assignment) > 0, reference
    assert blank["autograded"] == 0, blank


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_forgery_scores_what_the_blank_scores(graded, assignment, forgery):
    _, rows = graded
    row = rows[assignment][f"forge-{forgery}"]
    assert row["autograded"] == rows[assignment]["blank"]["autograded"] == 0, row


def _distinctive_lines(source):
    """Lines of a source long and specific enough that seeing one elsewhere means it leaked."""
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if len(text) >= 28 and not text.startswith(("#", '"""', "def ", "return ", "import ",
                                                    "from ")):
            lines.append(text)
    return lines


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_holds_no_hidden_test_and_no_reference(graded, assignment):
    course, _ = graded
    registry = load_assignment(assignment)
    secrets = []
    for test in registry.tests.values():
        secrets += _distinctive_lines(inspect.getsource(test.run))
    for name in registry.functions:
        secrets += _distinctive_lines(inspect.getsource(registry.reference(name)))
    assert len(secrets) > 20
    for student in ("blank", "forge-caller-frames", "reference"):
        page = (course / "feedback" / student / assignment / f"{assignment}.html").read_text()
        text = re.sub(r"<[^>]+>", "", page).replace("&quot;", '"').replace("&#39;", "'")
        text = re.sub(r"&[a-z]+;", " ", text)
        leaked = [line for line in secrets if line in text]
        # the reference student's own answers are their code, not a leak of the grader's
        if student == "reference":
            own = {line for src in answer_cells(assignment).values()
                   for line in _distinctive_lines(strip_markers(src))}
            leaked = [line for line in leaked if line not in own]
        assert not leaked, (student, leaked[:3])
        assert "BEGIN HIDDEN TESTS" not in page and "pruning_grader" not in page
