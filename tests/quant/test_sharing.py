"""pk.quant.sharing: k-means weight sharing (Deep Compression), its centroid gradient."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruning_kit as pk
from pruning_kit import quant


def test_kmeans_linear_init_and_zeros_left_out():
    w = torch.tensor([[-1.0, -0.9, 0.0], [0.1, 1.0, 1.1]])
    centroids, labels = quant.kmeans_share(w, bits=1)
    # linear init at -1 and 1.1; midpoint 0.05 splits {-1, -0.9} from {0.1, 1.0, 1.1}
    assert torch.allclose(centroids, torch.tensor([-0.95, 2.2 / 3]))
    assert labels.tolist() == [[0, 0, -1], [1, 1, 1]]
    centroids, labels = quant.kmeans_share(w, n_clusters=3, ignore_zeros=False)
    assert labels[0, 2] >= 0 and bool((centroids[1:] >= centroids[:-1]).all())


def test_kmeans_linear_init_is_exact_on_evenly_spaced_values():
    values = torch.tensor([-1.5, -0.5, 0.5, 1.5])
    w = values[torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(0))]
    w[:4] = values
    centroids, labels = quant.kmeans_share(w, bits=2)
    assert torch.equal(centroids[labels], w)


def test_kmeans_errors():
    with pytest.raises(ValueError, match="cannot make 32 clusters from 3 nonzero weights"):
        quant.kmeans_share(torch.tensor([1.0, 0.0, 2.0, 3.0]), bits=5)
    with pytest.raises(ValueError, match="cannot make 8 clusters from 4 weights"):
        quant.kmeans_share(torch.tensor([1.0, 0.0, 2.0, 3.0]), n_clusters=8,
                           ignore_zeros=False)
    with pytest.raises(TypeError, match="floating-point"):
        quant.kmeans_share(torch.tensor([1, 2, 3]), bits=1)
    with pytest.raises(ValueError, match="empty"):
        quant.kmeans_share(torch.tensor([]), bits=1)


def test_shared_centroid_gradient_is_sum_over_cluster():
    torch.manual_seed(0)
    model = pk.prune.finalize(pk.prune.magnitude(nn.Sequential(nn.Linear(20, 8)), 0.5))
    shared = quant.share_weights(model, bits=2)
    layer = shared[0]
    labels = layer.parametrizations.weight[0].labels
    mask = layer.parametrizations.weight[0].mask
    x = torch.randn(7, 20)
    layer(x).pow(2).sum().backward()
    w = layer.weight.detach().requires_grad_()
    F.linear(x, w, layer.bias.detach()).pow(2).sum().backward()
    expected = torch.zeros(4).index_add_(0, labels.flatten(), (w.grad * mask).flatten())
    assert torch.allclose(layer.parametrizations.weight.original.grad, expected, atol=1e-5)
    # a training step moves the centroids; pruned weights stay zero and levels stay 4
    before = layer.parametrizations.weight.original.detach().clone()
    torch.optim.SGD(shared.parameters(), lr=0.1).step()
    assert not torch.equal(layer.parametrizations.weight.original, before)
    assert bool((shared[0].weight[mask == 0] == 0).all())
    assert shared[0].weight[mask == 1].unique().numel() <= 4
    plain = quant.unshare_weights(shared)
    assert torch.equal(plain[0].weight, shared[0].weight)


def test_share_weights_leaves_model_and_errors_name_the_layer():
    model = pk.models.lenet_300_100()
    before = model.fc1.weight.clone()
    quant.share_weights(model, bits=3)
    assert torch.equal(model.fc1.weight, before)
    with pytest.raises(ValueError, match="layer 'fc2'.*cannot make 65536 clusters"):
        quant.share_weights(model, bits=16)
