"""Fixtures for the distributed-study and resume tests: a real PostgreSQL server, journal files, worker processes.

The PostgreSQL tests need ``SKOPT_NN_TEST_POSTGRES_URL`` (``.ci/run`` starts a server and sets it; locally:
``export SKOPT_NN_TEST_POSTGRES_URL="$(.ci/postgres.sh start /tmp/pg 55432)"``). Without it they are skipped, except
under ``CI=true``, where they fail: CI must run them.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

POSTGRES_ENV = "SKOPT_NN_TEST_POSTGRES_URL"


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set: under CI=true the PostgreSQL tests must run (.ci/run starts it)")
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/postgres.sh start DIR PORT prints a URL)")
    return url


@pytest.fixture
def postgres_url() -> str:
    return _postgres_url()


@pytest.fixture(params=["postgres", "journal"])
def shared_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A storage several processes share: the PostgreSQL server, or a journal file (no server)."""
    if request.param == "postgres":
        return _postgres_url()
    return f"journal://{tmp_path / 'study.log'}"


@pytest.fixture
def study_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def small_data() -> tuple[np.ndarray, np.ndarray]:
    """200 rows of breast cancer, standardised: trials of a few tenths of a second."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(X), 200, replace=False)
    return StandardScaler().fit_transform(X[rows]).astype(np.float32), y[rows]


class Workers:
    """Worker processes (``python -m skopt_nn.search.worker``) started by a test; killed at its end if still alive."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, url: str, name: str, *extra: str) -> subprocess.Popen[str]:
        cmd = [
            sys.executable,
            "-m",
            "skopt_nn.search.worker",
            "--storage",
            url,
            "--study",
            name,
            "--torch-threads",
            "1",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.procs.append(proc)
        return proc

    def wait(self, proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers()
    yield pool
    pool.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@functools.cache
def _reader(url: str) -> optuna.storages.BaseStorage:
    from skopt_nn.search._storage import open_storage

    storage = open_storage(url, heartbeat_interval=None)
    assert storage is not None
    return storage


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read through this test process's own storage (what any other process sees)."""
    return optuna.load_study(study_name=name, storage=_reader(url)).get_trials(deepcopy=False)
