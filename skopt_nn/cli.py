"""The ``skopt-nn`` command: tune optimizers on a dataset, benchmark them, list what is available, open the dashboard.

    skopt-nn tune sklearn:digits --n-trials 40            # leaderboard, best model, study and report in --out
    skopt-nn tune data.csv --target price --optimizers adamw,lion,dog --timeout 600
    skopt-nn bench --datasets sklearn:digits,sklearn:diabetes --optimizers adamw,sgd,lion --trials 10
    skopt-nn worker --storage postgresql://user@host/db --study my-study   # join a shared NeuralSearchCV study
    skopt-nn datasets | optimizers | schedules
    skopt-nn dashboard --storage sqlite:///skopt_nn_runs/study.db

Bad input (a missing file, a missing target column, a single-valued target, an unknown name) is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["main"]


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------------------------ listings


def _cmd_datasets(args: argparse.Namespace) -> int:
    from skopt_nn import datasets

    print(f"{'name':24s} {'rows x cols':>12s}  {'task':15s} description")
    for spec in datasets.DATASETS.values():
        extra = f" (needs {spec.requires})" if spec.requires else ""
        print(f"{spec.name:24s} {spec.rows:>12s}  {spec.task:15s} {spec.description}{extra}")
    return 0


def _cmd_optimizers(args: argparse.Namespace) -> int:
    from skopt_nn import optim

    flags = ("needs_closure", "needs_create_graph", "lr_free", "supports_foreach", "stochastic")
    for name in optim.available():
        spec = optim.get(name)
        shown = ",".join(f for f in flags if getattr(spec, f)) or "-"
        print(f"{name:22s} {spec.family:15s} {shown:40s} {spec.paper}")
    return 0


def _cmd_schedules(args: argparse.Namespace) -> int:
    from skopt_nn import schedules

    for name in schedules.available():
        spec = schedules.get(name)
        print(f"{name:18s} {spec.summary}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise UsageError("the dashboard needs optuna-dashboard: pip install 'skopt-nn[dashboard]'") from None
    run_server(args.storage, host=args.host, port=args.port)
    return 0


# ------------------------------------------------------------------------------------------------------ tune


def _load(data: str, target: str | None) -> tuple[pd.DataFrame, pd.Series, str, str]:
    from skopt_nn._tabular import load_data

    try:
        return load_data(data, target)
    except (ValueError, ImportError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None


def _preprocessor(X: pd.DataFrame) -> Any:
    from skopt_nn._tabular import make_preprocessor

    return make_preprocessor(X)


def _progress(n_trials: int | None, quiet: bool) -> Any:
    """An Optuna callback drawing a progress bar with the best score so far."""
    from tqdm.auto import tqdm

    bar = tqdm(total=n_trials, desc="trials", unit="trial", disable=quiet, file=sys.stderr)

    def callback(study: Any, trial: Any) -> None:
        bar.update(1)
        try:
            bar.set_postfix(best=f"{study.best_value:.4f}", last=trial.state.name.lower())
        except ValueError:  # no completed trial yet
            bar.set_postfix(last=trial.state.name.lower())

    callback.close = bar.close  # type: ignore[attr-defined]
    return callback


def _cmd_tune(args: argparse.Namespace) -> int:
    import joblib
    import optuna
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from skopt_nn import NeuralClassifier, NeuralRegressor, NeuralSearchCV, optim
    from skopt_nn.search import DEFAULT_OPTIMIZERS, auto_space

    X, y, task, label = _load(args.data, args.target)
    if args.task != "auto":
        task = args.task
    if task == "classification" and y.value_counts().min() < 2:
        raise UsageError(f"the target of {args.data} has a class with a single row; it cannot be split")
    names = [n.strip() for n in args.optimizers.split(",")] if args.optimizers else list(DEFAULT_OPTIMIZERS)
    for name in names:
        try:
            optim.get(name)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=stratify, random_state=args.seed
    )
    Net = NeuralClassifier if task == "classification" else NeuralRegressor
    # a regressor learns a standardised target (NeuralRegressor's scale_target) and predicts in y's units; the
    # net stays the Pipeline's last step, so NeuralSearchCV reaches it and prunes regression trials too
    net = Net(max_epochs=args.epochs, random_state=args.seed)
    if task == "regression":
        y_train, y_test = y_train.astype(float), y_test.astype(float)
    estimator = Pipeline([("prep", _preprocessor(X)), ("net", net)])
    space = auto_space(net, optimizers=names)

    def space_fn(trial: Any) -> dict[str, Any]:
        return {f"net__{k}": v for k, v in space.suggest(trial).items()}

    storage = f"sqlite:///{out / 'study.db'}"
    progress = _progress(args.n_trials, args.quiet)
    search = NeuralSearchCV(
        estimator,
        space_fn,
        sampler=args.sampler,
        n_trials=args.n_trials if args.n_trials else 10**9,
        timeout=args.timeout,
        cv=args.cv,
        storage=storage,
        study_name=f"tune-{label}",
        random_state=args.seed,
        callbacks=[progress],
        enqueue=[{"optimizer": name} for name in names],  # every optimizer is tried at least once
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        search.fit(X_train, y_train)
    progress.close()
    elapsed = time.perf_counter() - start

    board, models = _leaderboard(search, estimator, X_train, y_train, X_test, y_test)
    board.to_csv(out / "leaderboard.csv", index=False)
    joblib.dump(search.best_estimator_, out / "best_model.joblib")
    shown = board.drop(columns=["params"]).to_string(index=False, float_format=lambda v: f"{v:.4f}")
    metric = "accuracy" if task == "classification" else "R^2"
    print(f"\n{label}: {len(X_train)} rows tuned with {args.cv}-fold CV, {len(X_test)} held out; {task}, {metric}")
    print(f"{len(search.study_.trials)} trials in {elapsed:.0f}s with the {args.sampler} sampler\n")
    print(shown)
    print("trials: complete/pruned/failed; NaN: every trial of that optimizer was pruned or failed")
    report = _report(search, board, models, out, label, task, metric)
    print(f"\nbest model: {out / 'best_model.joblib'}\nstudy: {storage}\nreport: {report}")
    return 0


def _leaderboard(
    search: Any, estimator: Any, X_train: Any, y_train: Any, X_test: Any, y_test: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per optimizer (its best trial refitted on the tuning split, scored on the held-out one), and the
    refitted models by optimizer name."""
    from sklearn.base import clone

    results = pd.DataFrame(search.cv_results_)
    key = "param_net__optimizer"
    rows = []
    for name, group in results.groupby(key):
        complete = group[group["state"] == "COMPLETE"]
        counts = group["state"].value_counts().to_dict()
        trials = f"{counts.get('COMPLETE', 0)}/{counts.get('PRUNED', 0)}/{counts.get('FAIL', 0)}"
        if complete.empty:  # pruned or failed in every trial: listed, without a score or a model
            last = group.iloc[-1]["params"]
            schedule = last.get("net__schedule", "") if isinstance(last, dict) else ""
            rows.append(
                {
                    "optimizer": name,
                    "schedule": schedule,
                    "cv_score": np.nan,
                    "test_score": np.nan,
                    "fit_time_s": np.nan,
                    "trials": trials,
                    "params": {},
                    "_model": None,
                }
            )
            continue
        best = complete.loc[complete["mean_test_score"].idxmax()]
        model = clone(estimator).set_params(**best["params"])
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        rows.append(
            {
                "optimizer": name,
                "schedule": best["params"].get("net__schedule", ""),
                "cv_score": float(best["mean_test_score"]),
                "test_score": float(model.score(X_test, y_test)),
                "fit_time_s": fit_time,
                "trials": trials,
                "params": best["params"],
                "_model": model,
            }
        )
    board = pd.DataFrame(rows).sort_values("cv_score", ascending=False, na_position="last").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    models = {k: m for k, m in zip(board["optimizer"], board.pop("_model"), strict=True) if m is not None}
    return board, models


