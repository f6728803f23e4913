"""The one path every loss goes through, and the declaration that feeds it.

A loss is declared once, by :func:`register` on its public function: the
function's signature gives the option names, defaults and types (each option's
*kind* rides on its annotation: :class:`Static`, :class:`Scalar`,
:class:`PerClass`, :class:`ArrayOption`), and the decorator's arguments give the
per-sample formula, the closed-form gradient and how it is used, the input
domains, the examples worth checking and the peers to compare with. The
decorator records a :class:`LossSpec` in :data:`REGISTRY` and returns a wrapper
with the function's own signature (for type checkers too) that validates
options and inputs before tracing, then runs one jitted program: cast by the
dtype policy, Keras's rank rule, the formula (carrying its closed form as a
``jax.custom_jvp`` rule where declared), ``sample_weight`` and masks, Keras's
reduction. Every other part of jaxloss (``get``, the gradient helpers,
``checked``, ``verify``, the tests, the benchmarks) reads the registry.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, ParamSpec, TypeAlias, TypeVar

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jax.custom_derivatives import SymbolicZero
from jax.interpreters.partial_eval import DynamicJaxprTracer
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

P = ParamSpec("P")
R = TypeVar("R")


# ----------------------------------------------------------------------------
# Option kinds: what an option is, read from its annotation
# ----------------------------------------------------------------------------


def _removes_term(value: float) -> bool:
    return value == 0


@dataclasses.dataclass(frozen=True)
class Static:
    """A Python value compiled into the program: a flag, an int, an axis or axes, a choice.

    ``kind`` is ``"bool"``, ``"int"``, ``"axis"`` (an int, checked against the input's
    rank), ``"axes"`` (None, an int or a tuple of ints), ``"name"`` (any hashable value,
    such as a mesh axis name) or ``"choice"`` (one of ``choices``, from a ``Literal``
    annotation); ``choices`` restricts the
    value (read from a ``Literal`` annotation); ``low`` bounds an int from below;
    ``optional`` allows None.
    """

    kind: str
    choices: tuple[Any, ...] = ()
    low: int | None = None
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class Scalar:
    """A real number in an interval. Traced, as ``jax.jit`` traces a Python scalar, so a
    schedule does not recompile; only a Python value for which ``bake`` holds (0 by
    default: the term drops out) is compiled into the program. ``optional`` allows None
    (which removes the term)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    bake: Callable[[float], bool] = _removes_term


@dataclasses.dataclass(frozen=True)
class PerClass:
    """One non-negative (by default) value per class, shape ``(C,)`` along the class axis
    (``axis``: the name of the loss's axis option, or an int); ``scalar`` also allows one
    number for every class. None (the default) means none."""

    low: float | None = 0.0
    high: float | None = None
    scalar: bool = False
    axis: str | int = "axis"


@dataclasses.dataclass(frozen=True)
class ArrayOption:
    """An array whose shape depends on the inputs (a mask, per-sample variances, lengths,
    references): the loss's ``prepare`` checks its shape; ``domain`` its values under
    ``checked()``; ``dtype`` is ``"float"``, ``"bool"`` or ``"int"``."""

    domain: Any = None
    dtype: str = "float"
    optional: bool = True


Kind: TypeAlias = Static | Scalar | PerClass | ArrayOption

# The annotations public signatures use: type checkers see the first argument, the
# registry reads the kind.
Number: TypeAlias = float | ArrayLike
Flag: TypeAlias = Annotated[bool, Static("bool")]
Axis: TypeAlias = Annotated[int, Static("axis")]
Axes: TypeAlias = Annotated[int | tuple[int, ...] | None, Static("axes", optional=True)]
IgnoreClass: TypeAlias = Annotated[int | None, Static("int", optional=True)]
RealNumber: TypeAlias = Annotated[Number, Scalar()]
Positive: TypeAlias = Annotated[Number, Scalar(0.0, low_open=True)]
NonNegative: TypeAlias = Annotated[Number, Scalar(0.0)]
Fraction: TypeAlias = Annotated[Number, Scalar(0.0, 1.0)]
ClassWeights: TypeAlias = Annotated[ArrayLike | None, PerClass()]
SampleWeight: TypeAlias = ArrayLike | None


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    kind: Kind
    default: Any  # inspect.Parameter.empty for a required option


# ----------------------------------------------------------------------------
# Validation helpers (concrete values, before tracing)
# ----------------------------------------------------------------------------


def is_concrete(value: Any) -> bool:
    """True when ``value`` is a Python number or a concrete array (not traced)."""
    return not isinstance(value, Tracer)


def is_static_zero(value: Any) -> bool:
    """True when ``value`` is a Python 0 or None, known while tracing: its term can be left out."""
    return value is None or (isinstance(value, (bool, int, float)) and value == 0)


def _interval_text(low, high, low_open, high_open) -> str:
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    return f"{lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"


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
    """Raise ValueError when a concrete numeric option lies outside an interval (or is NaN).

    Traced values (a schedule inside ``jit``) are not checked.
    """
    if value is None or not is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    lo_bad = low is not None and (np.any(arr <= low) if low_open else np.any(arr < low))
    hi_bad = high is not None and (np.any(arr >= high) if high_open else np.any(arr > high))
    if lo_bad or hi_bad or np.any(np.isnan(arr)):
        interval = _interval_text(low, high, low_open, high_open)
        raise ValueError(f"{loss}: {name} must lie in {interval}; received {name}={_shown(value)}.")


def _shown(value: Any) -> str:
    if hasattr(value, "shape") and np.ndim(value) > 0:
        return f"an array of shape {tuple(np.shape(value))}"
    return repr(value.item() if hasattr(value, "item") and np.ndim(value) == 0 and is_concrete(value) else value)


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


