"""Torch's built-in optimizers, registered by name (never rewritten).

The error inputs below are torch's own messages: the suite checks that torch still raises them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from skopt_nn._space import Dimension, Float, Int, OneMinusLog, Tuple
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

_KINGMA = "Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015 (arXiv:1412.6980)"


def _lr(low: float, high: float) -> dict[str, Dimension]:
    return {"optimizer__lr": Float(low, high, log=True)}


def _betas() -> dict[str, Dimension]:
    return {"optimizer__betas": Tuple((OneMinusLog(0.5, 0.99), OneMinusLog(0.9, 0.9999)))}


def _wd(low: float = 1e-6, high: float = 1e-2) -> dict[str, Dimension]:
    return {"optimizer__weight_decay": Float(low, high, log=True)}


def _adam_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-5, 1e-1), **_betas(), **_wd()}


def _adamw_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-5, 1e-1), **_betas(), **_wd(1e-5, 1e-1)}


def _sgd_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-4, 1.0), "optimizer__momentum": OneMinusLog(0.0, 0.99), **_wd()}


def _adagrad_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-3, 1.0), **_wd()}


def _adadelta_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-2, 10.0), "optimizer__rho": OneMinusLog(0.8, 0.999), **_wd()}


def _rmsprop_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-5, 1e-1), "optimizer__alpha": OneMinusLog(0.8, 0.999), **_wd()}


def _adafactor_space() -> Mapping[str, Dimension]:
    return {**_lr(1e-4, 1e-1), **_wd()}


def _lbfgs_space() -> Mapping[str, Dimension]:
    return {**_lr(0.05, 1.0), "optimizer__history_size": Int(5, 100, log=True)}


_LR_ERROR = ErrorInput({"lr": -1.0}, ValueError, "Invalid learning rate: -1.0")
_BETA_ERROR = ErrorInput({"betas": (1.0, 0.9)}, ValueError, "Invalid beta parameter at index 0: 1.0")
_EPS_ERROR = ErrorInput({"eps": -1.0}, ValueError, "Invalid epsilon value: -1.0")
_WD_ERROR = ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0")

_ADAM_QUADRATIC = ConvergenceCase({"lr": 0.05}, steps=400, tol=1e-3)
_ADAM_ROSENBROCK = ConvergenceCase({"lr": 0.02}, steps=5000, tol=1e-2)


def _class_name(optimizer: object) -> str:
    return str(getattr(getattr(optimizer, "func", optimizer), "__name__", ""))


def _builtin(
    name: str,
    optimizer: object,
    paper: str,
    family: str,
    summary: str,
    space: object,
    *,
    sample: Mapping[str, object],
    errors: tuple[ErrorInput, ...],
    quadratic: ConvergenceCase | None,
    rosenbrock: ConvergenceCase | None,
    foreach: bool = True,
    closure: bool = False,
    groups: bool = True,
) -> None:
    register(
        OptimizerSpec(
            name=name,
            optimizer=optimizer,  # type: ignore[arg-type]
            paper=paper,
            family=family,
            summary=summary,
            url=f"https://pytorch.org/docs/stable/generated/torch.optim.{_class_name(optimizer)}.html",
            needs_closure=closure,
            supports_foreach=foreach,
            supports_param_groups=groups,
            search_space=space,  # type: ignore[arg-type]
            sample_kwargs=sample,
            error_inputs=errors,
            quadratic=quadratic,
            rosenbrock=rosenbrock,
            origin="torch",
        )
    )


_builtin(
    "sgd",
    torch.optim.SGD,
    "Robbins & Monro 1951; heavy ball: Polyak 1964; Nesterov: Sutskever et al., ICML 2013",
    "sgd",
    "Stochastic gradient descent with (Nesterov) momentum: the baseline every comparison must include.",
    _sgd_space,
    sample={"lr": 0.05, "momentum": 0.9},
    errors=(
        _LR_ERROR,
        ErrorInput({"lr": 0.1, "momentum": -0.5}, ValueError, "Invalid momentum value: -0.5"),
        ErrorInput(
            {"lr": 0.1, "nesterov": True}, ValueError, "Nesterov momentum requires a momentum and zero dampening"
        ),
    ),
    quadratic=ConvergenceCase({"lr": 0.05, "momentum": 0.9}, steps=300, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 1e-3, "momentum": 0.9}, steps=3000, tol=1e-2),
)
_builtin(
    "adam",
    torch.optim.Adam,
    _KINGMA,
    "adam-like",
    "Adam: bias-corrected first/second moment estimates; L2 weight decay added to the gradient.",
    _adam_space,
    sample={"lr": 0.01},
    errors=(_LR_ERROR, _BETA_ERROR, _EPS_ERROR, _WD_ERROR),
    quadratic=_ADAM_QUADRATIC,
    rosenbrock=_ADAM_ROSENBROCK,
)
_builtin(
    "adamw",
    torch.optim.AdamW,
    "Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019 (arXiv:1711.05101)",
    "adam-like",
    "Adam with decoupled weight decay; the default choice for most networks.",
    _adamw_space,
    sample={"lr": 0.01, "weight_decay": 0.01},
    errors=(_LR_ERROR, _BETA_ERROR, _EPS_ERROR, _WD_ERROR),
    quadratic=ConvergenceCase({"lr": 0.05, "weight_decay": 0.0}, steps=400, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.02, "weight_decay": 0.0}, steps=5000, tol=1e-2),
)
_builtin(
    "amsgrad",
    functools.partial(torch.optim.Adam, amsgrad=True),
    "Reddi, Kale & Kumar, On the Convergence of Adam and Beyond, ICLR 2018 (arXiv:1904.09237)",
    "adam-like",
    "Adam with the long-term memory fix: the second moment used is the running maximum.",
    _adam_space,
    sample={"lr": 0.01},
    errors=(_LR_ERROR, _BETA_ERROR),
    quadratic=ConvergenceCase({"lr": 0.05}, steps=400, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.02}, steps=6000, tol=1e-2),
)
_builtin(
    "adamax",
    torch.optim.Adamax,
    _KINGMA + ", section 7.1",
    "adam-like",
    "Adam with the infinity norm for the second moment; robust to sparse, large gradients.",
    _adam_space,
    sample={"lr": 0.02},
    errors=(_LR_ERROR, _BETA_ERROR, _EPS_ERROR),
    quadratic=ConvergenceCase({"lr": 0.05}, steps=400, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.02}, steps=6000, tol=1e-2),
)
_builtin(
    "nadam",
    torch.optim.NAdam,
    "Dozat, Incorporating Nesterov Momentum into Adam, ICLR workshop 2016",
    "adam-like",
    "Adam with Nesterov momentum.",
    _adam_space,
    sample={"lr": 0.01},
    errors=(
        _LR_ERROR,
        _BETA_ERROR,
        ErrorInput({"momentum_decay": -1.0}, ValueError, "Invalid momentum_decay value: -1.0"),
    ),
    quadratic=ConvergenceCase({"lr": 0.05}, steps=300, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.01}, steps=6000, tol=1e-2),
)
_builtin(
    "radam",
    torch.optim.RAdam,
    "Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020 (arXiv:1908.03265)",
    "adam-like",
    "Rectified Adam: turns the adaptive step on only once the variance estimate is reliable (built-in warmup).",
    _adam_space,
    sample={"lr": 0.01},
    errors=(_LR_ERROR, _BETA_ERROR),
    quadratic=ConvergenceCase({"lr": 0.05}, steps=400, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.005}, steps=10000, tol=1e-2),
)
_builtin(
    "adagrad",
    torch.optim.Adagrad,
    "Duchi, Hazan & Singer, Adaptive Subgradient Methods for Online Learning and Stochastic Optimization, JMLR 2011",
    "adagrad-like",
    "Per-coordinate step sizes from the sum of squared gradients; good for sparse features.",
    _adagrad_space,
    sample={"lr": 0.1},
    errors=(
        _LR_ERROR,
        ErrorInput({"lr_decay": -1.0}, ValueError, "Invalid lr_decay value: -1.0"),
        ErrorInput({"initial_accumulator_value": -1.0}, ValueError, "Invalid initial_accumulator_value value: -1.0"),
    ),
    quadratic=ConvergenceCase({"lr": 0.5}, steps=200, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.5}, steps=8000, tol=1e-2),
)
_builtin(
    "adadelta",
    torch.optim.Adadelta,
    "Zeiler, ADADELTA: An Adaptive Learning Rate Method, 2012 (arXiv:1212.5701)",
    "adagrad-like",
    "Adagrad with a decaying window and unit correction; insensitive to the learning rate.",
    _adadelta_space,
    sample={"lr": 1.0},
    errors=(_LR_ERROR, ErrorInput({"rho": 1.5}, ValueError, "Invalid rho value: 1.5")),
    quadratic=ConvergenceCase({"lr": 10.0}, steps=300, tol=1e-3),
    rosenbrock=None,  # measured: drifts away from (1, 1) at lr 1 and 10; it is not a deterministic solver
)
_builtin(
    "rmsprop",
    torch.optim.RMSprop,
    "Tieleman & Hinton, Lecture 6.5 - RMSProp, COURSERA: Neural Networks for Machine Learning, 2012",
    "adagrad-like",
    "Divides the gradient by a running RMS of recent gradients.",
    _rmsprop_space,
    sample={"lr": 0.01},
    errors=(
        _LR_ERROR,
        ErrorInput({"alpha": -1.0}, ValueError, "Invalid alpha value: -1.0"),
        ErrorInput({"momentum": -1.0}, ValueError, "Invalid momentum value: -1.0"),
    ),
    quadratic=ConvergenceCase({"lr": 0.01}, steps=300, tol=1e-2),
    rosenbrock=ConvergenceCase({"lr": 1e-3, "momentum": 0.9}, steps=3000, tol=1e-2),
)
_builtin(
    "adafactor",
    torch.optim.Adafactor,
    "Shazeer & Stern, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost, ICML 2018 (arXiv:1804.04235)",
    "adam-like",
    "Factored second moments (row and column statistics): Adam-like steps with sublinear memory.",
    _adafactor_space,
    sample={"lr": 0.01},
    errors=(
        ErrorInput({"lr": -1.0}, ValueError, "Learning rate should be >= 0 but is: -1.0"),
        ErrorInput({"beta2_decay": 1.0}, ValueError, "beta2_decay should be <= 0 but is: 1.0"),
        ErrorInput({"d": 0.5}, ValueError, "Clipping threshold d should be >= 1 but is: 0.5"),
    ),
    quadratic=ConvergenceCase({"lr": 0.05}, steps=400, tol=1e-3),
    rosenbrock=ConvergenceCase({"lr": 0.01}, steps=8000, tol=5e-2),
)
_builtin(
    "lbfgs",
    functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe"),
    "Liu & Nocedal, On the Limited Memory BFGS Method for Large Scale Optimization, Math. Programming 1989",
    "quasi-newton",
    "Full-batch quasi-Newton with a closure and a strong-Wolfe line search (torch's default has none, which "
    "diverges easily on networks; set optimizer__line_search_fn=None for it); use with batch_size=-1 on small data.",
    _lbfgs_space,
    sample={"lr": 1.0},
    errors=(_LR_ERROR,),
    quadratic=ConvergenceCase({"lr": 1.0}, steps=20, tol=1e-4),
    rosenbrock=ConvergenceCase({"lr": 1.0}, steps=100, tol=1e-3),
    foreach=False,
    closure=True,
    groups=False,
)
