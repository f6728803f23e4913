"""jaxloss._hinge: Keras's label conversion and formulas, optax's and PyTorch's margin losses.

Keras/optax/PyTorch parity on every declared example, closed form against autodiff and
finite differences live in tests/test_registry.py; this file checks the rules by
hand-computed examples, against live PyTorch on hand-derived cases, at kinks and
extremes, the labels rule, NaN propagation, options and shapes.
"""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jaxloss

from .tolerances import F32, F64, HALF, assert_close
from .torch_oracle import F, needs_torch, require_torch, torch

KERAS_HINGES = ["hinge", "squared_hinge", "categorical_hinge"]
FAMILY = [*KERAS_HINGES, "multiclass_hinge", "multi_margin", "perceptron", "soft_margin", "multilabel_soft_margin"]
SPARSE = ["multiclass_hinge", "multi_margin"]


def _rng():
    return np.random.default_rng(7)


def _fn(name):
    return getattr(jaxloss, name)


def _torch(x, dtype=None):
    require_torch()
    return torch.as_tensor(np.asarray(x), dtype=torch.float64 if dtype is None else dtype)


# --------------------------------------------------------------------------
# Independent float64 references (PyTorch's and optax's documented formulas)
# --------------------------------------------------------------------------


def ref_multi_margin(y, x, p=1, margin=1.0, class_weight=None):
    classes = x.shape[-1]
    is_target = np.arange(classes) == y[..., None]
    x_y = np.sum(np.where(is_target, x, 0.0), axis=-1, keepdims=True)
    terms = np.where(is_target, 0.0, np.maximum(margin - x_y + x, 0.0) ** p)
    out = np.sum(terms, axis=-1) / classes
    return out if class_weight is None else out * np.asarray(class_weight)[y]


def ref_multilabel_soft_margin(xp, t, x, class_weight=None):
    terms = t * -xp.logaddexp(0.0, -x) + (1 - t) * -xp.logaddexp(0.0, x)
    if class_weight is not None:
        terms = terms * xp.asarray(class_weight)[None, :]
    return -xp.sum(terms, axis=-1) / x.shape[-1]


# --------------------------------------------------------------------------
# hinge / squared_hinge: the batch-wide {0, 1} -> {-1, 1} conversion
# --------------------------------------------------------------------------


def test_binary_labels_equal_signed_labels():
    rng = _rng()
    y01 = rng.integers(0, 2, (6, 5)).astype(np.float32)
    y_pred = rng.uniform(-2, 2, (6, 5)).astype(np.float32)
    for loss in (jaxloss.hinge, jaxloss.squared_hinge):
        assert_close(loss(y01, y_pred, reduction="none"), loss(2 * y01 - 1, y_pred, reduction="none"))


def test_conversion_is_batch_wide():
    # One label outside {0, 1} anywhere in the call: every label is used unconverted.
    y_true = np.array([[0.0, 1.0], [1.0, 0.5]], np.float32)
    y_pred = np.array([[0.5, -1.0], [2.0, 1.0]], np.float32)
    expected = np.mean(np.maximum(1 - y_true * y_pred, 0), axis=-1)
    assert_close(jaxloss.hinge(y_true, y_pred, reduction="none"), expected)
    assert_close(
        jaxloss.squared_hinge(y_true, y_pred, reduction="none"), np.mean(np.maximum(1 - y_true * y_pred, 0) ** 2, -1)
    )
    # The same first row in an all-binary batch is converted: 0 becomes -1.
    converted = jaxloss.hinge(y_true[:1], y_pred[:1], reduction="none")
    assert_close(converted, [np.mean(np.maximum(1 - np.array([-1.0, 1.0]) * y_pred[0], 0))])


@pytest.mark.parametrize("loss,cls", [("hinge", "Hinge"), ("squared_hinge", "SquaredHinge")])
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4)])
def test_not_binary_batch_matches_keras(loss, cls, shape):
    # Labels 0, 1 and one 0.5 (outside the declared domain, so not a registry example):
    # Keras leaves the whole batch unconverted, and so does jaxloss.
    rng = _rng()
    y_true = rng.integers(0, 2, shape).astype(np.float32)
    y_true.flat[0] = 0.5
    y_pred = rng.uniform(-2, 2, shape).astype(np.float32)
    sw = rng.uniform(0.2, 2.0, shape[:-1]).astype(np.float32)
    for reduction in ("none", "sum_over_batch_size", "mean_with_sample_weight"):
        ours = _fn(loss)(y_true, y_pred, sample_weight=sw, reduction=reduction)
        theirs = getattr(keras.losses, cls)(reduction=reduction)(y_true, y_pred, sample_weight=sw)
        assert_close(ours, theirs, F32, reduction)


