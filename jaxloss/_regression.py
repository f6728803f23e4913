"""Regression losses: mse, mae, mape, msle, huber, log_cosh, cosine_similarity, poisson."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import EPSILON, LossSpec, Reduction, abs_slope, canonical_axis, check_interval, default_prepare, register

_LOG2 = math.log(2.0)


def _n(x: jax.Array) -> float:
    return float(x.shape[-1])


# --------------------------------------------------------------------------
# mean_squared_error
# --------------------------------------------------------------------------


def _mse(y_true, y_pred):
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


def _mse_grad(y_true, y_pred):
    return (2.0 / _n(y_pred)) * (y_pred - y_true)


MSE = LossSpec("mean_squared_error", "MeanSquaredError", _mse, {}, local_grad=_mse_grad, aliases=("mse",))


@register(MSE)
def mean_squared_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Mean squared error over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} (y - \hat y)^2

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape (Keras's rank rule: ``(N,)`` against ``(N, 1)``).
      sample_weight: weight of the per-sample loss's shape ``(...)`` or a leading prefix.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``2 (y_pred - y_true) / d`` times the reduction's scale.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.mean_squared_error(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))
      Array(0.5, dtype=float32)
    """
    return MSE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# mean_absolute_error
# --------------------------------------------------------------------------


def _mae(y_true, y_pred):
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1)


def _mae_grad(y_true, y_pred):
    return -abs_slope(y_true - y_pred) / _n(y_pred)


MAE = LossSpec("mean_absolute_error", "MeanAbsoluteError", _mae, {}, local_grad=_mae_grad, aliases=("mae",))


@register(MAE)
def mean_absolute_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Mean absolute error over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} |y - \hat y|

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions (see :func:`mean_squared_error`).

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``sign(y_pred - y_true) / d`` (at a tie ``-1/d``, autodiff's choice of subgradient).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.mean_absolute_error(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 3.0]]))
      Array(1.5, dtype=float32)
    """
    return MAE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# mean_absolute_percentage_error
# --------------------------------------------------------------------------


def _mape(y_true, y_pred):
    diff = jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))
    return 100.0 * jnp.mean(diff, axis=-1)


def _mape_grad(y_true, y_pred):
    scale = jnp.maximum(jnp.abs(y_true), EPSILON)
    return -(100.0 / _n(y_pred)) * abs_slope((y_true - y_pred) / scale) / scale


MAPE = LossSpec(
    "mean_absolute_percentage_error",
    "MeanAbsolutePercentageError",
    _mape,
    {},
    local_grad=_mape_grad,
    aliases=("mape",),
)


@register(MAPE)
def mean_absolute_percentage_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Mean absolute percentage error over the last axis.

    .. math:: \ell = 100 \operatorname{mean}_{-1} \frac{|y - \hat y|}{\max(|y|, \epsilon)},
       \quad \epsilon = 10^{-7}

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``100 sign(y_pred - y_true) / (d max(|y_true|, eps))``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.mean_absolute_percentage_error(jnp.array([[2.0, 4.0]]), jnp.array([[1.0, 5.0]]))
      Array(37.5, dtype=float32)
    """
    return MAPE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# mean_squared_logarithmic_error
# --------------------------------------------------------------------------


def _msle(y_true, y_pred):
    first = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    second = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1)


def _msle_grad(y_true, y_pred):
    clipped = jnp.maximum(y_pred, EPSILON)
    diff = jnp.log(clipped + 1.0) - jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    # jnp.maximum splits the gradient evenly at a tie, as autodiff does.
    slope = jnp.where(y_pred > EPSILON, 1.0, jnp.where(y_pred == EPSILON, 0.5, 0.0))
    return (2.0 / _n(y_pred)) * diff * slope / (clipped + 1.0)


MSLE = LossSpec(
    "mean_squared_logarithmic_error",
    "MeanSquaredLogarithmicError",
    _msle,
    {},
    local_grad=_msle_grad,
    aliases=("msle",),
)


