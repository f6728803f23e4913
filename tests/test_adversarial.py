"""Nothing silently wrong: every registered loss fed what an adversary would feed it.

Registry-driven, so a newly registered loss is covered with no edit here. For each
loss: bad array types and shapes, bad option values by kind, options that could not
act, labels that name no class, bound options through every API, the transformations
(jit, vmap, grad, jacfwd, hessian, checkpoint, eval_shape), and the traps that would
recompile on every call. Each case asserts a clear error (its type, the loss's name and
the argument's) or the right value.
"""

from __future__ import annotations

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxloss
from jaxloss import _checks, _core, _gradients, _large_vocab
from jaxloss._core import REGISTRY, ArrayOption, LossSpec, PerClass, Scalar, Static
from jaxloss._inputs import ClassLabels, draw_inputs

from .tolerances import F32, assert_close

SPECS = [pytest.param(spec, id=name) for name, spec in sorted(REGISTRY.items())]


def _inputs(spec: LossSpec, index: int = 0, seed: int = 0):
    """``(y_true, y_pred, options)``, or for a loss that takes more arrays, ``y_pred`` the tuple of the rest."""
    example = spec.examples[index]
    rng = np.random.default_rng(seed)
    arrays = example.draw(rng) if spec.direct else draw_inputs(spec, example, rng)
    y_true, *rest = (np.asarray(x) for x in arrays)
    if not np.issubdtype(y_true.dtype, np.integer):
        y_true = y_true.astype(np.float32)
    rest = [x.astype(np.float32) for x in rest]
    return y_true, (rest[0] if len(rest) == 1 else tuple(rest)), dict(example.options)


def _arrays(y_true, y_pred):
    return (y_true, *y_pred) if isinstance(y_pred, tuple) else (y_true, y_pred)


def _call(spec, y_true, y_pred, **kwargs):
    return spec.function(*_arrays(y_true, y_pred), **kwargs)


