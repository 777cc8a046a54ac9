"""Lion against the paper's equations (numpy, by hand) and against pytorch-optimizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.optim._lion import Lion
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])

# --------------------------------------------------------------------------------------------------- helpers


def _run_torch(
    opt_factory: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
) -> list[np.ndarray]:
    """Apply the fixed gradient sequence ``grads`` by setting ``p.grad`` before each step."""
    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = opt_factory(params)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


def numpy_lion(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """The paper's Algorithm 2, written out in plain numpy."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        for step_grads in grads:
            g = step_grads[i].astype(np.float64)
            c = beta1 * m + (1.0 - beta1) * g
            theta = theta - lr * (np.sign(c) + weight_decay * theta)
            m = beta2 * m + (1.0 - beta2) * g
        out.append(theta)
    return out


_SHAPES = [(2, 3), (4,)]


def _fixture(steps: int = 3, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    # c = 0 at step 1 (m_0 = 0, g = 0): sign(0) = 0, the coordinate only decays
    grads[0][1][0] = 0.0
    # a gradient that flips sign against a small momentum: sign(c) follows the gradient, not the momentum
    grads[0][1][1], grads[1][1][1] = 0.1, -5.0
    # ... and one that flips against a large momentum: sign(c) keeps the momentum's sign
    grads[0][1][2], grads[1][1][2], grads[2][1][2] = 50.0, 50.0, -5.0
    return theta0, grads


# --------------------------------------------------------------------------------------------------- reference


REFERENCE_SETTINGS = [
    pytest.param({"lr": 0.1}, id="defaults"),
    pytest.param({"lr": 0.05, "betas": (0.5, 0.8)}, id="betas"),
    pytest.param({"lr": 0.1, "weight_decay": 0.5}, id="weight-decay"),
    pytest.param({"lr": 0.02, "betas": (0.95, 0.98), "weight_decay": 2.0}, id="betas-weight-decay"),
]


@FOREACH
@pytest.mark.parametrize("setting", REFERENCE_SETTINGS)
def test_matches_paper_equations(setting: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _fixture()
    expected = numpy_lion(theta0, grads, **setting)
    actual = _run_torch(lambda ps: Lion(ps, foreach=foreach, **setting), theta0, grads)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


@FOREACH
def test_every_coordinate_moves_by_lr_and_sign_of_zero_is_zero(foreach: bool) -> None:
    p = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = Lion([p], lr=0.01, foreach=foreach)
    p.grad = torch.tensor([3.0, -1e-12, 0.0, 1e6, -2.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(
        p.detach(), torch.tensor([-0.01, 0.01, 0.0, -0.01, 0.01], dtype=torch.float64), rtol=0, atol=0
    )
    # second step: c = beta1 * m + (1 - beta1) * g with m = (1 - beta2) * g_1 = 0.01 * g_1
    p.grad = torch.tensor([-1.0, 0.0, 0.0, -1.0, 0.0], dtype=torch.float64)
    opt.step()
    # coordinate 0: c = 0.9 * 0.03 - 0.1 = -0.073 < 0 -> +lr; coordinate 3: c = 0.9 * 1e4 - 0.1 > 0 -> -lr
    torch.testing.assert_close(
        p.detach(), torch.tensor([0.0, 0.02, 0.0, -0.02, 0.02], dtype=torch.float64), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(
        opt.state[p]["exp_avg"],
        0.99 * 0.01 * torch.tensor([3.0, -1e-12, 0.0, 1e6, -2.0], dtype=torch.float64)
        + 0.01 * torch.tensor([-1.0, 0.0, 0.0, -1.0, 0.0], dtype=torch.float64),
    )


@FOREACH
def test_weight_decay_is_decoupled_and_scaled_by_lr(foreach: bool) -> None:
    """With a zero gradient the only motion is theta <- theta * (1 - lr * weight_decay)."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = Lion([p], lr=0.1, weight_decay=0.5, foreach=foreach)
    for _ in range(3):
        p.grad = torch.zeros(2, dtype=torch.float64)
        opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64) * 0.95**3)


def test_grads_are_not_modified() -> None:
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    p.grad = g.clone()
    Lion([p], lr=0.1, weight_decay=0.3).step()
    assert torch.equal(p.grad, g)


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="^Lion does not support sparse gradients$"):
        Lion([p]).step()


def test_defaults_are_the_papers() -> None:
    opt = Lion([torch.nn.Parameter(torch.zeros(1))])
    assert opt.defaults["lr"] == 1e-4
    assert opt.defaults["betas"] == (0.9, 0.99)
    assert opt.defaults["weight_decay"] == 0.0


# --------------------------------------------------------------------------------------------------- differential


def _train(opt_factory: Callable[[Any], torch.optim.Optimizer], steps: int = 20) -> torch.Tensor:
    model = SmallRegression()
    opt = opt_factory(model.parameters())
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        model().backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@FOREACH
@pytest.mark.parametrize("weight_decay", [0.0, 0.3], ids=["no-wd", "wd"])
def test_matches_pytorch_optimizer(weight_decay: float, foreach: bool) -> None:
    """pytorch-optimizer's ``Lion`` with ``weight_decouple=True, fixed_decay=False`` (decay ``1 - lr * wd``
    before the sign step, as the paper) and no gradient centralisation / AdaNorm / cautious mask."""
    po = pytest.importorskip("pytorch_optimizer")
    common = {"lr": 3e-3, "betas": (0.9, 0.99), "weight_decay": weight_decay}
    theirs = _train(
        lambda ps: po.Lion(ps, weight_decouple=True, fixed_decay=False, maximize=False, foreach=foreach, **common)
    )
    ours = _train(lambda ps: Lion(ps, foreach=foreach, **common))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    # the comparison can fail: one flipped sign moves a coordinate by 2 * lr
    other = _train(lambda ps: Lion(ps, foreach=foreach, **{**common, "betas": (0.8, 0.99)}))
    assert (other - theirs).abs().max() > 1e-3
