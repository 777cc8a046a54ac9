"""TESTING.md §3 for the estimators: bad parameters, bad data and divergence give one clear error, never a torch
stack trace and never a silent NaN model.

tests/estimators/test_estimators.py already covers the first layer (NaN/inf/empty/complex/sparse X at fit, one
class, a wrong feature count at predict, an unknown optimizer name, a loss that becomes NaN); these tests cover
the rest: predict-time data, pandas, y, label types, values that overflow float32, components of the wrong type,
misspelt routed names, and the state an estimator is left in after its fit diverged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.exceptions import NotFittedError

from skopt_nn import NeuralClassifier, NeuralRegressor
from skopt_nn.schedules import SGDR

FAST: dict[str, Any] = dict(max_epochs=1, batch_size=16, module__hidden_layer_sizes=(4,), random_state=0)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    return X, (X[:, 0] > 0).astype(int), X @ np.array([1.0, -2.0, 0.5])


@pytest.fixture(scope="module")
def fitted(data) -> tuple[NeuralClassifier, NeuralRegressor]:
    X, y, t = data
    return NeuralClassifier(**FAST).fit(X, y), NeuralRegressor(**FAST).fit(X, t)


def raises_clearly(error: type[Exception], fragment: str, call: Callable[[], Any]) -> str:
    """``call()`` raises ``error`` whose message contains ``fragment``, raised by our code or scikit-learn's
    validation, never from inside torch; returns the message."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert fragment in message, message
    origin = str(info.traceback[-1].path)
    assert "/torch/" not in origin, f"raised inside torch ({origin}): {message}"
    return message


