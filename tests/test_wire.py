"""The wire format: plain data round-trips, nothing else can cross, and no frame is a bomb."""

from __future__ import annotations

import pickle
import struct
import time

import numpy as np
import pytest

from grader.sandbox import wire


def frame(value):
    return wire.dump(value)


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, "text", (1, 2.0), [1, [2, 3]], {"a": 1, "b": (2, 3)},
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(True), np.float64(1.5), np.int64(7),
])
def test_plain_values_round_trip_with_their_exact_types(value):
    back = wire.decode(wire.parse_frame(frame(wire.encode(value))))
    if isinstance(value, np.ndarray):
        assert type(back) is np.ndarray and back.dtype == value.dtype and np.array_equal(back, value)
    else:
        assert back == value and type(back) is type(value)


class Liar:
    def __eq__(self, other):
        return True


class SubArray(np.ndarray):
    pass


class SubInt(int):
    pass


@pytest.mark.parametrize(("value", "what"), [
    (Liar(), "Liar"),
    (np.zeros(3).view(SubArray), "subclass of numpy.ndarray"),
    (SubInt(3), "SubInt"),
    (np.array([object()]), "dtype object"),
    ({1: "a"}, "non-string keys"),
    (lambda: 1, "function"),
])
def test_anything_else_arrives_as_unsupported(value, what):
    back = wire.decode(wire.encode(value))
    assert isinstance(back, wire.Unsupported) and what in back.what


def test_a_pickle_is_not_a_frame():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(wire.ProtocolError):
        wire.parse_frame(pickle.dumps(Evil()))


def test_messages_round_trip_through_frames():
    message = {"id": 3, "ok": True, "values": [("ndarray", "float64", [2], b"\0" * 16)], "big": 10**30,
               "text": "ünï", "nested": {"a": [None, True, False, 1.5]}}
    assert wire.parse_frame(wire.dump(message)) == message


def test_a_pickled_billion_laughs_cannot_be_sent():
    """Pickle shares references (a few hundred bytes can decode into 10**12 nodes); frames cannot say that:
    a shared value is written out in full, so its size is what it costs to read."""
    layer = [0] * 10
    for _ in range(4):
        layer = [layer] * 10
    assert len(wire.dump(layer)) > 10**5  # 10**5 leaves, each written out


@pytest.mark.parametrize(("payload", "words"), [
    (b"l" + struct.pack("<I", 10**9) + b"N", "more items than the frame holds"),
    (b"l" + struct.pack("<I", 1), "more items than the frame holds"),
    (b"f" + b"\0" * 4, "truncated"),
    (b"s" + struct.pack("<I", 50) + b"abc", "truncated"),
    (b"NN", "bytes left"),
    (b"X", "unknown token"),
])
def test_malformed_frames_are_protocol_errors(payload, words):
    with pytest.raises(wire.ProtocolError, match=words):
        wire.parse_frame(payload)


def test_a_frame_nested_too_deep_is_too_large_and_costs_no_recursion():
    payload = (b"l" + struct.pack("<I", 1)) * 100_000 + b"N"
    with pytest.raises(wire.TooLarge, match="levels of nesting"):
        wire.parse_frame(payload)


def test_a_frame_with_too_many_values_is_refused_quickly():
    payload = b"l" + struct.pack("<I", 3_000_000) + b"N" * 3_000_000
    start = time.monotonic()
    with pytest.raises(wire.TooLarge, match="values"):
        wire.parse_frame(payload)
    assert time.monotonic() - start < 30  # refused by count, not after building everything


def test_a_value_nested_deeper_than_a_result_needs_arrives_as_unsupported():
    deep: list = []
    for _ in range(100):
        deep = [deep]
    back = wire.decode(wire.parse_frame(frame(wire.encode(deep))))
    inner = back
    while isinstance(inner, list):
        inner = inner[0]
    assert isinstance(inner, wire.Unsupported) and "nested" in inner.what


def test_a_list_that_contains_itself_arrives_as_unsupported_instead_of_recursing_forever():
    loop: list = []
    loop.append(loop)
    assert "nested" in repr(wire.decode(wire.parse_frame(frame(wire.encode(loop)))))


@pytest.mark.parametrize("node", [
    ("ndarray", "object", [1], b"x" * 8),
    ("ndarray", "float64", [2], b"x" * 8),
    ("ndarray", "float64", [-1], b""),
    ("tensor", "float32", [1], b"x" * 4, 0, False),
    ("eval", "1+1"),
    ["list", []],
])
def test_malformed_nodes_are_protocol_errors(node):
    with pytest.raises(wire.ProtocolError):
        wire.decode(node)


def test_grader_side_decoding_builds_no_tensors_and_no_generators():
    node = wire.encode_argument((wire.TensorValue(np.ones(2, np.float32), "float32", "cpu"), wire.RngSpec(3)))
    tensor, rng = wire.decode(node)
    assert isinstance(tensor, wire.TensorValue) and tensor.device == "cpu" and tensor.dtype == "float32"
    assert rng == wire.RngSpec(3)


def test_a_meta_tensor_crosses_with_its_shape_dtype_and_device_and_zeros_for_data():
    torch = pytest.importorskip("torch")
    node = wire.encode(torch.empty(2, 3, dtype=torch.float64, device="meta"), torch)
    back = wire.decode(wire.parse_frame(frame(node)))
    assert back.device == "meta" and back.dtype == "float64" and back.shape == (2, 3) and not back.array.any()
    built = wire.decode(wire.encode_argument(back), torch, build=True)
    assert built.is_meta and built.shape == (2, 3) and built.dtype == torch.float64


def test_a_zero_dimensional_tensor_argument_keeps_its_shape():
    torch = pytest.importorskip("torch")
    node = wire.encode_argument(wire.TensorValue(np.array(3, dtype=np.int64), "int64", "cpu"))
    built = wire.decode(wire.parse_frame(frame(node)), torch, build=True)
    assert built.shape == () and int(built) == 3
