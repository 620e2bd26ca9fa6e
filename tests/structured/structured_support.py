"""What several tests of pk.structured share: example inputs, model snapshots, zeroed filters."""

import torch
from torch import nn


MNIST_X = torch.zeros(1, 1, 28, 28)


CIFAR_X = torch.zeros(1, 3, 32, 32)


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model, saved):
    now = model.state_dict()
    return now.keys() == saved.keys() and all(torch.equal(now[k], saved[k]) for k in saved)


def zero_filters(conv, idx, bn=None):
    """Make filters exactly zero: their weights and bias, and the BatchNorm's output for them."""
    with torch.no_grad():
        conv.weight[idx] = 0
        if conv.bias is not None:
            conv.bias[idx] = 0
        if bn is not None:   # eval-mode BatchNorm of a zero channel gives bias - mean*w/std
            bn.bias[idx] = 0
            bn.running_mean[idx] = 0


def randomize_batchnorm(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
