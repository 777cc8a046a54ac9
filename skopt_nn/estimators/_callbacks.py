"""Callbacks the estimators add by default (skorch ``Callback`` subclasses)."""

from __future__ import annotations

from typing import Any

import torch
from skorch.callbacks import Callback

__all__ = ["ValidAccuracy", "ValidR2"]


class ValidAccuracy(Callback):
    """Record ``valid_acc``, the accuracy on the validation split, from the predictions the validation
    step already made (no second forward pass, labels stay encoded)."""

    name = "valid_acc"

    def initialize(self) -> ValidAccuracy:
        self.correct_: torch.Tensor | int = 0
        self.total_ = 0
        return self

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        self.correct_, self.total_ = 0, 0

    def on_batch_end(self, net: Any, batch: Any = None, training: bool | None = None, **kwargs: Any) -> None:
        y_pred = kwargs.get("y_pred")
        if training or y_pred is None or batch is None or len(batch) < 2:
            return
        y = batch[1]
        self.correct_ = self.correct_ + (y_pred.argmax(dim=1) == y).sum()
        self.total_ += len(y)

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        if self.total_:
            net.history.record(self.name, float(self.correct_) / self.total_)


class ValidR2(Callback):
    """Record ``valid_r2``, the coefficient of determination on the validation split (uniform average over
    outputs), accumulated from the validation step's predictions."""

    name = "valid_r2"

    def initialize(self) -> ValidR2:
        self._sums: list[torch.Tensor] | None = None
        return self

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        self._sums = None

    def on_batch_end(self, net: Any, batch: Any = None, training: bool | None = None, **kwargs: Any) -> None:
        y_pred = kwargs.get("y_pred")
        if training or y_pred is None or batch is None or len(batch) < 2:
            return
        y = batch[1].reshape(len(batch[1]), -1).to(torch.float64)
        p = y_pred.detach().reshape(len(y), -1).to(torch.float64)
        parts = [((y - p) ** 2).sum(0), y.sum(0), (y**2).sum(0), torch.tensor(float(len(y)))]
        self._sums = parts if self._sums is None else [a + b for a, b in zip(self._sums, parts)]

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        if self._sums is None:
            return
        sse, sy, syy, n = self._sums
        sst = syy - sy**2 / n
        r2 = torch.where(sst > 0, 1 - sse / sst.clamp_min(1e-300), torch.where(sse > 0, 0.0, 1.0))
        net.history.record(self.name, float(r2.mean()))
