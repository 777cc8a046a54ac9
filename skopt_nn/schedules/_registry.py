"""The schedule registry: every learning-rate schedule skopt_nn knows, as data.

A :class:`ScheduleSpec` holds the schedule class, the paper, the capability flags the estimator and the tests
read (``supports_warmup``, ``cycles_momentum``, ``needs_grad_norms``), a default search space keyed by routing
names (``"schedule__T_0"``), and the inputs of the conformance tests (sample parameters, bad parameters with
their exact error). Nothing in the package branches on a schedule's name: it reads these fields.

>>> from skopt_nn import schedules
>>> schedules.get("sgdr").factory.__name__
'SGDR'
>>> schedules.create("sgdr", T_0=5)
SGDR(T_0=5)
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skopt_nn._space import Dimension
from skopt_nn._validation import unknown_name_error

if TYPE_CHECKING:
    from skopt_nn.schedules._schedules import Schedule

__all__ = [
    "SCHEDULES",
    "ErrorInput",
    "ScheduleSpec",
    "available",
    "create",
    "get",
    "register",
]

SpaceFactory = Callable[[], Mapping[str, Dimension]]


def _no_space() -> Mapping[str, Dimension]:
    return {}


@dataclass(frozen=True)
class ErrorInput:
    """Schedule parameters that ``build(total_steps, steps_per_epoch)`` must reject, with the exact error."""

    params: Mapping[str, Any]
    error: type[Exception]
    message: str
    total_steps: int = 100
    steps_per_epoch: int = 10


@dataclass(frozen=True)
class ScheduleSpec:
    """Everything the package knows about one schedule.

    Parameters
    ----------
    name:
        Registry name, lower case (``"sgdr"``, ``"constant_cooldown"``).
    factory:
        The :class:`~skopt_nn.schedules.Schedule` subclass; ``factory(**params)`` makes a schedule object.
    paper:
        Citation: authors, title, year, arXiv id.
    summary:
        One line: what it does and when to use it.
    supports_warmup:
        ``warmup_steps`` / ``warmup_fraction`` may be non-zero (``onecycle`` has its own warm-up phase).
    cycles_momentum:
        The torch scheduler also changes the optimizer's momentum / beta1 (``onecycle``): it is not a pure lr
        multiplier, and ``make_scheduler`` returns torch's own scheduler.
    needs_grad_norms:
        Built from a previous run's per-step gradient norms (``refined``).
    search_space:
        Factory of the default space; keys are routing names (``"schedule__T_0"``).
    sample_params:
        Parameters the conformance tests build the schedule with.
    error_inputs:
        Bad parameters and their exact errors.
    """

    name: str
    factory: type[Schedule]
    paper: str
    summary: str = ""
    url: str = ""
    supports_warmup: bool = True
    cycles_momentum: bool = False
    needs_grad_norms: bool = False
    search_space: SpaceFactory = _no_space
    sample_params: Mapping[str, Any] = field(default_factory=dict)
    error_inputs: tuple[ErrorInput, ...] = ()
    origin: str = "skopt_nn"

    def create(self, **params: Any) -> Schedule:
        """A new schedule object of this kind with ``params`` (unknown names raise with close matches)."""
        schedule = self.factory()
        return schedule.set_params(**params) if params else schedule


SCHEDULES: dict[str, ScheduleSpec] = {}
_loaded = False


def register(spec: ScheduleSpec, *, replace_existing: bool = False) -> ScheduleSpec:
    """Add ``spec`` to the registry (and return it)."""
    if spec.name != spec.name.lower() or ":" in spec.name:
        raise ValueError(f"Schedule names are lower case without ':'; got {spec.name!r}.")
    if spec.name in SCHEDULES and not replace_existing:
        raise ValueError(f"A schedule named {spec.name!r} is already registered.")
    SCHEDULES[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    # the schedule modules register their entries on import of skopt_nn.schedules
    global _loaded
    if not _loaded:
        _loaded = True
        import skopt_nn.schedules  # noqa: F401


def get(name: str | Schedule | ScheduleSpec | None) -> ScheduleSpec:
    """Resolve a name (or a schedule object, or a spec) to its :class:`ScheduleSpec`.

    ``None`` means ``"constant"``. A schedule object of an unregistered class gets an ad-hoc spec. Raises
    ``ValueError`` listing close matches for an unknown name.
    """
    _ensure_loaded()
    from skopt_nn.schedules._schedules import Schedule

    if name is None:
        name = "constant"
    if isinstance(name, ScheduleSpec):
        return name
    if isinstance(name, Schedule):
        for spec in SCHEDULES.values():
            if type(name) is spec.factory:
                return spec
        return ScheduleSpec(name=type(name).__name__.lower(), factory=type(name), paper="", origin="user")
    if not isinstance(name, str):
        raise TypeError(f"A schedule is a name, a Schedule object or None; got {name!r}.")
    key = name.strip().lower()
    if key in SCHEDULES:
        return SCHEDULES[key]
    raise unknown_name_error("schedule", name, SCHEDULES)


def create(name: str | Schedule | ScheduleSpec | None, **params: Any) -> Schedule:
    """A schedule object from a name (``create("sgdr", T_0=5)``) or a copy of a schedule object with ``params``.

    A schedule object passed in is never modified: ``create(obj, T_0=3)`` deep-copies it first, so an
    estimator can apply routed ``schedule__<param>`` values without touching its own ``schedule`` parameter.
    """
    from skopt_nn.schedules._schedules import Schedule

    if isinstance(name, Schedule):
        schedule = copy.deepcopy(name)
        return schedule.set_params(**params) if params else schedule
    return get(name).create(**params)


def available(pattern: str | None = None) -> list[str]:
    """Registered schedule names, sorted, optionally filtered by a glob ``pattern`` (``"cos*"``)."""
    _ensure_loaded()
    names = sorted(SCHEDULES)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
    return names