# ------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (
            NeuralClassifier,
            {"lr": float("inf")},
            "The 'lr' parameter of NeuralClassifier must be a float in the range (0.0, inf) or None. Got inf instead.",
        ),
        (
            NeuralRegressor,
            {"lr": float("nan")},
            "The 'lr' parameter of NeuralRegressor must be a float in the range (0.0, inf) or None. Got nan instead.",
        ),
        (
            NeuralRegressor,
            {"lr": "0.1"},
            "The 'lr' parameter of NeuralRegressor must be a float in the range (0.0, inf) or None. Got '0.1' instead.",
        ),
        (
            NeuralRegressor,
            {"max_epochs": 0},
            "The 'max_epochs' parameter of NeuralRegressor must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            NeuralClassifier,
            {"max_epochs": 2.0},
            "The 'max_epochs' parameter of NeuralClassifier must be an int in the range [1, inf). Got 2.0 instead.",
        ),
        (
            NeuralClassifier,
            {"max_epochs": True},
            "The 'max_epochs' parameter of NeuralClassifier must be an int in the range [1, inf). Got True instead.",
        ),
        (
            NeuralClassifier,
            {"batch_size": "32"},
            "The 'batch_size' parameter of NeuralClassifier must be an int in the range [1, inf) or -1. Got '32' instead.",
        ),
        (
            NeuralRegressor,
            {"batch_size": 2.5},
            "The 'batch_size' parameter of NeuralRegressor must be an int in the range [1, inf) or -1. Got 2.5 instead.",
        ),
        (
            NeuralClassifier,
            {"batch_size": -2},
            "The 'batch_size' parameter of NeuralClassifier must be an int in the range [1, inf) or -1. Got -2 instead.",
        ),
        (
            NeuralClassifier,
            {"batch_size": None},
            "The 'batch_size' parameter of NeuralClassifier must be an int in the range [1, inf) or -1. Got None instead.",
        ),
        (
            NeuralClassifier,
            {"tol": -1e-3},
            "The 'tol' parameter of NeuralClassifier must be a float in the range [0.0, inf). Got -0.001 instead.",
        ),
        (
            NeuralClassifier,
            {"clip_grad_norm": float("inf")},
            "The 'clip_grad_norm' parameter of NeuralClassifier must be a float in the range (0.0, inf) or None. "
            "Got inf instead.",
        ),
        (
            NeuralClassifier,
            {"verbose": -1},
            "The 'verbose' parameter of NeuralClassifier must be an int in the range [0, inf). Got -1 instead.",
        ),
        (
            NeuralClassifier,
            {"random_state": "seed"},
            "The 'random_state' parameter of NeuralClassifier must be an int, a numpy RandomState or None. "
            "Got 'seed' instead.",
        ),
        (
            NeuralClassifier,
            {"callbacks": [3]},
            "The 'callbacks' parameter of NeuralClassifier must be None, 'disable' or a list of callbacks or "
            "(name, callback) pairs. Got [3] instead.",
        ),
        (
            NeuralClassifier,
            {"warm_start": 1},
            "The 'warm_start' parameter of NeuralClassifier must be a bool. Got 1 instead.",
        ),
        (
            NeuralRegressor,
            {"scale_target": "yes"},
            "The 'scale_target' parameter of NeuralRegressor must be a bool. Got 'yes' instead.",
        ),
        (
            NeuralClassifier,
            {"optimizer": 3},
            "The 'optimizer' parameter of NeuralClassifier must be an optimizer name (see skopt_nn.optim.available()), "
            "an Optimizer subclass or a factory. Got 3 instead.",
        ),
        (
            NeuralRegressor,
            {"optimizer": None},
            "The 'optimizer' parameter of NeuralRegressor must be an optimizer name (see skopt_nn.optim.available()), "
            "an Optimizer subclass or a factory. Got None instead.",
        ),
        (
            NeuralClassifier,
            {"optimizer": torch.nn.Linear},
            "The 'optimizer' parameter of NeuralClassifier must be an optimizer name (see skopt_nn.optim.available()), "
            "an Optimizer subclass or a factory. Got <class 'torch.nn.modules.linear.Linear'> instead.",
        ),
        (
            NeuralClassifier,
            {"schedule": 3},
            "The 'schedule' parameter of NeuralClassifier must be a schedule name (see skopt_nn.schedules.available()), "
            "a Schedule object or None. Got 3 instead.",
        ),
        (
            NeuralClassifier,
            {"module": 3},
            "The 'module' parameter of NeuralClassifier must be a torch.nn.Module class or instance, or a factory "
            "returning one. Got 3 instead.",
        ),
        (
            NeuralRegressor,
            {"criterion": "mse"},
            "The 'criterion' parameter of NeuralRegressor must be a loss class or instance (a torch.nn.Module) or "
            "None. Got 'mse' instead.",
        ),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else (str(v)[:40] if isinstance(v, dict) else ""),
)
def test_bad_parameter_is_one_sentence_naming_it(data, cls, kwargs, message) -> None:
    X, y, t = data
    est = cls(**{**FAST, **kwargs})
    with pytest.raises(ValueError) as info:
        est.fit(X, y if cls is NeuralClassifier else t)
    assert str(info.value) == message
    assert not est.initialized_  # refused before anything was built or trained


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "cosinee"}, "Unknown schedule 'cosinee'. Did you mean 'cosine', 'cosine_power'?"),
        ({"schedule": "sgdr", "schedule__T0": 3}, "Unknown SGDR parameter 'T0'. Did you mean 'T_0'?"),
        (
            {"schedule": SGDR(T_0=0)},
            "The 'T_0' parameter of SGDR must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            {"schedule": "sgdr", "schedule__T_mult": float("inf")},
            "The 'T_mult' parameter of SGDR must be a float in the range [1.0, inf). Got inf instead.",
        ),
        (
            {"schedule": "cosine", "schedule__warmup_fraction": 1.0},
            "The 'warmup_fraction' parameter of Cosine must be a float in the range [0.0, 1.0). Got 1.0 instead.",
        ),
        (
            {"schedule": "onecycle", "schedule__warmup_steps": 2},
            "The 'warmup_steps' parameter of OneCycle must be 0 (OneCycle warms up itself over the first pct_start "
            "of the steps). Got 2 instead.",
        ),
        (
            # 40 rows in batches of 16, 16 and 8: a one-epoch run has 3 steps, too few for a 3-step warm-up
            {"schedule": "linear", "schedule__warmup_steps": 3},
            "The 'warmup_steps' parameter of Linear must be an int in the range [0, 2] for total_steps=3. "
            "Got 3 instead.",
        ),
    ],
)
def test_bad_schedule_is_refused_before_training(data, kwargs, message) -> None:
    X, y, _ = data
    est = NeuralClassifier(**FAST, **kwargs)
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    assert str(info.value) == message
    history = est.history_  # None, or (for errors that need the run's length) no step recorded
    assert history is None or not any("train_loss" in batch for epoch in history for batch in epoch["batches"])


