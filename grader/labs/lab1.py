"""Lab 1, backpropagation: the tasks, their checks and the mistakes they recognise.

Three kinds of expectation, each named in a failure message:

- PyTorch on every device present (``torch.autograd`` for every gradient), in float64
  and float32;
- central differences of the loss (float64), along random directions that move every
  entry of a variable at once;
- the handout's worked examples (the quiz table, the sigmoid neuron, softmax of
  [2, 1, 0.1], the XOR network built by hand).

Sigmoid and softmax are also run at logits of +-1e4, where they must stay finite and
raise no warning, and ``train_xor`` is graded by running the student's training and
classifying the four points with what it returns.

The mistakes' producers compute with PyTorch (``in_torch``): the student release ships this
file, and none of it may run as a solution where the students' code runs (a NumPy lab's worker
cannot import torch).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import CPU_BOTH, CentralDifferences, Property, Torch, Worked, parity
from grader.declare.compare import kind_of
from grader.declare.context import DTYPE_HINT, CheckFailed, Context, compare_result, hints_for
from grader.declare.oracles import in_torch
from grader.declare.spec import Call, Lab, Mistake, Task, Tolerance, call
from grader.declare.strategies import MODERATE, STYLES, arrays_with_zeros, float_arrays, moderate, shapes, sizes

# At +-1e4 a float32 input is only known to about 1e-3 (its spacing there), so a correct formula
# that does not shift by the row max first may be off by that much.
EXTREME_TOLERANCE = {"float32": Tolerance(1e-3, 1e-3)}

# Example sizes that are pairwise different, so that a sum over the wrong axis or a transposed
# gradient has the wrong shape: N=5 examples, D=3 inputs, M=4 outputs, H=7 hidden units, C=6 classes.
_rng = np.random.default_rng(2026)
N, D, M, H, C = 5, 3, 4, 7, 6


def _normal(*shape: int) -> np.ndarray:
    return np.round(_rng.standard_normal(shape), 3)


def labels(n: int, c: int) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.integers(0, c - 1), min_size=n, max_size=n).map(lambda ys: np.array(ys, dtype=np.int64))


def _sigmoid(z: Any) -> Any:
    """The sigmoid, by PyTorch."""
    return oracles.numpy(oracles.torch().sigmoid(oracles.torch().as_tensor(np.asarray(z))))


def _stable(oracle: Torch, advice: str, inputs: str, example: Call) -> Property:
    """Finite values that match PyTorch, and no warning (overflow, division by zero) on the way, for
    ``inputs`` up to +-1e4 (``example``), in float64 and float32."""
    def holds(ctx: Context, call_: Call) -> None:
        expected = oracle(ctx, call_)
        received = ctx.student(call_)
        warned = "; ".join(ctx.warnings)
        problem = compare_result(ctx, expected, received, EXTREME_TOLERANCE)
        hints = hints_for(ctx, call_, expected, received, EXTREME_TOLERANCE) if problem else []
        if warned and not {DTYPE_HINT, *(m.hint for m in ctx.task.mistakes)} & set(hints):
            hints.append(advice)  # the advice, unless a known mistake's hint already says what went wrong
        if warned:
            problem = (f"{problem}\n  the call also raised {warned}" if problem else
                       f"{ctx.task.function} raised {warned}: the values came out right, but something overflowed "
                       "or divided by zero on the way")
        if problem:
            raise ctx.fail(call_, problem, f"{oracle.label} on {ctx.variant.label}", hints=hints)
    return Property(f"finite and warning-free for {inputs} up to +-1e4", holds, examples=[example], variants=CPU_BOTH)


# ----------------------------------------------------------------------------- linear regression


QUIZ_X = np.array([[73, 80, 75], [93, 88, 93], [89, 91, 90], [96, 98, 100], [73, 66, 70]], dtype=np.float64)
QUIZ_Y = np.array([[152], [185], [180], [196], [142]], dtype=np.float64)
QUIZ_W = np.array([[1.0], [0.5], [0.5]])
QUIZ_B = np.array([0.0])
QUIZ_PRED = np.array([[150.5], [183.5], [179.5], [195.0], [141.0]])


@st.composite
def affine_calls(draw: st.DrawFn) -> Call:
    """x (N, D), W (D, M), b (M,)."""
    n, d, m = draw(sizes(1, 6)), draw(sizes(1, 5)), draw(sizes(1, 5))
    return call(draw(moderate(n, d)), draw(moderate(d, m)), draw(moderate(m)))


AFFINE_EXAMPLE = call(_normal(N, D), _normal(D, M), _normal(M), note=f"N={N}, D={D}, M={M}")


def _torch_affine(x: Any, W: Any, b: Any) -> Any:
    return oracles.torch().nn.functional.linear(x, W.T, b)


def _affine_task(name: str, points: float, what: str) -> Task:
    return Task(
        name, points=points,
        checks=[
            Worked([(call(QUIZ_X, QUIZ_W, QUIZ_B, note="the handout's quiz table, W = [1, 0.5, 0.5], b = 0"),
                     QUIZ_PRED)]),
            *parity("torch.nn.functional.linear", _torch_affine, affine_calls(), examples=[AFFINE_EXAMPLE]),
        ],
        mistakes=[
            Mistake("f_bias_b_missing",
                    f"the bias b is missing: {what} adds b to every row", produces=in_torch(lambda x, W, b: x @ W)),
        ],
    )


PREDICT = _affine_task("predict", 3, "H(X) = X @ W + b")


@st.composite
def mse_calls(draw: st.DrawFn) -> Call:
    """pred and y of one shape, mostly (N, M) with M > 1 (where rows and elements differ)."""
    shape = draw(st.one_of(st.tuples(sizes(1, 6), sizes(2, 4)), shapes(1, 3, 1, 4)))
    return call(draw(moderate(*shape)), draw(moderate(*shape)))


def _torch_loss(name: str) -> Callable[..., Any]:
    """The loss ``torch.nn.functional.<name>`` and its gradient with respect to the first argument."""
    def compute(z: Any, y: Any) -> Any:
        loss = getattr(oracles.torch().nn.functional, name)(z.requires_grad_(True), y)
        return loss, *oracles.torch().autograd.grad(loss, z)
    return compute


_torch_mse = _torch_loss("mse_loss")


def _mse_with(loss_times: Callable[[Any], float], grad_times: Callable[[Any], float]) -> Any:
    """PyTorch's MSE and its gradient, scaled as a mistake scales them (``loss_times(pred)``)."""
    def produce(pred: np.ndarray, y: np.ndarray) -> Any:
        loss, dpred = in_torch(_torch_mse)(pred, y)
        return loss * loss_times(pred), dpred * grad_times(pred)
    return produce


