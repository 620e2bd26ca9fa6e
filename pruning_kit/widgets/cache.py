"""A trained network kept on disk, so a live demo shows its sliders in seconds after the first run.

A lecture demo trains its network before the explorers appear: seconds on an idle
laptop, many more on a busy one or a projector's PC. :func:`trained_model` trains
once and keeps the trained weights under ``~/.cache/pruning_kit/trained/``
(``$XDG_CACHE_HOME`` if set), keyed by everything that decides them: the
network's initial weights, the training data, the training options, the PyTorch
version and the kit's training code. Any change trains again; the same
settings load in milliseconds.

Example:
    >>> import pruning_kit as pk, tempfile
    >>> train, _ = pk.data.load("digits")
    >>> build = lambda: pk.models.lenet_300_100(in_features=64)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     first = trained_model(build, train, epochs=1, cache_dir=folder)
    ...     again = trained_model(build, train, epochs=1, cache_dir=folder)
    >>> torch.equal(first.fc1.weight, again.fc1.weight)
    True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .._checks import InvalidParameterError, check_int
from ..data import as_dataset

__all__ = ["trained_model", "cache_folder"]


def cache_folder() -> Path:
    """Where trained networks are kept: ``$XDG_CACHE_HOME/pruning_kit/trained``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pruning_kit" / "trained"


def _key(model: nn.Module, train, seed: int, options: dict) -> str:
    from .. import train as training

    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    digest.update(train.images.contiguous().numpy().tobytes())
    digest.update(train.labels.contiguous().numpy().tobytes())
    digest.update(repr((seed, sorted(options.items()), torch.__version__)).encode())
    digest.update(Path(training.__file__).read_bytes())     # a change in training trains again
    return digest.hexdigest()[:32]


def trained_model(build, train, *, seed: int = 0, cache_dir=None, **fit_options) -> nn.Module:
    """``build()`` trained with ``pk.train.fit(model, train, seed=seed, **fit_options)``, once.

    The model is built after ``pk.train.seed_everything(seed)``, so its initial
    weights are those of the same code written out; the trained weights are
    saved under :func:`cache_folder` (or ``cache_dir``) and loaded the next time
    the same initial weights, data, options and training code come together.

    Args:
        build: a function returning a fresh network (``pk.models.lenet_300_100``).
        train: training data, a ``TensorData`` or ``(images, labels)``.
        seed: seeds the initial weights and the shuffling.
        cache_dir: the folder to keep trained networks in (default :func:`cache_folder`).
        **fit_options: options of ``pk.train.fit`` (``epochs``, ``lr``, ``optimizer``,
            ``weight_decay``, ...), by keyword.

    Returns:
        the trained network, in eval mode.
    """
    from .. import train as training

    if not callable(build):
        raise InvalidParameterError(f"build must be a function returning a network, "
                                    f"got {type(build).__name__}")
    check_int("seed", seed, low=0)
    if "progress" in fit_options or "seed" in fit_options:
        raise InvalidParameterError("fit_options must not set progress or seed: seed is its own "
                                    "argument, and cached training never shows progress")
    train = as_dataset(train)
    training.seed_everything(seed)
    model = build()
    path = Path(cache_dir or cache_folder()) / f"{type(model).__name__}-{_key(model, train, seed, fit_options)}.pt"
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except (RuntimeError, OSError, EOFError):
            pass              # a damaged file: train again and replace it
    training.fit(model, train, seed=seed, progress=False, **fit_options)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(model.state_dict(), partial)
    os.replace(partial, path)       # whole files only, even with two kernels starting at once
    return model.eval()