def test_hand_computed_values():
    y_true = np.array([[1.0, -1.0, 1.0]], np.float32)
    y_pred = np.array([[0.5, 0.5, 2.0]], np.float32)
    # margins 1 - t p = 0.5, 1.5, -1 -> hinge mean(0.5, 1.5, 0) = 2/3, squared mean(0.25, 2.25, 0) = 5/6
    assert_close(jaxloss.hinge(y_true, y_pred), 2 / 3)
    assert_close(jaxloss.squared_hinge(y_true, y_pred), 5 / 6)


def test_integer_labels():
    y_pred = np.array([[0.3, -0.2], [1.5, 0.0]], np.float32)
    ints = np.array([[1, 0], [0, 1]], np.int32)
    assert_close(jaxloss.hinge(ints, y_pred), jaxloss.hinge(ints.astype(np.float32), y_pred))


# --------------------------------------------------------------------------
# categorical_hinge: Keras's formula
# --------------------------------------------------------------------------


def test_categorical_hinge_formula():
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    y_pred = np.array([[0.3, 0.5, 0.1], [2.0, 0.1, 0.2], [-1.0, -2.0, -0.5]], np.float32)
    # neg = max((1 - y) p): 0.3, 0.2 and 0 (all other scores negative: the true class's masked 0 wins).
    # pos = 0.5, 2.0, -0.5 -> max(neg - pos + 1, 0) = 0.8, 0, 1.5
    assert_close(jaxloss.categorical_hinge(y_true, y_pred, reduction="none"), [0.8, 0.0, 1.5])


def test_categorical_hinge_tied_max_splits_gradient():
    # Two wrong classes tie for the max: autodiff shares the gradient between them.
    y_true = np.array([[1.0, 0.0, 0.0]], np.float32)
    y_pred = np.array([[0.2, 0.7, 0.7]], np.float32)
    closed = jaxloss.analytic_grad("categorical_hinge", reduction="sum")(y_true, y_pred)
    auto = jaxloss.grad("categorical_hinge", reduction="sum")(y_true, y_pred)
    assert_close(closed, [[-1.0, 0.5, 0.5]])
    assert_close(closed, auto)


# --------------------------------------------------------------------------
# Kinks: the closed form takes autodiff's subgradient
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", KERAS_HINGES)
def test_closed_form_at_the_kink(loss):
    if loss == "categorical_hinge":
        y_true = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
        y_pred = np.array([[1.5, 0.5], [0.25, 1.0]], np.float32)  # neg - pos + 1 = 0 for the first row
    else:
        y_true = np.array([[1.0, -1.0], [1.0, 1.0]], np.float32)
        y_pred = np.array([[1.0, -1.0], [0.5, 1.0]], np.float32)  # t p = 1 exactly
    for reduction in ("sum", "sum_over_batch_size"):
        closed = jaxloss.analytic_grad(loss, reduction=reduction)(y_true, y_pred)
        auto = jaxloss.grad(loss, reduction=reduction)(y_true, y_pred)
        assert_close(closed, auto, F32, loss)


def test_hinge_kink_is_half_slope():
    y_true = np.array([[1.0, -1.0]], np.float32)
    y_pred = np.array([[1.0, 0.0]], np.float32)
    # d/dp mean(max(1 - t p, 0)): -t/2 at the kink (1/2 of the one-sided slopes), -t/d below it.
    assert_close(jaxloss.analytic_grad("hinge", reduction="sum")(y_true, y_pred), [[-0.25, 0.5]])


