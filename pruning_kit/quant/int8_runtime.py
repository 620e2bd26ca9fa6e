"""Real int8 kernels on the CPU: a model that computes in 8-bit integers, and how fast it is.

:func:`int8` returns a copy of a model whose Linear (and, calibrated,
Conv2d) layers run int8 kernels. Measured on the course's 2-core machine
(torch 2.14.1, one thread, LeNet-300-100 trained on mnist5k, batch 256; the
torchao rows in a separate run whose fp32 took 1.65-1.75 ms):

==============================================================  =========  ========
path                                                            latency    accuracy
==============================================================  =========  ========
fp32                                                            1.60 ms    94.4 %
``torch.ao.quantization.quantize_dynamic`` (int8 Linear)        0.41 ms    94.4 %
``torch.ao.quantization`` eager static, x86 backend, calibrated  0.35 ms    94.1 %
torchao 0.18 ``Int8DynamicActivationInt8WeightConfig``, eager   6.24 ms    94.4 %
torchao 0.18 ``Int8WeightOnlyConfig``, eager                    1.9-2.3 ms 94.4 %
==============================================================  =========  ========

A later run timed by CPU time (steady under load) agreed: fp32 1.83 ms,
``quantize_dynamic`` 0.68 ms, torchao dynamic 2.64 ms, torchao weight-only
2.10 ms. torchao's int8 paths are built for ``torch.compile``; run eagerly they
were slower than fp32 here, and compiling needs a C++ toolchain that a student's
laptop may lack (torchao is also not a dependency). So :func:`int8` uses the
``torch.ao.quantization`` kernels (fbgemm/oneDNN): dynamic quantization for
models made of Linear layers (2.8-3.9x faster across runs, accuracy unchanged,
state_dict 3.9x smaller), eager static quantization calibrated on
``calibration_data`` for models with convolutions (LeNet-5 at batch 64:
2.2-4.2x faster). ``torch.ao.quantization``
is deprecated in favour of torchao but still works in torch 2.14; its
deprecation warnings are silenced inside :func:`int8` only.
``benchmarks/int8_speedup.py`` re-measures the ratios.

Example:
    >>> import torch
    >>> import pruning_kit as pk
    >>> fast = int8(pk.models.lenet_300_100())
    >>> fast.int8_method, fast(torch.rand(2, 1, 28, 28)).shape
    ('dynamic', torch.Size([2, 10]))
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..models import prunable
from .._checks import InvalidParameterError, check_choice, check_model
from .parametrization import baked_copy
from .qat import ActivationQuantizer, FakeQuantizer, calibration_batches
from .sharing import SharedWeight

__all__ = ["int8", "INT8_METHODS", "INT8_FLAGS", "float_copy", "cpu_int8_features"]

INT8_METHODS = ("auto", "dynamic", "static")


class _quiet_torch_ao(warnings.catch_warnings):
    """Silence torch.ao.quantization's notices while converting (deprecated, still works)."""

    def __enter__(self):
        result = super().__enter__()
        warnings.simplefilter("ignore")
        return result


def float_copy(model: nn.Module) -> nn.Module:
    """A plain float copy in eval mode: pruning masks, QAT quantizers and shared weights baked in.

    What an int8 converter or an ONNX exporter needs: ordinary ``weight``
    parameters (the zeros of pruning and the centroids of weight sharing
    written into them), no parametrizations, no pruning hooks. The model
    passed in is not changed.

    Args:
        model: a float network, possibly pruned (``pk.prune``), QAT-prepared
            weights (``prepare_qat`` without activation quantizers) or shared
            (``share_weights``).

    Returns:
        A new ``nn.Module`` in eval mode.

    Example:
        >>> import pruning_kit as pk
        >>> pruned = pk.prune.magnitude(pk.models.lenet_300_100(), 0.9)
        >>> plain = float_copy(pruned)
        >>> sorted(n for n, _ in plain.fc1.named_parameters()), round(pk.prune.sparsity(plain), 2)
        (['bias', 'weight'], 0.9)
    """
    from .. import prune

    check_model(model)

    if any(isinstance(m, ActivationQuantizer) for m in model.modules()):
        raise InvalidParameterError(
            "model carries activation fake-quantizers; int8 needs a float model "
            "(use the model before prepare_qat/fake_quantize_model)")
    plain = baked_copy(model, (FakeQuantizer, SharedWeight))
    for name, layer in prunable(plain):
        if torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
            raise InvalidParameterError(
                f"layer {name!r} has a parametrized weight that int8 cannot read")
    return prune.finalize(plain).eval()


def _static_int8(float_model: nn.Module, batches) -> nn.Module:
    aq = torch.ao.quantization
    engine = torch.backends.quantized.engine
    if engine == "none":
        raise RuntimeError("this PyTorch build has no quantized CPU engine; supported: "
                           f"{torch.backends.quantized.supported_engines}")
    wrapped = nn.Sequential(aq.QuantStub(), float_model, aq.DeQuantStub()).eval()
    wrapped.qconfig = aq.get_default_qconfig(engine)
    prepared = aq.prepare(wrapped)
    with torch.no_grad():
        for images in batches:
            prepared(images)
    quantized = aq.convert(prepared)
    with torch.no_grad():
        quantized(batches[0][:2])       # fails here if an op has no quantized kernel
    return quantized


