"""The torch adapter: a ``step -> multiplier`` function as an ``LRScheduler`` stepped once per batch."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from skopt_nn.schedules._functions import StepFunction

__all__ = ["MultiplierLR"]


class MultiplierLR(LRScheduler):
    r"""Set every param group's lr to ``base_lr * fn(t)``, where ``t`` counts the scheduler's ``step()`` calls.

    .. math:: \text{lr}_g(t) = \text{base\_lr}_g \cdot f(t), \qquad t = 0, 1, 2, \dots

    Step 0 is applied on construction (torch's convention), so the first batch already trains with
    ``base_lr * fn(0)``; call :meth:`step` after every ``optimizer.step()`` (once per batch). ``base_lr`` of a
    group is its ``initial_lr`` if a scheduler set one before, else its ``lr`` on construction: the optimizer's
    lr is the **peak** the multipliers scale.

    Parameters
    ----------
    optimizer:
        Any ``torch.optim.Optimizer``, including wrappers whose ``param_groups`` are the wrapped optimizer's
        (the lr is written into the shared group dicts).
    fn:
        The schedule, e.g. ``schedule.build(total_steps, steps_per_epoch)``. To pickle the scheduler ``fn``
        must pickle: the functions that :meth:`Schedule.build` returns do (no lambdas inside).
    last_epoch:
        Index of the last step taken, as in torch (``-1``: start).

    ``state_dict()`` holds the step counter and base lrs but not ``fn`` (like torch's ``LambdaLR`` for plain
    functions): rebuild the scheduler with the same schedule, then ``load_state_dict``.

    >>> import torch
    >>> from skopt_nn.schedules import Linear
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = MultiplierLR(opt, Linear().build(total_steps=4, steps_per_epoch=2))
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 6))
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [0.1, 0.075, 0.05, 0.025]
    """

    def __init__(self, optimizer: Optimizer, fn: StepFunction, last_epoch: int = -1) -> None:
        if not callable(fn):
            raise TypeError(f"MultiplierLR needs a callable step -> multiplier; got {fn!r}.")
        self.fn = fn
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        """The lr of every group at the current step ``last_epoch`` (closed form, no recursion)."""
        multiplier = float(self.fn(self.last_epoch))
        if not math.isfinite(multiplier):
            raise ValueError(
                f"The schedule gave the lr multiplier {multiplier} at step {self.last_epoch}: multipliers must be "
                "finite (a NaN lr trains a NaN model)."
            )
        return [base_lr * multiplier for base_lr in self.base_lrs]

    _get_closed_form_lr = get_lr

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state without the optimizer and without ``fn``."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "fn")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (``fn`` stays the one given on construction)."""
        self.__dict__.update({key: value for key, value in state_dict.items() if key not in ("optimizer", "fn")})
