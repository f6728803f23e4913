"""jaxloss._likelihood: poisson, poisson_nll, gaussian_nll.

Keras/PyTorch parity on every declared example and the shared gradient checks live in
tests/test_registry.py. Here: live PyTorch on hand-derived cases, extremes, the variance's
straight-through gradient, options that act only under other options, domains under
``checked``, shapes.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxloss

from .tolerances import F32, F64, assert_close
from .torch_oracle import F, needs_torch, require_torch, torch


def _torch(x):
    require_torch()
    return torch.as_tensor(np.asarray(x, np.float64))


# --------------------------------------------------------------------------
# PyTorch, live, on hand-derived cases (PyTorch's elementwise output; jaxloss averages it)
# --------------------------------------------------------------------------

LOG2 = math.log(2.0)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

TORCH_CASES = [
    # 0.5 (log 1 + e^2 / 1): 0.5, 2.0
    ("gaussian_nll", {"variance": np.array([[1.0, 1.0]])}, [[0.0, 0.0]], [[1.0, 2.0]], [[0.5, 2.0]]),
    # 0.5 (log 4 + 1/4) + 0.5 log 2 pi; 0.5 log 4 + 0.5 log 2 pi (homoscedastic variance (1,))
    (
        "gaussian_nll",
        {"variance": np.array([4.0]), "full": True},
        [[0.0, 1.0]],
        [[1.0, 1.0]],
        [[0.5 * (math.log(4) + 0.25) + HALF_LOG_2PI, 0.5 * math.log(4) + HALF_LOG_2PI]],
    ),
    # variance 0 clamped to eps = 1e-6, zero error: 0.5 log(1e-6)
    ("gaussian_nll", {"variance": 0.0}, [[2.0]], [[2.0]], [[0.5 * math.log(1e-6)]]),
    # exp(x) - t x: exp(0) - 0 = 1; exp(log 2) - 3 log 2 = 2 - 3 log 2
    ("poisson_nll", {}, [[1.0, 3.0]], [[0.0, LOG2]], [[1.0, 2 - 3 * LOG2]]),
    # Stirling t log t - t + 0.5 log(2 pi t) added only for t = 3 > 1
    (
        "poisson_nll",
        {"full": True},
        [[1.0, 3.0]],
        [[0.0, LOG2]],
        [[1.0, 2 - 3 * LOG2 + 3 * math.log(3) - 3 + 0.5 * math.log(6 * math.pi)]],
    ),
    # x - t log(x + eps): 4 - 2 log(4 + 1e-8); 0.5 - 0
    ("poisson_nll", {"log_input": False}, [[2.0, 0.0]], [[4.0, 0.5]], [[4 - 2 * math.log(4 + 1e-8), 0.5]]),
]


def _torch_value(loss, options, t, x):
    require_torch()
    if loss == "gaussian_nll":
        var = _torch(options["variance"])
        var = var.expand_as(_torch(x)) if var.ndim == 0 else var
        return F.gaussian_nll_loss(_torch(x), _torch(t), var, full=options.get("full", False), reduction="none")
    return F.poisson_nll_loss(
        _torch(x),
        _torch(t),
        log_input=options.get("log_input", True),
        full=options.get("full", False),
        reduction="none",
    )


@pytest.mark.parametrize("loss,options,y_true,y_pred,derived", TORCH_CASES, ids=lambda v: str(v)[:20])
def test_live_torch_hand_derived(loss, options, y_true, y_pred, derived):
    t, x = np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)
    theirs = _torch_value(loss, options, t, x).numpy()
    assert_close(theirs, derived, F64)
    assert_close(getattr(jaxloss, loss)(t, x, reduction="none", **options), theirs.mean(-1), F32)


@needs_torch
def test_poisson_equals_torch_without_log_input():
    rng = np.random.default_rng(0)
    t, x = rng.uniform(0, 3, (4, 5)), rng.uniform(0.1, 3, (4, 5))
    theirs = F.poisson_nll_loss(_torch(x), _torch(t), log_input=False, eps=1e-7, reduction="none").numpy().mean(-1)
    assert_close(jaxloss.poisson(t, x, reduction="none"), theirs, F32)


# --------------------------------------------------------------------------
# Extremes: values and gradients finite, equal to PyTorch in float64
# --------------------------------------------------------------------------

BIG = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], np.float32)

EXTREMES = [
    ("gaussian_nll", {"variance": 0.0}, np.zeros((1, 5), np.float32), BIG / 1e3),
    ("poisson_nll", {"full": True}, np.array([[0.0, 1.0, 2.0, 1e6, 5.0]], np.float32), BIG / 500),
    (
        "poisson_nll",
        {"log_input": False},
        np.array([[0.0, 1.0, 0.0, 3.0, 5.0]], np.float32),
        np.array([[0.0, 1e-30, 1e4, 1e-3, 50.0]], np.float32),
    ),
    ("poisson", {}, np.array([[0.0, 1.0, 0.0, 3.0, 5.0]], np.float32), np.array([[0.0, 1e-30, 1e4, 1e-3, 50.0]])),
]


@needs_torch
@pytest.mark.parametrize("loss,options,y_true,y_pred", EXTREMES, ids=[f"{e[0]}{i}" for i, e in enumerate(EXTREMES)])
def test_extremes_are_finite_and_match_torch(loss, options, y_true, y_pred):
    fn = getattr(jaxloss, loss)
    values = fn(y_true, y_pred, reduction="none", **options)
    closed = jaxloss.analytic_grad(loss, **options)(y_true, y_pred)
    auto = jaxloss.grad(loss, **options)(y_true, y_pred)
    assert np.all(np.isfinite(values)), values
    assert np.all(np.isfinite(closed)) and np.all(np.isfinite(auto)), (closed, auto)
    assert_close(closed, auto, F32, "closed form vs autodiff")
    if loss == "poisson":
        want = F.poisson_nll_loss(_torch(y_pred), _torch(y_true), log_input=False, eps=1e-7, reduction="none")
    else:
        want = _torch_value(loss, options, y_true, np.asarray(y_pred, np.float32))
    assert_close(values, want.numpy().mean(-1), {"rtol": 2e-5, "atol": 1e-5})


# --------------------------------------------------------------------------
# gaussian_nll: the variance's gradient, shapes, options
# --------------------------------------------------------------------------


@needs_torch
def test_gaussian_nll_gradient_wrt_variance_is_straight_through():
    rng = np.random.default_rng(8)
    t, x = rng.normal(0, 1, (4, 3)), rng.normal(0, 1, (4, 3))
    var = rng.uniform(0.1, 2.0, (4, 3))
    var[0, 0], var[1, 2] = 1e-9, 0.0
    eps = 1e-6
    with jax.enable_x64(True):
        g_t, g_x, g_v = jax.grad(
            lambda t, x, v: jaxloss.gaussian_nll(t, x, variance=v, eps=eps, reduction="sum"), argnums=(0, 1, 2)
        )(jnp.asarray(t), jnp.asarray(x), jnp.asarray(var))
    # PyTorch clamps under no_grad: d/dvar is the derivative at the clamped value, passed straight through.
    tt, tx, tv = (_torch(a).requires_grad_(True) for a in (t, x, var))
    (F.gaussian_nll_loss(tx, tt, tv, eps=eps, reduction="none").mean(-1)).sum().backward()
    assert_close(g_v, tv.grad.numpy(), F64)
    assert_close(g_x, tx.grad.numpy(), F64)
    assert_close(g_t, tt.grad.numpy(), F64)
    # Homoscedastic: one variance per sample, shape (4,) or (4, 1).
    v4 = rng.uniform(0.5, 2.0, 4)
    with jax.enable_x64(True):
        g4 = jax.grad(lambda v: jaxloss.gaussian_nll(t, x, variance=v, reduction="sum"))(jnp.asarray(v4))
        g41 = jax.grad(lambda v: jaxloss.gaussian_nll(t, x, variance=v, reduction="sum"))(jnp.asarray(v4[:, None]))
    tv4 = _torch(v4[:, None]).requires_grad_(True)
    F.gaussian_nll_loss(_torch(x), _torch(t), tv4, reduction="none").mean(-1).sum().backward()
    assert_close(g4, tv4.grad.numpy()[:, 0], F64)
    assert_close(g41[:, 0], g4, F64)


def test_gaussian_nll_variance_is_required_at_call_time():
    y = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="variance"):
        jaxloss.gaussian_nll(y, y)
    # A bound loss may take it later, at call time.
    loss = jaxloss.get("gaussian_nll")
    assert_close(loss(y, y + 1, variance=1.0), jaxloss.gaussian_nll(y, y + 1, variance=1.0))


def test_get_binds_array_options():
    rng = np.random.default_rng(18)
    t, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    var = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    loss = jaxloss.get("GaussianNLLLoss", variance=var, reduction="sum")
    assert_close(loss(t, x), jaxloss.gaussian_nll(t, x, variance=var, reduction="sum"), F32)
    assert_close(jaxloss.grad(loss)(t, x), jaxloss.analytic_grad("gaussian_nll", variance=var, reduction="sum")(t, x))


def test_traced_variance():
    rng = np.random.default_rng(3)
    t, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    f = jax.jit(lambda v: jaxloss.gaussian_nll(t, x, variance=v))
    assert_close(f(jnp.full((4,), 0.5)), jaxloss.gaussian_nll(t, x, variance=np.full(4, 0.5)), F32)


Y2 = np.zeros((2, 3), np.float32)


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: jaxloss.gaussian_nll(Y2, Y2, variance=-1.0),
            "gaussian_nll: variance must be non-negative; received variance with minimum -1.0.",
        ),
        (
            lambda: jaxloss.gaussian_nll(Y2, Y2, variance=np.array([1.0, np.nan])[:, None] * np.ones(3)),
            "gaussian_nll: variance must be non-negative; received variance with minimum 1.0 and NaN entries.",
        ),
        (lambda: jaxloss.gaussian_nll(Y2, Y2, variance=1.0, eps=0.0), "gaussian_nll: eps must lie in (0, inf]"),
        (lambda: jaxloss.gaussian_nll(Y2, Y2, variance=1.0, full=1), "gaussian_nll: full must be True or False"),
        (
            lambda: jaxloss.gaussian_nll(Y2, Y2, variance=np.ones(3)),
            "gaussian_nll: variance must have y_pred's shape (2, 3), that shape with a last axis of 1, that shape "
            "less its last axis (2,), or be a scalar; received variance.shape=(3,).",
        ),
        (lambda: jaxloss.poisson_nll(Y2, Y2, log_input="yes"), "poisson_nll: log_input must be True or False"),
        (lambda: jaxloss.poisson_nll(Y2, Y2, log_input=False, eps=-1.0), "poisson_nll: eps must lie in [0, inf]"),
        (
            lambda: jaxloss.poisson_nll(Y2, Y2, eps=1e-3),
            "poisson_nll: eps acts only with log_input=False and would be ignored; received eps=0.001 with "
            "log_input=True (leave it at its default).",
        ),
        (lambda: jaxloss.get("poisson_nll", eps=1e-3), "poisson_nll: eps acts only with log_input=False"),
    ],
)
def test_invalid_options_raise(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_poisson_nll_eps_acts_without_log_input():
    t, x = np.array([[2.0, 1.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    got = jaxloss.poisson_nll(t, x, log_input=False, eps=0.5, reduction="none")
    assert_close(got, [((0 - 2 * math.log(0.5)) + (1 - math.log(1.5))) / 2], F32)
    # With log_input, eps is left at its default: the default value itself is accepted.
    jaxloss.poisson_nll(t, x, eps=1e-8)


# --------------------------------------------------------------------------
# Domains under checked(), NaN
# --------------------------------------------------------------------------


@pytest.mark.parametrize("loss,options", [("poisson", {}), ("poisson_nll", {}), ("poisson_nll", {"log_input": False})])
def test_checked_rejects_negative_counts(loss, options):
    safe = jaxloss.checked(getattr(jaxloss, loss))
    with pytest.raises(checkify.JaxRuntimeError, match=rf"jaxloss.{loss}: y_true must be non-negative"):
        safe(np.array([[1.0, -1.0]]), np.ones((1, 2)), **options)


def test_checked_rejects_negative_rates_only_without_log_input():
    safe = jaxloss.checked(jaxloss.poisson_nll)
    safe(np.ones((1, 2)), np.array([[-1.0, 0.5]]))  # log-rates: any real number
    with pytest.raises(checkify.JaxRuntimeError, match=r"jaxloss.poisson_nll: y_pred must be non-negative"):
        safe(np.ones((1, 2)), np.array([[-1.0, 0.5]]), log_input=False)


@pytest.mark.parametrize("loss,options", [("poisson", {}), ("poisson_nll", {}), ("gaussian_nll", {"variance": 0.5})])
@pytest.mark.parametrize("role", ["y_true", "y_pred"])
def test_nan_propagates(loss, options, role):
    rng = np.random.default_rng(4)
    t, x = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32), rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    (t if role == "y_true" else x)[1, 2] = np.nan
    values = np.asarray(getattr(jaxloss, loss)(t, x, reduction="none", **options))
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2]]))
    for grad in (jaxloss.grad, jaxloss.analytic_grad):
        g = np.asarray(grad(loss, reduction="sum", **options)(t, x))
        assert np.isnan(g[1, 2]) and np.all(np.isfinite(g[[0, 2]])), grad.__name__


@pytest.mark.parametrize(
    "name,canonical",
    [("Poisson", "poisson"), ("PoissonNLLLoss", "poisson_nll"), ("GaussianNLLLoss", "gaussian_nll")],
)
def test_get_resolves_names(name, canonical):
    assert jaxloss.get(name).spec.name == canonical


@needs_torch
@pytest.mark.parametrize(
    "loss,options",
    [("poisson", {}), ("poisson_nll", {}), ("poisson_nll", {"log_input": False, "full": True}), ("gaussian_nll", {})],
)
def test_target_gradient_matches_torch(loss, options):
    # The targets are an input too (soft counts, distillation): PyTorch's autograd is the oracle.
    rng = np.random.default_rng(12)
    t, x = rng.uniform(0.0, 3.0, (4, 5)), rng.uniform(0.2, 2.0, (4, 5))
    var = rng.uniform(0.5, 1.5, (4, 5))
    extra = {"variance": var} if loss == "gaussian_nll" else {}
    with jax.enable_x64(True):
        got = jax.grad(lambda t: getattr(jaxloss, loss)(t, jnp.asarray(x), **options, **extra))(jnp.asarray(t))
    tt = _torch(t).requires_grad_(True)
    if loss == "poisson":
        value = F.poisson_nll_loss(_torch(x), tt, log_input=False, eps=1e-7)
    elif loss == "poisson_nll":
        value = F.poisson_nll_loss(_torch(x), tt, **options)
    else:
        value = F.gaussian_nll_loss(_torch(x), tt, _torch(var))
    value.backward()
    assert_close(got, tt.grad.numpy(), F64)
