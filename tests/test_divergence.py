"""jaxloss._divergence: the KL divergence's log-input and log-target forms against optax and PyTorch,
zero targets, option checks.

The declared examples' Keras/optax parity and gradients run in tests/test_registry.py.
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

from .reference import reduce_ref
from .tolerances import F32, assert_close

REDUCTION_IDS = [str(r) for r in REDUCTIONS]


CCE, SCCE = jaxloss.categorical_crossentropy, jaxloss.sparse_categorical_crossentropy


def torch_kl_div(xp, log_input, target, log_target):
    """PyTorch's ``kl_div(input, target, log_target, reduction="none")`` (``xlogy`` for 0 log 0)."""
    if log_target:
        return xp.exp(target) * (target - log_input)
    safe = xp.where(target > 0, target, 1.0)
    return xp.where(target > 0, target * xp.log(safe), 0.0) - target * log_input


def _rng(seed=0):
    return np.random.default_rng(seed)


def _soft(rng, shape):
    p = rng.uniform(0.1, 1.0, shape)
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


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

        want = jax.jit(jax.grad(reference))(jnp.asarray(log_q, jnp.float64))
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
