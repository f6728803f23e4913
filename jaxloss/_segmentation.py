"""Segmentation losses: dice and tversky, over a chosen set of axes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import EPSILON, LossSpec, Reduction, check_interval, default_prepare, register

Axis = int | tuple[int, ...] | None


def _check_axis_option(loss: str, axis: Any) -> None:
    """``axis`` is None, an int or a tuple (or list) of ints; checked before tracing."""
    if axis is None:
        return
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not items and isinstance(axis, (tuple, list)):
        raise ValueError(f"{loss}: axis must be None, an int or a non-empty tuple of ints; received axis={axis!r}.")
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int):
            raise ValueError(f"{loss}: axis must be None, an int or a tuple of ints; received axis={axis!r}.")


def _canonical_axes(loss: str, axis: Axis, ndim: int) -> tuple[int, ...]:
    """The sorted, non-negative axes that ``axis`` names for an input of rank ``ndim``."""
    if axis is None:
        return tuple(range(ndim))
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if not -ndim <= a < ndim:
            raise ValueError(f"{loss}: axis={axis!r} is out of range for an input of rank {ndim}.")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{loss}: axis={axis!r} names the same axis twice.")
    return tuple(sorted(out))


def _reduced_axes(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return _canonical_axes("", opts["axis"], ndim)


def _prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    _canonical_axes(spec.name, opts["axis"], y_pred.ndim)
    return y_true, y_pred


def _sum(x: jax.Array, axes: tuple[int, ...], keepdims: bool = False) -> jax.Array:
    return jnp.sum(x, axis=axes, keepdims=keepdims)


# --------------------------------------------------------------------------
# dice
# --------------------------------------------------------------------------


def _dice(y_true, y_pred, *, axis):
    axes = _reduced_axes(y_pred.ndim, {"axis": axis})
    intersection = _sum(y_true * y_pred, axes)
    denominator = _sum(y_true, axes) + _sum(y_pred, axes) + EPSILON
    return 1.0 - 2.0 * intersection / denominator


def _dice_grad(y_true, y_pred, *, axis):
    axes = _reduced_axes(y_pred.ndim, {"axis": axis})
    intersection = _sum(y_true * y_pred, axes, keepdims=True)
    denominator = _sum(y_true, axes, keepdims=True) + _sum(y_pred, axes, keepdims=True) + EPSILON
    # Quotient rule: d(I / S) = (y_true S - I) / S^2, since dI = y_true and dS = 1.
    return -2.0 * (y_true * denominator - intersection) / jnp.square(denominator)


def _dice_validate(opts):
    _check_axis_option("dice", opts["axis"])


DICE = LossSpec(
    "dice",
    "Dice",
    _dice,
    {"axis": None},
    static=frozenset({"axis"}),
    local_grad=_dice_grad,
    reduced_axes=_reduced_axes,
    validate=_dice_validate,
    prepare=_prepare,
    custom_jvp=True,
)


@register(DICE)
def dice(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    axis: Axis = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Dice loss: one minus the soft Dice coefficient over ``axis``.

    .. math:: \ell = 1 - \frac{2 \sum_{axis} y \hat y}{\sum_{axis} y + \sum_{axis} \hat y + \epsilon},
       \quad \epsilon = 10^{-7}

    Args:
      y_true: targets (masks) in ``[0, 1]``, any shape of rank >= 1.
      y_pred: predicted probabilities, same shape (Keras's rank rule applies).
      axis: the axes summed over: ``None`` (default) sums everything, giving one
        scalar loss that every reduction returns as it is (as Keras does); an int
        or a tuple, e.g. ``(1, 2, 3)`` for a per-image ``(B,)`` loss on
        ``(B, H, W, C)`` masks.
      sample_weight: weight of the per-sample loss's shape (``y_pred``'s less
        ``axis``) or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for
      ``reduction="none"``.

    Gradient: ``-2 (y_true S - I) / S^2`` with ``I`` the intersection and ``S`` the
    denominator of its slice (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
      >>> y_pred = jnp.array([[0.0, 1.0, 0.0, 1.0], [0.4, 0.0, 0.0, 0.9]])
      >>> jaxloss.dice(y_true, y_pred, axis=1, reduction="none")
      Array([0.5       , 0.75757575], dtype=float32)
    """
    return DICE.evaluate(y_true, y_pred, sample_weight, reduction, axis=axis)


