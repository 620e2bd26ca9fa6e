"""int8 vs float32 on the CPU: latency, serialized size and accuracy, measured in one run.

LeNet-300-100 trained on the embedded mnist5k, then ``pk.quant.int8`` (dynamic int8
Linear kernels from torch.ao.quantization). Latency: median of alternating runs at batch
256 on one thread (``pk.metrics.latency_ms``). Size: bytes of ``torch.save(state_dict)``.
The CPU time of the timing thread is reported too: on a machine that other programs keep
busy it is the steadier measure. Targets (what lesson 04 sets out to show): >= 2x lower
latency, about 4x smaller, <= 0.5 point accuracy loss.
A LeNet-5 line shows the static path (int8 convolutions, calibrated activations), and
torchao is timed too when it is installed (it is not a dependency: see pk.quant's docstring).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/int8_speedup.py
"""

import copy
import io
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import pruning_kit as pk  # noqa: E402
from reference_model import trained_lenet  # noqa: E402


def serialized_bytes(model) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


def cpu_ms(models: dict, x, repeats: int) -> dict:
    """Median CPU time of this thread per forward pass, models timed alternately.

    Unlike wall-clock time it does not count the time the process waits while other
    programs hold the cores, so ratios stay steady on a busy laptop.
    """
    times = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, model in models.items():
                start = time.thread_time()
                model(x)
                times[name].append((time.thread_time() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def torchao_models(model):
    """torchao's int8 configs without torch.compile, when torchao is importable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import (Int8DynamicActivationInt8WeightConfig,
                                              Int8WeightOnlyConfig, quantize_)
    except Exception as err:  # noqa: BLE001 - any import failure means "not available"
        print(f"torchao not available ({type(err).__name__}); skipped")
        return {}
    out = {}
    for name, config in (("torchao_dyn_int8", Int8DynamicActivationInt8WeightConfig()),
                         ("torchao_w8", Int8WeightOnlyConfig())):
        candidate = copy.deepcopy(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_(candidate, config)
        out[name] = candidate
    return out


def main(batch: int = 256, repeats: int = 100) -> int:
    torch.set_num_threads(1)
    train, test = pk.data.load("mnist5k")
    fp32 = trained_lenet(train)
    fast = pk.quant.int8(fp32, pk.data.subset(train, 1000))
    x = test.images[:batch]

    models = {"fp32": fp32, "int8": fast, **torchao_models(fp32)}
    ms = pk.metrics.latency_ms(models, x, repeats=repeats, warmup=10)
    cpu = cpu_ms(models, x, repeats)
    acc = {name: pk.train.evaluate(m, test) for name, m in models.items()}
    size = {"fp32": serialized_bytes(fp32), "int8": serialized_bytes(fast)}

    print(f"LeNet-300-100, mnist5k test, batch {batch}, 1 thread, torch {torch.__version__}, "
          f"engine {torch.backends.quantized.engine}, int8 path: {fast.int8_method}")
    print(f"{'model':18s} {'wall ms':>9s} {'CPU ms':>9s} {'accuracy':>9s}")
    for name in models:
        print(f"{name:18s} {ms[name]:9.3f} {cpu[name]:9.3f} {acc[name]:9.3%}")
    speedup = ms["fp32"] / ms["int8"]
    shrink = size["fp32"] / size["int8"]
    delta = (acc["int8"] - acc["fp32"]) * 100
    print(f"latency ratio fp32/int8: {speedup:.2f}x wall clock, "
          f"{cpu['fp32'] / cpu['int8']:.2f}x CPU time (target >= 2x)")
    print(f"serialized size: {size['fp32']:,} B -> {size['int8']:,} B, ratio {shrink:.2f}x "
          "(target ~4x)")
    print(f"accuracy delta int8 - fp32: {delta:+.2f} points (target >= -0.5)")
    for name in models:
        if name.startswith("torchao"):
            print(f"{name}: fp32/{name} latency ratio {ms['fp32'] / ms[name]:.2f}x wall, "
                  f"{cpu['fp32'] / cpu[name]:.2f}x CPU")

    lenet5 = pk.models.lenet5()
    torch.manual_seed(0)
    pk.train.fit(lenet5, pk.data.subset(train, 1000), epochs=1, lr=1e-3, seed=0,
                 progress=False)
    lenet5_int8 = pk.quant.int8(lenet5, pk.data.subset(train, 500))
    ms5 = pk.metrics.latency_ms({"fp32": lenet5, "int8": lenet5_int8}, x[:64], repeats=15)
    print(f"LeNet-5 (batch 64, {lenet5_int8.int8_method} int8): fp32 {ms5['fp32']:.2f} ms, "
          f"int8 {ms5['int8']:.2f} ms, ratio {ms5['fp32'] / ms5['int8']:.2f}x; accuracy "
          f"{pk.train.evaluate(lenet5, test):.3f} -> {pk.train.evaluate(lenet5_int8, test):.3f}")
    return 0 if speedup >= 2 and delta >= -0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
