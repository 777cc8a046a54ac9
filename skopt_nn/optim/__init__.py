"""Optimizers by name: torch's built-ins and the seed papers' algorithms, in one registry.

>>> from skopt_nn import optim
>>> optim.get("adam").optimizer
<class 'torch.optim.adam.Adam'>
>>> "sgd" in optim.available()
True
"""

from __future__ import annotations

from skopt_nn.optim import _builtins  # noqa: F401  (importing registers torch's optimizers)
from skopt_nn.optim._registry import (
    OPTIMIZERS,
    ConvergenceCase,
    ErrorInput,
    OptimizerSpec,
    available,
    get,
    register,
)

__all__ = [
    "OPTIMIZERS",
    "ConvergenceCase",
    "ErrorInput",
    "OptimizerSpec",
    "available",
    "get",
    "register",
]