def _net_of(model: Any) -> Any:
    from skopt_nn.search import final_step

    return final_step(model)[0]


def _report(
    search: Any, board: pd.DataFrame, models: dict[str, Any], out: Path, label: str, task: str, metric: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    figures: list[tuple[str, str]] = []

    def save(name: str, title: str) -> None:
        plt.gcf().set_size_inches(8, 4.5)
        plt.tight_layout()
        plt.savefig(out / name, dpi=100)
        plt.close("all")
        figures.append((name, title))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.visualization.matplotlib.plot_optimization_history(search.study_)
        save("history.png", "Optimization history")

        results = pd.DataFrame(search.cv_results_)
        key = next(c for c in results.columns if c.endswith("net__optimizer") and c.startswith("param_"))
        complete = results[results["state"] == "COMPLETE"]
        order = [name for name in board["optimizer"] if name in models]
        data = [complete.loc[complete[key] == name, "mean_test_score"].to_numpy(float) for name in order]
        plt.figure()
        plt.boxplot(data, tick_labels=order)
        for i, values in enumerate(data, start=1):
            plt.scatter(np.full(len(values), i), values, s=12, alpha=0.6)
        plt.ylabel(f"CV {metric}")
        plt.xticks(rotation=30)
        plt.title("Score distribution per optimizer (completed trials)")
        save("scores_by_optimizer.png", "Score distribution per optimizer")

        plt.figure()
        for name, model in models.items():
            history = _net_of(model).history
            plt.plot(np.arange(1, len(history) + 1), history[:, "train_loss"], label=name)
        plt.xlabel("epoch")
        plt.ylabel("training loss")
        plt.yscale("log")
        plt.legend(fontsize=8)
        plt.title("Learning curves of each optimizer's best configuration")
        save("learning_curves.png", "Learning curves (best configuration per optimizer)")

        winner = _net_of(models[board["optimizer"].iloc[0]])
        lrs = [b["lr"] for epoch in winner.history for b in epoch["batches"] if "lr" in b]
        plt.figure()
        plt.plot(lrs)
        plt.xlabel("batch")
        plt.ylabel("learning rate")
        plt.title(f"Learning-rate schedule of the winner ({board['optimizer'].iloc[0]}, {board['schedule'].iloc[0]})")
        save("lr_schedule.png", "Learning-rate schedule of the winner")

        try:
            importances = optuna.importance.get_param_importances(search.study_)
        except (RuntimeError, ValueError):
            importances = {}
        if importances:
            plt.figure()
            names, values = list(importances)[::-1], list(importances.values())[::-1]
            plt.barh(names, values)
            plt.xlabel("importance (fANOVA)")
            plt.title("Parameter importances (fANOVA over the completed trials)")
            save("importances.png", "Parameter importances")

    table = board.drop(columns=["params"]).to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)
    best = html.escape(json.dumps(board["params"].iloc[0], default=str, indent=1))
    images = "\n".join(f'<h2>{html.escape(t)}</h2>\n<img src="{n}" alt="{html.escape(t)}">' for n, t in figures)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>skopt-nn tune {html.escape(label)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(label)}: optimizers tuned ({task}, {metric})</h1>
