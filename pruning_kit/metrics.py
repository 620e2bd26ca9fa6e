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

import math
import random
import statistics
import time

import torch
from torch import nn

from .train import num_threads
from ._checks import InvalidParameterError, check_choice, check_model, check_int

__all__ = ["count_params", "macs", "size_bytes", "sparse_entries", "latency_ms",
           "compression_ratio", "ENERGY_PJ_45NM", "energy_pj", "CLOCKS"]

# Picojoules per 32-bit operation on a 45 nm CMOS process, as Han et al. tabulate them
# ("Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015, Fig. 1;
# the same table reappears in their later papers). They adapted the figures of M. Horowitz,
# "Computing's energy problem (and what we can do about it)", ISSCC 2014, to 32-bit words:
# Horowitz lists 64-bit memory accesses (an 8 kB SRAM read of 64 bits about 10 pJ, a 64-bit DRAM
# access 1.3-2.6 nJ), so the SRAM and DRAM rows here are not his own numbers.
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
               index_bits: int = 32, relative: bool = False) -> int:
    """Storage estimate: dense, or a sparse format for pruned weight matrices.

    Dense: every parameter at ``bits``. Sparse (``sparse=True``), for each
    weight with zeros, viewed as ``rows x columns`` (a conv's columns are
    ``in x kh x kw``); other tensors stay dense, and a layer is stored dense
    when that is smaller:

    - ``relative=False``, compressed sparse row: the nonzero values at ``bits``,
      one column index of ``index_bits`` per value and one 32-bit row pointer
      per row (plus one). ``index_bits`` must address every column:
      ``2**index_bits >= columns``, else the format is impossible and an error
      says so (8 bits reach 256 columns, LeNet-300-100's fc1 has 784).
    - ``relative=True``, Deep Compression's relative indices (Han et al. 2016,
      §2 and Fig. 2): the weights are read row-major as one sequence and each
      stored entry keeps its distance to the previous one in ``index_bits``
      bits (at most ``2**index_bits - 1``); where kept weights lie further
      apart, a *filler zero* is stored in between, a zero weight that costs a
      value and an index like any other entry. No row pointers are needed.
      :func:`sparse_entries` counts the entries and fillers;
      :func:`pruning_kit.quant.relative_indices` writes the index stream.

    Args:
        model: the network (pruning masks are applied).
        sparse: store pruned weight matrices sparsely.
        bits: bits per stored value.
        index_bits: bits per column index (``relative=False``) or per gap
            (``relative=True``).
        relative: relative indices with filler zeros instead of column indices.

    Returns:
        bytes, rounded up.

    Example:
        >>> layer = nn.Linear(100, 10, bias=False)
        >>> size_bytes(layer)
        4000
        >>> with torch.no_grad():
        ...     layer.weight[:, 10:] = 0
        >>> size_bytes(layer, sparse=True)   # 100 values + 100 indices + 11 row pointers
        844
        >>> size_bytes(layer, sparse=True, index_bits=4, relative=True)   # (100 + 54 fillers) x 36 bits
        693
        >>> size_bytes(layer, sparse=True, index_bits=4)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: index_bits=4 cannot address the 100 columns of a (10, 100) weight: absolute column indices need 7 bits; pass relative=True to store gaps between kept weights with filler zeros (Deep Compression)
    """
    check_model(model)
    check_int("bits", bits, low=1, high=64)
    check_int("index_bits", index_bits, low=1, high=64)
    total_bits = 0
    with torch.no_grad():
        for t in _effective_tensors(model):
            dense = t.numel() * bits
            if not sparse or t.dim() < 2 or bool((t != 0).all()):
                total_bits += dense
            elif relative:
                entries, _ = sparse_entries(t, index_bits)
                total_bits += min(dense, entries * (bits + index_bits))
            else:
                rows, columns = t.shape[0], t[0].numel()
                needed = max(1, math.ceil(math.log2(columns)))
                if index_bits < needed:
                    raise InvalidParameterError(
                        f"index_bits={index_bits} cannot address the {columns} columns of a "
                        f"{tuple(t.shape)} weight: absolute column indices need {needed} bits; pass "
                        "relative=True to store gaps between kept weights with filler zeros "
                        "(Deep Compression)")
                nnz = int(torch.count_nonzero(t))
                total_bits += min(dense, nnz * (bits + index_bits) + (rows + 1) * 32)
    return -(-total_bits // 8)


def sparse_entries(weight: torch.Tensor, index_bits: int) -> tuple[int, int]:
    """Entries stored with ``index_bits``-bit relative indices, and how many are filler zeros.

    Deep Compression (Han et al. 2016, §2, Fig. 2) reads the weight row-major
    and stores, for each kept weight, its distance to the previous stored entry
    (the first one counted from position -1). A distance is at most
    ``2**index_bits - 1``; a longer gap gets a filler zero (a stored zero
    weight) every ``2**index_bits - 1`` positions. The gaps are those of
    :func:`pruning_kit.quant.relative_indices`, whose ``0`` symbols mark the
    fillers.

    Args:
        weight: any tensor; its nonzero entries are the kept weights.
        index_bits: bits per relative index, an int in [1, 32].

    Returns:
        ``(entries, fillers)``: stored entries (kept weights plus fillers) and fillers.

    Example:
        >>> w = torch.tensor([0., 2., 0., 0., 0., 0., 0., 0., 0., 0., 3., 4.])
        >>> sparse_entries(w, index_bits=3)   # gaps 2, 9 and 1; 9 > 7 needs one filler
        (4, 1)
    """
    from .quant.deep_compression import relative_indices

    symbols = relative_indices(weight.detach() != 0, index_bits)
    fillers = int((symbols == 0).sum())
    return symbols.numel(), fillers


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
