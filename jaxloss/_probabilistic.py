"""Probabilistic losses: binary/categorical/sparse crossentropies, focal, GCE, KL.

Every loss follows Keras 3 (JAX backend): probabilities are clipped to
``[1e-7, 1 - 1e-7]`` (zero gradient where clipped; half at the exact edge, as
``jnp.clip``), categorical probabilities are first normalised by their sum,
binary label smoothing squeezes targets towards 0.5 and categorical smoothing
spreads ``label_smoothing / num_classes`` over the classes.

Where Keras is unsafe this module differs, and says so in each docstring:
focal losses from logits are computed in log space, a ``-inf`` logit whose
target is 0 contributes nothing to crossentropy from logits, sparse
crossentropy takes any class axis, integer labels are never cast to float.

Options beyond Keras, with optax's and PyTorch's semantics (their defaults keep
Keras's values): ``class_weight``, ``where``, ``z_loss`` and ``logit_soft_cap`` on
categorical and sparse crossentropy (and ``label_smoothing`` on sparse labels),
``pos_weight`` on binary crossentropy, ``log_input`` and ``log_target`` on the KL
divergence.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    LossSpec,
    Reduction,
    Weighted,
    canonical_axis,
    check_bool,
    check_int,
    check_interval,
    default_prepare,
    is_concrete,
    is_static_zero,
    register,
    shape_error,
    sparse_prepare,
)

_HIGH = 1.0 - EPSILON

# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def _as(x: Any, like: jax.Array) -> jax.Array:
    """A numeric option in the compute dtype (never upcasts, never a float64 constant)."""
    return jnp.asarray(x, like.dtype)


def _clip_slope(x: jax.Array, low: float, high: float) -> jax.Array:
    """d clip(x, low, high) / dx as ``jnp.clip`` differentiates: 1 inside, 1/2 on an edge, 0 outside."""
    inside = (x > low) & (x < high)
    edge = (x == low) | (x == high)
    return jnp.where(inside, 1.0, jnp.where(edge, 0.5, 0.0))


def _smooth_binary(y_true: jax.Array, label_smoothing: Any) -> jax.Array:
    return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing


def _smooth_categorical(y_true: jax.Array, label_smoothing: Any, axis: int) -> jax.Array:
    return y_true * (1.0 - label_smoothing) + label_smoothing / float(y_true.shape[axis])


def _pow(x: jax.Array, exponent: Any) -> jax.Array:
    """``x ** exponent``; a small whole Python exponent (focal's default gamma=2) is multiplications, not exp/log."""
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and float(exponent).is_integer():
        if 0 <= exponent <= 8:
            return jax.lax.integer_pow(x, int(exponent))
    return jnp.power(x, _as(exponent, x))


def _sigmoid_parts(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(sigmoid(z), sigmoid(-z), log1p(exp(-|z|)))`` from one ``exp(-|z|)``: exact in both tails."""
    e = jnp.exp(-jnp.abs(z))
    r = 1.0 / (1.0 + e)
    er = e * r
    up = z >= 0
    return jnp.where(up, r, er), jnp.where(up, er, r), jnp.log1p(e)


def _safe_pow(x: jax.Array, exponent: jax.Array) -> jax.Array:
    """``x ** exponent`` with ``0 ** e`` read as 0 for ``e != 0`` (also ``e < 0``) and 1 for ``e == 0``."""
    nonzero = x != 0
    return jnp.where(nonzero, jnp.power(jnp.where(nonzero, x, 1.0), exponent), jnp.where(exponent == 0, 1.0, 0.0))


def _normalised(y_pred: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    total = jnp.sum(y_pred, axis=axis, keepdims=True)
    return y_pred / total, total


def _through_normalisation(g: jax.Array, out: jax.Array, total: jax.Array, axis: int) -> jax.Array:
    """Chain rule through ``out = y / sum(y)``: ``(g - sum(g * out)) / sum(y)``."""
    return (g - jnp.sum(g * out, axis=axis, keepdims=True)) / total


def _masked_log_probs(t: jax.Array, log_probs: jax.Array) -> jax.Array:
    """``t * log_probs`` with 0 where ``t == 0`` (a ``-inf`` logit of a class with no target mass)."""
    return t * jnp.where(t != 0, log_probs, 0.0)


def _axis_of(opts: Mapping[str, Any], ndim: int) -> int:
    return opts["axis"] % ndim


def _class_axis(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return (_axis_of(opts, ndim),)


def _check_axis_option(loss: str, opts: Mapping[str, Any]) -> None:
    check_int(loss, "axis", opts["axis"])


def _check_smoothing(loss: str, opts: Mapping[str, Any]) -> None:
    check_interval(loss, "label_smoothing", opts["label_smoothing"], 0.0, 1.0)


def _check_focal(loss: str, opts: Mapping[str, Any]) -> None:
    check_interval(loss, "alpha", opts["alpha"], 0.0, 1.0)
    check_interval(loss, "gamma", opts["gamma"], 0.0, None)


def _axis_prepare(spec: LossSpec, y_true: jax.Array, y_pred: jax.Array, opts: Mapping[str, Any]):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    canonical_axis(spec.name, opts["axis"], y_pred.ndim)
    return y_true, y_pred


def _labels(y_true: jax.Array) -> jax.Array:
    # Float labels (Keras style) are truncated to int32 as Keras does; integer labels stay as they are.
    return y_true if jnp.issubdtype(y_true.dtype, jnp.integer) else y_true.astype(jnp.int32)


def _one_hot(labels: jax.Array, shape: tuple[int, ...], axis: int) -> jax.Array:
    """Boolean one-hot along ``axis``; an out-of-range label selects nothing (as Keras's one_hot)."""
    classes = jax.lax.broadcasted_iota(jnp.int32, shape, axis)
    return jnp.expand_dims(labels, axis) == classes


def _along(vector: Any, like: jax.Array, ax: int) -> jax.Array:
    """A scalar, or a ``(C,)`` per-class vector laid along the class axis ``ax`` of ``like``."""
    vector = _as(vector, like)
    if vector.ndim == 1:
        shape = [1] * like.ndim
        shape[ax] = vector.shape[0]
        vector = vector.reshape(shape)
    return vector


def _option_shape(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value))


def _check_class_vector(spec: LossSpec, name: str, value: Any, y_pred: jax.Array, ax: int, *, scalar: bool) -> None:
    """A per-class option must hold one value per class of ``y_pred``'s class axis (or be a scalar)."""
    if value is None:
        return
    classes = y_pred.shape[ax]
    allowed = ((), (1,), (classes,)) if scalar else ((classes,),)
    shape = _option_shape(value)
    if shape not in allowed:
        what = "a scalar or " if scalar else ""
        raise ValueError(
            f"{spec.name}: {name} must be {what}one value per class, shape ({classes},) for the class axis "
            f"{ax} of y_pred; received {name}.shape={shape}, y_pred.shape={tuple(y_pred.shape)}."
        )


# --------------------------------------------------------------------------
# binary_crossentropy
# --------------------------------------------------------------------------


def _bce_from_logits(t, z, log1p_e, positive):
    """``-positive log sigmoid(z) - (1 - t) log sigmoid(-z)`` from ``log1p_e = log1p(exp(-|z|))``.

    ``-log sigmoid(z) = log1p_e - min(z, 0)`` and ``-log sigmoid(-z) = log1p_e + max(z, 0)``:
    one exp and one log1p for both terms. Summed in this order, a confident right answer
    keeps its tiny loss (``t = 1, z = 20``: exactly ``log1p_e``) instead of losing it to
    ``softplus(z) - t z``'s cancellation; and no negated copy of ``z`` is made.
    """
    low, high = jnp.minimum(z, 0.0), jnp.maximum(z, 0.0)
    if positive is t:
        return (high - t * high - t * low) + log1p_e
    return positive * (log1p_e - low) + (1.0 - t) * (log1p_e + high)


def _bce_elementwise(t, y_pred, from_logits, positive=None):
    """Elementwise crossentropy; ``positive`` (default ``t``) weighs the positive term (``pos_weight * t``)."""
    positive = t if positive is None else positive
    if from_logits:
        return _bce_from_logits(t, y_pred, jnp.log1p(jnp.exp(-jnp.abs(y_pred))), positive)
    p = jnp.clip(y_pred, EPSILON, _HIGH)
    return -(positive * jnp.log(p) + (1.0 - t) * jnp.log(1.0 - p))


def _bce_elementwise_grad(t, y_pred, from_logits, positive=None):
    if from_logits:
        if positive is None:
            return jax.nn.sigmoid(y_pred) - t
        # -pw t (1 - sigmoid) + (1 - t) sigmoid
        return (1.0 - t + positive) * jax.nn.sigmoid(y_pred) - positive
    positive = t if positive is None else positive
    p = jnp.clip(y_pred, EPSILON, _HIGH)
    return _clip_slope(y_pred, EPSILON, _HIGH) * ((1.0 - t) / (1.0 - p) - positive / p)


def _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis):
    t = _smooth_binary(y_true, _as(label_smoothing, y_pred))
    positive = None if pos_weight is None else _along(pos_weight, y_pred, axis % y_pred.ndim) * t
    return t, positive


def _bce(y_true, y_pred, *, from_logits, label_smoothing, axis, pos_weight):
    t, positive = _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis)
    return jnp.mean(_bce_elementwise(t, y_pred, from_logits, positive), axis=axis)


