"""The ``pruning`` assignment: masks, SNIP, one IMP round, L1 order, and a pruning lab.

Parts 1-6 are small functions checked on hand-made inputs (:mod:`.checks`). The
lab (parts 7-9, :mod:`.lab`) works on a LeNet-300-100 trained on ``mnist5k``.
Every graded function's contract is a list of numbered clauses
(``ASSIGNMENT.clauses``), each checked by a hidden test that raises its diagnosis
code, and each broken by a planted mutant in ``tests/support/pruning_answers.py``.

Example:
    >>> from pruning_grader.assignments.pruning import ASSIGNMENT
    >>> ASSIGNMENT.functions[0], ASSIGNMENT.uses["sensitivity_scan"]
    ('magnitude_mask', ('magnitude_mask',))
"""

from ...registry import Assignment
from . import references

FUNCTIONS = ("magnitude_mask", "global_magnitude_masks", "snip_scores", "snip_masks", "imp_step",
             "l1_filter_order", "sensitivity_scan", "sparsity_plan", "remove_neurons")

_MASKING = ("pruning_kit.prune._prune_groups",)  # the exact-k smallest-score masks behind pk.prune

KIT = {
    "magnitude_mask": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step",
                       "pruning_kit.prune.iterative", *_MASKING),
    "global_magnitude_masks": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step",
                               "pruning_kit.prune.iterative", *_MASKING),
    "snip_scores": ("pruning_kit.prune.snip_scores", "pruning_kit.prune.snip"),
    "snip_masks": ("pruning_kit.prune.snip", "pruning_kit.prune.magnitude", *_MASKING),
    "imp_step": ("pruning_kit.prune.magnitude_step", "pruning_kit.prune.magnitude",
                 "pruning_kit.prune.iterative", "pruning_kit.lottery.imp", *_MASKING),
    "l1_filter_order": ("pruning_kit.structured.l1_filter_order",
                        "pruning_kit.structured.l1_filter_scores",
                        "pruning_kit.structured.select_filters",
                        "pruning_kit.structured.selection.layer_ratios",
                        "pruning_kit.structured.budget._layer_scores"),
    # evaluating (pk.train.evaluate) and listing layers (pk.models.prunable) stay available
    "sensitivity_scan": ("pruning_kit.prune.magnitude", "pruning_kit.prune.magnitude_step",
                         "pruning_kit.prune.iterative", *_MASKING),
    # a plan is the numbers the student chose from the scan, not global pruning's
    "sparsity_plan": ("pruning_kit.prune.magnitude", "pruning_kit.prune.snip",
                      "pruning_kit.prune.layer_sparsity"),
    "remove_neurons": ("pruning_kit.structured.remove_filters",
                       "pruning_kit.structured.l1_filter_prune",
                       "pruning_kit.structured.dependency_graph_prune",
                       "pruning_kit.structured.surgery._cut_outputs",
                       "pruning_kit.structured.surgery._cut_inputs",
                       "pruning_kit.metrics.macs"),
}
"""The kit code that would do each graded function's work: absent from the grading view."""

USES = {"sensitivity_scan": ("magnitude_mask",)}
"""Graded functions that call others: those are the course's versions while they are tested."""

ASSIGNMENT = Assignment("pruning", functions=FUNCTIONS, kit=KIT, uses=USES,
                        references=references)

from . import checks, lab  # noqa: E402,F401 - register the clauses and hidden tests
