"""jaxloss: the Keras 3 loss catalogue and more, as pure, jit-compiled JAX functions."""

from importlib.metadata import PackageNotFoundError, version

from ._checks import checked as checked

# _contrastive
from ._contrastive import ntxent as ntxent
from ._contrastive import poly_loss as poly_loss
from ._contrastive import ranking_softmax as ranking_softmax
from ._contrastive import sigmoid_focal as sigmoid_focal
from ._contrastive import sparsemax_loss as sparsemax_loss
from ._gradients import analytic_grad as analytic_grad
from ._gradients import grad as grad
from ._gradients import value_and_grad as value_and_grad

# _hinge
from ._hinge import categorical_hinge as categorical_hinge
from ._hinge import hinge as hinge
from ._hinge import squared_hinge as squared_hinge
from ._large_vocab import linear_cross_entropy as linear_cross_entropy

# _likelihood
from ._likelihood import gaussian_nll as gaussian_nll
from ._likelihood import generalized_kl_divergence as generalized_kl_divergence
from ._likelihood import poisson_nll as poisson_nll
from ._likelihood import smooth_l1 as smooth_l1

# _margin
from ._margin import cosine_embedding as cosine_embedding
from ._margin import hinge_embedding as hinge_embedding
from ._margin import margin_ranking as margin_ranking
from ._margin import multi_margin as multi_margin
from ._margin import multiclass_hinge as multiclass_hinge
from ._margin import multilabel_soft_margin as multilabel_soft_margin
from ._margin import perceptron as perceptron
from ._margin import soft_margin as soft_margin
from ._margin import triplet_margin as triplet_margin

# _metric
from ._metric import circle as circle

# _probabilistic
from ._probabilistic import binary_crossentropy as binary_crossentropy
from ._probabilistic import binary_focal_crossentropy as binary_focal_crossentropy
from ._probabilistic import categorical_crossentropy as categorical_crossentropy
from ._probabilistic import categorical_focal_crossentropy as categorical_focal_crossentropy
from ._probabilistic import categorical_generalized_cross_entropy as categorical_generalized_cross_entropy
from ._probabilistic import kl_divergence as kl_divergence
from ._probabilistic import sparse_categorical_crossentropy as sparse_categorical_crossentropy
from ._registry import get as get

# _regression
from ._regression import cosine_similarity as cosine_similarity
from ._regression import huber as huber
from ._regression import log_cosh as log_cosh
from ._regression import mean_absolute_error as mean_absolute_error
from ._regression import mean_absolute_percentage_error as mean_absolute_percentage_error
from ._regression import mean_squared_error as mean_squared_error
from ._regression import mean_squared_logarithmic_error as mean_squared_logarithmic_error
from ._regression import poisson as poisson

# _segmentation
from ._segmentation import dice as dice
from ._segmentation import tversky as tversky

# _sequence
from ._sequence import ctc as ctc

try:
    __version__ = version("jaxloss")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "analytic_grad",
    "checked",
    "get",
    "linear_cross_entropy",
    "grad",
    "value_and_grad",
    # _regression
    "cosine_similarity",
    "huber",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    # _probabilistic
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "kl_divergence",
    "sparse_categorical_crossentropy",
    # _hinge
    "categorical_hinge",
    "hinge",
    "squared_hinge",
    # _segmentation
    "dice",
    "tversky",
    # _metric
    "circle",
    # _sequence
    "ctc",
    # _margin
    "cosine_embedding",
    "hinge_embedding",
    "margin_ranking",
    "multi_margin",
    "multiclass_hinge",
    "multilabel_soft_margin",
    "perceptron",
    "soft_margin",
    "triplet_margin",
    # _likelihood
    "gaussian_nll",
    "generalized_kl_divergence",
    "poisson_nll",
    "smooth_l1",
    # _contrastive
    "ntxent",
    "poly_loss",
    "ranking_softmax",
    "sigmoid_focal",
    "sparsemax_loss",
]
