"""Learning-rate schedules by name, stepped once per batch.

A schedule is a small parameter object (``SGDR(T_0=5)``) whose :meth:`~Schedule.build` gives a pure, picklable
function ``step -> multiplier`` of the optimizer's lr (the peak), and whose :meth:`~Schedule.make_scheduler`
gives the torch ``LRScheduler`` to step after every ``optimizer.step()``.

>>> from skopt_nn import schedules
>>> sorted(schedules.available())[:3]
['constant', 'constant_cooldown', 'cosine']
>>> fn = schedules.create("linear", warmup_steps=2).build(total_steps=6, steps_per_epoch=3)
>>> [round(fn(t), 3) for t in range(6)]
[0.333, 0.667, 1.0, 0.75, 0.5, 0.25]
"""

from __future__ import annotations

from skopt_nn.schedules._functions import (
    Hold,
    Join,
    StepFunction,
    Table,
    constant,
    constant_cooldown,
    cosine_decay,
    cosine_power_decay,
    linear_decay,
    linear_warmup,
    onecycle,
    sgdr,
    sgdr_cycle,
    sgdr_restart_steps,
)
from skopt_nn.schedules._plot import plot
from skopt_nn.schedules._refine import (
    NORM_TYPES,
    Refined,
    gradient_norm,
    median_filter,
    refined_from,
    refined_multipliers,
)
from skopt_nn.schedules._registry import (
    SCHEDULES,
    ErrorInput,
    ScheduleSpec,
    available,
    create,
    get,
    register,
)
from skopt_nn.schedules._scaling import SCALING_RULES, scale_hyperparameters, scale_lr_for_batch_size
from skopt_nn.schedules._scheduler import MultiplierLR
from skopt_nn.schedules._schedules import (
    SGDR,
    Constant,
    ConstantCooldown,
    Cosine,
    CosinePower,
    Linear,
    OneCycle,
    Schedule,
)

__all__ = [
    "NORM_TYPES",
    "SCALING_RULES",
    "SCHEDULES",
    "SGDR",
    "Constant",
    "ConstantCooldown",
    "Cosine",
    "CosinePower",
    "ErrorInput",
    "Hold",
    "Join",
    "Linear",
    "MultiplierLR",
    "OneCycle",
    "Refined",
    "Schedule",
    "ScheduleSpec",
    "StepFunction",
    "Table",
    "available",
    "constant",
    "constant_cooldown",
    "cosine_decay",
    "cosine_power_decay",
    "create",
    "get",
    "gradient_norm",
    "linear_decay",
    "linear_warmup",
    "median_filter",
    "onecycle",
    "plot",
    "refined_from",
    "refined_multipliers",
    "register",
    "scale_hyperparameters",
    "scale_lr_for_batch_size",
    "sgdr",
    "sgdr_cycle",
    "sgdr_restart_steps",
]
