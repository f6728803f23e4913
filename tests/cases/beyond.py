"""Cases for the losses beyond Keras (jaxloss._margin, _likelihood, _contrastive).

Keras has no equal for these (keras_options=None): tests/test_beyond.py compares
them with optax and with numpy references of PyTorch's formulas. Here they get
the gradient and transformation suites. Array options are nested tuples so the
test ids stay on one line.
"""

import numpy as np

from . import Case


def _labels(shape, classes, scale=2.0):
    def make(rng):
        return rng.integers(0, classes, shape[:-1]).astype(np.int32), rng.normal(0, scale, shape).astype(np.float32)

    return make


def _signs(shape, low=-2.0, high=2.0):
    def make(rng):
        return rng.choice([-1.0, 1.0], shape).astype(np.float32), rng.uniform(low, high, shape).astype(np.float32)

    return make


def _pair(shape, low=-2.0, high=2.0):
    def make(rng):
        return rng.uniform(low, high, shape).astype(np.float32), rng.uniform(low, high, shape).astype(np.float32)

    return make


def _binary(shape, scale=3.0, soft=False):
    def make(rng):
        labels = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape)
        return labels.astype(np.float32), rng.normal(0, scale, shape).astype(np.float32)

    return make


def _onehot(n, c, soft=False):
    def make(rng):
        if soft:
            labels = rng.dirichlet(np.ones(c), n)
        else:
            labels = np.eye(c)[rng.integers(0, c, n)]
        return labels.astype(np.float32), rng.normal(0, 2, (n, c)).astype(np.float32)

    return make


def _ranking(shape, positive=False):
    def make(rng):
        low = 0.1 if positive else -2.0
        return rng.integers(0, 4, shape).astype(np.float32), rng.uniform(low, 2.0, shape).astype(np.float32)

    return make


def _measures(shape, zeros=False):
    def make(rng):
        y_true = rng.uniform(0.0, 2.0, shape)
        if zeros:
            y_true[rng.uniform(size=shape) < 0.3] = 0.0
        return y_true.astype(np.float32), rng.uniform(0.1, 2.0, shape).astype(np.float32)

    return make


def _counts(shape, log_input=True):
    def make(rng):
        y_pred = rng.normal(0, 1, shape) if log_input else rng.uniform(0.1, 3.0, shape)
        return rng.integers(0, 6, shape).astype(np.float32), y_pred.astype(np.float32)

    return make


def _ranked_pairs(shape):
    # y_true in {-1, 1} of shape `shape`, y_pred = stack([x1, x2], -1).
    def make(rng):
        return rng.choice([-1.0, 1.0], shape).astype(np.float32), rng.normal(0, 1, (*shape, 2)).astype(np.float32)

    return make


def _embedding_pairs(n, d, similar_only=False):
    # y_true (n,), y_pred = stack([x1, x2], -2) of shape (n, 2, d).
    def make(rng):
        y_true = np.ones(n) if similar_only else rng.choice([-1.0, 1.0], n)
        return y_true.astype(np.float32), rng.normal(0, 1, (n, 2, d)).astype(np.float32)

    return make


def _triplets(batch, d):
    # y_true = anchors (*batch, d), y_pred = stack([positive, negative], -2).
    def make(rng):
        anchor = rng.normal(0, 1, (*batch, d))
        stacked = anchor[..., None, :] + rng.normal(0, 1, (*batch, 2, d))
        return anchor.astype(np.float32), stacked.astype(np.float32)

    return make


