"""MARS-AdamW (approximate) against the paper's equations (numpy, by hand), torch's AdamW and pytorch-optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.optim._mars import MARS
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


def numpy_mars(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.95, 0.99),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    gamma: float = 0.025,
    first_correction: bool = True,
) -> list[np.ndarray]:
    """MARS-AdamW, approximate form (paper Algorithm 2 with the previous step's gradient), in plain numpy.

    ``first_correction=False`` is the other reading of the first step (x_1 = x_0: no correction at t = 1).
    """
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        g_prev = np.zeros_like(theta)
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i].astype(np.float64)
            if t == 1 and not first_correction:
                c = g.copy()
            else:
                c = g + gamma * beta1 / (1.0 - beta1) * (g - g_prev)
            norm = np.sqrt(np.sum(c * c))
            if norm > 1.0:
                c = c / norm
            m = beta1 * m + (1.0 - beta1) * c
            v = beta2 * v + (1.0 - beta2) * c * c
            m_hat = m / (1.0 - beta1**t)
            v_hat = v / (1.0 - beta2**t)
            theta = theta - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * theta)
            g_prev = g
        out.append(theta)
    return out


_SHAPES = [(2, 3), (3,), (4,)]
_SCALES = [0.1, 3.0, 0.45]  # ||c|| < 1 (no clip), > 1 (clipped), around 1 (clipped at some steps only)


def _fixture(steps: int = 3, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[scale * rng.normal(size=s) for s, scale in zip(_SHAPES, _SCALES)] for _ in range(steps)]
    return theta0, grads


def _clip_pattern(grads: list[list[np.ndarray]], gamma: float, beta1: float) -> list[list[bool]]:
    k = gamma * beta1 / (1 - beta1)
    prev = [np.zeros_like(g) for g in grads[0]]
    pattern = []
    for step in grads:
        pattern.append([bool(np.linalg.norm(g + k * (g - p)) > 1) for g, p in zip(step, prev)])
        prev = step
    return pattern


# --------------------------------------------------------------------------------------------------- reference


REFERENCE_SETTINGS = [
    pytest.param({"lr": 0.1}, id="defaults"),
    pytest.param({"lr": 0.05, "betas": (0.8, 0.9)}, id="betas"),
    pytest.param({"lr": 0.1, "gamma": 0.5}, id="large-gamma"),
    pytest.param({"lr": 0.1, "gamma": 0.0}, id="no-correction"),
    # a large eps pins where it goes: sqrt(v_hat) + eps, not sqrt(v) + eps
    pytest.param({"lr": 0.1, "eps": 0.05}, id="large-eps"),
    pytest.param({"lr": 0.1, "weight_decay": 0.3}, id="weight-decay"),
]


def test_fixture_exercises_both_sides_of_the_clip() -> None:
    theta0, grads = _fixture()
    pattern = np.array(_clip_pattern(grads, 0.025, 0.95))
    assert not pattern[:, 0].any() and pattern[:, 1].all()
    assert pattern[:, 2].any() and not pattern[:, 2].all()


@FOREACH
@pytest.mark.parametrize("setting", REFERENCE_SETTINGS)
def test_matches_paper_equations(setting: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _fixture()
    expected = numpy_mars(theta0, grads, **setting)
    actual = _run_torch(lambda ps: MARS(ps, foreach=foreach, **setting), theta0, grads)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


@FOREACH
def test_first_step_uses_a_zero_previous_gradient(foreach: bool) -> None:
    """The authors' reference starts from ``last_grad = 0`` (c_1 = (1 + gamma beta1/(1-beta1)) g_1); the
    x_1 = x_0 reading of the paper's Algorithm 1 (c_1 = g_1) gives a different first step for a tensor whose
    ``c`` is not clipped, and the same step for a clipped one."""
    theta0, grads = _fixture()
    lr, gamma = 0.1, 0.5
    ours = _run_torch(lambda ps: MARS(ps, lr=lr, gamma=gamma, eps=0.05, foreach=foreach), theta0, grads[:1])
    ref = numpy_mars(theta0, grads[:1], lr=lr, gamma=gamma, eps=0.05)
    other = numpy_mars(theta0, grads[:1], lr=lr, gamma=gamma, eps=0.05, first_correction=False)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12)
    assert not np.allclose(ours[0], other[0], rtol=1e-6, atol=0)  # unclipped: the readings differ
    np.testing.assert_allclose(ours[1], other[1], rtol=1e-12)  # clipped: both are g / ||g||


@FOREACH
def test_clipped_correction_has_unit_norm(foreach: bool) -> None:
    """After one step m_1 = (1 - beta1) c_1 with c_1 = g_1 (1 + k) / max(||g_1 (1 + k)||, 1)."""
    beta1 = 0.9
    p = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    q = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = MARS([p, q], lr=0.1, betas=(beta1, 0.99), gamma=0.1, foreach=foreach)
    p.grad = torch.full((5,), 10.0, dtype=torch.float64)
    q.grad = torch.full((5,), 0.01, dtype=torch.float64)
    opt.step()
    k = 0.1 * beta1 / (1 - beta1)
    torch.testing.assert_close(float(torch.linalg.vector_norm(opt.state[p]["exp_avg"])), 1 - beta1)
    torch.testing.assert_close(opt.state[q]["exp_avg"], (1 - beta1) * (1 + k) * q.grad)
    # the previous-gradient buffers hold the raw gradients afterwards
    torch.testing.assert_close(opt.state[p]["previous_grad"], p.grad, rtol=0, atol=0)
    torch.testing.assert_close(opt.state[q]["previous_grad"], q.grad, rtol=0, atol=0)


@FOREACH
def test_no_correction_is_adamw_on_small_gradients(foreach: bool) -> None:
    """With gamma = 0 and every gradient norm below 1 (no clip), MARS is torch's AdamW (eps is placed the
    same way, decoupled decay multiplied by lr; checked with a large eps)."""
    torch.manual_seed(0)
    shapes = [(3, 4), (4,)]
    theta0 = [torch.randn(s, dtype=torch.float64) for s in shapes]
    grads = [[0.1 * torch.randn(s, dtype=torch.float64) for s in shapes] for _ in range(15)]
    kwargs = {"lr": 0.05, "betas": (0.9, 0.95), "eps": 0.01, "weight_decay": 0.2}
    finals = []
    for build in (
        lambda ps: torch.optim.AdamW(ps, **kwargs),  # type: ignore[arg-type]
        lambda ps: MARS(ps, gamma=0.0, foreach=foreach, **kwargs),  # type: ignore[arg-type]
    ):
        params = [torch.nn.Parameter(t.clone()) for t in theta0]
        opt = build(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        finals.append(torch.cat([p.detach().reshape(-1) for p in params]))
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-12, atol=1e-14)


@FOREACH
def test_previous_gradient_is_a_copy_when_grads_are_reused_in_place(foreach: bool) -> None:
    """``zero_grad(set_to_none=False)`` reuses each ``p.grad`` tensor. A stored reference (the authors'
    approximate form keeps ``last_grad = grad``) would then equal the new gradient and cancel the correction;
    the copy gives the same trajectory as fresh gradient tensors. ``p.grad`` itself is never modified."""
    results = []
    for set_to_none in (True, False):
        model = SmallRegression()
        opt = MARS(model.parameters(), lr=0.01, weight_decay=0.1, gamma=0.2, foreach=foreach)
        for _ in range(10):
            opt.zero_grad(set_to_none=set_to_none)
            model().backward()
            grads_before = [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]
            opt.step()
            for p, g in zip(model.parameters(), grads_before):
                assert torch.equal(p.grad, g), "p.grad was modified"  # type: ignore[arg-type]
                assert opt.state[p]["previous_grad"].data_ptr() != p.grad.data_ptr()  # type: ignore[union-attr]
        results.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="^MARS does not support sparse gradients$"):
        MARS([p]).step()


def test_params_added_later_use_their_own_step_count() -> None:
    """Bias corrections and g_0 = 0 are per parameter: a parameter starting late gets t = 1 (foreach ==
    single tensor), and matches the reference from its own first step."""
    finals = []
    for foreach in (False, True):
        torch.manual_seed(0)
        a = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        b = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        opt = MARS([a, b], lr=0.1, foreach=foreach)
        for k in range(4):
            a.grad = torch.full_like(a, 0.1 * (k + 1))
            b.grad = None if k < 2 else torch.full_like(b, -0.2 * k)
            opt.step()
        assert opt.state[a]["step"] == 4 and opt.state[b]["step"] == 2
        finals.append(torch.cat([a.detach(), b.detach()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-14, atol=0)
    torch.manual_seed(0)
    torch.randn(4, dtype=torch.float64)
    b0 = torch.randn(4, dtype=torch.float64).numpy()
    ref = numpy_mars([b0], [[np.full(4, -0.4)], [np.full(4, -0.6)]], lr=0.1)[0]
    np.testing.assert_allclose(finals[0][4:].numpy(), ref, rtol=1e-12)


@FOREACH
def test_bfloat16_parameters_keep_bfloat16_state(foreach: bool) -> None:
    """Precision: the state follows the parameter's dtype (documented), and bfloat16 steps run and descend."""
    model = SmallRegression(dtype=torch.bfloat16)
    opt = MARS(model.parameters(), lr=0.01, weight_decay=0.01, foreach=foreach)
    first = float(model().detach())
    for _ in range(5):
        opt.zero_grad()
        model().backward()
        opt.step()
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    for state in opt.state.values():
        assert state["step"] == 5
        for key in ("exp_avg", "exp_avg_sq", "previous_grad"):
            assert state[key].dtype == torch.bfloat16, key
    assert math.isfinite(float(model().detach())) and float(model().detach()) < first


