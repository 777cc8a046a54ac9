"""SOAP against the paper's equations, pytorch-optimizer, and its own features.

The reference below is written from Algorithms 3 and 4 of Vyas et al. (arXiv:2409.11321) in plain numpy, with the
conventions of the authors' implementation (``nikhilvyas/SOAP``) documented in ``skopt_nn.optim._soap.SOAP``. It
keeps the first moment ``M`` in the ORIGINAL coordinates and rotates it every step, as Algorithm 3 does (the
implementation keeps it rotated), so the test also checks that the two forms agree. For one parameter, with
``rot`` contracting every rotated axis ``a`` with ``Q_a^T`` (``rot_back`` with ``Q_a``):

    t = 1:   P_a = (1 - bs) G_(a) G_(a)^T;  Q_a = eigenvectors of P_a by decreasing eigenvalue;  theta unchanged
    t >= 2:  k = t - 1
             G' = rot(G);  M = b1 M + (1 - b1) G;  M' = rot(M);  V = b2 V + (1 - b2) G'^2
             eta = lr sqrt(1 - b2^k) / (1 - b1^k)   (lr without correct_bias)
             theta = (theta - eta rot_back(M' / (sqrt(V) + eps))) (1 - lr wd)
             P_a = bs P_a + (1 - bs) G_(a) G_(a)^T
             if k % f == 0, for each axis a:  pi = argsort(-diag(Q_a^T P_a Q_a));  V = V permuted by pi on axis a;
                                              Q_a = qr(P_a Q_a[:, pi]).Q

``G_(a)`` is ``G`` with axis ``a`` first, flattened to a matrix; axes longer than ``max_precond_dim`` and vectors
are not rotated. Eigenvectors and QR factors are only defined up to the signs of their columns, which the update
does not depend on, so numpy and torch may pick different signs; the test gradients make every factor's
eigenvalues distinct (or leave a one-dimensional null space), where the bases are otherwise unique.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import skopt_nn.optim as optim
from skopt_nn.optim._soap import SOAP

FOREACH = [False, True]


# --------------------------------------------------------------------------------------------------- reference


def _to_front(x: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _apply(x: np.ndarray, bases: list[np.ndarray | None], back: bool) -> np.ndarray:
    for axis, q in enumerate(bases):
        if q is not None:
            m = q if back else q.T
            x = np.moveaxis(np.tensordot(m, x, axes=([1], [axis])), 0, axis)
    return x


def reference(
    theta0: np.ndarray,
    grads: list[np.ndarray],
    *,
    lr: float = 3e-3,
    betas: tuple[float, float] = (0.95, 0.95),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    shampoo_beta: float | None = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    correct_bias: bool = True,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The iterates of SOAP on one parameter, and the final rotated moments ``(M', V)``."""
    b1, b2 = betas
    bs = b2 if shampoo_beta is None else shampoo_beta
    theta = theta0.astype(np.float64).copy()
    rotated = [theta.ndim >= 2 and d <= max_precond_dim for d in theta.shape]
    factors = [np.zeros((d, d)) if r else None for d, r in zip(theta.shape, rotated)]
    bases: list[np.ndarray | None] = [None] * theta.ndim
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    iterates = []
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if t >= 2:
            k = t - 1
            g_rot = _apply(g, bases, back=False)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g_rot**2
            n = _apply(_apply(m, bases, back=False) / (np.sqrt(v) + eps), bases, back=True)
            eta = lr * math.sqrt(1 - b2**k) / (1 - b1**k) if correct_bias else lr
            theta = (theta - eta * n) * (1 - lr * weight_decay)
        for axis, p in enumerate(factors):
            if p is not None:
                ga = _to_front(g, axis)
                factors[axis] = bs * p + (1 - bs) * ga @ ga.T
        if t == 1:
            for axis, p in enumerate(factors):
                if p is not None:
                    _, q = np.linalg.eigh(p)
                    bases[axis] = q[:, ::-1]
        elif (t - 1) % precondition_frequency == 0:
            for axis, p in enumerate(factors):
                q = bases[axis]
                if p is not None and q is not None:
                    order = np.argsort(-np.diag(q.T @ p @ q), kind="stable")
                    v = np.take(v, order, axis=axis)
                    bases[axis], _ = np.linalg.qr(p @ q[:, order])
        iterates.append(theta.copy())
    return iterates, _apply(m, bases, back=False), v


