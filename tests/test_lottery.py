"""pk.lottery: rounds, rewinding, controls, determinism, errors, and (slow) the
lottery-ticket claims on mnist5k."""

import pytest
import torch

import pruning_kit as pk

LAYERS = ("fc1", "fc2", "fc3")


@pytest.fixture(scope="module")
def digits():
    return pk.data.load("digits")


def small_model():
    return pk.models.lenet_300_100(in_features=64)


QUICK = dict(epochs=1, lr=2e-3, val_size=200, eval_every=5)


def test_rounds_prune_rate_of_remaining_with_output_layer_at_half(digits):
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=3, rate=0.2, scope="local",
                            **QUICK)
    assert [r.round for r in rounds] == [0, 1, 2, 3]
    assert [r.kind for r in rounds] == ["dense", "ticket", "ticket", "ticket"]
    assert all(float(m.min()) == 1.0 for m in rounds[0].masks.values())
    for before, after in zip(rounds, rounds[1:]):
        for name in LAYERS:
            kept_before, kept_after = int(before.masks[name].sum()), int(after.masks[name].sum())
            rate = 0.1 if name == "fc3" else 0.2        # the paper's output layer: half the rate
            assert kept_before - kept_after == round(rate * kept_before), name
            # pruned weights stay pruned
            assert bool((after.masks[name] <= before.masks[name]).all())
        kept = sum(int(m.sum()) for m in after.masks.values())
        assert after.remaining == pytest.approx(kept / (64 * 300 + 300 * 100 + 100 * 10))
    for r in rounds:
        assert 0.0 <= r.accuracy <= 1.0 and 0.0 <= r.early_stop_accuracy <= 1.0
        assert r.early_stop_iteration % 5 == 0


def test_each_run_keeps_which_test_examples_it_got_right_at_early_stop(digits):
    # what pk.stats.paired compares: the per-example results behind early_stop_accuracy
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=1, rate=0.5, **QUICK)
    control = pk.lottery.reinit_control(small_model, rounds[1].masks, train, test, seed=5, **QUICK)
    for run in (*rounds, control):
        right = run.early_stop_correct
        assert right.dtype == torch.bool and right.shape == (len(test),)
        assert int(right.sum()) / len(test) == run.early_stop_accuracy
    verdict = pk.stats.paired(rounds[1].early_stop_correct, control.early_stop_correct)
    assert verdict.value_a == pytest.approx(rounds[1].early_stop_accuracy)


def test_same_seed_same_rounds_other_seed_other_rounds(digits):
    train, test = digits
    a = pk.lottery.imp(small_model, train, test, rounds=2, seed=3, **QUICK)
    b = pk.lottery.imp(small_model, train, test, rounds=2, seed=3, **QUICK)
    c = pk.lottery.imp(small_model, train, test, rounds=2, seed=4, **QUICK)
    assert [x.row() for x in a] == [x.row() for x in b]
    assert all(torch.equal(a[-1].masks[n], b[-1].masks[n]) for n in LAYERS)
    assert not torch.equal(a[-1].masks["fc1"], c[-1].masks["fc1"])


def manual_training(model, part, val, seed):
    """What one round of imp does, written out with pk.train.fit."""
    pk.train.seed_everything(seed)
    return pk.train.fit(model, part, epochs=1, lr=2e-3, seed=seed, progress=False, val=val,
                        eval_every=5)


