"""PyTorch as an oracle: devices, conversions, and settings that make it exact.

The grader imports PyTorch once, lazily (``dlkit list`` never pays for it), and
turns off TF32 so that CUDA float32 matmuls and convolutions are true float32.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import numpy as np

from grader.sandbox.wire import RngSpec, TensorValue

DEVICES = ("cpu", "cuda")  # every device a parity check is declared for; absent ones are skipped


@functools.cache
def torch() -> ModuleType:
    """The torch module, imported on first use, with TF32 disabled. What was loaded until then (PyTorch's
    hundreds of thousands of objects, there for good) is moved out of the garbage collector's sight
    (``gc.freeze``): a full collection walked it in a fifth of a second, and Hypothesis' first run makes one.
    No collection runs during the import: its new objects set off collections that free nothing (a tenth of it)."""
    import gc

    from grader.sandbox.eager import no_collections, skip_compiler_import

    with no_collections():
        import torch as t

        skip_compiler_import()  # the meta device's first operation would import torch._dynamo (a second or more)
        gc.freeze()

    t.backends.cuda.matmul.allow_tf32 = False
    t.backends.cudnn.allow_tf32 = False
    t.set_num_threads(1)  # the oracle's tensors are tiny: threads only add hand-offs
    return t


@contextlib.contextmanager
def eager_only() -> Iterator[None]:
    """PyTorch's optimizers, eager as the grader runs them, with no ``torch._dynamo``.

    ``torch.optim`` imports ``torch._dynamo`` (and sympy with it: more than a second, longer than
    the rest of a lab 2 check) on its first step, only to mark graph breaks and to keep the compiler
    out of code that nothing here compiles. While this is in force, where the compiler is not loaded
    already, a stand-in answers those two calls: ``graph_break`` does nothing and ``disable`` gives
    the function back as it is, which is what they amount to in eager mode. It is taken away after.
    """
    t = torch()
    if "torch._dynamo" in sys.modules:
        yield
        return
    stand_in = ModuleType("torch._dynamo", "stand-in: the grader runs PyTorch eagerly (grader.declare.oracles)")
    stand_in.graph_break = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    stand_in.disable = lambda fn=None, recursive=True, **kwargs: fn if fn is not None else (lambda f: f)  # type: ignore[attr-defined]
    sys.modules["torch._dynamo"] = stand_in
    setattr(t, "_dynamo", stand_in)
    try:
        yield
    finally:
        if sys.modules.get("torch._dynamo") is stand_in:
            del sys.modules["torch._dynamo"]
        if getattr(t, "__dict__", {}).get("_dynamo") is stand_in:
            delattr(t, "_dynamo")


def may_have(device: str) -> bool:
    """Whether ``device`` may be here, known without importing PyTorch: no NVIDIA device node (nor WSL's
    /dev/dxg), no CUDA."""
    if device in ("cpu", "meta"):  # "meta": tensors with a shape, a dtype and a device but no data, everywhere
        return True
    return device.startswith("cuda") and (any(Path("/dev").glob("nvidia*")) or Path("/dev/dxg").exists())


def available(device: str) -> bool:
    """Whether ``device`` is here (importing PyTorch, which costs seconds, only where it may be)."""
    return may_have(device) and (device in ("cpu", "meta") or bool(torch().cuda.is_available()))


def tensor(array: Any, device: str = "cpu", requires_grad: bool = False) -> Any:
    """A torch tensor with a copy of ``array`` on ``device``."""
    t = torch().as_tensor(np.array(array, copy=True), device=device)
    return t.requires_grad_(True) if requires_grad else t


def vjp(output: Any, inputs: Any, seed: Any) -> tuple[Any, ...]:
    """The gradients of sum(output * seed) with respect to ``inputs`` (a tensor or a sequence of them):
    what ``autograd.grad(output, inputs, seed)`` returns, bit for bit, without the shape checks that import
    sympy (a quarter of a second) the first time a non-scalar output is given a seed."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    return tuple(torch().autograd.grad((output * seed).sum(), inputs))


def nested(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``leaf`` applied to every leaf of nested tuples, lists and dicts, the containers rebuilt around them."""
    if isinstance(value, tuple):
        return tuple(nested(v, leaf) for v in value)
    if isinstance(value, list):
        return [nested(v, leaf) for v in value]
    if isinstance(value, dict):
        return {k: nested(v, leaf) for k, v in value.items()}
    return leaf(value)


def numpy(value: Any) -> Any:
    """Bring a torch result (tensor, or tuple/list/dict of them) back to NumPy."""
    return nested(value, lambda v: v.detach().cpu().numpy() if isinstance(v, torch().Tensor) else v)


def plain(value: Any) -> Any:
    """A torch result as the grader compares it: tensors become ``TensorValue`` (data, dtype, device)."""
    def leaf(v: Any) -> Any:
        if not isinstance(v, torch().Tensor):
            return v
        dtype = str(v.dtype).removeprefix("torch.")
        # a meta tensor has no data: it compares by shape, dtype and device only (its array is zeros)
        array = np.zeros(tuple(v.shape), dtype=dtype) if v.is_meta else v.detach().cpu().numpy()
        return TensorValue(array, dtype, str(v.device), bool(v.requires_grad))
    return nested(value, leaf)


def in_torch(fn: Callable[..., Any], float64: bool = False, device: str = "cpu") -> Callable[..., Any]:
    """PyTorch code as a function of NumPy arguments (a mistake's producer, or a NumPy lab's ``Torch`` oracle):
    arrays (in dicts too) come in as tensors on ``device`` and the tensors of the result go back to NumPy, a 0-d
    one as a NumPy scalar (as a loss comes back). By default a tensor keeps its array's dtype (lab 1). With
    ``float64`` (lab 6) floating arrays come in as float64, ``fn`` runs with warnings silenced (a mistake may
    divide by zero degrees of freedom: that is its answer), and the floating results are cast back to the dtype
    of the first floating input."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        def up(a: Any) -> Any:
            if isinstance(a, np.ndarray):
                return torch().as_tensor(a.astype(np.float64) if float64 and a.dtype.kind == "f" else a.copy(),
                                         device=device)
            return {k: up(v) for k, v in a.items()} if isinstance(a, dict) else a

        def back(value: Any) -> Any:
            if isinstance(value, torch().Tensor):
                array = value.detach().cpu().numpy()
                array = array.astype(dtype) if float64 and array.dtype.kind == "f" else array
                return array[()] if array.ndim == 0 else array
            if isinstance(value, (tuple, list)):
                return type(value)(back(v) for v in value)
            if isinstance(value, dict):
                return {k: back(v) for k, v in value.items()}
            return np.dtype(dtype).type(value) if float64 and isinstance(value, (float, np.floating)) else value

        floating = [a.dtype for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        dtype = floating[0] if floating else np.float64
        with warnings.catch_warnings(action="ignore") if float64 else contextlib.nullcontext():
            return back(fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()}))
    return run


def materialize(value: Any) -> Any:
    """Arguments as the grader's own code receives them: a fresh copy of every array,
    real tensors for ``TensorValue`` and real generators for ``RngSpec``."""
    def leaf(v: Any) -> Any:
        if isinstance(v, TensorValue):
            return tensor(v.array, v.device, requires_grad=v.requires_grad)
        if isinstance(v, RngSpec):
            return np.random.default_rng(v.seed)
        return v.copy() if isinstance(v, np.ndarray) else v
    return nested(value, leaf)


def flatten(*values: Any) -> list[Any]:
    """Every leaf of nested tuples, lists and dicts (the arguments of a call, say)."""
    found: list[Any] = []
    nested(values, found.append)
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
