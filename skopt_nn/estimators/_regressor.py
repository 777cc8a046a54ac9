"""``NeuralRegressor``: a skorch ``NeuralNetRegressor`` that behaves like a scikit-learn regressor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.utils import to_numpy

from skopt_nn._validation import check_bool
from skopt_nn.estimators._base import NeuralEstimatorMixin
from skopt_nn.estimators._callbacks import ValidR2
from skopt_nn.estimators._data import TensorBatchIterator
from skopt_nn.estimators._module import TabularMLP

__all__ = ["NeuralRegressor"]


class NeuralRegressor(NeuralEstimatorMixin, NeuralNetRegressor):
    """Neural network regressor for tabular data, with the optimizer chosen by name.

    Same parameters as :class:`~skopt_nn.estimators.NeuralClassifier` (without ``class_weight``), plus:

    Parameters
    ----------
    criterion:
        Loss class, default ``torch.nn.MSELoss``.
    scale_target:
        Standardise each target column (weighted mean and standard deviation of the training targets) for
        training and undo it in ``predict``. Losses in ``history_`` are then in standardised units. It makes
        the default learning rates work whatever the scale of ``y``.

    ``y`` may be 1-D (``predict`` returns 1-D) or 2-D (several outputs; ``predict`` returns 2-D).

    Attributes
    ----------
    n_features_in_, feature_names_in_, n_outputs_, target_mean_, target_scale_, module_, optimizer_, history_

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = NeuralRegressor(lr=1e-2, max_epochs=50, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
    """

    _default_criterion = torch.nn.MSELoss
    _score_callback = ValidR2
    _multi_output_y = True

    def __init__(
        self,
        module: Any = TabularMLP,
        *,
        criterion: Any = torch.nn.MSELoss,
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
        scale_target: bool = True,
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
    def predict_proba(self) -> Any:
        raise AttributeError(f"{type(self).__name__} has no predict_proba: it is a regressor.")

    def _check_params(self) -> None:
        super()._check_params()
        check_bool(self.scale_target, "scale_target", self._owner())

    def _prepare_targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, *, reset: bool, classes: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{self._owner()} needs numeric y: {exc}. Encode it first (NeuralClassifier takes class labels)."
            ) from None
        if reset:
            self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        if reset:
            self.n_outputs_ = y2.shape[1]
            if self.scale_target:
                w = np.ones(len(y2)) if sample_weight is None else sample_weight
                mean = np.average(y2, axis=0, weights=w)
                with np.errstate(over="ignore"):
                    std = np.sqrt(np.average((y2 - mean) ** 2, axis=0, weights=w))
                if not np.all(np.isfinite(std)):
                    raise ValueError(
                        f"y is too large to standardise: its variance overflows float64 (largest magnitude "
                        f"{float(np.max(np.abs(y2))):.4g}). Rescale y before fitting {self._owner()}."
                    )
                self.target_mean_ = mean
                self.target_scale_ = np.where(std > 0, std, 1.0)
            else:
                self.target_mean_ = np.zeros(y2.shape[1])
                self.target_scale_ = np.ones(y2.shape[1])
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, but {self._owner()} was fitted with {self.n_outputs_}.")
        scaled = (y2 - self.target_mean_) / self.target_scale_
        limit = float(np.finfo(self._np_dtype()).max)
        if np.max(np.abs(scaled), initial=0.0) > limit:
            raise ValueError(
                f"y has values too large for {self._owner()}'s dtype={self.dtype!r} (largest magnitude "
                f"{float(np.max(np.abs(scaled))):.4g}, the limit is {limit:.4g}): set scale_target=True, rescale y, "
                "or set dtype='float64'."
            )
        return scaled, sample_weight

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: shape ``(n_samples,)`` if ``y`` was 1-D at fit, else ``(n_samples, n_outputs)``."""
        raw = self._raw_predict(X)  # first: an unfitted estimator gets scikit-learn's NotFittedError message
        out = self._get_predict_nonlinearity()(raw)
        pred = to_numpy(out).astype(np.float64).reshape(-1, self.n_outputs_)
        pred = pred * self.target_scale_ + self.target_mean_
        return pred.ravel() if self._y_ndim == 1 else pred

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
