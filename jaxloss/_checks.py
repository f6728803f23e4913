"""``checked(loss)``: the same loss, with runtime checks of its inputs' domains.

Every registered loss declares the domain of ``y_true`` and ``y_pred``
(``jaxloss._inputs``); ``checked`` turns the domains' rules into
``jax.experimental.checkify`` checks, plus finiteness of ``sample_weight`` and of
float array options. Without the wrapper the losses behave as Keras does (they
clip) at no runtime cost. With it, bad values raise an error naming the loss, the
argument, the rule and the first offending index.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import jax
import jax.numpy as jnp
from jax.core import Tracer
from jax.experimental import checkify

from ._core import ArrayOption, LossSpec, as_input
from ._registry import BoundLoss, resolve_bound

F = TypeVar("F", bound=Callable[..., jax.Array])


def _first_index(bad: jax.Array) -> tuple[jax.Array, ...]:
    flat = jnp.argmax(bad.reshape(-1)) if bad.size else jnp.asarray(0)
    return tuple(jnp.unravel_index(flat, bad.shape)) if bad.ndim else ()


def _check(loss: str, argument: str, bad: jax.Array, rule: str, values: jax.Array, *shown: jax.Array) -> None:
    if shown:  # a rule on rows: the offending row and its value (a sum, a norm)
        values = shown[0]
    bad = jnp.broadcast_to(bad, values.shape)
    index = _first_index(bad)
    where = "(" + ", ".join("{}" for _ in index) + ("," if len(index) == 1 else "") + ")"
    value = values[index] if index else values
    checkify.check(
        ~jnp.any(bad),
        f"jaxloss.{loss}: {argument} {rule}; first offending index {where}, value {{}}",
        *index,
        value,
    )


def _finite(loss: str, name: str, x: jax.Array) -> None:
    if jnp.issubdtype(x.dtype, jnp.floating):
        _check(loss, name, ~jnp.isfinite(x), "must be finite (found NaN or infinity)", x)


def _role_name(spec: LossSpec, role: str) -> str:
    """How the user called the array: ``y_pred`` of ``margin_ranking`` is ``x1``/``x2`` stacked."""
    if role == "y_true":
        return spec.arrays[0]
    if spec.stack is not None:
        return f"{spec.arrays[1]}/{spec.arrays[2]} (stacked along axis {spec.stack.axis})"
    return spec.arrays[1]


def _run_checks(spec: LossSpec, opts: Mapping[str, Any], y_true, y_pred, sample_weight) -> None:
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    for role, x in (("y_true", y_true), ("y_pred", y_pred)):
        for bad, rule, *shown in spec.domain(role, opts).rules(x, opts, y_pred):
            _check(spec.name, _role_name(spec, role), bad, rule, x, *shown)
    if sample_weight is not None:
        _finite(spec.name, "sample_weight", jnp.asarray(sample_weight))
    _option_checks(spec, opts, y_pred)


def _option_checks(spec: LossSpec, opts: Mapping[str, Any], y_pred: Any) -> None:
    for name, option in spec.options.items():
        value = opts.get(name)
        if value is None or not hasattr(value, "shape") or not isinstance(option.kind, ArrayOption):
            continue
        value = jnp.asarray(value)
        domain = option.kind.domain
        if domain is not None:
            for bad, rule, *shown in domain.rules(value, opts, y_pred):
                _check(spec.name, name, bad, rule, value, *shown)
        elif option.kind.dtype == "float":
            _finite(spec.name, name, value)


def _run_direct_checks(spec: LossSpec, opts: Mapping[str, Any], arrays, sample_weight) -> None:
    """A loss that computes itself (linear_cross_entropy): labels against its class count, the
    second array's domain, every other float array finite."""
    assert spec.classes is not None
    arrays = [None if x is None else jnp.asarray(x) for x in arrays]
    like = jax.ShapeDtypeStruct((spec.classes(arrays, opts),), jnp.float32)
    for (name, x), role in zip(zip(spec.arrays, arrays, strict=True), ("y_true", "y_pred", None), strict=False):
        if x is None:
            continue
        if role is None:
            _finite(spec.name, name, x)
            continue
        for bad, rule, *shown in spec.domain(role, opts).rules(x, opts, like if role == "y_true" else x):
            _check(spec.name, name, bad, rule, x, *shown)
    if sample_weight is not None:
        _finite(spec.name, "sample_weight", jnp.asarray(sample_weight))
    _option_checks(spec, opts, like)


