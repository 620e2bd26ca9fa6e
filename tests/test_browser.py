"""The first hour of a student, a lecturer and an instructor, in headless Chromium.

Each test starts from what that person has, with the command the README gives them, on a
free local port, in a fresh clone of the course where it matters (tests/course_repo.py):

- **student**, `make lab` (tools/lab.py student): lesson 01 opens in the student's working
  copy, runs top to bottom without an error, its slider answers; nbgrader's Assignment
  List, which needs a class's exchange, is not there and nothing says "Error"; saving
  leaves the clone's `git status` clean. Validate on the blank assignment shows at most one
  short line per test and no traceback (this waits for the grading checks' short
  messages: expected to fail until they land).
- **lecturer**, `make demo` (tools/demo.py): the page shows the sliders, twenty drags of the
  pruning slider each end on the readout of the value dragged to, and nothing fails: no
  console error, no failed request, no request that tries to leave the machine.
  The timings (first slider, drag -> readout median and p95) are printed by
  `benchmarks/browser_latency.py`, not asserted here.
- **instructor**, `make lab-instructor` (tools/lab.py instructor): the formgrader's Manage
  Assignments page in a fresh clone lists the assignments without a warning (the course's
  exchange is there), and says where the course's state lives.
- **reader**, `make book`: tests/test_book.py (the page read from disk, offline).

Chromium comes from Debian (the `chromium` fixture in conftest.py installs it with apt-get
when missing and running as root); everything is skipped, saying why, where it can't be.
"""

import re
import time
from pathlib import Path

import pytest

import support.browser as bs
from support.course_repo import fresh_clone, status
from pruning_kit.course.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]

import lab  # noqa: E402  (browser_support put tools/ on the path)

LESSON = "lessons/01_magnitude_pruning.ipynb"
ASSIGNMENT = "assignments/pruning/pruning.ipynb"
START_TIMEOUT_S = 90      # a server listening
RUN_TIMEOUT_S = 600       # lesson 01 run top to bottom on a busy 2-core machine
UPDATE_TIMEOUT_S = 30     # the kernel has answered a slider move
VISIBLE_TESTS = 9         # the pruning assignment's visible test cells (README)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
sync_api = pytest.importorskip("playwright.sync_api")


def lab_server(course: Path, view: str, folder: Path):
    """A view's JupyterLab on the course, as tools/lab.py starts it (no token, no browser)."""
    port = free_port()
    # runtime and data dirs of the test's own; settings and workspace: the view's, in the clone
    argv, env = lab.command(view, course, port=port, open_browser=False, token="",
                            base_env=bs.isolated_env(folder))
    env["OMP_NUM_THREADS"] = "1"
    return bs.serve(argv, env, course, folder / f"{view}.log", port, START_TIMEOUT_S), \
        f"http://127.0.0.1:{port}"


def wait_for_kernel(page, timeout_s=START_TIMEOUT_S):
    # The toolbar's indicator says idle before a kernel exists; the status bar waits for one.
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for(
        timeout=timeout_s * 1000)


def menu(page, top: str, item) -> None:
    """Choose ``item`` (a name or a pattern) in the menu bar's ``top`` menu."""
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item).first.click()


def saved_outputs(page, path: Path, timeout_s: float = 60) -> list:
    """The outputs of ``path`` as saved on disk, once the saved notebook has any.

    Waits with ``page.wait_for_timeout``, not ``time.sleep``: the page's requests pass
    through PageWatch's route handler, which runs only while Playwright has control (a
    sleeping test held the save's PUT back until the browser closed).
    """
    import nbformat

    deadline = time.monotonic() + timeout_s
    while True:
        nb = nbformat.read(path, as_version=4)
        outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
        if outputs or time.monotonic() > deadline:
            return outputs
        page.wait_for_timeout(500)


# ---------------------------------------------------------------------------------- student

@pytest.fixture
def student(tmp_path):
    course = fresh_clone(tmp_path / "course")
    lab.prepare("student", course, log=lambda *_: None)
    server, url = lab_server(course, "student", tmp_path)
    with server:
        yield course, url, tmp_path


