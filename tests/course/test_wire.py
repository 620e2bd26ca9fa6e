"""The wire format: values round-trip, and nothing but plain data is ever built from a frame."""

import json
import math
import struct

import numpy as np
import pytest
import torch

import pruning_kit as pk
from pruning_kit.course import wire


def roundtrip(value, **hooks):
    header, buffers = wire.encode(value)
    message, received = wire.unpack(wire.pack({"value": header}, buffers))
    return wire.decode(message["value"], received, **hooks)


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", [1, [2, 3]], (1, (2.0,)), {"a": 1, 2: "b", None: [1]},
    float("inf"), -float("inf"),
])
def test_plain_values_round_trip(value):
    assert roundtrip(value) == value


def test_nan_round_trips():
    assert math.isnan(roundtrip(float("nan")))


@pytest.mark.parametrize("dtype", list(wire.DTYPES.values()))
def test_tensors_of_every_dtype_round_trip_exactly(dtype):
    source = (torch.arange(24).reshape(2, 3, 4) % 3).to(dtype)
    back = roundtrip(source)
    assert type(back) is torch.Tensor and back.dtype == dtype and torch.equal(back, source)


def test_empty_and_non_contiguous_tensors():
    assert roundtrip(torch.zeros(0, 3)).shape == (0, 3)
    t = torch.arange(12.0).reshape(3, 4).t()
    assert torch.equal(roundtrip(t), t)


def test_a_tensor_that_needs_grad_arrives_needing_grad_and_detached_from_the_sender():
    x = torch.ones(2, requires_grad=True)
    back = roundtrip(x * 2)
    assert back.requires_grad and back.grad_fn is None


def test_numpy_arrays_and_tensor_subclasses_arrive_as_what_they_were():
    class Sub(torch.Tensor):
        pass

    arrived = roundtrip([np.zeros(2), torch.zeros(2).as_subclass(Sub), np.float32(1.5)])
    assert wire.shown_as(arrived[0])[1] == "numpy.ndarray"
    assert wire.shown_as(arrived[1])[1].endswith("Sub")
    assert arrived[2] == 1.5


def test_the_grader_s_models_go_by_structure_and_compute_the_same():
    model = pk.models.lenet5().eval()
    encoder = wire.Encoder(structures=True)
    header = encoder(model)
    built = wire.decode(header, encoder.buffers, structures=True)
    x = torch.rand(2, 1, 28, 28)
    assert type(built) is type(model) and torch.equal(built(x), model(x))
    assert not built.training


def test_a_structure_of_a_class_outside_torch_and_the_kit_is_refused():
    header = {"$module": {"class": "os.system", "attrs": {}, "params": [], "buffers": [],
                          "children": []}}
    with pytest.raises(wire.WireError, match="cannot build"):
        wire.decode(header, [], structures=True)


def test_the_grader_side_decodes_no_models_at_all():
    encoder = wire.Encoder(structures=True)
    header = encoder(torch.nn.Linear(2, 1))
    with pytest.raises(wire.WireError, match="does not build"):
        wire.decode(header, encoder.buffers)


@pytest.mark.parametrize("header, message", [
    ({"$pickle": "gASV"}, "unknown tag"),
    ({"$tensor": {"dtype": "object", "shape": [1], "buffer": 0}}, "unknown dtype"),
    ({"$tensor": {"dtype": "float32", "shape": [4], "buffer": 0}}, "needs 16 bytes"),
    ({"$tensor": {"dtype": "float32", "shape": [1], "buffer": 7}}, "buffer the frame"),
    ({"$tensor": {"dtype": "float32", "shape": [-1], "buffer": 0}}, "non-negative"),
    ({"$ref": 3}, "\\$ref"),
    ({"$build": {"factory": "os.system"}}, "does not build"),
    ({"a": 1, "b": 2}, "unexpected JSON"),
])
def test_malformed_values_are_refused_with_a_reason(header, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decode(header, [b"\x00\x00\x80\x3f"])


def test_deep_nesting_and_huge_frames_are_refused_before_reading_them():
    deep = 0
    for _ in range(wire.LIMITS["depth"] + 5):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deeper"):
        wire.decode(json.loads(json.dumps(deep)), [])
    huge = struct.pack("!4sII", wire.MAGIC, wire.LIMITS["header_bytes"] + 1, 0)
    with pytest.raises(wire.WireError, match="header of"):
        wire.unpack(huge)
    many = struct.pack("!4sII", wire.MAGIC, 2, 1) + struct.pack("!Q", wire.LIMITS["buffer_bytes"] + 1)
    with pytest.raises(wire.WireError, match="a buffer of"):
        wire.unpack(many)
    with pytest.raises(wire.WireError, match="bad magic"):
        wire.unpack(b"PICKLEDATA..")


def test_a_frame_that_never_completes_times_out(tmp_path):
    import os
    import time

    read_fd, write_fd = os.pipe()
    os.write(write_fd, wire.pack({"op": "x"})[:6])  # half a frame, then nothing
    stream = wire.Stream(read_fd, write_fd)
    start = time.monotonic()
    with pytest.raises(wire.WireTimeout):
        stream.receive(time.monotonic() + 0.3)
    assert time.monotonic() - start < 2


def test_objects_without_a_plain_form_are_refused_on_the_grader_side():
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.encode(object())
