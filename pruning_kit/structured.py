"""Structured pruning: remove whole conv filters so the model really gets smaller and faster.

Unstructured pruning zeroes single weights; dense kernels still multiply the
zeros. L1 filter pruning (Li et al. 2017, "Pruning Filters for Efficient
ConvNets") removes the output filters with the smallest L1 norm from each
conv, together with the matching BatchNorm channels and the next layer's
input channels, and leaves a physically smaller dense network.

The module keeps three ideas apart, as Torch-Pruning does:

- **scoring** (which filters matter): :func:`l1_filter_scores`,
  :func:`l2_filter_scores`, :func:`random_filter_scores`, :func:`l1_filter_order`;
- **coupling** (which tensors share a channel): :func:`channel_units` follows a
  plain stack of layers (conv -> BatchNorm -> next conv or Linear);
  :func:`is_plain_stack` says whether a model is one;
- **cutting** (slicing the tensors): :func:`remove_filters`.

:func:`l1_filter_prune` glues them and returns a new model. Networks whose
channels are coupled by residual additions or concatenations (ResNet) go
through Torch-Pruning's dependency graph instead.

The one-shot "alpha schedule" method (:func:`alpha_prune`) fades the chosen
filters out with a factor alpha that decays to 0 during fine-tuning, then
removes them; :func:`iterative_filter_prune` is the classic prune / fine-tune
loop it is compared with (:func:`compare_alpha_iterative`).

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

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import torch
from torch import nn

from . import metrics
from .train import evaluate, evaluate_loss, fit
from ._checks import InvalidParameterError, check_model

__all__ = ["l1_filter_scores", "l2_filter_scores", "random_filter_scores", "l1_filter_order",
           "IMPORTANCES", "ChannelUnit", "channel_units", "is_plain_stack", "NotPlainStackError",
           "select_filters", "remove_filters", "l1_filter_prune", "PruningReport", "report",
           "FilterMask", "mask_filters", "AlphaSchedule", "alpha_prune", "iterative_filter_prune",
           "StructuredResult", "compare_alpha_iterative", "BACKENDS"]

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)
# Leaf modules a plain stack may contain that carry per-channel state we know how to slice.
CHANNEL_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.Linear)
BACKENDS = ("auto", "plain", "torch_pruning")


# --------------------------------------------------------------------------------------------
# Scoring: one number per output filter; lower means "remove first".
# --------------------------------------------------------------------------------------------

def _check_weight(weight) -> torch.Tensor:
    if not isinstance(weight, torch.Tensor):
        raise InvalidParameterError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() < 2:
        raise InvalidParameterError("weight must have an output-filter dimension first and at least one more "
                                    f"(out x in x kh x kw for a conv), got shape {tuple(weight.shape)}")
    return weight.detach()


def l1_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    """L1 norm of each output filter: ``sum(|w[i]|)`` over all but the first dimension.

    Args:
        weight: a conv weight ``out x in x kh x kw`` (or any tensor whose first
            dimension indexes output filters).

    Returns:
        float tensor of length ``out``.

    Example:
        >>> w = torch.tensor([[[[1., -2.]]], [[[0.5, 0.]]]])   # 2 filters, 1x1x2
        >>> l1_filter_scores(w)
        tensor([3.0000, 0.5000])
    """
    return _check_weight(weight).abs().flatten(1).sum(1)


def l2_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each output filter (an alternative scoring to compare with L1).

    Example:
        >>> l2_filter_scores(torch.tensor([[3., 4.], [1., 0.]]))
        tensor([5., 1.])
    """
    return _check_weight(weight).flatten(1).norm(dim=1)


def random_filter_scores(weight: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Random scores, the control that shows whether L1 ranking beats chance.

    Example:
        >>> w = torch.ones(4, 3, 3, 3)
        >>> torch.equal(random_filter_scores(w, seed=1), random_filter_scores(w, seed=1))
        True
    """
    weight = _check_weight(weight)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParameterError(f"seed must be an int, got {seed!r}")
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(weight.shape[0], generator=generator)


def l1_filter_order(conv_weight: torch.Tensor) -> torch.Tensor:
    """Output-filter indices in ascending L1 norm (stable: ties keep index order).

    The first ``n`` entries are the filters that L1 pruning removes at ``n``.

    Example:
        >>> w = torch.stack([torch.full((2, 3, 3), v) for v in (0.3, 0.1, 0.2, 0.1)])
        >>> l1_filter_order(w)
        tensor([1, 3, 2, 0])
    """
    return torch.argsort(l1_filter_scores(conv_weight), stable=True)


IMPORTANCES = {"l1": l1_filter_scores, "l2": l2_filter_scores, "random": random_filter_scores}


def _importance_fn(importance) -> Callable:
    if isinstance(importance, str):
        if importance not in IMPORTANCES:
            raise InvalidParameterError(f"importance must be one of {sorted(IMPORTANCES)} or a callable "
                                        f"weight -> scores per output filter, got {importance!r}")
        return IMPORTANCES[importance]
    if callable(importance):
        return importance
    raise InvalidParameterError(f"importance must be a name in {sorted(IMPORTANCES)} or a callable, "
                                f"got {type(importance).__name__}")


# --------------------------------------------------------------------------------------------
# Coupling: which layers share each conv's output channels in a plain stack.
# --------------------------------------------------------------------------------------------

class NotPlainStackError(ValueError):
    """The model is not a plain chain of layers, so channels cannot be cut layer by layer."""


@dataclass
class ChannelUnit:
    """The layers that share one conv's output channels in a plain stack.

    ``producer`` makes the channels, ``batchnorm`` (or None) normalizes them,
    ``consumer`` (a conv, a Linear after flattening, or None for the output
    layer) reads them; ``positions`` is how many Linear inputs each channel
    feeds (``H * W`` of the flattened map, 1 for convs).
    """

    name: str
    producer: nn.Module
    batchnorm_name: str | None = None
    batchnorm: nn.Module | None = None
    consumer_name: str | None = None
    consumer: nn.Module | None = None
    positions: int = 1

    @property
    def channels(self) -> int:
        """Number of output channels of the producer."""
        return self.producer.out_channels

    @property
    def last_name(self) -> str:
        """Name of the module whose output carries the unit's channels (BatchNorm if any)."""
        return self.batchnorm_name or self.name

    @property
    def prunable(self) -> bool:
        """False for the output layer: its channels are the model's outputs."""
        return self.consumer is not None


def _check_model(model) -> None:
    """A model without unstructured masks (filters are cut from plain weights)."""
    check_model(model)
    masked = [name for name, m in model.named_modules() if hasattr(m, "weight_mask")]
    if masked:
        raise InvalidParameterError(f"layers {masked} carry unstructured pruning masks (weight_orig/"
                                    "weight_mask); bake them in with pk.prune.finalize(model) first")


def _check_example_input(example_input) -> None:
    if example_input is None:
        raise InvalidParameterError("example_input is required: a batch the model accepts, e.g. "
                                    "torch.zeros(1, 1, 28, 28) for MNIST or torch.zeros(1, 3, 32, 32) for "
                                    "CIFAR; it is used to trace which layers share channels")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise InvalidParameterError("example_input must be a batched tensor (N x C x H x W), got "
                                    f"{getattr(example_input, 'shape', type(example_input).__name__)}")


def _trace(model: nn.Module, example_input: torch.Tensor, *, graph: bool = True):
    """One forward pass (eval mode) that records the leaf modules in the order they run
    and, with ``graph=True``, returns the output with its autograd graph back to the input.
    """
    order, handles = [], []
    for name, module in model.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: order.append((name, m))))
    x = example_input.detach().clone().requires_grad_(graph)
    was_training = model.training
    try:
        model.eval()
        with torch.set_grad_enabled(graph):
            out = model(x)
    except Exception as error:  # the user's model or input is wrong: say so plainly
        raise InvalidParameterError(f"model(example_input) failed with {type(error).__name__}: {error}. "
                                    "Pass an example_input of the shape the model expects") from error
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order, x, out


