"""Cases for the hinge losses."""

import numpy as np

from . import Case


def _signs(shape):
    # {-1, 1} labels, scores spread across the hinge's kink at t * y_pred = 1.
    def make(rng):
        return rng.choice([-1.0, 1.0], shape).astype(np.float32), rng.uniform(-2, 2, shape).astype(np.float32)

    return make


def _binary(shape):
    # {0, 1} labels: Keras converts them to {-1, 1} (every label of the batch is 0 or 1).
    def make(rng):
        return rng.integers(0, 2, shape).astype(np.float32), rng.uniform(-2, 2, shape).astype(np.float32)

    return make


def _mixed(shape):
    # Labels 0, 1 and one 0.5: not all binary, so Keras uses them unconverted.
    def make(rng):
        y_true = rng.integers(0, 2, shape).astype(np.float32)
        y_true.flat[0] = 0.5
        return y_true, rng.uniform(-2, 2, shape).astype(np.float32)

    return make


def _signs_vs_column(n):
    # (N,) labels against (N, 1) scores: Keras's rank rule.
    def make(rng):
        return rng.choice([-1.0, 1.0], (n,)).astype(np.float32), rng.uniform(-2, 2, (n, 1)).astype(np.float32)

    return make


def _onehot(shape):
    def make(rng):
        classes = shape[-1]
        y_true = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape[:-1])]
        return y_true, rng.uniform(-2, 2, shape).astype(np.float32)

    return make


def _onehot_negative_scores(shape):
    # Every score below 0: Keras's neg = max((1 - y) * y_pred) is then the 0 of the true class.
    def make(rng):
        y_true, _ = _onehot(shape)(rng)
        return y_true, rng.uniform(-2, -0.1, shape).astype(np.float32)

    return make


def _signed_onehot(shape):
    # {-1, 1} one-hot targets, which Keras also accepts for categorical_hinge.
    def make(rng):
        y_true, y_pred = _onehot(shape)(rng)
        return 2.0 * y_true - 1.0, y_pred

    return make


CASES = [
    Case("hinge", {}, _signs((6, 5)), smooth=False),
    Case("hinge", {}, _signs((3, 4, 5)), label="rank3", smooth=False),
    Case("hinge", {}, _binary((6, 5)), label="binary01", smooth=False),
    Case("hinge", {}, _binary((2, 3, 4)), label="binary01_rank3", smooth=False),
    Case("hinge", {}, _mixed((6, 5)), label="not_binary", smooth=False),
    Case("hinge", {}, _signs_vs_column(7), label="N_vs_N1", smooth=False),
    Case("squared_hinge", {}, _signs((6, 5)), smooth=False),
    Case("squared_hinge", {}, _signs((3, 4, 5)), label="rank3", smooth=False),
    Case("squared_hinge", {}, _binary((6, 5)), label="binary01", smooth=False),
    Case("squared_hinge", {}, _mixed((2, 3, 4)), label="not_binary_rank3", smooth=False),
    Case("squared_hinge", {}, _signs_vs_column(7), label="N_vs_N1", smooth=False),
    Case("categorical_hinge", {}, _onehot((8, 5)), smooth=False),
    Case("categorical_hinge", {}, _onehot((3, 4, 6)), label="rank3", smooth=False),
    Case("categorical_hinge", {}, _onehot_negative_scores((8, 4)), label="negative_scores", smooth=False),
    Case("categorical_hinge", {}, _signed_onehot((8, 5)), label="signed", smooth=False),
]