def _bce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis, pos_weight):
    t, positive = _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis)
    return _bce_elementwise_grad(t, y_pred, from_logits, positive) / float(y_pred.shape[axis])


def _bce_validate(opts):
    check_bool("binary_crossentropy", "from_logits", opts["from_logits"])
    _check_smoothing("binary_crossentropy", opts)
    _check_axis_option("binary_crossentropy", opts)
    check_interval("binary_crossentropy", "pos_weight", opts["pos_weight"], 0.0, None)


def _bce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = _axis_prepare(spec, y_true, y_pred, opts)
    _check_class_vector(spec, "pos_weight", opts["pos_weight"], y_pred, opts["axis"] % y_pred.ndim, scalar=True)
    return y_true, y_pred


BCE = LossSpec(
    "binary_crossentropy",
    "BinaryCrossentropy",
    _bce,
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1, "pos_weight": None},
    static=frozenset({"from_logits", "axis"}),
    local_grad=_bce_grad,
    reduced_axes=_class_axis,
    validate=_bce_validate,
    prepare=_bce_prepare,
    custom_jvp=True,
    aliases=("bce",),
)


@register(BCE)
def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: bool = False,
    label_smoothing: float | ArrayLike = 0.0,
    axis: int = -1,
    pos_weight: float | ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Binary crossentropy, averaged over ``axis``.

    .. math::
      \ell = -\operatorname{mean}_{axis}\big(w\, t \log p + (1 - t)\log(1 - p)\big),\quad
      t = y(1 - s) + s/2

    with ``p = clip(y_pred, 1e-7, 1 - 1e-7)``, or ``log p = log_sigmoid(y_pred)``
    and ``log(1 - p) = log_sigmoid(-y_pred)`` when ``from_logits``; ``w = pos_weight``
    (1 by default).

    Args:
      y_true: targets in ``[0, 1]``, shape ``(..., d)``.
      y_pred: probabilities (or logits when ``from_logits``), same shape; Keras's rank
        rule applies (``(N,)`` against ``(N, 1)``).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ``s`` in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis averaged over.
      pos_weight: None, or a weight ``>= 0`` of the positive term: a scalar or one per
        class ``(d,)`` laid along ``axis`` (may be traced). PyTorch's
        ``binary_cross_entropy_with_logits(pos_weight=...)``: the per-sample values are
        its elementwise output (``reduction="none"``) averaged over ``axis``; it applies
        from probabilities too.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient: ``((1 - t + w t) sigmoid(y_pred) - w t) / d`` from logits (``sigmoid(y_pred) - t``
    when ``w = 1``); ``((1 - t)/(1 - p) - w t/p) / d`` from probabilities, 0 where ``y_pred``
    is clipped (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.binary_crossentropy(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]]))
      Array(0.8149245, dtype=float32)
      >>> jaxloss.binary_crossentropy(jnp.array([[0.0, 1.0]]), jnp.array([[-1.0, 2.0]]), from_logits=True,
      ...                             pos_weight=jnp.array([1.0, 3.0]))
      Array(0.34702283, dtype=float32)
    """
    if isinstance(pos_weight, (list, tuple)):
        pos_weight = np.asarray(pos_weight)
    return BCE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=axis,
        pos_weight=pos_weight,
    )


# --------------------------------------------------------------------------
# binary_focal_crossentropy
# --------------------------------------------------------------------------


def _bfce_parts(y_true, y_pred, opts):
    """Smoothed targets, class-balancing weight and the focal base ``1 - p_t``."""
    t = _smooth_binary(y_true, _as(opts["label_smoothing"], y_pred))
    if opts["apply_class_balancing"]:
        alpha = _as(opts["alpha"], y_pred)
        weight = t * alpha + (1.0 - t) * (1.0 - alpha)
    else:
        weight = 1.0
    return t, weight


def _bfce(y_true, y_pred, **opts):
    t, weight = _bfce_parts(y_true, y_pred, opts)
    if opts["from_logits"]:
        # Log space: exact 1 - p_t and crossentropy even where sigmoid saturates.
        p, q, log1p_e = _sigmoid_parts(y_pred)
        bce = _bce_from_logits(t, y_pred, log1p_e, t)
        base = t * q + (1.0 - t) * p
    else:
        bce = _bce_elementwise(t, y_pred, False)
        base = 1.0 - (t * y_pred + (1.0 - t) * (1.0 - y_pred))  # Keras: 1 - p_t, unclipped
    return jnp.mean(weight * _pow(base, opts["gamma"]) * bce, axis=opts["axis"])


def _bfce_grad(y_true, y_pred, **opts):
    t, weight = _bfce_parts(y_true, y_pred, opts)
    gamma = _as(opts["gamma"], y_pred)
    if opts["from_logits"]:
        p, q, log1p_e = _sigmoid_parts(y_pred)
        bce = _bce_from_logits(t, y_pred, log1p_e, t)
        base = t * q + (1.0 - t) * p
        focal = _pow(base, opts["gamma"])
        # d base / dz = (1 - 2t) p q, and gamma base^(gamma-1) p q = gamma focal * (p q / base):
        # the ratio lies in [0, 1] and tends to 1 where base underflows to 0.
        positive = base > 0
        ratio = jnp.where(positive, p * q / jnp.where(positive, base, 1.0), 1.0)
        d = gamma * focal * (1.0 - 2.0 * t) * ratio * bce + focal * (p - t)
    else:
        bce = _bce_elementwise(t, y_pred, False)
        base = 1.0 - (t * y_pred + (1.0 - t) * (1.0 - y_pred))
        # At base == 0 with gamma < 1 the slope of base^gamma is infinite: taken as 0 (finite gradients).
        d_focal = gamma * _safe_pow(base, gamma - 1.0) * (1.0 - 2.0 * t)
        d = d_focal * bce + _pow(base, opts["gamma"]) * _bce_elementwise_grad(t, y_pred, False)
    return weight * d / float(y_pred.shape[opts["axis"]])


def _bfce_validate(opts):
    name = "binary_focal_crossentropy"
    check_bool(name, "apply_class_balancing", opts["apply_class_balancing"])
    check_bool(name, "from_logits", opts["from_logits"])
    _check_focal(name, opts)
    _check_smoothing(name, opts)
    _check_axis_option(name, opts)


BFCE = LossSpec(
    "binary_focal_crossentropy",
    "BinaryFocalCrossentropy",
    _bfce,
    {
        "apply_class_balancing": False,
        "alpha": 0.25,
        "gamma": 2.0,
        "from_logits": False,
        "label_smoothing": 0.0,
        "axis": -1,
    },
    static=frozenset({"apply_class_balancing", "from_logits", "axis"}),
    local_grad=_bfce_grad,
    reduced_axes=_class_axis,
    validate=_bfce_validate,
    prepare=_axis_prepare,
    custom_jvp=True,
)


@register(BFCE)
def binary_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    apply_class_balancing: bool = False,
    alpha: float | ArrayLike = 0.25,
    gamma: float | ArrayLike = 2.0,
    from_logits: bool = False,
    label_smoothing: float | ArrayLike = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Binary focal crossentropy (Lin et al., 2017), averaged over ``axis``.

    .. math::
      \ell = \operatorname{mean}_{axis}\, w\,(1 - p_t)^\gamma\,\mathrm{bce}(t, p),\quad
      p_t = t p + (1 - t)(1 - p),\quad w = t\alpha + (1 - t)(1 - \alpha)

    (``w = 1`` unless ``apply_class_balancing``), ``t`` smoothed towards 0.5 and
    ``bce`` as in :func:`binary_crossentropy` (clipped probabilities).

    Difference from Keras: with ``from_logits=True`` the loss is computed in log space
    (``log_sigmoid``, ``1 - p_t = t sigmoid(-z) + (1 - t) sigmoid(z)``). It equals Keras
    wherever Keras's internal clipping of ``sigmoid(z)`` is inactive, and stays exact,
    with a true non-zero gradient, at saturated logits (``|z| ~ 1e4``) where Keras caps
    the crossentropy near 16 with a zero gradient.

    Args:
      y_true: targets in ``[0, 1]``, shape ``(..., d)``.
      y_pred: probabilities (or logits when ``from_logits``), same shape (Keras's rank rule).
      apply_class_balancing: weight class 1 by ``alpha`` and class 0 by ``1 - alpha``.
      alpha: balancing weight in ``[0, 1]`` (may be traced).
      gamma: focusing parameter ``>= 0`` (may be traced); 0 gives the crossentropy.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis averaged over.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): ``w (gamma (1 - p_t)^(gamma - 1) (1 - 2t)
    dp bce + (1 - p_t)^gamma d bce) / d``; from logits ``dp = p(1 - p)`` and
    ``d bce = sigmoid(z) - t``. From probabilities at exactly ``p_t = 1`` with
    ``gamma < 1`` the true slope is infinite; it is taken as 0 so gradients stay finite.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true, y_pred = jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]])
      >>> jaxloss.binary_focal_crossentropy(y_true, y_pred, gamma=2.0, reduction="none")
      Array([0.32986468, 0.20579839], dtype=float32)
    """
    return BFCE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        apply_class_balancing=apply_class_balancing,
        alpha=alpha,
        gamma=gamma,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=axis,
    )


