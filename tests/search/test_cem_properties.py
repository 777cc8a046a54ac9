"""Property-based tests (hypothesis) of the cross-entropy sampler's distribution fitting and sampling.

The fitting step is ``CrossEntropySampler._update(state, generation, direction)`` (one generation of finished
trials in, the per-parameter distributions updated in place) and sampling is ``_draw(distribution, fitted)``; the
tests compare them with a plain-numpy statement of the rules documented in ``skopt_nn/search/_cem.py``:

* the elites are the ``n_elite = max(2, ceil(rho N))`` best COMPLETE trials of the generation;
* a numerical parameter is a Gaussian in ``t = log x`` (log scale) or ``t = x``: ``mu' = mean(t)``,
  ``sigma' = std(t)`` (maximum likelihood, ``ddof=0``) over the elites that have the parameter; with one such
  elite ``sigma'`` is the previous ``sigma``; then ``mu = alpha mu' + (1 - alpha) mu_old`` and
  ``sigma = beta sigma' + (1 - beta) sigma_old`` (``beta`` = ``sigma_smoothing``; the first ``mu_old``, ``sigma_old``
  are the uniform's mean and std over the range, ints and stepped floats widened by half a step) and
  ``sigma = max(sigma, min_sigma * width)``;
* a categorical parameter: ``p = alpha * counts / n + (1 - alpha) * p_old`` (first ``p_old`` uniform), then
  ``p = (1 - K f) p + f`` with ``f = min(min_probability, 0.5 / K)``;
* draws stay inside the distribution (bounds, integer/step grid, log scale), whatever the fitted Gaussian.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from skopt_nn.search import CrossEntropySampler
from skopt_nn.search._cem import _bounds, _Normal, _Probabilities

optuna.logging.set_verbosity(optuna.logging.WARNING)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def numeric_distributions(draw: Any) -> FloatDistribution | IntDistribution:
    kind = draw(st.sampled_from(["float", "float_log", "float_step", "int", "int_step", "int_log"]))
    if kind == "float":
        low = draw(st.floats(-1e3, 1e3))
        return FloatDistribution(low, low + draw(st.floats(1e-3, 1e3)))
    if kind == "float_log":
        low = draw(st.floats(1e-6, 1e2))
        return FloatDistribution(low, low * draw(st.floats(1.01, 1e6)), log=True)
    if kind == "float_step":
        step = draw(st.sampled_from([0.25, 0.5, 2.0]))
        low = draw(st.integers(-20, 20)) * step
        return FloatDistribution(low, low + step * draw(st.integers(1, 40)), step=step)
    if kind == "int":
        low = draw(st.integers(-100, 100))
        return IntDistribution(low, low + draw(st.integers(1, 200)))
    if kind == "int_step":
        step = draw(st.integers(2, 5))
        low = draw(st.integers(-50, 50))
        return IntDistribution(low, low + step * draw(st.integers(1, 30)), step=step)
    low = draw(st.integers(1, 50))
    return IntDistribution(low, low + draw(st.integers(1, 5000)), log=True)


def _grid(dist: FloatDistribution | IntDistribution) -> st.SearchStrategy:
    """Values a trial can hold for ``dist``."""
    if isinstance(dist, IntDistribution):
        return st.integers(0, (dist.high - dist.low) // dist.step).map(lambda k: dist.low + k * dist.step)
    if dist.step is not None:
        n = int(round((dist.high - dist.low) / dist.step))
        return st.integers(0, n).map(lambda k: float(min(dist.low + k * dist.step, dist.high)))
    return st.floats(dist.low, dist.high, allow_nan=False)


def _t(dist: FloatDistribution | IntDistribution, value: float) -> float:
    return math.log(value) if dist.log else float(value)


def _trial(
    params: dict[str, Any], dists: dict[str, Any], value: float | None, state=TrialState.COMPLETE
) -> FrozenTrial:
    return create_trial(params=params, distributions=dists, value=value, state=state)


def _sampler(
    population: int, rho: float, alpha: float, min_sigma: float, min_p: float = 0.02, beta: float = 0.3
) -> CrossEntropySampler:
    return CrossEntropySampler(
        population_size=population,
        elite_fraction=rho,
        smoothing=alpha,
        sigma_smoothing=beta,
        min_sigma=min_sigma,
        min_probability=min_p,
    )


def _elites(generation: list[FrozenTrial], n_elite: int, maximize: bool) -> list[FrozenTrial]:
    scored = [t for t in generation if t.state == TrialState.COMPLETE]
    return sorted(scored, key=lambda t: -t.value if maximize else t.value)[:n_elite]  # type: ignore[operator]


# ------------------------------------------------------------------------------------------ Gaussian fitting


@SETTINGS
@given(
    dist=numeric_distributions(),
    data=st.data(),
    population=st.integers(2, 12),
    rho=st.floats(0.05, 1.0),
    alpha=st.floats(0.01, 1.0),
    beta=st.floats(0.01, 1.0),
    min_sigma=st.floats(0.0, 0.5),
    maximize=st.booleans(),
    generations=st.integers(1, 3),
)
def test_gaussian_is_the_smoothed_ml_fit_of_the_elites_with_the_sigma_floor(
    dist, data, population, rho, alpha, beta, min_sigma, maximize, generations
) -> None:
    sampler = _sampler(population, rho, alpha, min_sigma, beta=beta)
    direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE
    low, high = _bounds(dist)
    width = high - low
    mu, sigma = 0.5 * (low + high), width / math.sqrt(12.0)  # the uniform prior
    state: dict[str, Any] = {}
    for _ in range(generations):
        states = data.draw(
            st.lists(
                st.sampled_from([TrialState.COMPLETE] * 4 + [TrialState.PRUNED]),
                min_size=population,
                max_size=population,
            )
        )
        generation = [
            _trial(
                {"x": data.draw(_grid(dist))},
                {"x": dist},
                data.draw(finite) if s == TrialState.COMPLETE else None,
                state=s,
            )
            for s in states
        ]
        sampler._update(state, generation, direction)
        elites = _elites(generation, sampler.n_elite, maximize)
        if not elites:
            assert "x" not in state or state["x"] == _Normal(mu, sigma)  # nothing to learn from: unchanged
            continue
        t = np.array([_t(dist, e.params["x"]) for e in elites])
        sigma_new = float(t.std()) if len(t) > 1 else sigma
        mu = alpha * float(t.mean()) + (1 - alpha) * mu
        sigma = max(beta * sigma_new + (1 - beta) * sigma, min_sigma * width)
        fitted = state["x"]
        assert isinstance(fitted, _Normal)
        assert fitted.mu == pytest.approx(mu, rel=1e-9, abs=1e-9 * max(1.0, width))
        assert fitted.sigma == pytest.approx(sigma, rel=1e-9, abs=1e-9 * max(1.0, width))
        assert fitted.sigma >= min_sigma * width * (1 - 1e-12)


# --------------------------------------------------------------------------------------- categorical fitting


@SETTINGS
@given(
    k=st.integers(1, 8),
    data=st.data(),
    population=st.integers(2, 10),
    rho=st.floats(0.05, 1.0),
    alpha=st.floats(0.01, 1.0),
    min_p=st.floats(0.0, 0.49),
    generations=st.integers(1, 3),
)
def test_categorical_probabilities_sum_to_one_and_respect_the_floor(
    k, data, population, rho, alpha, min_p, generations
) -> None:
    sampler = _sampler(population, rho, alpha, 0.0, min_p)
    choices = [f"c{i}" for i in range(k)]
    dist = CategoricalDistribution(choices)
    floor = min(min_p, 0.5 / k)
    p = np.full(k, 1.0 / k)
    state: dict[str, Any] = {}
    for _ in range(generations):
        generation = [
            _trial({"c": data.draw(st.sampled_from(choices))}, {"c": dist}, data.draw(finite))
            for _ in range(population)
        ]
        sampler._update(state, generation, StudyDirection.MINIMIZE)
        if k == 1:
            assert "c" not in state  # a single choice is fixed, nothing to fit
            return
        elites = _elites(generation, sampler.n_elite, maximize=False)
        counts = np.bincount([choices.index(e.params["c"]) for e in elites], minlength=k)
        p = alpha * counts / counts.sum() + (1 - alpha) * p
        p = (1 - k * floor) * p + floor
        p = p / p.sum()
        fitted = state["c"]
        assert isinstance(fitted, _Probabilities) and len(fitted.p) == k
        np.testing.assert_allclose(fitted.p, p, rtol=1e-12, atol=1e-15)
        assert sum(fitted.p) == pytest.approx(1.0, abs=1e-12)
        assert min(fitted.p) >= floor * (1 - 1e-12)


# ------------------------------------------------------------------------------------------- conditional


@SETTINGS
@given(
    branches=st.lists(st.sampled_from(["a", "b"]), min_size=4, max_size=10),
    data=st.data(),
    alpha=st.floats(0.05, 1.0),
)
def test_conditional_parameters_are_fitted_only_on_the_elites_that_have_them(branches, data, alpha) -> None:
    population = len(branches)
    sampler = _sampler(population, 0.5, alpha, 0.0)
    branch = CategoricalDistribution(["a", "b"])
    dx, dy = FloatDistribution(0.0, 10.0), FloatDistribution(1e-4, 1.0, log=True)
    generation = []
    for b in branches:
        if b == "a":
            params, dists = {"opt": "a", "a:x": data.draw(st.floats(0.0, 10.0))}, {"opt": branch, "a:x": dx}
        else:
            params, dists = {"opt": "b", "b:y": data.draw(st.floats(1e-4, 1.0))}, {"opt": branch, "b:y": dy}
        generation.append(_trial(params, dists, data.draw(finite)))
    state: dict[str, Any] = {}
    sampler._update(state, generation, StudyDirection.MINIMIZE)
    elites = _elites(generation, sampler.n_elite, maximize=False)
    for name, dist in (("a:x", dx), ("b:y", dy)):
        having = [e for e in elites if name in e.params]
        if not having:
            assert name not in state  # never elite yet: it stays uniform
            continue
        low, high = _bounds(dist)
        t = np.array([_t(dist, e.params[name]) for e in having])
        expected = alpha * t.mean() + (1 - alpha) * 0.5 * (low + high)
        assert state[name].mu == pytest.approx(expected, rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------------------------- sampling


@SETTINGS
@given(
    dist=numeric_distributions(),
    mu=st.floats(-1e4, 1e4),
    sigma=st.floats(1e-9, 1e4),
    seed=st.integers(0, 2**31 - 1),
)
def test_draws_stay_inside_the_distribution_whatever_the_fit(dist, mu, sigma, seed) -> None:
    sampler = CrossEntropySampler(seed=seed)
    for fitted in (_Normal(mu, sigma), None):
        for _ in range(20):
            value = sampler._draw(dist, fitted)
            assert dist.low <= value <= dist.high, (dist, fitted, value)
            if isinstance(dist, IntDistribution):
                assert type(value) is int and (value - dist.low) % dist.step == 0
            else:
                assert type(value) is float
                if dist.step is not None:
                    k = (value - dist.low) / dist.step
                    assert abs(k - round(k)) < 1e-6, (dist, value)
            assert dist._contains(dist.to_internal_repr(value))


@SETTINGS
@given(
    k=st.integers(1, 6),
    weights=st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6),
    seed=st.integers(0, 2**31 - 1),
)
def test_categorical_draws_are_choices(k, weights, seed) -> None:
    choices = [None, 1, 2.5, "x", True, "y"][:k]
    dist = CategoricalDistribution(choices)
    w = np.asarray(weights[:k]) + 1e-3
    fitted = _Probabilities(tuple(float(v) for v in w / w.sum()))
    sampler = CrossEntropySampler(seed=seed)
    for _ in range(20):
        assert sampler._draw(dist, fitted) in choices
        assert sampler._draw(dist, None) in choices


def test_draws_follow_the_fitted_probabilities() -> None:
    """Not only inside the choices: in the fitted proportions (a chi-square-style bound over 4000 draws)."""
    dist = CategoricalDistribution(["a", "b", "c"])
    p = (0.7, 0.2, 0.1)
    sampler = CrossEntropySampler(seed=0)
    draws = [sampler._draw(dist, _Probabilities(p)) for _ in range(4000)]
    freq = np.array([draws.count(c) for c in "abc"]) / 4000
    np.testing.assert_allclose(freq, p, atol=0.03)


@SETTINGS
@given(dist=numeric_distributions(), seed=st.integers(0, 2**31 - 1))
def test_a_narrow_fit_concentrates_the_draws_around_its_mean(dist, seed) -> None:
    """The Gaussian is used: with a tiny sigma every draw is the grid point (or value) at its mean."""
    if isinstance(dist, IntDistribution) or dist.step is not None:
        n = int(round((dist.high - dist.low) / dist.step))
        target: float = dist.low + dist.step * (n // 2)
    else:
        target = 0.5 * (dist.low + dist.high)
    low, high = _bounds(dist)
    sampler = CrossEntropySampler(seed=seed)
    values = [sampler._draw(dist, _Normal(_t(dist, target), 1e-9 * (high - low))) for _ in range(10)]
    assert all(v == pytest.approx(target, rel=1e-6, abs=1e-9) for v in values), (dist, target, values)
