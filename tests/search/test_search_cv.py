"""NeuralSearchCV: the study, its results, pruning, failures, storage, reproducibility, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier, NeuralRegressor, NeuralSearchCV
from skopt_nn._space import Categorical, Float
from skopt_nn.search import CrossEntropySampler, auto_space, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _net(**kwargs):
    params = dict(max_epochs=4, batch_size=64, module__hidden_layer_sizes=(16,))
    params.update(kwargs)
    return NeuralClassifier(**params)


SMALL = auto_space(optimizers=["adam", "lion", "dog"], schedules=["constant", "cosine"], network=False)


def test_search_fits_and_exposes_sklearn_results(cancer) -> None:
    X, y = cancer
    search = NeuralSearchCV(_net(), SMALL, n_trials=6, cv=2, random_state=0).fit(X, y)
    assert search.n_trials_ == 6 and search.n_splits_ == 2
    assert isinstance(search.study_, optuna.Study) and len(search.study_.trials) == 6
    frame = pd.DataFrame(search.cv_results_)
    assert len(frame) == 6
    for column in (
        "params",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "split0_test_score",
        "split1_test_score",
        "param_optimizer",
        "param_schedule",
        "state",
        "mean_fit_time",
    ):
        assert column in frame, column
    assert search.best_params_["optimizer"] in ("adam", "lion", "dog")
    assert search.best_params_ == search.cv_results_["params"][search.best_index_]
    assert search.cv_results_["rank_test_score"][search.best_index_] == 1
    assert search.best_score_ == pytest.approx(np.nanmax(frame["mean_test_score"]))
    complete = frame["state"] == "COMPLETE"
    means = frame.loc[complete, ["split0_test_score", "split1_test_score"]].mean(axis=1)
    np.testing.assert_allclose(means, frame.loc[complete, "mean_test_score"])
    # conditional parameters: lr-free DoG has no optimizer__lr
    for params in frame["params"]:
        assert ("optimizer__lr" in params) == (params["optimizer"] != "dog")
    # refit with the best parameters
    assert search.best_estimator_.optimizer == search.best_params_["optimizer"]
    assert search.predict(X).shape == (len(X),)
    assert search.predict_proba(X).shape == (len(X), 2)
    assert search.score(X, y) > 0.8
    assert list(search.classes_) == [0, 1]


def test_point_applies_with_set_params_and_the_auto_space_is_conditional(cancer) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, NeuralClassifier())
        seen.add(params["optimizer"])
        NeuralClassifier().set_params(**params)  # every key is a routing name
        names = set(trial.params)
        assert all(
            n.startswith((params["optimizer"] + ":", params["schedule"] + ":")) or ":" not in n
            for n in names
            if n not in ("optimizer", "schedule")
        ), names
        study.tell(trial, 0.0)
    assert len(seen) >= 6


def test_dict_and_callable_spaces(cancer) -> None:
    X, y = cancer
    space = {"optimizer": ["adam", "sgd"], "lr": Float(1e-3, 1e-1, log=True), "batch_size": Categorical((32, 64))}
    search = NeuralSearchCV(_net(), space, sampler="random", n_trials=3, cv=2, pruner=None, random_state=0)
    search.fit(X, y)
    assert set(search.best_params_) == {"optimizer", "lr", "batch_size"}

    def space_fn(trial):
        return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True), "optimizer": "adamw"}

    search = NeuralSearchCV(_net(), space_fn, n_trials=2, cv=2, refit=False).fit(X, y)
    assert search.best_params_["optimizer"] == "adamw"
    assert not hasattr(search, "best_estimator_")
    assert not hasattr(search, "predict")


def test_failing_and_diverging_trials_are_recorded_and_the_search_goes_on(cancer) -> None:
    X, y = cancer
    space = {
        "optimizer": ["sgd", "adam", "lion"],
        "lr": [1e12, 1e-3],  # sgd at lr 1e12 diverges (NaN loss)
        "optimizer__betas": [(0.9, 0.999), (1.5, 0.99)],  # an invalid beta: a clear ValueError for adam/lion
    }
    search = NeuralSearchCV(_net(), space, sampler="random", n_trials=16, cv=2, pruner=None, random_state=1)
    search.fit(X, y)
    frame = pd.DataFrame(search.cv_results_)
    assert (frame["state"] == "FAIL").any() and (frame["state"] == "COMPLETE").any()
    errors = " ".join(frame.loc[frame["state"] == "FAIL", "error"])
    assert "betas" in errors or "FloatingPointError" in errors
    assert frame.loc[frame["state"] == "FAIL", "mean_test_score"].isna().all()
    assert search.n_trials_ == 16


def test_every_trial_failing_is_a_clear_error(cancer) -> None:
    X, y = cancer
    space = {"optimizer": ["adam"], "optimizer__betas": [(2.0, 0.9)]}
    search = NeuralSearchCV(_net(), space, n_trials=2, cv=2, pruner=None)
    with pytest.raises(ValueError, match="The optimizer 'adam' rejected its arguments.*betas"):
        search.fit(X, y)  # the estimator's own error, raised once every trial has failed with it
    assert len(search.study_.trials) == 2
    assert all("betas" in e for e in search.cv_results_["error"])


def test_per_epoch_scores_reach_the_pruner(cancer) -> None:
    X, y = cancer
    pruner = optuna.pruners.ThresholdPruner(lower=0.97, n_warmup_steps=1)  # prunes almost everyone after 1 epoch
    search = NeuralSearchCV(
        _net(max_epochs=5, lr=1e-4, optimizer="sgd"),
        {"lr": [1e-4, 1e-3]},
        n_trials=4,
        cv=2,
        pruner=pruner,
        sampler="random",
        refit=False,
    )
    with pytest.raises(RuntimeError, match="pruned"):
        search.fit(X, y)
    trials = search.study_.trials
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert all(len(t.intermediate_values) == 2 for t in trials)  # epochs 0 and 1 of fold 0

    search = NeuralSearchCV(
        _net(max_epochs=3), {"lr": [1e-3, 1e-2]}, n_trials=2, cv=2, pruner="median", sampler="random"
    ).fit(X, y)
    steps = sorted(search.study_.trials[0].intermediate_values)
    assert steps == [0, 1, 2, 3, 4, 5]  # fold * max_epochs + epoch


@pytest.mark.parametrize("sampler", ["cem", "tpe", "random", "cmaes", "gp", "qmc"])
def test_samplers_by_name(cancer, sampler: str) -> None:
    X, y = cancer
    space = {"lr": Float(1e-3, 1e-1, log=True), "optimizer": ["adam", "sgd"]}
    search = NeuralSearchCV(
        _net(max_epochs=2), space, sampler=sampler, n_trials=3, cv=2, pruner=None, refit=False, random_state=0
    ).fit(X, y)
    assert search.n_trials_ == 3
    assert np.isfinite(search.best_score_)


def test_sqlite_storage_resumes_the_same_study(cancer, tmp_path) -> None:
    X, y = cancer
    url = f"sqlite:///{tmp_path / 'search.db'}"
    kwargs = dict(n_trials=3, cv=2, storage=url, study_name="resume", refit=False, random_state=0)
    first = NeuralSearchCV(_net(max_epochs=2), SMALL, **kwargs).fit(X, y)
    assert first.n_trials_ == 3
    first_params = [t.params for t in first.study_.trials]
    kwargs["n_trials"] = 5
    second = NeuralSearchCV(_net(max_epochs=2), SMALL, **kwargs).fit(X, y)
    assert second.n_trials_ == 5  # two more, same study
    assert [t.params for t in second.study_.trials[:3]] == first_params


def test_same_random_state_same_search(cancer) -> None:
    X, y = cancer
    runs = [
        NeuralSearchCV(_net(max_epochs=2), SMALL, n_trials=5, cv=2, random_state=7, refit=False).fit(X, y)
        for _ in range(2)
    ]
    assert runs[0].best_params_ == runs[1].best_params_
    np.testing.assert_array_equal(runs[0].cv_results_["mean_test_score"], runs[1].cv_results_["mean_test_score"])


def test_regressor_search_with_r2(cancer) -> None:
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    net = NeuralRegressor(max_epochs=10, module__hidden_layer_sizes=(16,))
    search = NeuralSearchCV(
        net, {"optimizer": ["adam"], "lr": [3e-3, 1e-2]}, n_trials=2, cv=KFold(2), sampler="random", random_state=0
    ).fit(X, y)
    assert search.best_score_ > 0.2
    assert search.predict(X).shape == (len(X),)


def test_clone_and_pickle(cancer) -> None:
    X, y = cancer
    search = NeuralSearchCV(_net(max_epochs=2), SMALL, n_trials=2, cv=2, random_state=0)
    assert clone(search).get_params()["n_trials"] == 2
    search.fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))


def test_cem_sampler_object_is_used(cancer) -> None:
    X, y = cancer
    sampler = CrossEntropySampler(population_size=3, seed=0)
    search = NeuralSearchCV(_net(max_epochs=2), SMALL, sampler=sampler, n_trials=4, cv=2, refit=False).fit(X, y)
    assert search.study_.sampler is sampler


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "The 'n_trials' parameter of NeuralSearchCV must be an int in the range [1, inf). Got 0"),
        ({"timeout": -1}, "The 'timeout' parameter of NeuralSearchCV must be a float in the range (0, inf) or None"),
        ({"sampler": "cme"}, "'cem'"),
        ({"pruner": "medain"}, "'median'"),
        ({"space": "everything"}, "The 'space' parameter"),
        ({"space": {"lr": object()}}, "space['lr']"),
        ({"n_jobs": 0}, "The 'n_jobs' parameter of NeuralSearchCV"),
    ],
)
def test_bad_input_is_a_clear_error(cancer, kwargs: dict, message: str) -> None:
    X, y = cancer
    params = dict(n_trials=1, cv=2)
    params.update(kwargs)
    with pytest.raises(ValueError) as info:
        NeuralSearchCV(_net(), **params).fit(X, y)
    assert message in str(info.value)


def test_auto_space_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="'adamw'"):
        auto_space(optimizers=["adamww"])
    with pytest.raises(ValueError, match="'cosine'"):
        auto_space(schedules=["cosin"])


def test_pipeline_with_mixed_columns_gets_the_auto_space_prefixed() -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(["x", "y"], 300)})
    y = ((frame["a"] + (frame["c"] == "x")) > 0.5).astype(int).to_numpy()
    prep = make_column_transformer((StandardScaler(), ["a", "b"]), (OneHotEncoder(), ["c"]))
    pipe = Pipeline([("prep", prep), ("net", _net(max_epochs=3))])
    search = NeuralSearchCV(pipe, n_trials=3, cv=2, random_state=0).fit(frame, y)
    assert all(key.startswith("net__") for key in search.best_params_)
    assert "net__optimizer" in search.best_params_
    reported = [t for t in search.study_.trials if t.intermediate_values]
    assert reported, "per-epoch scores reach the pruner through the Pipeline"
    assert search.predict(frame).shape == (300,)


def test_enqueued_portfolio_is_tried_first(cancer) -> None:
    X, y = cancer
    names = ["adam", "lion", "dog"]
    search = NeuralSearchCV(
        _net(max_epochs=2),
        SMALL,
        n_trials=4,
        cv=2,
        refit=False,
        random_state=0,
        enqueue=[{"optimizer": n} for n in names],
    ).fit(X, y)
    assert [t.params["optimizer"] for t in search.study_.trials[:3]] == names


def test_an_auto_space_object_is_routed_to_the_last_step_of_a_pipeline() -> None:
    """auto_space(...) names the network's parameters; with a Pipeline they must reach its last step (every
    trial failed with "Invalid parameter 'optimizer' for estimator Pipeline" before)."""
    import optuna
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skopt_nn import NeuralClassifier
    from skopt_nn.search import auto_space
    from skopt_nn.search._space import resolve_space

    pipe = make_pipeline(StandardScaler(), NeuralClassifier())
    space = auto_space(pipe, optimizers=["adamw", "sgd"], schedules=["constant"])
    point = resolve_space(space, pipe)(optuna.create_study().ask())
    assert point and all(key.startswith("neuralclassifier__") for key in point)
    pipe.set_params(**point)  # every name routes