def _raises(exc, spec: LossSpec, argument: str, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert f"{spec.name}:" in message, message
    assert argument in message, (argument, message)
    return message


# ----------------------------------------------------------------------------
# Array arguments: types, shapes
# ----------------------------------------------------------------------------

BAD_ARRAYS = {
    "complex": (TypeError, lambda x: np.asarray(x) + 1j),
    "string": (TypeError, lambda x: np.full(np.shape(x), "a")),
    "none": (TypeError, lambda x: None),
    "object": (TypeError, lambda x: np.array([object()] * max(np.size(x), 1), dtype=object)),
    "ragged": (ValueError, lambda x: [[0.0, 1.0], [2.0]]),
}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("kind", sorted(BAD_ARRAYS))
def test_bad_arrays_are_refused_by_name(spec, kind):
    y_true, y_pred, options = _inputs(spec)
    exc, make = BAD_ARRAYS[kind]
    arrays = _arrays(y_true, y_pred)
    for i, name in enumerate(spec.required_arrays):
        bad = [*arrays[:i], make(arrays[i]), *arrays[i + 1 :]]
        _raises(exc, spec, name, spec.function, *bad, **options)
    if kind != "none":  # sample_weight=None is no weight
        w = np.ones(np.shape(_call(spec, y_true, y_pred, reduction="none", **options)), np.float32)
        _raises(exc, spec, "sample_weight", spec.function, *arrays, sample_weight=make(w), **options)


def test_complex_input_is_not_truncated_to_its_real_part():
    # The named example of the issue: mean_squared_error([[0, 1]], [[1+2j, 1]]) gave 0.5.
    with pytest.raises(TypeError, match=r"mean_squared_error: y_pred must be real-valued.*imaginary part"):
        jaxloss.mean_squared_error([[0, 1]], [[1 + 2j, 1]])


@pytest.mark.parametrize("spec", SPECS)
def test_broadcast_only_shapes_raise_naming_both(spec):
    y_true, y_pred, options = _inputs(spec)
    # y_true with an extra axis of 2: never what the loss reads, broadcastable for many.
    bad = np.stack([y_true, y_true], axis=-1)
    message = _raises(ValueError, spec, "shape", spec.function, *_arrays(bad, y_pred), **options)
    assert str(tuple(bad.shape)) in message or f"{spec.arrays[0]}.shape" in message, message


@pytest.mark.parametrize("spec", SPECS)
def test_sample_weight_of_another_shape_raises(spec):
    y_true, y_pred, options = _inputs(spec)
    shape = np.shape(_call(spec, y_true, y_pred, reduction="none", **options))
    if not shape:
        pytest.skip("a scalar per-sample value takes any scalar weight")  # dice with axis=None
    bad = np.ones((*shape, 3), np.float32)
    _raises(ValueError, spec, "sample_weight", spec.function, *_arrays(y_true, y_pred), sample_weight=bad, **options)


# ----------------------------------------------------------------------------
# Options: by kind, before tracing
# ----------------------------------------------------------------------------


def _option_cases(spec: LossSpec):
    """(option, bad value, what the message must say) for every option, from its kind."""
    cases = [("reduction", "avg", "reduction must be one of")]
    for name, option in spec.options.items():
        kind = option.kind
        if isinstance(kind, Scalar):
            cases += [(name, np.array([0.1, 1.0, 5.0]), "must be a scalar"), (name, "1.0", name), (name, True, name)]
            if not kind.optional:
                cases.append((name, None, "must be a number"))
            if kind.low is not None:
                cases.append((name, kind.low - 1.0, "must lie in"))
            if kind.high is not None:
                cases.append((name, kind.high + 1.0, "must lie in"))
            cases.append((name, float("nan"), "must lie in"))
        elif isinstance(kind, Static) and kind.kind == "bool":
            cases.append((name, "yes", "must be True or False"))
        elif isinstance(kind, Static) and kind.kind in ("int", "axis"):
            cases.append((name, 1.5, name))
        elif isinstance(kind, Static) and kind.kind == "choice":
            cases.append((name, "neither", "must be one of"))
        elif isinstance(kind, Static) and kind.kind == "name":
            cases.append((name, ["unhashable"], "must be hashable"))
        elif isinstance(kind, PerClass):
            cases += [(name, np.ones((2, 2)), name), (name, "a", name)]
            if kind.low is not None:
                cases.append((name, np.full(3, kind.low - 1.0), "must lie in"))
        elif isinstance(kind, ArrayOption):
            cases.append((name, "mask", name))
    return cases


OPTION_CASES = [
    pytest.param(spec, name, value, text, id=f"{spec.name}-{name}={value!r}"[:90])
    for spec in REGISTRY.values()
    for name, value, text in _option_cases(spec)
]


@pytest.mark.parametrize("spec,option,value,text", OPTION_CASES)
def test_bad_option_values_raise_before_tracing(spec, option, value, text):
    y_true, y_pred, options = _inputs(spec)
    options[option] = value
    message = _raises((ValueError, TypeError), spec, option, _call, spec, y_true, y_pred, **options)
    assert text in message, message
    # The same check guards get() and the gradient helpers, before any call.
    with pytest.raises((ValueError, TypeError), match=re.escape(option)):
        jaxloss.get(spec.name, **{option: value})


@pytest.mark.parametrize("spec", SPECS)
def test_unknown_option_is_a_clear_error(spec):
    y_true, y_pred, options = _inputs(spec)
    _raises(TypeError, spec, "delt", _call, spec, y_true, y_pred, delt=1.0, **options)
    with pytest.raises(ValueError, match=rf"{spec.name} has no option\(s\) \['delt'\]; valid options are"):
        jaxloss.get(spec.name, delt=1.0)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.values[0].requires])
def test_an_option_that_cannot_act_is_refused(spec):
    for name, (flag, needed) in spec.requires.items():
        option = spec.options[name]
        value = 0.5 if option.default is None or option.default != 0.5 else 0.3
        if isinstance(option.kind, ArrayOption):
            value = np.ones(3, bool)
        with pytest.raises(ValueError, match=rf"{name} acts only with {flag}={needed!r}"):
            spec.check_options({name: value, flag: not needed if isinstance(needed, bool) else None})


def test_named_examples_of_scalar_options():
    y = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"huber: delta must be a scalar; received delta of shape \(3,\)"):
        jaxloss.huber(y, y, delta=np.array([0.1, 1, 5]))
    with pytest.raises(ValueError, match=r"tversky: alpha must be .*scalar.*list of length 2"):
        jaxloss.tversky(y, y, alpha=[0.3, 0.7])
    with pytest.raises(ValueError, match=r"huber: delta must be a number; received delta=None"):
        jaxloss.huber(y, y, delta=None)
    with pytest.raises(ValueError, match=r"binary_focal_crossentropy: alpha acts only with apply_class_balancing"):
        jaxloss.binary_focal_crossentropy(y, y + 0.5, alpha=0.5)


# ----------------------------------------------------------------------------
# Labels that name no class
# ----------------------------------------------------------------------------

LABEL_LOSSES = [s for s in SPECS if isinstance(s.values[0].domain("y_true", s.values[0].defaults), ClassLabels)]


