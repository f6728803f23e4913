"""Divergences between distributions and measures: Keras's KL divergence (with PyTorch's and
optax's log-input and log-target forms) and optax's generalized KL divergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    TRANSCENDENTAL,
    Bench,
    Example,
    Flag,
    Peer,
    Reduction,
    SampleWeight,
    register,
    safe_where,
)
from ._crossentropy import clip_slope
from ._inputs import DISTRIBUTION, LOG_DISTRIBUTION, NON_NEGATIVE, POSITIVE, PROBABILITIES, Distribution


def _with_zeros(shape, *, log_input=False, log_target=False):
    """Distributions with zero targets (every fourth entry): Keras clips them to 1e-7,
    the log forms read ``0 log 0 = 0`` (``-inf`` log-targets)."""

    def draw(rng):
        def dist(zero):
            p = rng.uniform(0.2, 1.0, shape)
            if zero:
                p.reshape(-1)[::4] = 0.0
            return p / p.sum(-1, keepdims=True)

        y_true, y_pred = dist(True), dist(False)
        with np.errstate(divide="ignore"):
            return (np.log(y_true) if log_target else y_true), (np.log(y_pred) if log_input else y_pred)

    return draw


# --------------------------------------------------------------------------
# kl_divergence
# --------------------------------------------------------------------------


def _kld_log_parts(y_true, log_target):
    """PyTorch's kl_div / optax (``log_input``): targets with ``0 log 0 = 0``, nothing clipped.

    Returns the classes with target mass, the targets and their logs, 0 (not ``-inf``) where
    the target is 0 so that no untaken branch makes a NaN gradient; a NaN target stays NaN.
    """
    if log_target:
        live = ~(y_true == -jnp.inf)
        log_t = jnp.where(live, y_true, 0.0)
        return live, jnp.where(live, jnp.exp(log_t), 0.0), log_t
    live = ~(y_true == 0)
    return live, y_true, jnp.log(jnp.where(live, y_true, 1.0))


def _kld(y_true, y_pred, *, log_input, log_target):
    if log_input:
        live, t, log_t = _kld_log_parts(y_true, log_target)
        log_p = jnp.where(live, y_pred, 0.0)
        # The value is linear in y_pred: a NaN there (under a non-zero target, where it is in the
        # value) would vanish from the gradient. shown^2 is an exact 0 for every other input (its
        # derivative too, -inf included) and NaN, with a NaN derivative, at that NaN.
        shown = jnp.where(jnp.isnan(y_pred) & live, y_pred, 0.0)
        return jnp.sum(jnp.where(live, t * (log_t - log_p), 0.0) + shown * shown, axis=-1)
    t = jnp.clip(jnp.exp(y_true) if log_target else y_true, EPSILON, 1.0)
    return jnp.sum(t * jnp.log(t / jnp.clip(y_pred, EPSILON, 1.0)), axis=-1)


def _kld_grad(y_true, y_pred, *, log_input, log_target):
    if log_input:
        live, t, _ = _kld_log_parts(y_true, log_target)
        return jnp.where(jnp.isnan(y_pred), jnp.nan, jnp.where(live, -t, 0.0))  # a NaN input shows
    t = jnp.clip(jnp.exp(y_true) if log_target else y_true, EPSILON, 1.0)
    return -t / jnp.clip(y_pred, EPSILON, 1.0) * clip_slope(y_pred, EPSILON, 1.0)


def _kld_true(options):
    return LOG_DISTRIBUTION if options["log_target"] else DISTRIBUTION


def _kld_pred(options):
    return LOG_DISTRIBUTION if options["log_input"] else Distribution(axis=-1)


def _torch_kld(torch, F, t, p, log_input, log_target):
    log_p = p if log_input else torch.log(p)
    return F.kl_div(log_p, t, reduction="none", log_target=log_target).sum(-1)


@register(
    formula=_kld,
    local_grad=_kld_grad,
    gradient="reference",
    inputs={"y_true": _kld_true, "y_pred": _kld_pred},
    examples=(
        Example(draw=_with_zeros((6, 5))),
        Example(shape=(2, 3, 4), label="rank3"),
        # One class: probabilities that are not distributions (Keras clips, never normalizes).
        Example(
            shape=(7, 1),
            true_shape=(7,),
            inputs={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            peers=False,
            label="N_vs_N1",
        ),
        Example({"log_input": True}, draw=_with_zeros((6, 5), log_input=True), keras=False),
        # optax and PyTorch give NaN for a -inf log-target (0 log 0).
        Example(
            {"log_input": True, "log_target": True},
            draw=_with_zeros((6, 5), log_input=True, log_target=True),
            keras=False,
            peers=False,
        ),
        Example({"log_input": True, "log_target": True}, keras=False, label="no_zeros"),
        Example({"log_target": True}, shape=(2, 3, 4), keras=False),
    ),
    keras="KLDivergence",
    aliases=("kld", "kullback_leibler_divergence"),
    peers=(
        Peer(
            "optax",
            lambda t, p, log_input, log_target: (
                optax.losses.kl_divergence_with_log_targets(p, t) if log_target else optax.losses.kl_divergence(p, t)
            ),
            "kl_divergence(log_p, t)",
            applies=lambda o: o["log_input"],
        ),
        Peer("torch", _torch_kld, "F.kl_div(log_p, t).sum(-1)", applies=lambda o: o["log_input"]),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    log_input: Flag = False,
    log_target: Flag = False,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(y_true || y_pred)`` over the last axis.

    .. math:: \ell = \sum_{-1} t \log\frac{t}{p},\quad t = \operatorname{clip}(y, \epsilon, 1),\
       p = \operatorname{clip}(\hat y, \epsilon, 1),\ \epsilon = 10^{-7}

    by default (Keras). ``log_target=True``: ``y_true`` holds log-probabilities, ``t = exp(y_true)``
    (clipped as above unless ``log_input``). ``log_input=True``: ``y_pred`` holds
    log-probabilities and nothing is clipped, PyTorch's ``kl_div(y_pred, y_true, log_target=...)``
    with ``reduction="none"`` summed over the last axis, and optax's ``kl_divergence`` /
    ``kl_divergence_with_log_targets``:

    .. math:: \ell = \sum_{-1} t\,(\log t - \log p),\quad 0 \log 0 = 0,

    where a zero target (``y_true == 0``, or ``-inf`` with ``log_target``) contributes 0 in
    value and gradient, even against ``log p = -inf`` (optax gives NaN for ``-inf`` log-targets).

    Args:
      y_true: target probabilities (log-probabilities with ``log_target``), shape ``(..., C)``.
      y_pred: predicted probabilities (log-probabilities with ``log_input``), same shape
        (Keras's rank rule applies).
      log_input: whether ``y_pred`` holds log-probabilities.
      log_target: whether ``y_true`` holds log-probabilities.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``-t / p``, 0 where ``y_pred`` is clipped (outside ``[1e-7, 1]``); with
    ``log_input``, ``-t`` (0 at zero targets). Gradients with respect to the targets are
    finite at zero targets too (``log t`` read as 0 there).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> print(f"{jaxloss.kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]])):.5f}")
      0.14384
      >>> loss = jaxloss.kl_divergence(jnp.log(jnp.array([[0.0, 1.0]])), jnp.log(jnp.array([[0.0, 0.5]])),
      ...                              log_input=True, log_target=True)
      >>> print(f"{loss:.5f}")
      0.69315
    """
    ...


