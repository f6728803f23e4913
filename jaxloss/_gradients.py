"""Gradient helpers: autodiff (``grad``, ``value_and_grad``) and the closed form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._registry import Configured, resolve

GradFn = Callable[..., Any]


def _bind(loss: str | Callable[..., jax.Array], options: dict[str, Any]) -> Configured:
    spec, fn = resolve(loss)
    return Configured(spec, fn, options)


def _scalar(configured: Configured) -> Callable[..., jax.Array]:
    # With reduction="none" the gradient is that of the sum.
    def objective(y_pred, y_true, sample_weight):
        return jnp.sum(configured(y_true, y_pred, sample_weight=sample_weight))

    return objective


def value_and_grad(loss: str | Callable[..., jax.Array], **options: Any) -> GradFn:
    """Jitted ``(y_true, y_pred, sample_weight=None) -> (loss, d loss / d y_pred)`` by ``jax.grad``.

    The gradient has ``y_pred``'s shape and dtype; with ``reduction="none"`` the
    value is per sample and the gradient is that of their sum.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> value, dy = jaxloss.value_and_grad("mse")(jnp.zeros((1, 2)), jnp.ones((1, 2)))
      >>> dy
      Array([[1., 1.]], dtype=float32)
    """
    configured = _bind(loss, options)
    vg = jax.value_and_grad(_scalar(configured))

    @jax.jit
    def run(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None):
        value = configured(y_true, y_pred, sample_weight=sample_weight)
        _, dy = vg(jnp.asarray(y_pred), y_true, sample_weight)
        return value, dy

    return run


def grad(loss: str | Callable[..., jax.Array], **options: Any) -> GradFn:
    """Jitted ``(y_true, y_pred, sample_weight=None) -> d loss / d y_pred`` by ``jax.grad``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.grad(jaxloss.huber, delta=0.5)(jnp.zeros(3), jnp.array([0.1, 1.0, -2.0]))
      Array([ 0.03333334,  0.16666667, -0.16666667], dtype=float32)
    """
    configured = _bind(loss, options)
    g = jax.grad(_scalar(configured))

    @jax.jit
    def run(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None):
        return g(jnp.asarray(y_pred), y_true, sample_weight)

    return run


def analytic_grad(loss: str | Callable[..., jax.Array], **options: Any) -> GradFn:
    """The same gradient as :func:`grad`, from the loss's hand-written closed form.

    No autodiff is involved: the reduction's weights, the mask and the loss's own
    derivative (softmax minus target, the focal terms, Keras's clipping, CTC's
    forward-backward posterior, ...) are written out.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.analytic_grad(jaxloss.huber, delta=0.5)(jnp.zeros(3), jnp.array([0.1, 1.0, -2.0]))
      Array([ 0.03333334,  0.16666667, -0.16666667], dtype=float32)
    """
    configured = _bind(loss, options)
    spec = configured.spec
    opts = {k: v for k, v in options.items() if k != "reduction"}
    reduction = options.get("reduction", "sum_over_batch_size")

    def run(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None):
        return spec.closed_form_grad(y_true, y_pred, sample_weight, reduction, **opts)

    return run
