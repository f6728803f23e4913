"""Large-vocabulary cross-entropy: the LM-head loss that never holds the ``(N, V)`` logits.

``linear_cross_entropy(y_true, hidden, weight)`` equals sparse categorical
crossentropy from the logits ``hidden @ weight + bias`` (with Keras's label
smoothing, an optional z-loss, logit soft-capping and per-class weights), but it
walks the tokens in chunks with ``lax.scan``: only one ``(chunk_size, V)`` block
of logits lives at a time, in the forward pass and in the backward pass.

Within a chunk the gradient goes over the vocabulary in blocks of
``vocab_block`` classes: each block's logit gradient ``(chunk_size, vocab_block)``
is multiplied into ``dhidden`` and added into its own slice of ``dweight`` in
place, so no ``dweight``-sized product of a chunk is ever formed (the
``dweight`` accumulator is the output buffer itself). This holds for both weight
layouts, ``(d, V)`` and ``(V, d)``; with ``(V, d)`` the slices are whole rows.

Two gradient schemes, chosen per case:

* fused (scalar reductions): the per-token cotangent of a reduced loss is the
  core's ``reduction_cotangent``, known in the forward pass, so the forward sweep
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
import math
from collections.abc import Hashable
from typing import Annotated, Any, Literal, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from ._core import (
    REGISTRY,
    ArrayOption,
    Example,
    Fraction,
    IgnoreClass,
    NonNegative,
    Number,
    Reduction,
    Scalar,
    Static,
    Weighted,
    as_input,
    check_int,
    check_option,
    check_reduction,
    class_labels,
    effective_weight,
    is_concrete,
    is_static_zero,
    nan_where,
    reduce,
    reduction_cotangent,
    register_direct,
)
from ._inputs import NON_NEGATIVE, REAL, ClassLabels

WeightLayout: TypeAlias = Literal["dv", "vd"]

_NAME = "linear_cross_entropy"
# Class indices are compared in float32, exactly, below 2**24.
_MAX_VOCAB = 2**24
# The default chunk size aims at one (chunk_size, V) float32 block of logits of
# 2**23 elements (32 MiB), within [256, 1024] tokens: smaller chunks re-read the
# weight more often for the same work (see benchmarks/bench_linear_ce.py).
_BLOCK_ELEMENTS = 2**23
_MIN_CHUNK = 256
_MAX_CHUNK = 1024
# The backward's vocabulary block: d * vocab_block floats of dweight (and of the
# weight's slice) per step, about 2**19 (2 MiB), within [256, 4096] classes.
_VOCAB_BLOCK_ELEMENTS = 2**19
_MIN_VOCAB_BLOCK = 256
_MAX_VOCAB_BLOCK = 4096


def _nearest_power_of_two(x: float, low: int, high: int) -> int:
    return int(min(max(2 ** round(np.log2(max(x, 1.0))), low), high))


def default_chunk_size(vocab_size: int) -> int:
    """The default ``chunk_size``: the power of two nearest ``2**23 / V``, within [256, 1024].

    1024 for ``V <= 11585``, 512 up to ``V = 23170``, 256 beyond; ``linear_cross_entropy``
    also caps it at the number of tokens.
    """
    return _nearest_power_of_two(_BLOCK_ELEMENTS / max(int(vocab_size), 1), _MIN_CHUNK, _MAX_CHUNK)


def default_vocab_block(hidden_size: int) -> int:
    """The backward's vocabulary block: the power of two nearest ``2**19 / d``, within [256, 4096]."""
    return _nearest_power_of_two(_VOCAB_BLOCK_ELEMENTS / max(int(hidden_size), 1), _MIN_VOCAB_BLOCK, _MAX_VOCAB_BLOCK)


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
    return lax.pvary(x, missing)  # pyright: ignore[reportAttributeAccessIssue]  # pragma: no cover - jax < 0.8


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
    vocab_block: int
    layout: str  # "dv": weight (d, V); "vd": weight (V, d)
    ignore_class: int | None
    smoothing: bool  # label_smoothing may be non-zero
    z_loss: bool  # z_loss may be non-zero
    soft_cap: bool
    axis_name: Hashable | None
    path: str  # "auto", "fused" or "recompute"


def _vocab_axis(cfg: _Config) -> int:
    return 1 if cfg.layout == "dv" else 0


