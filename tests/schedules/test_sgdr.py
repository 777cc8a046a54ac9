"""SGDR: restart points, fractional epochs, peak decay, and how torch's and skorch's versions compare."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skorch.callbacks.lr_scheduler import WarmRestartLR

from skopt_nn.schedules import SGDR, sgdr_cycle, sgdr_restart_steps
from tests.schedules._helpers import make_optimizer, train_lrs


def half_cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def test_equal_cycles_restart_every_T_0_epochs() -> None:
    # T_0 = 2 epochs of 3 batches: cycles of 6 steps, restarts on steps 6 and 12
    got = SGDR(T_0=2, T_mult=1).multipliers(18, 3)
    cycle = [half_cosine(k / 6) for k in range(6)]
    np.testing.assert_allclose(got, cycle * 3, rtol=0, atol=1e-15)
    assert sgdr_restart_steps(18, steps_per_epoch=3, T_0=2, T_mult=1) == [6, 12]


def test_doubling_cycles_restart_at_T_0_times_1_3_7() -> None:
    # T_0 = 1 epoch of 2 batches, T_mult = 2: cycles of 2, 4, 8 steps, restarts on steps 2, 6, 14
    got = SGDR(T_0=1, T_mult=2).multipliers(16, 2)
    expected = [half_cosine(k / 2) for k in range(2)] + [half_cosine(k / 4) for k in range(4)]
    expected += [half_cosine(k / 8) for k in range(8)] + [half_cosine(k / 16) for k in range(2)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert sgdr_restart_steps(16, steps_per_epoch=2, T_0=1, T_mult=2) == [2, 6, 14]
    restarts = [t for t in range(1, 16) if got[t] > got[t - 1]]
    assert restarts == [2, 6, 14]


def test_fractional_epochs_advance_by_one_over_steps_per_epoch() -> None:
    # 4 batches per epoch: T_cur = 0, 0.25, 0.5, 0.75 epochs of a T_0 = 1 epoch cycle
    got = SGDR(T_0=1, T_mult=1).multipliers(4, 4)
    np.testing.assert_allclose(got, [1.0, half_cosine(0.25), 0.5, half_cosine(0.75)], rtol=0, atol=1e-15)
    assert sgdr_cycle(5, steps_per_epoch=4, T_0=1) == (1, 0.25)


def test_non_integer_T_mult_restarts_on_the_next_step() -> None:
    # T_0 = 2, T_mult = 1.5, one batch per epoch: cycles of 2, 3, 4.5 epochs start at 0, 2, 5, 9.5
    assert sgdr_restart_steps(15, steps_per_epoch=1, T_0=2, T_mult=1.5) == [2, 5, 10]
    got = SGDR(T_0=2, T_mult=1.5).multipliers(12, 1)
    assert got[9] == pytest.approx(half_cosine((9 - 5) / 4.5), abs=1e-15)
    assert got[10] == pytest.approx(half_cosine((10 - 9.5) / 6.75), abs=1e-15)


def test_restart_decay_shrinks_the_amplitude_above_the_floor() -> None:
    got = SGDR(T_0=1, T_mult=1, eta_min=0.1, restart_decay=0.5).multipliers(9, 3)
    peaks = got[0::3]
    np.testing.assert_allclose(peaks, [1.0, 0.1 + 0.9 * 0.5, 0.1 + 0.9 * 0.25], rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[4], 0.1 + 0.9 * 0.5 * half_cosine(1 / 3), rtol=0, atol=1e-15)
    assert min(got) > 0.1


def test_eta_min_is_a_fraction_of_the_peak() -> None:
    lr = 0.5
    opt = make_optimizer(lr)
    sched = SGDR(T_0=1, T_mult=1, eta_min=0.2).make_scheduler(opt, total_steps=4, steps_per_epoch=4)
    lrs = [g[0] for g in train_lrs(opt, sched, 4)]
    np.testing.assert_allclose(lrs, [lr * (0.2 + 0.8 * half_cosine(k / 4)) for k in range(4)], rtol=0, atol=1e-15)


@pytest.mark.parametrize("T_0,T_mult,steps_per_epoch", [(1, 1, 1), (3, 1, 4), (1, 2, 1), (2, 2, 3), (1, 3, 5)])
def test_matches_torch_warm_restarts_stepped_with_fractional_epochs(
    T_0: int, T_mult: int, steps_per_epoch: int
) -> None:
    total, lr, eta_min = 60, 0.4, 0.05
    ours = [lr * m for m in SGDR(T_0=T_0, T_mult=T_mult, eta_min=eta_min).multipliers(total, steps_per_epoch)]
    opt = make_optimizer(lr)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min * lr
    )
    theirs = []
    for t in range(total):
        torch_sched.step(t / steps_per_epoch)  # the documented way to step it per batch
        theirs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_skorch_warm_restart_lr_restarts_one_epoch_later_per_cycle() -> None:
    # skorch's WarmRestartLR (stepped per epoch) lands on min_lr at epoch T_i of each cycle and restarts on the
    # next one: its cycle i lasts T_i + 1 epochs where ours (and torch's) lasts T_i
    T_0, T_mult, epochs = 2, 2, 20
    ours = SGDR(T_0=T_0, T_mult=T_mult).multipliers(epochs, 1)
    opt = make_optimizer(1.0)
    skorch_sched = WarmRestartLR(opt, min_lr=0.0, max_lr=1.0, base_period=T_0, period_mult=T_mult)
    theirs = [g[0] for g in train_lrs(opt, skorch_sched, epochs)]

    assert [t for t in range(1, epochs) if ours[t] > ours[t - 1]] == [2, 6, 14]
    assert [t for t in range(1, epochs) if theirs[t] > theirs[t - 1]] == [3, 8, 17]
    for ours_start, skorch_start, period in ((0, 0, 2), (2, 3, 4), (6, 8, 8)):
        # the same values inside a cycle ...
        np.testing.assert_allclose(
            theirs[skorch_start : skorch_start + period], ours[ours_start : ours_start + period], atol=1e-12
        )
        # ... then skorch spends one extra epoch at the minimum
        assert theirs[skorch_start + period] == pytest.approx(0.0, abs=1e-12)
        assert ours[ours_start + period] == 1.0


def test_warmup_shifts_the_cycles() -> None:
    got = SGDR(T_0=1, T_mult=1, warmup_steps=2).multipliers(8, 3)
    np.testing.assert_allclose(got[:2], [1 / 3, 2 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[2:], SGDR(T_0=1, T_mult=1).multipliers(6, 3), rtol=0, atol=1e-15)


def test_cycle_index_is_exact_at_boundaries_for_long_runs() -> None:
    # floating-point logarithms must not misplace a boundary: check the first step of cycles 0..14
    for T_mult in (2, 3):
        for i in range(15):
            start = (T_mult**i - 1) // (T_mult - 1)
            assert sgdr_cycle(start, steps_per_epoch=1, T_0=1, T_mult=T_mult) == (i, 0.0)
            if start:
                assert sgdr_cycle(start - 1, steps_per_epoch=1, T_0=1, T_mult=T_mult)[0] == i - 1
