"""jaxloss.keras: jaxloss losses in Keras 3's compile/fit/save/load, against Keras's own losses.

The oracle is Keras itself: the same model, from the same initial weights, trained with
Keras's loss and with the adapter must give the same per-epoch losses and final weights.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - keras imported earlier with another backend
    pytest.skip("jaxloss.keras is tested on Keras's JAX backend", allow_module_level=True)

import jaxloss  # noqa: E402
import jaxloss.keras as jk  # noqa: E402
from jaxloss import _registry  # noqa: E402

RTOL = 1e-5  # float32: the two runs differ only by round-off in the per-sample values
ROOT = Path(__file__).resolve().parents[1]
N, FEATURES = 48, 5
FIT = {"epochs": 3, "batch_size": 16, "shuffle": False, "verbose": 0}


@pytest.fixture(autouse=True)
def _keras_broadcasts():
    # Keras's layers add biases by rank promotion, which the suite's conftest forbids.
    with jax.numpy_rank_promotion("allow"):
        yield


# ----------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------

_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, FEATURES)).astype("float32")
SAMPLE_WEIGHT = _rng.uniform(0.2, 2.0, size=N).astype("float32")
_classes = _rng.integers(0, 3, size=N)
TARGETS = {
    "binary": (_rng.uniform(size=(N, 1)) < 0.4).astype("float32"),
    "multilabel": (_rng.uniform(size=(N, 4)) < 0.5).astype("float32"),
    "onehot": np.eye(3, dtype="float32")[_classes],
    "sparse": _classes,
    "regression": _rng.normal(size=(N, 2)).astype("float32"),
}
# fit(class_weight=) maps each sample's class (argmax of a row, or the rounded label) to a weight.
CLASS_WEIGHT = {
    "binary": {0: 1.0, 1: 3.0},
    "multilabel": {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.5},
    "onehot": {0: 1.0, 1: 3.0, 2: 0.5},
    "sparse": {0: 1.0, 1: 3.0, 2: 0.5},
    "regression": {0: 1.0, 1: 2.5},
}


def _model(units: int, activation: str | None) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation=activation)])


def _train(make_model, loss, x, y, weightings: dict[str, dict]) -> dict[str, tuple[list[float], list]]:
    """Per-epoch losses and final weights of one run per weighting, each from the seeded initial weights.

    One compiled model serves every run: it is reset to the initial weights and optimizer
    state before each, and runs with the same inputs (sample_weight from fit's
    sample_weight or class_weight) reuse one compiled training step.
    """
    model = make_model()
    initial = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    runs = {}
    for name, fit in weightings.items():
        model.set_weights(initial)
        for variable in model.optimizer.variables:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        history = model.fit(x, y, **{**FIT, **fit})
        runs[name] = history.history["loss"], model.get_weights()
    return runs


def _assert_same_training(expected: dict, actual: dict) -> None:
    for name, (loss_e, weights_e) in expected.items():
        loss_a, weights_a = actual[name]
        np.testing.assert_allclose(loss_a, loss_e, rtol=RTOL, err_msg=f"per-epoch losses, {name}")
        for we, wa in zip(weights_e, weights_a, strict=True):
            # Relative to the layer's largest weight: a weight near 0 keeps absolute round-off.
            np.testing.assert_allclose(wa, we, rtol=RTOL, atol=RTOL * np.max(np.abs(we)), err_msg=f"weights, {name}")


# (Keras class name, options, output units, output activation, targets): the adapter class
# has Keras's name and options, so each case is a drop-in swap of keras.losses for jaxloss.keras.
CASES = [
    ("BinaryCrossentropy", {}, 1, "sigmoid", "binary"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, 1, None, "binary"),
    ("CategoricalCrossentropy", {}, 3, "softmax", "onehot"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, 3, None, "onehot"),
    ("SparseCategoricalCrossentropy", {}, 3, "softmax", "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, 3, None, "sparse"),
    ("Huber", {"delta": 0.5}, 2, None, "regression"),
    ("MeanSquaredError", {}, 2, None, "regression"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5}, 1, "sigmoid", "binary"),
    ("BinaryFocalCrossentropy", {"from_logits": True, "gamma": 2.0}, 1, None, "binary"),
    # Per-sample Dice (Keras's default, axis=None, gives one value per batch).
    ("Dice", {"axis": -1}, 4, "sigmoid", "multilabel"),
]


# Every case runs: the conftest's CI sampler would keep a seeded 12% of a large grid.
@pytest.mark.presampled
@pytest.mark.parametrize(
    ("cls", "options", "units", "activation", "targets"),
    CASES,
    ids=[f"{c[0]}{c[1] or ''}".replace(" ", "") for c in CASES],
)
def test_fit_matches_keras(cls, options, units, activation, targets):
    weightings = {
        "no weights": {},
        "sample_weight": {"sample_weight": SAMPLE_WEIGHT},
        "class_weight": {"class_weight": CLASS_WEIGHT[targets]},
    }
    y = TARGETS[targets]
    make_model = functools.partial(_model, units, activation)
    expected = _train(make_model, getattr(keras.losses, cls)(**options), X, y, weightings)
    actual = _train(make_model, getattr(jk, cls)(**options), X, y, weightings)
    _assert_same_training(expected, actual)
    # The weights act: each weighting trains differently.
    assert len({round(runs[0][-1], 5) for runs in expected.values()}) == 3


# A sequence model whose Embedding(mask_zero=True) masks the padding: Keras's reduction
# drops the masked timesteps from the per-timestep loss.
T, VOCAB = 6, 12
SEQ_X = _rng.integers(1, VOCAB, size=(N, T))
for _i, _length in enumerate(_rng.integers(2, T + 1, size=N)):
    SEQ_X[_i, _length:] = 0
SEQ_MASK = SEQ_X != 0
SEQ_Y = {"sparse": _rng.integers(0, 3, size=(N, T)), "regression": _rng.normal(size=(N, T, 1)).astype("float32")}


def _sequence_model(units: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((T,), dtype="int32"), keras.layers.Embedding(VOCAB, 4, mask_zero=True), keras.layers.Dense(units)]
    )


SEQUENCE_CASES = [
    ("SparseCategoricalCrossentropy", {"from_logits": True}, 3, "sparse"),
    ("Huber", {"delta": 0.5}, 1, "regression"),
]


@pytest.mark.parametrize(("cls", "options", "units", "targets"), SEQUENCE_CASES, ids=[c[0] for c in SEQUENCE_CASES])
def test_fit_with_mask_matches_keras(cls, options, units, targets):
    y = SEQ_Y[targets]
    make_model = functools.partial(_sequence_model, units)
    expected = _train(make_model, getattr(keras.losses, cls)(**options), SEQ_X, y, {"mask": {}})
    actual = _train(make_model, getattr(jk, cls)(**options), SEQ_X, y, {"mask": {}})
    _assert_same_training(expected, actual)

    # The mask acts: the loss is the mean over unpadded timesteps, whatever the padded targets say.
    loss = getattr(jk, cls)(**options)
    model = make_model()
    model.compile(loss=loss)
    values = getattr(jaxloss, loss.loss_name)(y, model.predict(SEQ_X, verbose=0), **options, reduction="none")
    expected_loss = np.sum(np.asarray(values) * SEQ_MASK) / SEQ_MASK.sum()
    np.testing.assert_allclose(model.evaluate(SEQ_X, y, batch_size=N, verbose=0), expected_loss, rtol=RTOL)
    y_padded_garbage = np.where(SEQ_MASK.reshape(SEQ_MASK.shape + (1,) * (y.ndim - 2)), y, 2 * y + 1)
    np.testing.assert_allclose(
        model.evaluate(SEQ_X, y_padded_garbage, batch_size=N, verbose=0), expected_loss, rtol=RTOL
    )


# ----------------------------------------------------------------------------
# Losses Keras does not have
# ----------------------------------------------------------------------------


def test_sigmoid_focal_trains_as_keras_balanced_focal_from_logits():
    # optax's sigmoid_focal_loss is Keras's class-balanced binary focal crossentropy on logits.
    y = TARGETS["multilabel"]
    make_model = functools.partial(_model, 4, None)
    weightings = {"no weights": {}, "sample_weight": {"sample_weight": SAMPLE_WEIGHT}}
    keras_loss = keras.losses.BinaryFocalCrossentropy(
        from_logits=True, apply_class_balancing=True, alpha=0.3, gamma=1.5
    )
    expected = _train(make_model, keras_loss, X, y, weightings)
    actual = _train(make_model, jk.SigmoidFocal(alpha=0.3, gamma=1.5), X, y, weightings)
    _assert_same_training(expected, actual)


CTC_T, CTC_CLASSES = 6, 4
CTC_X = _rng.normal(size=(12, CTC_T, 3)).astype("float32")
CTC_LENGTHS = np.array([6, 3, 5, 4, 6, 3, 4, 5, 6, 3, 5, 4])
CTC_X[np.arange(CTC_T) >= CTC_LENGTHS[:, None]] = 0.0  # right padding, which Masking(0.0) masks
CTC_LABELS = np.array([[1, 2, 0], [3, 0, 0], [1, 1, 2], [2, 0, 0], [3, 1, 0], [1, 0, 0]] * 2)


def _ctc_model(mask: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    masking = [keras.layers.Masking(0.0)] if mask else []
    return keras.Sequential([keras.Input((CTC_T, 3)), *masking, keras.layers.Dense(CTC_CLASSES)])


def test_ctc_as_keras_ctc_and_with_lengths_from_the_mask():
    model = _ctc_model(False)
    weight = SAMPLE_WEIGHT[:12]
    evaluated = {}
    for loss in (keras.losses.CTC(), jk.CTC()):
        model.compile(loss=loss)
        evaluated[type(loss).__module__] = model.evaluate(
            CTC_X, CTC_LABELS, sample_weight=weight, batch_size=12, verbose=0
        )
    assert evaluated["jaxloss.keras"] == pytest.approx(evaluated["keras.src.losses.losses"], rel=RTOL)

    # A Keras mask on the logits gives each sample's number of frames.
    model = _ctc_model(True)
    model.compile(loss=jk.CTC())
    logits = model.predict(CTC_X, verbose=0)
    with_lengths = jaxloss.ctc(CTC_LABELS, logits, logit_lengths=CTC_LENGTHS)
    evaluated = model.evaluate(CTC_X, CTC_LABELS, batch_size=12, verbose=0)
    np.testing.assert_allclose(evaluated, with_lengths, rtol=RTOL)
    assert not np.isclose(evaluated, jaxloss.ctc(CTC_LABELS, logits), rtol=1e-2)
    # Keras's own CTC weights its (batch,) values by the (batch, time) mask, and fails.
    model.compile(loss=keras.losses.CTC())
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        model.evaluate(CTC_X, CTC_LABELS, batch_size=12, verbose=0)


class _HiddenStates(keras.Model):
    """A body whose output is the hidden states; the vocabulary head's weights live beside it."""

    def __init__(self, logits: bool):
        super().__init__()
        self.logits = logits
        self.body = keras.layers.Dense(6, activation="tanh")
        self.head = keras.layers.Dense(7)

    def build(self, input_shape):
        self.body.build(input_shape)
        self.head.build((None, 6))

    def call(self, x):
        hidden = self.body(x)
        return self.head(hidden) if self.logits else hidden


