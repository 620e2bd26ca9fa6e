"""Deployment through ONNX: export, ONNX Runtime sessions, its int8 quantizers, CPU features.

Small models on the embedded 8x8 digits keep every test to a second or two.
"""

import pytest
import torch

import pruning_kit as pk
from pruning_kit._checks import InvalidParameterError


@pytest.fixture(scope="module")
def digits():
    return pk.data.load("digits")


@pytest.fixture(scope="module")
def trained(digits):
    train, _ = digits
    pk.train.seed_everything(0)
    model = pk.models.lenet_300_100(64)
    pk.train.fit(model, train, epochs=3, lr=2e-3, seed=0, progress=False)
    return model.eval()


def test_exported_float_model_computes_what_pytorch_computes_at_any_batch_size(trained, digits,
                                                                               tmp_path):
    _, test = digits
    path = pk.quant.export_onnx(trained, test.images[:2], tmp_path / "sub" / "m.onnx")
    runner = pk.quant.OnnxModel(path)
    for batch in (1, 7, 300):
        x = test.images[:batch]
        with torch.no_grad():
            expected = trained(x)
        assert torch.allclose(runner(x), expected, atol=1e-5), batch
    assert runner.size_bytes == path.stat().st_size > 4 * pk.metrics.count_params(trained)
    assert pk.train.evaluate(runner, test) == pk.train.evaluate(trained, test)


def test_pruned_model_is_exported_with_its_zeros_and_left_unchanged(trained, digits, tmp_path):
    import onnx
    from onnx import numpy_helper

    _, test = digits
    pruned = pk.prune.magnitude(pk.prune.clone(trained), 0.8)
    path = pk.quant.export_onnx(pruned, test.images[:2], tmp_path / "pruned.onnx")
    assert pk.prune.is_pruned(pruned.fc1)          # the masks are still on the model
    weights = [numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer
               if t.name.endswith("weight")]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.size for w in weights)
    assert zeros == round(0.8 * total)
    with torch.no_grad():
        assert torch.allclose(pk.quant.OnnxModel(path)(test.images), pruned(test.images),
                              atol=1e-5)


@pytest.mark.parametrize("method", pk.quant.ONNX_QUANTIZATIONS)
def test_int8_files_are_smaller_and_keep_the_accuracy(trained, digits, method):
    import onnx

    train, test = digits
    fp32 = pk.quant.onnx_model(trained, test.images[:2])
    int8 = pk.quant.onnx_model(trained, test.images[:2], quantize=method,
                               calibration_data=pk.data.subset(train, 256, seed=0))
    assert int8.quantization == method and fp32.quantization is None
    assert int8.size_bytes < fp32.size_bytes / 3
    ops = {node.op_type for node in onnx.load(int8.path).graph.node}
    assert ("MatMulInteger" in ops) if method == "dynamic" else ("QuantizeLinear" in ops)
    assert abs(pk.train.evaluate(int8, test) - pk.train.evaluate(trained, test)) <= 0.02


def test_the_runner_is_timed_and_evaluated_like_a_pytorch_model(trained, digits):
    _, test = digits
    runner = pk.quant.onnx_model(trained, test.images[:2], threads=1)
    assert runner.session.get_session_options().intra_op_num_threads == 1
    ms = pk.metrics.latency_ms({"torch": trained, "onnx": runner}, test.images[:64], repeats=3)
    assert set(ms) == {"torch", "onnx"} and all(v > 0 for v in ms.values())
    assert list(runner.parameters()) == []


def test_a_temporary_folder_goes_away_with_the_model(trained, digits):
    import gc

    _, test = digits
    runner = pk.quant.onnx_model(trained, test.images[:2])
    folder = runner.path.parent
    assert folder.is_dir()
    del runner
    gc.collect()
    assert not folder.exists()


def test_a_convolutional_network_exports_and_quantizes_statically(tmp_path):
    model = pk.models.lenet5().eval()
    x = torch.rand(16, 1, 28, 28)
    runner = pk.quant.onnx_model(model, x[:2], quantize="static", calibration_data=x,
                                 folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model_int8_static.onnx"]
    with torch.no_grad():
        expected = model(x)
    assert runner(x).shape == expected.shape
    assert (runner(x) - expected).abs().max() < 0.1 * expected.abs().max()


def test_bad_arguments_say_what_is_allowed(trained, tmp_path):
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(InvalidParameterError, match="quantize must be one of"):
        pk.quant.onnx_model(trained, x, quantize="float16")
    with pytest.raises(InvalidParameterError, match="needs calibration_data"):
        pk.quant.onnx_model(trained, x, quantize="static")
    with pytest.raises(InvalidParameterError, match="existing ONNX file"):
        pk.quant.OnnxModel(tmp_path / "missing.onnx")
    with pytest.raises(InvalidParameterError, match="existing ONNX file"):
        pk.quant.quantize_onnx(tmp_path / "missing.onnx", tmp_path / "out.onnx")
    with pytest.raises(InvalidParameterError, match="threads must be a positive int"):
        pk.quant.onnx_model(trained, x, threads=0)
    with pytest.raises(InvalidParameterError, match="file path"):
        pk.quant.export_onnx(trained, x, 3)
    with pytest.raises(InvalidParameterError, match="model must be a torch.nn.Module"):
        pk.quant.export_onnx("lenet", x, tmp_path / "m.onnx")


def test_float_copy_bakes_masks_without_touching_the_model():
    model = pk.prune.magnitude(pk.models.lenet_300_100(), 0.5)
    plain = pk.quant.float_copy(model)
    assert pk.prune.is_pruned(model.fc1) and not pk.prune.is_pruned(plain.fc1)
    assert not plain.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(plain(x), model.eval()(x))


def test_cpu_features_are_read_from_cpuinfo():
    text = "processor : 0\nmodel name : Some CPU\nflags : fpu avx avx2 avx512f avx512_vnni\n" \
           "processor : 1\nmodel name : Some CPU\nflags : fpu\n"
    info = pk.quant.cpu_int8_features(text)
    assert info["cpu"] == "Some CPU"
    assert info["flags"] == {"avx2": True, "avx512f": True, "avx512_vnni": True,
                             "avx_vnni": False, "amx_int8": False, "asimddp": False}
    assert info["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    unknown = pk.quant.cpu_int8_features("")
    assert set(unknown["flags"].values()) == {None} and unknown["cpu"] is None
    with pytest.raises(InvalidParameterError, match="cpuinfo must be"):
        pk.quant.cpu_int8_features(3)
    here = pk.quant.cpu_int8_features()
    assert set(here["flags"]) == set(pk.quant.INT8_FLAGS)
