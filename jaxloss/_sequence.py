"""Sequence losses: ctc (Connectionist Temporal Classification)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction, check_bool, check_int, is_concrete, register, shape_error

# log(0) stand-in: exp() of it (and of twice it) underflows to exactly 0, and sums of a
# few of them stay far from float32's overflow, so no inf - inf can make a NaN.
_NEG = -1e30


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


def _shift_right(x: jax.Array, k: int, fill: Any) -> jax.Array:
    """``out[..., s] = x[..., s - k]``, ``fill`` where ``s < k``."""
    pad = jnp.full((*x.shape[:-1], k), fill, x.dtype)
    return jnp.concatenate([pad, x[..., :-k]], axis=-1)


def _shift_left(x: jax.Array, k: int, fill: Any) -> jax.Array:
    """``out[..., s] = x[..., s + k]``, ``fill`` past the end."""
    pad = jnp.full((*x.shape[:-1], k), fill, x.dtype)
    return jnp.concatenate([x[..., k:], pad], axis=-1)


def _lse3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """``log(e^a + e^b + e^c)``; the shift is a constant, so its gradient is exact."""
    m = jax.lax.stop_gradient(jnp.maximum(jnp.maximum(a, b), c))
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _lattice(y_true, y_pred, blank_index, label_lengths, logit_lengths):
    """Everything the forward and backward recursions share.

    The extended label of a sample is ``blank, l_1, blank, l_2, ..., l_L, blank``
    (``S = 2 N + 1`` states for ``N = max_len``); even states are blanks, odd
    states emit a label. States past ``2 L`` are never read.
    """
    batch, max_len = y_true.shape
    _, time, classes = y_pred.shape
    labels = y_true.astype(jnp.int32)
    positions = jnp.arange(max_len)[None, :]
    if label_lengths is None:
        # Keras: the label length is the number of non-blank (non-padding) entries.
        label_len = jnp.sum(labels != blank_index, axis=1, dtype=jnp.int32)
    else:
        label_len = jnp.clip(jnp.asarray(label_lengths).astype(jnp.int32), 0, max_len)
    if logit_lengths is None:
        logit_len = jnp.full((batch,), time, jnp.int32)
    else:
        logit_len = jnp.clip(jnp.asarray(logit_lengths).astype(jnp.int32), 0, time)
    in_label = positions < label_len[:, None]
    # Padding becomes the blank, so that no index falls outside the classes.
    labels = jnp.where(in_label, jnp.clip(labels, 0, classes - 1), blank_index)

    blanks = jnp.full_like(labels, blank_index)
    ext = jnp.concatenate([jnp.stack([blanks, labels], axis=-1).reshape(batch, 2 * max_len), blanks[:, :1]], axis=1)
    # The skip s-2 -> s (over a blank) is allowed into a label that differs from the previous one.
    differs = jnp.concatenate([jnp.zeros((batch, 1), bool), labels[:, 1:] != labels[:, :-1]], axis=1)
    no_skip = jnp.zeros_like(differs)
    skip = jnp.concatenate([jnp.stack([no_skip, differs], axis=-1).reshape(batch, 2 * max_len), no_skip[:, :1]], axis=1)
    # A repeated label needs a blank frame between its two copies.
    repeats = jnp.sum(in_label & (positions >= 1) & ~differs, axis=1, dtype=jnp.int32)
    feasible = logit_len >= label_len + repeats

    states = jnp.arange(2 * max_len + 1)[None, :]
    final = (states == 2 * label_len[:, None]) | (states == 2 * label_len[:, None] - 1)
    active = jnp.arange(time)[None, :] < logit_len[:, None]  # (batch, time)

    log_probs = jax.nn.log_softmax(y_pred, axis=-1)
    emit = jnp.take_along_axis(log_probs, ext[:, None, :], axis=2, mode="clip")  # (batch, time, S)
    return ext, skip, final, active, feasible, log_probs, emit


def _rescale(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x - m, m`` with ``m`` the (constant) maximum over the states.

    Rescaling each frame keeps the log values near 0, so float32 rounding stays at the
    level of the ratios between states, not of the total log-likelihood. The shift is a
    constant, so the derivatives of the rescaled recursion are exact.
    """
    m = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    return x - m, m[..., 0]


def _forward(emit, skip, active):
    """``log alpha_t(s)``, up to a per-frame shift: the prefixes in state ``s`` after frame ``t``.

    Frames past a sample's length leave its ``alpha`` unchanged.
    Returns the last rescaled ``alpha`` ``(batch, S)``, the sum of the shifts ``(batch,)``
    and every rescaled ``alpha`` ``(time, batch, S)``.
    """
    batch, _, n_states = emit.shape
    # Before the first frame: the start, which may enter state 0 or state 1.
    start = jnp.broadcast_to(jnp.where(jnp.arange(n_states) == 0, 0.0, _NEG), (batch, n_states)).astype(emit.dtype)

    def step(carry, frame):
        prev, offset = carry
        emit_t, on = frame
        from_skip = jnp.where(skip, _shift_right(prev, 2, _NEG), _NEG)
        alpha, shift = _rescale(emit_t + _lse3(prev, _shift_right(prev, 1, _NEG), from_skip))
        alpha = jnp.where(on[:, None], alpha, prev)
        offset = offset + jnp.where(on, shift, 0.0)
        return (alpha, offset), alpha

    (last, offset), alphas = jax.lax.scan(
        step, (start, jnp.zeros((batch,), emit.dtype)), (jnp.swapaxes(emit, 0, 1), active.T)
    )
    return last, offset, alphas


