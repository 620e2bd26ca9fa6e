"""The class report: a synthetic class graded by the real pipeline, read back.

The ``toolbox`` test course (``tests/support/toolbox.py``) is released, a class of
eleven submits (five independent correct solutions written differently, two
near-copies, planted mistakes in known numbers, a crash, an endless loop, a late
submission), ``make grade``'s ``grade()`` grades it with nbgrader and the trusted
checker into sqlite, and, from a copy of the course, with nbgrader into a real
PostgreSQL server. The report must count every planted mistake exactly,
flag the two copies and no independent solution, list the crash, the timeout,
the late one and the unread written answers, be the same page from either
gradebook, and open in headless Chromium with its figures drawn.

The fast tests at the end check the similarity, the lesson links and the
formgrader's link without grading anything.
"""

import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from pruning_kit.course import __main__ as cli
from pruning_kit.course import autograde
from pruning_kit.course.gradebook import ensure_gradebook, open_gradebook
from pruning_kit.course.report import build_report, default_path, lessons
from pruning_kit.course.report.similarity import similar_pairs
from support import toolbox
from support.browser import CHROMIUM_FLAGS  # the chromium fixture is in conftest.py

REPO = Path(__file__).resolve().parents[1]
SECTIONS = {"top_k": ("01_toolbox", "k largest"), "moving_average": ("01_toolbox", "averages"),
            "histogram": ("01_toolbox", "histograms")}
HAND_GRADED = {"ada": 2.0, "bob": 1.0, "cyd": 0.0}
"""Written answers a human has graded (the others wait)."""


class ReportReader(HTMLParser):
    """The report's numbers, read back from its ``data-`` attributes."""

    def __init__(self, html):
        super().__init__()
        self.diagnoses, self.attention, self.pairs, self.facts = {}, {}, [], {}
        self.images, self.links, self.examples, self.pending = [], {}, {}, []
        self._row = self._fact = self._example = self._link = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-diagnosis" in attrs:
            self._row = attrs["data-diagnosis"]
            self.diagnoses[self._row] = int(attrs["data-students"])
        if "data-student" in attrs:
            self.attention[attrs["data-student"]] = attrs["data-kinds"].split()
        if "data-pending" in attrs:
            self.pending.append(attrs["data-pending"])
        if "data-pair" in attrs:
            self.pairs.append(tuple(attrs["data-pair"].split()))
        if "data-fact" in attrs:
            self._fact = attrs["data-fact"]
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a" and attrs.get("class") == "lesson" and self._row:
            self.links[self._row] = attrs["href"]
        if tag == "td" and attrs.get("class") == "example" and self._row:
            self._example = self._row

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._example = None
        if tag == "b":
            self._fact = None

    def handle_data(self, data):
        if self._fact:
            self.facts[self._fact] = self.facts.get(self._fact, "") + data
        if self._example:
            self.examples[self._example] = self.examples.get(self._example, "") + data


def toolbox_lesson(course):
    """A lesson for the toolbox course, so diagnoses have sections to link to."""
    folder = course / "lessons"
    folder.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# Lesson 1 — Toolbox"),
                             new_markdown_cell("## 1. The k largest, by sorting"),
                             new_markdown_cell("## 2. Moving averages"),
                             new_markdown_cell("## 3. Histograms and their last bin")])
    nbformat.write(nb, folder / "01_toolbox.ipynb")


def set_due_date(db_url):
    with open_gradebook(db_url) as gb:
        gb.update_or_create_assignment(toolbox.NAME, duedate=toolbox.DUE)


def grade_by_hand(db_url):
    """What a grader does in the formgrader: points for some written answers."""
    with open_gradebook(db_url) as gb:
        for student, points in HAND_GRADED.items():
            grade = gb.find_grade("answer_written", toolbox.NAME, toolbox.NAME, student)
            grade.manual_score = points
        gb.db.commit()


