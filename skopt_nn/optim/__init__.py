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
    _adagrad_norm,
    _adahessian,
    _adamp,
    _ademamix,
    _builtins,
    _cautious,
    _coordinate_clip,
    _core,
    _diffgrad,
    _dog,
    _gradient_noise,
    _grams,
    _gravity,
    _lamb,
    _lion,
    _lookahead,
    _mars,
    _novograd,
    _sam,
    _sania,
    _shampoo,
    _soap,
)
from skopt_nn.optim._adagrad_norm import AdaGradNorm
from skopt_nn.optim._adahessian import AdaHessian
from skopt_nn.optim._adamp import SGDP, AdamP
from skopt_nn.optim._ademamix import AdEMAMix
from skopt_nn.optim._cautious import Cautious
from skopt_nn.optim._coordinate_clip import CoordinateClip
from skopt_nn.optim._core import CoRe
from skopt_nn.optim._diffgrad import DiffGrad
from skopt_nn.optim._dog import DoG, LDoG, get_polynomial_decay_multi_avg_fn
from skopt_nn.optim._gradient_noise import GradientNoise
from skopt_nn.optim._grams import Grams
from skopt_nn.optim._gravity import Gravity
from skopt_nn.optim._lamb import LAMB, LARS
from skopt_nn.optim._lion import Lion
from skopt_nn.optim._lookahead import Lookahead, OptimizerWrapper
from skopt_nn.optim._mars import MARS
from skopt_nn.optim._novograd import NovoGrad
from skopt_nn.optim._registry import (
    OPTIMIZERS,
    ConvergenceCase,
    ErrorInput,
    OptimizerSpec,
    available,
    get,
    register,
)
from skopt_nn.optim._sam import SAM
from skopt_nn.optim._sania import SANIA
from skopt_nn.optim._shampoo import Shampoo
from skopt_nn.optim._soap import SOAP

__all__ = [
    "Cautious",
    "Grams",
    "MARS",
    "SAM",
    "SANIA",
    "SOAP",
    "AdEMAMix",
    "AdaGradNorm",
    "CoRe",
    "CoordinateClip",
    "Gravity",
    "NovoGrad",
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
