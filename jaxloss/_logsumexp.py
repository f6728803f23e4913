"""Log-sum-exp kernels shared by the crossentropies (and their two-class form, the sigmoid).

Crossentropy from logits in its log-sum-exp form (no ``where``, no soft cap):

  value  = T log s + sum t (m - z) + z_loss lse^2,   s = sum exp(z - m), lse = m + log s, T = sum t
  d / dz = p (T + 2 z_loss lse) - t,                 p = exp(z - lse)

It never stores log-probabilities. On sparse labels ``sum t z`` is one gather per row and
``t`` one scatter into the gradient, so nothing of the logits' size exists besides the
gradient. Where the work lands depends on the backend: XLA:CPU is bound by ``exp``, so
there ``exp(z - m)`` is computed once and becomes the gradient's buffer; GPUs and TPUs are
bound by memory traffic, so there it is recomputed and the logits are read three times
(max, sum, gradient) and the gradient written once. ``jax.lax.platform_dependent`` picks.

The general form (:func:`logits`) handles a ``where`` mask over classes and the logit
soft cap, and keeps the log-probabilities for the dense paths.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._core import is_static_zero


def as_dtype(x: Any, like: jax.Array) -> jax.Array:
    """A numeric option in the compute dtype (never upcasts, never a float64 constant)."""
    return jnp.asarray(x, like.dtype)


# --------------------------------------------------------------------------
# Two classes: the sigmoid
# --------------------------------------------------------------------------


def sigmoid_parts(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(sigmoid(z), sigmoid(-z), log1p(exp(-|z|)))`` from one ``exp(-|z|)``: exact in both tails."""
    e = jnp.exp(-jnp.abs(z))
    r = 1.0 / (1.0 + e)
    er = e * r
    up = z >= 0
    return jnp.where(up, r, er), jnp.where(up, er, r), jnp.log1p(e)


def bce_from_logits(t, z, log1p_e, positive):
    """``-positive log sigmoid(z) - (1 - t) log sigmoid(-z)`` from ``log1p_e = log1p(exp(-|z|))``.

    ``-log sigmoid(z) = log1p_e - min(z, 0)`` and ``-log sigmoid(-z) = log1p_e + max(z, 0)``:
    one exp and one log1p for both terms. Summed in this order, a confident right answer
    keeps its tiny loss (``t = 1, z = 20``: exactly ``log1p_e``) instead of losing it to
    ``softplus(z) - t z``'s cancellation; and no negated copy of ``z`` is made.
    """
    low, high = jnp.minimum(z, 0.0), jnp.maximum(z, 0.0)
    if positive is t:
        return (high - t * high - t * low) + log1p_e
    return positive * (log1p_e - low) + (1.0 - t) * (log1p_e + high)


def sigmoid_minus_target(t, p, q):
    """``sigmoid(z) - t`` as ``(1 - t) p - t q``: exact where ``sigmoid(z)`` rounds to ``t``
    (a confident logit with a hard label), where the subtraction would give 0."""
    return (1.0 - t) * p - t * q


# --------------------------------------------------------------------------
# The general form: where masks, soft cap, log-probabilities
# --------------------------------------------------------------------------


class Logits(NamedTuple):
    """Logits after the soft cap, with the class mask, log-probabilities and log-sum-exp."""

    tanh: jax.Array | None  # tanh(y_pred / cap) under the soft cap, else None
    valid: jax.Array | None  # the classes that take part (``where``), None for all
    any_valid: jax.Array | None  # rows with at least one class left (keepdims), None without ``where``
    log_q: jax.Array  # log-probabilities, -inf on masked classes
    lse: jax.Array  # log-sum-exp over the unmasked classes (keepdims)


def logits(y_pred: jax.Array, ax: int, where: Any, logit_soft_cap: Any) -> Logits:
    z, th = y_pred, None
    if logit_soft_cap is not None:
        cap = as_dtype(logit_soft_cap, y_pred)
        th = jnp.tanh(y_pred / cap)
        z = cap * th
    valid = any_valid = live = None
    if where is not None:
        valid = jnp.broadcast_to(jnp.asarray(where).astype(bool), z.shape)
        any_valid = jnp.any(valid, axis=ax, keepdims=True)
        live = valid | ~any_valid  # a row with no class left is computed unmasked, then zeroed
    # jax.nn.log_softmax's steps, keeping its log-sum-exp for the z-loss.
    z_max = jax.lax.stop_gradient(jnp.max(z, ax, where=live, initial=-jnp.inf, keepdims=True))
    shifted = (z if live is None else jnp.where(live, z, -jnp.inf)) - z_max
    shifted_lse = jnp.log(jnp.sum(jnp.exp(shifted), ax, where=live, keepdims=True))
    log_q = shifted - shifted_lse
    if valid is not None:
        log_q = jnp.where(valid, log_q, -jnp.inf)
    return Logits(th, valid, any_valid, log_q, z_max + shifted_lse)


