"""Every kernel that runs student code during grading starts in a sandbox.

A submission's code runs on the grading machine, with the grader's rights,
while nbgrader grades it. :class:`SandboxProvisioner` (a Jupyter kernel
provisioner, registered as ``pruning-kit-sandbox`` and selected in
``nbgrader_config.py`` with ``c.RobustExecute.kernel_provisioner``) starts each
grading kernel under bubblewrap (``bwrap``), so the code sees:

- the system and the Python environment, read-only;
- as its working folder, a copy of its own autograded folder in memory
  (writable), and a private ``/tmp`` and ``/dev/shm``: nothing it writes reaches
  the disk, and the size of each writable area is limited;
- nothing of the course root (``solutions/``, ``gradebook.db``, ``submitted/``,
  other students' folders), of home folders, nbgrader's exchange or Jupyter's
  configuration: those paths are empty read-only folders. Only the Python
  installation, the kit's package folder and the kit's data cache are bound
  back, read-only. The grader's environment variables are not passed on;
- no network (a network namespace of its own, not even the host's 127.0.0.1)
  and no host Unix sockets (``/run`` and ``/tmp`` are private). The kernel talks
  to nbgrader through Unix sockets in its own ``/run/kernel``, which nbgrader
  reaches as ``/proc/<pid>/root/run/kernel``;
- a process tree of its own that dies with the grader (``--unshare-pid``,
  ``--die-with-parent``);
- limits set before the kernel starts, inherited by every process it starts:
  address space per process (``RLIMIT_AS``, ``RobustExecute.memory_limit_mb``
  unless ``c.Sandbox.memory_limit_mb`` says otherwise), processes and threads
  (``RLIMIT_NPROC``), CPU seconds per process (``RLIMIT_CPU``), no core files;
- when grading runs as root, a user id of its own with no privileges.

Where bubblewrap is missing or can't create namespaces, kernels refuse to start
with a message saying what is missing and how to install it, unless unsandboxed
grading is allowed explicitly: ``c.Sandbox.allow_unsandboxed_grading = True``
in ``nbgrader_config.py``, or the environment variable
``PRUNING_KIT_ALLOW_UNSANDBOXED_GRADING=1`` (``make grade UNSANDBOXED=1``).

Example:
    >>> print(Sandbox(bwrap="/nonexistent/bwrap").problem().splitlines()[0])
    The grading sandbox needs bubblewrap (bwrap), which is not installed.
"""

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, Integer, List, Unicode, default
from traitlets.config import Config, LoggingConfigurable

PROVISIONER = "pruning-kit-sandbox"
"""The provisioner's name (pyproject.toml's ``jupyter_client.kernel_provisioners`` entry point)."""

ALLOW_ENV = "PRUNING_KIT_ALLOW_UNSANDBOXED_GRADING"
"""Set to 1, it allows unsandboxed grading (``make grade UNSANDBOXED=1`` sets it)."""

RUN = "/run/kernel"
"""Inside the sandbox: the connection file, the kernel's sockets, the submitted folder."""

SANDBOX_UIDS = (1_900_000_000, 1_900_065_535)
"""When grading runs as root, each kernel gets a user id of its own from this range."""

ALLOW_HINT = (
    "Without a sandbox, student code runs with your rights while it is graded: it can read "
    "solutions/ and other students' work and rewrite gradebook.db. To grade unsandboxed anyway, "
    "set `c.Sandbox.allow_unsandboxed_grading = True` in nbgrader_config.py, or run "
    f"`make grade UNSANDBOXED=1` ({ALLOW_ENV}=1).")

# Runs inside the sandbox with `python -I -S` (standard library only), before the kernel:
# copy the submitted folder into the writable working folder, give it (and the socket folder)
# to the kernel's user id when grading as root, drop root, set the limits, start the kernel.
ENTER = r"""
import json, os, resource, shutil, stat, sys
spec = json.loads(sys.argv[1])

def special_files(folder, names):  # fifos, sockets, devices: not copied
    kinds = (stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK)
    return [n for n in names
            if not any(kind(os.lstat(os.path.join(folder, n)).st_mode) for kind in kinds)]

shutil.copytree(spec["source"], spec["workdir"], symlinks=True, ignore=special_files,
                dirs_exist_ok=True)
uid = spec["uid"]
if uid is not None:
    os.lchown(spec["runtime"], uid, uid)
    for root, dirs, files in os.walk(spec["workdir"]):
        os.lchown(root, uid, uid)
        for name in files:
            os.lchown(os.path.join(root, name), uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
for name, value in spec["limits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
os.execv(spec["argv"][0], spec["argv"])
"""

PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION",
              "NBGRADER_EXECUTION", "JPY_SESSION_NAME")
"""The only variables of the grader's environment a sandboxed kernel gets."""


def python_path():
    """This Python, as a path the sandbox can reach: ``..`` collapsed (``tests/../.venv`` names a
    folder the sandbox hides), symlinks kept (a virtualenv's ``python`` is one)."""
    return os.path.normpath(os.path.abspath(sys.executable))


def kit_cache_dir():
    """Where :mod:`pruning_kit.data` keeps its mnist5k cache (``~/.cache/pruning_kit``).

    Example:
        >>> kit_cache_dir().name
        'pruning_kit'
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pruning_kit"


def kit_package_dir():
    """The folder of the ``pruning_kit`` package (bound read-only into the sandbox)."""
    import pruning_kit

    return Path(pruning_kit.__file__).resolve().parent


def grader_package_dir():
    """The folder of the instructor's ``pruning_grader`` package (hidden from student code), or None.

    Found without importing it. The grading sandbox hides it wherever it is installed: a
    student's code must never read the hidden tests or the reference solutions.
    """
    from importlib.util import find_spec

    try:
        spec = find_spec("pruning_grader")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


class Sandbox(LoggingConfigurable):
    """The sandbox's settings (``c.Sandbox.*`` in ``nbgrader_config.py``) and its command line."""

    allow_unsandboxed_grading = Bool(
        help="Grade without the sandbox where it can't start (no bubblewrap, no user "
             "namespaces), instead of refusing. Student code then runs with your rights. "
             f"Default: True when the environment variable {ALLOW_ENV}=1.",
    ).tag(config=True)

    @default("allow_unsandboxed_grading")
    def _allow_from_environment(self):
        return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")

    bwrap = Unicode("bwrap", help="The bubblewrap program (a name on PATH, or a path).").tag(
        config=True)

    hidden_paths = List(
        Unicode(), ["~", "/home", "/root", "/srv", "/usr/local/share/nbgrader", "/etc/jupyter",
                    "/usr/local/etc/jupyter", "{prefix}/etc/jupyter"],
        help="Paths the kernel sees as empty read-only folders, besides the course root and "
             "nbgrader's exchange ({prefix}: the Python environment).",
    ).tag(config=True)

    readable_paths = List(
        Unicode(), help="Paths bound back read-only inside hidden ones (default: the kit's data "
                        "cache). The Python installation and the kit's package always are.",
    ).tag(config=True)

    @default("readable_paths")
    def _readable_default(self):
        return [str(kit_cache_dir())]

    writable_mb = Integer(
        256, help="Size in MiB of each writable area in memory: the working folder (plus the "
                  "size of the copied folder, up to 4 times this), /tmp and /dev/shm.",
    ).tag(config=True)

    memory_limit_mb = Integer(
        help="Address space of each process in MiB (RLIMIT_AS), set before the kernel starts. "
             "Default: RobustExecute.memory_limit_mb of the same configuration, else 8192.",
    ).tag(config=True)

    @default("memory_limit_mb")
    def _memory_from_execute(self):
        return self.config.get("RobustExecute", {}).get("memory_limit_mb") or 8192

    max_processes = Integer(
        64, help="Processes and threads of the sandbox (RLIMIT_NPROC); a kernel training "
                  "with torch has 13.",
    ).tag(config=True)

    cpu_time_s = Integer(
        900, help="CPU seconds per process (RLIMIT_CPU); cells have their own wall-clock timeouts.",
    ).tag(config=True)

    threads = Integer(1, help="OMP/MKL/OpenBLAS threads of the kernel.").tag(config=True)

    # -- where things are -------------------------------------------------------------------

    def course_root(self):
        """The course root nbgrader runs in (``CourseDirectory.root``, else the current folder)."""
        root = self.config.get("CourseDirectory", {}).get("root") or os.getcwd()
        return Path(root).resolve()

    def hidden(self):
        """The existing paths the kernel must not see, resolved."""
        paths = [str(self.course_root())]
        exchange = self.config.get("Exchange", {}).get("root")
        if exchange:
            paths.append(exchange)
        # a source checkout of the kit holds solutions/ beside pruning_kit/: hide the checkout
        checkout = kit_package_dir().parent
        prefixes = _existing([sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix])
        if not any(p == checkout or p in checkout.parents for p in prefixes):
            paths.append(str(checkout))
        grader = grader_package_dir()
        if grader is not None:
            paths.append(str(grader))
        paths += [p.replace("{prefix}", sys.prefix) for p in self.hidden_paths]
        return _existing(paths)

    def readable(self):
        """The existing paths bound back read-only: Python, the kit, ``readable_paths``."""
        return _existing([sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                          str(kit_package_dir()), *self.readable_paths])

    # -- the command line -------------------------------------------------------------------

    def arguments(self, argv, workdir, *, connection_fd=None, info_fd=None, env=None, uid=None,
                  kit_view=None):
        """The ``bwrap`` command line that runs ``argv`` in the sandbox.

        Args:
            argv: the kernel's command (absolute path of the program first).
            workdir: the student's autograded folder; the kernel works in a copy of it.
            connection_fd: a file descriptor to read the connection file from
                (it appears at ``/run/kernel/connection.json``).
            info_fd: a file descriptor bwrap writes the sandbox's pid to (``--info-fd``).
            env: the environment the grader would give the kernel (only ``PASSED_ENV`` passes).
            uid: run the kernel as this user id (grading as root), else as the grader.
            kit_view: a folder holding a ``pruning_kit`` package to bind, read-only, where the
                kit's package is (the grading view without the kit's graded work; see the
                grader's ``kit_view``), else the kit itself.

        Returns:
            list of str.

        Example:
            >>> args = Sandbox().arguments(["/bin/true"], "/srv/course/autograded/ada/pruning")
            >>> args[args.index("--ro-bind") + 1: args.index("--ro-bind") + 3]
            ['/', '/']
            >>> "--unshare-net" in args and "--die-with-parent" in args and "--clearenv" in args
            True
        """
        workdir = Path(workdir).resolve()
        env = os.environ if env is None else env
        mib = 1024 * 1024
        size = self.writable_mb * mib
        copied = sum(p.lstat().st_size for p in workdir.rglob("*") if p.is_file()
                     and not p.is_symlink()) if workdir.is_dir() else 0
        copied = min(copied, 4 * size)  # a bigger folder fails to copy: that kernel won't start
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--size", str(size), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(size), "--tmpfs", "/dev/shm",
                "--perms", "0755", "--size", str(mib), "--tmpfs", "/run",
                "--perms", "0700", "--dir", RUN]
        if workdir.is_dir():
            args += ["--ro-bind", str(workdir), f"{RUN}/submitted"]
        if connection_fd is not None:
            args += ["--perms", "0444", "--ro-bind-data", str(connection_fd),
                     f"{RUN}/connection.json"]
        # hidden folders become empty tmpfs, what the kernel needs is bound back read-only,
        # the working folder is a tmpfs
        hidden = self.hidden()
        args += _layers([(p, "hide") for p in hidden] + [(p, "read") for p in self.readable()]
                        + [(workdir, "work")], tmpfs_mib=1, work_bytes=size + copied)
        if kit_view is not None:
            args += ["--ro-bind", str(Path(kit_view) / "pruning_kit"), str(kit_package_dir())]
        for path in hidden:
            args += ["--remount-ro", str(path)]
        args += ["--clearenv"]
        for key, value in self.environment(env).items():
            args += ["--setenv", key, value]
        args += ["--chdir", str(workdir)]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        limits = {"RLIMIT_AS": self.memory_limit_mb * mib, "RLIMIT_NPROC": self.max_processes,
                  "RLIMIT_CPU": self.cpu_time_s, "RLIMIT_CORE": 0}
        spec = {"source": f"{RUN}/submitted", "workdir": str(workdir), "runtime": RUN,
                "uid": uid, "limits": limits, "argv": list(argv)}
        return args + ["--", python_path(), "-I", "-S", "-c", ENTER, json.dumps(spec)]

    def server_arguments(self, argv, home, *, writable=(), readable=()):
        """The ``bwrap`` command line for a student's Jupyter server on the trial hub.

        The server keeps the network (it talks to the hub) and the environment it is given,
        but sees the course root, the grader package and ``hidden_paths`` as empty folders:
        only the Python installation, the kit's package and its data cache are bound back
        read-only, ``readable`` too (the students' Jupyter configuration), and ``home`` and
        ``writable`` (nbgrader's exchange) read-write. A student's code in that server can't
        read ``solutions/``, ``grader/`` or another student's folder.

        Example:
            >>> args = Sandbox().server_arguments(["/bin/true"], "/srv/hub/homes/ada")
            >>> "--unshare-net" in args, args[args.index("--bind") + 1]
            (False, '/srv/hub/homes/ada')
        """
        home = Path(home)
        args = [self.bwrap, "--unshare-pid", "--unshare-ipc", "--die-with-parent",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]
        # the environment's Jupyter configuration enables JupyterLab and nbgrader's student
        # extensions (what pip installed): a server needs it, a grading kernel does not
        extensions = (Path(sys.prefix) / "etc" / "jupyter").resolve()
        hidden = [p for p in self.hidden() if p != extensions]
        args += _layers([(p, "hide") for p in hidden]
                        + [(p, "read") for p in self.readable() + _existing(map(str, readable))]
                        + [(Path(p), "bind") for p in [home, *writable]], tmpfs_mib=1)
        for path in hidden:
            args += ["--remount-ro", str(path)]
        return args + ["--chdir", str(home), "--", *argv]

    def environment(self, env):
        """The kernel's environment: a few variables of ``env``, one thread, private folders.

        Example:
            >>> env = Sandbox().environment({"OMP_NUM_THREADS": "8", "AWS_SECRET_KEY": "x"})
            >>> env["OMP_NUM_THREADS"], "AWS_SECRET_KEY" in env
            ('1', False)
        """
        out = {key: env[key] for key in PASSED_ENV if key in env}
        threads = str(self.threads)
        out.update({
            "PATH": f"{Path(python_path()).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student",
            "PYTHONPATH": str(kit_package_dir().parent), "PYTHONDONTWRITEBYTECODE": "1",
            "XDG_CACHE_HOME": str(kit_cache_dir().parent), "MPLCONFIGDIR": "/tmp/matplotlib",
            "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
            "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE",
            "JPY_PARENT_PID": "1",  # the kernel's parent is the sandbox's init: no parent polling
        })
        out.setdefault("MPLBACKEND", "Agg")
        return out

    # -- can it start? ----------------------------------------------------------------------

    def problem(self):
        """None when the sandbox starts here, else what is missing and how to fix it.

        Starts a real sandbox once per process (about 0.1 s) and remembers the answer.
        """
        path = shutil.which(self.bwrap)
        if path is None:
            return ("The grading sandbox needs bubblewrap (bwrap), which is not installed.\n"
                    "Install it: `sudo apt-get install bubblewrap` (Debian, Ubuntu; `make setup` "
                    "does this when run as root), `sudo dnf install bubblewrap` (Fedora), "
                    "`sudo pacman -S bubblewrap` (Arch).\n" + ALLOW_HINT)
        key = (path, os.geteuid(), tuple(map(str, self.hidden())), tuple(map(str, self.readable())))
        if key not in _TRIALS:
            _TRIALS[key] = self._trial(path)
        return _TRIALS[key]

    def _trial(self, path):
        with tempfile.TemporaryDirectory(prefix="sandbox-trial-") as folder:
            look = "import importlib.util as u, sys; sys.exit(u.find_spec('pruning_kit') is None)"
            args = self.arguments([python_path(), "-c", look], folder, uid=sandbox_uid())
            try:
                done = subprocess.run(args, capture_output=True, text=True, timeout=60,
                                      start_new_session=True)
            except (OSError, subprocess.TimeoutExpired) as exc:
                done = subprocess.CompletedProcess(args, 1, "", str(exc))
        if done.returncode == 0:
            return None
        said = " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit code {done.returncode}"
        return (f"bubblewrap ({path}) is installed but could not start the grading sandbox: "
                f"{said}\nWhere it can't create namespaces ('Operation not permitted', 'setting "
                "up uid map'), turn user namespaces on: on Debian `sudo sysctl -w "
                "kernel.unprivileged_userns_clone=1`; on Ubuntu 23.10 and later `sudo sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile for "
                "bwrap); in a Docker container, run it with `--security-opt seccomp=unconfined "
                "--security-opt apparmor=unconfined` (or `--privileged`).\n" + ALLOW_HINT)

    def version(self):
        """``bubblewrap 0.8.0``, or '' when bwrap is missing."""
        path = shutil.which(self.bwrap)
        if path is None:
            return ""
        done = subprocess.run([path, "--version"], capture_output=True, text=True)
        return done.stdout.strip()


