"""How much smaller: parameters and MACs before and after structured pruning.

Removing half the filters of every conv removes about half of each conv's
outputs *and* half of the next conv's inputs, so parameters and MACs fall by
nearly 4x: :func:`report` measures it for any pair of models (the pruned one
from :func:`~pruning_kit.structured.l1_filter_prune` or from elsewhere).

Example:
    >>> import pruning_kit as pk
    >>> from pruning_kit.structured import l1_filter_prune
    >>> x = torch.zeros(1, 3, 32, 32)
    >>> dense = pk.models.vgg(11, width=0.25)
    >>> r = report(dense, l1_filter_prune(dense, 0.5, x), x)
    >>> round(r.macs_ratio, 1)
    3.8
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import metrics
from .coupling import CONV_TYPES, check_example_input, check_unmasked_model

__all__ = ["PruningReport", "report"]


@dataclass
class PruningReport:
    """Size before and after structured pruning, in parameters and in MACs.

    ``*_ratio`` is before / after ("3.9x fewer"); ``*_removed`` is the fraction
    taken away; ``channels`` maps each conv to ``(before, after)``.

    Example:
        >>> r = PruningReport(1000, 250, 4000, 1000, {"conv1": (20, 10)})
        >>> r.params_ratio, r.macs_removed
        (4.0, 0.75)
        >>> print(r)
        parameters 1,000 -> 250 (75.0% removed, 4.00x fewer); MACs 4,000 -> 1,000 (75.0% removed, 4.00x fewer)
    """

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    channels: dict = field(default_factory=dict)

    @property
    def params_ratio(self) -> float:
        """Parameters before / after."""
        return self.params_before / max(1, self.params_after)

    @property
    def macs_ratio(self) -> float:
        """MACs before / after."""
        return self.macs_before / max(1, self.macs_after)

    @property
    def params_removed(self) -> float:
        """Fraction of the parameters taken away."""
        return 1 - self.params_after / max(1, self.params_before)

    @property
    def macs_removed(self) -> float:
        """Fraction of the MACs taken away."""
        return 1 - self.macs_after / max(1, self.macs_before)

    def frame(self):
        """Per-conv channel counts as a pandas DataFrame."""
        import pandas as pd

        rows = [{"layer": k, "channels_before": a, "channels_after": b,
                 "removed": 1 - b / a if a else 0.0} for k, (a, b) in self.channels.items()]
        return pd.DataFrame(rows, columns=["layer", "channels_before", "channels_after", "removed"])

    def __str__(self) -> str:
        return (f"parameters {self.params_before:,} -> {self.params_after:,} "
                f"({self.params_removed:.1%} removed, {self.params_ratio:.2f}x fewer); "
                f"MACs {self.macs_before:,} -> {self.macs_after:,} "
                f"({self.macs_removed:.1%} removed, {self.macs_ratio:.2f}x fewer)")


def report(dense: nn.Module, pruned: nn.Module, example_input: torch.Tensor) -> PruningReport:
    """Compare a model with its structurally pruned version.

    Args:
        dense: the original model.
        pruned: the smaller model (from :func:`~pruning_kit.structured.l1_filter_prune`
            or another method).
        example_input: a batch both accept; MACs are per example.

    Returns:
        a :class:`PruningReport`.

    Example:
        >>> import pruning_kit as pk
        >>> from pruning_kit.structured import l1_filter_prune
        >>> x = torch.zeros(1, 1, 28, 28)
        >>> dense = pk.models.lenet5()
        >>> r = report(dense, l1_filter_prune(dense, 0.5, x), x)
        >>> r.channels["conv2"], round(r.params_removed, 2)
        ((50, 25), 0.51)
    """
    check_unmasked_model(dense)
    check_unmasked_model(pruned)
    check_example_input(example_input)
    before = {n: m.out_channels for n, m in dense.named_modules() if isinstance(m, CONV_TYPES)}
    after = {n: m.out_channels for n, m in pruned.named_modules() if isinstance(m, CONV_TYPES)}
    channels = {n: (c, after[n]) for n, c in before.items() if n in after}
    return PruningReport(metrics.count_params(dense), metrics.count_params(pruned),
                         metrics.macs(dense, example_input), metrics.macs(pruned, example_input),
                         channels)
