"""The arithmetic of the time-to-result protocol, as pure functions of plain numbers.

* :func:`cumulative_trace`: the validation scores of a contender's tuning runs laid out on one clock — trial ``k``'s
  epochs are shifted by the time of every trial before it (AlgoPerf counts the whole tuning effort).
* :func:`time_to_target`: the first time on that clock at which the validation score reached the target.
* :func:`target_score`: the per-dataset target, a fixed fraction of the way from a trivial score to the best
  validation score any contender reached.
* :func:`performance_profile`: Dolan–Moré profiles over datasets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["cumulative_trace", "performance_profile", "profile_ratios", "target_score", "time_to_target"]


def cumulative_trace(
    trials: Sequence[tuple[Sequence[float], Sequence[float], float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Lay out one contender's trials on a single clock.

    ``trials``: in the order they ran, ``(epoch_times, epoch_scores, trial_time)`` where ``epoch_times`` are the
    times within the trial at which each score was measured (seconds since the trial started) and ``trial_time``
    is the trial's whole cost (a failed trial keeps the epochs it finished, and its whole time counts).
    Returns ``(times, scores)``: every measurement, with the time of all earlier trials added.

    >>> cumulative_trace([([1.0, 2.0], [0.5, 0.7], 2.5), ([], [], 1.0), ([0.5], [0.9], 0.5)])
    (array([1., 2., 4.]), array([0.5, 0.7, 0.9]))
    """
    times: list[float] = []
    scores: list[float] = []
    offset = 0.0
    for epoch_times, epoch_scores, trial_time in trials:
        if len(epoch_times) != len(epoch_scores):
            raise ValueError(
                f"Each trial needs one time per score; got {len(epoch_times)} times and {len(epoch_scores)} scores."
            )
        times.extend(offset + float(t) for t in epoch_times)
        scores.extend(float(s) for s in epoch_scores)
        offset += float(trial_time)
    return np.asarray(times, dtype=float), np.asarray(scores, dtype=float)


def time_to_target(times: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, target: float) -> float:
    """The first time at which ``scores`` reached ``target`` (score >= target); ``inf`` if it never did.

    ``times`` must be non-decreasing (a trace from :func:`cumulative_trace`); NaN scores never count.

    >>> time_to_target([1.0, 2.0, 4.0], [0.5, 0.7, 0.9], 0.7)
    2.0
    >>> time_to_target([1.0, 2.0], [0.5, 0.7], 0.8)
    inf
    """
    t = np.asarray(times, dtype=float)
    s = np.asarray(scores, dtype=float)
    if t.shape != s.shape:
        raise ValueError(f"times and scores must have the same length; got {t.size} and {s.size}.")
    if t.size > 1 and np.any(np.diff(t) < 0):
        raise ValueError("times must be non-decreasing (one clock over the trials in the order they ran).")
    hit = np.flatnonzero(np.nan_to_num(s, nan=-np.inf) >= target)
    return float(t[hit[0]]) if hit.size else math.inf


def target_score(best: float, reference: float, fraction: float) -> float:
    """``reference + fraction * (best - reference)``: the per-dataset target.

    ``best`` is the best validation score any contender reached on the dataset, ``reference`` the score of a
    trivial predictor (majority class / training mean) on the same validation split, ``fraction`` in (0, 1].

    >>> round(target_score(0.98, 0.10, 0.95), 4)
    0.936
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"The 'fraction' parameter of target_score must be in (0, 1]. Got {fraction!r} instead.")
    if best < reference:  # nobody beat the trivial predictor: the target is the trivial score itself
        return float(reference)
    return float(reference + fraction * (best - reference))


def profile_ratios(times: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Per method, its time divided by the best method's time on each problem (``inf`` if it never reached the
    target, or if no method did).

    ``times``: method -> one time per problem (same order for every method; ``inf`` = target not reached).

    >>> profile_ratios({"a": [1.0, 4.0], "b": [2.0, float("inf")]})
    {'a': array([1., 1.]), 'b': array([ 2., inf])}
    """
    names = list(times)
    if not names:
        return {}
    table = np.asarray([np.asarray(times[n], dtype=float) for n in names])
    if table.ndim != 2:
        raise ValueError("every method needs one time per problem")
    if np.any(np.isnan(table)) or np.any(table < 0):
        raise ValueError("times must be non-negative numbers (inf for a target never reached)")
    best = table.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(np.isfinite(table) & np.isfinite(best), table / np.where(best > 0, best, 1.0), np.inf)
    # a problem solved in zero time: the methods at zero have ratio 1, the others infinitely slower than the best
    zero = best == 0
    ratios[:, zero] = np.where(table[:, zero] == 0, 1.0, np.inf)
    return {n: ratios[i] for i, n in enumerate(names)}


def performance_profile(
    times: Mapping[str, Sequence[float]], taus: Sequence[float] | np.ndarray
) -> dict[str, np.ndarray]:
    """Dolan–Moré performance profiles: per method, ``rho(tau)`` = the fraction of problems on which its time is
    within a factor ``tau`` of the best method's time on that problem.

    >>> performance_profile({"a": [1.0, 4.0], "b": [2.0, float("inf")]}, [1.0, 2.0])
    {'a': array([1., 1.]), 'b': array([0. , 0.5])}
    """
    ratios = profile_ratios(times)
    tau = np.asarray(taus, dtype=float)
    return {n: (r[None, :] <= tau[:, None]).mean(axis=1) if r.size else np.zeros_like(tau) for n, r in ratios.items()}
