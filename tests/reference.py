"""Independent float64 numpy references for every jaxloss loss: the tests' oracle.

Written from the losses' documentation (their docstrings, ``API.md``, the README's
"Differences from Keras") and from Keras 3, optax and PyTorch semantics, never from
jaxloss's code: plain numpy in float64, no jax. Keras's own formulas are kept where
Keras defines the loss (its clipping at ``1e-7``, its label smoothing, its rank rule,
its reductions and loss masks); the deliberate differences that the README lists are
followed (focal losses from logits in log space, tversky's ``alpha`` on false
positives, ``-inf`` logits with zero target mass, labels that name no class, ...).

- :func:`per_sample` gives the per-sample values (what jaxloss returns with
  ``reduction="none"`` and no ``sample_weight``), for every loss and option;
- :func:`mask` gives a loss's own weighting: the valid entries (``ignore_class``,
  circle's non-zero samples, ntxent's positive pairs, ranking_softmax's non-empty
  lists), which the mean reductions count as Keras counts a loss mask, and the
  per-sample count weights of PyTorch's weighted mean (``class_weight``);
- :func:`reduce` is Keras's reduction (one copy, for every test);
- :func:`loss` combines them, :func:`grad` differentiates :func:`loss` with respect
  to ``y_pred`` by central differences.

Inputs are taken as the registry declares them: ``(y_true, y_pred)``, with the
compared pair stacked into ``y_pred`` for ``margin_ranking`` (axis -1),
``cosine_embedding`` and ``triplet_margin`` (axis -2; the anchor is ``y_true``);
``linear_cross_entropy`` takes ``hidden`` as ``y_pred`` and ``weight``, ``bias`` as
options.

The NaN rules (issue "Nothing silently wrong"): NaN in an input propagates to the
values it enters; a class label that names no class (outside ``[0, C)``, a fraction, a
NaN), other than ``ignore_class``, gives NaN for its sample; an ``ignore_class``
position gives 0 and is masked.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

# Keras's backend.epsilon(): every clipping rule that Keras has.
EPSILON = 1e-7
F64 = np.float64
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


class Mask(NamedTuple):
    """A loss's own weighting of its per-sample values.

    ``valid``: the entries the mean reductions count (Keras's loss mask: the others are
    0 and ``"sum_over_batch_size"``/``"mean"`` divide by the number of valid entries);
    ``count``: each entry's weight in ``"mean_with_sample_weight"``'s divisor (PyTorch's
    weighted mean under ``class_weight``). None: no such weighting.
    """

    valid: np.ndarray | None = None
    count: np.ndarray | None = None


class _Out(NamedTuple):
    values: np.ndarray
    valid: np.ndarray | None = None
    count: np.ndarray | None = None


LOSSES: dict[str, Callable[..., Any]] = {}


def _loss(name: str):
    def deco(fn):
        LOSSES[name] = fn
        return fn

    return deco


def defaults(name: str) -> dict[str, Any]:
    """The reference's option defaults for a loss (they must equal the public signature's;
    required options have none)."""
    sig = inspect.signature(LOSSES[name])
    return {
        k: p.default
        for k, p in sig.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _f(x: Any) -> np.ndarray:
    return np.asarray(x, F64)


def _num(x: Any) -> float:
    return float(np.asarray(x, F64))


def _rank_rule(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's squeeze_or_expand_to_same_rank(y_true, y_pred)."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        if y_pred.ndim == 1:
            y_pred = y_pred[..., None]
        else:
            y_true = y_true[..., 0]
    if y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        if y_true.ndim == 1:
            y_true = y_true[..., None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def _same(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _rank_rule(_f(y_true), _f(y_pred))
    if t.shape != p.shape:
        raise ValueError(f"reference: y_true {t.shape} and y_pred {p.shape} differ")
    return t, p


def _along(vector: Any, ndim: int, axis: int) -> np.ndarray:
    """A scalar, or a (C,) per-class vector laid along ``axis`` of an ndim-array."""
    v = _f(vector)
    if v.ndim == 1:
        shape = [1] * ndim
        shape[axis % ndim] = v.shape[0]
        v = v.reshape(shape)
    return v


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(x))


def _lse(x: np.ndarray, axis: int, where: np.ndarray | None = None, keepdims: bool = False) -> np.ndarray:
    """log-sum-exp along ``axis`` over the entries ``where`` holds (-inf for none); NaN propagates."""
    if where is not None:
        x = np.where(where, x, -np.inf)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis)


def _xlogy_term(t: np.ndarray, neg_log: np.ndarray) -> np.ndarray:
    """``t * neg_log`` with a zero target contributing 0 (also against an infinite log)."""
    return np.where(t == 0, 0.0, t * neg_log)


class _Labels(NamedTuple):
    index: np.ndarray  # a valid class index everywhere (0 where the label names none)
    bad: np.ndarray  # names no class and is not ignore_class: NaN
    ignored: np.ndarray  # equals ignore_class: 0, masked


def _labels(y_true: Any, classes: int, ignore_class: int | None = None) -> _Labels:
    t = _f(y_true)
    ignored = (t == ignore_class) if ignore_class is not None else np.zeros(t.shape, bool)
    named = np.isfinite(t) & (t == np.floor(t)) & (t >= 0) & (t < classes)
    return _Labels(np.where(named, t, 0).astype(np.int64), ~named & ~ignored, ignored)


def _squeeze_unit(y_true: np.ndarray, y_pred: np.ndarray, axis: int) -> np.ndarray:
    """Sparse labels: a unit class axis on the labels is squeezed."""
    ax = axis % y_pred.ndim
    if y_true.ndim == y_pred.ndim and y_true.shape[ax] == 1:
        y_true = np.squeeze(y_true, ax)
    expected = y_pred.shape[:ax] + y_pred.shape[ax + 1 :]
    if y_true.shape != expected:
        raise ValueError(f"reference: labels {y_true.shape} for scores {y_pred.shape}")
    return y_true


def _one_hot(index: np.ndarray, classes: int, axis: int) -> np.ndarray:
    oh = (index[..., None] == np.arange(classes)).astype(F64)
    return np.moveaxis(oh, -1, axis % (index.ndim + 1))


def _nan_rows(values: np.ndarray, *arrays: np.ndarray, axis: Any = -1) -> np.ndarray:
    """NaN where any of ``arrays`` has a NaN along ``axis`` (reduced to ``values``' shape)."""
    bad = np.zeros(values.shape, bool)
    for a in arrays:
        bad |= np.any(np.isnan(a), axis=axis)
    return np.where(bad, np.nan, values)


def _reduce_axes(ndim: int, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted({a % ndim for a in axes}))


# ----------------------------------------------------------------------------
# Regression
# ----------------------------------------------------------------------------


@_loss("mean_squared_error")
def mean_squared_error(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean((t - p) ** 2, axis=-1)


@_loss("mean_absolute_error")
def mean_absolute_error(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(np.abs(t - p), axis=-1)


@_loss("mean_absolute_percentage_error")
def mean_absolute_percentage_error(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return 100.0 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPSILON), axis=-1)


@_loss("mean_squared_logarithmic_error")
def mean_squared_logarithmic_error(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean((np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))) ** 2, axis=-1)


@_loss("huber")
def huber(y_true, y_pred, *, delta=1.0):
    t, p = _same(y_true, y_pred)
    d = _num(delta)
    e = np.abs(p - t)
    return np.mean(np.where(e <= d, 0.5 * e**2, d * e - 0.5 * d**2), axis=-1)


@_loss("smooth_l1")
def smooth_l1(y_true, y_pred, *, beta=1.0):
    t, p = _same(y_true, y_pred)
    b = _num(beta)
    e = np.abs(p - t)
    if b == 0:
        return np.mean(e, axis=-1)
    return np.mean(np.where(e < b, 0.5 * e**2 / b, e - 0.5 * b), axis=-1)


@_loss("log_cosh")
def log_cosh(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    a = np.abs(p - t)
    return np.mean(a + np.log1p(np.exp(-2.0 * a)) - math.log(2.0), axis=-1)


@_loss("cosine_similarity")
def cosine_similarity(y_true, y_pred, *, axis=-1):
    t, p = _same(y_true, y_pred)

    def unit(x):
        return x / np.maximum(np.sqrt(np.sum(x**2, axis=axis, keepdims=True)), EPSILON)

    return -np.sum(unit(t) * unit(p), axis=axis)


# ----------------------------------------------------------------------------
# Likelihood
# ----------------------------------------------------------------------------


@_loss("poisson")
def poisson(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(p - t * np.log(p + EPSILON), axis=-1)


@_loss("poisson_nll")
def poisson_nll(y_true, y_pred, *, log_input=True, full=False, eps=1e-8):
    t, x = _same(y_true, y_pred)
    values = np.exp(x) - t * x if log_input else x - t * np.log(x + _num(eps))
    if full:
        safe = np.where(t > 1, t, 2.0)
        values = values + np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
    return np.mean(values, axis=-1)


@_loss("gaussian_nll")
def gaussian_nll(y_true, y_pred, *, variance, full=False, eps=1e-6):
    t, p = _same(y_true, y_pred)
    v = _f(variance)
    if v.ndim and v.shape != p.shape:
        if v.shape == p.shape[:-1]:
            v = v[..., None]
        elif not (v.shape[:-1] == p.shape[:-1] and v.shape[-1] == 1):
            raise ValueError(f"reference: variance {v.shape} for y_pred {p.shape}")
    v = np.maximum(v, _num(eps))
    values = 0.5 * (np.log(v) + (p - t) ** 2 / v)
    if full:
        values = values + 0.5 * math.log(2 * math.pi)
    return np.mean(values, axis=-1)


# ----------------------------------------------------------------------------
# Divergences
# ----------------------------------------------------------------------------


@_loss("kl_divergence")
def kl_divergence(y_true, y_pred, *, log_input=False, log_target=False):
    y, p = _same(y_true, y_pred)
    if not log_input:
        t = np.clip(np.exp(y) if log_target else y, EPSILON, 1.0)
        return np.sum(t * np.log(t / np.clip(p, EPSILON, 1.0)), axis=-1)
    if log_target:
        zero, t, log_t = y == -np.inf, np.exp(y), y
    else:
        zero, t = y == 0, y
        log_t = np.log(np.where(zero, 1.0, y))
    return np.sum(np.where(zero, 0.0, t * (log_t - p)), axis=-1)


@_loss("generalized_kl_divergence")
def generalized_kl_divergence(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.sum(np.where(t == 0, 0.0, t * np.log(t / p)) - t + p, axis=-1)


# ----------------------------------------------------------------------------
# Crossentropies
# ----------------------------------------------------------------------------


@_loss("binary_crossentropy")
def binary_crossentropy(y_true, y_pred, *, from_logits=False, label_smoothing=0.0, axis=-1, pos_weight=None):
    y, p = _same(y_true, y_pred)
    s = _num(label_smoothing)
    t = y * (1.0 - s) + 0.5 * s
    w = 1.0 if pos_weight is None else _along(pos_weight, p.ndim, axis)
    if from_logits:
        log_p, log_q = _log_sigmoid(p), _log_sigmoid(-p)
    else:
        pc = np.clip(p, EPSILON, 1.0 - EPSILON)
        log_p, log_q = np.log(pc), np.log(1.0 - pc)
    return np.mean(-(w * t * log_p + (1.0 - t) * log_q), axis=axis)


def _crossentropy(
    t: np.ndarray,
    p: np.ndarray,
    *,
    from_logits: bool,
    label_smoothing: Any,
    axis: int,
    class_weight: Any,
    where: Any,
    z_loss: Any,
    logit_soft_cap: Any,
) -> _Out:
    """Categorical crossentropy of targets ``t`` (one-hot or soft) along ``axis``.

    Per sample ``(1 - s) sum_c w_c t_c (-log p_c) + W (s mean_c(-log p_c) + z_loss lse**2)``
    over the unmasked classes, ``W = sum_c w_c t_c`` over every class (1 without class
    weights) also the sample's count weight.
    """
    ax = axis % p.ndim
    s = _num(label_smoothing)
    target_all = t
    if from_logits:
        z = p
        if logit_soft_cap is not None:
            cap = _num(logit_soft_cap)
            z = cap * np.tanh(z / cap)
        m = np.ones(z.shape, bool) if where is None else np.broadcast_to(np.asarray(where, bool), z.shape)
        t = np.where(m, t, 0.0)
        lse = _lse(z, ax, m, keepdims=True)
        neg_log = np.where(m, lse - z, 0.0)
        classes = np.sum(m, axis=ax, keepdims=True).astype(F64)
        nan_in = np.any(np.isnan(np.where(m, z, 0.0)) | np.isnan(t), axis=ax)
    else:
        m = np.ones(p.shape, bool)
        q = np.clip(p / np.sum(p, axis=ax, keepdims=True), EPSILON, 1.0 - EPSILON)
        neg_log = -np.log(q)
        lse = None
        classes = np.full((1,) * p.ndim, float(p.shape[ax]))
        nan_in = np.any(np.isnan(p) | np.isnan(t), axis=ax)
    wc = 1.0 if class_weight is None else _along(class_weight, p.ndim, ax)
    # The sample's weight sums over every class, masked ones too: a sparse label's weight
    # w_y, also for a label on a masked class.
    weight = np.sum(wc * target_all, axis=ax, keepdims=True) if class_weight is not None else np.ones_like(classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = np.where(m, s / np.where(classes > 0, classes, 1.0), 0.0)
    target = (1.0 - s) * wc * t + weight * smooth
    values = np.sum(_xlogy_term(target, neg_log), axis=ax)
    if lse is not None and _num(z_loss) != 0:
        values = values + np.squeeze(weight, ax) * _num(z_loss) * np.squeeze(lse, ax) ** 2
    values = np.where(np.squeeze(classes, ax) == 0, 0.0, values)  # a row with no class left
    values = np.where(nan_in, np.nan, values)
    count = None if class_weight is None else np.broadcast_to(np.squeeze(weight, ax), values.shape)
    return _Out(values, None, count)


@_loss("categorical_crossentropy")
def categorical_crossentropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
    class_weight=None,
    where=None,
    z_loss=0.0,
    logit_soft_cap=None,
):
    t, p = _same(y_true, y_pred)
    return _crossentropy(
        t,
        p,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=axis,
        class_weight=class_weight,
        where=where,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
    )


@_loss("sparse_categorical_crossentropy")
def sparse_categorical_crossentropy(
    y_true,
    y_pred,
    *,
    from_logits=False,
    ignore_class=None,
    axis=-1,
    label_smoothing=0.0,
    class_weight=None,
    where=None,
    z_loss=0.0,
    logit_soft_cap=None,
):
    p = _f(y_pred)
    ax = axis % p.ndim
    y = _squeeze_unit(np.asarray(y_true), p, ax)
    labels = _labels(y, p.shape[ax], ignore_class)
    out = _crossentropy(
        _one_hot(labels.index, p.shape[ax], ax),
        p,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        axis=ax,
        class_weight=class_weight,
        where=where,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
    )
    values = np.where(labels.ignored, 0.0, np.where(labels.bad, np.nan, out.values))
    count = None if out.count is None else np.where(labels.ignored, 0.0, out.count)
    valid = None if ignore_class is None else ~labels.ignored
    return _Out(values, valid, count)


@_loss("poly_loss")
def poly_loss(y_true, y_pred, *, epsilon=2.0):
    t, z = _same(y_true, y_pred)
    log_p = z - _lse(z, -1, keepdims=True)
    ce = np.sum(_xlogy_term(t, -log_p), axis=-1)
    return ce + _num(epsilon) * np.sum(t * (1.0 - np.exp(log_p)), axis=-1)


def _sparsemax(z: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row (last axis) onto the simplex."""
    zs = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1, dtype=F64)
    cs = np.cumsum(zs, axis=-1)
    size = np.sum(1.0 + k * zs > cs, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cs, size - 1, axis=-1) - 1.0) / size
    return np.maximum(z - tau, 0.0)


@_loss("sparsemax_loss")
def sparsemax_loss(y_true, y_pred):
    s = _f(y_pred)
    labels = _labels(_squeeze_unit(np.asarray(y_true), s, -1), s.shape[-1])
    with np.errstate(invalid="ignore"):
        z = s - np.max(np.where(np.isnan(s), -np.inf, s), axis=-1, keepdims=True)
        proba = _sparsemax(np.where(np.isnan(z), 0.0, z))
    z_y = np.take_along_axis(z, labels.index[..., None], axis=-1)
    values = np.sum(proba * (z - z_y), axis=-1) + 0.5 * (1.0 - np.sum(proba**2, axis=-1))
    values = _nan_rows(values, s)
    return np.where(labels.bad, np.nan, values)


# ----------------------------------------------------------------------------
# Focal losses
# ----------------------------------------------------------------------------


@_loss("binary_focal_crossentropy")
def binary_focal_crossentropy(
    y_true,
    y_pred,
    *,
    apply_class_balancing=False,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
):
    y, p = _same(y_true, y_pred)
    s, g, a = _num(label_smoothing), _num(gamma), _num(alpha)
    t = y * (1.0 - s) + 0.5 * s
    if from_logits:  # log space (the README's difference from Keras)
        bce = -(t * _log_sigmoid(p) + (1.0 - t) * _log_sigmoid(-p))
        one_minus_pt = t * _sigmoid(-p) + (1.0 - t) * _sigmoid(p)
    else:
        pc = np.clip(p, EPSILON, 1.0 - EPSILON)
        bce = -(t * np.log(pc) + (1.0 - t) * np.log(1.0 - pc))
        one_minus_pt = 1.0 - (t * p + (1.0 - t) * (1.0 - p))
    focal = one_minus_pt**g * bce
    if apply_class_balancing:
        focal = (t * a + (1.0 - t) * (1.0 - a)) * focal
    return np.mean(focal, axis=axis)


@_loss("categorical_focal_crossentropy")
def categorical_focal_crossentropy(
    y_true, y_pred, *, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1
):
    y, p = _same(y_true, y_pred)
    ax = axis % p.ndim
    s, g = _num(label_smoothing), _num(gamma)
    t = y * (1.0 - s) + s / p.shape[ax]
    a = _along(alpha, p.ndim, ax)
    if from_logits:  # log space: log p = log_softmax(z), 1 - p = -expm1(log p)
        log_p = p - _lse(p, ax, keepdims=True)
        one_minus = -np.expm1(log_p)
    else:
        q = np.clip(p / np.sum(p, axis=ax, keepdims=True), EPSILON, 1.0 - EPSILON)
        log_p, one_minus = np.log(q), 1.0 - q
    return np.sum(_xlogy_term(t, a * one_minus**g * -log_p), axis=ax)


@_loss("categorical_generalized_cross_entropy")
def categorical_generalized_cross_entropy(y_true, y_pred, *, q=0.5):
    p = _f(y_pred)
    labels = _labels(_squeeze_unit(np.asarray(y_true), p, -1), p.shape[-1])
    qq = _num(q)
    p_y = np.take_along_axis(p, labels.index[..., None], axis=-1)[..., 0]
    values = (1.0 - p_y**qq) / qq
    values = np.where(np.any(~np.isfinite(p), axis=-1), np.nan, values)
    return np.where(labels.bad, np.nan, values)


@_loss("sigmoid_focal")
def sigmoid_focal(y_true, y_pred, *, alpha=None, gamma=2.0):
    t, x = _same(y_true, y_pred)
    bce = -(t * _log_sigmoid(x) + (1.0 - t) * _log_sigmoid(-x))
    one_minus_pt = (1.0 - t) * _sigmoid(x) + t * _sigmoid(-x)
    values = one_minus_pt ** _num(gamma) * bce
    if alpha is not None:
        a = _num(alpha)
        values = (a * t + (1.0 - a) * (1.0 - t)) * values
    return np.mean(values, axis=-1)


# ----------------------------------------------------------------------------
# Hinge and margin losses for classification
# ----------------------------------------------------------------------------


def _hinge_labels(t: np.ndarray) -> np.ndarray:
    """Keras: {0, 1} labels become {-1, 1} when every label of the call is 0 or 1."""
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


@_loss("hinge")
def hinge(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(np.maximum(1.0 - _hinge_labels(t) * p, 0.0), axis=-1)


@_loss("squared_hinge")
def squared_hinge(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(np.maximum(1.0 - _hinge_labels(t) * p, 0.0) ** 2, axis=-1)


@_loss("categorical_hinge")
def categorical_hinge(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    pos = np.sum(t * p, axis=-1)
    neg = np.max((1.0 - t) * p, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


@_loss("multiclass_hinge")
def multiclass_hinge(y_true, y_pred):
    s = _f(y_pred)
    labels = _labels(_squeeze_unit(np.asarray(y_true), s, -1), s.shape[-1])
    oh = _one_hot(labels.index, s.shape[-1], -1)
    values = np.max(s + 1.0 - oh, axis=-1) - np.sum(s * oh, axis=-1)
    return np.where(labels.bad, np.nan, _nan_rows(values, s))


@_loss("multi_margin")
def multi_margin(y_true, y_pred, *, p=1, margin=1.0, class_weight=None):
    s = _f(y_pred)
    classes = s.shape[-1]
    labels = _labels(_squeeze_unit(np.asarray(y_true), s, -1), classes)
    oh = _one_hot(labels.index, classes, -1)
    s_y = np.sum(s * oh, axis=-1, keepdims=True)
    terms = np.maximum(_num(margin) - s_y + s, 0.0) ** int(p)
    values = np.sum(np.where(oh == 1, 0.0, terms), axis=-1) / classes
    if class_weight is not None:
        values = _f(class_weight)[labels.index] * values
    return np.where(labels.bad, np.nan, _nan_rows(values, s))


@_loss("perceptron")
def perceptron(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(np.maximum(-t * p, 0.0), axis=-1)


@_loss("soft_margin")
def soft_margin(y_true, y_pred):
    t, p = _same(y_true, y_pred)
    return np.mean(np.logaddexp(0.0, -t * p), axis=-1)


@_loss("multilabel_soft_margin")
def multilabel_soft_margin(y_true, y_pred, *, class_weight=None):
    t, x = _same(y_true, y_pred)
    w = 1.0 if class_weight is None else _along(class_weight, x.ndim, -1)
    return -np.mean(w * (t * _log_sigmoid(x) + (1.0 - t) * _log_sigmoid(-x)), axis=-1)


@_loss("multilabel_margin")
def multilabel_margin(y_true, y_pred):
    # PyTorch's definition, on each row's target set: sum over (target j, non-target i)
    # of max(0, 1 - (x_j - x_i)), over C.
    t, x = _same(y_true, y_pred)
    classes = x.shape[-1]
    rows_t, rows_x = t.reshape(-1, classes), x.reshape(-1, classes)
    out = np.empty(rows_x.shape[0])
    for r, (tr, xr) in enumerate(zip(rows_t, rows_x, strict=True)):
        targets = [j for j in range(classes) if tr[j] == 1]
        others = [i for i in range(classes) if tr[i] == 0]
        total = sum(max(0.0, 1.0 - (xr[j] - xr[i])) for j in targets for i in others)
        out[r] = np.nan if np.isnan(tr).any() or np.isnan(xr).any() else total / classes
    return out.reshape(x.shape[:-1])


# ----------------------------------------------------------------------------
# Metric learning
# ----------------------------------------------------------------------------


@_loss("hinge_embedding")
def hinge_embedding(y_true, y_pred, *, margin=1.0):
    t, x = _same(y_true, y_pred)
    # PyTorch: the margin term where the target is not 1, the input where it is not -1.
    values = np.where(t != 1, np.maximum(_num(margin) - x, 0.0), 0.0) + np.where(t != -1, x, 0.0)
    return np.mean(np.where(np.isnan(t), np.nan, values), axis=-1)


@_loss("margin_ranking")
def margin_ranking(y_true, y_pred, *, margin=0.0):
    t, x = _f(y_true), _f(y_pred)
    return np.maximum(-t * (x[..., 0] - x[..., 1]) + _num(margin), 0.0)


@_loss("cosine_embedding")
def cosine_embedding(y_true, y_pred, *, margin=0.0):
    t, x = _f(y_true), _f(y_pred)
    x1, x2 = x[..., 0, :], x[..., 1, :]
    eps = 1e-12  # PyTorch's EPSILON on each squared norm
    cos = np.sum(x1 * x2, axis=-1) / np.sqrt((np.sum(x1**2, axis=-1) + eps) * (np.sum(x2**2, axis=-1) + eps))
    values = np.where(t == 1, 1.0 - cos, np.where(t == -1, np.maximum(cos - _num(margin), 0.0), 0.0))
    return np.where(np.isnan(t), np.nan, values)


@_loss("triplet_margin")
def triplet_margin(y_true, y_pred, *, margin=1.0, p=2.0, eps=1e-6, swap=False):
    a, x = _f(y_true), _f(y_pred)
    pos, neg = x[..., 0, :], x[..., 1, :]
    pp, e = _num(p), _num(eps)

    def dist(u, v):  # PyTorch's pairwise_distance: ||u - v + eps||_p
        return np.sum(np.abs(u - v + e) ** pp, axis=-1) ** (1.0 / pp)

    d_an = dist(a, neg)
    if swap:
        d_an = np.minimum(d_an, dist(pos, neg))
    return np.maximum(_num(margin) + dist(a, pos) - d_an, 0.0)


def _group_labels(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Group labels (any integers) and where they are not one (NaN, infinite, fractional)."""
    t = _f(x).reshape(-1)
    bad = ~np.isfinite(t) | (t != np.floor(t))
    return t, bad


@_loss("circle")
def circle(y_true, y_pred, *, gamma=80.0, margin=0.4, remove_diagonal=True, ref_labels=None, ref_embeddings=None):
    x = _f(y_pred)
    labels, bad = _group_labels(y_true)
    refs = x if ref_embeddings is None else _f(ref_embeddings)
    ref, ref_bad = (labels, bad) if ref_labels is None else _group_labels(ref_labels)
    g, m = _num(gamma), _num(margin)
    d = np.maximum(1.0 - x @ refs.T, 0.0)
    pos = labels[:, None] == ref[None, :]
    neg = ~pos
    if remove_diagonal:
        pos &= ~np.eye(len(labels), len(ref), dtype=bool)
    pos_w = np.maximum((m + d) * pos, 0.0)
    neg_w = np.maximum((1.0 + m - d) * neg, 0.0)
    p_loss = _lse(-g * pos_w * (m - d), 1, pos)
    n_loss = _lse(g * neg_w * (1.0 - m - d), 1, neg)
    values = np.logaddexp(0.0, p_loss + n_loss)
    # No positive or no negative pair: an empty log-sum-exp, loss 0 by definition (it reads
    # no similarity, so a NaN elsewhere does not enter it).
    values = np.where(np.any(pos, axis=1) & np.any(neg, axis=1), values, 0.0)
    # A label that is no integer decides no pair: NaN for its sample and, as a reference
    # label (every sample's, without ref_labels), for every sample.
    values = np.where(bad | np.any(ref_bad), np.nan, values)
    return _Out(values, values > 0)


@_loss("ntxent")
def ntxent(y_true, y_pred, *, temperature=0.07):
    x = np.asarray(y_pred)
    eps = float(np.finfo(x.dtype).eps) if np.issubdtype(x.dtype, np.floating) else float(np.finfo(np.float32).eps)
    x = _f(x)
    labels, bad = _group_labels(y_true)
    unit = x / np.sqrt(np.maximum(np.sum(x**2, axis=-1, keepdims=True), eps))  # optax's cosine
    s = unit @ unit.T / _num(temperature)
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(n, dtype=bool)
    negative = ~same
    z_neg = _lse(s, 1, negative, keepdims=True)
    values = np.where(positive, np.logaddexp(s, z_neg) - s, 0.0)
    # A label that is no integer decides no pair: it enters every anchor's negatives.
    values = np.where(np.any(bad), np.nan, values)
    return _Out(values, positive)


# ----------------------------------------------------------------------------
# Ranking
# ----------------------------------------------------------------------------


@_loss("ranking_softmax")
def ranking_softmax(y_true, y_pred, *, where=None):
    t, s = _f(y_true), _f(y_pred)
    m = np.ones(s.shape, bool) if where is None else np.broadcast_to(np.asarray(where, bool), s.shape)
    t = np.where(m, t, 0.0)
    log_p = np.where(m, s - _lse(s, -1, m, keepdims=True), 0.0)
    values = np.sum(np.where(m, _xlogy_term(t, -log_p), 0.0), axis=-1)
    nonempty = np.any(m, axis=-1)
    values = np.where(nonempty, values, 0.0)
    values = np.where(np.any(m & (np.isnan(t) | np.isnan(s)), axis=-1), np.nan, values)
    return _Out(values, None if where is None else nonempty)


# ----------------------------------------------------------------------------
# Segmentation
# ----------------------------------------------------------------------------


@_loss("dice")
def dice(y_true, y_pred, *, axis=None):
    t, p = _same(y_true, y_pred)
    axes = _reduce_axes(p.ndim, axis)
    inter = np.sum(t * p, axis=axes)
    return 1.0 - 2.0 * inter / (np.sum(t, axis=axes) + np.sum(p, axis=axes) + EPSILON)


@_loss("tversky")
def tversky(y_true, y_pred, *, alpha=0.5, beta=0.5, axis=None):
    t, p = _same(y_true, y_pred)
    axes = _reduce_axes(p.ndim, axis)
    tp = np.sum(t * p, axis=axes)
    fp = np.sum(p * (1.0 - t), axis=axes)  # alpha: false positives (as Keras documents)
    fn = np.sum((1.0 - p) * t, axis=axes)
    return 1.0 - tp / (tp + _num(alpha) * fp + _num(beta) * fn + EPSILON)


# ----------------------------------------------------------------------------
# Sequences
# ----------------------------------------------------------------------------


def _ctc_one(log_p: np.ndarray, label: np.ndarray, blank: int) -> float:
    """-log p(label | frames) by the forward recursion in log space."""
    ext = np.full(2 * len(label) + 1, blank, dtype=np.int64)
    ext[1::2] = label
    states = len(ext)
    skip = np.zeros(states, bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    if log_p.shape[0] == 0:
        return 0.0 if len(label) == 0 else math.inf
    alpha = np.full(states, -np.inf)
    alpha[0] = log_p[0, blank]
    if states > 1:
        alpha[1] = log_p[0, ext[1]]
    for frame in log_p[1:]:
        prev1 = np.full(states, -np.inf)
        prev1[1:] = alpha[:-1]
        prev2 = np.full(states, -np.inf)
        prev2[2:] = alpha[:-2]
        alpha = np.logaddexp(np.logaddexp(alpha, prev1), np.where(skip, prev2, -np.inf)) + frame[ext]
    total = alpha[-1] if states == 1 else np.logaddexp(alpha[-1], alpha[-2])
    return -float(total)


@_loss("ctc")
def ctc(y_true, y_pred, *, blank_index=0, label_lengths=None, logit_lengths=None, zero_infinity=False):
    t, z = _f(y_true), _f(y_pred)
    batch, frames, classes = z.shape
    log_p = z - _lse(z, -1, keepdims=True)
    values = np.empty(batch)
    for b in range(batch):
        n = int(np.sum(t[b] != blank_index)) if label_lengths is None else int(np.asarray(label_lengths)[b])
        label = t[b, :n]
        frames_b = frames if logit_lengths is None else int(np.asarray(logit_lengths)[b])
        if not (0 <= n <= t.shape[1] and 0 <= frames_b <= frames):
            values[b] = np.nan  # lengths out of range
            continue
        if not np.all(np.isfinite(label) & (label == np.floor(label)) & (label >= 0) & (label < classes)):
            values[b] = np.nan  # a label entry that names no class
            continue
        value = _ctc_one(log_p[b, :frames_b], label.astype(np.int64), blank_index)
        values[b] = 0.0 if (zero_infinity and value == math.inf) else value
    return values


# ----------------------------------------------------------------------------
# Large vocabulary
# ----------------------------------------------------------------------------


@_loss("linear_cross_entropy")
def linear_cross_entropy(
    y_true,
    y_pred,
    *,
    weight,
    bias=None,
    weight_layout="dv",
    chunk_size=None,
    ignore_class=None,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_soft_cap=None,
    class_weight=None,
    axis_name=None,
):
    """``y_pred`` is ``hidden``: sparse crossentropy of the explicit logits ``hidden @ W + bias``."""
    del chunk_size, axis_name  # no effect on the values
    w = _f(weight)
    logits = _f(y_pred) @ (w if weight_layout == "dv" else w.T)
    if bias is not None:
        logits = logits + _f(bias)
    y = np.asarray(y_true)
    if y.ndim == logits.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    return sparse_categorical_crossentropy(
        y,
        logits,
        from_logits=True,
        ignore_class=ignore_class,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
        class_weight=class_weight,
    )


# ----------------------------------------------------------------------------
# The public surface: per-sample values, masks, Keras's reduction
# ----------------------------------------------------------------------------


def _evaluate(name: str, y_true: Any, y_pred: Any, options: dict[str, Any]) -> _Out:
    if name not in LOSSES:
        raise KeyError(f"reference: no reference for {name!r}")
    with np.errstate(all="ignore"):
        out = LOSSES[name](y_true, y_pred, **options)
    if not isinstance(out, _Out):
        out = _Out(np.asarray(out, F64))
    return _Out(np.asarray(out.values, F64), out.valid, out.count)


def per_sample(name: str, y_true: Any, y_pred: Any, **options: Any) -> np.ndarray:
    """The per-sample values of loss ``name`` (jaxloss's ``reduction="none"`` without weights)."""
    return _evaluate(name, y_true, y_pred, options).values


def mask(name: str, y_true: Any, y_pred: Any, **options: Any) -> Mask | None:
    """The loss's own weighting of its per-sample values (None when it has none)."""
    out = _evaluate(name, y_true, y_pred, options)
    if out.valid is None and out.count is None:
        return None
    return Mask(out.valid, out.count)


def broadcast_weight(weight: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A ``sample_weight`` of the per-sample shape (with a trailing unit axis, squeezed as
    Keras does), or a leading prefix of it (a scalar too), broadcast from the left."""
    w = _f(weight)
    if w.shape == tuple(shape) + (1,):  # Keras squeezes a trailing unit axis
        w = w[..., 0]
    if w.ndim <= len(shape) and tuple(shape[: w.ndim]) == w.shape:
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    else:
        raise ValueError(f"reference: sample_weight {w.shape} is not a prefix of the loss's shape {shape}")
    return np.broadcast_to(w, shape)


def reduce_ref(xp, weighted, divisor_weight, count, reduction):
    """Keras's reductions of already weighted values (``xp``: numpy or jax.numpy); the weighted mean divides by ``sum(divisor_weight)``."""
    if reduction in ("none", None):
        return weighted
    total = xp.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        d = xp.sum(divisor_weight)
        return xp.where(d != 0, total / xp.where(d != 0, d, 1.0), 0.0)
    return total / count


def reduce(
    values: Any,
    weight: Any = None,
    reduction: str | None = "sum_over_batch_size",
    *,
    valid: Any = None,
    count: Any = None,
) -> np.ndarray:
    """Keras's reduction of per-sample ``values`` weighted by ``sample_weight`` ``weight``.

    ``valid`` (a loss mask) zeroes the invalid entries and makes ``"sum_over_batch_size"``
    and ``"mean"`` divide by the number of valid entries (Keras's mask rescaling);
    ``count`` (PyTorch's class weights) enters only ``"mean_with_sample_weight"``'s
    divisor. Scalar values and an empty ``(0,)`` batch pass through (times the weight),
    as Keras has it; a zero divisor gives 0 (Keras's ``divide_no_nan``).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reference: unknown reduction {reduction!r}")
    v = _f(values)
    w = None if weight is None else broadcast_weight(weight, v.shape)
    m = None if valid is None else np.broadcast_to(np.asarray(valid, bool), v.shape).astype(F64)
    weighted = v
    if w is not None:
        weighted = weighted * w
    if m is not None:
        weighted = weighted * m
    if reduction in (None, "none") or v.shape in ((), (0,)):
        return weighted
    total = np.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and (w is not None or m is not None or count is not None):
        divisor = np.ones(v.shape)
        for factor in (w, m, None if count is None else np.broadcast_to(_f(count), v.shape)):
            if factor is not None:
                divisor = divisor * factor
        divisor = np.sum(divisor)
    elif m is not None and reduction in ("sum_over_batch_size", "mean"):
        divisor = np.sum(m)
    else:
        divisor = float(v.size)
    return np.asarray(0.0) if divisor == 0 else np.asarray(total / divisor)


def loss(
    name: str,
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    reduction: str | None = "sum_over_batch_size",
    **options: Any,
) -> np.ndarray:
    """Loss ``name`` as jaxloss computes it: per-sample values, the loss's mask, Keras's reduction."""
    out = _evaluate(name, y_true, y_pred, options)
    return reduce(out.values, sample_weight, reduction, valid=out.valid, count=out.count)


def grad(
    name: str,
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    reduction: str | None = "sum_over_batch_size",
    fd_step: float = 1e-6,
    **options: Any,
) -> np.ndarray:
    """d loss / d y_pred by central differences of :func:`loss` in float64 (of the sum of the
    values for ``"none"``); the step is ``fd_step * max(1, |y_pred|)``. For smooth points.
    (Not named ``eps``: that is an option of some losses, passed on in ``options``.)"""
    x = _f(y_pred).copy()
    out = np.empty_like(x)
    flat, g = x.reshape(-1), out.reshape(-1)

    def f(arr):
        return float(np.sum(loss(name, y_true, arr, sample_weight=sample_weight, reduction=reduction, **options)))

    for i in range(flat.size):
        orig = flat[i]
        if np.isinf(orig):
            # A -inf logit (log 0, or a class a `where` mask leaves out) has no neighbourhood
            # to difference; it takes no part in the loss, so its derivative is 0.
            g[i] = 0.0
            continue
        h = fd_step * max(1.0, abs(orig))
        flat[i] = orig + h
        up = f(x)
        flat[i] = orig - h
        down = f(x)
        flat[i] = orig
        g[i] = (up - down) / (2.0 * h)
    return out
