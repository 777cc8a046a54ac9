"""diffGrad against the paper's equations (numpy, by hand), torch's Adam, pytorch-optimizer and torch-optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.optim._diffgrad import DiffGrad
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


def numpy_diffgrad(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> list[np.ndarray]:
    """The paper's update (Eq. 20 with the Adam moments of Eqs. 11-13), written out in plain numpy."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        g_prev = np.zeros_like(theta)  # g_0 = 0
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i].astype(np.float64).copy()
            if weight_decay:
                if decoupled:
                    theta = theta * (1.0 - lr * weight_decay)
                else:
                    g = g + weight_decay * theta
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * g * g
            m_hat = m / (1.0 - beta1**t)
            v_hat = v / (1.0 - beta2**t)
            xi = 1.0 / (1.0 + np.exp(-np.abs(g_prev - g)))
            theta = theta - lr * xi * m_hat / (np.sqrt(v_hat) + eps)
            g_prev = g
        out.append(theta)
    return out


_SHAPES = [(2, 3), (3,)]


def _fixture(steps: int = 3, seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    # an unchanged coordinate (xi = 1/2 exactly) and a zero gradient coordinate
    grads[1][0][0, 0] = grads[0][0][0, 0]
    grads[2][1][2] = 0.0
    return theta0, grads


# --------------------------------------------------------------------------------------------------- reference


REFERENCE_SETTINGS = [
    pytest.param({"lr": 0.1}, id="defaults"),
    pytest.param({"lr": 0.05, "betas": (0.5, 0.8)}, id="betas"),
    # a large eps pins where it goes: sqrt(v_hat) + eps, not sqrt(v) + eps
    pytest.param({"lr": 0.1, "eps": 0.3}, id="large-eps"),
    pytest.param({"lr": 0.1, "weight_decay": 0.2}, id="l2"),
    pytest.param({"lr": 0.1, "weight_decay": 0.2, "decoupled": True}, id="decoupled"),
]


@FOREACH
@pytest.mark.parametrize("setting", REFERENCE_SETTINGS)
def test_matches_paper_equations(setting: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _fixture()
    kwargs = dict(setting)
    decoupled = kwargs.pop("decoupled", False)
    expected = numpy_diffgrad(theta0, grads, decoupled=decoupled, **kwargs)
    actual = _run_torch(
        lambda ps: DiffGrad(ps, decoupled_weight_decay=decoupled, foreach=foreach, **kwargs), theta0, grads
    )
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


@FOREACH
def test_reference_detects_a_wrong_eps_placement(foreach: bool) -> None:
    """The large-eps case tells the paper's placement from Adam's 'efficient' one (the test can fail)."""
    theta0, grads = _fixture()
    lr, eps, beta2 = 0.1, 0.3, 0.999
    # eps outside sqrt(v) with the bias correction in the step size == eps / sqrt(1 - beta2^t) outside sqrt(v_hat)
    efficient = numpy_diffgrad(theta0, grads[:1], lr=lr, eps=eps / math.sqrt(1 - beta2))
    paper = numpy_diffgrad(theta0, grads[:1], lr=lr, eps=eps)
    ours = _run_torch(lambda ps: DiffGrad(ps, lr=lr, eps=eps, foreach=foreach), theta0, grads[:1])
    np.testing.assert_allclose(ours[0], paper[0], rtol=1e-12)
    assert not np.allclose(ours[0], efficient[0], rtol=1e-6, atol=0)


# --------------------------------------------------------------------------------------------------- friction


@FOREACH
def test_constant_gradient_halves_adams_step(foreach: bool) -> None:
    """With a constant gradient, xi_1 = sigmoid(|g|) (g_0 = 0) and xi_t = 1/2 afterwards: each diffGrad step is
    that multiple of torch's Adam step (same moments, eps placed the same way; checked with a large eps)."""
    g = torch.tensor([0.3, -2.0, 0.0, 5.0], dtype=torch.float64)
    kwargs = {"lr": 0.1, "betas": (0.8, 0.9), "eps": 0.05}
    p_adam = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    p_diff = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    adam = torch.optim.Adam([p_adam], **kwargs)  # type: ignore[arg-type]
    diff = DiffGrad([p_diff], foreach=foreach, **kwargs)  # type: ignore[arg-type]
    for t in range(1, 5):
        before_adam, before_diff = p_adam.detach().clone(), p_diff.detach().clone()
        p_adam.grad, p_diff.grad = g.clone(), g.clone()
        adam.step()
        diff.step()
        xi = torch.sigmoid(g.abs()) if t == 1 else torch.full_like(g, 0.5)
        torch.testing.assert_close(p_diff.detach() - before_diff, xi * (p_adam.detach() - before_adam))


@FOREACH
def test_previous_gradient_is_a_copy_when_grads_are_reused_in_place(foreach: bool) -> None:
    """``zero_grad(set_to_none=False)`` reuses each ``p.grad`` tensor. A stored reference (the authors' first
    code) would then equal the new gradient and force xi = 1/2; the copy gives the same trajectory as fresh
    gradient tensors. ``p.grad`` itself is never modified (not even by the L2 weight decay)."""
    results = []
    for set_to_none in (True, False):
        model = SmallRegression()
        opt = DiffGrad(model.parameters(), lr=0.01, weight_decay=0.1, foreach=foreach)
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


def test_previous_gradient_holds_the_regularised_gradient() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = DiffGrad([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.tensor([0.25, 0.5], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(opt.state[p]["previous_grad"], torch.tensor([0.75, -0.5], dtype=torch.float64))
    assert opt.state[p]["step"] == 1


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="^DiffGrad does not support sparse gradients$"):
        DiffGrad([p]).step()


def test_params_added_later_use_their_own_step_count() -> None:
    """Bias corrections are per parameter: a parameter starting late gets t = 1 (foreach == single tensor)."""
    finals = []
    for foreach in (False, True):
        torch.manual_seed(0)
        a = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        b = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
        opt = DiffGrad([a, b], lr=0.1, foreach=foreach)
        for k in range(4):
            a.grad = torch.full_like(a, 0.1 * (k + 1))
            b.grad = None if k < 2 else torch.full_like(b, -0.2 * k)
            opt.step()
        assert opt.state[a]["step"] == 4 and opt.state[b]["step"] == 2
        finals.append(torch.cat([a.detach(), b.detach()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-14, atol=0)
    # b's two steps match the reference from its initial value with gradients -0.4 and -0.6
    torch.manual_seed(0)
    torch.randn(4, dtype=torch.float64)
    b0 = torch.randn(4, dtype=torch.float64).numpy()
    ref = numpy_diffgrad([b0], [[np.full(4, -0.4)], [np.full(4, -0.6)]], lr=0.1)[0]
    np.testing.assert_allclose(finals[0][4:].numpy(), ref, rtol=1e-12)


# --------------------------------------------------------------------------------------------------- differential


def _train(
    opt_factory: Callable[[Any], torch.optim.Optimizer],
    steps: int = 20,
    eps_schedule: Callable[[int], float] | None = None,
    set_to_none: bool = True,
) -> torch.Tensor:
    model = SmallRegression()
    opt = opt_factory(model.parameters())
    for t in range(1, steps + 1):
        if eps_schedule is not None:
            for group in opt.param_groups:
                group["eps"] = eps_schedule(t)
        opt.zero_grad(set_to_none=set_to_none)
        model().backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@FOREACH
@pytest.mark.parametrize(
    "weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)], ids=["no-wd", "l2", "decoupled"]
)
def test_matches_pytorch_optimizer(weight_decay: float, decoupled: bool, foreach: bool) -> None:
    """pytorch-optimizer's ``DiffGrad`` (copies the previous gradient correctly) with ``rectify=False``,
    ``ams_bound=False``, ``weight_decouple=decoupled``. It puts eps as ``sqrt(v + 1e-15) + eps`` with the bias
    correction in the step size; with ``eps=0`` that is our update up to the 1e-15 (which moves coordinates
    whose ``v`` is tiny by ~1e-8 relative: hence the tolerance; a wrong update is off by >1e-3)."""
    po = pytest.importorskip("pytorch_optimizer")
    common = {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": weight_decay, "eps": 0.0}
    theirs = _train(
        lambda ps: po.DiffGrad(
            ps, rectify=False, ams_bound=False, weight_decouple=decoupled, fixed_decay=False, foreach=foreach, **common
        )
    )
    ours = _train(lambda ps: DiffGrad(ps, decoupled_weight_decay=decoupled, foreach=foreach, **common))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)


@FOREACH
def test_pytorch_optimizer_eps_is_ours_divided_by_sqrt_bias_correction(foreach: bool) -> None:
    """With eps > 0 the libraries differ in exactly the documented way: their ``eps`` equals our
    ``eps / sqrt(1 - beta2^t)`` at step t; with the same constant eps the trajectories differ."""
    po = pytest.importorskip("pytorch_optimizer")
    eps, beta2 = 1e-3, 0.99
    common = {"lr": 0.01, "betas": (0.9, beta2), "eps": eps}
    theirs = _train(lambda ps: po.DiffGrad(ps, weight_decouple=False, foreach=foreach, **common))
    mapped = _train(
        lambda ps: DiffGrad(ps, foreach=foreach, **common), eps_schedule=lambda t: eps / math.sqrt(1 - beta2**t)
    )
    same_eps = _train(lambda ps: DiffGrad(ps, foreach=foreach, **common))
    # the tolerance covers pytorch-optimizer's 1e-15 under the square root (see the test above)
    torch.testing.assert_close(mapped, theirs, rtol=1e-6, atol=1e-8)
    assert (same_eps - theirs).abs().max() > 1e-5


@pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["no-wd", "l2"])
def test_matches_torch_optimizer(weight_decay: float) -> None:
    """torch-optimizer's ``DiffGrad`` (L2 decay added to ``p.grad`` in place, eps as in the authors' code).

    Read in torch-optimizer 0.3.0: it stores ``previous_grad = grad.clone()``, so it does *not* alias the
    previous gradient to ``p.grad`` (the authors' first ``diffGrad.py`` did). We therefore compare directly,
    with the in-place gradient reuse of ``zero_grad(set_to_none=False)`` that would expose an alias, and map
    eps as in the pytorch-optimizer test (``eps=0`` here: exact)."""
    to = pytest.importorskip("torch_optimizer")
    common = {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": weight_decay, "eps": 0.0}
    theirs = _train(lambda ps: to.DiffGrad(ps, **common), set_to_none=False)
    ours = _train(lambda ps: DiffGrad(ps, **common), set_to_none=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_torch_optimizer_eps_mapping() -> None:
    to = pytest.importorskip("torch_optimizer")
    eps, beta2 = 1e-3, 0.99
    common = {"lr": 0.01, "betas": (0.9, beta2), "eps": eps}
    theirs = _train(lambda ps: to.DiffGrad(ps, **common))
    mapped = _train(lambda ps: DiffGrad(ps, **common), eps_schedule=lambda t: eps / math.sqrt(1 - beta2**t))
    torch.testing.assert_close(mapped, theirs, rtol=1e-10, atol=1e-12)


def test_an_aliased_previous_gradient_would_be_detected() -> None:
    """Sanity check of the comparison above: forcing xi = 1/2 (what an alias does from step 2 on) moves the
    trajectory far beyond the tolerance used, so a library that aliased would fail it."""
    to = pytest.importorskip("torch_optimizer")

    class HalfFriction(DiffGrad):
        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    if p.grad is not None and state:
                        state["previous_grad"].copy_(p.grad)  # g_{t-1} := g_t, so xi = 1/2
            return super().step(closure)

    common = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 0.0}
    theirs = _train(lambda ps: to.DiffGrad(ps, **common), set_to_none=False)
    aliased = _train(lambda ps: HalfFriction(ps, **common), set_to_none=False)
    assert (aliased - theirs).abs().max() > 1e-4
