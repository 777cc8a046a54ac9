"""The default network: a tabular multi-layer perceptron shaped from the data at fit time."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from skopt_nn._validation import Interval, check_float, check_int, check_option, invalid_param_message

__all__ = ["ACTIVATIONS", "TabularMLP"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}

NORMS: tuple[str | None, ...] = (None, "layer", "batch")


class TabularMLP(nn.Module):
    """Fully connected network for tabular data: ``[Linear -> (norm) -> activation -> (dropout)] * k -> Linear``.

    ``NeuralClassifier`` and ``NeuralRegressor`` build it at fit time with ``n_features`` from ``X`` and
    ``n_outputs`` from ``y``; the other arguments are reachable as ``module__<name>``.

    Parameters
    ----------
    n_features:
        Width of the input.
    n_outputs:
        Width of the output (number of classes, or of regression targets).
    hidden_layer_sizes:
        Width of each hidden layer; ``()`` gives a linear model.
    activation:
        One of ``"relu"``, ``"gelu"``, ``"silu"``, ``"tanh"``, ``"logistic"``, ``"elu"``, ``"selu"``,
        ``"leaky_relu"``, ``"identity"``.
    dropout:
        Dropout probability after each hidden activation, in ``[0, 1)``.
    norm:
        ``None``, ``"layer"`` (LayerNorm) or ``"batch"`` (BatchNorm1d) after each hidden Linear.

    Examples
    --------
    >>> net = TabularMLP(n_features=4, n_outputs=3, hidden_layer_sizes=(8,), norm="layer")
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_int(n_features, "n_features", owner, Interval(1, None, "left"))
        check_int(n_outputs, "n_outputs", owner, Interval(1, None, "left"))
        if isinstance(hidden_layer_sizes, (int, str)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden_layer_sizes
        ):
            raise ValueError(
                invalid_param_message(
                    "hidden_layer_sizes", owner, "a sequence of ints in the range [1, inf)", hidden_layer_sizes
                )
            )
        check_option(activation, "activation", owner, tuple(ACTIVATIONS))
        check_float(dropout, "dropout", owner, Interval(0.0, 1.0, "left"))
        check_option(norm, "norm", owner, NORMS)

        layers: list[nn.Module] = []
        width = n_features
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size))
            if norm == "layer":
                layers.append(nn.LayerNorm(size))
            elif norm == "batch":
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)
