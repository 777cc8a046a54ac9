"""Callbacks the estimators add by default (skorch ``Callback`` subclasses)."""

from __future__ import annotations

from typing import Any

import torch
from skorch.callbacks import Callback

from skopt_nn._validation import invalid_param_message

__all__ = ["GradientNormLogger", "LRSchedule", "ValidAccuracy", "ValidR2"]


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


class LRSchedule(Callback):
    """Step the estimator's learning-rate schedule once per training batch and record the lr each batch used.

    The estimator adds it by default. The torch scheduler is built at the first training batch of each ``fit``
    (or ``partial_fit``) call, when the number of batches per epoch is known: ``total_steps = max_epochs *
    batches per epoch``, whether or not early stopping ends the run sooner. With ``schedule=None`` the lr is
    constant and only recorded (history key ``"lr"``, per batch).
    """

    name = "lr_schedule"

    def initialize(self) -> LRSchedule:
        self.scheduler_: Any = None
        self._pending = False
        return self

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self.scheduler_ = None
        self._pending = net.schedule is not None

    def on_batch_begin(self, net: Any, batch: Any = None, training: bool | None = None, **kwargs: Any) -> None:
        if not training:
            return
        if self._pending:
            self._pending = False
            per_epoch = net._train_batches_per_epoch
            self.scheduler_ = net.schedule_object().make_scheduler(
                net.optimizer_, total_steps=net.max_epochs * per_epoch, steps_per_epoch=per_epoch
            )
        net.history.record_batch("lr", net.optimizer_.param_groups[0]["lr"])

    def on_batch_end(self, net: Any, batch: Any = None, training: bool | None = None, **kwargs: Any) -> None:
        if training and self.scheduler_ is not None:
            self.scheduler_.step()

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        self.scheduler_ = None


class GradientNormLogger(Callback):
    """Record the gradient norm of every training step (history key ``"grad_norm"``, per batch).

    The input of schedule refinement: ``skopt_nn.schedules.refined_from(net.history, key="grad_norm",
    method=...)`` builds the refined schedule for the next fit. Use ``norm_type=2.0`` (l2) after an SGD-type run
    and ``norm_type=1.0`` (l1) after an Adam-type run, as the refinement paper does.
    """

    name = "grad_norm"

    def __init__(self, norm_type: float = 2.0) -> None:
        self.norm_type = norm_type

    def initialize(self) -> GradientNormLogger:
        # checked when the net initialises, before any training (skorch keeps __init__ free of checks)
        norm_type = self.norm_type
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
            raise ValueError(
                invalid_param_message("norm_type", "GradientNormLogger", "a float in the range (0.0, inf]", norm_type)
            )
        return self

    def on_grad_computed(self, net: Any, named_parameters: Any, training: bool = False, **kwargs: Any) -> None:
        from skopt_nn.schedules import gradient_norm

        if training:
            net.history.record_batch("grad_norm", gradient_norm((p for _, p in named_parameters), self.norm_type))
