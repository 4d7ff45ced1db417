"""Lab 1 (backprop): the scenarios that test_every_lab does not already prove."""

from __future__ import annotations

from dataclasses import replace

from grader import labs
from grader.declare.checks import CentralDifferences
from grader.run.engine import Budget, grade_lab
from grader.run.results import GATE
from tests.conftest import REPO, SEED, grade, task_checks

CENTRAL = "gradients match central differences"
GRADIENT_TASKS = ("mse_loss", "gradient_descent_step", "sigmoid_neuron", "linear_backward", "relu_backward",
                  "sigmoid_backward", "tanh_backward", "softmax_cross_entropy", "two_layer_net")


def test_sigmoid_neuron_matching_the_curriculum_misprint_is_told_the_bias_gradient_is_positive(submission):
    folder = submission("lab1", """
        def sigmoid_neuron(w, x):
            # the misprinted lecture example: dw = [-0.20, -0.39, -0.20]
            f = 1 / (1 + np.exp(-(w[:-1] @ x + w[-1])))
            s = f * (1 - f)
            return f, s * np.append(x, -1.0), s * w[:-1]
    """)
    task, checks = task_checks(grade("lab1", folder, tasks=("sigmoid_neuron",)), "sigmoid_neuron")
    worked = checks["reproduces the handout's worked examples"]
    assert worked.status == "failed"
    assert "dw has wrong values" in worked.message and "misprint" in worked.message and "+0.197" in worked.message


def test_central_differences_catch_a_gradient_wrong_in_one_entry_only(submission):
    # A check that sampled one index would miss this most of the time; a direction moving every entry cannot.
    folder = submission("lab1", """
        def linear_backward(dout, x, W):
            dW = x.T @ dout
            dW[-1, -1] += 0.5
            return dout @ W.T, dW, dout.sum(axis=0)
    """)
    task, checks = task_checks(grade("lab1", folder, tasks=("linear_backward",)), "linear_backward")
    (central,) = [c for name, c in checks.items() if name.startswith(CENTRAL)]
    assert central.status == "failed"
    assert "the gradient for W disagrees" in central.message and "moves all" in central.message


def test_central_differences_never_fail_the_reference_over_many_inputs():
    lab = labs.load("lab1")
    only_central = replace(lab, banned_source=(), tasks=[replace(t, checks=[c for c in t.checks if isinstance(c, CentralDifferences)])
                                       for t in lab.tasks if t.name in GRADIENT_TASKS])
    for seed in (SEED, 1):
        result = grade_lab(only_central, REPO / "solutions", seed=seed, budget=Budget(max_examples=60))
        assert {t.name: t.message for t in result.tasks if t.status != "passed"} == {}, f"seed {seed}"
        assert sum(len(t.checks) for t in result.tasks) == len(GRADIENT_TASKS)


def test_two_layer_net_that_updates_params_in_place_is_told_so(submission):
    folder = submission("lab1", """
        _reference_net = two_layer_net

        def two_layer_net(params, X, y):
            loss, grads = _reference_net(params, X, y)
            params["W1"] -= 0.1 * grads["W1"]  # a training step leaked into the loss function
            return loss, grads
    """)
    task, _ = task_checks(grade("lab1", folder, tasks=("two_layer_net",)), "two_layer_net")
    # the values it returns are right: the modification fails the gate "leaves its arguments unchanged"
    assert task.score == task.max_score * GATE and "modified its argument 'params' in place" in task.message


def test_sigmoid_forward_that_only_warns_loses_just_the_extreme_input_checks(submission):
    folder = submission("lab1", """
        def sigmoid_forward(x):
            return 1 / (1 + np.exp(-x))
    """)
    task, checks = task_checks(grade("lab1", folder, tasks=("sigmoid_forward",)), "sigmoid_forward")
    failed = {name for name, c in checks.items() if c.status == "failed"}
    assert failed == {"finite and warning-free for inputs up to +-1e4 (cpu, float64)",
                      "finite and warning-free for inputs up to +-1e4 (cpu, float32)"}
    assert "RuntimeWarning: overflow encountered in exp" in task.message


def test_softmax_with_an_unshifted_logsumexp_passes_at_the_precision_of_float32_inputs(submission):
    # Correct, but it loses about 5e-4 (relative) in float32 at logits of 1e4, the spacing of the inputs there.
    folder = submission("lab1", """
        def softmax(logits):
            return np.exp(logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True))
    """)
    task, _ = task_checks(grade("lab1", folder, tasks=("softmax",)), "softmax")
    assert task.status == "passed", task.message


def test_two_layer_net_with_a_float32_log_softmax_by_logsumexp_keeps_full_marks_at_large_scores(submission):
    # many_seeds found it (thorough profile, seed 0): scores near 33 leave each float32 log-probability
    # known to about 4e-6, and W2 and X carry that into dW1 (off by 1.3e-5 where atol was 1e-5)
    import tests.mutants.lab1 as mutants
    from tests.conftest import mutant_submission
    from tests.mutants import collect

    einsum = next(m for m in collect(mutants) if m.id == "two_layer_net_einsum")
    from grader.run.engine import PROFILES

    (task,) = grade_lab(labs.load("lab1"), mutant_submission(submission, "lab1", einsum), seed=0,
                        tasks=("two_layer_net",), budget=PROFILES["thorough"]).tasks  # the inputs of seed 0
    assert task.score == task.max_score, task.message


def test_train_xor_is_graded_for_correctness_on_seed_0_only(submission):
    folder = submission("lab1", """
        _reference_train = train_xor

        def train_xor(hidden=8, lr=0.5, steps=2000, seed=0):
            if seed == 0:
                return _reference_train(hidden, lr, steps, seed)
            rng = np.random.default_rng(seed)  # other seeds: untrained, but seeded
            return {"W1": rng.standard_normal((2, hidden)), "b1": np.zeros(hidden),
                    "W2": rng.standard_normal((hidden, 2)), "b2": np.zeros(2)}
    """)
    task, _ = task_checks(grade("lab1", folder, tasks=("train_xor",)), "train_xor")
    assert task.status == "passed", task.message


def test_train_xor_that_never_returns_is_stopped_at_its_time_limit(submission):
    folder = submission("lab1", """
        def train_xor(hidden=8, lr=0.5, steps=2000, seed=0):
            while True:
                pass
    """)
    task, _ = task_checks(grade("lab1", folder, tasks=("train_xor",)), "train_xor")
    assert task.status == "timeout" and task.score == 0
    assert labs.load("lab1").task("train_xor").timeout <= 10


def test_train_xor_seeding_numpys_global_generator_fails_the_contract_gate(submission):
    # np.random.seed(seed) + np.random.randn is deterministic and uses the seed: only the global state gives it away
    folder = submission("lab1", """
        _reference_train = train_xor

        def train_xor(hidden=8, lr=0.5, steps=2000, seed=0):
            np.random.seed(seed)
            np.random.randn(3)
            return _reference_train(hidden, lr, steps, seed)
    """)
    task, checks = task_checks(grade("lab1", folder, tasks=("train_xor",)), "train_xor")
    gate = checks["leaves NumPy's global random state untouched"]
    assert gate.status == "failed" and "default_rng(seed)" in gate.message
    assert task.score < task.max_score
