"""pk.prune: exact counts, agreement with torch.nn.utils.prune, SNIP, errors, copies,
and (slow) the magnitude / random / SNIP accuracy claims on mnist5k."""

import copy

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as torch_prune
from torch import nn

import pruning_kit as pk

LAYERS = ("fc1", "fc2", "fc3")


def fresh(seed=0):
    torch.manual_seed(seed)
    return pk.models.lenet_300_100()


def tie_free(model):
    """Give every weight a distinct magnitude (float32 random init has ties)."""
    generator = torch.Generator().manual_seed(0)
    sizes = [model.get_submodule(n).weight.numel() for n in LAYERS]
    levels = (torch.randperm(sum(sizes), generator=generator) + 1).float() * 1e-6
    signs = torch.randint(0, 2, (sum(sizes),), generator=generator).float() * 2 - 1
    with torch.no_grad():
        for name, part in zip(LAYERS, torch.split(levels * signs, sizes)):
            weight = model.get_submodule(name).weight
            weight.copy_(part.view_as(weight))
    return model


def zeros(mask):
    return int((mask == 0).sum())


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model, state):
    now = model.state_dict()
    return set(now) == set(state) and all(torch.equal(now[k], state[k]) for k in state)


# ------------------------------------------------------------------ magnitude and random


@pytest.mark.parametrize("amount", [0.3, 0.9, 0.987])
def test_global_magnitude_matches_torch_global_unstructured(amount):
    ours, theirs = tie_free(fresh(1)), tie_free(fresh(1))
    # The weights are tie-free, so both methods must choose the very same weights.
    flat = torch.cat([ours.get_submodule(n).weight.detach().abs().flatten() for n in LAYERS])
    assert len(torch.unique(flat)) == flat.numel()
    pk.prune.magnitude(ours, amount, scope="global")
    torch_prune.global_unstructured([(theirs.get_submodule(n), "weight") for n in LAYERS],
                                    pruning_method=torch_prune.L1Unstructured, amount=amount)
    for name in LAYERS:
        assert torch.equal(ours.get_submodule(name).weight_mask,
                           theirs.get_submodule(name).weight_mask), name


@pytest.mark.parametrize("amount", [0.0, 0.25, 1 / 3, 0.9, 1.0])
def test_local_magnitude_prunes_round_s_n_in_every_layer(amount):
    model = pk.models.lenet5()
    pk.prune.magnitude(model, amount, scope="local")
    for name, layer in pk.models.prunable(model):
        n = layer.weight_orig.numel()
        assert zeros(layer.weight_mask) == round(amount * n), name
        # the pruned weights are the smallest of the layer
        kept = layer.weight_orig.detach().abs()[layer.weight_mask == 1]
        gone = layer.weight_orig.detach().abs()[layer.weight_mask == 0]
        if len(kept) and len(gone):
            assert gone.max() <= kept.min()


def test_global_count_is_exact_and_threshold_is_shared():
    model = fresh(2)
    pk.prune.magnitude(model, 0.77, scope="global")
    total = sum(model.get_submodule(n).weight_orig.numel() for n in LAYERS)
    assert sum(zeros(model.get_submodule(n).weight_mask) for n in LAYERS) == round(0.77 * total)
    kept = torch.cat([model.get_submodule(n).weight_orig.detach().abs()[
        model.get_submodule(n).weight_mask == 1] for n in LAYERS])
    gone = torch.cat([model.get_submodule(n).weight_orig.detach().abs()[
        model.get_submodule(n).weight_mask == 0] for n in LAYERS])
    assert gone.max() <= kept.min()