@pytest.mark.parametrize("rewind_iteration", [0, 7])
def test_ticket_is_rewound_to_iteration_k_and_masked(digits, rewind_iteration):
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=1, seed=5, scope="local",
                            rewind_iteration=rewind_iteration, **QUICK)
    part, val = pk.lottery.split_validation(train, 200)
    # round 0 by hand, remembering the weights at iteration k
    pk.train.seed_everything(5)
    dense = small_model()
    saved = {}

    def remember(net, step):
        if step == rewind_iteration:
            saved.update({k: v.clone() for k, v in net.state_dict().items()})

    pk.train.seed_everything(5)
    history = pk.train.fit(dense, part, epochs=1, lr=2e-3, seed=5, progress=False, val=val,
                           eval_every=5, callbacks=[remember])
    assert rounds[0].early_stop_iteration == history.best_eval()["iteration"]
    assert rounds[0].accuracy == pk.train.evaluate(dense, test)
    # round 1 by hand: prune 20% of each layer (10% of the output layer), rewind, retrain
    pk.prune.magnitude_step(dense, 0.2, scope="local", rates={"fc3": 0.1})
    masks = pk.prune.masks(dense)
    assert all(torch.equal(masks[n], rounds[1].masks[n]) for n in LAYERS)
    ticket = small_model()
    ticket.load_state_dict(saved)
    pk.prune.apply_masks(ticket, masks)
    history = manual_training(ticket, part, val, 5)
    assert rounds[1].accuracy == pk.train.evaluate(ticket, test)
    assert rounds[1].early_stop_iteration == history.best_eval()["iteration"]
    # the validation curve comes along with the record
    assert rounds[1].evals == history.evals and rounds[1].evals[0]["iteration"] == 0


def test_global_scope_prunes_one_pool_and_the_output_layer_apart(digits):
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=1, rate=0.5, scope="global",
                            output_rate=0.3, **QUICK)
    masks = rounds[1].masks
    assert int((masks["fc3"] == 0).sum()) == round(0.3 * 1000)
    pooled = int((masks["fc1"] == 0).sum()) + int((masks["fc2"] == 0).sum())
    assert pooled == round(0.5 * (64 * 300 + 300 * 100))


def test_controls_keep_the_sparsity_pattern_counts(digits):
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=2, rate=0.5, **QUICK)
    masks = rounds[-1].masks
    reinit = pk.lottery.reinit_control(small_model, masks, train, test, seed=11, **QUICK)
    assert reinit.kind == "reinit" and reinit.round == -1
    assert all(torch.equal(reinit.masks[n], masks[n]) for n in LAYERS)
    assert reinit.remaining == pytest.approx(rounds[-1].remaining)
    rand = pk.lottery.random_prune_control(small_model, masks, train, test, seed=11, **QUICK)
    assert rand.kind == "random"
    for name in LAYERS:
        assert int(rand.masks[name].sum()) == int(masks[name].sum())
    assert not torch.equal(rand.masks["fc1"], masks["fc1"])
    again = pk.lottery.reinit_control(small_model, masks, train, test, seed=11, **QUICK)
    assert again.row() == reinit.row()


def test_reinit_control_with_data_seed_changes_only_the_initial_weights(digits):
    # Frankle & Carbin's control: new initial weights, the ticket's data order
    train, test = digits
    masks = pk.prune.masks(pk.prune.magnitude(small_model(), 0.7, scope="local"))
    control = pk.lottery.reinit_control(small_model, masks, train, test, seed=11, data_seed=5,
                                        **QUICK)
    part, val = pk.lottery.split_validation(train, 200)
    # by hand: initialise with seed 11, then train with the data order of seed 5
    pk.train.seed_everything(11)
    model = pk.prune.apply_masks(small_model(), masks)
    history = manual_training(model, part, val, 5)
    assert control.accuracy == pk.train.evaluate(model, test)
    assert control.early_stop_iteration == history.best_eval()["iteration"]
    # data_seed=None keeps the old meaning: one seed for both
    both = pk.lottery.reinit_control(small_model, masks, train, test, seed=11, **QUICK)
    explicit = pk.lottery.reinit_control(small_model, masks, train, test, seed=11, data_seed=11,
                                         **QUICK)
    assert both.row() == explicit.row()
    rand = pk.lottery.random_prune_control(small_model, masks, train, test, seed=11,
                                           data_seed=5, **QUICK)
    rand_again = pk.lottery.random_prune_control(small_model, masks, train, test, seed=11,
                                                 data_seed=5, **QUICK)
    assert rand.row() == rand_again.row()
    assert all(torch.equal(rand.masks[n], rand_again.masks[n]) for n in LAYERS)


