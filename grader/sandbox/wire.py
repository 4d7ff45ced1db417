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

Frames (below) are a small token format of their own, not pickle: it can say
nothing but builtin scalars and containers, cannot share a value between two
places, and is read within a budget of values, nesting and time. No object of
the student's making, and no bomb of a few bytes, reaches the grader.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, TypedDict

import numpy as np

MAX_FRAME = 512 * 1024 * 1024  # a result larger than this is refused as a protocol error
ALLOWED_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64".split()
)
_EXACT_SCALARS = (bool, int, float, str)
VALUE_DEPTH = 24  # containers inside containers in one value (each takes two levels of a frame, below)
_DTYPE_NAMES = {np.dtype(name): name for name in ALLOWED_DTYPES}  # dtype.name is slow to compute


@dataclass(frozen=True)
class Unsupported:
    """Stands for a value that is not plain data (a student's own class, an ndarray subclass, ...)."""

    what: str

    def __repr__(self) -> str:
        return f"<{self.what}>"

    @staticmethod
    def within(value: Any) -> str:
        """What the first ``Unsupported`` inside ``value`` (lists, tuples and dict values, however nested)
        stands for; "" when there is none."""
        if isinstance(value, Unsupported):
            return value.what
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        return next((found for v in items if (found := Unsupported.within(v))), "")


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


def encode(value: Any, torch: Any = None, depth: int = 0) -> Any:
    """Turn a value into plain data; whatever is not plain data becomes ``unsupported``."""
    if value is None or type(value) in _EXACT_SCALARS:
        if type(value) is int and value.bit_length() > 3000:
            return ("unsupported", "an integer of more than 900 digits")
        return value
    cls = type(value)
    if depth >= VALUE_DEPTH and cls in (tuple, list, dict):  # (a list that contains itself ends here too)
        return ("unsupported", f"a value nested more than {VALUE_DEPTH} levels deep")
    if cls in (tuple, list):
        return (cls.__name__, [encode(v, torch, depth + 1) for v in value])
    if cls is dict:
        if not all(type(k) is str for k in value):
            return ("unsupported", "dict with non-string keys")
        return ("dict", [[k, encode(v, torch, depth + 1)] for k, v in value.items()])
    if cls is np.ndarray:
        name = _DTYPE_NAMES.get(value.dtype)
        if name is None:
            swapped = "" if value.dtype.isnative else ", byte-swapped"
            return ("unsupported", f"numpy.ndarray of dtype {value.dtype.name}{swapped}")
        return ("ndarray", name, list(value.shape), value.tobytes())  # (in C order, however it is laid out)
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
    if type(value) in (tuple, list):
        return (type(value).__name__, [encode_argument(v) for v in value])
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
    if len(raw) != math.prod(shape) * np.dtype(dtype).itemsize:
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


# ----------------------------------------------------------------------------- messages
#
# The shapes of the messages both sides exchange (the grader validates every field of what a
# worker sends: these describe, they do not trust).


class CallRequest(TypedDict, total=False):
    """Grader to worker: call ``function`` once per step, in order, as a loop would."""

    id: int
    function: str
    arg_names: list[str]
    steps: list[list[Any]]  # per step: [encoded positional arguments, [[name, encoded value], ...]]
    links: list[list[Any]]  # [step, arg, "result" | "arg", from_step, index]: pass an earlier object on
    grad: dict[str, Any]  # {"wrt": [argument index], "seeds": [encoded tensor]}: one step only


class FailureInfo(TypedDict, total=False):
    """Why a call (or the module's import) did not return."""

    kind: str  # error | not_implemented | banned | memory | missing
    type: str  # the exception's class name
    message: str
    frames: list[list[Any]]  # [file, line, function, text] in the student's own files
    banned: list[str]
    step: int


class CallReply(TypedDict, total=False):
    """Worker to grader: the results of a request's steps, or why one did not return."""

    id: int
    ok: bool
    values: list[Any]  # one encoded result per step that ran
    modified: list[list[Any]]  # [argument, step, True if that step's own call changed it]
    banned: list[str]
    warnings: list[str]  # "Category: message", once per place in the code
    grads: Any
    printed: str  # what the code printed during the call (the first 2000 characters)
    global_rng: bool  # the call moved NumPy's global random state
    error: FailureInfo


class Hello(TypedDict, total=False):
    """The worker's first message, sent before any student code runs (so it can be believed)."""

    confined: list[str]  # the walls it stands behind: "landlock-v7", "seccomp", ...
    error: str  # a wall this machine offers could not be put up: the worker ends


class Ready(TypedDict, total=False):
    """The worker's second message: the student's module imported, or why not."""

    ready: bool
    error: FailureInfo


# ----------------------------------------------------------------------------- frames
#
# A frame is an 8-byte little-endian length, then one token tree. A token is a tag byte and
# its data; containers give their item count, and every item is at least one byte, so no
# frame can describe more nodes than it has bytes, and nothing can be shared: decoding costs
# at most one step per byte (no "billion laughs" of pickle's shared references). On top,
# decoding counts nodes against MAX_NODES, nesting against MAX_DEPTH and time against a
# deadline, and refuses what exceeds them as TooLarge.
#
#   N None   T True   F False   i int64   I big int (decimal)   f float64
#   s str (u32 length, UTF-8)   b bytes (u64 length)   l list / t tuple / d dict (u32 count)

MAX_DEPTH = 64  # containers inside containers: a plain result needs a handful
MAX_NODES = 2_000_000  # values in one frame
MAX_INT_DIGITS = 1000
DECODE_SECONDS = 10.0

_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class TooLarge(ProtocolError):
    """A frame over the decoding budget: too many values, nested too deep, or too slow to read."""


