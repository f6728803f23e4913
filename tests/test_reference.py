"""Every registered loss against the independent float64 reference (tests/reference.py).

For each loss and each example it declares: the values for every reduction, without
``sample_weight``, with one of the per-sample shape and with one of a leading prefix of
it (float32 jaxloss against the float64 reference on the same inputs); the gradient with
respect to ``y_pred`` (jaxloss in float64 against central differences of the
reference) for the smooth examples; extreme valid inputs in float64; and the NaN
rules: a NaN input, and class labels that name no class, give NaN exactly where the
reference does, in value and gradient. ``linear_cross_entropy`` is checked against the
reference's sparse crossentropy of the explicit logits. CI runs a seeded sample of each
grid; ``--run-slow`` runs everything.
"""

from __future__ import annotations

import random
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._core import REDUCTIONS, REGISTRY, Example, LossSpec
from jaxloss._inputs import draw_inputs

from . import reference
from .tolerances import F32, assert_close

# float64 jaxloss against the float64 reference: both exact to ~1e-15; sums of a few
# hundred terms and transcendental functions at 1e4 leave ~1e-12.
X64 = {"rtol": 1e-9, "atol": 1e-10}
# float64 jaxloss gradients against central differences (step 1e-6 |x|): truncation
# ~1e-12, round-off ~1e-16 |loss| / 1e-6.
GRAD = {"rtol": 1e-6, "atol": 1e-8}

# A loss that computes itself (linear_cross_entropy: its arrays are labels, hidden states
# and the head's weight) has its own tests below.
EXAMPLES: list[tuple[LossSpec, Example]] = [
    (spec, ex) for _, spec in sorted(REGISTRY.items()) if not spec.direct for ex in spec.examples
]
DIRECT: list[tuple[LossSpec, Example]] = [
    (spec, ex) for _, spec in sorted(REGISTRY.items()) if spec.direct for ex in spec.examples
]
WEIGHTINGS = ("unweighted", "weighted", "prefix")


def _id(spec: LossSpec, example: Example) -> str:
    return f"{spec.name}{example.id}"


def _seeded(key: str) -> random.Random:
    return random.Random(zlib.crc32(key.encode()))


def _params(pairs, *marks):
    return [pytest.param(spec, ex, id=_id(spec, ex), marks=marks) for spec, ex in pairs]


def _grid(pairs):
    """Every (example, reduction, weighting); one seeded triple per example runs in CI, the rest are slow."""
    combos = [(r, w) for r in REDUCTIONS for w in WEIGHTINGS]
    params = []
    for spec, ex in pairs:
        chosen = _seeded(_id(spec, ex)).randrange(len(combos))
        for i, (reduction, weighting) in enumerate(combos):
            marks = (pytest.mark.presampled,) if i == chosen else (pytest.mark.slow,)
            params.append(
                pytest.param(spec, ex, reduction, weighting, marks=marks, id=f"{_id(spec, ex)}-{reduction}-{weighting}")
            )
    return params


def _cast(x, dtype):
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_ else x.astype(dtype)


def _options(example: Example, dtype=np.float32) -> dict:
    """The example's options, float arrays in ``dtype``."""
    return {
        k: _cast(v, dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in example.options.items()
    }


def _inputs(spec: LossSpec, example: Example, dtype=np.float32, seed: int = 0, extreme: bool = False):
    rng = np.random.default_rng(seed)
    y_true, y_pred = (_cast(x, dtype) for x in draw_inputs(spec, example, rng, extreme=extreme))
    return y_true, y_pred, rng


def _weight(rng, shape: tuple[int, ...], weighting: str, dtype):
    if weighting == "unweighted":
        return None
    if weighting == "prefix":
        shape = shape[: max(0, len(shape) - 1)]
    return rng.uniform(0.2, 2.0, shape).astype(dtype)


def _x64(x):
    return None if x is None else jnp.asarray(x)


_RUN = [0]


@pytest.fixture(autouse=True)
def _bounded_compile_cache():
    # Nearly every case compiles its own program: the exhaustive sweep would hold thousands.
    yield
    _RUN[0] += 1
    if _RUN[0] % 200 == 0:
        jax.clear_caches()


# ----------------------------------------------------------------------------
# Coverage
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [pytest.param(s, id=n) for n, s in sorted(REGISTRY.items())])
def test_reference_has_every_option_with_its_default(spec: LossSpec):
    assert spec.name in reference.LOSSES, f"no reference for {spec.name}"
    assert reference.defaults(spec.name) == spec.defaults


