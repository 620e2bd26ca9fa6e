"""Binarized networks: one bit per weight (and optionally per activation).

- :func:`binarize`: +1 where ``x >= 0``, else -1 (zero counts as positive).
- :func:`binary_approximation`: ``alpha * binarize(x)`` with ``alpha`` the mean
  absolute value, per tensor or per channel: the closest one-bit version of a
  tensor in squared error (XNOR-Net's weight scale, Rastegari et al. 2016).
- :class:`SignSTE`: ``binarize`` in the forward pass; the straight-through
  estimator in the backward pass lets the gradient through where
  ``|x| <= 1`` and cancels it elsewhere (Courbariaux, Hubara et al. 2016).
- :class:`BinaryLinear` and :class:`BinaryConv2d`: keep real-valued "latent"
  weights that the optimizer updates, and compute with ``alpha * sign(W)``,
  where ``alpha`` is the mean absolute weight of each output unit or filter
  (the XNOR-Net scaling of Rastegari et al. 2016). ``binarize_input=True``
  also binarizes the layer's input, which makes every product a sign
  agreement (XNOR + popcount in hardware).
- :func:`binarized_mlp`: a binarized multilayer perceptron for MNIST-sized
  inputs, and :func:`clip_latent_weights` to keep latent weights in [-1, 1]
  during training.

Example:
    >>> import torch
    >>> binarize(torch.tensor([-0.5, 0.0, 2.0]))
    tensor([-1.,  1.,  1.])
    >>> layer = BinaryLinear(4, 2)
    >>> layer(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import InvalidParameterError, check_int, check_model, check_number, check_tensor

__all__ = ["binarize", "binary_approximation", "SignSTE", "BinaryLinear", "BinaryConv2d",
           "binarized_mlp", "clip_latent_weights"]


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Sign with sign(0) = +1: +1 where ``x >= 0``, else -1, in ``x``'s dtype.

    Args:
        x: a tensor of real numbers (any shape, any real dtype).

    Returns:
        A new tensor of +1/-1 with ``x``'s shape and dtype.

    Example:
        >>> binarize(torch.tensor([[-2.0, -0.0], [0.3, -1e-9]]))
        tensor([[-1.,  1.],
                [ 1., -1.]])
    """
    check_tensor("x", x, real=True)
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def binary_approximation(x: torch.Tensor, *, dim: int | None = None) -> torch.Tensor:
    """``alpha * binarize(x)``, ``alpha`` the mean of ``|x|``: one sign per entry, one scale.

    Rastegari et al. (2016, XNOR-Net, Section 3.1) show that among ``alpha * B``
    with ``B`` in {-1, +1}, ``B = sign(x)`` and ``alpha = mean(|x|)`` minimise
    ``||x - alpha * B||^2``. This is what :class:`BinaryLinear` and
    :class:`BinaryConv2d` compute with (there one ``alpha`` per output unit or
    filter, ``dim=0``). It is the one-bit quantizer that keeps the sign: 1-bit
    affine quantization has the levels {0, max - min} and symmetric quantization
    has only 0.

    Args:
        x: a non-empty floating-point tensor without NaN or inf.
        dim: ``None`` (one scale for the tensor) or the channel dimension (one
            scale per slice along it).

    Returns:
        A new tensor with ``x``'s shape and dtype, holding ``±alpha``.

    Example:
        >>> binary_approximation(torch.tensor([-2.0, 0.5, 1.5]))    # alpha = 4 / 3
        tensor([-1.3333,  1.3333,  1.3333])
        >>> binary_approximation(torch.tensor([[1.0, -3.0], [0.5, 0.5]]), dim=0)
        tensor([[ 2.0000, -2.0000],
                [ 0.5000,  0.5000]])
    """
    check_tensor("x", x, floating=True, nonempty=True, finite=True)
    magnitude = x.detach().abs()
    if dim is None:
        alpha = magnitude.mean()
    else:
        if x.dim() == 0:
            raise InvalidParameterError(f"dim must be None for a 0-dimensional tensor (it has no "
                                        f"channels), got {dim!r}")
        dim = check_int("dim", dim, low=-x.dim(), high=x.dim() - 1,
                        hint=f"a dimension of x, whose shape is {tuple(x.shape)}; or None") % x.dim()
        others = [d for d in range(x.dim()) if d != dim]
        alpha = magnitude.mean(dim=others, keepdim=True) if others else magnitude
    return alpha * binarize(x.detach())


