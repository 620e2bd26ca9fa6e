"""Driving the course's pages in headless Chromium: what the browser tests and
``benchmarks/browser_latency.py`` share.

- :func:`chromium_path`: Debian's Chromium, installed with apt-get when missing (as root);
- :func:`launch`: Chromium through Playwright with flags that keep it quiet and offline;
- :class:`PageWatch`: every console error, page error, failed request, HTTP error and request
  that tried to leave the machine, seen by one page;
- :func:`serve` / :func:`wait_listening`: a server process on a free port, stopped afterwards;
- :func:`demo_server`: ``make demo``'s Voilà (``tools/demo.py``) on a copy of the demo;
- :func:`open_demo` and :func:`drag_latencies`: the lecturer's first-slider time and the time
  from releasing a dragged slider to the final readout, measured in the page's own clock.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import demo as demo_tool  # noqa: E402  (tools/ is put on the path just above)

from .local_server import stop  # noqa: E402
from pruning_kit.course.loopback import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
DEMO = ROOT / "lessons" / "demo_live.ipynb"
ISOLATED_DIRS = ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR")


def chromium_path() -> tuple[str | None, str | None]:
    """``(path, None)`` for Debian's Chromium, or ``(None, why not)``; installs it as root."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM, None
    from .apt import apt_install

    reason = apt_install("chromium")
    if reason:
        return None, f"Chromium is not at {CHROMIUM}: {reason}"
    if not os.path.exists(CHROMIUM):
        return None, f"apt-get installed chromium, but not at {CHROMIUM}"
    return CHROMIUM, None


def launch(playwright, chromium: str):
    """A headless Chromium for one test or benchmark."""
    return playwright.chromium.launch(executable_path=chromium, headless=True,
                                      args=CHROMIUM_FLAGS)


