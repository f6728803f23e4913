"""Metric-learning losses on embeddings: circle."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction, check_bool, check_interval, register, shape_error

# Pairwise similarities feed exp(gamma * ...) with gamma ~ 80: compute them in full
# float32 (GPUs would otherwise use TF32 and TPUs bfloat16 passes for the matmul).
_HIGHEST = jax.lax.Precision.HIGHEST


def _max0_slope(x: jax.Array) -> jax.Array:
    """d max(x, 0) / dx with autodiff's convention: 1 above, 0 below, 1/2 at the tie."""
    return jnp.where(x > 0, 1.0, jnp.where(x == 0, 0.5, 0.0)).astype(x.dtype)


def _labels(x: jax.Array, dtype) -> jax.Array:
    """Integer labels (Keras casts to int32, truncating float labels); ``(M, 1)`` squeezed.

    Labels narrower than the float ``dtype`` are widened (int32 to int64 under
    float64): XLA:CPU's LLVM backend fails to compile some fusions of an int32
    label comparison with float64 arithmetic (seen at N = 8).
    """
    if x.ndim == 2:
        x = jnp.reshape(x, (-1,))
    if not jnp.issubdtype(x.dtype, jnp.integer):
        x = x.astype(jnp.int32)
    width = jnp.int64 if jnp.dtype(dtype).itemsize == 8 else jnp.int32
    if jnp.dtype(x.dtype).itemsize < jnp.dtype(width).itemsize:
        x = x.astype(width)
    return x


def _masked_logsumexp(x: jax.Array, mask: jax.Array):
    """Row-wise logsumexp over the entries where ``mask`` holds, and its softmax weights.

    A row with no entry (an empty set, -inf) gives 0 here with ``has = False``;
    the caller masks it, so no -inf or NaN reaches values or gradients.
    """
    has = jnp.any(mask, axis=1)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(mask, x, -jnp.inf), axis=1, keepdims=True))
    top = jnp.where(has[:, None], top, 0.0)
    exp = jnp.where(mask, jnp.exp(jnp.where(mask, x - top, 0.0)), 0.0)
    total = jnp.sum(exp, axis=1)
    safe_total = jnp.where(has, total, 1.0)
    lse = jnp.where(has, jnp.log(safe_total) + top[:, 0], 0.0)
    return lse, has, exp / safe_total[:, None]


class _Pairs(NamedTuple):
    """The intermediates of Keras's ``circle`` shared by the value and its gradient."""

    ref_embeddings: jax.Array  # (M, d)
    raw_dist: jax.Array  # 1 - y_pred @ ref.T, (N, M)
    dist: jax.Array  # max(raw_dist, 0)
    pos_mask: jax.Array  # float masks of the positive and negative pairs
    neg_mask: jax.Array
    pos_arg: jax.Array  # (margin + dist) * pos_mask, before max(., 0)
    neg_arg: jax.Array  # (1 + margin - dist) * neg_mask, before max(., 0)
    soft_pos: jax.Array  # softmax weights of each row's logsumexp
    soft_neg: jax.Array
    valid: jax.Array  # (N,): the row has a positive and a negative pair
    z: jax.Array  # (N,): lse_pos + lse_neg where valid, else 0


