"""The optimizer registry: every optimizer skopt_nn knows, as data.

An :class:`OptimizerSpec` holds the optimizer class (or factory), the paper, the capability flags the
estimator reads (``needs_closure``, ``needs_create_graph``, ``needs_module``, ``lr_free``, ``supports_foreach``,
``wraps_optimizer``), a default search space keyed by routing names, and the inputs of the conformance suite
(sample hyperparameters, bad hyperparameters with their exact error, convergence budgets). Nothing in the
package branches on an optimizer's name: it reads these fields.

Names resolve in three ways:

* a registered name (``"adam"``, ``"diffgrad"``, ``"lookahead_adam"``);
* a composition ``"<wrapper>_<name>"`` of a wrapper (``wraps_optimizer=True``) around any resolvable name,
  built on demand (``"gradient_noise_lion"``);
* ``"pytorch_optimizer:<name>"``, any optimizer of the optional pytorch-optimizer package.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from skopt_nn._space import Dimension
from skopt_nn._validation import unknown_name_error

__all__ = [
    "OPTIMIZERS",
    "ConvergenceCase",
    "ErrorInput",
    "OptimizerSpec",
    "available",
    "get",
    "register",
]

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SpaceFactory = Callable[[], Mapping[str, Dimension]]

PYTORCH_OPTIMIZER_PREFIX = "pytorch_optimizer:"


def _no_space() -> Mapping[str, Dimension]:
    return {}


@dataclass(frozen=True)
class ErrorInput:
    """Constructor keyword arguments that must be rejected, with the exact exception and message."""

    kwargs: Mapping[str, Any]
    error: type[Exception]
    message: str


@dataclass(frozen=True)
class ConvergenceCase:
    """Hyperparameters and a step budget within which the optimizer must reach a known minimiser.

    ``tol`` bounds the Euclidean distance between the final iterate and the minimiser.
    """

    kwargs: Mapping[str, Any]
    steps: int
    tol: float


@dataclass(frozen=True)
class OptimizerSpec:
    """Everything the package knows about one optimizer.

    Parameters
    ----------
    name:
        Registry name, lower case (``"adam"``, ``"lookahead_adam"``).
    optimizer:
        The ``torch.optim.Optimizer`` subclass, or a factory ``(params, **kwargs) -> Optimizer``.
        Wrappers take ``base=`` (another factory) as well.
    paper:
        Citation: authors, title, year.
    family:
        Grouping used by the docs (``"adam-like"``, ``"sign"``, ``"second-order"``, ...).
    summary:
        One line: what it does and when to use it.
    needs_closure:
        ``step`` must get a closure (it evaluates the loss itself, possibly several times).
    needs_create_graph:
        Gradients must be computed with ``backward(create_graph=True)`` (Hessian-vector products).
    needs_module:
        The factory takes ``module=`` (the ``torch.nn.Module`` being trained).
    lr_free:
        No learning rate to tune; the estimator does not inject its ``lr``.
    supports_foreach:
        The constructor takes ``foreach=`` and the multi-tensor path equals the single-tensor one.
    wraps_optimizer:
        A wrapper: ``optimizer(params, base=factory, **kwargs)``; composable by name as ``"<name>_<base>"``.
    stochastic:
        ``step`` draws random numbers (Hutchinson probes, noise); tests seed torch around it.
    supports_param_groups:
        Several param groups with their own hyperparameters are allowed (L-BFGS allows one).
    search_space:
        Factory of the default space, keys are routing names (``"optimizer__lr"``).
    sample_kwargs:
        Hyperparameters the conformance suite uses on its small problems.
    error_inputs:
        Bad hyperparameters and their exact errors.
    quadratic, rosenbrock:
        Convergence cases of the conformance suite, or ``None`` where the method is not meant to converge
        there with a constant step (say why in ``summary``).
    compose_budget:
        For wrappers: factor applied to the base's step budgets when composed.
    origin:
        ``"skopt_nn"``, ``"torch"`` or ``"pytorch_optimizer"``.
    """

    name: str
    optimizer: OptimizerFactory
    paper: str
    family: str
    summary: str = ""
    url: str = ""
    needs_closure: bool = False
    needs_create_graph: bool = False
    needs_module: bool = False
    lr_free: bool = False
    supports_foreach: bool = False
    wraps_optimizer: bool = False
    stochastic: bool = False
    supports_param_groups: bool = True
    search_space: SpaceFactory = _no_space
    sample_kwargs: Mapping[str, Any] = field(default_factory=dict)
    error_inputs: tuple[ErrorInput, ...] = ()
    quadratic: ConvergenceCase | None = None
    rosenbrock: ConvergenceCase | None = None
    compose_budget: float = 1.0
    origin: str = "skopt_nn"

    def build(
        self,
        params: Iterable[Any],
        *,
        module: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> torch.optim.Optimizer:
        """Instantiate the optimizer on ``params`` (and ``module`` when ``needs_module``)."""
        if self.needs_module:
            if module is None:
                raise ValueError(f"The optimizer {self.name!r} needs the module: pass module=.")
            return self.optimizer(params, module=module, **kwargs)
        return self.optimizer(params, **kwargs)

    @property
    def optimizer_class(self) -> type[torch.optim.Optimizer] | None:
        """The optimizer class, when ``optimizer`` is one (not a factory)."""
        target = self.optimizer
        while isinstance(target, functools.partial):
            target = target.func
        if isinstance(target, type) and issubclass(target, torch.optim.Optimizer):
            return target
        return None


OPTIMIZERS: dict[str, OptimizerSpec] = {}
_loaded = False


def register(spec: OptimizerSpec, *, replace_existing: bool = False) -> OptimizerSpec:
    """Add ``spec`` to the registry (and return it)."""
    if spec.name != spec.name.lower() or ":" in spec.name:
        raise ValueError(f"Optimizer names are lower case without ':'; got {spec.name!r}.")
    if spec.name in OPTIMIZERS and not replace_existing:
        raise ValueError(f"An optimizer named {spec.name!r} is already registered.")
    OPTIMIZERS[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    # The built-in and paper optimizers register themselves on import of skopt_nn.optim.
    global _loaded
    if not _loaded:
        _loaded = True
        import skopt_nn.optim  # noqa: F401


def _merge_spaces(*factories: SpaceFactory) -> SpaceFactory:
    def space() -> Mapping[str, Dimension]:
        merged: dict[str, Dimension] = {}
        for factory in factories:
            merged.update(factory())
        return merged

    return space


def _scaled(case: ConvergenceCase | None, wrapper: ConvergenceCase | None, factor: float) -> ConvergenceCase | None:
    if case is None or wrapper is None:
        return None
    return ConvergenceCase(
        kwargs={**case.kwargs, **wrapper.kwargs},
        steps=int(math.ceil(case.steps * factor)),
        tol=max(case.tol, wrapper.tol),
    )


def compose(wrapper: OptimizerSpec, base: OptimizerSpec, name: str | None = None) -> OptimizerSpec:
    """The spec of ``wrapper`` applied to ``base`` (e.g. Lookahead around Adam).

    A wrapper's ``sample_kwargs`` and convergence cases hold only the wrapper's own hyperparameters; they are
    merged over the base's, and the base's step budgets are multiplied by ``wrapper.compose_budget``.
    """
    if not wrapper.wraps_optimizer:
        raise ValueError(f"{wrapper.name!r} is not a wrapper (wraps_optimizer=False).")
    factory: OptimizerFactory = functools.partial(wrapper.optimizer, base=base.optimizer)
    return replace(
        wrapper,
        name=name or f"{wrapper.name}_{base.name}",
        optimizer=factory,
        summary=f"{wrapper.summary} Around {base.name}.".strip(),
        needs_closure=wrapper.needs_closure or base.needs_closure,
        needs_create_graph=wrapper.needs_create_graph or base.needs_create_graph,
        needs_module=base.needs_module,
        lr_free=base.lr_free,
        supports_foreach=base.supports_foreach,  # foreach= goes to the base; wrappers follow the group flag
        stochastic=wrapper.stochastic or base.stochastic,
        supports_param_groups=base.supports_param_groups,
        search_space=_merge_spaces(base.search_space, wrapper.search_space),
        sample_kwargs={**base.sample_kwargs, **wrapper.sample_kwargs},
        error_inputs=wrapper.error_inputs,
        quadratic=_scaled(base.quadratic, wrapper.quadratic, wrapper.compose_budget),
        rosenbrock=_scaled(base.rosenbrock, wrapper.rosenbrock, wrapper.compose_budget),
        compose_budget=1.0,
        wraps_optimizer=False,
    )


def _pytorch_optimizer_spec(name: str) -> OptimizerSpec:
    short = name[len(PYTORCH_OPTIMIZER_PREFIX) :]
    try:
        import pytorch_optimizer
    except ImportError as exc:
        raise ImportError(
            f"The optimizer {name!r} needs the optional package pytorch-optimizer: pip install 'skopt-nn[zoo]'."
        ) from exc
    try:
        cls = pytorch_optimizer.load_optimizer(short)
    except NotImplementedError:
        known = [f"{PYTORCH_OPTIMIZER_PREFIX}{n}" for n in pytorch_optimizer.get_supported_optimizers()]
        raise unknown_name_error("optimizer", name, known) from None
    step_params = inspect.signature(cls.step).parameters
    return OptimizerSpec(
        name=name,
        optimizer=cls,
        paper=f"see pytorch-optimizer's {cls.__name__}",
        family="pytorch-optimizer zoo",
        summary=f"{cls.__name__} from pytorch-optimizer (not verified by skopt_nn).",
        # capability detection, not names: Hutchinson-based optimizers take an optional `hessian` in step()
        # (every pytorch-optimizer class inherits compute_hutchinson_hessian, so that method says nothing)
        needs_create_graph="hessian" in step_params,
        needs_closure="closure" in step_params and step_params["closure"].default is inspect.Parameter.empty,
        origin="pytorch_optimizer",
    )


def _wrappers() -> list[OptimizerSpec]:
    return sorted((s for s in OPTIMIZERS.values() if s.wraps_optimizer), key=lambda s: -len(s.name))


def get(name: str | type[torch.optim.Optimizer] | OptimizerSpec) -> OptimizerSpec:
    """Resolve a name (or an optimizer class, or a spec) to its :class:`OptimizerSpec`.

    Raises ``ValueError`` listing close matches for an unknown name.
    """
    _ensure_loaded()
    if isinstance(name, OptimizerSpec):
        return name
    if isinstance(name, type):
        for spec in OPTIMIZERS.values():
            if spec.optimizer is name:
                return spec
        if not issubclass(name, torch.optim.Optimizer):
            raise TypeError(f"Expected a torch.optim.Optimizer subclass; got {name!r}.")
        return OptimizerSpec(name=name.__name__.lower(), optimizer=name, paper="", family="user", origin="user")
    if isinstance(name, functools.partial):
        # a partial of a registered class keeps that class's capabilities
        target: Any = name
        while isinstance(target, functools.partial):
            target = target.func
        for spec in OPTIMIZERS.values():
            if spec.optimizer is target:
                return replace(spec, optimizer=name)
    if callable(name) and not isinstance(name, str):
        # a user factory (params, **kwargs) -> Optimizer
        return OptimizerSpec(
            name=getattr(name, "__name__", "custom"), optimizer=name, paper="", family="user", origin="user"
        )
    if not isinstance(name, str):
        raise TypeError(f"An optimizer is a name, an Optimizer subclass or a factory; got {name!r}.")
    key = name.strip().lower()
    if key.startswith(PYTORCH_OPTIMIZER_PREFIX):
        return _pytorch_optimizer_spec(key)
    if key in OPTIMIZERS:
        return OPTIMIZERS[key]
    for wrapper in _wrappers():
        prefix = wrapper.name + "_"
        if key.startswith(prefix) and len(key) > len(prefix):
            try:
                base = get(key[len(prefix) :])
            except ValueError:
                break
            return compose(wrapper, base)
    raise unknown_name_error(
        "optimizer",
        name,
        OPTIMIZERS,
        hint=f"Any optimizer of pytorch-optimizer is available as '{PYTORCH_OPTIMIZER_PREFIX}<name>'.",
    )


def available(pattern: str | None = None, *, wrappers: bool = False) -> list[str]:
    """Registered optimizer names, sorted, optionally filtered by a glob ``pattern`` (``"*adam*"``).

    Bare wrappers (``"lookahead"``) are listed only with ``wrappers=True``; their registered compositions
    (``"lookahead_adam"``) always are, and any other composition resolves by name through :func:`get`.
    """
    _ensure_loaded()
    names = sorted(n for n, s in OPTIMIZERS.items() if wrappers or not s.wraps_optimizer)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
    return names