def test_ties_still_give_exact_counts():
    model = fresh()
    with torch.no_grad():
        for name in LAYERS:
            model.get_submodule(name).weight.fill_(0.5)   # every magnitude equal
        model.fc1.weight[:, :100] = 0.0
    pk.prune.magnitude(model, 0.6, scope="local")
    for name in LAYERS:
        layer = model.get_submodule(name)
        assert zeros(layer.weight_mask) == round(0.6 * layer.weight_mask.numel())
    # the zeros go first: fc1 has 30,000 exact zeros, all of them pruned
    assert bool((model.fc1.weight_mask[:, :100] == 0).all())
    model = fresh()
    with torch.no_grad():
        for name in LAYERS:
            model.get_submodule(name).weight.fill_(-1.0)
    pk.prune.magnitude(model, 0.45, scope="global")
    assert sum(zeros(model.get_submodule(n).weight_mask) for n in LAYERS) == round(0.45 * 266200)


def test_pruning_again_prunes_among_what_remains():
    model = fresh(3)
    pk.prune.magnitude(model, 0.5, scope="global")
    first = pk.prune.masks(model)
    pk.prune.magnitude(model, 0.8, scope="global")
    second = pk.prune.masks(model)
    total = sum(m.numel() for m in second.values())
    assert sum(zeros(m) for m in second.values()) == round(0.8 * total)
    for name in LAYERS:
        # everything pruned before is still pruned
        assert bool((second[name] <= first[name]).all()), name
    # one pruning hook per layer, not one more per call
    assert len(model.fc1._forward_pre_hooks) == 1
    # a lower target revives nothing
    pk.prune.magnitude(model, 0.3, scope="global")
    assert all(torch.equal(second[n], pk.prune.masks(model)[n]) for n in LAYERS)
    # local re-pruning reaches the target fraction of each layer exactly
    pk.prune.magnitude(model, 0.95, scope="local")
    for name in LAYERS:
        mask = model.get_submodule(name).weight_mask
        assert zeros(mask) == round(0.95 * mask.numel())


def test_rates_override_one_layer():
    model = fresh(4)
    pk.prune.magnitude(model, 0.9, scope="global", rates={"fc3": 0.1})
    assert zeros(model.fc3.weight_mask) == round(0.1 * 1000)
    rest = model.fc1.weight_mask.numel() + model.fc2.weight_mask.numel()
    assert zeros(model.fc1.weight_mask) + zeros(model.fc2.weight_mask) == round(0.9 * rest)
    model = fresh(4)
    pk.prune.random(model, 0.9, scope="local", rates={"fc3": 0.5})
    assert pk.prune.layer_sparsity(model) == {"fc1": 0.9, "fc2": 0.9, "fc3": 0.5}


def test_biases_are_never_pruned():
    model = fresh(5)
    biases = {n: model.get_submodule(n).bias.detach().clone() for n in LAYERS}
    pk.prune.magnitude(model, 0.99, scope="global")
    pk.prune.random(model, 0.995, scope="local")
    for name in LAYERS:
        layer = model.get_submodule(name)
        assert not hasattr(layer, "bias_mask")
        assert torch.equal(layer.bias.detach(), biases[name])


def test_masks_live_in_torch_prune_buffers():
    model = pk.prune.magnitude(fresh(), 0.5)
    assert torch_prune.is_pruned(model)
    assert {"fc1.weight_orig", "fc1.weight_mask", "fc1.bias"} <= set(model.state_dict())
    assert torch.equal(model.fc1.weight, model.fc1.weight_orig * model.fc1.weight_mask)
    # a forward pass uses the masked weights (torch's hook)
    x = torch.randn(3, 784)
    expected = F.linear(x, model.fc1.weight_orig * model.fc1.weight_mask, model.fc1.bias)
    assert torch.allclose(model.fc1(x), expected)


def test_random_is_seeded_exact_and_leaves_global_rng_alone():
    a = fresh()
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    pk.prune.random(a, 0.7, scope="global", seed=7)
    assert torch.equal(torch.rand(1), expected)
    b = pk.prune.random(fresh(), 0.7, scope="global", seed=7)
    c = pk.prune.random(fresh(), 0.7, scope="global", seed=8)
    assert all(torch.equal(a.get_submodule(n).weight_mask, b.get_submodule(n).weight_mask)
               for n in LAYERS)
    assert not torch.equal(a.fc1.weight_mask, c.fc1.weight_mask)
    assert sum(zeros(a.get_submodule(n).weight_mask) for n in LAYERS) == round(0.7 * 266200)
    # random masks do not follow the magnitudes
    m = pk.prune.magnitude(fresh(), 0.7, scope="global")
    assert not torch.equal(a.fc1.weight_mask, m.fc1.weight_mask)


