"""AdEMAMix against the paper's equations (numpy, by hand), its schedulers, torch's AdamW and pytorch-optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.optim._ademamix import AdEMAMix, alpha_schedule, beta3_schedule
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


def _half_life(beta: float) -> float:
    return math.log(0.5) / math.log(beta)


def numpy_alpha(t: int, alpha: float, t_alpha: int | None) -> float:
    return alpha if t_alpha is None else min(t * alpha / t_alpha, alpha)


def numpy_beta3(t: int, beta1: float, beta3: float, t_beta3: int | None) -> float:
    """The paper's scheduler written as its Section 3 motivates it: the half-life of the slow EMA grows
    linearly from beta1's to beta3's over T_beta3 steps (beta = 0.5 ** (1 / half-life))."""
    if t_beta3 is None or t >= t_beta3:
        return beta3
    a = t / t_beta3
    half_life = (1 - a) * _half_life(beta1) + a * _half_life(beta3)
    return min(0.5 ** (1.0 / half_life), beta3)


def numpy_ademamix(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
    alpha: float = 5.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    t_alpha: int | None = None,
    t_beta3: int | None = None,
) -> list[np.ndarray]:
    """The paper's Algorithm 1, written out in plain numpy."""
    beta1, beta2, beta3 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m1 = np.zeros_like(theta)
        m2 = np.zeros_like(theta)
        nu = np.zeros_like(theta)
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i].astype(np.float64)
            alpha_t = numpy_alpha(t, alpha, t_alpha)
            beta3_t = numpy_beta3(t, beta1, beta3, t_beta3)
            m1 = beta1 * m1 + (1 - beta1) * g
            m2 = beta3_t * m2 + (1 - beta3_t) * g
            nu = beta2 * nu + (1 - beta2) * g * g
            m1_hat = m1 / (1 - beta1**t)
            nu_hat = nu / (1 - beta2**t)
            theta = theta - lr * ((m1_hat + alpha_t * m2) / (np.sqrt(nu_hat) + eps) + weight_decay * theta)
        out.append(theta)
    return out


_SHAPES = [(2, 3), (3,)]


