"""Registry-driven suites: every registered loss, every example it declares.

For each (loss, example): the value equals Keras 3 (JAX backend) for all five
reductions with and without ``sample_weight`` where the loss declares its Keras
class; the per-sample values equal every applicable optax and PyTorch peer; the
closed-form gradient equals ``jax.grad`` of the public loss and of the plain,
rule-free formula, and finite differences (float64, second order where smooth);
forward and reverse mode agree and the Hessian is finite. A loss added to the
registry with its declaration gets all of this with no edit here.
"""

from __future__ import annotations

import inspect
import random
import zlib

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from jaxloss._core import REDUCTIONS, REGISTRY, Example, LossSpec
from jaxloss._inputs import draw_inputs

from .tolerances import F32, assert_close
from .torch_oracle import require_torch, torch

# CI runs a seeded sample of each (example x reduction x weighting) grid; `--run-slow`
# (make test-all) runs all of it.
SAMPLE_PER_EXAMPLE = 1

# A loss that computes itself (linear_cross_entropy) has its own suite, and verify's rows.
EXAMPLES: list[tuple[LossSpec, Example]] = [
    (spec, ex) for _, spec in sorted(REGISTRY.items()) if not spec.direct for ex in spec.examples
]


def _id(spec: LossSpec, example: Example) -> str:
    return f"{spec.name}{example.id}"


def _params(pairs):
    return [pytest.param(spec, ex, id=_id(spec, ex)) for spec, ex in pairs]


def _grid(pairs, per_loss: bool = False):
    """Every (example, reduction, weighted) triple; those outside the seeded sample are marked slow.

    The sample is one (reduction, weighting) per example, or with ``per_loss`` one per loss
    (on one of its examples, seeded), for grids whose every case compiles three programs.
    """
    combos = [(r, w) for r in REDUCTIONS for w in (False, True)]
    chosen = {}
    if per_loss:
        by_loss: dict[str, list[str]] = {}
        for spec, ex in pairs:
            by_loss.setdefault(spec.name, []).append(_id(spec, ex))
        chosen = {name: random.Random(zlib.crc32(name.encode())).choice(ids) for name, ids in by_loss.items()}
    params = []
    for spec, ex in pairs:
        rng = random.Random(zlib.crc32(_id(spec, ex).encode()))
        sampled = set(rng.sample(range(len(combos)), SAMPLE_PER_EXAMPLE))
        if per_loss and chosen[spec.name] != _id(spec, ex):
            sampled = set()
        for i, (reduction, weighted) in enumerate(combos):
            marks = (pytest.mark.presampled,) if i in sampled else (pytest.mark.slow,)
            label = f"{_id(spec, ex)}-{reduction}-{'weighted' if weighted else 'unweighted'}"
            params.append(pytest.param(spec, ex, reduction, weighted, marks=marks, id=label))
    return params


def _float32(x):
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def _inputs(spec: LossSpec, example: Example, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true, y_pred = (_float32(x) for x in draw_inputs(spec, example, rng))
    # The weights' shape is the per-sample values' shape: traced, not compiled.
    per_sample = jax.eval_shape(lambda t, p: spec.function(t, p, reduction="none", **example.options), y_true, y_pred)
    sw = rng.uniform(0.2, 2.0, per_sample.shape).astype(np.float32)
    return y_true, y_pred, sw


def _options(spec: LossSpec, example: Example) -> dict:
    return {**spec.defaults, **example.options}


# ----------------------------------------------------------------------------
# The declarations themselves
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [pytest.param(s, id=n) for n, s in sorted(REGISTRY.items())])
def test_every_loss_is_fully_declared(spec: LossSpec):
    assert spec.examples, "at least one example option set"
    options = _options(spec, spec.examples[0])
    for role in ("y_true", "y_pred"):
        assert hasattr(spec.domain(role, options), "rules"), role
    doc = inspect.getdoc(spec.function) or ""
    for section in ("Args:", "Returns:", "Gradient", "Example:", ">>> "):
        assert section in doc, f"{spec.name}'s docstring lacks {section!r}"
    assert spec.function is getattr(jaxloss, spec.name), "exported under its name"
    if spec.keras_class:
        assert any(ex.keras for ex in spec.examples), "a Keras loss has an example Keras computes the same on"
        assert hasattr(keras.losses, spec.keras_class)
    for peer in spec.peers:
        assert peer.library in ("optax", "torch")
        assert any(ex.peers and peer.applies(_options(spec, ex)) for ex in spec.examples), (
            f"{peer.library} peer {peer.text!r} applies to no example"
        )