class SignSTE(torch.autograd.Function):
    """``binarize`` with a straight-through gradient: ``grad * (|x| <= 1)``.

    The sign function has zero gradient almost everywhere, so training
    pretends it is the identity, clipped: the incoming gradient passes where
    ``|x| <= 1`` and is cancelled where ``|x| > 1`` (there the latent value is
    already saturated, and pushing it further changes nothing).

    Example:
        >>> x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.5], requires_grad=True)
        >>> y = SignSTE.apply(x)
        >>> y
        tensor([-1., -1.,  1.,  1.,  1.], grad_fn=<SignSTEBackward>)
        >>> y.sum().backward()
        >>> x.grad
        tensor([0., 1., 1., 1., 0.])
    """

    @staticmethod
    def forward(ctx, x):
        check_tensor("x", x, real=True)
        ctx.save_for_backward(x)
        return binarize(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


class BinaryLinear(nn.Module):
    """A fully connected layer computing with ``alpha * sign(W)``.

    Parameters ``weight`` (out x in) and ``bias`` (out, or ``None``) are real
    and initialised like ``nn.Linear``. The forward pass is
    ``F.linear(x, alpha * SignSTE.apply(weight), bias)`` with
    ``alpha = weight.detach().abs().mean(dim=1, keepdim=True)``: one scale per
    output unit, treated as a constant by autograd.

    Args:
        in_features: inputs per example.
        out_features: outputs per example.
        bias: learn an additive bias.
        binarize_input: also binarize the input with :class:`SignSTE`.

    Example:
        >>> layer = BinaryLinear(3, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[0.5, -1.0, 1.5], [-0.2, -0.2, 0.2]]))
        >>> layer(torch.tensor([[1.0, 1.0, 1.0]]))   # alpha = [1.0, 0.2]
        tensor([[ 1.0000, -0.2000]], grad_fn=<MmBackward0>)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 binarize_input: bool = False):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.binarize_input = bool(binarize_input)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like ``nn.Linear`` (Kaiming-uniform weight, uniform bias)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def alpha(self) -> torch.Tensor:
        """Per-output scale ``mean(|W|)`` over each row, shape (out, 1), no gradient."""
        return self.weight.detach().abs().mean(dim=1, keepdim=True)

    def binary_weight(self) -> torch.Tensor:
        """The weight the layer computes with: ``alpha * sign(W)``."""
        return self.alpha() * SignSTE.apply(self.weight)

    def forward(self, x):
        check_tensor("BinaryLinear input", x)
        if x.shape[-1:] != (self.in_features,):
            raise InvalidParameterError(
                f"BinaryLinear expects input of shape (N x {self.in_features}), "
                f"got {tuple(x.shape)}")
        if self.binarize_input:
            x = SignSTE.apply(x)
        return F.linear(x, self.binary_weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, binarize_input={self.binarize_input}")


class BinaryConv2d(nn.Module):
    """A 2-D convolution computing with ``alpha * sign(W)``, one ``alpha`` per filter.

    As in XNOR-Net, ``alpha`` is the mean absolute value of each output
    filter's weights (over input channels and kernel positions), detached.
    Parameters ``weight`` (out x in x kh x kw) and ``bias`` are real and
    initialised like ``nn.Conv2d``.

    Args:
        in_channels, out_channels: channels in and out.
        kernel_size: an int or (height, width).
        stride, padding: as in ``nn.Conv2d``.
        bias: learn an additive bias.
        binarize_input: also binarize the input with :class:`SignSTE`.

    Example:
        >>> conv = BinaryConv2d(1, 2, 3, padding=1, bias=False)
        >>> with torch.no_grad():
        ...     _ = conv.weight[0].fill_(0.5), conv.weight[1].fill_(-2.0)
        >>> conv.alpha().flatten()
        tensor([0.5000, 2.0000])
        >>> conv(torch.ones(1, 1, 3, 3))[0, :, 1, 1]   # 9 taps of +0.5 and of -2
        tensor([  4.5000, -18.0000], grad_fn=<SelectBackward0>)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, binarize_input: bool = False):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_channels = check_int("out_channels", out_channels, low=1)
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(ks) != 2 or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                                   for k in ks):
            raise InvalidParameterError(f"kernel_size must be a positive int or a pair of them, "
                                        f"got {kernel_size!r}")
        self.kernel_size = ks
        self.stride = stride
        self.padding = padding
        self.binarize_input = bool(binarize_input)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *ks))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like ``nn.Conv2d``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def alpha(self) -> torch.Tensor:
        """Per-filter scale ``mean(|W|)``, shape (out, 1, 1, 1), no gradient."""
        return self.weight.detach().abs().mean(dim=(1, 2, 3), keepdim=True)

    def binary_weight(self) -> torch.Tensor:
        """The weight the layer computes with: ``alpha * sign(W)``."""
        return self.alpha() * SignSTE.apply(self.weight)

    def forward(self, x):
        check_tensor("BinaryConv2d input", x)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InvalidParameterError(
                f"BinaryConv2d expects input of shape (N x {self.in_channels} x H "
                f"x W), got {tuple(x.shape)}")
        if self.binarize_input:
            x = SignSTE.apply(x)
        return F.conv2d(x, self.binary_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"binarize_input={self.binarize_input}")


