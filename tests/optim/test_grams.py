"""Grams against the paper's equations (numpy, by hand) and against pytorch-optimizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from skopt_nn import optim
from skopt_nn.optim._grams import Grams
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])


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


def numpy_grams(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """Algorithm 1 of the paper, in plain numpy."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i]
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            u = m_hat / (np.sqrt(v_hat) + eps)
            u_hat = np.sign(g) * np.abs(u)
            theta = theta - lr * (u_hat + weight_decay * theta)
        out.append(theta)
    return out


_SHAPES = [(2, 3), (4,)]


def _problem(seed: int, steps: int = 3) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    # a gradient that flips sign against the momentum, and an exact zero (sign(0) = 0: no step but the decay)
    grads[1][0][0, 0] = -3.0 * np.sign(grads[0][0][0, 0])
    grads[2][1][2] = 0.0
    return theta0, grads


@FOREACH
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.1},
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
        {"lr": 0.1, "weight_decay": 0.3},
        {"lr": 0.02, "betas": (0.0, 0.5), "eps": 0.0, "weight_decay": 0.05},
    ],
    ids=["default", "betas-eps", "decay", "beta1-zero"],
)
def test_matches_paper_equations(hyper: dict, foreach: bool) -> None:
    theta0, grads = _problem(0)
    expected = numpy_grams(theta0, grads, **hyper)
    got = _run_torch(lambda ps: Grams(ps, foreach=foreach, **hyper), theta0, grads)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_zero_gradient_coordinate_only_decays() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = Grams([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt.step()
    before = p.detach().clone()
    p.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
    opt.step()
    # the momentum of coordinate 0 is 0.1, but sign(0) = 0: only the decay moves it
    assert p[0].item() == pytest.approx(before[0].item() * (1 - 0.1 * 0.5), rel=1e-15)
    assert p[1].item() < before[1].item() * (1 - 0.1 * 0.5)


def test_direction_is_gradient_sign_not_momentum_sign() -> None:
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Grams([p], lr=0.1)
    for g in (1.0, 1.0, -0.01):  # the momentum stays positive, the last gradient is negative
        p.grad = torch.tensor([g], dtype=torch.float64)
        before = float(p.detach())
        opt.step()
    assert opt.state[p]["exp_avg"].item() > 0
    assert float(p.detach()) > before  # stepped along -sign(g) = +1, against Adam's direction


def test_gradients_are_not_modified() -> None:
    p = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    for foreach in (False, True):
        opt = Grams([p], lr=0.1, weight_decay=0.1, foreach=foreach)
        g = torch.randn(5, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        assert torch.equal(p.grad, g)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_matches_pytorch_optimizer(weight_decay: float) -> None:
    """pytorch-optimizer's ``Grams`` (eps added to sqrt(v_hat), decoupled decay) is the same math."""
    po = pytest.importorskip("pytorch_optimizer")
    ours_model = SmallRegression()
    theirs_model = SmallRegression()
    kw = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-6, "weight_decay": weight_decay}
    ours = Grams(ours_model.parameters(), **kw)
    theirs = po.Grams(theirs_model.parameters(), weight_decouple=True, **kw)
    for _ in range(15):
        for model, opt in ((ours_model, ours), (theirs_model, theirs)):
            opt.zero_grad()
            model().backward()
            opt.step()
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert not torch.equal(next(SmallRegression().parameters()), next(ours_model.parameters()))


def test_bfloat16_parameters_keep_bfloat16_state() -> None:
    model = torch.nn.Linear(4, 2).to(torch.bfloat16)
    opt = Grams(model.parameters(), lr=1e-2, weight_decay=0.01)
    x = torch.randn(8, 4, dtype=torch.bfloat16)
    for _ in range(3):
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    for p in model.parameters():
        assert p.dtype == torch.bfloat16 and torch.isfinite(p.float()).all()
        state = opt.state[p]
        assert state["exp_avg"].dtype == torch.bfloat16
        assert state["exp_avg_sq"].dtype == torch.bfloat16
        assert state["step"].item() == 3


def test_registered_and_composable() -> None:
    spec = optim.get("grams")
    assert spec.optimizer is Grams and spec.supports_foreach
    assert optim.get("cautious_grams").optimizer(SmallRegression().parameters(), lr=1e-3) is not None
