"""Checks and hidden tests of the ``pruning`` assignment, one section per graded function.

Each section starts with the function's contract as numbered clauses (as the
notebook states it), then the check that decides them on one input, then the
hidden test cell: the inputs it runs the check on. Every clause has a
diagnosis code ``function/mistake`` and a planted mutant in
``tests/support/mutants.py`` that breaks only it.
"""

import torch

from ...judging import (allowed_counts, call, count_text, describe_call, fail, fmt,
                        random_tensor, tensor_result, unchanged)
from . import ASSIGNMENT


# ---------------------------------------------------------------------------
# Part 1: magnitude_mask(weight, sparsity)

ASSIGNMENT.clause("magnitude_mask", 1, "returns a torch.Tensor with weight's shape and dtype",
                  diagnosis="magnitude_mask/type")
ASSIGNMENT.clause("magnitude_mask", 2, "holds only 0 and 1", diagnosis="magnitude_mask/values")
ASSIGNMENT.clause("magnitude_mask", 3, "has exactly round(sparsity * weight.numel()) zeros "
                  "(off by one only on a rounding boundary), ties included",
                  diagnosis="magnitude_mask/count")
ASSIGNMENT.clause("magnitude_mask", 4, "the zeros are at the smallest abs(weight), not the "
                  "smallest signed values", diagnosis="magnitude_mask/signed")
ASSIGNMENT.clause("magnitude_mask", 5, "weight is not changed", diagnosis="magnitude_mask/in-place")
ASSIGNMENT.clause("magnitude_mask", 6, "a sparsity outside [0, 1] raises ValueError",
                  diagnosis="magnitude_mask/range")

_SIGNED_HINT = ("These zeros fit the smallest SIGNED values: rank by abs(weight), since a "
                "weight of -5 matters as much as one of +5")


def smallest_pruned(keep, scores, fraction, what, *, score_name, function, signed=None):
    """The zeros of the flat 0/1 ``keep`` are ``round(fraction * n)`` at the smallest ``scores``.

    ``signed``: the signed values; when the zeros fit them instead, the message says so
    (diagnosis ``function/signed``).
    """
    keep = keep.flatten()
    scores = scores.flatten().double()
    zeros = int((keep == 0).sum())
    counts, text = count_text(fraction, keep.numel())
    if zeros not in counts:
        fail(f"{what} has {zeros} zeros, expected {text}", f"{function}/count")
    pruned, kept = scores[keep == 0], scores[keep == 1]
    if len(pruned) and len(kept) and pruned.max() > kept.min():
        message = (f"{what} does not zero the smallest {score_name}: an entry with {score_name} "
                   f"= {fmt(pruned.max().item())} was pruned while one with "
                   f"{fmt(kept.min().item())} was kept")
        if signed is not None:
            signed = signed.flatten().double()
            sp, sk = signed[keep == 0], signed[keep == 1]
            if not (len(sp) and len(sk) and sp.max() > sk.min()):
                fail(f"{message}. {_SIGNED_HINT}", f"{function}/signed")
        fail(message, f"{function}/order")


def check_magnitude_mask(magnitude_mask, weight, sparsity, *, dtype=torch.float32,
                         expected=None):
    """Check ``magnitude_mask(weight, sparsity)`` on one input (clauses 1-5).

    Example:
        >>> from pruning_grader.assignments.pruning.references import magnitude_mask
        >>> check_magnitude_mask(magnitude_mask, [3.0, -1.0, 2.0], 1 / 3, expected=[1, 0, 1])
    """
    weight = weight.clone() if isinstance(weight, torch.Tensor) else torch.tensor(weight,
                                                                                  dtype=dtype)
    what = f"the mask of {describe_call(magnitude_mask, (weight, sparsity))}"
    if hasattr(magnitude_mask, "call_and_inputs"):
        try:
            mask, (after, _), _ = magnitude_mask.call_and_inputs(weight, sparsity)
        except Exception:  # noqa: BLE001 - let call() word what it raised
            mask, after = call(magnitude_mask, weight, sparsity), weight
    else:
        after = weight.clone()
        mask = call(magnitude_mask, after, sparsity)
    mask = tensor_result(mask, what, shape=weight.shape, dtype=weight.dtype,
                         diagnosis="magnitude_mask")
    if not bool(((mask == 0) | (mask == 1)).all()):
        bad = mask[(mask != 0) & (mask != 1)][0].item()
        fail(f"{what} must hold only 0 and 1, found {fmt(bad)}", "magnitude_mask/values")
    smallest_pruned(mask, weight.abs(), sparsity, what, score_name="abs(weight)",
                    function="magnitude_mask", signed=weight)
    unchanged(weight, after, "weight", describe_call(magnitude_mask, (weight, sparsity)),
              diagnosis="magnitude_mask")
    if expected is not None:
        expected = torch.tensor(expected, dtype=weight.dtype)
        if not torch.equal(mask, expected):
            index = tuple((mask != expected).nonzero()[0].tolist())
            fail(f"{what}: element {index} is {fmt(mask[index].item())}, expected "
                 f"{fmt(expected[index].item())}", "magnitude_mask/order")