def test_unknown_optimizer_without_close_match_lists_the_known_names(data) -> None:
    X, y, _ = data
    message = raises_clearly(
        ValueError,
        "Unknown optimizer 'zzqqxx'. Known names: ",
        lambda: NeuralClassifier(**FAST, optimizer="zzqqxx").fit(X, y),
    )
    assert "adam" in message and "sgd" in message and "pytorch_optimizer:" in message


def test_misspelt_module_and_criterion_arguments_list_close_matches(data) -> None:
    X, y, t = data
    message = raises_clearly(
        ValueError,
        "Unknown TabularMLP parameter 'dropuot'. Did you mean 'dropout'?",
        lambda: NeuralClassifier(**FAST, module__dropuot=0.1).fit(X, y),
    )
    assert "module__dropuot" in message
    raises_clearly(
        ValueError,
        "Unknown TabularMLP parameter 'depth'. Known names: activation, dropout, hidden_layer_sizes, n_features, "
        "n_outputs, norm.",
        lambda: NeuralRegressor(**FAST, module__depth=3).fit(X, t),
    )
    raises_clearly(
        ValueError,
        "Unknown HuberLoss parameter 'delt'. Did you mean 'delta'?",
        lambda: NeuralRegressor(**FAST, criterion=torch.nn.HuberLoss, criterion__delt=0.5).fit(X, t),
    )


def test_a_module_argument_the_module_rejects_is_its_own_clear_error(data) -> None:
    X, y, _ = data
    raises_clearly(
        ValueError,
        "The 'dropout' parameter of TabularMLP must be a float in the range [0.0, 1.0). Got 1.5 instead.",
        lambda: NeuralClassifier(**FAST, module__dropout=1.5).fit(X, y),
    )


# ---------------------------------------------------------------------------------------------- predict data


@pytest.mark.parametrize("which", ["classifier", "regressor"])
@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        (lambda X: np.where(X > 1.0, np.nan, X), ValueError, "Input X contains NaN"),
        (lambda X: np.where(X > 1.0, -np.inf, X), ValueError, "Input X contains infinity"),
        (lambda X: X[:0], ValueError, "Found array with 0 sample(s)"),
        (lambda X: X[0], ValueError, "Expected 2D array, got 1D array instead"),
        (lambda X: X[:, :2], ValueError, "X has 2 features, but"),
        (lambda X: np.c_[X, X], ValueError, "X has 6 features, but"),
        (lambda X: X.astype(complex), ValueError, "Complex data not supported"),
        (lambda X: sparse.csr_matrix(X), TypeError, "Sparse data was passed for X, but dense data is required"),
        (lambda X: np.array([["a", "b", "c"]], dtype=object), ValueError, "needs numeric X: encode categorical"),
        (
            lambda X: pd.DataFrame({"a": X[:, 0], "b": ["u"] * len(X), "c": X[:, 2]}),
            ValueError,
            "column(s) 'b' are not numeric",
        ),
        (lambda X: X * 1e39, ValueError, "X has values too large for"),
    ],
    ids=[
        "nan",
        "inf",
        "empty",
        "1d",
        "fewer-features",
        "more-features",
        "complex",
        "sparse",
        "strings",
        "pandas-object",
        "float32-overflow",
    ],
)
def test_bad_data_at_predict(fitted, data, which, make, error, fragment) -> None:
    X, _, _ = data
    est = fitted[0] if which == "classifier" else fitted[1]
    message = raises_clearly(error, fragment, lambda: est.predict(make(X[:5])))
    if "features, but" in fragment:
        assert message.endswith(f"{type(est).__name__} is expecting 3 features as input.")
    if which == "classifier":
        raises_clearly(error, fragment, lambda: est.predict_proba(make(X[:5])))


