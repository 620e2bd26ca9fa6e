"""What the instructor sees, without running nbgrader: feedback pages, the formgrader page, test submissions.

The end-to-end versions (real ``nbgrader autograde`` / ``generate_feedback``, a
real formgrader serving MathJax) are in ``tests/test_assignments.py``.
"""

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

import nbgrader
from pruning_grader.nbgrader import load_assignment
from pruning_kit.course import __main__ as cli
from pruning_kit.course import feedback, preflight, sample

ASSIGNMENTS = {name: load_assignment(name).functions for name in ("pruning", "binarized")}

from support.local_server import jupyter_server  # noqa: E402 - tests/ is on sys.path under pytest
from support.browser import CHROMIUM_FLAGS  # noqa: E402  (the chromium fixture: conftest.py)
from support.feedback_pages import course_config, graded_notebook, render  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXTERNAL_MATHJAX = re.compile(r"(src|href)=[\"']?(https?:)?//[^\"' >]*mathjax", re.I)


def assert_mathjax_is_local(html):
    assert "/static/jupyter_server_mathjax/MathJax.js" in html
    assert not EXTERNAL_MATHJAX.search(html) and "cdnjs" not in html


def test_the_course_config_plugs_in_the_feedback_step_and_templates():
    config = course_config()
    assert feedback.FeedbackGrades in config.GenerateFeedback.preprocessors
    assert config.HTMLExporter.extra_template_basedirs[0] == str(feedback.TEMPLATES)


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_feedback_labels_each_cell_and_waits_for_the_hand_grading(assignment):
    nb, resources = graded_notebook(assignment)
    html = render("feedback", nb, resources)
    tested = {preflight.function_of(c.metadata.get("nbgrader", {}).get("grade_id", "")) for c in nb.cells}
    assert tested & set(ASSIGNMENTS[assignment])
    for name in tested & set(ASSIGNMENTS[assignment]):
        assert f"{name} — hidden tests" in html and f"{name} — visible tests" in html
    assert ">Test cell<" not in html and ">Written response<" not in html
    info = resources["nbgrader"]
    assert f"Score so far: {info['auto_score']:g} / {info['auto_max']:g}; " \
           f"{info['pending_points']:g} points of written answers not graded yet" in html
    assert html.count("not graded yet") >= 1 + sum(
        1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("pending"))
    assert "written answer" in html
    assert_mathjax_is_local(html)


def test_graded_feedback_shows_the_real_score():
    nb, resources = graded_notebook("pruning", pending=False)
    html = render("feedback", nb, resources)
    info = resources["nbgrader"]
    assert "not graded yet" not in html
    assert f"(Score: {info['max_score']:g} / {info['max_score']:g})" in html


def test_the_formgrader_page_loads_mathjax_from_the_server():
    nb, _ = graded_notebook("binarized")
    resources = {"assignment_id": "binarized", "notebook_id": "binarized", "submission_id": "x",
                 "index": 0, "total": 1, "base_url": "/user/teacher", "student": "s",
                 "last_name": None, "first_name": None, "notebook_path": "binarized.ipynb"}
    html = render("formgrade", nb, resources)
    assert "quantize_affine" in html
    assert_mathjax_is_local(html)
    # nbconvert's own default (a CDN) is what the course's loader replaces
    default = render("classic", nb, {})
    assert EXTERNAL_MATHJAX.search(default) or "cdnjs" in default


def test_one_mathjax_loader_for_both_pages():
    loaders = [feedback.TEMPLATES / page / "mathjax.html.j2" for page in ("feedback", "formgrade")]
    assert loaders[0].read_text() == loaders[1].read_text()
    assert feedback.MATHJAX_PATH.split("?")[0] in loaders[0].read_text()


def test_cell_labels():
    def cell(kind="code", **meta):
        return {"cell_type": kind, "metadata": {"nbgrader": meta}}

    assert feedback.cell_label(cell(grade=True, solution=False,
                                    grade_id="test_SignSTE_visible")) == "SignSTE — visible tests"
    assert feedback.cell_label(cell("markdown", grade=True, solution=True,
                                    grade_id="answer_ste")) == "answer_ste — written answer"
    assert feedback.cell_label(cell(solution=True, grade=False,
                                    grade_id="binarize")) == "binarize — your code"
    assert feedback.cell_label(cell(grade=True, solution=False, grade_id="setup_check")) == \
        "setup_check — tests"
    assert feedback.cell_label(cell(grade=False, solution=False, grade_id="setup")) is None


# ---------------------------------------------------------------------------
# Test submissions from the reference solution


