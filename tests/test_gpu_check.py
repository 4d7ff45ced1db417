"""scripts/gpu-check: without CUDA it says so and exits 0 at once; with it, a CUDA verdict that differs
from the same check's CPU verdict, or any failure of a correct submission, is a disagreement."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import time
from types import ModuleType

import pytest

from grader.run.results import CheckResult, LabResult, TaskResult
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "gpu-check"


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _result(*checks: tuple[str, str]) -> LabResult:
    task = TaskResult("rnn_cell", "failed", 0.0, 10.0, "", tuple(CheckResult(n, s, "") for n, s in checks))
    return LabResult("lab4", "x", 0, [task])


def test_gpu_check_without_cuda_says_so_and_exits_0_quickly() -> None:
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert run.returncode == 0, run.stderr
    assert "no CUDA device here" in run.stdout
    assert time.monotonic() - started < 60


def test_a_mistake_passing_on_cuda_but_failing_on_cpu_is_a_disagreement() -> None:
    gpu = _script()
    ran, problems = gpu.disagreements("lab4 mistake m", _result(("matches torch (cpu, float32)", "failed"),
                                                                ("matches torch (cuda, float32)", "passed")), False)
    assert ran == 1
    assert problems == ["lab4 mistake m: rnn_cell: matches torch is failed on CPU but passed on cuda, float32"]


def test_a_mistake_failing_on_both_devices_agrees() -> None:
    gpu = _script()
    assert gpu.disagreements("m", _result(("matches torch (cpu, float64)", "failed"),
                                          ("matches torch (cuda, float64)", "failed")), False) == (1, [])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_correct_submission_failing_on_either_device_is_a_disagreement(device: str) -> None:
    gpu = _script()
    other = "cuda" if device == "cpu" else "cpu"
    ran, problems = gpu.disagreements("lab4 reference", _result((f"matches torch ({device}, float32)", "failed"),
                                                                (f"matches torch ({other}, float32)", "passed")), True)
    assert ran == 1
    assert f"lab4 reference: rnn_cell: matches torch ({device}, float32) failed on a correct submission" in problems


def test_a_cuda_check_skipped_on_a_machine_with_cuda_is_a_disagreement() -> None:
    gpu = _script()
    ran, problems = gpu.disagreements("r", _result(("matches torch (cuda)", "skipped")), True)
    assert ran == 0 and problems == ["r: rnn_cell: matches torch (cuda) was skipped on a machine with CUDA"]
