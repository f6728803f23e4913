"""One table of cases, contributed per family; every cross-cutting suite reads it.

A case is a loss name, its options and an input generator. Adding a loss adds
its cases here and gets the Keras, gradient and transformation tests for free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    loss: str
    options: dict[str, Any]
    make: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
    label: str = ""
    # Options for the Keras class when they differ (tversky's swapped alpha/beta), or None
    # when Keras has no equal to compare with (a deliberate difference, tested elsewhere).
    keras_options: dict[str, Any] | None = dataclasses.field(default_factory=lambda: {"same": True})
    # Losses that are not smooth in y_pred at random points skip the second-order check.
    smooth: bool = True
    # Finite differences need inputs away from kinks and clip edges; False skips check_grads.
    check_grads: bool = True

    @property
    def id(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.loss}[{opts}]{self.label}"

    def keras_opts(self) -> dict[str, Any] | None:
        if self.keras_options is None:
            return None
        return dict(self.options) if self.keras_options == {"same": True} else dict(self.keras_options)


def _collect() -> list[Case]:
    from . import beyond, hinge, metric, probabilistic, regression, segmentation, sequence

    out: list[Case] = []
    for module in (regression, probabilistic, hinge, segmentation, metric, sequence, beyond):
        out.extend(module.CASES)
    return out


CASES: list[Case] = _collect()
