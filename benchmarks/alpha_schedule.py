"""One-shot pruning with a decaying alpha schedule vs iterative prune/fine-tune, equal final size.

On mnist5k: a quarter-width VGG-11 with 65% of every conv's filters removed, and the
autoencoder's bottleneck (encoder only, then encoder and decoder). One seed: differences of
about +-0.005 accuracy are noise.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/alpha_schedule.py [training images, default 2000]
"""

import sys
import time

import pandas as pd
import torch

import pruning_kit as pk

RATIO = 0.65


def main(n_train: int) -> None:
    torch.set_num_threads(1)
    pd.set_option("display.width", 140)
    train, test = pk.data.load("mnist5k")
    train = pk.data.subset(train, n_train, seed=0)
    x = test.images[:1]

    start = time.time()
    torch.manual_seed(0)
    net = pk.models.vgg(11, width=0.25, in_channels=1, image_size=28)
    pk.train.fit(net, train, epochs=4, lr=2e-3, progress=False)
    print(f"VGG-11 (1/4 width), {len(train)} training images, {RATIO:.0%} of the filters "
          "of every conv; score = test accuracy")
    frame = pk.structured.compare_alpha_iterative(net, train, test, RATIO, x, epochs=6, steps=3,
                                                  lr=1e-3)
    print(frame.to_string(index=False), f"\n[{time.time() - start:.0f} s]")

    for label, ratios in (("encoder only", {"encoder": RATIO}),
                          ("encoder and decoder", {"encoder": RATIO, "decoder": RATIO})):
        start = time.time()
        torch.manual_seed(0)
        ae = pk.models.autoencoder()
        pk.train.fit(ae, train, epochs=6, lr=2e-3, loss="reconstruction", progress=False)
        print(f"\nautoencoder (bottleneck 8 -> 3 channels), {label}; score = test MSE, lower is better")
        frame = pk.structured.compare_alpha_iterative(ae, train, test, 0.0, x, ratios=ratios,
                                                      epochs=6, steps=3, lr=1e-3,
                                                      loss="reconstruction")
        print(frame.to_string(index=False), f"\n[{time.time() - start:.0f} s]")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
