"""Quickstart: a NeuralClassifier next to scikit-learn's MLPClassifier on the same split of a real dataset.

Run with ``make run`` (or ``python examples/quickstart.py``). Set ``SKOPT_NN_FAST=1`` for a seconds-long smoke run.
"""

from __future__ import annotations

import os
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier

FAST = os.environ.get("SKOPT_NN_FAST") == "1"


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    epochs = 5 if FAST else 60

    contenders = {
        "skopt_nn NeuralClassifier (adam)": NeuralClassifier(
            optimizer="adam", lr=1e-3, max_epochs=epochs, batch_size=64, random_state=0
        ),
        "skopt_nn NeuralClassifier (sgd+nesterov)": NeuralClassifier(
            optimizer="sgd",
            lr=0.05,
            optimizer__momentum=0.9,
            optimizer__nesterov=True,
            max_epochs=epochs,
            batch_size=64,
            random_state=0,
        ),
        "sklearn MLPClassifier (adam)": MLPClassifier(
            hidden_layer_sizes=(128, 64), max_iter=epochs, batch_size=64, random_state=0
        ),
    }
    print(f"digits: {len(X_train)} training rows, {len(X_test)} test rows, {X.shape[1]} features, 10 classes\n")
    print(f"{'model':44s} {'test accuracy':>13s} {'fit time':>9s}")
    for name, model in contenders.items():
        pipe = make_pipeline(StandardScaler(), model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X_train, y_train)
        elapsed = time.perf_counter() - start
        print(f"{name:44s} {pipe.score(X_test, y_test):13.4f} {elapsed:8.2f}s")


if __name__ == "__main__":
    main()
