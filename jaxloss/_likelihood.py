"""Negative log-likelihoods: poisson (Keras), poisson_nll and gaussian_nll (PyTorch).

Each is the elementwise negative log-likelihood averaged over the last axis, then
weighted and reduced by the shared path.
"""

from __future__ import annotations

import math
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    TRANSCENDENTAL,
    ArrayOption,
    Bench,
    Example,
    Flag,
    NonNegative,
    Peer,
    Positive,
    Reduction,
    SampleWeight,
    default_prepare,
    register,
    safe_where,
    width,
)
from ._inputs import COUNTS, NON_NEGATIVE, REAL, VARIANCES

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# --------------------------------------------------------------------------
# poisson (Keras)
# --------------------------------------------------------------------------


def _poisson(y_true, y_pred):
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1)


def _poisson_grad(y_true, y_pred):
    return (1.0 - y_true / (y_pred + EPSILON)) / width(y_pred)


@register(
    formula=_poisson,
    local_grad=_poisson_grad,
    gradient="reference",
    inputs={"y_true": NON_NEGATIVE, "y_pred": NON_NEGATIVE},
    examples=(
        Example(),
        Example(shape=(2, 3, 4), label="rank3"),
        Example(inputs={"y_true": COUNTS}, label="counts"),
        Example(shape=(7, 1), true_shape=(7,), peers=False, label="N_vs_N1"),
    ),
    keras="Poisson",
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p: F.poisson_nll_loss(p, t, log_input=False, eps=1e-7, reduction="none").mean(-1),
            "F.poisson_nll_loss(p, t, log_input=False, eps=1e-7)",
        ),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def poisson(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poisson negative log-likelihood (up to a constant), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \big(\hat y - y \log(\hat y + \epsilon)\big),
       \quad \epsilon = 10^{-7}

    Args:
      y_true: non-negative counts, shape ``(..., d)``.
      y_pred: predicted rates (non-negative), same shape (Keras's rank rule applies).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``.

    Gradient: ``(1 - y_true / (y_pred + eps)) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.poisson(jnp.array([[0.0]]), jnp.array([[2.0]]))
      Array(2., dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# poisson_nll (PyTorch)
# --------------------------------------------------------------------------


def _stirling(y_true):
    # t log t - t + 0.5 log(2 pi t), only where t > 1 (finite gradients for t <= 1).
    return safe_where(y_true > 1, lambda t: t * jnp.log(t) - t + 0.5 * jnp.log(2.0 * math.pi * t), y_true, 2.0, 0.0)


def _poisson_nll(y_true, y_pred, *, log_input, full, eps):
    if log_input:
        values = jnp.exp(y_pred) - y_true * y_pred
    else:
        values = y_pred - y_true * jnp.log(y_pred + eps)
    if full:
        values = values + _stirling(y_true)
    return jnp.mean(values, axis=-1)


def _poisson_nll_grad(y_true, y_pred, *, log_input, full, eps):
    slope = jnp.exp(y_pred) - y_true if log_input else 1.0 - y_true / (y_pred + eps)
    return slope / width(y_pred)


@register(
    formula=_poisson_nll,
    local_grad=_poisson_nll_grad,
    gradient="reference",
    inputs={"y_true": NON_NEGATIVE, "y_pred": lambda o: REAL if o["log_input"] else NON_NEGATIVE},
    examples=(
        Example(inputs={"y_true": COUNTS}),
        Example({"full": True}, shape=(2, 3, 4), inputs={"y_true": COUNTS}),
        Example({"log_input": False, "full": True}, inputs={"y_true": COUNTS}),
        Example({"log_input": False, "eps": 1e-3}, label="eps"),
    ),
    aliases=("poisson_nll_loss",),
    # eps is added to the rate before its log: there is no log of y_pred with log_input.
    requires={"eps": ("log_input", False)},
    peers=(
        Peer(
            "torch",
            lambda torch, F, t, p, log_input, full, eps: F.poisson_nll_loss(
                p, t, log_input=log_input, full=full, eps=eps, reduction="none"
            ).mean(-1),
            "F.poisson_nll_loss",
        ),
    ),
    bench=Bench(family=TRANSCENDENTAL),
)
def poisson_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    log_input: Flag = True,
    full: Flag = False,
    eps: NonNegative = 1e-8,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poisson negative log-likelihood (PyTorch's ``poisson_nll_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1}\begin{cases} e^{x} - y x & \text{log\_input} \\
       x - y \log(x + \text{eps}) & \text{otherwise}\end{cases}
       \ [+\ y \log y - y + \tfrac12 \log(2\pi y) \text{ where } y > 1 \text{, if full}]

    Args:
      y_true: non-negative counts, shape ``(..., d)``.
      y_pred: log-rates (``log_input=True``) or rates, same shape.
      log_input: whether ``y_pred`` is the log of the rate.
      full: add Stirling's approximation of ``log(y!)`` (for ``y > 1`` only, as PyTorch).
      eps: added to the rate before the log, a non-negative scalar; it acts only with
        ``log_input=False`` (set with ``log_input=True``, it raises ``ValueError``).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``(exp(x) - y) / d`` with ``log_input``, else ``(1 - y / (x + eps)) / d``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.poisson_nll(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]]))
      Array(1., dtype=float32)
    """
    ...


# --------------------------------------------------------------------------
# gaussian_nll (PyTorch)
# --------------------------------------------------------------------------


def _variance(variance, y_pred, eps):
    """The variance broadcast to ``y_pred``'s shape and clamped at ``eps`` the PyTorch way.

    PyTorch clamps under ``no_grad``: the clamped value enters the loss, the gradient
    passes to ``variance`` as if unclamped (straight through).
    """
    var = jnp.asarray(variance).astype(y_pred.dtype)
    if var.ndim and var.shape == y_pred.shape[:-1]:
        var = var[..., None]
    var = jnp.broadcast_to(var, y_pred.shape)
    return jax.lax.stop_gradient(jnp.maximum(var, eps)) + (var - jax.lax.stop_gradient(var))


def _gaussian_nll(y_true, y_pred, *, variance, full, eps):
    var = _variance(variance, y_pred, eps)
    values = 0.5 * (jnp.log(var) + jnp.square(y_pred - y_true) / var)
    if full:
        values = values + _HALF_LOG_2PI
    return jnp.mean(values, axis=-1)


def _gaussian_nll_grad(y_true, y_pred, *, variance, full, eps):
    var = _variance(variance, y_pred, eps)
    return (y_pred - y_true) / var / width(y_pred)


def _gaussian_nll_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    shape = tuple(jnp.shape(opts["variance"]))
    ok = shape in ((), y_pred.shape, y_pred.shape[:-1]) or (
        len(shape) == y_pred.ndim and shape[:-1] == y_pred.shape[:-1] and shape[-1] == 1
    )
    if not ok:
        raise ValueError(
            f"gaussian_nll: variance must have y_pred's shape {y_pred.shape}, that shape with a last axis of 1, "
            f"that shape less its last axis {y_pred.shape[:-1]}, or be a scalar; received variance.shape={shape}."
        )
    return y_true, y_pred


def _torch_gaussian_nll(torch, F, t, p, variance, full, eps):
    var = torch.as_tensor(np.asarray(variance), dtype=p.dtype)
    if var.ndim == 0:
        var = var.expand_as(p)
    return F.gaussian_nll_loss(p, t, var, full=full, eps=eps, reduction="none").mean(-1)


@register(
    formula=_gaussian_nll,
    local_grad=_gaussian_nll_grad,
    gradient="reference",
    inputs={"y_true": REAL, "y_pred": REAL},
    examples=(
        Example({"variance": 0.7}),
        Example({"variance": np.array([0.5, 1.0, 2.0, 0.1, 3.0, 1e-8]), "full": True}, label="homoscedastic"),
        Example(
            {"variance": np.array([[0.5, 1.0, 2.0], [0.2, 0.3, 4.0]]), "eps": 1e-3},
            shape=(2, 3),
            label="heteroscedastic",
        ),
        Example({"variance": np.full((2, 3, 1), 0.4)}, shape=(2, 3, 4), label="unit_axis"),
    ),
    prepare=_gaussian_nll_prepare,
    aliases=("gaussian_nll_loss",),
    peers=(Peer("torch", _torch_gaussian_nll, "F.gaussian_nll_loss"),),
    # log v, as poisson_nll.
    bench=Bench(options={"variance": 0.5}, family=TRANSCENDENTAL),
)
def gaussian_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    variance: Annotated[ArrayLike, ArrayOption(domain=VARIANCES, optional=False)],
    full: Flag = False,
    eps: Positive = 1e-6,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Gaussian negative log-likelihood (PyTorch's ``gaussian_nll_loss``), averaged over the last axis.

    .. math:: \ell = \operatorname{mean}_{-1} \tfrac{1}{2}\Big(\log v + \frac{(\hat y - y)^2}{v}\Big)
       \ [+ \tfrac{1}{2}\log 2\pi \text{ if full}],\quad v = \max(\text{variance}, \text{eps})

    Args:
      y_true: targets, shape ``(..., d)``.
      y_pred: predicted means, same shape.
      variance: non-negative variances (required): ``y_pred``'s shape (heteroscedastic),
        that shape with a last axis of 1 or without its last axis (one variance per sample,
        homoscedastic), or a scalar. It may be traced; ``jax.grad`` with respect to it
        follows PyTorch (the clamp at ``eps`` passes the gradient straight through).
        Negative or NaN entries raise ``ValueError`` when the variance is a host value
        (a number or a numpy array); device arrays are not read back to check.
      full: add the constant ``0.5 log(2 pi)``.
      eps: the variance's lower clamp, a positive scalar.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` for ``reduction="none"``
      (PyTorch's elementwise output averaged over the last axis).

    Gradient: ``(y_pred - y_true) / (v d)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.gaussian_nll(jnp.zeros((1, 2)), jnp.array([[1.0, 2.0]]), variance=1.0)
      Array(1.25, dtype=float32)
    """
    ...
