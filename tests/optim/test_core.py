"""CoRe against the paper's equations (numpy, by hand, in the paper's absolute step-size form).

Neither pytorch-optimizer 4.1 nor torch-optimizer 0.3 implements CoRe, so there is no differential test; the
authors' ``core_optimizer`` package is not a dependency. The numpy reference below follows the pseudo-code of the
paper / the authors' docstring with absolute step sizes s_0 = lr, s in [s_min, s_max]; our optimizer takes the
bounds in units of lr, so the reference is called with s_min = lr * rho_min, s_max = lr * rho_max, which also
checks that mapping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from skopt_nn.optim._core import CoRe
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])

_SHAPES = [(2, 3), (4,)]


def numpy_core(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.7375, 0.8125),
    beta1_decay: float = 250.0,
    beta2: float | None = 0.99,
    eps: float = 1e-8,
    etas: tuple[float, float] = (0.7375, 1.2),
    s_bounds: tuple[float, float] = (1e-6, 1e-2),
    weight_decay: float = 0.1,
) -> list[np.ndarray]:
    """The CoRe update in the paper's notation (absolute step sizes s), in plain numpy."""
    beta1_a, beta1_b = betas
    eta_minus, eta_plus = etas
    s_min, s_max = s_bounds
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        g = np.zeros_like(theta)  # first moment
        h = np.zeros_like(theta)  # second moment
        s = np.full_like(theta, lr)  # step sizes, s_0 = lr
        for t, step_grads in enumerate(grads, start=1):
            G = step_grads[i].astype(np.float64)
            beta1 = beta1_b + (beta1_a - beta1_b) * math.exp(-(((t - 1) / beta1_decay) ** 2))
            g_new = beta1 * g + (1.0 - beta1) * G
            if beta2 is not None:
                h = beta2 * h + (1.0 - beta2) * G * G
            agreement = g * g_new
            s = np.where(
                agreement > 0,
                np.minimum(eta_plus * s, s_max),
                np.where(agreement < 0, np.maximum(eta_minus * s, s_min), np.clip(s, s_min, s_max)),
            )
            g = g_new
            if beta2 is None:
                u = np.sign(g)
            else:
                u = (g / (1.0 - beta1**t)) / (np.sqrt(h / (1.0 - beta2**t)) + eps)
            theta = (1.0 - weight_decay * np.abs(u) * s) * theta - u * s
        out.append(theta)
    return out


