"""Optimizers by name: torch's built-ins and the seed papers' algorithms, in one registry.

>>> from skopt_nn import optim
>>> optim.get("adam").optimizer
<class 'torch.optim.adam.Adam'>
>>> "sgd" in optim.available()
True
"""

from __future__ import annotations

# importing a module registers its optimizers
from skopt_nn.optim import (  # noqa: F401
    _adahessian,
    _adamp,
    _builtins,
    _diffgrad,
    _dog,
    _gradient_noise,
    _lamb,
    _lion,
    _lookahead,
    _shampoo,
)
from skopt_nn.optim._adahessian import AdaHessian
from skopt_nn.optim._adamp import SGDP, AdamP
from skopt_nn.optim._diffgrad import DiffGrad
from skopt_nn.optim._dog import DoG, LDoG, get_polynomial_decay_multi_avg_fn
from skopt_nn.optim._gradient_noise import GradientNoise
from skopt_nn.optim._lamb import LAMB, LARS
from skopt_nn.optim._lion import Lion
from skopt_nn.optim._lookahead import Lookahead, OptimizerWrapper
from skopt_nn.optim._registry import (
    OPTIMIZERS,
    ConvergenceCase,
    ErrorInput,
    OptimizerSpec,
    available,
    get,
    register,
)
from skopt_nn.optim._shampoo import Shampoo

__all__ = [
    "LAMB",
    "LARS",
    "OPTIMIZERS",
    "SGDP",
    "AdaHessian",
    "AdamP",
    "DiffGrad",
    "DoG",
    "GradientNoise",
    "LDoG",
    "Lion",
    "Lookahead",
    "OptimizerWrapper",
    "Shampoo",
    "ConvergenceCase",
    "ErrorInput",
    "OptimizerSpec",
    "available",
    "get_polynomial_decay_multi_avg_fn",
    "get",
    "register",
]
