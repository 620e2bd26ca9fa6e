"""A student works in `make lab` without ever dirtying their clone, and course fixes still reach them.

`make lab` (tools/lab.py student) serves the student's working copy `work/` (tools/working_copy.py).
The tests start from a fresh clone of the course (tests/course_repo.py), make the working copy
as `make lab` does and check:

- running a lesson, saving it as JupyterLab's autosave does (PUT to the contents API) and
  validating the assignment (nbgrader's Validate endpoint) leave `git status` of the clone clean;
- a corrected lesson committed afterwards (what `git pull` brings) reaches the student with
  `make update` (tools/working_copy.py), merged as nbgitpuller merges: the correction, the
  student's own edit and their outputs are all there, and the notebook is valid;
- the other merge rules nbgitpuller has (a deleted file comes back, a file the student created
  where the course adds one is kept under another name).
"""

import http.cookiejar
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from support.course_repo import commit, fresh_clone, git, status
from support.local_server import stop
from pruning_kit.course.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import lab  # noqa: E402  (tools/ is put on the path just above)
import working_copy  # noqa: E402

LESSON = "lessons/01_magnitude_pruning.ipynb"
ASSIGNMENT = "assignments/pruning/pruning.ipynb"
START_TIMEOUT_S = 90


def correct_upstream(course: Path, path: str, edit) -> None:
    """Change ``path`` with ``edit(notebook)`` and commit it, as a fix `git pull` brings."""
    nb = nbformat.read(course / path, as_version=4)
    edit(nb)
    nbformat.write(nb, course / path)
    commit(course, f"fix {path}")


@pytest.fixture
def course(tmp_path):
    course = fresh_clone(tmp_path / "course")
    work = lab.prepare("student", course, log=lambda *_: None)
    assert work == course / "work" and (work / LESSON).is_file() and (work / ASSIGNMENT).is_file()
    assert sorted(p.name for p in work.iterdir() if p.name != ".git") == [
        "assignments", "data", "lessons"]
    return course


@pytest.fixture
def student_lab(course, tmp_path):
    """`make lab`'s server on the course (no browser); yields a request function."""
    port = free_port()
    argv, env = lab.command("student", course, port=port, open_browser=False, token="")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["OMP_NUM_THREADS"] = "1"
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT)

    cookies = http.cookiejar.CookieJar()        # the browser's: nbgrader's POSTs check _xsrf
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))

    def request(method, path, body=None, timeout=300):
        data = None if body is None else json.dumps(body).encode()
        xsrf = next((c.value for c in cookies if c.name == "_xsrf"), "")
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "X-XSRFToken": xsrf})
        with opener.open(req, timeout=timeout) as answer:
            text = answer.read()
            return json.loads(text) if text.strip().startswith((b"{", b"[")) else None

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                request("GET", "/api/status", timeout=5)
                request("GET", "/lab", timeout=30)           # sets the _xsrf cookie
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"make lab's server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield request
    finally:
        stop(server, timeout=15)


def run_first_cells(path: Path, count: int) -> nbformat.NotebookNode:
    """The notebook with its first ``count`` code cells run in a kernel in its folder."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"][:count]
    with client.setup_kernel():
        for i in code:
            client.execute_cell(nb.cells[i], i)
    return nb


@pytest.mark.e2e
def test_running_saving_and_validating_in_make_lab_leave_the_clone_clean(course, student_lab):
    work = course / "work"
    # The student opens lesson 01, runs its first cells, writes a note in one, and JupyterLab
    # saves it (autosave: the whole model PUT back through the contents API).
    opened = student_lab("GET", f"/api/contents/{LESSON}")
    assert opened["type"] == "notebook"
    nb = run_first_cells(work / LESSON, 3)
    assert any(cell.get("outputs") for cell in nb.cells), "running the cells printed nothing"
    nb.cells[1].source += "\n# my try: FULL = True tonight"
    student_lab("PUT", f"/api/contents/{LESSON}",
                {"type": "notebook", "format": "json", "content": nb})
    # Validate saves the assignment, then nbgrader runs it.
    assignment = student_lab("GET", f"/api/contents/{ASSIGNMENT}")
    student_lab("PUT", f"/api/contents/{ASSIGNMENT}",
                {"type": "notebook", "format": "json", "content": assignment["content"]})
    answer = student_lab("POST", "/assignments/validate", {"path": ASSIGNMENT}, timeout=600)
    assert set(answer) >= {"success", "value"}, answer

    assert status(course) == "", "make lab changed files of the student's clone"
    assert LESSON in status(work), "the student's own copy holds their work"


@pytest.mark.e2e
def test_a_corrected_lesson_reaches_the_student_with_their_edits_and_outputs(course):
    work = course / "work"
    nb = run_first_cells(work / LESSON, 3)
    ran = [i for i, cell in enumerate(nb.cells) if cell.get("outputs")]
    nb.cells[1].source += "\n# my try: FULL = True tonight"
    nbformat.write(nb, work / LESSON)

    def fix(lesson):
        lesson.cells[0].source = lesson.cells[0].source.replace("Lesson 1", "Lesson 1 (corrected)", 1)
        lesson.cells[ran[0]].source = "# corrected upstream\n" + lesson.cells[ran[0]].source

    correct_upstream(course, LESSON, fix)
    assert working_copy.update(course, log=lambda *_: None) == [LESSON]

    merged = nbformat.read(work / LESSON, as_version=4)
    nbformat.validate(merged)
    assert "Lesson 1 (corrected)" in merged.cells[0].source, "the correction did not arrive"
    assert merged.cells[ran[0]].source.startswith("# corrected upstream")
    assert merged.cells[1].source.endswith("# my try: FULL = True tonight"), "the edit was lost"
    assert [i for i, cell in enumerate(merged.cells) if cell.get("outputs")] == ran
    assert status(course) == ""


@pytest.mark.e2e
def test_updates_restore_deleted_files_and_keep_files_the_student_made(course):
    work = course / "work"
    (work / LESSON).unlink()
    (work / "lessons" / "07_distillation.ipynb").write_text('{"mine": true}\n')
    shutil.copy2(course / "lessons" / "00_compression_overview.ipynb",
                 course / "lessons" / "07_distillation.ipynb")
    git("add", "lessons/07_distillation.ipynb", cwd=course)
    git("commit", "-q", "-m", "a new lesson", cwd=course)

    working_copy.update(course, log=lambda *_: None)
    assert (work / LESSON).is_file(), "a deleted lesson comes back"
    assert (work / "lessons" / "07_distillation.ipynb").read_bytes() == \
        (course / "lessons" / "07_distillation.ipynb").read_bytes()
    kept = list((work / "lessons").glob("07_distillation__*.ipynb"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == {"mine": True}