def dump(message: Any) -> bytes:
    """The token tree of a message made of None, bool, int, float, str, bytes, list, tuple and
    dicts with string keys (anything else is a bug on the sending side)."""
    out: list[bytes] = []
    _dump(message, out, 0)
    return b"".join(out)


def _dump(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise TooLarge(f"more than {MAX_DEPTH} levels of nesting")
    cls = type(value)
    if value is None:
        out.append(b"N")
    elif cls is bool:
        out.append(b"T" if value else b"F")
    elif cls is int:
        if -(1 << 63) <= value < (1 << 63):
            out.append(b"i" + _I64.pack(value))
        else:
            text = str(value).encode()
            out.append(b"I" + _U32.pack(len(text)) + text)
    elif cls is float:
        out.append(b"f" + _F64.pack(value))
    elif cls is str:
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s" + _U32.pack(len(data)) + data)
    elif cls is bytes:
        out.append(b"b" + _U64.pack(len(value)) + value)
    elif cls is list or cls is tuple:
        out.append((b"l" if cls is list else b"t") + _U32.pack(len(value)))
        for item in value:
            _dump(item, out, depth + 1)
    elif cls is dict:
        out.append(b"d" + _U32.pack(len(value)))
        for key, item in value.items():
            if type(key) is not str:
                raise ProtocolError("a frame's dict keys are strings")
            _dump(key, out, depth + 1)
            _dump(item, out, depth + 1)
    else:
        raise ProtocolError(f"{cls.__name__} cannot be written to a frame")


def write_frame(stream: BinaryIO, message: Any) -> None:
    payload = dump(message)
    stream.write(_U64.pack(len(payload)) + payload)
    stream.flush()


def parse_frame(payload: bytes, *, seconds: float = DECODE_SECONDS) -> Any:
    """Read one frame's token tree back, within the budget (``TooLarge`` beyond it)."""
    try:
        return _read(bytes(payload), seconds)
    except ProtocolError:
        raise
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"unreadable frame ({type(exc).__name__})") from None


_LIST, _TUPLE, _DICT = 0x6C, 0x74, 0x64  # the container tags b"l", b"t", b"d"
_NO_KEY = object()  # a dict's next item is a key


def _read(data: bytes, seconds: float) -> Any:
    """An iterative reader (no recursion: depth is counted, not stacked). The open container's state
    (its items, how many it still expects, its tag, a dict's pending key) is kept in local names, and
    pushed on ``stack`` while an inner one is read."""
    end = len(data)
    max_nodes = min(MAX_NODES, end)
    deadline = time.monotonic() + seconds
    unpack_u32, unpack_u64 = _U32.unpack_from, _U64.unpack_from
    root: list[Any] = []
    stack: list[tuple[list[Any], int, int, Any]] = []
    items, left, kind, key = root, 1, _LIST, _NO_KEY
    at = nodes = 0
    while True:
        if left == 0:
            if not stack:
                break
            value: Any = tuple(items) if kind == _TUPLE else (dict(items) if kind == _DICT else items)
            items, left, kind, key = stack.pop()
        else:
            nodes += 1
            if nodes > max_nodes:
                raise TooLarge(f"more than {max_nodes} values")
            if nodes & 0xFFFF == 0 and time.monotonic() > deadline:
                raise TooLarge("it took too long to read")
            if at >= end:
                raise ProtocolError("truncated frame")
            tag = data[at]
            at += 1
            if tag == _LIST or tag == _TUPLE or tag == _DICT:
                if len(stack) >= MAX_DEPTH:
                    raise TooLarge(f"more than {MAX_DEPTH} levels of nesting")
                if at + 4 > end:
                    raise ProtocolError("truncated frame")
                (count,) = unpack_u32(data, at)
                at += 4
                if count > end - at:  # every item takes at least one byte
                    raise ProtocolError("a container claims more items than the frame holds")
                stack.append((items, left, kind, key))
                items, left, kind, key = [], 2 * count if tag == _DICT else count, tag, _NO_KEY
                continue
            if tag == 0x4E:  # N
                value = None
            elif tag == 0x54:  # T
                value = True
            elif tag == 0x46:  # F
                value = False
            elif tag == 0x69 or tag == 0x66:  # i, f
                if at + 8 > end:
                    raise ProtocolError("truncated frame")
                value = (_I64 if tag == 0x69 else _F64).unpack_from(data, at)[0]
                at += 8
            elif tag == 0x49 or tag == 0x73 or tag == 0x62:  # I, s, b: a length, then that many bytes
                width = 8 if tag == 0x62 else 4
                if at + width > end:
                    raise ProtocolError("truncated frame")
                (size,) = (unpack_u64 if width == 8 else unpack_u32)(data, at)
                at += width
                if tag == 0x49 and size > MAX_INT_DIGITS:
                    raise TooLarge(f"an integer of more than {MAX_INT_DIGITS} digits")
                if at + size > end:
                    raise ProtocolError("truncated frame")
                raw = data[at:at + size]
                at += size
                value = raw if tag == 0x62 else (int(raw.decode("ascii")) if tag == 0x49
                                                 else raw.decode("utf-8", "surrogatepass"))
            else:
                raise ProtocolError(f"unknown token {bytes([tag])!r}")
        # the value is an item of the open container
        left -= 1
        if kind != _DICT:
            items.append(value)
        elif key is _NO_KEY:
            if type(value) is not str:
                raise ProtocolError("a frame's dict keys are strings")
            key = value
        else:
            items.append((key, value))
            key = _NO_KEY
    if at != end:
        raise ProtocolError("bytes left after the frame's value")
    return root[0]
