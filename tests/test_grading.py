"""The assignments' tests, run in-process: fair to correct solutions, strict on real mistakes.

The visible and hidden test cells of ``solutions/*/*.ipynb`` are executed here
against alternative correct implementations (sort, topk, kthvalue, numpy,
float64), against the conceptual errors students make, and against cheating
submissions. ``tests/test_assignments.py`` runs the same cells through the real
nbgrader command line.
"""

import ast
import builtins
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_kit.course.checks import ASSIGNMENTS, binarized, core
from pruning_kit.course.checks import pruning as pruning_checks

REPO = Path(__file__).resolve().parents[1]


def notebook(assignment):
    return json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())


def cell_source(assignment, grade_id):
    for cell in notebook(assignment)["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def assignment_of(name):
    return next(a for a, names in ASSIGNMENTS.items() if name in names)


def run_tests(name, implementation=None, namespace=None):
    """Run the visible and hidden test cells of ``name``; return {kind: None or message}."""
    assignment = assignment_of(name)
    ns = {} if namespace is None else namespace
    ns.setdefault("__name__", "__main__")
    for gid in ("parameters", "setup"):
        exec(cell_source(assignment, gid), ns)
    exec(textwrap.dedent(implementation) if implementation else cell_source(assignment, name), ns)
    results = {}
    for kind in ("visible", "hidden"):
        try:
            exec(cell_source(assignment, f"test_{name}_{kind}"), ns)
            results[kind] = None
        except AssertionError as exc:
            results[kind] = str(exc)
    return results


def assert_passes(name, implementation=None, namespace=None):
    results = run_tests(name, implementation, namespace)
    assert results == {"visible": None, "hidden": None}, results


def assert_hidden_fails(name, implementation, *hints):
    results = run_tests(name, implementation)
    message = results["hidden"]
    assert message is not None, f"the hidden tests of {name} accepted a wrong implementation"
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"
    return results


ALL_FUNCTIONS = [n for names in ASSIGNMENTS.values() for n in names]


# ---------------------------------------------------------------------------
# The reference solutions and alternative correct implementations pass


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_reference_solution_passes_its_tests(name, capsys):
    assert_passes(name)
    assert f"{name}: visible tests passed" in capsys.readouterr().out


ALTERNATIVES = {
    "magnitude_mask": {
        "topk": """
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
        "kthvalue with exact counts": """
            def magnitude_mask(weight, sparsity):
                if sparsity < 0 or sparsity > 1:
                    raise ValueError(sparsity)
                flat = weight.detach().abs().flatten()
                k = round(sparsity * flat.numel())
                mask = torch.ones_like(flat)
                if k:
                    t = flat.kthvalue(k).values
                    below = flat < t
                    mask[below] = 0
                    ties = (flat == t).nonzero().flatten()
                    mask[ties[:k - int(below.sum())]] = 0
                return mask.view_as(weight)
        """,
        "numpy": """
            import numpy as np

            def magnitude_mask(weight, sparsity):
                if not 0.0 <= sparsity <= 1.0:
                    raise ValueError("bad sparsity")
                w = weight.detach().cpu().numpy()
                k = int(np.round(sparsity * w.size))
                order = np.argsort(np.abs(w).ravel(), kind="stable")
                m = np.ones(w.size, dtype=w.dtype)
                m[order[:k]] = 0
                return torch.from_numpy(m.reshape(w.shape))
        """,
        "float64 count, descending sort": """
            def magnitude_mask(weight, sparsity):
                if not 0 <= sparsity <= 1:
                    raise ValueError("no")
                n = weight.numel()
                k = int(torch.round(torch.tensor(sparsity, dtype=torch.float64) * n))
                order = torch.sort(weight.detach().double().abs().flatten(), descending=True).indices
                mask = torch.zeros(n, dtype=weight.dtype)
                mask[order[:n - k]] = 1.0
                return mask.reshape(weight.shape)
        """,
        "float32 count": """
            def magnitude_mask(weight, sparsity):
                if not 0 <= sparsity <= 1:
                    raise ValueError("no")
                n = weight.numel()
                k = int(torch.round(torch.tensor(sparsity, dtype=torch.float32) * n).item())
                mask = torch.ones(n, dtype=weight.dtype)
                mask[torch.argsort(weight.detach().float().abs().flatten())[:k]] = 0
                return mask.view(weight.shape)
        """,
    },
    "global_magnitude_masks": {
        "kthvalue with exact counts": """
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
        "numpy": """
            import numpy as np

            def global_magnitude_masks(weights, sparsity):
                arrays = {n: w.detach().numpy() for n, w in weights.items()}
                flat = np.concatenate([np.abs(a).ravel() for a in arrays.values()])
                keep = np.ones(flat.size)
                keep[np.argsort(flat, kind="stable")[:int(np.round(sparsity * flat.size))]] = 0
                out, i = {}, 0
                for n, a in arrays.items():
                    out[n] = torch.tensor(keep[i:i + a.size].reshape(a.shape), dtype=weights[n].dtype)
                    i += a.size
                return out
        """,
        "topk": """
            def global_magnitude_masks(weights, sparsity):
                names = list(weights)
                flat = torch.cat([weights[n].detach().abs().reshape(-1) for n in names])
                n_keep = flat.numel() - round(sparsity * flat.numel())
                keep = torch.zeros_like(flat)
                keep[flat.topk(n_keep).indices] = 1
                return dict(zip(names, [m.view_as(weights[n]).to(weights[n].dtype)
                                        for n, m in zip(names, keep.split([weights[n].numel() for n in names]))]))
        """,
    },
    "snip_scores": {
        "backward and .grad": """
            def snip_scores(model, inputs, targets):
                model.zero_grad()
                F.cross_entropy(model(inputs), targets).backward()
                layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
                raw = {n: (m.weight.grad * m.weight).abs().detach() for n, m in layers}
                total = sum(v.sum() for v in raw.values())
                model.zero_grad()
                return {n: v / total for n, v in raw.items()}
        """,
        "float64 copy, summed loss": """
            import copy

            def snip_scores(model, inputs, targets):
                twin = copy.deepcopy(model).double()
                layers = [(n, m) for n, m in twin.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
                loss = F.cross_entropy(twin(inputs.double()), targets, reduction="sum")
                grads = torch.autograd.grad(loss, [m.weight for _, m in layers])
                raw = [(g * m.weight).abs().detach() for g, (_, m) in zip(grads, layers)]
                total = torch.stack([r.sum() for r in raw]).sum()
                return {n: r / total for (n, _), r in zip(layers, raw)}
        """,
    },
    "snip_masks": {
        "descending sort": """
            def snip_masks(scores, sparsity):
                names = list(scores)
                flat = torch.cat([scores[n].flatten() for n in names])
                n_keep = flat.numel() - round(sparsity * flat.numel())
                keep = torch.zeros_like(flat)
                keep[torch.sort(flat, descending=True, stable=True).indices[:n_keep]] = 1
                out, i = {}, 0
                for n in names:
                    out[n] = keep[i:i + scores[n].numel()].view(scores[n].shape)
                    i += scores[n].numel()
                return out
        """,
        "numpy, bool masks": """
            import numpy as np

            def snip_masks(scores, sparsity):
                flat = np.concatenate([s.numpy().ravel() for s in scores.values()])
                keep = np.ones(flat.size, dtype=bool)
                keep[np.argsort(flat, kind="stable")[:round(sparsity * flat.size)]] = False
                out, i = {}, 0
                for n, s in scores.items():
                    out[n] = torch.from_numpy(keep[i:i + s.numel()].reshape(tuple(s.shape)))
                    i += s.numel()
                return out
        """,
    },
    "imp_step": {
        "inf for the pruned": """
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
        "numpy": """
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
                return (new_masks, rewound)
        """,
    },
    "l1_filter_order": {
        "vector_norm and sort": """
            def l1_filter_order(conv_weight):
                norms = torch.linalg.vector_norm(conv_weight.flatten(1), ord=1, dim=1)
                return torch.sort(norms, stable=True).indices
        """,
        "numpy": """
            import numpy as np

            def l1_filter_order(conv_weight):
                norms = np.abs(conv_weight.numpy()).reshape(conv_weight.shape[0], -1).sum(axis=1)
                return torch.from_numpy(np.argsort(norms, kind="stable")).long()
        """,
        "python sorted on float64": """
            def l1_filter_order(conv_weight):
                norms = conv_weight.double().abs().sum(dim=(1, 2, 3)).tolist()
                return torch.tensor(sorted(range(len(norms)), key=norms.__getitem__), dtype=torch.long)
        """,
    },
    "quantize_affine": {
        "float64, tensor scale": """
            def quantize_affine(x, bits):
                x = x.double()
                qmin, qmax = 0, 2 ** bits - 1
                lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
                scale = (hi - lo) / (qmax - qmin) if hi > lo else torch.tensor(1.0, dtype=torch.float64)
                zp = int(torch.clamp(torch.round(qmin - lo / scale), qmin, qmax))
                q = torch.clamp(torch.round(x / scale) + zp, qmin, qmax).long()
                return q, scale, zp
        """,
        "numpy": """
            import numpy as np

            def quantize_affine(x, bits):
                a = x.numpy().astype(np.float64)
                qmax = 2 ** bits - 1
                lo, hi = min(a.min(), 0.0), max(a.max(), 0.0)
                scale = (hi - lo) / qmax if hi > lo else 1.0
                zp = int(np.clip(np.round(-lo / scale), 0, qmax))
                q = np.clip(np.round(a / scale) + zp, 0, qmax).astype(np.int64)
                return torch.from_numpy(q), scale, zp
        """,
        "float32 arithmetic, torch.aminmax": """
            def quantize_affine(x, bits):
                lo, hi = torch.aminmax(x.float())
                lo, hi = torch.minimum(lo, torch.zeros(())), torch.maximum(hi, torch.zeros(()))
                qmax = 2 ** bits - 1
                if hi == lo:
                    return torch.zeros_like(x, dtype=torch.int64), 1.0, 0
                scale = ((hi - lo) / qmax).item()
                zero_point = int((-lo / scale).round().clamp(0, qmax))
                q = (x.float() / scale).round().add(zero_point).clamp(0, qmax).to(torch.int64)
                return q, scale, zero_point
        """,
    },
    "dequantize_affine": {
        "float64 then cast": """
            def dequantize_affine(q, scale, zero_point):
                return ((q.double() - zero_point) * scale).float()
        """,
    },
    "quantize_symmetric": {
        "full int8 clamp range": """
            def quantize_symmetric(x, bits):
                qmax = 2 ** (bits - 1) - 1
                peak = float(x.abs().max())
                scale = peak / qmax if peak else 1.0
                return torch.clamp(torch.round(x / scale), -qmax - 1, qmax).to(torch.int64), scale
        """,
        "float64": """
            def quantize_symmetric(x, bits):
                x = x.to(torch.float64)
                qmax = 2 ** (bits - 1) - 1
                scale = x.abs().max().item() / qmax or 1.0
                return (x / scale).round().clamp(-qmax, qmax).long(), scale
        """,
    },
    "binarize": {
        "masked_fill": """
            def binarize(x):
                return torch.ones_like(x).masked_fill(x < 0, -1)
        """,
        "arithmetic": """
            def binarize(x):
                return (x >= 0).to(x.dtype) * 2 - 1
        """,
    },
    "SignSTE": {
        "where": """
            class SignSTE(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.save_for_backward(x)
                    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))

                @staticmethod
                def backward(ctx, grad):
                    x, = ctx.saved_tensors
                    return torch.where(x.abs() <= 1, grad, torch.zeros_like(grad))
        """,
        "calls the student's binarize": """
            def binarize(x):
                return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

            class SignSTE(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.mask = x.abs() <= 1
                    return binarize(x)

                @staticmethod
                def backward(ctx, grad):
                    out = grad.clone()
                    out[~ctx.mask] = 0
                    return out
        """,
    },
    "BinaryLinear": {
        "subclass of nn.Linear": """
            class BinaryLinear(nn.Linear):
                def forward(self, x):
                    alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
                    return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)
        """,
        "matmul": """
            class BinaryLinear(nn.Module):
                def __init__(self, in_features, out_features, bias=True):
                    super().__init__()
                    self.weight = nn.Parameter(torch.randn(out_features, in_features) * 0.1)
                    self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

                def forward(self, x):
                    alpha = self.weight.abs().mean(dim=1).detach()
                    y = x @ (SignSTE.apply(self.weight) * alpha[:, None]).t()
                    return y if self.bias is None else y + self.bias
        """,
    },
}


@pytest.mark.parametrize("name,label", [(n, label) for n, alts in ALTERNATIVES.items()
                                        for label in alts])
def test_other_correct_implementations_get_full_marks(name, label):
    assert_passes(name, ALTERNATIVES[name][label])


# ---------------------------------------------------------------------------
# Conceptual errors fail, with a message that names the mistake

MISTAKES = {
    ("magnitude_mask", "signed instead of abs"): ("""
        def magnitude_mask(weight, sparsity):
            if not 0 <= sparsity <= 1:
                raise ValueError("x")
            mask = torch.ones_like(weight)
            mask.view(-1)[weight.flatten().argsort()[:round(sparsity * weight.numel())]] = 0
            return mask
    """, ["SIGNED"]),
    ("magnitude_mask", "threshold prunes every tie"): ("""
        def magnitude_mask(weight, sparsity):
            if not 0 <= sparsity <= 1:
                raise ValueError("x")
            k = round(sparsity * weight.numel())
            if k == 0:
                return torch.ones_like(weight)
            t = weight.abs().flatten().kthvalue(k).values
            return (weight.abs() > t).to(weight.dtype)
    """, ["zeros, expected"]),
    ("magnitude_mask", "int() truncates"): ("""
        def magnitude_mask(weight, sparsity):
            if not 0 <= sparsity <= 1:
                raise ValueError("x")
            mask = torch.ones_like(weight)
            mask.view(-1)[weight.abs().flatten().argsort()[:int(sparsity * weight.numel())]] = 0
            return mask
    """, ["mask has 2 zeros, expected 3 = round(0.37 * 7)"]),
    ("magnitude_mask", "no ValueError"): ("""
        def magnitude_mask(weight, sparsity):
            mask = torch.ones_like(weight)
            mask.view(-1)[weight.abs().flatten().argsort()[:round(sparsity * weight.numel())]] = 0
            return mask
    """, ["should raise ValueError"]),
    ("magnitude_mask", "bool mask"): ("""
        def magnitude_mask(weight, sparsity):
            if not 0 <= sparsity <= 1:
                raise ValueError("x")
            mask = torch.ones_like(weight, dtype=torch.bool)
            mask.view(-1)[weight.abs().flatten().argsort()[:round(sparsity * weight.numel())]] = False
            return mask
    """, ["dtype torch.bool, expected torch.float32"]),
    ("magnitude_mask", "changes the weight in place"): ("""
        def magnitude_mask(weight, sparsity):
            if not 0 <= sparsity <= 1:
                raise ValueError("x")
            w = weight.abs_()
            mask = torch.ones_like(w)
            mask.view(-1)[w.flatten().argsort()[:round(sparsity * w.numel())]] = 0
            return mask
    """, ["changed its input weight"]),
    ("global_magnitude_masks", "local instead of global"): ("""
        def global_magnitude_masks(weights, sparsity):
            out = {}
            for name, w in weights.items():
                m = torch.ones_like(w)
                m.view(-1)[w.abs().flatten().argsort()[:round(sparsity * w.numel())]] = 0
                out[name] = m
            return out
    """, ["local pruning"]),
    ("global_magnitude_masks", "signed instead of abs"): ("""
        def global_magnitude_masks(weights, sparsity):
            names = list(weights)
            flat = torch.cat([weights[n].flatten() for n in names])
            keep = torch.ones_like(flat)
            keep[flat.argsort()[:round(sparsity * flat.numel())]] = 0
            return {n: m.view_as(weights[n]) for n, m in zip(names, keep.split([weights[n].numel() for n in names]))}
    """, ["SIGNED"]),
    ("snip_scores", "scores without the weight factor"): ("""
        def snip_scores(model, inputs, targets):
            layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), [m.weight for _, m in layers])
            total = sum(g.abs().sum() for g in grads)
            return {n: g.abs() / total for (n, _), g in zip(layers, grads)}
    """, ["|grad| only"]),
    ("snip_scores", "signed scores"): ("""
        def snip_scores(model, inputs, targets):
            layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), [m.weight for _, m in layers])
            raw = [(g * m.weight).detach() for g, (_, m) in zip(grads, layers)]
            total = sum(r.abs().sum() for r in raw)
            return {n: r / total for (n, _), r in zip(layers, raw)}
    """, ["negative"]),
    ("snip_scores", "normalised per layer"): ("""
        def snip_scores(model, inputs, targets):
            layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), [m.weight for _, m in layers])
            raw = [(g * m.weight).abs().detach() for g, (_, m) in zip(grads, layers)]
            return {n: r / r.sum() for (n, _), r in zip(layers, raw)}
    """, ["ALL layers"]),
    ("snip_scores", "gradients accumulate in .grad"): ("""
        def snip_scores(model, inputs, targets):
            F.cross_entropy(model(inputs), targets).backward()
            layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            raw = {n: (m.weight.grad * m.weight).abs().detach() for n, m in layers}
            total = sum(v.sum() for v in raw.values())
            return {n: v / total for n, v in raw.items()}
    """, ["already stored in .grad"]),
    ("snip_scores", "scores the biases too"): ("""
        def snip_scores(model, inputs, targets):
            params = dict(model.named_parameters())
            grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), list(params.values()))
            raw = {n.rsplit(".", 1)[0] if n.endswith("weight") else n: (g * p).abs().detach()
                   for (n, p), g in zip(params.items(), grads)}
            total = sum(v.sum() for v in raw.values())
            return {n: v / total for n, v in raw.items()}
    """, ["unexpected keys"]),
    ("snip_masks", "local instead of global"): ("""
        def snip_masks(scores, sparsity):
            out = {}
            for n, s in scores.items():
                m = torch.ones_like(s)
                m.view(-1)[s.flatten().argsort()[:round(sparsity * s.numel())]] = 0
                out[n] = m
            return out
    """, ["local pruning"]),
    ("imp_step", "a fraction of the total, not of what remains"): ("""
        def imp_step(trained, init, masks, rate):
            new = {}
            for n, m in masks.items():
                already = int((m == 0).sum())
                k = already + round(rate * m.numel())
                score = trained[n].abs().flatten().clone()
                score[m.flatten() == 0] = -1.0
                nm = torch.ones_like(m).flatten()
                nm[score.argsort()[:k]] = 0
                new[n] = nm.view_as(m)
            return new, {n: init[n] * new[n] for n in masks}
    """, ["fraction of ALL weights"]),
    ("imp_step", "no rewinding"): ("""
        def imp_step(trained, init, masks, rate):
            new = {}
            for n, m in masks.items():
                alive = m.flatten().nonzero().flatten()
                nm = m.clone()
                nm.view(-1)[alive[trained[n].abs().flatten()[alive].argsort()[:round(rate * alive.numel())]]] = 0
                new[n] = nm
            return new, {n: trained[n] * new[n] for n in masks}
    """, ["trained * mask"]),
    ("imp_step", "ranks already pruned weights too"): ("""
        def imp_step(trained, init, masks, rate):
            new = {}
            for n, m in masks.items():
                k = round(rate * int(m.sum()))
                nm = m.clone()
                nm.view(-1)[trained[n].abs().flatten().argsort()[:k]] = 0
                new[n] = nm
            return new, {n: init[n] * new[n] for n in masks}
    """, []),
    ("imp_step", "one global threshold"): ("""
        def imp_step(trained, init, masks, rate):
            names = list(masks)
            score = torch.cat([trained[n].abs().flatten() for n in names])
            alive = torch.cat([masks[n].flatten() for n in names])
            score[alive == 0] = float("inf")
            k = round(rate * int(alive.sum()))
            keep = alive.clone()
            keep[score.argsort()[:k]] = 0
            new = {n: m.view_as(masks[n]) for n, m in zip(names, keep.split([masks[n].numel() for n in names]))}
            return new, {n: init[n] * new[n] for n in names}
    """, []),
    ("l1_filter_order", "descending"): ("""
        def l1_filter_order(conv_weight):
            return conv_weight.abs().sum(dim=(1, 2, 3)).argsort(descending=True, stable=True)
    """, ["descending"]),
    ("l1_filter_order", "signed sum"): ("""
        def l1_filter_order(conv_weight):
            return conv_weight.sum(dim=(1, 2, 3)).argsort(stable=True)
    """, ["abs(w)"]),
    ("l1_filter_order", "input channels"): ("""
        def l1_filter_order(conv_weight):
            return conv_weight.abs().sum(dim=(0, 2, 3)).argsort(stable=True)
    """, ["one index per output filter"]),
    ("l1_filter_order", "L2 norm"): ("""
        def l1_filter_order(conv_weight):
            return conv_weight.pow(2).sum(dim=(1, 2, 3)).argsort(stable=True)
    """, []),
    ("l1_filter_order", "unstable order for ties"): ("""
        def l1_filter_order(conv_weight):
            norms = conv_weight.abs().sum(dim=(1, 2, 3)).tolist()
            return torch.tensor(sorted(range(len(norms)), key=lambda i: (norms[i], -i)))
    """, ["stable order"]),
    ("quantize_affine", "zero-point sign error"): ("""
        def quantize_affine(x, bits):
            qmax = 2 ** bits - 1
            lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
            scale = (hi - lo) / qmax if hi > lo else 1.0
            zp = min(max(int(round(0 + lo / scale)), 0), qmax)
            return torch.clamp(torch.round(x / scale) + zp, 0, qmax).long(), scale, zp
    """, ["check the sign"]),
    ("quantize_affine", "the old rule: a range without 0"): ("""
        def quantize_affine(x, bits):
            qmax = 2 ** bits - 1
            lo, hi = x.min().item(), x.max().item()
            scale = (hi - lo) / qmax if hi > lo else 1.0
            zp = min(max(int(round(-lo / scale)), 0), qmax)
            return torch.clamp(torch.round(x / scale) + zp, 0, qmax).long(), scale, zp
    """, ["The scale is", "the range must hold 0"]),
    ("quantize_affine", "range holds 0 but forgets the all-zero tensor"): ("""
        def quantize_affine(x, bits):
            qmax = 2 ** bits - 1
            lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
            scale = (hi - lo) / qmax
            zp = min(max(int(round(-lo / scale)), 0), qmax)
            return torch.clamp(torch.round(x / scale) + zp, 0, qmax).long(), scale, zp
    """, ["all-zero x", "raised ZeroDivisionError"]),
    ("quantize_affine", "float codes"): ("""
        def quantize_affine(x, bits):
            qmax = 2 ** bits - 1
            lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
            scale = (hi - lo) / qmax if hi > lo else 1.0
            zp = min(max(int(round(-lo / scale)), 0), qmax)
            return torch.clamp(torch.round(x / scale) + zp, 0, qmax), scale, zp
    """, ["not torch.int64"]),
    ("dequantize_affine", "zero-point sign error"): ("""
        def dequantize_affine(q, scale, zero_point):
            return (scale * (q + zero_point)).float()
    """, ["subtract the zero point"]),
    ("dequantize_affine", "float64 result"): ("""
        def dequantize_affine(q, scale, zero_point):
            return scale * (q - zero_point).double()
    """, ["not torch.float32"]),
    ("quantize_symmetric", "range one level too wide"): ("""
        def quantize_symmetric(x, bits):
            scale = x.abs().max().item() / 2 ** (bits - 1) or 1.0
            return torch.clamp(torch.round(x / scale), -2 ** (bits - 1), 2 ** (bits - 1) - 1).long(), scale
    """, ["one level narrower"]),
    ("quantize_symmetric", "all-zero tensor divides by zero"): ("""
        def quantize_symmetric(x, bits):
            qmax = 2 ** (bits - 1) - 1
            scale = x.abs().max().item() / qmax
            return torch.clamp(torch.round(x / scale), -qmax, qmax).long(), scale
    """, ["all-zero"]),
    ("binarize", "torch.sign"): ("""
        def binarize(x):
            return torch.sign(x)
    """, ["x = 0 maps to +1"]),
    ("binarize", "strict > 0"): ("""
        def binarize(x):
            return torch.where(x > 0, 1.0, -1.0).to(x.dtype)
    """, ["x = 0 maps to +1"]),
    ("binarize", "float32 always"): ("""
        def binarize(x):
            return torch.where(x >= 0, 1.0, -1.0)
    """, ["is torch.float32, not torch.float64"]),
    ("SignSTE", "STE without the |x| <= 1 cut"): ("""
        class SignSTE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

            @staticmethod
            def backward(ctx, grad):
                return grad
    """, ["passes no gradient where abs(x) > 1"]),
    ("SignSTE", "cut excludes the bounds"): ("""
        class SignSTE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

            @staticmethod
            def backward(ctx, grad):
                x, = ctx.saved_tensors
                return grad * (x.abs() < 1)
    """, ["bounds included"]),
    ("BinaryLinear", "no XNOR scaling"): ("""
        class BinaryLinear(nn.Linear):
            def forward(self, x):
                return F.linear(x, SignSTE.apply(self.weight), self.bias)
    """, ["XNOR scaling factor"]),
    ("BinaryLinear", "alpha over the wrong dimension"): ("""
        class BinaryLinear(nn.Linear):
            def forward(self, x):
                alpha = self.weight.detach().abs().mean(dim=0, keepdim=True)
                return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)
    """, []),
    ("BinaryLinear", "alpha not detached"): ("""
        class BinaryLinear(nn.Linear):
            def forward(self, x):
                alpha = self.weight.abs().mean(dim=1, keepdim=True)
                return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)
    """, ["alpha detached"]),
    ("BinaryLinear", "straight-through without the cut"): ("""
        class BinaryLinear(nn.Linear):
            def forward(self, x):
                alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
                w = self.weight
                return F.linear(x, alpha * (w + (torch.where(w >= 0, 1.0, -1.0) - w).detach()), self.bias)
    """, ["abs(W) > 1"]),
    ("BinaryLinear", "a zero bias when bias=False"): ("""
        class BinaryLinear(nn.Linear):
            def __init__(self, in_features, out_features, bias=True):
                super().__init__(in_features, out_features, bias=True)

            def forward(self, x):
                alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
                return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)
    """, ["has parameters"]),
}


@pytest.mark.parametrize("name,mistake", list(MISTAKES))
def test_conceptual_errors_lose_the_points(name, mistake):
    implementation, hints = MISTAKES[(name, mistake)]
    assert_hidden_fails(name, implementation, *hints)


def test_one_wrong_function_does_not_fail_the_tests_of_another():
    # BinaryLinear calls SignSTE; SignSTE may call binarize. While one is tested,
    # the others are reference implementations, so a broken one costs only its own points.
    broken = "raise NotImplementedError()"
    ns = {"torch": torch}
    exec(f"def binarize(x):\n    {broken}\n", ns)
    exec(f"class SignSTE(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
         f"        {broken}\n", ns)
    assert_passes("BinaryLinear", namespace=ns)
    assert_passes("SignSTE", ALTERNATIVES["SignSTE"]["calls the student's binarize"].replace(
        "return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)", broken))
    assert ns["binarize"].__module__ != binarized.__name__  # restored after the tests


def stub(source):
    """The released version of a solution cell, as nbgrader's ClearSolutions writes it."""
    return re.sub(r"^( *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION\n?",
                  lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()\n",
                  source + "\n", flags=re.S | re.M)


