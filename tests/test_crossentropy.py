"""jaxloss._crossentropy: deliberate differences from Keras, the options beyond Keras (class weights,
where masks, z-loss, soft cap, pos_weight) against optax and PyTorch, option checks, masks, dtypes, and the
log-sum-exp forms of jaxloss._logsumexp.

Keras, optax and PyTorch parity of every declared example and the gradient checks run registry-driven in
tests/test_registry.py; this file covers what those cannot.
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
from .tolerances import F32, HALF, assert_close


def _rng(seed=0):
    return np.random.default_rng(seed)


def _log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _finite(x):
    return bool(np.all(np.isfinite(np.asarray(x, np.float64))))


MASKED_LOGITS = np.array([[-np.inf, 2.0, 0.0, 1.0], [1.0, -np.inf, 0.5, -np.inf]], np.float32)


MASKED_LABELS = np.array([1, 2])


def _masked_reference():
    """Crossentropy over the unmasked classes only, and its gradient (0 at the masked ones)."""
    values, grads = [], np.zeros(MASKED_LOGITS.shape)
    for i, (row, label) in enumerate(zip(MASKED_LOGITS, MASKED_LABELS, strict=True)):
        keep = np.isfinite(row)
        log_p = _log_softmax(row[keep])
        position = int(np.sum(keep[:label]))
        values.append(-log_p[position])
        g = np.exp(log_p)
        g[position] -= 1.0
        grads[i, keep] = g
    return np.array(values), grads


BIG = 1e4


SATURATED = {
    "binary_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, -BIG, BIG]])),
    "binary_focal_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, -BIG, BIG]])),
    "categorical_crossentropy": (np.array([[0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, 0.0]])),
    "categorical_focal_crossentropy": (np.array([[0.0, 1.0, 0.0]]), np.array([[BIG, -BIG, 0.0]])),
    "sparse_categorical_crossentropy": (np.array([1]), np.array([[BIG, -BIG, 0.0]])),
}


def _option_variants(losses, smoothing=True):
    """Each loss with its defaults, label smoothing where it has it, and gamma < 1 for the focal ones."""
    out = []
    for loss in sorted(losses):
        out.append((loss, {}))
        if smoothing and not loss.startswith(("sparse", "kl", "categorical_generalized")):
            out.append((loss, {"label_smoothing": 0.1}))
        if "focal" in loss:
            out.append((loss, {"gamma": 0.5}))
    return out


EDGES = {
    "binary_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0, 1.0]])),
    "binary_focal_crossentropy": (np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0, 1.0]])),
    "categorical_crossentropy": (np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "categorical_focal_crossentropy": (
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
        np.array([[0.0, 1.0, 0.0]] * 2),
    ),
    "sparse_categorical_crossentropy": (np.array([1, 0]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "categorical_generalized_cross_entropy": (np.array([1, 0]), np.array([[0.0, 1.0, 0.0]] * 2)),
    "kl_divergence": (np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), np.array([[0.0, 1.0, 0.0]] * 2)),
}


SMOOTHED = ["binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy"]


SMOOTHED += ["categorical_focal_crossentropy"]


ALL = {
    "binary_crossentropy": ({}, "binary"),
    "binary_focal_crossentropy": ({"from_logits": True}, "binary"),
    "categorical_crossentropy": ({"label_smoothing": 0.1}, "onehot"),
    "categorical_focal_crossentropy": ({}, "onehot"),
    "sparse_categorical_crossentropy": ({"from_logits": True, "ignore_class": 0}, "labels"),
    "categorical_generalized_cross_entropy": ({}, "labels"),
    "kl_divergence": ({}, "onehot"),
}


def _inputs(kind, rng=None, shape=(4, 3)):
    rng = rng or _rng()
    y_pred = rng.uniform(0.2, 0.8, shape).astype(np.float32)
    y_pred /= y_pred.sum(-1, keepdims=True) if kind != "binary" else 1.0
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)
    if kind == "labels":
        return labels, y_pred
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float32), y_pred
    return np.eye(shape[-1], dtype=np.float32)[labels], y_pred


def _sparse_reference(labels, z, ax, a, zl, ignore):
    log_q = jax.nn.log_softmax(z, axis=ax)
    classes = z.shape[ax]
    hot = jnp.expand_dims(labels, ax) == jax.lax.broadcasted_iota(jnp.int32, z.shape, ax)
    t = jnp.where(hot, 1.0 - a, 0.0) + a / classes
    lse = jax.nn.logsumexp(z, axis=ax)
    values = -jnp.sum(t * log_q, axis=ax) + zl * lse**2
    return values if ignore is None else jnp.where(labels != ignore, values, 0.0)


REDUCTION_IDS = [str(r) for r in REDUCTIONS]


SCALAR_REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"]


CCE, SCCE = jaxloss.categorical_crossentropy, jaxloss.sparse_categorical_crossentropy


def log_softmax(xp, z, axis=-1):
    m = xp.max(z, axis=axis, keepdims=True)
    return z - m - xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))


def torch_cross_entropy(xp, labels, logits, weight, ignore_index=-100, label_smoothing=0.0, sample_weight=None):
    """PyTorch's ``cross_entropy(logits, labels, weight, ignore_index, reduction="none")`` and its
    ``"mean"`` divisor weights ``weight[y_i]`` (0 at ignored positions); smoothing as in our contract:
    the label's weight times the smoothed loss."""
    classes = logits.shape[-1]
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    log_q = log_softmax(xp, logits)
    nll = -xp.take_along_axis(log_q, safe[:, None], axis=-1)[:, 0]
    loss = (1.0 - label_smoothing) * nll - label_smoothing * xp.sum(log_q, axis=-1) / classes
    w = xp.asarray(weight)[safe] * valid
    if sample_weight is not None:
        w = w * sample_weight
    return w * loss, w, valid.sum()


def torch_soft_cross_entropy(xp, targets, logits, weight):
    """PyTorch's ``cross_entropy`` with class-probability targets and ``weight``: ``-sum_c w_c y_c log q_c``."""
    return -xp.sum(xp.asarray(weight) * targets * log_softmax(xp, logits), axis=-1)


def torch_bce_with_logits(xp, t, z, pos_weight):
    """PyTorch's ``binary_cross_entropy_with_logits(z, t, pos_weight=pw, reduction="none")``."""
    log_sig = -xp.logaddexp(0.0, -z)
    log_one_minus = -xp.logaddexp(0.0, z)
    return -(pos_weight * t * log_sig + (1.0 - t) * log_one_minus)


def _logits(rng, shape, scale=3.0):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def _soft(rng, shape):
    p = rng.uniform(0.1, 1.0, shape)
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def _one_hot(labels, classes):
    return np.eye(classes, dtype=np.float32)[labels]


WEIGHT = np.array([0.5, 2.0, 1.0, 0.0, 1.5], np.float32)


