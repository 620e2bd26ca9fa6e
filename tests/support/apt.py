"""Installing a Debian package the course runs on (PostgreSQL, bubblewrap, Chromium) with apt-get.

The course's own files install what it needs, as the Makefile installs bubblewrap: this is the one
place that does it from Python, for the gradebook server and the tests' sandbox and browser.
"""
from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["apt_install"]


def apt_install(package: str) -> str | None:
    """Install Debian's ``package`` with ``apt-get``; None when done, else why it could not be.

    Needs apt-get and root; says how to install it by hand otherwise. The caller checks first
    whether the package is already there (this always runs ``apt-get update``).

    Example (it changes the system, so not run as a doctest)::

        reason = apt_install("bubblewrap")
        if reason:
            raise SystemExit(f"the grading sandbox can't start: {reason}")
    """
    if shutil.which("apt-get") is None:
        return (f"{package} is not installed and this system has no apt-get to install it: "
                f"install {package} with its package manager")
    if os.geteuid() != 0:
        return (f"{package} is not installed and installing it needs root: run "
                f"`sudo apt-get install -y {package}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            return (f"could not install {package}: `{' '.join(command)}` failed with exit code "
                    f"{done.returncode}: {done.stderr.strip()[-400:]}")
    return None
