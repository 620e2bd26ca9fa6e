"""The nbgrader pipeline end to end, with the real nbgrader command line in a temporary course.

The class of ``tests/support/real_class.py`` (correct, untouched, one mistake, hanging,
crashing, cheating, broken, with cells removed, wrapping the kit) is released, submitted and
graded once per run by the ``real_class`` fixture (``tests/conftest.py``), two workers, sandbox
on; the tests read the grades, notes and feedback. The small-notebook tests at the end exercise
the kernel executor alone.
"""

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.utils import determine_grade

from pruning_grader.nbgrader import CheckedExecute, load_assignment
from pruning_kit.course import __main__ as cli
from pruning_kit.course import autograde, execute, grades, preflight, release, sample
from pruning_kit.course.course_dir import run_nbgrader
from support.real_class import BINARIZED_LAB_WRONG, KIT_WRAPPED, make_submission, submit

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = {name: load_assignment(name).functions for name in ("pruning", "binarized")}
MAX = {  # points per function: visible + hidden
    "pruning": {"magnitude_mask": 4, "global_magnitude_masks": 4, "snip_scores": 5,
                "snip_masks": 3, "imp_step": 5, "l1_filter_order": 3,
                "sensitivity_scan": 4, "sparsity_plan": 5, "remove_neurons": 5},
    "binarized": {"quantize_affine": 5, "dequantize_affine": 3, "quantize_symmetric": 4,
                  "binarize": 3, "SignSTE": 4, "BinaryLinear": 5, "quantize_bias": 3,
                  "integer_linear": 5, "quantized_linear": 5, "BinarizedMLP": 5,
                  "train_binarized": 5},
}


@pytest.fixture(scope="module")
def course(real_class):
    return real_class


def _grade_id(cell):
    return cell["metadata"].get("nbgrader", {}).get("grade_id")


def scores(row, assignment):
    return {name: row[name] for name in ASSIGNMENTS[assignment]}


def full(assignment, **changes):
    out = {name: float(p) for name, p in MAX[assignment].items()}
    out.update({k: float(v) for k, v in changes.items()})
    return out


# ---------------------------------------------------------------------------
# Release


def test_committed_release_is_up_to_date_with_the_solutions(course):
    problems = release.release_differences(course.root / "assignments", REPO / "assignments",
                                             sorted(ASSIGNMENTS))
    assert not problems, ("assignments/ is out of date with solutions/: run `make release`\n"
                          + "\n".join(problems))


def test_release_check_reports_stale_missing_and_extra_files(course, tmp_path):
    stale = tmp_path / "assignments"
    shutil.copytree(course.root / "assignments", stale)
    nb = json.loads((stale / "pruning" / "pruning.ipynb").read_text())
    nb["cells"][0]["source"] = "# an old title"
    (stale / "pruning" / "pruning.ipynb").write_text(json.dumps(nb))
    (stale / "binarized" / "binarized.ipynb").unlink()
    (stale / "binarized" / "notes.txt").write_text("hand-edited")
    problems = release.release_differences(course.root / "assignments", stale, sorted(ASSIGNMENTS))
    assert len(problems) == 3, problems
    assert any("pruning.ipynb differs" in p and "an old title" in p for p in problems)
    assert any("binarized.ipynb is missing" in p for p in problems)
    assert any("notes.txt is not generated" in p for p in problems)


def test_release_keeps_signatures_and_docstrings_and_hides_solutions_and_tests(course):
    for assignment, names in ASSIGNMENTS.items():
        text = (course.root / "assignments" / assignment / f"{assignment}.ipynb").read_text()
        nb = json.loads(text)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        for name in names:
            cell = next(c for c in nb["cells"] if _grade_id(c) == name)
            src = "".join(cell["source"])
            assert re.search(rf"^(def|class) {name}\b", src, re.M) and '"""' in src
            assert "raise NotImplementedError()" in src
            hidden = "".join(next(c for c in nb["cells"]
                                  if _grade_id(c) == f"test_{name}_hidden")["source"])
            assert all(line.lstrip().startswith("#") for line in hidden.splitlines() if line.strip())


