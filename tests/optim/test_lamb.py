"""LAMB and LARS against the papers' equations (numpy, by hand) and against pytorch-optimizer / torch-optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn.optim._lamb import LAMB, LARS
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])

# --------------------------------------------------------------------------------------------------- helpers


def _grad_sequence(shapes: Sequence[tuple[int, ...]], steps: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in shapes] for _ in range(steps)]


def _run_torch(
    opt_factory: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray | None]],
    lrs: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """Apply ``grads`` (``None``: no gradient that step) with fixed values set on ``p.grad``."""
    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = opt_factory(params)
    for k, step_grads in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[k]
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


def _assert_params(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], rtol: float = 1e-12) -> None:
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=1e-14)


# --------------------------------------------------------------------------------------------------- numpy LAMB


def numpy_lamb(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray | None]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    clamp_value: float | None = None,
    bias_correction: bool = True,
    step_scale: Callable[[int], float] | None = None,
    ratio_eps: float = 0.0,
    decoupled: bool = False,
) -> list[np.ndarray]:
    """Algorithm 2 of You et al. (ICLR 2020), tensor by tensor, written from the paper.

    The keyword-only knobs after ``bias_correction`` are *not* the paper: they reproduce the other libraries'
    documented deviations (a bias factor on the step, eps in the trust-ratio denominator, AdamW-style decay).
    """
    beta1, beta2 = betas
    theta = [t.copy() for t in theta0]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    steps = [0] * len(theta)
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            if g is None:
                continue
            steps[i] += 1
            t = steps[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            if bias_correction:
                m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            else:
                m_hat, v_hat = m[i], v[i]
            if decoupled:
                theta[i] = theta[i] * (1 - lr * weight_decay)
                r = m_hat / (np.sqrt(v_hat) + eps)
            else:
                r = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * theta[i]
            w_norm = np.linalg.norm(theta[i])
            phi = w_norm if clamp_value is None else min(w_norm, clamp_value)
            r_norm = np.linalg.norm(r)
            ratio = phi / (r_norm + ratio_eps) if phi > 0 and r_norm > 0 else 1.0
            step = lr * (step_scale(t) if step_scale is not None else 1.0)
            theta[i] = theta[i] - step * ratio * r
    return theta


_SHAPES = [(3, 4), (4,), (2, 2)]


def _lamb_theta0(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # a matrix with norm > 1 (so clamp_value=1 bites), a vector, and an all-zero tensor (trust ratio 1)
    return [2.0 * rng.normal(size=(3, 4)), rng.normal(size=(4,)), np.zeros((2, 2))]


LAMB_SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "bias_correction": False},
    {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-2, "weight_decay": 0.3, "clamp_value": 1.0},
    {"lr": 0.1, "weight_decay": 0.01, "clamp_value": 1.0, "bias_correction": False},
]


@FOREACH
@pytest.mark.parametrize("kwargs", LAMB_SETTINGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_lamb_reference_three_steps(kwargs: dict[str, Any], foreach: bool) -> None:
    theta0 = _lamb_theta0()
    grads = _grad_sequence(_SHAPES, 3, seed=1)
    expected = numpy_lamb(theta0, grads, **kwargs)
    actual = _run_torch(lambda p: LAMB(p, foreach=foreach, **kwargs), theta0, grads)
    _assert_params(actual, expected)
    # the zero tensor took a trust-ratio-1 (plain bias-corrected Adam-ratio) first step: it moved
    assert np.linalg.norm(actual[2]) > 0


@FOREACH
def test_lamb_zero_norm_edge_cases(foreach: bool) -> None:
    """``|theta| = 0`` and ``|r| = 0`` give ratio 1: a zero tensor with zero gradient stays exactly zero
    (no NaN from 0/0); a nonzero tensor with zero gradient and no decay stays put; a zero tensor whose first
    gradient arrives at step 2 moves by ``lr * r_2`` with the step-2 bias correction."""
    theta0 = [np.zeros(3), np.array([1.0, -2.0]), np.zeros(2)]
    grads = [
        [np.zeros(3), np.zeros(2), np.zeros(2)],
        [np.zeros(3), np.zeros(2), np.array([0.5, -1.5])],
        [np.zeros(3), np.zeros(2), np.array([0.1, 0.2])],
    ]
    kwargs = {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-3}
    expected = numpy_lamb(theta0, grads, **kwargs)
    actual = _run_torch(lambda p: LAMB(p, foreach=foreach, **kwargs), theta0, grads)
    _assert_params(actual, expected)
    assert np.array_equal(actual[0], np.zeros(3))
    assert np.array_equal(actual[1], theta0[1])
    # step 2 on the third tensor: theta was still 0, so theta_2 = -lr * m_hat / (sqrt(v_hat) + eps)
    g = grads[1][2]
    m_hat = (0.2 * g) / (1 - 0.8**2)
    v_hat = (0.1 * g * g) / (1 - 0.9**2)
    after_two = _run_torch(lambda p: LAMB(p, foreach=foreach, **kwargs), theta0, grads[:2])
    np.testing.assert_allclose(after_two[2], -0.1 * m_hat / (np.sqrt(v_hat) + 1e-3), rtol=1e-12)


@FOREACH
def test_lamb_parameters_with_different_step_counts(foreach: bool) -> None:
    """A parameter that gets its first gradient later has its own ``t`` (bias correction per tensor); the
    multi-tensor path then takes its per-tensor-coefficient branch."""
    theta0 = _lamb_theta0(3)
    grads: list[list[np.ndarray | None]] = [list(g) for g in _grad_sequence(_SHAPES, 4, seed=4)]
    grads[0][1] = None
    grads[0][2] = None
    grads[1][2] = None
    kwargs = {"lr": 0.05, "weight_decay": 0.05}
    expected = numpy_lamb(theta0, grads, **kwargs)
    actual = _run_torch(lambda p: LAMB(p, foreach=foreach, **kwargs), theta0, grads)
    _assert_params(actual, expected)


@FOREACH
def test_lamb_step_norm_is_lr_times_phi(foreach: bool) -> None:
    """The defining property: each nonzero tensor moves by exactly ``lr * min(|theta|, clamp)``."""
    theta0 = _lamb_theta0(5)[:2]
    grads = _grad_sequence(_SHAPES[:2], 1, seed=6)
    for clamp, lr in ((None, 0.03), (1.0, 0.07)):
        kwargs = {"lr": lr, "weight_decay": 0.2, "clamp_value": clamp, "foreach": foreach}
        after = _run_torch(lambda p, kw=kwargs: LAMB(p, **kw), theta0, grads)
        for before, new in zip(theta0, after):
            norm = np.linalg.norm(before)
            phi = norm if clamp is None else min(norm, clamp)
            np.testing.assert_allclose(np.linalg.norm(new - before), lr * phi, rtol=1e-12)


def test_lamb_foreach_groups_mixed_dtypes() -> None:
    """float32 and float64 tensors in one group: the multi-tensor path groups them and keeps each step count."""
    torch.manual_seed(0)
    results = []
    for foreach in (False, True):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(5, dtype=torch.float64))]
        opt = LAMB(params, lr=0.05, weight_decay=0.1, foreach=foreach)
        gen = torch.Generator().manual_seed(1)
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            opt.step()
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_lamb_sparse_gradient_rejected() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="^LAMB does not support sparse gradients$"):
        LAMB([p]).step()


# --------------------------------------------------------------------------------------------------- numpy LARS


def numpy_lars(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lrs: Sequence[float],
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    exclude_1d: bool = False,
    form: str = "paper",
) -> list[np.ndarray]:
    """LARS, tensor by tensor, from You, Gitman & Ginsburg (2017).

    ``form="paper"`` is Algorithm 1 verbatim: ``v <- m v + gamma_t * lambda * (g + beta w)``, ``w <- w - v``.
    ``form="torch"`` keeps ``gamma_t`` outside the buffer (``b <- m b + lambda (g + beta w)``,
    ``w <- w - gamma_t b``); ``form="nesterov"`` steps with ``d + m b`` instead of ``b`` (not in the paper).
    """
    theta = [t.copy() for t in theta0]
    buf = [np.zeros_like(t) for t in theta]
    for lr, step_grads in zip(lrs, grads):
        for i, g in enumerate(step_grads):
            if exclude_1d and theta[i].ndim <= 1:
                d = g
            else:
                w_norm, g_norm = np.linalg.norm(theta[i]), np.linalg.norm(g)
                denominator = g_norm + weight_decay * w_norm
                local = trust_coefficient * w_norm / denominator if w_norm > 0 and denominator > 0 else 1.0
                d = local * (g + weight_decay * theta[i])
            if form == "paper":
                buf[i] = momentum * buf[i] + lr * d
                theta[i] = theta[i] - buf[i]
            else:
                buf[i] = momentum * buf[i] + d
                step = d + momentum * buf[i] if form == "nesterov" else buf[i]
                theta[i] = theta[i] - lr * step
    return theta


def _lars_theta0() -> list[np.ndarray]:
    rng = np.random.default_rng(10)
    return [rng.normal(size=(3, 4)), rng.normal(size=(4,)), np.zeros((2, 2)), rng.normal(size=(2, 3))]


def _lars_grads(steps: int = 3) -> list[list[np.ndarray]]:
    grads = _grad_sequence([(3, 4), (4,), (2, 2), (2, 3)], steps, seed=11)
    for step_grads in grads:
        step_grads[3] = np.zeros((2, 3))  # |g| = 0 on a nonzero tensor: ratio eta/beta (or 1 when beta = 0)
    return grads


LARS_SETTINGS = [
    {"lr": 2.0, "exclude_1d": False},
    {"lr": 2.0, "weight_decay": 5e-4, "exclude_1d": False},
    {"lr": 0.5, "momentum": 0.5, "weight_decay": 0.1, "trust_coefficient": 0.02, "exclude_1d": True},
    {"lr": 0.3, "momentum": 0.0, "weight_decay": 0.01, "trust_coefficient": 0.1, "exclude_1d": False},
]


@FOREACH
@pytest.mark.parametrize("kwargs", LARS_SETTINGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_lars_reference_three_steps(kwargs: dict[str, Any], foreach: bool) -> None:
    """Algorithm 1 of the paper with a constant learning rate (so gamma inside or outside the buffer agree),
    including a zero tensor (ratio 1 at step 1) and a tensor with zero gradient."""
    theta0, grads = _lars_theta0(), _lars_grads()
    lr = kwargs["lr"]
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "lr"}
    expected = numpy_lars(theta0, grads, lrs=[lr] * 3, form="paper", **ref_kwargs)
    actual = _run_torch(lambda p: LARS(p, foreach=foreach, **kwargs), theta0, grads)
    _assert_params(actual, expected)
    assert all(np.isfinite(a).all() for a in actual)


@FOREACH
def test_lars_nesterov_reference(foreach: bool) -> None:
    theta0, grads = _lars_theta0(), _lars_grads()
    kwargs = {"momentum": 0.8, "weight_decay": 1e-3, "trust_coefficient": 0.01, "exclude_1d": True}
    expected = numpy_lars(theta0, grads, lrs=[1.5] * 3, form="nesterov", **kwargs)
    actual = _run_torch(lambda p: LARS(p, lr=1.5, nesterov=True, foreach=foreach, **kwargs), theta0, grads)
    _assert_params(actual, expected)


@FOREACH
def test_lars_learning_rate_change_rescales_the_buffer(foreach: bool) -> None:
    """Documented deviation: lr sits outside the momentum buffer (torch.optim.SGD convention). With a
    changing lr we follow that form exactly and differ from Algorithm 1's ``v <- m v + gamma_t ...``."""
    theta0, grads = _lars_theta0(), _lars_grads(4)
    lrs = [2.0, 2.0, 0.5, 0.5]
    kwargs = {"momentum": 0.9, "weight_decay": 1e-2, "exclude_1d": False}
    actual = _run_torch(lambda p: LARS(p, lr=lrs[0], foreach=foreach, **kwargs), theta0, grads, lrs=lrs)
    _assert_params(actual, numpy_lars(theta0, grads, lrs=lrs, form="torch", **kwargs))
    paper = numpy_lars(theta0, grads, lrs=lrs, form="paper", **kwargs)
    assert not np.allclose(actual[0], paper[0], rtol=1e-6, atol=0)


