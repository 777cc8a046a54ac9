"""CrossEntropySampler: Optuna's own sampler suite, seed reproducibility, the CE update, and convergence."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
from optuna.trial import TrialState, create_trial

from skopt_nn.search import CrossEntropySampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestCrossEntropySampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: CrossEntropySampler(population_size=4, seed=0)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 1, 100, log=True)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    z = trial.suggest_float(f"z_{kind}", 1e-5, 1.0, log=True)
    return (x - 3) ** 2 + abs(math.log(y / 20)) + (0.0 if kind == "b" else 2.0) + abs(math.log10(z) + 2)


def _params(seed: int | None, n_trials: int = 30, n_jobs: int = 1) -> list[dict]:
    study = optuna.create_study(sampler=CrossEntropySampler(population_size=5, seed=seed))
    study.optimize(_objective, n_trials=n_trials, n_jobs=n_jobs)
    return [t.params for t in study.trials]


def test_same_seed_same_trials() -> None:
    assert _params(1) == _params(1)


def test_different_seed_different_trials() -> None:
    assert _params(1) != _params(2)


def test_reseed_rng_changes_the_draws() -> None:
    sampler = CrossEntropySampler(seed=0)
    first = sampler._rng.uniform()
    sampler = CrossEntropySampler(seed=0)
    sampler.reseed_rng()
    assert sampler._rng.uniform() != first


def test_the_independent_sampler_does_not_repeat_the_first_generation() -> None:
    """Trial 0 comes from the independent sampler, trial 1 from CE's own stream: seeded alike they were equal."""
    dists = {"a": FloatDistribution(1e-5, 0.1, log=True), "b": FloatDistribution(0.0, 1.0), "c": IntDistribution(1, 99)}
    for seed in range(5):
        study = optuna.create_study(sampler=CrossEntropySampler(seed=seed))
        for _ in range(2):
            trial = study.ask(dists)
            study.tell(trial, 0.0)
        first, second = (t.params for t in study.trials)
        assert all(first[k] != second[k] for k in ("a", "b")), (seed, first, second)


def test_values_are_plain_python_types() -> None:
    for params in _params(0, n_trials=25):
        for value in params.values():
            assert type(value) in (int, float, str), (value, type(value))


def _told(study: optuna.Study, params: dict, dists: dict, value: float | None, state=TrialState.COMPLETE) -> None:
    study.add_trial(create_trial(params=params, distributions=dists, value=value, state=state))


