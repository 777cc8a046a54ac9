"""Distributed studies: worker processes sharing one study in a real PostgreSQL server or a journal file.

No mocks: the workers are separate Python processes (``python -m skopt_nn.search.worker``), the storage is the
server ``.ci/run`` starts (``SKOPT_NN_TEST_POSTGRES_URL``) or a journal file. What is proved:

* two and three workers complete exactly the study's ``n_trials`` (COMPLETE + PRUNED), each trial once, and all of
  them took part;
* the coordinator (``NeuralSearchCV.fit``) runs trials alongside a worker and its ``cv_results_`` has the worker's;
* a worker killed with SIGKILL in the middle of a trial (PostgreSQL and journal file): the trial is failed by heartbeat,
  queued again with the same parameters, run by another worker; the study still ends with exactly ``n_trials``
  counted and nothing RUNNING; a trial orphaned before its first heartbeat is recovered too;
* a worker whose trial was declared lost while it still ran (a late heartbeat) drops it and goes on; the retry runs;
* an unreachable storage is a clear error in seconds, before any training, from NeuralSearchCV and from the worker;
  a worker refuses a study that does not exist or carries no job.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from skorch.callbacks import Callback

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn._space import Float
from skopt_nn.search._storage import JobError, fail_stale_trials, is_surplus, open_storage, retry_callback
from skopt_nn.search.worker import create_study, run_worker
from tests.search.conftest import trials_of, wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# optimizers and learning rates that do not diverge here: every trial finishes COMPLETE or PRUNED, never FAIL
SPACE = {"optimizer": ["adam", "adamw"], "lr": Float(1e-4, 3e-3, log=True)}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _search(url: str, name: str, n_trials: int, *, epochs: int = 3, batch_size: int = 32, **kwargs) -> NeuralSearchCV:
    net = NeuralClassifier(max_epochs=epochs, batch_size=batch_size, module__hidden_layer_sizes=(16,))
    kwargs.setdefault("heartbeat_interval", 1)
    return NeuralSearchCV(
        net, SPACE, n_trials=n_trials, cv=2, storage=url, study_name=name, random_state=0, refit=False, **kwargs
    )


def _ran(out: str) -> list[int]:
    """Trial numbers a worker printed ("trial 3 complete 0.9512")."""
    return [int(n) for n in re.findall(r"^trial (\d+) ", out, re.M)]


def _assert_exactly(trials: list[optuna.trial.FrozenTrial], n_trials: int, lost: tuple[int, ...] = ()) -> None:
    """Exactly ``n_trials`` finished (COMPLETE or PRUNED), each number once, nothing RUNNING or WAITING; any FAIL
    trial is one of ``lost`` (killed, retried) or a surplus trial (a worker that lost the race for the last slot:
    closed at once, no parameters, counted nowhere)."""
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # no number twice, none missing
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states
    assert sum(s in FINISHED for s in states) == n_trials, [s.name for s in states]
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and t.number not in lost:
            assert is_surplus(t) and not t.params, t


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("n_workers", [2, 3])
def test_worker_processes_complete_exactly_n_trials(postgres_url, study_name, small_data, workers, n_workers) -> None:
    X, y = small_data
    n_trials = 3 * n_workers
    # pruning on (MedianPruner starts after 5 trials): PRUNED trials count like COMPLETE ones
    create_study(_search(postgres_url, study_name, n_trials, epochs=6), X, y)
    procs = [workers.start(postgres_url, study_name) for _ in range(n_workers)]
    results = [workers.wait(p) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert f"study {study_name!r} has {n_trials} of its {n_trials} trials" in out
    ran = [_ran(out) for _, out, _ in results]
    trials = trials_of(postgres_url, study_name)
    _assert_exactly(trials, n_trials)
    # every finished trial was run by exactly one worker, and the work was shared
    assert sorted(n for r in ran for n in r) == [t.number for t in trials if t.state in FINISHED]
    assert sum(1 for r in ran if r) >= 2, ran


@pytest.mark.slow
@pytest.mark.postgres
def test_coordinator_runs_alongside_a_worker_and_reports_its_trials(postgres_url, study_name, small_data, workers):
    X, y = small_data
    n_trials = 6
    search = _search(postgres_url, study_name, n_trials, epochs=10)
    create_study(search, X, y)
    worker = workers.start(postgres_url, study_name)
    # the worker has started a trial: the coordinator now shares the study with it
    wait_for(lambda: trials_of(postgres_url, study_name), 60, "the worker's first trial")
    search.fit(X, y)
    code, out, err = workers.wait(worker)
    assert code == 0, err
    by_worker = _ran(out)
    assert by_worker, out
    assert search.n_trials_ == n_trials
    assert set(by_worker) <= set(search.cv_results_["trial_number"])
    assert set(by_worker) != set(search.cv_results_["trial_number"])  # the coordinator ran some too
    _assert_exactly(trials_of(postgres_url, study_name), n_trials)
    assert search.best_score_ == max(t.value for t in search.study_.trials if t.state.name == "COMPLETE")


@pytest.mark.slow
def test_worker_killed_mid_trial_is_retried_and_the_study_completes(shared_url, study_name, small_data, workers):
    X, y = small_data
    n_trials = 4
    # slow trials (about a second or more), so the kill lands inside one; heartbeat every 1 s, lost after 3 s
    create_study(_search(shared_url, study_name, n_trials, epochs=40, batch_size=8, pruner=None), X, y)
    victim = workers.start(shared_url, study_name)

    def training() -> list[optuna.trial.FrozenTrial]:
        # a trial past its first fold: its heartbeat runs and it is training the second fold
        return [
            t
            for t in trials_of(shared_url, study_name)
            if t.state == optuna.trial.TrialState.RUNNING and len(t.user_attrs.get("split_scores", [])) == 1
        ]

    first = wait_for(training, 90, "a trial in its second fold")[0]  # type: ignore[index]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed = trials_of(shared_url, study_name)[first.number]
    assert killed.state == optuna.trial.TrialState.RUNNING  # killed mid-trial: nobody will finish it

    rescuer = workers.start(shared_url, study_name)
    code, out, err = workers.wait(rescuer)
    assert code == 0, err

    trials = trials_of(shared_url, study_name)
    killed = trials[first.number]
    assert killed.state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == first.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.number > first.number
    assert retry.system_attrs["retry_history"] == [first.number]
    assert retry.params == killed.params  # the same trial, run again
    assert retry.number in _ran(out)  # by the other worker
    # every trial accounted for: n_trials finished, the killed one FAIL and replaced, nothing left running
    _assert_exactly(trials, n_trials, lost=(first.number,))


def test_a_trial_whose_process_died_before_its_first_heartbeat_is_retried(shared_url, study_name) -> None:
    """Optuna watches only trials that sent a heartbeat; a process killed between ``ask`` and the start of its
    objective leaves a trial without one. skopt_nn's storages fail it once it is older than the grace period."""
    storage = open_storage(shared_url, heartbeat_interval=1)  # grace period 3 s
    study = optuna.create_study(storage=storage, study_name=study_name)
    with pytest.warns(UserWarning, match="Heartbeat of storage is supposed to be used with Study.optimize"):
        orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # as if killed right after ask
    fail_stale_trials(study)
    assert study.get_trials()[orphan.number].state == optuna.trial.TrialState.RUNNING  # within the grace period
    time.sleep(3.5)
    fail_stale_trials(study)
    first, retry = study.get_trials()
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.WAITING and retry.system_attrs["retry_history"] == [first.number]
    assert retry.params == first.params