def int8(model: nn.Module, calibration_data=None, *, method: str = "auto") -> nn.Module:
    """A copy of ``model`` that runs real int8 kernels on the CPU (fbgemm / oneDNN).

    - ``"dynamic"``: ``torch.ao.quantization.quantize_dynamic``: Linear
      weights stored as int8 (per tensor), activations quantized on the fly
      per batch. No calibration needed; Conv2d layers stay float.
    - ``"static"``: eager-mode post-training static quantization: Linear and
      Conv2d weights int8 per channel, activations uint8 with ranges observed
      on ``calibration_data`` (histogram observers), the model wrapped in
      ``QuantStub``/``DeQuantStub``. Needs every op of the forward pass to
      have a quantized kernel (ReLU, pooling, flatten do; a residual ``+`` does not).
    - ``"auto"``: ``"static"`` for models with convolutions when
      ``calibration_data`` is given (falling back to ``"dynamic"`` with a
      warning if the forward pass cannot run quantized), else ``"dynamic"``,
      which measured fastest and lossless for LeNet-300-100 (module docstring).

    Pruning masks, QAT quantizers and shared weights are baked in first.
    The chosen method is recorded in ``result.int8_method``.

    Args:
        model: a float network (left unchanged).
        calibration_data: a TensorData, an ``(images, labels)`` pair, a tensor of
            images or a loader of batches (a few hundred examples suffice).
        method: ``"auto"``, ``"dynamic"`` or ``"static"``.

    Returns:
        A new model in eval mode (CPU only).

    Example:
        >>> import pruning_kit as pk
        >>> fast = int8(pk.models.lenet_300_100(), torch.rand(64, 1, 28, 28))
        >>> fast.int8_method, fast.fc1._get_name(), fast(torch.rand(2, 1, 28, 28)).shape
        ('dynamic', 'DynamicQuantizedLinear', torch.Size([2, 10]))
        >>> conv = int8(pk.models.lenet5(), torch.rand(64, 1, 28, 28))
        >>> conv.int8_method, conv[1].conv1._get_name()
        ('static', 'QuantizedConv2d')
    """
    check_model(model)
    check_choice("method", method, INT8_METHODS)
    batches = None if calibration_data is None else calibration_batches(calibration_data, batch_size=256)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if method == "static" and batches is None:
        raise InvalidParameterError(
            "method='static' needs calibration_data to observe activation ranges")
    if method == "dynamic" or (method == "auto" and not (has_conv and batches is not None)):
        if not any(isinstance(m, nn.Linear) for m in model.modules()):
            raise InvalidParameterError(
                "dynamic int8 quantizes nn.Linear layers and the model has none; "
                "pass calibration_data for static quantization of convolutions")
        chosen = "dynamic"
    else:
        chosen = "static"
    float_model = float_copy(model)
    failure = None
    if chosen == "static":
        try:
            with _quiet_torch_ao(), torch.no_grad():
                quantized = _static_int8(float_model, batches)
        except (RuntimeError, NotImplementedError, TypeError, ValueError) as err:
            if method == "static":
                raise InvalidParameterError(
                    "static int8 quantization failed, most likely an op in "
                    "forward() has no quantized kernel (e.g. a residual '+'); "
                    f"use method='dynamic'. Cause: {err}") from err
            failure = err
    if failure is not None:
        cause = (str(failure).splitlines() or [""])[0][:160]
        warnings.warn(f"static int8 quantization failed ({type(failure).__name__}: {cause}); "
                      "using dynamic quantization of the Linear layers instead", stacklevel=2)
        chosen, float_model = "dynamic", float_copy(model)
    if chosen == "dynamic":
        with _quiet_torch_ao():
            quantized = torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear},
                                                               dtype=torch.qint8)
    quantized.int8_method = chosen
    return quantized.eval()


INT8_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
              "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8", "asimddp": "Arm dot product"}
"""CPU flags (as Linux's ``/proc/cpuinfo`` names them) that decide how fast int8 kernels run."""


def cpu_int8_features(cpuinfo: str | None = None) -> dict:
    """What this CPU offers int8 kernels: PyTorch's capability and the relevant instruction sets.

    An int8 matrix product is only as fast as the instructions that do it.
    With AVX2 alone, a multiply-accumulate of 8-bit values takes two or three
    instructions (``vpmaddubsw``, ``vpmaddwd``, ``vpaddd``) and gains about 2x
    over float32 at best; VNNI (``vpdpbusd``) does four 8-bit products into a
    32-bit sum in one instruction, and AMX adds whole tile products.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (read from the machine when
            None; on systems without it, the flags are unknown).

    Returns:
        ``{"cpu": model name or None, "torch_capability": e.g. "AVX512",
        "quantized_engine": e.g. "x86", "flags": {flag: bool or None}}`` with
        one entry per :data:`INT8_FLAGS` key (None: unknown on this system).

    Example:
        >>> info = cpu_int8_features("model name : Demo CPU\\nflags : fpu avx2 avx512f avx512_vnni\\n")
        >>> info["cpu"], info["flags"]["avx2"], info["flags"]["avx512_vnni"], info["flags"]["amx_int8"]
        ('Demo CPU', True, True, False)
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    elif not isinstance(cpuinfo, str):
        raise InvalidParameterError(f"cpuinfo must be the text of /proc/cpuinfo (a str) or None, "
                                    f"got {type(cpuinfo).__name__}")
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in fields:
            fields[key] = value.strip()
    flags_text = fields.get("flags", fields.get("features"))
    flags = set(flags_text.split()) if flags_text is not None else None
    return {"cpu": fields.get("model name") or None,
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "quantized_engine": torch.backends.quantized.engine,
            "flags": {flag: (None if flags is None else flag in flags) for flag in INT8_FLAGS}}
