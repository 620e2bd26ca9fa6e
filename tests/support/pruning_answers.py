"""Answers to the ``pruning`` assignment for the grader's tests: planted mistakes and correct ones.

- :data:`MUTANTS`: ``{(function, clause number): (old, new)}``: the reference answer of the
  function (``tests/support/assignments.solution``) with the one line holding ``old`` changed
  to read ``new`` (``tests/support/mutation.mutate``). Each breaks exactly that clause of the
  contract (``ASSIGNMENT.clauses``), so the hidden test must fail with the clause's diagnosis.
- :data:`MISTAKES`: ``{(function, diagnosis): (old, new) or source}``: further mistakes
  students make that the checks recognise by name (a recognised mistake inside a broader
  clause), as a one-line change of the reference or as a whole answer.
- :data:`ALTERNATIVES`: ``{function: [source, source]}``: two correct answers written
  differently from the reference (and from each other); they keep full marks.
- :data:`PLANS`: plans and the points the stated rule gives them (dense model trained as the
  lab's setup cell does).

Example:
    >>> MUTANTS[("magnitude_mask", 5)]
    ('k = round(sparsity * weight.numel())', 'k = int(sparsity * weight.numel())')
"""

PLAN = '{"fc1": 0.92, "fc2": 0.85, "fc3": 0.5}'
"""The reference plan as its answer cell spells it (the line the plan mutants change)."""

