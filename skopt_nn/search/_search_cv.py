"""NeuralSearchCV: an Optuna study over an estimator's training algorithm, as a scikit-learn meta-estimator."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skopt_nn._validation import invalid_param_message, unknown_name_error
from skopt_nn.search._cem import CrossEntropySampler
from skopt_nn.search._space import SpaceLike, final_step, resolve_space

__all__ = ["NeuralSearchCV", "make_pruner", "make_sampler"]

logger = logging.getLogger(__name__)

SAMPLERS = ("cem", "tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("median", "hyperband", "successive_halving")


def make_sampler(sampler: str | BaseSampler, seed: int | None = None) -> BaseSampler:
    """A sampler by name (``"cem"``, ``"tpe"``, ``"random"``, ``"cmaes"``, ``"gp"``, ``"qmc"``) or the object."""
    if isinstance(sampler, BaseSampler):
        return sampler
    if sampler == "cem":
        return CrossEntropySampler(seed=seed)
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "cmaes":
        # CMA-ES handles numerical parameters jointly; the categorical/conditional ones go to its fallback
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if sampler == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if isinstance(sampler, str):
        raise unknown_name_error("sampler", sampler, SAMPLERS)
    raise ValueError(
        invalid_param_message("sampler", "NeuralSearchCV", f"one of {SAMPLERS} or an Optuna sampler", sampler)
    )


def make_pruner(pruner: str | optuna.pruners.BasePruner | None) -> optuna.pruners.BasePruner:
    """A pruner by name (``"median"``, ``"hyperband"``, ``"successive_halving"``), an object, or None (no pruning)."""
    if pruner is None:
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2)
    if isinstance(pruner, str):
        raise unknown_name_error("pruner", pruner, PRUNERS)
    raise ValueError(invalid_param_message("pruner", "NeuralSearchCV", f"one of {PRUNERS}, a pruner or None", pruner))


class _ReportToTrial(Callback):
    """After every epoch, score the held-out fold and report it to the trial; stop the fit if the pruner says so.

    Steps are ``fold * max_epochs + epoch`` so every trial reports the same step for the same amount of work.
    """

    def __init__(self, trial: optuna.Trial, scorer: Any, scored: Any, X_val: Any, y_val: Any, offset: int) -> None:
        self.trial, self.scorer, self.X_val, self.y_val, self.offset = trial, scorer, X_val, y_val, offset
        self.scored = scored  # the estimator being fitted: the net itself, or the Pipeline around it

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        epoch = len(net.history) - 1
        score = float(self.scorer(self.scored, self.X_val, self.y_val))
        net.history.record("search_score", score)
        if not np.isfinite(score):
            return
        step = self.offset + epoch
        self.trial.report(score, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (score {score:.4g})")


class NeuralSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search an estimator's hyperparameters — the optimizer, its hyperparameters, the schedule — with Optuna.

    Each trial samples a point of ``space`` (routing names, applied with ``set_params``), fits the estimator on
    every training fold of ``cv`` and scores the held-out fold; the trial's value is the mean score (higher is
    better, as in scikit-learn). With a pruner, every epoch's held-out score is reported to Optuna so bad trials
    stop early. A trial that raises (a diverging loss, a bad combination) is recorded as failed with its error in
    ``cv_results_["error"]`` and the search goes on.

    Parameters:
        estimator: a :class:`~skopt_nn.NeuralClassifier` / :class:`~skopt_nn.NeuralRegressor` (any scikit-learn
            estimator works; per-epoch pruning needs a skorch-based one).
        space: ``"auto"`` (optimizer -> its hyperparameters -> schedule -> its parameters -> network), a
            :class:`~skopt_nn.search.SearchSpace` (e.g. from :func:`~skopt_nn.search.auto_space` with fewer
            optimizers), a dict of routing name -> dimension / Optuna distribution / list of choices, or a function
            ``trial -> dict``.
        sampler: ``"cem"`` (:class:`~skopt_nn.search.CrossEntropySampler`), ``"tpe"``, ``"random"``, ``"cmaes"``,
            ``"gp"``, ``"qmc"`` or an Optuna sampler object.
        n_trials: trials of the study in total (a resumed study counts the trials it already has).
        timeout: seconds after which no new trial starts.
        cv, scoring: as in :class:`sklearn.model_selection.GridSearchCV`.
        pruner: ``"median"``, ``"hyperband"``, ``"successive_halving"``, an Optuna pruner, or ``None``.
        storage: ``None`` (in memory), an Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``) or a
            storage object; with ``study_name`` a second call continues the same study.
        n_jobs: trials run at once in this process (threads).
        refit: fit ``best_estimator_`` on the whole data with the best parameters.
        random_state: seeds the sampler and, when the estimator has ``random_state=None``, the estimator.
        verbose: 0 silent; 1 one line per trial (Optuna's log).
        callbacks: Optuna callbacks ``f(study, trial)`` called after each trial (progress bars, early stops).
        enqueue: Optuna parameters to try first (a portfolio warm start), e.g. ``[{"optimizer": "adamw"},
            {"optimizer": "lion"}]`` so that every optimizer is tried at least once; parameters a dict leaves out
            come from the sampler. Entries already in the study are not enqueued again.

    Attributes:
        best_estimator_, best_params_, best_score_, best_index_, study_, cv_results_, n_trials_, refit_time_,
        n_splits_, scorer_.
    """

    _parameter_constraints: dict = {"estimator": [HasMethods(["fit"])]}

    def __init__(
        self,
        estimator: Any,
        space: SpaceLike = "auto",
        *,
        sampler: str | BaseSampler = "cem",
        n_trials: int = 20,
        timeout: float | None = None,
        cv: Any = 3,
        scoring: Any = None,
        pruner: str | optuna.pruners.BasePruner | None = "median",
        storage: Any = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        refit: bool = True,
        random_state: int | None = None,
        verbose: int = 0,
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
        enqueue: list[dict[str, Any]] | None = None,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.sampler = sampler
        self.n_trials = n_trials
        self.timeout = timeout
        self.cv = cv
        self.scoring = scoring
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.refit = refit
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.enqueue = enqueue

    # --------------------------------------------------------------------------------------------- validation

    def _check_params(self) -> None:
        owner = "NeuralSearchCV"
        if not hasattr(self.estimator, "fit") or not hasattr(self.estimator, "set_params"):
            raise ValueError(invalid_param_message("estimator", owner, "a scikit-learn estimator", self.estimator))
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, (int, np.integer)) or self.n_trials < 1:
            raise ValueError(invalid_param_message("n_trials", owner, "an int in the range [1, inf)", self.n_trials))
        if self.timeout is not None and (
            isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or self.timeout <= 0
        ):
            raise ValueError(
                invalid_param_message("timeout", owner, "a float in the range (0, inf) or None", self.timeout)
            )
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, (int, np.integer)) or self.n_jobs == 0:
            raise ValueError(invalid_param_message("n_jobs", owner, "a non-zero int (-1: one per CPU)", self.n_jobs))
        if not isinstance(self.refit, (bool, np.bool_)):
            raise ValueError(invalid_param_message("refit", owner, "a bool", self.refit))

    def _estimator_for(self, params: Mapping[str, Any]) -> Any:
        estimator = clone(self.estimator)
        net, prefix = final_step(estimator)
        if self.random_state is not None and net.get_params().get("random_state", 0) is None:
            estimator.set_params(**{f"{prefix}random_state": self.random_state})
        return estimator.set_params(**params)

    # --------------------------------------------------------------------------------------------- the search

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> NeuralSearchCV:
        """Run the study (or continue it), then refit the best parameters on all of ``X, y``."""
        self._check_params()
        space_fn = resolve_space(self.space, self.estimator)
        X, y = indexable(X, y)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y))
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        sampler = make_sampler(self.sampler, self.random_state)
        pruner = make_pruner(self.pruner)
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=self.study_name is not None,
        )
        prune = not isinstance(pruner, optuna.pruners.NopPruner)
        errors: dict[int, Exception] = {}  # this call's failed trials, to re-raise if nothing else worked

        def objective(trial: optuna.Trial) -> float:
            params = space_fn(trial)
            try:
                return self._evaluate(trial, params, X, y, splits, fit_params, prune)
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                errors.setdefault(trial.number, exc)
                raise

        for params in self.enqueue or []:
            study.enqueue_trial(dict(params), skip_if_exists=True)
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))
        remaining = self.n_trials - done
        if remaining > 0:
            previous = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.INFO if self.verbose else optuna.logging.ERROR)
            try:
                study.optimize(
                    objective,
                    n_trials=remaining,
                    timeout=self.timeout,
                    n_jobs=self.n_jobs,
                    catch=(Exception,),
                    callbacks=self.callbacks,
                )
            finally:
                optuna.logging.set_verbosity(previous)
        self.study_ = study
        self._build_results(study, space_fn)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            if errors and all(t.state == TrialState.FAIL for t in study.trials):
                # the same bad input or setting in every trial: show the estimator's own error, not a summary
                raise errors[min(errors)]
            shown = sorted({str(t.user_attrs.get("error", "")) for t in study.trials} - {""})
            raise RuntimeError(
                f"Every trial of the search failed or was pruned ({len(study.trials)} trials); "
                f"errors: {shown[:5]}; the study is kept in study_ (cv_results_ has every trial)."
            )
        best = study.best_trial
        self.best_params_ = _point(space_fn, best)
        self.best_score_ = float(best.value)  # type: ignore[arg-type]
        self.best_index_ = int([t.number for t in study.trials].index(best.number))
        self.n_trials_ = len(study.trials)
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = self._estimator_for(self.best_params_).fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "n_features_in_"):
                self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def _evaluate(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        X: Any,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        fit_params: dict[str, Any],
        prune: bool,
    ) -> float:
        scores, fit_time = [], 0.0
        for fold, (train, test) in enumerate(splits):
            estimator = self._estimator_for(params)
            X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train) if y is not None else None
            X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test) if y is not None else None
            net, prefix = final_step(estimator)
            if prune and "callbacks" in net.get_params(deep=False):
                max_epochs = int(net.get_params().get("max_epochs", 1))
                # the reporter scores the whole estimator (a Pipeline transforms X_test first)
                reporter = _ReportToTrial(trial, self.scorer_, estimator, X_test, y_test, offset=fold * max_epochs)
                own = net.get_params(deep=False)["callbacks"]
                own = list(own) if isinstance(own, (list, tuple)) else []
                estimator.set_params(**{f"{prefix}callbacks": [*own, ("search_report", reporter)]})
            start = time.perf_counter()
            estimator.fit(X_train, y_train, **fit_params)
            fit_time += time.perf_counter() - start
            score = float(self.scorer_(estimator, X_test, y_test))
            if not np.isfinite(score):
                raise FloatingPointError(f"the score of fold {fold} is {score}")
            scores.append(score)
            trial.set_user_attr("split_scores", scores)
        trial.set_user_attr("fit_time", fit_time / len(splits))
        return float(np.mean(scores))

    def _build_results(self, study: optuna.Study, space_fn: Callable[[Any], dict[str, Any]]) -> None:
        trials = list(study.trials)
        points = [_point(space_fn, t) for t in trials]
        names = sorted({k for p in points for k in p})
        n = len(trials)
        results: dict[str, Any] = {"params": points, "trial_number": np.array([t.number for t in trials])}
        for name in names:
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
            for i, p in enumerate(points):
                if name in p:
                    column[i] = p[name]
            results[f"param_{name}"] = column
        split_scores = np.full((n, self.n_splits_), np.nan)
        for i, t in enumerate(trials):
            values = t.user_attrs.get("split_scores", [])
            if t.state == TrialState.COMPLETE:
                split_scores[i, : len(values)] = values
        for k in range(self.n_splits_):
            results[f"split{k}_test_score"] = split_scores[:, k]
        mean = np.array([t.value if t.state == TrialState.COMPLETE else np.nan for t in trials], dtype=float)
        results["mean_test_score"] = mean
        complete = ~np.isnan(mean)
        std = np.full(n, np.nan)
        std[complete] = split_scores[complete].std(axis=1)
        results["std_test_score"] = std
        order = np.argsort(-np.where(np.isnan(mean), -np.inf, mean), kind="stable")
        rank = np.empty(n, dtype=np.int32)
        rank[order] = np.arange(1, n + 1)
        results["rank_test_score"] = rank
        results["mean_fit_time"] = np.array([t.user_attrs.get("fit_time", np.nan) for t in trials], dtype=float)
        results["state"] = np.array([t.state.name for t in trials], dtype=object)
        results["error"] = np.array([t.user_attrs.get("error", "") for t in trials], dtype=object)
        self.cv_results_ = results

    # --------------------------------------------------------------------------------------------- delegation

    def _best_has(name: str) -> Callable[[Any], bool]:
        def check(self: NeuralSearchCV) -> bool:
            if not self.refit:
                return False
            return hasattr(getattr(self, "best_estimator_", self.estimator), name)

        return check

    @available_if(_best_has("predict"))
    def predict(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_best_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The search's scorer on the refitted best estimator."""
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, X, y))

    @property
    def classes_(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags = inner.input_tags
        tags.target_tags = inner.target_tags
        tags.non_deterministic = inner.non_deterministic
        return tags


def _point(space_fn: Callable[[Any], dict[str, Any]], trial: FrozenTrial) -> dict[str, Any]:
    """The routing-name point of a stored trial: replay the space on its Optuna parameters."""
    try:
        return space_fn(optuna.trial.FixedTrial(trial.params, number=trial.number))
    except ValueError:  # a trial that failed before it had every parameter
        return {}