def test_numeric_object_and_list_input_predicts_like_floats(fitted, data) -> None:
    clf, reg = fitted
    X = data[0][:5]
    np.testing.assert_array_equal(clf.predict_proba(X.astype(object)), clf.predict_proba(X))
    np.testing.assert_array_equal(reg.predict(X.tolist()), reg.predict(X))


@pytest.mark.parametrize("cls", [NeuralClassifier, NeuralRegressor])
def test_predict_before_fit_is_not_fitted_error(data, cls) -> None:
    X = data[0]
    est = cls(**FAST)
    raises_clearly(NotFittedError, "is not fitted yet", lambda: est.predict(X))
    raises_clearly(NotFittedError, f"This {cls.__name__} instance is not", lambda: est.score(X, data[1]))
    if cls is NeuralClassifier:
        raises_clearly(NotFittedError, "is not fitted yet", lambda: est.predict_proba(X))
        raises_clearly(
            AttributeError, "NeuralClassifier has no attribute 'classes_': call fit first.", lambda: est.classes_
        )
    else:
        raises_clearly(
            AttributeError, "NeuralRegressor has no predict_proba: it is a regressor.", lambda: est.predict_proba
        )


# --------------------------------------------------------------------------------------------------- X at fit


def test_pandas_frames_with_missing_values_or_non_numeric_columns(data) -> None:
    X, y, _ = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    with_nan = frame.mask(frame > 1.5)
    raises_clearly(ValueError, "Input X contains NaN", lambda: NeuralClassifier(**FAST).fit(with_nan, y))
    nullable = frame.assign(a=pd.array([1, None] * 20, dtype="Int64"))
    raises_clearly(ValueError, "Input X contains NaN", lambda: NeuralClassifier(**FAST).fit(nullable, y))
    for column in (pd.Categorical(["u", "v"] * 20), pd.date_range("2020", periods=40), ["u", "v"] * 20):
        bad = frame.assign(b=column)
        message = raises_clearly(
            ValueError, "column(s) 'b' are not numeric", lambda bad=bad: NeuralClassifier(**FAST).fit(bad, y)
        )
        assert message.startswith("NeuralClassifier needs numeric X")
    # numeric extension dtypes and booleans are numbers
    ok = frame.assign(a=pd.array(X[:, 0], dtype="Float64"), b=frame["b"] > 0)
    assert NeuralClassifier(**FAST).fit(ok, y).n_features_in_ == 3
    raises_clearly(
        TypeError,
        "Sparse data was passed for X",
        lambda: NeuralClassifier(**FAST).fit(frame.astype(pd.SparseDtype(float, 0.0)), y),
    )


@pytest.mark.parametrize("cls", [NeuralClassifier, NeuralRegressor])
def test_empty_and_shapeless_X_at_fit(data, cls) -> None:
    X, y, _ = data
    target = y if cls is NeuralClassifier else y.astype(float)
    raises_clearly(
        ValueError, "Found array with 0 feature(s) (shape=(40, 0))", lambda: cls(**FAST).fit(X[:, :0], target)
    )
    raises_clearly(ValueError, "Found array with dim 3", lambda: cls(**FAST).fit(X.reshape(40, 3, 1), target))
    raises_clearly(ValueError, "Expected 2D array, got 1D array instead", lambda: cls(**FAST).fit(X[:, 0], target))
    raises_clearly(ValueError, "requires y to be passed, but the target y is None", lambda: cls(**FAST).fit(X, None))


