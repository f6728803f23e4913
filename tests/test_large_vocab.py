"""linear_cross_entropy against the naive form that holds the (N, V) logits.

The reference below is written out here with ``jax.nn.log_softmax``: Keras's
sparse categorical crossentropy from logits of ``softcap(hidden @ weight + bias)``
with Keras's label smoothing (``1 - a`` on the label, ``a / V`` on every class),
the z-loss ``z_loss * logsumexp**2`` per valid token, ``ignore_class`` tokens left
out of the value and of the mean, and Keras's five reductions. Its gradients come
from plain autodiff. The issue's float32 bounds apply: loss relative error
<= 1e-6, gradient max relative error (``max|g - g_ref| / max|g_ref|``) <= 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._large_vocab import _linear_cross_entropy, default_chunk_size

from .tolerances import F32, assert_close

LOSS_RTOL = 1e-6
GRAD_RTOL = 1e-5
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
IGNORE = -100
MiB = 2**20


def naive(
    y_true,
    hidden,
    weight,
    bias=None,
    *,
    ignore_class=None,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_soft_cap=None,
    sample_weight=None,
    reduction="sum_over_batch_size",
):
    """The (N, V) form: logits, log_softmax, Keras's smoothing, mask and reductions."""
    logits = hidden.astype(jnp.float32) @ weight.astype(jnp.float32)
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)[None, :]
    if logit_soft_cap is not None:
        logits = logit_soft_cap * jnp.tanh(logits / logit_soft_cap)
    vocab = logits.shape[1]
    valid = jnp.ones(y_true.shape, bool) if ignore_class is None else y_true != ignore_class
    labels = jnp.where(valid, y_true, 0)
    target = (1.0 - label_smoothing) * jax.nn.one_hot(labels, vocab) + label_smoothing / vocab
    per_token = -jnp.sum(target * jax.nn.log_softmax(logits, axis=1), axis=1)
    per_token = per_token + z_loss * jnp.square(jax.nn.logsumexp(logits, axis=1))
    per_token = jnp.where(valid, per_token, 0.0)
    sw = jnp.ones(y_true.shape) if sample_weight is None else sample_weight
    if reduction in ("none", None):
        return per_token * sw
    weights = valid * sw
    total = jnp.sum(per_token * weights)
    if reduction == "sum":
        return total
    divisor = jnp.sum(weights) if reduction == "mean_with_sample_weight" else jnp.sum(valid)
    return jnp.where(divisor != 0, total / jnp.where(divisor != 0, divisor, 1.0), 0.0)