# --------------------------------------------------------------------------
# generalized_kl_divergence (optax)
# --------------------------------------------------------------------------


def _safe_rate(y_true, y_pred):
    return jnp.where((y_true != 0) | (y_pred != 0), y_pred, 1.0)


def _generalized_kl(y_true, y_pred):
    # 0 log 0 = 0 (optax's convention, also for d/dy_true), and 0 log 0 = 0 in the cross term
    # with finite gradients: log reads 1 where both are 0 (the double where).
    entropy = safe_where(y_true != 0, lambda t: t * jnp.log(t), y_true, 1.0, 0.0)
    cross = y_true * jnp.log(_safe_rate(y_true, y_pred))
    return jnp.sum(entropy - cross + y_pred - y_true, axis=-1)


def _generalized_kl_grad(y_true, y_pred):
    return 1.0 - y_true / _safe_rate(y_true, y_pred)


def _measures_with_zeros(shape):
    def draw(rng):
        y_true = rng.uniform(0.0, 2.0, shape)
        y_true[rng.uniform(size=shape) < 0.3] = 0.0
        return y_true, rng.uniform(0.1, 2.0, shape)

    return draw


@register(
    formula=_generalized_kl,
    local_grad=_generalized_kl_grad,
    gradient="reference",
    inputs={"y_true": NON_NEGATIVE, "y_pred": POSITIVE},
    examples=(Example(), Example(shape=(2, 3, 4), draw=_measures_with_zeros((2, 3, 4)), label="zeros")),
    aliases=("convex_kl_divergence",),
    peers=(
        Peer(
            "optax",
            lambda t, p: optax.losses.generalized_kl_divergence(jnp.log(p), t),
            "generalized_kl_divergence(log(p), t)",
        ),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def generalized_kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Generalized Kullback-Leibler divergence between unnormalized measures, summed over the last axis.

    optax's ``generalized_kl_divergence`` (formerly ``convex_kl_divergence``) of
    ``log(y_pred)``: the Bregman divergence of ``x log x - x``, equal to the KL
    divergence when both sum to 1.

    .. math:: \ell = \sum_{-1} \Big(y \log\frac{y}{\hat y} - y + \hat y\Big),\quad 0 \log 0 = 0

    Args:
      y_true: non-negative target measure, shape ``(..., d)``.
      y_pred: positive predicted measure (not log), same shape.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``1 - y_true / y_pred`` (``1`` where ``y_true = 0``, finite even at ``y_pred = 0``).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.generalized_kl_divergence(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.5]]))
      Array(0.5, dtype=float32)
    """
    ...
