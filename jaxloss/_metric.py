"""Metric-learning losses on embeddings, distances and pairs.

circle (Keras), ntxent (optax), and PyTorch's triplet_margin, margin_ranking,
cosine_embedding and hinge_embedding.

margin_ranking, cosine_embedding and triplet_margin compare two arrays: the core
stacks them into ``y_pred`` (``(x1, x2)`` on a new last axis for margin_ranking,
on a new axis ``-2`` for cosine_embedding; ``(positive, negative)`` on axis ``-2``
with the anchor as ``y_true`` for triplet_margin). Each public function takes
either the separate arrays or that stack, so ``jaxloss.grad``/``analytic_grad``
(gradient with respect to ``y_pred``) give the gradient with respect to the stack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    POLYNOMIAL,
    ArrayOption,
    Bench,
    Example,
    Flag,
    NonNegative,
    Number,
    Peer,
    Positive,
    RealNumber,
    Reduction,
    SampleWeight,
    Scalar,
    Stack,
    abs_slope,
    nan_where,
    register,
    safe_where,
    shape_error,
    sparse_prepare,
    width,
)
from ._hinge import poison, relu, relu_slope
from ._inputs import GROUP_LABELS, NON_NEGATIVE, REAL, SIGNS, UNIT_VECTORS, Real, Signs

# Pairwise similarities feed exp(gamma * ...) with gamma ~ 80: compute them in full
# float32 (GPUs would otherwise use TF32 and TPUs bfloat16 passes for the matmul).
_HIGHEST = jax.lax.Precision.HIGHEST
# PyTorch's cosine_embedding_loss adds this to both squared norms (ATen's EPSILON).
_COSINE_EPS = 1e-12
# Float labels beyond int32 cannot be cast to a group faithfully.
_INT32_LIMIT = float(2**31)


def _group_labels(x: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array | None]:
    """Group labels as integers, and where a float label is no integer (a fraction, NaN, inf).

    ``(M, 1)`` is squeezed. Labels narrower than the float ``dtype`` are widened (int32
    to int64 under float64): XLA:CPU's LLVM backend fails to compile some fusions of an
    int32 label comparison with float64 arithmetic (seen at N = 8).
    """
    if x.ndim == 2:
        x = jnp.reshape(x, (-1,))
    bad = None
    if not jnp.issubdtype(x.dtype, jnp.integer):
        bad = ~(x == jnp.floor(x)) | (jnp.abs(x) >= _INT32_LIMIT)
        x = jnp.where(bad, 0, x).astype(jnp.int32)
    wide = jnp.int64 if jnp.dtype(dtype).itemsize == 8 else jnp.int32
    if jnp.dtype(x.dtype).itemsize < jnp.dtype(wide).itemsize:
        x = x.astype(wide)
    return x, bad


def _any_bad(bad: jax.Array | None) -> jax.Array | None:
    """A scalar: some label is no integer (every sample's pairs depend on every label)."""
    return None if bad is None else jnp.any(bad)


# --------------------------------------------------------------------------
# circle (Keras)
# --------------------------------------------------------------------------


def _masked_logsumexp(x: jax.Array, mask: jax.Array):
    """Row-wise logsumexp over the entries where ``mask`` holds, and its softmax weights.

    A row with no entry (an empty set, -inf) gives 0 here with ``has = False``;
    the caller masks it, so no -inf or NaN reaches values or gradients.
    """
    has = jnp.any(mask, axis=1)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(mask, x, -jnp.inf), axis=1, keepdims=True, initial=-jnp.inf))
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
    bad: jax.Array | None  # (N,): a label of the row or of a reference is no integer


