"""Crossentropies: binary, categorical, sparse (integer labels), poly-1, and the sparsemax loss.

Every Keras loss here follows Keras 3 (JAX backend): probabilities are clipped to
``[1e-7, 1 - 1e-7]`` (zero gradient where clipped; half at the exact edge, as
``jnp.clip``), categorical probabilities are first normalised by their sum,
binary label smoothing squeezes targets towards 0.5 and categorical smoothing
spreads ``label_smoothing / num_classes`` over the classes.

Where Keras is unsafe this module differs, and says so in each docstring: a
``-inf`` logit whose target is 0 contributes nothing to crossentropy from logits,
sparse crossentropy takes any class axis, integer labels are never cast to float,
and a label that names no class gives NaN.

Options beyond Keras, with optax's and PyTorch's semantics (their defaults keep
Keras's values): ``class_weight``, ``where``, ``z_loss`` and ``logit_soft_cap`` on
categorical and sparse crossentropy (and ``label_smoothing`` on sparse labels),
``pos_weight`` on binary crossentropy.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ._core import (
    EPSILON,
    TRANSCENDENTAL,
    ArrayOption,
    Axis,
    Bench,
    ClassWeights,
    Example,
    Flag,
    Fraction,
    IgnoreClass,
    NonNegative,
    Number,
    Peer,
    PerClass,
    RealNumber,
    Reduction,
    SampleWeight,
    Scalar,
    Weighted,
    along,
    class_labels,
    default_prepare,
    nan_where,
    option_axis,
    register,
    sparse_prepare,
)
from ._inputs import (
    BINARY,
    LABELS,
    LAST_AXIS_LABELS,
    LOGITS,
    ONE_HOT,
    PROBABILITIES,
    Distribution,
)
from ._logsumexp import (
    as_dtype,
    bce_from_logits,
    by_backend,
    class_count,
    dense_logits,
    fast_logits,
    logits,
    logits_grad,
    masked_log_probs,
    sigmoid_parts,
    sparse_logits,
    z_term,
)

HIGH = 1.0 - EPSILON
LOGIT_OPTIONS = ("where", "z_loss", "logit_soft_cap")

SoftCap = Annotated[Number | None, Scalar(0.0, low_open=True, optional=True)]
ClassMask = Annotated[ArrayLike | None, ArrayOption(dtype="bool")]
PositiveWeights = Annotated[ArrayLike | None, PerClass(scalar=True)]


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def clip_slope(x: jax.Array, low: float, high: float) -> jax.Array:
    """d clip(x, low, high) / dx as ``jnp.clip`` differentiates: 1 inside, 1/2 on an edge, 0 outside."""
    inside = (x > low) & (x < high)
    edge = (x == low) | (x == high)
    return jnp.where(inside, 1.0, jnp.where(edge, 0.5, jnp.where(jnp.isnan(x), x, 0.0)))


def smooth_binary(y_true: jax.Array, label_smoothing: Any) -> jax.Array:
    return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing


def smooth_categorical(y_true: jax.Array, label_smoothing: Any, axis: int) -> jax.Array:
    return y_true * (1.0 - label_smoothing) + label_smoothing / float(y_true.shape[axis])


def normalised(y_pred: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    total = jnp.sum(y_pred, axis=axis, keepdims=True)
    return y_pred / total, total


def through_normalisation(g: jax.Array, out: jax.Array, total: jax.Array, axis: int) -> jax.Array:
    """Chain rule through ``out = y / sum(y)``: ``(g - sum(g * out)) / sum(y)``."""
    return (g - jnp.sum(g * out, axis=axis, keepdims=True)) / total


def _axis(axis: int, y_pred: jax.Array) -> int:
    return axis % y_pred.ndim


def _probabilities_or_logits(options: Mapping[str, Any]) -> Any:
    return LOGITS if options["from_logits"] else Distribution(axis="axis")


def _binary_pred(options: Mapping[str, Any]) -> Any:
    return LOGITS if options["from_logits"] else PROBABILITIES


def _optax_softmax_applies(o) -> bool:
    """Options under which optax's softmax crossentropies compute the same loss: logits along
    the last axis, with no smoothing, class weights, mask, soft cap or z-loss."""
    return bool(
        o["from_logits"]
        and o["axis"] == -1
        and o["label_smoothing"] == 0
        and all(o[k] is None for k in ("class_weight", "where", "logit_soft_cap"))
        and o["z_loss"] == 0
    )


def _requires_logits() -> dict[str, tuple[str, Any]]:
    return {name: ("from_logits", True) for name in LOGIT_OPTIONS}


def _check_where(spec, y_pred: jax.Array, where: Any) -> None:
    if where is None:
        return
    shape = tuple(np.shape(where))
    try:
        fits = np.broadcast_shapes(shape, y_pred.shape) == tuple(y_pred.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{spec.name}: where must be a boolean mask over the classes that broadcasts to y_pred's shape; "
            f"received where.shape={shape}, y_pred.shape={tuple(y_pred.shape)}."
        )


def _check_classes(spec, y_pred: jax.Array, ax: int) -> None:
    if y_pred.shape[ax] == 0:
        raise ValueError(
            f"{spec.name}: y_pred must have at least one class along axis {ax}; received y_pred.shape={y_pred.shape}."
        )


# --------------------------------------------------------------------------
# binary_crossentropy
# --------------------------------------------------------------------------


def bce_elementwise(t, y_pred, from_logits, positive=None):
    """Elementwise crossentropy; ``positive`` (default ``t``) weighs the positive term (``pos_weight * t``)."""
    positive = t if positive is None else positive
    if from_logits:
        return bce_from_logits(t, y_pred, jnp.log1p(jnp.exp(-jnp.abs(y_pred))), positive)
    p = jnp.clip(y_pred, EPSILON, HIGH)
    return -(positive * jnp.log(p) + (1.0 - t) * jnp.log(1.0 - p))


def bce_elementwise_grad(t, y_pred, from_logits, positive=None):
    if from_logits:
        p, q, _ = sigmoid_parts(y_pred)
        # (1 - t) p - w t q: sigmoid(z) - t without the cancellation at confident logits.
        return (1.0 - t) * p - (t if positive is None else positive) * q
    positive = t if positive is None else positive
    p = jnp.clip(y_pred, EPSILON, HIGH)
    return clip_slope(y_pred, EPSILON, HIGH) * ((1.0 - t) / (1.0 - p) - positive / p)


def _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis):
    t = smooth_binary(y_true, as_dtype(label_smoothing, y_pred))
    positive = None if pos_weight is None else along(pos_weight, y_pred, axis % y_pred.ndim) * t
    return t, positive


def _bce(y_true, y_pred, *, from_logits, label_smoothing, axis, pos_weight):
    t, positive = _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis)
    return jnp.mean(bce_elementwise(t, y_pred, from_logits, positive), axis=axis)


def _bce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis, pos_weight):
    t, positive = _bce_targets(y_true, y_pred, label_smoothing, pos_weight, axis)
    return bce_elementwise_grad(t, y_pred, from_logits, positive) / float(y_pred.shape[axis])


def _torch_bce(torch, F, t, p, *, from_logits, label_smoothing, axis, pos_weight):
    t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if pos_weight is not None:
        shape = [1] * p.ndim
        shape[axis] = -1
        pw = torch.as_tensor(np.asarray(pos_weight), dtype=p.dtype).reshape(shape if np.ndim(pos_weight) else ())
        return F.binary_cross_entropy_with_logits(p, t, reduction="none", pos_weight=pw).mean(axis)
    if from_logits:
        return F.binary_cross_entropy_with_logits(p, t, reduction="none").mean(axis)
    return F.binary_cross_entropy(p, t, reduction="none").mean(axis)


LOGITS_OPTS = {"from_logits": True}


@register(
    formula=_bce,
    local_grad=_bce_grad,
    gradient="rule",
    inputs={"y_true": PROBABILITIES, "y_pred": _binary_pred},
    examples=(
        Example(inputs={"y_true": BINARY}),
        Example(LOGITS_OPTS, inputs={"y_true": BINARY}),
        Example({"label_smoothing": 0.2}, shape=(2, 3, 4), label="rank3"),
        Example({"from_logits": True, "label_smoothing": 0.1}, shape=(2, 3, 4), inputs={"y_true": BINARY}),
        Example({"axis": 0}, shape=(4, 3), inputs={"y_true": BINARY}),
        Example({"from_logits": True, "axis": 1}, shape=(2, 4, 3), inputs={"y_true": BINARY}),
        Example(shape=(7, 1), true_shape=(7,), inputs={"y_true": BINARY}, peers=False, label="N_vs_N1"),
        Example(LOGITS_OPTS, shape=(7, 1), true_shape=(7,), inputs={"y_true": BINARY}, peers=False, label="N_vs_N1"),
        Example({"pos_weight": np.array([0.5, 1.0, 2.0, 3.0, 0.0])}, keras=False),
        Example({"from_logits": True, "pos_weight": 2.5, "label_smoothing": 0.1}, keras=False),
        Example({"from_logits": True, "pos_weight": np.array([3.0, 0.5, 1.5]), "axis": 0}, shape=(3, 4), keras=False),
    ),
    prepare=default_prepare,
    reduced_axes=option_axis,
    keras="BinaryCrossentropy",
    aliases=("bce",),
    peers=(
        Peer(
            "optax",
            lambda t, p, **o: optax.losses.sigmoid_binary_cross_entropy(p, t).mean(-1),
            "sigmoid_binary_cross_entropy(z, t)",
            applies=lambda o: (
                o["from_logits"] and o["label_smoothing"] == 0 and o["pos_weight"] is None and o["axis"] == -1
            ),
        ),
        Peer(
            "torch",
            _torch_bce,
            "F.binary_cross_entropy(_with_logits)",
            applies=lambda o: o["from_logits"] or o["pos_weight"] is None,  # pos_weight needs logits in PyTorch
        ),
    ),
    bench=Bench(LOGITS_OPTS, family=TRANSCENDENTAL),
)
def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: Flag = False,
    label_smoothing: Fraction = 0.0,
    axis: Axis = -1,
    pos_weight: PositiveWeights = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Binary crossentropy, averaged over ``axis``.

    .. math::
      \ell = -\operatorname{mean}_{axis}\big(w\, t \log p + (1 - t)\log(1 - p)\big),\quad
      t = y(1 - s) + s/2

    with ``p = clip(y_pred, 1e-7, 1 - 1e-7)``, or ``log p = log_sigmoid(y_pred)``
    and ``log(1 - p) = log_sigmoid(-y_pred)`` when ``from_logits``; ``w = pos_weight``
    (1 by default).

    Args:
      y_true: targets in ``[0, 1]``, shape ``(..., d)``.
      y_pred: probabilities (or logits when ``from_logits``), same shape; Keras's rank
        rule applies (``(N,)`` against ``(N, 1)``).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ``s`` in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis averaged over.
      pos_weight: None, or a weight ``>= 0`` of the positive term: a scalar or one per
        class ``(d,)`` laid along ``axis`` (may be traced). PyTorch's
        ``binary_cross_entropy_with_logits(pos_weight=...)``: the per-sample values are
        its elementwise output (``reduction="none"``) averaged over ``axis``; it applies
        from probabilities too.
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient: ``((1 - t) sigmoid(z) - w t sigmoid(-z)) / d`` from logits (``sigmoid(z) - t``
    when ``w = 1``, computed without cancellation at confident logits);
    ``((1 - t)/(1 - p) - w t/p) / d`` from probabilities, 0 where ``y_pred`` is clipped
    (closed form, the custom JVP rule).

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true, y_pred = jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]])
      >>> print(f"{jaxloss.binary_crossentropy(y_true, y_pred):.5f}")
      0.81492
      >>> loss = jaxloss.binary_crossentropy(
      ...     jnp.array([[0.0, 1.0]]), jnp.array([[-1.0, 2.0]]), from_logits=True, pos_weight=jnp.array([1.0, 3.0]))
      >>> print(f"{loss:.5f}")
      0.34702
    """
    ...