MUTANTS = {
    # part 1
    ("magnitude_mask", 1): ("return mask", "return mask.tolist()"),
    ("magnitude_mask", 2): ("return mask", "return mask.flatten()"),
    ("magnitude_mask", 3): ("mask = torch.ones_like(weight)",
                            "mask = torch.ones_like(weight, dtype=torch.bool)"),
    ("magnitude_mask", 4): ("mask.view(-1)[smallest] = 0", "mask.view(-1)[smallest] = 0.5"),
    ("magnitude_mask", 5): ("k = round(sparsity * weight.numel())",
                            "k = int(sparsity * weight.numel())"),
    ("magnitude_mask", 6): ("argsort()[:k]", "argsort(descending=True)[:k]"),
    ("magnitude_mask", 7): ("weight.detach().abs().flatten()", "weight.detach().flatten()"),
    ("magnitude_mask", 8): ("weight.detach().abs()", "weight.detach().abs_()"),
    ("magnitude_mask", 9): ("if not 0.0 <= sparsity <= 1.0:", "if False:"),
    # part 2
    ("global_magnitude_masks", 1): ("return masks", "return list(masks.values())"),
    ("global_magnitude_masks", 2): ("masks[name] = keep", "masks[str(len(masks))] = keep"),
    ("global_magnitude_masks", 3): (".view_as(w).to(w.dtype)", ".to(w.dtype)"),
    ("global_magnitude_masks", 4): (".view_as(w).to(w.dtype)", ".view_as(w).bool()"),
    ("global_magnitude_masks", 5): ("keep[magnitudes.argsort()[:round(sparsity * magnitudes.numel())]] = 0",
                                    "keep[magnitudes.argsort()[:round(sparsity * magnitudes.numel())]] = 0.5"),
    ("global_magnitude_masks", 6): ("round(sparsity * magnitudes.numel())",
                                    "int(sparsity * magnitudes.numel())"),
    ("global_magnitude_masks", 7): ("magnitudes.argsort()", "magnitudes.argsort(descending=True)"),
    ("global_magnitude_masks", 8): (
        "keep[magnitudes.argsort()[:round(sparsity * magnitudes.numel())]] = 0",
        "keep = torch.cat([torch.ones(weights[n].numel(), dtype=magnitudes.dtype).index_fill(0, "
        "weights[n].detach().abs().flatten().argsort()[:round(sparsity * weights[n].numel())], 0) "
        "for n in names])"),
    ("global_magnitude_masks", 9): ("weights[name].detach().abs()",
                                    "weights[name].detach().abs_()"),
    ("global_magnitude_masks", 10): ("weights[name].detach().abs().flatten()",
                                     "weights[name].detach().flatten()"),
    # part 3
    ("snip_scores", 1): ("return {name: r / total for (name, _), r in zip(layers, raw)}",
                         "return [r / total for r in raw]"),
    ("snip_scores", 2): ("return {name: r / total", "return {name + '.weight': r / total"),
    ("snip_scores", 3): ("(grad * w).abs().detach()", "(grad * w).abs().detach().flatten()"),
    ("snip_scores", 4): ("return {name: r / total", "return {name: (r / total).long()"),
    ("snip_scores", 5): ("loss = F.cross_entropy(model(inputs), targets)",
                         "loss = F.cross_entropy(model(inputs) * 2, targets)"),
    ("snip_scores", 6): ("(grad * w).abs().detach()", "(grad * w).detach()"),
    ("snip_scores", 7): ("(grad * w).abs().detach()", "(grad).abs().detach()"),
    ("snip_scores", 8): ("return {name: r / total", "return {name: r"),
    ("snip_scores", 9): ("return {name: r / total", "return {name: r / r.sum()"),
    ("snip_scores", 10): ("grads = torch.autograd.grad(loss, weights)",
                          "loss.backward(); grads = [w.grad for w in weights]"),
    ("snip_scores", 11): ("(grad * w).abs().detach()", "(grad * w.detach().abs_()).abs().detach()"),
    # part 4
    ("snip_masks", 1): ("return masks", "return list(masks.values())"),
    ("snip_masks", 2): ("masks[name] = keep", "masks[str(len(masks))] = keep"),
    ("snip_masks", 3): (".view_as(scores[name]).to(scores[name].dtype)",
                        ".to(scores[name].dtype)"),
    ("snip_masks", 4): (".view_as(scores[name]).to(scores[name].dtype)",
                        ".view_as(scores[name]).bool()"),
    ("snip_masks", 5): ("keep[flat.argsort()[:round(sparsity * flat.numel())]] = 0",
                        "keep[flat.argsort()[:round(sparsity * flat.numel())]] = 0.5"),
    ("snip_masks", 6): ("round(sparsity * flat.numel())", "int(sparsity * flat.numel())"),
    ("snip_masks", 7): ("flat.argsort()", "flat.argsort(descending=True)"),
    ("snip_masks", 8): (
        "keep[flat.argsort()[:round(sparsity * flat.numel())]] = 0",
        "keep = torch.cat([torch.ones(scores[n].numel(), dtype=flat.dtype).index_fill(0, "
        "scores[n].detach().flatten().argsort()[:round(sparsity * scores[n].numel())], 0) "
        "for n in names])"),
    ("snip_masks", 9): ("scores[name].detach().flatten()", "scores[name].detach().flatten().mul_(2)"),
    # part 5
    ("imp_step", 1): ("return new_masks, rewound", "return new_masks"),
    ("imp_step", 2): ("rewound[name] = new_mask * init[name]",
                      "rewound[name + '_rewound'] = new_mask * init[name]"),
    ("imp_step", 3): ("new_masks[name] = new_mask", "new_masks[name] = new_mask.flatten()"),
    ("imp_step", 4): ("new_mask = mask.clone()", "new_mask = mask.clone().bool()"),
    ("imp_step", 5): ("new_mask.view(-1)[alive[magnitudes.argsort()[:k]]] = 0",
                      "new_mask.view(-1)[alive[magnitudes.argsort()[:k]]] = 0.5"),
    ("imp_step", 6): ("new_mask = mask.clone()", "new_mask = torch.ones_like(mask)"),
    ("imp_step", 7): ("k = round(rate * alive.numel())", "k = int(rate * alive.numel())"),
    ("imp_step", 8): ("k = round(rate * alive.numel())", "k = round(rate * mask.numel())"),
    ("imp_step", 9): ("new_mask.view(-1)[alive[magnitudes.argsort()[:k]]] = 0",
                      "new_mask.view(-1)[trained[name].detach().abs().flatten().argsort()[:k]] = 0"),
    ("imp_step", 10): (
        "k = round(rate * alive.numel())",
        "k = int((trained[name].detach().abs().flatten()[alive] <= torch.cat([trained[n].detach()"
        ".abs().flatten()[masks[n].flatten() != 0] for n in masks]).sort().values[round(rate * "
        "sum(int((m != 0).sum()) for m in masks.values())) - 1]).sum()) if rate else 0"),
    ("imp_step", 11): ("magnitudes.argsort()", "magnitudes.argsort(descending=True)"),
    ("imp_step", 12): ("trained[name].detach().abs().flatten()[alive]",
                       "trained[name].detach().flatten()[alive]"),
    ("imp_step", 13): ("rewound[name] = new_mask * init[name]",
                       "rewound[name] = mask * init[name]"),
    ("imp_step", 14): ("rewound[name] = new_mask * init[name]",
                       "rewound[name] = new_mask * trained[name]"),
    ("imp_step", 15): ("new_mask = mask.clone()", "new_mask = mask"),
    # part 6
    ("l1_filter_order", 1): ("return norms.argsort(stable=True)",
                             "return norms.argsort(stable=True).tolist()"),
    ("l1_filter_order", 2): ("return norms.argsort(stable=True)",
                             "return norms.argsort(stable=True).int()"),
    ("l1_filter_order", 3): ("sum(dim=(1, 2, 3))", "sum(dim=(0, 2, 3))"),
    ("l1_filter_order", 4): ("return norms.argsort(stable=True)",
                             "return norms.argsort(stable=True) % 2"),
    ("l1_filter_order", 5): ("return norms.argsort(stable=True)",
                             "return norms.argsort(stable=True, descending=True)"),
    ("l1_filter_order", 6): ("conv_weight.detach().abs()", "conv_weight.detach()"),
    ("l1_filter_order", 7): ("return norms.argsort(stable=True)",
                             "return (norms.double() - 1e-9 * torch.arange(len(norms)))"
                             ".argsort(stable=True)"),
    ("l1_filter_order", 8): ("conv_weight.detach().abs()", "conv_weight.detach().abs_()"),
    # part 7
    ("sensitivity_scan", 1): ("return scan", "return list(scan.values())"),
    ("sensitivity_scan", 2): ("for name, _ in pk.models.prunable(model):",
                              "for name, _ in pk.models.prunable(model)[:-1]:"),
    ("sensitivity_scan", 3): ("scan[name].append(pk.train.evaluate(pruned, data))",
                              "scan[name] += [pk.train.evaluate(pruned, data)] * 2"),
    ("sensitivity_scan", 4): ("scan[name].append(pk.train.evaluate(pruned, data))",
                              "scan[name].append(pk.train.evaluate(model, data))"),
    ("sensitivity_scan", 5): ("scan[name].append(pk.train.evaluate(pruned, data))",
                              "scan[name].append(1 - pk.train.evaluate(pruned, data))"),
    ("sensitivity_scan", 6): ("scan[name].append(pk.train.evaluate(pruned, data))",
                              "scan[name].append(100 * pk.train.evaluate(pruned, data))"),
    ("sensitivity_scan", 7): ("pruned = copy.deepcopy(model)",
                              "pruned = locals().get('pruned') or copy.deepcopy(model)"),
    ("sensitivity_scan", 8): ("weight.mul_(magnitude_mask(weight, sparsity))",
                              "[layer.weight.detach().mul_(magnitude_mask(layer.weight.detach(), "
                              "sparsity)) for _, layer in pk.models.prunable(pruned)]"),
    ("sensitivity_scan", 9): ("weight.mul_(magnitude_mask(weight, sparsity))",
                              "weight.view(-1)[weight.flatten().argsort()[:round(sparsity * "
                              "weight.numel())]] = 0"),
    ("sensitivity_scan", 10): ("weight.mul_(magnitude_mask(weight, sparsity))",
                               "weight.mul_(magnitude_mask(weight, sparsity)); bias = "
                               "dict(pruned.named_modules())[name].bias.detach(); "
                               "bias.mul_(magnitude_mask(bias, sparsity))"),
    ("sensitivity_scan", 11): ("pruned = copy.deepcopy(model)", "pruned = model"),
    ("sensitivity_scan", 12): ("scan = {}", "scan = {}; data.images.mul_(0.5)"),
    # part 8
    ("sparsity_plan", 1): (PLAN, "[0.92, 0.85, 0.5]"),
    ("sparsity_plan", 2): (PLAN, '{"fc1": 0.92, "fc2": 0.85}'),
    ("sparsity_plan", 3): (PLAN, '{"fc1": "0.92", "fc2": 0.85, "fc3": 0.5}'),
    ("sparsity_plan", 4): (PLAN, '{"fc1": 92, "fc2": 85, "fc3": 50}'),
    ("sparsity_plan", 5): (PLAN, '{"fc1": 0.08, "fc2": 0.12, "fc3": 0.5}'),
    ("sparsity_plan", 6): (PLAN, '{"fc1": 0.9, "fc2": 0.9, "fc3": 0.9}'),
    # part 9
    ("remove_neurons", 1): ("return small, before - after", "return small"),
    ("remove_neurons", 2): ("return small, before - after",
                            "return small.state_dict(), before - after"),
    ("remove_neurons", 3): ("small = copy.deepcopy(model)", "small = model"),
    ("remove_neurons", 4): ("return small, before - after",
                            "keep.clear(); return small, before - after"),
    ("remove_neurons", 5): ("return small, before - after",
                            "return nn.Sequential(nn.Flatten(), small.fc1, nn.ReLU(), small.fc2, "
                            "nn.ReLU(), small.fc3), before - after"),
    ("remove_neurons", 6): ("rows = keep[name].nonzero().flatten() if name in keep else "
                            "torch.arange(old.out_features)", "rows = torch.arange(old.out_features)"),
    ("remove_neurons", 7): ("inputs = rows", "inputs = torch.arange(old.out_features)"),
    ("remove_neurons", 8): ("old.weight.detach()[rows][:, inputs]",
                            "old.weight.detach()[rows.flip(0)][:, inputs]"),
    ("remove_neurons", 9): ("setattr(small, name, new)",
                            "setattr(small, name, new if name != 'fc3' or 'fc2' in keep "
                            "else old)"),
    ("remove_neurons", 10): ("setattr(small, name, new)",
                             "setattr(small, name, new); small.forward = model.forward"),
    ("remove_neurons", 11): ("return small, before - after",
                             "return small, float(before - after)"),
    ("remove_neurons", 12): ("return small, before - after", "return small, before - after + 1"),
}

