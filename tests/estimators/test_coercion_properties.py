"""Property-based tests (hypothesis) of the input-coercion layer: what reaches the network is what the user passed.

An ``Echo`` network records the tensors it is called with (training with one full, unshuffled batch, then
predict), and an ``EchoLoss`` the targets it is given, so the properties are checked on the tensors the model
really sees, through the public ``fit``/``predict``:

* finite arrays of any numeric dtype (bool, ints, float16/32/64), as numpy arrays, lists or pandas frames (also
  with one dtype per column), arrive as tensors of the estimator's dtype with the same shape and values;
* a NaN or an infinity anywhere, in X at fit or at predict, always raises the clear error; float64 values beyond
  float32's range raise instead of becoming ``inf``;
* regression targets arrive unchanged (or standardised with ``scale_target``); class labels of any type are
  encoded as indices into ``classes_`` and decoded back.

Integers are drawn within +-2**53, where float64 (scikit-learn's intermediate) holds them exactly, so the expected
value is a single rounding to the estimator's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from skopt_nn import NeuralClassifier, NeuralRegressor

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOAT32_MAX = float(np.finfo(np.float32).max)


class Echo(nn.Module):
    """Outputs a learnable constant (finite whatever the input) and records every input it is called with."""

    def __init__(self, n_features: int, n_outputs: int) -> None:
        super().__init__()
        self.out = nn.Parameter(torch.zeros(n_outputs))
        self.seen: list[torch.Tensor] = []

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self.seen.append(X.detach().clone())
        return self.out.expand(len(X), -1) + 0.0 * X[:, :1]


class EchoLoss(nn.Module):
    """Squared error per sample that records the targets it is given (classifiers: a cross-entropy)."""

    def __init__(self, reduction: str = "none", classify: bool = False) -> None:
        super().__init__()
        self.classify = classify
        self.seen: list[torch.Tensor] = []

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        self.seen.append(y_true.detach().clone())
        if self.classify:
            return nn.functional.cross_entropy(y_pred, y_true, reduction="none")
        return (y_pred - y_true.reshape(y_pred.shape)) ** 2


ECHO: dict[str, Any] = dict(
    module=Echo,
    max_epochs=1,
    batch_size=-1,
    iterator_train__shuffle=False,
    optimizer="sgd",
    lr=1e-3,
    random_state=0,
)

_INT64_EXACT = 2**53


def _elements(dtype: np.dtype) -> st.SearchStrategy:
    if dtype == np.bool_:
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(max(int(info.min), -_INT64_EXACT), min(int(info.max), _INT64_EXACT))
    width = dtype.itemsize * 8
    bound = FLOAT32_MAX if width == 64 else None  # float64 beyond float32's range: its own test below
    return st.floats(
        min_value=-bound if bound else None,
        max_value=bound,
        width=width,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )


DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float16, np.float32, np.float64]


@st.composite
def finite_arrays(draw: Any, min_rows: int = 1) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = (draw(st.integers(min_rows, 12)), draw(st.integers(1, 4)))
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))


def _container(X: np.ndarray, kind: str) -> Any:
    if kind == "list":
        return X.tolist()
    if kind == "frame":
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return X


def _fit_echo(X: Any, n_rows: int, dtype: str) -> NeuralRegressor:
    return NeuralRegressor(**ECHO, dtype=dtype, scale_target=False).fit(X, np.zeros(n_rows))


@SETTINGS
@given(
    X=finite_arrays(), kind=st.sampled_from(["numpy", "list", "frame"]), dtype=st.sampled_from(["float32", "float64"])
)
def test_finite_inputs_reach_the_network_with_the_same_values_and_shape(X, kind, dtype) -> None:
    expected = np.asarray(X, dtype=np.float64).astype(dtype)
    reg = _fit_echo(_container(X, kind), len(X), dtype)
    trained = reg.module_.seen[0]
    assert trained.dtype == getattr(torch, dtype) and tuple(trained.shape) == X.shape
    np.testing.assert_array_equal(trained.numpy(), expected)
    reg.predict(_container(X, kind))
    np.testing.assert_array_equal(reg.module_.seen[-1].numpy(), expected)
    assert reg.n_features_in_ == X.shape[1]


@SETTINGS
@given(
    columns=st.lists(st.sampled_from(DTYPES), min_size=1, max_size=5),
    n=st.integers(1, 10),
    data=st.data(),
)
def test_frames_with_one_dtype_per_column(columns, n, data) -> None:
    frame = pd.DataFrame(
        {
            f"c{i}": data.draw(hnp.arrays(np.dtype(dt), (n,), elements=_elements(np.dtype(dt))), label=f"c{i}")
            for i, dt in enumerate(columns)
        }
    )
    expected = np.column_stack([frame[c].to_numpy().astype(np.float64) for c in frame]).astype(np.float32)
    reg = _fit_echo(frame, n, "float32")
    np.testing.assert_array_equal(reg.module_.seen[0].numpy(), expected)
    assert list(reg.feature_names_in_) == list(frame.columns)
    reg.predict(frame)
    np.testing.assert_array_equal(reg.module_.seen[-1].numpy(), expected)


@st.composite
def arrays_with_a_non_finite_entry(draw: Any) -> tuple[np.ndarray, float]:
    dtype = np.dtype(draw(st.sampled_from([np.float16, np.float32, np.float64])))
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 4)))
    X = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    positions = draw(st.lists(st.integers(0, X.size - 1), min_size=1, max_size=X.size, unique=True))
    flat = X.ravel().copy()
    flat[positions] = bad
    return flat.reshape(X.shape), bad


@SETTINGS
@given(case=arrays_with_a_non_finite_entry(), kind=st.sampled_from(["numpy", "list", "frame"]))
def test_a_non_finite_entry_anywhere_is_always_the_clear_error(case, kind) -> None:
    X, bad = case
    fragment = "Input X contains NaN" if np.isnan(bad) else "Input X contains infinity"
    with pytest.raises(ValueError, match=fragment):
        NeuralRegressor(**ECHO).fit(_container(X, kind), np.zeros(len(X)))
    clean = np.zeros(X.shape)
    reg = NeuralRegressor(**ECHO).fit(_container(clean, kind), np.zeros(len(X)))
    with pytest.raises(ValueError, match=fragment):
        reg.predict(_container(X, kind))


@SETTINGS
@given(
    X=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(-1e300, 1e300, allow_nan=False, allow_subnormal=False),
    ).filter(lambda a: np.abs(a).max() > FLOAT32_MAX)
)
def test_float64_beyond_float32_is_refused_not_turned_into_inf(X) -> None:
    with pytest.raises(ValueError, match="X has values too large for NeuralRegressor's dtype='float32'"):
        NeuralRegressor(**ECHO).fit(X, np.zeros(len(X)))
    reg = NeuralRegressor(**ECHO, dtype="float64").fit(X, np.zeros(len(X)))  # the way out the message names
    np.testing.assert_array_equal(reg.module_.seen[0].numpy(), X)


@SETTINGS
@given(
    y=hnp.arrays(
        np.float64,
        st.one_of(st.tuples(st.integers(1, 10)), st.tuples(st.integers(1, 10), st.integers(1, 3))),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
    ),
    scale=st.booleans(),
)
def test_regression_targets_reach_the_loss_unchanged_or_standardised(y, scale) -> None:
    X = np.zeros((len(y), 2))
    reg = NeuralRegressor(**ECHO, criterion=EchoLoss, scale_target=scale).fit(X, y)
    seen = reg.criterion_.seen[0].numpy().astype(np.float64)
    y2 = y.reshape(len(y), -1)
    if scale:
        std = y2.std(axis=0)
        expected = (y2 - y2.mean(axis=0)) / np.where(std > 0, std, 1.0)
        np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(seen, y2.astype(np.float32))
    assert reg.predict(X).shape == y.shape
    assert reg.n_outputs_ == y2.shape[1]


_LABEL_POOLS = [
    st.integers(-(2**40), 2**40),
    st.text(min_size=0, max_size=4),
    st.sampled_from([True, False]),
    st.sampled_from([0.5, -1.0, 3.0]),
]


@SETTINGS
@given(
    labels=st.one_of(*[st.lists(pool, min_size=2, max_size=12) for pool in _LABEL_POOLS]).filter(
        lambda v: len(set(v)) >= 2
    ),
    as_object=st.booleans(),
)
def test_class_labels_are_encoded_as_indices_and_decoded_back(labels, as_object) -> None:
    y = np.array(labels, dtype=object if as_object else None)
    plain = np.array(labels)
    if plain.dtype.kind == "f" and not np.all(plain == np.round(plain)):  # scikit-learn's rule for float labels
        with pytest.raises(ValueError, match="Unknown label type: continuous"):
            NeuralClassifier(**ECHO).fit(np.zeros((len(y), 1)), y)
        return
    X = np.zeros((len(y), 1))
    clf = NeuralClassifier(**ECHO, criterion=EchoLoss, criterion__classify=True).fit(X, y)
    classes = clf.classes_
    assert list(classes) == sorted(set(labels))
    encoded = clf.criterion_.seen[0].numpy()
    assert encoded.dtype == np.int64
    assert list(classes[encoded]) == list(labels)
    predicted = clf.predict(X)
    assert set(predicted.tolist()) <= set(labels)
