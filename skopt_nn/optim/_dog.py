r"""DoG and L-DoG: SGD with the parameter-free "distance over gradients" step size.

The step size is the largest distance travelled from the initial point divided by the root of the summed squared
gradient norms. DoG measures both over a whole param group (one long vector); L-DoG measures them per tensor
(layer-wise). Neither has a learning rate to tune: ``lr`` is a multiplier that should stay at 1.

The paper recommends evaluating an *averaged* iterate; :func:`get_polynomial_decay_multi_avg_fn` plugs the paper's
polynomial-decay averaging into :class:`torch.optim.swa_utils.AveragedModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from skopt_nn._space import Dimension, Float
from skopt_nn._validation import Interval, check_float, check_option, invalid_param_message
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

__all__ = ["DoG", "LDoG", "dog", "get_polynomial_decay_multi_avg_fn", "ldog"]

_PAPER = (
    "Ivgi, Hinder & Carmon, DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule, "
    "ICML 2023 (arXiv:2302.12022)"
)
_URL = "https://arxiv.org/abs/2302.12022"

_NON_NEGATIVE = Interval(0.0, None, "left")
_POSITIVE = Interval(0.0, None, "neither")

_MATH = r"""
    .. math::
       \begin{aligned}
            &\textbf{input}: x_0 \text{ (params)}, \: c \text{ (lr)}, \: \alpha \text{ (reps\_rel)},
                \: \lambda \text{ (weight\_decay)}, \: \epsilon \text{ (eps)}, \: \eta_{init} \text{ (init\_eta)} \\
            &\textbf{initialize}: \bar r_{-1} \leftarrow r_\epsilon = \alpha (1 + \|x_0\|)
                \: (0 \text{ if } \eta_{init} \text{ is given}), \quad G_{-1} \leftarrow \epsilon \\
            &\textbf{for} \: t = 0, 1, \ldots \: \textbf{do} \\
            &\hspace{5mm} g_t \leftarrow \nabla f_t(x_t) + \lambda x_t \\
            &\hspace{5mm} \bar r_t \leftarrow \max(\bar r_{t-1}, \|x_t - x_0\|) \\
            &\hspace{5mm} G_t \leftarrow G_{t-1} + \|g_t\|^2 \\
            &\hspace{5mm} \eta_t \leftarrow c \, \bar r_t / \sqrt{G_t}
                \quad (\eta_0 \leftarrow c \, \eta_{init} \text{ if } \eta_{init} \text{ is given}) \\
            &\hspace{5mm} x_{t+1} \leftarrow x_t - \eta_t g_t
       \end{aligned}
"""

_ARGS = """
    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: the multiplier :math:`c` of the step size (default: 1.0). DoG is meant to run at 1; it exists so
            that a schedule or a per-group ``lr=0`` (frozen group) works as with any torch optimizer.
        reps_rel: the relative initial movement :math:`\\alpha`: :math:`r_\\epsilon = \\alpha(1 + \\|x_0\\|)`
            (default: 1e-6; the authors suggest 1e-4 with batch normalisation and smaller values, e.g. 1e-8, if
            the first steps diverge). With float16/bfloat16 parameters it is raised to at least half the dtype's
            machine epsilon (0.0039 for bfloat16): a smaller first movement rounds away, the parameters never
            leave :math:`x_0` and the step size never grows (our reading; measured: 20 steps, loss unchanged).
        weight_decay: L2 penalty :math:`\\lambda`, added to the gradient before its norm is taken (default: 0).
        eps: :math:`\\epsilon`, added once to the sum of squared gradient norms so that it is never zero
            (default: 1e-8).
        init_eta: if given, the first step size :math:`\\eta_0` (times ``lr``) instead of the one implied by
            ``reps_rel``, which is then ignored (:math:`r_\\epsilon = 0`) (default: None).
        foreach: use the multi-tensor (``torch._foreach_*``) implementation; ``None`` means yes
            (default: None).
"""

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _reps_rel(group: dict[str, Any]) -> float:
    """The group's ``reps_rel``, floored at half the machine epsilon of its lowest-precision parameter dtype."""
    floor = max(
        (torch.finfo(p.dtype).eps / 2 for p in group["params"] if p.dtype in _LOW_PRECISION),
        default=0.0,
    )
    return max(float(group["reps_rel"]), floor)


