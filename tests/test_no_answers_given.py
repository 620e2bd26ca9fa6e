"""No graded answer where a student can copy it: not in the lessons, not in the kit, not in the prompts.

- Every function and class a lesson defines is run, under each graded name whose
  signature it fits, through that graded function's hidden tests (in-process, as
  ``test_grading.run_tests`` runs them): none may pass.
- No line of a reference solution (between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``) stands in a released notebook's text.
- A submission that hands a graded function's work to the kit
  (``tests/kit_wrappers.py``) scores 0 on it: the kit refuses while the function
  is tested. With the refusal switched off the same wrappers pass, so the zero
  is the refusal's doing, not a broken wrapper.
"""

import ast
import json
import re
import signal
import textwrap
import types
from pathlib import Path

import pytest

from pruning_kit.course.checks import ASSIGNMENTS, core
from pruning_kit.course.execute import TIME_LIMIT

from kit_wrappers import WITHOUT_KIT_VERSION, WRAPPERS  # noqa: E402 - tests/ is on sys.path

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("*.ipynb"))
DEFAULT_TEST_LIMIT = 30  # seconds: RobustExecute.test_timeout in nbgrader_config.py


def cells(path):
    return json.loads(Path(path).read_text())["cells"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def grade_id(cell):
    return cell["metadata"].get("nbgrader", {}).get("grade_id")


def solution_cells(assignment):
    return {grade_id(c): c for c in cells(REPO / "solutions" / assignment / f"{assignment}.ipynb")
            if grade_id(c)}


# ---------------------------------------------------------------------------
# Running a graded function's tests in-process


class TookTooLong(BaseException):
    """Raised by the alarm: a BaseException, so ``core.call`` does not turn it into a failure."""


def _alarm(signum, frame):
    raise TookTooLong()


def run_test_cell(assignment, name, obj=None, implementation=None, kind="hidden"):
    """Run the ``kind`` test cell of ``name`` with ``obj`` (or ``implementation``) bound to it.

    Like ``test_grading.run_tests``: the notebook's parameters and setup cells, then
    the object, then the test cell, in one namespace. The cell runs under its
    grading time limit (``# grading time limit: N s``, else 30 s).

    Returns:
        None if the tests passed, else the failure message.
    """
    notebook = solution_cells(assignment)
    ns = {"__name__": "__main__"}
    for gid in ("parameters", "setup"):
        exec(source(notebook[gid]), ns)
    if implementation is not None:
        exec(textwrap.dedent(implementation), ns)
    else:
        ns[name] = obj
    test = source(notebook[f"test_{name}_{kind}"])
    limit = TIME_LIMIT.search(test)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, int(limit.group(1)) if limit else DEFAULT_TEST_LIMIT)
    try:
        exec(test, ns)
        return None
    except AssertionError as exc:
        return str(exc) or "AssertionError"
    except TookTooLong:
        return "ran past its time limit"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def kit_intact():
    """Fail loudly if a test left a kit function refusing (it would break every later test)."""
    yield
    assert core.SAFE.refusals is None, "a test left the kit's refusals switched on"


# ---------------------------------------------------------------------------
# What the graded names look like


def graded_signatures():
    """{(assignment, name): ("function", positional count) or ("class", None)}.

    Read from each graded name's solution cell; names that are not a function or a
    class there (a plan given as a dict, say) have nothing a lesson could supply.
    """
    out = {}
    for assignment, names in ASSIGNMENTS.items():
        notebook = solution_cells(assignment)
        for name in names:
            if name not in notebook:
                continue
            for node in ast.parse(source(notebook[name])).body:
                if isinstance(node, ast.FunctionDef) and node.name == name:
                    out[(assignment, name)] = ("function",
                                               len(node.args.posonlyargs) + len(node.args.args))
                elif isinstance(node, ast.ClassDef) and node.name == name:
                    out[(assignment, name)] = ("class", None)
    return out


GRADED = graded_signatures()


def accepts(function, count):
    """True if ``function`` can be called with ``count`` positional arguments."""
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    positional = code.co_posonlyargcount + code.co_argcount
    required = positional - len(function.__defaults__ or ())
    return required <= count and (count <= positional or bool(code.co_flags & 0x04))


# ---------------------------------------------------------------------------
# Lessons: every function and class they define


MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def lesson_definitions(path):
    """{name: object} of the top-level functions and classes of a lesson.

    Runs only the lesson's imports, its assignments of literal values (the
    parameters cell) and its ``def``/``class`` statements, in order, in one
    namespace: no data is loaded and nothing trains.
    """
    ns = {"__name__": "__lesson__"}
    defined = {}
    for cell in cells(path):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(MAGIC.sub("", source(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                pass
            elif isinstance(node, ast.Assign):
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    continue
            elif not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), ns)
            except Exception:  # noqa: BLE001 - a definition that needs more of the lesson
                continue
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined[node.name] = ns[node.name]
    return defined


def candidates(path):
    """[(lesson object name, assignment, graded name, object)] worth running."""
    out = []
    for label, obj in lesson_definitions(path).items():
        for (assignment, name), (kind, count) in GRADED.items():
            if kind == "class" and isinstance(obj, type):
                out.append((label, assignment, name, obj))
            elif kind == "function" and isinstance(obj, types.FunctionType) and accepts(obj, count):
                out.append((label, assignment, name, obj))
    return out


def test_the_lesson_scan_finds_definitions_and_graded_names(tmp_path):
    assert LESSONS and ("pruning", "magnitude_mask") in GRADED
    assert GRADED[("binarized", "BinaryLinear")] == ("class", None)
    assert GRADED[("pruning", "imp_step")] == ("function", 4)
    toy = {"cells": [{"cell_type": "code", "metadata": {}, "source": (
        "%matplotlib inline\nimport math\nSCALE = 2\ndata = load()\n"
        "def half(x):\n    return x / SCALE\n\nclass Box:\n    pass\n")}]}
    path = tmp_path / "toy_lesson.ipynb"
    path.write_text(json.dumps(toy))
    found = lesson_definitions(path)
    assert set(found) == {"half", "Box"} and found["half"](4) == 2
    assert accepts(found["half"], 1) and not accepts(found["half"], 2)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_no_lesson_function_earns_a_graded_functions_points(lesson, kit_intact, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a lesson function writes lands here
    earning = []
    for label, assignment, name, obj in candidates(lesson):
        if run_test_cell(assignment, name, obj) is None:
            earning.append(f"{lesson.name} defines {label}, which passes the hidden tests of "
                           f"{name} ({assignment})")
    assert not earning, ("A lesson gives a graded answer away: teach the idea with the kit, a toy "
                         "example or a different variant instead.\n" + "\n".join(earning))


# ---------------------------------------------------------------------------
# Released notebooks: no line of a solution in their text


SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)
MIN_CODE = 20      # characters: shorter code lines ("return masks", "else:") are too common to tell
MIN_COMMENT = 40   # characters: a short comment ("# ties") says nothing a prompt would not
TRIVIAL_CODE = [
    re.compile(r"^(def|class) \w+.*:$"),                   # a signature: the prompt gives it
    re.compile(r"^@\w"),                                    # a decorator
    re.compile(r"^(return|yield)( [\w.]+(\s*,\s*[\w.]+)*,?)?$"),  # return names
    re.compile(r"^(else|try|finally|pass|continue|break|except\b.*):?$"),
    re.compile(r"^(import|from) [\w.]+( import [\w., ]+)?( as \w+)?$"),
    re.compile(r"^super\(\)\.__init__\(.*\)$"),
]


def normalised(line):
    return " ".join(line.split())


def significant(line, markdown=False):
    """A solution line worth looking for in the released text (normalised), or None."""
    text = normalised(line)
    if markdown:
        return text if len(text) >= MIN_COMMENT else None
    if text.startswith("#"):
        return text if len(text) >= MIN_COMMENT else None
    if len(text) < MIN_CODE or any(p.match(text) for p in TRIVIAL_CODE):
        return None
    return text


def solution_lines(assignment):
    """[(grade_id, line)] of the significant lines between the solution markers."""
    out = []
    for gid, cell in solution_cells(assignment).items():
        for block in SOLUTION.findall(source(cell)):
            for line in block.splitlines():
                text = significant(line, markdown=cell["cell_type"] == "markdown")
                if text:
                    out.append((gid, text))
    return out


def released_text(path):
    return "\n".join(normalised(line) for cell in cells(path) for line in source(cell).splitlines())


def stands_in(line, text):
    """True if ``line`` occurs in ``text`` as whole tokens (not as the start of a longer name)."""
    return re.search(rf"(?<![\w.]){re.escape(line)}(?![\w(\[.])", text) is not None


def test_significant_lines_rule():
    assert significant("    return masks") is None
    assert significant("    return new_masks, rewound") is None
    assert significant("def magnitude_mask(weight, sparsity):") is None
    assert significant("    # ties") is None
    assert significant("    k = round(sparsity * weight.numel())") == "k = round(sparsity * weight.numel())"
    assert significant("    smallest = weight.detach().abs().flatten().argsort()[:k]")
    assert significant("The real-valued weights act as accumulators: the STE ...", markdown=True)
    assert stands_in("k = round(sparsity * n)", "so `k = round(sparsity * n)`.")
    assert not stands_in("rewound = init * new_mask", "rewound = init * new_masks[name]")


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_no_solution_line_stands_in_a_released_notebook(assignment):
    lines = solution_lines(assignment)
    assert len(lines) >= len(ASSIGNMENTS[assignment])
    releases = {p.relative_to(REPO): released_text(p)
                for p in sorted((REPO / "assignments").glob("*/*.ipynb"))}
    assert releases, "no released notebooks under assignments/"
    found = [f"{gid}: {line!r} stands in {where}" for gid, line in lines
             for where, text in releases.items() if stands_in(line, text)]
    assert not found, ("The released text gives part of a solution away: state the contract and "
                       "the formula, not the code.\n" + "\n".join(found))


# ---------------------------------------------------------------------------
# Submissions that wrap the kit


def trains(assignment, name):
    """True if the hidden tests of ``name`` declare a grading time limit (they train): slow."""
    cell = solution_cells(assignment).get(f"test_{name}_hidden")
    return cell is not None and TIME_LIMIT.search(source(cell)) is not None


WRAPPED = [pytest.param(a, n, marks=[pytest.mark.slow] if trains(a, n) else [])
           for a, names in ASSIGNMENTS.items() for n in names if n in WRAPPERS.get(a, {})]


def test_every_graded_function_has_a_kit_wrapper():
    assert WRAPPED
    missing = [f"{a}.{n}" for (a, n) in GRADED
               if n not in WRAPPERS.get(a, {}) and n not in WITHOUT_KIT_VERSION.get(a, {})]
    assert not missing, ("add a submission wrapping the kit to tests/kit_wrappers.py (or say in "
                         f"WITHOUT_KIT_VERSION why the kit has none): {missing}")
    unknown = [f"{a}.{n}" for a, table in WRAPPERS.items() for n in table
               if n not in ASSIGNMENTS.get(a, ())]
    assert not unknown, f"wrappers for names that are not graded: {unknown}"


@pytest.mark.parametrize("assignment,name", WRAPPED)
def test_a_submission_wrapping_the_kit_scores_nothing(assignment, name, kit_intact):
    for kind in ("visible", "hidden"):
        message = run_test_cell(assignment, name, implementation=WRAPPERS[assignment][name],
                                kind=kind)
        assert message is not None, f"the kit's {name} passed the {kind} tests of {name}"
        assert re.search(rf"KitRefused: pk\.[\w.]+ is off while {name} is graded", message), (
            f"{kind} tests of {name} failed, but not because the kit refused: {message}")


class _RefusalsOff(types.SimpleNamespace):
    """``core.SAFE`` with the refusals stuck at None: the kit works inside ``call``."""

    refusals = property(lambda self: None, lambda self, value: None)


@pytest.mark.parametrize("assignment,name", WRAPPED)
def test_the_kit_wrappers_are_right_when_the_kit_is_allowed(assignment, name, monkeypatch,
                                                           kit_intact):
    # reload() of the checks keeps core.SAFE (captured once), so this survives the test cells
    off = _RefusalsOff(**{k: v for k, v in vars(core.SAFE).items() if k != "refusals"})
    monkeypatch.setattr(core, "SAFE", off)
    for module in list(core.SAFE.module_dicts.values()):
        if module.get("SAFE") is not off and "SAFE" in module:
            monkeypatch.setitem(module, "SAFE", off)
    for kind in ("visible", "hidden"):
        message = run_test_cell(assignment, name, implementation=WRAPPERS[assignment][name],
                                kind=kind)
        assert message is None, f"{name} wrapping the kit fails its {kind} tests: {message}"
