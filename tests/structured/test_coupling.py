"""pk.structured.coupling: which models are plain stacks of convs."""

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)))


def test_plain_stack_detection():
    assert st.is_plain_stack(pk.models.conv(2), CIFAR_X)
    assert not st.is_plain_stack(Concat(), torch.zeros(1, 1, 8, 8))
    with pytest.raises(st.NotPlainStackError, match="more than once"):
        st.channel_units(Reused(), torch.zeros(1, 4, 8, 8))
    # the concatenating model is still pruned, by Torch-Pruning
    small = st.l1_filter_prune(Concat(), 0.5, torch.zeros(1, 1, 8, 8))
    assert small(torch.zeros(1, 1, 8, 8)).shape == (1, 2, 8, 8)