def test_reference_covers_the_catalogue():
    # Every registered loss has its reference, and the reference holds no loss that is not registered.
    assert set(REGISTRY) == set(reference.LOSSES), sorted(set(REGISTRY) ^ set(reference.LOSSES))


# ----------------------------------------------------------------------------
# Values: float32 jaxloss against the float64 reference
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec,example,reduction,weighting", _grid(EXAMPLES))
def test_values_match_the_reference(spec, example, reduction, weighting):
    y_true, y_pred, rng = _inputs(spec, example)
    options = _options(example)
    values = reference.per_sample(spec.name, y_true, y_pred, **options)
    sw = _weight(rng, values.shape, weighting, np.float32)
    ours = spec.function(y_true, y_pred, sample_weight=sw, reduction=reduction, **options)
    theirs = reference.loss(spec.name, y_true, y_pred, sample_weight=sw, reduction=reduction, **options)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert ours.dtype == jnp.float32
    assert np.all(np.isfinite(theirs)), "the examples are valid inputs"
    assert_close(ours, theirs, F32)


# ----------------------------------------------------------------------------
# Gradients: float64 jaxloss against central differences of the reference
# ----------------------------------------------------------------------------

SMOOTH = [(s, e) for s, e in EXAMPLES if e.smooth]


def _grad_case(spec, example):
    combos = [(r, w) for r in REDUCTIONS for w in WEIGHTINGS]
    return combos[_seeded("grad" + _id(spec, example)).randrange(len(combos))]


@pytest.mark.parametrize("spec,example", _params(SMOOTH))
def test_gradient_matches_central_differences(spec, example):
    reduction, weighting = _grad_case(spec, example)
    y_true, y_pred, rng = _inputs(spec, example, np.float64, seed=1)
    options = _options(example, np.float64)
    values = reference.per_sample(spec.name, y_true, y_pred, **options)
    sw = _weight(rng, values.shape, weighting, np.float64)
    with jax.enable_x64(True):
        ours = jaxloss.grad(spec.name, reduction=reduction, **options)(_x64(y_true), _x64(y_pred), _x64(sw))
        assert ours.dtype == jnp.float64
    theirs = reference.grad(spec.name, y_true, y_pred, sample_weight=sw, reduction=reduction, **options)
    scale = max(1.0, float(np.max(np.abs(theirs))))
    assert_close(ours, theirs, {"rtol": GRAD["rtol"], "atol": GRAD["atol"] * scale}, f"{reduction}, {weighting}")


# ----------------------------------------------------------------------------
# Extreme valid inputs, float64
# ----------------------------------------------------------------------------

# Hand-drawn inputs encode constraints that the domains do not know (reference
# embeddings, label lengths): extreme inputs come from the domains, so only examples
# whose options hold no array are drawn that way.
EXTREME = [(s, e) for s, e in EXAMPLES if not any(isinstance(v, np.ndarray) for v in e.options.values())]


@pytest.mark.parametrize("spec,example", _params(EXTREME))
def test_extreme_inputs_match_the_reference(spec, example):
    y_true, y_pred, _ = _inputs(spec, example, np.float64, seed=4, extreme=True)
    options = _options(example, np.float64)
    with jax.enable_x64(True):
        ours = np.asarray(spec.function(_x64(y_true), _x64(y_pred), reduction="none", **options))
    theirs = reference.per_sample(spec.name, y_true, y_pred, **options)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs, X64)


# ----------------------------------------------------------------------------
# The NaN rules
# ----------------------------------------------------------------------------


