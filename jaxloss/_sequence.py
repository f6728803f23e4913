"""Sequence losses: ctc (Connectionist Temporal Classification).

The recursions work in log space with ``-inf`` as log 0: an impossible state is
exactly impossible whatever the logits (a finite stand-in such as ``-1e30`` would
tie with real log-probabilities of that size). Every log-sum-exp guards the case
where all its terms are ``-inf``, so no ``inf - inf`` makes a NaN, in values or in
either gradient.
"""

from __future__ import annotations

from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    ArrayOption,
    Bench,
    Example,
    Flag,
    Peer,
    Reduction,
    SampleWeight,
    Static,
    class_labels,
    nan_where,
    register,
    shape_error,
)
from ._hinge import poison
from ._inputs import CTC_LABELS, LENGTHS, LOGITS

_NEG = -jnp.inf  # log 0


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


def _finite_shift(m: jax.Array) -> jax.Array:
    """A constant shift for a log-sum-exp: the maximum, or 0 where every term is log 0."""
    m = jax.lax.stop_gradient(m)
    return jnp.where(m == _NEG, 0.0, m)


def _log_of_sum(m: jax.Array, total: jax.Array) -> jax.Array:
    """``m + log(total)``, ``-inf`` where ``total`` is 0 (every term log 0), with a zero gradient
    there (the double ``where``); a NaN total stays NaN."""
    some = total != 0
    return jnp.where(some, m + jnp.log(jnp.where(some, total, 1.0)), _NEG)


