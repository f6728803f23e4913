"""The losses beyond Keras against their oracles: optax, and PyTorch's documented formulas.

PyTorch is not a test dependency: its losses are written out below from the
``torch.nn.functional`` documentation (and ATen's source where the docs are
silent: cosine_embedding's 1e-12, gaussian_nll's straight-through clamp), as
functions of ``xp`` so that numpy gives reference values and ``jax.numpy``
(float64) gives reference gradients by autodiff. ``fixtures/torch_reference.json``
holds hand-derived values of PyTorch's ``reduction="none"`` output.
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import jaxloss
from jaxloss._core import REDUCTIONS, REGISTRY

from .cases.beyond import CASES
from .tolerances import F32, F64, assert_close

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "torch_reference.json"
REDUCTION_IDS = [str(r) for r in REDUCTIONS]

# ----------------------------------------------------------------------------
# PyTorch's formulas (elementwise ones return PyTorch's elementwise output)
# ----------------------------------------------------------------------------


def torch_smooth_l1(xp, t, x, beta=1.0):
    d = xp.abs(x - t)
    if beta == 0:
        return d
    return xp.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta)


def torch_gaussian_nll(xp, t, x, variance=None, full=False, eps=1e-6):
    var = xp.asarray(variance, dtype=x.dtype)
    if var.shape != x.shape and var.ndim and var.shape == x.shape[:-1]:
        var = var[..., None]
    var = xp.maximum(var, eps)
    out = 0.5 * (xp.log(var) + (x - t) ** 2 / var)
    return out + 0.5 * math.log(2 * math.pi) if full else out


def torch_poisson_nll(xp, t, x, log_input=True, full=False, eps=1e-8):
    out = xp.exp(x) - t * x if log_input else x - t * xp.log(x + eps)
    if full:
        big = xp.where(t > 1, t, 2.0)
        out = out + xp.where(t > 1, big * xp.log(big) - big + 0.5 * xp.log(2 * math.pi * big), 0.0)
    return out


def torch_multi_margin(xp, y, x, p=1, margin=1.0, class_weight=None):
    classes = x.shape[-1]
    is_target = xp.arange(classes) == y[..., None]
    x_y = xp.sum(xp.where(is_target, x, 0.0), axis=-1, keepdims=True)
    terms = xp.where(is_target, 0.0, xp.maximum(margin - x_y + x, 0.0) ** p)
    out = xp.sum(terms, axis=-1) / classes
    return out if class_weight is None else out * xp.asarray(class_weight)[y]


def torch_hinge_embedding(xp, t, x, margin=1.0):
    return xp.where(t == 1, x, xp.where(t == -1, xp.maximum(0.0, margin - x), 0.0))


def torch_soft_margin(xp, t, x):
    return xp.logaddexp(0.0, -t * x)  # log(1 + exp(-y x)), without PyTorch's overflow


def torch_multilabel_soft_margin(xp, t, x, class_weight=None):
    terms = t * -xp.logaddexp(0.0, -x) + (1 - t) * -xp.logaddexp(0.0, x)
    if class_weight is not None:
        terms = terms * xp.asarray(class_weight)
    return -xp.sum(terms, axis=-1) / x.shape[-1]


def torch_margin_ranking(xp, y, x1, x2, margin=0.0):
    return xp.maximum(0.0, -y * (x1 - x2) + margin)


def torch_cosine_embedding(xp, y, x1, x2, margin=0.0):
    cos = xp.sum(x1 * x2, -1) / xp.sqrt((xp.sum(x1 * x1, -1) + 1e-12) * (xp.sum(x2 * x2, -1) + 1e-12))
    return xp.where(y == 1, 1 - cos, xp.where(y == -1, xp.maximum(0.0, cos - margin), 0.0))


def torch_pairwise_distance(xp, a, b, p, eps):
    return xp.sum(xp.abs(a - b + eps) ** p, axis=-1) ** (1.0 / p)


def torch_triplet_margin(xp, anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False):
    d_ap = torch_pairwise_distance(xp, anchor, positive, p, eps)
    d_an = torch_pairwise_distance(xp, anchor, negative, p, eps)
    if swap:
        d_an = xp.minimum(d_an, torch_pairwise_distance(xp, positive, negative, p, eps))
    return xp.maximum(margin + d_ap - d_an, 0.0)


def ntxent_pairs(xp, labels, x, temperature=0.07, eps=None):
    """Per-pair NT-Xent: l_ij = log(e^s_ij + sum_{k: y_k != y_i} e^s_ik) - s_ij for i != j, y_i == y_j."""
    eps = np.finfo(x.dtype).eps if eps is None else eps
    unit = x / xp.sqrt(xp.maximum(xp.sum(x * x, -1, keepdims=True), eps))
    s = unit @ unit.T / temperature
    same = labels[:, None] == labels[None, :]
    positives = same & ~np.eye(len(labels), dtype=bool)
    negatives = xp.sum(xp.where(same, 0.0, xp.exp(s)), -1, keepdims=True)
    return xp.where(positives, xp.log(xp.exp(s) + negatives) - s, 0.0), np.asarray(positives)


# ----------------------------------------------------------------------------
# One reference per loss, in jaxloss's per-sample convention: (values, mask)
# ----------------------------------------------------------------------------


def _mean(values):
    return values.mean(-1) if isinstance(values, np.ndarray) else jnp.mean(values, -1)


def _pair(y_pred):
    return y_pred[..., 0], y_pred[..., 1]


def _pair2(y_pred):
    return y_pred[..., 0, :], y_pred[..., 1, :]


REFERENCES = {
    "multiclass_hinge": lambda xp, t, x: (optax.losses.multiclass_hinge_loss(x, t), None),
    "multi_margin": lambda xp, t, x, **o: (torch_multi_margin(xp, t, x, **o), None),
    "perceptron": lambda xp, t, x: (_mean(optax.losses.perceptron_loss(x, t)), None),
    "hinge_embedding": lambda xp, t, x, **o: (_mean(torch_hinge_embedding(xp, t, x, **o)), None),
    "soft_margin": lambda xp, t, x: (_mean(torch_soft_margin(xp, t, x)), None),
    "multilabel_soft_margin": lambda xp, t, x, **o: (torch_multilabel_soft_margin(xp, t, x, **o), None),
    "margin_ranking": lambda xp, t, x, **o: (torch_margin_ranking(xp, t, *_pair(x), **o), None),
    "cosine_embedding": lambda xp, t, x, **o: (torch_cosine_embedding(xp, t, *_pair2(x), **o), None),
    "triplet_margin": lambda xp, t, x, **o: (torch_triplet_margin(xp, t, *_pair2(x), **o), None),
    "smooth_l1": lambda xp, t, x, **o: (_mean(torch_smooth_l1(xp, t, x, **o)), None),
    "gaussian_nll": lambda xp, t, x, **o: (_mean(torch_gaussian_nll(xp, t, x, **o)), None),
    "poisson_nll": lambda xp, t, x, **o: (_mean(torch_poisson_nll(xp, t, x, **o)), None),
    "generalized_kl_divergence": lambda xp, t, x: (optax.losses.generalized_kl_divergence(jnp.log(x), t), None),
    "poly_loss": lambda xp, t, x, **o: (optax.losses.poly_loss_cross_entropy(x, t, **o), None),
    "sigmoid_focal": lambda xp, t, x, **o: (_mean(optax.losses.sigmoid_focal_loss(x, t, **o)), None),
    "sparsemax_loss": lambda xp, t, x: (
        optax.losses.multiclass_sparsemax_loss(x.reshape(-1, x.shape[-1]), t.reshape(-1)).reshape(t.shape),
        None,
    ),
    "ranking_softmax": lambda xp, t, x, where=None: (
        optax.losses.ranking_softmax_loss(x, t, where=None if where is None else jnp.asarray(where), reduce_fn=None),
        None if where is None else np.asarray(where).any(-1),
    ),
}


def reference(loss, y_true, y_pred, options, xp=np):
    # The references broadcast the numpy way; conftest makes jax.numpy reject rank promotion.
    with jax.numpy_rank_promotion("allow"):
        return _reference(loss, y_true, y_pred, options, xp)


def _reference(loss, y_true, y_pred, options, xp):
    if loss == "ntxent":
        # optax's epsilon is finfo(dtype).eps of the embeddings jaxloss computes in.
        eps = np.finfo(y_pred.dtype).eps
        if xp is np:
            return ntxent_pairs(np, np.asarray(y_true), np.float64(y_pred), eps=eps, **options)
        return ntxent_pairs(xp, np.asarray(y_true), y_pred, eps=eps, **options)
    if xp is np:
        with jax.enable_x64(True):
            yt = np.asarray(y_true) if np.issubdtype(np.asarray(y_true).dtype, np.integer) else np.float64(y_true)
            values, mask = REFERENCES[loss](np, yt, np.float64(y_pred), **options)
            return np.asarray(values, np.float64), mask
    return REFERENCES[loss](xp, y_true, y_pred, **options)


def keras_reduce(xp, values, sample_weight, reduction, mask=None):
    """Keras's reduction of per-sample values, with a mask as Keras's apply_mask."""
    weight = xp.ones(values.shape, values.dtype)
    if sample_weight is not None:
        sw = xp.asarray(sample_weight, values.dtype)
        weight = weight * sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
    if mask is not None:
        m = xp.asarray(mask, values.dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            m = m * (values.size / m.sum() if float(m.sum()) else 0.0)
        weight = weight * m
    weighted = values * weight
    if reduction in (None, "none"):
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean_with_sample_weight" and (sample_weight is not None or mask is not None):
        return weighted.sum() / weight.sum()
    return weighted.sum() / values.size


def _inputs(case, seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = case.make(rng)
    values, _ = reference(case.loss, y_true, y_pred, case.options)
    sw = rng.uniform(0.2, 2.0, values.shape[:1]).astype(np.float32)  # a prefix weight: one per leading row
    return y_true, y_pred, sw


def _fn(loss):
    return REGISTRY[loss][1]


# ----------------------------------------------------------------------------
# Values: every case, every reduction, with and without weights
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_values_match_oracle(case):
    y_true, y_pred, sw = _inputs(case, seed=10)
    values, mask = reference(case.loss, y_true, y_pred, case.options)
    assert np.all(np.isfinite(values))
    fn = _fn(case.loss)
    for reduction in REDUCTIONS:
        for weight in (None, sw):
            ours = fn(y_true, y_pred, sample_weight=weight, reduction=reduction, **case.options)
            want = keras_reduce(np, values, weight, reduction, mask)
            assert ours.dtype == jnp.float32 and ours.shape == np.shape(want), (reduction, ours.shape)
            assert_close(ours, want, F32, f"{case.id} reduction={reduction} weighted={weight is not None}")


# ----------------------------------------------------------------------------
# Gradients: closed form and autodiff against autodiff of the oracle (float64)
# ----------------------------------------------------------------------------


def _central_differences(f, x, h=1e-6):
    flat = np.asarray(x, np.float64).reshape(-1)
    out = np.empty_like(flat)
    for i in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        out[i] = (float(f(jnp.asarray(up.reshape(x.shape)))) - float(f(jnp.asarray(down.reshape(x.shape))))) / (2 * h)
    return out.reshape(x.shape)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "none"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradients_match_oracle(case, reduction):
    y_true, y_pred, sw = _inputs(case, seed=11)
    with jax.enable_x64(True):
        float_labels = np.issubdtype(y_true.dtype, np.floating)
        yt = jnp.asarray(y_true, jnp.float64) if float_labels else jnp.asarray(y_true)
        yp, w = jnp.asarray(y_pred, jnp.float64), jnp.asarray(sw, jnp.float64)
        mask = reference(case.loss, y_true, y_pred, case.options)[1]

        def oracle(t, x):
            values, _ = reference(case.loss, t, x, case.options, xp=jnp)
            return jnp.sum(keras_reduce(jnp, jnp.asarray(values), w, reduction, mask))

        def ours(t, x):
            return jnp.sum(_fn(case.loss)(t, x, sample_weight=w, reduction=reduction, **case.options))

        want = jax.grad(oracle, argnums=1)(yt, yp)
        closed = jaxloss.analytic_grad(case.loss, reduction=reduction, **case.options)(yt, yp, w)
        auto = jaxloss.grad(case.loss, reduction=reduction, **case.options)(yt, yp, w)
        assert closed.dtype == jnp.float64
        assert_close(closed, want, F64, "closed form vs the oracle's autodiff")
        assert_close(auto, want, F64, "jaxloss.grad vs the oracle's autodiff")
        # optax's ranking loss has NaN label gradients on masked items: jaxloss's are 0.
        if float_labels and "where" not in case.options:
            # The targets are an input too (distillation, soft labels): same gradient as the oracle's.
            got, want = np.asarray(jax.grad(ours)(yt, yp)), np.asarray(jax.grad(oracle)(yt, yp))
            if case.loss == "sigmoid_focal":
                # optax's log-space form takes logsumexp(..., b=[1 - y, y]), whose b-gradient is wrong
                # at y in {0, 1} (0.235 where the slope is 0.186): central differences are the oracle.
                want = _central_differences(lambda t: ours(t, yp), yt)
            # optax's generalized KL has NaN label gradients at zero targets; jaxloss's are finite.
            assert np.all(np.isfinite(got))
            assert_close(got[np.isfinite(want)], want[np.isfinite(want)], F64, "d/dy_true")


# ----------------------------------------------------------------------------
# Extremes: saturated logits, zero vectors, clamps; values and gradients finite
# ----------------------------------------------------------------------------

BIG = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], np.float32)
SIGNS = np.array([[1.0, -1.0, 1.0, -1.0, 1.0]], np.float32)
BINARY = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]], np.float32)

EXTREMES = [
    ("multiclass_hinge", {}, np.array([0, 2]), np.array([[1e4, -1e4, 0.0], [3.0, 3.0, 3.0]], np.float32)),
    ("multi_margin", {"p": 2}, np.array([1]), BIG),
    ("perceptron", {}, SIGNS, BIG),
    ("hinge_embedding", {}, SIGNS, np.abs(BIG)),
    ("soft_margin", {}, SIGNS, BIG),
    ("multilabel_soft_margin", {}, BINARY, BIG),
    ("margin_ranking", {}, np.array([1.0, -1.0]), np.array([[1e4, -1e4], [0.0, 0.0]], np.float32)),
    ("cosine_embedding", {}, np.array([1.0, -1.0]), np.zeros((2, 2, 3), np.float32)),
    ("triplet_margin", {}, np.zeros((1, 3), np.float32), np.zeros((1, 2, 3), np.float32)),
    ("triplet_margin", {"eps": 0.0, "swap": True}, np.zeros((1, 3), np.float32), np.zeros((1, 2, 3), np.float32)),
    ("smooth_l1", {"beta": 1e-6}, np.zeros((1, 5), np.float32), BIG),
    ("gaussian_nll", {"variance": 0.0}, np.zeros((1, 5), np.float32), BIG / 1e3),
    ("poisson_nll", {"full": True}, np.array([[0.0, 1.0, 2.0, 1e6, 5.0]], np.float32), BIG / 500),
    (
        "poisson_nll",
        {"log_input": False},
        np.array([[0.0, 1.0, 0.0, 3.0, 5.0]], np.float32),
        np.array([[0.0, 1e-30, 1e4, 1e-3, 50.0]], np.float32),
    ),
    (
        "generalized_kl_divergence",
        {},
        np.array([[0.0, 0.0, 1.0, 1e-30, 3.0]], np.float32),
        np.array([[0.0, 1.0, 1e-30, 1e-30, 1e4]], np.float32),
    ),
    ("poly_loss", {}, np.eye(5, dtype=np.float32)[[0]], BIG),
    ("sigmoid_focal", {"alpha": 0.25}, BINARY, BIG),
    ("sigmoid_focal", {"gamma": 0.5}, BINARY, BIG),
    ("sparsemax_loss", {}, np.array([0, 4]), np.concatenate([BIG, np.ones_like(BIG)])),
    (
        "ranking_softmax",
        {"where": np.array([[True, True, False], [False, False, False]])},
        np.array([[1.0, 0.0, 3.0], [1.0, 2.0, 0.0]], np.float32),
        np.array([[1e4, -1e4, np.inf], [0.0, -np.inf, 1.0]], np.float32),
    ),
    ("ntxent", {}, np.array([0, 0, 1, 1]), np.array([[0, 0], [1, 0], [1, 0], [1e-20, 0]], np.float32)),
]


@pytest.mark.parametrize("loss,options,y_true,y_pred", EXTREMES, ids=[f"{e[0]}{i}" for i, e in enumerate(EXTREMES)])
def test_extremes_are_finite_and_match(loss, options, y_true, y_pred):
    fn = _fn(loss)
    values = fn(y_true, y_pred, reduction="none", **options)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    auto = jaxloss.grad(loss, **options)(y_true, y_pred)
    assert np.all(np.isfinite(values)), values
    assert np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)), (closed, auto)
    assert_close(closed, auto, F32, "closed form vs autodiff")
    want, mask = reference(loss, y_true, y_pred, options)
    if mask is not None:
        want = np.where(mask, want, 0.0)
    finite = np.isfinite(want)
    assert_close(np.asarray(values)[finite], want[finite], {"rtol": 2e-5, "atol": 1e-5})


def test_generalized_kl_target_gradient_at_zero_targets():
    # d/dt of t log(t / p) - t + p at t = 0 with 0 log 0 = 0 held fixed: -log(p) - 1 (optax: NaN).
    p = np.array([[0.5, 2.0, 1.0]], np.float32)
    t = np.array([[0.0, 0.0, 1.0]], np.float32)
    g = jax.grad(lambda t: jaxloss.generalized_kl_divergence(t, p, reduction="sum"))(t)
    assert_close(g, [[-math.log(0.5) - 1, -math.log(2.0) - 1, 0.0]], F32)


def test_soft_margin_is_finite_where_torch_overflows():
    # PyTorch computes log1p(exp(-y x)): inf in float32 beyond -y x = 88. jaxloss uses softplus.
    value = jaxloss.soft_margin(np.array([[1.0]]), np.array([[-200.0]]), reduction="none")
    assert_close(value, [200.0])


# ----------------------------------------------------------------------------
# Multi-input losses: jax.grad with respect to every input
# ----------------------------------------------------------------------------


def _x64(rng, *shape):
    return jnp.asarray(rng.normal(0, 1, shape), jnp.float64)


@pytest.mark.parametrize(
    "options", [{}, {"p": 1.0, "margin": 2.0}, {"p": 3.0, "swap": True}, {"swap": True, "eps": 0.0, "margin": 1.5}]
)
def test_triplet_margin_gradients_for_every_input(options):
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        anchor = _x64(rng, 7, 4)
        positive, negative = anchor + _x64(rng, 7, 4), anchor + _x64(rng, 7, 4)
        w = jnp.asarray(rng.uniform(0.5, 2.0, 7))

        def ours(a, p, n):
            return jaxloss.triplet_margin(a, p, n, sample_weight=w, reduction="sum", **options)

        def plain(a, p, n):
            return jnp.sum(w * torch_triplet_margin(jnp, a, p, n, **options))

        got = jax.grad(ours, argnums=(0, 1, 2))(anchor, positive, negative)
        want = jax.grad(plain, argnums=(0, 1, 2))(anchor, positive, negative)
        for g, h, name in zip(got, want, ("anchor", "positive", "negative"), strict=True):
            assert_close(g, h, F64, f"d/d{name}")
        assert np.any(np.asarray(got[0]) != 0)
        check_grads(ours, (anchor, positive, negative), order=1, modes=("fwd", "rev"), eps=1e-6)
        # The two-array form: the anchor as y_true, (positive, negative) stacked as y_pred.
        stacked = jnp.stack([positive, negative], axis=-2)
        assert_close(
            jaxloss.triplet_margin(anchor, stacked, **options),
            jaxloss.triplet_margin(anchor, positive, negative, **options),
            F64,
        )
        closed = jaxloss.analytic_grad(jaxloss.triplet_margin, reduction="sum", **options)(anchor, stacked, w)
        assert_close(closed, jnp.stack(got[1:], axis=-2), F64, "analytic_grad on the stack")
        anchor_grad = jax.grad(
            lambda a: jaxloss.triplet_margin(a, stacked, sample_weight=w, reduction="sum", **options)
        )
        assert_close(anchor_grad(anchor), got[0], F64, "d/danchor in the two-array form")


@pytest.mark.parametrize("margin", [0.0, 0.4])
def test_margin_ranking_gradients_for_every_input(margin):
    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        y = jnp.asarray(rng.choice([-1.0, 1.0], (3, 5)))
        x1, x2 = _x64(rng, 3, 5), _x64(rng, 3, 5)

        def ours(y, a, b):
            return jaxloss.margin_ranking(y, a, b, margin=margin, reduction="mean")

        def plain(y, a, b):
            return jnp.mean(torch_margin_ranking(jnp, y, a, b, margin))

        got = jax.grad(ours, argnums=(0, 1, 2))(y, x1, x2)
        want = jax.grad(plain, argnums=(0, 1, 2))(y, x1, x2)
        for g, h in zip(got, want, strict=True):
            assert_close(g, h, F64)
        check_grads(ours, (y, x1, x2), order=1, modes=("fwd", "rev"), eps=1e-6)
        stacked = jnp.stack([x1, x2], -1)
        closed = jaxloss.analytic_grad(jaxloss.margin_ranking, margin=margin, reduction="mean")(y, stacked)
        assert_close(closed, jnp.stack(got[1:], -1), F64)
        assert_close(jaxloss.grad(jaxloss.margin_ranking, margin=margin, reduction="mean")(y, stacked), closed, F64)


@pytest.mark.parametrize("margin", [0.0, -0.3, 0.5])
def test_cosine_embedding_gradients_for_every_input(margin):
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        y = jnp.asarray(rng.choice([-1.0, 1.0], 9))
        x1, x2 = _x64(rng, 9, 4), _x64(rng, 9, 4)

        def ours(a, b):
            return jaxloss.cosine_embedding(y, a, b, margin=margin)

        def plain(a, b):
            return jnp.mean(torch_cosine_embedding(jnp, y, a, b, margin))

        got = jax.grad(ours, argnums=(0, 1))(x1, x2)
        want = jax.grad(plain, argnums=(0, 1))(x1, x2)
        for g, h in zip(got, want, strict=True):
            assert_close(g, h, F64)
        check_grads(ours, (x1, x2), order=1, modes=("fwd", "rev"), eps=1e-6)
        closed = jaxloss.analytic_grad(jaxloss.cosine_embedding, margin=margin)(y, jnp.stack([x1, x2], -2))
        assert_close(closed, jnp.stack(got, -2), F64)


def test_gaussian_nll_gradient_wrt_variance_is_straight_through():
    rng = np.random.default_rng(8)
    with jax.enable_x64(True):
        t, x = _x64(rng, 4, 3), _x64(rng, 4, 3)
        var = jnp.asarray(rng.uniform(0.1, 2.0, (4, 3))).at[0, 0].set(1e-9).at[1, 2].set(0.0)
        eps = 1e-6
        g_t, g_x, g_v = jax.grad(
            lambda t, x, v: jaxloss.gaussian_nll(t, x, variance=v, eps=eps, reduction="sum"), argnums=(0, 1, 2)
        )(t, x, var)
        clamped = jnp.maximum(var, eps)
        # PyTorch clamps under no_grad: d/dvar is the derivative at the clamped value, passed straight through.
        assert_close(g_v, 0.5 * (1 / clamped - (x - t) ** 2 / clamped**2) / 3, F64)
        assert_close(g_x, (x - t) / clamped / 3, F64)
        assert_close(g_t, -(x - t) / clamped / 3, F64)
        # Homoscedastic: one variance per sample, shape (4,) or (4, 1).
        v4 = jnp.asarray(rng.uniform(0.5, 2.0, 4))
        g4 = jax.grad(lambda v: jaxloss.gaussian_nll(t, x, variance=v, reduction="sum"), argnums=0)(v4)
        assert_close(g4, jnp.sum(0.5 * (1 / v4[:, None] - (x - t) ** 2 / v4[:, None] ** 2) / 3, -1), F64)
        g41 = jax.grad(lambda v: jaxloss.gaussian_nll(t, x, variance=v, reduction="sum"))(v4[:, None])
        assert_close(g41[:, 0], g4, F64)


@pytest.mark.parametrize("loss", ["multi_margin", "multilabel_soft_margin"])
def test_class_weight_gradient(loss):
    rng = np.random.default_rng(9)
    with jax.enable_x64(True):
        x = _x64(rng, 6, 4)
        t = (
            jnp.asarray(rng.integers(0, 4, 6))
            if loss == "multi_margin"
            else jnp.asarray(rng.integers(0, 2, (6, 4)), jnp.float64)
        )
        cw = jnp.asarray(rng.uniform(0.5, 2.0, 4))
        got = jax.grad(lambda w: _fn(loss)(t, x, class_weight=w))(cw)
        want = jax.grad(lambda w: jnp.mean(reference(loss, t, x, {"class_weight": w}, xp=jnp)[0]))(cw)
        assert_close(got, want, F64)


# ----------------------------------------------------------------------------
# ntxent: optax's scalar, per-pair values, weights, degenerate batches
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_ntxent_matches_optax_value_and_gradient(temperature):
    rng = np.random.default_rng(12)
    labels = rng.permutation(np.arange(12) % 5)
    x = rng.normal(0, 1, (12, 6)).astype(np.float32)
    ours = jaxloss.ntxent(labels, x, temperature=temperature)
    want = optax.losses.ntxent(jnp.asarray(x), jnp.asarray(labels), temperature)
    assert ours.shape == () and ours.dtype == jnp.float32
    assert_close(ours, want, F32)
    with jax.enable_x64(True):
        x64 = jnp.asarray(x, jnp.float64)
        want_grad = jax.grad(lambda e: optax.losses.ntxent(e, jnp.asarray(labels), temperature))(x64)
        assert_close(jaxloss.analytic_grad("ntxent", temperature=temperature)(labels, x64), want_grad, F64)
        assert_close(jaxloss.grad("ntxent", temperature=temperature)(labels, x64), want_grad, F64)


def test_ntxent_per_pair_values_and_anchor_weights():
    rng = np.random.default_rng(13)
    labels = np.array([0, 1, 0, 1, 2, 2, 0])
    x = rng.normal(0, 1, (7, 3)).astype(np.float32)
    pairs = jaxloss.ntxent(labels, x, temperature=0.3, reduction="none")
    values, mask = ntxent_pairs(np, labels, np.float64(x), 0.3, eps=np.finfo(np.float32).eps)
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


# ----------------------------------------------------------------------------
# ranking_softmax masks; sparsemax against optax's projection
# ----------------------------------------------------------------------------


def test_ranking_softmax_masked_lists_and_items():
    labels = np.array([[2.0, 0.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]], np.float32)
    scores = np.array([[1.0, -1.0, 0.5, -np.inf], [0.3, 0.2, 0.1, 0.0], [2.0, 1.0, 0.0, -1.0]], np.float32)
    where = np.array([[True, True, True, False], [False] * 4, [True] * 4])
    got = jaxloss.ranking_softmax(labels, scores, where=where)
    want = optax.losses.ranking_softmax_loss(jnp.asarray(scores), jnp.asarray(labels), where=jnp.asarray(where))
    assert_close(got, want, F32)
    none = jaxloss.ranking_softmax(labels, scores, where=where, reduction="none")
    assert float(none[1]) == 0.0 and np.isfinite(np.asarray(none)).all()
    g = jaxloss.analytic_grad("ranking_softmax", where=where)(labels, scores)
    assert np.all(np.asarray(g)[~where] == 0.0) and np.isfinite(np.asarray(g)).all()
    assert_close(g, jaxloss.grad("ranking_softmax", where=where)(labels, scores), F32)


def test_sparsemax_gradient_is_projection_minus_onehot():
    rng = np.random.default_rng(16)
    scores = rng.normal(0, 1, (8, 6)).astype(np.float32)
    labels = rng.integers(0, 6, 8)
    want = jax.vmap(optax.projections.projection_simplex)(jnp.asarray(scores)) - np.eye(6)[labels]
    got = jaxloss.analytic_grad("sparsemax_loss", reduction="sum")(labels, scores)
    assert_close(got, want, F32)


# ----------------------------------------------------------------------------
# Hand-derived PyTorch values
# ----------------------------------------------------------------------------

TORCH_CASES = json.loads(FIXTURES.read_text())["cases"]
ELEMENTWISE = {"smooth_l1", "gaussian_nll", "poisson_nll", "hinge_embedding", "soft_margin"}


@pytest.mark.parametrize("entry", TORCH_CASES, ids=lambda e: e["id"])
def test_torch_fixture(entry):
    loss, options = entry["loss"], dict(entry.get("options", {}))
    args = [
        np.asarray(a, np.int32 if entry.get("integer_labels") and i == 0 else np.float32)
        for i, a in enumerate(entry["inputs"])
    ]
    got = _fn(loss)(*args, reduction="none", **options)
    torch_none = np.asarray(entry["torch_none"], np.float64)
    want = torch_none.mean(-1) if loss in ELEMENTWISE else torch_none
    assert_close(got, want, F32, entry["derivation"])
    # The numpy references above agree with the hand-derived values too.
    refs = {
        "triplet_margin": lambda a, p, n: torch_triplet_margin(np, a, p, n, **options),
        "margin_ranking": lambda y, a, b: torch_margin_ranking(np, y, a, b, **options),
        "cosine_embedding": lambda y, a, b: torch_cosine_embedding(np, y, a, b, **options),
        "smooth_l1": lambda t, x: torch_smooth_l1(np, t, x, **options),
        "gaussian_nll": lambda t, x: torch_gaussian_nll(np, t, x, **options),
        "poisson_nll": lambda t, x: torch_poisson_nll(np, t, x, **options),
        "multi_margin": lambda y, x: torch_multi_margin(np, y, x, **options),
        "hinge_embedding": lambda t, x: torch_hinge_embedding(np, t, x, **options),
        "soft_margin": lambda t, x: torch_soft_margin(np, t, x),
        "multilabel_soft_margin": lambda t, x: torch_multilabel_soft_margin(np, t, x, **options),
    }
    f64 = [a if a.dtype == np.int32 else a.astype(np.float64) for a in args]
    assert_close(refs[loss](*f64), torch_none, F64)


# ----------------------------------------------------------------------------
# Options, shapes and names
# ----------------------------------------------------------------------------

Y2 = np.zeros((2, 3), np.float32)
L2 = np.zeros(2, np.int32)

INVALID = [
    (jaxloss.multi_margin, (L2, Y2), {"p": 3}, r"multi_margin: p must be 1 or 2; received p=3"),
    (jaxloss.multi_margin, (L2, Y2), {"p": 1.0}, r"multi_margin: p must be an int; received p=1.0"),
    (jaxloss.multi_margin, (L2, Y2), {"margin": float("nan")}, r"multi_margin: margin must lie in"),
    (jaxloss.smooth_l1, (Y2, Y2), {"beta": -0.1}, r"smooth_l1: beta must lie in \[0, inf\]; received beta=-0.1"),
    (jaxloss.gaussian_nll, (Y2, Y2), {"variance": -1.0}, r"gaussian_nll: variance must be non-negative"),
    (jaxloss.gaussian_nll, (Y2, Y2), {"variance": 1.0, "eps": 0.0}, r"gaussian_nll: eps must lie in \(0, inf\]"),
    (jaxloss.gaussian_nll, (Y2, Y2), {"variance": 1.0, "full": 1}, r"gaussian_nll: full must be True or False"),
    (jaxloss.poisson_nll, (Y2, Y2), {"log_input": "yes"}, r"poisson_nll: log_input must be True or False"),
    (jaxloss.poisson_nll, (Y2, Y2), {"eps": -1.0}, r"poisson_nll: eps must lie in \[0, inf\]"),
    (jaxloss.sigmoid_focal, (Y2, Y2), {"alpha": 1.5}, r"sigmoid_focal: alpha must lie in \[0, 1\]; received alpha=1.5"),
    (jaxloss.sigmoid_focal, (Y2, Y2), {"gamma": -1.0}, r"sigmoid_focal: gamma must lie in \[0, inf\]"),
    (jaxloss.poly_loss, (Y2, Y2), {"epsilon": None}, r"poly_loss: epsilon must be a number; received epsilon=None"),
    (
        jaxloss.ntxent,
        (L2, Y2),
        {"temperature": 0.0},
        r"ntxent: temperature must lie in \(0, inf\]; received temperature=0.0",
    ),
    (jaxloss.cosine_embedding, (L2, Y2, Y2), {"margin": 2.0}, r"cosine_embedding: margin must lie in \[-1, 1\]"),
    (
        jaxloss.hinge_embedding,
        (Y2, Y2),
        {"margin": None},
        r"hinge_embedding: margin must be a number; received margin=None",
    ),
    (jaxloss.sigmoid_focal, (Y2, Y2), {"alpha": "0.5"}, r"sigmoid_focal: alpha must be a number; received alpha='0.5'"),
    (jaxloss.triplet_margin, (Y2, Y2, Y2), {"p": 0.0}, r"triplet_margin: p must lie in \(0, inf\); received p=0.0"),
    (jaxloss.triplet_margin, (Y2, Y2, Y2), {"p": float("inf")}, r"triplet_margin: p must lie in \(0, inf\)"),
    (jaxloss.triplet_margin, (Y2, Y2, Y2), {"eps": -1e-3}, r"triplet_margin: eps must lie in \[0, inf\]"),
    (jaxloss.triplet_margin, (Y2, Y2, Y2), {"swap": "no"}, r"triplet_margin: swap must be True or False"),
    (jaxloss.margin_ranking, (L2, L2, L2), {"reduction": "avg"}, r"margin_ranking: reduction must be one of"),
]


@pytest.mark.parametrize("fn,args,options,match", INVALID, ids=lambda v: getattr(v, "__name__", None))
def test_invalid_options_raise(fn, args, options, match):
    with pytest.raises(ValueError, match=match):
        fn(*args, **options)


def test_gaussian_nll_requires_variance():
    with pytest.raises(TypeError, match="variance"):
        jaxloss.gaussian_nll(Y2, Y2)
    with pytest.raises(ValueError, match="gaussian_nll: variance is required"):
        jaxloss.get("gaussian_nll")


SHAPES = [
    (
        lambda: jaxloss.triplet_margin(Y2, Y2, np.zeros((2, 4))),
        r"triplet_margin: anchor, positive and negative must have the same shape; received anchor.shape=\(2, 3\), positive.shape=\(2, 3\), negative.shape=\(2, 4\)",
    ),
    (
        lambda: jaxloss.triplet_margin(Y2, Y2),
        r"triplet_margin: called with two arrays, the second must stack positive and negative along axis -2",
    ),
    (
        lambda: jaxloss.triplet_margin(np.float32(0), np.float32(0), np.float32(0)),
        r"triplet_margin: inputs must have rank >= 1",
    ),
    (
        lambda: jaxloss.margin_ranking(np.zeros(3), np.zeros(3), np.zeros(4)),
        r"margin_ranking: y_true, x1 and x2 must have the same shape.*x2.shape=\(4,\)",
    ),
    (
        lambda: jaxloss.margin_ranking(np.zeros(3), np.zeros(3)),
        r"margin_ranking: called with two arrays, the second must stack x1 and x2 along axis -1; expected y_pred.shape == y_true.shape \+ \(2,\); received y_true.shape=\(3,\), y_pred.shape=\(3,\)",
    ),
    (
        lambda: jaxloss.cosine_embedding(np.zeros(2), Y2, np.zeros((2, 4))),
        r"cosine_embedding: x1 and x2 must have the same shape",
    ),
    (
        lambda: jaxloss.cosine_embedding(np.zeros(3), Y2, Y2),
        r"cosine_embedding: x1 and x2 must have shape \(..., D\) and y_true their shape less the last axis",
    ),
    (lambda: jaxloss.cosine_embedding(np.zeros(2), Y2), r"cosine_embedding: called with two arrays"),
    (
        lambda: jaxloss.multiclass_hinge(np.zeros(3, np.int32), Y2),
        r"multiclass_hinge: y_true must hold one integer label per row of y_pred.*y_true.shape=\(3,\), y_pred.shape=\(2, 3\)",
    ),
    (
        lambda: jaxloss.multi_margin(L2, Y2, class_weight=np.ones(4)),
        r"multi_margin: class_weight must have shape \(C,\) = \(3,\).*class_weight.shape=\(4,\)",
    ),
    (
        lambda: jaxloss.multilabel_soft_margin(Y2, Y2, class_weight=np.ones((1, 3))),
        r"multilabel_soft_margin: class_weight must have shape",
    ),
    (
        lambda: jaxloss.gaussian_nll(Y2, Y2, variance=np.ones(3)),
        r"gaussian_nll: variance must have y_pred's shape \(2, 3\).*received variance.shape=\(3,\)",
    ),
    (
        lambda: jaxloss.ranking_softmax(Y2, Y2, where=np.ones((2, 2), bool)),
        r"ranking_softmax: where must have the scores' shape; received where.shape=\(2, 2\), y_pred.shape=\(2, 3\)",
    ),
    (lambda: jaxloss.ntxent(L2, np.zeros((2, 3, 1))), r"ntxent: embeddings y_pred must have shape \(N, D\)"),
    (lambda: jaxloss.ntxent(np.zeros(3, np.int32), Y2), r"ntxent: y_true must hold one integer label per row"),
    (
        lambda: jaxloss.smooth_l1(np.zeros((3, 1)), np.zeros((1, 3))),
        r"smooth_l1: y_true and y_pred must have the same shape",
    ),
    (lambda: jaxloss.sparsemax_loss(L2, Y2, sample_weight=np.ones(3)), r"sparsemax_loss: sample_weight must have"),
]


@pytest.mark.parametrize("call,match", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_shape_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sparse_labels_accept_a_trailing_unit_axis_and_float_labels():
    rng = np.random.default_rng(17)
    scores = rng.normal(size=(5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 5)
    for loss in ("multiclass_hinge", "multi_margin", "sparsemax_loss"):
        want = _fn(loss)(labels, scores, reduction="none")
        assert_close(_fn(loss)(labels[:, None], scores, reduction="none"), want, F32)
        assert_close(_fn(loss)(labels.astype(np.float32), scores, reduction="none"), want, F32)


@pytest.mark.parametrize(
    "name,canonical",
    [
        ("SmoothL1Loss", "smooth_l1"),
        ("smooth_l1_loss", "smooth_l1"),
        ("GaussianNLLLoss", "gaussian_nll"),
        ("PoissonNLLLoss", "poisson_nll"),
        ("TripletMarginLoss", "triplet_margin"),
        ("MarginRankingLoss", "margin_ranking"),
        ("CosineEmbeddingLoss", "cosine_embedding"),
        ("HingeEmbeddingLoss", "hinge_embedding"),
        ("SoftMarginLoss", "soft_margin"),
        ("MultiLabelSoftMarginLoss", "multilabel_soft_margin"),
        ("MultiMarginLoss", "multi_margin"),
        ("multiclass_hinge_loss", "multiclass_hinge"),
        ("perceptron_loss", "perceptron"),
        ("poly_loss_cross_entropy", "poly_loss"),
        ("sigmoid_focal_loss", "sigmoid_focal"),
        ("convex_kl_divergence", "generalized_kl_divergence"),
        ("ntxent", "ntxent"),
        ("multiclass_sparsemax_loss", "sparsemax_loss"),
        ("ranking_softmax_loss", "ranking_softmax"),
    ],
)
def test_get_resolves_names(name, canonical):
    options = {"variance": 1.0} if canonical == "gaussian_nll" else {}
    assert jaxloss.get(name, **options).spec.name == canonical


def test_get_binds_array_options():
    rng = np.random.default_rng(18)
    t, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    var = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    loss = jaxloss.get("GaussianNLLLoss", variance=var, reduction="sum")
    assert_close(loss(t, x), jaxloss.gaussian_nll(t, x, variance=var, reduction="sum"), F32)


def test_traced_hyperparameters_do_not_recompile():
    rng = np.random.default_rng(19)
    t, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)

    @jax.jit
    def f(beta, margin):
        return jaxloss.smooth_l1(t, x, beta=beta) + jaxloss.hinge_embedding(np.sign(t), x, margin=margin)

    assert_close(
        f(0.5, 1.0), jaxloss.smooth_l1(t, x, beta=0.5) + jaxloss.hinge_embedding(np.sign(t), x, margin=1.0), F32
    )


@pytest.mark.parametrize("loss", ["smooth_l1", "sigmoid_focal", "poly_loss", "soft_margin"])
def test_half_precision_inputs(loss):
    rng = np.random.default_rng(20)
    t = rng.integers(0, 2, (4, 5)).astype(np.float32)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    got = _fn(loss)(jnp.asarray(t, jnp.bfloat16), jnp.asarray(x, jnp.bfloat16))
    want = _fn(loss)(t, np.asarray(jnp.asarray(x, jnp.bfloat16), np.float32))
    assert got.dtype == jnp.float32
    assert_close(got, want, F32)
    assert jaxloss.analytic_grad(loss)(t, jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16