def _mask(rng, shape, full_row=True):
    mask = rng.uniform(size=shape) > 0.35
    mask[..., 0] = True  # every row keeps a class
    if full_row:
        mask[1] = False  # ... but one row, fully masked: value and gradient 0
    return mask


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_minus_inf_logit_contributes_zero(loss):
    y_true = np.eye(4, dtype=np.float32)[MASKED_LABELS] if loss.startswith("categorical") else MASKED_LABELS
    fn = jaxloss.get(loss, from_logits=True, reduction="none")
    values, grads = _masked_reference()
    assert_close(fn(y_true, MASKED_LOGITS), values, F32)
    autodiff = jaxloss.grad(loss, from_logits=True, reduction="sum")(y_true, MASKED_LOGITS)
    closed = jaxloss.analytic_grad(loss, from_logits=True, reduction="sum")(y_true, MASKED_LOGITS)
    for g in (autodiff, closed):
        assert _finite(g)
        assert_close(g, grads, F32)
    # Forward mode and second order through the custom JVP stay finite too.
    f = lambda z: fn(y_true, z).sum()  # noqa: E731
    assert_close(jax.jacfwd(f)(jnp.asarray(MASKED_LOGITS)), grads, F32)
    assert _finite(jax.hessian(f)(jnp.asarray(MASKED_LOGITS)))


@pytest.mark.parametrize("loss, options", _option_variants(SATURATED), ids=str)
def test_gradients_finite_at_saturated_logits(loss, options):
    y_true, logits = SATURATED[loss]
    y_true = y_true.astype(np.int32 if loss.startswith("sparse") else np.float32)
    logits = logits.astype(np.float32)
    value, g = jaxloss.value_and_grad(loss, from_logits=True, **options)(y_true, logits)
    closed = jaxloss.analytic_grad(loss, from_logits=True, **options)(y_true, logits)
    assert _finite(value) and _finite(g) and np.any(np.asarray(g) != 0)
    assert_close(g, closed, F32)


@pytest.mark.parametrize("loss, options", _option_variants(EDGES), ids=str)
def test_gradients_finite_at_probability_edges(loss, options):
    y_true, y_pred = EDGES[loss]
    integer = loss.startswith("sparse") or "generalized" in loss
    y_true = y_true.astype(np.int32 if integer else np.float32)
    y_pred = y_pred.astype(np.float32)
    assert _finite(jaxloss.get(loss, **options)(y_true, y_pred))
    g = jaxloss.grad(loss, **options)(y_true, y_pred)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    assert _finite(g) and _finite(closed)
    assert_close(g, closed, F32)


@pytest.mark.parametrize("ignore_class", [None, 2])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
def test_sparse_any_axis_matches_keras_on_moved_axes(axis, from_logits, ignore_class):
    rng = _rng()
    shape = (3, 5, 4)
    y_pred = rng.uniform(0.1, 1.0, shape).astype(np.float32)
    if from_logits:
        y_pred = rng.normal(size=shape).astype(np.float32)
    moved = np.moveaxis(y_pred, axis, -1)
    labels = rng.integers(0, shape[axis], moved.shape[:-1]).astype(np.int32)
    labels.flat[::4] = 2
    options = {"from_logits": from_logits, "ignore_class": ignore_class}
    for reduction in ("none", "sum_over_batch_size"):
        ours = jaxloss.sparse_categorical_crossentropy(labels, y_pred, axis=axis, reduction=reduction, **options)
        theirs = keras.losses.SparseCategoricalCrossentropy(reduction=reduction, **options)(labels, moved)
        assert_close(ours, theirs, F32)
    # Gradients: those on the moved input, moved back.
    g_axis = jaxloss.grad("sparse_categorical_crossentropy", axis=axis, **options)(labels, y_pred)
    g_last = jaxloss.grad("sparse_categorical_crossentropy", **options)(labels, moved)
    assert_close(g_axis, np.moveaxis(np.asarray(g_last), -1, axis), F32)
    closed = jaxloss.analytic_grad("sparse_categorical_crossentropy", axis=axis, **options)(labels, y_pred)
    assert_close(closed, g_axis, F32)


def test_sparse_keras_rejects_other_axes():
    # The difference documented: Keras's JAX backend refuses axis != -1 (if this starts passing, update the docs).
    with pytest.raises(ValueError, match="same shape up until the last dimension"):
        keras.losses.SparseCategoricalCrossentropy(axis=1)(np.zeros((2, 4), np.int32), np.ones((2, 3, 4)) / 3)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "categorical_focal_crossentropy"])
def test_categorical_smoothing_on_other_axis_counts_that_axis(loss, from_logits):
    # Keras smooths with shape[-1] whatever the axis; the class count is shape[axis] here,
    # which equals Keras on the moved input.
    rng = _rng()
    y_pred = rng.uniform(0.1, 1.0, (2, 3, 5)).astype(np.float32)
    y_true = np.moveaxis(np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 5))], -1, 1)
    options = {"from_logits": from_logits, "label_smoothing": 0.2}
    ours = jaxloss.get(loss, axis=1, reduction="none", **options)(y_true, y_pred)
    keras_cls = getattr(keras.losses, jaxloss.get(loss).spec.keras_class)
    theirs = keras_cls(reduction=None, **options)(np.moveaxis(y_true, 1, -1), np.moveaxis(y_pred, 1, -1))
    assert_close(ours, theirs, F32)


def test_integer_label_257_under_bfloat16_predictions():
    rng = _rng()
    logits32 = rng.normal(size=(2, 300)).astype(np.float32)
    logits32[:, 256] = -5.0  # classes 256 and 257 differ, so a rounded label would show
    logits32[:, 257] = 3.0
    logits = jnp.asarray(logits32, jnp.bfloat16)
    labels = np.array([257, 257], np.int32)
    ours = jaxloss.sparse_categorical_crossentropy(labels, logits, from_logits=True, reduction="none")
    expected = -_log_softmax(np.asarray(logits.astype(jnp.float32)))[:, 257]
    assert ours.dtype == jnp.float32
    assert_close(ours, expected, F32)
    assert float(jnp.bfloat16(257)) == 256.0  # what a cast to the predictions' dtype would do
    g = jaxloss.grad("sparse_categorical_crossentropy", from_logits=True)(labels, logits)
    assert g.dtype == jnp.bfloat16
    assert np.all(np.asarray(g, np.float32)[:, 257] < 0) and np.all(np.asarray(g, np.float32)[:, 256] >= 0)
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(jnp.bfloat16)
    gce = jaxloss.categorical_generalized_cross_entropy(labels, probs, reduction="none")
    p = np.asarray(probs.astype(jnp.float32))[:, 257]
    assert_close(gce, (1.0 - np.sqrt(p)) / 0.5, F32)