def _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings) -> _Pairs:
    labels = _labels(y_true, y_pred.dtype)
    ref_lab = labels if ref_labels is None else _labels(jnp.asarray(ref_labels), y_pred.dtype)
    ref_emb = y_pred if ref_embeddings is None else jnp.asarray(ref_embeddings).astype(y_pred.dtype)
    raw_dist = 1.0 - jnp.matmul(y_pred, ref_emb.T, precision=_HIGHEST)
    dist = jnp.maximum(raw_dist, 0.0)
    positive = labels[:, None] == ref_lab[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~jnp.eye(labels.shape[0], ref_lab.shape[0], dtype=bool)
    pos_mask = positive.astype(dist.dtype)
    neg_mask = negative.astype(dist.dtype)
    pos_arg = (margin + dist) * pos_mask
    neg_arg = (1.0 + margin - dist) * neg_mask
    pos_logits = -1.0 * gamma * jnp.maximum(pos_arg, 0.0) * (margin - dist)
    neg_logits = gamma * jnp.maximum(neg_arg, 0.0) * ((1.0 - margin) - dist)
    lse_pos, has_pos, soft_pos = _masked_logsumexp(pos_logits, positive)
    lse_neg, has_neg, soft_neg = _masked_logsumexp(neg_logits, negative)
    valid = has_pos & has_neg
    z = jnp.where(valid, lse_pos + lse_neg, 0.0)
    return _Pairs(ref_emb, raw_dist, dist, pos_mask, neg_mask, pos_arg, neg_arg, soft_pos, soft_neg, valid, z)


def _circle(y_true, y_pred, *, gamma, margin, remove_diagonal, ref_labels, ref_embeddings):
    p = _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings)
    # softplus(-inf) = 0: a sample with no positive or no negative pair contributes 0.
    values = jnp.where(p.valid, jax.nn.softplus(p.z), 0.0)
    # Keras masks zero losses: the mean divides by the samples with a non-zero loss.
    return values, values > 0


def _circle_vjp(y_true, y_pred, cot, *, gamma, margin, remove_diagonal, ref_labels, ref_embeddings):
    p = _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings)
    # d softplus(z) = sigmoid(z); z's gradient is the softmax weights of each logsumexp.
    row = jnp.where(p.valid, cot * jax.nn.sigmoid(p.z), 0.0)[:, None]
    # d logit / d dist, through the pair weights (0 where max(., 0) clips them) and the distances.
    d_pos_weight = p.pos_mask * _max0_slope(p.pos_arg)
    d_pos_logit = -1.0 * gamma * (d_pos_weight * (margin - p.dist) - jnp.maximum(p.pos_arg, 0.0))
    d_neg_weight = -p.neg_mask * _max0_slope(p.neg_arg)
    d_neg_logit = gamma * (d_neg_weight * ((1.0 - margin) - p.dist) - jnp.maximum(p.neg_arg, 0.0))
    d_dist = row * (p.soft_pos * d_pos_logit + p.soft_neg * d_neg_logit)
    # dist = max(1 - S, 0): no gradient where the distance is clipped at 0.
    d_sim = -d_dist * _max0_slope(p.raw_dist)
    grad = jnp.matmul(d_sim, p.ref_embeddings, precision=_HIGHEST)
    if ref_embeddings is None:  # the references are y_pred itself: both sides of each pair move
        grad = grad + jnp.matmul(d_sim.T, y_pred, precision=_HIGHEST)
    return grad


def _circle_validate(opts):
    check_interval("circle", "gamma", opts["gamma"], 0.0, None, low_open=True)
    check_interval("circle", "margin", opts["margin"], 0.0, None)
    check_bool("circle", "remove_diagonal", opts["remove_diagonal"])