def rel_err(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    return float(np.max(np.abs(actual - expected))) / scale


def make(seed=0, n=37, d=16, v=50, ignored=(3, 10, 11), dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    hidden = jnp.asarray(rng.standard_normal((n, d)), dtype)
    weight = jnp.asarray(rng.standard_normal((d, v)) * 0.4, dtype)
    bias = jnp.asarray(rng.standard_normal(v) * 0.5, dtype)
    labels = rng.integers(0, v, n)
    labels[list(ignored)] = IGNORE
    sw = jnp.asarray(rng.uniform(0.2, 2.0, n), jnp.float32)
    return jnp.asarray(labels, jnp.int32), hidden, weight, bias, sw


def scalar(fn, reduction, n):
    """A scalar of the loss: the loss itself, or a fixed weighting of the per-token values."""
    if reduction in ("none", None):
        ct = jnp.asarray(np.random.default_rng(7).standard_normal(n), jnp.float32)
        return lambda *a: jnp.sum(ct * fn(*a))
    return fn


def check_against_naive(options, reduction, weighted, *, chunk_size=8, path="auto", data=None, bias=True):
    y, h, w, b, sw = make() if data is None else data
    b = b if bias else None
    sw = sw if weighted else None

    def ours(h, w, b):
        return _linear_cross_entropy(
            y, h, w, bias=b, sample_weight=sw, reduction=reduction, chunk_size=chunk_size, path=path, **options
        )

    def ref(h, w, b):
        return naive(y, h, w, b, sample_weight=sw, reduction=reduction, **options)

    value, expected = ours(h, w, b), ref(h, w, b)
    assert value.shape == expected.shape and value.dtype == jnp.float32
    assert rel_err(value, expected) <= LOSS_RTOL, (value, expected)
    argnums = (0, 1, 2) if bias else (0, 1)
    grads = jax.grad(scalar(ours, reduction, h.shape[0]), argnums)(h, w, b)
    expected_grads = jax.grad(scalar(ref, reduction, h.shape[0]), argnums)(h, w, b)
    for name, g, e in zip(("hidden", "weight", "bias")[: len(grads)], grads, expected_grads, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        assert rel_err(g, e) <= GRAD_RTOL, (name, rel_err(g, e))


OPTIONS = {
    "plain": {},
    "ignore": {"ignore_class": IGNORE},
    "smoothing": {"ignore_class": IGNORE, "label_smoothing": 0.2},
    "z_loss": {"ignore_class": IGNORE, "z_loss": 1e-2},
    "soft_cap": {"ignore_class": IGNORE, "logit_soft_cap": 1.5},
    "all": {"ignore_class": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3, "logit_soft_cap": 2.0},
}


def _data_without_ignored():
    return make(ignored=())


# --------------------------------------------------------------------------
# Values and gradients against the naive form
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_matches_naive_weighted(option, reduction):
    data = _data_without_ignored() if option == "plain" else None
    check_against_naive(OPTIONS[option], reduction, True, data=data)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "none"])
@pytest.mark.parametrize("option", ["plain", "all"])
def test_matches_naive_unweighted(option, reduction):
    data = _data_without_ignored() if option == "plain" else None
    check_against_naive(OPTIONS[option], reduction, False, data=data)


@pytest.mark.parametrize("option", ["soft_cap", "z_loss", "smoothing", "ignore"])
def test_each_option_changes_the_gradient(option):
    """The comparisons above are not vacuous: each option moves the gradient past the tolerance."""
    y, h, w, b, _ = make()
    base = {"ignore_class": IGNORE} if option != "ignore" else {}

    def grad_of(options):
        return jax.grad(lambda h: jaxloss.linear_cross_entropy(y, h, w, bias=b, chunk_size=8, **options))(h)

    assert rel_err(grad_of({**base, **OPTIONS[option]}), grad_of(base)) > 100 * GRAD_RTOL


@pytest.mark.parametrize("path", ["fused", "recompute"])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
def test_both_gradient_paths_match_naive(path, reduction):
    check_against_naive(OPTIONS["all"], reduction, True, path=path)


def test_without_bias():
    check_against_naive(OPTIONS["all"], "sum_over_batch_size", True, bias=False)
    check_against_naive(OPTIONS["all"], "none", False, bias=False)


@pytest.mark.parametrize(
    "n,chunk_size",
    [(37, 8), (37, 37), (37, 64), (37, 1), (36, 12), (5, 3), (1, 4)],
    ids=lambda x: str(x),
)
def test_any_number_of_tokens(n, chunk_size):
    """The last chunk is a window ending at N; rows it has already seen are masked."""
    y, h, w, b, sw = make(n=n, ignored=(0,) if n > 2 else ())
    check_against_naive(OPTIONS["all"], "sum", True, chunk_size=chunk_size, data=(y, h, w, b, sw))
    check_against_naive(OPTIONS["all"], "none", True, chunk_size=chunk_size, data=(y, h, w, b, sw))


@pytest.mark.parametrize("v", [2, 7, 129])
def test_any_vocabulary_size(v):
    data = make(v=v, ignored=(2,))
    check_against_naive(OPTIONS["all"], "sum_over_batch_size", True, data=data)


def test_a_single_class_costs_nothing():
    y, h, w, b, _ = make(v=1, ignored=())
    value, grads = jax.value_and_grad(lambda h, w, b: jaxloss.linear_cross_entropy(y, h, w, bias=b), (0, 1, 2))(h, w, b)
    assert float(value) == 0.0
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_default_chunk_size_matches_naive():
    y, h, w, b, _ = make()
    value = jaxloss.linear_cross_entropy(y, h, w, bias=b, **OPTIONS["all"])
    assert rel_err(value, naive(y, h, w, b, **OPTIONS["all"])) <= LOSS_RTOL


def test_default_chunk_size():
    assert default_chunk_size(10) == 1024
    assert default_chunk_size(11585) == 1024
    assert default_chunk_size(16384) == 512
    assert default_chunk_size(32000) == 256
    assert default_chunk_size(65536) == 256
    assert default_chunk_size(256000) == 256


# --------------------------------------------------------------------------
# Masking and reductions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
def test_all_ignored_gives_zero(reduction):
    y, h, w, b, sw = make()
    y = jnp.full_like(y, IGNORE)

    def loss(h, w):
        return _linear_cross_entropy(y, h, w, bias=b, sample_weight=sw, ignore_class=IGNORE, reduction=reduction)

    value = loss(h, w)
    np.testing.assert_array_equal(np.asarray(value), np.zeros(np.shape(value)))
    grads = jax.grad(scalar(loss, reduction, h.shape[0]), (0, 1))(h, w)
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_ignored_tokens_have_zero_value_and_gradient():
    y, h, w, b, _ = make()
    values = jaxloss.linear_cross_entropy(y, h, w, bias=b, ignore_class=IGNORE, reduction="none", chunk_size=8)
    ignored = np.asarray(y) == IGNORE
    assert np.all(np.asarray(values)[ignored] == 0.0) and np.all(np.asarray(values)[~ignored] > 0.0)
    dh = jax.grad(lambda h: jaxloss.linear_cross_entropy(y, h, w, bias=b, ignore_class=IGNORE, chunk_size=8))(h)
    assert np.all(np.asarray(dh)[ignored] == 0.0)


def test_mean_counts_valid_tokens_only():
    y, h, w, b, _ = make()
    per_token = jaxloss.linear_cross_entropy(y, h, w, bias=b, ignore_class=IGNORE, reduction="none")
    mean = jaxloss.linear_cross_entropy(y, h, w, bias=b, ignore_class=IGNORE)
    valid = int(np.sum(np.asarray(y) != IGNORE))
    assert_close(mean, np.sum(np.asarray(per_token)) / valid)


def test_sample_weight_shapes():
    y, h, w, _, sw = make()
    scalar_weight = jaxloss.linear_cross_entropy(y, h, w, sample_weight=2.0, reduction="sum")
    assert_close(scalar_weight, 2.0 * jaxloss.linear_cross_entropy(y, h, w, reduction="sum"))
    column = jaxloss.linear_cross_entropy(y, h, w, sample_weight=sw[:, None], reduction="sum")
    assert_close(column, jaxloss.linear_cross_entropy(y, h, w, sample_weight=sw, reduction="sum"))


def test_empty_batch():
    _, h, w, _, _ = make()
    out = jaxloss.linear_cross_entropy(jnp.zeros((0,), jnp.int32), h[:0], w)
    assert out.shape == (0,)


# --------------------------------------------------------------------------
# Gradients of the other inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["fused", "recompute"])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "none"])
def test_gradients_of_hyperparameters_and_sample_weight(reduction, path):
    y, h, w, b, sw = make()

    def ours(a, zl, cap, sw):
        out = _linear_cross_entropy(
            y,
            h,
            w,
            bias=b,
            ignore_class=IGNORE,
            label_smoothing=a,
            z_loss=zl,
            logit_soft_cap=cap,
            sample_weight=sw,
            reduction=reduction,
            chunk_size=8,
            path=path,
        )
        return jnp.sum(jnp.cos(out))

    def ref(a, zl, cap, sw):
        out = naive(
            y,
            h,
            w,
            b,
            ignore_class=IGNORE,
            label_smoothing=a,
            z_loss=zl,
            logit_soft_cap=cap,
            sample_weight=sw,
            reduction=reduction,
        )
        return jnp.sum(jnp.cos(out))

    args = (0.1, 1e-2, 2.0, sw)
    for name, g, e in zip(
        ("label_smoothing", "z_loss", "logit_soft_cap", "sample_weight"),
        jax.grad(ours, (0, 1, 2, 3))(*args),
        jax.grad(ref, (0, 1, 2, 3))(*args),
        strict=True,
    ):
        assert_close(g, e, F32, err_msg=name)


def test_forward_mode_is_not_supported():
    y, h, w, _, _ = make()
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda h: jaxloss.linear_cross_entropy(y, h, w), (h,), (h,))


