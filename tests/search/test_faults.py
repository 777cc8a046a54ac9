"""TESTING.md §3 for the search: faults inside trials are recorded and the study goes on; bad parameters of
NeuralSearchCV and of the cross-entropy sampler are clear errors raised before any training.

(Worker processes killed mid-trial and unreachable storage are tested with the distributed-study suite.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState
from torch import nn

from skopt_nn import NeuralClassifier, NeuralRegressor, NeuralSearchCV
from skopt_nn.search import CrossEntropySampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)


@pytest.fixture(scope="module")
def classification() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _reg(**kwargs: Any) -> NeuralRegressor:
    return NeuralRegressor(**{"max_epochs": 3, "batch_size": 16, "module__hidden_layer_sizes": (8,), **kwargs})


def _clf(**kwargs: Any) -> NeuralClassifier:
    return NeuralClassifier(**{"max_epochs": 2, "batch_size": 16, "module__hidden_layer_sizes": (4,), **kwargs})


def _frame(search: NeuralSearchCV) -> pd.DataFrame:
    return pd.DataFrame(search.cv_results_)


# ------------------------------------------------------------------------------------------- diverging trials


@pytest.mark.parametrize("sampler", ["cem", "tpe"])
@pytest.mark.parametrize("pruner", [None, "median"])
def test_a_diverging_trial_fails_with_its_error_and_the_study_goes_on(regression, sampler, pruner) -> None:
    """SGD at lr 1e6 and 1e38 makes the loss (or the weights) non-finite: those trials are FAIL with the
    FloatingPointError in ``cv_results_``, every other trial runs, and the best point is a finite one."""
    X, y = regression
    space = {"optimizer": ["adam", "sgd"], "lr": [1e-2, 3e-2, 1e6, 1e38]}
    diverging = [{"optimizer": "sgd", "lr": 1e6}, {"optimizer": "sgd", "lr": 1e38}]
    search = NeuralSearchCV(
        _reg(), space, sampler=sampler, pruner=pruner, n_trials=7, cv=2, random_state=0, enqueue=diverging
    ).fit(X, y)
    frame = _frame(search)
    assert len(frame) == 7 == search.n_trials_  # the study did not stop at the first failure
    for i in (0, 1):  # the enqueued points ran first
        assert frame["params"][i] == diverging[i]
        assert frame["state"][i] in ("FAIL", "PRUNED")
        error = frame["error"][i]
        assert error.startswith("FloatingPointError: ") and "diverged" in error, error
        assert search.study_.trials[i].user_attrs["error"] == error
        assert np.isnan(frame["mean_test_score"][i]) and np.isnan(frame["split0_test_score"][i])
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1 and np.isfinite(complete["mean_test_score"]).all()
    assert frame["rank_test_score"][search.best_index_] == 1
    assert search.best_params_ in list(complete["params"])
    assert search.best_params_["lr"] < 1.0 and np.isfinite(search.best_score_)
    assert search.best_score_ == pytest.approx(complete["mean_test_score"].max())
    assert np.all(np.isfinite(search.predict(X)))  # the refitted model is a finite one


def test_a_model_left_with_nan_weights_never_scores(classification) -> None:
    """One full-batch epoch at lr 1e38: every loss the fit sees is finite, the weights after the step are not.
    The trial must fail (a NaN classifier would otherwise score as 'always class 0')."""
    X, y = classification
    search = NeuralSearchCV(
        _clf(max_epochs=1, batch_size=-1),
        {"optimizer": ["sgd"], "lr": [1e-2, 1e38]},
        sampler="random",
        pruner=None,
        n_trials=3,
        cv=2,
        random_state=0,
        enqueue=[{"lr": 1e38}, {"lr": 1e-2}],
    ).fit(X, y)
    frame = _frame(search)
    bad = frame[[p["lr"] == 1e38 for p in frame["params"]]]
    assert len(bad) >= 1 and (bad["state"] == "FAIL").all()
    assert all(e.startswith("FloatingPointError: ") for e in bad["error"])
    assert search.best_params_["lr"] == 1e-2


# ------------------------------------------------------------------------------------------- raising trials


class Fragile(nn.Module):
    """A user module that raises in its forward pass when asked to (an arbitrary bug in user code)."""

    def __init__(self, n_features: int, n_outputs: int, fail: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)
        self.fail = fail

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("boom in forward")
        return self.linear(X)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_trial_that_raises_is_fail_with_the_error_and_the_study_continues(classification, n_jobs) -> None:
    X, y = classification
    search = NeuralSearchCV(
        NeuralClassifier(module=Fragile, max_epochs=2, batch_size=16),
        {"module__fail": [False, True], "lr": [1e-2, 3e-2]},
        sampler="random",
        n_trials=6,
        cv=2,
        n_jobs=n_jobs,
        random_state=0,
        enqueue=[{"module__fail": True}, {"module__fail": False}],
    ).fit(X, y)
    frame = _frame(search)
    assert len(frame) == 6
    failed = frame[[p["module__fail"] for p in frame["params"]]]
    assert len(failed) >= 1 and (failed["state"] == "FAIL").all()
    assert set(failed["error"]) == {"RuntimeError: boom in forward"}
    assert all(
        t.user_attrs["error"] == "RuntimeError: boom in forward"
        for t in search.study_.trials
        if t.params.get("module__fail")
    )
    ok = frame[[not p["module__fail"] for p in frame["params"]]]
    assert (ok["state"] == "COMPLETE").all() and (ok["error"] == "").all()
    assert search.best_params_["module__fail"] is False


def test_a_scorer_that_returns_nan_fails_that_trial_only(classification) -> None:
    X, y = classification

    def scorer(estimator: Any, X_: Any, y_: Any) -> float:
        if estimator.lr > 0.02:
            return float("nan")
        return float(np.mean(estimator.predict(X_) == y_))

    search = NeuralSearchCV(
        _clf(),
        {"lr": [1e-2, 3e-2]},
        scoring=scorer,
        sampler="random",
        pruner=None,
        n_trials=4,
        cv=2,
        random_state=0,
        enqueue=[{"lr": 3e-2}, {"lr": 1e-2}],
    ).fit(X, y)
    frame = _frame(search)
    nan_trials = frame[[p["lr"] == 3e-2 for p in frame["params"]]]
    assert (nan_trials["state"] == "FAIL").all()
    assert set(nan_trials["error"]) == {"FloatingPointError: the score of fold 0 is nan"}
    assert search.best_params_ == {"lr": 1e-2}


def test_a_space_function_that_raises_for_some_points_fails_those_trials_only(classification) -> None:
    X, y = classification

    def space(trial: optuna.Trial) -> dict[str, Any]:
        lr = trial.suggest_categorical("lr", [1e-2, 3e-2])
        if lr == 3e-2:
            raise RuntimeError("no such point")
        return {"lr": lr}

    search = NeuralSearchCV(
        _clf(),
        space,
        sampler="random",
        pruner=None,
        n_trials=4,
        cv=2,
        random_state=0,
        enqueue=[{"lr": 3e-2}, {"lr": 1e-2}],
    ).fit(X, y)
    frame = _frame(search)
    assert frame["state"][0] == "FAIL"
    assert frame["error"][0] == "RuntimeError: no such point (enqueued parameters {'lr': 0.03})"
    assert search.best_params_ == {"lr": 1e-2}


def test_an_enqueued_point_outside_the_space_is_a_clear_error(classification) -> None:
    X, y = classification
    search = NeuralSearchCV(
        _clf(), {"lr": [1e-2, 3e-2]}, sampler="random", pruner=None, n_trials=2, cv=2, enqueue=[{"lr": 7.0}]
    )
    try:
        search.fit(X, y)
    except ValueError as exc:
        assert "lr" in str(exc) and "7.0" in str(exc)
        assert not hasattr(search, "study_") or not search.study_.trials
        return
    assert "lr" in search.cv_results_["error"][0] and "7.0" in search.cv_results_["error"][0]


# ------------------------------------------------------------------------------------ data every trial rejects


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda X, y: (np.where(X > 1.5, np.nan, X), y), "Input X contains NaN"),
        (lambda X, y: (X, np.zeros_like(y)), "needs samples of at least 2 classes"),
        (lambda X, y: (X * 1e39, y), "X has values too large for NeuralClassifier's dtype='float32'"),
        (lambda X, y: (X.astype(object).astype(str).astype(object) + "x", y), "needs numeric X"),
    ],
    ids=["nan", "one-class", "float32-overflow", "strings"],
)
def test_data_that_every_trial_rejects_raises_the_estimators_own_error(classification, make, message) -> None:
    X, y = make(*classification)
    search = NeuralSearchCV(_clf(), {"lr": [1e-2, 3e-2]}, sampler="random", n_trials=2, cv=2, random_state=0)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        search.fit(X, y)
    assert all(t.state == TrialState.FAIL for t in search.study_.trials)


# --------------------------------------------------------------------------------- bad NeuralSearchCV params


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        (
            {"n_trials": 2.5},
            ValueError,
            "The 'n_trials' parameter of NeuralSearchCV must be an int in the range [1, inf). Got 2.5",
        ),
        (
            {"n_trials": True},
            ValueError,
            "The 'n_trials' parameter of NeuralSearchCV must be an int in the range [1, inf). Got True",
        ),
        (
            {"timeout": 0},
            ValueError,
            "The 'timeout' parameter of NeuralSearchCV must be a float in the range (0, inf) or None. Got 0",
        ),
        ({"timeout": "1"}, ValueError, "The 'timeout' parameter of NeuralSearchCV"),
        ({"sampler": "CEM"}, ValueError, "Unknown sampler 'CEM'. Did you mean 'cem'?"),
        ({"sampler": 42}, ValueError, "The 'sampler' parameter of NeuralSearchCV must be one of"),
        ({"pruner": 3}, ValueError, "The 'pruner' parameter of NeuralSearchCV must be one of"),
        ({"pruner": "hyperbnad"}, ValueError, "Unknown pruner 'hyperbnad'. Did you mean 'hyperband'?"),
        ({"cv": "five"}, ValueError, "Expected `cv` as an integer, a cross-validation object"),
        ({"cv": 1}, ValueError, "k-fold cross-validation requires at least one train/test split"),
        ({"cv": 100}, ValueError, "Cannot have number of splits n_splits=100 greater than the number of samples"),
        ({"scoring": "acuracy"}, ValueError, "The 'scoring' parameter of check_scoring must be"),
        ({"scoring": 3}, ValueError, "The 'scoring' parameter of check_scoring must be"),
        ({"space": 42}, ValueError, "The 'space' parameter of the search must be 'auto', a dict or a function. Got 42"),
        ({"space": ["lr"]}, ValueError, "The 'space' parameter of the search must be 'auto', a dict or a function"),
        (
            {"space": {"lr": "1e-3"}},
            ValueError,
            "The \"space['lr']\" parameter of the search must be a skopt_nn dimension",
        ),
        ({"refit": "yes"}, ValueError, "The 'refit' parameter of NeuralSearchCV must be a bool. Got 'yes'"),
        ({"n_jobs": "2"}, ValueError, "The 'n_jobs' parameter of NeuralSearchCV must be a non-zero int"),
    ],
    ids=lambda v: str(v)[:30] if isinstance(v, dict) else "",
)
def test_bad_search_parameter_is_a_clear_error_before_any_trial(classification, kwargs, error, fragment) -> None:
    X, y = classification
    params = {"space": {"lr": [1e-2, 3e-2]}, "n_trials": 2, "cv": 2, **kwargs}
    search = NeuralSearchCV(_clf(), **params)
    with pytest.raises(error) as info:
        search.fit(X, y)
    assert fragment in str(info.value), str(info.value)
    assert not hasattr(search, "study_")  # refused before the study was created


def test_bad_estimator_and_space_keys(classification) -> None:
    X, y = classification
    with pytest.raises(ValueError, match="The 'estimator' parameter of NeuralSearchCV must be a scikit-learn"):
        NeuralSearchCV(None, {"lr": [0.1]}, n_trials=1).fit(X, y)
    # a routing name the estimator does not have: scikit-learn's message naming the valid ones
    with pytest.raises(ValueError, match="Invalid parameter 'lrr' for estimator NeuralClassifier"):
        NeuralSearchCV(_clf(), {"lrr": [0.1, 0.2]}, n_trials=2, cv=2).fit(X, y)
    # a value the estimator refuses in every trial: the estimator's own one-sentence error
    with pytest.raises(ValueError) as info:
        NeuralSearchCV(_clf(), {"max_epochs": [0]}, n_trials=2, cv=2).fit(X, y)
    assert str(info.value) == (
        "The 'max_epochs' parameter of NeuralClassifier must be an int in the range [1, inf). Got 0 instead."
    )


def test_bad_random_state_is_a_clear_error(classification) -> None:
    X, y = classification
    with pytest.raises(ValueError, match="The 'random_state' parameter of NeuralSearchCV"):
        NeuralSearchCV(_clf(), {"lr": [0.1]}, n_trials=1, cv=2, random_state="x").fit(X, y)


def test_bad_enqueue_is_a_clear_error(classification) -> None:
    X, y = classification
    with pytest.raises(ValueError, match="The 'enqueue' parameter of NeuralSearchCV"):
        NeuralSearchCV(_clf(), {"lr": [0.1]}, n_trials=1, cv=2, enqueue={"lr": 0.1}).fit(X, y)


def test_bad_callbacks_are_a_clear_error_before_any_trial(classification) -> None:
    X, y = classification
    search = NeuralSearchCV(_clf(), {"lr": [0.1]}, n_trials=2, cv=2, callbacks=[3])
    with pytest.raises(ValueError, match="The 'callbacks' parameter of NeuralSearchCV"):
        search.fit(X, y)
    assert not hasattr(search, "study_")


# ------------------------------------------------------------------------------------------- bad sampler params


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"elite_fraction": 1.5},
            "The 'elite_fraction' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got 1.5 instead.",
        ),
        (
            {"elite_fraction": -0.1},
            "The 'elite_fraction' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got -0.1 instead.",
        ),
        (
            {"elite_fraction": float("nan")},
            "The 'elite_fraction' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got nan instead.",
        ),
        (
            {"smoothing": 0.0},
            "The 'smoothing' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got 0.0 instead.",
        ),
        (
            {"smoothing": -0.5},
            "The 'smoothing' parameter of CrossEntropySampler must be a float in the range (0.0, 1.0]. Got -0.5 instead.",
        ),
        (
            {"population_size": 2.0},
            "The 'population_size' parameter of CrossEntropySampler must be an int in the range [2, inf). Got 2.0 instead.",
        ),
        (
            {"population_size": True},
            "The 'population_size' parameter of CrossEntropySampler must be an int in the range [2, inf). Got True instead.",
        ),
        (
            {"population_size": 0},
            "The 'population_size' parameter of CrossEntropySampler must be an int in the range [2, inf). Got 0 instead.",
        ),
        (
            {"min_sigma": 1.0},
            "The 'min_sigma' parameter of CrossEntropySampler must be a float in the range [0.0, 1.0). Got 1.0 instead.",
        ),
        (
            {"min_sigma": float("inf")},
            "The 'min_sigma' parameter of CrossEntropySampler must be a float in the range [0.0, 1.0). Got inf instead.",
        ),
        (
            {"min_probability": 0.5},
            "The 'min_probability' parameter of CrossEntropySampler must be a float in the range [0.0, 0.5). Got 0.5 instead.",
        ),
        (
            {"n_startup_trials": -1},
            "The 'n_startup_trials' parameter of CrossEntropySampler must be an int in the range [0, inf). Got -1 instead.",
        ),
    ],
)
def test_bad_sampler_parameter_is_one_sentence(kwargs, message) -> None:
    with pytest.raises(ValueError) as info:
        CrossEntropySampler(**kwargs)
    assert str(info.value) == message


def test_a_multi_objective_study_is_refused_clearly() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=CrossEntropySampler(seed=0))
    message = "CrossEntropySampler supports single-objective studies only; this study has 2 objectives."
    with pytest.raises(ValueError) as info:
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1, catch=())
    assert str(info.value) == message
    assert study.trials[0].state == TrialState.FAIL
    trial = study.ask()
    with pytest.raises(ValueError, match="single-objective studies only"):
        study.sampler.sample_independent(study, trial, "x", optuna.distributions.FloatDistribution(0, 1))