# --------------------------------------------------------------------------
# categorical_crossentropy
# --------------------------------------------------------------------------


# Shared by categorical and sparse crossentropy: the options beyond Keras.
# class_weight: each sample's values get a per-sample weight (core's Weighted), which the
# reductions treat as a sample_weight, so "mean_with_sample_weight" is PyTorch's weighted mean.
# where, z_loss, logit_soft_cap act on logits only.

_CE_EXTRA = {"class_weight": None, "where": None, "z_loss": 0.0, "logit_soft_cap": None}


class _Logits(NamedTuple):
    """Logits after the soft cap, with the class mask, log-probabilities and log-sum-exp."""

    tanh: jax.Array | None  # tanh(y_pred / cap) under the soft cap, else None
    valid: jax.Array | None  # the classes that take part (``where``), None for all
    any_valid: jax.Array | None  # rows with at least one class left (keepdims), None without ``where``
    log_q: jax.Array  # log-probabilities, -inf on masked classes
    lse: jax.Array  # log-sum-exp over the unmasked classes (keepdims)


def _logits(y_pred: jax.Array, ax: int, where: Any, logit_soft_cap: Any) -> _Logits:
    z, th = y_pred, None
    if logit_soft_cap is not None:
        cap = _as(logit_soft_cap, y_pred)
        th = jnp.tanh(y_pred / cap)
        z = cap * th
    valid = any_valid = live = None
    if where is not None:
        valid = jnp.broadcast_to(jnp.asarray(where).astype(bool), z.shape)
        any_valid = jnp.any(valid, axis=ax, keepdims=True)
        live = valid | ~any_valid  # a row with no class left is computed unmasked, then zeroed
    # jax.nn.log_softmax's steps, keeping its log-sum-exp for the z-loss.
    z_max = jax.lax.stop_gradient(jnp.max(z, ax, where=live, initial=-jnp.inf, keepdims=True))
    shifted = (z if live is None else jnp.where(live, z, -jnp.inf)) - z_max
    shifted_lse = jnp.log(jnp.sum(jnp.exp(shifted), ax, where=live, keepdims=True))
    log_q = shifted - shifted_lse
    if valid is not None:
        log_q = jnp.where(valid, log_q, -jnp.inf)
    return _Logits(th, valid, any_valid, log_q, z_max + shifted_lse)


def _class_count(lg: _Logits | None, y_pred: jax.Array, ax: int) -> Any:
    """``C`` of the label smoothing: the number of unmasked classes (the axis's size without ``where``)."""
    if lg is None or lg.valid is None:
        return float(y_pred.shape[ax])
    return jnp.maximum(jnp.sum(lg.valid, axis=ax, keepdims=True), 1).astype(y_pred.dtype)


def _z_term(lg: _Logits, z_loss: Any, *, slope: bool) -> jax.Array:
    """``z_loss * lse**2`` (or its slope ``2 z_loss lse``), keepdims; 0 when ``z_loss == 0`` or no class is left."""
    zl = _as(z_loss, lg.lse)
    keep = zl != 0 if lg.any_valid is None else (zl != 0) & lg.any_valid
    return jnp.where(keep, 2.0 * zl * lg.lse if slope else zl * jnp.square(lg.lse), 0.0)


def _logits_grad(t: jax.Array, lg: _Logits, ax: int, z_loss: Any) -> jax.Array:
    """d/dz of ``-sum t log q + z_loss lse**2``: ``q (sum t + 2 z_loss lse) - t``, through the soft cap."""
    q = jnp.exp(lg.log_q)
    grad = q * (jnp.sum(t, axis=ax, keepdims=True) + _z_term(lg, z_loss, slope=True)) - t
    if lg.tanh is not None:
        grad = grad * (1.0 - jnp.square(lg.tanh))
    return grad


# Crossentropy from logits in its log-sum-exp form (no ``where``, no soft cap):
#
#   value  = T log s + sum t (m - z) + z_loss lse^2,   s = sum exp(z - m), lse = m + log s, T = sum t
#   d / dz = p (T + 2 z_loss lse) - t,                 p = exp(z - lse)
#
# It never stores log-probabilities. On sparse labels ``sum t z`` is one gather per row and
# ``t`` one scatter into the gradient, so nothing of the logits' size exists besides the
# gradient. Where the work lands depends on the backend: XLA:CPU is bound by ``exp``, so
# there ``exp(z - m)`` is computed once and becomes the gradient's buffer; GPUs and TPUs are
# bound by memory traffic, so there it is recomputed and the logits are read three times
# (max, sum, gradient) and the gradient written once. ``jax.lax.platform_dependent`` picks.


def _fast_logits(from_logits: bool, where: Any, logit_soft_cap: Any) -> bool:
    return from_logits and where is None and logit_soft_cap is None


def _row_max(z: jax.Array, ax: int) -> jax.Array:
    """The shift of the log-sum-exp: the row max (a row with an infinite logit is NaN either way)."""
    return jax.lax.stop_gradient(jnp.max(z, ax, keepdims=True))


def _log_sum_exp(z: jax.Array, m: jax.Array, ax: int) -> jax.Array:
    return jnp.log(jnp.sum(jnp.exp(z - m), ax, keepdims=True))


def _scaled_softmax(z, m, ax, scale, *, keep_exp):
    """``(log s, p * scale)`` with ``p = softmax(z)`` and ``scale`` a per-row factor (keepdims)."""
    if keep_exp:
        e = jnp.exp(z - m)
        s = jnp.sum(e, ax, keepdims=True)
        return jnp.log(s), e * (scale / s)
    log_s = _log_sum_exp(z, m, ax)
    return log_s, jnp.exp(z - (m + log_s)) * scale


def _softmax_slope(z, m, ax, total, z_loss, *, keep_exp):
    """``(log s, p (T + 2 z_loss lse))``: the log-sum-exp and the softmax part of the slope."""
    if is_static_zero(z_loss):
        return _scaled_softmax(z, m, ax, total, keep_exp=keep_exp)
    # The row factor needs lse before the probabilities: the sum is a pass of its own.
    log_s = _log_sum_exp(z, m, ax)
    return log_s, jnp.exp(z - (m + log_s)) * (total + _z_loss_parts(z_loss, m + log_s)[1])


