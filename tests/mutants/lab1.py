"""Lab 1 (backprop): known student mistakes and correct alternatives.

Each function is what a student would paste into ``lab1/backprop.py`` under the
task's name. ``@mistake`` ones must lose points with a failure message that
contains ``expect``; ``@alternative`` ones must keep full marks. The bodies use
only ``np`` (the reference module's one import), so each is self-contained: a
mutant never calls another lab function.
"""

from __future__ import annotations

import numpy as np

from tests.mutants import alternative, mistake

# ------------------------------------------------------------ predict


@mistake("predict", expect="predict.f_bias_b_missing")
def predict_missing_bias(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    # mistake: H(X) = XW, the lecture's TensorFlow slide without "+ b"
    return X @ W


@mistake("predict", expect="generic.dtype_changed")
def predict_loops_float64_buffer(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    N, M = X.shape[0], W.shape[1]
    out = np.zeros((N, M))  # mistake: np.zeros defaults to float64, so float32 inputs come back as float64
    for n in range(N):
        for m in range(M):
            out[n, m] = np.dot(X[n], W[:, m]) + b[m]
    return out


@alternative("predict")
def predict_einsum(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("nd,dm->nm", X, W) + b


@alternative("predict")
def predict_column_loop(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    # one output column at a time, buffer in the inputs' dtype
    out = np.empty((X.shape[0], W.shape[1]), dtype=np.result_type(X, W, b))
    for m in range(W.shape[1]):
        out[:, m] = X @ W[:, m] + b[m]
    return out


# ------------------------------------------------------------ mse_loss


@mistake("mse_loss", expect="mse_loss.dpred_missing_factor_2")
def mse_loss_missing_factor_two(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    diff = pred - y
    loss = np.mean(diff**2)
    dpred = diff / diff.size  # mistake: the factor 2 of the square is missing
    return loss, dpred


@mistake("mse_loss", expect="mse_loss.dpred_lacks_1_n")
def mse_loss_gradient_not_divided_by_n(
    pred: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    diff = pred - y
    loss = np.mean(diff**2)
    dpred = 2 * diff  # mistake: not divided by diff.size (the 1/N of the mean)
    return loss, dpred


@mistake("mse_loss", expect="mse_loss.loss_sum_instead_mean")
def mse_loss_summed_not_averaged(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    diff = pred - y
    loss = np.sum(diff**2)  # mistake: a sum, not a mean
    dpred = 2 * diff  # mistake: not divided by diff.size either
    return loss, dpred


@mistake("mse_loss", expect="mse_loss.divided_number_rows_n")
def mse_loss_divides_by_rows(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    # mistake: N = number of examples, but the mean runs over all N*M entries
    N = pred.shape[0]
    diff = pred - y
    loss = np.sum(diff**2) / N
    dpred = 2 * diff / N
    return loss, dpred


@mistake("mse_loss", expect="mse_loss.sign_dpred_flipped_d")
def mse_loss_gradient_sign_flipped(
    pred: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    # mistake: d/dpred (y - pred)**2 without the inner derivative -1
    diff = y - pred
    loss = np.mean(diff**2)
    dpred = 2 * diff / diff.size
    return loss, dpred


@mistake("mse_loss", expect="mse_loss.loss_dpred_half_expected")
def mse_loss_half_convention(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    diff = pred - y
    # mistake: the textbook 1/2 * mean(...) so that the 2 cancels; PyTorch's MSELoss has no 1/2
    loss = 0.5 * np.mean(diff**2)
    dpred = diff / diff.size
    return loss, dpred


@alternative("mse_loss")
def mse_loss_vdot(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    diff = pred - y
    n = diff.size
    loss = np.vdot(diff, diff) / n
    return loss, 2 * diff / n


# ------------------------------------------------------------ gradient_descent_step


@mistake("gradient_descent_step", expect="gradient_descent_step.gradient_ascent_step_adds")
def gradient_descent_step_adds_gradient(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    dpred = 2 * (X @ W + b - y) / y.size
    dW = X.T @ dpred
    db = dpred.sum(axis=0)
    return W + lr * dW, b + lr * db  # mistake: adds the gradient (ascent); subtract it


@mistake("gradient_descent_step", expect="gradient_descent_step.bias_updated_b_new")
def gradient_descent_step_forgets_bias(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    dpred = 2 * (X @ W + b - y) / y.size
    dW = X.T @ dpred
    return W - lr * dW, b  # mistake: b comes back unchanged: its update is missing


@mistake("gradient_descent_step", expect="gradient_descent_step.dw_x_t_dpred")
def gradient_descent_step_reshape_not_transpose(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    dpred = 2 * (X @ W + b - y) / y.size
    # mistake: dpred.T @ X is (M, D); reshape "fixes" the shape but scrambles the entries when M > 1
    dW = (dpred.T @ X).reshape(W.shape)
    db = dpred.sum(axis=0)
    return W - lr * dW, b - lr * db


@mistake("gradient_descent_step", expect="gradient_descent_step.step_half_expected_one")
def gradient_descent_step_missing_factor_two(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    err = X @ W + b - y
    dW = X.T @ err / y.size  # mistake: the factor 2 of the square is missing
    db = err.sum(axis=0) / y.size  # mistake: the factor 2 is missing here too
    return W - lr * dW, b - lr * db


@mistake("gradient_descent_step", expect="gradient_descent_step.bias_step_n_times")
def gradient_descent_step_averages_db(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    dpred = 2 * (X @ W + b - y) / y.size
    dW = X.T @ dpred
    db = dpred.mean(axis=0)  # mistake: dpred already carries the 1/N; the mean divides by N a second time
    return W - lr * dW, b - lr * db


@mistake("gradient_descent_step", expect="gradient_descent_step.b_s_gradient_taken")
def gradient_descent_step_b_from_new_W(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    dpred = 2 * (X @ W + b - y) / y.size
    W = W - lr * (X.T @ dpred)
    dpred = 2 * (X @ W + b - y) / y.size  # mistake: W is updated first, then b's gradient is taken at the new W
    b = b - lr * dpred.sum(axis=0)
    return W, b


@alternative("gradient_descent_step")
def gradient_descent_step_augmented(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    # fold the bias into the weights: [X 1] @ [W; b]
    Xa = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    Wa = np.vstack([W, b[None, :]])
    grad = Xa.T @ (2 * (Xa @ Wa - y) / y.size)
    Wa = Wa - lr * grad
    return Wa[:-1], Wa[-1]


@alternative("gradient_descent_step")
def gradient_descent_step_einsum(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    err = np.einsum("nd,dm->nm", X, W) + b - y
    scale = 2 / err.size
    dW = scale * np.einsum("nd,nm->dm", X, err)
    db = scale * np.einsum("nm->m", err)
    return W - lr * dW, b - lr * db


# ------------------------------------------------------------ sigmoid_neuron


@mistake("sigmoid_neuron", expect="sigmoid_neuron.bias_last_entry_w")
def sigmoid_neuron_bias_first(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    # mistake: takes w[0] as the bias (a common textbook convention), but here the bias is w[D]
    z = w[0] + np.dot(w[1:], x)
    f = 1 / (1 + np.exp(-z))
    s = f * (1 - f)
    dw = s * np.concatenate([np.ones(1, dtype=x.dtype), x])
    dx = s * w[1:]
    return f, dw, dx


@mistake("sigmoid_neuron", expect="sigmoid_neuron.bias_s_input_constant")
def sigmoid_neuron_bias_as_weight_on_x(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    # mistake: pads x to the length of w by repeating it, so the bias multiplies x[0] instead of 1
    xs = np.resize(x, w.shape)
    z = np.dot(w, xs)
    f = 1 / (1 + np.exp(-z))
    s = f * (1 - f)
    dw = s * xs
    dx = s * w[:-1]
    return f, dw, dx


@mistake("sigmoid_neuron", expect="sigmoid_neuron.sigmoid_s_local_gradient")
def sigmoid_neuron_local_gradient_from_z(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    z = np.dot(w[:-1], x) + w[-1]
    f = 1 / (1 + np.exp(-z))
    s = z * (1 - z)  # mistake: sigma'(z) written as z * (1 - z): the formula needs the sigmoid's output f
    dw = s * np.append(x, np.ones(1, dtype=x.dtype))
    dx = s * w[:-1]
    return f, dw, dx


@mistake("sigmoid_neuron", expect="sigmoid_neuron.multiply_gate_swaps_inputs")
def sigmoid_neuron_multiply_gate_not_swapped(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    z = np.dot(w[:-1], x) + w[-1]
    f = 1 / (1 + np.exp(-z))
    s = f * (1 - f)
    dw = s * np.append(x, np.ones(1, dtype=x.dtype))
    dx = s * x  # mistake: the multiply gate routes w to dx and x to dw; here dx gets x
    return f, dw, dx


@mistake("sigmoid_neuron", expect="sigmoid_neuron.missing_sigmoid_s_local")
def sigmoid_neuron_no_sigmoid_gradient(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    z = np.dot(w[:-1], x) + w[-1]
    f = 1 / (1 + np.exp(-z))
    # mistake: gradients of z = w.x + b, not of f = sigmoid(z)
    dw = np.append(x, np.ones(1, dtype=x.dtype))
    dx = w[:-1].copy()
    return f, dw, dx


@alternative("sigmoid_neuron")
def sigmoid_neuron_staged_graph(
    w: np.ndarray, x: np.ndarray
) -> tuple[np.floating, np.ndarray, np.ndarray]:
    # the lecture's graph node by node: *, +, *-1, exp, +1, 1/x
    D = x.shape[0]
    products = w[:D] * x
    z = products.sum() + w[D]
    neg = -z
    e = np.exp(neg)
    den = 1 + e
    f = 1 / den
    # backward, one node at a time, starting from df/df = 1
    dden = -1 / den**2
    de = dden * 1
    dneg = de * e
    dz = dneg * -1
    dw = np.empty_like(w)
    dw[:D] = dz * x
    dw[D] = dz
    dx = dz * w[:D]
    return f, dw, dx


# ------------------------------------------------------------ linear_forward


@mistake("linear_forward", expect="linear_forward.f_bias_b_missing")
def linear_forward_missing_bias(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.dot(x, W)  # mistake: the bias b is never added


@mistake("linear_forward", expect="generic.dtype_changed")
def linear_forward_loops_float64_buffer(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    N, D = x.shape
    M = W.shape[1]
    out = np.zeros((N, M))  # mistake: np.zeros defaults to float64, so float32 inputs come back as float64
    for n in range(N):
        for m in range(M):
            total = b[m]
            for d in range(D):
                total += x[n, d] * W[d, m]
            out[n, m] = total
    return out


@alternative("linear_forward")
def linear_forward_einsum(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("nd,dm->nm", x, W) + b


@alternative("linear_forward")
def linear_forward_row_loop(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([row @ W + b for row in x])


# ------------------------------------------------------------ linear_backward


@mistake("linear_backward", expect="linear_backward.db_sums_dout_over")
def linear_backward_db_wrong_axis(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx = dout @ W.T
    dW = x.T @ dout
    db = np.sum(dout, axis=1)  # mistake: axis=1 sums over the outputs, not over the batch (axis=0)
    return dx, dW, db


@mistake("linear_backward", expect="linear_backward.dw_transposed_dw_x")
def linear_backward_dW_transposed(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx = dout @ W.T
    dW = dout.T @ x  # mistake: dout.T @ x is dW transposed (M, D); must be x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


@mistake("linear_backward", expect="linear_backward.dw_db_divided_batch")
def linear_backward_averages_over_batch(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # mistake: the loss already averaged over the batch; dividing again shrinks dW and db by N
    N = x.shape[0]
    dx = dout @ W.T
    dW = x.T @ dout / N
    db = dout.mean(axis=0)
    return dx, dW, db


@mistake("linear_backward", expect="linear_backward.gradients_come_back_wrong")
def linear_backward_returns_dW_first(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dW = x.T @ dout
    dx = dout @ W.T
    db = dout.sum(axis=0)
    return dW, dx, db  # mistake: wrong order: return (dx, dW, db)


@alternative("linear_backward")
def linear_backward_einsum(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx = np.einsum("nm,dm->nd", dout, W)
    dW = np.einsum("nd,nm->dm", x, dout)
    db = np.einsum("nm->m", dout)
    return dx, dW, db


@alternative("linear_backward")
def linear_backward_per_example(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # every example adds its own outer product to dW and its dout row to db
    dx = np.empty_like(x)
    dW = np.zeros_like(W)
    db = np.zeros(W.shape[1], dtype=dout.dtype)
    for n in range(x.shape[0]):
        dx[n] = W @ dout[n]
        dW += np.outer(x[n], dout[n])
        db += dout[n]
    return dx, dW, db


# ------------------------------------------------------------ relu_forward


@mistake("relu_forward", expect="check:leaves its arguments unchanged")
def relu_forward_in_place(x: np.ndarray) -> np.ndarray:
    x[x < 0] = 0  # mistake: writes into the caller's x (modifies the argument in place)
    return x


@mistake("relu_forward", expect="generic.dtype_changed")
def relu_forward_float64_zeros(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.zeros(x.shape))  # mistake: np.zeros is float64, so float32 x comes back as float64


@mistake("relu_forward", expect="relu_forward.np_max_x_0")
def relu_forward_np_max(x: np.ndarray) -> np.ndarray:
    # mistake: np.max(x, 0) is the largest entry along axis 0, not the elementwise max with 0
    return np.max(x, 0)


@alternative("relu_forward")
def relu_forward_mask_multiply(x: np.ndarray) -> np.ndarray:
    return x * (x > 0)


@alternative("relu_forward")
def relu_forward_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, None)


# ------------------------------------------------------------ relu_backward


@mistake("relu_backward", expect="relu_backward.relu_s_gradient_0")
def relu_backward_gradient_one_at_zero(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dout * (x >= 0)  # mistake: x >= 0 passes the gradient at x == 0; mask with x > 0


@mistake("relu_backward", expect="relu_backward.upstream_gradient_missing_chain")
def relu_backward_forgets_upstream(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    # mistake: the local gradient alone: the chain rule's multiplication by dout is missing
    return (x > 0).astype(dout.dtype)


@mistake("relu_backward", expect="check:leaves its arguments unchanged")
def relu_backward_in_place(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = dout  # mistake: an alias, not a copy: the next line zeroes the caller's dout
    dx[x <= 0] = 0
    return dx


@alternative("relu_backward")
def relu_backward_mask_multiply(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dout * (x > 0)


@alternative("relu_backward")
def relu_backward_copy_and_zero(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


# ------------------------------------------------------------ sigmoid_forward


@mistake("sigmoid_forward", expect="sigmoid_forward.exp_overflowed_exp_large")
def sigmoid_forward_naive(x: np.ndarray) -> np.ndarray:
    # mistake: exp(-x) overflows (with a RuntimeWarning) for x below about -709 (float64) or -88 (float32)
    return 1 / (1 + np.exp(-x))


@mistake("sigmoid_forward", expect="sigmoid_forward.exp_overflowed_exp_large")
def sigmoid_forward_exp_ratio(x: np.ndarray) -> np.ndarray:
    # mistake: inf / inf = nan for large positive x
    e = np.exp(x)
    return e / (1 + e)


@mistake("sigmoid_forward", expect="sigmoid_forward.exp_overflowed_exp_large")
def sigmoid_forward_clipped_at_500(x: np.ndarray) -> np.ndarray:
    # mistake: the clip protects float64, but exp(500) still overflows float32
    return 1 / (1 + np.exp(-np.clip(x, -500, 500)))


@mistake("sigmoid_forward", expect="sigmoid_forward.sigmoid_x_sign_x")
def sigmoid_forward_sign_flipped(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, e / (1 + e), 1 / (1 + e))  # mistake: the two branches are swapped: this is sigmoid(-x)


@alternative("sigmoid_forward")
def sigmoid_forward_masked(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


@alternative("sigmoid_forward")
def sigmoid_forward_tanh(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) = (1 + tanh(x / 2)) / 2, and tanh never overflows
    return 0.5 * (1 + np.tanh(0.5 * x))


@alternative("sigmoid_forward")
def sigmoid_forward_logaddexp(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) = exp(-log(1 + exp(-x)))
    return np.exp(-np.logaddexp(0, -x))


# ------------------------------------------------------------ sigmoid_backward


@mistake("sigmoid_backward", expect="sigmoid_backward.out_already_sigmoid_s")
def sigmoid_backward_treats_out_as_x(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    # mistake: applies the sigmoid again: out already is sigmoid(x)
    s = 1 / (1 + np.exp(-out))
    return dout * s * (1 - s)


@mistake("sigmoid_backward", expect="sigmoid_backward.upstream_gradient_missing_chain")
def sigmoid_backward_forgets_upstream(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return out * (1 - out)  # mistake: dout is never multiplied in (the chain rule)


@mistake("sigmoid_backward", expect="sigmoid_backward.sign_flipped_sigmoid_s")
def sigmoid_backward_sign_flipped(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * out * (out - 1)  # mistake: out - 1 flips the sign: out * (1 - out)


@alternative("sigmoid_backward")
def sigmoid_backward_expanded(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * (out - out * out)


# ------------------------------------------------------------ tanh_backward


@mistake("tanh_backward", expect="tanh_backward.tanh_s_local_gradient")
def tanh_backward_one_minus_out(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * (1 - out)  # mistake: out is not squared: 1 - out**2


@mistake("tanh_backward", expect="tanh_backward.out_already_tanh_s")
def tanh_backward_treats_out_as_x(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    # mistake: 1 - tanh(x)**2 with x := out: the tanh is applied twice
    return dout * (1 - np.tanh(out) ** 2)


@mistake("tanh_backward", expect="tanh_backward.upstream_gradient_missing_chain")
def tanh_backward_forgets_upstream(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return 1 - out**2  # mistake: dout is never multiplied in (the chain rule)


@alternative("tanh_backward")
def tanh_backward_factored(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 1 - t^2 = (1 - t)(1 + t)
    return dout * (1 - out) * (1 + out)


# ------------------------------------------------------------ softmax


@mistake("softmax", expect="softmax.exp_overflowed_inf_inf")
def softmax_no_max_subtraction(logits: np.ndarray) -> np.ndarray:
    # mistake: exp(1000) = inf, and inf / inf = nan
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


@mistake("softmax", expect="softmax.normalized_over_wrong_axis")
def softmax_wrong_axis(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)  # mistake: sums over axis 0 (the batch), not over the last axis


@mistake("softmax", expect="softmax.whole_batch_sums_1")
def softmax_normalizes_whole_batch(logits: np.ndarray) -> np.ndarray:
    # mistake: max and sum over the whole batch, not per row (axis=-1, keepdims=True)
    e = np.exp(logits - logits.max())
    return e / e.sum()


@mistake("softmax", expect="softmax.one_max_whole_batch")
def softmax_global_max(logits: np.ndarray) -> np.ndarray:
    # mistake: one max for the whole batch: a row far below it underflows to 0 / 0
    e = np.exp(logits - np.max(logits))
    return e / e.sum(axis=-1, keepdims=True)


@alternative("softmax")
def softmax_exp_of_log_softmax(logits: np.ndarray) -> np.ndarray:
    # p = exp(log p), with log p = (z - max) - log(sum(exp(z - max)))
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return np.exp(log_p)


@alternative("softmax")
def softmax_row_loop(logits: np.ndarray) -> np.ndarray:
    rows = logits.reshape(-1, logits.shape[-1])
    out = np.empty_like(rows)
    for i, row in enumerate(rows):
        e = np.exp(row - row.max())
        out[i] = e / e.sum()
    return out.reshape(logits.shape)


# ------------------------------------------------------------ softmax_cross_entropy


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.loss_summed_over_batch")
def softmax_cross_entropy_summed(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.sum(np.log(p[np.arange(N), y]))  # mistake: summed over the batch, not averaged
    dlogits = p.copy()
    dlogits[np.arange(N), y] -= 1
    # mistake: dlogits is never divided by N
    return loss, dlogits


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.dlogits_lacks_1_n")
def softmax_cross_entropy_gradient_not_averaged(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), y] -= 1
    # mistake: dlogits is never divided by N
    return loss, dlogits


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.subtract_one_hot_target")
def softmax_cross_entropy_forgets_one_hot(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dlogits = np.exp(log_p) / N
    # mistake: the one-hot target is never subtracted
    return loss, dlogits


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.p_y_indexes_n")
def softmax_cross_entropy_label_column_indexing(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[:, y].mean()  # mistake: p[:, y] is an N x N block (every row at every label), not one entry per row
    onehot = np.eye(logits.shape[1], dtype=logits.dtype)[y]
    dlogits = (np.exp(log_p) - onehot) / N
    return loss, dlogits


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.log_softmax_gives_log")
def softmax_cross_entropy_log_of_softmax(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    # mistake: log(p) after the softmax: a probability that underflowed to 0 gives log(0) = -inf
    loss = -np.mean(np.log(p[np.arange(N), y]))
    dlogits = p.copy()
    dlogits[np.arange(N), y] -= 1
    return loss, dlogits / N


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.exp_overflowed_inf_inf")
def softmax_cross_entropy_no_max_subtraction(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    e = np.exp(logits)  # mistake: no max subtracted: exp overflows to inf for large logits
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - logits[np.arange(N), y])
    dlogits = e / total
    dlogits[np.arange(N), y] -= 1
    return loss, dlogits / N


@mistake("softmax_cross_entropy", expect="softmax_cross_entropy.sign_dlogits_flipped_dl")
def softmax_cross_entropy_gradient_sign_flipped(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    onehot = np.eye(logits.shape[1], dtype=logits.dtype)[y]
    return loss, (onehot - np.exp(log_p)) / N  # mistake: sign flipped: must be (softmax - onehot) / N


@alternative("softmax_cross_entropy")
def softmax_cross_entropy_one_hot_matrix(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N, C = logits.shape
    onehot = np.eye(C, dtype=logits.dtype)[y]
    m = logits.max(axis=1, keepdims=True)
    log_p = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    loss = -(onehot * log_p).sum() / N
    return loss, (np.exp(log_p) - onehot) / N


@alternative("softmax_cross_entropy")
def softmax_cross_entropy_per_example(
    logits: np.ndarray, y: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    N = logits.shape[0]
    total = np.zeros((), dtype=logits.dtype)
    dlogits = np.empty_like(logits)
    for i in range(N):
        z = logits[i] - logits[i].max()
        lse = np.log(np.exp(z).sum())
        total = total + (lse - z[y[i]])
        dlogits[i] = np.exp(z - lse)
        dlogits[i, y[i]] -= 1
    return total / N, dlogits / N


# ------------------------------------------------------------ two_layer_net


@mistake("two_layer_net", expect="two_layer_net.dw1_db1_skip_relu")
def two_layer_net_forgets_relu_backward(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    h = np.maximum(X @ W1 + b1, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dh = dscores @ W2.T
    # mistake: the ReLU's backward is missing: dh[h <= 0] = 0
    grads = {"W1": X.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ dscores, "b2": dscores.sum(axis=0)}
    return loss, grads


@mistake("two_layer_net", expect="two_layer_net.dw2_uses_pre_activation")
def two_layer_net_dW2_from_preactivation(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW2 = a.T @ dscores  # mistake: should be h.T @ dscores
    da = (dscores @ W2.T) * (a > 0)
    grads = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": dW2, "b2": dscores.sum(axis=0)}
    return loss, grads


@mistake("two_layer_net", expect="two_layer_net.every_gradient_n_times")
def two_layer_net_gradients_not_averaged(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(N), y] -= 1
    # mistake: dscores is never divided by N (the loss is a mean)
    da = (dscores @ W2.T) * (a > 0)
    grads = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ dscores, "b2": dscores.sum(axis=0)}
    return loss, grads


@mistake("two_layer_net", expect="two_layer_net.db1_db2_sum_over")
def two_layer_net_bias_gradients_wrong_axis(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    da = (dscores @ W2.T) * (a > 0)
    # mistake: db1 and db2 sum over axis=1, not over the batch axis 0
    grads = {"W1": X.T @ da, "b1": da.sum(axis=1), "W2": h.T @ dscores, "b2": dscores.sum(axis=1)}
    return loss, grads


@mistake("two_layer_net", expect="two_layer_net.dw1_transposed_dw1_x")
def two_layer_net_dW1_transposed(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    da = (dscores @ W2.T) * (a > 0)
    # mistake: da.T @ X is dW1 transposed (H, D); must be X.T @ da
    grads = {"W1": da.T @ X, "b1": da.sum(axis=0), "W2": h.T @ dscores, "b2": dscores.sum(axis=0)}
    return loss, grads


@alternative("two_layer_net")
def two_layer_net_mask_from_hidden_output(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    # h > 0 exactly where the pre-activation is > 0, so either can mask the gradient
    N = X.shape[0]
    rows = np.arange(N)
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    scores = h @ params["W2"] + params["b2"]
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    lse = np.log(e.sum(axis=1))
    loss = np.mean(lse - (scores[rows, y] - scores.max(axis=1)))
    dscores = p.copy()
    dscores[rows, y] -= 1
    dscores /= N
    dh = dscores @ params["W2"].T
    dh[h <= 0] = 0
    grads = {
        "W1": X.T @ dh,
        "b1": dh.sum(axis=0),
        "W2": h.T @ dscores,
        "b2": dscores.sum(axis=0),
    }
    return loss, grads


@alternative("two_layer_net")
def two_layer_net_einsum(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N, C = X.shape[0], W2.shape[1]
    a = np.einsum("nd,dh->nh", X, W1) + b1
    h = np.where(a > 0, a, 0)
    scores = np.einsum("nh,hc->nc", h, W2) + b2
    log_p = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    onehot = np.eye(C, dtype=scores.dtype)[y]
    loss = -np.einsum("nc,nc->", onehot, log_p) / N
    dscores = (np.exp(log_p) - onehot) / N
    da = np.einsum("nc,hc->nh", dscores, W2) * (a > 0)
    grads = {
        "W1": np.einsum("nd,nh->dh", X, da),
        "b1": np.einsum("nh->h", da),
        "W2": np.einsum("nh,nc->hc", h, dscores),
        "b2": np.einsum("nc->c", dscores),
    }
    return loss, grads


# ------------------------------------------------------------ train_xor


@mistake("train_xor", expect="train_xor.every_hidden_unit_same")
def train_xor_zero_init(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    # mistake: all-zero weights: every hidden unit computes the same thing and gets the same
    # gradient (here none at all, since relu'(0) = 0), so the network never leaves the start
    p = {
        "W1": np.zeros((2, hidden)),
        "b1": np.zeros(hidden),
        "W2": np.zeros((hidden, 2)),
        "b2": np.zeros(2),
    }
    for _ in range(steps):
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ p["W2"].T) * (a > 0)
        g = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
        p = {k: p[k] - lr * g[k] for k in p}
    return p


@mistake("train_xor", expect="train_xor.loss_went_up_down")
def train_xor_gradient_ascent(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    rng = np.random.default_rng(seed)
    p = {
        "W1": rng.standard_normal((2, hidden)),
        "b1": np.full(hidden, 0.5),
        "W2": rng.standard_normal((hidden, 2)) * np.sqrt(2 / hidden),
        "b2": np.zeros(2),
    }
    for _ in range(steps):
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ p["W2"].T) * (a > 0)
        g = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
        p = {k: p[k] + lr * g[k] for k in p}  # mistake: + climbs the loss (gradient ascent); subtract
    return p


@mistake("train_xor", expect="train_xor.train_xor_deterministic_same")
def train_xor_global_random_state(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    p = {
        # mistake: np.random.randn ignores `seed`: two calls give two different networks
        "W1": np.random.randn(2, hidden),
        "b1": np.full(hidden, 0.5),
        "W2": np.random.randn(hidden, 2) * np.sqrt(2 / hidden),
        "b2": np.zeros(2),
    }
    for _ in range(steps):
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ p["W2"].T) * (a > 0)
        g = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
        p = {k: p[k] - lr * g[k] for k in p}
    return p


@mistake("train_xor", expect="train_xor.global_rng")
def train_xor_seeds_the_global_generator(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    # mistake: deterministic and seed-dependent, but via NumPy's global state: np.random.seed resets everyone's draws
    np.random.seed(seed)
    p = {
        "W1": np.random.randn(2, hidden),
        "b1": np.full(hidden, 0.5),
        "W2": np.random.randn(hidden, 2) * np.sqrt(2 / hidden),
        "b2": np.zeros(2),
    }
    for _ in range(steps):
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ p["W2"].T) * (a > 0)
        g = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
        p = {k: p[k] - lr * g[k] for k in p}
    return p


@mistake("train_xor", expect="train_xor.seed_argument_ignored_build")
def train_xor_ignores_seed(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    rng = np.random.default_rng(42)  # mistake: a fixed generator: deterministic, but every seed gives the same network
    p = {
        "W1": rng.standard_normal((2, hidden)),
        "b1": np.full(hidden, 0.5),
        "W2": rng.standard_normal((hidden, 2)) * np.sqrt(2 / hidden),
        "b2": np.zeros(2),
    }
    for _ in range(steps):
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ p["W2"].T) * (a > 0)
        g = {"W1": X.T @ da, "b1": da.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
        p = {k: p[k] - lr * g[k] for k in p}
    return p


@alternative("train_xor")
def train_xor_uniform_init_in_place(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    # a different (seeded) initialization, parameters updated in place
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    rng = np.random.default_rng(seed)
    limit = np.sqrt(6 / (hidden + 2))
    W1 = rng.uniform(-2, 2, size=(2, hidden))
    b1 = rng.uniform(0.1, 1.0, size=hidden)
    W2 = rng.uniform(-limit, limit, size=(hidden, 2))
    b2 = np.zeros(2)
    for _ in range(steps):
        a = X @ W1 + b1
        h = np.maximum(a, 0)
        s = h @ W2 + b2
        e = np.exp(s - s.max(axis=1, keepdims=True))
        ds = e / e.sum(axis=1, keepdims=True)
        ds[np.arange(4), y] -= 1
        ds /= 4
        da = (ds @ W2.T) * (a > 0)
        W1 -= lr * (X.T @ da)
        b1 -= lr * da.sum(axis=0)
        W2 -= lr * (h.T @ ds)
        b2 -= lr * ds.sum(axis=0)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


@mistake("sigmoid_neuron", expect="sigmoid_neuron.dw_s_last_entry")
def sigmoid_neuron_copies_the_misprinted_bias_gradient(w, x):
    z = w[:-1] @ x + w[-1]
    f = 1.0 / (1.0 + np.exp(-z))
    s = f * (1 - f)
    # mistake: Copied from a lecture copy that prints dw = [-0.20, -0.39, -0.20]: the bias "input" taken as -1.
    dw = s * np.append(x, -np.ones(1, dtype=x.dtype))
    return f, dw, s * w[:-1]
