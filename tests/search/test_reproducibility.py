"""random_state reproduces a whole sequential search: the same trials, the same scores, the same best point.

With ``n_jobs=1`` the search's ``random_state`` seeds the sampler and every estimator whose own ``random_state`` is
None, so two runs must agree bit for bit: the parameters of every trial, every fold score, the trial states
(pruning included) and ``best_params_`` / ``best_score_``. The CE runs are long enough to refit the sampling
distribution (more than one generation of ``population_size`` trials), so the fitted generations are covered
too; a different seed must give a different search (otherwise the test could not fail).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn.search import CrossEntropySampler, auto_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = auto_space(optimizers=["adam", "sgd", "lion"], schedules=["constant", "cosine"], network=False)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    return X, (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=80) > 0).astype(int)


def _search(sampler: Any, seed: int, pruner: str | None = "median", n_trials: int = 8) -> NeuralSearchCV:
    net = NeuralClassifier(max_epochs=2, batch_size=16, module__hidden_layer_sizes=(8,), module__dropout=0.1)
    return NeuralSearchCV(
        net, SPACE, sampler=sampler, pruner=pruner, n_trials=n_trials, cv=2, n_jobs=1, random_state=seed
    )


def _summary(search: NeuralSearchCV) -> dict[str, Any]:
    results = search.cv_results_
    return {
        "params": results["params"],
        "state": list(results["state"]),
        "split0": results["split0_test_score"].tolist(),
        "split1": results["split1_test_score"].tolist(),
        "intermediate": [t.intermediate_values for t in search.study_.trials],
        "best_params": search.best_params_,
        "best_score": search.best_score_,
    }


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["params"] == b["params"]
    assert a["state"] == b["state"]
    np.testing.assert_array_equal(a["split0"], b["split0"])  # NaN == NaN for failed/pruned trials
    np.testing.assert_array_equal(a["split1"], b["split1"])
    assert a["intermediate"] == b["intermediate"]
    assert a["best_params"] == b["best_params"] and a["best_score"] == b["best_score"]


@pytest.mark.parametrize("sampler", ["cem", "tpe"])
def test_same_seed_same_search(data, sampler) -> None:
    X, y = data
    first = _search(sampler, seed=3).fit(X, y)
    second = _search(sampler, seed=3).fit(X, y)
    _assert_same(_summary(first), _summary(second))
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))  # the refits too
    other = _search(sampler, seed=4).fit(X, y)
    assert _summary(other)["params"] != _summary(first)["params"]


def test_cem_reproduces_across_refitted_generations(data) -> None:
    """population_size 3 over 9 trials: two refits of the distribution, each a function of the seed only."""
    X, y = data
    runs = [
        _search(CrossEntropySampler(population_size=3, seed=11), seed=11, pruner=None, n_trials=9).fit(X, y)
        for _ in range(2)
    ]
    _assert_same(_summary(runs[0]), _summary(runs[1]))  # trials 4-9 were drawn from the refitted distributions


def test_the_estimators_own_seed_is_kept_and_none_takes_the_searchs(data) -> None:
    """One fixed point, searched with two search seeds: an estimator with its own random_state trains the same
    model in both; one with random_state=None is seeded by the search, so the two differ."""
    X, y = data
    fixed_point = {"optimizer": ["adam"], "lr": [1e-2]}

    def split_scores(estimator_seed: int | None, search_seed: int) -> tuple[float, float]:
        net = NeuralClassifier(
            max_epochs=2, batch_size=16, module__hidden_layer_sizes=(8,), random_state=estimator_seed
        )
        search = NeuralSearchCV(
            net, fixed_point, n_trials=1, cv=2, pruner=None, random_state=search_seed, refit=False
        ).fit(X, y)
        assert search.study_.trials[0].params == {"optimizer": "adam", "lr": 1e-2}
        return search.cv_results_["split0_test_score"][0], search.cv_results_["split1_test_score"][0]

    assert split_scores(5, 0) == split_scores(5, 1)
    assert split_scores(None, 0) == split_scores(None, 0)
    assert split_scores(None, 0) != split_scores(None, 1)
