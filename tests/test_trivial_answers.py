"""Doing nothing earns nothing: for every task of every lab, a trivial answer scores exactly 0.

The trivial answers: zeros (or ones) shaped like a correct answer, the first argument returned
unchanged, a constant (0 or 1), None, raising ValueError, raising NotImplementedError. For the
answers shaped like a correct one, the submission folder holds a copy of the reference module and
each function calls it only to learn the shape, dtype and device of the answer (on copies of its
arguments), then returns zeros or ones of that kind: no value of the reference ever leaves it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import labs
from grader.declare.signatures import read_signatures
from tests.conftest import REPO, grade

SHAPER = '''
import copy


def _copy(value):
    """The arguments as the reference gets them: copies, so the reference cannot change what the grader sent."""
    if hasattr(value, "detach") and hasattr(value, "clone"):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if hasattr(value, "copy") and not isinstance(value, (dict, list)):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _filled(value, fill):
    """``value`` with every number replaced by ``fill`` (0 or 1): same structure, shapes, dtypes and devices."""
    if isinstance(value, bool):
        return bool(fill)
    if isinstance(value, (int, float)):
        return type(value)(fill)
    if hasattr(value, "new_full") and hasattr(value, "detach"):
        return value.detach().new_full(value.shape, fill)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return (value * 0 + fill).astype(value.dtype) if value.shape != () else value.dtype.type(fill)
    if isinstance(value, (list, tuple)):
        return type(value)(_filled(v, fill) for v in value)
    if isinstance(value, dict):
        return {k: _filled(v, fill) for k, v in value.items()}
    return value
'''

BODIES = {
    "zeros": "return _filled(_shape_of.{name}(*_copy(args), **_copy(kwargs)), 0)",
    "ones": "return _filled(_shape_of.{name}(*_copy(args), **_copy(kwargs)), 1)",
    "the first argument": "return args[0] if args else next(iter(kwargs.values()), None)",
    "the constant 0": "return 0",
    "the constant 1": "return 1",
    "None": "return None",
    "raise ValueError": "raise ValueError('no')",
    "raise NotImplementedError": "raise NotImplementedError('no')",
}
SHAPED = ("zeros", "ones")


def trivial_submission(folder: Path, lab: str, kind: str) -> Path:
    """A submission of ``lab`` in which every task's function gives the trivial answer ``kind``."""
    spec = labs.load(lab)
    target = folder / lab / f"{spec.module}.py"
    target.parent.mkdir(parents=True)
    lines = [f'"""Every task of {lab} answered by: {kind}."""', SHAPER]
    if kind in SHAPED:
        shutil.copyfile(REPO / "solutions" / lab / f"{spec.module}.py", target.parent / "_shape_of.py")
        lines.append("import _shape_of")
    signatures = read_signatures(REPO / "assignments" / lab / f"{spec.module}.py")
    for task in spec.tasks:
        assert task.function in signatures
        lines.append(f"\n\ndef {task.function}(*args, **kwargs):\n    {BODIES[kind].format(name=task.function)}\n")
    target.write_text("\n".join(lines))
    return folder


@pytest.mark.parametrize("kind", list(BODIES))
@pytest.mark.parametrize("lab", labs.names())
def test_a_trivial_answer_scores_zero_on_every_task(tmp_path, lab, kind):
    result = grade(lab, trivial_submission(tmp_path / "submission", lab, kind))
    assert result.status == "graded"
    scored = {t.name: t.score for t in result.tasks if t.score != 0}
    assert scored == {}, f"{kind} earns points on {lab}"
    assert all(t.status != "passed" for t in result.tasks)
    assert result.score == 0 and result.pending == 0


def test_the_shaped_answers_do_come_out_in_the_shape_of_a_correct_answer(tmp_path):
    """The zeros really are shaped right: they fail on values, not on shapes or dtypes."""
    (task,) = grade("lab3", trivial_submission(tmp_path / "s", "lab3", "zeros"), tasks=("conv2d_forward",)).tasks
    failed = [c for c in task.checks if c.status == "failed"]
    assert failed and all("has wrong values" in c.message for c in failed)
    assert not any("shape mismatch" in c.message or "has dtype" in c.message for c in task.checks)
