"""Weight sharing (Deep Compression, Han et al. 2016): a few shared values per layer.

- :func:`kmeans_share` clusters the values of one weight tensor with 1-D
  k-means, starting from evenly spaced centroids (linear initialisation).
- :func:`share_weights` gives a model whose layers compute with their shared
  centroids through a :class:`SharedWeight` parametrization, so training
  fine-tunes the centroids with the gradients summed per cluster;
  :func:`unshare_weights` turns them back into plain weight tensors.

Example:
    >>> import torch
    >>> centroids, labels = kmeans_share(torch.tensor([-1.0, -0.8, 0.9, 1.1]), bits=1)
    >>> centroids, labels
    (tensor([-0.9000,  1.0000]), tensor([0, 0, 1, 1]))
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import prunable
from .._checks import InvalidParameterError, check_int, check_model, check_tensor
from .parametrization import baked_copy

__all__ = ["kmeans_share", "share_weights", "unshare_weights", "SharedWeight"]



def check_sharing_bits(bits) -> int:
    """Check the index width of weight sharing: an int in [1, 16] (``2**bits`` clusters).

    The argument check of :func:`kmeans_share`, :func:`share_weights` and of
    ``pk.quant.deep_compress``, which checks before it spends time training.

    Example:
        >>> check_sharing_bits(5)
        5
        >>> check_sharing_bits(17)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: bits must be an int in [1, 16] (for weight sharing), got 17
    """
    return check_int("bits", bits, low=1, high=16, hint="for weight sharing")


def kmeans_share(weight: torch.Tensor, bits: int = 5, *, n_clusters: int | None = None,
                 iterations: int = 50, ignore_zeros: bool = True):
    """Cluster the values of one weight tensor with 1-D k-means (Deep Compression).

    Centroids start evenly spaced between the smallest and largest weight
    (linear initialisation, which Han et al. found best: it keeps centroids
    for the rare large weights that matter most), then Lloyd iterations
    assign every weight to its nearest centroid and move each centroid to the
    mean of its weights, until no assignment changes.

    Args:
        weight: a non-empty floating-point tensor.
        bits: index width; ``2**bits`` clusters (an int in [1, 16]).
        n_clusters: the number of clusters, overriding ``bits``.
        iterations: at most this many Lloyd iterations.
        ignore_zeros: leave exact zeros (pruned weights) out of the clustering.

    Returns:
        ``(centroids, labels)``: float32 centroids in ascending order, and an
        int64 tensor of ``weight``'s shape with each weight's cluster, ``-1``
        for the zeros left out.

    Example:
        >>> w = torch.tensor([[-1.0, -0.9, 0.0], [0.1, 1.0, 1.1]])
        >>> centroids, labels = kmeans_share(w, bits=1)
        >>> centroids, labels
        (tensor([-0.9500,  0.7333]), tensor([[ 0,  0, -1],
                [ 1,  1,  1]]))
    """
    check_tensor("weight", weight, floating=True, nonempty=True, finite=True)
    if n_clusters is None:
        k = 2 ** check_sharing_bits(bits)
    else:
        k = check_int("n_clusters", n_clusters, low=1)
    check_int("iterations", iterations, low=1)
    flat = weight.detach().reshape(-1).to(torch.float64)
    keep = flat != 0 if ignore_zeros else torch.ones_like(flat, dtype=torch.bool)
    values = flat[keep]
    if k > values.numel():
        what = "nonzero weights" if ignore_zeros else "weights"
        raise InvalidParameterError(
            f"cannot make {k} clusters from {values.numel()} {what}; use fewer "
            "bits / n_clusters (at most one cluster per weight)")
    centroids = torch.linspace(float(values.min()), float(values.max()), k, dtype=torch.float64)
    labels = None
    for _ in range(iterations):
        new = torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, labels, values)
        counts = torch.bincount(labels, minlength=k)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        centroids, order = torch.sort(centroids)
        labels = torch.argsort(order)[labels]
    out = torch.full_like(flat, -1, dtype=torch.int64)
    out[keep] = labels
    return centroids.to(torch.float32), out.reshape(weight.shape)


class SharedWeight(nn.Module):
    """Parametrization used by :func:`share_weights`: ``weight = centroids[labels] * mask``.

    The trainable tensor (``layer.parametrizations.weight.original``) is the
    codebook of centroids. Indexing sends back to every centroid the sum of the
    gradients of the weights that share it, which is exactly Deep
    Compression's centroid fine-tuning rule; pruned positions (``mask`` 0)
    stay zero.

    Example:
        >>> shared = SharedWeight(torch.tensor([0.5, 2.0]), torch.tensor([1, -1, 0]))
        >>> shared(torch.tensor([0.5, 2.0]))     # label -1: a pruned weight
        tensor([2.0000, 0.0000, 0.5000])
    """

    def __init__(self, centroids: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.register_buffer("labels", labels.clamp(min=0))
        self.register_buffer("mask", (labels >= 0).to(centroids.dtype))
        self._initial = centroids

    def forward(self, centroids):
        return centroids[self.labels] * self.mask

    def right_inverse(self, weight):
        # called once, when the parametrization is registered: the codebook becomes
        # the layer's trainable tensor, and this module keeps no copy of it
        initial, self._initial = self._initial, None
        return initial.to(weight.dtype).clone()


def share_weights(model: nn.Module, bits: int = 5, *, iterations: int = 50) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers each share ``2**bits`` weight values.

    Each layer's nonzero weights are clustered with :func:`kmeans_share`; the
    layer then computes with its centroids through a :class:`SharedWeight`
    parametrization, so ``pk.train.fit`` fine-tunes the centroids (gradients
    summed per cluster) while every weight keeps its cluster and pruned
    weights stay zero. Pruning masks of the input model are baked in first.

    Args:
        model: the network (left unchanged).
        bits: index width per weight, an int in [1, 16].
        iterations: k-means iterations per layer.

    Returns:
        A new model; ``layer.parametrizations.weight.original`` is the
        codebook of ``layer``.

    Example:
        >>> import pruning_kit as pk
        >>> shared = share_weights(pk.models.lenet_300_100(), bits=4)
        >>> shared.fc1.weight.unique().numel(), shared.fc1.parametrizations.weight.original.shape
        (16, torch.Size([16]))
    """
    from torch.nn.utils import parametrize

    from .. import prune

    check_model(model)
    bits = check_sharing_bits(bits)
    for name, layer in prunable(model):
        if parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(f"layer {name!r} is already parametrized (shared or QAT); "
                                        "share a plain or pruned model")
    shared = prune.finalize(prune.clone(model))
    for name, layer in prunable(shared):
        try:
            centroids, labels = kmeans_share(layer.weight, bits, iterations=iterations)
        except ValueError as err:
            raise InvalidParameterError(f"layer {name!r}: {err}") from None
        parametrize.register_parametrization(layer, "weight", SharedWeight(centroids, labels),
                                             unsafe=True)
    return shared


def unshare_weights(model: nn.Module) -> nn.Module:
    """A copy of a :func:`share_weights` model with plain weight tensors again.

    Example:
        >>> import pruning_kit as pk
        >>> plain = unshare_weights(share_weights(pk.models.lenet_300_100(), bits=2))
        >>> type(plain.fc2.weight).__name__, plain.fc2.weight.unique().numel()
        ('Parameter', 4)
    """
    check_model(model)
    return baked_copy(model, SharedWeight)

