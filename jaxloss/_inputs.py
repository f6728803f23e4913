"""Input domains: what values each array argument of a loss may hold.

A loss declares the domain of ``y_true`` and ``y_pred`` (possibly depending on
its options: probabilities, or logits when ``from_logits``). A domain does three
things, so that nothing about inputs is written twice:

- ``draw(rng, shape, options, extreme=False)``: valid inputs for verify, the tests and
  the benchmarks (``extreme``: valid edge values, such as exact 0/1 probabilities or
  logits of 1e4);
- ``shape_of(pred_shape, options)``: ``y_true``'s shape for a ``y_pred`` shape;
- ``rules(x, options, y_pred)``: ``(bad, rule)`` pairs that ``checked()`` turns into
  errors naming the loss, the argument, the rule and the first offending index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Row sums of probabilities: float32 round-off of a softmax is ~1e-6; half inputs ~1e-2.
_SUM_TOL = {jnp.dtype(jnp.bfloat16): 2e-2, jnp.dtype(jnp.float16): 5e-3}
_DEFAULT_SUM_TOL = 1e-3

# (bad, rule) or (bad, rule, shown): ``bad`` marks offending entries (of the input's shape, or of
# ``shown``'s, such as one per row for a row sum), ``shown`` the values the error reports.
Rule = tuple[Any, ...]


def sum_tolerance(dtype: Any) -> float:
    return _SUM_TOL.get(jnp.dtype(dtype), _DEFAULT_SUM_TOL)


def _axis(axis: int | str, options: Mapping[str, Any]) -> int:
    return options.get(axis, -1) if isinstance(axis, str) else axis


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _finite(x: jax.Array) -> list[Rule]:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return []
    return [(~jnp.isfinite(x), "must be finite (found NaN or infinity)")]


@dataclasses.dataclass(frozen=True)
class Domain:
    """Real numbers; subclasses narrow them. ``drop``: ``y_true``'s shape is ``y_pred``'s
    less these axes (ints, or the name of the loss's axis option); None: the same shape."""

    drop: int | str | tuple[int, ...] | None = None
    scale: float = 2.0
    integer = False
    describe = "real numbers"

    def shape_of(self, pred_shape: tuple[int, ...], options: Mapping[str, Any]) -> tuple[int, ...]:
        if self.drop is None:
            return tuple(pred_shape)
        axes = self.drop if isinstance(self.drop, tuple) else (_axis(self.drop, options),)
        gone = {a % len(pred_shape) for a in axes}
        return tuple(d for i, d in enumerate(pred_shape) if i not in gone)

    def draw(
        self, rng: np.random.Generator, shape: tuple[int, ...], options: Mapping[str, Any], extreme: bool = False
    ) -> np.ndarray:
        x = rng.normal(0.0, self.scale, shape)
        if extreme:
            x = x * rng.choice([1.0, 1e4], shape)
        return x

    def rules(self, x: jax.Array, options: Mapping[str, Any], y_pred: jax.Array) -> list[Rule]:
        return _finite(x)


@dataclasses.dataclass(frozen=True)
class Real(Domain):
    """Any finite real number."""


@dataclasses.dataclass(frozen=True)
class NonNegative(Domain):
    """Finite numbers >= 0 (counts, rates, unnormalized measures, relevance)."""

    describe = "non-negative numbers"
    whole: bool = False  # draw whole numbers (counts, relevance grades)

    def draw(self, rng, shape, options, extreme=False):
        x = np.floor(rng.uniform(0.0, 4.0, shape)) if self.whole else rng.uniform(0.1, 3.0, shape)
        if extreme:
            x = np.where(rng.random(shape) < 0.3, 0.0, x * rng.choice([1.0, 1e3], shape))
        return x

    def rules(self, x, options, y_pred):
        return [*_finite(x), (x < 0, "must be non-negative")]


@dataclasses.dataclass(frozen=True)
class Positive(NonNegative):
    """Finite numbers > 0 (a rate that is divided by or taken the log of)."""

    describe = "positive numbers"

    def draw(self, rng, shape, options, extreme=False):
        x = rng.uniform(0.1, 3.0, shape)
        return x * rng.choice([1e-6, 1.0, 1e3], shape) if extreme else x

    def rules(self, x, options, y_pred):
        return [*_finite(x), (x <= 0, "must be positive")]


@dataclasses.dataclass(frozen=True)
class Probabilities(Domain):
    """Each entry in [0, 1] (binary targets and predictions, soft labels, masks)."""

    describe = "probabilities in [0, 1]"
    binary: bool = False  # draw hard 0/1 values (labels)
    strict: bool = False  # only 0 and 1 are valid (multi-hot targets of a loss defined on sets)

    def draw(self, rng, shape, options, extreme=False):
        if self.binary:
            return rng.integers(0, 2, shape).astype(np.float64)
        x = rng.uniform(0.15, 0.85, shape)
        return np.round(x) if extreme else x

    def rules(self, x, options, y_pred):
        if self.strict:
            return [*_finite(x), ((x != 0) & (x != 1), "must hold 0 or 1 (multi-hot targets)")]
        return [*_finite(x), ((x < 0) | (x > 1), "must hold probabilities in [0, 1]")]


@dataclasses.dataclass(frozen=True)
class Distribution(Domain):
    """Probabilities whose rows along ``axis`` sum to 1."""

    axis: int | str = "axis"
    hard: bool = False  # draw one-hot rows (labels)
    describe = "probability distributions"

    def draw(self, rng, shape, options, extreme=False):
        ax = _axis(self.axis, options) % len(shape)
        if self.hard:
            labels = rng.integers(0, shape[ax], shape[:ax] + shape[ax + 1 :])
            return np.moveaxis(np.eye(shape[ax])[labels], -1, ax)
        if extreme:
            return _softmax(rng.normal(0.0, 50.0, shape), ax)
        # Moderate rows (every entry above ~0.04 for a few classes), away from Keras's clip edges,
        # where finite differences of the focal and generalized terms hold.
        p = rng.uniform(0.2, 1.0, shape)
        return p / p.sum(axis=ax, keepdims=True)

    def rules(self, x, options, y_pred):
        ax = _axis(self.axis, options)
        tol = sum_tolerance(x.dtype)
        sums = jnp.sum(x.astype(jnp.float32), axis=ax)
        return [
            *_finite(x),
            ((x < 0) | (x > 1), "must hold probabilities in [0, 1]"),
            (jnp.abs(sums - 1.0) > tol, f"rows along axis {ax} must sum to 1 (within {tol:g})", sums),
        ]


@dataclasses.dataclass(frozen=True)
class LogDistribution(Domain):
    """Log-probabilities: ``exp`` of each row along the last axis sums to 1; ``-inf`` is log 0."""

    describe = "log-probabilities"

    def draw(self, rng, shape, options, extreme=False):
        z = rng.normal(0.0, 50.0 if extreme else 1.0, shape)
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    def rules(self, x, options, y_pred):
        tol = sum_tolerance(x.dtype)
        sums = jnp.sum(jnp.exp(x.astype(jnp.float32)), axis=-1)
        return [
            (jnp.isnan(x) | (x == jnp.inf), "must be finite or -inf (log 0) (found NaN or +infinity)"),
            (jnp.abs(sums - 1.0) > tol, f"rows along axis -1 must sum to 1 (within {tol:g}) after exp", sums),
            (x > 0, "must hold log-probabilities (<= 0)"),
        ]


@dataclasses.dataclass(frozen=True)
class Logits(Domain):
    """Finite scores; ``-inf`` is allowed on classes that a ``where`` mask leaves out."""

    describe = "logits"

    def rules(self, x, options, y_pred):
        bad = ~jnp.isfinite(x)
        where = options.get("where")
        if where is not None:
            bad = bad & jnp.broadcast_to(jnp.asarray(where, bool), x.shape)
        return [(bad, "must be finite (found NaN or infinity)")]


@dataclasses.dataclass(frozen=True)
class ClassLabels(Domain):
    """Integer class indices in ``[0, C)``, ``C`` the size of ``y_pred``'s class ``axis``
    (integral floats count; ``ignore_class`` is allowed)."""

    axis: int | str = "axis"
    integer = True
    describe = "class indices"

    def __post_init__(self):
        if self.drop is None:
            object.__setattr__(self, "drop", self.axis)

    def classes(self, pred_shape: tuple[int, ...], options: Mapping[str, Any]) -> int:
        return pred_shape[_axis(self.axis, options) % len(pred_shape)]

    def draw(self, rng, shape, options, extreme=False):
        raise TypeError("ClassLabels are drawn for a y_pred shape: use draw_labels")

    def draw_labels(self, rng, pred_shape, options):
        labels = rng.integers(0, self.classes(pred_shape, options), self.shape_of(pred_shape, options))
        if options.get("ignore_class") is not None:
            labels.reshape(-1)[::3] = options["ignore_class"]  # every third position ignored
        return labels

    def rules(self, x, options, y_pred):
        classes = self.classes(y_pred.shape, options) if y_pred.ndim else 0
        bad = (x < 0) | (x >= classes)
        rules = []
        if jnp.issubdtype(x.dtype, jnp.floating):
            rules.append(
                (jnp.isnan(x) | (x != jnp.floor(x)), "must hold integer class indices (found a fraction or NaN)")
            )
            bad = bad & ~jnp.isnan(x)
        ignore = options.get("ignore_class")
        if ignore is not None:
            bad = bad & (x != ignore)
        return [*rules, (bad, f"must hold class indices in [0, {classes})")]


@dataclasses.dataclass(frozen=True)
class SequenceLabels(ClassLabels):
    """CTC labels ``(batch, max_len)``: class indices of ``y_pred``'s last axis, padded with the blank."""

    max_len: int = 6
    axis: int | str = -1

    def shape_of(self, pred_shape, options):
        return (pred_shape[0], self.max_len)

    def draw_labels(self, rng, pred_shape, options):
        blank = options.get("blank_index", 0)
        classes = pred_shape[-1]
        labels = rng.integers(0, classes - 1, (pred_shape[0], self.max_len))
        labels[labels >= blank] += 1  # no blank inside a label
        labels[0, self.max_len // 2 :] = blank  # padding
        return labels


@dataclasses.dataclass(frozen=True)
class GroupLabels(Domain):
    """Integer group labels (any integer): samples with equal labels are positives."""

    groups: int = 4
    integer = True
    describe = "integer group labels"

    def draw(self, rng, shape, options, extreme=False):
        return rng.integers(0, self.groups, shape)

    def rules(self, x, options, y_pred):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            return []
        return [(~jnp.isfinite(x) | (x != jnp.floor(x)), "must hold integer labels (found a fraction, NaN or inf)")]


@dataclasses.dataclass(frozen=True)
class Signs(Domain):
    """Targets in ``{-1, 1}``."""

    describe = "signs in {-1, 1}"

    def draw(self, rng, shape, options, extreme=False):
        return rng.choice([-1.0, 1.0], shape)

    def rules(self, x, options, y_pred):
        return [((x != 1) & (x != -1), "must hold -1 or 1")]


@dataclasses.dataclass(frozen=True)
class HingeLabels(Signs):
    """Keras's hinge labels: ``{-1, 1}``, or ``{0, 1}`` (converted batch-wide)."""

    describe = "labels in {-1, 1} or {0, 1}"

    def rules(self, x, options, y_pred):
        signs = jnp.all((x == 1) | (x == -1))
        binary = jnp.all((x == 0) | (x == 1))
        bad = ~(signs | binary) & (x != 1)
        return [(bad, "must hold -1 and 1, or 0 and 1")]


@dataclasses.dataclass(frozen=True)
class UnitVectors(Domain):
    """L2-normalized embeddings: rows along the last axis of norm 1."""

    describe = "unit vectors"

    def draw(self, rng, shape, options, extreme=False):
        x = rng.normal(0.0, 1.0, shape)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def rules(self, x, options, y_pred):
        norms = jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)), axis=-1))
        tol = 10 * sum_tolerance(x.dtype)
        return [*_finite(x), (jnp.abs(norms - 1.0) > tol, f"rows must have norm 1 (within {tol:g})", norms)]


