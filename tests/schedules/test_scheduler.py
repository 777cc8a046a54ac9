"""The torch adapter: the lr the optimizer actually uses at each batch, state_dict, pickling, wrappers, 1cycle."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.schedules import SGDR, Cosine, Linear, MultiplierLR, OneCycle
from tests.schedules._helpers import make_optimizer, train_lrs


def test_lr_seen_by_sgd_at_every_batch() -> None:
    opt = make_optimizer(0.2, groups=2)
    schedule = Cosine(eta_min=0.1, warmup_steps=2)
    sched = schedule.make_scheduler(opt, total_steps=10, steps_per_epoch=5)
    assert isinstance(sched, MultiplierLR)
    seen = np.array(train_lrs(opt, sched, 10))
    multipliers = np.array(schedule.multipliers(10, 5))
    np.testing.assert_allclose(seen[:, 0], 0.2 * multipliers, rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[:, 1], 0.1 * multipliers, rtol=0, atol=1e-15)  # each group keeps its own peak


def test_the_update_uses_the_scheduled_lr() -> None:
    # plain SGD moves a parameter by lr * grad: the step sizes are the scheduled lrs
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = Linear().make_scheduler(opt, total_steps=4, steps_per_epoch=2)
    moves = []
    for _ in range(4):
        before = p.item()
        p.grad = torch.ones(1)
        opt.step()
        sched.step()
        moves.append(before - p.item())
    np.testing.assert_allclose(moves, [0.5, 0.375, 0.25, 0.125], rtol=1e-6)


def test_initial_lr_is_applied_on_construction() -> None:
    opt = make_optimizer(1.0)
    Linear(warmup_steps=3).make_scheduler(opt, total_steps=10, steps_per_epoch=1)
    assert opt.param_groups[0]["lr"] == 0.25


def test_stepping_past_the_run_holds_the_last_lr() -> None:
    opt = make_optimizer(1.0)
    sched = Linear().make_scheduler(opt, total_steps=4, steps_per_epoch=1)
    lrs = [g[0] for g in train_lrs(opt, sched, 7)]
    assert lrs == [1.0, 0.75, 0.5, 0.25, 0.25, 0.25, 0.25]


def _continue(opt: torch.optim.Optimizer, sched: Any, steps: int) -> list:
    return [g[0] for g in train_lrs(opt, sched, steps)]


@pytest.mark.parametrize("schedule", [SGDR(T_0=1, T_mult=2, eta_min=0.1), Cosine(warmup_fraction=0.2)], ids=repr)
def test_state_dict_round_trip_continues_identically(schedule: Any) -> None:
    total, spe = 30, 4
    opt = make_optimizer(0.3, momentum=0.9)
    sched = schedule.make_scheduler(opt, total_steps=total, steps_per_epoch=spe)
    train_lrs(opt, sched, 11)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    assert "fn" not in sched_state and "optimizer" not in sched_state
    expected = _continue(opt, sched, 19)

    opt2 = make_optimizer(0.3, momentum=0.9)
    sched2 = schedule.make_scheduler(opt2, total_steps=total, steps_per_epoch=spe)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert _continue(opt2, sched2, 19) == expected


def test_pickled_scheduler_continues_identically() -> None:
    opt = make_optimizer(0.3)
    sched = SGDR(T_0=1, T_mult=2, warmup_steps=2).make_scheduler(opt, total_steps=20, steps_per_epoch=3)
    train_lrs(opt, sched, 5)
    clone = pickle.loads(pickle.dumps(sched))
    assert clone.optimizer is not opt
    assert _continue(clone.optimizer, clone, 15) == _continue(opt, sched, 15)


def test_built_functions_pickle() -> None:
    fn = SGDR(T_0=2, warmup_steps=3).build(total_steps=50, steps_per_epoch=4)
    again = pickle.loads(pickle.dumps(fn))
    assert [again(t) for t in range(60)] == [fn(t) for t in range(60)]


def test_multiplier_lr_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        MultiplierLR(make_optimizer(), 0.5)  # type: ignore[arg-type]


class SharedGroups(torch.optim.Optimizer):
    """A wrapper whose param_groups are its base optimizer's (as Lookahead-style wrappers do)."""

    def __init__(self, base: torch.optim.Optimizer) -> None:
        self.base = base
        self.param_groups = base.param_groups
        self.defaults = base.defaults
        self.state = base.state
        self._optimizer_step_pre_hooks: dict = {}
        self._optimizer_step_post_hooks: dict = {}

    def step(self, closure: Any = None) -> Any:
        return self.base.step(closure)


