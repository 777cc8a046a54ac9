"""The time-to-result benchmark (AlgoPerf-style): every optimizer tuned on an equal budget, against baselines.

For each dataset:

1. One stratified split (by ``seed``) into train / validation / test. The test rows are touched once, at the end.
2. Each selected optimizer gets its own Optuna study (same sampler, same seed, same number of trials or the same
   time): the optimizer's hyperparameters, the schedule and its parameters and the batch size are searched for a
   fixed network (``tune_network=True`` searches the hidden layers and dropout too). Every trial trains on the
   training split for ``epochs`` epochs and scores the validation split after every epoch.
3. Baselines: scikit-learn's ``MLPClassifier``/``MLPRegressor`` and ``HistGradientBoosting*``, each with its
   defaults (one fit) and tuned with the same sampler for the same wall-clock (the median tuning time of the
   optimizers on that dataset; or the same number of trials with ``baseline_budget="trials"``).
4. Time to target: the training time, counted over the contender's whole tuning run, at which its validation score
   first reached the dataset's target (:func:`~skopt_nn.bench.target_score`: ``target_fraction`` of the way from
   a trivial predictor's score to the best validation score any contender reached).
5. Test score: each contender's best configuration (by final validation score) refitted on train + validation and
   scored once on the test split.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skopt_nn._validation import invalid_param_message, unknown_name_error
from skopt_nn.bench._metrics import cumulative_trace, target_score, time_to_target

__all__ = [
    "BASELINES",
    "DEFAULT_DATASETS",
    "DEFAULT_OPTIMIZERS",
    "BenchResult",
    "TrialRecord",
    "run_bench",
]

DEFAULT_DATASETS: tuple[str, ...] = ("sklearn:digits", "sklearn:breast_cancer", "sklearn:wine", "sklearn:diabetes")
DEFAULT_OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd", "lion", "diffgrad")
# baseline name -> (family, tuned)
BASELINES: dict[str, tuple[str, bool]] = {
    "mlp": ("mlp", False),
    "mlp-tuned": ("mlp", True),
    "hgb": ("hgb", False),
    "hgb-tuned": ("hgb", True),
}
BASELINE_BUDGETS = ("time", "trials")
_OWNER = "run_bench"


@dataclass(frozen=True)
class TrialRecord:
    """One training run of a contender: its parameters, its validation scores and what it cost.

    ``epoch_times``: training time (seconds since the trial's fit started, validation scoring excluded) at which
    each of ``epoch_scores`` was measured; one entry per epoch for the networks, one for a baseline (its fit).
    ``trial_time``: the whole fit, validation scoring excluded. ``value``: the validation score at the end.
    """

    dataset: str
    contender: str
    number: int
    params: dict[str, Any]
    state: str
    value: float
    trial_time: float
    epoch_times: tuple[float, ...] = ()
    epoch_scores: tuple[float, ...] = ()
    error: str = ""


@dataclass
class BenchResult:
    """What :func:`run_bench` measured.

    Attributes:
        results: one row per (dataset, contender): trials, tuning wall-clock, budget, best validation score,
            target, time to target (``inf``: never reached), test score of the best configuration, its params.
        trials: one row per trial (:class:`TrialRecord` fields; scores and params as JSON).
        traces: (dataset, contender) -> (times, scores) on the contender's cumulative tuning clock.
        targets: dataset -> target validation score; ``references``: dataset -> trivial predictor's score.
        settings: the arguments of the run (and the machine), for the report.
        files: name -> path of what :func:`~skopt_nn.bench.write_report` wrote (empty until then).
    """

    results: pd.DataFrame
    trials: pd.DataFrame
    traces: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    targets: dict[str, float]
    references: dict[str, float]
    settings: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def contenders(self) -> list[str]:
        """Contender names in the order they ran."""
        return list(dict.fromkeys(self.results["contender"]))

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.results["dataset"]))

    def pivot(self, column: str) -> pd.DataFrame:
        """``column`` (e.g. ``"test_score"``, ``"time_to_target_s"``) as a datasets x contenders table."""
        table = self.results.pivot(index="dataset", columns="contender", values=column)
        return table.loc[self.datasets(), self.contenders()]

    def times_to_target(self, contenders: Sequence[str] | None = None) -> dict[str, list[float]]:
        """contender -> time to target per dataset (``inf`` where not reached), for performance profiles."""
        table = self.pivot("time_to_target_s")
        names = list(contenders) if contenders is not None else self.contenders()
        return {n: [float(v) for v in table[n].to_numpy(float)] for n in names}

    def optimizers(self) -> list[str]:
        kinds = self.results.drop_duplicates("contender").set_index("contender")["kind"]
        return [c for c in self.contenders() if kinds[c] == "optimizer"]


# ------------------------------------------------------------------------------------------------------ inputs


def check_inputs(
    datasets: Sequence[str],
    optimizers: Sequence[str],
    baselines: Sequence[str],
    trials: int | None,
    timeout: float | None,
    epochs: int,
    sampler: str,
    target_fraction: float,
    test_size: float,
    val_size: float,
    baseline_budget: str,
    schedules: Sequence[str] | None = None,
) -> None:
    """Raise ``ValueError`` (``ImportError`` for a dataset whose package is missing) before anything runs."""
    from skopt_nn import optim
    from skopt_nn import schedules as schedule_registry
    from skopt_nn._tabular import is_bundled
    from skopt_nn.search._search_cv import SAMPLERS

    if not datasets:
        raise ValueError(invalid_param_message("datasets", _OWNER, "at least one dataset", list(datasets)))
    from skopt_nn import datasets as registry

    for name in datasets:
        if is_bundled(name):
            if name not in registry.DATASETS:
                raise unknown_name_error("dataset", name, registry.available())
        elif not Path(name).is_file():
            raise FileNotFoundError(f"No such data file: {name}")
    if not optimizers and not baselines:
        raise ValueError("Nothing to benchmark: give at least one optimizer or baseline.")
    known = optim.available(wrappers=False)
    for name in optimizers:
        if name not in known:
            raise unknown_name_error("optimizer", name, known)
    for name in schedules or ():
        schedule_registry.get(name)
    for name in baselines:
        if name not in BASELINES:
            raise unknown_name_error("baseline", name, list(BASELINES))
    if trials is None and timeout is None:
        raise ValueError("Give a budget: trials (per contender) or timeout (seconds per contender).")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ValueError(invalid_param_message("trials", _OWNER, "an int in the range [1, inf)", trials))
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(invalid_param_message("timeout", _OWNER, "a float in the range (0, inf)", timeout))
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(invalid_param_message("epochs", _OWNER, "an int in the range [1, inf)", epochs))
    if sampler not in SAMPLERS:
        raise unknown_name_error("sampler", sampler, SAMPLERS)
    if not 0.0 < target_fraction <= 1.0:
        raise ValueError(
            invalid_param_message("target_fraction", _OWNER, "a float in the range (0, 1]", target_fraction)
        )
    for label, value in (("test_size", test_size), ("val_size", val_size)):
        if not 0.0 < value < 1.0:
            raise ValueError(invalid_param_message(label, _OWNER, "a float in the range (0, 1)", value))
    if test_size + val_size >= 0.9:
        raise ValueError(
            invalid_param_message("val_size", _OWNER, f"less than {0.9 - test_size:.2f} with this test_size", val_size)
        )
    if baseline_budget not in BASELINE_BUDGETS:
        raise unknown_name_error("baseline_budget", baseline_budget, BASELINE_BUDGETS)


# ------------------------------------------------------------------------------------------------------ data


@dataclass
class _Data:
    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_full: np.ndarray  # train + validation, preprocessed with a transformer fitted on them
    y_full: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _prepare(name: str, seed: int, test_size: float, val_size: float) -> _Data:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder

    from skopt_nn._tabular import load_data, make_preprocessor

    X, y, task, _ = load_data(name)
    if task == "classification":
        counts = y.value_counts()
        if counts.min() < 3:
            raise ValueError(f"the target of {name} has a class with {counts.min()} rows; a 3-way split needs >= 3")
        target = LabelEncoder().fit_transform(np.asarray(y))
    else:
        target = np.asarray(y, dtype=np.float64)
    stratify = target if task == "classification" else None
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, target, test_size=test_size, stratify=stratify, random_state=seed
    )
    stratify = y_rest if task == "classification" else None
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1.0 - test_size), stratify=stratify, random_state=seed
    )
    prep = make_preprocessor(X).fit(X_tr)
    full = make_preprocessor(X).fit(X_rest)

    def arr(p: Any, frame: pd.DataFrame) -> np.ndarray:
        return np.ascontiguousarray(p.transform(frame), dtype=np.float32)

    return _Data(
        name, task, arr(prep, X_tr), y_tr, arr(prep, X_val), y_val, arr(full, X_rest), y_rest, arr(full, X_test), y_test
    )


def _score(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, r2_score

    if task == "classification":
        return float(accuracy_score(y_true, y_pred))
    y_pred = np.asarray(y_pred, dtype=float)
    if not np.all(np.isfinite(y_pred)):
        return math.nan
    return float(r2_score(y_true, y_pred))


def _reference(data: _Data) -> float:
    """The validation score of a trivial predictor: the training split's majority class / mean."""
    if data.task == "classification":
        majority = np.bincount(data.y_train).argmax()
        return _score(data.task, data.y_val, np.full(len(data.y_val), majority))
    return _score(data.task, data.y_val, np.full(len(data.y_val), data.y_train.mean()))


# ------------------------------------------------------------------------------------------------------ contenders


def _epoch_scorer(task: str, X_val: np.ndarray, y_val: np.ndarray) -> Any:
    """A skorch callback that scores the validation split after every epoch and records, in the history, the
    training time so far with the scoring time taken out (``bench_time``) and the score (``bench_score``)."""
    from skorch.callbacks import Callback

    class EpochScores(Callback):
        def __init__(self) -> None:
            self.start = time.perf_counter()
            self.scoring = 0.0

        def on_train_begin(self, net: Any, **kwargs: Any) -> None:
            self.scoring = 0.0

        def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
            now = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = _score(task, y_val, net.predict(X_val))
            net.history.record("bench_time", now - self.start - self.scoring)
            net.history.record("bench_score", score)
            self.scoring += time.perf_counter() - now

    return EpochScores()


def _network(task: str, params: dict[str, Any], epochs: int, seed: int, callbacks: list[Any]) -> Any:
    from skopt_nn import NeuralClassifier, NeuralRegressor

    Net = NeuralClassifier if task == "classification" else NeuralRegressor
    net = Net(max_epochs=epochs, random_state=seed, callbacks=callbacks, verbose=0)
    return net.set_params(**params)


def _net_space(optimizer: str, schedules: Sequence[str] | None, tune_network: bool) -> Any:
    from skopt_nn._space import Categorical
    from skopt_nn.search import SearchSpace, auto_space

    space = auto_space(None, optimizers=[optimizer], schedules=schedules, network=tune_network)
    if tune_network:
        return space
    return SearchSpace(fixed={"batch_size": Categorical((32, 64, 128, 256))}, choices=space.choices)


def _baseline_space(family: str) -> Any:
    from skopt_nn._space import Categorical, Float, Int
    from skopt_nn.search import SearchSpace

    if family == "mlp":
        dims: dict[str, Any] = {
            "hidden_layer_sizes": Categorical(((64,), (128,), (128, 64), (256, 128), (256, 256, 128))),
            "alpha": Float(1e-6, 1e-1, log=True),
            "learning_rate_init": Float(1e-4, 3e-2, log=True),
            "batch_size": Categorical((32, 64, 128, 256)),
        }
    else:
        dims = {
            "learning_rate": Float(0.01, 0.5, log=True),
            "max_iter": Int(50, 500, log=True),
            "max_leaf_nodes": Int(4, 128, log=True),
            "min_samples_leaf": Int(2, 100, log=True),
            "l2_regularization": Float(1e-8, 10.0, log=True),
            "max_features": Float(0.2, 1.0),
        }
    return SearchSpace(fixed=dims)


def _baseline(family: str, task: str, params: dict[str, Any], seed: int) -> Any:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    if family == "hgb":
        cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
        return cls(random_state=seed, **params)
    if task == "classification":
        return MLPClassifier(random_state=seed, **params)
    # a standardised target, as NeuralRegressor uses: sklearn's MLP trains badly on raw targets in the hundreds
    return TransformedTargetRegressor(regressor=MLPRegressor(random_state=seed, **params), transformer=StandardScaler())


def _fit_quietly(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of a short MLP, skorch's device notes
        model.fit(X, y)
    return time.perf_counter() - start


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.predict(X))


@dataclass
class _Contender:
    name: str
    kind: str  # "optimizer" or "baseline"
    space: Any  # a SearchSpace, or None for a baseline with its defaults
    build: Callable[[dict[str, Any], list[Any]], Any]  # params, callbacks -> unfitted model
    per_epoch: bool


def _run_trial(contender: _Contender, data: _Data, params: dict[str, Any], number: int) -> TrialRecord:
    scorer = _epoch_scorer(data.task, data.X_val, data.y_val) if contender.per_epoch else None
    start = time.perf_counter()
    model = None
    try:
        model = contender.build(params, [("bench_scores", scorer)] if scorer is not None else [])
        start = time.perf_counter()
        if scorer is not None:
            scorer.start = start
        fit_time = _fit_quietly(model, data.X_train, data.y_train)
        if scorer is not None:
            epoch_times, epoch_scores = _epochs(model)
            fit_time -= scorer.scoring
            value = epoch_scores[-1] if epoch_scores else math.nan
        else:
            value = _score(data.task, data.y_val, _predict(model, data.X_val))
            epoch_times, epoch_scores = (fit_time,), (value,)
    except Exception as exc:  # a diverging loss or a rejected combination: the trial failed, its time counts
        elapsed = time.perf_counter() - start - (scorer.scoring if scorer is not None else 0.0)
        # the epochs it finished before failing still happened (and may have reached the target)
        times, scores = _epochs(model) if scorer is not None and model is not None else ((), ())
        error = f"{type(exc).__name__}: {exc}"
        return TrialRecord(
            data.name, contender.name, number, params, "FAIL", math.nan, elapsed, times, scores, error=error
        )
    state = "COMPLETE" if math.isfinite(value) else "FAIL"
    return TrialRecord(data.name, contender.name, number, params, state, value, fit_time, epoch_times, epoch_scores)


def _epochs(net: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (time, validation score) of every epoch the scoring callback recorded in the net's history."""
    rows = [row for row in getattr(net, "history", None) or () if "bench_time" in row and "bench_score" in row]
    return tuple(float(r["bench_time"]) for r in rows), tuple(float(r["bench_score"]) for r in rows)


class _TrialFailed(Exception):
    pass


def _tune(
    contender: _Contender,
    data: _Data,
    sampler: str,
    seed: int,
    n_trials: int | None,
    timeout: float | None,
) -> tuple[list[TrialRecord], float]:
    """Run the contender's study; its trial records in the order they ran and the wall-clock of the study."""
    import optuna

    from skopt_nn.search import make_sampler

    records: list[TrialRecord] = []
    start = time.perf_counter()
    if contender.space is None:  # defaults: one fit
        records.append(_run_trial(contender, data, {}, 0))
        return records, time.perf_counter() - start
    space = contender.space

    def objective(trial: optuna.Trial) -> float:
        record = _run_trial(contender, data, space.suggest(trial), trial.number)
        records.append(record)
        if record.state != "COMPLETE":
            raise _TrialFailed(record.error or "non-finite validation score")
        return record.value

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(
                objective,
                n_trials=n_trials if n_trials is not None else 100_000,
                timeout=timeout,
                catch=(_TrialFailed,),
            )
    finally:
        optuna.logging.set_verbosity(previous)
    return records, time.perf_counter() - start


def _best(records: list[TrialRecord]) -> TrialRecord | None:
    complete = [r for r in records if r.state == "COMPLETE"]
    return max(complete, key=lambda r: r.value) if complete else None  # max keeps the earliest of ties


# ------------------------------------------------------------------------------------------------------ the run


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """The same number of threads for every contender: torch's intra-op pool and BLAS/OpenMP (HGB, sklearn MLP)."""
    import torch
    from threadpoolctl import threadpool_limits

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def run_bench(
    datasets: Sequence[str] = DEFAULT_DATASETS,
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    *,
    trials: int | None = 10,
    timeout: float | None = None,
    epochs: int = 20,
    sampler: str = "cem",
    seed: int = 0,
    baselines: Sequence[str] = tuple(BASELINES),
    baseline_budget: str = "time",
    schedules: Sequence[str] | None = None,
    tune_network: bool = False,
    target_fraction: float = 0.95,
    test_size: float = 0.2,
    val_size: float = 0.2,
    threads: int | None = 1,
    log: Callable[[str], None] | None = None,
) -> BenchResult:
    """Benchmark optimizers (tuned on an equal budget) and baselines on datasets; see the module docstring.

    Parameters:
        datasets: bundled dataset names (``skopt-nn datasets``) or CSV/Parquet files (target = last column).
        optimizers: registry names (``skopt-nn optimizers``); each is tuned in its own study.
        trials: trials per optimizer (and per tuned baseline with ``baseline_budget="trials"``).
        timeout: seconds per contender instead of (or on top of) ``trials``; every contender gets the same.
        epochs: epochs of every network trial.
        sampler: ``"cem"``, ``"tpe"``, ``"random"``, ``"cmaes"``, ``"gp"`` or ``"qmc"``, seeded with ``seed``.
        seed: the splits, the samplers, the networks' initialisation and the baselines' ``random_state``.
        baselines: any of ``"mlp"``, ``"mlp-tuned"``, ``"hgb"``, ``"hgb-tuned"``.
        baseline_budget: ``"time"``: a tuned baseline gets the median wall-clock of the optimizers' studies on
            the dataset (or ``timeout``); ``"trials"``: the same number of trials.
        schedules: schedule names searched (default: the tuning portfolio of :mod:`skopt_nn.search`).
        tune_network: also search the hidden layers and dropout (the batch size is always searched).
        target_fraction: the target is this fraction of the way from the trivial score to the best validation
            score any contender reached on the dataset.
        test_size, val_size: fractions of the rows held out for the test and the validation split.
        threads: torch, BLAS and OpenMP threads for every contender (``None``: leave them as they are).
        log: called with one line per contender as the run goes (``print`` to follow it).
    """
    datasets, optimizers, baselines = list(datasets), list(optimizers), list(baselines)
    check_inputs(
        datasets,
        optimizers,
        baselines,
        trials,
        timeout,
        epochs,
        sampler,
        target_fraction,
        test_size,
        val_size,
        baseline_budget,
        schedules,
    )
    say = log or (lambda line: None)
    rows: list[dict[str, Any]] = []
    all_records: list[TrialRecord] = []
    traces: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    targets: dict[str, float] = {}
    references: dict[str, float] = {}
    warmed: set[tuple[str, str]] = set()
    started = time.perf_counter()
    with _threads(threads):
        for name in datasets:
            data = _prepare(name, seed, test_size, val_size)
            task = data.task
            _warm_up(data, optimizers, baselines, warmed, seed)
            contenders: list[tuple[_Contender, int | None, float | None]] = []
            for opt in optimizers:

                def build_net(params: dict[str, Any], callbacks: list[Any], _task: str = task) -> Any:
                    return _network(_task, params, epochs, seed, callbacks)

                contenders.append(
                    (
                        _Contender(opt, "optimizer", _net_space(opt, schedules, tune_network), build_net, True),
                        trials,
                        timeout,
                    )
                )
            studies: dict[str, tuple[list[TrialRecord], float, str]] = {}
            for contender, n, limit in contenders:
                records, wall = _tune(contender, data, sampler, seed, n, limit)
                budget = (
                    f"{n} trials" if limit is None else (f"{limit:g} s" if n is None else f"{n} trials/{limit:g} s")
                )
                studies[contender.name] = (records, wall, budget)
                say(_progress(name, contender.name, records, wall))
            walls = [wall for _, wall, _ in studies.values()]
            baseline_time = timeout if timeout is not None else (statistics.median(walls) if walls else None)
            for base in baselines:
                family, tuned = BASELINES[base]

                def build_baseline(
                    params: dict[str, Any], callbacks: list[Any], _f: str = family, _t: str = task
                ) -> Any:
                    return _baseline(_f, _t, params, seed)

                space = _baseline_space(family) if tuned else None
                contender = _Contender(base, "baseline", space, build_baseline, False)
                if not tuned:
                    n, limit, budget = 1, None, "defaults"
                elif baseline_budget == "trials" or baseline_time is None:
                    n, limit = (trials, timeout)
                    budget = f"{n} trials" if limit is None else f"{limit:g} s"
                else:
                    n, limit, budget = None, max(float(baseline_time), 1e-3), f"{baseline_time:.1f} s"
                records, wall = _tune(contender, data, sampler, seed, n, limit)
                studies[base] = (records, wall, budget)
                say(_progress(name, base, records, wall))

            kinds = {c.name: c.kind for c, _, _ in contenders} | {b: "baseline" for b in baselines}
            ds_traces = {
                c: cumulative_trace([(r.epoch_times, r.epoch_scores, r.trial_time) for r in recs])
                for c, (recs, _, _) in studies.items()
            }
            reached = [float(np.nanmax(s)) for _, s in ds_traces.values() if s.size and np.isfinite(s).any()]
            references[name] = _reference(data)
            best_any = max(reached) if reached else references[name]
            targets[name] = target_score(best_any, references[name], target_fraction)
            for contender_name, (records, wall, budget) in studies.items():
                times, scores = ds_traces[contender_name]
                traces[(name, contender_name)] = (times, scores)
                best = _best(records)
                test, refit = math.nan, math.nan
                if best is not None:
                    test, refit = _final_score(contender_name, kinds[contender_name], best.params, data, epochs, seed)
                complete = sum(r.state == "COMPLETE" for r in records)
                rows.append(
                    {
                        "dataset": name,
                        "task": task,
                        "metric": "accuracy" if task == "classification" else "r2",
                        "contender": contender_name,
                        "kind": kinds[contender_name],
                        "trials": len(records),
                        "failed": len(records) - complete,
                        "budget": budget,
                        "tuning_s": wall,
                        "best_val": best.value if best is not None else math.nan,
                        "max_val": float(np.nanmax(scores)) if scores.size and np.isfinite(scores).any() else math.nan,
                        "target": targets[name],
                        "time_to_target_s": time_to_target(times, scores, targets[name]),
                        "test_score": test,
                        "refit_s": refit,
                        "train_time_s": float(sum(r.trial_time for r in records)),
                        "params": json.dumps(
                            best.params if best is not None else {}, default=_jsonable, sort_keys=True
                        ),
                    }
                )
            all_records.extend(r for recs, _, _ in studies.values() for r in recs)
            say(f"[{name}] target {targets[name]:.4f} (trivial {references[name]:.4f}, best {best_any:.4f})")
    results = pd.DataFrame(rows)
    trials_frame = pd.DataFrame(
        [
            {
                "dataset": r.dataset,
                "contender": r.contender,
                "trial": r.number,
                "state": r.state,
                "value": r.value,
                "trial_time_s": r.trial_time,
                "epoch_scores": json.dumps(list(r.epoch_scores)),
                "epoch_times_s": json.dumps(list(r.epoch_times)),
                "params": json.dumps(r.params, default=_jsonable, sort_keys=True),
                "error": r.error,
            }
            for r in all_records
        ]
    )
    settings = {
        "datasets": datasets,
        "optimizers": optimizers,
        "baselines": baselines,
        "trials": trials,
        "timeout": timeout,
        "epochs": epochs,
        "sampler": sampler,
        "seed": seed,
        "baseline_budget": baseline_budget,
        "schedules": list(schedules) if schedules else None,
        "tune_network": tune_network,
        "target_fraction": target_fraction,
        "test_size": test_size,
        "val_size": val_size,
        "threads": threads,
        "elapsed_s": time.perf_counter() - started,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "load_average": _load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "versions": _versions(),
    }
    return BenchResult(results, trials_frame, traces, targets, references, settings)


def _warm_up(
    data: _Data, optimizers: Sequence[str], baselines: Sequence[str], done: set[tuple[str, str]], seed: int
) -> None:
    """One tiny untimed fit per (task, contender) before anything is timed, so that no contender pays for first
    calls (library imports, kernel set-up) that the others then get for free."""
    rows = min(64, len(data.y_train))
    X, y = data.X_train[:rows], data.y_train[:rows]
    for opt in optimizers:
        if (data.task, opt) not in done:
            done.add((data.task, opt))
            with contextlib.suppress(Exception):
                _fit_quietly(_network(data.task, {"optimizer": opt, "batch_size": 32}, 1, seed, []), X, y)
    for base in baselines:
        family, _ = BASELINES[base]
        if (data.task, family) not in done:
            done.add((data.task, family))
            with contextlib.suppress(Exception):
                _fit_quietly(_baseline(family, data.task, {"max_iter": 5}, seed), X, y)


def _final_score(
    name: str, kind: str, params: dict[str, Any], data: _Data, epochs: int, seed: int
) -> tuple[float, float]:
    """Refit the configuration on train + validation and score the test split once: ``(score, refit seconds)``."""
    if kind == "optimizer":
        model = _network(data.task, params, epochs, seed, [])
    else:
        family, _ = BASELINES[name]
        model = _baseline(family, data.task, params, seed)
    try:
        refit = _fit_quietly(model, data.X_full, data.y_full)
    except Exception:  # the configuration diverges on the larger split: no test score
        return math.nan, math.nan
    return _score(data.task, data.y_test, _predict(model, data.X_test)), refit


def _progress(dataset: str, contender: str, records: list[TrialRecord], wall: float) -> str:
    best = _best(records)
    shown = f"{best.value:.4f}" if best is not None else "none"
    failed = sum(r.state != "COMPLETE" for r in records)
    extra = f", {failed} failed" if failed else ""
    return f"[{dataset}] {contender}: {len(records)} trials{extra} in {wall:.1f} s, best validation {shown}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _versions() -> str:
    import optuna
    import sklearn
    import torch

    from skopt_nn import __version__

    return (
        f"skopt_nn {__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"optuna {optuna.__version__}"
    )