@dataclasses.dataclass(frozen=True)
class Lengths(Domain):
    """Non-negative integer lengths (an option: CTC's ``label_lengths``/``logit_lengths``)."""

    integer = True
    describe = "non-negative integer lengths"

    def check_host(self, loss: str, name: str, value: Any) -> None:
        arr = np.asarray(value)
        if arr.dtype == np.bool_ or np.any(np.asarray(arr, np.float64) < 0) or np.any(np.mod(arr, 1) != 0):
            raise ValueError(f"{loss}: {name} must hold non-negative integers; received {name}={value!r}.")

    def rules(self, x, options, y_pred):
        return [(x < 0, "must be non-negative")]


REAL = Real()
NON_NEGATIVE = NonNegative()
COUNTS = NonNegative(whole=True)
POSITIVE = Positive()
PROBABILITIES = Probabilities()
BINARY = Probabilities(binary=True)
MULTI_HOT = Probabilities(binary=True, strict=True)
DISTRIBUTION = Distribution()
ONE_HOT = Distribution(hard=True)
LOG_DISTRIBUTION = LogDistribution()
LOGITS = Logits()
LABELS = ClassLabels()
LAST_AXIS_LABELS = ClassLabels(axis=-1)
SIGNS = Signs()
HINGE_LABELS = HingeLabels()
UNIT_VECTORS = UnitVectors()
GROUP_LABELS = GroupLabels(drop=-1)
LENGTHS = Lengths()


