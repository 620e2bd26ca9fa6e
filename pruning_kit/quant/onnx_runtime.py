"""Deployment: export a model to ONNX and run it in ONNX Runtime, in float32 or int8.

A practitioner rarely ships the PyTorch model itself. The usual path is to
export the trained (pruned, quantized) network to the ONNX file format and run
it with an inference engine such as ONNX Runtime, which has its own kernels and
its own int8 quantizer:

- :func:`export_onnx`: a float ONNX file from a model (pruning masks, QAT
  weights and shared weights baked in first, batch size left free);
- :func:`quantize_onnx`: an int8 ONNX file from a float one, with ONNX
  Runtime's quantizer: ``"dynamic"`` (int8 weights, activations quantized on
  the fly per batch, like ``pk.quant.int8``) or ``"static"`` (activation ranges
  calibrated on data beforehand);
- :class:`OnnxModel`: an ``nn.Module`` that runs an ONNX file in an ONNX
  Runtime session on a fixed number of threads, so that ``pk.train.evaluate``
  and ``pk.metrics.latency_ms`` treat it like any PyTorch model;
- :func:`onnx_model`: the three in one call.

``onnxruntime``, ``onnx`` and ``onnxscript`` are imported only when these
functions run. ``benchmarks/onnx_speed.py`` compares PyTorch and ONNX Runtime,
float32 and int8, in one run.

Example:
    >>> import torch, pruning_kit as pk
    >>> model = pk.models.lenet_300_100()
    >>> deployed = onnx_model(model, torch.rand(4, 1, 28, 28), quantize="dynamic")
    >>> deployed(torch.rand(3, 1, 28, 28)).shape, deployed.quantization
    (torch.Size([3, 10]), 'dynamic')
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .._checks import (InvalidParameterError, check_bool, check_choice, check_int, check_model,
                       check_tensor)
from .int8_runtime import float_copy
from .qat import calibration_batches

__all__ = ["ONNX_QUANTIZATIONS", "export_onnx", "quantize_onnx", "OnnxModel", "onnx_model"]

ONNX_QUANTIZATIONS = ("dynamic", "static")
"""The ONNX Runtime quantizers :func:`quantize_onnx` runs."""

INPUT_NAME, OUTPUT_NAME = "input", "output"


def _check_path(name: str, path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(f"{name} must be a file path (str or pathlib.Path), got "
                                    f"{type(path).__name__}")
    return Path(path)


class _quiet(warnings.catch_warnings):
    """Silence the exporter's and the quantizer's advice (tracer notes, 'run pre-processing')."""

    def __enter__(self):
        result = super().__enter__()
        warnings.simplefilter("ignore")
        self._root_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        return result

    def __exit__(self, *exc):
        logging.getLogger().setLevel(self._root_level)
        return super().__exit__(*exc)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path, *,
                opset: int = 17) -> Path:
    """Write ``model`` as a float32 ONNX file whose batch size is free.

    The model is copied with :func:`~pruning_kit.quant.int8_runtime.float_copy`
    (masks, QAT weights and shared weights baked in), traced on
    ``example_input`` with ``torch.onnx.export(..., dynamo=False)`` and saved
    with one input ``"input"`` and one output ``"output"``.

    Args:
        model: a float network (left unchanged).
        example_input: a batch the model accepts (any batch size).
        path: where to write the ``.onnx`` file (folders are created).
        opset: the ONNX opset version.

    Returns:
        The path written, as a ``pathlib.Path``.

    Example:
        >>> import onnx, pruning_kit as pk
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = export_onnx(pk.models.lenet_300_100(), torch.rand(2, 1, 28, 28),
        ...                    os.path.join(folder.name, "lenet.onnx"))
        >>> graph = onnx.load(path).graph
        >>> [n.op_type for n in graph.node].count("Gemm"), graph.input[0].name
        (3, 'input')
    """
    check_model(model)
    check_tensor("example_input", example_input, floating=True, min_dim=1)
    check_int("opset", opset, low=9)
    path = _check_path("path", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = float_copy(model).cpu()
    with _quiet(), torch.no_grad():
        torch.onnx.export(plain, (example_input.detach().cpu(),), str(path), dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset)
    return path


class _Batches:
    """ONNX Runtime's CalibrationDataReader protocol over a list of image batches."""

    def __init__(self, batches):
        self._batches = iter(batches)

    def get_next(self):
        images = next(self._batches, None)
        return None if images is None else {INPUT_NAME: images.detach().cpu().numpy()}