@register(MSLE)
def mean_squared_logarithmic_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Mean squared logarithmic error over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1}
       \big(\log(1 + \max(\hat y, \epsilon)) - \log(1 + \max(y, \epsilon))\big)^2

    Args:
      y_true: non-negative targets, shape ``(..., d)``; values below ``1e-7`` are clipped.
      y_pred: predictions, same shape; clipped the same way (zero gradient there).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``2 (log1p(p) - log1p(t)) / (d (1 + p))`` where ``y_pred > eps``, else 0.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.mean_squared_logarithmic_error(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))
      Array(0.24022643, dtype=float32)
    """
    return MSLE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# huber
# --------------------------------------------------------------------------


def _huber(y_true, y_pred, *, delta):
    error = y_pred - y_true
    abs_error = jnp.abs(error)
    quadratic = 0.5 * jnp.square(error)
    linear = delta * abs_error - 0.5 * jnp.square(delta)
    return jnp.mean(jnp.where(abs_error <= delta, quadratic, linear), axis=-1)


def _huber_grad(y_true, y_pred, *, delta):
    error = y_pred - y_true
    # where, not clip: at |e| == delta the plain formula's branch is the quadratic one.
    return jnp.where(jnp.abs(error) <= delta, error, delta * jnp.sign(error)) / _n(y_pred)


def _huber_validate(opts):
    check_interval("huber", "delta", opts["delta"], 0.0, None, low_open=True)


HUBER = LossSpec(
    "huber",
    "Huber",
    _huber,
    {"delta": 1.0},
    local_grad=_huber_grad,
    validate=_huber_validate,
    custom_jvp=True,
    aliases=("huber_loss",),
)


@register(HUBER)
def huber(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    delta: float | ArrayLike = 1.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Huber loss: quadratic near zero, linear beyond ``delta``.

    .. math::
      \ell = \operatorname{mean}_{-1}\begin{cases} \tfrac12 e^2 & |e| \le \delta \\
             \delta |e| - \tfrac12\delta^2 & \text{otherwise}\end{cases},\quad e = \hat y - y

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape.
      delta: where the loss turns linear; must be positive (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``clip(e, -delta, delta) / d`` per element, times the reduction's scale
    (closed form, used as the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.huber(jnp.zeros(3), jnp.array([0.5, 2.0, -3.0]))
      Array(1.375, dtype=float32)
    """
    return HUBER.evaluate(y_true, y_pred, sample_weight, reduction, delta=delta)


# --------------------------------------------------------------------------
# log_cosh
# --------------------------------------------------------------------------


def _log_cosh(y_true, y_pred):
    # Keras's x + softplus(-2x) - log 2, written on |x| (the same up to round-off): without
    # softplus's max and NaN select, XLA:CPU fuses it whole into the reduction instead of
    # materializing two (N, d) temporaries (9 to 6 bytes moved per y_pred byte, about 2x faster).
    a = jnp.abs(y_pred - y_true)
    return jnp.mean(a + jnp.log1p(jnp.exp(-2.0 * a)) - _LOG2, axis=-1)


def _log_cosh_grad(y_true, y_pred):
    return jnp.tanh(y_pred - y_true) / _n(y_pred)


LOG_COSH = LossSpec(
    "log_cosh",
    "LogCosh",
    _log_cosh,
    {},
    local_grad=_log_cosh_grad,
    custom_jvp=True,
    aliases=("logcosh",),
)


