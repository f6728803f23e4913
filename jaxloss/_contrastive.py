"""Classification, contrastive and ranking losses from optax: poly_loss, sigmoid_focal, ntxent,
sparsemax_loss and ranking_softmax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction, check_number, default_prepare, register, shape_error, sparse_prepare
from ._probabilistic import _bfce, _bfce_grad


def _n(x: jax.Array) -> float:
    return float(x.shape[-1])


# --------------------------------------------------------------------------
# poly_loss (optax's poly_loss_cross_entropy)
# --------------------------------------------------------------------------


def _poly_loss(y_true, y_pred, *, epsilon):
    log_probs = jax.nn.log_softmax(y_pred, axis=-1)
    cross_entropy = -jnp.sum(y_true * log_probs, axis=-1)
    return cross_entropy + epsilon * jnp.sum(y_true * (1.0 - jnp.exp(log_probs)), axis=-1)


def _poly_loss_grad(y_true, y_pred, *, epsilon):
    probs = jax.nn.softmax(y_pred, axis=-1)
    mass = jnp.sum(y_true, axis=-1, keepdims=True)
    agreement = jnp.sum(y_true * probs, axis=-1, keepdims=True)
    return probs * mass - y_true + epsilon * probs * (agreement - y_true)


def _poly_loss_validate(opts):
    check_number("poly_loss", "epsilon", opts["epsilon"])


POLY_LOSS = LossSpec(
    "poly_loss",
    None,
    _poly_loss,
    {"epsilon": 2.0},
    local_grad=_poly_loss_grad,
    validate=_poly_loss_validate,
    aliases=("poly_loss_cross_entropy",),
)


@register(POLY_LOSS)
def poly_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    epsilon: float | ArrayLike = 2.0,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poly-1 cross-entropy (optax's ``poly_loss_cross_entropy``; Leng et al., 2022).

    .. math:: \ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c),\quad p = \operatorname{softmax}(\hat y)

    Args:
      y_true: one-hot or soft labels, shape ``(..., C)``.
      y_pred: logits, same shape.
      epsilon: the first polynomial coefficient's shift (2.0 for ImageNet, -1.0 for
        detection in the paper; may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (optax's output) for ``reduction="none"``.

    Gradient: ``p sum(y) - y + epsilon p (p . y - y)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.poly_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(1.6931472, dtype=float32)
    """
    return POLY_LOSS.evaluate(y_true, y_pred, sample_weight, reduction, epsilon=epsilon)


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


def _sigmoid_focal_validate(opts):
    if opts["alpha"] is not None:
        check_number("sigmoid_focal", "alpha", opts["alpha"], 0.0, 1.0)
    check_number("sigmoid_focal", "gamma", opts["gamma"], 0.0, None)


SIGMOID_FOCAL = LossSpec(
    "sigmoid_focal",
    None,
    _sigmoid_focal,
    {"alpha": None, "gamma": 2.0},
    local_grad=_sigmoid_focal_grad,
    validate=_sigmoid_focal_validate,
    custom_jvp=True,
    aliases=("sigmoid_focal_loss",),
)