MSE_LOSS = Task(
    "mse_loss", points=6, returns=("loss", "dpred"),
    checks=[
        Worked([(call(QUIZ_PRED, QUIZ_Y, note="the handout's quiz table: predictions of W = [1, 0.5, 0.5], b = 0"),
                 (1.35, np.array([[-0.6], [-0.6], [-0.2], [-0.4], [-0.4]])))]),
        *parity("torch.nn.functional.mse_loss and torch.autograd", _torch_mse, mse_calls(),
                examples=[call(_normal(N, M), _normal(N, M), note=f"N={N}, M={M}")]),
        CentralDifferences("mean((pred - y)**2)", lambda c: {"pred": c.args[0]},
                           lambda c, v: float(np.mean((v["pred"] - c.args[1]) ** 2)),
                           lambda c, r: {"pred": r[1]}, mse_calls(), max_examples=6, aspects=("dpred",)),
    ],
    mistakes=[
        Mistake("dpred_missing_factor_2",
                "dpred is missing the factor 2 of the square: d/dpred (pred - y)**2 = 2 * (pred - y)",
                produces=_mse_with(lambda d: 1, lambda d: 0.5)),
        Mistake("dpred_lacks_1_n",
                "dpred lacks the 1/N of the mean: divide 2 * (pred - y) by the number of elements pred.size",
                produces=_mse_with(lambda d: 1, lambda d: d.size)),
        Mistake("loss_sum_instead_mean",
                "the loss is a sum instead of a mean: average the squared errors over all pred.size elements "
                "(and divide the gradient by pred.size too)", produces=_mse_with(lambda d: d.size, lambda d: d.size)),
        Mistake("divided_number_rows_n",
                "divided by the number of rows N: the mean runs over the number of elements pred.size (N * M), "
                "for the loss and for dpred", produces=_mse_with(lambda d: d.size / d.shape[0],
                                                                 lambda d: d.size / d.shape[0])),
        Mistake("sign_dpred_flipped_d",
                "the sign of dpred is flipped: d/dpred (pred - y)**2 = +2 * (pred - y), so dpred points from y "
                "towards pred", produces=_mse_with(lambda d: 1, lambda d: -1)),
        Mistake("loss_dpred_half_expected",
                "loss and dpred are half of the expected ones: the 1/2 * mean(...) convention; PyTorch's MSELoss, "
                "graded here, has no 1/2", produces=_mse_with(lambda d: 0.5, lambda d: 0.5)),
    ],
)


@st.composite
def descent_calls(draw: st.DrawFn) -> Call:
    """X (N, D), y (N, M), W (D, M), b (M,) and a learning rate."""
    n, d, m = draw(sizes(1, 6)), draw(sizes(1, 4)), draw(sizes(1, 4))
    rate = draw(st.sampled_from((0.1, 0.01, 0.5, 0.05)))
    return call(draw(moderate(n, d)), draw(moderate(n, m)), draw(moderate(d, m)), draw(moderate(m)), rate)


def _torch_descent(X: Any, y: Any, W: Any, b: Any, lr: float) -> Any:
    t = oracles.torch()
    params = W.requires_grad_(True), b.requires_grad_(True)
    loss = t.nn.functional.mse_loss(t.nn.functional.linear(X, W.T, b), y)
    return tuple(p - lr * g for p, g in zip(params, t.autograd.grad(loss, params)))


def _descent_with(dW_of: Callable[..., np.ndarray] | None = None, db_scale: Callable[[int], float] = lambda n: 1,
                  sign: float = 1.0, factor: float = 1.0, update_b: bool = True, b_after_W: bool = False) -> Any:
    """One MSE gradient-descent step with one mistake: PyTorch's gradients, changed as the mistake changes them."""
    @in_torch
    def produce(X: Any, y: Any, W: Any, b: Any, lr: float) -> Any:
        t = oracles.torch()

        def gradients(at: Any) -> Any:
            W_, b_ = at.detach().requires_grad_(True), b.detach().requires_grad_(True)
            pred = t.nn.functional.linear(X, W_.T, b_)
            return [factor * g for g in t.autograd.grad(t.nn.functional.mse_loss(pred, y), (pred, W_, b_))]

        dpred, dW, db = gradients(W)
        W_new = W - sign * lr * (dW_of(X, dpred, W) if dW_of else dW)
        if b_after_W:
            db = gradients(W_new)[2]
        db = db / db_scale(X.shape[0])
        return W_new, (b - sign * lr * db) if update_b else b
    return produce


def _implied_gradients(c: Call, r: Any) -> dict[str, Any]:
    """The gradient a step used, read off the step: (W - W_new) / lr."""
    W, b, lr = c.args[2], c.args[3], c.args[4]
    return {"W": (W - r[0]) / lr, "b": (b - r[1]) / lr}