def test_magnitude_step_prunes_rate_of_remaining():
    model = fresh(6)
    for _ in range(3):
        before = {n: int(m.sum()) for n, m in pk.prune.masks(model).items()}
        pk.prune.magnitude_step(model, 0.2, scope="local", rates={"fc3": 0.1})
        after = {n: int(m.sum()) for n, m in pk.prune.masks(model).items()}
        for name in LAYERS:
            rate = 0.1 if name == "fc3" else 0.2
            assert before[name] - after[name] == round(rate * before[name]), name


# ------------------------------------------------------------------------ N:M sparsity

def test_n_m_mask_keeps_the_n_largest_of_every_group_of_m_inputs():
    # by hand: groups [0.1, -0.9, 0.3, 0.2] and [1.0, 0.0, -0.5, 0.4] keep |w| 0.9, 0.3 and 1.0, 0.5
    w = torch.tensor([[0.1, -0.9, 0.3, 0.2, 1.0, 0.0, -0.5, 0.4]])
    assert pk.prune.n_m_mask(w, 2, 4).tolist() == [[0, 1, 1, 0, 1, 0, 1, 0]]
    assert pk.prune.n_m_mask(w, 1, 2).tolist() == [[0, 1, 1, 0, 1, 0, 1, 0]]
    # ties keep the first ones, and the mask has the weight's dtype
    tied = torch.ones(2, 4, dtype=torch.float64)
    assert pk.prune.n_m_mask(tied, 2, 4).tolist() == [[1, 1, 0, 0]] * 2
    assert pk.prune.n_m_mask(tied, 2, 4).dtype == torch.float64


def test_n_m_mask_of_a_conv_groups_input_channels_at_each_position():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 8, 2, 2, generator=g)
    mask = pk.prune.n_m_mask(w, 2, 4)
    assert mask.shape == w.shape
    # every (filter, position) keeps 2 of each 4 consecutive input channels, the largest ones
    groups = mask.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.equal(groups.sum(1), torch.full((groups.shape[0],), 2.0))
    values = w.abs().permute(0, 2, 3, 1).reshape(-1, 4)
    kept_min = values.masked_fill(groups == 0, float("inf")).min(1).values
    dropped_max = values.masked_fill(groups == 1, -1.0).max(1).values
    assert bool((kept_min >= dropped_max).all())


