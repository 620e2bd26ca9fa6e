"""pk.quant.deep_compression: relative indices, compressed sizes, the prune -> share -> Huffman
pipeline."""

import math

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit import quant


@pytest.mark.parametrize("index_bits", [1, 2, 3, 5])
def test_relative_indices_round_trip(index_bits):
    g = torch.Generator().manual_seed(index_bits)
    mask = torch.rand(40, 30, generator=g) < 0.05
    mask[0, 0] = True
    symbols = quant.relative_indices(mask, index_bits)
    assert int(symbols.max()) <= 2 ** index_bits - 1
    assert torch.equal(quant.indices_from_relative(symbols, index_bits),
                       torch.nonzero(mask.flatten()).flatten())
    assert quant.relative_indices(torch.zeros(3, 3), index_bits).numel() == 0


def test_compressed_size_by_hand():
    layer = nn.Linear(10, 2, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 1.0
        layer.weight[1, 9] = -1.0     # positions 0 and 19: gaps 1 and 19
    # pruned: 2 values x 32 bits + index symbols [1, 0, 4] (19 = 15 + 4) x 4 bits = 76 bits
    assert quant.compressed_size(layer, index_bits=4) == math.ceil(76 / 8)
    # shared, 1 bit: 2 centroids x 32 + 2 x 1-bit labels + the same 12 bits of index
    shared = quant.share_weights(nn.Sequential(layer), bits=1)
    assert quant.compressed_size(shared, index_bits=4) == math.ceil((64 + 2 + 12) / 8)
    dense = pk.models.lenet_300_100()
    assert quant.compressed_size(dense) == 4 * pk.metrics.count_params(dense)


@pytest.mark.slow
def test_deep_compress_lenet_30x_within_one_point(trained_lenet, mnist5k):
    train, test = mnist5k
    before = {k: v.clone() for k, v in trained_lenet.state_dict().items()}
    report, model = quant.deep_compress(trained_lenet, train, test, sparsity=0.92, bits=5,
                                        return_model=True)
    assert report.stage.tolist() == ["dense", "pruned", "shared", "huffman"]
    assert list(report.columns) == ["stage", "bytes", "ratio", "accuracy"]
    dense, *_, final = report.itertuples()
    assert dense.bytes == 266_610 * 4 and dense.ratio == 1.0
    assert final.ratio >= 30
    assert final.accuracy >= dense.accuracy - 0.01
    assert bool(report.bytes.is_monotonic_decreasing)
    assert pk.train.evaluate(model, test) == final.accuracy
    assert all(torch.equal(before[k], v) for k, v in trained_lenet.state_dict().items())


def test_deep_compress_argument_errors(trained_lenet, mnist5k):
    train, test = mnist5k
    with pytest.raises(ValueError, match="sparsity"):
        quant.deep_compress(trained_lenet, train, test, sparsity=1.0)
    with pytest.raises(ValueError, match="bits"):
        quant.deep_compress(trained_lenet, train, test, bits=0)
    with pytest.raises(ValueError, match="retrain_epochs"):
        quant.deep_compress(trained_lenet, train, test, retrain_epochs=-1)
