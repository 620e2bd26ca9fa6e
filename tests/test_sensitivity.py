"""Learning-rate x weight-decay sensitivity: the analysis by hand, a real small study on
mnist5k whose pruned best region overlaps the base one, heatmaps, Optuna, bad input."""

import math

import matplotlib
import matplotlib.patches
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest

import pruning_kit as pk
from pruning_kit import sensitivity as sens



def grid_frame(setting, accuracy, lrs=(1e-3, 1e-2, 1e-1), wds=(1e-5, 1e-4, 1e-3)):
    """A frame whose accuracy[i][j] belongs to weight decay wds[i] and learning rate lrs[j]."""
    rows = [{"setting": setting, "lr": lr, "weight_decay": wd, "accuracy": accuracy[i][j]}
            for i, wd in enumerate(wds) for j, lr in enumerate(lrs)]
    return pd.DataFrame(rows)


PEAK = [[0.5, 0.6, 0.5],
        [0.6, 0.9, 0.6],
        [0.5, 0.6, 0.5]]
SHIFTED = [[0.5, 0.5, 0.6],     # the same peak, one decade higher in lr
           [0.5, 0.6, 0.9],
           [0.5, 0.5, 0.6]]


def test_top_configs_within_tolerances():
    acc = [[0.900, 0.950, 0.946],
           [0.930, 0.941, 0.800],
           [0.100, 0.100, 0.100]]
    frame = grid_frame("base", acc)
    top05 = sens.top_configs(frame, within=0.005)
    top1 = sens.top_configs(frame, within=0.01)
    assert sorted(top05.accuracy) == [0.946, 0.95]
    assert sorted(top1.accuracy) == [0.941, 0.946, 0.95]
    # with two settings, each is compared with its own best
    both = pd.concat([frame, grid_frame("pruned", [[a - 0.5 for a in row] for row in acc])])
    assert sens.top_configs(both, within=0.005).groupby("setting").size().to_dict() == \
        {"base": 2, "pruned": 2}


def test_confidence_ellipse_matches_the_covariance_of_the_top_points():
    acc = [[0.95, 0.95, 0.10],
           [0.10, 0.95, 0.10],
           [0.10, 0.95, 0.95]]
    frame = grid_frame("base", acc)
    e = sens.confidence_ellipse(frame, within=0.01)
    top = sens.top_configs(frame, within=0.01)
    pts = np.log10(top[["lr", "weight_decay"]].to_numpy())
    assert e.n_points == 5
    assert np.allclose(e.center, pts.mean(0))
    assert np.allclose(e.covariance, np.cov(pts, rowvar=False))
    values = np.linalg.eigvalsh(np.cov(pts, rowvar=False))
    assert e.width == pytest.approx(4 * math.sqrt(values[1]))     # 2 sigma on both sides
    assert e.height == pytest.approx(4 * math.sqrt(values[0]))
    assert e.mass == pytest.approx(0.8647, abs=1e-4)
    assert e.contains(*e.center) and not e.contains(e.center[0] + 5, e.center[1])
    # a single best point gives a zero-size ellipse at that point
    single = sens.confidence_ellipse(grid_frame("b", PEAK), within=0.0)
    assert single.width == 0 and single.center == (-2.0, -4.0)


def test_distances_by_hand():
    base, same, shifted = (grid_frame("base", PEAK), grid_frame("same", PEAK),
                           grid_frame("shifted", SHIFTED))
    frame = pd.concat([base, same, shifted])
    assert sens.surface_distance(frame, "base", "same") == pytest.approx(0, abs=1e-9)
    # the peak moves one decade in lr; the shoulders move too: all mass travels one decade,
    # except where the clipped edge keeps some in place, so the distance is at most 1
    assert 0.5 < sens.surface_distance(frame, "base", "shifted") <= 1 + 1e-9
    assert sens.surface_distance(frame, "base", "shifted", within=0.01) == pytest.approx(1.0)
    assert sens.top_overlap(frame, "base", "same") == 1.0
    assert sens.top_overlap(frame, "base", "shifted", within=0.01) == 0.0
    table = sens.summary(frame, within=0.01)
    assert table.setting.tolist() == ["base", "same", "shifted"]
    assert table.best_lr.tolist() == [1e-2, 1e-2, 1e-1]
    assert table.wasserstein.iloc[0] == 0