def test_n_m_prunes_a_model_to_exactly_n_over_m_in_place():
    model = fresh()
    before = snapshot(model)
    out = pk.prune.n_m(model, 2, 4)
    assert out is model
    assert pk.prune.layer_sparsity(model) == {name: 0.5 for name in LAYERS}
    for name in LAYERS:
        mask = model.get_submodule(name).weight_mask
        assert torch.equal(mask.view(mask.shape[0], -1, 4).sum(-1),
                           torch.full((mask.shape[0], mask.shape[1] // 4), 2.0))
        # the stored values are not changed, only masked (torch.nn.utils.prune's layout)
        assert torch.equal(model.get_submodule(name).weight_orig, before[f"{name}.weight"])
    # only some layers: the others stay dense
    partial = pk.prune.n_m(fresh(), 1, 4, layers=["fc2"])
    assert pk.prune.layer_sparsity(partial) == {"fc1": 0.0, "fc2": 0.75, "fc3": 0.0}


def test_n_m_on_a_pruned_layer_keeps_its_pruned_weights_pruned():
    model = pk.prune.magnitude(fresh(), 0.7, scope="local")
    old = {name: model.get_submodule(name).weight_mask.clone() for name in LAYERS}
    pk.prune.n_m(model, 2, 4)
    for name in LAYERS:
        mask = model.get_submodule(name).weight_mask
        assert bool((mask <= old[name]).all())
        assert bool((mask.view(mask.shape[0], -1, 4).sum(-1) <= 2).all())


@pytest.mark.parametrize("call, match", [
    (lambda m: pk.prune.n_m(m, 3, 2), r"n must be an int in \[1, 2\]"),
    (lambda m: pk.prune.n_m(m, 2, 0), "m must be a positive int"),
    (lambda m: pk.prune.n_m(m, 2, 4, layers=["fc9"]), "layers must name prunable layers"),
    (lambda m: pk.prune.n_m(m, 2, 3), r"not a multiple of 3.*layers=\["),
    (lambda m: pk.prune.n_m_mask(torch.ones(4), 2, 4), "at least 2 dimensions"),
    (lambda m: pk.prune.n_m_mask(torch.ones(2, 6), 2, 4), "not a multiple of m=4"),
])
def test_n_m_refuses_bad_arguments_and_leaves_the_model_alone(call, match):
    model = fresh()
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        call(model)
    assert snapshot(model).keys() == before.keys()
    assert all(torch.equal(snapshot(model)[k], before[k]) for k in before)


def test_n_m_on_lenet5_needs_the_single_channel_conv_left_dense():
    model = pk.models.lenet5()
    with pytest.raises(ValueError, match=r"conv1.*not a multiple of 4"):
        pk.prune.n_m(model, 2, 4)
    pk.prune.n_m(model, 2, 4, layers=["conv2", "fc1", "fc2"])
    assert pk.prune.layer_sparsity(model) == {"conv1": 0.0, "conv2": 0.5, "fc1": 0.5,
                                              "fc2": 0.5}


# ------------------------------------------------------------------------------ SNIP


def independent_snip(model, x, y):
    weights = [model.get_submodule(n).weight for n in LAYERS]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights)
    raw = [(g * w).abs() for g, w in zip(grads, weights)]
    total = sum(r.sum() for r in raw)
    return {n: (r / total).detach() for n, r in zip(LAYERS, raw)}


def test_snip_scores_equal_an_independent_autograd_computation(mnist5k):
    train, _ = mnist5k
    x, y = train.images[:200], train.labels[:200]
    model = fresh(7)
    expected = independent_snip(model, x, y)
    before = snapshot(model)
    scores = pk.prune.snip_scores(model, x, y)
    assert list(scores) == list(LAYERS)
    for name in LAYERS:
        assert scores[name].shape == model.get_submodule(name).weight.shape
        assert torch.allclose(scores[name], expected[name], atol=1e-6, rtol=0)
    assert abs(float(sum(s.double().sum() for s in scores.values())) - 1.0) < 1e-6
    # weights unchanged, no gradient left behind
    assert same_state(model, before)
    assert all(p.grad is None for p in model.parameters())


def test_snip_scores_accumulate_over_batches(mnist5k):
    train, _ = mnist5k
    x, y = train.images[:300], train.labels[:300]
    model = fresh(8)
    whole = pk.prune.snip_scores(model, x, y)
    parts = pk.prune.snip_scores(model, batches=[(x[:100], y[:100]), (x[100:], y[100:])])
    for name in LAYERS:
        assert torch.allclose(whole[name], parts[name], atol=1e-7, rtol=1e-4)
    from_loader = pk.prune.snip_scores(model, batches=pk.data.loader((x, y), batch_size=64))
    for name in LAYERS:
        assert torch.allclose(whole[name], from_loader[name], atol=1e-7, rtol=1e-4)


def test_snip_on_a_pruned_model_scores_pruned_weights_zero(mnist5k):
    train, _ = mnist5k
    model = pk.prune.magnitude(fresh(9), 0.5)
    model(train.images[:2])               # the hook has now built a non-leaf weight
    before = snapshot(model)
    scores = pk.prune.snip_scores(model, train.images[:100], train.labels[:100])
    assert float(scores["fc1"][model.fc1.weight_mask == 0].abs().max()) == 0.0
    assert same_state(model, before)
    assert all(p.grad is None for p in model.parameters())
    copy.deepcopy(model)                  # left in a copyable state


def test_snip_prunes_the_smallest_scores_exactly(mnist5k):
    train, _ = mnist5k
    x, y = train.images[:100], train.labels[:100]
    model = fresh(10)
    scores = pk.prune.snip_scores(model, x, y)
    pk.prune.snip(model, x, y, sparsity=0.9)
    flat_scores = torch.cat([scores[n].flatten() for n in LAYERS])
    flat_masks = torch.cat([model.get_submodule(n).weight_mask.flatten() for n in LAYERS])
    assert zeros(flat_masks) == round(0.9 * flat_masks.numel())
    assert flat_scores[flat_masks == 0].max() <= flat_scores[flat_masks == 1].min()


def test_snip_keeps_batchnorm_buffers():
    model = pk.models.vgg(depth=11, width=0.125)
    before = snapshot(model)
    model.train()
    pk.prune.snip_scores(model, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert same_state(model, before)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_sparsity_outside_unit_interval_is_refused_and_model_unchanged(bad):
    for fn in (pk.prune.magnitude, pk.prune.random):
        model = fresh()
        before = snapshot(model)
        with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\]"):
            fn(model, bad)
        assert same_state(model, before) and not torch_prune.is_pruned(model)
    model = pk.prune.magnitude(fresh(), 0.5)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\]"):
        pk.prune.magnitude(model, bad)
    assert same_state(model, before)


def test_model_without_prunable_layers_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.BatchNorm1d(4))
    before = snapshot(model)
    for call in (lambda: pk.prune.magnitude(model, 0.5), lambda: pk.prune.random(model, 0.5),
                 lambda: pk.prune.sparsity(model),
                 lambda: pk.prune.snip(model, torch.zeros(2, 4), torch.zeros(2).long(), 0.5)):
        with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d layer"):
            call()
    assert same_state(model, before)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pk.prune.magnitude("not a model", 0.5)