def _merge_nodes(x: torch.Tensor, out) -> list[str]:
    """Autograd nodes where two paths from the input ``x`` meet (residual adds, concatenations).

    A plain stack is a chain: walking the autograd graph back from the output,
    every node has at most one child that leads back to the input.
    """
    if not isinstance(out, torch.Tensor):
        return [f"output of type {type(out).__name__} (a plain stack returns one tensor)"]
    if out.grad_fn is None:
        return []
    reaches: dict = {}
    stack = [(out.grad_fn, False)]
    while stack:   # iterative post-order walk: deep networks exceed Python's recursion limit
        node, expanded = stack.pop()
        if node in reaches:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in reaches)
            continue
        is_input = getattr(node, "variable", None) is x
        reaches[node] = is_input or any(reaches.get(c, False) for c in children)
    merges = []
    for node, reached in reaches.items():
        if reached:
            paths = {c for c, _ in node.next_functions if c is not None and reaches.get(c, False)}
            if len(paths) > 1:
                merges.append(type(node).__name__)
    return merges


def channel_units(model: nn.Module, example_input: torch.Tensor) -> list[ChannelUnit]:
    """Follow a plain stack and group each conv with the layers that share its channels.

    Args:
        model: a network whose convs run one after another (LeNet-5, Conv-2/4/6,
            VGG, the autoencoder); not changed.
        example_input: a batch the model accepts.

    Returns:
        one :class:`ChannelUnit` per conv (``nn.Conv2d`` / ``nn.ConvTranspose2d``),
        in execution order; the output layer's unit has ``prunable == False``.

    Raises:
        NotPlainStackError: the model adds or concatenates branches, reuses a
            layer, uses grouped convs, or has layers with per-channel state this
            code does not slice (use Torch-Pruning for those).

    Example:
        >>> import pruning_kit as pk
        >>> units = channel_units(pk.models.lenet5(), torch.zeros(1, 1, 28, 28))
        >>> [(u.name, u.consumer_name, u.positions) for u in units]
        [('conv1', 'conv2', 1), ('conv2', 'fc1', 16)]
    """
    _check_model(model)
    _check_example_input(example_input)
    order, x, out = _trace(model, example_input)
    names = [name for name, _ in order]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NotPlainStackError(f"layers {repeated} run more than once in forward (shared "
                                 "weights), so their channels are coupled")
    merges = _merge_nodes(x, out)
    del x, out   # free the autograd graph
    if merges:
        raise NotPlainStackError(
            f"the forward pass joins branches ({', '.join(sorted(set(merges)))}): residual "
            "additions or concatenations couple the channels of several layers, so one conv "
            "cannot be cut alone")
    chain = []
    for name, module in order:
        if isinstance(module, CHANNEL_TYPES):
            chain.append((name, module))
        elif any(True for _ in module.parameters(recurse=False)):
            raise NotPlainStackError(f"layer {name!r} ({type(module).__name__}) has parameters "
                                     "this plain-stack code does not know how to slice")
    units = []
    for i, (name, module) in enumerate(chain):
        if not isinstance(module, CONV_TYPES):
            continue
        if module.groups != 1:
            raise NotPlainStackError(f"conv {name!r} has groups={module.groups}: grouped and "
                                     "depthwise convs couple input and output channels")
        unit = ChannelUnit(name, module)
        j = i + 1
        if j < len(chain) and isinstance(chain[j][1], nn.BatchNorm2d):
            if chain[j][1].num_features != module.out_channels:
                raise NotPlainStackError(f"BatchNorm {chain[j][0]!r} has {chain[j][1].num_features}"
                                         f" channels but {name!r} produces {module.out_channels}")
            unit.batchnorm_name, unit.batchnorm = chain[j]
            j += 1
        if j < len(chain):
            next_name, nxt = chain[j]
            if isinstance(nxt, CONV_TYPES) and nxt.in_channels == module.out_channels:
                unit.consumer_name, unit.consumer = next_name, nxt
            elif isinstance(nxt, nn.Linear) and nxt.in_features % module.out_channels == 0:
                unit.consumer_name, unit.consumer = next_name, nxt
                unit.positions = nxt.in_features // module.out_channels
            else:
                raise NotPlainStackError(f"cannot match the {module.out_channels} channels of "
                                         f"{name!r} with the inputs of the next layer "
                                         f"{next_name!r} ({type(nxt).__name__})")
        units.append(unit)
    return units


