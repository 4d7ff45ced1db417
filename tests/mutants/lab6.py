"""Lab 6 (regularization and normalization): known mistakes and correct alternatives.

Each function is what a student might really hand in for one task. ``mistake`` bodies
are wrong in exactly one way (everything else, dtype and argument handling included,
is right, so that the failure points at that one mistake); ``alternative`` bodies are
correct by a different route and must keep full marks.
"""

from __future__ import annotations

import numpy as np

from tests.mutants import alternative, mistake

# ----------------------------------------------------------------------------- dropout_forward


@alternative("dropout_forward")
def dropout_forward_returns_x_itself_in_evaluation(x, p, train, rng):
    # evaluation returns the input object itself, as nn.Dropout does in eval mode
    if not train:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask / (1.0 - p), mask


@mistake("dropout_forward", expect="dropout_forward.kept_units_were_scaled")
def dropout_forward_not_inverted(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        return x.copy(), None
    mask = rng.random(x.shape) >= p
    return x * mask, mask  # mistake: Classic dropout's training half: the survivors are not scaled by 1 / (1 - p).


@mistake("dropout_forward", expect="dropout_forward.p_drop_probability_keep")
def dropout_forward_keeps_with_probability_p(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        return x.copy(), None
    # mistake: Reads p as the probability of keeping a unit (Keras' rate and PyTorch's p both drop).
    mask = rng.random(x.shape) < p
    return x * mask / p, mask


@mistake("dropout_forward", expect="dropout_forward.evaluation_time_inverted_dropout")
def dropout_forward_scales_at_evaluation(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        # mistake: Mixes the two conventions: inverted scaling in training AND classic scaling at test time.
        return x * (1 - p), None
    mask = rng.random(x.shape) >= p
    return x * mask / (1 - p), mask


@mistake("dropout_forward", expect="dropout_forward.units_were_dropped_evaluation")
def dropout_forward_drops_at_evaluation(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    # mistake: Ignores the train flag: units are dropped at evaluation time too.
    mask = rng.random(x.shape) >= p
    return x * mask / (1 - p), mask


@mistake("dropout_forward", expect="dropout_forward.mask_boolean_keep_mask")
def dropout_forward_scaled_float_mask(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        return x.copy(), None
    # mistake: The cs231n habit: the returned mask already holds the 1 / (1 - p) factor.
    mask = (rng.random(x.shape) >= p) / (1 - p)
    return x * mask, mask


@mistake("dropout_forward", expect="dropout_forward.mask_drawn_rng_numpy")
def dropout_forward_global_random_state(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        return x.copy(), None
    # mistake: Draws from NumPy's global random state instead of the generator it was given.
    mask = np.random.rand(*x.shape) >= p
    return x * mask / (1 - p), mask


@mistake("dropout_forward", expect="check:leaves its arguments unchanged")
def dropout_forward_in_place(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if not train:
        return x, None
    mask = rng.random(x.shape) >= p
    # mistake: Right values, but the caller's activations are overwritten.
    x *= mask
    x /= 1 - p
    return x, mask


@alternative("dropout_forward")
def dropout_forward_binomial_where(
    x: np.ndarray, p: float, train: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    # One Bernoulli(1 - p) draw per unit, then select instead of multiplying.
    if not train:
        return x.copy(), None
    mask = rng.binomial(1, 1 - p, size=x.shape).astype(bool)
    return np.where(mask, x / (1 - p), 0), mask


# ----------------------------------------------------------------------------- dropout_backward


@mistake("dropout_backward", expect="dropout_backward.dx_scaled_inverted_dropout")
def dropout_backward_unscaled(dout: np.ndarray, mask: np.ndarray | None, p: float) -> np.ndarray:
    if mask is None:
        return dout.copy()
    return dout * mask  # mistake: The forward pass scaled by 1 / (1 - p); the backward pass forgets to.


@mistake("dropout_backward", expect="dropout_backward.dx_multiplied_1_p")
def dropout_backward_multiplies_by_keep_probability(
    dout: np.ndarray, mask: np.ndarray | None, p: float
) -> np.ndarray:
    if mask is None:
        return dout.copy()
    return dout * mask * (1 - p)  # mistake: Multiplies by 1 - p where the forward pass divided by it.


@mistake("dropout_backward", expect="dropout_backward.gradient_flowed_through_dropped")
def dropout_backward_ignores_mask(dout: np.ndarray, mask: np.ndarray | None, p: float) -> np.ndarray:
    if mask is None:
        return dout.copy()
    return dout / (1 - p)  # mistake: Scales the gradient but lets it flow through the dropped units too.


@alternative("dropout_backward")
def dropout_backward_where(dout: np.ndarray, mask: np.ndarray | None, p: float) -> np.ndarray:
    # Select the kept units' gradients instead of multiplying by the mask.
    if mask is None:
        return dout.copy()
    return np.where(mask, dout / (1 - p), 0)


# ----------------------------------------------------------------------------- batchnorm_forward


@mistake("batchnorm_forward", expect="batchnorm_forward.batch_normalized_unbiased_variance")
def batchnorm_forward_unbiased_variance_to_normalize(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, running_mean.copy(), running_var.copy()
    mean = x.mean(axis=0)
    var = x.var(axis=0, ddof=1)  # mistake: Uses the N - 1 variance everywhere, also to normalize the batch.
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var
    return out, new_mean, new_var


@mistake("batchnorm_forward", expect="batchnorm_forward.running_variance_updated_biased")
def batchnorm_forward_biased_variance_in_running_var(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, running_mean.copy(), running_var.copy()
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean
    # mistake: Feeds the biased (divide by N) variance to the running variance.
    new_var = (1 - momentum) * running_var + momentum * var
    return out, new_mean, new_var


@mistake("batchnorm_forward", expect="batchnorm_forward.momentum_roles_swapped_pytorch")
def batchnorm_forward_momentum_swapped(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    # mistake: The exponential-average (Keras) convention: momentum weights the OLD statistic.
    new_mean = momentum * running_mean + (1 - momentum) * mean
    new_var = momentum * running_var + (1 - momentum) * var * n / (n - 1)
    return out, new_mean, new_var


@mistake("batchnorm_forward", expect="batchnorm_forward.evaluation_mode_train_false")
def batchnorm_forward_batch_statistics_in_evaluation(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    # mistake: Normalizes with the batch's own statistics in both modes; running stats only get updated.
    if not train:
        return out, running_mean.copy(), running_var.copy()
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return out, new_mean, new_var


@mistake("batchnorm_forward", expect="check:leaves its arguments unchanged")
def batchnorm_forward_running_stats_in_place(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, running_mean, running_var
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    # mistake: Right values, but updates the caller's running statistics like nn.BatchNorm1d does.
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * n / (n - 1)
    return out, running_mean, running_var


@mistake("batchnorm_forward", expect="batchnorm_forward.eps_belongs_inside_square")
def batchnorm_forward_eps_outside_sqrt(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        # mistake: Adds eps to the standard deviation instead of to the variance.
        out = gamma * (x - running_mean) / (np.sqrt(running_var) + eps) + beta
        return out, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mean) / (np.sqrt(var) + eps) + beta  # mistake: the same here: eps outside the sqrt
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return out, new_mean, new_var


@mistake("batchnorm_forward", expect="batchnorm_forward.statistics_were_taken_per")
def batchnorm_forward_normalizes_each_sample(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not train:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    # mistake: Takes the training statistics over the features of each sample (layer norm's axis).
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)
    new_var = (1 - momentum) * running_var + momentum * x.var(axis=0) * n / (n - 1)
    return out, new_mean, new_var


@alternative("batchnorm_forward")
def batchnorm_forward_loop_over_features(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # One feature (column) at a time, with the sums written out.
    n, d = x.shape
    out = np.empty_like(x)
    new_mean = running_mean.copy()
    new_var = running_var.copy()
    for j in range(d):
        col = x[:, j]
        if train:
            mu = col.sum() / n
            squares = ((col - mu) ** 2).sum()
            var = squares / n
            new_mean[j] = (1 - momentum) * running_mean[j] + momentum * mu
            new_var[j] = (1 - momentum) * running_var[j] + momentum * squares / (n - 1)
        else:
            mu, var = running_mean[j], running_var[j]
        out[:, j] = gamma[j] * ((col - mu) * (1 / np.sqrt(var + eps))) + beta[j]
    return out, new_mean, new_var


@alternative("batchnorm_forward")
def batchnorm_forward_scale_and_shift_folded(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    train: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Folds normalization and the affine step into out = x * scale + shift (how inference engines do it).
    if train:
        n = x.shape[0]
        mean = x.mean(axis=0)
        var = ((x - mean) ** 2).mean(axis=0)
        new_mean = running_mean + momentum * (mean - running_mean)
        new_var = running_var + momentum * (var * (n / (n - 1)) - running_var)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    return x * scale + shift, new_mean, new_var


# ----------------------------------------------------------------------------- batchnorm_backward


@mistake("batchnorm_backward", expect="batchnorm_backward.dx_treats_batch_mean")
def batchnorm_backward_statistics_as_constants(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    # mistake: Differentiates gamma * (x - mu) / sigma + beta as if mu and sigma did not depend on x.
    dx = dout * gamma / np.sqrt(var + eps)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


@mistake("batchnorm_backward", expect="batchnorm_backward.dx_misses_path_through")
def batchnorm_backward_missing_variance_term(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    # mistake: Keeps the path through the mean but treats the variance as a constant.
    dx = gamma / np.sqrt(var + eps) * (dout - dout.mean(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


@mistake("batchnorm_backward", expect="batchnorm_backward.dgamma_sum_over_batch")
def batchnorm_backward_dgamma_without_x_hat(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = dout.sum(axis=0)
    dgamma = dout.sum(axis=0)  # mistake: dgamma summed like dbeta, forgetting that gamma multiplies x_hat.
    dx = gamma / (n * np.sqrt(var + eps)) * (n * dout - dbeta - x_hat * (dout * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


@mistake("batchnorm_backward", expect="batchnorm_backward.dx_multiplied_gamma_gradient")
def batchnorm_backward_dx_without_gamma(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    # mistake: Backpropagates into x_hat but stops before multiplying by gamma.
    dx = 1 / (n * np.sqrt(var + eps)) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


@mistake("batchnorm_backward", expect="batchnorm_backward.statistics_were_recomputed_unbiased")
def batchnorm_backward_unbiased_variance(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    # mistake: Recomputes the statistics with np.var(ddof=1), not those the forward pass normalized with.
    var = x.var(axis=0, ddof=1)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma / (n * np.sqrt(var + eps)) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


@mistake("batchnorm_backward", expect="batchnorm_backward.dgamma_dbeta_sum_over")
def batchnorm_backward_averages_parameter_gradients(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma / (n * np.sqrt(var + eps)) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma / n, dbeta / n  # mistake: dx is right, but dgamma and dbeta are batch means instead of sums.


@alternative("batchnorm_backward")
def batchnorm_backward_staged_graph(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Walk the computational graph backwards one node at a time.
    n = x.shape[0]
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc**2).mean(axis=0)
    std = np.sqrt(var + eps)
    x_hat = xc / std
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dstd = -(dx_hat * xc).sum(axis=0) / std**2
    dvar = dstd / (2 * std)
    dxc = dx_hat / std + 2 * xc * dvar / n
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / n
    return dx, dgamma, dbeta


@alternative("batchnorm_backward")
def batchnorm_backward_mean_form(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # PyTorch's form: subtract the mean of dout and the projection onto x_hat.
    inv_std = 1 / np.sqrt(x.var(axis=0) + eps)
    x_hat = (x - x.mean(axis=0)) * inv_std
    dx = gamma * inv_std * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    return dx, np.einsum("nd,nd->d", dout, x_hat), dout.sum(axis=0)


# ----------------------------------------------------------------------------- layernorm_forward


@mistake("layernorm_forward", expect="layernorm_forward.statistics_were_taken_over")
def layernorm_forward_over_batch_axis(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    # mistake: Batch norm's axis: statistics over the samples instead of over each sample's features.
    mean = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


@mistake("layernorm_forward", expect="layernorm_forward.statistics_were_taken_over")
def layernorm_forward_axis_one(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    # mistake: Right for (N, D) input, but a (N, L, D) sequence gets normalized over L.
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


@mistake("layernorm_forward", expect="layernorm_forward.statistics_broadcast_against_wrong")
def layernorm_forward_without_keepdims(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    # mistake: The reduced axis is dropped, so (N,) statistics broadcast against (N, D) along the wrong axis.
    mean = x.mean(axis=-1)
    var = x.var(axis=-1)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


@mistake("layernorm_forward", expect="layernorm_forward.normalize_biased_variance_divide")
def layernorm_forward_unbiased_variance(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    # mistake: np.std(ddof=1) habits from statistics: layer norm divides by D, not D - 1.
    var = x.var(axis=-1, ddof=1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


@mistake("layernorm_forward", expect="layernorm_forward.eps_belongs_inside_square")
def layernorm_forward_eps_outside_sqrt(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    # mistake: Divides by std + eps instead of sqrt(var + eps).
    std = x.std(axis=-1, keepdims=True)
    return gamma * (x - mean) / (std + eps) + beta


@alternative("layernorm_forward")
def layernorm_forward_rows_of_a_matrix(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    # Flatten every leading axis into rows, normalize the rows with explicit sums, restore the shape.
    d = x.shape[-1]
    rows = x.reshape(-1, d)
    centered = rows - rows.sum(axis=1, keepdims=True) / d
    var = np.einsum("nd,nd->n", centered, centered)[:, None] / d
    out = centered * (1 / np.sqrt(var + eps)) * gamma + beta
    return out.reshape(x.shape)


# ----------------------------------------------------------------------------- l2_penalty


@mistake("l2_penalty", expect="l2_penalty.dw_missing_factor_2")
def l2_penalty_gradient_missing_factor_2(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: The derivative of W² is 2W; the 2 got lost.
    return lam * np.sum(W**2), lam * W


@mistake("l2_penalty", expect="l2_penalty.1_2_lam_sum")
def l2_penalty_half_convention(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: The cs231n convention 0.5 * lam * sum(W²): consistent, but not this contract.
    return 0.5 * lam * np.sum(W**2), lam * W


@mistake("l2_penalty", expect="l2_penalty.squares_were_averaged_mean")
def l2_penalty_mean_instead_of_sum(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: Averages the squares (like an MSE loss) instead of summing them.
    return lam * np.mean(W**2), 2 * lam * W / W.size


@mistake("l2_penalty", expect="l2_penalty.norm_squared_penalty_lam")
def l2_penalty_norm_not_squared(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: Uses the Frobenius norm ||W|| itself rather than its square.
    return lam * np.linalg.norm(W), 2 * lam * W


@alternative("l2_penalty")
def l2_penalty_dot_product(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # sum(W²) as the dot product of the flattened weights with themselves.
    return lam * np.vdot(W, W), (2 * lam) * W


# ----------------------------------------------------------------------------- l1_penalty


@mistake("l1_penalty", expect="l1_penalty.sign_0_0_weight")
def l1_penalty_sign_of_zero_is_one(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: Two-way sign: a weight that is exactly 0 gets gradient +lam instead of 0.
    return lam * np.sum(np.abs(W)), lam * np.where(W >= 0, 1, -1).astype(W.dtype)


@mistake("l1_penalty", expect="l1_penalty.sign_0_0_weight")
def l1_penalty_sign_by_division(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: sign(W) = W / |W| is 0 / 0 = NaN at exactly 0.
    return lam * np.sum(np.abs(W)), lam * W / np.abs(W)


@mistake("l1_penalty", expect="l1_penalty.l1_gradient_lam_sign")
def l1_penalty_gradient_copied_from_l2(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: The gradient of |W| is sign(W), not W.
    return lam * np.sum(np.abs(W)), lam * W


@mistake("l1_penalty", expect="l1_penalty.penalty_sums_w_absolute")
def l1_penalty_without_absolute_value(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # mistake: Sums the signed weights, so positive and negative weights cancel.
    return lam * np.sum(W), lam * np.sign(W)


@alternative("l1_penalty")
def l1_penalty_comparisons(W: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    # sign(W) = [W > 0] - [W < 0], and sum(|W|) as the 1-norm of the flattened weights.
    sign = (W > 0).astype(W.dtype) - (W < 0).astype(W.dtype)
    return lam * np.linalg.norm(W.ravel(), ord=1), lam * sign


@mistake("dropout_forward", expect="dropout_forward.mask_divided_first_upcasts")
def dropout_forward_scales_the_mask_first(x, p, train, rng):
    if not train:
        return x.copy(), None
    mask = rng.random(x.shape) >= p
    return x * (mask / (1 - p)), mask  # mistake: a bool array / a Python float is float64


@mistake("dropout_backward", expect="dropout_backward.mask_divided_first_upcasts")
def dropout_backward_scales_the_mask_first(dout, mask, p):
    if mask is None:
        return dout.copy()
    return dout * (mask / (1 - p))  # mistake: a bool array / a Python float is float64: float32 dout comes back float64
