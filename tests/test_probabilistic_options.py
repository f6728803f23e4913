"""The crossentropy and KL options beyond Keras against their oracles: optax and PyTorch's formulas.

PyTorch is not a test dependency: its ``cross_entropy(weight=..., ignore_index=...)``,
``binary_cross_entropy_with_logits(pos_weight=...)`` and ``kl_div`` are written out below
from the ``torch.nn.functional`` documentation as functions of ``xp``, so that numpy gives
reference values and ``jax.numpy`` (float64) reference gradients by autodiff. optax gives
``where`` (masked softmax), integer labels, label smoothing and the log-target KL.
Inputs are seeded random draws plus the extremes: ``-inf`` logits under a mask, fully
masked rows, zero targets in the KL, saturated logits, zero class weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss._core import REDUCTIONS

from .tolerances import F32, assert_close

REDUCTION_IDS = [str(r) for r in REDUCTIONS]
SCALAR_REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"]
CCE, SCCE = jaxloss.categorical_crossentropy, jaxloss.sparse_categorical_crossentropy
F64_REF = {"rtol": 1e-10, "atol": 1e-12}

# ----------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------


def log_softmax(xp, z, axis=-1):
    m = xp.max(z, axis=axis, keepdims=True)
    return z - m - xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))


def reduce_ref(xp, weighted, divisor_weight, count, reduction):
    """Keras's reductions of already weighted values; the weighted mean divides by ``sum(divisor_weight)``."""
    if reduction in ("none", None):
        return weighted
    total = xp.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        d = xp.sum(divisor_weight)
        return xp.where(d != 0, total / xp.where(d != 0, d, 1.0), 0.0)
    return total / count


def torch_cross_entropy(xp, labels, logits, weight, ignore_index=-100, label_smoothing=0.0, sample_weight=None):
    """PyTorch's ``cross_entropy(logits, labels, weight, ignore_index, reduction="none")`` and its
    ``"mean"`` divisor weights ``weight[y_i]`` (0 at ignored positions); smoothing as in our contract:
    the label's weight times the smoothed loss."""
    classes = logits.shape[-1]
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    log_q = log_softmax(xp, logits)
    nll = -xp.take_along_axis(log_q, safe[:, None], axis=-1)[:, 0]
    loss = (1.0 - label_smoothing) * nll - label_smoothing * xp.sum(log_q, axis=-1) / classes
    w = xp.asarray(weight)[safe] * valid
    if sample_weight is not None:
        w = w * sample_weight
    return w * loss, w, valid.sum()


def torch_soft_cross_entropy(xp, targets, logits, weight):
    """PyTorch's ``cross_entropy`` with class-probability targets and ``weight``: ``-sum_c w_c y_c log q_c``."""
    return -xp.sum(xp.asarray(weight) * targets * log_softmax(xp, logits), axis=-1)


def torch_bce_with_logits(xp, t, z, pos_weight):
    """PyTorch's ``binary_cross_entropy_with_logits(z, t, pos_weight=pw, reduction="none")``."""
    log_sig = -xp.logaddexp(0.0, -z)
    log_one_minus = -xp.logaddexp(0.0, z)
    return -(pos_weight * t * log_sig + (1.0 - t) * log_one_minus)


def torch_kl_div(xp, log_input, target, log_target):
    """PyTorch's ``kl_div(input, target, log_target, reduction="none")`` (``xlogy`` for 0 log 0)."""
    if log_target:
        return xp.exp(target) * (target - log_input)
    safe = xp.where(target > 0, target, 1.0)
    return xp.where(target > 0, target * xp.log(safe), 0.0) - target * log_input


def _rng(seed=0):
    return np.random.default_rng(seed)


def _logits(rng, shape, scale=3.0):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def _soft(rng, shape):
    p = rng.uniform(0.1, 1.0, shape)
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def _one_hot(labels, classes):
    return np.eye(classes, dtype=np.float32)[labels]


# ----------------------------------------------------------------------------
# class_weight
# ----------------------------------------------------------------------------

