"""Benchmark B4 (BENCHMARKS.md): sampler cost, ms per trial's suggestions, at 100 and 1000 completed trials.

Space: 10 parameters of mixed types with a conditional branch (a categorical "optimizer" choosing which of two
log-scaled learning rates exists, ints, log and linear floats, a stepped float, two more categoricals).
For each history size, the same completed trials (random points of the space, synthetic objective) are added to a
fresh study per sampler; then 20 ask -> suggest all -> tell cycles are timed; the median per trial over 3 repeats
is printed for CE (ours), TPE and Random, with CE's ratio to TPE, CE's own cost over Random's (Random is the
floor: Optuna's ask/tell bookkeeping) and CE per parameter suggested.

Usage: python benchmarks/bench_samplers.py [--sizes 100 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import optuna
from _common import setup_threads
from optuna.trial import create_trial

from skopt_nn.search import CrossEntropySampler

optuna.logging.set_verbosity(optuna.logging.ERROR)


def objective(trial: optuna.trial.BaseTrial) -> float:
    kind = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    lr = trial.suggest_float(f"{kind}:lr", 1e-5, 1.0, log=True)
    width = trial.suggest_int("width", 16, 512, log=True)
    depth = trial.suggest_int("depth", 1, 4)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    wd = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    frac = trial.suggest_float("warmup", 0.0, 0.2, step=0.01)
    schedule = trial.suggest_categorical("schedule", ["constant", "cosine", "sgdr"])
    batch = trial.suggest_categorical("batch_size", [32, 64, 128, 256])
    beta = trial.suggest_float("one_minus_beta", 1e-3, 0.3, log=True)
    return (
        (math.log10(lr) + (3 if kind == "adam" else 1.5)) ** 2
        + (math.log2(width) - 7) ** 2 / 4
        + (depth - 2) ** 2 / 4
        + dropout
        + abs(math.log10(wd) + 4) / 4
        + frac
        + {"constant": 0.3, "cosine": 0.0, "sgdr": 0.1}[schedule]
        + abs(math.log2(batch) - 6) / 4
        + abs(math.log10(beta) + 1)
    )


def history(n: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective, n_trials=n)
    return [create_trial(params=t.params, distributions=t.distributions, value=t.value) for t in study.trials]


def cost(make: type | object, trials: list[optuna.trial.FrozenTrial], cycles: int) -> float:
    sampler = make() if callable(make) else make
    study = optuna.create_study(sampler=sampler)
    study.add_trials(trials)
    warm = study.ask()  # fill caches (CE's fitted generations) outside the timing, as in a running study
    study.tell(warm, objective(warm))
    start = time.perf_counter()
    for _ in range(cycles):
        trial = study.ask()
        study.tell(trial, objective(trial))
    return (time.perf_counter() - start) / cycles * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    setup_threads(2)
    samplers = {
        "cem": lambda: CrossEntropySampler(seed=0),
        "tpe": lambda: optuna.samplers.TPESampler(seed=0),
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
    }
    print(f"B4 sampler cost, ms per trial (10 parameters, conditional), optuna {optuna.__version__}")
    header = " ".join(f"{name:>9s}" for name in samplers)
    print(f"{'completed trials':>16s} {header} {'CE/TPE':>7s} {'CE-Random':>9s} {'CE/param':>8s}  verdict")
    for n in args.sizes:
        trials = history(n)
        times = {name: [] for name in samplers}
        for _ in range(args.repeats):
            for name, make in samplers.items():
                times[name].append(cost(make, trials, args.cycles))
        med = {name: statistics.median(v) for name, v in times.items()}
        ratio = med["cem"] / med["tpe"]
        ok = ratio <= 1.0 and (n < 1000 or med["cem"] <= 5.0)
        row = " ".join(f"{med[name]:9.2f}" for name in samplers)
        own, per_param = med["cem"] - med["random"], med["cem"] / 10
        print(f"{n:16d} {row} {ratio:7.2f} {own:9.2f} {per_param:8.2f}  " + ("ok" if ok else "MISS"))


if __name__ == "__main__":
    main()
