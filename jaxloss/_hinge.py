"""Hinge and margin classification losses.

Keras's hinge, squared_hinge and categorical_hinge; optax's multiclass_hinge and
perceptron; PyTorch's multi_margin, soft_margin and multilabel_soft_margin.

Also the two helpers the margin losses share (:func:`relu`, :func:`poison`): a NaN
input, or a label that names no class, gives NaN in the value *and* the gradient.
``jnp.maximum(x, 0)`` and ``jax.nn.relu`` keep a NaN in the value but give it a zero
derivative, and ``jnp.where(bad, nan, values)`` a zero cotangent, so neither is used
where a NaN must reach the gradient.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    POLYNOMIAL,
    Bench,
    ClassWeights,
    Example,
    Peer,
    RealNumber,
    Reduction,
    SampleWeight,
    along,
    class_labels,
    default_prepare,
    nan_where,
    register,
    shape_error,
    sparse_prepare,
    width,
)
from ._inputs import (
    BINARY,
    HINGE_LABELS,
    HINGE_ONE_HOT,
    LAST_AXIS_LABELS,
    MULTI_HOT,
    PROBABILITIES,
    REAL,
    SIGNED_ONE_HOT,
    SIGNS,
)

# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def relu_slope(x: jax.Array, tie: float = 0.0) -> jax.Array:
    """d max(x, 0) / dx: 1 above 0, 0 below, ``tie`` at 0, NaN at NaN.

    ``sign(max(x, 0))``: ``jnp.maximum`` keeps a NaN, ``sign`` too; one op where selects
    would take three.
    """
    slope = jnp.sign(jnp.maximum(x, 0.0))
    return slope if tie == 0 else jnp.where(x == 0, tie, slope).astype(x.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def relu(x: jax.Array, tie: float = 0.0) -> jax.Array:
    """``max(x, 0)`` whose derivative is NaN at NaN (``tie`` is its slope at 0: 0 as
    ``jax.nn.relu``, 0.5 as the autodiff of ``jnp.maximum(x, 0)``)."""
    return jnp.maximum(x, 0.0)


@relu.defjvp
def _relu_jvp(tie, primals, tangents):
    (x,), (t,) = primals, tangents
    return relu(x, tie), relu_slope(x, tie) * t


def poison(bad: jax.Array | None, values: jax.Array) -> jax.Array:
    """``values`` with NaN where ``bad`` (broadcast from the left), in value and derivative.

    A product, not a select: the cotangent of a poisoned sample is NaN, so ``jax.grad``
    gives NaN on its inputs as the closed forms do (with :func:`jaxloss._core.nan_where`).
    """
    if bad is None:
        return values
    bad = bad.reshape(bad.shape + (1,) * (values.ndim - bad.ndim))
    return values * jnp.where(bad, jnp.nan, 1.0).astype(values.dtype)


def with_classes(base, what: str = "class"):
    """``base`` prepare, then a clear error for a ``y_pred`` with no class (an empty last axis)."""

    def prepare(spec, y_true, y_pred, opts):
        y_true, y_pred = base(spec, y_true, y_pred, opts)
        if y_pred.ndim and y_pred.shape[-1] == 0:
            raise shape_error(
                spec.name,
                f"y_pred must hold at least one {what} along its last axis",
                y_true=y_true.shape,
                y_pred=y_pred.shape,
            )
        return y_true, y_pred

    return prepare


def _signed_labels(y_true: jax.Array) -> jax.Array:
    """Keras's ``convert_binary_labels_to_hinge``: ``{0, 1}`` to ``{-1, 1}``.

    The test is batch-wide: labels are converted only when every one of them is
    0 or 1; a batch with a single other value (a -1, a 0.5) is used unchanged.
    """
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def _kinked(*examples: Example) -> tuple[Example, ...]:
    return tuple(Example(**{**e.__dict__, "smooth": False}) for e in examples)


# Keras's hinge examples: signs, {0, 1} labels (converted batch-wide, so optax and PyTorch,
# which take signs, do not apply), rank 3, and Keras's rank rule.
_SIGN_EXAMPLES = _kinked(
    Example(),
    Example(shape=(3, 4, 5), label="rank3"),
    Example(inputs={"y_true": BINARY}, peers=False, label="binary01"),
    Example(shape=(2, 3, 4), inputs={"y_true": BINARY}, peers=False, label="binary01_rank3"),
    Example(shape=(7, 1), true_shape=(7,), peers=False, label="N_vs_N1"),
)

# --------------------------------------------------------------------------
# hinge
# --------------------------------------------------------------------------


def _hinge(y_true, y_pred):
    t = _signed_labels(y_true)
    return jnp.mean(relu(1.0 - t * y_pred, 0.5), axis=-1)


def _hinge_grad(y_true, y_pred):
    t = _signed_labels(y_true)
    return -t * relu_slope(1.0 - t * y_pred, 0.5) / width(y_pred)


@register(
    formula=_hinge,
    local_grad=_hinge_grad,
    gradient="reference",
    inputs={"y_true": HINGE_LABELS, "y_pred": REAL},
    examples=_SIGN_EXAMPLES,
    keras="Hinge",
    peers=(
        Peer("optax", lambda t, p: optax.losses.hinge_loss(p, t).mean(-1), "hinge_loss(p, t).mean(-1)"),
        Peer("torch", lambda torch, F, t, p: torch.clamp(1.0 - t * p, min=0.0).mean(-1), "clamp(1 - t p, min=0)"),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    exactly at the kink, autodiff's choice of subgradient); NaN where an input is NaN.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.hinge(jnp.array([[1.0, -1.0]]), jnp.array([[0.5, 0.5]]))
      Array(1., dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# squared_hinge
# --------------------------------------------------------------------------


def _squared_hinge(y_true, y_pred):
    t = _signed_labels(y_true)
    return jnp.mean(jnp.square(relu(1.0 - t * y_pred, 0.5)), axis=-1)


def _squared_hinge_grad(y_true, y_pred):
    t = _signed_labels(y_true)
    return (-2.0 / width(y_pred)) * t * jnp.maximum(1.0 - t * y_pred, 0.0)


@register(
    formula=_squared_hinge,
    local_grad=_squared_hinge_grad,
    gradient="reference",
    inputs={"y_true": HINGE_LABELS, "y_pred": REAL},
    examples=_SIGN_EXAMPLES,
    keras="SquaredHinge",
    peers=(
        Peer(
            "optax",
            lambda t, p: jnp.square(optax.losses.hinge_loss(p, t)).mean(-1),
            "square(hinge_loss(p, t)).mean(-1)",
        ),
        Peer(
            "torch",
            lambda torch, F, t, p: torch.clamp(1.0 - t * p, min=0.0).square().mean(-1),
            "clamp(1 - t p, min=0) ** 2",
        ),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def squared_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
    ...


# --------------------------------------------------------------------------
# categorical_hinge
# --------------------------------------------------------------------------


def _categorical_hinge(y_true, y_pred):
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return relu(neg - pos + 1.0, 0.5)


def _categorical_hinge_grad(y_true, y_pred):
    masked = (1.0 - y_true) * y_pred
    neg = jnp.max(masked, axis=-1, keepdims=True)
    pos = jnp.sum(y_true * y_pred, axis=-1, keepdims=True)
    # The max's gradient is shared evenly among tied entries, as autodiff does.
    at_max = (masked == neg).astype(y_pred.dtype)
    d_neg = (1.0 - y_true) * at_max / jnp.sum(at_max, axis=-1, keepdims=True)
    return relu_slope(neg - pos + 1.0, 0.5) * (d_neg - y_true)


def _negative_scores(rng):
    # Every score below 0: Keras's neg = max((1 - y) * y_pred) is then the 0 of the true class.
    labels = rng.integers(0, 4, 8)
    return np.eye(4)[labels], rng.uniform(-2.0, -0.1, (8, 4))


@register(
    formula=_categorical_hinge,
    local_grad=_categorical_hinge_grad,
    gradient="reference",
    inputs={"y_true": HINGE_ONE_HOT, "y_pred": REAL},
    examples=_kinked(
        Example(shape=(8, 5)),
        Example(shape=(3, 4, 6), label="rank3"),
        Example(shape=(8, 4), draw=_negative_scores, label="negative_scores"),
        Example(shape=(8, 5), inputs={"y_true": SIGNED_ONE_HOT}, label="signed"),
    ),
    prepare=with_classes(default_prepare),
    keras="CategoricalHinge",
    bench=Bench(family=POLYNOMIAL),
)
def categorical_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
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
      y_pred: predicted scores, same shape, ``C >= 1`` (no class is a ``ValueError``).
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
    ...


# --------------------------------------------------------------------------
# multiclass_hinge (optax)
# --------------------------------------------------------------------------


def _onehot(y_true, y_pred):
    labels = class_labels(y_true, y_pred.shape[-1])
    return labels, jax.nn.one_hot(labels.index, y_pred.shape[-1], dtype=y_pred.dtype)


def _multiclass_hinge(y_true, y_pred):
    labels, onehot = _onehot(y_true, y_pred)
    values = jnp.max(y_pred + 1.0 - onehot, axis=-1) - jnp.sum(y_pred * onehot, axis=-1)
    # The max's derivative drops a NaN score (XLA compares it unequal to the max): poison the sample.
    return poison(labels.nan | jnp.isnan(values), values)


def _multiclass_hinge_grad(y_true, y_pred):
    labels, onehot = _onehot(y_true, y_pred)
    augmented = y_pred + 1.0 - onehot
    top_score = jnp.max(augmented, axis=-1, keepdims=True)
    # The max's gradient is shared evenly between tied maxima, as autodiff does.
    top = (augmented == top_score).astype(y_pred.dtype)
    bad = labels.nan | jnp.isnan(top_score[..., 0])
    return nan_where(bad, top / jnp.sum(top, axis=-1, keepdims=True) - onehot)


@register(
    formula=_multiclass_hinge,
    local_grad=_multiclass_hinge_grad,
    gradient="reference",
    inputs={"y_true": LAST_AXIS_LABELS, "y_pred": REAL},
    examples=_kinked(Example(), Example(shape=(2, 3, 4), label="rank3")),
    prepare=with_classes(sparse_prepare),
    aliases=("multiclass_hinge_loss",),
    peers=(Peer("optax", lambda t, p: optax.losses.multiclass_hinge_loss(p, t), "multiclass_hinge_loss(p, t)"),),
    bench=Bench(),
)
def multiclass_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Crammer-Singer multiclass hinge loss (optax's ``multiclass_hinge_loss``).

    .. math:: \ell = \max_j \big(s_j + 1 - [j = y]\big) - s_y

    Zero when the true class's score beats every other score by at least 1.

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``); a label
        that names no class (out of range, a fraction, NaN) gives NaN for its sample.
      y_pred: scores, shape ``(..., C)``, ``C >= 1`` (no class is a ``ValueError``).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (optax's output) for ``reduction="none"``.

    Gradient: ``onehot(argmax_j(s_j + 1 - [j = y])) - onehot(y)`` (ties share the first term evenly).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multiclass_hinge(jnp.array([0, 1]), jnp.array([[2.0, 0.5, 0.0], [1.0, 1.5, 0.0]]))
      Array(0.25, dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# multi_margin (PyTorch)
# --------------------------------------------------------------------------


def _multi_margin_parts(y_true, y_pred, margin, class_weight):
    labels, onehot = _onehot(y_true, y_pred)
    true_score = jnp.sum(y_pred * onehot, axis=-1, keepdims=True)
    raw = margin - true_score + y_pred
    scale = jnp.full(labels.index.shape, 1.0 / width(y_pred), y_pred.dtype)
    if class_weight is not None:
        scale = scale * jnp.take(jnp.asarray(class_weight, y_pred.dtype), labels.index, axis=0)
    return labels, onehot, raw, scale


def _multi_margin(y_true, y_pred, *, p, margin, class_weight):
    labels, onehot, raw, scale = _multi_margin_parts(y_true, y_pred, margin, class_weight)
    hinge = relu(raw, 0.0) * (1.0 - onehot)
    terms = hinge if p == 1 else jnp.square(hinge)
    return poison(labels.nan, jnp.sum(terms, axis=-1) * scale)


def _multi_margin_grad(y_true, y_pred, *, p, margin, class_weight):
    labels, onehot, raw, scale = _multi_margin_parts(y_true, y_pred, margin, class_weight)
    active = relu_slope(raw) * (1.0 - onehot)
    slope = active if p == 1 else 2.0 * raw * active
    slope = slope * scale[..., None]
    return nan_where(labels.nan, slope - onehot * jnp.sum(slope, axis=-1, keepdims=True))


def _torch_weight(torch, class_weight, dtype):
    return None if class_weight is None else torch.as_tensor(np.asarray(class_weight), dtype=dtype)


def _torch_multi_margin(torch, F, t, x, *, p, margin, class_weight):
    # PyTorch takes (N, C) scores: flatten the leading axes.
    weight = _torch_weight(torch, class_weight, x.dtype)
    flat = F.multi_margin_loss(
        x.reshape(-1, x.shape[-1]), t.reshape(-1).long(), p=p, margin=margin, weight=weight, reduction="none"
    )
    return flat.reshape(t.shape)


_CW5 = np.array([0.5, 1.0, 2.0, 0.25, 1.5])


@register(
    formula=_multi_margin,
    local_grad=_multi_margin_grad,
    gradient="reference",
    inputs={"y_true": LAST_AXIS_LABELS, "y_pred": REAL},
    examples=_kinked(
        Example(),
        Example({"p": 2, "margin": 0.5}),
        Example({"class_weight": _CW5}),
        Example({"p": 2, "class_weight": _CW5}, shape=(2, 3, 5)),
    ),
    prepare=with_classes(sparse_prepare),
    aliases=("multi_margin_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, x, **o: _torch_multi_margin(
                torch, F, t, x, p=o["p"], margin=o["margin"], class_weight=o["class_weight"]
            ),
            "F.multi_margin_loss",
        ),
    ),
    bench=Bench(),
)
def multi_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    p: Literal[1, 2] = 1,
    margin: RealNumber = 1.0,
    class_weight: ClassWeights = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multiclass margin loss (PyTorch's ``multi_margin_loss``).

    .. math:: \ell = \frac{w_y}{C} \sum_{j \ne y} \max(0,\ \text{margin} - s_y + s_j)^p

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``); a label
        that names no class (out of range, ``-1``, a fraction, NaN) gives NaN for its
        sample, never another class's weight.
      y_pred: scores, shape ``(..., C)``, ``C >= 1``.
      p: 1 or 2, the power of each hinge term (static).
      margin: the margin, a scalar (may be traced).
      class_weight: optional weights of shape ``(C,)``; each sample's loss is scaled by
        its true class's weight (PyTorch's ``weight``).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (PyTorch's ``reduction="none"``)
      for ``reduction="none"``.

    Gradient: for ``j != y`` with an active hinge ``h_j = margin - s_y + s_j > 0``,
    ``w_y p h_j^(p-1) / C``; for ``y``, minus their sum.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multi_margin(jnp.array([0]), jnp.array([[0.5, 1.0, -1.0]]))
      Array(0.5, dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# perceptron (optax)
# --------------------------------------------------------------------------


def _perceptron(y_true, y_pred):
    return jnp.mean(relu(-(y_true * y_pred), 0.0), axis=-1)


def _perceptron_grad(y_true, y_pred):
    return -y_true * relu_slope(-(y_true * y_pred)) / width(y_pred)


@register(
    formula=_perceptron,
    local_grad=_perceptron_grad,
    gradient="reference",
    inputs={"y_true": SIGNS, "y_pred": REAL},
    examples=_kinked(Example(), Example(shape=(3, 4, 5), label="rank3")),
    aliases=("perceptron_loss",),
    peers=(Peer("optax", lambda t, p: optax.losses.perceptron_loss(p, t).mean(-1), "perceptron_loss(p, t)"),),
    bench=Bench(family=POLYNOMIAL),
)
def perceptron(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Binary perceptron loss (optax's ``perceptron_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \max(0, -y \hat y)

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(..., d)``.
      y_pred: scores, same shape (Keras's rank rule: ``(N,)`` against ``(N, 1)``).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-y / d`` where ``y * y_pred < 0``, else 0; NaN where an input is NaN
    (as optax's value).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.perceptron(jnp.array([[1.0, -1.0]]), jnp.array([[-2.0, -1.0]]))
      Array(1., dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# soft_margin (PyTorch)
# --------------------------------------------------------------------------


def _soft_margin(y_true, y_pred):
    return jnp.mean(jax.nn.softplus(-y_true * y_pred), axis=-1)


def _soft_margin_grad(y_true, y_pred):
    return -y_true * jax.nn.sigmoid(-y_true * y_pred) / width(y_pred)


@register(
    formula=_soft_margin,
    local_grad=_soft_margin_grad,
    gradient="reference",
    inputs={"y_true": SIGNS, "y_pred": REAL},
    examples=(Example(), Example(shape=(3, 4, 5), label="rank3")),
    aliases=("soft_margin_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p: F.soft_margin_loss(p, t, reduction="none").mean(-1),
            "F.soft_margin_loss",
        ),
    ),
    bench=Bench(),
)
def soft_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Two-class logistic loss (PyTorch's ``soft_margin_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \log\big(1 + e^{-y \hat y}\big)

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(..., d)``.
      y_pred: scores, same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-y sigmoid(-y y_pred) / d`` (computed with ``softplus``, finite for any score).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.soft_margin(jnp.array([[1.0, -1.0]]), jnp.array([[0.0, 0.0]]))
      Array(0.6931472, dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# multilabel_soft_margin (PyTorch)
# --------------------------------------------------------------------------


def _multilabel_soft_margin(y_true, y_pred, *, class_weight):
    terms = -(y_true * jax.nn.log_sigmoid(y_pred) + (1.0 - y_true) * jax.nn.log_sigmoid(-y_pred))
    if class_weight is not None:
        terms = terms * along(class_weight, y_pred, y_pred.ndim - 1)
    return jnp.mean(terms, axis=-1)


def _multilabel_soft_margin_grad(y_true, y_pred, *, class_weight):
    slope = (jax.nn.sigmoid(y_pred) - y_true) / width(y_pred)
    if class_weight is not None:
        slope = slope * along(class_weight, y_pred, y_pred.ndim - 1)
    return slope


def _torch_multilabel_soft_margin(torch, F, t, p, class_weight):
    weight = _torch_weight(torch, class_weight, p.dtype)
    classes = p.shape[-1]
    flat = F.multilabel_soft_margin_loss(
        p.reshape(-1, classes), t.reshape(-1, classes).to(p.dtype), weight=weight, reduction="none"
    )
    return flat.reshape(p.shape[:-1])


@register(
    formula=_multilabel_soft_margin,
    local_grad=_multilabel_soft_margin_grad,
    gradient="reference",
    inputs={"y_true": PROBABILITIES, "y_pred": REAL},
    examples=(
        Example(inputs={"y_true": BINARY}),
        Example({"class_weight": _CW5}, shape=(2, 3, 5), label="soft"),
    ),
    prepare=with_classes(default_prepare),
    aliases=("multilabel_soft_margin_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p, class_weight: _torch_multilabel_soft_margin(torch, F, t, p, class_weight),
            "F.multilabel_soft_margin_loss",
        ),
    ),
    bench=Bench(),
)
def multilabel_soft_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    class_weight: ClassWeights = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multi-label one-versus-all logistic loss (PyTorch's ``multilabel_soft_margin_loss``).

    .. math:: \ell = -\frac{1}{C} \sum_c w_c \big(y_c \log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)\big)

    Args:
      y_true: targets in ``{0, 1}`` (or soft targets in ``[0, 1]``), shape ``(..., C)``.
      y_pred: logits, same shape, ``C >= 1``.
      class_weight: optional weights of shape ``(C,)`` (PyTorch's ``weight``).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (PyTorch's ``reduction="none"``)
      for ``reduction="none"``.

    Gradient: ``w_c (sigmoid(x_c) - y_c) / C``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multilabel_soft_margin(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(0.6931472, dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# multilabel_margin (PyTorch)
# --------------------------------------------------------------------------


def _multilabel_margin_pairs(y_true, y_pred):
    """``raw[..., j, i] = 1 - (x_j - x_i)`` and the pair mask: ``j`` a target, ``i`` not."""
    raw = 1.0 - y_pred[..., :, None] + y_pred[..., None, :]
    pairs = y_true[..., :, None] * (1.0 - y_true[..., None, :])
    return raw, pairs


def _multilabel_margin(y_true, y_pred):
    raw, pairs = _multilabel_margin_pairs(y_true, y_pred)
    return jnp.sum(relu(raw, 0.5) * pairs, axis=(-2, -1)) / width(y_pred)


def _multilabel_margin_grad(y_true, y_pred):
    raw, pairs = _multilabel_margin_pairs(y_true, y_pred)
    slope = relu_slope(raw, 0.5) * pairs / width(y_pred)
    # x_j enters each of its pairs with -1, x_i with +1.
    return jnp.sum(slope, axis=-2) - jnp.sum(slope, axis=-1)


def _torch_multilabel_margin(torch, F, t, x):
    # PyTorch takes each row's target indices first, then -1: the multi-hot rows, converted.
    classes = x.shape[-1]
    flat_t, flat_x = t.reshape(-1, classes), x.reshape(-1, classes)
    order = torch.argsort(-flat_t, dim=-1, stable=True)
    count = flat_t.sum(-1, keepdim=True)
    slots = torch.arange(classes).expand_as(order)
    indices = torch.where(slots < count, order, torch.full_like(order, -1))
    return F.multilabel_margin_loss(flat_x, indices, reduction="none").reshape(x.shape[:-1])


@register(
    formula=_multilabel_margin,
    local_grad=_multilabel_margin_grad,
    gradient="reference",
    inputs={"y_true": MULTI_HOT, "y_pred": REAL},
    examples=_kinked(
        Example(),
        Example(shape=(2, 3, 5), label="rank3"),
    ),
    prepare=with_classes(default_prepare),
    aliases=("multilabel_margin_loss",),
    peers=(Peer("torch", _torch_multilabel_margin, "F.multilabel_margin_loss"),),
    # Pairwise in the classes: C^2 terms per sample.
    bench=Bench(shape=lambda n: (max(1, n // 32), 32), max_elements=1_000_000),
)
def multilabel_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multi-label pairwise hinge loss (PyTorch's ``multilabel_margin_loss``).

    Every target class ``j`` should score at least 1 above every other class ``i``:

    .. math:: \ell = \frac{1}{C} \sum_{j:\, y_j = 1} \; \sum_{i:\, y_i = 0} \max(0,\ 1 - (x_j - x_i))

    PyTorch takes each sample's target *indices*, padded with ``-1``; here the targets
    are the multi-hot matrix (as for :func:`multilabel_soft_margin`), the same set of
    classes. A row with no target, or no other class, gives 0.

    Args:
      y_true: multi-hot targets in ``{0, 1}``, shape ``(..., C)``.
      y_pred: scores, same shape, ``C >= 1``.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: with ``s_ji = [1 - x_j + x_i > 0] y_j (1 - y_i) / C`` (1/2 at the kink, as
    autodiff), ``d/dx_k = sum_j s_jk - sum_i s_ki``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multilabel_margin(jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[0.5, 1.0, -1.0]]))
      Array(0.5, dtype=float32)
    """
    ...