# --------------------------------------------------------------------------------------------------- differential


def _train(
    opt_factory: Callable[[Any], torch.optim.Optimizer],
    steps: int = 20,
    eps_schedule: Callable[[int], float] | None = None,
    loss_scale: float = 1.0,
) -> torch.Tensor:
    model = SmallRegression()
    opt = opt_factory(model)
    for t in range(1, steps + 1):
        if eps_schedule is not None:
            for group in opt.param_groups:
                group["eps"] = eps_schedule(t)
        opt.zero_grad(set_to_none=True)
        (loss_scale * model()).backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@FOREACH
@pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["no-wd", "wd"])
@pytest.mark.parametrize("loss_scale", [1.0, 30.0], ids=["unclipped", "clipped"])
def test_matches_pytorch_optimizer(weight_decay: float, loss_scale: float, foreach: bool) -> None:
    """pytorch-optimizer's ``MARS`` with ``mars_type='adamw'`` and ``optimize_1d=True`` (MARS on every tensor,
    as here), ``g_0 = 0`` like us, decoupled decay (``weight_decouple=True``, ``fixed_decay=False``). Its eps is
    ``sqrt(v + 1e-15) + eps`` with the bias corrections folded into the step; with ``eps=0`` that is our update
    up to the 1e-15 (hence the tolerance; a wrong update is off by far more, see the eps test below). The
    loss is scaled up in one case so that every tensor's ``c`` is clipped."""
    po = pytest.importorskip("pytorch_optimizer")
    common: dict[str, Any] = {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": weight_decay, "eps": 0.0, "gamma": 0.1}
    theirs = _train(
        lambda m: po.MARS(
            m.parameters(), mars_type="adamw", optimize_1d=True, weight_decouple=True, foreach=foreach, **common
        ),
        loss_scale=loss_scale,
    )
    ours = _train(lambda m: MARS(m.parameters(), foreach=foreach, **common), loss_scale=loss_scale)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)


