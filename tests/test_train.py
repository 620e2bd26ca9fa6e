import math

import pytest
import torch

import pruning_kit as pk


def test_lenet_reaches_93_percent_on_mnist5k(mnist5k, trained_lenet):
    """Foundation claim: a few epochs of fit give >= 93% test accuracy."""
    assert pk.train.evaluate(trained_lenet, mnist5k[1]) >= 0.93


def test_same_seed_same_numbers(mnist5k):
    train, test = pk.data.subset(mnist5k[0], 500), mnist5k[1]
    runs = []
    for _ in range(2):
        pk.train.seed_everything(3)
        model = pk.models.lenet_300_100()
        h = pk.train.fit(model, train, epochs=2, seed=5, progress=False)
        runs.append((h.loss, pk.train.evaluate(model, test)))
    assert runs[0] == runs[1]


def test_history_records_epochs_and_evaluations(mnist5k):
    train = pk.data.subset(mnist5k[0], 640)
    model = pk.models.lenet_300_100()
    h = pk.train.fit(model, train, epochs=3, batch_size=64, progress=False,
                     val=mnist5k[1], eval_every=5, schedule="cosine")
    assert len(h.loss) == len(h.val_accuracy) == 3 and h.iterations == 30
    assert [e["iteration"] for e in h.evals] == [0, 5, 10, 15, 20, 25, 30]
    assert h.lr[0] > h.lr[-1]
    assert h.best_eval()["loss"] == min(e["loss"] for e in h.evals)
    assert list(h.frame().columns) == ["epoch", "loss", "train_accuracy", "lr", "val_accuracy"]


def test_iterations_and_callbacks(mnist5k):
    seen = []
    pk.train.fit(pk.models.lenet_300_100(), mnist5k[0], iterations=7, progress=False,
                 callbacks=[lambda model, step: seen.append(step)])
    assert seen == list(range(8))


def test_reconstruction_loss_trains_autoencoder(mnist5k):
    train = pk.data.subset(mnist5k[0], 500)
    ae = pk.models.autoencoder()
    before = pk.train.evaluate_loss(ae, mnist5k[1], loss="reconstruction")
    h = pk.train.fit(ae, train, epochs=2, loss="reconstruction", progress=False)
    assert math.isnan(h.train_accuracy[0])
    assert pk.train.evaluate_loss(ae, mnist5k[1], loss="reconstruction") < before