def draw_inputs(
    spec: Any, example: Any, rng: np.random.Generator, *, shape: tuple[int, ...] | None = None, extreme: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` for a loss and an example: its own ``draw``, or the domains'.

    ``shape`` replaces the example's ``y_pred`` shape (the benchmark's sizes); ``extreme``
    draws valid edge values.
    """
    if example.draw is not None and shape is None and not extreme:
        return example.draw(rng)
    options = {**spec.defaults, **example.options}
    domains = {role: spec.domain(role, options) for role in ("y_true", "y_pred")}
    domains.update(example.inputs or {})
    pred_shape = tuple(example.shape if shape is None else shape)
    y_pred = domains["y_pred"].draw(rng, pred_shape, options, extreme)
    truth = domains["y_true"]
    if hasattr(truth, "draw_labels"):
        y_true = truth.draw_labels(rng, pred_shape, options)
    else:
        true_shape = example.true_shape if example.true_shape is not None and shape is None else None
        y_true = truth.draw(rng, true_shape or truth.shape_of(pred_shape, options), options, extreme)
    return y_true, y_pred


# --- domains added for the hinge/metric/ranking/segmentation/sequence/likelihood families


@dataclasses.dataclass(frozen=True)
class HingeOneHot(Distribution):
    """Keras's categorical hinge targets along the last axis: probability rows (one-hot or
    soft) or signed one-hot rows (``{-1, 1}`` with a single 1). ``signed`` draws the latter."""

    axis: int | str = -1
    signed: bool = False
    describe = "one-hot rows in {0, 1} or {-1, 1}"

    def draw(self, rng, shape, options, extreme=False):
        x = super().draw(rng, shape, options, extreme)
        return 2.0 * x - 1.0 if self.signed else x

    def rules(self, x, options, y_pred):
        ax = _axis(self.axis, options)
        row = jnp.all((x == 1) | (x == -1), axis=ax, keepdims=True) & (jnp.sum(x == 1, axis=ax, keepdims=True) == 1)
        rules = []
        # A probability rule is per entry or, with its row sums, per row: a signed row passes both.
        for bad, *rest in super().rules(x, options, y_pred):
            signed = jnp.broadcast_to(row, x.shape) if bad.shape == x.shape else jnp.squeeze(row, ax)
            rules.append((bad & ~signed, *rest))
        return [(~jnp.isfinite(x), "must be finite (found NaN or infinity)"), *rules]


@dataclasses.dataclass(frozen=True)
class Variances(NonNegative):
    """Non-negative variances (an option: gaussian_nll's ``variance``). Host values (numbers,
    numpy arrays) are checked before tracing; device arrays are not read back."""

    describe = "non-negative variances"

    def check_host(self, loss: str, name: str, value: Any) -> None:
        if isinstance(value, jax.Array):
            return
        arr = np.asarray(value, np.float64)
        nan = np.isnan(arr)
        if np.any(nan) or np.any(arr < 0):
            numbers = arr[~nan]
            low = float(numbers.min()) if numbers.size else float("nan")
            also = " and NaN entries" if np.any(nan) else ""
            raise ValueError(f"{loss}: {name} must be non-negative; received {name} with minimum {low!r}{also}.")


@dataclasses.dataclass(frozen=True)
class CTCLabels(SequenceLabels):
    """CTC labels ``(batch, max_len)``, right-padded with the blank (``blank_index``): a label is
    its first ``label_lengths`` entries, or its non-blank entries. Only entries inside a label
    must name a class. Drawn with ``max_len = time // 4`` (at most ``max_len``), so that every
    label fits its frames, repeats included."""

    max_len: int = 16

    def label_width(self, pred_shape: tuple[int, ...]) -> int:
        return max(1, min(self.max_len, pred_shape[1] // 4)) if len(pred_shape) == 3 else self.max_len

    def shape_of(self, pred_shape, options):
        return (pred_shape[0], self.label_width(pred_shape))

    def draw_labels(self, rng, pred_shape, options):
        blank = options.get("blank_index", 0)
        batch, width, classes = pred_shape[0], self.label_width(pred_shape), pred_shape[-1]
        labels = rng.integers(0, max(classes - 1, 1), (batch, width))
        labels[labels >= blank] += 1  # no blank inside a label
        lengths = rng.integers(0, width + 1, batch)
        labels[np.arange(width)[None, :] >= lengths[:, None]] = blank  # padding
        return labels

    def rules(self, x, options, y_pred):
        base = super().rules(x, options, y_pred)
        if x.ndim != 2:
            return base
        lengths = options.get("label_lengths")
        if lengths is None:
            lengths = jnp.sum(x != options.get("blank_index", 0), axis=1)
        inside = jnp.arange(x.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
        return [(bad & inside, rule) for bad, rule in base]


HINGE_ONE_HOT = HingeOneHot(hard=True)
SIGNED_ONE_HOT = HingeOneHot(hard=True, signed=True)
VARIANCES = Variances()
CTC_LABELS = CTCLabels()
