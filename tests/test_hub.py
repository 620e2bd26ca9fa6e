"""A class on a real JupyterHub, end to end: the local hub `make hub` starts, a roster, the
exchange, the formgrader, students who fetch and submit, grading with two workers into a real
PostgreSQL server, feedback, and a student in a real browser.

One hub (and one PostgreSQL server) serves the whole module. The course is a temporary one
with the tiny ``warmup`` assignment (tests/tiny_course.py: grading it costs about a second past
the kernel start), graded by the same machinery as the real assignments;
tests/test_parallel_grading.py grades the real ``pruning`` assignment with workers.

What happens, as in a class:
1. the instructor releases ``warmup`` from the formgrader (its REST API, as its button does);
2. three students log in (tokens of their own), fetch it from the Assignment List, edit the
   notebook through Jupyter's contents API and submit: ada correct, grace with one wrong
   function, alan with a function that kills the kernel;
3. the instructor collects, grades with ``python -m pruning_kit.course grade warmup
   --workers 2 --db postgresql://...`` and releases the feedback;
4. each student fetches their feedback.
"""

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from support import warmup as tc
from support.local_server import stop
from support.browser import CHROMIUM_FLAGS  # (the chromium fixture: conftest.py)
from pruning_kit.course import hub as course_hub
from pruning_kit.course.gradebook import assignment_scores, submission_counts
from pruning_kit.course.loopback import free_port

requests = pytest.importorskip("requests")
pytest.importorskip("jupyterhub")

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
ROSTER = """username,role,first_name,last_name,email
teacher,instructor,Tess,Teacher,
ada,student,Ada,Lovelace,
grace,student,Grace,Hopper,
alan,student,Alan,Turing,
dana,student,Dana,Scully,
"""
WORK = {"ada": tc.CORRECT, "grace": tc.ONE_WRONG, "alan": tc.CRASHES}
EXPECTED = {"ada": 5.0, "grace": 2.0, "alan": 2.0}


@pytest.fixture(scope="module")
def hub(tmp_path_factory, postgres):
    """The course hub running on a free port, every roster member's server but dana's started."""
    top = tmp_path_factory.mktemp("hub")
    course = tc.make_course(top / "course")
    (top / "roster.csv").write_text(ROSTER)
    port, token = free_port(), secrets.token_hex(16)
    settings = course_hub.prepare_hub(top / "state", course, top / "roster.csv", port=port,
                                      db_url=postgres.url, api_token=token)
    members = course_hub.read_roster(top / "roster.csv")
    course_hub.register_students(course, members, postgres.url)
    argv, env = course_hub.hub_command(top / "state" / "settings.json",
                                       REPO / "hub" / "jupyterhub_config.py")
    log_path = top / "hub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, env=env, cwd=top / "state", stdout=log,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"token {token}"}

    def log_tail():
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{base}/hub/api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterHub did not answer on {base}:\n{log_tail()}")
            time.sleep(0.3)
        users = ["teacher", *WORK]
        for user in users:
            r = requests.post(f"{base}/hub/api/users/{user}/server", headers=admin, timeout=30)
            assert r.status_code in (201, 202), (user, r.status_code, r.text, log_tail())
        for user in users:
            while not requests.get(f"{base}/hub/api/users/{user}", headers=admin,
                                   timeout=10).json()["servers"].get("", {}).get("ready"):
                if process.poll() is not None or time.monotonic() > deadline + 60:
                    pytest.fail(f"{user}'s server did not start:\n{log_tail()}")
                time.sleep(0.5)
        tokens = {u: requests.post(f"{base}/hub/api/users/{u}/tokens", headers=admin,
                                   json={"note": "test"}, timeout=10).json()["token"]
                  for u in users}
        passwords = json.loads(Path(settings["passwords_file"]).read_text())
        yield SimpleNamespace(base=base, tokens=tokens, settings=settings, course=course,
                              state=top / "state", passwords=passwords, log_tail=log_tail,
                              db_url=postgres.url, course_id=settings["course_id"])
    finally:
        stop(process)


def as_user(hub, user, method, path, **kwargs):
    """A request to ``user``'s own server with ``user``'s token (what their browser sends)."""
    headers = {"Authorization": f"token {hub.tokens[user]}"}
    return requests.request(method, f"{hub.base}/user/{path}", headers=headers, timeout=120,
                            **kwargs)