def test_strip_solution_markers_keeps_the_code():
    text = "def f(x):\n    '''Doc.'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert sample.strip_solution_markers(text) == "def f(x):\n    '''Doc.'''\n    return x\n"


@pytest.fixture
def small_course(tmp_path):
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(REPO / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    return tmp_path


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_the_sample_submission_is_the_release_with_the_reference_code(small_course, assignment,
                                                                     capsys):
    assert cli.main(["--course-dir", str(small_course), "sample-submission", assignment,
                           "demo"]) == 0
    path = small_course / "submitted" / "demo" / assignment / f"{assignment}.ipynb"
    assert f"wrote {path}" in capsys.readouterr().out
    submitted = json.loads(path.read_text())
    released = json.loads((small_course / "assignments" / assignment / f"{assignment}.ipynb")
                          .read_text())
    assert len(submitted["cells"]) == len(released["cells"])
    text = json.dumps(submitted)
    assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()\\n" not in text
    assert "YOUR ANSWER HERE" not in text
    for got, given in zip(submitted["cells"], released["cells"]):
        meta = given["metadata"].get("nbgrader", {})
        if not meta.get("solution"):
            assert got == given  # tests and prompts exactly as released: no "edited" notes
    assert preflight.preflight(small_course, assignment, "demo") == (True, [])
    # a second call does not overwrite a submission unless told to
    assert cli.main(["--course-dir", str(small_course), "sample-submission", assignment,
                           "demo"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert cli.main(["--course-dir", str(small_course), "sample-submission", assignment,
                           "demo", "--force"]) == 0


def test_the_sample_submission_checks_its_arguments(small_course):
    with pytest.raises(ValueError, match="unknown assignment"):
        sample.sample_submission(small_course, "lottery", "demo")
    with pytest.raises(ValueError, match="student must be a folder name"):
        sample.sample_submission(small_course, "pruning", "../escape")
    os.remove(small_course / "assignments" / "pruning" / "pruning.ipynb")
    with pytest.raises(ValueError, match="release the assignment first"):
        sample.sample_submission(small_course, "pruning", "demo")


# ---------------------------------------------------------------------------
# Offline math in a real browser


@pytest.mark.browser
def test_feedback_math_is_typeset_offline_in_a_browser(chromium, tmp_path):
    """A feedback page served by a Jupyter server typesets its LaTeX with no request leaving it."""
    from playwright.sync_api import sync_playwright

    nb, resources = graded_notebook("binarized")
    assert any("$" in c.source for c in nb.cells if c.cell_type == "markdown")
    (tmp_path / "feedback.html").write_text(render("feedback", nb, resources))
    with jupyter_server(tmp_path) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            outside = []

            def local_only(route):
                if route.request.url.startswith(server.url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            page.goto(f"{server.url}/files/feedback.html?token={server.token}")
            page.wait_for_function("document.querySelectorAll('.MathJax, .MathJax_CHTML').length"
                                   " > 0", timeout=60_000)
        finally:
            browser.close()
    assert outside == []


# ---------------------------------------------------------------------------
# The README's instructor guide


def instructor_guide():
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Instructor guide")
    return readme[start:readme.find("\n## ", start + 1)]


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_the_instructor_guide_lists_each_part_with_its_points_and_time(assignment):
    guide = instructor_guide()
    intro = "".join(nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb",
                                  as_version=4).cells[0].source)
    total = re.search(r"\*\*Points: (\d+) in total\*\* — (\d+) autograded .* and (\d+) graded "
                      r"by hand", intro)
    assert total, "the notebook's intro states no points"
    assert f"**`{assignment}`: {total.group(1)} points**, {total.group(2)} autograded and " \
           f"{total.group(3)} graded by hand" in guide
    rows = [line for line in intro.splitlines() if line.startswith("|")]
    assert rows and "plan for" in rows[0], "the points table gives no time per part"
    missing = [row for row in rows if row not in guide]
    assert not missing, f"README's table of {assignment} differs from the notebook's: {missing}"


def test_the_instructor_guide_says_how_to_run_and_submit():
    guide = instructor_guide()
    assert "Kernel → Restart Kernel and Run All Cells…" in guide
    assert "Restart & Run All" not in (REPO / "README.md").read_text()
    assert "python -m pruning_kit.course sample-submission" in guide
    assert "KitRefused" in guide and "not graded yet" in guide


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_the_notebooks_use_jupyterlab_4_menu_names(assignment):
    for folder in ("solutions", "assignments"):
        text = (REPO / folder / assignment / f"{assignment}.ipynb").read_text()
        assert "Restart & Run All" not in text and "Restart and Run All" not in text
        assert "Restart Kernel and Run All Cells" in text
