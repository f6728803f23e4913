"""Segmentation losses: dice and tversky, over a chosen set of axes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    Axes,
    Bench,
    Example,
    NonNegative,
    Peer,
    Reduction,
    SampleWeight,
    canonical_axes,
    register,
)
from ._inputs import BINARY, PROBABILITIES


def _reduced_axes(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return canonical_axes("", opts["axis"], ndim)


def _sum(x: jax.Array, axes: tuple[int, ...], keepdims: bool = False) -> jax.Array:
    return jnp.sum(x, axis=axes, keepdims=keepdims)


def _optax_dice(t, p, *, alpha=0.5, beta=0.5, axis):
    # optax's dice_loss takes probability distributions along a class axis, or logits with a
    # unit class axis (then a sigmoid): the logits of y_pred. With no smoothing, its alpha
    # weights false positives (pred_sum - intersection) and beta false negatives, as jaxloss's
    # tversky; Keras's epsilon in the denominator is the only difference (1e-7 against sums of
    # order 1).
    logits = jnp.log(p) - jnp.log1p(-p)
    axes = _reduced_axes(p.ndim, {"axis": axis})
    return optax.losses.dice_loss(
        logits[..., None],
        t[..., None],
        smooth=0.0,
        alpha=alpha,
        beta=beta,
        reduction="mean",
        axis=axes,  # pyright: ignore[reportArgumentType]  (optax sums over a tuple of axes; its hint says ArrayLike)
    )


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


_MASKS = {"y_true": BINARY}


@register(
    formula=_dice,
    local_grad=_dice_grad,
    gradient="rule",
    inputs={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
    examples=(
        Example(shape=(4, 6), inputs=_MASKS),
        Example(shape=(2, 4, 4, 3), inputs=_MASKS, label="rank4"),
        Example({"axis": (1, 2, 3)}, shape=(3, 4, 4, 2), inputs=_MASKS),
        Example({"axis": (1, 2)}, shape=(3, 5, 4), label="soft"),
        Example({"axis": -1}, shape=(3, 4, 5), inputs=_MASKS),
        Example({"axis": 1}, shape=(5, 6), inputs=_MASKS),
        Example({"axis": 0}, shape=(6, 3), label="soft"),
        Example({"axis": (0, 2)}, shape=(3, 4, 5), inputs=_MASKS),
        Example({"axis": 1}, shape=(6, 1), true_shape=(6,), inputs=_MASKS, peers=False, label="N_vs_N1"),
    ),
    reduced_axes=_reduced_axes,
    keras="Dice",
    peers=(Peer("optax", lambda t, p, axis: _optax_dice(t, p, axis=axis), "dice_loss(p, t, smooth=0)"),),
    # Per-row overlap.
    bench=Bench(options={"axis": -1}),
)
def dice(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    axis: Axes = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Dice loss: one minus the soft Dice coefficient over ``axis``.

    .. math:: \ell = 1 - \frac{2 \sum_{axis} y \hat y}{\sum_{axis} y + \sum_{axis} \hat y + \epsilon},
       \quad \epsilon = 10^{-7}

    Args:
      y_true: targets (masks) in ``[0, 1]``, any shape of rank >= 1.
      y_pred: predicted probabilities, same shape (Keras's rank rule applies).
      axis: the axes summed over (static): ``None`` (default) sums everything, giving
        one scalar loss that every reduction returns as it is (as Keras does); an int
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
      >>> jaxloss.dice(y_true, y_pred, axis=1, reduction="none").round(5)
      Array([0.5    , 0.75758], dtype=float32)
    """
    ...


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


def _keras_tversky(options: dict[str, Any]) -> dict[str, Any]:
    # Keras 3.15's code swaps alpha and beta (its "fp" is sum((1 - y_pred) * y_true)).
    return {"alpha": options.get("beta", 0.5), "beta": options.get("alpha", 0.5), "axis": options.get("axis")}


@register(
    formula=_tversky,
    local_grad=_tversky_grad,
    gradient="rule",
    inputs={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
    examples=(
        Example(shape=(4, 6), inputs=_MASKS),
        Example({"axis": (1, 2, 3)}, shape=(3, 4, 4, 2), inputs=_MASKS),
        Example({"alpha": 0.3, "beta": 0.7}, shape=(4, 6), inputs=_MASKS),
        Example({"alpha": 0.3, "beta": 0.7, "axis": (1, 2)}, shape=(3, 5, 4), inputs=_MASKS),
        Example({"alpha": 0.8, "beta": 0.2, "axis": -1}, shape=(3, 4, 5), label="soft"),
        Example({"alpha": 1.0, "beta": 0.0, "axis": 1}, shape=(5, 6), inputs=_MASKS),
        Example({"alpha": 0.0, "beta": 2.0, "axis": (0, 2)}, shape=(3, 4, 5), label="soft"),
        Example(
            {"alpha": 0.6, "beta": 0.4, "axis": 1},
            shape=(6, 1),
            true_shape=(6,),
            inputs=_MASKS,
            peers=False,
            label="N_vs_N1",
        ),
    ),
    reduced_axes=_reduced_axes,
    keras="Tversky",
    keras_options=_keras_tversky,
    peers=(
        Peer(
            "optax",
            lambda t, p, alpha, beta, axis: _optax_dice(t, p, alpha=alpha, beta=beta, axis=axis),
            "dice_loss(p, t, smooth=0, alpha, beta)",
        ),
    ),
    bench=Bench(options={"axis": -1}),
)
def tversky(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: NonNegative = 0.5,
    beta: NonNegative = 0.5,
    axis: Axes = None,
    sample_weight: SampleWeight = None,
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
      alpha: weight of false positives, a scalar ``>= 0`` (may be traced).
      beta: weight of false negatives, a scalar ``>= 0`` (may be traced).
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
    ...
