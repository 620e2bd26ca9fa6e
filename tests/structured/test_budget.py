"""pk.structured.budget: per-conv ratios that remove a target share of the MACs."""

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X, MNIST_X, same_state, state


@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("target", [0.2, 0.4, 0.6])
def test_mac_budgets_are_met_to_within_one_filter(target, uniform):
    # the share removed is the closest the filter granularity allows: no achievable cut is nearer
    torch.manual_seed(0)
    model = pk.models.vgg(11, width=0.25)
    saved = state(model)
    ratios = st.macs_target_ratios(model, target, CIFAR_X, uniform=uniform)
    assert same_state(model, saved)
    small = st.l1_filter_prune(model, 0.0, CIFAR_X, ratios=ratios)
    dense = pk.metrics.macs(model, CIFAR_X)
    removed = 1 - pk.metrics.macs(small, CIFAR_X) / dense
    assert abs(removed - target) < 0.02
    if uniform:
        assert len(set(ratios.values())) == 1
        step = st.l1_filter_prune(model, list(ratios.values())[0] + 1 / 16, CIFAR_X)
        assert abs(1 - pk.metrics.macs(step, CIFAR_X) / dense - target) >= abs(removed - target)
    else:
        assert len(set(ratios.values())) > 1


def test_mac_budget_removes_the_lowest_normalised_scores_first():
    # two convs whose filter norms differ by a constant factor: normalised by the layer mean
    # they tie, so neither layer is spared because its weights are larger
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    with torch.no_grad():
        for i, conv in enumerate((model[0], model[2])):
            conv.weight.copy_(torch.arange(1.0, 5.0).reshape(4, 1, 1, 1)
                              * torch.ones_like(conv.weight) * 10 ** i)
    x = torch.zeros(1, 1, 8, 8)
    ratios = st.macs_target_ratios(model, 0.3, x)
    assert ratios["0"] > 0 and ratios["2"] > 0
    assert st.macs_target_ratios(model, 0.0, x) == {"0": 0.0, "2": 0.0}
    with pytest.warns(UserWarning, match="largest cut"):
        most = st.macs_target_ratios(model, 0.999, x)
    assert most == {"0": 0.75, "2": 0.75}       # one filter always stays


def test_mac_budget_bad_arguments():
    with pytest.raises(ValueError, match="macs_removed must be"):
        st.macs_target_ratios(pk.models.lenet5(), 1.0, MNIST_X)
    with pytest.raises(TypeError, match="uniform must be True or False"):
        st.macs_target_ratios(pk.models.lenet5(), 0.5, MNIST_X, uniform="yes")
    with pytest.raises(st.NotPlainStackError):
        st.macs_target_ratios(pk.models.resnet(20), 0.5, CIFAR_X)
