"""pk.structured.alpha: alpha schedules, one-shot pruning with a decaying alpha, the iterative
baseline and their comparison."""

import warnings

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import MNIST_X, same_state, state


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