WEIGHT = np.array([0.5, 2.0, 1.0, 0.0, 1.5], np.float32)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_sparse_class_weight_is_torch_weighted_mean(reduction, weighted):
    rng = _rng(1)
    logits, labels = _logits(rng, (12, 5)), rng.integers(0, 5, 12).astype(np.int32)
    sw = rng.uniform(0.2, 2.0, 12).astype(np.float32) if weighted else None
    got = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, sample_weight=sw, reduction=reduction)
    weighted_values, divisor, count = torch_cross_entropy(
        np, labels, logits.astype(np.float64), WEIGHT, sample_weight=sw
    )
    assert_close(got, reduce_ref(np, weighted_values, divisor, count, reduction), F32)
    # optax's per-sample values times the labels' weights.
    per_sample = optax.losses.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(labels))
    none = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, reduction="none")
    assert_close(none, WEIGHT[labels] * np.asarray(per_sample), F32)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_sparse_class_weight_with_ignore_class_and_smoothing(reduction):
    rng = _rng(2)
    logits, labels = _logits(rng, (10, 5)), rng.integers(0, 5, 10).astype(np.int32)
    labels[::3] = -1
    sw = rng.uniform(0.2, 2.0, 10).astype(np.float32)
    options = {"from_logits": True, "class_weight": WEIGHT, "ignore_class": -1, "label_smoothing": 0.1}
    got = SCCE(labels, logits, sample_weight=sw, reduction=reduction, **options)
    ref = torch_cross_entropy(np, labels, logits.astype(np.float64), WEIGHT, -1, 0.1, sw)
    assert_close(got, reduce_ref(np, *ref, reduction), F32)

    # Gradients: closed form and autodiff against autodiff of the reference (float64).
    def reference(z):
        out = reduce_ref(jnp, *torch_cross_entropy(jnp, labels, z, WEIGHT, -1, 0.1, sw), reduction)
        return jnp.sum(out)

    with jax.enable_x64(True):
        want = jax.grad(reference)(jnp.asarray(logits, jnp.float64))
    closed = jaxloss.analytic_grad(SCCE, reduction=reduction, **options)(labels, logits, sw)
    auto = jaxloss.grad(SCCE, reduction=reduction, **options)(labels, logits, sw)
    assert_close(closed, want, F32)
    assert_close(auto, want, F32)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_categorical_one_hot_equals_sparse_with_class_weight(reduction, from_logits):
    rng = _rng(3)
    labels = rng.integers(0, 5, (3, 4)).astype(np.int32)
    y_pred = _logits(rng, (3, 4, 5)) if from_logits else _soft(rng, (3, 4, 5))
    sw = rng.uniform(0.2, 2.0, (3, 4)).astype(np.float32)
    options = {"from_logits": from_logits, "class_weight": WEIGHT, "label_smoothing": 0.15, "reduction": reduction}
    sparse = SCCE(labels, y_pred, sample_weight=sw, **options)
    dense = CCE(_one_hot(labels, 5), y_pred, sample_weight=sw, **options)
    assert_close(sparse, dense, F32)
    g_sparse = jaxloss.analytic_grad(SCCE, **options)(labels, y_pred, sw)
    g_dense = jaxloss.analytic_grad(CCE, **options)(_one_hot(labels, 5), y_pred, sw)
    assert_close(g_sparse, g_dense, F32)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_categorical_soft_targets_class_weight_is_torch(reduction):
    rng = _rng(4)
    y_true, logits = _soft(rng, (8, 5)), _logits(rng, (8, 5))
    sw = rng.uniform(0.2, 2.0, 8).astype(np.float32)
    got = CCE(y_true, logits, from_logits=True, class_weight=WEIGHT, sample_weight=sw, reduction=reduction)
    per_sample = torch_soft_cross_entropy(np, y_true.astype(np.float64), logits.astype(np.float64), WEIGHT)
    divisor = sw * (y_true @ WEIGHT)  # each sample's weight sum_c w_c y_c
    assert_close(got, reduce_ref(np, sw * per_sample, divisor, 8, reduction), F32)


def test_class_weight_zero_everywhere_gives_zero_not_nan():
    # PyTorch's weighted mean is 0/0 = NaN here; Keras's reductions divide safely and give 0.
    labels, logits = np.array([3, 3]), _logits(_rng(5), (2, 5))
    for reduction in SCALAR_REDUCTIONS:
        value = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, reduction=reduction)
        assert float(value) == 0.0
        g = jaxloss.analytic_grad(SCCE, from_logits=True, class_weight=WEIGHT, reduction=reduction)(labels, logits)
        assert np.all(np.asarray(g) == 0.0)


def test_class_weight_gradient_and_traced_weights():
    rng = _rng(6)
    logits, labels = _logits(rng, (6, 5)), rng.integers(0, 5, 6).astype(np.int32)
    w = jnp.asarray(WEIGHT) + 0.25

    def ours(cw):
        return SCCE(labels, logits, from_logits=True, class_weight=cw, reduction="mean_with_sample_weight")

    def reference(cw):
        out = reduce_ref(jnp, *torch_cross_entropy(jnp, labels, jnp.asarray(logits), cw), "mean_with_sample_weight")
        return out

    assert_close(jax.jit(ours)(w), reference(w), F32)
    assert_close(jax.grad(ours)(w), jax.grad(reference)(w), F32)