def _fixture(steps: int = 4, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    # coordinates whose first moment keeps its sign (step size grows), flips (shrinks), and stays 0 (unchanged)
    for k in range(steps):
        grads[k][0][0, 0] = 1.0 + 0.1 * k
        grads[k][0][0, 1] = 3.0 * (-1.0) ** k
        grads[k][1][0] = 0.0
    return theta0, grads


def _run(theta0: Sequence[np.ndarray], grads: Sequence[Sequence[np.ndarray]], **kwargs: object) -> list[np.ndarray]:
    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = CoRe(params, **kwargs)  # type: ignore[arg-type]
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


# --------------------------------------------------------------------------------------------------- reference

_CASES = {
    "defaults": ({}, {}),
    "no-decay": ({"weight_decay": 0.0}, {"weight_decay": 0.0}),
    "fast-beta1-strong-decay": (
        {"lr": 0.05, "betas": (0.5, 0.9), "beta1_decay": 2.0, "weight_decay": 0.5},
        {"betas": (0.5, 0.9), "beta1_decay": 2.0, "weight_decay": 0.5},
    ),
    "tight-bounds": (
        {"lr": 0.01, "etas": (0.5, 2.0), "step_size_bounds": (0.6, 1.5), "beta2": 0.9, "eps": 1e-3},
        {"etas": (0.5, 2.0), "beta2": 0.9, "eps": 1e-3},
    ),
    "initial-step-below-bounds": (
        {"lr": 0.01, "step_size_bounds": (1.5, 3.0)},
        {},
    ),
    "sign-mode": ({"lr": 0.02, "beta2": None, "weight_decay": 0.2}, {"beta2": None, "weight_decay": 0.2}),
}


@FOREACH
@pytest.mark.parametrize("case", list(_CASES))
def test_matches_numpy_reference(foreach: bool, case: str) -> None:
    ours_kwargs, ref_kwargs = _CASES[case]
    lr = float(ours_kwargs.get("lr", 1e-3))  # type: ignore[arg-type]
    low, high = ours_kwargs.get("step_size_bounds", (1e-3, 10.0))  # type: ignore[misc]
    theta0, grads = _fixture()
    expected = numpy_core(theta0, grads, lr=lr, s_bounds=(lr * low, lr * high), **ref_kwargs)  # type: ignore[arg-type]
    got = _run(theta0, grads, foreach=foreach, **ours_kwargs)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


def test_step_size_follows_the_sign_of_consecutive_first_moments() -> None:
    """The step size follows sgn(g_{t-1} g_t) of the first moments, not of consecutive raw gradients."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = CoRe([p], lr=1.0, betas=(0.9, 0.9), weight_decay=0.0)
    for g in (1.0, -0.5, 1.0):  # raw signs flip twice; the first moment 0.1, 0.04, 0.136 never flips
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    torch.testing.assert_close(opt.state[p]["step_size"], torch.tensor([1.2**2], dtype=torch.float64))


# --------------------------------------------------------------------------------------------------- specifics


def test_step_size_saturates_at_the_bounds() -> None:
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = CoRe([p], lr=1e-3, step_size_bounds=(0.1, 5.0), weight_decay=0.0)
    for _ in range(30):  # constant sign: grows by 1.2 per step from the second step until 5
        p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
        opt.step()
    torch.testing.assert_close(opt.state[p]["step_size"], torch.full((2,), 5.0, dtype=torch.float64))
    for k in range(60):  # large alternating gradients flip the first moment every step: shrinks to 0.1
        p.grad = torch.tensor([100.0, 100.0], dtype=torch.float64) * (-1.0) ** k
        opt.step()
    torch.testing.assert_close(opt.state[p]["step_size"], torch.full((2,), 0.1, dtype=torch.float64))


def test_lr_rescales_every_step_size() -> None:
    """Step sizes are kept in units of lr: halving group['lr'] (as a schedule does) halves the next update."""
    theta0, grads = _fixture(steps=3)
    params_a = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    params_b = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt_a = CoRe(params_a, lr=1e-2, weight_decay=0.0)
    opt_b = CoRe(params_b, lr=1e-2, weight_decay=0.0)
    before: list[torch.Tensor] = []
    for k, step_grads in enumerate(grads):
        if k == 2:
            opt_b.param_groups[0]["lr"] = 5e-3
            before = [p.detach().clone() for p in params_a]
        for pa, pb, g in zip(params_a, params_b, step_grads):
            pa.grad = torch.tensor(g, dtype=torch.float64)
            pb.grad = torch.tensor(g, dtype=torch.float64)
        opt_a.step()
        opt_b.step()
    for pa, pb, b in zip(params_a, params_b, before):
        torch.testing.assert_close(pb.detach() - b, 0.5 * (pa.detach() - b), rtol=1e-12, atol=1e-16)


def test_weight_decay_only_where_the_weight_is_updated() -> None:
    """The decay d |u| s theta vanishes for a weight whose gradient (hence update) is zero, unlike AdamW's."""
    p = torch.nn.Parameter(torch.tensor([2.0, 2.0], dtype=torch.float64))
    opt = CoRe([p], lr=0.1, weight_decay=0.5)
    for _ in range(5):
        p.grad = torch.tensor([0.0, 1e-3], dtype=torch.float64)
        opt.step()
    assert float(p.detach()[0]) == 2.0
    assert float(p.detach()[1]) < 2.0 - 0.1


def test_sign_mode_has_no_second_moment() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = CoRe([p], beta2=None)
    p.grad = torch.ones(3)
    opt.step()
    assert sorted(opt.state[p]) == ["exp_avg", "step", "step_size"]


@FOREACH
def test_bfloat16_steps_and_state_dtype(foreach: bool) -> None:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 4, dtype=torch.bfloat16))
    opt = CoRe([p], lr=1e-2, foreach=foreach)
    for _ in range(3):
        p.grad = torch.randn_like(p)
        opt.step()
    assert p.dtype == torch.bfloat16
    assert torch.isfinite(p.float()).all()
    for key in ("exp_avg", "exp_avg_sq", "step_size"):
        assert opt.state[p][key].dtype == torch.bfloat16, key


def test_foreach_equals_single_tensor_with_mixed_steps() -> None:
    """Parameters at different step counts (one without a gradient at first) share one foreach call."""
    results = []
    for foreach in (False, True):
        model = SmallRegression(dtype=torch.float64)
        opt = CoRe(model.parameters(), lr=1e-2, foreach=foreach)
        for k in range(6):
            opt.zero_grad()
            model().backward()
            if k < 2:
                model.fc2.weight.grad = None
            opt.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-13, atol=1e-15)


def test_sparse_gradients_rejected() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = CoRe([p])
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="CoRe does not support sparse gradients"):
        opt.step()
