"""Pure ``step -> multiplier`` functions and the picklable objects that compose them.

Every function here maps an optimizer step ``t = 0, 1, 2, ...`` (one step per batch) to the multiplier of the
optimizer's base learning rate, which is the **peak** learning rate: the lr actually used at step ``t`` is
``lr * f(t)``. Floors such as ``eta_min`` are fractions of that peak, so ``eta_min=0.01`` with ``lr=0.1``
anneals to ``0.001``.

Conventions shared by every function (the test-suite checks them step by step):

* **Progress is** ``t / T`` over a horizon of ``T`` steps, as in torch's ``CosineAnnealingLR`` and ``LinearLR``:
  the first step uses the peak, and the floor would be reached at step ``T``, one step after the last one.
  ``linear_decay`` at the last step ``T - 1`` is therefore ``1/T`` (with ``eta_min=0``), not 0.
* **Warm-up** is :func:`linear_warmup`: ``(t + 1) / (w + 1)`` times the value the body starts with, for
  ``t < w``. It never spends a step at lr 0 and reaches the body continuously (the body starts at its own
  step 0 on step ``w``).
* **Composition** is by :class:`Join` (pieces on consecutive step ranges, each seeing its own local step, as
  optax's ``join_schedules``) and :class:`Hold` (keep the last value after the horizon).

Bind parameters with :func:`functools.partial`: a ``partial`` of a module-level function, a :class:`Join`, a
:class:`Hold` and a :class:`Table` all pickle, so the torch scheduler built from them pickles too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Hold",
    "Join",
    "StepFunction",
    "Table",
    "constant",
    "constant_cooldown",
    "cosine_decay",
    "cosine_power_decay",
    "linear_decay",
    "linear_warmup",
    "onecycle",
    "sgdr",
    "sgdr_cycle",
    "sgdr_restart_steps",
]

StepFunction = Callable[[int], float]
"""A schedule: optimizer step (``int``, from 0) to multiplier of the peak learning rate."""


def _scaled(value: float, eta_min: float) -> float:
    # a shape in [0, 1] mapped onto [eta_min, 1]
    return eta_min + (1.0 - eta_min) * value


def constant(step: int) -> float:
    """The constant schedule: ``1`` at every step."""
    return 1.0


def linear_warmup(step: int, *, warmup_steps: int, end: float = 1.0) -> float:
    r"""Linear warm-up over ``warmup_steps`` steps towards ``end``.

    .. math:: f(t) = \frac{t + 1}{w + 1}\, \text{end}, \qquad 0 \le t < w.

    Step 0 already uses ``end / (w + 1)`` (no step is wasted at lr 0); step ``w``, the first one of the body,
    would be ``end``. Goyal et al. (2017), "Accurate, Large Minibatch SGD", ramp linearly in the same way.
    """
    return (step + 1) / (warmup_steps + 1) * end


def linear_decay(step: int, *, total_steps: int, eta_min: float = 0.0) -> float:
    r"""Linear decay ``1 - t/T`` onto ``[eta_min, 1]``.

    .. math:: f(t) = \eta_{min} + (1 - \eta_{min})\,(1 - t/T).

    The worst-case optimal schedule for the last iterate (Defazio, Cutkosky, Mehta & Mishchenko 2023, "When,
    Why and How Much? Adaptive Learning Rate Scheduling by Refinement", arXiv:2310.07831). Equal to torch's
    ``LinearLR(start_factor=1, end_factor=eta_min, total_iters=T)``.
    """
    return _scaled(1.0 - step / total_steps, eta_min)


def cosine_decay(step: int, *, total_steps: int, eta_min: float = 0.0) -> float:
    r"""Half-cosine annealing over ``T`` steps.

    .. math:: f(t) = \eta_{min} + \tfrac12 (1 - \eta_{min})\,(1 + \cos(\pi t / T)).

    Equal to the closed form of torch's ``CosineAnnealingLR(T_max=T, eta_min=eta_min * lr)``.
    """
    return _scaled(0.5 * (1.0 + math.cos(math.pi * step / total_steps)), eta_min)


def cosine_power_decay(step: int, *, total_steps: int, exponent_order: float, eta_min: float = 0.0) -> float:
    r"""Cosine power annealing (Hundt, Jain & Hager 2019, sharpDARTS, arXiv:1903.09900).

    With the cosine proportion :math:`c(t) = \tfrac12(1 + \cos(\pi t/T)) \in [0, 1]` and the exponent order
    :math:`r`, the power curve :math:`p(t) = r^{c(t) + 1}` runs from :math:`r^2` down to :math:`r`; it is
    rescaled to :math:`[0, 1]` and then onto :math:`[\eta_{min}, 1]`:

    .. math:: f(t) = \eta_{min} + (1 - \eta_{min})\,\frac{r^{c(t)+1} - r}{r^2 - r}.

    ``exponent_order = 1`` is the limit :math:`f = c`, i.e. plain cosine annealing; larger orders decay faster
    early and slower late (the paper uses 10 on ImageNet and 2 on CIFAR-10).

    .. warning:: The authors' code rescales by the minimum and maximum of the sampled curve; we rescale by the
       analytic range :math:`[r, r^2]`, so the curve does not depend on how many steps are sampled.
    """
    c = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    r = float(exponent_order)
    if r == 1.0:
        shape = c
    else:
        # (r^(c+1) - r) / (r^2 - r) = (r^c - 1) / (r - 1), written with L = log r so that it neither overflows
        # (r^2 for a huge r) nor cancels (r close to 1)
        log_r = math.log(r)
        shape = math.expm1(c * log_r) / math.expm1(log_r)
    return _scaled(shape, eta_min)


def constant_cooldown(
    step: int, *, total_steps: int, cooldown_steps: int, shape: str = "linear", eta_min: float = 0.0
) -> float:
    r"""Constant, then a cooldown over the last ``C = cooldown_steps`` steps (warmup-stable-decay, "WSD").

    With :math:`T_0 = T - C` and :math:`s = (t - T_0)/C`:

    .. math:: f(t) = 1 \;(t < T_0), \qquad f(t) = \eta_{min} + (1 - \eta_{min})\,g(s) \;(t \ge T_0),

    with :math:`g(s) = 1 - s` (``shape="linear"``, Schaipp, Hägele, Taylor, Şimşekli & Bach 2025, "The
    Surprising Agreement Between Convex Optimization Theory and Learning-Rate Scheduling for Large Model
    Training", arXiv:2501.18965) or :math:`g(s) = 1 - \sqrt{s}` (``shape="1-sqrt"``, Hägele et al. 2024, "Scaling
    Laws and Compute-Optimal Training Beyond Fixed Training Durations", arXiv:2405.18392).

    With ``C = T`` and the linear shape this is exactly :func:`linear_decay`.
    """
    start = total_steps - cooldown_steps
    if step < start:
        return 1.0
    s = (step - start) / cooldown_steps
    value = 1.0 - s if shape == "linear" else 1.0 - math.sqrt(s)
    return _scaled(value, eta_min)


def _sgdr_boundary(i: int, first: float, T_mult: float) -> float:
    # first step (in steps, possibly fractional) of cycle i
    if T_mult == 1.0:
        return first * i
    return first * (T_mult**i - 1.0) / (T_mult - 1.0)


def sgdr_cycle(step: int, *, steps_per_epoch: int, T_0: int, T_mult: float = 1.0) -> tuple[int, float]:
    """The SGDR cycle ``i`` that ``step`` belongs to and its progress ``T_cur / T_i`` in ``[0, 1)``.

    Cycle ``i`` lasts ``T_i = T_0 * T_mult**i`` epochs, i.e. ``T_i * steps_per_epoch`` steps, and starts at
    step ``b_i = T_0 * steps_per_epoch * (T_mult**i - 1) / (T_mult - 1)`` (``i * T_0 * steps_per_epoch`` when
    ``T_mult == 1``). A step that falls exactly on ``b_i`` already belongs to cycle ``i`` (restart convention).
    """
    first = float(T_0 * steps_per_epoch)
    T_mult = float(T_mult)
    if T_mult == 1.0:
        i = int(step // first)
    else:
        i = int(math.floor(math.log(step * (T_mult - 1.0) / first + 1.0) / math.log(T_mult)))
        # guard the floating-point logarithm at the boundaries
        while _sgdr_boundary(i + 1, first, T_mult) <= step:
            i += 1
        while i > 0 and _sgdr_boundary(i, first, T_mult) > step:
            i -= 1
    start = _sgdr_boundary(i, first, T_mult)
    length = first * T_mult**i
    return i, (step - start) / length


def sgdr(
    step: int,
    *,
    steps_per_epoch: int,
    T_0: int,
    T_mult: float = 1.0,
    eta_min: float = 0.0,
    restart_decay: float = 1.0,
) -> float:
    r"""Cosine annealing with warm restarts (Loshchilov & Hutter 2017, SGDR, arXiv:1608.03983), per batch.

    .. math:: f(t) = \eta_{min} + \tfrac12 (1 - \eta_{min})\, d^{\,i} \left(1 + \cos\!\left(\pi \frac{T_{cur}}{T_i}
              \right)\right)

    where :math:`T_{cur}` counts epochs since the last restart and advances by ``1/steps_per_epoch`` every
    batch (fractional epochs, as in the paper), :math:`T_i = T_0 T_{mult}^i` is the length of cycle :math:`i`
    and :math:`d` is ``restart_decay``: the amplitude above the floor shrinks by ``d`` at every restart (the
    paper's suggestion of lowering :math:`\eta_{max}` per restart, in Keras' ``m_mul`` form, which keeps every
    peak at or above the floor).

    **Restart convention.** When :math:`T_{cur}` reaches :math:`T_i` the cycle restarts *on that step*: the step
    at epoch :math:`T_0` uses the peak again, and :math:`\eta_{min}` itself is approached but never used. This is
    torch's ``CosineAnnealingWarmRestarts`` stepped with ``scheduler.step(t / steps_per_epoch)``. skorch's
    ``WarmRestartLR`` instead spends one more epoch in each cycle (it uses :math:`\eta_{min}` at epoch
    :math:`T_i` and restarts one epoch later), so its restarts fall one epoch later per cycle.
    """
    i, progress = sgdr_cycle(step, steps_per_epoch=steps_per_epoch, T_0=T_0, T_mult=T_mult)
    return eta_min + (1.0 - eta_min) * restart_decay**i * 0.5 * (1.0 + math.cos(math.pi * progress))


def sgdr_restart_steps(total_steps: int, *, steps_per_epoch: int, T_0: int, T_mult: float = 1.0) -> list[int]:
    """The steps ``t < total_steps`` (after any warm-up) on which SGDR restarts: the first step of cycles 1, 2, ...

    A cycle boundary that falls between two steps (possible when ``T_mult`` is not an integer) restarts on the
    next step.
    """
    first = float(T_0 * steps_per_epoch)
    steps: list[int] = []
    i = 1
    while True:
        start = math.ceil(_sgdr_boundary(i, first, float(T_mult)) - 1e-9)
        if start >= total_steps:
            return steps
        steps.append(int(start))
        i += 1


def onecycle(
    step: int,
    *,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> float:
    r"""The learning-rate part of the 1cycle policy (Smith & Topin 2019, "Super-Convergence", arXiv:1708.07120).

    The closed form of torch's ``OneCycleLR`` divided by its ``max_lr``: from ``1/div_factor`` up to 1 over the
    first ``pct_start * T - 1`` steps, then down to ``1/(div_factor * final_div_factor)`` at step ``T - 1``
    (``three_phase``: up, back down to ``1/div_factor`` by step ``2 pct_start T - 2``, then to the minimum),
    with cosine or linear interpolation inside each phase. It exists to plot and inspect the schedule; training
    uses torch's ``OneCycleLR`` itself (see :class:`skopt_nn.schedules.OneCycle`), and the tests check the two
    agree at every step.
    """
    initial = 1.0 / div_factor
    minimum = initial / final_div_factor
    if three_phase:
        phases = [
            (float(pct_start * total_steps) - 1, initial, 1.0),
            (float(2 * pct_start * total_steps) - 2, 1.0, initial),
            (total_steps - 1, initial, minimum),
        ]
    else:
        phases = [(float(pct_start * total_steps) - 1, initial, 1.0), (total_steps - 1, 1.0, minimum)]
    start_step = 0.0
    for k, (end_step, start, end) in enumerate(phases):
        if step <= end_step or k == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            if anneal_strategy == "cos":
                return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (end - start) * pct + start
        start_step = end_step
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Join:
    """Schedules on consecutive step ranges: ``pieces[k]`` runs on ``[boundaries[k-1], boundaries[k])``.

    Each piece sees its own local step (``t - boundaries[k-1]``), so a body that follows a ``w``-step warm-up
    starts at its step 0 on step ``w`` (optax's ``join_schedules`` convention).
    """

    pieces: tuple[StepFunction, ...]
    boundaries: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.pieces) != len(self.boundaries) + 1:
            raise ValueError(f"Join needs one more piece than boundaries; got {self}.")
        if list(self.boundaries) != sorted(self.boundaries):
            raise ValueError(f"Join boundaries must be increasing; got {self.boundaries}.")

    def __call__(self, step: int) -> float:
        offset = 0
        for piece, boundary in zip(self.pieces, self.boundaries):
            if step < boundary:
                return piece(step - offset)
            offset = boundary
        return self.pieces[-1](step - offset)


@dataclass(frozen=True)
class Hold:
    """``fn`` up to step ``last``, then its value at ``last`` for ever (no extrapolation past the horizon)."""

    fn: StepFunction
    last: int

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"A schedule is evaluated at steps >= 0; got {step}.")
        return self.fn(min(step, self.last))


@dataclass(frozen=True)
class Table:
    """A precomputed schedule: ``values[t]`` (the last value after the end)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Table:
        return cls(tuple(float(v) for v in values))

    def __call__(self, step: int) -> float:
        return self.values[min(step, len(self.values) - 1)]