def is_plain_stack(model: nn.Module, example_input: torch.Tensor) -> bool:
    """True when :func:`channel_units` can follow the model (no residuals, no concatenation).

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> is_plain_stack(pk.models.vgg(11, width=0.25), x), is_plain_stack(pk.models.resnet(20), x)
        (True, False)
    """
    try:
        channel_units(model, example_input)
    except NotPlainStackError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Choosing: which filters each conv loses.
# --------------------------------------------------------------------------------------------

def _check_ratio(value, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InvalidParameterError(f"{label} must be a number in [0, 1): the fraction of output filters "
                         f"removed from a conv (1.0 would remove them all), got {value!r}")
    return float(value)


def _count_removed(ratio: float, channels: int) -> int:
    """round(ratio * channels) filters, always leaving at least one."""
    return min(int(round(ratio * channels)), channels - 1)


def _layer_ratios(model: nn.Module, conv_names: list[str], output_names: list[str], ratio,
                  ratios) -> dict[str, float]:
    """Per-conv ratio: ``ratio`` everywhere, overridden by ``ratios`` (names or containers)."""
    ratio = _check_ratio(ratio, "ratio")
    result = {name: ratio for name in conv_names}
    if ratios is None:
        return result
    if not isinstance(ratios, dict):
        raise InvalidParameterError(f"ratios must be a dict {{layer name: ratio}}, got {type(ratios).__name__}")
    modules = dict(model.named_modules())
    for key, value in ratios.items():
        value = _check_ratio(value, f"ratios[{key!r}]")
        if key in output_names:
            raise InvalidParameterError(f"ratios names {key!r}, the output layer: its channels are the "
                                        "model's outputs and cannot be removed")
        if key in conv_names:
            result[key] = value
            continue
        inside = [n for n in conv_names if key and n.startswith(key + ".")]
        if key not in modules or not inside:
            raise InvalidParameterError(f"ratios names {key!r}, which is not a prunable conv of this model "
                                        f"nor a module containing one; prunable convs: {conv_names}")
        for name in inside:
            result[name] = value
    return result


def select_filters(model: nn.Module, ratio: float = 0.5, example_input: torch.Tensor = None, *,
                   ratios: dict | None = None, importance="l1") -> dict[str, torch.Tensor]:
    """The filters :func:`l1_filter_prune` would remove, per conv (the scoring step alone).

    Each prunable conv loses ``round(ratio * out_channels)`` filters (at least
    one is kept), those with the lowest ``importance`` scores; scores are
    computed on each layer's own weights (Li et al.'s "independent" strategy).

    Args:
        model: a plain stack (see :func:`channel_units`); not changed.
        ratio: fraction of filters removed from every prunable conv, in [0, 1).
        example_input: a batch the model accepts.
        ratios: ``{name: ratio}`` overriding ``ratio`` for some convs; a name may
            also be a container (``"encoder"``) to set all convs inside it.
        importance: ``"l1"`` (default), ``"l2"``, ``"random"`` or a callable
            ``weight -> scores`` (one score per output filter, low = remove).

    Returns:
        ``{conv name: LongTensor of removed filter indices, sorted}``.

    Example:
        >>> import pruning_kit as pk
        >>> removed = select_filters(pk.models.lenet5(), 0.5, torch.zeros(1, 1, 28, 28))
        >>> {name: len(idx) for name, idx in removed.items()}
        {'conv1': 10, 'conv2': 25}
    """
    return _select(model, channel_units(model, example_input), ratio, ratios, importance)


def _select(model, units, ratio, ratios, importance) -> dict[str, torch.Tensor]:
    score = _importance_fn(importance)
    conv_names = [u.name for u in units if u.prunable]
    outputs = [u.name for u in units if not u.prunable]
    layer_ratio = _layer_ratios(model, conv_names, outputs, ratio, ratios)
    removed = {}
    for unit in units:
        if not unit.prunable:
            continue
        n = _count_removed(layer_ratio[unit.name], unit.channels)
        weight = unit.producer.weight
        if isinstance(unit.producer, nn.ConvTranspose2d):
            weight = weight.transpose(0, 1)   # ConvTranspose2d stores in x out x kh x kw
        scores = torch.as_tensor(score(weight.detach()))
        if scores.shape != (unit.channels,):
            raise InvalidParameterError(f"importance returned shape {tuple(scores.shape)} for {unit.name!r}; "
                                        f"it must return one score per output filter ({unit.channels},)")
        order = torch.argsort(scores, stable=True)
        removed[unit.name] = order[:n].sort().values
    return removed


# --------------------------------------------------------------------------------------------
# Cutting: slice the tensors of the producer, its BatchNorm and its consumer.
# --------------------------------------------------------------------------------------------

def _copy_model(model: nn.Module) -> nn.Module:
    """A deep copy without the :class:`FilterMask` hooks (those belong to the original)."""
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for key, hook in list(module._forward_hooks.items()):
            if getattr(hook, "_pk_filter_mask", False):
                del module._forward_hooks[key]
    return clone


def _keep_of(removed: torch.Tensor, channels: int) -> torch.Tensor:
    keep = torch.ones(channels, dtype=torch.bool)
    keep[removed] = False
    return keep.nonzero().flatten()


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(value.clone(), requires_grad=old.requires_grad))
    else:
        setattr(module, name, value.clone())   # a buffer (BatchNorm running statistics)


def _cut_outputs(unit: ChannelUnit, keep: torch.Tensor) -> None:
    conv = unit.producer
    out_dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    _set(conv, "weight", conv.weight.data.index_select(out_dim, keep))
    if conv.bias is not None:
        _set(conv, "bias", conv.bias.data[keep])
    conv.out_channels = len(keep)
    bn = unit.batchnorm
    if bn is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name, None) is not None:
                _set(bn, name, getattr(bn, name).data[keep])
        bn.num_features = len(keep)