def _circle_prepare(spec, y_true, y_pred, opts):
    name = spec.name
    if y_true.ndim == 2 and y_true.shape[1] == 1:
        y_true = jnp.reshape(y_true, (-1,))
    if y_true.ndim != 1 or y_pred.ndim != 2 or y_true.shape[0] != y_pred.shape[0]:
        raise shape_error(
            name,
            "y_true must be labels of shape (N,) and y_pred embeddings of shape (N, d)",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    n, d = y_pred.shape
    ref_labels, ref_embeddings = opts["ref_labels"], opts["ref_embeddings"]
    shapes = {"y_true": y_true.shape, "y_pred": y_pred.shape}
    if ref_labels is not None:
        shapes["ref_labels"] = tuple(jnp.shape(ref_labels))
    if ref_embeddings is not None:
        shapes["ref_embeddings"] = tuple(jnp.shape(ref_embeddings))
    m_labels = m_embeddings = n  # each reference defaults to y_true or y_pred
    if ref_labels is not None:
        shape = shapes["ref_labels"]
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise shape_error(name, "ref_labels must have shape (M,)", **shapes)
        m_labels = shape[0]
    if ref_embeddings is not None:
        shape = shapes["ref_embeddings"]
        if len(shape) != 2 or shape[1] != d:
            raise shape_error(name, "ref_embeddings must have shape (M, d) with y_pred's d", **shapes)
        m_embeddings = shape[0]
    if m_labels != m_embeddings:
        raise shape_error(
            name,
            "ref_labels and ref_embeddings must describe the same M references "
            "(each defaults to y_true or y_pred, of N rows)",
            **shapes,
        )
    return y_true, y_pred


CIRCLE = LossSpec(
    "circle",
    "Circle",
    _circle,
    {"gamma": 80.0, "margin": 0.4, "remove_diagonal": True, "ref_labels": None, "ref_embeddings": None},
    static=frozenset({"remove_diagonal"}),
    vjp=_circle_vjp,
    validate=_circle_validate,
    prepare=_circle_prepare,
    integer_labels=True,
)


@register(CIRCLE)
def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    gamma: float | ArrayLike = 80.0,
    margin: float | ArrayLike = 0.4,
    remove_diagonal: bool = True,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Circle loss (Sun et al., 2020) between integer labels and L2-normalized embeddings.

    With cosine distances :math:`d_{ij} = \max(1 - \hat y_i \cdot r_j, 0)` to the
    references :math:`r_j` (``ref_embeddings``, default ``y_pred``), positives
    :math:`P_i` (same label, less :math:`j = i` when ``remove_diagonal``) and
    negatives :math:`N_i` (another label), :math:`m` the margin:

    .. math::
      \ell_i = \operatorname{softplus}\Big(
        \log\sum_{j \in P_i} e^{-\gamma\, [m + d_{ij}]_+ (m - d_{ij})}
      + \log\sum_{j \in N_i} e^{\gamma\, [1 + m - d_{ij}]_+ (1 - m - d_{ij})}\Big)

    A sample with no positive or no negative pair (a class seen once, or a batch
    of one class) has an empty log-sum-exp (-inf) and loss 0, with a zero, finite
    gradient. As in Keras, samples whose loss is 0 are masked out of the mean:
    ``"sum_over_batch_size"`` and ``"mean"`` divide by the number of samples with
    a non-zero loss (kept as Keras has it).

    Args:
      y_true: integer labels, shape ``(N,)`` (or ``(N, 1)``).
      y_pred: L2-normalized embeddings, shape ``(N, d)``.
      gamma: scale of the similarities, ``> 0`` (may be a traced scalar).
      margin: relaxation margin, ``>= 0`` (may be a traced scalar).
      remove_diagonal: drop each sample's pair with itself from its positives.
      ref_labels: labels of the references, shape ``(M,)``; default ``y_true``.
      ref_embeddings: reference embeddings, shape ``(M, d)``; default ``y_pred``
        (and then the gradient flows through both sides of each pair).
      sample_weight: weight of shape ``(N,)``.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(N,)`` for ``reduction="none"``.

    Gradient: closed form through the softmax weights of both log-sum-exps, the
    pair weights (0 where ``max(., 0)`` clips them) and the distances (0 where
    clipped at 0), then through ``y_pred @ ref.T`` on both sides when the
    references are ``y_pred``. The pairwise products use full float32 precision
    on every backend.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> jaxloss.circle(jnp.array([0, 0, 1, 1]), y_pred, gamma=2.0, reduction="none")
      Array([0.85774463, 1.0096791 , 1.0096791 , 0.85774463], dtype=float32)
    """
    return CIRCLE.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        gamma=gamma,
        margin=margin,
        remove_diagonal=remove_diagonal,
        ref_labels=ref_labels,
        ref_embeddings=ref_embeddings,
    )
