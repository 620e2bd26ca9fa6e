"""Whole models at fewer bits: weight-only simulation, activation ranges, and QAT.

- :func:`fake_quantize_model` simulates any bit width 1-8 on the weights of a
  whole model (and, with ``activation_bits``, on every layer input, with
  ranges calibrated on data: post-training quantization, PTQ).
- :class:`ActivationQuantizer` fake-quantizes a layer's input to a range
  learnt from data; :func:`calibration_batches` turns calibration data into
  image batches.
- Quantization-aware training: :func:`prepare_qat` puts a fake quantizer
  (:class:`FakeQuantizer`) with a straight-through gradient on every weight
  (and, with ``activation_bits``, on every layer input);
  :func:`convert_qat` bakes the trained weights in; :func:`qat_vs_ptq`
  compares QAT with PTQ at several bit widths.

All of these are simulations in float32: they show the accuracy a
``bits``-bit model would have, not its speed (``pk.quant.int8`` runs real
int8 kernels).

Example:
    >>> import torch
    >>> import pruning_kit as pk
    >>> model = pk.models.lenet_300_100()
    >>> w2 = fake_quantize_model(model, bits=2)
    >>> w2.fc3.weight[0].unique().numel() <= 4
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models import prunable
from .._checks import InvalidParameterError, check_bool, check_choice, check_int, check_model
from ..train import Recipe, uses_recipe
from .parametrization import baked_copy
from .uniform import SCHEMES, fake_quantize

__all__ = ["fake_quantize_model", "prepare_qat", "convert_qat", "qat_vs_ptq", "FakeQuantizer",
           "ActivationQuantizer", "calibration_batches"]


# --------------------------------------------------------------------------------------
# argument checks


def _check_model_bits(bits, scheme):
    """Weight bits of a model: [1, 8] for the affine scheme, [2, 8] for the symmetric one."""
    if scheme == "affine":
        return check_int("bits", bits, low=1, high=8, hint="for scheme='affine' on a model")
    return check_int("bits", bits, low=2, high=8,
                     hint=f"for scheme={scheme!r} on a model; 1 bit needs scheme='affine'")


def _check_model_quantization(model, bits, scheme, per_channel, activation_bits):
    """Validate the settings shared by fake_quantize_model and prepare_qat.

    Returns ``(bits, dim)``: the checked bit width and the channel dim (0 or None).
    """
    check_model(model)
    check_choice("scheme", scheme, SCHEMES)
    bits = _check_model_bits(bits, scheme)
    dim = 0 if check_bool("per_channel", per_channel) else None
    if activation_bits is not None:
        check_int("activation_bits", activation_bits, low=1, high=8)
    return bits, dim


# --------------------------------------------------------------------------------------
# activations: a range learnt from data


def _fake_quantize_range(x, low, high, bits):
    """``fake_quantize`` (affine) with a given range instead of the tensor's own."""
    qmax = 2 ** bits - 1
    scale = (high - low) / qmax if high > low else 1.0
    zero_point = min(max(round(-low / scale), 0), qmax)
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, qmax)
    return (q - zero_point) * scale


class _RangeSTE(torch.autograd.Function):
    """Forward: fake-quantize to a fixed range; backward: pass the gradient inside it."""

    @staticmethod
    def forward(ctx, x, low, high, bits):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return _fake_quantize_range(x, low, high, bits)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.low) & (x <= ctx.high)
        return grad_output * inside.to(grad_output.dtype), None, None, None