@pytest.mark.parametrize(
    "loss,y_true,y_pred,expected",
    [
        # relu's convention at the kink (0), as optax's and PyTorch's: y p = 0 for perceptron,
        # margin - s_y + s_j = 0 for multi_margin.
        ("perceptron", [[1.0, -1.0]], [[0.0, 0.0]], [[0.0, 0.0]]),
        ("multi_margin", [0], [[1.0, 0.0, -1.0]], [[0.0, 0.0, 0.0]]),
    ],
)
def test_relu_kinks_take_zero_slope(loss, y_true, y_pred, expected):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, np.float32)
    assert_close(jaxloss.analytic_grad(loss, reduction="sum")(y_true, y_pred), expected)
    assert_close(jaxloss.grad(loss, reduction="sum")(y_true, y_pred), expected)


# --------------------------------------------------------------------------
# PyTorch, live, on hand-derived cases (PyTorch's reduction="none" output)
# --------------------------------------------------------------------------

TORCH_CASES = [
    # y = 0: max(0, 1 - 0.5 + 1) = 1.5, max(0, 1 - 0.5 - 1) = 0; sum / C = 1.5 / 3
    ("multi_margin", {}, [0], [[0.5, 1.0, -1.0]], [0.5]),
    # p = 2: w_y sum h^2 / C: 2 * 1.5^2 / 3; y = 2: h = (0.75, 1.25), w = 0.5
    ("multi_margin", {"p": 2, "class_weight": [2.0, 1.0, 0.5]}, [0, 2], [[0.5, 1.0, -1.0], [0.0, 0.5, 0.25]], None),
    # margin 0.5: max(0, 0.5 - 0 + 0) / 2
    ("multi_margin", {"margin": 0.5}, [1], [[0.0, 0.0]], [0.25]),
    # log(1 + exp(-y x)): log 2; log(1 + 3) = log 4 (elementwise: jaxloss averages)
    ("soft_margin", {}, [[1.0, -1.0]], [[0.0, np.log(3.0)]], [(np.log(2.0) + np.log(4.0)) / 2]),
    # -(log sigma(0)) = log 2; -log(1 - sigma(log 3)) = log 4; mean over 2 classes
    ("multilabel_soft_margin", {}, [[1.0, 0.0]], [[0.0, np.log(3.0)]], [(np.log(2.0) + np.log(4.0)) / 2]),
    # weights (3, 0.5) multiply each class term before the mean
    (
        "multilabel_soft_margin",
        {"class_weight": [3.0, 0.5]},
        [[1.0, 0.0]],
        [[0.0, np.log(3.0)]],
        [(3 * np.log(2.0) + 0.5 * np.log(4.0)) / 2],
    ),
]


def _torch_value(loss, options, y_true, y_pred):
    x = _torch(y_pred)
    if loss == "multi_margin":
        weight = None if options.get("class_weight") is None else _torch(options["class_weight"])
        return F.multi_margin_loss(
            x,
            _torch(y_true, torch.int64),
            p=options.get("p", 1),
            margin=options.get("margin", 1.0),
            weight=weight,
            reduction="none",
        )
    if loss == "soft_margin":
        return F.soft_margin_loss(x, _torch(y_true), reduction="none").mean(-1)
    weight = None if options.get("class_weight") is None else _torch(options["class_weight"])
    return F.multilabel_soft_margin_loss(x, _torch(y_true), weight=weight, reduction="none")


@pytest.mark.parametrize("loss,options,y_true,y_pred,derived", TORCH_CASES, ids=lambda v: str(v)[:24])
def test_live_torch_hand_derived(loss, options, y_true, y_pred, derived):
    y_true = np.asarray(y_true, np.int32 if loss == "multi_margin" else np.float32)
    y_pred = np.asarray(y_pred, np.float32)
    ours = _fn(loss)(y_true, y_pred, reduction="none", **options)
    theirs = _torch_value(loss, options, y_true, y_pred).numpy()
    assert_close(ours, theirs, F32)
    if derived is None:  # the p = 2, weighted case: 2 * 1.5^2 / 3 and 0.5 * (0.75^2 + 1.25^2) / 3
        derived = [2 * 1.5**2 / 3, 0.5 * (0.75**2 + 1.25**2) / 3]
    assert_close(theirs, derived, F64)


@needs_torch
def test_soft_margin_is_finite_where_torch_overflows():
    # PyTorch computes log1p(exp(-y x)): inf in float32 beyond -y x = 88. jaxloss uses softplus.
    value = jaxloss.soft_margin(np.array([[1.0]]), np.array([[-200.0]]), reduction="none")
    assert_close(value, [200.0])
    assert F.soft_margin_loss(torch.tensor([[-200.0]]), torch.tensor([[1.0]])).item() == float("inf")


