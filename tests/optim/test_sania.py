"""SANIA (Abdukhakimov et al. 2023): reference steps, the paper's scale invariance, step-size rules.

Neither pytorch-optimizer 4.1 nor torch-optimizer 0.3 implements SANIA, so there is no differential test; the
reference test below is written from the equations (and the authors' code, github.com/fxrshed/SANIA, for the
"sania" step rule).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skopt_nn.optim._sania import SANIA
from skopt_nn.testing import SmallRegression

A = np.linspace(1.0, 6.0, 7)
C = np.linspace(-1.0, 1.0, 7)
X0 = np.array([0.4, -0.3, 0.9, 0.2, -0.8, 0.5, 1.5])


class _Split(torch.nn.Module):
    """f(x) = 1/2 sum a (x - c)^2 (>= 0, minimum 0), x split over two tensors."""

    def __init__(self, scale: np.ndarray | None = None) -> None:
        super().__init__()
        self.s = torch.tensor(np.ones(7) if scale is None else scale)
        x0 = X0 if scale is None else X0 / scale
        self.x1 = torch.nn.Parameter(torch.tensor(x0[:3]))
        self.x2 = torch.nn.Parameter(torch.tensor(x0[3:]))

    def forward(self) -> torch.Tensor:
        x = torch.cat([self.x1, self.x2]) * self.s
        return 0.5 * (torch.tensor(A) * (x - torch.tensor(C)) ** 2).sum()

    def flat(self) -> torch.Tensor:
        return torch.cat([self.x1.detach(), self.x2.detach()])


def _closure(opt, model):
    def closure():
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    return closure


def _numpy_sania(steps, *, lr, beta2, eps, preconditioner, sqrt, step_rule):
    x = X0.copy()
    v = np.zeros_like(x)
    for t in range(1, steps + 1):
        f = 0.5 * np.sum(A * (x - C) ** 2)
        g = A * (x - C)
        if preconditioner == "adagrad":
            v = v + g * g
            vhat = v
        else:
            v = beta2 * v + (1 - beta2) * g * g
            vhat = v / (1 - beta2**t)
        b = (np.sqrt(vhat) if sqrt else vhat) + eps
        d = g / b
        big_g = np.dot(g, d)
        if step_rule == "polyak":
            lam = f / big_g
        else:
            lam = 1 - np.sqrt(1 - 2 * f / big_g) if 2 * f <= big_g else 1.0
        x = x - lr * lam * d
    return x


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("step_rule", ["polyak", "sania"])
@pytest.mark.parametrize(
    "preconditioner,sqrt,lr,beta2,eps",
    [
        ("adagrad", False, 1.0, 0.999, 1e-8),
        ("adagrad", True, 0.5, 0.999, 1e-3),
        ("adam", False, 1.0, 0.9, 1e-8),
        ("adam", True, 0.7, 0.99, 1e-2),
    ],
)
def test_matches_hand_computed_steps(foreach, step_rule, preconditioner, sqrt, lr, beta2, eps):
    model = _Split()
    opt = SANIA(
        model.parameters(),
        lr=lr,
        beta2=beta2,
        eps=eps,
        preconditioner=preconditioner,
        sqrt=sqrt,
        step_rule=step_rule,
        foreach=foreach,
    )
    for _ in range(3):
        opt.step(_closure(opt, model))
    expected = _numpy_sania(
        3, lr=lr, beta2=beta2, eps=eps, preconditioner=preconditioner, sqrt=sqrt, step_rule=step_rule
    )
    np.testing.assert_allclose(model.flat().numpy(), expected, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("preconditioner", ["adagrad", "adam"])
def test_sqr_preconditioner_is_invariant_to_a_diagonal_rescaling_sqrt_is_not(preconditioner):
    """The paper's claim: with B from squared gradients (no square root), optimising f(D y) from y0 = D^-1 x0
    gives y_t = D^-1 x_t. eps is made negligible (1e-30) as the invariance is exact only without it."""
    scale = np.array([1.0, 10.0, 0.1, 3.0, 0.02, 50.0, 1.0])
    for sqrt, invariant in ((False, True), (True, False)):
        plain, scaled = _Split(), _Split(scale)
        opts = [SANIA(m.parameters(), eps=1e-30, preconditioner=preconditioner, sqrt=sqrt) for m in (plain, scaled)]
        for _ in range(5):
            for opt, m in zip(opts, (plain, scaled)):
                opt.step(_closure(opt, m))
        mapped = scaled.flat() * torch.tensor(scale)
        assert torch.allclose(mapped, plain.flat(), rtol=1e-10, atol=1e-12) == invariant


def test_polyak_step_halves_the_iterate_on_a_one_dimensional_quadratic():
    """f(x) = 1/2 a x^2: G = a^2 x^2 / B and B^-1 g = a x / B, so the Polyak step (f/G) B^-1 g = x / 2 for any B:
    the iterate halves at each step (the classic Polyak behaviour on a quadratic with f* = 0)."""
    x = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = SANIA([x], preconditioner="adam", step_rule="polyak")

    def closure():
        opt.zero_grad()
        loss = 2.5 * x.pow(2).sum()
        loss.backward()
        return loss

    for expected in (1.5, 0.75, 0.375):
        opt.step(closure)
        assert float(x.detach()) == pytest.approx(expected, rel=1e-12)


def test_one_polyak_step_over_all_groups():
    one, two = _Split(), _Split()
    opt1 = SANIA(one.parameters())
    opt2 = SANIA([{"params": [two.x1]}, {"params": [two.x2]}])
    for _ in range(3):
        opt1.step(_closure(opt1, one))
        opt2.step(_closure(opt2, two))
    torch.testing.assert_close(one.flat(), two.flat(), rtol=0, atol=0)


def test_negative_loss_takes_no_polyak_step():
    x = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = SANIA([x])

    def closure():
        opt.zero_grad()
        loss = x.sum() - 10.0
        loss.backward()
        return loss

    opt.step(closure)
    assert x.tolist() == [1.0, 2.0]


def test_needs_a_closure():
    model = _Split()
    opt = SANIA(model.parameters())
    model().backward()
    with pytest.raises(RuntimeError, match="SANIA needs a closure"):
        opt.step()


def test_trains_a_network_without_a_learning_rate():
    model = SmallRegression()
    opt = SANIA(model.parameters(), preconditioner="adam")
    first = float(model().detach())
    for _ in range(50):
        opt.step(_closure(opt, model))
    assert float(model().detach()) < 0.5 * first


def test_bfloat16_parameters_step_and_keep_their_dtype():
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 2).to(torch.bfloat16)
    x = torch.randn(8, 4, dtype=torch.bfloat16)
    for foreach in (False, True):
        opt = SANIA(linear.parameters(), preconditioner="adam", foreach=foreach)

        for _ in range(3):
            opt.step(_closure(opt, lambda: linear(x).float().pow(2).mean()))
        assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() for p in linear.parameters())
        for state in opt.state.values():
            assert state["sum_sq"].dtype == torch.bfloat16 and state["step"] == 3
