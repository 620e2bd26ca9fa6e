"""What compression buys: parameters, MACs, bytes, latency and energy.

Pruned models (``torch.nn.utils.prune``) are measured through their effective
weights (``weight_orig * weight_mask``), so ``nonzero=True`` counts what is
left after pruning.

Example:
    >>> import torch, pruning_kit as pk
    >>> model = pk.models.lenet_300_100()
    >>> pk.metrics.count_params(model), pk.metrics.macs(model, torch.zeros(1, 1, 28, 28))
    (266610, 266200)
"""

from __future__ import annotations

import random
import statistics
import time

import torch
from torch import nn

from .train import num_threads
from ._checks import InvalidParameterError, check_choice, check_model, check_int

__all__ = ["count_params", "macs", "size_bytes", "latency_ms", "compression_ratio",
           "ENERGY_PJ_45NM", "energy_pj", "CLOCKS"]

# Horowitz, "Computing's energy problem", ISSCC 2014: 45 nm CMOS, picojoules per operation.
ENERGY_PJ_45NM = {
    "32-bit int add": 0.1,
    "32-bit float add": 0.9,
    "32-bit register file": 1.0,
    "32-bit int mult": 3.1,
    "32-bit float mult": 3.7,
    "32-bit SRAM cache": 5.0,
    "32-bit DRAM": 640.0,
}


def _effective_tensors(model: nn.Module):
    """Yield every parameter tensor as the forward pass sees it (masks applied)."""
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name.endswith("_orig") and hasattr(module, name[:-5] + "_mask"):
                yield getattr(module, name[:-5])
            else:
                yield param


def count_params(model: nn.Module, *, nonzero: bool = False) -> int:
    """Number of parameters, or of nonzero ones (after pruning masks).

    Example:
        >>> import torch.nn.utils.prune as tprune
        >>> layer = nn.Linear(10, 10)
        >>> _ = tprune.l1_unstructured(layer, "weight", amount=0.3)
        >>> count_params(layer), count_params(layer, nonzero=True)
        (110, 80)
    """
    check_model(model)
    with torch.no_grad():
        if nonzero:
            return int(sum(int(torch.count_nonzero(t)) for t in _effective_tensors(model)))
        return int(sum(t.numel() for t in _effective_tensors(model)))


def macs(model: nn.Module, example_input: torch.Tensor, *, nonzero: bool = False) -> int:
    """Multiply-accumulates of one forward pass per example, over Linear and conv layers.

    With ``nonzero=True`` only weights that are not zero count, which is what an
    ideal sparse kernel would do; dense kernels do the full count.

    Args:
        model: the network.
        example_input: a batch the model accepts; the count is per example.
        nonzero: count only nonzero weights.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1)
        >>> macs(conv, torch.zeros(1, 3, 16, 16)) == 8 * 16 * 16 * 3 * 3 * 3
        True
    """
    check_model(model)
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise InvalidParameterError("example_input must be a batched tensor (N x ...), got "
                                    f"{getattr(example_input, 'shape', type(example_input).__name__)}")
    total = [0]

    def weight_count(module):
        w = module.weight
        return int(torch.count_nonzero(w)) if nonzero else w.numel()

    def hook(module, inputs, output):
        batch = output.shape[0]
        if isinstance(module, nn.Linear):
            positions = output.numel() // (batch * module.out_features)
            total[0] += positions * weight_count(module)
        elif isinstance(module, nn.Conv2d):
            total[0] += output.shape[2] * output.shape[3] * weight_count(module)
        elif isinstance(module, nn.ConvTranspose2d):
            x = inputs[0]
            total[0] += x.shape[2] * x.shape[3] * weight_count(module)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0]


