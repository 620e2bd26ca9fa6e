"""How fast the live explorers answer a slider move, redraw included.

Times ``update()`` of ``pk.widgets.sparsity_explorer`` (LeNet-300-100 trained
on mnist5k, 1,000 evaluation images) at 50 slider positions for each of its
four criteria, and of ``pk.widgets.bits_explorer`` at 50 settings (bits 1-8 x
per-tensor/per-channel x affine/symmetric), for both display backends:

- ``ipympl``: the figure is an ipympl canvas. The browser's "initialized"
  handshake is replayed first, so that the canvas ships diff frames as it does
  with a browser attached (without one, ipympl also encodes every frame as a
  full PNG to store in the notebook).
- ``image``: an ``ipywidgets.Image`` that receives a full PNG per update.

Each timing covers the whole update: masks (or quantization), evaluation,
moving the artists, rendering, PNG encoding. For scale, the same updates are
also timed the usual way, clearing and re-creating the figure each time (a new
figure with the same four panels, drawn and encoded to PNG); the ratio of the
two medians is printed. Targets: median < 100 ms, p95 < 200 ms on a 2-core
laptop. The load average is printed too: other processes on the machine slow
every number down; the CPU time this process spent per update is printed
beside the wall time, as a measure of the work that does not depend on them.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/widget_latency.py [--positions 50]
"""

import argparse
import io
import itertools
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import pruning_kit as pk  # noqa: E402
from reference_model import trained_lenet  # noqa: E402

TARGET_MEDIAN_MS, TARGET_P95_MS = 100.0, 200.0


def p95(values):
    return float(np.percentile(values, 95))


def timed(update, **settings):
    """(wall ms as update() reports it, CPU ms of this process) of one update."""
    cpu = time.process_time()
    wall = update(**settings)["ms"]
    return wall, (time.process_time() - cpu) * 1e3


def summary(label, runs):
    times, cpu = [r[0] for r in runs], [r[1] for r in runs]
    median, tail = statistics.median(times), p95(times)
    verdict = "ok" if median < TARGET_MEDIAN_MS and tail < TARGET_P95_MS else "MISSED"
    print(f"  {label:<28} n={len(times):>3}  median {median:6.1f} ms  p95 {tail:6.1f} ms  "
          f"max {max(times):6.1f} ms  [{verdict}]  (CPU median {statistics.median(cpu):5.1f} ms)")
    return median, tail


def shown(explorer, backend):
    if backend == "ipympl":
        canvas = explorer.figure_widget
        canvas._handle_message(canvas, {"type": "initialized"}, [])
    explorer.widget      # displayed: first full draw
    return explorer


def recreate_figure(explorer, sparsity, method):
    """Today's habit: compute, then build, draw and encode a brand-new figure."""
    start = time.perf_counter()
    explorer._compute(sparsity=sparsity, method=method)
    masks = explorer._keep_now
    fig = Figure(figsize=(13, 7.2), dpi=100)
    (ax_hist, ax_layers), (ax_mask, ax_curve) = fig.subplots(2, 2)
    weights = torch.cat([explorer._dense[n].reshape(-1) for n in explorer.layer_names]).numpy()
    kept = torch.cat([masks[n].reshape(-1) for n in explorer.layer_names]).numpy()
    edges = explorer._edges
    ax_hist.hist(weights, bins=edges, color="#f2a7a0", label="pruned")
    ax_hist.hist(weights[kept], bins=edges, color="#1f77b4", label="kept")
    ax_hist.legend()
    names = explorer.layer_names
    ax_layers.barh(names, [100 * (1 - float(masks[n].float().mean())) for n in names])
    ax_mask.imshow(masks[names[0]].float().mean(0).reshape(28, 28).numpy())
    points = explorer._curve[method]
    xs = sorted(points)
    ax_curve.plot(xs, [points[x] for x in xs], "o-")
    with io.BytesIO() as out:
        fig.savefig(out, format="png")
    return (time.perf_counter() - start) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=50, help="slider positions per run")
    parser.add_argument("--baseline", type=int, default=10,
                        help="updates timed the re-create-the-figure way")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    train, test = pk.data.load("mnist5k")
    model = trained_lenet(train)
    print(f"LeNet-300-100 on mnist5k: test accuracy {pk.train.evaluate(model, test):.1%}\n")

    positions = np.linspace(0, 0.98, args.positions).round(2).tolist()
    medians = {}
    for backend in ("ipympl", "image"):
        print(f"sparsity_explorer, backend={backend!r}: update(sparsity=s, method=m)")
        ex = shown(pk.widgets.sparsity_explorer(model, test, snip_data=train, backend=backend),
                   backend)
        every = []
        for method in ex.methods:
            runs = [timed(ex.update, sparsity=s, method=method) for s in positions]
            summary(method, runs)
            every += runs
        medians["sparsity", backend] = summary("all criteria", every)[0]

        print(f"bits_explorer, backend={backend!r}: update(bits=b, granularity=g, scheme=s)")
        bx = shown(pk.widgets.bits_explorer(model, test, backend=backend), backend)
        settings = list(itertools.product(range(1, 9), pk.widgets.GRANULARITIES,
                                          pk.widgets.SCHEMES))
        order = np.random.default_rng(0).permutation(len(settings)).tolist()
        chosen = [settings[order[i % len(order)]] for i in range(args.positions)]
        runs = [timed(bx.update, bits=b, granularity=g, scheme=s) for b, g, s in chosen]
        medians["bits", backend] = summary("bits / granularity / scheme", runs)[0]
        print()

    ex = pk.widgets.sparsity_explorer(model, test, methods=("global",), backend="image")
    baseline = [recreate_figure(ex, s, "global")
                for s in positions[:: max(1, len(positions) // args.baseline)]]
    recreate = statistics.median(baseline)
    print(f"re-creating the figure on every move (clear + new figure + PNG): "
          f"median {recreate:.1f} ms over {len(baseline)} moves")
    for backend in ("ipympl", "image"):
        print(f"  sparsity update with backend={backend!r} is "
              f"{recreate / medians['sparsity', backend]:.1f}x faster")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
