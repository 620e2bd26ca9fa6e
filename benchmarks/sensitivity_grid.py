"""Does structured pruning move the best learning rate / weight decay? (mnist5k, small CNN)

Trains LeNet-5 on a learning-rate x weight-decay grid (Adam), prunes
it by 20% / 40% / 60% of the filters (L1), trains the pruned networks on the
same grid from scratch ("retrain") and from the pruned weights ("finetune"),
and prints, per setting: best accuracy and configuration, the share of the
grid within 1% of the best, the Wasserstein distance to the base surface (in
decades of log10 space) and the overlap of the top-1% sets. The heatmaps with
their 86.47% ellipses go to benchmarks/results/sensitivity_heatmaps.png.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sensitivity_grid.py            # a few minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sensitivity_grid.py --points 6 --train 4000
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

import pruning_kit as pk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=4, help="grid values per axis")
    parser.add_argument("--train", type=int, default=1000, help="training images (of 4000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.2, 0.4, 0.6])
    parser.add_argument("--model", choices=["lenet5", "vgg11"], default="lenet5",
                        help="LeNet-5, or VGG-11 (BatchNorm) at 1/4 width")
    parser.add_argument("--out", default="benchmarks/results/sensitivity_heatmaps.png")
    args = parser.parse_args()

    torch.set_num_threads(1)
    train, test = pk.data.load("mnist5k")
    train = pk.data.subset(train, args.train, seed=0)
    lrs, wds = pk.sensitivity.grid_around((1e-3, 1e-4), points=args.points, decades=3.0)

    def model_fn():
        if args.model == "lenet5":
            return pk.models.lenet5()
        return pk.models.vgg(11, width=0.25, in_channels=1, image_size=28)

    start = time.perf_counter()
    frame = pk.sensitivity.sensitivity_study(
        model_fn, train, test, test.images[:1], lrs=lrs, weight_decays=wds, ratios=args.ratios,
        epochs=args.epochs, finetune_epochs=args.finetune_epochs, batch_size=args.batch_size,
        progress=False)
    seconds = time.perf_counter() - start
    table = pk.sensitivity.summary(frame, within=0.01)
    sizes = frame.groupby("setting", sort=False)[["params", "macs"]].first().reset_index()
    table = table.merge(sizes, on="setting")
    with __import__("pandas").option_context("display.width", 160, "display.max_columns", 20,
                                             "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    print(f"{len(frame)} trainings in {seconds:.0f} s ({args.model}, {len(lrs)}x{len(wds)} grid, "
          f"{args.train} training images, accuracy on the 1000 test images)")

    fig = pk.sensitivity.plot_heatmaps(frame, ncols=len(args.ratios), shared_scale=False,
                                       annot=args.points <= 6)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"heatmaps: {args.out}")


if __name__ == "__main__":
    main()
