"""scikit-learn's estimator checks on NeuralSearchCV (a small fixed space, so each check runs a short study)."""

from __future__ import annotations

import optuna
from sklearn.utils.estimator_checks import parametrize_with_checks

from skopt_nn import NeuralClassifier, NeuralRegressor, NeuralSearchCV

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"lr": [1e-2, 3e-2]}


def expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": "fit forwards sample_weight to every fold's fit; the "
        "inner estimators' own xfail applies (see tests/estimators/test_sklearn_checks.py)",
    }


@parametrize_with_checks(
    [
        NeuralSearchCV(NeuralClassifier(max_epochs=20, random_state=0), SPACE, n_trials=2, cv=2, random_state=0),
        NeuralSearchCV(NeuralRegressor(max_epochs=20, random_state=0), SPACE, n_trials=2, cv=2, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
