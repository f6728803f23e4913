"""Property-based tests (hypothesis) over every registered loss and every example it declares.

Hypothesis draws a loss and one of its examples, the batch size (size-1 batches
included), a seed for numpy, scalar options within their declared ranges, and
whether to draw extreme valid values (exact 0/1 probabilities, logits of 1e4, ...)
from the loss's input domains. CI uses the bounded "ci" profile (tests/conftest.py);
``HYPOTHESIS_PROFILE=long`` runs more examples.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jaxloss
from jaxloss._core import REGISTRY, ArrayOption, Example, LossSpec, PerClass, Scalar
from jaxloss._inputs import draw_inputs

from . import reference
from .tolerances import F32, assert_close

# A loss that computes itself (linear_cross_entropy) is property-tested in its own suite.
EXAMPLES = [(spec, ex) for _, spec in sorted(REGISTRY.items()) if not spec.direct for ex in spec.examples]
DTYPES = [jnp.bfloat16, jnp.float16]


def _along_batch(spec: LossSpec, example: Example, name: str) -> bool:
    """A per-class array option whose class axis is the batch axis (its length is the batch's)."""
    kind = spec.options[name].kind
    if not isinstance(kind, PerClass) or np.ndim(example.options[name]) == 0:
        return False
    # A loss without the named axis option keeps its classes on the last axis.
    axis = kind.axis if isinstance(kind.axis, int) else {**spec.defaults, **example.options}.get(kind.axis, -1)
    return axis % len(example.shape) == 0


def _resizable(spec: LossSpec, example: Example) -> bool:
    """Inputs drawn from the domains, no option tied to the batch's shape: the batch size may vary."""
    return (
        example.draw is None
        and example.true_shape is None
        and not any(isinstance(spec.options[k].kind, ArrayOption) for k in example.options)
        and not any(_along_batch(spec, example, k) for k in example.options)
    )


def _scalar_values(kind: Scalar) -> st.SearchStrategy:
    low = -2.0 if kind.low is None else kind.low
    high = low + 3.0 if kind.high is None else min(kind.high, low + 3.0)
    return st.floats(low, high, exclude_min=kind.low_open, exclude_max=kind.high_open, allow_nan=False)


@st.composite
def problems(draw, *, min_batch: int = 1, extremes: bool = True):
    spec, example = draw(st.sampled_from(EXAMPLES))
    options = dict(example.options)
    for name, option in spec.options.items():
        # Vary the scalar options the example leaves at their defaults, within their ranges.
        if isinstance(option.kind, Scalar) and name not in options and not option.kind.optional and draw(st.booleans()):
            flag = spec.requires.get(name)
            if flag is None or {**spec.defaults, **options}.get(flag[0]) == flag[1]:
                options[name] = draw(_scalar_values(option.kind))
    example = Example(**{**example.__dict__, "options": options})
    extreme = extremes and example.draw is None and draw(st.booleans())
    shape = None
    if _resizable(spec, example):
        shape = (draw(st.integers(min_batch, 4)), *example.shape[1:])
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    y_true, y_pred = draw_inputs(spec, example, rng, shape=shape, extreme=extreme)
    y_true = np.asarray(y_true)
    if not np.issubdtype(y_true.dtype, np.integer):
        y_true = y_true.astype(np.float32)
    return spec, options, y_true, np.asarray(y_pred, np.float32), extreme


def _call(spec, options, y_true, y_pred, **kwargs):
    return spec.function(y_true, y_pred, **options, **kwargs)


def _local(spec: LossSpec) -> bool:
    """Each sample's value reads only its own rows (no batch-wide coupling)."""
    return spec.vjp is None and spec.name not in ("hinge", "squared_hinge")


@given(problems())
def test_value_and_gradient_finite(problem):
    spec, options, y_true, y_pred, _ = problem
    value, dy = jaxloss.value_and_grad(spec.function, **options)(y_true, y_pred)
    assert np.all(np.isfinite(np.asarray(value))), (spec.name, options, value)
    assert np.all(np.isfinite(np.asarray(dy))), (spec.name, options)
    assert dy.shape == y_pred.shape and dy.dtype == y_pred.dtype


def _unmasked_index(options, y_pred):
    """The last entry of y_pred that a ``where`` class mask keeps (a masked logit takes no part)."""
    where = options.get("where")
    if where is None:
        return y_pred.size - 1
    keep = np.broadcast_to(np.asarray(where, bool), y_pred.shape).reshape(-1)
    return int(np.flatnonzero(keep)[-1])


@given(problems(extremes=False))
def test_nan_input_shows_in_value_and_gradient(problem):
    spec, options, y_true, y_pred, _ = problem
    y_pred = y_pred.copy()
    y_pred.reshape(-1)[_unmasked_index(options, y_pred)] = np.nan
    value, dy = jaxloss.value_and_grad(spec.function, reduction="sum", **options)(y_true, y_pred)
    assert np.isnan(np.asarray(value)), (spec.name, options)
    assert np.any(np.isnan(np.asarray(dy))), (spec.name, options)


@given(problems(extremes=False))
def test_reduction_invariances(problem):
    spec, options, y_true, y_pred, _ = problem
    per_sample = _call(spec, options, y_true, y_pred, reduction="none")
    if spec.mask is None:
        total = _call(spec, options, y_true, y_pred, reduction="sum")
        mean = _call(spec, options, y_true, y_pred, reduction="sum_over_batch_size")
        assert_close(total, mean * max(per_sample.size, 1), {"rtol": 1e-5, "atol": 1e-5})
    ones = np.ones(per_sample.shape, np.float32)
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none"):
        assert_close(
            _call(spec, options, y_true, y_pred, sample_weight=ones, reduction=reduction),
            _call(spec, options, y_true, y_pred, reduction=reduction),
        )
    w = np.random.default_rng(0).uniform(0.1, 2.0, per_sample.shape).astype(np.float32)
    assert_close(
        _call(spec, options, y_true, y_pred, sample_weight=3.0 * w, reduction="sum"),
        3.0 * _call(spec, options, y_true, y_pred, sample_weight=w, reduction="sum"),
        {"rtol": 1e-5, "atol": 1e-5},
    )
    if per_sample.ndim:
        assert_close(
            _call(spec, options, y_true, y_pred, sample_weight=3.0 * w, reduction="mean_with_sample_weight"),
            _call(spec, options, y_true, y_pred, sample_weight=w, reduction="mean_with_sample_weight"),
            {"rtol": 1e-5, "atol": 1e-6},
        )


@given(problems(min_batch=2, extremes=False))
def test_permuting_the_batch_permutes_the_values(problem):
    spec, options, y_true, y_pred, _ = problem
    out = np.asarray(_call(spec, options, y_true, y_pred, reduction="none"))
    assume(_local(spec) and out.ndim >= 1 and out.shape[0] == y_pred.shape[0] and y_true.shape[:1] == y_pred.shape[:1])
    assume(not any(np.ndim(options.get(k)) and k in ("label_lengths", "logit_lengths") for k in options))
    perm = np.random.default_rng(1).permutation(y_pred.shape[0])
    # Per-sample array options (gaussian_nll's variance, a (N, C) where mask) move with their samples.
    moved = {
        k: np.asarray(v)[perm]
        if isinstance(spec.options[k].kind, ArrayOption) and np.ndim(v) == y_pred.ndim and np.shape(v)[0] == len(perm)
        else v
        for k, v in options.items()
    }
    out_perm = np.asarray(_call(spec, moved, y_true[perm], y_pred[perm], reduction="none"))
    np.testing.assert_array_equal(out[perm], out_perm)


@given(problems(extremes=False), st.sampled_from(DTYPES))
def test_half_precision_equals_float32_on_the_rounded_input(problem, dtype):
    spec, options, y_true, y_pred, _ = problem
    y_pred_h = jnp.asarray(y_pred, dtype)
    integer = np.issubdtype(y_true.dtype, np.integer)
    y_true_h = y_true if integer else jnp.asarray(y_true, dtype)
    half = _call(spec, options, y_true_h, y_pred_h, reduction="none")
    assert half.dtype == jnp.float32
    full = _call(
        spec,
        options,
        y_true if integer else np.asarray(y_true_h, np.float32),
        np.asarray(y_pred_h, np.float32),
        reduction="none",
    )
    assert_close(half, full, F32)
    assert jaxloss.grad(spec.function, **options)(y_true_h, y_pred_h).dtype == dtype


@given(problems(extremes=False))
def test_float64_under_x64_matches_float32(problem):
    spec, options, y_true, y_pred, _ = problem
    want = _call(spec, options, y_true, y_pred, reduction="none")
    with jax.enable_x64(True):
        t64 = y_true if np.issubdtype(y_true.dtype, np.integer) else jnp.asarray(y_true, jnp.float64)
        p64 = jnp.asarray(y_pred, jnp.float64)
        got = _call(spec, options, t64, p64, reduction="none")
        assert got.dtype == jnp.float64
        g = jaxloss.grad(spec.function, **options)(t64, p64)
        assert g.dtype == jnp.float64 and np.all(np.isfinite(np.asarray(g)))
    assert_close(got, want, {"rtol": 1e-4, "atol": 1e-5})


@pytest.mark.parametrize(
    "spec,example",
    [pytest.param(s, e, id=f"{s.name}{e.id}") for s, e in EXAMPLES if _resizable(s, e) and s.examples[0] is e],
)
def test_empty_batch(spec, example):
    shape = (0, *example.shape[1:])
    y_true, y_pred = draw_inputs(spec, example, np.random.default_rng(0), shape=shape)
    y_pred = np.asarray(y_pred, np.float32)
    # A batch-wide loss (dice and tversky over every axis, as Keras's) has one value even for
    # no samples: the float64 reference's. Per-sample losses sum to 0 over no samples.
    reductions = ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none")
    outs = {r: spec.function(y_true, y_pred, reduction=r, **example.options) for r in reductions}
    batch_wide = outs["none"].shape == ()
    for reduction, out in outs.items():
        assert out.dtype == jnp.float32
        if batch_wide:
            want = reference.loss(spec.name, y_true, y_pred, sample_weight=None, reduction=reduction, **example.options)
            assert_close(out, want, F32, reduction)
        else:
            assert out.size == 0 or (out.shape == () and float(out) == 0.0), (reduction, out)
    dy = jax.grad(lambda p: jnp.sum(spec.function(y_true, p, **example.options)))(jnp.asarray(y_pred))
    assert dy.shape == shape and math.prod(dy.shape) == 0


@pytest.mark.parametrize("batch", [1, 4])
def test_every_resizable_example_takes_any_batch_size(batch):
    """The strategy's resizing keeps each example valid (traced only: shapes and option checks)."""
    rng = np.random.default_rng(0)
    for spec, example in EXAMPLES:
        if _resizable(spec, example):
            shape = (batch, *example.shape[1:])
            y_true, y_pred = draw_inputs(spec, example, rng, shape=shape, extreme=False)
            out = jax.eval_shape(
                lambda t, p, s=spec: _call(s, example.options, t, p), y_true, np.asarray(y_pred, np.float32)
            )
            assert out.shape == (), (spec.name, example.options)
