"""Time pk.prune.magnitude(scope="global") against torch's global_unstructured.

Both prune the same LeNet-300-100 weights to the same masks (checked); the
calls alternate and the median of each is compared in one run. Target: ours
takes at most 1.5x torch's time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prune_speed.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.utils.prune as torch_prune  # noqa: E402

import pruning_kit as pk  # noqa: E402

LAYERS = ("fc1", "fc2", "fc3")
REPEATS = 60


def torch_global(model, amount):
    torch_prune.global_unstructured([(model.get_submodule(n), "weight") for n in LAYERS],
                                    pruning_method=torch_prune.L1Unstructured, amount=amount)
    return model


def models(state, n, first=None):
    """``n`` fresh copies of the weights, optionally pruned once by torch beforehand."""
    out = []
    for _ in range(n):
        model = pk.models.lenet_300_100()
        model.load_state_dict(state)
        if first is not None:
            torch_global(model, first)
        out.append(model)
    return out


def compare(state, label, ours, theirs, first=None):
    a, b = models(state, REPEATS, first), models(state, REPEATS, first)
    ours(a[0]), theirs(b[0])                        # warm-up, and the masks must agree
    for name in LAYERS:
        if not torch.equal(a[0].get_submodule(name).weight_mask,
                           b[0].get_submodule(name).weight_mask):
            raise SystemExit(f"{label}: masks differ in {name}")
    times_ours, times_theirs = [], []
    for i in range(1, REPEATS):
        for fn, model, times in ((ours, a[i], times_ours), (theirs, b[i], times_theirs)):
            start = time.perf_counter()
            fn(model)
            times.append(time.perf_counter() - start)
    t_ours, t_theirs = statistics.median(times_ours), statistics.median(times_theirs)
    print(f"{label:<44} {1e3 * t_ours:8.2f} ms {1e3 * t_theirs:8.2f} ms "
          f"{t_ours / t_theirs:7.2f}x")
    return t_ours / t_theirs


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    state = pk.models.lenet_300_100().state_dict()
    print(f"LeNet-300-100 (266,200 prunable weights), median of {REPEATS - 1} alternating calls, "
          "1 thread")
    print(f"{'case':<44} {'pk.prune':>11} {'torch':>11} {'ratio':>8}")
    worst = max(
        compare(state, "dense -> 90% global",
                lambda m: pk.prune.magnitude(m, 0.9, scope="global"), lambda m: torch_global(m, 0.9)),
        # torch's amount is a fraction of what remains: 0.8 of the 50% left = 90% overall
        compare(state, "50% -> 90% global (pruning again)",
                lambda m: pk.prune.magnitude(m, 0.9, scope="global"), lambda m: torch_global(m, 0.8),
                first=0.5),
    )
    verdict = "meets" if worst <= 1.5 else "MISSES"
    print(f"worst ratio {worst:.2f}x: {verdict} the target (<= 1.5x torch)")
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
