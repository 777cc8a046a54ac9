"""One search, several processes: a NeuralSearchCV study in a journal file, joined by two worker processes.

The coordinator stores the job (estimator, space, data, CV splits) in the study with ``create_study``; two workers
started as separate processes (``python -m skopt_nn.search.worker``, the same as ``skopt-nn worker``) run its
trials; ``fit`` then runs whatever is left and gathers every trial, whichever process ran it. A journal file needs
no server (processes on one machine, or on machines sharing the file system); for many machines use PostgreSQL:
``storage="postgresql://user:password@host/db"`` and the same commands (docs/distributed.md).

Run with ``python examples/distributed_study.py``; ``SKOPT_NN_FAST=1`` for a short smoke run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn.search import auto_space
from skopt_nn.search.worker import create_study

FAST = os.environ.get("SKOPT_NN_FAST") == "1"
JOURNAL = Path("distributed_study.log").resolve()


def main() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    net = NeuralClassifier(max_epochs=3 if FAST else 20, module__hidden_layer_sizes=(32,), random_state=0)
    pipe = make_pipeline(StandardScaler(), net)
    search = NeuralSearchCV(
        pipe,
        auto_space(pipe, optimizers=["adamw", "lion", "diffgrad", "sgd"], schedules=["constant", "cosine"]),
        sampler="cem",
        n_trials=8 if FAST else 40,
        cv=3,
        storage=f"journal://{JOURNAL}",  # journal:///abs/path.log (or any path ending .log)
        study_name="breast-cancer",
        random_state=0,
    )
    create_study(search, X, y)  # the study now carries the job; no trial has run
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "skopt_nn.search.worker", "--storage", str(JOURNAL), "--study", "breast-cancer"]
    workers = [subprocess.Popen([*command, "--torch-threads", "1", "--quiet"], env=env) for _ in range(2)]
    codes = [w.wait(timeout=900) for w in workers]
    print(f"workers exited with {codes}")

    search.fit(X, y)  # runs what is left (usually nothing), gathers every trial, refits the best
    states = Counter(search.cv_results_["state"])
    print(f"{search.n_trials_} trials in the study: {dict(states)}")
    print(f"best CV accuracy {search.best_score_:.4f} with {search.best_params_}")
    print(f"the study is in {JOURNAL}; more workers can join it: skopt-nn worker --storage {JOURNAL} --study ...")


if __name__ == "__main__":
    main()