@pytest.mark.parametrize("value", [-0.1, 1.5])
@pytest.mark.parametrize("loss", SMOOTHED)
def test_label_smoothing_outside_unit_interval(loss, value):
    fn = jaxloss.get(loss).function
    message = rf"{loss}: label_smoothing must lie in \[0, 1\]; received label_smoothing={value}"
    with pytest.raises(ValueError, match=message):
        fn(np.zeros((2, 3)), np.full((2, 3), 0.5), label_smoothing=value)
    with pytest.raises(ValueError, match=message):
        jaxloss.get(loss, label_smoothing=value)


def test_static_option_types():
    y = (np.zeros((2, 3)), np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="binary_crossentropy: from_logits must be True or False; received"):
        jaxloss.binary_crossentropy(*y, from_logits="yes")
    with pytest.raises(ValueError, match="binary_focal_crossentropy: apply_class_balancing must be True or False"):
        jaxloss.binary_focal_crossentropy(*y, apply_class_balancing=1)
    with pytest.raises(ValueError, match="categorical_crossentropy: axis=2 is out of range for an input of rank 2"):
        jaxloss.categorical_crossentropy(*y, axis=2)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy: ignore_class must be an int or None"):
        jaxloss.sparse_categorical_crossentropy(np.array([0, 1]), y[1], ignore_class=1.5)


def test_shapes_that_only_broadcast_are_refused():
    with pytest.raises(ValueError, match=r"binary_crossentropy: .*y_true.shape=\(3, 1\), y_pred.shape=\(1, 3\)"):
        jaxloss.binary_crossentropy(np.zeros((3, 1)), np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match=r"kl_divergence: .*y_true.shape=\(4,\), y_pred.shape=\(3,\)"):
        jaxloss.kl_divergence(np.full(4, 0.25), np.full(3, 0.3))
    message = r"sparse_categorical_crossentropy: y_true must hold one integer label per row of y_pred"
    with pytest.raises(ValueError, match=message + r".*y_true.shape=\(3,\), y_pred.shape=\(2, 4\)"):
        jaxloss.sparse_categorical_crossentropy(np.zeros(3, np.int32), np.full((2, 4), 0.25))
    with pytest.raises(ValueError, match=r"categorical_generalized_cross_entropy: .*y_true.shape=\(2, 2\)"):
        jaxloss.categorical_generalized_cross_entropy(np.zeros((2, 2), np.int32), np.full((2, 4), 0.25))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=[str(r) for r in REDUCTIONS])
def test_all_ignored_batch_gives_zero(reduction, from_logits):
    labels = np.full((2, 3), -1, np.int32)
    y_pred = np.full((2, 3, 4), 0.25, np.float32)
    options = {"from_logits": from_logits, "ignore_class": -1, "reduction": reduction}
    sw = np.ones((2, 3), np.float32)
    value = jaxloss.sparse_categorical_crossentropy(labels, y_pred, sample_weight=sw, **options)
    assert np.all(np.asarray(value) == 0.0)
    g = jaxloss.grad("sparse_categorical_crossentropy", **options)(labels, y_pred, sw)
    assert np.all(np.asarray(g) == 0.0)
    assert np.all(np.asarray(jaxloss.analytic_grad("sparse_categorical_crossentropy", **options)(labels, y_pred)) == 0)


def test_ignore_class_mean_counts_valid_positions():
    rng = _rng()
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([1, 255, 3, 255], np.int32)
    values = jaxloss.sparse_categorical_crossentropy(
        labels, logits, from_logits=True, ignore_class=255, reduction="none"
    )
    log_p = _log_softmax(logits)
    assert_close(values, [-log_p[0, 1], 0.0, -log_p[2, 3], 0.0], F32)
    mean = jaxloss.sparse_categorical_crossentropy(labels, logits, from_logits=True, ignore_class=255)
    assert_close(mean, (-log_p[0, 1] - log_p[2, 3]) / 2, F32)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("loss", sorted(ALL))
def test_half_precision(loss, dtype):
    options, kind = ALL[loss]
    y_true, y_pred = _inputs(kind)
    y_half = jnp.asarray(y_pred, dtype)
    value = jaxloss.get(loss, **options)(y_true, y_half)
    assert value.dtype == jnp.float32
    assert_close(value, jaxloss.get(loss, **options)(y_true, np.asarray(y_half.astype(jnp.float32))), F32)
    assert_close(value, jaxloss.get(loss, **options)(y_true, y_pred), HALF)
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = grad(loss, **options)(y_true, y_half)
        assert g.dtype == dtype and g.shape == y_pred.shape and _finite(g)


@pytest.mark.parametrize("loss", sorted(ALL))
def test_vmap_jit_and_checkpoint(loss):
    options, kind = ALL[loss]
    rng = _rng()
    batches = [_inputs(kind, rng) for _ in range(3)]
    y_true = np.stack([b[0] for b in batches])
    y_pred = np.stack([b[1] for b in batches])
    fn = jaxloss.get(loss, **options)
    looped = np.array([fn(t, p) for t, p in zip(y_true, y_pred, strict=True)])
    assert_close(jax.vmap(fn)(y_true, y_pred), looped, F32)
    assert_close(jax.jit(jax.vmap(fn))(y_true, y_pred), looped, F32)
    grad = jax.grad(lambda p, t: fn(t, p))
    per_batch = jax.vmap(grad)(jnp.asarray(y_pred), y_true)
    remat = jax.vmap(jax.grad(jax.checkpoint(lambda p, t: fn(t, p))))(jnp.asarray(y_pred), y_true)
    closed = jaxloss.analytic_grad(loss, **options)
    assert_close(per_batch, np.stack([closed(t, p) for t, p in zip(y_true, y_pred, strict=True)]), F32)
    assert_close(remat, per_batch, F32)


def test_traced_hyperparameters_and_their_gradients():
    y_true, y_pred = _inputs("onehot")
    expected = jaxloss.categorical_focal_crossentropy(y_true, y_pred, gamma=1.5, label_smoothing=0.1)
    with jax.enable_x64(True):
        yt, yp = jnp.asarray(y_true, jnp.float64), jnp.asarray(y_pred, jnp.float64)

        @jax.jit
        def loss(gamma, smoothing):
            return jaxloss.categorical_focal_crossentropy(yt, yp, gamma=gamma, label_smoothing=smoothing)

        assert_close(loss(1.5, 0.1), expected, F32)
        d_gamma, d_smoothing = jax.grad(loss, argnums=(0, 1))(1.5, 0.1)
        h, tol = 1e-5, {"rtol": 1e-7, "atol": 1e-9}
        assert_close(d_gamma, (loss(1.5 + h, 0.1) - loss(1.5 - h, 0.1)) / (2 * h), tol)
        assert_close(d_smoothing, (loss(1.5, 0.1 + h) - loss(1.5, 0.1 - h)) / (2 * h), tol)