def class_count(lg: Logits | None, y_pred: jax.Array, ax: int) -> Any:
    """``C`` of the label smoothing: the number of unmasked classes (the axis's size without ``where``)."""
    if lg is None or lg.valid is None:
        return float(y_pred.shape[ax])
    return jnp.maximum(jnp.sum(lg.valid, axis=ax, keepdims=True), 1).astype(y_pred.dtype)


def z_term(lg: Logits, z_loss: Any, *, slope: bool) -> jax.Array:
    """``z_loss * lse**2`` (or its slope ``2 z_loss lse``), keepdims; 0 when ``z_loss == 0`` or no class is left."""
    zl = as_dtype(z_loss, lg.lse)
    keep = zl != 0 if lg.any_valid is None else (zl != 0) & lg.any_valid
    return jnp.where(keep, 2.0 * zl * lg.lse if slope else zl * jnp.square(lg.lse), 0.0)


def logits_grad(t: jax.Array, lg: Logits, ax: int, z_loss: Any) -> jax.Array:
    """d/dz of ``-sum t log q + z_loss lse**2``: ``q (sum t + 2 z_loss lse) - t``, through the soft cap."""
    q = jnp.exp(lg.log_q)
    grad = q * (jnp.sum(t, axis=ax, keepdims=True) + z_term(lg, z_loss, slope=True)) - t
    if lg.tanh is not None:
        grad = grad * (1.0 - jnp.square(lg.tanh))
    return grad


def masked_log_probs(t: jax.Array, log_probs: jax.Array) -> jax.Array:
    """``t * log_probs`` with 0 where ``t == 0`` (a ``-inf`` logit of a class with no target mass)."""
    return t * jnp.where(t != 0, log_probs, 0.0)


# --------------------------------------------------------------------------
# The log-sum-exp form (logits only, no where, no soft cap)
# --------------------------------------------------------------------------


def fast_logits(from_logits: bool, where: Any, logit_soft_cap: Any) -> bool:
    return from_logits and where is None and logit_soft_cap is None


def row_max(z: jax.Array, ax: int) -> jax.Array:
    """The shift of the log-sum-exp: the row max (a row with an infinite logit is NaN either way)."""
    return jax.lax.stop_gradient(jnp.max(z, ax, keepdims=True))


def log_sum_exp(z: jax.Array, m: jax.Array, ax: int) -> jax.Array:
    return jnp.log(jnp.sum(jnp.exp(z - m), ax, keepdims=True))


def _scaled_softmax(z, m, ax, scale, *, keep_exp):
    """``(log s, p * scale)`` with ``p = softmax(z)`` and ``scale`` a per-row factor (keepdims)."""
    if keep_exp:
        e = jnp.exp(z - m)
        s = jnp.sum(e, ax, keepdims=True)
        return jnp.log(s), e * (scale / s)
    log_s = log_sum_exp(z, m, ax)
    return log_s, jnp.exp(z - (m + log_s)) * scale


def softmax_slope(z, m, ax, total, z_loss, *, keep_exp):
    """``(log s, p (T + 2 z_loss lse))``: the log-sum-exp and the softmax part of the slope."""
    if is_static_zero(z_loss):
        return _scaled_softmax(z, m, ax, total, keep_exp=keep_exp)
    # The row factor needs lse before the probabilities: the sum is a pass of its own.
    log_s = log_sum_exp(z, m, ax)
    return log_s, jnp.exp(z - (m + log_s)) * (total + z_loss_parts(z_loss, m + log_s)[1])


def z_loss_parts(z_loss: Any, lse: jax.Array) -> tuple[Any, Any]:
    """``(z_loss lse^2, 2 z_loss lse)``, both 0 (left out of the program) when z_loss is a Python 0."""
    if is_static_zero(z_loss):
        return 0.0, 0.0
    zl = as_dtype(z_loss, lse)
    return zl * jnp.square(lse), 2.0 * zl * lse


