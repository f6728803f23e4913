"""Listwise ranking losses: ranking_softmax (optax's ``ranking_softmax_loss``)."""

from __future__ import annotations

from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import ArrayOption, Bench, Example, Peer, Reduction, SampleWeight, default_prepare, register
from ._hinge import with_classes
from ._inputs import COUNTS, LOGITS


def _ranking_parts(y_true, y_pred, where):
    if where is None:
        return y_true, jax.nn.log_softmax(y_pred, axis=-1), None
    valid = jnp.asarray(where).astype(bool)
    has_items = jnp.any(valid, axis=-1, keepdims=True)
    labels = jnp.where(valid, y_true, 0.0)
    # A log-softmax over the valid items only; masked items and empty lists stay finite.
    shift = jnp.max(jnp.where(valid, y_pred, -jnp.inf), axis=-1, keepdims=True)
    shift = jax.lax.stop_gradient(jnp.where(has_items, shift, 0.0))
    shifted = jnp.where(valid, y_pred - shift, 0.0)
    total = jnp.sum(jnp.where(valid, jnp.exp(shifted), 0.0), axis=-1, keepdims=True)
    log_probs = jnp.where(valid, shifted - jnp.log(jnp.where(has_items, total, 1.0)), 0.0)
    return labels, log_probs, has_items[..., 0]


def _ranking_softmax(y_true, y_pred, *, where):
    labels, log_probs, _ = _ranking_parts(y_true, y_pred, where)
    return -jnp.sum(labels * log_probs, axis=-1)


def _ranking_softmax_mask(y_true, y_pred, values, *, where):
    # A list with no valid item is left out of the mean reductions, as optax leaves it out of its mean.
    return None if where is None else jnp.any(jnp.asarray(where).astype(bool), axis=-1)


def _ranking_softmax_grad(y_true, y_pred, *, where):
    labels, log_probs, _ = _ranking_parts(y_true, y_pred, where)
    probs = jnp.exp(log_probs)
    if where is not None:
        probs = jnp.where(jnp.asarray(where).astype(bool), probs, 0.0)
    return probs * jnp.sum(labels, axis=-1, keepdims=True) - labels


def _ranking_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = with_classes(default_prepare, "item")(spec, y_true, y_pred, opts)
    where = opts["where"]
    if where is not None and jnp.shape(where) != y_pred.shape:
        raise ValueError(
            f"ranking_softmax: where must have the scores' shape; received where.shape={jnp.shape(where)}, "
            f"y_pred.shape={y_pred.shape}."
        )
    return y_true, y_pred


# Item masks of a (4, 6) example: lists with some, none and every item valid.
_MASK = np.array(
    [
        [True, True, False, True, True, False],
        [False] * 6,
        [True] * 6,
        [True, False, True, False, True, True],
    ]
)


def _optax_ranking(t, p, where):
    return optax.losses.ranking_softmax_loss(p, t, where=None if where is None else jnp.asarray(where), reduce_fn=None)


@register(
    formula=_ranking_softmax,
    local_grad=_ranking_softmax_grad,
    gradient="reference",
    inputs={"y_true": COUNTS, "y_pred": LOGITS},
    examples=(
        Example(shape=(5, 6)),
        Example({"where": _MASK}, shape=(4, 6), label="masked"),
    ),
    mask=_ranking_softmax_mask,
    prepare=_ranking_prepare,
    aliases=("ranking_softmax_loss",),
    peers=(
        Peer("optax", _optax_ranking, "ranking_softmax_loss(p, t, where=where, reduce_fn=None)"),
        # PyTorch's cross_entropy with probability targets is -sum(t log_softmax(p)), for any t.
        Peer(
            "torch",
            lambda torch, F, t, p, where: F.cross_entropy(p, t.to(p.dtype), reduction="none"),
            "F.cross_entropy(p, t) (soft targets)",
            applies=lambda o: o["where"] is None,
        ),
    ),
    # A softmax cross-entropy per list, as categorical_crossentropy.
    bench=Bench(),
)
def ranking_softmax(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    where: Annotated[ArrayLike | None, ArrayOption(dtype="bool")] = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Listwise ranking softmax loss (optax's ``ranking_softmax_loss``).

    .. math:: \ell = -\sum_{i \in \text{list}} y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    Args:
      y_true: non-negative relevance labels, shape ``(..., list_size)``.
      y_pred: scores, same shape, ``list_size >= 1`` (``-inf`` allowed on masked items).
      where: optional boolean mask of the valid items, same shape. Masked items take no
        probability mass and contribute nothing; a list with no valid item is left out
        of the mean reductions, as optax leaves it out of its mean.
      sample_weight: weight of shape ``(...)`` (one per list) or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-list values of shape ``(...)`` (optax's ``reduce_fn=None``, zero
      for empty lists) for ``reduction="none"``.

    Gradient: ``softmax(s) sum(y) - y`` over the valid items, 0 on masked ones.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.ranking_softmax(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(0.6931472, dtype=float32)
    """
    ...
