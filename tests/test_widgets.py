"""The live explorers: right numbers, the user's model untouched, figures reused, no backlog."""

import asyncio
import copy
import io
import itertools
import math
import sys

import ipywidgets
import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.utils.prune as torch_prune

import pruning_kit as pk
from pruning_kit import widgets as w
from pruning_kit.widgets.canvas import check_backend, import_ipympl


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def explorer(trained_lenet_state, mnist5k):
    """One sparsity explorer with all four criteria (SNIP scored on 300 training images)."""
    train, test = mnist5k
    model = pk.models.lenet_300_100()
    model.load_state_dict(trained_lenet_state)
    snip_data = pk.data.subset(train, 300)
    ex = w.sparsity_explorer(model, test, snip_data=snip_data)
    return ex, model, snip_data


def buffer(ex):
    return np.asarray(ex.figure.canvas.buffer_rgba()).copy()


# ------------------------------------------------------------------ sparsity explorer


def test_every_criterion_prunes_exactly_round_s_n(explorer):
    ex, _, _ = explorer
    for method, s in itertools.product(w.METHODS, (0.0, 0.33, 0.9, 0.99)):
        r = ex.update(sparsity=s, method=method)
        kept = {name: int(m.sum()) for name, m in ex.masks.items()}
        if method in ("global", "snip"):        # one scope: the whole network
            assert ex.total - sum(kept.values()) == round(s * ex.total)
        else:                                   # every layer at s
            for name, n in ex._sizes.items():
                assert n - kept[name] == round(s * n), (method, s, name)
        assert r["kept"] == sum(kept.values())
        assert r["compression"] == pytest.approx(ex.total / r["kept"])


def test_masks_match_pk_prune(explorer, trained_lenet):
    ex, _, snip_data = explorer
    # The explorer's precomputed ranks must give the masks pk.prune computes from scratch.
    for scope in ("global", "local"):
        ex.update(sparsity=0.8, method=scope)
        model = pk.prune.magnitude(pk.prune.clone(trained_lenet), 0.8, scope=scope)
        for name, mask in pk.prune.masks(model).items():
            assert torch.equal(ex.masks[name], mask.float()), (scope, name)
    ex.update(sparsity=0.7, method="snip")
    model = pk.prune.snip(pk.prune.clone(trained_lenet), snip_data.images, snip_data.labels, 0.7)
    for name, mask in pk.prune.masks(model).items():
        assert torch.equal(ex.masks[name], mask.float()), name


def test_accuracy_is_that_of_the_pruned_model(explorer, trained_lenet, mnist5k):
    ex, _, _ = explorer
    _, test = mnist5k
    r = ex.update(sparsity=0.9, method="global")
    pruned = pk.prune.magnitude(trained_lenet, 0.9, scope="global")
    assert r["accuracy"] == pytest.approx(pk.train.evaluate(pruned, test), abs=1e-6)
    assert ex.update(sparsity=0.0)["accuracy"] == pytest.approx(ex.dense_accuracy)
    # pruning 99% at random leaves a network near chance; 90% global still works
    assert ex.update(sparsity=0.99, method="random")["accuracy"] < 0.5 < r["accuracy"]


def test_the_users_model_is_never_touched(trained_lenet, mnist5k):
    _, test = mnist5k
    model = copy.deepcopy(trained_lenet)
    torch_prune.l1_unstructured(model.fc2, "weight", amount=0.5)   # already pruned by the user
    before = state(model)
    ex = w.sparsity_explorer(model, test, methods=("global", "snip"), backend="image")
    for s in (0.5, 0.95):
        ex.update(sparsity=s, method="snip")
        ex.update(sparsity=s, method="global")
    assert same_state(before, state(model))
    assert torch_prune.is_pruned(model) and model.fc1.weight.grad is None
    # the user's masks are baked into the explorer's copy: 50% of fc2 is already zero
    assert ex.update(sparsity=0.0)["accuracy"] == pytest.approx(pk.train.evaluate(model, test))


def test_controls_follow_update_and_drive_it(explorer):
    ex, _, _ = explorer
    ex.update(sparsity=0.42, method="local")
    assert (ex.sparsity_slider.value, ex.method_dropdown.value) == (42, "local")
    ex.sparsity_slider.value = 87           # outside an event loop a move updates at once
    assert ex.results[-1]["sparsity"] == 0.87 and ex.results[-1]["method"] == "local"
    ex.method_dropdown.value = "random"
    assert ex.results[-1]["method"] == "random"
    assert f"{100 * ex.results[-1]['accuracy']:.1f}%" in ex.readout.value
    assert ex.sparsity_slider in ex.widget.children[1].children
    assert ex.figure_widget in ex.widget.children
    assert "pk-sparsity-slider" in ex.sparsity_slider._dom_classes


