"""Lookahead (Zhang, Lucas, Hinton & Ba, NeurIPS 2019) and the machinery every optimizer wrapper shares.

:class:`OptimizerWrapper` is a real :class:`torch.optim.Optimizer` that builds a *base* optimizer on the same
parameters and shares its ``param_groups`` (the same list object, so LR schedulers and ``group["lr"] = ...`` reach
the base); :class:`Lookahead` and :class:`~skopt_nn.optim._gradient_noise.GradientNoise` are built on it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from skopt_nn._space import Dimension, Float, Int
from skopt_nn._validation import Interval, check_float, check_int, check_option, invalid_param_message
from skopt_nn.optim import _builtins  # noqa: F401  (registers "adam" and "sgd", the bases composed below)
from skopt_nn.optim._registry import (
    OPTIMIZERS,
    ConvergenceCase,
    ErrorInput,
    OptimizerSpec,
    compose,
    register,
)

__all__ = ["Lookahead", "OptimizerWrapper", "lookahead"]

BaseFactory = Callable[..., Optimizer]

_PULLBACK_OPTIONS = ("none", "reset", "pullback")


def resolve_base(base: Any, owner: str) -> BaseFactory:
    """The optimizer factory ``base`` names: an ``Optimizer`` class or factory, a registry name or spec."""
    if isinstance(base, (str, OptimizerSpec)):
        # imported lazily: get() loads skopt_nn.optim, whose import runs this module
        from skopt_nn.optim._registry import get

        return get(base).optimizer
    if callable(base):
        return cast(BaseFactory, base)
    expected = "an optimizer class, a factory (params, **kwargs) -> Optimizer, or a registered optimizer name"
    raise ValueError(invalid_param_message("base", owner, expected, base))


class OptimizerWrapper(Optimizer):
    """An optimizer that runs a *base* optimizer and adds its own work around the base's ``step``.

    The wrapper builds ``base(params, **base_kwargs)`` and shares its ``param_groups``: the same list holding the
    same dicts, to which the wrapper's own hyperparameters are added (``setdefault``), so an LR scheduler or a
    per-group change made through either object reaches both. ``defaults`` holds the base's defaults and the
    wrapper's. ``state`` holds only the wrapper's per-parameter state; the base's is ``base_optimizer.state``.
    ``state_dict()`` carries both (and the wrapper's step counter) in plain tensors and numbers, loadable with
    ``torch.load(weights_only=True)``.

    Subclasses pass their own validated hyperparameters as ``wrapper_defaults``, implement ``step`` (forwarding
    the closure to :attr:`base_optimizer`) and may override :meth:`_check_group` to validate per-group values.
    """

    base_optimizer: Optimizer

    def __init__(
        self,
        params: ParamsT,
        base: Any,
        wrapper_defaults: Mapping[str, Any],
        base_kwargs: Mapping[str, Any],
    ) -> None:
        owner = type(self).__name__
        factory = resolve_base(base, owner)
        base_optimizer = factory(params, **base_kwargs)
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError(f"The base of {owner} must build a torch.optim.Optimizer; got {base_optimizer!r}.")
        clash = sorted(set(wrapper_defaults) & set(base_optimizer.defaults))
        if clash:
            raise ValueError(
                f"{owner} cannot wrap {type(base_optimizer).__name__}: both use the hyperparameter(s) {clash} "
                "(a wrapper cannot wrap another instance of itself)."
            )
        self.base_optimizer = base_optimizer
        self._wrapper_keys = tuple(wrapper_defaults)
        self._wrapper_step = 0  # number of completed wrapper steps
        self._sharing = False
        # Optimizer.__init__ adds the base's group dicts (not copies) to a list of our own and setdefaults our
        # hyperparameters into them; the list itself is then replaced by the base's list.
        super().__init__(base_optimizer.param_groups, {**base_optimizer.defaults, **wrapper_defaults})
        self.param_groups = base_optimizer.param_groups
        self._sharing = True
        for group in self.param_groups:
            self._check_group(group)

    # ----------------------------------------------------------------------------------------------- groups

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate the wrapper's hyperparameters in ``group`` (they may be set per group)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to the base optimizer (and so to the shared ``param_groups``), with the wrapper's
        hyperparameters as defaults."""
        if not self._sharing:  # called by Optimizer.__init__ on the base's groups
            super().add_param_group(param_group)
            return
        self.base_optimizer.add_param_group(param_group)
        group = self.param_groups[-1]
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients (through the base optimizer, so its hooks run)."""
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def _scratch(self, p: Tensor) -> Tensor:
        """A reusable buffer shaped like ``p`` (e.g. its value before the base's step), kept out of ``state`` and
        of pickles; reallocated when ``p`` changes shape, dtype or device, or a new tensor reuses its id."""
        # keyed by id (tensors compare elementwise); the weak reference tells a reused id from the same tensor
        buffers: dict[int, tuple[weakref.ref[Tensor], Tensor]] = self.__dict__.setdefault("_scratch_buffers", {})
        entry = buffers.get(id(p))
        if entry is not None:
            ref, buffer = entry
            if ref() is p and buffer.shape == p.shape and buffer.dtype == p.dtype and buffer.device == p.device:
                return buffer
        buffer = torch.empty_like(p, memory_format=torch.preserve_format)
        buffers[id(p)] = (weakref.ref(p), buffer)
        return buffer

    # ----------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """The wrapper's state (``state``, ``param_groups``, ``wrapper_step``) and the base's (``base``)."""
        state_dict = super().state_dict()
        state_dict["wrapper_step"] = self._wrapper_step
        state_dict["base"] = self.base_optimizer.state_dict()
        return state_dict

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a :meth:`state_dict`: the base's state and groups, then the wrapper's state and step counter."""
        self.base_optimizer.load_state_dict(state_dict["base"])
        # torch casts our per-parameter state to each parameter's dtype and device; it also replaces
        # ``self.param_groups`` with fresh dicts, so the base's (freshly loaded) list is shared again below
        super().load_state_dict({"state": state_dict["state"], "param_groups": state_dict["param_groups"]})
        self._wrapper_step = int(state_dict["wrapper_step"])
        self._share_groups()

    def _share_groups(self) -> None:
        self.param_groups = self.base_optimizer.param_groups
        for group in self.param_groups:
            for name, default in self.defaults.items():
                group.setdefault(name, default)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(
            base_optimizer=self.base_optimizer,
            _wrapper_keys=self._wrapper_keys,
            _wrapper_step=self._wrapper_step,
            _sharing=self._sharing,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "base_optimizer" in self.__dict__ and self._sharing:
            self._share_groups()

    def __repr__(self) -> str:
        own = ", ".join(f"{name}={self.defaults[name]!r}" for name in self._wrapper_keys)
        return f"{type(self).__name__} ({own}) around\n{self.base_optimizer!r}"


# --------------------------------------------------------------------------------------------------- Lookahead


class Lookahead(OptimizerWrapper):
    r"""Lookahead: *k* steps forward with a base optimizer, then one step back toward the slow weights.

    .. math::

        \begin{aligned}
            &\textbf{input}: \theta_0 \text{ (params)}, \; A \text{ (base)}, \; k \text{ (lookahead\_k)},
                \; \alpha \text{ (lookahead\_alpha)} \\
            &\phi \leftarrow \theta_0 \quad \text{(slow weights, at the first step)} \\
            &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
            &\quad \theta_t \leftarrow \theta_{t-1} + A(\nabla f_t(\theta_{t-1}))
                \quad \text{(one step of the base, its state kept)} \\
            &\quad \textbf{if } t \bmod k = 0 \textbf{ then} \\
            &\qquad \phi \leftarrow \phi + \alpha\,(\theta_t - \phi) \\
            &\qquad \theta_t \leftarrow \phi \\
        \end{aligned}

    Zhang, Lucas, Hinton & Ba, *Lookahead Optimizer: k steps forward, 1 step back*, NeurIPS 2019,
    https://arxiv.org/abs/1907.08610.

    Args:
        params: iterable of parameters or of dicts defining parameter groups.
        base: the inner ("fast") optimizer: an ``Optimizer`` class, a factory ``(params, **kwargs) -> Optimizer``
            or a registry name (``"adam"``, ``"radam"``, ``"lion"``, ...). Default: ``"adam"``.
        lookahead_k: synchronisation period *k*, in base steps (default: 5).
        lookahead_alpha: slow-weights step size :math:`\alpha \in (0, 1]`; 1 recovers the base (default: 0.5).
        pullback_momentum: what happens to the base's ``momentum_buffer`` (SGD, RMSprop) at a synchronisation:
            ``"none"`` keeps it (Algorithm 1 of the paper), ``"reset"`` zeroes it, ``"pullback"`` interpolates
            it toward a slow copy like the weights (options of the authors' code). Default: ``"none"``.
        **base_kwargs: every other keyword goes to the base (``lr``, ``betas``, ``foreach``, ...).

    The hyperparameters are prefixed (``lookahead_k``, ``lookahead_alpha``) so that they never collide with a
    base's own (RMSprop has an ``alpha``). The synchronisation is a foreach ``lerp``/``copy`` unless the base's
    param group says ``foreach=False``. The slow weights of ``p`` are ``optimizer.state[p]["slow_param"]``
    (evaluate on them by copying them into the model: they usually generalise better).

    .. warning::
        Readings we took where the paper leaves room:

        * The slow weights start at :math:`\theta_0`, the parameters **at the first** ``step`` (not at
          construction, so weights loaded into the model after building the optimizer are respected); the first
          synchronisation follows base step *k*. torch-optimizer 0.3's ``Lookahead`` instead synchronises right
          after the first base step (slow weights :math:`\theta_1`) and then every *k* steps; the authors' code
          (github.com/michaelrzhang/lookahead) and pytorch-optimizer start from :math:`\theta_0` as we do.
        * The base's state (momentum, Adam moments, step count) is kept across synchronisations, as in
          Algorithm 1 and the authors' default ``pullback_momentum="none"``.
        * ``"pullback"`` copies the interpolated momentum into the slow copy, as pytorch-optimizer does; the
          authors' code aliases the two tensors, which makes the pullback a no-op after the first synchronisation.
        * Every parameter of the groups is synchronised, with or without a gradient at that step (as in the
          authors' code; pytorch-optimizer synchronises only parameters with a gradient). A parameter that never
          gets a gradient keeps its value exactly.
        * The step counter is global to the optimizer; a group's own ``lookahead_k`` decides when that group
          synchronises.

    Example:
        >>> import torch
        >>> from skopt_nn.optim._lookahead import Lookahead
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = Lookahead(model.parameters(), base="adam", lookahead_k=5, lookahead_alpha=0.5, lr=1e-2)
        >>> for _ in range(10):
        ...     optimizer.zero_grad()
        ...     model(torch.ones(4, 3)).pow(2).mean().backward()
        ...     optimizer.step()
        >>> optimizer.param_groups is optimizer.base_optimizer.param_groups
        True
    """

    def __init__(
        self,
        params: ParamsT,
        base: Any = "adam",
        lookahead_k: int = 5,
        lookahead_alpha: float = 0.5,
        *,
        pullback_momentum: str = "none",
        **base_kwargs: Any,
    ) -> None:
        defaults = self._validated(lookahead_k, lookahead_alpha, pullback_momentum)
        super().__init__(params, base, defaults, base_kwargs)
        if pullback_momentum != "none" and "momentum" not in self.base_optimizer.defaults:
            expected = f"'none' for a base without a momentum buffer ({type(self.base_optimizer).__name__})"
            raise ValueError(invalid_param_message("pullback_momentum", "Lookahead", expected, pullback_momentum))

    @staticmethod
    def _validated(k: Any, alpha: Any, pullback: Any) -> dict[str, Any]:
        return {
            "lookahead_k": check_int(k, "lookahead_k", "Lookahead", Interval(1, None, "left")),
            "lookahead_alpha": check_float(alpha, "lookahead_alpha", "Lookahead", Interval(0.0, 1.0, "right")),
            "pullback_momentum": check_option(pullback, "pullback_momentum", "Lookahead", _PULLBACK_OPTIONS),
        }

    def _check_group(self, group: dict[str, Any]) -> None:
        self._validated(group["lookahead_k"], group["lookahead_alpha"], group["pullback_momentum"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._slow_ready = False

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._slow_ready = False

    def _init_group(self, group: dict[str, Any], params: list[Tensor], slow_params: list[Tensor]) -> None:
        for p in group["params"]:
            state = self.state[p]
            if len(state) == 0:
                # the slow weights phi, starting at the parameters before the first base step
                state["slow_param"] = p.detach().clone(memory_format=torch.preserve_format)
                if group["pullback_momentum"] == "pullback":
                    # the slow copy of the base's momentum buffer (zero, as in the authors' code)
                    state["slow_momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            slow_params.append(state["slow_param"])

    def _momentum_buffers(self, group: dict[str, Any], params: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        buffers: list[Tensor] = []
        slow_buffers: list[Tensor] = []
        if group["pullback_momentum"] == "none":
            return buffers, slow_buffers
        for p in params:
            buffer = self.base_optimizer.state.get(p, {}).get("momentum_buffer")
            if isinstance(buffer, Tensor):  # SGD with momentum=0 keeps none
                buffers.append(buffer)
                if group["pullback_momentum"] == "pullback":
                    slow = self.state[p].get("slow_momentum")
                    if slow is None:  # the group switched to "pullback" after its slow weights were made
                        slow = self.state[p]["slow_momentum"] = torch.zeros_like(buffer)
                    slow_buffers.append(slow)
        return buffers, slow_buffers

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one base step (forwarding ``closure``) and, every ``lookahead_k`` steps, synchronise.

        Args:
            closure: a closure that reevaluates the model and returns the loss; passed to the base optimizer.
        """
        if not self.__dict__.get("_slow_ready", False):
            # the slow weights start at the parameters before the first base step (and, for groups added or
            # state loaded later, before the next one); afterwards this per-step loop is skipped
            for group in self.param_groups:
                self._init_group(group, [], [])
            self._slow_ready = True

        loss = self.base_optimizer.step(closure)
        self._wrapper_step += 1

        with torch.no_grad():
            for group in self.param_groups:
                if self._wrapper_step % group["lookahead_k"] != 0:
                    continue
                params: list[Tensor] = []
                slow_params: list[Tensor] = []
                # (a parameter put into group["params"] by hand since the last step starts its slow weights here)
                self._init_group(group, params, slow_params)
                buffers, slow_buffers = self._momentum_buffers(group, params)
                lookahead(
                    params,
                    slow_params,
                    buffers,
                    slow_buffers,
                    alpha=group["lookahead_alpha"],
                    pullback_momentum=group["pullback_momentum"],
                    foreach=group.get("foreach"),
                )
        return loss


def lookahead(
    params: list[Tensor],
    slow_params: list[Tensor],
    momentum_buffers: list[Tensor],
    slow_momentums: list[Tensor],
    *,
    alpha: float,
    pullback_momentum: str = "none",
    foreach: bool | None = None,
) -> None:
    r"""Functional Lookahead synchronisation: :math:`\phi \leftarrow \phi + \alpha(\theta - \phi)`,
    :math:`\theta \leftarrow \phi`, and the same for the momentum buffers under ``pullback_momentum="pullback"``
    (``"reset"`` zeroes them). ``foreach=None`` takes the multi-tensor path. See :class:`Lookahead`."""
    if foreach is None:
        foreach = not torch.jit.is_scripting()
    func = _multi_tensor_lookahead if foreach else _single_tensor_lookahead
    func(
        params,
        slow_params,
        momentum_buffers,
        slow_momentums,
        alpha=alpha,
        pullback_momentum=pullback_momentum,
    )


def _single_tensor_lookahead(
    params: list[Tensor],
    slow_params: list[Tensor],
    momentum_buffers: list[Tensor],
    slow_momentums: list[Tensor],
    *,
    alpha: float,
    pullback_momentum: str,
) -> None:
    for param, slow in zip(params, slow_params):
        slow.lerp_(param, alpha)
        param.copy_(slow)
    if pullback_momentum == "reset":
        for buffer in momentum_buffers:
            buffer.zero_()
    elif pullback_momentum == "pullback":
        for buffer, slow in zip(momentum_buffers, slow_momentums):
            slow.lerp_(buffer, alpha)
            buffer.copy_(slow)


def _multi_tensor_lookahead(
    params: list[Tensor],
    slow_params: list[Tensor],
    momentum_buffers: list[Tensor],
    slow_momentums: list[Tensor],
    *,
    alpha: float,
    pullback_momentum: str,
) -> None:
    pairs = [(params, slow_params)]
    if pullback_momentum == "pullback":
        pairs.append((momentum_buffers, slow_momentums))
    for fast, slow in pairs:
        if not fast:
            continue
        grouped = Optimizer._group_tensors_by_device_and_dtype([fast, slow])  # type: ignore[list-item]
        for (device_fast, device_slow), _ in grouped.values():
            torch._foreach_lerp_(cast(list[Tensor], device_slow), cast(list[Tensor], device_fast), alpha)
            torch._foreach_copy_(cast(list[Tensor], device_fast), cast(list[Tensor], device_slow))
    if pullback_momentum == "reset" and momentum_buffers:
        grouped = Optimizer._group_tensors_by_device_and_dtype([momentum_buffers])  # type: ignore[list-item]
        for (device_buffers,), _ in grouped.values():
            torch._foreach_zero_(cast(list[Tensor], device_buffers))


# --------------------------------------------------------------------------------------------------- registry


def _lookahead_space() -> Mapping[str, Dimension]:
    # the paper's grid is k in {5, 10}, alpha in {0.5, 0.8}, and it reports robustness around it
    return {
        "optimizer__lookahead_k": Int(3, 20, log=True),
        "optimizer__lookahead_alpha": Float(0.3, 0.9),
    }


LOOKAHEAD = register(
    OptimizerSpec(
        name="lookahead",
        optimizer=Lookahead,
        paper="Zhang, Lucas, Hinton & Ba, Lookahead Optimizer: k steps forward, 1 step back, NeurIPS 2019",
        url="https://arxiv.org/abs/1907.08610",
        family="wrapper",
        summary=(
            "Wraps any optimizer: every k steps pulls slow weights toward the fast ones and restarts from them; "
            "lowers the variance of the base and its sensitivity to lr and other hyperparameters."
        ),
        needs_closure=False,
        needs_create_graph=False,
        needs_module=False,
        lr_free=False,
        supports_foreach=False,  # the foreach flag belongs to the base; the sync follows the group's "foreach"
        wraps_optimizer=True,
        stochastic=False,
        supports_param_groups=True,
        search_space=_lookahead_space,
        # k=3 so that the conformance suite's 5-step runs save the state between two synchronisations
        sample_kwargs={"lookahead_k": 3, "lookahead_alpha": 0.5},
        error_inputs=(
            ErrorInput(
                {"lookahead_k": 0},
                ValueError,
                "The 'lookahead_k' parameter of Lookahead must be an int in the range [1, inf). Got 0 instead.",
            ),
            ErrorInput(
                {"lookahead_alpha": 0.0},
                ValueError,
                "The 'lookahead_alpha' parameter of Lookahead must be a float in the range (0.0, 1.0]. "
                "Got 0.0 instead.",
            ),
            ErrorInput(
                {"pullback_momentum": "always"},
                ValueError,
                "The 'pullback_momentum' parameter of Lookahead must be one of {'none', 'reset', 'pullback'}. "
                "Got 'always' instead.",
            ),
            ErrorInput(
                {"base": 3},
                ValueError,
                "The 'base' parameter of Lookahead must be an optimizer class, a factory (params, **kwargs) -> "
                "Optimizer, or a registered optimizer name. Got 3 instead.",
            ),
        ),
        # a wrapper's cases: its own hyperparameters and a tolerance; compose() takes the larger of this tol and
        # the base's and scales the base's step budget by compose_budget (the ``steps`` here are not used).
        # alpha = 0.5 halves the speed along flat directions; measured steps-to-tolerance of lookahead_<base> over
        # <base> on torch's built-ins: 0.7-2.1x (quadratic and Rosenbrock; radam 2.0x, sgd on Rosenbrock 2.1x).
        quadratic=ConvergenceCase({"lookahead_k": 5, "lookahead_alpha": 0.5}, steps=0, tol=1e-3),
        rosenbrock=ConvergenceCase({"lookahead_k": 5, "lookahead_alpha": 0.5}, steps=0, tol=1e-2),
        compose_budget=2.0,
    )
)

register(compose(LOOKAHEAD, OPTIMIZERS["adam"]))
register(compose(LOOKAHEAD, OPTIMIZERS["sgd"]))
