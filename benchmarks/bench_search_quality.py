"""Benchmark B5 (BENCHMARKS.md): search quality at equal budget, CE vs Random vs TPE vs GP.

Each sampler tunes a NeuralClassifier (optimizer -> its hyperparameters -> schedule -> its parameters; the network
fixed) for ``--trials`` trials on one train/validation split of each bundled real dataset, over ``--seeds`` seeds;
the figure is the best validation score found (accuracy unless ``--scoring``), mean over seeds (and how often
CE >= the other, seed by seed).
No pruning, so every sampler gets the same number of full trials.

Usage: python benchmarks/bench_search_quality.py [--trials 30] [--seeds 5] [--first-seed 0] [--epochs 15]
       [--scoring accuracy]
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import optuna
from _common import setup_threads
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier, NeuralSearchCV
from skopt_nn.search import auto_space

optuna.logging.set_verbosity(optuna.logging.ERROR)

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}
SAMPLERS = ("cem", "random", "tpe", "gp")
SPACE = auto_space(
    optimizers=["adamw", "sgd", "lion", "diffgrad", "adamp", "dog"],
    schedules=["constant", "cosine", "sgdr", "onecycle"],
    network=False,
)


def best_score(
    X: np.ndarray, y: np.ndarray, sampler: str, seed: int, trials: int, epochs: int, scoring: str = "accuracy"
) -> float:
    net = NeuralClassifier(max_epochs=epochs, batch_size=64, module__hidden_layer_sizes=(64,), random_state=seed)
    cv = StratifiedShuffleSplit(n_splits=1, test_size=0.3, random_state=seed)
    search = NeuralSearchCV(
        net,
        SPACE,
        sampler=sampler,
        n_trials=trials,
        cv=cv,
        scoring=scoring,
        pruner=None,
        refit=False,
        random_state=seed,
    )
    search.fit(X, y)
    return float(search.best_score_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scoring", default="accuracy", help="a scikit-learn scorer, e.g. neg_log_loss")
    args = parser.parse_args()
    setup_threads(args.threads)
    seed_range = range(args.first_seed, args.first_seed + args.seeds)
    print(
        f"B5 best validation {args.scoring} after {args.trials} trials, mean over {args.seeds} seeds "
        f"(CE>=x: seeds where CE is at least as good)"
    )
    print(f"{'dataset':14s} " + " ".join(f"{s:>8s}" for s in SAMPLERS) + "  CE>=random CE>=tpe CE>=gp")
    totals = {s: [] for s in SAMPLERS}
    pairs: dict[str, list[float]] = {s: [] for s in SAMPLERS[1:]}  # CE - other, per (dataset, seed)
    for name, load in DATASETS.items():
        X, y = load(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        scores = {
            s: [best_score(X, y, s, seed, args.trials, args.epochs, args.scoring) for seed in seed_range]
            for s in SAMPLERS
        }
        wins = {s: sum(c >= o for c, o in zip(scores["cem"], scores[s], strict=True)) for s in SAMPLERS[1:]}
        for s in SAMPLERS[1:]:
            pairs[s] += [c - o for c, o in zip(scores["cem"], scores[s], strict=True)]
        for s in SAMPLERS:
            totals[s].append(statistics.mean(scores[s]))
        print(
            f"{name:14s} "
            + " ".join(f"{statistics.mean(scores[s]):8.4f}" for s in SAMPLERS)
            + "  "
            + "  ".join(f"{wins[s]:>6d}/{args.seeds}" for s in SAMPLERS[1:]),
            flush=True,
        )
    print(f"{'mean':14s} " + " ".join(f"{statistics.mean(totals[s]):8.4f}" for s in SAMPLERS))
    # is a difference of the means larger than the seed-to-seed noise? paired over every (dataset, seed)
    from scipy.stats import wilcoxon

    for s, diffs in pairs.items():
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        nonzero = [d for d in diffs if d != 0]
        p = float(wilcoxon(nonzero).pvalue) if len(nonzero) > 1 else float("nan")
        print(
            f"CE - {s:7s} paired over {len(diffs)} (dataset, seed): mean {statistics.mean(diffs):+.4f} "
            f"(standard error {se:.4f}), CE better/equal/worse {sum(d > 0 for d in diffs)}/"
            f"{sum(d == 0 for d in diffs)}/{sum(d < 0 for d in diffs)}, Wilcoxon p = {p:.2f}"
        )


if __name__ == "__main__":
    main()