# ----------------------------------------------------------------------------
# label_smoothing on sparse labels
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_smoothing_equals_categorical_and_keras(from_logits, axis):
    rng = _rng(7)
    shape = (4, 6, 5) if axis == -1 else (4, 5, 6)
    y_pred = _logits(rng, shape) if from_logits else np.moveaxis(_soft(rng, (4, 6, 5)), -1, axis)
    labels = rng.integers(0, 5, (4, 6)).astype(np.int32)
    one_hot = np.moveaxis(_one_hot(labels, 5), -1, axis)
    options = {"from_logits": from_logits, "label_smoothing": 0.2, "axis": axis}
    sparse = SCCE(labels, y_pred, reduction="none", **options)
    assert_close(sparse, CCE(one_hot, y_pred, reduction="none", **options), F32)
    if axis == -1:  # Keras smooths with the last axis's size only
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.2, reduction=None)
        assert_close(sparse, keras_loss(one_hot, y_pred), F32)
    assert_close(
        jaxloss.analytic_grad(SCCE, **options)(labels, y_pred), jaxloss.grad(CCE, **options)(one_hot, y_pred), F32
    )


def test_sparse_smoothing_matches_optax_smooth_labels():
    rng = _rng(8)
    logits, labels = _logits(rng, (16, 7)), rng.integers(0, 7, 16).astype(np.int32)
    smoothed = optax.smooth_labels(jnp.asarray(_one_hot(labels, 7)), 0.3)
    want = optax.losses.softmax_cross_entropy(jnp.asarray(logits), smoothed)
    assert_close(SCCE(labels, logits, from_logits=True, label_smoothing=0.3, reduction="none"), want, F32)
    optax_grad = jax.grad(lambda z: jnp.mean(optax.losses.softmax_cross_entropy(z, smoothed)))(jnp.asarray(logits))
    assert_close(jaxloss.analytic_grad(SCCE, from_logits=True, label_smoothing=0.3)(labels, logits), optax_grad, F32)


def test_sparse_smoothing_traced_and_its_gradient():
    rng = _rng(9)
    logits, labels = _logits(rng, (5, 4)), rng.integers(0, 4, 5).astype(np.int32)

    def sparse(a):
        return SCCE(labels, logits, from_logits=True, label_smoothing=a)

    def dense(a):
        return CCE(_one_hot(labels, 4), logits, from_logits=True, label_smoothing=a)

    assert_close(jax.jit(sparse)(0.25), dense(0.25), F32)
    assert_close(jax.grad(sparse)(0.25), jax.grad(dense)(0.25), F32)
    assert np.isfinite(float(jax.grad(sparse)(0.0)))


def test_sparse_smoothing_with_minus_inf_logits():
    logits = np.array([[-np.inf, 2.0, 0.0, 1.0]], np.float32)
    labels = np.array([1])
    # Without smoothing a -inf logit of another class contributes 0, value and gradient.
    value = SCCE(labels, logits, from_logits=True, label_smoothing=0.0)
    g = jaxloss.grad(SCCE, from_logits=True, label_smoothing=0.0)(labels, logits)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(g)))
    assert_close(g, jaxloss.analytic_grad(SCCE, from_logits=True)(labels, logits), F32)
    # Smoothing puts mass on a class of probability 0: the crossentropy is infinite (as optax's).
    assert float(SCCE(labels, logits, from_logits=True, label_smoothing=0.1)) == np.inf


# ----------------------------------------------------------------------------
# where (masked softmax)
# ----------------------------------------------------------------------------


def _mask(rng, shape, full_row=True):
    mask = rng.uniform(size=shape) > 0.35
    mask[..., 0] = True  # every row keeps a class
    if full_row:
        mask[1] = False  # ... but one row, fully masked: value and gradient 0
    return mask


