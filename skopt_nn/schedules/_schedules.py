"""Schedule objects: small parameter objects that build a ``step -> multiplier`` function for a training run.

A schedule stores its keyword-only constructor arguments unchanged and exposes them through
``get_params`` / ``set_params`` (so ``sklearn.base.clone`` and an estimator's ``schedule__<param>`` routing
work); it validates them in :meth:`Schedule.build`, when the length of the run is known::

    fn = SGDR(T_0=5, T_mult=2).build(total_steps=max_epochs * batches_per_epoch, steps_per_epoch=batches_per_epoch)
    fn(t)  # multiplier of the optimizer's (peak) lr at optimizer step t = 0, 1, ..., total_steps - 1

Common to every schedule:

* the optimizer's lr is the **peak**; ``eta_min`` and the like are fractions of it;
* ``warmup_steps=w`` (or ``warmup_fraction=f``, giving ``w = floor(f * total_steps)``) prepends the linear
  warm-up ``(t + 1)/(w + 1)`` towards the body's first value, and the body then runs on the remaining
  ``total_steps - w`` steps (its horizon shrinks, it is not shifted out of the run);
* after ``total_steps - 1`` the multiplier keeps its last value (continued training does not extrapolate).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR

from skopt_nn._space import Categorical, Dimension, Float, Int
from skopt_nn._validation import (
    Interval,
    check_bool,
    check_float,
    check_int,
    check_option,
    invalid_param_message,
    unknown_name_error,
)
from skopt_nn.schedules._functions import (
    Hold,
    Join,
    StepFunction,
    constant,
    constant_cooldown,
    cosine_decay,
    cosine_power_decay,
    linear_decay,
    linear_warmup,
    onecycle,
    sgdr,
)
from skopt_nn.schedules._registry import ErrorInput, ScheduleSpec, register
from skopt_nn.schedules._scheduler import MultiplierLR

__all__ = [
    "SGDR",
    "Constant",
    "ConstantCooldown",
    "Cosine",
    "CosinePower",
    "Linear",
    "OneCycle",
    "Schedule",
]

_AT_LEAST_ONE = Interval(1, None, "left")
_NON_NEGATIVE = Interval(0, None, "left")
_FRACTION_OF_PEAK = "a float in the range [0.0, 1.0] (a fraction of the peak lr)"


def _int(value: Any, name: str, owner: str, interval: Interval) -> int:
    checked = check_int(value, name, owner, interval)
    assert checked is not None
    return checked


def _float(value: Any, name: str, owner: str, interval: Interval) -> float:
    checked = check_float(value, name, owner, interval)
    assert checked is not None
    return checked


def _check_eta_min(value: Any, owner: str, name: str = "eta_min") -> float:
    """A floor as a fraction of the peak lr: ``[0, 1]``; above 1 it would exceed the peak."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value not in Interval(0.0, 1.0, "both"):
        raise ValueError(invalid_param_message(name, owner, _FRACTION_OF_PEAK, value))
    return float(value)


def _check_optimizer(optimizer: Any, owner: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}.make_scheduler needs a torch.optim.Optimizer; got {optimizer!r}.")


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 6:
        return f"<{len(value)} values>"
    return repr(value)