@pytest.mark.parametrize("cls", [NeuralClassifier, NeuralRegressor])
def test_values_beyond_float32_are_an_error_not_inf(data, cls) -> None:
    """float64 data above float32's range would become inf in the network: refused with a way out."""
    X, y, t = data
    target = y if cls is NeuralClassifier else t
    big = X * 1e39
    message = raises_clearly(ValueError, "X has values too large for", lambda: cls(**FAST).fit(big, target))
    assert "dtype='float32'" in message and "set dtype='float64'" in message
    fitted = cls(**FAST, dtype="float64").fit(big, target)  # the suggested way out works
    assert np.all(np.isfinite(fitted.predict(big)))


def test_targets_beyond_float32_or_float64_variance(data) -> None:
    X, _, t = data
    raises_clearly(
        ValueError,
        "y has values too large for NeuralRegressor's dtype='float32'",
        lambda: NeuralRegressor(**FAST, scale_target=False).fit(X, t * 1e39),
    )
    scaled = NeuralRegressor(**FAST).fit(X, t * 1e39)  # standardised targets fit in float32
    assert np.all(np.isfinite(scaled.predict(X)))
    raises_clearly(ValueError, "y is too large to standardise", lambda: NeuralRegressor(**FAST).fit(X, t * 1e200))


# --------------------------------------------------------------------------------------------------------- y


def test_bad_regression_targets(data) -> None:
    X, _, t = data
    raises_clearly(
        ValueError, "Input y contains NaN", lambda: NeuralRegressor(**FAST).fit(X, np.where(t > 1, np.nan, t))
    )
    raises_clearly(
        ValueError, "Input y contains infinity", lambda: NeuralRegressor(**FAST).fit(X, np.where(t > 1, np.inf, t))
    )
    raises_clearly(
        ValueError,
        "Input y contains NaN",
        lambda: NeuralRegressor(**FAST).fit(pd.DataFrame(X), pd.Series(t).mask(t > 1)),
    )
    message = raises_clearly(
        ValueError, "NeuralRegressor needs numeric y", lambda: NeuralRegressor(**FAST).fit(X, np.array(["a"] * 40))
    )
    assert "NeuralClassifier takes class labels" in message
    raises_clearly(ValueError, "Complex data not supported", lambda: NeuralRegressor(**FAST).fit(X, t.astype(complex)))
    raises_clearly(
        TypeError,
        "Sparse data was passed for y, but dense data is required",
        lambda: NeuralRegressor(**FAST).fit(X, sparse.csr_matrix(np.c_[t, t])),
    )
    raises_clearly(ValueError, "Found array with dim 3", lambda: NeuralRegressor(**FAST).fit(X, np.zeros((40, 2, 2))))
    raises_clearly(ValueError, "inconsistent numbers of samples", lambda: NeuralRegressor(**FAST).fit(X, t[:-1]))


def test_multi_output_regression_keeps_its_number_of_outputs(data) -> None:
    X, _, t = data
    Y = np.c_[t, -t, 2 * t]
    reg = NeuralRegressor(**FAST).fit(X, Y)
    assert reg.predict(X).shape == (40, 3)
    message = raises_clearly(
        ValueError, "y has 1 outputs, but NeuralRegressor was fitted with 3.", lambda: reg.partial_fit(X, t)
    )
    assert reg.predict(X).shape == (40, 3)  # the refused call changed nothing
    assert message


def test_bad_classification_targets(data) -> None:
    X, y, _ = data
    raises_clearly(
        ValueError, "Input y contains NaN", lambda: NeuralClassifier(**FAST).fit(X, np.where(y == 0, np.nan, 1.0))
    )
    raises_clearly(
        ValueError,
        "y should be a 1d array, got an array of shape (40, 2)",
        lambda: NeuralClassifier(**FAST).fit(X, np.c_[y, y]),
    )
    raises_clearly(
        TypeError,
        "Sparse data was passed for y",
        lambda: NeuralClassifier(**FAST).fit(X, sparse.csr_matrix(y.reshape(-1, 1))),
    )
    raises_clearly(ValueError, "Unknown label type: continuous", lambda: NeuralClassifier(**FAST).fit(X, X[:, 0]))


