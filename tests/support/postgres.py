"""A throwaway PostgreSQL server on loopback: for the tests and the benchmarks.

A real class points ``--db`` at a PostgreSQL the institution runs. To try the
PostgreSQL gradebook on one machine, or to test it, :class:`LocalPostgres`
starts Debian's PostgreSQL binaries (``initdb``, ``pg_ctl``; ``apt-get install
postgresql``) in a folder of its own, on 127.0.0.1 and a free port, with one
database, and stops it again. ``initdb`` refuses to run as root: as root the
server runs as the ``postgres`` user (``nobody`` where there is none).

Example:
    >>> LocalPostgres(port=0)
    Traceback (most recent call last):
    ...
    ValueError: port must be an int in 1..65535 or None (a free one), got 0
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .apt import apt_install
from pruning_kit.course.loopback import free_port


def find_postgres():
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH, then Debian's /usr/lib/postgresql), or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(Path(folder) / "initdb", os.X_OK):
            return Path(folder)
    return None


class LocalPostgres:
    """A PostgreSQL server in a temporary folder, listening on 127.0.0.1 only.

    Use it as a context manager; ``url`` is the SQLAlchemy URL of its database::

        with LocalPostgres() as pg:
            grade(".", "pruning", workers=2, db_url=pg.url)

    Args:
        folder: where the data and the socket live (default: a new temporary folder,
            removed on stop).
        port: the port (default: a free one).
        database: the database created for the gradebook.
        user: the PostgreSQL role (trust authentication: loopback only, for trying out).
    """

    def __init__(self, folder=None, port=None, database="gradebook", user="grader"):
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(f"port must be an int in 1..65535 or None (a free one), got {port!r}")
        self.bin = find_postgres()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found (PATH, "
                               "/usr/lib/postgresql/*/bin): install them with "
                               "`sudo apt-get install -y postgresql`")
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="pg-"))
        self.port = port or free_port()
        self.database = database
        self.user = user
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/{database}"   # as the README writes it
        self.os_user = None
        if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
            for name in ("postgres", "nobody"):
                try:
                    self.os_user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.os_user is None:
                raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run "
                                   "PostgreSQL as (initdb refuses root)")
        self.running = False

    def _run(self, *command, check=True):
        command = [str(self.bin / command[0]), *map(str, command[1:])]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder,
                              timeout=120)
        if check and done.returncode != 0:
            log = self.folder / "server.log"
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}): "
                               f"{done.stdout[-800:]}{done.stderr[-800:]}"
                               f"{log.read_text()[-800:] if log.exists() else ''}")
        return done

    def start(self):
        """initdb, start the server, create the database; returns ``self``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            os.chown(self.folder, self.os_user.pw_uid, self.os_user.pw_gid)
            os.chmod(self.folder, 0o700)
            parent = self.folder.parent  # the server's user must reach its folder
            while parent != parent.parent and not os.stat(parent).st_mode & 0o001:
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
                parent = parent.parent
        data = self.folder / "data"
        self._run("initdb", "-D", data, "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--no-locale")
        self._run("pg_ctl", "-D", data, "-l", self.folder / "server.log", "-w", "-t", "60",
                  "start", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1")
        self.running = True
        self.create_database(self.database)
        return self

    def create_database(self, name):
        """Create another database on this server; returns its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", self.port, "-U", self.user, name)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self):
        """Stop the server (fast shutdown) and remove a temporary folder."""
        if self.running:
            self._run("pg_ctl", "-D", self.folder / "data", "-m", "fast", "-w", "stop",
                      check=False)
            self.running = False
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def install_postgres():
    """Install Debian's ``postgresql`` with apt-get; returns a reason string when it can't.

    Returns:
        None when the binaries are there (already, or after installing), else why not.
    """
    if find_postgres() is not None:
        return None
    reason = apt_install("postgresql")
    if reason:
        return reason
    return None if find_postgres() is not None else "apt-get installed postgresql, but no initdb"