def check_bool(loss: str, name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{loss}: {name} must be True or False; received {name}={value!r}.")


def check_int(loss: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        expected = "an int or None" if allow_none else "an int"
        raise ValueError(f"{loss}: {name} must be {expected}; received {name}={value!r}.")


def canonical_axis(loss: str, axis: Any, ndim: int, name: str = "axis") -> int:
    check_int(loss, name, axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{loss}: {name}={axis} is out of range for an input of rank {ndim}.")
    return axis % ndim


def canonical_axes(loss: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """The sorted, non-negative axes that ``axis`` (None, an int or a tuple) names at rank ``ndim``."""
    if axis is None:
        return tuple(range(ndim))
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if not -ndim <= a < ndim:
            raise ValueError(f"{loss}: axis={axis!r} is out of range for an input of rank {ndim}.")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{loss}: axis={axis!r} names the same axis twice.")
    return tuple(sorted(out))


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


def _check_static(loss: str, name: str, kind: Static, value: Any) -> Any:
    if value is None and kind.optional:
        return None
    if kind.kind == "bool":
        check_bool(loss, name, value)
        return bool(value)
    if kind.kind in ("int", "axis"):
        check_int(loss, name, value, allow_none=kind.optional)
        value = int(typing.cast(int, value))
        if kind.low is not None and value < kind.low:
            raise ValueError(f"{loss}: {name} must be an int >= {kind.low}; received {name}={value!r}.")
    elif kind.kind == "axes":
        items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if not items or any(isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) for a in items):
            raise ValueError(
                f"{loss}: {name} must be None, an int or a non-empty tuple of ints; received {name}={value!r}."
            )
        ints = typing.cast(tuple[int, ...], items)
        value = tuple(int(a) for a in ints) if isinstance(value, (tuple, list)) else int(ints[0])
    elif kind.kind == "name":
        try:
            hash(value)
        except TypeError:
            raise ValueError(f"{loss}: {name} must be hashable (a name); received {name}={value!r}.") from None
    if isinstance(value, (float, np.floating)) and kind.choices and all(type(c) is int for c in kind.choices):
        # 1.0 == 1, but a float where the signature says Literal[1, 2] is a type error, not a choice.
        raise ValueError(f"{loss}: {name} must be an int; received {name}={value!r}.")
    if kind.choices and (isinstance(value, (bool, np.bool_)) or value not in kind.choices):
        valid = ", ".join(map(repr, kind.choices))
        raise ValueError(f"{loss}: {name} must be one of {valid}; received {name}={value!r}.")
    return value


def _real_dtype(loss: str, name: str, value: Any, what: str) -> None:
    dtype = np.result_type(value) if not hasattr(value, "dtype") else np.dtype(value.dtype)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating) or dtype == np.bool_):
        raise ValueError(f"{loss}: {name} must be {what}; received {name} of dtype {dtype}.")
    if dtype == np.bool_:
        raise ValueError(f"{loss}: {name} must be {what}; received {name}={_shown(value)} of dtype bool.")


def _check_scalar(loss: str, name: str, kind: Scalar, value: Any) -> Any:
    what = "a number" if not kind.optional else "a number or None"
    if value is None:
        if kind.optional:
            return None
        raise ValueError(f"{loss}: {name} must be {what}; received {name}=None.")
    if isinstance(value, (bool, np.bool_, str, bytes, complex)) or isinstance(value, (list, tuple, dict)):
        shown = f"a {type(value).__name__} of length {len(value)}" if isinstance(value, (list, tuple)) else repr(value)
        raise ValueError(f"{loss}: {name} must be {what} (a scalar); received {name}={shown}.")
    if not isinstance(value, (int, float)):
        try:
            ndim = np.ndim(value)
        except Exception:
            raise ValueError(f"{loss}: {name} must be {what}; received {name}={value!r}.") from None
        if ndim != 0:
            raise ValueError(
                f"{loss}: {name} must be a scalar; received {name} of shape {tuple(np.shape(value))} "
                "(an option is one number unless documented as per-class or per-sample)."
            )
        _real_dtype(loss, name, value, what)
    check_interval(loss, name, value, kind.low, kind.high, low_open=kind.low_open, high_open=kind.high_open)
    return value


def _check_per_class(loss: str, name: str, kind: PerClass, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{loss}: {name} must be numbers, one per class; received {name}={value!r}.") from None
    if isinstance(value, (bool, str, bytes, complex)):
        raise ValueError(f"{loss}: {name} must be numbers, one per class; received {name}={value!r}.")
    if isinstance(value, (int, float)):
        value = np.asarray(value, np.float64)
    ndim = np.ndim(value)
    if ndim > 1 or (ndim == 0 and not kind.scalar):
        expected = "a scalar or a vector (C,)" if kind.scalar else "a vector of shape (C,), one value per class"
        raise ValueError(f"{loss}: {name} must be {expected}; received {name} of shape {tuple(np.shape(value))}.")
    _real_dtype(loss, name, value, "real numbers")
    check_interval(loss, name, value, kind.low, kind.high)
    return value


def _check_array_option(loss: str, name: str, kind: ArrayOption, value: Any) -> Any:
    if value is None:
        if kind.optional:
            return None
        raise ValueError(f"{loss}: {name} is required (an array); received {name}=None.")
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{loss}: {name} must be an array; received {name}={value!r}.")
    if isinstance(value, (list, tuple, bool, int, float)):
        value = as_input(loss, name, value)
    dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.result_type(value)
    if jnp.issubdtype(dtype, jnp.complexfloating) or not (jnp.issubdtype(dtype, jnp.number) or dtype == np.bool_):
        raise TypeError(f"{loss}: {name} must be a real-valued array; received {name} of dtype {dtype}.")
    if kind.dtype == "int" and is_concrete(value):
        arr = np.asarray(value)
        if arr.dtype == np.bool_ or not np.all(np.mod(np.asarray(arr, np.float64), 1) == 0):
            raise ValueError(f"{loss}: {name} must hold integers; received {name}={value!r}.")
    if kind.domain is not None and is_concrete(value) and hasattr(kind.domain, "check_host"):
        kind.domain.check_host(loss, name, value)
    return value


def check_option(loss: str, option: Option, value: Any) -> Any:
    """Validate one option by its kind (before tracing); returns it normalized (lists become arrays)."""
    kind = option.kind
    if isinstance(kind, Static):
        return _check_static(loss, option.name, kind, value)
    if isinstance(kind, Scalar):
        return _check_scalar(loss, option.name, kind, value)
    if isinstance(kind, PerClass):
        return _check_per_class(loss, option.name, kind, value)
    return _check_array_option(loss, option.name, kind, value)


# ----------------------------------------------------------------------------
# Array inputs: real-valued arrays, named in every error
# ----------------------------------------------------------------------------


def as_input(loss: str, name: str, x: Any) -> Any:
    """``x`` as an array the loss can read, or a TypeError/ValueError naming the loss and the argument.

    Arrays and tracers pass through (their dtype checked); Python numbers and nested
    lists become numpy arrays. Complex values (whose imaginary part would be dropped),
    strings, objects, None and ragged lists are refused.
    """
    if x is None:
        raise TypeError(f"{loss}: {name} must be an array; received None.")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{loss}: {name} must be a real-valued array; received a string {x!r}.")
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError):
            raise ValueError(
                f"{loss}: {name} must be a rectangular array of numbers; received a {type(x).__name__} "
                "that is ragged or holds something other than numbers."
            ) from None
    dtype = np.dtype(x.dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"{loss}: {name} must be real-valued; received {name} of dtype {dtype} (the imaginary part would be dropped)."
        )
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating) or dtype == np.bool_):
        raise TypeError(f"{loss}: {name} must be a real-valued array; received {name} of dtype {dtype}.")
    return x