# --------------------------------------------------------------------------
# categorical_crossentropy
# --------------------------------------------------------------------------


def _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg=None):
    """Smoothed targets: reweighted to ``w y / sum(w y)`` with class weights (the sum becomes
    the sample's weight, so value times weight is ``sum_c w_c y_c (-log p_c)``, PyTorch's soft
    targets); masked classes take no target mass and smoothing spreads over the unmasked ones."""
    y = y_true
    if class_weight is not None:
        wy = along(class_weight, y_pred, ax) * y_true
        total = jnp.sum(wy, axis=ax, keepdims=True)
        y = jnp.where(total != 0, wy / jnp.where(total != 0, total, 1.0), 0.0)
    a = as_dtype(label_smoothing, y_pred)
    if lg is None or lg.valid is None:
        return smooth_categorical(y, a, ax)
    t = y * (1.0 - a) + a / class_count(lg, y_pred, ax)
    return jnp.where(lg.valid, t, 0.0)


def _cce_weight(y_true, y_pred, values, *, axis, class_weight, **_):
    """Each sample's class weight ``sum_c w_c y_c``, a second sample weight (None without class weights)."""
    if class_weight is None:
        return None
    ax = _axis(axis, y_pred)
    return Weighted(None, jnp.sum(along(class_weight, y_pred, ax) * y_true, axis=ax))