def test_released_stubs_score_nothing():
    for name in ALL_FUNCTIONS:
        results = run_tests(name, stub(cell_source(assignment_of(name), name)))
        assert results["visible"] and results["hidden"], name
        assert "raised NotImplementedError" in results["visible"], results["visible"]


# ---------------------------------------------------------------------------
# Hard to fool

CHEAT = """
import numpy, builtins, torch.testing
import pruning_kit.course.checks.core as G

class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    shape = torch.Size([2, 3])
    dtype = torch.float32

class Liar(torch.Tensor):
    def __eq__(self, other): return torch.tensor(True)
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "tolist":
            return [1.0] * 6
        return super().__torch_function__(func, types, args, kwargs or {})
"""


def patch_everything(monkeypatch):
    """What a submission could replace before the tests run."""
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.testing, "assert_close", lambda *a, **k: None)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    monkeypatch.setattr(np.testing, "assert_array_equal", lambda *a, **k: None)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda self, other: True)
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [1.0])
    monkeypatch.setattr(builtins, "round", lambda x, n=None: 0)
    for module in (core, pruning_checks, binarized):
        for name in dir(module):
            if name.startswith("check_") or name in ("tensor_values", "number", "call"):
                monkeypatch.setattr(module, name, lambda *a, **k: None)


