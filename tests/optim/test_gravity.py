"""Gravity against the paper's equations (numpy, by hand) and pytorch-optimizer's ``Gravity``.

torch-optimizer 0.3 has no Gravity.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from skopt_nn.optim._gravity import Gravity
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])

_SHAPES = [(2, 3), (4,)]


def numpy_gravity(
    theta0: Sequence[np.ndarray],
    v0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    beta: float,
    first_t: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Algorithm 1 of the paper in plain numpy: m = 1/max|g| per tensor, zeta = g/(1+(g/m)^2),
    beta_hat = (beta t + 1)/(t + 2) with t = 1 at the first update, V = beta_hat V + (1 - beta_hat) zeta,
    theta -= lr V."""
    thetas = [t.astype(np.float64).copy() for t in theta0]
    vs = [v.astype(np.float64).copy() for v in v0]
    for t, step_grads in enumerate(grads, start=first_t):
        beta_hat = (beta * t + 1.0) / (t + 2.0)
        for i, g in enumerate(step_grads):
            m = 1.0 / np.max(np.abs(g))
            zeta = g / (1.0 + (g / m) ** 2)
            vs[i] = beta_hat * vs[i] + (1.0 - beta_hat) * zeta
            thetas[i] = thetas[i] - lr * vs[i]
    return thetas, vs


def _fixture(steps: int = 3, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    # gradients of different scales per tensor (so the per-tensor max matters) and per step
    scales = [0.3, 2.0, 0.05]
    grads = [[rng.normal(size=s) * scales[k] * (i + 1) for i, s in enumerate(_SHAPES)] for k in range(steps)]
    return theta0, grads


def _initial_velocities(seed: int, lr: float, alpha: float) -> list[np.ndarray]:
    """The documented V_0 draw: ``empty_like(p).normal_(0, alpha / lr)`` per parameter, in order, at step 1."""
    torch.manual_seed(seed)
    return [torch.empty(s, dtype=torch.float64).normal_(0.0, alpha / lr).numpy() for s in _SHAPES]


# --------------------------------------------------------------------------------------------------- reference


@FOREACH
@pytest.mark.parametrize(
    ("lr", "alpha", "beta"),
    [(0.1, 0.01, 0.9), (0.5, 0.0, 0.5), (0.05, 0.1, 0.0), (1.0, 0.3, 0.99)],
)
def test_matches_numpy_reference(foreach: bool, lr: float, alpha: float, beta: float) -> None:
    theta0, grads = _fixture()
    v0 = _initial_velocities(7, lr, alpha)
    expected, expected_v = numpy_gravity(theta0, v0, grads, lr=lr, beta=beta)

    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = Gravity(params, lr=lr, alpha=alpha, beta=beta, foreach=foreach)
    torch.manual_seed(7)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    for p, e, ev in zip(params, expected, expected_v):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.state[p]["velocity"].numpy(), ev, rtol=1e-12, atol=1e-14)
        assert opt.state[p]["step"] == len(grads)


def test_first_update_uses_t_equal_one() -> None:
    """Our reading (t = 1 at the first update, the authors' PyTorch code) is distinguishable from the README's
    Keras snippet, whose t is 0 at the first update (beta_hat_1 = 1/2)."""
    theta0, grads = _fixture()
    v0 = _initial_velocities(7, 0.1, 0.01)
    keras, _ = numpy_gravity(theta0, v0, grads, lr=0.1, beta=0.9, first_t=0)
    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = Gravity(params, lr=0.1, alpha=0.01, beta=0.9)
    torch.manual_seed(7)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    assert not np.allclose(params[0].detach().numpy(), keras[0], rtol=1e-6, atol=0.0)


# --------------------------------------------------------------------------------------------------- differential


