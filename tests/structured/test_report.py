"""pk.structured.report: parameters and MACs before and after (with non-uniform ratios)."""

from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X


def test_non_uniform_ratios_and_report():
    model = pk.models.vgg(11, width=0.25)
    small = st.l1_filter_prune(model, 0.5, CIFAR_X, ratios={"features.0": 0.25, "features.4": 0.0})
    widths = [m.out_channels for m in small.features if isinstance(m, nn.Conv2d)]
    assert widths == [12, 32, 32, 32, 64, 64, 64, 64]   # dense: 16, 32, 64, 64, 128, ...
    assert small.classifier.in_features == 64
    rep = st.report(model, small, CIFAR_X)
    assert rep.channels["features.0"] == (16, 12)
    assert rep.params_before == pk.metrics.count_params(model)
    assert rep.macs_after == pk.metrics.macs(small, CIFAR_X)
    assert 0 < rep.macs_removed < 1 and rep.params_ratio > 1
    frame = rep.frame()
    assert list(frame.layer)[:2] == ["features.0", "features.4"]
    assert "MACs" in str(rep)


def test_uniform_half_of_vgg16_cuts_macs_about_4x():
    x = CIFAR_X
    rep = st.report(pk.models.vgg(16), st.l1_filter_prune(pk.models.vgg(16), 0.5, x), x)
    assert 3.9 < rep.macs_ratio < 4.0 and 3.9 < rep.params_ratio < 4.1