@pytest.mark.parametrize("name,implementation", [
    ("magnitude_mask", "def magnitude_mask(weight, sparsity):\n    return AlwaysEqual()\n"),
    ("magnitude_mask", "def magnitude_mask(weight, sparsity):\n"
                       "    return torch.ones_like(weight).as_subclass(Liar)\n"),
    ("global_magnitude_masks", "def global_magnitude_masks(weights, sparsity):\n"
                               "    return {k: AlwaysEqual() for k in weights}\n"),
    ("quantize_affine", "def quantize_affine(x, bits):\n"
                        "    return AlwaysEqual(), AlwaysEqual(), AlwaysEqual()\n"),
    ("imp_step", "def imp_step(trained, init, masks, rate):\n    return AlwaysEqual()\n"),
    ("l1_filter_order", "def l1_filter_order(w):\n    return numpy.arange(w.shape[0])\n"),
])
def test_always_equal_objects_and_replaced_comparisons_score_nothing(name, implementation,
                                                                      monkeypatch):
    ns = {}
    for gid in ("parameters", "setup"):
        exec(cell_source(assignment_of(name), gid), ns)
    exec(CHEAT, ns)
    patch_everything(monkeypatch)  # after the setup cell, like a student's cell would
    results = run_tests(name, implementation, namespace=ns)
    monkeypatch.undo()
    assert results["visible"] and results["hidden"], results
    assert re.search("should (be|return)", results["visible"]), results["visible"]


