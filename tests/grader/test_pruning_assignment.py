"""The ``pruning`` assignment on the trusted checker: every clause of every contract is checked.

For each of the nine graded functions the contract is a list of numbered clauses
(``ASSIGNMENT.clauses``, in ``grader/pruning_grader/assignments/pruning``). Here:

- every clause has a planted mutant (``support/pruning_answers.MUTANTS``: the reference
  answer with one line changed) and every mutant names a clause;
- graded through the real checker with the sandbox on, each mutant fails its function's
  hidden test with exactly its clause's diagnosis code (so a check raising that code exists),
  and costs nothing to any other function;
- the reference and two differently written correct answers per function keep full marks;
  a blank release scores 0; the recognised mistakes (``MISTAKES``) are named;
- the lab's rule: the notebook trains the grader's dense model on the grader's split, plans
  earn the points the notebook states.

Gradings are batched: one notebook holds one mutant in each of several functions at once
(each function's cells are checked against its own answer and the course's versions of the
others), so a round of grading tells every mutant's effect. Tests that start sandboxed
processes are marked ``e2e``.
"""

import doctest
import json
import re
from collections import defaultdict

import pytest
import torch

from pruning_grader.assignments.pruning import ASSIGNMENT, checks, lab
from pruning_kit.course.testing import CheckFailed, expect_fractions
from support.assignments import REPO, answer_cells, solution, source_notebook
from support.assignments import test_cells as grade_ids
from support.grading import grade
from support.mutation import mutate
from support.pruning_answers import ALTERNATIVES, KIT_USERS, MISTAKES, MUTANTS, PLAN, PLANS

FUNCTIONS = ASSIGNMENT.functions
CLAUSES = {(c.function, c.number): c for c in ASSIGNMENT.clauses}


def clauses_of(function):
    return sorted((c for c in ASSIGNMENT.clauses if c.function == function),
                  key=lambda c: c.number)


def mutant_source(function, number):
    old, new = MUTANTS[(function, number)]
    return mutate(solution("pruning", function), old, new)


def mistake_source(function, code):
    answer = MISTAKES[(function, code)]
    if isinstance(answer, str):
        return answer.lstrip("\n")
    return mutate(solution("pruning", function), *answer)


def rounds(table):
    """Batches of answers: round i holds the i-th entry of every function (one per function)."""
    by_function = defaultdict(list)
    for key in table:
        by_function[key[0]].append(key)
    return [dict((keys[i][0], keys[i]) for keys in by_function.values() if i < len(keys))
            for i in range(max(len(keys) for keys in by_function.values()))]


def cells_of(functions):
    return [gid for f in functions for gid in grade_ids("pruning", f)]


def hidden(function):
    return f"test_{function}_hidden"


# ---------------------------------------------------------------------------
# The clause table, the mutants and the answers (no grading)


def test_every_clause_has_a_mutant_and_every_mutant_a_clause():
    for function in FUNCTIONS:
        numbers = [c.number for c in clauses_of(function)]
        assert numbers, f"{function} has no clauses"
        assert numbers == list(range(1, len(numbers) + 1)), (function, numbers)
        codes = [c.diagnosis for c in clauses_of(function)]
        assert len(set(codes)) == len(codes), f"{function}: two clauses share a diagnosis code"
        assert all(code.startswith(f"{function}/") for code in codes), codes
    assert set(MUTANTS) == set(CLAUSES), (set(CLAUSES) ^ set(MUTANTS))


def test_each_mutant_changes_one_line_of_the_reference():
    for (function, number), (old, new) in MUTANTS.items():
        reference = solution("pruning", function)
        changed = mutate(reference, old, new)
        assert changed != reference, (function, number)
        diff = [a for a, b in zip(reference.splitlines(), changed.splitlines()) if a != b]
        assert len(diff) == 1, (function, number, diff)
    for key, answer in MISTAKES.items():
        assert key[1] not in {c.diagnosis for c in ASSIGNMENT.clauses}, key  # named, not a clause
        mistake_source(*key)


def test_the_alternatives_are_written_differently():
    for function in FUNCTIONS:
        sources = [solution("pruning", function), *ALTERNATIVES[function]]
        assert len(ALTERNATIVES[function]) == 2, function
        bodies = [" ".join(s.split()) for s in sources]
        assert len(set(bodies)) == 3, function
        for source in ALTERNATIVES[function]:
            assert f"def {function}(" in source