@pytest.mark.parametrize("masked_logit", [0.5, -np.inf], ids=["finite", "minus_inf"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_where_matches_optax(smoothing, masked_logit):
    rng = _rng(10)
    mask = _mask(rng, (8, 6))
    logits = np.where(mask, _logits(rng, (8, 6)), np.float32(masked_logit)).astype(np.float32)
    y_true = _soft(rng, (8, 6))
    where = jnp.asarray(mask)
    labels = optax.smooth_labels(jnp.asarray(y_true), smoothing, where=where)
    finite_logits = jnp.asarray(np.where(mask, logits, 0.5))
    want = optax.losses.softmax_cross_entropy(finite_logits, labels, where=where)
    options = {"from_logits": True, "where": mask, "label_smoothing": smoothing}
    got = CCE(y_true, logits, reduction="none", **options)
    assert_close(got, want, F32)
    assert float(got[1]) == 0.0
    want_grad = jax.grad(lambda z: jnp.mean(optax.losses.softmax_cross_entropy(z, labels, where=where)))(finite_logits)
    kept = np.arange(8) != 1  # optax's gradient of the fully masked row is NaN; ours is 0
    for g in (jaxloss.analytic_grad(CCE, **options), jaxloss.grad(CCE, **options)):
        grad = np.asarray(g(y_true, logits))
        assert np.all(np.isfinite(grad))
        assert np.all(grad[~mask] == 0.0)
        assert_close(grad[kept], np.asarray(want_grad)[kept], F32)


@pytest.mark.parametrize("masked_logit", [0.5, -np.inf], ids=["finite", "minus_inf"])
def test_sparse_where_matches_optax_integer_labels(masked_logit):
    rng = _rng(11)
    mask = _mask(rng, (10, 6), full_row=False)
    labels = np.array([rng.choice(np.flatnonzero(row)) for row in mask], np.int32)  # on unmasked classes
    logits = np.where(mask, _logits(rng, (10, 6)), np.float32(masked_logit)).astype(np.float32)
    finite_logits = jnp.asarray(np.where(mask, logits, 0.5))
    where = jnp.asarray(mask)
    want = optax.losses.softmax_cross_entropy_with_integer_labels(finite_logits, jnp.asarray(labels), where=where)
    options = {"from_logits": True, "where": mask}
    assert_close(SCCE(labels, logits, reduction="none", **options), want, F32)
    loss = optax.losses.softmax_cross_entropy_with_integer_labels
    want_grad = jax.grad(lambda z: jnp.mean(loss(z, jnp.asarray(labels), where=where)))(finite_logits)
    closed = jaxloss.analytic_grad(SCCE, **options)(labels, logits)
    assert_close(closed, want_grad, F32)
    assert_close(jaxloss.grad(SCCE, **options)(labels, logits), want_grad, F32)
    # Label smoothing spreads over the unmasked classes: the one-hot form with optax's smooth_labels.
    smooth = optax.smooth_labels(jnp.asarray(_one_hot(labels, 6)), 0.1, where=where)
    want = optax.losses.softmax_cross_entropy(finite_logits, smooth, where=where)
    assert_close(SCCE(labels, logits, reduction="none", label_smoothing=0.1, **options), want, F32)


def test_where_fully_masked_rows_and_label_on_masked_class():
    logits = np.array([[1.0, 2.0, -np.inf], [-np.inf, -np.inf, -np.inf], [0.5, 1.0, 3.0]], np.float32)
    mask = np.array([[True, True, False], [False, False, False], [True, False, True]])
    labels = np.array([1, 0, 1])  # row 2's label sits on a masked class: it selects nothing
    options = {"from_logits": True, "where": mask, "z_loss": 0.1}
    values = np.asarray(SCCE(labels, logits, reduction="none", **options))
    dense = np.asarray(CCE(_one_hot(labels, 3), logits, reduction="none", **options))
    assert_close(values, dense, F32)
    lse = np.log(np.exp(1.0) + np.exp(2.0))
    assert_close(values[0], lse - 2.0 + 0.1 * lse**2, F32)
    assert values[1] == 0.0
    assert_close(values[2], 0.1 * np.log(np.exp(0.5) + np.exp(3.0)) ** 2, F32)
    for loss, y in ((SCCE, labels), (CCE, _one_hot(labels, 3))):
        for g in (jaxloss.analytic_grad(loss, **options), jaxloss.grad(loss, **options)):
            grad = np.asarray(g(y, logits))
            assert np.all(np.isfinite(grad)) and np.all(grad[~mask] == 0.0)
        assert_close(jaxloss.analytic_grad(loss, **options)(y, logits), jaxloss.grad(loss, **options)(y, logits), F32)


def test_where_broadcasts_and_checks_its_shape():
    rng = _rng(12)
    logits, labels = _logits(rng, (4, 3, 5)), rng.integers(0, 5, (4, 3)).astype(np.int32)
    row = np.array([True, False, True, True, False])
    full = np.broadcast_to(row, logits.shape)
    assert_close(
        SCCE(labels, logits, from_logits=True, where=row), SCCE(labels, logits, from_logits=True, where=full), F32
    )
    assert_close(
        SCCE(labels, logits, from_logits=True, where=list(row)),
        SCCE(labels, logits, from_logits=True, where=full),
        F32,
    )
    with pytest.raises(
        ValueError, match=r"where must be a boolean mask .* where\.shape=\(4,\), y_pred\.shape=\(4, 3, 5\)"
    ):
        SCCE(labels, logits, from_logits=True, where=np.ones(4, bool))
    with pytest.raises(ValueError, match=r"categorical_crossentropy: where acts on logits and needs from_logits=True"):
        CCE(_one_hot(labels, 5), logits, where=row)


# ----------------------------------------------------------------------------
# z_loss and logit_soft_cap
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", SCALAR_REDUCTIONS)
def test_z_loss_and_soft_cap_match_reference_and_linear_cross_entropy(reduction):
    rng = _rng(13)
    logits, labels = _logits(rng, (12, 6), scale=8.0), rng.integers(0, 6, 12).astype(np.int32)
    sw = rng.uniform(0.2, 2.0, 12).astype(np.float32)
    options = {"from_logits": True, "label_smoothing": 0.1, "z_loss": 1e-3, "logit_soft_cap": 5.0}

    def reference(xp, z):
        capped = 5.0 * xp.tanh(z / 5.0)
        log_q = log_softmax(xp, capped)
        lse = xp.max(capped, -1) + xp.log(xp.sum(xp.exp(capped - xp.max(capped, -1, keepdims=True)), -1))
        nll = -xp.take_along_axis(log_q, labels[:, None], axis=-1)[:, 0]
        values = 0.9 * nll - 0.1 * xp.mean(log_q, -1) + 1e-3 * lse**2
        return reduce_ref(xp, sw * values, sw, 12, reduction)

    got = SCCE(labels, logits, sample_weight=sw, reduction=reduction, **options)
    assert_close(got, reference(np, logits.astype(np.float64)), F32)
    lce = jaxloss.linear_cross_entropy(
        labels,
        logits,
        np.eye(6, dtype=np.float32),
        label_smoothing=0.1,
        z_loss=1e-3,
        logit_soft_cap=5.0,
        sample_weight=sw,
        reduction=reduction,
    )
    assert_close(got, lce, F32)
    with jax.enable_x64(True):
        want = jax.grad(lambda z: reference(jnp, z))(jnp.asarray(logits, jnp.float64))
    assert_close(jaxloss.analytic_grad(SCCE, reduction=reduction, **options)(labels, logits, sw), want, F32)
    assert_close(jaxloss.grad(SCCE, reduction=reduction, **options)(labels, logits, sw), want, F32)
    dense = jaxloss.analytic_grad(CCE, reduction=reduction, **options)(_one_hot(labels, 6), logits, sw)
    assert_close(dense, want, F32)


def test_soft_cap_is_the_loss_of_capped_logits_and_finite_at_minus_inf():
    rng = _rng(14)
    logits, labels = _logits(rng, (6, 4), scale=20.0), rng.integers(0, 4, 6).astype(np.int32)
    capped = 3.0 * np.tanh(logits / 3.0)
    assert_close(
        SCCE(labels, logits, from_logits=True, logit_soft_cap=3.0), SCCE(labels, capped, from_logits=True), F32
    )
    want = jax.grad(lambda z: SCCE(labels, 3.0 * jnp.tanh(z / 3.0), from_logits=True))(jnp.asarray(logits))
    assert_close(jaxloss.analytic_grad(SCCE, from_logits=True, logit_soft_cap=3.0)(labels, logits), want, F32)
    # -inf is capped to -cap: a finite loss, and no gradient through the flat tanh.
    inf_logits = logits.copy()
    inf_logits[:, 0] = -np.inf
    labels = np.maximum(labels, 1)
    value = CCE(_one_hot(labels, 4), inf_logits, from_logits=True, logit_soft_cap=3.0, label_smoothing=0.1)
    assert np.isfinite(float(value))
    g = jaxloss.analytic_grad(CCE, from_logits=True, logit_soft_cap=3.0, label_smoothing=0.1)(
        _one_hot(labels, 4), inf_logits
    )
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:, 0] == 0.0)