@pytest.mark.parametrize("spec", LABEL_LOSSES)
@pytest.mark.parametrize("bad", ["too_large", "negative", "fraction", "nan"])
def test_a_label_that_names_no_class_gives_nan_not_another_score(spec, bad):
    y_true, y_pred, options = _inputs(spec)
    options.pop("ignore_class", None)
    full = {**spec.defaults, **options}
    if spec.direct:
        classes = spec.classes(_arrays(y_true, y_pred), full)
    else:
        classes = spec.domain("y_true", full).classes(y_pred.shape, full)
    labels = y_true.astype(np.float32 if bad in ("fraction", "nan") else y_true.dtype).copy()
    value = {"too_large": classes, "negative": -1, "fraction": 1.5, "nan": np.nan}[bad]
    labels.reshape(-1)[0] = value
    out = np.asarray(_call(spec, labels, y_pred, reduction="none", **options))
    assert np.isnan(out.reshape(-1)[0]), (bad, out)
    good = np.asarray(_call(spec, y_true, y_pred, reduction="none", **options))
    if out.size > 1 and spec.name != "ctc":
        np.testing.assert_allclose(out.reshape(-1)[1:], good.reshape(-1)[1:], rtol=1e-6)
    if spec.direct:
        g = jax.grad(lambda h: jnp.sum(_call(spec, labels, (h, *y_pred[1:]), **options)))(jnp.asarray(y_pred[0]))
    else:
        g = jaxloss.grad(spec.function, **options)(labels, y_pred)
    assert np.any(np.isnan(np.asarray(g)))
    with pytest.raises(checkify.JaxRuntimeError, match=rf"jaxloss.{spec.name}: {spec.arrays[0]} must"):
        jaxloss.checked(spec.function)(*_arrays(labels, y_pred), **options)


# ----------------------------------------------------------------------------
# Bound options survive every API
# ----------------------------------------------------------------------------


def _bindable(spec: LossSpec):
    for example in spec.examples:
        if example.options and example.draw is None:
            return example
    return None


BOUND = [pytest.param(s, id=s.name) for s in REGISTRY.values() if _bindable(s) is not None]


@pytest.mark.parametrize("spec", BOUND)
def test_bound_options_survive_every_api(spec):
    example = _bindable(spec)
    index = spec.examples.index(example)
    y_true, y_pred, options = _inputs(spec, index)
    bound = jaxloss.get(spec.name, **options)
    arrays = _arrays(y_true, y_pred)
    direct = spec.function(*arrays, **options)
    assert_close(bound(*arrays), direct, F32)
    for reduction in ("sum", "none"):
        want = spec.function(*arrays, reduction=reduction, **options)
        assert_close(bound(*arrays, reduction=reduction), want, F32)
        assert_close(jaxloss.get(bound, reduction=reduction)(*arrays), want, F32)
    assert_close(jaxloss.checked(bound)(*arrays), direct, F32)
    if spec.direct:
        with pytest.raises(TypeError, match=rf"{spec.name} takes the arrays .* take its gradients with jax.grad"):
            jaxloss.grad(bound)
    else:
        want_grad = jaxloss.grad(spec.name, **options)(y_true, y_pred)
        assert_close(jaxloss.grad(bound)(y_true, y_pred), want_grad, F32)
        assert_close(jaxloss.value_and_grad(bound)(y_true, y_pred)[1], want_grad, F32)
        assert_close(jaxloss.analytic_grad(bound)(y_true, y_pred), want_grad, {"rtol": 2e-5, "atol": 1e-6})
    # Equal bound losses are equal static arguments: no retrace.
    assert bound == jaxloss.get(spec.name, **options) and hash(bound) == hash(jaxloss.get(spec.name, **options))
    traces = []

    @jax.jit
    def apply(y_true, y_pred, loss):
        traces.append(1)
        return loss(*_arrays(y_true, y_pred))

    apply = jax.jit(apply.__wrapped__, static_argnums=2)
    apply(y_true, y_pred, bound)
    apply(y_true, y_pred, jaxloss.get(spec.name, **options))
    assert len(traces) == 1


def test_required_option_survives_binding():
    # gaussian_nll's required variance, bound with get, reaches every API.
    y, p = np.zeros((4, 3), np.float32), np.ones((4, 3), np.float32)
    bound = jaxloss.get("gaussian_nll", variance=0.5)
    want = jaxloss.gaussian_nll(y, p, variance=0.5)
    assert_close(bound(y, p), want)
    assert_close(jaxloss.grad(bound)(y, p), jaxloss.grad("gaussian_nll", variance=0.5)(y, p))
    assert_close(jaxloss.checked(bound)(y, p), want)
    # inspect.Signature.bind's wording: Python 3.12 adds "keyword-only".
    with pytest.raises(TypeError, match=r"gaussian_nll: missing a required (keyword-only )?argument: 'variance'"):
        jaxloss.get("gaussian_nll")(y, p)


