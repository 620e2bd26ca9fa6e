"""pruning_kit: the helper package of the neural-network compression course.

Submodules load on first use, so ``import pruning_kit as pk`` stays quick:

- ``pk.data``: datasets (embedded ``mnist5k`` and ``digits``; torchvision sets) and loaders
- ``pk.models``: LeNet-300-100, LeNet-5, Conv-2/4/6, VGG, ResNet, autoencoder
- ``pk.train``: ``fit``, ``evaluate``, ``seed_everything``
- ``pk.prune``: magnitude / random / SNIP masks, iterative prune-retrain
- ``pk.lottery``: iterative magnitude pruning with rewinding
- ``pk.structured``: L1 filter pruning that removes channels
- ``pk.quant``: quantization, weight sharing, Huffman, int8, binarized layers
- ``pk.metrics``: parameters, MACs, bytes, latency, energy
- ``pk.stats``: differences between two results with their confidence intervals
- ``pk.plots``, ``pk.widgets``: figures and live explorers for the lessons
- ``pk.notebook``: a lesson's computed sentences and formatted tables on the page
- ``pk.sensitivity``: learning-rate x weight-decay grids before/after pruning

The course machinery (assignment checks, the autograding driver) lives apart in
``pruning_kit.course`` and is never imported by the library.

Example:
    >>> import pruning_kit as pk
    >>> pk.models.lenet_300_100().fc1.out_features
    300
"""

import importlib
import os

# Small matrix products on a busy 2-core laptop are far slower when OpenMP
# threads spin-wait; passive waiting removes the penalty (only effective when
# set before torch loads its OpenMP runtime).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

SUBMODULES = ("data", "models", "train", "prune", "lottery", "structured", "quant",
              "metrics", "stats", "plots", "notebook", "widgets", "sensitivity")
__all__ = list(SUBMODULES)


def __getattr__(name):
    if name in SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pruning_kit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(SUBMODULES))