def _cut_inputs(unit: ChannelUnit, keep: torch.Tensor) -> None:
    layer = unit.consumer
    if isinstance(layer, nn.Linear):
        # after flattening N x C x H x W, channel c feeds inputs c*H*W ... (c+1)*H*W - 1
        w = layer.weight.data.view(layer.out_features, unit.channels, unit.positions)
        _set(layer, "weight", w[:, keep].reshape(layer.out_features, -1))
        layer.in_features = len(keep) * unit.positions
    else:
        in_dim = 0 if isinstance(layer, nn.ConvTranspose2d) else 1
        _set(layer, "weight", layer.weight.data.index_select(in_dim, keep))
        layer.in_channels = len(keep)


def remove_filters(model: nn.Module, removed: dict, example_input: torch.Tensor) -> nn.Module:
    """A new model without the given output filters (the cutting step alone).

    For each named conv, its filters (weights and bias), the matching
    BatchNorm channels (weight, bias, running mean and variance) and the next
    layer's input channels are sliced away. For a Linear after flattening,
    each channel's ``H * W`` inputs go together.

    Args:
        model: a plain stack (see :func:`channel_units`); not changed.
        removed: ``{conv name: indices of the output filters to remove}``.
        example_input: a batch the model accepts.

    Returns:
        a deep copy of ``model`` with smaller layers, in the original's train/eval mode.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet5()
        >>> small = remove_filters(model, {"conv1": [0, 1, 2]}, torch.zeros(1, 1, 28, 28))
        >>> small.conv1.weight.shape, small.conv2.weight.shape, model.conv1.out_channels
        (torch.Size([17, 1, 5, 5]), torch.Size([50, 17, 5, 5]), 20)
    """
    if not isinstance(removed, dict):
        raise InvalidParameterError(f"removed must be a dict {{conv name: indices}}, got {type(removed).__name__}")
    return _remove(model, channel_units(model, example_input), removed)


def _remove(model: nn.Module, units: list[ChannelUnit], removed: dict) -> nn.Module:
    units = {u.name: u for u in units}
    keeps = {}
    for name, idx in removed.items():
        if name not in units or not units[name].prunable:
            allowed = [n for n, u in units.items() if u.prunable]
            raise InvalidParameterError(f"removed names {name!r}, which is not a prunable conv of this model; "
                                        f"prunable convs: {allowed}")
        idx = torch.as_tensor(idx, dtype=torch.long).flatten().unique()
        channels = units[name].channels
        if len(idx) and (idx.min() < 0 or idx.max() >= channels):
            raise InvalidParameterError(f"removed[{name!r}] holds indices outside 0..{channels - 1}")
        if len(idx) >= channels:
            raise InvalidParameterError(f"removed[{name!r}] removes all {channels} filters; keep at least one")
        keeps[name] = _keep_of(idx, channels)
    small = _copy_model(model)
    modules = dict(small.named_modules())
    for name, keep in keeps.items():
        unit = units[name]
        copied = replace(unit, producer=modules[unit.name],   # the same unit, in the copy
                         batchnorm=modules.get(unit.batchnorm_name),
                         consumer=modules[unit.consumer_name])
        _cut_inputs(copied, keep)    # first: it reads the producer's channel count
        _cut_outputs(copied, keep)
    return small


# --------------------------------------------------------------------------------------------
# Masking: fade filters out with a factor alpha instead of cutting them at once.
# --------------------------------------------------------------------------------------------

def _scaling_hook(scale: torch.Tensor) -> Callable:
    def hook(module, inputs, output):
        return output * scale.view(1, -1, 1, 1)

    hook._pk_filter_mask = True   # lets copies of the model drop it (see _copy_model)
    return hook


class FilterMask:
    """Forward hooks that multiply chosen output channels by ``alpha``.

    The hook sits after the BatchNorm when there is one (a BatchNorm would
    otherwise undo the scaling), so with ``alpha = 0`` the channels are exactly
    zero and removing them does not change the model's outputs. Set
    ``mask.alpha`` to change the factor; ``mask.remove()`` takes the hooks off.
    """

    def __init__(self, model: nn.Module, removed: dict, example_input: torch.Tensor,
                 alpha: float = 0.0, *, units: list[ChannelUnit] | None = None):
        if units is None:
            units = channel_units(model, example_input)
        units = {u.name: u for u in units}
        modules = dict(model.named_modules())
        self.removed = {}
        self._scales, self._handles = [], []
        for name, idx in removed.items():
            if name not in units or not units[name].prunable:
                raise InvalidParameterError(f"{name!r} is not a prunable conv of this model; prunable: "
                                            f"{[n for n, u in units.items() if u.prunable]}")
            unit = units[name]
            idx = torch.as_tensor(idx, dtype=torch.long).flatten()
            self.removed[name] = idx
            scale = torch.ones(unit.channels)
            self._scales.append((scale, idx))
            self._handles.append(
                modules[unit.last_name].register_forward_hook(_scaling_hook(scale)))
        self.alpha = alpha

    @property
    def alpha(self) -> float:
        """The factor applied to the masked channels (1 = untouched, 0 = removed)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InvalidParameterError(f"alpha must be a number in [0, 1], got {value!r}")
        self._alpha = float(value)
        for scale, idx in self._scales:
            scale[idx] = self._alpha

    def remove(self) -> None:
        """Take the hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []


def mask_filters(model: nn.Module, removed: dict, example_input: torch.Tensor,
                 alpha: float = 0.0) -> FilterMask:
    """Scale the given output channels by ``alpha`` with forward hooks (in place).

    Args:
        model: a plain stack; gets hooks, its weights are not changed.
        removed: ``{conv name: filter indices}``, as from :func:`select_filters`.
        example_input: a batch the model accepts.
        alpha: the factor, in [0, 1].

    Returns:
        a :class:`FilterMask`; change ``.alpha`` later, call ``.remove()`` to undo.

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.rand(2, 1, 28, 28)
        >>> model = pk.models.lenet5().eval()
        >>> removed = select_filters(model, 0.5, x)
        >>> mask = mask_filters(model, removed, x, alpha=0.0)
        >>> small = remove_filters(model, removed, x)   # the hooks are not copied along
        >>> torch.allclose(model(x), small(x), atol=1e-5)
        True
        >>> mask.remove()
    """
    _check_model(model)
    if not isinstance(removed, dict):
        raise InvalidParameterError(f"removed must be a dict {{conv name: indices}}, got {type(removed).__name__}")
    return FilterMask(model, removed, example_input, alpha)


