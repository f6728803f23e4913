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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    LossSpec,
    Reduction,
    canonical_axis,
    check_bool,
    check_int,
    check_interval,
    default_prepare,
    register,
    shape_error,
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


# --------------------------------------------------------------------------
# binary_crossentropy
# --------------------------------------------------------------------------


def _bce_elementwise(t, y_pred, from_logits):
    if from_logits:
        return -t * jax.nn.log_sigmoid(y_pred) - (1.0 - t) * jax.nn.log_sigmoid(-y_pred)
    p = jnp.clip(y_pred, EPSILON, _HIGH)
    return -(t * jnp.log(p) + (1.0 - t) * jnp.log(1.0 - p))


def _bce_elementwise_grad(t, y_pred, from_logits):
    if from_logits:
        return jax.nn.sigmoid(y_pred) - t
    p = jnp.clip(y_pred, EPSILON, _HIGH)
    return _clip_slope(y_pred, EPSILON, _HIGH) * ((1.0 - t) / (1.0 - p) - t / p)


def _bce(y_true, y_pred, *, from_logits, label_smoothing, axis):
    t = _smooth_binary(y_true, _as(label_smoothing, y_pred))
    return jnp.mean(_bce_elementwise(t, y_pred, from_logits), axis=axis)


def _bce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis):
    t = _smooth_binary(y_true, _as(label_smoothing, y_pred))
    return _bce_elementwise_grad(t, y_pred, from_logits) / float(y_pred.shape[axis])


def _bce_validate(opts):
    check_bool("binary_crossentropy", "from_logits", opts["from_logits"])
    _check_smoothing("binary_crossentropy", opts)
    _check_axis_option("binary_crossentropy", opts)


