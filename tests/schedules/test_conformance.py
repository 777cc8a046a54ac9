"""Every registry entry against the same checks; quirks come from the spec's flags, never from its name."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from skopt_nn import schedules
from skopt_nn._space import Categorical, Float, Int
from skopt_nn.schedules import ErrorInput, ScheduleSpec
from tests.schedules._helpers import make_optimizer, train_lrs

NAMES = schedules.available()
ERROR_CASES = [
    pytest.param(name, error, id=f"{name}-{'-'.join(f'{k}={v!r}'[:30] for k, v in error.params.items()) or 'none'}")
    for name in NAMES
    for error in schedules.get(name).error_inputs
]


def sample(spec: ScheduleSpec, **extra: object) -> schedules.Schedule:
    return spec.create(**{**spec.sample_params, **extra})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("total,steps_per_epoch", [(1, 1), (2, 1), (7, 3), (40, 5), (301, 7)])
def test_multipliers_are_finite_and_within_the_peak(name: str, total: int, steps_per_epoch: int) -> None:
    values = sample(schedules.get(name)).multipliers(total, steps_per_epoch)
    assert len(values) == total
    assert all(math.isfinite(v) and -1e-12 <= v <= 1.0 + 1e-12 for v in values), values


@pytest.mark.parametrize("name", NAMES)
def test_lr_seen_per_batch_through_the_torch_scheduler(name: str) -> None:
    spec = schedules.get(name)
    schedule = sample(spec)
    total, spe = 24, 5
    opt = make_optimizer(0.3, groups=2, momentum=0.9)
    sched = schedule.make_scheduler(opt, total_steps=total, steps_per_epoch=spe)
    seen = np.array(train_lrs(opt, sched, total))
    expected = np.array(schedule.multipliers(total, spe))
    np.testing.assert_allclose(seen[:, 0], 0.3 * expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(seen[:, 1], 0.15 * expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_and_pickle_round_trips(name: str) -> None:
    schedule = sample(schedules.get(name))
    total, spe = 30, 4
    opt = make_optimizer(0.3, momentum=0.9)
    sched = schedule.make_scheduler(opt, total_steps=total, steps_per_epoch=spe)
    train_lrs(opt, sched, 9)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    pickled = pickle.loads(pickle.dumps(sched))
    expected = train_lrs(opt, sched, 21)

    opt2 = make_optimizer(0.3, momentum=0.9)
    sched2 = schedule.make_scheduler(opt2, total_steps=total, steps_per_epoch=spe)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert train_lrs(opt2, sched2, 21) == expected
    assert train_lrs(pickled.optimizer, pickled, 21) == expected


@pytest.mark.parametrize("name", NAMES)
def test_warmup_composition(name: str) -> None:
    spec = schedules.get(name)
    if not spec.supports_warmup:
        pytest.skip("the schedule has its own warm-up (supports_warmup=False)")
    total, spe, w = 30, 4, 6
    body = sample(spec).multipliers(total - w, spe)
    got = sample(spec, warmup_steps=w).multipliers(total, spe)
    np.testing.assert_allclose(got[:w], [body[0] * (t + 1) / (w + 1) for t in range(w)], rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[w:], body, rtol=0, atol=0)
    assert got == sample(spec, warmup_fraction=w / total).multipliers(total, spe)


@pytest.mark.parametrize("name,error", ERROR_CASES)
def test_error_inputs_raise_the_exact_message(name: str, error: ErrorInput) -> None:
    schedule = schedules.get(name).create(**error.params)  # constructing never raises
    with pytest.raises(error.error) as info:
        schedule.build(error.total_steps, error.steps_per_epoch)
    assert str(info.value) == error.message
    if "total_steps=" not in error.message:
        # errors that do not depend on the run's length are raised by check_params too
        with pytest.raises(error.error):
            schedule.check_params()


@pytest.mark.parametrize("name", NAMES)
def test_build_arguments_are_checked(name: str) -> None:
    schedule = sample(schedules.get(name))
    owner = f"{type(schedule).__name__}.build"
    with pytest.raises(ValueError) as info:
        schedule.build(0, 1)
    assert (
        str(info.value)
        == f"The 'total_steps' parameter of {owner} must be an int in the range [1, inf). Got 0 instead."
    )
    with pytest.raises(ValueError) as info:
        schedule.build(10, 2.5)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"The 'steps_per_epoch' parameter of {owner} must be an int in the range [1, inf). Got 2.5 instead."
    )


def _corners(dimension: object) -> list:
    if isinstance(dimension, (Float, Int)):
        return [dimension.low, dimension.high]
    if isinstance(dimension, Categorical):
        return list(dimension.choices)
    raise AssertionError(f"unexpected dimension {dimension!r}")


@pytest.mark.parametrize("name", NAMES)
def test_search_space_routes_to_real_parameters_and_builds(name: str) -> None:
    spec = schedules.get(name)
    space = spec.search_space()
    params = spec.factory._param_names()
    for key, dimension in space.items():
        prefix, _, param = key.partition("__")
        assert prefix == "schedule" and param in params, key
        for value in _corners(dimension):
            sample(spec, **{param: value}).build(50, 5)