def test_soft_target_gradient_distillation():
    # d loss / d y_true through the custom JVP (the plain formula's derivative): -log_softmax(z) / N.
    rng = _rng()
    logits = rng.normal(size=(3, 4)).astype(np.float32)
    y_true = jax.nn.softmax(rng.normal(size=(3, 4)).astype(np.float32))
    g = jax.grad(lambda t: jaxloss.categorical_crossentropy(t, logits, from_logits=True))(y_true)
    assert_close(g, -_log_softmax(logits) / 3, F32)


@pytest.mark.parametrize(
    "alias, name",
    [
        ("bce", "binary_crossentropy"),
        ("BinaryFocalCrossentropy", "binary_focal_crossentropy"),
        ("cce", "categorical_crossentropy"),
        ("CategoricalFocalCrossentropy", "categorical_focal_crossentropy"),
        ("scce", "sparse_categorical_crossentropy"),
        ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
        ("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy"),
        ("kld", "kl_divergence"),
        ("kullback_leibler_divergence", "kl_divergence"),
        ("KLDivergence", "kl_divergence"),
    ],
)
def test_aliases(alias, name):
    assert jaxloss.get(alias).spec.name == name
    assert jaxloss.get(alias).function is getattr(jaxloss, name)


@pytest.mark.parametrize("keep_exp", [True, False])
@pytest.mark.parametrize(
    ("axis", "a", "zl"), [(-1, 0.0, 0.0), (-1, 0.1, 0.0), (-1, 0.0, 0.05), (1, 0.2, 0.01), (0, 0.0, 0.0)]
)
def test_sparse_logits_forms_match_log_softmax(keep_exp, axis, a, zl):
    from jaxloss._logsumexp import sparse_logits

    rng = np.random.default_rng(7)
    shape = (6, 5, 4)
    z = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
    dz = jnp.asarray(rng.normal(0, 1, shape), jnp.float32)
    ax = axis % 3
    label_shape = shape[:ax] + shape[ax + 1 :]
    labels = jnp.asarray(rng.integers(0, shape[ax], label_shape), jnp.int32)
    value, tangent = sparse_logits(labels, z, dz, ax=ax, label_smoothing=a, z_loss=zl, keep_exp=keep_exp)
    ref_value, ref_tangent = jax.jvp(lambda p: _sparse_reference(labels, p, ax, a, zl, None), (z,), (dz,))
    assert_close(value, ref_value)
    assert_close(tangent, ref_tangent)
    assert_close(sparse_logits(labels, z, None, ax=ax, label_smoothing=a, z_loss=zl), ref_value)


@pytest.mark.parametrize("keep_exp", [True, False])
@pytest.mark.parametrize(("axis", "zl"), [(-1, 0.0), (0, 0.05), (1, 0.0)])
def test_dense_logits_forms_match_log_softmax(keep_exp, axis, zl):
    from jaxloss._logsumexp import dense_logits

    rng = np.random.default_rng(8)
    shape = (6, 5, 4)
    z = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
    dz = jnp.asarray(rng.normal(0, 1, shape), jnp.float32)
    t = jnp.asarray(rng.uniform(0, 1, shape), jnp.float32)  # soft, unnormalised targets
    ax = axis % 3

    def reference(p):
        lse = jax.nn.logsumexp(p, axis=ax)
        return -jnp.sum(t * jax.nn.log_softmax(p, axis=ax), axis=ax) + zl * lse**2

    value, tangent = dense_logits(t, z, dz, ax=ax, z_loss=zl, keep_exp=keep_exp)
    ref_value, ref_tangent = jax.jvp(reference, (z,), (dz,))
    assert_close(value, ref_value)
    assert_close(tangent, ref_tangent)
    assert_close(dense_logits(t, z, None, ax=ax, z_loss=zl), ref_value)


def test_target_mass_on_a_minus_inf_logit_is_infinite():
    # Not 3.4e38: sparse crossentropy, optax, Keras and PyTorch give inf.
    logits = np.array([[-np.inf, 1.0, 0.0]], np.float32)
    value = jaxloss.categorical_crossentropy(np.array([[1.0, 0.0, 0.0]]), logits, from_logits=True)
    assert np.isposinf(float(value))
    assert np.isposinf(float(jaxloss.sparse_categorical_crossentropy(np.array([0]), logits, from_logits=True)))


