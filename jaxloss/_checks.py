"""``checked(loss)``: the same loss, with runtime value checks via ``jax.experimental.checkify``.

Without the wrapper the losses behave as Keras does (they clip) at no runtime
cost. With it, bad values raise an error naming the loss, the argument, the
rule and the first offending index, eagerly and under ``jax.jit``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from ._registry import resolve

# Losses whose probability inputs (from_logits=False) must be rows summing to 1.
_DISTRIBUTION = {
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "sparse_categorical_crossentropy",
    "categorical_generalized_cross_entropy",
    "kl_divergence",
}
# Losses that read probabilities (when not from logits): y_pred in [0, 1].
_PROBABILITY_PRED = _DISTRIBUTION | {"binary_crossentropy", "binary_focal_crossentropy"}
# Soft targets that are probabilities too.
_PROBABILITY_TRUE = {
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
}
_NON_NEGATIVE_TRUE = {"poisson", "mean_squared_logarithmic_error", "kl_divergence"}
# Integer-label losses: (class axis of y_pred as a function of the options).
_INTEGER_LABELS: dict[str, Callable[[dict[str, Any]], int]] = {
    "sparse_categorical_crossentropy": lambda o: o.get("axis", -1),
    "categorical_generalized_cross_entropy": lambda o: -1,
    "ctc": lambda o: -1,
    "multiclass_hinge": lambda o: -1,
    "multi_margin": lambda o: -1,
    "sparsemax_loss": lambda o: -1,
}
# Row sums of probabilities: float32 round-off of a softmax is ~1e-6; half inputs ~1e-2.
_SUM_TOL = {jnp.dtype(jnp.bfloat16): 2e-2, jnp.dtype(jnp.float16): 5e-3}
_DEFAULT_SUM_TOL = 1e-3


def _first_index(bad: jax.Array) -> tuple[jax.Array, ...]:
    flat = jnp.argmax(bad.reshape(-1)) if bad.size else jnp.asarray(0)
    return tuple(jnp.unravel_index(flat, bad.shape)) if bad.ndim else ()


def _check(loss: str, argument: str, bad: jax.Array, rule: str, values: jax.Array) -> None:
    index = _first_index(bad)
    where = "(" + ", ".join("{}" for _ in index) + ("," if len(index) == 1 else "") + ")"
    value = values[index] if index else values
    checkify.check(
        ~jnp.any(bad),
        f"jaxloss.{loss}: {argument} {rule}; first offending index {where}, value {{}}",
        *index,
        value,
    )


def _run_checks(loss: str, options: dict[str, Any], y_true, y_pred, sample_weight) -> None:
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    floats = {"y_true": y_true, "y_pred": y_pred}
    if sample_weight is not None:
        floats["sample_weight"] = jnp.asarray(sample_weight)
    log_input, log_target = options.get("log_input", False), options.get("log_target", False)
    where = options.get("where")
    for name, x in floats.items():
        if jnp.issubdtype(x.dtype, jnp.floating):
            bad = ~jnp.isfinite(x)
            if name == "y_pred" and where is not None:
                bad = bad & jnp.broadcast_to(jnp.asarray(where, bool), x.shape)  # masked classes may be -inf
            if (name == "y_pred" and log_input) or (name == "y_true" and log_target):
                bad = bad & (x != -jnp.inf)  # log(0)
            _check(loss, name, bad, "must be finite (found NaN or infinity)", x)
    if loss in _INTEGER_LABELS and jnp.issubdtype(y_true.dtype, jnp.integer):
        classes = y_pred.shape[_INTEGER_LABELS[loss](options)] if y_pred.ndim else 0
        bad = (y_true < 0) | (y_true >= classes)
        ignore = options.get("ignore_class")
        if ignore is not None:
            bad = bad & (y_true != ignore)
        _check(loss, "y_true", bad, f"must hold class indices in [0, {classes})", y_true)
    if options.get("from_logits", False):
        return
    if log_input or log_target:
        # Log-probabilities: no [0, 1] range; rows must still be distributions.
        for name, x, is_log in (("y_pred", y_pred, log_input), ("y_true", y_true, log_target)):
            p = jnp.exp(x) if is_log else x
            if not is_log:
                _check(loss, name, (p < 0) | (p > 1), "must hold probabilities in [0, 1]", p)
            sums = jnp.sum(p.astype(jnp.float32), axis=-1)
            tol = _SUM_TOL.get(jnp.dtype(x.dtype), _DEFAULT_SUM_TOL)
            rule = f"rows along axis -1 must sum to 1 (within {tol:g}){' after exp' if is_log else ''}"
            _check(loss, name, jnp.abs(sums - 1.0) > tol, rule, sums)
        return
    if loss in _PROBABILITY_PRED:
        _check(loss, "y_pred", (y_pred < 0) | (y_pred > 1), "must hold probabilities in [0, 1]", y_pred)
    if loss in _PROBABILITY_TRUE and jnp.issubdtype(y_true.dtype, jnp.floating):
        _check(loss, "y_true", (y_true < 0) | (y_true > 1), "must hold probabilities in [0, 1]", y_true)
    if loss in _DISTRIBUTION and y_pred.ndim:
        axis = options.get("axis", -1)
        pairs = [("y_pred", y_pred)]
        if loss == "kl_divergence" or (jnp.issubdtype(y_true.dtype, jnp.floating) and y_true.shape == y_pred.shape):
            pairs.append(("y_true", y_true))
        for name, x in pairs:
            tol = _SUM_TOL.get(jnp.dtype(x.dtype), _DEFAULT_SUM_TOL)
            sums = jnp.sum(x.astype(jnp.float32), axis=axis)
            _check(
                loss, name, jnp.abs(sums - 1.0) > tol, f"rows along axis {axis} must sum to 1 (within {tol:g})", sums
            )
    if loss in _NON_NEGATIVE_TRUE:
        _check(loss, "y_true", y_true < 0, "must be non-negative", y_true)


def _throw(err: checkify.Error) -> None:
    err.throw()


def checked(loss: str | Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """A version of ``loss`` that raises on invalid values, eagerly and under ``jax.jit``.

    Checks (via ``jax.experimental.checkify``), each naming the loss, the argument
    and the first offending index:

    - every floating input (``y_true``, ``y_pred``, ``sample_weight``) is finite;
    - integer labels lie in ``[0, num_classes)`` unless equal to ``ignore_class``;
    - probability inputs (``from_logits=False``) lie in ``[0, 1]``, and rows sum to 1
      where the loss needs a distribution (categorical and sparse crossentropy,
      focal, generalized CE, KL);
    - targets of poisson, mean_squared_logarithmic_error and kl_divergence are
      non-negative.

    Called with concrete arrays it raises ``checkify.JaxRuntimeError``; called inside
    the caller's ``jax.jit`` (or grad, vmap) the failed check raises when the
    computation runs. The unwrapped losses skip all of this (Keras's clipping applies).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> safe = jaxloss.checked(jaxloss.sparse_categorical_crossentropy)
      >>> safe(jnp.array([0, 3]), jnp.full((2, 3), 1 / 3))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      jax...JaxRuntimeError: jaxloss.sparse_categorical_crossentropy: y_true must hold class indices in [0, 3); first offending index (1,), value 3...
    """
    spec, fn = resolve(loss)

    def body(y_true, y_pred, sample_weight, options):
        _run_checks(spec.name, options, y_true, y_pred, sample_weight)
        return fn(y_true, y_pred, sample_weight=sample_weight, **options)

    checkified = checkify.checkify(body)

    @functools.wraps(fn)
    def wrapper(y_true, y_pred, *, sample_weight=None, **options):
        spec._check_options(
            {k: v for k, v in options.items() if k != "reduction"}, options.get("reduction", "sum_over_batch_size")
        )
        static = {k: v for k, v in options.items() if k in spec.static or k == "reduction"}
        numeric = {k: v for k, v in options.items() if k not in static}
        run = functools.partial(_jitted, checkified, tuple(sorted(static.items())))
        leaves = jax.tree_util.tree_leaves((y_true, y_pred, sample_weight, numeric))
        err, out = run(y_true, y_pred, sample_weight, numeric)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            # Inside the caller's trace: raise when the computation runs.
            jax.debug.callback(_throw, err)
        else:
            err.throw()
        return out

    return wrapper


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jitted(checkified, static, y_true, y_pred, sample_weight, numeric):
    return checkified(y_true, y_pred, sample_weight, {**dict(static), **numeric})