def quantize_onnx(path, out_path, *, method: str = "dynamic", calibration_data=None,
                  per_channel: bool = False) -> Path:
    """An int8 ONNX file from a float one, with ONNX Runtime's quantizer.

    The float model is first pre-processed (shape inference and graph
    clean-up, ``onnxruntime.quantization.shape_inference.quant_pre_process``),
    then:

    - ``"dynamic"``: ``quantize_dynamic`` with int8 weights (per tensor);
      activations are quantized to uint8 at run time from each batch's range,
      and results come back as float. No data needed.
    - ``"static"``: ``quantize_static`` in the QDQ format: int8 weights, uint8
      activations whose scales and zero points are fixed beforehand from the
      ranges seen on ``calibration_data`` (min/max calibration).

    Args:
        path: a float ONNX file (from :func:`export_onnx`).
        out_path: where to write the int8 file.
        method: ``"dynamic"`` or ``"static"``.
        calibration_data: for ``"static"``: a TensorData, an ``(images, labels)``
            pair, a tensor of images or a loader (a few hundred examples).
        per_channel: one weight scale per output channel instead of one per tensor.

    Returns:
        ``out_path`` as a ``pathlib.Path``.

    Example:
        >>> import onnx, pruning_kit as pk
        >>> folder = tempfile.TemporaryDirectory()
        >>> src = export_onnx(pk.models.lenet_300_100(), torch.rand(2, 1, 28, 28),
        ...                   os.path.join(folder.name, "fp32.onnx"))
        >>> dst = quantize_onnx(src, os.path.join(folder.name, "int8.onnx"))
        >>> sorted({n.op_type for n in onnx.load(dst).graph.node} & {"MatMulInteger", "Gemm"})
        ['MatMulInteger']
    """
    path = _check_path("path", path)
    out_path = _check_path("out_path", out_path)
    check_choice("method", method, ONNX_QUANTIZATIONS)
    check_bool("per_channel", per_channel)
    if not path.is_file():
        raise InvalidParameterError(f"path must be an existing ONNX file, got {str(path)!r} "
                                    "(write one with export_onnx)")
    if method == "static" and calibration_data is None:
        raise InvalidParameterError("method='static' needs calibration_data to fix the activation "
                                    "ranges; use method='dynamic' to quantize without data")
    batches = None if calibration_data is None else calibration_batches(calibration_data, batch_size=128)
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, _quiet():
        prepared = os.path.join(folder, "prepared.onnx")
        quant_pre_process(str(path), prepared, skip_symbolic_shape=True)
        if method == "dynamic":
            quantize_dynamic(prepared, str(out_path), weight_type=QuantType.QInt8,
                             per_channel=per_channel)
        else:
            quantize_static(prepared, str(out_path), _Batches(batches),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out_path


class OnnxModel(nn.Module):
    """An ONNX file run by ONNX Runtime on the CPU, behind an ``nn.Module`` interface.

    ``forward`` takes and returns torch tensors (float32, on the CPU), so
    ``pk.train.evaluate(model, test)`` and ``pk.metrics.latency_ms({...})`` work
    on it as on a PyTorch model. The session runs sequentially on ``threads``
    intra-op threads (1 by default, like ``pk.metrics.latency_ms``), with all
    of ONNX Runtime's graph optimisations. It has no parameters and cannot be
    trained.

    Args:
        path: an ONNX file with one input and one output.
        threads: intra-op threads of the session (an int >= 1).
        quantization: a label kept in ``.quantization`` (``None`` for float32).

    Attributes:
        path: the file; ``size_bytes``: its size; ``session``: the
        ``onnxruntime.InferenceSession``.

    Example:
        >>> import pruning_kit as pk
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = export_onnx(pk.models.lenet_300_100(), torch.rand(2, 1, 28, 28),
        ...                    os.path.join(folder.name, "lenet.onnx"))
        >>> runner = OnnxModel(path)
        >>> runner(torch.rand(5, 1, 28, 28)).shape, runner.size_bytes > 4 * 266_610
        (torch.Size([5, 10]), True)
    """

    def __init__(self, path, *, threads: int = 1, quantization: str | None = None):
        super().__init__()
        import onnxruntime as ort

        self.path = _check_path("path", path)
        if not self.path.is_file():
            raise InvalidParameterError(f"path must be an existing ONNX file, got "
                                        f"{str(self.path)!r}")
        self.threads = check_int("threads", threads, low=1)
        self.quantization = quantization
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    @property
    def size_bytes(self) -> int:
        """Bytes of the ONNX file."""
        return self.path.stat().st_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("input", x, floating=True)
        array = x.detach().cpu().to(torch.float32).contiguous().numpy()
        (out,) = self.session.run(None, {self._input: array})
        return torch.from_numpy(out)

    def extra_repr(self) -> str:
        return (f"path={str(self.path)!r}, threads={self.threads}, "
                f"quantization={self.quantization!r}")


def onnx_model(model: nn.Module, example_input: torch.Tensor, *, quantize: str | None = None,
               calibration_data=None, per_channel: bool = False, folder=None,
               threads: int = 1) -> OnnxModel:
    """Export ``model`` to ONNX, optionally quantize it with ONNX Runtime, and load it to run.

    Args:
        model: a float network (pruned or weight-shared is fine; left unchanged).
        example_input: a batch the model accepts.
        quantize: ``None`` (float32), ``"dynamic"`` or ``"static"`` (see
            :func:`quantize_onnx`).
        calibration_data: the data ``"static"`` calibrates on.
        per_channel: per-channel weight scales for the int8 file.
        folder: where the files go: ``model.onnx`` and, quantized,
            ``model_int8_<method>.onnx``. When None, a temporary folder that
            is deleted with the returned model.
        threads: ONNX Runtime intra-op threads.

    Returns:
        An :class:`OnnxModel` (``.path``, ``.size_bytes``, ``.quantization``).

    Example:
        >>> import pruning_kit as pk
        >>> data = torch.rand(64, 1, 28, 28)
        >>> fp32 = onnx_model(pk.models.lenet_300_100(), data[:2])
        >>> int8 = onnx_model(pk.models.lenet_300_100(), data[:2], quantize="static",
        ...                   calibration_data=data)
        >>> fp32.quantization, int8.quantization, int8.size_bytes < fp32.size_bytes / 3
        (None, 'static', True)
    """
    check_choice("quantize", quantize, (None,) + ONNX_QUANTIZATIONS)
    temporary = tempfile.TemporaryDirectory(prefix="pk_onnx_") if folder is None else None
    folder = Path(temporary.name) if temporary is not None else _check_path("folder", folder)
    path = export_onnx(model, example_input, folder / "model.onnx")
    if quantize is not None:
        path = quantize_onnx(path, folder / f"model_int8_{quantize}.onnx", method=quantize,
                             calibration_data=calibration_data, per_channel=per_channel)
    result = OnnxModel(path, threads=threads, quantization=quantize)
    result.temporary_folder = temporary     # removed when the model is garbage-collected
    return result