# ----------------------------------------------------------------------------
# Dtype policy and Keras's rank rule
# ----------------------------------------------------------------------------


def compute_dtype(x: jax.Array) -> Any:
    """float32 for half precision, integers and booleans; float64 kept under x64."""
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
    """d|x|/dx with JAX's convention at the kink (1 at 0), so closed forms equal autodiff at
    ties; NaN at NaN (``jnp.abs``'s own derivative gives -1 there)."""
    return jnp.where(x >= 0, 1.0, jnp.where(x < 0, -1.0, x)).astype(x.dtype)


@jax.custom_jvp
def nan_abs(x: jax.Array) -> jax.Array:
    """``|x|`` whose derivative is :func:`abs_slope`: NaN at NaN, so autodiff shows a NaN input."""
    return jnp.abs(x)


@nan_abs.defjvp
def _nan_abs_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.abs(x), abs_slope(x) * t


def safe_where(
    cond: jax.Array, fn: Callable[[jax.Array], jax.Array], x: jax.Array, fill: float, other: Any
) -> jax.Array:
    """``where(cond, fn(x), other)`` whose gradient stays finite where ``cond`` is false."""
    return jnp.where(cond, fn(jnp.where(cond, x, fill)), other)


def last_axis(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    return (ndim - 1,) if ndim else ()


def option_axis(ndim: int, opts: Mapping[str, Any]) -> tuple[int, ...]:
    """The ``axis`` option's axis, for losses that reduce over it."""
    return (opts["axis"] % ndim,)


def width(x: jax.Array) -> float:
    """The size of the last axis, the divisor of a mean over it."""
    return float(x.shape[-1])


# ----------------------------------------------------------------------------
# Integer labels: one rule for every loss that reads class indices
# ----------------------------------------------------------------------------


class Labels(typing.NamedTuple):
    """Integer labels read against ``classes``.

    ``index`` is safe to gather with (0 where the label names no class); ``named`` holds
    where the label is an integer in ``[0, classes)``; ``ignored`` where it equals
    ``ignore_class`` (None without one). A label that names no class and is not ignored
    (out of range, a non-integral or NaN float) gives NaN: never another class's score.
    """

    index: jax.Array
    named: jax.Array
    ignored: jax.Array | None

    @property
    def nan(self) -> jax.Array:
        """Where the loss must be NaN."""
        return ~self.named if self.ignored is None else ~self.named & ~self.ignored


def class_labels(y_true: jax.Array, classes: int, ignore_class: int | None = None) -> Labels:
    if jnp.issubdtype(y_true.dtype, jnp.integer):
        named = (y_true >= 0) & (y_true < classes)
        index = jnp.where(named, y_true, 0).astype(jnp.int32)
    else:
        # Float labels (Keras style) name a class only when integral: 2.7 or NaN names none.
        named = (y_true == jnp.floor(y_true)) & (y_true >= 0) & (y_true < classes)
        index = jnp.where(named, y_true, 0).astype(jnp.int32)
    ignored = None if ignore_class is None else y_true == ignore_class
    return Labels(index, named, ignored)


def nan_where(bad: jax.Array | None, values: jax.Array) -> jax.Array:
    """``values`` with NaN where ``bad`` (a label that names no class, broadcast from the left).

    A product, not a select: autodiff of the result is NaN there too, so the gradient shows
    the bad label as the value does.
    """
    if bad is None:
        return values
    bad = bad.reshape(bad.shape + (1,) * (values.ndim - bad.ndim))
    return values * jnp.where(bad, jnp.nan, 1.0).astype(values.dtype)


# ----------------------------------------------------------------------------
# Sample weights, masks and reductions (Keras's reduce_weighted_values)
# ----------------------------------------------------------------------------


def broadcast_weight(loss: str, sample_weight: jax.Array, shape: tuple[int, ...]) -> jax.Array:
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
    """What a loss's ``mask`` may return: a mask and per-sample weights.

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
        sw = broadcast_weight(loss, sample_weight.astype(dtype), shape)
        weight = sw if weight is None else weight * sw
    if extra is not None:
        extra = extra.astype(dtype)
        weight = extra if weight is None else weight * extra
    return weight


def _passthrough(values: jax.Array, reduction: Reduction) -> bool:
    # Keras returns the weighted values unreduced for these (an empty batch included).
    return reduction in (None, "none") or values.ndim == 0 or values.shape == (0,)


def _inverse_divisor(values: jax.Array, weight: jax.Array | None, reduction: Reduction) -> Any:
    """1 / the mean's divisor, 0 where it is 0 (no valid sample); None for the static count."""
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = jnp.sum(weight)
        return jnp.where(divisor != 0, 1.0 / jnp.where(divisor != 0, divisor, 1.0), 0.0)
    return None  # the static count: divide by values.size (never 0 here: an empty batch passes through)


def reduce(values: jax.Array, weight: jax.Array | None, reduction: Reduction) -> jax.Array:
    """Keras's ``reduce_values`` on already weighted values."""
    if weight is not None:
        values = values * weight
    if _passthrough(values, reduction):
        return values
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    inverse = _inverse_divisor(values, weight, reduction)
    if inverse is None:  # the static count; 0 for values of a shape like (0, T): their mean is 0
        return total / values.size if values.size else total
    return total * inverse


def reduction_cotangent(values: jax.Array, weight: jax.Array | None, reduction: Reduction) -> jax.Array:
    """Closed form of d(reduced loss)/d(values); with ``"none"``, of their sum."""
    cot = jnp.ones_like(values) if weight is None else weight
    if _passthrough(values, reduction) or reduction == "sum":
        return cot
    inverse = _inverse_divisor(values, weight, reduction)
    if inverse is None:
        return cot / values.size if values.size else cot
    return cot * inverse


# ----------------------------------------------------------------------------
# The declaration
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Example:
    """An option set worth checking, with the inputs to check it on.

    ``shape`` is ``y_pred``'s shape (``true_shape`` ``y_true``'s, where Keras's rank rule
    makes them differ); the inputs come from the loss's domains (``inputs`` overrides them
    for drawing: hard labels where the domain allows soft ones) unless ``draw``
    (``rng -> (y_true, y_pred)``) writes them by hand (CTC lengths, ``where`` masks).
    ``keras``: Keras computes the same number on these inputs (False for a deliberate
    difference, tested beside the loss); ``peers``: so do the loss's optax and PyTorch
    peers. ``smooth``: twice differentiable at random inputs (second-order checks apply).
    """

    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    shape: tuple[int, ...] = (6, 5)
    true_shape: tuple[int, ...] | None = None
    inputs: Mapping[str, Any] | None = None
    draw: Callable[[np.random.Generator], tuple[Any, ...]] | None = None
    keras: bool = True
    peers: bool = True
    smooth: bool = True
    label: str = ""

    @property
    def id(self) -> str:
        def short(v: Any) -> str:
            return f"<{'x'.join(map(str, np.shape(v)))}>" if np.ndim(v) > 0 and not isinstance(v, tuple) else str(v)

        opts = ",".join(f"{k}={short(v)}" for k, v in self.options.items())
        return f"[{opts}]{self.label}"


@dataclasses.dataclass(frozen=True)
class Peer:
    """Another library's equal: ``fn(y_true, y_pred, **options)`` gives the per-sample values
    that jaxloss returns with ``reduction="none"``, for the option sets where ``applies``."""

    library: str  # "optax" or "torch"
    fn: Callable[..., Any]
    text: str
    applies: Callable[[Mapping[str, Any]], bool] = lambda options: True


# The stream-floor target classes of the benchmark: <= 3x the floor for polynomial losses,
# <= 5x for transcendental ones.
POLYNOMIAL, TRANSCENDENTAL = "polynomial", "transcendental"


@dataclasses.dataclass(frozen=True)
class Bench:
    """How the benchmark runs a loss: ``options``, ``shape(elements) -> y_pred's shape``,
    ``family`` (the stream-floor target class) and ``max_elements`` (pairwise or
    sequential losses stop there)."""

    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    shape: Callable[[int], tuple[int, ...]] | None = None
    family: str | None = None
    max_elements: int | None = None


@dataclasses.dataclass(frozen=True)
class Stack:
    """A loss that compares two arrays (``x1, x2``; ``positive, negative``) stacks them into
    ``y_pred`` along ``axis``. ``same_as_first``: the first array has their shape (an
    anchor, a target per element); otherwise their shape less the last axis."""

    axis: int
    same_as_first: bool = True


PerSample = Callable[..., Any]


@dataclasses.dataclass(frozen=True, eq=False)
class LossSpec:
    """Everything the shared path, and every part of jaxloss, knows about one loss.

    Built by :func:`register` from the public function and the declaration; see there.
    """

    name: str
    function: Callable[..., Any]
    signature: inspect.Signature
    arrays: tuple[str, ...]  # the positional array arguments, in order
    options: Mapping[str, Option]
    formula: PerSample
    gradient: Literal["rule", "reference"]
    local_grad: Callable[..., jax.Array] | None
    vjp: Callable[..., jax.Array] | None
    jvp: Callable[..., Any] | None
    mask: Callable[..., jax.Array | Weighted | None] | None
    inputs: Mapping[str, Any]
    examples: tuple[Example, ...]
    prepare: Callable[..., tuple[jax.Array, jax.Array]]
    reduced_axes: Callable[[int, Mapping[str, Any]], tuple[int, ...]]
    keras_class: str | None
    keras_options: Callable[[dict[str, Any]], dict[str, Any]] | None
    aliases: tuple[str, ...]
    requires: Mapping[str, tuple[str, Any]]
    peers: tuple[Peer, ...]
    stack: Stack | None
    bench: Bench | None
    # A loss whose public function computes it itself (linear_cross_entropy's chunked kernel):
    # the registry knows its signature, options, domains and examples; ``reference`` computes the
    # same loss plainly (for verify), from the same arguments.
    direct: bool = False
    reference: Callable[..., Any] | None = None
    classes: Callable[[Sequence[Any], Mapping[str, Any]], int] | None = None

    # -- declaration-derived facts ------------------------------------------

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: o.default for k, o in self.options.items() if o.default is not inspect.Parameter.empty}

    @property
    def custom_jvp(self) -> bool:
        return self.gradient == "rule"

    def domain(self, role: str, options: Mapping[str, Any]) -> Any:
        """The input domain of ``"y_true"`` or ``"y_pred"`` under these options."""
        domain = self.inputs[role]
        return domain({**self.defaults, **options}) if callable(domain) and not hasattr(domain, "draw") else domain

    @property
    def required_arrays(self) -> tuple[str, ...]:
        """The positional arrays a call needs (a stacked form leaves the last one out)."""
        params = self.signature.parameters
        return tuple(n for n in self.arrays if params[n].default is inspect.Parameter.empty)

    @property
    def integer_labels(self) -> bool:
        return bool(getattr(self.domain("y_true", self.defaults), "integer", False))

    # -- options -----------------------------------------------------------

    def check_options(self, options: Mapping[str, Any], reduction: Any = "sum_over_batch_size") -> dict[str, Any]:
        """Validate names, kinds and requirements before tracing; returns every option, normalized."""
        unknown = set(options) - set(self.options)
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)}; valid options are {valid}.")
        check_reduction(self.name, reduction)
        merged = {**self.defaults, **options}
        missing = [k for k in self.options if k not in merged]
        if missing:
            raise TypeError(f"{self.name}: missing required option(s) {missing}.")
        out = {k: check_option(self.name, self.options[k], v) for k, v in merged.items()}
        for name, (flag, needed) in self.requires.items():
            if out[flag] != needed and not _equals_default(out[name], self.options[name].default):
                raise ValueError(
                    f"{self.name}: {name} acts only with {flag}={needed!r} and would be ignored; received "
                    f"{name}={_shown(out[name])} with {flag}={out[flag]!r} (leave it at its default)."
                )
        return out

    def split(self, opts: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
        """Options compiled into the program (static, hashable) and options traced (numeric)."""
        static, numeric = [], {}
        for k, v in opts.items():
            kind = self.options[k].kind
            if isinstance(kind, Static) or v is None:
                static.append((k, v))
            elif isinstance(kind, Scalar) and isinstance(v, (int, float)) and kind.bake(v):
                static.append((k, float(v)))
            elif isinstance(kind, Scalar) and isinstance(v, int):
                numeric[k] = float(v)  # traced as a weakly typed float, never as an integer
            else:
                numeric[k] = v
        return tuple(sorted(static)), numeric

    # -- inputs ------------------------------------------------------------

    def core_arrays(self, arrays: Sequence[Any]) -> tuple[Any, Any]:
        """The public positional arrays as ``(y_true, y_pred)``, every one checked."""
        if self.stack is not None and len(arrays) == 3 and arrays[2] is not None:
            first, a, b = (as_input(self.name, n, x) for n, x in zip(self.arrays, arrays, strict=True))
            return first, self._stacked(first, a, b)
        names = self.arrays[:2]
        return tuple(as_input(self.name, n, x) for n, x in zip(names, arrays[:2], strict=True))  # type: ignore[return-value]

    def _stacked(self, first: Any, a: Any, b: Any) -> jax.Array:
        n0, n1, n2 = self.arrays
        shapes = {n0: np.shape(first), n1: np.shape(a), n2: np.shape(b)}
        if np.shape(a) != np.shape(b):
            raise shape_error(self.name, f"{n1} and {n2} must have the same shape", **shapes)
        if self.stack.same_as_first:  # type: ignore[union-attr]
            if np.shape(first) != np.shape(a) or np.ndim(first) < 1:
                raise shape_error(self.name, f"{n0}, {n1} and {n2} must have the same shape of rank >= 1", **shapes)
        elif np.ndim(a) < 1 or np.shape(first) != np.shape(a)[:-1]:
            raise shape_error(
                self.name, f"{n1} and {n2} must have shape (..., D) and {n0} their shape less the last axis", **shapes
            )
        return jnp.stack([jnp.asarray(a), jnp.asarray(b)], axis=self.stack.axis)  # type: ignore[union-attr]

    def cast(self, y_true: Any, y_pred: Any, sample_weight: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """The dtype policy: compute in ``promote(y_pred, float32)``; integer labels stay integers."""
        y_pred = jnp.asarray(y_pred)
        y_true = jnp.asarray(y_true)
        dtype = compute_dtype(y_pred)
        y_pred = y_pred.astype(dtype)
        if self.integer_labels:
            if jnp.issubdtype(y_true.dtype, jnp.bool_):
                y_true = y_true.astype(jnp.int32)
            elif jnp.issubdtype(y_true.dtype, jnp.floating):
                y_true = y_true.astype(jnp.promote_types(y_true.dtype, jnp.float32))
        else:
            y_true = y_true.astype(dtype)
        sw = None if sample_weight is None else jnp.asarray(sample_weight).astype(dtype)
        return y_true, y_pred, sw

    # -- the per-sample values ---------------------------------------------

    def values_and_mask(self, y_true, y_pred, opts: Mapping[str, Any]):
        """The rule-free per-sample values and the loss's mask (None when it has none)."""
        values = self.formula(y_true, y_pred, **opts)
        return values, self._mask(y_true, y_pred, values, opts)

    def _mask(self, y_true, y_pred, values, opts):
        return None if self.mask is None else self.mask(y_true, y_pred, values, **opts)

    def _prepared(self, y_true, y_pred, sample_weight, opts):
        y_true, y_pred, sw = self.cast(y_true, y_pred, sample_weight)
        y_true, y_pred = self.prepare(self, y_true, y_pred, opts)
        _check_class_options(self, y_pred, opts)
        return y_true, y_pred, sw

    def plain_forward(self, reduction, y_true, y_pred, sample_weight, opts: Mapping[str, Any]) -> jax.Array:
        """The loss from its per-sample formula and the shared reduction, with no custom rule:
        what autodiff of the plain formula differentiates (verify, benchmarks, tests)."""
        y_true, y_pred, sw = self._prepared(y_true, y_pred, sample_weight, opts)
        values, mask = self.values_and_mask(y_true, y_pred, opts)
        weight = effective_weight(self.name, values.shape, values.dtype, sw, mask, reduction)
        return reduce(values, weight, reduction)

    def _forward(self, reduction, static, y_true, y_pred, sample_weight, numeric):
        opts = {**dict(static), **numeric}
        y_true, y_pred, sw = self._prepared(y_true, y_pred, sample_weight, opts)
        if self.custom_jvp:
            # The formula is traced once, inside the rule's primal; the mask reads the inputs.
            values = _values_with_rule(self, static, y_true, y_pred, numeric)
            mask = self._mask(y_true, y_pred, values, opts)
        else:
            values, mask = self.values_and_mask(y_true, y_pred, opts)
        weight = effective_weight(self.name, values.shape, values.dtype, sw, mask, reduction)
        return reduce(values, weight, reduction)

    def _closed_form(self, reduction, static, y_true, y_pred, sample_weight, numeric):
        opts = {**dict(static), **numeric}
        shape, dtype = jnp.shape(y_pred), jnp.asarray(y_pred).dtype
        y_true, y_pred, sw = self._prepared(y_true, y_pred, sample_weight, opts)
        values, mask = self.values_and_mask(y_true, y_pred, opts)
        weight = effective_weight(self.name, values.shape, values.dtype, sw, mask, reduction)
        cot = reduction_cotangent(values, weight, reduction)
        return self.pullback(y_true, y_pred, cot, opts).reshape(shape).astype(dtype)

    def pullback(self, y_true, y_pred, cot, opts: Mapping[str, Any]) -> jax.Array:
        """Closed-form vector-Jacobian product of the per-sample values."""
        if self.vjp is not None:
            return self.vjp(y_true, y_pred, cot, **opts)
        assert self.local_grad is not None, self.name
        axes = self.reduced_axes(y_pred.ndim, opts)
        return jnp.expand_dims(cot, axes) * self.local_grad(y_true, y_pred, **opts)

    # -- entry points --------------------------------------------------------

    def prepare_call(self, arrays, sample_weight, reduction, options):
        """Everything before tracing: ``(static, y_true, y_pred, sample_weight, numeric)``."""
        opts = self.check_options(options, reduction)
        y_true, y_pred = self.core_arrays(arrays)
        sw = None if sample_weight is None else as_input(self.name, "sample_weight", sample_weight)
        static, numeric = self.split(opts)
        return static, *_as_arrays(y_true, y_pred, sw), numeric

    def evaluate(self, arrays, sample_weight=None, reduction: Reduction = "sum_over_batch_size", **options):
        static, y_true, y_pred, sw, numeric = self.prepare_call(arrays, sample_weight, reduction, options)
        if _staged(y_true, y_pred, sw, numeric):
            # Inside the caller's jit: a nested jit would only add a call boundary to its program.
            return self._forward(reduction, static, y_true, y_pred, sw, numeric)
        # Concrete inputs, or an eager transformation (jax.grad, vmap, jacfwd outside jit):
        # the compiled program, so the transformation does not run the formula op by op.
        return _jit_forward(self, reduction, static, y_true, y_pred, sw, numeric)

    def closed_form_grad(self, arrays, sample_weight=None, reduction: Reduction = "sum_over_batch_size", **options):
        static, y_true, y_pred, sw, numeric = self.prepare_call(arrays, sample_weight, reduction, options)
        return _jit_closed_form(self, reduction, static, y_true, y_pred, sw, numeric)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]):
        """A call's arguments as ``(arrays, sample_weight, reduction, options)``, by the public signature."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            valid = ", ".join([*self.options, "sample_weight", "reduction"])
            raise TypeError(f"{self.name}: {err} (arrays {', '.join(self.arrays)}; options {valid}).") from None
        a = bound.arguments
        arrays = tuple(a.get(n) for n in self.arrays)
        options = {k: a[k] for k in self.options if k in a}
        return arrays, a.get("sample_weight"), a.get("reduction", "sum_over_batch_size"), options

    def draw(
        self, example: Example, rng: np.random.Generator, *, shape: tuple[int, ...] | None = None, extreme: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``(y_true, y_pred)`` for ``example`` from the loss's domains (``shape``: ``y_pred``'s)."""
        from ._inputs import draw_inputs

        return draw_inputs(self, example, rng, shape=shape, extreme=extreme)

    def __repr__(self) -> str:
        return f"<loss {self.name}>"


