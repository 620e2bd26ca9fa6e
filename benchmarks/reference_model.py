"""The model the benchmarks measure: LeNet-300-100 trained 10 epochs on mnist5k.

One recipe, so that the int8, Deep Compression and widget benchmarks time and compress
the same network (94.4% test accuracy, about 1 s of training on one thread). The scripts
in this folder import it as a sibling module (`python benchmarks/<script>.py`).
"""

import pruning_kit as pk

EPOCHS, LR = 10, 2e-3


def trained_lenet(train, seed: int = 0):
    """LeNet-300-100 built with ``seed`` and trained on ``train`` (10 epochs, Adam, lr 2e-3)."""
    pk.train.seed_everything(seed)
    model = pk.models.lenet_300_100()
    pk.train.fit(model, train, epochs=EPOCHS, lr=LR, seed=seed, progress=False)
    return model
