"""ctc: optax and PyTorch on the options beyond Keras, brute force, infeasible labels, the labels
rule, log 0 as -inf, shapes and options.

Keras/optax/PyTorch parity on every declared example and the shared gradient checks live in
tests/test_registry.py.
"""

from __future__ import annotations

import itertools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss

from .tolerances import F32, assert_close
from .torch_oracle import F, require_torch, torch


def _data(seed, batch=4, time=9, classes=6, max_len=4, blank=0):
    """Right-padded (with ``blank``) labels of lengths 0..max_len, logits, and the lengths."""
    rng = np.random.default_rng(seed)
    non_blank = np.array([k for k in range(classes) if k != blank])
    labels = np.full((batch, max_len), blank, np.int32)
    lengths = np.array([max_len, 0] + list(rng.integers(0, max_len + 1, batch - 2)), np.int32)
    for b, n in enumerate(lengths):
        labels[b, :n] = rng.choice(non_blank, n)
    if max_len >= 2:
        labels[0, 1] = labels[0, 0]  # a repeat
    logits = rng.normal(size=(batch, time, classes)).astype(np.float32)
    return labels, logits, lengths


def _paddings(lengths, size):
    return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def _optax(labels, logits, label_lengths, logit_lengths=None, blank=0):
    logit_lengths = np.full(logits.shape[0], logits.shape[1]) if logit_lengths is None else logit_lengths
    return optax.ctc_loss(
        logits,
        _paddings(logit_lengths, logits.shape[1]),
        labels,
        _paddings(label_lengths, labels.shape[1]),
        blank_id=blank,
    )


# --------------------------------------------------------------------------
# Values: optax, brute force
# --------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [0, 1, 5])
def test_blank_index_matches_optax(blank):
    labels, logits, lengths = _data(0, blank=blank)
    ours = jaxloss.ctc(labels, logits, blank_index=blank, reduction="none")
    assert_close(ours, _optax(labels, logits, lengths, blank=blank), F32)


@pytest.mark.parametrize("blank", [0, 3])
def test_lengths_match_optax(blank):
    _, logits, _ = _data(1, batch=5, time=10, blank=blank)
    # No padding value: entries past a label's length are ignored whatever they hold.
    labels = np.random.default_rng(7).choice([k for k in range(6) if k != blank], (5, 4)).astype(np.int32)
    label_lengths = np.array([4, 0, 2, 3, 1])
    logit_lengths = np.array([10, 2, 7, 8, 4])
    ours = jaxloss.ctc(
        labels, logits, blank_index=blank, label_lengths=label_lengths, logit_lengths=logit_lengths, reduction="none"
    )
    theirs = _optax(labels, logits, label_lengths, logit_lengths, blank=blank)
    assert np.all(np.isfinite(np.asarray(ours)))
    assert_close(ours, theirs, F32)


def _brute_force(label, logits):
    """-log of the sum over every path of length T that collapses to ``label`` (blank 0)."""
    probs = np.exp(logits - np.log(np.sum(np.exp(logits), -1, keepdims=True)))
    time, classes = logits.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=time):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if collapsed == list(label):
            total += np.prod([probs[t, k] for t, k in enumerate(path)])
    return -np.log(total)


@pytest.mark.parametrize("label", [[1, 2], [1, 1], [2, 2, 1], [], [1, 2, 1]])
def test_matches_brute_force(label):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 3))
    padded = np.array([label + [0] * (3 - len(label))], np.int32)
    with jax.enable_x64(True):
        ours = jaxloss.ctc(padded, jnp.asarray(logits[None], jnp.float64), reduction="none")
        assert_close(ours, [_brute_force(label, logits)], {"rtol": 1e-12, "atol": 1e-12})


def test_doc_example_counts_paths():
    # Uniform logits: 5 of the 27 paths of length 3 collapse to [1, 2].
    assert_close(jaxloss.ctc(jnp.array([[1, 2, 0]]), jnp.zeros((1, 3, 3))), np.log(27 / 5), F32)