# --------------------------------------------------------------------------------------------
# Coupled networks: Torch-Pruning's dependency graph.
# --------------------------------------------------------------------------------------------

def _torch_pruning_importance(score: Callable):
    """Wrap a per-filter scoring function as a Torch-Pruning group importance."""
    import torch_pruning as tp

    class FilterScoreImportance(tp.importance.Importance):
        """Sum of ``score`` over the convs whose output channels the group removes."""

        @torch.no_grad()
        def __call__(self, group):
            total = None
            for i, (dep, idxs) in enumerate(group):
                layer = dep.layer
                # pruning functions are bound methods: compare with ==, not `is`
                if not isinstance(layer, CONV_TYPES) or \
                        dep.pruning_fn != tp.pruner.function.prune_conv_out_channels:
                    continue
                weight = layer.weight.transpose(0, 1) if layer.transposed else layer.weight
                scores = torch.as_tensor(score(weight.detach()))[idxs].float()
                root = torch.as_tensor(group[i].root_idxs)
                if total is None:
                    total = torch.zeros(len(idxs))
                total.scatter_add_(0, root, scores)
            return total

    return FilterScoreImportance()


def _prune_with_torch_pruning(model, example_input, ratio, ratios, importance, ignored):
    import torch_pruning as tp

    small = _copy_model(model)
    order = [(n, m) for n, m in _trace(small, example_input, graph=False)[0]
             if isinstance(m, (nn.Linear,) + CONV_TYPES)]
    if not any(isinstance(m, CONV_TYPES) for _, m in order):
        raise InvalidParameterError(f"{type(model).__name__} has no conv layers; filter pruning removes conv "
                                    "filters (use pk.prune for fully connected networks)")
    modules = dict(small.named_modules())
    output_name = order[-1][0]
    ignored_layers = [modules[output_name]] + [modules[n] for n in ignored]
    conv_names = [n for n, m in order if isinstance(m, CONV_TYPES) and n != output_name]
    layer_ratio = _layer_ratios(small, conv_names, [output_name], ratio, ratios)
    ratio_dict = {modules[n]: r for n, r in layer_ratio.items() if ratios is not None}
    score = _importance_fn(importance)
    if score is l1_filter_scores:
        imp = tp.importance.GroupMagnitudeImportance(p=1)
    else:
        imp = _torch_pruning_importance(score)
    was_training = small.training
    small.eval()
    try:
        pruner = tp.pruner.BasePruner(
            small, example_input, importance=imp, pruning_ratio=float(ratio),
            pruning_ratio_dict=ratio_dict or None, ignored_layers=ignored_layers,
            root_module_types=[nn.modules.conv._ConvNd])
        pruner.step()
        with torch.no_grad():
            small(example_input)
    except Exception as error:
        raise InvalidParameterError(f"Torch-Pruning could not prune {type(model).__name__}: "
                                    f"{type(error).__name__}: {error}") from error
    finally:
        small.train(was_training)
    return small


# --------------------------------------------------------------------------------------------
# The glue: L1 filter pruning.
# --------------------------------------------------------------------------------------------

def l1_filter_prune(model: nn.Module, ratio: float = 0.5, example_input: torch.Tensor = None, *,
                    ratios: dict | None = None, importance="l1", ignored_layers: Iterable[str] = (),
                    backend: str = "auto", verify: bool = True) -> nn.Module:
    """Remove the lowest-L1 output filters of every conv and return a new, smaller model.

    Li et al. 2017: in each prunable conv, the ``round(ratio * out_channels)``
    filters with the smallest sum of absolute weights are removed, with the
    matching BatchNorm channels and the next layer's input channels. The output
    layer is never pruned. The original model is not changed.

    Plain stacks (LeNet-5, Conv-2/4/6, VGG, the autoencoder) are cut by the
    readable code of this module; networks whose channels are coupled by
    residual additions (ResNet) are pruned by Torch-Pruning's dependency graph
    (its group L1 importance: coupled layers are scored together).

    Args:
        model: the network to prune.
        ratio: fraction of output filters removed from each conv, in [0, 1).
        example_input: a batch the model accepts (traced to find coupled layers).
        ratios: ``{layer or container name: ratio}`` overriding ``ratio`` per conv
            (non-uniform pruning); ``ratio=0`` with ``ratios={"encoder": 0.6}``
            prunes only inside ``model.encoder``.
        importance: ``"l1"``, ``"l2"``, ``"random"`` or ``weight -> scores``.
        ignored_layers: names of convs to leave whole.
        backend: ``"auto"`` (plain code when possible, else Torch-Pruning),
            ``"plain"`` (error if the model is not a plain stack) or
            ``"torch_pruning"``.
        verify: plain path only: check that the cut model equals the dense one
            with the removed channels zeroed (catches layers between a conv and
            its consumer that do not map 0 to 0, or a channel-mixing reshape).

    Returns:
        a new ``nn.Module`` with fewer channels, in ``model``'s train/eval mode.

    Raises:
        ValueError: ratio outside [0, 1), a name in ``ratios`` that is no
            prunable conv, a model without convs, or one neither path can prune.

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> small = l1_filter_prune(pk.models.resnet(20), 0.5, x)   # via Torch-Pruning
        >>> small(x).shape, pk.metrics.count_params(small) < 0.4 * 272474
        (torch.Size([1, 10]), True)
        >>> ae = pk.models.autoencoder()
        >>> small = l1_filter_prune(ae, 0.0, torch.zeros(1, 1, 28, 28), ratios={"encoder": 0.6})
        >>> [m.out_channels for m in small.encoder if isinstance(m, nn.Conv2d)]
        [6, 13, 3]
    """
    _check_model(model)
    _check_example_input(example_input)
    _check_ratio(ratio, "ratio")
    if backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(ignored_layers, str):
        ignored_layers = [ignored_layers]
    ignored_layers = list(ignored_layers)
    modules = dict(model.named_modules())
    unknown = [n for n in ignored_layers if n not in modules]
    if unknown:
        raise InvalidParameterError(f"ignored_layers names {unknown}, not modules of this model")
    _importance_fn(importance)
    plain_error = None
    if backend != "torch_pruning":
        try:
            units = channel_units(model, example_input)
        except NotPlainStackError as error:
            plain_error = error
            if backend == "plain":
                raise NotPlainStackError(f"{type(model).__name__} is not a plain stack: {error}. "
                                         "Use backend='auto' or 'torch_pruning' to prune it with "
                                         "Torch-Pruning's dependency graph") from error
    if backend == "torch_pruning" or plain_error is not None:
        return _prune_with_torch_pruning(model, example_input, ratio, ratios, importance,
                                         ignored_layers)
    if not any(u.prunable for u in units):
        raise InvalidParameterError(f"{type(model).__name__} has no prunable conv layers (convs followed by "
                                    "another layer); filter pruning removes conv filters (use pk.prune for "
                                    "fully connected networks)")
    removed = _select(model, units, ratio, ratios, importance)
    for name in ignored_layers:
        for conv in list(removed):
            if conv == name or conv.startswith(name + "."):
                del removed[conv]
    removed = {name: idx for name, idx in removed.items() if len(idx)}
    small = _remove(model, units, removed)
    if verify:
        _verify_cut(model, small, units, removed, example_input)
    return small