def test_unknown_scope_is_refused():
    model = fresh()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"scope must be one of \('global', 'local'\).*'glob'"):
        pk.prune.magnitude(model, 0.5, scope="glob")
    with pytest.raises(ValueError, match="scope must be one of"):
        pk.prune.random(model, 0.5, scope="layer")
    assert same_state(model, before) and not torch_prune.is_pruned(model)


def test_bad_rates_are_refused():
    model = fresh()
    before = snapshot(model)
    with pytest.raises(ValueError, match="unknown layers \\['fc4'\\]"):
        pk.prune.magnitude(model, 0.5, rates={"fc4": 0.1})
    with pytest.raises(ValueError, match=r"rates\['fc3'\] must be a number in \[0, 1\]"):
        pk.prune.magnitude(model, 0.5, rates={"fc3": 2})
    assert same_state(model, before) and not torch_prune.is_pruned(model)


def test_snip_with_wrong_targets_is_refused(mnist5k):
    train, _ = mnist5k
    model = fresh()
    before = snapshot(model)
    x = train.images[:10]
    with pytest.raises(ValueError, match="one entry per input: got 10 inputs"):
        pk.prune.snip(model, x, train.labels[:9], sparsity=0.5)
    with pytest.raises(ValueError, match="one entry per input"):
        pk.prune.snip_scores(model, x, train.labels[:11])
    with pytest.raises(ValueError, match="one entry per input"):
        pk.prune.snip_scores(model, batches=[(x, train.labels[:10]), (x, train.labels[:3])])
    with pytest.raises(ValueError, match="sparsity"):
        pk.prune.snip(model, x, train.labels[:10])
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\]"):
        pk.prune.snip(model, x, train.labels[:10], sparsity=9)
    with pytest.raises(ValueError, match="inputs and targets, or batches"):
        pk.prune.snip_scores(model)
    assert same_state(model, before) and not torch_prune.is_pruned(model)
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ Optimal Brain Damage