# --------------------------------------------------------------------------
# Lengths: ignored frames and label entries
# --------------------------------------------------------------------------


def test_frames_past_logit_lengths_are_ignored():
    labels, logits, _ = _data(2)
    logit_lengths = np.array([9, 3, 5, 7])
    mask = (np.arange(9)[None, :] >= logit_lengths[:, None])[:, :, None]
    changed = np.where(mask, 50.0 * np.random.default_rng(0).normal(size=logits.shape), logits).astype(np.float32)
    base = jaxloss.ctc(labels, logits, logit_lengths=logit_lengths, reduction="none")
    assert_close(jaxloss.ctc(labels, changed, logit_lengths=logit_lengths, reduction="none"), base, F32)
    for grad in (jaxloss.analytic_grad, jaxloss.grad):
        g = np.asarray(grad(jaxloss.ctc, logit_lengths=logit_lengths)(labels, logits))
        assert np.all(g[np.broadcast_to(mask, g.shape)] == 0.0)
        assert np.all(np.abs(g[~np.broadcast_to(mask, g.shape)]) > 0.0)


def test_label_entries_past_label_lengths_are_ignored():
    labels, logits, lengths = _data(4)
    junk = np.where(np.arange(4)[None, :] >= lengths[:, None], 99, labels).astype(np.int32)
    base = jaxloss.ctc(labels, logits, reduction="none")
    ours = jaxloss.ctc(junk, logits, label_lengths=lengths, reduction="none")
    assert_close(ours, base, F32)
    g = jaxloss.analytic_grad(jaxloss.ctc, label_lengths=lengths)(junk, logits)
    assert_close(g, jaxloss.analytic_grad(jaxloss.ctc)(labels, logits), F32)


def test_traced_lengths_under_jit_and_vmap():
    labels, logits, lengths = _data(5)
    logit_lengths = np.array([9, 4, 6, 8])

    @jax.jit
    def f(label_lengths, logit_lengths):
        return jaxloss.ctc(labels, logits, label_lengths=label_lengths, logit_lengths=logit_lengths, reduction="none")

    expected = _optax(labels, logits, lengths, logit_lengths)
    assert_close(f(jnp.asarray(lengths), jnp.asarray(logit_lengths)), expected, F32)
    per_example = jax.vmap(lambda t, p: jaxloss.ctc(t[None], p[None], reduction="sum"))(labels, logits)
    assert_close(per_example, _optax(labels, logits, lengths), F32)


# --------------------------------------------------------------------------
# Infeasible alignments
# --------------------------------------------------------------------------

# Row 0 needs 6 frames ([1, 1, 2, 2]: two repeats), row 1 needs 4: with 5 frames row 0 is infeasible.
_INFEASIBLE = np.array([[1, 1, 2, 2], [1, 2, 3, 0]], np.int32)


def _infeasible_logits():
    return np.random.default_rng(6).normal(size=(2, 5, 4)).astype(np.float32)


def test_infeasible_is_inf_and_zero_infinity_is_zero():
    logits = _infeasible_logits()
    values = np.asarray(jaxloss.ctc(_INFEASIBLE, logits, reduction="none"))
    assert values[0] == np.inf and np.isfinite(values[1])
    zeroed = np.asarray(jaxloss.ctc(_INFEASIBLE, logits, zero_infinity=True, reduction="none"))
    assert zeroed[0] == 0.0 and zeroed[1] == values[1]
    assert jaxloss.ctc(_INFEASIBLE, logits, reduction="sum") == np.inf
    assert_close(jaxloss.ctc(_INFEASIBLE, logits, zero_infinity=True), values[1] / 2, F32)
    # Too few frames by logit_lengths alone: [1, 2, 3] in 2 frames.
    short = jaxloss.ctc(_INFEASIBLE, logits, logit_lengths=np.array([5, 2]), zero_infinity=True, reduction="none")
    assert np.all(np.asarray(short) == 0.0)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_infeasible_gradient_is_zero_and_others_unchanged(zero_infinity):
    logits = _infeasible_logits()
    feasible_only = jaxloss.analytic_grad(jaxloss.ctc, reduction="sum")(_INFEASIBLE[1:], logits[1:])
    for grad in (jaxloss.analytic_grad, jaxloss.grad):
        g = np.asarray(grad(jaxloss.ctc, zero_infinity=zero_infinity, reduction="sum")(_INFEASIBLE, logits))
        assert np.all(np.isfinite(g))
        assert np.all(g[0] == 0.0)
        assert_close(g[1:], feasible_only, F32)


