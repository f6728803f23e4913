"""Hinge losses: hinge, squared_hinge, categorical_hinge (Keras's formulas)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction, register


def _n(x: jax.Array) -> float:
    return float(x.shape[-1])


def _max0_slope(x: jax.Array) -> jax.Array:
    """d max(x, 0) / dx with autodiff's convention: 1 above, 0 below, 1/2 at the tie."""
    return jnp.where(x > 0, 1.0, jnp.where(x == 0, 0.5, 0.0)).astype(x.dtype)


def _signed_labels(y_true: jax.Array) -> jax.Array:
    """Keras's ``convert_binary_labels_to_hinge``: ``{0, 1}`` to ``{-1, 1}``.

    The test is batch-wide: labels are converted only when every one of them is
    0 or 1; a batch with a single other value (a -1, a 0.5) is used unchanged.
    """
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


# --------------------------------------------------------------------------
# hinge
# --------------------------------------------------------------------------


def _hinge(y_true, y_pred):
    t = _signed_labels(y_true)
    return jnp.mean(jnp.maximum(1.0 - t * y_pred, 0.0), axis=-1)


def _hinge_grad(y_true, y_pred):
    t = _signed_labels(y_true)
    return -t * _max0_slope(1.0 - t * y_pred) / _n(y_pred)


HINGE = LossSpec("hinge", "Hinge", _hinge, {}, local_grad=_hinge_grad)


@register(HINGE)
def hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Hinge loss, averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \max(1 - t \hat y, 0),\quad
       t = \begin{cases} 2y - 1 & \text{every label of the batch is 0 or 1} \\
       y & \text{otherwise} \end{cases}

    As in Keras, ``{0, 1}`` labels are converted to ``{-1, 1}`` only when *all*
    labels of the call are 0 or 1 (a batch-wide test); ``{-1, 1}`` labels are
    used as they are.

    Args:
      y_true: labels in ``{-1, 1}`` (or ``{0, 1}``), shape ``(..., d)``.
      y_pred: predicted scores, same shape (Keras's rank rule: ``(N,)`` against ``(N, 1)``).
      sample_weight: weight of the per-sample loss's shape ``(...)`` or a leading prefix.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-t / d`` where ``t y_pred < 1``, 0 where it is above (``-t / (2d)``
    exactly at the kink, autodiff's choice of subgradient).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.hinge(jnp.array([[1.0, -1.0]]), jnp.array([[0.5, 0.5]]))
      Array(1., dtype=float32)
    """
    return HINGE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# squared_hinge
# --------------------------------------------------------------------------


def _squared_hinge(y_true, y_pred):
    t = _signed_labels(y_true)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - t * y_pred, 0.0)), axis=-1)


def _squared_hinge_grad(y_true, y_pred):
    t = _signed_labels(y_true)
    return (-2.0 / _n(y_pred)) * t * jnp.maximum(1.0 - t * y_pred, 0.0)


SQUARED_HINGE = LossSpec("squared_hinge", "SquaredHinge", _squared_hinge, {}, local_grad=_squared_hinge_grad)


@register(SQUARED_HINGE)
def squared_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Squared hinge loss, averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \max(1 - t \hat y, 0)^2

    with ``t`` the labels, ``{0, 1}`` converted to ``{-1, 1}`` batch-wide as in
    :func:`hinge`.

    Args:
      y_true: labels in ``{-1, 1}`` (or ``{0, 1}``), shape ``(..., d)``.
      y_pred: predicted scores, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-2 t max(1 - t y_pred, 0) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.squared_hinge(jnp.array([[1.0, 0.0]]), jnp.array([[0.5, 0.5]]))
      Array(1.25, dtype=float32)
    """
    return SQUARED_HINGE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# categorical_hinge
# --------------------------------------------------------------------------


def _categorical_hinge(y_true, y_pred):
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, 0.0)


def _categorical_hinge_grad(y_true, y_pred):
    masked = (1.0 - y_true) * y_pred
    neg = jnp.max(masked, axis=-1, keepdims=True)
    pos = jnp.sum(y_true * y_pred, axis=-1, keepdims=True)
    # The max's gradient is shared evenly among tied entries, as autodiff does.
    at_max = (masked == neg).astype(y_pred.dtype)
    d_neg = (1.0 - y_true) * at_max / jnp.sum(at_max, axis=-1, keepdims=True)
    return _max0_slope(neg - pos + 1.0) * (d_neg - y_true)


CATEGORICAL_HINGE = LossSpec(
    "categorical_hinge", "CategoricalHinge", _categorical_hinge, {}, local_grad=_categorical_hinge_grad
)


@register(CATEGORICAL_HINGE)
def categorical_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Keras's categorical hinge loss over the last (class) axis.

    .. math:: \ell = \max(\mathrm{neg} - \mathrm{pos} + 1, 0),\quad
       \mathrm{pos} = \sum_c y_c \hat y_c,\quad \mathrm{neg} = \max_c (1 - y_c) \hat y_c

    This is Keras's formula, kept as Keras has it: ``neg`` is a max over
    ``(1 - y) * y_pred``, so the true class enters it with a score of 0 (a
    sample whose other scores are all negative has ``neg = 0``). The standard
    Crammer-Singer multiclass hinge is :func:`multiclass_hinge`.

    Args:
      y_true: one-hot (or ``{-1, 1}``) targets, shape ``(..., C)``.
      y_pred: predicted scores, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: where the hinge is active, ``(1 - y)`` on the entry that attains
    ``neg`` (split evenly among ties) minus ``y``; 0 where it is inactive.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.categorical_hinge(jnp.array([[0.0, 1.0, 0.0]]), jnp.array([[0.3, 0.5, 0.1]]))
      Array(0.8, dtype=float32)
    """
    return CATEGORICAL_HINGE.evaluate(y_true, y_pred, sample_weight, reduction)