# --------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------


def test_jit_with_traced_hyperparameters():
    y, h, w, b, _ = make()

    @jax.jit
    def loss(a, zl, cap):
        return jaxloss.linear_cross_entropy(
            y, h, w, bias=b, ignore_class=IGNORE, label_smoothing=a, z_loss=zl, logit_soft_cap=cap
        )

    for a, zl, cap in [(0.1, 1e-3, 2.0), (0.3, 0.0, 5.0)]:
        expected = naive(y, h, w, b, ignore_class=IGNORE, label_smoothing=a, z_loss=zl, logit_soft_cap=cap)
        assert rel_err(loss(a, zl, cap), expected) <= LOSS_RTOL


def test_vmap_over_a_leading_batch_axis():
    rng = np.random.default_rng(3)
    _, _, w, b, _ = make()
    hb = jnp.asarray(rng.standard_normal((3, 21, 16)), jnp.float32)
    yb = jnp.asarray(rng.integers(0, 50, (3, 21)), jnp.int32).at[1, 4].set(IGNORE)
    opts = OPTIONS["all"]

    def ours(hb, w, b):
        per_row = jax.vmap(lambda h, y: jaxloss.linear_cross_entropy(y, h, w, bias=b, chunk_size=8, **opts))(hb, yb)
        return jnp.sum(per_row * jnp.arange(1.0, 4.0))

    def ref(hb, w, b):
        per_row = jax.vmap(lambda h, y: naive(y, h, w, b, **opts))(hb, yb)
        return jnp.sum(per_row * jnp.arange(1.0, 4.0))

    assert rel_err(jax.jit(ours)(hb, w, b), ref(hb, w, b)) <= LOSS_RTOL
    for g, e in zip(jax.jit(jax.grad(ours, (0, 1, 2)))(hb, w, b), jax.grad(ref, (0, 1, 2))(hb, w, b), strict=True):
        assert rel_err(g, e) <= GRAD_RTOL