def test_sparse_from_logits_stores_nothing_of_the_logits_size():
    """Value and gradient at N=4096, V=32768 need no (N, V) temporary (a log_softmax needs 1 GiB)."""
    n, v = 4096, 32768
    fn = jax.jit(jax.value_and_grad(lambda p, y: jaxloss.sparse_categorical_crossentropy(y, p, from_logits=True)))
    compiled = fn.lower(jax.ShapeDtypeStruct((n, v), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.int32)).compile()
    memory = compiled.memory_analysis()
    if memory is None:
        pytest.skip("this backend reports no memory analysis")
    assert memory.temp_size_in_bytes <= 2**20, memory.temp_size_in_bytes


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
@pytest.mark.parametrize("option", ["label_smoothing", "z_loss"])
def test_traced_option_of_the_logsumexp_form_has_its_gradient(loss, option):
    """An array option stays an argument: its gradient flows (and matches central differences)."""
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(0, 2, (8, 5)), jnp.float32)
    labels = rng.integers(0, 5, 8)
    y = labels if loss.startswith("sparse") else np.eye(5, dtype=np.float32)[labels]
    fn = getattr(jaxloss, loss)

    def value(x):
        return fn(y, z, from_logits=True, **{option: x})

    x0, h = jnp.asarray(0.1, jnp.float32), 1e-2
    got = jax.grad(value)(x0)
    want = (value(x0 + h) - value(x0 - h)) / (2 * h)  # both options enter linearly: exact up to round-off
    assert_close(got, want, {"rtol": 1e-4, "atol": 1e-6})
    # A Python number gives the same value as the array, compiled in.
    assert_close(value(0.1), value(x0))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_sparse_class_weight_is_torch_weighted_mean(reduction, weighted):
    rng = _rng(1)
    logits, labels = _logits(rng, (12, 5)), rng.integers(0, 5, 12).astype(np.int32)
    sw = rng.uniform(0.2, 2.0, 12).astype(np.float32) if weighted else None
    got = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, sample_weight=sw, reduction=reduction)
    weighted_values, divisor, count = torch_cross_entropy(
        np, labels, logits.astype(np.float64), WEIGHT, sample_weight=sw
    )
    assert_close(got, reduce_ref(np, weighted_values, divisor, count, reduction), F32)
    # optax's per-sample values times the labels' weights.
    per_sample = optax.losses.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(labels))
    none = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, reduction="none")
    assert_close(none, WEIGHT[labels] * np.asarray(per_sample), F32)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_sparse_class_weight_with_ignore_class_and_smoothing(reduction):
    rng = _rng(2)
    logits, labels = _logits(rng, (10, 5)), rng.integers(0, 5, 10).astype(np.int32)
    labels[::3] = -1
    sw = rng.uniform(0.2, 2.0, 10).astype(np.float32)
    options = {"from_logits": True, "class_weight": WEIGHT, "ignore_class": -1, "label_smoothing": 0.1}
    got = SCCE(labels, logits, sample_weight=sw, reduction=reduction, **options)
    ref = torch_cross_entropy(np, labels, logits.astype(np.float64), WEIGHT, -1, 0.1, sw)
    assert_close(got, reduce_ref(np, *ref, reduction), F32)

    # Gradients: closed form and autodiff against autodiff of the reference (float64).
    def reference(z):
        out = reduce_ref(jnp, *torch_cross_entropy(jnp, labels, z, WEIGHT, -1, 0.1, sw), reduction)
        return jnp.sum(out)

    with jax.enable_x64(True):
        want = jax.jit(jax.grad(reference))(jnp.asarray(logits, jnp.float64))
    closed = jaxloss.analytic_grad(SCCE, reduction=reduction, **options)(labels, logits, sw)
    auto = jaxloss.grad(SCCE, reduction=reduction, **options)(labels, logits, sw)
    assert_close(closed, want, F32)
    assert_close(auto, want, F32)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_categorical_one_hot_equals_sparse_with_class_weight(reduction, from_logits):
    rng = _rng(3)
    labels = rng.integers(0, 5, (3, 4)).astype(np.int32)
    y_pred = _logits(rng, (3, 4, 5)) if from_logits else _soft(rng, (3, 4, 5))
    sw = rng.uniform(0.2, 2.0, (3, 4)).astype(np.float32)
    options = {"from_logits": from_logits, "class_weight": WEIGHT, "label_smoothing": 0.15, "reduction": reduction}
    sparse = SCCE(labels, y_pred, sample_weight=sw, **options)
    dense = CCE(_one_hot(labels, 5), y_pred, sample_weight=sw, **options)
    assert_close(sparse, dense, F32)
    g_sparse = jaxloss.analytic_grad(SCCE, **options)(labels, y_pred, sw)
    g_dense = jaxloss.analytic_grad(CCE, **options)(_one_hot(labels, 5), y_pred, sw)
    assert_close(g_sparse, g_dense, F32)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_categorical_soft_targets_class_weight_is_torch(reduction):
    rng = _rng(4)
    y_true, logits = _soft(rng, (8, 5)), _logits(rng, (8, 5))
    sw = rng.uniform(0.2, 2.0, 8).astype(np.float32)
    got = CCE(y_true, logits, from_logits=True, class_weight=WEIGHT, sample_weight=sw, reduction=reduction)
    per_sample = torch_soft_cross_entropy(np, y_true.astype(np.float64), logits.astype(np.float64), WEIGHT)
    divisor = sw * (y_true @ WEIGHT)  # each sample's weight sum_c w_c y_c
    assert_close(got, reduce_ref(np, sw * per_sample, divisor, 8, reduction), F32)


def test_class_weight_zero_everywhere_gives_zero_not_nan():
    # PyTorch's weighted mean is 0/0 = NaN here; Keras's reductions divide safely and give 0.
    labels, logits = np.array([3, 3]), _logits(_rng(5), (2, 5))
    for reduction in SCALAR_REDUCTIONS:
        value = SCCE(labels, logits, from_logits=True, class_weight=WEIGHT, reduction=reduction)
        assert float(value) == 0.0
        g = jaxloss.analytic_grad(SCCE, from_logits=True, class_weight=WEIGHT, reduction=reduction)(labels, logits)
        assert np.all(np.asarray(g) == 0.0)


def test_class_weight_gradient_and_traced_weights():
    rng = _rng(6)
    logits, labels = _logits(rng, (6, 5)), rng.integers(0, 5, 6).astype(np.int32)
    w = jnp.asarray(WEIGHT) + 0.25

    def ours(cw):
        return SCCE(labels, logits, from_logits=True, class_weight=cw, reduction="mean_with_sample_weight")

    def reference(cw):
        out = reduce_ref(jnp, *torch_cross_entropy(jnp, labels, jnp.asarray(logits), cw), "mean_with_sample_weight")
        return out

    assert_close(jax.jit(ours)(w), reference(w), F32)
    assert_close(jax.grad(ours)(w), jax.jit(jax.grad(reference))(w), F32)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_smoothing_equals_categorical_and_keras(from_logits, axis):
    rng = _rng(7)
    shape = (4, 6, 5) if axis == -1 else (4, 5, 6)
    y_pred = _logits(rng, shape) if from_logits else np.moveaxis(_soft(rng, (4, 6, 5)), -1, axis)
    labels = rng.integers(0, 5, (4, 6)).astype(np.int32)
    one_hot = np.moveaxis(_one_hot(labels, 5), -1, axis)
    options = {"from_logits": from_logits, "label_smoothing": 0.2, "axis": axis}
    sparse = SCCE(labels, y_pred, reduction="none", **options)
    assert_close(sparse, CCE(one_hot, y_pred, reduction="none", **options), F32)
    if axis == -1:  # Keras smooths with the last axis's size only
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.2, reduction=None)
        assert_close(sparse, keras_loss(one_hot, y_pred), F32)
    assert_close(
        jaxloss.analytic_grad(SCCE, **options)(labels, y_pred), jaxloss.grad(CCE, **options)(one_hot, y_pred), F32
    )


def test_sparse_smoothing_matches_optax_smooth_labels():
    rng = _rng(8)
    logits, labels = _logits(rng, (16, 7)), rng.integers(0, 7, 16).astype(np.int32)
    smoothed = optax.smooth_labels(jnp.asarray(_one_hot(labels, 7)), 0.3)
    want = optax.losses.softmax_cross_entropy(jnp.asarray(logits), smoothed)
    assert_close(SCCE(labels, logits, from_logits=True, label_smoothing=0.3, reduction="none"), want, F32)
    optax_grad = jax.jit(jax.grad(lambda z: jnp.mean(optax.losses.softmax_cross_entropy(z, smoothed))))(
        jnp.asarray(logits)
    )
    assert_close(jaxloss.analytic_grad(SCCE, from_logits=True, label_smoothing=0.3)(labels, logits), optax_grad, F32)


def test_sparse_smoothing_traced_and_its_gradient():
    rng = _rng(9)
    logits, labels = _logits(rng, (5, 4)), rng.integers(0, 4, 5).astype(np.int32)

    def sparse(a):
        return SCCE(labels, logits, from_logits=True, label_smoothing=a)

    def dense(a):
        return CCE(_one_hot(labels, 4), logits, from_logits=True, label_smoothing=a)

    assert_close(jax.jit(sparse)(0.25), dense(0.25), F32)
    assert_close(jax.grad(sparse)(0.25), jax.grad(dense)(0.25), F32)
    assert np.isfinite(float(jax.grad(sparse)(0.0)))


