"""Large-vocabulary cross-entropy: the LM-head loss that never holds the ``(N, V)`` logits.

``linear_cross_entropy(y_true, hidden, weight)`` equals sparse categorical
crossentropy from the logits ``hidden @ weight + bias`` (with Keras's label
smoothing, an optional z-loss and logit soft-capping), but it walks the tokens
in chunks with ``lax.scan``: only one ``(chunk_size, V)`` block of logits lives
at a time, in the forward pass and in the backward pass.

Two gradient schemes, chosen per case:

* fused (scalar reductions): the per-token cotangent of a reduced loss is known
  in the forward pass (``sample_weight / divisor``), so the forward sweep
  computes ``dhidden``, ``dweight`` and ``dbias`` while it holds each block of
  logits (``6 N d V`` flops for value and gradient, as many as the naive form);
  the backward pass only scales them by the incoming scalar cotangent.
* recompute (``reduction="none"``): the cotangent of per-token values is only
  known in the backward pass, which recomputes each block of logits from the
  saved ``logsumexp`` (``8 N d V`` flops).

Both are ``jax.custom_vjp`` rules: the point of the loss is a backward pass
that is chunked like the forward, which autodiff of the scan cannot give (it
would save every block of logits); forward mode has no such chunked rule, so
``jax.jvp``/``jacfwd`` are not supported.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from ._core import Reduction, _broadcast_weight, check_int, check_interval, check_reduction, is_concrete

_NAME = "linear_cross_entropy"
# Class indices are compared in float32, exactly, below 2**24.
_MAX_VOCAB = 2**24
# The default chunk size aims at one (chunk_size, V) float32 block of logits of
# 2**23 elements (32 MiB), within [256, 1024] tokens: below 256 the passes that
# accumulate dweight (d x V each) start to cost more than the matmuls gain
# (measured on CPU at V = 16384 and 65536; see benchmarks/bench_linear_ce.py).
_BLOCK_ELEMENTS = 2**23
_MIN_CHUNK = 256
_MAX_CHUNK = 1024


def default_chunk_size(vocab_size: int) -> int:
    """The default ``chunk_size``: the power of two nearest ``2**23 / V``, within [256, 1024].

    1024 for ``V <= 11585``, 512 up to ``V = 23170``, 256 beyond; ``linear_cross_entropy``
    also caps it at the number of tokens.
    """
    target = _BLOCK_ELEMENTS / max(int(vocab_size), 1)
    chunk = 2 ** round(np.log2(max(target, 1.0)))
    return int(min(max(chunk, _MIN_CHUNK), _MAX_CHUNK))


# --------------------------------------------------------------------------
# Varying manual axes (shard_map with check_vma=True)
# --------------------------------------------------------------------------


def _varying(x: Any) -> frozenset:
    """The mesh axes over which ``x`` varies inside ``shard_map`` (empty elsewhere)."""
    if x is None:
        return frozenset()
    aval = jax.typeof(x)
    mat = getattr(aval, "manual_axis_type", None)
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()))


def _vary(x: jax.Array, axes: frozenset) -> jax.Array:
    """Mark ``x`` as varying over ``axes`` (a no-op cast) so loop carries keep one type."""
    missing = tuple(sorted(axes - _varying(x), key=str))
    if not missing:
        return x
    if hasattr(lax, "pcast"):
        return lax.pcast(x, missing, to="varying")
    return lax.pvary(x, missing)  # pragma: no cover - jax < 0.8


def _match(ct: jax.Array, like: jax.Array) -> jax.Array:
    """Give a cotangent the varying axes of its primal: sum over the extra ones, as autodiff does."""
    extra = tuple(sorted(_varying(ct) - _varying(like), key=str))
    if extra:
        ct = lax.psum(ct, extra)
    return _vary(ct, _varying(like)).astype(like.dtype)


# --------------------------------------------------------------------------
# The chunked sweep
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Config:
    """Static options of one compiled kernel."""

    chunk: int
    ignore_class: int | None
    smoothing: bool  # label_smoothing may be non-zero
    z_loss: bool  # z_loss may be non-zero
    soft_cap: bool
    axis_name: Hashable | None
    path: str  # "auto", "fused" or "recompute"


def _sweep(cfg: _Config, hidden, weight, bias, labels, a, zl, cap, *, ct=None, lse=None, want=frozenset()):
    """One pass over the tokens, ``cfg.chunk`` at a time.

    Without ``lse`` it computes the per-token statistics; given ``lse`` (the
    backward of the recompute path) it only recomputes the logits. Given the
    per-token cotangent ``ct``, it accumulates gradients. ``want`` names the
    outputs: per token ``"loss"``, ``"lse"``, ``"dlda"`` (d loss / d label_smoothing),
    ``"dldz"`` (d loss / d z_loss); gradients ``"hidden"``, ``"weight"``, ``"bias"``, ``"cap"``.

    The last chunk is the window ``[N - chunk, N)``; its rows already seen by the
    previous chunk are masked out (``fresh``), so no input is ever padded or copied.
    """
    n, _ = hidden.shape
    v_local = weight.shape[1]
    c = cfg.chunk
    steps = -(-n // c)
    dt = jnp.promote_types(jnp.result_type(hidden.dtype, weight.dtype), jnp.float32)
    axis = cfg.axis_name
    if axis is None:
        vocab, offset = v_local, 0
    else:
        vocab = v_local * lax.axis_size(axis)
        offset = lax.axis_index(axis) * v_local
        if isinstance(vocab, int) and vocab >= _MAX_VOCAB:
            raise ValueError(f"{_NAME}: the vocabulary over {axis!r} must have fewer than 2**24 classes; has {vocab}.")
    grads = {"hidden", "weight", "bias", "cap"} & want if ct is not None else set()

    # Every carry has one type across iterations: varying over every mesh axis an
    # input varies over (local values), or over all but ``axis`` (after a psum).
    vary_all = frozenset().union(*(_varying(x) for x in (hidden, weight, bias, labels, a, zl, cap, ct, lse)))
    vary_tok = vary_all - {axis}

    carry: dict[str, jax.Array] = {}
    for key in ("loss", "lse", "dlda", "dldz"):
        if key in want:
            carry[key] = _vary(jnp.zeros((n,), dt), vary_tok)
    if "hidden" in grads:
        carry["hidden"] = _vary(jnp.zeros(hidden.shape, dt), vary_all)
    if "weight" in grads:
        carry["weight"] = _vary(jnp.zeros(weight.shape, dt), vary_all)
    if "bias" in grads:
        carry["bias"] = _vary(jnp.zeros((v_local,), dt), vary_all)
    if "cap" in grads:
        carry["cap"] = _vary(jnp.zeros((), dt), vary_all)

    def put(buf, start, fresh, new, target):
        new = _vary(new.astype(buf.dtype), target)
        old = lax.dynamic_slice_in_dim(buf, start, c)
        fresh = fresh.reshape(fresh.shape + (1,) * (new.ndim - 1))
        return lax.dynamic_update_slice_in_dim(buf, jnp.where(fresh, new, old), start, 0)

    def body(carry, i):
        carry = dict(carry)
        start = jnp.minimum(i * c, n - c)
        rows = start + lax.iota(jnp.int32, c)
        fresh = rows >= i * c
        h = lax.dynamic_slice_in_dim(hidden, start, c)
        y = lax.dynamic_slice_in_dim(labels, start, c)
        valid = fresh if cfg.ignore_class is None else fresh & (y != cfg.ignore_class)
        raw = lax.dot_general(h, weight, (((1,), (0,)), ((), ())), preferred_element_type=dt)
        if bias is not None:
            raw = raw + bias.astype(dt)[None, :]
        z = cap * jnp.tanh(raw / cap) if cfg.soft_cap else raw
        # The label's indicator [j == y_i] from an iota, no gather and no scatter; written in float
        # arithmetic (exact below 2**24) because XLA:CPU fuses that, but not a compare-and-select,
        # into the reductions, which would otherwise hold a second (chunk, V) buffer.
        cols = lax.broadcasted_iota(dt, (c, v_local), 1) + jnp.asarray(offset, dt)
        y_f = y.astype(dt)[:, None]
        is_label = 1.0 - jnp.minimum(jnp.abs(cols - y_f), 1.0)

        if lse is None:
            m = jnp.max(z, axis=1)
            if axis is not None:
                m = lax.pmax(m, axis)
            stats = [jnp.sum(jnp.exp(z - m[:, None]), axis=1), jnp.sum(z * is_label, axis=1)]
            if cfg.smoothing:
                stats.append(jnp.sum(z, axis=1))
            if axis is not None:  # one all-reduce of (2 or 3, chunk) floats after the pmax
                stats = list(lax.psum(jnp.stack(stats), axis))
            lse_c = m + jnp.log(stats[0])
            z_label = stats[1]
            loss = lse_c - (1.0 - a) * z_label if cfg.smoothing else lse_c - z_label
            if cfg.smoothing:
                z_mean = stats[2] / vocab
                loss = loss - a * z_mean
            if cfg.z_loss:
                loss = loss + zl * jnp.square(lse_c)
            per_token = {
                "loss": loss,
                "lse": lse_c,
                "dlda": (z_label - z_mean) if cfg.smoothing else None,
                "dldz": jnp.square(lse_c),
            }
            for key in ("loss", "lse", "dlda", "dldz"):
                if key in carry:
                    value = per_token[key] if key == "lse" else jnp.where(valid, per_token[key], 0.0)
                    carry[key] = put(carry[key], start, fresh, value, vary_tok)
        else:
            lse_c = lax.dynamic_slice_in_dim(lse, start, c)

        if grads:
            w = jnp.where(valid, lax.dynamic_slice_in_dim(ct, start, c), 0.0).astype(dt)
            p = jnp.exp(z - lse_c[:, None])
            if cfg.z_loss:
                p = p * (1.0 + 2.0 * zl * lse_c)[:, None]
            if cfg.smoothing:
                g = p - (1.0 - a) * is_label - a / vocab
            else:
                g = p - is_label
            g = g * w[:, None]
            if cfg.soft_cap:
                t = z / cap
                sech2 = 1.0 - t * t
                if "cap" in grads:
                    # d(cap tanh(r / cap)) / d cap = tanh(u) - u sech^2(u), u = r / cap
                    carry["cap"] = carry["cap"] + jnp.sum(g * (t - (raw / cap) * sech2))
                g = g * sech2
            gm = g.astype(weight.dtype)
            if "hidden" in grads:
                dh = lax.dot_general(gm, weight, (((1,), (1,)), ((), ())), preferred_element_type=dt)
                carry["hidden"] = put(carry["hidden"], start, fresh, dh, vary_all)
            if "weight" in grads:
                dw = lax.dot_general(h, gm, (((0,), (0,)), ((), ())), preferred_element_type=dt)
                carry["weight"] = carry["weight"] + dw
            if "bias" in grads:
                carry["bias"] = carry["bias"] + jnp.sum(g, axis=0)
        return carry, None

    out, _ = lax.scan(body, carry, jnp.arange(steps, dtype=jnp.int32))
    if axis is not None and "hidden" in out:
        out["hidden"] = lax.psum(out["hidden"], axis)  # each shard holds its vocabulary slice's share
    return out


# --------------------------------------------------------------------------
# Fused path: sum_i coef_i loss_i, gradients computed in the forward sweep
# --------------------------------------------------------------------------


def _value(p):
    return p.value if hasattr(p, "value") else p


def _perturbed(p) -> bool:
    return bool(getattr(p, "perturbed", False)) and _value(p) is not None


def _witness(x):
    """A zero-size array carrying ``x``'s dtype and varying axes (for the backward's type checks)."""
    return x.reshape(-1)[:0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _weighted_sum(cfg, hidden, weight, bias, labels, coef, a, zl, cap):
    out = _sweep(cfg, hidden, weight, bias, labels, a, zl, cap, want=frozenset({"loss"}))
    return jnp.sum(coef * out["loss"])


def _weighted_sum_fwd(cfg, hidden, weight, bias, labels, coef, a, zl, cap):
    args = [hidden, weight, bias, labels, coef, a, zl, cap]
    values = [_value(x) for x in args]
    hidden_, weight_, bias_, labels_, coef_, a_, zl_, cap_ = values
    need = dict(
        zip(("hidden", "weight", "bias", "coef", "a", "zl", "cap"), map(_perturbed, args[:3] + args[4:]), strict=True)
    )
    want = {"loss"} | {k for k in ("hidden", "weight", "bias", "cap") if need[k]}
    if need["a"] and cfg.smoothing:
        want.add("dlda")
    if need["zl"]:
        want.add("dldz")
    out = _sweep(cfg, hidden_, weight_, bias_, labels_, a_, zl_, cap_, ct=coef_, want=frozenset(want))
    value = jnp.sum(coef_ * out["loss"])
    # Hyperparameter cotangents as scalars now; coef's needs the per-token losses.
    res = {
        "hidden": out.get("hidden"),
        "weight": out.get("weight"),
        "bias": out.get("bias"),
        "cap": out.get("cap"),
        "coef": out["loss"] if need["coef"] else None,
        "a": jnp.sum(coef_ * out["dlda"]) if "dlda" in out else None,
        "zl": jnp.sum(coef_ * out["dldz"]) if "dldz" in out else None,
        "like": {
            k: _witness(x)
            for k, x in zip(
                ("hidden", "weight", "bias", "coef", "a", "zl", "cap"), values[:3] + values[4:], strict=True
            )
            if x is not None and need[k]
        },
    }
    if need["a"] and not cfg.smoothing:  # label_smoothing is the constant 0.0
        res["a"] = jnp.zeros((), value.dtype)
    return value, res


def _weighted_sum_bwd(cfg, res, g):
    like = res["like"]

    def ct(key):
        if key not in like or res[key] is None or isinstance(g, SymbolicZero):
            return None
        return _match(g * res[key], like[key])

    return (ct("hidden"), ct("weight"), ct("bias"), None, ct("coef"), ct("a"), ct("zl"), ct("cap"))


_weighted_sum.defvjp(_weighted_sum_fwd, _weighted_sum_bwd, symbolic_zeros=True)


# --------------------------------------------------------------------------
# Recompute path: per-token losses, logits recomputed in the backward sweep
# --------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _token_losses(cfg, hidden, weight, bias, labels, a, zl, cap):
    return _sweep(cfg, hidden, weight, bias, labels, a, zl, cap, want=frozenset({"loss"}))["loss"]


def _token_losses_fwd(cfg, hidden, weight, bias, labels, a, zl, cap):
    args = [hidden, weight, bias, labels, a, zl, cap]
    values = [_value(x) for x in args]
    hidden_, weight_, bias_, labels_, a_, zl_, cap_ = values
    names = ("hidden", "weight", "bias", "a", "zl", "cap")
    need = dict(zip(names, map(_perturbed, args[:3] + args[4:]), strict=True))
    want = {"loss", "lse"}
    if need["a"] and cfg.smoothing:
        want.add("dlda")
    if need["zl"]:
        want.add("dldz")
    out = _sweep(cfg, hidden_, weight_, bias_, labels_, a_, zl_, cap_, want=frozenset(want))
    res = {
        "inputs": (hidden_, weight_, bias_, labels_, a_, zl_, cap_),
        "lse": out["lse"],
        "dlda": out.get("dlda"),
        "dldz": out.get("dldz"),
        "like": {
            k: _witness(x) for k, x in zip(names, values[:3] + values[4:], strict=True) if x is not None and need[k]
        },
    }
    return out["loss"], res


def _token_losses_bwd(cfg, res, ct):
    like = res["like"]
    if isinstance(ct, SymbolicZero):
        return (None,) * 7
    hidden, weight, bias, labels, a, zl, cap = res["inputs"]
    want = frozenset(k for k in ("hidden", "weight", "bias", "cap") if k in like)
    out = {}
    if want:
        out = _sweep(cfg, hidden, weight, bias, labels, a, zl, cap, ct=ct, lse=res["lse"], want=want)

    def scalar(key, per_token):
        if key not in like:
            return None
        if per_token is None:
            return jnp.zeros_like(like[key], shape=())
        return _match(jnp.sum(ct * per_token), like[key])

    def grad(key):
        return _match(out[key], like[key]) if key in out else None

    return (
        grad("hidden"),
        grad("weight"),
        grad("bias"),
        None,
        scalar("a", res["dlda"]),
        scalar("zl", res["dldz"]),
        grad("cap"),
    )


_token_losses.defvjp(_token_losses_fwd, _token_losses_bwd, symbolic_zeros=True)


# --------------------------------------------------------------------------
# Public function
# --------------------------------------------------------------------------


def _is_zero(x: Any) -> bool:
    return x is not None and not isinstance(x, bool) and is_concrete(x) and np.ndim(x) == 0 and float(x) == 0.0


def _check_shapes(y_true, hidden, weight, bias, sample_weight) -> None:
    def bad(message: str, **shapes) -> ValueError:
        got = ", ".join(f"{k}.shape={tuple(np.shape(v))}" for k, v in shapes.items())
        return ValueError(f"{_NAME}: {message}; received {got}.")

    if np.ndim(hidden) != 2:
        raise bad("hidden must have shape (N, d)", hidden=hidden)
    if np.ndim(weight) != 2:
        raise bad("weight must have shape (d, V)", weight=weight)
    if np.ndim(y_true) != 1:
        raise bad("y_true must have shape (N,)", y_true=y_true)
    n, d = np.shape(hidden)
    if np.shape(y_true)[0] != n:
        raise bad("y_true must have shape (N,) for hidden of shape (N, d)", y_true=y_true, hidden=hidden)
    if np.shape(weight)[0] != d:
        raise bad("weight must have shape (d, V) for hidden of shape (N, d)", hidden=hidden, weight=weight)
    if bias is not None and tuple(np.shape(bias)) != (np.shape(weight)[1],):
        raise bad("bias must have shape (V,) for weight of shape (d, V)", bias=bias, weight=weight)
    for name, x in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if x is not None and not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise ValueError(
                f"{_NAME}: {name} must be a floating-point array; received {name}.dtype={jnp.result_type(x)}."
            )
    if not jnp.issubdtype(jnp.result_type(y_true), jnp.integer):
        raise ValueError(
            f"{_NAME}: y_true must hold integer class indices; received y_true.dtype={jnp.result_type(y_true)}."
        )


def _linear_cross_entropy(
    y_true,
    hidden,
    weight,
    *,
    bias=None,
    chunk_size=None,
    ignore_class=None,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_soft_cap=None,
    sample_weight=None,
    reduction: Reduction = "sum_over_batch_size",
    axis_name=None,
    path: str = "auto",
):
    """``linear_cross_entropy`` with the gradient scheme selectable (``path``), for the benchmarks."""
    check_reduction(_NAME, reduction)
    check_int(_NAME, "chunk_size", chunk_size, allow_none=True)
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"{_NAME}: chunk_size must be a positive int or None; received chunk_size={chunk_size!r}.")
    check_int(_NAME, "ignore_class", ignore_class, allow_none=True)
    check_interval(_NAME, "label_smoothing", label_smoothing, 0.0, 1.0)
    check_interval(_NAME, "z_loss", z_loss, 0.0)
    check_interval(_NAME, "logit_soft_cap", logit_soft_cap, 0.0, low_open=True)
    if path not in ("auto", "fused", "recompute"):
        raise ValueError(f"{_NAME}: path must be 'auto', 'fused' or 'recompute'; received path={path!r}.")
    y_true, hidden, weight = (x if isinstance(x, jax.Array) else jnp.asarray(x) for x in (y_true, hidden, weight))
    bias = None if bias is None else jnp.asarray(bias)
    _check_shapes(y_true, hidden, weight, bias, sample_weight)
    if weight.shape[1] >= _MAX_VOCAB:
        raise ValueError(
            f"{_NAME}: weight must have fewer than 2**24 columns; received weight.shape={tuple(weight.shape)}."
        )
    n = hidden.shape[0]
    if sample_weight is not None:
        sample_weight = _broadcast_weight(_NAME, jnp.asarray(sample_weight), (n,))
    chunk = default_chunk_size(weight.shape[1]) if chunk_size is None else int(chunk_size)
    cfg = _Config(
        chunk=max(1, min(chunk, n)),
        ignore_class=None if ignore_class is None else int(ignore_class),
        smoothing=not _is_zero(label_smoothing),
        z_loss=not _is_zero(z_loss),
        soft_cap=logit_soft_cap is not None,
        axis_name=axis_name,
        path=path,
    )
    return _kernel(cfg, reduction, y_true, hidden, weight, bias, sample_weight, label_smoothing, z_loss, logit_soft_cap)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _kernel(cfg: _Config, reduction, y_true, hidden, weight, bias, sample_weight, a, zl, cap):
    dt = jnp.promote_types(jnp.result_type(hidden.dtype, weight.dtype), jnp.float32)
    n = hidden.shape[0]
    hyper = (
        jnp.asarray(a, dt),
        jnp.asarray(zl, dt),
        None if cap is None else jnp.asarray(cap, dt),
    )
    if n == 0:  # Keras returns an empty batch's values unreduced
        return jnp.zeros((0,), dt)
    if cfg.axis_name is not None and cfg.axis_name not in _varying(weight):
        raise ValueError(
            f"{_NAME}: axis_name={cfg.axis_name!r} needs weight split along the vocabulary over that mesh axis, "
            "inside jax.shard_map with check_vma=True (the default); received a weight of shape "
            f"{tuple(weight.shape)} that does not vary over {cfg.axis_name!r}."
        )
    mm = jnp.result_type(hidden.dtype, weight.dtype)
    hidden, weight = hidden.astype(mm), weight.astype(mm)
    bias = None if bias is None else bias.astype(mm)
    valid = jnp.ones((n,), dt) if cfg.ignore_class is None else (y_true != cfg.ignore_class).astype(dt)
    weights = valid if sample_weight is None else valid * sample_weight.astype(dt)
    if reduction in ("none", None):
        losses = _token_losses(cfg, hidden, weight, bias, y_true, *hyper)
        return losses if sample_weight is None else losses * weights
    if reduction == "sum":
        coef = weights
    else:
        divisor = jnp.sum(weights) if reduction == "mean_with_sample_weight" else jnp.sum(valid)
        coef = weights * jnp.where(divisor != 0, 1.0 / jnp.where(divisor != 0, divisor, 1.0), 0.0)
    if cfg.path == "recompute":
        return jnp.sum(coef * _token_losses(cfg, hidden, weight, bias, y_true, *hyper))
    return _weighted_sum(cfg, hidden, weight, bias, y_true, coef, *hyper)


def linear_cross_entropy(
    y_true: ArrayLike,
    hidden: ArrayLike,
    weight: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    chunk_size: int | None = None,
    ignore_class: int | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    z_loss: float | ArrayLike = 0.0,
    logit_soft_cap: float | ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
    axis_name: Hashable | None = None,
) -> jax.Array:
    r"""Cross-entropy of a linear head, without ever holding the ``(N, V)`` logits.

    With ``z = softcap(hidden @ weight + bias)``, ``softcap(x) = c tanh(x / c)``
    for ``c = logit_soft_cap`` (the identity when it is None),
    ``lse_i = logsumexp_j z_ij``, ``a = label_smoothing`` and ``V`` classes, the
    loss of token ``i`` is

    .. math::
      \ell_i = \mathrm{lse}_i - (1 - a)\, z_{i, y_i} - \frac{a}{V} \sum_j z_{ij}
               + \lambda_z\, \mathrm{lse}_i^2 ,

    and 0 for a token whose label is ``ignore_class``: Keras's
    ``sparse_categorical_crossentropy(y_true, z, from_logits=True, ignore_class=...)``
    with Keras's label smoothing (``1 - a`` on the label plus ``a / V`` on every
    class) and the z-loss ``z_loss * lse**2``. Tokens go ``chunk_size`` at a
    time through a ``lax.scan``, so the temporary memory grows with
    ``chunk_size * V``, never with ``N * V``; the label logit is picked by
    comparing each block's column index (an iota) with the label, not by a
    gather or scatter.

    Args:
      y_true: integer class indices, shape ``(N,)``. A label outside ``[0, V)``
        that is not ``ignore_class`` matches no class (its label term is 0).
      hidden: the head's inputs, shape ``(N, d)``, float. ``bfloat16`` inputs are
        multiplied in ``bfloat16`` with ``float32`` accumulation; the
        ``logsumexp``, ``dhidden`` and ``dweight`` accumulate in ``float32``.
      weight: the head's matrix, shape ``(d, V)``; with ``axis_name``, this
        shard's ``(d, V_local)`` slice.
      bias: optional, shape ``(V,)`` (``(V_local,)`` with ``axis_name``).
      chunk_size: tokens per step, a positive int. Default: the power of two
        nearest ``2**23 / V`` within ``[256, 1024]`` (1024 for ``V <= 11585``,
        512 up to ``V = 23170``, 256 beyond), so that one ``(chunk_size, V)``
        float32 block is about 32 MiB, or ``256 V`` floats for large
        vocabularies: smaller chunks save memory, larger ones spend fewer passes
        accumulating ``dweight``. Capped at ``N``. Any ``N`` works: the last
        step takes the window that ends at ``N`` and masks the rows that the
        previous step already did (nothing is padded).
      ignore_class: the label of tokens to leave out: value 0, no gradient, not
        counted by the mean reductions (a batch with every token ignored gives 0).
      label_smoothing: in ``[0, 1]``.
      z_loss: the coefficient ``>= 0`` of ``lse**2``, per valid token.
      logit_soft_cap: ``None`` or ``> 0``.
      sample_weight: per-token weights, shape ``(N,)`` (or a scalar).
      reduction: ``"sum_over_batch_size"`` (the default) and ``"mean"`` divide
        the weighted sum by the number of valid tokens,
        ``"mean_with_sample_weight"`` by the sum of the valid tokens' weights,
        ``"sum"`` not at all; ``"none"`` or ``None`` give the per-token values
        times ``sample_weight``, shape ``(N,)``.
      axis_name: a mesh axis, when called inside ``jax.shard_map`` (with
        ``check_vma=True``, the default) with ``weight`` and ``bias`` split along
        the vocabulary over that axis: shard ``k`` holds classes
        ``[k V_local, (k + 1) V_local)``. The result is the loss over the whole
        vocabulary, equal to the unsplit call in value and gradients: per chunk,
        a ``pmax`` of the row maxima and one ``psum`` of the per-token sums
        (exponentials, label logit, and the logits' sum under smoothing); the
        label logit comes from the shard that holds the label, ``dhidden`` is
        summed over the axis. Tokens sharded over other mesh axes are reduced
        locally: the reduction covers the tokens that this call sees.

    Returns:
      A scalar (float32; float64 for float64 inputs under x64), or the per-token
      values, shape ``(N,)``, for ``reduction="none"``.

    Gradient: with respect to ``hidden``, ``weight``, ``bias``, ``sample_weight``,
    ``label_smoothing``, ``z_loss`` and ``logit_soft_cap``, in the input dtypes.
    With ``p = softmax(z)`` and ``w_i`` the token's reduction weight,
    ``d loss / d z_ij = w_i [p_ij (1 + 2 z_loss lse_i) - (1 - a) [j = y_i] - a / V]``,
    times ``1 - (z_ij / c)**2`` under the soft cap. It is a ``jax.custom_vjp``
    rather than the usual custom JVP because the point is a chunked backward
    pass: autodiff of the scan would save every block of logits, and forward
    mode has no such chunked rule, so ``jax.jvp`` and ``jacfwd`` are not
    supported. Two schemes, picked per case: for the scalar reductions the
    per-token cotangent is known in the forward pass, so the forward sweep
    computes ``dhidden``, ``dweight`` and ``dbias`` while it holds each block
    (``6 N d V`` flops for value and gradient, as many as the naive form, and
    only when a gradient is asked for: the plain forward costs ``2 N d V``);
    ``reduction="none"`` gets an arbitrary cotangent, so its backward pass
    recomputes each block from the saved ``lse`` (``8 N d V`` flops).

    Example:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # (N, d) = (3, 2)
      >>> weight = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]])  # (d, V) = (2, 3)
      >>> y = jnp.array([0, 1, 2])
      >>> loss = jaxloss.linear_cross_entropy(y, hidden, weight)
      >>> logits = hidden @ weight  # what linear_cross_entropy never builds
      >>> naive = jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(3), y])
      >>> print(f"{float(loss):.5f} {float(naive):.5f}")
      1.03804 1.03804
      >>> jaxloss.linear_cross_entropy(y, hidden, weight, ignore_class=2, reduction="none").round(4)
      Array([0.4076, 0.4076, 0.    ], dtype=float32)
      >>> dh, dw = jax.grad(lambda h, w: jaxloss.linear_cross_entropy(y, h, w, z_loss=1e-4), (0, 1))(hidden, weight)
      >>> dh.shape, dw.shape
      ((3, 2), (2, 3))
    """
    return _linear_cross_entropy(
        y_true,
        hidden,
        weight,
        bias=bias,
        chunk_size=chunk_size,
        ignore_class=ignore_class,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
        sample_weight=sample_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