def test_checkpoint_and_composition():
    y, h, w, b, _ = make()
    opts = OPTIONS["all"]
    ours = jax.checkpoint(lambda h, w, b: jaxloss.linear_cross_entropy(y, h, w, bias=b, chunk_size=8, **opts))

    def outer(fn):
        return lambda h, w, b: jnp.square(fn(jnp.tanh(h), w, b))

    ref = outer(lambda h, w, b: naive(y, h, w, b, **opts))
    grads = jax.jit(jax.grad(outer(ours), (0, 1, 2)))(h, w, b)
    for g, e in zip(grads, jax.grad(ref, (0, 1, 2))(h, w, b), strict=True):
        assert rel_err(g, e) <= GRAD_RTOL


def test_bfloat16_at_a_large_vocabulary():
    """bfloat16 at V = 256000: statistics, dhidden and dweight accumulate in float32."""
    rng = np.random.default_rng(5)
    n, d, v = 80, 32, 256000
    h = jnp.asarray(rng.standard_normal((n, d)), jnp.bfloat16)
    w = jnp.asarray(rng.standard_normal((d, v)) * 0.2, jnp.bfloat16)
    y = jnp.asarray(rng.integers(0, v, n), jnp.int32).at[0].set(v - 1).at[1].set(IGNORE)
    opts = {"ignore_class": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-4, "logit_soft_cap": 30.0}

    def ours(h, w):
        return jaxloss.linear_cross_entropy(y, h, w, chunk_size=32, **opts)

    def ref(h, w):  # the same bfloat16 values, multiplied in float32
        return naive(y, h.astype(jnp.float32), w.astype(jnp.float32), **opts)

    value, (dh, dw) = jax.value_and_grad(ours, (0, 1))(h, w)
    assert value.dtype == jnp.float32 and dh.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    expected, (eh, ew) = jax.value_and_grad(ref, (0, 1))(h.astype(jnp.float32), w.astype(jnp.float32))
    # float32 statistics: the value is as accurate as the float32 naive form of the same inputs;
    # the gradients carry one bfloat16 rounding of the logits' gradient and of the result.
    assert rel_err(value, expected) <= 1e-5
    assert rel_err(dh, eh) <= 1e-2 and rel_err(dw, ew) <= 1e-2


