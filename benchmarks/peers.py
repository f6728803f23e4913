"""What each loss is benchmarked on, and its equivalents in optax, Keras 3 and PyTorch.

A :class:`Case` names a jaxloss loss, its options, an input generator and the
peers that compute *the same scalar* (Keras's default ``"sum_over_batch_size"``
reduction): optax's per-example function with the matching mean, Keras's class,
PyTorch's functional form. The harness checks on the smallest size that each
peer's value and gradient agree with jaxloss's and flags those that do not.

Cases for losses that are not registered (a module not landed yet) are skipped;
registered losses without a case are listed as such in the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

Maker = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]

# Crossentropies and other classification losses use (elements / WIDTH, WIDTH):
# the target size 8192 x 1024 is exactly ``--sizes 8192x1024``.
WIDTH = 1024


def _rows(n: int, width: int = WIDTH) -> int:
    return max(1, round(n / width))


def _normal(rng, shape, scale=1.0):
    x = rng.standard_normal(shape, dtype=np.float32)
    return x if scale == 1.0 else x * np.float32(scale)


def _uniform(rng, shape, low, high):
    return rng.random(shape, dtype=np.float32) * np.float32(high - low) + np.float32(low)


def _random_signs(rng, shape):
    """-1 or 1 with equal odds, float32."""
    return np.where(rng.random(shape, dtype=np.float32) < 0.5, -1.0, 1.0).astype(np.float32)


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(-1, keepdims=True)
    return x


def real(rng, n):
    shape = (_rows(n), WIDTH)
    return _normal(rng, shape), _normal(rng, shape)


def positive(rng, n):
    shape = (_rows(n), WIDTH)
    return _uniform(rng, shape, 0.5, 3.0), _uniform(rng, shape, 0.5, 3.0)


def counts(rng, n):
    shape = (_rows(n), WIDTH)
    return np.floor(_uniform(rng, shape, 0.0, 5.0)), _normal(rng, shape)


def binary_logits(rng, n):
    shape = (_rows(n), WIDTH)
    return (rng.random(shape, dtype=np.float32) < 0.5).astype(np.float32), _normal(rng, shape, 3.0)


def signs(rng, n):
    shape = (_rows(n), WIDTH)
    p = _normal(rng, shape)
    p[p == 0.0] = 0.5  # away from the kink, where libraries pick different subgradients
    return _random_signs(rng, shape), p


def signs_distances(rng, n):
    t, _ = signs(rng, n)
    return t, _uniform(rng, t.shape, 0.0, 2.0)


def masks(rng, n):
    shape = (_rows(n), WIDTH)
    return (rng.random(shape, dtype=np.float32) < 0.5).astype(np.float32), _uniform(rng, shape, 0.05, 0.95)


# Unit-scale logits keep every softmax probability above Keras's 1e-7 clip (documented
# deviations live below it), so that peers compute the same numbers.


def onehot_logits(rng, n):
    rows = _rows(n)
    t = np.zeros((rows, WIDTH), np.float32)
    t[np.arange(rows), rng.integers(0, WIDTH, rows)] = 1.0
    return t, _normal(rng, (rows, WIDTH))


def sparse_logits(rng, n):
    rows = _rows(n)
    return rng.integers(0, WIDTH, rows).astype(np.int32), _normal(rng, (rows, WIDTH))


def sparse_probs(rng, n):
    labels, logits = sparse_logits(rng, n)
    return labels, _softmax(logits)


def distributions(rng, n):
    shape = (_rows(n), WIDTH)
    return _softmax(_normal(rng, shape)), _softmax(_normal(rng, shape))


CTC_TIME, CTC_CLASSES, CTC_LABELS = 64, 32, 16


def ctc_inputs(rng, n):
    batch = _rows(n, CTC_TIME * CTC_CLASSES)
    labels = rng.integers(1, CTC_CLASSES, (batch, CTC_LABELS)).astype(np.int32)
    lengths = rng.integers(1, CTC_LABELS + 1, batch)
    labels[np.arange(CTC_LABELS)[None, :] >= lengths[:, None]] = 0  # 0: blank and padding
    return labels, _normal(rng, (batch, CTC_TIME, CTC_CLASSES))


CIRCLE_DIM = 128


def embeddings(rng, n):
    rows = _rows(n, CIRCLE_DIM)
    x = _normal(rng, (rows, CIRCLE_DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return rng.integers(0, 16, rows).astype(np.int32), x


def relevance(rng, n):
    # Binary relevance (clicks): about ten relevant items in each list of WIDTH.
    shape = (_rows(n), WIDTH)
    return (rng.random(shape, dtype=np.float32) < 0.01).astype(np.float32), _normal(rng, shape)


# The multi-input losses stack their compared inputs into y_pred (see jaxloss/_margin.py).
EMBED_DIM = 128


def ranked_pairs(rng, n):
    # y_true (rows, WIDTH) in {-1, 1}; y_pred (rows, WIDTH, 2) stacks x1 and x2.
    rows = _rows(n, 2 * WIDTH)
    return _random_signs(rng, (rows, WIDTH)), _normal(rng, (rows, WIDTH, 2))


def embedding_pairs(rng, n):
    # y_true (rows,) in {-1, 1}; y_pred (rows, 2, EMBED_DIM) stacks x1 and x2.
    rows = _rows(n, 2 * EMBED_DIM)
    return _random_signs(rng, (rows,)), _normal(rng, (rows, 2, EMBED_DIM))


def triplets(rng, n):
    # The anchor (rows, EMBED_DIM) plays y_true; y_pred (rows, 2, EMBED_DIM) stacks positive and
    # negative. Independent normals: the hinge is active on about half the triplets.
    rows = _rows(n, 2 * EMBED_DIM)
    return _normal(rng, (rows, EMBED_DIM)), _normal(rng, (rows, 2, EMBED_DIM))


# ----------------------------------------------------------------------------
# optax equivalents: f(y_true, y_pred) -> the same scalar as jaxloss's default reduction
# ----------------------------------------------------------------------------


def _ctc_optax(labels, logits):
    batch, time = logits.shape[:2]
    per_seq = optax.losses.ctc_loss(
        logits, jnp.zeros((batch, time), logits.dtype), labels, (labels == 0).astype(logits.dtype)
    )
    return jnp.mean(per_seq)


OPTAX: dict[str, tuple[Callable[..., Any], str]] = {
    "mean_squared_error": (lambda t, p: jnp.mean(optax.losses.squared_error(p, t)), "squared_error(p, t).mean()"),
    "huber": (lambda t, p: jnp.mean(optax.losses.huber_loss(p, t, delta=1.0)), "huber_loss(p, t, delta=1).mean()"),
    "smooth_l1": (lambda t, p: jnp.mean(optax.losses.huber_loss(p, t, delta=1.0)), "huber_loss(p, t, delta=1).mean()"),
    "log_cosh": (lambda t, p: jnp.mean(optax.losses.log_cosh(p, t)), "log_cosh(p, t).mean()"),
    "cosine_similarity": (
        lambda t, p: -jnp.mean(optax.losses.cosine_similarity(p, t, epsilon=1e-7)),
        "-cosine_similarity(p, t, epsilon=1e-7).mean()",
    ),
    "binary_crossentropy": (
        lambda t, p: jnp.mean(optax.losses.sigmoid_binary_cross_entropy(p, t)),
        "sigmoid_binary_cross_entropy(p, t).mean()",
    ),
    "binary_focal_crossentropy": (
        lambda t, p: jnp.mean(optax.losses.sigmoid_focal_loss(p, t, alpha=None, gamma=2.0)),
        "sigmoid_focal_loss(p, t, gamma=2).mean()",
    ),
    "sigmoid_focal": (
        lambda t, p: jnp.mean(optax.losses.sigmoid_focal_loss(p, t, alpha=None, gamma=2.0)),
        "sigmoid_focal_loss(p, t, gamma=2).mean()",
    ),
    "categorical_crossentropy": (
        lambda t, p: jnp.mean(optax.losses.softmax_cross_entropy(p, t)),
        "softmax_cross_entropy(p, t).mean()",
    ),
    "sparse_categorical_crossentropy": (
        lambda t, p: jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(p, t)),
        "softmax_cross_entropy_with_integer_labels(p, t).mean()",
    ),
    "kl_divergence": (
        lambda t, p: jnp.mean(optax.losses.kl_divergence(jnp.log(p), t)),
        "kl_divergence(log(p), t).mean()",
    ),
    "generalized_kl_divergence": (
        lambda t, p: jnp.mean(optax.losses.generalized_kl_divergence(jnp.log(p), t)),
        "generalized_kl_divergence(log(p), t).mean()",
    ),
    "hinge": (lambda t, p: jnp.mean(optax.losses.hinge_loss(p, t)), "hinge_loss(p, t).mean()"),
    "squared_hinge": (
        lambda t, p: jnp.mean(jnp.square(optax.losses.hinge_loss(p, t))),
        "square(hinge_loss(p, t)).mean()",
    ),
    "perceptron": (lambda t, p: jnp.mean(optax.losses.perceptron_loss(p, t)), "perceptron_loss(p, t).mean()"),
    "multiclass_hinge": (
        lambda t, p: jnp.mean(optax.losses.multiclass_hinge_loss(p, t)),
        "multiclass_hinge_loss(p, t).mean()",
    ),
    "sparsemax_loss": (
        lambda t, p: jnp.mean(optax.losses.multiclass_sparsemax_loss(p, t)),
        "multiclass_sparsemax_loss(p, t).mean()",
    ),
    "poly_loss": (
        lambda t, p: jnp.mean(optax.losses.poly_loss_cross_entropy(p, t, epsilon=2.0)),
        "poly_loss_cross_entropy(p, t, epsilon=2).mean()",
    ),
    "ctc": (_ctc_optax, "ctc_loss(p, 0, t, t == 0).mean()"),
    # ntxent returns optax's mean over positive pairs, jaxloss's default reduction.
    "ntxent": (lambda t, p: optax.losses.ntxent(p, t, temperature=0.07), "ntxent(p, t, temperature=0.07)"),
    "ranking_softmax": (
        lambda t, p: jnp.mean(optax.losses.ranking_softmax_loss(p, t, reduce_fn=None)),
        "ranking_softmax_loss(p, t, reduce_fn=None).mean()",
    ),
    # optax adds eps inside the root, PyTorch (and jaxloss) to the difference: the case sets eps=0.
    "triplet_margin": (
        lambda t, p: jnp.mean(optax.losses.triplet_margin_loss(t, p[:, 0], p[:, 1], margin=1.0, eps=0.0)),
        "triplet_margin_loss(t, p[:, 0], p[:, 1], eps=0).mean()",
    ),
}

# ----------------------------------------------------------------------------
# PyTorch equivalents: f(torch, F, y_true, y_pred) on float32 tensors (int64 labels)
# ----------------------------------------------------------------------------

TorchFn = Callable[[Any, Any, Any, Any], Any]

# gaussian_nll's case passes one scalar variance (its options are fixed across sizes).
GAUSSIAN_VARIANCE = 0.5

TORCH: dict[str, TorchFn] = {
    "mean_squared_error": lambda torch, F, t, p: F.mse_loss(p, t),
    "mean_absolute_error": lambda torch, F, t, p: F.l1_loss(p, t),
    "huber": lambda torch, F, t, p: F.huber_loss(p, t, delta=1.0),
    "smooth_l1": lambda torch, F, t, p: F.smooth_l1_loss(p, t, beta=1.0),
    "cosine_similarity": lambda torch, F, t, p: -F.cosine_similarity(p, t, dim=-1, eps=1e-7).mean(),
    "poisson": lambda torch, F, t, p: F.poisson_nll_loss(p, t, log_input=False, eps=1e-7),
    "poisson_nll": lambda torch, F, t, p: F.poisson_nll_loss(p, t, log_input=True),
    "binary_crossentropy": lambda torch, F, t, p: F.binary_cross_entropy_with_logits(p, t),
    "categorical_crossentropy": lambda torch, F, t, p: F.cross_entropy(p, t),
    "sparse_categorical_crossentropy": lambda torch, F, t, p: F.cross_entropy(p, t),
    "kl_divergence": lambda torch, F, t, p: F.kl_div(torch.log(p), t, reduction="batchmean"),
    "hinge": lambda torch, F, t, p: torch.clamp(1.0 - t * p, min=0.0).mean(),
    "squared_hinge": lambda torch, F, t, p: torch.clamp(1.0 - t * p, min=0.0).square().mean(),
    "soft_margin": lambda torch, F, t, p: F.soft_margin_loss(p, t),
    "hinge_embedding": lambda torch, F, t, p: F.hinge_embedding_loss(p, t, margin=1.0),
    "multilabel_soft_margin": lambda torch, F, t, p: F.multilabel_soft_margin_loss(p, t),
    "multi_margin": lambda torch, F, t, p: F.multi_margin_loss(p, t),
    "margin_ranking": lambda torch, F, t, p: F.margin_ranking_loss(p[..., 0], p[..., 1], t, margin=0.0),
    "cosine_embedding": lambda torch, F, t, p: F.cosine_embedding_loss(p[:, 0], p[:, 1], t, margin=0.0),
    "triplet_margin": lambda torch, F, t, p: F.triplet_margin_loss(t, p[:, 0], p[:, 1], margin=1.0, p=2.0, eps=0.0),
    "gaussian_nll": lambda torch, F, t, p: F.gaussian_nll_loss(p, t, torch.full_like(p, GAUSSIAN_VARIANCE)),
    # Binary relevance is a probability target: cross_entropy's soft-label form, mean over lists.
    "ranking_softmax": lambda torch, F, t, p: F.cross_entropy(p, t),
}

# ----------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------

POLYNOMIAL, TRANSCENDENTAL = "polynomial", "transcendental"


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked configuration of a loss.

    Attributes:
      loss: jaxloss's name.
      make: ``(rng, elements) -> (y_true, y_pred)``; ``y_pred`` float32 with about
        ``elements`` entries (integer labels stay integers).
      options: jaxloss options (also passed to Keras unless ``keras_options``).
      keras: Keras 3 class name, or None.
      keras_options: options for the Keras class when they differ.
      family: the issue's target class against the stream floor (``<= 3x``
        polynomial, ``<= 5x`` transcendental), or None (no floor target).
      max_elements: larger sizes are skipped (pairwise or sequential losses).
    """

    loss: str
    make: Maker
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    keras: str | None = None
    keras_options: dict[str, Any] | None = None
    family: str | None = None
    max_elements: int | None = None

    @property
    def optax(self) -> tuple[Callable[..., Any], str] | None:
        return OPTAX.get(self.loss)

    @property
    def torch(self) -> TorchFn | None:
        return TORCH.get(self.loss)

    @property
    def label(self) -> str:
        opts = ",".join("logits" if (k, v) == ("from_logits", True) else f"{k}={v}" for k, v in self.options.items())
        return f"{self.loss}[{opts}]" if opts else self.loss

    @property
    def crossentropy(self) -> bool:
        """The issue's ">= 2x faster than Keras on every cross-entropy"."""
        return "crossentropy" in self.loss or "cross_entropy" in self.loss


