"""Search spaces for the estimators: registry spaces turned into Optuna suggestions.

A space maps routing names (``"optimizer"``, ``"optimizer__lr"``, ``"schedule__T_0"``, ``"module__dropout"``) to
dimensions, so a sampled point applies unchanged with ``estimator.set_params(**point)``. The automatic space is
conditional: the optimizer name is chosen first, then that optimizer's own hyperparameters (from its
:class:`~skopt_nn.optim.OptimizerSpec`), then the schedule name and its parameters, then the network's.

Optuna names a parameter once per study with one distribution, while ``optimizer__lr`` means a different range for
Lion than for AdaHessian; conditional parameters are therefore named ``"<choice>:<routing name>"`` inside the
study (``"lion:optimizer__lr"``) and renamed back to the routing name in the point returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from skopt_nn import optim
from skopt_nn import schedules as _schedules
from skopt_nn._space import Categorical, Dimension, Float, Int, OneMinusLog, Tuple
from skopt_nn._validation import invalid_param_message, unknown_name_error
from skopt_nn.estimators import TabularMLP

__all__ = [
    "DEFAULT_OPTIMIZERS",
    "DEFAULT_SCHEDULES",
    "SearchSpace",
    "auto_space",
    "final_step",
    "resolve_space",
    "suggest",
    "suggest_dimension",
]

# A default tuning portfolio: the common baselines and the paper optimizers that train any MLP with one lr.
# (lbfgs needs full batches; wrappers multiply the space; lr-free DoG is cheap to include.)
DEFAULT_OPTIMIZERS: tuple[str, ...] = (
    "adamw",
    "adam",
    "sgd",
    "radam",
    "diffgrad",
    "adamp",
    "lion",
    "lamb",
    "shampoo",
    "dog",
)
DEFAULT_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear", "sgdr", "onecycle")
_OPTUNA_SCALARS = (type(None), bool, int, float, str)


def suggest_dimension(trial: optuna.trial.BaseTrial, name: str, dim: Dimension | BaseDistribution) -> Any:
    """Ask ``trial`` for one value of ``dim`` under the study parameter ``name``.

    ``OneMinusLog(low, high)`` is searched as ``1 - x`` on a log scale (parameter ``"<name>:1-x"``); a ``Tuple`` as
    one parameter per item (``"<name>[i]"``); categorical choices that Optuna cannot store (tuples, ``None`` mixed
    with others is fine) are stored by their ``repr``.
    """
    if isinstance(dim, BaseDistribution):
        return trial._suggest(name, dim)  # type: ignore[attr-defined]
    if isinstance(dim, Float):
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    if isinstance(dim, Int):
        return trial.suggest_int(name, dim.low, dim.high, log=dim.log)
    if isinstance(dim, OneMinusLog):
        return 1.0 - trial.suggest_float(f"{name}:1-x", 1.0 - dim.high, 1.0 - dim.low, log=True)
    if isinstance(dim, Tuple):
        return tuple(suggest_dimension(trial, f"{name}[{i}]", item) for i, item in enumerate(dim.items))
    if isinstance(dim, Categorical):
        choices = dim.choices
        if all(isinstance(c, _OPTUNA_SCALARS) for c in choices):
            return trial.suggest_categorical(name, list(choices))
        shown = [repr(c) for c in choices]
        return choices[shown.index(trial.suggest_categorical(name, shown))]
    raise TypeError(f"Unknown dimension {dim!r} for {name!r}.")


@dataclass(frozen=True)
class SearchSpace:
    """A conditional space over an estimator's parameters.

    ``fixed``: dimensions always searched (routing name -> dimension). ``choices``: for each choice parameter
    (``"optimizer"``, ``"schedule"``), the candidate names and, per name, the dimensions that exist only when it is
    chosen. ``suggest(trial)`` returns a point keyed by routing names.
    """

    fixed: Mapping[str, Dimension | BaseDistribution] = field(default_factory=dict)
    choices: Mapping[str, Mapping[str, Mapping[str, Dimension]]] = field(default_factory=dict)

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for key, per_choice in self.choices.items():
            names = list(per_choice)
            chosen = trial.suggest_categorical(key, names) if len(names) > 1 else names[0]
            point[key] = chosen
            for routing, dim in per_choice[chosen].items():
                point[routing] = suggest_dimension(trial, f"{chosen}:{routing}", dim)
        for routing, fixed_dim in self.fixed.items():
            point[routing] = suggest_dimension(trial, routing, fixed_dim)
        return point

    def names(self) -> list[str]:
        """Every routing name a point can hold."""
        out = list(self.choices) + list(self.fixed)
        for per_choice in self.choices.values():
            for dims in per_choice.values():
                out += [k for k in dims if k not in out]
        return out


def _network_space(estimator: Any) -> dict[str, Dimension]:
    params = estimator.get_params(deep=False) if estimator is not None else {}
    space: dict[str, Dimension] = {}
    module = params.get("module")
    if module is None or module is TabularMLP:  # the default tabular MLP: its parameters are known
        space["module__hidden_layer_sizes"] = Categorical(((64,), (128,), (128, 64), (256, 128), (256, 256, 128)))
        space["module__dropout"] = Float(0.0, 0.5)
    space["batch_size"] = Categorical((32, 64, 128, 256))
    return space


def _check_names(kind: str, names: Iterable[str], known: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        if name not in known:
            raise unknown_name_error(kind, name, known)
        out.append(name)
    if not out:
        raise ValueError(f"The '{kind}s' of the search space must name at least one {kind}. Got none.")
    return out


def auto_space(
    estimator: Any = None,
    *,
    optimizers: Iterable[str] | None = None,
    schedules: Iterable[str] | None = None,
    network: bool = True,
) -> SearchSpace:
    """The default conditional space: optimizer -> its parameters -> schedule -> its parameters -> network.

    ``optimizers`` / ``schedules`` restrict the candidates (names from :func:`skopt_nn.optim.available` and
    :func:`skopt_nn.schedules.available`); ``network=False`` leaves the module and batch size alone. Each
    optimizer brings its registry space (lr on a log scale, betas as ``1 - beta`` on a log scale, weight decay,
    momentum...); lr-free optimizers have no lr.
    """
    opt_names = _check_names("optimizer", optimizers or DEFAULT_OPTIMIZERS, _known_optimizers())
    sched_names = _check_names("schedule", schedules or DEFAULT_SCHEDULES, _schedules.available())
    per_optimizer = {name: dict(optim.get(name).search_space()) for name in opt_names}
    per_schedule = {name: dict(_schedules.get(name).search_space()) for name in sched_names}
    return SearchSpace(
        fixed=_network_space(estimator) if network else {},
        choices={"optimizer": per_optimizer, "schedule": per_schedule},
    )


def _known_optimizers() -> list[str]:
    return optim.available(wrappers=False)


SpaceLike = str | SearchSpace | Mapping[str, Any] | Callable[[optuna.trial.BaseTrial], Mapping[str, Any]]


def resolve_space(space: SpaceLike, estimator: Any = None) -> Callable[[optuna.trial.BaseTrial], dict[str, Any]]:
    """``"auto"``, a :class:`SearchSpace`, a dict (routing name -> skopt_nn dimension or Optuna distribution; a
    list/tuple of values is a categorical), or a function ``trial -> dict`` -> a function ``trial -> point``."""
    if isinstance(space, str):
        if space != "auto":
            raise ValueError(invalid_param_message("space", "the search", "'auto', a dict or a function", space))
        final, prefix = final_step(estimator)
        auto = auto_space(final).suggest
        if not prefix:
            return auto
        return lambda trial: {prefix + key: value for key, value in auto(trial).items()}
    if isinstance(space, SearchSpace):
        # auto_space() names the network's parameters ("optimizer", "schedule__T_0"): routed to the last step of
        # a Pipeline the same way "auto" is (a dict space is taken as the estimator's own routing names)
        _, prefix = final_step(estimator)
        if not prefix:
            return space.suggest
        suggest = space.suggest
        return lambda trial: {prefix + key: value for key, value in suggest(trial).items()}
    if isinstance(space, Mapping):
        dims: dict[str, Dimension | BaseDistribution] = {}
        for key, value in space.items():
            dim = value
            if isinstance(dim, (list, tuple)) and not isinstance(dim, Tuple):
                dim = Categorical(tuple(dim))
            if not isinstance(dim, (Float, Int, Categorical, OneMinusLog, Tuple, BaseDistribution)):
                raise ValueError(
                    invalid_param_message(
                        f"space[{key!r}]",
                        "the search",
                        "a skopt_nn dimension (Float, Int, Categorical, OneMinusLog, Tuple), an Optuna distribution "
                        "or a list of choices",
                        dim,
                    )
                )
            dims[str(key)] = dim
        fixed = SearchSpace(fixed=dims)
        return fixed.suggest
    if callable(space):
        user = space

        def call(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
            point = user(trial)
            if not isinstance(point, Mapping):
                raise TypeError(f"The space function must return a dict of parameters; got {point!r}.")
            return dict(point)

        return call
    raise ValueError(invalid_param_message("space", "the search", "'auto', a dict or a function", space))


def final_step(estimator: Any) -> tuple[Any, str]:
    """The estimator that trains (the last step of a Pipeline) and the routing prefix that reaches it."""
    prefix = ""
    while hasattr(estimator, "steps") and estimator.steps:
        name, estimator = estimator.steps[-1]
        prefix += f"{name}__"
    return estimator, prefix


def suggest(trial: optuna.trial.BaseTrial, estimator: Any = None, space: SpaceLike = "auto") -> dict[str, Any]:
    """Sample one point of ``space`` for ``estimator`` with ``trial`` (for users writing their own objective).

    >>> import optuna
    >>> from skopt_nn import NeuralClassifier
    >>> from skopt_nn.search import suggest
    >>> def objective(trial):
    ...     params = suggest(trial, NeuralClassifier())
    ...     return len(params)  # fit NeuralClassifier().set_params(**params) and return a score
    """
    return resolve_space(space, estimator)(trial)
