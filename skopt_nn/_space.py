"""Search-space primitives as plain data.

Registries (optimizers, schedules) describe the hyperparameters worth searching with these frozen dataclasses.
They are independent of any HPO library: :mod:`skopt_nn.search` turns them into Optuna distributions. Keys of
a space are routing names (``"optimizer__lr"``, ``"schedule__T_0"``) so a sampled point applies unchanged with
``estimator.set_params(**point)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Categorical", "Dimension", "Float", "Int", "OneMinusLog", "Tuple"]


@dataclass(frozen=True)
class Float:
    """A real value in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"Float needs 0 < low < high when log=True and low < high; got {self}.")


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low <= 0):
            raise ValueError(f"Int needs low <= high (and low > 0 when log=True); got {self}.")


@dataclass(frozen=True)
class Categorical:
    """One of a fixed tuple of choices."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError("Categorical needs at least one choice.")


@dataclass(frozen=True)
class OneMinusLog:
    """A value close to 1 (a beta, a momentum): ``1 - u`` with ``u`` log-uniform in ``[1 - high, 1 - low]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high < 1.0:
            raise ValueError(f"OneMinusLog needs 0 <= low < high < 1; got {self}.")


@dataclass(frozen=True)
class Tuple:
    """A tuple-valued hyperparameter (Adam's ``betas``): one dimension per item."""

    items: tuple[Float | Int | Categorical | OneMinusLog, ...]


Dimension = Float | Int | Categorical | OneMinusLog | Tuple
