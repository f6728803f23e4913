"""jaxloss: the Keras 3 loss catalogue and more, as pure, jit-compiled JAX functions."""

from importlib.metadata import PackageNotFoundError, version

from ._checks import checked as checked
from ._core import declarations as declarations
from ._crossentropy import binary_crossentropy as binary_crossentropy
from ._crossentropy import categorical_crossentropy as categorical_crossentropy
from ._crossentropy import poly_loss as poly_loss
from ._crossentropy import sparse_categorical_crossentropy as sparse_categorical_crossentropy
from ._crossentropy import sparsemax_loss as sparsemax_loss
from ._divergence import generalized_kl_divergence as generalized_kl_divergence
from ._divergence import kl_divergence as kl_divergence
from ._focal import binary_focal_crossentropy as binary_focal_crossentropy
from ._focal import categorical_focal_crossentropy as categorical_focal_crossentropy
from ._focal import categorical_generalized_cross_entropy as categorical_generalized_cross_entropy
from ._focal import sigmoid_focal as sigmoid_focal
from ._gradients import analytic_grad as analytic_grad
from ._gradients import grad as grad
from ._gradients import value_and_grad as value_and_grad
from ._hinge import categorical_hinge as categorical_hinge
from ._hinge import hinge as hinge
from ._hinge import multi_margin as multi_margin
from ._hinge import multiclass_hinge as multiclass_hinge
from ._hinge import multilabel_margin as multilabel_margin
from ._hinge import multilabel_soft_margin as multilabel_soft_margin
from ._hinge import perceptron as perceptron
from ._hinge import soft_margin as soft_margin
from ._hinge import squared_hinge as squared_hinge
from ._large_vocab import linear_cross_entropy as linear_cross_entropy
from ._likelihood import gaussian_nll as gaussian_nll
from ._likelihood import poisson as poisson
from ._likelihood import poisson_nll as poisson_nll
from ._metric import circle as circle
from ._metric import cosine_embedding as cosine_embedding
from ._metric import hinge_embedding as hinge_embedding
from ._metric import margin_ranking as margin_ranking
from ._metric import ntxent as ntxent
from ._metric import triplet_margin as triplet_margin
from ._ranking import ranking_softmax as ranking_softmax
from ._registry import get as get
from ._regression import cosine_similarity as cosine_similarity
from ._regression import huber as huber
from ._regression import log_cosh as log_cosh
from ._regression import mean_absolute_error as mean_absolute_error
from ._regression import mean_absolute_percentage_error as mean_absolute_percentage_error
from ._regression import mean_squared_error as mean_squared_error
from ._regression import mean_squared_logarithmic_error as mean_squared_logarithmic_error
from ._regression import smooth_l1 as smooth_l1
from ._segmentation import dice as dice
from ._segmentation import tversky as tversky
from ._sequence import ctc as ctc

try:
    __version__ = version("jaxloss")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str):
    # jaxloss.keras imports keras: only on first use, so that `import jaxloss` never does.
    if name == "keras":
        import importlib

        return importlib.import_module(".keras", __name__)
    raise AttributeError(f"module 'jaxloss' has no attribute {name!r}")


__all__ = [
    "__version__",
    "analytic_grad",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "categorical_hinge",
    "checked",
    "circle",
    "cosine_embedding",
    "cosine_similarity",
    "ctc",
    "declarations",
    "dice",
    "gaussian_nll",
    "generalized_kl_divergence",
    "get",
    "grad",
    "hinge",
    "hinge_embedding",
    "huber",
    "kl_divergence",
    "linear_cross_entropy",
    "log_cosh",
    "margin_ranking",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "multi_margin",
    "multiclass_hinge",
    "multilabel_margin",
    "multilabel_soft_margin",
    "ntxent",
    "perceptron",
    "poisson",
    "poisson_nll",
    "poly_loss",
    "ranking_softmax",
    "sigmoid_focal",
    "smooth_l1",
    "soft_margin",
    "sparse_categorical_crossentropy",
    "sparsemax_loss",
    "squared_hinge",
    "triplet_margin",
    "tversky",
    "value_and_grad",
]