def _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings) -> _Pairs:
    labels, bad = _group_labels(y_true, y_pred.dtype)
    if ref_labels is None:
        ref_lab, bad_ref = labels, bad
    else:
        ref_lab, bad_ref = _group_labels(jnp.asarray(ref_labels), y_pred.dtype)
    ref_emb = y_pred if ref_embeddings is None else jnp.asarray(ref_embeddings).astype(y_pred.dtype)
    raw_dist = 1.0 - jnp.matmul(y_pred, ref_emb.T, precision=_HIGHEST)
    dist = relu(raw_dist, 0.5)
    positive = labels[:, None] == ref_lab[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~jnp.eye(labels.shape[0], ref_lab.shape[0], dtype=bool)
    pos_mask = positive.astype(dist.dtype)
    neg_mask = negative.astype(dist.dtype)
    pos_arg = (margin + dist) * pos_mask
    neg_arg = (1.0 + margin - dist) * neg_mask
    pos_logits = -1.0 * gamma * relu(pos_arg, 0.5) * (margin - dist)
    neg_logits = gamma * relu(neg_arg, 0.5) * ((1.0 - margin) - dist)
    lse_pos, has_pos, soft_pos = _masked_logsumexp(pos_logits, positive)
    lse_neg, has_neg, soft_neg = _masked_logsumexp(neg_logits, negative)
    valid = has_pos & has_neg
    z = jnp.where(valid, lse_pos + lse_neg, 0.0)
    any_ref = _any_bad(bad_ref)
    rows = bad if any_ref is None else (any_ref if bad is None else bad | any_ref)
    if rows is not None:
        rows = jnp.broadcast_to(rows, labels.shape)
    return _Pairs(ref_emb, raw_dist, dist, pos_mask, neg_mask, pos_arg, neg_arg, soft_pos, soft_neg, valid, z, rows)


def _circle(y_true, y_pred, *, gamma, margin, remove_diagonal, ref_labels, ref_embeddings):
    p = _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings)
    # softplus(-inf) = 0: a sample with no positive or no negative pair contributes 0.
    values = jnp.where(p.valid, jax.nn.softplus(p.z), 0.0)
    return poison(p.bad, values)


def _circle_mask(y_true, y_pred, values, **_):
    # Keras masks zero losses: the mean divides by the samples with a non-zero loss. A NaN
    # stays in (not <= 0), so that it reaches the reduced value.
    return ~(values <= 0.0)


def _circle_vjp(y_true, y_pred, cot, *, gamma, margin, remove_diagonal, ref_labels, ref_embeddings):
    p = _pairs(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings)
    # d softplus(z) = sigmoid(z); z's gradient is the softmax weights of each logsumexp.
    row = jnp.where(p.valid, cot * jax.nn.sigmoid(p.z), 0.0)[:, None]
    # d logit / d dist, through the pair weights (0 where max(., 0) clips them) and the distances.
    d_pos_weight = p.pos_mask * relu_slope(p.pos_arg, 0.5)
    d_pos_logit = -1.0 * gamma * (d_pos_weight * (margin - p.dist) - jnp.maximum(p.pos_arg, 0.0))
    d_neg_weight = -p.neg_mask * relu_slope(p.neg_arg, 0.5)
    d_neg_logit = gamma * (d_neg_weight * ((1.0 - margin) - p.dist) - jnp.maximum(p.neg_arg, 0.0))
    d_dist = row * (p.soft_pos * d_pos_logit + p.soft_neg * d_neg_logit)
    # dist = max(1 - S, 0): no gradient where the distance is clipped at 0.
    d_sim = -d_dist * relu_slope(p.raw_dist, 0.5)
    grad = jnp.matmul(d_sim, p.ref_embeddings, precision=_HIGHEST)
    if ref_embeddings is None:  # the references are y_pred itself: both sides of each pair move
        grad = grad + jnp.matmul(d_sim.T, y_pred, precision=_HIGHEST)
    if p.bad is not None:
        grad = nan_where(jnp.any(p.bad), grad)
    return grad


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