def test_one_generation_refits_mean_and_std_of_the_elites_with_smoothing() -> None:
    """Hand-computed CE update: N=5, rho=0.4 (2 elites), alpha=0.5 (alpha_sigma=0.25), uniform prior on [0, 10]."""
    sampler = CrossEntropySampler(
        population_size=5, elite_fraction=0.4, smoothing=0.5, sigma_smoothing=0.25, min_sigma=0.0, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    dist = {"x": FloatDistribution(0.0, 10.0), "c": CategoricalDistribution(["p", "q"])}
    rows = [(1.0, "p", 5.0), (2.0, "q", 1.0), (3.0, "q", 2.0), (9.0, "p", 9.0), (5.0, "p", 7.0)]
    for x, c, value in rows:
        _told(study, {"x": x, "c": c}, dist, value)
    state = sampler._fitted(study.get_trials(deepcopy=False), study.direction)
    # elites (minimise): x=2 (value 1), x=3 (value 2); both chose "q"
    mu_new, sigma_new = 2.5, 0.5
    prior_mu, prior_sigma = 5.0, 10.0 / math.sqrt(12.0)
    assert state["x"].mu == pytest.approx(0.5 * mu_new + 0.5 * prior_mu)
    assert state["x"].sigma == pytest.approx(0.25 * sigma_new + 0.75 * prior_sigma)
    floor = 0.02
    p_q = (1 - 2 * floor) * (0.5 * 1.0 + 0.5 * 0.5) + floor
    assert state["c"].p[1] == pytest.approx(p_q)
    assert sum(state["c"].p) == pytest.approx(1.0)


def test_maximize_takes_the_largest_values_as_elites() -> None:
    sampler = CrossEntropySampler(
        population_size=4, elite_fraction=0.5, smoothing=1.0, sigma_smoothing=1.0, min_sigma=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dist = {"x": FloatDistribution(0.0, 10.0)}
    for x in [1.0, 2.0, 8.0, 9.0]:
        _told(study, {"x": x}, dist, x)
    state = sampler._fitted(study.get_trials(deepcopy=False), study.direction)
    assert state["x"].mu == pytest.approx(8.5)
    assert state["x"].sigma == pytest.approx(0.5)


def test_pruned_and_failed_trials_are_never_elite() -> None:
    sampler = CrossEntropySampler(population_size=4, elite_fraction=0.5, smoothing=1.0, min_sigma=0.0)
    study = optuna.create_study(sampler=sampler)
    dist = {"x": FloatDistribution(0.0, 10.0)}
    _told(study, {"x": 0.0}, dist, None, state=TrialState.PRUNED)
    _told(study, {"x": 1.0}, dist, None, state=TrialState.FAIL)
    study.add_trial(  # pruned with an excellent intermediate value: still not elite
        create_trial(params={"x": 2.0}, distributions=dist, state=TrialState.PRUNED, intermediate_values={0: -100.0})
    )
    _told(study, {"x": 6.0}, dist, 5.0)
    _told(study, {"x": 8.0}, dist, 6.0)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4  # the failed trial is not part of any generation
    state = sampler._fitted(finished, study.direction)
    assert state["x"].mu == pytest.approx(7.0)


def test_conditional_parameter_is_fitted_on_the_elites_that_have_it() -> None:
    sampler = CrossEntropySampler(population_size=4, elite_fraction=0.75, smoothing=1.0, min_sigma=0.0)
    study = optuna.create_study(sampler=sampler)
    a = {"opt": CategoricalDistribution(["a", "b"]), "a:lr": FloatDistribution(1e-4, 1.0, log=True)}
    b = {"opt": CategoricalDistribution(["a", "b"]), "b:m": FloatDistribution(0.0, 1.0)}
    _told(study, {"opt": "a", "a:lr": 1e-3}, a, 1.0)
    _told(study, {"opt": "a", "a:lr": 1e-2}, a, 2.0)
    _told(study, {"opt": "b", "b:m": 0.5}, b, 3.0)
    _told(study, {"opt": "b", "b:m": 0.9}, b, 4.0)
    state = sampler._fitted(study.get_trials(deepcopy=False), study.direction)
    assert state["a:lr"].mu == pytest.approx(math.log(math.sqrt(1e-3 * 1e-2)))  # mean of the logs
    assert state["b:m"].mu == pytest.approx(0.5)  # only one elite has it
    space = sampler.infer_relative_search_space(study, study.trials[0])
    assert set(space) == {"opt", "a:lr", "b:m"}


def test_variance_floor_keeps_sampling_alive() -> None:
    sampler = CrossEntropySampler(
        population_size=4, elite_fraction=0.5, smoothing=1.0, sigma_smoothing=1.0, min_sigma=0.1, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    dist = {"x": FloatDistribution(0.0, 10.0)}
    for _ in range(3):  # identical elites: the ML std is 0
        for x, v in [(5.0, 0.0), (5.0, 0.0), (1.0, 9.0), (9.0, 9.0)]:
            _told(study, {"x": x}, dist, v)
    state = sampler._fitted(study.get_trials(deepcopy=False), study.direction)
    assert state["x"].sigma == pytest.approx(1.0)  # 0.1 of the range
    draws = [sampler._draw(dist["x"], state["x"]) for _ in range(200)]
    assert np.std(draws) > 0.5


def test_generations_come_from_the_storage_not_the_process(tmp_path) -> None:
    """Two sampler objects (two workers) on one storage agree on the fitted distribution."""
    url = f"sqlite:///{tmp_path / 'cem.db'}"
    first = CrossEntropySampler(population_size=5, seed=0)
    study = optuna.create_study(study_name="s", storage=url, sampler=first)
    study.optimize(_objective, n_trials=15)
    second = CrossEntropySampler(population_size=5, seed=1)
    other = optuna.load_study(study_name="s", storage=url, sampler=second)
    finished = [t for t in other.get_trials() if t.state == TrialState.COMPLETE]
    ordered = sorted(finished, key=lambda t: (t.datetime_complete, t.number))
    assert first._fitted(ordered, study.direction) == second._fitted(ordered, other.direction)


def test_parallel_threads_complete_every_trial() -> None:
    study = optuna.create_study(sampler=CrossEntropySampler(population_size=5, seed=0))
    study.optimize(_objective, n_trials=30, n_jobs=2)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"population_size": 1},
            "The 'population_size' parameter of CrossEntropySampler must be an int in the range [2, inf). Got 1 instead.",
        ),
        (
            {"elite_fraction": 0.0},
            "The 'elite_fraction' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got 0.0 instead.",
        ),
        (
            {"sigma_smoothing": 0.0},
            "The 'sigma_smoothing' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. "
            "Got 0.0 instead.",
        ),
        (
            {"smoothing": 1.5},
            "The 'smoothing' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got 1.5 instead.",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        CrossEntropySampler(**kwargs)
    assert str(info.value) == message


def test_beats_random_search_at_equal_budget() -> None:
    """A shifted quadratic with a categorical switch: CE's best is better than random's on most seeds."""

    def objective(trial: optuna.Trial) -> float:
        branch = trial.suggest_categorical("branch", ["flat", "good", "bad"])
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", 1e-4, 1.0, log=True)
        n = trial.suggest_int("n", 1, 64)
        offset = {"flat": 1.0, "good": 0.0, "bad": 3.0}[branch]
        return offset + (x - 1.3) ** 2 + (math.log10(y) + 2.5) ** 2 + ((n - 40) / 20) ** 2

    wins, ce_best, rnd_best = 0, [], []
    for seed in range(6):
        ce = optuna.create_study(sampler=CrossEntropySampler(seed=seed))
        ce.optimize(objective, n_trials=80)
        rnd = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        rnd.optimize(objective, n_trials=80)
        ce_best.append(ce.best_value)
        rnd_best.append(rnd.best_value)
        wins += ce.best_value < rnd.best_value
    assert wins >= 5, (ce_best, rnd_best)
    assert np.median(ce_best) < 0.5 * np.median(rnd_best), (ce_best, rnd_best)


def test_int_and_step_distributions_stay_on_the_grid() -> None:
    sampler = CrossEntropySampler(population_size=4, seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_int("a", 3, 9, step=2)
        b = trial.suggest_float("b", -1.0, 1.0, step=0.25)
        c = trial.suggest_int("c", 1, 1000, log=True)
        assert a in (3, 5, 7, 9) and (b * 4).is_integer() and 1 <= c <= 1000
        return a + b + math.log(c)

    study.optimize(objective, n_trials=30)
    assert isinstance(IntDistribution(3, 9, step=2), IntDistribution)
