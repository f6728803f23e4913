"""Cases for the probabilistic losses (crossentropies, focal, GCE, KL).

Probabilities stay away from 0 and 1 (binary in [0.15, 0.85]; categorical rows
normalised to sum to 1, each entry above 0.05), far from Keras's clip edges and
where third derivatives are moderate, so second-order finite differences hold. Cases Keras
cannot compute (or computes differently on purpose) carry ``keras_options=None``;
tests/test_probabilistic.py checks those against an independent reference.
"""

import numpy as np

from . import Case


def _binary(shape, *, logits=False, soft=False, labels_shape=None):
    def make(rng):
        lshape = shape if labels_shape is None else labels_shape
        if soft:
            y_true = rng.uniform(0.0, 1.0, lshape)
        else:
            y_true = rng.integers(0, 2, lshape)
        y_pred = rng.uniform(-3.0, 3.0, shape) if logits else rng.uniform(0.15, 0.85, shape)
        return y_true.astype(np.float32), y_pred.astype(np.float32)

    return make


def _probs(rng, shape, axis):
    p = rng.uniform(0.2, 1.0, shape)
    return p / p.sum(axis=axis, keepdims=True)


def _categorical(shape, *, axis=-1, logits=False, soft=False, normalised=True):
    def make(rng):
        classes = shape[axis]
        if soft:
            y_true = _probs(rng, shape, axis)
        else:
            labels = rng.integers(0, classes, shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :])
            y_true = np.moveaxis(np.eye(classes)[labels], -1, axis)
        if logits:
            y_pred = rng.uniform(-3.0, 3.0, shape)
        elif normalised:
            y_pred = _probs(rng, shape, axis)
        else:
            y_pred = rng.uniform(0.1, 2.0, shape)  # Keras divides by the sum
        return y_true.astype(np.float32), y_pred.astype(np.float32)

    return make


def _sparse(shape, *, axis=-1, logits=False, ignore=None, unit_axis=False):
    def make(rng):
        ax = axis % len(shape)
        label_shape = shape[:ax] + shape[ax + 1 :]
        labels = rng.integers(0, shape[ax], label_shape)
        if ignore is not None:
            labels.flat[::3] = ignore  # every third position ignored
        if unit_axis:
            labels = np.expand_dims(labels, ax)
        y_pred = rng.uniform(-3.0, 3.0, shape) if logits else _probs(rng, shape, ax)
        return labels.astype(np.int32), y_pred.astype(np.float32)

    return make


def _kl(shape, labels_shape=None):
    def make(rng):
        y_true = _probs(rng, shape, -1)
        y_true.flat[::4] = 0.0  # zero targets: Keras clips them to 1e-7
        if labels_shape is not None:
            y_true = y_true.reshape(labels_shape)
        return y_true.astype(np.float32), rng.uniform(0.05, 0.95, shape).astype(np.float32)

    return make


BCE, BFCE = "binary_crossentropy", "binary_focal_crossentropy"
CCE, CFCE = "categorical_crossentropy", "categorical_focal_crossentropy"
SCCE, GCE, KLD = "sparse_categorical_crossentropy", "categorical_generalized_cross_entropy", "kl_divergence"
LOGITS = {"from_logits": True}

