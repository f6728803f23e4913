"""jaxloss._focal: focal losses in log space at saturated logits, per-class alpha, the generalized
crossentropy's slope, option checks.

The declared examples' Keras/optax parity and gradients run in tests/test_registry.py.
"""

from __future__ import annotations

import jax
import keras
import numpy as np
import pytest

import jaxloss

from .tolerances import F32, assert_close

RNG_SEED = 1234


def _rng():
    return np.random.default_rng(RNG_SEED)


def _log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _finite(x):
    return bool(np.all(np.isfinite(np.asarray(x, np.float64))))


MASKED_LOGITS = np.array([[-np.inf, 2.0, 0.0, 1.0], [1.0, -np.inf, 0.5, -np.inf]], np.float32)


MASKED_LABELS = np.array([1, 2])


BIG = 1e4


SMOOTHED = ["binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy"]


SMOOTHED += ["categorical_focal_crossentropy"]


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
    """A label outside [0, C) names no class: NaN, never another class's score; inf or NaN in a row shows."""
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [0.5, np.inf], [np.nan, 0.5], [0.3, 0.7]], np.float32)
    labels = np.array([2, -1, 0, 1, 1])
    values = np.asarray(jaxloss.categorical_generalized_cross_entropy(labels, probs, q=0.5, reduction="none"))
    assert np.isnan(values[:4]).all()
    assert_close(values[4], (1.0 - np.sqrt(0.7)) / 0.5, F32)
    g = np.asarray(jaxloss.grad("categorical_generalized_cross_entropy", q=0.5, reduction="none")(labels, probs))
    assert np.isnan(g[:2]).any(axis=1).all() and np.isfinite(g[4]).all()


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


@pytest.mark.parametrize("loss", ["binary_focal_crossentropy", "categorical_focal_crossentropy"])
def test_focal_alpha_and_gamma_ranges(loss):
    fn = jaxloss.get(loss).function
    y = (np.zeros((2, 3)), np.full((2, 3), 0.5))
    # Binary focal's alpha acts only with class balancing.
    on = {"apply_class_balancing": True} if loss == "binary_focal_crossentropy" else {}
    for alpha in (-0.5, 1.01):
        with pytest.raises(ValueError, match=rf"{loss}: alpha must lie in \[0, 1\]; received alpha={alpha}"):
            fn(*y, alpha=alpha, **on)
    with pytest.raises(ValueError, match=rf"{loss}: gamma must lie in \[0, inf\]; received gamma=-1.0"):
        fn(*y, gamma=-1.0)
    assert _finite(fn(*y, alpha=0.0, gamma=0.0, **on)) and _finite(fn(*y, alpha=1.0, **on))


def test_categorical_focal_per_class_alpha_checks():
    y = (np.eye(3, dtype=np.float32), np.full((3, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        jaxloss.categorical_focal_crossentropy(*y, alpha=[0.1, 1.2, 0.3])
    with pytest.raises(
        ValueError,
        match=r"alpha must be a scalar or one value per class, shape \(3,\) for the class axis 1 of y_pred; received alpha.shape=\(2,\)",
    ):
        jaxloss.categorical_focal_crossentropy(*y, alpha=[0.1, 0.2])


@pytest.mark.parametrize("q", [0.0, -0.2, 1.5])
def test_generalized_cross_entropy_q_range(q):
    with pytest.raises(
        ValueError, match=rf"categorical_generalized_cross_entropy: q must lie in \(0, 1\]; received q={q}"
    ):
        jaxloss.categorical_generalized_cross_entropy(np.array([0]), np.array([[0.5, 0.5]]), q=q)
