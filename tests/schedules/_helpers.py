"""Shared helpers of the schedule tests."""

from __future__ import annotations

import torch


def make_optimizer(lr: float = 0.1, *, groups: int = 1, momentum: float = 0.0) -> torch.optim.SGD:
    """SGD on tiny parameters; ``groups=2`` gives a second group with half the lr."""
    params = [torch.nn.Parameter(torch.ones(2)) for _ in range(groups)]
    param_groups = [{"params": [p], "lr": lr / (2**i)} for i, p in enumerate(params)]
    return torch.optim.SGD(param_groups, lr=lr, momentum=momentum)


def train_lrs(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list:
    """The lr of every group used by each of ``steps`` optimizer steps (read before the step, as training does)."""
    seen = []
    for _ in range(steps):
        seen.append([group["lr"] for group in optimizer.param_groups])
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = torch.ones_like(p)
        optimizer.step()
        scheduler.step()
    return seen
