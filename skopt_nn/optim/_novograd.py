"""NovoGrad: SGD with momentum on gradients normalised by a layer-wise second moment.

Every parameter tensor ("layer") keeps one scalar, an exponential moving average of its squared gradient norm,
instead of Adam's element-wise second moment; the gradient is divided by its root before it enters the momentum.
Half of Adam's memory, and the step of a layer does not depend on the scale of its gradient.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer

from skopt_nn._space import Dimension, Float, OneMinusLog, Tuple
from skopt_nn._validation import (
    NON_NEGATIVE,
    UNIT_OPEN_RIGHT,
    check_bool,
    check_float,
    check_option,
    check_pair,
    invalid_param_message,
)
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

__all__ = ["NovoGrad", "novograd"]

_PAPER = (
    "Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang & Cohen, Stochastic Gradient "
    "Methods with Layer-wise Adaptive Moments for Training of Deep Networks, 2019 (arXiv:1905.11286)"
)
_URL = "https://arxiv.org/abs/1905.11286"

_FOREACH_OPTIONS = (None, True, False)
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _moment_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the layer-wise second moment: float32 for half/bfloat16 parameters, else the parameter's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


class NovoGrad(Optimizer):
    r"""Implements NovoGrad: momentum on gradients normalised by a layer-wise second moment.

    .. math::
        \begin{aligned}
            &\rule{110mm}{0.4pt} \\
            &\textbf{input}: \lambda \text{ (lr)}, \: \beta_1, \beta_2 \text{ (betas)}, \:
                \epsilon \text{ (eps)}, \: d \text{ (weight\_decay)}, \: w_1 \text{ (params)} \\
            &\rule{110mm}{0.4pt} \\
            &\textbf{for} \: t = 1 \: \textbf{to} \: \ldots \: \textbf{do} \\
            &\hspace{5mm} \textbf{for each parameter tensor (layer) } l: \\
            &\hspace{10mm} g^l_t \leftarrow \nabla_l f_t(w_t) \\
            &\hspace{10mm} v^l_t \leftarrow \|g^l_1\|^2 \: \textbf{if} \: t = 1 \: \textbf{else} \:
                \beta_2 v^l_{t-1} + (1 - \beta_2) \|g^l_t\|^2 \\
            &\hspace{10mm} u^l_t \leftarrow g^l_t / (\sqrt{v^l_t} + \epsilon) + d \, w^l_t \\
            &\hspace{10mm} m^l_t \leftarrow u^l_1 \: \textbf{if} \: t = 1 \: \textbf{else} \:
                \beta_1 m^l_{t-1} + a \, u^l_t, \quad
                a = 1 - \beta_1 \: \textbf{if} \: \textit{grad\_averaging} \: \textbf{else} \: 1 \\
            &\hspace{10mm} w^l_{t+1} \leftarrow w^l_t - \lambda \, m^l_t \\
            &\rule{110mm}{0.4pt} \\[-1.ex]
            &\textbf{return} \: w_t \\[-1.ex]
            &\rule{110mm}{0.4pt} \\[-1.ex]
        \end{aligned}

    :math:`v^l_t` is one scalar per parameter tensor (the norm is taken over the whole tensor); :math:`m^l_t` has
    the tensor's shape. The weight decay :math:`d\,w` is added to the *normalised* gradient, so it is not divided
    by :math:`\sqrt{v}` (the paper's decoupling) but it does go through the momentum.

    From Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep
    Networks <https://arxiv.org/abs/1905.11286>`_, 2019 (v3, 2020: "Training Deep Networks with Stochastic
    Gradient Normalized by Layerwise Adaptive Second Moments"), Algorithm 1.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate :math:`\lambda` (default: 1e-3, as in torch-optimizer and pytorch-optimizer; the paper
            has no single default, it tunes lr with a schedule per task).
        betas: :math:`(\beta_1, \beta_2)`, the momentum and the decay of the layer-wise second moment
            (default: (0.95, 0.98), the default of NVIDIA's Jasper reference code, as copied in timm's
            ``NvNovoGrad``, and of pytorch-optimizer).
        eps: added to :math:`\sqrt{v}` (default: 1e-8).
        weight_decay: :math:`d`, added to the normalised gradient (default: 0).
        grad_averaging: scale the new term of the momentum by :math:`1 - \beta_1` from the second step on
            (an exponential moving average, the "Adam-like" first moment of the paper; default: False, the
            paper's Algorithm 1).
        foreach: use the multi-tensor (``torch._foreach_*``) implementation; ``None`` (default) means yes.

    State: per parameter ``step`` (int), ``exp_avg`` (:math:`m`, the parameter's shape and dtype) and
    ``exp_avg_sq`` (:math:`v`, a 0-dim tensor).

    .. note::
        **Precision.** :math:`v` is a 0-dim tensor in float32 for float16/bfloat16 parameters (a float16
        :math:`\|g\|^2` overflows past 65504, and it costs one scalar per tensor) and in the parameter's dtype
        otherwise; :meth:`load_state_dict` keeps it so. :math:`m` follows the parameter's dtype.

    .. warning::
        **First step.** The paper initialises :math:`v^l_1 = \|g^l_1\|^2` and
        :math:`m^l_1 = g^l_1/\sqrt{v^l_1} + d\,w^l_1` (no :math:`\epsilon`, no :math:`1 - \beta_1`). We keep
        its initialisation but with :math:`\epsilon` in the denominator, as in every later step and as in
        pytorch-optimizer's ``NovoGrad`` (checked; the two differ by :math:`O(\epsilon)` at step 1 only).
        With ``grad_averaging=True``, torch-optimizer's ``NovoGrad`` and TensorFlow Addons start the momentum
        at zero, so their first step is :math:`(1 - \beta_1)` times ours; pytorch-optimizer's equals ours.
        Without ``grad_averaging`` all three agree with the paper (the tests pin both relations).

    .. warning::
        **Other libraries.** torch-optimizer's ``NovoGrad`` defaults to ``betas=(0.95, 0)``, keeps :math:`v` in
        float32 whatever the parameter's dtype (``torch.zeros([])``), re-initialises :math:`v` from the current
        gradient whenever it is exactly 0, and writes the normalised gradient back into ``p.grad``; so does
        pytorch-optimizer's. pytorch-optimizer's ``weight_decouple=True`` (AdamW-style decay of the weights)
        is not the paper's rule; its default ``weight_decouple=False`` is.

    Example:
        >>> import torch
        >>> from skopt_nn.optim._novograd import NovoGrad
        >>> model = torch.nn.Linear(4, 1)
        >>> optimizer = NovoGrad(model.parameters(), lr=1e-2, weight_decay=1e-3)
        >>> loss = model(torch.randn(8, 4)).pow(2).mean()
        >>> loss.backward()
        >>> optimizer.step()
        >>> optimizer.state[model.weight]["exp_avg_sq"].shape
        torch.Size([])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.95, 0.98),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        grad_averaging: bool = False,
        foreach: bool | None = None,
    ) -> None:
        name = type(self).__name__
        defaults = {
            "lr": check_float(lr, "lr", name, NON_NEGATIVE),
            "betas": check_pair(betas, "betas", name, UNIT_OPEN_RIGHT),
            "eps": check_float(eps, "eps", name, NON_NEGATIVE),
            "weight_decay": check_float(weight_decay, "weight_decay", name, NON_NEGATIVE),
            "grad_averaging": check_bool(grad_averaging, "grad_averaging", name),
            "foreach": check_option(foreach, "foreach", name, _FOREACH_OPTIONS),
        }
        super().__init__(params, defaults)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        exp_avgs: list[Tensor],
        exp_avg_sqs: list[Tensor],
        state_steps: list[int],
    ) -> None:
        states = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("NovoGrad does not support sparse gradients")
            state = self.state[p]
            if len(state) == 0:
                # number of updates this parameter has received (t = 1 selects the initialisation)
                state["step"] = 0
                # first moment m: momentum of the normalised, weight-decayed gradients
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                # second moment v: one scalar per tensor, the moving average of the squared gradient norm
                state["exp_avg_sq"] = torch.zeros((), dtype=_moment_dtype(p.dtype), device=p.device)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            states.append(state)
        # count the step only once every parameter of the group has been accepted
        for state in states:
            state["step"] += 1
            state_steps.append(state["step"])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the state as torch does, but keep ``exp_avg_sq`` in float32 for half/bfloat16 parameters.

        (torch casts every floating state tensor to its parameter's dtype.)
        """
        super().load_state_dict(state_dict)
        saved = state_dict["state"]
        ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
        for param_id, p in zip(ids, params):
            value = saved.get(param_id, {}).get("exp_avg_sq")
            if isinstance(value, Tensor) and p.dtype in _LOW_PRECISION:
                self.state[p]["exp_avg_sq"] = value.to(device=p.device, dtype=_moment_dtype(p.dtype), copy=True)

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
            state_steps: list[int] = []
            self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, state_steps)
            beta1, beta2 = group["betas"]
            novograd(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                state_steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                grad_averaging=group["grad_averaging"],
                foreach=group["foreach"],
            )
        return loss


def novograd(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    grad_averaging: bool,
    foreach: bool | None = None,
) -> None:
    r"""Functional NovoGrad: update ``params`` and the moments in place (see :class:`NovoGrad`).

    ``exp_avg_sqs`` are 0-dim tensors; ``state_steps[i]`` is the step number :math:`t \geq 1` of this update for
    ``params[i]`` (:math:`t = 1` initialises the moments).
    """
    func = _single_tensor_novograd if foreach is False else _multi_tensor_novograd
    func(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        grad_averaging=grad_averaging,
    )


def _new_term_weight(step: int, beta1: float, grad_averaging: bool) -> float:
    """``a``: the weight of the new normalised gradient in the momentum (1 at the initialisation step)."""
    return 1.0 - beta1 if grad_averaging and step > 1 else 1.0


def _single_tensor_novograd(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    grad_averaging: bool,
) -> None:
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, state_steps):
        norm_sq = torch.linalg.vector_norm(grad, dtype=exp_avg_sq.dtype).square()
        if step == 1:
            exp_avg_sq.copy_(norm_sq)
        else:
            exp_avg_sq.lerp_(norm_sq, 1.0 - beta2)
        weight = _new_term_weight(step, beta1, grad_averaging)
        # m <- beta1 m + a g / (sqrt(v) + eps) + a d w   (m = 0 before the first step, so t = 1 gives u_1)
        coefficient = weight / (exp_avg_sq.sqrt() + eps)
        exp_avg.mul_(beta1).addcmul_(grad, coefficient)
        if weight_decay != 0:
            exp_avg.add_(param, alpha=weight * weight_decay)
        param.add_(exp_avg, alpha=-lr)


def _multi_tensor_novograd(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    grad_averaging: bool,
) -> None:
    if len(params) == 0:
        return
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [params, grads, exp_avgs, exp_avg_sqs],  # type: ignore[list-item]
        with_indices=True,
    )
    for (device_params_, device_grads_, device_exp_avgs_, device_exp_avg_sqs_), indices in grouped.values():
        device_params = cast(list[Tensor], device_params_)
        device_grads = cast(list[Tensor], device_grads_)
        device_exp_avgs = cast(list[Tensor], device_exp_avgs_)
        device_exp_avg_sqs = cast(list[Tensor], device_exp_avg_sqs_)
        steps = [state_steps[i] for i in indices]
        moment_dtype = device_exp_avg_sqs[0].dtype

        # the layer-wise second moments as one vector: a few small ops instead of several per tensor
        norm_sq = torch.stack(torch._foreach_norm(device_grads, 2, dtype=moment_dtype)).square_()
        if all(s == 1 for s in steps):
            second = norm_sq
        else:
            second = torch.stack(device_exp_avg_sqs).lerp_(norm_sq, 1.0 - beta2)
            if any(s == 1 for s in steps):
                first = torch.tensor([s == 1 for s in steps], device=second.device)
                second = torch.where(first, norm_sq, second)
        torch._foreach_copy_(device_exp_avg_sqs, second.unbind(0))

        weights = [_new_term_weight(s, beta1, grad_averaging) for s in steps]
        same_weight = all(w == weights[0] for w in weights)
        weight_vector = weights[0] if same_weight else torch.tensor(weights, dtype=moment_dtype, device=second.device)
        coefficients = (weight_vector / (second.sqrt() + eps)).unbind(0)

        # m <- beta1 m + a g / (sqrt(v) + eps) + a d w, in place
        torch._foreach_mul_(device_exp_avgs, beta1)
        torch._foreach_addcmul_(device_exp_avgs, device_grads, coefficients)
        if weight_decay != 0:
            if same_weight:
                torch._foreach_add_(device_exp_avgs, device_params, alpha=weights[0] * weight_decay)
            else:
                decays = [torch.tensor(w * weight_decay, dtype=moment_dtype, device=second.device) for w in weights]
                torch._foreach_addcmul_(device_exp_avgs, device_params, decays)
        torch._foreach_add_(device_params, device_exp_avgs, alpha=-lr)


# --------------------------------------------------------------------------------------------------- registry


def _search_space() -> Mapping[str, Dimension]:
    return {
        "optimizer__lr": Float(1e-4, 1e-1, log=True),
        "optimizer__betas": Tuple((OneMinusLog(0.5, 0.99), OneMinusLog(0.2, 0.999))),
        "optimizer__weight_decay": Float(1e-6, 1e-2, log=True),
    }


def _error(kwargs: Mapping[str, Any], name: str, expected: str, value: Any) -> ErrorInput:
    return ErrorInput(kwargs, ValueError, invalid_param_message(name, "NovoGrad", expected, value))


register(
    OptimizerSpec(
        name="novograd",
        optimizer=NovoGrad,
        paper=_PAPER,
        url=_URL,
        family="layer-wise",
        summary=(
            "Momentum SGD on gradients divided by a per-tensor moving average of their norm (one scalar per "
            "layer instead of Adam's per-weight second moment): half of Adam's memory, robust to the gradient "
            "scale of each layer, little need for warmup. For speech, NLP and large-batch training."
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
        sample_kwargs={"lr": 0.01, "weight_decay": 1e-3},
        error_inputs=(
            _error({"lr": -1.0}, "lr", "a float in the range [0.0, inf)", -1.0),
            _error({"betas": (0.95, 1.0)}, "betas", "a pair of floats in the range [0.0, 1.0)", (0.95, 1.0)),
            _error({"eps": -1e-8}, "eps", "a float in the range [0.0, inf)", -1e-8),
            _error({"weight_decay": -0.1}, "weight_decay", "a float in the range [0.0, inf)", -0.1),
            _error({"grad_averaging": 1}, "grad_averaging", "a bool", 1),
            _error({"foreach": "yes"}, "foreach", "one of {None, True, False}", "yes"),
        ),
        # NovoGrad's step has a norm of about lr / (1 - beta1) per tensor while v tracks |g|^2, so with the paper's
        # betas and a constant lr it orbits the minimiser (float64, first step from which the distance stays below
        # tol, 8000/20000-step runs): quadratic lr=0.001 below 1e-3 from step 944, never below 1e-4; with
        # betas=(0.9, 0.999) v lags behind the shrinking gradient and it converges: lr=0.03 below 1e-6 from step
        # 327. Rosenbrock, paper betas, lr=0.001: below 1e-3 from step 878 (never below 1e-4 in 20000 steps).
        quadratic=ConvergenceCase({"lr": 0.03, "betas": (0.9, 0.999), "weight_decay": 0.0}, steps=600, tol=1e-6),
        rosenbrock=ConvergenceCase({"lr": 0.001, "weight_decay": 0.0}, steps=1600, tol=1e-3),
    )
)
