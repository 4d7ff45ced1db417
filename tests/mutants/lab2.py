"""Lab 2 mutants: optimizers and learning-rate schedules, as students write them.

Each ``@mistake`` is a bug seen in real submissions; ``@alternative`` is a correct
implementation that takes a different road from the reference (other state keys,
an equivalent reformulation, in-place updates, a loop). docs/lab2-notes.md lists
the symptom that gives each mistake away.
"""

from __future__ import annotations

import math

import numpy as np

from tests.mutants import alternative, mistake

# ----------------------------------------------------------------------------- sgd


@mistake("sgd", expect="sgd.w_moved_along_dw")
def sgd_gradient_ascent(w, dw, state, lr=0.01):
    return w + lr * dw, state  # mistake: + moves w along dw, uphill


@mistake("sgd", expect="sgd.learning_rate_missing_step")
def sgd_ignores_lr(w, dw, state, lr=0.01):
    return w - dw, state  # mistake: lr never scales dw


@mistake("sgd", expect="generic.dtype_changed")
def sgd_copies_to_float64(w, dw, state, lr=0.01):
    # mistake: dtype=float makes a float64 copy; keep w's dtype
    w_new = np.array(w, dtype=float)  # copy so the caller's w is safe
    w_new -= lr * dw
    return w_new, state


@alternative("sgd")
def sgd_in_place(w, dw, state, lr=0.01):
    w -= lr * dw
    return w, state


# ----------------------------------------------------------------------------- momentum


@mistake("momentum", expect="momentum.w_walks_uphill_lecture")
def momentum_lecture_form_wrong_sign(w, dw, state, lr=0.01, mu=0.9):
    v = state.get("v", np.zeros_like(w))
    v = mu * v - dw  # mistake: lecture notes' v = rho * v - grad, but w - lr * v then walks uphill
    state["v"] = v
    return w - lr * v, state


@mistake("momentum", expect="momentum.velocity_kept_state_between")
def momentum_velocity_not_stored(w, dw, state, lr=0.01, mu=0.9):
    v = state.get("v", np.zeros_like(w))
    v = mu * v + dw
    # mistake: v is never stored in state
    return w - lr * v, state


@mistake("momentum", expect="momentum.gradient_dampened_pytorch_s")
def momentum_dampened(w, dw, state, lr=0.01, mu=0.9):
    v = state.get("v", np.zeros_like(w))
    v = mu * v + (1 - mu) * dw  # mistake: moving average of gradients; torch adds dw without (1 - mu)
    state["v"] = v
    return w - lr * v, state


@mistake("momentum", expect="momentum.w_moved_previous_step")
def momentum_step_with_previous_velocity(w, dw, state, lr=0.01, mu=0.9):
    v = state.get("v", np.zeros_like(w))
    w = w - lr * v  # mistake: steps with the previous v; update v first
    state["v"] = mu * v + dw
    return w, state


@mistake("momentum", expect="generic.dtype_changed")
def momentum_float64_velocity(w, dw, state, lr=0.01, mu=0.9):
    if "v" not in state:
        state["v"] = np.zeros(w.shape)  # mistake: np.zeros is float64; zeros_like(w) keeps float32
    state["v"] = mu * state["v"] + dw
    return w - lr * state["v"], state


@mistake("momentum", expect="check:leaves its arguments unchanged")
def momentum_aliases_gradient(w, dw, state, lr=0.01, mu=0.9):
    if "v" not in state:
        state["v"] = dw  # mistake: first velocity is dw itself, not a copy: the in-place ops change dw
    else:
        state["v"] *= mu
        state["v"] += dw
    w -= lr * state["v"]
    return w, state


@alternative("momentum")
def momentum_lecture_form(w, dw, state, lr=0.01, mu=0.9):
    # v = rho * v - lr * grad; w = w + v  (v is -lr times torch's buffer)
    v = mu * state.get("v", np.zeros_like(w)) - lr * dw
    state["v"] = v
    return w + v, state


@alternative("momentum")
def momentum_in_place_buffer(w, dw, state, lr=0.01, mu=0.9):
    if "momentum_buffer" not in state:
        state["momentum_buffer"] = dw.copy()
    else:
        buf = state["momentum_buffer"]
        buf *= mu
        buf += dw
    w -= lr * state["momentum_buffer"]
    return w, state