def _cce(y_true, y_pred, *, from_logits, label_smoothing, axis, class_weight, where, z_loss, logit_soft_cap):
    ax = _axis(axis, y_pred)
    if fast_logits(from_logits, where, logit_soft_cap):
        t = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
        return dense_logits(t, y_pred, None, ax=ax, z_loss=z_loss)
    if from_logits:
        lg = logits(y_pred, ax, where, logit_soft_cap)
        t = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg)
        return -jnp.sum(masked_log_probs(t, lg.log_q), axis=ax) + jnp.squeeze(z_term(lg, z_loss, slope=False), ax)
    t = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
    out, _ = normalised(y_pred, ax)
    return -jnp.sum(t * jnp.log(jnp.clip(out, EPSILON, HIGH)), axis=ax)


def _cce_grad(y_true, y_pred, *, from_logits, label_smoothing, axis, class_weight, where, z_loss, logit_soft_cap):
    ax = _axis(axis, y_pred)
    if from_logits:
        lg = logits(y_pred, ax, where, logit_soft_cap)
        t = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight, lg)
        return logits_grad(t, lg, ax, z_loss)
    t = _cce_targets(y_true, y_pred, ax, label_smoothing, class_weight)
    out, total = normalised(y_pred, ax)
    g = -t / jnp.clip(out, EPSILON, HIGH) * clip_slope(out, EPSILON, HIGH)
    return through_normalisation(g, out, total, ax)


def _cce_jvp(y_true, y_pred, t_pred, **opts):
    if not fast_logits(opts["from_logits"], opts["where"], opts["logit_soft_cap"]):
        return None  # the default rule: formula and local_grad
    ax = _axis(opts["axis"], y_pred)
    t = _cce_targets(y_true, y_pred, ax, opts["label_smoothing"], opts["class_weight"])
    return by_backend(functools.partial(dense_logits, ax=ax, z_loss=opts["z_loss"]), t, y_pred, t_pred)


def _cce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = default_prepare(spec, y_true, y_pred, opts)
    _check_classes(spec, y_pred, _axis(opts["axis"], y_pred))
    _check_where(spec, y_pred, opts["where"])
    return y_true, y_pred


CW5 = np.array([0.5, 2.0, 1.0, 0.0, 1.5])  # one class weighted 0
MASK5 = np.array([True, True, False, True, True])
# A class mask broadcast over rows, with -inf logits under it, and labels on unmasked classes.
MASK10 = np.array([True, True, False, True, True, True, False, True, True, False])


def _masked_draw(sparse: bool, rows: int = 16):
    def draw(rng):
        labels = rng.choice(np.flatnonzero(MASK10), rows)
        z = np.where(MASK10, rng.normal(0.0, 2.0, (rows, MASK10.size)), -np.inf)
        return (labels if sparse else np.eye(MASK10.size)[labels]), z

    return draw