MISTAKES = {
    ("l1_filter_order", "l1_filter_order/l2"): ("conv_weight.detach().abs()",
                                                "conv_weight.detach().pow(2)"),
    ("remove_neurons", "remove_neurons/zeros"): """
def remove_neurons(model, keep):
    small = copy.deepcopy(model)
    with torch.no_grad():
        for name, kept in keep.items():
            getattr(small, name).weight[~kept] = 0
            getattr(small, name).bias[~kept] = 0
    return small, 0
""",
    ("remove_neurons", "remove_neurons/inverted"): (
        "rows = keep[name].nonzero().flatten() if name in keep else torch.arange(old.out_features)",
        "rows = (~keep[name]).nonzero().flatten() if name in keep else "
        "torch.arange(old.out_features)"),
    ("remove_neurons", "remove_neurons/raised"): """
def remove_neurons(model, keep):
    small = copy.deepcopy(model)
    k1 = keep.get("fc1", torch.ones(300, dtype=torch.bool))
    k2 = keep.get("fc2", torch.ones(100, dtype=torch.bool))
    small.fc1 = nn.Linear(model.fc1.in_features, int(k1.sum()))
    small.fc2 = nn.Linear(int(k1.sum()), int(k2.sum()))
    small.fc3 = nn.Linear(int(k2.sum()), 10)
    with torch.no_grad():
        small.fc1.weight.copy_(model.fc1.weight[k1]); small.fc1.bias.copy_(model.fc1.bias[k1])
        small.fc2.weight.copy_(model.fc2.weight[k2][:, k1]); small.fc2.bias.copy_(model.fc2.bias[k2])
        small.fc3.weight.copy_(model.fc3.weight[:, k2]); small.fc3.bias.copy_(model.fc3.bias)
    macs = lambda m: sum(l.weight.numel() for l in (m.fc1, m.fc2, m.fc3))
    return small, macs(model) - macs(small)
""",
    ("remove_neurons", "remove_neurons/small-count"): ("return small, before - after",
                                                       "return small, after"),
    ("remove_neurons", "remove_neurons/bias-macs"): (
        "return small, before - after",
        "return small, sum(p.numel() for p in model.parameters()) - "
        "sum(p.numel() for p in small.parameters())"),
    ("remove_neurons", "remove_neurons/rows-only"): (
        "return small, before - after",
        "return small, sum(getattr(model, n).in_features * (getattr(model, n).out_features - "
        "getattr(small, n).out_features) for n in ('fc1', 'fc2', 'fc3'))"),
}

