"""The course's versions of the ``binarized`` assignment's graded functions and classes.

They decide what the hidden tests expect, and the ones a graded function uses
(``ASSIGNMENT.uses``) stand in for the student's while that function is tested.
Each is self-contained: its source alone (plus ``torch``, ``nn``, ``F`` and the
other course versions it names) runs in the student's process, where only the
grader sends it, and never the version of the function under test.
"""

import torch
import torch.nn.functional as F
from torch import nn


def quantize_affine(x, bits):
    qmin, qmax = 0, 2 ** bits - 1
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
    zero_point = min(max(int(round(qmin - lo / scale)), qmin), qmax)
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int64)
    return q, scale, zero_point


def dequantize_affine(q, scale, zero_point):
    return (scale * (q - zero_point)).to(torch.float32)


def quantize_symmetric(x, bits):
    qmax = 2 ** (bits - 1) - 1
    peak = x.abs().max().item()
    scale = peak / qmax if peak > 0 else 1.0
    return torch.clamp(torch.round(x / scale), -qmax, qmax).to(torch.int64), scale


def binarize(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
        return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)


def quantize_bias(bias, input_scale, weight_scale):
    return torch.round(bias.to(torch.float64) / (input_scale * weight_scale)).to(torch.int32)


def integer_linear(x_q, x_zero_point, w_q, bias_q):
    x = x_q.to(torch.int32) - x_zero_point
    return x @ w_q.to(torch.int32).t() + bias_q.to(torch.int32)


def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale,
                     out_zero_point):
    acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
    out = torch.round(acc.to(torch.float64) * (x_scale * w_scale / out_scale)) + out_zero_point
    return out.clamp(0, 255).to(torch.uint8)


class BinarizedMLP(nn.Module):
    def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
        super().__init__()
        self.binary_activations = binary_activations
        self.fc1, self.bn1 = BinaryLinear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = BinaryLinear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden)
        self.fc3 = BinaryLinear(hidden, num_classes, bias=False)
        self.bn3 = nn.BatchNorm1d(num_classes)

    def activation(self, x):
        return SignSTE.apply(x) if self.binary_activations else F.hardtanh(x)

    def forward(self, x):
        x = self.activation(self.bn1(self.fc1(x.flatten(1))))
        x = self.activation(self.bn2(self.fc2(x)))
        return self.bn3(self.fc3(x))


def train_binarized(model, train, epochs, seed):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    n, batch = len(train.labels), 100
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * -(-n // batch)))
    layers = [m for m in model.modules() if type(m).__name__ == "BinaryLinear"]
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = F.cross_entropy(model(train.images[idx]), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                for layer in layers:
                    layer.weight.clamp_(-1.0, 1.0)
            total += loss.item() * len(idx)
        losses.append(total / n)
    model.eval()
    return losses
