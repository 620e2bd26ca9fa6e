"""Structured pruning: remove whole conv filters so the model really gets smaller and faster.

Unstructured pruning zeroes single weights; dense kernels still multiply the
zeros. L1 filter pruning (Li et al. 2017, "Pruning Filters for Efficient
ConvNets") removes the output filters with the smallest L1 norm from each
conv, together with the matching BatchNorm channels and the next layer's
input channels, and leaves a physically smaller dense network.

The package keeps three ideas apart, as Torch-Pruning does, one module each:

- **scoring** (which filters matter), :mod:`.importance`:
  :func:`l1_filter_scores`, :func:`l2_filter_scores`,
  :func:`random_filter_scores`, :func:`l1_filter_order`, and
  :func:`next_layer_scores` (a channel scored by how the next layer reads it);
  :mod:`.selection` turns scores into the filters each conv loses
  (:func:`select_filters`, with Li et al.'s independent or greedy strategy);
- **coupling** (which tensors share a channel), :mod:`.coupling`:
  :func:`channel_units` follows a plain stack of layers (conv -> BatchNorm ->
  next conv or Linear); :func:`is_plain_stack` says whether a model is one;
- **cutting** (slicing the tensors), :mod:`.surgery`: :func:`remove_filters`.

:func:`l1_filter_prune` (:mod:`.filter_pruning`) glues them and returns a new
model. Networks whose channels are coupled by residual additions or
concatenations (ResNet) go through Torch-Pruning's dependency graph instead
(:mod:`.dependency_graph`). :func:`report` (:mod:`.report`) says how much
smaller the result is. :func:`macs_target_ratios` (:mod:`.budget`) turns a
compute budget ("remove 60% of the MACs") into per-conv ratios, uniform or not.

The one-shot "alpha schedule" method (:func:`alpha_prune`, :mod:`.alpha`)
fades the chosen filters out with a factor alpha (:mod:`.masking`) that
decays to 0 during fine-tuning, then removes them;
:func:`iterative_filter_prune` is the classic prune / fine-tune loop it is
compared with (:func:`compare_alpha_iterative`).

Example:
    >>> import torch, pruning_kit as pk
    >>> x = torch.zeros(1, 3, 32, 32)
    >>> model = pk.models.vgg(11, width=0.25)
    >>> small = pk.structured.l1_filter_prune(model, ratio=0.5, example_input=x)
    >>> model.features[0].out_channels, small.features[0].out_channels
    (16, 8)
    >>> small(x).shape
    torch.Size([1, 10])
    >>> r = pk.structured.report(model, small, x)
    >>> round(r.macs_ratio, 1)    # half the filters in and out: nearly 4x fewer MACs
    3.8
"""

from .importance import (IMPORTANCES, importance_fn, l1_filter_order, l1_filter_scores,
                         l2_filter_scores, next_layer_scores, random_filter_scores,
                         reading_weights)
from .coupling import (CHANNEL_TYPES, CONV_TYPES, ChannelUnit, NotPlainStackError, channel_units,
                       check_example_input, check_removed, check_unmasked_model, execution_order,
                       is_plain_stack)
from .selection import (SCORE_BY, STRATEGIES, check_ignored_layers, check_ratio, layer_ratios,
                        select_filters)
from .masking import FilterMask, copy_without_masks, mask_filters
from .surgery import remove_filters
from .dependency_graph import dependency_graph_prune
from .filter_pruning import BACKENDS, l1_filter_prune
from .report import PruningReport, report
from .budget import macs_target_ratios
from .alpha import (DEFAULT_RATES, FROZEN_TYPES, SCHEDULE_KINDS, AlphaSchedule, StructuredResult,
                    alpha_prune, compare_alpha_iterative, iterative_filter_prune)

__all__ = ["l1_filter_scores", "l2_filter_scores", "random_filter_scores", "l1_filter_order",
           "IMPORTANCES", "ChannelUnit", "channel_units", "is_plain_stack", "NotPlainStackError",
           "select_filters", "remove_filters", "l1_filter_prune", "PruningReport", "report",
           "FilterMask", "mask_filters", "AlphaSchedule", "alpha_prune", "iterative_filter_prune",
           "StructuredResult", "compare_alpha_iterative", "BACKENDS",
           # added when structured.py became a package
           "importance_fn", "execution_order", "dependency_graph_prune", "copy_without_masks",
           "layer_ratios", "check_unmasked_model", "check_example_input", "check_removed",
           "check_ratio", "check_ignored_layers", "CONV_TYPES", "CHANNEL_TYPES", "SCHEDULE_KINDS",
           "DEFAULT_RATES", "macs_target_ratios", "FROZEN_TYPES",
           # scoring by the next layer, Li et al.'s independent / greedy strategies
           "reading_weights", "next_layer_scores", "SCORE_BY", "STRATEGIES"]