# --------------------------------------------------------------------------
# Extremes: saturated scores; values and gradients finite, equal to float64 references
# --------------------------------------------------------------------------

BIG = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], np.float32)
SIGNS = np.array([[1.0, -1.0, 1.0, -1.0, 1.0]], np.float32)
BINARY = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]], np.float32)

EXTREMES = [
    (
        "multiclass_hinge",
        {},
        np.array([0, 2]),
        np.array([[1e4, -1e4, 0.0], [3.0, 3.0, 3.0]], np.float32),
        lambda t, x: np.asarray(optax.losses.multiclass_hinge_loss(x, t)),
    ),
    ("multi_margin", {"p": 2}, np.array([1]), BIG, lambda t, x: ref_multi_margin(t, x, p=2)),
    ("perceptron", {}, SIGNS, BIG, lambda t, x: np.mean(np.maximum(0.0, -t * x), -1)),
    ("soft_margin", {}, SIGNS, BIG, lambda t, x: np.mean(np.logaddexp(0.0, -t * x), -1)),
    ("multilabel_soft_margin", {}, BINARY, BIG, lambda t, x: ref_multilabel_soft_margin(np, t, x)),
]


@pytest.mark.parametrize("loss,options,y_true,y_pred,ref", EXTREMES, ids=[e[0] for e in EXTREMES])
def test_extremes_are_finite_and_match(loss, options, y_true, y_pred, ref):
    values = _fn(loss)(y_true, y_pred, reduction="none", **options)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    auto = jaxloss.grad(loss, **options)(y_true, y_pred)
    assert np.all(np.isfinite(values)), values
    assert np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)), (closed, auto)
    assert_close(closed, auto, F32, "closed form vs autodiff")
    t = y_true if np.issubdtype(y_true.dtype, np.integer) else y_true.astype(np.float64)
    assert_close(values, ref(t, y_pred.astype(np.float64)), {"rtol": 2e-5, "atol": 1e-5})


# --------------------------------------------------------------------------
# NaN propagates (value and gradient), as in optax and PyTorch
# --------------------------------------------------------------------------


def _draw(loss, rng):
    scores = rng.uniform(-2, 2, (4, 3)).astype(np.float32)
    if loss in SPARSE:
        return rng.integers(0, 3, 4), scores
    if loss == "categorical_hinge":
        return np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)], scores
    if loss == "multilabel_soft_margin":
        return rng.integers(0, 2, (4, 3)).astype(np.float32), scores
    return rng.choice([-1.0, 1.0], (4, 3)).astype(np.float32), scores


@pytest.mark.parametrize("loss", FAMILY)
def test_nan_score_gives_nan_value_and_gradient(loss):
    y_true, y_pred = _draw(loss, _rng())
    y_pred[1, 2] = np.nan
    values = np.asarray(_fn(loss)(y_true, y_pred, reduction="none"))
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2, 3]])), values
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, reduction="sum")(y_true, y_pred))
        assert np.any(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2, 3]])), (grad.__name__, g)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron", "soft_margin", "multilabel_soft_margin"])
def test_nan_target_gives_nan_value_and_gradient(loss):
    y_true, y_pred = _draw(loss, _rng())
    y_true[2, 0] = np.nan
    values = np.asarray(_fn(loss)(y_true, y_pred, reduction="none"))
    assert np.isnan(values[2]) and np.all(np.isfinite(values[[0, 1, 3]]))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, reduction="sum")(y_true, y_pred))
        assert np.any(np.isnan(g[2])) and np.all(np.isfinite(g[[0, 1, 3]])), grad.__name__


@needs_torch
def test_perceptron_nan_is_not_zero_like_optax_and_torch():
    # The perceptron loss used to select NaN margins away: 0 where optax and PyTorch give NaN.
    y_true = np.array([[1.0, -1.0]], np.float32)
    y_pred = np.array([[np.nan, 0.5]], np.float32)
    ours = jaxloss.perceptron(y_true, y_pred, reduction="none")
    assert np.isnan(float(ours[0]))
    assert np.isnan(float(optax.losses.perceptron_loss(jnp.asarray(y_pred), jnp.asarray(y_true)).mean()))
    assert torch.isnan(torch.clamp(-torch.tensor(y_true) * torch.tensor(y_pred), min=0.0)[0, 0])
    # Their gradients at the NaN are 0 (a select); jaxloss's are NaN, closed form and autodiff alike.
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        assert np.isnan(np.asarray(grad("perceptron")(y_true, y_pred))[0, 0]), grad.__name__