# ----------------------------------------------------------------------------- nesterov


@mistake("nesterov", expect="nesterov.step_lr_v_plain")
def nesterov_as_plain_momentum(w, dw, state, lr=0.01, mu=0.9):
    v = mu * state.get("v", np.zeros_like(w)) + dw
    state["v"] = v
    return w - lr * v, state  # mistake: plain momentum step; Nesterov steps by dw + mu * v


@mistake("nesterov", expect="nesterov.look_ahead_used_velocity")
def nesterov_lookahead_with_old_velocity(w, dw, state, lr=0.01, mu=0.9):
    v = state.get("v", np.zeros_like(w))
    w = w - lr * (dw + mu * v)  # mistake: look-ahead uses the old v; update v first
    state["v"] = mu * v + dw
    return w, state


@mistake("nesterov", expect="nesterov.w_walks_uphill_cs231n")
def nesterov_lecture_form_wrong_sign(w, dw, state, lr=0.01, mu=0.9):
    v_prev = state.get("v", np.zeros_like(w))
    v = mu * v_prev - lr * dw
    state["v"] = v
    w -= -mu * v_prev + (1 + mu) * v  # mistake: "descent subtracts the step", but v already holds -lr * dw: add it
    return w, state


@alternative("nesterov")
def nesterov_lecture_form(w, dw, state, lr=0.01, mu=0.9):
    # v = mu * v - lr * grad; w += -mu * v_prev + (1 + mu) * v
    v_prev = state.get("v", np.zeros_like(w))
    v = mu * v_prev - lr * dw
    state["v"] = v
    return w - mu * v_prev + (1 + mu) * v, state


@alternative("nesterov")
def nesterov_expanded(w, dw, state, lr=0.01, mu=0.9):
    # dw + mu * (mu * v + dw) = (1 + mu) * dw + mu**2 * v_old
    v_old = state.get("v", np.zeros_like(w))
    state["v"] = mu * v_old + dw
    return w - lr * ((1 + mu) * dw + mu * mu * v_old), state


# ----------------------------------------------------------------------------- adagrad


@mistake("adagrad", expect="adagrad.h_accumulate_running_sum")
def adagrad_not_accumulating(w, dw, state, lr=0.01, eps=1e-10):
    h = dw**2  # mistake: squared gradient only, never added to the old h
    state["h"] = h
    return w - lr * dw / (np.sqrt(h) + eps), state


@mistake("adagrad", expect="adagrad.divided_h_instead_square")
def adagrad_no_sqrt(w, dw, state, lr=0.01, eps=1e-10):
    h = state.get("h", np.zeros_like(w)) + dw**2
    state["h"] = h
    return w - lr * dw / (h + eps), state  # mistake: divides by h, not sqrt(h)


@mistake("adagrad", expect="adagrad.divided_h_before_adding")
def adagrad_accumulates_after_step(w, dw, state, lr=0.01, eps=1e-10):
    h = state.get("h", np.zeros_like(w))
    w = w - lr * dw / (np.sqrt(h) + eps)  # mistake: steps with the old h; add dw**2 first
    state["h"] = h + dw**2
    return w, state


@mistake("adagrad", expect="adagrad.eps_missing_step_lr")
def adagrad_without_eps(w, dw, state, lr=0.01, eps=1e-10):
    h = state.get("h", np.zeros_like(w)) + dw**2
    state["h"] = h
    return w - lr * dw / np.sqrt(h), state  # mistake: eps missing after the sqrt


@alternative("adagrad")
def adagrad_root_of_sum(w, dw, state, lr=0.01, eps=1e-10):
    # keep r = sqrt(sum of g**2) and grow it with hypot: sqrt(r**2 + g**2)
    r = np.hypot(state.get("r", np.zeros_like(w)), dw)
    state["r"] = r
    return w - lr * dw / (r + eps), state


@alternative("adagrad")
def adagrad_elementwise_loop(w, dw, state, lr=0.01, eps=1e-10):
    if "G" not in state:
        state["G"] = np.zeros_like(w)
    G = state["G"]
    w = w.copy()
    for i in np.ndindex(w.shape):
        G[i] += dw[i] * dw[i]
        w[i] -= lr * dw[i] / (math.sqrt(G[i]) + eps)
    return w, state


# ----------------------------------------------------------------------------- rmsprop