# ---------------------------------------------------------------------------
# Scores


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_reference_solution_scores_full_marks(course, assignment):
    row = course.rows[assignment]["solution"]
    assert row["status"] == "graded", row
    assert scores(row, assignment) == full(assignment)
    assert row["autograded"] == sum(MAX[assignment].values())


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_released_notebook_scores_zero_and_grading_completes(course, assignment):
    row = course.rows[assignment]["released"]
    assert row["status"] == "graded", row
    assert row["autograded"] == 0.0 and set(scores(row, assignment).values()) == {0.0}


def test_one_wrong_function_loses_exactly_its_points(course):
    pruning = course.rows["pruning"]["one_wrong"]
    assert scores(pruning, "pruning") == full("pruning", global_magnitude_masks=0)
    # SignSTE is wrong; BinaryLinear (which uses it) is tested with a correct SignSTE. Each task
    # of parts 2 and 3 has one mistake too: each loses its own points and nothing else (the
    # bias scale, the input zero point, the output zero point, float activations, no clipping)
    # (the float activations keep the visible test's shapes and layers: only the hidden test,
    # which looks at what reaches the second layer, takes its points)
    binarized = course.rows["binarized"]["one_wrong"]
    assert scores(binarized, "binarized") == full("binarized", SignSTE=0, **{
        **{name: 0 for name in BINARIZED_LAB_WRONG}, "BinarizedMLP": 1})


def test_an_infinite_loop_times_out_its_cell_and_the_rest_is_graded(course):
    row = course.rows["pruning"]["hangs"]
    assert row["status"] == "graded"
    # the visible test has no ties and passes; the hidden test's ties loop forever
    # (its sparsity plan reaches only 5x: 2 of the 4 hidden points, see the lab tests below)
    assert scores(row, "pruning") == full("pruning", l1_filter_order=1, sparsity_plan=3)
    assert any("test_l1_filter_order_hidden: l1_filter_order did not finish in time" in n
               for n in row["notes"]), row["notes"]


def test_one_mistake_in_each_lab_task_loses_exactly_that_tasks_points(course):
    row = course.rows["pruning"]["lab_wrong"]
    assert row["status"] == "graded", row
    # the scan prunes every layer at once and the MACs count the biases: visible and hidden
    # tests fail; the plan is well formed (visible point) but misses the accuracy bar
    assert scores(row, "pruning") == full("pruning", sensitivity_scan=0, remove_neurons=0,
                                          sparsity_plan=1)
    html = (course.root / "feedback" / "lab_wrong" / "pruning" / "pruning.html").read_text()
    assert "EVERY layer" in html and "counts the biases too" in html


def test_a_plan_that_misses_the_target_gets_the_stated_credit(course):
    # the rule stated in part 8: 4 hidden points at 10x fewer weights within 1 point of the
    # dense accuracy, 2 at 5x, 0 otherwise; nbgrader takes the 2 from the number the cell shows
    assert course.rows["pruning"]["solution"]["sparsity_plan"] == 5.0
    assert course.rows["pruning"]["hangs"]["sparsity_plan"] == 3.0
    assert course.rows["pruning"]["lab_wrong"]["sparsity_plan"] == 1.0
    partial = (course.root / "feedback" / "hangs" / "pruning" / "pruning.html").read_text()
    assert "(5.54x fewer)" in partial and "2 of 4 points" in partial
    missed = (course.root / "feedback" / "lab_wrong" / "pruning" / "pruning.html").read_text()
    assert "The plan loses more than 1 point of accuracy" in missed and "(10.00x fewer)" in missed


def test_a_killed_kernel_costs_only_the_functions_that_kill_it(course):
    row = course.rows["pruning"]["crashes"]
    assert row["status"].startswith("graded"), row
    # imp_step kills its process (os._exit, then SIGKILL); snip_scores exhausts its memory
    # limit; l1_filter_order, tested after the crashes, still earns its points
    assert scores(row, "pruning") == full("pruning", imp_step=0, snip_scores=0)
    died = [n for n in row["notes"] if "stopped the process it ran in" in n]
    assert {n.split(":")[0] for n in died} == {"test_imp_step_visible", "test_imp_step_hidden"}, \
        row["notes"]


def test_cheating_scores_nothing(course):
    row = course.rows["pruning"]["cheats"]
    assert row["autograded"] == 0.0, row
    notes = "\n".join(row["notes"])
    assert "review: unnamed cell 0" in notes
    assert "test_imp_step_hidden was deleted; nbgrader put the original back" in notes
    assert "read-only cell test_magnitude_mask_visible was edited" in notes


