"""Time-to-result benchmark (AlgoPerf-style): optimizers tuned on an equal budget, against sklearn baselines.

::

    from skopt_nn.bench import run_bench, write_report

    result = run_bench(["sklearn:wine", "sklearn:diabetes"], ["adamw", "sgd"], trials=5, epochs=10)
    write_report(result, "bench_out")      # tables, plots, report.html
    result.pivot("time_to_target_s")       # datasets x contenders

The command line is ``skopt-nn bench`` (docs/bench.md). The arithmetic — cumulative tuning clocks, time to
target, per-dataset targets, Dolan–Moré performance profiles — is in pure functions, exported here.
"""

from __future__ import annotations

from skopt_nn.bench._cli import BenchUsageError, add_arguments, run
from skopt_nn.bench._harness import (
    BASELINES,
    DEFAULT_DATASETS,
    DEFAULT_OPTIMIZERS,
    BenchResult,
    TrialRecord,
    check_inputs,
    run_bench,
)
from skopt_nn.bench._metrics import (
    cumulative_trace,
    performance_profile,
    profile_ratios,
    target_score,
    time_to_target,
)
from skopt_nn.bench._report import comparison, markdown_table, write_report

__all__ = [
    "BASELINES",
    "DEFAULT_DATASETS",
    "DEFAULT_OPTIMIZERS",
    "BenchResult",
    "BenchUsageError",
    "TrialRecord",
    "add_arguments",
    "check_inputs",
    "comparison",
    "cumulative_trace",
    "markdown_table",
    "performance_profile",
    "profile_ratios",
    "run",
    "run_bench",
    "target_score",
    "time_to_target",
    "write_report",
]