def assignment_action(hub, user, action):
    r = as_user(hub, user, "POST", f"{user}/assignments/{action}",
                data={"course_id": hub.course_id, "assignment_id": tc.NAME})
    assert r.ok, (user, action, r.status_code, r.text)
    return r.json()


def student_ids(answer):
    """Every ``student_id`` anywhere in an Assignment List answer."""
    if isinstance(answer, dict):
        own = {answer["student_id"]} if "student_id" in answer else set()
        return own.union(*(student_ids(v) for v in answer.values()))
    if isinstance(answer, list):
        return set().union(*(student_ids(v) for v in answer))
    return set()


def run_code(hub, user, code, timeout=120):
    """Run ``code`` in a new kernel of ``user``'s own server (as their browser does, over the
    kernel's websocket); what it printed."""
    import asyncio
    import uuid

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    kernel = as_user(hub, user, "POST", f"{user}/api/kernels", json={"name": "python3"}).json()
    url = f"{hub.base.replace('http', 'ws', 1)}/user/{user}/api/kernels/{kernel['id']}/channels"
    msg_id = uuid.uuid4().hex

    async def execute():
        connection = await websocket_connect(HTTPRequest(
            url, headers={"Authorization": f"token {hub.tokens[user]}"}))
        connection.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False}}))
        printed = []
        while True:
            message = json.loads(await connection.read_message())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                printed.append(message["content"]["text"])
            elif kind == "error":
                printed.append("\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                connection.close()
                return "".join(printed)

    try:
        return asyncio.run(asyncio.wait_for(execute(), timeout))
    finally:
        as_user(hub, user, "DELETE", f"{user}/api/kernels/{kernel['id']}")


@pytest.fixture(scope="module")
def released(hub):
    """The instructor has released ``warmup`` to the exchange from the formgrader."""
    r = as_user(hub, "teacher", "POST", f"teacher/formgrader/api/assignment/{tc.NAME}/release")
    assert r.ok and r.json()["success"], r.text
    return r.json()


@pytest.fixture(scope="module")
def graded_class(hub, released):
    """The whole flow of one assignment through the hub; what each step answered."""
    answers = {"release": released}
    for student, code in WORK.items():
        fetched = assignment_action(hub, student, "fetch")
        path = f"{student}/api/contents/{tc.NAME}/{tc.NAME}.ipynb"
        model = as_user(hub, student, "GET", path).json()
        for cell in model["content"]["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if gid in code:
                cell["source"] = code[gid]
        r = as_user(hub, student, "PUT", path, json={"type": "notebook", "format": "json",
                                                      "content": model["content"]})
        assert r.ok, r.text
        answers[student] = {"fetch": fetched, "submit": assignment_action(hub, student, "submit")}
    r = as_user(hub, "teacher", "POST", f"teacher/formgrader/api/assignment/{tc.NAME}/collect")
    answers["collect"] = r.json()
    assert r.ok and answers["collect"]["success"], answers["collect"]
    # The instructor grades in a terminal: two workers, the PostgreSQL gradebook.
    done = subprocess.run(
        [sys.executable, "-m", "pruning_kit.course", "--course-dir", str(hub.course), "grade",
         tc.NAME, "--workers", "2", "--db", hub.db_url],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    answers["grade"] = done
    assert done.returncode == 0, done.stdout + done.stderr
    r = as_user(hub, "teacher", "POST",
                f"teacher/formgrader/api/assignment/{tc.NAME}/release_feedback")
    answers["release_feedback"] = r.json()
    assert r.ok and answers["release_feedback"]["success"], answers["release_feedback"]
    for student in WORK:
        answers[student]["feedback"] = assignment_action(hub, student, "fetch_feedback")
    return answers


def test_people_on_the_roster_log_in_with_their_role_password(hub):
    def login(user, password):
        session = requests.Session()
        session.get(f"{hub.base}/hub/login", timeout=10)
        r = session.post(f"{hub.base}/hub/login", allow_redirects=False, timeout=10,
                         data={"username": user, "password": password,
                               "_xsrf": session.cookies.get("_xsrf", path="/hub/")})
        return r.status_code == 302 and "jupyterhub-hub-login" in session.cookies

    student, instructor = hub.passwords["student_password"], hub.passwords["instructor_password"]
    assert login("grace", student)
    assert login("teacher", instructor)
    assert not login("grace", "wrong password")
    assert not login("mallory", student), "someone not on the roster logged in"
    assert not login("teacher", student), "the student password opened the instructor's account"


def test_the_instructor_has_the_formgrader_and_students_do_not(hub):
    r = as_user(hub, "teacher", "GET", "teacher/formgrader/api/assignments")
    assert r.ok and [a["name"] for a in r.json()] == [tc.NAME]
    # JupyterHub >= 4.1 forbids every frame; the formgrader lives in one.
    assert r.headers["Content-Security-Policy"] == course_hub.FRAME_POLICY
    assert as_user(hub, "ada", "GET", "ada/formgrader/api/assignments").status_code == 404
    courses = as_user(hub, "ada", "GET", "ada/assignments",
                      params={"course_id": hub.course_id}).json()
    assert courses["success"]


def test_students_fetch_and_submit_under_their_hub_names(hub, graded_class):
    for student in WORK:
        listed = graded_class[student]["submit"]["value"]
        assert student_ids(listed) == {student}, listed
    collected = sorted(p.name for p in (hub.course / "submitted").iterdir())
    assert collected == sorted(WORK)
    inbound = hub.state / "exchange" / hub.course_id / "inbound"
    assert sorted(p.name.split("+")[0] for p in inbound.iterdir()) == sorted(WORK)


def test_grading_with_two_workers_into_postgresql(hub, graded_class):
    printed = graded_class["grade"].stdout
    assert "with 2 workers" in printed
    scores = assignment_scores(hub.db_url, tc.NAME)
    assert {s: sum(v.values()) for s, v in scores.items()} == EXPECTED, scores
    assert "test_mean_visible: mean stopped the process it ran in" in printed, printed
    counts = submission_counts(hub.db_url, tc.NAME)
    assert counts == {"submissions": 3, "notebooks": 3, "grades": 12}  # 4 graded cells each
    sqlite = f"sqlite:///{hub.course / 'gradebook.db'}"  # `make release` wrote this one
    assert submission_counts(sqlite, tc.NAME)["submissions"] == 0, "graded into sqlite"


def test_each_student_fetches_only_their_own_feedback(hub, graded_class):
    for student, points in EXPECTED.items():
        home = hub.state / "homes" / student / tc.NAME / "feedback"
        pages = list(home.glob("*/*.html"))
        assert len(pages) == 1, (student, pages)
        text = pages[0].read_text()
        assert re.search(rf"Score:\s*{points:g}(\.0)?\s*/\s*5", text), (student, text[:2000])
        listed = graded_class[student]["feedback"]["value"]
        assert student_ids(listed) == {student}, listed
        assert "has_local_feedback\": true" in json.dumps(listed), listed


def test_students_cannot_read_each_others_work(hub, graded_class):
    # Through the hub: a student's token opens only their own server.
    for path in ("grace/api/contents/warmup", "teacher/api/contents/submitted",
                 "grace/assignments?course_id=" + hub.course_id):
        assert as_user(hub, "ada", "GET", path).status_code == 403, path
    # In the exchange: nobody but the instructor can list submissions or feedback; what a
    # student may open is named by a secret (a random suffix, a hash of their own notebook).
    course = hub.state / "exchange" / hub.course_id
    for folder in ("inbound", "feedback"):
        mode = stat.S_IMODE((course / folder).stat().st_mode)
        assert not mode & (stat.S_IRGRP | stat.S_IROTH), f"{folder} is listable: {oct(mode)}"
    for submission in (course / "inbound").iterdir():
        assert re.fullmatch(r"[a-z]+\+warmup\+[^+]+\+[A-Za-z0-9_-]{12}", submission.name)
    for page in (course / "feedback").iterdir():
        assert re.fullmatch(r"[0-9a-f]{32}\.html", page.name)


# ---------------------------------------------------------------------------
# A student in a real browser (Playwright + Debian's Chromium, as tests/test_browser.py)

BROWSER_TIMEOUT_S = 120


@pytest.mark.browser
def test_a_student_fetches_edits_validates_and_submits_in_the_browser(hub, released, chromium):
    sync_api = pytest.importorskip("playwright.sync_api")
    from urllib.parse import urlparse

    inbound = hub.state / "exchange" / hub.course_id / "inbound"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(BROWSER_TIMEOUT_S * 1000)
            sync_api.expect.set_options(timeout=BROWSER_TIMEOUT_S * 1000)
            page.route("**/*", lambda route: route.continue_()
                       if urlparse(route.request.url).hostname == "127.0.0.1" else route.abort())
            # Log in with the shared student password; the hub starts dana's server.
            page.goto(f"{hub.base}/hub/login")
            page.fill("#username_input", "dana")
            page.fill("#password_input", hub.passwords["student_password"])
            page.click("#login_submit")
            page.wait_for_url(re.compile(r".*/user/dana/lab.*"))
            # The Assignment List, from nbgrader's menu: fetch the released assignment.
            page.get_by_role("menuitem", name="Nbgrader").click()
            page.get_by_role("menuitem", name="Assignment List").click()
            released_list = page.locator("#released_assignments_list")
            released_list.get_by_role("button", name="Fetch").click()
            fetched = page.locator("#fetched_assignments_list")
            sync_api.expect(fetched).to_contain_text(tc.NAME)
            fetched.get_by_text(tc.NAME, exact=True).first.click()  # show its notebooks
            fetched.locator("a", has_text=f"{tc.NAME}").last.click()  # open the notebook
            # Write both functions (one line each: no auto-indent to fight), then validate.
            for name, code in (("add", "def add(a, b): return a + b"),
                               ("mean", "def mean(xs): return sum(xs) / len(xs)")):
                editor = page.locator(".jp-CodeCell", has_text=f"def {name}(").locator(".cm-content")
                editor.click()
                page.keyboard.press("Control+A")
                page.keyboard.type(code)
                sync_api.expect(editor).to_have_text(code)
            # Validate saves the notebook first, then runs it on the student's server.
            page.locator(".jp-NotebookPanel-toolbar .validate-button").click()
            dialog = page.locator(".nbgrader-SuccessDialog")
            sync_api.expect(dialog).to_contain_text("Success! Your notebook passes all the tests.")
            dialog.get_by_role("button", name="Ok").click()
            # Back to the Assignment List: submit.
            page.get_by_role("tab", name="Assignments").click()
            fetched.get_by_role("button", name="Submit").click()
            submitted = page.locator("#submitted_assignments_list")
            sync_api.expect(submitted).to_contain_text(tc.NAME)
        finally:
            browser.close()
    mine = [p for p in inbound.iterdir() if p.name.startswith(f"dana+{tc.NAME}+")]
    assert len(mine) == 1, sorted(p.name for p in inbound.iterdir())
    nb = json.loads((mine[0] / f"{tc.NAME}.ipynb").read_text())
    sources = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "def add(a, b): return a + b" in sources and "def mean(xs): return sum" in sources


def test_a_students_server_reads_nothing_of_the_course_or_the_grader(hub):
    # every server of the trial hub runs as this Unix user: the student's runs in bubblewrap,
    # where the course root (solutions/, grader/, other students' homes) and the grader package
    # are empty folders
    probe = (
        "import importlib.util, json, os\n"
        f"course = {str(hub.course)!r}\n"
        f"repo = {str(REPO)!r}\n"
        "found = {'grader': importlib.util.find_spec('pruning_grader') is not None}\n"
        "for root in (course, repo):\n"
        "    for part in ('solutions', 'grader', 'instructor', 'gradebook.db'):\n"
        "        path = os.path.join(root, part)\n"
        "        found[path] = os.path.exists(path) and (os.path.isfile(path) or any(\n"
        "            files for _, _, files in os.walk(path)))\n"
        f"found['other home'] = os.path.exists({str(hub.state / 'homes' / 'grace')!r})\n"
        "found['own home'] = os.access(os.getcwd(), os.W_OK)\n"
        "import pruning_kit\n"
        "print('PROBE', json.dumps(found))\n")
    printed = run_code(hub, "ada", probe)
    line = next(l for l in printed.splitlines() if l.startswith("PROBE "))
    found = json.loads(line[len("PROBE "):])
    assert found.pop("own home") is True, printed
    assert not any(found.values()), found
    # the instructor's server is not sandboxed: the course is there
    assert "solutions" in run_code(hub, "teacher", f"import os; print(os.listdir({str(hub.course)!r}))")