_TRIALS = {}


def _layers(layers, *, tmpfs_mib, work_bytes=0):
    """bwrap mounts for ``(path, kind)`` layers, from the root down so a deeper one lands on top.

    Kinds: ``hide`` (an empty read-only tmpfs), ``read`` (bound back read-only), ``bind``
    (bound read-write), ``work`` (a writable tmpfs of ``work_bytes``). A path both hidden
    and readable stays hidden; folders inside a fresh tmpfs are made on the way down.
    """
    mib = 1024 * 1024
    order = {"read": 0, "hide": 1, "bind": 2, "work": 2}
    args, made = [], set()
    done = [(Path(p), "tmpfs") for p in ("/tmp", "/dev/shm", "/run")]
    for path, kind in sorted(layers, key=lambda m: (len(m[0].parts), order[m[1]])):
        cover = max((m for m in done if path != m[0] and m[0] in path.parents),
                    key=lambda m: len(m[0].parts), default=None)
        if cover is not None and cover[1] not in ("read", "bind"):  # inside a fresh tmpfs
            for folder in reversed([p for p in path.parents if cover[0] in p.parents]):
                if folder not in made:
                    made.add(folder)
                    args += ["--perms", "0755", "--dir", str(folder)]
        if kind == "hide":
            args += ["--perms", "0755", "--size", str(tmpfs_mib * mib), "--tmpfs", str(path)]
        elif kind == "read":
            args += ["--ro-bind", str(path), str(path)]
        elif kind == "bind":
            args += ["--bind", str(path), str(path)]
        else:
            args += ["--perms", "0700", "--size", str(work_bytes), "--tmpfs", str(path)]
        done.append((path, kind))
    return args