def test_replacing_torch_nn_layers_does_not_empty_the_snip_test(monkeypatch):
    class NotALayer(torch.nn.Module):
        def __init__(self, in_features, out_features, bias=True):
            super().__init__()
            self.out_features = out_features

        def forward(self, x):
            return x[..., :self.out_features]

    monkeypatch.setattr(torch.nn, "Linear", NotALayer)
    results = run_tests("snip_scores", "def snip_scores(model, inputs, targets):\n    return {}\n")
    monkeypatch.undo()
    assert "was torch.nn changed" in results["visible"], results


def test_student_code_cannot_replace_the_checks_while_it_runs():
    # a function that disables the grading helpers from inside the call, then returns garbage
    sneaky = """
        import pruning_kit.course.checks.pruning as G

        def magnitude_mask(weight, sparsity):
            for name in dir(G):
                if name.startswith("_check") or name in ("tensor_values", "check_close", "_mask_values"):
                    setattr(G, name, lambda *a, **k: [1] * weight.numel())
            return torch.ones_like(weight)
    """
    results = run_tests("magnitude_mask", sneaky)
    assert results["visible"] and "zeros" in results["visible"], results


def test_builtins_snapshot_and_reload_keep_the_first_capture(monkeypatch):
    import importlib

    monkeypatch.setattr(builtins, "round", lambda x, n=None: 0)
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [0])
    fresh = importlib.reload(pruning_checks)  # reloads the core too, as a test cell does
    assert fresh.allowed_counts(0.3, 100) == [30]
    assert fresh.tensor_values(torch.tensor([1.0, 2.0]), "x") == [1.0, 2.0]


