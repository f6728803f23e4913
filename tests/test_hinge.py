"""jaxloss._hinge: Keras's label conversion and formula, kinks, shapes, dtypes.

Keras parity and the gradient checks on random inputs live in tests/test_common.py
(tests/cases/hinge.py); this file checks the rules by hand-computed examples.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

from .tolerances import F32, HALF, assert_close

HINGES = ["hinge", "squared_hinge", "categorical_hinge"]


def _rng():
    return np.random.default_rng(7)


# --------------------------------------------------------------------------
# hinge / squared_hinge: the batch-wide {0, 1} -> {-1, 1} conversion
# --------------------------------------------------------------------------


def test_binary_labels_equal_signed_labels():
    rng = _rng()
    y01 = rng.integers(0, 2, (6, 5)).astype(np.float32)
    y_pred = rng.uniform(-2, 2, (6, 5)).astype(np.float32)
    for loss in (jaxloss.hinge, jaxloss.squared_hinge):
        assert_close(loss(y01, y_pred, reduction="none"), loss(2 * y01 - 1, y_pred, reduction="none"))


def test_conversion_is_batch_wide():
    # One label outside {0, 1} anywhere in the call: every label is used unconverted.
    y_true = np.array([[0.0, 1.0], [1.0, 0.5]], np.float32)
    y_pred = np.array([[0.5, -1.0], [2.0, 1.0]], np.float32)
    expected = np.mean(np.maximum(1 - y_true * y_pred, 0), axis=-1)
    assert_close(jaxloss.hinge(y_true, y_pred, reduction="none"), expected)
    assert_close(
        jaxloss.squared_hinge(y_true, y_pred, reduction="none"), np.mean(np.maximum(1 - y_true * y_pred, 0) ** 2, -1)
    )
    # The same first row in an all-binary batch is converted: 0 becomes -1.
    converted = jaxloss.hinge(y_true[:1], y_pred[:1], reduction="none")
    assert_close(converted, [np.mean(np.maximum(1 - np.array([-1.0, 1.0]) * y_pred[0], 0))])


def test_hand_computed_values():
    y_true = np.array([[1.0, -1.0, 1.0]], np.float32)
    y_pred = np.array([[0.5, 0.5, 2.0]], np.float32)
    # margins 1 - t p = 0.5, 1.5, -1 -> hinge mean(0.5, 1.5, 0) = 2/3, squared mean(0.25, 2.25, 0) = 5/6
    assert_close(jaxloss.hinge(y_true, y_pred), 2 / 3)
    assert_close(jaxloss.squared_hinge(y_true, y_pred), 5 / 6)


def test_integer_labels():
    y_pred = np.array([[0.3, -0.2], [1.5, 0.0]], np.float32)
    ints = np.array([[1, 0], [0, 1]], np.int32)
    assert_close(jaxloss.hinge(ints, y_pred), jaxloss.hinge(ints.astype(np.float32), y_pred))


# --------------------------------------------------------------------------
# categorical_hinge: Keras's formula
# --------------------------------------------------------------------------


def test_categorical_hinge_formula():
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    y_pred = np.array([[0.3, 0.5, 0.1], [2.0, 0.1, 0.2], [-1.0, -2.0, -0.5]], np.float32)
    # neg = max((1 - y) p): 0.3, 0.2 and 0 (all other scores negative: the true class's masked 0 wins).
    # pos = 0.5, 2.0, -0.5 -> max(neg - pos + 1, 0) = 0.8, 0, 1.5
    assert_close(jaxloss.categorical_hinge(y_true, y_pred, reduction="none"), [0.8, 0.0, 1.5])


def test_categorical_hinge_tied_max_splits_gradient():
    # Two wrong classes tie for the max: autodiff shares the gradient between them.
    y_true = np.array([[1.0, 0.0, 0.0]], np.float32)
    y_pred = np.array([[0.2, 0.7, 0.7]], np.float32)
    closed = jaxloss.analytic_grad("categorical_hinge", reduction="sum")(y_true, y_pred)
    auto = jaxloss.grad("categorical_hinge", reduction="sum")(y_true, y_pred)
    assert_close(closed, [[-1.0, 0.5, 0.5]])
    assert_close(closed, auto)


# --------------------------------------------------------------------------
# Kinks: the closed form takes autodiff's subgradient
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", HINGES)
def test_closed_form_at_the_kink(loss):
    if loss == "categorical_hinge":
        y_true = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
        y_pred = np.array([[1.5, 0.5], [0.25, 1.0]], np.float32)  # neg - pos + 1 = 0 for the first row
    else:
        y_true = np.array([[1.0, -1.0], [1.0, 1.0]], np.float32)
        y_pred = np.array([[1.0, -1.0], [0.5, 1.0]], np.float32)  # t p = 1 exactly
    for reduction in ("sum", "sum_over_batch_size"):
        closed = jaxloss.analytic_grad(loss, reduction=reduction)(y_true, y_pred)
        auto = jaxloss.grad(loss, reduction=reduction)(y_true, y_pred)
        assert_close(closed, auto, F32, loss)


def test_hinge_kink_is_half_slope():
    y_true = np.array([[1.0, -1.0]], np.float32)
    y_pred = np.array([[1.0, 0.0]], np.float32)
    # d/dp mean(max(1 - t p, 0)): -t/2 at the kink (1/2 of the one-sided slopes), -t/d below it.
    assert_close(jaxloss.analytic_grad("hinge", reduction="sum")(y_true, y_pred), [[-0.25, 0.5]])


# --------------------------------------------------------------------------
# Shapes, dtypes, transformations
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", HINGES)
@pytest.mark.parametrize("shapes", [((5, 1), (1, 5)), ((4,), (5,)), ((2, 3), (2, 4))])
def test_broadcast_only_shapes_raise(loss, shapes):
    a, b = (np.zeros(s, np.float32) for s in shapes)
    message = rf"{loss}: y_true and y_pred must have the same shape; received y_true.shape={shapes[0]}, y_pred.shape={shapes[1]}"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(jaxloss, loss)(a, b)


def test_shape_guard_survives_chex_disable_asserts():
    chex.disable_asserts()
    try:
        with pytest.raises(ValueError, match=r"hinge: .*\(5, 1\).*\(1, 5\)"):
            jaxloss.hinge(np.ones((5, 1)), np.ones((1, 5)))
    finally:
        chex.enable_asserts()


@pytest.mark.parametrize("loss", HINGES)
def test_unknown_option_and_reduction(loss):
    fn = getattr(jaxloss, loss)
    with pytest.raises(ValueError, match=rf"{loss}: reduction must be one of .*received reduction='avg'"):
        fn(np.ones((2, 3)), np.ones((2, 3)), reduction="avg")
    with pytest.raises(ValueError, match=rf"jaxloss.get: {loss} has no option\(s\) \['delta'\]"):
        jaxloss.get(loss, delta=1.0)


@pytest.mark.parametrize("loss", HINGES)
def test_half_precision(loss):
    rng = _rng()
    y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    y_pred = rng.uniform(-2, 2, (6, 4)).astype(np.float32)
    fn = getattr(jaxloss, loss)
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(y_pred, dtype)
        value = fn(y_true, low)
        assert value.dtype == jnp.float32
        assert_close(value, fn(y_true, np.asarray(low, np.float32)), F32)
        g = jaxloss.analytic_grad(loss)(y_true, low)
        assert g.dtype == dtype
        assert_close(g, jaxloss.grad(loss)(y_true, np.asarray(low, np.float32)), HALF)


@pytest.mark.parametrize("loss", HINGES)
def test_get_by_keras_class_name(loss):
    spec_name = {"hinge": "Hinge", "squared_hinge": "SquaredHinge", "categorical_hinge": "CategoricalHinge"}[loss]
    rng = _rng()
    y_true = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)]
    y_pred = rng.uniform(-2, 2, (4, 3)).astype(np.float32)
    assert_close(
        jaxloss.get(spec_name, reduction="sum")(y_true, y_pred), getattr(jaxloss, loss)(y_true, y_pred, reduction="sum")
    )


@pytest.mark.parametrize("loss", HINGES)
def test_vmap_and_jit(loss):
    rng = _rng()
    y_true = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 5))]
    y_pred = rng.uniform(-2, 2, (2, 5, 3)).astype(np.float32)
    fn = getattr(jaxloss, loss)
    batched = jax.vmap(lambda t, p: fn(t, p, reduction="sum"))(y_true, y_pred)
    looped = [fn(y_true[i], y_pred[i], reduction="sum") for i in range(2)]
    assert_close(batched, looped)
    assert_close(jax.jit(lambda p: fn(y_true, p))(y_pred), fn(y_true, y_pred))
