"""Grades no submission can forge: each forgery mounted through the real pipeline scores nothing.

The class of ``tests/support/real_class.py`` is graded once per run (the ``real_class``
fixture): both assignments released into a temporary course and graded with the course's own
``nbgrader_config.py`` by the real ``nbgrader`` command line, two workers, sandbox on. Every
forgery of ``tests/support/forgeries.py`` is a *blank* submission (the released notebook, no
function written) with one change in its first answer cell; each earned every autograded point
when test cells ran in the student's kernel after the student's code. Now every test cell is
decided by the trusted checker in the grader's process, and the student's code runs in another,
sandboxed process that only answers calls with plain data: each forgery scores exactly what the
blank submission scores (0), while the reference solution, graded in the same run, scores full
marks.

The same run shows that the feedback page of a graded submission holds none of the hidden tests'
source and none of the reference solutions.
"""

import pytest

from support.assignments import ASSIGNMENTS, answer_cells, source_notebook, strip_markers
from support.forgeries import FORGERIES
from support.secrets import distinctive_lines, leaks, secret_lines

pytestmark = pytest.mark.e2e


def autograded_points(assignment):
    """The autograded points of an assignment: the sum over its test cells."""
    return sum(cell["metadata"]["nbgrader"]["points"]
               for cell in source_notebook(assignment)["cells"]
               if cell["metadata"].get("nbgrader", {}).get("grade")
               and not cell["metadata"]["nbgrader"].get("solution"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_scores_full_marks_and_the_blank_nothing(real_class, assignment):
    reference, blank = real_class.rows[assignment]["solution"], real_class.rows[assignment]["released"]
    assert reference["autograded"] == autograded_points(assignment) > 0, reference
    assert blank["autograded"] == 0, blank


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_forgery_scores_what_the_blank_scores(real_class, assignment, forgery):
    row = real_class.rows[assignment][f"forge-{forgery}"]
    assert row["autograded"] == real_class.rows[assignment]["released"]["autograded"] == 0, row


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_holds_no_hidden_test_and_no_reference(real_class, assignment):
    secrets = secret_lines([assignment])
    assert len(secrets) > 20
    own = {line for source in answer_cells(assignment).values()
           for line in distinctive_lines(strip_markers(source))}
    for student in ("released", "forge-caller-frames", "solution"):
        page = real_class.root / "feedback" / student / assignment / f"{assignment}.html"
        if not page.exists():
            continue
        html = page.read_text()
        # a student's own answers are theirs: the sample submission holds the solution's lines
        found = [line for line in leaks(html, secrets)
                 if not (student == "solution" and any(line in mine for mine in own))]
        assert not found, (student, found[:3])
        assert "BEGIN HIDDEN TESTS" not in html and "pruning_grader" not in html
