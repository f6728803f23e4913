"""Focal and noise-robust crossentropies: binary and categorical focal (Keras), sigmoid focal
(optax), generalized crossentropy (Keras).

Focal losses from logits are computed in log space (``log_sigmoid``, ``log_softmax``,
``1 - p`` as ``sigmoid(-z)`` or ``-expm1(log p)``): equal to Keras wherever Keras's
internal probability clipping is inactive, and finite with a true non-zero gradient
where Keras saturates.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    TRANSCENDENTAL,
    Axis,
    Bench,
    Example,
    Flag,
    Fraction,
    Number,
    Peer,
    PerClass,
    Reduction,
    SampleWeight,
    Scalar,
    class_labels,
    default_prepare,
    nan_where,
    option_axis,
    register,
    sparse_prepare,
)
from ._crossentropy import (
    HIGH,
    LOGITS_OPTS,
    bce_elementwise,
    bce_elementwise_grad,
    clip_slope,
    normalised,
    smooth_binary,
    smooth_categorical,
    through_normalisation,
)
from ._inputs import BINARY, LAST_AXIS_LABELS, LOGITS, ONE_HOT, PROBABILITIES, Distribution
from ._logsumexp import as_dtype, bce_from_logits, masked_log_probs, sigmoid_minus_target, sigmoid_parts


def _small_whole_power(gamma: float) -> bool:
    """Worth compiling in: 0 (no focal term) and small whole powers (multiplications, not exp/log)."""
    return float(gamma).is_integer() and 0 <= gamma <= 8


Gamma = Annotated[Number, Scalar(0.0, bake=_small_whole_power)]
ClassAlpha = Annotated[Number | ArrayLike, PerClass(0.0, 1.0, scalar=True)]
OptionalFraction = Annotated[Number | None, Scalar(0.0, 1.0, optional=True)]


def _pow(x: jax.Array, exponent: Any) -> jax.Array:
    """``x ** exponent``; a small whole Python exponent (focal's default gamma=2) is multiplications, not exp/log."""
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and _small_whole_power(exponent):
        return jax.lax.integer_pow(x, int(exponent))
    return jnp.power(x, as_dtype(exponent, x))


def _safe_pow(x: jax.Array, exponent: jax.Array) -> jax.Array:
    """``x ** exponent`` with ``0 ** e`` read as 0 for ``e != 0`` (also ``e < 0``) and 1 for ``e == 0``."""
    nonzero = x != 0
    return jnp.where(nonzero, jnp.power(jnp.where(nonzero, x, 1.0), exponent), jnp.where(exponent == 0, 1.0, 0.0))


def _binary_pred(options):
    return LOGITS if options["from_logits"] else PROBABILITIES


# --------------------------------------------------------------------------
# binary_focal_crossentropy
# --------------------------------------------------------------------------


def _bfce_weight(t, y_pred, apply_class_balancing, alpha):
    if not apply_class_balancing:
        return 1.0
    alpha = as_dtype(alpha, y_pred)
    return t * alpha + (1.0 - t) * (1.0 - alpha)


def _bfce(y_true, y_pred, *, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis):
    t = smooth_binary(y_true, as_dtype(label_smoothing, y_pred))
    weight = _bfce_weight(t, y_pred, apply_class_balancing, alpha)
    if from_logits:
        # Log space: exact 1 - p_t and crossentropy even where sigmoid saturates.
        p, q, log1p_e = sigmoid_parts(y_pred)
        bce = bce_from_logits(t, y_pred, log1p_e, t)
        base = t * q + (1.0 - t) * p
    else:
        bce = bce_elementwise(t, y_pred, False)
        base = 1.0 - (t * y_pred + (1.0 - t) * (1.0 - y_pred))  # Keras: 1 - p_t, unclipped
    return jnp.mean(weight * _pow(base, gamma) * bce, axis=axis)


def _bfce_grad(y_true, y_pred, *, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis):
    t = smooth_binary(y_true, as_dtype(label_smoothing, y_pred))
    weight = _bfce_weight(t, y_pred, apply_class_balancing, alpha)
    focal_power = _pow
    gamma_ = as_dtype(gamma, y_pred)
    if from_logits:
        p, q, log1p_e = sigmoid_parts(y_pred)
        bce = bce_from_logits(t, y_pred, log1p_e, t)
        base = t * q + (1.0 - t) * p
        focal = focal_power(base, gamma)
        # d base / dz = (1 - 2t) p q, and gamma base^(gamma-1) p q = gamma focal * (p q / base):
        # the ratio lies in [0, 1] and tends to 1 where base underflows to 0.
        positive = base > 0
        ratio = jnp.where(positive, p * q / jnp.where(positive, base, 1.0), 1.0)
        d = gamma_ * focal * (1.0 - 2.0 * t) * ratio * bce + focal * sigmoid_minus_target(t, p, q)
    else:
        bce = bce_elementwise(t, y_pred, False)
        base = 1.0 - (t * y_pred + (1.0 - t) * (1.0 - y_pred))
        # At base == 0 with gamma < 1 the slope of base^gamma is infinite: taken as 0 (finite gradients).
        d_focal = gamma_ * _safe_pow(base, gamma_ - 1.0) * (1.0 - 2.0 * t)
        d = d_focal * bce + focal_power(base, gamma) * bce_elementwise_grad(t, y_pred, False)
    return weight * d / float(y_pred.shape[axis])


@register(
    formula=_bfce,
    local_grad=_bfce_grad,
    gradient="rule",
    inputs={"y_true": PROBABILITIES, "y_pred": _binary_pred},
    examples=(
        Example(inputs={"y_true": BINARY}),
        Example(LOGITS_OPTS, inputs={"y_true": BINARY}),
        Example(
            {"apply_class_balancing": True, "alpha": 0.4, "gamma": 0.5}, shape=(2, 3, 4), inputs={"y_true": BINARY}
        ),
        Example(
            {"apply_class_balancing": True, "gamma": 0.0, "from_logits": True, "label_smoothing": 0.1},
            shape=(2, 3, 4),
            inputs={"y_true": BINARY},
        ),
        Example({"gamma": 3.0, "label_smoothing": 0.2}, label="soft"),
        Example({"gamma": 1.5, "from_logits": True, "axis": 0}, shape=(4, 3), inputs={"y_true": BINARY}),
        Example(
            {"apply_class_balancing": True, "alpha": 0.7},
            shape=(7, 1),
            true_shape=(7,),
            inputs={"y_true": BINARY},
            peers=False,
            label="N_vs_N1",
        ),
    ),
    prepare=default_prepare,
    reduced_axes=option_axis,
    keras="BinaryFocalCrossentropy",
    requires={"alpha": ("apply_class_balancing", True)},
    peers=(
        Peer(
            "optax",
            lambda t, p, **o: optax.losses.sigmoid_focal_loss(
                p, t, alpha=o["alpha"] if o["apply_class_balancing"] else None, gamma=o["gamma"]
            ).mean(o["axis"]),
            "sigmoid_focal_loss(z, t, alpha, gamma)",
            applies=lambda o: o["from_logits"] and o["label_smoothing"] == 0,
        ),
    ),
    bench=Bench(LOGITS_OPTS, family=TRANSCENDENTAL),
)
def binary_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    apply_class_balancing: Flag = False,
    alpha: Fraction = 0.25,
    gamma: Gamma = 2.0,
    from_logits: Flag = False,
    label_smoothing: Fraction = 0.0,
    axis: Axis = -1,
    sample_weight: SampleWeight = None,
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
    the crossentropy near 16 with a zero gradient. ``alpha`` acts only with
    ``apply_class_balancing=True``: set away from its default without it, it raises
    (Keras ignores it).

    Args:
      y_true: targets in ``[0, 1]``, shape ``(..., d)``.
      y_pred: probabilities (or logits when ``from_logits``), same shape (Keras's rank rule).
      apply_class_balancing: weight class 1 by ``alpha`` and class 0 by ``1 - alpha``.
      alpha: balancing weight in ``[0, 1]`` (may be traced).
      gamma: focusing parameter ``>= 0`` (may be traced; whole values up to 8 are
        compiled in as multiplications); 0 gives the crossentropy.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis averaged over.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): ``w (gamma (1 - p_t)^(gamma - 1) (1 - 2t)
    dp bce + (1 - p_t)^gamma d bce) / d``; from logits ``dp = p(1 - p)`` and
    ``d bce = (1 - t) sigmoid(z) - t sigmoid(-z)`` (exact at confident logits). From
    probabilities at exactly ``p_t = 1`` with ``gamma < 1`` the true slope is infinite; it is
    taken as 0 so gradients stay finite.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true, y_pred = jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]])
      >>> print(jaxloss.binary_focal_crossentropy(y_true, y_pred, gamma=2.0, reduction="none").round(5))
      [0.32986 0.2058 ]
    """
    ...


# --------------------------------------------------------------------------
# categorical_focal_crossentropy
# --------------------------------------------------------------------------


def _split_alpha(alpha: Any, y_pred: jax.Array, ax: int) -> tuple[Any, Any]:
    """``(per-class factor, per-row factor)``: a scalar alpha multiplies after the class sum.

    Both the loss and its gradient are linear in alpha, so a scalar is applied once per row
    (XLA:CPU would otherwise store a broadcast of it before the class reduction).
    """
    alpha = as_dtype(alpha, y_pred)
    if alpha.ndim == 1:
        shape = [1] * y_pred.ndim
        shape[ax] = alpha.shape[0]
        return alpha.reshape(shape), 1.0
    return 1.0, alpha.reshape(())


def _cfce(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = axis % y_pred.ndim
    t = smooth_categorical(y_true, as_dtype(label_smoothing, y_pred), ax)
    per_class, per_row = _split_alpha(alpha, y_pred, ax)
    if from_logits:
        # Log space: (1 - p) = -expm1(log p) stays exact where softmax saturates.
        log_p = jax.nn.log_softmax(y_pred, axis=ax)
        focal = _pow(-jnp.expm1(log_p), gamma)
        return -per_row * jnp.sum(per_class * focal * masked_log_probs(t, log_p), axis=ax)
    out, _ = normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, HIGH)
    return per_row * jnp.sum(per_class * _pow(1.0 - clipped, gamma) * (-t * jnp.log(clipped)), axis=ax)


def _cfce_grad(y_true, y_pred, *, alpha, gamma, from_logits, label_smoothing, axis):
    ax = axis % y_pred.ndim
    t = smooth_categorical(y_true, as_dtype(label_smoothing, y_pred), ax)
    (per_class, per_row), power = _split_alpha(alpha, y_pred, ax), functools.partial(_pow, exponent=gamma)
    gamma = as_dtype(gamma, y_pred)
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
    out, total = normalised(y_pred, ax)
    clipped = jnp.clip(out, EPSILON, HIGH)
    one_minus = 1.0 - clipped
    d_clipped = (
        per_class * t * (gamma * jnp.power(one_minus, gamma - 1.0) * jnp.log(clipped) - power(one_minus) / clipped)
    )
    return per_row * through_normalisation(d_clipped * clip_slope(out, EPSILON, HIGH), out, total, ax)


def _cfce_pred(options):
    return LOGITS if options["from_logits"] else Distribution(axis="axis")


@register(
    formula=_cfce,
    local_grad=_cfce_grad,
    gradient="rule",
    inputs={"y_true": Distribution(axis="axis"), "y_pred": _cfce_pred},
    examples=(
        Example(inputs={"y_true": ONE_HOT}),
        Example(LOGITS_OPTS, inputs={"y_true": ONE_HOT}),
        Example({"alpha": 0.5, "gamma": 0.5, "label_smoothing": 0.1}, shape=(2, 3, 4), inputs={"y_true": ONE_HOT}),
        Example({"gamma": 0.0, "from_logits": True, "label_smoothing": 0.2}, shape=(2, 3, 4), label="soft"),
        # Keras broadcasts a per-class alpha by rank promotion (tested beside the loss).
        Example({"alpha": np.array([0.1, 0.2, 0.3, 0.4, 0.5])}, inputs={"y_true": ONE_HOT}, keras=False),
        Example(
            {"gamma": 3.0, "from_logits": True, "axis": 0},
            shape=(4, 3),
            inputs={"y_true": Distribution(axis="axis", hard=True)},
        ),
        Example({"axis": 1}, shape=(2, 4, 3), inputs={"y_true": Distribution(axis="axis", hard=True)}),
        # Keras smooths with the last axis's size whatever the class axis.
        Example({"gamma": 0.5, "label_smoothing": 0.1, "axis": 0}, shape=(4, 3), keras=False),
    ),
    prepare=default_prepare,
    reduced_axes=option_axis,
    keras="CategoricalFocalCrossentropy",
    bench=Bench(LOGITS_OPTS, family=TRANSCENDENTAL),
)
def categorical_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: ClassAlpha = 0.25,
    gamma: Gamma = 2.0,
    from_logits: Flag = False,
    label_smoothing: Fraction = 0.0,
    axis: Axis = -1,
    sample_weight: SampleWeight = None,
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
      >>> [round(float(v), 5) for v in jaxloss.categorical_focal_crossentropy(y_true, y_pred, reduction="none")]
      [0.00026, 0.67591]
    """
    ...