def test_every_graded_function_has_a_hidden_test_worth_its_cell():
    cells = {c["metadata"]["nbgrader"]["grade_id"]: c for c in source_notebook("pruning")["cells"]
             if c["metadata"].get("nbgrader", {}).get("grade")}
    for function in FUNCTIONS:
        test = ASSIGNMENT.test_of(hidden(function))
        assert test is not None and test.function == function
        assert test.points == cells[hidden(function)]["metadata"]["nbgrader"]["points"]
        source = "".join(cells[hidden(function)]["source"])
        assert all(line.startswith("#") for line in source.strip().splitlines()), function


def test_the_notebook_no_longer_uses_the_old_in_kernel_checks():
    for folder in ("solutions", "assignments"):
        text = (REPO / folder / "pruning" / "pruning.ipynb").read_text()
        assert "pruning_kit.course.checks" not in text, folder
        assert "BEGIN HIDDEN TESTS" not in text, folder
    for gid in cells_of(FUNCTIONS):
        if gid.endswith("_visible"):
            source = next("".join(c["source"]) for c in source_notebook("pruning")["cells"]
                          if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)
            assert re.search(r"\bexpect(_\w+)?\(", source), gid


def test_the_reference_plan_line_is_what_the_plan_mutants_change():
    assert PLAN in solution("pruning", "sparsity_plan")


# ---------------------------------------------------------------------------
# The lab: the split, the dense model, the stated rule


def test_the_lab_setup_cell_trains_the_graders_dense_model_on_the_graders_split():
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in source_notebook("pruning")["cells"]}
    ns = {"__name__": "__main__"}
    for gid in ("parameters", "setup", "lab_setup"):
        exec(cells[gid], ns)  # noqa: S102 - the instructor's own cells
    train, val, test = lab.lab_data()
    for mine, theirs in ((ns["train5k"], train), (ns["val5k"], val), (ns["test5k"], test)):
        assert torch.equal(mine.images, theirs.images) and torch.equal(mine.labels, theirs.labels)
    assert len(val) == lab.VALIDATION_SIZE and len(train) + len(val) == 4000
    mine, theirs = ns["dense"].state_dict(), lab.train_dense().state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # the scan is run on the validation images, the plan tried on the test images
    sources = ["".join(c["source"]) for c in source_notebook("pruning")["cells"]]
    assert any("sensitivity_scan(dense, val5k" in text for text in sources)


def test_the_notebook_states_the_rule_the_checks_apply():
    prompt = next(" ".join("".join(c["source"]).split())
                  for c in source_notebook("pruning")["cells"]
                  if "".join(c["source"]).startswith("## 8. A per-layer sparsity plan"))
    total = sum(lab.plan_sizes().values())
    assert total == 266200 and "266{,}200" in prompt
    assert f"{total // 10:,}".replace(",", "{,}") in prompt  # 26,620
    assert f"{total // 5:,}".replace(",", "{,}") in prompt   # 53,240
    assert "c_\\text{dense} - 10" in prompt and lab.PLAN_RULE["within_correct"] == 10
    assert "3 epochs, Adam, learning rate 1e-3" in prompt and lab.FINE_TUNE == {
        "epochs": 3, "lr": 1e-3, "seed": 0}
    assert "validation" in prompt and lab.PLAN_RULE["full"] == (10, 4)
    assert lab.PLAN_RULE["partial"] == (5, 2)


def test_plans_earn_the_points_of_the_stated_rule():
    reference = lab.plan_outcome(json.loads(PLAN))
    assert reference.points == 4 and reference.dense_correct >= lab.PLAN_RULE["dense_floor"]
    assert lab.score_plan(json.loads(PLAN)) is None
    for plan, points in PLANS.items():
        outcome = lab.plan_outcome(json.loads(plan))
        assert outcome.points == points, (plan, outcome.text)
        with pytest.raises(checks.CheckFailed) as failure:
            lab.score_plan(json.loads(plan))
        assert getattr(failure.value, "points", 0) == points
        assert f"{points} of 4 points" in str(failure.value)
    uniform = lab.plan_outcome({"fc1": 0.9, "fc2": 0.9, "fc3": 0.9})
    assert uniform.kept * 10 == uniform.total == 266200  # on the size bar, not past it
    assert not uniform.within and uniform.points == 0


