"""Your own Optuna objective over the training algorithm, with the cross-entropy sampler and a SQLite study.

``suggest(trial, estimator)`` samples the estimator's conditional space (optimizer -> its hyperparameters ->
schedule -> its parameters -> network) and returns routing names for ``set_params``; the objective is yours (here:
validation accuracy on the wine dataset, with per-epoch pruning). The study lives in ``optuna_study.db``: run the
script again and it continues where it stopped. Plots of the study are written next to it (PNG with matplotlib,
interactive HTML with plotly).

Run with ``python examples/optuna_study.py``; ``SKOPT_NN_FAST=1`` for a seconds-long smoke run.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from skopt_nn import CrossEntropySampler, NeuralClassifier  # noqa: E402
from skopt_nn.search import auto_space  # noqa: E402

FAST = os.environ.get("SKOPT_NN_FAST") == "1"
OUT = Path(os.environ.get("SKOPT_NN_OUTPUT", "optuna_study_output"))


class ReportAccuracy(Callback):
    """Report the validation accuracy after every epoch; stop the trial if the pruner says so."""

    def __init__(self, trial: optuna.Trial, X_val, y_val) -> None:
        self.trial, self.X_val, self.y_val = trial, X_val, y_val

    def on_epoch_end(self, net, **kwargs) -> None:
        epoch = len(net.history) - 1
        self.trial.report(net.score(self.X_val, self.y_val), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned()


def main() -> None:
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    base = NeuralClassifier(max_epochs=3 if FAST else 40, batch_size=32, random_state=0)
    space = auto_space(base, optimizers=["adamw", "sgd", "lion", "diffgrad", "lamb", "dog"])

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)  # same as skopt_nn.search.suggest(trial, base, space)
        # a fresh copy per trial: parameters of the previous trial's optimizer must not carry over
        net = clone(base).set_params(**params, callbacks=[("report", ReportAccuracy(trial, X_val, y_val))])
        net.fit(X_train, y_train)
        return net.score(X_val, y_val)

    OUT.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{OUT / 'optuna_study.db'}"
    study = optuna.create_study(
        study_name="wine-optimizers",
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=CrossEntropySampler(population_size=8, seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=6 if FAST else 60, catch=(Exception,))

    states = [t.state.name for t in study.trials]
    print(
        f"study '{study.study_name}' in {storage}: {len(study.trials)} trials "
        f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed)"
    )
    print(f"best validation accuracy {study.best_value:.4f} with")
    best = space.suggest(optuna.trial.FixedTrial(study.best_params))  # back to routing names for set_params
    for key, value in best.items():
        print(f"  {key} = {value}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # matplotlib on a slice with one distinct value
        for name, plot in [
            ("history", optuna.visualization.matplotlib.plot_optimization_history),
            ("intermediate_values", optuna.visualization.matplotlib.plot_intermediate_values),
            ("optimizer_slice", lambda s: optuna.visualization.matplotlib.plot_slice(s, params=["optimizer"])),
        ]:
            plot(study)
            plt.gcf().set_size_inches(8, 5)
            plt.tight_layout()
            plt.savefig(OUT / f"{name}.png", dpi=100)
            plt.close("all")
        optuna.visualization.plot_optimization_history(study).write_html(OUT / "history.html")
    print(f"plots: {', '.join(sorted(p.name for p in OUT.glob('*.png')))} and history.html in {OUT}/")


if __name__ == "__main__":
    main()