@FOREACH
def test_pytorch_optimizer_eps_is_ours_times_sqrt_bias_correction(foreach: bool) -> None:
    """With eps > 0 the libraries differ in exactly the documented way: their ``eps`` at step t equals our
    ``eps / sqrt(1 - beta2^t)``; with the same constant eps the trajectories differ."""
    po = pytest.importorskip("pytorch_optimizer")
    eps, beta2 = 1e-3, 0.99
    common: dict[str, Any] = {"lr": 0.01, "betas": (0.9, beta2), "eps": eps, "gamma": 0.1}
    theirs = _train(lambda m: po.MARS(m.parameters(), optimize_1d=True, foreach=foreach, **common))
    mapped = _train(
        lambda m: MARS(m.parameters(), foreach=foreach, **common), eps_schedule=lambda t: eps / math.sqrt(1 - beta2**t)
    )
    same_eps = _train(lambda m: MARS(m.parameters(), foreach=foreach, **common))
    torch.testing.assert_close(mapped, theirs, rtol=1e-6, atol=1e-8)
    assert (same_eps - theirs).abs().max() > 1e-5


def test_pytorch_optimizer_default_split_is_a_gamma_zero_group() -> None:
    """pytorch-optimizer's (and the authors') default ``optimize_1d=False`` gives 1-D tensors plain AdamW with
    ``lr_1d``, ``betas_1d`` and ``weight_decay_1d``. As documented, a param group with ``gamma=0`` and those
    values reproduces it while the 1-D gradients have norm at most 1 (checked below), so the clip is
    inactive; a ``gamma > 0`` group for them does not."""
    po = pytest.importorskip("pytorch_optimizer")
    lr, lr_1d, eps = 0.01, 0.004, 0.0

    def split(model: SmallRegression, gamma_1d: float) -> MARS:
        matrices = [p for p in model.parameters() if p.ndim >= 2]
        vectors = [p for p in model.parameters() if p.ndim < 2]
        groups: list[dict[str, Any]] = [
            {"params": matrices},
            {"params": vectors, "lr": lr_1d, "betas": (0.9, 0.95), "weight_decay": 0.1, "gamma": gamma_1d},
        ]
        return MARS(groups, lr=lr, eps=eps, gamma=0.025)

    norms: list[float] = []

    def record(model: SmallRegression) -> torch.optim.Optimizer:
        opt = split(model, 0.0)
        opt.register_step_pre_hook(
            lambda o, *_: norms.extend(float(p.grad.norm()) for g in o.param_groups[1:] for p in g["params"])
        )
        return opt

    scale = 0.25  # keeps every 1-D gradient norm below 1 on this problem (at scale 1 some reach 1.75)
    theirs = _train(lambda m: po.MARS(m.parameters(), lr=lr, lr_1d=lr_1d, eps=eps), loss_scale=scale)
    ours = _train(record, loss_scale=scale)
    assert max(norms) <= 1.0
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)
    corrected = _train(lambda m: split(m, 0.025), loss_scale=scale)
    assert (corrected - theirs).abs().max() > 1e-5