class ActivationQuantizer(nn.Module):
    """Fake-quantizes a layer's input to ``bits`` bits (affine, one range per tensor).

    The range ``[low, high]`` is learnt from data: in training mode as an
    exponential moving average of each batch's min and max (``momentum``),
    and while ``observing`` is True (post-training calibration) as the min and
    max over every batch seen. In eval mode the stored range is used as is.
    The gradient passes straight through inside the range and is zero outside.

    Example:
        >>> quantizer = ActivationQuantizer(bits=2)
        >>> quantizer(torch.tensor([0.0, 1.0, 2.0, 3.0]))   # training mode: range [0, 3]
        tensor([0., 1., 2., 3.])
        >>> quantizer.eval()(torch.tensor([-1.0, 1.4, 5.0]))  # eval: clipped to it
        tensor([0., 1., 3.])
    """

    def __init__(self, bits: int, *, momentum: float = 0.1):
        super().__init__()
        self.bits, self.momentum, self.observing = bits, momentum, False
        self.register_buffer("low", torch.tensor(math.inf))
        self.register_buffer("high", torch.tensor(-math.inf))

    def forward(self, x):
        if self.training or self.observing:
            with torch.no_grad():
                low, high = x.detach().min(), x.detach().max()
                if not bool(torch.isfinite(self.low)):
                    self.low.copy_(low), self.high.copy_(high)
                elif self.observing:
                    self.low.copy_(torch.minimum(self.low, low))
                    self.high.copy_(torch.maximum(self.high, high))
                else:
                    self.low.lerp_(low, self.momentum), self.high.lerp_(high, self.momentum)
        if not bool(torch.isfinite(self.low)):
            raise RuntimeError("ActivationQuantizer has no range yet: run data through the "
                               "model in training mode or calibrate it first")
        return _RangeSTE.apply(x, float(self.low), float(self.high), self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, low={float(self.low):.4g}, high={float(self.high):.4g}"


def _quantize_input(module, args):
    return (module.input_quantizer(args[0]),) + tuple(args[1:])


def _add_input_quantizers(model: nn.Module, bits: int) -> None:
    for _, layer in prunable(model):
        if not hasattr(layer, "input_quantizer"):
            layer.input_quantizer = ActivationQuantizer(bits)
            layer.register_forward_pre_hook(_quantize_input)


def calibration_batches(data, *, batch_size: int = 256) -> list:
    """Image batches from calibration data, to observe activation ranges on.

    Args:
        data: a TensorData, an ``(images, labels)`` pair, a tensor of images,
            or an iterable of batches (a loader; each batch an image tensor
            or an ``(images, labels)`` pair).
        batch_size: images per batch, for the first three forms.

    Returns:
        A non-empty list of image tensors.

    Example:
        >>> [b.shape[0] for b in calibration_batches(torch.rand(5, 1, 4, 4), batch_size=2)]
        [2, 2, 1]
    """
    from ..data import TensorData, as_dataset

    if isinstance(data, torch.Tensor):
        images = data
    elif isinstance(data, (TensorData, tuple, list)):
        images = as_dataset(data).images
    elif hasattr(data, "__iter__"):
        batches = [b[0] if isinstance(b, (tuple, list)) else b for b in data]
        if not batches or not all(isinstance(b, torch.Tensor) for b in batches):
            raise InvalidParameterError("calibration_data yielded no image batches")
        return batches
    else:
        raise InvalidParameterError(
            "calibration_data must be a TensorData, an (images, labels) pair, a "
            f"tensor of images or an iterable of batches, got {type(data).__name__}")
    if len(images) == 0:
        raise InvalidParameterError("calibration_data is empty: pass at least one example")
    return [images[i:i + batch_size] for i in range(0, len(images), batch_size)]


def _calibrate(model: nn.Module, data, batch_size: int = 500) -> None:
    from ..train import num_threads

    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuantizer)]
    model.eval()
    for q in quantizers:
        q.observing = True
    try:
        with torch.no_grad(), num_threads(1):
            for images in calibration_batches(data, batch_size=batch_size):
                model(images)
    finally:
        for q in quantizers:
            q.observing = False


# --------------------------------------------------------------------------------------
# post-training: weight-only simulation, calibrated activations