SHAPES = [(3, 3), (3, 4), (4,), (3, 20), (2, 3, 4)]  # (3, 20): axis 1 exceeds max_precond_dim=10

SETTINGS = [
    dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, precondition_frequency=1, max_precond_dim=10),
    dict(
        lr=0.05,
        betas=(0.5, 0.9),
        eps=1e-3,
        weight_decay=0.0,
        shampoo_beta=0.6,
        precondition_frequency=2,
        max_precond_dim=10,
        correct_bias=False,
    ),
    dict(lr=0.02, betas=(0.0, 0.5), weight_decay=0.05, precondition_frequency=3, max_precond_dim=10),
]


def _grads(seed: int, steps: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("setting", SETTINGS, ids=["frequent-refresh", "no-bias-correction", "beta1-zero"])
def test_matches_numpy_reference(setting, foreach):
    steps = 5
    rng = np.random.default_rng(0)
    theta0 = [rng.standard_normal(s) for s in SHAPES]
    grads = _grads(1, steps)
    params = [torch.tensor(x, requires_grad=True) for x in theta0]
    opt = SOAP(params, foreach=foreach, **setting)
    for t in range(steps):
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g)
        opt.step()
        for j, p in enumerate(params):
            expected, _, _ = reference(theta0[j], [grads[s][j] for s in range(t + 1)], **setting)
            np.testing.assert_allclose(p.detach().numpy(), expected[-1], rtol=1e-10, atol=1e-12)
    for j, p in enumerate(params):
        _, m_rot, v = reference(theta0[j], [grads[s][j] for s in range(steps)], **setting)
        state = opt.state[p]
        # M' is the rotated first moment (only defined up to the signs of the basis columns: compare magnitudes)
        np.testing.assert_allclose(np.abs(state["exp_avg"].numpy()), np.abs(m_rot), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(state["exp_avg_sq"].numpy(), v, rtol=1e-9, atol=1e-12)
        assert int(state["step"]) == steps


def test_reference_update_is_not_plain_adam():
    """Guard against a reference that degenerates: SOAP on a matrix differs from Adam on it."""
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal((3, 3))
    grads = [rng.standard_normal((3, 3)) for _ in range(4)]
    soap_iterates, _, _ = reference(theta0, grads, lr=0.01, weight_decay=0.0, precondition_frequency=1)
    vector_iterates, _, _ = reference(theta0.reshape(-1), [g.reshape(-1) for g in grads], lr=0.01, weight_decay=0.0)
    assert np.abs(soap_iterates[-1].reshape(-1) - vector_iterates[-1]).max() > 1e-3


# --------------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("foreach", FOREACH)
def test_first_step_only_gathers_statistics(foreach):
    torch.manual_seed(0)
    w = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    before = [w.detach().clone(), b.detach().clone()]
    opt = SOAP([w, b], lr=0.1, weight_decay=0.5, foreach=foreach)
    g = torch.randn(4, 5, dtype=torch.float64)
    w.grad, b.grad = g, torch.randn(4, dtype=torch.float64)
    opt.step()
    assert torch.equal(w.detach(), before[0]) and torch.equal(b.detach(), before[1])
    state = opt.state[w]
    left, right = state["preconditioners"]
    torch.testing.assert_close(left, 0.05 * g @ g.T, rtol=1e-13, atol=1e-14)  # 1 - beta2 = 0.05
    torch.testing.assert_close(right, 0.05 * g.T @ g, rtol=1e-13, atol=1e-14)
    for factor, basis in zip((left, right), state["eigenbases"]):
        torch.testing.assert_close(basis.T @ basis, torch.eye(basis.shape[0], dtype=torch.float64))
        eigenvalues = torch.diagonal(basis.T @ factor @ basis)
        torch.testing.assert_close(basis @ torch.diag(eigenvalues) @ basis.T, factor, rtol=1e-10, atol=1e-12)
        assert bool((eigenvalues[:-1] >= eigenvalues[1:] - 1e-12).all()), "columns not by decreasing eigenvalue"
    assert not state["exp_avg"].any() and not state["exp_avg_sq"].any()
    assert opt.state[b]["preconditioners"] == [] and opt.state[b]["eigenbases"] == []


@pytest.mark.parametrize("foreach", FOREACH)
def test_vectors_and_oversized_matrices_follow_adam(foreach):
    """Without a rotation SOAP is Adam on the gradients after the first: with eps = 0 (where the place of eps does
    not matter) and no weight decay, torch's Adam fed g_2, g_3, ... gives the same iterates."""
    torch.manual_seed(0)
    shapes = [(6,), (12, 11)]
    grads = [[torch.randn(s, dtype=torch.float64) for s in shapes] for _ in range(8)]
    init = [torch.randn(s, dtype=torch.float64) for s in shapes]
    ours = [x.clone().requires_grad_() for x in init]
    theirs = [x.clone().requires_grad_() for x in init]
    opt = SOAP(ours, lr=0.01, betas=(0.9, 0.99), eps=0.0, weight_decay=0.0, max_precond_dim=10, foreach=foreach)
    adam = torch.optim.Adam(theirs, lr=0.01, betas=(0.9, 0.99), eps=0.0)
    for t, gs in enumerate(grads):
        for p, g in zip(ours, gs):
            p.grad = g.clone()
        opt.step()
        if t >= 1:
            for p, g in zip(theirs, gs):
                p.grad = g.clone()
            adam.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert opt.state[ours[1]]["eigenbases"][0].numel() == 0 and opt.state[ours[1]]["eigenbases"][1].numel() == 0


@pytest.mark.parametrize("foreach", FOREACH)
def test_bases_refresh_every_precondition_frequency_adam_steps(foreach):
    torch.manual_seed(0)
    w = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    opt = SOAP([w], lr=0.01, precondition_frequency=3, foreach=foreach)
    previous = None
    changed = []
    for t in range(1, 11):
        w.grad = torch.randn(5, 4, dtype=torch.float64)
        opt.step()
        bases = [q.clone() for q in opt.state[w]["eigenbases"]]
        for q in bases:
            torch.testing.assert_close(q.T @ q, torch.eye(q.shape[0], dtype=torch.float64))
        if previous is not None and not all(torch.equal(a, b) for a, b in zip(previous, bases)):
            changed.append(t)
        previous = bases
    # refreshed after the Adam steps k = t - 1 = 3, 6, 9
    assert changed == [4, 7, 10]


def test_state_dict_round_trip_mid_period():
    """A state saved between two refreshes continues the same trajectory (float64, foreach)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    data = [(torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)) for _ in range(12)]

    def train(m: nn.Module, o: torch.optim.Optimizer, batches) -> None:
        for x, y in batches:
            o.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            o.step()

    opt = SOAP(model.parameters(), lr=0.01, precondition_frequency=4)
    train(model, opt, data[:6])
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    clone = copy.deepcopy(model)
    opt2 = SOAP(clone.parameters(), lr=0.01, precondition_frequency=4)
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    train(model, opt, data[6:])
    train(clone, opt2, data[6:])
    for a, b in zip(model.parameters(), clone.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("foreach", FOREACH)
def test_bfloat16_parameters_keep_float32_state(foreach):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)).to(torch.bfloat16)
    before = [p.detach().clone() for p in model.parameters()]
    opt = SOAP(model.parameters(), lr=0.01, precondition_frequency=2, foreach=foreach)
    x, y = torch.randn(16, 6).to(torch.bfloat16), torch.randn(16, 2).to(torch.bfloat16)
    for _ in range(5):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    for p, b in zip(model.parameters(), before):
        assert p.dtype == torch.bfloat16 and bool(torch.isfinite(p).all()) and not torch.equal(p, b)
        state = opt.state[p]
        assert state["exp_avg"].dtype == torch.float32 and state["exp_avg_sq"].dtype == torch.float32
        for t in state["preconditioners"] + state["eigenbases"]:
            assert t.dtype == torch.float32
    # load_state_dict casts state to the parameter's dtype; the next step restores float32
    opt2 = SOAP(model.parameters(), lr=0.01, precondition_frequency=2, foreach=foreach)
    opt2.load_state_dict(opt.state_dict())
    opt2.step()
    state = opt2.state[model[0].weight]
    assert state["exp_avg"].dtype == torch.float32 and state["eigenbases"][0].dtype == torch.float32


def test_rejects_sparse_gradients():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="SOAP does not support sparse gradients"):
        SOAP([p]).step()


def test_registered():
    spec = optim.get("soap")
    assert spec.optimizer is SOAP and spec.supports_foreach and not spec.needs_closure


# --------------------------------------------------------------------------------------------------- other libraries


def _square_mlp(dtype: torch.dtype) -> nn.Module:
    # square weight matrices: every factor is full rank from the first step, so its eigenbasis is unique up to
    # the signs of its columns (a rank-deficient factor has a null space whose basis eigh picks arbitrarily, and
    # Adam in that basis depends on the pick: two correct implementations then legitimately differ)
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8)).to(dtype)


def _train(build, dtype: torch.dtype, steps: int = 25) -> torch.Tensor:
    model = _square_mlp(dtype)
    opt = build(model.parameters())
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        # a fresh mini-batch per step: with one fixed batch the second gradient equals the first (the first step
        # does not move), its rotation is exactly diagonal and Adam amplifies the rounding of the off-diagonal
        x = torch.randn(16, 8, generator=generator, dtype=dtype)
        y = torch.randn(16, 8, generator=generator, dtype=dtype)
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("foreach", FOREACH)
def test_matches_pytorch_optimizer_between_refreshes(foreach):
    """pytorch-optimizer's SOAP follows the same reference (M kept unrotated, Algorithm 3's form): 25 float64
    steps without a refresh of the bases give the same iterates to rounding."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    kwargs = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.1, precondition_frequency=100)
    theirs = _train(lambda ps: pytorch_optimizer.load_optimizer("soap")(ps, **kwargs), torch.float64)
    ours = _train(lambda ps: SOAP(ps, foreach=foreach, **kwargs), torch.float64)
    start = torch.cat([p.detach().reshape(-1) for p in _square_mlp(torch.float64).parameters()])
    assert float((ours - start).abs().max()) > 0.1  # the comparison is not vacuous
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("foreach", FOREACH)
def test_matches_pytorch_optimizer_with_refreshes_given_float32_qr(foreach, monkeypatch):
    """Documented difference: pytorch-optimizer computes the refresh's QR decomposition in float32 for every
    dtype (we use the parameter's), so its float64 bases are orthogonal only to float32 precision. With
    ``torch.linalg.qr`` replaced, for both, by a float32 QR whose Q is re-orthonormalised in float64, 25 float64
    steps with a refresh every 5 steps (the sort of the eigenvalue estimates, the permutation of V, the change of
    basis of M') give the same iterates to rounding; with the plain float64 QR they differ visibly."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    qr = torch.linalg.qr

    def float32_qr(a: torch.Tensor, *args, **kwargs):
        q, _ = qr(a.to(torch.float32), *args, **kwargs)
        return qr(q.to(torch.float64))

    kwargs = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.1, precondition_frequency=5)
    exact = _train(lambda ps: SOAP(ps, foreach=foreach, **kwargs), torch.float64)
    monkeypatch.setattr(torch.linalg, "qr", float32_qr)
    theirs = _train(lambda ps: pytorch_optimizer.load_optimizer("soap")(ps, **kwargs), torch.float64)
    ours = _train(lambda ps: SOAP(ps, foreach=foreach, **kwargs), torch.float64)
    torch.testing.assert_close(ours, theirs, rtol=1e-11, atol=1e-12)
    # and the float32 QR is what separates them otherwise (a visible, not a rounding-level, difference)
    assert float((exact - theirs).abs().max()) > 1e-9


def test_matches_pytorch_optimizer_float32():
    """The same comparison in float32, refreshes included (both sides in float32 throughout)."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    kwargs = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.1, precondition_frequency=5)
    theirs = _train(lambda ps: pytorch_optimizer.load_optimizer("soap")(ps, **kwargs), torch.float32)
    ours = _train(lambda ps: SOAP(ps, **kwargs), torch.float32)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-4)
