"""Learning-rate schedules at equal epochs, and schedule refinement in two passes.

Defazio et al. ("When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement", 2023) refine the
schedule of a second run from the per-step gradient norms of a first run. This example trains the same network on
the digits dataset with the `linear`, `cosine` and `sgdr` schedules, then refines the linear run's gradient norms
into a `refined` schedule for a second fit, and prints mean test accuracy and final training loss over seeds.

Run: python examples/schedule_refinement.py  (SKOPT_NN_FAST=1 for a seconds-long smoke run)
"""

from __future__ import annotations

import os
import statistics

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier, schedules
from skopt_nn.estimators import GradientNormLogger

FAST = os.environ.get("SKOPT_NN_FAST") == "1"
EPOCHS = 3 if FAST else 30
SEEDS = [0] if FAST else [0, 1, 2]


def make(schedule, seed, callbacks=None):
    return NeuralClassifier(
        optimizer="sgd",
        lr=0.05,
        optimizer__momentum=0.9,
        max_epochs=EPOCHS,
        batch_size=64,
        schedule=schedule,
        callbacks=callbacks,
        random_state=seed,
    )


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    results: dict[str, list[tuple[float, float]]] = {}
    for seed in SEEDS:
        # pass 1: a linear-decay run that logs its gradient norms (l2: an SGD-type optimizer)
        first = make("linear", seed, callbacks=[GradientNormLogger(norm_type=2.0)]).fit(X_train, y_train)
        runs = {"linear": first}
        for name, schedule in (("cosine", "cosine"), ("sgdr", schedules.SGDR(T_0=5, T_mult=2))):
            runs[name] = make(schedule, seed).fit(X_train, y_train)
        # pass 2: the refined schedule from pass 1's gradient norms
        refined = schedules.refined_from(first.history_, key="grad_norm", method="sgd")
        runs["refined"] = make(refined, seed).fit(X_train, y_train)
        for name, est in runs.items():
            results.setdefault(name, []).append((est.score(X_test, y_test), est.history_[-1, "train_loss"]))

    print(f"digits, SGD(lr=0.05, momentum=0.9), {EPOCHS} epochs, batch 64, seeds {SEEDS}")
    print(f"{'schedule':10s} {'test accuracy':>14s} {'final train loss':>17s}")
    for name, rows in results.items():
        acc = statistics.mean(r[0] for r in rows)
        loss = statistics.mean(r[1] for r in rows)
        print(f"{name:10s} {acc:14.4f} {loss:17.5f}")


if __name__ == "__main__":
    main()
