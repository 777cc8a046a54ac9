"""skopt_nn.datasets: the bundled real datasets and the CSV/Parquet loader, with their errors."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from skopt_nn import datasets


@pytest.mark.parametrize("name", datasets.available())
def test_every_dataset_loads_with_its_task(name: str) -> None:
    spec = datasets.DATASETS[name]
    if spec.requires and importlib.util.find_spec(spec.requires) is None:
        with pytest.raises(ImportError, match=spec.requires):
            datasets.load(name)
        return
    X, y, task = datasets.load(name)
    assert task == spec.task
    assert isinstance(X, pd.DataFrame) and len(X) == len(y) > 100
    assert spec.target not in X.columns
    assert y.nunique() >= 2


def test_unknown_dataset_lists_close_matches() -> None:
    with pytest.raises(ValueError, match="sklearn:digits"):
        datasets.load("sklearn:digit")


def test_table_loader(tmp_path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"], "label": ["u", "v", "u", "v"]})
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    X, y, task = datasets.load_table(path)
    assert list(X.columns) == ["x", "kind"] and task == "classification"
    X, y, task = datasets.load_table(path, target="x")
    assert task == "classification"  # 4 integer-valued values
    with pytest.raises(ValueError, match="'price' is not in"):
        datasets.load_table(path, target="price")
    with pytest.raises(FileNotFoundError, match="No such data file"):
        datasets.load_table(tmp_path / "missing.csv")
    pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="single value"):
        datasets.load_table(path)


def test_infer_task() -> None:
    assert datasets.infer_task(pd.Series([0.5, 1.7, 2.2] * 10)) == "regression"
    assert datasets.infer_task(pd.Series(range(100))) == "regression"
    assert datasets.infer_task(pd.Series([0, 1, 2] * 10)) == "classification"
    assert datasets.infer_task(pd.Series(["a", "b"])) == "classification"
