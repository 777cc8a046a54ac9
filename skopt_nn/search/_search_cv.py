"""NeuralSearchCV: an Optuna study over an estimator's training algorithm, as a scikit-learn meta-estimator."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skopt_nn._validation import Interval, check_int, invalid_param_message, unknown_name_error
from skopt_nn.search._cem import CrossEntropySampler
from skopt_nn.search._space import SpaceLike, final_step, resolve_space
from skopt_nn.search._storage import (
    ALIVE,
    HEARTBEAT_ATTR,
    INTERRUPTED,
    N_TRIALS_ATTR,
    SURPLUS,
    fail_stale_trials,
    heartbeat_enabled,
    is_shared,
    is_surplus,
    open_storage,
    requeue_interrupted,
    store_job,
    tally,
)

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


class _Surplus(Exception):
    """A trial created after the study's budget was full (a race for the last slot): closed at once, never counted."""


@dataclass
class _Run:
    """What a process needs to run trials of one study: the study, its storage, the space, data and CV splits."""

    study: optuna.Study
    storage: BaseStorage | None
    space_fn: Callable[[Any], dict[str, Any]]
    X: Any
    y: Any
    splits: list[tuple[np.ndarray, np.ndarray]]
    fit_params: dict[str, Any]
    prune: bool


class NeuralSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search an estimator's hyperparameters — the optimizer, its hyperparameters, the schedule — with Optuna.

    Each trial samples a point of ``space`` (routing names, applied with ``set_params``), fits the estimator on
    every training fold of ``cv`` and scores the held-out fold; the trial's value is the mean score (higher is
    better, as in scikit-learn). With a pruner, every epoch's held-out score is reported to Optuna so bad trials
    stop early. A trial that raises (a diverging loss, a bad combination) is recorded as failed with its error in
    ``cv_results_["error"]`` and the search goes on.

    With a shared ``storage`` (a database server, or a journal file on a shared file system) and a ``study_name``,
    worker processes on this or other machines join the study while ``fit`` runs (``skopt-nn worker --storage URL
    --study NAME``, see ``docs/distributed.md``): the study carries the job (estimator, space, data, CV splits),
    ``n_trials`` counts every process's trials, and the results include them all.

    Parameters:
        estimator: a :class:`~skopt_nn.NeuralClassifier` / :class:`~skopt_nn.NeuralRegressor` (any scikit-learn
            estimator works; per-epoch pruning needs a skorch-based one).
        space: ``"auto"`` (optimizer -> its hyperparameters -> schedule -> its parameters -> network), a
            :class:`~skopt_nn.search.SearchSpace` (e.g. from :func:`~skopt_nn.search.auto_space` with fewer
            optimizers), a dict of routing name -> dimension / Optuna distribution / list of choices, or a function
            ``trial -> dict``.
        sampler: ``"cem"`` (:class:`~skopt_nn.search.CrossEntropySampler`), ``"tpe"``, ``"random"``, ``"cmaes"``,
            ``"gp"``, ``"qmc"`` or an Optuna sampler object.
        n_trials: trials of the study in total, over every process working on it (a resumed study counts the
            trials it already has). COMPLETE, PRUNED and FAIL trials count; a trial whose worker was lost (no
            heartbeat) or that was interrupted (Ctrl-C) is FAIL and queued again, and only its retry counts.
        timeout: seconds after which no new trial starts.
        cv, scoring: as in :class:`sklearn.model_selection.GridSearchCV`.
        pruner: ``"median"``, ``"hyperband"``, ``"successive_halving"``, an Optuna pruner, or ``None``.
        storage: ``None`` (in memory), an Optuna storage URL — ``sqlite:///study.db`` (one process),
            ``postgresql://user:password@host/db`` or ``mysql://...`` (a server shared by workers),
            ``journal:///path/study.log`` or a path ending ``.log`` (a journal file, no server) — or an Optuna
            storage object (used as given); with ``study_name`` a second call continues the same study. An
            unreachable storage raises a ConnectionError before any training.
        study_name: the study's name in ``storage`` (workers join it by this name).
        n_jobs: trials run at once in this process (threads).
        refit: fit ``best_estimator_`` on the whole data with the best parameters.
        random_state: seeds the sampler and, when the estimator has ``random_state=None``, the estimator.
        verbose: 0 silent; 1 one line per trial (Optuna's log).
        callbacks: Optuna callbacks ``f(study, trial)`` called after each trial of this process (progress bars,
            early stops); workers do not run them.
        enqueue: Optuna parameters to try first (a portfolio warm start), e.g. ``[{"optimizer": "adamw"},
            {"optimizer": "lion"}]`` so that every optimizer is tried at least once; parameters a dict leaves out
            come from the sampler. Entries already in the study are not enqueued again.
        heartbeat_interval: with a storage URL (not in-memory SQLite), every running trial records a heartbeat
            every this many seconds; a trial silent for three intervals (its process was killed, its machine
            lost) is marked FAIL and queued again with the same parameters (at most 3 times). ``None``: no
            heartbeats, and a killed process leaves its trial RUNNING. Workers use the study's value.

    Attributes:
        best_estimator_, best_params_, best_score_, best_index_, study_, cv_results_ (one row per trial that ran,
        any process; not the queued WAITING ones), n_trials_ (its rows), refit_time_, n_splits_, scorer_.
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
        heartbeat_interval: int | None = 10,
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
        self.heartbeat_interval = heartbeat_interval

    # --------------------------------------------------------------------------------------------- validation

    def _check_params(self) -> None:
        owner = "NeuralSearchCV"
        if not hasattr(self.estimator, "fit") or not hasattr(self.estimator, "set_params"):
            raise ValueError(invalid_param_message("estimator", owner, "a scikit-learn estimator", self.estimator))
        check_int(self.n_trials, "n_trials", owner, Interval(1, None, "left"))
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
        check_int(self.heartbeat_interval, "heartbeat_interval", owner, Interval(1, None, "left"), allow_none=True)
        if self.study_name is not None and not isinstance(self.study_name, str):
            raise ValueError(invalid_param_message("study_name", owner, "a str or None", self.study_name))
        check_int(self.random_state, "random_state", owner, Interval(0, None, "left"), allow_none=True)
        enqueue = self.enqueue
        if enqueue is not None and (
            isinstance(enqueue, (str, bytes, Mapping))
            or not isinstance(enqueue, (list, tuple))
            or not all(isinstance(point, Mapping) for point in enqueue)
        ):
            raise ValueError(
                invalid_param_message("enqueue", owner, "a list of dicts (Optuna parameter -> value) or None", enqueue)
            )
        callbacks = self.callbacks
        if callbacks is not None and (
            not isinstance(callbacks, (list, tuple)) or not all(callable(callback) for callback in callbacks)
        ):
            raise ValueError(
                invalid_param_message(
                    "callbacks", owner, "a list of callables (study, frozen_trial) -> None, or None", callbacks
                )
            )

    def _estimator_for(self, params: Mapping[str, Any]) -> Any:
        estimator = clone(self.estimator)
        net, prefix = final_step(estimator)
        if self.random_state is not None and net.get_params().get("random_state", 0) is None:
            estimator.set_params(**{f"{prefix}random_state": self.random_state})
        return estimator.set_params(**params)

    # --------------------------------------------------------------------------------------------- the search

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> NeuralSearchCV:
        """Run the study (or continue it) until it has ``n_trials`` trials, then refit the best parameters on all
        of ``X, y``.

        Workers may run some of the trials (shared storage); ``fit`` waits for their running trials before it
        builds the results. Ctrl-C (KeyboardInterrupt) stops the search: the interrupted trial is marked FAIL and a
        copy with the same parameters is queued, so calling ``fit`` again with the same ``storage`` and
        ``study_name`` continues the study and runs it first; completed trials are kept.
        """
        run = self._open(X, y, fit_params)
        errors: dict[int, Exception] = {}  # this call's failed trials, to re-raise if nothing else worked
        try:
            self._run_trials(
                run,
                errors,
                target=lambda: int(self.n_trials),
                limit=None,
                timeout=self.timeout,
                n_jobs=self.n_jobs,
                callbacks=list(self.callbacks or []),
            )
        except KeyboardInterrupt:
            requeue_interrupted(run.study)
            raise
        study = run.study
        self.study_ = study
        trials = self._build_results(study, run.space_fn)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            if errors and all(t.state == TrialState.FAIL for t in trials):
                # the same bad input or setting in every trial: show the estimator's own error, not a summary
                raise errors[min(errors)]
            shown = sorted({str(e) for e in self.cv_results_["error"]} - {""})
            raise RuntimeError(
                f"Every trial of the search failed or was pruned ({len(trials)} trials); "
                f"errors: {shown[:5]}; the study is kept in study_ (cv_results_ has every trial)."
            )
        best = max(complete, key=lambda t: (float(t.value), -t.number))  # type: ignore[arg-type]
        self.best_params_ = _point(run.space_fn, best)
        self.best_score_ = float(best.value)  # type: ignore[arg-type]
        self.best_index_ = int([t.number for t in trials].index(best.number))
        self.n_trials_ = len(trials)
        X, y = run.X, run.y
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = self._estimator_for(self.best_params_).fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "n_features_in_"):
                self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def _open(self, X: Any, y: Any, fit_params: dict[str, Any], *, for_workers: bool = False) -> _Run:
        """Validate, open the storage (failing fast), create or load the study; with a shared storage, store the
        job and the study-wide ``n_trials`` in it for workers; queue again the trials a Ctrl-C interrupted; enqueue
        the portfolio."""
        self._check_params()
        storage = open_storage(self.storage, heartbeat_interval=self.heartbeat_interval)
        if for_workers and (not is_shared(storage) or self.study_name is None):
            raise ValueError(
                "Workers join a study by name in a shared storage: set NeuralSearchCV(storage='postgresql://...' "
                f"or 'journal:///path/study.log', study_name=...). Got storage={self.storage!r}, "
                f"study_name={self.study_name!r}."
            )
        space_fn = resolve_space(self.space, self.estimator)
        X, y = indexable(X, y)
        if is_classifier(self.estimator) and y is not None:
            # labels scikit-learn's metrics cannot score (e.g. an object array of numbers) fail every trial at
            # scoring time otherwise; refuse them once, in scikit-learn's words
            check_classification_targets(y)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y))
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        pruner = make_pruner(self.pruner)
        study = optuna.create_study(
            storage=storage,
            study_name=self.study_name,
            sampler=make_sampler(self.sampler, self.random_state),
            pruner=pruner,
            direction="maximize",
            load_if_exists=self.study_name is not None,
        )
        if is_shared(storage):
            assert storage is not None
            study.set_user_attr(N_TRIALS_ATTR, int(self.n_trials))
            study.set_user_attr(
                HEARTBEAT_ATTR, None if self.heartbeat_interval is None else int(self.heartbeat_interval)
            )
            job = {"search": self._job_copy(), "X": X, "y": y, "splits": splits, "fit_params": fit_params}
            try:
                store_job(storage, storage.get_study_id_from_name(study.study_name), job)
            except Exception as exc:  # cloudpickle's errors vary: PicklingError, TypeError, AttributeError ...
                if for_workers:
                    raise ValueError(
                        f"The job of study {study.study_name!r} cannot be pickled for workers: {exc}"
                    ) from exc
                warnings.warn(
                    f"Workers cannot join study {study.study_name!r}: its job (estimator, space, data) cannot be "
                    f"pickled ({type(exc).__name__}: {exc}); the search runs in this process only.",
                    UserWarning,
                    stacklevel=3,
                )
        requeue_interrupted(study)
        for params in self.enqueue or []:
            if tally(study.get_trials(deepcopy=False)).counted >= self.n_trials:
                break
            study.enqueue_trial(dict(params), skip_if_exists=True)
        prune = not isinstance(pruner, optuna.pruners.NopPruner)
        return _Run(study, storage, space_fn, X, y, splits, fit_params, prune)

    def _job_copy(self) -> NeuralSearchCV:
        """This search's settings for a worker: an unfitted copy without storage, callbacks or portfolio."""
        params = self.get_params(deep=False)
        params.update(estimator=clone(self.estimator), storage=None, callbacks=None, enqueue=None)
        return type(self)(**params)

    def _from_job(self, study: optuna.Study, storage: BaseStorage, job: dict[str, Any]) -> _Run:
        """The run of a worker: this search comes from a stored job."""
        self.n_splits_ = len(job["splits"])
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        prune = not isinstance(study.pruner, optuna.pruners.NopPruner)
        space_fn = resolve_space(self.space, self.estimator)
        return _Run(study, storage, space_fn, job["X"], job["y"], job["splits"], job["fit_params"], prune)

    def _run_trials(
        self,
        run: _Run,
        errors: dict[int, Exception],
        *,
        target: Callable[[], int],
        limit: int | None,
        timeout: float | None,
        n_jobs: int,
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]],
    ) -> set[int]:
        """Run trials until the study has ``target()`` of them (counted by :func:`~._storage.tally`) and none of
        them is running, or this process started ``limit`` trials, or ``timeout`` passed. Returns the numbers of
        the trials this process ran.

        While other processes' trials are running and the storage has heartbeats, wait for them: a lost one is
        failed by heartbeat and its retry is run here.
        """
        study = run.study
        started: set[int] = set()
        settled: set[int] = set()  # started here and ended FAIL by this process's own doing
        full = threading.Event()  # set when we stop the study because its budget is used (not a user's callback)
        objective = self._objective(run, errors, target, started, settled, full)

        def stop_when_full(study: optuna.Study, trial: FrozenTrial) -> None:
            now = tally(study.get_trials(deepcopy=False))
            if now.counted >= target() and not now.waiting:
                full.set()
                study.stop()

        beat = heartbeat_enabled(run.storage)
        interval = run.storage.get_heartbeat_interval() if beat else None  # type: ignore[union-attr]
        poll = min(1.0, max(0.2, (interval or 1) / 4))
        start = time.monotonic()
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.INFO if self.verbose else optuna.logging.ERROR)
        try:
            while True:
                left = None if timeout is None else timeout - (time.monotonic() - start)
                own = None if limit is None else limit - len(started)
                if (left is not None and left <= 0) or (own is not None and own <= 0):
                    break
                now = tally(study.get_trials(deepcopy=False))
                if now.waiting or now.counted < target():
                    full.clear()
                    try:
                        study.optimize(
                            objective,
                            n_trials=own,
                            timeout=left,
                            n_jobs=n_jobs,
                            catch=(Exception,),
                            callbacks=[*callbacks, stop_when_full],
                        )
                    except Exception:
                        lost = _lost(study, started, settled)
                        if not lost:
                            raise
                        settled.update(lost)
                        logger.warning(
                            "trials %s were declared lost by another process (no heartbeat within the grace period) "
                            "and queued again; continuing",
                            sorted(lost),
                        )
                        continue
                    if not full.is_set():
                        break  # this process's limit or timeout, or a callback stopped the study
                elif now.running and beat:
                    time.sleep(poll)
                    fail_stale_trials(study)
                else:
                    break
        finally:
            optuna.logging.set_verbosity(previous)
        return started

    def _objective(
        self,
        run: _Run,
        errors: dict[int, Exception],
        target: Callable[[], int],
        started: set[int],
        settled: set[int],
        full: threading.Event,
    ) -> Callable[[optuna.Trial], float]:
        def objective(trial: optuna.Trial) -> float:
            if tally(run.study.get_trials(deepcopy=False), before=trial.number).counted >= target():
                # another process took the last slot between our check and this trial's creation
                trial.set_user_attr(SURPLUS, trial.number)
                full.set()
                run.study.stop()
                raise _Surplus(f"trial {trial.number} is beyond the study's n_trials={target()}; not counted")
            started.add(trial.number)
            trial.set_user_attr(ALIVE, trial.number)  # its heartbeat runs from now on (see _storage._unborn_stale)
            try:
                params = run.space_fn(trial)
            except Exception as exc:  # a point the space refuses (or an enqueued value outside it): this trial only
                settled.add(trial.number)
                fixed = _enqueued_params(trial)
                where = f" (enqueued parameters {fixed})" if fixed else ""
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}{where}")
                errors.setdefault(trial.number, exc)
                raise
            except BaseException:
                settled.add(trial.number)
                raise
            try:
                return self._evaluate(trial, params, run.X, run.y, run.splits, run.fit_params, run.prune)
            except optuna.TrialPruned:
                raise
            except KeyboardInterrupt:
                settled.add(trial.number)
                trial.set_user_attr(INTERRUPTED, trial.number)
                trial.set_user_attr("error", "KeyboardInterrupt: the search was interrupted")
                raise
            except UpdateFinishedTrialError:
                raise  # another process declared this trial lost (no heartbeat) and queued it again
            except Exception as exc:
                settled.add(trial.number)
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                errors.setdefault(trial.number, exc)
                raise

        return objective

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

    def _build_results(self, study: optuna.Study, space_fn: Callable[[Any], dict[str, Any]]) -> list[FrozenTrial]:
        """``cv_results_`` from every trial that ran (any process); queued (WAITING) and surplus trials are left
        out. Returns those trials, in the order of the rows."""
        every = study.get_trials(deepcopy=False)
        retried_as = {
            int(t.system_attrs["retry_history"][-1]): t.number for t in every if t.system_attrs.get("retry_history")
        }
        trials = [t for t in every if t.state != TrialState.WAITING and not is_surplus(t)]
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
        results["mean_fit_time"] = np.array(
            [t.user_attrs.get("fit_time", np.nan) if t.state == TrialState.COMPLETE else np.nan for t in trials],
            dtype=float,
        )
        results["state"] = np.array([t.state.name for t in trials], dtype=object)
        results["error"] = np.array([_error(t, retried_as) for t in trials], dtype=object)
        self.cv_results_ = results
        return trials

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