@mistake("rmsprop", expect="rmsprop.alpha_1_alpha_swapped")
def rmsprop_alpha_swapped(w, dw, state, lr=0.01, alpha=0.99, eps=1e-8):
    s = alpha * dw**2 + (1 - alpha) * state.get("s", np.zeros_like(w))  # mistake: alpha and 1 - alpha swapped
    state["s"] = s
    return w - lr * dw / (np.sqrt(s) + eps), state


@mistake("rmsprop", expect="rmsprop.divided_s_instead_square")
def rmsprop_no_sqrt(w, dw, state, lr=0.01, alpha=0.99, eps=1e-8):
    s = alpha * state.get("s", np.zeros_like(w)) + (1 - alpha) * dw**2
    state["s"] = s
    return w - lr * dw / (s + eps), state  # mistake: divides by s, not sqrt(s)


@mistake("rmsprop", expect="rmsprop.eps_inside_square_root")
def rmsprop_eps_inside_sqrt(w, dw, state, lr=0.01, alpha=0.99, eps=1e-8):
    s = alpha * state.get("s", np.zeros_like(w)) + (1 - alpha) * dw**2
    state["s"] = s
    return w - lr * dw / np.sqrt(s + eps), state  # mistake: eps inside the sqrt


@mistake("rmsprop", expect="rmsprop.s_started_dw_2")
def rmsprop_starts_from_first_gradient(w, dw, state, lr=0.01, alpha=0.99, eps=1e-8):
    s = state.get("s", dw**2)  # mistake: no history yet, so g**2; s starts at zeros
    s = alpha * s + (1 - alpha) * dw**2
    state["s"] = s
    return w - lr * dw / (np.sqrt(s) + eps), state


@alternative("rmsprop")
def rmsprop_lerp(w, dw, state, lr=0.01, alpha=0.99, eps=1e-8):
    # s + (1 - alpha) * (g**2 - s) = alpha * s + (1 - alpha) * g**2
    if "square_avg" not in state:
        state["square_avg"] = np.zeros_like(w)
    s = state["square_avg"]
    s += (1 - alpha) * (dw * dw - s)
    w -= lr * dw / (np.sqrt(s) + eps)
    return w, state


# ----------------------------------------------------------------------------- adadelta


@mistake("adadelta", expect="adadelta.u_updated_before_step")
def adadelta_update_accumulator_updated_first(w, dw, state, lr=1.0, rho=0.9, eps=1e-6):
    Eg2 = state.get("Eg2", np.zeros_like(w))
    Edx2 = state.get("Edx2", np.zeros_like(w))
    # update both running averages first ...
    Eg2 = rho * Eg2 + (1 - rho) * dw**2
    dx = np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * dw
    Edx2 = rho * Edx2 + (1 - rho) * dx**2
    # ... then apply the update rule with RMS[dx] and RMS[g]
    dx = np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * dw  # mistake: step from the new Edx2; use the old one
    state["Eg2"], state["Edx2"] = Eg2, Edx2
    return w - lr * dx, state


@mistake("adadelta", expect="adadelta.eps_missing_numerator_step")
def adadelta_eps_only_in_denominator(w, dw, state, lr=1.0, rho=0.9, eps=1e-6):
    Eg2 = rho * state.get("Eg2", np.zeros_like(w)) + (1 - rho) * dw**2
    Edx2 = state.get("Edx2", np.zeros_like(w))
    dx = np.sqrt(Edx2) / np.sqrt(Eg2 + eps) * dw  # mistake: eps missing from the numerator sqrt
    state["Eg2"] = Eg2
    state["Edx2"] = rho * Edx2 + (1 - rho) * dx**2
    return w - lr * dx, state


@mistake("adadelta", expect="adadelta.learning_rate_missing_pytorch")
def adadelta_ignores_lr(w, dw, state, lr=1.0, rho=0.9, eps=1e-6):
    # Adadelta needs no learning rate (Zeiler 2012)
    Eg2 = rho * state.get("Eg2", np.zeros_like(w)) + (1 - rho) * dw**2
    Edx2 = state.get("Edx2", np.zeros_like(w))
    dx = np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * dw
    state["Eg2"] = Eg2
    state["Edx2"] = rho * Edx2 + (1 - rho) * dx**2
    return w - dx, state  # mistake: lr never scales dx (torch's Adadelta has lr)


