"""Storages for studies shared by several processes: URLs to Optuna storages, heartbeats, retries, the job.

* :func:`open_storage` turns ``NeuralSearchCV(storage=...)`` into an Optuna storage and fails fast (a clear
  :class:`ConnectionError` within seconds, before any training) when it cannot be reached. Database URLs
  (``postgresql://``, ``mysql://``, ``sqlite:///file``) get Optuna's heartbeat and a retry callback; ``journal:///path``
  (or a path ending ``.log``) is Optuna's journal file, given the same heartbeat by :class:`HeartbeatJournalStorage`.
* The *job* — the search's settings, estimator, space, data and CV splits — is stored in the study itself
  (:func:`store_job` / :func:`load_job`), so a worker needs nothing but the storage URL and the study name.
* Trials are counted the same way by every process (:func:`tally`): ``n_trials`` is a study-wide total, a trial lost
  with its worker (no heartbeat) or interrupted (Ctrl-C) is replaced by its retry, and a trial created by a worker that
  lost the race for the last slot is closed at once and counted nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import pickle
import re
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "HeartbeatJournalStorage",
    "HeartbeatRDBStorage",
    "JobError",
    "Tally",
    "fail_stale_trials",
    "heartbeat_enabled",
    "is_shared",
    "is_surplus",
    "load_job",
    "open_storage",
    "requeue_interrupted",
    "retry_callback",
    "shown_url",
    "store_job",
    "tally",
]

PREFIX = "skopt_nn:"
N_TRIALS_ATTR = PREFIX + "n_trials"  # study user attr: the study-wide number of trials
HEARTBEAT_ATTR = PREFIX + "heartbeat_interval"  # study user attr: every process uses the study's heartbeat
JOB_CHUNKS = PREFIX + "job_chunks"  # study system attrs: the pickled job, in chunks, and its sha256
JOB_SHA256 = PREFIX + "job_sha256"
SURPLUS = PREFIX + "surplus"  # trial user attr (= its number): created after the budget was full, never counted
INTERRUPTED = PREFIX + "interrupted"  # trial user attr (= its number): stopped by Ctrl-C, queued again
BEAT = PREFIX + "heartbeat"  # trial system attr of the journal storage: time of the last heartbeat
ALIVE = PREFIX + "alive"  # trial user attr (= its number): its objective started, so its heartbeat thread runs

#: a heartbeat-stale trial is queued again at most this many times (an interrupted one always)
MAX_RETRY = 3
#: seconds to wait for a database server to accept a connection
CONNECT_TIMEOUT = 10
JOB_FORMAT = 1


def grace_period(heartbeat_interval: int) -> int:
    """Seconds without a heartbeat after which a running trial is declared lost: three intervals."""
    return 3 * int(heartbeat_interval)


def shown_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def retry_callback() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """Optuna's callback that queues a copy (same parameters, ``retry_history`` in its system attrs) of a failed
    trial, at most :data:`MAX_RETRY` times."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def _unborn_stale(storage: BaseStorage, study_id: int, grace: float, known: Sequence[int]) -> list[int]:
    """RUNNING trials whose process died before their first heartbeat (between Optuna's ``ask`` and the start of
    the objective, which marks the trial ``skopt_nn:alive``): Optuna never watches those, so they would stay
    RUNNING forever. Stale once they started more than ``grace`` seconds ago (by this machine's clock)."""
    now = time.time()
    stale = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if trial._trial_id in known or trial.user_attrs.get(ALIVE) == trial.number or trial.datetime_start is None:
            continue
        if now - trial.datetime_start.timestamp() > grace:
            stale.append(trial._trial_id)
    return stale


class HeartbeatRDBStorage(RDBStorage):
    """Optuna's database storage, whose heartbeat check also fails a trial whose process died before its first
    heartbeat (see :func:`_unborn_stale`)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        assert self.heartbeat_interval is not None
        grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
        return stale + _unborn_stale(self, study_id, grace, stale)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat that Optuna gives only to database storages.

    Each running trial's process records the time in the trial's system attr ``skopt_nn:heartbeat`` every
    ``heartbeat_interval`` seconds (one journal line); a running trial whose last heartbeat (or start) is older than
    ``grace_period`` is failed by the next process that starts a trial, and ``heartbeat_stale_trial_callback`` runs
    on it — the same protocol as :class:`optuna.storages.RDBStorage`. Times are the processes' clocks, so machines
    sharing a journal file need synchronised clocks (NTP).
    """

    def __init__(
        self,
        backend: Any,
        *,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, BEAT, time.time())
        except (UpdateFinishedTrialError, KeyError):  # already failed by another process: nothing to keep alive
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.heartbeat_interval is not None
        grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # the last sign of life: the last heartbeat, or the (re)start — a retry inherits its predecessor's
            # heartbeat attr, and a process may die before its first heartbeat
            started = trial.datetime_start.timestamp() if trial.datetime_start is not None else now
            if now - max(float(trial.system_attrs.get(BEAT, 0.0)), started) > grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback


def _journal_path(url: str) -> str | None:
    if url.startswith("journal://"):
        return url[len("journal://") :]
    if "://" not in url and url.endswith(".log"):
        return url
    return None


def _is_memory_sqlite(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or url.startswith("sqlite:///:memory:")


def _subject(owner: str, param: str, verb: str) -> str:
    return f"{owner} cannot {verb} its {param}" if owner else f"cannot {verb} {param}"


def _not_a_storage(owner: str, param: str, expected: str, value: Any) -> str:
    if owner:
        return f"The {param!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    return f"{param} must be {expected}; got {value!r}"


def open_storage(
    storage: Any, *, heartbeat_interval: int | None, owner: str = "NeuralSearchCV", param: str = "storage"
) -> BaseStorage | None:
    """``None`` (in memory), an Optuna storage object (used as given) or a URL, opened now.

    URLs: ``sqlite:///file.db``, ``postgresql://user:password@host:port/db`` (psycopg 3, the ``postgres`` extra),
    ``mysql://...``, and ``journal:///abs/path.log`` / ``journal://relative/path.log`` / ``path.log`` (a journal
    file, no server; the file system must support locks, see Optuna's ``JournalFileBackend``). With
    ``heartbeat_interval`` every running trial records a heartbeat; one silent for :func:`grace_period` seconds is
    failed and queued again (:func:`retry_callback`). An in-memory SQLite URL gets no heartbeat.

    Raises ConnectionError (``"<owner> cannot connect to its <param> '<URL without password>': <reason>"``, or
    ``"cannot connect to <param> ..."`` when ``owner`` is empty) when the storage cannot be reached, ValueError
    for something that is not a storage, ImportError for a missing database driver.
    """
    if storage is None or isinstance(storage, BaseStorage):
        return storage
    expected = (
        "None, an Optuna storage URL (sqlite:///study.db, postgresql://user@host/db, journal:///path/study.log) "
        "or an Optuna storage"
    )
    if not isinstance(storage, str) or not storage:
        raise ValueError(_not_a_storage(owner, param, expected, storage))
    shown = shown_url(storage)
    beat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        beat = {
            "heartbeat_interval": int(heartbeat_interval),
            "grace_period": grace_period(heartbeat_interval),
            "heartbeat_stale_trial_callback": retry_callback(),
        }
    path = _journal_path(storage)
    if path is not None:
        try:
            return HeartbeatJournalStorage(JournalFileBackend(path), **beat)
        except OSError as exc:
            raise ConnectionError(f"{_subject(owner, param, 'open')} {shown!r}: {exc}") from None
    engine_kwargs: dict[str, Any] = {}
    if storage.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    if _is_memory_sqlite(storage):
        beat = {}
    import sqlalchemy.exc

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return HeartbeatRDBStorage(storage, engine_kwargs=engine_kwargs, **beat)
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(_not_a_storage(owner, param, expected, shown)) from None
    except ImportError as exc:
        extra = " (pip install 'skopt-nn[postgres]')" if storage.startswith("postgresql") else ""
        cause = exc.__cause__ or exc
        raise ImportError(f"{_subject(owner, param, 'open')} {shown!r}: no database driver{extra}: {cause}") from None
    except sqlalchemy.exc.DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc).splitlines()[0]
        raise ConnectionError(f"{_subject(owner, param, 'connect to')} {shown!r}: {reason}") from None


def heartbeat_enabled(storage: BaseStorage | None) -> bool:
    """Whether running trials in ``storage`` send heartbeats (so a lost one is failed and retried)."""
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's :func:`~optuna.storages.fail_stale_trials` (fail the trials whose heartbeat stopped, queue retries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def is_shared(storage: BaseStorage | None) -> bool:
    """Whether other processes (workers) can join a study in ``storage``: a database server or a journal file.

    SQLite is for one process (Optuna advises against sharing it); its studies carry no job.
    """
    if storage is None or isinstance(storage, InMemoryStorage):
        return False
    if isinstance(storage, RDBStorage):
        return not str(storage.url).startswith("sqlite")
    return True