# --------------------------------------------------------------------------
# The labels rule: a label that names no class gives NaN for its sample
# --------------------------------------------------------------------------

SCORES = np.array([[0.5, 1.0, -1.0], [0.0, 0.3, 0.2], [1.0, -0.5, 0.25], [0.1, 0.2, 0.3]], np.float32)


@pytest.mark.parametrize("loss", SPARSE)
@pytest.mark.parametrize("label", [-1, 3, 7, 1.5, np.nan, np.inf])
def test_label_naming_no_class_gives_nan(loss, label):
    valid = np.array([0, 2, 1, 1])
    bad = valid.astype(np.float64 if isinstance(label, float) else np.int64).copy()
    bad[1] = label
    options = {"class_weight": np.array([1.0, 2.0, 3.0])} if loss == "multi_margin" else {}
    base = np.asarray(_fn(loss)(valid, SCORES, reduction="none", **options))
    values = np.asarray(_fn(loss)(bad, SCORES, reduction="none", **options))
    assert np.isnan(values[1])
    assert_close(values[[0, 2, 3]], base[[0, 2, 3]])
    assert np.isnan(float(_fn(loss)(bad, SCORES, **options)))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, reduction="sum", **options)(bad, SCORES))
        assert np.any(np.isnan(g[1])), grad.__name__
        assert_close(g[[0, 2, 3]], np.asarray(grad(loss, reduction="sum", **options)(valid, SCORES))[[0, 2, 3]])


def test_multi_margin_label_minus_one_does_not_take_the_last_class_weight():
    # -1 used to wrap around to class_weight[-1] and score as the last class.
    weight = np.array([1.0, 1.0, 10.0])
    last = jaxloss.multi_margin(np.array([2]), SCORES[:1], class_weight=weight, reduction="none")
    wrapped = jaxloss.multi_margin(np.array([-1]), SCORES[:1], class_weight=weight, reduction="none")
    assert np.isfinite(float(last[0])) and np.isnan(float(wrapped[0]))


def test_integral_float_labels_and_unit_axis_are_accepted():
    rng = np.random.default_rng(17)
    scores = rng.normal(size=(5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 5)
    for loss in SPARSE:
        want = _fn(loss)(labels, scores, reduction="none")
        assert_close(_fn(loss)(labels[:, None], scores, reduction="none"), want, F32)
        assert_close(_fn(loss)(labels.astype(np.float32), scores, reduction="none"), want, F32)


# --------------------------------------------------------------------------
# Zero classes and empty batches
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["categorical_hinge", "multiclass_hinge", "multi_margin", "multilabel_soft_margin"])
def test_zero_classes_is_a_clear_error(loss):
    y_true = np.zeros((4,), np.int32) if loss in SPARSE else np.zeros((4, 0), np.float32)
    y_pred = np.zeros((4, 0), np.float32)
    pattern = re.escape(f"{loss}: y_pred must hold at least one class along its last axis; received y_true.shape=")
    with pytest.raises(ValueError, match=pattern + r".*y_pred\.shape=\(4, 0\)"):
        _fn(loss)(y_true, y_pred)


@pytest.mark.parametrize("loss", FAMILY)
def test_empty_batch_passes_through(loss):
    y_true, y_pred = _draw(loss, _rng())
    for reduction in ("sum", "sum_over_batch_size", "none"):
        out = _fn(loss)(y_true[:0], y_pred[:0], reduction=reduction)
        assert out.shape == (0,), (reduction, out.shape)


# --------------------------------------------------------------------------
# Gradients with respect to options and targets
# --------------------------------------------------------------------------