def test_z_loss_traced_and_its_gradient():
    rng = _rng(15)
    logits, labels = _logits(rng, (5, 4)), rng.integers(0, 4, 5).astype(np.int32)
    lse = np.log(np.sum(np.exp(logits.astype(np.float64)), -1))

    def loss(z_loss):
        return SCCE(labels, logits, from_logits=True, z_loss=z_loss)

    assert_close(jax.jit(loss)(0.01) - loss(0.0), 0.01 * np.mean(lse**2), F32)
    assert_close(jax.grad(loss)(0.01), np.mean(lse**2), F32)


def test_saturated_logits_stay_finite_with_every_option():
    logits = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, 1e4, 1e4, 0.0]], np.float32)
    labels = np.array([1, 3])
    options = {
        "from_logits": True,
        "label_smoothing": 0.1,
        "class_weight": [1.0, 2.0, 0.5, 1.0],
        "z_loss": 1e-4,
        "where": [True, True, False, True],
    }
    for loss, y in ((SCCE, labels), (CCE, _one_hot(labels, 4))):
        assert np.isfinite(float(loss(y, logits, **options)))
        assert np.all(np.isfinite(np.asarray(jaxloss.analytic_grad(loss, **options)(y, logits))))
        assert_close(jaxloss.analytic_grad(loss, **options)(y, logits), jaxloss.grad(loss, **options)(y, logits), F32)