def grade_class(course, db_url=None, workers=None):
    students = sorted(toolbox.CLASS)
    ensure_gradebook(course, toolbox.NAME, students, db_url)
    url = db_url or f"sqlite:///{course / 'gradebook.db'}"
    set_due_date(url)
    summary = io.StringIO()
    rows = autograde.grade(course, toolbox.NAME, feedback=False, out=summary, workers=workers,
                           db_url=db_url)
    log = course / "autograded" / f"autograde_{toolbox.NAME}.log"
    assert rows["status"].str.startswith("graded").all(), (
        summary.getvalue(), log.read_text()[-5000:])
    grade_by_hand(url)
    return url, summary.getvalue()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded into sqlite (one nbgrader process, as `make grade` does by default)."""
    course = toolbox.make_course(tmp_path_factory.mktemp("toolbox") / "course")
    toolbox_lesson(course)
    toolbox.submit_class(course)
    clean = toolbox.copy_course(course, tmp_path_factory.mktemp("pg") / "course")
    url, summary = grade_class(course)
    report = build_report(course, toolbox.NAME, sections=SECTIONS)
    return {"course": course, "url": url, "summary": summary, "clean": clean,
            "html": report.read_text()}


@pytest.fixture(scope="module")
def reader(graded):
    return ReportReader(graded["html"])


@pytest.mark.e2e
def test_grade_writes_the_report_and_prints_where_it_is(graded):
    path = default_path(graded["course"], toolbox.NAME)
    assert f"report: {path}" in graded["summary"].splitlines()
    assert path.is_file()


@pytest.mark.e2e
def test_the_diagnosis_counts_equal_the_planted_numbers(reader):
    assert reader.diagnoses == toolbox.PLANTED
    assert reader.facts["class-size"] == str(len(toolbox.CLASS))


@pytest.mark.e2e
def test_the_two_copies_are_flagged_and_no_independent_solution(reader, graded):
    assert reader.pairs == [toolbox.COPIES]
    # all three functions, side by side, with the shared code marked
    section = graded["html"].split('data-pair="eve fay"')[1]
    assert section.count('class="side-by-side"') == 3 and "<mark>" in section


@pytest.mark.e2e
def test_the_crash_the_timeout_the_late_one_and_the_unread_answers_need_a_human(reader):
    for student in toolbox.CRASHED:
        assert "crashed" in reader.attention[student]
    for student in toolbox.TIMED_OUT:
        assert "timeout" in reader.attention[student]
    for student in toolbox.LATE:
        assert "late" in reader.attention[student]
    assert set(reader.pending) == set(toolbox.CLASS) - set(HAND_GRADED)
    # the table: only what hand grading alone does not settle
    assert set(reader.attention) == {*toolbox.CRASHED, *toolbox.TIMED_OUT, *toolbox.LATE}
    assert reader.facts["hand-graded"].startswith(f"{len(HAND_GRADED)} of {len(toolbox.CLASS)}")


@pytest.mark.e2e
def test_each_diagnosis_has_its_concept_a_lesson_section_and_an_anonymous_example(reader, graded):
    html = graded["html"]
    assert "clause 1 of <code>moving_average</code>: returns len(xs) - window + 1 means" in html
    assert reader.links["top_k/smallest"].endswith(
        "lessons/01_toolbox.ipynb#1.-The-k-largest,-by-sorting")
    assert reader.links["histogram/edge"].endswith("#3.-Histograms-and-their-last-bin")
    # kim's error message names kim: the example does not
    example = reader.examples["histogram/raised"]
    assert "<student>" in example and "kim" not in example.lower()
    assert reader.examples["moving_average/off-by-one"].startswith("moving_average(")


@pytest.mark.e2e
def test_the_command_line_writes_the_report_where_asked(graded, tmp_path):
    out = tmp_path / "class.html"
    assert cli.main(["--course-dir", str(graded["course"]), "report", toolbox.NAME,
                           "--out", str(out)]) == 0
    assert ReportReader(out.read_text()).diagnoses == toolbox.PLANTED


@pytest.mark.e2e
def test_the_report_from_postgresql_equals_the_one_from_sqlite(graded, postgres):
    db = postgres.create_database("toolbox_report")
    grade_class(graded["clean"], db_url=db)
    # the same course folder (the same submitted code), the other gradebook
    out = graded["course"] / "autograded" / "report_from_postgres.html"
    html = build_report(graded["course"], toolbox.NAME, db_url=db, out=out,
                        sections=SECTIONS).read_text()
    assert html == graded["html"]


@pytest.mark.e2e
def test_the_formgraders_grading_page_links_to_the_report_it_serves(graded):
    from support.local_server import jupyter_server

    with open_gradebook(graded["url"]) as gb:
        submission = gb.find_submission_notebook(toolbox.NAME, toolbox.NAME, "ada").id
    with jupyter_server(graded["course"]) as server:
        status, page = server.get(f"/formgrader/submissions/{submission}/")
        assert status == 200 and "top_k" in page
        link = re.search(r'<a class="pk-class-report" href="([^"]+)"', page)
        assert link, "no link to the class report on the formgrader's grading page"
        href = re.sub(r"/\./", "/", link.group(1))  # what a browser asks for
        status, text = server.get(href)
    assert status == 200 and "toolbox: what the class understood" in text


@pytest.mark.e2e
@pytest.mark.browser
def test_the_report_opens_in_chromium_with_its_figures(graded, chromium):
    sync_api = pytest.importorskip("playwright.sync_api")
    path = default_path(graded["course"], toolbox.NAME)
    requests = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            drawn = page.evaluate("""() => Array.from(document.images).map(
                img => [img.complete, img.naturalWidth, img.naturalHeight])""")
            pairs = page.locator("section.pair").count()
            title = page.title()
        finally:
            browser.close()
    assert len(drawn) == 3 and all(ok and w > 200 and h > 100 for ok, w, h in drawn), drawn
    assert pairs == 1 and title.startswith(toolbox.NAME)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


# ---------------------------------------------------------------------------
# Fast: no grading

TEMPLATE = {"f": 'def f(xs):\n    """Sum of squares."""\n    # YOUR CODE HERE\n'
                 '    raise NotImplementedError()\n'}


def test_the_released_template_makes_nobody_alike():
    answers = {s: dict(TEMPLATE) for s in ("ada", "bob", "cyd")}
    assert similar_pairs(answers, TEMPLATE) == []


def test_renamed_and_reordered_copies_match_and_other_code_does_not():
    original = toolbox.CLASS["eve"]
    templates = {name: toolbox.SIGNATURES[name] + f'\n    """{toolbox.DOCSTRINGS[name]}"""\n'
                 for name in toolbox.FUNCTIONS}
    answers = {s: toolbox.CLASS[s] for s in toolbox.INDEPENDENT + ("fay",)}
    pairs = similar_pairs(answers, templates)
    assert [p.students for p in pairs] == [("eve", "fay")]
    assert pairs[0].functions == sorted(original)
    assert all(min(m.share_a, m.share_b) > 0.6 for m in pairs[0].matches)


def test_the_similarity_does_not_depend_on_the_process_hash_seed():
    """Python salts string hashes per process: the pairs and shares must not change with it."""
    def found(pairs):
        return [[list(p.students), p.share, [m.share_a for m in p.matches]] for p in pairs]

    script = (
        "import json, sys; sys.path.insert(0, 'tests')\n"
        "from support import toolbox\n"
        "from pruning_kit.course.report.similarity import similar_pairs\n"
        "pairs = similar_pairs({s: toolbox.CLASS[s] for s in ('eve', 'fay', 'ada')}, {})\n"
        "print(json.dumps([[list(p.students), p.share, [m.share_a for m in p.matches]] "
        "for p in pairs]))\n")
    here = found(similar_pairs({s: toolbox.CLASS[s] for s in ("eve", "fay", "ada")}, {}))
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    there = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
    assert here and json.loads(there) == here


def test_every_lesson_link_finds_its_heading():
    for function, (lesson, phrase) in lessons.SECTIONS.items():
        found = lessons.section(function, REPO / "lessons")
        assert found is not None and found.path.stem == lesson, function
        assert phrase.lower() in found.heading.lower(), (function, found.heading)
        assert found.anchor == found.heading.replace(" ", "-")


@pytest.mark.parametrize("assignment", ["pruning", "binarized"])
def test_every_graded_function_has_a_lesson_section(assignment):
    import importlib

    registry = getattr(importlib.import_module(f"pruning_grader.assignments.{assignment}"),
                       "ASSIGNMENT", None)
    if registry is None:
        pytest.skip(f"{assignment} has no grader registry yet")
    assert set(registry.functions) <= set(lessons.SECTIONS)


def test_the_formgrader_page_links_to_the_class_report():
    from support.feedback_pages import graded_notebook, render

    nb, _ = graded_notebook("pruning")
    resources = {"assignment_id": "pruning", "notebook_id": "pruning", "submission_id": "x",
                 "index": 0, "total": 1, "base_url": "/user/teacher", "student": "s",
                 "last_name": None, "first_name": None,
                 "notebook_path": "course/autograded/s/pruning/pruning.ipynb"}
    html = render("formgrade", nb, resources)
    link = re.search(r'<a class="pk-class-report" href="([^"]+)"', html)
    assert link and link.group(1) == "/user/teacher/files/course/autograded/report_pruning.html"
    assert "/formgrader/submissions/x/next" in html  # nbgrader's own navigation is still there


def test_the_report_reads_only_the_registry_of_the_grader():
    """No reference solution or hidden test is imported by the report's own code."""
    import ast

    for path in (REPO / "pruning_kit" / "course" / "report").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
                assert not any(part in ("references", "checks") for name in names
                               for part in name.split(".")), (path.name, names)


def test_a_report_before_grading_says_what_to_do(tmp_path, capsys):
    assert cli.main(["--course-dir", str(tmp_path), "report", "toolbox"]) == 2
    assert "no gradebook at" in capsys.readouterr().err
    assert not (tmp_path / "gradebook.db").exists()  # and creates none


def test_make_report_runs_the_command():
    dry = subprocess.run(["make", "-n", "report", "ASSIGNMENT=binarized", "OUT=/tmp/r.html"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert re.search(r"-m pruning_kit\.course report binarized +--out '/tmp/r\.html'", dry), dry
