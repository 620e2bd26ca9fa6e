"""pk.quant.int8_runtime: real int8 kernels on the CPU, static for convolutions, with a fallback."""

import warnings

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit import quant


def test_int8_lenet_accuracy_within_half_a_point(trained_lenet, mnist5k):
    train, test = mnist5k
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # students see no deprecation notices
        fast = quant.int8(trained_lenet, train)
        fast(test.images[:4])
    assert fast.int8_method == "dynamic"
    assert "Quantized" in fast.fc1._get_name()
    assert abs(pk.train.evaluate(fast, test) - pk.train.evaluate(trained_lenet, test)) <= 0.005
    assert isinstance(trained_lenet.fc1, nn.Linear) and trained_lenet.fc1.weight.dtype == \
        torch.float32


def test_int8_static_for_convolutions_and_fallback(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)
    lenet5 = pk.models.lenet5().eval()
    fast = quant.int8(lenet5, pk.data.subset(train, 200))
    assert fast.int8_method == "static"
    with torch.no_grad():
        ref, out = lenet5(test.images[:64]), fast(test.images[:64])
    assert (ref.argmax(1) == out.argmax(1)).float().mean() > 0.9
    resnet = pk.models.resnet(20, in_channels=1, image_size=28)
    with pytest.warns(UserWarning, match="static int8 quantization failed"):
        fallback = quant.int8(resnet, test.images[:32])
    assert fallback.int8_method == "dynamic"
    with pytest.raises(ValueError, match="no quantized kernel"):
        quant.int8(resnet, test.images[:32], method="static")


def test_int8_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        quant.int8(pk.models.lenet_300_100(), method="fp8")
    with pytest.raises(ValueError, match="needs calibration_data"):
        quant.int8(pk.models.lenet5(), method="static")
    with pytest.raises(ValueError, match="has none"):
        quant.int8(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(TypeError, match="calibration_data must be"):
        quant.int8(pk.models.lenet_300_100(), 3)
