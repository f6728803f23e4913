"""jaxloss._probabilistic: the deliberate differences from Keras, option checks, masks, dtypes.

Keras parity and the gradient checks for the ordinary cases live in tests/test_common.py
(tests/cases/probabilistic.py); this file covers what Keras cannot be the oracle for.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxloss
from jaxloss._core import REDUCTIONS

from .tolerances import F32, HALF, assert_close

RNG_SEED = 1234


def _rng():
    return np.random.default_rng(RNG_SEED)


def _log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _finite(x):
    return bool(np.all(np.isfinite(np.asarray(x, np.float64))))


# --------------------------------------------------------------------------
# -inf logits: a masked class with target 0 contributes nothing
# --------------------------------------------------------------------------

MASKED_LOGITS = np.array([[-np.inf, 2.0, 0.0, 1.0], [1.0, -np.inf, 0.5, -np.inf]], np.float32)
MASKED_LABELS = np.array([1, 2])


def _masked_reference():
    """Crossentropy over the unmasked classes only, and its gradient (0 at the masked ones)."""
    values, grads = [], np.zeros(MASKED_LOGITS.shape)
    for i, (row, label) in enumerate(zip(MASKED_LOGITS, MASKED_LABELS, strict=True)):
        keep = np.isfinite(row)
        log_p = _log_softmax(row[keep])
        position = int(np.sum(keep[:label]))
        values.append(-log_p[position])
        g = np.exp(log_p)
        g[position] -= 1.0
        grads[i, keep] = g
    return np.array(values), grads


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_minus_inf_logit_contributes_zero(loss):
    y_true = np.eye(4, dtype=np.float32)[MASKED_LABELS] if loss.startswith("categorical") else MASKED_LABELS
    fn = jaxloss.get(loss, from_logits=True, reduction="none")
    values, grads = _masked_reference()
    assert_close(fn(y_true, MASKED_LOGITS), values, F32)
    autodiff = jaxloss.grad(loss, from_logits=True, reduction="sum")(y_true, MASKED_LOGITS)
    closed = jaxloss.analytic_grad(loss, from_logits=True, reduction="sum")(y_true, MASKED_LOGITS)
    for g in (autodiff, closed):
        assert _finite(g)
        assert_close(g, grads, F32)
    # Forward mode and second order through the custom JVP stay finite too.
    f = lambda z: fn(y_true, z).sum()  # noqa: E731
    assert_close(jax.jacfwd(f)(jnp.asarray(MASKED_LOGITS)), grads, F32)
    assert _finite(jax.hessian(f)(jnp.asarray(MASKED_LOGITS)))


def test_minus_inf_logit_in_categorical_focal_from_logits():
    y_true = np.eye(4, dtype=np.float32)[MASKED_LABELS]
    gamma = 2.0
    values = jaxloss.categorical_focal_crossentropy(
        y_true, MASKED_LOGITS, from_logits=True, gamma=gamma, alpha=1.0, reduction="none"
    )
    expected = []
    for row, label in zip(MASKED_LOGITS, MASKED_LABELS, strict=True):
        keep = np.isfinite(row)
        p = np.exp(_log_softmax(row[keep]))[int(np.sum(keep[:label]))]
        expected.append(-((1 - p) ** gamma) * np.log(p))
    assert_close(values, expected, F32)
    g = jaxloss.grad("categorical_focal_crossentropy", from_logits=True, reduction="sum")(y_true, MASKED_LOGITS)
    assert _finite(g) and np.all(np.asarray(g)[~np.isfinite(MASKED_LOGITS)] == 0.0)


# --------------------------------------------------------------------------
# Saturated logits: focal losses from logits are exact (log space), Keras saturates
# --------------------------------------------------------------------------

BIG = 1e4


def test_binary_focal_from_logits_is_exact_at_saturated_logits():
    y_true = np.array([[1.0, 0.0, 1.0, 0.0]], np.float32)
    logits = np.array([[BIG, -BIG, -BIG, BIG]], np.float32)  # right, right, wrong, wrong
    ours = jaxloss.binary_focal_crossentropy(y_true, logits, from_logits=True, reduction="none")
    # Wrong by 1e4: bce = softplus(1e4) = 1e4 and the focal factor is 1; right: both ~ 0.
    assert_close(ours, [2 * BIG / 4], F32)
    keras_value = keras.losses.BinaryFocalCrossentropy(from_logits=True, reduction=None)(y_true, logits)
    assert float(keras_value[0]) < 10.0  # Keras clips sigmoid(z) and caps the crossentropy near 16
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad("binary_focal_crossentropy", from_logits=True, reduction="sum")(y_true, logits))
        assert _finite(g)
        # Wrong predictions: d/dz = focal * (sigmoid(z) - t) = -1, +1 (over d = 4); right ones: ~0.
        assert_close(g, [[0.0, 0.0, -0.25, 0.25]], F32)


def test_categorical_focal_from_logits_is_exact_at_saturated_logits():
    y_true = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], np.float32)
    logits = np.array([[BIG, 0.0, -BIG], [BIG, 0.0, -BIG]], np.float32)  # wrong, right
    ours = jaxloss.categorical_focal_crossentropy(y_true, logits, from_logits=True, alpha=0.25, reduction="none")
    assert_close(ours, [0.25 * 2 * BIG, 0.0], F32)
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad("categorical_focal_crossentropy", from_logits=True, reduction="sum")(y_true, logits))
        assert _finite(g)
        # Wrong row: d/dz = alpha (softmax - onehot) as (1 - p_y)^gamma = 1 and p_y = 0.
        assert_close(g, [[0.25, 0.0, -0.25], [0.0, 0.0, 0.0]], F32)


SATURATED = {
    "binary_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, -BIG, BIG]])),
    "binary_focal_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, -BIG, BIG]])),
    "categorical_crossentropy": (np.array([[0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, 0.0]])),
    "categorical_focal_crossentropy": (np.array([[0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, 0.0]])),
    "sparse_categorical_crossentropy": (np.array([1]), np.array([[BIG, -BIG, 0.0]])),
}


def _option_variants(losses, smoothing=True):
    """Each loss with its defaults, label smoothing where it has it, and gamma < 1 for the focal ones."""
    out = []
    for loss in sorted(losses):
        out.append((loss, {}))
        if smoothing and not loss.startswith(("sparse", "kl", "categorical_generalized")):
            out.append((loss, {"label_smoothing": 0.1}))
        if "focal" in loss:
            out.append((loss, {"gamma": 0.5}))
    return out


@pytest.mark.parametrize("loss, options", _option_variants(SATURATED), ids=str)
def test_gradients_finite_at_saturated_logits(loss, options):
    y_true, logits = SATURATED[loss]
    y_true = y_true.astype(np.int32 if loss.startswith("sparse") else np.float32)
    logits = logits.astype(np.float32)
    value, g = jaxloss.value_and_grad(loss, from_logits=True, **options)(y_true, logits)
    closed = jaxloss.analytic_grad(loss, from_logits=True, **options)(y_true, logits)
    assert _finite(value) and _finite(g) and np.any(np.asarray(g) != 0)
    assert_close(g, closed, F32)


# --------------------------------------------------------------------------
# Probabilities exactly 0 and 1: Keras clips, the gradient is finite
# --------------------------------------------------------------------------

EDGES = {
    "binary_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0, 1.0]])),
    "binary_focal_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0, 1.0]])),
    "categorical_crossentropy": (np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "categorical_focal_crossentropy": (
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
        np.array([[0.0, 1.0, 0.0]] * 2),
    ),
    "sparse_categorical_crossentropy": (np.array([1, 0]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "categorical_generalized_cross_entropy": (np.array([1, 0]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "kl_divergence": (np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), np.array([[0.0, 1.0, 0.0]] * 2)),
}


@pytest.mark.parametrize("loss, options", _option_variants(EDGES), ids=str)
def test_gradients_finite_at_probability_edges(loss, options):
    y_true, y_pred = EDGES[loss]
    integer = loss.startswith("sparse") or "generalized" in loss
    y_true = y_true.astype(np.int32 if integer else np.float32)
    y_pred = y_pred.astype(np.float32)
    assert _finite(jaxloss.get(loss, **options)(y_true, y_pred))
    g = jaxloss.grad(loss, **options)(y_true, y_pred)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    assert _finite(g) and _finite(closed)
    assert_close(g, closed, F32)


def test_generalized_cross_entropy_slope_capped_at_zero_probability():
    # The true slope -p^(q-1) is infinite at p = 0; the cap is its value at p = 1e-7.
    g = jaxloss.analytic_grad("categorical_generalized_cross_entropy", q=0.5, reduction="sum")(
        np.array([0]), np.array([[0.0, 1.0]], np.float32)
    )
    assert_close(g, [[-(1e-7**-0.5), 0.0]], F32)


def test_generalized_cross_entropy_slope_exact_below_the_cap():
    """Only p = 0 is capped: at 0 < p < 1e-7 the slope is the true -p^(q-1), as autodiff's."""
    probs = np.array([[3e-8, 1.0 - 3e-8], [1e-9, 1.0 - 1e-9]], np.float32)
    labels = np.array([0, 0])
    g = jaxloss.grad("categorical_generalized_cross_entropy", q=0.5, reduction="sum")(labels, probs)
    closed = jaxloss.analytic_grad("categorical_generalized_cross_entropy", q=0.5, reduction="sum")(labels, probs)
    expected = [[-(float(probs[0, 0]) ** -0.5), 0.0], [-(float(probs[1, 0]) ** -0.5), 0.0]]
    assert_close(g, expected, F32)
    assert_close(closed, expected, F32)