def _language_model(logits: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = _HiddenStates(logits)
    model.build((None, FEATURES))
    return model


def test_linear_cross_entropy_trains_the_head_it_never_materializes():
    y = _rng.integers(0, 7, size=N)
    expected = _train(
        functools.partial(_language_model, True),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        X,
        y,
        {"no weights": {}},
    )
    model = _language_model(False)
    loss = jk.LinearCrossEntropy(weight=model.head.kernel, bias=model.head.bias)
    actual = _train(lambda: model, loss, X, y, {"no weights": {}})
    _assert_same_training(expected, actual)
    with pytest.raises(ValueError, match=r"is the model variable '.*/kernel'.*cannot link a loss to a variable"):
        loss.get_config()


def _jitted(*losses):
    # One compiled program for several losses, rather than one per Keras op run eagerly.
    return jax.jit(lambda y_true, y_pred, weight: [loss(y_true, y_pred, sample_weight=weight) for loss in losses])


def test_losses_that_leave_entries_out_of_the_mean():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 3)).astype("float32")
    labels = np.array([0, 2, -1, 1, -1, 2, 0, 1])
    weight = rng.uniform(0.5, 2.0, size=8).astype("float32")
    embeddings = rng.normal(size=(8, 4)).astype("float32")
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    groups = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    reductions = ("sum_over_batch_size", "mean_with_sample_weight", "sum")
    # ignore_class and circle: Keras's own losses mask the same entries.
    for cls, options, y_true, y_pred in [
        ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": -1}, labels, logits),
        ("Circle", {"gamma": 2.0}, groups, embeddings),
    ]:
        ours = _jitted(*(getattr(jk, cls)(**options, reduction=r) for r in reductions))(y_true, y_pred, weight)
        theirs = _jitted(*(getattr(keras.losses, cls)(**options, reduction=r) for r in reductions))(
            y_true, y_pred, weight
        )
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg=cls)
    # ntxent averages over positive pairs, as jaxloss's own reduction (and optax) does.
    np.testing.assert_allclose(
        _jitted(jk.Ntxent(temperature=0.5))(groups, embeddings, None)[0],
        jaxloss.ntxent(groups, embeddings, temperature=0.5),
        rtol=RTOL,
    )


