"""jaxloss._metric (circle): references, masks, empty pair sets, shapes, options, gradients.

Keras parity of the ``keras.losses.Circle`` class and the shared gradient checks
live in tests/test_common.py (tests/cases/metric.py). Keras's class has no
``ref_labels``/``ref_embeddings``: those are checked against the function
``keras.losses.circle`` plus Keras's own reduction, and against a NumPy reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from jax.test_util import check_grads
from keras.src.losses.loss import reduce_weighted_values

import jaxloss
from jaxloss._core import REDUCTIONS

from .cases import metric as metric_cases
from .tolerances import F32, HALF, assert_close

REDUCTION_IDS = [str(r) for r in REDUCTIONS]


def _embeddings(rng, n, d, norm=1.0):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True) * norm).astype(np.float32)


def _numpy_circle(labels, emb, ref_labels=None, ref_emb=None, gamma=80.0, margin=0.4, remove_diagonal=True):
    """Circle loss per sample in float64, written from the paper's formula with explicit loops."""
    labels = np.asarray(labels)
    emb = np.asarray(emb, np.float64)
    ref_labels = labels if ref_labels is None else np.asarray(ref_labels)
    ref_emb = emb if ref_emb is None else np.asarray(ref_emb, np.float64)
    out = np.zeros(len(labels))
    for i in range(len(labels)):
        pos, neg = [], []
        for j in range(len(ref_labels)):
            d = max(1.0 - emb[i] @ ref_emb[j], 0.0)
            if labels[i] == ref_labels[j]:
                if not (remove_diagonal and i == j):
                    pos.append(-gamma * max(margin + d, 0.0) * (margin - d))
            else:
                neg.append(gamma * max(1.0 + margin - d, 0.0) * (1.0 - margin - d))
        if pos and neg:
            z = np.logaddexp.reduce(pos) + np.logaddexp.reduce(neg)
            out[i] = np.logaddexp(z, 0.0)
    return out


def _numpy_reduce(values, sample_weight, reduction):
    """Keras's reduction with circle's mask (loss > 0), written out."""
    mask = values > 0
    w = np.ones_like(values) if sample_weight is None else np.asarray(sample_weight, np.float64)
    weighted = values * w * mask
    if reduction in (None, "none"):
        return weighted
    if reduction == "sum":
        return weighted.sum()
    # The mask becomes a weight: "mean_with_sample_weight" divides by the sum of the masked
    # weights, the other means by the number of samples with a non-zero loss.
    divisor = (w * mask).sum() if reduction == "mean_with_sample_weight" else mask.sum()
    return weighted.sum() / divisor if divisor else 0.0


def _keras_function_loss(y_true, y_pred, sample_weight, reduction, **options):
    """keras.losses.circle with Keras's reduction and its mask: what the Circle class does."""
    values = keras.losses.circle(y_true, y_pred, **options)
    return reduce_weighted_values(values, sample_weight=sample_weight, mask=values > 0, reduction=reduction)


def _ref_problem(seed=0, n=10, m=14, d=6, classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.int32)
    ref_labels = rng.integers(0, classes, m).astype(np.int32)
    return (
        labels,
        _embeddings(rng, n, d),
        ref_labels,
        _embeddings(rng, m, d),
        rng.uniform(0.2, 2.0, n).astype(np.float32),
    )


# --------------------------------------------------------------------------
# Values: Keras's function with references, the NumPy reference, masks
# --------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_references_match_keras_function(reduction, weighted):
    labels, emb, ref_labels, ref_emb, sw = _ref_problem()
    sw = sw if weighted else None
    opts = {"gamma": 16.0, "margin": 0.3, "ref_labels": ref_labels, "ref_embeddings": ref_emb}
    ours = jaxloss.circle(labels, emb, sample_weight=sw, reduction=reduction, **opts)
    theirs = _keras_function_loss(labels, emb, sw, reduction, **opts)
    assert ours.shape == tuple(np.shape(theirs))
    assert_close(ours, theirs, F32)
    expected = _numpy_reduce(_numpy_circle(labels, emb, ref_labels, ref_emb, 16.0, 0.3), sw, reduction)
    assert_close(ours, expected, {"rtol": 1e-4, "atol": 1e-5})


@pytest.mark.parametrize("remove_diagonal", [True, False])
def test_matches_numpy_reference(remove_diagonal):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 12)
    emb = _embeddings(rng, 12, 5)
    ours = jaxloss.circle(labels, emb, gamma=10.0, remove_diagonal=remove_diagonal, reduction="none")
    assert_close(
        ours, _numpy_circle(labels, emb, gamma=10.0, remove_diagonal=remove_diagonal), {"rtol": 1e-5, "atol": 1e-5}
    )


