"""PyTorch as an oracle: devices, conversions, and settings that make it exact.

The grader imports PyTorch once, lazily (``dlkit list`` never pays for it), and
turns off TF32 so that CUDA float32 matmuls and convolutions are true float32.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

from grader.sandbox.wire import RngSpec, TensorValue

DEVICES = ("cpu", "cuda")  # every device a parity check is declared for; absent ones are skipped


@functools.cache
def torch() -> ModuleType:
    """The torch module, imported on first use, with TF32 disabled."""
    import torch as t

    t.backends.cuda.matmul.allow_tf32 = False
    t.backends.cudnn.allow_tf32 = False
    t.set_num_threads(1)  # the oracle's tensors are tiny: threads only add hand-offs
    return t


def available(device: str) -> bool:
    if device in ("cpu", "meta"):  # "meta": tensors with a shape, a dtype and a device but no data, everywhere
        return True
    if device.startswith("cuda"):
        return bool(torch().cuda.is_available())
    return False


def tensor(array: Any, device: str = "cpu", dtype: Any = None, requires_grad: bool = False) -> Any:
    """A torch tensor with a copy of ``array`` on ``device``."""
    t = torch().as_tensor(np.array(array, copy=True), device=device)
    if dtype is not None:
        t = t.to(getattr(torch(), dtype) if isinstance(dtype, str) else dtype)
    return t.requires_grad_(True) if requires_grad else t


def vjp(output: Any, inputs: Any, seed: Any) -> tuple[Any, ...]:
    """The gradients of sum(output * seed) with respect to ``inputs`` (a tensor or a sequence of them):
    what ``autograd.grad(output, inputs, seed)`` returns, bit for bit, without the shape checks that import
    sympy (a quarter of a second) the first time a non-scalar output is given a seed."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    return tuple(torch().autograd.grad((output * seed).sum(), inputs))


def numpy(value: Any) -> Any:
    """Bring a torch result (tensor, or tuple/list/dict of them) back to NumPy."""
    t = torch()
    if isinstance(value, t.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple):
        return tuple(numpy(v) for v in value)
    if isinstance(value, list):
        return [numpy(v) for v in value]
    if isinstance(value, dict):
        return {k: numpy(v) for k, v in value.items()}
    return value


def plain(value: Any) -> Any:
    """A torch result as the grader compares it: tensors become ``TensorValue`` (data, dtype, device)."""
    t = torch()
    if isinstance(value, t.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        # a meta tensor has no data: it compares by shape, dtype and device only (its array is zeros)
        array = np.zeros(tuple(value.shape), dtype=dtype) if value.is_meta else value.detach().cpu().numpy()
        return TensorValue(array, dtype, str(value.device), bool(value.requires_grad))
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def materialize(value: Any) -> Any:
    """Arguments as the grader's own code receives them: a fresh copy of every array,
    real tensors for ``TensorValue`` and real generators for ``RngSpec``."""
    if isinstance(value, TensorValue):
        return tensor(value.array, value.device, requires_grad=value.requires_grad)
    if isinstance(value, RngSpec):
        return np.random.default_rng(value.seed)
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(materialize(v) for v in value)
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    return value


def flatten(*values: Any) -> list[Any]:
    """Every leaf of nested tuples, lists and dicts (the arguments of a call, say)."""
    found: list[Any] = []
    for value in values:
        if isinstance(value, (tuple, list)):
            found += flatten(*value)
        elif isinstance(value, dict):
            found += flatten(*value.values())
        else:
            found.append(value)
    return found


def plain_array(value: Any) -> np.ndarray | None:
    """The values of an array, a tensor with data or a number as a NumPy array; None for anything else."""
    if isinstance(value, TensorValue):
        return None if value.device == "meta" else value.array
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return np.asarray(value)
    return None