# ----------------------------------------------------------------------------
# Names, dtypes, configs, serialization
# ----------------------------------------------------------------------------

# Options a loss cannot be built without.
REQUIRED = {"GaussianNll": {"variance": 1.0}, "LinearCrossEntropy": {"weight": np.ones((3, 5), "float32")}}


def _adapter_classes():
    return [getattr(jk, name) for name in jk.__all__ if name != "Loss"]


def _build(cls):
    return cls(**REQUIRED.get(cls.__name__, {}))


def test_a_class_for_every_loss_with_the_functions_options():
    assert set(_registry.canonical_names()) <= {_build(cls).loss_name for cls in _adapter_classes()}
    huber = inspect.signature(jk.Huber).parameters
    assert list(huber) == ["delta", "reduction", "name", "dtype"]
    assert huber["delta"].default == 1.0 and huber["delta"].kind is inspect.Parameter.KEYWORD_ONLY
    focal = inspect.signature(jk.SigmoidFocal).parameters
    assert [(p.name, p.default) for p in focal.values()][:2] == [("alpha", None), ("gamma", 2.0)]
    assert inspect.signature(jk.GaussianNll).parameters["variance"].default is inspect.Parameter.empty
    with pytest.raises(ValueError, match=r"huber has no option\(s\) \['gama'\]; valid options are delta"):
        jk.Huber(gama=2.0)
    with pytest.raises(ValueError, match="huber: delta must lie in"):
        jk.Huber(delta=-1.0)
    with pytest.raises(TypeError, match=r"jaxloss\.keras\.Huber is huber; it takes no loss argument"):
        jk.Huber(loss="mse")
    with pytest.raises(TypeError, match="linear_cross_entropy needs weight"):
        jk.LinearCrossEntropy()


