"""``get``: names, Keras class names and aliases to configured losses."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
from jax.typing import ArrayLike

from ._core import REGISTRY, LossSpec, check_reduction


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "")


def _names() -> dict[str, str]:
    """Every accepted spelling (normalized) to the canonical loss name."""
    table: dict[str, str] = {}
    for name, (spec, _) in REGISTRY.items():
        for alias in (name, spec.keras_class, *spec.aliases):
            if alias:
                table[_normalize(alias)] = name
    return table


def canonical_names() -> tuple[str, ...]:
    """The public name of every registered loss, sorted."""
    return tuple(sorted(REGISTRY))


def resolve(loss: str | Callable[..., jax.Array]) -> tuple[LossSpec, Callable[..., jax.Array]]:
    """A name, alias, Keras class name or public loss function to ``(spec, function)``."""
    if isinstance(loss, Configured):
        return resolve(loss.function)
    if callable(loss):
        for spec, fn in REGISTRY.values():
            if fn is loss:
                return spec, fn
        raise ValueError(f"jaxloss.get: {getattr(loss, '__name__', loss)!r} is not a jaxloss loss function.")
    if not isinstance(loss, str):
        raise ValueError(f"jaxloss.get: expected a loss name or function; received {loss!r}.")
    name = _names().get(_normalize(loss))
    if name is None:
        valid = ", ".join(sorted({*REGISTRY, *(a for s, _ in REGISTRY.values() for a in s.aliases)}))
        raise ValueError(f"jaxloss.get: unknown loss {loss!r}; valid names are {valid} (and Keras class names).")
    return REGISTRY[name]


def option_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Keyword-only options of a public loss function (``sample_weight`` excluded)."""
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "sample_weight")


class Configured:
    """A loss with its options bound: ``loss(y_true, y_pred, sample_weight=None)``."""

    def __init__(self, spec: LossSpec, function: Callable[..., jax.Array], options: dict[str, Any]):
        valid = option_names(function)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"jaxloss.get: {spec.name} has no option(s) {unknown}; valid options are {', '.join(valid)}."
            )
        if "reduction" in options:
            check_reduction(spec.name, options["reduction"])
        # Validate concrete option values now, not at the first call.
        spec.validate({**spec.options, **{k: v for k, v in options.items() if k in spec.options}})
        self.spec = spec
        self.function = function
        self.options = dict(options)
        self.__name__ = spec.name
        functools.update_wrapper(self, function, assigned=("__doc__", "__module__"), updated=())

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> jax.Array:
        return self.function(y_true, y_pred, sample_weight=sample_weight, **self.options)

    @property
    def name(self) -> str:
        """The loss's canonical (Keras snake_case) name."""
        return self.spec.name

    @property
    def keras_class(self) -> str | None:
        """Keras's class name for this loss, or None where Keras has no such loss."""
        return self.spec.keras_class

    def get_config(self) -> dict[str, Any]:
        """``{"name": ..., "options": {...}}``; arrays become nested lists. ``from_config`` inverts it."""
        import numpy as np

        def plain(v: Any) -> Any:
            return np.asarray(v).tolist() if hasattr(v, "shape") or isinstance(v, (list, tuple)) else v

        return {"name": self.spec.name, "options": {k: plain(v) for k, v in self.options.items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Configured:
        return get(config["name"], **config.get("options", {}))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"jaxloss.get({self.spec.name!r}{', ' if opts else ''}{opts})"


def get(loss: str | Callable[..., jax.Array], **options: Any) -> Configured:
    """Resolve a loss by name (Keras's, an alias or a Keras class name) and bind options.

    Args:
      loss: ``"categorical_crossentropy"``, ``"CategoricalCrossentropy"``, an alias
        (``"mse"``, ``"mae"``, ``"mape"``, ``"msle"``, ``"kld"``, ``"bce"``, ``"logcosh"``)
        or a jaxloss loss function.
      **options: the loss's keyword options, ``reduction`` included.

    Returns:
      A callable ``(y_true, y_pred, sample_weight=None) -> loss``.

    Raises:
      ValueError: an unknown name or option (the message lists the valid ones), or
        an invalid option value.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> loss = jaxloss.get("mse", reduction="sum")
      >>> loss(jnp.zeros((2, 2)), jnp.ones((2, 2)))
      Array(2., dtype=float32)
    """
    spec, fn = resolve(loss)
    return Configured(spec, fn, options)
