"""Likelihood and divergence losses beyond Keras: smooth_l1, gaussian_nll, poisson_nll (PyTorch's)
and generalized_kl_divergence (optax's).

Each is PyTorch's or optax's elementwise value, averaged over the last axis
(summed for the KL divergence, as Keras's ``kl_divergence``), then weighted and
reduced by the shared path.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction, abs_slope, check_bool, check_number, default_prepare, register, safe_where

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _n(x: jax.Array) -> float:
    return float(x.shape[-1])


# --------------------------------------------------------------------------
# smooth_l1 (PyTorch)
# --------------------------------------------------------------------------


def _smooth_l1(y_true, y_pred, *, beta):
    error = y_pred - y_true
    magnitude = jnp.abs(error)
    # beta = 0 is plain L1: the quadratic branch is never taken, its division made safe.
    safe_beta = jnp.where(beta > 0, beta, 1.0)
    quadratic = 0.5 * jnp.square(error) / safe_beta
    return jnp.mean(jnp.where(magnitude < beta, quadratic, magnitude - 0.5 * beta), axis=-1)


def _smooth_l1_grad(y_true, y_pred, *, beta):
    error = y_pred - y_true
    safe_beta = jnp.where(beta > 0, beta, 1.0)
    return jnp.where(jnp.abs(error) < beta, error / safe_beta, abs_slope(error)) / _n(y_pred)


def _smooth_l1_validate(opts):
    check_number("smooth_l1", "beta", opts["beta"], 0.0, None)


SMOOTH_L1 = LossSpec(
    "smooth_l1",
    None,
    _smooth_l1,
    {"beta": 1.0},
    local_grad=_smooth_l1_grad,
    validate=_smooth_l1_validate,
    aliases=("smooth_l1_loss",),
)


@register(SMOOTH_L1)
def smooth_l1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    beta: float | ArrayLike = 1.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Smooth L1 loss (PyTorch's ``smooth_l1_loss``), averaged over the last axis.

    .. math::
      \ell = \operatorname{mean}_{-1}\begin{cases} \tfrac{1}{2} e^2 / \beta & |e| < \beta \\
             |e| - \tfrac{1}{2}\beta & \text{otherwise}\end{cases},\quad e = \hat y - y

    ``huber(delta=beta) / beta``; ``beta=0`` is the mean absolute error.

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape (Keras's rank rule: ``(N,)`` against ``(N, 1)``).
      beta: where the loss turns linear; non-negative (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``e / beta`` where ``|e| < beta``, else ``sign(e)``; divided by ``d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.smooth_l1(jnp.zeros((1, 2)), jnp.array([[0.5, 3.0]]))
      Array(1.3125, dtype=float32)
    """
    return SMOOTH_L1.evaluate(y_true, y_pred, sample_weight, reduction, beta=beta)


# --------------------------------------------------------------------------
# gaussian_nll (PyTorch)
# --------------------------------------------------------------------------


def _variance(variance, y_pred, eps):
    """The variance broadcast to ``y_pred``'s shape and clamped at ``eps`` the PyTorch way.

    PyTorch clamps under ``no_grad``: the clamped value enters the loss, the gradient
    passes to ``variance`` as if unclamped (straight through).
    """
    var = jnp.asarray(variance).astype(y_pred.dtype)
    if var.ndim and var.shape == y_pred.shape[:-1]:
        var = var[..., None]
    var = jnp.broadcast_to(var, y_pred.shape)
    return jax.lax.stop_gradient(jnp.maximum(var, eps)) + (var - jax.lax.stop_gradient(var))


def _gaussian_nll(y_true, y_pred, *, variance, full, eps):
    var = _variance(variance, y_pred, eps)
    values = 0.5 * (jnp.log(var) + jnp.square(y_pred - y_true) / var)
    if full:
        values = values + _HALF_LOG_2PI
    return jnp.mean(values, axis=-1)


def _gaussian_nll_grad(y_true, y_pred, *, variance, full, eps):
    var = _variance(variance, y_pred, eps)
    return (y_pred - y_true) / var / _n(y_pred)