def _backward(emit, skip, final, active):
    """``log beta_t(s)``: probability of the frames after ``t`` given state ``s`` at ``t``.

    ``beta`` is 1 on the final states at a sample's last frame and after it; each
    frame is rescaled (only the ratios between states are needed).
    Returns every ``beta`` ``(time, batch, S)``.
    """
    end = jnp.where(final, 0.0, _NEG).astype(emit.dtype)
    # Frame t reads the emissions of frame t + 1 into states s, s + 1 and s + 2 (the
    # skip where allowed); shifting them outside the loop keeps the loop body small.
    emit_next = jnp.swapaxes(_shift_left(jnp.swapaxes(emit, 1, 2), 1, _NEG), 1, 2)
    emit_next_1 = _shift_left(emit_next, 1, _NEG)
    emit_next_2 = jnp.where(_shift_left(skip, 2, False)[:, None, :], _shift_left(emit_next, 2, _NEG), _NEG)
    on_next = _shift_left(active, 1, False)

    def step(nxt, frame):
        e0, e1, e2, on = frame
        beta, _ = _rescale(_lse3(e0 + nxt, e1 + _shift_left(nxt, 1, _NEG), e2 + _shift_left(nxt, 2, _NEG)))
        beta = jnp.where(on[:, None], beta, end)
        return beta, beta

    xs = tuple(jnp.swapaxes(x, 0, 1) for x in (emit_next, emit_next_1, emit_next_2)) + (on_next.T,)
    _, betas = jax.lax.scan(step, end, xs, reverse=True)
    return betas


def _log_likelihood(last_alpha, final):
    return jax.nn.logsumexp(jnp.where(final, last_alpha, _NEG), axis=-1)


# --------------------------------------------------------------------------
# ctc
# --------------------------------------------------------------------------


def _ctc(y_true, y_pred, *, blank_index, label_lengths, logit_lengths, zero_infinity):
    _, skip, final, active, feasible, _, emit = _lattice(y_true, y_pred, blank_index, label_lengths, logit_lengths)
    last, offset, _ = _forward(emit, skip, active)
    nll = -(offset + _log_likelihood(last, final))
    return jnp.where(feasible, nll, 0.0 if zero_infinity else jnp.inf)


def _ctc_grad(y_true, y_pred, *, blank_index, label_lengths, logit_lengths, zero_infinity):
    del zero_infinity  # an infeasible sample has a zero gradient either way
    ext, skip, final, active, feasible, log_probs, emit = _lattice(
        y_true, y_pred, blank_index, label_lengths, logit_lengths
    )
    _, _, alphas = _forward(emit, skip, active)
    betas = _backward(emit, skip, final, active)
    # Posterior occupancy of each state: gamma_t(s) = alpha_t(s) beta_t(s) / p, where
    # p = sum_s alpha_t(s) beta_t(s) at every frame t: a softmax over the states.
    keep = (active & feasible[:, None])[:, :, None]
    gamma = jnp.where(keep, jax.nn.softmax(jnp.swapaxes(alphas + betas, 0, 1), axis=-1), 0.0)
    # Sum the states onto their classes (a batched matmul: faster than a scatter-add).
    one_hot = jax.nn.one_hot(ext, y_pred.shape[-1], dtype=gamma.dtype)
    occupancy = jnp.einsum("bts,bsk->btk", gamma, one_hot, precision=jax.lax.Precision.HIGHEST)
    return jnp.where(keep, jnp.exp(log_probs) - occupancy, 0.0)


def _ctc_axes(ndim, opts):
    return (1, 2)


def _check_lengths(name: str, value: Any) -> None:
    if value is None or not is_concrete(value):
        return
    try:
        arr = np.asarray(value)
        ok = arr.dtype != np.bool_ and np.all(np.asarray(arr, np.float64) >= 0) and np.all(np.mod(arr, 1) == 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"ctc: {name} must hold non-negative integers; received {name}={value!r}.")


def _ctc_validate(opts):
    check_int("ctc", "blank_index", opts["blank_index"])
    if opts["blank_index"] < 0:
        raise ValueError(f"ctc: blank_index must be non-negative; received blank_index={opts['blank_index']!r}.")
    check_bool("ctc", "zero_infinity", opts["zero_infinity"])
    _check_lengths("label_lengths", opts["label_lengths"])
    _check_lengths("logit_lengths", opts["logit_lengths"])


