"""Structured vs unstructured pruning on a CIFAR VGG-16: which one makes inference faster?

No training is needed to time a network, so the model has random weights and
the input is random. Three models are timed in one run, alternately (A, B, C,
A, B, C, ...), single-threaded, median of the repeats (pk.metrics.latency_ms):

- dense VGG-16 (BatchNorm, CIFAR 3x32x32);
- the same network with 50% of the filters of every conv removed by
  pk.structured.l1_filter_prune (physically smaller);
- the same network with 90% of the conv weights zeroed by magnitude
  (torch.nn.utils.prune, masks baked in): smaller on paper, same dense kernels.

The timing is repeated in rounds (5 x 10 alternating runs by default) and the
speed-up is the median of the per-round ratios: on a shared 2-core laptop the
load from other processes comes in bursts, and a ratio taken within one round
is far steadier than two medians taken minutes apart.

It checks the two claims of the structured-pruning lesson and exits with 1 if
either fails:

1. 50% filter pruning cuts MACs by >= 3x and latency falls by >= 0.7x the MAC
   ratio;
2. 90% unstructured sparsity does not speed up dense inference (< 1.2x).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/structured_speedup.py [--batch 8] [--rounds 5]
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.utils.prune as tprune

import pruning_kit as pk


def unstructured(model, sparsity):
    """Global magnitude pruning of every conv/linear weight, masks baked in (dense zeros)."""
    layers = [(m, "weight") for _, m in pk.models.prunable(model)]
    tprune.global_unstructured(layers, pruning_method=tprune.L1Unstructured, amount=sparsity)
    for module, name in layers:
        tprune.remove(module, name)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10, help="alternating runs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=0.5, help="filter pruning ratio")
    parser.add_argument("--sparsity", type=float, default=0.9, help="unstructured sparsity")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32)
    dense = pk.models.vgg(16).eval()
    filters = pk.structured.l1_filter_prune(dense, args.ratio, x).eval()
    sparse = pk.models.vgg(16).eval()
    sparse.load_state_dict(dense.state_dict())
    unstructured(sparse, args.sparsity)

    rep = pk.structured.report(dense, filters, x)
    macs_dense = pk.metrics.macs(dense, x)
    macs_sparse_ideal = pk.metrics.macs(sparse, x, nonzero=True)
    # Several rounds of alternating runs; the speed-up is the median over rounds of the
    # per-round ratio, so a burst of load from other processes shifts one round, not the result.
    models = {"dense": dense, "filters": filters, "sparse": sparse}
    rounds = [pk.metrics.latency_ms(models, x, repeats=args.repeats, warmup=2, threads=1)
              for _ in range(args.rounds)]
    ms = {k: statistics.median(r[k] for r in rounds) for k in models}
    speed_filters = statistics.median(r["dense"] / r["filters"] for r in rounds)
    speed_sparse = statistics.median(r["dense"] / r["sparse"] for r in rounds)
    print(f"VGG-16 (CIFAR), batch {args.batch}, 1 thread, {args.rounds} rounds of {args.repeats} "
          "alternating runs (ms: median of the round medians; speed-up: median of round ratios)")
    print("speed-up per round, filters:",
          " ".join(f"{r['dense'] / r['filters']:.2f}" for r in rounds))
    nonzero = {k: pk.metrics.count_params(m, nonzero=True)
               for k, m in (("dense", dense), ("filters", filters), ("sparse", sparse))}
    print(f"{'model':<34}{'nonzero params':>15}{'MACs run':>13}{'MAC ratio':>11}{'ms':>9}"
          f"{'speed-up':>10}")
    print(f"{'dense':<34}{nonzero['dense']:>15,}{macs_dense:>13,}{1:>10.2f}x{ms['dense']:>9.2f}"
          f"{1:>9.2f}x")
    print(f"{f'{args.ratio:.0%} filters removed (L1)':<34}{nonzero['filters']:>15,}"
          f"{rep.macs_after:>13,}{rep.macs_ratio:>10.2f}x{ms['filters']:>9.2f}"
          f"{speed_filters:>9.2f}x")
    print(f"{f'{args.sparsity:.0%} weights zeroed (unstructured)':<34}{nonzero['sparse']:>15,}"
          f"{macs_dense:>13,}{1:>10.2f}x{ms['sparse']:>9.2f}{speed_sparse:>9.2f}x")
    print(f"(an ideal sparse kernel would skip the zeros: {macs_dense / macs_sparse_ideal:.2f}x "
          "fewer MACs; dense kernels multiply them anyway)")
    print(f"latency speed-up / MAC ratio for filter pruning: {speed_filters / rep.macs_ratio:.2f}")

    checks = {
        f"filter pruning cuts MACs >= 3x ({rep.macs_ratio:.2f}x)": rep.macs_ratio >= 3,
        f"latency falls >= 0.7x the MAC ratio ({speed_filters:.2f}x vs "
        f"{0.7 * rep.macs_ratio:.2f}x needed)": speed_filters >= 0.7 * rep.macs_ratio,
        f"unstructured sparsity gives no real speed-up ({speed_sparse:.2f}x < 1.2x)":
            speed_sparse < 1.2,
    }
    for text, ok in checks.items():
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
