"""The course's versions of the ``pruning`` assignment's graded functions.

They decide what the hidden tests expect, and the ones a graded function uses
(``ASSIGNMENT.uses``) stand in for the student's while that function is tested.
Each is self-contained: its source alone (plus ``torch``, ``nn``, ``F``,
``copy`` and ``pk``) runs in the student's process, where only the grader
sends it, and never the version of the function under test.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

import pruning_kit as pk


def magnitude_mask(weight, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    k = round(sparsity * weight.numel())
    mask = torch.ones_like(weight)
    mask.view(-1)[weight.detach().abs().flatten().argsort(stable=True)[:k]] = 0
    return mask


def global_magnitude_masks(weights, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    names = list(weights)
    flat = torch.cat([weights[n].detach().abs().flatten().double() for n in names])
    keep = torch.ones_like(flat)
    keep[flat.argsort(stable=True)[:round(sparsity * flat.numel())]] = 0
    masks, start = {}, 0
    for n in names:
        size = weights[n].numel()
        masks[n] = keep[start:start + size].view_as(weights[n]).to(weights[n].dtype)
        start += size
    return masks


def snip_scores(model, inputs, targets):
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    modules = dict(model.named_modules())
    weights = [modules[n].weight for n in names]
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, weights)
    raw = [(g * w).detach().abs() for g, w in zip(grads, weights)]
    total = sum(r.sum() for r in raw)
    return {n: r / total for n, r in zip(names, raw)}


def snip_masks(scores, sparsity):
    names = list(scores)
    flat = torch.cat([scores[n].detach().flatten().double() for n in names])
    keep = torch.ones_like(flat)
    keep[flat.argsort(stable=True)[:round(sparsity * flat.numel())]] = 0
    masks, start = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = keep[start:start + size].view_as(scores[n]).to(scores[n].dtype)
        start += size
    return masks


def imp_step(trained, init, masks, rate):
    new_masks = {}
    for n in trained:
        mask = masks[n].clone()
        alive = mask.flatten().nonzero().flatten()
        k = round(rate * alive.numel())
        order = trained[n].detach().abs().flatten()[alive].argsort(stable=True)
        mask.view(-1)[alive[order[:k]]] = 0
        new_masks[n] = mask
    return new_masks, {n: init[n] * new_masks[n] for n in trained}


def l1_filter_order(conv_weight):
    return conv_weight.detach().abs().flatten(1).sum(dim=1).argsort(stable=True)


def sensitivity_scan(model, data, sparsities):
    scan = {}
    for name, _ in pk.models.prunable(model):
        scan[name] = []
        for sparsity in sparsities:
            pruned = copy.deepcopy(model)
            weight = dict(pruned.named_modules())[name].weight.detach()
            weight.mul_(magnitude_mask(weight, sparsity))
            scan[name].append(pk.train.evaluate(pruned, data))
    return scan


def sparsity_plan():
    return {"fc1": 0.92, "fc2": 0.85, "fc3": 0.5}


def remove_neurons(model, keep):
    small = copy.deepcopy(model)
    inputs = None
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(model, name)
        rows = (keep[name].nonzero().flatten() if name in keep
                else torch.arange(layer.out_features))
        cols = torch.arange(layer.in_features) if inputs is None else inputs
        new = nn.Linear(len(cols), len(rows), bias=layer.bias is not None)
        with torch.no_grad():
            new.weight.copy_(layer.weight[rows][:, cols])
            if layer.bias is not None:
                new.bias.copy_(layer.bias[rows])
        setattr(small, name, new)
        inputs = rows
    before = sum(getattr(model, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
    after = sum(getattr(small, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
    return small, before - after
