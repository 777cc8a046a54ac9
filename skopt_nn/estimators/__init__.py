"""scikit-learn estimators on skorch: ``NeuralClassifier``, ``NeuralRegressor`` and their building blocks."""

from __future__ import annotations

from skopt_nn.estimators._callbacks import GradientNormLogger, LRSchedule, ValidAccuracy, ValidR2
from skopt_nn.estimators._classifier import NeuralClassifier
from skopt_nn.estimators._data import TensorBatchIterator, TensorData
from skopt_nn.estimators._module import TabularMLP
from skopt_nn.estimators._regressor import NeuralRegressor

__all__ = [
    "GradientNormLogger",
    "LRSchedule",
    "NeuralClassifier",
    "NeuralRegressor",
    "TabularMLP",
    "TensorBatchIterator",
    "TensorData",
    "ValidAccuracy",
    "ValidR2",
]
