"""pk.structured.surgery: cutting filters out is exact, and bad indices are refused."""

import pytest
import torch

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import MNIST_X, randomize_batchnorm, zero_filters


@pytest.mark.parametrize("make, x", [
    (lambda: pk.models.lenet5(), torch.rand(3, 1, 28, 28)),
    (lambda: pk.models.conv(4, in_channels=1, image_size=28), torch.rand(3, 1, 28, 28)),
    (lambda: pk.models.vgg(11, width=0.25), torch.rand(3, 3, 32, 32)),
])
def test_pruning_zero_filters_keeps_outputs(make, x):
    """Removing filters that were exactly zero changes nothing: the pruned model equals the
    dense model, and each pruned feature map equals the dense one restricted to kept channels."""
    torch.manual_seed(0)
    dense = make().eval()
    randomize_batchnorm(dense)
    units = st.channel_units(dense, x)
    for unit in units:
        if unit.prunable:
            idx = list(range(0, unit.channels, 2))   # half the filters, every other one
            zero_filters(unit.producer, idx, unit.batchnorm)
    small = st.l1_filter_prune(dense, 0.5, x, verify=False).eval()
    with torch.no_grad():
        assert torch.allclose(dense(x), small(x), atol=1e-5)
    # the feature maps: kept channels of the dense model are the pruned model's channels
    for unit in units:
        if not unit.prunable:
            continue
        keep = torch.arange(1, unit.channels, 2)
        feats = {}
        d_mod = dict(dense.named_modules())[unit.last_name]
        s_mod = dict(small.named_modules())[unit.last_name]
        h1 = d_mod.register_forward_hook(lambda m, i, o: feats.__setitem__("dense", o))
        h2 = s_mod.register_forward_hook(lambda m, i, o: feats.__setitem__("small", o))
        with torch.no_grad():
            dense(x), small(x)
        h1.remove(), h2.remove()
        assert feats["small"].shape[1] == len(keep)
        assert torch.allclose(feats["dense"][:, keep], feats["small"], atol=1e-5), unit.name


def test_remove_filters_rejects_bad_indices():
    model = pk.models.lenet5()
    with pytest.raises(ValueError, match="outside 0..19"):
        st.remove_filters(model, {"conv1": [20]}, MNIST_X)
    with pytest.raises(ValueError, match="all 20 filters"):
        st.remove_filters(model, {"conv1": list(range(20))}, MNIST_X)
    with pytest.raises(ValueError, match="not a prunable conv"):
        st.remove_filters(model, {"fc1": [0]}, MNIST_X)