CASES = [
    # binary_crossentropy
    Case(BCE, {}, _binary((6, 5))),
    Case(BCE, LOGITS, _binary((6, 5), logits=True)),
    Case(BCE, {"label_smoothing": 0.2}, _binary((2, 3, 4), soft=True), label="rank3"),
    Case(BCE, {"from_logits": True, "label_smoothing": 0.1}, _binary((2, 3, 4), logits=True), label="rank3"),
    Case(BCE, {"axis": 0}, _binary((4, 3))),
    Case(BCE, {"from_logits": True, "axis": 1}, _binary((2, 4, 3), logits=True)),
    Case(BCE, {}, _binary((7, 1), labels_shape=(7,)), label="N_vs_N1"),
    Case(BCE, LOGITS, _binary((7, 1), logits=True, labels_shape=(7,)), label="N_vs_N1"),
    # binary_focal_crossentropy
    Case(BFCE, {}, _binary((6, 5))),
    Case(BFCE, LOGITS, _binary((6, 5), logits=True)),
    Case(
        BFCE,
        {"apply_class_balancing": True, "alpha": 0.4, "gamma": 0.5},
        _binary((2, 3, 4)),
        label="rank3",
    ),
    Case(
        BFCE,
        {"apply_class_balancing": True, "gamma": 0.0, "from_logits": True, "label_smoothing": 0.1},
        _binary((2, 3, 4), logits=True),
        label="rank3",
    ),
    Case(BFCE, {"gamma": 3.0, "label_smoothing": 0.2}, _binary((6, 5), soft=True), label="soft"),
    Case(BFCE, {"gamma": 1.5, "from_logits": True, "axis": 0}, _binary((4, 3), logits=True)),
    Case(BFCE, {"apply_class_balancing": True, "alpha": 0.7}, _binary((7, 1), labels_shape=(7,)), label="N_vs_N1"),
    # categorical_crossentropy
    Case(CCE, {}, _categorical((6, 5))),
    Case(CCE, LOGITS, _categorical((6, 5), logits=True, soft=True), label="soft"),
    Case(CCE, {}, _categorical((6, 5), normalised=False), label="unnormalised"),
    Case(CCE, {"label_smoothing": 0.1}, _categorical((2, 3, 4)), label="rank3"),
    Case(CCE, {"from_logits": True, "label_smoothing": 0.2}, _categorical((2, 3, 4), logits=True), label="rank3"),
    Case(CCE, {"axis": 0}, _categorical((4, 3), axis=0)),
    Case(CCE, {"from_logits": True, "axis": 1}, _categorical((2, 4, 3), axis=1, logits=True)),
    # Keras smooths with the last axis's size whatever the class axis: compared on moved axes instead.
    Case(
        CCE,
        {"from_logits": True, "label_smoothing": 0.1, "axis": 1},
        _categorical((2, 4, 3), axis=1, logits=True),
        keras_options=None,
    ),
    # categorical_focal_crossentropy
    Case(CFCE, {}, _categorical((6, 5))),
    Case(CFCE, LOGITS, _categorical((6, 5), logits=True)),
    Case(CFCE, {"alpha": 0.5, "gamma": 0.5, "label_smoothing": 0.1}, _categorical((2, 3, 4)), label="rank3"),
    Case(
        CFCE,
        {"gamma": 0.0, "from_logits": True, "label_smoothing": 0.2},
        _categorical((2, 3, 4), logits=True, soft=True),
        label="rank3",
    ),
    # Keras broadcasts a per-class alpha implicitly (rank promotion, refused by our test config): compared
    # with Keras under rank_promotion="allow" in tests/test_probabilistic.py.
    Case(
        CFCE,
        {"alpha": [0.1, 0.2, 0.3, 0.4, 0.5]},
        _categorical((6, 5), normalised=False),
        label="per_class",
        keras_options=None,
    ),
    Case(CFCE, {"gamma": 3.0, "from_logits": True, "axis": 0}, _categorical((4, 3), axis=0, logits=True)),
    Case(CFCE, {"axis": 1}, _categorical((2, 4, 3), axis=1)),
    Case(
        CFCE,
        {"gamma": 0.5, "label_smoothing": 0.1, "axis": 0},
        _categorical((4, 3), axis=0),
        keras_options=None,
    ),
    # sparse_categorical_crossentropy
    Case(SCCE, {}, _sparse((6, 5))),
    Case(SCCE, LOGITS, _sparse((6, 5), logits=True)),
    Case(SCCE, {}, _sparse((2, 3, 4)), label="rank3"),
    Case(SCCE, LOGITS, _sparse((2, 3, 4), logits=True), label="rank3"),
    Case(SCCE, {}, _sparse((6, 5), unit_axis=True), label="N1_labels"),
    Case(SCCE, {"from_logits": True, "ignore_class": -1}, _sparse((8, 5), logits=True, ignore=-1)),
    Case(SCCE, {"ignore_class": 2}, _sparse((2, 4, 3), ignore=2), label="rank3"),
    Case(SCCE, {"ignore_class": 255}, _sparse((6, 4), ignore=255), label="void255"),
    # Keras's JAX backend rejects axis != -1: compared with Keras on moved axes instead.
    Case(SCCE, {"from_logits": True, "axis": 1}, _sparse((2, 5, 3), axis=1, logits=True), keras_options=None),
    Case(SCCE, {"axis": 0, "ignore_class": -1}, _sparse((5, 4), axis=0, ignore=-1), keras_options=None),
    # categorical_generalized_cross_entropy
    Case(GCE, {"q": 0.3}, _sparse((6, 5))),
    Case(GCE, {}, _sparse((2, 3, 4)), label="rank3"),
    Case(GCE, {"q": 0.9}, _sparse((6, 3))),
    # Keras's class rejects q = 1 (the function computes it), and broadcasts (N, 1) labels to (N, N).
    Case(GCE, {"q": 1.0}, _sparse((6, 5)), keras_options=None),
    Case(GCE, {"q": 0.5}, _sparse((6, 5), unit_axis=True), label="N1_labels", keras_options=None),
    # kl_divergence
    Case(KLD, {}, _kl((6, 5))),
    Case(KLD, {}, _kl((2, 3, 4)), label="rank3"),
    Case(KLD, {}, _kl((7, 1), labels_shape=(7,)), label="N_vs_N1"),
]

# Options beyond Keras (optax and PyTorch): no Keras equal, so keras_options=None; the closed form,
# autodiff and finite differences are checked here, the values against optax and PyTorch's formulas
# in tests/test_probabilistic_options.py.
CW5 = [0.5, 2.0, 1.0, 0.0, 1.5]  # one class weighted 0
MASK5 = [True, True, False, True, True]


