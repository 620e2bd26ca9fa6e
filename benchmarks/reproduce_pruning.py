"""Reproduce the shapes of three pruning papers on the embedded mnist5k data.

Prints, for several seeds (mean +- std), LeNet-300-100 results beside the
papers' own figures:

- Han et al. 2015 (Table 1/2): magnitude pruning with retraining;
- Frankle & Carbin 2019 (Fig. 3/4): winning tickets vs. random re-init;
- Lee et al. 2019 (SNIP, Table 1): pruning at initialisation.

The papers train on 60,000 MNIST digits; mnist5k has 4,000 training and 1,000
test digits, so absolute errors are higher (~6% dense instead of ~1.7%): compare
the shape (what is lost relative to dense), not the absolute numbers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reproduce_pruning.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import pruning_kit as pk  # noqa: E402

# Training settings (Adam everywhere; the tests use the same ones).
DENSE = dict(epochs=10, lr=2e-3)          # ~94% on mnist5k
RETRAIN = dict(epochs=10, lr=1e-3)        # fine-tuning after one-shot pruning
LOTTERY = dict(epochs=10, lr=1.2e-3)      # the lottery-ticket paper's Adam rate
SNIP_TRAIN = dict(epochs=20, lr=2e-3)     # sparse-from-scratch nets need longer; dense too
LTH_ROUNDS = 12
REINIT_ROUNDS = (3, 7, 12)
RANDOM_ROUNDS = (7, 12)


def han(seed, train, test):
    """Dense, one-shot magnitude 90% + retrain, Han-style iterative 92%, random 90%."""
    torch.manual_seed(seed)
    dense = pk.models.lenet_300_100()
    pk.train.fit(dense, train, seed=seed, progress=False, **DENSE)
    out = {"dense": (1.0, pk.train.evaluate(dense, test))}
    for name, prune in [
        ("magnitude 90% (global), retrain", lambda m: pk.prune.magnitude(m, 0.9, scope="global")),
        ("random 90% (global), retrain", lambda m: pk.prune.random(m, 0.9, scope="global", seed=seed)),
    ]:
        model = prune(pk.prune.clone(dense))
        pk.train.fit(model, train, seed=seed + 1, progress=False, **RETRAIN)
        out[name] = (1 - pk.prune.sparsity(model), pk.train.evaluate(model, test))
    model = pk.prune.clone(dense)
    # Han et al.'s Table 2 keeps 8% / 9% / 26% of fc1 / fc2 / fc3.
    pk.prune.iterative(model, train, target=0.92, steps=3, retrain_epochs=4, scope="local",
                       rates={"fc2": 0.91, "fc3": 0.74}, lr=1e-3, seed=seed + 1)
    out["iterative 92/91/74% per layer (3 steps)"] = (1 - pk.prune.sparsity(model),
                                                      pk.train.evaluate(model, test))
    return out


def lottery(seed, train, test):
    """12 rounds of IMP at 20% (output 10%) plus re-init and random-pruning controls."""
    rounds = pk.lottery.imp(pk.models.lenet_300_100, train, test, rounds=LTH_ROUNDS, rate=0.2,
                            scope="local", seed=seed, **LOTTERY)
    reinit = {r: pk.lottery.reinit_control(pk.models.lenet_300_100, rounds[r].masks, train,
                                           test, seed=seed + 100, **LOTTERY)
              for r in REINIT_ROUNDS}
    random = {r: pk.lottery.random_prune_control(pk.models.lenet_300_100, rounds[r].masks,
                                                 train, test, seed=seed + 200, **LOTTERY)
              for r in RANDOM_ROUNDS}
    return rounds, reinit, random


def snip(seed, train, test):
    """Dense vs SNIP at 90/95/98%, same init, same training."""
    torch.manual_seed(seed)
    init = pk.models.lenet_300_100()
    out = {}
    for target in (0.0, 0.9, 0.95, 0.98):
        model = pk.prune.clone(init)
        if target:
            pk.prune.snip(model, batches=pk.data.loader(train, batch_size=500), sparsity=target)
        pk.train.fit(model, train, seed=seed, progress=False, **SNIP_TRAIN)
        out[target] = pk.train.evaluate(model, test)
    return out


def ms(values, scale=100.0):
    values = [v * scale for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):5.2f} +- {spread:4.2f}"


def table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, test = pk.data.load("mnist5k")
    seeds = list(range(args.seeds))
    start, cpu_start = time.perf_counter(), time.process_time()
    runs = []
    for seed in seeds:
        runs.append((han(seed, train, test), lottery(seed, train, test), snip(seed, train, test)))
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr,
              flush=True)

    print(f"LeNet-300-100 on mnist5k (4,000 train / 1,000 test), {len(seeds)} seeds, "
          "mean +- std; errors in % of the test set.")

    # --- Han et al. 2015
    names = list(runs[0][0])
    paper = {"dense": "1.64 (267K weights)",
             "iterative 92/91/74% per layer (3 steps)": "1.59 at 8% left (22K, 12x)"}
    rows = []
    for name in names:
        rem = statistics.mean(r[0][name][0] for r in runs)
        err = [1 - r[0][name][1] for r in runs]
        rows.append([name, f"{100 * rem:5.1f}%", ms(err), paper.get(name, "-")])
    table("Han et al. 2015, Table 1 (magnitude pruning + retraining)",
          ["method", "left", "error % (ours)", "error % (paper, full MNIST)"], rows)

    # --- Frankle & Carbin 2019
    rows = []
    for r in range(LTH_ROUNDS + 1):
        tickets = [run[1][0][r] for run in runs]
        row = [r, f"{100 * tickets[0].remaining:5.1f}%", ms([t.accuracy for t in tickets]),
               ms([t.early_stop_accuracy for t in tickets]),
               f"{statistics.mean(t.early_stop_iteration for t in tickets):5.0f}",
               ms([run[1][1][r].accuracy for run in runs]) if r in REINIT_ROUNDS else "",
               f"{statistics.mean(run[1][1][r].early_stop_iteration for run in runs):5.0f}"
               if r in REINIT_ROUNDS else "",
               ms([run[1][2][r].accuracy for run in runs]) if r in RANDOM_ROUNDS else ""]
        rows.append(row)
    table("Frankle & Carbin 2019, Fig. 3/4 shape (IMP, 20%/round, output layer 10%, "
          "rewind to init)",
          ["round", "left", "ticket acc %", "acc at early stop", "early-stop it.",
           "reinit acc %", "reinit early-stop it.", "random-prune acc %"], rows)
    print("paper (LeNet, full MNIST): tickets at 51.3% and 21.1% left beat the dense net, "
          "3.6% is about as good;\n  re-initialised tickets fall below and learn slower "
          "(early stop later) as weights are removed.")

    # --- SNIP
    rows = []
    paper = {0.0: "1.7", 0.9: "-", 0.95: "1.6", 0.98: "2.4"}
    for target in (0.0, 0.9, 0.95, 0.98):
        err = [1 - run[2][target] for run in runs]
        rows.append(["dense" if target == 0 else f"SNIP {100 * target:.0f}%",
                     f"{100 * (1 - target):5.1f}%", ms(err), paper[target]])
    table("Lee et al. 2019 (SNIP), Table 1 (prune at init, then train)",
          ["method", "left", "error % (ours)", "error % (paper, full MNIST)"], rows)

    # --- what the course claims from the three papers, on the means over seeds
    def mean(values):
        return 100 * statistics.mean(values)

    dense = mean([r[0]["dense"][1] for r in runs])
    magnitude = mean([r[0]["magnitude 90% (global), retrain"][1] for r in runs])
    random = mean([r[0]["random 90% (global), retrain"][1] for r in runs])
    lth_dense = mean([r[1][0][0].accuracy for r in runs])
    ticket7 = mean([r[1][0][7].accuracy for r in runs])
    ticket12 = mean([r[1][0][12].accuracy for r in runs])
    reinit12 = mean([r[1][1][12].accuracy for r in runs])
    snip_dense = mean([r[2][0.0] for r in runs])
    snip90 = mean([r[2][0.9] for r in runs])
    claims = [
        ("magnitude 90% + retrain loses <= 1 point (dense - pruned)", dense - magnitude,
         dense - magnitude <= 1),
        ("random 90% + retrain is clearly worse (magnitude - random >= 2)",
         magnitude - random, magnitude - random >= 2),
        ("ticket after 7 rounds >= dense - 0.5 (ticket - dense)", ticket7 - lth_dense,
         ticket7 >= lth_dense - 0.5),
        ("ticket after 12 rounds beats re-init by >= 1 (ticket - reinit)", ticket12 - reinit12,
         ticket12 - reinit12 >= 1),
        ("SNIP 90% within 2 points of dense (dense - SNIP)", snip_dense - snip90,
         snip_dense - snip90 <= 2),
    ]
    table("The course's claims (means over seeds)", ["claim", "measured (points)", "holds"],
          [[c, f"{v:+.2f}", "yes" if ok else "NO"] for c, v, ok in claims])
    print(f"\ntotal time {time.perf_counter() - start:.0f} s wall, "
          f"{time.process_time() - cpu_start:.0f} s CPU, {torch.get_num_threads()} thread")
    return 0 if all(ok for _, _, ok in claims) else 1


if __name__ == "__main__":
    sys.exit(main())