GRADIENT_DESCENT_STEP = Task(
    "gradient_descent_step", points=8, returns=("W_new", "b_new"),
    checks=[
        Worked([
            (call(QUIZ_X, QUIZ_Y, QUIZ_W, QUIZ_B, 1e-5, note="the handout's quiz table from W = [1, 0.5, 0.5], b = 0"),
             (np.array([[1.00185], [0.501846], [0.501868]]), np.array([2.2e-05]))),
            (call(QUIZ_X, QUIZ_Y, np.zeros((3, 1)), np.zeros(1), 1e-5, note="the quiz table from W = 0, b = 0"),
             (np.array([[0.294012], [0.2936], [0.29738]]), np.array([0.00342]))),
        ]),
        *parity("torch.autograd through mse_loss(linear(X, W.T, b), y), then W - lr * W.grad", _torch_descent,
                descent_calls(),
                examples=[call(_normal(N, D), _normal(N, M), _normal(D, M), _normal(M), 0.1, note=f"N={N}, D={D}, M={M}"),
                          call(_normal(N, D), _normal(N, M), _normal(D, M), _normal(M), 0.0, note="lr = 0 returns W, b")]),
        CentralDifferences("mean((X @ W + b - y)**2)", lambda c: {"W": c.args[2], "b": c.args[3]},
                           lambda c, v: float(np.mean((c.args[0] @ v["W"] + v["b"] - c.args[1]) ** 2)),
                           _implied_gradients, descent_calls(), max_examples=6, aspects=("W_new", "b_new"),
                           name="the step is -lr times the gradient of the MSE (central differences)"),
    ],
    mistakes=[
        Mistake("gradient_ascent_step_adds",
                "gradient ascent: the step adds the gradient; subtract it (W - lr * dW) to go downhill",
                produces=_descent_with(sign=-1.0)),
        Mistake("bias_updated_b_new",
                "the bias was not updated: b_new = b - lr * dL/db, with dL/db = dpred.sum(axis=0)",
                produces=_descent_with(update_b=False)),
        Mistake("dw_x_t_dpred",
                "dW must be X.T @ dpred (D, M): (dpred.T @ X).reshape(D, M) scrambles the entries when M > 1, "
                "because reshape is not a transpose", produces=_descent_with(dW_of=lambda X, dp, W: (dp.T @ X).reshape(W.shape))),
        Mistake("step_half_expected_one",
                "the step is half the expected one: the MSE gradient has a factor 2 (from the square)",
                produces=_descent_with(factor=0.5)),
        Mistake("bias_step_n_times",
                "the bias step is N times too small: dL/db is the sum of dpred over the rows (dpred already "
                "carries the 1/N of the mean), don't average it", produces=_descent_with(db_scale=lambda n: n)),
        Mistake("b_s_gradient_taken",
                "b's gradient was taken after W was updated: compute both gradients at the old W and b first, then "
                "update both (a simultaneous update)", produces=_descent_with(b_after_W=True)),
    ],
)


# ----------------------------------------------------------------------------- one neuron


@st.composite
def neuron_calls(draw: st.DrawFn) -> Call:
    """w (D+1,) and x (D,) of moderate size (the plain 1 / (1 + exp(-z)) is allowed here)."""
    d = draw(sizes(1, 5))
    return call(draw(moderate(d + 1)), draw(moderate(d)))


def _torch_neuron(w: Any, x: Any) -> Any:
    t = oracles.torch()
    f = t.sigmoid(w.requires_grad_(True)[:-1] @ x.requires_grad_(True) + w[-1])
    return f, *t.autograd.grad(f, (w, x))


def _neuron_with(*, bias_first: bool = False, bias_times_x0: bool = False, from_z: bool = False,
                 no_swap: bool = False, no_local: bool = False, bias_sign: float = 1.0) -> Any:
    @in_torch
    def produce(w: Any, x: Any) -> Any:
        t = oracles.torch()
        ones = t.ones(1, dtype=x.dtype)
        if bias_first:
            f = t.sigmoid(w[0] + w[1:] @ x)
            local = f - f * f
            return f, local * t.cat([ones, x]), local * w[1:]
        inputs = t.cat([x, x])[:w.shape[0]] if bias_times_x0 else t.cat([x, bias_sign * ones])
        z = w[:-1] @ x + w[-1] * (x[0] if bias_times_x0 else 1)
        f = t.sigmoid(z)
        local = z * (1 - z) if from_z else (1 if no_local else f * (1 - f))
        return f, local * inputs, local * (x if no_swap else w[:-1])
    return produce


SIGMOID_NEURON = Task(
    "sigmoid_neuron", points=8, returns=("f", "dw", "dx"),
    checks=[
        Worked([(call(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]),
                      note="the handout's sigmoid neuron, w = [2, -3, -3], x = [-1, -2]"),
                 (np.float64(0.7310585786300049), np.array([-0.19661193324148185, -0.3932238664829637, 0.19661193324148185]),
                  np.array([0.3932238664829637, -0.5898357997244456])))]),
        *parity("torch.autograd through torch.sigmoid(w[:-1] @ x + w[-1])", _torch_neuron, neuron_calls()),
        CentralDifferences("f = sigmoid(w[:-1] @ x + w[-1])", lambda c: {"w": c.args[0], "x": c.args[1]},
                           lambda c, v: float(_sigmoid(v["w"][:-1] @ v["x"] + v["w"][-1])),
                           lambda c, r: {"w": r[1], "x": r[2]}, neuron_calls(), max_examples=6, aspects=("dw", "dx")),
    ],
    mistakes=[
        Mistake("bias_last_entry_w",
                "the bias is the last entry w[D], not w[0]: z = w[0]*x[0] + ... + w[D-1]*x[D-1] + w[D]",
                produces=_neuron_with(bias_first=True)),
        Mistake("bias_s_input_constant",
                "the bias's input is the constant 1: z adds w[D] itself (not w[D] * x[0]), and df/dw[D] = f * (1 - f)",
                produces=_neuron_with(bias_times_x0=True)),
        Mistake("sigmoid_s_local_gradient",
                "the sigmoid's local gradient is f * (1 - f), computed from its output f = sigmoid(z), not z * (1 - z)",
                produces=_neuron_with(from_z=True)),
        Mistake("multiply_gate_swaps_inputs",
                "the multiply gate swaps its inputs: df/dx[i] = f(1-f) * w[i] and df/dw[i] = f(1-f) * x[i], "
                "so dx gets w, not x", produces=_neuron_with(no_swap=True)),
        Mistake("missing_sigmoid_s_local",
                "missing the sigmoid's local gradient f * (1 - f): by the chain rule, multiply the gradients of "
                "z = w . x + b by it", produces=_neuron_with(no_local=True)),
        Mistake("dw_s_last_entry",
                "dw's last entry (the bias) has the wrong sign: its input is the constant 1, so df/dw[D] = +f * (1 - f) "
                "(+0.197 in the handout's example). Some copies of the lecture example print dw = [-0.20, -0.39, -0.20]: "
                "that last -0.20 is a misprint, and PyTorch agrees on +0.197",
                produces=_neuron_with(bias_sign=-1.0)),
    ],
)


# ----------------------------------------------------------------------------- layers


LINEAR_FORWARD = _affine_task("linear_forward", 3, "out = x @ W + b")


@st.composite
def linear_backward_calls(draw: st.DrawFn) -> Call:
    """dout (N, M), x (N, D), W (D, M)."""
    n, d, m = draw(sizes(1, 6)), draw(sizes(1, 5)), draw(sizes(1, 5))
    return call(draw(moderate(n, m)), draw(moderate(n, d)), draw(moderate(d, m)))