def test_wrapper_with_shared_param_groups() -> None:
    base = make_optimizer(0.4)
    wrapper = SharedGroups(base)
    sched = Linear().make_scheduler(wrapper, total_steps=4, steps_per_epoch=1)
    seen_by_base = []
    for _ in range(4):
        seen_by_base.append(base.param_groups[0]["lr"])
        wrapper.step()
        sched.step()
    np.testing.assert_allclose(seen_by_base, [0.4, 0.3, 0.2, 0.1], rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------------ 1cycle

ONECYCLE_CASES = [
    {},
    {"pct_start": 0.25, "anneal_strategy": "linear", "div_factor": 10.0, "final_div_factor": 100.0},
    {"pct_start": 0.3, "three_phase": True},
    {"pct_start": 0.45, "three_phase": True, "anneal_strategy": "linear"},
]


@pytest.mark.parametrize("params", ONECYCLE_CASES, ids=str)
@pytest.mark.parametrize("total", [7, 40])
def test_onecycle_is_torch_onecycle_and_build_matches_it(params: dict, total: int) -> None:
    schedule = OneCycle(**params)
    opt = make_optimizer(0.5, momentum=0.9)
    sched = schedule.make_scheduler(opt, total_steps=total, steps_per_epoch=1)
    assert isinstance(sched, torch.optim.lr_scheduler.OneCycleLR)
    lrs = [g[0] for g in train_lrs(opt, sched, total)]
    np.testing.assert_allclose(lrs, [0.5 * m for m in schedule.multipliers(total, 1)], rtol=1e-12, atol=1e-15)


def test_onecycle_cycles_sgd_momentum_and_adam_beta1() -> None:
    total = 20
    opt = make_optimizer(0.5, momentum=0.9)
    sched = OneCycle(pct_start=0.5).make_scheduler(opt, total_steps=total, steps_per_epoch=1)
    momenta = []
    for _ in range(total):
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85, abs=1e-3)
    assert momenta[-1] > momenta[10]

    p = torch.nn.Parameter(torch.ones(1))
    adam = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.99))
    OneCycle().make_scheduler(adam, total_steps=total, steps_per_epoch=1)
    assert adam.param_groups[0]["betas"] == (0.95, 0.99)


def test_onecycle_auto_momentum_leaves_momentum_free_optimizers_alone() -> None:
    plain = make_optimizer(0.5, momentum=0.0)
    OneCycle().make_scheduler(plain, total_steps=10, steps_per_epoch=1)
    assert plain.param_groups[0]["momentum"] == 0.0
    adagrad = torch.optim.Adagrad([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    OneCycle().make_scheduler(adagrad, total_steps=10, steps_per_epoch=1)  # no momentum: not cycled, no error
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        OneCycle(cycle_momentum=True).make_scheduler(adagrad, total_steps=10, steps_per_epoch=1)


def test_onecycle_scheduler_pickles() -> None:
    opt = make_optimizer(0.5, momentum=0.9)
    sched = OneCycle().make_scheduler(opt, total_steps=12, steps_per_epoch=3)
    train_lrs(opt, sched, 4)
    clone = pickle.loads(pickle.dumps(sched))
    assert _continue(clone.optimizer, clone, 8) == _continue(opt, sched, 8)


# ------------------------------------------------------------------------------------------------ skorch


@pytest.mark.parametrize(
    "schedule", [SGDR(T_0=1, T_mult=2, eta_min=0.1), Cosine(warmup_steps=3), OneCycle(pct_start=0.4)], ids=repr
)
def test_make_scheduler_is_a_skorch_lr_scheduler_policy(schedule: Any) -> None:
    # skorch's LRScheduler callback, stepped per batch, records the lr each training batch used
    from skorch import NeuralNetRegressor
    from skorch.callbacks import LRScheduler

    torch.manual_seed(0)
    X = torch.randn(40, 3).numpy()
    y = torch.randn(40, 1).numpy()
    batch_size, max_epochs = 8, 4
    steps_per_epoch = 5
    total = max_epochs * steps_per_epoch
    net = NeuralNetRegressor(
        torch.nn.Linear(3, 1),
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        batch_size=batch_size,
        max_epochs=max_epochs,
        train_split=None,
        verbose=0,
        callbacks=[
            LRScheduler(
                policy=schedule.make_scheduler,
                step_every="batch",
                event_name="lr",
                total_steps=total,
                steps_per_epoch=steps_per_epoch,
            )
        ],
    )
    net.fit(X, y)
    recorded = [lr for epoch in net.history[:, "batches", :, "lr"] for lr in epoch]
    np.testing.assert_allclose(recorded, [0.05 * m for m in schedule.multipliers(total, steps_per_epoch)], rtol=1e-12)
