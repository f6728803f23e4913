"""The shared path: reductions, sample weights, masks, shapes, dtypes, get()."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._core import effective_weight, reduce, reduction_cotangent

from .tolerances import F32, assert_close

RNG = np.random.default_rng(0)
Y_TRUE = RNG.normal(size=(4, 3, 5)).astype(np.float32)
Y_PRED = RNG.normal(size=(4, 3, 5)).astype(np.float32)
PER_SAMPLE = np.mean((Y_TRUE - Y_PRED) ** 2, axis=-1)  # (4, 3)


@pytest.mark.parametrize(
    "reduction,expected",
    [
        ("sum", PER_SAMPLE.sum()),
        ("sum_over_batch_size", PER_SAMPLE.mean()),
        ("mean", PER_SAMPLE.mean()),
        ("mean_with_sample_weight", PER_SAMPLE.mean()),
        ("none", PER_SAMPLE),
        (None, PER_SAMPLE),
    ],
)
def test_reductions(reduction, expected):
    assert_close(jaxloss.mean_squared_error(Y_TRUE, Y_PRED, reduction=reduction), expected)


def test_prefix_sample_weight_broadcasts_from_the_left():
    w = np.array([1.0, 2.0, 0.0, 0.5], np.float32)  # (B,) for a (B, T) loss
    full = np.broadcast_to(w[:, None], PER_SAMPLE.shape)
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none"):
        got = jaxloss.mean_squared_error(Y_TRUE, Y_PRED, sample_weight=w, reduction=reduction)
        want = jaxloss.mean_squared_error(Y_TRUE, Y_PRED, sample_weight=full, reduction=reduction)
        assert_close(got, want)
    # The weighted mean divides by the sum of the broadcast weights.
    got = jaxloss.mean_squared_error(Y_TRUE, Y_PRED, sample_weight=w, reduction="mean_with_sample_weight")
    assert_close(got, (PER_SAMPLE * full).sum() / full.sum())


def test_scalar_sample_weight():
    got = jaxloss.mean_squared_error(Y_TRUE, Y_PRED, sample_weight=2.0, reduction="sum")
    assert_close(got, 2 * PER_SAMPLE.sum())


def test_wrong_axis_sample_weight_raises_even_when_sizes_agree():
    y = np.zeros((3, 3, 2), np.float32)  # per-sample loss (3, 3): a (3,) weight is a prefix...
    jaxloss.mean_squared_error(y, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"mean_squared_error: sample_weight must have.*\(3, 3\).*\(1, 3\)"):
        jaxloss.mean_squared_error(y, y, sample_weight=np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"sample_weight.shape=\(5,\)"):
        jaxloss.mean_squared_error(Y_TRUE, Y_PRED, sample_weight=np.ones(5))


@pytest.mark.parametrize(
    "shapes",
    [((5, 1), (1, 5)), ((5,), (4,)), ((2, 3), (2, 4)), ((3, 1, 2), (3, 2))],
)
def test_broadcast_only_shapes_raise(shapes):
    a, b = (np.zeros(s, np.float32) for s in shapes)
    pattern = rf"huber: y_true and y_pred must have the same shape; received y_true.shape={shapes[0]}".replace(
        "(", r"\("
    ).replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        jaxloss.huber(a, b)


def test_shape_guard_survives_chex_disable_asserts():
    chex.disable_asserts()
    try:
        with pytest.raises(ValueError, match="must have the same shape"):
            jaxloss.mean_squared_error(np.zeros((5, 1)), np.zeros((1, 5)))
    finally:
        chex.enable_asserts()


def test_rank_rule_n_against_n1():
    t = np.arange(4, dtype=np.float32)
    p = (t + 1.0)[:, None]
    assert jaxloss.mean_squared_error(t, p, reduction="none").shape == (4,)
    g = jaxloss.grad("mse")(t, p)
    assert g.shape == (4, 1)


@pytest.mark.parametrize("reduction", ["avg", "SUM", 3])
def test_unknown_reduction(reduction):
    with pytest.raises(ValueError, match=r"mean_squared_error: reduction must be one of .*received reduction="):
        jaxloss.mean_squared_error(Y_TRUE, Y_PRED, reduction=reduction)


@pytest.mark.parametrize("delta", [-1.0, 0.0, float("nan")])
def test_invalid_option_raises_before_tracing(delta):
    with pytest.raises(ValueError, match=r"huber: delta must lie in \(0, inf\]; received delta="):
        jaxloss.huber(Y_TRUE, Y_PRED, delta=delta)
    with pytest.raises(ValueError, match="huber: delta"):
        jaxloss.get("huber", delta=delta)


def test_traced_option_is_not_checked_and_does_not_recompile():
    f = jax.jit(lambda d: jaxloss.huber(Y_TRUE, Y_PRED, delta=d))
    assert_close(f(0.5), jaxloss.huber(Y_TRUE, Y_PRED, delta=0.5))
    # d/d(delta) through the custom JVP rule's option tangent
    g = jax.grad(lambda d: jaxloss.huber(Y_TRUE, Y_PRED, delta=d))(0.5)
    fd = (jaxloss.huber(Y_TRUE, Y_PRED, delta=0.5 + 1e-3) - jaxloss.huber(Y_TRUE, Y_PRED, delta=0.5 - 1e-3)) / 2e-3
    assert_close(g, fd, {"rtol": 1e-3, "atol": 1e-5})


def test_target_tangent_through_custom_rule():
    # d/d(y_true) of a loss that carries a custom JVP rule equals the plain formula's.
    def plain(t):
        e = Y_PRED - t
        return jnp.mean(jnp.mean(e + jax.nn.softplus(-2 * e) - jnp.log(2.0), axis=-1))

    got = jax.grad(lambda t: jaxloss.log_cosh(t, Y_PRED))(Y_TRUE)
    assert_close(got, jax.grad(plain)(Y_TRUE))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_computed_in_float32(dtype):
    t, p = Y_TRUE.astype(dtype), Y_PRED.astype(dtype)
    value = jaxloss.mean_squared_error(t, p)
    assert value.dtype == jnp.float32
    want = jaxloss.mean_squared_error(np.asarray(t, np.float32), np.asarray(p, np.float32))
    assert_close(value, want)
    g = jaxloss.grad("mse")(t, p)
    assert g.dtype == dtype


def test_float64_under_x64():
    with jax.enable_x64(True):
        v = jaxloss.mean_squared_error(Y_TRUE.astype(np.float64), Y_PRED.astype(np.float64))
        assert v.dtype == jnp.float64


def test_empty_batch_matches_keras_passthrough():
    z = np.zeros((0, 3), np.float32)
    for reduction in ("sum", "sum_over_batch_size", "none"):
        out = jaxloss.mean_squared_error(z, z, reduction=reduction)
        assert out.shape == (0,)
    out = jaxloss.mean_squared_error(np.zeros((0, 2, 3)), np.zeros((0, 2, 3)))
    assert out.shape == () and float(out) == 0.0


def test_mask_reduction_and_cotangent():
    values = jnp.arange(6.0).reshape(2, 3)
    mask = jnp.array([[True, False, True], [False, False, True]])
    for reduction, want in [
        ("sum", 0 + 2 + 5),
        ("sum_over_batch_size", (0 + 2 + 5) / 3),
        ("mean_with_sample_weight", (0 + 2 + 5) / 3),
    ]:
        w = effective_weight("t", values.shape, values.dtype, None, mask, reduction)
        assert_close(reduce(values, w, reduction), want, F32)
        g = jax.grad(lambda v: reduce(v, w, reduction))(values)
        assert_close(reduction_cotangent(values, w, reduction), g)
    none_valid = jnp.zeros_like(mask)
    w = effective_weight("t", values.shape, values.dtype, None, none_valid, "sum_over_batch_size")
    assert float(reduce(values, w, "sum_over_batch_size")) == 0.0


def test_get_resolves_names_aliases_and_classes():
    y = np.ones((2, 3), np.float32)
    assert jaxloss.get("mse")(y, y + 1) == 1.0
    assert jaxloss.get("MeanSquaredError")(y, y + 1) == 1.0
    assert jaxloss.get("mean_squared_error", reduction="sum")(y, y + 1) == 2.0
    assert jaxloss.get(jaxloss.huber, delta=0.5).options == {"delta": 0.5}
    for alias in ("mae", "mape", "msle", "logcosh"):
        jaxloss.get(alias)


def test_get_errors_list_valid_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'msq'; valid names are .*mean_squared_error"):
        jaxloss.get("msq")
    with pytest.raises(ValueError, match=r"huber has no option\(s\) \['alpha'\]; valid options are delta, reduction"):
        jaxloss.get("huber", alpha=1.0)


def test_works_inside_jit_vmap_checkpoint():
    f = jax.jit(jax.vmap(lambda t, p: jaxloss.huber(t, p)))
    out = f(Y_TRUE, Y_PRED)
    want = np.stack([jaxloss.huber(Y_TRUE[i], Y_PRED[i]) for i in range(4)])
    assert_close(out, want)
    g = jax.grad(jax.checkpoint(lambda p: jaxloss.log_cosh(Y_TRUE, p)))(Y_PRED)
    assert_close(g, jaxloss.analytic_grad("log_cosh")(Y_TRUE, Y_PRED))


def test_per_example_gradients_are_rows_of_the_sum_gradient():
    per_example = jax.vmap(jaxloss.grad("huber", reduction="sum"))(Y_TRUE, Y_PRED)
    whole = jaxloss.grad("huber", reduction="sum")(Y_TRUE, Y_PRED)
    assert_close(per_example, whole)