ALTERNATIVES = {
    "magnitude_mask": [
        """
def magnitude_mask(weight, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError("sparsity must be in [0, 1]")
    n = weight.numel()
    k = round(sparsity * n)
    mask = torch.zeros(n, dtype=weight.dtype)
    if n - k:
        mask[weight.detach().abs().flatten().topk(n - k).indices] = 1
    return mask.view(weight.shape)
""",
        """
import numpy as np

def magnitude_mask(weight, sparsity):
    if sparsity < 0 or sparsity > 1:
        raise ValueError(f"bad sparsity {sparsity}")
    w = weight.detach().cpu().numpy()
    k = int(np.round(sparsity * w.size))
    order = np.argsort(np.abs(w).ravel(), kind="stable")
    m = np.ones(w.size, dtype=w.dtype)
    m[order[:k]] = 0
    return torch.from_numpy(m.reshape(w.shape))
""",
    ],
    "global_magnitude_masks": [
        """
def global_magnitude_masks(weights, sparsity):
    flat = torch.cat([w.detach().abs().flatten().double() for w in weights.values()])
    k = round(sparsity * flat.numel())
    keep = torch.ones_like(flat)
    if k:
        t = flat.kthvalue(k).values
        below = flat < t
        keep[below] = 0
        keep[(flat == t).nonzero().flatten()[:k - int(below.sum())]] = 0
    out, i = {}, 0
    for name, w in weights.items():
        out[name] = keep[i:i + w.numel()].reshape(w.shape).to(w.dtype)
        i += w.numel()
    return out
""",
        """
import numpy as np
from collections import OrderedDict

def global_magnitude_masks(weights, sparsity):
    arrays = {n: w.detach().numpy() for n, w in weights.items()}
    flat = np.concatenate([np.abs(a).ravel() for a in arrays.values()])
    keep = np.ones(flat.size)
    keep[np.argsort(flat, kind="stable")[:int(np.round(sparsity * flat.size))]] = 0
    out, i = OrderedDict(), 0
    for n, a in arrays.items():
        out[n] = torch.tensor(keep[i:i + a.size].reshape(a.shape), dtype=weights[n].dtype)
        i += a.size
    return out
""",
    ],
    "snip_scores": [
        """
def snip_scores(model, inputs, targets):
    model.zero_grad()
    F.cross_entropy(model(inputs), targets).backward()
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    raw = {n: (m.weight.grad * m.weight).abs().detach() for n, m in layers}
    total = sum(v.sum() for v in raw.values())
    model.zero_grad()
    return {n: v / total for n, v in raw.items()}
""",
        """
def snip_scores(model, inputs, targets):
    twin = copy.deepcopy(model).double()
    layers = [(n, m) for n, m in twin.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    loss = F.cross_entropy(twin(inputs.double()), targets, reduction="sum")
    grads = torch.autograd.grad(loss, [m.weight for _, m in layers])
    raw = [(g * m.weight).abs().detach() for g, (_, m) in zip(grads, layers)]
    total = torch.stack([r.sum() for r in raw]).sum()
    return {n: (r / total).float() for (n, _), r in zip(layers, raw)}
""",
    ],
    "snip_masks": [
        """
def snip_masks(scores, sparsity):
    names = list(scores)
    flat = torch.cat([scores[n].flatten() for n in names])
    n_keep = flat.numel() - round(sparsity * flat.numel())
    keep = torch.zeros_like(flat)
    keep[torch.sort(flat, descending=True, stable=True).indices[:n_keep]] = 1
    out, i = {}, 0
    for n in names:
        out[n] = keep[i:i + scores[n].numel()].view(scores[n].shape).to(scores[n].dtype)
        i += scores[n].numel()
    return out
""",
        """
import numpy as np

def snip_masks(scores, sparsity):
    flat = np.concatenate([s.numpy().ravel() for s in scores.values()])
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:round(sparsity * flat.size)]] = False
    out, i = {}, 0
    for n, s in scores.items():
        out[n] = torch.from_numpy(keep[i:i + s.numel()].reshape(tuple(s.shape))).to(s.dtype)
        i += s.numel()
    return out
""",
    ],
    "imp_step": [
        """
def imp_step(trained, init, masks, rate):
    new_masks = {}
    for name, m in masks.items():
        k = round(rate * int(m.sum().item()))
        score = trained[name].detach().abs().flatten().clone()
        score[m.flatten() == 0] = float("inf")
        nm = m.flatten().clone()
        nm[score.argsort()[:k]] = 0
        new_masks[name] = nm.view_as(m)
    rewound = {n: torch.where(new_masks[n].bool(), init[n], torch.zeros_like(init[n])) for n in masks}
    return new_masks, rewound
""",
        """
import numpy as np

def imp_step(trained, init, masks, rate):
    new_masks, rewound = {}, {}
    for name in masks:
        m = masks[name].numpy().ravel().copy()
        alive = np.flatnonzero(m)
        k = int(np.round(rate * alive.size))
        order = np.argsort(np.abs(trained[name].numpy().ravel()[alive]), kind="stable")
        m[alive[order[:k]]] = 0
        new_masks[name] = torch.from_numpy(m.reshape(tuple(masks[name].shape)))
        rewound[name] = init[name] * new_masks[name]
    return [new_masks, rewound]
""",
    ],
    "l1_filter_order": [
        """
def l1_filter_order(conv_weight):
    norms = torch.linalg.vector_norm(conv_weight.flatten(1), ord=1, dim=1)
    return torch.sort(norms, stable=True).indices
""",
        """
def l1_filter_order(conv_weight):
    norms = conv_weight.double().abs().sum(dim=(1, 2, 3)).tolist()
    return torch.tensor(sorted(range(len(norms)), key=norms.__getitem__), dtype=torch.long)
""",
    ],
    "sensitivity_scan": [
        """
def sensitivity_scan(model, data, sparsities):
    result = {}
    for name, layer in pk.models.prunable(model):
        saved = layer.weight.detach().clone()
        result[name] = []
        for s in sparsities:
            with torch.no_grad():
                layer.weight.mul_(magnitude_mask(layer.weight, s))
            result[name].append(pk.train.evaluate(model, data))
            with torch.no_grad():
                layer.weight.copy_(saved)
    return result
""",
        """
from collections import defaultdict
import numpy as np

def sensitivity_scan(model, data, sparsities):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    twin = copy.deepcopy(model).eval()
    scan = defaultdict(list)
    for name in layers:
        for s in sparsities:
            twin.load_state_dict(state)
            w = twin.get_submodule(name).weight
            k = round(s * w.numel())
            order = torch.sort(w.detach().abs().flatten()).indices
            with torch.no_grad():
                w.view(-1)[order[:k]] = 0.0
                right = sum((twin(data.images[i:i + 128]).argmax(1) ==
                             data.labels[i:i + 128]).sum() for i in range(0, len(data), 128))
            scan[name].append(np.float64(right.item() / len(data)))
    return scan
""",
    ],
    "sparsity_plan": [
        """
import numpy as np

def sparsity_plan():
    return {"fc3": np.float64(0.5), "fc2": np.float32(0.87), "fc1": 0.92}
""",
        """
def sparsity_plan():
    plan = dict.fromkeys(("fc1", "fc2"), 0.9)
    plan["fc1"] += 0.025
    plan["fc3"] = torch.tensor(0.4)
    return plan
""",
    ],
    "remove_neurons": [
        """
def remove_neurons(model, keep):
    kept = {}
    for name in ("fc1", "fc2"):
        n = getattr(model, name).out_features
        kept[name] = torch.tensor([i for i in range(n) if name not in keep or bool(keep[name][i])],
                                  dtype=torch.long)
    small = pk.models.lenet_300_100(model.fc1.in_features, model.fc3.out_features)
    w1 = model.fc1.weight.detach().index_select(0, kept["fc1"])
    w2 = model.fc2.weight.detach().index_select(0, kept["fc2"]).index_select(1, kept["fc1"])
    w3 = model.fc3.weight.detach().index_select(1, kept["fc2"])
    small.fc1, small.fc2, small.fc3 = (nn.Linear(w.shape[1], w.shape[0]) for w in (w1, w2, w3))
    with torch.no_grad():
        for layer, w, b in ((small.fc1, w1, model.fc1.bias[kept["fc1"]]),
                            (small.fc2, w2, model.fc2.bias[kept["fc2"]]),
                            (small.fc3, w3, model.fc3.bias)):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    macs = lambda m: sum(getattr(m, f).in_features * getattr(m, f).out_features
                         for f in ("fc1", "fc2", "fc3"))
    return small, macs(model) - macs(small)
""",
        """
import numpy as np

class Small(nn.Module):
    def __init__(self, fc1, fc2, fc3):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = fc1, fc2, fc3

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.reshape(len(x), -1))))))


def remove_neurons(model, keep):
    cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
    new, saved = [], 0
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(model, name)
        rows = keep.get(name, torch.ones(layer.out_features, dtype=torch.bool))
        lin = nn.Linear(int(cols.sum()), int(rows.sum()))
        lin.weight.data = layer.weight.data[rows][:, cols].clone()
        lin.bias.data = layer.bias.data[rows].clone()
        saved += layer.in_features * layer.out_features - lin.in_features * lin.out_features
        new.append(lin)
        cols = rows
    return (Small(*new), np.int64(saved))
""",
    ],
}