def test_update_keeps_unspecified_settings_and_reports_time(explorer):
    ex, _, _ = explorer
    ex.update(sparsity=0.5, method="snip")
    r = ex.update(sparsity=0.6)
    assert r["method"] == "snip" and r["ms"] > 0
    assert ex.update(method="global")["sparsity"] == 0.6
    assert set(r) >= {"sparsity", "method", "accuracy", "compression", "kept", "ms"}


def test_the_figure_is_reused_and_blitting_matches_a_full_redraw(explorer):
    ex, _, _ = explorer
    fig = ex.figure
    axes = list(fig.axes)
    children = [len(ax.get_children()) for ax in axes]
    ex.update(sparsity=0.3, method="global")
    first = buffer(ex)
    ex.update(sparsity=0.95, method="global")
    blitted = buffer(ex)
    assert ex.figure is fig and fig.axes == axes
    assert [len(ax.get_children()) for ax in axes] == children      # nothing added
    assert (first != blitted).any()                                   # the picture moved
    ex.live_figure.refresh(full=True)                                 # redraw from scratch
    assert np.array_equal(buffer(ex), blitted)
    # the curve filled in: each criterion keeps the points it was evaluated at
    xs, ys = ex._lines["global"].get_data()
    assert {30.0, 95.0} <= set(xs) and len(xs) == len(ys)


def test_the_curve_legend_lists_only_criteria_with_points(trained_lenet, mnist5k):
    ex = w.sparsity_explorer(trained_lenet, pk.data.subset(mnist5k[1], 200),
                             methods=("global", "local", "random"))

    def legend():
        return [t.get_text() for t in ex._ax_curve.get_legend().get_texts()]

    ex.widget                                                      # shown: first full draw
    assert legend() == [f"dense {w.base.percent(ex.dense_accuracy)}", "magnitude, global"]
    ex.update(sparsity=0.5)
    before = buffer(ex)
    ex.update(sparsity=0.5, method="random")                       # a new criterion, a point
    assert legend()[1:] == ["magnitude, global", "random, per layer"]
    shown = buffer(ex)
    ex.live_figure.refresh(full=True)                              # the legend is in the picture
    assert np.array_equal(buffer(ex), shown) and (shown != before).any()


def test_the_readout_goes_out_before_the_figure_is_redrawn(explorer, monkeypatch):
    ex, _, _ = explorer
    ex.update(sparsity=0.2, method="global")
    seen = []
    refresh = ex.live_figure.refresh
    monkeypatch.setattr(ex.live_figure, "refresh",
                        lambda *a, **k: seen.append(ex.readout.value) or refresh(*a, **k))
    r = ex.update(sparsity=0.7)
    assert seen and f"{r['kept']:,} of {ex.total:,} weights kept" in seen[0]
    assert r["ms"] > 0 and ex.results[-1]["ms"] == r["ms"]      # the result's time: with redraw


def test_moves_during_an_update_are_coalesced(explorer):
    ex, _, _ = explorer
    ex.update(sparsity=0.0, method="global")
    start = len(ex.results)

    async def drag():
        for value in range(10, 61):          # a fast drag: 51 moves in a row
            ex.sparsity_slider.value = value
        await asyncio.sleep(10 * ex.coalesce_s)

    asyncio.run(drag())
    done = [r["sparsity"] for r in ex.results[start:]]
    assert done[-1] == 0.6                   # the last move always lands
    assert len(done) <= 3                    # ... and the ones in between were skipped


def test_a_failing_update_from_a_widget_shows_its_error(explorer, monkeypatch):
    ex, _, _ = explorer
    ex.update(sparsity=0.1, method="global")

    def broken(**settings):
        raise RuntimeError("boom")

    monkeypatch.setattr(ex, "_compute", broken)
    ex.sparsity_slider.value = 20
    assert "RuntimeError: boom" in ex.readout.value