def test_bfloat16_memory_at_a_large_vocabulary():
    """Compile-only, bfloat16 at V = 256000: memory grows with N like the hidden states, not like N * V.

    (XLA:CPU multiplies bfloat16 in float32, so it holds a float32 copy of the weight
    and of each block; a GPU does not.)
    """
    d, v = 256, 256000
    spec = jax.ShapeDtypeStruct

    def temp(n):
        def loss(h, w, y):
            return jaxloss.linear_cross_entropy(y, h, w, ignore_class=IGNORE, logit_soft_cap=30.0)

        lowered = jax.jit(jax.value_and_grad(loss, (0, 1))).lower(
            spec((n, d), jnp.bfloat16), spec((d, v), jnp.bfloat16), spec((n,), jnp.int32)
        )
        return lowered.compile().memory_analysis().temp_size_in_bytes

    small, large = temp(1024), temp(4096)
    assert large - small <= 8 * (4096 - 1024) * d + MiB  # float32 dhidden and bfloat16 copies
    assert large < 4096 * v * 4  # the naive form's float32 logits alone


# --------------------------------------------------------------------------
# Memory: XLA's own accounting of the compiled programs (deterministic)
# --------------------------------------------------------------------------


def _temp_bytes(n, d, v, chunk, *, grad, path="auto", **options):
    spec = jax.ShapeDtypeStruct

    def loss(h, w, y):
        return jnp.sum(_linear_cross_entropy(y, h, w, chunk_size=chunk, path=path, **options))

    fn = jax.value_and_grad(loss, (0, 1)) if grad else loss
    lowered = jax.jit(fn).lower(spec((n, d), jnp.float32), spec((d, v), jnp.float32), spec((n,), jnp.int32))
    return lowered.compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("n", [8192, 32768])
def test_value_and_grad_memory(n):
    d, v, chunk = 1024, 65536, 256
    budget = d * v * 4 + chunk * v * 4 + 4 * n * d + MiB
    assert _temp_bytes(n, d, v, chunk, grad=True) <= budget
    opts = {"ignore_class": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-4, "logit_soft_cap": 30.0}
    assert _temp_bytes(n, d, v, chunk, grad=True, **opts) <= budget


@pytest.mark.parametrize("n", [8192, 32768])
def test_forward_memory(n):
    d, v, chunk = 1024, 65536, 256
    assert _temp_bytes(n, d, v, chunk, grad=False) <= chunk * v * 4 + 8 * n + MiB


def test_recompute_path_memory():
    n, d, v, chunk = 8192, 1024, 65536, 256
    budget = d * v * 4 + chunk * v * 4 + 4 * n * d + MiB
    assert _temp_bytes(n, d, v, chunk, grad=True, reduction="none") <= budget


def test_naive_form_needs_the_logits():
    """The yardstick: the naive value-and-gradient holds (N, V) float32 logits and their gradient."""
    n, d, v = 2048, 256, 16384
    spec = jax.ShapeDtypeStruct
    naive_temp = (
        jax.jit(jax.value_and_grad(lambda h, w, y: naive(y, h, w), (0, 1)))
        .lower(spec((n, d), jnp.float32), spec((d, v), jnp.float32), spec((n,), jnp.int32))
        .compile()
        .memory_analysis()
        .temp_size_in_bytes
    )
    assert naive_temp >= n * v * 4
    assert _temp_bytes(n, d, v, 256, grad=True) < naive_temp


