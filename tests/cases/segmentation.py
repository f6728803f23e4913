"""Cases for the segmentation losses.

jaxloss's tversky weights false positives by ``alpha`` and false negatives by
``beta`` (Keras's documentation and the paper); Keras 3.15's code swaps them, so
each Keras comparison passes the two swapped.
"""

import numpy as np

from . import Case


def _masks(shape):
    # Binary targets, probabilities away from 0 and 1.
    def make(rng):
        return rng.integers(0, 2, shape).astype(np.float32), rng.uniform(0.05, 0.95, shape).astype(np.float32)

    return make


def _soft(shape):
    # Soft targets (label smoothing, resized masks).
    def make(rng):
        return rng.uniform(0, 1, shape).astype(np.float32), rng.uniform(0.05, 0.95, shape).astype(np.float32)

    return make


def _column_vs_vector(n):
    def make(rng):
        return rng.integers(0, 2, (n,)).astype(np.float32), rng.uniform(0.05, 0.95, (n, 1)).astype(np.float32)

    return make


def _tversky(alpha, beta, axis, make, label=""):
    options = {"alpha": alpha, "beta": beta, "axis": axis}
    return Case("tversky", options, make, label=label, keras_options={"alpha": beta, "beta": alpha, "axis": axis})


CASES = [
    Case("dice", {}, _masks((4, 6))),
    Case("dice", {"axis": None}, _masks((2, 4, 4, 3)), label="rank4"),
    Case("dice", {"axis": (1, 2, 3)}, _masks((3, 4, 4, 2))),
    Case("dice", {"axis": (1, 2)}, _soft((3, 5, 4))),
    Case("dice", {"axis": -1}, _masks((3, 4, 5))),
    Case("dice", {"axis": 1}, _masks((5, 6))),
    Case("dice", {"axis": 0}, _soft((6, 3))),
    Case("dice", {"axis": (0, 2)}, _masks((3, 4, 5))),
    Case("dice", {"axis": 1}, _column_vs_vector(6), label="N_vs_N1"),
    Case("tversky", {}, _masks((4, 6))),
    Case("tversky", {"axis": (1, 2, 3)}, _masks((3, 4, 4, 2))),
    _tversky(0.3, 0.7, None, _masks((4, 6))),
    _tversky(0.3, 0.7, (1, 2), _masks((3, 5, 4))),
    _tversky(0.8, 0.2, -1, _soft((3, 4, 5))),
    _tversky(1.0, 0.0, 1, _masks((5, 6))),
    _tversky(0.0, 2.0, (0, 2), _soft((3, 4, 5))),
    _tversky(0.6, 0.4, 1, _column_vs_vector(6), label="N_vs_N1"),
]