def test_loss_from_a_name_a_function_or_a_bound_loss():
    for spelling in ("mse", "MeanSquaredError", "mean_squared_error", jaxloss.mean_squared_error):
        assert jk.Loss(spelling).loss_name == "mean_squared_error"
    assert jk.Loss(jaxloss.huber, delta=0.5).options == {"delta": 0.5}
    bound = jk.Loss(jaxloss.get("huber", delta=0.5, reduction="sum"))
    assert (bound.options, bound.reduction, bound.name) == ({"delta": 0.5}, "sum", "huber_loss")
    with pytest.raises(ValueError, match="was given reduction='mean' and a bound reduction='sum'; give one"):
        jk.Loss(jaxloss.get("huber", reduction="sum"), reduction="mean")
    with pytest.raises(ValueError, match="unknown loss 'hubber'"):
        jk.Loss("hubber")
    # Options at their defaults are not kept: a loss from a complete config equals the original.
    assert jk.Huber(delta=1.0).options == {} and jk.GaussianNll(variance=1.0).options == {"variance": 1.0}


def test_needs_the_jax_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ValueError, match=r"needs Keras's JAX backend \(KERAS_BACKEND=jax\); the backend is 'torch'"):
        jk.Huber()


def test_names_dtypes_and_configs_as_keras():
    for cls in _adapter_classes():
        ours = _build(cls)
        theirs = getattr(keras.losses, cls.__name__, None)
        if theirs is None:
            assert ours.name == ours.loss_name
            continue
        assert ours.name == theirs().name, cls
        assert ours.reduction == theirs().reduction
        # A Keras config (every option Keras saves) builds the same adapter.
        assert cls.from_config(theirs().get_config()).get_config() == ours.get_config(), cls
    for dtype in (None, "float64", "bfloat16", keras.DTypePolicy("mixed_bfloat16")):
        assert jk.Huber(dtype=dtype).dtype == keras.losses.Huber(dtype=dtype).dtype