def test_surface_and_heatmap_draw_the_ellipse():
    frame = grid_frame("base", [[0.95, 0.95, 0.10], [0.10, 0.95, 0.10], [0.10, 0.95, 0.95]])
    table = sens.surface(frame)
    assert list(table.index) == [1e-3, 1e-4, 1e-5] and list(table.columns) == [1e-3, 1e-2, 1e-1]
    ax = sens.plot_heatmap(frame, within=(0.005, 0.01))
    ellipses = [p for p in ax.patches if isinstance(p, matplotlib.patches.Ellipse)]
    assert len(ellipses) == 1
    # top points at (lr index, row) = (0,2) (1,2) (1,1) (1,0) (2,0): rows run largest wd first,
    # so the centre is the middle cell and the ellipse leans from bottom-left to top-right
    # on screen, i.e. a negative slope in data coordinates (angle near 135 degrees)
    assert np.allclose(ellipses[0].center, (1.5, 1.5))
    assert 90 < ellipses[0].angle % 180 < 180
    assert ax.get_xlabel() == "learning rate" and ax.get_ylabel() == "weight decay"
    matplotlib.pyplot.close("all")


def test_bad_input_is_refused():
    frame = grid_frame("base", PEAK)
    with pytest.raises(ValueError, match="within must be"):
        sens.top_configs(frame, within=1.5)
    with pytest.raises(ValueError, match="setting 'nope' is not in the frame"):
        sens.confidence_ellipse(frame, setting="nope")
    with pytest.raises(ValueError, match="lacks the columns"):
        sens.top_configs(frame.drop(columns="accuracy"))
    two = pd.concat([frame, grid_frame("pruned", SHIFTED)])
    with pytest.raises(ValueError, match="several settings"):
        sens.confidence_ellipse(two)
    zero_wd = frame.assign(weight_decay=0.0)
    with pytest.raises(ValueError, match="log10"):
        sens.confidence_ellipse(zero_wd)
    with pytest.raises(ValueError, match="positive numbers"):
        sens.grid_search(pk.models.lenet5, None, None, lrs=[1e-3], weight_decays=[0.0])
    with pytest.raises(TypeError, match="model_fn"):
        sens.grid_search(pk.models.lenet5(), None, None, lrs=[1e-3], weight_decays=[1e-4])
    with pytest.raises(ValueError, match="modes"):
        sens.sensitivity_study(pk.models.lenet5, None, None, None, lrs=[1e-3],
                               weight_decays=[1e-4], modes=["rewind"])
    with pytest.raises(ValueError, match="ratios"):
        sens.sensitivity_study(pk.models.lenet5, None, None, None, lrs=[1e-3],
                               weight_decays=[1e-4], ratios=[1.0])
    with pytest.raises(ValueError, match="best must be"):
        sens.grid_around((0.0, 1e-4))


def test_pruned_best_region_overlaps_the_base_one(mnist5k):
    """The talk's finding at laptop scale: after structured pruning and retraining from scratch,
    the best learning-rate / weight-decay region still overlaps the base model's."""
    train, test = mnist5k
    train, test = pk.data.subset(train, 600, seed=0), pk.data.subset(test, 500, seed=0)
    lrs, wds = [1e-4, 1e-3, 1e-2, 1e-1], [1e-5, 1e-4]
    frame = sens.sensitivity_study(pk.models.lenet5, train, test, test.images[:1], lrs=lrs,
                                   weight_decays=wds, ratios=[0.5], modes=["retrain"], epochs=2,
                                   batch_size=32, progress=False)
    assert frame.setting.unique().tolist() == ["base", "retrain 50%"]
    assert len(frame) == 16 and frame.accuracy.between(0, 1).all()
    base, pruned = frame[frame.setting == "base"], frame[frame.setting == "retrain 50%"]
    assert pruned.params.iloc[0] < 0.6 * base.params.iloc[0]
    assert pruned.macs.iloc[0] < 0.4 * base.macs.iloc[0]
    # the grid has a clear structure: too small and too large learning rates both lose
    for rows in (base, pruned):
        best = rows.accuracy.max()
        assert best > 0.8
        assert rows[rows.lr == 1e-1].accuracy.max() < best - 0.2
        assert rows[rows.lr == 1e-4].accuracy.max() < best - 0.05
    assert sens.top_overlap(frame, "base", "retrain 50%", within=0.02) > 0
    assert sens.surface_distance(frame, "base", "retrain 50%") < 0.5
    e_base = sens.confidence_ellipse(frame, 0.02, setting="base")
    e_pruned = sens.confidence_ellipse(frame, 0.02, setting="retrain 50%")
    assert abs(e_base.center[0] - e_pruned.center[0]) <= 1.0   # within a decade in lr
    fig = sens.plot_heatmaps(frame, shared_scale=True)
    assert sum(isinstance(p, matplotlib.patches.Ellipse) for ax in fig.axes
               for p in ax.patches) == 2
    matplotlib.pyplot.close("all")