def _existing(paths):
    out = []
    for text in paths:
        path = Path(os.path.expanduser(text))
        if path.is_absolute() and path.exists():
            path = path.resolve()
            if path not in out and path != Path("/"):
                out.append(path)
    return out


def sandbox_uid():
    """The user id a kernel runs as: a fresh unprivileged one when grading as root, else None."""
    if os.geteuid() != 0:
        return None
    return random.randint(*SANDBOX_UIDS)


def _children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):  # a kernel built without CONFIG_PROC_CHILDREN
        pass
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def _read_all(fd):
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


class SandboxProvisioner(LocalProvisioner):
    """A kernel provisioner that starts the kernel in the sandbox (see the module docstring).

    The kernel's connection uses jupyter_client's ``ipc`` transport: the kernel
    binds Unix sockets in its private ``/run/kernel``, and nbgrader connects to
    them through ``/proc/<sandbox pid>/root/run/kernel``. Interrupts go to the
    kernel process itself; terminating or killing the kernel stops bwrap, which
    takes the whole sandbox with it.
    """

    sandboxed = False
    sandbox_pid = None  # the host pid of the sandbox's first process (bwrap's init)
    _fds = ()

    async def pre_launch(self, **kwargs):
        """Check the sandbox can start, switch the connection to Unix sockets, build the command."""
        settings = Sandbox(parent=self)
        problem = settings.problem()
        if problem is not None:
            if not settings.allow_unsandboxed_grading:
                raise RuntimeError(problem)
            self.log.warning("Grading WITHOUT a sandbox (unsandboxed grading is allowed): %s",
                             problem.splitlines()[0])
            self.sandboxed = False
            return await super().pre_launch(**kwargs)
        km = self.parent
        km.cleanup_connection_file()  # a restart writes it again, for the new sandbox
        km.transport = "ipc"
        km.ip = f"{RUN}/kernel-ipc"  # as the kernel sees it; nbgrader's side is set at launch
        kwargs = await super().pre_launch(**kwargs)
        inside = f"{RUN}/connection.json"
        cmd = [inside if part == km.connection_file else part for part in kwargs["cmd"]]
        conn_r, conn_w = os.pipe()
        os.write(conn_w, Path(km.connection_file).read_bytes())
        os.close(conn_w)
        info_r, info_w = os.pipe()
        self._fds = [conn_r, info_w, info_r]
        workdir = kwargs.get("cwd") or os.getcwd()
        kwargs["cmd"] = settings.arguments(cmd, workdir, connection_fd=conn_r, info_fd=info_w,
                                           env=kwargs.get("env"), uid=sandbox_uid())
        kwargs["pass_fds"] = (conn_r, info_w)
        self.sandboxed = True
        self.log.debug("Sandboxed kernel command: %s", kwargs["cmd"])
        return kwargs

    async def launch_kernel(self, cmd, **kwargs):
        """Start bwrap; point nbgrader's side of the connection into the sandbox."""
        if not self.sandboxed:
            return await super().launch_kernel(cmd, **kwargs)
        conn_r, info_w, info_r = self._fds
        try:
            info = await super().launch_kernel(cmd, **kwargs)
        finally:
            _close(conn_r, info_w)
            self._fds = [info_r]
        data = await asyncio.get_running_loop().run_in_executor(None, _read_all, info_r)
        _close(info_r)
        self._fds = ()
        if not data:
            raise RuntimeError("bubblewrap could not start the grading sandbox (its message is "
                               "in the log above)")
        self.sandbox_pid = json.loads(data)["child-pid"]
        self.connection_info = dict(info, ip=f"/proc/{self.sandbox_pid}/root{RUN}/kernel-ipc")
        return self.connection_info

    @property
    def kernel_pid(self):
        """The host pid of the kernel process inside the sandbox (None when not sandboxed)."""
        if not self.sandboxed or self.sandbox_pid is None:
            return None
        children = _children(self.sandbox_pid)
        return children[0] if children else None

    async def send_signal(self, signum):
        """Interrupts reach the kernel itself; SIGTERM and SIGKILL stop bwrap and the sandbox."""
        if self.sandboxed and signum not in (signal.SIGTERM, signal.SIGKILL):
            pid = self.kernel_pid
            if pid is not None:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            return
        await super().send_signal(signum)

    async def cleanup(self, restart=False):
        """Close what a failed launch left open."""
        _close(*self._fds)
        self._fds = ()
        await super().cleanup(restart=restart)


