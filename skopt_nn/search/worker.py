"""Workers: processes (on this or other machines) that join a NeuralSearchCV study and run its trials.

    skopt-nn worker --storage postgresql://user:password@host/db --study my-study
    python -m skopt_nn.search.worker --storage journal:///shared/study.log --study my-study --torch-threads 1

A worker needs only the storage and the study's name: the study carries the job — the search's settings,
estimator, space, data and CV splits — stored by the coordinator, ``NeuralSearchCV(storage=..., study_name=...)``
(``fit`` runs trials too and waits for the workers' running ones) or :func:`create_study` (stores the job and runs
nothing). Every process counts the study's trials the same way, so the study ends with exactly its ``n_trials``
(see ``docs/distributed.md``); a worker killed mid-trial has that trial failed by heartbeat and run again by another
process. Setup errors (unreachable storage, no such study, a study without a job) are one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from skopt_nn.search._search_cv import NeuralSearchCV, make_pruner, make_sampler
from skopt_nn.search._storage import (
    HEARTBEAT_ATTR,
    N_TRIALS_ATTR,
    JobError,
    is_surplus,
    load_job,
    open_storage,
    requeue_interrupted,
    shown_url,
    tally,
)

__all__ = ["WorkerReport", "add_arguments", "create_study", "main", "run", "run_worker"]

PROG = "skopt-nn worker"


@dataclass
class WorkerReport:
    """What one worker did: the trials it ran (by number) and their states, and where the study stands."""

    study_name: str
    trials: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    study_trials: int = 0
    study_n_trials: int = 0
    best_value: float | None = None

    def summary(self) -> str:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.states.items())) or "none"
        best = "" if self.best_value is None else f"; best score {self.best_value:.4f}"
        return (
            f"{PROG}: ran {len(self.trials)} trials ({states}); study {self.study_name!r} has "
            f"{self.study_trials} of its {self.study_n_trials} trials{best}"
        )


def create_study(search: NeuralSearchCV, X: Any, y: Any = None, **fit_params: Any) -> optuna.Study:
    """Create (or update) ``search``'s study and store its job for workers, without running any trial.

    ``search`` needs a shared ``storage`` (a database URL or a journal file) and a ``study_name``. Then start
    workers (``skopt-nn worker --storage URL --study NAME``) and, to get ``cv_results_`` and the refitted best
    estimator, call ``search.fit(X, y)`` (it runs trials until the study has ``n_trials``, or none if the workers
    did them all).
    """
    return search._open(X, y, fit_params, for_workers=True).study


def run_worker(
    storage: str | BaseStorage,
    study_name: str,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    verbose: bool = False,
) -> WorkerReport:
    """Join study ``study_name`` in ``storage`` and run its trials until it has its ``n_trials`` (and none is
    running), this worker ran ``n_trials`` trials, or ``timeout`` seconds passed.

    Raises ConnectionError (unreachable storage), JobError (no such study, no job, a job that cannot be loaded
    here), ValueError / ImportError (not a storage URL, no database driver).
    """
    owner, param = "", "--storage"  # the command prefixes "skopt-nn worker: error: "
    probe = open_storage(storage, heartbeat_interval=None, owner=owner, param=param)
    if probe is None:
        raise ValueError(f"{PROG} needs a storage shared with the coordinator (a database URL or a journal file)")
    shown = shown_url(storage) if isinstance(storage, str) else type(storage).__name__
    try:
        study_id = probe.get_study_id_from_name(study_name)
    except KeyError:
        names = sorted(s.study_name for s in probe.get_all_studies())
        there = f"its studies: {', '.join(names[:10])}" if names else "it has none"
        raise JobError(f"no study named {study_name!r} in {shown} ({there})") from None
    job = load_job(probe, study_id, study_name)
    search = job["search"]
    interval = probe.get_study_user_attrs(study_id).get(HEARTBEAT_ATTR)
    opened = probe
    if isinstance(storage, str) and interval is not None:  # every process uses the study's heartbeat
        if isinstance(probe, RDBStorage):
            probe.engine.dispose()
        opened = open_storage(storage, heartbeat_interval=int(interval), owner=owner, param=param)  # type: ignore[assignment]
    assert opened is not None
    study = optuna.load_study(
        study_name=study_name,
        storage=opened,
        sampler=make_sampler(search.sampler, search.random_state),
        pruner=make_pruner(search.pruner),
    )
    study.sampler.reseed_rng()  # the job's seed is the coordinator's: a worker must not draw the same points

    def target() -> int:
        return int(opened.get_study_user_attrs(study_id).get(N_TRIALS_ATTR, 0))

    callbacks = [_print_trial] if verbose else []
    run = search._from_job(study, opened, job)
    errors: dict[int, Exception] = {}
    try:
        mine = search._run_trials(
            run, errors, target=target, limit=n_trials, timeout=timeout, n_jobs=1, callbacks=callbacks
        )
    except KeyboardInterrupt:
        requeue_interrupted(study)
        raise
    trials = study.get_trials(deepcopy=False)
    now = tally(trials)
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return WorkerReport(
        study_name=study_name,
        trials=sorted(mine),
        states=dict(Counter(trials[n].state.name for n in mine)),
        study_trials=now.counted - now.waiting - now.running,
        study_n_trials=target(),
        best_value=max(complete) if complete else None,
    )


def _print_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    if is_surplus(trial):
        return
    value = "" if trial.value is None else f" {trial.value:.4f}"
    error = trial.user_attrs.get("error") if trial.state == TrialState.FAIL else None
    print(f"trial {trial.number} {trial.state.name.lower()}{value}{f' ({error})' if error else ''}", flush=True)


# ------------------------------------------------------------------------------------------------------ command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's command-line arguments (for ``skopt-nn worker`` and ``python -m skopt_nn.search.worker``)."""
    parser.add_argument(
        "--storage",
        required=True,
        help="the study's storage: postgresql://user:password@host/db, mysql://..., journal:///path/study.log",
    )
    parser.add_argument("--study", required=True, help="the study's name (NeuralSearchCV(study_name=...))")
    parser.add_argument(
        "--n-trials", type=int, default=None, help="at most this many trials from this worker (default: no limit)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch.set_num_threads (one worker per core: 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per trial, only the summary")


def run(args: argparse.Namespace) -> int:
    """Run a worker from parsed arguments; return the exit status (2 with one line on stderr on bad input)."""
    checks = (
        ("--n-trials", args.n_trials, lambda v: v >= 1, "at least 1"),
        ("--timeout", args.timeout, lambda v: v > 0, "positive"),
        ("--torch-threads", args.torch_threads, lambda v: v >= 1, "at least 1"),
    )
    for name, value, ok, expected in checks:
        if value is not None and not ok(value):
            print(f"{PROG}: error: {name} must be {expected}; got {value}", file=sys.stderr)
            return 2
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        report = run_worker(
            args.storage, args.study, n_trials=args.n_trials, timeout=args.timeout, verbose=not args.quiet
        )
    except (ConnectionError, JobError, ValueError, ImportError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the running trial is queued again for the next worker", file=sys.stderr)
        return 130
    print(report.summary(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Join a NeuralSearchCV study and run its trials.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