@register(LOG_COSH)
def log_cosh(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Logarithm of the hyperbolic cosine of the error, averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \log\cosh(\hat y - y),
       \text{ computed as } x + \operatorname{softplus}(-2x) - \log 2

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``tanh(y_pred - y_true) / d`` (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.log_cosh(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [0.0, 0.0]]))
      Array(0.1084452, dtype=float32)
    """
    return LOG_COSH.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# cosine_similarity
# --------------------------------------------------------------------------


def _inv_norm(x, axis):
    # Keras's l2 normalize: x * min(rsqrt(sum x^2), 1/eps); safe at a zero vector.
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    big = square_sum > EPSILON**2
    return jnp.where(big, jax.lax.rsqrt(jnp.where(big, square_sum, 1.0)), 1.0 / EPSILON), big


def _cosine(y_true, y_pred, *, axis):
    # Keras normalizes both inputs, then sums their product; scaling the dot product by the
    # two inverse norms is the same up to round-off and lets XLA read each input once for the three
    # sums and once for the gradient (11 to 7 bytes moved per y_pred byte).
    inv_t, _ = _inv_norm(y_true, axis)
    inv_p, _ = _inv_norm(y_pred, axis)
    dot = jnp.sum(y_true * y_pred, axis=axis, keepdims=True)
    return -jnp.squeeze(dot * inv_t * inv_p, axis)


def _cosine_grad(y_true, y_pred, *, axis):
    inv_t, _ = _inv_norm(y_true, axis)
    inv_p, big = _inv_norm(y_pred, axis)
    t = y_true * inv_t
    dot = jnp.sum(t * y_pred, axis=axis, keepdims=True)
    # d(p/|p|) projects out the component along p; a clipped norm is a constant.
    return -jnp.where(big, inv_p * t - inv_p**3 * dot * y_pred, inv_p * t)


def _cosine_axes(ndim, opts):
    return (opts["axis"] % ndim,)


def _cosine_validate(opts):
    axis = opts["axis"]
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"cosine_similarity: axis must be an int; received axis={axis!r}.")


def _cosine_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    canonical_axis(spec.name, opts["axis"], max(y_pred.ndim, 1))
    return y_true, y_pred


COSINE = LossSpec(
    "cosine_similarity",
    "CosineSimilarity",
    _cosine,
    {"axis": -1},
    static=frozenset({"axis"}),
    local_grad=_cosine_grad,
    reduced_axes=_cosine_axes,
    validate=_cosine_validate,
    prepare=_cosine_prepare,
)


@register(COSINE)
def cosine_similarity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Negative cosine similarity along ``axis`` (-1 is best, 0 orthogonal or a zero vector).

    .. math:: \ell = -\sum_{axis} \frac{y}{\max(\|y\|, \epsilon)} \cdot
       \frac{\hat y}{\max(\|\hat y\|, \epsilon)}

    Args:
      y_true: targets, shape ``(..., d, ...)``.
      y_pred: predictions, same shape.
      axis: the axis along which vectors are compared.
      sample_weight: weight of the per-sample shape (``y_pred``'s less ``axis``) or a prefix.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values for ``reduction="none"``.

    Gradient: ``-(t / |p| - (p . t) p / |p|^3)`` with ``t`` the normalized target.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.cosine_similarity(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))
      Array(-0.70710677, dtype=float32)
    """
    return COSINE.evaluate(y_true, y_pred, sample_weight, reduction, axis=axis)


# --------------------------------------------------------------------------
# poisson
# --------------------------------------------------------------------------


def _poisson(y_true, y_pred):
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1)


def _poisson_grad(y_true, y_pred):
    return (1.0 - y_true / (y_pred + EPSILON)) / _n(y_pred)


POISSON = LossSpec("poisson", "Poisson", _poisson, {}, local_grad=_poisson_grad)


@register(POISSON)
def poisson(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poisson negative log-likelihood (up to a constant), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \big(\hat y - y \log(\hat y + \epsilon)\big)

    Args:
      y_true: non-negative counts, shape ``(..., d)``.
      y_pred: predicted rates (non-negative), same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``(1 - y_true / (y_pred + eps)) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.poisson(jnp.array([[0.0]]), jnp.array([[2.0]]))
      Array(2., dtype=float32)
    """
    return POISSON.evaluate(y_true, y_pred, sample_weight, reduction)
