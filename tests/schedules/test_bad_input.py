"""TESTING.md §3 for the schedules: every bad value of every parameter of every registered schedule is one
clear error naming it, and no valid parameter gives a NaN or infinite multiplier.

The registry's own ``error_inputs`` (tests/schedules/test_conformance.py) pin the exact message of the
interesting values; here every parameter of every entry gets the same battery of wrong types and non-finite
numbers, plus the torch adapter, refinement and the batch-size scaling helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skorch.history import History

from skopt_nn import NeuralRegressor, schedules
from skopt_nn.estimators import GradientNormLogger
from skopt_nn.schedules import CosinePower, MultiplierLR, OneCycle, Refined

NAMES = schedules.available()
BAD_VALUES: list[Any] = [float("nan"), float("inf"), -float("inf"), "1", None, [[1.0]]]


def _valid(name: str) -> dict[str, Any]:
    spec = schedules.get(name)
    return dict(spec.sample_params)


CASES = [
    pytest.param(name, param, value, id=f"{name}-{param}-{value!r}")
    for name in NAMES
    for param in schedules.get(name).factory._param_names()
    for value in BAD_VALUES
]


@pytest.mark.parametrize(("name", "param", "value"), CASES)
def test_every_parameter_rejects_wrong_types_and_non_finite_numbers(name: str, param: str, value: Any) -> None:
    schedule = schedules.create(name, **{**_valid(name), param: value})  # constructing never validates
    owner = type(schedule).__name__
    with pytest.raises(ValueError) as info:
        schedule.build(100, 10)
    message = str(info.value)
    assert message.startswith(f"The {param!r} parameter of {owner} must be "), message
    assert message.endswith(" instead."), message
    with pytest.raises(ValueError):
        schedule.check_params()  # none of these depends on the run's length


@pytest.mark.parametrize("name", NAMES)
def test_build_arguments_of_other_types(name: str) -> None:
    schedule = schedules.create(name, **_valid(name))
    owner = f"{type(schedule).__name__}.build"
    for total, per_epoch, bad in [(True, 1, "total_steps"), (10.0, 1, "total_steps"), (10, "2", "steps_per_epoch")]:
        with pytest.raises(ValueError) as info:
            schedule.build(total, per_epoch)  # type: ignore[arg-type]
        assert str(info.value).startswith(f"The {bad!r} parameter of {owner} must be an int in the range [1, inf)")
    fn = schedule.build(np.int64(12), np.int64(3))  # numpy integers are integers
    assert math.isfinite(fn(11))
    with pytest.raises(ValueError, match=r"A schedule is evaluated at steps >= 0; got -1\."):
        fn(-1)


def test_a_warmup_as_long_as_the_run_is_refused_through_the_estimator() -> None:
    X = np.random.RandomState(0).normal(size=(20, 2))
    reg = NeuralRegressor(max_epochs=2, batch_size=10, schedule="cosine", schedule__warmup_steps=4)
    with pytest.raises(ValueError) as info:
        reg.fit(X, X[:, 0])
    assert str(info.value) == (
        "The 'warmup_steps' parameter of Cosine must be an int in the range [0, 3] for total_steps=4. Got 4 instead."
    )


def test_an_sgdr_cycle_longer_than_the_run_is_one_cosine_not_an_error() -> None:
    got = schedules.create("sgdr", T_0=1000, T_mult=1).multipliers(20, 4)
    assert all(0.0 < m <= 1.0 for m in got) and got == sorted(got, reverse=True)


# ---------------------------------------------------------------------------------------- no NaN multiplier


@settings(max_examples=40, deadline=None)
@given(
    order=st.floats(min_value=1e-300, max_value=1e308, allow_nan=False, allow_infinity=False),
    total=st.integers(1, 60),
)
def test_cosine_power_is_finite_and_monotone_for_every_valid_order(order: float, total: int) -> None:
    got = CosinePower(exponent_order=order).multipliers(total, 1)
    assert all(math.isfinite(m) and -1e-12 <= m <= 1.0 + 1e-12 for m in got), (order, got)
    assert got[0] == pytest.approx(1.0)
    assert all(a >= b - 1e-12 for a, b in zip(got, got[1:]))


def test_cosine_power_near_and_far_from_order_one() -> None:
    cosine = schedules.Cosine().multipliers(9, 1)
    np.testing.assert_allclose(CosinePower(exponent_order=1.0 + 1e-12).multipliers(9, 1), cosine, atol=1e-9)
    huge = CosinePower(exponent_order=1e300).multipliers(9, 1)  # r^2 overflows a float; the curve does not
    assert huge[0] == 1.0 and all(0.0 <= m < 1e-8 for m in huge[1:])


@settings(max_examples=40, deadline=None)
@given(
    norms=st.lists(st.floats(min_value=1e-300, max_value=1e300, allow_nan=False), min_size=1, max_size=30),
    total=st.integers(1, 40),
    method=st.sampled_from(["sgd", "adam"]),
)
def test_refined_multipliers_are_finite_for_any_positive_norms(norms: list[float], total: int, method: str) -> None:
    got = Refined(grad_norms=norms, method=method, smoothing=0.0).multipliers(total, 1)
    assert all(math.isfinite(m) and 0.0 <= m <= 1.0 for m in got), (norms, got)
    assert max(got) == 1.0


def test_refinement_does_not_depend_on_the_scale_of_the_norms() -> None:
    norms = [3.0, 2.0, 2.5, 1.0, 1.5, 1.0]
    expected = Refined(grad_norms=norms).multipliers(12, 3)
    for scale in (1e-300, 1e-150, 1e150, 1e300):
        got = Refined(grad_norms=[n * scale for n in norms]).multipliers(12, 3)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------- torch adapter


def _optimizer(**kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_make_scheduler_needs_an_optimizer(name: str) -> None:
    schedule = schedules.create(name, **_valid(name))
    with pytest.raises(TypeError) as info:
        schedule.make_scheduler("sgd", total_steps=10, steps_per_epoch=2)  # type: ignore[arg-type]
    assert str(info.value) == f"{type(schedule).__name__}.make_scheduler needs a torch.optim.Optimizer; got 'sgd'."


def test_one_cycle_cannot_cycle_the_momentum_an_optimizer_does_not_have() -> None:
    adagrad = torch.optim.Adagrad([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(ValueError) as info:
        OneCycle(cycle_momentum=True).make_scheduler(adagrad, total_steps=10, steps_per_epoch=1)
    assert str(info.value) == (
        "The 'cycle_momentum' parameter of OneCycle must be False or 'auto' for Adagrad (the optimizer must support "
        "momentum or beta1). Got True instead."
    )
    X = np.random.RandomState(0).normal(size=(20, 2))
    reg = NeuralRegressor(
        max_epochs=1, optimizer="adagrad", schedule="onecycle", schedule__cycle_momentum=True, random_state=0
    )
    with pytest.raises(ValueError, match="The 'cycle_momentum' parameter of OneCycle must be False or 'auto'"):
        reg.fit(X, X[:, 0])


def test_multiplier_lr_refuses_non_callables_and_non_finite_multipliers() -> None:
    with pytest.raises(TypeError, match=r"MultiplierLR needs a callable step -> multiplier; got 3\."):
        MultiplierLR(_optimizer(), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        MultiplierLR(_optimizer(), lambda t: float("nan"))
    assert str(info.value) == (
        "The schedule gave the lr multiplier nan at step 0: multipliers must be finite (a NaN lr trains a NaN model)."
    )
    opt = _optimizer()
    scheduler = MultiplierLR(opt, lambda t: 1.0 if t < 2 else float("inf"))
    opt.step()
    scheduler.step()
    opt.step()
    with pytest.raises(ValueError, match="lr multiplier inf at step 2"):
        scheduler.step()
    assert opt.param_groups[0]["lr"] == 0.1  # the bad value never reached the optimizer


# ---------------------------------------------------------------------------------- refinement and scaling


def test_refined_from_explains_a_missing_or_wrong_source() -> None:
    with pytest.raises(TypeError) as info:
        schedules.refined_from([[1.0, 2.0]], key="grad_norm")
    assert str(info.value) == (
        "refined_from(key='grad_norm') reads a skorch History (e.g. net.history_); got list. Pass the norms "
        "themselves without key."
    )
    history = History()
    history.new_epoch()
    history.new_batch()
    history.record_batch("train_loss", 1.0)
    with pytest.raises(ValueError) as info:
        schedules.refined_from(history, key="grad_norm", method="adam")
    assert str(info.value) == (
        "The history has no per-batch 'grad_norm' values: record them during the first fit with "
        "callbacks=[GradientNormLogger(norm_type=1.0)] (key 'grad_norm')."
    )
    with pytest.raises(TypeError, match="Gradient norms must be numbers or \\(nested\\) sequences of numbers"):
        schedules.refined_from([1.0, "a"])
    with pytest.raises(ValueError, match="The 'grad_norms' parameter of Refined must be a non-empty 1-D sequence"):
        schedules.refined_from([[], []])


@pytest.mark.parametrize("norm_type", [0.0, -1.0, float("nan"), "l2", True])
def test_gradient_norm_type_is_checked(norm_type: Any) -> None:
    expected = f"The 'norm_type' parameter of gradient_norm must be a float in the range (0.0, inf]. Got {norm_type!r}"
    with pytest.raises(ValueError) as info:
        schedules.gradient_norm([torch.nn.Parameter(torch.ones(2))], norm_type)
    assert str(info.value).startswith(expected)
    X = np.random.RandomState(0).normal(size=(20, 2))
    reg = NeuralRegressor(max_epochs=1, callbacks=[GradientNormLogger(norm_type=norm_type)])
    with pytest.raises(ValueError, match="The 'norm_type' parameter of GradientNormLogger must be"):
        reg.fit(X, X[:, 0])
    assert reg.history_ is None  # refused when the callbacks were initialised, before training


def test_infinity_norm_is_a_valid_norm_type() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.tensor([1.0, -4.0, 2.0])
    assert schedules.gradient_norm([p], float("inf")) == 4.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: schedules.scale_lr_for_batch_size(0.1, float("inf")),
            "The 'kappa' parameter of scale_lr_for_batch_size must be a float in the range (0.0, inf). Got inf instead.",
        ),
        (
            lambda: schedules.scale_lr_for_batch_size(float("nan"), 2.0),
            "The 'lr' parameter of scale_lr_for_batch_size must be a float in the range (0.0, inf). Got nan instead.",
        ),
        (
            lambda: schedules.scale_lr_for_batch_size(0.1, 2.0, "adam", betas=(0.9, float("nan"))),
            "The 'betas' parameter of scale_lr_for_batch_size must be a tuple of floats in the range [0.0, 1.0). "
            "Got (0.9, nan) instead.",
        ),
        (
            lambda: schedules.scale_hyperparameters([("lr", 0.1)], 2.0),  # type: ignore[arg-type]
            "The 'params' parameter of scale_hyperparameters must be a mapping of hyperparameter names to values. "
            "Got [('lr', 0.1)] instead.",
        ),
        (
            lambda: schedules.scale_hyperparameters({"optimizer__eps": float("inf")}, 2.0, "adam"),
            "The 'optimizer__eps' parameter of scale_hyperparameters must be a float in the range [0.0, inf). "
            "Got inf instead.",
        ),
    ],
)
def test_scaling_helpers_refuse_bad_values(call: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message