def token_loss(lse: jax.Array, z_label: jax.Array, z_mean: Any, label_smoothing: Any, z_loss: Any) -> jax.Array:
    """Sparse crossentropy from one token's log-sum-exp, its label logit and its mean logit:
    ``lse - (1 - a) z_y - a mean(z) + z_loss lse^2`` (``z_mean`` unused when ``a`` is a Python 0)."""
    if is_static_zero(label_smoothing):
        value = lse - z_label
    else:
        value = lse - (1.0 - label_smoothing) * z_label - label_smoothing * z_mean
    return value + z_loss_parts(z_loss, lse)[0]


def by_backend(fn, *args):
    """``fn(*args, keep_exp=True)`` on CPU, ``keep_exp=False`` on GPU and TPU."""
    return jax.lax.platform_dependent(
        *args, cpu=functools.partial(fn, keep_exp=True), default=functools.partial(fn, keep_exp=False)
    )


def _sparse_logits_parts(index, z, ax, label_smoothing):
    """Per-row target masses ``h = 1 - a`` on the label, ``T = h + a`` in all, and the label index."""
    idx = jnp.expand_dims(index, ax)
    a = None if is_static_zero(label_smoothing) else as_dtype(label_smoothing, z)
    h = jnp.ones(idx.shape, z.dtype) if a is None else jnp.broadcast_to(1.0 - a, idx.shape).astype(z.dtype)
    return idx, h, (h if a is None else h + a), a


def _sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax):
    value = total * log_s + h * (m - jnp.take_along_axis(z, idx, ax, mode="clip"))
    if a is not None:
        value = value + a * (m - jnp.mean(z, ax, keepdims=True))
    return value + z_loss_parts(z_loss, m + log_s)[0]


def sparse_logits(index, z, dz, *, ax, label_smoothing, z_loss, keep_exp=False):
    """Sparse crossentropy from logits at label ``index`` (valid indices), and its tangent along
    ``dz`` (``dz=None``: values only); squeezed over the class axis ``ax``."""
    idx, h, total, a = _sparse_logits_parts(index, z, ax, label_smoothing)
    m = row_max(z, ax)
    if dz is None:
        log_s = log_sum_exp(z, m, ax)
        return jnp.squeeze(_sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax), ax)
    log_s, pc = softmax_slope(z, m, ax, total, z_loss, keep_exp=keep_exp)
    value = _sparse_logits_value(z, m, log_s, idx, h, total, a, z_loss, ax)
    if keep_exp:
        # The label term as a gather of the tangent: its transpose is a scatter into the gradient.
        tangent = jnp.sum(pc * dz, ax, keepdims=True) - h * jnp.take_along_axis(dz, idx, ax, mode="clip")
        if a is not None:
            tangent = tangent - a / z.shape[ax] * jnp.sum(dz, ax, keepdims=True)
    else:
        hot = jnp.where(jax.lax.broadcasted_iota(jnp.int32, z.shape, ax) == idx, h, 0.0)
        g = pc - hot if a is None else pc - hot - a / z.shape[ax]
        tangent = jnp.sum(g * dz, ax, keepdims=True)
    return jnp.squeeze(value, ax), jnp.squeeze(tangent, ax)


def dense_logits(t, z, dz, *, ax, z_loss, keep_exp=False):
    """Categorical crossentropy from logits on targets ``t``, and its tangent along ``dz``."""
    total = jnp.sum(t, ax, keepdims=True)
    m = row_max(z, ax)
    # sum t (m - z) as T m - sum t z: exact for one-hot targets, and XLA:CPU fuses it into one
    # pass. A -inf logit is read as the lowest finite number, so a class with no target mass
    # contributes 0, not 0 * inf = NaN; target mass on a -inf logit makes the loss +inf.
    finite = jnp.maximum(z, jnp.finfo(z.dtype).min)
    cross = total * m - jnp.sum(t * finite, ax, keepdims=True)
    impossible = jnp.any((t > 0) & (z == -jnp.inf), ax, keepdims=True)
    cross = jnp.where(impossible, jnp.inf, cross)
    if dz is None:
        log_s = log_sum_exp(z, m, ax)
        return jnp.squeeze(total * log_s + cross + z_loss_parts(z_loss, m + log_s)[0], ax)
    log_s, pc = softmax_slope(z, m, ax, total, z_loss, keep_exp=keep_exp)
    value = total * log_s + cross + z_loss_parts(z_loss, m + log_s)[0]
    return jnp.squeeze(value, ax), jnp.sum((pc - t) * dz, ax)
