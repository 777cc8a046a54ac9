"""Importable conformance suites (optimizers, schedules, samplers) used by ``tests/`` and by users who add
their own registry entries."""

from __future__ import annotations

from skopt_nn.testing._optimizers import (
    OPTIMIZER_CHECKS,
    NotApplicable,
    Quadratic,
    Rosenbrock,
    SmallRegression,
    make_optimizer,
    not_applicable,
    optimizer_step,
)

__all__ = [
    "OPTIMIZER_CHECKS",
    "NotApplicable",
    "Quadratic",
    "Rosenbrock",
    "SmallRegression",
    "make_optimizer",
    "not_applicable",
    "optimizer_step",
]