def test_generalized_cross_entropy_label_out_of_range_and_nonfinite_rows():
    """A label outside [0, C) selects no class (p = 0, as Keras's one_hot); inf or NaN in a row shows."""
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [0.5, np.inf], [np.nan, 0.5]], np.float32)
    labels = np.array([2, -1, 0, 1])
    values = jaxloss.categorical_generalized_cross_entropy(labels, probs, q=0.5, reduction="none")
    assert_close(values[:2], [2.0, 2.0], F32)
    assert np.isnan(np.asarray(values[2:])).all()
    g = jaxloss.grad("categorical_generalized_cross_entropy", q=0.5, reduction="sum")(labels[:2], probs[:2])
    assert_close(g, np.zeros((2, 2)), F32)


# --------------------------------------------------------------------------
# Any class axis: compared with Keras after moving the class axis last
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_class", [None, 2])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
def test_sparse_any_axis_matches_keras_on_moved_axes(axis, from_logits, ignore_class):
    rng = _rng()
    shape = (3, 5, 4)
    y_pred = rng.uniform(0.1, 1.0, shape).astype(np.float32)
    if from_logits:
        y_pred = rng.normal(size=shape).astype(np.float32)
    moved = np.moveaxis(y_pred, axis, -1)
    labels = rng.integers(0, shape[axis], moved.shape[:-1]).astype(np.int32)
    labels.flat[::4] = 2
    options = {"from_logits": from_logits, "ignore_class": ignore_class}
    for reduction in ("none", "sum_over_batch_size"):
        ours = jaxloss.sparse_categorical_crossentropy(labels, y_pred, axis=axis, reduction=reduction, **options)
        theirs = keras.losses.SparseCategoricalCrossentropy(reduction=reduction, **options)(labels, moved)
        assert_close(ours, theirs, F32)
    # Gradients: those on the moved input, moved back.
    g_axis = jaxloss.grad("sparse_categorical_crossentropy", axis=axis, **options)(labels, y_pred)
    g_last = jaxloss.grad("sparse_categorical_crossentropy", **options)(labels, moved)
    assert_close(g_axis, np.moveaxis(np.asarray(g_last), -1, axis), F32)
    closed = jaxloss.analytic_grad("sparse_categorical_crossentropy", axis=axis, **options)(labels, y_pred)
    assert_close(closed, g_axis, F32)


