"""SANIA (Abdukhakimov, Xiang, Kamzolov, Gower & Takáč, 2023): preconditioned Polyak steps, no learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from skopt_nn._space import Categorical, Dimension, OneMinusLog
from skopt_nn._validation import Interval, check_bool, check_float, check_option
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

__all__ = ["SANIA", "sania_direction", "sania_step_size"]

_PRECONDITIONERS = ("adagrad", "adam")
_STEP_RULES = ("sania", "polyak")


class SANIA(Optimizer):
    r"""SANIA: a Polyak step size on a diagonally preconditioned gradient (AdaGrad-SQR / Adam-SQR), lr-free.

    .. math::

        \begin{aligned}
            &\textbf{input}: f \text{ (the closure, } f \ge 0 \text{ with } f^* = 0\text{)},
                \; \gamma \text{ (lr, a multiplier, 1)}, \; \beta_2 \text{ (beta2)}, \; \epsilon \text{ (eps)} \\
            &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
            &\quad f_t \leftarrow \max(f(\theta_{t-1}), 0), \quad g_t \leftarrow \nabla f(\theta_{t-1}) \\
            &\quad v_t \leftarrow v_{t-1} + g_t^2 \;\; \text{(adagrad)} \quad \textbf{or} \quad
                v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \; \hat v_t = v_t / (1 - \beta_2^t)
                \;\; \text{(adam; } \hat v_t = v_t \text{ for adagrad)} \\
            &\quad B_t \leftarrow \mathrm{diag}(\hat v_t) + \epsilon \;\; \text{(SQR, the default)} \quad
                \textbf{or} \quad B_t \leftarrow \mathrm{diag}(\sqrt{\hat v_t}) + \epsilon \;\; \text{(sqrt=True)} \\
            &\quad G_t \leftarrow \lVert g_t \rVert^2_{B_t^{-1}} = \textstyle\sum_i g_{t,i}^2 / B_{t,i}
                \quad \text{(over every parameter of every group)} \\
            &\quad \lambda_t \leftarrow \begin{cases}
                1 - \sqrt{1 - 2 f_t / G_t} & \text{if } 2 f_t \le G_t \\ 1 & \text{otherwise}
                \end{cases} \;\; \text{(step\_rule="sania")} \quad \textbf{or} \quad
                \lambda_t \leftarrow f_t / G_t \;\; \text{(step\_rule="polyak", the default)} \\
            &\quad \theta_t \leftarrow \theta_{t-1} - \gamma\, \lambda_t\, B_t^{-1} g_t \\
        \end{aligned}

    Abdukhakimov, Xiang, Kamzolov, Gower & Takáč, *SANIA: Polyak-type Optimization Framework Leads to Scale
    Invariant Stochastic Algorithms*, 2023, https://arxiv.org/abs/2312.17369. The framework takes the step
    :math:`\theta_t = \theta_{t-1} - \lambda_t B_t^{-1} g_t` that is closest to :math:`\theta_{t-1}` in the
    :math:`B_t` norm among the points where a model of :math:`f` reaches :math:`f^* = 0`. With the quadratic model
    :math:`f_t + \langle g_t, d\rangle + \frac12 \lVert d\rVert_{B_t}^2` this gives the first rule (the root
    :math:`\lambda_t \le 1`, or the model's minimiser :math:`\lambda_t = 1` when there is no root); with the linear
    model :math:`f_t + \langle g_t, d\rangle` it gives the preconditioned Polyak step :math:`f_t / G_t`.
    Dropping the square root of AdaGrad/Adam (the "SQR" preconditioners) is what makes the method invariant to a
    diagonal rescaling of the parameters.

    Args:
        params: iterable of parameters or of dicts defining parameter groups.
        lr: :math:`\gamma`, a multiplier of the Polyak step (default: 1, the method's value; it is not tuned).
        beta2: :math:`\beta_2` of the Adam accumulator (default: 0.999); unused with ``preconditioner="adagrad"``.
        eps: :math:`\epsilon`, added to the diagonal of :math:`B_t` (default: 1e-8).
        preconditioner: ``"adagrad"`` (sum of squared gradients, the default) or ``"adam"`` (bias-corrected
            exponential average of squared gradients). The Hutchinson (Hessian diagonal) preconditioner of the
            paper is not implemented.
        sqrt: take the square root of the accumulator (plain AdaGrad/Adam scaling) instead of the scale-invariant
            SQR form (default: ``False``).
        step_rule: ``"polyak"`` (default, :math:`f/G`) or ``"sania"`` (the quadratic-model step of the
            authors' code).
        foreach: use the multi-tensor (``torch._foreach_*``) implementation; ``None`` (default) means yes.

    ``step`` needs a closure that zeroes the gradients, evaluates the loss, calls ``backward`` and returns the
    loss (one evaluation per step). The loss must be non-negative with infimum 0 (cross-entropy, squared error);
    a negative loss is treated as 0 (no step under ``"polyak"``).

    .. warning::
        Readings we took (SEEDS.md marks the rule [verify]). We could not read the paper's full text here; we
        checked the authors' code, github.com/fxrshed/SANIA (``SANIA/sania_adagrad_sqr.py``,
        ``sania_adam_sqr.py`` and the NumPy versions in ``experiments/methods.py``):

        * The authors' code uses the quadratic-model root :math:`1 - \sqrt{1 - 2f/G}` (1 when :math:`2f > G`);
          SEEDS.md states the plain preconditioned Polyak step :math:`f/G`. We default to :math:`f/G`, which is
          dimensionally consistent with the SQR preconditioners (:math:`G` is then scale-free, so
          :math:`1 - \sqrt{1 - 2f/G}` depends on the scale of :math:`f`), and measured: on the conformance
          Rosenbrock problem the default (AdaGrad-SQR) reaches 2.6e-7 from (1, 1) in 1000 steps with ``"polyak"``
          but stays at 2.2 after 5000 with ``"sania"`` (Adam-SQR: 1.2e-5 vs 0.4 after 1000). ``step_rule="sania"``
          reproduces the authors' rule.
        * :math:`\epsilon` is added to :math:`B_t` (to :math:`v_t`, or to :math:`\sqrt{v_t}` with ``sqrt=True``),
          as in the authors' NumPy experiments; their PyTorch classes instead floor the accumulator,
          :math:`B_t = \max(v_t, 0.1)`.
        * The Adam preconditioner has no first moment: the direction is :math:`B_t^{-1} g_t`, as in the authors'
          code.
        * :math:`G_t` is one sum over all parameter groups (the paper's single vector of weights); the authors'
          code computes a separate Polyak step per group. Each group's ``lr`` multiplies its step, so ``lr=0``
          freezes a group.
        * :math:`f_t` is clamped at 0 (the authors' code would step uphill on a negative loss).
        * ``lr`` multiplies :math:`\lambda_t` as in the authors' ``SANIA_AdamSQR`` (their ``SANIA_AdagradSQR``
          ignores it).

    Precision:
        The accumulator :math:`v` follows the parameter's dtype; :math:`G_t` and :math:`\lambda_t` are computed in
        float64 (Python floats) from per-tensor sums taken in float32 (float64 for float64 parameters).

    Example:
        >>> import torch
        >>> from skopt_nn.optim._sania import SANIA
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = SANIA(model.parameters(), preconditioner="adagrad")
        >>> def closure():
        ...     optimizer.zero_grad()
        ...     loss = (model(torch.ones(4, 3)) - 1.0).pow(2).mean()
        ...     loss.backward()
        ...     return loss
        >>> for _ in range(20):
        ...     loss = optimizer.step(closure)
        >>> bool(loss < 1.0)
        True
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        preconditioner: str = "adagrad",
        sqrt: bool = False,
        step_rule: str = "polyak",
        foreach: bool | None = None,
    ) -> None:
        defaults = {
            "lr": check_float(lr, "lr", "SANIA", Interval(0.0, None, "left")),
            "beta2": check_float(beta2, "beta2", "SANIA", Interval(0.0, 1.0, "left")),
            "eps": check_float(eps, "eps", "SANIA", Interval(0.0, None, "neither")),
            "preconditioner": check_option(preconditioner, "preconditioner", "SANIA", _PRECONDITIONERS),
            "sqrt": check_bool(sqrt, "sqrt", "SANIA"),
            "step_rule": check_option(step_rule, "step_rule", "SANIA", _STEP_RULES),
            "foreach": None if foreach is None else check_bool(foreach, "foreach", "SANIA"),
        }
        super().__init__(params, defaults)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        sum_sqs: list[Tensor],
        steps: list[int],
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("SANIA does not support sparse gradients")
            state = self.state[p]
            if len(state) == 0:
                # number of steps this parameter has taken (the Adam accumulator's bias correction)
                state["step"] = 0
                # v: the sum (adagrad) or exponential average (adam) of squared gradients
                state["sum_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            params.append(p)
            grads.append(p.grad)
            sum_sqs.append(state["sum_sq"])
            steps.append(state["step"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one SANIA step.

        Args:
            closure: a closure that zeroes the gradients, reevaluates the model, calls ``backward`` and returns the
                loss. Required: the step size needs the loss value.
        """
        if closure is None:
            raise RuntimeError(
                "SANIA needs a closure that evaluates the loss and its gradient (optimizer.step(closure)): "
                "its step size is computed from the loss value."
            )
        with torch.enable_grad():
            loss = closure()
        loss_value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)

        work = []
        total = 0.0
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            sum_sqs: list[Tensor] = []
            steps: list[int] = []
            self._init_group(group, params, grads, sum_sqs, steps)
            if not params:
                continue
            directions, sq_norm = sania_direction(
                grads,
                sum_sqs,
                steps,
                beta2=group["beta2"],
                eps=group["eps"],
                preconditioner=group["preconditioner"],
                sqrt=group["sqrt"],
                foreach=group["foreach"],
            )
            total += sq_norm
            work.append((group, params, directions))
        if not work:
            return loss
        # one Polyak step for the whole vector of weights; the rule of the first group with parameters decides
        step_size = sania_step_size(loss_value, total, step_rule=work[0][0]["step_rule"])
        for group, params, directions in work:
            alpha = -group["lr"] * step_size
            if alpha == 0.0:
                continue
            if group["foreach"] is False:
                for p, d in zip(params, directions):
                    p.add_(d, alpha=alpha)
            else:
                grouped = Optimizer._group_tensors_by_device_and_dtype([params, directions])  # type: ignore[list-item]
                for (device_params, device_directions), _ in grouped.values():
                    torch._foreach_add_(
                        cast(list[Tensor], device_params), cast(list[Tensor], device_directions), alpha=alpha
                    )
        return loss


def sania_step_size(loss: float, sq_norm: float, *, step_rule: str) -> float:
    r""":math:`\lambda` from the loss :math:`f` (clamped at 0) and :math:`G = \lVert g\rVert^2_{B^{-1}}`:
    ``"sania"``: :math:`1 - \sqrt{1 - 2f/G}` if :math:`2f \le G`, else 1; ``"polyak"``: :math:`f / G`
    (0 when :math:`G = 0`)."""
    f = max(loss, 0.0)
    if not math.isfinite(f) or not math.isfinite(sq_norm):
        return float("nan")
    if step_rule == "polyak":
        return f / sq_norm if sq_norm > 0.0 else 0.0
    if sq_norm > 0.0 and 2.0 * f <= sq_norm:
        return 1.0 - math.sqrt(1.0 - 2.0 * f / sq_norm)
    return 1.0


def sania_direction(
    grads: list[Tensor],
    sum_sqs: list[Tensor],
    steps: list[int],
    *,
    beta2: float,
    eps: float,
    preconditioner: str,
    sqrt: bool,
    foreach: bool | None = None,
) -> tuple[list[Tensor], float]:
    r"""Functional SANIA preconditioning: update the accumulators ``sum_sqs`` in place with ``grads`` and return
    the directions :math:`B^{-1} g` (new tensors) and :math:`G = \sum g^2 / B` (a float) over these tensors.
    ``steps`` are the step counts after this step (1 at the first). ``foreach=None`` takes the multi-tensor path.
    See :class:`SANIA`."""
    if foreach is None:
        foreach = not torch.jit.is_scripting()
    func = _multi_tensor_sania_direction if foreach else _single_tensor_sania_direction
    return func(grads, sum_sqs, steps, beta2=beta2, eps=eps, preconditioner=preconditioner, sqrt=sqrt)


def _sum_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _single_tensor_sania_direction(
    grads: list[Tensor],
    sum_sqs: list[Tensor],
    steps: list[int],
    *,
    beta2: float,
    eps: float,
    preconditioner: str,
    sqrt: bool,
) -> tuple[list[Tensor], float]:
    directions = []
    total = 0.0
    for g, v, step in zip(grads, sum_sqs, steps):
        if preconditioner == "adagrad":
            v.addcmul_(g, g)
            denom = v.sqrt() if sqrt else v.clone()
        else:
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = v / (1.0 - beta2**step)
            if sqrt:
                denom.sqrt_()
        denom.add_(eps)
        d = g / denom
        total += float((d * g).sum(dtype=_sum_dtype(g)))
        directions.append(d)
    return directions, total


def _multi_tensor_sania_direction(
    grads: list[Tensor],
    sum_sqs: list[Tensor],
    steps: list[int],
    *,
    beta2: float,
    eps: float,
    preconditioner: str,
    sqrt: bool,
) -> tuple[list[Tensor], float]:
    directions: list[Tensor] = [torch.empty(0)] * len(grads)
    total = 0.0
    grouped = Optimizer._group_tensors_by_device_and_dtype([grads, sum_sqs], with_indices=True)  # type: ignore[list-item]
    for (group_grads, group_sum_sqs), indices in grouped.values():
        device_grads = cast(list[Tensor], group_grads)
        device_sum_sqs = cast(list[Tensor], group_sum_sqs)
        if preconditioner == "adagrad":
            torch._foreach_addcmul_(device_sum_sqs, device_grads, device_grads)
            denom = list(torch._foreach_sqrt(device_sum_sqs) if sqrt else torch._foreach_mul(device_sum_sqs, 1.0))
        else:
            torch._foreach_mul_(device_sum_sqs, beta2)
            torch._foreach_addcmul_(device_sum_sqs, device_grads, device_grads, value=1.0 - beta2)
            corrections = [1.0 - beta2 ** steps[i] for i in indices]
            denom = list(torch._foreach_div(device_sum_sqs, corrections))
            if sqrt:
                torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        device_directions = list(torch._foreach_div(device_grads, denom))
        # g * B^-1 g >= 0, so its l1 norm is the sum: one kernel for every tensor
        torch._foreach_mul_(denom, 0.0)
        torch._foreach_addcmul_(denom, device_directions, device_grads)
        sums = torch._foreach_norm(denom, 1, dtype=_sum_dtype(device_grads[0]))
        total += float(torch.stack(sums).sum())
        for i, d in zip(indices, device_directions):
            directions[i] = d
    return directions, total


# --------------------------------------------------------------------------------------------------- registry


def _sania_space() -> Mapping[str, Dimension]:
    # lr-free: only the preconditioner's form is searched
    return {
        "optimizer__preconditioner": Categorical(("adagrad", "adam")),
        "optimizer__beta2": OneMinusLog(0.9, 0.9999),
    }


register(
    OptimizerSpec(
        name="sania",
        optimizer=SANIA,
        paper=(
            "Abdukhakimov, Xiang, Kamzolov, Gower & Takáč, SANIA: Polyak-type Optimization Framework Leads to Scale "
            "Invariant Stochastic Algorithms, 2023"
        ),
        url="https://arxiv.org/abs/2312.17369",
        family="polyak",
        summary=(
            "Learning-rate-free: a Polyak-type step size from the loss value on an AdaGrad- or Adam-preconditioned "
            "gradient without square root (scale invariant); for non-negative losses whose minimum is near 0 "
            "(interpolating models)."
        ),
        needs_closure=True,
        needs_create_graph=False,
        needs_module=False,
        lr_free=True,
        supports_foreach=True,
        wraps_optimizer=False,
        stochastic=False,
        supports_param_groups=True,
        search_space=_sania_space,
        sample_kwargs={},
        error_inputs=(
            ErrorInput(
                {"lr": -1.0},
                ValueError,
                "The 'lr' parameter of SANIA must be a float in the range [0.0, inf). Got -1.0 instead.",
            ),
            ErrorInput(
                {"beta2": 1.0},
                ValueError,
                "The 'beta2' parameter of SANIA must be a float in the range [0.0, 1.0). Got 1.0 instead.",
            ),
            ErrorInput(
                {"eps": 0.0},
                ValueError,
                "The 'eps' parameter of SANIA must be a float in the range (0.0, inf). Got 0.0 instead.",
            ),
            ErrorInput(
                {"preconditioner": "hutchinson"},
                ValueError,
                "The 'preconditioner' parameter of SANIA must be one of {'adagrad', 'adam'}. Got 'hutchinson' instead.",
            ),
            ErrorInput(
                {"sqrt": 1},
                ValueError,
                "The 'sqrt' parameter of SANIA must be a bool. Got 1 instead.",
            ),
            ErrorInput(
                {"step_rule": "armijo"},
                ValueError,
                "The 'step_rule' parameter of SANIA must be one of {'sania', 'polyak'}. Got 'armijo' instead.",
            ),
        ),
        # measured with the defaults (AdaGrad-SQR, polyak): quadratic 8.9e-8 after 50 steps, 3.8e-15 after 100;
        # Rosenbrock 3.7e-3 after 400, 2.6e-7 after 1000, 1.4e-12 after 2000
        quadratic=ConvergenceCase({}, steps=100, tol=1e-8),
        rosenbrock=ConvergenceCase({}, steps=1500, tol=1e-6),
    )
)
