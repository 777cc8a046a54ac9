"""Coordinate-wise clipping (Pan & Li, 2023) of the update (or the gradient) of any optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from skopt_nn._space import Dimension, Float
from skopt_nn._validation import Interval, check_float, check_option
from skopt_nn.optim import _builtins  # noqa: F401  (registers "sgd" and "adam", the bases composed below)
from skopt_nn.optim._lookahead import OptimizerWrapper
from skopt_nn.optim._registry import (
    OPTIMIZERS,
    ConvergenceCase,
    ErrorInput,
    OptimizerSpec,
    compose,
    register,
)

__all__ = ["CoordinateClip", "coordinate_clip", "coordinate_clip_threshold"]

_TARGETS = ("update", "gradient")


class CoordinateClip(OptimizerWrapper):
    r"""Clips the largest coordinates of each step (or of the gradient) of a base optimizer.

    .. math::

        \begin{aligned}
            &\textbf{input}: A \text{ (base)}, \; q \text{ (clip\_fraction)}, \; c \text{ (clip\_threshold)},
                \; \gamma \text{ (lr)} \\
            &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
            &\quad \Delta_t \leftarrow A(g_t) \quad \text{(the step the base would take: } \theta_{t-1} + \Delta_t
                \text{)} \\
            &\quad \tau_t \leftarrow \gamma\, c \;\; \textbf{if } c \text{ is set, else } \;
                \tau_t \leftarrow \text{the } \lceil (1 - q)\, n \rceil\text{-th smallest of } |\Delta_{t,i}|,
                \; i = 1..n \text{ (the group's coordinates)} \\
            &\quad \theta_t \leftarrow \theta_{t-1} + \mathrm{clip}(\Delta_t, -\tau_t, \tau_t) \\
        \end{aligned}

    With ``clip_target="gradient"`` the same rule clips :math:`g_t` (at :math:`c`, not :math:`\gamma c`) before the
    base step instead. With the fraction rule exactly :math:`\lfloor q n \rfloor` coordinates (fewer on ties) are
    clipped to the magnitude of the largest unclipped one.

    Pan & Li, *Toward Understanding Why Adam Converges Faster Than SGD for Transformers*, 2023,
    https://arxiv.org/abs/2306.00204: SGD's update has much larger *directional sharpness* than Adam's because a
    small fraction of its coordinates is much larger than the rest; clipping those coordinates lowers the
    sharpness and speeds up SGD (and, less, adaptive methods).

    Args:
        params: iterable of parameters or of dicts defining parameter groups.
        base: the optimizer whose steps are clipped: an ``Optimizer`` class, a factory
            ``(params, **kwargs) -> Optimizer`` or a registry name. Default: ``"sgd"``.
        clip_fraction: :math:`q \in [0, 1)`, the fraction of each group's coordinates that is clipped (the
            adaptive threshold); 0 clips nothing (default: 0.1).
        clip_threshold: :math:`c > 0`, a fixed threshold instead of the fraction rule, in units of the update
            *direction* (the step is clipped at ``lr * clip_threshold``, so ``clip_threshold`` keeps its meaning
            when ``lr`` changes) or of the gradient with ``clip_target="gradient"``. Default: ``None`` (use
            ``clip_fraction``).
        clip_target: ``"update"`` (default) clips the base's step :math:`\Delta_t`, after the base has updated its
            own state from the unclipped gradient (momentum and moments are not clipped); ``"gradient"`` clips
            ``p.grad`` in place before the base step, so the base's state sees the clipped gradient.
        **base_kwargs: every other keyword goes to the base (``lr``, ``momentum``, ``foreach``, ...).

    .. warning::
        Readings we took (SEEDS.md marks the threshold rule [verify]; we could read the paper's abstract and
        summaries of its Section 4 but not its full text, and found no reference implementation):

        * Default rule: the **adaptive** threshold, a fixed fraction of the coordinates clipped per step (the
          paper's experiments are described by their "clipping fraction", smaller for methods with coordinate-wise
          scaling such as Adam than for SGD); the fixed threshold is the ``clip_threshold`` option. The default
          ``clip_fraction=0.1`` is our choice, not a value checked against the paper.
        * The quantile is taken over all coordinates with a gradient in a param group (one threshold per group,
          usually the whole model), not per tensor.
        * ``"update"`` clips the whole step of the base, weight decay included; clipping happens on
          :math:`\theta_t - \theta_{t-1}` as the base computed it, so a coordinate that is not clipped ends
          bit-identical to the base's result, a clipped one at :math:`\theta_{t-1} \pm \tau_t`.

    With a closure, ``"gradient"`` clips after each evaluation of the closure (inside the base's ``step``);
    ``"update"`` keeps one copy of the parameters per step (the only extra memory). The wrapper keeps no
    per-parameter state. Sparse gradients are rejected.

    Precision:
        The threshold is computed in the parameters' dtype (a quantile, no accumulation); clipping is exact.

    Example:
        >>> import torch
        >>> from skopt_nn.optim._coordinate_clip import CoordinateClip
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = CoordinateClip(model.parameters(), base="sgd", clip_fraction=0.25, lr=0.1, momentum=0.9)
        >>> for _ in range(10):
        ...     optimizer.zero_grad()
        ...     model(torch.ones(4, 3)).pow(2).mean().backward()
        ...     optimizer.step()
    """

    def __init__(
        self,
        params: ParamsT,
        base: Any = "sgd",
        clip_fraction: float = 0.1,
        clip_threshold: float | None = None,
        *,
        clip_target: str = "update",
        **base_kwargs: Any,
    ) -> None:
        defaults = self._validated(clip_fraction, clip_threshold, clip_target)
        super().__init__(params, base, defaults, base_kwargs)

    @staticmethod
    def _validated(fraction: Any, threshold: Any, target: Any) -> dict[str, Any]:
        return {
            "clip_fraction": check_float(fraction, "clip_fraction", "CoordinateClip", Interval(0.0, 1.0, "left")),
            "clip_threshold": check_float(
                threshold, "clip_threshold", "CoordinateClip", Interval(0.0, None, "neither"), allow_none=True
            ),
            "clip_target": check_option(target, "clip_target", "CoordinateClip", _TARGETS),
        }

    def _check_group(self, group: dict[str, Any]) -> None:
        self._validated(group["clip_fraction"], group["clip_threshold"], group["clip_target"])

    def _init_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("CoordinateClip does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)

    def _clip_gradients(self) -> None:
        with torch.no_grad():
            for group in self.param_groups:
                if group["clip_target"] != "gradient":
                    continue
                params: list[Tensor] = []
                grads: list[Tensor] = []
                self._init_group(group, params, grads)
                threshold = group["clip_threshold"]
                if threshold is None:
                    threshold = coordinate_clip_threshold(grads, group["clip_fraction"])
                if threshold is not None:
                    coordinate_clip(grads, threshold, foreach=group.get("foreach"))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one base step (forwarding ``closure``) and clip it coordinate-wise.

        Args:
            closure: a closure that reevaluates the model and returns the loss; passed to the base optimizer
                (with ``clip_target="gradient"``, the gradients are clipped after each of its evaluations).
        """
        clip_grads = any(group["clip_target"] == "gradient" for group in self.param_groups)
        clip_updates = any(group["clip_target"] == "update" for group in self.param_groups)
        wrapped: Callable[[], Any] | None = closure
        if closure is not None and clip_grads:

            def clipping_closure() -> Any:
                loss = closure()
                self._clip_gradients()
                return loss

            wrapped = clipping_closure
        elif closure is None and clip_grads:
            self._clip_gradients()

        before: list[tuple[dict[str, Any], list[Tensor], list[Tensor]]] = []
        if clip_updates:
            with torch.no_grad():
                for group in self.param_groups:
                    # the parameters with a gradient now (with a closure, every parameter: the gradients are not
                    # computed yet); after the base step only those with a gradient are clipped
                    params = [p for p in group["params"] if p.grad is not None or closure is not None]
                    if group["clip_target"] != "update" or not params:
                        continue
                    copies = [self._scratch(p) for p in params]
                    if group.get("foreach") is False:
                        for p, copy in zip(params, copies):
                            copy.copy_(p)
                    else:
                        torch._foreach_copy_(copies, params)
                    before.append((group, params, copies))

        loss = self.base_optimizer.step(wrapped)

        with torch.no_grad():
            for group, params, copies in before:
                moved: list[Tensor] = []
                olds: list[Tensor] = []
                for p, old in zip(params, copies):
                    if p.grad is not None:
                        if p.grad.is_sparse:
                            raise RuntimeError("CoordinateClip does not support sparse gradients")
                        moved.append(p)
                        olds.append(old)
                if moved:
                    coordinate_clip_update(
                        moved,
                        olds,
                        fraction=group["clip_fraction"],
                        threshold=None if group["clip_threshold"] is None else group["lr"] * group["clip_threshold"],
                        foreach=group.get("foreach"),
                    )
        self._wrapper_step += 1
        return loss


def coordinate_clip_threshold(tensors: list[Tensor], fraction: float) -> float | None:
    """The threshold that clips ``floor(fraction * n)`` of the ``n`` coordinates of ``tensors`` (by magnitude):
    the ``(n - floor(fraction * n))``-th smallest absolute value; ``None`` when nothing is to be clipped."""
    n = sum(t.numel() for t in tensors)
    k = math.floor(fraction * n)
    if k == 0 or n == 0:
        return None
    # one copy (the concatenation, or abs of a single tensor) and an in-place abs: the selection itself is the
    # cost that cannot be avoided (B3 floors: ~0.7 of an AdamW step on the B3 workload)
    if len(tensors) > 1:
        flat = torch.cat([t.detach().reshape(-1) for t in tensors]).abs_()
    else:
        flat = tensors[0].detach().reshape(-1).abs()
    return float(torch.kthvalue(flat.float() if flat.dtype in _LOW else flat, n - k).values)


_LOW = (torch.float16, torch.bfloat16)


def coordinate_clip(tensors: list[Tensor], threshold: float, *, foreach: bool | None = None) -> None:
    r"""Functional coordinate-wise clipping, in place: :math:`x \leftarrow \mathrm{clip}(x, -\tau, \tau)`.
    ``foreach=None`` takes the multi-tensor path. See :class:`CoordinateClip`."""
    if foreach is None:
        foreach = not torch.jit.is_scripting()
    if not foreach:
        for t in tensors:
            t.clamp_(-threshold, threshold)
        return
    grouped = Optimizer._group_tensors_by_device_and_dtype([tensors])  # type: ignore[list-item]
    for (group_tensors,), _ in grouped.values():
        device_tensors = cast(list[Tensor], group_tensors)
        torch._foreach_clamp_min_(device_tensors, -threshold)
        torch._foreach_clamp_max_(device_tensors, threshold)


def coordinate_clip_update(
    params: list[Tensor],
    olds: list[Tensor],
    *,
    fraction: float,
    threshold: float | None,
    foreach: bool | None = None,
) -> None:
    r"""Clip the step :math:`\Delta = \theta - \theta_{old}` just taken by ``params`` to :math:`[-\tau, \tau]`:
    :math:`\theta \leftarrow \min(\max(\theta, \theta_{old} - \tau), \theta_{old} + \tau)`, with :math:`\tau` =
    ``threshold`` or, when it is ``None``, the fraction rule on :math:`|\Delta|`. ``olds`` is overwritten."""
    if foreach is None:
        foreach = not torch.jit.is_scripting()
    if threshold is None:
        deltas = [p - old for p, old in zip(params, olds)] if not foreach else list(torch._foreach_sub(params, olds))
        threshold = coordinate_clip_threshold(deltas, fraction)
        if threshold is None:
            return
    func = _multi_tensor_coordinate_clip_update if foreach else _single_tensor_coordinate_clip_update
    func(params, olds, threshold=threshold)


def _single_tensor_coordinate_clip_update(params: list[Tensor], olds: list[Tensor], *, threshold: float) -> None:
    for p, old in zip(params, olds):
        p.clamp_(min=old - threshold, max=old.add_(threshold))


def _multi_tensor_coordinate_clip_update(params: list[Tensor], olds: list[Tensor], *, threshold: float) -> None:
    grouped = Optimizer._group_tensors_by_device_and_dtype([params, olds])  # type: ignore[list-item]
    for (group_params, group_olds), _ in grouped.values():
        device_params = cast(list[Tensor], group_params)
        device_olds = cast(list[Tensor], group_olds)
        lows = list(torch._foreach_sub(device_olds, threshold))
        torch._foreach_maximum_(device_params, lows)
        torch._foreach_add_(device_olds, threshold)
        torch._foreach_minimum_(device_params, device_olds)


# --------------------------------------------------------------------------------------------------- registry


def _coordinate_clip_space() -> Mapping[str, Dimension]:
    return {"optimizer__clip_fraction": Float(0.001, 0.3, log=True)}


COORDINATE_CLIP = register(
    OptimizerSpec(
        name="coordinate_clip",
        optimizer=CoordinateClip,
        paper="Pan & Li, Toward Understanding Why Adam Converges Faster Than SGD for Transformers, 2023",
        url="https://arxiv.org/abs/2306.00204",
        family="wrapper",
        summary=(
            "Wraps any optimizer: clips the largest coordinates of each step (a fixed fraction of them, or above a "
            "fixed threshold); lowers the directional sharpness of SGD-like updates, e.g. on transformers."
        ),
        needs_closure=False,
        needs_create_graph=False,
        needs_module=False,
        lr_free=False,
        supports_foreach=False,  # the foreach flag belongs to the base; the clipping follows the group's "foreach"
        wraps_optimizer=True,
        stochastic=False,
        supports_param_groups=True,
        search_space=_coordinate_clip_space,
        sample_kwargs={"clip_fraction": 0.1},
        error_inputs=(
            ErrorInput(
                {"clip_fraction": 1.0},
                ValueError,
                "The 'clip_fraction' parameter of CoordinateClip must be a float in the range [0.0, 1.0). "
                "Got 1.0 instead.",
            ),
            ErrorInput(
                {"clip_threshold": 0.0},
                ValueError,
                "The 'clip_threshold' parameter of CoordinateClip must be a float in the range (0.0, inf) or None. "
                "Got 0.0 instead.",
            ),
            ErrorInput(
                {"clip_target": "momentum"},
                ValueError,
                "The 'clip_target' parameter of CoordinateClip must be one of {'update', 'gradient'}. "
                "Got 'momentum' instead.",
            ),
            ErrorInput(
                {"base": 3},
                ValueError,
                "The 'base' parameter of CoordinateClip must be an optimizer class, a factory (params, **kwargs) -> "
                "Optimizer, or a registered optimizer name. Got 3 instead.",
            ),
        ),
        # a wrapper's cases: its own hyperparameters and a tolerance; compose() takes the larger of this tol and
        # the base's and scales the base's step budget by compose_budget (the ``steps`` here are not used).
        # Quadratic (8 coordinates), clip_fraction=0.25 clips 2 per step: distance after half / all of the base
        # budget 4.5e-4 / 2.2e-7 (sgd), 5.9e-5 / 1.0e-9 (adam). On Rosenbrock's 2 coordinates the fraction rule
        # clips the larger coordinate to the smaller one and stalls (1.84 from (1, 1) for sgd at any budget, as
        # it should: the rule is meant for many coordinates), so that case uses the fixed threshold:
        # clip_threshold=3 gives 0.021 / 4.1e-5 (sgd) and 0.011 / 7e-12 (adam) after half / all of the budget.
        quadratic=ConvergenceCase({"clip_fraction": 0.25}, steps=0, tol=1e-3),
        rosenbrock=ConvergenceCase({"clip_threshold": 3.0}, steps=0, tol=1e-2),
        compose_budget=1.0,
    )
)

register(compose(COORDINATE_CLIP, OPTIMIZERS["sgd"]))
register(compose(COORDINATE_CLIP, OPTIMIZERS["adam"]))