def _torch_linear_grads(dout: Any, x: Any, W: Any) -> Any:
    t = oracles.torch()
    x, W = x.requires_grad_(True), W.requires_grad_(True)
    b = t.zeros(W.shape[1], dtype=W.dtype, device=W.device, requires_grad=True)
    return oracles.vjp(t.nn.functional.linear(x, W.T, b), (x, W, b), dout)


def _linear_grads_with(change: Callable[..., Any]) -> Callable[..., Any]:
    """PyTorch's gradients of the linear layer, changed as a mistake changes them: ``change(dx, dW, db, x)``."""
    def produce(dout: np.ndarray, x: np.ndarray, W: np.ndarray) -> Any:
        return change(*in_torch(_torch_linear_grads)(dout, x, W), x)
    return produce


def _db_over_rows(c: Call, expected: Any, received: Any) -> bool:
    dout, db, want = c.args[0], received[2], expected[2]
    if not isinstance(db, np.ndarray):
        return False
    if db.shape != want.shape:
        return db.shape == (dout.shape[0],)
    return not np.allclose(db, want) and np.allclose(db, dout.sum(axis=1))


LINEAR_BACKWARD = Task(
    "linear_backward", points=9, returns=("dx", "dW", "db"),
    checks=[
        *parity("torch.autograd through torch.nn.functional.linear", _torch_linear_grads, linear_backward_calls(),
                examples=[call(_normal(N, M), _normal(N, D), _normal(D, M), note=f"N={N}, D={D}, M={M}")]),
        CentralDifferences("sum(dout * (x @ W + b))",
                           lambda c: {"x": c.args[1], "W": c.args[2], "b": np.zeros(c.args[2].shape[1])},
                           lambda c, v: float(np.sum(c.args[0] * (v["x"] @ v["W"] + v["b"]))),
                           lambda c, r: {"x": r[0], "W": r[1], "b": r[2]}, linear_backward_calls(), max_examples=6,
                           aspects=("dx", "dW", "db")),
    ],
    mistakes=[
        Mistake("db_sums_dout_over",
                "db sums dout over the wrong axis: sum over the batch axis 0, db = dout.sum(axis=0), one entry per "
                "output (M,)", detects=_db_over_rows),
        Mistake("dw_transposed_dw_x",
                "dW is transposed: dW = x.T @ dout has W's shape (D, M); dout.T @ x gives (M, D)",
                produces=_linear_grads_with(lambda dx, dW, db, x: (dx, dW.T, db))),
        Mistake("dw_db_divided_batch",
                "dW and db are divided by the batch size: don't average again, the 1/N of a mean loss is already "
                "inside dout; dW = x.T @ dout and db = dout.sum(axis=0)",
                produces=_linear_grads_with(lambda dx, dW, db, x: (dx, dW / x.shape[0], db / x.shape[0]))),
        Mistake("gradients_come_back_wrong",
                "the gradients come back in the wrong order: return (dx, dW, db)",
                produces=_linear_grads_with(lambda dx, dW, db, x: (dW, dx, db))),
    ],
)


@st.composite
def any_arrays(draw: st.DrawFn, zeros: bool = True, styles: tuple[str, ...] = STYLES) -> np.ndarray:
    """An array of 1 to 3 axes (a quarter of its entries exactly 0 when ``zeros``)."""
    shape = draw(shapes(1, 3, 1, 5))
    return draw(arrays_with_zeros(shape, 0.25) if zeros else float_arrays(shape, styles=styles))


def _torch_elementwise(name: str) -> Callable[[Any], Any]:
    return lambda x: getattr(oracles.torch(), name)(x)


RELU_FORWARD = Task(
    "relu_forward", points=3,
    checks=[
        *parity("torch.relu", _torch_elementwise("relu"), any_arrays().map(lambda x: call(x)),
                examples=[call(np.array([[-2.0, 0.0, 3.0], [1.5, -0.5, 0.0]]))]),
    ],
    mistakes=[
        Mistake("np_max_x_0",
                "np.max(x, 0) is the largest entry along axis 0, not the elementwise maximum with 0: use "
                "np.maximum(x, 0)", produces=in_torch(lambda x: x.amax(0))),
    ],
)


@st.composite
def relu_backward_calls(draw: st.DrawFn, kinks: bool = True) -> Call:
    """dout and x of one shape; x has exact zeros (``kinks``) or stays at least 0.5 away from 0."""
    shape = draw(shapes(1, 3, 1, 5))
    x = draw(arrays_with_zeros(shape, 0.25) if kinks else moderate(*shape))
    if not kinks:
        x = np.where(x >= 0, x + 0.5, x - 0.5)
    return call(draw(moderate(*shape)), x)


def _torch_relu_grad(dout: Any, x: Any) -> Any:
    return oracles.vjp(oracles.torch().relu(x.requires_grad_(True)), x, dout)[0]


RELU_BACKWARD = Task(
    "relu_backward", points=5,
    checks=[
        *parity("torch.autograd through torch.relu", _torch_relu_grad, relu_backward_calls(),
                examples=[call(np.array([2.0, -1.0, 3.0, 0.5]), np.array([-1.0, 0.0, 2.0, 0.0]),
                               note="x has exact zeros, where ReLU's gradient is 0")]),
        CentralDifferences("sum(dout * relu(x))", lambda c: {"x": c.args[1]},
                           lambda c, v: float(np.sum(c.args[0] * np.maximum(v["x"], 0))),
                           lambda c, r: {"x": r}, relu_backward_calls(kinks=False), max_examples=4),
    ],
    mistakes=[
        Mistake("relu_s_gradient_0",
                "ReLU's gradient at 0 is 0 (as in PyTorch): mask with x > 0, not x >= 0",
                produces=in_torch(lambda dout, x: dout * (x >= 0))),
        Mistake("upstream_gradient_missing_chain",
                "the upstream gradient is missing: by the chain rule dx = dout * (x > 0), not the local gradient alone",
                produces=in_torch(lambda dout, x: (x > 0).to(dout.dtype))),
    ],
)

SIGMOID_EXTREMES = call(np.array([-1e4, -1000.0, -100.0, 0.0, 100.0, 1000.0, 1e4]), note="inputs up to +-1e4")
SIGMOID_ADVICE = ("exp overflowed: exp of a large positive number is inf (overflow, and inf / inf = nan); only "
                  "ever exponentiate -|x|: e = np.exp(-np.abs(x)), then 1 / (1 + e) where x >= 0 and e / (1 + e) "
                  "where x < 0")