PLANS = {
    '{"fc1": 0.9, "fc2": 0.9, "fc3": 0.0}': 2,
}
"""A plan earning partial credit (measured with the dense model of the lab's setup cell)."""

KIT_USERS = {
    "magnitude_mask": """
def magnitude_mask(weight, sparsity):
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(weight.detach().clone())
    pk.prune.magnitude(layer, sparsity)
    return layer.weight_mask.clone()
""",
    "sensitivity_scan": """
def sensitivity_scan(model, data, sparsities):
    scan = {}
    for name, _ in pk.models.prunable(model):
        scan[name] = []
        for s in sparsities:
            twin = copy.deepcopy(model)
            pk.prune.magnitude(twin, 0.0, scope="local", rates={name: s})
            scan[name].append(pk.train.evaluate(twin, data))
    return scan
""",
    "remove_neurons": """
def remove_neurons(model, keep):
    small = copy.deepcopy(model)
    for name in ("fc1", "fc2"):
        if name in keep:
            rows = keep[name].nonzero().flatten()
            old, nxt = getattr(small, name), getattr(small, {"fc1": "fc2", "fc2": "fc3"}[name])
            new = nn.Linear(old.in_features, len(rows))
            new.weight, new.bias = nn.Parameter(old.weight[rows].detach()), nn.Parameter(old.bias[rows].detach())
            setattr(small, name, new)
            cut = nn.Linear(len(rows), nxt.out_features)
            cut.weight, cut.bias = nn.Parameter(nxt.weight[:, rows].detach()), nn.Parameter(nxt.bias.detach())
            setattr(small, {"fc1": "fc2", "fc2": "fc3"}[name], cut)
    x = torch.zeros(1, model.fc1.in_features)
    return small, pk.metrics.macs(model, x) - pk.metrics.macs(small, x)
""",
}
"""Answers that hand the work to the kit: the kit view refuses (status ``kit-refused``)."""