def test_sparsity_explorer_rejects_bad_arguments(explorer, trained_lenet, mnist5k):
    ex, _, _ = explorer
    _, test = mnist5k
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 0.99\].*fraction"):
        ex.update(sparsity=90)
    with pytest.raises(TypeError, match="sparsity must be a number"):
        ex.update(sparsity="0.5")
    with pytest.raises(ValueError, match="method must be one of"):
        ex.update(method="magnitude")
    with pytest.raises(ValueError, match="each method must be one of"):
        w.sparsity_explorer(trained_lenet, test, methods=("global", "l1"))
    with pytest.raises(TypeError, match="methods must be a non-empty tuple"):
        w.sparsity_explorer(trained_lenet, test, methods="global")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        w.sparsity_explorer("lenet", test)
    with pytest.raises(ValueError, match="backend must be one of"):
        w.sparsity_explorer(trained_lenet, test, backend="svg")
    with pytest.raises(TypeError, match="data must be a pk.data.TensorData"):
        w.sparsity_explorer(trained_lenet, [1, 2, 3])
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d"):
        w.sparsity_explorer(torch.nn.ReLU(), test)


def test_backends(trained_lenet, mnist5k):
    _, test = mnist5k
    small = pk.data.subset(test, 200)
    image = w.sparsity_explorer(trained_lenet, small, methods=("global",), backend="image")
    assert isinstance(image.figure_widget, ipywidgets.Image)
    assert image.widget.children[-1] is image.figure_widget          # shown: drawn once
    before = bytes(image.figure_widget.value)
    image.update(sparsity=0.9)
    after = bytes(image.figure_widget.value)
    assert before.startswith(b"\x89PNG") and after.startswith(b"\x89PNG") and after != before
    live = w.sparsity_explorer(trained_lenet, small, methods=("global",), backend="ipympl")
    from ipympl.backend_nbagg import Canvas

    assert isinstance(live.figure_widget, Canvas) and live.figure.canvas is live.figure_widget
    assert live.png().startswith(b"\x89PNG")


def test_importing_ipympl_leaves_matplotlibs_backend_alone(monkeypatch):
    for name in [m for m in sys.modules if m == "ipympl" or m.startswith("ipympl.")]:
        monkeypatch.delitem(sys.modules, name)       # a session that never imported ipympl
    before = matplotlib.rcParams._get_backend_or_none()
    assert import_ipympl().Canvas is sys.modules["ipympl.backend_nbagg"].Canvas
    assert matplotlib.rcParams._get_backend_or_none() == before


def test_auto_backend_follows_matplotlib(monkeypatch):
    assert check_backend("auto") == "image"                 # the tests run on Agg
    monkeypatch.setitem(matplotlib.rcParams, "backend", "module://ipympl.backend_nbagg")
    assert check_backend("auto") == "ipympl"                # after %matplotlib widget


def test_ipympl_frames_rebuild_the_figure_exactly(trained_lenet, mnist5k):
    from PIL import Image

    ex = w.sparsity_explorer(trained_lenet, pk.data.subset(mnist5k[1], 200), methods=("global",),
                             backend="ipympl")
    canvas = ex.figure_widget
    canvas._handle_message(canvas, {"type": "initialized"}, [])     # as a browser would
    frames = []
    canvas.send_binary = frames.append
    ex.widget                                                         # shown: a full frame
    ex.update(sparsity=0.5)
    ex.update(sparsity=0.9)                                           # two diff frames

    def decode(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))

    assert type(canvas).__name__ == "QuickCanvas"                    # frames via encode_png
    screen = decode(frames[0])
    for frame in frames[1:]:                       # the browser paints changed pixels over
        pixels = decode(frame)
        changed = pixels[:, :, 3] > 0
        screen = screen.copy()
        screen[changed] = pixels[changed]
    assert len(frames) >= 3 and canvas._current_image_mode == "diff"
    assert np.array_equal(screen, buffer(ex))


def test_ipympl_frames_before_the_browser_is_ready_are_data_urls(trained_lenet, mnist5k):
    # The browser shows _data_url as an image's address until it has said "initialized":
    # bare base64 there made it request /iVBORw0KGgo... and draw a broken image.
    import base64
    from PIL import Image

    ex = w.sparsity_explorer(trained_lenet, pk.data.subset(mnist5k[1], 200), methods=("global",),
                             backend="ipympl")
    ex.widget
    ex.update(sparsity=0.5)
    url = ex.figure_widget._data_url
    assert url.startswith("data:image/png;base64,"), url[:40]
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA")
    assert np.array_equal(np.asarray(picture), buffer(ex))


