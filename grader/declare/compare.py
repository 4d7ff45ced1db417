"""Compare a received value with an expected one and say, in words, how they differ.

``difference`` returns ``None`` when the two agree, or a sentence (plus detail
lines) naming the first thing that is wrong, in this order: the kind of value,
the length of a tuple, the shape, the dtype, the device, non-finite entries,
and finally the values, with the first differing entries and the largest
absolute and relative errors.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

import numpy as np

from grader.declare.spec import DEFAULT_TOLERANCES, Tolerance
from grader.sandbox.wire import TensorValue, Unsupported

MAX_LISTED = 4
# A near miss: the values agree within this many times the tolerance, or agree but come in another dtype.
NEAR_MISS_FACTOR = 100.0
_LENIENT: contextvars.ContextVar[bool] = contextvars.ContextVar("dlkit_lenient", default=False)


@contextlib.contextmanager
def near_misses_pass() -> Iterator[None]:
    """Within this block, ``difference`` lets near misses through: a result of the right values in
    another floating dtype, or values within ``NEAR_MISS_FACTOR`` times the tolerance. The engine
    reruns a failed check this way to tell a slip from a wrong answer."""
    token = _LENIENT.set(True)
    try:
        yield
    finally:
        _LENIENT.reset(token)


def lenient() -> bool:
    """True inside ``near_misses_pass``."""
    return _LENIENT.get()


def kind_of(value: Any) -> str:
    """A student-readable name for what a value is."""
    if isinstance(value, Unsupported):
        return value.what
    if isinstance(value, TensorValue):
        return f"torch.Tensor of shape {value.shape}, {value.dtype} on {value.device}"
    if isinstance(value, np.ndarray):
        return f"numpy.ndarray of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"numpy.{type(value).__name__} {value!r}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of length {len(value)}"
    if value is None:
        return "None"
    return f"{type(value).__name__} {value!r}"[:120]


def tolerance_for(dtype: str, override: Tolerance | dict[str, Tolerance] | None = None) -> Tolerance:
    """The tolerance of a dtype (widened inside ``near_misses_pass``)."""
    tol = override if isinstance(override, Tolerance) else \
        (override or {}).get(dtype) or DEFAULT_TOLERANCES.get(dtype, Tolerance(0.0, 0.0))
    return Tolerance(tol.rtol * NEAR_MISS_FACTOR, tol.atol * NEAR_MISS_FACTOR, tol.scaled) if lenient() else tol


def _index(flat: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]"


def _fmt(x: Any, other: Any = None) -> str:
    """A number as a message prints it: 6 significant digits, or as many more as it takes (up to 17) to
    print it differently from ``other`` (the value it is compared with) when the two differ."""
    if isinstance(x, (float, np.floating)):
        value = float(x)
        if isinstance(other, (float, np.floating, int, np.integer)) and float(other) != value \
                and np.isfinite(value) and np.isfinite(float(other)):
            for digits in range(6, 18):
                if f"{value:.{digits}g}" != f"{float(other):.{digits}g}":
                    return f"{value:.{digits}g}"
        return f"{value:.6g}"
    return repr(x.item() if isinstance(x, np.generic) else x)


def _pair(expected: Any, received: Any) -> tuple[str, str]:
    """An expected and a received number, printed so that they read differently when they differ."""
    return _fmt(expected, received), _fmt(received, expected)


# The kind of a dtype mismatch: said only where an input array had a dtype to keep.
KEEP_DTYPE = "(keep the dtype of the inputs)"


def describe_array_difference(expected: np.ndarray, received: np.ndarray, tol: Tolerance) -> str | None:
    """The value part of a comparison: which entries are off, and by how much."""
    e = expected.astype(np.float64) if expected.dtype.kind in "biuf" else expected
    r = received.astype(np.float64) if received.dtype.kind in "biuf" else received
    e_bad, r_bad = ~np.isfinite(e), ~np.isfinite(r)
    unexpected = r_bad & ~e_bad
    if unexpected.any():
        flat = int(np.flatnonzero(unexpected)[0])
        count = int(unexpected.sum())
        return (f"{count} of {r.size} entries are NaN or infinite where finite values were expected; "
                "the first at {}: expected {}, received {}".format(_index(flat, r.shape),
                                                                    *_pair(e.flat[flat], r.flat[flat])))
    with np.errstate(invalid="ignore", over="ignore"):
        same_nonfinite = e_bad & r_bad & ((e == r) | (np.isnan(e) & np.isnan(r)))
        err = np.where(e_bad | r_bad, np.where(same_nonfinite, 0.0, np.inf), np.abs(r - e))
        finite = np.abs(np.where(e_bad, 0.0, e))
        atol = tol.atol * max(float(finite.max()) if tol.scaled and finite.size else 1.0, 1.0)
        wrong = err > atol + tol.rtol * finite
    if not wrong.any():
        return None
    positions = np.flatnonzero(wrong)
    scaled = f" (= {tol.atol:g} x the largest |expected|)" if atol != tol.atol else ""
    lines = [f"{len(positions)} of {e.size} entries differ (tolerance: atol={atol:g}{scaled}, rtol={tol.rtol:g})"]
    lines.append("first differing entries:")
    for flat in positions[:MAX_LISTED]:
        lines.append("  {}: expected {}, received {}".format(_index(int(flat), e.shape),
                                                              *_pair(e.flat[flat], r.flat[flat])))
    worst = int(np.argmax(np.where(np.isfinite(err), err, np.finfo(np.float64).max)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = err / np.abs(e)
    rel = np.where(np.isfinite(rel), rel, 0.0)
    lines.append("largest absolute error: {} at {} (expected {}, received {})".format(
        _fmt(err.flat[worst]), _index(worst, e.shape), *_pair(e.flat[worst], r.flat[worst])))
    if rel.size and rel.max() > 0:
        lines.append(f"largest relative error: {_fmt(rel.max())}")
    return "\n".join(lines)


def difference(expected: Any, received: Any, tol: Tolerance | dict[str, Tolerance] | None = None,
               what: str = "the result", exact_dtype: bool = True) -> str | None:
    """``None`` if ``received`` matches ``expected``, otherwise what is wrong with it."""
    if isinstance(received, Unsupported):
        return f"{what} is a {received.what}, expected {kind_of(expected)}"
    if isinstance(expected, (TensorValue, np.ndarray)):
        tensor = isinstance(expected, TensorValue)  # a tensor's dtype is always exact, and it has a device
        if tensor != isinstance(received, TensorValue) or not tensor and type(received) is not np.ndarray:
            return f"{what} should be a {'torch.Tensor' if tensor else 'numpy.ndarray'}, received {kind_of(received)}"
        if received.shape != expected.shape:
            return f"{what} has shape {received.shape}, expected {expected.shape} (a shape mismatch)"
        e = expected.array if isinstance(expected, TensorValue) else expected
        r = received.array if isinstance(received, TensorValue) else received
        slip = lenient() and e.dtype.kind == r.dtype.kind == "f"  # a near miss between floats (not bools, ints)
        if (tensor or exact_dtype) and received.dtype != expected.dtype and not slip:
            return f"{what} has dtype {received.dtype}, expected {expected.dtype} {KEEP_DTYPE}"
        if tensor and _device(received.device) != _device(expected.device):
            return f"{what} is on {received.device}, expected {expected.device} (keep the device of the inputs)"
        if tensor and expected.device == "meta":  # no data to compare: shape, dtype and device are all there is
            return None
        found = describe_array_difference(e, r, tolerance_for(expected.dtype if tensor else e.dtype.name, tol))
        return f"{what} has wrong values: {found}" if found else None
    if isinstance(expected, (tuple, list)):
        if not isinstance(received, (tuple, list)):
            return f"{what} should be a {type(expected).__name__} of length {len(expected)}, received {kind_of(received)}"
        if len(received) != len(expected):
            return f"{what} has length {len(received)}, expected {len(expected)}"
        items = (difference(e, r, tol, f"{what}[{i}]", exact_dtype)
                 for i, (e, r) in enumerate(zip(expected, received)))
        return next(filter(None, items), None)
    if isinstance(expected, dict):
        if not isinstance(received, dict):
            return f"{what} should be a dict with keys {sorted(expected)}, received {kind_of(received)}"
        if set(received) != set(expected):
            missing, extra = sorted(set(expected) - set(received)), sorted(set(received) - set(expected))
            parts = [f"missing keys {missing}" if missing else "", f"unexpected keys {extra}" if extra else ""]
            return f"{what} has the wrong keys: " + "; ".join(p for p in parts if p)
        items = (difference(expected[key], received[key], tol, f"{what}[{key!r}]", exact_dtype)
                 for key in expected)
        return next(filter(None, items), None)
    if expected is None:
        return None if received is None else f"{what} should be None, received {kind_of(received)}"
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(received, (bool, np.bool_)):
            return f"{what} should be a bool, received {kind_of(received)}"
        return None if bool(received) == bool(expected) else f"{what} is {received!r}, expected {expected!r}"
    if isinstance(expected, (int, np.integer)):
        if isinstance(received, (bool, np.bool_)) or not isinstance(received, (int, np.integer)):
            return f"{what} should be an int, received {kind_of(received)}"
        return None if int(received) == int(expected) else f"{what} is {int(received)}, expected {int(expected)}"
    if isinstance(expected, (float, np.floating)):
        value = _scalar(received)
        if value is None:
            return f"{what} should be a number (a float or a 0-d array), received {kind_of(received)}"
        dtype = expected.dtype.name if isinstance(expected, np.floating) else "float64"
        found = describe_array_difference(np.array(float(expected)), np.array(value), tolerance_for(dtype, tol))
        received_text, expected_text = _pair(value, float(expected))
        return f"{what} is {received_text}, expected {expected_text}" if found else None
    if isinstance(expected, str):
        return None if received == expected else f"{what} is {kind_of(received)}, expected {expected!r}"
    raise TypeError(f"cannot compare with an expected {type(expected).__name__}")


def _scalar(value: Any) -> float | None:
    """A float from any of the forms a scalar result may take, or None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf":
        return float(value)
    if isinstance(value, TensorValue) and value.shape in ((), (1,)) and value.array.dtype.kind == "f":
        return float(value.array.reshape(()))
    return None


