"""Regularization and normalization in NumPy.

A network with many parameters can memorize its training set: the training loss keeps
falling while the validation loss turns back up. That gap is overfitting, and this
module builds the standard remedies:

- weight penalties added to the loss: L2, lam * sum(W²), shrinks every weight in
  proportion to its size; L1, lam * sum(|W|), pushes weights all the way to zero;
- inverted dropout: while training, drop each unit with probability p and scale the
  survivors by 1 / (1 - p), so that the expected activation is unchanged and evaluation
  is the identity;
- batch normalization: standardize each feature over the batch, then scale and shift it
  (gamma, beta); running statistics replace the batch statistics at evaluation time;
- layer normalization: standardize each sample over its own features (the last axis).

Conventions of this lab (they are those of PyTorch, which grades it):

- Arrays are NumPy arrays, laid out (N, D) unless a function says otherwise, and the
  result keeps the input dtype (float32 in, float32 out).
- No argument is modified: batch norm returns its new running statistics.
- p is the probability of DROPPING a unit; the random keep-mask comes from the
  numpy.random.Generator passed in, and from nothing else.
- Batch norm normalizes with the biased batch variance (divide by N) but feeds the
  unbiased one (divide by N - 1) to the running variance, and
  new = (1 - momentum) * old + momentum * batch: momentum weights the NEW statistic.
"""

from __future__ import annotations

import numpy as np


def dropout_forward(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout: out = x * mask / (1 - p) in training, mask ~ Bernoulli(1 - p); out = x in evaluation.

    p in [0, 1) is the probability of dropping a unit. Training: mask is a boolean array
    of x's shape, True where the unit is kept, drawn from rng only (same rng state, same
    mask); returns (out, mask). Evaluation: returns (x, None), x unchanged (a copy is fine).
    """
    raise NotImplementedError("Task lab6.dropout_forward: not implemented yet")


def dropout_backward(dout: np.ndarray, mask: np.ndarray | None, p: float) -> np.ndarray:
    """dx = dout * mask / (1 - p), the gradient of inverted dropout with the forward pass's mask.

    dout and mask (boolean, True = kept) have x's shape. mask None (evaluation) gives dx = dout.
    """
    raise NotImplementedError("Task lab6.dropout_backward: not implemented yet")


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm per feature: out = gamma * (x - mu) / sqrt(var + eps) + beta, mu and var over the batch axis.

    x (N, D); gamma, beta, running_mean, running_var (D,). Returns (out, new_running_mean,
    new_running_var) as new arrays; nothing is modified in place.
    Training: mu, var = mean and biased variance (divide by N) of x over the batch axis;
    new_running = (1 - momentum) * running + momentum * batch statistic, where the
    variance fed to it is the unbiased one, var * N / (N - 1). Needs N >= 2 (ValueError).
    Evaluation: mu, var = running_mean, running_var, which are returned unchanged.
    """
    raise NotImplementedError("Task lab6.batchnorm_forward: not implemented yet")


def batchnorm_backward(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-norm backward (training): dx = gamma / (N s) * (N dout - dbeta - x_hat * dgamma), s = sqrt(var + eps).

    dout, x (N, D); gamma (D,). Returns (dx (N, D), dgamma (D,), dbeta (D,)) with
    dbeta = sum(dout), dgamma = sum(dout * x_hat), sums over the batch axis, and mean,
    biased var and x_hat = (x - mean) / sqrt(var + eps) recomputed from x. dx includes
    the paths through the batch mean and variance, which depend on every sample.
    """
    raise NotImplementedError("Task lab6.batchnorm_backward: not implemented yet")


def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Layer norm: out = gamma * (x - mu) / sqrt(var + eps) + beta, mu and biased var over the last axis.

    x (..., D), e.g. (N, D) or (N, L, D); gamma, beta (D,); out has x's shape.
    Statistics never mix samples, so the result does not depend on the batch.
    """
    raise NotImplementedError("Task lab6.layernorm_forward: not implemented yet")


def l2_penalty(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """L2 penalty: (lam * sum(W²), 2 * lam * W), the penalty and its gradient."""
    raise NotImplementedError("Task lab6.l2_penalty: not implemented yet")


def l1_penalty(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """L1 penalty: (lam * sum(|W|), lam * sign(W)), the penalty and its subgradient, with sign(0) = 0."""
    raise NotImplementedError("Task lab6.l1_penalty: not implemented yet")