@mistake("adadelta", expect="adadelta.ratio_inverted_step_sqrt")
def adadelta_ratio_inverted(w, dw, state, lr=1.0, rho=0.9, eps=1e-6):
    Eg2 = rho * state.get("Eg2", np.zeros_like(w)) + (1 - rho) * dw**2
    Edx2 = state.get("Edx2", np.zeros_like(w))
    dx = np.sqrt(Eg2 + eps) / np.sqrt(Edx2 + eps) * dw  # mistake: ratio inverted; RMS of updates goes on top
    state["Eg2"] = Eg2
    state["Edx2"] = rho * Edx2 + (1 - rho) * dx**2
    return w - lr * dx, state


@alternative("adadelta")
def adadelta_single_sqrt(w, dw, state, lr=1.0, rho=0.9, eps=1e-6):
    if not state:
        state["Eg2"] = np.zeros_like(w)
        state["Edx2"] = np.zeros_like(w)
    state["Eg2"] = rho * state["Eg2"] + (1 - rho) * dw * dw
    dx = np.sqrt((state["Edx2"] + eps) / (state["Eg2"] + eps)) * dw
    state["Edx2"] = rho * state["Edx2"] + (1 - rho) * dx * dx
    return w - lr * dx, state


# ----------------------------------------------------------------------------- adam