def test_keras_gives_finite_value_where_ctc_gives_inf():
    # The documented difference: Keras (and optax) use log(0) ~ -1e5, so an impossible label costs ~1e5.
    keras = pytest.importorskip("keras")
    logits = _infeasible_logits()
    theirs = np.asarray(keras.losses.CTC(reduction=None)(_INFEASIBLE, logits))
    assert 1e4 < theirs[0] < 1e6
    ours = np.asarray(jaxloss.ctc(_INFEASIBLE, logits, reduction="none"))
    assert ours[0] == np.inf
    assert_close(ours[1], theirs[1], F32)


# --------------------------------------------------------------------------
# Numerics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_extreme_logits_stay_finite(scale):
    labels, logits, _ = _data(8)
    logits = np.clip(scale * logits, -scale, scale).astype(np.float32)
    value = jaxloss.ctc(labels, logits, reduction="none")
    closed = jaxloss.analytic_grad(jaxloss.ctc)(labels, logits)
    auto = jaxloss.grad(jaxloss.ctc)(labels, logits)
    assert np.all(np.isfinite(np.asarray(value))) and np.all(np.asarray(value) >= 0)
    assert np.all(np.isfinite(np.asarray(closed))) and np.all(np.isfinite(np.asarray(auto)))
    assert_close(closed, auto, F32)
    with jax.enable_x64(True):
        exact = jaxloss.ctc(labels, jnp.asarray(logits, jnp.float64), reduction="none")
    assert_close(value, exact, F32)


def test_gradient_rows_sum_to_zero():
    # softmax and the occupancies each sum to 1 over the classes at every frame.
    labels, logits, _ = _data(9)
    g = jaxloss.analytic_grad(jaxloss.ctc, reduction="sum")(labels, logits)
    assert_close(jnp.sum(g, axis=-1), np.zeros(g.shape[:2]), {"rtol": 0.0, "atol": 1e-6})


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_computes_in_float32(dtype):
    labels, logits, _ = _data(10)
    half = jnp.asarray(logits, dtype)
    value = jaxloss.ctc(labels, half)
    assert value.dtype == jnp.float32
    assert_close(value, jaxloss.ctc(labels, np.asarray(half, np.float32)), F32)
    g = jaxloss.analytic_grad(jaxloss.ctc)(labels, half)
    assert g.dtype == dtype and g.shape == half.shape


def test_get_resolves_keras_class_name():
    labels, logits, _ = _data(11)
    loss = jaxloss.get("CTC", reduction="sum", blank_index=0)
    assert_close(loss(labels, logits), jnp.sum(jaxloss.ctc(labels, logits, reduction="none")), F32)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("disable_chex", [False, True])
