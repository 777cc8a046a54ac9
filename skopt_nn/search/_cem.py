r"""The cross-entropy method (CEM) as an Optuna sampler.

The cross-entropy method (Rubinstein 1999; De Boer, Kroese, Mannor & Rubinstein, *A Tutorial on the Cross-Entropy
Method*, Annals of Operations Research 2005) optimises by repeatedly fitting a sampling distribution to the best
("elite") points it has drawn. Li & Li (*Cross-Entropy Optimization for Hyperparameter Optimization in Stochastic
Gradient-based Approaches to Train Deep Neural Networks*, 2024) apply it to hyperparameter optimisation (CEHPO).
This module defines it as an Optuna sampler (Optuna has none):

.. math::
    &\textbf{input: } N \text{ (population\_size)}, \rho \text{ (elite\_fraction)}, \alpha \text{ (smoothing)},
        \alpha_\sigma \text{ (sigma\_smoothing)}, \sigma_{\min}, p_{\min}\\
    &v_0 \leftarrow \text{uniform over the space} \\
    &\textbf{for } g = 1, 2, \dots \textbf{ (each block of } N \text{ finished trials, in order of completion)} \\
    &\quad E_g \leftarrow \text{the } \lceil \rho N \rceil \text{ best completed trials of the block (pruned, failed and
        NaN trials are never elite)} \\
    &\quad \text{numerical } x \text{ (in } t = \log x \text{ for log-scaled, } t = x \text{ otherwise):}\;
        \mu' = \operatorname{mean}_{E_g} t,\ \sigma' = \operatorname{std}_{E_g} t
        \quad\text{(the EM / maximum-likelihood M-step)} \\
    &\quad \text{categorical } c:\; p'_k = \tfrac{1}{|E_g|}\textstyle\sum_{E_g} 1[c = k] \\
    &\quad \mu_g \leftarrow \alpha\, \mu' + (1 - \alpha)\, \mu_{g-1},\quad
        p_g \leftarrow \alpha\, p' + (1 - \alpha)\, p_{g-1},\quad
        \sigma_g \leftarrow \alpha_\sigma\, \sigma' + (1 - \alpha_\sigma)\, \sigma_{g-1}
        \quad\text{(smoothing)} \\
    &\quad \sigma \leftarrow \max(\sigma, \sigma_{\min} \cdot \text{width}),\quad
        p \leftarrow (1 - K p_{\min})\, p + p_{\min}
        \quad\text{(no collapse)} \\
    &\textbf{sample: } t \sim \mathcal N(\mu, \sigma^2) \text{ truncated to the range; } c \sim p

The spread is smoothed more slowly than the mean (:math:`\alpha_\sigma < \alpha`). Kroese, Porotsky & Rubinstein
(*The Cross-Entropy Method for Continuous Multi-Extremal Optimization*, 2006) likewise give the standard deviation
its own smoothing weight (a decreasing one, for large populations); here it is a constant. With generations of five,
the maximum-likelihood spread of two elites is a poor, low estimate: smoothed like the mean (0.7) it shrank the
search to wherever the first generation pointed before the mean had moved (B5 in ``benchmarks/RESULTS.md``).

Each parameter has its own distribution (the product family of the tutorial). A conditional parameter (one that
exists only for some optimizers) is fitted on the elites that have it; until it has appeared among elites it is
drawn uniformly. Parameters are drawn jointly in ``sample_relative`` over the union of every parameter seen so far,
so a trial's conditional parameters come from the fitted distributions whichever branch it takes.

The state is rebuilt from the study's finished trials (cached incrementally), never from process-local history:
threads (``n_jobs > 1``) and processes sharing one storage see the same generations.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from skopt_nn._validation import Interval, check_float, check_int

__all__ = ["CrossEntropySampler"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_NUMBER = attrgetter("number")


@dataclass(frozen=True)
class _Normal:
    """A numerical parameter's distribution in the transformed space (log for log-scaled)."""

    mu: float
    sigma: float


@dataclass(frozen=True)
class _Probabilities:
    p: tuple[float, ...]


def _bounds(dist: FloatDistribution | IntDistribution) -> tuple[float, float]:
    """The range in the transformed space; integers and stepped floats extend half a step each side."""
    half = 0.0
    if isinstance(dist, IntDistribution) or dist.step is not None:
        half = 0.5 * float(dist.step if dist.step is not None else 1)
    low, high = float(dist.low) - half, float(dist.high) + half
    if dist.log:
        return math.log(max(low, float(dist.low) * 0.5)), math.log(high)
    return low, high


