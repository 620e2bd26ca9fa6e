"""The binarized assignment's parts 2 and 3, in-process: the integer-only layer and the binarized network.

Like ``test_grading.py`` (which covers part 1 and runs every function's reference
solution), the visible and hidden test cells of ``solutions/binarized/binarized.ipynb``
run here against alternative correct implementations (``LAB_ALTERNATIVES``: full
marks) and the mistakes students make (``LAB_MISTAKES``: the hidden tests fail,
naming the mistake), then the guarantees of part 3: an integer path that runs in
floating point is caught, the kit's binarized layers and clipping earn nothing, and
the training tests are deterministic.

Training costs (one thread, idle 2-core machine): a hidden test of part 3 trains
``BinarizedMLP(784, 256, 10)`` for 10 epochs, about 3 s.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from pruning_kit.course.checks import binarized as checks
from pruning_kit.course.checks import core

import test_grading as grading  # noqa: E402 - tests/ is on sys.path under pytest

REPO = Path(__file__).resolve().parents[1]
LAB = ("quantize_bias", "integer_linear", "quantized_linear", "BinarizedMLP", "train_binarized")


# ---------------------------------------------------------------------------
# Alternative correct implementations earn every point

LAB_ALTERNATIVES = {
    "quantize_bias": {
        "float32 division": """
            def quantize_bias(bias, input_scale, weight_scale):
                return (bias.float() / input_scale / weight_scale).round().int()
        """,
        "numpy": """
            import numpy as np

            def quantize_bias(bias, input_scale, weight_scale):
                codes = np.rint(bias.numpy().astype(np.float64) / (input_scale * weight_scale))
                return torch.from_numpy(codes.astype(np.int32))
        """,
        "torch's own quantizer, qint32": """
            import warnings

            def quantize_bias(bias, input_scale, weight_scale):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    q = torch.quantize_per_tensor(bias.float(), input_scale * weight_scale, 0, torch.qint32)
                return q.int_repr()
        """,
    },
    "integer_linear": {
        "F.linear on int32, the zero point folded into the bias (Jacob et al.)": """
            def integer_linear(x_q, x_zero_point, w_q, bias_q):
                w = w_q.to(torch.int32)
                folded = bias_q.to(torch.int32) - x_zero_point * w.sum(dim=1, dtype=torch.int32)
                return F.linear(x_q.to(torch.int32), w, folded)
        """,
        "einsum in int64, cast at the end": """
            def integer_linear(x_q, x_zero_point, w_q, bias_q):
                x = x_q.long() - x_zero_point
                return (torch.einsum("nj,ij->ni", x, w_q.long()) + bias_q.long()).int()
        """,
        "numpy int64": """
            import numpy as np

            def integer_linear(x_q, x_zero_point, w_q, bias_q):
                x = x_q.numpy().astype(np.int64) - x_zero_point
                acc = x @ w_q.numpy().astype(np.int64).T + bias_q.numpy()
                return torch.from_numpy(acc.astype(np.int32))
        """,
    },
    "quantized_linear": {
        "float32 multiplier, .byte()": """
            def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
                acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
                m = torch.tensor(x_scale * w_scale / out_scale, dtype=torch.float32)
                return torch.clamp(torch.round(acc.float() * m) + out_zero_point, 0, 255).byte()
        """,
        "its own int64 accumulator, scales multiplied one by one": """
            def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
                acc = (x_q.long() - x_zero_point) @ w_q.long().T + bias_q.long()
                y = torch.round(acc.double() * x_scale * w_scale / out_scale).long() + out_zero_point
                return y.clamp(0, 255).to(torch.uint8)
        """,
        "numpy": """
            import numpy as np

            def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
                acc = (x_q.numpy().astype(np.int32) - x_zero_point) @ w_q.numpy().astype(np.int32).T
                acc = acc + bias_q.numpy()
                y = np.clip(np.rint(acc * (x_scale * w_scale / out_scale)) + out_zero_point, 0, 255)
                return torch.from_numpy(y.astype(np.uint8))
        """,
    },
    "BinarizedMLP": {
        "nn.Sequential, a nested sign module, biases kept": """
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
        """,
        "ModuleLists and a loop": """
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
        """,
    },
    "train_binarized": {
        "pk.train.fit with a clipping callback": """
            def train_binarized(model, train, epochs, seed):
                def clip(net, iteration):
                    with torch.no_grad():
                        for m in net.modules():
                            if type(m).__name__ == "BinaryLinear":
                                m.weight.clamp_(-1, 1)
                history = pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, batch_size=100,
                                       schedule="cosine", progress=False, callbacks=[clip])
                return history.loss
        """,
        "Adam 5e-3, numpy shuffling, clipping every 2-D parameter": """
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
        """,
    },
}


TRAINS = ("BinarizedMLP", "train_binarized")  # their hidden tests train a network (seconds each)


@pytest.mark.parametrize("name,label", [
    pytest.param(n, label, marks=[pytest.mark.slow] if n in TRAINS else [])
    for n, alts in LAB_ALTERNATIVES.items() for label in alts])
def test_other_correct_implementations_get_full_marks(name, label):
    grading.assert_passes(name, LAB_ALTERNATIVES[name][label])


# ---------------------------------------------------------------------------
# Conceptual errors fail, with a message that names the mistake

LAB_MISTAKES = {
    ("quantize_bias", "the weight scale alone"): ("""
        def quantize_bias(bias, input_scale, weight_scale):
            return torch.round(bias / weight_scale).to(torch.int32)
    """, ["the bias scale is input_scale * weight_scale"]),
    ("quantize_bias", "truncation"): ("""
        def quantize_bias(bias, input_scale, weight_scale):
            return (bias / (input_scale * weight_scale)).to(torch.int32)
    """, ["do not truncate"]),
    ("quantize_bias", "int64 codes"): ("""
        def quantize_bias(bias, input_scale, weight_scale):
            return torch.round(bias / (input_scale * weight_scale)).long()
    """, ["is torch.int64, not torch.int32"]),
    ("quantize_bias", "multiplied by the scale"): ("""
        def quantize_bias(bias, input_scale, weight_scale):
            return torch.round(bias * input_scale * weight_scale).to(torch.int32)
    """, ["divide by the scale, do not multiply"]),
    ("integer_linear", "no input zero point"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            return x_q.int() @ w_q.int().t() + bias_q
    """, ["subtract the input zero point"]),
    ("integer_linear", "uint8 arithmetic wraps around"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            return (x_q - x_zero_point).int() @ w_q.int().t() + bias_q
    """, ["wrapped around in uint8"]),
    ("integer_linear", "a float32 matrix product"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            x = x_q.float() - x_zero_point
            return (x @ w_q.float().t() + bias_q.float()).round().int()
    """, ["A matrix product (matmul) ran in torch.float32"]),
    ("integer_linear", "a float64 F.linear"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            return F.linear(x_q.double() - x_zero_point, w_q.double(), bias_q.double()).int()
    """, ["ran in torch.float64"]),
    ("integer_linear", "float32 in numpy"): ("""
        import numpy as np

        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            x = x_q.numpy().astype(np.float32) - x_zero_point
            acc = x @ w_q.numpy().astype(np.float32).T + bias_q.numpy().astype(np.float32)
            return torch.from_numpy(np.rint(acc).astype(np.int32))
    """, ["float32 cannot hold every integer above 2**24"]),
    ("integer_linear", "no bias"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            return (x_q.int() - x_zero_point) @ w_q.int().t()
    """, ["add bias_q"]),
    ("integer_linear", "int64 accumulator returned"): ("""
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            return (x_q.long() - x_zero_point) @ w_q.long().t() + bias_q
    """, ["is torch.int64, not torch.int32"]),
    ("quantized_linear", "no output zero point"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            return torch.round(acc * (x_scale * w_scale / out_scale)).clamp(0, 255).to(torch.uint8)
    """, ["add out_zero_point"]),
    ("quantized_linear", "no saturation: uint8 wraps around"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            return (torch.round(acc * (x_scale * w_scale / out_scale)) + out_zero_point).long().to(torch.uint8)
    """, ["clamp to [0, 255] before .to(torch.uint8)"]),
    ("quantized_linear", "truncation"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            return (torch.floor(acc * (x_scale * w_scale / out_scale)) + out_zero_point).clamp(0, 255).to(torch.uint8)
    """, ["do not truncate"]),
    ("quantized_linear", "the inverse multiplier"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            return (torch.round(acc * (out_scale / (x_scale * w_scale))) + out_zero_point).clamp(0, 255).to(torch.uint8)
    """, ["not its inverse"]),
    ("quantized_linear", "the float path: dequantize, F.linear, quantize"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            x = x_scale * (x_q.float() - x_zero_point)
            y = F.linear(x, w_scale * w_q.float(), x_scale * w_scale * bias_q.float())
            return (torch.round(y / out_scale) + out_zero_point).clamp(0, 255).to(torch.uint8)
    """, ["ran in torch.float32", "integer-only layer"]),
    ("quantized_linear", "int32 output"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = integer_linear(x_q, x_zero_point, w_q, bias_q)
            return (torch.round(acc * (x_scale * w_scale / out_scale)) + out_zero_point).clamp(0, 255).int()
    """, ["is torch.int32, not torch.uint8"]),
    ("quantized_linear", "its own accumulator without the input zero point"): ("""
        def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
            acc = x_q.int() @ w_q.int().t() + bias_q
            return (torch.round(acc * (x_scale * w_scale / out_scale)) + out_zero_point).clamp(0, 255).to(torch.uint8)
    """, ["subtract x_zero_point"]),
    ("BinarizedMLP", "float activations always"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
                self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
                self.fc3, self.bn3 = BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes)

            def forward(self, x):
                x = F.hardtanh(self.bn1(self.fc1(x.flatten(1))))
                x = F.hardtanh(self.bn2(self.fc2(x)))
                return self.bn3(self.fc3(x))
    """, ["not only +-1"]),
    ("BinarizedMLP", "signs without the straight-through estimator"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
                self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
                self.fc3, self.bn3 = BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes)
                self.act = binarize if binary_activations else F.hardtanh

            def forward(self, x):
                x = self.act(self.bn1(self.fc1(x.flatten(1))))
                x = self.act(self.bn2(self.fc2(x)))
                return self.bn3(self.fc3(x))
    """, ["not from SignSTE"]),
    ("BinarizedMLP", "no batch norm"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1 = BinaryLinear(in_features, hidden)
                self.fc2 = BinaryLinear(hidden, hidden)
                self.fc3 = BinaryLinear(hidden, num_classes)
                self.binary = binary_activations

            def forward(self, x):
                act = SignSTE.apply if self.binary else F.hardtanh
                return self.fc3(act(self.fc2(act(self.fc1(x.flatten(1))))))
    """, ["not followed by a BatchNorm1d"]),
    ("BinarizedMLP", "a float output layer"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
                self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
                self.fc3, self.bn3 = nn.Linear(hidden, num_classes), nn.BatchNorm1d(num_classes)
                self.binary = binary_activations

            def forward(self, x):
                act = SignSTE.apply if self.binary else F.hardtanh
                x = act(self.bn1(self.fc1(x.flatten(1))))
                return self.bn3(self.fc3(act(self.bn2(self.fc2(x)))))
    """, ["is an nn.Linear with float weights"]),
    ("BinarizedMLP", "binarized pixels"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
                self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
                self.fc3, self.bn3 = BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes)
                self.binary = binary_activations

            def forward(self, x):
                act = SignSTE.apply if self.binary else F.hardtanh
                x = act(self.bn1(self.fc1(act(x.flatten(1)))))
                return self.bn3(self.fc3(act(self.bn2(self.fc2(x)))))
    """, ["does not see the real input"]),
    ("BinarizedMLP", "the flag ignored"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, hidden), nn.BatchNorm1d(hidden)
                self.fc2, self.bn2 = BinaryLinear(hidden, hidden), nn.BatchNorm1d(hidden)
                self.fc3, self.bn3 = BinaryLinear(hidden, num_classes), nn.BatchNorm1d(num_classes)

            def forward(self, x):
                x = SignSTE.apply(self.bn1(self.fc1(x.flatten(1))))
                return self.bn3(self.fc3(SignSTE.apply(self.bn2(self.fc2(x)))))
    """, ["is not hardtanh of real values"]),
    ("BinarizedMLP", "a hidden width fixed at 256"): ("""
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.fc1, self.bn1 = BinaryLinear(in_features, 256), nn.BatchNorm1d(256)
                self.fc2, self.bn2 = BinaryLinear(256, 256), nn.BatchNorm1d(256)
                self.fc3, self.bn3 = BinaryLinear(256, num_classes), nn.BatchNorm1d(num_classes)
                self.binary = binary_activations

            def forward(self, x):
                act = SignSTE.apply if self.binary else F.hardtanh
                x = act(self.bn1(self.fc1(x.flatten(1))))
                return self.bn3(self.fc3(act(self.bn2(self.fc2(x)))))
    """, ["has a weight of shape (256, 784), not (32, 784)"]),
    ("train_binarized", "no clipping"): ("""
        def train_binarized(model, train, epochs, seed):
            history = pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False)
            return history.loss
    """, ["before step 2", "after each optimizer step"]),
    ("train_binarized", "clipped once per epoch"): ("""
        def train_binarized(model, train, epochs, seed):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            losses = []
            for _ in range(epochs):
                model.train()
                total = 0.0
                for x, y in pk.data.loader(train, batch_size=100, shuffle=True, seed=seed):
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(y)
                with torch.no_grad():
                    for m in model.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
                losses.append(total / len(train))
            return losses
    """, ["before step 2"]),
    ("train_binarized", "clipped before each step, not after"): ("""
        def train_binarized(model, train, epochs, seed):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            losses = []
            for _ in range(epochs):
                model.train()
                total = 0.0
                for x, y in pk.data.loader(train, batch_size=100, shuffle=True, seed=seed):
                    with torch.no_grad():
                        for m in model.modules():
                            if isinstance(m, BinaryLinear):
                                m.weight.clamp_(-1, 1)
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(y)
                losses.append(total / len(train))
            return losses
    """, ["After training, a latent weight is", "the last one too"]),
    ("train_binarized", "clips the batch-norm scales too"): ("""
        def train_binarized(model, train, epochs, seed):
            def clip(net, iteration):
                with torch.no_grad():
                    for p in net.parameters():
                        p.clamp_(-1, 1)
            return pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False,
                                callbacks=[clip]).loss
    """, ["A BatchNorm1d weight was clipped too"]),
    ("train_binarized", "trains a copy"): ("""
        import copy

        def train_binarized(model, train, epochs, seed):
            twin = copy.deepcopy(model)
            def clip(net, iteration):
                with torch.no_grad():
                    for m in net.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
            return pk.train.fit(twin, train, epochs=epochs, lr=1e-2, seed=seed, progress=False,
                                callbacks=[clip]).loss
    """, ["A latent weight is 3 before step"]),
    ("train_binarized", "returns nothing"): ("""
        def train_binarized(model, train, epochs, seed):
            def clip(net, iteration):
                with torch.no_grad():
                    for m in net.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
            pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False, callbacks=[clip])
    """, ["mean losses, not NoneType"]),
    ("train_binarized", "plain gradient descent by hand"): ("""
        def train_binarized(model, train, epochs, seed):
            losses = []
            for _ in range(epochs):
                model.train()
                loss = F.cross_entropy(model(train.images), train.labels)
                model.zero_grad()
                loss.backward()
                with torch.no_grad():
                    for p in model.parameters():
                        p -= 0.01 * p.grad
                    for m in model.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
                losses.append(loss.item())
            return losses
    """, ["made no optimizer step", "torch.optim"]),
}