def test_class_weight_gradient():
    rng = np.random.default_rng(9)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(0, 1, (6, 4)))
        labels = rng.integers(0, 4, 6)
        targets = jnp.asarray(rng.integers(0, 2, (6, 4)), jnp.float64)
        cw = jnp.asarray(rng.uniform(0.5, 2.0, 4))
        got = jax.grad(lambda w: jaxloss.multi_margin(labels, x, class_weight=w))(cw)
        # d/dw_c of mean_i w_{y_i} h_i: the mean of h_i over the samples of class c.
        h = ref_multi_margin(labels, np.asarray(x))
        want = np.array([np.sum(h[labels == c]) for c in range(4)]) / 6
        assert_close(got, want, F64)
        got = jax.grad(lambda w: jaxloss.multilabel_soft_margin(targets, x, class_weight=w))(cw)
        want = jax.grad(lambda w: jnp.mean(ref_multilabel_soft_margin(jnp, targets, x, w)))(cw)
        assert_close(got, want, F64)


@needs_torch
@pytest.mark.parametrize("loss", ["soft_margin", "multilabel_soft_margin", "perceptron", "hinge"])
def test_target_gradient_matches_torch(loss):
    # The targets are an input too (soft labels, distillation): PyTorch's autograd is the oracle
    # (its soft_margin_loss has no target gradient: the same formula in torch ops stands in).
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, (5, 4))
    t = rng.uniform(-1, 1, (5, 4)) if loss != "multilabel_soft_margin" else rng.uniform(0, 1, (5, 4))
    with jax.enable_x64(True):
        got = jax.grad(lambda t: _fn(loss)(t, jnp.asarray(x)))(jnp.asarray(t))
    tt, xx = _torch(t).requires_grad_(True), _torch(x)
    if loss == "soft_margin":
        value = torch.nn.functional.softplus(-tt * xx).mean()
    elif loss == "multilabel_soft_margin":
        value = F.multilabel_soft_margin_loss(xx, tt)
    elif loss == "perceptron":
        value = torch.clamp(-tt * xx, min=0.0).mean()
    else:  # soft targets in (-1, 1): not all 0/1, so Keras's hinge uses them as they are
        value = torch.clamp(1.0 - tt * xx, min=0.0).mean()
    value.backward()
    assert_close(got, tt.grad.numpy(), F64)


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------

L2 = np.zeros(2, np.int32)
Y2 = np.zeros((2, 3), np.float32)


