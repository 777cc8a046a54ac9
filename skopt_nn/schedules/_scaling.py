r"""Batch-size scaling rules: how to change the optimizer's hyperparameters when the batch size changes by κ.

With a new batch size ``B' = κ B`` (κ > 1 larger, κ < 1 smaller):

``rule="sgd"`` — linear scaling, :math:`\eta' = \kappa\,\eta`; momentum unchanged.
    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017 (arXiv:1706.02677);
    Smith & Le, "A Bayesian Perspective on Generalization and Stochastic Gradient Descent", ICLR 2018: the SGD
    noise scale :math:`g \approx \eta N / B` stays the same when :math:`\eta \propto B`. Use it with a warm-up
    for large κ (Goyal et al.).
``rule="sgd_sqrt"`` — square-root scaling for SGD, :math:`\eta' = \sqrt\kappa\,\eta` (keeps the covariance of
    the update); Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the generalization gap in
    large batch training of neural networks", NeurIPS 2017, who also keep the number of *updates* comparable
    (train κ times more epochs).
``rule="adam"`` — the square-root scaling rule for adaptive methods (RMSprop, Adam), from their SDE
    approximation: :math:`\eta' = \sqrt\kappa\,\eta`, :math:`1 - \beta_i' = \kappa (1 - \beta_i)`,
    :math:`\epsilon' = \epsilon / \sqrt\kappa`. Malladi, Lyu, Panigrahi & Arora, "On the SDEs and Scaling Rules
    for Adaptive Gradient Algorithms", NeurIPS 2022 (arXiv:2205.10287). The rule needs
    :math:`\kappa (1 - \beta_i) \le 1`; the paper validates it for moderate κ only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from skopt_nn._validation import Interval, check_float, check_option, invalid_param_message

__all__ = ["SCALING_RULES", "scale_hyperparameters", "scale_lr_for_batch_size"]

SCALING_RULES: tuple[str, ...] = ("sgd", "sgd_sqrt", "adam")

_POSITIVE = Interval(0.0, None, "neither")
_BETA = Interval(0.0, 1.0, "left")


def _check_betas(betas: Any, owner: str) -> tuple[float, ...]:
    ok = (
        isinstance(betas, (tuple, list))
        and len(betas) >= 1
        and all(not isinstance(b, bool) and isinstance(b, (int, float)) and b in _BETA for b in betas)
    )
    if not ok:
        raise ValueError(invalid_param_message("betas", owner, f"a tuple of floats in the range {_BETA}", betas))
    return tuple(float(b) for b in betas)


def _scaled_betas(betas: Sequence[float], kappa: float, owner: str) -> tuple[float, ...]:
    largest = max(1.0 - b for b in betas)
    if kappa * largest > 1.0:
        expected = (
            f"a float in the range (0.0, {1.0 / largest:.6g}] for betas={tuple(betas)!r} "
            "(1 - beta is multiplied by kappa and must stay <= 1)"
        )
        raise ValueError(invalid_param_message("kappa", owner, expected, kappa))
    return tuple(1.0 - kappa * (1.0 - b) for b in betas)


def scale_lr_for_batch_size(
    lr: float,
    kappa: float,
    rule: str = "sgd",
    betas: Sequence[float] | None = None,
) -> tuple[float, tuple[float, ...] | None]:
    """The learning rate (and betas) for a batch size ``kappa`` times the one ``lr`` was tuned for.

    Returns ``(lr', betas')``: ``lr * kappa`` for ``rule="sgd"``, ``lr * sqrt(kappa)`` for ``"sgd_sqrt"`` and
    ``"adam"``; with ``rule="adam"`` each beta becomes ``1 - kappa * (1 - beta)`` (other rules return ``betas``
    unchanged; ``None`` stays ``None``). For Adam's ``eps`` as well use :func:`scale_hyperparameters`.

    >>> scale_lr_for_batch_size(0.1, 4, "sgd")
    (0.4, None)
    >>> lr, betas = scale_lr_for_batch_size(1e-3, 4, "adam", betas=(0.9, 0.999))
    >>> round(lr, 6), tuple(round(b, 6) for b in betas)
    (0.002, (0.6, 0.996))
    """
    owner = "scale_lr_for_batch_size"
    lr_ = check_float(lr, "lr", owner, _POSITIVE)
    kappa_ = check_float(kappa, "kappa", owner, _POSITIVE)
    assert lr_ is not None and kappa_ is not None
    check_option(rule, "rule", owner, SCALING_RULES)
    checked = None if betas is None else _check_betas(betas, owner)
    if rule == "sgd":
        return lr_ * kappa_, checked
    if rule == "sgd_sqrt" or checked is None:
        return lr_ * math.sqrt(kappa_), checked
    return lr_ * math.sqrt(kappa_), _scaled_betas(checked, kappa_, owner)


def scale_hyperparameters(params: Mapping[str, Any], kappa: float, rule: str = "sgd") -> dict[str, Any]:
    """Scale the batch-size-dependent entries of an optimizer's hyperparameters; copy the others.

    Keys are matched on their last ``__`` component, so plain (``"lr"``) and routed (``"optimizer__lr"``) names
    both work: ``lr`` always, ``betas`` and ``eps`` (``eps / sqrt(kappa)``) under ``rule="adam"``. Momentum and
    weight decay are left unchanged (the papers keep them).

    >>> scale_hyperparameters({"optimizer__lr": 1e-3, "optimizer__eps": 1e-8, "max_epochs": 10}, 4, "adam")
    {'optimizer__lr': 0.002, 'optimizer__eps': 5e-09, 'max_epochs': 10}
    """
    owner = "scale_hyperparameters"
    if not isinstance(params, Mapping):
        raise ValueError(invalid_param_message("params", owner, "a mapping of hyperparameter names to values", params))
    kappa_ = check_float(kappa, "kappa", owner, _POSITIVE)
    assert kappa_ is not None
    check_option(rule, "rule", owner, SCALING_RULES)
    scaled: dict[str, Any] = {}
    for key, value in params.items():
        name = key.rsplit("__", 1)[-1]
        if name == "lr":
            scaled[key] = scale_lr_for_batch_size(value, kappa_, rule)[0]
        elif name == "betas" and rule == "adam":
            scaled[key] = _scaled_betas(_check_betas(value, owner), kappa_, owner)
        elif name == "eps" and rule == "adam":
            eps = check_float(value, key, owner, Interval(0.0, None, "left"))
            assert eps is not None
            scaled[key] = eps / math.sqrt(kappa_)
        else:
            scaled[key] = value
    return scaled
