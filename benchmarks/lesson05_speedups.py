"""The CPU speed-ups lesson 05 (structured pruning) states, timed apart from its tests.

The lesson times its own models while it runs and says what it measured; how
fast a CPU is belongs here, not in a test. This script rebuilds the lesson's
two timings at its defaults and prints the ratios:

1. LeNet-5 (MNIST, batch 64): dense, the same network with 50% of the filters
   of every conv removed (pk.structured.l1_filter_prune), and the dense network
   with as many nonzero weights as the structured one, zeroed by global
   magnitude (pk.prune.magnitude, masks baked in);
2. VGG-16 (CIFAR) with 40% of the filters removed (about 35% of the parameters
   kept), at full width and batch 1, and at 1/16 width at batch 1 and 32.

Timing does not depend on the weights' values, so the networks keep their
random initial weights (the lesson trains LeNet-5 first). Each pair is timed
alternately, CPU time (pk.metrics.latency_ms, clock="cpu"), single-threaded,
in rounds; a speed-up is the median over rounds of the per-round ratio, which
a burst of load from other processes shifts far less than two medians taken
apart. The lesson's sentences expect: unstructured below 1.3x, structured above
1.5x; VGG-16 above 1.5x at full width and less at 1/16 width. The script prints
whether this run agrees and always exits 0 (a benchmark reports; it does not
decide).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lesson05_speedups.py [--rounds 5]
"""

import argparse
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

import pruning_kit as pk


def speed_ups(models, x, *, rounds, repeats):
    """Median over rounds of dense time / each model's time, and the median times."""
    times = [pk.metrics.latency_ms(models, x, repeats=repeats, warmup=2, threads=1, clock="cpu")
             for _ in range(rounds)]
    ms = {name: statistics.median(t[name] for t in times) for name in models}
    ratio = {name: statistics.median(t["dense"] / t[name] for t in times) for name in models}
    return ms, ratio


def lenet5_rows(args):
    torch.manual_seed(0)
    model = pk.models.lenet5().eval()
    x1 = torch.rand(1, 1, 28, 28)
    small = pk.structured.l1_filter_prune(model, args.ratio, x1).eval()
    # as many nonzero weights as the structured model (biases are never pruned)
    weights = sum(layer.weight.numel() for _, layer in pk.models.prunable(model))
    biases = pk.metrics.count_params(model) - weights
    sparsity = 1 - (pk.metrics.count_params(small) - biases) / weights
    unstructured = pk.prune.finalize(pk.prune.magnitude(pk.prune.clone(model), sparsity,
                                                        scope="global")).eval()
    models = {"dense": model, "unstructured": unstructured, "structured": small}
    ms, ratio = speed_ups(models, torch.rand(args.batch, 1, 28, 28), rounds=args.rounds,
                          repeats=15)
    print(f"LeNet-5, batch {args.batch}, {args.ratio:.0%} of the filters removed, 1 thread, "
          f"{args.rounds} rounds")
    print(f"{'model':<14}{'nonzero params':>15}{'ms':>9}{'speed-up':>10}")
    for name, m in models.items():
        print(f"{name:<14}{pk.metrics.count_params(m, nonzero=True):>15,}{ms[name]:>9.2f}"
              f"{ratio[name]:>9.2f}x")
    return ratio


def vgg_rows(args):
    torch.manual_seed(0)
    x = torch.rand(32, 3, 32, 32)
    print(f"\nVGG-16 (CIFAR), 40% of the filters removed, 1 thread, {args.rounds} rounds")
    print(f"{'width':<12}{'batch':>6}{'params kept':>13}{'MACs ratio':>12}{'speed-up':>10}")
    out = {}
    for width, label, batches, repeats in ((1.0, "full", (1,), 8), (1 / 16, "1/16", (1, 32), 40)):
        vgg = pk.models.vgg(16, width=width).eval()
        small = pk.structured.l1_filter_prune(vgg, 0.4, x[:1]).eval()
        report = pk.structured.report(vgg, small, x[:1])
        for batch in batches:
            _, ratio = speed_ups({"dense": vgg, "pruned": small}, x[:batch], rounds=args.rounds,
                                 repeats=repeats)
            out[label, batch] = ratio["pruned"]
            print(f"{label:<12}{batch:>6}{report.params_after / report.params_before:>12.0%}"
                  f"{report.macs_ratio:>11.2f}x{ratio['pruned']:>9.2f}x")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="LeNet-5 batch (LATENCY_BATCH)")
    parser.add_argument("--ratio", type=float, default=0.5, help="LeNet-5 filter ratio (RATIO)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}")
    lenet = lenet5_rows(args)
    vgg = vgg_rows(args)
    expected = {
        f"unstructured below 1.3x ({lenet['unstructured']:.2f}x)": lenet["unstructured"] < 1.3,
        f"structured above 1.5x ({lenet['structured']:.2f}x)": lenet["structured"] > 1.5,
        f"VGG-16 full width above 1.5x ({vgg['full', 1]:.2f}x)": vgg["full", 1] > 1.5,
        f"1/16 width gains less at batch 1 ({vgg['1/16', 1]:.2f}x < {vgg['full', 1]:.2f}x)":
            vgg["1/16", 1] < vgg["full", 1],
    }
    print("\nWhat lesson 05's sentences expect, on this run:")
    for text, agrees in expected.items():
        print(f"  [{'as expected' if agrees else 'differs'}] {text}")


if __name__ == "__main__":
    main()