def test_a_notebook_that_is_not_json_gets_a_message_and_the_others_are_graded(course):
    row = course.rows["pruning"]["broken_json"]
    assert row["status"] == "not graded: unreadable notebook" and row["autograded"] == 0.0
    assert any("is not valid JSON (line 1, column" in n for n in row["notes"]), row["notes"]
    graded = [r for r in course.rows["pruning"].values() if r["status"].startswith("graded")]
    assert len(graded) == len(course.rows["pruning"]) - 1


def test_removed_cells_are_restored_or_cost_only_their_function(course):
    row = course.rows["pruning"]["removed_cells"]
    assert row["status"] == "graded", row
    assert scores(row, "pruning") == full("pruning", l1_filter_order=0)
    notes = "\n".join(row["notes"])
    assert "test cell test_magnitude_mask_hidden was deleted; nbgrader put the original back" in notes
    assert "the cell for l1_filter_order was deleted: its tests score 0" in notes


def test_preflight_flags_code_that_needs_a_human_look(course):
    calls_library = "def quantize_affine(x, bits):\n    return pk.quant.quantize_affine(x, bits)\n"
    submit(course.root, "library_caller", "binarized",
           make_submission(course.root, "binarized", {"quantize_affine": calls_library}))
    try:
        gradable, notes = preflight.preflight(course.root, "binarized", "library_caller")
    finally:
        shutil.rmtree(course.root / "submitted" / "library_caller")
    assert gradable
    assert notes == ["review: quantize_affine calls the course library's version "
                     "('pk.quant.quantize_affine')"]


