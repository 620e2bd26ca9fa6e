"""Deep Compression on LeNet-300-100 / mnist5k, printed like the paper's table.

Han et al. 2016 (Deep Compression), Table 1 and 2, full MNIST: LeNet-300-100 goes from
1070 KB to 27 KB (40x) with top-1 error 1.64% -> 1.58% (pruning to 8% of the weights,
6-bit shared weights, 5-bit relative indices, Huffman coding). Here the same pipeline runs
on the 4,000-image embedded subset with ``pk.quant.deep_compress`` (92% sparsity, 5-bit
weights, 5-bit indices). The target: >= 30x with <= 1 point accuracy loss, as the paper's
40x at no loss, on less data.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/deep_compression.py
"""

import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import pruning_kit as pk  # noqa: E402
from reference_model import trained_lenet  # noqa: E402

PAPER = {"dense": (1070, 1.0, 1.64), "huffman": (27, 40.0, 1.58)}   # KB, ratio, error %


def main(sparsity: float = 0.92, bits: int = 5) -> int:
    torch.set_num_threads(1)
    train, test = pk.data.load("mnist5k")
    model = trained_lenet(train)
    start = time.perf_counter()
    report, compressed = pk.quant.deep_compress(model, train, test, sparsity=sparsity,
                                                bits=bits, return_model=True)
    seconds = time.perf_counter() - start

    print(f"Deep Compression, LeNet-300-100 on mnist5k (sparsity {sparsity}, {bits}-bit "
          f"shared weights, 5-bit indices), {seconds:.1f} s")
    print(f"{'stage':8s} {'size':>10s} {'ratio':>7s} {'error':>7s} | paper (full MNIST)")
    for row in report.itertuples():
        paper = PAPER.get(row.stage)
        ref = f"{paper[0]:>5d} KB {paper[1]:5.0f}x {paper[2]:5.2f}%" if paper else ""
        print(f"{row.stage:8s} {row.bytes / 1000:7.1f} KB {row.ratio:6.1f}x "
              f"{(1 - row.accuracy) * 100:6.2f}% | {ref}")

    print("\nper layer (after pruning and sharing):")
    print(f"{'layer':6s} {'weights':>8s} {'kept':>6s} {'clusters':>8s}")
    for name, layer in pk.models.prunable(compressed):
        weight = layer.weight
        kept = float((weight != 0).float().mean())
        clusters = layer.parametrizations.weight.original.numel()
        print(f"{name:6s} {weight.numel():8,d} {kept:6.1%} {clusters:8d}")

    dense, final = report.iloc[0], report.iloc[-1]
    loss = (dense.accuracy - final.accuracy) * 100
    print(f"\ncompression {final.ratio:.1f}x (target >= 30x), accuracy change "
          f"{-loss:+.2f} points (target >= -1)")
    return 0 if final.ratio >= 30 and loss <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