def _unit_rows(rng, n, d, norm=(1.0, 1.0)):
    x = rng.normal(0, 1, (n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(*norm, (n, 1))


def _embeddings(n, d, classes, norm=(1.0, 1.0), labels=None, column=False):
    """Labels (drawn, or fixed) and embeddings of the given norms."""

    def draw(rng):
        y_true = rng.integers(0, classes, n) if labels is None else np.asarray(labels)
        x = _unit_rows(rng, n, d, norm)
        return (y_true[:, None] if column else y_true).astype(np.int32), x

    return draw


def _references(n, m, d, classes):
    """Labels and unit embeddings, with the fixed references of the example's options."""

    def draw(rng):
        return rng.integers(0, classes, n).astype(np.int32), _unit_rows(rng, n, d)

    return draw


# Class 3 appears once: that sample has no positive pair, loss 0, masked out of the mean.
_SINGLETON = [0, 1, 0, 2, 1, 3, 2, 0, 1, 2]
# With remove_diagonal=False each sample is its own positive at distance max(1 - |y_i|^2, 0),
# on the clip's kink for unit vectors: norms in [0.8, 0.95] keep finite differences smooth.
_SHRUNK = (0.8, 0.95)
_REF_RNG = np.random.default_rng(12)
_REF_LABELS = _REF_RNG.integers(0, 3, 9).astype(np.int32)
_REF_EMBEDDINGS = _unit_rows(_REF_RNG, 9, 6)


@register(
    formula=_circle,
    vjp=_circle_vjp,
    gradient="reference",
    inputs={"y_true": GROUP_LABELS, "y_pred": UNIT_VECTORS},
    examples=(
        Example(shape=(12, 8), draw=_embeddings(12, 8, 3)),
        Example(shape=(10, 6), draw=_embeddings(10, 6, 4, labels=_SINGLETON), label="singleton_class"),
        Example(shape=(16, 4), draw=_embeddings(16, 4, 5), label="many_classes"),
        Example({"gamma": 12.0, "margin": 0.25}, shape=(12, 8), draw=_embeddings(12, 8, 3)),
        Example({"gamma": 2.0, "margin": 0.0}, shape=(10, 5), draw=_embeddings(10, 5, 2)),
        Example(
            {"gamma": 32.0, "margin": 0.6},
            shape=(9, 3),
            draw=_embeddings(9, 3, 3, labels=[0, 0, 1, 1, 2, 2, 0, 1, 2]),
        ),
        Example({"remove_diagonal": False}, shape=(12, 8), draw=_embeddings(12, 8, 3, norm=_SHRUNK)),
        Example(
            {"remove_diagonal": False, "gamma": 8.0},
            shape=(10, 6),
            draw=_embeddings(10, 6, 4, norm=_SHRUNK, labels=_SINGLETON),
        ),
        Example({"gamma": 10.0}, shape=(8, 5), draw=_embeddings(8, 5, 3, column=True), label="labels_N1"),
        Example(
            {"gamma": 16.0, "margin": 0.3, "ref_labels": _REF_LABELS, "ref_embeddings": _REF_EMBEDDINGS},
            shape=(7, 6),
            draw=_references(7, 9, 6, 3),
            keras=False,  # Keras's class has no references (tests/test_metric.py: Keras's function)
            label="references",
        ),
    ),
    mask=_circle_mask,
    prepare=_circle_prepare,
    keras="Circle",
    keras_options=lambda o: {k: o[k] for k in ("gamma", "margin", "remove_diagonal") if k in o},
    # An (N, N) similarity matrix: N is capped.
    bench=Bench(shape=lambda n: (max(2, n // 128), 128), max_elements=4096 * 128),
)
def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    gamma: Positive = 80.0,
    margin: NonNegative = 0.4,
    remove_diagonal: Flag = True,
    ref_labels: Annotated[ArrayLike | None, ArrayOption(domain=GROUP_LABELS, dtype="int")] = None,
    ref_embeddings: Annotated[ArrayLike | None, ArrayOption(domain=UNIT_VECTORS)] = None,
    sample_weight: SampleWeight = None,
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
    a non-zero loss (kept as Keras has it). An empty batch gives Keras's passthrough:
    values of shape ``(0,)`` for every reduction.

    Labels are integers; integral floats count. A float label that is no integer
    (a fraction, NaN, inf) gives NaN (Keras truncates it to another group): for its
    own sample, and for every sample when it is a reference label, since every
    sample's pairs depend on it.

    Args:
      y_true: integer labels, shape ``(N,)`` (or ``(N, 1)``).
      y_pred: L2-normalized embeddings, shape ``(N, d)``.
      gamma: scale of the similarities, ``> 0`` (may be a traced scalar).
      margin: relaxation margin, ``>= 0`` (may be a traced scalar).
      remove_diagonal: drop each sample's pair with itself from its positives (as in
        Keras, the diagonal ``j = i`` is dropped with references too).
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
      >>> jaxloss.circle(jnp.array([0, 0, 1, 1]), y_pred, gamma=2.0, reduction="none").round(4)
      Array([0.8577, 1.0097, 1.0097, 0.8577], dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# ntxent (optax)
# --------------------------------------------------------------------------


def _ntxent_parts(y_true, embeddings, temperature):
    labels, bad = _group_labels(y_true, embeddings.dtype)
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
    shift = jnp.max(jnp.where(others, scores, -jnp.inf), axis=1, keepdims=True, initial=-jnp.inf)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    shifted = scores - shift
    exp_negatives = jnp.where(negatives, jnp.exp(shifted), 0.0)
    denom = jnp.sum(exp_negatives, axis=1, keepdims=True) + jnp.exp(shifted)
    return square_norm, norm, unit, positives, shifted, exp_negatives, denom, _any_bad(bad)


def _ntxent(y_true, y_pred, *, temperature):
    *_, positives, shifted, _, denom, bad = _ntxent_parts(y_true, y_pred, temperature)
    # One value per (anchor, positive) pair; the mask keeps positive pairs only.
    return poison(bad, jnp.where(positives, jnp.log(denom) - shifted, 0.0))


def _ntxent_mask(y_true, y_pred, values, *, temperature):
    labels, bad = _group_labels(y_true, y_pred.dtype)
    positives = (labels[:, None] == labels[None, :]) & ~jnp.eye(labels.shape[0], dtype=bool)
    # Labels that are no integers poison every pair: keep them all, so the NaN is seen.
    return positives if bad is None else positives | jnp.any(bad)


def _ntxent_vjp(y_true, y_pred, cotangent, *, temperature):
    square_norm, norm, unit, positives, shifted, exp_negatives, denom, bad = _ntxent_parts(y_true, y_pred, temperature)
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
    return nan_where(bad, d_unit / norm - radial * y_pred)


def _ntxent_prepare(spec, y_true, y_pred, opts):
    if y_pred.ndim != 2:
        raise shape_error(
            spec.name, "embeddings y_pred must have shape (N, D)", y_true=y_true.shape, y_pred=y_pred.shape
        )
    return sparse_prepare(spec, y_true, y_pred, opts)


def _groups(n, d, groups):
    def draw(rng):
        labels = rng.permutation(np.arange(n) % groups).astype(np.int32)
        # Norms in [1, 2]: finite differences of the normalization stay accurate to second order.
        x = rng.normal(0, 1, (n, d))
        x *= rng.uniform(1.0, 2.0, (n, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
        return labels, x

    return draw


@register(
    formula=_ntxent,
    vjp=_ntxent_vjp,
    gradient="reference",
    inputs={"y_true": GROUP_LABELS, "y_pred": REAL},
    examples=(
        Example(shape=(8, 4), draw=_groups(8, 4, 4)),
        Example({"temperature": 0.5}, shape=(9, 3), draw=_groups(9, 3, 2)),
    ),
    mask=_ntxent_mask,
    prepare=_ntxent_prepare,
    reduced_axes=lambda ndim, opts: (),
    aliases=("nt_xent",),
    # optax's scalar is the mean over positive pairs: jaxloss's default reduction, not its
    # per-pair "none" output, so the peer lives in tests/test_metric.py.
    bench=Bench(shape=lambda n: (max(2, n // 128), 128), max_elements=4096 * 128),
)
def ntxent(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    temperature: Positive = 0.07,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Normalized temperature-scaled cross-entropy, NT-Xent / InfoNCE (optax's ``ntxent``).

    .. math:: \ell_{ij} = -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\,y_k \ne y_i} e^{s_{ik}}},
       \quad s_{ij} = \frac{\cos(x_i, x_j)}{T}

    for every positive pair ``(i, j)``: ``i != j`` with the same label. The default
    reduction averages over positive pairs, which is optax's scalar. Labels are
    integers (integral floats count); a float label that is no integer (a fraction,
    NaN, inf) makes every pair NaN, since every anchor's negatives depend on it.

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
      their count is optax's scalar. With no positive pair (an empty batch included)
      the loss is 0 (optax: NaN).

    Gradient: the closed form above (it mixes samples, so it is a vector-Jacobian
    product): on the scores, ``(p_ij - 1)`` for each positive pair and
    ``e^{s_ik} / (e^{s_ij} + Z_i)`` for its negatives, then through the cosine and the
    normalization.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> jaxloss.ntxent(jnp.array([0, 0, 1, 1]), x, temperature=1.0).round(5)
      Array(0.55144, dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# Losses that compare two arrays: the stacked form
# --------------------------------------------------------------------------


def _last_two(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return (ndim - 2, ndim - 1)


def _stacked_prepare(fits, names: str, axis: int, hint: str):
    """prepare for a loss whose ``y_pred`` stacks two inputs along ``axis``; ``fits(t, p)`` checks the shapes."""

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


def _nan_targets(y_true: jax.Array) -> jax.Array:
    """Where a target is NaN (PyTorch's selects on the target would turn it into 0 or both terms)."""
    return jnp.isnan(y_true)


# --------------------------------------------------------------------------
# margin_ranking (PyTorch)
# --------------------------------------------------------------------------


def _margin_ranking(y_true, y_pred, *, margin):
    return relu(-y_true * (y_pred[..., 0] - y_pred[..., 1]) + margin, 0.0)


def _margin_ranking_grad(y_true, y_pred, *, margin):
    slope = y_true * relu_slope(-y_true * (y_pred[..., 0] - y_pred[..., 1]) + margin)
    return jnp.stack([-slope, slope], axis=-1)


@register(
    formula=_margin_ranking,
    local_grad=_margin_ranking_grad,
    gradient="reference",
    inputs={"y_true": Signs(drop=-1), "y_pred": REAL},
    examples=(
        Example(shape=(8, 2), smooth=False),
        Example({"margin": 0.3}, shape=(3, 4, 2), smooth=False),
    ),
    prepare=_stacked_prepare(
        lambda t, p: p == (*t, 2), "x1 and x2", -1, "expected y_pred.shape == y_true.shape + (2,)"
    ),
    aliases=("margin_ranking_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p, margin: F.margin_ranking_loss(
                p[..., 0], p[..., 1], t, margin=margin, reduction="none"
            ),
            "F.margin_ranking_loss",
        ),
    ),
    stack=Stack(-1, same_as_first=True),
    # A hinge on x1 - x2: (rows, 1024, 2) pairs.
    bench=Bench(shape=lambda n: (max(1, n // 2048), 1024, 2), family=POLYNOMIAL),
)
def margin_ranking(
    y_true: ArrayLike,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    margin: RealNumber = 0.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Margin ranking loss (PyTorch's ``margin_ranking_loss``): should ``x1`` rank above ``x2``?

    .. math:: \ell = \max\big(0,\ -y (x_1 - x_2) + \text{margin}\big)

    Args:
      y_true: targets in ``{-1, 1}`` (1: ``x1`` should be larger), shape ``(...)``, rank >= 1.
      x1: first scores, same shape as ``y_true``.
      x2: second scores, same shape. Or leave it out and pass
        ``x1 = jnp.stack([x1, x2], axis=-1)`` of shape ``(..., 2)``: that is the
        ``y_pred`` that :func:`jaxloss.grad` and :func:`jaxloss.analytic_grad`
        differentiate, so their gradient holds ``d/dx1`` in ``[..., 0]`` and
        ``d/dx2`` in ``[..., 1]``.
      margin: the margin, a scalar (may be traced).
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
    ...


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
    # A NaN target is read as 1 and its sample poisoned, so that the NaN reaches the gradient.
    nan = _nan_targets(y_true)
    similar = jnp.where((y_true == 1) | nan, 1.0 - cos, 0.0)
    dissimilar = jnp.where(y_true == -1, relu(cos - margin, 0.0), 0.0)
    return poison(nan, similar + dissimilar)


def _cosine_embedding_grad(y_true, y_pred, *, margin):
    x1, x2, sq1, sq2, inv, cos = _cosine_parts(y_pred)
    coef = jnp.where(y_true == 1, -1.0, 0.0) + jnp.where(y_true == -1, relu_slope(cos - margin), 0.0)
    d1 = x2 * inv[..., None] - (cos / sq1)[..., None] * x1
    d2 = x1 * inv[..., None] - (cos / sq2)[..., None] * x2
    return nan_where(_nan_targets(y_true), coef[..., None, None] * jnp.stack([d1, d2], axis=-2))


def _similar_pairs(rng):
    return np.ones(6), rng.normal(0, 1, (6, 2, 4))


def _torch_cosine_embedding(torch, F, t, p, margin):
    # PyTorch takes (N, D) embeddings and (N,) targets: flatten the leading axes.
    d = p.shape[-1]
    flat = F.cosine_embedding_loss(
        p[..., 0, :].reshape(-1, d), p[..., 1, :].reshape(-1, d), t.reshape(-1), margin=margin, reduction="none"
    )
    return flat.reshape(t.shape)


@register(
    formula=_cosine_embedding,
    local_grad=_cosine_embedding_grad,
    gradient="reference",
    inputs={"y_true": Signs(drop=(-2, -1)), "y_pred": REAL},
    examples=(
        Example(shape=(6, 2, 4), draw=_similar_pairs, label="similar"),
        Example({"margin": -0.2}, shape=(8, 2, 3), smooth=False),
        Example({"margin": 0.3}, shape=(2, 3, 2, 4), smooth=False, label="rank3"),
    ),
    prepare=_stacked_prepare(
        lambda t, p: len(p) == len(t) + 2 and p[:-1] == (*t, 2),
        "x1 and x2",
        -2,
        "expected y_pred.shape == y_true.shape + (2, D)",
    ),
    reduced_axes=_last_two,
    aliases=("cosine_embedding_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p, margin: _torch_cosine_embedding(torch, F, t, p, margin),
            "F.cosine_embedding_loss",
        ),
    ),
    stack=Stack(-2, same_as_first=False),
    bench=Bench(shape=lambda n: (max(1, n // 256), 2, 128)),
)
def cosine_embedding(
    y_true: ArrayLike,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    margin: Annotated[Number, Scalar(-1.0, 1.0)] = 0.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Cosine embedding loss (PyTorch's ``cosine_embedding_loss``).

    .. math:: \ell = \begin{cases} 1 - \cos(x_1, x_2) & y = 1 \\
       \max(0, \cos(x_1, x_2) - \text{margin}) & y = -1 \end{cases},\quad
       \cos(a, b) = \frac{a \cdot b}{\sqrt{(\|a\|^2 + \epsilon)(\|b\|^2 + \epsilon)}},\ \epsilon = 10^{-12}

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(...)``; any other finite value gives 0
        (PyTorch's), a NaN gives NaN.
      x1: first embeddings, shape ``(..., D)``.
      x2: second embeddings, same shape. Or leave it out and pass
        ``x1 = jnp.stack([x1, x2], axis=-2)`` of shape ``(..., 2, D)``: that is the
        ``y_pred`` that :func:`jaxloss.grad` and :func:`jaxloss.analytic_grad`
        differentiate (``d/dx1`` in ``[..., 0, :]``, ``d/dx2`` in ``[..., 1, :]``).
      margin: in ``[-1, 1]``, a scalar (may be traced).
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
      >>> jaxloss.cosine_embedding(jnp.array([1.0, -1.0]), x1, x2, reduction="none").round(5)
      Array([1.     , 0.70711], dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# triplet_margin (PyTorch)
# --------------------------------------------------------------------------


def _p_distance(a, b, p, eps):
    """PyTorch's pairwise_distance ``||a - b + eps||_p`` and its gradient with respect to ``a``."""
    diff = a - b + eps
    magnitude = jnp.abs(diff)
    total = jnp.sum(jnp.power(magnitude, p), axis=-1)
    # != 0 rather than > 0: a NaN total takes the power (NaN), not the zero branch.
    nonzero = total != 0
    distance = safe_where(nonzero, lambda t: jnp.power(t, 1.0 / p), total, 1.0, 0.0)
    # d||d||_p / dd_k = sign(d_k) |d_k|^(p-1) * total^(1/p - 1); 0 at d = 0 (as PyTorch's norm).
    outer = safe_where(nonzero, lambda t: jnp.power(t, 1.0 / p - 1.0), total, 1.0, 0.0)
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
    return relu(raw, 0.0)


def _triplet_margin_grad(y_true, y_pred, *, margin, p, eps, swap):
    raw, (g_ap, g_an, g_pn, share_an) = _triplet_parts(y_true, y_pred, margin, p, eps, swap)
    active = relu_slope(raw)[..., None]
    # d_ap = ||a - pos + eps||: d/dpos = -g_ap; d_an: d/dneg = -g_an; d_pn = ||pos - neg + eps||: +g_pn, -g_pn.
    if swap:
        assert share_an is not None and g_pn is not None
        share_an = share_an[..., None]
        d_pos = -g_ap - (1.0 - share_an) * g_pn
        d_neg = share_an * g_an + (1.0 - share_an) * g_pn
    else:
        d_pos, d_neg = -g_ap, g_an
    return active[..., None, :] * jnp.stack([d_pos, d_neg], axis=-2)


def _optax_triplet(t, x, margin, **_):
    return optax.losses.triplet_margin_loss(t, x[..., 0, :], x[..., 1, :], margin=margin, eps=0.0)


@register(
    formula=_triplet_margin,
    local_grad=_triplet_margin_grad,
    gradient="reference",
    inputs={"y_true": Real(drop=-2), "y_pred": REAL},
    examples=(
        Example(shape=(6, 2, 4), smooth=False),
        Example({"margin": 2.0, "p": 1.0}, shape=(6, 2, 4), smooth=False),
        Example({"p": 3.0, "swap": True}, shape=(2, 3, 2, 4), smooth=False),
        Example({"margin": 1.5, "swap": True, "eps": 0.0}, shape=(8, 2, 3), smooth=False),
        Example({"eps": 0.0}, shape=(8, 2, 4), smooth=False, label="optax"),
    ),
    prepare=_stacked_prepare(
        lambda t, p: len(t) >= 1 and p == (*t[:-1], 2, t[-1]),
        "positive and negative",
        -2,
        "pass anchor, positive and negative, or anchor (..., D) and jnp.stack([positive, negative], axis=-2)",
    ),
    reduced_axes=_last_two,
    aliases=("triplet_margin_loss",),
    peers=(
        # optax adds eps inside the root, PyTorch (and jaxloss) to the difference; no swap in optax.
        Peer(
            "optax",
            _optax_triplet,
            "triplet_margin_loss(a, p, n, eps=0)",
            applies=lambda o: float(o["eps"]) == 0.0 and not o["swap"] and float(o["p"]) == 2.0,
        ),
        Peer(
            "torch",
            lambda torch, F, t, x, **o: F.triplet_margin_loss(
                t,
                x[..., 0, :],
                x[..., 1, :],
                margin=o["margin"],
                p=o["p"],
                eps=o["eps"],
                swap=o["swap"],
                reduction="none",
            ),
            "F.triplet_margin_loss",
        ),
    ),
    stack=Stack(-2, same_as_first=True),
    bench=Bench(options={"eps": 0.0}, shape=lambda n: (max(1, n // 256), 2, 128)),
)
def triplet_margin(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike | None = None,
    *,
    margin: RealNumber = 1.0,
    p: Annotated[Number, Scalar(0.0, math.inf, low_open=True, high_open=True)] = 2.0,
    eps: NonNegative = 1e-6,
    swap: Flag = False,
    sample_weight: SampleWeight = None,
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
      margin: the margin, a scalar (may be traced).
      p: the norm's degree, positive and finite (may be a traced scalar).
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
    A NaN embedding gives NaN (value and gradient), as in PyTorch and optax.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0]]), jnp.array([[0.0, 1.0]])
      >>> jaxloss.triplet_margin(a, pos, neg, eps=0.0)
      Array(5., dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# hinge_embedding (PyTorch)
# --------------------------------------------------------------------------


def _hinge_embedding(y_true, y_pred, *, margin):
    # PyTorch's formula term by term: a target that is neither 1 nor -1 gets both terms.
    below_margin = jnp.where(y_true != 1, relu(margin - y_pred, 0.0), 0.0)
    distance = jnp.where(y_true != -1, y_pred, 0.0)
    return poison(jnp.any(_nan_targets(y_true), axis=-1), jnp.mean(below_margin + distance, axis=-1))


def _hinge_embedding_grad(y_true, y_pred, *, margin):
    pull = jnp.where(y_true != -1, 1.0, 0.0)
    push = jnp.where(y_true != 1, relu_slope(margin - y_pred), 0.0)
    # A NaN distance keeps its NaN even where its term is linear (as autodiff through the hinge).
    slope = jnp.where(jnp.isnan(y_pred), y_pred, (pull - push).astype(y_pred.dtype) / width(y_pred))
    return nan_where(jnp.any(_nan_targets(y_true), axis=-1), slope)


@register(
    formula=_hinge_embedding,
    local_grad=_hinge_embedding_grad,
    gradient="reference",
    inputs={"y_true": SIGNS, "y_pred": REAL},
    examples=(
        Example(inputs={"y_pred": NON_NEGATIVE}, smooth=False),
        Example({"margin": 1.5}, shape=(2, 3, 4), inputs={"y_pred": NON_NEGATIVE}, smooth=False),
    ),
    aliases=("hinge_embedding_loss",),
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p, margin: F.hinge_embedding_loss(p, t, margin=margin, reduction="none").mean(-1),
            "F.hinge_embedding_loss",
        ),
    ),
    bench=Bench(family=POLYNOMIAL),
)
def hinge_embedding(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    margin: RealNumber = 1.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Hinge embedding loss (PyTorch's ``hinge_embedding_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \begin{cases} x & y = 1 \\
       \max(0, \text{margin} - x) & y = -1 \end{cases}

    ``y_pred`` is usually a distance (``x >= 0``): similar pairs (``y = 1``) are pulled
    together, dissimilar ones (``y = -1``) pushed beyond ``margin``. A finite target that
    is neither gets both terms (PyTorch's); a NaN target gives NaN.

    Args:
      y_true: targets in ``{-1, 1}``, shape ``(..., d)``.
      y_pred: distances or scores, same shape.
      margin: the margin for ``y = -1``, a scalar (may be traced).
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
    ...
