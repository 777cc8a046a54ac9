"""Loading a dataset by name or path and the preprocessing every command applies to it (``tune`` and ``bench``).

``load_data`` accepts a bundled dataset name (``sklearn:digits``, see :mod:`skopt_nn.datasets`) or a CSV/Parquet
file; ``make_preprocessor`` standardises the numeric columns and one-hot encodes the others. Errors are the
loaders' own ``ValueError`` / ``ImportError`` / ``FileNotFoundError``, which the command line turns into one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["is_bundled", "load_data", "make_preprocessor"]


def is_bundled(data: str) -> bool:
    """Whether ``data`` names a bundled dataset (or looks like one: ``source:name`` that is not a file)."""
    from skopt_nn import datasets

    return data in datasets.DATASETS or (":" in data and not Path(data).exists())


def load_data(data: str, target: str | None = None) -> tuple[pd.DataFrame, pd.Series, str, str]:
    """``(X, y, task, label)`` of a bundled dataset or a data file; ``label`` is usable in file names."""
    from skopt_nn import datasets

    if is_bundled(data):
        X, y, task = datasets.load(data)
        if target is not None:
            raise ValueError(f"--target applies to data files; {data} has its own target")
        return X, y, task, data.replace(":", "-")
    X, y, task = datasets.load_table(data, target)
    return X, y, task, Path(data).stem


def make_preprocessor(X: pd.DataFrame) -> Any:
    """Median-impute and standardise numeric columns; impute and one-hot encode the others (rare levels pooled)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    if other:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5)
        parts.append(("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), other))
    return ColumnTransformer(parts)