@pytest.mark.parametrize(
    "loss,args,options,message",
    [
        ("multi_margin", (L2, Y2), {"p": 3}, "multi_margin: p must be one of 1, 2; received p=3."),
        ("multi_margin", (L2, Y2), {"p": 1.0}, "multi_margin: p must be an int; received p=1.0."),
        ("multi_margin", (L2, Y2), {"margin": float("nan")}, "multi_margin: margin must lie in [-inf, inf]"),
        ("multi_margin", (L2, Y2), {"margin": None}, "multi_margin: margin must be a number; received margin=None."),
        ("multi_margin", (L2, Y2), {"margin": np.array([0.5, 1.0])}, "multi_margin: margin must be a scalar"),
        (
            "multi_margin",
            (L2, Y2),
            {"class_weight": np.ones(4)},
            "multi_margin: class_weight must be one value per class, shape (3,) for the class axis 1 of y_pred; "
            "received class_weight.shape=(4,), y_pred.shape=(2, 3).",
        ),
        (
            "multi_margin",
            (L2, Y2),
            {"class_weight": [1.0, -1.0, 1.0]},
            "multi_margin: class_weight must lie in [0, inf]",
        ),
        (
            "multilabel_soft_margin",
            (Y2, Y2),
            {"class_weight": np.ones((1, 3))},
            "multilabel_soft_margin: class_weight must be a vector of shape (C,), one value per class; "
            "received class_weight of shape (1, 3).",
        ),
    ],
)
def test_invalid_options_raise(loss, args, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _fn(loss)(*args, **options)


def test_class_weight_list_equals_array():
    rng = _rng()
    labels, scores = rng.integers(0, 3, 5), rng.normal(size=(5, 3)).astype(np.float32)
    assert_close(
        jaxloss.multi_margin(labels, scores, class_weight=[0.5, 1.0, 2.0]),
        jaxloss.multi_margin(labels, scores, class_weight=np.array([0.5, 1.0, 2.0])),
    )


def test_traced_margin_does_not_recompile():
    rng = _rng()
    labels, scores = rng.integers(0, 3, 5), rng.normal(size=(5, 3)).astype(np.float32)
    f = jax.jit(lambda m: jaxloss.multi_margin(labels, scores, margin=m))
    assert_close(f(0.5), jaxloss.multi_margin(labels, scores, margin=0.5))
    assert_close(f(2.0), jaxloss.multi_margin(labels, scores, margin=2.0))


# --------------------------------------------------------------------------
# Shapes, dtypes, names, transformations
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", KERAS_HINGES)
@pytest.mark.parametrize("shapes", [((5, 1), (1, 5)), ((4,), (5,)), ((2, 3), (2, 4))])
def test_broadcast_only_shapes_raise(loss, shapes):
    a, b = (np.zeros(s, np.float32) for s in shapes)
    message = f"{loss}: y_true and y_pred must have the same shape; received y_true.shape={shapes[0]}, y_pred.shape={shapes[1]}"
    with pytest.raises(ValueError, match=re.escape(message)):
        _fn(loss)(a, b)


def test_sparse_label_shape_error_names_both():
    with pytest.raises(
        ValueError,
        match=r"multiclass_hinge: y_true must hold one integer label per row of y_pred.*y_true.shape=\(3,\), y_pred.shape=\(2, 3\)",
    ):
        jaxloss.multiclass_hinge(np.zeros(3, np.int32), Y2)


def test_shape_guard_survives_chex_disable_asserts():
    chex.disable_asserts()
    try:
        with pytest.raises(ValueError, match=r"hinge: .*\(5, 1\).*\(1, 5\)"):
            jaxloss.hinge(np.ones((5, 1)), np.ones((1, 5)))
    finally:
        chex.enable_asserts()


@pytest.mark.parametrize("loss", KERAS_HINGES)
def test_unknown_option_and_reduction(loss):
    fn = _fn(loss)
    with pytest.raises(ValueError, match=rf"{loss}: reduction must be one of .*received reduction='avg'"):
        fn(np.ones((2, 3)), np.ones((2, 3)), reduction="avg")
    with pytest.raises(ValueError, match=rf"jaxloss.get: {loss} has no option\(s\) \['delta'\]"):
        jaxloss.get(loss, delta=1.0)


@pytest.mark.parametrize("loss", [*KERAS_HINGES, "soft_margin", "perceptron", "multilabel_soft_margin"])
def test_half_precision(loss):
    rng = _rng()
    y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    if loss in ("soft_margin", "perceptron"):
        y_true = 2 * y_true - 1
    y_pred = rng.uniform(-2, 2, (6, 4)).astype(np.float32)
    fn = _fn(loss)
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(y_pred, dtype)
        value = fn(y_true, low)
        assert value.dtype == jnp.float32
        assert_close(value, fn(y_true, np.asarray(low, np.float32)), F32)
        g = jaxloss.analytic_grad(loss)(y_true, low)
        assert g.dtype == dtype
        assert_close(g, jaxloss.grad(loss)(y_true, np.asarray(low, np.float32)), HALF)


@pytest.mark.parametrize(
    "name,canonical",
    [
        ("Hinge", "hinge"),
        ("SquaredHinge", "squared_hinge"),
        ("CategoricalHinge", "categorical_hinge"),
        ("SoftMarginLoss", "soft_margin"),
        ("MultiLabelSoftMarginLoss", "multilabel_soft_margin"),
        ("MultiMarginLoss", "multi_margin"),
        ("multiclass_hinge_loss", "multiclass_hinge"),
        ("perceptron_loss", "perceptron"),
    ],
)
def test_get_resolves_names(name, canonical):
    assert jaxloss.get(name).spec.name == canonical


@pytest.mark.parametrize("loss", KERAS_HINGES)
def test_vmap_and_jit(loss):
    rng = _rng()
    y_true = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 5))]
    y_pred = rng.uniform(-2, 2, (2, 5, 3)).astype(np.float32)
    fn = _fn(loss)
    batched = jax.vmap(lambda t, p: fn(t, p, reduction="sum"))(y_true, y_pred)
    looped = [fn(y_true[i], y_pred[i], reduction="sum") for i in range(2)]
    assert_close(batched, looped)
    assert_close(jax.jit(lambda p: fn(y_true, p))(y_pred), fn(y_true, y_pred))