def _direct_body(spec, reduction, static, arrays, sample_weight, numeric):
    opts = {**dict(static), **numeric}
    _run_direct_checks(spec, opts, arrays, sample_weight)
    return spec.function(*arrays, sample_weight=sample_weight, reduction=reduction, **opts)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_checked_direct(spec, reduction, static, arrays, sample_weight, numeric):
    return checkify.checkify(_direct_body, errors=checkify.user_checks)(
        spec, reduction, static, arrays, sample_weight, numeric
    )


def _body(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    _run_checks(spec, {**dict(static), **numeric}, y_true, y_pred, sample_weight)
    return spec._forward(reduction, static, y_true, y_pred, sample_weight, numeric)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_checked(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    return checkify.checkify(_body, errors=checkify.user_checks)(
        spec, reduction, static, y_true, y_pred, sample_weight, numeric
    )


def _throw(err: checkify.Error) -> None:
    err.throw()


@overload
def checked(loss: F) -> F: ...
@overload
def checked(loss: str | BoundLoss) -> Callable[..., jax.Array]: ...


def checked(loss: Any) -> Callable[..., jax.Array]:
    """A version of ``loss`` that raises on values outside its inputs' domains.

    It takes exactly the arguments the loss takes (a bound loss keeps its options)
    and returns the same values. Its checks (``jax.experimental.checkify``) come from
    the loss's declared input domains, each error naming the loss, the argument, the
    rule and the first offending index:

    - every floating input is finite (``-inf`` allowed where it means log 0, or a
      class that a ``where`` mask leaves out);
    - integer labels are integers (integral floats count) in ``[0, num_classes)``,
      unless equal to ``ignore_class``;
    - probabilities (``from_logits=False``) lie in ``[0, 1]``, and rows sum to 1 where
      the loss reads a distribution; log-probabilities sum to 1 after ``exp``;
    - non-negative inputs (counts, rates, variances, lengths) are non-negative, signs
      are -1 or 1, unit embeddings have norm 1;
    - ``sample_weight`` and float array options are finite.

    Called with concrete arrays it raises ``checkify.JaxRuntimeError`` whose message
    is the check's. Called inside the caller's ``jax.jit`` (or grad, vmap), the failed
    check raises from a host callback when the computation runs: JAX reports it as a
    ``JaxRuntimeError`` whose text starts with ``INTERNAL: CpuCallback error calling
    callback`` and the callback's traceback, and ends with the check's message (also
    under the caller's ``checkify.checkify``, which cannot see inside the callback).
    To have the message first, call the checked loss outside ``jit`` while debugging.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> safe = jaxloss.checked(jaxloss.sparse_categorical_crossentropy)
      >>> safe(jnp.array([0, 3]), jnp.full((2, 3), 1 / 3))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      jax...JaxRuntimeError: jaxloss.sparse_categorical_crossentropy: y_true must hold class indices in [0, 3); first offending index (1,), value 3...
    """
    spec, bound = resolve_bound(loss)

    @functools.wraps(spec.function)
    def safe(*args: Any, **kwargs: Any) -> jax.Array:
        arrays, sample_weight, reduction, options = spec.bind(args, {**bound, **kwargs})
        if spec.direct:
            static, numeric = spec.split(spec.check_options(options, reduction))
            inputs = tuple(
                None if x is None else as_input(spec.name, n, x) for n, x in zip(spec.arrays, arrays, strict=True)
            )
            sw = None if sample_weight is None else as_input(spec.name, "sample_weight", sample_weight)
            err, out = _jit_checked_direct(spec, reduction, static, inputs, sw, numeric)
            leaves = jax.tree_util.tree_leaves((inputs, sw, numeric))
        else:
            static, y_true, y_pred, sw, numeric = spec.prepare_call(arrays, sample_weight, reduction, options)
            err, out = _jit_checked(spec, reduction, static, y_true, y_pred, sw, numeric)
            leaves = jax.tree_util.tree_leaves((y_true, y_pred, sw, numeric))
        if any(isinstance(x, Tracer) for x in leaves):
            # Inside the caller's trace: raise when the computation runs.
            jax.debug.callback(_throw, err)
        else:
            err.throw()
        return out

    if bound:
        params = [
            p.replace(default=bound[p.name]) if p.name in bound else p for p in spec.signature.parameters.values()
        ]
        safe.__signature__ = spec.signature.replace(parameters=params)  # type: ignore[attr-defined]
    else:
        safe.__signature__ = inspect.signature(spec.function)  # type: ignore[attr-defined]
    return safe
