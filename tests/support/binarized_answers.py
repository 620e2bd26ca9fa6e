"""The ``binarized`` assignment's planted mistakes and other correct answers, for tests/grader.

``MUTANTS[(function, clause)] = (old, new)``: the reference answer of ``function`` (its answer cell
in ``solutions/binarized/binarized.ipynb``) with the one line containing ``old`` changed to read
``new`` (:func:`support.mutation.mutate`): a mistake that breaks clause ``clause`` of the function's
contract, and only it (``pruning_grader.assignments.binarized``'s clause table).

``ALTERNATIVES[function]``: two correct answers written differently from the reference and from
each other; each keeps full marks.

``KIT_BASED``: answers that hand the work to the kit's versions, which refuse while grading.

Example:
    >>> from support.assignments import solution
    >>> from support.mutation import mutate
    >>> mutant = mutate(solution("binarized", "binarize"), *MUTANTS[("binarize", 4)])
    >>> "torch.sign(x)" in mutant
    True
"""

from __future__ import annotations

import textwrap

MUTANTS = {
    # 1.1 quantize_affine
    ("quantize_affine", 1): ("return q, scale, zero_point", "return q, scale"),
    ("quantize_affine", 2): (".to(torch.int64)", ".to(torch.int64).flatten()"),
    ("quantize_affine", 3): (".to(torch.int64)", ".to(torch.int32)"),
    ("quantize_affine", 4): ("(hi - lo) / (qmax - qmin)", "(hi - lo) / (qmax - qmin + 1)"),
    ("quantize_affine", 5): ("lo = min(x.min().item(), 0.0)", "lo = x.min().item()"),
    ("quantize_affine", 6): (" if hi > lo else 1.0", ""),
    ("quantize_affine", 7): ("int(round(qmin - lo / scale))", "int(qmin - lo / scale)"),
    ("quantize_affine", 8): ("qmin - lo / scale", "qmin + lo / scale"),
    ("quantize_affine", 9): ("torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)",
                             "(torch.round(x / scale) + zero_point)"),
    ("quantize_affine", 10): ("torch.round(x / scale)", "torch.floor(x / scale)"),
    ("quantize_affine", 11): ("torch.round(x / scale)", "torch.round(x.div_(scale))"),
    # 1.2 dequantize_affine
    ("dequantize_affine", 1): (".to(torch.float32)", ".to(torch.float32).flatten()"),
    ("dequantize_affine", 2): (".to(torch.float32)", ".to(torch.float64)"),
    ("dequantize_affine", 3): ("(scale * (q - zero_point))", "(scale * q - zero_point)"),
    ("dequantize_affine", 4): ("(scale * (q - zero_point))", "(scale * (q + zero_point))"),
    ("dequantize_affine", 5): ("(scale * (q - zero_point))", "(scale * q.sub_(zero_point))"),
    # 1.3 quantize_symmetric
    ("quantize_symmetric", 1): ("return q, scale", "return q"),
    ("quantize_symmetric", 2): (".to(torch.int64)", ".to(torch.int64).flatten()"),
    ("quantize_symmetric", 3): (".to(torch.int64)", ".to(torch.int32)"),
    ("quantize_symmetric", 4): ("x.abs().max()", "x.max()"),
    ("quantize_symmetric", 5): ("qmax = 2 ** (bits - 1) - 1", "qmax = 2 ** (bits - 1)"),
    ("quantize_symmetric", 6): (" if peak > 0 else 1.0", ""),
    ("quantize_symmetric", 7): ("torch.round(x / scale)", "torch.floor(x / scale)"),
    ("quantize_symmetric", 8): ("torch.round(x / scale)", "torch.round(x.div_(scale))"),
    # 1.4 binarize
    ("binarize", 1): ("-torch.ones_like(x))", "-torch.ones_like(x)).flatten()"),
    ("binarize", 2): ("torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))",
                      "torch.where(x >= 0, 1.0, -1.0)"),
    ("binarize", 3): ("torch.where(x >= 0,", "torch.where(x <= 0,"),
    ("binarize", 4): ("return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))",
                      "return torch.sign(x)"),
    ("binarize", 5): ("return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))",
                      "return x.copy_(torch.where(x >= 0, torch.ones_like(x), "
                      "-torch.ones_like(x)))"),
    # 1.5 SignSTE
    ("SignSTE", 1): ("class SignSTE(torch.autograd.Function):", "class SignSTE(nn.Module):"),
    ("SignSTE", 2): ("torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))",
                     "torch.where(x >= 0, 1.0, -1.0)"),
    ("SignSTE", 3): ("return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))",
                     "return torch.sign(x)"),
    ("SignSTE", 4): ("return grad_output * (x.abs() <= 1).to(grad_output.dtype)",
                     "return None"),
    ("SignSTE", 5): ("return grad_output * (x.abs() <= 1).to(grad_output.dtype)",
                     "return grad_output"),
    ("SignSTE", 6): ("(x.abs() <= 1)", "(x.abs() < 1)"),
    ("SignSTE", 7): ("return grad_output * (x.abs() <= 1).to(grad_output.dtype)",
                     "return (x.abs() <= 1).to(grad_output.dtype)"),
    # 1.6 BinaryLinear
    ("BinaryLinear", 1): ("class BinaryLinear(nn.Module):", "class BinaryLinear:"),
    ("BinaryLinear", 2): ("if bias:", "if True:"),
    ("BinaryLinear", 3): ("nn.init.uniform_(self.weight, -bound, bound)",
                          "nn.init.zeros_(self.weight)"),
    ("BinaryLinear", 4): ("alpha * SignSTE.apply(self.weight), self.bias)",
                          "alpha * SignSTE.apply(self.weight))"),
    ("BinaryLinear", 5): ("alpha * SignSTE.apply(self.weight)", "SignSTE.apply(self.weight)"),
    ("BinaryLinear", 6): ("mean(dim=1, keepdim=True)", "mean(dim=0, keepdim=True)"),
    ("BinaryLinear", 7): ("SignSTE.apply(self.weight)", "torch.where(self.weight >= 0, 1.0, -1.0)"),
    ("BinaryLinear", 8): ("alpha * SignSTE.apply(self.weight)",
                          "alpha * (self.weight + (torch.where(self.weight >= 0, 1.0, -1.0) "
                          "- self.weight).detach())"),
    ("BinaryLinear", 9): ("self.weight.detach().abs()", "self.weight.abs()"),
    # 2.1 quantize_bias
    ("quantize_bias", 1): (".to(torch.int32)", ".to(torch.int32).reshape(-1, 1)"),
    ("quantize_bias", 2): (".to(torch.int32)", ".to(torch.int64)"),
    ("quantize_bias", 3): ("torch.round(bias.to(torch.float64) / accumulator_scale)",
                           "(torch.round(bias.to(torch.float64) / accumulator_scale) + 128)"),
    ("quantize_bias", 4): ("accumulator_scale = input_scale * weight_scale",
                           "accumulator_scale = weight_scale"),
    ("quantize_bias", 5): ("torch.round(", "torch.trunc("),
    ("quantize_bias", 6): ("/ accumulator_scale", "* accumulator_scale"),
    ("quantize_bias", 7): ("bias.to(torch.float64) / accumulator_scale",
                           "bias.div_(accumulator_scale)"),
    # 2.2 integer_linear
    ("integer_linear", 1): ("return centred @ w_q.to(torch.int32).t() + bias_q.to(torch.int32)",
                            "return (centred @ w_q.to(torch.int32).t() + "
                            "bias_q.to(torch.int32)).t()"),
    ("integer_linear", 2): ("bias_q.to(torch.int32)", "bias_q.to(torch.int64)"),
    ("integer_linear", 3): ("+ bias_q.to(torch.int32)", "- bias_q.to(torch.int32)"),
    ("integer_linear", 4): ("centred = x_q.to(torch.int32) - x_zero_point",
                            "centred = x_q.to(torch.int32)"),
    ("integer_linear", 5): (" + bias_q.to(torch.int32)", ""),
    ("integer_linear", 6): ("centred = x_q.to(torch.int32) - x_zero_point",
                            "centred = (x_q - x_zero_point).to(torch.int32)"),
    ("integer_linear", 7): ("return centred @ w_q.to(torch.int32).t() + bias_q.to(torch.int32)",
                            "return torch.from_numpy((centred.numpy().astype('float32') @ "
                            "w_q.numpy().astype('float32').T + bias_q.numpy().astype('float32'))"
                            ".round().astype('int32'))"),
    ("integer_linear", 8): ("return centred @ w_q.to(torch.int32).t() + bias_q.to(torch.int32)",
                            "return (centred.double() @ w_q.double().t() + bias_q.double())"
                            ".round().to(torch.int32)"),
    ("integer_linear", 9): ("centred = x_q.to(torch.int32) - x_zero_point",
                            "centred = x_q.sub_(x_zero_point).to(torch.int32)"),
    # 2.3 quantized_linear
    ("quantized_linear", 1): (".to(torch.uint8)", ".to(torch.uint8).t()"),
    ("quantized_linear", 2): (".to(torch.uint8)", ".to(torch.int32)"),
    ("quantized_linear", 3): ("* multiplier) + out_zero_point", "* multiplier) - out_zero_point"),
    ("quantized_linear", 4): ("* multiplier) + out_zero_point", "* multiplier)"),
    ("quantized_linear", 5): ("return levels.clamp(0, 255).to(torch.uint8)",
                              "return levels.to(torch.int64).to(torch.uint8)"),
    ("quantized_linear", 6): ("torch.round(", "torch.floor("),
    ("quantized_linear", 7): ("multiplier = x_scale * w_scale / out_scale",
                              "multiplier = out_scale / (x_scale * w_scale)"),
    ("quantized_linear", 8): ("integer_linear(x_q, x_zero_point, w_q, bias_q)",
                              "integer_linear(x_q, 0, w_q, bias_q)"),
    ("quantized_linear", 9): ("acc = integer_linear(x_q, x_zero_point, w_q, bias_q)",
                              "acc = (x_q.double() - x_zero_point) @ w_q.double().t() "
                              "+ bias_q.double()"),
    ("quantized_linear", 10): ("integer_linear(x_q, x_zero_point, w_q, bias_q)",
                               "integer_linear(x_q.sub_(x_zero_point), 0, w_q, bias_q)"),
    # 3.1 BinarizedMLP
    ("BinarizedMLP", 1): ("class BinarizedMLP(nn.Module):", "class BinarizedMLP:"),
    ("BinarizedMLP", 2): ("hidden=256,", "hidden=128,"),
    ("BinarizedMLP", 3): ("h = activation(self.bn2(self.fc2(h)))", "h = activation(self.bn2(h))"),
    ("BinarizedMLP", 4): ("self.fc3 = BinaryLinear(hidden, num_classes, bias=False)",
                          "self.fc3 = nn.Linear(hidden, num_classes, bias=False)"),
    ("BinarizedMLP", 5): ("h = activation(self.bn1(self.fc1(x.flatten(1))))",
                          "h = activation(self.fc1(x.flatten(1)))"),
    ("BinarizedMLP", 6): ("self.fc1(x.flatten(1))", "self.fc1(SignSTE.apply(x.flatten(1)))"),
    ("BinarizedMLP", 7): ("self.bn2(self.fc2(h))", "self.bn2(F.dropout(self.fc2(h), 0.5))"),
    ("BinarizedMLP", 8): ("activation = SignSTE.apply if self.binary_activations else F.hardtanh",
                          "activation = F.hardtanh"),
    ("BinarizedMLP", 9): ("activation = SignSTE.apply if", "activation = binarize if"),
    ("BinarizedMLP", 10): ("activation = SignSTE.apply if self.binary_activations else "
                           "F.hardtanh", "activation = SignSTE.apply"),
    ("BinarizedMLP", 11): ("return self.bn3(self.fc3(h))",
                           "return SignSTE.apply(self.bn3(self.fc3(h)))"),
    ("BinarizedMLP", 12): ("self.bn1 = nn.BatchNorm1d(hidden)",
                           "self.bn1 = nn.BatchNorm1d(hidden, momentum=0.0)"),
    # 3.2 train_binarized
    ("train_binarized", 1): ("return losses", "return"),
    ("train_binarized", 2): ("batches = pk.data.loader(train, batch_size=100, shuffle=True, "
                             "seed=seed)",
                             "batches = pk.data.loader(train, batch_size=100, shuffle=True, "
                             "seed=seed); import copy; model = copy.deepcopy(model)"),
    ("train_binarized", 3): ("optimizer.step()",
                             "[p.data.add_(p.grad, alpha=-1e-2) for p in model.parameters() "
                             "if p.grad is not None]"),
    ("train_binarized", 4): ("weight.clamp_(-1.0, 1.0)", "pass"),
    ("train_binarized", 5): ("latent = [module.weight for module in model.modules() "
                             "if isinstance(module, BinaryLinear)]",
                             "latent = list(model.parameters())"),
    ("train_binarized", 6): ("model.eval()", "pass"),
    ("train_binarized", 7): ("losses.append(total / seen)", "losses.append(loss.item())"),
    ("train_binarized", 8): ("seed=seed)", "seed=0)"),
    ("train_binarized", 9): ("lr=1e-2)", "lr=1e-5)"),
}
"""One planted mistake per clause: ``(function, clause number) -> (old, new)``."""


