"""The live demo as the lecturer sees it, in headless Chromium: time to the first slider, and
the time from dragging a slider to the readout.

Two ways of serving ``lessons/demo_live.ipynb`` are measured in the same run:

- **make demo** (``tools/demo.py``): a preheated kernel (Voilà runs the notebook before
  the page is asked for; the measurement waits for that first), the trained network from
  the cache (``pk.widgets.trained_model``), the template without CDN requests;
- **plain voila**: ``voila demo_live.ipynb`` with Voilà's own template and no preheated
  kernel: every page starts a kernel and runs the notebook (training from the cache too, so
  the difference is the preheating alone).

For each: seconds from the request to the pruning slider on screen (``--loads`` page
loads, each on a fresh server), and for ``make demo`` the latency of ``--drags`` drags of
the pruning slider: from the pointer's last move to the readout showing the final value,
measured with the page's own clock, with the kernel's share as the readout reports it.
Budgets (DESIGN.md): first slider < 4 s, drag -> readout median < 100 ms, p95 < 200 ms on a
2-core laptop. The numbers depend on how busy the machine is: the load average is printed.

Usage:
    .venv/bin/python benchmarks/browser_latency.py [--loads 3] [--drags 20]
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import support.browser as bs  # noqa: E402  (tests/ is put on the path just above)

def first_slider(playwright, chromium, preheat: bool, loads: int) -> list[dict]:
    """Per page load: seconds to the first slider, and the CPU seconds the browser and the
    server with its kernels spent meanwhile (the work, whatever else the machine runs)."""
    loads_seen = []
    for _ in range(loads):
        with tempfile.TemporaryDirectory(prefix="demo-") as folder, \
                bs.demo_server(Path(folder), preheat=preheat) as server:
            bs.wait_until_idle(server.process)   # as the lecturer finds it: started a while ago
            browser = bs.launch(playwright, chromium)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1900})
                bs.PageWatch(page)
                browser_cpu = bs.cpu_seconds(bs.browser_processes())
                server_cpu = bs.cpu_seconds(bs.server_processes(server.process))
                seconds = bs.open_demo(page, server.url)
                loads_seen.append({
                    "s": seconds,
                    "browser_cpu": bs.cpu_seconds(bs.browser_processes()) - browser_cpu,
                    "server_cpu": bs.cpu_seconds(bs.server_processes(server.process))
                    - server_cpu})
            finally:
                browser.close()
    return loads_seen


def drags(playwright, chromium, count: int) -> tuple[list[dict], float, float]:
    """The drags' latencies, and the CPU seconds per drag of the server + kernel and of Chromium."""
    with tempfile.TemporaryDirectory(prefix="demo-") as folder, \
            bs.demo_server(Path(folder)) as server:
        bs.wait_until_idle(server.process)
        browser = bs.launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            bs.open_demo(page, server.url)
            page.locator(".pk-bits-slider").first.wait_for(state="visible", timeout=120_000)
            page.wait_for_timeout(2000)          # the page has settled
            kernel_cpu = bs.cpu_seconds(bs.server_processes(server.process))
            browser_cpu = bs.cpu_seconds(bs.browser_processes())
            moves = bs.drag_latencies(page, count)
            kernel_cpu = bs.cpu_seconds(bs.server_processes(server.process)) - kernel_cpu
            browser_cpu = bs.cpu_seconds(bs.browser_processes()) - browser_cpu
            return moves, 1e3 * kernel_cpu / count, 1e3 * browser_cpu / count
        finally:
            browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=3, help="page loads per way of serving")
    parser.add_argument("--drags", type=int, default=20)
    parser.add_argument("--nice", type=int, default=0,
                        help="scheduling priority of the servers, kernels and browser (e.g. -10 "
                             "as root: on a machine others keep busy, closer to a laptop of "
                             "one's own)")
    args = parser.parse_args(argv)
    chromium, why = bs.chromium_path()
    if chromium is None:
        print(f"skipped: {why}")
        return 0
    from playwright.sync_api import sync_playwright

    if args.nice:
        os.nice(args.nice)          # inherited by every process started from here
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with sync_playwright() as playwright:
        # the cache holds the trained network before anything is timed
        with tempfile.TemporaryDirectory(prefix="demo-") as folder, \
                bs.demo_server(Path(folder)) as server:
            bs.wait_until_idle(server.process)
        made = first_slider(playwright, chromium, True, args.loads)
        plain = first_slider(playwright, chromium, False, args.loads)
        moves, server_cpu_ms, browser_cpu_ms = drags(playwright, chromium, args.drags)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"first slider on screen, median of {args.loads} page loads (budget 4 s), and the CPU "
          f"seconds spent meanwhile:")
    for name, loads in (("make demo (preheated kernel)", made), ("plain voila", plain)):
        print(f"  {name:28s} {statistics.median(d['s'] for d in loads):6.2f} s   CPU: browser "
              f"{statistics.median(d['browser_cpu'] for d in loads):5.2f} s, server and kernel "
              f"{statistics.median(d['server_cpu'] for d in loads):5.2f} s")
    ratio = statistics.median(d["s"] for d in plain) / statistics.median(d["s"] for d in made)
    print(f"  ratio plain / make demo      {ratio:6.1f}x")
    page = bs.summary([m["ms"] for m in moves])
    kernel = bs.summary([m["kernel_ms"] for m in moves])
    print(f"drag -> readout over {page['n']} drags (budget: median 100 ms, p95 200 ms):")
    print(f"  in the browser  median {page['median']:6.1f} ms   p95 {page['p95']:6.1f} ms")
    print(f"  in the kernel   median {kernel['median']:6.1f} ms   p95 {kernel['p95']:6.1f} ms")
    print(f"  share of the browser's time spent in the kernel: "
          f"{kernel['median'] / page['median']:.0%} (median)")
    print(f"  CPU time per drag (the work, whatever else runs on the machine): server and kernel "
          f"{server_cpu_ms:.0f} ms, Chromium {browser_cpu_ms:.0f} ms; a drag sends several "
          f"values, each an update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