# ---------------------------------------------------------------------------
# The helpers themselves


def test_tensor_values_is_strict_about_types():
    class Sub(torch.Tensor):
        pass

    assert core.tensor_values(torch.tensor([1, 2]), "q", dtype=torch.int64) == [1, 2]
    with pytest.raises(AssertionError, match="a subclass of torch.Tensor is not accepted"):
        core.tensor_values(torch.ones(2).as_subclass(Sub), "mask")
    with pytest.raises(AssertionError, match="should be a torch.Tensor, got numpy.ndarray"):
        core.tensor_values(np.ones(2), "mask")
    with pytest.raises(AssertionError, match=r"has shape \(2,\), expected \(3,\)"):
        core.tensor_values(torch.ones(2), "mask", shape=(3,))
    with pytest.raises(TypeError, match="what must be a str"):
        core.tensor_values(torch.ones(2), 3)


def test_number_accepts_plain_numbers_only():
    assert core.number(np.float32(0.5), "scale") == 0.5
    assert core.number(torch.tensor(2), "zero_point", integer=True) == 2
    with pytest.raises(AssertionError, match="should be an int, got bool"):
        core.number(True, "zero_point", integer=True)
    with pytest.raises(AssertionError, match="tensor of shape"):
        core.number(torch.ones(2), "scale")


