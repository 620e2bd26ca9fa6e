"""No graded answer where a student can copy it: not in the lessons, not in the kit, not in the prompts.

- Every function and class a lesson defines is graded, under each graded name whose
  signature it fits, by that graded function's hidden tests through the real
  trusted checker (sandbox on): none may pass.
- No line of a reference solution (between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``) stands in a released notebook's text.
- A submission that hands a graded function's work to the kit
  (``tests/support/kit_wrappers.py``) scores 0 on it: the kit code that would do the
  work is absent from the student's process while grading. Graded with a kit view
  that keeps everything, the same wrappers pass, so the zero is the kit view's
  doing, not a broken wrapper.
"""

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from pruning_grader.checker import check_notebook
from pruning_grader.nbgrader import load_assignment
from support.assignments import ASSIGNMENTS, notebook_with
from support.grading import grade
from support.kit_wrappers import WITHOUT_KIT_VERSION, WRAPPERS

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("*.ipynb"))
REGISTRIES = {name: load_assignment(name) for name in ASSIGNMENTS}


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
# What the graded names look like


def graded_signatures():
    """{(assignment, name): ("function", positional count) or ("class", None)}.

    Read from each graded name's solution cell; names that are not a function or a
    class there (a plan given as a dict, say) have nothing a lesson could supply.
    """
    out = {}
    for assignment in ASSIGNMENTS:
        notebook = solution_cells(assignment)
        for name in REGISTRIES[assignment].functions:
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


def lesson_prelude_and_definitions(path):
    """``(prelude, {name: kind})`` of a lesson: the source of its imports, its assignments of
    literal values (the parameters cell) and its ``def``/``class`` statements, each guarded so a
    definition that needs more of the lesson is skipped; and the names it defines.

    Nothing else of the lesson runs: no data is loaded and nothing trains.
    """
    parts, defined = [], {}
    for cell in cells(path):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(MAGIC.sub("", source(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    continue
            elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                continue
            body = "\n".join("    " + line for line in ast.unparse(node).splitlines())
            parts.append(f"try:\n{body}\nexcept Exception:\n    pass\n")
            if isinstance(node, ast.FunctionDef):
                positional = len(node.args.posonlyargs) + len(node.args.args)
                required = positional - len(node.args.defaults)
                defined[node.name] = ("function", (required, positional,
                                                   node.args.vararg is not None))
            elif isinstance(node, ast.ClassDef):
                defined[node.name] = ("class", None)
    return "".join(parts), defined


def fits(kind, shape, graded):
    """True if a lesson definition of ``kind``/``shape`` can stand in for a graded name."""
    graded_kind, count = graded
    if kind != graded_kind:
        return False
    if kind == "class":
        return True
    required, positional, varargs = shape
    return required <= count and (count <= positional or varargs)


def rounds(path, assignment):
    """Answer-cell sources putting the lesson's definitions under the graded names they fit,
    a few notebooks' worth: round k gives each graded name its k-th candidate."""
    prelude, defined = lesson_prelude_and_definitions(path)
    per_name = {}
    for (graded_assignment, name), graded in GRADED.items():
        if graded_assignment != assignment:
            continue
        per_name[name] = [label for label, (kind, shape) in defined.items()
                          if label != name and fits(kind, shape, graded)]
    out = []
    for k in range(max((len(v) for v in per_name.values()), default=0)):
        answers = {name: f"{prelude}\n{name} = {labels[k]}\n"
                   for name, labels in per_name.items() if k < len(labels)}
        out.append((answers, {name: labels[k] for name, labels in per_name.items()
                              if k < len(labels)}))
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
    prelude, defined = lesson_prelude_and_definitions(path)
    assert set(defined) == {"half", "Box"} and "load()" not in prelude
    scope = {}
    exec(prelude, scope)
    assert scope["half"](4) == 2
    assert fits(*defined["half"], ("function", 1)) and not fits(*defined["half"], ("function", 2))


@pytest.mark.e2e
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_no_lesson_function_earns_a_graded_functions_points(lesson):
    earning = []
    for assignment in ASSIGNMENTS:
        for answers, labels in rounds(lesson, assignment):
            hidden = [f"test_{name}_hidden" for name in answers]
            results = grade(assignment, answers, only=hidden)
            earning += [f"{lesson.name} defines {labels[r.function]}, which earns points on the "
                        f"hidden tests of {r.function} ({assignment})"
                        for r in results.values() if r.points > 0]
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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_line_stands_in_a_released_notebook(assignment):
    lines = solution_lines(assignment)
    assert len(lines) >= len(REGISTRIES[assignment].functions)
    releases = {p.relative_to(REPO): released_text(p)
                for p in sorted((REPO / "assignments").glob("*/*.ipynb"))}
    assert releases, "no released notebooks under assignments/"
    found = [f"{gid}: {line!r} stands in {where}" for gid, line in lines
             for where, text in releases.items() if stands_in(line, text)]
    assert not found, ("The released text gives part of a solution away: state the contract and "
                       "the formula, not the code.\n" + "\n".join(found))


# ---------------------------------------------------------------------------
# Submissions that wrap the kit


def test_every_graded_function_has_a_kit_wrapper():
    missing = [f"{a}.{n}" for (a, n) in GRADED
               if n not in WRAPPERS.get(a, {}) and n not in WITHOUT_KIT_VERSION.get(a, {})]
    assert not missing, ("add a submission wrapping the kit to tests/support/kit_wrappers.py (or "
                         f"say in WITHOUT_KIT_VERSION why the kit has none): {missing}")
    unknown = [f"{a}.{n}" for a, table in WRAPPERS.items() for n in table
               if n not in REGISTRIES[a].functions]
    assert not unknown, f"wrappers for names that are not graded: {unknown}"


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def wrapped(request):
    """One assignment graded twice with every function wrapping the kit: with the kit view of
    grading, and with a view that keeps all of the kit."""
    assignment = request.param
    answers = WRAPPERS[assignment]
    registry = REGISTRIES[assignment]
    only = [gid for name in answers for gid in (f"test_{name}_visible", f"test_{name}_hidden")]
    notebook = notebook_with(assignment, answers)
    graded = check_notebook(registry, notebook, only=only)
    whole_kit = check_notebook(dataclasses.replace(registry, kit={}), notebook, only=only)
    return assignment, graded, whole_kit


@pytest.mark.e2e
def test_a_submission_wrapping_the_kit_scores_nothing(wrapped):
    assignment, graded, _ = wrapped
    for gid, result in graded.items():
        assert result.points == 0, (gid, result.status, result.message)
        assert result.status == "kit-refused", (gid, result.status, result.message)
        assert f"is not available while {result.function} is graded" in result.message


@pytest.mark.e2e
def test_the_kit_wrappers_are_right_when_the_kit_is_whole(wrapped):
    assignment, _, whole_kit = wrapped
    failing = {gid: (r.status, r.message) for gid, r in whole_kit.items() if not r.passed}
    assert not failing, failing