def test_a_demo_trains_once_and_loads_the_same_network_after(tmp_path, monkeypatch):
    train, _ = pk.data.load("digits")
    build = lambda: pk.models.lenet_300_100(in_features=64)   # noqa: E731
    calls = []
    fit = pk.train.fit
    monkeypatch.setattr(pk.train, "fit", lambda *a, **k: calls.append(k) or fit(*a, **k))
    first = w.trained_model(build, train, epochs=1, lr=0.05, optimizer="sgd", cache_dir=tmp_path)
    again = w.trained_model(build, train, epochs=1, lr=0.05, optimizer="sgd", cache_dir=tmp_path)
    assert len(calls) == 1 and same_state(state(first), state(again))
    # written out, the same training gives the same network: the cache changes no result
    pk.train.seed_everything(0)
    plain = build()
    fit(plain, train, epochs=1, lr=0.05, optimizer="sgd", seed=0, progress=False)
    assert same_state(state(plain), state(first))
    other = w.trained_model(build, train, epochs=1, lr=0.05, optimizer="sgd",
                            weight_decay=1e-3, cache_dir=tmp_path)
    assert len(calls) == 2 and not same_state(state(other), state(first))
    with pytest.raises(ValueError, match="must not set progress or seed"):
        w.trained_model(build, train, epochs=1, progress=True, cache_dir=tmp_path)


# ---------------------------------------------------------------------- bits explorer


@pytest.fixture(scope="module")
def bits(trained_lenet_state, mnist5k):
    model = pk.models.lenet_300_100()
    model.load_state_dict(trained_lenet_state)
    before = state(model)
    ex = w.bits_explorer(model, mnist5k[1])
    yield ex
    assert same_state(before, state(model))          # never touched the user's model


def test_bits_explorer_snaps_weights_to_levels(bits):
    for b in (1, 2, 3, 5):
        bits.update(bits=b, granularity="per-tensor", scheme="affine")
        for name, weight in bits.weights.items():
            assert len(torch.unique(weight)) <= 2 ** b, (b, name)
    bits.update(bits=4, granularity="per-channel", scheme="affine")
    for name, weight in bits.weights.items():
        expected = pk.quant.fake_quantize(bits._dense[name], 4, scheme="affine", dim=0)
        assert torch.allclose(weight, expected), name
    bits.update(bits=1, scheme="symmetric")          # sign x mean |w| of each output channel
    weight, dense = bits.weights["fc2"], bits._dense["fc2"]
    assert torch.allclose(weight.abs(), dense.abs().mean(1, keepdim=True).expand_as(weight))
    assert torch.equal(weight >= 0, dense >= 0)
    # one affine bit would give the levels {0, max - min}, no sign: both schemes binarize
    bits.update(bits=1, scheme="affine")
    assert torch.equal(bits.weights["fc2"], weight)
    for granularity, dim in (("per-tensor", None), ("per-channel", 0)):
        bits.update(bits=1, granularity=granularity)
        for name, binary in bits.weights.items():
            expected = pk.quant.binary_approximation(bits._dense[name], dim=dim)
            assert torch.equal(binary, expected), (granularity, name)
            assert bool((binary < 0).any()), name                # the sign survives


def test_bits_explorer_error_and_accuracy(bits):
    errors = [bits.update(bits=b, granularity="per-tensor", scheme="affine")["error"]
              for b in range(2, 9)]
    assert all(a > b for a, b in zip(errors, errors[1:]))            # each bit helps
    # one bit is another quantizer (sign x mean |w|): its error is ||w||^2 - n alpha^2 per layer
    lost = sum(float((w.double() ** 2).sum() - w.numel() * w.double().abs().mean() ** 2)
               for w in bits._dense.values())
    total = sum(float((w.double() ** 2).sum()) for w in bits._dense.values())
    assert bits.update(bits=1)["error"] == pytest.approx((lost / total) ** 0.5)
    assert errors[-1] < 0.02
    r8 = bits.update(bits=8)
    assert abs(r8["accuracy"] - bits.dense_accuracy) <= 0.01 and r8["compression"] == 4.0
    per_channel = bits.update(bits=4, granularity="per-channel")["error"]
    assert per_channel < bits.update(bits=4, granularity="per-tensor")["error"]
    assert (bits.bits_slider.value, bits.granularity_toggle.value) == (4, "per-tensor")
    bits.bits_slider.value = 6
    assert bits.results[-1]["bits"] == 6
    with pytest.raises(ValueError, match=r"bits must be an int in \[1, 8\]"):
        bits.update(bits=9)
    with pytest.raises(ValueError, match="granularity must be one of"):
        bits.update(granularity="per-row")
    with pytest.raises(ValueError, match="scheme must be one of"):
        bits.update(scheme="log")


# -------------------------------------------------------------------- ticket explorer