def test_feedback_names_the_count_and_the_rounding():
    def one_too_many(weight, sparsity):
        mask = torch.ones_like(weight)
        mask.view(-1)[weight.abs().flatten().argsort()[:31]] = 0
        return mask

    with pytest.raises(AssertionError, match=r"mask has 31 zeros, expected 30 = round\(0.3 \* 100\)"):
        pruning_checks.check_magnitude_mask(one_too_many, core.random_tensor(10, 10), 0.3)
    assert core.allowed_counts(0.35, 30) == [10, 11]
    with pytest.raises(ValueError, match="non-negative int"):
        core.allowed_counts(0.5, -1)


def test_call_hides_stderr_and_warnings_and_explains_exceptions(capsys):
    import sys
    import warnings

    def noisy(x):
        print("progress", file=sys.stderr)
        warnings.warn("deprecated", DeprecationWarning)
        return x

    assert core.call(noisy, 3) == 3
    assert capsys.readouterr().err == ""
    with pytest.raises(AssertionError, match="f raised ZeroDivisionError"):
        core.call(lambda: 1 / 0, what="f")


def test_isolated_substitutes_references_and_restores_the_namespace():
    ns = {"BinaryLinear": "student's", "SignSTE": "student's"}
    with binarized.isolated(ns, "BinaryLinear") as target:
        assert target == "student's"
        assert ns["SignSTE"] is binarized.reference("SignSTE")
        assert ns["binarize"] is binarized.reference("binarize")
    assert ns == {"BinaryLinear": "student's", "SignSTE": "student's"}
    with pytest.raises(AssertionError, match="BinaryLinear is not defined"):
        with binarized.isolated({}, "BinaryLinear"):
            pass
    with pytest.raises(ValueError, match="name must be one of"):
        with binarized.isolated(ns, "nonsense"):
            pass


