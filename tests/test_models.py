import pytest
import torch

import pruning_kit as pk


@pytest.mark.parametrize("factory, expected", [
    (pk.models.lenet_300_100, 266_610),    # Han et al. 2015, LeCun et al. 1998
    (pk.models.lenet5, 431_080),           # LeNet-5-Caffe
    (lambda: pk.models.conv(2), 4_301_642),  # Frankle & Carbin 2019: 4.3M
    (lambda: pk.models.conv(4), 2_425_930),  # 2.4M
    (lambda: pk.models.resnet(20), 272_474),  # He et al. 2016: 0.27M
    (lambda: pk.models.resnet(56), 855_770),  # 0.85M
])
def test_parameter_counts_match_papers(factory, expected):
    assert pk.metrics.count_params(factory()) == expected


@pytest.mark.parametrize("factory, shape", [
    (pk.models.lenet_300_100, (2, 1, 28, 28)),
    (pk.models.lenet5, (2, 1, 28, 28)),
    (lambda: pk.models.conv(6), (2, 3, 32, 32)),
    (lambda: pk.models.vgg(11, width=0.25), (2, 3, 32, 32)),
    (lambda: pk.models.vgg(16, width=0.25, in_channels=1, image_size=28), (2, 1, 28, 28)),
    (lambda: pk.models.resnet(20), (2, 3, 32, 32)),
])
def test_models_produce_logits(factory, shape):
    assert factory()(torch.zeros(shape)).shape == (2, 10)


def test_autoencoder_reconstructs_input_shape():
    ae = pk.models.autoencoder()
    assert ae(torch.rand(3, 1, 28, 28)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("factory, bad, expected", [
    (pk.models.lenet_300_100, (2, 3, 32, 32), r"N x 784\) or \(N x 1 x 28 x 28"),
    (pk.models.lenet5, (2, 1, 32, 32), r"N x 1 x 28 x 28"),
    (lambda: pk.models.vgg(16, width=0.25), (2, 1, 28, 28), r"N x 3 x 32 x 32"),
    (pk.models.resnet, (2, 3, 28, 28), r"N x 3 x 32 x 32"),
])
def test_wrong_input_shape_says_expected_shape(factory, bad, expected):
    with pytest.raises(ValueError, match=expected):
        factory()(torch.zeros(bad))


@pytest.mark.parametrize("call, message", [
    (lambda: pk.models.vgg(13), "VGG depth must be one of"),
    (lambda: pk.models.vgg(16, width=0), "width must be a positive number"),
    (lambda: pk.models.resnet(21), "6n\\+2"),
    (lambda: pk.models.conv(3), "Conv depth must be one of 2, 4, 6"),
    (lambda: pk.models.lenet_300_100(num_classes=0), "num_classes must be a positive int"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_prunable_lists_linear_and_conv_in_order():
    names = [n for n, _ in pk.models.prunable(pk.models.vgg(11, width=0.25))]
    assert names[0] == "features.0" and names[-1] == "classifier" and len(names) == 9
    assert pk.models.prunable(torch.nn.ReLU()) == []
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pk.models.prunable("lenet")