def small_relu_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def autograd_hessian_diagonal(model, x, y):
    """The exact Hessian diagonal of the mean cross-entropy, one layer's weights at a time."""
    out = {}
    for name, layer in pk.models.prunable(model):
        def loss(w, name=name):
            return F.cross_entropy(torch.func.functional_call(model, {f"{name}.weight": w}, (x,)), y)
        w = layer.weight.detach().clone()
        h = torch.autograd.functional.hessian(loss, w)      # shape (*w.shape, *w.shape)
        out[name] = h.reshape(w.numel(), w.numel()).diagonal().view_as(w)
    return out


def test_hessian_diagonal_is_the_exact_one_of_a_relu_network():
    # ReLU makes the logits piecewise linear in each layer's weights: Gauss-Newton = Hessian
    model = small_relu_net().double()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(20, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=generator)
    ours = pk.prune.hessian_diagonal(model, x, y)
    exact = autograd_hessian_diagonal(model, x, y)
    assert set(ours) == set(exact) == {"0", "2", "4"}
    for name in exact:
        assert torch.allclose(ours[name], exact[name], atol=1e-10), name
        assert bool((ours[name] >= 0).all())


def test_hessian_diagonal_of_batches_is_that_of_their_mean_loss_and_leaves_the_model_alone():
    model = small_relu_net()
    model.train()
    before = snapshot(model)
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(30, 6, generator=generator), torch.randint(0, 3, (30,), generator=generator)
    whole = pk.prune.hessian_diagonal(model, x, y)
    parts = pk.prune.hessian_diagonal(model, batches=[(x[:10], y[:10]), (x[10:], y[10:])])
    assert all(torch.allclose(whole[n], parts[n], atol=1e-6) for n in whole)
    assert same_state(model, before) and model.training
    assert all(p.grad is None for p in model.parameters())


def test_obd_scores_are_half_curvature_times_weight_squared_and_zero_where_pruned(mnist5k):
    train, _ = mnist5k
    model = fresh()
    pk.prune.magnitude(model, 0.5, scope="local")
    x, y = train.images[:64], train.labels[:64]
    h = pk.prune.hessian_diagonal(model, x, y)
    scores = pk.prune.obd_scores(model, x, y)
    for name in LAYERS:
        w = model.get_submodule(name).weight.detach()
        assert torch.allclose(scores[name], 0.5 * h[name] * w ** 2)
        assert bool((scores[name][model.get_submodule(name).weight_mask == 0] == 0).all())


def test_obd_prunes_exactly_the_smallest_scores_in_scope(mnist5k):
    train, _ = mnist5k
    x, y = train.images[:64], train.labels[:64]
    model = tie_free(fresh())
    scores = pk.prune.obd_scores(model, x, y)
    pk.prune.obd(model, x, y, 0.0, rates={"fc3": 0.7})
    mask = model.fc3.weight_mask
    assert zeros(mask) == round(0.7 * mask.numel())
    assert pk.prune.layer_sparsity(model) == {"fc1": 0.0, "fc2": 0.0, "fc3": 0.7}
    assert scores["fc3"][mask == 0].max() <= scores["fc3"][mask == 1].min()
    global_model = tie_free(fresh())
    pk.prune.obd(global_model, x, y, 0.9)
    assert sum(zeros(m) for m in pk.prune.masks(global_model).values()) == round(0.9 * 266_200)


def test_snip_rates_prune_one_layer_on_its_own(mnist5k):
    train, _ = mnist5k
    model = pk.prune.snip(fresh(), train.images[:100], train.labels[:100], sparsity=0.0,
                          rates={"fc3": 0.5})
    assert pk.prune.layer_sparsity(model) == {"fc1": 0.0, "fc2": 0.0, "fc3": 0.5}