# --------------------------------------------------------------------------
# sigmoid_focal (optax's sigmoid_focal_loss)
# --------------------------------------------------------------------------


def _as_binary_focal(alpha, gamma):
    """optax's sigmoid focal loss is Keras's binary focal crossentropy from logits, alpha_t = class balancing."""
    return {
        "apply_class_balancing": alpha is not None,
        "alpha": 0.25 if alpha is None else alpha,
        "gamma": gamma,
        "from_logits": True,
        "label_smoothing": 0.0,
        "axis": -1,
    }


def _sigmoid_focal(y_true, y_pred, *, alpha, gamma):
    return _bfce(y_true, y_pred, **_as_binary_focal(alpha, gamma))


def _sigmoid_focal_grad(y_true, y_pred, *, alpha, gamma):
    return _bfce_grad(y_true, y_pred, **_as_binary_focal(alpha, gamma))


@register(
    formula=_sigmoid_focal,
    local_grad=_sigmoid_focal_grad,
    gradient="rule",
    inputs={"y_true": PROBABILITIES, "y_pred": LOGITS},
    examples=(
        Example(inputs={"y_true": BINARY}),
        Example({"alpha": 0.25, "gamma": 0.5}, label="soft"),
        Example({"alpha": 0.75, "gamma": 3.0}, shape=(2, 3, 4), inputs={"y_true": BINARY}),
    ),
    aliases=("sigmoid_focal_loss",),
    peers=(
        Peer(
            "optax",
            lambda t, p, alpha, gamma: optax.losses.sigmoid_focal_loss(p, t, alpha=alpha, gamma=gamma).mean(-1),
            "sigmoid_focal_loss(z, t, alpha, gamma)",
        ),
        Peer(
            "torch",
            lambda torch, F, t, p, alpha, gamma: _torch_sigmoid_focal(torch, F, t, p, alpha, gamma),
            "torchvision's sigmoid_focal_loss formula",
        ),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def sigmoid_focal(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: OptionalFraction = None,
    gamma: Gamma = 2.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Sigmoid focal loss on logits (optax's ``sigmoid_focal_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1}\ \alpha_t (1 - p_t)^\gamma\, \operatorname{bce}(y, \hat y),\quad
       1 - p_t = (1 - y)\,\sigma(\hat y) + y\,\sigma(-\hat y),\quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    ``1 - p_t`` is computed in log space, so the loss and its gradient stay finite for
    any logit and any ``gamma >= 0``. Unlike Keras's ``binary_focal_crossentropy``,
    ``alpha=None`` means no class balancing and soft labels enter ``1 - p_t`` linearly.

    Args:
      y_true: labels in ``{0, 1}`` or soft labels in ``[0, 1]``, shape ``(..., d)``.
      y_pred: logits, same shape.
      alpha: ``None`` (no balancing) or the positive class's weight in ``[0, 1]``.
      gamma: the focusing exponent, non-negative (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (optax's elementwise output averaged over the last axis).

    Gradient: ``alpha_t (1 - p_t)^gamma (sigmoid(x) - y + gamma bce (1 - 2y) p (1 - p) / (1 - p_t)) / d``,
    with ``sigmoid(x) - y`` computed without cancellation at confident logits.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> print(f"{jaxloss.sigmoid_focal(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]), gamma=1.0):.5f}")
      0.34657
    """
    ...


def _torch_sigmoid_focal(torch, F, t, p, alpha, gamma):
    prob = torch.sigmoid(p)
    ce = F.binary_cross_entropy_with_logits(p, t, reduction="none")
    p_t = prob * t + (1 - prob) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean(-1)


# --------------------------------------------------------------------------
# categorical_generalized_cross_entropy
# --------------------------------------------------------------------------


def _true_class_prob(y_true, y_pred):
    """``(labels, p_y)``: the labelled class's probability, read with one gather per row.

    A NaN or infinity anywhere in the row makes ``p_y`` NaN: the row is not a distribution,
    and the loss shows it (Keras's product with the one-hot becomes a select under XLA and
    hides it); so does a label that names no class.
    """
    labels = class_labels(y_true, y_pred.shape[-1])
    p = jnp.take_along_axis(y_pred, labels.index[..., None], -1, mode="clip")[..., 0]
    p = jnp.where(jnp.isfinite(jnp.sum(y_pred, axis=-1)), p, jnp.nan)
    return labels, nan_where(labels.nan, p)


def _gce_slope(p, q):
    """``d/dp (1 - p^q)/q = -p^(q-1)``; at ``p = 0`` (infinite for ``q < 1``) its value at ``p = 1e-7``."""
    return -jnp.power(jnp.where(p > 0, p, jnp.where(jnp.isnan(p), p, EPSILON)), as_dtype(q, p) - 1.0)


def _gce(y_true, y_pred, *, q):
    _, p = _true_class_prob(y_true, y_pred)
    q = as_dtype(q, y_pred)
    return (1.0 - jnp.power(p, q)) / q


def _gce_grad(y_true, y_pred, *, q):
    labels, p = _true_class_prob(y_true, y_pred)
    hot = jax.lax.broadcasted_iota(jnp.int32, y_pred.shape, y_pred.ndim - 1) == labels.index[..., None]
    return nan_where(labels.nan, jnp.where(hot, _gce_slope(p, q)[..., None], 0.0))


def _gce_jvp(y_true, y_pred, t_pred, *, q):
    # The tangent reads one entry per row; its transpose is a scatter into a zero gradient.
    labels, p = _true_class_prob(y_true, y_pred)
    values = (1.0 - jnp.power(p, as_dtype(q, y_pred))) / as_dtype(q, y_pred)
    picked = jnp.take_along_axis(t_pred, labels.index[..., None], -1, mode="clip")[..., 0]
    return values, _gce_slope(p, q) * picked


def _gce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = sparse_prepare(spec, y_true, y_pred, opts)
    if y_pred.shape[-1] == 0:
        raise ValueError(f"{spec.name}: y_pred must have at least one class; received y_pred.shape={y_pred.shape}.")
    return y_true, y_pred


@register(
    formula=_gce,
    local_grad=_gce_grad,
    gradient="rule",
    jvp=_gce_jvp,
    inputs={"y_true": LAST_AXIS_LABELS, "y_pred": Distribution(axis=-1)},
    examples=(
        Example({"q": 0.3}),
        Example(shape=(2, 3, 4), label="rank3"),
        Example({"q": 0.9}, shape=(6, 3)),
        # Keras's class rejects q = 1 (the function computes it), and broadcasts (N, 1) labels to (N, N).
        Example({"q": 1.0}, keras=False),
        Example({"q": 0.5}, true_shape=(6, 1), keras=False, label="N1_labels"),
    ),
    prepare=_gce_prepare,
    keras="CategoricalGeneralizedCrossEntropy",
    bench=Bench(),
)
def categorical_generalized_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    q: Annotated[Number, Scalar(0.0, 1.0, low_open=True)] = 0.5,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Generalized crossentropy (Zhang and Sabuncu, 2018), robust to noisy labels.

    .. math:: \ell = \frac{1 - p_y^{\,q}}{q}

    with ``p_y`` the predicted probability of the labelled class (no clipping, as
    Keras). ``q -> 0`` approaches the crossentropy, ``q = 1`` is ``1 - p_y``.

    Differences from Keras: ``(N, 1)`` labels are squeezed to ``(N,)`` (Keras
    broadcasts them into an ``(N, N)`` loss); a label that names no class gives NaN.

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
      >>> print(f"{jaxloss.categorical_generalized_cross_entropy(jnp.array([0, 1, 0, 1]), y_pred):.5f}")
      0.35986
    """
    ...