def _device(name: str) -> str:
    return "cuda:0" if name == "cuda" else name


GENERIC_HINTS = {
    "generic.transposed_shape": "the result has the transposed shape: check the order of a matrix product or a "
                                "missing .T",
    "generic.reshaped": "the result has the right number of entries in the wrong shape: check a reshape or transpose",
    "generic.negated": "the result is the negative of the expected one: check a sign",
    "generic.transposed": "the result is the transpose of the expected one",
    "generic.scaled": "the result is the expected one times",
    "generic.detached": "the graph was broken on the way to that input: .detach(), .data, .item(), .numpy() or "
                        "torch.tensor(t) make a tensor autograd cannot see through (or the input is unused)",
}


def generic_hint(expected: Any, received: Any) -> tuple[str, str, bool] | None:
    """Recognise shapes of mistakes that any task can make: transposes, flipped signs, constant factors. Returns
    (id, advice, confirmed): confirmed when the values prove it (received == -expected), not when only a shape
    suggests it (a transposed shape)."""
    valueless = False  # meta tensors: only their shapes say anything
    if isinstance(expected, TensorValue) and isinstance(received, TensorValue):
        valueless = "meta" in (expected.device, received.device)
        expected, received = expected.array, received.array
    if not (isinstance(expected, np.ndarray) and type(received) is np.ndarray):
        return None
    if expected.dtype.kind != "f" or received.dtype.kind not in "fiu" or expected.size < 2:
        return None
    if received.shape != expected.shape:
        if expected.ndim == 2 and received.shape == expected.shape[::-1]:
            return "generic.transposed_shape", GENERIC_HINTS["generic.transposed_shape"], False
        if received.size == expected.size:
            return "generic.reshaped", GENERIC_HINTS["generic.reshaped"], False
        return None
    if valueless:
        return None
    e, r = expected.astype(np.float64), received.astype(np.float64)
    if not (np.isfinite(e).all() and np.isfinite(r).all()):
        return None
    scale = max(float(np.abs(e).max()), 1e-12)
    if np.allclose(r, -e, rtol=1e-5, atol=1e-8 * scale) and np.abs(e).max() > 0:
        return "generic.negated", GENERIC_HINTS["generic.negated"], True
    # a transpose only where it moves values: at least two distinct entries change place, and the result
    # is not also a rearrangement that keeps rows (a mask of whole rows or columns zeroed looks the same)
    if e.ndim == 2 and e.shape[0] == e.shape[1] and np.allclose(r, e.T, rtol=1e-5, atol=1e-8 * scale) \
            and int((~np.isclose(e, e.T, rtol=1e-5, atol=1e-8 * scale)).sum()) >= 4 \
            and np.count_nonzero(e) == e.size:
        return "generic.transposed", GENERIC_HINTS["generic.transposed"], True
    mask = np.abs(e) > 1e-8 * scale
    if mask.sum() >= 2:
        ratios = r[mask] / e[mask]
        k = float(np.median(ratios))
        if abs(k - 1) > 1e-3 and k != 0 and np.allclose(r, k * e, rtol=1e-5, atol=1e-8 * scale):
            return ("generic.scaled", f"{GENERIC_HINTS['generic.scaled']} {k:.6g}: a missing or extra constant factor "
                    "(a mean vs a sum? a factor 2?)", True)
    return None
