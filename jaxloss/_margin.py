"""Margin losses beyond Keras: optax's and PyTorch's hinge, perceptron, ranking and embedding losses.

multiclass_hinge and perceptron follow optax; multi_margin, hinge_embedding,
soft_margin, multilabel_soft_margin, margin_ranking, cosine_embedding and
triplet_margin follow ``torch.nn.functional``.

The three losses that compare several inputs (margin_ranking, cosine_embedding,
triplet_margin) run through the shared path as ``(y_true, y_pred)`` with the
compared inputs stacked into ``y_pred``: ``(x1, x2)`` on a new last axis for
margin_ranking, on a new axis ``-2`` for cosine_embedding, and ``(positive,
negative)`` on axis ``-2`` with the anchor as ``y_true`` for triplet_margin.
Each public function takes either the separate inputs or that stack, so
``jaxloss.grad``/``analytic_grad`` (gradient with respect to ``y_pred``) give the
gradient with respect to the stacked inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import (
    LossSpec,
    Reduction,
    abs_slope,
    check_bool,
    check_equal_shape,
    check_int,
    check_number,
    default_prepare,
    register,
    safe_where,
    shape_error,
    sparse_prepare,
)

# PyTorch's cosine_embedding_loss adds this to both squared norms (ATen's EPSILON).
_COSINE_EPS = 1e-12


def _n(x: jax.Array) -> float:
    return float(x.shape[-1])


def _last_two(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return (ndim - 2, ndim - 1)


def _as_array(x: Any) -> Any:
    # Shapes of lists are read through numpy; arrays and tracers pass through.
    return x if hasattr(x, "shape") else np.asarray(x)


def _class_weight_vector(loss: str, class_weight: Any, classes: int, dtype: Any) -> jax.Array:
    weight = jnp.asarray(class_weight).astype(dtype)
    if weight.shape != (classes,):
        raise ValueError(
            f"{loss}: class_weight must have shape (C,) = ({classes},), one weight per class; "
            f"received class_weight.shape={weight.shape}."
        )
    return weight


def _checking_class_weight(base_prepare):
    """``base_prepare``, then the shape check of a ``class_weight`` option (one weight per class)."""

    def prepare(spec, y_true, y_pred, opts):
        y_true, y_pred = base_prepare(spec, y_true, y_pred, opts)
        if opts["class_weight"] is not None:
            _class_weight_vector(spec.name, opts["class_weight"], y_pred.shape[-1], y_pred.dtype)
        return y_true, y_pred

    return prepare


# --------------------------------------------------------------------------
# multiclass_hinge (optax)
# --------------------------------------------------------------------------


def _multiclass_hinge(y_true, y_pred):
    onehot = jax.nn.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)
    return jnp.max(y_pred + 1.0 - onehot, axis=-1) - jnp.sum(y_pred * onehot, axis=-1)


def _multiclass_hinge_grad(y_true, y_pred):
    onehot = jax.nn.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)
    augmented = y_pred + 1.0 - onehot
    # The max's gradient is shared evenly between tied maxima, as autodiff does.
    top = (augmented == jnp.max(augmented, axis=-1, keepdims=True)).astype(y_pred.dtype)
    return top / jnp.sum(top, axis=-1, keepdims=True) - onehot


MULTICLASS_HINGE = LossSpec(
    "multiclass_hinge",
    None,
    _multiclass_hinge,
    {},
    local_grad=_multiclass_hinge_grad,
    prepare=sparse_prepare,
    integer_labels=True,
    aliases=("multiclass_hinge_loss",),
)


@register(MULTICLASS_HINGE)
def multiclass_hinge(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Crammer-Singer multiclass hinge loss (optax's ``multiclass_hinge_loss``).

    .. math:: \ell = \max_j \big(s_j + 1 - [j = y]\big) - s_y

    Zero when the true class's score beats every other score by at least 1.

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``).
      y_pred: scores, shape ``(..., C)``.
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
    return MULTICLASS_HINGE.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# multi_margin (PyTorch)
# --------------------------------------------------------------------------


def _multi_margin_parts(y_true, y_pred, margin, class_weight):
    classes = y_pred.shape[-1]
    onehot = jax.nn.one_hot(y_true, classes, dtype=y_pred.dtype)
    true_score = jnp.sum(y_pred * onehot, axis=-1, keepdims=True)
    raw = margin - true_score + y_pred
    scale = jnp.ones(y_true.shape, y_pred.dtype) / float(classes)
    if class_weight is not None:
        weight = _class_weight_vector("multi_margin", class_weight, classes, y_pred.dtype)
        scale = scale * jnp.take(weight, y_true, axis=0)
    return onehot, raw, scale


def _multi_margin(y_true, y_pred, *, p, margin, class_weight):
    onehot, raw, scale = _multi_margin_parts(y_true, y_pred, margin, class_weight)
    hinge = jax.nn.relu(raw) * (1.0 - onehot)
    terms = hinge if p == 1 else jnp.square(hinge)
    return jnp.sum(terms, axis=-1) * scale


def _multi_margin_grad(y_true, y_pred, *, p, margin, class_weight):
    onehot, raw, scale = _multi_margin_parts(y_true, y_pred, margin, class_weight)
    active = jnp.where(raw > 0, 1.0 - onehot, 0.0)
    slope = active if p == 1 else 2.0 * raw * active
    slope = slope * scale[..., None]
    return slope - onehot * jnp.sum(slope, axis=-1, keepdims=True)


def _multi_margin_validate(opts):
    check_int("multi_margin", "p", opts["p"])
    if opts["p"] not in (1, 2):
        raise ValueError(f"multi_margin: p must be 1 or 2; received p={opts['p']!r}.")
    check_number("multi_margin", "margin", opts["margin"])


MULTI_MARGIN = LossSpec(
    "multi_margin",
    None,
    _multi_margin,
    {"p": 1, "margin": 1.0, "class_weight": None},
    static=frozenset({"p"}),
    local_grad=_multi_margin_grad,
    validate=_multi_margin_validate,
    prepare=_checking_class_weight(sparse_prepare),
    integer_labels=True,
    aliases=("multi_margin_loss",),
)


@register(MULTI_MARGIN)
def multi_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    p: int = 1,
    margin: float | ArrayLike = 1.0,
    class_weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multiclass margin loss (PyTorch's ``multi_margin_loss``).

    .. math:: \ell = \frac{w_y}{C} \sum_{j \ne y} \max(0,\ \text{margin} - s_y + s_j)^p

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``).
      y_pred: scores, shape ``(..., C)``.
      p: 1 or 2, the power of each hinge term.
      margin: the margin (may be a traced scalar).
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
    if isinstance(class_weight, (list, tuple)):
        class_weight = np.asarray(class_weight)
    return MULTI_MARGIN.evaluate(
        y_true, y_pred, sample_weight, reduction, p=p, margin=margin, class_weight=class_weight
    )


# --------------------------------------------------------------------------
# perceptron (optax)
# --------------------------------------------------------------------------


def _perceptron(y_true, y_pred):
    # max(-m, 0) as -where(m < 0, m, 0): relu's slope 0 at the kink, and no negated copy of
    # the margins for XLA:CPU to store before its reduction.
    margin = y_true * y_pred
    return -jnp.mean(jnp.where(margin < 0, margin, 0.0), axis=-1)


def _perceptron_grad(y_true, y_pred):
    return jnp.where(-y_true * y_pred > 0, -y_true, 0.0) / _n(y_pred)


PERCEPTRON = LossSpec(
    "perceptron",
    None,
    _perceptron,
    {},
    local_grad=_perceptron_grad,
    aliases=("perceptron_loss",),
)


@register(PERCEPTRON)
def perceptron(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
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

    Gradient: ``-y / d`` where ``y * y_pred < 0``, else 0.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.perceptron(jnp.array([[1.0, -1.0]]), jnp.array([[-2.0, -1.0]]))
      Array(1., dtype=float32)
    """
    return PERCEPTRON.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# hinge_embedding (PyTorch)