def test_sparse_keras_rejects_other_axes():
    # The difference documented: Keras's JAX backend refuses axis != -1 (if this starts passing, update the docs).
    with pytest.raises(ValueError, match="same shape up until the last dimension"):
        keras.losses.SparseCategoricalCrossentropy(axis=1)(np.zeros((2, 4), np.int32), np.ones((2, 3, 4)) / 3)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "categorical_focal_crossentropy"])
def test_categorical_smoothing_on_other_axis_counts_that_axis(loss, from_logits):
    # Keras smooths with shape[-1] whatever the axis; the class count is shape[axis] here,
    # which equals Keras on the moved input.
    rng = _rng()
    y_pred = rng.uniform(0.1, 1.0, (2, 3, 5)).astype(np.float32)
    y_true = np.moveaxis(np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 5))], -1, 1)
    options = {"from_logits": from_logits, "label_smoothing": 0.2}
    ours = jaxloss.get(loss, axis=1, reduction="none", **options)(y_true, y_pred)
    keras_cls = getattr(keras.losses, jaxloss.get(loss).spec.keras_class)
    theirs = keras_cls(reduction=None, **options)(np.moveaxis(y_true, 1, -1), np.moveaxis(y_pred, 1, -1))
    assert_close(ours, theirs, F32)


