"""A real browser drives the live demo.

Voilà runs a fresh copy of ``lessons/demo_live.ipynb`` on a free local port
(what ``make demo`` serves), headless Chromium opens it through Playwright,
drags the pruning slider and presses arrow keys, and the accuracy shown by the
kernel must follow. Chromium comes from Debian (``/usr/bin/chromium``); the
test installs it with apt-get when it is missing and it runs as root, and is
skipped, saying why, only where that is impossible.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from browser_support import CHROMIUM_FLAGS, chromium  # noqa: F401 (the fixture)
from local_server import stop
from pruning_kit.course.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "lessons" / "demo_live.ipynb"
START_TIMEOUT_S = 60      # Voilà listening
RUN_TIMEOUT_S = 120       # the notebook has trained the network and shown the explorer
UPDATE_TIMEOUT_S = 30     # the kernel has answered a slider move

pytestmark = pytest.mark.browser


def listening(port: int) -> bool:
    # A TCP connect, not an HTTP GET: every GET of Voilà's page starts a kernel.
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def quick_copy(folder: Path) -> Path:
    """The demo notebook with fewer training epochs (the test is about the widgets)."""
    nb = nbformat.read(DEMO, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert re.search(r"^EPOCHS = \d+", cell.source, flags=re.M), "the demo lost EPOCHS"
    cell.source = re.sub(r"^EPOCHS = \d+", "EPOCHS = 1", cell.source, flags=re.M)
    path = folder / "demo_live.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def voila(tmp_path):
    """A fresh Voilà server (isolated Jupyter dirs) serving a copy of the demo; yields its URL."""
    pytest.importorskip("voila")
    notebook = quick_copy(tmp_path)
    dirs = {name: tmp_path / name.lower() for name in (
        "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR",
        "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR")}
    for folder in dirs.values():
        folder.mkdir()
    env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, "OMP_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MPLBACKEND", None)
    port = free_port()
    log_path = tmp_path / "voila.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=True"],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Voilà did not start listening on port {port}:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/", log_path
    finally:
        stop(server, timeout=15)


def test_dragging_the_slider_updates_the_accuracy(chromium, voila, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, log_path = voila
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            # Stay hermetic: Voilà's page asks a CDN for fonts; only the local server answers.
            page.route("**/*", lambda route: route.continue_()
                       if urlparse(route.request.url).hostname == "127.0.0.1" else route.abort())
            # Voilà streams the page while the kernel runs the notebook: don't wait for the
            # end of the document here, wait for the explorer below.
            page.goto(url, wait_until="commit", timeout=START_TIMEOUT_S * 1000)

            pruning = page.locator(".pk-explorer").filter(
                has=page.locator(".pk-sparsity-slider"))
            handle = pruning.locator(".pk-sparsity-slider .noUi-handle")
            accuracy = pruning.locator(".pk-readout .pk-accuracy")
            readout = pruning.locator(".pk-readout")
            try:
                sync_api.expect(accuracy).to_have_text(re.compile(r"^\d+\.\d%$"),
                                                       timeout=RUN_TIMEOUT_S * 1000)
            except AssertionError:
                page.screenshot(path=tmp_path / "timeout.png", full_page=True)
                raise AssertionError("the demo never showed its explorer:\n"
                                     + log_path.read_text(errors="replace")[-3000:]) from None
            # The whole notebook has run (the page is complete) and the figure is drawn:
            # nothing moves the slider around any more.
            page.wait_for_load_state("load", timeout=RUN_TIMEOUT_S * 1000)
            sync_api.expect(page.locator(".pk-bits-slider")).to_be_visible(
                timeout=UPDATE_TIMEOUT_S * 1000)
            sync_api.expect(pruning.locator("canvas").first).to_be_visible(
                timeout=UPDATE_TIMEOUT_S * 1000)
            dense = accuracy.inner_text()
            total = int(re.search(r"of ([\d,]+) weights", readout.inner_text()).group(1)
                        .replace(",", ""))

            # Drag the handle past the right end of the track: 99% of the weights pruned.
            track = pruning.locator(".pk-sparsity-slider .noUi-base").bounding_box()
            knob = handle.bounding_box()
            y = knob["y"] + knob["height"] / 2
            page.mouse.move(knob["x"] + knob["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(track["x"] + track["width"] + 40, y, steps=12)
            page.mouse.up()
            sync_api.expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^99(\.0+)?$"))
            sync_api.expect(accuracy).not_to_have_text(dense, timeout=UPDATE_TIMEOUT_S * 1000)
            kept = total - round(0.99 * total)
            sync_api.expect(readout).to_contain_text(f"{kept:,} of {total:,} weights kept",
                                                     timeout=UPDATE_TIMEOUT_S * 1000)

            # Nine quick key presses: the kernel may skip moves, but must end at 90%.
            handle.focus()
            for _ in range(9):
                page.keyboard.press("ArrowLeft")
            sync_api.expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^90(\.0+)?$"))
            kept = total - round(0.90 * total)
            sync_api.expect(readout).to_contain_text(f"{kept:,} of {total:,} weights kept",
                                                     timeout=UPDATE_TIMEOUT_S * 1000)
            assert accuracy.inner_text() != dense
            page.screenshot(path=tmp_path / "demo.png", full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000
