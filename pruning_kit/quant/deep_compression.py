"""Deep Compression (Han et al. 2016): prune, share weights, Huffman-code, and count the bytes.

Pruning leaves a few kept weights per layer; :func:`relative_indices` stores
their positions as short gaps (``index_bits`` each). Weight sharing
(``pk.quant.share_weights``) leaves a small codebook and a ``bits``-bit index per
kept weight, and Huffman coding (``pk.quant.huffman_code``) stores both
streams in fewer bits still. :func:`compressed_size` counts the bytes of a
model stored that way, and :func:`deep_compress` chains prune -> retrain ->
share -> fine-tune -> Huffman and reports bytes, ratio and accuracy per stage.

Example:
    >>> import torch
    >>> symbols = relative_indices(torch.tensor([1, 0, 0, 1, 1]), index_bits=2)
    >>> symbols, indices_from_relative(symbols, index_bits=2)
    (tensor([1, 3, 1]), tensor([0, 3, 4]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..train import Recipe, uses_recipe
from ..models import prunable
from .._checks import InvalidParameterError, check_fraction, check_int, check_model, check_tensor
from .huffman import huffman_code
from .parametrization import find_parametrization
from .sharing import SharedWeight, check_sharing_bits, share_weights

__all__ = ["relative_indices", "indices_from_relative", "compressed_size", "deep_compress"]


def _check_index_bits(index_bits) -> int:
    return check_int("index_bits", index_bits, low=1, high=32)


def relative_indices(mask: torch.Tensor, index_bits: int = 5) -> torch.Tensor:
    """Positions of the nonzeros of ``mask`` as gaps that fit in ``index_bits`` bits.

    The tensor is read in row-major order. Each kept entry stores the distance
    from the previous one (the first from position -1), a symbol in
    ``1 .. 2**index_bits - 1``; a gap too long for that is preceded by as many
    ``0`` symbols as needed, each meaning "skip ``2**index_bits - 1``
    positions, no weight here" (Deep Compression pads with a zero weight
    instead; an escape symbol stores the same thing without a fake weight).

    Args:
        mask: any tensor; its nonzero entries are the kept weights.
        index_bits: bits per symbol, an int in [1, 32].

    Returns:
        A 1-D int64 tensor of symbols; :func:`indices_from_relative` inverts it.

    Example:
        >>> mask = torch.tensor([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        >>> relative_indices(mask, index_bits=3)      # gaps 2, 9 (= 7 + 2), 1
        tensor([2, 0, 2, 1])
    """
    check_tensor("mask", mask)
    max_gap = 2 ** _check_index_bits(index_bits) - 1
    positions = torch.nonzero(mask.reshape(-1)).reshape(-1)
    if positions.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    gaps = torch.diff(positions, prepend=torch.tensor([-1]))
    fillers = (gaps - 1) // max_gap
    remainders = gaps - fillers * max_gap
    counts = fillers + 1
    symbols = torch.zeros(int(counts.sum()), dtype=torch.int64)
    symbols[torch.cumsum(counts, 0) - 1] = remainders
    return symbols


def indices_from_relative(symbols: torch.Tensor, index_bits: int = 5) -> torch.Tensor:
    """Flat positions back from :func:`relative_indices` symbols.

    Example:
        >>> indices_from_relative(torch.tensor([2, 0, 2, 1]), index_bits=3)
        tensor([ 1, 10, 11])
    """
    if not isinstance(symbols, torch.Tensor) or symbols.is_floating_point():
        raise InvalidParameterError("symbols must be an integer tensor from relative_indices")
    max_gap = 2 ** _check_index_bits(index_bits) - 1
    symbols = symbols.reshape(-1).to(torch.int64)
    if bool(((symbols < 0) | (symbols > max_gap)).any()):
        raise InvalidParameterError(
            f"symbols must lie in [0, {max_gap}] for index_bits={index_bits}")
    steps = torch.where(symbols == 0, torch.full_like(symbols, max_gap), symbols)
    return (torch.cumsum(steps, 0) - 1)[symbols != 0]


def _huffman_bits(symbols: torch.Tensor, alphabet_bits: int) -> int:
    if symbols.numel() == 0:
        return 0
    code = huffman_code(symbols)
    return code.encoded_bits + code.table_bits(symbol_bits=alphabet_bits)


def _layer_bits(layer, index_bits: int, huffman: bool) -> int:
    """Storage of one Linear/Conv2d weight: dense float32, sparse, or shared (+ Huffman)."""
    shared = find_parametrization(layer, SharedWeight)
    with torch.no_grad():
        if shared is not None:
            mask = shared.mask.reshape(-1) != 0
            centroids = layer.parametrizations.weight.original
            value_bits = max(1, math.ceil(math.log2(centroids.numel())))
            codes = shared.labels.reshape(-1)[mask]
            codebook = centroids.numel() * 32
            if huffman:
                values = _huffman_bits(codes, value_bits)
            else:
                values = codes.numel() * value_bits
        else:
            weight = layer.weight
            mask = weight.reshape(-1) != 0
            dense = weight.numel() * 32
            if bool(mask.all()):
                return dense
            codebook, values = 0, int(mask.sum()) * 32
        if bool(mask.all()):
            index = 0   # nothing pruned: positions are implicit
        else:
            symbols = relative_indices(mask, index_bits)
            index = (_huffman_bits(symbols, index_bits) if huffman
                     else symbols.numel() * index_bits)
        total = codebook + values + index
        return total if shared is not None else min(total, dense)


def compressed_size(model: nn.Module, *, index_bits: int = 5, huffman: bool = False) -> int:
    """Bytes to store ``model`` the Deep Compression way.

    Per Linear/Conv2d weight: a layer without zeros is stored dense (32 bits
    per weight); a layer with zeros stores its kept values and their
    :func:`relative_indices` (``index_bits`` each), or dense when that is
    smaller; a :func:`share_weights` layer stores ``ceil(log2(k))``-bit
    cluster indices plus a float32 codebook of ``k`` centroids. With
    ``huffman=True`` both the cluster indices and the index gaps are Huffman
    coded (counting the code table: one code length per symbol). Every other
    parameter (biases, batch norm) counts 32 bits.

    Args:
        model: a plain, pruned or shared network.
        index_bits: bits per relative index (5 for the fully connected
            layers of the paper, 8 for convolutions).
        huffman: Huffman-code the shared indices and the gaps.

    Returns:
        Size in bytes (an int).

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> compressed_size(model) == 4 * pk.metrics.count_params(model)
        True
        >>> compressed_size(share_weights(model, bits=4)) < compressed_size(model) / 7
        True
    """
    check_model(model)
    _check_index_bits(index_bits)
    parametrized = set()
    total = 0
    for _, layer in prunable(model):
        total += _layer_bits(layer, index_bits, huffman)
        parametrized.add(id(layer))
    for module in model.modules():
        if isinstance(module, torch.nn.utils.parametrize.ParametrizationList):
            continue
        for name, param in module.named_parameters(recurse=False):
            if id(module) in parametrized and name in ("weight", "weight_orig"):
                continue
            total += param.numel() * 32
    return -(-total // 8)


@uses_recipe(epochs="retrain_epochs")
def deep_compress(model: nn.Module, train, test, sparsity: float = 0.92, *, bits: int = 5,
                  index_bits: int = 5, prune_steps: int = 1, retrain_epochs: int = 8,
                  finetune_epochs: int = 3,
                  lr: float = 1e-3, finetune_lr: float = 1e-4, scope: str = "global",
                  seed: int = 0, progress: bool = False, return_model: bool = False,
                  recipe: Recipe | None = None):
    """Deep Compression (Han et al. 2016): prune, retrain, share weights, Huffman-code.

    1. ``dense``: the model as given (trained), 32 bits per parameter.
    2. ``pruned``: magnitude pruning to ``sparsity`` (``scope``) in
       ``prune_steps`` rounds, each retrained ``retrain_epochs`` with the masks
       fixed (``pk.prune.iterative``); stored as kept float32 values plus
       ``index_bits``-bit relative indices.
    3. ``shared``: each layer's kept weights clustered into ``2**bits``
       centroids (:func:`share_weights`), centroids fine-tuned
       ``finetune_epochs``; stored as ``bits``-bit indices + codebook.
    4. ``huffman``: the same model with cluster indices and index gaps
       Huffman-coded (lossless: same accuracy).

    Args:
        model: a trained network (left unchanged).
        train, test: data for retraining / evaluation.
        sparsity: fraction of weights pruned, in [0, 1).
        bits: bits per shared weight index, an int in [1, 16].
        index_bits: bits per relative index.
        prune_steps: prune-retrain rounds (1: prune once, then retrain).
        retrain_epochs, lr: retraining after each pruning round (Adam).
        finetune_epochs, finetune_lr: centroid fine-tuning (Adam).
        scope: ``"global"`` or ``"local"`` pruning.
        seed: seeds the shuffling of the retraining.
        progress: show progress bars.
        recipe: a :class:`pruning_kit.train.Recipe` for the retraining after pruning:
            the epochs, lr and seed it gives replace these defaults.
        return_model: also return the final (shared) model.

    Returns:
        A pandas DataFrame with one row per stage (``"dense"``, ``"pruned"``,
        ``"shared"``, ``"huffman"``) and columns ``stage``, ``bytes``,
        ``ratio`` (dense float32 bytes / bytes) and ``accuracy``; with
        ``return_model=True``, ``(report, model)``.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(64)
        >>> _ = pk.train.fit(model, train, epochs=3, progress=False)
        >>> report = deep_compress(model, train, test, sparsity=0.9, bits=4,
        ...                        retrain_epochs=1, finetune_epochs=1)
        >>> report.stage.tolist(), bool(report.ratio.is_monotonic_increasing)
        (['dense', 'pruned', 'shared', 'huffman'], True)
    """
    import pandas as pd

    from .. import prune
    from ..train import evaluate, fit

    check_model(model)
    check_fraction("sparsity", sparsity, high_open=True)
    bits = check_sharing_bits(bits)
    _check_index_bits(index_bits)
    check_int("retrain_epochs", retrain_epochs, low=0)
    check_int("finetune_epochs", finetune_epochs, low=0)
    if not prunable(model):
        raise InvalidParameterError("model has no nn.Linear / nn.Conv2d layer to compress")
    dense_bytes = sum(p.numel() for p in model.parameters()) * 4
    rows = [("dense", dense_bytes, evaluate(model, test))]

    pruned = prune.clone(model)
    prune.iterative(pruned, train, sparsity, steps=prune_steps, retrain_epochs=retrain_epochs,
                    scope=scope, lr=lr, seed=seed, progress=progress)
    prune.finalize(pruned)
    rows.append(("pruned", compressed_size(pruned, index_bits=index_bits),
                 evaluate(pruned, test)))

    shared = share_weights(pruned, bits)
    if finetune_epochs:
        fit(shared, train, epochs=finetune_epochs, lr=finetune_lr, seed=seed + 1,
            progress=progress)
    shared_accuracy = evaluate(shared, test)
    rows.append(("shared", compressed_size(shared, index_bits=index_bits), shared_accuracy))
    rows.append(("huffman", compressed_size(shared, index_bits=index_bits, huffman=True),
                 shared_accuracy))
    report = pd.DataFrame(rows, columns=["stage", "bytes", "accuracy"])
    report.insert(2, "ratio", dense_bytes / report["bytes"])
    return (report, shared.eval()) if return_model else report
