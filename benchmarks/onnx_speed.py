"""PyTorch vs ONNX Runtime, float32 vs int8, on the CPU: latency, ratios and accuracy in one run.

LeNet-300-100 trained on the embedded mnist5k (benchmarks/reference_model.py), then:

- PyTorch fp32: the model itself;
- PyTorch int8: ``pk.quant.int8`` (torch.ao dynamic quantization: int8 weights, activations
  quantized per batch at run time, float in and out);
- ORT fp32: the model exported with ``pk.quant.export_onnx`` and run by ONNX Runtime;
- ORT int8: the ONNX file quantized by ONNX Runtime's dynamic quantizer
  (``pk.quant.quantize_onnx(..., method="dynamic")``); its static quantizer (QDQ, calibrated
  on 512 training images) is timed too, as a fifth line.

All run on the same batch of 256 test images with one thread (torch.set_num_threads(1), ORT
intra-op threads 1), timed in rounds (each model once per round, in shuffled order) by
``pk.metrics.latency_ms`` so that background load hits them alike. Two medians are printed: the
wall-clock time, and the CPU time of the timing thread (``clock="cpu"``), which leaves out the
time the process waits while other programs hold the cores; the ratios use the CPU time (on an
idle machine the two agree). Accuracy is on the
1,000 mnist5k test images. The CPU's int8-relevant features are printed first: the int8 gain
depends on them (AVX2 alone: a multiply-accumulate of bytes takes several instructions; VNNI:
one). Measured before on an AVX2 machine without VNNI: PyTorch fp32 1.73 ms, PyTorch int8
1.10 ms, ORT fp32 1.52 ms, ORT int8 0.90 ms.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/onnx_speed.py
"""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import pruning_kit as pk  # noqa: E402
from reference_model import trained_lenet  # noqa: E402


def main(batch: int = 256, repeats: int = 100) -> int:
    torch.set_num_threads(1)
    info = pk.quant.cpu_int8_features()
    flags = ", ".join(f"{pk.quant.INT8_FLAGS[f]} {'yes' if v else 'no' if v is not None else '?'}"
                      for f, v in info["flags"].items())
    print(f"CPU: {info['cpu']}; PyTorch capability {info['torch_capability']}, quantized engine "
          f"{info['quantized_engine']}; {flags}")

    train, test = pk.data.load("mnist5k")
    fp32 = trained_lenet(train)
    x = test.images[:batch]
    calibration = pk.data.subset(train, 512, seed=0)
    models = {
        "PyTorch fp32": fp32,
        "PyTorch int8": pk.quant.int8(fp32),
        "ORT fp32": pk.quant.onnx_model(fp32, x[:2], threads=1),
        "ORT int8": pk.quant.onnx_model(fp32, x[:2], quantize="dynamic", threads=1),
        "ORT int8 static": pk.quant.onnx_model(fp32, x[:2], quantize="static",
                                               calibration_data=calibration, threads=1),
    }
    wall = pk.metrics.latency_ms(models, x, repeats=repeats, warmup=10, threads=1)
    ms = pk.metrics.latency_ms(models, x, repeats=repeats, warmup=10, threads=1, clock="cpu")
    acc = {name: pk.train.evaluate(m, test) for name, m in models.items()}

    import onnxruntime

    print(f"LeNet-300-100, mnist5k, batch {batch}, 1 thread; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}")
    print(f"{'model':16s} {'wall ms':>8s} {'CPU ms':>8s} {'vs PyTorch fp32':>16s} {'accuracy':>9s}")
    for name in models:
        print(f"{name:16s} {wall[name]:8.3f} {ms[name]:8.3f} "
              f"{ms['PyTorch fp32'] / ms[name]:15.2f}x {acc[name]:9.2%}")
    print(f"int8 gain: PyTorch {ms['PyTorch fp32'] / ms['PyTorch int8']:.2f}x, "
          f"ONNX Runtime {ms['ORT fp32'] / ms['ORT int8']:.2f}x (dynamic), "
          f"{ms['ORT fp32'] / ms['ORT int8 static']:.2f}x (static)")
    print(f"runtime gain: fp32 PyTorch/ORT {ms['PyTorch fp32'] / ms['ORT fp32']:.2f}x, "
          f"int8 PyTorch/ORT {ms['PyTorch int8'] / ms['ORT int8']:.2f}x")
    print(f"file sizes: ORT fp32 {models['ORT fp32'].size_bytes:,} B, ORT int8 "
          f"{models['ORT int8'].size_bytes:,} B")
    worst = min(acc.values()) - acc["PyTorch fp32"]
    return 0 if worst >= -0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