@FOREACH
def test_lars_exclude_1d_is_plain_momentum_sgd(foreach: bool) -> None:
    """With ``exclude_1d`` the vectors follow torch.optim.SGD (momentum, no weight decay) exactly on the same
    gradients, while the matrices are adapted (they differ from SGD)."""
    theta0, grads = _lars_theta0(), _lars_grads(4)
    kwargs = {"lr": 0.1, "momentum": 0.9}
    ours = _run_torch(lambda p: LARS(p, weight_decay=0.1, foreach=foreach, **kwargs), theta0, grads)
    sgd = _run_torch(lambda p: torch.optim.SGD(p, **kwargs), theta0, grads)
    for before, a, b in zip(theta0, ours, sgd):
        if before.ndim <= 1:
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
        else:
            assert not np.allclose(a, b)


@FOREACH
def test_lars_first_step_norm(foreach: bool) -> None:
    """Step 1 (momentum buffer empty) moves each tensor by ``lr * eta * |w| * |g + beta w| / (|g| + beta |w|)``."""
    theta0 = _lars_theta0()[:2]
    grads = _lars_grads(1)
    grads = [grads[0][:2]]
    lr, eta, beta = 3.0, 0.01, 0.2
    after = _run_torch(
        lambda p: LARS(p, lr=lr, trust_coefficient=eta, weight_decay=beta, exclude_1d=False, foreach=foreach),
        theta0,
        grads,
    )
    for before, g, new in zip(theta0, grads[0], after):
        w = np.linalg.norm(before)
        expected = lr * eta * w * np.linalg.norm(g + beta * before) / (np.linalg.norm(g) + beta * w)
        np.testing.assert_allclose(np.linalg.norm(new - before), expected, rtol=1e-12)