def _z_loss_parts(z_loss: Any, lse: jax.Array) -> tuple[Any, Any]:
    """``(z_loss lse^2, 2 z_loss lse)``, both 0 (left out of the program) when z_loss is a Python 0."""
    if is_static_zero(z_loss):
        return 0.0, 0.0
    zl = _as(z_loss, lse)
    return zl * jnp.square(lse), 2.0 * zl * lse


def _by_backend(fn, *args):
    """``fn(*args, keep_exp=True)`` on CPU, ``keep_exp=False`` on GPU and TPU."""
    return jax.lax.platform_dependent(
        *args, cpu=functools.partial(fn, keep_exp=True), default=functools.partial(fn, keep_exp=False)
    )


def _sparse_logits_parts(labels, z, ax, label_smoothing):
    """Per-row target masses: ``h = (1 - a) [label in range]``, ``T = h + a``, the safe label index."""
    in_range = (labels >= 0) & (labels < z.shape[ax])
    idx = jnp.expand_dims(jnp.where(in_range, labels, 0), ax)
    h = jnp.expand_dims(in_range, ax).astype(z.dtype)
    a = None if is_static_zero(label_smoothing) else _as(label_smoothing, z)
    if a is not None:
        h = h * (1.0 - a)
    return idx, h, (h if a is None else h + a), a


def _sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax):
    value = total * log_s + h * (m - jnp.take_along_axis(z, idx, ax, mode="clip"))
    if a is not None:
        value = value + a * (m - jnp.mean(z, ax, keepdims=True))
    return value + _z_loss_parts(z_loss, m + log_s)[0]


def _sparse_logits(labels, z, dz, *, ax, label_smoothing, z_loss, valid, keep_exp=False):
    """Sparse crossentropy from logits, and its tangent along ``dz`` (``dz=None``: values only)."""
    idx, h, total, a = _sparse_logits_parts(labels, z, ax, label_smoothing)
    m = _row_max(z, ax)
    if dz is None:
        log_s = _log_sum_exp(z, m, ax)
        value = _sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax)
        return jnp.squeeze(value, ax) if valid is None else jnp.where(valid, jnp.squeeze(value, ax), 0.0)
    log_s, pc = _softmax_slope(z, m, ax, total, z_loss, keep_exp=keep_exp)
    value = _sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax)
    if keep_exp:
        # The label term as a gather of the tangent: its transpose is a scatter into the gradient.
        tangent = jnp.sum(pc * dz, ax, keepdims=True) - h * jnp.take_along_axis(dz, idx, ax, mode="clip")
        if a is not None:
            tangent = tangent - a / z.shape[ax] * jnp.sum(dz, ax, keepdims=True)
    else:
        hot = jnp.where(jax.lax.broadcasted_iota(jnp.int32, z.shape, ax) == idx, h, 0.0)
        g = pc - hot if a is None else pc - hot - a / z.shape[ax]
        tangent = jnp.sum(g * dz, ax, keepdims=True)
    value, tangent = jnp.squeeze(value, ax), jnp.squeeze(tangent, ax)
    if valid is None:
        return value, tangent
    return jnp.where(valid, value, 0.0), jnp.where(valid, tangent, 0.0)


def _dense_logits(t, z, dz, *, ax, z_loss, keep_exp=False):
    """Categorical crossentropy from logits on targets ``t``, and its tangent along ``dz``."""
    total = jnp.sum(t, ax, keepdims=True)
    m = _row_max(z, ax)
    # sum t (m - z) as T m - sum t z: exact for one-hot targets, and XLA:CPU fuses it into one
    # pass (a select here costs a stored (N, V) copy). A -inf logit is read as the lowest finite
    # number, so a class with no target mass contributes 0, not 0 * inf = NaN.
    cross = total * m - jnp.sum(t * jnp.maximum(z, jnp.finfo(z.dtype).min), ax, keepdims=True)
    if dz is None:
        log_s = _log_sum_exp(z, m, ax)
        return jnp.squeeze(total * log_s + cross + _z_loss_parts(z_loss, m + log_s)[0], ax)
    log_s, pc = _softmax_slope(z, m, ax, total, z_loss, keep_exp=keep_exp)
    value = total * log_s + cross + _z_loss_parts(z_loss, m + log_s)[0]
    return jnp.squeeze(value, ax), jnp.sum((pc - t) * dz, ax)


def _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg=None):
    """Smoothed targets, and each sample's class weight ``sum_c w_c y_c`` (None without ``class_weight``).

    With class weights the targets are reweighted to ``w y / sum(w y)``; the sum becomes the
    sample's weight, so value times weight is ``sum_c w_c y_c (-log p_c)`` (PyTorch's soft targets).
    """
    y, weight = y_true, None
    if class_weight is not None:
        wy = _along(class_weight, y_pred, ax) * y_true
        total = jnp.sum(wy, axis=ax, keepdims=True)
        y = jnp.where(total != 0, wy / jnp.where(total != 0, total, 1.0), 0.0)
        weight = jnp.squeeze(total, ax)
    a = _as(label_smoothing, y_pred)
    if lg is None or lg.valid is None:
        return _smooth_categorical(y, a, ax), weight
    # Masked classes take no target mass; smoothing spreads over the unmasked ones (optax's smooth_labels).
    t = y * (1.0 - a) + a / _class_count(lg, y_pred, ax)
    return jnp.where(lg.valid, t, 0.0), weight


def _with_weight(values, mask, weight):
    if weight is None:
        return values if mask is None else (values, mask)
    return values, Weighted(mask, weight)


def _cce(y_true, y_pred, *, from_logits, label_smoothing, axis, class_weight, where, z_loss, logit_soft_cap):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    if _fast_logits(from_logits, where, logit_soft_cap):
        t, weight = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
        return _with_weight(_dense_logits(t, y_pred, None, ax=ax, z_loss=z_loss), None, weight)
    if from_logits:
        lg = _logits(y_pred, ax, where, logit_soft_cap)
        t, weight = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg)
        values = -jnp.sum(_masked_log_probs(t, lg.log_q), axis=ax) + jnp.squeeze(_z_term(lg, z_loss, slope=False), ax)
        return _with_weight(values, None, weight)
    t, weight = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
    out, _ = _normalised(y_pred, ax)
    return _with_weight(-jnp.sum(t * jnp.log(jnp.clip(out, EPSILON, _HIGH)), axis=ax), None, weight)


def _cce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis, class_weight, where, z_loss, logit_soft_cap):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    if from_logits:
        lg = _logits(y_pred, ax, where, logit_soft_cap)
        t, _ = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg)
        return _logits_grad(t, lg, ax, z_loss)
    t, _ = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
    out, total = _normalised(y_pred, ax)
    g = -t / jnp.clip(out, EPSILON, _HIGH) * _clip_slope(out, EPSILON, _HIGH)
    return _through_normalisation(g, out, total, ax)


def _cce_jvp(y_true, y_pred, t_pred, **opts):
    if not _fast_logits(opts["from_logits"], opts["where"], opts["logit_soft_cap"]):
        return None  # the default rule: per_sample and local_grad
    ax = _axis_of(opts, y_pred.ndim)
    t, _ = _cce_targets(y_true, y_pred, ax, opts["label_smoothing"], opts["class_weight"])
    return _by_backend(functools.partial(_dense_logits, ax=ax, z_loss=opts["z_loss"]), t, y_pred, t_pred)


def _check_ce_options(loss: str, opts: Mapping[str, Any]) -> None:
    """class_weight >= 0; z_loss >= 0 and logit_soft_cap > 0, scalars; where, z_loss, soft cap need logits."""
    check_interval(loss, "class_weight", opts["class_weight"], 0.0, None)
    for name in ("z_loss", "logit_soft_cap"):
        if opts[name] is not None and jnp.ndim(opts[name]) != 0:
            raise ValueError(f"{loss}: {name} must be a scalar; received {name} of shape {jnp.shape(opts[name])}.")
    check_interval(loss, "z_loss", opts["z_loss"], 0.0, None)
    check_interval(loss, "logit_soft_cap", opts["logit_soft_cap"], 0.0, None, low_open=True)
    if not opts["from_logits"]:
        z_loss = opts["z_loss"]
        used = {
            "where": opts["where"] is not None,
            "z_loss": not (is_concrete(z_loss) and not isinstance(z_loss, bool) and np.all(np.asarray(z_loss) == 0)),
            "logit_soft_cap": opts["logit_soft_cap"] is not None,
        }
        for name, on in used.items():
            if on:
                shown = "a mask" if name == "where" else repr(opts[name])
                raise ValueError(
                    f"{loss}: {name} acts on logits and needs from_logits=True; "
                    f"received {name}={shown} with from_logits=False."
                )


