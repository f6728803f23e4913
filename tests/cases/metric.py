"""Cases for the metric-learning losses (circle).

Embeddings are L2-normalized, as circle expects. With ``remove_diagonal=False``
each sample is its own positive at distance ``max(1 - |y_i|^2, 0)``, which sits on
the clip's kink for unit vectors; those cases use norms in ``[0.8, 0.95]`` so
that finite differences see a smooth function (Keras is compared on them too).

The loss's third derivative grows like ``gamma**3``: from ``gamma`` about 10 (and at
the default 80) the shared finite-difference check (``eps=1e-4``) has a truncation
error above its tolerance, so those cases set ``check_grads=False`` and
tests/test_metric.py checks every circle case with ``eps=1e-6``.
"""

import numpy as np

from . import Case


def _embeddings(n, d, classes, norm=(1.0, 1.0), labels=None, column=False):
    def make(rng):
        y_true = rng.integers(0, classes, n) if labels is None else np.asarray(labels)
        x = rng.normal(0, 1, (n, d))
        x = x / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(*norm, (n, 1))
        y_true = y_true.astype(np.int32)
        return (y_true[:, None] if column else y_true), x.astype(np.float32)

    return make


# Class 3 appears once: that sample has no positive pair, loss 0, masked out of the mean.
_SINGLETON = [0, 1, 0, 2, 1, 3, 2, 0, 1, 2]
_SHRUNK = (0.8, 0.95)

CASES = [
    Case("circle", {}, _embeddings(12, 8, 3), check_grads=False),
    Case("circle", {}, _embeddings(10, 6, 4, labels=_SINGLETON), label="singleton_class", check_grads=False),
    Case("circle", {}, _embeddings(16, 4, 5), label="many_classes", check_grads=False),
    Case("circle", {"gamma": 12.0, "margin": 0.25}, _embeddings(12, 8, 3), check_grads=False),
    Case("circle", {"gamma": 2.0, "margin": 0.0}, _embeddings(10, 5, 2)),
    Case("circle", {"gamma": 32.0, "margin": 0.6}, _embeddings(9, 3, 3, labels=[0, 0, 1, 1, 2, 2, 0, 1, 2])),
    Case("circle", {"remove_diagonal": False}, _embeddings(12, 8, 3, norm=_SHRUNK), check_grads=False),
    Case("circle", {"remove_diagonal": False, "gamma": 8.0}, _embeddings(10, 6, 4, norm=_SHRUNK, labels=_SINGLETON)),
    Case("circle", {"remove_diagonal": False}, _embeddings(8, 4, 2), label="unit_norm", check_grads=False),
    Case("circle", {"gamma": 10.0}, _embeddings(8, 5, 3, column=True), label="labels_N1"),
]