def _source(text):
    return textwrap.dedent(text).strip() + "\n"


ALTERNATIVES = {
    "quantize_affine": [_source("""
        def quantize_affine(x, bits):
            x = x.double()
            qmin, qmax = 0, 2 ** bits - 1
            lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
            scale = (hi - lo) / (qmax - qmin) if hi > lo else torch.tensor(1.0, dtype=torch.float64)
            zp = int(torch.clamp(torch.round(qmin - lo / scale), qmin, qmax))
            q = torch.clamp(torch.round(x / scale) + zp, qmin, qmax).long()
            return q, scale, zp
    """), _source("""
        import numpy as np

        def quantize_affine(x, bits):
            a = x.numpy().astype(np.float64)
            qmax = 2 ** bits - 1
            lo, hi = min(a.min(), 0.0), max(a.max(), 0.0)
            scale = float(hi - lo) / qmax if hi > lo else 1.0
            zp = int(np.clip(np.round(-lo / scale), 0, qmax))
            q = np.clip(np.round(a / scale) + zp, 0, qmax).astype(np.int64)
            return torch.from_numpy(q), scale, zp
    """)],
    "dequantize_affine": [_source("""
        def dequantize_affine(q, scale, zero_point):
            return ((q.double() - zero_point) * scale).float()
    """), _source("""
        import numpy as np

        def dequantize_affine(q, scale, zero_point):
            values = scale * (q.numpy().astype(np.int64) - zero_point)
            return torch.from_numpy(values.astype(np.float32))
    """)],
    "quantize_symmetric": [_source("""
        def quantize_symmetric(x, bits):
            qmax = 2 ** (bits - 1) - 1
            peak = float(x.abs().max())
            scale = peak / qmax if peak else 1.0
            return torch.clamp(torch.round(x / scale), -qmax - 1, qmax).to(torch.int64), scale
    """), _source("""
        def quantize_symmetric(x, bits):
            x = x.to(torch.float64)
            qmax = 2 ** (bits - 1) - 1
            scale = x.abs().max().item() / qmax or 1.0
            return (x / scale).round().clamp(-qmax, qmax).long(), scale
    """)],
    "binarize": [_source("""
        def binarize(x):
            return torch.ones_like(x).masked_fill(x < 0, -1)
    """), _source("""
        def binarize(x):
            return (x >= 0).to(x.dtype) * 2 - 1
    """)],
    "SignSTE": [_source("""
        class SignSTE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))

            @staticmethod
            def backward(ctx, grad):
                x, = ctx.saved_tensors
                return torch.where(x.abs() <= 1, grad, torch.zeros_like(grad))
    """), _source("""
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
    """)],
    "BinaryLinear": [_source("""
        class BinaryLinear(nn.Linear):
            def forward(self, x):
                alpha = self.weight.detach().abs().mean(dim=1, keepdim=True)
                return F.linear(x, alpha * SignSTE.apply(self.weight), self.bias)
    """), _source("""
        class BinaryLinear(nn.Module):
            def __init__(self, in_features, out_features, bias=True):
                super().__init__()
                self.weight = nn.Parameter(torch.randn(out_features, in_features) * 0.1)
                self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

            def forward(self, x):
                alpha = self.weight.abs().mean(dim=1).detach()
                y = x @ (SignSTE.apply(self.weight) * alpha[:, None]).t()
                return y if self.bias is None else y + self.bias
    """)],
    "quantize_bias": [_source("""
        def quantize_bias(bias, input_scale, weight_scale):
            return (bias.float() / input_scale / weight_scale).round().int()
    """), _source("""
        import numpy as np

        def quantize_bias(bias, input_scale, weight_scale):
            codes = np.rint(bias.numpy().astype(np.float64) / (input_scale * weight_scale))
            return torch.from_numpy(codes.astype(np.int32))
    """)],
    "integer_linear": [_source("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            w = w_q.to(torch.int32)
            folded = bias_q.to(torch.int32) - x_zero_point * w.sum(dim=1, dtype=torch.int32)
            return F.linear(x_q.to(torch.int32), w, folded)
    """), _source("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            x = x_q.long() - x_zero_point
            return (torch.einsum("nj,ij->ni", x, w_q.long()) + bias_q.long()).int()
    """)],
    "quantized_linear": [_source("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale,
                             out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            m = torch.tensor(x_scale * w_scale / out_scale, dtype=torch.float32)
            return torch.clamp(torch.round(acc.float() * m) + out_zero_point, 0, 255).byte()
    """), _source("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale,
                             out_zero_point):
            acc = (x_q.long() - x_zero_point) @ w_q.long().T + bias_q.long()
            y = torch.round(acc.double() * x_scale * w_scale / out_scale).long() + out_zero_point
            return y.clamp(0, 255).to(torch.uint8)
    """)],
    "BinarizedMLP": [_source("""
        class BinarizedMLP(nn.Module):
            class Sign(nn.Module):
                def forward(self, x):
                    return SignSTE.apply(x)

            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                act = BinarizedMLP.Sign if binary_activations else nn.Hardtanh
                self.net = nn.Sequential(
                    nn.Flatten(), BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden), act(),
                    BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden), act(),
                    BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes))

            def forward(self, x):
                return self.net(x)
    """), _source("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                sizes = [in_features, hidden, hidden, num_classes]
                self.layers = nn.ModuleList(BinaryLinear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
                self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])
                self.binary = binary_activations

            def forward(self, x):
                x = x.view(x.shape[0], -1)
                for k, (layer, norm) in enumerate(zip(self.layers, self.norms)):
                    x = norm(layer(x))
                    if k < 2:
                        x = SignSTE.apply(x) if self.binary else x.clamp(-1, 1)
                return x
    """)],
    "train_binarized": [_source("""
        def train_binarized(model, train, epochs, seed):
            def clip(net, iteration):
                with torch.no_grad():
                    for m in net.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
            history = pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, batch_size=100,
                                   schedule="cosine", progress=False, callbacks=[clip])
            model.eval()
            return history.loss
    """), _source("""
        import numpy as np

        def train_binarized(model, train, epochs, seed):
            rng = np.random.default_rng(seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
            losses = []
            for _ in range(epochs):
                model.train()
                order = torch.from_numpy(rng.permutation(len(train.labels)))
                total = []
                for idx in order.split(128):
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(train.images[idx]), train.labels[idx])
                    loss.backward()
                    optimizer.step()
                    for p in model.parameters():
                        if p.dim() == 2:
                            p.data.clamp_(-1.0, 1.0)
                    total.append(loss.item())
                losses.append(float(np.mean(total)))
            model.eval()
            return losses
    """)],
}
"""Two correct answers per graded function, written differently."""

KIT_BASED = {
    "quantize_affine": _source("""
        def quantize_affine(x, bits):
            return pk.quant.quantize_affine(x, bits)
    """),
    "BinaryLinear": _source("""
        class BinaryLinear(pk.quant.BinaryLinear):
            pass
    """),
    "BinarizedMLP": _source("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.net = pk.quant.binarized_mlp(in_features, (hidden, hidden), num_classes,
                                                  binarize_activations=binary_activations)

            def forward(self, x):
                return self.net(x)
    """),
    "train_binarized": _source("""
        def train_binarized(model, train, epochs, seed):
            history = pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False,
                                   callbacks=[pk.quant.clip_latent_weights])
            model.eval()
            return history.loss
    """),
}
"""Answers that call the kit's versions: they refuse while grading (status kit-refused)."""