def test_ref_labels_alone_and_ref_embeddings_alone():
    labels, emb, ref_labels, ref_emb, _ = _ref_problem(n=8, m=8)
    # ref_labels with the default ref_embeddings (y_pred), and the other way round.
    for opts, ref in (({"ref_labels": ref_labels}, (ref_labels, None)), ({"ref_embeddings": ref_emb}, (None, ref_emb))):
        ours = jaxloss.circle(labels, emb, gamma=8.0, reduction="none", **opts)
        assert_close(ours, keras.losses.circle(labels, emb, gamma=8.0, **opts))
        assert_close(ours, _numpy_circle(labels, emb, *ref, gamma=8.0), {"rtol": 1e-5, "atol": 1e-5})


def test_singleton_class_is_masked_out_of_the_mean():
    labels = np.array([0, 0, 1, 1, 2, 0], np.int32)  # class 2 appears once
    emb = _embeddings(np.random.default_rng(1), 6, 4)
    per_sample = np.asarray(jaxloss.circle(labels, emb, reduction="none"))
    assert per_sample[4] == 0.0 and np.all(per_sample[[0, 1, 2, 3, 5]] > 0)
    # Keras's mask: the mean divides by the five samples with a non-zero loss.
    assert_close(jaxloss.circle(labels, emb), per_sample.sum() / 5)
    assert_close(jaxloss.circle(labels, emb, reduction="mean_with_sample_weight"), per_sample.sum() / 5)
    assert_close(jaxloss.circle(labels, emb, reduction="sum"), per_sample.sum())
    assert_close(jaxloss.circle(labels, emb), keras.losses.Circle()(labels, emb))


def test_all_labels_equal_gives_zero_loss_and_zero_finite_gradient():
    labels = np.zeros(6, np.int32)  # no negative pair anywhere
    emb = _embeddings(np.random.default_rng(2), 6, 4)
    for reduction in REDUCTIONS:
        value = jaxloss.circle(labels, emb, reduction=reduction)
        assert np.all(np.asarray(value) == 0.0), reduction
        assert_close(value, keras.losses.Circle(reduction=reduction)(labels, emb))
        closed = jaxloss.analytic_grad("circle", reduction=reduction)(labels, emb)
        auto = jaxloss.grad("circle", reduction=reduction)(labels, emb)
        assert np.all(np.asarray(closed) == 0.0) and np.all(np.asarray(auto) == 0.0), reduction
    hessian = jax.hessian(lambda p: jaxloss.circle(labels, p, reduction="sum"))(jnp.asarray(emb))
    assert np.all(np.asarray(hessian) == 0.0)


def test_singleton_class_gradients_are_finite():
    labels = np.array([0, 1, 0, 2, 1, 0, 1, 3], np.int32)  # classes 2 and 3 appear once
    emb = _embeddings(np.random.default_rng(3), 8, 5)
    for reduction in REDUCTIONS:
        closed = np.asarray(jaxloss.analytic_grad("circle", reduction=reduction)(labels, emb))
        auto = np.asarray(jaxloss.grad("circle", reduction=reduction)(labels, emb))
        assert np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)), reduction
        assert_close(closed, auto, F32, str(reduction))
    # A singleton's own row contributes nothing, but it is a negative of the other rows.
    assert np.any(np.asarray(jaxloss.grad("circle", reduction="sum")(labels, emb))[3] != 0.0)
    hessian = jax.hessian(lambda p: jaxloss.circle(labels, p, reduction="sum", gamma=8.0))(jnp.asarray(emb))
    assert np.all(np.isfinite(np.asarray(hessian)))


def test_float_labels_are_truncated_like_keras():
    emb = _embeddings(np.random.default_rng(4), 6, 3)
    floats = np.array([0.2, 0.9, 1.5, 1.1, 2.0, 0.0], np.float32)  # int32: 0, 0, 1, 1, 2, 0
    assert_close(
        jaxloss.circle(floats, emb, reduction="none"), jaxloss.circle(floats.astype(np.int32), emb, reduction="none")
    )
    assert_close(jaxloss.circle(floats, emb, reduction="none"), keras.losses.Circle(reduction=None)(floats, emb))


# --------------------------------------------------------------------------
# Gradients: with references, finite differences at gamma = 80, float64
# --------------------------------------------------------------------------


