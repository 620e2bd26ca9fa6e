"""The class configurations in hub/ load and agree with each other, as far as this machine can
check them without a Kubernetes cluster, a TLJH server or an LMS.

- the local demo's hub/jupyterhub_config.py loads (traitlets) into what `make hub` promises;
- roster files are checked before a hub starts;
- the real-class role configs (hub/real/) are what the local demo writes, their copies in
  the Z2JH values and the TLJH script agree, and every Python snippet compiles;
- the LMS route: `nbgrader zip_collect` with hub/lms/nbgrader_config.py turns a Canvas zip
  into submitted/<student>/<assignment>/ (the real command line, so marked e2e);
- students' copies of the lessons: the nbgitpuller link `make hub` prints has the documented
  form, and a student's server (with the role config) answers it by cloning the course
  into their home and, later, merging a correction without losing the student's edit.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from pruning_kit.course import hub as course_hub
from pruning_kit.course.gradebook import configured

REPO = Path(__file__).resolve().parents[1]
HUB = REPO / "hub"


def load_config(path, env=None):
    """Run a traitlets config file (as JupyterHub or nbgrader would) with ``env``; its Config."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def local_hub(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    settings = course_hub.prepare_hub(tmp_path / "state", course, HUB / "roster.example.csv",
                                      port=8123)
    config = load_config(HUB / "jupyterhub_config.py", {
        course_hub.SETTINGS_ENV: str(tmp_path / "state" / "settings.json")})
    return settings, config


def test_the_local_hub_listens_on_loopback_with_shared_passwords(local_hub):
    settings, c = local_hub
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123"
    assert c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert Path(c.ConfigurableHTTPProxy.command[0]).name == "configurable-http-proxy"
    assert Path(c.ConfigurableHTTPProxy.command[0]).exists(), "the proxy is not installed"
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.JupyterHub.spawner_class == "simple"
    roster = course_hub.read_roster(HUB / "roster.example.csv")
    assert c.Authenticator.admin_users == {m.username for m in roster if m.role == "instructor"}
    assert c.Authenticator.allowed_users == {m.username for m in roster}
    passwords = json.loads(Path(settings["passwords_file"]).read_text())
    assert len(passwords["student_password"]) >= 8 and len(passwords["instructor_password"]) >= 32
    assert oct(Path(settings["passwords_file"]).stat().st_mode & 0o777) == "0o600"
    assert settings["course_id"] == configured(REPO, "course_id") == "pruning-course"


def test_each_role_gets_its_own_nbgrader_and_server_config(local_hub):
    settings, _ = local_hub
    state = Path(settings["state_dir"])
    student = load_config(state / "config" / "student" / "nbgrader_config.py",
                          {"JUPYTERHUB_USER": "ada"})
    assert student.CourseDirectory.student_id == "ada"  # the hub name, not the Unix user
    assert student.Exchange.root == settings["exchange"]
    instructor = load_config(state / "config" / "instructor" / "nbgrader_config.py")
    assert "student_id" not in instructor.CourseDirectory
    assert instructor.CourseDirectory.root == settings["course_dir"]
    assert instructor.ExchangeCollect.check_owner is False
    for role in course_hub.ROLES:
        server = json.loads((state / "config" / role / "jupyter_server_config.json").read_text())
        headers = server["ServerApp"]["tornado_settings"]["headers"]
        assert headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert os.stat(settings["exchange"]).st_mode & 0o1777 == 0o1777


@pytest.mark.parametrize("text, problem", [
    ("name,role\nada,student\n", "header line 'username,role'"),
    ("username,role\nada,student\n", "at least one instructor"),
    ("username,role\nt,instructor\nada,teacher\n", "role must be 'instructor' or 'student'"),
    ("username,role\nt,instructor\nada+1,student\n", "username must be lower case"),
    ("username,role\nt,instructor\nada,student\nada,student\n", "'ada' is listed twice"),
])
def test_a_bad_roster_is_refused_with_the_line_and_the_rule(text, problem):
    with pytest.raises(ValueError, match=problem.replace("+", r"\+")):
        course_hub.read_roster(io.StringIO(text))


# ---------------------------------------------------------------------------
# A real class: hub/real, TLJH, Z2JH

def test_the_real_role_configs_match_what_the_local_hub_writes(tmp_path):
    local = course_hub.write_role_config(tmp_path / "student", "student", "/x", "pruning-course",
                                         "/srv/nbgrader/exchange")
    real = HUB / "real" / "student"
    for rel in ("jupyter_server_config.json", "labconfig/page_config.json"):
        assert json.loads((real / rel).read_text()) == json.loads((local / rel).read_text()), rel
    student = load_config(real / "nbgrader_config.py", {"JUPYTERHUB_USER": "grace"})
    assert student.CourseDirectory.student_id == "grace"
    instructor = load_config(HUB / "real" / "instructor" / "nbgrader_config.py",
                             {"COURSE_ROOT": "/home/jovyan/course",
                              "NBGRADER_DB_URL": "postgresql://grader@db/gradebook"})
    assert instructor.CourseDirectory.root == "/home/jovyan/course"
    assert instructor.CourseDirectory.db_url == "postgresql://grader@db/gradebook"
    for c in (student, instructor):
        assert c.Exchange.root == "/srv/nbgrader/exchange"
        assert c.CourseDirectory.course_id == configured(REPO, "course_id")


def test_the_role_hook_gives_instructors_and_students_their_config():
    c = load_config(HUB / "real" / "course_roles.py")
    hook = c.Spawner.pre_spawn_hook

    class Spawner:
        def __init__(self, name):
            self.user = type("User", (), {"name": name})()
            self.environment = {}

    for name, role in (("teacher", "instructor"), ("ada", "student")):
        spawner = Spawner(name)
        hook(spawner)
        path = spawner.environment["JUPYTER_CONFIG_PATH"]
        assert path == f"/srv/course-hub/config/{role}"


