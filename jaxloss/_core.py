"""The one path every loss goes through.

A loss is a :class:`LossSpec`: a per-sample formula, its closed-form gradient
and the rules for its inputs. :meth:`LossSpec.evaluate` validates concrete
options and shapes before tracing, casts by the dtype policy, applies Keras's
rank rule, merges ``sample_weight`` and masks, reduces, and runs jitted.
:meth:`LossSpec.closed_form_grad` runs the same path with the hand-written
gradient instead of autodiff.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

Reduction: TypeAlias = Literal["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"] | None
REDUCTIONS: tuple[Any, ...] = (
    "sum_over_batch_size",
    "sum",
    "mean",
    "mean_with_sample_weight",
    "none",
    None,
)
# Keras's backend.epsilon(), used by every clipping rule that Keras has.
EPSILON = 1e-7


# ----------------------------------------------------------------------------
# Validation helpers (concrete values, before tracing)
# ----------------------------------------------------------------------------


def is_concrete(value: Any) -> bool:
    """True when ``value`` is a Python number or a concrete array (not traced)."""
    return not isinstance(value, jax.core.Tracer)


def _is_python_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, (bool, int, float)) and value == value)  # NaN is not hashable-equal


def is_static_zero(value: Any) -> bool:
    """True when ``value`` is a Python 0 or None, known while tracing: its term can be left out."""
    return value is None or (isinstance(value, (bool, int, float)) and value == 0)


def check_number(
    loss: str, name: str, value: Any, low: float | None = None, high: float | None = None, **open_ends: bool
) -> None:
    """A required numeric option (a number or a numeric array, possibly traced) within an interval."""
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{loss}: {name} must be a number; received {name}={value!r}.")
    check_interval(loss, name, value, low, high, **open_ends)


def check_reduction(loss: str, reduction: Any) -> None:
    if not isinstance(reduction, (str, type(None))) or reduction not in REDUCTIONS:
        valid = ", ".join(repr(r) for r in REDUCTIONS)
        raise ValueError(f"{loss}: reduction must be one of {valid}; received reduction={reduction!r}.")


def check_interval(
    loss: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError when a concrete numeric option lies outside an interval.

    Traced values (a schedule inside ``jit``) are not checked.
    """
    if value is None or not is_concrete(value):
        return
    if isinstance(value, bool):
        raise ValueError(f"{loss}: {name} must be a number; received {name}={value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{loss}: {name} must be a number; received {name}={value!r}.") from None
    lo_bad = low is not None and (np.any(arr <= low) if low_open else np.any(arr < low))
    hi_bad = high is not None and (np.any(arr >= high) if high_open else np.any(arr > high))
    if lo_bad or hi_bad or np.any(np.isnan(arr)):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        lo_s = "-inf" if low is None else f"{low:g}"
        hi_s = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{loss}: {name} must lie in {lo}{lo_s}, {hi_s}{hi}; received {name}={value!r}.")