def _host_array(value: Any) -> np.ndarray | None:
    # Only host values are range-checked: reading a device array back would sync every call.
    if isinstance(value, (int, float, np.ndarray, np.generic, list, tuple)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    return None


def _gaussian_nll_validate(opts):
    variance = opts["variance"]
    if variance is None:
        raise ValueError("gaussian_nll: variance is required (an array or a positive number); received variance=None.")
    host = _host_array(variance)
    if host is not None and (np.any(host < 0) or np.any(np.isnan(host))):
        raise ValueError(
            f"gaussian_nll: variance must be non-negative; received variance with minimum {np.nanmin(host)!r}"
            f"{' and NaN entries' if np.any(np.isnan(host)) else ''}."
        )
    check_bool("gaussian_nll", "full", opts["full"])
    check_number("gaussian_nll", "eps", opts["eps"], 0.0, None, low_open=True)


def _gaussian_nll_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    shape = jnp.asarray(opts["variance"]).shape
    ok = shape in ((), y_pred.shape, y_pred.shape[:-1]) or (
        len(shape) == y_pred.ndim and shape[:-1] == y_pred.shape[:-1] and shape[-1] == 1
    )
    if not ok:
        raise ValueError(
            f"gaussian_nll: variance must have y_pred's shape {y_pred.shape}, that shape with a last axis of 1, "
            f"that shape less its last axis {y_pred.shape[:-1]}, or be a scalar; received variance.shape={shape}."
        )
    return y_true, y_pred


GAUSSIAN_NLL = LossSpec(
    "gaussian_nll",
    None,
    _gaussian_nll,
    {"variance": None, "full": False, "eps": 1e-6},
    static=frozenset({"full"}),
    local_grad=_gaussian_nll_grad,
    validate=_gaussian_nll_validate,
    prepare=_gaussian_nll_prepare,
    aliases=("gaussian_nll_loss",),
)


@register(GAUSSIAN_NLL)
def gaussian_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    variance: ArrayLike,
    full: bool = False,
    eps: float | ArrayLike = 1e-6,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Gaussian negative log-likelihood (PyTorch's ``gaussian_nll_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \tfrac{1}{2}\Big(\log v + \frac{(\hat y - y)^2}{v}\Big)
       \ [+ \tfrac{1}{2}\log 2\pi \text{ if full}],\quad v = \max(\text{variance}, \text{eps})

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predicted means, same shape.
      variance: non-negative variances: ``y_pred``'s shape (heteroscedastic), that shape
        with a last axis of 1 or without its last axis (one variance per sample,
        homoscedastic), or a scalar. It may be traced; ``jax.grad`` with respect to it
        follows PyTorch (the clamp at ``eps`` passes the gradient straight through).
        Negative entries raise ``ValueError`` when the variance is a host value
        (a number or a numpy array); device arrays are not read back to check.
      full: add the constant ``0.5 log(2 pi)``.
      eps: the variance's lower clamp, positive.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``(y_pred - y_true) / (v d)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.gaussian_nll(jnp.zeros((1, 2)), jnp.array([[1.0, 2.0]]), variance=1.0)
      Array(1.25, dtype=float32)
    """
    if isinstance(variance, (list, tuple)):
        variance = np.asarray(variance)
    return GAUSSIAN_NLL.evaluate(y_true, y_pred, sample_weight, reduction, variance=variance, full=full, eps=eps)


# --------------------------------------------------------------------------
# poisson_nll (PyTorch)
# --------------------------------------------------------------------------


def _stirling(y_true):
    # t log t - t + 0.5 log(2 pi t), only where t > 1 (finite gradients for t <= 1).
    return safe_where(y_true > 1, lambda t: t * jnp.log(t) - t + 0.5 * jnp.log(2.0 * math.pi * t), y_true, 2.0, 0.0)


def _poisson_nll(y_true, y_pred, *, log_input, full, eps):
    if log_input:
        values = jnp.exp(y_pred) - y_true * y_pred
    else:
        values = y_pred - y_true * jnp.log(y_pred + eps)
    if full:
        values = values + _stirling(y_true)
    return jnp.mean(values, axis=-1)


def _poisson_nll_grad(y_true, y_pred, *, log_input, full, eps):
    slope = jnp.exp(y_pred) - y_true if log_input else 1.0 - y_true / (y_pred + eps)
    return slope / _n(y_pred)


def _poisson_nll_validate(opts):
    check_bool("poisson_nll", "log_input", opts["log_input"])
    check_bool("poisson_nll", "full", opts["full"])
    check_number("poisson_nll", "eps", opts["eps"], 0.0, None)


POISSON_NLL = LossSpec(
    "poisson_nll",
    None,
    _poisson_nll,
    {"log_input": True, "full": False, "eps": 1e-8},
    static=frozenset({"log_input", "full"}),
    local_grad=_poisson_nll_grad,
    validate=_poisson_nll_validate,
    aliases=("poisson_nll_loss",),
)


@register(POISSON_NLL)
def poisson_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float | ArrayLike = 1e-8,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poisson negative log-likelihood (PyTorch's ``poisson_nll_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1}\begin{cases} e^{x} - y x & \text{log\_input} \\
       x - y \log(x + \text{eps}) & \text{otherwise}\end{cases}
       \ [+\ y \log y - y + \tfrac12 \log(2\pi y) \text{ where } y > 1 \text{, if full}]

    Args:
      y_true: non-negative counts, shape ``(..., d)``.
      y_pred: log-rates (``log_input=True``) or rates, same shape.
      log_input: whether ``y_pred`` is the log of the rate.
      full: add Stirling's approximation of ``log(y!)`` (for ``y > 1`` only, as PyTorch).
      eps: added to the rate before the log when ``log_input=False``; non-negative.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``(exp(x) - y) / d`` with ``log_input``, else ``(1 - y / (x + eps)) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.poisson_nll(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(1., dtype=float32)
    """
    return POISSON_NLL.evaluate(y_true, y_pred, sample_weight, reduction, log_input=log_input, full=full, eps=eps)


# --------------------------------------------------------------------------
# generalized_kl_divergence (optax)
# --------------------------------------------------------------------------


def _generalized_kl(y_true, y_pred):
    # 0 log 0 = 0 (optax's convention, also for d/dy_true), and 0 log 0 = 0 in the cross term
    # with finite gradients: log reads 1 where both are 0 (the double where).
    entropy = safe_where(y_true != 0, lambda t: t * jnp.log(t), y_true, 1.0, 0.0)
    cross = y_true * jnp.log(_safe_rate(y_true, y_pred))
    return jnp.sum(entropy - cross + y_pred - y_true, axis=-1)


def _safe_rate(y_true, y_pred):
    return jnp.where((y_true != 0) | (y_pred != 0), y_pred, 1.0)


def _generalized_kl_grad(y_true, y_pred):
    return 1.0 - y_true / _safe_rate(y_true, y_pred)


GENERALIZED_KL = LossSpec(
    "generalized_kl_divergence",
    None,
    _generalized_kl,
    {},
    local_grad=_generalized_kl_grad,
    aliases=("convex_kl_divergence",),
)


@register(GENERALIZED_KL)
def generalized_kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Generalized Kullback-Leibler divergence between unnormalized measures, summed over the last axis.

    optax's ``generalized_kl_divergence`` (formerly ``convex_kl_divergence``) of
    ``log(y_pred)``: the Bregman divergence of ``x log x - x``, equal to the KL
    divergence when both sum to 1.

    .. math:: \ell = \sum_{-1} \Big(y \log\frac{y}{\hat y} - y + \hat y\Big),\quad 0 \log 0 = 0

    Args:
      y_true: non-negative target measure, shape ``(..., d)``.
      y_pred: positive predicted measure (not log), same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``1 - y_true / y_pred`` (``1`` where ``y_true = 0``, finite even at ``y_pred = 0``).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.generalized_kl_divergence(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.5]]))
      Array(0.5, dtype=float32)
    """
    return GENERALIZED_KL.evaluate(y_true, y_pred, sample_weight, reduction)