def declarations() -> tuple[LossSpec, ...]:
    """Every registered loss's declaration, sorted by name: its ``name``, public ``function``,
    ``options`` (kinds and defaults), input domains, ``examples``, optax/PyTorch ``peers``,
    ``keras_class`` and ``bench`` settings. For tools that iterate the catalogue (the
    benchmarks, a test suite of one's own); ``draw(example, rng)`` gives valid inputs."""
    return tuple(spec for _, spec in sorted(REGISTRY.items()))


def _equals_default(value: Any, default: Any) -> bool:
    if value is None or default is None:
        return value is default
    if not is_concrete(value):
        return False
    try:
        return bool(np.all(np.asarray(value) == np.asarray(default)))
    except (TypeError, ValueError):
        return False


def _check_class_options(spec: LossSpec, y_pred: jax.Array, opts: Mapping[str, Any]) -> None:
    """Per-class options must hold one value per class of ``y_pred``'s class axis (checked while tracing)."""
    for name, option in spec.options.items():
        kind, value = option.kind, opts.get(name)
        if not isinstance(kind, PerClass) or value is None:
            continue
        axis = opts.get(kind.axis, -1) if isinstance(kind.axis, str) else kind.axis
        ax = axis % y_pred.ndim
        classes = y_pred.shape[ax]
        shape = tuple(np.shape(value))
        allowed = ((), (1,), (classes,)) if kind.scalar else ((classes,),)
        if shape not in allowed:
            what = "a scalar or " if kind.scalar else ""
            raise ValueError(
                f"{spec.name}: {name} must be {what}one value per class, shape ({classes},) for the class axis "
                f"{ax} of y_pred; received {name}.shape={shape}, y_pred.shape={tuple(y_pred.shape)}."
            )