# ----------------------------------------------------------------------------
# checked(): exactly the loss's signature
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_checked_accepts_the_losses_signature_and_equals_it(spec):
    y_true, y_pred, options = _inputs(spec)
    safe = jaxloss.checked(spec.function)
    assert inspect.signature(safe) == inspect.signature(spec.function)
    assert_close(safe(*_arrays(y_true, y_pred), **options), _call(spec, y_true, y_pred, **options), F32)


def test_checked_takes_the_three_array_form():
    y, x1, x2 = np.array([1.0, -1.0]), np.array([0.5, 0.5]), np.array([1.0, 0.0])
    assert_close(
        jaxloss.checked(jaxloss.margin_ranking)(y, x1, x2, margin=0.1), jaxloss.margin_ranking(y, x1, x2, margin=0.1)
    )
    with pytest.raises(checkify.JaxRuntimeError, match=r"jaxloss.margin_ranking: y_true must hold -1 or 1"):
        jaxloss.checked(jaxloss.margin_ranking)(np.array([1.0, 0.5]), x1, x2)


def test_checked_raises_under_the_callers_jit():
    safe = jaxloss.checked(jaxloss.sparse_categorical_crossentropy)
    step = jax.jit(lambda y, p: safe(y, p))
    with pytest.raises(Exception, match=r"jaxloss.sparse_categorical_crossentropy: y_true must hold class indices"):
        step(np.array([0, 3]), np.full((2, 3), 1 / 3, np.float32)).block_until_ready()


# ----------------------------------------------------------------------------
# Transformations
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_transformations_agree(spec):
    y_true, y_pred, options = _inputs(spec)
    first, rest = (y_pred[0], y_pred[1:]) if isinstance(y_pred, tuple) else (y_pred, ())

    def f(p):
        return spec.function(y_true, p, *rest, **options)

    p = jnp.asarray(first)
    eager = f(p)
    assert_close(jax.jit(f)(p), eager, F32)
    assert_close(jax.checkpoint(f)(p), eager, F32)
    assert_close(jax.grad(jax.checkpoint(f))(p), jax.grad(f)(p), F32)
    shape = jax.eval_shape(f, p)
    assert shape.shape == eager.shape and shape.dtype == eager.dtype
    # vmap over two copies of the problem: each row equals the loss of that copy.
    both = jax.vmap(lambda yt, yp: spec.function(yt, yp, *rest, **options))(
        np.stack([y_true, y_true]), jnp.stack([p, p * 0.5])
    )
    assert_close(both[0], eager, F32)
    assert_close(both[1], f(p * 0.5), F32)


# ----------------------------------------------------------------------------
# Recompilation traps
# ----------------------------------------------------------------------------


def _scalar_option(spec: LossSpec):
    for name, option in spec.options.items():
        kind = option.kind
        if isinstance(kind, Scalar) and not kind.optional and name not in spec.requires:
            low = 0.0 if kind.low is None else kind.low
            high = low + 1.0 if kind.high is None else kind.high
            return name, [low + (high - low) * f for f in (0.3, 0.55, 0.8)]
    return None


SWEEPS = [pytest.param(s, id=s.name) for s in REGISTRY.values() if _scalar_option(s) is not None]


@pytest.mark.parametrize("spec", SWEEPS)
def test_a_python_float_option_sweep_compiles_once(spec):
    y_true, y_pred, options = _inputs(spec)
    name, values = _scalar_option(spec)
    options.pop(name, None)
    kind = spec.options[name].kind
    values = [v for v in values if not kind.bake(v)]
    cache = _large_vocab._kernel if spec.direct else _core._jit_forward
    _call(spec, y_true, y_pred, **{name: values[0]}, **options)
    before = cache._cache_size()
    for value in values[1:]:
        _call(spec, y_true, y_pred, **{name: value}, **options)
    assert cache._cache_size() == before, f"{spec.name}: {name} recompiles per value"


def test_gradient_and_checked_factories_build_nothing_new():
    y, p = np.zeros((4, 3), np.float32), np.ones((4, 3), np.float32)
    jaxloss.grad(jaxloss.huber)(y, p)
    jaxloss.checked(jaxloss.huber)(y, p)
    grads, checks = _gradients._jit_value_and_grad._cache_size(), _checks._jit_checked._cache_size()
    for _ in range(20):
        jaxloss.grad(jaxloss.huber)(y, p)
        jaxloss.checked(jaxloss.huber)(y, p)
    assert _gradients._jit_value_and_grad._cache_size() == grads
    assert _checks._jit_checked._cache_size() == checks