_WARNINGS = """
    .. warning::
        Readings taken where the paper, the authors' code (`formll/dog <https://github.com/formll/dog>`_,
        ``dog.py`` v1.1.0) and optax (``optax.contrib.dog``) leave room:

        * :math:`r_\\epsilon` stays in the running maximum forever, :math:`\\bar r_t = \\max(r_\\epsilon,
          \\max_{i \\le t} \\|x_i - x_0\\|)`, as in both implementations (the authors' README writes the
          :math:`t \\ge 1` case without it; the two differ only while :math:`\\|x_t - x_0\\| < r_\\epsilon`:
          at :math:`t = 1` by the ``eps`` term, later if the iterates come back towards :math:`x_0`).
        * ``eps`` is added once to :math:`G` (authors' code, optax), not at every step.
        * ``weight_decay`` is L2 added to the gradient that enters :math:`G` (authors' code, optax). Unlike the
          authors' code we do not write the decayed gradient back into ``p.grad``.
        * ``init_eta`` is multiplied by ``lr`` (optax); the authors' code ignores ``lr`` for that first step.
          The two agree at the recommended ``lr=1``.
        * A parameter whose ``grad`` is ``None`` is treated as having a zero gradient: it does not move and
          adds nothing to :math:`G`. For DoG it still counts in :math:`\\|x_0\\|` (at the group's first step)
          and in :math:`\\|x_t - x_0\\|`, since the group is one vector. For L-DoG a tensor's state starts
          at its first gradient, so with ``init_eta`` its own first step uses it. The authors' code fails on
          ``None`` gradients.
        * ``lr=0`` is allowed (the authors' code requires ``lr > 0``) and ``eps`` must be positive.

    .. note::
        The authors stress that DoG needs iterate averaging to reach its reported accuracy. Evaluate
        ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_polynomial_decay_multi_avg_fn())``,
        updated after every step, instead of the raw model.
"""


def _real(t: Tensor) -> Tensor:
    return torch.view_as_real(t) if torch.is_complex(t) else t


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype if dtype.is_complex else dtype


def _group_by_device_and_dtype(tensorlists: list[list[Tensor]]) -> list[tuple[list[list[Tensor]], list[int]]]:
    """``Optimizer._group_tensors_by_device_and_dtype`` typed for lists without ``None``: (lists, indices)."""
    grouped = Optimizer._group_tensors_by_device_and_dtype(tensorlists, with_indices=True)  # type: ignore[arg-type]
    return [(cast(list[list[Tensor]], lists), list(indices)) for lists, indices in grouped.values()]


def _sq_sum(norms: list[Tensor] | tuple[Tensor, ...], like: Tensor) -> Tensor:
    """``sum(n ** 2)`` of 0-dim tensors, as a 0-dim tensor with ``like``'s dtype and device."""
    return torch.stack(norms).square().sum().to(dtype=like.dtype, device=like.device)


class _DistanceOverGradients(Optimizer):
    """Validation and ``defaults`` shared by :class:`DoG` and :class:`LDoG`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        reps_rel: float = 1e-6,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        init_eta: float | None = None,
        *,
        foreach: bool | None = None,
    ) -> None:
        name = type(self).__name__
        defaults = dict(
            lr=check_float(lr, "lr", name, _NON_NEGATIVE),
            reps_rel=check_float(reps_rel, "reps_rel", name, _POSITIVE),
            weight_decay=check_float(weight_decay, "weight_decay", name, _NON_NEGATIVE),
            eps=check_float(eps, "eps", name, _POSITIVE),
            init_eta=check_float(init_eta, "init_eta", name, _POSITIVE, allow_none=True),
            foreach=check_option(foreach, "foreach", name, (None, True, False)),
        )
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("init_eta", None)

    def _check_grad(self, p: Tensor) -> Tensor:
        grad = p.grad
        assert grad is not None
        if grad.is_sparse:
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        return grad


class DoG(_DistanceOverGradients):
    __doc__ = (
        r"""Implements DoG (Distance over Gradients): SGD with a parameter-free step size.

    The step size is the largest distance from the initial point seen so far over the root of the summed
    squared gradient norms, both norms taken over the whole param group as one vector (see :class:`LDoG` for
    the per-tensor variant).