# --------------------------------------------------------------------------
# Option and shape checks
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"label_smoothing": 1.5},
            r"linear_cross_entropy: label_smoothing must lie in \[0, 1\]; received label_smoothing=1.5",
        ),
        ({"label_smoothing": -0.1}, r"label_smoothing must lie in \[0, 1\]; received label_smoothing=-0.1"),
        ({"z_loss": -1.0}, r"linear_cross_entropy: z_loss must lie in \[0, inf\]; received z_loss=-1.0"),
        (
            {"logit_soft_cap": 0.0},
            r"linear_cross_entropy: logit_soft_cap must lie in \(0, inf\]; received logit_soft_cap=0.0",
        ),
        ({"logit_soft_cap": -2.0}, r"logit_soft_cap must lie in \(0, inf\]; received logit_soft_cap=-2.0"),
        ({"chunk_size": 0}, r"linear_cross_entropy: chunk_size must be a positive int or None; received chunk_size=0"),
        ({"chunk_size": 2.5}, r"linear_cross_entropy: chunk_size must be an int or None; received chunk_size=2.5"),
        (
            {"ignore_class": 1.0},
            r"linear_cross_entropy: ignore_class must be an int or None; received ignore_class=1.0",
        ),
        ({"reduction": "avg"}, r"linear_cross_entropy: reduction must be one of .*; received reduction='avg'"),
    ],
)
def test_option_errors(kwargs, match):
    y, h, w, _, _ = make()
    with pytest.raises(ValueError, match=match):
        jaxloss.linear_cross_entropy(y, h, w, **kwargs)


def test_shape_errors():
    y, h, w, b, sw = make()
    cases = [
        ((y, h[:, :, None], w), {}, r"hidden must have shape \(N, d\); received hidden.shape=\(37, 16, 1\)"),
        ((y, h, w[None]), {}, r"weight must have shape \(d, V\); received weight.shape=\(1, 16, 50\)"),
        ((y[:, None], h, w), {}, r"y_true must have shape \(N,\); received y_true.shape=\(37, 1\)"),
        ((y[:5], h, w), {}, r"y_true must have shape \(N,\) .*received y_true.shape=\(5,\), hidden.shape=\(37, 16\)"),
        (
            (y, h, w[:8]),
            {},
            r"weight must have shape \(d, V\) .*received hidden.shape=\(37, 16\), weight.shape=\(8, 50\)",
        ),
        (
            (y, h, w),
            {"bias": b[:7]},
            r"bias must have shape \(V,\) .*received bias.shape=\(7,\), weight.shape=\(16, 50\)",
        ),
        ((y, h, w), {"sample_weight": sw[:5]}, r"sample_weight must have .*received sample_weight.shape=\(5,\)"),
        ((y.astype(jnp.float32), h, w), {}, r"y_true must hold integer class indices; received y_true.dtype=float32"),
        ((y, h.astype(jnp.int32), w), {}, r"hidden must be a floating-point array; received hidden.dtype=int32"),
    ]
    for args, kwargs, match in cases:
        with pytest.raises(ValueError, match=r"linear_cross_entropy: " + match):
            jaxloss.linear_cross_entropy(*args, **kwargs)


def test_axis_name_needs_a_vocabulary_split_weight():
    y, h, w, _, _ = make()
    mesh = jax.make_mesh((1,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))
    spec = jax.sharding.PartitionSpec

    def body(y, h, w):
        return jaxloss.linear_cross_entropy(y, h, w, axis_name="model")

    with pytest.raises(ValueError, match=r"linear_cross_entropy: axis_name='model' needs weight split along the vocab"):
        jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(spec(), spec(), spec()), out_specs=spec()))(y, h, w)


# --------------------------------------------------------------------------
# Eight host devices: vocabulary-parallel shard_map and batch-sharded jit
# --------------------------------------------------------------------------