def test_obd_refuses_what_it_cannot_score_and_leaves_the_model_alone(mnist5k):
    train, _ = mnist5k
    x, y = train.images[:8], train.labels[:8]
    lenet5 = pk.models.lenet5()
    with pytest.raises(ValueError, match=r"nn.Linear layers only; \['conv1', 'conv2'\]"):
        pk.prune.hessian_diagonal(lenet5, x, y)
    model = fresh()
    before = snapshot(model)
    with pytest.raises(ValueError, match="class indices"):
        pk.prune.obd_scores(model, x, y.float())
    with pytest.raises(ValueError, match="one entry per input"):
        pk.prune.obd(model, x, y[:5], 0.5)
    with pytest.raises(ValueError, match="obd needs sparsity"):
        pk.prune.obd(model, x, y)
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\]"):
        pk.prune.obd(model, x, y, 1.5)
    with pytest.raises(ValueError, match="inputs and targets, or batches"):
        pk.prune.obd_scores(model)
    assert same_state(model, before) and not torch_prune.is_pruned(model)


def test_apply_masks_checks_everything_before_changing_anything():
    model = fresh()
    before = snapshot(model)
    good = torch.ones(300, 784)
    with pytest.raises(ValueError, match=r"masks\['fc2'\] has shape \(3, 3\)"):
        pk.prune.apply_masks(model, {"fc1": good, "fc2": torch.ones(3, 3)})
    with pytest.raises(ValueError, match="only 0 and 1"):
        pk.prune.apply_masks(model, {"fc1": good * 0.5})
    with pytest.raises(ValueError, match="unknown layer 'conv1'"):
        pk.prune.apply_masks(model, {"fc1": good, "conv1": good})
    assert same_state(model, before) and not torch_prune.is_pruned(model)


# ---------------------------------------------------------------- masks, copies, finalize


def test_masks_round_trip_and_looser_masks_revive_weights():
    source = pk.prune.magnitude(fresh(11), 0.9)
    target = pk.prune.apply_masks(fresh(11), pk.prune.masks(source))
    for name in LAYERS:
        assert torch.equal(source.get_submodule(name).weight, target.get_submodule(name).weight)
    dense = fresh(11)
    pk.prune.apply_masks(target, {n: torch.ones_like(m) for n, m in pk.prune.masks(target).items()})
    assert pk.prune.sparsity(target) == 0.0
    assert torch.equal(target.fc1.weight, dense.fc1.weight)
    assert pk.prune.masks(fresh())["fc1"].sum() == 300 * 784


def test_clone_copies_a_pruned_model_after_training(mnist5k):
    train, _ = mnist5k
    model = pk.prune.magnitude(fresh(12), 0.8)
    pk.train.fit(model, (train.images[:200], train.labels[:200]), epochs=1, progress=False)
    model.train()
    model(train.images[:4])                      # weight is now a non-leaf tensor
    twin = pk.prune.clone(model)
    copy.deepcopy(model)                         # clone left the original copyable too
    assert torch.equal(twin(train.images[:8]), model(train.images[:8]))
    assert torch.equal(twin.fc1.weight_mask, model.fc1.weight_mask)
    # independent: training the copy changes neither the original's values nor its masks
    before = snapshot(model)
    pk.train.fit(twin, (train.images[:200], train.labels[:200]), epochs=1, progress=False)
    assert same_state(model, before)
    assert not torch.equal(twin.fc1.weight_orig, model.fc1.weight_orig)
    assert torch.equal(twin.fc1.weight_mask, model.fc1.weight_mask)
    # pruned weights stayed at zero through training
    assert float(twin.fc1.weight.detach()[twin.fc1.weight_mask == 0].abs().max()) == 0.0
    # copying right after pruning works with plain deepcopy as well
    copy.deepcopy(pk.prune.magnitude(fresh(), 0.5))


