"""Property-based tests (hypothesis) across every Keras loss.

Hypothesis draws shapes (rank 1 to 4, size-1 and empty batches), dtypes,
options and input values (extremes included); numpy fills arrays from a drawn
seed. CI uses the bounded "ci" profile (tests/conftest.py); `HYPOTHESIS_PROFILE=long`
runs more examples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jaxloss
from jaxloss._core import REGISTRY

from .tolerances import F32, assert_close

# loss -> (input kind, option strategies)
BOOL = st.booleans()
UNIT = st.floats(0.0, 1.0)
LOSSES = {
    "mean_squared_error": ("real", {}),
    "mean_absolute_error": ("real", {}),
    "mean_absolute_percentage_error": ("real", {}),
    "mean_squared_logarithmic_error": ("positive", {}),
    "huber": ("real", {"delta": st.floats(0.05, 5.0)}),
    "log_cosh": ("real", {}),
    "cosine_similarity": ("real", {}),
    "poisson": ("positive", {}),
    "binary_crossentropy": ("binary", {"from_logits": BOOL, "label_smoothing": UNIT}),
    "binary_focal_crossentropy": (
        "binary",
        {
            "from_logits": BOOL,
            "label_smoothing": UNIT,
            "apply_class_balancing": BOOL,
            "alpha": UNIT,
            "gamma": st.floats(0.0, 4.0),
        },
    ),
    "categorical_crossentropy": ("onehot", {"from_logits": BOOL, "label_smoothing": UNIT}),
    "categorical_focal_crossentropy": (
        "onehot",
        {"from_logits": BOOL, "label_smoothing": UNIT, "alpha": UNIT, "gamma": st.floats(0.0, 4.0)},
    ),
    "sparse_categorical_crossentropy": ("sparse", {"from_logits": BOOL}),
    "categorical_generalized_cross_entropy": ("sparse_prob", {"q": st.floats(0.05, 1.0)}),
    "kl_divergence": ("dist", {}),
    "hinge": ("signs", {}),
    "squared_hinge": ("signs", {}),
    "categorical_hinge": ("onehot_logits", {}),
}
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def make_inputs(kind: str, shape: tuple[int, ...], rng: np.random.Generator, options: dict, extreme: bool):
    """Inputs of `shape` (last axis = features/classes) for a loss kind; `extreme` injects edge values."""
    c = shape[-1]
    logits = options.get("from_logits", False) or kind.endswith("logits")
    if kind in ("real", "signs"):
        y_true = rng.normal(size=shape) if kind == "real" else rng.choice([-1.0, 1.0], size=shape)
        y_pred = rng.normal(size=shape) * (1e4 if extreme else 2.0)
    elif kind == "positive":
        y_true = rng.uniform(0, 3, shape)
        y_pred = rng.uniform(0, 3, shape)
        if extreme:
            y_pred[..., 0] = 0.0
    elif kind == "binary":
        y_true = rng.integers(0, 2, shape).astype(np.float64)
        y_pred = rng.normal(size=shape) * (1e4 if extreme else 3) if logits else rng.uniform(0, 1, shape)
        if extreme and not logits:
            y_pred = np.round(y_pred)  # exact 0 and 1 probabilities
    elif kind.startswith("onehot"):
        y_true = np.eye(c)[rng.integers(0, c, shape[:-1])]
        z = rng.normal(size=shape) * (1e4 if extreme else 2)
        y_pred = z if logits else _softmax(z)
    elif kind.startswith("sparse"):
        y_true = rng.integers(0, c, shape[:-1])
        z = rng.normal(size=shape) * (1e4 if extreme else 2)
        y_pred = z if logits and kind == "sparse" else _softmax(z)
    elif kind == "dist":
        y_true = _softmax(rng.normal(size=shape) * (50 if extreme else 1))
        y_pred = _softmax(rng.normal(size=shape))
        if extreme:
            y_true[..., 0] = 0.0  # zero targets
    else:
        raise AssertionError(kind)
    return y_true, y_pred


@st.composite
def problems(draw, loss=None, min_batch=0):
    loss = loss or draw(st.sampled_from(sorted(LOSSES)))
    kind, opt_strategies = LOSSES[loss]
    rank = draw(st.integers(1 if kind in ("real", "positive", "binary", "signs") else 2, 4))
    dims = [draw(st.integers(min_batch, 4))] + [draw(st.integers(1, 4)) for _ in range(rank - 1)]
    if kind not in ("real", "positive", "binary", "signs", "dist"):
        dims[-1] = max(dims[-1], 2)  # classes
    options = {k: draw(s) for k, s in opt_strategies.items()}
    seed = draw(st.integers(0, 2**31 - 1))
    extreme = draw(st.booleans())
    rng = np.random.default_rng(seed)
    y_true, y_pred = make_inputs(kind, tuple(dims), rng, options, extreme)
    return loss, options, y_true, y_pred.astype(np.float32), extreme


def _fn(loss):
    return REGISTRY[loss][1]


def _cast_true(y_true, dtype=jnp.float32):
    return y_true if np.issubdtype(np.asarray(y_true).dtype, np.integer) else jnp.asarray(y_true, dtype)


@given(problems(min_batch=1))
def test_value_and_gradient_finite(problem):
    loss, options, y_true, y_pred, _ = problem
    if loss == "mean_absolute_percentage_error":
        y_true = np.where(np.abs(y_true) < 1e-3, 1.0, y_true)  # finite loss needs |y_true| > 0
    value, dy = jaxloss.value_and_grad(loss, **options)(_cast_true(y_true), y_pred)
    assert np.all(np.isfinite(np.asarray(value))), (loss, options, value)
    assert np.all(np.isfinite(np.asarray(dy))), (loss, options)
    assert dy.shape == y_pred.shape


@given(problems(min_batch=1))
def test_nan_input_shows_as_nan(problem):
    loss, options, y_true, y_pred, _ = problem
    y_pred = y_pred.copy()
    y_pred.reshape(-1)[0] = np.nan
    value = _fn(loss)(_cast_true(y_true), y_pred, reduction="sum", **options)
    assert np.isnan(np.asarray(value)), (loss, options)


@given(problems(min_batch=1))
def test_reduction_invariances(problem):
    loss, options, y_true, y_pred, extreme = problem
    assume(not extreme)
    fn = _fn(loss)
    y_true = _cast_true(y_true)
    per_sample = fn(y_true, y_pred, reduction="none", **options)
    total = fn(y_true, y_pred, reduction="sum", **options)
    mean = fn(y_true, y_pred, reduction="sum_over_batch_size", **options)
    assert_close(total, mean * per_sample.size, {"rtol": 1e-5, "atol": 1e-5})
    ones = np.ones(per_sample.shape, np.float32)
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none"):
        assert_close(
            fn(y_true, y_pred, sample_weight=ones, reduction=reduction, **options),
            fn(y_true, y_pred, reduction=reduction, **options),
        )
    w = np.random.default_rng(0).uniform(0.1, 2.0, per_sample.shape).astype(np.float32)
    assert_close(
        fn(y_true, y_pred, sample_weight=3.0 * w, reduction="sum", **options),
        3.0 * fn(y_true, y_pred, sample_weight=w, reduction="sum", **options),
        {"rtol": 1e-5, "atol": 1e-5},
    )
    if per_sample.ndim == 0:
        return  # Keras returns a scalar per-sample loss times its weight, unreduced
    assert_close(
        fn(y_true, y_pred, sample_weight=3.0 * w, reduction="mean_with_sample_weight", **options),
        fn(y_true, y_pred, sample_weight=w, reduction="mean_with_sample_weight", **options),
        {"rtol": 1e-5, "atol": 1e-6},
    )


@given(problems(min_batch=2))
def test_permuting_the_batch_permutes_none(problem):
    loss, options, y_true, y_pred, _ = problem
    fn = _fn(loss)
    perm = np.random.default_rng(1).permutation(y_pred.shape[0])
    out = fn(_cast_true(y_true), y_pred, reduction="none", **options)
    out_perm = fn(_cast_true(np.asarray(y_true)[perm]), y_pred[perm], reduction="none", **options)
    if out.ndim == 0:  # rank-1 inputs: one sample, whose mean is order-independent
        assert_close(out, out_perm)
    else:
        np.testing.assert_array_equal(np.asarray(out)[perm], np.asarray(out_perm))


@given(problems(loss="categorical_crossentropy"), st.floats(-50, 50))
def test_crossentropy_from_logits_shift_invariant(problem, shift):
    _, options, y_true, y_pred, extreme = problem
    assume(not extreme)
    options = {**options, "from_logits": True}
    fn = jaxloss.categorical_crossentropy
    assert_close(
        fn(y_true, y_pred + np.float32(shift), **options), fn(y_true, y_pred, **options), {"rtol": 1e-4, "atol": 1e-4}
    )
    labels = np.argmax(y_true, -1)
    sparse = jaxloss.sparse_categorical_crossentropy
    assert_close(
        sparse(labels, y_pred + np.float32(shift), from_logits=True),
        sparse(labels, y_pred, from_logits=True),
        {"rtol": 1e-4, "atol": 1e-4},
    )


@given(problems(), st.sampled_from(DTYPES[1:]))
def test_half_precision_equals_float32_on_rounded_input(problem, dtype):
    loss, options, y_true, y_pred, _ = problem
    if loss == "mean_absolute_percentage_error":
        y_true = np.where(np.abs(y_true) < 1e-3, 1.0, y_true)
    fn = _fn(loss)
    y_pred_h = jnp.asarray(y_pred, dtype)
    y_true_h = _cast_true(y_true, dtype)
    half = fn(y_true_h, y_pred_h, reduction="none", **options)
    assert half.dtype == jnp.float32
    full = fn(
        _cast_true(
            np.asarray(y_true_h, np.float32) if not np.issubdtype(np.asarray(y_true).dtype, np.integer) else y_true
        ),
        np.asarray(y_pred_h, np.float32),
        reduction="none",
        **options,
    )
    assert_close(half, full, F32)
    g = jaxloss.grad(loss, **options)(y_true_h, y_pred_h)
    assert g.dtype == dtype


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_empty_batch(loss):
    kind, _ = LOSSES[loss]
    shape = (0, 3)
    y_true, y_pred = make_inputs(kind, shape, np.random.default_rng(0), {}, False)
    fn = _fn(loss)
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none"):
        out = fn(_cast_true(y_true), y_pred.astype(np.float32), reduction=reduction)
        assert out.shape == (0,) and out.dtype == jnp.float32  # Keras returns the empty values
    dy = jax.grad(lambda p: jnp.sum(fn(_cast_true(y_true), p)))(jnp.asarray(y_pred, jnp.float32))
    assert dy.shape == shape


@given(problems(min_batch=1))
def test_float64_under_x64_matches_float32(problem):
    loss, options, y_true, y_pred, extreme = problem
    assume(not extreme)
    if loss == "mean_absolute_percentage_error":
        y_true = np.where(np.abs(y_true) < 1e-3, 1.0, y_true)
    fn = _fn(loss)
    want = fn(_cast_true(y_true), y_pred, reduction="none", **options)
    with jax.enable_x64(True):
        t64 = y_true if np.issubdtype(np.asarray(y_true).dtype, np.integer) else jnp.asarray(y_true, jnp.float64)
        p64 = jnp.asarray(y_pred, jnp.float64)
        got = fn(t64, p64, reduction="none", **options)
        assert got.dtype == jnp.float64
        g = jaxloss.grad(loss, **options)(t64, p64)
        assert g.dtype == jnp.float64 and np.all(np.isfinite(np.asarray(g)))
    assert_close(got, want, {"rtol": 1e-4, "atol": 1e-5})
