"""The ``binarized`` assignment on the trusted checker: every clause of every contract is checked.

``pruning_grader.assignments.binarized`` holds each graded function's contract as numbered
clauses, each with the diagnosis code its check raises; ``tests/support/binarized_answers.py``
holds one planted mistake per clause (the reference answer with one line changed) and two other
correct answers per function.

Fast tests: the clause table and the mutants line up one to one, every mutant changes one line,
and the hidden tests' training settings are the notebook's.

End-to-end tests (``e2e``, the real checker with the sandbox on; about 3 minutes on a quiet
2-core machine): in grading round ``k`` every function with a clause ``k`` gets that clause's
mutant at once (each function's cells are checked with its own answer and the course's versions
of the others, so one notebook tells each mutant's effect); its hidden test must fail with the
clause's code, and every function without a mutant in that round must keep all its points. The
reference, and each set of alternative answers, keep full marks; the blank release scores 0; the
kit's versions earn nothing.
"""

from __future__ import annotations

import difflib
import json
import re

import pytest

from pruning_grader.assignments.binarized import ASSIGNMENT
from pruning_grader.assignments.binarized.network import TRAINING
from support.assignments import REPO, solution, source_notebook
from support.assignments import test_cells as cells_of_tests
from support.binarized_answers import ALTERNATIVES, KIT_BASED, MUTANTS
from support.grading import grade
from support.mutation import mutate

NAME = "binarized"
FUNCTIONS = ASSIGNMENT.functions
CLAUSES = {(clause.function, clause.number): clause for clause in ASSIGNMENT.clauses}
ROUNDS = max(number for _, number in CLAUSES)


def mutant(function, number):
    return mutate(solution(NAME, function), *MUTANTS[(function, number)])


def test_every_clause_has_a_mutant_and_every_mutant_a_clause():
    assert set(MUTANTS) == set(CLAUSES), set(MUTANTS) ^ set(CLAUSES)
    for function in FUNCTIONS:
        numbers = sorted(n for f, n in CLAUSES if f == function)
        assert numbers == list(range(1, len(numbers) + 1)) and numbers, function


def test_every_clause_has_its_own_diagnosis_code_and_a_hidden_test():
    codes = [clause.diagnosis for clause in ASSIGNMENT.clauses]
    assert len(codes) == len(set(codes))
    for clause in ASSIGNMENT.clauses:
        assert clause.diagnosis.startswith(f"{clause.function}/"), clause
    assert {test.function for test in ASSIGNMENT.tests.values()} == set(FUNCTIONS)


def test_every_mutant_changes_one_line_of_the_reference():
    for (function, number), (old, new) in MUTANTS.items():
        before = solution(NAME, function).splitlines()
        after = mutant(function, number).splitlines()
        changed = [line for line in difflib.unified_diff(before, after, lineterm="", n=0)
                   if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))]
        assert len(changed) == 2, (function, number, changed)


def test_the_hidden_training_tests_train_what_the_notebook_says():
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in source_notebook(NAME)["cells"]}
    assert TRAINING == {"hidden": 256, "epochs": 10, "seed": 0, "threshold": 0.90}
    parameters = cells["parameters"]
    assert "HIDDEN = 256" in parameters and "EPOCHS = 10" in parameters  # the student's run
    for function in ("BinarizedMLP", "train_binarized"):
        assert ASSIGNMENT.test_of(f"test_{function}_hidden").time_limit >= 120
    # the hidden test cells hold no tests: only a comment that the grader runs them
    for gid in cells_of_tests(NAME):
        if gid.endswith("_hidden"):
            assert all(line.startswith("#") for line in cells[gid].splitlines()), gid


def test_written_answers_are_a_quarter_of_the_points_and_each_part_has_a_time():
    cells = source_notebook(NAME)["cells"]
    graded = [c["metadata"]["nbgrader"] for c in cells
              if c["metadata"].get("nbgrader", {}).get("grade")]
    manual = sum(m["points"] for m in graded if m["solution"])
    total = sum(m["points"] for m in graded)
    assert 4 * manual >= total, (manual, total)
    intro = "".join(cells[0]["source"])
    for part in (1, 2, 3):
        assert re.search(rf"\| part {part}: about [\d½]+ hours? \|", intro), part


