"""Cases for the regression losses."""

import numpy as np

from . import Case


def _pair(shape, low=-2.0, high=2.0):
    def make(rng):
        return (
            rng.uniform(low, high, shape).astype(np.float32),
            rng.uniform(low, high, shape).astype(np.float32),
        )

    return make


def _positive(shape):
    def make(rng):
        return rng.uniform(0.1, 3.0, shape).astype(np.float32), rng.uniform(0.1, 3.0, shape).astype(np.float32)

    return make


def _labels_vs_column(n):
    # (N,) targets against (N, 1) predictions: Keras's rank rule.
    def make(rng):
        return rng.uniform(-2, 2, (n,)).astype(np.float32), rng.uniform(-2, 2, (n, 1)).astype(np.float32)

    return make


CASES = [
    Case("mean_squared_error", {}, _pair((6, 5))),
    Case("mean_squared_error", {}, _pair((3, 4, 5)), label="rank3"),
    Case("mean_squared_error", {}, _labels_vs_column(7), label="N_vs_N1"),
    Case("mean_absolute_error", {}, _pair((6, 5)), smooth=False),
    Case("mean_absolute_error", {}, _pair((2, 3, 4)), label="rank3", smooth=False),
    Case("mean_absolute_percentage_error", {}, _positive((6, 5)), smooth=False),
    Case("mean_absolute_percentage_error", {}, _pair((3, 2, 4)), label="rank3", smooth=False),
    Case("mean_squared_logarithmic_error", {}, _positive((6, 5))),
    Case("mean_squared_logarithmic_error", {}, _positive((2, 3, 4)), label="rank3"),
    Case("huber", {}, _pair((6, 5)), smooth=False),
    Case("huber", {"delta": 0.3}, _pair((2, 3, 4)), smooth=False),
    Case("huber", {"delta": 2.5}, _labels_vs_column(5), label="N_vs_N1", smooth=False),
    Case("log_cosh", {}, _pair((6, 5), -5, 5)),
    Case("log_cosh", {}, _pair((2, 3, 4)), label="rank3"),
    Case("cosine_similarity", {}, _pair((6, 5))),
    Case("cosine_similarity", {"axis": 0}, _pair((4, 3))),
    Case("cosine_similarity", {"axis": 1}, _pair((2, 4, 3))),
    Case("poisson", {}, _positive((6, 5))),
    Case("poisson", {}, _positive((2, 3, 4)), label="rank3"),
]
