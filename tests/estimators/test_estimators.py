"""Behaviour of NeuralClassifier / NeuralRegressor that users rely on (beyond scikit-learn's generic checks)."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_regression
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skopt_nn import NeuralClassifier, NeuralRegressor, TabularMLP
from skopt_nn.estimators import TensorBatchIterator, TensorData

FAST = dict(max_epochs=15, lr=1e-2, random_state=0, module__hidden_layer_sizes=(32,))


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return X, y


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


# ---------------------------------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"]),
        np.array([10, 20, 30]),
        np.array([-1.0, 0.0, 2.0]),
    ],
    ids=["strings", "ints", "floats"],
)
def test_labels_of_any_type_round_trip(wine, labels):
    X, y = wine
    y_lab = labels[y]
    clf = NeuralClassifier(**FAST).fit(X, y_lab)
    assert list(clf.classes_) == sorted(labels)
    pred = clf.predict(X)
    assert pred.dtype == y_lab.dtype
    assert set(pred) <= set(labels)
    assert clf.score(X, y_lab) > 0.9


def test_boolean_labels(wine):
    X, y = wine
    y_bool = y == 0
    clf = NeuralClassifier(**FAST).fit(X, y_bool)
    assert clf.classes_.tolist() == [False, True]
    assert clf.predict(X).dtype == bool
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_binary_and_multiclass_shapes(wine):
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    clf = NeuralClassifier(**FAST).fit(X, y)
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.module_.layers[-1].out_features == 2
    assert clf.score(X, y) > 0.95


# ---------------------------------------------------------------------------------------------------- inputs


def test_float64_input_is_trained_in_float32(wine):
    X, y = wine
    clf = NeuralClassifier(**FAST).fit(X.astype(np.float64), y)
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())
    clf64 = NeuralClassifier(**FAST, dtype="float64").fit(X, y)
    assert all(p.dtype == torch.float64 for p in clf64.module_.parameters())


def test_pandas_numeric_frame_records_feature_names(wine):
    pd = pytest.importorskip("pandas")
    X, y = wine
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = NeuralClassifier(**FAST).fit(frame, pd.Series(y))
    assert list(clf.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"f0": "other"}))


def test_pandas_non_numeric_columns_are_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "b"]})
    with pytest.raises(ValueError) as exc:
        NeuralClassifier(**FAST).fit(frame, [0, 1, 0, 1])
    assert str(exc.value) == (
        "NeuralClassifier needs numeric X, but column(s) 'city' are not numeric: encode categorical or text columns "
        "first, e.g. with a ColumnTransformer(OneHotEncoder()) in a Pipeline."
    )


def test_mixed_frame_through_column_transformer_pipeline():
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    n = 300
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    y = np.where((frame["x1"] > 0) ^ (frame["color"] == "red"), "yes", "no")
    pre = ColumnTransformer([("num", StandardScaler(), ["x1", "x2"]), ("cat", OneHotEncoder(), ["color"])])
    pipe = make_pipeline(pre, NeuralClassifier(max_epochs=40, lr=1e-2, random_state=0))
    pipe.fit(frame, y)
    assert pipe.score(frame, y) > 0.9
    assert set(pipe.predict(frame)) <= {"yes", "no"}


def test_regression_targets_1d_and_2d():
    X, Y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=0)
    reg1 = NeuralRegressor(**FAST).fit(X, Y[:, 0])
    assert reg1.predict(X).shape == (200,)
    reg2 = NeuralRegressor(**FAST).fit(X, Y)
    assert reg2.predict(X).shape == (200, 2)
    assert reg2.n_outputs_ == 2
    reg_col = NeuralRegressor(**FAST).fit(X, Y[:, :1])
    assert reg_col.predict(X).shape == (200, 1)
    assert reg2.score(X, Y) > 0.8


def test_target_scaling_learns_offset_targets(diabetes):
    X, y = diabetes
    X = (X - X.mean(0)) / X.std(0)
    scaled = NeuralRegressor(max_epochs=30, lr=1e-2, random_state=0).fit(X, y + 1000.0)
    raw = NeuralRegressor(max_epochs=30, lr=1e-2, random_state=0, scale_target=False).fit(X, y + 1000.0)
    assert scaled.score(X, y + 1000.0) > 0.45
    assert scaled.score(X, y + 1000.0) > raw.score(X, y + 1000.0)
    np.testing.assert_allclose(scaled.target_mean_, [np.mean(y) + 1000.0])


# ---------------------------------------------------------------------------------------------------- weights


def test_sample_weight_zero_rows_are_ignored_by_full_batch_fit(wine):
    X, y = wine
    rng = np.random.RandomState(0)
    noise = rng.normal(size=(40, X.shape[1]))
    X_aug = np.vstack([X, noise])
    y_aug = np.concatenate([y, rng.randint(0, 3, size=40)])
    w = np.concatenate([np.ones(len(X)), np.zeros(40)])
    params = dict(optimizer="lbfgs", batch_size=-1, dtype="float64", max_epochs=3, random_state=0)
    weighted = NeuralClassifier(**params).fit(X_aug, y_aug, sample_weight=w)
    plain = NeuralClassifier(**params).fit(X, y)
    np.testing.assert_allclose(weighted.predict_proba(X), plain.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_class_weight_balanced_raises_minority_recall():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    rng = np.random.RandomState(0)
    keep = (y == 1) | (rng.rand(len(y)) < 0.15)  # few malignant (0) left
    X, y = X[keep], y[keep]
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0, test_size=0.5)
    params = dict(max_epochs=5, lr=3e-3, random_state=0, module__hidden_layer_sizes=(16,))
    plain = NeuralClassifier(**params).fit(Xtr, ytr)
    balanced = NeuralClassifier(**params, class_weight="balanced").fit(Xtr, ytr)
    recall = lambda m: np.mean(m.predict(Xte)[yte == 0] == 0)  # noqa: E731
    assert recall(balanced) > recall(plain)


def test_class_weight_dict_equals_sample_weight(wine):
    X, y = wine
    cw = {0: 2.0, 1: 1.0, 2: 0.5}
    a = NeuralClassifier(**FAST, class_weight=cw).fit(X, y)
    b = NeuralClassifier(**FAST).fit(X, y, sample_weight=np.array([cw[v] for v in y]))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_class_weight_with_unknown_label_is_an_error(wine):
    X, y = wine
    with pytest.raises(ValueError, match="class_weight"):
        NeuralClassifier(**FAST, class_weight={0: 1.0, 7: 2.0}).fit(X, y)


# ---------------------------------------------------------------------------------------------------- seeds


def test_same_seed_same_predictions_and_different_seed_differs(wine):
    X, y = wine
    params = {**FAST, "module__dropout": 0.2, "early_stopping": True, "n_iter_no_change": 3}
    a = NeuralClassifier(**params).fit(X, y)
    b = NeuralClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = NeuralClassifier(**{**params, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_fit_does_not_touch_global_torch_rng(wine):
    X, y = wine
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    NeuralClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_refit_restarts_from_scratch_unless_warm_start(wine):
    X, y = wine
    clf = NeuralClassifier(**FAST)
    first = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    warm = NeuralClassifier(**FAST, warm_start=True).fit(X, y)
    before = warm.predict_proba(X)
    warm.fit(X, y)
    assert len(warm.history_) == 2 * FAST["max_epochs"]
    assert not np.array_equal(before, warm.predict_proba(X))


def test_user_module_instance_is_copied_not_trained(wine):
    X, y = wine
    net = torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    before = [p.detach().clone() for p in net.parameters()]
    clf = NeuralClassifier(net, **{k: v for k, v in FAST.items() if not k.startswith("module__")}).fit(X, y)
    assert clf.module_ is not net
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))
    assert clf.score(X, y) > 0.8


def test_user_module_class_gets_data_shape(wine):
    X, y = wine

    class Wide(torch.nn.Module):
        def __init__(self, n_features, n_outputs, width=16):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(n_features, width), torch.nn.Tanh())
            self.head = torch.nn.Linear(width, n_outputs)

        def forward(self, X):
            return self.head(self.net(X))

    clf = NeuralClassifier(Wide, module__width=8, max_epochs=20, lr=1e-2, random_state=0).fit(X, y)
    assert clf.module_.head.out_features == 3
    assert clf.module_.net[0].in_features == 13


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_tabular_mlp_options_train(wine, norm, activation):
    X, y = wine
    clf = NeuralClassifier(
        max_epochs=10, lr=1e-2, random_state=0, module__norm=norm, module__activation=activation, module__dropout=0.1
    )
    assert clf.fit(X, y).score(X, y) > 0.85


def test_tabular_mlp_bad_arguments():
    with pytest.raises(ValueError) as exc:
        TabularMLP(4, 2, norm="group")
    assert str(exc.value) == (
        "The 'norm' parameter of TabularMLP must be one of {None, 'layer', 'batch'}. Got 'group' instead."
    )
    with pytest.raises(ValueError, match="'dropout' parameter of TabularMLP must be a float in the range"):
        TabularMLP(4, 2, dropout=1.0)
    with pytest.raises(ValueError, match="'hidden_layer_sizes' parameter of TabularMLP"):
        TabularMLP(4, 2, hidden_layer_sizes=(8, 0))


# ---------------------------------------------------------------------------------------------------- training


def _validation_split(est, X, y):
    """The (train, valid) TensorData the fitted estimator used (same seeds, same encoding)."""
    X_np, y_np = est._validate_Xy(X, y, reset=False)
    y_enc, _ = est._prepare_targets(y_np, None, reset=False)
    with est._resolved_device():
        return est.get_split_datasets(est._make_dataset(X_np, y_enc, None))


def test_early_stopping_stops_and_restores_best_weights(diabetes):
    X, y = diabetes
    X = (X - X.mean(0)) / X.std(0)
    reg = NeuralRegressor(
        max_epochs=200,
        lr=3e-2,
        early_stopping=True,
        n_iter_no_change=5,
        random_state=0,
        module__hidden_layer_sizes=(256, 256),
    ).fit(X, y)
    epochs = len(reg.history_)
    assert epochs < 200
    losses = reg.history_[:, "valid_loss"]
    best_epoch = int(np.argmin(losses))
    assert epochs - 1 - best_epoch == 5  # stopped after n_iter_no_change epochs without improvement
    _, valid = _validation_split(reg, X, y)
    reg.module_.eval()
    with torch.no_grad():
        loss = reg.get_loss(reg.module_(valid.X), valid.y).item()
    assert loss == pytest.approx(losses[best_epoch], rel=1e-5)  # the best weights, not the last ones
    assert loss < losses[-1]
    assert "valid_r2" in reg.history_[-1]


def test_validation_split_is_stratified_and_seeded(wine):
    X, y = wine
    clf = NeuralClassifier(**FAST, early_stopping=True, validation_fraction=0.25).fit(X, y)
    train, valid = _validation_split(clf, X, y)
    assert len(valid) == int(np.ceil(0.25 * len(y)))
    counts = np.bincount(valid.y.numpy(), minlength=3) / len(valid)
    np.testing.assert_allclose(counts, np.bincount(y) / len(y), atol=0.03)
    again = NeuralClassifier(**FAST, early_stopping=True, validation_fraction=0.25).fit(X, y)
    assert torch.equal(_validation_split(again, X, y)[1].X, valid.X)
    assert 0.0 <= clf.history_[-1, "valid_acc"] <= 1.0


def test_gradient_clipping_bounds_the_update():
    X, y = make_regression(n_samples=64, n_features=4, random_state=0)
    seen = []

    class GradNorm(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            pass

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                norms = [p.grad.norm() for p in net.module_.parameters() if p.grad is not None]
                seen.append(float(torch.linalg.vector_norm(torch.stack(norms))))

    reg = NeuralRegressor(
        optimizer="sgd", lr=1e-3, max_epochs=2, clip_grad_norm=0.01, callbacks=[GradNorm()], random_state=0
    )
    reg.fit(X, y)
    assert seen and max(seen) <= 0.01 * (1 + 1e-4)


def test_divergence_raises_naming_the_epoch():
    X, y = make_regression(n_samples=64, n_features=4, random_state=0)
    reg = NeuralRegressor(optimizer="sgd", lr=1e6, max_epochs=20, scale_target=False, random_state=0)
    with pytest.raises(FloatingPointError) as exc:
        reg.fit(X, y * 1e6)
    msg = str(exc.value)
    assert msg.startswith("The training loss of NeuralRegressor became ")
    assert " at epoch " in msg and "Lower the learning rate" in msg


def test_verbose_prints_the_epoch_table(wine, capsys):
    X, y = wine
    NeuralClassifier(**{**FAST, "max_epochs": 2}, verbose=1, early_stopping=True).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out and "valid_acc" in out
    NeuralClassifier(**{**FAST, "max_epochs": 2}).fit(X, y)
    assert capsys.readouterr().out == ""


def test_partial_fit_continues_and_fixes_classes(wine):
    X, y = wine
    clf = NeuralClassifier(**{**FAST, "max_epochs": 2})
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2]
    clf.partial_fit(X, y)
    assert len(clf.history_) == 4
    with pytest.raises(ValueError, match="labels not seen"):
        clf.partial_fit(X, y + 5)


def test_optimizer_names_and_routing(wine):
    X, y = wine
    clf = NeuralClassifier(
        optimizer="sgd",
        lr=0.05,
        optimizer__momentum=0.9,
        optimizer__nesterov=True,
        **{k: v for k, v in FAST.items() if k != "lr"},
    )
    clf.fit(X, y)
    group = clf.optimizer_.param_groups[0]
    assert isinstance(clf.optimizer_, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.05, 0.9, True)
    assert clf.score(X, y) > 0.9
    clf.set_params(optimizer__momentum=0.5)
    assert clf.get_params()["optimizer__momentum"] == 0.5


def test_lr_none_uses_the_optimizer_default(wine):
    X, y = wine
    clf = NeuralClassifier(optimizer="adagrad", max_epochs=1, random_state=0).fit(X, y)
    assert clf.optimizer_.param_groups[0]["lr"] == torch.optim.Adagrad([torch.zeros(1)]).defaults["lr"]


def test_optimizer_class_and_closure_optimizer(wine):
    X, y = wine
    clf = NeuralClassifier(optimizer=torch.optim.RMSprop, **FAST).fit(X, y)
    assert isinstance(clf.optimizer_, torch.optim.RMSprop)
    lbfgs = NeuralClassifier(optimizer="lbfgs", batch_size=-1, max_epochs=5, random_state=0).fit(X, y)
    assert lbfgs.score(X, y) > 0.95


def test_unknown_optimizer_lists_close_matches(wine):
    X, y = wine
    with pytest.raises(ValueError) as exc:
        NeuralClassifier(optimizer="adamm").fit(X, y)
    assert str(exc.value).startswith("Unknown optimizer 'adamm'. Did you mean 'adam'")


def test_misspelt_routed_parameter_is_reported_at_fit(wine):
    X, y = wine
    clf = NeuralClassifier(optimizer_momentum=0.9, max_epochs=1)
    with pytest.raises(ValueError, match="did you mean optimizer__momentum"):
        clf.fit(X, y)


def test_optimizer_rejection_is_a_clear_value_error(wine):
    X, y = wine
    with pytest.raises(ValueError) as exc:
        NeuralClassifier(optimizer="adam", optimizer__betas=(1.5, 0.9), max_epochs=1).fit(X, y)
    assert str(exc.value) == (
        "The optimizer 'adam' rejected its arguments (betas=(1.5, 0.9)): Invalid beta parameter at index 0: 1.5"
    )


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"lr": -0.1},
            "The 'lr' parameter of NeuralClassifier must be a float in the range (0.0, inf) or None. Got -0.1 instead.",
        ),
        (
            {"lr": 0},
            "The 'lr' parameter of NeuralClassifier must be a float in the range (0.0, inf) or None. Got 0 instead.",
        ),
        (
            {"max_epochs": 0},
            "The 'max_epochs' parameter of NeuralClassifier must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            {"batch_size": 0},
            "The 'batch_size' parameter of NeuralClassifier must be an int in the range [1, inf) or -1. Got 0 instead.",
        ),
        (
            {"validation_fraction": 1.0},
            "The 'validation_fraction' parameter of NeuralClassifier must be a float in the range (0.0, 1.0). Got 1.0 instead.",
        ),
        (
            {"n_iter_no_change": 0},
            "The 'n_iter_no_change' parameter of NeuralClassifier must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            {"clip_grad_norm": 0.0},
            "The 'clip_grad_norm' parameter of NeuralClassifier must be a float in the range (0.0, inf) or None. Got 0.0 instead.",
        ),
        (
            {"dtype": "float16"},
            "The 'dtype' parameter of NeuralClassifier must be one of {'float32', 'float64'}. Got 'float16' instead.",
        ),
        (
            {"device": "tpu"},
            "The 'device' parameter of NeuralClassifier must be 'auto', 'cpu', 'cuda', 'cuda:N' or None. Got 'tpu' instead.",
        ),
        (
            {"class_weight": "auto"},
            "The 'class_weight' parameter of NeuralClassifier must be 'balanced', a dict or None. Got 'auto' instead.",
        ),
        (
            {"early_stopping": "yes"},
            "The 'early_stopping' parameter of NeuralClassifier must be a bool. Got 'yes' instead.",
        ),
    ],
)
def test_bad_parameters_have_one_clear_message(wine, kwargs, message):
    X, y = wine
    with pytest.raises(ValueError) as exc:
        NeuralClassifier(**kwargs).fit(X, y)
    assert str(exc.value) == message


def test_bad_data_messages(wine):
    X, y = wine
    clf = NeuralClassifier(**FAST)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(bad, y)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        NeuralRegressor(**FAST).fit(X, np.where(y == 0, np.nan, 1.0))
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        clf.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Complex data not supported"):
        clf.fit(X.astype(complex), y)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clf.fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError) as exc:
        clf.fit(X, np.zeros(len(y)))
    assert str(exc.value) == (
        "NeuralClassifier needs samples of at least 2 classes in the data, but the data contains only one class: 0.0."
    )
    obj = X.astype(object)
    obj[0, 0] = "abc"
    with pytest.raises(ValueError, match="could not convert string to float.*needs numeric X"):
        clf.fit(obj, y)


def test_sparse_input_is_refused_clearly(wine):
    from scipy import sparse

    X, y = wine
    with pytest.raises(TypeError, match="Sparse data was passed"):
        NeuralClassifier(**FAST).fit(sparse.csr_matrix(X), y)


def test_predict_with_wrong_feature_count_and_before_fit(wine):
    from sklearn.exceptions import NotFittedError

    X, y = wine
    with pytest.raises(NotFittedError):
        NeuralClassifier().predict(X)
    clf = NeuralClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError) as exc:
        clf.predict(X[:, :5])
    assert str(exc.value) == "X has 5 features, but NeuralClassifier is expecting 13 features as input."


def test_negative_sample_weight_refused(wine):
    X, y = wine
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        NeuralClassifier(**FAST).fit(X, y, sample_weight=-np.ones(len(y)))


# ---------------------------------------------------------------------------------------------------- persistence


def test_pickle_and_joblib_round_trip(wine, tmp_path):
    X, y = wine
    clf = NeuralClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.device == "auto"
    # and it keeps training
    loaded.partial_fit(X, y)


def test_model_fitted_on_cuda_loads_on_cpu(wine, monkeypatch):
    """Simulate a GPU fit: a pickle whose resolved device is cuda must load and predict where only a CPU is."""
    X, y = wine
    clf = NeuralClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    state = clf.__getstate__()
    state["device_"] = "cuda"
    blob = pickle.dumps(state)
    fresh = NeuralClassifier.__new__(NeuralClassifier)
    fresh.__setstate__(pickle.loads(blob))
    assert fresh.device == "auto"
    assert fresh.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_allclose(fresh.predict_proba(X), expected, rtol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_fit_then_cpu_load(wine):  # pragma: no cover - runs only with a GPU
    X, y = wine
    clf = NeuralClassifier(**FAST, device="cuda").fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    assert next(clf.module_.parameters()).is_cuda


def test_clone_keeps_routed_parameters():
    clf = NeuralClassifier(module__dropout=0.3, optimizer__momentum=0.8, optimizer="sgd")
    copy_ = clone(clf)
    assert copy_.get_params()["module__dropout"] == 0.3
    assert copy_.get_params()["optimizer__momentum"] == 0.8
    assert "NeuralClassifier(" in repr(copy_) and "module__dropout=0.3" in repr(copy_)


# ---------------------------------------------------------------------------------------------------- device + batching


def test_device_auto_resolves_without_changing_the_parameter(wine):
    X, y = wine
    clf = NeuralClassifier(**FAST).fit(X, y)
    assert clf.device == "auto"
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(clf.module_.parameters()).device.type == clf.device_


def test_batch_iterator_slices_and_folds_a_single_trailing_row():
    X = torch.arange(11.0).reshape(11, 1)
    data = TensorData(X, torch.arange(11))
    batches = list(TensorBatchIterator(data, batch_size=5))
    assert [len(b[0]) for b in batches] == [5, 6]
    assert batches[0][0].data_ptr() == X.data_ptr()  # a view, no copy
    g = torch.Generator().manual_seed(0)
    shuffled = list(TensorBatchIterator(data, batch_size=4, shuffle=True, generator=g))
    seen = torch.cat([b[1] for b in shuffled])
    assert sorted(seen.tolist()) == list(range(11))
    assert seen.tolist() != list(range(11))
    assert all(torch.equal(b[0][:, 0].long(), b[1]) for b in shuffled)


def test_batchnorm_with_trailing_single_row_trains():
    X, y = make_regression(n_samples=129, n_features=3, random_state=0)
    reg = NeuralRegressor(max_epochs=2, batch_size=128, module__norm="batch", random_state=0)
    reg.fit(X, y)  # 129 = 128 + 1: the lone row joins the first batch instead of breaking BatchNorm
    assert reg.history_[-1, "train_batch_count"] == 1


def test_set_params_of_optimizer_reaches_live_optimizer_and_next_fit(wine):
    X, y = wine
    clf = NeuralClassifier(optimizer="sgd", optimizer__momentum=0.9, max_epochs=1, random_state=0).fit(X, y)
    clf.set_params(optimizer__momentum=0.5, lr=0.2)
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.5
    assert clf.optimizer_.param_groups[0]["lr"] == 0.2
    clf.fit(X, y)
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.5
    assert clf.get_params()["optimizer__momentum"] == 0.5


def test_predict_proba_rows_sum_to_one_in_float64() -> None:
    """scikit-learn's log_loss warns when rows miss 1 by more than sqrt(float64 eps): a float32 softmax did."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.metrics import log_loss

    X, y = load_digits(return_X_y=True)
    clf = NeuralClassifier(max_epochs=2, random_state=0).fit(X[:400], y[:400])
    proba = clf.predict_proba(X[400:800])
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y[400:800], proba, labels=clf.classes_)