@pytest.mark.parametrize("name,mistake", list(LAB_MISTAKES))
def test_conceptual_errors_lose_the_points(name, mistake):
    implementation, hints = LAB_MISTAKES[(name, mistake)]
    grading.assert_hidden_fails(name, implementation, *hints)


@pytest.mark.slow
def test_a_loop_that_clips_but_learns_too_little_fails_on_accuracy():
    slow_sgd = """
        def train_binarized(model, train, epochs, seed):
            def clip(net, iteration):
                with torch.no_grad():
                    for m in net.modules():
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
            return pk.train.fit(model, train, epochs=epochs, lr=1e-4, optimizer="sgd", momentum=0.0,
                                seed=seed, progress=False, callbacks=[clip]).loss
    """
    results = grading.run_tests("train_binarized", slow_sgd)
    assert results["visible"] is None, results
    assert re.match(r"Test accuracy is \d+\.\d%, below 90%: ", results["hidden"]), results


def test_the_float_path_is_caught_even_when_its_values_are_exact():
    # float64 holds every accumulator of the tests exactly: only the watch on matrix products
    # tells this implementation from an integer one
    float64_path = """
        def integer_linear(x_q, x_zero_point, w_q, bias_q):
            x = x_q.to(torch.float64) - x_zero_point
            return torch.round(x @ w_q.to(torch.float64).T + bias_q).to(torch.int32)
    """
    results = grading.run_tests("integer_linear", float64_path)
    assert "A matrix product (matmul) ran in torch.float64: " in results["visible"], results
    assert results["hidden"], results