@pytest.mark.parametrize(
    ("labels_shape", "logits_shape"),
    [((4,), (4, 6, 5)), ((4, 3, 1), (4, 6, 5)), ((4, 3), (4, 6)), ((4, 3), (4, 6, 5, 1)), ((4, 3), (3, 6, 5))],
)
def test_bad_shapes_raise(labels_shape, logits_shape, disable_chex):
    labels = np.ones(labels_shape, np.int32)
    logits = np.zeros(logits_shape, np.float32)
    pattern = rf"ctc: .*y_true\.shape={re.escape(str(labels_shape))}, y_pred\.shape={re.escape(str(logits_shape))}"
    if disable_chex:
        chex.disable_asserts()
    try:
        with pytest.raises(ValueError, match=pattern):
            jaxloss.ctc(labels, logits)
    finally:
        chex.enable_asserts()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blank_index": 5}, r"ctc: blank_index=5 is out of range for 5 classes"),
        ({"blank_index": -1}, r"ctc: blank_index must be an int >= 0; received blank_index=-1"),
        ({"blank_index": 1.0}, r"ctc: blank_index must be an int; received blank_index=1.0"),
        ({"zero_infinity": 1}, r"ctc: zero_infinity must be True or False; received zero_infinity=1"),
        ({"label_lengths": np.array([1, 2])}, r"ctc: label_lengths must have shape \(batch,\) = \(4,\); received"),
        ({"logit_lengths": np.array([1, -2, 3, 0])}, r"ctc: logit_lengths must hold non-negative integers; received"),
        ({"label_lengths": np.array([1.5, 2, 3, 0])}, r"ctc: label_lengths must hold integers; received"),
        ({"label_lengths": [1, 2, 3, 0, 1]}, r"ctc: label_lengths must have shape \(batch,\) = \(4,\)"),
    ],
)
def test_bad_options_raise(options, message):
    labels = np.ones((4, 3), np.int32)
    logits = np.zeros((4, 6, 5), np.float32)
    with pytest.raises(ValueError, match=message):
        jaxloss.ctc(labels, logits, **options)


# --------------------------------------------------------------------------
# PyTorch, live: infeasible labels, zero_infinity, blank_index
# --------------------------------------------------------------------------


def _torch_ctc(labels, logits, blank=0, label_lengths=None, logit_lengths=None, zero_infinity=False):
    require_torch()
    batch, time = logits.shape[:2]
    targets = torch.as_tensor(labels, dtype=torch.int64)
    target_lengths = (targets != blank).sum(1) if label_lengths is None else torch.as_tensor(label_lengths)
    input_lengths = torch.full((batch,), time) if logit_lengths is None else torch.as_tensor(logit_lengths)
    log_probs = F.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).transpose(0, 1)
    return F.ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank=blank, reduction="none", zero_infinity=zero_infinity
    ).numpy()


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_infeasible_matches_torch(zero_infinity):
    logits = _infeasible_logits()
    ours = np.asarray(jaxloss.ctc(_INFEASIBLE, logits, zero_infinity=zero_infinity, reduction="none"))
    theirs = _torch_ctc(_INFEASIBLE, logits, zero_infinity=zero_infinity)
    assert ours[0] == theirs[0] == (0.0 if zero_infinity else np.inf)
    assert_close(ours[1], theirs[1], F32)


@pytest.mark.parametrize("blank", [0, 2, 5])
def test_lengths_and_blank_match_torch(blank):
    _, logits, _ = _data(12, batch=5, time=10, blank=blank)
    labels = np.random.default_rng(8).choice([k for k in range(6) if k != blank], (5, 4)).astype(np.int32)
    label_lengths, logit_lengths = np.array([4, 0, 2, 3, 1]), np.array([10, 2, 7, 8, 4])
    ours = jaxloss.ctc(
        labels, logits, blank_index=blank, label_lengths=label_lengths, logit_lengths=logit_lengths, reduction="none"
    )
    theirs = _torch_ctc(labels, logits, blank, label_lengths, logit_lengths)
    assert_close(ours, theirs, F32)


# --------------------------------------------------------------------------
# The labels rule: an entry inside a label that names no class gives NaN for its sample
# --------------------------------------------------------------------------


@pytest.mark.parametrize("label", [6, 99, -1, 2.5, np.nan])
def test_label_naming_no_class_gives_nan(label):
    # Out-of-range labels used to be clipped into range and score another class.
    labels, logits, _ = _data(13)
    bad = labels.astype(np.float32 if isinstance(label, float) else np.int32)
    bad[0, 1] = label  # inside row 0's full-length label
    base = np.asarray(jaxloss.ctc(labels, logits, reduction="none"))
    values = np.asarray(jaxloss.ctc(bad, logits, reduction="none"))
    assert np.isnan(values[0])
    assert_close(values[1:], base[1:], F32)
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(jaxloss.ctc, reduction="sum")(bad, logits))
        assert np.all(np.isnan(g[0])), grad.__name__
        assert_close(g[1:], np.asarray(grad(jaxloss.ctc, reduction="sum")(labels, logits))[1:], F32)


