"""Schedules as parameter objects: get_params / set_params / clone, nested routing, repr, no work in __init__."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from skopt_nn import schedules
from skopt_nn.schedules import SGDR, Cosine, OneCycle, Refined, Schedule


class Holder(BaseEstimator):
    """The smallest scikit-learn estimator with a ``schedule`` parameter (how the estimator routes)."""

    def __init__(self, schedule: Schedule | None = None) -> None:
        self.schedule = schedule


def test_get_params_returns_the_constructor_arguments_unchanged() -> None:
    norms = np.array([3.0, 2.0, 1.0])
    refined = Refined(grad_norms=norms, smoothing=0.2)
    assert refined.get_params()["grad_norms"] is norms
    assert SGDR(T_0=3).get_params() == {
        "T_0": 3,
        "T_mult": 2,
        "eta_min": 0.0,
        "restart_decay": 1.0,
        "warmup_steps": 0,
        "warmup_fraction": 0.0,
    }


def test_init_does_not_validate() -> None:
    bad = SGDR(T_0=0, eta_min=5.0)  # stored as given, rejected when built
    assert bad.T_0 == 0
    with pytest.raises(ValueError, match="'T_0' parameter of SGDR"):
        bad.build(10, 2)


def test_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        SGDR(5)  # type: ignore[misc]


def test_set_params_round_trip() -> None:
    schedule = SGDR()
    assert schedule.set_params(T_0=4, warmup_fraction=0.1) is schedule
    assert schedule.get_params()["T_0"] == 4 and schedule.warmup_fraction == 0.1
    again = SGDR(**schedule.get_params())
    assert again.multipliers(50, 3) == schedule.multipliers(50, 3)


def test_set_params_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError) as info:
        SGDR().set_params(T0=3)
    assert str(info.value) == "Unknown SGDR parameter 'T0'. Did you mean 'T_0'?"
    with pytest.raises(ValueError) as info:
        Cosine().set_params(warmup=3)
    assert str(info.value) == "Unknown Cosine parameter 'warmup'. Did you mean 'warmup_steps', 'warmup_fraction'?"


@pytest.mark.parametrize("name", schedules.available())
def test_clone_round_trip(name: str) -> None:
    spec = schedules.get(name)
    original = spec.create(**spec.sample_params)
    copy = clone(original)
    assert copy is not original and type(copy) is type(original)
    assert repr(copy) == repr(original)
    assert copy.multipliers(23, 4) == original.multipliers(23, 4)
    again = pickle.loads(pickle.dumps(original))
    assert again.multipliers(23, 4) == original.multipliers(23, 4)


def test_nested_routing_through_a_scikit_learn_estimator() -> None:
    holder = Holder(schedule=SGDR(T_0=2))
    params = holder.get_params(deep=True)
    assert params["schedule__T_0"] == 2 and "schedule__warmup_fraction" in params
    holder.set_params(schedule__T_0=7, schedule__warmup_fraction=0.1)
    assert holder.schedule is not None
    assert holder.schedule.T_0 == 7 and holder.schedule.warmup_fraction == 0.1
    copy = clone(holder)
    assert copy.schedule is not holder.schedule and copy.schedule.T_0 == 7
    with pytest.raises(ValueError, match="Did you mean 'T_0'"):
        holder.set_params(schedule__T0=1)


def test_repr_shows_non_default_parameters() -> None:
    assert repr(SGDR()) == "SGDR()"
    assert repr(SGDR(T_0=5, eta_min=0.01)) == "SGDR(T_0=5, eta_min=0.01)"
    assert repr(OneCycle(cycle_momentum=True)) == "OneCycle(cycle_momentum=True)"
    assert repr(Refined(grad_norms=[1.0] * 100)) == "Refined(grad_norms=<100 values>)"
    assert repr(Refined(grad_norms=np.ones(3))) == "Refined(grad_norms=array([1., 1., 1.]))"


def test_create_copies_schedule_objects() -> None:
    mine = SGDR(T_0=2)
    made = schedules.create(mine, T_0=9)
    assert mine.T_0 == 2 and made.T_0 == 9 and made is not mine
    assert schedules.create(mine) is not mine
