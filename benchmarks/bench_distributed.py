"""Benchmark B6 (BENCHMARKS.md): distributed speed-up, 1 worker process vs 2 sharing one PostgreSQL study.

Workload: a NeuralSearchCV job stored in a fresh study (``skopt_nn.search.worker.create_study``): NeuralClassifier
(MLP 64 -> 64 -> 10, Adam, a log-uniform lr in [1e-3, 3e-3], fixed epochs, batch 64) on scikit-learn's digits with
2-fold CV, no pruning, the same number of trials for both contenders, so every trial costs about the same. Each
round runs the 1-worker study then the 2-worker study (``python -m skopt_nn.search.worker --torch-threads 1``, one
torch thread each; OMP_NUM_THREADS=1). Printed, one line per figure, median over rounds of the per-round ratio:

* study span ratio: (last trial completed - first trial started) with 2 workers / with 1 worker — the search's own
  time, without the interpreter start-up of the worker processes;
* wall-time ratio: from launching the workers to the last one exiting, start-up included;
* trials: every study ended with exactly the requested number of finished trials (none lost), and how many surplus
  trials (a worker losing the race for the last slot; closed at once, never counted) there were;
* the machine's floor for the span ratio: the same training loop (one torch thread) timed alone and as two
  processes at once, 0.5 x (time of the pair / time alone) — 0.5 on two free cores, 1.0 on one. No scheme of
  worker processes can beat it; the gap to it is skopt_nn's and Optuna's cost.

Needs a PostgreSQL URL: --storage or SKOPT_NN_TEST_POSTGRES_URL (``.ci/postgres.sh start /tmp/pg 55432`` prints one).

Usage: python benchmarks/bench_distributed.py [--trials 12] [--repeats 5] [--epochs 25] [--storage URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn._space import Float
from skopt_nn.search._storage import is_surplus, open_storage
from skopt_nn.search.worker import create_study

optuna.logging.set_verbosity(optuna.logging.ERROR)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


_LOOP = """
import time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
X, y = torch.randn(900, 64), torch.randint(0, 10, (900,))
net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
opt = torch.optim.Adam(net.parameters(), 1e-3)
start = time.perf_counter()
for epoch in range(EPOCHS):
    for i in range(0, 900, 64):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X[i : i + 64]), y[i : i + 64]).backward()
        opt.step()
print(time.perf_counter() - start)
"""


def machine_floor(epochs: int) -> float:
    """0.5 x (time of the training loop run by two processes at once / by one alone)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _LOOP.replace("EPOCHS", str(epochs))]

    def run(n: int) -> float:
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return max(float(p.communicate()[0]) for p in procs)

    return 0.5 * run(2) / run(1)


def run_study(url: str, n_workers: int, n_trials: int, epochs: int, X: np.ndarray, y: np.ndarray) -> dict:
    name = f"b6-{n_workers}w-{uuid.uuid4().hex[:8]}"
    net = NeuralClassifier(max_epochs=epochs, batch_size=64, module__hidden_layer_sizes=(64,), random_state=0)
    space = {"optimizer": ["adam"], "lr": Float(1e-3, 3e-3, log=True)}
    search = NeuralSearchCV(
        net, space, sampler="random", n_trials=n_trials, cv=2, pruner=None, storage=url, study_name=name, random_state=0
    )
    create_study(search, X, y)
    cmd = [sys.executable, "-m", "skopt_nn.search.worker", "--storage", url, "--study", name]
    cmd += ["--torch-threads", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    for p, (_, err) in zip(procs, outputs):
        if p.returncode != 0:
            raise SystemExit(f"a worker failed ({p.returncode}): {err.strip()}")
    storage = open_storage(url, heartbeat_interval=None)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.state in FINISHED]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)  # type: ignore[operator]
    return {
        "wall": wall,
        "span": span.total_seconds(),
        "finished": len(done),
        "surplus": sum(is_surplus(t) for t in trials),
        "other": len(trials) - len(done) - sum(is_surplus(t) for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=os.environ.get("SKOPT_NN_TEST_POSTGRES_URL"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    if not args.storage:
        raise SystemExit("B6 needs PostgreSQL: --storage URL or SKOPT_NN_TEST_POSTGRES_URL (.ci/postgres.sh start)")
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    print(f"B6 load average before: {load()} ({os.cpu_count()} CPUs)", flush=True)
    rounds = []
    for _ in range(args.repeats):
        one = run_study(args.storage, 1, args.trials, args.epochs, X, y)
        two = run_study(args.storage, 2, args.trials, args.epochs, X, y)
        rounds.append((one, two))
        print(
            f"  round: 1 worker span {one['span']:.1f}s wall {one['wall']:.1f}s | 2 workers span {two['span']:.1f}s "
            f"wall {two['wall']:.1f}s | span ratio {two['span'] / one['span']:.2f}",
            flush=True,
        )
    floor = statistics.median(machine_floor(4 * args.epochs) for _ in range(3))
    span = statistics.median(t["span"] / o["span"] for o, t in rounds)
    wall = statistics.median(t["wall"] / o["wall"] for o, t in rounds)
    ok = all(r["finished"] == args.trials and r["other"] == 0 for pair in rounds for r in pair)
    surplus = sum(r["surplus"] for pair in rounds for r in pair)
    n = len(rounds)
    print(f"B6 study span, 2 workers / 1 worker: {span:.2f} (median of {n}; bar <= 0.6)")
    print(f"B6 wall time incl. worker start-up, 2 workers / 1 worker: {wall:.2f} (median of {n})")
    print(f"B6 machine floor for the span ratio (two 1-thread training loops at once vs one): {floor:.2f}")
    print(
        f"B6 trials: {'every' if ok else 'NOT every'} study finished exactly {args.trials} trials, none lost; "
        f"{surplus} surplus trials in {2 * n} studies"
    )
    print(f"B6 load average after: {load()}")


if __name__ == "__main__":
    main()