def test_sparse_smoothing_with_minus_inf_logits():
    logits = np.array([[-np.inf, 2.0, 0.0, 1.0]], np.float32)
    labels = np.array([1])
    # Without smoothing a -inf logit of another class contributes 0, value and gradient.
    value = SCCE(labels, logits, from_logits=True, label_smoothing=0.0)
    g = jaxloss.grad(SCCE, from_logits=True, label_smoothing=0.0)(labels, logits)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(g)))
    assert_close(g, jaxloss.analytic_grad(SCCE, from_logits=True)(labels, logits), F32)
    # Smoothing puts mass on a class of probability 0: the crossentropy is infinite (as optax's).
    assert float(SCCE(labels, logits, from_logits=True, label_smoothing=0.1)) == np.inf


@pytest.mark.parametrize("masked_logit", [0.5, -np.inf], ids=["finite", "minus_inf"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_where_matches_optax(smoothing, masked_logit):
    rng = _rng(10)
    mask = _mask(rng, (8, 6))
    logits = np.where(mask, _logits(rng, (8, 6)), np.float32(masked_logit)).astype(np.float32)
    y_true = _soft(rng, (8, 6))
    where = jnp.asarray(mask)
    labels = optax.smooth_labels(jnp.asarray(y_true), smoothing, where=where)
    finite_logits = jnp.asarray(np.where(mask, logits, 0.5))
    want = optax.losses.softmax_cross_entropy(finite_logits, labels, where=where)
    options = {"from_logits": True, "where": mask, "label_smoothing": smoothing}
    got = CCE(y_true, logits, reduction="none", **options)
    assert_close(got, want, F32)
    assert float(got[1]) == 0.0
    want_grad = jax.jit(jax.grad(lambda z: jnp.mean(optax.losses.softmax_cross_entropy(z, labels, where=where))))(
        finite_logits
    )
    kept = np.arange(8) != 1  # optax's gradient of the fully masked row is NaN; ours is 0
    for g in (jaxloss.analytic_grad(CCE, **options), jaxloss.grad(CCE, **options)):
        grad = np.asarray(g(y_true, logits))
        assert np.all(np.isfinite(grad))
        assert np.all(grad[~mask] == 0.0)
        assert_close(grad[kept], np.asarray(want_grad)[kept], F32)


@pytest.mark.parametrize("masked_logit", [0.5, -np.inf], ids=["finite", "minus_inf"])
def test_sparse_where_matches_optax_integer_labels(masked_logit):
    rng = _rng(11)
    mask = _mask(rng, (10, 6), full_row=False)
    labels = np.array([rng.choice(np.flatnonzero(row)) for row in mask], np.int32)  # on unmasked classes
    logits = np.where(mask, _logits(rng, (10, 6)), np.float32(masked_logit)).astype(np.float32)
    finite_logits = jnp.asarray(np.where(mask, logits, 0.5))
    where = jnp.asarray(mask)
    want = optax.losses.softmax_cross_entropy_with_integer_labels(finite_logits, jnp.asarray(labels), where=where)
    options = {"from_logits": True, "where": mask}
    assert_close(SCCE(labels, logits, reduction="none", **options), want, F32)
    loss = optax.losses.softmax_cross_entropy_with_integer_labels
    want_grad = jax.grad(lambda z: jnp.mean(loss(z, jnp.asarray(labels), where=where)))(finite_logits)
    closed = jaxloss.analytic_grad(SCCE, **options)(labels, logits)
    assert_close(closed, want_grad, F32)
    assert_close(jaxloss.grad(SCCE, **options)(labels, logits), want_grad, F32)
    # Label smoothing spreads over the unmasked classes: the one-hot form with optax's smooth_labels.
    smooth = optax.smooth_labels(jnp.asarray(_one_hot(labels, 6)), 0.1, where=where)
    want = optax.losses.softmax_cross_entropy(finite_logits, smooth, where=where)
    assert_close(SCCE(labels, logits, reduction="none", label_smoothing=0.1, **options), want, F32)


def test_where_fully_masked_rows_and_label_on_masked_class():
    logits = np.array([[1.0, 2.0, -np.inf], [-np.inf, -np.inf, -np.inf], [0.5, 1.0, 3.0]], np.float32)
    mask = np.array([[True, True, False], [False, False, False], [True, False, True]])
    labels = np.array([1, 0, 1])  # row 2's label sits on a masked class: it selects nothing
    options = {"from_logits": True, "where": mask, "z_loss": 0.1}
    values = np.asarray(SCCE(labels, logits, reduction="none", **options))
    dense = np.asarray(CCE(_one_hot(labels, 3), logits, reduction="none", **options))
    assert_close(values, dense, F32)
    lse = np.log(np.exp(1.0) + np.exp(2.0))
    assert_close(values[0], lse - 2.0 + 0.1 * lse**2, F32)
    assert values[1] == 0.0
    assert_close(values[2], 0.1 * np.log(np.exp(0.5) + np.exp(3.0)) ** 2, F32)
    for loss, y in ((SCCE, labels), (CCE, _one_hot(labels, 3))):
        for g in (jaxloss.analytic_grad(loss, **options), jaxloss.grad(loss, **options)):
            grad = np.asarray(g(y, logits))
            assert np.all(np.isfinite(grad)) and np.all(grad[~mask] == 0.0)
        assert_close(jaxloss.analytic_grad(loss, **options)(y, logits), jaxloss.grad(loss, **options)(y, logits), F32)


def test_where_broadcasts_and_checks_its_shape():
    rng = _rng(12)
    logits, labels = _logits(rng, (4, 3, 5)), rng.integers(0, 5, (4, 3)).astype(np.int32)
    row = np.array([True, False, True, True, False])
    full = np.broadcast_to(row, logits.shape)
    assert_close(
        SCCE(labels, logits, from_logits=True, where=row), SCCE(labels, logits, from_logits=True, where=full), F32
    )
    assert_close(
        SCCE(labels, logits, from_logits=True, where=list(row)),
        SCCE(labels, logits, from_logits=True, where=full),
        F32,
    )
    with pytest.raises(
        ValueError, match=r"where must be a boolean mask .* where\.shape=\(4,\), y_pred\.shape=\(4, 3, 5\)"
    ):
        SCCE(labels, logits, from_logits=True, where=np.ones(4, bool))
    with pytest.raises(ValueError, match=r"categorical_crossentropy: where acts only with from_logits=True"):
        CCE(_one_hot(labels, 5), logits, where=row)


@pytest.mark.parametrize("reduction", SCALAR_REDUCTIONS)
def test_z_loss_and_soft_cap_match_reference_and_linear_cross_entropy(reduction):
    rng = _rng(13)
    logits, labels = _logits(rng, (12, 6), scale=8.0), rng.integers(0, 6, 12).astype(np.int32)
    sw = rng.uniform(0.2, 2.0, 12).astype(np.float32)
    options = {"from_logits": True, "label_smoothing": 0.1, "z_loss": 1e-3, "logit_soft_cap": 5.0}

    def reference(xp, z):
        capped = 5.0 * xp.tanh(z / 5.0)
        log_q = log_softmax(xp, capped)
        lse = xp.max(capped, -1) + xp.log(xp.sum(xp.exp(capped - xp.max(capped, -1, keepdims=True)), -1))
        nll = -xp.take_along_axis(log_q, labels[:, None], axis=-1)[:, 0]
        values = 0.9 * nll - 0.1 * xp.mean(log_q, -1) + 1e-3 * lse**2
        return reduce_ref(xp, sw * values, sw, 12, reduction)

    got = SCCE(labels, logits, sample_weight=sw, reduction=reduction, **options)
    assert_close(got, reference(np, logits.astype(np.float64)), F32)
    lce = jaxloss.linear_cross_entropy(
        labels,
        logits,
        np.eye(6, dtype=np.float32),
        label_smoothing=0.1,
        z_loss=1e-3,
        logit_soft_cap=5.0,
        sample_weight=sw,
        reduction=reduction,
    )
    assert_close(got, lce, F32)
    with jax.enable_x64(True):
        want = jax.jit(jax.grad(lambda z: reference(jnp, z)))(jnp.asarray(logits, jnp.float64))
    assert_close(jaxloss.analytic_grad(SCCE, reduction=reduction, **options)(labels, logits, sw), want, F32)
    assert_close(jaxloss.grad(SCCE, reduction=reduction, **options)(labels, logits, sw), want, F32)
    dense = jaxloss.analytic_grad(CCE, reduction=reduction, **options)(_one_hot(labels, 6), logits, sw)
    assert_close(dense, want, F32)


def test_soft_cap_is_the_loss_of_capped_logits_and_finite_at_minus_inf():
    rng = _rng(14)
    logits, labels = _logits(rng, (6, 4), scale=20.0), rng.integers(0, 4, 6).astype(np.int32)
    capped = 3.0 * np.tanh(logits / 3.0)
    assert_close(
        SCCE(labels, logits, from_logits=True, logit_soft_cap=3.0), SCCE(labels, capped, from_logits=True), F32
    )
    want = jax.grad(lambda z: SCCE(labels, 3.0 * jnp.tanh(z / 3.0), from_logits=True))(jnp.asarray(logits))
    assert_close(jaxloss.analytic_grad(SCCE, from_logits=True, logit_soft_cap=3.0)(labels, logits), want, F32)
    # -inf is capped to -cap: a finite loss, and no gradient through the flat tanh.
    inf_logits = logits.copy()
    inf_logits[:, 0] = -np.inf
    labels = np.maximum(labels, 1)
    value = CCE(_one_hot(labels, 4), inf_logits, from_logits=True, logit_soft_cap=3.0, label_smoothing=0.1)
    assert np.isfinite(float(value))
    g = jaxloss.analytic_grad(CCE, from_logits=True, logit_soft_cap=3.0, label_smoothing=0.1)(
        _one_hot(labels, 4), inf_logits
    )
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:, 0] == 0.0)