def check_bool(loss: str, name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{loss}: {name} must be True or False; received {name}={value!r}.")


def check_int(loss: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        expected = "an int or None" if allow_none else "an int"
        raise ValueError(f"{loss}: {name} must be {expected}; received {name}={value!r}.")


def canonical_axis(loss: str, axis: Any, ndim: int, name: str = "axis") -> int:
    check_int(loss, name, axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{loss}: {name}={axis} is out of range for an input of rank {ndim}.")
    return axis % ndim


def shape_error(loss: str, message: str, **shapes: tuple[int, ...]) -> ValueError:
    received = ", ".join(f"{k}.shape={tuple(v)}" for k, v in shapes.items())
    return ValueError(f"{loss}: {message}; received {received}.")


def check_equal_shape(loss: str, a: jax.Array, b: jax.Array, a_name: str = "y_true", b_name: str = "y_pred") -> None:
    """Shapes must agree exactly: no silent broadcasting.

    chex does the check; the explicit test below keeps the guard when a user
    has called ``chex.disable_asserts()``.
    """
    err = shape_error(loss, f"{a_name} and {b_name} must have the same shape", **{a_name: a.shape, b_name: b.shape})
    chex.assert_equal_shape([a, b], custom_message=str(err), exception_type=ValueError)
    if a.shape != b.shape:
        raise err


def check_rank(loss: str, x: jax.Array, rank: int | set[int], name: str) -> None:
    ranks = {rank} if isinstance(rank, int) else rank
    err = ValueError(
        f"{loss}: {name} must have rank {' or '.join(map(str, sorted(ranks)))}; received {name}.shape={x.shape}."
    )
    chex.assert_rank(x, ranks, custom_message=str(err), exception_type=ValueError)
    if x.ndim not in ranks:
        raise err


# ----------------------------------------------------------------------------
# Dtype policy and Keras's rank rule
# ----------------------------------------------------------------------------


def compute_dtype(x: jax.Array) -> Any:
    """float32 for half precision and integers, float64 kept under x64."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.promote_types(x.dtype, jnp.float32)
    return jnp.dtype(jnp.float32)


def keras_rank_rule(y_true: jax.Array, y_pred: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: ``(N,)`` against ``(N, 1)``."""
    t, p = y_true.ndim, y_pred.ndim
    if t == p + 1 and y_true.shape[-1] == 1:
        if p == 1:
            y_pred = y_pred[..., None]
        else:
            y_true = jnp.squeeze(y_true, -1)
    elif p == t + 1 and y_pred.shape[-1] == 1:
        if t == 1:
            y_true = y_true[..., None]
        else:
            y_pred = jnp.squeeze(y_pred, -1)
    return y_true, y_pred


def abs_slope(x: jax.Array) -> jax.Array:
    """d|x|/dx with JAX's convention at the kink (1 at 0), so closed forms equal autodiff at ties."""
    return jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def safe_where(
    cond: jax.Array, fn: Callable[[jax.Array], jax.Array], x: jax.Array, fill: float, other: Any
) -> jax.Array:
    """``where(cond, fn(x), other)`` whose gradient stays finite where ``cond`` is false."""
    return jnp.where(cond, fn(jnp.where(cond, x, fill)), other)


# ----------------------------------------------------------------------------
# Sample weights, masks and reductions (Keras's reduce_weighted_values)
# ----------------------------------------------------------------------------


def _broadcast_weight(loss: str, sample_weight: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A weight of the loss's shape or a leading prefix of it, broadcast from the left."""
    sw_shape = tuple(sample_weight.shape)
    if sw_shape == shape + (1,):  # Keras squeezes a trailing unit axis
        return jnp.squeeze(sample_weight, -1)
    if len(sw_shape) <= len(shape) and shape[: len(sw_shape)] == sw_shape:
        sample_weight = sample_weight.reshape(sw_shape + (1,) * (len(shape) - len(sw_shape)))
        return jnp.broadcast_to(sample_weight, shape)
    raise ValueError(
        f"{loss}: sample_weight must have the per-sample loss's shape {shape} or a leading "
        f"prefix of it; received sample_weight.shape={sw_shape}."
    )


@dataclasses.dataclass(frozen=True)
class Weighted:
    """What ``per_sample`` may return in the mask's place: a mask and per-sample weights.

    ``weight`` (the loss's shape) acts as a second ``sample_weight``: it multiplies the
    values after the mask's rescaling, so ``"sum_over_batch_size"`` and ``"mean"`` still
    divide by the number of (valid) samples and ``"mean_with_sample_weight"`` divides by
    the sum of all the weights (PyTorch's weighted mean for class weights).
    """

    mask: jax.Array | None
    weight: jax.Array


def effective_weight(
    loss: str,
    shape: tuple[int, ...],
    dtype: Any,
    sample_weight: jax.Array | None,
    mask: jax.Array | Weighted | None,
    reduction: Reduction,
) -> jax.Array | None:
    """Merge a Keras mask and ``sample_weight`` into one weight of the loss's shape.

    For the mean reductions a mask scales valid entries by ``total / valid`` so
    the mean divides by the number of valid elements, as Keras's ``apply_mask``.
    A :class:`Weighted` mask brings its own per-sample weights, merged as ``sample_weight`` is.
    """
    extra = None
    if isinstance(mask, Weighted):
        mask, extra = mask.mask, mask.weight
    weight = None
    if mask is not None:
        weight = mask.astype(dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            total = float(math.prod(shape))
            valid = jnp.sum(weight)
            weight = weight * jnp.where(valid > 0, total / jnp.where(valid > 0, valid, 1.0), 0.0)
    if sample_weight is not None:
        sw = _broadcast_weight(loss, sample_weight.astype(dtype), shape)
        weight = sw if weight is None else weight * sw
    if extra is not None:
        extra = extra.astype(dtype)
        weight = extra if weight is None else weight * extra
    return weight


def _passthrough(values: jax.Array, reduction: Reduction) -> bool:
    # Keras returns the weighted values unreduced for these (an empty batch included).
    return reduction in (None, "none") or values.ndim == 0 or values.shape == (0,)


def reduce(values: jax.Array, weight: jax.Array | None, reduction: Reduction) -> jax.Array:
    """Keras's ``reduce_values`` on already weighted values."""
    if weight is not None:
        values = values * weight
    if _passthrough(values, reduction):
        return values
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = jnp.sum(weight)
    else:
        divisor = jnp.asarray(float(values.size), values.dtype)
    return jnp.where(divisor != 0, total / jnp.where(divisor != 0, divisor, 1.0), 0.0)


def reduction_cotangent(values: jax.Array, weight: jax.Array | None, reduction: Reduction) -> jax.Array:
    """Closed form of d(reduced loss)/d(values); with ``"none"``, of their sum."""
    cot = jnp.ones_like(values) if weight is None else weight
    if _passthrough(values, reduction) or reduction == "sum":
        return cot
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = jnp.sum(weight)
    else:
        divisor = jnp.asarray(float(values.size), values.dtype)
    return cot * jnp.where(divisor != 0, 1.0 / jnp.where(divisor != 0, divisor, 1.0), 0.0)


# ----------------------------------------------------------------------------
# LossSpec
# ----------------------------------------------------------------------------

PerSample = Callable[..., "tuple[jax.Array, jax.Array | None] | jax.Array"]


def sparse_prepare(spec: LossSpec, y_true: jax.Array, y_pred: jax.Array, opts: Mapping[str, Any]):
    """Integer labels of ``y_pred``'s shape less its last (class) axis; a trailing unit axis is squeezed."""
    if y_pred.ndim < 1:
        raise shape_error(spec.name, "y_pred must have a class axis", y_true=y_true.shape, y_pred=y_pred.shape)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    if y_true.shape != y_pred.shape[:-1]:
        raise shape_error(
            spec.name,
            "y_true must hold one integer label per row of y_pred (y_pred's shape less its last axis)",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    if not jnp.issubdtype(y_true.dtype, jnp.integer):
        y_true = y_true.astype(jnp.int32)
    return y_true, y_pred


def default_prepare(spec: LossSpec, y_true: jax.Array, y_pred: jax.Array, opts: Mapping[str, Any]):
    """Keras's rank rule, then equal shapes of rank >= 1."""
    y_true, y_pred = keras_rank_rule(y_true, y_pred)
    check_equal_shape(spec.name, y_true, y_pred)
    if y_pred.ndim == 0:
        raise shape_error(spec.name, "inputs must have rank >= 1", y_true=y_true.shape, y_pred=y_pred.shape)
    return y_true, y_pred


def _last_axis(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return (ndim - 1,) if ndim else ()


@dataclasses.dataclass(frozen=True, eq=False)
class LossSpec:
    """Everything the shared path needs to know about one loss.

    Attributes:
      name: the public (Keras snake_case) name.
      keras_class: Keras's class name, resolved by ``jaxloss.get``.
      per_sample: ``(y_true, y_pred, **options) -> values`` or ``(values, mask)``, the mask
        possibly a :class:`Weighted` (mask and per-sample weights such as class weights);
        the plain, rule-free formula (after casting and the rank rule).
      local_grad: ``(y_true, y_pred, **options) -> D`` with ``D = d values / d y_pred``
        for losses whose per-sample value reads only its own slice of ``y_pred``;
        ``values`` lives on ``y_pred``'s axes less ``reduced_axes``.
      vjp: ``(y_true, y_pred, cotangent, **options) -> dy_pred``, for losses that mix
        samples (circle); defaults to ``cotangent`` expanded over the reduced axes
        times ``local_grad``.
      reduced_axes: ``(y_pred.ndim, options) -> axes`` summed away by the loss.
      options: every option and its default (Keras's names).
      static: the options that are Python values (axis, flags, ignore_class).
      validate: ``(options) -> None``, raises ValueError on a bad concrete value.
      prepare: rank rule and shape checks; default: Keras's rank rule, equal shapes.
      integer_labels: keep ``y_true`` as integers (never cast to float).
      custom_jvp: carry ``local_grad`` as the ``jax.custom_jvp`` rule of the loss.
      jvp: ``(y_true, y_pred, t_pred, **options) -> (values, tangent)``, the rule's
        values and their tangent along ``t_pred`` in one function, for losses whose
        fastest form shares work between the two (the crossentropies' log-sum-exp);
        it returns None for options it has no such form for. Default (and on None):
        ``per_sample`` and ``sum(local_grad * t_pred)`` over the reduced axes.
    """

    name: str
    keras_class: str | None
    per_sample: PerSample
    options: Mapping[str, Any]
    static: frozenset[str] = frozenset()
    local_grad: Callable[..., jax.Array] | None = None
    vjp: Callable[..., jax.Array] | None = None
    reduced_axes: Callable[[int, Mapping[str, Any]], tuple[int, ...]] = _last_axis
    validate: Callable[[Mapping[str, Any]], None] = lambda opts: None
    prepare: Callable[..., tuple[jax.Array, jax.Array]] = default_prepare
    integer_labels: bool = False
    custom_jvp: bool = False
    jvp: Callable[..., tuple[jax.Array, jax.Array] | None] | None = None
    aliases: tuple[str, ...] = ()

    # -- plumbing ---------------------------------------------------------

    def _check_options(self, options: Mapping[str, Any], reduction: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            valid = ", ".join(sorted(self.options))
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)}; valid options are {valid}.")
        check_reduction(self.name, reduction)
        self.validate({**self.options, **options})

    def _split(self, options: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
        opts = {**self.options, **options}
        # Python numbers (and None) are baked into the program, as jit bakes a closed-over
        # constant: a 0.0 label smoothing or z-loss then drops its term at trace time instead
        # of costing a pass over the logits. Arrays and tracers stay arguments (a schedule
        # or a swept value does not recompile, and their tangents are honoured).
        baked = {k for k, v in opts.items() if k in self.static or _is_python_scalar(v)}
        static = tuple(sorted((k, _hashable(v)) for k, v in opts.items() if k in baked))
        # A list or tuple of numbers (per-class alpha) is one array, not a pytree of scalars.
        numeric = {k: np.asarray(v) if isinstance(v, (list, tuple)) else v for k, v in opts.items() if k not in baked}
        return static, numeric

    def _inputs(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None):
        y_pred = jnp.asarray(y_pred)
        y_true = jnp.asarray(y_true)
        dtype = compute_dtype(y_pred)
        y_pred = y_pred.astype(dtype)
        if not (self.integer_labels and jnp.issubdtype(y_true.dtype, jnp.integer)):
            y_true = y_true.astype(dtype)
        sw = None if sample_weight is None else jnp.asarray(sample_weight).astype(dtype)
        return y_true, y_pred, sw

    def plain_values_and_mask(self, y_true, y_pred, opts: Mapping[str, Any]):
        """The rule-free per-sample values and the mask (None when the loss has none)."""
        out = self.per_sample(y_true, y_pred, **opts)
        return out if isinstance(out, tuple) else (out, None)

    def _weighted_values(self, reduction, y_true, y_pred, sample_weight, opts):
        """Cast, prepare, the rule-free per-sample values and their reduction weight."""
        y_true, y_pred, sw = self._inputs(y_true, y_pred, sample_weight)
        y_true, y_pred = self.prepare(self, y_true, y_pred, opts)
        values, mask = self.plain_values_and_mask(y_true, y_pred, opts)
        weight = effective_weight(self.name, values.shape, values.dtype, sw, mask, reduction)
        return y_true, y_pred, values, weight

    def plain_forward(self, reduction, y_true, y_pred, sample_weight, opts: Mapping[str, Any]) -> jax.Array:
        """The loss from its per-sample formula and the shared reduction, with no custom rule:
        what autodiff of the plain formula differentiates (verify, benchmarks, tests)."""
        _, _, values, weight = self._weighted_values(reduction, y_true, y_pred, sample_weight, opts)
        return reduce(values, weight, reduction)

    def _forward(self, reduction, static, y_true, y_pred, sample_weight, numeric):
        opts = {**dict(static), **numeric}
        y_true, y_pred, values, weight = self._weighted_values(reduction, y_true, y_pred, sample_weight, opts)
        if self.custom_jvp:
            # The same values, carrying the closed form as their JVP rule.
            values = _values_with_rule(self, static, y_true, y_pred, numeric)
        return reduce(values, weight, reduction)

    def _closed_form(self, reduction, static, y_true, y_pred, sample_weight, numeric):
        opts = {**dict(static), **numeric}
        shape, dtype = jnp.shape(y_pred), jnp.asarray(y_pred).dtype
        y_true, y_pred, values, weight = self._weighted_values(reduction, y_true, y_pred, sample_weight, opts)
        cot = reduction_cotangent(values, weight, reduction)
        return self.pullback(y_true, y_pred, cot, opts).reshape(shape).astype(dtype)

    def pullback(self, y_true, y_pred, cot, opts: Mapping[str, Any]) -> jax.Array:
        """Closed-form vector-Jacobian product of the per-sample values."""
        if self.vjp is not None:
            return self.vjp(y_true, y_pred, cot, **opts)
        assert self.local_grad is not None, self.name
        axes = self.reduced_axes(y_pred.ndim, opts)
        return jnp.expand_dims(cot, axes) * self.local_grad(y_true, y_pred, **opts)

    # -- public entry points ---------------------------------------------

    def evaluate(self, y_true, y_pred, sample_weight=None, reduction: Reduction = "sum_over_batch_size", **options):
        self._check_options(options, reduction)
        static, numeric = self._split(options)
        return _jit_forward(self, reduction, static, *_as_arrays(y_true, y_pred, sample_weight), numeric)

    def closed_form_grad(
        self, y_true, y_pred, sample_weight=None, reduction: Reduction = "sum_over_batch_size", **options
    ):
        self._check_options(options, reduction)
        static, numeric = self._split(options)
        return _jit_closed_form(self, reduction, static, *_as_arrays(y_true, y_pred, sample_weight), numeric)


def _as_arrays(y_true, y_pred, sample_weight):
    # jit takes arrays, not lists; tracers pass through.
    def conv(x):
        return x if x is None or isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)

    return conv(y_true), conv(y_pred), conv(sample_weight)


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(v)
    return v


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_forward(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    return spec._forward(reduction, static, y_true, y_pred, sample_weight, numeric)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_closed_form(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    return spec._closed_form(reduction, static, y_true, y_pred, sample_weight, numeric)


REGISTRY: dict[str, tuple[LossSpec, Callable[..., jax.Array]]] = {}


def register(spec: LossSpec) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator: record a public loss function with its spec for ``get`` and the gradients."""

    def deco(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        if spec.name in REGISTRY:
            raise RuntimeError(f"loss {spec.name!r} registered twice")
        REGISTRY[spec.name] = (spec, fn)
        return fn

    return deco


# ----------------------------------------------------------------------------
# The closed form as a custom JVP rule
# ----------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _values_with_rule(spec, static, y_true, y_pred, numeric):
    return spec.plain_values_and_mask(y_true, y_pred, {**dict(static), **numeric})[0]


def _is_zero(t: Any) -> bool:
    return isinstance(t, SymbolicZero) or (hasattr(t, "dtype") and t.dtype == jax.dtypes.float0)


@functools.partial(_values_with_rule.defjvp, symbolic_zeros=True)
def _values_rule(spec, static, primals, tangents):
    y_true, y_pred, numeric = primals
    t_true, t_pred, t_numeric = tangents
    opts = {**dict(static), **numeric}
    shared = None if _is_zero(t_pred) or spec.jvp is None else spec.jvp(y_true, y_pred, t_pred, **opts)
    if shared is not None:
        values, tangent = shared
    else:
        values = _values_with_rule(spec, static, y_true, y_pred, numeric)
        if _is_zero(t_pred):
            tangent = jnp.zeros_like(values)
        else:
            axes = spec.reduced_axes(y_pred.ndim, opts)
            tangent = jnp.sum(spec.local_grad(y_true, y_pred, **opts) * t_pred, axis=axes)
    # Tangents of targets and numeric options are rare (distillation, schedules):
    # derive them from the plain formula, only when they are not symbolically zero.
    live = {k: t for k, t in t_numeric.items() if not _is_zero(t)}
    if not _is_zero(t_true) or live:

        def plain(yt, num):
            return spec.plain_values_and_mask(yt, y_pred, {**dict(static), **numeric, **num})[0]

        yt_tan = jnp.zeros_like(y_true) if _is_zero(t_true) else t_true
        if _is_zero(t_true) and not jnp.issubdtype(y_true.dtype, jnp.floating):
            _, extra = jax.jvp(lambda num: plain(y_true, num), ({k: numeric[k] for k in live},), (live,))
        else:
            _, extra = jax.jvp(plain, (y_true, {k: numeric[k] for k in live}), (yt_tan, live))
        tangent = tangent + extra
    return values, tangent
