"""Optuna-driven selection of the training algorithm: search spaces, the cross-entropy sampler, NeuralSearchCV."""

from __future__ import annotations

from skopt_nn.search._cem import CrossEntropySampler
from skopt_nn.search._search_cv import NeuralSearchCV, make_pruner, make_sampler
from skopt_nn.search._space import (
    DEFAULT_OPTIMIZERS,
    DEFAULT_SCHEDULES,
    SearchSpace,
    auto_space,
    final_step,
    resolve_space,
    suggest,
    suggest_dimension,
)

__all__ = [
    "DEFAULT_OPTIMIZERS",
    "DEFAULT_SCHEDULES",
    "CrossEntropySampler",
    "NeuralSearchCV",
    "SearchSpace",
    "auto_space",
    "final_step",
    "make_pruner",
    "make_sampler",
    "resolve_space",
    "suggest",
    "suggest_dimension",
]