def _kl_log(shape, *, log_input, log_target):
    def make(rng):
        y_true = _probs(rng, shape, -1)
        y_true.flat[::4] = 0.0  # zero targets: -inf log-targets, 0 log 0 = 0 in log-input mode
        y_pred = _probs(rng, shape, -1)
        with np.errstate(divide="ignore"):
            y_true = np.log(y_true) if log_target else y_true
        return y_true.astype(np.float32), (np.log(y_pred) if log_input else y_pred).astype(np.float32)

    return make


BEYOND = {"keras_options": None}
CASES += [
    # binary_crossentropy: pos_weight (PyTorch)
    Case(BCE, {"pos_weight": [0.5, 1.0, 2.0, 3.0, 0.0]}, _binary((6, 5), soft=True), **BEYOND),
    Case(BCE, {"from_logits": True, "pos_weight": 2.5, "label_smoothing": 0.1}, _binary((6, 5), logits=True), **BEYOND),
    Case(BCE, {"from_logits": True, "pos_weight": [3.0, 0.5, 1.5], "axis": 0}, _binary((3, 4), logits=True), **BEYOND),
    # categorical_crossentropy: class_weight, where, z_loss, logit_soft_cap
    Case(CCE, {"class_weight": CW5}, _categorical((6, 5)), **BEYOND),
    Case(CCE, {"class_weight": CW5, "label_smoothing": 0.1}, _categorical((6, 5), soft=True), label="soft", **BEYOND),
    Case(
        CCE,
        {"from_logits": True, "class_weight": CW5, "label_smoothing": 0.2},
        _categorical((6, 5), logits=True, soft=True),
        label="soft",
        **BEYOND,
    ),
    Case(CCE, {"from_logits": True, "where": MASK5}, _categorical((6, 5), logits=True, soft=True), **BEYOND),
    Case(CCE, {"from_logits": True, "z_loss": 0.05}, _categorical((6, 5), logits=True), **BEYOND),
    Case(CCE, {"from_logits": True, "logit_soft_cap": 2.0}, _categorical((6, 5), logits=True), **BEYOND),
    Case(
        CCE,
        {
            "from_logits": True,
            "where": [True, False, True, True],
            "label_smoothing": 0.2,
            "z_loss": 0.01,
            "logit_soft_cap": 2.5,
            "class_weight": [1.0, 0.5, 2.0, 1.5],
        },
        _categorical((2, 3, 4), logits=True, soft=True),
        label="rank3",
        **BEYOND,
    ),
    Case(
        CCE,
        {
            "from_logits": True,
            "axis": 1,
            "class_weight": [1.0, 2.0, 0.5, 1.0],
            "z_loss": 0.02,
            "where": [[True], [True], [False], [True]],
        },
        _categorical((2, 4, 3), axis=1, logits=True),
        **BEYOND,
    ),
    # sparse_categorical_crossentropy: label_smoothing, class_weight, where, z_loss, logit_soft_cap
    Case(SCCE, {"label_smoothing": 0.1}, _sparse((6, 5)), **BEYOND),
    Case(SCCE, {"from_logits": True, "label_smoothing": 0.2}, _sparse((6, 5), logits=True), **BEYOND),
    Case(SCCE, {"from_logits": True, "class_weight": CW5}, _sparse((6, 5), logits=True), **BEYOND),
    Case(SCCE, {"class_weight": CW5, "ignore_class": -1}, _sparse((8, 5), ignore=-1), **BEYOND),
    Case(
        SCCE,
        {"from_logits": True, "class_weight": CW5, "label_smoothing": 0.1, "ignore_class": -1},
        _sparse((8, 5), logits=True, ignore=-1),
        **BEYOND,
    ),
    Case(SCCE, {"from_logits": True, "where": MASK5, "z_loss": 0.05}, _sparse((6, 5), logits=True), **BEYOND),
    Case(
        SCCE,
        {"from_logits": True, "logit_soft_cap": 2.0, "label_smoothing": 0.1, "where": MASK5, "class_weight": CW5},
        _sparse((2, 3, 5), logits=True),
        label="rank3",
        **BEYOND,
    ),
    Case(
        SCCE,
        {"from_logits": True, "axis": 1, "label_smoothing": 0.1, "where": [[True], [False], [True], [True], [True]]},
        _sparse((2, 5, 3), axis=1, logits=True),
        **BEYOND,
    ),
    # kl_divergence: log_input / log_target (PyTorch's kl_div, optax)
    Case(KLD, {"log_input": True}, _kl_log((6, 5), log_input=True, log_target=False), **BEYOND),
    Case(KLD, {"log_input": True, "log_target": True}, _kl_log((6, 5), log_input=True, log_target=True), **BEYOND),
    Case(KLD, {"log_target": True}, _kl_log((2, 3, 4), log_input=False, log_target=True), label="rank3", **BEYOND),
]