def _close(*fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# What `make grade` says before it starts

def load_course_config(course_dir):
    """The traitlets Config of the course's ``nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(course_dir).resolve() / "nbgrader_config.py"
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def grading_mode(course_dir="."):
    """One line saying whether kernels will run sandboxed; raises where grading must refuse.

    Args:
        course_dir: the course root (its ``nbgrader_config.py`` is read).

    Returns:
        ``"sandbox: on (bubblewrap 0.8.0) ..."`` or ``"sandbox: OFF ..."`` (only when
        unsandboxed grading is allowed).

    Raises:
        RuntimeError: the sandbox can't start (or the config doesn't select it) and
            unsandboxed grading is not allowed; the message says what to install.

    Example:
        >>> grading_mode("/nonexistent/course")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        RuntimeError: /nonexistent/course/nbgrader_config.py does not start grading kernels ...
    """
    config = load_course_config(course_dir)
    settings = Sandbox(config=config)
    selected = config.get("RobustExecute", {}).get("kernel_provisioner") == PROVISIONER
    if selected and not entry_points(group="jupyter_client.kernel_provisioners", name=PROVISIONER):
        problem = (f"The kernel provisioner {PROVISIONER!r} is not registered with Jupyter: "
                   "reinstall the course package (`make setup`, or `pip install -e .` in the "
                   "course virtualenv).\n" + ALLOW_HINT)
    elif selected:
        problem = settings.problem()
    else:
        problem = (f"{Path(course_dir).resolve() / 'nbgrader_config.py'} does not start grading "
                   f"kernels in the sandbox: add `c.RobustExecute.kernel_provisioner = "
                   f"{PROVISIONER!r}`.\n" + ALLOW_HINT)
    if problem is None:
        return (f"sandbox: on ({settings.version()}): each kernel sees a read-only system, a "
                "copy of its own folder, no network and nothing of the course root")
    if settings.allow_unsandboxed_grading:
        return ("sandbox: OFF, grading unsandboxed as allowed (student code runs with your "
                f"rights): {problem.splitlines()[0]}")
    raise RuntimeError(problem)
