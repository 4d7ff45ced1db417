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


def _standardize(x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    """x_hat = (x - mean) / sqrt(var + eps)."""
    return (x - mean) / np.sqrt(var + eps)


def dropout_forward(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout: out = x * mask / (1 - p) in training, mask ~ Bernoulli(1 - p); out = x in evaluation.

    p in [0, 1) is the probability of dropping a unit. Training: mask is a boolean array
    of x's shape, True where the unit is kept, drawn from rng only (same rng state, same
    mask); returns (out, mask). Evaluation: returns (x, None), x unchanged (a copy is fine).
    """
    if not train:
        return x.copy(), None
    # Keep each unit with probability 1 - p.
    mask = rng.random(x.shape) >= p
    # Scale the survivors so that E[out] = x.
    return x * mask / (1.0 - float(p)), mask


def dropout_backward(dout: np.ndarray, mask: np.ndarray | None, p: float) -> np.ndarray:
    """dx = dout * mask / (1 - p), the gradient of inverted dropout with the forward pass's mask.

    dout and mask (boolean, True = kept) have x's shape. mask None (evaluation) gives dx = dout.
    """
    if mask is None:
        return dout.copy()
    return dout * mask / (1.0 - float(p))


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
    if not train:
        out = gamma * _standardize(x, running_mean, running_var, eps) + beta
        return out, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"batch norm needs more than one sample per feature in training, got N = {n}")
    # Batch statistics: the biased variance normalizes.
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * _standardize(x, mean, var, eps) + beta
    # Running statistics: the unbiased variance, momentum weighting the new batch.
    unbiased_var = var * n / (n - 1)
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * unbiased_var
    return out, new_mean, new_var


def batchnorm_backward(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-norm backward (training): dx = gamma / (N s) * (N dout - dbeta - x_hat * dgamma), s = sqrt(var + eps).

    dout, x (N, D); gamma (D,). Returns (dx (N, D), dgamma (D,), dbeta (D,)) with
    dbeta = sum(dout), dgamma = sum(dout * x_hat), sums over the batch axis, and mean,
    biased var and x_hat = (x - mean) / sqrt(var + eps) recomputed from x. dx includes
    the paths through the batch mean and variance, which depend on every sample.
    """
    n = x.shape[0]
    # Recompute the forward pass's batch statistics.
    inv_std = 1.0 / np.sqrt(x.var(axis=0) + eps)
    x_hat = (x - x.mean(axis=0)) * inv_std
    # Parameter gradients: sums over the batch.
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    # Input gradient: direct path minus the paths through the mean and the variance.
    dx = (gamma * inv_std / n) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Layer norm: out = gamma * (x - mu) / sqrt(var + eps) + beta, mu and biased var over the last axis.

    x (..., D), e.g. (N, D) or (N, L, D); gamma, beta (D,); out has x's shape.
    Statistics never mix samples, so the result does not depend on the batch.
    """
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * _standardize(x, mean, var, eps) + beta


def l2_penalty(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """L2 penalty: (lam * sum(W²), 2 * lam * W), the penalty and its gradient."""
    return lam * np.sum(W * W), 2 * lam * W


def l1_penalty(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """L1 penalty: (lam * sum(|W|), lam * sign(W)), the penalty and its subgradient, with sign(0) = 0."""
    return lam * np.sum(np.abs(W)), lam * np.sign(W)