def _error(trial: FrozenTrial, retried_as: dict[int, int]) -> str:
    """The ``error`` column: the trial's own error, or why it failed without one; and its retry if it has one."""
    if trial.state != TrialState.FAIL:
        return ""
    text = str(trial.user_attrs.get("error", ""))
    again = retried_as.get(trial.number)
    if again is None:
        return text
    if trial.user_attrs.get(INTERRUPTED) != trial.number:
        text = "lost: its process stopped sending heartbeats"
    return f"{text}; queued again as trial {again}"


def _lost(study: optuna.Study, started: set[int], settled: set[int]) -> set[int]:
    """Trials started by this process that another process failed (their heartbeat was late): FAIL, not by us."""
    return {
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in started and t.number not in settled
    }


def _enqueued_params(trial: optuna.Trial) -> dict[str, Any]:
    """The parameters a trial was enqueued with (``enqueue`` / a re-queued retry), or ``{}``."""
    try:
        attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
    except Exception:  # pragma: no cover - a storage without the attribute API: no context to add
        return {}
    fixed = attrs.get("fixed_params")
    return dict(fixed) if isinstance(fixed, Mapping) else {}


def _point(space_fn: Callable[[Any], dict[str, Any]], trial: FrozenTrial) -> dict[str, Any]:
    """The routing-name point of a stored trial: replay the space on its Optuna parameters."""
    try:
        return space_fn(optuna.trial.FixedTrial(trial.params, number=trial.number))
    except Exception:  # a trial that failed before it had every parameter, or a point the space refuses
        return {}