def test_integral_float_labels_equal_integer_labels():
    labels, logits, _ = _data(14)
    assert_close(
        jaxloss.ctc(labels.astype(np.float32), logits, reduction="none"), jaxloss.ctc(labels, logits, reduction="none")
    )


def test_lengths_out_of_range_give_nan():
    # Concrete or traced, a length beyond max_len or time names no label or frames: NaN for its sample.
    labels, logits, _ = _data(15)
    label_lengths, logit_lengths = np.array([1, 5, 0, 2]), np.array([9, 9, 10, 9])
    values = np.asarray(
        jaxloss.ctc(labels, logits, label_lengths=label_lengths, logit_lengths=logit_lengths, reduction="none")
    )
    assert np.isnan(values[1]) and np.isnan(values[2]) and np.all(np.isfinite(values[[0, 3]]))

    @jax.jit
    def traced(label_lengths):
        return jaxloss.ctc(labels, logits, label_lengths=label_lengths, reduction="none")

    values = np.asarray(traced(jnp.array([1, -1, 7, 2])))
    assert np.isnan(values[1]) and np.isnan(values[2]) and np.all(np.isfinite(values[[0, 3]]))


# --------------------------------------------------------------------------
# log 0 is -inf: no collision with logits of -1e30
# --------------------------------------------------------------------------


def test_huge_negative_logits_are_not_log_zero():
    # Every path through the label's class has a log-probability of about -1e31: the loss is 1e31.
    # With -1e30 as log 0, the impossible states outranked the real ones and gave 1e30.
    logits = np.zeros((1, 3, 3), np.float32)
    logits[:, :, 1] = -1e31
    value = float(jaxloss.ctc(np.array([[1, 0]]), logits))
    assert_close(value, 1e31, {"rtol": 1e-6, "atol": 0.0})
    torch_value = _torch_ctc(np.array([[1, 0]]), logits)
    assert_close(value, torch_value, {"rtol": 1e-6, "atol": 0.0})
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(jaxloss.ctc)(np.array([[1, 0]]), logits))
        assert np.all(np.isfinite(g)), grad.__name__
        # Every frame pushes the label's class up (the old -1e30 form gave it 0 at every frame).
        assert np.all(g[0, :, 1] < 0) and np.all(np.abs(g.sum(-1)) < 1e-6), (grad.__name__, g)


def test_impossible_states_get_no_occupancy():
    # A -1e30 logit on the blank at every frame: the only path of [1, 2] in 2 frames is (1, 2).
    logits = np.random.default_rng(16).normal(size=(1, 2, 4)).astype(np.float32)
    logits[:, :, 0] = -1e30
    g = np.asarray(jaxloss.analytic_grad(jaxloss.ctc, reduction="sum")(np.array([[1, 2]]), logits))
    probs = np.exp(logits[0] - logits[0].max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    want = probs - np.eye(4)[[1, 2]]
    assert_close(g[0], want, F32)
    assert_close(jaxloss.grad(jaxloss.ctc, reduction="sum")(np.array([[1, 2]]), logits)[0], want, F32)


def test_nan_logit_gives_nan():
    labels, logits, _ = _data(17)
    logits[2, 3, 1] = np.nan
    values = np.asarray(jaxloss.ctc(labels, logits, reduction="none"))
    assert np.isnan(values[2]) and np.all(np.isfinite(values[[0, 1, 3]]))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(jaxloss.ctc, reduction="sum")(labels, logits))
        assert np.any(np.isnan(g[2])) and np.all(np.isfinite(g[[0, 1, 3]])), grad.__name__


def test_empty_batch_passes_through():
    out = jaxloss.ctc(np.zeros((0, 3), np.int32), np.zeros((0, 5, 4), np.float32))
    assert out.shape == (0,)
