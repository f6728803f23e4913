"""``get``: names, Keras class names and aliases to bound losses."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jax.typing import ArrayLike

from ._core import REGISTRY, LossSpec, Reduction, Weighted, check_option, check_reduction

LossLike = str | Callable[..., jax.Array]


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "")


def _names() -> dict[str, str]:
    """Every accepted spelling (normalized) to the canonical loss name."""
    table: dict[str, str] = {}
    for name, spec in REGISTRY.items():
        for alias in (name, spec.keras_class, *spec.aliases):
            if alias:
                table[_normalize(alias)] = name
    return table


def canonical_names() -> tuple[str, ...]:
    """The public name of every registered loss, sorted."""
    return tuple(sorted(REGISTRY))


def resolve_bound(loss: Any) -> tuple[LossSpec, dict[str, Any]]:
    """A name, alias, Keras class name, public loss function or bound loss to ``(spec, bound options)``.

    A bound loss keeps its options (``reduction`` among them).
    """
    if isinstance(loss, BoundLoss):
        return loss.spec, dict(loss.options)
    if isinstance(loss, LossSpec):
        return loss, {}
    if callable(loss):
        spec = getattr(loss, "spec", None)
        if isinstance(spec, LossSpec) and REGISTRY.get(spec.name) is spec:
            return spec, {}
        raise ValueError(f"jaxloss.get: {getattr(loss, '__name__', loss)!r} is not a jaxloss loss function.")
    if not isinstance(loss, str):
        raise ValueError(f"jaxloss.get: expected a loss name or function; received {loss!r}.")
    name = _names().get(_normalize(loss))
    if name is None:
        valid = ", ".join(sorted({*REGISTRY, *(a for s in REGISTRY.values() for a in s.aliases)}))
        raise ValueError(f"jaxloss.get: unknown loss {loss!r}; valid names are {valid} (and Keras class names).")
    return REGISTRY[name], {}


def resolve(loss: Any) -> LossSpec:
    """The spec behind a name, alias, Keras class name, public function or bound loss."""
    return resolve_bound(loss)[0]


def _frozen(value: Any) -> Any:
    """A hashable, value-equal stand-in for an option (arrays by dtype, shape and bytes)."""
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_frozen(v) for v in value))
    if isinstance(value, (np.ndarray, np.generic)) or (isinstance(value, jax.Array) and not _traced(value)):
        arr = np.asarray(value)
        return ("array", arr.dtype.str, arr.shape, arr.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def _traced(x: Any) -> bool:
    return isinstance(x, Tracer)


class BoundLoss:
    """A loss with options bound: ``loss(y_true, y_pred, sample_weight=None, reduction=...)``.

    Made by :func:`get`. It keeps its options through every API that takes a loss
    (``get``, ``grad``, ``value_and_grad``, ``analytic_grad``, ``checked``); call-time
    options (``reduction`` among them) override the bound ones. Two bound losses with the
    same loss and equal options compare and hash equal, so they make good static arguments.
    """

    __slots__ = ("__dict__", "_key", "options", "spec")

    def __init__(self, spec: LossSpec, options: Mapping[str, Any]):
        options = dict(options)
        unknown = sorted(set(options) - set(spec.options) - {"reduction"})
        if unknown:
            valid = ", ".join([*spec.options, "reduction"])
            raise ValueError(f"jaxloss.get: {spec.name} has no option(s) {unknown}; valid options are {valid}.")
        if "reduction" in options:
            check_reduction(spec.name, options["reduction"])
        # Validate concrete option values now, not at the first call; a required option
        # (gaussian_nll's variance) may come at call time.
        present = {k: v for k, v in options.items() if k != "reduction"}
        if all(k in present or k in spec.defaults for k in spec.options):
            checked = spec.check_options(present)
        else:
            checked = {k: check_option(spec.name, spec.options[k], v) for k, v in present.items()}
        self.spec = spec
        self.options = {k: checked.get(k, v) for k, v in options.items()}
        self.__name__ = spec.name
        self.__doc__ = spec.function.__doc__
        self._key = (spec.name, tuple(sorted((k, _frozen(v)) for k, v in self.options.items())))

    @property
    def name(self) -> str:
        """The loss's canonical (Keras snake_case) name."""
        return self.spec.name

    @property
    def keras_class(self) -> str | None:
        """Keras's class name for this loss, or None where Keras has no such loss."""
        return self.spec.keras_class

    @property
    def function(self) -> Callable[..., jax.Array]:
        """The public loss function."""
        return self.spec.function

    @property
    def __signature__(self) -> inspect.Signature:
        params = [
            p.replace(default=self.options[p.name]) if p.name in self.options else p
            for p in self.spec.signature.parameters.values()
        ]
        return self.spec.signature.replace(parameters=params)

    def __call__(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        *arrays: ArrayLike,
        sample_weight: ArrayLike | None = None,
        reduction: Reduction | str = "__bound__",
        **options: Any,
    ) -> jax.Array:
        kwargs = {**self.options, **options}
        if reduction != "__bound__":
            kwargs["reduction"] = reduction
        return self.spec.function(y_true, y_pred, *arrays, sample_weight=sample_weight, **kwargs)

    def bind(self, **options: Any) -> BoundLoss:
        """The same loss with more (or other) options bound."""
        return BoundLoss(self.spec, {**self.options, **options})

    def keras_mask(self, y_true: Any, y_pred: Any, values: jax.Array, **options: Any) -> jax.Array | None:
        """The boolean mask, of ``values``' shape, of the entries this loss's mean counts (None: all).

        For a Keras loss wrapping the per-sample values (``jaxloss.keras``): positions equal to
        ``ignore_class``, circle's samples with a zero loss, ntxent's non-positive pairs. ``options``
        (possibly traced) override the bound ones.
        """
        spec = self.spec
        if spec.direct:  # linear_cross_entropy: its mean leaves out the ignore_class tokens only
            ignore = {**self.options, **options}.get("ignore_class")
            return None if ignore is None else jnp.reshape(jnp.asarray(y_true) != ignore, jnp.shape(values))
        opts = spec.check_options({**{k: v for k, v in self.options.items() if k != "reduction"}, **options})
        y_true, y_pred = spec.core_arrays((y_true, y_pred))
        y_true, y_pred, _ = spec._prepared(y_true, y_pred, None, opts)
        mask = spec._mask(y_true, y_pred, values, opts)
        return mask.mask if isinstance(mask, Weighted) else mask

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundLoss) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def get_config(self) -> dict[str, Any]:
        """``{"name": ..., "options": {...}}``, JSON-able (arrays become nested lists); ``from_config`` inverts it."""

        def plain(v: Any) -> Any:
            if hasattr(v, "shape") or isinstance(v, (list, tuple)):
                return np.asarray(v).tolist()
            return v.item() if isinstance(v, np.generic) else v

        return {"name": self.spec.name, "options": {k: plain(v) for k, v in self.options.items()}}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BoundLoss:
        return get(config["name"], **config.get("options", {}))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"jaxloss.get({self.spec.name!r}{', ' if opts else ''}{opts})"


def get(loss: LossLike | BoundLoss, **options: Any) -> BoundLoss:
    """Resolve a loss by name (Keras's, an alias or a Keras class name) and bind options.

    Args:
      loss: ``"categorical_crossentropy"``, ``"CategoricalCrossentropy"``, an alias
        (``"mse"``, ``"mae"``, ``"mape"``, ``"msle"``, ``"kld"``, ``"bce"``, ``"logcosh"``),
        a jaxloss loss function, or a bound loss (whose options are kept; ``options``
        override them).
      **options: the loss's keyword options, ``reduction`` included.

    Returns:
      A :class:`BoundLoss`: ``loss(y_true, y_pred, sample_weight=None, reduction=...)``.

    Raises:
      ValueError: an unknown name or option (the message lists the valid ones), or
        an invalid option value.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> loss = jaxloss.get("mse", reduction="sum")
      >>> loss(jnp.zeros((2, 2)), jnp.ones((2, 2)))
      Array(2., dtype=float32)
      >>> loss(jnp.zeros((2, 2)), jnp.ones((2, 2)), reduction="none")
      Array([1., 1.], dtype=float32)
    """
    spec, bound = resolve_bound(loss)
    return BoundLoss(spec, {**bound, **options})
