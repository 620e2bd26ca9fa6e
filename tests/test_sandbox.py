"""The grading sandbox: every kernel that runs student code starts in bubblewrap.

- The command line and the messages, without starting anything.
- Real sandboxed kernels (RobustExecute with the course's provisioner): what a
  kernel sees and can do, interrupts, crashes and memory limits inside the
  sandbox, and a sandbox that dies with its grader.
- End to end with the real nbgrader command line (marked ``e2e``): a hostile
  submission that tries to write into the course, read ``solutions/`` and other
  students, rewrite ``gradebook.db`` and reach a listener on 127.0.0.1 is graded
  in the same run as an honest one; it gets nowhere, and the honest student
  keeps full marks.

bubblewrap comes from Debian (``/usr/bin/bwrap``); like the browser test's
Chromium, it is installed with apt-get when missing and running as root, and
the tests that need it are skipped, saying why, only where that is impossible.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from pruning_kit.course import __main__ as cli
from pruning_kit.course import execute, release, sandbox
from support.apt import apt_install
from pruning_kit.course.course_dir import run_nbgrader

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = """
c.Execute.timeout = 120
c.RobustExecute.memory_limit_mb = 6144
"""


@pytest.fixture(scope="session")
def bubblewrap():
    """A sandbox that starts here: bwrap installed (apt-get when missing, as root)."""
    if shutil.which("bwrap") is None:
        reason = apt_install("bubblewrap")
        if reason:
            pytest.skip(f"the sandbox needs bubblewrap (bwrap): {reason}")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    try:  # the repository's course starts sandboxed kernels (else: what to install, or reinstall)
        assert sandbox.grading_mode(REPO).startswith("sandbox: on")
    finally:
        monkeypatch.undo()
    return shutil.which("bwrap")


def make_course(root):
    """A course folder: solutions, two students' folders, a gradebook file."""
    (root / "solutions" / "a").mkdir(parents=True)
    (root / "solutions" / "a" / "a.ipynb").write_text("### BEGIN SOLUTION the answer")
    for student in ("alice", "bob"):
        folder = root / "autograded" / student / "a"
        folder.mkdir(parents=True)
        (folder / "data.txt").write_text(f"{student}'s data")
    (root / "gradebook.db").write_text("grades")
    return root


def run_sandboxed(course, sources, sandbox_settings=(), **options):
    """Run code cells as alice's graded notebook in a sandboxed kernel; the notebook and executor."""
    config = Config()
    config.CourseDirectory.root = str(course)
    config.RobustExecute.memory_limit_mb = options.pop("memory_limit_mb", 4096)
    for key, value in dict(sandbox_settings).items():
        config.Sandbox[key] = value
    cells = [new_code_cell(source) for source in sources]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "language": "python", "display_name": "Python 3"}})
    options.setdefault("timeout", 60)
    executor = execute.RobustExecute(config=config, preamble="",
                                     kernel_provisioner=sandbox.PROVISIONER, **options)
    executor.preprocess(nb, {"metadata": {"path": str(course / "autograded" / "alice" / "a")}})
    return nb, executor