def _lse3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """``log(e^a + e^b + e^c)``; the shift is a constant, so its gradient is exact."""
    m = _finite_shift(jnp.maximum(jnp.maximum(a, b), c))
    return _log_of_sum(m, jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _lengths(value: Any, bound: int, batch: int) -> tuple[jax.Array, jax.Array]:
    """Per-sample lengths clipped to ``[0, bound]`` for indexing, and where they lie outside it
    (or are no integers): those samples are NaN."""
    raw = jnp.asarray(value)
    bad = (raw < 0) | (raw > bound)
    if jnp.issubdtype(raw.dtype, jnp.floating):
        bad = bad | (raw != jnp.floor(raw))
    clipped = jnp.clip(jnp.where(bad, 0, raw), 0, bound).astype(jnp.int32)
    return jnp.broadcast_to(clipped, (batch,)), bad


def _lattice(y_true, y_pred, blank_index, label_lengths, logit_lengths):
    """Everything the forward and backward recursions share.

    The extended label of a sample is ``blank, l_1, blank, l_2, ..., l_L, blank``
    (``S = 2 N + 1`` states for ``N = max_len``); even states are blanks, odd
    states emit a label. States past ``2 L`` are never read. ``bad`` marks the
    samples whose label names no class (an entry inside the label out of range, a
    fraction or NaN) or whose lengths are out of range: their loss is NaN.
    """
    batch, max_len = y_true.shape
    _, time, classes = y_pred.shape
    positions = jnp.arange(max_len)[None, :]
    bad = jnp.zeros((batch,), bool)
    if label_lengths is None:
        # Keras: the label length is the number of non-blank (non-padding) entries.
        label_len = jnp.sum(y_true != blank_index, axis=1, dtype=jnp.int32)
    else:
        label_len, wrong = _lengths(label_lengths, max_len, batch)
        bad = bad | wrong
    if logit_lengths is None:
        logit_len = jnp.full((batch,), time, jnp.int32)
    else:
        logit_len, wrong = _lengths(logit_lengths, time, batch)
        bad = bad | wrong
    in_label = positions < label_len[:, None]
    named = class_labels(y_true, classes)
    bad = bad | jnp.any(in_label & ~named.named, axis=1)
    # Padding becomes the blank, so that no index falls outside the classes.
    labels = jnp.where(in_label, named.index, blank_index)

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
    return ext, skip, final, active, feasible, log_probs, emit, bad


def _rescale(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x - m, m`` with ``m`` the (constant) maximum over the states (0 if all are log 0).

    Rescaling each frame keeps the log values near 0, so float32 rounding stays at the
    level of the ratios between states, not of the total log-likelihood. The shift is a
    constant, so the derivatives of the rescaled recursion are exact.
    """
    m = _finite_shift(jnp.max(x, axis=-1, keepdims=True))
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

    xs = (*(jnp.swapaxes(x, 0, 1) for x in (emit_next, emit_next_1, emit_next_2)), on_next.T)
    _, betas = jax.lax.scan(step, end, xs, reverse=True)
    return betas


def _log_likelihood(last_alpha, final):
    x = jnp.where(final, last_alpha, _NEG)
    m = _finite_shift(jnp.max(x, axis=-1, keepdims=True))
    return _log_of_sum(m[..., 0], jnp.sum(jnp.exp(x - m), axis=-1))


# --------------------------------------------------------------------------
# ctc
# --------------------------------------------------------------------------


def _ctc(y_true, y_pred, *, blank_index, label_lengths, logit_lengths, zero_infinity):
    *_, skip, final, active, feasible, _, emit, bad = _lattice(
        y_true, y_pred, blank_index, label_lengths, logit_lengths
    )
    last, offset, _ = _forward(emit, skip, active)
    nll = -(offset + _log_likelihood(last, final))
    return poison(bad, jnp.where(feasible, nll, 0.0 if zero_infinity else jnp.inf))


def _ctc_grad(y_true, y_pred, *, blank_index, label_lengths, logit_lengths, zero_infinity):
    del zero_infinity  # an infeasible sample has a zero gradient either way
    ext, skip, final, active, feasible, log_probs, emit, bad = _lattice(
        y_true, y_pred, blank_index, label_lengths, logit_lengths
    )
    _, _, alphas = _forward(emit, skip, active)
    betas = _backward(emit, skip, final, active)
    # Posterior occupancy of each state: gamma_t(s) = alpha_t(s) beta_t(s) / p, where
    # p = sum_s alpha_t(s) beta_t(s) at every frame t: a softmax over the states (frames of
    # infeasible samples, where every state may be log 0, are selected away).
    keep = (active & feasible[:, None])[:, :, None]
    gamma = jnp.where(keep, jax.nn.softmax(jnp.swapaxes(alphas + betas, 0, 1), axis=-1), 0.0)
    # Sum the states onto their classes (a batched matmul: faster than a scatter-add).
    one_hot = jax.nn.one_hot(ext, y_pred.shape[-1], dtype=gamma.dtype)
    occupancy = jnp.einsum("bts,bsk->btk", gamma, one_hot, precision=jax.lax.Precision.HIGHEST)
    return nan_where(bad, jnp.where(keep, jnp.exp(log_probs) - occupancy, 0.0))


def _ctc_axes(ndim, opts):
    return (1, 2)


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
        if value is not None and jnp.shape(value) != (batch,):
            raise ValueError(
                f"ctc: {name} must have shape (batch,) = ({batch},); received {name}.shape={jnp.shape(value)}."
            )
    return y_true, y_pred


# --------------------------------------------------------------------------
# Examples: hand-written labels (lengths, repeats, padding), every one feasible
# --------------------------------------------------------------------------


def _random_labels(rng, batch, max_len, classes, time, blank=0):
    """Right-padded labels of random lengths (one of them empty, one full), with repeats."""
    non_blank = np.array([k for k in range(classes) if k != blank])
    labels = np.full((batch, max_len), blank, np.int32)
    for b in range(batch):
        length = [0, max_len][b] if b < 2 else int(rng.integers(0, max_len + 1))
        row = rng.choice(non_blank, length)
        if length >= 2:
            row[1] = row[0]  # a repeat: needs a blank frame between the copies
        while length + int(np.sum(row[1:] == row[:-1])) > time:
            row = row[:-1]
            length -= 1
        labels[b, :length] = row
    return labels


def _random(batch, time, classes, max_len, blank=0, scale=1.0):
    def draw(rng):
        labels = _random_labels(rng, batch, max_len, classes, time, blank)
        return labels, scale * rng.normal(size=(batch, time, classes))

    return draw


def _fixed(labels, time, classes):
    def draw(rng):
        labels_ = np.asarray(labels, np.int32)
        return labels_, rng.normal(size=(labels_.shape[0], time, classes))

    return draw


def _full_labels(batch, time, classes, max_len, blank=0):
    # Labels of every length, with no padding value: label_lengths says where they end.
    def draw(rng):
        non_blank = np.array([k for k in range(classes) if k != blank])
        return rng.choice(non_blank, (batch, max_len)).astype(np.int32), rng.normal(size=(batch, time, classes))

    return draw


def _lengths_labels(lengths, time, classes, blank):
    """Labels that avoid ``blank`` within each row's length, arbitrary classes past it."""

    def draw(rng):
        labels = rng.integers(0, classes - 1, (len(lengths), max(lengths)))
        labels[labels >= blank] += 1  # skip the blank
        past = np.arange(labels.shape[1])[None, :] >= np.asarray(lengths)[:, None]
        labels[past] = rng.integers(0, classes, int(past.sum()))
        return labels.astype(np.int32), rng.normal(0, 1, (len(lengths), time, classes))

    return draw


# [1, 1, 2] needs 4 frames (the repeat needs a blank between), [2, 3, 4] needs 3,
# [3, 3, 3] needs 5: with time == 5 the last one has exactly its minimal length.
_TIGHT = [[1, 1, 2], [2, 3, 4], [3, 3, 3], [0, 0, 0]]
_LABEL_LENGTHS = np.array([6, 3, 0, 5])
_LOGIT_LENGTHS = np.array([20, 9, 14, 16])


def _optax_ctc(t, p, *, blank_index, label_lengths, logit_lengths, **_):
    batch, time = p.shape[:2]
    if label_lengths is None:
        label_lengths = jnp.sum(t != blank_index, axis=1)
    if logit_lengths is None:
        logit_lengths = jnp.full((batch,), time)
    label_paddings = (jnp.arange(t.shape[1])[None, :] >= jnp.asarray(label_lengths)[:, None]).astype(p.dtype)
    logit_paddings = (jnp.arange(time)[None, :] >= jnp.asarray(logit_lengths)[:, None]).astype(p.dtype)
    return optax.losses.ctc_loss(p, logit_paddings, t, label_paddings, blank_id=blank_index)


def _torch_ctc(torch, F, t, p, *, blank_index, label_lengths, logit_lengths, zero_infinity):
    batch, time = p.shape[:2]
    t = t.long()
    target_lengths = (t != blank_index).sum(1) if label_lengths is None else torch.as_tensor(np.asarray(label_lengths))
    input_lengths = torch.full((batch,), time) if logit_lengths is None else torch.as_tensor(np.asarray(logit_lengths))
    log_probs = F.log_softmax(p, dim=-1).transpose(0, 1)
    return F.ctc_loss(
        log_probs,
        t,
        input_lengths.long(),
        target_lengths.long(),
        blank=blank_index,
        reduction="none",
        zero_infinity=zero_infinity,
    )


@register(
    formula=_ctc,
    local_grad=_ctc_grad,
    gradient="reference",
    inputs={"y_true": CTC_LABELS, "y_pred": LOGITS},
    examples=(
        Example(shape=(4, 8, 5), draw=_random(4, 8, 5, 3)),
        Example(shape=(3, 15, 8), draw=_random(3, 15, 8, 6, scale=2.0), label="longer"),
        Example(shape=(2, 6, 3), draw=_random(2, 6, 3, 4), label="few_classes"),
        Example(shape=(4, 5, 5), draw=_fixed(_TIGHT, 5, 5), label="minimal_time"),
        Example(shape=(1, 4, 6), draw=_fixed([[1, 2, 3, 4]], 4, 6), label="no_blank_frame"),
        Example(shape=(2, 3, 4), draw=_fixed([[0, 0], [0, 0]], 3, 4), label="empty_labels"),
        Example(shape=(4, 20, 8), draw=_random(4, 20, 8, 6), label="verify"),
        Example({"zero_infinity": True}, shape=(4, 8, 5), draw=_random(4, 8, 5, 3)),
        # Beyond Keras: optax's blank_id, per-example lengths.
        Example({"blank_index": 2}, shape=(4, 8, 5), draw=_random(4, 8, 5, 3, blank=2), keras=False),
        Example({"blank_index": 4}, shape=(3, 9, 5), draw=_random(3, 9, 5, 4, blank=4), keras=False),
        Example(
            {"label_lengths": np.array([2, 3, 0, 1]), "logit_lengths": np.array([8, 6, 3, 5])},
            shape=(4, 8, 5),
            draw=_full_labels(4, 8, 5, 3),
            keras=False,
            label="lengths",
        ),
        Example(
            {"blank_index": 1, "logit_lengths": np.array([7, 4, 9])},
            shape=(3, 9, 4),
            draw=_random(3, 9, 4, 3, blank=1),
            keras=False,
            label="blank1_logit_lengths",
        ),
        Example(
            {"blank_index": 3, "label_lengths": _LABEL_LENGTHS, "logit_lengths": _LOGIT_LENGTHS},
            shape=(4, 20, 8),
            draw=_lengths_labels(_LABEL_LENGTHS, 20, 8, blank=3),
            keras=False,
            label="verify_lengths",
        ),
    ),
    prepare=_ctc_prepare,
    reduced_axes=_ctc_axes,
    keras="CTC",
    keras_options=lambda o: {},
    peers=(
        Peer("optax", _optax_ctc, "ctc_loss(p, logit_paddings, t, label_paddings, blank_id)"),
        Peer("torch", _torch_ctc, "F.ctc_loss(log_softmax(p).T, t, ..., reduction='none')"),
    ),
    # A scan over time: (batch, 64 frames, 32 classes), labels of up to 16.
    bench=Bench(shape=lambda n: (max(1, n // 2048), 64, 32), max_elements=2_000_000),
)
def ctc(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    blank_index: Annotated[int, Static("int", low=0)] = 0,
    label_lengths: Annotated[ArrayLike | None, ArrayOption(domain=LENGTHS, dtype="int")] = None,
    logit_lengths: Annotated[ArrayLike | None, ArrayOption(domain=LENGTHS, dtype="int")] = None,
    zero_infinity: Flag = False,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Connectionist Temporal Classification loss: ``-log p(label | logits)`` per sample.

    .. math:: \ell_b = -\log \sum_{\pi \in \mathcal{B}^{-1}(l_b)} \prod_{t < T_b}
       \operatorname{softmax}(\hat y_{b,t})_{\pi_t}

    summed over every alignment :math:`\pi` (a path through ``blank, l_1, blank, ...,
    l_L, blank`` that may skip a blank between two different labels) that collapses
    to the label. Computed in log space by the forward recursion (``lax.scan`` over
    time) on ``log_softmax(y_pred)``, with ``-inf`` as log 0.

    Labels follow Keras: ``y_true`` is right-padded with the blank, a sample's label
    length is its number of non-blank entries, and the label is that many leading
    entries. With ``blank_index != 0`` the entries equal to ``blank_index`` are the
    padding; ``label_lengths`` overrides the count (entries past it are ignored,
    whatever their value), as optax's ``label_paddings`` do. An entry inside a label
    that names no class (out of ``[0, classes)``, a fraction, NaN) gives NaN for its
    sample, as do lengths outside ``[0, max_len]`` and ``[0, time]``.

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
      >>> loss = jaxloss.ctc(jnp.array([[1, 2, 0]]), jnp.zeros((1, 3, 3)))  # log(27 / 5): 5 of 27 paths
      >>> print(f"{float(loss):.5f}")
      1.68640
    """
    ...
