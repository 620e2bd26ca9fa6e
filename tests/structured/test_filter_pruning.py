"""pk.structured.l1_filter_prune: the glue. Autoencoders, training the result, verification,
per-layer ratios, and bad input refused without touching the model."""

import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X, MNIST_X, same_state, state


def test_autoencoder_encoder_only_and_both():
    x = torch.rand(2, 1, 28, 28)
    ae = pk.models.autoencoder()
    enc = st.l1_filter_prune(ae, 0.0, x, ratios={"encoder": 0.65})
    assert [m.out_channels for m in enc.encoder if isinstance(m, nn.Conv2d)] == [6, 11, 3]
    assert enc.decoder[0].in_channels == 3 and enc.decoder[0].out_channels == 32
    both = st.l1_filter_prune(ae, 0.0, x, ratios={"encoder": 0.65, "decoder": 0.65})
    assert both.encoder[4].out_channels == 3
    assert [both.decoder[i].out_channels for i in (0, 2, 4)] == [11, 6, 1]   # output layer kept
    assert both(x).shape == x.shape and enc(x).shape == x.shape


def test_pruned_model_trains(mnist5k):
    train, test = mnist5k
    small_train = pk.data.subset(train, 800, seed=0)
    torch.manual_seed(0)
    model = pk.models.lenet5()
    pk.train.fit(model, small_train, epochs=1, lr=2e-3, progress=False)
    small = st.l1_filter_prune(model, 0.5, MNIST_X)
    before = pk.train.evaluate_loss(small, test)
    history = pk.train.fit(small, small_train, epochs=2, lr=1e-3, progress=False)
    assert all(p.grad is not None for p in small.parameters())
    assert pk.train.evaluate_loss(small, test) < before
    assert history.loss[-1] < history.loss[0]
    assert pk.train.evaluate(small, test) > 0.8


def test_verify_catches_a_layer_that_does_not_map_zero_to_zero():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="map 0 to 0"):
        st.l1_filter_prune(model, 0.5, x)
    small = st.l1_filter_prune(model, 0.5, x, verify=False)
    assert small[2].in_channels == 2 and small[4].in_features == 2 * 16   # 4x4 map per channel


@pytest.mark.parametrize("kwargs, error, match", [
    ({"ratio": 1.0}, ValueError, r"ratio must be a number in \[0, 1\)"),
    ({"ratio": -0.1}, ValueError, r"ratio must be a number in \[0, 1\)"),
    ({"ratio": True}, ValueError, "ratio must be"),
    ({"ratios": {"conv9": 0.5}}, ValueError, "not a prunable conv.*conv1"),
    ({"ratios": {"fc2": 0.5}}, ValueError, "output layer|not a prunable conv"),
    ({"ratios": {"conv1": 1.5}}, ValueError, r"ratios\['conv1'\]"),
    ({"ratios": [0.5]}, TypeError, "ratios must be a dict"),
    ({"importance": "l3"}, ValueError, "importance must be one of"),
    ({"backend": "magic"}, ValueError, "backend must be one of"),
    ({"example_input": None}, ValueError, "example_input is required"),
    ({"example_input": torch.zeros(1, 3, 32, 32)}, ValueError, "model.example_input. failed"),
    ({"ignored_layers": ["nope"]}, ValueError, "ignored_layers"),
])
def test_bad_input_is_refused_and_model_untouched(kwargs, error, match):
    model = pk.models.lenet5()
    saved = state(model)
    args = {"ratio": 0.5, "example_input": MNIST_X, **kwargs}
    with pytest.raises(error, match=match):
        st.l1_filter_prune(model, **args)
    assert same_state(model, saved)


def test_unsupported_models_are_refused():
    model = pk.models.lenet_300_100()
    saved = state(model)
    with pytest.raises(ValueError, match="no (prunable )?conv layers"):
        st.l1_filter_prune(model, 0.5, MNIST_X)
    assert same_state(model, saved)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        st.l1_filter_prune("vgg", 0.5, CIFAR_X)
    masked = pk.models.lenet5()
    tprune.l1_unstructured(masked.conv1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="finalize"):
        st.l1_filter_prune(masked, 0.5, MNIST_X)
    lstm = nn.LSTM(4, 4)
    with pytest.raises(ValueError, match="example_input|no conv|Torch-Pruning"):
        st.l1_filter_prune(lstm, 0.5, torch.zeros(2, 3, 4))
