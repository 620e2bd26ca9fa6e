"""The ``binarized`` assignment: quantizers, binary layers, an integer-only layer, a binarized network.

Part 1 (one tensor at a time) and part 2 (an integer-only linear layer) are
functions checked on hand-made and seeded inputs. Part 3 builds and trains a
network with binary weights and activations on ``mnist5k``: its models stay in
the student's process, where the grader traces their forward pass and trains
them; every verdict is decided here, from the values that come back and the
model's state dict.

One module per part of the notebook holds the contracts (numbered clauses), the
checks and the hidden tests: :mod:`.quantizers`, :mod:`.binary_layers`,
:mod:`.integer_layer`, :mod:`.network`; :mod:`.student_side` holds the grader's
code that runs in the student's process (traces, watched calls, training).

Example:
    >>> from pruning_grader.assignments.binarized import ASSIGNMENT
    >>> ASSIGNMENT.uses["quantized_linear"], len(ASSIGNMENT.functions)
    (('integer_linear',), 11)
"""

from ...registry import Assignment
from . import references

FUNCTIONS = ("quantize_affine", "dequantize_affine", "quantize_symmetric", "binarize", "SignSTE",
             "BinaryLinear", "quantize_bias", "integer_linear", "quantized_linear",
             "BinarizedMLP", "train_binarized")

_FLOAT_PATH = ("pruning_kit.quant.int8", "pruning_kit.quant.quantize_affine",
               "pruning_kit.quant.dequantize_affine", "pruning_kit.quant.dequantize_symmetric",
               "pruning_kit.quant.fake_quantize")
# the kit's integer convolution (lesson 4) accumulates uint8 x int8 into int32 with an int32 bias
# and requantizes with a given output scale: part 2's work, for a 1 x 1 kernel
_INTEGER_PATH = ("pruning_kit.quant.integer_conv2d", "pruning_kit.quant.IntegerConv2d",
                 "pruning_kit.quant.requantize", "pruning_kit.quant.fixed_point_multiplier")
_BINARY_KIT = ("pruning_kit.quant.BinaryLinear", "pruning_kit.quant.BinaryConv2d",
               "pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize",
               "pruning_kit.quant.binary_approximation",
               "pruning_kit.quant.binarized_mlp", "pruning_kit.quant.clip_latent_weights")

KIT = {
    # the kit's quantizers, and the private helper of its activation quantizer that
    # quantizes to a given range the same way
    "quantize_affine": ("pruning_kit.quant.quantize_affine", "pruning_kit.quant.fake_quantize",
                        "pruning_kit.quant.qat._fake_quantize_range"),
    "dequantize_affine": ("pruning_kit.quant.dequantize_affine",
                          "pruning_kit.quant.dequantize_symmetric",
                          "pruning_kit.quant.fake_quantize",
                          "pruning_kit.quant.qat._fake_quantize_range"),
    "quantize_symmetric": ("pruning_kit.quant.quantize_symmetric",
                           "pruning_kit.quant.fake_quantize"),
    # binary_approximation is sign(x) times mean |x|: the sign, and BinaryLinear's weights
    "binarize": ("pruning_kit.quant.binarize", "pruning_kit.quant.SignSTE",
                 "pruning_kit.quant.binary_approximation"),
    # _RangeSTE's backward is a straight-through estimator with a window (the QAT activations')
    "SignSTE": ("pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize",
                "pruning_kit.quant.qat._RangeSTE"),
    "BinaryLinear": ("pruning_kit.quant.BinaryLinear", "pruning_kit.quant.BinaryConv2d",
                     "pruning_kit.quant.SignSTE", "pruning_kit.quant.binarize",
                     "pruning_kit.quant.binary_approximation"),
    # part 2: the kit has no integer-only layer; these would take the float path instead
    "quantize_bias": ("pruning_kit.quant.quantize_symmetric", "pruning_kit.quant.quantize_affine",
                      "pruning_kit.quant.fake_quantize", "pruning_kit.quant.IntegerConv2d"),
    "integer_linear": _FLOAT_PATH + _INTEGER_PATH,
    "quantized_linear": _FLOAT_PATH + _INTEGER_PATH,
    # part 3: the kit's binarized layers, network and clipping (pk.train.fit stays allowed)
    "BinarizedMLP": _BINARY_KIT,
    "train_binarized": _BINARY_KIT,
}
"""The kit code that would do each graded function's work: absent from the grading view."""

USES = {
    "SignSTE": ("binarize",),
    "BinaryLinear": ("SignSTE", "binarize"),
    "quantized_linear": ("integer_linear",),
    "BinarizedMLP": ("BinaryLinear", "SignSTE", "binarize"),
    # the model train_binarized trains is the course's BinarizedMLP of the course's layers
    "train_binarized": ("BinaryLinear", "SignSTE", "binarize", "BinarizedMLP"),
}
"""Graded names each function calls (or is handed, built from them): the course's versions
stand in for the student's while it is tested, so one mistake costs only its own points."""

ASSIGNMENT = Assignment("binarized", functions=FUNCTIONS, kit=KIT, uses=USES,
                        references=references)

from . import binary_layers, integer_layer, network, quantizers  # noqa: E402,F401 - register
