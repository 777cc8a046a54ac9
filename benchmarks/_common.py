"""Shared helpers of the benchmark scripts: ratios measured side by side in one run, medians over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def setup_threads(n: int = 2) -> None:
    """Every contender runs on the same number of threads (BENCHMARKS.md)."""
    torch.set_num_threads(n)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run every contender once per round, ``repeats`` rounds, so machine noise hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median of the per-round ratios (each round's pair ran back to back)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))