@register(SIGMOID_FOCAL)
def sigmoid_focal(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    sample_weight: ArrayLike | None = None,
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

    Gradient: ``alpha_t (1 - p_t)^gamma (sigmoid(x) - y + gamma bce (1 - 2y) p (1 - p) / (1 - p_t)) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.sigmoid_focal(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]), gamma=1.0)
      Array(0.3465736, dtype=float32)
    """
    return SIGMOID_FOCAL.evaluate(y_true, y_pred, sample_weight, reduction, alpha=alpha, gamma=gamma)


# --------------------------------------------------------------------------
# ntxent (optax)
# --------------------------------------------------------------------------

_HIGHEST = jax.lax.Precision.HIGHEST


def _ntxent_parts(labels, embeddings, temperature):
    eps = jnp.finfo(embeddings.dtype).eps
    square_norm = jnp.sum(jnp.square(embeddings), axis=-1, keepdims=True)
    norm = jnp.sqrt(jnp.maximum(square_norm, eps))
    unit = embeddings / norm
    scores = jnp.matmul(unit, unit.T, precision=_HIGHEST) / temperature
    n = embeddings.shape[0]
    same = labels[:, None] == labels[None, :]
    others = ~jnp.eye(n, dtype=bool)
    positives = same & others
    negatives = ~same
    # optax's shift: each anchor's largest score against the others (no gradient).
    shift = jnp.max(jnp.where(others, scores, -jnp.inf), axis=1, keepdims=True)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    shifted = scores - shift
    exp_negatives = jnp.where(negatives, jnp.exp(shifted), 0.0)
    denom = jnp.sum(exp_negatives, axis=1, keepdims=True) + jnp.exp(shifted)
    return square_norm, norm, unit, positives, shifted, exp_negatives, denom


def _ntxent(y_true, y_pred, *, temperature):
    *_, positives, shifted, _, denom = _ntxent_parts(y_true, y_pred, temperature)
    # One value per (anchor, positive) pair; the mask keeps positive pairs only.
    return jnp.where(positives, jnp.log(denom) - shifted, 0.0), positives


def _ntxent_vjp(y_true, y_pred, cotangent, *, temperature):
    square_norm, norm, unit, positives, shifted, exp_negatives, denom = _ntxent_parts(y_true, y_pred, temperature)
    cot = jnp.where(positives, cotangent, 0.0)
    # l_ij = log(Z_i + e_ij) - s_ij: d/ds_ij = e_ij / (Z_i + e_ij) - 1; d/ds_ik = e_ik / (Z_i + e_ij), k negative.
    own = cot * (jnp.exp(shifted) / denom - 1.0)
    spread = exp_negatives * jnp.sum(cot / denom, axis=1, keepdims=True)
    d_scores = (own + spread) / temperature
    d_unit = jnp.matmul(d_scores + d_scores.T, unit, precision=_HIGHEST)
    # u = x / sqrt(max(|x|^2, eps)); the max shares its gradient at a tie, as autodiff does.
    eps = jnp.finfo(y_pred.dtype).eps
    slope = jnp.where(square_norm > eps, 1.0, jnp.where(square_norm == eps, 0.5, 0.0))
    radial = slope * jnp.sum(y_pred * d_unit, axis=-1, keepdims=True) / norm**3
    return d_unit / norm - radial * y_pred


def _ntxent_validate(opts):
    check_number("ntxent", "temperature", opts["temperature"], 0.0, None, low_open=True)


def _ntxent_prepare(spec, y_true, y_pred, opts):
    if y_pred.ndim != 2:
        raise shape_error(
            spec.name, "embeddings y_pred must have shape (N, D)", y_true=y_true.shape, y_pred=y_pred.shape
        )
    return sparse_prepare(spec, y_true, y_pred, opts)


NTXENT = LossSpec(
    "ntxent",
    None,
    _ntxent,
    {"temperature": 0.07},
    vjp=_ntxent_vjp,
    validate=_ntxent_validate,
    prepare=_ntxent_prepare,
    integer_labels=True,
    aliases=("nt_xent",),
)


@register(NTXENT)
def ntxent(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    temperature: float | ArrayLike = 0.07,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Normalized temperature-scaled cross-entropy, NT-Xent / InfoNCE (optax's ``ntxent``).

    .. math:: \ell_{ij} = -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\,y_k \ne y_i} e^{s_{ik}}},
       \quad s_{ij} = \frac{\cos(x_i, x_j)}{T}

    for every positive pair ``(i, j)``: ``i != j`` with the same label. The default
    reduction averages over positive pairs, which is optax's scalar.

    Args:
      y_true: integer group labels, shape ``(N,)``: samples with the same label are positives.
      y_pred: embeddings, shape ``(N, D)`` (normalized inside, with optax's epsilon
        ``finfo(dtype).eps`` on the squared norm).
      temperature: positive (may be a traced scalar).
      sample_weight: ``(N,)`` (weights each anchor's pairs) or ``(N, N)`` (each pair).
      reduction: ``"sum_over_batch_size"`` and ``"mean"`` average over the positive pairs
        (optax's value), ``"sum"`` sums them, ``"mean_with_sample_weight"`` is their
        weighted mean.

    Returns:
      A scalar, or for ``reduction="none"`` the ``(N, N)`` matrix of pair losses (zero
      where ``(i, j)`` is not a positive pair); its sum over positive pairs divided by
      their count is optax's scalar. With no positive pair the loss is 0 (optax: NaN).

    Gradient: the closed form above (it mixes samples, so it is a vector-Jacobian
    product): on the scores, ``(p_ij - 1)`` for each positive pair and
    ``e^{s_ik} / (e^{s_ij} + Z_i)`` for its negatives, then through the cosine and the
    normalization.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> jaxloss.ntxent(jnp.array([0, 0, 1, 1]), x, temperature=1.0)
      Array(0.5514447, dtype=float32)
    """
    return NTXENT.evaluate(y_true, y_pred, sample_weight, reduction, temperature=temperature)


# --------------------------------------------------------------------------
# sparsemax_loss (optax's multiclass_sparsemax_loss)
# --------------------------------------------------------------------------


def _sparsemax(scores):
    """Euclidean projection of ``scores`` onto the simplex along the last axis."""
    ordered = jnp.flip(jnp.sort(scores, axis=-1), axis=-1)
    cumulative = jnp.cumsum(ordered, axis=-1)
    ranks = jnp.arange(1, scores.shape[-1] + 1, dtype=scores.dtype).reshape((1,) * (scores.ndim - 1) + (-1,))
    support = jnp.sum(1.0 + ranks * ordered > cumulative, axis=-1, keepdims=True)
    threshold = (jnp.take_along_axis(cumulative, support - 1, axis=-1) - 1.0) / support.astype(scores.dtype)
    return jax.nn.relu(scores - threshold)