def test_finalize_bakes_masks_in():
    model = pk.prune.magnitude(fresh(13), 0.75, scope="local")
    masked = {n: model.get_submodule(n).weight.detach().clone() for n in LAYERS}
    pk.prune.finalize(model)
    assert not torch_prune.is_pruned(model)
    assert set(model.state_dict()) == set(fresh().state_dict())
    for name in LAYERS:
        assert torch.equal(model.get_submodule(name).weight.detach(), masked[name])
    assert pk.prune.layer_sparsity(model) == {"fc1": 0.75, "fc2": 0.75, "fc3": 0.75}
    copy.deepcopy(model)


def test_sparsity_and_layer_sparsity():
    model = fresh()
    assert pk.prune.sparsity(model) == 0.0
    pk.prune.magnitude(model, 0.5, scope="local", rates={"fc1": 0.9})
    expected = (0.9 * 235200 + 0.5 * 30000 + 0.5 * 1000) / 266200
    assert pk.prune.sparsity(model) == pytest.approx(expected, abs=1e-9)
    assert pk.prune.layer_sparsity(model) == {"fc1": 0.9, "fc2": 0.5, "fc3": 0.5}


def test_iterative_lands_on_target_in_geometric_steps(mnist5k):
    train, test = mnist5k
    model = fresh(14)
    log = pk.prune.iterative(model, (train.images[:400], train.labels[:400]), target=0.9, steps=3,
                             retrain_epochs=1, scope="local", rates={"fc3": 0.5}, test=test)
    assert [s.step for s in log] == [1, 2, 3]
    remaining = [1 - s.sparsity for s in log]
    assert remaining[-1] == pytest.approx((0.1 * 265200 + 0.5 * 1000) / 266200, abs=1e-6)
    # each step keeps the same share of the weights: 0.1 ** (1/3) for fc1 and fc2
    fc1 = pk.prune.layer_sparsity(model)["fc1"]
    assert fc1 == pytest.approx(0.9, abs=1e-6)
    assert remaining[0] == pytest.approx(0.1 ** (1 / 3), abs=0.01)
    assert all(0.0 <= s.accuracy <= 1.0 for s in log)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        pk.prune.iterative(fresh(), train, 0.5, steps=0)


# ------------------------------------------------------------------- the papers' claims

TRAIN = dict(epochs=10, lr=2e-3, progress=False)


@pytest.mark.slow
def test_magnitude_90_with_retraining_stays_within_a_point_random_does_not(
        mnist5k, trained_lenet_state):
    """Han et al. 2015 on mnist5k: prune 90% by magnitude, retrain; random pruning is worse."""
    train, test = mnist5k
    dense = pk.models.lenet_300_100()
    dense.load_state_dict(trained_lenet_state)
    dense_accuracy = pk.train.evaluate(dense, test)
    accuracies = {}
    for method in ("magnitude", "random"):
        model = pk.prune.clone(dense)
        if method == "magnitude":
            pk.prune.magnitude(model, 0.9, scope="global")
        else:
            pk.prune.random(model, 0.9, scope="global", seed=0)
        assert pk.prune.sparsity(model) == pytest.approx(0.9, abs=1e-6)
        pk.train.fit(model, train, epochs=10, lr=1e-3, seed=1, progress=False)
        accuracies[method] = pk.train.evaluate(model, test)
    assert accuracies["magnitude"] >= dense_accuracy - 0.01, (dense_accuracy, accuracies)
    assert accuracies["random"] <= accuracies["magnitude"] - 0.02, (dense_accuracy, accuracies)


@pytest.mark.slow
def test_snip_90_trains_to_within_two_points_of_dense(mnist5k):
    """Lee et al. 2019 on mnist5k: prune 90% at initialisation, train, compare to dense."""
    train, test = mnist5k
    init = fresh(0)
    accuracies = {}
    for method in ("dense", "snip"):
        model = pk.prune.clone(init)
        if method == "snip":
            pk.prune.snip(model, batches=pk.data.loader(train, batch_size=500), sparsity=0.9)
        pk.train.fit(model, train, epochs=20, lr=2e-3, seed=0, progress=False)
        accuracies[method] = pk.train.evaluate(model, test)
    assert accuracies["snip"] >= accuracies["dense"] - 0.02, accuracies
