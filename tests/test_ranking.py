"""jaxloss._ranking (ranking_softmax): masks, empty lists, extremes, NaN, options and shapes.

optax/PyTorch parity on the declared examples and the shared gradient checks live in
tests/test_registry.py.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss

from .tolerances import F32, assert_close


def test_masked_lists_and_items_match_optax():
    labels = np.array([[2.0, 0.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]], np.float32)
    scores = np.array([[1.0, -1.0, 0.5, -np.inf], [0.3, 0.2, 0.1, 0.0], [2.0, 1.0, 0.0, -1.0]], np.float32)
    where = np.array([[True, True, True, False], [False] * 4, [True] * 4])
    got = jaxloss.ranking_softmax(labels, scores, where=where)
    want = optax.losses.ranking_softmax_loss(jnp.asarray(scores), jnp.asarray(labels), where=jnp.asarray(where))
    assert_close(got, want, F32)
    none = jaxloss.ranking_softmax(labels, scores, where=where, reduction="none")
    assert float(none[1]) == 0.0 and np.isfinite(np.asarray(none)).all()
    # The empty list is left out of the mean, as optax leaves it out of its mean.
    assert_close(got, (float(none[0]) + float(none[2])) / 2, F32)
    g = jaxloss.analytic_grad("ranking_softmax", where=where)(labels, scores)
    assert np.all(np.asarray(g)[~where] == 0.0) and np.isfinite(np.asarray(g)).all()
    assert_close(g, jaxloss.grad("ranking_softmax", where=where)(labels, scores), F32)


def test_extreme_scores_under_a_mask_are_finite():
    labels = np.array([[1.0, 0.0, 3.0], [1.0, 2.0, 0.0]], np.float32)
    scores = np.array([[1e4, -1e4, np.inf], [0.0, -np.inf, 1.0]], np.float32)
    where = np.array([[True, True, False], [False, False, False]])
    values = jaxloss.ranking_softmax(labels, scores, where=where, reduction="none")
    closed = jaxloss.analytic_grad("ranking_softmax", where=where)(labels, scores)
    auto = jaxloss.grad("ranking_softmax", where=where)(labels, scores)
    assert np.all(np.isfinite(np.asarray(values)))
    assert np.all(np.isfinite(np.asarray(closed))) and np.all(np.isfinite(np.asarray(auto)))
    assert_close(closed, auto, F32)
    # -1 * log softmax([1e4, -1e4])[0] = 0 for the first list; the empty list gives 0.
    assert_close(values, [0.0, 0.0], {"rtol": 0.0, "atol": 1e-6})


def test_where_list_equals_array():
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 3, (2, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    where = [[True, False, True, True], [True, True, True, False]]
    assert_close(
        jaxloss.ranking_softmax(labels, scores, where=where),
        jaxloss.ranking_softmax(labels, scores, where=np.array(where)),
    )


@pytest.mark.parametrize("role", ["y_true", "y_pred"])
def test_nan_propagates(role):
    rng = np.random.default_rng(1)
    labels, scores = rng.integers(0, 3, (3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    (labels if role == "y_true" else scores)[1, 2] = np.nan
    values = np.asarray(jaxloss.ranking_softmax(labels, scores, reduction="none"))
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2]]))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad("ranking_softmax", reduction="sum")(labels, scores))
        assert np.any(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2]])), grad.__name__


def test_empty_lists_and_batches():
    with pytest.raises(
        ValueError,
        match=re.escape("ranking_softmax: y_pred must hold at least one item along its last axis; received"),
    ):
        jaxloss.ranking_softmax(np.zeros((3, 0)), np.zeros((3, 0)))
    out = jaxloss.ranking_softmax(np.zeros((0, 4)), np.zeros((0, 4)))
    assert out.shape == (0,)


def test_where_shape_error():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ranking_softmax: where must have the scores' shape; received where.shape=(2, 2), y_pred.shape=(2, 3)."
        ),
    ):
        jaxloss.ranking_softmax(np.zeros((2, 3)), np.zeros((2, 3)), where=np.ones((2, 2), bool))


def test_checked_rejects_negative_relevance():
    from jax.experimental import checkify

    with pytest.raises(checkify.JaxRuntimeError, match=r"jaxloss.ranking_softmax: y_true must be non-negative"):
        jaxloss.checked(jaxloss.ranking_softmax)(np.array([[1.0, -1.0]]), np.zeros((1, 2)))


def test_get_resolves_names():
    assert jaxloss.get("ranking_softmax_loss").spec.name == "ranking_softmax"