def check_sparsity_range(function, args, bad, index, name):
    """``function`` raises ValueError when argument ``index`` (named ``name``) is ``bad``."""
    args = list(args)
    args[index] = bad
    what = describe_call(function, args)
    try:
        value = function(*args)
    except Exception as exc:  # noqa: BLE001 - the student's own exception, compared by name
        if getattr(exc, "type_name", type(exc).__name__) == "ValueError":
            return
        if getattr(exc, "not_implemented", False):
            call(function, *args)  # words it as "not written yet"
        fail(f"{what} should raise ValueError ({name} must be in [0, 1]), but it raised "
             f"{getattr(exc, 'type_name', type(exc).__name__)}", f"{function.__name__}/range")
    fail(f"{what} should raise ValueError ({name} must be in [0, 1]), but it returned a "
         f"{type(value).__name__}", f"{function.__name__}/range")


@ASSIGNMENT.hidden("magnitude_mask", points=3)
def magnitude_mask_hidden(student):
    magnitude_mask = student["magnitude_mask"]
    # absolute values: large negative weights are kept
    check_magnitude_mask(magnitude_mask, [[-5.0, 0.1], [2.0, -0.2]], 0.5, expected=[[1, 0], [1, 0]])
    check_magnitude_mask(magnitude_mask, [-4.0, -3.0, -2.0, -1.0, 0.5, 6.0], 0.5,
                         expected=[1, 1, 0, 0, 0, 1])
    # sparsity 0 and 1
    check_magnitude_mask(magnitude_mask, [[1.0, -2.0], [3.0, 0.0]], 0.0, expected=[[1, 1], [1, 1]])
    check_magnitude_mask(magnitude_mask, [[1.0, -2.0], [3.0, 0.0]], 1.0, expected=[[0, 0], [0, 0]])
    # odd sizes where rounding matters: 0.37 * 7 = 2.59 -> 3, 0.29 * 33 = 9.57 -> 10, 0.7 * 9 -> 6
    check_magnitude_mask(magnitude_mask, random_tensor(7, seed=1), 0.37)
    check_magnitude_mask(magnitude_mask, random_tensor(3, 11, seed=2), 0.29)
    check_magnitude_mask(magnitude_mask, random_tensor(9, seed=3), 0.7)
    # a product on a rounding boundary: 0.5 * 5 = 2.5 -> 2 (3 also accepted)
    check_magnitude_mask(magnitude_mask, random_tensor(5, seed=4), 0.5)
    # ties: exactly round(s * n) zeros even when magnitudes repeat
    check_magnitude_mask(magnitude_mask, [0.1] * 6 + [1.0], 0.5)
    check_magnitude_mask(magnitude_mask, [[1.0, -1.0, 1.0], [-1.0, 2.0, 1.0]], 0.5)
    # other dtypes and ranks: float64, a 4-D conv weight
    check_magnitude_mask(magnitude_mask, random_tensor(4, 3, seed=5, dtype=torch.float64), 0.25)
    check_magnitude_mask(magnitude_mask, random_tensor(2, 3, 3, 3, seed=6), 0.6)
    # the weight is left as it was; a sparsity outside [0, 1] is refused
    for bad in (-0.1, 1.5):
        check_sparsity_range(magnitude_mask, (torch.ones(3), 0.5), bad, 1, "sparsity")