def _assert_gradients_agree(closed, auto):
    """Entries are sums of terms as large as the gradient's largest entry (gamma = 80): float32
    round-off is relative to that scale, not to each entry, where terms cancel."""
    scale = max(1.0, float(np.max(np.abs(np.asarray(auto, np.float64)))))
    assert_close(closed, auto, {"rtol": F32["rtol"], "atol": F32["atol"] * scale})


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS, ids=REDUCTION_IDS)
def test_closed_form_with_references(reduction, weighted):
    labels, emb, ref_labels, ref_emb, sw = _ref_problem(seed=1)
    sw = sw if weighted else None
    opts = {"ref_labels": ref_labels, "ref_embeddings": ref_emb, "reduction": reduction}
    _assert_gradients_agree(
        jaxloss.analytic_grad("circle", **opts)(labels, emb, sw), jaxloss.grad("circle", **opts)(labels, emb, sw)
    )
    with jax.enable_x64(True):
        emb64, ref64 = jnp.asarray(emb, jnp.float64), jnp.asarray(ref_emb, jnp.float64)
        sw64 = None if sw is None else jnp.asarray(sw, jnp.float64)
        opts64 = {**opts, "ref_embeddings": ref64}
        closed = jaxloss.analytic_grad("circle", **opts64)(labels, emb64, sw64)
        assert_close(closed, jaxloss.grad("circle", **opts64)(labels, emb64, sw64), {"rtol": 1e-9, "atol": 1e-10})
    # ref_labels alone: the references are y_pred, so both sides of each pair move.
    opts = {"ref_labels": ref_labels[:10], "reduction": reduction}
    _assert_gradients_agree(
        jaxloss.analytic_grad("circle", **opts)(labels, emb, sw), jaxloss.grad("circle", **opts)(labels, emb, sw)
    )


def test_gradient_with_respect_to_references():
    labels, emb, ref_labels, ref_emb, _ = _ref_problem(seed=2)

    def f(ref):
        return jaxloss.circle(labels, emb, ref_labels=ref_labels, ref_embeddings=ref, gamma=16.0)

    def keras_f(ref):
        return _keras_function_loss(
            labels, emb, None, "sum_over_batch_size", ref_labels=ref_labels, ref_embeddings=ref, gamma=16.0
        )

    assert_close(jax.grad(f)(jnp.asarray(ref_emb)), jax.grad(keras_f)(jnp.asarray(ref_emb)), F32)


# The cases the shared suite's eps=1e-4 check skips (large gamma), but not the one on the clip's kink.
SMALL_STEP_CASES = [c for c in metric_cases.CASES if not c.check_grads and c.label != "unit_norm"]


@pytest.mark.parametrize("case", SMALL_STEP_CASES, ids=lambda c: c.id)
def test_finite_differences_small_step(case):
    """The large-gamma circle cases (80 included), with a step small enough for their curvature."""
    rng = np.random.default_rng(2)
    y_true, y_pred = case.make(rng)
    sw = rng.uniform(0.2, 2.0, y_pred.shape[0])
    with jax.enable_x64(True):
        yp = jnp.asarray(y_pred, jnp.float64)
        w = jnp.asarray(sw, jnp.float64)

        def f(p):
            return jaxloss.circle(y_true, p, sample_weight=w, reduction="sum", **case.options)

        check_grads(f, (yp,), order=2, modes=("fwd", "rev"), eps=1e-6, atol=1e-5, rtol=1e-5)
        closed = jaxloss.analytic_grad("circle", reduction="sum", **case.options)(y_true, yp, w)
        assert closed.dtype == jnp.float64
        assert_close(closed, jax.grad(f)(yp), {"rtol": 1e-9, "atol": 1e-10})


def test_diagonal_clip_takes_autodiff_subgradient():
    # remove_diagonal=False on unit vectors: d_ii = max(1 - |y_i|^2, 0) sits at the clip.
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 8)
    emb = _embeddings(rng, 8, 4)
    for reduction in ("sum", "sum_over_batch_size"):
        closed = jaxloss.analytic_grad("circle", remove_diagonal=False, reduction=reduction)(labels, emb)
        auto = jaxloss.grad("circle", remove_diagonal=False, reduction=reduction)(labels, emb)
        assert_close(closed, auto, F32)


def test_traced_gamma_and_margin():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 9)
    emb = _embeddings(rng, 9, 4)

    def loss(gamma, margin):
        return jaxloss.circle(labels, emb, gamma=gamma, margin=margin)

    assert_close(jax.jit(loss)(20.0, 0.3), loss(20.0, 0.3))
    g = jax.grad(loss, argnums=(0, 1))(20.0, 0.3)
    assert all(np.isfinite(np.asarray(x)) for x in g)


def test_vmap_over_batches():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, (3, 7))
    emb = np.stack([_embeddings(rng, 7, 4) for _ in range(3)])
    batched = jax.vmap(lambda t, p: jaxloss.circle(t, p, gamma=16.0))(labels, emb)
    assert_close(batched, [jaxloss.circle(labels[i], emb[i], gamma=16.0) for i in range(3)])


def test_half_precision():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 10)
    emb = _embeddings(rng, 10, 8)
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(emb, dtype)
        value = jaxloss.circle(labels, low, gamma=16.0)
        assert value.dtype == jnp.float32
        assert_close(value, jaxloss.circle(labels, np.asarray(low, np.float32), gamma=16.0), F32)
        g = jaxloss.analytic_grad("circle", gamma=16.0)(labels, low)
        assert g.dtype == dtype
        assert_close(g, jaxloss.grad("circle", gamma=16.0)(labels, np.asarray(low, np.float32)), HALF)