def test_lars_does_not_modify_gradients() -> None:
    model = SmallRegression()
    opt = LARS(model.parameters(), weight_decay=0.1, nesterov=True)
    model().backward()
    before = [p.grad.clone() for p in model.parameters()]
    opt.step()
    assert all(torch.equal(p.grad, b) for p, b in zip(model.parameters(), before))


def test_lars_sparse_gradient_rejected() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="^LARS does not support sparse gradients$"):
        LARS([p]).step()


# --------------------------------------------------------------------------------------------------- other libraries


def _trajectory(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    steps: int,
    before_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    for k in range(steps):
        opt.zero_grad()
        model().backward()
        if before_step is not None:
            before_step(k + 1)
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _big_regression() -> SmallRegression:
    """SmallRegression with fc1.weight scaled to norm > 10, so a clamp at 10 changes the update."""
    model = SmallRegression()
    with torch.no_grad():
        model.fc1.weight.mul_(5.0)
    assert float(model.fc1.weight.detach().norm()) > 10
    return model


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("clamp_value", [10.0, None])
def test_lamb_matches_torch_optimizer(weight_decay: float, clamp_value: float | None) -> None:
    """torch-optimizer's ``Lamb(debias=False)`` is the paper's v3 (no bias correction): our
    ``bias_correction=False`` with its clamp (``None`` <-> a clamp no norm reaches)."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    ours, theirs = _big_regression(), _big_regression()
    hp = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-6, "weight_decay": weight_decay}
    a = _trajectory(ours, LAMB(ours.parameters(), clamp_value=clamp_value, bias_correction=False, **hp), 20)
    their_clamp = 1e12 if clamp_value is None else clamp_value
    b = _trajectory(theirs, torch_optimizer.Lamb(theirs.parameters(), clamp_value=their_clamp, **hp), 20)
    torch.testing.assert_close(a, b)


def test_lamb_torch_optimizer_debias_scales_the_step_not_r() -> None:
    """Documented difference: torch-optimizer's ``debias=True`` multiplies the step by
    ``sqrt(1 - beta2^t) / (1 - beta1^t)`` *after* the trust ratio. Its trajectory equals ours without bias
    correction and with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, and differs from the paper's
    (our default) bias correction."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    beta1, beta2, lr = 0.9, 0.99, 0.01
    hp = {"betas": (beta1, beta2), "eps": 1e-6, "weight_decay": 0.05}
    theirs = _big_regression()
    b = _trajectory(theirs, torch_optimizer.Lamb(theirs.parameters(), lr=lr, debias=True, clamp_value=10, **hp), 20)

    ours = _big_regression()
    opt = LAMB(ours.parameters(), lr=lr, clamp_value=10.0, bias_correction=False, **hp)

    def set_lr(t: int) -> None:
        opt.param_groups[0]["lr"] = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)

    torch.testing.assert_close(_trajectory(ours, opt, 20, set_lr), b)
    paper = _big_regression()
    c = _trajectory(paper, LAMB(paper.parameters(), lr=lr, clamp_value=10.0, **hp), 20)
    assert not torch.allclose(b, c, rtol=1e-3, atol=0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_lamb_matches_pytorch_optimizer(weight_decay: float) -> None:
    """pytorch-optimizer's ``Lamb`` with ``weight_decouple=False`` (decay inside r, as the paper),
    ``adam_debias=True`` (step ``lr``, not ``lr / (1 - beta1^t)``) and ``eps=0`` (it also adds eps to
    ``|r|`` in the ratio) is our ``bias_correction=False, clamp_value=10, eps=0``."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    hp = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 0.0, "weight_decay": weight_decay}
    for foreach in (False, True):
        ours, theirs = _big_regression(), _big_regression()
        a = _trajectory(ours, LAMB(ours.parameters(), clamp_value=10.0, bias_correction=False, **hp), 20)
        opt = pytorch_optimizer.Lamb(
            theirs.parameters(), weight_decouple=False, adam_debias=True, foreach=foreach, **hp
        )
        b = _trajectory(theirs, opt, 20)
        torch.testing.assert_close(a, b)


def test_lamb_pytorch_optimizer_defaults_are_documented_deviations() -> None:
    """pytorch-optimizer's default ``Lamb`` equals the paper's v3 update plus three deviations, reproduced
    here in numpy: step ``lr / (1 - beta1^t)``, ``eps`` added to ``|r|`` in the ratio, and AdamW-style decay
    ``theta *= 1 - lr * wd`` outside the trust ratio; all with the clamp at 10."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    theta0 = _lamb_theta0(7)[:2] + [0.3 * np.ones((2, 2))]
    grads = _grad_sequence(_SHAPES, 12, seed=8)
    beta1, lr, eps, wd = 0.9, 0.02, 1e-2, 0.1
    theirs = _run_torch(
        lambda p: pytorch_optimizer.Lamb(p, lr=lr, betas=(beta1, 0.999), eps=eps, weight_decay=wd), theta0, grads
    )
    expected = numpy_lamb(
        theta0,
        grads,
        lr=lr,
        betas=(beta1, 0.999),
        eps=eps,
        weight_decay=wd,
        clamp_value=10.0,
        bias_correction=False,
        step_scale=lambda t: 1 / (1 - beta1**t),
        ratio_eps=eps,
        decoupled=True,
    )
    _assert_params(theirs, expected, rtol=1e-10)
    ours = _run_torch(lambda p: LAMB(p, lr=lr, betas=(beta1, 0.999), eps=eps, weight_decay=wd), theta0, grads)
    assert not np.allclose(ours[0], theirs[0], rtol=1e-3, atol=0)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_lars_matches_pytorch_optimizer(nesterov: bool, weight_decay: float) -> None:
    """pytorch-optimizer's ``LARS`` always excludes ``ndim <= 1`` tensors: our default ``exclude_1d=True``."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    hp = {"lr": 2.0, "momentum": 0.9, "weight_decay": weight_decay, "trust_coefficient": 1e-2, "nesterov": nesterov}
    for foreach in (False, True):
        ours, theirs = SmallRegression(), SmallRegression()
        a = _trajectory(ours, LARS(ours.parameters(), foreach=foreach, **hp), 20)
        b = _trajectory(theirs, pytorch_optimizer.LARS(theirs.parameters(), foreach=foreach, **hp), 20)
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_matches_torch_optimizer(nesterov: bool) -> None:
    """torch-optimizer's ``LARS`` with ``eps=0`` and ``weight_decay > 0`` adapts every tensor: our
    ``exclude_1d=False``."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    hp = {"lr": 2.0, "momentum": 0.9, "weight_decay": 1e-2, "trust_coefficient": 1e-2, "nesterov": nesterov}
    ours, theirs = SmallRegression(), SmallRegression()
    a = _trajectory(ours, LARS(ours.parameters(), exclude_1d=False, **hp), 20)
    b = _trajectory(theirs, torch_optimizer.LARS(theirs.parameters(), eps=0.0, **hp), 20)
    torch.testing.assert_close(a, b)


def test_lars_torch_optimizer_without_weight_decay_is_plain_sgd() -> None:
    """Documented difference: torch-optimizer's ``LARS`` skips the trust ratio when ``weight_decay=0`` (it is
    then ``torch.optim.SGD``), whereas eq. 6 with beta = 0 still scales by ``eta |w| / |g|``."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    theirs, sgd, ours = SmallRegression(), SmallRegression(), SmallRegression()
    b = _trajectory(theirs, torch_optimizer.LARS(theirs.parameters(), lr=0.05, momentum=0.9), 10)
    c = _trajectory(sgd, torch.optim.SGD(sgd.parameters(), lr=0.05, momentum=0.9), 10)
    torch.testing.assert_close(b, c, rtol=1e-12, atol=1e-14)
    a = _trajectory(ours, LARS(ours.parameters(), lr=0.05, momentum=0.9, exclude_1d=False), 10)
    assert not torch.allclose(a, b)