def along(vector: Any, like: jax.Array, ax: int) -> jax.Array:
    """A scalar, or a ``(C,)`` per-class vector laid along the class axis ``ax`` of ``like``."""
    vector = jnp.asarray(vector, like.dtype)
    if vector.ndim == 1:
        shape = [1] * like.ndim
        shape[ax] = vector.shape[0]
        vector = vector.reshape(shape)
    return vector


def default_prepare(spec: LossSpec, y_true: jax.Array, y_pred: jax.Array, opts: Mapping[str, Any]):
    """Keras's rank rule, then equal shapes of rank >= 1 (and the axis option in range)."""
    y_true, y_pred = keras_rank_rule(y_true, y_pred)
    check_equal_shape(spec.name, y_true, y_pred)
    if y_pred.ndim == 0:
        raise shape_error(spec.name, "inputs must have rank >= 1", y_true=y_true.shape, y_pred=y_pred.shape)
    if "axis" in spec.options:
        kind = spec.options["axis"].kind
        if isinstance(kind, Static) and kind.kind == "axes":
            canonical_axes(spec.name, opts["axis"], y_pred.ndim)
        else:
            canonical_axis(spec.name, opts["axis"], y_pred.ndim)
    return y_true, y_pred


def sparse_prepare(spec: LossSpec, y_true: jax.Array, y_pred: jax.Array, opts: Mapping[str, Any]):
    """Integer labels of ``y_pred``'s shape less its class axis (``axis``, default the last);
    a unit class axis on the labels is squeezed."""
    if y_pred.ndim < 1:
        raise shape_error(spec.name, "y_pred must have a class axis", y_true=y_true.shape, y_pred=y_pred.shape)
    ax = canonical_axis(spec.name, opts["axis"], y_pred.ndim) if "axis" in opts else y_pred.ndim - 1
    if y_true.ndim == y_pred.ndim and y_true.shape[ax] == 1:
        y_true = jnp.squeeze(y_true, ax)
    expected = y_pred.shape[:ax] + y_pred.shape[ax + 1 :]
    if y_true.shape != expected:
        raise shape_error(
            spec.name,
            f"y_true must hold one integer label per row of y_pred (y_pred's shape without the class axis {ax}, "
            f"i.e. {expected})",
            y_true=y_true.shape,
            y_pred=y_pred.shape,
        )
    return y_true, y_pred