def test_categorical_focal_per_class_alpha_matches_keras():
    rng = _rng()
    y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    y_pred = rng.uniform(0.1, 1.0, (6, 4)).astype(np.float32)
    alpha = [0.1, 0.2, 0.3, 0.4]
    ours = jaxloss.categorical_focal_crossentropy(y_true, y_pred, alpha=alpha, reduction="none")
    with jax.numpy_rank_promotion("allow"):  # Keras broadcasts (C,) against (N, C) implicitly
        theirs = keras.losses.CategoricalFocalCrossentropy(alpha=alpha, reduction=None)(y_true, y_pred)
    assert_close(ours, theirs, F32)
    # Per-class alpha along another axis.
    moved = jaxloss.categorical_focal_crossentropy(y_true.T, y_pred.T, alpha=np.array(alpha), axis=0, reduction="none")
    assert_close(moved, ours, F32)


def test_generalized_cross_entropy_column_labels_and_q_one():
    rng = _rng()
    y_pred = rng.uniform(0.1, 1.0, (5, 3)).astype(np.float32)
    y_pred /= y_pred.sum(-1, keepdims=True)
    labels = rng.integers(0, 3, 5).astype(np.int32)
    flat = jaxloss.categorical_generalized_cross_entropy(labels, y_pred, q=0.7, reduction="none")
    column = jaxloss.categorical_generalized_cross_entropy(labels[:, None], y_pred, q=0.7, reduction="none")
    theirs = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.7, reduction=None)(labels, y_pred)
    assert column.shape == (5,)
    assert_close(flat, theirs, F32)
    assert_close(column, theirs, F32)
    p = y_pred[np.arange(5), labels]
    q_one = jaxloss.categorical_generalized_cross_entropy(labels, y_pred, q=1.0, reduction="none")
    assert_close(q_one, 1.0 - p, F32)


# --------------------------------------------------------------------------
# Integer labels are never cast to float
# --------------------------------------------------------------------------


def test_integer_label_257_under_bfloat16_predictions():
    rng = _rng()
    logits32 = rng.normal(size=(2, 300)).astype(np.float32)
    logits32[:, 256] = -5.0  # classes 256 and 257 differ, so a rounded label would show
    logits32[:, 257] = 3.0
    logits = jnp.asarray(logits32, jnp.bfloat16)
    labels = np.array([257, 257], np.int32)
    ours = jaxloss.sparse_categorical_crossentropy(labels, logits, from_logits=True, reduction="none")
    expected = -_log_softmax(np.asarray(logits.astype(jnp.float32)))[:, 257]
    assert ours.dtype == jnp.float32
    assert_close(ours, expected, F32)
    assert float(jnp.bfloat16(257)) == 256.0  # what a cast to the predictions' dtype would do
    g = jaxloss.grad("sparse_categorical_crossentropy", from_logits=True)(labels, logits)
    assert g.dtype == jnp.bfloat16
    assert np.all(np.asarray(g, np.float32)[:, 257] < 0) and np.all(np.asarray(g, np.float32)[:, 256] >= 0)
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(jnp.bfloat16)
    gce = jaxloss.categorical_generalized_cross_entropy(labels, probs, reduction="none")
    p = np.asarray(probs.astype(jnp.float32))[:, 257]
    assert_close(gce, (1.0 - np.sqrt(p)) / 0.5, F32)


# --------------------------------------------------------------------------
# Option validation and shapes
# --------------------------------------------------------------------------

