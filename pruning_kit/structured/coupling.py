"""Coupling: which layers share each conv's output channels in a plain stack.

Removing output filter ``c`` of a conv also removes channel ``c`` of the
BatchNorm after it and input channel ``c`` of the next layer: these tensors are
coupled. In a plain stack (LeNet-5, Conv-2/4/6, VGG, the autoencoder) the
coupling is a chain that one forward pass reveals; :func:`channel_units` traces
it and returns one :class:`ChannelUnit` per conv. Residual additions,
concatenations and shared layers couple several convs together;
:func:`channel_units` refuses them with :class:`NotPlainStackError` (they go
through Torch-Pruning's dependency graph, :mod:`.dependency_graph`).

This module also owns the checks every structured-pruning entry point shares:
:func:`check_unmasked_model`, :func:`check_example_input` and
:func:`check_removed` (a removal plan against the model's units).

Example:
    >>> import pruning_kit as pk
    >>> [u.name for u in channel_units(pk.models.lenet5(), torch.zeros(1, 1, 28, 28))]
    ['conv1', 'conv2']
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import InvalidParameterError, check_model, check_tensor

__all__ = ["CONV_TYPES", "CHANNEL_TYPES", "NotPlainStackError", "ChannelUnit", "channel_units",
           "is_plain_stack", "execution_order", "check_unmasked_model", "check_example_input",
           "check_removed"]

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)
"""The layers whose output filters structured pruning removes."""
# Leaf modules a plain stack may contain that carry per-channel state we know how to slice.
CHANNEL_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.Linear)
"""The layers with per-channel state a plain stack may contain (all others hold no parameters)."""


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


def check_unmasked_model(model) -> nn.Module:
    """Require a model without unstructured pruning masks (filters are cut from plain weights).

    Args:
        model: what was passed as a model.

    Returns:
        ``model``, unchanged.

    Raises:
        InvalidParameterError: not an ``nn.Module``, or a layer still carries
            ``weight_orig``/``weight_mask`` from ``torch.nn.utils.prune``.

    Example:
        >>> import torch.nn.utils.prune as tprune, pruning_kit as pk
        >>> model = pk.models.lenet5()
        >>> check_unmasked_model(model) is model
        True
        >>> _ = tprune.l1_unstructured(model.conv1, "weight", amount=0.5)
        >>> check_unmasked_model(model)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: layers ['conv1'] carry unstructured pruning masks (weight_orig/weight_mask); bake them in with pk.prune.finalize(model) first
    """
    check_model(model)
    masked = [name for name, m in model.named_modules() if hasattr(m, "weight_mask")]
    if masked:
        raise InvalidParameterError(f"layers {masked} carry unstructured pruning masks (weight_orig/"
                                    "weight_mask); bake them in with pk.prune.finalize(model) first")
    return model


def check_example_input(example_input) -> torch.Tensor:
    """Require the batch that is traced to find which layers share channels.

    Args:
        example_input: what was passed as ``example_input``.

    Returns:
        ``example_input``, unchanged.

    Raises:
        InvalidParameterError: None, not a tensor, or without a batch dimension.

    Example:
        >>> check_example_input(None)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: example_input is required: a batch the model accepts, e.g. torch.zeros(1, 1, 28, 28) for MNIST or torch.zeros(1, 3, 32, 32) for CIFAR; it is used to trace which layers share channels
    """
    if example_input is None:
        raise InvalidParameterError("example_input is required: a batch the model accepts, e.g. "
                                    "torch.zeros(1, 1, 28, 28) for MNIST or torch.zeros(1, 3, 32, 32) for "
                                    "CIFAR; it is used to trace which layers share channels")
    return check_tensor("example_input", example_input, min_dim=2,
                        hint="a batched tensor (N x C x H x W), e.g. torch.zeros(1, 1, 28, 28)")


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


def execution_order(model: nn.Module, example_input: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The leaf modules in the order one forward pass (eval mode, no gradients) runs them.

    Args:
        model: any network; its train/eval mode is restored afterwards.
        example_input: a batch the model accepts.

    Returns:
        ``[(name, module), ...]``, a module listed again each time it runs.

    Raises:
        InvalidParameterError: ``model(example_input)`` fails.

    Example:
        >>> import pruning_kit as pk
        >>> [n for n, _ in execution_order(pk.models.lenet5(), torch.zeros(1, 1, 28, 28))]
        ['conv1', 'conv2', 'fc1', 'fc2']
    """
    return _trace(model, example_input, graph=False)[0]


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
    check_unmasked_model(model)
    check_example_input(example_input)
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

    Args:
        model: the network; not changed.
        example_input: a batch the model accepts.

    Returns:
        whether the model's convs can be cut one by one.

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


def check_removed(removed, units: list[ChannelUnit]) -> dict[str, torch.Tensor]:
    """Require a removal plan ``{conv name: filter indices}`` that fits the model's units.

    Args:
        removed: what was passed, e.g. the result of ``select_filters``.
        units: the model's :func:`channel_units`.

    Returns:
        ``{conv name: LongTensor of the indices, flattened}`` in ``removed``'s order.

    Raises:
        InvalidParameterError: not a dict, a name that is no prunable conv, or an
            index outside ``0 .. channels - 1``.

    Example:
        >>> import pruning_kit as pk
        >>> units = channel_units(pk.models.lenet5(), torch.zeros(1, 1, 28, 28))
        >>> check_removed({"conv1": [[0, 2]]}, units)
        {'conv1': tensor([0, 2])}
        >>> check_removed({"conv1": [20]}, units)
        Traceback (most recent call last):
        ...
        pruning_kit._checks.InvalidParameterError: removed['conv1'] holds indices outside 0..19
    """
    if not isinstance(removed, dict):
        raise InvalidParameterError("removed must be a dict {conv name: indices}, got "
                                    f"{type(removed).__name__}")
    by_name = {u.name: u for u in units}
    checked = {}
    for name, idx in removed.items():
        if name not in by_name or not by_name[name].prunable:
            allowed = [n for n, u in by_name.items() if u.prunable]
            raise InvalidParameterError(f"removed names {name!r}, which is not a prunable conv of "
                                        f"this model; prunable convs: {allowed}")
        idx = torch.as_tensor(idx, dtype=torch.long).flatten()
        channels = by_name[name].channels
        if len(idx) and (idx.min() < 0 or idx.max() >= channels):
            raise InvalidParameterError(f"removed[{name!r}] holds indices outside 0..{channels - 1}")
        checked[name] = idx
    return checked