def _nan_where_finite(c: Call, expected: Any, received: Any) -> bool:
    with np.errstate(invalid="ignore"):
        return isinstance(received, np.ndarray) and received.shape == expected.shape \
            and bool((~np.isfinite(received) & np.isfinite(expected)).any())


SIGMOID_FORWARD = Task(
    "sigmoid_forward", points=6,
    checks=[
        Worked([(call(np.array([0.0, 2.0, -2.0]), note="sigmoid(0) = 0.5"),
                 np.array([0.5, 0.8807970779778823, 0.11920292202211755]))]),
        *parity("torch.sigmoid", _torch_elementwise("sigmoid"), any_arrays(zeros=False).map(lambda x: call(x))),
        _stable(Torch("torch.sigmoid", _torch_elementwise("sigmoid")), SIGMOID_ADVICE, "inputs", SIGMOID_EXTREMES),
    ],
    mistakes=[
        Mistake("sigmoid_x_sign_x",
                "this is sigmoid(-x): the sign of x is flipped; sigmoid(x) = 1 / (1 + exp(-x)) goes to 1 for large x",
                produces=in_torch(lambda x: 1 - x.sigmoid())),
        Mistake("exp_overflowed_exp_large",
                SIGMOID_ADVICE, detects=_nan_where_finite),
    ],
)


@st.composite
def from_output_calls(draw: st.DrawFn, forward: Callable[[np.ndarray], np.ndarray]) -> Call:
    """dout and out = forward(x), for x of scale 3 (so that out and forward(out) differ clearly)."""
    shape = draw(shapes(1, 3, 1, 5))
    return call(draw(moderate(*shape)), forward(3.0 * draw(float_arrays(shape, styles=("normal",)))))


def _from_output_task(kernel: str, forward: Callable[[np.ndarray], Any], inverse: Callable[[np.ndarray], Any],
                      at: str, mistakes: list[Mistake]) -> Task:
    """dx from dout and the output out = forward(x): PyTorch's backward kernel (``aten.<kernel>``), and central
    differences of sum(dout * forward(x)) at x = inverse(out) (written ``at``)."""
    name = kernel.removesuffix("_backward")
    return Task(kernel, points=4, mistakes=mistakes, checks=[
        *parity(f"torch.autograd's backward of torch.{name} (aten.{kernel})",
                lambda dout, out: getattr(oracles.torch().ops.aten, kernel)(dout, out), from_output_calls(forward)),
        CentralDifferences(f"sum(dout * {name}(x)) at x = {at}", lambda c: {"x": inverse(c.args[1])},
                           lambda c, v: float(np.sum(c.args[0] * forward(v["x"]))),
                           lambda c, r: {"x": r}, from_output_calls(forward), max_examples=4),
    ])


SIGMOID_BACKWARD = _from_output_task(
    "sigmoid_backward", _sigmoid, lambda out: np.log(out) - np.log1p(-out), "log(out / (1 - out))",
    mistakes=[
        Mistake("out_already_sigmoid_s",
                "out is already the sigmoid's output: dx = dout * out * (1 - out); don't apply the sigmoid to it again",
                produces=in_torch(lambda dout, out: dout * out.sigmoid() * (1 - out.sigmoid()))),
        Mistake("upstream_gradient_missing_chain",
                "the upstream gradient is missing: by the chain rule dx = dout * out * (1 - out)",
                produces=in_torch(lambda dout, out: out * (1 - out))),
        Mistake("sign_flipped_sigmoid_s",
                "the sign is flipped: the sigmoid's local gradient out * (1 - out) is positive",
                produces=in_torch(lambda dout, out: dout * out * (out - 1))),
    ],
)

TANH_BACKWARD = _from_output_task(
    "tanh_backward", np.tanh, np.arctanh, "arctanh(out)",
    mistakes=[
        Mistake("tanh_s_local_gradient",
                "tanh's local gradient is 1 - out**2: the output must be squared (1 - out is not it)",
                produces=in_torch(lambda dout, out: dout * (1 - out))),
        Mistake("out_already_tanh_s",
                "out is already tanh's output: dx = dout * (1 - out**2); don't apply np.tanh to it again",
                produces=in_torch(lambda dout, out: dout * (1 - out.tanh() ** 2))),
        Mistake("upstream_gradient_missing_chain",
                "the upstream gradient is missing: by the chain rule dx = dout * (1 - out**2)",
                produces=in_torch(lambda dout, out: 1 - out**2)),
    ],
)


# ----------------------------------------------------------------------------- softmax and cross-entropy


EXTREME_LOGITS = np.array([[1000.0, 999.0, -1000.0], [1e4, -1e4, 0.0], [-1e4, -1e4 + 1, -1e4 + 2]])
SOFTMAX_ADVICE = ("subtract each row's own max before exp (logits - logits.max(axis=-1, keepdims=True)): "
                  "then the largest exponent is exp(0) = 1 and nothing overflows")


# Moderate logits: at |z| ~ 1000 a float32 logit is only known to about 1e-4, so a correct formula that
# does not shift first would be off by more than float32's tolerance (the extremes are checked apart).
softmax_calls = any_arrays(zeros=False, styles=MODERATE).map(lambda z: call(z))


def _torch_softmax(z: Any) -> Any:
    return oracles.torch().softmax(z, dim=-1)


def _softmax_with(shift: Callable[[Any], Any], axis: int | None = -1) -> Callable[[np.ndarray], np.ndarray]:
    """exp(z - shift(z)) normalised over ``axis`` (None: the whole batch): a softmax with one mistake, in PyTorch."""
    @in_torch
    def produce(z: Any) -> Any:
        e = (z - shift(z)).exp()
        return e / (e.sum() if axis is None else e.sum(axis, keepdim=True))
    return produce