def _fixture(steps: int = 3, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    grads[2][1][2] = 0.0
    return theta0, grads


# --------------------------------------------------------------------------------------------------- reference


REFERENCE_SETTINGS = [
    pytest.param({"lr": 0.1}, id="defaults"),
    pytest.param({"lr": 0.05, "betas": (0.5, 0.8, 0.95), "alpha": 2.0}, id="betas"),
    # the warm-ups end inside the three steps: t = 1, 2 are warming, t = 3 is past T
    pytest.param({"lr": 0.1, "betas": (0.8, 0.9, 0.99), "t_alpha": 2, "t_beta3": 3}, id="warmup"),
    pytest.param({"lr": 0.1, "t_alpha": 50, "t_beta3": 50}, id="long-warmup"),
    # a large eps pins where it goes: sqrt(nu_hat) + eps, not sqrt(nu) + eps
    pytest.param({"lr": 0.1, "eps": 0.3}, id="large-eps"),
    pytest.param({"lr": 0.1, "weight_decay": 0.2, "t_alpha": 4, "t_beta3": 4}, id="weight-decay"),
]


@FOREACH
@pytest.mark.parametrize("setting", REFERENCE_SETTINGS)
def test_matches_paper_equations(setting: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _fixture()
    expected = numpy_ademamix(theta0, grads, **setting)
    actual = _run_torch(lambda ps: AdEMAMix(ps, foreach=foreach, **setting), theta0, grads)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


@FOREACH
def test_slow_ema_is_not_bias_corrected(foreach: bool) -> None:
    """After one step without warm-up m2 = (1 - beta3) g, and the numerator is m1_hat + alpha m2 =
    (1 + alpha (1 - beta3)) g; a bias-corrected m2 would make it (1 + alpha) g."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = AdEMAMix([p], lr=0.1, betas=(0.9, 0.999, 0.99), alpha=5.0, eps=0.0, foreach=foreach)
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(opt.state[p]["exp_avg_slow"], 0.01 * g)
    # m1_hat = g, nu_hat = g^2: the step is -lr * (1 + alpha (1 - beta3)) sign(g)
    torch.testing.assert_close(p.detach(), -0.1 * (1 + 5.0 * 0.01) * torch.sign(g))


# --------------------------------------------------------------------------------------------------- schedulers


def test_alpha_schedule_is_linear_then_constant() -> None:
    assert [alpha_schedule(t, 8.0, 4) for t in range(1, 7)] == [2.0, 4.0, 6.0, 8.0, 8.0, 8.0]
    assert alpha_schedule(1, 8.0, None) == 8.0


def test_beta3_schedule_matches_the_papers_closed_form_and_half_life() -> None:
    beta1, beta3, T = 0.9, 0.9999, 1000
    for t in (1, 10, 250, 500, 999):
        a = t / T
        closed = math.exp(math.log(beta1) * math.log(beta3) / ((1 - a) * math.log(beta3) + a * math.log(beta1)))
        assert beta3_schedule(t, beta1, beta3, T) == pytest.approx(min(closed, beta3), rel=1e-15)
        assert beta3_schedule(t, beta1, beta3, T) == pytest.approx(numpy_beta3(t, beta1, beta3, T), rel=1e-13)
        # the half-life grows linearly in t
        expected_half_life = (1 - a) * _half_life(beta1) + a * _half_life(beta3)
        assert _half_life(beta3_schedule(t, beta1, beta3, T)) == pytest.approx(expected_half_life, rel=1e-9)
    assert beta3_schedule(T, beta1, beta3, T) == beta3
    assert beta3_schedule(5 * T, beta1, beta3, T) == beta3
    assert beta3_schedule(1, beta1, beta3, None) == beta3
    # increasing from (just above) beta1 to beta3
    values = [beta3_schedule(t, beta1, beta3, T) for t in range(1, T + 1)]
    assert values[0] > beta1 and all(b <= c for b, c in zip(values, values[1:]))


def test_beta3_schedule_agrees_with_the_authors_half_life_form() -> None:
    """The authors' code interpolates ``log(0.5)/log(beta + 1e-8) - 1`` and inverts it with
    ``0.5 ** (1 / (h + 1))``: the same function without their 1e-8, which shifts the half-life of 0.9999 by a
    relative 1e-4 (beta3_t by at most ~3e-6)."""

    def authors(t: int, beta_end: float, beta_start: float, warmup: int, eps: float = 1e-8) -> float:
        def f(beta: float) -> float:
            return math.log(0.5) / math.log(beta + eps) - 1

        a = t / warmup
        return math.pow(0.5, 1 / ((1 - a) * f(beta_start) + a * f(beta_end) + 1))

    for t in (1, 37, 500, 999):
        ours = beta3_schedule(t, 0.9, 0.9999, 1000)
        assert ours == pytest.approx(authors(t, 0.9999, 0.9, 1000, eps=0.0), rel=1e-13)
        assert ours == pytest.approx(authors(t, 0.9999, 0.9, 1000), abs=5e-6)


def test_beta3_schedule_limits() -> None:
    # beta1 = 0 (log = -inf): the closed form tends to beta3 ** (T / t)
    assert beta3_schedule(25, 0.0, 0.99, 100) == pytest.approx(0.99**4, rel=1e-14)
    assert beta3_schedule(3, 0.9, 0.0, 10) == 0.0
    # beta3 below beta1: capped at beta3
    assert beta3_schedule(3, 0.99, 0.9, 10) == 0.9


@FOREACH
def test_warmup_uses_the_step_number_from_one(foreach: bool) -> None:
    """First update with T_alpha = T_beta3 = 2: alpha_1 = alpha / 2 and beta3_1 = the scheduler at t = 1
    (the authors' PyTorch code and pytorch-optimizer; their optax code would use alpha = 0, beta3 = beta1)."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = AdEMAMix([p], lr=0.1, betas=(0.9, 0.999, 0.999), alpha=4.0, eps=0.0, t_alpha=2, t_beta3=2, foreach=foreach)
    g = torch.tensor([2.0, -1.0], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    beta3_1 = numpy_beta3(1, 0.9, 0.999, 2)
    assert 0.9 < beta3_1 < 0.999
    torch.testing.assert_close(opt.state[p]["exp_avg_slow"], (1 - beta3_1) * g)
    torch.testing.assert_close(p.detach(), -0.1 * (1 + 2.0 * (1 - beta3_1)) * torch.sign(g))


# --------------------------------------------------------------------------------------------------- behaviour


@FOREACH
def test_alpha_zero_is_adamw(foreach: bool) -> None:
    """With alpha = 0 the slow EMA drops out and AdEMAMix is torch's AdamW (eps placed the same way,
    decoupled decay multiplied by lr; checked with a large eps)."""
    torch.manual_seed(0)
    shapes = [(3, 4), (4,)]
    theta0 = [torch.randn(s, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, dtype=torch.float64) for s in shapes] for _ in range(15)]
    finals = []
    for build in (
        lambda ps: torch.optim.AdamW(ps, lr=0.05, betas=(0.8, 0.95), eps=0.05, weight_decay=0.2),
        lambda ps: AdEMAMix(
            ps, lr=0.05, betas=(0.8, 0.95, 0.999), alpha=0.0, eps=0.05, weight_decay=0.2, foreach=foreach
        ),
    ):
        params = [torch.nn.Parameter(t.clone()) for t in theta0]
        opt = build(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        finals.append(torch.cat([p.detach().reshape(-1) for p in params]))
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-12, atol=1e-14)


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="^AdEMAMix does not support sparse gradients$"):
        AdEMAMix([p]).step()


def test_params_added_later_use_their_own_step_count() -> None:
    """Bias corrections and warm-ups are per parameter: a parameter starting late gets t = 1 (foreach ==
    single tensor, which then mixes tensors at different steps), and matches the reference."""
    kwargs = {"lr": 0.1, "t_alpha": 3, "t_beta3": 3}
    finals = []
    for foreach in (False, True):
        torch.manual_seed(0)
        a = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        b = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        opt = AdEMAMix([a, b], foreach=foreach, **kwargs)  # type: ignore[arg-type]
        for k in range(4):
            a.grad = torch.full_like(a, 0.1 * (k + 1))
            b.grad = None if k < 2 else torch.full_like(b, -0.2 * k)
            opt.step()
        assert opt.state[a]["step"] == 4 and opt.state[b]["step"] == 2
        finals.append(torch.cat([a.detach(), b.detach()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-14, atol=0)
    torch.manual_seed(0)
    a0 = torch.randn(4, dtype=torch.float64).numpy()
    b0 = torch.randn(4, dtype=torch.float64).numpy()
    ref_a = numpy_ademamix([a0], [[np.full(4, 0.1 * (k + 1))] for k in range(4)], **kwargs)[0]  # type: ignore[arg-type]
    ref_b = numpy_ademamix([b0], [[np.full(4, -0.4)], [np.full(4, -0.6)]], **kwargs)[0]  # type: ignore[arg-type]
    np.testing.assert_allclose(finals[0].numpy(), np.concatenate([ref_a, ref_b]), rtol=1e-12)


@FOREACH
def test_bfloat16_parameters_keep_bfloat16_state(foreach: bool) -> None:
    """Precision: the state follows the parameter's dtype (documented), and bfloat16 steps run and descend."""
    model = SmallRegression(dtype=torch.bfloat16)
    opt = AdEMAMix(model.parameters(), lr=0.01, t_alpha=10, t_beta3=10, foreach=foreach)
    first = float(model().detach())
    for _ in range(5):
        opt.zero_grad()
        model().backward()
        opt.step()
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    for state in opt.state.values():
        assert state["step"] == 5
        for key in ("exp_avg", "exp_avg_slow", "exp_avg_sq"):
            assert state[key].dtype == torch.bfloat16, key
        assert state["exp_avg_slow"].abs().sum() > 0
    assert math.isfinite(float(model().detach())) and float(model().detach()) < first


# --------------------------------------------------------------------------------------------------- differential


def _train(
    opt_factory: Callable[[Any], torch.optim.Optimizer],
    steps: int = 20,
    l2: float = 0.0,
) -> torch.Tensor:
    """SmallRegression for ``steps`` steps; ``l2`` adds ``l2 * theta`` to every gradient before the step."""
    model = SmallRegression()
    opt = opt_factory(model.parameters())
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        model().backward()
        if l2:
            with torch.no_grad():
                for p in model.parameters():
                    p.grad.add_(p, alpha=l2)  # type: ignore[union-attr]
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@FOREACH
@pytest.mark.parametrize(
    "setting",
    [
        pytest.param({}, id="no-warmup"),
        pytest.param({"t": 8}, id="warmup-ends"),
        pytest.param({"t": 50, "weight_decay": 0.1}, id="warmup-wd"),
        pytest.param({"eps": 1e-3}, id="eps"),
    ],
)
def test_matches_pytorch_optimizer(setting: dict[str, Any], foreach: bool) -> None:
    """pytorch-optimizer's ``AdEMAMix`` with ``weight_decouple=True`` (decoupled decay as in the paper) and one
    warm-up length ``t_alpha_beta3`` for both schedules. It places eps as the paper does and uses the same
    closed-form schedulers at t counted from 1, so the trajectories agree to rounding."""
    po = pytest.importorskip("pytorch_optimizer")
    t = setting.get("t")
    common: dict[str, Any] = {
        "lr": 0.01,
        "betas": (0.9, 0.99, 0.999),
        "alpha": 5.0,
        "eps": setting.get("eps", 1e-8),
        "weight_decay": setting.get("weight_decay", 0.0),
    }
    theirs = _train(lambda ps: po.AdEMAMix(ps, weight_decouple=True, t_alpha_beta3=t, foreach=foreach, **common))
    ours = _train(lambda ps: AdEMAMix(ps, t_alpha=t, t_beta3=t, foreach=foreach, **common))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_pytorch_optimizer_default_decay_is_l2() -> None:
    """pytorch-optimizer's default ``weight_decouple=False`` adds ``lambda theta`` to the gradient (L2), a
    different method: its trajectory equals ours without decay fed the L2-regularised gradient, and differs
    from ours with the paper's decoupled decay."""
    po = pytest.importorskip("pytorch_optimizer")
    wd = 0.1
    common: dict[str, Any] = {"lr": 0.01, "betas": (0.9, 0.99, 0.999), "alpha": 5.0}
    theirs = _train(lambda ps: po.AdEMAMix(ps, weight_decay=wd, t_alpha_beta3=10, **common))
    ours_l2 = _train(lambda ps: AdEMAMix(ps, t_alpha=10, t_beta3=10, **common), l2=wd)
    ours_decoupled = _train(lambda ps: AdEMAMix(ps, weight_decay=wd, t_alpha=10, t_beta3=10, **common))
    torch.testing.assert_close(ours_l2, theirs, rtol=1e-10, atol=1e-12)
    assert (ours_decoupled - theirs).abs().max() > 1e-5