SMOOTHED = ["binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy"]
SMOOTHED += ["categorical_focal_crossentropy"]


@pytest.mark.parametrize("value", [-0.1, 1.5])
@pytest.mark.parametrize("loss", SMOOTHED)
def test_label_smoothing_outside_unit_interval(loss, value):
    fn = jaxloss.get(loss).function
    message = rf"{loss}: label_smoothing must lie in \[0, 1\]; received label_smoothing={value}"
    with pytest.raises(ValueError, match=message):
        fn(np.zeros((2, 3)), np.full((2, 3), 0.5), label_smoothing=value)
    with pytest.raises(ValueError, match=message):
        jaxloss.get(loss, label_smoothing=value)


@pytest.mark.parametrize("loss", ["binary_focal_crossentropy", "categorical_focal_crossentropy"])
def test_focal_alpha_and_gamma_ranges(loss):
    fn = jaxloss.get(loss).function
    y = (np.zeros((2, 3)), np.full((2, 3), 0.5))
    for alpha in (-0.5, 1.01):
        with pytest.raises(ValueError, match=rf"{loss}: alpha must lie in \[0, 1\]; received alpha={alpha}"):
            fn(*y, alpha=alpha)
    with pytest.raises(ValueError, match=rf"{loss}: gamma must lie in \[0, inf\]; received gamma=-1.0"):
        fn(*y, gamma=-1.0)
    assert _finite(fn(*y, alpha=0.0, gamma=0.0)) and _finite(fn(*y, alpha=1.0))


