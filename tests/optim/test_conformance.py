"""Every registry entry against the shared optimizer conformance suite."""

from __future__ import annotations

import pytest
import torch

import skopt_nn.optim as optim
from skopt_nn.testing import OPTIMIZER_CHECKS


@pytest.mark.parametrize("check", OPTIMIZER_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", optim.available())
def test_conformance(name: str, check) -> None:
    check(optim.get(name))


def test_every_exported_optimizer_class_is_registered() -> None:
    registered = {spec.optimizer_class for spec in optim.OPTIMIZERS.values()}
    bases = {optim.OptimizerWrapper}  # exported for users to subclass, not an optimizer by itself
    exported = [
        obj
        for obj in (getattr(optim, n) for n in optim.__all__)
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer) and obj not in bases
    ]
    missing = [cls.__name__ for cls in exported if cls not in registered]
    assert not missing, f"exported but not registered: {missing}"
    assert len(exported) >= 12, [cls.__name__ for cls in exported]