def fake_quantize_model(model: nn.Module, bits: int, *, per_channel: bool = True,
                        scheme: str = "affine", activation_bits: int | None = None,
                        calibration_data=None) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d weights take only ``2**bits`` values.

    Weight-only simulation by default: every weight tensor is replaced by
    ``pk.quant.fake_quantize`` of itself (per output channel with
    ``per_channel=True``, i.e. ``dim=0``); biases, activations and arithmetic
    stay float32. This shows the accuracy a ``bits``-bit model would have,
    not its speed (see ``pk.quant.int8`` for real kernels). Pruned layers keep
    their masks, and their zeros stay exactly zero; a model from
    :func:`prepare_qat` has its quantized weights baked in (and keeps its
    learnt activation ranges).

    With ``activation_bits``, the input of every Linear/Conv2d layer is also
    fake-quantized (affine, per tensor) to a range observed on
    ``calibration_data`` (post-training static calibration).

    Args:
        model: the network (left unchanged).
        bits: weight bits, an int in [1, 8] (``scheme="symmetric"``: [2, 8]).
        per_channel: one scale per output channel rather than per tensor.
        scheme: ``"affine"`` or ``"symmetric"``.
        activation_bits: ``None`` (float activations) or an int in [1, 8].
        calibration_data: needed with ``activation_bits``: a TensorData, an
            ``(images, labels)`` pair, a tensor of images or a loader.

    Returns:
        A new model in eval mode.

    Example:
        >>> import pruning_kit as pk
        >>> model = pk.models.lenet_300_100()
        >>> q4 = fake_quantize_model(model, bits=4)
        >>> [int(q4.fc1.weight[c].unique().numel()) <= 16 for c in range(3)]
        [True, True, True]
        >>> torch.equal(q4.fc1.bias, model.fc1.bias), q4.fc1.weight.equal(model.fc1.weight)
        (True, False)
        >>> w4a4 = fake_quantize_model(model, 4, activation_bits=4,
        ...                            calibration_data=torch.rand(8, 1, 28, 28))
        >>> w4a4.fc2.input_quantizer
        ActivationQuantizer(bits=4, low=0, high=...)
    """
    bits, dim = _check_model_quantization(model, bits, scheme, per_channel, activation_bits)
    if activation_bits is not None and calibration_data is None:
        raise InvalidParameterError("activation_bits needs calibration_data= to observe the ranges "
                                    "of the activations")
    quantized = convert_qat(model)      # a plain copy when the model has no FakeQuantizer
    with torch.no_grad():
        for _, layer in prunable(quantized):
            if hasattr(layer, "weight_orig") and hasattr(layer, "weight_mask"):
                effective = layer.weight_orig * layer.weight_mask
                layer.weight_orig.copy_(fake_quantize(effective, bits, scheme=scheme, dim=dim))
                layer.weight = layer.weight_orig * layer.weight_mask
            elif torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
                raise InvalidParameterError(
                    "fake_quantize_model does not handle parametrized weights "
                    "other than prepare_qat's; remove the parametrizations first")
            else:
                layer.weight.copy_(fake_quantize(layer.weight, bits, scheme=scheme, dim=dim))
    if activation_bits is not None:
        _add_input_quantizers(quantized, activation_bits)
        _calibrate(quantized, calibration_data)
    return quantized.eval()


# --------------------------------------------------------------------------------------
# quantization-aware training


class _FakeQuantSTE(torch.autograd.Function):
    """Forward: ``fake_quantize``; backward: the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, w, bits, scheme, dim):
        return fake_quantize(w, bits, scheme=scheme, dim=dim)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None, None


class FakeQuantizer(nn.Module):
    """Parametrization used by :func:`prepare_qat`: ``weight = fake_quantize(latent)``.

    The range (and so the scale) follows the latent weights at every step;
    the straight-through estimator passes the gradient unchanged (with a
    min/max range nothing is clipped, so there is no region to cancel).

    Example:
        >>> FakeQuantizer(bits=1, dim=None)(torch.tensor([0.0, 0.3, 0.6, 1.0]))
        tensor([0., 0., 1., 1.])
    """

    def __init__(self, bits: int, *, scheme: str = "affine", dim: int | None = 0):
        super().__init__()
        self.bits, self.scheme, self.dim = bits, scheme, dim

    def forward(self, w):
        return _FakeQuantSTE.apply(w, self.bits, self.scheme, self.dim)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scheme={self.scheme!r}, dim={self.dim}"


def prepare_qat(model: nn.Module, bits: int, *, per_channel: bool = True,
                scheme: str = "affine", activation_bits: int | None = None) -> nn.Module:
    """A copy of ``model`` ready for quantization-aware training (QAT).

    Every Linear/Conv2d weight gets a :class:`FakeQuantizer` parametrization:
    the forward pass computes with the ``bits``-bit version of the latent
    float weights, and the straight-through estimator lets the gradient
    update the latent weights as if rounding were the identity. With
    ``activation_bits``, every layer's input also goes through an
    :class:`ActivationQuantizer` whose range is learnt during training. Train
    the copy with ``pk.train.fit``; :func:`convert_qat` (or
    :func:`fake_quantize_model`) then bakes the quantized weights in.

    Args:
        model: the network (left unchanged); pruned models must be finalized
            first (``pk.prune.finalize``), or training would regrow pruned weights.
        bits: an int in [1, 8] (``scheme="symmetric"``: [2, 8]).
        per_channel: one scale per output channel.
        scheme: ``"affine"`` or ``"symmetric"``.
        activation_bits: ``None`` (float activations) or an int in [1, 8].

    Returns:
        A new model whose ``layer.weight`` is fake-quantized and whose latent
        weights are ``layer.parametrizations.weight.original``.

    Example:
        >>> import pruning_kit as pk
        >>> qat = prepare_qat(pk.models.lenet_300_100(), bits=2)
        >>> qat.fc2.weight.unique().numel() <= 4 * 100
        True
        >>> qat(torch.zeros(5, 784)).sum().backward()
        >>> qat.fc3.parametrizations.weight.original.grad.shape
        torch.Size([10, 100])
    """
    from torch.nn.utils import parametrize

    from .. import prune

    bits, dim = _check_model_quantization(model, bits, scheme, per_channel, activation_bits)
    for name, layer in prunable(model):
        if hasattr(layer, "weight_orig") or parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(f"layer {name!r} is pruned or already parametrized; call "
                                        "pk.prune.finalize(model) (or convert_qat) first")
    qat = prune.clone(model)
    for _, layer in prunable(qat):
        parametrize.register_parametrization(layer, "weight", FakeQuantizer(bits, scheme=scheme, dim=dim))
    if activation_bits is not None:
        _add_input_quantizers(qat, activation_bits)
    return qat