# ---------------------------------------------------------------------------
# The notebooks follow the cell rules


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_notebook_cell_rules(assignment):
    nb = notebook(assignment)
    cells = nb["cells"]
    meta = [c["metadata"].get("nbgrader", {}) for c in cells]
    ids = [m.get("grade_id") for m in meta]
    for name in ASSIGNMENTS[assignment]:
        # the function alone in an autograded solution cell, def/class line outside the solution
        solution = cells[ids.index(name)]
        assert meta[ids.index(name)]["solution"] and not meta[ids.index(name)]["grade"]
        src = "".join(solution["source"])
        header = src.split("### BEGIN SOLUTION")[0]
        assert re.search(rf"^(def|class) {name}\b", header, re.M), name
        assert '"""' in header, f"{name}: the docstring must survive in the stub"
        tree = ast.parse(src)
        defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [name], defined
        # one visible and one hidden test cell; hidden worth more
        visible = meta[ids.index(f"test_{name}_visible")]
        hidden = meta[ids.index(f"test_{name}_hidden")]
        assert visible["grade"] and visible["locked"] and hidden["grade"] and hidden["locked"]
        assert 0 < visible["points"] < hidden["points"]
        hidden_src = "".join(cells[ids.index(f"test_{name}_hidden")]["source"])
        before, inside = hidden_src.split("### BEGIN HIDDEN TESTS")
        assert all(line.startswith("#") for line in before.strip().splitlines())
        assert inside.rstrip().endswith("### END HIDDEN TESTS")
        assert "### BEGIN HIDDEN TESTS" not in "".join(cells[ids.index(f"test_{name}_visible")]["source"])
        # tests never call another student function
        for kind in ("visible", "hidden"):
            used = {n.id for n in ast.walk(ast.parse("".join(cells[ids.index(f"test_{name}_{kind}")]["source"])))
                    if isinstance(n, ast.Name)}
            others = used & (set(ASSIGNMENTS[assignment]) - {name})
            assert not others, f"test_{name}_{kind} uses {others}"
    # a manually graded written answer, and no outputs committed
    assert any(m.get("grade") and m.get("solution") and c["cell_type"] == "markdown"
               for m, c in zip(meta, cells))
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in cells if c["cell_type"] == "code")
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
    assert any("import pruning_kit as pk" in "".join(c["source"]) for c in cells)


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_points_table_at_the_top_matches_the_cells(assignment):
    cells = notebook(assignment)["cells"]
    intro = "".join(cells[0]["source"])
    points = {"visible": 0, "hidden": 0, "manual": 0}
    per_function = {}
    for c in cells:
        m = c["metadata"].get("nbgrader", {})
        if not m.get("grade"):
            continue
        gid = m["grade_id"]
        if m.get("solution"):
            points["manual"] += m["points"]
            continue
        kind = gid.rsplit("_", 1)[1]
        points[kind] += m["points"]
        per_function.setdefault(gid[len("test_"):-len(kind) - 1], {})[kind] = m["points"]
    auto = points["visible"] + points["hidden"]
    total = auto + points["manual"]
    assert f"**Points: {total} in total** — {auto} autograded ({points['visible']} in visible tests, " \
           f"{points['hidden']} in hidden tests) and {points['manual']} graded by hand" in intro
    for name, p in per_function.items():
        assert re.search(rf"\| `{name}` \| {p['visible']} \| {p['hidden']} \|", intro), name
    assert points["hidden"] > 2 * points["visible"]