def test_the_try_plan_cell_shows_what_the_hidden_test_awards(monkeypatch):
    import pruning_kit as pk

    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in source_notebook("pruning")["cells"]}
    ns = {"__name__": "__main__"}
    for gid in ("parameters", "setup"):
        exec(cells[gid], ns)  # noqa: S102 - the instructor's own cells
    train, _, test = lab.lab_data()
    ns.update(dense=lab.train_dense(), train5k=train, test5k=test)
    exec(solution("pruning", "sparsity_plan"), ns)  # noqa: S102
    shown = []
    monkeypatch.setattr(pk.notebook, "say", shown.append)
    exec(cells["try_plan"], ns)  # noqa: S102
    outcome = lab.plan_outcome(json.loads(PLAN))
    assert len(shown) == 1 and f"{outcome.kept:,} of {outcome.total:,}" in shown[0]
    assert f"{outcome.pruned_correct} of 1,000" in shown[0] and "**4 of 4 points**" in shown[0]


def test_the_visible_plan_test_checks_the_form_only():
    bad = {
        "missing layer": ({"fc1": 0.9, "fc2": 0.9}, "has keys"),
        "extra layer": ({"fc1": 0.9, "fc2": 0.9, "fc3": 0.5, "fc4": 0.1}, "has keys"),
        "percent": ({"fc1": 92, "fc2": 88, "fc3": 50}, "a fraction in [0, 1]"),
        "string": ({"fc1": "0.9", "fc2": 0.9, "fc3": 0.5}, "expected a number"),
        "list": ([0.92, 0.88, 0.5], "expected a dict"),
        "bool": ({"fc1": True, "fc2": 0.9, "fc3": 0.5}, "expected a number"),
    }
    for label, (value, hint) in bad.items():
        with pytest.raises(CheckFailed, match=re.escape(hint)):
            expect_fractions(lambda: value, keys=lab.PLAN_LAYERS)
    assert expect_fractions(lambda: {"fc1": 1, "fc2": 0, "fc3": torch.tensor(0.5)},
                            keys=lab.PLAN_LAYERS) == {"fc1": 1.0, "fc2": 0.0, "fc3": 0.5}


def test_the_scan_check_allows_one_example_and_no_more():
    model, data = lab.trained_model("conv")
    exact = lab.scan(model, data, [0.0, 0.9])

    def one_off(model_, data_, sparsities):
        return {n: [v + 1 / len(data_) for v in exact[n]] for n in exact}

    def two_off(model_, data_, sparsities):
        return {n: [v - 2 / len(data_) for v in exact[n]] for n in exact}

    def normalises_in_place(model_, data_, sparsities):
        data_.images.mul_(2)
        return exact

    lab.check_sensitivity_scan(one_off, model, data, [0.0, 0.9])
    with pytest.raises(CheckFailed, match=r"the scan\['0'\] at sparsity 0 is") as failure:
        lab.check_sensitivity_scan(two_off, model, data, [0.0, 0.9])
    assert failure.value.diagnosis == "sensitivity_scan/values"
    with pytest.raises(CheckFailed, match="changed the data") as failure:
        lab.check_sensitivity_scan(normalises_in_place, model, data, [0.0, 0.9])
    assert failure.value.diagnosis == "sensitivity_scan/data"
    a, _ = lab.trained_model("conv")  # each call gets a fresh copy of one training
    with torch.no_grad():
        a[0].weight.zero_()
    assert lab.trained_model("conv")[0][0].weight.abs().sum() > 0


def test_the_removal_check_counts_macs_as_the_kit_does():
    import pruning_kit as pk

    model = lab.lenet(64, (12, 6), 10, seed=3)
    keep = {"fc1": lab.random_keep(12, 5, seed=1), "fc2": lab.random_keep(6, 2, seed=2)}
    small, saved = ASSIGNMENT.reference("remove_neurons")(model, keep)
    x = torch.zeros(1, 64)
    assert saved == pk.metrics.macs(model, x) - pk.metrics.macs(small, x) == 64 * 5 + (72 - 28) + 20
    lab.check_remove_neurons(ASSIGNMENT.reference("remove_neurons"), model, keep, images=True)