def _sparsemax_loss(y_true, y_pred):
    probs = _sparsemax(y_pred)
    onehot = jax.nn.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)
    true_score = jnp.sum(y_pred * onehot, axis=-1, keepdims=True)
    return jnp.sum(probs * (y_pred - true_score), axis=-1) + 0.5 * (1.0 - jnp.sum(jnp.square(probs), axis=-1))


def _sparsemax_loss_grad(y_true, y_pred):
    return _sparsemax(y_pred) - jax.nn.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)


SPARSEMAX_LOSS = LossSpec(
    "sparsemax_loss",
    None,
    _sparsemax_loss,
    {},
    local_grad=_sparsemax_loss_grad,
    prepare=sparse_prepare,
    integer_labels=True,
    aliases=("multiclass_sparsemax_loss",),
)


@register(SPARSEMAX_LOSS)
def sparsemax_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multiclass sparsemax loss (optax's ``multiclass_sparsemax_loss``; Martins & Astudillo, 2016).

    The Fenchel-Young loss of the Gini entropy: zero exactly when
    ``sparsemax(y_pred)`` is the one-hot label.

    .. math:: \ell = \langle p, s - s_y \rangle + \tfrac12 (1 - \|p\|^2),\quad
       p = \operatorname{sparsemax}(s) = \operatorname{argmin}_{q \in \Delta} \|q - s\|^2

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``).
      y_pred: scores, shape ``(..., C)``.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (optax's output) for ``reduction="none"``.

    Gradient: ``sparsemax(y_pred) - onehot(y_true)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.sparsemax_loss(jnp.array([0]), jnp.array([[1.0, 0.5, -1.0]]))
      Array(0.0625, dtype=float32)
    """
    return SPARSEMAX_LOSS.evaluate(y_true, y_pred, sample_weight, reduction)


# --------------------------------------------------------------------------
# ranking_softmax (optax's ranking_softmax_loss)
# --------------------------------------------------------------------------


def _ranking_parts(y_true, y_pred, where):
    if where is None:
        return y_true, jax.nn.log_softmax(y_pred, axis=-1), None
    valid = jnp.asarray(where).astype(bool)
    has_items = jnp.any(valid, axis=-1, keepdims=True)
    labels = jnp.where(valid, y_true, 0.0)
    # A log-softmax over the valid items only; masked items and empty lists stay finite.
    shift = jnp.max(jnp.where(valid, y_pred, -jnp.inf), axis=-1, keepdims=True)
    shift = jax.lax.stop_gradient(jnp.where(has_items, shift, 0.0))
    shifted = jnp.where(valid, y_pred - shift, 0.0)
    total = jnp.sum(jnp.where(valid, jnp.exp(shifted), 0.0), axis=-1, keepdims=True)
    log_probs = jnp.where(valid, shifted - jnp.log(jnp.where(has_items, total, 1.0)), 0.0)
    return labels, log_probs, has_items[..., 0]


def _ranking_softmax(y_true, y_pred, *, where):
    labels, log_probs, has_items = _ranking_parts(y_true, y_pred, where)
    return -jnp.sum(labels * log_probs, axis=-1), has_items


def _ranking_softmax_grad(y_true, y_pred, *, where):
    labels, log_probs, _ = _ranking_parts(y_true, y_pred, where)
    probs = jnp.exp(log_probs)
    if where is not None:
        probs = jnp.where(jnp.asarray(where).astype(bool), probs, 0.0)
    return probs * jnp.sum(labels, axis=-1, keepdims=True) - labels


def _ranking_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    where = opts["where"]
    if where is not None and jnp.asarray(where).shape != y_pred.shape:
        raise ValueError(
            f"ranking_softmax: where must have the scores' shape; received where.shape={jnp.asarray(where).shape}, "
            f"y_pred.shape={y_pred.shape}."
        )
    return y_true, y_pred


RANKING_SOFTMAX = LossSpec(
    "ranking_softmax",
    None,
    _ranking_softmax,
    {"where": None},
    local_grad=_ranking_softmax_grad,
    prepare=_ranking_prepare,
    aliases=("ranking_softmax_loss",),
)


@register(RANKING_SOFTMAX)
def ranking_softmax(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Listwise ranking softmax loss (optax's ``ranking_softmax_loss``).

    .. math:: \ell = -\sum_{i \in \text{list}} y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    Args:
      y_true: relevance labels, shape ``(..., list_size)``.
      y_pred: scores, same shape.
      where: optional boolean mask of the valid items, same shape. Masked items take no
        probability mass and contribute nothing; a list with no valid item is left out
        of the mean reductions, as optax leaves it out of its mean.
      sample_weight: weight of shape ``(...)`` (one per list) or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-list values of shape ``(...)`` (optax's ``reduce_fn=None``, zero
      for empty lists) for ``reduction="none"``.

    Gradient: ``softmax(s) sum(y) - y`` over the valid items, 0 on masked ones.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.ranking_softmax(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(0.6931472, dtype=float32)
    """
    if isinstance(where, (list, tuple)):
        where = np.asarray(where)
    return RANKING_SOFTMAX.evaluate(y_true, y_pred, sample_weight, reduction, where=where)