SOFTMAX = Task(
    "softmax", points=7,
    checks=[
        Worked([(call(np.array([[2.0, 1.0, 0.1]]), note="the handout's z = [2.0, 1.0, 0.1]"),
                 np.array([[0.6590011388859679, 0.24243297070471392, 0.09856589040931818]])),
                (call(np.array([[1000.0, 999.0]]), note="the handout's [1000, 999]"),
                 np.array([[0.7310585786300049, 0.2689414213699951]]))]),
        *parity("torch.softmax(logits, dim=-1)", _torch_softmax, softmax_calls,
                examples=[call(_normal(N, C), note=f"N={N}, C={C}")]),
        _stable(Torch("torch.softmax", _torch_softmax), SOFTMAX_ADVICE, "logits",
                call(EXTREME_LOGITS, note="rows [1000, 999, -1000], [1e4, -1e4, 0], [-1e4, -1e4+1, -1e4+2]")),
    ],
    mistakes=[
        Mistake("exp_overflowed_inf_inf",
                "exp overflowed to inf (and inf / inf = nan): subtract each row's max before exp",
                produces=_softmax_with(lambda z: 0)),
        Mistake("one_max_whole_batch",
                "one max for the whole batch: a row far below it underflows to 0 / 0; subtract the per-row max "
                "(logits.max(axis=-1, keepdims=True))", produces=_softmax_with(lambda z: z.max())),
        Mistake("normalized_over_wrong_axis",
                "normalized over the wrong axis: each row (the last axis) must sum to 1, so sum with axis=-1",
                produces=_softmax_with(lambda z: z.amax(-1, keepdim=True), axis=0)),
        Mistake("whole_batch_sums_1",
                "the whole batch sums to 1: normalize each row on its own, over the last axis (axis=-1, keepdims=True)",
                produces=_softmax_with(lambda z: z.max(), axis=None)),
    ],
)


@st.composite
def cross_entropy_calls(draw: st.DrawFn) -> Call:
    """logits (N, C) and labels y (N,) in [0, C)."""
    n, c = draw(sizes(1, 6)), draw(sizes(2, 6))
    return call(draw(moderate(n, c)), draw(labels(n, c)))


_torch_cross_entropy = _torch_loss("cross_entropy")


def _cross_entropy_with(*, loss_sum: bool = False, grad_sum: bool = False, one_hot: bool = True,
                        column: bool = False, sign: float = 1.0, log_p_by: str = "log_softmax") -> Any:
    """Softmax cross-entropy and its gradient with one mistake, in PyTorch; ``log_p_by`` is how the
    log-probabilities come: "log_softmax", "log(softmax)", or "unshifted" (exp(z) / sum(exp(z)))."""
    @in_torch
    def produce(z: Any, y: Any) -> Any:
        t = oracles.torch()
        n, rows = z.shape[0], t.arange(z.shape[0])
        if log_p_by == "log(softmax)":
            p = t.softmax(z, dim=-1)
            log_p = p.log()
        elif log_p_by == "unshifted":
            total = z.exp().sum(1, keepdim=True)
            p, log_p = z.exp() / total, z - total.log()
        else:
            log_p = t.log_softmax(z, dim=-1)
            p = log_p.exp()
        picked = log_p[:, y] if column else log_p[rows, y]
        loss = -picked.sum() if loss_sum else -picked.mean()
        dz = p.clone()
        if one_hot:
            dz[rows, y] -= 1
        return loss, sign * (dz if grad_sum else dz / n)
    return produce


CROSS_ENTROPY_ADVICE = ("compute log-softmax directly as (z - max) - log(sum(exp(z - max))), with each row's max: "
                        "no exp overflows and no log(0) = -inf appears")

SOFTMAX_CROSS_ENTROPY = Task(
    "softmax_cross_entropy", points=10, returns=("loss", "dlogits"),
    checks=[
        Worked([(call(np.array([[2.0, 1.0, 0.1]]), np.array([0]), note="the handout's z = [2.0, 1.0, 0.1], y = 0"),
                 (0.41703001627783354, np.array([[-0.3409988611140321, 0.24243297070471392, 0.09856589040931818]])))]),
        *parity("torch.nn.functional.cross_entropy and torch.autograd", _torch_cross_entropy, cross_entropy_calls(),
                examples=[call(_normal(N, C), np.array([0, 5, 2, 2, 1]), note=f"N={N}, C={C}")]),
        CentralDifferences("the mean cross-entropy of softmax(logits)", lambda c: {"logits": c.args[0]},
                           lambda c, v: float(in_torch(_torch_cross_entropy)(v["logits"], c.args[1])[0]),
                           lambda c, r: {"logits": r[1]}, cross_entropy_calls(), max_examples=6,
                           aspects=("dlogits",)),
        _stable(Torch("torch.nn.functional.cross_entropy", _torch_cross_entropy), CROSS_ENTROPY_ADVICE, "logits",
                call(EXTREME_LOGITS, np.array([1, 1, 0]),
                     note="rows [1000, 999, -1000], [1e4, -1e4, 0], [-1e4, -1e4+1, -1e4+2]")),
    ],
    mistakes=[
        Mistake("loss_summed_over_batch",
                "the loss is summed over the batch: take the mean over the N examples (and divide dlogits by N)",
                produces=_cross_entropy_with(loss_sum=True, grad_sum=True)),
        Mistake("dlogits_lacks_1_n",
                "dlogits lacks the 1/N of the mean: dlogits = (softmax(logits) - onehot(y)) / N",
                produces=_cross_entropy_with(grad_sum=True)),
        Mistake("subtract_one_hot_target",
                "subtract the one-hot target: dlogits = (softmax(logits) - onehot(y)) / N, so each row sums to 0",
                produces=_cross_entropy_with(one_hot=False)),
        Mistake("p_y_indexes_n",
                "p[:, y] indexes an N x N block (every row at every label): pick one entry per row with "
                "p[np.arange(N), y]", produces=_cross_entropy_with(column=True)),
        Mistake("sign_dlogits_flipped_dl",
                "the sign of dlogits is flipped: dL/dlogits = softmax(logits) - onehot(y)",
                produces=_cross_entropy_with(sign=-1.0)),
        Mistake("log_softmax_gives_log",
                "log(softmax) gives log(0) = -inf once a probability underflows to 0: use log-softmax, computed as "
                "(z - max) - log(sum(exp(z - max)))", produces=_cross_entropy_with(log_p_by="log(softmax)")),
        Mistake("exp_overflowed_inf_inf",
                "exp overflowed (inf / inf = nan): subtract each row's max from the logits before exp",
                produces=_cross_entropy_with(log_p_by="unshifted")),
    ],
)


# ----------------------------------------------------------------------------- a two-layer network

