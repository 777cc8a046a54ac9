"""Stopping a NeuralSearchCV with persistent storage and resuming it by running the same call again.

* Ctrl-C between trials (a callback raising KeyboardInterrupt after k trials): the k trials are kept, nothing is
  left RUNNING, and the second call completes ``n_trials`` in total with the first k unchanged.
* Ctrl-C in the middle of a trial: that trial is FAIL (``KeyboardInterrupt`` in ``cv_results_["error"]``), never
  counted as complete, never left RUNNING; a copy with the same parameters is queued (WAITING) and the second call
  runs it first. Only the copy counts towards ``n_trials``.
* The process killed outright (SIGKILL) in the middle of a trial: with SQLite's default heartbeat, the second call
  fails the orphaned RUNNING trial once its heartbeat is older than the grace period and runs it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import optuna
import pytest
from optuna.trial import TrialState
from skorch.callbacks import Callback

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn._space import Float
from skopt_nn.search._storage import INTERRUPTED, open_storage
from tests.search.conftest import trials_of, wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPACE = {"optimizer": ["adam", "adamw"], "lr": Float(1e-4, 3e-3, log=True)}

_CTRL_C = {"fits": 0, "at": None}  # module-level: the estimator's callbacks are cloned for every fit


class _CtrlCInFit(Callback):
    """Raises KeyboardInterrupt at the second epoch of the ``_CTRL_C["at"]``-th fit (as a user's Ctrl-C would)."""

    def on_train_begin(self, net, **kwargs):
        _CTRL_C["fits"] += 1

    def on_epoch_end(self, net, **kwargs):
        if _CTRL_C["fits"] == _CTRL_C["at"] and len(net.history) == 2:
            raise KeyboardInterrupt


def _search(storage: str, n_trials: int, **kwargs) -> NeuralSearchCV:
    net = NeuralClassifier(
        max_epochs=3, batch_size=32, module__hidden_layer_sizes=(8,), callbacks=[("ctrl_c", _CtrlCInFit())]
    )
    return NeuralSearchCV(
        net, SPACE, n_trials=n_trials, cv=2, pruner=None, storage=storage, study_name="resume", random_state=0, **kwargs
    )


@pytest.fixture(params=["sqlite", "journal"])
def storage(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return f"journal://{tmp_path / 'study.log'}"


def test_ctrl_c_between_trials_then_the_same_call_completes_the_study(storage, small_data) -> None:
    X, y = small_data
    k, n_trials = 2, 5

    def stop_after_k(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if len(study.get_trials(states=(TrialState.COMPLETE,))) == k:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _search(storage, n_trials, callbacks=[stop_after_k]).fit(X, y)
    first = trials_of(storage, "resume")
    assert [t.state for t in first] == [TrialState.COMPLETE] * k  # nothing RUNNING, nothing lost

    search = _search(storage, n_trials).fit(X, y)
    trials = search.study_.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert [(t.params, t.value) for t in trials[:k]] == [(t.params, t.value) for t in first]  # kept, not re-run
    assert search.n_trials_ == n_trials and list(search.cv_results_["trial_number"]) == list(range(n_trials))


def test_ctrl_c_inside_a_trial_fails_it_and_the_resumed_call_runs_it_again(storage, small_data) -> None:
    X, y = small_data
    k, n_trials = 2, 4
    _CTRL_C.update(fits=0, at=2 * k + 1)  # the first fold of trial k (two folds per trial)
    try:
        with pytest.raises(KeyboardInterrupt):
            _search(storage, n_trials, refit=False).fit(X, y)
    finally:
        _CTRL_C["at"] = None
    trials = trials_of(storage, "resume")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * k + [TrialState.FAIL, TrialState.WAITING]
    interrupted, queued = trials[k], trials[k + 1]
    assert interrupted.user_attrs[INTERRUPTED] == k
    assert interrupted.user_attrs["error"] == "KeyboardInterrupt: the search was interrupted"
    assert queued.system_attrs["retry_history"] == [k] and queued.params == interrupted.params

    search = _search(storage, n_trials, refit=False).fit(X, y)
    trials = search.study_.get_trials()
    states = [t.state for t in trials]
    # n_trials COMPLETE: the interrupted one is FAIL and not counted; its copy (run first) is
    assert states == [TrialState.COMPLETE] * k + [TrialState.FAIL] + [TrialState.COMPLETE] * (n_trials - k)
    assert trials[k + 1].params == interrupted.params
    assert search.n_trials_ == n_trials + 1  # cv_results_ shows the FAIL row too
    assert list(search.cv_results_["state"]).count("COMPLETE") == n_trials
    assert search.cv_results_["error"][k] == (
        f"KeyboardInterrupt: the search was interrupted; queued again as trial {k + 1}"
    )
    assert search.cv_results_["error"][k + 1] == ""  # the copy inherited the attrs, but it completed


_KILLED_RUN = """
import numpy as np, torch
torch.set_num_threads(1)
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn._space import Float
X, y = load_breast_cancer(return_X_y=True)
rows = np.random.default_rng(0).choice(len(X), 200, replace=False)
X, y = StandardScaler().fit_transform(X[rows]).astype(np.float32), y[rows]
net = NeuralClassifier(max_epochs=40, batch_size=8, module__hidden_layer_sizes=(16,))
space = {"optimizer": ["adam", "adamw"], "lr": Float(1e-4, 3e-3, log=True)}
NeuralSearchCV(net, space, n_trials=3, cv=2, pruner=None, storage=URL, study_name="killed", random_state=0,
               refit=False, heartbeat_interval=1).fit(X, y)
"""


@pytest.mark.slow
def test_a_killed_process_leaves_no_trial_running_forever(tmp_path, small_data) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN).replace("URL", repr(url)))
    # created here, so that this process and the script never race to create the tables
    optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="killed", direction="maximize")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:

        def training() -> list[optuna.trial.FrozenTrial]:
            return [
                t
                for t in trials_of(url, "killed")
                if t.state == TrialState.RUNNING and len(t.user_attrs.get("split_scores", [])) == 1
            ]

        victim = wait_for(training, 90, "a trial in its second fold")[0]  # type: ignore[index]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert trials_of(url, "killed")[victim.number].state == TrialState.RUNNING

    X, y = small_data
    net = NeuralClassifier(max_epochs=40, batch_size=8, module__hidden_layer_sizes=(16,))
    search = NeuralSearchCV(
        net,
        SPACE,
        n_trials=3,
        cv=2,
        pruner=None,
        storage=url,
        study_name="killed",
        random_state=0,
        refit=False,
        heartbeat_interval=1,
    ).fit(X, y)
    trials = search.study_.get_trials()
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [victim.number]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == victim.number)
    assert retry.state == TrialState.COMPLETE and retry.params == trials[victim.number].params
    row = list(search.cv_results_["trial_number"]).index(victim.number)
    assert search.cv_results_["error"][row] == (
        f"lost: its process stopped sending heartbeats; queued again as trial {retry.number}"
    )


def test_a_callback_that_stops_the_study_ends_the_search_early(small_data) -> None:
    """``study.stop()`` from a user's callback is an early stop: the budget loop does not start trials again."""
    X, y = small_data

    def stop_after_two(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if len(study.get_trials(states=(TrialState.COMPLETE,))) == 2:
            study.stop()

    search = NeuralSearchCV(
        NeuralClassifier(max_epochs=2, batch_size=32, module__hidden_layer_sizes=(8,)),
        SPACE,
        n_trials=6,
        cv=2,
        pruner=None,
        refit=False,
        random_state=0,
        callbacks=[stop_after_two],
    ).fit(X, y)
    assert search.n_trials_ == 2