def _round_trip(obj):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))
    return config, keras.saving.deserialize_keras_object(config)


def test_every_class_round_trips_through_keras_serialization():
    for cls in _adapter_classes():
        loss = _build(cls)
        config, restored = _round_trip(loss)
        assert config["registered_name"] == f"jaxloss>{cls.__name__}"
        assert type(restored) is cls and restored.get_config() == loss.get_config()
    loss = jk.Loss("huber", delta=0.5, reduction="sum", name="h", dtype="float64")
    config, restored = _round_trip(loss)
    assert config["config"] == {"name": "h", "reduction": "sum", "dtype": "float64", "loss": "huber", "delta": 0.5}
    assert type(restored) is jk.Loss and restored.options == {"delta": 0.5} and restored.dtype == "float64"
    # Keras 3.15's own Huber saves no delta (it reloads with delta=1.0); the adapter keeps it.
    assert keras.losses.Huber.from_config(keras.losses.Huber(delta=0.5).get_config())._fn_kwargs == {"delta": 1.0}
    assert _round_trip(jk.Huber(delta=0.5))[1].options == {"delta": 0.5}


SAVED = [
    (lambda: jk.Huber(delta=0.5), 2, None, "regression"),
    (lambda: jk.Loss("huber", delta=0.25, reduction="sum", name="my_huber"), 2, None, "regression"),
    (lambda: jk.CategoricalCrossentropy(from_logits=True, class_weight=[1.0, 2.0, 0.5]), 3, None, "onehot"),
    (lambda: jk.SigmoidFocal(alpha=0.3, gamma=1.5), 4, None, "multilabel"),
]


