"""``NeuralClassifier``: a skorch ``NeuralNetClassifier`` that behaves like a scikit-learn classifier."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNetClassifier
from skorch.utils import to_numpy

from skopt_nn._validation import invalid_param_message
from skopt_nn.estimators._base import NeuralEstimatorMixin
from skopt_nn.estimators._callbacks import ValidAccuracy
from skopt_nn.estimators._data import TensorBatchIterator, TensorData
from skopt_nn.estimators._module import TabularMLP

__all__ = ["NeuralClassifier"]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ == "NAType":  # pandas.NA
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and value != value


def _check_label_values(y: Any, owner: str) -> Any:
    """Labels held as Python objects (a list, an object array, an object/string pandas Series): missing labels and
    a mix of strings and numbers get a clear error; object arrays of numbers become numeric arrays.

    Anything else is returned unchanged for scikit-learn's own checks (typed numeric or string arrays are
    homogeneous, and their NaN is reported as "Input y contains NaN").
    """
    if isinstance(y, (list, tuple)):
        items = list(y)
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in items):
            return y  # 2-D y: scikit-learn reports the shape
    else:
        values = y.to_numpy() if hasattr(y, "to_numpy") and hasattr(y, "dtype") else y
        if not isinstance(values, np.ndarray) or values.dtype != object:
            return y
        items = values.ravel().tolist()
    missing = [i for i, v in enumerate(items) if _is_missing(v)]
    if missing:
        raise ValueError(
            f"y has {len(missing)} missing label(s) (None or NaN), the first at row {missing[0]}: {owner} needs a "
            "label for every sample; drop or impute those rows first."
        )
    strings = [v for v in items if isinstance(v, str)]
    numbers_ = [v for v in items if isinstance(v, numbers.Number)]
    if strings and numbers_:
        raise ValueError(
            f"{owner} needs class labels of one type, but y mixes strings and numbers (e.g. {strings[0]!r} and "
            f"{_plain(numbers_[0])!r}): convert them to one type first, e.g. with y.astype(str)."
        )
    if items and len(numbers_) == len(items) and not isinstance(y, (list, tuple)):
        shape = np.shape(y)
        return np.asarray(items).reshape(shape)  # an object array of numbers: numeric labels
    return y


class NeuralClassifier(NeuralEstimatorMixin, NeuralNetClassifier):
    """Neural network classifier for tabular data, with the optimizer chosen by name.

    A scikit-learn estimator (``fit``/``predict``/``predict_proba``/``score``, Pipelines, ``clone``, grid search,
    pickling) built on skorch's ``NeuralNetClassifier``: callbacks, ``history_``, ``partial_fit`` and
    checkpoints work as in skorch. Labels of any type are encoded and decoded; the default module is a
    :class:`~skopt_nn.estimators.TabularMLP` sized from the data at fit time.

    Parameters
    ----------
    module:
        ``TabularMLP`` (default) or any ``torch.nn.Module`` class or instance returning one logit per class.
        Classes that take ``n_features``/``n_outputs`` get them from the data. Its other arguments are routed
        as ``module__<name>`` (``module__hidden_layer_sizes=(256, 128)``, ``module__dropout=0.1``,
        ``module__norm="layer"``, ``module__activation="gelu"``).
    criterion:
        Loss class (default ``torch.nn.CrossEntropyLoss``, on logits); built with ``reduction="none"`` when it
        takes one so that sample and class weights apply; ``criterion__<name>`` routes its arguments.
    optimizer:
        A registry name (``"adam"``, ``"sgd"``, ``"diffgrad"``, ``"lookahead_adam"``,
        ``"pytorch_optimizer:adabelief"``; see :func:`skopt_nn.optim.available`), an optimizer class, or a
        factory. ``optimizer__<name>`` routes its hyperparameters (``optimizer__betas=(0.9, 0.99)``).
    lr:
        Learning rate; ``None`` uses the optimizer's own default. Learning-rate-free optimizers (DoG) ignore
        it unless ``optimizer__lr`` is set.
    max_epochs:
        Passes over the training data per ``fit``.
    batch_size:
        Rows per step; ``-1`` uses the whole training set (full batch, e.g. for ``"lbfgs"``).
    schedule:
        Learning-rate schedule, stepped every batch: a name from :func:`skopt_nn.schedules.available`
        (``"cosine"``, ``"sgdr"``, ``"linear"``, ``"onecycle"``, ...) or a schedule object; ``None`` keeps the lr
        constant. Its parameters are routed as ``schedule__<name>`` (``schedule__T_0=5``,
        ``schedule__warmup_fraction=0.1``). The lr of every batch is recorded in ``history_`` (key ``"lr"``).
    early_stopping:
        Hold out ``validation_fraction`` of the data (stratified), stop when the validation loss has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and restore the best weights.
    validation_fraction, n_iter_no_change, tol:
        See ``early_stopping``.
    clip_grad_norm:
        Clip the global gradient norm to this value before every step (``None``: no clipping).
    class_weight:
        ``None``, ``"balanced"`` or ``{label: weight}``; multiplies ``sample_weight``.
    random_state:
        Seeds weight initialisation, shuffling, dropout and the validation split: two CPU fits with the same
        integer seed give identical predictions.
    device:
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype:
        ``"float32"`` (default) or ``"float64"``: the precision of the data and the network.
    callbacks, warm_start, verbose, iterator_train, iterator_valid, train_split, predict_nonlinearity,
    compile, use_caching, torch_load_kwargs:
        As in skorch; ``iterator_*`` default to :class:`~skopt_nn.estimators.TensorBatchIterator`.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, n_outputs_, module_, optimizer_, criterion_, history_, device_

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(optimizer="adam", lr=1e-2, max_epochs=30, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _default_criterion = torch.nn.CrossEntropyLoss
    _score_callback = ValidAccuracy

    def __init__(
        self,
        module: Any = TabularMLP,
        *,
        criterion: Any = torch.nn.CrossEntropyLoss,
        optimizer: Any = "adam",
        lr: float | None = None,
        max_epochs: int = 100,
        batch_size: int = 128,
        schedule: Any = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        clip_grad_norm: float | None = None,
        class_weight: Any = None,
        random_state: Any = None,
        device: Any = "auto",
        dtype: str = "float32",
        callbacks: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        iterator_train: Any = TensorBatchIterator,
        iterator_valid: Any = TensorBatchIterator,
        train_split: Any = None,
        predict_nonlinearity: Any = "auto",
        compile: bool = False,
        use_caching: Any = "auto",
        torch_load_kwargs: Any = None,
        **kwargs: Any,
    ) -> None:
        self._init_params(dict(locals()), kwargs)

    @property
    def classes_(self) -> np.ndarray:
        try:
            return vars(self)["_classes"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute 'classes_': call fit first.") from None

    def _check_params(self) -> None:
        super()._check_params()
        cw = self.class_weight
        if not (cw is None or (isinstance(cw, str) and cw == "balanced") or isinstance(cw, dict)):
            raise ValueError(invalid_param_message("class_weight", self._owner(), "'balanced', a dict or None", cw))

    def _validate_Xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        return super()._validate_Xy(X, _check_label_values(y, self._owner()), reset=reset)

    def _prepare_targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, *, reset: bool, classes: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        check_classification_targets(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(labels) < 2:
                raise ValueError(
                    f"{self._owner()} needs samples of at least 2 classes in the data, but the data contains "
                    f"only one class: {_plain(labels[0])!r}."
                )
            self._classes = labels
            self.n_outputs_ = len(labels)
        labels = self.classes_
        encoded = np.searchsorted(labels, y)
        encoded = np.clip(encoded, 0, len(labels) - 1)
        unseen = labels[encoded] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen in the first fit: {[_plain(v) for v in np.unique(np.asarray(y)[unseen])]}."
            )
        weights = sample_weight
        if self.class_weight is not None:
            per_class = compute_class_weight(self.class_weight, classes=labels, y=y)
            weights = per_class[encoded] * (1.0 if sample_weight is None else sample_weight)
        if weights is not None:
            positive = np.unique(encoded[weights > 0])
            if len(positive) < 2:
                raise ValueError(
                    f"{self._owner()} needs a positive sample weight in at least 2 classes, but only class "
                    f"{_plain(labels[positive[0]])!r} has one."
                )
        return encoded.astype(np.int64), weights

    def _target_dtype(self) -> torch.dtype:
        return torch.long

    def _stratify_labels(self, dataset: TensorData) -> np.ndarray | None:
        return None if dataset.y is None else dataset.y.cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        logits = self._raw_predict(X)
        nonlin = self._get_predict_nonlinearity()
        # the nonlinearity in float64: a float32 softmax leaves rows summing to 1 +- 1e-7, which scikit-learn's
        # log_loss (scoring="neg_log_loss") warns about on every call
        if torch.is_tensor(logits) and logits.is_floating_point():
            logits = logits.to(torch.float64)
        return to_numpy(nonlin(logits)).astype(np.float64, copy=False)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as the original labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
