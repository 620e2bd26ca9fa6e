"""Debian's Chromium for the tests that drive a real browser (the demo, the book, the hub).

A helper module, not a test module: the browser tests import the fixture and the
flags from here.
"""

import os

import pytest

from support.apt import apt_install

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """Path of Debian's Chromium, installed with apt-get when missing (needs root)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    reason = apt_install("chromium")
    if reason:
        pytest.skip(f"Chromium is not at {CHROMIUM}: {reason}")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"apt-get installed chromium, but not at {CHROMIUM}")
    return CHROMIUM