_LATE = {"url": "", "name": "", "armed": False}  # module-level: the estimator's callbacks are cloned for every fit


class _DeclareLost(Callback):
    """At the end of the first epoch of the first fit, another process's storage declares the running trial lost
    (FAIL, queued again): what happens to a worker whose heartbeat was late by more than the grace period."""

    def on_epoch_end(self, net, **kwargs):
        if not _LATE["armed"]:
            return
        _LATE["armed"] = False
        other = open_storage(_LATE["url"], heartbeat_interval=None)
        study = optuna.load_study(study_name=_LATE["name"], storage=other)
        (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        other.set_trial_state_values(running._trial_id, optuna.trial.TrialState.FAIL)
        retry_callback()(study, running)


def test_a_trial_declared_lost_while_still_running_is_dropped_and_run_again(tmp_path, small_data) -> None:
    X, y = small_data
    url = f"journal://{tmp_path / 'study.log'}"
    _LATE.update(url=url, name="late", armed=True)
    net = NeuralClassifier(
        max_epochs=2, batch_size=32, module__hidden_layer_sizes=(8,), callbacks=[("late", _DeclareLost())]
    )
    search = NeuralSearchCV(
        net, SPACE, n_trials=3, cv=2, pruner=None, storage=url, study_name="late", random_state=0, refit=False
    ).fit(X, y)  # goes on: the late trial's own writes are refused, its retry runs
    trials = search.study_.get_trials()
    _assert_exactly(trials, 3, lost=(0,))
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == trials[0].params
    assert "split_scores" not in trials[0].user_attrs  # nothing of the late trial was recorded after it was failed
    assert search.cv_results_["error"][0] == (
        f"lost: its process stopped sending heartbeats; queued again as trial {retry.number}"
    )


# ------------------------------------------------------------------------------------------------ fail fast


class _MustNotTrain(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise AssertionError("trained although the storage cannot be reached")


def test_unreachable_postgres_fails_fast_before_training(small_data) -> None:
    X, y = small_data
    url = "postgresql://user:secret@127.0.0.1:1/db"
    search = NeuralSearchCV(_MustNotTrain(), {"C": [1.0]}, n_trials=2, storage=url, study_name="s")
    start = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        search.fit(X, y)
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert message.startswith("NeuralSearchCV cannot connect to its storage 'postgresql://user:***@127.0.0.1:1/db': ")
    assert "secret" not in message and "refused" in message
    assert not hasattr(search, "study_")


def test_unreachable_journal_directory_fails_fast(tmp_path, small_data) -> None:
    X, y = small_data
    url = f"journal://{tmp_path / 'missing' / 'study.log'}"
    with pytest.raises(
        ConnectionError, match=r"^NeuralSearchCV cannot open its storage 'journal://.*missing/study.log'"
    ):
        NeuralSearchCV(_MustNotTrain(), {"C": [1.0]}, n_trials=2, storage=url).fit(X, y)


def test_not_a_storage_url_is_a_value_error(small_data) -> None:
    X, y = small_data
    with pytest.raises(ValueError, match=r"^The 'storage' parameter of NeuralSearchCV must be None, an Optuna storage"):
        NeuralSearchCV(_MustNotTrain(), {"C": [1.0]}, n_trials=2, storage="nonsense").fit(X, y)
    with pytest.raises(ValueError, match=r"'heartbeat_interval' parameter of NeuralSearchCV must be an int"):
        NeuralSearchCV(_MustNotTrain(), {"C": [1.0]}, heartbeat_interval=0.5).fit(X, y)


def _worker_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "skopt_nn.search.worker", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_worker_cli_unreachable_storage_is_one_line_exit_2() -> None:
    start = time.monotonic()
    done = _worker_cli("--storage", "postgresql://user:secret@127.0.0.1:1/db", "--study", "s")
    assert time.monotonic() - start < 30  # interpreter and torch start-up included
    assert done.returncode == 2
    assert done.stderr.startswith(
        "skopt-nn worker: error: cannot connect to --storage 'postgresql://user:***@127.0.0.1:1/db': "
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and "secret" not in done.stderr


def test_worker_refuses_a_missing_study_and_a_study_without_job(tmp_path) -> None:
    url = f"journal://{tmp_path / 'study.log'}"
    done = _worker_cli("--storage", url, "--study", "nope")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"skopt-nn worker: error: no study named 'nope' in {url} (it has none)")
    optuna.create_study(storage=run_storage(url), study_name="plain")
    done = _worker_cli("--storage", url, "--study", "plain")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("skopt-nn worker: error: study 'plain' carries no job")
    with pytest.raises(JobError, match="no study named 'nope'.*its studies: plain"):
        run_worker(url, "nope")


def test_worker_cli_bad_arguments_exit_2() -> None:
    done = _worker_cli("--storage", "journal:///tmp/x.log", "--study", "s", "--n-trials", "0")
    assert done.returncode == 2
    assert done.stderr == "skopt-nn worker: error: --n-trials must be at least 1; got 0\n"


def test_create_study_needs_a_shared_storage_and_a_name(tmp_path, small_data) -> None:
    X, y = small_data
    for storage, name in [
        (None, "s"),
        (f"sqlite:///{tmp_path / 's.db'}", "s"),
        (f"journal://{tmp_path / 's.log'}", None),
    ]:
        search = NeuralSearchCV(_MustNotTrain(), {"C": [1.0]}, storage=storage, study_name=name)
        with pytest.raises(ValueError, match="^Workers join a study by name in a shared storage"):
            create_study(search, X, y)


@pytest.mark.slow
def test_journal_workers_share_a_study(tmp_path, study_name, small_data, workers) -> None:
    """Two worker processes on a journal file (no server) complete exactly the requested trials."""
    X, y = small_data
    url = f"journal://{tmp_path / 'study.log'}"
    create_study(_search(url, study_name, 6, epochs=6), X, y)
    procs = [workers.start(url, study_name) for _ in range(2)]
    for code, _, err in (workers.wait(p) for p in procs):
        assert code == 0, err
    _assert_exactly(trials_of(url, study_name), 6)


def run_storage(url: str):
    return open_storage(url, heartbeat_interval=None)


def test_counting_rule_on_a_hand_made_study() -> None:
    """The budget arithmetic every process applies (skopt_nn.search._storage.tally)."""
    from skopt_nn.search._storage import SURPLUS, tally

    study = optuna.create_study()
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def add(state, **attrs):
        system = attrs.pop("system", {})
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                params={"x": 0.5},
                distributions=dist,
                value=1.0 if state == optuna.trial.TrialState.COMPLETE else None,
                user_attrs=attrs,
                system_attrs=system,
            )
        )

    S = optuna.trial.TrialState
    add(S.COMPLETE)  # 0
    add(S.FAIL)  # 1: lost, retried as 3
    add(S.FAIL)  # 2: an error: counts
    add(S.WAITING, system={"failed_trial": 1, "retry_history": [1]})  # 3
    add(S.FAIL, **{SURPLUS: 4})  # 4: surplus: never counts
    add(S.PRUNED)  # 5
    now = tally(study.get_trials())
    assert (now.counted, now.waiting, now.running) == (4, 1, 0)  # 0, 2, 3, 5
    assert tally(study.get_trials(), before=3).counted == 2  # 0, 2
    np.testing.assert_equal(tally(study.get_trials(), before=6).counted, 4)