def test_z_loss_traced_and_its_gradient():
    rng = _rng(15)
    logits, labels = _logits(rng, (5, 4)), rng.integers(0, 4, 5).astype(np.int32)
    lse = np.log(np.sum(np.exp(logits.astype(np.float64)), -1))

    def loss(z_loss):
        return SCCE(labels, logits, from_logits=True, z_loss=z_loss)

    assert_close(jax.jit(loss)(0.01) - loss(0.0), 0.01 * np.mean(lse**2), F32)
    assert_close(jax.grad(loss)(0.01), np.mean(lse**2), F32)


def test_saturated_logits_stay_finite_with_every_option():
    logits = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, 1e4, 1e4, 0.0]], np.float32)
    labels = np.array([1, 3])
    options = {
        "from_logits": True,
        "label_smoothing": 0.1,
        "class_weight": [1.0, 2.0, 0.5, 1.0],
        "z_loss": 1e-4,
        "where": [True, True, False, True],
    }
    for loss, y in ((SCCE, labels), (CCE, _one_hot(labels, 4))):
        assert np.isfinite(float(loss(y, logits, **options)))
        assert np.all(np.isfinite(np.asarray(jaxloss.analytic_grad(loss, **options)(y, logits))))
        assert_close(jaxloss.analytic_grad(loss, **options)(y, logits), jaxloss.grad(loss, **options)(y, logits), F32)


