"""``skopt-nn bench``: the arguments and the command (the parser itself lives in :mod:`skopt_nn.cli`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from skopt_nn.bench._harness import BASELINES, DEFAULT_DATASETS, DEFAULT_OPTIMIZERS, check_inputs, run_bench
from skopt_nn.bench._report import comparison, count_true, markdown_table, write_report

__all__ = ["add_arguments", "run"]

QUICK: dict[str, Any] = {
    "datasets": "sklearn:wine,sklearn:diabetes",
    "optimizers": "adamw,sgd",
    "trials": 3,
    "epochs": 5,
}


class BenchUsageError(ValueError):
    """Bad command-line input: the command prints it as one line and exits with status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``bench``'s options to ``parser`` (a sub-parser of ``skopt-nn``)."""
    parser.add_argument(
        "--datasets",
        help=f"comma-separated bundled datasets or data files (default: {','.join(DEFAULT_DATASETS)})",
    )
    parser.add_argument(
        "--optimizers", help=f"comma-separated optimizers, each tuned alone (default: {','.join(DEFAULT_OPTIMIZERS)})"
    )
    parser.add_argument(
        "--baselines",
        help=f"comma-separated baselines among {','.join(BASELINES)}, or 'none' (default: all)",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=int, default=None, help="trials per optimizer (default 10)")
    budget.add_argument("--timeout", type=float, default=None, help="seconds per contender instead of --trials")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per network trial (default 20)")
    parser.add_argument("--sampler", default="cem", help="cem, tpe, random, cmaes, gp, qmc (default cem)")
    parser.add_argument("--schedules", help="comma-separated schedules searched (default: the tuning portfolio)")
    parser.add_argument("--tune-network", action="store_true", help="also search the hidden layers and dropout")
    parser.add_argument(
        "--baseline-budget",
        choices=("time", "trials"),
        default="time",
        help="tuned baselines get the median optimizer's wall-clock (time) or the same trial count (trials)",
    )
    parser.add_argument(
        "--target-fraction",
        type=float,
        default=0.95,
        help="target = trivial score + this fraction of the way to the best validation score (default 0.95)",
    )
    parser.add_argument("--match-tolerance", type=float, default=0.01, help="'matches HGB' tolerance (default 0.01)")
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--val-size", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="threads for every contender (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="skopt_nn_bench")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: " + " ".join(f"{k}={v}" for k, v in QUICK.items())
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _names(value: str | None, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if value.strip().lower() == "none":
        return []
    return [n.strip() for n in value.split(",") if n.strip()]


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the benchmark the arguments describe; print the tables; write the report. Raises
    :class:`BenchUsageError` for bad input before anything runs."""
    quick = bool(args.quick)
    datasets = _names(
        args.datasets if args.datasets is not None else (QUICK["datasets"] if quick else None), DEFAULT_DATASETS
    )
    optimizers = _names(
        args.optimizers if args.optimizers is not None else (QUICK["optimizers"] if quick else None), DEFAULT_OPTIMIZERS
    )
    baselines = _names(args.baselines, tuple(BASELINES))
    trials = args.trials
    if trials is None and args.timeout is None:
        trials = int(QUICK["trials"]) if quick else 10
    epochs = args.epochs if args.epochs is not None else (int(QUICK["epochs"]) if quick else 20)
    schedules = _names(args.schedules, ()) or None
    if args.trials is not None and args.trials < 1:
        raise BenchUsageError("--trials must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise BenchUsageError("--timeout must be positive")
    if epochs < 1:
        raise BenchUsageError("--epochs must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise BenchUsageError("--threads must be at least 1")
    try:
        check_inputs(
            datasets,
            optimizers,
            baselines,
            trials,
            args.timeout,
            epochs,
            args.sampler,
            args.target_fraction,
            args.test_size,
            args.val_size,
            args.baseline_budget,
            schedules,
        )
    except (ValueError, ImportError, FileNotFoundError) as exc:
        raise BenchUsageError(str(exc)) from None

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        result = run_bench(
            datasets,
            optimizers,
            trials=trials,
            timeout=args.timeout,
            epochs=epochs,
            sampler=args.sampler,
            seed=args.seed,
            baselines=baselines,
            baseline_budget=args.baseline_budget,
            schedules=schedules,
            tune_network=args.tune_network,
            target_fraction=args.target_fraction,
            test_size=args.test_size,
            val_size=args.val_size,
            threads=args.threads,
            log=log,
        )
    except ImportError as exc:  # a dataset's optional package, found missing when it is loaded
        raise BenchUsageError(str(exc)) from None
    command = "skopt-nn " + " ".join(shlex.quote(a) for a in argv) if argv is not None else None
    files = write_report(result, args.out, command=command, tolerance=args.match_tolerance)
    print("\ntest score (best configuration refitted on train + validation):")
    print(markdown_table(result.pivot("test_score").reset_index(), bold_max_rows=False))
    print("\ntime to reach the validation target (s):")
    times = result.pivot("time_to_target_s")
    times.insert(0, "target", [f"{result.targets[d]:.4f}" for d in times.index])
    print(markdown_table(times.reset_index(), digits=2))
    verdict = comparison(result, args.match_tolerance)
    parts = []
    if optimizers and any(b.startswith("mlp") for b in baselines):
        beats = count_true(verdict["beats_mlp"])
        parts.append(f"beats sklearn's MLP on {beats}/{len(verdict)} datasets")
    if optimizers and any(b.startswith("hgb") for b in baselines):
        matches = count_true(verdict["matches_hgb"])
        parts.append(f"matches gradient boosting (within {args.match_tolerance:g}) on {matches}/{len(verdict)}")
    if parts:
        print("\nthe tuned network " + " and ".join(parts))
    print(f"\nreport: {files['report.html']}\ntables: {files['results.md']}, {files['results.csv']}")
    return 0