def test_the_z2jh_values_carry_the_same_files_and_a_shared_exchange():
    values = yaml.safe_load((HUB / "z2jh" / "values.yaml").read_text())
    files = values["singleuser"]["extraFiles"]
    for role in course_hub.ROLES:
        for path in (HUB / "real" / role).rglob("*"):
            if path.is_file():
                rel = path.relative_to(HUB / "real" / role).as_posix()
                entry = next(f for f in files.values()
                             if f["mountPath"] == f"/srv/course-hub/config/{role}/{rel}")
                assert entry["stringData"] == path.read_text(), rel
    mounts = {m["name"]: m["mountPath"] for m in values["singleuser"]["storage"]["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in values["singleuser"]["storage"]["extraVolumes"]}
    assert mounts["nbgrader-exchange"] == "/srv/nbgrader/exchange"
    assert "persistentVolumeClaim" in volumes["nbgrader-exchange"]
    hook = values["hub"]["extraConfig"]["course-roles"]
    assert hook == (HUB / "real" / "course_roles.py").read_text()
    compile(hook, "course-roles", "exec")
    auth = values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert auth.startswith(("ltiauthenticator.", "oauthenticator."))
    assert values["hub"]["config"]["Authenticator"]["admin_users"] == ["teacher"]


def test_the_tljh_script_is_valid_bash_and_installs_the_same_files():
    script = HUB / "tljh" / "setup.sh"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "install -d -m 1777 /srv/nbgrader/exchange" in text
    assert '"$HERE/real/student" "$HERE/real/instructor" /srv/course-hub/config/' in text
    assert "jupyterhub_config.d/course_roles.py" in text


# ---------------------------------------------------------------------------
# The LMS route: no hub, a zip of submissions

@pytest.mark.e2e
def test_zip_collect_turns_an_lms_download_into_submissions(tmp_path):
    from support import warmup as tc

    course = tc.make_course(tmp_path / "course")
    with open(course / "nbgrader_config.py", "a") as handle:
        handle.write("\n" + (HUB / "lms" / "nbgrader_config.py").read_text().split('"""', 2)[2])
    archive = course / "downloaded" / tc.NAME / "archive"
    archive.mkdir(parents=True)
    notebook = json.dumps(tc.submission(course, tc.CORRECT))
    with zipfile.ZipFile(archive / "submissions.zip", "w") as zf:
        zf.writestr(f"ada_1234_5678_{tc.NAME}.ipynb", notebook)
        zf.writestr(f"grace_late_2345_6789_{tc.NAME}-1.ipynb", notebook)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", tc.NAME],
                          cwd=course, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for student in ("ada", "grace"):
        path = course / "submitted" / student / tc.NAME / f"{tc.NAME}.ipynb"
        assert path.exists(), done.stdout + done.stderr
        assert json.loads(path.read_text())["cells"] == json.loads(notebook)["cells"]


# ---------------------------------------------------------------------------
# Students' copies of the lessons: nbgitpuller

GIT = ["git", "-c", "user.email=course@example.org", "-c", "user.name=Course"]


def test_the_pull_link_has_the_documented_form():
    from urllib.parse import parse_qs, urlsplit

    link = course_hub.pull_link("https://hub.example.edu/", "https://github.com/x/course",
                                branch="main")
    parts = urlsplit(link)
    assert parts.netloc == "hub.example.edu" and parts.path == "/hub/user-redirect/git-pull"
    assert parse_qs(parts.query) == {
        "repo": ["https://github.com/x/course"], "branch": ["main"], "targetpath": ["course"],
        "urlpath": ["lab/tree/course/lessons/00_compression_overview.ipynb"]}
    readme = (HUB / "README.md").read_text()
    assert "/hub/user-redirect/git-pull?repo=" in readme and "targetpath=course" in readme


@pytest.mark.e2e
def test_a_students_server_answers_the_pull_link_and_keeps_their_edits(tmp_path):
    import urllib.request

    from support.local_server import stop
    from pruning_kit.course.loopback import free_port

    course = tmp_path / "course-repo"
    (course / "lessons").mkdir(parents=True)
    lesson = course / "lessons" / "01.md"
    lesson.write_text("# Lesson 1\n\nthe text\n\n## Exercise\n\nyour answer:\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=course, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=course, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "course"], cwd=course, check=True)
    config = course_hub.write_role_config(tmp_path / "config", "student", "/x", "pruning-course",
                                          tmp_path / "exchange")
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTERHUB_USER": "ada",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
         "--ServerApp.port_retries=0", "--IdentityProvider.token=", f"--ServerApp.root_dir={home}",
         "--allow-root"], cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def pull():
        # what the link's page does: nbgitpuller's API streams the git commands it runs
        query = f"repo={course}&branch=main&targetpath=course"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/git-pull/api?{query}",
                                            timeout=60) as answer:
                    return answer.read().decode()
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)

    try:
        events = pull()
        copy = home / "course" / "lessons" / "01.md"
        assert copy.read_text() == lesson.read_text(), events
        copy.write_text(copy.read_text().replace("your answer:", "your answer: 42"))
        lesson.write_text(lesson.read_text().replace("the text", "the corrected text"))
        subprocess.run([*GIT, "commit", "-q", "-am", "fix lesson 1"], cwd=course, check=True)
        events = pull()
        merged = copy.read_text()
        assert "the corrected text" in merged and "your answer: 42" in merged, events
    finally:
        stop(server, timeout=15)