def _staged(*trees: Any) -> bool:
    """Some input is a jit (staging) tracer; an eager grad or vmap tracer is not."""
    return any(isinstance(x, DynamicJaxprTracer) for x in jax.tree_util.tree_leaves(trees))


def _as_arrays(y_true, y_pred, sample_weight):
    # jit takes arrays, not lists; tracers pass through.
    def conv(x):
        return x if x is None or isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)

    return conv(y_true), conv(y_pred), conv(sample_weight)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_forward(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    return spec._forward(reduction, static, y_true, y_pred, sample_weight, numeric)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_closed_form(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    return spec._closed_form(reduction, static, y_true, y_pred, sample_weight, numeric)


# ----------------------------------------------------------------------------
# register
# ----------------------------------------------------------------------------

REGISTRY: dict[str, LossSpec] = {}


def _kind_of(loss: str, name: str, annotation: Any) -> Kind:
    meta = [
        m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, (Static, Scalar, PerClass, ArrayOption))
    ]
    if meta:
        return meta[0]
    if annotation is bool:
        return Static("bool")
    if typing.get_origin(annotation) is Literal:
        return Static("choice", choices=typing.get_args(annotation))
    raise TypeError(f"register({loss}): option {name!r} has no kind; annotate it with Flag, Positive, ... .")


def _read_signature(fn: Callable[..., Any]) -> tuple[tuple[str, ...], dict[str, Option]]:
    name = fn.__name__
    hints = typing.get_type_hints(fn, include_extras=True)
    arrays, options = [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.POSITIONAL_OR_KEYWORD:
            arrays.append(p.name)
        elif p.kind is p.KEYWORD_ONLY and p.name not in ("sample_weight", "reduction"):
            options[p.name] = Option(p.name, _kind_of(name, p.name, hints[p.name]), p.default)
        elif p.kind not in (p.KEYWORD_ONLY,):
            raise TypeError(f"register({name}): parameter {p.name!r}: arrays positional, options keyword-only.")
    params = inspect.signature(fn).parameters
    if "sample_weight" not in params or "reduction" not in params or len(arrays) < 2:
        raise TypeError(f"register({name}): a loss takes (y_true, y_pred, ...), sample_weight= and reduction=.")
    return tuple(arrays), options


def register(
    *,
    formula: PerSample,
    gradient: Literal["rule", "reference"],
    inputs: Mapping[str, Any],
    examples: Sequence[Example],
    local_grad: Callable[..., jax.Array] | None = None,
    vjp: Callable[..., jax.Array] | None = None,
    jvp: Callable[..., Any] | None = None,
    mask: Callable[..., jax.Array | Weighted | None] | None = None,
    prepare: Callable[..., tuple[jax.Array, jax.Array]] = default_prepare,
    reduced_axes: Callable[[int, Mapping[str, Any]], tuple[int, ...]] = last_axis,
    keras: str | None = None,
    keras_options: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    aliases: Sequence[str] = (),
    requires: Mapping[str, tuple[str, Any]] | None = None,
    peers: Sequence[Peer] = (),
    stack: Stack | None = None,
    bench: Bench | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a loss on its public function, whose body is never run.

    The function gives the loss's name, docstring and signature: arrays positional,
    options keyword-only with their defaults and kinds (annotations such as
    ``Positive``, ``Flag``, ``ClassWeights``), ``sample_weight`` and ``reduction``.

    Args:
      formula: ``(y_true, y_pred, **options) -> values``, the plain, rule-free per-sample
        formula on prepared inputs (cast, rank rule, stacked).
      gradient: how the closed form is used: ``"rule"`` carries ``local_grad`` as the
        ``jax.custom_jvp`` rule of the values; ``"reference"`` keeps it for
        ``analytic_grad`` and verify while ``jax.grad`` differentiates the formula.
      inputs: the domains of ``"y_true"`` and ``"y_pred"`` (``jaxloss._inputs``), or
        ``options -> domain`` where they depend on options (``from_logits``).
      examples: the option sets worth checking (at least one).
      local_grad: ``(y_true, y_pred, **options) -> d values / d y_pred`` for losses whose
        value reads only its own slice of ``y_pred``; the values live on ``y_pred``'s
        axes less ``reduced_axes``.
      vjp: ``(y_true, y_pred, cotangent, **options) -> dy_pred``, for losses that mix
        samples (circle, ntxent); exactly one of ``local_grad`` and ``vjp``.
      jvp: ``(y_true, y_pred, t_pred, **options) -> (values, tangent)`` or None, the rule's
        values and tangent from one function where that is faster (``"rule"`` only).
      mask: ``(y_true, y_pred, values, **options) -> mask | Weighted | None``.
      prepare: shape checks (and the rank rule) on cast inputs.
      reduced_axes: ``(y_pred.ndim, options) -> axes`` summed away by the loss.
      keras: Keras's class name; ``keras_options`` maps jaxloss's options to its.
      aliases: more names for ``jaxloss.get``.
      requires: ``{option: (flag, value)}``: the option acts only when ``flag == value``;
        set away from its default otherwise, it raises.
      peers: optax and PyTorch equals, for the parity tests and the benchmark.
      stack: for losses that compare two arrays (``x1, x2``), how they stack into ``y_pred``.
      bench: the benchmark's options and shapes (default: the first example, ``(n / 1024, 1024)``).
    """

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        name = fn.__name__
        arrays, options = _read_signature(fn)
        problems = []
        if (local_grad is None) == (vjp is None):
            problems.append("give exactly one closed form: local_grad or vjp")
        if gradient not in ("rule", "reference"):
            problems.append(f"gradient must be 'rule' or 'reference', not {gradient!r}")
        if gradient == "rule" and local_grad is None:
            problems.append("a custom_jvp rule needs local_grad (a vjp cannot be a forward-mode rule)")
        if jvp is not None and gradient != "rule":
            problems.append("jvp is the rule's shared form: it needs gradient='rule'")
        if set(inputs) != {"y_true", "y_pred"}:
            problems.append("inputs must give the domains of y_true and y_pred")
        if not examples:
            problems.append("declare at least one example")
        for example in examples:
            unknown = set(example.options) - set(options)
            if unknown:
                problems.append(f"example {example.id} has unknown options {sorted(unknown)}")
        for opt, (flag, _) in (requires or {}).items():
            if opt not in options or flag not in options:
                problems.append(f"requires names unknown options {opt!r}/{flag!r}")
        if stack is not None and len(arrays) != 3:
            problems.append("stack needs three positional arrays")
        if problems:
            raise TypeError(f"register({name}): " + "; ".join(problems) + ".")
        if name in REGISTRY:
            raise RuntimeError(f"loss {name!r} registered twice")

        @functools.wraps(fn)
        def loss(*args: P.args, **kwargs: P.kwargs) -> R:
            arrays_, sample_weight, reduction, opts = spec.bind(args, kwargs)
            return spec.evaluate(arrays_, sample_weight, reduction, **opts)  # type: ignore[return-value]

        spec = LossSpec(
            name=name,
            function=loss,
            signature=inspect.signature(fn),
            arrays=arrays,
            options=options,
            formula=formula,
            gradient=gradient,
            local_grad=local_grad,
            vjp=vjp,
            jvp=jvp,
            mask=mask,
            inputs=dict(inputs),
            examples=tuple(examples),
            prepare=prepare,
            reduced_axes=reduced_axes,
            keras_class=keras,
            keras_options=keras_options,
            aliases=tuple(aliases),
            requires=dict(requires or {}),
            peers=tuple(peers),
            stack=stack,
            bench=bench if bench is not None else Bench(options=dict(examples[0].options)),
        )
        for example in examples:  # the declared option sets are valid, by the same checks users get
            spec.check_options(example.options)
        REGISTRY[name] = spec
        loss.spec = spec  # type: ignore[attr-defined]
        return loss

    return deco


def register_direct(
    *,
    inputs: Mapping[str, Any],
    examples: Sequence[Example],
    reference: Callable[..., Any],
    classes: Callable[[Sequence[Any], Mapping[str, Any]], int],
    aliases: Sequence[str] = (),
    peers: Sequence[Peer] = (),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a loss whose public function computes it itself (its body runs).

    For a kernel the shared path cannot express (``linear_cross_entropy``'s chunked sweep):
    the registry reads its signature and option kinds as for :func:`register`, so ``get``,
    bound options and ``checked()`` work; ``inputs`` gives the domains of ``"y_true"`` and of
    the second array (``"y_pred"``); every example draws its arrays by hand (``draw`` returns
    all of them); ``reference(*arrays, **options)`` computes the same loss plainly, and
    verify compares the two gradients; ``classes(arrays, options)`` is the labels' range.
    """

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        name = fn.__name__
        arrays, options = _read_signature(fn)
        if name in REGISTRY:
            raise RuntimeError(f"loss {name!r} registered twice")
        if not examples or any(e.draw is None for e in examples):
            raise TypeError(f"register_direct({name}): every example draws its arrays by hand.")

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            spec.bind(args, kwargs)  # a misspelt or missing argument: the error names the loss
            return fn(*args, **kwargs)

        spec = LossSpec(
            name=name,
            function=call,
            signature=inspect.signature(fn),
            arrays=arrays,
            options=options,
            formula=lambda *a, **k: None,
            gradient="reference",
            local_grad=None,
            vjp=None,
            jvp=None,
            mask=None,
            inputs=dict(inputs),
            examples=tuple(examples),
            prepare=default_prepare,
            reduced_axes=last_axis,
            keras_class=None,
            keras_options=None,
            aliases=tuple(aliases),
            requires={},
            peers=tuple(peers),
            stack=None,
            bench=None,
            direct=True,
            reference=reference,
            classes=classes,
        )
        for example in examples:
            spec.check_options(example.options)
        REGISTRY[name] = spec
        call.spec = spec  # type: ignore[attr-defined]
        return call

    return deco


# ----------------------------------------------------------------------------
# The closed form as a custom JVP rule
# ----------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _values_with_rule(spec, static, y_true, y_pred, numeric):
    return spec.formula(y_true, y_pred, **dict(static), **numeric)


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
        values = spec.formula(y_true, y_pred, **opts)
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
            return spec.formula(yt, y_pred, **{**dict(static), **numeric, **num})

        yt_tan = jnp.zeros_like(y_true) if _is_zero(t_true) else t_true
        if _is_zero(t_true) and not jnp.issubdtype(y_true.dtype, jnp.floating):
            _, extra = jax.jvp(lambda num: plain(y_true, num), ({k: numeric[k] for k in live},), (live,))
        else:
            _, extra = jax.jvp(plain, (y_true, {k: numeric[k] for k in live}), (yt_tan, live))
        tangent = tangent + extra
    return values, tangent