def convert_qat(model: nn.Module) -> nn.Module:
    """A copy of a :func:`prepare_qat` model with its quantized weights baked in.

    Activation quantizers (and the ranges they learnt) stay in place. A model
    without fake-quantized weights comes back as a plain copy.

    Example:
        >>> import pruning_kit as pk
        >>> plain = convert_qat(prepare_qat(pk.models.lenet_300_100(), bits=3))
        >>> type(plain.fc1.weight).__name__, plain.fc1.weight[0].unique().numel() <= 8
        ('Parameter', True)
    """
    check_model(model)
    return baked_copy(model, FakeQuantizer).eval()


@uses_recipe
def qat_vs_ptq(model: nn.Module, train, test, bits=(8, 4, 2), *, activations: bool = True,
               epochs: int = 3, lr: float = 3e-4, per_channel: bool = False,
               scheme: str = "symmetric", seed: int = 0, progress: bool = False,
               recipe: Recipe | None = None):
    """Post-training quantization vs quantization-aware training, per bit width.

    For each bit width ``b``: PTQ is :func:`fake_quantize_model` of the
    trained ``model`` (activation ranges calibrated on ``train``); QAT
    fine-tunes :func:`prepare_qat` of the same model for ``epochs`` on
    ``train``, then bakes the weights in. Both are simulations evaluated on
    ``test``, with ``b``-bit weights and, when ``activations``, ``b``-bit
    layer inputs (weight-only quantization of an MNIST MLP loses almost
    nothing down to 4 bits; quantizing the activations too is where QAT pays).

    Args:
        model: a trained network (left unchanged).
        train, test: data as ``pk.train.fit`` / ``pk.train.evaluate`` take it.
        bits: bit widths to compare (each in [1, 8]).
        activations: quantize the layer inputs too, at the same bit width.
        epochs, lr, seed: the QAT fine-tuning (Adam).
        per_channel, scheme: the quantizer, the same for PTQ and QAT.
        progress: show progress bars.
        recipe: a :class:`pruning_kit.train.Recipe`: the epochs, lr and seed it
            gives replace these defaults (QAT here uses Adam, batch 64 and no
            weight decay, so a recipe setting those is refused).

    Returns:
        A pandas DataFrame with columns ``bits``, ``float_accuracy``,
        ``ptq_accuracy``, ``qat_accuracy``, one row per bit width.

    Example:
        >>> import pruning_kit as pk
        >>> train, test = pk.data.load("digits")
        >>> model = pk.models.lenet_300_100(64)
        >>> _ = pk.train.fit(model, train, epochs=3, progress=False)
        >>> table = qat_vs_ptq(model, train, test, bits=(3,), epochs=1)
        >>> list(table.columns), table.bits.tolist()
        (['bits', 'float_accuracy', 'ptq_accuracy', 'qat_accuracy'], [3])
    """
    import pandas as pd

    from ..train import evaluate, fit

    check_model(model)
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if not bits:
        raise InvalidParameterError("bits must name at least one bit width")
    check_choice("scheme", scheme, SCHEMES)
    for b in bits:
        _check_model_bits(b, scheme)
    baseline = evaluate(model, test)
    rows = []
    for b in bits:
        a = b if activations else None
        ptq = evaluate(fake_quantize_model(model, b, per_channel=per_channel, scheme=scheme,
                                           activation_bits=a, calibration_data=train), test)
        qat = prepare_qat(model, b, per_channel=per_channel, scheme=scheme,
                          activation_bits=a)
        fit(qat, train, epochs=epochs, lr=lr, seed=seed, progress=progress)
        rows.append({"bits": b, "float_accuracy": baseline, "ptq_accuracy": ptq,
                     "qat_accuracy": evaluate(convert_qat(qat), test)})
    return pd.DataFrame(rows)
