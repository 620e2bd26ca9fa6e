"""pk.structured.dependency_graph: coupled networks (ResNets) through Torch-Pruning."""

import pytest
import torch

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X, same_state, state


def test_resnet20_goes_through_torch_pruning():
    model = pk.models.resnet(20)
    saved = state(model)
    assert not st.is_plain_stack(model, CIFAR_X)
    small = st.l1_filter_prune(model, 0.5, CIFAR_X)
    assert same_state(model, saved)                      # the original is untouched
    x = torch.rand(4, 3, 32, 32)
    assert small(x).shape == (4, 10)
    rep = st.report(model, small, CIFAR_X)
    assert rep.params_after < 0.5 * rep.params_before
    assert rep.macs_ratio > 2
    assert small.fc.out_features == 10                  # the classifier keeps its classes
    # coupled channels stay consistent: every block's add has matching widths
    for block in [*small.layer1, *small.layer2, *small.layer3]:
        assert block.conv2.out_channels == block.bn2.num_features


def test_resnet_with_custom_importance_and_plain_backend_error():
    model = pk.models.resnet(20)
    l1 = st.l1_filter_prune(model, 0.5, CIFAR_X)
    for importance in ("random", lambda w: w.abs().flatten(1).sum(1)):   # wrapped for Torch-Pruning
        small = st.l1_filter_prune(model, 0.5, CIFAR_X, importance=importance)
        assert small(CIFAR_X).shape == (1, 10)
        assert [p.shape for p in small.parameters()] == [p.shape for p in l1.parameters()]
    random_pick = st.l1_filter_prune(model, 0.5, CIFAR_X, importance="random")
    assert not torch.equal(l1.conv1.weight, random_pick.conv1.weight)   # other filters kept
    with pytest.raises(st.NotPlainStackError, match="residual|joins branches"):
        st.l1_filter_prune(model, 0.5, CIFAR_X, backend="plain")
