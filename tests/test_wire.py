"""The wire format: plain data round-trips, and nothing else can cross."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from grader import wire


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, "text", (1, 2.0), [1, [2, 3]], {"a": 1, "b": (2, 3)},
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(True), np.float64(1.5), np.int64(7),
])
def test_plain_values_round_trip_with_their_exact_types(value):
    back = wire.decode(wire.parse_frame(pickle.dumps(wire.encode(value))))
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


def test_a_frame_that_names_a_class_is_refused():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(wire.ProtocolError, match="only plain data"):
        wire.parse_frame(pickle.dumps(Evil()))


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
    back = wire.decode(wire.parse_frame(pickle.dumps(node)))
    assert back.device == "meta" and back.dtype == "float64" and back.shape == (2, 3) and not back.array.any()
    built = wire.decode(wire.encode_argument(back), torch, build=True)
    assert built.is_meta and built.shape == (2, 3) and built.dtype == torch.float64


def test_a_zero_dimensional_tensor_argument_keeps_its_shape():
    torch = pytest.importorskip("torch")
    node = wire.encode_argument(wire.TensorValue(np.array(3, dtype=np.int64), "int64", "cpu"))
    built = wire.decode(wire.parse_frame(pickle.dumps(node)), torch, build=True)
    assert built.shape == () and int(built) == 3
