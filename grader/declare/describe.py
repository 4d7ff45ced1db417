"""Write an input the way a student would type it: small arrays in full, large ones by shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.declare.signatures import Signature
from grader.declare.spec import Call
from grader.sandbox.wire import RngSpec, TensorValue

FULL_UP_TO = 24  # arrays with at most this many entries are printed in full


def describe_value(value: Any) -> str:
    if isinstance(value, TensorValue):
        if value.device == "meta":  # shape and dtype only: a meta tensor holds no values
            return f"torch.empty({value.shape}, dtype=torch.{value.dtype}, device='meta')"
        return f"tensor({describe_value(value.array)}, dtype={value.dtype}, device={value.device!r})"
    if isinstance(value, RngSpec):
        return f"np.random.default_rng({value.seed})"
    if isinstance(value, np.ndarray):
        if value.size == 0:  # "array([])" hides which dimension is empty
            return f"np.empty({value.shape}{'' if value.dtype == np.float64 else f', dtype={value.dtype}'})"
        if value.size <= FULL_UP_TO:
            text = np.array2string(value, separator=", ", precision=4, suppress_small=True, max_line_width=10_000)
            text = " ".join(text.split())
            suffix = "" if value.dtype in (np.float64, np.int64, np.bool_) else f", dtype={value.dtype}"
            return f"array({text}{suffix})"
        flat = value.reshape(-1)[:4]
        head = ", ".join(f"{float(x):.4g}" if value.dtype.kind == "f" else str(x) for x in flat)
        return f"<array of shape {value.shape}, {value.dtype}, starting {head}, ...>"
    if isinstance(value, tuple):
        inner = ", ".join(describe_value(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, list):
        return "[" + ", ".join(describe_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def describe_call(function: str, call: Call, signature: Signature | None = None) -> str:
    names = signature.params if signature else ()
    parts = [f"{names[i]}={describe_value(a)}" if i < len(names) else describe_value(a) for i, a in enumerate(call.args)]
    parts += [f"{k}={describe_value(v)}" for k, v in call.kwargs.items()]
    return f"{function}({', '.join(parts)})"