# --------------------------------------------------------------------------
# tversky
# --------------------------------------------------------------------------


def _tversky_parts(y_true, y_pred, alpha, beta, axes, keepdims):
    intersection = _sum(y_true * y_pred, axes, keepdims)
    false_pos = _sum(y_pred * (1.0 - y_true), axes, keepdims)
    false_neg = _sum((1.0 - y_pred) * y_true, axes, keepdims)
    denominator = intersection + false_neg * beta + false_pos * alpha + EPSILON
    return intersection, denominator


def _tversky(y_true, y_pred, *, alpha, beta, axis):
    axes = _reduced_axes(y_pred.ndim, {"axis": axis})
    intersection, denominator = _tversky_parts(y_true, y_pred, alpha, beta, axes, False)
    return 1.0 - intersection / denominator


def _tversky_grad(y_true, y_pred, *, alpha, beta, axis):
    axes = _reduced_axes(y_pred.ndim, {"axis": axis})
    intersection, denominator = _tversky_parts(y_true, y_pred, alpha, beta, axes, True)
    # dI = y_true, dFP = 1 - y_true, dFN = -y_true.
    d_denominator = y_true + alpha * (1.0 - y_true) - beta * y_true
    return -(y_true * denominator - intersection * d_denominator) / jnp.square(denominator)


def _tversky_validate(opts):
    check_interval("tversky", "alpha", opts["alpha"], 0.0, None)
    check_interval("tversky", "beta", opts["beta"], 0.0, None)
    _check_axis_option("tversky", opts["axis"])


TVERSKY = LossSpec(
    "tversky",
    "Tversky",
    _tversky,
    {"alpha": 0.5, "beta": 0.5, "axis": None},
    static=frozenset({"axis"}),
    local_grad=_tversky_grad,
    reduced_axes=_reduced_axes,
    validate=_tversky_validate,
    prepare=_prepare,
    custom_jvp=True,
)


@register(TVERSKY)
def tversky(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: float | ArrayLike = 0.5,
    beta: float | ArrayLike = 0.5,
    axis: Axis = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Tversky loss: Dice with separate weights on false positives and false negatives.

    .. math:: \ell = 1 - \frac{TP}{TP + \alpha\, FP + \beta\, FN + \epsilon},\quad
       TP = \sum_{axis} y \hat y,\ FP = \sum_{axis} \hat y (1 - y),\ FN = \sum_{axis} (1 - \hat y) y

    ``alpha`` weights false positives and ``beta`` false negatives, as Keras
    documents and Salehi et al. (2017) define. This differs from Keras 3.15's
    code, which swaps them: ``keras.losses.Tversky(alpha=a, beta=b)`` equals
    ``jaxloss.tversky(alpha=b, beta=a)``. With the default ``0.5, 0.5`` (the Dice
    loss, up to epsilon) nothing changes.

    Args:
      y_true: targets (masks) in ``[0, 1]``, any shape of rank >= 1.
      y_pred: predicted probabilities, same shape.
      alpha: weight of false positives, ``>= 0`` (may be a traced scalar).
      beta: weight of false negatives, ``>= 0`` (may be a traced scalar).
      axis: the axes summed over, as in :func:`dice` (``None``: one scalar loss).
      sample_weight: weight of the per-sample loss's shape or a leading prefix.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for
      ``reduction="none"``.

    Gradient: ``-(y_true D - TP (y_true + alpha (1 - y_true) - beta y_true)) / D^2``
    with ``D`` the denominator of its slice (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[1.0, 1.0, 0.0, 0.0]])
      >>> y_pred = jnp.array([[1.0, 0.0, 1.0, 1.0]])  # TP = 1, FP = 2, FN = 1
      >>> jaxloss.tversky(y_true, y_pred, alpha=0.25, beta=1.0, axis=1)  # 1 - 1 / (1 + 0.5 + 1)
      Array(0.6, dtype=float32)
    """
    return TVERSKY.evaluate(y_true, y_pred, sample_weight, reduction, alpha=alpha, beta=beta, axis=axis)