def test_progress_false_is_silent(mnist5k, capsys):
    pk.train.fit(pk.models.lenet_300_100(), pk.data.subset(mnist5k[0], 100), epochs=1,
                 progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_evaluate_restores_training_mode(mnist5k):
    model = pk.models.lenet_300_100().train()
    pk.train.evaluate(model, mnist5k[1])
    assert model.training


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 0}, "lr must be a positive number"),
    ({"epochs": -1}, "epochs must be a non-negative int"),
    ({"optimizer": "adamw"}, "optimizer must be one of"),
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"weight_decay": -1e-4}, "weight_decay must be a number >= 0"),
    ({"eval_every": 10}, "eval_every needs val"),
    ({"loss": "hinge"}, "loss must be one of"),
])
def test_fit_rejects_bad_arguments(mnist5k, kwargs, message):
    model = pk.models.lenet_300_100()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        pk.train.fit(model, mnist5k[0], progress=False, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fit_wrong_input_shape_is_clear(mnist5k):
    train, _ = pk.data.load("digits")
    with pytest.raises(ValueError, match=r"expects input of shape \(N x 784\)"):
        pk.train.fit(pk.models.lenet_300_100(), train, epochs=1, progress=False)


def test_num_threads_restores_setting():
    before = torch.get_num_threads()
    with pk.train.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be a positive int"):
        with pk.train.num_threads(0):
            pass


# ------------------------------------------------------------------------------ recipes

TRAINING_FUNCTIONS = ["train.fit", "prune.iterative", "lottery.imp", "lottery.reinit_control",
                      "lottery.random_prune_control", "quant.qat_vs_ptq", "quant.deep_compress",
                      "structured.alpha_prune", "structured.iterative_filter_prune",
                      "structured.compare_alpha_iterative", "sensitivity.grid_search",
                      "sensitivity.sensitivity_study"]


@pytest.mark.parametrize("path", TRAINING_FUNCTIONS)
def test_every_training_function_takes_a_recipe(path):
    import inspect

    module, name = path.split(".")
    function = getattr(getattr(pk, module), name)
    parameter = inspect.signature(function).parameters.get("recipe")
    assert parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is None and "recipe" in function.__doc__


def test_a_recipe_trains_like_the_keyword_arguments_it_replaces():
    train, _ = pk.data.load("digits")
    recipe = pk.train.Recipe(epochs=2, lr=3e-3, optimizer="sgd", weight_decay=1e-4,
                             batch_size=50, seed=4)
    a, b = pk.models.lenet_300_100(64), pk.models.lenet_300_100(64)
    b.load_state_dict(a.state_dict())
    pk.train.fit(a, train, recipe=recipe, progress=False)
    pk.train.fit(b, train, epochs=2, lr=3e-3, optimizer="sgd", weight_decay=1e-4, batch_size=50,
                 seed=4, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_recipe_fills_renamed_settings_and_refuses_conflicts():
    train, test = pk.data.load("digits")
    model = pk.models.lenet_300_100(64)
    log = pk.prune.iterative(model, train, 0.5, steps=1, test=test,
                             recipe=pk.train.Recipe(epochs=1, lr=2e-3))
    assert len(log) == 1 and log[0].sparsity == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="got both recipe= and retrain_epochs="):
        pk.prune.iterative(model, train, 0.5, retrain_epochs=1,
                           recipe=pk.train.Recipe(epochs=2))
    with pytest.raises(ValueError, match="recipe sets optimizer='sgd', which qat_vs_ptq does "
                                         "not use"):
        pk.quant.qat_vs_ptq(model, train, test, recipe=pk.train.Recipe(optimizer="sgd"))
    with pytest.raises(TypeError, match="recipe must be a pk.train.Recipe"):
        pk.train.fit(model, train, recipe={"epochs": 1})


def training_function(path):
    module, name = path.split(".")
    return getattr(getattr(pk, module), name)


def arguments_received(function, monkeypatch, **kwargs):
    """The arguments ``function``'s body receives (defaults filled in), without training."""
    import inspect

    body = function.__wrapped__
    signature = inspect.signature(body)
    received = {}

    def record(*args, **keywords):
        bound = signature.bind(*args, **keywords)
        bound.apply_defaults()
        received.update(bound.arguments)

    monkeypatch.setattr(function, "__wrapped__", record)
    try:
        required = [p for p in signature.parameters.values() if p.default is p.empty]
        function(*[f"<{p.name}>" for p in required if p.kind is p.POSITIONAL_OR_KEYWORD],
                 **{p.name: f"<{p.name}>" for p in required if p.kind is p.KEYWORD_ONLY}, **kwargs)
    finally:
        monkeypatch.setattr(function, "__wrapped__", body)
    return received


ONE_SETTING = {"epochs": 13, "lr": 0.0123, "optimizer": "sgd", "weight_decay": 0.0123,
               "batch_size": 13, "seed": 13}


@pytest.mark.parametrize("path", TRAINING_FUNCTIONS)
def test_a_recipe_with_one_setting_changes_only_that_setting(path, monkeypatch):
    # The function's own defaults stay for every setting the recipe leaves out: a Recipe(lr=...)
    # given to lottery.imp trains imp's 10 epochs, not the 5 a Recipe would otherwise carry.
    function = training_function(path)
    defaults = arguments_received(function, monkeypatch)
    for setting, value in ONE_SETTING.items():
        recipe = pk.train.Recipe(**{setting: value})
        parameter = function.recipe_parameters.get(setting)
        if parameter is None:   # a setting the function has no use for is refused, not ignored
            assert setting not in defaults
            with pytest.raises(ValueError, match=f"recipe sets {setting}="):
                arguments_received(function, monkeypatch, recipe=recipe)
            continue
        received = arguments_received(function, monkeypatch, recipe=recipe)
        changed = {name for name in defaults if received[name] != defaults[name]}
        assert changed == {parameter}, (setting, changed)
        assert received[parameter] == value
        assert received == arguments_received(function, monkeypatch, **{parameter: value})


@pytest.mark.parametrize("path", TRAINING_FUNCTIONS)
def test_an_empty_recipe_changes_nothing(path, monkeypatch):
    function = training_function(path)
    assert pk.train.Recipe().given() == {}
    assert (arguments_received(function, monkeypatch, recipe=pk.train.Recipe())
            == arguments_received(function, monkeypatch))


def test_imp_with_a_recipe_of_one_learning_rate_trains_its_own_ten_epochs(monkeypatch):
    # the example that motivated the rule: the recipe's lr arrives at fit, imp's 10 epochs too
    train, test = pk.data.load("digits")
    seen = []
    real_fit = pk.train.fit

    def spy(model, data, **settings):
        seen.append({k: settings[k] for k in ("epochs", "lr", "optimizer", "batch_size")})
        return real_fit(model, data, **{**settings, "iterations": 1})

    monkeypatch.setattr(pk.lottery, "fit", spy)
    pk.lottery.imp(lambda: pk.models.lenet_300_100(64), train, test, rounds=1, val_size=200,
                   recipe=pk.train.Recipe(lr=5e-4))
    assert seen == [{"epochs": 10, "lr": 5e-4, "optimizer": "adam", "batch_size": 64}] * 2


@pytest.mark.parametrize("bad,match", [({"epochs": -1}, "epochs must be a non-negative int"),
                                       ({"lr": 0}, "lr must be a positive number"),
                                       ({"optimizer": "rmsprop"}, "optimizer must be one of"),
                                       ({"batch_size": 0}, "batch_size must be a positive int")])
def test_a_recipe_checks_its_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        pk.train.Recipe(**bad)
    assert pk.train.Recipe().replace(epochs=7).epochs == 7
    assert pk.train.Recipe(epochs=7).given() == {"epochs": 7}