def test_public_namespace_is_the_registry():
    losses = {name for name in jaxloss.__all__ if name in REGISTRY}
    assert losses == set(REGISTRY), sorted(set(REGISTRY) ^ losses)


def test_every_option_is_exercised_by_an_example():
    # An option no example sets is never verified, property-tested or benchmarked away from its default.
    missing = []
    for name, spec in REGISTRY.items():
        used = {k for ex in spec.examples for k in ex.options}
        missing += [f"{name}.{opt}" for opt in spec.options if opt not in used]
    assert not missing, missing


# ----------------------------------------------------------------------------
# Keras parity
# ----------------------------------------------------------------------------


def _keras_loss(spec: LossSpec, example: Example, reduction):
    opts = dict(example.options)
    if spec.keras_options is not None:
        opts = spec.keras_options(_options(spec, example))
    opts = {k: np.asarray(v).tolist() if hasattr(v, "shape") else v for k, v in opts.items()}
    return getattr(keras.losses, spec.keras_class)(**opts, reduction=reduction)


KERAS = [(s, e) for s, e in EXAMPLES if s.keras_class and e.keras]


@pytest.mark.parametrize("spec,example,reduction,weighted", _grid(KERAS))
def test_matches_keras(spec, example, reduction, weighted):
    y_true, y_pred, sw = _inputs(spec, example)
    sw = sw if weighted else None
    ours = spec.function(y_true, y_pred, sample_weight=sw, reduction=reduction, **example.options)
    # Under jit, as Keras's own train step runs it (eagerly, each of its ops compiles on its own).
    theirs = jax.jit(lambda t, p, w: _keras_loss(spec, example, reduction)(t, p, sample_weight=w))(y_true, y_pred, sw)
    assert ours.shape == tuple(np.shape(theirs))
    assert ours.dtype == jnp.float32
    assert_close(ours, theirs, F32)


# ----------------------------------------------------------------------------
# optax and PyTorch parity
# ----------------------------------------------------------------------------

PEERS = [
    pytest.param(spec, ex, peer, id=f"{_id(spec, ex)}-{peer.library}")
    for spec, ex in EXAMPLES
    for peer in spec.peers
    if ex.peers and peer.applies(_options(spec, ex))
]


def _peer_values(peer, y_true, y_pred, options):
    if peer.library == "torch":
        require_torch()
    if peer.library == "optax":
        return np.asarray(peer.fn(jnp.asarray(y_true), jnp.asarray(y_pred), **options))
    t = torch.as_tensor(np.asarray(y_true))
    p = torch.as_tensor(np.asarray(y_pred))
    return peer.fn(torch, torch.nn.functional, t, p, **options).detach().numpy()


@pytest.mark.parametrize("spec,example,peer", PEERS)
def test_matches_peer(spec, example, peer):
    y_true, y_pred, _ = _inputs(spec, example)
    ours = np.asarray(spec.function(y_true, y_pred, reduction="none", **example.options))
    theirs = _peer_values(peer, y_true, y_pred, _options(spec, example))
    assert ours.shape == theirs.shape
    assert_close(ours, theirs, F32, f"{peer.library}: {peer.text}")


# ----------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------


