"""jaxloss._metric: circle, ntxent and the pair/triplet/embedding losses.

Keras/optax/PyTorch parity on every declared example and the shared gradient checks live
in tests/test_registry.py. Here: circle's references against Keras's function and a
NumPy reference, its masks and empty pair sets; optax's ntxent scalar; gradients with
respect to every compared input; live PyTorch on hand-derived cases; NaN, the labels
rule, empty batches; options and shapes.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
from jax.test_util import check_grads
from keras.src.losses.loss import reduce_weighted_values

import jaxloss
from jaxloss._core import REDUCTIONS, REGISTRY

from .tolerances import F32, F64, HALF, assert_close
from .torch_oracle import F, needs_torch, require_torch, torch

REDUCTION_IDS = [str(r) for r in REDUCTIONS]


def _embeddings(rng, n, d, norm=1.0):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True) * norm).astype(np.float32)


def _torch(x, requires_grad=False):
    require_torch()
    return torch.tensor(np.asarray(x, np.float64), requires_grad=requires_grad)


# --------------------------------------------------------------------------
# circle: NumPy reference, Keras's function with references, masks
# --------------------------------------------------------------------------


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
    hessian = jax.jit(jax.hessian(lambda p: jaxloss.circle(labels, p, reduction="sum")))(jnp.asarray(emb))
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
    hessian = jax.jit(jax.hessian(lambda p: jaxloss.circle(labels, p, reduction="sum", gamma=8.0)))(jnp.asarray(emb))
    assert np.all(np.isfinite(np.asarray(hessian)))


def test_integral_float_labels_equal_integer_labels():
    emb = _embeddings(np.random.default_rng(4), 6, 3)
    ints = np.array([0, 0, 1, 1, 2, 0], np.int32)
    assert_close(
        jaxloss.circle(ints.astype(np.float32), emb, reduction="none"), jaxloss.circle(ints, emb, reduction="none")
    )


@pytest.mark.parametrize("label", [0.2, np.nan, np.inf])
def test_float_label_that_is_no_integer_gives_nan(label):
    # Keras truncates 0.2 to group 0 (and casts NaN to some int32): every sample's pairs depend
    # on every label, so jaxloss gives NaN for every sample, in value and gradient.
    emb = _embeddings(np.random.default_rng(4), 6, 3)
    labels = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 0.0], np.float32)
    labels[1] = label
    values = np.asarray(jaxloss.circle(labels, emb, reduction="none"))
    assert np.all(np.isnan(values))
    assert np.isnan(float(jaxloss.circle(labels, emb)))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        assert np.all(np.isnan(np.asarray(grad("circle")(labels, emb)))), grad.__name__
    if label == 0.2:
        assert np.all(np.isfinite(np.asarray(keras.losses.Circle(reduction=None)(labels, emb))))


def test_reference_label_that_is_no_integer_poisons_every_sample():
    labels, emb, ref_labels, ref_emb, _ = _ref_problem(n=6, m=5)
    bad = ref_labels.astype(np.float32)
    bad[3] = np.nan
    # A host array is checked before tracing; a traced one gives NaN for every sample.
    with pytest.raises(ValueError, match=re.escape("circle: ref_labels must hold integers; received ref_labels=")):
        jaxloss.circle(labels, emb, ref_labels=bad, ref_embeddings=ref_emb)
    values = jax.jit(lambda r: jaxloss.circle(labels, emb, ref_labels=r, ref_embeddings=ref_emb, reduction="none"))(bad)
    assert np.all(np.isnan(np.asarray(values)))


def test_nan_embedding_gives_nan():
    labels = np.array([0, 0, 1, 1, 2, 2])
    emb = _embeddings(np.random.default_rng(6), 6, 3)
    emb[2, 1] = np.nan
    assert np.all(np.isnan(np.asarray(jaxloss.circle(labels, emb, reduction="none"))))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        assert np.any(np.isnan(np.asarray(grad("circle")(labels, emb)))), grad.__name__


def test_empty_batch_and_empty_references():
    # An empty batch: Keras's passthrough of the empty values, for every reduction.
    for reduction in REDUCTIONS:
        out = jaxloss.circle(np.zeros(0, np.int32), np.zeros((0, 4), np.float32), reduction=reduction)
        assert out.shape == (0,), reduction
    g = jaxloss.analytic_grad("circle")(np.zeros(0, np.int32), np.zeros((0, 4), np.float32))
    assert g.shape == (0, 4)
    # No reference: no pair for any sample, loss 0 with a zero gradient.
    labels = np.array([0, 1, 0])
    emb = _embeddings(np.random.default_rng(7), 3, 4)
    refs = {"ref_labels": np.zeros(0, np.int32), "ref_embeddings": np.zeros((0, 4), np.float32)}
    assert np.all(np.asarray(jaxloss.circle(labels, emb, reduction="none", **refs)) == 0.0)
    assert np.all(np.asarray(jaxloss.grad("circle", **refs)(labels, emb)) == 0.0)


# --------------------------------------------------------------------------
# circle gradients: with references, finite differences at gamma = 80, float64
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


# The declared examples with a large gamma: their third derivative grows like gamma**3, so
# finite differences need a small step (the registry's eps = 1e-4 is too coarse for them).
LARGE_GAMMA = [
    pytest.param(e, id=e.id)
    for e in REGISTRY["circle"].examples
    if e.options.get("gamma", 80.0) >= 10.0 and "ref_labels" not in e.options
]


@pytest.mark.parametrize("example", LARGE_GAMMA)
def test_finite_differences_small_step(example):
    rng = np.random.default_rng(2)
    y_true, y_pred = example.draw(rng)
    sw = rng.uniform(0.2, 2.0, y_pred.shape[0])
    with jax.enable_x64(True):
        yp = jnp.asarray(y_pred, jnp.float64)
        w = jnp.asarray(sw, jnp.float64)

        @jax.jit  # check_grads evaluates f and its derivatives many times: compile each once
        def f(p):
            return jaxloss.circle(y_true, p, sample_weight=w, reduction="sum", **example.options)

        check_grads(f, (yp,), order=2, modes=("fwd", "rev"), eps=1e-6, atol=1e-5, rtol=1e-5)
        closed = jaxloss.analytic_grad("circle", reduction="sum", **example.options)(y_true, yp, w)
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
    # Keras computes the same values on the kink.
    assert_close(
        jaxloss.circle(labels, emb, remove_diagonal=False),
        keras.losses.Circle(remove_diagonal=False)(labels, emb),
        F32,
    )


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


@pytest.mark.parametrize("loss", ["circle", "ntxent"])
def test_half_precision(loss):
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 10)
    emb = _embeddings(rng, 10, 8)
    options = {"gamma": 16.0} if loss == "circle" else {"temperature": 0.5}
    fn = getattr(jaxloss, loss)
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(emb, dtype)
        value = fn(labels, low, **options)
        assert value.dtype == jnp.float32
        assert_close(value, fn(labels, np.asarray(low, np.float32), **options), F32)
        g = jaxloss.analytic_grad(loss, **options)(labels, low)
        assert g.dtype == dtype
        assert_close(g, jaxloss.grad(loss, **options)(labels, np.asarray(low, np.float32)), HALF)


def test_float64_int32_labels_batch_of_eight_compiles():
    # Regression: XLA:CPU's LLVM failed ("Cannot select ... SUBV_BROADCAST_LOAD") on a
    # fusion of int32 label comparisons with float64 arithmetic at N = 8.
    rng = np.random.default_rng(10)
    labels = jnp.asarray(rng.integers(0, 3, 8), jnp.int32)
    with jax.enable_x64(True):
        emb = jnp.asarray(_embeddings(rng, 8, 5), jnp.float64)
        w = jnp.asarray(rng.uniform(0.2, 2.0, 8))

        @jax.jit  # the fusion that failed is the compiled one
        def f(p):
            return jaxloss.circle(labels, p, sample_weight=w, reduction="sum", gamma=10.0)

        check_grads(f, (emb,), order=2, modes=("fwd", "rev"), eps=1e-6, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------
# circle: shapes and options
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape",
    [((6,), (5, 3)), ((6,), (6,)), ((6, 2), (6, 3)), ((6,), (6, 3, 1)), ((1, 6), (6, 3))],
)
def test_bad_shapes_name_both(y_true_shape, y_pred_shape):
    y_true = np.zeros(y_true_shape, np.int32)
    y_pred = np.ones(y_pred_shape, np.float32)
    message = re.escape(
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
    pattern = re.escape(f"circle: {message}") + ".*" + re.escape("; received " + ", ".join(received) + ".")
    with pytest.raises(ValueError, match=pattern):
        jaxloss.circle(y_true, y_pred, **opts)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"gamma": 0.0}, "circle: gamma must lie in (0, inf]; received gamma=0.0."),
        ({"gamma": -5}, "circle: gamma must lie in (0, inf]; received gamma=-5."),
        ({"margin": -0.1}, "circle: margin must lie in [0, inf]; received margin=-0.1."),
        ({"remove_diagonal": "yes"}, "circle: remove_diagonal must be True or False; received remove_diagonal='yes'."),
        ({"gamma": "large"}, "circle: gamma must be a number (a scalar); received gamma='large'."),
        ({"gamma": [16.0, 32.0]}, "circle: gamma must be a number (a scalar); received gamma=a list of length 2."),
        ({"ref_labels": np.array([0.5, 1.0])}, "circle: ref_labels must hold integers"),
    ],
)
def test_option_validation(options, message):
    y_true = np.array([0, 0, 1, 1])
    y_pred = _embeddings(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=re.escape(message)):
        jaxloss.circle(y_true, y_pred, **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        jaxloss.get("circle", **options)


def test_sample_weight_shape():
    y_true = np.array([0, 0, 1, 1])
    y_pred = _embeddings(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=r"circle: sample_weight must have .*\(4,\).*sample_weight.shape=\(3,\)"):
        jaxloss.circle(y_true, y_pred, sample_weight=np.ones(3))


# --------------------------------------------------------------------------
# ntxent: optax's scalar, per-pair values, weights, degenerate batches
# --------------------------------------------------------------------------


def ntxent_pairs(labels, x, temperature, eps):
    """Per-pair NT-Xent in float64: l_ij = log(e^s_ij + sum_{k: y_k != y_i} e^s_ik) - s_ij, i != j, y_i == y_j."""
    x = np.asarray(x, np.float64)
    unit = x / np.sqrt(np.maximum(np.sum(x * x, -1, keepdims=True), eps))
    s = unit @ unit.T / temperature
    same = labels[:, None] == labels[None, :]
    positives = same & ~np.eye(len(labels), dtype=bool)
    negatives = np.sum(np.where(same, 0.0, np.exp(s)), -1, keepdims=True)
    return np.where(positives, np.log(np.exp(s) + negatives) - s, 0.0), positives


@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_ntxent_matches_optax_value_and_gradient(temperature):
    # optax's ntxent is the mean over positive pairs: jaxloss's default reduction (its
    # per-pair "none" output has no optax equal, so this is not a registry peer).
    rng = np.random.default_rng(12)
    labels = rng.permutation(np.arange(12) % 5)
    x = rng.normal(0, 1, (12, 6)).astype(np.float32)
    ours = jaxloss.ntxent(labels, x, temperature=temperature)
    want = optax.losses.ntxent(jnp.asarray(x), jnp.asarray(labels), temperature)
    assert ours.shape == () and ours.dtype == jnp.float32
    assert_close(ours, want, F32)
    with jax.enable_x64(True):
        x64 = jnp.asarray(x, jnp.float64)
        want_grad = jax.jit(jax.grad(lambda e: optax.losses.ntxent(e, jnp.asarray(labels), temperature)))(x64)
        assert_close(jaxloss.analytic_grad("ntxent", temperature=temperature)(labels, x64), want_grad, F64)
        assert_close(jaxloss.grad("ntxent", temperature=temperature)(labels, x64), want_grad, F64)


def test_ntxent_per_pair_values_and_anchor_weights():
    rng = np.random.default_rng(13)
    labels = np.array([0, 1, 0, 1, 2, 2, 0])
    x = rng.normal(0, 1, (7, 3)).astype(np.float32)
    pairs = jaxloss.ntxent(labels, x, temperature=0.3, reduction="none")
    values, mask = ntxent_pairs(labels, x, 0.3, eps=np.finfo(np.float32).eps)
    assert pairs.shape == (7, 7)
    assert_close(pairs, np.where(mask, values, 0.0), F32)
    assert_close(np.asarray(pairs).sum() / mask.sum(), jaxloss.ntxent(labels, x, temperature=0.3), F32)
    w = rng.uniform(0.5, 2.0, 7).astype(np.float32)  # one weight per anchor
    got = jaxloss.ntxent(labels, x, temperature=0.3, sample_weight=w, reduction="mean_with_sample_weight")
    assert_close(got, (values * mask * w[:, None]).sum() / (mask * w[:, None]).sum(), F32)


def test_ntxent_without_positive_pairs_is_zero_with_finite_gradient():
    x = np.random.default_rng(14).normal(size=(4, 3)).astype(np.float32)
    labels = np.arange(4)
    assert float(jaxloss.ntxent(labels, x)) == 0.0
    assert np.all(np.asarray(jaxloss.grad("ntxent")(labels, x)) == 0.0)
    assert np.all(np.asarray(jaxloss.analytic_grad("ntxent")(labels, x)) == 0.0)


def test_ntxent_single_group_has_no_negatives():
    # Every other sample is a positive: each pair's loss is -log(1) = 0.
    x = np.random.default_rng(15).normal(size=(3, 2)).astype(np.float32)
    assert_close(jaxloss.ntxent(np.zeros(3, np.int32), x), 0.0)


def test_ntxent_empty_batch_is_empty_pairs_and_zero():
    labels, x = np.zeros(0, np.int32), np.zeros((0, 3), np.float32)
    assert jaxloss.ntxent(labels, x, reduction="none").shape == (0, 0)
    for reduction in ("sum", "sum_over_batch_size", "mean", "mean_with_sample_weight"):
        assert float(jaxloss.ntxent(labels, x, reduction=reduction)) == 0.0, reduction
    assert jaxloss.analytic_grad("ntxent")(labels, x).shape == (0, 3)


@pytest.mark.parametrize("label", [0.5, np.nan])
def test_ntxent_label_that_is_no_integer_gives_nan(label):
    x = np.random.default_rng(16).normal(size=(5, 3)).astype(np.float32)
    labels = np.array([0.0, 0.0, 1.0, 1.0, 2.0], np.float32)
    labels[4] = label
    assert np.isnan(float(jaxloss.ntxent(labels, x)))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        assert np.all(np.isnan(np.asarray(grad("ntxent")(labels, x)))), grad.__name__


def test_ntxent_tiny_vector_is_finite():
    labels, x = np.array([0, 0, 1, 1]), np.array([[0, 0], [1, 0], [1, 0], [1e-20, 0]], np.float32)
    values, _ = ntxent_pairs(labels, x, 0.07, eps=np.finfo(np.float32).eps)
    assert_close(jaxloss.ntxent(labels, x, reduction="none"), values, {"rtol": 2e-5, "atol": 1e-5})
    closed, auto = jaxloss.analytic_grad("ntxent")(labels, x), jaxloss.grad("ntxent")(labels, x)
    assert np.all(np.isfinite(np.asarray(closed))) and np.all(np.isfinite(np.asarray(auto)))
    assert_close(closed, auto, F32)


# --------------------------------------------------------------------------
# Pair and triplet losses: live PyTorch on hand-derived cases
# --------------------------------------------------------------------------

TRIPLETS = [
    # 1 + ||(-3, -4)|| - ||(0, -1)|| = 1 + 5 - 1
    ({"eps": 0.0}, [[0.0, 0.0]], [[3.0, 4.0]], [[0.0, 1.0]], 5.0),
    # pairwise_distance adds eps = 1e-6 to each difference before the norm
    ({}, [[0.0, 0.0]], [[3.0, 4.0]], [[0.0, 1.0]], 4.999999599999504),
    # p = 1: 1 + (1 + 1) - (2 + 0.5)
    ({"p": 1.0, "eps": 0.0}, [[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 0.5]], 0.5),
    # swap: d(a, n) = 1 replaced by d(p, n) = 0.5: 1 + 0.5 - 0.5
    ({"eps": 0.0, "swap": True}, [[0.0, 0.0]], [[0.0, 0.5]], [[0.0, 1.0]], 1.0),
    # no swap: 1 + 0.5 - 1
    ({"eps": 0.0}, [[0.0, 0.0]], [[0.0, 0.5]], [[0.0, 1.0]], 0.5),
    # p = 3: ||(1, 1)||_3 = 2^(1/3), ||(2, 0)||_3 = 2
    ({"p": 3.0, "eps": 0.0}, [[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 0.0]], 1 + 2 ** (1 / 3) - 2),
]


@needs_torch
@pytest.mark.parametrize("options,anchor,positive,negative,derived", TRIPLETS)
def test_triplet_margin_live_torch(options, anchor, positive, negative, derived):
    a, p, n = (np.asarray(v, np.float32) for v in (anchor, positive, negative))
    ours = jaxloss.triplet_margin(a, p, n, reduction="none", **options)
    torch_options = {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, **options}
    theirs = F.triplet_margin_loss(_torch(a), _torch(p), _torch(n), reduction="none", **torch_options).numpy()
    assert_close(ours, theirs, F32)
    assert_close(theirs, [derived], F64)


@needs_torch
def test_pair_losses_live_torch():
    # margin_ranking: max(0, -y (x1 - x2) + 0.1): 0.5 + 0.1; 0.5 + 0.1; -2 + 0.1 -> 0
    y, x1, x2 = np.array([1.0, -1.0, 1.0]), np.array([0.5, 0.5, 2.0]), np.array([1.0, 0.0, 0.0])
    ours = jaxloss.margin_ranking(y, x1, x2, margin=0.1, reduction="none")
    theirs = F.margin_ranking_loss(_torch(x1), _torch(x2), _torch(y), margin=0.1, reduction="none").numpy()
    assert_close(ours, theirs, F32)
    assert_close(theirs, [0.6, 0.6, 0.0], F64)
    # cosine_embedding: y = 1 orthogonal: 1 - 0; y = -1: cos = 24/25 minus 0.5; y = -1 opposite: 0
    y = np.array([1.0, -1.0, -1.0])
    x1, x2 = np.array([[1.0, 0.0], [3.0, 4.0], [1.0, 0.0]]), np.array([[0.0, 2.0], [4.0, 3.0], [-1.0, 0.0]])
    ours = jaxloss.cosine_embedding(y, x1, x2, margin=0.5, reduction="none")
    theirs = F.cosine_embedding_loss(_torch(x1), _torch(x2), _torch(y), margin=0.5, reduction="none").numpy()
    assert_close(ours, theirs, F32)
    assert_close(theirs, [1.0, 24 / 25 - 0.5, 0.0], {"rtol": 1e-12, "atol": 1e-12})
    # hinge_embedding: y = 1: x; y = -1: max(0, 1 - x) (PyTorch's elementwise output; jaxloss averages)
    t, x = np.array([[1.0, -1.0, -1.0]]), np.array([[0.5, 0.25, 2.0]])
    theirs = F.hinge_embedding_loss(_torch(x), _torch(t), reduction="none").numpy()
    assert_close(theirs, [[0.5, 0.75, 0.0]], F64)
    assert_close(jaxloss.hinge_embedding(t, x, reduction="none"), theirs.mean(-1), F32)


# --------------------------------------------------------------------------
# Pair and triplet losses: gradients with respect to every input (PyTorch's autograd)
# --------------------------------------------------------------------------


def _x64(rng, *shape):
    return rng.normal(0, 1, shape)


@needs_torch
@pytest.mark.parametrize(
    "options", [{}, {"p": 1.0, "margin": 2.0}, {"p": 3.0, "swap": True}, {"swap": True, "eps": 0.0, "margin": 1.5}]
)
def test_triplet_margin_gradients_for_every_input(options):
    rng = np.random.default_rng(5)
    anchor = _x64(rng, 7, 4)
    positive, negative = anchor + _x64(rng, 7, 4), anchor + _x64(rng, 7, 4)
    w = rng.uniform(0.5, 2.0, 7)
    with jax.enable_x64(True):

        def ours(a, p, n):
            return jaxloss.triplet_margin(a, p, n, sample_weight=jnp.asarray(w), reduction="sum", **options)

        args = tuple(jnp.asarray(v) for v in (anchor, positive, negative))
        got = jax.grad(ours, argnums=(0, 1, 2))(*args)
        tensors = [_torch(v, requires_grad=True) for v in (anchor, positive, negative)]
        torch_options = {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, **options}
        (_torch(w) * F.triplet_margin_loss(*tensors, reduction="none", **torch_options)).sum().backward()
        for g, t, name in zip(got, tensors, ("anchor", "positive", "negative"), strict=True):
            assert_close(g, t.grad.numpy(), F64, f"d/d{name}")
        assert np.any(np.asarray(got[0]) != 0)
        check_grads(ours, args, order=1, modes=("fwd", "rev"), eps=1e-6)
        # The two-array form: the anchor as y_true, (positive, negative) stacked as y_pred.
        stacked = jnp.stack(args[1:], axis=-2)
        assert_close(jaxloss.triplet_margin(args[0], stacked, **options), jaxloss.triplet_margin(*args, **options), F64)
        closed = jaxloss.analytic_grad(jaxloss.triplet_margin, reduction="sum", **options)(
            args[0], stacked, jnp.asarray(w)
        )
        assert_close(closed, jnp.stack(got[1:], axis=-2), F64, "analytic_grad on the stack")
        anchor_grad = jax.grad(
            lambda a: jaxloss.triplet_margin(a, stacked, sample_weight=jnp.asarray(w), reduction="sum", **options)
        )
        assert_close(anchor_grad(args[0]), got[0], F64, "d/danchor in the two-array form")


@needs_torch
@pytest.mark.parametrize("margin", [0.0, 0.4])
def test_margin_ranking_gradients_for_every_input(margin):
    rng = np.random.default_rng(6)
    y = rng.choice([-1.0, 1.0], (3, 5))
    x1, x2 = _x64(rng, 3, 5), _x64(rng, 3, 5)
    with jax.enable_x64(True):

        def ours(y, a, b):
            return jaxloss.margin_ranking(y, a, b, margin=margin, reduction="mean")

        args = tuple(jnp.asarray(v) for v in (y, x1, x2))
        got = jax.grad(ours, argnums=(0, 1, 2))(*args)
        ty, t1, t2 = (_torch(v, requires_grad=True) for v in (y, x1, x2))
        F.margin_ranking_loss(t1, t2, ty, margin=margin).backward()
        for g, t in zip(got, (ty, t1, t2), strict=True):
            assert_close(g, t.grad.numpy(), F64)
        check_grads(ours, args, order=1, modes=("fwd", "rev"), eps=1e-6)
        stacked = jnp.stack(args[1:], -1)
        closed = jaxloss.analytic_grad(jaxloss.margin_ranking, margin=margin, reduction="mean")(args[0], stacked)
        assert_close(closed, jnp.stack(got[1:], -1), F64)
        assert_close(
            jaxloss.grad(jaxloss.margin_ranking, margin=margin, reduction="mean")(args[0], stacked), closed, F64
        )


@needs_torch
@pytest.mark.parametrize("margin", [0.0, -0.3, 0.5])
def test_cosine_embedding_gradients_for_every_input(margin):
    rng = np.random.default_rng(7)
    y = rng.choice([-1.0, 1.0], 9)
    x1, x2 = _x64(rng, 9, 4), _x64(rng, 9, 4)
    with jax.enable_x64(True):

        def ours(a, b):
            return jaxloss.cosine_embedding(jnp.asarray(y), a, b, margin=margin)

        args = (jnp.asarray(x1), jnp.asarray(x2))
        got = jax.grad(ours, argnums=(0, 1))(*args)
        t1, t2 = _torch(x1, requires_grad=True), _torch(x2, requires_grad=True)
        F.cosine_embedding_loss(t1, t2, _torch(y), margin=margin).backward()
        for g, t in zip(got, (t1, t2), strict=True):
            assert_close(g, t.grad.numpy(), F64)
        check_grads(ours, args, order=1, modes=("fwd", "rev"), eps=1e-6)
        closed = jaxloss.analytic_grad(jaxloss.cosine_embedding, margin=margin)(jnp.asarray(y), jnp.stack(args, -2))
        assert_close(closed, jnp.stack(got, -2), F64)


# --------------------------------------------------------------------------
# Extremes, NaN
# --------------------------------------------------------------------------

EXTREMES = [
    ("margin_ranking", {}, np.array([1.0, -1.0]), np.array([[1e4, -1e4], [0.0, 0.0]], np.float32)),
    ("cosine_embedding", {}, np.array([1.0, -1.0]), np.zeros((2, 2, 3), np.float32)),
    ("triplet_margin", {}, np.zeros((1, 3), np.float32), np.zeros((1, 2, 3), np.float32)),
    ("triplet_margin", {"eps": 0.0, "swap": True}, np.zeros((1, 3), np.float32), np.zeros((1, 2, 3), np.float32)),
    ("hinge_embedding", {}, np.array([[1.0, -1.0, 1.0, -1.0]]), np.array([[0.0, 1e4, 1e4, 0.0]], np.float32)),
]


def _torch_reference(loss, options, y_true, y_pred):
    require_torch()
    t, p = _torch(y_true), _torch(y_pred)
    if loss == "margin_ranking":
        return F.margin_ranking_loss(p[..., 0], p[..., 1], t, reduction="none", **options)
    if loss == "cosine_embedding":
        return F.cosine_embedding_loss(p[:, 0], p[:, 1], t, reduction="none", **options)
    if loss == "triplet_margin":
        return F.triplet_margin_loss(t, p[:, 0], p[:, 1], reduction="none", **options)
    return F.hinge_embedding_loss(p, t, reduction="none", **options).mean(-1)


@pytest.mark.parametrize("loss,options,y_true,y_pred", EXTREMES, ids=[f"{e[0]}{i}" for i, e in enumerate(EXTREMES)])
def test_extremes_are_finite_and_match_torch(loss, options, y_true, y_pred):
    fn = getattr(jaxloss, loss)
    values = fn(y_true, y_pred, reduction="none", **options)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    auto = jaxloss.grad(loss, **options)(y_true, y_pred)
    assert np.all(np.isfinite(values)), values
    assert np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)), (closed, auto)
    assert_close(closed, auto, F32, "closed form vs autodiff")
    assert_close(values, _torch_reference(loss, options, y_true, y_pred).numpy(), {"rtol": 2e-5, "atol": 1e-5})


@needs_torch
def test_triplet_margin_nan_is_not_zero():
    # A NaN embedding used to give a distance of 0 (total > 0 was False): PyTorch and optax give NaN.
    a = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    pos = np.array([[np.nan, 0.0], [0.0, 1.0]], np.float32)
    neg = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    ours = np.asarray(jaxloss.triplet_margin(a, pos, neg, reduction="none"))
    assert np.isnan(ours[0]) and np.isfinite(ours[1])
    assert torch.isnan(F.triplet_margin_loss(_torch(a), _torch(pos), _torch(neg), reduction="none")[0])
    assert np.isnan(float(optax.losses.triplet_margin_loss(jnp.asarray(a), jnp.asarray(pos), jnp.asarray(neg))[0]))
    stacked = np.stack([pos, neg], -2)
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad("triplet_margin", reduction="sum")(a, stacked))
        assert np.any(np.isnan(g[0])) and np.all(np.isfinite(g[1])), grad.__name__
    g = jax.grad(lambda a: jaxloss.triplet_margin(a, pos, neg, reduction="sum"))(a)
    assert np.any(np.isnan(np.asarray(g)[0]))


@pytest.mark.parametrize("loss", ["margin_ranking", "cosine_embedding", "triplet_margin", "hinge_embedding"])
@pytest.mark.parametrize("role", ["y_true", "y_pred"])
def test_nan_propagates(loss, role):
    rng = np.random.default_rng(20)
    shapes = {
        "margin_ranking": ((4,), (4, 2)),
        "cosine_embedding": ((4,), (4, 2, 3)),
        "triplet_margin": ((4, 3), (4, 2, 3)),
        "hinge_embedding": ((4, 3), (4, 3)),
    }[loss]
    y_true = rng.normal(size=shapes[0]) if loss == "triplet_margin" else rng.choice([-1.0, 1.0], shapes[0])
    y_pred = rng.normal(size=shapes[1])
    target = y_true if role == "y_true" else y_pred
    target.reshape(-1)[target[:1].size] = np.nan  # the first entry of the second sample
    values = np.asarray(getattr(jaxloss, loss)(y_true, y_pred, reduction="none"))
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2, 3]])), values
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, reduction="sum")(y_true, y_pred))
        assert np.any(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2, 3]])), grad.__name__


@needs_torch
def test_nan_target_differs_from_torch_selects():
    # PyTorch selects on the target: a NaN target is neither 1 nor -1 (0 for cosine_embedding,
    # both terms for hinge_embedding). jaxloss gives NaN.
    x1, x2 = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert F.cosine_embedding_loss(_torch(x1), _torch(x2), _torch([np.nan]), reduction="none").item() == 0.0
    assert np.isnan(float(jaxloss.cosine_embedding(np.array([np.nan]), x1, x2, reduction="none")[0]))
    torch_value = F.hinge_embedding_loss(_torch([[0.5]]), _torch([[np.nan]]), reduction="none").item()
    assert np.isfinite(torch_value)
    assert np.isnan(float(jaxloss.hinge_embedding(np.array([[np.nan]]), np.array([[0.5]]))))


# --------------------------------------------------------------------------
# Options, shapes, names
# --------------------------------------------------------------------------

Y2 = np.zeros((2, 3), np.float32)
L2 = np.zeros(2, np.float32)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: jaxloss.cosine_embedding(L2, Y2, Y2, margin=2.0), "cosine_embedding: margin must lie in [-1, 1]"),
        (
            lambda: jaxloss.hinge_embedding(Y2, Y2, margin=None),
            "hinge_embedding: margin must be a number; received margin=None.",
        ),
        (lambda: jaxloss.triplet_margin(Y2, Y2, Y2, p=0.0), "triplet_margin: p must lie in (0, inf); received p=0.0."),
        (lambda: jaxloss.triplet_margin(Y2, Y2, Y2, p=float("inf")), "triplet_margin: p must lie in (0, inf)"),
        (lambda: jaxloss.triplet_margin(Y2, Y2, Y2, eps=-1e-3), "triplet_margin: eps must lie in [0, inf]"),
        (lambda: jaxloss.triplet_margin(Y2, Y2, Y2, swap="no"), "triplet_margin: swap must be True or False"),
        (
            lambda: jaxloss.triplet_margin(Y2, Y2, Y2, margin=np.ones(2)),
            "triplet_margin: margin must be a scalar; received margin of shape (2,)",
        ),
        (lambda: jaxloss.margin_ranking(L2, L2, L2, reduction="avg"), "margin_ranking: reduction must be one of"),
        (
            lambda: jaxloss.ntxent(np.zeros(2, np.int32), Y2, temperature=0.0),
            "ntxent: temperature must lie in (0, inf]; received temperature=0.0.",
        ),
    ],
)
def test_invalid_options_raise(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: jaxloss.triplet_margin(Y2, Y2, np.zeros((2, 4))),
            "triplet_margin: positive and negative must have the same shape; received anchor.shape=(2, 3), "
            "positive.shape=(2, 3), negative.shape=(2, 4).",
        ),
        (
            lambda: jaxloss.triplet_margin(Y2, Y2),
            "triplet_margin: called with two arrays, the second must stack positive and negative along axis -2",
        ),
        (
            lambda: jaxloss.triplet_margin(np.float32(0), np.float32(0), np.float32(0)),
            "triplet_margin: anchor, positive and negative must have the same shape of rank >= 1",
        ),
        (
            lambda: jaxloss.margin_ranking(np.zeros(3), np.zeros(4), np.zeros(3)),
            "margin_ranking: x1 and x2 must have the same shape; received y_true.shape=(3,), x1.shape=(4,), "
            "x2.shape=(3,).",
        ),
        (
            lambda: jaxloss.margin_ranking(np.zeros(3), np.zeros(4), np.zeros(4)),
            "margin_ranking: y_true, x1 and x2 must have the same shape of rank >= 1",
        ),
        (
            lambda: jaxloss.margin_ranking(np.zeros(3), np.zeros(3)),
            "margin_ranking: called with two arrays, the second must stack x1 and x2 along axis -1; expected "
            "y_pred.shape == y_true.shape + (2,); received y_true.shape=(3,), y_pred.shape=(3,).",
        ),
        (
            lambda: jaxloss.cosine_embedding(np.zeros(2), Y2, np.zeros((2, 4))),
            "cosine_embedding: x1 and x2 must have the same shape",
        ),
        (
            lambda: jaxloss.cosine_embedding(np.zeros(3), Y2, Y2),
            "cosine_embedding: x1 and x2 must have shape (..., D) and y_true their shape less the last axis",
        ),
        (lambda: jaxloss.cosine_embedding(np.zeros(2), Y2), "cosine_embedding: called with two arrays"),
        (lambda: jaxloss.ntxent(np.zeros(2), np.zeros((2, 3, 1))), "ntxent: embeddings y_pred must have shape (N, D)"),
        (lambda: jaxloss.ntxent(np.zeros(3, np.int32), Y2), "ntxent: y_true must hold one integer label per row"),
    ],
)
def test_shape_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_checked_accepts_the_three_array_form():
    rng = np.random.default_rng(21)
    y, x1, x2 = rng.choice([-1.0, 1.0], 4), rng.normal(size=4), rng.normal(size=4)
    safe = jaxloss.checked(jaxloss.margin_ranking)
    assert_close(safe(y, x1, x2, margin=0.2), jaxloss.margin_ranking(y, x1, x2, margin=0.2))
    a, p, n = (rng.normal(size=(3, 2)) for _ in range(3))
    assert_close(jaxloss.checked(jaxloss.triplet_margin)(a, p, n), jaxloss.triplet_margin(a, p, n))


def test_traced_margins_do_not_recompile():
    rng = np.random.default_rng(19)
    t, x = np.sign(rng.normal(size=(4, 3))), rng.normal(size=(4, 3)).astype(np.float32)

    @jax.jit
    def f(margin):
        return jaxloss.hinge_embedding(t, x, margin=margin) + jaxloss.triplet_margin(x, x + 1, x - 1, margin=margin)

    for margin in (0.5, 1.5):
        want = jaxloss.hinge_embedding(t, x, margin=margin) + jaxloss.triplet_margin(x, x + 1, x - 1, margin=margin)
        assert_close(f(margin), want, F32)


@pytest.mark.parametrize(
    "name,canonical",
    [
        ("Circle", "circle"),
        ("TripletMarginLoss", "triplet_margin"),
        ("MarginRankingLoss", "margin_ranking"),
        ("CosineEmbeddingLoss", "cosine_embedding"),
        ("HingeEmbeddingLoss", "hinge_embedding"),
        ("ntxent", "ntxent"),
        ("nt_xent", "ntxent"),
    ],
)
def test_get_resolves_names(name, canonical):
    assert jaxloss.get(name).spec.name == canonical