def test_grades_csv_feedback_and_summary(course):
    with (course.root / "autograded" / "grades_pruning.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert {r["student_id"] for r in table} == set(course.rows["pruning"])
    solution = next(r for r in table if r["student_id"] == "solution")
    auto = sum(MAX["pruning"].values())
    assert solution[f"autograded ({auto})"] == str(auto) and solution["magnitude_mask (4)"] == "4"
    # written answers wait for a human; left blank they score 0 at once
    assert solution["manual (14, empty until graded)"] == "" and solution["answer_rewinding (2)"] == ""
    released = next(r for r in table if r["student_id"] == "released")
    assert released["manual (14, empty until graded)"] == "0" and released["answer_rewinding (2)"] == "0"
    html = course.root / "feedback" / "one_wrong" / "pruning" / "pruning.html"
    assert "that is local pruning" in html.read_text()
    assert not (course.root / "feedback" / "broken_json" / "pruning").exists()
    for student in course.rows["pruning"]:
        assert student in course.printed
    assert "grades: " in course.printed


# ---------------------------------------------------------------------------
# The instructor's view: test submissions, kit wrappers, feedback, CSV, formgrader


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_the_sample_submission_scores_full_marks_with_no_notes(course, assignment):
    row = course.rows[assignment]["solution"]
    assert row["status"] == "graded" and row["notes"] == [], row
    assert scores(row, assignment) == full(assignment)
    nb = json.loads((course.root / "submitted" / "solution" / assignment / f"{assignment}.ipynb")
                    .read_text())
    filled = "\n".join("".join(c["source"]) for c in nb["cells"]
                       if c["metadata"].get("nbgrader", {}).get("solution"))
    assert "### BEGIN SOLUTION" not in filled and "# YOUR CODE HERE" not in filled
    assert "YOUR ANSWER HERE" not in filled
    with pytest.raises(ValueError, match="pass --force"):
        sample.sample_submission(course.root, assignment, "solution")


@pytest.mark.parametrize("assignment", sorted(KIT_WRAPPED))
def test_a_submission_wrapping_the_kit_scores_nothing_on_those_functions(course, assignment):
    row = course.rows[assignment]["kit_wrapper"]
    wrapped = KIT_WRAPPED[assignment]
    assert scores(row, assignment) == full(assignment, **{name: 0 for name in wrapped}), row
    for name in wrapped:
        assert any(re.search(rf"test_{name}_(visible|hidden): {name} called kit code that is off "
                             rf"while it is graded \(no points for the kit: .*pk\.quant\.", note)
                   for note in row["notes"]), row["notes"]


def _feedback(course, student, assignment="pruning"):
    return (course.root / "feedback" / student / assignment / f"{assignment}.html").read_text()


def assert_mathjax_is_local(html):
    assert "jupyter_server_mathjax/MathJax.js" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//[^\"' >]*mathjax", html, re.I)
    assert "cdnjs" not in html and "cdn.jsdelivr" not in html


def test_feedback_names_each_test_and_waits_for_the_hand_grading(course):
    html = _feedback(course, "solution")
    for name in ASSIGNMENTS["pruning"]:
        assert f"{name} — visible tests" in html and f"{name} — hidden tests" in html
    assert ">Test cell<" not in html
    # written answers nobody graded yet are not counted as 0
    assert "not graded yet" in html
    auto = course.rows["pruning"]["solution"]["autograded"]
    assert f"Score so far: {auto:g} / {auto:g};" in html
    assert "written answer" in html
    assert_mathjax_is_local(html)
    # blank answers are graded at once (0 points): nothing waits
    released = _feedback(course, "released")
    assert "not graded yet" not in released and "Score: 0 / " in released


def test_once_the_answers_are_graded_feedback_and_grades_show_the_real_score(course):
    from nbgrader.api import Gradebook

    student = "one_wrong"  # its written answers wait for a grader
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook("pruning", "pruning", student)
        answers = [g for g in submission.grades if g.cell.cell_type == "markdown"]
        for grade in answers:  # what the formgrader does when a grader enters a score
            grade.manual_score = grade.max_score
            grade.needs_manual_grade = False
        gb.db.commit()
        total, maximum = submission.score, submission.max_score
    run_nbgrader(course.root, "generate_feedback", "pruning", "--student", student, "--force")
    html = _feedback(course, student)
    assert "not graded yet" not in html and f"(Score: {total:g} / {maximum:g})" in html
    frame = grades.collect_grades(course.root, "pruning", [student], {})
    manual_max = frame.attrs["manual_max"]
    assert frame.loc[0, "manual_state"] == f"graded: {manual_max:g}/{manual_max:g}"
    assert frame.loc[0, "manual"] == manual_max


def test_grades_csv_columns_follow_the_notebook(course):
    with (course.root / "autograded" / "grades_pruning.csv").open() as handle:
        header = next(csv.reader(handle))
    nb = json.loads((course.root / "solutions" / "pruning" / "pruning.ipynb").read_text())
    expected = []
    for cell in nb["cells"]:
        gid, meta = _grade_id(cell), cell["metadata"].get("nbgrader", {})
        key = preflight.function_of(gid or "") or (gid if meta.get("grade") else None)
        if key and key not in expected:
            expected.append(key)
    parts = [re.sub(r" \([\d.]+\)$", "", h) for h in header[4:-1]]
    assert parts == expected
    assert header[:2] == ["student_id", "status"] and header[2].startswith("autograded (")


def test_the_summary_says_whether_the_hand_grading_is_done(course):
    line = next(l for l in course.printed.splitlines() if l.strip().startswith("solution "))
    assert re.search(r"\d+/\d+\s+graded; written answers not graded yet", line), line
    released = next(l for l in course.printed.splitlines() if l.strip().startswith("released "))
    assert "written answers graded: 0/" in released, released


def test_the_formgrader_serves_mathjax_itself(course):
    from nbgrader.api import Gradebook

    from support.local_server import jupyter_server

    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        submission_id = gb.find_submission_notebook("pruning", "pruning", "solution").id
    with jupyter_server(course.root) as server:
        status, page = server.get(f"/formgrader/submissions/{submission_id}/")
        assert status == 200 and "magnitude_mask" in page
        assert_mathjax_is_local(page)
        status, script = server.get("/static/jupyter_server_mathjax/MathJax.js")
        assert status == 200 and "MathJax" in script


def test_check_command_says_the_committed_release_is_current(capsys):
    assert cli.main(["--course-dir", str(REPO), "check"]) == 0
    assert "assignments/ is up to date with solutions/" in capsys.readouterr().out


def test_makefile_release_and_grade_targets():
    dry = subprocess.run(["make", "-n", "release", "grade", "ASSIGNMENT=binarized"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "-m pruning_kit.course release" in dry
    assert "-m pruning_kit.course grade binarized" in dry


def test_grade_rejects_unknown_assignments_and_empty_courses(course, tmp_path):
    with pytest.raises(ValueError, match="unknown assignment 'lottery'"):
        autograde.grade(course.root, "lottery")
    empty = tmp_path / "empty"
    shutil.copytree(course.root / "solutions", empty / "solutions")
    shutil.copy(course.root / "nbgrader_config.py", empty / "nbgrader_config.py")
    with pytest.raises(ValueError, match="no submissions"):
        autograde.grade(empty, "pruning")


# ---------------------------------------------------------------------------
# RobustExecute on small notebooks (no torch, fast kernels)


def _test_cell(source, gid, points=1):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": gid, "points": points, "schema_version": 3}
    return cell


def _execute(cells, tmp_path, **options):
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    options.setdefault("timeout", 60)
    executor = execute.RobustExecute(preamble="", **options)
    executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return nb


def _errors(cell):
    return [o["ename"] for o in cell.get("outputs", []) if o["output_type"] == "error"]


def _score(cell):
    return determine_grade(cell)[0]


def test_a_crash_fails_its_cell_and_grading_goes_on_with_the_definitions_replayed(tmp_path):
    nb = _execute([new_code_cell("import os\n\ndef f():\n    return 1"),
                   _test_cell("assert f() == 1", "before"),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("assert f() == 1", "after"),
                   new_code_cell("x = 2"),
                   _test_cell("assert x == 2", "later")], tmp_path)
    assert [_score(c) for c in nb.cells[1:4]] == [1, 0, 1] and _score(nb.cells[5]) == 1
    assert _errors(nb.cells[2]) == [execute.KERNEL_DIED]


def test_past_the_restart_limit_nothing_after_the_crash_counts_as_passed(tmp_path):
    nb = _execute([new_code_cell("import os"),
                   _test_cell("pass", "before"),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("pass", "after"),
                   _test_cell("pass", "later")], tmp_path, max_restarts=0)
    assert [_score(c) for c in nb.cells[1:]] == [1, 0, 0, 0]
    assert _errors(nb.cells[3]) == [execute.NOT_RUN]


def test_a_cell_that_ignores_the_interrupt_is_stopped_by_a_restart(tmp_path):
    stubborn = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    time.sleep(0.05)")
    nb = _execute([new_code_cell("y = 3"),
                   _test_cell(stubborn, "stuck"),
                   _test_cell("assert y == 3", "after")], tmp_path, timeout=2, iopub_timeout=1)
    assert _score(nb.cells[1]) == 0 and execute.KERNEL_DIED in _errors(nb.cells[1])
    assert _score(nb.cells[2]) == 1


def test_a_replayed_cell_that_kills_the_kernel_is_skipped(tmp_path):
    # kills the kernel only when run a second time, i.e. when replayed after a crash
    second_time_kills = ("import os, pathlib\nmarker = pathlib.Path('ran-once')\n"
                         "if marker.exists():\n    os._exit(3)\nmarker.write_text('x')\nz = 5")
    nb = _execute([new_code_cell("w = 1"),
                   new_code_cell(second_time_kills),
                   _test_cell("os._exit(1)", "crash"),
                   _test_cell("assert w == 1", "w_replayed"),
                   _test_cell("assert 'z' not in globals()", "z_skipped")], tmp_path)
    assert [_score(c) for c in nb.cells[2:]] == [0, 1, 1]


def test_the_kernel_runs_under_a_memory_limit(tmp_path):
    nb = _execute([_test_cell("import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
                              "assert soft == 1536 * 2 ** 20, soft\n"
                              "data = bytearray(2 * 2 ** 30)  # more than the limit", "limited")],
                  tmp_path, memory_limit_mb=1536)
    assert _errors(nb.cells[0]) == ["MemoryError"]


def test_nbgrader_config_uses_the_robust_steps_and_the_execute_timeout():
    namespace = {"get_config": lambda: config, "__file__": str(REPO / "nbgrader_config.py")}
    from traitlets.config import Config

    config = Config()
    exec((REPO / "nbgrader_config.py").read_text(), namespace)
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "assignments"
    assert config.CourseDirectory.root == str(REPO)
    assert config.Execute.timeout >= 30 and "timeout" not in config.ExecutePreprocessor
    assert CheckedExecute in config.Autograde.autograde_preprocessors
    assert config.RobustExecute.kernel_provisioner == "pruning-kit-sandbox"
    assert execute.RobustOverwriteCells in config.Autograde.sanitize_preprocessors
    assert config.OverwriteCells.add_missing_cells is True