def _plain_loss(spec: LossSpec, example: Example, reduction):
    """The rule-free forward formula: the spec's per-sample function, the shared reduction."""
    static, numeric = spec.split(spec.check_options(dict(example.options), reduction))
    opts = {**dict(static), **numeric}

    def loss(y_true, y_pred, sw):
        return jnp.sum(spec.plain_forward(reduction, y_true, y_pred, sw, opts))

    return loss


@pytest.mark.parametrize("spec,example,reduction,weighted", _grid(EXAMPLES, per_loss=True))
def test_closed_form_equals_autodiff(spec, example, reduction, weighted, device):
    y_true, y_pred, sw = _inputs(spec, example, seed=1)
    sw = sw if weighted else None
    with jax.default_device(device):
        closed = jaxloss.analytic_grad(spec.name, reduction=reduction, **example.options)(y_true, y_pred, sw)
        public = jaxloss.grad(spec.name, reduction=reduction, **example.options)(y_true, y_pred, sw)
        plain = jax.jit(jax.grad(_plain_loss(spec, example, reduction), argnums=1))(y_true, jnp.asarray(y_pred), sw)
    assert closed.shape == y_pred.shape and closed.dtype == y_pred.dtype
    assert_close(closed, plain, F32, "closed form vs autodiff of the plain formula")
    assert_close(public, plain, F32, "autodiff of the public loss vs the plain formula")


# Central differences in float64: truncation ~ step^2 f''', round-off ~ 1e-16 |f| / step. 1e-6 keeps
# both under 1e-5 relative also for circle at gamma = 80, whose third derivative is large.
FD_STEP = 1e-6


def _x64(x):
    x = np.asarray(x)
    return jnp.asarray(x) if np.issubdtype(x.dtype, np.integer) else jnp.asarray(x, jnp.float64)


def _finite_inputs(spec: LossSpec, example: Example) -> bool:
    """Finite differences need finite inputs (a -inf logit under a class mask has none)."""
    # The drawn arrays only (as _inputs draws them): no loss is compiled at collection time.
    arrays = draw_inputs(spec, example, np.random.default_rng(2))
    return all(np.all(np.isfinite(np.asarray(x, np.float64))) for x in arrays)


@pytest.mark.parametrize("spec,example", _params([(s, e) for s, e in EXAMPLES if _finite_inputs(s, e)]))
def test_finite_differences(spec, example):
    y_true, y_pred, sw = _inputs(spec, example, seed=2)
    with jax.enable_x64(True):
        yt, yp, w = _x64(y_true), _x64(y_pred), _x64(sw)
        options = {
            k: _x64(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in example.options.items()
        }

        # Jitted: check_grads evaluates f and its derivatives many times; eagerly, every
        # primitive would dispatch (and compile) on its own.
        @jax.jit
        def f(p):
            return spec.function(yt, p, sample_weight=w, reduction="sum", **options)

        check_grads(f, (yp,), order=2 if example.smooth else 1, modes=("fwd", "rev"), eps=FD_STEP, atol=1e-5, rtol=1e-5)
        closed = jaxloss.analytic_grad(spec.name, reduction="sum", **options)(yt, yp, w)
        assert closed.dtype == jnp.float64
        assert_close(closed, jax.grad(f)(yp), {"rtol": 1e-9, "atol": 1e-12})


@pytest.mark.parametrize("spec,example", _params(EXAMPLES))
def test_forward_and_reverse_mode_agree(spec, example):
    y_true, y_pred, _ = _inputs(spec, example, seed=3)

    def f(p):
        return spec.function(y_true, p, reduction="sum", **example.options)

    p = jnp.asarray(y_pred)
    # Jitted: eagerly, every primitive of the Jacobians would dispatch (and compile) on its own.
    assert_close(jax.jit(jax.jacfwd(f))(p), jax.jit(jax.jacrev(f))(p), F32)
    if example.smooth:
        h = jax.jit(jax.hessian(f))(p)
        assert h.shape == y_pred.shape * 2 and np.all(np.isfinite(np.asarray(h)))
