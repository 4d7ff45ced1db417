"""The only language spoken between the grader and a worker: plain data.

Both ends load this file. The worker loads it by path (it cannot import the
``grader`` package), so it depends on the standard library and NumPy alone;
PyTorch is touched only through the module object the caller hands in.

A value crosses the pipe as a tree of builtins: ``None``, ``bool``, ``int``,
``float``, ``str``, ``bytes`` and tagged tuples for everything else:

    ("tuple", [items])          ("list", [items])      ("dict", [[key, value], ...])
    ("ndarray", dtype, shape, raw bytes)               ("scalar", dtype, raw bytes)
    ("tensor", dtype, shape, raw bytes, device, requires_grad)   (a "meta" tensor's data are zeros)
    ("rng", seed)               ("unsupported", "what it was")

Frames are pickled, but read back with an unpickler that refuses every global,
so a frame can only ever rebuild builtin containers: no object of the
student's making reaches the grader.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

MAX_FRAME = 512 * 1024 * 1024  # a result larger than this is refused as a protocol error
ALLOWED_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64".split()
)
_EXACT_SCALARS = (bool, int, float, str)
_DTYPE_NAMES = {np.dtype(name): name for name in ALLOWED_DTYPES}  # dtype.name is slow to compute


@dataclass(frozen=True)
class Unsupported:
    """Stands for a value that is not plain data (a student's own class, an ndarray subclass, ...)."""

    what: str

    def __repr__(self) -> str:
        return f"<{self.what}>"


@dataclass(frozen=True)
class TensorValue:
    """A torch tensor as it arrived: the data as a NumPy array, plus where it lived."""

    array: np.ndarray
    dtype: str  # torch's name, e.g. "float32"
    device: str  # e.g. "cpu", "cuda:0"
    requires_grad: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


@dataclass(frozen=True)
class RngSpec:
    """Ask the worker for ``numpy.random.default_rng(seed)``."""

    seed: int


class ProtocolError(Exception):
    """A frame that is not what the protocol allows."""


# ----------------------------------------------------------------------------- encoding


def _type_name(value: object) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "?")
    name = getattr(cls, "__qualname__", "?")
    if not isinstance(module, str) or not isinstance(name, str):
        return "object"
    return name if module == "builtins" else f"{module}.{name}"


def encode(value: Any, torch: Any = None) -> Any:
    """Turn a value into plain data; whatever is not plain data becomes ``unsupported``."""
    if value is None or type(value) in _EXACT_SCALARS:
        return value
    cls = type(value)
    if cls is tuple:
        return ("tuple", [encode(v, torch) for v in value])
    if cls is list:
        return ("list", [encode(v, torch) for v in value])
    if cls is dict:
        if not all(type(k) is str for k in value):
            return ("unsupported", "dict with non-string keys")
        return ("dict", [[k, encode(v, torch)] for k, v in value.items()])
    if cls is np.ndarray:
        name = _DTYPE_NAMES.get(value.dtype)
        if name is None:
            swapped = "" if value.dtype.isnative else ", byte-swapped"
            return ("unsupported", f"numpy.ndarray of dtype {value.dtype.name}{swapped}")
        data = np.ascontiguousarray(value)
        return ("ndarray", name, list(value.shape), data.tobytes())
    if isinstance(value, np.generic) and cls.__module__ == "numpy":
        if value.dtype.name not in ALLOWED_DTYPES:
            return ("unsupported", f"numpy scalar of dtype {value.dtype.name}")
        return ("scalar", value.dtype.name, value.tobytes())
    if torch is not None and cls in (torch.Tensor, torch.nn.Parameter):
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in ALLOWED_DTYPES:
            return ("unsupported", f"torch.Tensor of dtype {dtype}")
        if value.is_meta:  # a meta tensor has a shape, a dtype and a device, but no data: it crosses as zeros
            host = np.zeros(tuple(value.shape), dtype=dtype)
        else:
            host = value.detach().to("cpu").contiguous().numpy()
        return ("tensor", dtype, list(value.shape), host.tobytes(), str(value.device), bool(value.requires_grad))
    if isinstance(value, np.ndarray):
        return ("unsupported", f"{_type_name(value)} (a subclass of numpy.ndarray)")
    if torch is not None and isinstance(value, torch.Tensor):
        return ("unsupported", f"{_type_name(value)} (a subclass of torch.Tensor)")
    return ("unsupported", _type_name(value))