def test_the_bound_the_notebook_states_holds_at_its_tie_example():
    # 1.1 says: at a tie a value can land half a step past the top level and is clamped back,
    # still within S/2 (x = [-1.5, 1.5] at 2 bits: S = 1, Z = 2, round(1.5) + 2 = 4 -> 3)
    import torch

    from pruning_grader.assignments.binarized import references

    x = torch.tensor([-1.5, 1.5])
    q, scale, zero_point = references.quantize_affine(x, 2)
    assert (q.tolist(), scale, zero_point) == ([0, 3], 1.0, 2)
    assert round(1.5) + zero_point == 4
    back = references.dequantize_affine(q, scale, zero_point)
    assert float((back - x).abs().max()) == scale / 2
    text = "".join(source_notebook(NAME)["cells"][3]["source"])
    assert "round}(1.5) + 2 = 4$ is clamped to\n$3$" in text and "within $S/2$" in text


# ---------------------------------------------------------------------------
# Through the real checker (sandbox on)

def _failures(results, expected_to_pass):
    return {gid: (r.status, r.message) for gid, r in results.items()
            if r.function in expected_to_pass and not r.passed}


@pytest.mark.e2e
@pytest.mark.parametrize("number", range(1, ROUNDS + 1))
def test_each_mutant_loses_its_functions_points_and_nothing_else(number):
    answers = {f: mutant(f, number) for f in FUNCTIONS if (f, number) in CLAUSES}
    results = grade(NAME, answers)
    assert set(results) == set(cells_of_tests(NAME))
    for function, source in answers.items():
        hidden = results[f"test_{function}_hidden"]
        expected = CLAUSES[(function, number)].diagnosis
        assert (hidden.points, hidden.diagnosis) == (0, expected), (function, number,
                                                                     hidden.message)
    assert not _failures(results, set(FUNCTIONS) - set(answers))


@pytest.mark.e2e
def test_the_reference_solution_keeps_full_marks():
    results = grade(NAME)
    assert set(results) == set(cells_of_tests(NAME))
    assert not _failures(results, FUNCTIONS)


@pytest.mark.e2e
@pytest.mark.parametrize("which", [0, 1])
def test_other_correct_answers_keep_full_marks(which):
    answers = {f: ALTERNATIVES[f][which] for f in FUNCTIONS}
    results = grade(NAME, answers)
    assert not _failures(results, FUNCTIONS)


def _released_answers():
    nb = json.loads((REPO / "assignments" / NAME / f"{NAME}.ipynb").read_text())
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")
            and not c["metadata"]["nbgrader"].get("grade")}


@pytest.mark.e2e
def test_the_blank_release_scores_nothing():
    answers = _released_answers()
    assert set(answers) == set(FUNCTIONS)
    results = grade(NAME, answers)
    assert set(results) == set(cells_of_tests(NAME))
    for gid, result in results.items():
        assert result.points == 0, (gid, result.status, result.message)
        assert result.status == "not-written", (gid, result.status, result.message)


@pytest.mark.e2e
def test_unwritten_and_kit_based_answers_cost_only_their_own_points():
    # SignSTE's second alternative calls binarize and quantized_linear's first calls
    # integer_linear: while they are tested, the course's versions stand in for the unwritten
    # ones. The kit's versions refuse while grading and earn nothing.
    blank = _released_answers()
    answers = {"binarize": blank["binarize"], "SignSTE": ALTERNATIVES["SignSTE"][1],
               "integer_linear": blank["integer_linear"],
               "quantized_linear": ALTERNATIVES["quantized_linear"][0], **KIT_BASED}
    results = grade(NAME, answers, only=[gid for f in answers for gid in cells_of_tests(NAME, f)])
    assert not _failures(results, {"SignSTE", "quantized_linear"})
    for function in ("binarize", "integer_linear"):
        assert results[f"test_{function}_hidden"].status == "not-written", function
    for function in KIT_BASED:
        for gid in cells_of_tests(NAME, function):
            assert results[gid].points == 0, (gid, results[gid].message)
        hidden = results[f"test_{function}_hidden"]
        assert hidden.status == "kit-refused", (function, hidden.status, hidden.message)
        assert re.search(r"pk\.quant\.\w+ is not available while \w+ is graded", hidden.message)
