"""Lab 1: backpropagation, from linear regression to a two-layer network.

The chapter climbs in four steps:

1. Linear regression in matrix form, H(X) = XW + b, trained by full-batch gradient
   descent on the mean squared error.
2. One sigmoid neuron written as a computational graph, with its gradients worked
   out by hand through the chain rule.
3. Layers as pairs of functions: ``*_forward`` computes the output, ``*_backward``
   turns the upstream gradient dL/dout into the downstream gradients dL/dinput (and
   dL/dparameter) by multiplying with the layer's local gradient.
4. A two-layer ReLU network with a softmax cross-entropy loss, trained on XOR.

Layouts: a batch is a 2-D array with one example per row, x (N, D); a weight matrix
maps D inputs to M outputs, W (D, M); a bias has one entry per output, b (M,).
Every gradient has the shape of the array it is the gradient of.

The semantics are those of PyTorch (``nn.Linear``, ``nn.MSELoss``, ``torch.sigmoid``,
``nn.CrossEntropyLoss``, ...), so PyTorch is the oracle. Nothing here modifies its
arguments, and results keep the dtype of the inputs (float32 in, float32 out).
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------- linear regression


def predict(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hypothesis H(X) = X @ W + b.

    X (N, D) holds one example per row, W (D, M), b (M,) is added to every row;
    the result is (N, M).
    """
    raise NotImplementedError("Task lab1.predict: not implemented yet")


def mse_loss(pred: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """MSE L = mean((pred - y)**2) and its gradient dL/dpred = 2 * (pred - y) / pred.size.

    pred and y have the same shape; the mean runs over all pred.size elements (like
    torch.nn.MSELoss()). Returns (loss, dpred): loss a scalar, dpred shaped like pred.
    """
    raise NotImplementedError("Task lab1.mse_loss: not implemented yet")


def gradient_descent_step(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    """One step on L = mse_loss(X @ W + b, y): W_new = W - lr * dL/dW, b_new = b - lr * dL/db.

    X (N, D), y (N, M), W (D, M), b (M,). With dpred = dL/dpred from mse_loss:
    dL/dW = X.T @ dpred (D, M) and dL/db = dpred summed over the N rows (M,).
    Both gradients are taken at the old W and b; W and b themselves are not modified.
    """
    raise NotImplementedError("Task lab1.gradient_descent_step: not implemented yet")


# ----------------------------------------------------------------------------- one neuron


def sigmoid_neuron(w: np.ndarray, x: np.ndarray) -> tuple[np.floating, np.ndarray, np.ndarray]:
    """f = sigmoid(w[0]*x[0] + ... + w[D-1]*x[D-1] + w[D]); returns (f, df/dw, df/dx).

    w has D+1 entries, the last one the bias; x has D. With the sigmoid's local
    gradient s = f * (1 - f): df/dw = s * [x[0], ..., x[D-1], 1] (D+1,) and
    df/dx = s * w[:D] (D,). Example: w = [2, -3, -3], x = [-1, -2] gives f = 0.731,
    dw = [-0.197, -0.393, 0.197], dx = [0.393, -0.590].
    """
    raise NotImplementedError("Task lab1.sigmoid_neuron: not implemented yet")


# ----------------------------------------------------------------------------- layers


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine layer out = x @ W + b.

    x (N, D), W (D, M), b (M,); out (N, M).
    """
    raise NotImplementedError("Task lab1.linear_forward: not implemented yet")


def linear_backward(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of out = x @ W + b: dx = dout @ W.T, dW = x.T @ dout, db = dout summed over rows.

    dout (N, M) is dL/dout; x (N, D) and W (D, M) are the forward inputs. Returns
    (dx, dW, db) with shapes (N, D), (D, M), (M,): each gradient has the shape of
    its variable, and db sums (not averages) over the batch.
    """
    raise NotImplementedError("Task lab1.linear_backward: not implemented yet")


def relu_forward(x: np.ndarray) -> np.ndarray:
    """ReLU, elementwise: out = max(x, 0).

    Any shape; a new array of x's shape and dtype (x itself is left unchanged).
    """
    raise NotImplementedError("Task lab1.relu_forward: not implemented yet")


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ReLU gradient: dx = dout where x > 0, else 0.

    x is the forward input, dout = dL/dout has its shape. The gradient at exactly
    x == 0 is 0, as in PyTorch.
    """
    raise NotImplementedError("Task lab1.relu_backward: not implemented yet")


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, elementwise: out = 1 / (1 + exp(-x)).

    Any shape. Computed so that no exp overflows: for x >= 0 as 1 / (1 + exp(-x)),
    for x < 0 as exp(x) / (1 + exp(x)). Finite, in [0, 1] and warning-free for
    |x| up to 1e4 and beyond.
    """
    raise NotImplementedError("Task lab1.sigmoid_forward: not implemented yet")


def sigmoid_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Sigmoid gradient from its output: dx = dout * out * (1 - out).

    out = sigmoid(x) is the forward OUTPUT (not x); dout = dL/dout has its shape.
    """
    raise NotImplementedError("Task lab1.sigmoid_backward: not implemented yet")


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Tanh gradient from its output: dx = dout * (1 - out**2).

    out = tanh(x) is the forward OUTPUT (not x); dout = dL/dout has its shape.
    """
    raise NotImplementedError("Task lab1.tanh_backward: not implemented yet")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: p[..., j] = exp(z[..., j]) / sum_k exp(z[..., k]).

    Any shape; each slice along the last axis becomes a probability vector.
    Subtract each row's maximum before exp (the result does not change, but no exp
    overflows), so logits up to +-1e4 give finite probabilities.
    """
    raise NotImplementedError("Task lab1.softmax: not implemented yet")


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """L = mean_i(-log softmax(logits)[i, y[i]]), dL/dlogits = (softmax(logits) - onehot(y)) / N.

    logits (N, C); y (N,) integer class labels in [0, C). The loss is averaged over
    the N examples (torch.nn.CrossEntropyLoss()). Compute log-softmax as
    z - max - log(sum(exp(z - max))) so that logits up to +-1e4 stay finite.
    Returns (loss, dlogits): loss a scalar, dlogits (N, C).
    """
    raise NotImplementedError("Task lab1.softmax_cross_entropy: not implemented yet")


# ----------------------------------------------------------------------------- a two-layer network


def two_layer_net(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[np.floating, dict[str, np.ndarray]]:
    """Loss and gradients of scores = relu(X @ W1 + b1) @ W2 + b2 under softmax cross-entropy.

    params holds W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); X (N, D); y (N,) integer
    labels. Returns (loss, grads) where loss = softmax_cross_entropy(scores, y)[0]
    and grads has the same four keys, each gradient shaped like its parameter.
    params is not modified.
    """
    raise NotImplementedError("Task lab1.two_layer_net: not implemented yet")


def train_xor(
    hidden: int = 8, lr: float = 0.5, steps: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Train two_layer_net on XOR by full-batch gradient descent; returns the params.

    The data are the four points X = [[0, 0], [0, 1], [1, 0], [1, 1]] with labels
    y = [0, 1, 1, 0]. Initialize from np.random.default_rng(seed) only (W1 (2, hidden),
    b1 (hidden,), W2 (hidden, 2), b2 (2,), small random weights: not all zeros,
    which would keep every hidden unit identical), then take ``steps`` steps
    p = p - lr * dL/dp. With the defaults the returned params must classify all four
    points correctly (argmax of the scores == y), be the same for the same seed (and
    differ between seeds), and come back quickly (well under a second).
    """
    raise NotImplementedError("Task lab1.train_xor: not implemented yet")
