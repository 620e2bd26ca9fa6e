"""pk.quant.parametrization: finding the parametrization a layer computes with, baking it in."""

import torch
from torch import nn
from torch.nn.utils import parametrize

import pruning_kit as pk
from pruning_kit import quant
from pruning_kit.quant import parametrization


def test_find_returns_the_parametrization_of_the_kind_asked_for():
    layer = nn.Linear(3, 2)
    assert parametrization.find_parametrization(layer, quant.FakeQuantizer) is None
    fake = quant.FakeQuantizer(2)
    parametrize.register_parametrization(layer, "weight", fake)
    assert parametrization.find_parametrization(layer, quant.FakeQuantizer) is fake
    assert parametrization.find_parametrization(layer, quant.SharedWeight) is None
    assert parametrization.find_parametrization(layer, quant.FakeQuantizer, name="bias") is None


def test_a_baked_copy_holds_the_computed_values_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = quant.prepare_qat(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), 2)
    computed = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    plain = parametrization.baked_copy(model, quant.FakeQuantizer)
    for layer, values in zip((plain[0], plain[2]), computed):
        assert not parametrize.is_parametrized(layer, "weight")
        assert isinstance(layer.weight, nn.Parameter) and torch.equal(layer.weight, values)
    # the original still computes through its quantizers, on its latent weights
    assert parametrize.is_parametrized(model[0], "weight")
    x = torch.randn(5, 4)
    assert torch.equal(model(x), plain(x))


def test_only_layers_parametrized_by_that_kind_alone_are_baked():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    parametrize.register_parametrization(model[0], "weight", quant.FakeQuantizer(2))
    parametrize.register_parametrization(model[1], "weight", quant.FakeQuantizer(2))
    parametrize.register_parametrization(model[1], "weight", nn.Identity())
    plain = parametrization.baked_copy(model, quant.FakeQuantizer)
    assert not parametrize.is_parametrized(plain[0], "weight")
    assert parametrize.is_parametrized(plain[1], "weight")       # mixed: left as it was
    both = parametrization.baked_copy(model, (quant.FakeQuantizer, nn.Identity))
    assert not parametrize.is_parametrized(both[1], "weight")


def test_pruned_and_parametrized_models_are_copied_too():
    model = pk.prune.magnitude(pk.models.lenet_300_100(), 0.5)
    model(torch.zeros(1, 784))                     # a pruned model that ran: deepcopy would fail
    twin = parametrization.baked_copy(model, quant.FakeQuantizer)
    assert pk.prune.is_pruned(twin.fc1) and twin.fc1 is not model.fc1
    assert torch.equal(twin.fc1.weight_mask, model.fc1.weight_mask)