def test_rates_prune_chosen_layers_at_their_own_rate(digits):
    train, test = digits
    rounds = pk.lottery.imp(small_model, train, test, rounds=2, rate=0.5,
                            rates={"fc1": 0.25, "fc3": 0.0}, **QUICK)
    for before, after in zip(rounds, rounds[1:]):
        for name, rate in (("fc1", 0.25), ("fc2", 0.5), ("fc3", 0.0)):
            kept_before, kept_after = int(before.masks[name].sum()), int(after.masks[name].sum())
            assert kept_before - kept_after == round(rate * kept_before), name


def test_split_validation_is_fixed_and_disjoint(digits):
    train, _ = digits
    part, val = pk.lottery.split_validation(train, 300)
    part2, val2 = pk.lottery.split_validation(train, 300)
    assert torch.equal(val.images, val2.images) and len(part) == len(train) - 300
    joined = torch.cat([part.images, val.images]).flatten(1)
    assert len(torch.unique(joined, dim=0)) == len(torch.unique(train.images.flatten(1), dim=0))


def test_bad_arguments_are_refused(digits):
    train, test = digits
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\]"):
        pk.lottery.imp(small_model, train, test, rate=1.2)
    with pytest.raises(ValueError, match="scope must be one of"):
        pk.lottery.imp(small_model, train, test, scope="glob")
    with pytest.raises(ValueError, match="rewind_iteration must be an int in \\[0, 20\\]"):
        pk.lottery.imp(small_model, train, test, rewind_iteration=10_000, **QUICK)
    with pytest.raises(ValueError, match="output_layer must name a prunable layer"):
        pk.lottery.imp(small_model, train, test, output_layer="head", **QUICK)
    with pytest.raises(ValueError, match="val_size must be an int"):
        pk.lottery.imp(small_model, train, test, val_size=len(train))
    with pytest.raises(TypeError, match="model_fn must be a function"):
        pk.lottery.imp(small_model(), train, test, **QUICK)
    with pytest.raises(ValueError, match="rounds must be a non-negative int"):
        pk.lottery.imp(small_model, train, test, rounds=-1)
    with pytest.raises(ValueError, match="rates must be a dict"):
        pk.lottery.imp(small_model, train, test, rates={"head": 0.1}, **QUICK)
    with pytest.raises(ValueError, match=r"rates\['fc1'\] must be a number in \[0, 1\]"):
        pk.lottery.imp(small_model, train, test, rates={"fc1": 1.5}, **QUICK)
    with pytest.raises(TypeError, match="data_seed must be an int"):
        pk.lottery.reinit_control(small_model, {}, train, test, data_seed="0", **QUICK)
    with pytest.raises(ValueError, match="masks\\['fc1'\\] has shape"):
        pk.lottery.reinit_control(small_model, {"fc1": torch.ones(3, 3)}, train, test, **QUICK)


# ------------------------------------------------------------------- the paper's claims


@pytest.mark.slow
def test_winning_tickets_on_mnist5k(mnist5k):
    """Frankle & Carbin 2019, Fig. 3 shape, on mnist5k with LeNet-300-100 (one seed).

    After 7 rounds at 20% (21% of the weights left) the rewound ticket is as good as
    the dense network (at most 0.5 points below); after 12 rounds (7% left) it beats
    the same masks trained from a new random initialisation by at least one point.
    """
    train, test = mnist5k
    settings = dict(epochs=10, lr=1.2e-3)
    rounds = pk.lottery.imp(pk.models.lenet_300_100, train, test, rounds=12, seed=0,
                            scope="local", **settings)
    assert rounds[7].remaining == pytest.approx(0.211, abs=0.002)
    assert rounds[12].remaining == pytest.approx(0.070, abs=0.002)
    dense = rounds[0].accuracy
    assert rounds[7].accuracy >= dense - 0.005, [r.row() for r in rounds]
    reinit = pk.lottery.reinit_control(pk.models.lenet_300_100, rounds[12].masks, train, test,
                                       seed=100, **settings)
    assert rounds[12].accuracy >= reinit.accuracy + 0.01, (rounds[12].row(), reinit.row())
