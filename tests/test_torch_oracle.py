"""The one oracle shape: a ``Torch`` oracle is a plain function of the task's arguments, and in a NumPy lab
``oracles.in_torch`` puts the arrays on the check's device. These run on the CPU alone: the "meta" device
stands in for CUDA (the same code path, another device string)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from grader.declare import oracles
from grader.declare.checks import Torch
from grader.declare.spec import Call, Variant
from grader.sandbox.wire import TensorValue


def _ctx(kind: str, device: str, dtype: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(lab=SimpleNamespace(kind=kind), variant=Variant(device, dtype))


def test_in_torch_puts_arrays_on_the_device_it_is_given() -> None:
    seen = oracles.in_torch(lambda x, d: (str(x.device), str(d["w"].device), str(x.dtype)), device="meta")
    assert seen(np.ones(3, np.float32), {"w": np.zeros(2)}) == ("meta", "meta", "torch.float32")


def test_in_torch_brings_results_back_to_numpy() -> None:
    twice = oracles.in_torch(lambda x: (2 * x, (x * x).sum()))
    out, total = twice(np.array([1.0, 2.0], np.float32))
    assert type(out) is np.ndarray and out.dtype == np.float32 and out.tolist() == [2.0, 4.0]
    assert isinstance(total, np.float32) and total == 5.0  # a 0-d tensor comes back as a NumPy scalar


def test_in_torch_float64_computes_in_float64_and_casts_back() -> None:
    dtypes = oracles.in_torch(lambda x, y: (str(x.dtype), x + y), float64=True)
    name, total = dtypes(np.array([1.0], np.float32), np.array([2.0], np.float32))
    assert name == "torch.float64" and total.dtype == np.float32 and total.tolist() == [3.0]


def test_a_numpy_lab_s_torch_oracle_runs_on_the_variant_s_device() -> None:
    oracle = Torch("where", lambda x, k=0: (str(x.device), k))
    assert oracle(_ctx("numpy", "meta"), Call((np.ones(2),), {"k": 3})) == ("meta", 3)
    assert oracle(_ctx("numpy", "cpu"), Call((np.ones(2),))) == ("cpu", 0)


def test_a_numpy_lab_s_torch_oracle_gives_numpy_results() -> None:
    oracle = Torch("sum", lambda x, y: x + y, float64=True)
    result = oracle(_ctx("numpy", "cpu", "float32"), Call((np.array([1.0], np.float32), np.array([0.5], np.float32))))
    assert type(result) is np.ndarray and result.dtype == np.float32 and result.tolist() == [1.5]


def test_a_pytorch_lab_s_torch_oracle_gets_tensors_on_their_device() -> None:
    oracle = Torch("double", lambda x: 2 * x)
    result = oracle(_ctx("torch", "cpu"), Call((TensorValue(np.array([1.0, 2.0]), "float64", "cpu"),)))
    assert isinstance(result, TensorValue) and result.device == "cpu" and result.array.tolist() == [2.0, 4.0]
    where = Torch("where", lambda x: str(x.device))
    assert where(_ctx("torch", "meta"), Call((TensorValue(np.zeros(2), "float64", "meta"),))) == "meta"


def test_importing_torch_for_the_oracles_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    oracles.torch.cache_clear()
    assert gc.isenabled()
    oracles.torch()
    assert gc.isenabled()
    gc.disable()
    try:
        oracles.torch.cache_clear()
        oracles.torch()
        assert not gc.isenabled()
    finally:
        gc.enable()