def _transform(dist: FloatDistribution | IntDistribution, value: float) -> float:
    return math.log(value) if dist.log else float(value)


class CrossEntropySampler(BaseSampler):
    """Cross-entropy-method sampler (CEHPO) for single-objective Optuna studies.

    Args:
        population_size: trials per generation ``N``; the distribution is refitted after every ``N`` finished
            trials (in order of completion).
        elite_fraction: fraction ``rho`` of a generation that is elite (at least 2 trials).
        smoothing: ``alpha`` in ``v <- alpha * v_new + (1 - alpha) * v_old`` for the means and the categorical
            probabilities (1 = no memory).
        sigma_smoothing: the same for the standard deviations; smaller than ``smoothing`` so that the spread shrinks
            more slowly than the mean moves.
        min_sigma: floor of a numerical parameter's standard deviation, as a fraction of its transformed range.
        min_probability: floor mixed into every categorical probability, in [0, 0.5); for a parameter with
            ``K`` choices the floor used is ``min(min_probability, 0.5 / K)``, so the fitted part keeps at least half
            the mass.
        n_startup_trials: before this many trials have finished, every parameter comes from
            ``independent_sampler`` (the first generation is drawn uniformly by CEM itself either way).
        independent_sampler: for parameters outside the relative search space (the first trial's, single-value
            ones); default :class:`optuna.samplers.RandomSampler` with a seed drawn from the sampler's own seeded
            stream (not ``seed`` itself).
        seed: seed of the sampler's random numbers.

    Example:
        >>> import optuna
        >>> from skopt_nn.search import CrossEntropySampler
        >>> study = optuna.create_study(sampler=CrossEntropySampler(seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=40)
        >>> abs(study.best_params["x"] - 2) < 0.5
        True
    """

    def __init__(
        self,
        *,
        population_size: int = 5,
        elite_fraction: float = 0.4,
        smoothing: float = 0.7,
        sigma_smoothing: float = 0.3,
        min_sigma: float = 0.05,
        min_probability: float = 0.02,
        n_startup_trials: int = 0,
        independent_sampler: BaseSampler | None = None,
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.population_size = check_int(population_size, "population_size", owner, Interval(2, None, "both"))
        self.elite_fraction = check_float(elite_fraction, "elite_fraction", owner, Interval(0.0, 1.0, "right"))
        self.smoothing = check_float(smoothing, "smoothing", owner, Interval(0.0, 1.0, "right"))
        self.sigma_smoothing = check_float(sigma_smoothing, "sigma_smoothing", owner, Interval(0.0, 1.0, "right"))
        self.min_sigma = check_float(min_sigma, "min_sigma", owner, Interval(0.0, 1.0, "left"))
        self.min_probability = check_float(min_probability, "min_probability", owner, Interval(0.0, 0.5, "left"))
        self.n_startup_trials = check_int(n_startup_trials, "n_startup_trials", owner, Interval(0, None, "left"))
        self._rng = np.random.RandomState(seed)
        # its own stream: seeded with ``seed`` itself, RandomSampler would draw the very numbers CE draws for the
        # first generation, and the first two trials would share their values
        independent_seed = None if seed is None else int(self._rng.randint(2**31 - 1))
        self._independent_sampler = independent_sampler or RandomSampler(seed=independent_seed)
        self._lock = threading.Lock()
        self._space_seen: set[int] = set()
        self._space: dict[str, BaseDistribution] = {}
        self._fit_key: tuple[int, ...] = ()
        self._fit_state: dict[str, _Normal | _Probabilities] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; the caches are plain data
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def n_elite(self) -> int:
        return max(2, math.ceil(self.elite_fraction * self.population_size))

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._independent_sampler.reseed_rng()

    # ------------------------------------------------------------------------------------------------ Optuna API

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _check_single_objective(study)
        with self._lock:
            trials = study.get_trials(deepcopy=False, states=_FINISHED)
            unseen, new = len(trials) - len(self._space_seen), []  # finished trials only ever grow
            for t in reversed(trials):  # ordered by number: new ones are usually at the end
                if unseen <= 0:
                    break
                if t.number not in self._space_seen:
                    unseen -= 1
                    self._space_seen.add(t.number)
                    new.append(t)
            for t in reversed(new):
                for name, dist in t.distributions.items():
                    if not dist.single():
                        self._space[name] = dist  # the latest distribution of a name wins (dynamic ranges)
            return dict(self._space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _check_single_objective(study)
        if not search_space:
            return {}
        finished = _finished_in_order(study)
        if len(finished) < self.n_startup_trials:
            return {}
        with self._lock:
            state = self._fitted(finished, study.direction)
            return {name: self._draw(dist, state.get(name)) for name, dist in search_space.items()}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        _check_single_objective(study)
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    # ------------------------------------------------------------------------------------------------ fitting

    def _fitted(self, finished: Sequence[FrozenTrial], direction: StudyDirection) -> dict[str, Any]:
        """The distribution after every complete generation of ``finished``, continuing from the cache when the
        generations already fitted are a prefix of the current ones."""
        n = self.population_size
        n_generations = len(finished) // n
        key = tuple(map(_NUMBER, finished[: n_generations * n]))
        if key[: len(self._fit_key)] == self._fit_key:
            start, state = len(self._fit_key) // n, dict(self._fit_state)
        else:  # completion order changed (another process finished earlier trials): refit from the start
            start, state = 0, {}
        for g in range(start, n_generations):
            self._update(state, finished[g * n : (g + 1) * n], direction)
        self._fit_key, self._fit_state = key, state
        return state

    def _update(self, state: dict[str, Any], generation: Sequence[FrozenTrial], direction: StudyDirection) -> None:
        scored = [
            t for t in generation if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ]
        scored.sort(key=lambda t: t.value if direction == StudyDirection.MINIMIZE else -t.value)  # type: ignore
        elites = scored[: self.n_elite]
        if not elites:
            return
        names = {name for t in elites for name in t.distributions if not t.distributions[name].single()}
        alpha = self.smoothing
        for name in sorted(names):
            having = [t for t in elites if name in t.params]
            dist = having[-1].distributions[name]
            if isinstance(dist, CategoricalDistribution):
                k = len(dist.choices)
                counts = np.zeros(k)
                for t in having:
                    counts[int(t.distributions[name].to_internal_repr(t.params[name]))] += 1
                old = state.get(name)
                p_old = np.asarray(old.p) if isinstance(old, _Probabilities) and len(old.p) == k else np.full(k, 1 / k)
                p = alpha * counts / counts.sum() + (1 - alpha) * p_old
                floor = min(self.min_probability, 0.5 / k)
                p = (1 - k * floor) * p + floor
                state[name] = _Probabilities(tuple(float(v) for v in p / p.sum()))
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                low, high = _bounds(dist)
                width = high - low
                values = np.array([_transform(t.distributions[name], t.params[name]) for t in having])  # type: ignore
                old = state.get(name)
                prior = _Normal(0.5 * (low + high), width / math.sqrt(12.0))  # the uniform's mean and std
                old = old if isinstance(old, _Normal) else prior
                mu_new = float(values.mean())
                sigma_new = float(values.std()) if len(values) > 1 else old.sigma
                mu = alpha * mu_new + (1 - alpha) * old.mu
                beta = self.sigma_smoothing
                sigma = max(beta * sigma_new + (1 - beta) * old.sigma, self.min_sigma * width)
                state[name] = _Normal(mu, sigma)

    # ------------------------------------------------------------------------------------------------ sampling

    def _draw(self, dist: BaseDistribution, fitted: _Normal | _Probabilities | None) -> Any:
        if isinstance(dist, CategoricalDistribution):
            k = len(dist.choices)
            if isinstance(fitted, _Probabilities) and len(fitted.p) == k:
                index = int(self._rng.choice(k, p=np.asarray(fitted.p)))
            else:
                index = int(self._rng.randint(k))
            return dist.to_external_repr(index)
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        low, high = _bounds(dist)
        if isinstance(fitted, _Normal):
            t = float("nan")
            for _ in range(32):  # truncated normal by rejection; clip after that (a far-off mean)
                t = float(self._rng.normal(fitted.mu, fitted.sigma))
                if low <= t <= high:
                    break
            t = min(max(t, low), high)
        else:
            t = float(self._rng.uniform(low, high))
        return _to_value(dist, t)


def _to_value(dist: FloatDistribution | IntDistribution, t: float) -> float | int:
    x = math.exp(t) if dist.log else t
    if isinstance(dist, IntDistribution):
        k = round((x - dist.low) / dist.step)
        return int(min(max(dist.low + k * dist.step, dist.low), dist.high))
    if dist.step is not None:
        k = round((x - dist.low) / dist.step)
        return float(min(max(dist.low + k * dist.step, dist.low), dist.high))
    return float(min(max(x, dist.low), dist.high))


def _finished_in_order(study: Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=_FINISHED)
    # finished trials always have datetime_complete; the trial number breaks ties
    return sorted(trials, key=attrgetter("datetime_complete", "number"))


def _check_single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(
            "CrossEntropySampler supports single-objective studies only; this study has "
            f"{len(study.directions)} objectives."
        )
