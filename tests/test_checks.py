"""jaxloss.checked: runtime value checks, eagerly and under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxloss

PROBS = np.full((2, 3), 1 / 3, np.float32)


def _raises(fn, *args, match, **kwargs):
    with pytest.raises(checkify.JaxRuntimeError, match=match):
        fn(*args, **kwargs)


def test_valid_inputs_pass_and_equal_the_plain_loss():
    safe = jaxloss.checked(jaxloss.sparse_categorical_crossentropy)
    labels = np.array([0, 2])
    np.testing.assert_allclose(safe(labels, PROBS), jaxloss.sparse_categorical_crossentropy(labels, PROBS), rtol=1e-6)


def test_label_out_of_range_names_loss_argument_and_index():
    safe = jaxloss.checked("sparse_categorical_crossentropy")
    _raises(
        safe,
        np.array([0, 3]),
        PROBS,
        match=r"jaxloss.sparse_categorical_crossentropy: y_true must hold class indices in \[0, 3\); first offending index \(1,\), value 3",
    )
    _raises(safe, np.array([-1, 0]), PROBS, match=r"index \(0,\), value -1")


def test_ignore_class_is_allowed():
    safe = jaxloss.checked("sparse_categorical_crossentropy")
    safe(np.array([-1, 1]), PROBS, ignore_class=-1)


def test_probability_range_and_row_sums():
    safe = jaxloss.checked("categorical_crossentropy")
    y_true = np.eye(3, dtype=np.float32)[[0, 1]]
    bad = PROBS.copy()
    bad[1, 2] = 1.5
    _raises(
        safe,
        y_true,
        bad,
        match=r"categorical_crossentropy: y_pred must hold probabilities in \[0, 1\]; first offending index \(1, 2\), value 1.5",
    )
    unnormalized = np.full((2, 3), 0.2, np.float32)
    _raises(safe, y_true, unnormalized, match=r"y_pred rows along axis -1 must sum to 1 .*index \(0,\), value 0.6")
    # from logits nothing of this applies
    safe(y_true, unnormalized * 10, from_logits=True)


def test_non_negative_targets():
    for loss in ("poisson", "mean_squared_logarithmic_error"):
        _raises(
            jaxloss.checked(loss),
            np.array([[1.0, -2.0]]),
            np.ones((1, 2), np.float32),
            match=rf"jaxloss.{loss}: y_true must be non-negative; first offending index \(0, 1\), value -2.0",
        )


def test_nan_and_inf_anywhere():
    safe = jaxloss.checked(jaxloss.huber)
    y = np.zeros((2, 2), np.float32)
    _raises(safe, y, np.array([[0.0, np.nan], [0.0, 0.0]], np.float32), match=r"huber: y_pred must be finite.*\(0, 1\)")
    _raises(safe, np.array([[0.0, 0.0], [np.inf, 0.0]], np.float32), y, match=r"huber: y_true must be finite.*\(1, 0\)")
    _raises(safe, y, y, sample_weight=np.array([1.0, np.nan], np.float32), match=r"huber: sample_weight must be finite")


def test_raises_under_the_callers_jit():
    safe = jaxloss.checked("poisson")
    step = jax.jit(lambda t, p: safe(t, p))
    assert np.isfinite(step(np.ones((1, 2), np.float32), np.ones((1, 2), np.float32)))
    with pytest.raises(Exception, match=r"jaxloss.poisson: y_true must be non-negative"):
        jax.block_until_ready(step(np.array([[-1.0, 1.0]], np.float32), np.ones((1, 2), np.float32)))


def test_gradients_flow_through_checked():
    safe = jaxloss.checked("huber")
    t = np.zeros((2, 3), np.float32)
    p = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(jax.grad(lambda q: safe(t, q))(p), jaxloss.grad("huber")(t, p), rtol=1e-6)


def test_log_inputs_and_masked_logits_are_understood():
    log_p = np.log(np.array([[0.2, 0.8], [0.5, 0.5]], np.float32))
    target = np.array([[0.0, 1.0], [0.5, 0.5]], np.float32)
    kl = jaxloss.checked("kl_divergence")
    kl(target, log_p, log_input=True)  # log-probabilities are not outside [0, 1] errors
    log_target = np.where(target > 0, np.log(np.maximum(target, 1e-30)), -np.inf).astype(np.float32)
    kl(log_target, log_p, log_input=True, log_target=True)  # log 0 = -inf is allowed
    _raises(
        kl,
        target,
        log_p + 1.0,
        log_input=True,
        match=r"kl_divergence: y_pred rows along axis -1 must sum to 1 .* after exp",
    )
    cce = jaxloss.checked("categorical_crossentropy")
    logits = np.array([[1.0, -np.inf, 0.5]], np.float32)
    where = np.array([[True, False, True]])
    cce(np.array([[1.0, 0.0, 0.0]], np.float32), logits, from_logits=True, where=where)
    _raises(cce, np.array([[1.0, 0.0, 0.0]], np.float32), logits, from_logits=True, match=r"y_pred must be finite")
