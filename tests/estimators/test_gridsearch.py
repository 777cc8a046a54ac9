"""GridSearchCV over optimizer names, in parallel, on a real bundled dataset (plain and in a Pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier

OPTIMIZERS = ["adam", "sgd", "rmsprop", "adamw"]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def test_grid_search_over_optimizer_names_in_parallel(cancer):
    X_train, X_test, y_train, y_test = cancer
    scaler = StandardScaler().fit(X_train)
    base = NeuralClassifier(max_epochs=10, batch_size=64, random_state=0, module__hidden_layer_sizes=(32,))
    search = GridSearchCV(base, {"optimizer": OPTIMIZERS, "lr": [1e-3, 1e-2]}, cv=3, n_jobs=2)
    search.fit(scaler.transform(X_train), y_train)
    assert len(search.cv_results_["params"]) == 8
    assert {p["optimizer"] for p in search.cv_results_["params"]} == set(OPTIMIZERS)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["optimizer"] in OPTIMIZERS
    assert search.best_estimator_.optimizer == search.best_params_["optimizer"]
    assert search.best_estimator_.score(scaler.transform(X_test), y_test) > 0.9


def test_grid_search_pipeline_with_scaler(cancer):
    X_train, X_test, y_train, y_test = cancer
    pipe = make_pipeline(
        StandardScaler(), NeuralClassifier(max_epochs=10, random_state=0, module__hidden_layer_sizes=(32,))
    )
    grid = {"neuralclassifier__optimizer": OPTIMIZERS, "neuralclassifier__lr": [3e-3, 3e-2]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X_train, y_train)
    predictions = search.best_estimator_.predict(X_test)
    assert predictions.shape == y_test.shape
    assert search.score(X_test, y_test) > 0.9


def test_cross_val_score_is_reproducible(cancer):
    X_train, _, y_train, _ = cancer
    pipe = make_pipeline(StandardScaler(), NeuralClassifier(max_epochs=5, random_state=0))
    a = cross_val_score(pipe, X_train, y_train, cv=3)
    b = cross_val_score(pipe, X_train, y_train, cv=3)
    np.testing.assert_array_equal(a, b)
