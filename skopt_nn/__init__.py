"""skopt_nn: neural networks as scikit-learn estimators whose training algorithm is searchable."""

from __future__ import annotations

from skopt_nn._version import __version__
from skopt_nn.estimators import NeuralClassifier, NeuralRegressor, TabularMLP

__all__ = ["NeuralClassifier", "NeuralRegressor", "TabularMLP", "__version__"]
