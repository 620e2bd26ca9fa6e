"""Quantization: fewer bits per weight, from the affine formula to real int8 kernels.

One module per idea; every public name is re-exported here, so
``pk.quant.quantize_affine`` and ``pk.quant.deep_compress`` work as they read:

- :mod:`~pruning_kit.quant.uniform`: one tensor at ``bits`` bits, the
  formulas of the ``binarized`` assignment (rounding with ``torch.round``,
  halves to even). :func:`quantize_affine` / :func:`dequantize_affine`
  (``q = clamp(round(x / scale) + zero_point, 0, 2**bits - 1)``,
  ``x_hat = scale * (q - zero_point)``), :func:`quantize_symmetric` /
  :func:`dequantize_symmetric` (zero point 0, ``q`` in
  ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``), per tensor or per channel with
  ``dim=``; :func:`fake_quantize` (quantize then dequantize),
  :func:`quantization_mse`, :func:`sqnr_db`.
- :mod:`~pruning_kit.quant.qat`: whole models. :func:`fake_quantize_model`
  simulates any bit width 1-8 on the weights of a model (and on its
  activations, calibrated: post-training quantization); quantization-aware
  training with :func:`prepare_qat` (a fake quantizer with a
  straight-through gradient on every weight, and with ``activation_bits``
  on every layer input) and :func:`convert_qat`; :func:`qat_vs_ptq`
  compares the two at several bit widths.
- Deep Compression (Han et al. 2016): :mod:`~pruning_kit.quant.sharing`
  (:func:`kmeans_share`, weight sharing with linear centroid initialisation;
  :func:`share_weights`, a model whose layers compute with shared centroids
  that fine-tune with gradients summed per cluster),
  :mod:`~pruning_kit.quant.huffman` (Huffman coding) and
  :mod:`~pruning_kit.quant.deep_compression` (:func:`relative_indices`,
  :func:`compressed_size`, and :func:`deep_compress`, which chains prune ->
  retrain -> share -> fine-tune -> Huffman and reports bytes, ratio and
  accuracy per stage).
- :mod:`~pruning_kit.quant.int8_runtime`: :func:`int8`, a copy of a model
  that runs real int8 kernels on the CPU (the module's docstring has the
  measurements behind its choices).
- :mod:`~pruning_kit.quant.folding`: batch-norm folding (Jacob et al. 2018,
  section 3.2): :func:`fold_batchnorm` (one conv and its batch norm) and
  :func:`fold_batchnorms` (every such pair of a model).
- :mod:`~pruning_kit.quant.integer_conv`: a convolution run in integers, uint8
  input with a zero point, int8 weights with one scale per output channel,
  int32 accumulator and bias, fixed-point requantization to uint8:
  :class:`IntegerConv2d`, :func:`integer_conv2d`, :func:`requantize`,
  :func:`fixed_point_multiplier`.
- :mod:`~pruning_kit.quant.onnx_runtime`: deployment. :func:`export_onnx`,
  :func:`quantize_onnx` (ONNX Runtime's dynamic or static int8 quantizer),
  :class:`OnnxModel` (an ONNX Runtime session behind an ``nn.Module``, so
  ``pk.train.evaluate`` and ``pk.metrics.latency_ms`` take it) and
  :func:`onnx_model` (export, quantize, load in one call).
- :mod:`~pruning_kit.quant.binarized`: one bit per weight. :func:`binarize`,
  :func:`binary_approximation` (sign times the mean magnitude), :class:`SignSTE`, :class:`BinaryLinear`, :class:`BinaryConv2d`,
  :func:`binarized_mlp`, :func:`clip_latent_weights`.
- :mod:`~pruning_kit.quant.parametrization`: the parametrized weights that QAT
  and weight sharing train, found and baked in.

Example (affine quantization has its own in :mod:`~pruning_kit.quant.uniform`):
    >>> import torch
    >>> w = torch.tensor([-2.0, 0.5, 1.0])
    >>> q, scale = quantize_symmetric(w, bits=3)   # q in [-3, 3], scale = max|w| / 3
    >>> q.tolist(), round(scale, 3)
    ([-3, 1, 2], 0.667)
    >>> fake_quantize(w, bits=3, scheme="symmetric")   # what the network computes with
    tensor([-2.0000,  0.6667,  1.3333])
"""

from .binarized import (BinaryConv2d, BinaryLinear, SignSTE, binarize, binarized_mlp,
                        binary_approximation, clip_latent_weights)
from .deep_compression import (compressed_size, deep_compress, indices_from_relative,
                               relative_indices)
from .folding import fold_batchnorm, fold_batchnorms
from .huffman import HuffmanCode, huffman_code, huffman_decode, huffman_encode
from .integer_conv import IntegerConv2d, fixed_point_multiplier, integer_conv2d, requantize
from .int8_runtime import INT8_FLAGS, INT8_METHODS, cpu_int8_features, float_copy, int8
from .onnx_runtime import ONNX_QUANTIZATIONS, OnnxModel, export_onnx, onnx_model, quantize_onnx
from .qat import (ActivationQuantizer, FakeQuantizer, calibration_batches, convert_qat,
                  fake_quantize_model, prepare_qat, qat_vs_ptq)
from .sharing import SharedWeight, kmeans_share, share_weights, unshare_weights
from .uniform import (MAX_BITS, SCHEMES, dequantize_affine, dequantize_symmetric, fake_quantize,
                      quantization_mse, quantize_affine, quantize_symmetric, sqnr_db)

__all__ = ["quantize_affine", "dequantize_affine", "quantize_symmetric",
           "dequantize_symmetric", "fake_quantize", "quantization_mse", "sqnr_db",
           "fake_quantize_model", "prepare_qat", "convert_qat", "qat_vs_ptq",
           "FakeQuantizer", "ActivationQuantizer", "calibration_batches",
           "kmeans_share", "share_weights", "unshare_weights", "SharedWeight", "relative_indices",
           "indices_from_relative",
           "compressed_size", "deep_compress", "int8", "SCHEMES", "INT8_METHODS", "MAX_BITS",
           "binarize", "binary_approximation", "SignSTE", "BinaryLinear", "BinaryConv2d", "binarized_mlp",
           "clip_latent_weights", "HuffmanCode", "huffman_code", "huffman_encode",
           "huffman_decode", "float_copy", "cpu_int8_features", "INT8_FLAGS", "export_onnx",
           "quantize_onnx", "OnnxModel", "onnx_model", "ONNX_QUANTIZATIONS", "fold_batchnorm",
           "fold_batchnorms", "fixed_point_multiplier", "requantize", "integer_conv2d",
           "IntegerConv2d"]