class Schedule:
    """Base class of the schedules: parameters in, ``step -> multiplier`` out.

    Subclasses declare keyword-only ``__init__`` parameters (always including ``warmup_steps`` and
    ``warmup_fraction``), store them unchanged, and implement :meth:`_check_params` (validation of their own
    parameters, in the one error format) and :meth:`_body` (the function on the post-warm-up horizon).

    Parameters
    ----------
    warmup_steps:
        Length ``w`` of the linear warm-up, in optimizer steps (batches). ``0``: none.
    warmup_fraction:
        Warm-up length as a fraction of the run: ``w = floor(warmup_fraction * total_steps)``. Give either this
        or ``warmup_steps``, not both.
    """

    def __init__(self, *, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> None:
        self.warmup_steps = warmup_steps
        self.warmup_fraction = warmup_fraction

    # ---------------------------------------------------------------- parameters (scikit-learn protocol)

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        signature = inspect.signature(cls.__init__)
        return {n: p.default for n, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    @property
    def _owner(self) -> str:
        return type(self).__name__

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, unchanged (``deep`` is accepted for scikit-learn; nothing is nested)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Schedule:
        """Set parameters by name and return ``self``; an unknown name raises ``ValueError`` with close matches."""
        names = self._param_names()
        for name in params:
            if name not in names:
                raise unknown_name_error(f"{self._owner} parameter", name, names)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = self._defaults()
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = bool(value is default or (type(value) is type(default) and value == default))
            except (ValueError, TypeError):  # arrays
                same = False
            if not same:
                shown.append(f"{name}={_short(value)}")
        return f"{self._owner}({', '.join(shown)})"

    # ---------------------------------------------------------------- validation

    def check_params(self) -> None:
        """Validate every parameter that does not depend on the run's length (``build`` calls it too)."""
        owner = self._owner
        steps = _int(self.warmup_steps, "warmup_steps", owner, _NON_NEGATIVE)
        _float(self.warmup_fraction, "warmup_fraction", owner, Interval(0.0, 1.0, "left"))
        if steps != 0 and self.warmup_fraction != 0:
            raise ValueError(
                invalid_param_message(
                    "warmup_fraction",
                    owner,
                    "0.0 when warmup_steps is non-zero (give one or the other)",
                    self.warmup_fraction,
                )
            )
        self._check_params()

    def _check_params(self) -> None:
        """Validate the subclass's own parameters (override)."""

    def warmup_length(self, total_steps: int) -> int:
        """The warm-up length ``w`` in steps for a run of ``total_steps`` steps (checked: ``w < total_steps``)."""
        if self.warmup_fraction:
            # floor, with a tolerance for products such as 0.29 * 100 = 28.999999999999996
            return int(math.floor(float(self.warmup_fraction) * total_steps + 1e-9))
        if self.warmup_steps >= total_steps:
            raise ValueError(
                invalid_param_message(
                    "warmup_steps",
                    self._owner,
                    f"an int in the range [0, {total_steps - 1}] for total_steps={total_steps}",
                    self.warmup_steps,
                )
            )
        return int(self.warmup_steps)

    def _check_horizon(self, body_steps: int, steps_per_epoch: int) -> None:
        """Validate parameters against the body's horizon (override when needed)."""

    # ---------------------------------------------------------------- building

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        """The schedule after the warm-up, on its own horizon of ``total_steps`` steps (override)."""
        raise NotImplementedError

    def build(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        """The picklable function ``t -> multiplier`` of the peak lr for a run of ``total_steps`` optimizer steps.

        Parameters
        ----------
        total_steps:
            Number of optimizer steps of the run: ``max_epochs * batches_per_epoch``.
        steps_per_epoch:
            Batches per epoch; converts periods given in epochs (SGDR's ``T_0``) to steps.
        """
        owner = f"{self._owner}.build"
        total = _int(total_steps, "total_steps", owner, _AT_LEAST_ONE)
        per_epoch = _int(steps_per_epoch, "steps_per_epoch", owner, _AT_LEAST_ONE)
        self.check_params()
        warmup = self.warmup_length(total)
        self._check_horizon(total - warmup, per_epoch)
        body = self._body(total - warmup, per_epoch)
        fn: StepFunction = body
        if warmup:
            fn = Join((partial(linear_warmup, warmup_steps=warmup, end=body(0)), body), (warmup,))
        return Hold(fn, total - 1)

    def multipliers(self, total_steps: int, steps_per_epoch: int) -> list[float]:
        """``build(total_steps, steps_per_epoch)`` evaluated at every step of the run."""
        fn = self.build(total_steps, steps_per_epoch)
        return [fn(t) for t in range(total_steps)]

    def make_scheduler(
        self, optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, last_epoch: int = -1
    ) -> LRScheduler:
        """The torch scheduler to step once per batch (after ``optimizer.step()``) for this run.

        Sets the lr for step 0 immediately. Most schedules give a :class:`MultiplierLR`; ``OneCycle`` gives
        torch's ``OneCycleLR`` (it cycles the momentum too). ``last_epoch`` is torch's (the index of the last
        *step* taken; ``-1`` starts the run); it makes this method usable as the ``policy`` of skorch's
        ``LRScheduler`` callback, which passes it.
        """
        _check_optimizer(optimizer, self._owner)
        return MultiplierLR(optimizer, self.build(total_steps, steps_per_epoch), last_epoch=last_epoch)


class Constant(Schedule):
    """The constant schedule: the optimizer's lr at every step (optionally after a linear warm-up).

    Parameters
    ----------
    warmup_steps, warmup_fraction:
        Optional linear warm-up (see :class:`Schedule`).
    """

    def __init__(self, *, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> None:
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return constant


class SGDR(Schedule):
    r"""Stochastic gradient descent with warm restarts, stepped per batch.

    .. math:: \eta_t = \eta_{min} + \tfrac12 (1 - \eta_{min})\, d^{\,i}\,\left(1 + \cos\left(\pi
              \frac{T_{cur}}{T_i}\right)\right) \times \text{lr}

    :math:`T_{cur}` is the number of epochs since the last restart and advances by ``1/steps_per_epoch`` each
    batch (fractional epochs, as in the paper); cycle :math:`i` lasts :math:`T_i = T_0 T_{mult}^i` epochs. The
    step on which :math:`T_{cur}` reaches :math:`T_i` already restarts (uses the peak): restarts are at epochs
    :math:`T_0,\ T_0(1 + T_{mult}),\ \dots` — torch's ``CosineAnnealingWarmRestarts`` convention. skorch's
    ``WarmRestartLR`` restarts one epoch later per cycle (it lands on :math:`\eta_{min}` at epoch :math:`T_i`).

    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017, arXiv:1608.03983.

    Parameters
    ----------
    T_0:
        Length of the first cycle in epochs (an int >= 1).
    T_mult:
        Growth factor of the cycle length at each restart (>= 1; 1 gives equal cycles, the paper also uses 2).
    eta_min:
        Floor as a fraction of the peak lr, in [0, 1] (``eta_min * lr`` is the paper's :math:`\eta_{min}`).
    restart_decay:
        :math:`d \in (0, 1]`: the amplitude above the floor is multiplied by ``d`` at every restart
        (1: no decay). The paper suggests lowering :math:`\eta_{max}` at restarts; this is Keras' ``m_mul``.
    warmup_steps, warmup_fraction:
        Optional linear warm-up before the first cycle (see :class:`Schedule`).

    >>> fn = SGDR(T_0=1, T_mult=2).build(total_steps=8, steps_per_epoch=2)
    >>> [round(fn(t), 3) for t in range(8)]
    [1.0, 0.5, 1.0, 0.854, 0.5, 0.146, 1.0, 0.962]
    """

    def __init__(
        self,
        *,
        T_0: int = 10,
        T_mult: float = 2,
        eta_min: float = 0.0,
        restart_decay: float = 1.0,
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
    ) -> None:
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.restart_decay = restart_decay
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        owner = self._owner
        _int(self.T_0, "T_0", owner, _AT_LEAST_ONE)
        _float(self.T_mult, "T_mult", owner, Interval(1.0, None, "left"))
        _check_eta_min(self.eta_min, owner)
        _float(self.restart_decay, "restart_decay", owner, Interval(0.0, 1.0, "right"))

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(
            sgdr,
            steps_per_epoch=steps_per_epoch,
            T_0=int(self.T_0),
            T_mult=float(self.T_mult),
            eta_min=float(self.eta_min),
            restart_decay=float(self.restart_decay),
        )


class Cosine(Schedule):
    r"""Cosine annealing over the whole run (one half-cosine, no restart).

    .. math:: \eta_t = \left(\eta_{min} + \tfrac12 (1 - \eta_{min})(1 + \cos(\pi t / T))\right) \times \text{lr}

    with :math:`T` the post-warm-up horizon. Equals torch's ``CosineAnnealingLR(T_max=T, eta_min=eta_min*lr)``
    (closed form). Loshchilov & Hutter, SGDR, arXiv:1608.03983.

    Parameters
    ----------
    eta_min:
        Floor as a fraction of the peak lr, in [0, 1].
    warmup_steps, warmup_fraction:
        Optional linear warm-up (see :class:`Schedule`).
    """

    def __init__(self, *, eta_min: float = 0.0, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> None:
        self.eta_min = eta_min
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        _check_eta_min(self.eta_min, self._owner)

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(cosine_decay, total_steps=total_steps, eta_min=float(self.eta_min))


class Linear(Schedule):
    r"""Linear decay to zero (or to ``eta_min``) over the run.

    .. math:: \eta_t = \left(\eta_{min} + (1 - \eta_{min})(1 - t/T)\right) \times \text{lr}

    The worst-case optimal last-iterate schedule, which matches or beats cosine in the authors' benchmarks:
    Defazio, Cutkosky, Mehta & Mishchenko, "When, Why and How Much? Adaptive Learning Rate Scheduling by
    Refinement", arXiv:2310.07831. Equals torch's ``LinearLR(start_factor=1, end_factor=eta_min, total_iters=T)``.

    Parameters
    ----------
    eta_min:
        Floor as a fraction of the peak lr, in [0, 1].
    warmup_steps, warmup_fraction:
        Optional linear warm-up (see :class:`Schedule`).
    """

    def __init__(self, *, eta_min: float = 0.0, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> None:
        self.eta_min = eta_min
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        _check_eta_min(self.eta_min, self._owner)

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(linear_decay, total_steps=total_steps, eta_min=float(self.eta_min))


class CosinePower(Schedule):
    r"""Cosine power annealing: cosine annealing bent by a power curve.

    .. math:: c_t = \tfrac12(1 + \cos(\pi t/T)), \qquad
              \eta_t = \left(\eta_{min} + (1 - \eta_{min})\frac{r^{c_t + 1} - r}{r^2 - r}\right) \times \text{lr}

    ``exponent_order`` is :math:`r`; :math:`r = 1` is plain cosine, larger :math:`r` decays faster early and
    slower late. Hundt, Jain & Hager, "sharpDARTS: Faster and More Accurate Differentiable Architecture Search",
    2019, arXiv:1903.09900 (section "Cosine Power Annealing").

    .. warning:: The authors' code rescales by the extremes of the sampled curve; we use the analytic range.

    Parameters
    ----------
    exponent_order:
        :math:`r > 0` (the paper: 10 on ImageNet, 2 on CIFAR-10).
    eta_min:
        Floor as a fraction of the peak lr, in [0, 1].
    warmup_steps, warmup_fraction:
        Optional linear warm-up (see :class:`Schedule`).
    """

    def __init__(
        self,
        *,
        exponent_order: float = 10.0,
        eta_min: float = 0.0,
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
    ) -> None:
        self.exponent_order = exponent_order
        self.eta_min = eta_min
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        _float(self.exponent_order, "exponent_order", self._owner, Interval(0.0, None, "neither"))
        _check_eta_min(self.eta_min, self._owner)

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(
            cosine_power_decay,
            total_steps=total_steps,
            exponent_order=float(self.exponent_order),
            eta_min=float(self.eta_min),
        )


class ConstantCooldown(Schedule):
    r"""Constant lr, then a cooldown to zero over the last ``cooldown_fraction`` of the run ("WSD").

    With :math:`C = \lceil \text{cooldown\_fraction} \cdot T \rceil` cooldown steps, :math:`T_0 = T - C` and
    :math:`s = (t - T_0)/C`: :math:`\eta_t = \text{lr}` for :math:`t < T_0`, then
    :math:`(\eta_{min} + (1 - \eta_{min})\,g(s)) \times \text{lr}` with :math:`g(s) = 1 - s` (``"linear"``) or
    :math:`1 - \sqrt{s}` (``"1-sqrt"``). ``cooldown_fraction=1`` with the linear shape is :class:`Linear`.

    Schaipp, Hägele, Taylor, Şimşekli & Bach, "The Surprising Agreement Between Convex Optimization Theory and
    Learning-Rate Scheduling for Large Model Training", 2025, arXiv:2501.18965 (linear cooldown); Hägele et al.,
    "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations", 2024, arXiv:2405.18392 (1-sqrt).

    .. warning:: Schaipp et al.'s released code reaches 0 on the last step (``1 - (k + 1)/C``); we keep the
       package-wide ``1 - t/T`` convention, so the last step uses ``1/C`` of the lr.

    Parameters
    ----------
    cooldown_fraction:
        Fraction of the (post-warm-up) run spent cooling down, in (0, 1] (Hägele et al. find ~20% enough).
    shape:
        ``"linear"`` or ``"1-sqrt"``.
    eta_min:
        Floor as a fraction of the peak lr, in [0, 1].
    warmup_steps, warmup_fraction:
        Optional linear warm-up (see :class:`Schedule`).
    """

    def __init__(
        self,
        *,
        cooldown_fraction: float = 0.2,
        shape: str = "linear",
        eta_min: float = 0.0,
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
    ) -> None:
        self.cooldown_fraction = cooldown_fraction
        self.shape = shape
        self.eta_min = eta_min
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        _float(self.cooldown_fraction, "cooldown_fraction", self._owner, Interval(0.0, 1.0, "right"))
        check_option(self.shape, "shape", self._owner, ("linear", "1-sqrt"))
        _check_eta_min(self.eta_min, self._owner)

    def cooldown_length(self, total_steps: int) -> int:
        """``C = ceil(cooldown_fraction * total_steps)``, at least 1."""
        return max(1, min(total_steps, int(math.ceil(float(self.cooldown_fraction) * total_steps - 1e-9))))

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(
            constant_cooldown,
            total_steps=total_steps,
            cooldown_steps=self.cooldown_length(total_steps),
            shape=self.shape,
            eta_min=float(self.eta_min),
        )


class OneCycle(Schedule):
    r"""The 1cycle policy, run by torch's ``OneCycleLR`` (lr up then down, momentum / beta1 the other way).

    The lr goes from ``lr/div_factor`` up to the optimizer's ``lr`` over the first ``pct_start`` of the steps,
    then down to ``lr/(div_factor*final_div_factor)``; momentum (SGD) or beta1 (Adam-type) goes from
    ``max_momentum`` down to ``base_momentum`` and back. Smith & Topin, "Super-Convergence: Very Fast Training
    of Neural Networks Using Large Learning Rates", 2019, arXiv:1708.07120.

    Torch built-in schedulers are registered, not rewritten: :meth:`make_scheduler` returns
    ``torch.optim.lr_scheduler.OneCycleLR`` with ``max_lr`` = each group's lr. :meth:`build` gives its lr
    multipliers in closed form (to plot and inspect; the tests check they agree at every step). The warm-up is
    the schedule's own first phase: ``warmup_steps`` / ``warmup_fraction`` must stay 0.

    .. warning:: With momentum cycling the optimizer's own momentum / beta1 is overwritten for the run. torch's
       ``OneCycleLR`` raises if stepped more than ``total_steps`` times (continued training needs a new one).

    Parameters
    ----------
    pct_start:
        Fraction of the steps spent increasing the lr, in (0, 1) (in (0, 0.5) with ``three_phase``).
    anneal_strategy:
        ``"cos"`` or ``"linear"``.
    div_factor:
        Initial lr = lr / div_factor (>= 1).
    final_div_factor:
        Final lr = initial lr / final_div_factor (>= 1).
    three_phase:
        Come back down to the initial lr symmetrically before the final annihilation phase (fastai's variant).
    cycle_momentum:
        ``True``, ``False`` or ``"auto"``: cycle when the optimizer has ``betas`` or a non-zero ``momentum``
        (so plain SGD without momentum is left alone, and Adagrad does not raise).
    base_momentum, max_momentum:
        Momentum / beta1 range, ``0 <= base_momentum <= max_momentum < 1``.
    warmup_steps, warmup_fraction:
        Must be 0 (see above); present so that every schedule takes the same parameters.
    """

    def __init__(
        self,
        *,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool | str = "auto",
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
    ) -> None:
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        self.cycle_momentum = cycle_momentum
        self.base_momentum = base_momentum
        self.max_momentum = max_momentum
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        owner = self._owner
        for name, zero in (("warmup_steps", "0"), ("warmup_fraction", "0.0")):
            value = getattr(self, name)
            if value != 0:
                expected = f"{zero} (OneCycle warms up itself over the first pct_start of the steps)"
                raise ValueError(invalid_param_message(name, owner, expected, value))
        three_phase = check_bool(self.three_phase, "three_phase", owner)
        _float(self.pct_start, "pct_start", owner, Interval(0.0, 0.5 if three_phase else 1.0, "neither"))
        check_option(self.anneal_strategy, "anneal_strategy", owner, ("cos", "linear"))
        _float(self.div_factor, "div_factor", owner, _AT_LEAST_ONE)
        _float(self.final_div_factor, "final_div_factor", owner, _AT_LEAST_ONE)
        check_option(self.cycle_momentum, "cycle_momentum", owner, (True, False, "auto"))
        high = _float(self.max_momentum, "max_momentum", owner, Interval(0.0, 1.0, "left"))
        _float(self.base_momentum, "base_momentum", owner, Interval(0.0, high, "both"))

    def _check_horizon(self, body_steps: int, steps_per_epoch: int) -> None:
        # torch's OneCycleLR divides by (pct_start * total_steps - 1): it must not be 0
        if float(float(self.pct_start) * body_steps) - 1 == 0:
            expected = f"a float with pct_start * total_steps != 1 for total_steps={body_steps}"
            raise ValueError(invalid_param_message("pct_start", self._owner, expected, self.pct_start))

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return partial(
            onecycle,
            total_steps=total_steps,
            pct_start=float(self.pct_start),
            anneal_strategy=self.anneal_strategy,
            div_factor=float(self.div_factor),
            final_div_factor=float(self.final_div_factor),
            three_phase=bool(self.three_phase),
        )

    def cycles_momentum_of(self, optimizer: Optimizer) -> bool:
        """Whether the scheduler will cycle ``optimizer``'s momentum / beta1 (resolves ``"auto"``)."""
        if self.cycle_momentum == "auto":
            defaults = optimizer.defaults
            return "betas" in defaults or bool(defaults.get("momentum", 0))
        return bool(self.cycle_momentum)

    def make_scheduler(
        self, optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, last_epoch: int = -1
    ) -> LRScheduler:
        """torch's ``OneCycleLR`` for this run, peaking at each param group's current lr."""
        _check_optimizer(optimizer, self._owner)
        self.build(total_steps, steps_per_epoch)  # validates
        defaults = optimizer.defaults
        if self.cycle_momentum is True and "betas" not in defaults and "momentum" not in defaults:
            expected = f"False or 'auto' for {type(optimizer).__name__} (the optimizer must support momentum or beta1)"
            raise ValueError(invalid_param_message("cycle_momentum", self._owner, expected, self.cycle_momentum))
        return OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=int(total_steps),
            pct_start=float(self.pct_start),
            anneal_strategy=self.anneal_strategy,  # type: ignore[arg-type]
            cycle_momentum=self.cycles_momentum_of(optimizer),
            base_momentum=float(self.base_momentum),
            max_momentum=float(self.max_momentum),
            div_factor=float(self.div_factor),
            final_div_factor=float(self.final_div_factor),
            three_phase=bool(self.three_phase),
            last_epoch=last_epoch,
        )


# ------------------------------------------------------------------------------------------------ registry

_SGDR_PAPER = "Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR 2017 (arXiv:1608.03983)"
_REFINE_PAPER = (
    "Defazio, Cutkosky, Mehta & Mishchenko, When, Why and How Much? Adaptive Learning Rate Scheduling by "
    "Refinement, 2023 (arXiv:2310.07831)"
)
_ETA_MIN_CHOICES: Dimension = Categorical((0.0, 0.001, 0.01, 0.1))
_WARMUP: Mapping[str, Dimension] = {"schedule__warmup_fraction": Float(0.0, 0.1)}


def _message(name: str, owner: str, expected: str, value: Any) -> str:
    return invalid_param_message(name, owner, expected, value)


def warmup_error_inputs(owner: str) -> tuple[ErrorInput, ...]:
    """The warm-up errors every schedule that supports warm-up must raise (``total_steps=100``)."""
    return (
        ErrorInput(
            {"warmup_steps": -1}, ValueError, _message("warmup_steps", owner, "an int in the range [0, inf)", -1)
        ),
        ErrorInput(
            {"warmup_steps": 100},
            ValueError,
            _message("warmup_steps", owner, "an int in the range [0, 99] for total_steps=100", 100),
        ),
        ErrorInput(
            {"warmup_fraction": 1.0},
            ValueError,
            _message("warmup_fraction", owner, "a float in the range [0.0, 1.0)", 1.0),
        ),
        ErrorInput(
            {"warmup_steps": 5, "warmup_fraction": 0.1},
            ValueError,
            _message("warmup_fraction", owner, "0.0 when warmup_steps is non-zero (give one or the other)", 0.1),
        ),
    )


def _eta_min_errors(owner: str) -> tuple[ErrorInput, ...]:
    return (
        ErrorInput({"eta_min": 1.5}, ValueError, _message("eta_min", owner, _FRACTION_OF_PEAK, 1.5)),
        ErrorInput({"eta_min": -0.1}, ValueError, _message("eta_min", owner, _FRACTION_OF_PEAK, -0.1)),
    )


def _sgdr_space() -> Mapping[str, Dimension]:
    return {
        "schedule__T_0": Int(1, 20, log=True),
        "schedule__T_mult": Categorical((1, 2)),
        "schedule__eta_min": _ETA_MIN_CHOICES,
    }


def _decay_space() -> Mapping[str, Dimension]:
    return {"schedule__eta_min": _ETA_MIN_CHOICES, **_WARMUP}


def _cosine_power_space() -> Mapping[str, Dimension]:
    return {"schedule__exponent_order": Float(1.0, 20.0, log=True), **_decay_space()}


def _cooldown_space() -> Mapping[str, Dimension]:
    return {
        "schedule__cooldown_fraction": Float(0.05, 0.5),
        "schedule__shape": Categorical(("linear", "1-sqrt")),
        **_WARMUP,
    }


def _onecycle_space() -> Mapping[str, Dimension]:
    return {
        "schedule__pct_start": Float(0.1, 0.45),
        "schedule__div_factor": Float(5.0, 100.0, log=True),
        "schedule__final_div_factor": Float(10.0, 1e5, log=True),
        "schedule__anneal_strategy": Categorical(("cos", "linear")),
    }


def _warmup_space() -> Mapping[str, Dimension]:
    return dict(_WARMUP)


register(
    ScheduleSpec(
        name="constant",
        factory=Constant,
        paper="(baseline) linear warm-up: Goyal et al., Accurate, Large Minibatch SGD, 2017 (arXiv:1706.02677)",
        summary="The optimizer's lr at every step, optionally after a linear warm-up.",
        search_space=_warmup_space,
        error_inputs=warmup_error_inputs("Constant"),
    )
)

register(
    ScheduleSpec(
        name="sgdr",
        factory=SGDR,
        paper=_SGDR_PAPER,
        url="https://arxiv.org/abs/1608.03983",
        summary="Cosine cycles with warm restarts every T_0, T_0*T_mult, ... epochs (fractional, per batch).",
        search_space=_sgdr_space,
        sample_params={"T_0": 2, "T_mult": 2, "eta_min": 0.01},
        error_inputs=(
            ErrorInput({"T_0": 0}, ValueError, _message("T_0", "SGDR", "an int in the range [1, inf)", 0)),
            ErrorInput({"T_0": 1.5}, ValueError, _message("T_0", "SGDR", "an int in the range [1, inf)", 1.5)),
            ErrorInput({"T_mult": 0.5}, ValueError, _message("T_mult", "SGDR", "a float in the range [1.0, inf)", 0.5)),
            ErrorInput(
                {"restart_decay": 0.0},
                ValueError,
                _message("restart_decay", "SGDR", "a float in the range (0.0, 1.0]", 0.0),
            ),
            *_eta_min_errors("SGDR"),
            *warmup_error_inputs("SGDR"),
        ),
    )
)

register(
    ScheduleSpec(
        name="cosine",
        factory=Cosine,
        paper=_SGDR_PAPER,
        url="https://arxiv.org/abs/1608.03983",
        summary="One half-cosine from the peak to eta_min over the run.",
        search_space=_decay_space,
        sample_params={"eta_min": 0.05},
        error_inputs=(*_eta_min_errors("Cosine"), *warmup_error_inputs("Cosine")),
    )
)

register(
    ScheduleSpec(
        name="linear",
        factory=Linear,
        paper=_REFINE_PAPER,
        url="https://arxiv.org/abs/2310.07831",
        summary="Linear decay 1 - t/T: the worst-case optimal last-iterate schedule; matches or beats cosine.",
        search_space=_decay_space,
        sample_params={"eta_min": 0.0},
        error_inputs=(*_eta_min_errors("Linear"), *warmup_error_inputs("Linear")),
    )
)

register(
    ScheduleSpec(
        name="cosine_power",
        factory=CosinePower,
        paper="Hundt, Jain & Hager, sharpDARTS: Faster and More Accurate Differentiable Architecture Search, 2019 "
        "(arXiv:1903.09900)",
        url="https://arxiv.org/abs/1903.09900",
        summary="Cosine annealing bent by r^(c+1): faster early decay, slower late decay than cosine.",
        search_space=_cosine_power_space,
        sample_params={"exponent_order": 10.0, "eta_min": 0.001},
        error_inputs=(
            ErrorInput(
                {"exponent_order": 0.0},
                ValueError,
                _message("exponent_order", "CosinePower", "a float in the range (0.0, inf)", 0.0),
            ),
            *_eta_min_errors("CosinePower"),
            *warmup_error_inputs("CosinePower"),
        ),
    )
)

register(
    ScheduleSpec(
        name="constant_cooldown",
        factory=ConstantCooldown,
        paper="Schaipp, Hägele, Taylor, Şimşekli & Bach, The Surprising Agreement Between Convex Optimization "
        "Theory and Learning-Rate Scheduling for Large Model Training, 2025 (arXiv:2501.18965); Hägele et al., "
        "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations, 2024 (arXiv:2405.18392)",
        url="https://arxiv.org/abs/2501.18965",
        summary="Constant lr, then a linear (or 1-sqrt) cooldown over the last cooldown_fraction of the run.",
        search_space=_cooldown_space,
        sample_params={"cooldown_fraction": 0.25, "shape": "1-sqrt"},
        error_inputs=(
            ErrorInput(
                {"cooldown_fraction": 0.0},
                ValueError,
                _message("cooldown_fraction", "ConstantCooldown", "a float in the range (0.0, 1.0]", 0.0),
            ),
            ErrorInput(
                {"shape": "cosine"},
                ValueError,
                _message("shape", "ConstantCooldown", "one of {'linear', '1-sqrt'}", "cosine"),
            ),
            *_eta_min_errors("ConstantCooldown"),
            *warmup_error_inputs("ConstantCooldown"),
        ),
    )
)

register(
    ScheduleSpec(
        name="onecycle",
        factory=OneCycle,
        paper="Smith & Topin, Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates, "
        "2019 (arXiv:1708.07120); torch.optim.lr_scheduler.OneCycleLR",
        url="https://arxiv.org/abs/1708.07120",
        summary="lr up to the peak then far below it, momentum the other way (torch's OneCycleLR).",
        supports_warmup=False,
        cycles_momentum=True,
        search_space=_onecycle_space,
        sample_params={"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
        error_inputs=(
            ErrorInput(
                {"warmup_steps": 5},
                ValueError,
                _message(
                    "warmup_steps", "OneCycle", "0 (OneCycle warms up itself over the first pct_start of the steps)", 5
                ),
            ),
            ErrorInput(
                {"warmup_fraction": 0.1},
                ValueError,
                _message(
                    "warmup_fraction",
                    "OneCycle",
                    "0.0 (OneCycle warms up itself over the first pct_start of the steps)",
                    0.1,
                ),
            ),
            ErrorInput(
                {"pct_start": 1.0},
                ValueError,
                _message("pct_start", "OneCycle", "a float in the range (0.0, 1.0)", 1.0),
            ),
            ErrorInput(
                {"pct_start": 0.5, "three_phase": True},
                ValueError,
                _message("pct_start", "OneCycle", "a float in the range (0.0, 0.5)", 0.5),
            ),
            ErrorInput(
                {"pct_start": 0.01},
                ValueError,
                _message(
                    "pct_start", "OneCycle", "a float with pct_start * total_steps != 1 for total_steps=100", 0.01
                ),
            ),
            ErrorInput(
                {"div_factor": 0.5},
                ValueError,
                _message("div_factor", "OneCycle", "a float in the range [1.0, inf)", 0.5),
            ),
            ErrorInput(
                {"anneal_strategy": "cosine"},
                ValueError,
                _message("anneal_strategy", "OneCycle", "one of {'cos', 'linear'}", "cosine"),
            ),
            ErrorInput(
                {"cycle_momentum": "yes"},
                ValueError,
                _message("cycle_momentum", "OneCycle", "one of {True, False, 'auto'}", "yes"),
            ),
            ErrorInput(
                {"base_momentum": 0.99},
                ValueError,
                _message("base_momentum", "OneCycle", "a float in the range [0.0, 0.95]", 0.99),
            ),
        ),
    )
)