KEYS = ("W1", "b1", "W2", "b2")


@st.composite
def network_calls(draw: st.DrawFn, kinks: bool = True) -> Call:
    """params W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); X (N, D); y (N,). Without ``kinks`` no hidden
    pre-activation is within 1e-3 of 0, where ReLU has no derivative."""
    n, d, h, c = draw(sizes(1, 5)), draw(sizes(1, 4)), draw(sizes(1, 6)), draw(sizes(2, 4))
    values = (lambda *s: float_arrays(s, styles=("normal",))) if not kinks else moderate
    params = {"W1": draw(values(d, h)), "b1": draw(values(h)), "W2": draw(values(h, c)), "b2": draw(values(c))}
    X = draw(values(n, d))
    if not kinks:
        a = X @ params["W1"] + params["b1"]
        params["b1"] = params["b1"] + np.where(np.abs(a).min(axis=0) < 1e-3, 0.01, 0.0)
    return call(params, X, draw(labels(n, c)))


def _torch_two_layer_net(params: dict[str, Any], X: Any, y: Any) -> Any:
    t = oracles.torch()
    F = t.nn.functional
    p = {k: params[k].requires_grad_(True) for k in KEYS}
    loss = F.cross_entropy(F.linear(F.relu(F.linear(X, p["W1"].T, p["b1"])), p["W2"].T, p["b2"]), y)
    return loss, dict(zip(KEYS, t.autograd.grad(loss, [p[k] for k in KEYS])))