# ---------------------------------------------------------------------------------------------------- the job


class JobError(Exception):
    """A study that workers cannot join: missing, without a job, or with a job this process cannot load."""


def _chunk_size(storage: BaseStorage) -> int:
    # MySQL stores attributes in TEXT columns of 64 KiB; the others have no practical limit
    if isinstance(storage, RDBStorage) and str(storage.url).startswith("mysql"):
        return 60_000
    return 4_000_000


def store_job(storage: BaseStorage, study_id: int, job: dict[str, Any]) -> None:
    """Pickle (cloudpickle: lambdas, closures and classes of ``__main__`` travel by value) and store ``job`` in
    the study's system attrs, in chunks; unchanged jobs are not written again."""
    import cloudpickle

    raw = cloudpickle.dumps({"format": JOB_FORMAT, **job}, protocol=pickle.DEFAULT_PROTOCOL)
    text = base64.b64encode(zlib.compress(raw, 6)).decode("ascii")
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    attrs = storage.get_study_system_attrs(study_id)
    if attrs.get(JOB_SHA256) == digest:
        return
    size = _chunk_size(storage)
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    for i, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, f"{PREFIX}job:{i}", chunk)
    storage.set_study_system_attr(study_id, JOB_CHUNKS, len(chunks))
    storage.set_study_system_attr(study_id, JOB_SHA256, digest)  # last: a reader checks the chunks against it


def load_job(storage: BaseStorage, study_id: int, study_name: str, *, attempts: int = 5) -> dict[str, Any]:
    """The job stored by :func:`store_job`; JobError when there is none or it cannot be unpickled here."""
    for _ in range(attempts):
        attrs = storage.get_study_system_attrs(study_id)
        if JOB_CHUNKS not in attrs:
            raise JobError(
                f"study {study_name!r} carries no job: it was not started by NeuralSearchCV(storage=<a shared "
                "storage>, study_name=...).fit or skopt_nn.search.worker.create_study"
            )
        try:
            text = "".join(attrs[f"{PREFIX}job:{i}"] for i in range(int(attrs[JOB_CHUNKS])))
        except KeyError:
            text = ""
        if hashlib.sha256(text.encode("ascii")).hexdigest() == attrs.get(JOB_SHA256):
            break
        time.sleep(1.0)  # the coordinator is writing a new job: read again
    else:
        raise JobError(f"the job of study {study_name!r} is incomplete (its checksum does not match)")
    try:
        job = pickle.loads(zlib.decompress(base64.b64decode(text)))
    except Exception as exc:
        raise JobError(
            f"cannot load the job of study {study_name!r}: {type(exc).__name__}: {exc} (the estimator's and the "
            "space's code must be importable here, with the same library versions)"
        ) from None
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT:
        raise JobError(f"the job of study {study_name!r} has an unknown format (another skopt_nn version?)")
    return job


# ---------------------------------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Tally:
    """How a study's trials count towards its ``n_trials``.

    ``counted``: trials that use a slot of the budget — finished (COMPLETE, PRUNED, FAIL) or still to finish
    (RUNNING, WAITING) — minus the FAIL trials that were queued again (their retry holds the slot) and minus surplus
    trials. ``waiting``/``running``: the counted ones in those states.
    """

    counted: int
    waiting: int
    running: int


def is_surplus(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get(SURPLUS) == trial.number


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials that were queued again (they appear in a later trial's ``retry_history``)."""
    return {int(n) for t in trials for n in t.system_attrs.get("retry_history", ())}


def counts(trial: FrozenTrial, retried: set[int]) -> bool:
    if is_surplus(trial):
        return False
    return not (trial.state == TrialState.FAIL and trial.number in retried)


def tally(trials: Sequence[FrozenTrial], before: int | None = None) -> Tally:
    """Count ``trials`` (only those numbered below ``before`` if given)."""
    retried = retried_numbers(trials)
    counted = waiting = running = 0
    for t in trials:
        if (before is not None and t.number >= before) or not counts(t, retried):
            continue
        counted += 1
        waiting += t.state == TrialState.WAITING
        running += t.state == TrialState.RUNNING
    return Tally(counted, waiting, running)


def requeue_interrupted(study: optuna.Study) -> int:
    """Queue again (same parameters, recorded like a heartbeat retry) every trial stopped by Ctrl-C that is not yet
    queued; return how many were queued."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)
    queued = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get(INTERRUPTED) == t.number and t.number not in retried:
            callback(study, t)
            queued += 1
    return queued