# ---------------------------------------------------------------------------
# The kit's versions earn nothing while a function of part 3 is graded

KIT_BASED = {
    "BinarizedMLP": """
        class BinarizedMLP(nn.Module):
            def __init__(self, in_features=784, hidden=256, num_classes=10, binary_activations=True):
                super().__init__()
                self.net = pk.quant.binarized_mlp(in_features, (hidden, hidden), num_classes,
                                                  binarize_activations=binary_activations)

            def forward(self, x):
                return self.net(x)
    """,
    "train_binarized": """
        def train_binarized(model, train, epochs, seed):
            return pk.train.fit(model, train, epochs=epochs, lr=1e-2, seed=seed, progress=False,
                                callbacks=[pk.quant.clip_latent_weights]).loss
    """,
}


@pytest.mark.parametrize("name", sorted(KIT_BASED))
def test_the_kits_binarized_network_and_clipping_earn_nothing(name):
    results = grading.run_tests(name, KIT_BASED[name])
    for kind in ("visible", "hidden"):
        assert re.search(rf"KitRefused: pk\.quant\.\w+ is off while {name} is graded",
                         results[kind] or ""), results
    assert core.SAFE.refusals is None


def test_the_kit_stays_usable_outside_the_tests():
    import pruning_kit as pk

    model = pk.quant.binarized_mlp(hidden=(8,))
    pk.quant.clip_latent_weights(model)
    assert pk.quant.SignSTE.apply(torch.tensor([0.5, -2.0])).tolist() == [1.0, -1.0]