def _verify_cut(model, small, units, removed, example_input) -> None:
    """The cut model must equal the dense model with the removed channels zeroed.

    The zeroing hooks go on ``model`` itself for one forward pass (no copy of a
    large model) and come off again; its weights are never touched.
    """
    mask = FilterMask(model, removed, example_input, alpha=0.0, units=units)
    modes = model.training, small.training
    try:
        model.eval()
        small.eval()
        with torch.no_grad():
            expected, got = model(example_input), small(example_input)
    finally:
        mask.remove()
        model.train(modes[0])
        small.train(modes[1])
    scale = expected.abs().max().item() + 1e-12
    if not torch.allclose(expected, got, rtol=1e-3, atol=1e-4 * scale):
        raise InvalidParameterError("after cutting, the model's outputs differ from the dense model with the "
                                    "removed channels zeroed: a layer between a conv and its consumer does not "
                                    "map 0 to 0 (e.g. a sigmoid), or the flatten is not channel-major. Pass "
                                    "verify=False to accept the cut anyway, or backend='torch_pruning'")


# --------------------------------------------------------------------------------------------
# How much smaller: parameters and MACs.
# --------------------------------------------------------------------------------------------

@dataclass
class PruningReport:
    """Size before and after structured pruning, in parameters and in MACs.

    ``*_ratio`` is before / after ("3.9x fewer"); ``*_removed`` is the fraction
    taken away; ``channels`` maps each conv to ``(before, after)``.
    """

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    channels: dict = field(default_factory=dict)

    @property
    def params_ratio(self) -> float:
        return self.params_before / max(1, self.params_after)

    @property
    def macs_ratio(self) -> float:
        return self.macs_before / max(1, self.macs_after)

    @property
    def params_removed(self) -> float:
        return 1 - self.params_after / max(1, self.params_before)

    @property
    def macs_removed(self) -> float:
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
        pruned: the smaller model (from :func:`l1_filter_prune` or another method).
        example_input: a batch both accept; MACs are per example.

    Returns:
        a :class:`PruningReport`.

    Example:
        >>> import pruning_kit as pk
        >>> x = torch.zeros(1, 1, 28, 28)
        >>> dense = pk.models.lenet5()
        >>> r = report(dense, l1_filter_prune(dense, 0.5, x), x)
        >>> r.channels["conv2"], round(r.params_removed, 2)
        ((50, 25), 0.51)
    """
    _check_model(dense)
    _check_model(pruned)
    _check_example_input(example_input)
    before = {n: m.out_channels for n, m in dense.named_modules() if isinstance(m, CONV_TYPES)}
    after = {n: m.out_channels for n, m in pruned.named_modules() if isinstance(m, CONV_TYPES)}
    channels = {n: (c, after[n]) for n, c in before.items() if n in after}
    return PruningReport(metrics.count_params(dense), metrics.count_params(pruned),
                         metrics.macs(dense, example_input), metrics.macs(pruned, example_input),
                         channels)


# --------------------------------------------------------------------------------------------
# One-shot pruning with a decaying alpha, and the iterative baseline.
# --------------------------------------------------------------------------------------------

SCHEDULE_KINDS = ("step", "exponential", "multiplicative")
DEFAULT_RATES = {"step": 0.25, "exponential": 1.0, "multiplicative": 0.7}


@dataclass
class AlphaSchedule:
    """How the factor on the filters chosen for removal decays to 0.

    With ``k`` decay steps done (one step every ``every`` epochs):

    - ``"step"``: ``alpha = max(0, 1 - rate * k)``, e.g. -0.1 per step;
    - ``"exponential"``: ``alpha = exp(-rate * k)``;
    - ``"multiplicative"``: ``alpha = (1 - rate) ** k``, i.e. times ``1 - rate``
      each step.

    Alpha below ``zero_below`` counts as 0 (the exponential kinds never reach
    it). Without a ``rate``, each kind gets one that reaches 0 in 4-5 steps:
    step 0.25, exponential 1.0, multiplicative 0.7.

    Example:
        >>> [AlphaSchedule("step")(k) for k in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
        >>> round(AlphaSchedule("multiplicative", rate=0.5)(3), 3)
        0.125
        >>> [AlphaSchedule(kind).steps_to_zero() for kind in ("step", "exponential", "multiplicative")]
        [4, 5, 4]
    """

    kind: str = "step"
    rate: float | None = None
    every: float = 1.0
    zero_below: float = 0.01

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise InvalidParameterError(f"kind must be one of {SCHEDULE_KINDS}, got {self.kind!r}")
        if self.rate is None:
            self.rate = DEFAULT_RATES[self.kind]
        limit = 1 if self.kind != "exponential" else math.inf
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) \
                or not 0 < self.rate <= limit:
            rule = "in (0, 1]" if limit == 1 else "> 0"
            raise InvalidParameterError(f"rate must be a number {rule} for kind={self.kind!r}, "
                                        f"got {self.rate!r}")
        if not isinstance(self.every, (int, float)) or not self.every > 0:
            raise InvalidParameterError(f"every (epochs per decay step) must be > 0, got {self.every!r}")
        if not isinstance(self.zero_below, (int, float)) or not 0 <= self.zero_below < 1:
            raise InvalidParameterError(f"zero_below must be in [0, 1), got {self.zero_below!r}")

    def __call__(self, k: float) -> float:
        """alpha after ``k`` decay steps."""
        if self.kind == "step":
            alpha = max(0.0, 1.0 - self.rate * k)
        elif self.kind == "exponential":
            alpha = math.exp(-self.rate * k)
        else:
            alpha = (1.0 - self.rate) ** k
        return 0.0 if alpha < self.zero_below else float(alpha)

    def steps_to_zero(self) -> int:
        """Decay steps until alpha is 0."""
        k = 0
        while self(k) > 0:
            k += 1
        return k


@dataclass
class StructuredResult:
    """A pruned model with how it got there: removed filters, training history, alphas."""

    model: nn.Module
    removed: dict
    histories: list = field(default_factory=list)
    alphas: list = field(default_factory=list)


def _train_kwargs(epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress):
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InvalidParameterError(f"epochs must be a non-negative int, got {epochs!r}")
    return dict(lr=lr, optimizer=optimizer, weight_decay=weight_decay, batch_size=batch_size,
                seed=seed, loss=loss, progress=progress)


def alpha_prune(model: nn.Module, ratio: float, example_input: torch.Tensor, train, *,
                ratios: dict | None = None, schedule: AlphaSchedule | str = "step",
                rate: float | None = None, epochs: int = 5, lr: float = 1e-3,
                optimizer: str = "adam", weight_decay: float = 0.0, batch_size: int = 64,
                seed: int = 0, loss="cross_entropy", importance="l1",
                progress: bool = False) -> StructuredResult:
    """One-shot pruning with a decaying alpha: fade the chosen filters out, then cut them.

    The filters :func:`select_filters` picks are multiplied by ``alpha`` (after
    their BatchNorm); alpha follows ``schedule`` while all weights are
    fine-tuned, so the rest of the network learns to do without them; once
    training ends (alpha forced to 0) they are removed physically. A warning
    says when alpha had not reached 0 before the end (the final cut is then
    abrupt: use more epochs or a faster decay).

    Args:
        model: a trained plain stack; not changed.
        ratio, ratios, importance: which filters, as in :func:`l1_filter_prune`.
        example_input: a batch the model accepts.
        train: the fine-tuning data.
        schedule: an :class:`AlphaSchedule` or its kind (``"step"``,
            ``"exponential"``, ``"multiplicative"``), with ``rate`` if given.
        epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress:
            passed to :func:`pruning_kit.train.fit` (``loss="reconstruction"``
            for autoencoders).

    Returns:
        :class:`StructuredResult` with the small model, the removed filters, the
        fine-tuning history and the alpha used at each epoch.

    Example:
        >>> import pruning_kit as pk
        >>> train = pk.data.TensorData(torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)))
        >>> x = train.images[:2]
        >>> result = alpha_prune(pk.models.lenet5(), 0.5, x, train, schedule="step", rate=0.5,
        ...                      epochs=3)
        >>> result.alphas, result.model.conv2.out_channels
        ([1.0, 0.5, 0.0], 25)
    """
    _check_model(model)
    kwargs = _train_kwargs(epochs, lr, optimizer, weight_decay, batch_size, seed, loss, progress)
    if isinstance(schedule, str):
        schedule = AlphaSchedule(schedule, rate)
    elif not isinstance(schedule, AlphaSchedule):
        raise InvalidParameterError(f"schedule must be an AlphaSchedule or one of {SCHEDULE_KINDS}, "
                                    f"got {type(schedule).__name__}")
    elif rate is not None:
        raise InvalidParameterError("give rate inside the AlphaSchedule, not as well as one")
    removed = select_filters(model, ratio, example_input, ratios=ratios, importance=importance)
    removed = {n: idx for n, idx in removed.items() if len(idx)}
    work = _copy_model(model)
    mask = mask_filters(work, removed, example_input, alpha=1.0)
    steps_per_epoch = max(1, math.ceil(len(train) / batch_size))
    alphas = []          # alpha in effect at the start of each epoch
    last_used = [1.0]    # alpha of the latest optimizer step

    def update_alpha(net, iteration):   # fit calls this before the first step and after each
        if iteration > 0:
            last_used[0] = mask.alpha
        epoch = iteration / steps_per_epoch
        mask.alpha = schedule(math.floor(epoch / schedule.every + 1e-9))
        if iteration % steps_per_epoch == 0 and len(alphas) < epochs:
            alphas.append(mask.alpha)

    try:
        history = fit(work, train, epochs=epochs, callbacks=[update_alpha], **kwargs)
    finally:
        mask.remove()
    final_alpha = last_used[0]
    if final_alpha > 0:
        warnings.warn(f"alpha was still {final_alpha:.3g} when fine-tuning ended; the filters were "
                      "cut anyway. Use more epochs or a larger decay rate", stacklevel=2)
    small = remove_filters(work, removed, example_input)
    small.train(model.training)
    return StructuredResult(small, removed, [history], alphas)


def iterative_filter_prune(model: nn.Module, ratio: float, example_input: torch.Tensor, train, *,
                           ratios: dict | None = None, steps: int = 3, epochs_per_step: int = 1,
                           lr: float = 1e-3, optimizer: str = "adam", weight_decay: float = 0.0,
                           batch_size: int = 64, seed: int = 0, loss="cross_entropy",
                           importance="l1", progress: bool = False) -> StructuredResult:
    """Classic prune / fine-tune: remove the filters in ``steps`` rounds, fine-tuning after each.

    The final size equals one-shot :func:`l1_filter_prune` with the same
    ``ratio``/``ratios``: each conv ends with ``round(ratio * channels)`` fewer
    filters, removed in near-equal parts, each time the lowest-scored of what
    remains (scores of the fine-tuned weights).

    Args:
        model: a trained plain stack; not changed.
        ratio, ratios, importance, example_input: as in :func:`l1_filter_prune`.
        train: fine-tuning data.
        steps: pruning rounds (>= 1).
        epochs_per_step: fine-tuning epochs after each round.
        lr, optimizer, weight_decay, batch_size, seed, loss, progress: for
            :func:`pruning_kit.train.fit`.

    Returns:
        :class:`StructuredResult` (``removed`` counts filters removed per conv).

    Example:
        >>> import pruning_kit as pk
        >>> train = pk.data.TensorData(torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)))
        >>> result = iterative_filter_prune(pk.models.lenet5(), 0.5, train.images[:2], train,
        ...                                 steps=2)
        >>> result.model.conv1.out_channels, result.removed
        (10, {'conv1': 10, 'conv2': 25})
    """
    _check_model(model)
    kwargs = _train_kwargs(epochs_per_step, lr, optimizer, weight_decay, batch_size, seed, loss,
                           progress)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidParameterError(f"steps must be a positive int, got {steps!r}")
    target = {n: len(idx) for n, idx in
              select_filters(model, ratio, example_input, ratios=ratios).items()}
    score = _importance_fn(importance)
    work = _copy_model(model)
    histories = []
    for step in range(1, steps + 1):
        units = {u.name: u for u in channel_units(work, example_input)}
        removed = {}
        for name, total in target.items():
            now = round(total * step / steps) - round(total * (step - 1) / steps)
            if now > 0:
                weight = units[name].producer.weight.detach()
                if isinstance(units[name].producer, nn.ConvTranspose2d):
                    weight = weight.transpose(0, 1)
                order = torch.argsort(torch.as_tensor(score(weight)), stable=True)
                removed[name] = order[:now].sort().values
        work = remove_filters(work, removed, example_input)
        histories.append(fit(work, train, epochs=epochs_per_step, **kwargs))
    work.train(model.training)
    return StructuredResult(work, target, histories, [])


def _score(model, test, loss) -> float:
    if loss == "reconstruction":
        return evaluate_loss(model, test, loss="reconstruction")
    return evaluate(model, test)


def compare_alpha_iterative(model: nn.Module, train, test, ratio: float,
                            example_input: torch.Tensor, *, ratios: dict | None = None,
                            epochs: int = 6, steps: int = 3,
                            schedules: Iterable = ("step", "exponential", "multiplicative"),
                            lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                            loss="cross_entropy", progress: bool = False):
    """Alpha-schedule one-shot pruning vs iterative prune / fine-tune, same final size and epochs.

    Rows: the dense model; one-shot cut with no fine-tuning; one-shot cut then
    fine-tuned ``epochs``; one row per alpha schedule (``epochs`` of decay and
    fine-tuning); iterative pruning in ``steps`` rounds with ``epochs // steps``
    epochs each.

    Args:
        model: a trained plain stack; not changed.
        train, test: data to fine-tune on and to score with.
        ratio, ratios, example_input: which filters, as in :func:`l1_filter_prune`.
        epochs: fine-tuning epochs given to every method.
        steps: rounds of the iterative method (``epochs`` must be a multiple).
        schedules: :class:`AlphaSchedule` objects or kinds with default rates.
        lr, batch_size, seed, loss, progress: for :func:`pruning_kit.train.fit`.

    Returns:
        pandas DataFrame with columns ``method, params, macs, score, metric``
        (``metric`` is ``"accuracy"``, higher is better, or ``"mse"`` for
        ``loss="reconstruction"``, lower is better).

    Example:
        >>> import pruning_kit as pk
        >>> data = pk.data.TensorData(torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,)))
        >>> frame = compare_alpha_iterative(pk.models.lenet5(), data, data, 0.5, data.images[:1],
        ...     epochs=2, steps=2, schedules=[AlphaSchedule("step", 0.5)])
        >>> list(frame.method)
        ['dense', 'one-shot, no fine-tuning', 'one-shot + fine-tune', 'alpha step (rate 0.5)', 'iterative (2 steps)']
        >>> frame.params.iloc[1:].nunique()    # every pruned model has the same size
        1
    """
    import pandas as pd

    _check_model(model)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidParameterError(f"steps must be a positive int, got {steps!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < steps \
            or epochs % steps:
        raise InvalidParameterError(f"epochs must be a positive multiple of steps={steps} so that every "
                                    f"method gets the same training, got {epochs!r}")
    metric = "mse" if loss == "reconstruction" else "accuracy"
    common = dict(lr=lr, batch_size=batch_size, seed=seed, loss=loss, progress=progress)
    rows = []

    def add(method, net):
        rows.append({"method": method, "params": metrics.count_params(net),
                     "macs": metrics.macs(net, example_input), "score": _score(net, test, loss),
                     "metric": metric})

    add("dense", model)
    cut = l1_filter_prune(model, ratio, example_input, ratios=ratios)
    add("one-shot, no fine-tuning", cut)
    fit(cut, train, epochs=epochs, **common)
    add("one-shot + fine-tune", cut)
    for schedule in schedules:
        if isinstance(schedule, str):
            schedule = AlphaSchedule(schedule)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = alpha_prune(model, ratio, example_input, train, ratios=ratios,
                                 schedule=schedule, epochs=epochs, **common)
        add(f"alpha {schedule.kind} (rate {schedule.rate:g})", result.model)
    result = iterative_filter_prune(model, ratio, example_input, train, ratios=ratios, steps=steps,
                                    epochs_per_step=epochs // steps, **common)
    add(f"iterative ({steps} steps)", result.model)
    return pd.DataFrame(rows, columns=["method", "params", "macs", "score", "metric"])
