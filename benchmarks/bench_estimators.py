"""Benchmarks B1 and B2 (BENCHMARKS.md): NeuralClassifier fit and predict_proba against a hand-written torch loop.

B1: fit time of NeuralClassifier / hand-written loop (same MLP 50->256->256->4, Adam lr 1e-3, batch 256,
    3 epochs, no validation split, shuffled, index slicing of in-memory tensors), plain skorch and sklearn's
    MLPClassifier measured in the same run.
B2: predict_proba time / ``torch.no_grad()`` forward in batches of the same size.

Data: make_classification(100_000, 50, n_informative=20, n_classes=4), float32. Prints one line per figure.
Usage: python benchmarks/bench_estimators.py [--repeats 5] [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from _common import interleaved, median_ratio, setup_threads
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from skopt_nn import NeuralClassifier

BATCH, EPOCHS, LR = 256, 3, 1e-3


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(50, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))


def hand_fit(X: np.ndarray, y: np.ndarray) -> nn.Module:
    """The anchor: what one writes by hand for in-memory tabular data."""
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    n = len(Xt)
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(n, generator=g)
        for start in range(0, n, BATCH):
            idx = perm[start : start + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model


def hand_predict_proba(model: nn.Module, X: np.ndarray) -> np.ndarray:
    model.eval()
    Xt = torch.from_numpy(X)
    with torch.no_grad():
        out = torch.cat([model(Xt[i : i + BATCH]) for i in range(0, len(Xt), BATCH)])
    return torch.softmax(out, dim=1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    setup_threads(2)
    X, y = make_classification(args.rows, 50, n_informative=20, n_classes=4, random_state=0)
    X = X.astype(np.float32)
    y = y.astype(np.int64)

    ours = NeuralClassifier(
        module__hidden_layer_sizes=(256, 256),
        optimizer="adam",
        lr=LR,
        batch_size=BATCH,
        max_epochs=EPOCHS,
        device="cpu",
        random_state=0,
    )
    plain = NeuralNetClassifier(
        mlp,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH,
        max_epochs=EPOCHS,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    sk = MLPClassifier(hidden_layer_sizes=(256, 256), batch_size=BATCH, max_iter=EPOCHS, random_state=0)

    def sk_fit() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(X, y)

    hand_fit(X[:2048], y[:2048])  # warm up allocators and kernels for everyone
    ours.fit(X[:2048], y[:2048])
    fit_times = interleaved(
        {
            "hand": lambda: hand_fit(X, y),
            "skopt_nn": lambda: ours.fit(X, y),
            "skorch": lambda: plain.fit(X, y),
            "sklearn": sk_fit,
        },
        args.repeats,
    )
    hand_med = statistics.median(fit_times["hand"])
    print(f"B1 hand-written loop fit: median {hand_med:.3f} s over {args.repeats} rounds (the anchor)")
    for name in ("skopt_nn", "skorch", "sklearn"):
        print(f"B1 fit ratio {name} / hand-written loop: {median_ratio(fit_times[name], fit_times['hand']):.3f}")

    model = hand_fit(X, y)
    pred_times = interleaved(
        {"hand": lambda: hand_predict_proba(model, X), "skopt_nn": lambda: ours.predict_proba(X)},
        max(args.repeats, 5) * 3,
    )
    print(f"B2 hand-written no_grad forward: median {statistics.median(pred_times['hand']):.4f} s (the anchor)")
    ratio = median_ratio(pred_times["skopt_nn"], pred_times["hand"])
    print(f"B2 predict_proba ratio skopt_nn / no_grad forward: {ratio:.3f}")


if __name__ == "__main__":
    main()