def test_categorical_focal_per_class_alpha_checks():
    y = (np.eye(3, dtype=np.float32), np.full((3, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        jaxloss.categorical_focal_crossentropy(*y, alpha=[0.1, 1.2, 0.3])
    with pytest.raises(ValueError, match=r"alpha must be a scalar or have one value per class \(3,\); received"):
        jaxloss.categorical_focal_crossentropy(*y, alpha=[0.1, 0.2])


@pytest.mark.parametrize("q", [0.0, -0.2, 1.5])
def test_generalized_cross_entropy_q_range(q):
    with pytest.raises(
        ValueError, match=rf"categorical_generalized_cross_entropy: q must lie in \(0, 1\]; received q={q}"
    ):
        jaxloss.categorical_generalized_cross_entropy(np.array([0]), np.array([[0.5, 0.5]]), q=q)


def test_static_option_types():
    y = (np.zeros((2, 3)), np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="binary_crossentropy: from_logits must be True or False; received"):
        jaxloss.binary_crossentropy(*y, from_logits="yes")
    with pytest.raises(ValueError, match="binary_focal_crossentropy: apply_class_balancing must be True or False"):
        jaxloss.binary_focal_crossentropy(*y, apply_class_balancing=1)
    with pytest.raises(ValueError, match="categorical_crossentropy: axis=2 is out of range for an input of rank 2"):
        jaxloss.categorical_crossentropy(*y, axis=2)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy: ignore_class must be an int or None"):
        jaxloss.sparse_categorical_crossentropy(np.array([0, 1]), y[1], ignore_class=1.5)


def test_shapes_that_only_broadcast_are_refused():
    with pytest.raises(ValueError, match=r"binary_crossentropy: .*y_true.shape=\(3, 1\), y_pred.shape=\(1, 3\)"):
        jaxloss.binary_crossentropy(np.zeros((3, 1)), np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match=r"kl_divergence: .*y_true.shape=\(4,\), y_pred.shape=\(3,\)"):
        jaxloss.kl_divergence(np.full(4, 0.25), np.full(3, 0.3))
    message = r"sparse_categorical_crossentropy: y_true must have y_pred's shape without the class axis 1"
    with pytest.raises(ValueError, match=message + r".*y_true.shape=\(3,\), y_pred.shape=\(2, 4\)"):
        jaxloss.sparse_categorical_crossentropy(np.zeros(3, np.int32), np.full((2, 4), 0.25))
    with pytest.raises(ValueError, match=r"categorical_generalized_cross_entropy: .*y_true.shape=\(2, 2\)"):
        jaxloss.categorical_generalized_cross_entropy(np.zeros((2, 2), np.int32), np.full((2, 4), 0.25))


# --------------------------------------------------------------------------
# ignore_class: the mask and the all-ignored batch
# --------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=[str(r) for r in REDUCTIONS])
def test_all_ignored_batch_gives_zero(reduction, from_logits):
    labels = np.full((2, 3), -1, np.int32)
    y_pred = np.full((2, 3, 4), 0.25, np.float32)
    options = {"from_logits": from_logits, "ignore_class": -1, "reduction": reduction}
    sw = np.ones((2, 3), np.float32)
    value = jaxloss.sparse_categorical_crossentropy(labels, y_pred, sample_weight=sw, **options)
    assert np.all(np.asarray(value) == 0.0)
    g = jaxloss.grad("sparse_categorical_crossentropy", **options)(labels, y_pred, sw)
    assert np.all(np.asarray(g) == 0.0)
    assert np.all(np.asarray(jaxloss.analytic_grad("sparse_categorical_crossentropy", **options)(labels, y_pred)) == 0)


def test_ignore_class_mean_counts_valid_positions():
    rng = _rng()
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([1, 255, 3, 255], np.int32)
    values = jaxloss.sparse_categorical_crossentropy(
        labels, logits, from_logits=True, ignore_class=255, reduction="none"
    )
    log_p = _log_softmax(logits)
    assert_close(values, [-log_p[0, 1], 0.0, -log_p[2, 3], 0.0], F32)
    mean = jaxloss.sparse_categorical_crossentropy(labels, logits, from_logits=True, ignore_class=255)
    assert_close(mean, (-log_p[0, 1] - log_p[2, 3]) / 2, F32)


# --------------------------------------------------------------------------
# Dtypes and transformations
# --------------------------------------------------------------------------

ALL = {
    "binary_crossentropy": ({}, "binary"),
    "binary_focal_crossentropy": ({"from_logits": True}, "binary"),
    "categorical_crossentropy": ({"label_smoothing": 0.1}, "onehot"),
    "categorical_focal_crossentropy": ({}, "onehot"),
    "sparse_categorical_crossentropy": ({"from_logits": True, "ignore_class": 0}, "labels"),
    "categorical_generalized_cross_entropy": ({}, "labels"),
    "kl_divergence": ({}, "onehot"),
}


def _inputs(kind, rng=None, shape=(4, 3)):
    rng = rng or _rng()
    y_pred = rng.uniform(0.2, 0.8, shape).astype(np.float32)
    y_pred /= y_pred.sum(-1, keepdims=True) if kind != "binary" else 1.0
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)
    if kind == "labels":
        return labels, y_pred
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float32), y_pred
    return np.eye(shape[-1], dtype=np.float32)[labels], y_pred


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("loss", sorted(ALL))
def test_half_precision(loss, dtype):
    options, kind = ALL[loss]
    y_true, y_pred = _inputs(kind)
    y_half = jnp.asarray(y_pred, dtype)
    value = jaxloss.get(loss, **options)(y_true, y_half)
    assert value.dtype == jnp.float32
    assert_close(value, jaxloss.get(loss, **options)(y_true, np.asarray(y_half.astype(jnp.float32))), F32)
    assert_close(value, jaxloss.get(loss, **options)(y_true, y_pred), HALF)
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = grad(loss, **options)(y_true, y_half)
        assert g.dtype == dtype and g.shape == y_pred.shape and _finite(g)


@pytest.mark.parametrize("loss", sorted(ALL))
def test_vmap_jit_and_checkpoint(loss):
    options, kind = ALL[loss]
    rng = _rng()
    batches = [_inputs(kind, rng) for _ in range(3)]
    y_true = np.stack([b[0] for b in batches])
    y_pred = np.stack([b[1] for b in batches])
    fn = jaxloss.get(loss, **options)
    looped = np.array([fn(t, p) for t, p in zip(y_true, y_pred, strict=True)])
    assert_close(jax.vmap(fn)(y_true, y_pred), looped, F32)
    assert_close(jax.jit(jax.vmap(fn))(y_true, y_pred), looped, F32)
    grad = jax.grad(lambda p, t: fn(t, p))
    per_batch = jax.vmap(grad)(jnp.asarray(y_pred), y_true)
    remat = jax.vmap(jax.grad(jax.checkpoint(lambda p, t: fn(t, p))))(jnp.asarray(y_pred), y_true)
    closed = jaxloss.analytic_grad(loss, **options)
    assert_close(per_batch, np.stack([closed(t, p) for t, p in zip(y_true, y_pred, strict=True)]), F32)
    assert_close(remat, per_batch, F32)


def test_traced_hyperparameters_and_their_gradients():
    y_true, y_pred = _inputs("onehot")
    expected = jaxloss.categorical_focal_crossentropy(y_true, y_pred, gamma=1.5, label_smoothing=0.1)
    with jax.enable_x64(True):
        yt, yp = jnp.asarray(y_true, jnp.float64), jnp.asarray(y_pred, jnp.float64)

        @jax.jit
        def loss(gamma, smoothing):
            return jaxloss.categorical_focal_crossentropy(yt, yp, gamma=gamma, label_smoothing=smoothing)

        assert_close(loss(1.5, 0.1), expected, F32)
        d_gamma, d_smoothing = jax.grad(loss, argnums=(0, 1))(1.5, 0.1)
        h, tol = 1e-5, {"rtol": 1e-7, "atol": 1e-9}
        assert_close(d_gamma, (loss(1.5 + h, 0.1) - loss(1.5 - h, 0.1)) / (2 * h), tol)
        assert_close(d_smoothing, (loss(1.5, 0.1 + h) - loss(1.5, 0.1 - h)) / (2 * h), tol)


def test_soft_target_gradient_distillation():
    # d loss / d y_true through the custom JVP (the plain formula's derivative): -log_softmax(z) / N.
    rng = _rng()
    logits = rng.normal(size=(3, 4)).astype(np.float32)
    y_true = jax.nn.softmax(rng.normal(size=(3, 4)).astype(np.float32))
    g = jax.grad(lambda t: jaxloss.categorical_crossentropy(t, logits, from_logits=True))(y_true)
    assert_close(g, -_log_softmax(logits) / 3, F32)


@pytest.mark.parametrize(
    "alias, name",
    [
        ("bce", "binary_crossentropy"),
        ("BinaryFocalCrossentropy", "binary_focal_crossentropy"),
        ("cce", "categorical_crossentropy"),
        ("CategoricalFocalCrossentropy", "categorical_focal_crossentropy"),
        ("scce", "sparse_categorical_crossentropy"),
        ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
        ("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy"),
        ("kld", "kl_divergence"),
        ("kullback_leibler_divergence", "kl_divergence"),
        ("KLDivergence", "kl_divergence"),
    ],
)
def test_aliases(alias, name):
    assert jaxloss.get(alias).spec.name == name
    assert jaxloss.get(alias).function is getattr(jaxloss, name)


# --------------------------------------------------------------------------
# The log-sum-exp form of crossentropy from logits: both backend forms
# --------------------------------------------------------------------------
# CPU runs the form that keeps exp(z - m) (keep_exp=True); GPU and TPU the one that
# recomputes it. Both are checked here, on CPU, against jax.jvp of the log_softmax formula.

_LSE_GRID = [
    # (axis, label_smoothing, z_loss, ignore_class)
    (-1, 0.0, 0.0, None),
    (-1, 0.1, 0.0, None),
    (-1, 0.0, 0.05, None),
    (1, 0.2, 0.01, 2),
    (0, 0.0, 0.0, 0),
    (-1, 0.3, 0.02, -1),
]


def _sparse_reference(labels, z, ax, a, zl, ignore):
    log_q = jax.nn.log_softmax(z, axis=ax)
    classes = z.shape[ax]
    hot = jnp.expand_dims(labels, ax) == jax.lax.broadcasted_iota(jnp.int32, z.shape, ax)
    t = jnp.where(hot, 1.0 - a, 0.0) + a / classes
    lse = jax.nn.logsumexp(z, axis=ax)
    values = -jnp.sum(t * log_q, axis=ax) + zl * lse**2
    return values if ignore is None else jnp.where(labels != ignore, values, 0.0)


@pytest.mark.parametrize("keep_exp", [True, False])
@pytest.mark.parametrize(("axis", "a", "zl", "ignore"), _LSE_GRID)
def test_sparse_logits_forms_match_log_softmax(keep_exp, axis, a, zl, ignore):
    from jaxloss._probabilistic import _sparse_logits

    rng = np.random.default_rng(7)
    shape = (6, 5, 4)
    z = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
    dz = jnp.asarray(rng.normal(0, 1, shape), jnp.float32)
    ax = axis % 3
    label_shape = shape[:ax] + shape[ax + 1 :]
    # Out-of-range labels (negative, >= C) select no class, as Keras's one_hot.
    labels = jnp.asarray(rng.integers(-1, shape[ax] + 1, label_shape), jnp.int32)
    valid = None if ignore is None else labels != ignore
    # Ignored rows get zeroed logits first (as the loss does): garbage there must not leak.
    zz = z if valid is None else jnp.where(jnp.expand_dims(valid, ax), z, 0.0)
    value, tangent = _sparse_logits(labels, zz, dz, ax=ax, label_smoothing=a, z_loss=zl, valid=valid, keep_exp=keep_exp)
    ref_value, ref_tangent = jax.jvp(lambda p: _sparse_reference(labels, p, ax, a, zl, ignore), (zz,), (dz,))
    assert_close(value, ref_value)
    assert_close(tangent, ref_tangent)
    only_value = _sparse_logits(labels, zz, None, ax=ax, label_smoothing=a, z_loss=zl, valid=valid)
    assert_close(only_value, ref_value)


@pytest.mark.parametrize("keep_exp", [True, False])
@pytest.mark.parametrize(("axis", "zl"), [(-1, 0.0), (0, 0.05), (1, 0.0)])
def test_dense_logits_forms_match_log_softmax(keep_exp, axis, zl):
    from jaxloss._probabilistic import _dense_logits

    rng = np.random.default_rng(8)
    shape = (6, 5, 4)
    z = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
    dz = jnp.asarray(rng.normal(0, 1, shape), jnp.float32)
    t = jnp.asarray(rng.uniform(0, 1, shape), jnp.float32)  # soft, unnormalised targets
    ax = axis % 3

    def reference(p):
        lse = jax.nn.logsumexp(p, axis=ax)
        return -jnp.sum(t * jax.nn.log_softmax(p, axis=ax), axis=ax) + zl * lse**2

    value, tangent = _dense_logits(t, z, dz, ax=ax, z_loss=zl, keep_exp=keep_exp)
    ref_value, ref_tangent = jax.jvp(reference, (z,), (dz,))
    assert_close(value, ref_value)
    assert_close(tangent, ref_tangent)
    assert_close(_dense_logits(t, z, None, ax=ax, z_loss=zl), ref_value)


def test_sparse_from_logits_stores_nothing_of_the_logits_size():
    """Value and gradient at N=4096, V=32768 need no (N, V) temporary (a log_softmax needs 1 GiB)."""
    n, v = 4096, 32768
    fn = jax.jit(jax.value_and_grad(lambda p, y: jaxloss.sparse_categorical_crossentropy(y, p, from_logits=True)))
    compiled = fn.lower(jax.ShapeDtypeStruct((n, v), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.int32)).compile()
    memory = compiled.memory_analysis()
    if memory is None:
        pytest.skip("this backend reports no memory analysis")
    assert memory.temp_size_in_bytes <= 2**20, memory.temp_size_in_bytes


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
@pytest.mark.parametrize("option", ["label_smoothing", "z_loss"])
def test_traced_option_of_the_logsumexp_form_has_its_gradient(loss, option):
    """An array option stays an argument: its gradient flows (and matches central differences)."""
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(0, 2, (8, 5)), jnp.float32)
    labels = rng.integers(0, 5, 8)
    y = labels if loss.startswith("sparse") else np.eye(5, dtype=np.float32)[labels]
    fn = getattr(jaxloss, loss)

    def value(x):
        return fn(y, z, from_logits=True, **{option: x})

    x0, h = jnp.asarray(0.1, jnp.float32), 1e-2
    got = jax.grad(value)(x0)
    want = (value(x0 + h) - value(x0 - h)) / (2 * h)  # both options enter linearly: exact up to round-off
    assert_close(got, want, {"rtol": 1e-4, "atol": 1e-6})
    # A Python number gives the same value as the array, compiled in.
    assert_close(value(0.1), value(x0))
