"""jaxloss._segmentation: tversky's alpha/beta semantics, axes, option checks, shapes, NaN.

Keras/optax parity on every declared example and the shared gradient checks live in
tests/test_registry.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxloss
from jaxloss._core import REDUCTIONS, REGISTRY

from .tolerances import F32, HALF, assert_close

EPS = 1e-7


def _masks(shape, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, shape).astype(np.float32), rng.uniform(0.05, 0.95, shape).astype(np.float32)


# --------------------------------------------------------------------------
# tversky: alpha weights false positives, beta false negatives
# --------------------------------------------------------------------------

# One sample: TP = 0.9 + 0.8 = 1.7, FP = 0.6 + 0.3 = 0.9, FN = 0.1 + 0.2 + 1.0 = 1.3.
FP_FN_TRUE = np.array([[1.0, 1.0, 1.0, 0.0, 0.0]], np.float32)
FP_FN_PRED = np.array([[0.9, 0.8, 0.0, 0.6, 0.3]], np.float32)
TP, FP, FN = 1.7, 0.9, 1.3


@pytest.mark.parametrize("alpha,beta", [(0.3, 0.7), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (2.0, 0.25)])
def test_tversky_alpha_weights_false_positives(alpha, beta):
    expected = 1.0 - TP / (TP + alpha * FP + beta * FN + EPS)
    got = jaxloss.tversky(FP_FN_TRUE, FP_FN_PRED, alpha=alpha, beta=beta, axis=1, reduction="none")
    assert_close(got, [expected])


def test_tversky_only_false_positives_or_only_false_negatives():
    # A prediction that covers the target and more has only false positives: beta is irrelevant.
    y_true = np.array([[1.0, 0.0, 0.0]], np.float32)
    over = np.array([[1.0, 1.0, 1.0]], np.float32)  # TP = 1, FP = 2, FN = 0
    assert_close(jaxloss.tversky(y_true, over, alpha=0.5, beta=7.0), 1 - 1 / (1 + 0.5 * 2 + EPS))
    assert_close(jaxloss.tversky(y_true, over, alpha=0.0, beta=7.0), 1 - 1 / (1 + EPS))
    # A prediction inside the target has only false negatives: alpha is irrelevant.
    y_true = np.array([[1.0, 1.0, 1.0]], np.float32)
    under = np.array([[1.0, 0.0, 0.0]], np.float32)  # TP = 1, FP = 0, FN = 2
    assert_close(jaxloss.tversky(y_true, under, alpha=7.0, beta=0.5), 1 - 1 / (1 + 0.5 * 2 + EPS))


def test_tversky_equals_keras_with_alpha_and_beta_swapped():
    # Keras 3.15's code multiplies alpha by its "fp" = sum((1 - y_pred) * y_true), which are false negatives.
    y_true, y_pred = _masks((3, 4, 5))
    ours = jaxloss.tversky(y_true, y_pred, alpha=0.2, beta=0.9, axis=(1, 2), reduction="none")
    keras_swapped = keras.losses.Tversky(alpha=0.9, beta=0.2, axis=(1, 2), reduction=None)(y_true, y_pred)
    keras_same = keras.losses.Tversky(alpha=0.2, beta=0.9, axis=(1, 2), reduction=None)(y_true, y_pred)
    assert_close(ours, keras_swapped)
    assert not np.allclose(ours, keras_same, rtol=1e-3)


def test_tversky_half_half_is_dice():
    # 2 TP + FP + FN = sum(y_true) + sum(y_pred): equal up to where epsilon enters.
    y_true, y_pred = _masks((4, 6, 3))
    for axis in (None, (1, 2), -1):
        assert_close(
            jaxloss.tversky(y_true, y_pred, axis=axis, reduction="none"),
            jaxloss.dice(y_true, y_pred, axis=axis, reduction="none"),
            {"rtol": 1e-5, "atol": 1e-6},
        )


# --------------------------------------------------------------------------
# dice: Keras's documented examples
# --------------------------------------------------------------------------

KERAS_DOC_TRUE = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]], np.float32)
KERAS_DOC_PRED = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]], np.float32)


def test_dice_keras_documented_values():
    per_image = jaxloss.dice(KERAS_DOC_TRUE, KERAS_DOC_PRED, axis=(1, 2, 3), reduction="none")
    assert per_image.shape == (2,)
    assert_close(per_image, [0.5, 0.75757575])
    assert_close(jaxloss.dice(KERAS_DOC_TRUE, KERAS_DOC_PRED), 0.6164384)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_axis_none_is_one_scalar_for_every_reduction(loss, reduction):
    y_true, y_pred = _masks((3, 4, 2))
    fn = getattr(jaxloss, loss)
    value = fn(y_true, y_pred, reduction=reduction)
    assert value.shape == ()
    assert_close(value, fn(y_true, y_pred, reduction="none"))
    # A scalar sample weight scales it (Keras returns the weighted scalar unreduced).
    assert_close(fn(y_true, y_pred, sample_weight=2.0, reduction=reduction), 2.0 * value)


# --------------------------------------------------------------------------
# Axes: reduced_axes, lists, negative axes, invalid axes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "axis,ndim,expected",
    [(None, 3, (0, 1, 2)), (1, 3, (1,)), (-1, 3, (2,)), ((2, 0), 3, (0, 2)), ((1, -1), 4, (1, 3)), (None, 1, (0,))],
)
@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_reduced_axes(loss, axis, ndim, expected):
    spec = REGISTRY[loss]
    assert spec.reduced_axes(ndim, {**spec.defaults, "axis": axis}) == expected


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_list_axis_equals_tuple_and_negative_axes(loss):
    y_true, y_pred = _masks((2, 3, 4, 5))
    fn = getattr(jaxloss, loss)
    reference = fn(y_true, y_pred, axis=(1, 2, 3), reduction="none")
    assert reference.shape == (2,)
    assert_close(fn(y_true, y_pred, axis=[1, 2, 3], reduction="none"), reference)
    assert_close(fn(y_true, y_pred, axis=(-3, -2, -1), reduction="none"), reference)
    assert_close(fn(y_true, y_pred, axis=(3, 1, 2), reduction="none"), reference)
    assert_close(
        jaxloss.analytic_grad(loss, axis=[1, 2, 3])(y_true, y_pred),
        jaxloss.grad(loss, axis=(1, 2, 3))(y_true, y_pred),
    )


@pytest.mark.parametrize("loss", ["dice", "tversky"])
@pytest.mark.parametrize(
    "axis,message",
    [
        (3, r"axis=3 is out of range for an input of rank 3"),
        ((0, -4), r"axis=\(0, -4\) is out of range for an input of rank 3"),
        ((1, 1), r"axis=\(1, 1\) names the same axis twice"),
        ((1, -2), r"axis=\(1, -2\) names the same axis twice"),
        (1.5, r"axis must be None, an int or a non-empty tuple of ints; received axis=1.5"),
        ("x", r"axis must be None, an int or a non-empty tuple of ints; received axis='x'"),
        (True, r"axis must be None, an int or a non-empty tuple of ints; received axis=True"),
        ((), r"axis must be None, an int or a non-empty tuple of ints; received axis=\(\)"),
    ],
)
def test_invalid_axis_raises(loss, axis, message):
    y_true, y_pred = _masks((2, 3, 4))
    with pytest.raises(ValueError, match=rf"{loss}: {message}"):
        getattr(jaxloss, loss)(y_true, y_pred, axis=axis)


# --------------------------------------------------------------------------
# Option values and shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options,message",
    [
        ({"alpha": -0.1}, r"tversky: alpha must lie in \[0, inf\]; received alpha=-0.1\."),
        ({"beta": -1.0}, r"tversky: beta must lie in \[0, inf\]; received beta=-1.0\."),
        ({"alpha": float("nan")}, r"tversky: alpha must lie in \[0, inf\]; received alpha=nan\."),
        ({"beta": "big"}, r"tversky: beta must be a number \(a scalar\); received beta='big'\."),
        # A list or an array is not a scalar option (it used to return one loss per entry).
        ({"alpha": [0.3, 0.7]}, r"tversky: alpha must be a number \(a scalar\); received alpha=a list of length 2\."),
        ({"alpha": np.array([0.3, 0.7])}, r"tversky: alpha must be a scalar; received alpha of shape \(2,\)"),
        ({"beta": None}, r"tversky: beta must be a number; received beta=None\."),
    ],
)
def test_tversky_option_validation(options, message):
    y_true, y_pred = _masks((2, 3))
    with pytest.raises(ValueError, match=message):
        jaxloss.tversky(y_true, y_pred, **options)
    with pytest.raises(ValueError, match=message):
        jaxloss.get("tversky", **options)


def test_traced_alpha_beta_under_jit_and_grad():
    y_true, y_pred = _masks((3, 5))

    def loss(alpha, beta):
        return jaxloss.tversky(y_true, y_pred, alpha=alpha, beta=beta, axis=1)

    assert_close(jax.jit(loss)(0.3, 0.7), loss(0.3, 0.7))
    # d/dalpha mean(1 - TP / D) = mean(TP FP / D^2), per sample.
    tp = np.sum(y_true * y_pred, 1)
    fp = np.sum(y_pred * (1 - y_true), 1)
    fn = np.sum((1 - y_pred) * y_true, 1)
    d = tp + 0.3 * fp + 0.7 * fn + EPS
    assert_close(jax.grad(loss, argnums=(0, 1))(0.3, 0.7), (np.mean(tp * fp / d**2), np.mean(tp * fn / d**2)))


@pytest.mark.parametrize("loss", ["dice", "tversky"])
@pytest.mark.parametrize("shapes", [((5, 1), (1, 5)), ((4,), (5,)), ((2, 3, 4), (2, 4, 3))])
def test_broadcast_only_shapes_raise(loss, shapes):
    a, b = (np.zeros(s, np.float32) for s in shapes)
    message = rf"{loss}: y_true and y_pred must have the same shape; received y_true.shape={shapes[0]}, y_pred.shape={shapes[1]}"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(jaxloss, loss)(a, b)


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_prefix_sample_weight(loss):
    y_true, y_pred = _masks((3, 4, 5))
    fn = getattr(jaxloss, loss)
    per_sample = np.asarray(fn(y_true, y_pred, axis=-1, reduction="none"))  # (3, 4)
    w = np.array([0.5, 1.0, 2.0], np.float32)
    assert_close(fn(y_true, y_pred, axis=-1, sample_weight=w, reduction="sum"), np.sum(per_sample * w[:, None]))
    with pytest.raises(ValueError, match=rf"{loss}: sample_weight must have .*\(3, 4\).*sample_weight.shape=\(4,\)"):
        fn(y_true, y_pred, axis=-1, sample_weight=np.ones(4))


# --------------------------------------------------------------------------
# Gradients: the quotient rule, edge inputs, dtypes
# --------------------------------------------------------------------------


def test_dice_gradient_by_hand():
    y_true = np.array([[1.0, 0.0]], np.float32)
    y_pred = np.array([[0.5, 0.5]], np.float32)
    # I = 0.5, S = 1 + 1 + eps: d(1 - 2I/S)/dp = -2 (t S - I) / S^2
    s = 2.0 + EPS
    expected = -2.0 * (np.array([[1.0, 0.0]]) * s - 0.5) / s**2
    assert_close(jaxloss.analytic_grad("dice", reduction="sum")(y_true, y_pred), expected)


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_empty_masks_are_finite(loss):
    # Nothing to segment and nothing predicted: 1 - 0 / eps = 1, with a finite gradient.
    zeros = np.zeros((2, 3), np.float32)
    fn = getattr(jaxloss, loss)
    assert_close(fn(zeros, zeros, axis=1, reduction="none"), [1.0, 1.0])
    closed = jaxloss.analytic_grad(loss, axis=1)(zeros, zeros)
    auto = jaxloss.grad(loss, axis=1)(zeros, zeros)
    assert np.all(np.isfinite(closed))
    assert_close(closed, auto)


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_half_precision(loss):
    y_true, y_pred = _masks((2, 8, 8))
    fn = getattr(jaxloss, loss)
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(y_pred, dtype)
        value = fn(y_true, low, axis=(1, 2))
        assert value.dtype == jnp.float32
        assert_close(value, fn(y_true, np.asarray(low, np.float32), axis=(1, 2)), F32)
        g = jaxloss.analytic_grad(loss, axis=(1, 2))(y_true, low)
        assert g.dtype == dtype
        assert_close(g, jaxloss.grad(loss, axis=(1, 2))(y_true, np.asarray(low, np.float32)), HALF)


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_custom_rule_forward_and_reverse_agree(loss):
    y_true, y_pred = _masks((2, 3, 4))
    fn = getattr(jaxloss, loss)

    def f(p):
        return fn(y_true, p, axis=(1, 2), reduction="sum")

    p = jnp.asarray(y_pred)
    assert_close(jax.jacfwd(f)(p), jax.jacrev(f)(p))
    h = jax.hessian(f)(p)
    assert np.all(np.isfinite(np.asarray(h)))


# --------------------------------------------------------------------------
# NaN, empty inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["dice", "tversky"])
@pytest.mark.parametrize("role", ["y_true", "y_pred"])
def test_nan_propagates_to_its_slice(loss, role):
    y_true, y_pred = _masks((3, 4))
    (y_true if role == "y_true" else y_pred)[1, 2] = np.nan
    fn = getattr(jaxloss, loss)
    values = np.asarray(fn(y_true, y_pred, axis=1, reduction="none"))
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2]]))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, axis=1, reduction="sum")(y_true, y_pred))
        assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2]])), grad.__name__


@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_empty_batch_passes_through(loss):
    out = getattr(jaxloss, loss)(np.zeros((0, 4)), np.zeros((0, 4)), axis=1)
    assert out.shape == (0,)


def test_tversky_alpha_zero_drops_false_positives():
    # alpha = 0 (a Python 0 is compiled in): predictions outside the target cost nothing.
    y_true = np.array([[1.0, 0.0, 0.0]], np.float32)
    over = np.array([[1.0, 1.0, 1.0]], np.float32)
    assert_close(jaxloss.tversky(y_true, over, alpha=0.0, beta=1.0, axis=1), 1 - 1 / (1 + EPS))
    assert_close(jaxloss.tversky(y_true, over, alpha=0, beta=1.0, axis=1), 1 - 1 / (1 + EPS))
