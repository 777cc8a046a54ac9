"""skopt_nn: neural networks as scikit-learn estimators whose training algorithm is searchable."""

from __future__ import annotations

from skopt_nn._version import __version__

__all__ = ["__version__"]
