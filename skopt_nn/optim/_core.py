"""CoRe: Adam-like moments with RPROP-style per-weight step sizes (Eckhoff & Reiher, 2023/2024)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from skopt_nn._space import Dimension, Float, Tuple
from skopt_nn._validation import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT_OPEN_RIGHT,
    check_float,
    check_option,
    check_pair,
    invalid_param_message,
)
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

__all__ = ["CoRe", "core"]

_PAPER = (
    "Eckhoff & Reiher, CoRe optimizer: an all-in-one solution for machine learning, Mach. Learn.: Sci. Technol. "
    "5, 015018, 2024 (arXiv:2307.15663); first in Lifelong Machine Learning Potentials, J. Chem. Theory "
    "Comput. 19, 3509, 2023"
)
_URL = "https://arxiv.org/abs/2307.15663"


def _check_ordered_pair(
    value: Any, name: str, owner: str, expected: str, low_max: float, high_min: float
) -> tuple[float, float]:
    """A pair ``(a, b)`` of positive reals with ``a <= low_max`` and ``b >= high_min`` and ``a <= b``."""
    try:
        a, b = check_pair(value, name, owner, POSITIVE)
    except ValueError:
        a, b = math.nan, math.nan
    if not (a <= low_max and b >= high_min and a <= b):
        raise ValueError(invalid_param_message(name, owner, expected, value))
    return a, b


class CoRe(Optimizer):
    r"""Implements the Continual Resilient (CoRe) optimizer: Adam's moments with RPROP's step-size adaptation.

    .. math::
        \begin{aligned}
            &\textbf{input}: \gamma \text{ (lr)}, \beta_1^a, \beta_1^b \text{ (betas)},
                \beta_1^c \text{ (beta1\_decay)}, \beta_2 \text{ (beta2)}, \epsilon \text{ (eps)},
                \eta_-, \eta_+ \text{ (etas)}, \\
            &\hspace{13mm} \rho_{\min}, \rho_{\max} \text{ (step\_size\_bounds)}, d \text{ (weight\_decay)},
                \theta_0 \text{ (params)} \\
            &\textbf{initialize}: g_0 \leftarrow 0, \; h_0 \leftarrow 0, \; r_0 \leftarrow 1
                \quad (s_t = \gamma r_t \text{ is the per-weight step size}) \\
            &\textbf{for}\: t = 1, 2, \ldots \\
            &\quad G_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \\
            &\quad \beta_{1,t} \leftarrow \beta_1^b + (\beta_1^a - \beta_1^b)
                \exp\!\big(-[(t - 1)/\beta_1^c]^2\big) \\
            &\quad g_t \leftarrow \beta_{1,t}\, g_{t-1} + (1 - \beta_{1,t})\, G_t \\
            &\quad h_t \leftarrow \beta_2 h_{t-1} + (1 - \beta_2)\, G_t^2 \\
            &\quad r_t \leftarrow \begin{cases}
                \min(\eta_+ r_{t-1}, \rho_{\max}) & g_{t-1} g_t > 0 \\
                \max(\eta_- r_{t-1}, \rho_{\min}) & g_{t-1} g_t < 0 \\
                \operatorname{clip}(r_{t-1}, \rho_{\min}, \rho_{\max}) & \text{otherwise}
            \end{cases} \\
            &\quad u_t \leftarrow \frac{g_t / (1 - \beta_{1,t}^t)}{\sqrt{h_t / (1 - \beta_2^t)} + \epsilon}
                \quad \big(u_t \leftarrow \operatorname{sgn}(g_t) \text{ if } \beta_2 \text{ is None}\big) \\
            &\quad \theta_t \leftarrow \big(1 - d\, \lvert u_t\rvert\, \gamma r_t\big)\, \theta_{t-1}
                - u_t\, \gamma r_t
        \end{aligned}

    The first-moment decay :math:`\beta_{1,t}` moves from :math:`\beta_1^a` to :math:`\beta_1^b` on the time
    scale :math:`\beta_1^c`; each weight's step size grows by :math:`\eta_+` while consecutive first moments agree
    in sign and shrinks by :math:`\eta_-` when they disagree (RPROP); the weight decay is proportional to the
    weight's own update, so weights that are not updated are not decayed.

    Proposed by Marco Eckhoff and Markus Reiher in `Lifelong Machine Learning Potentials`_ (J. Chem. Theory
    Comput. 19, 2023) and studied in `CoRe optimizer: an all-in-one solution for machine learning`_
    (Mach. Learn.: Sci. Technol. 5, 2024).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: initial step size :math:`s_0 = \gamma`, and the unit of the step-size bounds (default: 1e-3, the
            authors' value).
        betas: :math:`(\beta_1^a, \beta_1^b)`, the initial and final first-moment decay (default:
            (0.7375, 0.8125)).
        beta1_decay: :math:`\beta_1^c`, the number of steps over which :math:`\beta_{1,t}` moves from
            :math:`\beta_1^a` to :math:`\beta_1^b` (default: 250).
        beta2: second-moment decay :math:`\beta_2`; ``None`` replaces :math:`u_t` by :math:`\operatorname{sgn}(g_t)`
            (the authors' "negative :math:`\beta_2`" RPROP mode) (default: 0.99).
        eps: :math:`\epsilon` added to the root of the second moment (default: 1e-8).
        etas: :math:`(\eta_-, \eta_+)` with :math:`0 < \eta_- \le 1 \le \eta_+` (default: (0.7375, 1.2)).
        step_size_bounds: :math:`(\rho_{\min}, \rho_{\max})`, the bounds of the per-weight step size **in units of
            lr**: :math:`s \in [\gamma\rho_{\min}, \gamma\rho_{\max}]` (default: (1e-3, 10), i.e. the authors'
            :math:`s_{\min} = 10^{-6}`, :math:`s_{\max} = 10^{-2}` at their ``lr=1e-3``).
        weight_decay: :math:`d` (default: 0.1, the authors' value).
        foreach: use the multi-tensor (``torch._foreach_*``) implementation; ``None`` means yes (default).

    .. warning::
        **Step sizes relative to lr.** In the paper and the authors' code (``core_optimizer``, ReiherGroup/CoRe)
        ``lr`` is only the initial step size :math:`s_0` and the bounds :math:`s_{\min}, s_{\max}` are absolute.
        Then a learning-rate schedule (which rescales ``group["lr"]``) has no effect after the first step, and a
        group with ``lr=0`` still moves by :math:`s_{\min}` per step. Here the state holds the dimensionless
        factor :math:`r_t = s_t / \gamma` and the bounds are given in units of ``lr``. For a constant ``lr`` this
        is the authors' algorithm with :math:`s_{\min} = \gamma\rho_{\min}`, :math:`s_{\max} = \gamma\rho_{\max}`
        (e.g. their mini-batch recommendation :math:`s_{\max} = 10^{-3}` at ``lr=1e-3`` is
        ``step_size_bounds=(1e-3, 1.0)``, their batch-learning :math:`s_{\max} = 1` is ``(1e-3, 1000.0)``); a
        schedule scales every step size and both bounds; ``lr=0`` freezes the group.

    .. warning::
        Readings taken where the paper leaves room (checked against the authors' ``core_optimizer.py``):

        * :math:`\beta_{1,t}` depends on the update count :math:`t` of each weight (a Gaussian in
          :math:`t - 1`), not on the gradient; the bias correction uses the current :math:`\beta_{1,t}` raised to
          :math:`t`, as both the paper's pseudo-code and the code do.
        * The sign test compares consecutive **first moments** :math:`g_{t-1} g_t` (not raw gradients); at
          :math:`t = 1`, :math:`g_0 = 0` so the step size is unchanged. The clip to the bounds is applied at every
          step (the code does so; the pseudo-code leaves :math:`s` unclipped when the sign test is 0, which only
          matters when the initial step size lies outside the bounds).
        * The stability-plasticity balance (``score_history``, ``frozen``: freezing the fraction of weights with
          the highest importance score after a history of steps, meant for lifelong learning) is **not
          implemented**; it is off by default in the authors' code (``score_history=0``).
        * Per-tensor lists of ``weight_decay`` (the authors' code indexes them by position among the parameters
          that have a gradient) are not supported; use param groups.

    .. note::
        **Precision.** All state (first and second moments, step-size factors) is kept in the parameter's dtype.

    Example:
        >>> import torch
        >>> from skopt_nn.optim import get
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = get("core").optimizer(model.parameters(), lr=1e-3)
        >>> loss = model(torch.randn(8, 3)).pow(2).mean()
        >>> loss.backward()
        >>> optimizer.step()
        >>> sorted(optimizer.state[model.weight])
        ['exp_avg', 'exp_avg_sq', 'step', 'step_size']

    .. _Lifelong Machine Learning Potentials:
        https://doi.org/10.1021/acs.jctc.3c00279
    .. _CoRe optimizer\: an all-in-one solution for machine learning:
        https://arxiv.org/abs/2307.15663
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.7375, 0.8125),
        beta1_decay: float = 250.0,
        beta2: float | None = 0.99,
        eps: float = 1e-8,
        etas: tuple[float, float] = (0.7375, 1.2),
        step_size_bounds: tuple[float, float] = (1e-3, 10.0),
        weight_decay: float = 0.1,
        *,
        foreach: bool | None = None,
    ) -> None:
        name = "CoRe"
        defaults = {
            "lr": check_float(lr, "lr", name, NON_NEGATIVE),
            "betas": check_pair(betas, "betas", name, UNIT_OPEN_RIGHT),
            "beta1_decay": check_float(beta1_decay, "beta1_decay", name, POSITIVE),
            "beta2": check_float(beta2, "beta2", name, UNIT_OPEN_RIGHT, allow_none=True),
            "eps": check_float(eps, "eps", name, NON_NEGATIVE),
            "etas": _check_ordered_pair(
                etas, "etas", name, "a pair (eta_minus, eta_plus) with 0 < eta_minus <= 1 <= eta_plus", 1.0, 1.0
            ),
            "step_size_bounds": _check_ordered_pair(
                step_size_bounds,
                "step_size_bounds",
                name,
                "a pair (low, high) of floats with 0 < low <= high",
                math.inf,
                0.0,
            ),
            "weight_decay": check_float(weight_decay, "weight_decay", name, NON_NEGATIVE),
            "foreach": check_option(foreach, "foreach", name, (None, True, False)),
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        exp_avgs: list[Tensor],
        exp_avg_sqs: list[Tensor],
        step_sizes: list[Tensor],
        state_steps: list[int],
    ) -> None:
        second_moment = group["beta2"] is not None
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("CoRe does not support sparse gradients")
            state = self.state[p]
            if len(state) == 0:
                # number of updates applied to this parameter (a Python int: no device sync to read it)
                state["step"] = 0
                # g: exponential moving average of the gradient with the time-dependent decay beta_{1,t}
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                # r: per-weight step size in units of lr (s = lr * r), starts at 1 (s_0 = lr)
                state["step_size"] = torch.ones_like(p, memory_format=torch.preserve_format)
            if second_moment and "exp_avg_sq" not in state:
                # h: exponential moving average of the squared gradient (absent in the sign mode, beta2=None)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            if second_moment:
                exp_avg_sqs.append(state["exp_avg_sq"])
            step_sizes.append(state["step_size"])
            state_steps.append(state["step"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimisation step.

        Args:
            closure: a closure that re-evaluates the model and returns the loss (optional).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            exp_avgs: list[Tensor] = []
            exp_avg_sqs: list[Tensor] = []
            step_sizes: list[Tensor] = []
            state_steps: list[int] = []
            self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, step_sizes, state_steps)
            if not params:
                continue
            beta1_initial, beta1_final = group["betas"]
            eta_minus, eta_plus = group["etas"]
            step_size_min, step_size_max = group["step_size_bounds"]
            core(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                step_sizes,
                state_steps,
                foreach=group["foreach"],
                lr=group["lr"],
                beta1_initial=beta1_initial,
                beta1_final=beta1_final,
                beta1_decay=group["beta1_decay"],
                beta2=group["beta2"],
                eps=group["eps"],
                eta_minus=eta_minus,
                eta_plus=eta_plus,
                step_size_min=step_size_min,
                step_size_max=step_size_max,
                weight_decay=group["weight_decay"],
            )
        return loss


def _schedule(
    steps: list[int],
    lr: float,
    beta1_initial: float,
    beta1_final: float,
    beta1_decay: float,
    beta2: float | None,
    eps: float,
) -> tuple[list[float], list[float], list[float]]:
    """Per tensor: ``beta_{1,t}``, ``lr sqrt(1 - beta2^t) / (1 - beta_{1,t}^t)`` (``lr`` in the sign mode) and
    ``eps sqrt(1 - beta2^t)``, so that ``lr u_t = step_scale * g_t / (sqrt(h_t) + eps_t)``."""
    cache: dict[int, tuple[float, float, float]] = {}
    beta1s: list[float] = []
    step_scales: list[float] = []
    eps_ts: list[float] = []
    for t in steps:
        if t not in cache:
            beta1 = beta1_final + (beta1_initial - beta1_final) * math.exp(-(((t - 1) / beta1_decay) ** 2))
            if beta2 is None:
                cache[t] = (beta1, lr, eps)
            else:
                bc2_sqrt = math.sqrt(1.0 - beta2**t)
                cache[t] = (beta1, lr * bc2_sqrt / (1.0 - beta1**t), eps * bc2_sqrt)
        b, s, c = cache[t]
        beta1s.append(b)
        step_scales.append(s)
        eps_ts.append(c)
    return beta1s, step_scales, eps_ts


def _eta_coefficients(eta_minus: float, eta_plus: float) -> tuple[float, float]:
    """``(b, c)`` with ``1 + b s + c s^2`` equal to ``eta_plus``, ``eta_minus``, 1 for ``s = sgn = 1, -1, 0``."""
    return 0.5 * (eta_plus - eta_minus), 0.5 * (eta_plus + eta_minus) - 1.0


def core(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    step_sizes: list[Tensor],
    state_steps: list[int],
    *,
    foreach: bool | None = None,
    lr: float,
    beta1_initial: float,
    beta1_final: float,
    beta1_decay: float,
    beta2: float | None,
    eps: float,
    eta_minus: float,
    eta_plus: float,
    step_size_min: float,
    step_size_max: float,
    weight_decay: float,
) -> None:
    """Functional CoRe: updates ``params`` and the state lists in place; see :class:`CoRe`.

    ``state_steps[i]`` is the step number :math:`t` of ``params[i]`` *including* this step; ``step_sizes`` hold
    the step sizes in units of ``lr``; ``exp_avg_sqs`` is empty when ``beta2`` is ``None``. ``grads`` are not
    modified. ``foreach=None`` selects the multi-tensor implementation.
    """
    func = _single_tensor_core if foreach is False else _multi_tensor_core
    func(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        step_sizes,
        state_steps,
        lr=lr,
        beta1_initial=beta1_initial,
        beta1_final=beta1_final,
        beta1_decay=beta1_decay,
        beta2=beta2,
        eps=eps,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        step_size_min=step_size_min,
        step_size_max=step_size_max,
        weight_decay=weight_decay,
    )


def _single_tensor_core(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    step_sizes: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1_initial: float,
    beta1_final: float,
    beta1_decay: float,
    beta2: float | None,
    eps: float,
    eta_minus: float,
    eta_plus: float,
    step_size_min: float,
    step_size_max: float,
    weight_decay: float,
) -> None:
    beta1s, step_scales, eps_ts = _schedule(state_steps, lr, beta1_initial, beta1_final, beta1_decay, beta2, eps)
    b, c = _eta_coefficients(eta_minus, eta_plus)
    for i, param in enumerate(params):
        grad, exp_avg, step_size = grads[i], exp_avgs[i], step_sizes[i]
        # g_t = beta1 g_{t-1} + (1 - beta1) G_t
        new_avg = grad.lerp(exp_avg, beta1s[i])
        # step-size factor eta_+ / eta_- / 1 from sgn(g_{t-1} g_t), built in the old first-moment buffer
        agreement = exp_avg.mul_(new_avg).sign_()
        factor = agreement.mul(c).add_(b).mul_(agreement).add_(1.0)
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        exp_avg.copy_(new_avg)
        if beta2 is None:
            update = exp_avg.sign()
        else:
            exp_avg_sq = exp_avg_sqs[i]
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            denom = exp_avg_sq.sqrt().add_(eps_ts[i])
            update = exp_avg.div(denom)
        # s_t u_t (lr and the first-moment bias correction folded into one scalar)
        update.mul_(step_size).mul_(step_scales[i])
        if weight_decay != 0.0:
            # theta <- (1 - d |s u|) theta
            param.addcmul_(update.abs(), param, value=-weight_decay)
        param.sub_(update)


def _multi_tensor_core(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    step_sizes: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1_initial: float,
    beta1_final: float,
    beta1_decay: float,
    beta2: float | None,
    eps: float,
    eta_minus: float,
    eta_plus: float,
    step_size_min: float,
    step_size_max: float,
    weight_decay: float,
) -> None:
    if not params:
        return
    lists: list[list[Tensor]] = [params, grads, exp_avgs, step_sizes]
    if beta2 is not None:
        lists.append(exp_avg_sqs)
    grouped = cast(
        "dict[Any, tuple[list[list[Tensor]], list[int]]]",
        Optimizer._group_tensors_by_device_and_dtype(lists, with_indices=True),  # type: ignore[arg-type]
    )
    b, c = _eta_coefficients(eta_minus, eta_plus)
    for tensors, indices in grouped.values():
        device_params, device_grads, device_exp_avgs, device_step_sizes = tensors[:4]
        beta1s, step_scales, eps_ts = _schedule(
            [state_steps[i] for i in indices], lr, beta1_initial, beta1_final, beta1_decay, beta2, eps
        )
        # g_t = beta1 g_{t-1} + (1 - beta1) G_t
        new_avgs = torch._foreach_lerp(device_grads, device_exp_avgs, beta1s)
        # step-size factor eta_+ / eta_- / 1 from sgn(g_{t-1} g_t), built in the old first-moment buffers
        torch._foreach_mul_(device_exp_avgs, new_avgs)
        torch._foreach_sign_(device_exp_avgs)
        # s_t = s_{t-1} (1 + q), q = sgn (b + c sgn): one addcmul instead of forming 1 + q and multiplying
        factors = torch._foreach_mul(device_exp_avgs, c)
        torch._foreach_add_(factors, b)
        torch._foreach_mul_(factors, device_exp_avgs)
        torch._foreach_addcmul_(device_step_sizes, device_step_sizes, factors)
        torch._foreach_clamp_min_(device_step_sizes, step_size_min)
        torch._foreach_clamp_max_(device_step_sizes, step_size_max)
        torch._foreach_copy_(device_exp_avgs, new_avgs)
        if beta2 is None:
            updates = torch._foreach_sign(device_exp_avgs)
        else:
            device_exp_avg_sqs = tensors[4]
            torch._foreach_mul_(device_exp_avg_sqs, beta2)
            torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, value=1.0 - beta2)
            denom = torch._foreach_sqrt(device_exp_avg_sqs)
            torch._foreach_add_(denom, eps_ts)
            updates = torch._foreach_div(device_exp_avgs, denom)
        # s_t u_t (lr and the first-moment bias correction folded into one scalar per tensor)
        if weight_decay != 0.0:
            torch._foreach_mul_(updates, device_step_sizes)
            torch._foreach_mul_(updates, step_scales)
            # theta <- (1 - d |s u|) theta
            torch._foreach_addcmul_(device_params, torch._foreach_abs(updates), device_params, value=-weight_decay)
            torch._foreach_sub_(device_params, updates)
        else:
            torch._foreach_addcmul_(device_params, updates, device_step_sizes, [-x for x in step_scales])


# --------------------------------------------------------------------------------------------------- registry


def _search_space() -> Mapping[str, Dimension]:
    return {
        "optimizer__lr": Float(1e-4, 1e-1, log=True),
        # (rho_min, rho_max): the paper's one hyperparameter to adapt is s_max (1e-3 mini-batch ... 1 batch)
        "optimizer__step_size_bounds": Tuple((Float(1e-4, 1e-2, log=True), Float(1.0, 1e3, log=True))),
        "optimizer__weight_decay": Float(1e-3, 1.0, log=True),
    }


_ERRORS: tuple[ErrorInput, ...] = (
    ErrorInput(
        {"lr": -1.0},
        ValueError,
        "The 'lr' parameter of CoRe must be a float in the range [0.0, inf). Got -1.0 instead.",
    ),
    ErrorInput(
        {"betas": (0.7, 1.0)},
        ValueError,
        "The 'betas' parameter of CoRe must be a pair of floats in the range [0.0, 1.0). Got (0.7, 1.0) instead.",
    ),
    ErrorInput(
        {"beta1_decay": 0.0},
        ValueError,
        "The 'beta1_decay' parameter of CoRe must be a float in the range (0.0, inf). Got 0.0 instead.",
    ),
    ErrorInput(
        {"beta2": 1.0},
        ValueError,
        "The 'beta2' parameter of CoRe must be a float in the range [0.0, 1.0) or None. Got 1.0 instead.",
    ),
    ErrorInput(
        {"eps": -1e-8},
        ValueError,
        "The 'eps' parameter of CoRe must be a float in the range [0.0, inf). Got -1e-08 instead.",
    ),
    ErrorInput(
        {"etas": (1.2, 0.5)},
        ValueError,
        "The 'etas' parameter of CoRe must be a pair (eta_minus, eta_plus) with 0 < eta_minus <= 1 <= eta_plus. "
        "Got (1.2, 0.5) instead.",
    ),
    ErrorInput(
        {"step_size_bounds": (10.0, 1e-3)},
        ValueError,
        "The 'step_size_bounds' parameter of CoRe must be a pair (low, high) of floats with 0 < low <= high. "
        "Got (10.0, 0.001) instead.",
    ),
    ErrorInput(
        {"weight_decay": -0.1},
        ValueError,
        "The 'weight_decay' parameter of CoRe must be a float in the range [0.0, inf). Got -0.1 instead.",
    ),
    ErrorInput(
        {"foreach": 1},
        ValueError,
        "The 'foreach' parameter of CoRe must be one of {None, True, False}. Got 1 instead.",
    ),
)


register(
    OptimizerSpec(
        name="core",
        optimizer=CoRe,
        paper=_PAPER,
        url=_URL,
        family="adam-like",
        summary=(
            "Adam-like moments (first-moment decay that grows over the first hundreds of steps) combined with "
            "RPROP's per-weight step sizes, which grow while the first moment keeps its sign and shrink when it "
            "flips, and a weight decay proportional to each weight's update. Reported robust with its defaults "
            "across mini-batch and batch learning; widen step_size_bounds' upper end for full-batch training."
        ),
        needs_closure=False,
        needs_create_graph=False,
        needs_module=False,
        lr_free=False,
        supports_foreach=True,
        wraps_optimizer=False,
        stochastic=False,
        supports_param_groups=True,
        search_space=_search_space,
        sample_kwargs={"lr": 1e-2, "weight_decay": 0.1},
        error_inputs=_ERRORS,
        # measured (float64) with the authors' defaults and no weight decay (the minimisers are not at 0):
        # quadratic within 1e-8 from step 395 on; Rosenbrock within 1e-6 from step 3281 on (3e-8 at step 20000)
        quadratic=ConvergenceCase({"lr": 1e-3, "weight_decay": 0.0}, steps=700, tol=1e-8),
        rosenbrock=ConvergenceCase({"lr": 1e-3, "weight_decay": 0.0}, steps=6000, tol=1e-6),
    )
)
