"""Grid-search the optimizer itself: eight optimizers from the papers, each with an lr grid around its own default.

GridSearchCV treats ``optimizer`` as one more hyperparameter (a name resolved through ``skopt_nn.optim``), and a list
of grids lets each optimizer have the lr range that suits it (Lion's natural lr is ~10x below Adam's, AdaHessian's
~100x above, DoG has none). Dataset: scikit-learn's bundled digits (1,797 images of 8x8 pixels, 10 classes).

Run with ``python examples/gridsearch_optimizers.py``; ``SKOPT_NN_FAST=1`` for a seconds-long smoke run.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import NeuralClassifier

FAST = os.environ.get("SKOPT_NN_FAST") == "1"

# each optimizer's default lr (from its paper or its torch/reference default); the grid is x1/3, x1, x3 around it
DEFAULT_LR = {
    "adam": 1e-3,
    "diffgrad": 1e-3,
    "adamp": 1e-3,
    "lion": 1e-4,
    "lamb": 1e-3,
    "shampoo": 1e-3,
    "adahessian": 0.15,
}


def param_grid() -> list[dict[str, list]]:
    factors = [1.0] if FAST else [1 / 3, 1.0, 3.0]
    grid: list[dict[str, list]] = [
        {"net__optimizer": [name], "net__lr": [lr * f for f in factors]} for name, lr in DEFAULT_LR.items()
    ]
    # DoG is learning-rate free: its distance-over-gradients step size needs no lr (optimizer__lr is a multiplier)
    grid.append({"net__optimizer": ["dog"], "net__optimizer__lr": [1.0]})
    return grid


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "net",
                NeuralClassifier(
                    max_epochs=2 if FAST else 30,
                    batch_size=64,
                    module__hidden_layer_sizes=(128, 64),
                    random_state=0,
                ),
            ),
        ]
    )
    search = GridSearchCV(pipe, param_grid(), cv=3, n_jobs=int(os.environ.get("SKOPT_NN_JOBS", "2")))
    search.fit(X_train, y_train)

    results = search.cv_results_
    print(f"digits: {len(X_train)} training rows, 3-fold CV, {len(results['params'])} candidates\n")
    print(f"{'rank':>4s}  {'optimizer':12s} {'lr':>9s} {'cv accuracy':>16s} {'fit time':>9s}")
    best_per_optimizer: dict[str, int] = {}
    for i, params in enumerate(results["params"]):
        name = params["net__optimizer"]
        if (
            name not in best_per_optimizer
            or results["mean_test_score"][i] > results["mean_test_score"][best_per_optimizer[name]]
        ):
            best_per_optimizer[name] = i
    order = sorted(best_per_optimizer.values(), key=lambda i: -results["mean_test_score"][i])
    for rank, i in enumerate(order, start=1):
        params = results["params"][i]
        lr = params.get("net__lr")
        shown_lr = f"{lr:9.2e}" if lr is not None else f"{'(free)':>9s}"
        score, std = results["mean_test_score"][i], results["std_test_score"][i]
        print(
            f"{rank:4d}  {params['net__optimizer']:12s} {shown_lr} {score:9.4f} ± {std:.4f} "
            f"{results['mean_fit_time'][i]:8.2f}s"
        )
    test_score = search.score(X_test, y_test)
    print(f"\nbest: {search.best_params_} -> held-out test accuracy {test_score:.4f}")
    assert np.isfinite(search.best_score_)


if __name__ == "__main__":
    main()