def binarized_mlp(in_features: int = 784, *, hidden: tuple = (512, 512), num_classes: int = 10,
                  binarize_activations: bool = True) -> nn.Sequential:
    """A binarized MLP: BNN (Courbariaux, Hubara et al. 2016) with XNOR-Net's weight scale.

    Every layer is a :class:`BinaryLinear` followed by ``BatchNorm1d``; hidden
    layers end with ``Hardtanh`` (whose output the next layer binarizes when
    ``binarize_activations``). The first layer sees the real-valued pixels, as
    in the paper; the last layer's batch norm gives the logits. Binary weights
    and activations, the clipped straight-through estimator, batch norm and
    latent weights clipped to [-1, 1] (:func:`clip_latent_weights`) are
    Courbariaux et al.'s BNN; the per-output weight scale ``alpha`` (mean
    ``|W|``) is XNOR-Net's (Rastegari et al. 2016), without its activation
    scale. With a batch norm after every layer, ``alpha`` nearly cancels.

    Args:
        in_features: inputs per example (784 for 28x28 images; inputs are flattened).
        hidden: widths of the hidden layers (a non-empty tuple of positive ints).
        num_classes: outputs.
        binarize_activations: binarize the input of every layer after the first.

    Returns:
        An ``nn.Sequential``; train it with ``pk.train.fit`` and, optionally,
        ``callbacks=[clip_latent_weights]``.

    Example:
        >>> model = binarized_mlp(hidden=(64,))
        >>> [type(m).__name__ for m in model]
        ['Flatten', 'BinaryLinear', 'BatchNorm1d', 'Hardtanh', 'BinaryLinear', 'BatchNorm1d']
        >>> model.eval()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    check_int("in_features", in_features, low=1)
    check_int("num_classes", num_classes, low=1)
    hidden = tuple(hidden) if isinstance(hidden, (tuple, list)) else hidden
    if not isinstance(hidden, tuple) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise InvalidParameterError(
            f"hidden must be a non-empty tuple of positive ints, got {hidden!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    widths = (in_features,) + hidden
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        layers += [BinaryLinear(n_in, n_out, bias=False,
                                binarize_input=binarize_activations and i > 0),
                   nn.BatchNorm1d(n_out), nn.Hardtanh()]
    layers += [BinaryLinear(widths[-1], num_classes, bias=False,
                            binarize_input=binarize_activations),
               nn.BatchNorm1d(num_classes)]
    return nn.Sequential(*layers)


@torch.no_grad()
def clip_latent_weights(model: nn.Module, iteration: int = 0, *, bound: float = 1.0) -> None:
    """Clamp the latent weights of every binary layer to [-bound, bound], in place.

    Latent weights beyond the STE window get no gradient, so without clipping
    they can drift away and never flip sign again. The signature fits
    ``pk.train.fit(..., callbacks=[clip_latent_weights])``.

    Example:
        >>> layer = BinaryLinear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.fill_(3.0)
        >>> clip_latent_weights(layer); layer.weight
        Parameter containing:
        tensor([[1., 1.]], requires_grad=True)
    """
    check_model(model)
    check_number("bound", bound, low=0, low_open=True)
    for module in model.modules():
        if isinstance(module, (BinaryLinear, BinaryConv2d)):
            module.weight.clamp_(-bound, bound)