def test_a_student_runs_lesson_01_in_make_lab_and_leaves_the_clone_clean(student, chromium):
    course, url, folder = student
    with sync_api.sync_playwright() as playwright:
        browser = bs.launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            watch = bs.PageWatch(page)
            page.goto(f"{url}/lab/tree/{LESSON}", timeout=START_TIMEOUT_S * 1000)
            wait_for_kernel(page)
            menu(page, "Run", re.compile(r"^Run All Cells"))
            # every code cell has run once the prompts carry numbers: no "[ ]", no "[*]"
            page.wait_for_function(
                """() => { const p = Array.from(document.querySelectorAll(
                       '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'));
                     return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }""",
                timeout=RUN_TIMEOUT_S * 1000, polling=1000)
            # the lesson's explorer answers the keyboard
            handle = page.locator(".pk-sparsity-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            readout = page.locator(".pk-readout").first
            before = readout.inner_text()
            handle.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            sync_api.expect(readout).not_to_have_text(before, timeout=UPDATE_TIMEOUT_S * 1000)
            # no Assignment List without an exchange, and no error about one
            nbgrader_menu = page.get_by_role("menuitem", name="Nbgrader", exact=True)
            if nbgrader_menu.count():
                nbgrader_menu.click()
            assignment_list = page.get_by_role("menuitem", name="Assignment List").count()
            page.keyboard.press("Escape")
            fetch_errors = page.get_by_text(re.compile("Error fetching courses|exchange directory"
                                                       )).count()
            menu(page, "File", re.compile(r"^Save Notebook"))
            outputs = saved_outputs(page, course / "work" / LESSON)
        finally:
            browser.close()
    failed = [o for o in outputs if o.get("output_type") == "error"]
    assert outputs and not failed, (f"lesson 01 ran with errors: {failed[:1]}", watch.errors[:5],
                                    watch.failed[:5])
    assert assignment_list == 0 and fetch_errors == 0
    nbgrader_errors = [e for e in watch.errors if "nbgrader" in e.lower() or "assignment" in e.lower()]
    assert not nbgrader_errors, nbgrader_errors
    assert "Unwritable directory" not in (folder / "student.log").read_text(errors="replace")
    assert status(course) == "", "running and saving in make lab changed the clone"
    assert LESSON in status(course / "work"), "the student's copy holds the run"


def test_validate_on_a_blank_assignment_says_one_short_line_per_test(student, chromium):
    course, url, _ = student
    with sync_api.sync_playwright() as playwright:
        browser = bs.launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{ASSIGNMENT}", timeout=START_TIMEOUT_S * 1000)
            wait_for_kernel(page)
            page.get_by_role("button", name="Validate").first.click()
            dialog = page.locator(".jp-Dialog-content")
            dialog.wait_for(timeout=RUN_TIMEOUT_S * 1000)
            text = dialog.inner_text()
        finally:
            browser.close()
    assert "Traceback" not in text and "File \"" not in text, text[:2000]
    # nbgrader's dialog heads each failed cell with a sentence; under it, the cell's name and
    # one line: the verdict of a test cell, or nbgrader's note on an unwritten answer
    blocks = [[line for line in block.splitlines() if line.strip()]
              for block in text.strip().removesuffix("Ok").split("The following cell failed:")[1:]]
    assert blocks and all(len(block) == 2 for block in blocks), text[:3000]
    verdicts = [block for block in blocks if block[0].endswith("visible tests")]
    assert len(verdicts) == VISIBLE_TESTS and all(v[1].startswith("✗") for v in verdicts), text
    assert max(len(line) for block in blocks for line in block) <= 120, text[:3000]
    assert status(course) == ""


# --------------------------------------------------------------------------------- lecturer

def test_the_lecturer_drags_the_demo_sliders_and_nothing_fails(chromium, tmp_path,
                                                               record_property):
    with bs.demo_server(tmp_path, EPOCHS=1) as server:
        bs.wait_until_idle(server.process)          # the preheated kernel has run the demo
        with sync_api.sync_playwright() as playwright:
            browser = bs.launch(playwright, chromium)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1900})
                watch = bs.PageWatch(page)
                first_slider_s = bs.open_demo(page, server.url)
                page.locator(".pk-bits-slider").first.wait_for(state="visible",
                                                                timeout=UPDATE_TIMEOUT_S * 1000)
                # the figure: a PNG (the demo's default backend) or ipympl's canvas
                page.locator(f"{bs.PRUNING} :is(img, canvas)").first.wait_for(
                    state="visible", timeout=UPDATE_TIMEOUT_S * 1000)
                page.wait_for_timeout(1000)
                drags = bs.drag_latencies(page, 20)       # each ends on its own readout
                page.screenshot(path=tmp_path / "demo.png", full_page=True)
                problems = watch.problems()
            finally:
                browser.close()
    record_property("first_slider_s", round(first_slider_s, 2))
    record_property("drag_to_readout_ms", bs.summary([d["ms"] for d in drags]))
    assert len(drags) == 20 and len({d["value"] for d in drags}) > 10
    assert problems == {"console errors": [], "failed requests": [],
                        "requests leaving the machine": []}, problems
    assert (tmp_path / "demo.png").stat().st_size > 10_000


# ------------------------------------------------------------------------------- instructor

def test_the_formgrader_in_a_fresh_clone_warns_of_nothing(chromium, tmp_path):
    course = fresh_clone(tmp_path / "course")
    said = []
    lab.prepare("instructor", course, log=said.append)
    server, url = lab_server(course, "instructor", tmp_path)
    with server, sync_api.sync_playwright() as playwright:
        browser = bs.launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/formgrader/manage_assignments", timeout=START_TIMEOUT_S * 1000)
            page.get_by_text("pruning", exact=True).first.wait_for(timeout=60_000)
            warnings = page.locator(".alert-warning").all_inner_texts()
            listed = page.locator("td").all_inner_texts()
        finally:
            browser.close()
    assert warnings == [], warnings
    assert {"pruning", "binarized"} <= {text.strip() for text in listed}, listed
    # where the course's state lives is said, and it stays out of git
    assert any("gradebook.db" in line and "exchange" in line for line in said), said
    assert (course / ".hub" / "exchange").is_dir()
    assert status(course) == "", status(course)
