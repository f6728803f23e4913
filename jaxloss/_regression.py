"""Regression losses: mse, mae, mape, msle, huber, smooth_l1, log_cosh, cosine_similarity."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    POLYNOMIAL,
    TRANSCENDENTAL,
    Axis,
    Bench,
    Example,
    NonNegative,
    Peer,
    Positive,
    Reduction,
    SampleWeight,
    abs_slope,
    nan_abs,
    option_axis,
    register,
    width,
)
from ._inputs import NON_NEGATIVE, POSITIVE, REAL

_LOG2 = math.log(2.0)

# The examples every elementwise regression loss is checked on: a matrix, rank 3, and
# Keras's rank rule ((N,) targets against (N, 1) predictions).
_ELEMENTWISE = (
    Example(),
    Example(shape=(3, 4, 5), label="rank3"),
    Example(shape=(7, 1), true_shape=(7,), peers=False, label="N_vs_N1"),
)


def _kinked(examples: tuple[Example, ...]) -> tuple[Example, ...]:
    """The same examples for a loss with a kink (no second-order checks at random points)."""
    return tuple(Example(**{**e.__dict__, "smooth": False}) for e in examples)


# --------------------------------------------------------------------------
# mean_squared_error
# --------------------------------------------------------------------------


def _mse(y_true, y_pred):
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


def _mse_grad(y_true, y_pred):
    return (2.0 / width(y_pred)) * (y_pred - y_true)


@register(
    formula=_mse,
    local_grad=_mse_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=_ELEMENTWISE,
    keras="MeanSquaredError",
    aliases=("mse",),
    peers=(
        Peer("optax", lambda t, p: optax.losses.squared_error(p, t).mean(-1), "squared_error(p, t).mean(-1)"),
        Peer("torch", lambda torch, F, t, p: F.mse_loss(p, t, reduction="none").mean(-1), "F.mse_loss"),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def mean_squared_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


# --------------------------------------------------------------------------
# mean_absolute_error
# --------------------------------------------------------------------------


def _mae(y_true, y_pred):
    return jnp.mean(nan_abs(y_true - y_pred), axis=-1)


def _mae_grad(y_true, y_pred):
    return -abs_slope(y_true - y_pred) / width(y_pred)


@register(
    formula=_mae,
    local_grad=_mae_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=_kinked(_ELEMENTWISE),
    keras="MeanAbsoluteError",
    aliases=("mae",),
    peers=(Peer("torch", lambda torch, F, t, p: F.l1_loss(p, t, reduction="none").mean(-1), "F.l1_loss"),),
    bench=Bench(family=POLYNOMIAL),
)
def mean_absolute_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


# --------------------------------------------------------------------------
# mean_absolute_percentage_error
# --------------------------------------------------------------------------


def _mape(y_true, y_pred):
    diff = nan_abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))
    return 100.0 * jnp.mean(diff, axis=-1)


def _mape_grad(y_true, y_pred):
    scale = jnp.maximum(jnp.abs(y_true), EPSILON)
    return -(100.0 / width(y_pred)) * abs_slope((y_true - y_pred) / scale) / scale


@register(
    formula=_mape,
    local_grad=_mape_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=(
        Example(inputs={"y_true": POSITIVE}, smooth=False),
        Example(shape=(3, 2, 4), label="rank3", smooth=False),
    ),
    keras="MeanAbsolutePercentageError",
    aliases=("mape",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p: 100.0 * ((t - p).abs() / t.abs().clamp(min=1e-7)).mean(-1),
            "100 |t - p| / max(|t|, 1e-7)",
        ),
    ),
)
def mean_absolute_percentage_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


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
    return (2.0 / width(y_pred)) * diff * slope / (clipped + 1.0)


@register(
    formula=_msle,
    local_grad=_msle_grad,
    gradient="reference",
    inputs={"y_true": NON_NEGATIVE, "y_pred": NON_NEGATIVE},
    examples=(Example(), Example(shape=(2, 3, 4), label="rank3")),
    keras="MeanSquaredLogarithmicError",
    aliases=("msle",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p: F.mse_loss(
                torch.log1p(p.clamp(min=1e-7)), torch.log1p(t.clamp(min=1e-7)), reduction="none"
            ).mean(-1),
            "F.mse_loss(log1p(p), log1p(t))",
        ),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def mean_squared_logarithmic_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


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
    return jnp.where(jnp.abs(error) <= delta, error, delta * jnp.sign(error)) / width(y_pred)


@register(
    formula=_huber,
    local_grad=_huber_grad,
    gradient="rule",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=_kinked(
        (
            Example(),
            Example({"delta": 0.3}, shape=(2, 3, 4), label="rank3"),
            Example({"delta": 2.5}, shape=(5, 1), true_shape=(5,), peers=False, label="N_vs_N1"),
        )
    ),
    keras="Huber",
    aliases=("huber_loss",),
    peers=(
        Peer(
            "optax", lambda t, p, delta: optax.losses.huber_loss(p, t, delta=delta).mean(-1), "huber_loss(p, t, delta)"
        ),
        Peer(
            "torch",
            lambda torch, F, t, p, delta: F.huber_loss(p, t, reduction="none", delta=delta).mean(-1),
            "F.huber_loss",
        ),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def huber(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    delta: Positive = 1.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Huber loss: quadratic near zero, linear beyond ``delta``.

    .. math::
      \ell = \operatorname{mean}_{-1}\begin{cases} \tfrac12 e^2 & |e| \le \delta \\
             \delta |e| - \tfrac12\delta^2 & \text{otherwise}\end{cases},\quad e = \hat y - y

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predictions, same shape.
      delta: where the loss turns linear; a positive scalar (may be traced).
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
    ...


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
    return jnp.where(jnp.abs(error) < beta, error / safe_beta, abs_slope(error)) / width(y_pred)


@register(
    formula=_smooth_l1,
    local_grad=_smooth_l1_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=_kinked(
        (Example({"beta": 0.5}), Example({"beta": 0.0}, shape=(2, 3, 4), label="l1"), Example(label="default"))
    ),
    aliases=("smooth_l1_loss",),
    peers=(
        Peer(
            "optax",
            lambda t, p, beta: optax.losses.huber_loss(p, t, delta=beta).mean(-1) / beta,
            "huber_loss(p, t, beta) / beta",
            applies=lambda o: o["beta"] > 0,
        ),
        Peer(
            "torch",
            lambda torch, F, t, p, beta: F.smooth_l1_loss(p, t, reduction="none", beta=beta).mean(-1),
            "F.smooth_l1_loss",
        ),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def smooth_l1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    beta: NonNegative = 1.0,
    sample_weight: SampleWeight = None,
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
      beta: where the loss turns linear; a non-negative scalar (may be traced).
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
    ...


# --------------------------------------------------------------------------
# log_cosh
# --------------------------------------------------------------------------


def _log_cosh(y_true, y_pred):
    # Keras's x + softplus(-2x) - log 2, written on |x| (the same up to round-off): without
    # softplus's max and NaN select, XLA:CPU fuses it whole into the reduction instead of
    # materializing two (N, d) temporaries.
    a = jnp.abs(y_pred - y_true)
    return jnp.mean(a + jnp.log1p(jnp.exp(-2.0 * a)) - _LOG2, axis=-1)


def _log_cosh_grad(y_true, y_pred):
    return jnp.tanh(y_pred - y_true) / width(y_pred)


@register(
    formula=_log_cosh,
    local_grad=_log_cosh_grad,
    gradient="rule",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=(Example(), Example(shape=(2, 3, 4), label="rank3")),
    keras="LogCosh",
    aliases=("logcosh",),
    peers=(Peer("optax", lambda t, p: optax.losses.log_cosh(p, t).mean(-1), "log_cosh(p, t)"),),
    bench=Bench(family=TRANSCENDENTAL),
)
def log_cosh(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


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
    # two inverse norms is the same up to round-off and lets XLA read each input once for the
    # three sums and once for the gradient.
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


@register(
    formula=_cosine,
    local_grad=_cosine_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=(Example(), Example({"axis": 0}, shape=(4, 3)), Example({"axis": 1}, shape=(2, 4, 3))),
    reduced_axes=option_axis,
    keras="CosineSimilarity",
    peers=(
        Peer(
            "optax",
            lambda t, p, axis: -optax.losses.cosine_similarity(p, t, epsilon=1e-7),
            "-cosine_similarity(p, t)",
            applies=lambda o: o["axis"] == -1,
        ),
        Peer(
            "torch",
            lambda torch, F, t, p, axis: -F.cosine_similarity(p, t, dim=axis, eps=1e-7),
            "-F.cosine_similarity",
        ),
    ),
)
def cosine_similarity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    axis: Axis = -1,
    sample_weight: SampleWeight = None,
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
    ...
