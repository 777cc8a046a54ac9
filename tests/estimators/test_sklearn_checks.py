"""scikit-learn's own estimator checks, on the estimators as users configure them.

Every check passes for mini-batch Adam in float32 (the everyday configuration) except two, listed below with
their reasons; each reason names a configuration where the check does pass, and the second test proves it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import (
    check_methods_subset_invariance,
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from skopt_nn import NeuralClassifier, NeuralRegressor

_WEIGHT_REASON = (
    "fitting with integer weights equals fitting on repeated rows only up to rounding: in float32 the weighted and "
    "the repeated losses are sums in another order, and the 1e-7 differences grow during training beyond the "
    "check's rtol of 1e-7; with more rows than batch_size, a repeated row also lands in other shuffled batches. "
    "Full-batch float64 passes (test_full_batch_float64_passes_what_mini_batch_cannot)."
)
_SUBSET_REASON = (
    "float32 matrix products use another kernel for one row than for many, so a row's prediction moves by ~1e-7 "
    "with the batch it is predicted in (the check's atol is 1e-7); in float64 the check passes "
    "(test_full_batch_float64_passes_what_mini_batch_cannot)."
)


def expected_failed_checks(estimator):
    failures = {"check_sample_weight_equivalence_on_dense_data": _WEIGHT_REASON}
    if isinstance(estimator, NeuralClassifier):
        failures["check_methods_subset_invariance"] = _SUBSET_REASON
    return failures


def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


@parametrize_with_checks(
    [
        NeuralClassifier(max_epochs=20, lr=1e-2, random_state=0),
        NeuralRegressor(max_epochs=20, lr=1e-2, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    _seed_everything()
    check(estimator)


@pytest.mark.parametrize("cls", [NeuralClassifier, NeuralRegressor])
@pytest.mark.parametrize("check", [check_sample_weight_equivalence_on_dense_data, check_methods_subset_invariance])
def test_full_batch_float64_passes_what_mini_batch_cannot(cls, check):
    """Full-batch L-BFGS in float64: weights equal repetitions, and predictions do not depend on the batch."""
    _seed_everything()
    estimator = cls(optimizer="lbfgs", batch_size=-1, dtype="float64", max_epochs=5, random_state=0)
    check(cls.__name__, estimator)