# ---------------------------------------------------------------------------
# Same submission, same result; the caller's state untouched

def test_training_checks_are_deterministic_and_leave_the_random_state_alone():
    finals = []

    def recording(model, train, epochs, seed):
        # shuffles with the global generators, as many students do
        import numpy as np
        import random

        order = torch.randperm(len(train.labels))[torch.from_numpy(np.random.permutation(len(train.labels)))]
        order = order[random.sample(range(len(order)), len(order))]
        losses = checks.reference("train_binarized")(model, train, epochs, seed)
        finals.append([p.detach().clone() for p in model.parameters()] + [order])
        return losses

    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    for _ in range(2):
        checks.check_train_binarized(recording, hidden=16, train_size=200)
    after = torch.rand(3)
    assert torch.equal(before, after) and torch.get_num_threads() == threads
    assert all(torch.equal(a, b) for a, b in zip(*finals))


def test_the_hidden_tests_declare_a_time_limit_that_covers_training():
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads((REPO / "solutions" / "binarized" / "binarized.ipynb").read_text())["cells"]}
    for name in ("BinarizedMLP", "train_binarized"):
        head = cells[f"test_{name}_hidden"].split("### BEGIN HIDDEN TESTS")[0]
        assert re.search(r"^# grading time limit: 120 s$", head, re.M), head
    assert checks.TRAINING == {"hidden": 256, "epochs": 10, "seed": 0, "threshold": 0.90}
    parameters = cells["parameters"]
    assert "HIDDEN = 256" in parameters and "EPOCHS = 10" in parameters  # the student's run = the grader's