BCE = LossSpec(
    "binary_crossentropy",
    "BinaryCrossentropy",
    _bce,
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
    static=frozenset({"from_logits", "axis"}),
    local_grad=_bce_grad,
    reduced_axes=_class_axis,
    validate=_bce_validate,
    prepare=_axis_prepare,
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
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Binary crossentropy, averaged over ``axis``.

    .. math::
      \ell = -\operatorname{mean}_{axis}\big(t \log p + (1 - t)\log(1 - p)\big),\quad
      t = y(1 - s) + s/2

    with ``p = clip(y_pred, 1e-7, 1 - 1e-7)``, or ``log p = log_sigmoid(y_pred)``
    and ``log(1 - p) = log_sigmoid(-y_pred)`` when ``from_logits``.

    Args:
      y_true: targets in ``[0, 1]``, shape ``(..., d)``.
      y_pred: probabilities (or logits when ``from_logits``), same shape; Keras's rank
        rule applies (``(N,)`` against ``(N, 1)``).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ``s`` in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis averaged over.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient: ``(sigmoid(y_pred) - t) / d`` from logits; ``((1 - t)/(1 - p) - t/p) / d``
    from probabilities, 0 where ``y_pred`` is clipped (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.binary_crossentropy(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]]))
      Array(0.8149245, dtype=float32)
    """
    return BCE.evaluate(
        y_true, y_pred, sample_weight, reduction, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis
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
    gamma = _as(opts["gamma"], y_pred)
    if opts["from_logits"]:
        # Log space: exact 1 - p_t and crossentropy even where sigmoid saturates.
        log_p, log_q = jax.nn.log_sigmoid(y_pred), jax.nn.log_sigmoid(-y_pred)
        bce = -(t * log_p + (1.0 - t) * log_q)
        base = t * jnp.exp(log_q) + (1.0 - t) * jnp.exp(log_p)
    else:
        bce = _bce_elementwise(t, y_pred, False)
        base = 1.0 - (t * y_pred + (1.0 - t) * (1.0 - y_pred))  # Keras: 1 - p_t, unclipped
    return jnp.mean(weight * jnp.power(base, gamma) * bce, axis=opts["axis"])


def _bfce_grad(y_true, y_pred, **opts):
    t, weight = _bfce_parts(y_true, y_pred, opts)
    gamma = _as(opts["gamma"], y_pred)
    if opts["from_logits"]:
        log_p, log_q = jax.nn.log_sigmoid(y_pred), jax.nn.log_sigmoid(-y_pred)
        p, q = jnp.exp(log_p), jnp.exp(log_q)
        bce = -(t * log_p + (1.0 - t) * log_q)
        base = t * q + (1.0 - t) * p
        focal = jnp.power(base, gamma)
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
        d = d_focal * bce + jnp.power(base, gamma) * _bce_elementwise_grad(t, y_pred, False)
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


def _cce(y_true, y_pred, *, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    if from_logits:
        return -jnp.sum(_masked_log_probs(t, jax.nn.log_softmax(y_pred, axis=ax)), axis=ax)
    out, _ = _normalised(y_pred, ax)
    return -jnp.sum(t * jnp.log(jnp.clip(out, EPSILON, _HIGH)), axis=ax)


def _cce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    if from_logits:
        return jax.nn.softmax(y_pred, axis=ax) * jnp.sum(t, axis=ax, keepdims=True) - t
    out, total = _normalised(y_pred, ax)
    g = -t / jnp.clip(out, EPSILON, _HIGH) * _clip_slope(out, EPSILON, _HIGH)
    return _through_normalisation(g, out, total, ax)


def _cce_validate(opts):
    check_bool("categorical_crossentropy", "from_logits", opts["from_logits"])
    _check_smoothing("categorical_crossentropy", opts)
    _check_axis_option("categorical_crossentropy", opts)


CCE = LossSpec(
    "categorical_crossentropy",
    "CategoricalCrossentropy",
    _cce,
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
    static=frozenset({"from_logits", "axis"}),
    local_grad=_cce_grad,
    reduced_axes=_class_axis,
    validate=_cce_validate,
    prepare=_axis_prepare,
    custom_jvp=True,
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
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Categorical crossentropy over the class ``axis`` (one-hot or soft targets).

    .. math::
      \ell = -\sum_{axis} t \log p,\quad t = y(1 - s) + s / C

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` (Keras normalises the
    probabilities), or ``log p = log_softmax(y_pred)`` when ``from_logits``.

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
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): from logits ``softmax(z) sum(t) - t``;
    from probabilities ``(g - sum(g out)) / sum(y_pred)`` with ``out`` the normalised
    probabilities and ``g = -t / out`` (0 where clipped).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> jaxloss.categorical_crossentropy(y_true, jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]), reduction="none")
      Array([0.05129331, 2.3025851 ], dtype=float32)
      >>> logits = jnp.array([[-jnp.inf, 2.0, 0.0]])
      >>> jaxloss.categorical_crossentropy(jnp.array([[0.0, 1.0, 0.0]]), logits, from_logits=True)
      Array(0.12692805, dtype=float32)
    """
    return CCE.evaluate(
        y_true, y_pred, sample_weight, reduction, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis
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


def _cfce(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    alpha, gamma = _class_alpha(alpha, y_pred, ax), _as(gamma, y_pred)
    if from_logits:
        # Log space: (1 - p) = -expm1(log p) stays exact where softmax saturates.
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
        focal = jnp.power(-jnp.expm1(log_p), gamma)
        return -jnp.sum(alpha * focal * _masked_log_probs(t, log_p), axis=ax)
    out, _ = _normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, _HIGH)
    return jnp.sum(alpha * jnp.power(1.0 - clipped, gamma) * (-t * jnp.log(clipped)), axis=ax)


def _cfce_grad(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = _axis_of({"axis": axis}, y_pred.ndim)
    t = _smooth_categorical(y_true, _as(label_smoothing, y_pred), ax)
    alpha, gamma = _class_alpha(alpha, y_pred, ax), _as(gamma, y_pred)
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
        # Per class f(l) = -(1 - e^l)^gamma l has df/dl = focal (gamma h - 1), h = e^l l / (1 - e^l),
        # which tends to -1 as l -> 0. Classes with no target mass (maybe -inf logits) are skipped.
        live = t != 0
        log_live = jnp.where(live, log_p, 0.0)
        one_minus = -jnp.expm1(log_live)
        positive = one_minus > 0
        h = jnp.where(positive, jnp.exp(log_live) * log_live / jnp.where(positive, one_minus, 1.0), -1.0)
        dl = jnp.where(live, alpha * t * jnp.power(one_minus, gamma) * (gamma * h - 1.0), 0.0)
        return dl - jnp.exp(log_p) * jnp.sum(dl, axis=ax, keepdims=True)
    out, total = _normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, _HIGH)
    one_minus = 1.0 - clipped
    d_clipped = (
        alpha
        * t
        * (gamma * jnp.power(one_minus, gamma - 1.0) * jnp.log(clipped) - jnp.power(one_minus, gamma) / clipped)
    )
    return _through_normalisation(d_clipped * _clip_slope(out, EPSILON, _HIGH), out, total, ax)


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


def _scce(y_true, y_pred, *, from_logits, ignore_class, axis):
    ax, labels, valid, y_pred = _scce_inputs(y_true, y_pred, from_logits, ignore_class, axis)
    hot = _one_hot(labels, y_pred.shape, ax)
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
    else:
        out, _ = _normalised(y_pred, ax)
        log_p = jnp.log(jnp.clip(out, EPSILON, _HIGH))
    # where, not a one-hot product: a -inf logit of another class contributes 0, not NaN.
    values = -jnp.sum(jnp.where(hot, log_p, 0.0), axis=ax)
    if valid is None:
        return values
    return jnp.where(valid, values, 0.0), valid


def _scce_grad(y_true, y_pred, *, from_logits, ignore_class, axis):
    ax, labels, valid, y_pred = _scce_inputs(y_true, y_pred, from_logits, ignore_class, axis)
    hot = _one_hot(labels, y_pred.shape, ax)
    if from_logits:
        grad = jax.nn.softmax(y_pred, axis=ax) * jnp.sum(hot, axis=ax, keepdims=True) - hot
    else:
        out, total = _normalised(y_pred, ax)
        g = jnp.where(hot, -_clip_slope(out, EPSILON, _HIGH) / jnp.clip(out, EPSILON, _HIGH), 0.0)
        grad = _through_normalisation(g, out, total, ax)
    if valid is None:
        return grad
    return jnp.where(jnp.expand_dims(valid, ax), grad, 0.0)


def _scce_validate(opts):
    name = "sparse_categorical_crossentropy"
    check_bool(name, "from_logits", opts["from_logits"])
    check_int(name, "ignore_class", opts["ignore_class"], allow_none=True)
    _check_axis_option(name, opts)


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
    return y_true, y_pred


SCCE = LossSpec(
    "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy",
    _scce,
    {"from_logits": False, "ignore_class": None, "axis": -1},
    static=frozenset({"from_logits", "ignore_class", "axis"}),
    local_grad=_scce_grad,
    reduced_axes=_class_axis,
    validate=_scce_validate,
    prepare=_scce_prepare,
    integer_labels=True,
    custom_jvp=True,
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
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Crossentropy with integer class labels.

    .. math:: \ell = -\log p_{y},

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` along ``axis``, or
    ``log p = log_softmax(y_pred)`` when ``from_logits``. A label outside
    ``[0, C)`` selects no class and gives 0, as Keras's one-hot does.

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
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (the labels' shape) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): from logits ``softmax(z) - onehot(y)``;
    from probabilities ``(g - sum(g out)) / sum(y_pred)`` with ``g = -onehot(y) / out``
    (0 where clipped); 0 at ignored positions.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
      >>> jaxloss.sparse_categorical_crossentropy(jnp.array([1, 2]), y_pred)
      Array(1.1769392, dtype=float32)
      >>> jaxloss.sparse_categorical_crossentropy(jnp.array([1, -1]), y_pred, ignore_class=-1)
      Array(0.05129331, dtype=float32)
    """
    return SCCE.evaluate(
        y_true, y_pred, sample_weight, reduction, from_logits=from_logits, ignore_class=ignore_class, axis=axis
    )


# --------------------------------------------------------------------------
# categorical_generalized_cross_entropy
# --------------------------------------------------------------------------


def _true_class_prob(y_true, y_pred):
    hot = _one_hot(_labels(y_true), y_pred.shape, y_pred.ndim - 1)
    p = jnp.sum(jnp.where(hot, y_pred, 0.0), axis=-1)
    # A NaN anywhere in the row shows in the loss (XLA turns Keras's product with
    # the one-hot into a select, which would hide it).
    return hot, jnp.where(jnp.any(jnp.isnan(y_pred), axis=-1), jnp.nan, p)


def _gce(y_true, y_pred, *, q):
    _, p = _true_class_prob(y_true, y_pred)
    q = _as(q, y_pred)
    return (1.0 - jnp.power(p, q)) / q


def _gce_grad(y_true, y_pred, *, q):
    hot, p = _true_class_prob(y_true, y_pred)
    q = _as(q, y_pred)
    # The slope -p^(q-1) is infinite at p = 0 for q < 1: capped at its value at p = 1e-7.
    slope = -jnp.power(jnp.maximum(p, EPSILON), q - 1.0)
    return jnp.where(hot, slope[..., None], 0.0)


def _gce_validate(opts):
    check_interval("categorical_generalized_cross_entropy", "q", opts["q"], 0.0, 1.0, low_open=True)


def _gce_prepare(spec, y_true, y_pred, opts):
    """Labels ``(...)`` against probabilities ``(..., C)``; ``(..., 1)`` labels are squeezed."""
    if y_pred.ndim == 0:
        raise shape_error(spec.name, "y_pred must have rank >= 1", y_true=y_true.shape, y_pred=y_pred.shape)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    if y_true.shape != y_pred.shape[:-1]:
        raise shape_error(
            spec.name,
            "y_true must have y_pred's shape without its last (class) axis",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    return y_true, y_pred


GCE = LossSpec(
    "categorical_generalized_cross_entropy",
    "CategoricalGeneralizedCrossEntropy",
    _gce,
    {"q": 0.5},
    local_grad=_gce_grad,
    validate=_gce_validate,
    prepare=_gce_prepare,
    integer_labels=True,
    custom_jvp=True,
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
    0 elsewhere; below ``p_y = 1e-7`` the (for ``q < 1`` unbounded) slope is capped at
    its value at ``1e-7`` so gradients stay finite.

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


def _kld(y_true, y_pred):
    t = jnp.clip(y_true, EPSILON, 1.0)
    return jnp.sum(t * jnp.log(t / jnp.clip(y_pred, EPSILON, 1.0)), axis=-1)


def _kld_grad(y_true, y_pred):
    t = jnp.clip(y_true, EPSILON, 1.0)
    return -t / jnp.clip(y_pred, EPSILON, 1.0) * _clip_slope(y_pred, EPSILON, 1.0)


KLD = LossSpec(
    "kl_divergence",
    "KLDivergence",
    _kld,
    {},
    local_grad=_kld_grad,
    aliases=("kld", "kullback_leibler_divergence"),
)


@register(KLD)
def kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(y_true || y_pred)`` over the last axis.

    .. math:: \ell = \sum_{-1} t \log\frac{t}{p},\quad t = \operatorname{clip}(y, \epsilon, 1),\
       p = \operatorname{clip}(\hat y, \epsilon, 1),\ \epsilon = 10^{-7}

    Args:
      y_true: target probabilities, shape ``(..., C)``.
      y_pred: predicted probabilities, same shape (Keras's rank rule applies).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-t / p``, 0 where ``y_pred`` is clipped (outside ``[1e-7, 1]``).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]]))
      Array(0.14384104, dtype=float32)
    """
    return KLD.evaluate(y_true, y_pred, sample_weight, reduction)
