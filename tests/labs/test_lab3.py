"""Lab 3 (convolution) scenarios that test_every_lab does not already prove."""

from __future__ import annotations

from grader import labs
from grader.run.engine import PROFILES, grade_lab
from tests.conftest import REPO, grade, task_checks


def test_count_params_that_flattens_silently_where_trace_shapes_raises_fails_the_raises_gate(submission):
    # the contract: count_params raises ValueError wherever trace_shapes does (a linear layer on (C, H, W))
    folder = submission("lab3", """
        def count_params(input_shape, layers):
            shape, total = tuple(input_shape), 0
            for layer in layers:
                if layer["type"] == "linear" and len(shape) != 1:
                    layer = dict(layer)
                    shape = (math.prod(shape),)
                total += _layer_params(shape, layer)
                shape = trace_shapes(shape, [layer])[-1]
            return total
    """)
    task, checks = task_checks(grade("lab3", folder, tasks=("count_params",)), "count_params")
    gate = checks["raises ValueError wherever trace_shapes does"]
    assert gate.status == "failed" and "instead of raising ValueError" in gate.message
    assert "a linear layer on an unflattened" in gate.message
    assert task.score < task.max_score


def test_conv2d_backward_reference_keeps_full_marks_where_float32_sums_cancel_large_terms():
    """Issue 15: seed 105 drew |dout| ~ 2000; a dw entry of 4.37 came out 6e-4 off in float32 (a sum's rounding)."""
    result = grade_lab(labs.load("lab3"), REPO / "solutions", seed=105, tasks=("conv2d_backward",),
                       budget=PROFILES["default"])
    (task,) = result.tasks
    assert task.status == "passed", task.message


def test_conv2d_forward_float32_comparison_allows_for_a_sum_that_cancels_large_terms(submission):
    """many_seeds found it: seed 97, the tap-by-tap alternative lost 0.94 on one float32 entry near 0."""
    from tests.mutants.lab3 import conv2d_forward_sum_over_taps
    from tests.conftest import function_source

    folder = submission("lab3", function_source(conv2d_forward_sum_over_taps, "conv2d_forward"))
    result = grade_lab(labs.load("lab3"), folder, seed=97, tasks=("conv2d_forward",), budget=PROFILES["default"])
    (task,) = result.tasks
    assert task.status == "passed", task.message
