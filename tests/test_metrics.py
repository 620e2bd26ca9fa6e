import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

import pruning_kit as pk


def test_macs_of_lenets():
    x = torch.zeros(4, 1, 28, 28)
    assert pk.metrics.macs(pk.models.lenet_300_100(), x) == 784 * 300 + 300 * 100 + 100 * 10
    # LeNet-5: conv1 24x24x20x25, conv2 8x8x50x500, fc 800x500, 500x10
    assert pk.metrics.macs(pk.models.lenet5(), x) == 24 * 24 * 500 + 64 * 25000 + 400000 + 5000


def test_macs_nonzero_counts_only_kept_weights():
    model = pk.models.lenet_300_100()
    for _, layer in pk.models.prunable(model):
        tprune.random_unstructured(layer, "weight", amount=0.5)
    dense = pk.metrics.macs(model, torch.zeros(1, 784))
    sparse = pk.metrics.macs(model, torch.zeros(1, 784), nonzero=True)
    assert sparse == round(784 * 300 * 0.5) + round(300 * 100 * 0.5) + round(100 * 10 * 0.5)
    assert dense == 266200


def test_count_params_after_pruning():
    model = pk.models.lenet_300_100()
    tprune.l1_unstructured(model.fc1, "weight", amount=0.9)
    assert pk.metrics.count_params(model) == 266_610
    assert pk.metrics.count_params(model, nonzero=True) == 266_610 - round(0.9 * 784 * 300)


def test_size_bytes_dense_and_sparse():
    model = pk.models.lenet_300_100()
    assert pk.metrics.size_bytes(model) == 266_610 * 4
    tprune.l1_unstructured(model.fc1, "weight", amount=0.9)
    sparse = pk.metrics.size_bytes(model, sparse=True)
    kept = 784 * 300 - round(0.9 * 784 * 300)
    fc1 = (kept * 64 + 301 * 32) // 8
    rest = (266_610 - 784 * 300) * 4
    assert sparse == fc1 + rest
    with pytest.raises(ValueError, match="bits must be an int"):
        pk.metrics.size_bytes(model, bits=0)


def test_absolute_column_indices_must_address_every_column():
    # fc1 has 784 columns: 8-bit column indices reach 256 of them, 10 bits are needed
    model = pk.models.lenet_300_100()
    tprune.l1_unstructured(model.fc1, "weight", amount=0.75)
    with pytest.raises(ValueError, match=r"index_bits=8 cannot address the 784 columns.*10 bits"):
        pk.metrics.size_bytes(model, sparse=True, index_bits=8)
    assert pk.metrics.size_bytes(model, sparse=True, index_bits=10) > 0
    # a layer without zeros is stored dense, whatever the index width
    assert pk.metrics.size_bytes(model, sparse=False, index_bits=8) == 266_610 * 4


def test_relative_indices_with_filler_zeros_by_hand():
    # kept at positions 1, 10, 11 of 12: gaps 2, 9, 1; at 3 bits a gap is at most 7, so one
    # filler zero goes in between (Deep Compression, Fig. 2)
    w = torch.tensor([0., 2., 0., 0., 0., 0., 0., 0., 0., 0., 3., 4.])
    assert pk.metrics.sparse_entries(w, index_bits=3) == (4, 1)
    assert pk.metrics.sparse_entries(w, index_bits=4) == (3, 0)
    layer = nn.Linear(12, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w.view(1, 12))
    # 4 entries x (8-bit value + 3-bit gap) = 44 bits -> 6 bytes, no row pointers
    assert pk.metrics.size_bytes(layer, sparse=True, bits=8, index_bits=3, relative=True) == 6
    # the index stream is pk.quant.relative_indices': its 0 symbols are the fillers
    symbols = pk.quant.relative_indices(w != 0, index_bits=3)
    assert symbols.tolist() == [2, 0, 2, 1]


def test_relative_storage_of_a_pruned_lenet_layer_matches_its_entry_count():
    model = pk.models.lenet_300_100()
    tprune.l1_unstructured(model.fc1, "weight", amount=0.9)
    entries, fillers = pk.metrics.sparse_entries(model.fc1.weight, index_bits=5)
    kept = 784 * 300 - round(0.9 * 784 * 300)
    assert entries == kept + fillers and fillers > 0
    relative = pk.metrics.size_bytes(model, sparse=True, index_bits=5, relative=True)
    rest = (266_610 - 784 * 300) * 4
    assert relative == -(-(entries * 37) // 8) + rest
    # shorter indices than CSR's 32 bits: a smaller file
    assert relative < pk.metrics.size_bytes(model, sparse=True)


def test_compression_ratio():
    assert pk.metrics.compression_ratio(0.75) == 4.0
    assert pk.metrics.compression_ratio(0.9) == pytest.approx(10.0)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        pk.metrics.compression_ratio(1.0)


def test_latency_alternates_and_restores_mode():
    a, b = nn.Linear(16, 16).train(), nn.Linear(16, 4096)
    ms = pk.metrics.latency_ms({"a": a, "b": b}, torch.zeros(32, 16), repeats=5, warmup=1)
    assert set(ms) == {"a", "b"} and all(v > 0 for v in ms.values())
    assert a.training
    assert isinstance(pk.metrics.latency_ms(a, torch.zeros(1, 16), repeats=3), float)
    with pytest.raises(ValueError, match="repeats must be a positive int"):
        pk.metrics.latency_ms(a, torch.zeros(1, 16), repeats=0)


def test_energy_table_ratio():
    dram = pk.metrics.energy_pj({"32-bit DRAM": 1})
    assert dram / pk.metrics.energy_pj({"32-bit int add": 1}) == pytest.approx(6400)
    with pytest.raises(ValueError, match="unknown operations"):
        pk.metrics.energy_pj({"64-bit DRAM": 1})


def test_latency_can_count_cpu_time_that_waiting_does_not_inflate():
    import time as _time

    class Sleeper(torch.nn.Module):
        def forward(self, x):
            _time.sleep(0.02)          # waiting, as when another program holds the core
            return x

    wall = pk.metrics.latency_ms(Sleeper(), torch.zeros(1), repeats=3, warmup=0)
    cpu = pk.metrics.latency_ms(Sleeper(), torch.zeros(1), repeats=3, warmup=0, clock="cpu")
    assert wall >= 20 and cpu < 10
    with pytest.raises(ValueError, match="clock must be one of"):
        pk.metrics.latency_ms(Sleeper(), torch.zeros(1), clock="process")
    with pytest.raises(ValueError, match="needs threads=1"):
        pk.metrics.latency_ms(Sleeper(), torch.zeros(1), clock="cpu", threads=2)