def _variants(spec: LossSpec, example: Example) -> list[str]:
    out = ["nan_y_pred"]
    if spec.integer_labels and _classes(spec, example) is not None:
        out.append("bad_labels")
    elif spec.integer_labels:
        out.append("bad_groups")
    else:
        out.append("nan_y_true")
    return out


def _classes(spec: LossSpec, example: Example) -> int | None:
    domain = spec.domain("y_true", {**spec.defaults, **example.options})
    return domain.classes(example.shape, {**spec.defaults, **example.options}) if hasattr(domain, "classes") else None


def _label_spots(spec: LossSpec, example: Example, y_true: np.ndarray, rng) -> list[int]:
    """Flat positions of labels that count: not ignore_class, and for CTC inside a label."""
    flat = y_true.reshape(-1)
    keep = np.ones(flat.size, bool)
    ignore = example.options.get("ignore_class")
    if ignore is not None:
        keep &= flat != ignore
    if spec.name == "ctc":
        options = {**spec.defaults, **example.options}
        lengths = options["label_lengths"]
        if lengths is None:
            inside = y_true != options["blank_index"]
        else:
            inside = np.arange(y_true.shape[1])[None, :] < np.asarray(lengths)[:, None]
        keep &= inside.reshape(-1)
    return [int(i) for i in rng.permutation(flat.size) if keep[i]]


def _poisoned(spec, example, variant):
    y_true, y_pred, rng = _inputs(spec, example, np.float64, seed=5)
    y_true, y_pred = np.array(y_true, order="C"), np.array(y_pred, order="C")
    if variant == "nan_y_pred":
        y_pred.flat[rng.integers(y_pred.size)] = np.nan
    elif variant == "nan_y_true":
        y_true = y_true.astype(np.float64)
        y_true.flat[rng.integers(y_true.size)] = np.nan
    elif variant == "bad_groups":
        # Group labels (any integers): a fraction names no group.
        y_true = y_true.astype(np.float64)
        y_true.flat[rng.integers(y_true.size)] = 1.5
    else:
        # A label past the classes, a negative one, a fraction and a NaN, as float labels.
        classes = _classes(spec, example)
        spots = _label_spots(spec, example, y_true, rng)
        y_true = y_true.astype(np.float64)
        negative = -1.0 if example.options.get("ignore_class") != -1 else -2.0
        for i, bad in zip(spots, (classes, negative, 1.5, np.nan), strict=False):
            y_true.flat[i] = bad
    return y_true, y_pred


NAN_CASES = [
    pytest.param(spec, ex, variant, id=f"{_id(spec, ex)}-{variant}")
    for spec, ex in EXAMPLES
    for variant in _variants(spec, ex)
]


@pytest.mark.parametrize("spec,example,variant", NAN_CASES)
def test_nan_rules(spec, example, variant):
    y_true, y_pred = _poisoned(spec, example, variant)
    options = _options(example, np.float64)
    # Where the poisoned entry enters no value (a frame past logit_lengths, a class under a
    # where mask, an ignored position), the reference says so and jaxloss must agree.
    theirs = reference.per_sample(spec.name, y_true, y_pred, **options)
    with jax.enable_x64(True):
        ours = np.asarray(spec.function(_x64(y_true), _x64(y_pred), reduction="none", **options))
        g = np.asarray(jaxloss.grad(spec.name, reduction="sum", **options)(_x64(y_true), _x64(y_pred)))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), "NaN exactly where the reference has NaN")
    assert_close(ours, theirs, X64)
    if np.any(np.isnan(theirs)):
        assert np.any(np.isnan(g)), "a NaN value has a NaN gradient"


# -inf logits: a class with no target mass contributes 0, target mass on it gives +inf.
INF_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy")
INF_CASES = [
    pytest.param(spec, ex, at_target, id=f"{_id(spec, ex)}-{'target' if at_target else 'zero_target'}")
    for spec, ex in EXAMPLES
    if spec.name in INF_LOSSES and ex.options.get("from_logits") and ex.options.get("logit_soft_cap") is None
    for at_target in (False, True)
]


