"""Time LeNet-300-100 training on mnist5k, one thread vs two, in one run.

Foundation target: >= 93% test accuracy in under 20 s on 2 CPU cores.

    .venv/bin/python benchmarks/train_speed.py
"""

import time

import torch

import pruning_kit as pk
from reference_model import EPOCHS, LR


def run(threads: int):
    torch.manual_seed(0)
    model = pk.models.lenet_300_100()
    start = time.perf_counter()
    pk.train.fit(model, train, epochs=EPOCHS, lr=LR, seed=0, progress=False, threads=threads)
    seconds = time.perf_counter() - start
    return seconds, pk.train.evaluate(model, test)


if __name__ == "__main__":
    start = time.perf_counter()
    train, test = pk.data.load("mnist5k")
    print(f"load mnist5k: {time.perf_counter() - start:.2f} s")
    results = {}
    for repeat in range(2):  # alternate so that noise from other processes hits both alike
        for threads in (1, 2):
            results.setdefault(threads, []).append(run(threads))
    for threads, runs in results.items():
        best = min(s for s, _ in runs)
        print(f"{threads} thread(s): fit {EPOCHS} epochs best {best:5.2f} s, "
              f"test accuracy {runs[0][1]:.2%}")
    ratio = min(s for s, _ in results[2]) / min(s for s, _ in results[1])
    print(f"2 threads / 1 thread time ratio: {ratio:.2f}x")
    ok = min(s for s, _ in results[1]) < 20 and results[1][0][1] >= 0.93
    print("target (>= 93% in < 20 s): " + ("met" if ok else "NOT met"))
