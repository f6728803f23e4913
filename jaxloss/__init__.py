"""jaxloss: the Keras 3 loss catalogue and more, as pure, jit-compiled JAX functions."""

from importlib.metadata import PackageNotFoundError, version

from ._checks import checked as checked
from ._gradients import analytic_grad as analytic_grad
from ._gradients import grad as grad
from ._gradients import value_and_grad as value_and_grad
from ._registry import get as get
from ._regression import cosine_similarity as cosine_similarity
from ._regression import huber as huber
from ._regression import log_cosh as log_cosh
from ._regression import mean_absolute_error as mean_absolute_error
from ._regression import mean_absolute_percentage_error as mean_absolute_percentage_error
from ._regression import mean_squared_error as mean_squared_error
from ._regression import mean_squared_logarithmic_error as mean_squared_logarithmic_error
from ._regression import smooth_l1 as smooth_l1

try:
    __version__ = version("jaxloss")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
