"""Batch-size scaling rules (Goyal et al. 2017; Hoffer et al. 2017; Malladi et al. 2022)."""

from __future__ import annotations

import math

import pytest

from skopt_nn.schedules import scale_hyperparameters, scale_lr_for_batch_size


def test_sgd_linear_scaling() -> None:
    assert scale_lr_for_batch_size(0.1, 4) == (pytest.approx(0.4), None)
    assert scale_lr_for_batch_size(0.1, 0.5, "sgd") == (pytest.approx(0.05), None)
    lr, betas = scale_lr_for_batch_size(0.1, 8, "sgd", betas=(0.9, 0.999))
    assert lr == pytest.approx(0.8) and betas == (0.9, 0.999)  # SGD rules leave betas alone


def test_sgd_square_root_scaling() -> None:
    assert scale_lr_for_batch_size(0.1, 4, "sgd_sqrt")[0] == pytest.approx(0.2)


def test_adam_square_root_rule_scales_one_minus_beta_by_kappa() -> None:
    lr, betas = scale_lr_for_batch_size(1e-3, 4, "adam", betas=(0.9, 0.999))
    assert lr == pytest.approx(2e-3)
    assert betas == pytest.approx((0.6, 0.996))  # 1 - 4 * 0.1, 1 - 4 * 0.001
    lr, betas = scale_lr_for_batch_size(1e-3, 0.25, "adam", betas=[0.9, 0.999])  # a smaller batch
    assert lr == pytest.approx(5e-4) and betas == pytest.approx((0.975, 0.99975))
    assert scale_lr_for_batch_size(1e-3, 9, "adam") == (pytest.approx(3e-3), None)


def test_scaling_forth_and_back_is_the_identity() -> None:
    lr, betas = scale_lr_for_batch_size(3e-4, 2.5, "adam", betas=(0.8, 0.99))
    assert betas is not None
    lr2, betas2 = scale_lr_for_batch_size(lr, 1 / 2.5, "adam", betas=betas)
    assert lr2 == pytest.approx(3e-4) and betas2 == pytest.approx((0.8, 0.99))


def test_scale_hyperparameters_handles_routed_names_and_eps() -> None:
    params = {"optimizer__lr": 1e-3, "optimizer__betas": (0.9, 0.999), "optimizer__eps": 1e-8, "max_epochs": 10}
    scaled = scale_hyperparameters(params, 4, "adam")
    assert scaled["optimizer__lr"] == pytest.approx(2e-3)
    assert scaled["optimizer__betas"] == pytest.approx((0.6, 0.996))
    assert scaled["optimizer__eps"] == pytest.approx(5e-9)
    assert scaled["max_epochs"] == 10
    sgd = scale_hyperparameters({"lr": 0.1, "momentum": 0.9, "eps": 1e-8}, 4, "sgd")
    assert sgd == {"lr": pytest.approx(0.4), "momentum": 0.9, "eps": 1e-8}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"lr": 0.1, "kappa": 0},
            "The 'kappa' parameter of scale_lr_for_batch_size must be a float in the range (0.0, inf). Got 0 instead.",
        ),
        (
            {"lr": 0.1, "kappa": -2.0},
            "The 'kappa' parameter of scale_lr_for_batch_size must be a float in the range (0.0, inf). "
            "Got -2.0 instead.",
        ),
        (
            {"lr": -0.1, "kappa": 2.0},
            "The 'lr' parameter of scale_lr_for_batch_size must be a float in the range (0.0, inf). Got -0.1 instead.",
        ),
        (
            {"lr": 0.1, "kappa": 2.0, "rule": "lamb"},
            "The 'rule' parameter of scale_lr_for_batch_size must be one of {'sgd', 'sgd_sqrt', 'adam'}. "
            "Got 'lamb' instead.",
        ),
        (
            {"lr": 0.1, "kappa": 2.0, "rule": "adam", "betas": (0.9, 1.0)},
            "The 'betas' parameter of scale_lr_for_batch_size must be a tuple of floats in the range [0.0, 1.0). "
            "Got (0.9, 1.0) instead.",
        ),
        (
            {"lr": 1e-3, "kappa": 20.0, "rule": "adam", "betas": (0.9, 0.999)},
            "The 'kappa' parameter of scale_lr_for_batch_size must be a float in the range (0.0, 10] for "
            "betas=(0.9, 0.999) (1 - beta is multiplied by kappa and must stay <= 1). Got 20.0 instead.",
        ),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        scale_lr_for_batch_size(**kwargs)
    assert str(info.value) == message


def test_largest_kappa_gives_beta_zero() -> None:
    _, betas = scale_lr_for_batch_size(1e-3, 2.0, "adam", betas=(0.5,))
    assert betas == (0.0,)
    assert math.isclose(scale_lr_for_batch_size(1e-3, 2.0, "adam")[0], 1e-3 * math.sqrt(2))
