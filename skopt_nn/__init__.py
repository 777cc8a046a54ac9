"""skopt_nn: neural networks as scikit-learn estimators whose training algorithm is searchable."""

from __future__ import annotations

from skopt_nn._version import __version__
from skopt_nn.estimators import NeuralClassifier, NeuralRegressor, TabularMLP
from skopt_nn.search import CrossEntropySampler, NeuralSearchCV

__all__ = [
    "CrossEntropySampler",
    "NeuralClassifier",
    "NeuralRegressor",
    "NeuralSearchCV",
    "TabularMLP",
    "__version__",
]