@pytest.mark.presampled
@pytest.mark.parametrize(
    ("make_loss", "units", "activation", "targets"), SAVED, ids=[str(i) for i in range(len(SAVED))]
)
def test_model_save_and_load_restore_the_loss(tmp_path, make_loss, units, activation, targets):
    loss = make_loss()
    model = _model(units, activation)
    model.compile(optimizer="sgd", loss=loss)
    y = TARGETS[targets]
    before = model.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert type(restored.loss) is type(loss)
    assert restored.loss.loss_name == loss.loss_name
    assert restored.loss.get_config() == loss.get_config()
    for key, value in loss.options.items():
        np.testing.assert_array_equal(restored.loss.options[key], value)
    assert restored.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, verbose=0) == pytest.approx(before, rel=1e-7)


# ----------------------------------------------------------------------------
# Plain jaxloss functions and get(...) losses in compile (documented in docs/keras.md)
# ----------------------------------------------------------------------------


def _evaluate(loss, x, y, model, **kwargs) -> float:
    model.compile(loss=loss)
    return model.evaluate(x, y, batch_size=len(x), verbose=0, **kwargs)


def test_plain_function_is_right_without_weights_only():
    model = _model(2, None)
    y = TARGETS["regression"]
    keras_huber = keras.losses.Huber(delta=0.5)
    per_sample = jaxloss.huber(y, model.predict(X, verbose=0), delta=0.5, reduction="none")
    plain = jaxloss.get("huber", delta=0.5)
    # No weights: right.
    assert _evaluate(plain, X, y, model) == pytest.approx(_evaluate(keras_huber, X, y, model), rel=RTOL)
    # sample_weight (and class_weight, which fit turns into one): Keras scales the already
    # averaged loss by the mean weight, instead of averaging the weighted per-sample values.
    weighted = _evaluate(plain, X, y, model, sample_weight=SAMPLE_WEIGHT)
    assert weighted == pytest.approx(float(np.mean(per_sample)) * float(np.mean(SAMPLE_WEIGHT)), rel=RTOL)
    right = _evaluate(keras_huber, X, y, model, sample_weight=SAMPLE_WEIGHT)
    assert right == pytest.approx(float(np.mean(per_sample * SAMPLE_WEIGHT)), rel=RTOL)
    assert not np.isclose(weighted, right, rtol=1e-3)
    # With reduction="none" the per-sample values reach Keras's reduction: right.
    unreduced = jaxloss.get("huber", delta=0.5, reduction="none")
    assert _evaluate(unreduced, X, y, model, sample_weight=SAMPLE_WEIGHT) == pytest.approx(right, rel=RTOL)


def test_plain_function_ignores_masks_unless_unreduced():
    model = _sequence_model(3)
    y = SEQ_Y["sparse"]
    per_step = jaxloss.sparse_categorical_crossentropy(
        y, model.predict(SEQ_X, verbose=0), from_logits=True, reduction="none"
    )
    masked_mean = float(np.sum(per_step * SEQ_MASK) / SEQ_MASK.sum())
    plain = jaxloss.get("sparse_categorical_crossentropy", from_logits=True)
    assert _evaluate(plain, SEQ_X, y, model) == pytest.approx(float(np.mean(per_step)), rel=RTOL)
    unreduced = jaxloss.get("sparse_categorical_crossentropy", from_logits=True, reduction="none")
    assert _evaluate(unreduced, SEQ_X, y, model) == pytest.approx(masked_mean, rel=RTOL)
    assert _evaluate(jk.SparseCategoricalCrossentropy(from_logits=True), SEQ_X, y, model) == pytest.approx(
        masked_mean, rel=RTOL
    )


def test_plain_loss_and_ignore_class():
    # Keras's ignore_class divides by the valid labels; a plain loss's values carry no mask.
    model = _model(3, None)
    y = np.where(np.arange(N) % 4 == 0, -1, TARGETS["sparse"])
    values = jaxloss.sparse_categorical_crossentropy(
        y, model.predict(X, verbose=0), from_logits=True, ignore_class=-1, reduction="none"
    )
    valid_mean = float(np.sum(values) / np.sum(y != -1))
    plain = jaxloss.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=-1)
    assert _evaluate(plain, X, y, model) == pytest.approx(valid_mean, rel=RTOL)
    unreduced = jaxloss.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=-1, reduction="none")
    assert _evaluate(unreduced, X, y, model) == pytest.approx(float(np.sum(values) / N), rel=RTOL)
    adapter = jk.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    assert _evaluate(adapter, X, y, model) == pytest.approx(valid_mean, rel=RTOL)


