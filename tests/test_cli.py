"""The skopt-nn command: tune end to end (files produced and non-trivial), listings, and bad input."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from skopt_nn.cli import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skopt_nn.cli", *args], capture_output=True, text=True, timeout=300)


def test_tune_writes_leaderboard_model_study_and_report(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "tune",
            "sklearn:wine",
            "--n-trials",
            "4",
            "--epochs",
            "3",
            "--cv",
            "2",
            "--optimizers",
            "adamw,sgd",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "optimizer" in printed and "test_score" in printed
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["optimizer"]) <= {"adamw", "sgd"} and len(board) >= 1
    assert board["test_score"].between(0, 1).all()
    for name in ("history.png", "scores_by_optimizer.png", "learning_curves.png", "lr_schedule.png"):
        assert (out / name).stat().st_size > 5_000, name
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 4 and "<table" in page
    assert (out / "best_model.joblib").stat().st_size > 1_000
    assert (out / "study.db").exists()


def test_tune_a_regression_csv_with_categoricals(tmp_path, capsys) -> None:
    frame = pd.DataFrame({"x": range(200), "kind": ["a", "b"] * 100})
    frame["price"] = frame["x"] * 0.5 + (frame["kind"] == "a") * 10.0
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    code = main(
        [
            "tune",
            str(path),
            "--target",
            "price",
            "--n-trials",
            "2",
            "--epochs",
            "2",
            "--cv",
            "2",
            "--optimizers",
            "adamw",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ]
    )
    assert code == 0
    assert "regression" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "missing.csv"], "No such data file: missing.csv"),
        (["tune", "sklearn:wines"], "sklearn:wine"),
        (["tune", "sklearn:wine", "--optimizers", "adamw,lionn"], "'lion'"),
        (["tune", "sklearn:wine", "--n-trials", "0"], "--n-trials must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_table_inputs(tmp_path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 1, 1]}).to_csv(path, index=False)
    result = _run("tune", str(path))
    assert result.returncode == 2 and "single value" in result.stderr and "Traceback" not in result.stderr
    result = _run("tune", str(path), "--target", "price")
    assert result.returncode == 2 and "'price' is not in" in result.stderr


@pytest.mark.parametrize(
    ("command", "expected"), [("datasets", "sklearn:digits"), ("optimizers", "diffgrad"), ("schedules", "sgdr")]
)
def test_listings(command: str, expected: str, capsys) -> None:
    assert main([command]) == 0
    assert expected in capsys.readouterr().out


def test_worker_subcommand_on_an_unreachable_storage_is_one_line_and_exit_2(capsys) -> None:
    """`skopt-nn worker` is wired to skopt_nn.search.worker: a storage it cannot reach is refused before anything."""
    assert main(["worker", "--storage", "postgresql://nobody@127.0.0.1:1/none", "--study", "s"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skopt-nn worker: error: cannot connect to --storage")
    assert "\n" not in err and "Traceback" not in err


def test_leaderboard_lists_an_optimizer_whose_every_trial_was_pruned() -> None:
    """An optimizer pruned in every trial is listed (no score, no model) instead of silently missing."""
    from types import SimpleNamespace

    import numpy as np
    from sklearn.pipeline import Pipeline

    from skopt_nn import NeuralClassifier
    from skopt_nn.cli import _leaderboard

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)).astype(np.float32), np.arange(60) % 2
    estimator = Pipeline([("net", NeuralClassifier(max_epochs=1, random_state=0))])
    search = SimpleNamespace(
        cv_results_={
            "param_net__optimizer": ["adam", "lion", "lion"],
            "state": ["COMPLETE", "PRUNED", "PRUNED"],
            "mean_test_score": [0.9, np.nan, np.nan],
            "params": [
                {"net__optimizer": "adam", "net__schedule": "cosine"},
                {"net__optimizer": "lion", "net__schedule": "constant"},
                {"net__optimizer": "lion", "net__schedule": "sgdr"},
            ],
        }
    )
    board, models = _leaderboard(search, estimator, X, y, X, y)
    assert list(board["optimizer"]) == ["adam", "lion"]
    assert list(board["trials"]) == ["1/0/0", "0/2/0"]
    assert np.isnan(board.loc[1, "cv_score"]) and board.loc[1, "schedule"] == "sgdr"
    assert set(models) == {"adam"}