def _logits(cfg: _Config, h, weight, dt):
    """``h @ weight`` (``h @ weight.T`` for ``(V, d)``), contracting in place: no transposed copy."""
    contract = 0 if cfg.layout == "dv" else 1
    return lax.dot_general(h, weight, (((1,), (contract,)), ((), ())), preferred_element_type=dt)


def _sweep(cfg: _Config, hidden, weight, bias, labels, a, zl, cap, *, ct=None, lse=None, want=frozenset()):
    """One pass over the tokens, ``cfg.chunk`` at a time.

    Without ``lse`` it computes the per-token statistics; given ``lse`` (the
    backward of the recompute path) it only recomputes the logits. Given the
    per-token cotangent ``ct``, it accumulates gradients. ``want`` names the
    outputs: per token ``"loss"``, ``"lse"``, ``"dlda"`` (d loss / d label_smoothing),
    ``"dldz"`` (d loss / d z_loss); gradients ``"hidden"``, ``"weight"``, ``"bias"``, ``"cap"``.

    The last chunk is the window ``[N - chunk, N)``; its rows already seen by the
    previous chunk are masked out (``fresh``), so no input is ever padded or copied.
    The vocabulary blocks of the gradient do the same along the classes.
    """
    n, _ = hidden.shape
    v_axis = _vocab_axis(cfg)
    v_local = weight.shape[v_axis]
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

    def is_label(y, first, width):
        # The label's indicator [j == y_i] from an iota, no gather and no scatter; written in float
        # arithmetic (exact below 2**24) because XLA:CPU fuses that, but not a compare-and-select,
        # into the reductions, which would otherwise hold a second (chunk, V) buffer.
        cols = lax.broadcasted_iota(dt, (c, width), 1) + jnp.asarray(first, dt)
        return 1.0 - jnp.minimum(jnp.abs(cols - y.astype(dt)[:, None]), 1.0)

    def capped(raw):
        return cap * jnp.tanh(raw / cap) if cfg.soft_cap else raw

    def with_bias(raw, first, width):
        if bias is None:
            return raw
        return raw + lax.dynamic_slice_in_dim(bias, first, width).astype(dt)[None, :]

    def gradient_block(state, z, raw_b, first, width, fresh_cols, h, y, w, lse_c, p_scale):
        """Add one vocabulary block's share to ``dhidden`` (of the chunk), ``dweight``, ``dbias``, ``dcap``.

        ``z`` is the block's logits (biased and capped); ``raw_b`` the uncapped ones, only for ``dcap``.
        """
        state = dict(state)
        p = jnp.exp(z - lse_c[:, None])
        if cfg.z_loss:
            p = p * p_scale[:, None]
        onehot = is_label(y, first + offset, width)
        g = p - (1.0 - a) * onehot - a / vocab if cfg.smoothing else p - onehot
        g = jnp.where(fresh_cols[None, :], g * w[:, None], 0.0)
        if cfg.soft_cap:
            t = z / cap
            sech2 = 1.0 - t * t
            if "cap" in state:
                # d(cap tanh(r / cap)) / d cap = tanh(u) - u sech^2(u), u = r / cap
                state["cap"] = state["cap"] + jnp.sum(g * (t - (with_bias(raw_b, first, width) / cap) * sech2))
            g = g * sech2
        gm = g.astype(weight.dtype)
        if "hidden" in state:
            w_b = lax.dynamic_slice_in_dim(weight, first, width, v_axis)
            contract = 1 if cfg.layout == "dv" else 0
            dh = lax.dot_general(gm, w_b, (((1,), (contract,)), ((), ())), preferred_element_type=dt)
            state["hidden"] = state["hidden"] + dh
        if "weight" in state:
            if cfg.layout == "dv":  # (d, width) = h^T g
                dw = lax.dot_general(h, gm, (((0,), (0,)), ((), ())), preferred_element_type=dt)
            else:  # (width, d) = g^T h
                dw = lax.dot_general(gm, h, (((0,), (0,)), ((), ())), preferred_element_type=dt)
            old = lax.dynamic_slice_in_dim(state["weight"], first, width, v_axis)
            state["weight"] = lax.dynamic_update_slice_in_dim(state["weight"], _vary(old + dw, vary_all), first, v_axis)
        if "bias" in state:
            old = lax.dynamic_slice_in_dim(state["bias"], first, width)
            new = _vary(old + jnp.sum(g, axis=0), vary_all)
            state["bias"] = lax.dynamic_update_slice_in_dim(state["bias"], new, first, 0)
        return state

    def gradients(carry, z, raw, h, y, w, lse_c, p_scale, start, fresh):
        """Loop over the vocabulary blocks; ``dweight`` and ``dbias`` are updated slice by slice in place.

        ``z`` holds the chunk's logits; ``raw`` the uncapped ones without the bias, only for ``dcap``
        (a second ``(chunk, V)`` buffer, kept only when that gradient is asked for).
        """
        vb = min(cfg.vocab_block, v_local)
        blocks = -(-v_local // vb)
        state = {k: carry[k] for k in ("weight", "bias", "cap") if k in grads}
        if "hidden" in grads:
            state["hidden"] = _vary(jnp.zeros((c, hidden.shape[1]), dt), vary_all)

        def block(j, state):
            first = jnp.minimum(j * vb, v_local - vb)
            fresh_cols = first + lax.iota(jnp.int32, vb) >= j * vb
            z_b = lax.dynamic_slice_in_dim(z, first, vb, 1)
            raw_b = None if raw is None else lax.dynamic_slice_in_dim(raw, first, vb, 1)
            return gradient_block(state, z_b, raw_b, first, vb, fresh_cols, h, y, w, lse_c, p_scale)

        if blocks == 1:
            every = jnp.ones((v_local,), bool)
            state = gradient_block(state, z, raw, 0, v_local, every, h, y, w, lse_c, p_scale)
        else:
            state = lax.fori_loop(0, blocks, block, state)
        carry = dict(carry)
        for k in ("weight", "bias", "cap"):
            if k in state:
                carry[k] = state[k]
        if "hidden" in state:
            carry["hidden"] = put(carry["hidden"], start, fresh, state["hidden"], vary_all)
        return carry

    def body(carry, i):
        carry = dict(carry)
        start = jnp.minimum(i * c, n - c)
        rows = start + lax.iota(jnp.int32, c)
        fresh = rows >= i * c
        h = lax.dynamic_slice_in_dim(hidden, start, c)
        y = lax.dynamic_slice_in_dim(labels, start, c)
        valid = fresh if cfg.ignore_class is None else fresh & (y != cfg.ignore_class)
        # A label that names no class gives NaN (value and gradient), never another class's score.
        named = (y >= 0) & (y < vocab)
        raw = _logits(cfg, h, weight, dt)
        z = capped(with_bias(raw, 0, v_local))

        if lse is None:
            m = jnp.max(z, axis=1)
            if axis is not None:
                m = lax.pmax(m, axis)
            stats = [jnp.sum(jnp.exp(z - m[:, None]), axis=1), jnp.sum(z * is_label(y, offset, v_local), axis=1)]
            if cfg.smoothing:
                stats.append(jnp.sum(z, axis=1))
            if axis is not None:  # one all-reduce of (2 or 3, chunk) floats after the pmax
                stats = list(lax.psum(jnp.stack(stats), axis))
            lse_c = m + jnp.log(stats[0])
            z_label = stats[1]
            loss = lse_c - (1.0 - a) * z_label if cfg.smoothing else lse_c - z_label
            z_mean = stats[2] / vocab if cfg.smoothing else None
            if z_mean is not None:
                loss = loss - a * z_mean
            if cfg.z_loss:
                loss = loss + zl * jnp.square(lse_c)
            per_token = {
                "loss": loss,
                "lse": lse_c,
                "dlda": None if z_mean is None else z_label - z_mean,
                "dldz": jnp.square(lse_c),
            }
            for key in ("loss", "lse", "dlda", "dldz"):
                if key in carry:
                    value = per_token[key]
                    if key != "lse":
                        value = jnp.where(valid, jnp.where(named, value, jnp.nan), 0.0)
                    carry[key] = put(carry[key], start, fresh, value, vary_tok)
        else:
            lse_c = lax.dynamic_slice_in_dim(lse, start, c)

        if grads:
            assert ct is not None
            w = jnp.where(valid, jnp.where(named, lax.dynamic_slice_in_dim(ct, start, c), jnp.nan), 0.0).astype(dt)
            p_scale = 1.0 + 2.0 * zl * lse_c if cfg.z_loss else None
            carry = gradients(carry, z, raw if "cap" in grads else None, h, y, w, lse_c, p_scale, start, fresh)
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


def _shape_error(message: str, **arrays: Any) -> ValueError:
    got = ", ".join(f"{k}.shape={tuple(np.shape(v))}" for k, v in arrays.items())
    return ValueError(f"{_NAME}: {message}; received {got}.")


def _check_arrays(y_true, hidden, weight, bias, class_weight, layout: str, axis_name) -> None:
    wshape = "(d, V)" if layout == "dv" else "(V, d)"
    if np.ndim(hidden) < 1:
        raise _shape_error("hidden must have shape (..., d)", hidden=hidden)
    if np.ndim(weight) != 2:
        raise _shape_error(f"weight must have shape {wshape} (weight_layout={layout!r})", weight=weight)
    d = np.shape(hidden)[-1]
    if tuple(np.shape(y_true)) != tuple(np.shape(hidden)[:-1]):
        raise _shape_error(
            "y_true must hold one label per row of hidden (hidden's shape less its last axis)",
            y_true=y_true,
            hidden=hidden,
        )
    d_axis, v_axis = (0, 1) if layout == "dv" else (1, 0)
    if np.shape(weight)[d_axis] != d:
        raise _shape_error(
            f"weight must have shape {wshape} (weight_layout={layout!r}) for hidden of shape (..., d)",
            hidden=hidden,
            weight=weight,
        )
    vocab = np.shape(weight)[v_axis]
    if bias is not None and tuple(np.shape(bias)) != (vocab,):
        raise _shape_error(f"bias must have shape (V,) for weight of shape {wshape}", bias=bias, weight=weight)
    if class_weight is not None:
        if np.ndim(class_weight) != 1 or (axis_name is None and np.shape(class_weight)[0] != vocab):
            raise _shape_error(
                f"class_weight must have shape (V,), one weight per class, for weight of shape {wshape}",
                class_weight=class_weight,
                weight=weight,
            )
        if is_concrete(class_weight) and np.any(np.asarray(class_weight) < 0):
            raise ValueError(f"{_NAME}: class_weight must be non-negative; received class_weight={class_weight!r}.")
    for name, x in (("hidden", hidden), ("weight", weight), ("bias", bias), ("class_weight", class_weight)):
        if x is not None and not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise ValueError(
                f"{_NAME}: {name} must be a floating-point array; received {name}.dtype={jnp.result_type(x)}."
            )
    if not jnp.issubdtype(jnp.result_type(y_true), jnp.integer):
        raise ValueError(
            f"{_NAME}: y_true must hold integer class indices; received y_true.dtype={jnp.result_type(y_true)}."
        )
    if vocab >= _MAX_VOCAB:
        raise ValueError(
            f"{_NAME}: weight must have fewer than 2**24 classes; received weight.shape={np.shape(weight)}."
        )


def _as_array(x: Any) -> Any:
    return x if x is None or isinstance(x, jax.Array) else jnp.asarray(x)


def _linear_cross_entropy(
    y_true,
    hidden,
    weight,
    *,
    bias=None,
    weight_layout: WeightLayout = "dv",
    chunk_size: int | None = None,
    ignore_class: int | None = None,
    label_smoothing: Any = 0.0,
    z_loss: Any = 0.0,
    logit_soft_cap: Any = None,
    class_weight: Any = None,
    sample_weight: Any = None,
    reduction: Reduction = "sum_over_batch_size",
    axis_name: Hashable | None = None,
    path: str = "auto",
    vocab_block: int | None = None,
):
    """``linear_cross_entropy`` with the gradient scheme (``path``) and ``vocab_block`` selectable, for benchmarks."""
    check_reduction(_NAME, reduction)
    if not isinstance(weight_layout, str) or weight_layout not in ("dv", "vd"):
        raise ValueError(
            f"{_NAME}: weight_layout must be one of 'dv' (weight of shape (d, V)) or 'vd' (shape (V, d)); "
            f"received weight_layout={weight_layout!r}."
        )
    for name, value in (("chunk_size", chunk_size), ("vocab_block", vocab_block)):
        check_int(_NAME, name, value, allow_none=True)
        if value is not None and value <= 0:
            raise ValueError(f"{_NAME}: {name} must be a positive int or None; received {name}={value!r}.")
    check_int(_NAME, "ignore_class", ignore_class, allow_none=True)
    # By the kinds the signature declares, as every loss's options are checked.
    declared = REGISTRY[_NAME].options
    for name, value in (
        ("label_smoothing", label_smoothing),
        ("z_loss", z_loss),
        ("logit_soft_cap", logit_soft_cap),
        ("axis_name", axis_name),
    ):
        check_option(_NAME, declared[name], value)
    if path not in ("auto", "fused", "recompute"):
        raise ValueError(f"{_NAME}: path must be 'auto', 'fused' or 'recompute'; received path={path!r}.")
    if isinstance(class_weight, (list, tuple)):
        class_weight = np.asarray(class_weight, np.float32)
    # Complex, string, object, None and ragged arrays are refused by name, as for every loss.
    y_true, hidden, weight = (
        _as_array(as_input(_NAME, k, x)) for k, x in (("y_true", y_true), ("hidden", hidden), ("weight", weight))
    )
    bias, class_weight = (
        None if x is None else _as_array(as_input(_NAME, k, x))
        for k, x in (("bias", bias), ("class_weight", class_weight))
    )
    if jnp.issubdtype(y_true.dtype, jnp.floating):
        # Float labels (Keras style) name a class only when integral; others get an index that
        # names none (past any vocabulary, and not ignore_class), so they give NaN.
        none = _MAX_VOCAB + (1 if ignore_class == _MAX_VOCAB else 0)
        integral = jnp.isfinite(y_true) & (y_true == jnp.floor(y_true))
        y_true = jnp.where(integral, y_true, none).astype(jnp.int32)
    # Keras's rank rule for integer labels: a trailing unit axis of the labels is squeezed.
    if y_true.ndim == hidden.ndim and y_true.ndim > 0 and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    _check_arrays(y_true, hidden, weight, bias, class_weight, weight_layout, axis_name)
    vocab = weight.shape[1 if weight_layout == "dv" else 0]
    n = math.prod(y_true.shape)
    chunk = default_chunk_size(vocab) if chunk_size is None else int(chunk_size)
    block = default_vocab_block(hidden.shape[-1]) if vocab_block is None else int(vocab_block)
    cfg = _Config(
        chunk=max(1, min(chunk, n)),
        vocab_block=block,
        layout=weight_layout,
        ignore_class=None if ignore_class is None else int(ignore_class),
        smoothing=not is_static_zero(label_smoothing),
        z_loss=not is_static_zero(z_loss),
        soft_cap=logit_soft_cap is not None,
        axis_name=axis_name,
        path=path,
    )
    sample_weight = None if sample_weight is None else _as_array(as_input(_NAME, "sample_weight", sample_weight))
    return _kernel(
        cfg,
        reduction,
        y_true,
        hidden,
        weight,
        bias,
        class_weight,
        sample_weight,
        label_smoothing,
        z_loss,
        logit_soft_cap,
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _kernel(cfg: _Config, reduction, y_true, hidden, weight, bias, class_weight, sample_weight, a, zl, cap):
    dt = jnp.promote_types(jnp.result_type(hidden.dtype, weight.dtype), jnp.float32)
    shape = y_true.shape
    n, d = math.prod(shape), hidden.shape[-1]
    hyper = (
        jnp.asarray(a, dt),
        jnp.asarray(zl, dt),
        None if cap is None else jnp.asarray(cap, dt),
    )
    if cfg.axis_name is not None and cfg.axis_name not in _varying(weight):
        raise ValueError(
            f"{_NAME}: axis_name={cfg.axis_name!r} needs weight split along the vocabulary over that mesh axis, "
            "inside jax.shard_map with check_vma=True (the default); received a weight of shape "
            f"{tuple(weight.shape)} that does not vary over {cfg.axis_name!r}."
        )
    vocab = weight.shape[_vocab_axis(cfg)]
    if cfg.axis_name is not None:
        vocab = vocab * lax.axis_size(cfg.axis_name)
    mask = None if cfg.ignore_class is None else y_true != cfg.ignore_class
    if class_weight is not None:
        if class_weight.shape != (vocab,):
            raise _shape_error(
                f"class_weight must have shape (V,) = ({vocab},), the whole vocabulary (not split)",
                class_weight=class_weight,
            )
        named = (y_true >= 0) & (y_true < vocab)
        per_token = jnp.where(named, class_weight.astype(dt)[jnp.clip(y_true, 0, vocab - 1)], jnp.nan)
        if mask is not None:
            per_token = jnp.where(mask, per_token, 0.0)
        mask = Weighted(mask, per_token)
    weight_of = effective_weight(_NAME, shape, dt, sample_weight, mask, reduction)
    if n == 0:  # as Keras reduces an empty batch
        return reduce(jnp.zeros(shape, dt), weight_of, reduction)

    mm = jnp.result_type(hidden.dtype, weight.dtype)
    hidden, weight = hidden.reshape(n, d).astype(mm), weight.astype(mm)
    bias = None if bias is None else bias.astype(mm)
    labels = y_true.reshape(n)
    if reduction in ("none", None) or cfg.path == "recompute":
        values = jnp.reshape(_token_losses(cfg, hidden, weight, bias, labels, *hyper), shape)
        return reduce(values, weight_of, reduction)
    # d(reduced)/d(values) is known before any value is: the fused sweep's per-token coefficient.
    coef = jnp.reshape(reduction_cotangent(jnp.zeros(shape, dt), weight_of, reduction), (n,))
    return _weighted_sum(cfg, hidden, weight, bias, labels, coef, *hyper)


# --------------------------------------------------------------------------
# The declaration: the plain form it equals, the inputs it is checked on
# --------------------------------------------------------------------------


def naive_linear_cross_entropy(
    y_true,
    hidden,
    weight,
    *,
    bias=None,
    weight_layout="dv",
    chunk_size=None,
    ignore_class=None,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_soft_cap=None,
    class_weight=None,
    sample_weight=None,
    reduction: Reduction = "sum_over_batch_size",
    axis_name=None,
):
    """The same loss from the explicit ``(..., V)`` logits (what ``linear_cross_entropy`` never
    builds): the reference that verify and the benchmarks compare with."""
    del chunk_size, axis_name
    hidden, weight = jnp.asarray(hidden), jnp.asarray(weight)
    dt = jnp.promote_types(jnp.result_type(hidden.dtype, weight.dtype), jnp.float32)
    z = (hidden @ (weight if weight_layout == "dv" else weight.T)).astype(dt)
    if bias is not None:
        z = z + jnp.asarray(bias, dt)
    if logit_soft_cap is not None:
        z = logit_soft_cap * jnp.tanh(z / logit_soft_cap)
    labels = class_labels(jnp.asarray(y_true), z.shape[-1], ignore_class)
    lse = jax.nn.logsumexp(z, axis=-1)
    z_label = jnp.take_along_axis(z, labels.index[..., None], -1)[..., 0]
    values = lse - (1.0 - label_smoothing) * z_label - label_smoothing * jnp.mean(z, -1) + z_loss * lse**2
    if labels.ignored is not None:
        values = jnp.where(labels.ignored, 0.0, values)
    values = nan_where(labels.nan, values)
    mask = None if labels.ignored is None else ~labels.ignored
    if class_weight is not None:
        per_token = jnp.take(jnp.asarray(class_weight, dt), labels.index)
        mask = Weighted(mask, jnp.where(labels.ignored, 0.0, per_token) if labels.ignored is not None else per_token)
    sw = None if sample_weight is None else jnp.asarray(sample_weight, dt)
    return reduce(values, effective_weight(_NAME, values.shape, dt, sw, mask, reduction), reduction)


def _example(shape=(12,), d=8, vocab=20, *, layout="dv", ignore=None):
    """Labels, hidden states and a head of these sizes (``draw`` for the declaration's examples)."""

    def draw(rng):
        labels = rng.integers(0, vocab, shape)
        if ignore is not None:
            labels.reshape(-1)[::4] = ignore
        hidden = rng.normal(0.0, 1.0, (*shape, d))
        weight = rng.normal(0.0, 1.0 / np.sqrt(d), (d, vocab) if layout == "dv" else (vocab, d))
        return labels, hidden, weight

    return draw


def _classes(arrays, options) -> int:
    """V, read off the weight for its layout: the range of the labels."""
    return int(np.shape(arrays[2])[1 if options.get("weight_layout", "dv") == "dv" else 0])


@register_direct(
    inputs={"y_true": ClassLabels(axis=-1), "y_pred": REAL},
    examples=(
        Example(draw=_example()),
        Example({"label_smoothing": 0.1, "z_loss": 1e-3}, draw=_example()),
        Example({"ignore_class": -100}, draw=_example(ignore=-100)),
        Example({"logit_soft_cap": 5.0, "chunk_size": 5}, draw=_example()),
        Example({"weight_layout": "vd"}, draw=_example(layout="vd"), label="tied"),
        Example({"class_weight": np.linspace(0.5, 2.0, 20)}, draw=_example()),
        Example({"bias": np.linspace(-1.0, 1.0, 20)}, draw=_example()),
        Example({"chunk_size": 4}, draw=_example(shape=(2, 6)), label="rank3"),
        Example({"axis_name": None}, draw=_example(), label="unsplit"),
    ),
    reference=naive_linear_cross_entropy,
    classes=_classes,
    aliases=("linear_ce", "fused_linear_cross_entropy"),
)
def linear_cross_entropy(
    y_true: ArrayLike,
    hidden: ArrayLike,
    weight: ArrayLike,
    *,
    bias: Annotated[ArrayLike | None, ArrayOption()] = None,
    weight_layout: WeightLayout = "dv",
    chunk_size: Annotated[int | None, Static("int", low=1, optional=True)] = None,
    ignore_class: IgnoreClass = None,
    label_smoothing: Fraction = 0.0,
    z_loss: NonNegative = 0.0,
    logit_soft_cap: Annotated[Number | None, Scalar(0.0, low_open=True, optional=True)] = None,
    class_weight: Annotated[ArrayLike | None, ArrayOption(domain=NON_NEGATIVE)] = None,
    sample_weight: ArrayLike | None = None,
    reduction: Reduction = "sum_over_batch_size",
    axis_name: Annotated[Hashable | None, Static("name", optional=True)] = None,
) -> jax.Array:
    r"""Cross-entropy of a linear head (an LM head), without ever holding the ``(..., V)`` logits.

    With ``z = softcap(hidden @ W + bias)`` (``W = weight``, or ``weight.T`` for
    ``weight_layout="vd"``), ``softcap(x) = c tanh(x / c)`` for ``c = logit_soft_cap``
    (the identity when it is None), ``lse = logsumexp_j z_j``, ``a = label_smoothing``
    and ``V`` classes, the loss of a token with label ``y`` is

    .. math::
      \ell = \mathrm{lse} - (1 - a)\, z_{y} - \frac{a}{V} \sum_j z_j
             + \lambda_z\, \mathrm{lse}^2 ,

    times ``class_weight[y]`` when given, and 0 for a token whose label is
    ``ignore_class``: ``sparse_categorical_crossentropy(y_true, z, from_logits=True,
    ignore_class=..., label_smoothing=a, z_loss=..., class_weight=...)`` (Keras's
    label smoothing, ``1 - a`` on the label plus ``a / V`` on every class; the z-loss
    ``z_loss * lse**2``), for every label. A label outside ``[0, V)`` that is not
    ``ignore_class`` names no class: its value is NaN and so are its gradient
    contributions (never another class's score, never a silent 0).

    Tokens go ``chunk_size`` at a time through a ``lax.scan``, so the temporary
    memory grows with ``chunk_size * V``, never with ``N * V``; the label logit is
    picked by comparing each block's column index (an iota) with the label, not by a
    gather or scatter. Within a chunk, the gradient walks the vocabulary in blocks
    and adds each block's ``dweight`` into its slice of the output in place, so no
    weight-sized temporary is formed either (the ``dweight`` accumulator is the
    gradient itself; under ``bfloat16`` it is a float32 copy). The temporaries of
    value and gradient are one ``(chunk_size, V)`` float32 block of logits and a few
    ``(d, vocab block)`` and ``(chunk_size, d)`` buffers (a second block of logits
    only when the gradient with respect to ``logit_soft_cap`` is asked for).

    Args:
      y_true: integer class indices, shape ``(...)`` (``(N,)``, or ``(B, T)`` for a
        transformer); a trailing unit axis (``(..., 1)``) is squeezed.
      hidden: the head's inputs, shape ``(..., d)``, float. ``bfloat16`` inputs are
        multiplied in ``bfloat16`` with ``float32`` accumulation; the
        ``logsumexp``, ``dhidden`` and ``dweight`` accumulate in ``float32``.
      weight: the head's matrix: shape ``(d, V)`` (``weight_layout="dv"``, the
        default: ``hidden @ weight``, a Flax ``nnx.Linear`` kernel), or ``(V, d)``
        (``weight_layout="vd"``: ``hidden @ weight.T``, an embedding table such as
        ``nnx.Embed.embedding`` or PyTorch's ``nn.Linear.weight``, for tied
        embeddings); both are read in place, with no transposed copy. With
        ``axis_name``, this shard's slice of the vocabulary.
      bias: optional, shape ``(V,)`` (``(V_local,)`` with ``axis_name``).
      weight_layout: ``"dv"`` or ``"vd"``, as above.
      chunk_size: tokens per step, a positive int. Default: the power of two
        nearest ``2**23 / V`` within ``[256, 1024]`` (1024 for ``V <= 11585``,
        512 up to ``V = 23170``, 256 beyond), so that one ``(chunk_size, V)``
        float32 block is about 32 MiB, or ``256 V`` floats for large
        vocabularies. Capped at ``N``. Any ``N`` works: the last step takes the
        window that ends at ``N`` and masks the rows that the previous step
        already did (nothing is padded).
      ignore_class: the label of tokens to leave out: value 0, no gradient, not
        counted by the mean reductions (a batch with every token ignored gives 0).
      label_smoothing: a scalar in ``[0, 1]``.
      z_loss: the coefficient ``>= 0`` of ``lse**2``, per valid token; a scalar.
      logit_soft_cap: ``None`` or a scalar ``> 0``.
      class_weight: optional non-negative weights of shape ``(V,)`` (the whole
        vocabulary, also with ``axis_name``): each token's value is multiplied by
        its label's weight, and ``"mean_with_sample_weight"`` divides by the sum of
        the valid tokens' ``sample_weight * class_weight[y]`` (PyTorch's
        ``cross_entropy(weight=...)`` weighted mean); the other reductions divide as
        without it. With label smoothing the whole smoothed value is weighted by
        ``class_weight[y]`` (PyTorch weighs each class of the smoothing part by its own
        weight), as in ``sparse_categorical_crossentropy``.
      sample_weight: per-token weights of the labels' shape or a leading prefix of
        it (``(B,)`` for ``(B, T)`` labels), or a scalar.
      reduction: ``"sum_over_batch_size"`` (the default) and ``"mean"`` divide
        the weighted sum by the number of valid tokens, as Keras does;
        ``"mean_with_sample_weight"`` by the sum of the valid tokens' weights;
        ``"sum"`` not at all; ``"none"`` or ``None`` give the per-token values
        times the weights, of the labels' shape.
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
      values, of the labels' shape, for ``reduction="none"``.

    Gradient: with respect to ``hidden``, ``weight``, ``bias``, ``sample_weight``,
    ``class_weight``, ``label_smoothing``, ``z_loss`` and ``logit_soft_cap``, in the
    input dtypes. With ``p = softmax(z)`` and ``w`` the token's reduction weight,
    ``d loss / d z_j = w [p_j (1 + 2 z_loss lse) - (1 - a) [j = y] - a / V]``,
    times ``1 - (z_j / c)**2`` under the soft cap. It is a ``jax.custom_vjp``
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

    Python numbers for ``label_smoothing``, ``z_loss`` and ``logit_soft_cap`` are
    traced, so a schedule does not recompile; only a Python ``0`` (or ``None`` for
    the cap) removes its term at trace time.

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
      >>> tied = jaxloss.linear_cross_entropy(y, hidden, weight.T, weight_layout="vd")  # (V, d)
      >>> print(f"{float(tied):.5f}")
      1.03804
      >>> per_token = jaxloss.linear_cross_entropy(y, hidden, weight, ignore_class=2, reduction="none")
      >>> print([f"{x:.4f}" for x in per_token.tolist()])
      ['0.4076', '0.4076', '0.0000']
      >>> batch = jaxloss.linear_cross_entropy(y[None], hidden[None], weight, reduction="none")  # (B, T, d)
      >>> batch.shape
      (1, 3)
      >>> dh, dw = jax.grad(lambda h, w: jaxloss.linear_cross_entropy(y, h, w, z_loss=1e-4), (0, 1))(hidden, weight)
      >>> dh.shape, dw.shape
      ((3, 2), (2, 3))
    """
    return _linear_cross_entropy(
        y_true,
        hidden,
        weight,
        bias=bias,
        weight_layout=weight_layout,
        chunk_size=chunk_size,
        ignore_class=ignore_class,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
        class_weight=class_weight,
        sample_weight=sample_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