def _ctc_prepare(spec, y_true, y_pred, opts):
    if y_true.ndim != 2 or y_pred.ndim != 3 or y_true.shape[0] != y_pred.shape[0]:
        raise shape_error(
            spec.name,
            "y_true must be (batch, max_len) integer labels and y_pred (batch, time, classes) logits, "
            "with the same batch",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    batch, classes = y_true.shape[0], y_pred.shape[2]
    if opts["blank_index"] >= classes:
        raise ValueError(
            f"ctc: blank_index={opts['blank_index']} is out of range for {classes} classes; "
            f"received y_pred.shape={y_pred.shape}."
        )
    for name in ("label_lengths", "logit_lengths"):
        value = opts[name]
        if value is None:
            continue
        if jnp.shape(value) != (batch,):
            raise ValueError(
                f"ctc: {name} must have shape (batch,) = ({batch},); received {name}.shape={jnp.shape(value)}."
            )
    return y_true, y_pred


def _check_length_bounds(y_true: ArrayLike, y_pred: ArrayLike, label_lengths: Any, logit_lengths: Any) -> None:
    """Concrete lengths may not exceed ``max_len`` and ``time`` (before tracing, where shapes are known)."""
    shape_true, shape_pred = np.shape(y_true), np.shape(y_pred)
    if len(shape_true) != 2 or len(shape_pred) != 3:
        return  # the shape check in prepare names both shapes
    for name, value, bound in (
        ("label_lengths", label_lengths, shape_true[1]),
        ("logit_lengths", logit_lengths, shape_pred[1]),
    ):
        if value is not None and is_concrete(value) and np.any(np.asarray(value) > bound):
            raise ValueError(f"ctc: {name} must be at most {bound}; received {name}={value!r}.")


CTC = LossSpec(
    "ctc",
    "CTC",
    _ctc,
    {"blank_index": 0, "label_lengths": None, "logit_lengths": None, "zero_infinity": False},
    static=frozenset({"blank_index", "zero_infinity"}),
    local_grad=_ctc_grad,
    reduced_axes=_ctc_axes,
    validate=_ctc_validate,
    prepare=_ctc_prepare,
    integer_labels=True,
)


@register(CTC)
def ctc(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    blank_index: int = 0,
    label_lengths: ArrayLike | None = None,
    logit_lengths: ArrayLike | None = None,
    zero_infinity: bool = False,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Connectionist Temporal Classification loss: ``-log p(label | logits)`` per sample.

    .. math:: \ell_b = -\log \sum_{\pi \in \mathcal{B}^{-1}(l_b)} \prod_{t < T_b}
       \operatorname{softmax}(\hat y_{b,t})_{\pi_t}

    summed over every alignment :math:`\pi` (a path through ``blank, l_1, blank, ...,
    l_L, blank`` that may skip a blank between two different labels) that collapses
    to the label. Computed in log space by the forward recursion (``lax.scan`` over
    time) on ``log_softmax(y_pred)``.

    Labels follow Keras: ``y_true`` is right-padded with the blank, a sample's label
    length is its number of non-blank entries, and the label is that many leading
    entries. With ``blank_index != 0`` the entries equal to ``blank_index`` are the
    padding; ``label_lengths`` overrides the count (entries past it are ignored,
    whatever their value), as optax's ``label_paddings`` do.

    Args:
      y_true: integer labels, shape ``(batch, max_len)``, values in ``[0, classes)``.
      y_pred: logits (not normalized), shape ``(batch, time, classes)``.
      blank_index: the class that is the blank (and the label padding); static.
      label_lengths: optional ``(batch,)`` integers in ``[0, max_len]``: each label's
        length (may be traced).
      logit_lengths: optional ``(batch,)`` integers in ``[0, time]``: each sample's number
        of frames; later frames are ignored, with a zero gradient (may be traced).
      zero_infinity: an infeasible sample (a label that needs more frames than it has,
        a repeated label counting twice) has loss ``+inf``, as in PyTorch (Keras and
        optax return a large finite number, about ``1e5``, from their ``log(0) ~ -1e5``);
        with ``zero_infinity=True`` it has loss 0. Either way its gradient is 0 (and a
        zero ``sample_weight`` on an infinite loss gives NaN, ``0 * inf``: use
        ``zero_infinity=True`` to drop such samples). Static.
      sample_weight: weight of shape ``(batch,)``.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(batch,)`` for ``reduction="none"``.

    Gradient: ``softmax(y_pred)_{t,k} - sum_{s: l'_s = k} gamma_t(s)`` per frame, with
    ``gamma_t(s) = alpha_t(s) beta_t(s) / p`` the posterior occupancy of the extended
    label's state ``s`` from the forward-backward recursion (closed form, rescaled per
    frame for float32 accuracy); 0 on frames past ``logit_lengths`` and for infeasible
    samples. ``jax.grad`` differentiates the forward scan itself: on CPU that measured
    faster than using the closed form as a custom JVP rule.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.ctc(jnp.array([[1, 2, 0]]), jnp.zeros((1, 3, 3)))  # 5 of 27 paths
      Array(1.686399, dtype=float32)
    """
    _check_length_bounds(y_true, y_pred, label_lengths, logit_lengths)
    return CTC.evaluate(
        y_true,
        y_pred,
        sample_weight,
        reduction,
        blank_index=blank_index,
        label_lengths=label_lengths,
        logit_lengths=logit_lengths,
        zero_infinity=zero_infinity,
    )
