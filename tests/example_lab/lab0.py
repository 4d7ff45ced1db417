"""Lab 0, vectors: the example lab of docs/ENGINE.md ("Declaring a lab"), graded in CI by
tests/test_example_lab.py. A real lab's declaration is grader/labs/labN.py and is registered in
grader/labs/__init__.py; this one stays in tests/, so students never see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import Property, Worked, parity
from grader.declare.context import Context
from grader.declare.spec import Call, Lab, Mistake, Task, call
from grader.declare.strategies import float_arrays


# ----------------------------------------------------------------------------- inputs


@st.composite
def vector_pairs(draw: st.DrawFn) -> Call:
    """Two vectors of one length, 1 to 8 entries."""
    n = draw(st.integers(1, 8))
    return call(draw(float_arrays((n,))), draw(float_arrays((n,))))


@st.composite
def nonzero_vectors(draw: st.DrawFn) -> Call:
    """A vector of 1 to 8 entries with at least one of them far from 0."""
    x = draw(float_arrays((draw(st.integers(1, 8)),)))
    x[draw(st.integers(0, len(x) - 1))] = draw(st.sampled_from((1.0, -2.5, 4.0)))
    return call(x)


# ----------------------------------------------------------------------------- dot


def _torch_dot(a: Any, b: Any) -> float:
    t = oracles.torch()
    return float(t.dot(a.to(t.float64), b.to(t.float64)))


DOT = Task(
    "dot", points=2,
    checks=[
        Worked([(call(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]), note="the handout's example"), 32.0)]),
        *parity("torch.dot", _torch_dot, vector_pairs()),
    ],
    mistakes=[
        Mistake("not_summed", "the entries were multiplied but not summed: a . b is one number, the sum of a_i * b_i",
                produces=lambda a, b: a * b),
    ],
)


# ----------------------------------------------------------------------------- normalize


def _unit_length(ctx: Context, c: Call) -> None:
    norm = float(np.linalg.norm(np.asarray(ctx.student(c), dtype=np.float64)))
    if abs(norm - 1.0) > 1e-9:  # float64 round-off of a division by the norm stays below 1e-15
        raise ctx.fail(c, f"the result has length {norm:.17g}, not 1", "a property of every normalized vector")


NORMALIZE = Task(
    "normalize", points=3,
    checks=[
        Worked([(call(np.array([3.0, 4.0]), note="the 3-4-5 triangle"), np.array([0.6, 0.8]))]),
        *parity("x / torch.linalg.vector_norm(x)", lambda x: x / float(oracles.torch().linalg.vector_norm(x)),
                nonzero_vectors()),
        Property("has length 1", _unit_length, cases=nonzero_vectors()),
    ],
    mistakes=[
        Mistake("squared_length", "divided by the squared length sum(x * x): the norm is its square root",
                produces=lambda x: x / np.sum(x * x)),
    ],
)


LAB = Lab(name="lab0", title="Vectors (the engine's example lab)", module="vectors", kind="numpy",
          tasks=[DOT, NORMALIZE], banned_source=("torch",))