def test_optuna_search_uses_sqlite_and_resumes(mnist5k, tmp_path):
    train, test = mnist5k
    train, val = pk.data.subset(train, 300, seed=0), pk.data.subset(test, 200, seed=0)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = sens.optuna_search(pk.models.lenet_300_100, train, val, n_trials=3, epochs=2,
                               storage=storage)
    assert (tmp_path / "study.db").exists()
    assert len(study.trials) == 3
    # a finished trial scores what training with its settings gives, redone here by hand
    best = study.best_trial
    pk.train.seed_everything(0)
    model = pk.models.lenet_300_100()
    pk.train.fit(model, train, epochs=2, lr=best.params["lr"],
                 weight_decay=best.params["weight_decay"], seed=0, progress=False)
    assert best.value == pytest.approx(pk.train.evaluate(model, val))
    again = sens.optuna_search(pk.models.lenet_300_100, train, val, n_trials=1, epochs=2,
                               storage=storage)
    assert len(again.trials) == 4    # the stored study was continued
    lrs, wds = sens.grid_around(again, points=3, decades=2)
    assert lrs[1] == pytest.approx(again.best_params["lr"])
    assert lrs[2] / lrs[0] == pytest.approx(100)


def test_ratios_can_count_macs_instead_of_filters(mnist5k):
    # target="macs": each ratio is the share of MACs removed (the talk's definition), spread over
    # the convs non-uniformly; the frame records which share of filters each conv lost
    train, test = mnist5k
    train, test = pk.data.subset(train, 200, seed=0), pk.data.subset(test, 200, seed=0)
    x = test.images[:1]
    frame = sens.sensitivity_study(pk.models.lenet5, train, test, x, lrs=[1e-3],
                                   weight_decays=[1e-4], ratios=[0.3, 0.6], modes=["retrain"],
                                   epochs=1, target="macs", progress=False)
    base = frame[frame.setting == "base"].macs.iloc[0]
    for ratio in (0.3, 0.6):
        pruned = frame[frame.setting == f"retrain {ratio:.0%}"].macs.iloc[0]
        assert abs(1 - pruned / base - ratio) < 0.03
    assert frame.attrs["target"] == "macs"
    assert set(frame.attrs["filters_removed"]) == {"30%", "60%"}
    assert set(frame.attrs["filters_removed"]["60%"]) == {"conv1", "conv2"}
    uniform = sens.sensitivity_study(pk.models.lenet5, train, test, x, lrs=[1e-3],
                                     weight_decays=[1e-4], ratios=[0.6], modes=["retrain"],
                                     epochs=1, progress=False)
    assert uniform.attrs["filters_removed"] == {"60%": {"conv1": 0.6, "conv2": 0.6}}
    assert 1 - uniform.macs.iloc[-1] / base > 0.7      # 60% of the filters: over 70% of the MACs
    with pytest.raises(ValueError, match="target must be one of"):
        sens.sensitivity_study(pk.models.lenet5, train, test, x, lrs=[1e-3],
                               weight_decays=[1e-4], target="flops")
    with pytest.raises(ValueError, match="one or the other"):
        sens.sensitivity_study(pk.models.lenet5, train, test, x, lrs=[1e-3],
                               weight_decays=[1e-4], target="macs", prune_ratios={"conv1": 0.5})


def test_optuna_search_keeps_its_study_in_memory_by_default(mnist5k, tmp_path, monkeypatch):
    train, test = mnist5k
    train, val = pk.data.subset(train, 200, seed=0), pk.data.subset(test, 100, seed=0)
    monkeypatch.chdir(tmp_path)
    study = sens.optuna_search(pk.models.lenet_300_100, train, val, n_trials=1, epochs=1)
    assert len(study.trials) == 1
    assert list(tmp_path.iterdir()) == []      # no database left in the user's folder


def test_the_package_answers_for_its_modules_and_the_heatmaps_live_in_plots():
    from pruning_kit.sensitivity import analysis, grid, search

    for module in (grid, analysis, search):
        for name in module.__all__:
            assert getattr(sens, name) is getattr(module, name), name
    assert sens.plot_heatmap is pk.plots.plot_heatmap
    assert sens.plot_heatmaps is pk.plots.plot_heatmaps
    frame = pd.concat([grid_frame("base", PEAK), grid_frame("pruned", SHIFTED)])
    assert sens.settings(frame) == ["base", "pruned"]
    with pytest.raises(ValueError, match="needs a 'setting' column"):
        sens.settings(frame.drop(columns="setting"))
