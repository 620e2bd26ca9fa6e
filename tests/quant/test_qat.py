"""pk.quant.qat: whole-model fake quantization, quantization-aware training, QAT vs PTQ."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruning_kit as pk
from pruning_kit import quant


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_fake_quantize_model_levels_and_copy(bits):
    torch.manual_seed(0)
    model = pk.models.lenet_300_100()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quant.fake_quantize_model(model, bits)
    for name, layer in pk.models.prunable(q):
        levels = [layer.weight[c].unique().numel() for c in range(layer.out_features)]
        assert max(levels) <= 2 ** bits
        assert torch.equal(layer.bias, getattr(model, name).bias)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    per_tensor = quant.fake_quantize_model(model, bits, per_channel=False, scheme="affine")
    assert per_tensor.fc1.weight.unique().numel() <= 2 ** bits


def test_fake_quantize_model_keeps_pruned_zeros():
    model = pk.prune.magnitude(pk.models.lenet_300_100(), 0.8)
    q = quant.fake_quantize_model(model, 3, scheme="symmetric")
    assert pk.prune.is_pruned(q.fc1)
    assert torch.equal(q.fc1.weight_mask, model.fc1.weight_mask)
    assert bool((q.fc1.weight[model.fc1.weight_mask == 0] == 0).all())
    assert q.fc1.weight[0].unique().numel() <= 7      # symmetric 3 bits: levels -3..3


def test_fake_quantize_model_errors():
    model = pk.models.lenet_300_100()
    for bits in (0, 9):
        with pytest.raises(ValueError, match=r"\[1, 8\]"):
            quant.fake_quantize_model(model, bits)
    with pytest.raises(ValueError, match=r"\[2, 8\]"):
        quant.fake_quantize_model(model, 1, scheme="symmetric")
    with pytest.raises(ValueError, match="scheme must be one of"):
        quant.fake_quantize_model(model, 4, scheme="log")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        quant.fake_quantize_model(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="calibration_data"):
        quant.fake_quantize_model(model, 4, activation_bits=4)


def test_qat_gradient_is_straight_through():
    layer = nn.Linear(4, 3)
    qat = quant.prepare_qat(layer, bits=2)
    x = torch.randn(5, 4)
    qat(x).pow(2).sum().backward()
    w_hat = qat.weight.detach().requires_grad_()
    F.linear(x, w_hat, qat.bias.detach()).pow(2).sum().backward()
    assert torch.allclose(qat.parametrizations.weight.original.grad, w_hat.grad)
    plain = quant.convert_qat(qat)
    assert isinstance(plain.weight, nn.Parameter)
    assert torch.equal(plain.weight, qat.weight.detach())
    assert plain.weight[0].unique().numel() <= 4
    with pytest.raises(ValueError, match="finalize"):
        quant.prepare_qat(pk.prune.magnitude(pk.models.lenet_300_100(), 0.5), 4)


def _small_mlp(hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def test_qat_beats_ptq_at_4_bits(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    model = _small_mlp()
    pk.train.fit(model, train, epochs=10, lr=2e-3, seed=0, progress=False)
    table = quant.qat_vs_ptq(model, train, test, bits=(4,))
    row = table.iloc[0]
    assert row.qat_accuracy > row.ptq_accuracy
    assert row.qat_accuracy > 0.85
