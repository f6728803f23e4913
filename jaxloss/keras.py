"""jaxloss losses as Keras 3 losses: ``model.compile(loss=jaxloss.keras.Huber(delta=0.5))``.

:class:`Loss` wraps any registered jaxloss loss, with its options, as a
``keras.losses.Loss``. Its ``call`` returns jaxloss's per-sample values
(``reduction="none"``), so Keras's own machinery applies the reduction,
``sample_weight``, ``class_weight`` and masks: ``fit`` trains exactly as with
Keras's loss of the same name. Every registered loss also has a class spelling,
generated from the registry with the jaxloss function's options as its signature
(``Huber(delta=0.5)``, ``SigmoidFocal(gamma=2.0)``, ``CTC()``). The classes are
registered for Keras serialization under the package ``"jaxloss"``, so once this
module is imported ``model.save`` / ``keras.models.load_model`` restore the loss
with its options, and so are the plain jaxloss functions and bound
``jaxloss.get(...)`` losses (which restore as themselves, not as Keras's function
of the same name).

Importing this module imports keras; ``import jaxloss`` does not.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
from keras import ops

# Keras keeps masks in tensor attributes and offers no public accessor; its own
# losses (sparse crossentropy's ignore_class, circle) use these two.
from keras.src.backend import get_keras_mask, set_keras_mask

import jaxloss
from jaxloss import _registry
from jaxloss._inputs import ClassLabels

__all__ = ["Loss"]  # extended below by the generated classes

_PACKAGE = "jaxloss"
# The bound-loss class (whatever the core names it): `get(...)` objects.
_Bound = type(jaxloss.get("mean_squared_error"))
_KERAS_ARGUMENTS = ("name", "reduction", "dtype")
# Keras passes labels converted to the loss's float dtype; this loss needs them as integers.
_INTEGER_LABELS_ONLY = frozenset({"linear_cross_entropy"})


def _extra_arrays(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    """Required positional arrays after ``(y_true, y_pred)`` (``linear_cross_entropy``'s ``weight``).

    Optional ones (``margin_ranking``'s ``x2``) are left out: their stacked form in
    ``y_pred`` is the one that fits Keras."""
    params = list(inspect.signature(function).parameters.values())[2:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p for p in params if p.kind in positional and p.default is inspect.Parameter.empty)


def _option_parameters(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    """The adapter's loss options: extra arrays (keyword-only here), then the function's options."""
    extra = tuple(p.replace(kind=p.KEYWORD_ONLY) for p in _extra_arrays(function))
    params = inspect.signature(function).parameters.values()
    options = tuple(p for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("sample_weight", "reduction"))
    return extra + options


def _concrete(value: Any) -> Any:
    """A Keras variable's current value (for validation and configs); anything else unchanged."""
    return ops.convert_to_numpy(value) if isinstance(value, keras.Variable) else value


def _read(value: Any) -> Any:
    """A Keras variable read inside the step (the traced value under the JAX trainer, so it trains)."""
    return ops.convert_to_tensor(value) if isinstance(value, keras.Variable) else value


def _without_defaults(function: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that differ from their defaults: a loss reloaded from its (complete) config,
    or built from a Keras config, has the same ``options`` as the loss it came from."""
    defaults = {p.name: p.default for p in _option_parameters(function)}

    def is_default(name: str, value: Any) -> bool:
        default = defaults.get(name, inspect.Parameter.empty)
        if value is None or default is None:
            return value is default
        simple = (bool, int, float, str, tuple)
        return isinstance(value, simple) and isinstance(default, simple) and value == default

    return {k: v for k, v in options.items() if not is_default(k, v)}


def _plain(value: Any) -> Any:
    """A JSON-able option value: arrays become nested lists."""
    return np.asarray(value).tolist() if hasattr(value, "shape") or isinstance(value, (list, tuple)) else value


def _validated(name: str, function: Callable[..., Any], options: Mapping[str, Any]) -> Any:
    """Check option names and values now (the message lists the valid ones): the bound loss,
    or None for a loss the registry lacks (its function checks values at the first call)."""
    if name in _registry.canonical_names():
        return jaxloss.get(name, **{k: _concrete(v) for k, v in options.items()})
    valid = [p.name for p in _option_parameters(function)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"jaxloss.keras: {name} has no option(s) {unknown}; valid options are {', '.join(valid)}.")
    return None


@functools.cache
def _loss_names() -> tuple[str, ...]:
    """Every registered loss, and any public jaxloss loss function that is not registered
    (a function with a ``reduction`` option)."""
    public = {n for n in jaxloss.__all__ if callable(f := getattr(jaxloss, n)) and "reduction" in _parameters(f)}
    return tuple(sorted({*_registry.canonical_names(), *public}))


def _parameters(function: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "")


def _resolve(loss: Any, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(canonical name, options)`` from a name, a jaxloss function or a bound loss."""
    if isinstance(loss, _Bound):
        return loss.name, {**loss.options, **options}
    names = _loss_names()
    for name in names:
        if loss is getattr(jaxloss, name):
            return name, options
    if not isinstance(loss, str):
        raise ValueError(
            f"jaxloss.keras.Loss: expected a jaxloss loss name, function or jaxloss.get(...) loss; received {loss!r}."
        )
    # Canonical and class spellings first: a loss with a required option (gaussian_nll's
    # variance) cannot be bound without it; aliases ("mse") go through get, which raises
    # ValueError listing the valid names for an unknown one.
    for name in names:
        if _normalize(loss) in (_normalize(name), _normalize(_class_name(name))):
            return name, options
    return jaxloss.get(loss).name, options


@functools.cache
def _default_name(name: str) -> str:
    """Keras's default name for its class of this loss (``"huber_loss"``), else the loss's name."""
    keras_class = getattr(keras.losses, _keras_class(name) or "", None)
    default = _parameters(keras_class).get("name") if keras_class is not None else None
    return default.default if default is not None and isinstance(default.default, str) else name


def _fallback_mask(name: str, y_true: Any, y_pred: Any, values: Any, options: Mapping[str, Any]) -> Any:
    """The entries jaxloss's mean reductions count, for the losses that leave some out.

    Keras does the same for its own losses (``ignore_class``, circle) by setting a mask on
    the per-sample values; its reduction then divides by the number of valid entries.
    """
    ignore_class = options.get("ignore_class")
    if ignore_class is not None:
        return ops.reshape(ops.not_equal(y_true, ops.cast(ignore_class, y_true.dtype)), ops.shape(values))
    if name == "circle":
        return ops.greater(values, 0.0)
    if name == "ntxent":
        labels = ops.reshape(y_true, (-1,))
        same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
        return ops.logical_and(same, ops.logical_not(ops.eye(y_true.shape[0], dtype="bool")))
    if name == "ranking_softmax" and options.get("where") is not None:
        where = ops.broadcast_to(ops.cast(options["where"], "bool"), ops.shape(y_pred))
        return ops.any(where, axis=-1)
    return None


@keras.saving.register_keras_serializable(package=_PACKAGE, name="Loss")
class Loss(keras.losses.Loss):
    """A jaxloss loss, with its options, as a ``keras.losses.Loss``.

    ``call(y_true, y_pred)`` returns the loss's per-sample values (what
    ``jaxloss.<loss>(y_true, y_pred, reduction="none")`` returns), and Keras's
    ``Loss.__call__`` then applies ``sample_weight`` (and ``class_weight``, which
    ``fit`` turns into one), the Keras mask of ``y_pred`` and ``reduction``, as for
    Keras's own losses. Losses whose mean leaves entries out (``ignore_class``,
    circle, ntxent, ranking_softmax with ``where``) mark them with a Keras mask on
    the values, as Keras's own ``ignore_class`` does.

    Args:
      loss: a loss name (Keras's snake_case name, an alias or a Keras class name), a
        jaxloss loss function, or a ``jaxloss.get(...)`` loss (its options are used;
        its ``reduction``, if bound, becomes this loss's reduction).
      reduction: Keras's reduction: ``"sum_over_batch_size"`` (default), ``"sum"``,
        ``"mean"``, ``"mean_with_sample_weight"``, ``"none"`` or None.
      name: the loss's name (default: Keras's default name for its class of this loss,
        ``"huber_loss"`` for Huber, else the loss's canonical name).
      dtype: the dtype Keras converts ``y_true`` and ``y_pred`` to and reduces in
        (default ``keras.backend.floatx()``); a ``keras.DTypePolicy`` gives its
        compute dtype.
      **options: the jaxloss loss's options (``delta=0.5``), checked now. A
        ``keras.Variable`` value (a model's weight) is read at every step, so it
        trains with the model. Positional arrays after ``(y_true, y_pred)`` are given
        here by name (``linear_cross_entropy``'s ``weight``).

    Per-batch arrays cannot be options (an option is fixed when the model is
    compiled): the exception is CTC's ``logit_lengths``, read from ``y_pred``'s Keras
    mask when there is one (right-padded frames, as ``Masking`` or
    ``Embedding(mask_zero=True)`` make).

    Example:
      >>> import numpy as np, keras, jaxloss.keras
      >>> loss = jaxloss.keras.Loss("huber", delta=0.5)
      >>> float(loss(np.zeros((2, 1)), np.array([[0.25], [2.0]]), sample_weight=np.array([1.0, 0.5])))
      0.234375
      >>> loss.get_config()
      {'name': 'huber_loss', 'reduction': 'sum_over_batch_size', 'loss': 'huber', 'delta': 0.5}
    """

    _loss_name: str | None = None  # fixed by the generated classes

    def __init__(
        self,
        loss: Any = None,
        *,
        reduction: Any = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        **options: Any,
    ):
        if keras.backend.backend() != "jax":
            raise ValueError(
                f"jaxloss.keras needs Keras's JAX backend (KERAS_BACKEND=jax); the backend is {keras.backend.backend()!r}."
            )
        if self._loss_name is not None:
            loss = self._loss_name
        loss_name, options = _resolve(loss, dict(options))
        if "reduction" in options:  # a bound loss's reduction is Keras's reduction here
            bound_reduction = options.pop("reduction")
            if reduction == "sum_over_batch_size":
                reduction = bound_reduction
            elif reduction != bound_reduction:
                raise ValueError(
                    f"jaxloss.keras: {loss_name} was given reduction={reduction!r} and a bound "
                    f"reduction={bound_reduction!r}; give one."
                )
        function = getattr(jaxloss, loss_name)
        options = _without_defaults(function, options)
        extra = _extra_arrays(function)
        arrays = {p.name: options.pop(p.name) for p in extra if p.name in options}
        missing = [p.name for p in extra if p.name not in arrays]
        if missing:
            raise TypeError(f"jaxloss.keras: {loss_name} needs {', '.join(missing)} (arrays or keras.Variables).")
        bound = _validated(loss_name, function, options)
        super().__init__(name=name or _default_name(loss_name), reduction=reduction, dtype=dtype)
        self.loss_name = loss_name
        self.options = {**arrays, **options}
        self._bound = bound
        self._function = function
        self._arrays = tuple(arrays[p.name] for p in extra)
        self._keyword_options = dict(options)
        self._given_dtype = dtype
        option_names = {p.name for p in _option_parameters(function)}
        self._lengths_from_mask = "logit_lengths" in option_names and options.get("logit_lengths") is None
        self._batch_options: dict[str, Any] = {}
        self._label_mask: Any = None
        spec = self._bound.spec if self._bound is not None else None
        self._labels_domain = spec is not None and isinstance(
            spec.domain("y_true", dict(self._keyword_options)), ClassLabels
        )

    # -- the per-sample values ---------------------------------------------

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if self._lengths_from_mask:
            mask = get_keras_mask(y_pred)
            if mask is not None and len(mask.shape) == 2:
                # The mask says how many frames each sample has; it must not also weight the
                # (batch,) values, so the loss sees an unmasked copy of y_pred.
                self._batch_options = {"logit_lengths": ops.sum(ops.cast(mask, "int32"), axis=1)}
                try:
                    return super().__call__(y_true, ops.copy(y_pred), sample_weight)
                finally:
                    self._batch_options = {}
        mask = get_keras_mask(y_pred) if self._labels_domain else None
        if mask is None:
            return super().__call__(y_true, y_pred, sample_weight)
        # Class labels at masked (padded) positions are never read: any value there (a -1, a
        # padding id past the classes) must not make the label NaN that Keras's mask then
        # multiplies by 0.
        self._label_mask = mask
        try:
            return super().__call__(y_true, y_pred, sample_weight)
        finally:
            self._label_mask = None

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """jaxloss's per-sample values, with a Keras mask where the loss leaves entries out."""
        if self.loss_name in _INTEGER_LABELS_ONLY:
            y_true = ops.cast(y_true, "int32")
        if self._label_mask is not None and len(self._label_mask.shape) <= len(y_true.shape):
            keep = ops.reshape(
                self._label_mask,
                tuple(self._label_mask.shape) + (1,) * (len(y_true.shape) - len(self._label_mask.shape)),
            )
            y_true = ops.where(keep, y_true, ops.zeros_like(y_true))
        arrays = [_read(v) for v in self._arrays]
        options = {k: _read(v) for k, v in self._keyword_options.items()}
        options.update(self._batch_options)
        values = self._function(y_true, y_pred, *arrays, **options, reduction="none")
        mask = self._mask(y_true, y_pred, values, options)
        if mask is not None:
            set_keras_mask(values, mask)
        return values

    def _mask(self, y_true: Any, y_pred: Any, values: Any, options: Mapping[str, Any]) -> Any:
        hook = getattr(self._bound, "keras_mask", None) if self._bound is not None else None
        if hook is not None:
            return hook(y_true, y_pred, values, **options)
        return _fallback_mask(self.loss_name, y_true, y_pred, values, options)

    # -- serialization -------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Keras's ``name`` and ``reduction``, ``dtype`` when given, ``loss`` (for :class:`Loss`
        itself) and every option with its value or default, flat, as Keras's own losses have them."""
        config: dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self._given_dtype is not None:
            config["dtype"] = self.dtype
        if type(self)._loss_name is None:
            config["loss"] = self.loss_name
        for param in _option_parameters(self._function):
            value = self.options.get(param.name, param.default)
            if isinstance(value, keras.Variable):
                raise ValueError(
                    f"jaxloss.keras: {self.loss_name}'s {param.name} is the model variable {value.path!r}, and a "
                    "saved config cannot link a loss to a variable. Save the weights (model.save_weights), or "
                    "save the model compiled with another loss and compile the reloaded model with this one."
                )
            config[param.name] = _plain(value)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={_concrete(v)!r}" for k, v in self.options.items())
        head = "" if type(self)._loss_name is not None else f"{self.loss_name!r}, "
        return f"jaxloss.keras.{type(self).__name__}({head}reduction={self.reduction!r}, name={self.name!r}{opts})"


# ----------------------------------------------------------------------------
# Class spellings, generated from the registry
# ----------------------------------------------------------------------------


@functools.cache
def _keras_class(name: str) -> str | None:
    if name not in _registry.canonical_names():
        return None
    try:
        return jaxloss.get(name).keras_class
    except (TypeError, ValueError):
        return None  # a required option (gaussian_nll's variance): no Keras loss is like that


def _class_name(name: str) -> str:
    """The class spelling of a loss: Keras's class name, else the snake_case name in CamelCase."""
    return _keras_class(name) or "".join(part.capitalize() for part in name.split("_"))


def _generated_class(name: str) -> type[Loss]:
    function = getattr(jaxloss, name)
    options = _option_parameters(function)
    clash = [p.name for p in options if p.name in (*_KERAS_ARGUMENTS, "loss")]
    if clash:  # a flat Keras config could not tell the option from Keras's argument
        raise RuntimeError(f"jaxloss.keras: {name}'s option(s) {clash} clash with Keras's loss arguments.")
    keras_params = (
        inspect.Parameter("reduction", inspect.Parameter.KEYWORD_ONLY, default="sum_over_batch_size"),
        inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None"),
        inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=None),
    )
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    signature = inspect.Signature((self_param, *options, *keras_params))

    def __init__(self: Loss, **kwargs: Any) -> None:
        if "loss" in kwargs:
            raise TypeError(f"jaxloss.keras.{type(self).__name__} is {name}; it takes no loss argument.")
        Loss.__init__(self, **kwargs)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    shown = ", ".join(str(p) for p in (*options, *keras_params))
    doc = (
        f"``jaxloss.{name}`` as a ``keras.losses.Loss``: ``{_class_name(name)}({shown})``.\n\n"
        f'The per-sample values are ``jaxloss.{name}(y_true, y_pred, **options, reduction="none")``;\n'
        "Keras applies ``sample_weight``, ``class_weight``, masks and ``reduction``. See\n"
        f":class:`jaxloss.keras.Loss` for the Keras arguments and :func:`jaxloss.{name}` for the options.\n"
    )
    cls = type(_class_name(name), (Loss,), {"__init__": __init__, "__doc__": doc, "_loss_name": name})
    cls.__module__ = __name__
    cls.__qualname__ = cls.__name__
    return keras.saving.register_keras_serializable(package=_PACKAGE, name=cls.__name__)(cls)


def _register_plain_objects() -> None:
    """Make plain jaxloss functions and ``get(...)`` losses save and reload as themselves.

    Unregistered, Keras saves a function by its bare name and reloads Keras's function of
    that name (or fails for a name Keras lacks), and cannot find the bound-loss class.
    """
    for name in _loss_names():
        keras.saving.register_keras_serializable(package=_PACKAGE, name=name)(getattr(jaxloss, name))
    keras.saving.register_keras_serializable(package=_PACKAGE, name="get")(_Bound)


_CLASSES: dict[str, type[Loss]] = {name: _generated_class(name) for name in _loss_names()}
globals().update({cls.__name__: cls for cls in _CLASSES.values()})
__all__ += sorted(cls.__name__ for cls in _CLASSES.values())  # pyright: ignore[reportUnsupportedDunderAll]
_register_plain_objects()


def __getattr__(name: str) -> type[Loss]:
    # Reached only for a name that is not a generated class; its annotation tells type
    # checkers, which cannot see the generated classes, that jaxloss.keras.Huber is a Loss class.
    valid = ", ".join(sorted(cls.__name__ for cls in _CLASSES.values()))
    raise AttributeError(f"module 'jaxloss.keras' has no attribute {name!r}; its loss classes are {valid}.")