def _network_loss(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """The network's mean cross-entropy, by PyTorch (in float64)."""
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return float(in_torch(_torch_two_layer_net)(params, np.asarray(X, dtype=np.float64), y)[0])


def _network_with(*, through_relu: bool = True, dW2_from_a: bool = False, average: bool = True,
                  bias_axis: int = 0, dW1_transposed: bool = False) -> Any:
    @in_torch
    def produce(params: dict[str, Any], X: Any, y: Any) -> Any:
        t = oracles.torch()
        rows = t.arange(X.shape[0])
        a = X @ params["W1"] + params["b1"]
        h = a.clamp(min=0)
        log_p = t.log_softmax(h @ params["W2"] + params["b2"], dim=-1)
        ds = log_p.exp()
        ds[rows, y] -= 1
        if average:
            ds = ds / X.shape[0]
        da = ds @ params["W2"].T * ((a > 0) if through_relu else 1)
        dW1 = X.T @ da
        return -log_p[rows, y].mean(), {"W1": dW1.T if dW1_transposed else dW1, "b1": da.sum(bias_axis),
                                        "W2": (a if dW2_from_a else h).T @ ds, "b2": ds.sum(bias_axis)}
    return produce


HAND_XOR = {"W1": np.array([[1.0, 1.0], [1.0, 1.0]]), "b1": np.array([0.0, -1.0]),
            "W2": np.array([[0.0, 1.0], [0.0, -2.0]]), "b2": np.array([0.0, -0.5])}
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
_S = 1 / (1 + math.exp(0.5)) / 4  # each point's score gap is +-0.5: dL/ds = (sigmoid(-0.5), ...) / 4
HAND_XOR_GRADS = {"W1": np.array([[0.0, -2 * _S], [0.0, -2 * _S]]), "b1": np.array([-_S, -2 * _S]),
                  "W2": np.array([[0.0, 0.0], [-_S, _S]]), "b2": np.array([0.0, 0.0])}

# A correct float32 log-softmax written as scores - logsumexp(scores) knows each log-probability only to
# the spacing of |scores| (about 4e-6 at 33): a probability near 1 then carries that error into dscores,
# and W2 and X multiply it (thorough profile, seed 0: dW1 off by 1.3e-5 at atol 1e-5). 3000 draws of
# network_calls needed at most 1.05 x the default float32 tolerance; this allows ten times its atol. Every
# mistake below is a float64 error too, caught by the float64 comparisons.
NETWORK_FLOAT32 = {"float32": Tolerance(1e-4, 1e-4)}

TWO_LAYER_NET = Task(
    "two_layer_net", points=13, returns=("loss", "grads"),
    checks=[
        Worked([(call(HAND_XOR, XOR_X, XOR_Y, note="the handout's XOR network built by hand (section 9); hidden "
                      "unit 2's pre-activation is exactly 0 at (0, 1) and (1, 0)"),
                 (math.log(1 + math.exp(-0.5)), HAND_XOR_GRADS))]),
        *parity("torch.autograd through cross_entropy(linear(relu(linear(X, W1.T, b1)), W2.T, b2), y)",
                _torch_two_layer_net, network_calls(),
                examples=[call({"W1": _normal(D, H), "b1": _normal(H), "W2": _normal(H, C), "b2": _normal(C)},
                               _normal(N, D), np.array([0, 5, 2, 2, 1]), note=f"N={N}, D={D}, H={H}, C={C}")],
                tolerance=NETWORK_FLOAT32),
        CentralDifferences("the network's loss", lambda c: dict(c.args[0]),
                           lambda c, v: _network_loss(v, c.args[1], c.args[2]),
                           lambda c, r: r[1], network_calls(kinks=False), max_examples=6, aspects=("grads",)),
    ],
    mistakes=[
        Mistake("dw1_db1_skip_relu",
                "dW1 and db1 skip the ReLU: the gradient must pass through the ReLU's backward (zero where the "
                "pre-activation a = X @ W1 + b1 is <= 0) before it reaches W1 and b1",
                produces=_network_with(through_relu=False)),
        Mistake("dw2_uses_pre_activation",
                "dW2 uses the pre-activation a: the second layer's input is the ReLU output h = relu(a), so "
                "dW2 = h.T @ dscores", produces=_network_with(dW2_from_a=True)),
        Mistake("every_gradient_n_times",
                "every gradient is N times too large: the loss is a mean over the batch, so dscores carries a 1/N",
                produces=_network_with(average=False)),
        Mistake("db1_db2_sum_over",
                "db1 and db2 sum over the wrong axis: sum over the batch axis 0, one entry per unit",
                produces=_network_with(bias_axis=1)),
        Mistake("dw1_transposed_dw1_x",
                "dW1 is transposed: dW1 = X.T @ da has W1's shape (D, H)", produces=_network_with(dW1_transposed=True)),
    ],
)


# ----------------------------------------------------------------------------- training on XOR

XOR_SHAPES = {"W1": (2, 8), "b1": (8,), "W2": (8, 2), "b2": (2,)}
SYMMETRY = ("every hidden unit is the same (all columns of W1 are equal): zero or constant initialization keeps "
            "the units identical forever (symmetry); draw the initial W1 and W2 at random from "
            "np.random.default_rng(seed)")
ASCENT = ("the loss went up, not down: is it gradient ascent (params + lr * grad)? Subtract the gradient: "
          "p = p - lr * dL/dp")
NOT_DETERMINISTIC = ("train_xor is not deterministic: the same seed must give the same parameters; draw every "
                     "random number from rng = np.random.default_rng(seed), not np.random.randn or np.random.rand")
GLOBAL_RNG = ("train_xor changed NumPy's global random state (np.random.seed, np.random.randn, np.random.rand, ...); "
              "the contract: its randomness comes only from its own rng = np.random.default_rng(seed), and the "
              "global state is left untouched (other code relies on it)")
SEED_IGNORED = "the seed argument is ignored: build the generator from it, rng = np.random.default_rng(seed)"
QUICK = 20  # steps for the checks of determinism and of the seed: the initialization is what they test


def _trained(ctx: Context, call_: Call) -> dict[str, np.ndarray]:
    """The student's parameters for ``call_``, checked for keys, shapes and finiteness."""
    params = ctx.student(call_)
    where = f"  input: {ctx.describe(call_)}"
    if not isinstance(params, dict) or set(params) != set(XOR_SHAPES):
        keys = sorted(params) if isinstance(params, dict) else None
        raise CheckFailed(f"train_xor should return a dict with keys W1, b1, W2, b2, received "
                          f"{f'a dict with keys {keys}' if keys is not None else kind_of(params)}\n{where}")
    for key, shape in XOR_SHAPES.items():
        value = params[key]
        if type(value) is not np.ndarray or value.shape != shape:
            raise CheckFailed(f"params['{key}'] should be an array of shape {shape}, received {kind_of(value)}\n{where}")
        if not np.isfinite(value).all():
            raise CheckFailed(f"params['{key}'] has NaN or infinite entries: training diverged\n{where}\n  hint: {ASCENT}")
    return params


def _classifies_xor(ctx: Context, call_: Call) -> None:
    params = _trained(ctx, call_)
    scores = np.maximum(XOR_X @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]
    predicted = scores.argmax(axis=1)
    if (predicted != XOR_Y).any():
        hints = [m.hint for m in ctx.task.mistakes if m.detects is not None and m.detects(call_, None, params)]
        problem = (f"the trained network classifies the XOR points {XOR_X.tolist()} as {predicted.tolist()}, "
                   f"expected {XOR_Y.tolist()}\n  scores relu(X @ W1 + b1) @ W2 + b2 = {np.round(scores, 4).tolist()}"
                   f"\n  final loss: {_network_loss(params, XOR_X, XOR_Y):.6g} (ln 2 = 0.693 is the loss of a network "
                   "that has learned nothing)")
        raise ctx.fail(call_, problem, "classifying the four XOR points with the returned params (argmax of the scores)",
                       hints=hints)


def _differing(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> list[str]:
    return [k for k in XOR_SHAPES if not np.array_equal(first[k], second[k])]


def _deterministic(ctx: Context, call_: Call) -> None:
    if differ := _differing(_trained(ctx, call_), _trained(ctx, call_)):
        raise CheckFailed(f"two calls with the same seed returned different parameters ({', '.join(differ)} differ)\n"
                          f"  input: {ctx.describe(call_)}, twice\n  hint: {NOT_DETERMINISTIC}")


def _leaves_global_rng(ctx: Context, call_: Call) -> None:
    _trained(ctx, call_)
    if ctx.global_rng:
        raise CheckFailed(f"NumPy's global random state changed during the call\n  input: {ctx.describe(call_)}\n"
                          f"  expected from the contract (CURRICULUM.md: a default_rng(seed) of its own)\n"
                          f"  hint: {GLOBAL_RNG}")


def _uses_seed(ctx: Context, call_: Call) -> None:
    other = call_.with_args((), {**call_.kwargs, "seed": 1})
    if not _differing(_trained(ctx, call_), _trained(ctx, other)):
        raise CheckFailed(f"seed=0 and seed=1 returned exactly the same parameters\n"
                          f"  input: {ctx.describe(call_)} and {ctx.describe(other)}\n  hint: {SEED_IGNORED}")


TRAIN_XOR = Task(
    "train_xor", points=11, timeout=5.0,
    checks=[
        Property("after train_xor() (seed 0) the network classifies all four XOR points",
                 _classifies_xor, examples=[call(note="the defaults: hidden=8, lr=0.5, steps=2000, seed=0")]),
        Property("the same seed gives the same parameters", _deterministic, examples=[call(steps=QUICK, seed=0)],
                 gate=True),
        Property("another seed gives other parameters", _uses_seed, examples=[call(steps=QUICK, seed=0)], gate=True),
        Property("leaves NumPy's global random state untouched", _leaves_global_rng,
                 examples=[call(steps=QUICK, seed=0)], gate=True),
    ],
    mistakes=[
        Mistake("every_hidden_unit_same", SYMMETRY,
                detects=lambda c, e, params: bool(np.allclose(params["W1"], params["W1"][:, :1]))),
        Mistake("loss_went_up_down", ASCENT,  # a NaN loss counts as up
                detects=lambda c, e, params: not _network_loss(params, XOR_X, XOR_Y) <= math.log(2) + 1e-9),
        Mistake("train_xor_deterministic_same", NOT_DETERMINISTIC),
        Mistake("global_rng", GLOBAL_RNG),
        Mistake("seed_argument_ignored_build", SEED_IGNORED),
    ],
)

LAB = Lab(
    name="lab1",
    title="Backpropagation",
    module="backprop",
    kind="numpy",
    banned_source=("torch",),
    tasks=[PREDICT, MSE_LOSS, GRADIENT_DESCENT_STEP, SIGMOID_NEURON, LINEAR_FORWARD, LINEAR_BACKWARD, RELU_FORWARD,
           RELU_BACKWARD, SIGMOID_FORWARD, SIGMOID_BACKWARD, TANH_BACKWARD, SOFTMAX, SOFTMAX_CROSS_ENTROPY,
           TWO_LAYER_NET, TRAIN_XOR],
)