<p>{len(search.study_.trials)} trials; CV score = mean over folds on the tuning split; test score = the best
configuration of each optimizer refitted on the tuning split and scored on the held-out split. trials =
complete/pruned/failed.</p>
{table}
<h2>Best configuration</h2><pre>{best}</pre>
{images}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path


# ------------------------------------------------------------------------------------------------------ bench


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from skopt_nn.bench import add_arguments

    add_arguments(parser)


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    from skopt_nn.search.worker import add_arguments

    add_arguments(parser)


def _cmd_worker(args: argparse.Namespace) -> int:
    from skopt_nn.search import worker

    return worker.run(args)  # prints its own one-line error and returns 2 on bad input


def _cmd_bench(args: argparse.Namespace) -> int:
    from skopt_nn import bench

    try:
        return bench.run(args, argv=getattr(args, "argv", None))
    except bench.BenchUsageError as exc:
        raise UsageError(str(exc)) from None


# ------------------------------------------------------------------------------------------------------ entry


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skopt-nn", description="Tune neural networks' training algorithms.")
    sub = parser.add_subparsers(dest="command", required=True)
    tune = sub.add_parser("tune", help="tune optimizers on a dataset: leaderboard, best model, report")
    tune.add_argument("data", help="a CSV/Parquet file or a bundled dataset (skopt-nn datasets)")
    tune.add_argument("--target", help="target column of a data file (default: the last one)")
    tune.add_argument("--task", choices=("auto", "classification", "regression"), default="auto")
    tune.add_argument("--sampler", default="cem", help="cem, tpe, random, cmaes, gp, qmc")
    budget = tune.add_mutually_exclusive_group()
    budget.add_argument("--n-trials", type=int, default=None)
    budget.add_argument("--timeout", type=float, default=None, help="seconds")
    tune.add_argument("--optimizers", help="comma-separated names (default: a portfolio of 10)")
    tune.add_argument("--epochs", type=int, default=30)
    tune.add_argument("--cv", type=int, default=3)
    tune.add_argument("--test-size", type=float, default=0.2)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--out", default="skopt_nn_runs")
    tune.add_argument("--quiet", action="store_true")
    tune.set_defaults(func=_cmd_tune)
    bench = sub.add_parser(
        "bench",
        help="time-to-result benchmark: optimizers tuned on an equal budget vs sklearn MLP and gradient boosting",
        description="Tune each optimizer on an equal budget per dataset; time to reach a validation target, test "
        "scores, sklearn MLP and HistGradientBoosting baselines at equal wall-clock, performance profiles.",
    )
    _bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)
    worker = sub.add_parser(
        "worker",
        help="join a NeuralSearchCV study in a shared storage (PostgreSQL, journal file) and run its trials",
        description="Join a NeuralSearchCV study that carries its job (docs/distributed.md) and run its trials.",
    )
    _worker_arguments(worker)
    worker.set_defaults(func=_cmd_worker)
    sub.add_parser("datasets", help="list the bundled datasets").set_defaults(func=_cmd_datasets)
    sub.add_parser("optimizers", help="list the optimizers").set_defaults(func=_cmd_optimizers)
    sub.add_parser("schedules", help="list the schedules").set_defaults(func=_cmd_schedules)
    dash = sub.add_parser("dashboard", help="open optuna-dashboard on a storage")
    dash.add_argument("--storage", required=True)
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8080)
    dash.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv  # the command as typed, for the reports
    if getattr(args, "command", None) == "tune":
        if args.n_trials is None and args.timeout is None:
            args.n_trials = 30
        if args.n_trials is not None and args.n_trials < 1:
            print("skopt-nn: error: --n-trials must be at least 1", file=sys.stderr)
            return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"skopt-nn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