def encode_argument(value: Any) -> Any:
    """Grader side: arguments may also carry tensors and generators to be built in the worker."""
    if isinstance(value, TensorValue):
        a = np.ascontiguousarray(value.array).reshape(value.array.shape)  # (ascontiguousarray makes 0-d arrays 1-d)
        return ("tensor", value.dtype, list(a.shape), a.tobytes(), value.device, value.requires_grad)
    if isinstance(value, RngSpec):
        return ("rng", int(value.seed))
    if type(value) is tuple:
        return ("tuple", [encode_argument(v) for v in value])
    if type(value) is list:
        return ("list", [encode_argument(v) for v in value])
    if type(value) is dict:
        return ("dict", [[k, encode_argument(v)] for k, v in value.items()])
    return encode(value)


# ----------------------------------------------------------------------------- decoding


def _array(dtype: Any, shape: Any, raw: Any) -> np.ndarray:
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"dtype {dtype!r} is not allowed")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ProtocolError("bad shape")
    if not isinstance(raw, bytes):
        raise ProtocolError("array data is not bytes")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ProtocolError("array data has the wrong length")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(node: Any, torch: Any = None, build: bool = False) -> Any:
    """Rebuild a value from plain data.

    On the grader's side (``build=False``) tensors become ``TensorValue`` and
    nothing of torch is created. In the worker (``build=True``) tensors and
    generators are built for real, so the student's code receives the genuine types.
    """
    if node is None or type(node) in _EXACT_SCALARS:
        return node
    if type(node) is not tuple or not node or not isinstance(node[0], str):
        raise ProtocolError(f"unexpected node {type(node).__name__}")
    tag, *rest = node
    if tag in ("tuple", "list") and len(rest) == 1 and type(rest[0]) is list:
        items = [decode(v, torch, build) for v in rest[0]]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and len(rest) == 1 and type(rest[0]) is list:
        out = {}
        for pair in rest[0]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise ProtocolError("bad dict entry")
            out[pair[0]] = decode(pair[1], torch, build)
        return out
    if tag == "ndarray" and len(rest) == 3:
        return _array(*rest)
    if tag == "scalar" and len(rest) == 2:
        return _array(rest[0], [], rest[1])[()]
    if tag == "tensor" and len(rest) == 5:
        dtype, shape, raw, device, requires_grad = rest
        array = _array(dtype, shape, raw)
        if not isinstance(device, str) or type(requires_grad) is not bool:
            raise ProtocolError("bad tensor metadata")
        if build:
            t = torch.from_numpy(array).to(device)
            return t.requires_grad_(requires_grad) if requires_grad else t
        return TensorValue(array, dtype, device, requires_grad)
    if tag == "rng" and len(rest) == 1 and type(rest[0]) is int:
        return np.random.default_rng(rest[0]) if build else RngSpec(rest[0])
    if tag == "unsupported" and len(rest) == 1 and isinstance(rest[0], str):
        return Unsupported(rest[0][:200])
    raise ProtocolError(f"unknown tag {tag!r}")


# ----------------------------------------------------------------------------- frames


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise ProtocolError(f"frame refers to {module}.{name}; only plain data may cross")


def write_frame(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def parse_frame(payload: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(payload)).load()
    except ProtocolError:
        raise
    except Exception as exc:  # truncated or corrupt pickle
        raise ProtocolError(f"unreadable frame ({type(exc).__name__})") from None