# ----------------------------------------------------------------------------
# pos_weight (binary crossentropy)
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [2.5, [0.5, 1.0, 3.0, 0.0]], ids=["scalar", "per_class"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_pos_weight_is_torch_bce_with_logits(reduction, pos_weight):
    rng = _rng(16)
    logits, y_true = _logits(rng, (9, 4), scale=5.0), rng.integers(0, 2, (9, 4)).astype(np.float32)
    y_true[::2] = rng.uniform(0.0, 1.0, (5, 4))  # soft targets too
    sw = rng.uniform(0.2, 2.0, 9).astype(np.float32)
    pw = np.asarray(pos_weight, np.float64)

    def reference(xp, z):
        per_sample = xp.mean(torch_bce_with_logits(xp, y_true, z, pw), axis=-1)
        return reduce_ref(xp, sw * per_sample, sw, 9, reduction)

    options = {"from_logits": True, "pos_weight": pos_weight, "reduction": reduction}
    assert_close(jaxloss.binary_crossentropy(y_true, logits, sample_weight=sw, **options), reference(np, logits), F32)
    with jax.enable_x64(True):
        want = jax.grad(lambda z: jnp.sum(reference(jnp, z)))(jnp.asarray(logits, jnp.float64))
    assert_close(jaxloss.analytic_grad("binary_crossentropy", **options)(y_true, logits, sw), want, F32)
    assert_close(jaxloss.grad("binary_crossentropy", **options)(y_true, logits, sw), want, F32)


def test_pos_weight_from_probabilities_axis_and_default():
    rng = _rng(17)
    p, y_true = rng.uniform(0.05, 0.95, (3, 4)).astype(np.float32), rng.integers(0, 2, (3, 4)).astype(np.float32)
    pw = np.array([3.0, 0.5, 2.0], np.float32)  # one per class along axis 0
    want = -np.mean(pw[:, None] * y_true * np.log(p) + (1 - y_true) * np.log(1 - p), axis=0)
    assert_close(jaxloss.binary_crossentropy(y_true, p, pos_weight=pw, axis=0, reduction="none"), want, F32)
    # pos_weight=1 is the default exactly; (1,) broadcasts like a scalar.
    bce = jaxloss.binary_crossentropy
    assert float(bce(y_true, p, pos_weight=1.0)) == float(bce(y_true, p))
    assert_close(bce(y_true, p, pos_weight=[2.0]), bce(y_true, p, pos_weight=2.0), F32)
    g = jaxloss.analytic_grad(bce, pos_weight=pw, axis=0)(y_true, p)
    assert_close(g, jaxloss.grad(bce, pos_weight=pw, axis=0)(y_true, p), F32)


def test_pos_weight_at_saturated_logits():
    logits = np.array([[1e4, -1e4, 30.0, -30.0]], np.float32)
    y_true = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    value = jaxloss.binary_crossentropy(y_true, logits, from_logits=True, pos_weight=2.0, reduction="none")
    assert_close(value, np.mean(torch_bce_with_logits(np, y_true, logits.astype(np.float64), 2.0), -1), F32)
    g = jaxloss.analytic_grad("binary_crossentropy", from_logits=True, pos_weight=2.0)(y_true, logits)
    assert_close(g, [[0.25, -0.5, 0.25, -0.5]], F32)


def test_pos_weight_checks():
    y, p = np.zeros((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    with pytest.raises(
        ValueError,
        match=r"pos_weight must be a scalar or one value per class, shape \(3,\) .* "
        r"pos_weight\.shape=\(2,\), y_pred\.shape=\(2, 3\)",
    ):
        jaxloss.binary_crossentropy(y, p, pos_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"pos_weight\.shape=\(2, 3\)"):
        jaxloss.binary_crossentropy(y, p, pos_weight=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"binary_crossentropy: pos_weight must lie in \[0, inf\]; received"):
        jaxloss.binary_crossentropy(y, p, pos_weight=-1.0)


# ----------------------------------------------------------------------------
# kl_divergence: log_input / log_target
# ----------------------------------------------------------------------------


def _kl_inputs(seed, zeros=True):
    rng = _rng(seed)
    t, q = _soft(rng, (8, 5)).astype(np.float64), _soft(rng, (8, 5)).astype(np.float64)
    if zeros:
        t[::2, 1] = 0.0
        t = t / t.sum(-1, keepdims=True)
    return t, q


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_kl_log_input_and_log_target_match_optax_and_torch(reduction):
    t, q = _kl_inputs(18, zeros=False)
    sw = _rng(19).uniform(0.2, 2.0, 8)
    log_t, log_q = np.log(t).astype(np.float32), np.log(q).astype(np.float32)
    options = {"log_input": True, "log_target": True, "reduction": reduction}
    got = jaxloss.kl_divergence(log_t, log_q, sample_weight=sw, **options)
    per_sample = optax.losses.kl_divergence_with_log_targets(jnp.asarray(log_q), jnp.asarray(log_t))
    assert_close(got, reduce_ref(np, sw * np.asarray(per_sample), sw, 8, reduction), F32)
    torch = np.sum(torch_kl_div(np, log_q.astype(np.float64), log_t.astype(np.float64), True), -1)
    assert_close(got, reduce_ref(np, sw * torch, sw, 8, reduction), F32)
    with jax.enable_x64(True):

        def reference(z):
            return jnp.sum(
                reduce_ref(
                    jnp, sw * jnp.sum(torch_kl_div(jnp, z, jnp.asarray(log_t, jnp.float64), True), -1), sw, 8, reduction
                )
            )

        want = jax.grad(reference)(jnp.asarray(log_q, jnp.float64))
    assert_close(jaxloss.analytic_grad("kl_divergence", **options)(log_t, log_q, sw), want, F32)
    assert_close(jaxloss.grad("kl_divergence", **options)(log_t, log_q, sw), want, F32)


def test_kl_log_input_zero_targets_match_optax_and_torch():
    t, q = _kl_inputs(20)
    log_q = np.log(q).astype(np.float32)
    got = jaxloss.kl_divergence(t.astype(np.float32), log_q, log_input=True, reduction="none")
    assert_close(got, optax.losses.kl_divergence(jnp.asarray(log_q), jnp.asarray(t, jnp.float32)), F32)
    assert_close(got, np.sum(torch_kl_div(np, log_q.astype(np.float64), t, False), -1), F32)
    g = jaxloss.analytic_grad("kl_divergence", log_input=True)(t.astype(np.float32), log_q)
    assert_close(g, -t / 8, F32)
    assert_close(jaxloss.grad("kl_divergence", log_input=True)(t.astype(np.float32), log_q), -t / 8, F32)


def test_kl_zero_targets_in_log_space_are_finite():
    # Zero targets: -inf log-targets (optax's kl_divergence_with_log_targets gives NaN), and -inf
    # log-predictions where the target is 0 too.
    t, q = _kl_inputs(21)
    q[::2, 1] = 0.0
    with np.errstate(divide="ignore"):
        log_t, log_q = np.log(t).astype(np.float32), np.log(q).astype(np.float32)
    assert np.isnan(np.asarray(optax.losses.kl_divergence_with_log_targets(jnp.asarray(log_q), jnp.asarray(log_t)))[0])
    options = {"log_input": True, "log_target": True}
    got = np.asarray(jaxloss.kl_divergence(log_t, log_q, reduction="none", **options))
    live = t > 0
    want = np.sum(
        np.where(live, t * (np.log(np.where(live, t, 1.0)) - np.where(live, np.log(q + ~live), 0.0)), 0.0), -1
    )
    assert_close(got, want, F32)
    for g in (jaxloss.analytic_grad("kl_divergence", **options), jaxloss.grad("kl_divergence", **options)):
        grad = np.asarray(g(log_t, log_q))
        assert np.all(np.isfinite(grad))
        assert_close(grad, -t / 8, F32)
    # Gradients with respect to the targets (distillation) are finite at zero targets too.
    for log_target, y in ((True, log_t), (False, t.astype(np.float32))):
        dt = jax.grad(lambda yt: jaxloss.kl_divergence(yt, log_q, log_input=True, log_target=log_target))(
            jnp.asarray(y)
        )
        assert np.all(np.isfinite(np.asarray(dt)))


def test_kl_log_target_alone_is_keras_on_exp_targets():
    t, q = _kl_inputs(22)
    with np.errstate(divide="ignore"):
        log_t = np.log(t).astype(np.float32)
    q = q.astype(np.float32)
    got = jaxloss.kl_divergence(log_t, q, log_target=True, reduction="none")
    assert_close(got, keras.losses.KLDivergence(reduction=None)(np.exp(log_t), q), F32)
    assert_close(
        jaxloss.analytic_grad("kl_divergence", log_target=True)(log_t, q),
        jaxloss.grad("kl_divergence")(np.exp(log_t), q),
        F32,
    )


def test_kl_options_are_booleans():
    with pytest.raises(ValueError, match=r"kl_divergence: log_input must be True or False; received log_input=1"):
        jaxloss.kl_divergence(np.ones((1, 2)), np.ones((1, 2)), log_input=1)
    with pytest.raises(ValueError, match=r"kl_divergence: log_target must be True or False"):
        jaxloss.get("kl_divergence", log_target="yes")


# ----------------------------------------------------------------------------
# Validation, transformations, half precision
# ----------------------------------------------------------------------------


def test_class_weight_checks():
    y, z = np.zeros(6, np.int32), np.zeros((6, 5), np.float32)
    with pytest.raises(
        ValueError,
        match=r"sparse_categorical_crossentropy: class_weight must be one value per class, shape \(5,\) for the class "
        r"axis 1 of y_pred; received class_weight\.shape=\(4,\), y_pred\.shape=\(6, 5\)",
    ):
        SCCE(y, z, class_weight=[1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"categorical_crossentropy: class_weight must be one value per class"):
        CCE(np.zeros((6, 5), np.float32), z, class_weight=2.0)
    with pytest.raises(ValueError, match=r"class_weight must lie in \[0, inf\]; received class_weight="):
        SCCE(y, z, class_weight=[1.0, -1.0, 1.0, 1.0, 1.0])

    # The shape check holds under the user's jit, where the weights are traced.
    @jax.jit
    def traced(cw):
        return SCCE(y, z, class_weight=cw)

    with pytest.raises(ValueError, match=r"class_weight\.shape=\(3,\), y_pred\.shape=\(6, 5\)"):
        traced(jnp.ones(3))


@pytest.mark.parametrize("loss", [SCCE, CCE], ids=["sparse", "categorical"])
def test_logit_options_checks(loss):
    name = loss.__name__
    y = np.zeros(3, np.int32) if loss is SCCE else np.eye(3, dtype=np.float32)
    p = np.full((3, 3), 1 / 3, np.float32)
    with pytest.raises(
        ValueError, match=rf"{name}: z_loss acts on logits and needs from_logits=True; received z_loss=0.1"
    ):
        loss(y, p, z_loss=0.1)
    with pytest.raises(ValueError, match=rf"{name}: logit_soft_cap acts on logits and needs from_logits=True"):
        loss(y, p, logit_soft_cap=10.0)
    with pytest.raises(ValueError, match=rf"{name}: where acts on logits and needs from_logits=True"):
        loss(y, p, where=np.ones(3, bool))
    with pytest.raises(ValueError, match=rf"{name}: z_loss must lie in \[0, inf\]; received z_loss=-0.1"):
        loss(y, p, from_logits=True, z_loss=-0.1)
    with pytest.raises(
        ValueError, match=rf"{name}: logit_soft_cap must lie in \(0, inf\]; received logit_soft_cap=0.0"
    ):
        loss(y, p, from_logits=True, logit_soft_cap=0.0)
    with pytest.raises(ValueError, match=rf"{name}: z_loss must be a scalar; received z_loss of shape \(3,\)"):
        loss(y, p, from_logits=True, z_loss=np.ones(3))
    with pytest.raises(ValueError, match=r"z_loss acts on logits"):
        jax.jit(lambda zl: loss(y, p, z_loss=zl))(0.0)  # traced: may be non-zero
    assert float(loss(y, p, z_loss=0.0)) == float(loss(y, p))  # a concrete 0 is the default
    with pytest.raises(ValueError, match=r"has no option\(s\) \['pos_weight'\]"):
        jaxloss.get(name, pos_weight=1.0)


def test_options_under_vmap_jit_and_half_precision():
    rng = _rng(23)
    logits, labels = _logits(rng, (3, 4, 5)), rng.integers(0, 5, (3, 4)).astype(np.int32)
    options = {"from_logits": True, "class_weight": WEIGHT, "where": [True, True, True, False, True], "z_loss": 0.01}
    per_batch = jax.vmap(lambda y, z: SCCE(y, z, reduction="none", **options))(labels, logits)
    assert_close(per_batch, SCCE(labels, logits, reduction="none", **options), F32)
    half = SCCE(labels, logits.astype(jnp.bfloat16), **options)
    assert half.dtype == jnp.float32
    assert_close(half, SCCE(labels, np.asarray(logits.astype(jnp.bfloat16), np.float32), **options), F32)
    g = jaxloss.analytic_grad(SCCE, **options)(labels, logits.astype(jnp.bfloat16))
    assert g.dtype == jnp.bfloat16


def test_target_tangents_with_class_weight_where_and_z_loss():
    # Distillation: gradients with respect to soft targets go through the custom JVP's plain path.
    rng = _rng(24)
    y_true, logits = _soft(rng, (6, 5)), _logits(rng, (6, 5))
    mask = np.array([[True, True, False, True, True]])
    options = {"from_logits": True, "class_weight": WEIGHT, "where": mask, "z_loss": 0.01, "label_smoothing": 0.1}

    def reference(y):
        wy = WEIGHT[None, :] * y
        d = jnp.sum(wy, -1, keepdims=True)
        t = jnp.where(mask, 0.9 * wy / d + 0.1 / 4, 0.0)
        z = jnp.where(mask, logits, -jnp.inf)
        lse = jax.nn.logsumexp(z, -1)
        ce = -jnp.sum(jnp.where(mask, t * (logits - lse[:, None]), 0.0), -1) + 0.01 * lse**2
        return jnp.sum(d[:, 0] * ce) / jnp.sum(d)

    ours = jax.grad(lambda y: CCE(y, logits, reduction="mean_with_sample_weight", **options))(jnp.asarray(y_true))
    assert_close(ours, jax.grad(reference)(jnp.asarray(y_true)), F32)
