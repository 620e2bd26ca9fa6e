"""pruning_kit.plots: figures are labelled, draw what they are given, and reject bad input."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.utils.prune as tprune  # noqa: E402

import pruning_kit as pk  # noqa: E402
from pruning_kit import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def runs():
    """Three seeds of two methods at three sparsities, accuracy known in closed form."""
    return [{"method": m, "sparsity": s, "seed": k, "accuracy": base - s / 10 + 0.01 * k}
            for m, base in (("magnitude", 0.9), ("random", 0.8))
            for s in (0.0, 0.5, 0.9) for k in range(3)]


def labelled(ax):
    """Every figure says what its axes are and has a legend."""
    return bool(ax.get_xlabel().strip()) and bool(ax.get_ylabel().strip()) \
        and ax.get_legend() is not None


# ----------------------------------------------------------------------------- style

def test_import_changes_no_global_matplotlib_setting():
    # in a fresh interpreter: reloading the module here would replace its functions for the
    # other tests (pk.sensitivity re-exports them)
    probe = ("import matplotlib; before = dict(matplotlib.rcParams); import pruning_kit.plots; "
             "print(dict(matplotlib.rcParams) == before)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True"


def test_style_makes_fonts_larger_than_the_defaults():
    with matplotlib.rc_context():
        default_points = matplotlib.rcParams["font.size"]   # labels default to "medium" = this
        applied = plots.style()
        assert float(matplotlib.rcParams["axes.labelsize"]) >= 1.5 * default_points
        assert applied["axes.labelsize"] == matplotlib.rcParams["axes.labelsize"]
        assert tuple(matplotlib.rcParams["figure.figsize"]) == plots.FIGSIZE


@pytest.mark.parametrize("kwargs, match", [({"context": "slides"}, "context must be one of"),
                                           ({"font_scale": 0}, "font_scale must be")])
def test_style_rejects_unknown_settings(kwargs, match):
    with matplotlib.rc_context(), pytest.raises(ValueError, match=match):
        plots.style(**kwargs)


# ----------------------------------------------------------------------------- plot

def test_plot_draws_each_series_with_its_label_and_scales():
    x = torch.arange(1, 6).float()
    ax = plots.plot(x, [x, x ** 2], "epoch", "loss (nats)", legend=["a", "b"], yscale="log",
                    fmts=("-", "r--"), title="t")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    np.testing.assert_allclose(lines[1].get_ydata(), (x ** 2).numpy())
    assert lines[1].get_linestyle() == "--"
    assert ax.get_yscale() == "log" and ax.get_title() == "t" and labelled(ax)


def test_plot_accepts_one_x_per_series_and_an_existing_axes():
    fig, (left, right) = plt.subplots(1, 2)
    ax = plots.plot([[0, 1], [0, 1, 2]], [[1, 2], [3, 4, 5]], "x (a.u.)", "y (a.u.)",
                    legend=["two points", "three points"], axes=right)
    assert ax is right and len(right.get_lines()) == 2 and not left.get_lines()
    np.testing.assert_allclose(right.get_lines()[1].get_xdata(), [0, 1, 2])


@pytest.mark.parametrize("args, kwargs, error, match", [
    (([0, 1], [[0, 1], [1, 2]], "x", "y"), {}, ValueError, "need a legend"),
    (([0, 1], [[0, 1], [1, 2]], "x", "y"), {"legend": ["one"]}, ValueError, "one label per"),
    (([0, 1, 2], [0, 1], "x", "y"), {}, ValueError, "one y per x"),
    (([0, 1], [0, 1], "", "y"), {}, ValueError, "xlabel must be a non-empty string"),
    (([0, 1], [0, 1], "x", "y"), {"xscale": "loglog"}, ValueError, "xscale must be one of"),
    (([0, 1], "ab", "x", "y"), {}, TypeError, "ys must be numbers"),
    (([0, 1], [0, 1], "x", "y"), {"axes": "left"}, TypeError, "axes must be a matplotlib Axes"),
])
def test_plot_rejects_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.plot(*args, **kwargs)


# ----------------------------------------------------------------------------- mean and spread

def test_mean_spread_computes_mean_and_bands_by_hand():
    table = plots.mean_spread(runs())
    row = table[(table.method == "random") & (table.sparsity == 0.5)].iloc[0]
    values = np.array([0.8 - 0.05 + 0.01 * k for k in range(3)])
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["low"], row["high"]) == pytest.approx((values.min(), values.max()))
    assert row["runs"] == 3
    std = plots.mean_spread(runs(), spread="std")
    sem = plots.mean_spread(runs(), spread="sem")
    sd = values.std(ddof=1)
    assert std.iloc[0]["high"] - std.iloc[0]["mean"] == pytest.approx(sd)
    assert sem.iloc[0]["high"] - sem.iloc[0]["mean"] == pytest.approx(sd / np.sqrt(3))
    assert list(table.columns) == ["method", "sparsity", "mean", "low", "high", "runs"]


def test_mean_spread_of_a_single_run_has_no_width():
    table = plots.mean_spread([{"sparsity": 0.1, "accuracy": 0.5}], hue=None, spread="std")
    assert table.iloc[0]["low"] == table.iloc[0]["high"] == 0.5


@pytest.mark.parametrize("data, kwargs, error, match", [
    (runs(), {"spread": "iqr"}, ValueError, "spread must be one of"),
    (runs(), {"y": "acc"}, ValueError, r"columns \['acc'\] not found"),
    ("runs.csv", {}, TypeError, "DataFrame or a list of dicts"),
    (pd.DataFrame({"method": [], "sparsity": [], "accuracy": []}), {}, ValueError, "no rows"),
])
def test_mean_spread_rejects_bad_data(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.mean_spread(data, **kwargs)


# ----------------------------------------------------------------------------- accuracy vs sparsity

def test_accuracy_vs_sparsity_draws_means_in_percent_and_one_band_per_method():
    ax = plots.accuracy_vs_sparsity(pd.DataFrame(runs()), reference=0.91)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["magnitude"].get_xdata(), [0, 50, 90])
    np.testing.assert_allclose(lines["magnitude"].get_ydata(), [91, 86, 82], atol=1e-9)
    np.testing.assert_allclose(lines["dense"].get_ydata(), [91, 91])
    assert len(ax.collections) == 2
    band = ax.collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(71.0) and band.max() == pytest.approx(82.0)
    assert ax.get_xlabel() == "sparsity (% of weights pruned)"
    assert ax.get_ylabel() == "test accuracy (%)" and labelled(ax)


def test_accuracy_vs_sparsity_remaining_axis_runs_from_dense_to_sparse():
    ax = plots.accuracy_vs_sparsity(runs(), x_axis="remaining", log=True, spread=None)
    np.testing.assert_allclose(sorted(ax.get_lines()[0].get_xdata()), [10, 50, 100])
    assert ax.xaxis_inverted() and ax.get_xscale() == "log" and not ax.collections


def test_accuracy_vs_sparsity_legend_says_what_the_band_is_and_over_how_many_runs():
    ax = plots.accuracy_vs_sparsity(runs(), spread="std")
    assert ax.get_legend().get_title().get_text() == "mean; band:\n+/- 1 std over 3 runs"
    one = [r for r in runs() if r["seed"] == 0]
    ax = plots.accuracy_vs_sparsity(one, spread="minmax")
    assert ax.get_legend().get_title().get_text() == "mean; band:\nmin-max (one run: no spread)"
    ax = plots.accuracy_vs_sparsity(runs(), spread=None)
    assert ax.get_legend().get_title().get_text() == "mean"


@pytest.mark.parametrize("data, kwargs, match", [
    (runs(), {"x_axis": "density"}, "x_axis must be one of"),
    ([{"method": "m", "sparsity": 90, "accuracy": 0.5}], {}, r"sparsities \(fractions"),
    ([{"method": "m", "sparsity": 1.0, "accuracy": 0.1}], {"x_axis": "remaining", "log": True},
     "cannot show sparsity 1"),
])
def test_accuracy_vs_sparsity_rejects_bad_input(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.accuracy_vs_sparsity(data, **kwargs)


# ----------------------------------------------------------------------------- weights

def test_weight_histogram_counts_every_weight_and_shades_the_pruned_band():
    w = torch.tensor([-0.9, -0.2, 0.0, 0.1, 0.3, 0.8])
    ax = plots.weight_histogram(w, pruned_threshold=0.25, bins=4)
    assert sum(bar.get_height() for bar in ax.containers[0]) == 6
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[1] == "pruned band |w| ≤ τ = 0.25 (50.0% of weights)" and labelled(ax)


@pytest.mark.parametrize("loc", ["upper left", "upper right", "best"])
def test_a_histogram_legend_in_an_upper_corner_covers_no_bar(loc):
    # As lesson 01 draws it: trained-looking weights peaked at 0, the 90% band shaded, three
    # panels side by side, and the legend moved to a corner after the call.
    weights = torch.randn(300 * 784, generator=torch.Generator().manual_seed(0)) * 0.05
    tau = weights.abs().kthvalue(round(0.9 * weights.numel())).values.item()
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8), layout="constrained")
    ax = plots.weight_histogram(weights, pruned_threshold=tau, axes=axes[0],
                                label="fc1, trained dense", title="before pruning")
    ax.legend(fontsize="x-small", loc=loc)
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    bars = [bar.get_window_extent() for bar in ax.containers[0] if bar.get_height() > 0]
    assert not [b for b in bars if b.overlaps(legend)], "the legend covers bars"


def test_the_histogram_band_is_the_pruned_set_its_legend_names():
    # weights with |w| <= tau are pruned (tau = the k-th smallest |w|), as the lessons say
    w = torch.tensor([-0.5, -0.25, 0.1, 0.25, 0.9])
    ax = plots.weight_histogram(w, pruned_threshold=0.25, bins=5)
    assert ax.get_legend().get_texts()[1].get_text() == \
        "pruned band |w| ≤ τ = 0.25 (60.0% of weights)"


def test_weight_histogram_reads_a_pruned_model_and_can_drop_its_zeros():
    model = pk.models.lenet_300_100()
    tprune.l1_unstructured(model.fc1, "weight", amount=0.5)
    total = pk.metrics.count_params(model) - sum(m.bias.numel() for _, m in
                                                 pk.models.prunable(model))
    ax = plots.weight_histogram(model, bins=10)
    assert sum(bar.get_height() for bar in ax.containers[0]) == total
    ax = plots.weight_histogram(model, bins=10, drop_zeros=True, log_count=True)
    assert sum(bar.get_height() for bar in ax.containers[0]) == total - 300 * 784 // 2
    assert ax.get_yscale() == "log"


@pytest.mark.parametrize("weights, kwargs, error, match", [
    (torch.zeros(0), {}, ValueError, "weights is empty"),
    (torch.zeros(3), {"drop_zeros": True}, ValueError, "every weight is zero"),
    (torch.ones(3), {"pruned_threshold": -1}, ValueError, "pruned_threshold must be"),
    (torch.ones(3), {"bins": 0}, ValueError, "bins must be a positive int"),
    ("weights", {}, TypeError, "weights must be numbers"),
])
def test_weight_histogram_rejects_bad_input(weights, kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.weight_histogram(weights, **kwargs)


def test_weight_histogram_accepts_a_dict_of_tensors():
    ax = plots.weight_histogram({"a": torch.ones(2, 2), "b": np.zeros(3)}, bins=2)
    assert sum(bar.get_height() for bar in ax.containers[0]) == 7


# ----------------------------------------------------------------------------- layer bars

def test_layer_sparsity_bars_heights_are_the_percentages_given():
    ax = plots.layer_sparsity_bars({"fc1": 0.9, "fc2": 0.25, "fc3": 0.0}, overall=0.8)
    assert [p.get_height() for p in ax.patches] == pytest.approx([90, 25, 0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "fc2", "fc3"]
    assert "whole network (80.0%)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert labelled(ax)


@pytest.mark.parametrize("heights, overall", [
    ((0.91, 0.60, 0.30), 0.91),      # the 91% label of lesson 01 sat on the 91% line
    ((0.88, 0.95, 0.10), 0.91),      # a line just above one bar and just below another
    ((0.05, 0.50), 0.06),            # a short bar under the line
])
def test_bar_labels_stay_clear_of_the_whole_network_line(heights, overall):
    fig = plt.figure(figsize=(7, 4.5), layout="constrained")
    groups = {"one-shot": dict(zip(("fc1", "fc2", "fc3"), heights)),
              "iterative": dict(zip(("fc1", "fc2", "fc3"), heights))}
    ax = plots.layer_sparsity_bars(groups, overall=overall, axes=fig.add_subplot(),
                                   legend_loc="lower right")
    fig.canvas.draw()
    line_y = ax.transData.transform((0, 100 * overall))[1]
    labels = [t for t in ax.texts if t.get_text().endswith("%")]
    assert len(labels) == 2 * len(heights)
    clear_px = 4          # a label resting on the line (2 points above it) reads as crossed
    crossed = [t.get_text() for t in labels if t.get_window_extent().y0 - clear_px
               <= line_y <= t.get_window_extent().y1 + clear_px]
    assert not crossed, f"the dashed line runs through or touches {crossed}"
    texts = sorted(t.get_text() for t in labels)
    assert texts == sorted(f"{100 * h:.0f}%" for h in heights * 2)


def test_layer_sparsity_bars_groups_methods_side_by_side():
    ax = plots.layer_sparsity_bars({"local": {"fc1": 0.5, "fc2": 0.5},
                                    "global": {"fc1": 0.7, "fc2": 0.1}})
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["local", "global"]


@pytest.mark.parametrize("data, kwargs, error, match", [
    ({}, {}, TypeError, "non-empty dict"),
    ({"fc1": 1.5}, {}, ValueError, "layer 'fc1' must be a number in"),
    ({"fc1": 0.5}, {"overall": 2}, ValueError, "overall must be"),
    ({"m": {}}, {}, TypeError, r"sparsities\['m'\]"),
])
def test_layer_sparsity_bars_rejects_bad_input(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.layer_sparsity_bars(data, **kwargs)


# ----------------------------------------------------------------------------- mask image

def test_mask_image_shows_the_mask_and_the_kept_fraction():
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    ax = plots.mask_image(mask)
    np.testing.assert_array_equal(ax.images[0].get_array(), mask.bool().numpy())
    assert ax.get_title() == "50.0% of weights kept" and labelled(ax)


def test_mask_image_flattens_conv_masks_and_strides_big_ones():
    conv = torch.ones(8, 2, 3, 3)
    assert plots.mask_image(conv).images[0].get_array().shape == (8, 18)
    big = torch.ones(1000, 50)
    big[:, 0] = 0
    ax = plots.mask_image(big, max_size=200)
    assert ax.images[0].get_array().shape == (200, 50)
    assert ax.get_title() == "98.0% of weights kept"


@pytest.mark.parametrize("mask, kwargs, match", [
    (torch.ones(2, 2, 2), {}, "2-D"), (torch.ones(0, 3), {}, "non-empty"),
    (torch.ones(2, 2), {"max_size": 0}, "max_size must be"),
])
def test_mask_image_rejects_bad_input(mask, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.mask_image(mask, **kwargs)


def test_close_rejects_what_is_not_an_axes():
    with pytest.raises(TypeError, match="axes must be a matplotlib Axes"):
        plots.close(plt.figure())


# ----------------------------------------------------------------------------- legends

def test_outside_legends_sit_right_of_the_axes():
    fig = plt.figure(figsize=(6, 4))
    ax = plots.layer_sparsity_bars({"fc1": 0.5}, axes=fig.add_subplot())
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1
    own = plots.layer_sparsity_bars({"fc1": 0.5})          # a new figure is widened for it
    assert own.figure.get_figwidth() > plots.FIGSIZE[0]


@pytest.mark.parametrize("draw", [
    lambda loc: plots.plot([0, 1], [0, 1], "x (a.u.)", "y (a.u.)", legend="a", legend_loc=loc),
    lambda loc: plots.accuracy_vs_sparsity(runs(), legend_loc=loc),
    lambda loc: plots.weight_histogram(torch.ones(3), legend_loc=loc),
    lambda loc: plots.layer_sparsity_bars({"fc1": 0.5}, legend_loc=loc),
    lambda loc: plots.mask_image(torch.ones(2, 2), legend_loc=loc),
])
def test_every_figure_takes_a_legend_location_and_rejects_unknown_ones(draw):
    assert labelled(draw("lower left"))
    with pytest.raises(ValueError, match="legend_loc must be 'outside' or a matplotlib location"):
        draw("top")