def printed(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")


def errors(cell):
    return [o["ename"] for o in cell.outputs if o["output_type"] == "error"]


class Listener:
    """A TCP listener on the host's 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, address = self.socket.accept()
            except OSError:
                continue
            self.accepted.append(address)
            connection.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.socket.close()


# ---------------------------------------------------------------------------
# The command line and the messages (nothing started)


def mounts(args):
    """(option, path) for each mount option of a bwrap command line, in order."""
    out = []
    for i, arg in enumerate(args):
        if arg in ("--tmpfs", "--remount-ro", "--dir"):
            out.append((arg, args[i + 1]))
        elif arg in ("--ro-bind", "--bind", "--dev-bind"):
            out.append((arg, args[i + 2]))
    return out


def test_the_command_hides_the_course_and_binds_back_only_what_the_kernel_needs(tmp_path):
    course = make_course(tmp_path / "course")
    config = Config()
    config.CourseDirectory.root = str(course)
    workdir = course / "autograded" / "alice" / "a"
    args = sandbox.Sandbox(config=config).arguments(
        ["/usr/bin/python3", "-m", "ipykernel_launcher"], workdir,
        env={"AWS_SECRET_ACCESS_KEY": "hunter2", "OMP_NUM_THREADS": "8", "LANG": "C.UTF-8"})
    ops = mounts(args)
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
                 "--clearenv"):
        assert flag in args
    assert ("--ro-bind", "/") in ops and "--bind" not in args  # nothing of the host is writable
    # the course root and home become empty read-only folders ...
    for hidden in (course.resolve(), Path.home().resolve()):
        assert ops.index(("--tmpfs", str(hidden))) < ops.index(("--remount-ro", str(hidden)))
    # ... and so does the kit's checkout, which holds solutions/ beside pruning_kit/
    kit = sandbox.kit_package_dir()
    if not any(Path(p).resolve() in kit.parents for p in (sys.prefix, sys.base_prefix)):
        assert ("--tmpfs", str(kit.parent)) in ops
        assert ops.index(("--tmpfs", str(kit.parent))) < ops.index(("--ro-bind", str(kit)))
    # the kernel works in a tmpfs at its own folder's path (a copy, made inside)
    assert ops.index(("--tmpfs", str(course.resolve()))) < ops.index(("--tmpfs", str(workdir.resolve())))
    assert "--chdir" in args and args[args.index("--chdir") + 1] == str(workdir.resolve())
    env = {args[i + 1]: args[i + 2] for i, a in enumerate(args) if a == "--setenv"}
    assert "AWS_SECRET_ACCESS_KEY" not in env and env["LANG"] == "C.UTF-8"
    assert env["OMP_NUM_THREADS"] == "1" and env["HOME"] == "/tmp"
    spec = json.loads(args[-1])
    assert spec["limits"] == {"RLIMIT_AS": 8192 * 2 ** 20, "RLIMIT_NPROC": 64,
                              "RLIMIT_CPU": 900, "RLIMIT_CORE": 0}


def test_a_path_both_readable_and_hidden_stays_hidden(tmp_path):
    course = make_course(tmp_path / "course")
    config = Config()
    config.CourseDirectory.root = str(course)
    config.Sandbox.readable_paths = [str(course), str(course / "solutions")]
    args = sandbox.Sandbox(config=config).arguments(["/bin/true"], course / "autograded" / "alice" / "a")
    ops = mounts(args)
    root = str(course.resolve())
    assert ops.index(("--ro-bind", root)) < ops.index(("--tmpfs", root))
    # what lies under a hidden path may be bound back on purpose (solutions here, the kit usually)
    assert ops.index(("--tmpfs", root)) < ops.index(("--ro-bind", root + "/solutions"))


def test_the_memory_limit_follows_robust_execute_unless_set():
    config = Config()
    config.RobustExecute.memory_limit_mb = 1234
    assert sandbox.Sandbox(config=config).memory_limit_mb == 1234
    config.Sandbox.memory_limit_mb = 999
    assert sandbox.Sandbox(config=config).memory_limit_mb == 999
    assert sandbox.Sandbox().memory_limit_mb == 8192


def test_missing_bubblewrap_says_how_to_install_it_and_how_to_go_without():
    problem = sandbox.Sandbox(bwrap="/nonexistent/bwrap").problem()
    assert "bubblewrap (bwrap), which is not installed" in problem
    assert "sudo apt-get install bubblewrap" in problem and "dnf install bubblewrap" in problem
    assert "c.Sandbox.allow_unsandboxed_grading = True" in problem
    assert "make grade UNSANDBOXED=1" in problem
    # a bwrap that can't create the sandbox (here: one that always fails)
    problem = sandbox.Sandbox(bwrap=shutil.which("false")).problem()
    assert "could not start the grading sandbox" in problem
    assert "kernel.unprivileged_userns_clone=1" in problem and "UNSANDBOXED=1" in problem


def grading_course(root, extra=""):
    shutil.copytree(REPO / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text() + extra)
    folder = root / "submitted" / "someone" / "pruning"
    folder.mkdir(parents=True)
    (folder / "pruning.ipynb").write_text("{}")
    return root


def test_grading_refuses_where_the_sandbox_cannot_start_unless_allowed(tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    course = grading_course(tmp_path / "course", '\nc.Sandbox.bwrap = "/nonexistent/bwrap"\n')
    with pytest.raises(RuntimeError, match="sudo apt-get install bubblewrap"):
        sandbox.grading_mode(course)
    # make grade: refuses before nbgrader runs, with the same message and exit code 2
    assert cli.main(["--course-dir", str(course), "grade", "pruning"]) == 2
    said = capsys.readouterr().err
    assert "error: The grading sandbox needs bubblewrap" in said and "UNSANDBOXED=1" in said
    assert not (course / "autograded").exists()
    # allowed by the environment (make grade UNSANDBOXED=1) or by the configuration
    monkeypatch.setenv(sandbox.ALLOW_ENV, "1")
    assert sandbox.grading_mode(course).startswith("sandbox: OFF, grading unsandboxed")
    monkeypatch.delenv(sandbox.ALLOW_ENV)
    (course / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text() + "c.Sandbox.allow_unsandboxed_grading = True\n")
    assert sandbox.grading_mode(course).startswith("sandbox: OFF")


def test_a_course_config_without_the_sandbox_is_refused_too(tmp_path, monkeypatch):
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    course = grading_course(tmp_path / "course", '\nc.RobustExecute.kernel_provisioner = ""\n')
    with pytest.raises(RuntimeError, match="does not start grading kernels in the sandbox"):
        sandbox.grading_mode(course)


def test_the_course_selects_the_sandbox_and_the_package_registers_it():
    namespace = {"get_config": lambda: config, "__file__": str(REPO / "nbgrader_config.py")}
    config = Config()
    exec((REPO / "nbgrader_config.py").read_text(), namespace)
    assert config.RobustExecute.kernel_provisioner == sandbox.PROVISIONER
    assert "allow_unsandboxed_grading" not in config.get("Sandbox", {})
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    registered = project["entry-points"]["jupyter_client.kernel_provisioners"]
    assert registered[sandbox.PROVISIONER] == "pruning_kit.course.sandbox:SandboxProvisioner"


def test_makefile_installs_bubblewrap_and_passes_unsandboxed():
    dry = subprocess.run(["make", "-n", "bubblewrap"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert "apt-get install -y -qq bubblewrap" in dry and "command -v bwrap" in dry
    database = subprocess.run(["make", "-pn", "grade", "UNSANDBOXED=1"], cwd=REPO,
                              capture_output=True, text=True).stdout
    assert f"{sandbox.ALLOW_ENV} := 1" in database
    rules = [line for line in database.splitlines()
             if line.startswith(("setup:", "test:", "test-fast:", "grade:"))]
    assert len(rules) == 4 and all("bubblewrap" in line for line in rules), rules


# ---------------------------------------------------------------------------
# Real sandboxed kernels

LOOK_AROUND = r'''
import json, os, resource, socket, sys
root, seen = {root!r}, {{}}
def attempt(action):
    try:
        return ["ok", repr(action())[:200]]
    except Exception as exc:
        return ["failed", type(exc).__name__]
seen["cwd"] = os.getcwd()
seen["own"] = sorted(os.listdir("."))
seen["own_data"] = open("data.txt").read()
seen["write_own"] = attempt(lambda: open("notes.txt", "w").write("mine"))
seen["write_tmp"] = attempt(lambda: open("/tmp/scratch", "w").write("x"))
seen["root"] = attempt(lambda: sorted(os.listdir(root)))
seen["graded"] = attempt(lambda: sorted(os.listdir(os.path.join(root, "autograded"))))
seen["bob"] = attempt(lambda: open(os.path.join(root, "autograded", "bob", "a", "data.txt")).read())
seen["solutions"] = attempt(lambda: open(os.path.join(root, "solutions", "a", "a.ipynb")).read())
seen["write_root"] = attempt(lambda: open(os.path.join(root, "pwned.txt"), "w").write("x"))
seen["home"] = attempt(lambda: sorted(os.listdir({home!r})))
seen["kit_checkout"] = attempt(lambda: sorted(os.listdir({checkout!r})))
seen["connect"] = attempt(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
seen["run"] = sorted(os.listdir("/run"))
seen["env"] = sorted(os.environ)
seen["uid"] = os.getuid()
seen["limits"] = {{name: resource.getrlimit(getattr(resource, name))[0]
                  for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_CORE")}}
import pruning_kit as pk
train, test = pk.data.load("mnist5k")
seen["mnist5k"] = len(train)
import torch
seen["threads"] = torch.get_num_threads()
print(json.dumps(seen))
'''


def test_a_sandboxed_kernel_sees_only_its_own_folder(bubblewrap, tmp_path, monkeypatch):
    course = make_course(tmp_path / "course")
    monkeypatch.setenv("PK_SANDBOX_TEST_SECRET", "s3cret")
    listener = Listener()
    try:
        source = LOOK_AROUND.format(root=str(course), home=str(Path.home()), port=listener.port,
                                    checkout=str(sandbox.kit_package_dir().parent))
        nb, _ = run_sandboxed(course, [source])
    finally:
        listener.close()
    assert not errors(nb.cells[0]), nb.cells[0].outputs
    seen = json.loads(printed(nb.cells[0]))
    workdir = course / "autograded" / "alice" / "a"
    # its own folder: readable and writable, a copy in memory (nothing reaches the disk)
    assert seen["cwd"] == str(workdir.resolve()) and seen["own"] == ["data.txt"]
    assert seen["own_data"] == "alice's data" and seen["write_own"][0] == "ok"
    assert sorted(p.name for p in workdir.iterdir()) == ["data.txt"]
    assert seen["write_tmp"][0] == "ok" and not Path("/tmp/scratch").exists()
    # of the course root only the way to its own folder; nothing of bob, solutions, the gradebook
    assert seen["root"] == ["ok", "['autograded']"] and seen["graded"] == ["ok", "['alice']"]
    assert seen["bob"][0] == seen["solutions"][0] == seen["write_root"][0] == "failed"
    assert not (course / "pwned.txt").exists()
    # home: at most the folders leading to what is bound back (the Python install, the data cache)
    home = Path.home().resolve()
    allowed = {p.relative_to(home).parts[0] for p in sandbox.Sandbox().readable() if home in p.parents}
    assert seen["home"][0] == "ok" and set(eval(seen["home"][1])) <= allowed
    kit_listing = eval(seen["kit_checkout"][1]) if seen["kit_checkout"][0] == "ok" else []
    assert "solutions" not in kit_listing and "nbgrader_config.py" not in kit_listing
    # no network, no host sockets, no grader environment
    assert seen["connect"][0] == "failed" and listener.accepted == []
    assert seen["run"] == ["kernel"]
    assert "PK_SANDBOX_TEST_SECRET" not in seen["env"] and "PATH" in seen["env"]
    # limits; an unprivileged user of its own when grading as root; the kit and its data work
    assert seen["limits"] == {"RLIMIT_AS": 4096 * 2 ** 20, "RLIMIT_NPROC": 64, "RLIMIT_CPU": 900,
                              "RLIMIT_CORE": 0}
    if os.geteuid() == 0:
        assert sandbox.SANDBOX_UIDS[0] <= seen["uid"] <= sandbox.SANDBOX_UIDS[1]
    assert seen["mnist5k"] == 4000 and seen["threads"] == 1


def test_interrupts_crashes_and_memory_blowups_inside_the_sandbox(bubblewrap, tmp_path):
    course = make_course(tmp_path / "course")
    nb, executor = run_sandboxed(course, [
        "x = 1",
        "while True:\n    pass",                          # interrupted after the timeout
        "print('x is', x)",                               # same kernel: x survived
        "blocks = []\nwhile True:\n    blocks.append(bytearray(2 ** 28))",  # the address-space limit
        "import threading, time\n"
        "threads = []\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        t = threading.Thread(target=time.sleep, args=(10,), daemon=True)\n"
        "        t.start(); threads.append(t)\n"
        "except RuntimeError as exc:\n"
        "    print('stopped at', len(threads), type(exc).__name__)",   # the process limit
        "import os\nos._exit(1)",                         # kills the kernel: restart, replay
        "print('after the crash x is', x)",
    ], timeout=4, memory_limit_mb=2048)
    assert errors(nb.cells[1]) == ["KeyboardInterrupt", "CellTimeoutError"]
    assert printed(nb.cells[2]) == "x is 1\n"
    assert errors(nb.cells[3]) == ["MemoryError"]
    stopped = printed(nb.cells[4]).split()
    assert stopped[:2] == ["stopped", "at"] and int(stopped[2]) < 64, stopped
    assert errors(nb.cells[5]) == [execute.KERNEL_DIED]
    assert printed(nb.cells[6]) == "after the crash x is 1\n"
    assert [kind for _, kind in executor.restart_log] == ["DeadKernelError"]


def test_a_kernel_refuses_to_start_without_the_sandbox_unless_allowed(tmp_path, monkeypatch):
    course = make_course(tmp_path / "course")
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    with pytest.raises(RuntimeError, match="bubblewrap \\(bwrap\\), which is not installed"):
        run_sandboxed(course, ["print('ran')"], {"bwrap": "/nonexistent/bwrap"})
    nb, _ = run_sandboxed(course, ["import os\nprint(os.getcwd())"],
                          {"bwrap": "/nonexistent/bwrap", "allow_unsandboxed_grading": True})
    assert printed(nb.cells[0]).strip() == str(course / "autograded" / "alice" / "a")


GRADER = r'''
import sys, time
from jupyter_client.manager import KernelManager
from traitlets.config import Config
config = Config()
config.CourseDirectory.root = sys.argv[1]
km = KernelManager(kernel_name="python3", config=config)
km.kernel_spec.metadata["kernel_provisioner"] = {"provisioner_name": sys.argv[3], "config": {}}
km.start_kernel(cwd=sys.argv[2])
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=60)
print(km.provisioner.sandbox_pid, km.provisioner.kernel_pid, flush=True)
time.sleep(600)
'''


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_the_sandbox_dies_with_the_grader(bubblewrap, tmp_path):
    course = make_course(tmp_path / "course")
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(course),
                               str(course / "autograded" / "alice" / "a"), sandbox.PROVISIONER],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = [int(p) for p in grader.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids), pids
    finally:
        os.killpg(grader.pid, signal.SIGKILL)  # the grader dies without shutting anything down
        grader.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


# ---------------------------------------------------------------------------
# End to end: nbgrader autograde with the course's configuration

HOSTILE = r'''
import json, os, socket, sqlite3
ROOT = {root!r}
report = {{}}
def attempt(name, action):
    try:
        report[name] = ["ok", repr(action())[:300]]
    except Exception as exc:
        report[name] = ["failed", (type(exc).__name__ + ": " + str(exc))[:300]]
# walk up from the working folder, listing everything on the way
listings, folder = {{}}, os.getcwd()
while True:
    try:
        listings[folder] = sorted(os.listdir(folder))
    except Exception as exc:
        listings[folder] = type(exc).__name__
    if folder == "/":
        break
    folder = os.path.dirname(folder)
report["listings"] = listings
# (1) write into the course folder
attempt("write_course", lambda: open(os.path.join(ROOT, "PWNED.txt"), "w").write("pwned"))
attempt("write_solutions", lambda: open(os.path.join(ROOT, "solutions", "pruning", "PWNED.txt"), "w").write("x"))
attempt("write_release", lambda: open(os.path.join(ROOT, "assignments", "pruning", "pruning.ipynb"), "a").write("x"))
attempt("write_host_tmp", lambda: open({host_tmp!r}, "w").write("x"))
# (2) read the solutions
attempt("list_solutions", lambda: os.listdir(os.path.join(ROOT, "solutions", "pruning")))
attempt("read_solutions", lambda: open(os.path.join(ROOT, "solutions", "pruning", "pruning.ipynb")).read())
attempt("read_kit_solutions", lambda: open({kit_solutions!r}).read())
attempt("read_references", lambda: open({references!r}).read())
attempt("import_grader", lambda: __import__("pruning_grader.assignments.pruning.references"))
# (3) list and read other students' submissions
attempt("list_students", lambda: os.listdir(os.path.join(ROOT, "submitted")))
attempt("list_graded", lambda: os.listdir(os.path.join(ROOT, "autograded")))
attempt("read_other", lambda: open(os.path.join(ROOT, "submitted", "honest", "pruning", "pruning.ipynb")).read())
attempt("overwrite_other", lambda: open(os.path.join(ROOT, "submitted", "honest", "pruning", "pruning.ipynb"), "w").write("{{}}"))
# (4) open the gradebook and rewrite every grade
def rewrite_grades():
    db = sqlite3.connect(os.path.join(ROOT, "gradebook.db"))
    db.execute("UPDATE grade SET manual_score = 1000")
    db.commit()
    return db.execute("SELECT count(*) FROM grade").fetchone()
attempt("rewrite_gradebook", rewrite_grades)
# (5) reach a listener on the grading machine's 127.0.0.1
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
# and leave a trap for the grader: its notebook replaced by a link to the gradebook
attempt("plant_link", lambda: (os.remove("pruning.ipynb"), os.symlink(os.path.join(ROOT, "gradebook.db"), "pruning.ipynb")))
attempt("write_own_folder", lambda: open("notes.txt", "w").write("mine"))
report["environment"] = sorted(os.environ)
print("HOSTILE-REPORT " + json.dumps(report))
'''

def submit_solution(root, student, first_cell=None):
    """The released pruning notebook with the reference solutions; ``first_cell`` goes at the top
    of the first answer cell, so it runs in the grading kernel and in the checker's student
    process alike."""
    released = json.loads((root / "assignments" / "pruning" / "pruning.ipynb").read_text())
    source = json.loads((root / "solutions" / "pruning" / "pruning.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: "".join(
        line for line in c["source"] if "### BEGIN SOLUTION" not in line
        and "### END SOLUTION" not in line) for c in source["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")}
    if first_cell is not None:
        answers["magnitude_mask"] = first_cell + "\n" + answers["magnitude_mask"]
    for cell in released["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    folder = root / "submitted" / student / "pruning"
    folder.mkdir(parents=True)
    (folder / "pruning.ipynb").write_text(json.dumps(released))


MUST_FAIL = ("write_course", "write_solutions", "write_release", "list_solutions",
             "read_solutions", "read_kit_solutions", "read_references", "import_grader",
             "list_students", "read_other", "overwrite_other", "rewrite_gradebook", "connect")


def tree(root, skip=("autograded", "feedback", "gradebook.db")):
    """{path: sha256} of every file under root, except what nbgrader writes while grading."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip or rel.name.startswith(".nbgrader") or not path.is_file():
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.e2e
def test_a_hostile_submission_gets_nowhere_and_the_honest_one_keeps_full_marks(
        bubblewrap, tmp_path_factory, monkeypatch):
    from nbgrader.api import Gradebook

    root = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text() + TEST_CONFIG)
    release.release(root)
    submit_solution(root, "honest")
    host_tmp = Path(f"/tmp/pk-hostile-{os.getpid()}")
    listener = Listener()
    submit_solution(root, "hostile", first_cell=HOSTILE.format(
        root=str(root), port=listener.port, host_tmp=str(host_tmp),
        kit_solutions=str(REPO / "solutions" / "pruning" / "pruning.ipynb"),
        references=str(REPO / "grader" / "pruning_grader" / "assignments" / "pruning" /
                       "references.py")))
    monkeypatch.setenv("PK_SANDBOX_TEST_SECRET", "s3cret")
    assert sandbox.grading_mode(root).startswith("sandbox: on")
    before = tree(root)
    try:
        done = run_nbgrader(root, "autograde", "pruning", "--force")
    finally:
        listener.close()

    graded = json.loads((root / "autograded" / "hostile" / "pruning" / "pruning.ipynb").read_text())
    lines = [line for cell in graded["cells"] for out in cell.get("outputs", [])
             for line in "".join(out.get("text", "")).splitlines()
             if line.startswith("HOSTILE-REPORT ")]
    assert len(lines) == 1, done.stdout[-3000:]
    report = json.loads(lines[0][len("HOSTILE-REPORT "):])
    results = {k: v for k, v in report.items() if k not in ("listings", "environment")}
    seen = json.dumps([report["listings"]] + [v for v in results.values() if v[0] == "ok"])
    # it tried everything and got nowhere
    assert {k: report[k][0] for k in MUST_FAIL} == {k: "failed" for k in MUST_FAIL}, report
    assert report["write_own_folder"][0] == "ok"  # its own folder (a copy) is writable
    # nothing written outside its folder; no solutions, no other student seen
    assert tree(root) == before
    assert not (root / "PWNED.txt").exists() and not host_tmp.exists()
    assert report["listings"][str(root)] == ["autograded"]
    assert report["listings"][str(root / "autograded")] == ["hostile"]
    assert "honest" not in seen and "BEGIN SOLUTION" not in seen and "solutions" not in seen
    # the gradebook changed only through nbgrader; no connection reached the listener
    assert listener.accepted == []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores = {}
        for student in ("honest", "hostile"):
            notebook = gb.find_submission_notebook("pruning", "pruning", student)
            assert all(grade.manual_score is None for grade in notebook.grades)
            scores[student] = (notebook.code_score, notebook.max_code_score)
    # full marks for both: the hostile one's functions are right, it just gained nothing else
    assert scores["honest"][0] == scores["honest"][1] > 0 and scores["hostile"] == scores["honest"]
    assert "PK_SANDBOX_TEST_SECRET" not in report["environment"]
