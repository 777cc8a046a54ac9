"""Every schedule at every step of a short run, against values written out independently here."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from skopt_nn.schedules import (
    Constant,
    ConstantCooldown,
    Cosine,
    CosinePower,
    Linear,
    OneCycle,
)
from tests.schedules._helpers import make_optimizer, train_lrs

C45 = (1 + math.cos(math.pi / 4)) / 2  # 0.8535533905932737
C135 = (1 + math.cos(3 * math.pi / 4)) / 2  # 0.14644660940672627


def test_constant_is_one_at_every_step() -> None:
    assert Constant().multipliers(5, 1) == [1.0] * 5


def test_linear_every_step() -> None:
    np.testing.assert_allclose(Linear().multipliers(5, 1), [1.0, 0.8, 0.6, 0.4, 0.2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(Linear(eta_min=0.5).multipliers(5, 1), [1.0, 0.9, 0.8, 0.7, 0.6], rtol=0, atol=1e-15)


def test_cosine_every_step() -> None:
    np.testing.assert_allclose(Cosine().multipliers(4, 1), [1.0, C45, 0.5, C135], rtol=0, atol=1e-15)
    expected = [0.1 + 0.9 * v for v in (1.0, C45, 0.5, C135)]
    np.testing.assert_allclose(Cosine(eta_min=0.1).multipliers(4, 1), expected, rtol=0, atol=1e-15)


def test_cosine_power_every_step() -> None:
    # r = 10: (10**(c+1) - 10) / 90 at c = 1, 0.8536, 0.5, 0.1464 (values computed by hand)
    got = CosinePower(exponent_order=10.0).multipliers(4, 1)
    np.testing.assert_allclose(got, [1.0, 0.681958, 0.240253, 0.044559], rtol=0, atol=1e-6)
    # r = 2: (2**(c+1) - 2) / 2
    got = CosinePower(exponent_order=2.0, eta_min=0.2).multipliers(4, 1)
    shape = [(2 ** (c + 1) - 2) / 2 for c in (1.0, C45, 0.5, C135)]
    np.testing.assert_allclose(got, [0.2 + 0.8 * s for s in shape], rtol=0, atol=1e-15)


def test_cosine_power_of_order_one_is_cosine() -> None:
    np.testing.assert_allclose(CosinePower(exponent_order=1.0).multipliers(9, 1), Cosine().multipliers(9, 1))


def test_cosine_power_decays_faster_than_cosine_early() -> None:
    power = CosinePower(exponent_order=10.0).multipliers(100, 1)
    cosine = Cosine().multipliers(100, 1)
    assert all(p < c for p, c in zip(power[1:50], cosine[1:50]))


def test_constant_cooldown_every_step() -> None:
    # 10 steps, 30% cooldown: C = 3 steps starting at step 7
    linear = ConstantCooldown(cooldown_fraction=0.3).multipliers(10, 1)
    np.testing.assert_allclose(linear, [1.0] * 7 + [1.0, 2 / 3, 1 / 3], rtol=0, atol=1e-15)
    sqrt = ConstantCooldown(cooldown_fraction=0.3, shape="1-sqrt").multipliers(10, 1)
    np.testing.assert_allclose(sqrt, [1.0] * 7 + [1.0, 1 - math.sqrt(1 / 3), 1 - math.sqrt(2 / 3)], rtol=0, atol=1e-15)
    floor = ConstantCooldown(cooldown_fraction=0.3, eta_min=0.4).multipliers(10, 1)
    np.testing.assert_allclose(floor, [1.0] * 7 + [1.0, 0.8, 0.6], rtol=0, atol=1e-15)


def test_constant_cooldown_length_rounds_up() -> None:
    # ceil(0.25 * 10) = 3 cooldown steps; a tiny fraction still cools down for one step
    assert ConstantCooldown(cooldown_fraction=0.25).cooldown_length(10) == 3
    assert ConstantCooldown(cooldown_fraction=0.3).cooldown_length(10) == 3  # 0.3 * 10 = 3.0000000000000004
    assert ConstantCooldown(cooldown_fraction=0.01).cooldown_length(10) == 1


def test_full_linear_cooldown_is_linear_decay() -> None:
    np.testing.assert_allclose(ConstantCooldown(cooldown_fraction=1.0).multipliers(13, 1), Linear().multipliers(13, 1))


def test_onecycle_every_step_linear() -> None:
    # 10 steps, pct_start 0.3: up from 0.1 over steps 0..2, then linearly down to 0.1/100 at step 9
    got = OneCycle(pct_start=0.3, anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0).multipliers(10, 1)
    expected = [0.1, 0.55, 1.0] + [1.0 + (0.001 - 1.0) * (t - 2) / 7 for t in range(3, 10)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_schedules_hold_their_last_value_after_the_run() -> None:
    fn = Linear().build(total_steps=4, steps_per_epoch=2)
    assert fn(3) == fn(4) == fn(100) == 0.25
    with pytest.raises(ValueError, match="steps >= 0"):
        fn(-1)


@pytest.mark.parametrize("eta_min", [0.0, 0.05])
@pytest.mark.parametrize("total", [1, 7, 30])
def test_cosine_equals_torch_cosine_annealing(total: int, eta_min: float) -> None:
    lr = 0.3
    ours = [lr * m for m in Cosine(eta_min=eta_min).multipliers(total, 1)]
    opt = make_optimizer(lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min * lr)
    recursive = [g[0] for g in train_lrs(opt, sched, total)]
    np.testing.assert_allclose(ours, recursive, rtol=0, atol=1e-12)
    opt = make_optimizer(lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min * lr)
    closed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(total):
            sched.step(t)  # the deprecated epoch argument uses torch's closed form
            closed.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, closed, rtol=0, atol=1e-15)


@pytest.mark.parametrize("eta_min", [0.0, 0.25])
def test_linear_equals_torch_linear_lr(eta_min: float) -> None:
    total, lr = 11, 0.2
    opt = make_optimizer(lr)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=eta_min, total_iters=total)
    np.testing.assert_allclose(
        [lr * m for m in Linear(eta_min=eta_min).multipliers(total, 1)],
        [g[0] for g in train_lrs(opt, sched, total)],
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("epochs,steps_per_epoch", [(4, 1), (4, 5), (7, 3)])
def test_per_batch_matches_per_epoch_at_epoch_starts(epochs: int, steps_per_epoch: int) -> None:
    # a schedule stepped per batch passes through the per-epoch schedule's values at each epoch's first batch
    for schedule in (Cosine(eta_min=0.1), Linear(), CosinePower(exponent_order=3.0)):
        per_batch = schedule.multipliers(epochs * steps_per_epoch, steps_per_epoch)
        per_epoch = schedule.multipliers(epochs, 1)
        np.testing.assert_allclose(per_batch[::steps_per_epoch], per_epoch, rtol=0, atol=1e-15)