def make_rounds(model, count=4):
    rounds = []
    for k in range(count):
        masks = {}
        if k:
            pruned = pk.prune.magnitude(pk.prune.clone(model), 1 - 0.5 ** k, scope="local")
            masks = pk.prune.masks(pruned)
        rounds.append(pk.lottery.TicketRound(round=k, remaining=0.5 ** k, accuracy=0.9 + k / 100,
                                             early_stop_iteration=1000 - 100 * k, masks=masks))
    return rounds


def test_ticket_explorer_steps_through_rounds(trained_lenet):
    rounds = make_rounds(trained_lenet)
    ex = w.ticket_explorer(rounds, backend="image")
    r = ex.update(round=3)
    assert (r["round"], r["remaining"], r["accuracy"], r["early_stop_iteration"]) == \
        (3, 0.125, 0.93, 700)
    kept = ex._mask_image.get_array()
    expected = rounds[3].masks["fc1"].mean(0).reshape(28, 28).numpy()
    assert np.allclose(kept, expected)
    ex.round_slider.value = 1
    assert ex.results[-1]["round"] == 1 and "pk-accuracy" in ex.readout.value
    as_percent = [{**r.row(), "remaining": 100 * r.remaining, "masks": r.masks} for r in rounds]
    assert w.ticket_explorer(as_percent).update(round=2)["remaining"] == 0.25
    with pytest.raises(ValueError, match=r"round must be one of \(0, 1, 2, 3\)"):
        ex.update(round=7)
    with pytest.raises(TypeError, match="lacks \\['masks'\\]"):
        w.ticket_explorer([{"round": 0, "remaining": 1.0, "accuracy": 0.9,
                            "early_stop_iteration": 10}])
    with pytest.raises(ValueError, match="rounds is empty"):
        w.ticket_explorer([])


# ---------------------------------------------------------------- filter and grid


def test_filter_explorer_measures_the_physically_pruned_model(mnist5k):
    torch.manual_seed(0)
    model = pk.models.lenet5()
    before = state(model)
    x = torch.zeros(1, 1, 28, 28)
    ex = w.filter_explorer(model, x, test=pk.data.subset(mnist5k[1], 200), max_ratio=0.5,
                           step=0.25, repeats=2, backend="image")
    assert ex.ratios == [0.0, 0.25, 0.5]
    r = ex.update(ratio=0.5)
    small = pk.structured.l1_filter_prune(model, 0.5, x)
    assert r["params"] == pk.metrics.count_params(small) < ex.dense_params
    assert r["macs"] == pk.metrics.macs(small, x) and r["latency_ms"] > 0
    assert 0 <= r["accuracy"] <= 1
    assert ex.update(ratio=0.0)["params"] == ex.dense_params
    assert same_state(before, state(model))
    with pytest.raises(ValueError, match="ratio must be one of"):
        ex.update(ratio=0.3)
    coarse = w.filter_explorer(model, x, max_ratio=0.9, step=0.25, repeats=1, backend="image")
    assert coarse.ratios == [0.0, 0.25, 0.5, 0.75]                    # never past max_ratio


def test_grid_explorer_averages_seeds_and_finds_the_best_cell():
    rows = [{"pruning": p, "lr": lr, "weight_decay": wd, "seed": seed,
             "accuracy": 0.5 + (lr == 1e-2) * 0.2 + p * (wd == 1e-4) * 0.4 + seed * 0.01}
            for p, lr, wd, seed in itertools.product([0.0, 0.5], [1e-3, 1e-2], [0, 1e-4], [0, 1])]
    ex = w.grid_explorer(pd.DataFrame(rows), backend="image")
    r = ex.update(pruning=0.5)
    assert r["accuracy"] == pytest.approx(0.5 + 0.2 + 0.2 + 0.005)   # mean of the two seeds
    assert (r["best_lr"], r["best_weight_decay"]) == (1e-2, 1e-4)
    assert ex.update(level=0.0)["best_weight_decay"] == 0
    assert ex.level_slider.value == 0.0
    assert math.isclose(ex._image.get_array()[1, 1], 0.705)
    with pytest.raises(ValueError, match="lacks the columns \\['accuracy'\\]"):
        w.grid_explorer(pd.DataFrame(rows).drop(columns="accuracy"))
    with pytest.raises(ValueError, match=r"pruning must be one of \(0.0, 0.5\)"):
        ex.update(pruning=0.9)
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame"):
        w.grid_explorer(rows)
    named = pd.DataFrame(rows).assign(method=lambda f: f.pruning.map({0.0: "dense", 0.5: "L1"}))
    by_name = w.grid_explorer(named, by="method", backend="image")
    assert by_name.levels == ["L1", "dense"] and by_name.update(method="L1")["best_lr"] == 1e-2