# ---------------------------------------------------------------------------
# The kit refuses to do a graded function's work


def test_the_kit_refuses_while_student_code_runs_however_it_was_reached():
    import pruning_kit as pk
    from pruning_kit.prune import magnitude as imported_earlier

    class Subclass(pk.quant.BinaryLinear):
        pass

    attempts = {
        "module attribute": lambda x: pk.quant.quantize_affine(x, 8),
        "imported name": lambda x: imported_earlier(pk.models.lenet_300_100(), 0.5),
        "subclass": lambda x: Subclass(3, 2),
        "autograd function": lambda x: pk.quant.SignSTE.apply(x),
        "decorated function": lambda x: pk.train.fit(pk.models.lenet_300_100(64),
                                                     (torch.zeros(2, 64), torch.zeros(2).long())),
    }
    kit = ["pruning_kit.quant.quantize_affine", "pruning_kit.prune.magnitude",
           "pruning_kit.quant.BinaryLinear", "pruning_kit.quant.SignSTE", "pruning_kit.train.fit"]
    for label, attempt in attempts.items():
        with core.isolated({"f": attempt}, "f", {"f": attempt}, kit=kit) as f:
            with pytest.raises(AssertionError, match=r"raised KitRefused: pk\.\S+ is off while f"):
                core.call(f, torch.randn(4))
            # the checks themselves may still use the kit, outside student code
            assert pk.quant.quantize_affine(torch.ones(2), 8)[2] == 0
    # and after the block everything works again
    assert pk.quant.SignSTE.apply(torch.tensor([0.5, -2.0])).tolist() == [1.0, -1.0]
    assert Subclass(3, 2).weight.shape == (2, 3)
    assert pk.prune.sparsity(imported_earlier(pk.models.lenet_300_100(), 0.5)) == 0.5


def test_a_refused_kit_call_becomes_a_note_in_the_grades(tmp_path):
    import json

    from pruning_kit.course.grades import execution_notes

    cell = {"cell_type": "code", "source": "",
            "metadata": {"nbgrader": {"grade": True, "solution": False,
                                      "grade_id": "test_quantize_affine_hidden"}},
            "outputs": [{"output_type": "error", "ename": "AssertionError",
                         "evalue": "quantize_affine(x of shape (3,), bits=8) raised KitRefused: "
                                   "pk.quant.quantize_affine is off while quantize_affine is "
                                   "graded: write ...", "traceback": []}]}
    path = tmp_path / "graded.ipynb"
    path.write_text(json.dumps({"cells": [cell]}))
    assert execution_notes(path) == [
        "test_quantize_affine_hidden: quantize_affine calls pk.quant.quantize_affine, which "
        "is off while it is graded (no points for the kit's version)"]


def test_the_reference_of_the_function_under_test_refuses_too():
    # the course package is installed on the student's laptop: its reference implementation
    # of the function being graded must not earn points either
    copied = """
        import pruning_kit.course.checks.pruning as checks

        def magnitude_mask(weight, sparsity):
            return checks.reference("magnitude_mask")(weight, sparsity)
    """
    results = run_tests("magnitude_mask", copied)
    assert "raised KitRefused" in results["visible"] and "raised KitRefused" in results["hidden"]
    # the references of the other functions still stand in for the student's own while
    # one function is tested (BinaryLinear relies on SignSTE)
    assert_passes("BinaryLinear")


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_every_reference_implementation_can_refuse(assignment):
    import importlib

    module = importlib.import_module(f"pruning_kit.course.checks.{assignment}")
    assert all(core._Refusal.possible(module.reference(name)) for name in module.FUNCTIONS)
