"""Learning-rate schedules through the estimators: per-batch stepping, routing, search, refinement."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV

from skopt_nn import NeuralClassifier, NeuralRegressor, schedules
from skopt_nn.estimators import GradientNormLogger

BASE = dict(optimizer="sgd", lr=0.1, max_epochs=4, batch_size=64, random_state=0, module__hidden_layer_sizes=(16,))


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _lrs(est):
    return np.concatenate([np.asarray(epoch, dtype=float) for epoch in est.history_[:, "batches", :, "lr"]])


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sgdr", {"T_0": 1, "T_mult": 2}),
        ("cosine", {"warmup_steps": 2, "eta_min": 0.1}),
        ("linear", {"warmup_fraction": 0.25}),
        ("constant_cooldown", {"cooldown_fraction": 0.5}),
        ("onecycle", {}),
    ],
)
def test_lr_of_every_batch_follows_the_schedule(wine, name, params):
    X, y = wine
    routed = {f"schedule__{k}": v for k, v in params.items()}
    clf = NeuralClassifier(**BASE, schedule=name, **routed).fit(X, y)
    per_epoch = 3  # 178 rows in batches of 64
    expected = 0.1 * np.array(schedules.create(name, **params).multipliers(4 * per_epoch, per_epoch))
    np.testing.assert_allclose(_lrs(clf), expected, rtol=1e-6)


def test_no_schedule_records_a_constant_lr(wine):
    X, y = wine
    clf = NeuralClassifier(**BASE).fit(X, y)
    np.testing.assert_array_equal(_lrs(clf), np.full(12, 0.1))


def test_schedule_object_is_not_modified_and_routing_overrides(wine):
    X, y = wine
    sched = schedules.SGDR(T_0=2, T_mult=1)
    clf = NeuralClassifier(**BASE, schedule=sched, schedule__T_0=1).fit(X, y)
    assert sched.T_0 == 2
    expected = 0.1 * np.array(schedules.SGDR(T_0=1, T_mult=1).multipliers(12, 3))
    np.testing.assert_allclose(_lrs(clf), expected, rtol=1e-6)


def test_set_params_and_clone_round_trip(wine):
    X, y = wine
    clf = NeuralClassifier(**BASE, schedule="sgdr", schedule__T_0=1)
    clf.set_params(schedule__T_0=2, schedule__T_mult=1)
    copy_ = clone(clf)
    assert copy_.get_params()["schedule__T_0"] == 2
    copy_.fit(X, y)
    expected = 0.1 * np.array(schedules.SGDR(T_0=2, T_mult=1).multipliers(12, 3))
    np.testing.assert_allclose(_lrs(copy_), expected, rtol=1e-6)
    copy_.set_params(schedule__T_0=1)  # after fit: stored for the next fit, no re-initialisation error
    assert copy_.fit(X, y).get_params()["schedule__T_0"] == 1


def test_horizon_is_max_epochs_even_when_early_stopping_cuts_the_run(wine):
    X, y = wine
    clf = NeuralClassifier(
        **{**BASE, "max_epochs": 50}, schedule="linear", early_stopping=True, n_iter_no_change=2, tol=10.0
    ).fit(X, y)
    lrs = _lrs(clf)
    per_epoch = clf._train_batches_per_epoch
    assert len(clf.history_) < 50
    expected = 0.1 * np.array(schedules.create("linear").multipliers(50 * per_epoch, per_epoch))[: len(lrs)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def test_grid_search_over_schedules(wine):
    X, y = wine
    search = GridSearchCV(
        NeuralClassifier(**BASE),
        {"schedule": [None, "cosine", "sgdr"], "schedule__warmup_steps": [0, 2]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_estimator_.predict(X).shape == y.shape


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schedule": "cosin"}, "Unknown schedule 'cosin'. Did you mean 'cosine', 'cosine_power'?"),
        (
            {"schedule": "sgdr", "schedule__T_0": 0},
            "The 'T_0' parameter of SGDR must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            {"schedule": "sgdr", "schedule__T_mult": 0.5},
            "The 'T_mult' parameter of SGDR must be a float in the range [1.0, inf). Got 0.5 instead.",
        ),
        (
            {"schedule": "linear", "schedule__warmup_steps": 1000},
            "The 'warmup_steps' parameter of Linear must be an int in the range [0, 11] for total_steps=12. Got 1000 instead.",
        ),
    ],
)
def test_bad_schedules_fail_before_training(wine, params, message):
    X, y = wine
    with pytest.raises(ValueError) as exc:
        NeuralClassifier(**{**BASE, **params}).fit(X, y)
    assert str(exc.value) == message


def test_refinement_end_to_end(wine):
    X, y = wine
    first = NeuralRegressor(**BASE, callbacks=[GradientNormLogger(norm_type=2.0)]).fit(X, y.astype(float))
    norms = first.history_[:, "batches", :, "grad_norm"]
    assert sum(len(e) for e in norms) == 12 and all(v > 0 for e in norms for v in e)
    refined = schedules.refined_from(first.history_, key="grad_norm", method="sgd")
    second = NeuralRegressor(**BASE, schedule=refined).fit(X, y.astype(float))
    lrs = _lrs(second)
    np.testing.assert_allclose(lrs, 0.1 * np.array(refined.multipliers(12, 3)), rtol=1e-6)
    assert lrs.max() == pytest.approx(0.1) and lrs[-1] == 0.0
