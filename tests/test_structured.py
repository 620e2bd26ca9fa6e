"""Structured (filter) pruning: the cut is exact, the model trains, coupled nets go through
Torch-Pruning, bad input is refused without touching the model."""

import warnings

import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st

MNIST_X = torch.zeros(1, 1, 28, 28)
CIFAR_X = torch.zeros(1, 3, 32, 32)


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model, saved):
    now = model.state_dict()
    return now.keys() == saved.keys() and all(torch.equal(now[k], saved[k]) for k in saved)


def zero_filters(conv, idx, bn=None):
    """Make filters exactly zero: their weights and bias, and the BatchNorm's output for them."""
    with torch.no_grad():
        conv.weight[idx] = 0
        if conv.bias is not None:
            conv.bias[idx] = 0
        if bn is not None:   # eval-mode BatchNorm of a zero channel gives bias - mean*w/std
            bn.bias[idx] = 0
            bn.running_mean[idx] = 0


def randomize_batchnorm(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


# ---------------------------------------------------------------------------- scoring

def test_l1_scores_and_order_by_hand():
    w = torch.zeros(4, 2, 1, 1)
    w[0] = 3.0    # L1 6
    w[1, 0] = -1  # L1 1
    w[2] = 0.5    # L1 1 (tie with filter 1: stable order keeps 1 first)
    w[3, 1] = 2   # L1 2
    assert st.l1_filter_scores(w).tolist() == [6.0, 1.0, 1.0, 2.0]
    assert st.l1_filter_order(w).tolist() == [1, 2, 3, 0]


def test_select_filters_removes_the_lowest_l1():
    model = pk.models.lenet5()
    zero_filters(model.conv1, [3, 7, 11])
    removed = st.select_filters(model, 3 / 20, MNIST_X)
    # 3 of 20 filters go in conv1: exactly the three zero ones
    assert removed["conv1"].tolist() == [3, 7, 11]
    assert len(removed["conv2"]) == round(3 / 20 * 50)


def test_reading_weights_and_next_layer_scores_by_hand():
    # a conv reading 3 channels: channel c's score is the L1 of conv[:, c]
    conv = torch.zeros(2, 3, 1, 1)
    conv[0, 0], conv[1, 0], conv[1, 2] = 1.0, -2.0, 0.5
    assert st.next_layer_scores(conv, 3).tolist() == [3.0, 0.0, 0.5]
    assert st.next_layer_scores(conv, 3, importance="l2").tolist() == pytest.approx(
        [5 ** 0.5, 0.0, 0.5])
    # a Linear after flattening 2 channels of 3 positions: columns 0-2 and 3-5
    fc = torch.tensor([[1., 1., 1., 0., 0., 2.], [0., 0., -1., 0., 0., 0.]])
    assert st.reading_weights(fc, 2).shape == (2, 2, 3)
    assert st.next_layer_scores(fc, 2).tolist() == [4.0, 2.0]
    # a transposed conv stores in x out x kh x kw: channel c is its slice [c]
    deconv = torch.zeros(3, 2, 1, 1)
    deconv[1] = 4.0
    assert st.next_layer_scores(deconv, 3, transposed=True).tolist() == [0.0, 8.0, 0.0]
    with pytest.raises(ValueError, match="channels must be a positive int that divides"):
        st.reading_weights(fc, 4)


def test_select_filters_by_the_next_layer_removes_the_channels_it_reads_least():
    model = pk.models.lenet5()
    with torch.no_grad():
        model.conv2.weight[:, [2, 5, 9]] = 0          # conv2 never reads conv1's channels 2, 5, 9
        model.conv1.weight[[2, 5, 9]] *= 100          # ... though their filters are the largest
    by_filter = st.select_filters(model, 3 / 20, MNIST_X)
    by_reader = st.select_filters(model, 3 / 20, MNIST_X, score_by="next_layer")
    assert by_reader["conv1"].tolist() == [2, 5, 9]
    assert not set(by_filter["conv1"].tolist()) & {2, 5, 9}
    # conv2's channels are read by fc1, 16 columns each (4 x 4 after pooling)
    expected = st.next_layer_scores(model.fc1.weight, 50).argsort(stable=True)[:round(0.15 * 50)]
    assert by_reader["conv2"].tolist() == sorted(expected.tolist())
    small = st.l1_filter_prune(model, 3 / 20, MNIST_X, score_by="next_layer")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():   # removing channels conv2 never reads changes nothing downstream
        reference = st.l1_filter_prune(model, 0.0, MNIST_X, ratios={"conv1": 3 / 20},
                                       score_by="next_layer")
        assert torch.allclose(reference(x), model(x), atol=1e-5)
    assert small.conv1.out_channels == 17


def test_greedy_scoring_leaves_out_the_kernels_of_removed_channels():
    # Li et al. 2017, §3.3: conv2's filter 0 is large only through the kernels that read conv1's
    # channel 0; once that channel is removed, greedy scoring ranks filter 0 lowest
    model = pk.models.lenet5()
    with torch.no_grad():
        model.conv1.weight[0] = 0                      # conv1 loses filter 0 first
        model.conv2.weight[0] = 0
        model.conv2.weight[0, 0] = 10.0                # filter 0 reads only channel 0, strongly
    ratios = {"conv1": 1 / 20, "conv2": 1 / 50}        # one filter of each
    independent = st.select_filters(model, 0.0, MNIST_X, ratios=ratios)
    greedy = st.select_filters(model, 0.0, MNIST_X, ratios=ratios, strategy="greedy")
    assert independent["conv1"].tolist() == greedy["conv1"].tolist() == [0]
    assert independent["conv2"].tolist() != [0]
    assert greedy["conv2"].tolist() == [0]
    # both strategies give the same choice when nothing upstream is removed
    same = st.select_filters(model, 0.0, MNIST_X, ratios={"conv2": 0.1}, strategy="greedy")
    assert same["conv2"].tolist() == st.select_filters(model, 0.0, MNIST_X,
                                                       ratios={"conv2": 0.1})["conv2"].tolist()


def test_scoring_choices_are_checked():
    model = pk.models.lenet5()
    with pytest.raises(ValueError, match="score_by must be one of"):
        st.select_filters(model, 0.5, MNIST_X, score_by="next")
    with pytest.raises(ValueError, match="strategy must be one of"):
        st.l1_filter_prune(model, 0.5, MNIST_X, strategy="lazy")
    with pytest.raises(ValueError, match="implemented for plain stacks"):
        st.l1_filter_prune(pk.models.resnet(20), 0.5, CIFAR_X, score_by="next_layer")


# ---------------------------------------------------------------------------- exactness

@pytest.mark.parametrize("make, x", [
    (lambda: pk.models.lenet5(), torch.rand(3, 1, 28, 28)),
    (lambda: pk.models.conv(4, in_channels=1, image_size=28), torch.rand(3, 1, 28, 28)),
    (lambda: pk.models.vgg(11, width=0.25), torch.rand(3, 3, 32, 32)),
])
def test_pruning_zero_filters_keeps_outputs(make, x):
    """Removing filters that were exactly zero changes nothing: the pruned model equals the
    dense model, and each pruned feature map equals the dense one restricted to kept channels."""
    torch.manual_seed(0)
    dense = make().eval()
    randomize_batchnorm(dense)
    units = st.channel_units(dense, x)
    for unit in units:
        if unit.prunable:
            idx = list(range(0, unit.channels, 2))   # half the filters, every other one
            zero_filters(unit.producer, idx, unit.batchnorm)
    small = st.l1_filter_prune(dense, 0.5, x, verify=False).eval()
    with torch.no_grad():
        assert torch.allclose(dense(x), small(x), atol=1e-5)
    # the feature maps: kept channels of the dense model are the pruned model's channels
    for unit in units:
        if not unit.prunable:
            continue
        keep = torch.arange(1, unit.channels, 2)
        feats = {}
        d_mod = dict(dense.named_modules())[unit.last_name]
        s_mod = dict(small.named_modules())[unit.last_name]
        h1 = d_mod.register_forward_hook(lambda m, i, o: feats.__setitem__("dense", o))
        h2 = s_mod.register_forward_hook(lambda m, i, o: feats.__setitem__("small", o))
        with torch.no_grad():
            dense(x), small(x)
        h1.remove(), h2.remove()
        assert feats["small"].shape[1] == len(keep)
        assert torch.allclose(feats["dense"][:, keep], feats["small"], atol=1e-5), unit.name


def test_alpha_zero_mask_equals_the_cut_model_with_batchnorm():
    """The alpha mask sits after BatchNorm: at alpha = 0 the masked model and the cut one agree
    even when the removed filters are not zero."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    model = pk.models.vgg(11, width=0.25).eval()
    randomize_batchnorm(model)
    removed = st.select_filters(model, 0.5, x)
    small = st.remove_filters(model, removed, x).eval()
    mask = st.mask_filters(model, removed, x, alpha=0.0)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
        mask.alpha = 1.0
        unmasked = model(x)
    mask.remove()
    with torch.no_grad():
        assert torch.equal(unmasked, model(x))   # alpha 1 is the untouched model


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


# ---------------------------------------------------------------------------- training

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


# ---------------------------------------------------------------------------- coupled nets

def test_resnet20_goes_through_torch_pruning():
    model = pk.models.resnet(20)
    saved = state(model)
    assert not st.is_plain_stack(model, CIFAR_X)
    small = st.l1_filter_prune(model, 0.5, CIFAR_X)
    assert same_state(model, saved)                      # the original is untouched
    x = torch.rand(4, 3, 32, 32)
    assert small(x).shape == (4, 10)
    rep = st.report(model, small, CIFAR_X)
    assert rep.params_after < 0.5 * rep.params_before
    assert rep.macs_ratio > 2
    assert small.fc.out_features == 10                  # the classifier keeps its classes
    # coupled channels stay consistent: every block's add has matching widths
    for block in [*small.layer1, *small.layer2, *small.layer3]:
        assert block.conv2.out_channels == block.bn2.num_features


def test_resnet_with_custom_importance_and_plain_backend_error():
    model = pk.models.resnet(20)
    l1 = st.l1_filter_prune(model, 0.5, CIFAR_X)
    for importance in ("random", lambda w: w.abs().flatten(1).sum(1)):   # wrapped for Torch-Pruning
        small = st.l1_filter_prune(model, 0.5, CIFAR_X, importance=importance)
        assert small(CIFAR_X).shape == (1, 10)
        assert [p.shape for p in small.parameters()] == [p.shape for p in l1.parameters()]
    random_pick = st.l1_filter_prune(model, 0.5, CIFAR_X, importance="random")
    assert not torch.equal(l1.conv1.weight, random_pick.conv1.weight)   # other filters kept
    with pytest.raises(st.NotPlainStackError, match="residual|joins branches"):
        st.l1_filter_prune(model, 0.5, CIFAR_X, backend="plain")


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)))


def test_plain_stack_detection():
    assert st.is_plain_stack(pk.models.conv(2), CIFAR_X)
    assert not st.is_plain_stack(Concat(), torch.zeros(1, 1, 8, 8))
    with pytest.raises(st.NotPlainStackError, match="more than once"):
        st.channel_units(Reused(), torch.zeros(1, 4, 8, 8))
    # the concatenating model is still pruned, by Torch-Pruning
    small = st.l1_filter_prune(Concat(), 0.5, torch.zeros(1, 1, 8, 8))
    assert small(torch.zeros(1, 1, 8, 8)).shape == (1, 2, 8, 8)


def test_verify_catches_a_layer_that_does_not_map_zero_to_zero():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="map 0 to 0"):
        st.l1_filter_prune(model, 0.5, x)
    small = st.l1_filter_prune(model, 0.5, x, verify=False)
    assert small[2].in_channels == 2 and small[4].in_features == 2 * 16   # 4x4 map per channel


# ---------------------------------------------------------------------------- ratios, report

def test_non_uniform_ratios_and_report():
    model = pk.models.vgg(11, width=0.25)
    small = st.l1_filter_prune(model, 0.5, CIFAR_X, ratios={"features.0": 0.25, "features.4": 0.0})
    widths = [m.out_channels for m in small.features if isinstance(m, nn.Conv2d)]
    assert widths == [12, 32, 32, 32, 64, 64, 64, 64]   # dense: 16, 32, 64, 64, 128, ...
    assert small.classifier.in_features == 64
    rep = st.report(model, small, CIFAR_X)
    assert rep.channels["features.0"] == (16, 12)
    assert rep.params_before == pk.metrics.count_params(model)
    assert rep.macs_after == pk.metrics.macs(small, CIFAR_X)
    assert 0 < rep.macs_removed < 1 and rep.params_ratio > 1
    frame = rep.frame()
    assert list(frame.layer)[:2] == ["features.0", "features.4"]
    assert "MACs" in str(rep)


def test_uniform_half_of_vgg16_cuts_macs_about_4x():
    x = CIFAR_X
    rep = st.report(pk.models.vgg(16), st.l1_filter_prune(pk.models.vgg(16), 0.5, x), x)
    assert 3.9 < rep.macs_ratio < 4.0 and 3.9 < rep.params_ratio < 4.1


# ---------------------------------------------------------------------------- bad input

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


def test_remove_filters_rejects_bad_indices():
    model = pk.models.lenet5()
    with pytest.raises(ValueError, match="outside 0..19"):
        st.remove_filters(model, {"conv1": [20]}, MNIST_X)
    with pytest.raises(ValueError, match="all 20 filters"):
        st.remove_filters(model, {"conv1": list(range(20))}, MNIST_X)
    with pytest.raises(ValueError, match="not a prunable conv"):
        st.remove_filters(model, {"fc1": [0]}, MNIST_X)


# ---------------------------------------------------------------------------- alpha schedule

def test_alpha_schedules_by_hand():
    assert [st.AlphaSchedule("step", 0.1)(k) for k in (0, 5, 10, 11)] == [1.0, 0.5, 0.0, 0.0]
    e = st.AlphaSchedule("exponential", rate=1.0)
    assert e(1) == pytest.approx(0.36787944) and e(5) == 0.0   # exp(-5) < 0.01 counts as 0
    m = st.AlphaSchedule("multiplicative", rate=0.5)
    assert [m(k) for k in range(4)] == [1.0, 0.5, 0.25, 0.125]
    assert m.steps_to_zero() == 7   # 0.5**7 < 0.01
    for bad in (dict(kind="linear"), dict(rate=0), dict(kind="step", rate=2), dict(every=0)):
        with pytest.raises(ValueError):
            st.AlphaSchedule(**bad)


def test_alpha_prune_fades_then_cuts(mnist5k):
    train, _ = mnist5k
    data = pk.data.subset(train, 256, seed=0)
    model = pk.models.lenet5()
    saved = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # alpha reaches 0 before the end: no warning
        result = st.alpha_prune(model, 0.5, MNIST_X, data, schedule="step", rate=0.5, epochs=3,
                                batch_size=128)
    assert result.alphas == [1.0, 0.5, 0.0]
    assert same_state(model, saved)
    one_shot = st.l1_filter_prune(model, 0.5, MNIST_X)
    assert pk.metrics.count_params(result.model) == pk.metrics.count_params(one_shot)
    with pytest.warns(UserWarning, match="alpha was still"):
        st.alpha_prune(model, 0.5, MNIST_X, data, schedule=st.AlphaSchedule("step", 0.1),
                       epochs=1, batch_size=128)


def test_iterative_reaches_the_same_size_and_comparison_runs(mnist5k):
    train, test = mnist5k
    data, held = pk.data.subset(train, 200, seed=0), pk.data.subset(test, 200, seed=0)
    x = torch.rand(1, 1, 28, 28)
    ae = pk.models.autoencoder()
    frame = st.compare_alpha_iterative(ae, data, held, 0.0, x, ratios={"encoder": 0.65},
                                       epochs=2, steps=2, loss="reconstruction",
                                       schedules=[st.AlphaSchedule("step", 0.5)])
    assert list(frame.metric.unique()) == ["mse"]
    assert frame.params.iloc[1:].nunique() == 1 and frame.params.iloc[1] < frame.params.iloc[0]
    assert frame.score.gt(0).all()
    it = st.iterative_filter_prune(ae, 0.0, x, data, ratios={"encoder": 0.65, "decoder": 0.65},
                                   steps=3, loss="reconstruction")
    one = st.l1_filter_prune(ae, 0.0, x, ratios={"encoder": 0.65, "decoder": 0.65})
    assert [p.shape for p in it.model.parameters()] == [p.shape for p in one.parameters()]
    assert len(it.histories) == 3
    with pytest.raises(ValueError, match="multiple of steps"):
        st.compare_alpha_iterative(ae, data, held, 0.5, x, epochs=3, steps=2)


# ----------------------------------------------------------------------------- MAC budgets

@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("target", [0.2, 0.4, 0.6])
def test_mac_budgets_are_met_to_within_one_filter(target, uniform):
    # the share removed is the closest the filter granularity allows: no achievable cut is nearer
    torch.manual_seed(0)
    model = pk.models.vgg(11, width=0.25)
    saved = state(model)
    ratios = st.macs_target_ratios(model, target, CIFAR_X, uniform=uniform)
    assert same_state(model, saved)
    small = st.l1_filter_prune(model, 0.0, CIFAR_X, ratios=ratios)
    dense = pk.metrics.macs(model, CIFAR_X)
    removed = 1 - pk.metrics.macs(small, CIFAR_X) / dense
    assert abs(removed - target) < 0.02
    if uniform:
        assert len(set(ratios.values())) == 1
        step = st.l1_filter_prune(model, list(ratios.values())[0] + 1 / 16, CIFAR_X)
        assert abs(1 - pk.metrics.macs(step, CIFAR_X) / dense - target) >= abs(removed - target)
    else:
        assert len(set(ratios.values())) > 1


def test_mac_budget_removes_the_lowest_normalised_scores_first():
    # two convs whose filter norms differ by a constant factor: normalised by the layer mean
    # they tie, so neither layer is spared because its weights are larger
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    with torch.no_grad():
        for i, conv in enumerate((model[0], model[2])):
            conv.weight.copy_(torch.arange(1.0, 5.0).reshape(4, 1, 1, 1)
                              * torch.ones_like(conv.weight) * 10 ** i)
    x = torch.zeros(1, 1, 8, 8)
    ratios = st.macs_target_ratios(model, 0.3, x)
    assert ratios["0"] > 0 and ratios["2"] > 0
    assert st.macs_target_ratios(model, 0.0, x) == {"0": 0.0, "2": 0.0}
    with pytest.warns(UserWarning, match="largest cut"):
        most = st.macs_target_ratios(model, 0.999, x)
    assert most == {"0": 0.75, "2": 0.75}       # one filter always stays


def test_mac_budget_bad_arguments():
    with pytest.raises(ValueError, match="macs_removed must be"):
        st.macs_target_ratios(pk.models.lenet5(), 1.0, MNIST_X)
    with pytest.raises(TypeError, match="uniform must be True or False"):
        st.macs_target_ratios(pk.models.lenet5(), 0.5, MNIST_X, uniform="yes")
    with pytest.raises(st.NotPlainStackError):
        st.macs_target_ratios(pk.models.resnet(20), 0.5, CIFAR_X)


# ----------------------------------------------------------------------------- frozen alpha

def test_alpha_prune_can_freeze_the_pretrained_weights(mnist5k):
    train, _ = mnist5k
    data = pk.data.subset(train, 256, seed=0)
    model = pk.models.lenet5()
    frozen = st.alpha_prune(model, 0.5, MNIST_X, data, rate=0.5, epochs=3, batch_size=128,
                            freeze_pretrained=True)
    updated = st.alpha_prune(model, 0.5, MNIST_X, data, rate=0.5, epochs=3, batch_size=128)
    keep1 = torch.tensor([i for i in range(20) if i not in frozen.removed["conv1"].tolist()])
    keep2 = torch.tensor([i for i in range(50) if i not in frozen.removed["conv2"].tolist()])
    # frozen: the kept weights are the trained ones, sliced; only biases moved
    assert torch.equal(frozen.model.conv1.weight, model.conv1.weight[keep1])
    assert torch.equal(frozen.model.conv2.weight, model.conv2.weight[keep2][:, keep1])
    assert not torch.equal(frozen.model.conv1.bias, model.conv1.bias[keep1])
    # updated (the default): the weights learn too
    assert not torch.equal(updated.model.conv1.weight, model.conv1.weight[keep1])
    assert all(p.requires_grad for p in frozen.model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    no_bias = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(), nn.Flatten(),
                            nn.Linear(4 * 26 * 26, 10, bias=False))
    with pytest.raises(ValueError, match="nothing to train"):
        st.alpha_prune(no_bias, 0.5, MNIST_X, data, epochs=1, freeze_pretrained=True)
    with pytest.raises(TypeError, match="freeze_pretrained must be True or False"):
        st.alpha_prune(model, 0.5, MNIST_X, data, epochs=1, freeze_pretrained=1)