LOGITS = {"from_logits": True}

CASES: list[Case] = [
    # regression
    Case("mean_squared_error", real, keras="MeanSquaredError", family=POLYNOMIAL),
    Case("mean_absolute_error", real, keras="MeanAbsoluteError", family=POLYNOMIAL),
    Case("mean_absolute_percentage_error", positive, keras="MeanAbsolutePercentageError"),
    Case("mean_squared_logarithmic_error", positive, keras="MeanSquaredLogarithmicError"),
    Case("huber", real, keras="Huber", family=POLYNOMIAL),
    Case("log_cosh", real, keras="LogCosh", family=TRANSCENDENTAL),
    Case("cosine_similarity", real, keras="CosineSimilarity"),
    Case("poisson", positive, keras="Poisson", family=TRANSCENDENTAL),
    # probabilistic (from logits, as models are trained)
    Case("binary_crossentropy", binary_logits, LOGITS, keras="BinaryCrossentropy", family=TRANSCENDENTAL),
    Case("binary_focal_crossentropy", binary_logits, LOGITS, keras="BinaryFocalCrossentropy", family=TRANSCENDENTAL),
    Case("categorical_crossentropy", onehot_logits, LOGITS, keras="CategoricalCrossentropy"),
    Case(
        "categorical_focal_crossentropy",
        onehot_logits,
        LOGITS,
        keras="CategoricalFocalCrossentropy",
        family=TRANSCENDENTAL,
    ),
    Case("sparse_categorical_crossentropy", sparse_logits, LOGITS, keras="SparseCategoricalCrossentropy"),
    Case("categorical_generalized_cross_entropy", sparse_probs, keras="CategoricalGeneralizedCrossEntropy"),
    Case("kl_divergence", distributions, keras="KLDivergence", family=TRANSCENDENTAL),
    # hinge
    Case("hinge", signs, keras="Hinge", family=POLYNOMIAL),
    Case("squared_hinge", signs, keras="SquaredHinge", family=POLYNOMIAL),
    Case("categorical_hinge", onehot_logits, keras="CategoricalHinge", family=POLYNOMIAL),
    # segmentation (per-row overlap)
    Case("dice", masks, {"axis": -1}, keras="Dice"),
    Case("tversky", masks, {"axis": -1}, keras="Tversky"),
    # metric learning: an (N, N) similarity matrix, so N is capped
    Case("circle", embeddings, keras="Circle", max_elements=4096 * CIRCLE_DIM),
    # sequence: a scan over time
    Case("ctc", ctc_inputs, keras="CTC", max_elements=2_000_000),
    # beyond Keras (optax and PyTorch parity)
    Case("smooth_l1", real, family=POLYNOMIAL),
    Case("perceptron", signs, family=POLYNOMIAL),
    Case("sigmoid_focal", binary_logits, family=TRANSCENDENTAL),
    Case("poly_loss", onehot_logits),
    Case("generalized_kl_divergence", positive, family=TRANSCENDENTAL),
    Case("multiclass_hinge", sparse_logits),
    Case("multi_margin", sparse_logits),
    Case("sparsemax_loss", sparse_logits, max_elements=WIDTH * 8192),  # sorts every row: slow
    Case("poisson_nll", counts, family=TRANSCENDENTAL),
    Case("soft_margin", signs),
    Case("hinge_embedding", signs_distances, family=POLYNOMIAL),
    Case("multilabel_soft_margin", binary_logits),
    Case("gaussian_nll", real, {"variance": GAUSSIAN_VARIANCE}, family=TRANSCENDENTAL),  # log v, as poisson_nll
    Case("margin_ranking", ranked_pairs, family=POLYNOMIAL),  # a hinge on x1 - x2
    Case("cosine_embedding", embedding_pairs),
    Case("triplet_margin", triplets, {"eps": 0.0}),  # eps=0: optax places eps elsewhere
    Case("ranking_softmax", relevance),  # a softmax cross-entropy per list, as categorical_crossentropy
    Case("ntxent", embeddings, max_elements=4096 * CIRCLE_DIM),  # (N, N) similarities, as circle
]
