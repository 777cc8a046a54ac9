"""What ``NeuralClassifier`` and ``NeuralRegressor`` share on top of skorch's ``NeuralNet``.

skorch keeps the training loop, callbacks, history, ``partial_fit`` and checkpoints. This mixin adds what a
scikit-learn user expects and skorch does not do: parameter and input validation in ``fit`` with one error
format, ``n_features_in_``/``feature_names_in_``, a module shaped from the data, optimizers by name with their
capability flags honoured, one ``random_state`` for initialisation, shuffling, dropout and the validation split,
``device="auto"``, early stopping with best-weight restore, gradient clipping, a divergence check, and a fast batch
iterator over tensors already on the device.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import sparse
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, EpochTimer, GradientNormClipping, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, is_dataset, to_device

from skopt_nn import optim, schedules
from skopt_nn._validation import (
    Interval,
    check_bool,
    check_float,
    check_int,
    check_option,
    invalid_param_message,
    unknown_name_error,
)
from skopt_nn.estimators._callbacks import LRSchedule
from skopt_nn.estimators._data import TensorBatchIterator, TensorData

__all__ = ["NeuralEstimatorMixin", "resolve_device"]

_DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}
_COMPONENTS = frozenset({"module", "criterion", "optimizer"})


def resolve_device(device: Any) -> Any:
    """``"auto"`` is CUDA when available, else the CPU; anything else is returned unchanged."""
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _accepts(factory: Any, name: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


if TYPE_CHECKING:  # skorch ships no type information: type the mixin as a NeuralNet (Any) for mypy only
    from skorch import NeuralNet as _NetForTyping
else:
    _NetForTyping = object


class NeuralEstimatorMixin(_NetForTyping):
    """Shared behaviour of the skopt_nn estimators (mixed in before a skorch ``NeuralNet`` subclass)."""

    # state skorch's NeuralNet.__init__ would set; class defaults keep __init__ free of non-parameters
    initialized_ = False
    history_ = None
    virtual_params_: Mapping[str, Any] = {}

    prefixes_ = [*NeuralNet.prefixes_, "schedule"]

    _default_criterion: type[torch.nn.Module] = torch.nn.MSELoss
    _score_callback: Any = None

    # ------------------------------------------------------------------------------------------ parameters

    def _init_params(self, params: dict[str, Any], routed: dict[str, Any]) -> None:
        """Store constructor arguments unchanged (scikit-learn's contract) and the routed ``prefix__name`` ones.

        Nothing is validated here: misspelt routed names (``module_dropout``) are reported by skorch at fit,
        with a suggestion; parameter values are checked by ``_check_params`` at fit.
        """
        params = {k: v for k, v in params.items() if k not in ("self", "kwargs", "__class__")}
        self.__dict__.update(params)
        self.__dict__.update(routed)
        self._params_to_validate = set(routed)

    def __setattr__(self, name: str, attr: Any) -> None:
        # module/criterion/optimizer are parameters that may hold instances: not fitted components
        if name in _COMPONENTS:
            object.__setattr__(self, name, attr)
            return
        super().__setattr__(name, attr)

    def _get_param_names(self) -> list[str]:
        names = {
            name
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        routed = {k for k in self.__dict__ if "__" in k and not k.startswith("_") and not k.endswith("_")}
        extra = {k for k in self.__dict__.get("_params_to_validate", ()) if k in self.__dict__}
        return sorted(names | routed | extra)

    def set_params(self, **params: Any) -> Any:
        """Set parameters (``lr``, ``module__dropout``, ``callbacks__print_log__sink``, ...).

        Before the first fit, callback parameters are stored and applied at initialisation (skorch builds the
        callbacks right away, which fails on values that ``fit`` would report clearly).
        """
        # schedule__* are read at the start of each fit: store them, nothing to re-initialise
        schedule_params = {k: v for k, v in params.items() if k.startswith("schedule__")}
        for key, value in schedule_params.items():
            setattr(self, key, value)
            self._params_to_validate.add(key)
        params = {k: v for k, v in params.items() if k not in schedule_params}
        if not self.initialized_:
            callback_params = {k: v for k, v in params.items() if k.startswith("callbacks")}
            if callback_params:
                for key, value in callback_params.items():
                    setattr(self, key, value)
                    if key != "callbacks":
                        self._params_to_validate.add(key)
                params = {k: v for k, v in params.items() if k not in callback_params}
        else:
            # skorch applies optimizer__* to the live optimizer only; keep the parameter too, so get_params
            # reflects it and the next fit (which rebuilds the optimizer) uses it
            for key, value in params.items():
                if key.startswith("optimizer__") and not key.startswith("optimizer__param_groups__"):
                    self.__dict__[key] = value
                    self._params_to_validate.add(key)
            if "lr" in params and params["lr"] is None:
                self.__dict__["lr"] = None  # the optimizer's default applies from the next fit
                params = {k: v for k, v in params.items() if k != "lr"}
        if "device" in params:  # the new device is what skorch moves the module to
            return super().set_params(**params)
        with self._resolved_device():  # skorch re-initialises the module/optimizer here, on self.device
            return super().set_params(**params)

    def __repr__(self) -> str:
        from sklearn.base import BaseEstimator

        return BaseEstimator.__repr__(self)

    def _owner(self) -> str:
        return type(self).__name__

    def _check_params(self) -> None:
        """Validate the estimator's own parameters (called at the start of ``fit``)."""
        owner = self._owner()
        p: Any = self
        check_float(p.lr, "lr", owner, Interval(0.0, None, "neither"), allow_none=True)
        check_int(p.max_epochs, "max_epochs", owner, Interval(1, None, "left"))
        batch_size = p.batch_size
        if not (isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)) or not (
            int(batch_size) >= 1 or int(batch_size) == -1
        ):
            raise ValueError(
                invalid_param_message("batch_size", owner, "an int in the range [1, inf) or -1", p.batch_size)
            )
        check_bool(p.early_stopping, "early_stopping", owner)
        check_float(p.validation_fraction, "validation_fraction", owner, Interval(0.0, 1.0, "neither"))
        check_int(p.n_iter_no_change, "n_iter_no_change", owner, Interval(1, None, "left"))
        check_float(p.tol, "tol", owner, Interval(0.0, None, "left"))
        check_float(p.clip_grad_norm, "clip_grad_norm", owner, Interval(0.0, None, "neither"), allow_none=True)
        check_bool(p.warm_start, "warm_start", owner)
        check_int(
            int(p.verbose) if isinstance(p.verbose, bool) else p.verbose, "verbose", owner, Interval(0, None, "left")
        )
        check_option(p.dtype, "dtype", owner, tuple(_DTYPES))
        device_error = invalid_param_message("device", owner, "'auto', 'cpu', 'cuda', 'cuda:N' or None", p.device)
        if not (isinstance(p.device, (str, torch.device)) or p.device is None):
            raise ValueError(device_error)
        if isinstance(p.device, str) and p.device != "auto":
            try:
                torch.device(p.device)
            except RuntimeError:
                raise ValueError(device_error) from None
        if p.random_state is not None and not isinstance(p.random_state, (numbers.Integral, np.random.RandomState)):
            raise ValueError(
                invalid_param_message("random_state", owner, "an int, a numpy RandomState or None", p.random_state)
            )
        callbacks = p.callbacks
        if not (
            callbacks is None
            or (isinstance(callbacks, str) and callbacks == "disable")
            or (isinstance(callbacks, (list, tuple)) and all(_is_callback_entry(c) for c in callbacks))
        ):
            raise ValueError(
                invalid_param_message(
                    "callbacks", owner, "None, 'disable' or a list of callbacks or (name, callback) pairs", callbacks
                )
            )
        _check_component(p.module, "module", owner, "a torch.nn.Module class or instance, or a factory returning one")
        if p.criterion is not None:
            _check_component(p.criterion, "criterion", owner, "a loss class or instance (a torch.nn.Module) or None")
        try:
            optim.get(p.optimizer)  # unknown names raise with close matches
        except TypeError:
            expected = "an optimizer name (see skopt_nn.optim.available()), an Optimizer subclass or a factory"
            raise ValueError(invalid_param_message("optimizer", owner, expected, p.optimizer)) from None
        try:
            schedule = self.schedule_object()
        except TypeError:
            expected = "a schedule name (see skopt_nn.schedules.available()), a Schedule object or None"
            raise ValueError(invalid_param_message("schedule", owner, expected, p.schedule)) from None
        schedule.check_params()

    # ----------------------------------------------------------------------------------------------- data

    def _np_dtype(self) -> Any:
        return _DTYPES[self.dtype][0]

    def _torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype][1]

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Numeric 2-D float array of the estimator's dtype; records or checks the feature count and names."""
        _check_numeric_frame(X, self._owner())
        try:
            X = validate_data(
                self, X, reset=reset, dtype=(np.float64, np.float32), ensure_all_finite=True, accept_sparse=False
            )
        except ValueError as exc:
            if "could not convert" in str(exc):
                raise ValueError(f"{exc}. {self._owner()} needs numeric X: {_ENCODE_HINT}") from None
            raise
        except TypeError as exc:
            if "argument must be" in str(exc):
                raise TypeError(f"{exc}. {self._owner()} needs numeric X: {_ENCODE_HINT}") from None
            raise
        return self._as_compute_dtype(X, "X")

    def _as_compute_dtype(self, array: np.ndarray, name: str) -> np.ndarray:
        """``array`` (finite) as a contiguous array of the estimator's dtype; values beyond its range are an error
        (float64 data above ~3.4e38 would silently become ``inf`` in float32)."""
        dtype = self._np_dtype()
        with np.errstate(over="ignore"):
            out = np.ascontiguousarray(array, dtype=dtype)
        if np.dtype(array.dtype).itemsize > out.dtype.itemsize and not np.isfinite(out).all():
            largest = float(np.max(np.abs(array)))
            raise ValueError(
                f"{name} has values too large for {self._owner()}'s dtype={self.dtype!r} (largest magnitude "
                f"{largest:.4g}, the limit is {float(np.finfo(dtype).max):.4g}): rescale {name} (e.g. with a "
                "StandardScaler) or set dtype='float64'."
            )
        return out

    def _validate_sample_weight(self, sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        if sample_weight is None:
            return None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight contains NaN or infinity.")
        if sw.sum() <= 0:
            raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight.")
        return sw

    def _tensor(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.tensor(array, dtype=dtype, device=self.device_)

    def _make_dataset(self, X: np.ndarray, y: np.ndarray | None, sample_weight: np.ndarray | None) -> TensorData:
        Xt = self._tensor(X, self._torch_dtype())
        yt = None if y is None else self._tensor(y, self._target_dtype())
        wt = None
        if sample_weight is not None:
            # the loss of a batch is sum(w * l) / (batch size * mean training weight): an unbiased estimate of
            # the weighted mean loss of the whole training set, equal to it for a full batch
            self._weight_scale = float(np.mean(sample_weight))
            wt = self._tensor(sample_weight / self._weight_scale, self._torch_dtype())
        return TensorData(Xt, yt, wt)

    def _target_dtype(self) -> torch.dtype:
        return self._torch_dtype()

    # --------------------------------------------------------------------------------------- randomness

    def _draw_seeds(self) -> None:
        rng = check_random_state(self.random_state)
        init_seed, train_seed, split_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        self._seeds = {"init": init_seed, "train": train_seed, "split": split_seed}

    @contextlib.contextmanager
    def _torch_rng(self, seed: int) -> Iterator[None]:
        """Seed torch's global RNG (dropout, random init, stochastic optimizers) and restore it afterwards."""
        devices: list[int] = []
        device = torch.device(self.device_) if self.device_ is not None else None
        if device is not None and device.type == "cuda":
            devices = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    # ----------------------------------------------------------------------------------------------- device

    @contextlib.contextmanager
    def _resolved_device(self) -> Iterator[None]:
        """Let skorch's code see the resolved device while the ``device`` parameter stays ``"auto"``."""
        requested = self.__dict__.get("device")
        if not (isinstance(requested, str) and requested == "auto"):
            yield
            return
        self.__dict__["device"] = getattr(self, "device_", None) or resolve_device(requested)
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model fitted with device="auto" on a GPU loads on a CPU-only machine: map to what is here now
        requested = state.get("device")
        if isinstance(requested, str) and requested == "auto":
            state = dict(state)
            state["device"] = resolve_device("auto")
            if "device_" in state:
                state["device_"] = state["device"]
            super().__setstate__(state)
            self.__dict__["device"] = "auto"
        else:
            super().__setstate__(state)

    # ------------------------------------------------------------------------------------------- training

    @property
    def _default_callbacks(self) -> list[tuple[str, Any]]:
        callbacks: list[tuple[str, Any]] = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]
        if self._score_callback is not None:
            callbacks.append((self._score_callback.name, self._score_callback()))
        # read by skorch's get_params too, so tolerate values fit would reject (fit reports them clearly)
        p: Any = self
        if p.clip_grad_norm is not None:
            callbacks.append(("clip_grad_norm", GradientNormClipping(gradient_clip_value=p.clip_grad_norm)))
        if isinstance(p.early_stopping, (bool, np.bool_)) and p.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=p.n_iter_no_change,
                        threshold=p.tol,
                        threshold_mode="abs",
                        load_best=True,
                        sink=print,
                    ),
                )
            )
        callbacks.append(("lr_schedule", LRSchedule()))
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    def _data_shape_kwargs(self, factory: Any) -> dict[str, Any]:
        """``n_features``/``n_outputs`` for module classes that take them (TabularMLP and user modules alike)."""
        kwargs: dict[str, Any] = {}
        for name, attr in (("n_features", "n_features_in_"), ("n_outputs", "n_outputs_")):
            if hasattr(self, attr) and name in _signature_names(factory):
                kwargs[name] = getattr(self, attr)
        return kwargs

    def initialize_module(self) -> Any:
        kwargs = self.get_params_for("module")
        module = self.module
        if isinstance(module, torch.nn.Module):
            # never train the object passed as a parameter: fit a copy (scikit-learn's contract)
            if kwargs:
                _check_routed_names(type(module), kwargs, "module")
            module = type(module)(**kwargs) if kwargs else copy.deepcopy(module)
        else:
            kwargs = {**self._data_shape_kwargs(module), **kwargs}
            missing = [n for n in ("n_features", "n_outputs") if n in _required_names(module) and n not in kwargs]
            if missing:
                raise ValueError(
                    f"The module needs {missing} before the data is seen: call fit, or set "
                    + ", ".join(f"module__{m}" for m in missing)
                    + "."
                )
            _check_routed_names(module, kwargs, "module")
            module = module(**kwargs)
        self.module_ = module.to(self._torch_dtype())
        return self

    def initialize_criterion(self) -> Any:
        kwargs = self.get_params_for("criterion")
        criterion = self.criterion if self.criterion is not None else self._default_criterion
        if isinstance(criterion, torch.nn.Module):
            if kwargs:
                _check_routed_names(type(criterion), kwargs, "criterion")
            criterion = type(criterion)(**kwargs) if kwargs else copy.deepcopy(criterion)
        else:
            _check_routed_names(criterion, kwargs, "criterion")
            if "reduction" not in kwargs and _accepts(criterion, "reduction"):
                kwargs["reduction"] = "none"  # per-sample losses, so sample weights apply
            criterion = criterion(**kwargs)
        self.criterion_ = criterion
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> Any:
        spec = optim.get(self.optimizer)
        named_parameters = self.get_all_learnable_params()
        args, kwargs = self.get_params_for_optimizer("optimizer", named_parameters)
        routed_lr = "lr" in self.get_params_for("optimizer")
        if spec.lr_free and not routed_lr:
            kwargs.pop("lr", None)  # an lr-free method keeps its own multiplier unless optimizer__lr is set
        elif kwargs.get("lr") is None:
            kwargs.pop("lr", None)  # lr=None: the optimizer's own default
        try:
            optimizer = spec.build(*args, module=self.module_, **kwargs)
        except (ValueError, TypeError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
            raise ValueError(f"The optimizer {spec.name!r} rejected its arguments ({shown}): {exc}") from None
        self._optimizer_spec = spec
        self.optimizer_ = optimizer
        return self

    def schedule_object(self) -> schedules.Schedule:
        """The schedule of this fit: ``schedule`` (a name or a Schedule object, copied) with the routed
        ``schedule__*`` parameters applied; ``None`` is the constant schedule."""
        return schedules.create(self.schedule, **self.get_params_for("schedule"))

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        iterator = getattr(self, prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = max(1, len(dataset))
        if isinstance(iterator, type) and issubclass(iterator, TensorBatchIterator):
            dataset = _as_tensor_data(dataset)
            kwargs.setdefault("shuffle", training)
            if training:
                kwargs.setdefault("generator", getattr(self, "_batch_generator", None))
        result = iterator(dataset, **kwargs)
        if training:
            self._train_batches_per_epoch = len(result)  # the schedule's steps per epoch
        return result

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        if is_dataset(X):
            return X
        with self._resolved_device():
            return TensorData(self._tensor(self._validate_X(X, reset=False), self._torch_dtype()))

    def get_split_datasets(self, X: Any, y: Any = None, **fit_params: Any) -> tuple[Any, Any]:
        dataset = X
        train_split = self.train_split
        if train_split is not None:
            targets = None if getattr(dataset, "y", None) is None else dataset.y.cpu().numpy()
            train, valid = train_split(dataset, targets, **fit_params)
            return _as_tensor_data(train), None if valid is None else _as_tensor_data(valid)
        if not self.early_stopping:
            return dataset, None
        n = len(dataset)
        if n < 2:
            raise ValueError(f"early_stopping needs at least 2 samples to hold some out; got {n}.")
        indices = np.arange(n)
        stratify = self._stratify_labels(dataset)
        try:
            train_idx, valid_idx = train_test_split(
                indices,
                test_size=self.validation_fraction,
                random_state=self._seeds["split"],
                stratify=stratify,
            )
        except ValueError:
            if stratify is None:
                raise
            # a class too small to appear on both sides: fall back to a plain random split
            train_idx, valid_idx = train_test_split(
                indices,
                test_size=self.validation_fraction,
                random_state=self._seeds["split"],
            )
        return dataset.subset(np.sort(train_idx)), dataset.subset(np.sort(valid_idx))

    def _stratify_labels(self, dataset: TensorData) -> np.ndarray | None:
        return None

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        self._set_training(True)
        Xi, yi, wi = _unpack(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True, sample_weight=wi)
        if self._optimizer_spec.needs_create_graph:
            with warnings.catch_warnings():
                # torch warns that .grad now references its own graph; train_step sets .grad to None after step()
                warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph=True", UserWarning)
                loss.backward(create_graph=True)
        else:
            loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        self._set_training(False)
        Xi, yi, wi = _unpack(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False, sample_weight=wi)
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        spec = self._optimizer_spec
        if spec.needs_closure:
            return super().train_step(batch, **fit_params)
        # one forward/backward, then step() without a closure: the closure is not called behind our back
        self._zero_grad_optimizer(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self._step_optimizer(None)
        if spec.needs_create_graph:
            self._zero_grad_optimizer(set_to_none=True)  # free the double-backward graph
        return step

    def infer(self, x: Any, **fit_params: Any) -> Any:
        if isinstance(x, torch.Tensor) and not fit_params:
            return self.module_(x)  # already on the device (TensorData)
        return super().infer(x, **fit_params)

    def get_loss(
        self,
        y_pred: torch.Tensor,
        y_true: torch.Tensor,
        X: Any = None,
        training: bool = False,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if not isinstance(y_true, torch.Tensor) or y_true.device != y_pred.device:
            y_true = to_device(torch.as_tensor(y_true), y_pred.device)
        loss = self.criterion_(y_pred, y_true)
        if loss.ndim == 0:
            return loss
        if loss.ndim > 1:
            loss = loss.reshape(len(loss), -1).mean(dim=1)
        if sample_weight is None:
            return loss.mean()
        return (loss * sample_weight).sum() / len(loss)

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kwargs: Any) -> None:
        loss = kwargs.get("loss")
        if loss is not None and not math.isfinite(loss.item()):
            epoch = len(self.history)
            phase = "training" if training else "validation"
            raise FloatingPointError(
                f"The {phase} loss of {self._owner()} became {loss.item()} at epoch {epoch}: the fit diverged. "
                "Lower the learning rate, set clip_grad_norm (e.g. 1.0), or standardise the inputs."
            )

    def _stopped_early(self) -> bool:
        return any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in getattr(self, "callbacks_", [])
        )

    def _train(self, dataset: TensorData, epochs: int | None = None) -> None:
        """skorch's ``partial_fit`` minus one thing: a real Ctrl-C stops the fit instead of being swallowed."""
        self.notify("on_train_begin", X=dataset, y=None)
        try:
            self.fit_loop(dataset, None, epochs=epochs)
        except KeyboardInterrupt:
            if not self._stopped_early():
                raise
        self.notify("on_train_end", X=dataset, y=None)
        self._check_finite_state()

    def _non_finite_state(self) -> str | None:
        """The name of the first parameter or floating buffer of the module holding NaN or infinity, if any."""
        module = getattr(self, "module_", None)
        if module is None:
            return None
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return name
        return None

    def _check_finite_state(self) -> None:
        """A last step can blow the weights up while every loss seen was finite: never return such a model."""
        name = self._non_finite_state()
        if name is not None:
            raise FloatingPointError(
                f"The weights of {self._owner()} became NaN or infinite at epoch {len(self.history)} ({name!r}) "
                "although every loss was finite: the fit diverged. Lower the learning rate, set clip_grad_norm "
                "(e.g. 1.0), or standardise the inputs."
            )

    def _fit_dataset(self, dataset: TensorData, *, initialize: bool) -> Any:
        """Initialise (seeded) if asked, then train on ``dataset`` with seeded shuffling and dropout."""
        with self._resolved_device():
            if initialize:
                with self._torch_rng(self._seeds["init"]):
                    self.initialize()
            generator_device = torch.device(self.device_) if self.device_ else torch.device("cpu")
            self._batch_generator = torch.Generator(device=generator_device).manual_seed(self._seeds["train"])
            try:
                with self._torch_rng(self._seeds["train"]):
                    self._train(dataset)
            finally:
                del self._batch_generator
        return self

    def forward_iter(self, X: Any, training: bool = False, device: Any = "cpu") -> Iterator[Any]:
        check_is_fitted(self)
        with self._resolved_device():
            dataset = self.get_dataset(X)
            iterator = self.get_iterator(dataset, training=training)
            self._set_training(training)
            with torch.set_grad_enabled(training):
                for batch in iterator:
                    yield to_device(self.infer(batch[0]), device=device)

    def _raw_predict(self, X: Any) -> torch.Tensor:
        """Validated X -> module output for all rows, on the training device, in eval mode."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with self._resolved_device():
            outputs = list(self.forward_iter(TensorData(self._tensor(X, self._torch_dtype())), device=None))
        out = torch.cat(outputs) if outputs else torch.empty(0)
        if out.is_floating_point() and not bool(torch.isfinite(out).all()):
            self._raise_non_finite_output(out)
        return out

    def _raise_non_finite_output(self, out: torch.Tensor) -> None:
        """Never return NaN predictions silently: say whether the weights or the inputs are to blame."""
        owner = self._owner()
        if self._non_finite_state() is not None:
            raise FloatingPointError(
                f"{owner} cannot predict: its weights contain NaN or infinity (its last fit diverged). Fit it "
                "again with a lower learning rate or with clip_grad_norm."
            )
        bad = int((~torch.isfinite(out.reshape(len(out), -1))).any(dim=1).sum())
        largest = max((float(p.detach().abs().max()) for p in self.module_.parameters() if p.numel()), default=0.0)
        raise FloatingPointError(
            f"{owner} produced NaN or infinite outputs for {bad} of {len(out)} rows: the network overflows "
            f"dtype={self.dtype!r} on them although its weights are finite (largest magnitude {largest:.3g}). "
            "Huge weights mean the fit diverged (lower the learning rate or set clip_grad_norm); otherwise the rows "
            "are far outside the training data (scale X as at fit time) or need dtype='float64'."
        )

    # ------------------------------------------------------------------------------------------ fit entry

    def _validate_Xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        _check_numeric_frame(X, self._owner())
        if sparse.issparse(y):
            raise TypeError(
                "Sparse data was passed for y, but dense data is required. Use '.toarray()' to convert to a dense "
                "numpy array."
            )
        try:
            X, y = validate_data(
                self,
                X,
                y,
                reset=reset,
                dtype=(np.float64, np.float32),
                ensure_all_finite=True,
                accept_sparse=False,
                multi_output=self._multi_output_y,
                y_numeric=self._multi_output_y,
            )
        except ValueError as exc:
            if "could not convert" in str(exc):
                raise ValueError(f"{exc}. {self._owner()} needs numeric X: {_ENCODE_HINT}") from None
            raise
        except TypeError as exc:
            if "argument must be" in str(exc):
                raise TypeError(f"{exc}. {self._owner()} needs numeric X: {_ENCODE_HINT}") from None
            raise
        return self._as_compute_dtype(X, "X"), y

    _multi_output_y = False

    def _prepare_targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, *, reset: bool, classes: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError  # pragma: no cover - each estimator defines it

    def _start(self, X: Any, y: Any, sample_weight: Any, *, reset: bool, classes: Any = None) -> TensorData:
        """Validate parameters and data, encode targets, seed, and build the device tensors."""
        self._check_params()
        X, y = self._validate_Xy(X, y, reset=reset)
        sw = self._validate_sample_weight(sample_weight, X)
        y, sw = self._prepare_targets(y, sw, reset=reset, classes=classes)
        if reset or not hasattr(self, "device_"):
            self._set_device_attr()
        self._draw_seeds()
        with self._resolved_device():
            return self._make_dataset(X, y, sw)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the network on ``X``, ``y`` (re-initialised unless ``warm_start`` and already fitted).

        Parameters
        ----------
        X:
            Numeric array-like or pandas DataFrame of shape ``(n_samples, n_features)``.
        y:
            Targets of shape ``(n_samples,)`` (or ``(n_samples, n_outputs)`` for regression).
        sample_weight:
            Non-negative weights of shape ``(n_samples,)``.
        """
        keep = bool(self.warm_start) and bool(self.initialized_)
        dataset = self._start(X, y, sample_weight, reset=not keep)
        return self._fit_dataset(dataset, initialize=not keep)

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """Train for ``max_epochs`` more epochs without re-initialising (skorch's semantics).

        The first call initialises like ``fit``; ``classes`` (classifiers) fixes the label set then.
        """
        first = not self.initialized_
        dataset = self._start(X, y, sample_weight, reset=first, classes=classes)
        return self._fit_dataset(dataset, initialize=first)

    def check_data(self, X: Any, y: Any = None) -> None:
        """Data is validated in ``fit``; nothing left to check here."""

    # ------------------------------------------------------------------------------------------- sklearn

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags

    def _set_device_attr(self) -> None:
        self.device_ = resolve_device(self.device)
        if isinstance(self.device_, torch.device):
            self.device_ = str(self.device_)


_ENCODE_HINT = "encode categorical or text columns first, e.g. with a ColumnTransformer(OneHotEncoder()) in a Pipeline."


def _check_numeric_frame(X: Any, owner: str) -> None:
    """A pandas frame with non-numeric columns gets an error naming them (instead of a float conversion error)."""
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        return
    try:
        from pandas.api.types import is_numeric_dtype
    except ImportError:  # pragma: no cover - a frame without pandas
        return
    bad = [str(c) for c, d in X.dtypes.items() if not is_numeric_dtype(d)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise ValueError(f"{owner} needs numeric X, but column(s) {shown} are not numeric: {_ENCODE_HINT}")


def _check_component(value: Any, name: str, owner: str, expected: str) -> None:
    """``module`` / ``criterion``: a ``torch.nn.Module`` instance or something callable that builds one."""
    if not (isinstance(value, torch.nn.Module) or callable(value)) or isinstance(value, str):
        raise ValueError(invalid_param_message(name, owner, expected, value))


def _check_routed_names(factory: Any, kwargs: Mapping[str, Any], prefix: str) -> None:
    """``<prefix>__<name>`` arguments the factory does not take: an error listing close matches, before the call."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    known = [n for n, p in params.items() if p.kind in kinds and n != "self"]
    for key in kwargs:
        if key not in known:
            kind = f"{getattr(factory, '__name__', prefix)} parameter"
            raise unknown_name_error(kind, key, known, hint=f"(It was routed to the {prefix} as {prefix}__{key}.)")


def _is_callback_entry(entry: Any) -> bool:
    from skorch.callbacks import Callback

    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
        entry = entry[1]
    return isinstance(entry, Callback) or (isinstance(entry, type) and issubclass(entry, Callback))


def _signature_names(factory: Any) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def _required_names(factory: Any) -> set[str]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n for n, p in params.items() if p.default is p.empty and p.kind in kinds}


def _unpack(batch: Any) -> tuple[Any, Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    Xi, yi = unpack_data(batch)
    return Xi, yi, None


def _as_tensor_data(dataset: Any) -> Any:
    """Turn a ``torch.utils.data.Subset`` of a :class:`TensorData` (from a skorch ``train_split``) into one."""
    if isinstance(dataset, TensorData):
        return dataset
    if isinstance(dataset, torch.utils.data.Subset) and isinstance(dataset.dataset, TensorData):
        return dataset.dataset.subset(list(dataset.indices))
    return dataset