# --------------------------------------------------------------------------


def _hinge_embedding(y_true, y_pred, *, margin):
    # PyTorch's formula term by term: a target that is neither 1 nor -1 gets both terms.
    below_margin = jnp.where(y_true != 1, jax.nn.relu(margin - y_pred), 0.0)
    distance = jnp.where(y_true != -1, y_pred, 0.0)
    return jnp.mean(below_margin + distance, axis=-1)


def _hinge_embedding_grad(y_true, y_pred, *, margin):
    pull = jnp.where(y_true != -1, 1.0, 0.0)
    push = jnp.where((y_true != 1) & (margin - y_pred > 0), 1.0, 0.0)
    return (pull - push).astype(y_pred.dtype) / _n(y_pred)


def _hinge_embedding_validate(opts):
    check_number("hinge_embedding", "margin", opts["margin"])


HINGE_EMBEDDING = LossSpec(
    "hinge_embedding",
    None,
    _hinge_embedding,
    {"margin": 1.0},
    local_grad=_hinge_embedding_grad,
    validate=_hinge_embedding_validate,
    aliases=("hinge_embedding_loss",),
)


@register(HINGE_EMBEDDING)
def hinge_embedding(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Hinge embedding loss (PyTorch's ``hinge_embedding_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \begin{cases} x & y = 1 \\
       \max(0, \text{margin} - x) & y = -1 \end{cases}

    ``y_pred`` is usually a distance (``x >= 0``): similar pairs (``y = 1``) are pulled
    together, dissimilar ones (``y = -1``) pushed beyond ``margin``.

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(..., d)``.
      y_pred: distances or scores, same shape.
      margin: the margin for ``y = -1`` (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``1/d`` where ``y = 1``, ``-1/d`` where ``y = -1`` and ``x < margin``, else 0.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.hinge_embedding(jnp.array([[1.0, -1.0]]), jnp.array([[0.5, 0.25]]))
      Array(0.625, dtype=float32)
    """
    return HINGE_EMBEDDING.evaluate(y_true, y_pred, sample_weight, reduction, margin=margin)


# --------------------------------------------------------------------------
# soft_margin (PyTorch)
# --------------------------------------------------------------------------


def _soft_margin(y_true, y_pred):
    return jnp.mean(jax.nn.softplus(-y_true * y_pred), axis=-1)


def _soft_margin_grad(y_true, y_pred):
    return -y_true * jax.nn.sigmoid(-y_true * y_pred) / _n(y_pred)


SOFT_MARGIN = LossSpec(
    "soft_margin",
    None,
    _soft_margin,
    {},
    local_grad=_soft_margin_grad,
    aliases=("soft_margin_loss",),
)


@register(SOFT_MARGIN)
def soft_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
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
    return SOFT_MARGIN.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# multilabel_soft_margin (PyTorch)
# --------------------------------------------------------------------------


def _class_row(class_weight, y_pred):
    weight = _class_weight_vector("multilabel_soft_margin", class_weight, y_pred.shape[-1], y_pred.dtype)
    return weight.reshape((1,) * (y_pred.ndim - 1) + weight.shape)


def _multilabel_soft_margin(y_true, y_pred, *, class_weight):
    terms = -(y_true * jax.nn.log_sigmoid(y_pred) + (1.0 - y_true) * jax.nn.log_sigmoid(-y_pred))
    if class_weight is not None:
        terms = terms * _class_row(class_weight, y_pred)
    return jnp.mean(terms, axis=-1)


def _multilabel_soft_margin_grad(y_true, y_pred, *, class_weight):
    slope = (jax.nn.sigmoid(y_pred) - y_true) / _n(y_pred)
    if class_weight is not None:
        slope = slope * _class_row(class_weight, y_pred)
    return slope


MULTILABEL_SOFT_MARGIN = LossSpec(
    "multilabel_soft_margin",
    None,
    _multilabel_soft_margin,
    {"class_weight": None},
    local_grad=_multilabel_soft_margin_grad,
    prepare=_checking_class_weight(default_prepare),
    aliases=("multilabel_soft_margin_loss",),
)


@register(MULTILABEL_SOFT_MARGIN)
def multilabel_soft_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    class_weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multi-label one-versus-all logistic loss (PyTorch's ``multilabel_soft_margin_loss``).

    .. math:: \ell = -\frac{1}{C} \sum_c w_c \big(y_c \log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)\big)

    Args:
      y_true: targets in ``{0, 1}`` (or soft targets in ``[0, 1]``), shape ``(..., C)``.
      y_pred: logits, same shape.
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
    if isinstance(class_weight, (list, tuple)):
        class_weight = np.asarray(class_weight)
    return MULTILABEL_SOFT_MARGIN.evaluate(y_true, y_pred, sample_weight, reduction, class_weight=class_weight)


# --------------------------------------------------------------------------
# Multi-input losses: stacking the compared inputs into y_pred
# --------------------------------------------------------------------------


def _stack_inputs(loss: str, names: tuple[str, str, str], ref: Any, first: Any, second: Any, axis: int) -> jax.Array:
    """Check three inputs have one shape and stack the last two along ``axis``."""
    ref, first, second = _as_array(ref), _as_array(first), _as_array(second)
    shapes = {names[0]: ref.shape, names[1]: first.shape, names[2]: second.shape}
    if not (ref.shape == first.shape == second.shape):
        raise shape_error(loss, f"{', '.join(names[:2])} and {names[2]} must have the same shape", **shapes)
    check_equal_shape(loss, first, second, names[1], names[2])
    return jnp.stack([jnp.asarray(first), jnp.asarray(second)], axis=axis)


def _stacked_prepare(fits, names: str, axis: int, hint: str):
    """prepare for a spec whose ``y_pred`` stacks two inputs along ``axis``; ``fits(t, p)`` checks the shapes."""

    def prepare(spec, y_true, y_pred, opts):
        if not fits(y_true.shape, y_pred.shape):
            raise shape_error(
                spec.name,
                f"called with two arrays, the second must stack {names} along axis {axis}; {hint}",
                y_true=y_true.shape,
                y_pred=y_pred.shape,
            )
        return y_true, y_pred

    return prepare


# --------------------------------------------------------------------------
# margin_ranking (PyTorch)
# --------------------------------------------------------------------------


def _margin_ranking(y_true, y_pred, *, margin):
    return jax.nn.relu(-y_true * (y_pred[..., 0] - y_pred[..., 1]) + margin)


def _margin_ranking_grad(y_true, y_pred, *, margin):
    active = -y_true * (y_pred[..., 0] - y_pred[..., 1]) + margin > 0
    slope = jnp.where(active, y_true, 0.0)
    return jnp.stack([-slope, slope], axis=-1)


def _margin_ranking_validate(opts):
    check_number("margin_ranking", "margin", opts["margin"])


MARGIN_RANKING = LossSpec(
    "margin_ranking",
    None,
    _margin_ranking,
    {"margin": 0.0},
    local_grad=_margin_ranking_grad,
    validate=_margin_ranking_validate,
    prepare=_stacked_prepare(
        lambda t, p: p == (*t, 2), "x1 and x2", -1, "expected y_pred.shape == y_true.shape + (2,)"
    ),
    aliases=("margin_ranking_loss",),
)


@register(MARGIN_RANKING)
def margin_ranking(
    y_true: ArrayLike,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    margin: float | ArrayLike = 0.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Margin ranking loss (PyTorch's ``margin_ranking_loss``): should ``x1`` rank above ``x2``?

    .. math:: \ell = \max\big(0,\ -y (x_1 - x_2) + \text{margin}\big)

    Args:
      y_true: targets in ``{-1, 1}`` (1: ``x1`` should be larger), shape ``(...)``.
      x1: first scores, same shape as ``y_true``.
      x2: second scores, same shape. Or leave it out and pass
        ``x1 = jnp.stack([x1, x2], axis=-1)`` of shape ``(..., 2)``: that is the
        ``y_pred`` that :func:`jaxloss.grad` and :func:`jaxloss.analytic_grad`
        differentiate, so their gradient holds ``d/dx1`` in ``[..., 0]`` and
        ``d/dx2`` in ``[..., 1]``.
      margin: the margin (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-pair values of shape ``(...)`` (PyTorch's ``reduction="none"``)
      for ``reduction="none"``.

    Gradient: where the hinge is active, ``-y`` for ``x1`` and ``+y`` for ``x2``; else 0.
    ``jax.grad`` of this function with respect to ``x1`` and ``x2`` works in both forms.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y, x1, x2 = jnp.array([1.0, -1.0]), jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])
      >>> jaxloss.margin_ranking(y, x1, x2, margin=0.1)
      Array(0.6, dtype=float32)
      >>> jaxloss.analytic_grad(jaxloss.margin_ranking, margin=0.1)(y, jnp.stack([x1, x2], -1))
      Array([[-0.5,  0.5],
             [ 0.5, -0.5]], dtype=float32)
    """
    y_pred = x1 if x2 is None else _stack_inputs("margin_ranking", ("y_true", "x1", "x2"), y_true, x1, x2, -1)
    return MARGIN_RANKING.evaluate(y_true, y_pred, sample_weight, reduction, margin=margin)


# --------------------------------------------------------------------------
# cosine_embedding (PyTorch)
# --------------------------------------------------------------------------


def _cosine_parts(y_pred):
    x1, x2 = y_pred[..., 0, :], y_pred[..., 1, :]
    dot = jnp.sum(x1 * x2, axis=-1)
    sq1 = jnp.sum(jnp.square(x1), axis=-1) + _COSINE_EPS
    sq2 = jnp.sum(jnp.square(x2), axis=-1) + _COSINE_EPS
    inv = jax.lax.rsqrt(sq1 * sq2)
    return x1, x2, sq1, sq2, inv, dot * inv


def _cosine_embedding(y_true, y_pred, *, margin):
    *_, cos = _cosine_parts(y_pred)
    similar = jnp.where(y_true == 1, 1.0 - cos, 0.0)
    dissimilar = jnp.where(y_true == -1, jax.nn.relu(cos - margin), 0.0)
    return similar + dissimilar


def _cosine_embedding_grad(y_true, y_pred, *, margin):
    x1, x2, sq1, sq2, inv, cos = _cosine_parts(y_pred)
    coef = jnp.where(y_true == 1, -1.0, 0.0) + jnp.where((y_true == -1) & (cos - margin > 0), 1.0, 0.0)
    d1 = x2 * inv[..., None] - (cos / sq1)[..., None] * x1
    d2 = x1 * inv[..., None] - (cos / sq2)[..., None] * x2
    return coef[..., None, None] * jnp.stack([d1, d2], axis=-2)


def _cosine_embedding_validate(opts):
    check_number("cosine_embedding", "margin", opts["margin"], -1.0, 1.0)


COSINE_EMBEDDING = LossSpec(
    "cosine_embedding",
    None,
    _cosine_embedding,
    {"margin": 0.0},
    local_grad=_cosine_embedding_grad,
    reduced_axes=_last_two,
    validate=_cosine_embedding_validate,
    prepare=_stacked_prepare(
        lambda t, p: len(p) == len(t) + 2 and p[:-1] == (*t, 2),
        "x1 and x2",
        -2,
        "expected y_pred.shape == y_true.shape + (2, D)",
    ),
    aliases=("cosine_embedding_loss",),
)


def _cosine_embedding_stack(y_true: Any, x1: Any, x2: Any) -> jax.Array:
    y_true, x1, x2 = _as_array(y_true), _as_array(x1), _as_array(x2)
    check_equal_shape("cosine_embedding", x1, x2, "x1", "x2")
    if x1.ndim < 1 or y_true.shape != x1.shape[:-1]:
        raise shape_error(
            "cosine_embedding",
            "x1 and x2 must have shape (..., D) and y_true their shape less the last axis",
            y_true=y_true.shape,
            x1=x1.shape,
            x2=x2.shape,
        )
    return jnp.stack([jnp.asarray(x1), jnp.asarray(x2)], axis=-2)


@register(COSINE_EMBEDDING)
def cosine_embedding(
    y_true: ArrayLike,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    margin: float | ArrayLike = 0.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Cosine embedding loss (PyTorch's ``cosine_embedding_loss``).

    .. math:: \ell = \begin{cases} 1 - \cos(x_1, x_2) & y = 1 \\
       \max(0, \cos(x_1, x_2) - \text{margin}) & y = -1 \end{cases},\quad
       \cos(a, b) = \frac{a \cdot b}{\sqrt{(\|a\|^2 + \epsilon)(\|b\|^2 + \epsilon)}},\ \epsilon = 10^{-12}

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(...)``; any other value gives 0.
      x1: first embeddings, shape ``(..., D)``.
      x2: second embeddings, same shape. Or leave it out and pass
        ``x1 = jnp.stack([x1, x2], axis=-2)`` of shape ``(..., 2, D)``: that is the
        ``y_pred`` that :func:`jaxloss.grad` and :func:`jaxloss.analytic_grad`
        differentiate (``d/dx1`` in ``[..., 0, :]``, ``d/dx2`` in ``[..., 1, :]``).
      margin: in ``[-1, 1]`` (may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-pair values of shape ``(...)`` (PyTorch's ``reduction="none"``)
      for ``reduction="none"``.

    Gradient: ``c (x2 / sqrt(n1 n2) - cos x1 / n1)`` for ``x1`` (and symmetrically for
    ``x2``), ``n = |x|^2 + eps``, with ``c = -1`` for ``y = 1``, ``+1`` for an active
    ``y = -1`` term, else 0.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> x1, x2 = jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> jaxloss.cosine_embedding(jnp.array([1.0, -1.0]), x1, x2, reduction="none")
      Array([1.        , 0.70710677], dtype=float32)
    """
    y_pred = x1 if x2 is None else _cosine_embedding_stack(y_true, x1, x2)
    return COSINE_EMBEDDING.evaluate(y_true, y_pred, sample_weight, reduction, margin=margin)


# --------------------------------------------------------------------------
# triplet_margin (PyTorch)
# --------------------------------------------------------------------------


def _p_distance(a, b, p, eps):
    """PyTorch's pairwise_distance ``||a - b + eps||_p`` and its gradient with respect to ``a``."""
    diff = a - b + eps
    magnitude = jnp.abs(diff)
    total = jnp.sum(jnp.power(magnitude, p), axis=-1)
    positive = total > 0
    distance = safe_where(positive, lambda t: jnp.power(t, 1.0 / p), total, 1.0, 0.0)
    # d||d||_p / dd_k = sign(d_k) |d_k|^(p-1) * total^(1/p - 1); 0 at d = 0 (as PyTorch's norm).
    outer = safe_where(positive, lambda t: jnp.power(t, 1.0 / p - 1.0), total, 1.0, 0.0)
    slope = abs_slope(diff) * jnp.power(magnitude, p - 1.0) * outer[..., None]
    return distance, slope


def _triplet_parts(anchor, y_pred, margin, p, eps, swap):
    positive, negative = y_pred[..., 0, :], y_pred[..., 1, :]
    d_ap, g_ap = _p_distance(anchor, positive, p, eps)
    d_an, g_an = _p_distance(anchor, negative, p, eps)
    if swap:
        d_pn, g_pn = _p_distance(positive, negative, p, eps)
        d_neg = jnp.minimum(d_an, d_pn)
        # jnp.minimum shares the gradient evenly at a tie, as autodiff does.
        share_an = jnp.where(d_an < d_pn, 1.0, jnp.where(d_an == d_pn, 0.5, 0.0))
    else:
        d_pn, g_pn, d_neg, share_an = None, None, d_an, None
    return margin + d_ap - d_neg, (g_ap, g_an, g_pn, share_an)


def _triplet_margin(y_true, y_pred, *, margin, p, eps, swap):
    raw, _ = _triplet_parts(y_true, y_pred, margin, p, eps, swap)
    return jax.nn.relu(raw)


def _triplet_margin_grad(y_true, y_pred, *, margin, p, eps, swap):
    raw, (g_ap, g_an, g_pn, share_an) = _triplet_parts(y_true, y_pred, margin, p, eps, swap)
    active = jnp.where(raw > 0, 1.0, 0.0)[..., None]
    # d_ap = ||a - pos + eps||: d/dpos = -g_ap; d_an: d/dneg = -g_an; d_pn = ||pos - neg + eps||: +g_pn, -g_pn.
    if swap:
        share_an = share_an[..., None]
        d_pos = -g_ap - (1.0 - share_an) * g_pn
        d_neg = share_an * g_an + (1.0 - share_an) * g_pn
    else:
        d_pos, d_neg = -g_ap, g_an
    return active[..., None, :] * jnp.stack([d_pos, d_neg], axis=-2)


def _triplet_validate(opts):
    check_number("triplet_margin", "margin", opts["margin"])
    check_number("triplet_margin", "p", opts["p"], 0.0, float("inf"), low_open=True, high_open=True)
    check_number("triplet_margin", "eps", opts["eps"], 0.0, None)
    check_bool("triplet_margin", "swap", opts["swap"])


TRIPLET_MARGIN = LossSpec(
    "triplet_margin",
    None,
    _triplet_margin,
    {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False},
    static=frozenset({"swap"}),
    local_grad=_triplet_margin_grad,
    reduced_axes=_last_two,
    validate=_triplet_validate,
    prepare=_stacked_prepare(
        lambda t, p: len(t) >= 1 and p == (*t[:-1], 2, t[-1]),
        "positive and negative",
        -2,
        "pass anchor, positive and negative, or anchor (..., D) and jnp.stack([positive, negative], axis=-2)",
    ),
    aliases=("triplet_margin_loss",),
)


@register(TRIPLET_MARGIN)
def triplet_margin(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike | None = None,
    *,
    margin: float | ArrayLike = 1.0,
    p: float | ArrayLike = 2.0,
    eps: float | ArrayLike = 1e-6,
    swap: bool = False,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Triplet margin loss (PyTorch's ``triplet_margin_loss``).

    .. math:: \ell = \max\big(0,\ \text{margin} + d(a, p) - d(a, n)\big),\quad
       d(u, v) = \|u - v + \epsilon\|_p

    With ``swap=True`` (Balntas et al.'s distance swap) ``d(a, n)`` becomes
    ``min(d(a, n), d(p, n))``.

    Args:
      anchor: anchor embeddings, shape ``(..., D)``.
      positive: embeddings of the same class, same shape.
      negative: embeddings of another class, same shape. Or leave it out and pass
        ``positive = jnp.stack([positive, negative], axis=-2)`` of shape ``(..., 2, D)``:
        the anchor then plays ``y_true`` and the stack ``y_pred`` for
        :func:`jaxloss.grad` and :func:`jaxloss.analytic_grad`, whose gradient holds
        ``d/dpositive`` in ``[..., 0, :]`` and ``d/dnegative`` in ``[..., 1, :]``.
        ``jax.grad(jaxloss.triplet_margin, argnums=(0, 1, 2))`` gives all three.
      margin: the margin (may be a traced scalar).
      p: the norm's degree, positive (may be a traced scalar).
      eps: added to each difference before the norm, as PyTorch's ``pairwise_distance``.
      swap: use the distance swap.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-triplet values of shape ``(...)`` (PyTorch's ``reduction="none"``)
      for ``reduction="none"``.

    Gradient: where the hinge is active, ``-g(a - p)`` for the positive and ``g(a - n)`` for
    the negative, ``g(d)_k = sign(d_k) (|d_k| / ||d||_p)^(p-1)`` evaluated at ``d + eps``
    (with ``swap``, ``g(p - n)`` enters both through whichever distance is smaller).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0]]), jnp.array([[0.0, 1.0]])
      >>> jaxloss.triplet_margin(a, pos, neg, eps=0.0)
      Array(5., dtype=float32)
    """
    if negative is None:
        y_pred = positive
    else:
        if jnp.ndim(anchor) < 1:
            raise shape_error("triplet_margin", "inputs must have rank >= 1", anchor=jnp.shape(anchor))
        y_pred = _stack_inputs("triplet_margin", ("anchor", "positive", "negative"), anchor, positive, negative, -2)
    return TRIPLET_MARGIN.evaluate(anchor, y_pred, sample_weight, reduction, margin=margin, p=p, eps=eps, swap=swap)