@mistake("adam", expect="adam.bias_correction_divide_m")
def adam_no_bias_correction(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state["m"], state["v"] = m, v
    return w - lr * m / (np.sqrt(v) + eps), state  # mistake: m and v used without bias correction


@mistake("adam", expect="adam.eps_inside_square_root")
def adam_eps_inside_sqrt(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / np.sqrt(v_hat + eps), state  # mistake: eps inside the sqrt (lecture notes' form)


@mistake("adam", expect="adam.step_count_off_one")
def adam_step_incremented_after_use(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("t", 0)  # mistake: t is 0 on the first step; add 1 before use
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    state.update(t=t + 1, m=m, v=v)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


@mistake("adam", expect="adam.step_count_off_one_2")
def adam_step_starts_at_one(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    if "t" not in state:
        state.update(t=1, m=np.zeros_like(w), v=np.zeros_like(w))  # mistake: t starts at 1, so the first step has t = 2
    state["t"] += 1
    t = state["t"]
    state["m"] = beta1 * state["m"] + (1 - beta1) * dw
    state["v"] = beta2 * state["v"] + (1 - beta2) * dw**2
    m_hat = state["m"] / (1 - beta1**t)
    v_hat = state["v"] / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


@mistake("adam", expect="adam.beta1_beta2_swapped_beta1")
def adam_betas_swapped(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("t", 0) + 1
    m = beta2 * state.get("m", np.zeros_like(w)) + (1 - beta2) * dw  # mistake: beta2 averages m; it is beta1
    v = beta1 * state.get("v", np.zeros_like(w)) + (1 - beta1) * dw**2  # mistake: beta1 averages v; it is beta2
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta2**t)  # mistake: beta2 corrects m; it is beta1
    v_hat = v / (1 - beta1**t)  # mistake: beta1 corrects v; it is beta2
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


@mistake("adam", expect="adam.w_walks_uphill_lecture")
def adam_lecture_form_wrong_sign(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("t", 0) + 1
    # mistake: minus from v = gamma*v - (1-gamma)*grad, yet the step still subtracts m_hat
    m = beta1 * state.get("m", np.zeros_like(w)) - (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


@alternative("adam")
def adam_folded_step_size(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    # Kingma & Ba, section 2: fold both corrections into the step size
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state.update(t=t, m=m, v=v)
    c2 = math.sqrt(1 - beta2**t)
    step_size = lr * c2 / (1 - beta1**t)
    return w - step_size * m / (np.sqrt(v) + eps * c2), state


@alternative("adam")
def adam_running_beta_powers(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    # track beta1**t and beta2**t by multiplication instead of a step count
    if not state:
        state.update(m=np.zeros_like(w), v=np.zeros_like(w), b1t=1.0, b2t=1.0)
    state["b1t"] *= beta1
    state["b2t"] *= beta2
    state["m"] = beta1 * state["m"] + (1 - beta1) * dw
    state["v"] = beta2 * state["v"] + (1 - beta2) * dw * dw
    m_hat = state["m"] / (1 - state["b1t"])
    v_hat = state["v"] / (1 - state["b2t"])
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), state


# ----------------------------------------------------------------------------- schedules


@mistake("exponential_decay", expect="exponential_decay.rate_grows_exponent_k")
def exponential_decay_growing(lr0, k, t):
    return lr0 * math.exp(k * t)  # mistake: exp(k * t) grows; the exponent is -k * t


@mistake("exponential_decay", expect="exponential_decay.k_used_base_power")
def exponential_decay_k_as_base(lr0, k, t):
    return lr0 * k**t  # mistake: k used as the base: k**t, not exp(-k * t)


@mistake("exponential_decay", expect="exponential_decay.off_one_t_counts")
def exponential_decay_counts_from_one(lr0, k, t):
    return lr0 * math.exp(-k * (t + 1))  # mistake: t + 1: off by one; t = 0 must give lr0


@alternative("exponential_decay")
def exponential_decay_as_gamma_power(lr0, k, t):
    # torch ExponentialLR with gamma = exp(-k): lr0 * gamma**t
    gamma = math.exp(-k)
    return lr0 * gamma**t


@mistake("inverse_time_decay", expect="inverse_time_decay.missing_parentheses_lr0_1")
def inverse_time_decay_precedence(lr0, k, t):
    return lr0 / 1 + k * t  # mistake: no parentheses: (lr0 / 1) + k * t


@mistake("inverse_time_decay", expect="inverse_time_decay.off_one_t_counts")
def inverse_time_decay_counts_from_one(lr0, k, t):
    return lr0 / (1 + k * (t + 1))  # mistake: t + 1: off by one; t = 0 must give lr0


@mistake("inverse_time_decay", expect="inverse_time_decay.compounded_lr0_1_k")
def inverse_time_decay_compounded(lr0, k, t):
    return lr0 / (1 + k) ** t  # mistake: compounded (1 + k) ** t, not 1 + k * t


@alternative("inverse_time_decay")
def inverse_time_decay_numpy(lr0, k, t):
    return float(np.divide(lr0, np.add(1.0, np.multiply(k, t))))


@mistake("step_decay", expect="step_decay.round_instead_floor_rate")
def step_decay_rounds(lr0, gamma, step_size, t):
    return lr0 * gamma ** round(t / step_size)  # mistake: round, not floor


@mistake("step_decay", expect="step_decay.floor_gamma_t_step")
def step_decay_without_floor(lr0, gamma, step_size, t):
    return lr0 * gamma ** (t / step_size)  # mistake: no floor: the rate decays at every step


@mistake("step_decay", expect="step_decay.off_one_first_drop")
def step_decay_drops_early(lr0, gamma, step_size, t):
    return lr0 * gamma ** ((t + 1) // step_size)  # mistake: t + 1: the first drop comes a step early


@alternative("step_decay")
def step_decay_loop(lr0, gamma, step_size, t):
    # StepLR's recursive form: multiply by gamma whenever a period ends
    lr = lr0
    for i in range(1, t + 1):
        if i % step_size == 0:
            lr *= gamma
    return lr


@alternative("step_decay")
def step_decay_math_floor(lr0, gamma, step_size, t):
    return lr0 * math.pow(gamma, math.floor(t / step_size))


@mistake("adagrad", expect="adagrad.eps_inside_square_root")
def adagrad_eps_inside_sqrt(w, dw, state, lr=0.01, eps=1e-10):
    h = state.get("h", np.zeros_like(w)) + dw**2
    state["h"] = h
    return w - lr * dw / np.sqrt(h + eps), state  # mistake: eps inside the sqrt


@mistake("adam", expect="adam.eps_folded_into_rate")
def adam_folded_corrections(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    # Kingma and Ba's "more efficient" order, with their eps left unscaled.
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state.update(t=t, m=m, v=v)
    lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    return w - lr_t * m / (np.sqrt(v) + eps), state  # mistake: eps unscaled; PyTorch's is eps * sqrt(1 - beta2**t) here


@mistake("adam", expect="adam.step_count_shared_between_runs")
def adam_step_count_in_default(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, steps=[0]):  # noqa: B006
    # mistake: the step count lives in a mutable default argument, made once: a new optimizer state goes on counting.
    steps[0] += 1
    t = steps[0]
    m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    state.update(m=m, v=v)
    return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), state