def size_bytes(model: nn.Module, *, sparse: bool = False, bits: int = 32,
               index_bits: int = 32) -> int:
    """Storage estimate: dense, or compressed-sparse-row for pruned weight matrices.

    Dense: every parameter at ``bits``. Sparse: for each weight with zeros, the
    nonzero values at ``bits`` plus one column index (``index_bits``) per value
    and one row pointer (32 bits) per output row; other tensors stay dense. A
    layer is stored dense when that is smaller.

    Example:
        >>> layer = nn.Linear(100, 10, bias=False)
        >>> size_bytes(layer)
        4000
        >>> with torch.no_grad():
        ...     layer.weight[:, 10:] = 0
        >>> size_bytes(layer, sparse=True)   # 100 values + 100 indices + 11 row pointers
        844
    """
    check_model(model)
    check_int("bits", bits, low=1, high=64)
    check_int("index_bits", index_bits, low=1, high=64)
    total_bits = 0
    with torch.no_grad():
        for t in _effective_tensors(model):
            dense = t.numel() * bits
            if sparse and t.dim() >= 2:
                rows = t.shape[0]
                nnz = int(torch.count_nonzero(t))
                total_bits += min(dense, nnz * (bits + index_bits) + (rows + 1) * 32)
            else:
                total_bits += dense
    return -(-total_bits // 8)


def compression_ratio(sparsity: float) -> float:
    """Dense over kept weight count: 75% pruned is 4x, 90% is 10x.

    Example:
        >>> compression_ratio(0.75)
        4.0
    """
    if not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise InvalidParameterError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return 1.0 / (1.0 - sparsity)


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
"""The clocks :func:`latency_ms` can time with: wall-clock time, or the calling thread's CPU time."""


def _time_once(model, example_input, clock=time.perf_counter) -> float:
    start = clock()
    model(example_input)
    return (clock() - start) * 1e3


def latency_ms(model, example_input: torch.Tensor, *, repeats: int = 30, warmup: int = 3,
               threads: int | None = 1, clock: str = "wall"):
    """Median forward-pass time in milliseconds, single-threaded by default.

    Pass a dict ``{name: model}`` to compare models fairly in one run: they are
    timed in rounds, each model once per round, so that noise from other
    processes hits all of them alike; the result is then ``{name: median ms}``.
    The order within a round is shuffled (with a fixed seed): on a busy machine
    the scheduler's time slices can otherwise fall into step with a fixed order
    and land on the same model every round, making it look several times slower.

    Args:
        model: a module, or a dict of name -> module.
        example_input: the batch to time.
        repeats: timed runs per model (median reported).
        warmup: untimed runs per model first.
        threads: PyTorch threads while timing (1 by default: laptops with
            another busy process time far more steadily on one thread).
        clock: ``"wall"`` (elapsed time) or ``"cpu"``: the CPU time of the
            calling thread, which leaves out the time the process waits while
            other programs hold the cores. On a busy machine the wall clock of a
            1-2 ms call can jump by whole scheduler time slices (4 ms and more);
            the CPU time stays steady, and on an idle machine it equals the
            wall time when all the work runs on the calling thread (PyTorch with
            ``threads=1``, an ONNX Runtime session with one intra-op thread).
            Needs ``threads=1``.

    Example:
        >>> ms = latency_ms({"small": nn.Linear(8, 8), "big": nn.Linear(8, 2048)},
        ...                 torch.zeros(64, 8), repeats=5)
        >>> sorted(ms) == ["big", "small"] and all(v > 0 for v in ms.values())
        True
        >>> latency_ms(nn.Linear(8, 8), torch.zeros(64, 8), repeats=5, clock="cpu") >= 0
        True
    """
    check_choice("clock", clock, tuple(CLOCKS))
    if clock == "cpu" and threads != 1:
        raise InvalidParameterError(f"clock='cpu' counts only the calling thread's time, so it needs "
                                    f"threads=1, got threads={threads!r}")
    models = model if isinstance(model, dict) else {"model": model}
    if not models:
        raise InvalidParameterError("model must be a module or a non-empty dict of modules")
    for m in models.values():
        check_model(m)
    check_int("repeats", repeats, low=1)
    check_int("warmup", warmup, low=0)
    modes = {k: m.training for k, m in models.items()}
    times = {k: [] for k in models}
    try:
        with num_threads(threads), torch.inference_mode():
            for m in models.values():
                m.eval()
            for _ in range(warmup):
                for m in models.values():
                    m(example_input)
            order = list(models)
            shuffle = random.Random(0).shuffle
            for _ in range(repeats):
                shuffle(order)
                for k in order:
                    times[k].append(_time_once(models[k], example_input, CLOCKS[clock]))
    finally:
        for k, m in models.items():
            m.train(modes[k])
    medians = {k: statistics.median(v) for k, v in times.items()}
    return medians if isinstance(model, dict) else medians["model"]


def energy_pj(operations: dict) -> float:
    """Energy estimate in picojoules from counts of the 45 nm operations.

    Example:
        >>> energy_pj({"32-bit DRAM": 1}) / energy_pj({"32-bit int add": 1})
        6400.0
    """
    unknown = set(operations) - set(ENERGY_PJ_45NM)
    if unknown:
        raise InvalidParameterError(f"unknown operations {sorted(unknown)}; known: {list(ENERGY_PJ_45NM)}")
    return float(sum(ENERGY_PJ_45NM[k] * n for k, n in operations.items()))