@pytest.mark.parametrize("pos_weight", [2.5, [0.5, 1.0, 3.0, 0.0]], ids=["scalar", "per_class"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_pos_weight_is_torch_bce_with_logits(reduction, pos_weight):
    rng = _rng(16)
    logits, y_true = _logits(rng, (9, 4), scale=5.0), rng.integers(0, 2, (9, 4)).astype(np.float32)
    y_true[::2] = rng.uniform(0.0, 1.0, (5, 4))  # soft targets too
    sw = rng.uniform(0.2, 2.0, 9).astype(np.float32)
    pw = np.asarray(pos_weight, np.float64)

    def reference(xp, z):
        per_sample = xp.mean(torch_bce_with_logits(xp, y_true, z, pw), axis=-1)
        return reduce_ref(xp, sw * per_sample, sw, 9, reduction)

    options = {"from_logits": True, "pos_weight": pos_weight, "reduction": reduction}
    assert_close(jaxloss.binary_crossentropy(y_true, logits, sample_weight=sw, **options), reference(np, logits), F32)
    with jax.enable_x64(True):
        want = jax.jit(jax.grad(lambda z: jnp.sum(reference(jnp, z))))(jnp.asarray(logits, jnp.float64))
    assert_close(jaxloss.analytic_grad("binary_crossentropy", **options)(y_true, logits, sw), want, F32)
    assert_close(jaxloss.grad("binary_crossentropy", **options)(y_true, logits, sw), want, F32)


def test_pos_weight_from_probabilities_axis_and_default():
    rng = _rng(17)
    p, y_true = rng.uniform(0.05, 0.95, (3, 4)).astype(np.float32), rng.integers(0, 2, (3, 4)).astype(np.float32)
    pw = np.array([3.0, 0.5, 2.0], np.float32)  # one per class along axis 0
    want = -np.mean(pw[:, None] * y_true * np.log(p) + (1 - y_true) * np.log(1 - p), axis=0)
    assert_close(jaxloss.binary_crossentropy(y_true, p, pos_weight=pw, axis=0, reduction="none"), want, F32)
    # pos_weight=1 is the default exactly; (1,) broadcasts like a scalar.
    bce = jaxloss.binary_crossentropy
    assert float(bce(y_true, p, pos_weight=1.0)) == float(bce(y_true, p))
    assert_close(bce(y_true, p, pos_weight=[2.0]), bce(y_true, p, pos_weight=2.0), F32)
    g = jaxloss.analytic_grad(bce, pos_weight=pw, axis=0)(y_true, p)
    assert_close(g, jaxloss.grad(bce, pos_weight=pw, axis=0)(y_true, p), F32)


def test_pos_weight_at_saturated_logits():
    logits = np.array([[1e4, -1e4, 30.0, -30.0]], np.float32)
    y_true = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    value = jaxloss.binary_crossentropy(y_true, logits, from_logits=True, pos_weight=2.0, reduction="none")
    assert_close(value, np.mean(torch_bce_with_logits(np, y_true, logits.astype(np.float64), 2.0), -1), F32)
    g = jaxloss.analytic_grad("binary_crossentropy", from_logits=True, pos_weight=2.0)(y_true, logits)
    assert_close(g, [[0.25, -0.5, 0.25, -0.5]], F32)


def test_pos_weight_checks():
    y, p = np.zeros((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    with pytest.raises(
        ValueError,
        match=r"pos_weight must be a scalar or one value per class, shape \(3,\) .* "
        r"pos_weight\.shape=\(2,\), y_pred\.shape=\(2, 3\)",
    ):
        jaxloss.binary_crossentropy(y, p, pos_weight=[1.0, 2.0])
    with pytest.raises(
        ValueError, match=r"pos_weight must be a scalar or a vector \(C,\); received pos_weight of shape \(2, 3\)"
    ):
        jaxloss.binary_crossentropy(y, p, pos_weight=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"binary_crossentropy: pos_weight must lie in \[0, inf\]; received"):
        jaxloss.binary_crossentropy(y, p, pos_weight=-1.0)


def test_class_weight_checks():
    y, z = np.zeros(6, np.int32), np.zeros((6, 5), np.float32)
    with pytest.raises(
        ValueError,
        match=r"sparse_categorical_crossentropy: class_weight must be one value per class, shape \(5,\) for the class "
        r"axis 1 of y_pred; received class_weight\.shape=\(4,\), y_pred\.shape=\(6, 5\)",
    ):
        SCCE(y, z, class_weight=[1.0, 1.0, 1.0, 1.0])
    with pytest.raises(
        ValueError,
        match=r"categorical_crossentropy: class_weight must be a vector of shape \(C,\), one value per class; received class_weight of shape \(\)",
    ):
        CCE(np.zeros((6, 5), np.float32), z, class_weight=2.0)
    with pytest.raises(ValueError, match=r"class_weight must lie in \[0, inf\]; received class_weight="):
        SCCE(y, z, class_weight=[1.0, -1.0, 1.0, 1.0, 1.0])

    # The shape check holds under the user's jit, where the weights are traced.
    @jax.jit
    def traced(cw):
        return SCCE(y, z, class_weight=cw)

    with pytest.raises(ValueError, match=r"class_weight\.shape=\(3,\), y_pred\.shape=\(6, 5\)"):
        traced(jnp.ones(3))


@pytest.mark.parametrize("loss", [SCCE, CCE], ids=["sparse", "categorical"])
def test_logit_options_checks(loss):
    name = loss.__name__
    y = np.zeros(3, np.int32) if loss is SCCE else np.eye(3, dtype=np.float32)
    p = np.full((3, 3), 1 / 3, np.float32)
    with pytest.raises(
        ValueError, match=rf"{name}: z_loss acts only with from_logits=True and would be ignored; received z_loss=0.1"
    ):
        loss(y, p, z_loss=0.1)
    with pytest.raises(ValueError, match=rf"{name}: logit_soft_cap acts only with from_logits=True"):
        loss(y, p, logit_soft_cap=10.0)
    with pytest.raises(ValueError, match=rf"{name}: where acts only with from_logits=True"):
        loss(y, p, where=np.ones(3, bool))
    with pytest.raises(ValueError, match=rf"{name}: z_loss must lie in \[0, inf\]; received z_loss=-0.1"):
        loss(y, p, from_logits=True, z_loss=-0.1)
    with pytest.raises(
        ValueError, match=rf"{name}: logit_soft_cap must lie in \(0, inf\]; received logit_soft_cap=0.0"
    ):
        loss(y, p, from_logits=True, logit_soft_cap=0.0)
    with pytest.raises(ValueError, match=rf"{name}: z_loss must be a scalar; received z_loss of shape \(3,\)"):
        loss(y, p, from_logits=True, z_loss=np.ones(3))
    with pytest.raises(ValueError, match=r"z_loss acts only with from_logits=True"):
        jax.jit(lambda zl: loss(y, p, z_loss=zl))(0.0)  # traced: may be non-zero
    assert float(loss(y, p, z_loss=0.0)) == float(loss(y, p))  # a concrete 0 is the default
    with pytest.raises(ValueError, match=r"has no option\(s\) \['pos_weight'\]"):
        jaxloss.get(name, pos_weight=1.0)


def test_options_under_vmap_jit_and_half_precision():
    rng = _rng(23)
    logits, labels = _logits(rng, (3, 4, 5)), rng.integers(0, 5, (3, 4)).astype(np.int32)
    options = {"from_logits": True, "class_weight": WEIGHT, "where": [True, True, True, False, True], "z_loss": 0.01}
    per_batch = jax.vmap(lambda y, z: SCCE(y, z, reduction="none", **options))(labels, logits)
    assert_close(per_batch, SCCE(labels, logits, reduction="none", **options), F32)
    half = SCCE(labels, logits.astype(jnp.bfloat16), **options)
    assert half.dtype == jnp.float32
    assert_close(half, SCCE(labels, np.asarray(logits.astype(jnp.bfloat16), np.float32), **options), F32)
    g = jaxloss.analytic_grad(SCCE, **options)(labels, logits.astype(jnp.bfloat16))
    assert g.dtype == jnp.bfloat16


def test_target_tangents_with_class_weight_where_and_z_loss():
    # Distillation: gradients with respect to soft targets go through the custom JVP's plain path.
    rng = _rng(24)
    y_true, logits = _soft(rng, (6, 5)), _logits(rng, (6, 5))
    mask = np.array([[True, True, False, True, True]])
    options = {"from_logits": True, "class_weight": WEIGHT, "where": mask, "z_loss": 0.01, "label_smoothing": 0.1}

    def reference(y):
        wy = WEIGHT[None, :] * y
        d = jnp.sum(wy, -1, keepdims=True)
        t = jnp.where(mask, 0.9 * wy / d + 0.1 / 4, 0.0)
        z = jnp.where(mask, logits, -jnp.inf)
        lse = jax.nn.logsumexp(z, -1)
        ce = -jnp.sum(jnp.where(mask, t * (logits - lse[:, None]), 0.0), -1) + 0.01 * lse**2
        return jnp.sum(d[:, 0] * ce) / jnp.sum(d)

    ours = jax.grad(lambda y: CCE(y, logits, reduction="mean_with_sample_weight", **options))(jnp.asarray(y_true))
    assert_close(ours, jax.jit(jax.grad(reference))(jnp.asarray(y_true)), F32)