def _check_ce_shapes(spec: LossSpec, y_pred: jax.Array, opts: Mapping[str, Any]) -> None:
    """class_weight has one weight per class; where broadcasts to y_pred (checked while tracing)."""
    ax = opts["axis"] % y_pred.ndim
    _check_class_vector(spec, "class_weight", opts["class_weight"], y_pred, ax, scalar=False)
    where = opts["where"]
    if where is not None:
        shape = _option_shape(where)
        try:
            fits = np.broadcast_shapes(shape, y_pred.shape) == tuple(y_pred.shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{spec.name}: where must be a boolean mask over the classes that broadcasts to y_pred's shape; "
                f"received where.shape={shape}, y_pred.shape={tuple(y_pred.shape)}."
            )


def _cce_validate(opts):
    check_bool("categorical_crossentropy", "from_logits", opts["from_logits"])
    _check_smoothing("categorical_crossentropy", opts)
    _check_axis_option("categorical_crossentropy", opts)
    _check_ce_options("categorical_crossentropy", opts)


def _cce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = _axis_prepare(spec, y_true, y_pred, opts)
    _check_ce_shapes(spec, y_pred, opts)
    return y_true, y_pred


CCE = LossSpec(
    "categorical_crossentropy",
    "CategoricalCrossentropy",
    _cce,
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1, **_CE_EXTRA},
    static=frozenset({"from_logits", "axis"}),
    local_grad=_cce_grad,
    reduced_axes=_class_axis,
    validate=_cce_validate,
    prepare=_cce_prepare,
    custom_jvp=True,
    jvp=_cce_jvp,
    aliases=("cce",),
)


