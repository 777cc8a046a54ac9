"""``skopt-nn bench``: the protocol's arithmetic on hand-made numbers, an end-to-end run (every contender in the
table, plots that show something, time-to-target consistent with the recorded trials), seed reproducibility, and
bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skopt_nn.bench import (
    comparison,
    cumulative_trace,
    performance_profile,
    profile_ratios,
    run_bench,
    target_score,
    time_to_target,
    write_report,
)
from skopt_nn.cli import main

INF = math.inf

# ------------------------------------------------------------------------------------------------- pure functions


def test_cumulative_trace_puts_every_trial_on_one_clock_and_counts_failed_trials() -> None:
    # trial 0: epochs at 1 s and 2 s, 2.5 s in all; trial 1 failed after 1 s; trial 2: one epoch at 0.5 s
    times, scores = cumulative_trace([([1.0, 2.0], [0.5, 0.7], 2.5), ([], [], 1.0), ([0.5], [0.9], 0.5)])
    np.testing.assert_allclose(times, [1.0, 2.0, 4.0])  # 2.5 + 1.0 + 0.5
    np.testing.assert_allclose(scores, [0.5, 0.7, 0.9])
    with pytest.raises(ValueError, match="one time per score"):
        cumulative_trace([([1.0], [0.5, 0.6], 1.0)])


def test_time_to_target_is_the_first_time_the_score_reaches_it() -> None:
    times, scores = [1.0, 2.0, 4.0], [0.5, 0.7, 0.9]
    assert time_to_target(times, scores, 0.7) == 2.0  # equal to the target counts
    assert time_to_target(times, scores, 0.71) == 4.0  # the failed trial's second is in the 4.0
    assert time_to_target(times, scores, 0.4) == 1.0
    assert time_to_target(times, scores, 0.95) == INF
    assert time_to_target([], [], 0.0) == INF
    # a later drop does not undo a hit; NaN (a diverged epoch) never counts
    assert time_to_target([1.0, 2.0, 3.0], [float("nan"), 0.8, 0.1], 0.8) == 2.0
    assert time_to_target([1.0, 2.0], [float("nan"), float("nan")], -1e9) == INF
    with pytest.raises(ValueError, match="non-decreasing"):
        time_to_target([2.0, 1.0], [0.1, 0.2], 0.1)
    with pytest.raises(ValueError, match="same length"):
        time_to_target([1.0], [0.1, 0.2], 0.1)


def test_target_score_is_a_fraction_of_the_way_from_trivial_to_best() -> None:
    assert target_score(0.98, 0.10, 0.95) == pytest.approx(0.936)  # 0.10 + 0.95 * 0.88
    assert target_score(0.50, -0.02, 0.9) == pytest.approx(0.448)  # R^2: -0.02 + 0.9 * 0.52
    assert target_score(0.8, 0.8, 0.95) == pytest.approx(0.8)
    assert target_score(0.3, 0.5, 0.95) == 0.5  # nobody beat the trivial predictor
    assert target_score(0.9, 0.1, 1.0) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="'fraction'"):
        target_score(0.9, 0.1, 0.0)


def test_performance_profile_on_hand_computed_ratios() -> None:
    # best time per problem: 1, 2, 3; the last problem nobody solved
    times = {"a": [1.0, 4.0, INF, INF], "b": [2.0, 2.0, INF, INF], "c": [INF, 8.0, 3.0, INF]}
    ratios = profile_ratios(times)
    np.testing.assert_array_equal(ratios["a"], [1.0, 2.0, INF, INF])
    np.testing.assert_array_equal(ratios["b"], [2.0, 1.0, INF, INF])
    np.testing.assert_array_equal(ratios["c"], [INF, 4.0, 1.0, INF])
    rho = performance_profile(times, [1.0, 1.99, 2.0, 4.0, 1e6])
    np.testing.assert_allclose(rho["a"], [0.25, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(rho["b"], [0.25, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(rho["c"], [0.25, 0.25, 0.25, 0.5, 0.5])


def test_performance_profile_edge_cases() -> None:
    # a problem solved in no time: the methods at zero have ratio 1, the others are infinitely slower
    ratios = profile_ratios({"a": [0.0, 1.0], "b": [0.5, 3.0]})
    np.testing.assert_array_equal(ratios["a"], [1.0, 1.0])
    np.testing.assert_array_equal(ratios["b"], [INF, 3.0])
    assert profile_ratios({}) == {}
    with pytest.raises(ValueError, match="non-negative"):
        profile_ratios({"a": [-1.0]})


# ------------------------------------------------------------------------------------------------- end to end

FAST = {
    "trials": 2,
    "epochs": 2,
    "sampler": "random",
    "schedules": ["constant", "cosine"],
}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "bench",
        "--datasets",
        "sklearn:wine,sklearn:diabetes",
        "--optimizers",
        "adamw,sgd",
        "--trials",
        "2",
        "--epochs",
        "2",
        "--schedules",
        "constant,cosine",
        "--out",
        str(out),
        "--quiet",
    ]
    return out, main(argv)


def test_bench_table_has_every_contender_on_every_dataset(cli_run, capsys) -> None:
    out, code = cli_run
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    expected = {"adamw", "sgd", "mlp", "mlp-tuned", "hgb", "hgb-tuned"}
    for dataset in ("sklearn:wine", "sklearn:diabetes"):
        rows = results[results["dataset"] == dataset]
        assert set(rows["contender"]) == expected, dataset
    assert set(results.loc[results["dataset"] == "sklearn:diabetes", "metric"]) == {"r2"}
    assert results.loc[results["contender"].isin(["adamw", "sgd"]), "trials"].eq(2).all()
    assert results.loc[results["contender"].isin(["mlp", "hgb"]), "trials"].eq(1).all()
    wine = results[results["dataset"] == "sklearn:wine"]
    assert wine["test_score"].between(0.3, 1.0).all()  # accuracy of something that learned
    md = (out / "results.md").read_text()
    for name in ("adamw", "sgd", "mlp-tuned", "hgb-tuned", "net − HGB", "beats MLP"):
        assert name in md, name
    page = (out / "report.html").read_text()
    assert page.count("<img") == 4 and page.count("<table") == 3
    assert "skopt-nn bench --datasets sklearn:wine,sklearn:diabetes" in md  # the command as typed


def test_time_to_target_agrees_with_the_recorded_trials(cli_run) -> None:
    out, _ = cli_run
    results = pd.read_csv(out / "results.csv")
    trials = pd.read_csv(out / "trials.csv")
    checked_finite = checked_inf = 0
    for _, row in results.iterrows():
        runs = trials[(trials["dataset"] == row["dataset"]) & (trials["contender"] == row["contender"])]
        runs = runs.sort_values("trial")
        recorded = [
            (json.loads(r["epoch_times_s"]), json.loads(r["epoch_scores"]), r["trial_time_s"])
            for _, r in runs.iterrows()
        ]
        # the clock by hand: each trial's epochs shifted by the time of all earlier trials
        offset, expected = 0.0, INF
        for epoch_times, epoch_scores, trial_time in recorded:
            for t, s in zip(epoch_times, epoch_scores):
                if s >= row["target"] - 1e-9 and expected == INF:
                    expected = offset + t
            offset += trial_time
        if math.isinf(expected):
            assert math.isinf(row["time_to_target_s"]), row["contender"]
            assert not row["max_val"] >= row["target"]
            checked_inf += 1
        else:
            assert row["time_to_target_s"] == pytest.approx(expected, rel=1e-9), row["contender"]
            assert row["max_val"] >= row["target"]
            checked_finite += 1
    assert checked_finite >= 2  # the best contender of each dataset reaches its own target
    # the target sits between the trivial score and the best validation score of the dataset
    for _, rows in results.groupby("dataset"):
        assert rows["target"].nunique() == 1
        assert rows["target"].iloc[0] <= rows["max_val"].max() + 1e-12


def _is_real_picture(path) -> bool:
    import matplotlib.image

    image = (matplotlib.image.imread(path)[..., :3] * 255).astype(np.uint32)
    colours = np.unique(image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2])
    return path.stat().st_size > 15_000 and len(colours) > 20


def test_plots_exist_and_show_something(cli_run) -> None:
    out, _ = cli_run
    for name in ("performance_profile.png", "time_to_target.png", "test_scores.png", "curves.png"):
        assert _is_real_picture(out / name), name


def test_a_blank_picture_fails_the_plot_check(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 5))
    fig.savefig(tmp_path / "blank.png")
    plt.close(fig)
    assert not _is_real_picture(tmp_path / "blank.png")


def _signature(result) -> list[tuple]:
    rows = result.results.sort_values(["dataset", "contender"])
    return [
        (
            r.dataset,
            r.contender,
            r.params,
            r.trials,
            round(r.best_val, 10),
            round(r.test_score, 10),
            round(r.target, 10),
        )
        for r in rows.itertuples()
    ]


def test_same_seed_same_configurations_and_scores() -> None:
    kwargs = dict(FAST, baseline_budget="trials", baselines=["mlp", "hgb-tuned"])
    first = run_bench(["sklearn:wine", "sklearn:diabetes"], ["adamw", "sgd"], seed=3, **kwargs)
    second = run_bench(["sklearn:wine", "sklearn:diabetes"], ["adamw", "sgd"], seed=3, **kwargs)
    assert _signature(first) == _signature(second)
    pd.testing.assert_series_equal(first.trials["epoch_scores"], second.trials["epoch_scores"])
    other = run_bench(["sklearn:wine", "sklearn:diabetes"], ["adamw", "sgd"], seed=4, **kwargs)
    assert _signature(other) != _signature(first)  # the seed does move the splits, the samplers, the inits


def test_comparison_reads_the_table(tmp_path) -> None:
    result = run_bench(["sklearn:wine"], ["adamw"], baselines=["mlp", "hgb"], **FAST)
    verdict = comparison(result, tolerance=0.01).iloc[0]
    row = result.results.set_index("contender")
    assert verdict["net"] == "adamw" and verdict["mlp"] == "mlp" and verdict["hgb"] == "hgb"
    assert verdict["net_minus_hgb"] == pytest.approx(row.loc["adamw", "test_score"] - row.loc["hgb", "test_score"])
    assert verdict["beats_mlp"] == (row.loc["adamw", "test_score"] > row.loc["mlp", "test_score"])
    files = write_report(result, tmp_path)
    assert set(files) >= {"results.csv", "results.md", "report.html", "performance_profile.png"}


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--datasets", "sklearn:wines"], "sklearn:wine"),
        (["--datasets", "missing.csv"], "No such data file: missing.csv"),
        (["--optimizers", "adamw,lionn"], "'lion'"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--trials", "-3"], "--trials must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--baselines", "xgboost"], "baseline"),
        (["--sampler", "tpee"], "'tpe'"),
        (["--target-fraction", "1.5"], "target_fraction"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path, capsys) -> None:
    code = main(["bench", "--quick", "--out", str(tmp_path / "run"), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # rejected before anything ran


def test_bad_input_from_the_real_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skopt_nn.cli", "bench", "--optimizers", "adamw,nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "optimizer" in result.stderr


def test_a_trial_that_fails_keeps_its_finished_epochs_and_its_time() -> None:
    from skorch.callbacks import Callback

    from skopt_nn.bench._harness import _Contender, _network, _prepare, _run_trial

    class Explode(Callback):
        def on_epoch_end(self, net, **kwargs) -> None:
            if len(net.history) == 2:
                raise FloatingPointError("the loss diverged")

    data = _prepare("sklearn:wine", 0, 0.2, 0.2)

    def build(params, callbacks):
        return _network(data.task, params, 4, 0, [*callbacks, ("explode", Explode())])

    contender = _Contender("adamw", "optimizer", None, build, True)
    record = _run_trial(contender, data, {"optimizer": "adamw", "batch_size": 32}, 0)
    assert record.state == "FAIL" and "diverged" in record.error
    # the scoring callback ran before the exploding one: both epochs were measured, then the fit stopped
    assert len(record.epoch_scores) == 2 and all(0.0 <= s <= 1.0 for s in record.epoch_scores)
    assert record.epoch_times[0] < record.epoch_times[1] <= record.trial_time
    ok = _run_trial(
        _Contender("adamw", "optimizer", None, lambda p, c: _network(data.task, p, 4, 0, c), True),
        data,
        {"optimizer": "adamw"},
        1,
    )
    assert ok.state == "COMPLETE" and len(ok.epoch_scores) == 4 and ok.value == ok.epoch_scores[-1]