MESH_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    sys.path.insert(0, os.getcwd())
    import jaxloss

    assert len(jax.devices()) == 8
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    rng = np.random.default_rng(0)
    n, d, v = 26, 8, 44  # 13 tokens per data shard, 11 classes per model shard
    h = jnp.asarray(rng.standard_normal((n, d)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((d, v)) * 0.5, jnp.float32)
    b = jnp.asarray(rng.standard_normal(v) * 0.5, jnp.float32)
    y = rng.integers(0, v, n)
    y[[2, 15]] = -100
    y[[0, 1, 13, 14]] = [0, v - 1, 10, 11]  # labels on the first, last and a shard's edges
    y = jnp.asarray(y, jnp.int32)
    sw = jnp.asarray(rng.uniform(0.5, 2.0, n), jnp.float32)
    ct = jnp.asarray(rng.standard_normal(n), jnp.float32)
    opts = dict(ignore_class=-100, label_smoothing=0.1, z_loss=1e-3, logit_soft_cap=3.0, chunk_size=5)
    specs = (P("data"), P("data", None), P(None, "model"), P("model"), P("data"))

    def rel(a, e):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30))

    def single(reduction):
        def f(h, w, b):
            out = jaxloss.linear_cross_entropy(y, h, w, bias=b, sample_weight=sw, reduction=reduction, **opts)
            return jnp.sum(ct * out) if reduction == "none" else out
        return f

    def sharded(reduction):
        def body(y, h, w, b, sw):
            out = jaxloss.linear_cross_entropy(
                y, h, w, bias=b, sample_weight=sw, reduction=reduction, axis_name="model", **opts)
            return out if reduction == "none" else jax.lax.psum(out, "data")
        out_specs = P("data") if reduction == "none" else P()
        def f(h, w, b):
            out = jax.shard_map(body, mesh=mesh, in_specs=specs, out_specs=out_specs)(y, h, w, b, sw)
            return jnp.sum(ct * out) if reduction == "none" else out
        return f

    results = {}
    for reduction in ("sum", "none"):
        v1, g1 = jax.value_and_grad(single(reduction), (0, 1, 2))(h, w, b)
        v2, g2 = jax.jit(jax.value_and_grad(sharded(reduction), (0, 1, 2)))(h, w, b)
        results["vocab_parallel_" + reduction] = [rel(v2, v1)] + [rel(a, e) for a, e in zip(g2, g1)]

    # Forward only, per-token values, and the psum'd statistics' collectives.
    def per_token(y, h, w, b):
        return jaxloss.linear_cross_entropy(y, h, w, bias=b, reduction="none", axis_name="model", **opts)
    fwd = jax.jit(jax.shard_map(per_token, mesh=mesh, in_specs=specs[:4], out_specs=P("data")))
    expected = jaxloss.linear_cross_entropy(y, h, w, bias=b, reduction="none", **opts)
    results["vocab_parallel_forward"] = [rel(fwd(y, h, w, b), expected)]
    hlo = fwd.lower(y, h, w, b).compile().as_text()
    results["collectives"] = [sum(" all-reduce(" in line for line in hlo.splitlines())]

    # Batch-sharded inputs under plain jit (no shard_map): 40 tokens over 8 devices, chunks of 6.
    hb = jnp.asarray(rng.standard_normal((40, d)), jnp.float32)
    yb = jnp.asarray(rng.integers(0, v, 40), jnp.int32).at[7].set(-100)
    swb = jnp.asarray(rng.uniform(0.5, 2.0, 40), jnp.float32)
    tokens = NamedSharding(mesh, P(("data", "model")))
    hs = jax.device_put(hb, NamedSharding(mesh, P(("data", "model"), None)))
    ys, sws = jax.device_put(yb, tokens), jax.device_put(swb, tokens)
    def batch(h, w, b, y, sw):
        return jaxloss.linear_cross_entropy(y, h, w, bias=b, sample_weight=sw, **{**opts, "chunk_size": 6})
    v1, g1 = jax.value_and_grad(batch, (0, 1, 2))(hb, w, b, yb, swb)
    v2, g2 = jax.jit(jax.value_and_grad(batch, (0, 1, 2)))(hs, w, b, ys, sws)
    results["batch_sharded"] = [rel(v2, v1)] + [rel(a, e) for a, e in zip(g2, g1)]
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def mesh_results():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", MESH_SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_vocab_parallel_matches_single_device(mesh_results, reduction):
    value_err, *grad_errs = mesh_results[f"vocab_parallel_{reduction}"]
    assert value_err <= LOSS_RTOL
    assert max(grad_errs) <= GRAD_RTOL, grad_errs


def test_vocab_parallel_forward(mesh_results):
    assert mesh_results["vocab_parallel_forward"][0] <= LOSS_RTOL
    # Per chunk: a pmax of the row maxima, then one psum of (sum exp, label logit, sum of logits).
    assert mesh_results["collectives"][0] == 2


def test_batch_sharded_jit_matches_single_device(mesh_results):
    value_err, *grad_errs = mesh_results["batch_sharded"]
    assert value_err <= LOSS_RTOL
    assert max(grad_errs) <= GRAD_RTOL, grad_errs