@pytest.mark.parametrize("spec,example,at_target", INF_CASES)
def test_minus_inf_logits(spec, example, at_target):
    y_true, y_pred, _ = _inputs(spec, example, np.float64, seed=6)
    options = _options(example, np.float64)
    ax = options.get("axis", -1) % y_pred.ndim
    first = (0,) * (y_pred.ndim - 1)
    if spec.integer_labels:
        label = int(np.asarray(y_true).reshape(-1)[0])
        classes = [c for c in range(y_pred.shape[ax]) if (c == label) == at_target]
    else:
        row = np.moveaxis(y_true, ax, -1)[first]
        classes = [c for c in range(y_pred.shape[ax]) if (row[c] > 0) == at_target]
    if not classes or (spec.integer_labels and label == options.get("ignore_class")):
        pytest.skip("no such class in the first row of these inputs")
    y_pred = np.moveaxis(y_pred.copy(), ax, -1)
    y_pred[first + (classes[0],)] = -np.inf
    y_pred = np.moveaxis(y_pred, -1, ax)
    theirs = reference.per_sample(spec.name, y_true, y_pred, **options)
    with jax.enable_x64(True):
        ours = np.asarray(spec.function(_x64(y_true), _x64(y_pred), reduction="none", **options))
    assert_close(ours, theirs, X64)


# ----------------------------------------------------------------------------
# The reductions with a loss's own mask and count weights, every reduction
# ----------------------------------------------------------------------------

MASKED = [(s, e) for s, e in EXAMPLES if reference.mask(s.name, *_inputs(s, e)[:2], **_options(e)) is not None]


@pytest.mark.parametrize("spec,example", _params(MASKED, pytest.mark.presampled))
def test_masked_reductions(spec, example):
    # Every reduction of a loss with a mask (ignore_class, circle, ntxent, ranking_softmax)
    # or count weights (class_weight), on one weighted call each: Keras's mask rescaling
    # and PyTorch's weighted mean are where the reductions differ from a plain mean.
    y_true, y_pred, rng = _inputs(spec, example, seed=7)
    options = _options(example)
    values = reference.per_sample(spec.name, y_true, y_pred, **options)
    sw = _weight(rng, values.shape, "weighted", np.float32)
    for reduction in ("sum_over_batch_size", "mean_with_sample_weight"):
        ours = spec.function(y_true, y_pred, sample_weight=sw, reduction=reduction, **options)
        theirs = reference.loss(spec.name, y_true, y_pred, sample_weight=sw, reduction=reduction, **options)
        assert_close(ours, theirs, F32, reduction)


# ----------------------------------------------------------------------------
# linear_cross_entropy: the sparse crossentropy of the explicit logits
# ----------------------------------------------------------------------------


def _linear_cross_entropy():
    return jaxloss.linear_cross_entropy


LCE_REGISTRY = [(s, e) for s, e in DIRECT if s.name == "linear_cross_entropy"]


def _lce_registry_inputs(example: Example, dtype, seed: int = 9):
    rng = np.random.default_rng(seed)
    y, hidden, weight = example.draw(rng)
    return np.asarray(y), _cast(hidden, dtype), _cast(weight, dtype), rng


@pytest.mark.parametrize("spec,example,reduction,weighting", _grid(LCE_REGISTRY))
def test_linear_cross_entropy_examples_match_the_reference(spec, example, reduction, weighting):
    y, hidden, weight, rng = _lce_registry_inputs(example, np.float32)
    options = _options(example)
    values = reference.per_sample(spec.name, y, hidden, weight=weight, **options)
    sw = _weight(rng, values.shape, weighting, np.float32)
    ours = spec.function(y, hidden, weight, sample_weight=sw, reduction=reduction, **options)
    theirs = reference.loss(spec.name, y, hidden, weight=weight, sample_weight=sw, reduction=reduction, **options)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs, F32)