def test_plain_functions_and_get_losses_reload_as_themselves(tmp_path):
    # Importing jaxloss.keras registers them for Keras serialization.
    for loss in (jaxloss.huber, jaxloss.sigmoid_focal, jaxloss.get("huber", delta=0.5)):
        model = _model(1, None)
        model.compile(optimizer="sgd", loss=loss)
        model.save(tmp_path / "model.keras")
        restored = keras.models.load_model(tmp_path / "model.keras").loss
        if isinstance(loss, type(jaxloss.get("huber"))):
            assert type(restored) is type(loss) and (restored.name, restored.options) == ("huber", {"delta": 0.5})
        else:
            assert restored is loss


# Run in a fresh interpreter: what happens before jaxloss.keras is imported.
_WITHOUT_ADAPTER = """
import json, os, sys
import jaxloss
print(json.dumps(sorted(m for m in sys.modules if m == "keras" or m.startswith("keras."))))
import keras
import numpy as np
out = {}
for label, loss in [("huber", jaxloss.huber), ("sigmoid_focal", jaxloss.sigmoid_focal),
                    ("get", jaxloss.get("huber", delta=0.5))]:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss=loss)
    model.save(os.path.join(sys.argv[1], label + ".keras"))
    try:
        fn = keras.models.load_model(os.path.join(sys.argv[1], label + ".keras")).loss
        out[label] = fn.__module__ + "." + fn.__name__
    except TypeError as err:
        out[label] = str(err).split(". ")[0]
print(json.dumps(out))
"""


def test_without_the_adapter(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(jaxloss.__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ADAPTER, str(tmp_path)], env=env, capture_output=True, text=True, check=True
    )
    keras_modules, loaded = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert keras_modules == []  # import jaxloss imports no keras
    # A plain function saves by its bare name and reloads as Keras's function of that name.
    assert loaded["huber"] == "keras.src.losses.losses.huber"
    assert loaded["sigmoid_focal"] == "Could not locate function 'sigmoid_focal'"
    assert re.fullmatch(r"Could not locate class '\w+'", loaded["get"])


# ----------------------------------------------------------------------------
# The documentation page
# ----------------------------------------------------------------------------


def test_docs_examples_run(tmp_path, monkeypatch):
    if not (ROOT / "docs" / "keras.md").is_file():
        pytest.skip("no docs/ beside this copy of tests/ (the installed-wheel run)")
    page = (ROOT / "docs" / "keras.md").read_text()
    blocks = list(re.finditer(r"```python\n(.*?)```", page, flags=re.S))
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        # Padded so that a traceback names the page's own line numbers.
        source = "\n" * page[: block.start(1)].count("\n") + block.group(1)
        exec(compile(source, str(ROOT / "docs" / "keras.md"), "exec"), namespace)


def test_linear_cross_entropy_leaves_ignore_class_out_of_the_mean():
    rng = np.random.default_rng(3)
    hidden = rng.normal(size=(8, 4)).astype("float32")
    weight = rng.normal(size=(4, 5)).astype("float32")
    labels = np.array([0, 1, -1, 3, -1, 2, 4, 0])
    loss = jk.LinearCrossEntropy(weight=weight, ignore_class=-1)
    expected = jaxloss.linear_cross_entropy(labels, hidden, weight, ignore_class=-1)
    np.testing.assert_allclose(float(loss(labels, hidden)), float(expected), rtol=RTOL)
