"""Gradient helpers: autodiff (``grad``, ``value_and_grad``) and the closed form (``analytic_grad``).

Each helper validates the loss and its options once, then returns a light callable
that runs one module-level jitted program: calling ``jaxloss.grad(loss)`` again (in
a loop, a notebook) builds nothing new and compiles nothing new.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import LossSpec, Reduction
from ._registry import BoundLoss, LossLike, resolve_bound


class GradFn(Protocol):
    """``(y_true, y_pred, sample_weight=None) -> d loss / d y_pred``."""

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> jax.Array: ...


class ValueAndGradFn(Protocol):
    """``(y_true, y_pred, sample_weight=None) -> (loss, d loss / d y_pred)``."""

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> tuple[jax.Array, jax.Array]: ...


def bound_options(loss: LossLike | BoundLoss, options: dict[str, Any]) -> tuple[LossSpec, Reduction, dict[str, Any]]:
    """The spec, the reduction and the other options of a loss (bound options kept), validated."""
    spec, bound = resolve_bound(loss)
    if spec.direct:
        raise TypeError(
            f"{spec.name} takes the arrays {', '.join(spec.arrays)}, not (y_true, y_pred): take its gradients with "
            "jax.grad, which runs its own rule (with respect to every float array and option)."
        )
    merged = {**bound, **options}
    reduction = merged.pop("reduction", "sum_over_batch_size")
    spec.check_options(merged, reduction)
    return spec, typing.cast(Reduction, reduction), merged


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_value_and_grad(spec, reduction, static, y_true, y_pred, sample_weight, numeric):
    values, pullback = jax.vjp(lambda p: spec._forward(reduction, static, y_true, p, sample_weight, numeric), y_pred)
    # With reduction="none" the gradient is that of the sum of the per-sample values.
    (dy,) = pullback(jnp.ones_like(values))
    return values, dy


class _Helper:
    __slots__ = ("options", "reduction", "spec")

    spec: LossSpec
    reduction: Reduction
    options: dict[str, Any]

    def __init__(self, spec: LossSpec, reduction: Reduction, options: dict[str, Any]):
        self.spec, self.reduction, self.options = spec, reduction, options

    def _args(self, y_true, y_pred, sample_weight):
        return self.spec.prepare_call((y_true, y_pred), sample_weight, self.reduction, self.options)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in {**self.options, "reduction": self.reduction}.items())
        return f"jaxloss.{type(self).__name__.strip('_').lower()}({self.spec.name!r}, {opts})"


class _ValueAndGrad(_Helper):
    def __call__(self, y_true, y_pred, sample_weight=None):
        static, yt, yp, sw, numeric = self._args(y_true, y_pred, sample_weight)
        return _jit_value_and_grad(self.spec, self.reduction, static, yt, jnp.asarray(yp), sw, numeric)


class _Grad(_Helper):
    def __call__(self, y_true, y_pred, sample_weight=None):
        static, yt, yp, sw, numeric = self._args(y_true, y_pred, sample_weight)
        return _jit_value_and_grad(self.spec, self.reduction, static, yt, jnp.asarray(yp), sw, numeric)[1]


class _AnalyticGrad(_Helper):
    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.spec.closed_form_grad((y_true, y_pred), sample_weight, self.reduction, **self.options)


def value_and_grad(loss: LossLike | BoundLoss, **options: Any) -> ValueAndGradFn:
    """Jitted ``(y_true, y_pred, sample_weight=None) -> (loss, d loss / d y_pred)`` by ``jax.grad``.

    ``loss`` is a name, a public loss function or a bound loss (``jaxloss.get``, whose
    options are kept; ``options`` override them). The gradient has ``y_pred``'s shape and
    dtype; with ``reduction="none"`` the value is per sample and the gradient is that of
    their sum. For losses that compare two arrays (``margin_ranking``, ``triplet_margin``)
    ``y_pred`` is their stack, as those functions accept it.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> value, dy = jaxloss.value_and_grad("mse")(jnp.zeros((1, 2)), jnp.ones((1, 2)))
      >>> dy
      Array([[1., 1.]], dtype=float32)
    """
    return _ValueAndGrad(*bound_options(loss, options))


def grad(loss: LossLike | BoundLoss, **options: Any) -> GradFn:
    """Jitted ``(y_true, y_pred, sample_weight=None) -> d loss / d y_pred`` by ``jax.grad``.

    As :func:`value_and_grad`, the gradient only.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.grad(jaxloss.huber, delta=0.5)(jnp.zeros(3), jnp.array([0.1, 1.0, -2.0]))
      Array([ 0.03333334,  0.16666667, -0.16666667], dtype=float32)
    """
    return _Grad(*bound_options(loss, options))


def analytic_grad(loss: LossLike | BoundLoss, **options: Any) -> GradFn:
    """The same gradient as :func:`grad`, from the loss's hand-written closed form.

    No autodiff is involved: the reduction's weights, the mask and the loss's own
    derivative (softmax minus target, the focal terms, Keras's clipping, CTC's
    forward-backward posterior, ...) are written out.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.analytic_grad(jaxloss.huber, delta=0.5)(jnp.zeros(3), jnp.array([0.1, 1.0, -2.0]))
      Array([ 0.03333334,  0.16666667, -0.16666667], dtype=float32)
    """
    return _AnalyticGrad(*bound_options(loss, options))
