"""Lab 2: optimizers and learning-rate schedules.

Every optimizer in this module takes one step on one parameter array:

    w_new, state = name(w, dw, state, **hyper)

``w`` is the parameter (any shape), ``dw`` the gradient of the loss at ``w`` (same
shape), and ``state`` a dict that is ``{}`` before the first step. The function keeps
in ``state`` whatever it must remember between steps (a velocity, running averages,
the step count), stores it there and returns the dict; the caller hands it back on
the next step. The optimizers may update ``w`` in place; these reference versions
build new arrays instead.

The semantics are those of ``torch.optim`` with default flags, so PyTorch is the
oracle. All arithmetic is elementwise: every buffer has the shape and dtype of ``w``
(float32 in, float32 out).

The schedules map a step count t = 0, 1, 2, ... to a learning rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


# ----------------------------------------------------------------------------- optimizers


def sgd(
    w: np.ndarray, dw: np.ndarray, state: dict[str, Any], lr: float = 0.01
) -> tuple[np.ndarray, dict[str, Any]]:
    """Gradient descent step: w_new = w - lr * dw.

    Plain SGD remembers nothing, so ``state`` comes back as it came in.
    """
    raise NotImplementedError("Task lab2.sgd: not implemented yet")


def momentum(
    w: np.ndarray, dw: np.ndarray, state: dict[str, Any], lr: float = 0.01, mu: float = 0.9
) -> tuple[np.ndarray, dict[str, Any]]:
    """Momentum as torch SGD(momentum=mu): v = mu * v + dw; w_new = w - lr * v.

    The velocity v has the shape of w, starts at zeros (so the first v is dw) and must
    be kept in ``state`` between steps.
    """
    raise NotImplementedError("Task lab2.momentum: not implemented yet")


def nesterov(
    w: np.ndarray, dw: np.ndarray, state: dict[str, Any], lr: float = 0.01, mu: float = 0.9
) -> tuple[np.ndarray, dict[str, Any]]:
    """Nesterov momentum: v = mu * v + dw; w_new = w - lr * (dw + mu * v).

    This is torch SGD(momentum=mu, nesterov=True). v is the same velocity as in
    ``momentum`` (zeros before the first step, kept in ``state``); the step uses the
    freshly updated v.
    """
    raise NotImplementedError("Task lab2.nesterov: not implemented yet")


def adagrad(
    w: np.ndarray, dw: np.ndarray, state: dict[str, Any], lr: float = 0.01, eps: float = 1e-10
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adagrad: h = h + dw**2; w_new = w - lr * dw / (sqrt(h) + eps).

    h, the running sum of squared gradients, has the shape of w, starts at zeros and
    never shrinks; eps is added after the square root.
    """
    raise NotImplementedError("Task lab2.adagrad: not implemented yet")


def rmsprop(
    w: np.ndarray,
    dw: np.ndarray,
    state: dict[str, Any],
    lr: float = 0.01,
    alpha: float = 0.99,
    eps: float = 1e-8,
) -> tuple[np.ndarray, dict[str, Any]]:
    """RMSprop: s = alpha * s + (1 - alpha) * dw**2; w_new = w - lr * dw / (sqrt(s) + eps).

    s, the running average of squared gradients, has the shape of w and starts at
    zeros; eps is added after the square root.
    """
    raise NotImplementedError("Task lab2.rmsprop: not implemented yet")


def adadelta(
    w: np.ndarray,
    dw: np.ndarray,
    state: dict[str, Any],
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adadelta: d = sqrt(u + eps) / sqrt(s + eps) * dw; w_new = w - lr * d.

    In this order: s = rho * s + (1 - rho) * dw**2, then d from the new s and the old u,
    then u = rho * u + (1 - rho) * d**2. s (squared gradients) and u (squared updates)
    have the shape of w and start at zeros; eps sits inside both square roots.
    """
    raise NotImplementedError("Task lab2.adadelta: not implemented yet")


def adam(
    w: np.ndarray,
    dw: np.ndarray,
    state: dict[str, Any],
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adam: w_new = w - lr * m_hat / (sqrt(v_hat) + eps), eps outside the square root.

    m = beta1 * m + (1 - beta1) * dw and v = beta2 * v + (1 - beta2) * dw**2 start at
    zeros (shape of w); m_hat = m / (1 - beta1**t) and v_hat = v / (1 - beta2**t) correct
    their bias, with t the step count, 1 on the first step (so t must live in ``state``).
    """
    raise NotImplementedError("Task lab2.adam: not implemented yet")


# ----------------------------------------------------------------------------- schedules


def exponential_decay(lr0: float, k: float, t: int) -> float:
    """Exponential decay: lr = lr0 * exp(-k * t)."""
    raise NotImplementedError("Task lab2.exponential_decay: not implemented yet")


def inverse_time_decay(lr0: float, k: float, t: int) -> float:
    """Inverse-time decay: lr = lr0 / (1 + k * t)."""
    raise NotImplementedError("Task lab2.inverse_time_decay: not implemented yet")


def step_decay(lr0: float, gamma: float, step_size: int, t: int) -> float:
    """Step decay as torch StepLR: lr = lr0 * gamma ** floor(t / step_size).

    The rate stays at lr0 for t = 0 .. step_size - 1, then is multiplied by gamma
    once every step_size steps.
    """
    raise NotImplementedError("Task lab2.step_decay: not implemented yet")