"""
        + _MATH
        + """
    From Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule
    <https://arxiv.org/abs/2302.12022>`_, ICML 2023.
"""
        + _ARGS
        + """
    State: per parameter ``x0`` (its initial value); per param group ``rbar`` (:math:`\\bar r_t`), ``G``
    (:math:`G_t`) and ``eta`` (:math:`\\eta_t`, the last step size: watch it to tune ``reps_rel``).
"""
        + _WARNINGS
        + """
    Example:
        >>> import torch
        >>> from skopt_nn.optim._dog import DoG
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = DoG(model.parameters())
        >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
        >>> for _ in range(3):
        ...     optimizer.zero_grad()
        ...     torch.nn.functional.mse_loss(model(x), y).backward()
        ...     optimizer.step()
        >>> bool(optimizer.param_groups[0]["eta"] > 0)
        True
    """
    )

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        init_params: list[Tensor],
        idle_params: list[Tensor],
        idle_init_params: list[Tensor],
    ) -> bool:
        """Collect the group's tensors; create the state on the group's first step (returned as a bool)."""
        first_step = "rbar" not in group
        for p in group["params"]:
            state = self.state[p]
            if p.grad is None:
                if "x0" in state:  # moved before: its distance from x0 still counts
                    idle_params.append(_real(p))
                    idle_init_params.append(_real(state["x0"]))
                continue
            grad = self._check_grad(p)
            if len(state) == 0:
                # x_0, the initial value (taken when the parameter first has a gradient; it has not moved before)
                state["x0"] = p.detach().clone(memory_format=torch.preserve_format)
            params.append(_real(p))
            grads.append(_real(grad))
            init_params.append(_real(state["x0"]))
        if not params:
            return False
        if first_step:
            dtype = torch.float32
            for p in group["params"]:
                dtype = torch.promote_types(dtype, _real_dtype(p.dtype))
            device = params[0].device
            if group["init_eta"] is None:
                # ||x_0|| over the whole group, parameters without a gradient included
                norms = [torch.linalg.vector_norm(p.detach()).to(dtype=dtype, device=device) for p in group["params"]]
                r_eps = _reps_rel(group) * (1.0 + torch.stack(norms).square().sum().sqrt())
            else:
                r_eps = torch.zeros((), dtype=dtype, device=device)
            # rbar: the running maximum distance from x_0, starting at r_eps
            group["rbar"] = r_eps
            # G: eps plus the running sum of squared gradient norms
            group["G"] = torch.full((), group["eps"], dtype=dtype, device=device)
            # eta: the last step size (for monitoring; never read back)
            group["eta"] = torch.zeros((), dtype=dtype, device=device)
        else:
            device = params[0].device
            for key in ("rbar", "G", "eta"):  # after load_state_dict onto another device
                if group[key].device != device:
                    group[key] = group[key].to(device)
        return first_step

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure: a closure that reevaluates the model and returns the loss (optional).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            init_params: list[Tensor] = []
            idle_params: list[Tensor] = []
            idle_init_params: list[Tensor] = []
            first_step = self._init_group(group, params, grads, init_params, idle_params, idle_init_params)
            if not params:
                continue
            dog(
                params,
                grads,
                init_params,
                idle_params,
                idle_init_params,
                group["rbar"],
                group["G"],
                group["eta"],
                first_step=first_step,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                init_eta=group["init_eta"],
                foreach=group["foreach"],
            )
        return loss


class LDoG(_DistanceOverGradients):
    __doc__ = (
        r"""Implements L-DoG (layer-wise DoG): DoG's step size computed separately for every parameter tensor.

    Every tensor (a layer's weight, its bias, ...) gets its own :math:`r_\epsilon`, :math:`\bar r_t`,
    :math:`G_t` and :math:`\eta_t` from its own norms; otherwise the rule is :class:`DoG`'s:
"""
        + _MATH
        + """
    with every norm taken over one tensor. From Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule <https://arxiv.org/abs/2302.12022>`_, ICML 2023, where it
    generally outperforms tuned SGD and approaches tuned Adam (abstract).
"""
        + _ARGS
        + """
    State: per parameter ``x0`` (its initial value), ``rbar``, ``G`` and ``eta`` (0-dim tensors).
"""
        + _WARNINGS
        + """
    Example:
        >>> import torch
        >>> from skopt_nn.optim._dog import LDoG
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = LDoG(model.parameters())
        >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
        >>> for _ in range(3):
        ...     optimizer.zero_grad()
        ...     torch.nn.functional.mse_loss(model(x), y).backward()
        ...     optimizer.step()
        >>> len(optimizer.state[model.weight])
        4
    """
    )

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        init_params: list[Tensor],
        rbars: list[Tensor],
        grad_sq_sums: list[Tensor],
        etas: list[Tensor],
        first_steps: list[bool],
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = self._check_grad(p)
            state = self.state[p]
            first = len(state) == 0
            if first:
                # the scalar state in float32 at least (as DoG's): a bf16 running sum stalls once it is large
                dtype = torch.promote_types(torch.float32, _real_dtype(p.dtype))
                # x0: the initial value
                state["x0"] = p.detach().clone(memory_format=torch.preserve_format)
                # rbar: the running maximum distance of this tensor from x0, starting at its own r_eps
                if group["init_eta"] is None:
                    norm = torch.linalg.vector_norm(p.detach()).to(dtype)
                    state["rbar"] = _reps_rel(group) * (1.0 + norm)
                else:
                    state["rbar"] = torch.zeros((), dtype=dtype, device=p.device)
                # G: eps plus the running sum of this tensor's squared gradient norms
                state["G"] = torch.full((), group["eps"], dtype=dtype, device=p.device)
                # eta: this tensor's last step size (for monitoring; never read back)
                state["eta"] = torch.zeros((), dtype=dtype, device=p.device)
            params.append(_real(p))
            grads.append(_real(grad))
            init_params.append(_real(state["x0"]))
            rbars.append(state["rbar"])
            grad_sq_sums.append(state["G"])
            etas.append(state["eta"])
            first_steps.append(first)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure: a closure that reevaluates the model and returns the loss (optional).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            init_params: list[Tensor] = []
            rbars: list[Tensor] = []
            grad_sq_sums: list[Tensor] = []
            etas: list[Tensor] = []
            first_steps: list[bool] = []
            self._init_group(group, params, grads, init_params, rbars, grad_sq_sums, etas, first_steps)
            if not params:
                continue
            ldog(
                params,
                grads,
                init_params,
                rbars,
                grad_sq_sums,
                etas,
                first_steps,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                init_eta=group["init_eta"],
                foreach=group["foreach"],
            )
        return loss


# --------------------------------------------------------------------------------------------------- functional


def dog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    idle_params: list[Tensor],
    idle_init_params: list[Tensor],
    rbar: Tensor,
    G: Tensor,
    eta: Tensor,
    *,
    first_step: bool,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
    foreach: bool | None = None,
) -> None:
    r"""Functional API of :class:`DoG`: one step on one param group, in place.

    ``params``/``grads``/``init_params`` are the tensors with a gradient and their :math:`x_0`;
    ``idle_params``/``idle_init_params`` the group's other tensors that have moved before (their distance from
    :math:`x_0` counts). ``rbar`` (:math:`\bar r_{t-1}`, initialised to :math:`r_\epsilon`), ``G``
    (:math:`G_{t-1}`, initialised to ``eps``) and ``eta`` are 0-dim tensors updated in place; ``first_step``
    selects ``init_eta`` (when given) as the step size.
    """
    func = _multi_tensor_dog if foreach is None or foreach else _single_tensor_dog
    func(
        params,
        grads,
        init_params,
        idle_params,
        idle_init_params,
        rbar,
        G,
        eta,
        first_step=first_step,
        lr=lr,
        weight_decay=weight_decay,
        init_eta=init_eta,
    )


def _dog_step_size(
    rbar: Tensor, G: Tensor, eta: Tensor, *, first_step: bool, lr: float, init_eta: float | None
) -> None:
    if first_step and init_eta is not None:
        eta.fill_(lr * init_eta)
    else:
        torch.div(rbar, G.sqrt(), out=eta)
        eta.mul_(lr)


def _single_tensor_dog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    idle_params: list[Tensor],
    idle_init_params: list[Tensor],
    rbar: Tensor,
    G: Tensor,
    eta: Tensor,
    *,
    first_step: bool,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
) -> None:
    if weight_decay != 0:
        grads = [g.add(p, alpha=weight_decay) for p, g in zip(params, grads)]
    dist = [
        torch.linalg.vector_norm(p - x0).to(rbar) for p, x0 in zip(params + idle_params, init_params + idle_init_params)
    ]
    torch.maximum(rbar, _sq_sum(dist, rbar).sqrt(), out=rbar)
    G.add_(_sq_sum([torch.linalg.vector_norm(g).to(G) for g in grads], G))
    _dog_step_size(rbar, G, eta, first_step=first_step, lr=lr, init_eta=init_eta)
    for p, g in zip(params, grads):
        p.sub_(g.mul(eta.to(p.device)))


def _multi_tensor_dog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    idle_params: list[Tensor],
    idle_init_params: list[Tensor],
    rbar: Tensor,
    G: Tensor,
    eta: Tensor,
    *,
    first_step: bool,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
) -> None:
    grouped = _group_by_device_and_dtype([params, grads, init_params])
    buckets: list[tuple[list[Tensor], list[Tensor]]] = []
    dist_sq = torch.zeros_like(rbar)
    grad_sq = torch.zeros_like(G)
    for (b_params, b_grads, b_init), _ in grouped:
        if weight_decay != 0:
            b_grads = list(torch._foreach_add(b_grads, b_params, alpha=weight_decay))
        grad_sq.add_(_sq_sum(list(torch._foreach_norm(b_grads)), G))
        dist_sq.add_(_sq_sum(list(torch._foreach_norm(torch._foreach_sub(b_params, b_init))), rbar))
        buckets.append((b_params, b_grads))
    if idle_params:
        for (i_params, i_init), _ in _group_by_device_and_dtype([idle_params, idle_init_params]):
            dist_sq.add_(_sq_sum(list(torch._foreach_norm(torch._foreach_sub(i_params, i_init))), rbar))
    torch.maximum(rbar, dist_sq.sqrt_(), out=rbar)
    G.add_(grad_sq)
    _dog_step_size(rbar, G, eta, first_step=first_step, lr=lr, init_eta=init_eta)
    for b_params, b_grads in buckets:
        step = eta.to(b_params[0].device)
        if weight_decay != 0:  # b_grads is our own copy
            torch._foreach_mul_(b_grads, step)
            torch._foreach_sub_(b_params, b_grads)
        else:
            torch._foreach_sub_(b_params, torch._foreach_mul(b_grads, step))


def ldog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    rbars: list[Tensor],
    grad_sq_sums: list[Tensor],
    etas: list[Tensor],
    first_steps: list[bool],
    *,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
    foreach: bool | None = None,
) -> None:
    r"""Functional API of :class:`LDoG`: one step, in place, every norm per tensor.

    ``rbars`` (:math:`\bar r_{t-1}`, initialised to each tensor's :math:`r_\epsilon`), ``grad_sq_sums``
    (:math:`G_{t-1}`, initialised to ``eps``) and ``etas`` are 0-dim tensors, one per parameter, updated in
    place; ``first_steps[i]`` selects ``init_eta`` (when given) as tensor ``i``'s step size.
    """
    func = _multi_tensor_ldog if foreach is None or foreach else _single_tensor_ldog
    func(
        params,
        grads,
        init_params,
        rbars,
        grad_sq_sums,
        etas,
        first_steps,
        lr=lr,
        weight_decay=weight_decay,
        init_eta=init_eta,
    )


def _single_tensor_ldog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    rbars: list[Tensor],
    grad_sq_sums: list[Tensor],
    etas: list[Tensor],
    first_steps: list[bool],
    *,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
) -> None:
    for p, g, x0, rbar, G, eta, first in zip(params, grads, init_params, rbars, grad_sq_sums, etas, first_steps):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        torch.maximum(rbar, torch.linalg.vector_norm(p - x0), out=rbar)
        grad_norm = torch.linalg.vector_norm(g)
        G.addcmul_(grad_norm, grad_norm)
        _dog_step_size(rbar, G, eta, first_step=first, lr=lr, init_eta=init_eta)
        p.sub_(g.mul(eta))


def _multi_tensor_ldog(
    params: list[Tensor],
    grads: list[Tensor],
    init_params: list[Tensor],
    rbars: list[Tensor],
    grad_sq_sums: list[Tensor],
    etas: list[Tensor],
    first_steps: list[bool],
    *,
    lr: float,
    weight_decay: float,
    init_eta: float | None,
) -> None:
    grouped = _group_by_device_and_dtype([params, grads, init_params, rbars, grad_sq_sums, etas])
    for (b_params, b_grads, b_init, b_rbars, b_G, b_etas), indices in grouped:
        if weight_decay != 0:
            b_grads = list(torch._foreach_add(b_grads, b_params, alpha=weight_decay))
        # the per-tensor scalars are stacked into vectors: a few vector ops instead of one op per tensor
        dist = torch.stack(torch._foreach_norm(torch._foreach_sub(b_params, b_init)))
        grad_norm = torch.stack(torch._foreach_norm(b_grads))
        rbar = torch.maximum(torch.stack(b_rbars), dist)
        G = torch.stack(b_G).addcmul_(grad_norm, grad_norm)
        eta = rbar / G.sqrt()
        if lr != 1.0:
            eta.mul_(lr)
        if init_eta is not None:
            first = [k for k, i in enumerate(indices) if first_steps[i]]
            if first:
                eta[first] = lr * init_eta
        torch._foreach_copy_(b_rbars, rbar.unbind())
        torch._foreach_copy_(b_G, G.unbind())
        torch._foreach_copy_(b_etas, eta.unbind())
        if weight_decay != 0:  # b_grads is our own copy
            torch._foreach_mul_(b_grads, b_etas)
            torch._foreach_sub_(b_params, b_grads)
        else:
            torch._foreach_sub_(b_params, torch._foreach_mul(b_grads, b_etas))


# --------------------------------------------------------------------------------------------------- averaging


def get_polynomial_decay_multi_avg_fn(
    gamma: float = 8.0,
) -> Callable[[list[Tensor], list[Tensor], Tensor | int], None]:
    r"""Polynomial-decay iterate averaging (Shamir & Zhang, 2013) for :class:`torch.optim.swa_utils.AveragedModel`.

    The averaged parameters follow

    .. math::
        \bar x_1 = x_1, \qquad
        \bar x_t = \Bigl(1 - \frac{1 + \gamma}{t + \gamma}\Bigr) \bar x_{t-1} + \frac{1 + \gamma}{t + \gamma} x_t,

    where :math:`x_t` is the model after its :math:`t`-th ``update_parameters`` call. :math:`\gamma = 0` is the
    uniform average (torch's SWA default); a larger :math:`\gamma` forgets early iterates faster. The DoG authors
    recommend this averaging with DoG; their ``PolynomialDecayAverager`` defaults to :math:`\gamma = 8`.

    Non-floating tensors (e.g. BatchNorm's ``num_batches_tracked`` with ``use_buffers=True``) are copied.

    Args:
        gamma: :math:`\gamma \ge 0` (default: 8.0).

    Example:
        >>> import torch
        >>> from torch.optim.swa_utils import AveragedModel
        >>> from skopt_nn.optim._dog import DoG, get_polynomial_decay_multi_avg_fn
        >>> model = torch.nn.Linear(3, 1)
        >>> averaged = AveragedModel(model, multi_avg_fn=get_polynomial_decay_multi_avg_fn(gamma=8.0))
        >>> optimizer = DoG(model.parameters())
        >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
        >>> for _ in range(3):
        ...     optimizer.zero_grad()
        ...     torch.nn.functional.mse_loss(model(x), y).backward()
        ...     optimizer.step()
        ...     averaged.update_parameters(model)
        >>> prediction = averaged(x)  # evaluate the averaged iterate
    """
    gamma = float(check_float(gamma, "gamma", "get_polynomial_decay_multi_avg_fn", _NON_NEGATIVE))

    @torch.no_grad()
    def polynomial_decay_update(
        averaged_params: list[Tensor], current_params: list[Tensor], num_averaged: Tensor | int
    ) -> None:
        # AveragedModel copies the first iterate itself and calls this with num_averaged = t - 1 >= 1
        if not (averaged_params[0].is_floating_point() or averaged_params[0].is_complex()):
            torch._foreach_copy_(averaged_params, current_params)
            return
        # a Python float: exact in float64 (AveragedModel itself reads n_averaged on the host at every update)
        weight = (1.0 + gamma) / (gamma + 1.0 + float(num_averaged))
        torch._foreach_lerp_(averaged_params, current_params, weight)

    return polynomial_decay_update


# --------------------------------------------------------------------------------------------------- registry


def _search_space() -> dict[str, Dimension]:
    return {
        "optimizer__reps_rel": Float(1e-8, 1e-3, log=True),
        "optimizer__weight_decay": Float(1e-6, 1e-2, log=True),
    }


def _error_inputs(name: str) -> tuple[ErrorInput, ...]:
    def message(param: str, expected: str, value: object) -> str:
        return invalid_param_message(param, name, expected, value)

    return (
        ErrorInput({"lr": -1.0}, ValueError, message("lr", "a float in the range [0.0, inf)", -1.0)),
        ErrorInput({"reps_rel": 0.0}, ValueError, message("reps_rel", "a float in the range (0.0, inf)", 0.0)),
        ErrorInput(
            {"weight_decay": -0.1}, ValueError, message("weight_decay", "a float in the range [0.0, inf)", -0.1)
        ),
        ErrorInput({"eps": 0.0}, ValueError, message("eps", "a float in the range (0.0, inf)", 0.0)),
        ErrorInput(
            {"init_eta": -1.0}, ValueError, message("init_eta", "a float in the range (0.0, inf) or None", -1.0)
        ),
        ErrorInput({"foreach": "yes"}, ValueError, message("foreach", "one of {None, True, False}", "yes")),
    )


# Measured with the defaults (float64, both paths): the quadratic is within 1e-4 of its minimiser after 631 steps
# and 1e-6 after 896; Rosenbrock within 1e-2 after 10516 steps, 1e-3 after 14750 and 1e-4 after 18988. DoG and
# L-DoG coincide on these single-tensor problems.
_QUADRATIC = ConvergenceCase({}, steps=1500, tol=1e-6)
_ROSENBROCK = ConvergenceCase({}, steps=22500, tol=1e-3)

register(
    OptimizerSpec(
        name="dog",
        optimizer=DoG,
        paper=_PAPER,
        url=_URL,
        family="parameter-free",
        summary=(
            "SGD whose step size is the largest distance travelled from the initial point over the root of the "
            "summed squared gradient norms (over the whole param group): no learning rate to tune. Evaluate "
            "with polynomial-decay iterate averaging (get_polynomial_decay_multi_avg_fn)."
        ),
        lr_free=True,
        supports_foreach=True,
        search_space=_search_space,
        sample_kwargs={},
        error_inputs=_error_inputs("DoG"),
        quadratic=_QUADRATIC,
        rosenbrock=_ROSENBROCK,
    )
)
register(
    OptimizerSpec(
        name="ldog",
        optimizer=LDoG,
        paper=_PAPER,
        url=_URL,
        family="parameter-free",
        summary=(
            "Layer-wise DoG: DoG's learning-rate-free step size computed separately for every parameter tensor; "
            "the paper finds it generally better than tuned SGD. Evaluate with polynomial-decay iterate averaging."
        ),
        lr_free=True,
        supports_foreach=True,
        search_space=_search_space,
        sample_kwargs={},
        error_inputs=_error_inputs("LDoG"),
        quadratic=_QUADRATIC,
        rosenbrock=_ROSENBROCK,
    )
)