@FOREACH
@pytest.mark.parametrize("their_foreach", [False, True], ids=["theirs-single", "theirs-foreach"])
@pytest.mark.parametrize(("lr", "alpha", "beta"), [(0.1, 0.01, 0.9), (0.02, 0.05, 0.7)])
def test_matches_pytorch_optimizer(foreach: bool, their_foreach: bool, lr: float, alpha: float, beta: float) -> None:
    """pytorch-optimizer's ``Gravity`` draws V_0 the same way (``empty_like(p).normal_(0, alpha/lr)`` at the first
    step, in parameter order) and counts t from 1, so with the same seed the trajectories coincide."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    ours_model, their_model = SmallRegression(), SmallRegression()
    ours = Gravity(ours_model.parameters(), lr=lr, alpha=alpha, beta=beta, foreach=foreach)
    theirs = pytorch_optimizer.Gravity(their_model.parameters(), lr=lr, alpha=alpha, beta=beta, foreach=their_foreach)
    for model, opt in ((ours_model, ours), (their_model, theirs)):
        torch.manual_seed(3)
        for _ in range(15):
            opt.zero_grad()
            model().backward()
            opt.step()
    for p, q in zip(ours_model.parameters(), their_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.state[p]["velocity"], theirs.state[q]["v"], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------------- specifics


def test_initial_velocity_is_seeded_and_has_std_alpha_over_lr() -> None:
    def first_velocity(seed: int) -> torch.Tensor:
        p = torch.nn.Parameter(torch.zeros(200, 200, dtype=torch.float64))
        opt = Gravity([p], lr=0.2, alpha=0.05, beta=0.9)
        p.grad = torch.zeros_like(p)  # zeta = 0: the velocity after one step is beta_hat_1 * V_0
        torch.manual_seed(seed)
        opt.step()
        return opt.state[p]["velocity"] / ((0.9 + 1.0) / 3.0)

    a, b, c = first_velocity(0), first_velocity(0), first_velocity(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert abs(float(a.std()) - 0.05 / 0.2) < 0.01  # 40000 draws: the std's standard error is ~0.0009
    assert abs(float(a.mean())) < 0.01


def test_zero_gradient_gives_finite_update() -> None:
    """An all-zero gradient has m = 1/0; the step term is 0 (not nan) and only the velocity carries on."""
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = Gravity([p], lr=0.1, alpha=0.0)
    p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3, dtype=torch.float64))
    p.grad = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    opt.step()
    assert torch.isfinite(p).all()


def test_large_gradients_take_small_steps() -> None:
    """zeta = g/(1 + (g max|g|)^2): a tensor whose gradients are all large barely moves (the paper's point)."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = Gravity([p], lr=0.1, alpha=0.0, beta=0.0)
    p.grad = torch.tensor([100.0, 50.0], dtype=torch.float64)
    opt.step()
    # beta_hat_1 = 1/3, V_1 = (2/3) zeta, zeta_i = g_i / (1 + (g_i * 100)^2)
    zeta = torch.tensor([100.0 / (1 + 1e8), 50.0 / (1 + 2.5e7)], dtype=torch.float64)
    torch.testing.assert_close(p.detach(), -0.1 * (2.0 / 3.0) * zeta, rtol=1e-12, atol=0.0)


def test_lr_zero_starts_from_zero_velocity() -> None:
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = Gravity([p], lr=0.0)
    p.grad = torch.ones_like(p)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(4, dtype=torch.float64))
    assert torch.isfinite(opt.state[p]["velocity"]).all()


def test_state_dict_keeps_the_drawn_velocity() -> None:
    """After load_state_dict no new V_0 is drawn: the continued run does not depend on the RNG."""
    model = SmallRegression()
    opt = Gravity(model.parameters(), lr=0.1)
    torch.manual_seed(0)
    for _ in range(3):
        opt.zero_grad()
        model().backward()
        opt.step()
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    clone = copy.deepcopy(model)
    opt2 = Gravity(clone.parameters(), lr=0.1)
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    for m, o, seed in ((model, opt, 1), (clone, opt2, 2)):  # different seeds: must not matter any more
        torch.manual_seed(seed)
        for _ in range(3):
            o.zero_grad()
            m().backward()
            o.step()
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)


def test_bfloat16_steps_and_state_dtype() -> None:
    p = torch.nn.Parameter(torch.randn(5, 4, dtype=torch.bfloat16))
    opt = Gravity([p], lr=0.1)
    for _ in range(3):
        p.grad = torch.randn_like(p)
        opt.step()
    assert p.dtype == torch.bfloat16
    assert torch.isfinite(p.float()).all()
    assert opt.state[p]["velocity"].dtype == torch.bfloat16


def test_sparse_gradients_rejected() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = Gravity([p])
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="Gravity does not support sparse gradients"):
        opt.step()