@register(CCE)
def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: bool = False,
    label_smoothing: float | ArrayLike = 0.0,
    axis: int = -1,
    class_weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    z_loss: float | ArrayLike = 0.0,
    logit_soft_cap: float | ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Categorical crossentropy over the class ``axis`` (one-hot or soft targets).

    .. math::
      \ell = -\sum_{axis} t \log p,\quad t = y(1 - s) + s / C

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` (Keras normalises the
    probabilities), or ``log p = log_softmax(y_pred)`` when ``from_logits``.

    Options beyond Keras (optax and PyTorch):

    - ``class_weight`` ``w`` of shape ``(C,)``: the per-sample value becomes
      ``sum_c w_c y_c (-log p_c)`` (PyTorch's ``cross_entropy(weight=w)``; for one-hot
      targets, the loss times the label's weight). Each sample counts with the weight
      ``sum_c w_c y_c`` in ``"mean_with_sample_weight"``, which then divides by the sum of
      those weights (times ``sample_weight``): PyTorch's weighted mean.
      ``"sum_over_batch_size"`` still divides by the number of samples, as Keras does.
      With label smoothing, the smoothing part ``s mean_c(-log p_c)`` is weighted by the
      sample's weight ``sum_c w_c y_c`` too, so one-hot targets give the label's weight
      times the smoothed loss (PyTorch weighs each class of the smoothing part by its own
      weight instead).
    - ``where`` (logits only): a boolean mask over the classes, broadcastable to
      ``y_pred``; masked classes take no probability mass (the softmax and the
      log-sum-exp run over the unmasked ones, any logit, ``-inf`` included, may sit
      under the mask), target mass on them is left out, and label smoothing spreads
      ``s / C'`` over the ``C'`` unmasked classes: optax's
      ``softmax_cross_entropy(..., where=...)`` with ``smooth_labels(..., where=...)``.
      A row with no class left gives 0.
    - ``z_loss`` (logits only, ``>= 0``): adds ``z_loss * logsumexp(z)**2`` per sample.
    - ``logit_soft_cap`` (logits only, ``> 0``): logits become ``cap * tanh(z / cap)``
      before everything else.

    Differences from Keras: a ``-inf`` logit (a masked class) whose target is 0
    contributes 0, in value and gradient (Keras gives NaN); ``C`` in the label
    smoothing is the size of the class ``axis`` (Keras uses the last axis's size even
    when ``axis != -1``).

    Args:
      y_true: targets, shape ``(..., C)`` (classes along ``axis``).
      y_pred: probabilities (or logits when ``from_logits``), same shape.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ``s`` in ``[0, 1]``.
      axis: the class axis.
      class_weight: None, or non-negative weights of shape ``(C,)`` (may be traced).
      where: None, or a boolean mask broadcastable to ``y_pred`` (needs ``from_logits``).
      z_loss: coefficient ``>= 0`` of ``logsumexp(z)**2`` (needs ``from_logits`` unless 0).
      logit_soft_cap: None, or the cap ``> 0`` (needs ``from_logits``).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): from logits
    ``(softmax(z) (sum(t) + 2 z_loss lse) - t) (1 - tanh(y_pred / cap)**2)`` with the softmax
    over the unmasked classes, ``t`` the (reweighted, smoothed) targets and the last factor
    only under the soft cap; from probabilities ``(g - sum(g out)) / sum(y_pred)`` with
    ``out`` the normalised probabilities and ``g = -t / out`` (0 where clipped); class
    weights scale each sample's gradient by its weight.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> jaxloss.categorical_crossentropy(y_true, jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]), reduction="none")
      Array([0.05129331, 2.3025851 ], dtype=float32)
      >>> logits = jnp.array([[-jnp.inf, 2.0, 0.0]])
      >>> jaxloss.categorical_crossentropy(jnp.array([[0.0, 1.0, 0.0]]), logits, from_logits=True)
      Array(0.12692805, dtype=float32)
      >>> logits = jnp.array([[1.0, 2.0, 0.0], [0.5, -jnp.inf, 1.0]])
      >>> jaxloss.categorical_crossentropy(  # (2 * 0.4076 + 0.5 * 0.4741) / (2 + 0.5)
      ...     y_true, logits, from_logits=True, class_weight=jnp.array([1.0, 2.0, 0.5]),
      ...     where=jnp.array([[True, True, True], [True, False, True]]), reduction="mean_with_sample_weight")
      Array(0.42090017, dtype=float32)
    """
    if isinstance(class_weight, (list, tuple)):
        class_weight = np.asarray(class_weight)
    return CCE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=axis,
        class_weight=class_weight,
        where=where,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
    )


# --------------------------------------------------------------------------
# categorical_focal_crossentropy
# --------------------------------------------------------------------------


def _class_alpha(alpha: Any, y_pred: jax.Array, ax: int) -> jax.Array:
    """A scalar ``alpha``, or one per class laid along the class axis."""
    alpha = _as(alpha, y_pred)
    if alpha.ndim == 1:
        shape = [1] * y_pred.ndim
        shape[ax] = alpha.shape[0]
        alpha = alpha.reshape(shape)
    return alpha


def _split_alpha(alpha: Any, y_pred: jax.Array, ax: int) -> tuple[Any, Any]:
    """``(per-class factor, per-row factor)``: a scalar alpha multiplies after the class sum.

    Both the loss and its gradient are linear in alpha, so a scalar is applied once per row
    (XLA:CPU would otherwise store a broadcast of it before the class reduction).
    """
    alpha = _class_alpha(alpha, y_pred, ax)
    return (1.0, alpha) if alpha.ndim == 0 else (alpha, 1.0)


def _cfce(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    per_class, per_row = _split_alpha(alpha, y_pred, ax)
    if from_logits:
        # Log space: (1 - p) = -expm1(log p) stays exact where softmax saturates.
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
        focal = _pow(-jnp.expm1(log_p), gamma)
        return -per_row * jnp.sum(per_class * focal * _masked_log_probs(t, log_p), axis=ax)
    out, _ = _normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, _HIGH)
    return per_row * jnp.sum(per_class * _pow(1.0 - clipped, gamma) * (-t * jnp.log(clipped)), axis=ax)


def _cfce_grad(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    (per_class, per_row), power = _split_alpha(alpha, y_pred, ax), functools.partial(_pow, exponent=gamma)
    gamma = _as(gamma, y_pred)
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
        # Per class f(l) = -(1 - e^l)^gamma l has df/dl = focal (gamma h - 1), h = e^l l / (1 - e^l),
        # which tends to -1 as l -> 0. Classes with no target mass (maybe -inf logits) are skipped.
        live = t != 0
        log_live = jnp.where(live, log_p, 0.0)
        one_minus = -jnp.expm1(log_live)
        positive = one_minus > 0
        h = jnp.where(positive, jnp.exp(log_live) * log_live / jnp.where(positive, one_minus, 1.0), -1.0)
        dl = jnp.where(live, per_class * t * power(one_minus) * (gamma * h - 1.0), 0.0)
        return per_row * (dl - jnp.exp(log_p) * jnp.sum(dl, axis=ax, keepdims=True))
    out, total = _normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, _HIGH)
    one_minus = 1.0 - clipped
    d_clipped = (
        per_class * t * (gamma * jnp.power(one_minus, gamma - 1.0) * jnp.log(clipped) - power(one_minus) / clipped)
    )
    return per_row * _through_normalisation(d_clipped * _clip_slope(out, EPSILON, _HIGH), out, total, ax)


def _cfce_validate(opts):
    name = "categorical_focal_crossentropy"
    check_bool(name, "from_logits", opts["from_logits"])
    _check_focal(name, opts)
    _check_smoothing(name, opts)
    _check_axis_option(name, opts)


def _cfce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = _axis_prepare(spec, y_true, y_pred, opts)
    alpha = opts["alpha"]
    alpha_shape = (len(alpha),) if isinstance(alpha, (list, tuple)) else jnp.shape(alpha)
    classes = y_pred.shape[opts["axis"] % y_pred.ndim]
    if alpha_shape not in ((), (classes,)):
        raise ValueError(
            f"{spec.name}: alpha must be a scalar or have one value per class ({classes},); "
            f"received alpha.shape={alpha_shape}."
        )
    return y_true, y_pred


CFCE = LossSpec(
    "categorical_focal_crossentropy",
    "CategoricalFocalCrossentropy",
    _cfce,
    {"alpha": 0.25, "gamma": 2.0, "from_logits": False, "label_smoothing": 0.0, "axis": -1},
    static=frozenset({"from_logits", "axis"}),
    local_grad=_cfce_grad,
    reduced_axes=_class_axis,
    validate=_cfce_validate,
    prepare=_cfce_prepare,
    custom_jvp=True,
)


@register(CFCE)
def categorical_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: float | ArrayLike = 0.25,
    gamma: float | ArrayLike = 2.0,
    from_logits: bool = False,
    label_smoothing: float | ArrayLike = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Alpha-balanced categorical focal crossentropy over the class ``axis``.

    .. math::
      \ell = -\sum_{axis} \alpha\,(1 - p)^\gamma\, t \log p,\quad t = y(1 - s) + s / C

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)``.

    Differences from Keras: with ``from_logits=True`` the loss is computed in log space
    (``log p = log_softmax(z)``, ``1 - p = -expm1(log p)``), equal to Keras wherever
    Keras's clipping of the softmax is inactive, exact with a true non-zero gradient at
    saturated logits (Keras caps ``-log p`` near 16 with a zero gradient), and a
    ``-inf`` logit whose target is 0 contributes 0 (Keras gives NaN). ``C`` in the label
    smoothing is the size of the class ``axis`` (Keras uses the last axis's size).

    Args:
      y_true: targets, shape ``(..., C)`` (classes along ``axis``).
      y_pred: probabilities (or logits when ``from_logits``), same shape.
      alpha: weight in ``[0, 1]``, a scalar or one per class ``(C,)`` (may be traced).
      gamma: focusing parameter ``>= 0`` (may be traced).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the class axis.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): from probabilities, ``d/dp = alpha t
    (gamma (1 - p)^(gamma - 1) log p - (1 - p)^gamma / p)`` (0 where clipped), through the
    normalisation; from logits, ``G - softmax(z) sum(G)`` with
    ``G = alpha t (1 - p)^gamma (gamma p log p / (1 - p) - 1)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> y_pred = jnp.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
      >>> jaxloss.categorical_focal_crossentropy(y_true, y_pred, reduction="none")
      Array([2.6340148e-04, 6.7591208e-01], dtype=float32)
    """
    if isinstance(alpha, (list, tuple)):
        alpha = jnp.asarray(alpha)  # one array, not a pytree of per-class scalars
    return CFCE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        alpha=alpha,
        gamma=gamma,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=axis,
    )


# --------------------------------------------------------------------------
# sparse_categorical_crossentropy
# --------------------------------------------------------------------------


def _scce_inputs(y_true, y_pred, from_logits, ignore_class, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    labels = _labels(y_true)
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        # Ignored positions get harmless predictions so neither value nor gradient can be NaN.
        y_pred = jnp.where(jnp.expand_dims(valid, ax), y_pred, 0.0 if from_logits else 1.0)
    return ax, labels, valid, y_pred


def _scce_log_probs(y_pred, ax, from_logits, opts):
    """Log-probabilities (clipped ones from probabilities) and, from logits, the logits' parts."""
    if from_logits:
        lg = _logits(y_pred, ax, opts["where"], opts["logit_soft_cap"])
        return lg.log_q, lg
    out, _ = _normalised(y_pred, ax)
    return jnp.log(jnp.clip(out, EPSILON, _HIGH)), None


def _scce_hot(labels, y_pred, ax, lg):
    hot = _one_hot(labels, y_pred.shape, ax)
    return hot if lg is None or lg.valid is None else hot & lg.valid


def _scce_targets(hot, y_pred, ax, a, lg):
    """Keras-smoothed one-hot targets ``(1 - a) [c = y] + a / C``: an expression that XLA fuses, never stored."""
    t = jnp.where(hot, 1.0 - a, 0.0) + a / _class_count(lg, y_pred, ax)
    return t if lg is None or lg.valid is None else jnp.where(lg.valid, t, 0.0)


def _scce_class_weight(labels, y_pred, ax, class_weight):
    """Each sample's weight ``w[label]`` (0 for a label out of range), None without class weights."""
    if class_weight is None:
        return None
    return jnp.sum(jnp.where(_one_hot(labels, y_pred.shape, ax), _along(class_weight, y_pred, ax), 0.0), ax)


def _scce(y_true, y_pred, *, from_logits, ignore_class, axis, label_smoothing, **opts):
    ax, labels, valid, y_pred = _scce_inputs(y_true, y_pred, from_logits, ignore_class, axis)
    if _fast_logits(from_logits, opts["where"], opts["logit_soft_cap"]):
        values = _sparse_logits(
            labels, y_pred, None, ax=ax, label_smoothing=label_smoothing, z_loss=opts["z_loss"], valid=valid
        )
        return _with_weight(values, valid, _scce_class_weight(labels, y_pred, ax, opts["class_weight"]))
    log_p, lg = _scce_log_probs(y_pred, ax, from_logits, opts)
    hot = _scce_hot(labels, y_pred, ax, lg)
    a = _as(label_smoothing, y_pred)
    # where, not a one-hot product: a -inf logit of another class contributes 0, not NaN.
    values = -(1.0 - a) * jnp.sum(jnp.where(hot, log_p, 0.0), axis=ax)
    # Smoothing's a/C on every class: a times the mean log-probability over the (unmasked) classes,
    # left out entirely when a == 0 (a -inf logit would make 0 * inf).
    live = lg is not None and lg.valid is not None
    total_log_p = jnp.sum(jnp.where(lg.valid, log_p, 0.0) if live else log_p, axis=ax, keepdims=True)
    mean_log_p = jnp.squeeze(total_log_p / _class_count(lg, y_pred, ax), ax)
    values = values - a * jnp.where(a != 0, mean_log_p, 0.0)
    if lg is not None:
        values = values + jnp.squeeze(_z_term(lg, opts["z_loss"], slope=False), ax)
    weight = _scce_class_weight(labels, y_pred, ax, opts["class_weight"])
    if valid is not None:
        values = jnp.where(valid, values, 0.0)
    return _with_weight(values, valid, weight)


def _scce_grad(y_true, y_pred, *, from_logits, ignore_class, axis, label_smoothing, **opts):
    ax, labels, valid, y_pred = _scce_inputs(y_true, y_pred, from_logits, ignore_class, axis)
    _, lg = _scce_log_probs(y_pred, ax, from_logits, opts)
    t = _scce_targets(_scce_hot(labels, y_pred, ax, lg), y_pred, ax, _as(label_smoothing, y_pred), lg)
    if from_logits:
        grad = _logits_grad(t, lg, ax, opts["z_loss"])
    else:
        out, total = _normalised(y_pred, ax)
        g = -t * _clip_slope(out, EPSILON, _HIGH) / jnp.clip(out, EPSILON, _HIGH)
        grad = _through_normalisation(g, out, total, ax)
    if valid is None:
        return grad
    return jnp.where(jnp.expand_dims(valid, ax), grad, 0.0)


def _scce_jvp(y_true, y_pred, t_pred, **opts):
    if not _fast_logits(opts["from_logits"], opts["where"], opts["logit_soft_cap"]):
        return None  # the default rule: per_sample and local_grad
    ax, labels, valid, y_pred = _scce_inputs(y_true, y_pred, True, opts["ignore_class"], opts["axis"])
    fn = functools.partial(
        _sparse_logits, ax=ax, label_smoothing=opts["label_smoothing"], z_loss=opts["z_loss"], valid=valid
    )
    return _by_backend(fn, labels, y_pred, t_pred)


def _scce_validate(opts):
    name = "sparse_categorical_crossentropy"
    check_bool(name, "from_logits", opts["from_logits"])
    check_int(name, "ignore_class", opts["ignore_class"], allow_none=True)
    _check_axis_option(name, opts)
    _check_smoothing(name, opts)
    _check_ce_options(name, opts)


def _scce_prepare(spec, y_true, y_pred, opts):
    """Labels of ``y_pred``'s shape less the class axis; a unit class axis on the labels is squeezed."""
    if y_pred.ndim == 0:
        raise shape_error(spec.name, "y_pred must have rank >= 1", y_true=y_true.shape, y_pred=y_pred.shape)
    ax = canonical_axis(spec.name, opts["axis"], y_pred.ndim)
    if y_true.ndim == y_pred.ndim and y_true.shape[ax] == 1:
        y_true = jnp.squeeze(y_true, ax)
    expected = y_pred.shape[:ax] + y_pred.shape[ax + 1 :]
    if y_true.shape != expected:
        raise shape_error(
            spec.name,
            f"y_true must have y_pred's shape without the class axis {ax}, i.e. {expected}",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    _check_ce_shapes(spec, y_pred, opts)
    return y_true, y_pred


SCCE = LossSpec(
    "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy",
    _scce,
    {"from_logits": False, "ignore_class": None, "axis": -1, "label_smoothing": 0.0, **_CE_EXTRA},
    static=frozenset({"from_logits", "ignore_class", "axis"}),
    local_grad=_scce_grad,
    reduced_axes=_class_axis,
    validate=_scce_validate,
    prepare=_scce_prepare,
    integer_labels=True,
    custom_jvp=True,
    jvp=_scce_jvp,
    aliases=("scce",),
)


@register(SCCE)
def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    label_smoothing: float | ArrayLike = 0.0,
    class_weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    z_loss: float | ArrayLike = 0.0,
    logit_soft_cap: float | ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Crossentropy with integer class labels.

    .. math:: \ell = -(1 - s)\log p_{y} - s\,\operatorname{mean}_{axis} \log p

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` along ``axis``, or
    ``log p = log_softmax(y_pred)`` when ``from_logits``; ``s = label_smoothing``
    (0 by default: ``-log p_y``). A label outside ``[0, C)`` selects no class and gives 0
    (its smoothing part stays), as Keras's one-hot does.

    ``label_smoothing``: Keras's convention, ``1 - s`` on the label plus ``s / C`` on every
    class, equal to :func:`categorical_crossentropy` with the one-hot labels and the same
    smoothing; computed from the mean log-probability, no one-hot is formed.

    ``class_weight`` ``w`` of shape ``(C,)``: each sample's value is multiplied by its
    label's weight ``w_y`` (PyTorch's ``cross_entropy(weight=w)``), and the sample counts
    with the weight ``w_y`` in ``"mean_with_sample_weight"``, which then divides by the sum
    of the labels' weights (times ``sample_weight``; ignored positions left out): PyTorch's
    weighted mean. ``"sum_over_batch_size"`` divides by the number of (valid) samples, as
    Keras does. With label smoothing the whole smoothed value is weighted by ``w_y``
    (PyTorch weighs each class of the smoothing part by its own weight).

    ``where``, ``z_loss``, ``logit_soft_cap`` (logits only) as in
    :func:`categorical_crossentropy`: masked classes take no probability mass (optax's
    ``softmax_cross_entropy_with_integer_labels(..., where=...)`` for a label on an unmasked
    class; a label on a masked class selects nothing, like its one-hot row in
    :func:`categorical_crossentropy`), ``z_loss * logsumexp(z)**2`` is added, the logits are
    soft-capped to ``cap * tanh(z / cap)`` first.

    ``ignore_class``: positions whose label equals it get the value 0 and are left out
    of the mean (the reductions ``"sum_over_batch_size"`` and ``"mean"`` divide by the
    number of valid positions, as Keras does with its loss mask); a batch with no
    valid position gives 0.

    Differences from Keras: any class ``axis`` works (Keras's JAX backend rejects
    ``axis != -1``); integer labels are never cast to float (Keras turns label 257 into
    256 under bfloat16); a ``-inf`` logit of a class other than the label contributes 0,
    in value and gradient (Keras and optax give NaN).

    Args:
      y_true: integer labels of ``y_pred``'s shape without the class axis; a unit class
        axis (``(N, 1)`` labels) is squeezed. Float labels are truncated, as Keras does.
      y_pred: probabilities (or logits when ``from_logits``), shape ``(..., C)``.
      from_logits: whether ``y_pred`` holds logits.
      ignore_class: a label value to leave out, or None.
      axis: the class axis of ``y_pred``.
      label_smoothing: ``s`` in ``[0, 1]`` (may be traced).
      class_weight: None, or non-negative weights of shape ``(C,)`` (may be traced).
      where: None, or a boolean mask broadcastable to ``y_pred`` (needs ``from_logits``).
      z_loss: coefficient ``>= 0`` of ``logsumexp(z)**2`` (needs ``from_logits`` unless 0).
      logit_soft_cap: None, or the cap ``> 0`` (needs ``from_logits``).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (the labels' shape) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): with ``t = (1 - s) onehot(y) + s / C``
    (over the unmasked classes), from logits ``(softmax(z) (sum(t) + 2 z_loss lse) - t)``,
    times ``1 - tanh(y_pred / cap)**2`` under the soft cap (``softmax(z) - onehot(y)`` by
    default); from probabilities ``(g - sum(g out)) / sum(y_pred)`` with ``g = -t / out``
    (0 where clipped); 0 at ignored positions; times ``w_y`` with class weights.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
      >>> jaxloss.sparse_categorical_crossentropy(jnp.array([1, 2]), y_pred)
      Array(1.1769392, dtype=float32)
      >>> jaxloss.sparse_categorical_crossentropy(jnp.array([1, -1]), y_pred, ignore_class=-1)
      Array(0.05129331, dtype=float32)
      >>> logits = jnp.array([[1.0, 3.0, -1.0], [0.0, 0.5, 2.0]])
      >>> jaxloss.sparse_categorical_crossentropy(  # PyTorch's weighted mean: sum w_y l / sum w_y
      ...     jnp.array([1, 2]), logits, from_logits=True, class_weight=jnp.array([1.0, 0.5, 2.0]),
      ...     reduction="mean_with_sample_weight")
      Array(0.27367088, dtype=float32)
      >>> jaxloss.sparse_categorical_crossentropy(
      ...     jnp.array([1, 2]), logits, from_logits=True, label_smoothing=0.1, z_loss=1e-4, logit_soft_cap=30.0)
      Array(0.38433793, dtype=float32)
    """
    if isinstance(class_weight, (list, tuple)):
        class_weight = np.asarray(class_weight)
    return SCCE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        from_logits=from_logits,
        ignore_class=ignore_class,
        axis=axis,
        label_smoothing=label_smoothing,
        class_weight=class_weight,
        where=where,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
    )


# --------------------------------------------------------------------------
# categorical_generalized_cross_entropy
# --------------------------------------------------------------------------


def _true_class_prob(y_true, y_pred):
    """``(in_range, index, p_y)``: the labelled class's probability, read with one gather per row.

    A label out of ``[0, C)`` selects no class (``p_y = 0``, as Keras's one_hot). A NaN or
    infinity anywhere in the row makes ``p_y`` NaN: the row is not a distribution, and the
    loss shows it (Keras's product with the one-hot becomes a select under XLA and hides it).
    """
    labels = _labels(y_true)
    in_range = (labels >= 0) & (labels < y_pred.shape[-1])
    index = jnp.where(in_range, labels, 0)[..., None]
    p = jnp.where(in_range, jnp.take_along_axis(y_pred, index, -1, mode="clip")[..., 0], 0.0)
    return in_range, index, jnp.where(jnp.isfinite(jnp.sum(y_pred, axis=-1)), p, jnp.nan)


def _gce_slope(p, q):
    """``d/dp (1 - p^q)/q = -p^(q-1)``; at ``p = 0`` (infinite for ``q < 1``) its value at ``p = 1e-7``."""
    return -jnp.power(jnp.where(p > 0, p, EPSILON), _as(q, p) - 1.0)


def _gce(y_true, y_pred, *, q):
    _, _, p = _true_class_prob(y_true, y_pred)
    q = _as(q, y_pred)
    return (1.0 - jnp.power(p, q)) / q


def _gce_grad(y_true, y_pred, *, q):
    in_range, index, p = _true_class_prob(y_true, y_pred)
    hot = jax.lax.broadcasted_iota(jnp.int32, y_pred.shape, y_pred.ndim - 1) == index
    return jnp.where(hot & in_range[..., None], _gce_slope(p, q)[..., None], 0.0)


def _gce_jvp(y_true, y_pred, t_pred, *, q):
    # The tangent reads one entry per row; its transpose is a scatter into a zero gradient.
    in_range, index, p = _true_class_prob(y_true, y_pred)
    values = (1.0 - jnp.power(p, _as(q, y_pred))) / _as(q, y_pred)
    picked = jnp.take_along_axis(t_pred, index, -1, mode="clip")[..., 0]
    return values, jnp.where(in_range, _gce_slope(p, q) * picked, 0.0)


def _gce_validate(opts):
    check_interval("categorical_generalized_cross_entropy", "q", opts["q"], 0.0, 1.0, low_open=True)


GCE = LossSpec(
    "categorical_generalized_cross_entropy",
    "CategoricalGeneralizedCrossEntropy",
    _gce,
    {"q": 0.5},
    local_grad=_gce_grad,
    validate=_gce_validate,
    prepare=sparse_prepare,
    integer_labels=True,
    custom_jvp=True,
    jvp=_gce_jvp,
)


@register(GCE)
def categorical_generalized_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    q: float | ArrayLike = 0.5,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Generalized crossentropy (Zhang and Sabuncu, 2018), robust to noisy labels.

    .. math:: \ell = \frac{1 - p_y^{\,q}}{q}

    with ``p_y`` the predicted probability of the labelled class (no clipping, as
    Keras). ``q -> 0`` approaches the crossentropy, ``q = 1`` is ``1 - p_y``.

    Difference from Keras: ``(N, 1)`` labels are squeezed to ``(N,)`` (Keras
    broadcasts them into an ``(N, N)`` loss).

    Args:
      y_true: integer labels, shape ``(...)`` or ``(..., 1)``; never cast to float.
      y_pred: probabilities, shape ``(..., C)``.
      q: in ``(0, 1]`` (may be traced).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): ``-p_y^(q - 1)`` on the labelled class,
    0 elsewhere; at ``p_y = 0``, where it is infinite for ``q < 1``, it takes its value
    at ``p_y = 1e-7`` so gradients stay finite. A NaN or infinity anywhere in a row
    makes that row's loss NaN.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
      >>> jaxloss.categorical_generalized_cross_entropy(jnp.array([0, 1, 0, 1]), y_pred)
      Array(0.3598597, dtype=float32)
    """
    return GCE.evaluate(y_true, y_pred, sample_weight, reduction, q=q)


# --------------------------------------------------------------------------
# kl_divergence
# --------------------------------------------------------------------------


def _kld_log_parts(y_true, y_pred, log_target):
    """PyTorch's kl_div / optax (``log_input``): targets with ``0 log 0 = 0``, nothing clipped.

    Returns the classes with target mass, the targets and their logs, 0 (not ``-inf``) where
    the target is 0 so that no untaken branch makes a NaN gradient.
    """
    if log_target:
        live = y_true > -jnp.inf
        log_t = jnp.where(live, y_true, 0.0)
        return live, jnp.where(live, jnp.exp(log_t), 0.0), log_t
    live = y_true > 0
    return live, y_true, jnp.log(jnp.where(live, y_true, 1.0))


def _kld(y_true, y_pred, *, log_input, log_target):
    if log_input:
        live, t, log_t = _kld_log_parts(y_true, y_pred, log_target)
        log_p = jnp.where(live, y_pred, 0.0)
        return jnp.sum(jnp.where(live, t * (log_t - log_p), 0.0), axis=-1)
    t = jnp.clip(jnp.exp(y_true) if log_target else y_true, EPSILON, 1.0)
    return jnp.sum(t * jnp.log(t / jnp.clip(y_pred, EPSILON, 1.0)), axis=-1)


def _kld_grad(y_true, y_pred, *, log_input, log_target):
    if log_input:
        live, t, _ = _kld_log_parts(y_true, y_pred, log_target)
        return jnp.where(live, -t, 0.0)
    t = jnp.clip(jnp.exp(y_true) if log_target else y_true, EPSILON, 1.0)
    return -t / jnp.clip(y_pred, EPSILON, 1.0) * _clip_slope(y_pred, EPSILON, 1.0)


def _kld_validate(opts):
    check_bool("kl_divergence", "log_input", opts["log_input"])
    check_bool("kl_divergence", "log_target", opts["log_target"])


KLD = LossSpec(
    "kl_divergence",
    "KLDivergence",
    _kld,
    {"log_input": False, "log_target": False},
    static=frozenset({"log_input", "log_target"}),
    local_grad=_kld_grad,
    validate=_kld_validate,
    aliases=("kld", "kullback_leibler_divergence"),
)


@register(KLD)
def kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    log_input: bool = False,
    log_target: bool = False,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(y_true || y_pred)`` over the last axis.

    .. math:: \ell = \sum_{-1} t \log\frac{t}{p},\quad t = \operatorname{clip}(y, \epsilon, 1),\
       p = \operatorname{clip}(\hat y, \epsilon, 1),\ \epsilon = 10^{-7}

    by default (Keras). ``log_target=True``: ``y_true`` holds log-probabilities, ``t = exp(y_true)``
    (clipped as above unless ``log_input``). ``log_input=True``: ``y_pred`` holds
    log-probabilities and nothing is clipped, PyTorch's ``kl_div(y_pred, y_true, log_target=...)``
    with ``reduction="none"`` summed over the last axis, and optax's ``kl_divergence`` /
    ``kl_divergence_with_log_targets``:

    .. math:: \ell = \sum_{-1} t\,(\log t - \log p),\quad 0 \log 0 = 0,

    where a zero target (``y_true == 0``, or ``-inf`` with ``log_target``) contributes 0 in
    value and gradient, even against ``log p = -inf`` (optax gives NaN for ``-inf`` log-targets).

    Args:
      y_true: target probabilities (log-probabilities with ``log_target``), shape ``(..., C)``.
      y_pred: predicted probabilities (log-probabilities with ``log_input``), same shape
        (Keras's rank rule applies).
      log_input: whether ``y_pred`` holds log-probabilities.
      log_target: whether ``y_true`` holds log-probabilities.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-t / p``, 0 where ``y_pred`` is clipped (outside ``[1e-7, 1]``); with
    ``log_input``, ``-t`` (0 at zero targets). Gradients with respect to the targets are
    finite at zero targets too (``log t`` read as 0 there).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]]))
      Array(0.14384104, dtype=float32)
      >>> jaxloss.kl_divergence(jnp.log(jnp.array([[0.0, 1.0]])), jnp.log(jnp.array([[0.0, 0.5]])),
      ...                       log_input=True, log_target=True)
      Array(0.6931472, dtype=float32)
    """
    return KLD.evaluate(y_true, y_pred, sample_weight, reduction, log_input=log_input, log_target=log_target)