def _groups(n, d, groups):
    def make(rng):
        labels = rng.permutation(np.arange(n) % groups).astype(np.int32)
        # Norms in [1, 2]: finite differences of the normalization stay accurate to second order.
        x = rng.normal(0, 1, (n, d))
        x *= rng.uniform(1.0, 2.0, (n, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
        return labels, x.astype(np.float32)

    return make


_CW5 = (0.5, 1.0, 2.0, 0.25, 1.5)
_MASK = ((True, True, False, True, True, False), (False,) * 6, (True,) * 6, (True, False, True, False, True, True))

CASES = [
    # _margin
    Case("multiclass_hinge", {}, _labels((6, 5), 5), keras_options=None, smooth=False),
    Case("multiclass_hinge", {}, _labels((2, 3, 4), 4), label="rank3", keras_options=None, smooth=False),
    Case("multi_margin", {}, _labels((6, 5), 5), keras_options=None, smooth=False),
    Case("multi_margin", {"p": 2, "margin": 0.5}, _labels((6, 5), 5), keras_options=None, smooth=False),
    Case("multi_margin", {"class_weight": _CW5}, _labels((6, 5), 5), keras_options=None, smooth=False),
    Case("multi_margin", {"p": 2, "class_weight": _CW5}, _labels((2, 3, 5), 5), keras_options=None, smooth=False),
    Case("perceptron", {}, _signs((6, 5)), keras_options=None, smooth=False),
    Case("hinge_embedding", {}, _signs((6, 5), 0.0, 2.0), keras_options=None, smooth=False),
    Case("hinge_embedding", {"margin": 1.5}, _signs((2, 3, 4), 0.0, 2.0), keras_options=None, smooth=False),
    Case("soft_margin", {}, _signs((6, 5), -4.0, 4.0), keras_options=None),
    Case("multilabel_soft_margin", {}, _binary((6, 5)), keras_options=None),
    Case("multilabel_soft_margin", {"class_weight": _CW5}, _binary((2, 3, 5), soft=True), keras_options=None),
    Case("margin_ranking", {}, _ranked_pairs((8,)), keras_options=None, smooth=False),
    Case("margin_ranking", {"margin": 0.3}, _ranked_pairs((3, 4)), keras_options=None, smooth=False),
    Case("cosine_embedding", {}, _embedding_pairs(6, 4, similar_only=True), label="similar", keras_options=None),
    Case("cosine_embedding", {"margin": -0.2}, _embedding_pairs(8, 3), keras_options=None, smooth=False),
    Case("triplet_margin", {}, _triplets((6,), 4), keras_options=None, smooth=False),
    Case("triplet_margin", {"margin": 2.0, "p": 1.0}, _triplets((6,), 4), keras_options=None, smooth=False),
    Case("triplet_margin", {"p": 3.0, "swap": True}, _triplets((2, 3), 4), keras_options=None, smooth=False),
    Case(
        "triplet_margin",
        {"margin": 1.5, "swap": True, "eps": 0.0},
        _triplets((8,), 3),
        keras_options=None,
        smooth=False,
    ),
    # _likelihood
    Case("smooth_l1", {}, _pair((6, 5)), keras_options=None, smooth=False),
    Case("smooth_l1", {"beta": 0.5}, _pair((2, 3, 4)), keras_options=None, smooth=False),
    Case("smooth_l1", {"beta": 0.0}, _pair((6, 5)), keras_options=None, smooth=False),
    Case("gaussian_nll", {"variance": 0.7}, _pair((6, 5)), keras_options=None),
    Case(
        "gaussian_nll", {"variance": (0.5, 1.0, 2.0, 0.1, 3.0, 1e-8), "full": True}, _pair((6, 5)), keras_options=None
    ),
    Case(
        "gaussian_nll",
        {"variance": ((0.5, 1.0, 2.0), (0.2, 0.3, 4.0)), "eps": 1e-3},
        _pair((2, 3)),
        label="heteroscedastic",
        keras_options=None,
    ),
    Case("poisson_nll", {}, _counts((6, 5)), keras_options=None),
    Case("poisson_nll", {"full": True}, _counts((2, 3, 4)), keras_options=None),
    Case("poisson_nll", {"log_input": False, "full": True}, _counts((6, 5), log_input=False), keras_options=None),
    Case("generalized_kl_divergence", {}, _measures((6, 5)), keras_options=None),
    Case("generalized_kl_divergence", {}, _measures((2, 3, 4), zeros=True), label="zeros", keras_options=None),
    # _contrastive
    Case("poly_loss", {}, _onehot(6, 5), keras_options=None),
    Case("poly_loss", {"epsilon": -1.0}, _onehot(6, 5, soft=True), label="soft", keras_options=None),
    Case("sigmoid_focal", {}, _binary((6, 5)), keras_options=None),
    Case("sigmoid_focal", {"alpha": 0.25, "gamma": 0.5}, _binary((6, 5), soft=True), label="soft", keras_options=None),
    Case("sigmoid_focal", {"alpha": 0.75, "gamma": 3.0}, _binary((2, 3, 4), scale=6.0), keras_options=None),
    Case("ntxent", {}, _groups(8, 4, 4), keras_options=None),
    Case("ntxent", {"temperature": 0.5}, _groups(9, 3, 2), keras_options=None),
    Case("sparsemax_loss", {}, _labels((6, 5), 5, scale=0.5), keras_options=None, smooth=False),
    Case("sparsemax_loss", {}, _labels((2, 3, 4), 4), label="rank3", keras_options=None, smooth=False),
    Case("ranking_softmax", {}, _ranking((5, 6)), keras_options=None),
    Case("ranking_softmax", {"where": _MASK}, _ranking((4, 6)), label="masked", keras_options=None),
]