@pytest.mark.parametrize("spec,example", _params([(s, e) for s, e in LCE_REGISTRY if e.smooth]))
def test_linear_cross_entropy_examples_gradient(spec, example):
    y, hidden, weight, _ = _lce_registry_inputs(example, np.float64)
    options = _options(example, np.float64)
    with jax.enable_x64(True):
        jopts = {k: _x64(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
        ours = jax.grad(lambda h: spec.function(y, h, jnp.asarray(weight), **jopts))(jnp.asarray(hidden))
    theirs = reference.grad(spec.name, y, hidden, weight=weight, **options)
    assert_close(ours, theirs, GRAD)


# Option sets beyond the declared examples: class weights with ignored tokens and
# smoothing, transformer-shaped (B, T) labels with a (B,) weight, bias with the (V, d) layout.
LCE_CASES = [
    ({}, (12,)),
    ({"ignore_class": 3}, (12,)),
    ({"label_smoothing": 0.1, "z_loss": 1e-2}, (12,)),
    ({"logit_soft_cap": 2.0}, (3, 4)),
    ({"class_weight": "w"}, (12,)),
    ({"class_weight": "w", "ignore_class": 0, "label_smoothing": 0.2}, (3, 4)),
    ({"bias": "b", "weight_layout": "vd", "chunk_size": 5}, (12,)),
]


def _lce_inputs(options, shape, dtype, seed=8):
    rng = np.random.default_rng(seed)
    d, vocab = 4, 7
    y = rng.integers(0, vocab, shape)
    if options.get("ignore_class") is not None:
        y.reshape(-1)[::3] = options["ignore_class"]
    hidden = rng.normal(0, 1, (*shape, d)).astype(dtype)
    weight = rng.normal(0, 1, (d, vocab)).astype(dtype)
    opts = dict(options)
    if opts.get("weight_layout") == "vd":
        weight = np.ascontiguousarray(weight.T)
    if opts.get("bias") == "b":
        opts["bias"] = rng.normal(0, 1, vocab).astype(dtype)
    if opts.get("class_weight") == "w":
        opts["class_weight"] = rng.uniform(0.2, 2.0, vocab).astype(dtype)
    return y, hidden, weight, opts, rng


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options,shape", [pytest.param(o, s, id=f"{o}-{s}") for o, s in LCE_CASES])
def test_linear_cross_entropy_matches_the_reference(options, shape, reduction):
    lce = _linear_cross_entropy()
    y, hidden, weight, opts, rng = _lce_inputs(options, shape, np.float32)
    sw = rng.uniform(0.2, 2.0, shape[:1]).astype(np.float32)  # a leading prefix of the labels' shape
    ours = lce(y, hidden, weight, sample_weight=sw, reduction=reduction, **opts)
    theirs = reference.loss(
        "linear_cross_entropy", y, hidden, weight=weight, sample_weight=sw, reduction=reduction, **opts
    )
    assert_close(ours, theirs, F32)


@pytest.mark.parametrize("options,shape", [pytest.param(o, s, id=f"{o}-{s}") for o, s in LCE_CASES])
def test_linear_cross_entropy_gradient(options, shape):
    lce = _linear_cross_entropy()
    y, hidden, weight, opts, _ = _lce_inputs(options, shape, np.float64)
    with jax.enable_x64(True):
        jopts = {k: _x64(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
        ours = jax.grad(lambda h: lce(y, h, jnp.asarray(weight), **jopts))(jnp.asarray(hidden))
    theirs = reference.grad("linear_cross_entropy", y, hidden, weight=weight, **opts)
    assert_close(ours, theirs, GRAD)


def test_linear_cross_entropy_labels_that_name_no_class():
    lce = _linear_cross_entropy()
    y, hidden, weight, _, _ = _lce_inputs({}, (6,), np.float64)
    y = y.astype(np.float64)
    y[1], y[3], y[4] = 7, 2.5, -1
    with jax.enable_x64(True):
        ours = np.asarray(lce(y, hidden, weight, reduction="none"))
        g = np.asarray(jax.grad(lambda h: lce(y, h, jnp.asarray(weight), reduction="sum"))(jnp.asarray(hidden)))
    theirs = reference.per_sample("linear_cross_entropy", y, hidden, weight=weight)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert_close(ours, theirs, X64)
    assert np.all(np.isnan(g[[1, 3, 4]])) and np.all(np.isfinite(g[[0, 2, 5]])), "NaN in exactly their gradients"
