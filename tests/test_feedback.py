"""The feedback a student reads: hints only when confirmed, the failure's parts as data, what the code printed,
what was expected when it raised, and a problem with the whole module said once."""

from __future__ import annotations

import json

from grader.report.render import print_text
from grader.run.results import SEE_ABOVE, LabResult
from tests.conftest import grade

LAB = "lab3"


def _render(result: LabResult) -> str:
    import io

    out = io.StringIO()
    print_text(result, "test", out, color=False)
    return out.getvalue()


def test_a_confirmed_mistake_is_a_hint_with_its_id_in_the_json(submission):
    folder = submission(LAB, """
        def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
            return round((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    """)
    (task,) = grade(LAB, folder, tasks=("conv_output_size",)).tasks
    data = json.loads(json.dumps(task.to_json()))
    failed = [c for c in data["checks"] if c["status"] == "failed"]
    assert failed and {"input", "expected", "received", "max_abs_error", "hint", "possible_causes"} <= set(failed[0])
    ids = {h["id"] for c in failed for h in c["hint"]}
    assert "conv_output_size.matches_round_instead_floor" in ids
    assert all(c["possible_causes"] == [] for c in failed if c["hint"])
    assert failed[0]["input"].startswith("conv_output_size(")


def test_the_students_printed_output_and_the_expected_value_are_shown_when_the_code_raises(submission):
    folder = submission(LAB, """
        def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
            print("debug: n =", n)
            raise RuntimeError("not finished")
    """)
    (task,) = grade(LAB, folder, tasks=("conv_output_size",)).tasks
    check = next(c for c in task.checks if c.status == "error")
    assert "your code printed" in check.message and "| debug: n =" in check.message
    assert "\n  expected: " in check.message
    assert check.to_json()["expected"] is not None and check.to_json()["received"] is None


def test_a_banned_import_at_the_top_is_reported_once(submission):
    folder = submission(LAB, "import torch\n")
    result = grade(LAB, folder, tasks=("conv_output_size", "pool_output_size", "same_padding"))
    assert "torch" in result.error and result.to_json()["error"] == result.error
    assert all(t.message.endswith(SEE_ABOVE) for t in result.tasks)
    text = _render(result)
    assert text.count("banned in this lab") == 1


def _graded(lab: str, mutant_name: str, build):
    import importlib

    from tests.conftest import mutant_submission
    from tests.mutants import collect

    mutant = next(m for m in collect(importlib.import_module(f"tests.mutants.{lab}")) if m.id == mutant_name)
    (task,) = grade(lab, mutant_submission(build, lab, mutant), tasks=(mutant.task,)).tasks
    return [c for c in task.checks if c.status not in ("passed", "skipped")]


def _confirmed(failed) -> set[str]:
    return {m for c in failed for m in c.mistakes}


def test_gru_reset_before_the_matrix_gets_only_its_own_hint(submission):
    # the handout's 1 x 1 example cannot tell r * (W h) from W (r * h); the drawn inputs can
    failed = _graded("lab4", "gru_cell_reset_before_matmul", submission)
    # (the mutant also breaks on a None bias, a second real problem that the bias-free gate names)
    assert _confirmed(failed) - {"gru_cell.bias_none"} == {"gru_cell.reset_gate_applied_h"}
    assert not any("applied outside" in c.message for c in failed)


def test_avg_pool_without_counted_padding_gets_only_its_own_hint(submission):
    failed = _graded("lab3", "avg_pool2d_forward_excludes_padding", submission)
    assert _confirmed(failed) == {"avg_pool2d_forward.padding_left_out_average"}


def test_dropout_keeping_with_probability_p_is_not_called_a_transpose(submission):
    failed = _graded("lab6", "dropout_forward_keeps_with_probability_p", submission)
    assert "dropout_forward.p_drop_probability_keep" in _confirmed(failed)
    assert not any("transpose" in c.message for c in failed)


def test_rmsprop_failures_say_nothing_of_torchs_step_count(submission):
    failed = _graded("lab2", "rmsprop_alpha_swapped", submission)
    assert failed and not any("'step'" in c.message for c in failed)


def test_an_example_not_in_the_handout_is_not_cited_as_the_handouts(submission):
    failed = _graded("lab3", "conv2d_params_divides_by_groups_twice", submission)
    worked = next(c for c in failed if c.name == "reproduces the handout's worked examples")
    assert "groups=64)" in worked.message
    assert "expected values from a fixed example, its value from PyTorch (not one of the handout's" in worked.message


def test_a_function_of_no_array_is_not_told_to_keep_the_dtype_of_its_inputs(submission):
    failed = _graded("lab5", "positional_encoding_numpy_float64", submission)
    assert any("dtype" in c.message for c in failed)
    assert not any("keep the dtype of the inputs" in c.message for c in failed)


def test_a_wrong_shape_on_meta_tensors_is_not_called_a_device_problem(submission):
    # only the meta check sees this shape bug (the branch stands for code paths other checks never reach)
    folder = submission("lab4", """
        def rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh):
            out = torch.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
            return out.T if x.device.type == "meta" else out
    """)
    (task,) = grade("lab4", folder, tasks=("rnn_cell",)).tasks
    meta = next(c for c in task.checks if "meta" in c.name)
    assert meta.status in ("failed", "error") and "not about devices" in meta.message
    assert "a tensor left the inputs' device" not in meta.message


def test_possible_causes_need_the_same_wrong_entries_and_a_nearer_value():
    import numpy as np

    from grader.declare.context import same_wrong_entries

    expected = np.array([1.0, 2.0, 3.0, 4.0])
    received = np.array([1.0, 2.5, 3.0, 4.0])
    assert same_wrong_entries(expected, np.array([1.0, 2.4, 3.0, 4.0]), received, None)
    assert not same_wrong_entries(expected, np.array([1.0, 2.4, 3.5, 4.0]), received, None)  # other entries
    assert not same_wrong_entries(expected, np.array([1.0, 9.0, 3.0, 4.0]), received, None)  # farther off


def test_checks_skipped_for_want_of_a_gpu_take_one_short_sentence():
    from grader.report.render import skipped_line
    from grader.run.results import CheckResult

    skipped = [CheckResult(f"matches torch (cuda, {t})", "skipped", "no cuda device on this machine")
               for t in ("float64", "float32")]
    assert skipped_line(skipped) == "CUDA checks skipped: no GPU here (they cost no points)"


def test_the_students_printed_output_is_trimmed_to_its_last_lines():
    from grader.declare.context import PRINTED_LINES, printed_lines

    lines = printed_lines("".join(f"step {i}\n" for i in range(20)) + "x" * 300)
    assert lines[0] == f"  your code printed (the last {PRINTED_LINES} of 21 lines):"
    assert lines[1] == "    | step 15" and lines[-1].endswith(" ...") and len(lines[-1]) < 180
    assert printed_lines("  \n") == []


def test_a_failure_is_shown_on_a_drawn_input_rather_than_an_empty_example(submission):
    # the weights without .T fail on every batch, the empty one included: emptiness is not the cause
    failed = _graded("lab4", "rnn_cell_weights_untransposed", submission)
    matches = next(c for c in failed if c.name.startswith("matches torch.nn.RNNCell (cpu, float64)"))
    assert "np.empty" not in matches.message and "hint: the weights were used without .T" in matches.message
