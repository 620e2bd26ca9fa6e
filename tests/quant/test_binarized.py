"""pk.quant.binarized: sign, the straight-through estimator, XNOR-scaled binary layers, the
binarized MLP."""

import pytest
import torch
import torch.nn.functional as F

import pruning_kit as pk
from pruning_kit import quant


def test_binarize_sign_of_zero_and_dtype():
    for dtype in (torch.float32, torch.float64, torch.float16):
        out = quant.binarize(torch.tensor([-2.0, -0.0, 0.0, 1e-3, -1e-3], dtype=dtype))
        assert out.dtype == dtype
        assert out.tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0]


def test_sign_ste_gradient_mask():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 1.0, 1.0001, 2.0], requires_grad=True)
    upstream = torch.arange(1.0, 8.0)
    y = quant.SignSTE.apply(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.backward(upstream)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]   # |x| <= 1 passes


def test_binary_linear_follows_design():
    torch.manual_seed(0)
    layer = quant.BinaryLinear(6, 3)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (3, 6) and layer.bias.shape == (3,)
    assert quant.BinaryLinear(6, 3, bias=False).bias is None
    with torch.no_grad():
        layer.weight.mul_(4)          # some latent weights beyond the STE window
    x = torch.randn(5, 6)
    alpha = layer.weight.detach().abs().mean(dim=1, keepdim=True)
    assert torch.allclose(layer.alpha(), alpha)
    expected = F.linear(x, alpha * torch.where(layer.weight >= 0, 1.0, -1.0), layer.bias)
    out = layer(x)
    assert torch.allclose(out, expected)
    out.sum().backward()
    # alpha is a constant: dL/dW = (dL/dW_b) * alpha * (|W| <= 1)
    grad_wb = torch.ones(5, 3).T @ x
    manual = grad_wb * alpha * (layer.weight.detach().abs() <= 1)
    assert torch.allclose(layer.weight.grad, manual)
    assert bool((layer.weight.grad[layer.weight.detach().abs() > 1] == 0).all())


def test_binary_linear_binarized_input():
    layer = quant.BinaryLinear(4, 2, binarize_input=True)
    x = torch.tensor([[0.3, -0.2, 0.0, 5.0]])
    expected = F.linear(torch.tensor([[1.0, -1.0, 1.0, 1.0]]), layer.binary_weight(), layer.bias)
    assert torch.allclose(layer(x), expected)


def test_binary_conv_xnor_scaling():
    torch.manual_seed(0)
    conv = quant.BinaryConv2d(3, 4, 3, padding=1)
    alpha = conv.weight.detach().abs().mean(dim=(1, 2, 3))
    assert torch.allclose(conv.alpha().flatten(), alpha)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, alpha.reshape(4, 1, 1, 1) * torch.sign(conv.weight), conv.bias,
                        padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    both = quant.BinaryConv2d(3, 4, 3, binarize_input=True)
    assert torch.allclose(both(x), F.conv2d(quant.binarize(x), both.binary_weight(), both.bias))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        conv(torch.randn(2, 2, 8, 8))


def test_binary_layer_errors():
    with pytest.raises(ValueError, match="in_features"):
        quant.BinaryLinear(0, 3)
    with pytest.raises(ValueError, match="expects input of shape"):
        quant.BinaryLinear(4, 2)(torch.randn(3, 5))
    with pytest.raises(ValueError, match="hidden"):
        quant.binarized_mlp(hidden=())
    with pytest.raises(TypeError, match="real numbers"):
        quant.binarize(torch.tensor([True, False]))


def test_binarized_mlp_learns_mnist5k(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    model = quant.binarized_mlp(hidden=(256,))
    pk.train.fit(model, train, epochs=5, lr=1e-3, seed=0, progress=False,
                 callbacks=[quant.clip_latent_weights])
    assert float(model[1].weight.detach().abs().max()) <= 1.0
    assert pk.train.evaluate(model, test) >= 0.85


def test_binary_approximation_is_the_best_scaled_sign():
    # XNOR-Net: among alpha * B with B in {-1, +1}, sign(x) and mean |x| minimise the error
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    approx = quant.binary_approximation(x)
    alpha = x.abs().mean()
    assert torch.allclose(approx, alpha * quant.binarize(x))
    for other in (0.9 * alpha, 1.1 * alpha):
        assert (x - approx).norm() < (x - other * quant.binarize(x)).norm()
    flipped = approx.clone()
    flipped[0, 0] = -flipped[0, 0]
    assert (x - approx).norm() < (x - flipped).norm()
    per_row = quant.binary_approximation(x, dim=0)
    assert torch.allclose(per_row.abs(), x.abs().mean(1, keepdim=True).expand_as(x))
    assert torch.equal(per_row >= 0, x >= 0)
    # per channel along the filters of a conv weight, as BinaryConv2d computes with
    conv = quant.BinaryConv2d(3, 4, 3)
    assert torch.allclose(quant.binary_approximation(conv.weight, dim=0), conv.binary_weight())
    assert quant.binary_approximation(conv.weight).requires_grad is False   # a new tensor
    assert quant.binary_approximation(x.double()).dtype == torch.float64


def test_binary_approximation_refuses_bad_input():
    with pytest.raises(ValueError, match="dim must be an int"):
        quant.binary_approximation(torch.ones(2, 3), dim=2)
    with pytest.raises(TypeError, match="floating"):
        quant.binary_approximation(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty|at least one"):
        quant.binary_approximation(torch.ones(0))