def test_written_answers_are_a_quarter_of_the_points_and_each_part_has_a_time():
    cells = json.loads((REPO / "solutions" / "binarized" / "binarized.ipynb").read_text())["cells"]
    graded = [c["metadata"]["nbgrader"] for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
    manual = sum(m["points"] for m in graded if m["solution"])
    total = sum(m["points"] for m in graded)
    assert 4 * manual >= total, (manual, total)
    intro = "".join(cells[0]["source"])
    for part in (1, 2, 3):
        assert re.search(rf"\| part {part}: about [\d½]+ hours? \|", intro), part


def test_layer_case_saturates_and_sets_zero_points():
    case = checks.layer_case(3, 8, 16, 6, out_margin=0.4)
    acc = checks._accumulator(case["x_q"], case["x_zero_point"], case["w_q"], case["bias_q"])
    m = case["x_scale"] * case["w_scale"] / case["out_scale"]
    levels = [m * a + case["out_zero_point"] for row in acc for a in row]
    assert min(levels) < 0 and max(levels) > 255  # both ends saturate
    assert checks.layer_case(1, 2, 3, 4, x_range=(0.0, 1.0))["x_zero_point"] == 0
    assert checks.layer_case(1, 2, 3, 4, x_range=(-2.0, -0.5))["x_zero_point"] == 255
    assert checks.layer_case(4, 5, 12, 4, out_zero=0)["out_zero_point"] == 0

