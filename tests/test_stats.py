"""pk.stats: intervals that cover what they claim, sentences that say only what the data carry."""

import math
import re

import pytest
import torch

import pruning_kit as pk
from pruning_kit._checks import InvalidParameterError


def test_standard_error_is_the_binomial_one():
    # sqrt(0.94 * 0.06 / 1000) = 0.00751
    assert math.isclose(pk.stats.standard_error(0.94, 1000), math.sqrt(0.94 * 0.06 / 1000))


def test_paired_difference_equals_the_accuracy_difference_and_its_interval_holds_it():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1000, generator=g) < 0.95
    b = torch.rand(1000, generator=g) < 0.90
    result = pk.stats.paired(a, b, names=("a", "b"))
    assert math.isclose(result.difference, a.float().mean().item() - b.float().mean().item(),
                        abs_tol=1e-9)
    assert result.low < result.difference < result.high
    assert result.detectable and result.winner == "a"
    assert result.sentence().startswith("a beats b by")


def test_identical_results_are_never_a_difference():
    same = torch.tensor([True, True, False, True] * 250)
    result = pk.stats.paired(same, same.clone())
    assert result.difference == 0 and result.low == 0 and result.high == 0
    assert not result.detectable and result.winner is None
    assert result.sentence().startswith("no difference this run can detect")


def test_paired_interval_is_narrower_than_the_unpaired_standard_error_suggests():
    # two models that disagree on only 10 of 1,000 images, at ~94%: the paired interval is
    # far narrower than 1.96 * sqrt(2) * 0.75 points
    a = torch.tensor([True] * 940 + [False] * 60)
    b = a.clone()
    b[:5] = False
    b[940:945] = True
    result = pk.stats.paired(a, b)
    unpaired_half = 1.96 * math.sqrt(2) * pk.stats.standard_error(0.94, 1000)
    assert (result.high - result.low) / 2 < unpaired_half / 3


def test_a_half_point_gap_on_1000_independent_images_is_not_a_verdict():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1000, generator=g) < 0.945
    b = torch.rand(1000, generator=g) < 0.940
    assert not pk.stats.paired(a, b).detectable


def test_coverage_of_the_paired_interval_is_close_to_its_level():
    # 200 simulated pairs of models with a true difference of 1 point: ~95% of the intervals
    # hold it
    g = torch.Generator().manual_seed(2)
    hits = 0
    for k in range(200):
        u = torch.rand(1000, generator=g)
        a, b = u < 0.95, u < 0.94  # paired: b is right only where a is
        noise = torch.rand(1000, generator=g) < 0.02
        a, b = a ^ noise, b ^ noise
        truth = 0.95 - 0.94
        r = pk.stats.paired(a, b, resamples=1000, seed=k)
        hits += r.low <= truth <= r.high
    assert 0.88 <= hits / 200 <= 0.99


def test_over_seeds_uses_a_t_interval():
    result = pk.stats.over_seeds([0.95, 0.97], [0.94, 0.94], names=("x", "y"))
    # mean difference 0.02, sd 0.01414, t(0.975, 1) = 12.706: half width 0.127
    assert math.isclose(result.difference, 0.02, abs_tol=1e-12)
    assert math.isclose(result.high - result.difference, 12.7062 * 0.01414214 / math.sqrt(2),
                        rel_tol=1e-3)
    assert not result.detectable


def test_paired_values_for_errors_where_lower_is_better():
    g = torch.Generator().manual_seed(1)
    base = torch.rand(1000, generator=g)
    noise = 0.05 * torch.randn(1000, generator=g)
    worse = base + 0.02 + noise                       # 0.02 more error on average
    result = pk.stats.paired_values(base, worse, names=("kept", "cut"), higher_is_better=False)
    assert result.difference == pytest.approx((base - worse).double().mean().item(), abs=1e-6)
    assert result.low <= result.difference <= result.high < 0
    assert result.detectable and result.winner == "kept"
    assert result.sentence().startswith(f"kept beats cut by {-100 * result.difference:.1f} points")
    # with higher_is_better the same numbers make the other one the winner
    assert pk.stats.paired_values(base, worse).winner == "B"
    # no real difference: no verdict
    same = pk.stats.paired_values(base, base + 0.05 * torch.randn(1000, generator=g),
                                  higher_is_better=False)
    assert not same.detectable and same.winner is None


def test_over_seeds_where_lower_is_better():
    regrets_ft, regrets_rt = [0.002, 0.0, 0.004], [0.030, 0.020, 0.028]
    result = pk.stats.over_seeds(regrets_ft, regrets_rt, names=("fine-tuning", "retraining"),
                                 higher_is_better=False)
    assert result.difference < 0 and result.detectable and result.winner == "fine-tuning"
    assert result.sentence().startswith("fine-tuning beats retraining by 2.4 points")
    with pytest.raises(InvalidParameterError, match="True or False"):
        pk.stats.over_seeds([0.1, 0.2], [0.1, 0.3], higher_is_better=1)


@pytest.mark.parametrize("call, message", [
    (lambda: pk.stats.paired_values([0.1, 0.2], [0.1]), "same test images"),
    (lambda: pk.stats.paired_values(torch.tensor([True, False]), torch.tensor([1.0, 0.0])),
     "real number per test image"),
    (lambda: pk.stats.paired_values([0.1, float("nan")], [0.1, 0.2]), "NaN"),
    (lambda: pk.stats.paired_values([0.1], [0.2], higher_is_better="no"), "True or False"),
    (lambda: pk.stats.paired_values(0.1, 0.2), "tensor"),
])
def test_paired_values_bad_input(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_accuracy_interval_is_wilson():
    low, high = pk.stats.accuracy_interval([True] * 9 + [False])
    assert 0.59 < low < 0.60 and 0.98 < high < 0.99


def test_correct_matches_evaluate(trained_lenet, mnist5k):
    _, test = mnist5k
    right = pk.train.correct(trained_lenet, test)
    assert right.dtype == torch.bool and right.shape == (len(test),)
    assert math.isclose(right.float().mean().item(), pk.train.evaluate(trained_lenet, test),
                        abs_tol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: pk.stats.paired([True, False], [True]), "same test images"),
    (lambda: pk.stats.paired(torch.tensor([0.3, 0.9]), torch.tensor([1.0, 0.0])), "True/False"),
    (lambda: pk.stats.paired(0.9, 0.8), "bool tensor"),
    (lambda: pk.stats.paired([True], [True], confidence=95), "confidence"),
    (lambda: pk.stats.over_seeds([0.9], [0.8]), "at least 2"),
    (lambda: pk.stats.standard_error(1.5, 100), "accuracy"),
])
def test_bad_input_says_what_is_allowed(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_a_verdict_for_b_states_the_interval_of_its_margin():
    # "B beats A by x points (95% CI ...)": the interval is of B - A, so it reads positive
    a = torch.tensor([True] * 900 + [False] * 100)
    b = torch.tensor([True] * 950 + [False] * 50)
    result = pk.stats.paired(a, b, names=("weak", "strong"))
    assert result.winner == "strong" and result.high < 0
    text = result.sentence()
    low, high = (float(v) for v in re.search(r"CI ([+-][\d.]+) to ([+-][\d.]+)", text).groups())
    assert text.startswith("strong beats weak by 5.0 points") and 0 < low <= 5.0 <= high