class PageWatch:
    """What went wrong on one page: console and page errors, failed and off-machine requests.

    Requests to any host but 127.0.0.1 (and to anything but files, for a page from disk) are
    aborted and recorded in ``outside``, so a page that needs the network shows up offline.
    """

    def __init__(self, page, *, local_files: bool = False):
        self.errors, self.failed, self.outside = [], [], []
        self._local_files = local_files
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("requestfailed", lambda r: self.failed.append(r.url) if not self._aborted(r.url)
                else None)
        page.on("response", lambda r: self.failed.append(f"{r.status} {r.request.method} {r.url}")
                if r.status >= 400 else None)
        page.route("**/*", self._route)

    def _local(self, url: str) -> bool:
        if self._local_files:
            return url.startswith(("file://", "data:", "blob:"))
        return urlparse(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:"))

    def _aborted(self, url: str) -> bool:
        return url in self.outside

    def _route(self, route):
        url = route.request.url
        if self._local(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def problems(self) -> dict:
        """Everything that went wrong, by kind (empty lists when nothing did)."""
        return {"console errors": list(self.errors), "failed requests": list(self.failed),
                "requests leaving the machine": list(self.outside)}


def listening(port: int) -> bool:
    # A TCP connect, not an HTTP GET: every GET of Voilà's page starts a kernel.
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(process, port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not listen on port {port}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def serve(argv, env, cwd, log: Path, port: int, timeout: float = 90):
    """Run a server process until the block ends; yields it once ``port`` listens."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(process, port, log, timeout)
        yield process
    finally:
        stop(process, timeout=15)


def demo_copy(folder: Path, **parameters) -> Path:
    """A copy of the demo in ``folder`` with some parameters set (``EPOCHS=1``, ``BACKEND=...``)."""
    nb = nbformat.read(DEMO, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in parameters.items():
        line = re.compile(rf"^{name} = .*?(?=\s*#|$)", flags=re.M)
        assert line.search(cell.source), f"the demo lost its parameter {name}"
        cell.source = line.sub(f"{name} = {value!r}", cell.source)
    path = Path(folder) / DEMO.name
    nbformat.write(nb, path)
    return path


def isolated_env(folder: Path, base=None) -> dict:
    """``base`` (default ``os.environ``) with Jupyter's runtime, data and lab dirs in ``folder``."""
    env = dict(os.environ if base is None else base)
    for name in ISOLATED_DIRS:
        (Path(folder) / name.lower()).mkdir(parents=True, exist_ok=True)
        env[name] = str(Path(folder) / name.lower())
    env.pop("MPLBACKEND", None)
    return env


def cpu_seconds(processes) -> float:
    """CPU time (user + system) the given psutil processes have used so far."""
    import psutil

    total = 0.0
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def server_processes(process) -> list:
    """A server started here and its children (kernels), as psutil processes."""
    import psutil

    server = psutil.Process(process.pid)
    return [server, *server.children(recursive=True)]


def browser_processes() -> list:
    """The Chromium processes started from this process (through Playwright)."""
    import psutil

    return [p for p in psutil.Process().children(recursive=True)
            if "chrom" in (p.info["name"] if hasattr(p, "info") else p.name()).lower()]


def wait_until_idle(process, *, quiet_s: float = 3.0, timeout: float = 300) -> float:
    """Seconds until ``process`` and its children (a server and its kernels) rest.

    Resting: less than 0.1 s of CPU time used over ``quiet_s`` seconds. A preheated Voilà
    kernel has then run its notebook.
    """
    start = time.monotonic()
    last = cpu_seconds(server_processes(process))
    while time.monotonic() - start < timeout:
        time.sleep(quiet_s)
        now = cpu_seconds(server_processes(process))
        if now - last < 0.1:
            break
        last = now
    return time.monotonic() - start


@contextlib.contextmanager
def demo_server(folder: Path, *, preheat: bool = True, timeout: float = 90, **parameters):
    """``make demo``'s Voilà on a copy of the demo in ``folder``.

    Yields a namespace with ``url``, ``log`` (the server's log file) and ``process``.
    ``preheat=False`` starts Voilà as plain ``voila NOTEBOOK`` does (no preheated kernel,
    Voilà's own template): the before-picture for the benchmark. ``parameters`` set the
    demo's parameters (``EPOCHS=1``).
    """
    notebook = demo_copy(folder, **parameters)
    port = free_port()
    argv, env = demo_tool.command(notebook, port=port, open_browser=False,
                                  base_env=isolated_env(folder))
    if not preheat:
        argv += ["--VoilaConfiguration.preheat_kernel=False", "--template=lab"]
    log = Path(folder) / "voila.log"
    with serve(argv, env, folder, log, port, timeout) as process:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", log=log, process=process)


PRUNING = ".pk-explorer:has(.pk-sparsity-slider)"
HANDLE = f"{PRUNING} .pk-sparsity-slider .noUi-handle"


def open_demo(page, url: str, timeout_s: float = 120) -> float:
    """Open the demo; seconds from the request to the pruning slider's handle on screen."""
    start = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
    page.locator(HANDLE).wait_for(state="visible", timeout=timeout_s * 1000)
    return time.perf_counter() - start


_RECORDER = """() => {
  const readout = document.querySelector('%s .pk-readout');
  window.__pk = {changes: [], lastMove: 0};
  new MutationObserver(() => window.__pk.changes.push(
      [performance.now(), readout.innerText])).observe(
      readout, {subtree: true, childList: true, characterData: true});
  document.addEventListener('mousemove', e => { window.__pk.lastMove = e.timeStamp; }, true);
}""" % PRUNING


def kept_text(value: int, total: int) -> str:
    """What the readout says at ``value`` percent pruned."""
    return f"{total - round(value / 100 * total):,} of {total:,} weights kept"


def drag_latencies(page, drags: int = 20, timeout_s: float = 30, seed: int = 0) -> list[dict]:
    """Drag the pruning slider ``drags`` times; each drag's latency as the page saw it.

    Each drag presses the handle, moves at least 10 points away in six steps (the slider
    sends a value at every step, as a hand does) and releases. Measured with the page's
    clock: from the pointer's last move, where the final value is set, to the readout
    showing that value (``ms``); and the kernel's own time for that update as the readout
    reports it (``kernel_ms``): the rest is the round trip and the drawing.
    """
    import random

    readout = page.locator(f"{PRUNING} .pk-readout")
    total = int(re.search(r"of ([\d,]+) weights", readout.inner_text()).group(1).replace(",", ""))
    page.evaluate(_RECORDER)
    handle = page.locator(HANDLE)
    track = page.locator(f"{PRUNING} .pk-sparsity-slider .noUi-base").bounding_box()
    rng = random.Random(seed)
    results = []
    for i in range(drags):
        knob = handle.bounding_box()
        y = knob["y"] + knob["height"] / 2
        now = (knob["x"] + knob["width"] / 2 - track["x"]) / track["width"]
        fraction = now
        while abs(fraction - now) < 0.1:
            fraction = rng.uniform(0.05, 0.95)
        page.mouse.move(knob["x"] + knob["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(track["x"] + fraction * track["width"], y, steps=6)
        page.mouse.up()
        value = int(float(handle.get_attribute("aria-valuenow")))
        expected = kept_text(value, total)
        deadline = time.monotonic() + timeout_s
        while expected not in readout.inner_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"drag {i}: the readout never showed {expected!r}")
            time.sleep(0.005)
        log = page.evaluate("() => window.__pk")
        moved = log["lastMove"]
        shown = next(t for t, text in log["changes"] if t >= moved and expected in text)
        kernel = re.search(r"(\d+) ms", readout.inner_text())
        results.append({"value": value, "ms": shown - moved,
                        "kernel_ms": float(kernel.group(1)) if kernel else float("nan")})
        page.evaluate("() => { window.__pk.changes = []; }")
        time.sleep(0.3)           # a lecturer's pause between drags: no backlog carried over
    return results


def summary(values) -> dict:
    """Median and 95th percentile of ``values``."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered)}