def test_no_solution_line_stands_in_the_released_notebook_and_kit_cells_are_locked():
    released = "\n".join(" ".join(line.split()) for cell in json.loads(
        (REPO / "assignments" / "pruning" / "pruning.ipynb").read_text())["cells"]
        for line in "".join(cell["source"]).splitlines())
    for gid, source in answer_cells("pruning").items():
        if "### BEGIN SOLUTION" not in source:
            continue
        block = source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        for line in block.splitlines():
            text = " ".join(line.split())
            if len(text) >= 20 and not text.startswith(("#", "return ", "import ")):
                assert text not in released, f"{gid}: {text!r} is in the released notebook"
    for cell in source_notebook("pruning")["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"\bpk\.(prune|structured)\.", text):
            assert cell["metadata"].get("nbgrader", {}).get("locked"), text[:80]


def test_the_grader_modules_examples_run():
    import pruning_grader.assignments.pruning as package

    for module in (package, checks, lab):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


# ---------------------------------------------------------------------------
# Graded through the real checker, sandbox on


def assert_full_marks(results, functions):
    for function in functions:
        for gid in grade_ids("pruning", function):
            result = results[gid]
            assert result.passed and result.points == result.max_points, (gid, result)


@pytest.mark.e2e
def test_the_reference_and_two_other_correct_answers_keep_full_marks():
    results = grade("pruning")
    assert set(results) == set(cells_of(FUNCTIONS))
    assert_full_marks(results, FUNCTIONS)
    for i in range(2):
        answers = {f: ALTERNATIVES[f][i].lstrip("\n") for f in FUNCTIONS}
        assert_full_marks(grade("pruning", answers), FUNCTIONS)


@pytest.mark.e2e
def test_a_blank_release_scores_nothing():
    released = json.loads((REPO / "assignments" / "pruning" / "pruning.ipynb").read_text())
    stubs = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
             for c in released["cells"]
             if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")}
    assert set(stubs) == set(answer_cells("pruning"))
    results = grade("pruning", stubs)
    assert results and all(r.points == 0 for r in results.values()), results
    assert all(r.status == "not-written" for r in results.values()), {
        gid: r.status for gid, r in results.items() if r.status != "not-written"}


@pytest.mark.e2e
def test_each_clause_mutant_fails_its_own_clause_and_nothing_else():
    """Round i grades the i-th mutant of every function at once (clause tables of different
    lengths: the later rounds grade fewer functions)."""
    seen = {}
    for index, batch in enumerate(rounds(MUTANTS)):
        answers = {f: mutant_source(*key) for f, key in batch.items()}
        # the first round grades every cell: the functions without a mutant keep full marks
        only = None if index == 0 else cells_of(batch)
        results = grade("pruning", answers, only=only)
        if index == 0:
            assert_full_marks(results, [f for f in FUNCTIONS if f not in batch])
        for function, key in batch.items():
            result = results[hidden(function)]
            seen[key] = (result.diagnosis, result.message)
            assert result.points < result.max_points, (key, result)
    wrong = {key: got for key, got in seen.items() if got[0] != CLAUSES[key].diagnosis}
    assert not wrong, wrong


@pytest.mark.e2e
def test_the_recognised_mistakes_are_named():
    seen = {}
    for batch in rounds(MISTAKES):
        answers = {f: mistake_source(*key) for f, key in batch.items()}
        results = grade("pruning", answers, only=[hidden(f) for f in batch])
        for function, key in batch.items():
            result = results[hidden(function)]
            seen[key] = result.diagnosis
            assert result.points == 0, (key, result)
    assert {key: code for key, code in seen.items() if code != key[1]} == {}


@pytest.mark.e2e
def test_a_plan_at_five_times_earns_partial_credit_with_its_reason():
    plan, points = next(iter(PLANS.items()))
    answer = mutate(solution("pruning", "sparsity_plan"), PLAN, plan)
    result = grade("pruning", {"sparsity_plan": answer},
                   only=[hidden("sparsity_plan")])[hidden("sparsity_plan")]
    assert (result.status, result.points) == ("partial", points), result
    assert result.diagnosis == "sparsity_plan/too-dense" and "10x" in result.message


@pytest.mark.e2e
def test_the_kit_is_not_there_to_do_the_graded_work():
    results = grade("pruning", {f: source.lstrip("\n") for f, source in KIT_USERS.items()},
                    only=[hidden(f) for f in KIT_USERS])
    for function in KIT_USERS:
        result = results[hidden(function)]
        assert (result.status, result.points) == ("kit-refused", 0), (function, result)
        assert f"while {function} is graded" in result.message