@pytest.mark.parametrize(
    "labels",
    [
        [1, "a"] * 20,
        np.array([1, "a"] * 20, dtype=object),
        pd.Series([2.5, "b"] * 20),
    ],
    ids=["list", "object-array", "series"],
)
def test_a_mix_of_string_and_number_labels_is_refused(data, labels) -> None:
    X = data[0]
    message = raises_clearly(
        ValueError,
        "NeuralClassifier needs class labels of one type, but y mixes strings and numbers",
        lambda: NeuralClassifier(**FAST).fit(X, labels),
    )
    assert "y.astype(str)" in message


@pytest.mark.parametrize(
    "labels",
    [
        ["a", None] * 20,
        np.array(["a", np.nan] * 20, dtype=object),
        pd.Series(["a", None] * 20),
        pd.Series(pd.array(["a", pd.NA] * 20, dtype="string")),
    ],
    ids=["list-None", "object-nan", "series-None", "string-NA"],
)
def test_missing_labels_are_refused(data, labels) -> None:
    X = data[0]
    message = raises_clearly(
        ValueError,
        "y has 20 missing label(s) (None or NaN), the first at row 1",
        lambda: NeuralClassifier(**FAST).fit(X, labels),
    )
    assert "drop or impute" in message


def test_object_arrays_of_numbers_are_numeric_labels(data) -> None:
    X, y, _ = data
    as_object = NeuralClassifier(**FAST).fit(X, y.astype(object))
    plain = NeuralClassifier(**FAST).fit(X, y)
    assert as_object.classes_.tolist() == [0, 1]
    np.testing.assert_array_equal(as_object.predict_proba(X), plain.predict_proba(X))
    strings = NeuralClassifier(**FAST).fit(X, np.where(y == 1, "yes", "no").astype(object))
    assert set(strings.predict(X)) <= {"yes", "no"}


def test_single_class_in_every_form(data) -> None:
    X, y, _ = data
    expected = "NeuralClassifier needs samples of at least 2 classes in the data, but the data contains only one class"
    raises_clearly(ValueError, expected + ": 'a'.", lambda: NeuralClassifier(**FAST).fit(X, ["a"] * 40))
    raises_clearly(
        ValueError, expected + ": 0.", lambda: NeuralClassifier(**FAST).partial_fit(X[y == 0], y[y == 0], classes=[0])
    )
    raises_clearly(
        ValueError,
        "needs a positive sample weight in at least 2 classes, but only class 1 has one",
        lambda: NeuralClassifier(**FAST).fit(X, y, sample_weight=(y == 1).astype(float)),
    )


def test_unknown_labels_after_the_first_fit(data) -> None:
    X, y, _ = data
    warm = NeuralClassifier(**FAST, warm_start=True).fit(X, y)
    before = warm.predict_proba(X)
    raises_clearly(ValueError, "y contains labels not seen in the first fit: [2].", lambda: warm.fit(X, y + 1))
    np.testing.assert_array_equal(warm.predict_proba(X), before)  # the refused fit did not train
    raises_clearly(
        ValueError,
        "y contains labels not seen in the first fit: [1].",
        lambda: NeuralClassifier(**FAST).partial_fit(X, y, classes=[0, 2]),
    )
    # predicting never invents labels; scoring against labels never seen counts them as wrong (scikit-learn's rule)
    assert set(warm.predict(X)) <= {0, 1}
    assert warm.score(X, y + 5) == 0.0


def test_bad_sample_weight(data) -> None:
    X, y, _ = data
    raises_clearly(
        ValueError,
        "Input sample_weight contains NaN",
        lambda: NeuralClassifier(**FAST).fit(X, y, sample_weight=np.r_[np.nan, np.ones(39)]),
    )
    raises_clearly(
        ValueError,
        "sample_weight.shape == (39,), expected (40,)",
        lambda: NeuralClassifier(**FAST).fit(X, y, sample_weight=np.ones(39)),
    )
    raises_clearly(
        ValueError,
        "Sample weights must contain at least one non-zero number",
        lambda: NeuralClassifier(**FAST).fit(X, y, sample_weight=np.zeros(40)),
    )