@register(
    formula=_cce,
    local_grad=_cce_grad,
    gradient="rule",
    jvp=_cce_jvp,
    mask=_cce_weight,
    inputs={"y_true": Distribution(axis="axis"), "y_pred": _probabilities_or_logits},
    examples=(
        Example(inputs={"y_true": ONE_HOT}),
        Example(LOGITS_OPTS, label="soft"),
        Example(inputs={"y_true": ONE_HOT, "y_pred": PROBABILITIES}, label="unnormalised"),
        Example({"label_smoothing": 0.1}, shape=(2, 3, 4), inputs={"y_true": ONE_HOT}),
        Example({"from_logits": True, "label_smoothing": 0.2}, shape=(2, 3, 4), inputs={"y_true": ONE_HOT}),
        Example({"axis": 0}, shape=(4, 3), inputs={"y_true": Distribution(axis="axis", hard=True)}),
        Example(
            {"from_logits": True, "axis": 1}, shape=(2, 4, 3), inputs={"y_true": Distribution(axis="axis", hard=True)}
        ),
        # Keras smooths with the last axis's size whatever the class axis (tested beside the loss).
        Example({"from_logits": True, "label_smoothing": 0.1, "axis": 1}, shape=(2, 4, 3), keras=False),
        Example({"class_weight": CW5}, inputs={"y_true": ONE_HOT}, keras=False),
        Example({"class_weight": CW5, "label_smoothing": 0.1}, keras=False, label="soft"),
        Example({"from_logits": True, "class_weight": CW5, "label_smoothing": 0.2}, keras=False, label="soft"),
        Example({"from_logits": True, "where": MASK5}, keras=False, label="soft"),
        Example({"from_logits": True, "z_loss": 0.05}, inputs={"y_true": ONE_HOT}, keras=False),
        Example({"from_logits": True, "logit_soft_cap": 2.0}, inputs={"y_true": ONE_HOT}, keras=False),
        Example(
            {
                "from_logits": True,
                "where": np.array([True, False, True, True]),
                "label_smoothing": 0.2,
                "z_loss": 0.01,
                "logit_soft_cap": 2.5,
                "class_weight": np.array([1.0, 0.5, 2.0, 1.5]),
            },
            shape=(2, 3, 4),
            keras=False,
            label="rank3",
        ),
        Example(
            {
                "from_logits": True,
                "axis": 1,
                "class_weight": np.array([1.0, 2.0, 0.5, 1.0]),
                "z_loss": 0.02,
                "where": np.array([[True], [True], [False], [True]]),
            },
            shape=(2, 4, 3),
            inputs={"y_true": Distribution(axis="axis", hard=True)},
            keras=False,
        ),
        Example({"from_logits": True, "where": MASK10}, shape=(16, 10), draw=_masked_draw(False), keras=False),
    ),
    prepare=_cce_prepare,
    reduced_axes=option_axis,
    keras="CategoricalCrossentropy",
    aliases=("cce",),
    requires=_requires_logits(),
    peers=(
        Peer(
            "optax",
            lambda t, p, **o: optax.losses.softmax_cross_entropy(p, t),
            "softmax_cross_entropy(z, t)",
            applies=_optax_softmax_applies,
        ),
        Peer(
            "torch",
            lambda torch, F, t, p, **o: F.cross_entropy(
                torch.movedim(p, o["axis"], 1),
                torch.movedim(t, o["axis"], 1),
                reduction="none",
                label_smoothing=o["label_smoothing"],
            ),
            "F.cross_entropy(z, t)",
            applies=lambda o: (
                o["from_logits"]
                and all(o[k] is None for k in ("class_weight", "where", "logit_soft_cap"))
                and o["z_loss"] == 0
            ),
        ),
    ),
    bench=Bench(LOGITS_OPTS),
)
def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: Flag = False,
    label_smoothing: Fraction = 0.0,
    axis: Axis = -1,
    class_weight: ClassWeights = None,
    where: ClassMask = None,
    z_loss: NonNegative = 0.0,
    logit_soft_cap: SoftCap = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Categorical crossentropy over the class ``axis`` (one-hot or soft targets).

    .. math::
      \ell = -\sum_{axis} t \log p,\quad t = y(1 - s) + s / C

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` (Keras normalises the
    probabilities), or ``log p = log_softmax(y_pred)`` when ``from_logits``.

    Options beyond Keras (optax and PyTorch):

    - ``class_weight`` ``w`` of shape ``(C,)``: the per-sample value becomes
      ``sum_c w_c y_c (-log p_c)`` (PyTorch's ``cross_entropy(weight=w)``; for one-hot
      targets, the loss times the label's weight). Each sample counts with the weight
      ``sum_c w_c y_c`` in ``"mean_with_sample_weight"``, which then divides by the sum of
      those weights (times ``sample_weight``): PyTorch's weighted mean.
      ``"sum_over_batch_size"`` still divides by the number of samples, as Keras does.
      With label smoothing, the smoothing part ``s mean_c(-log p_c)`` is weighted by the
      sample's weight ``sum_c w_c y_c`` too, so one-hot targets give the label's weight
      times the smoothed loss (PyTorch weighs each class of the smoothing part by its own
      weight instead).
    - ``where`` (logits only): a boolean mask over the classes, broadcastable to
      ``y_pred``; masked classes take no probability mass (the softmax and the
      log-sum-exp run over the unmasked ones, any logit, ``-inf`` included, may sit
      under the mask), target mass on them is left out, and label smoothing spreads
      ``s / C'`` over the ``C'`` unmasked classes: optax's
      ``softmax_cross_entropy(..., where=...)`` with ``smooth_labels(..., where=...)``.
      A row with no class left gives 0.
    - ``z_loss`` (logits only, ``>= 0``): adds ``z_loss * logsumexp(z)**2`` per sample.
    - ``logit_soft_cap`` (logits only, ``> 0``): logits become ``cap * tanh(z / cap)``
      before everything else.

    ``where``, ``z_loss`` and ``logit_soft_cap`` act on logits: set with
    ``from_logits=False`` they raise ``ValueError`` (they would be ignored).

    Differences from Keras: a ``-inf`` logit (a masked class) whose target is 0
    contributes 0, in value and gradient (Keras gives NaN), and target mass on a ``-inf``
    logit gives ``+inf``; ``C`` in the label smoothing is the size of the class ``axis``
    (Keras uses the last axis's size even when ``axis != -1``).

    Args:
      y_true: targets, shape ``(..., C)`` (classes along ``axis``).
      y_pred: probabilities (or logits when ``from_logits``), same shape.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ``s`` in ``[0, 1]``.
      axis: the class axis.
      class_weight: None, or non-negative weights of shape ``(C,)`` (may be traced).
      where: None, or a boolean mask broadcastable to ``y_pred`` (needs ``from_logits``).
      z_loss: coefficient ``>= 0`` of ``logsumexp(z)**2`` (needs ``from_logits`` unless 0).
      logit_soft_cap: None, or the cap ``> 0`` (needs ``from_logits``).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (``y_pred``'s shape less ``axis``) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): from logits
    ``(softmax(z) (sum(t) + 2 z_loss lse) - t) (1 - tanh(y_pred / cap)**2)`` with the softmax
    over the unmasked classes, ``t`` the (reweighted, smoothed) targets and the last factor
    only under the soft cap; from probabilities ``(g - sum(g out)) / sum(y_pred)`` with
    ``out`` the normalised probabilities and ``g = -t / out`` (0 where clipped); class
    weights scale each sample's gradient by its weight.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> loss = jaxloss.categorical_crossentropy(
      ...     y_true, jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]), reduction="none")
      >>> print(loss.round(5))
      [0.05129 2.30259]
      >>> logits = jnp.array([[-jnp.inf, 2.0, 0.0]])
      >>> print(f"{jaxloss.categorical_crossentropy(jnp.array([[0.0, 1.0, 0.0]]), logits, from_logits=True):.5f}")
      0.12693
      >>> logits = jnp.array([[1.0, 2.0, 0.0], [0.5, -jnp.inf, 1.0]])
      >>> loss = jaxloss.categorical_crossentropy(  # (2 * 0.4076 + 0.5 * 0.4741) / (2 + 0.5)
      ...     y_true, logits, from_logits=True, class_weight=jnp.array([1.0, 2.0, 0.5]),
      ...     where=jnp.array([[True, True, True], [True, False, True]]), reduction="mean_with_sample_weight")
      >>> print(f"{loss:.5f}")
      0.42090
    """
    ...


# --------------------------------------------------------------------------
# sparse_categorical_crossentropy
# --------------------------------------------------------------------------


def _scce_labels(y_true, y_pred, ax, ignore_class):
    return class_labels(y_true, y_pred.shape[ax], ignore_class)


def _scce_safe(y_pred, labels, ax, from_logits):
    """Ignored positions get harmless predictions, so that a NaN or inf among their (padding)
    scores reaches neither values nor gradients. Without ``ignore_class`` nothing is
    selected: a row whose label names no class is NaN whatever its scores."""
    if labels.ignored is None:
        return y_pred
    return jnp.where(jnp.expand_dims(labels.ignored, ax), 0.0 if from_logits else 1.0, y_pred)


def _scce_finish(values, labels):
    """0 at ignored positions, NaN where the label names no class (a product, so the
    gradient is NaN there too)."""
    if labels.ignored is not None:
        values = jnp.where(labels.ignored, 0.0, values)
    return nan_where(labels.nan, values)


def _scce_mask(y_true, y_pred, values, *, axis, ignore_class, class_weight, **_):
    ax = _axis(axis, y_pred)
    labels = _scce_labels(y_true, y_pred, ax, ignore_class)
    valid = None if labels.ignored is None else ~labels.ignored
    if class_weight is None:
        return valid
    weight = jnp.take(jnp.asarray(class_weight, y_pred.dtype), labels.index)
    return Weighted(valid, weight)


def _scce_targets(labels, y_pred, ax, a, lg):
    """Keras-smoothed one-hot targets ``(1 - a) [c = y] + a / C``: an expression that XLA fuses, never stored."""
    hot = jax.lax.broadcasted_iota(jnp.int32, y_pred.shape, ax) == jnp.expand_dims(labels.index, ax)
    if lg is not None and lg.valid is not None:
        hot = hot & lg.valid
    t = jnp.where(hot, 1.0 - a, 0.0) + a / class_count(lg, y_pred, ax)
    return t if lg is None or lg.valid is None else jnp.where(lg.valid, t, 0.0)


def _scce(y_true, y_pred, *, from_logits, ignore_class, axis, label_smoothing, class_weight, **opts):
    ax = _axis(axis, y_pred)
    labels = _scce_labels(y_true, y_pred, ax, ignore_class)
    y_pred = _scce_safe(y_pred, labels, ax, from_logits)
    if fast_logits(from_logits, opts["where"], opts["logit_soft_cap"]):
        values = sparse_logits(
            labels.index, y_pred, None, ax=ax, label_smoothing=label_smoothing, z_loss=opts["z_loss"]
        )
        return _scce_finish(values, labels)
    if from_logits:
        lg = logits(y_pred, ax, opts["where"], opts["logit_soft_cap"])
        log_p = lg.log_q
    else:
        lg = None
        out, _ = normalised(y_pred, ax)
        log_p = jnp.log(jnp.clip(out, EPSILON, HIGH))
    hot = jax.lax.broadcasted_iota(jnp.int32, y_pred.shape, ax) == jnp.expand_dims(labels.index, ax)
    if lg is not None and lg.valid is not None:
        hot = hot & lg.valid
    a = as_dtype(label_smoothing, y_pred)
    # where, not a one-hot product: a -inf logit of another class contributes 0, not NaN.
    values = -(1.0 - a) * jnp.sum(jnp.where(hot, log_p, 0.0), axis=ax)
    # Smoothing's a/C on every class: a times the mean log-probability over the (unmasked) classes,
    # left out entirely when a == 0 (a -inf logit would make 0 * inf).
    masked = log_p if lg is None or lg.valid is None else jnp.where(lg.valid, log_p, 0.0)
    total_log_p = jnp.sum(masked, axis=ax, keepdims=True)
    mean_log_p = jnp.squeeze(total_log_p / class_count(lg, y_pred, ax), ax)
    values = values - a * jnp.where(a != 0, mean_log_p, 0.0)
    if lg is not None:
        values = values + jnp.squeeze(z_term(lg, opts["z_loss"], slope=False), ax)
    return _scce_finish(values, labels)


def _scce_grad(y_true, y_pred, *, from_logits, ignore_class, axis, label_smoothing, class_weight, **opts):
    ax = _axis(axis, y_pred)
    labels = _scce_labels(y_true, y_pred, ax, ignore_class)
    y_pred = _scce_safe(y_pred, labels, ax, from_logits)
    lg = logits(y_pred, ax, opts["where"], opts["logit_soft_cap"]) if from_logits else None
    t = _scce_targets(labels, y_pred, ax, as_dtype(label_smoothing, y_pred), lg)
    if lg is not None:
        grad = logits_grad(t, lg, ax, opts["z_loss"])
    else:
        out, total = normalised(y_pred, ax)
        g = -t * clip_slope(out, EPSILON, HIGH) / jnp.clip(out, EPSILON, HIGH)
        grad = through_normalisation(g, out, total, ax)
    return _scce_finish(grad, labels._replace(**_expanded(labels, ax)))


def _expanded(labels, ax):
    expand = functools.partial(jnp.expand_dims, axis=ax)
    return {"named": expand(labels.named), "ignored": None if labels.ignored is None else expand(labels.ignored)}


def _scce_jvp(y_true, y_pred, t_pred, **opts):
    if not fast_logits(opts["from_logits"], opts["where"], opts["logit_soft_cap"]):
        return None  # the default rule: formula and local_grad
    ax = _axis(opts["axis"], y_pred)
    labels = _scce_labels(y_true, y_pred, ax, opts["ignore_class"])
    y_pred = _scce_safe(y_pred, labels, ax, True)
    fn = functools.partial(sparse_logits, ax=ax, label_smoothing=opts["label_smoothing"], z_loss=opts["z_loss"])
    values, tangent = by_backend(fn, labels.index, y_pred, t_pred)
    return _scce_finish(values, labels), _scce_finish(tangent, labels)


def _scce_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = sparse_prepare(spec, y_true, y_pred, opts)
    _check_classes(spec, y_pred, _axis(opts["axis"], y_pred))
    _check_where(spec, y_pred, opts["where"])
    return y_true, y_pred


def _torch_scce(torch, F, t, p, *, from_logits, ignore_class, axis, label_smoothing, class_weight, **_):
    weight = None if class_weight is None else torch.as_tensor(np.asarray(class_weight), dtype=p.dtype)
    ignore = -100 if ignore_class is None else ignore_class
    return F.cross_entropy(
        torch.movedim(p, axis, 1),
        t.long(),
        weight=weight,
        ignore_index=ignore,
        reduction="none",
        label_smoothing=label_smoothing,
    )


@register(
    formula=_scce,
    local_grad=_scce_grad,
    gradient="rule",
    jvp=_scce_jvp,
    mask=_scce_mask,
    inputs={"y_true": LABELS, "y_pred": _probabilities_or_logits},
    examples=(
        Example(),
        Example(LOGITS_OPTS),
        Example(shape=(2, 3, 4), label="rank3"),
        Example(LOGITS_OPTS, shape=(2, 3, 4), label="rank3"),
        Example(true_shape=(6, 1), label="N1_labels"),
        Example({"from_logits": True, "ignore_class": -1}, shape=(8, 5)),
        Example({"ignore_class": 255}, shape=(6, 4), label="void255"),
        Example({"ignore_class": 2}, shape=(2, 4, 3)),
        Example({"from_logits": True, "axis": 1}, shape=(2, 5, 3), keras=False),
        Example({"axis": 0, "ignore_class": -1}, shape=(5, 4), keras=False),
        Example({"label_smoothing": 0.1}, keras=False),
        Example({"from_logits": True, "label_smoothing": 0.2}, keras=False),
        Example({"from_logits": True, "class_weight": CW5}, keras=False),
        Example({"class_weight": CW5, "ignore_class": -1}, shape=(8, 5), keras=False),
        Example(
            {"from_logits": True, "class_weight": CW5, "label_smoothing": 0.1, "ignore_class": -1},
            shape=(8, 5),
            keras=False,
        ),
        Example({"from_logits": True, "where": MASK5, "z_loss": 0.05}, keras=False),
        Example(
            {"from_logits": True, "logit_soft_cap": 2.0, "label_smoothing": 0.1, "where": MASK5, "class_weight": CW5},
            shape=(2, 3, 5),
            keras=False,
        ),
        Example(
            {
                "from_logits": True,
                "axis": 1,
                "label_smoothing": 0.1,
                "where": np.array([[True], [False], [True], [True], [True]]),
            },
            shape=(2, 5, 3),
            keras=False,
        ),
        Example({"from_logits": True, "where": MASK10}, shape=(16, 10), draw=_masked_draw(True), keras=False),
    ),
    prepare=_scce_prepare,
    reduced_axes=option_axis,
    keras="SparseCategoricalCrossentropy",
    aliases=("scce",),
    requires=_requires_logits(),
    peers=(
        Peer(
            "optax",
            lambda t, p, **o: optax.losses.softmax_cross_entropy_with_integer_labels(p, t),
            "softmax_cross_entropy_with_integer_labels(z, y)",
            applies=lambda o: _optax_softmax_applies(o) and o["ignore_class"] is None,
        ),
        Peer(
            "torch",
            _torch_scce,
            "F.cross_entropy(z, y)",
            applies=lambda o: (
                o["from_logits"]
                and all(o[k] is None for k in ("where", "logit_soft_cap"))
                and o["z_loss"] == 0
                and (o["class_weight"] is None or o["label_smoothing"] == 0)
            ),
        ),
    ),
    bench=Bench(LOGITS_OPTS),
)
def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    from_logits: Flag = False,
    ignore_class: IgnoreClass = None,
    axis: Axis = -1,
    label_smoothing: Fraction = 0.0,
    class_weight: ClassWeights = None,
    where: ClassMask = None,
    z_loss: NonNegative = 0.0,
    logit_soft_cap: SoftCap = None,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Crossentropy with integer class labels.

    .. math:: \ell = -(1 - s)\log p_{y} - s\,\operatorname{mean}_{axis} \log p

    with ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` along ``axis``, or
    ``log p = log_softmax(y_pred)`` when ``from_logits``; ``s = label_smoothing``
    (0 by default: ``-log p_y``).

    Labels: a label names a class when it is an integer in ``[0, C)`` (float labels that
    are integral count, as in Keras). A label that names no class (out of range, a
    fraction such as 2.7, NaN) and is not ``ignore_class`` gives NaN for its sample, in
    value and gradient: never another class's score. Keras gives 0 for out-of-range
    labels and truncates fractions; :func:`jaxloss.checked` names the first such label.

    ``label_smoothing``: Keras's convention, ``1 - s`` on the label plus ``s / C`` on every
    class, equal to :func:`categorical_crossentropy` with the one-hot labels and the same
    smoothing; computed from the mean log-probability, no one-hot is formed.

    ``class_weight`` ``w`` of shape ``(C,)``: each sample's value is multiplied by its
    label's weight ``w_y`` (PyTorch's ``cross_entropy(weight=w)``), and the sample counts
    with the weight ``w_y`` in ``"mean_with_sample_weight"``, which then divides by the sum
    of the labels' weights (times ``sample_weight``; ignored positions left out): PyTorch's
    weighted mean. ``"sum_over_batch_size"`` divides by the number of (valid) samples, as
    Keras does. With label smoothing the whole smoothed value is weighted by ``w_y``
    (PyTorch weighs each class of the smoothing part by its own weight).

    ``where``, ``z_loss``, ``logit_soft_cap`` (logits only; set with ``from_logits=False``
    they raise) as in :func:`categorical_crossentropy`: masked classes take no probability
    mass (optax's ``softmax_cross_entropy_with_integer_labels(..., where=...)`` for a label
    on an unmasked class; a label on a masked class selects nothing, like its one-hot row
    in :func:`categorical_crossentropy`), ``z_loss * logsumexp(z)**2`` is added, the logits
    are soft-capped to ``cap * tanh(z / cap)`` first.

    ``ignore_class``: positions whose label equals it get the value 0 and are left out
    of the mean (the reductions ``"sum_over_batch_size"`` and ``"mean"`` divide by the
    number of valid positions, as Keras does with its loss mask); a batch with no
    valid position gives 0.

    Differences from Keras: any class ``axis`` works (Keras's JAX backend rejects
    ``axis != -1``); integer labels are never cast to float (Keras turns label 257 into
    256 under bfloat16); a ``-inf`` logit of a class other than the label contributes 0,
    in value and gradient (Keras and optax give NaN); labels that name no class give NaN.

    Args:
      y_true: integer labels of ``y_pred``'s shape without the class axis; a unit class
        axis (``(N, 1)`` labels) is squeezed.
      y_pred: probabilities (or logits when ``from_logits``), shape ``(..., C)``.
      from_logits: whether ``y_pred`` holds logits.
      ignore_class: a label value to leave out, or None.
      axis: the class axis of ``y_pred``.
      label_smoothing: ``s`` in ``[0, 1]`` (may be traced).
      class_weight: None, or non-negative weights of shape ``(C,)`` (may be traced).
      where: None, or a boolean mask broadcastable to ``y_pred`` (needs ``from_logits``).
      z_loss: coefficient ``>= 0`` of ``logsumexp(z)**2`` (needs ``from_logits`` unless 0).
      logit_soft_cap: None, or the cap ``> 0`` (needs ``from_logits``).
      sample_weight: weight of the per-sample loss's shape or a leading prefix of it.
      reduction: one of the five reductions (see :func:`binary_crossentropy`).

    Returns:
      A scalar, or per-sample values (the labels' shape) for ``reduction="none"``.

    Gradient (closed form, the custom JVP rule): with ``t = (1 - s) onehot(y) + s / C``
    (over the unmasked classes), from logits ``(softmax(z) (sum(t) + 2 z_loss lse) - t)``,
    times ``1 - tanh(y_pred / cap)**2`` under the soft cap (``softmax(z) - onehot(y)`` by
    default); from probabilities ``(g - sum(g out)) / sum(y_pred)`` with ``g = -t / out``
    (0 where clipped); 0 at ignored positions; times ``w_y`` with class weights.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_pred = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
      >>> print(f"{jaxloss.sparse_categorical_crossentropy(jnp.array([1, 2]), y_pred):.5f}")
      1.17694
      >>> print(f"{jaxloss.sparse_categorical_crossentropy(jnp.array([1, -1]), y_pred, ignore_class=-1):.5f}")
      0.05129
      >>> jaxloss.sparse_categorical_crossentropy(jnp.array([1, 3]), y_pred, reduction="none")
      Array([0.05129331,        nan], dtype=float32)
      >>> logits = jnp.array([[1.0, 3.0, -1.0], [0.0, 0.5, 2.0]])
      >>> loss = jaxloss.sparse_categorical_crossentropy(  # PyTorch's weighted mean: sum w_y l / sum w_y
      ...     jnp.array([1, 2]), logits, from_logits=True, class_weight=jnp.array([1.0, 0.5, 2.0]),
      ...     reduction="mean_with_sample_weight")
      >>> print(f"{loss:.5f}")
      0.27367
    """
    ...


# --------------------------------------------------------------------------
# poly_loss (optax's poly_loss_cross_entropy)
# --------------------------------------------------------------------------


def _poly_loss(y_true, y_pred, *, epsilon):
    log_probs = jax.nn.log_softmax(y_pred, axis=-1)
    cross_entropy = -jnp.sum(y_true * log_probs, axis=-1)
    return cross_entropy + epsilon * jnp.sum(y_true * (1.0 - jnp.exp(log_probs)), axis=-1)


def _poly_loss_grad(y_true, y_pred, *, epsilon):
    probs = jax.nn.softmax(y_pred, axis=-1)
    mass = jnp.sum(y_true, axis=-1, keepdims=True)
    agreement = jnp.sum(y_true * probs, axis=-1, keepdims=True)
    return probs * mass - y_true + epsilon * probs * (agreement - y_true)


@register(
    formula=_poly_loss,
    local_grad=_poly_loss_grad,
    gradient="reference",
    inputs={"y_true": Distribution(axis=-1), "y_pred": LOGITS},
    examples=(
        Example(inputs={"y_true": Distribution(axis=-1, hard=True)}),
        Example({"epsilon": -1.0}, label="soft"),
    ),
    aliases=("poly_loss_cross_entropy",),
    peers=(
        Peer(
            "optax",
            lambda t, p, epsilon: optax.losses.poly_loss_cross_entropy(p, t, epsilon=epsilon),
            "poly_loss_cross_entropy(z, t, epsilon)",
        ),
    ),
)
def poly_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    epsilon: RealNumber = 2.0,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Poly-1 cross-entropy (optax's ``poly_loss_cross_entropy``; Leng et al., 2022).

    .. math:: \ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c),\quad p = \operatorname{softmax}(\hat y)

    Args:
      y_true: one-hot or soft labels, shape ``(..., C)``.
      y_pred: logits, same shape.
      epsilon: the first polynomial coefficient's shift (2.0 for ImageNet, -1.0 for
        detection in the paper; may be a traced scalar).
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (optax's output) for ``reduction="none"``.

    Gradient: ``p sum(y) - y + epsilon p (p . y - y)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> print(f"{jaxloss.poly_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]])):.5f}")
      1.69315
    """
    ...


# --------------------------------------------------------------------------
# sparsemax_loss (optax's multiclass_sparsemax_loss)
# --------------------------------------------------------------------------


def _sparsemax(scores):
    """Euclidean projection of ``scores`` onto the simplex along the last axis.

    Computed on ``scores - max``: the projection is shift invariant, and the shifted
    scores keep the cumulative sums exact at any magnitude (1e8 would lose them).
    """
    scores = scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
    ordered = jnp.flip(jnp.sort(scores, axis=-1), axis=-1)
    cumulative = jnp.cumsum(ordered, axis=-1)
    ranks = jnp.arange(1, scores.shape[-1] + 1, dtype=scores.dtype).reshape((1,) * (scores.ndim - 1) + (-1,))
    support = jnp.sum(1.0 + ranks * ordered > cumulative, axis=-1, keepdims=True)
    threshold = (jnp.take_along_axis(cumulative, support - 1, axis=-1, mode="clip") - 1.0) / support.astype(
        scores.dtype
    )
    return jnp.maximum(scores - threshold, 0.0)


def _sparsemax_loss(y_true, y_pred):
    labels = class_labels(y_true, y_pred.shape[-1])
    shifted = y_pred - jax.lax.stop_gradient(jnp.max(y_pred, axis=-1, keepdims=True))
    probs = _sparsemax(shifted)
    true_score = jnp.take_along_axis(shifted, labels.index[..., None], axis=-1, mode="clip")
    values = jnp.sum(probs * (shifted - true_score), axis=-1) + 0.5 * (1.0 - jnp.sum(jnp.square(probs), axis=-1))
    return nan_where(labels.nan, values)


def _sparsemax_loss_grad(y_true, y_pred):
    labels = class_labels(y_true, y_pred.shape[-1])
    onehot = jax.nn.one_hot(labels.index, y_pred.shape[-1], dtype=y_pred.dtype)
    return nan_where(labels.nan, _sparsemax(y_pred) - onehot)


def _sparsemax_prepare(spec, y_true, y_pred, opts):
    y_true, y_pred = sparse_prepare(spec, y_true, y_pred, opts)
    _check_classes(spec, y_pred, y_pred.ndim - 1)
    return y_true, y_pred


@register(
    formula=_sparsemax_loss,
    local_grad=_sparsemax_loss_grad,
    gradient="reference",
    inputs={"y_true": LAST_AXIS_LABELS, "y_pred": LOGITS},
    examples=(Example(smooth=False), Example(shape=(2, 3, 4), label="rank3", smooth=False)),
    prepare=_sparsemax_prepare,
    aliases=("multiclass_sparsemax_loss",),
    peers=(
        Peer(
            "optax",
            lambda t, p: optax.losses.multiclass_sparsemax_loss(p.reshape(-1, p.shape[-1]), t.reshape(-1)).reshape(
                t.shape
            ),
            "multiclass_sparsemax_loss(scores, y)",
        ),
    ),
    bench=Bench(max_elements=1024 * 8192),  # sorts every row
)
def sparsemax_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: SampleWeight = None,
    reduction: Reduction = "sum_over_batch_size",
) -> jax.Array:
    r"""Multiclass sparsemax loss (optax's ``multiclass_sparsemax_loss``; Martins & Astudillo, 2016).

    The Fenchel-Young loss of the Gini entropy: zero exactly when
    ``sparsemax(y_pred)`` is the one-hot label.

    .. math:: \ell = \langle p, s - s_y \rangle + \tfrac12 (1 - \|p\|^2),\quad
       p = \operatorname{sparsemax}(s) = \operatorname{argmin}_{q \in \Delta} \|q - s\|^2

    Computed on the scores less their row maximum (both terms are shift invariant), so it
    stays exact at any magnitude. A label that names no class gives NaN.

    Args:
      y_true: integer labels in ``[0, C)``, shape ``(...)`` (or ``(..., 1)``).
      y_pred: scores, shape ``(..., C)``.
      sample_weight: weight of shape ``(...)`` or a leading prefix of it.
      reduction: one of the five reductions.

    Returns:
      A scalar, or per-sample values of shape ``(...)`` (optax's output) for ``reduction="none"``.

    Gradient: ``sparsemax(y_pred) - onehot(y_true)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.sparsemax_loss(jnp.array([0]), jnp.array([[1.0, 0.5, -1.0]]))
      Array(0.0625, dtype=float32)
    """
    ...