def test_float64_int32_labels_batch_of_eight_compiles():
    # Regression: XLA:CPU's LLVM failed ("Cannot select ... SUBV_BROADCAST_LOAD") on a
    # fusion of int32 label comparisons with float64 arithmetic at N = 8.
    rng = np.random.default_rng(10)
    labels = jnp.asarray(rng.integers(0, 3, 8), jnp.int32)
    with jax.enable_x64(True):
        emb = jnp.asarray(_embeddings(rng, 8, 5), jnp.float64)
        w = jnp.asarray(rng.uniform(0.2, 2.0, 8))

        def f(p):
            return jaxloss.circle(labels, p, sample_weight=w, reduction="sum", gamma=10.0)

        check_grads(f, (emb,), order=2, modes=("fwd", "rev"), eps=1e-6, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------
# Shapes and options
# --------------------------------------------------------------------------


def _escape(s):
    return s.replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape",
    [((6,), (5, 3)), ((6,), (6,)), ((6, 2), (6, 3)), ((6,), (6, 3, 1)), ((1, 6), (6, 3))],
)
def test_bad_shapes_name_both(y_true_shape, y_pred_shape):
    y_true = np.zeros(y_true_shape, np.int32)
    y_pred = np.ones(y_pred_shape, np.float32)
    message = _escape(
        "circle: y_true must be labels of shape (N,) and y_pred embeddings of shape (N, d); "
        f"received y_true.shape={y_true_shape}, y_pred.shape={y_pred_shape}."
    )
    with pytest.raises(ValueError, match=message):
        jaxloss.circle(y_true, y_pred)


def test_labels_column_is_accepted():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, 7)
    emb = _embeddings(rng, 7, 4)
    assert_close(jaxloss.circle(labels[:, None], emb, reduction="none"), jaxloss.circle(labels, emb, reduction="none"))


@pytest.mark.parametrize(
    "ref_labels_shape,ref_embeddings_shape,message",
    [
        ((5,), (4, 3), "ref_labels and ref_embeddings must describe the same M references"),
        ((5,), None, "ref_labels and ref_embeddings must describe the same M references"),
        (None, (5, 3), "ref_labels and ref_embeddings must describe the same M references"),
        ((5, 2), (5, 3), "ref_labels must have shape (M,)"),
        ((5,), (5, 4), "ref_embeddings must have shape (M, d) with y_pred's d"),
        ((5,), (5,), "ref_embeddings must have shape (M, d) with y_pred's d"),
    ],
)
def test_bad_reference_shapes(ref_labels_shape, ref_embeddings_shape, message):
    y_true = np.zeros(6, np.int32)
    y_pred = np.ones((6, 3), np.float32)
    opts, received = {}, ["y_true.shape=(6,)", "y_pred.shape=(6, 3)"]
    if ref_labels_shape is not None:
        opts["ref_labels"] = np.zeros(ref_labels_shape, np.int32)
        received.append(f"ref_labels.shape={ref_labels_shape}")
    if ref_embeddings_shape is not None:
        opts["ref_embeddings"] = np.ones(ref_embeddings_shape, np.float32)
        received.append(f"ref_embeddings.shape={ref_embeddings_shape}")
    pattern = _escape(f"circle: {message}") + ".*" + _escape("; received " + ", ".join(received) + ".")
    with pytest.raises(ValueError, match=pattern):
        jaxloss.circle(y_true, y_pred, **opts)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"gamma": 0.0}, r"circle: gamma must lie in \(0, inf\]; received gamma=0.0\."),
        ({"gamma": -5}, r"circle: gamma must lie in \(0, inf\]; received gamma=-5\."),
        ({"margin": -0.1}, r"circle: margin must lie in \[0, inf\]; received margin=-0.1\."),
        (
            {"remove_diagonal": "yes"},
            r"circle: remove_diagonal must be True or False; received remove_diagonal='yes'\.",
        ),
        ({"gamma": "large"}, r"circle: gamma must be a number; received gamma='large'\."),
    ],
)
def test_option_validation(options, message):
    y_true = np.array([0, 0, 1, 1])
    y_pred = _embeddings(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=message):
        jaxloss.circle(y_true, y_pred, **options)
    with pytest.raises(ValueError, match=message):
        jaxloss.get("circle", **options)


def test_sample_weight_shape():
    y_true = np.array([0, 0, 1, 1])
    y_pred = _embeddings(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=r"circle: sample_weight must have .*\(4,\).*sample_weight.shape=\(3,\)"):
        jaxloss.circle(y_true, y_pred, sample_weight=np.ones(3))