# ------------------------------------------------------------------------------------------------ divergence


def test_loss_that_becomes_nan_mid_training_names_the_epoch(data) -> None:
    X, y, _ = data
    clf = NeuralClassifier(**{**FAST, "max_epochs": 20}, optimizer="sgd", lr=1e6)
    message = raises_clearly(
        FloatingPointError, "The training loss of NeuralClassifier became nan at epoch ", lambda: clf.fit(X * 1e3, y)
    )
    assert "the fit diverged" in message and "Lower the learning rate" in message
    epoch = int(re.search(r"at epoch (\d+):", message).group(1))  # type: ignore[union-attr]
    assert epoch == len(clf.history_) < 20  # stopped in the epoch it diverged (1-based), not after max_epochs


def test_validation_loss_that_becomes_nan_is_reported_as_such(data) -> None:
    X, _, t = data
    # one full batch per epoch: the first step is taken on a finite loss, the validation of epoch 1 sees the blow-up
    reg = NeuralRegressor(
        **{**FAST, "batch_size": -1, "max_epochs": 3},
        optimizer="sgd",
        lr=1e38,
        scale_target=False,
        early_stopping=True,
        validation_fraction=0.25,
    )
    raises_clearly(FloatingPointError, "The validation loss of NeuralRegressor became", lambda: reg.fit(X, t * 100))


def test_weights_that_blow_up_on_the_last_step_are_not_a_silent_nan_model(data) -> None:
    """Every loss seen was finite, but the one and only step sent the weights to infinity."""
    X, _, t = data
    reg = NeuralRegressor(**{**FAST, "batch_size": -1}, optimizer="sgd", lr=1e38, scale_target=False)
    message = raises_clearly(
        FloatingPointError,
        "The weights of NeuralRegressor became NaN or infinite at epoch 1 ('layers.0.weight') although every loss "
        "was finite: the fit diverged.",
        lambda: reg.fit(X, t * 100),
    )
    assert "Lower the learning rate" in message


def test_a_model_left_diverged_refuses_to_predict(data) -> None:
    X, y, _ = data
    clf = NeuralClassifier(**{**FAST, "max_epochs": 5}, optimizer="sgd", lr=1e6)
    with pytest.raises(FloatingPointError):
        clf.fit(X * 1e3, y)
    message = raises_clearly(
        FloatingPointError,
        "NeuralClassifier cannot predict: its weights contain NaN or infinity",
        lambda: clf.predict(X),
    )
    assert "its last fit diverged" in message
    raises_clearly(FloatingPointError, "cannot predict", lambda: clf.predict_proba(X))
    raises_clearly(FloatingPointError, "cannot predict", lambda: clf.score(X, y))


def test_finite_but_huge_weights_that_overflow_at_predict_are_reported(data) -> None:
    X, _, t = data
    reg = NeuralRegressor(**{**FAST, "batch_size": -1}, optimizer="sgd", lr=1e30, scale_target=False)
    reg.fit(X, t * 100)  # one step to weights ~1e32: still finite, so the fit itself cannot tell
    message = raises_clearly(
        FloatingPointError, "NeuralRegressor produced NaN or infinite outputs for", lambda: reg.predict(X)
    )
    largest = max(float(p.detach().abs().max()) for p in reg.module_.parameters())
    assert largest > 1e30 and f"although its weights are finite (largest magnitude {largest:.3g})" in message
    assert "the fit diverged" in message


def test_divergence_leaves_a_refittable_estimator(data) -> None:
    X, y, _ = data
    clf = NeuralClassifier(**{**FAST, "max_epochs": 3}, optimizer="sgd", lr=1e6)
    with pytest.raises(FloatingPointError):
        clf.fit(X * 1e3, y)
    clf.set_params(lr=1e-2).fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))
