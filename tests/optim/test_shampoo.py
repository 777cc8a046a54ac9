"""Shampoo against the papers' equations, the other libraries, and its own features.

The reference below is written from the equations in plain numpy (Gupta et al. 2018, Algorithm 1, with the
grafting / EMA / start-step / refresh rules of Anil et al. 2020 and Distributed Shampoo, as documented in
``skopt_nn.optim._shampoo.Shampoo``), for one parameter that is a matrix (preconditioned, no blocking) or a
vector (graft only):

    D_t   = g / (sqrt(A_t) + eps_g),  A_t = A + g^2                       (adagrad)
          = g / (sqrt(V_t / (1 - bg^t)) + eps_g),  V_t = bg V + (1-bg) g^2  (adam)
          = g                                                          (sgd, none)
    L_t   = b2 L + (1 - b2) g g^T,  R_t = b2 R + (1 - b2) g^T g       (b2 = 1: L + g g^T, R + g^T g)
    at t >= s, (t - s) % f == 0:  Lr = (L/(1-b2^t) + eps I)^(-1/4), Rr likewise   (no bias correction if b2 = 1)
    at t >= s:  P = Lr g Rr;  D_t = P ||D_t|| / ||P||   (P alone if grafting is "none")
    theta *= 1 - lr wd;  M = b1 M + (1 - b1) D_t;  theta -= lr (b1 M + (1 - b1) D_t if nesterov else M)
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

import skopt_nn.optim as optim
from skopt_nn.optim._shampoo import Shampoo

FOREACH = [False, True]


# --------------------------------------------------------------------------------------------------- reference


def np_inverse_fourth_root(a: np.ndarray, eps: float) -> np.ndarray:
    w, q = np.linalg.eigh(a + eps * np.eye(a.shape[0]))
    return (q * w**-0.25) @ q.T


def reference(
    theta0: np.ndarray,
    grads: list[np.ndarray],
    *,
    lr: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    matrix_eps: float = 1e-6,
    grafting: str = "adam",
    grafting_beta2: float = 0.999,
    grafting_eps: float = 1e-8,
    precondition_frequency: int = 1,
    start_preconditioning_step: int = 1,
    nesterov: bool = False,
) -> list[np.ndarray]:
    """The iterates of Shampoo on one parameter (a matrix is preconditioned whole; a vector follows the graft)."""
    b1, b2 = betas
    theta = theta0.astype(np.float64).copy()
    matrix = theta.ndim == 2
    sq = np.zeros_like(theta)
    mom = np.zeros_like(theta)
    if matrix:
        m, n = theta.shape
        left, right = np.zeros((m, m)), np.zeros((n, n))
        left_root, right_root = np.zeros((m, m)), np.zeros((n, n))
    out = []
    for t, g in enumerate(grads, start=1):
        if grafting == "adagrad":
            sq = sq + g * g
            d = g / (np.sqrt(sq) + grafting_eps)
        elif grafting == "adam":
            sq = grafting_beta2 * sq + (1 - grafting_beta2) * g * g
            d = g / (np.sqrt(sq / (1 - grafting_beta2**t)) + grafting_eps)
        else:
            d = g
        if matrix:
            if b2 == 1.0:
                left = left + g @ g.T
                right = right + g.T @ g
                corr = 1.0
            else:
                left = b2 * left + (1 - b2) * g @ g.T
                right = b2 * right + (1 - b2) * g.T @ g
                corr = 1 - b2**t
            if t >= start_preconditioning_step and (t - start_preconditioning_step) % precondition_frequency == 0:
                left_root = np_inverse_fourth_root(left / corr, matrix_eps)
                right_root = np_inverse_fourth_root(right / corr, matrix_eps)
            if t >= start_preconditioning_step:
                p = left_root @ g @ right_root
                d = p if grafting == "none" else p * np.linalg.norm(d) / np.linalg.norm(p)
        theta = theta * (1 - lr * weight_decay)
        mom = b1 * mom + (1 - b1) * d
        theta = theta - lr * (b1 * mom + (1 - b1) * d if nesterov else mom)
        out.append(theta.copy())
    return out


def run(
    theta0: list[np.ndarray], grads: list[list[np.ndarray | None]], dtype=torch.float64, **kwargs
) -> tuple[list[list[np.ndarray]], Shampoo]:
    """Our Shampoo on parameters ``theta0`` with the gradients ``grads[t][i]`` (``None``: no gradient)."""
    params = [torch.nn.Parameter(torch.tensor(a, dtype=dtype)) for a in theta0]
    opt = Shampoo(params, **kwargs)
    out = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.tensor(g, dtype=dtype)
        opt.step()
        out.append([p.detach().numpy().astype(np.float64).copy() for p in params])
    return out, opt


def random_grads(shape: tuple[int, ...], steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


SETTINGS = [
    dict(grafting="none", betas=(0.0, 1.0)),  # Gupta et al.'s Algorithm 1
    dict(grafting="none", betas=(0.0, 1.0), matrix_eps=0.5),  # eps large enough to matter
    dict(grafting="sgd", betas=(0.9, 1.0), weight_decay=0.1),
    dict(grafting="adagrad", betas=(0.5, 0.9), grafting_eps=0.1, nesterov=True),
    dict(grafting="adam", betas=(0.9, 0.99), grafting_beta2=0.9, weight_decay=0.05),
    dict(grafting="adam", betas=(0.8, 1.0), matrix_eps=1e-3, nesterov=True, weight_decay=0.2),
]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_reference_matrix(setting: dict, foreach: bool) -> None:
    """Three steps on a 3x4 matrix with the inverse roots refreshed every step match the numpy equations."""
    theta0 = np.random.default_rng(0).standard_normal((3, 4))
    grads = random_grads((3, 4), 3, seed=1)
    expected = reference(theta0, grads, **setting)
    got, _ = run([theta0], [[g] for g in grads], precondition_frequency=1, start_preconditioning_step=1,
                 lr=0.1, foreach=foreach, **setting)  # fmt: skip
    for t in range(3):
        np.testing.assert_allclose(got[t][0], expected[t], rtol=1e-10, atol=1e-12)
    # the Shampoo direction is really used: the graft alone (start never reached) ends elsewhere
    graft_only = reference(theta0, grads, **{**setting, "start_preconditioning_step": 100})
    assert np.abs(graft_only[-1] - expected[-1]).max() > 1e-3


@pytest.mark.parametrize("foreach", FOREACH)
def test_reference_schedule(foreach: bool) -> None:
    """Eight steps with a refresh every 3 steps from step 2 (stale roots in between) match the equations."""
    theta0 = np.random.default_rng(2).standard_normal((4, 3))
    grads = random_grads((4, 3), 8, seed=3)
    kw = dict(lr=0.05, betas=(0.9, 0.95), precondition_frequency=3, start_preconditioning_step=2, grafting="adam")
    expected = reference(theta0, grads, **kw)
    got, _ = run([theta0], [[g] for g in grads], foreach=foreach, **kw)
    for t in range(8):
        np.testing.assert_allclose(got[t][0], expected[t], rtol=1e-10, atol=1e-12)
    fresh = reference(theta0, grads, **{**kw, "precondition_frequency": 1})
    assert np.abs(fresh[-1] - expected[-1]).max() > 1e-6  # staleness is visible


# --------------------------------------------------------------------------------------------------- fallbacks


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize(
    ("grafting", "torch_cls", "torch_kwargs"),
    [
        ("adagrad", torch.optim.Adagrad, dict(eps=1e-3)),
        ("adam", torch.optim.AdamW, dict(betas=(0.0, 0.95), eps=1e-3, weight_decay=0.1)),
        ("sgd", torch.optim.SGD, dict()),
        ("none", torch.optim.SGD, dict()),
    ],
)
def test_vectors_and_oversized_matrices_follow_the_graft(grafting, torch_cls, torch_kwargs, foreach: bool) -> None:
    """Without momentum, a vector and a matrix above max_preconditioner_dim step exactly as torch's Adagrad,
    AdamW(beta1=0) or SGD: the graft is that method."""
    ours_kw = dict(grafting=grafting, betas=(0.0, 0.999), grafting_eps=1e-3, grafting_beta2=0.95, lr=0.05,
                   start_preconditioning_step=1, precondition_frequency=1, max_preconditioner_dim=6)  # fmt: skip
    if torch_cls is torch.optim.AdamW:
        ours_kw["weight_decay"] = 0.1
    theta0 = [np.random.default_rng(4).standard_normal(s) for s in ((5,), (3, 7), (2,))]
    grads = [[g[0], g[1], g[2]] for g in zip(*(random_grads(a.shape, 12, seed=5 + i) for i, a in enumerate(theta0)))]
    got, opt = run(theta0, grads, foreach=foreach, **ours_kw)
    assert all(not s["left_factors"] for s in opt.state.values())  # nothing was preconditioned

    ref_params = [torch.nn.Parameter(torch.tensor(a)) for a in theta0]
    ref = torch_cls(ref_params, lr=0.05, **torch_kwargs)
    for t, step_grads in enumerate(grads):
        for p, g in zip(ref_params, step_grads):
            p.grad = torch.tensor(g)
        ref.step()
        for p, ours in zip(ref_params, got[t]):
            np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("nesterov", [False, True])
def test_vector_with_momentum_matches_reference(foreach: bool, nesterov: bool) -> None:
    theta0 = np.random.default_rng(6).standard_normal(6)
    grads = random_grads((6,), 5, seed=7)
    kw = dict(lr=0.1, betas=(0.8, 0.9), grafting="adagrad", weight_decay=0.05, nesterov=nesterov)
    expected = reference(theta0, grads, **kw)
    got, _ = run([theta0], [[g] for g in grads], foreach=foreach, **kw)
    for t in range(5):
        np.testing.assert_allclose(got[t][0], expected[t], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------------- blocking


@pytest.mark.parametrize("foreach", FOREACH)
def test_blocking_equals_separate_blocks(foreach: bool) -> None:
    """A 5x7 matrix with block_size=3 steps exactly as its six blocks (3x3, 3x3, 3x1, 2x3, 2x3, 2x1) optimised
    as separate parameters: the factors, roots and graft norms are per block."""
    theta0 = np.random.default_rng(8).standard_normal((5, 7))
    grads = random_grads((5, 7), 7, seed=9)
    kw = dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1, grafting="adam", precondition_frequency=2,
              start_preconditioning_step=2, foreach=foreach)  # fmt: skip
    blocked, opt = run([theta0], [[g] for g in grads], block_size=3, **kw)
    shapes = [tuple(t.shape) for t in opt.state[opt.param_groups[0]["params"][0]]["left_factors"]]
    assert shapes == [(3, 3), (3, 3), (3, 3), (2, 2), (2, 2), (2, 2)]

    slices = [(r, c) for r in (slice(0, 3), slice(3, 5)) for c in (slice(0, 3), slice(3, 6), slice(6, 7))]
    separate, _ = run([theta0[s] for s in slices], [[g[s] for s in slices] for g in grads], block_size=100, **kw)
    for t in range(7):
        assembled = np.zeros((5, 7))
        for s, block in zip(slices, separate[t]):
            assembled[s] = block
        np.testing.assert_allclose(blocked[t][0], assembled, rtol=1e-10, atol=1e-12)
    unblocked, _ = run([theta0], [[g] for g in grads], block_size=100, **kw)
    assert np.abs(unblocked[-1][0] - blocked[-1][0]).max() > 1e-4  # blocking changes the update


@pytest.mark.parametrize("foreach", FOREACH)
def test_higher_order_tensor_is_preconditioned_as_its_matrix_view(foreach: bool) -> None:
    """A 2x3x4 tensor steps exactly as the 2x12 matrix of its reshaped values (documented choice)."""
    theta0 = np.random.default_rng(10).standard_normal((2, 3, 4))
    grads = random_grads((2, 3, 4), 4, seed=11)
    kw = dict(lr=0.1, start_preconditioning_step=1, precondition_frequency=1, foreach=foreach)
    got, opt = run([theta0], [[g] for g in grads], **kw)
    expected = reference(theta0.reshape(2, 12), [g.reshape(2, 12) for g in grads], lr=0.1)
    for t in range(4):
        np.testing.assert_allclose(got[t][0].reshape(2, 12), expected[t], rtol=1e-10, atol=1e-12)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert [tuple(x.shape) for x in state["right_factors"]] == [(12, 12)]


# --------------------------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("foreach", FOREACH)
def test_inverse_roots_refreshed_every_k_steps(foreach: bool) -> None:
    """With start 2 and frequency 3 the roots change at steps 2, 5, 8 only, and then equal the inverse fourth
    roots of the factors of that step; the factors themselves change every step from step 1."""
    theta0 = [np.zeros((3, 4)), np.zeros((4, 2))]
    grads = [[a, b] for a, b in zip(random_grads((3, 4), 9, seed=12), random_grads((4, 2), 9, seed=13))]
    params = [torch.nn.Parameter(torch.tensor(a)) for a in theta0]
    eps = 1e-4
    opt = Shampoo(params, betas=(0.9, 0.9), matrix_eps=eps, precondition_frequency=3, start_preconditioning_step=2,
                  foreach=foreach)  # fmt: skip
    prev_roots = None
    prev_factors = None
    for t, step_grads in enumerate(grads, start=1):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        roots = [[r.clone() for r in opt.state[p][k]] for p in params for k in ("left_roots", "right_roots")]
        factors = [[f.clone() for f in opt.state[p][k]] for p in params for k in ("left_factors", "right_factors")]
        refreshed = t in (2, 5, 8)
        if prev_roots is not None:
            changed = [not torch.equal(a, b) for rs, ps in zip(roots, prev_roots) for a, b in zip(rs, ps)]
            assert all(changed) if refreshed else not any(changed), f"step {t}"
            assert all(not torch.equal(a, b) for fs, ps in zip(factors, prev_factors) for a, b in zip(fs, ps))
        else:
            assert all(torch.count_nonzero(r) == 0 for rs in roots for r in rs)  # nothing computed at step 1
        if refreshed:
            for fs, rs in zip(factors, roots):
                for f, r in zip(fs, rs):
                    expected = np_inverse_fourth_root(f.numpy() / (1 - 0.9**t), eps)
                    np.testing.assert_allclose(r.numpy(), expected, rtol=1e-9, atol=1e-12)
        prev_roots, prev_factors = roots, factors


@pytest.mark.parametrize("foreach", FOREACH)
def test_start_preconditioning_step(foreach: bool) -> None:
    """Before step s the matrix follows the graft exactly (while its factors accumulate); from step s on it
    does not, and the roots are computed at step s."""
    theta0 = np.random.default_rng(14).standard_normal((3, 3))
    grads = random_grads((3, 3), 6, seed=15)
    kw = dict(lr=0.1, betas=(0.9, 1.0), grafting="adagrad", precondition_frequency=10, foreach=foreach)
    got, opt = run([theta0], [[g] for g in grads], start_preconditioning_step=4, **kw)
    graft, _ = run([theta0], [[g] for g in grads], start_preconditioning_step=4, max_preconditioner_dim=2, **kw)
    for t in range(3):
        np.testing.assert_array_equal(got[t][0], graft[t][0])
    assert np.abs(got[3][0] - graft[3][0]).max() > 1e-4
    expected = reference(theta0, grads, start_preconditioning_step=4, **{k: v for k, v in kw.items() if k != "foreach"})
    for t in range(6):
        np.testing.assert_allclose(got[t][0], expected[t], rtol=1e-10, atol=1e-12)
    state = opt.state[opt.param_groups[0]["params"][0]]
    np.testing.assert_allclose(state["left_factors"][0].numpy(), sum(g @ g.T for g in grads), rtol=1e-12)


# --------------------------------------------------------------------------------------------------- foreach path


def test_foreach_with_changing_gradient_sets_matches_single_tensor() -> None:
    """Parameters that skip steps (grad None) break the packed layout of the batched path; it then stacks and
    writes back, and still equals the single-tensor path. Mixed block shapes and refresh steps per parameter."""
    shapes = [(4, 4), (4, 4), (6, 3), (4, 4), (5,)]
    theta0 = [np.random.default_rng(16 + i).standard_normal(s) for i, s in enumerate(shapes)]
    rng = np.random.default_rng(20)
    grads = [
        [None if (t + i) % 3 == 0 and i != 0 else rng.standard_normal(s) for i, s in enumerate(shapes)]
        for t in range(9)
    ]
    kw = dict(lr=0.05, betas=(0.9, 0.99), precondition_frequency=2, start_preconditioning_step=2, block_size=4,
              weight_decay=0.01)  # fmt: skip
    single, _ = run(theta0, grads, foreach=False, **kw)
    multi, opt = run(theta0, grads, foreach=True, **kw)
    for t in range(9):
        for a, b in zip(single[t], multi[t]):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    steps = [int(opt.state[p]["step"]) for p in opt.param_groups[0]["params"]]
    assert steps == [9, 6, 6, 6, 6]


def test_batched_state_is_packed_and_survives_a_round_trip() -> None:
    """The batched path keeps same-shaped blocks back to back in one storage (read and written in place); a
    saved and reloaded state keeps that layout and continues on the same trajectory."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)).double()
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    opt = Shampoo(model.parameters(), lr=0.01, start_preconditioning_step=1, precondition_frequency=2)

    def step(m, o):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()

    for _ in range(3):
        step(model, opt)
    weights = [model[i].weight for i in range(3)]
    lefts = [opt.state[w]["left_factors"][0] for w in weights]
    assert len({t.untyped_storage().data_ptr() for t in lefts}) == 1
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    twin = copy.deepcopy(model)
    opt2 = Shampoo(twin.parameters(), lr=0.01, start_preconditioning_step=1, precondition_frequency=2)
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(4):
        step(model, opt)
        step(twin, opt2)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    lefts2 = [opt2.state[w]["left_factors"][0] for w in (twin[i].weight for i in range(3))]
    assert len({t.untyped_storage().data_ptr() for t in lefts2}) == 1


@pytest.mark.parametrize("foreach", FOREACH)
def test_float32_state_and_accuracy(foreach: bool) -> None:
    """float32 parameters keep float32 factors and roots (eigh runs in float64) and follow the float64
    trajectory closely."""
    theta0 = [np.random.default_rng(21).standard_normal((6, 5)), np.random.default_rng(22).standard_normal(5)]
    grads = [[a, b] for a, b in zip(random_grads((6, 5), 6, seed=23), random_grads((5,), 6, seed=24))]
    kw = dict(lr=0.05, start_preconditioning_step=2, precondition_frequency=2, foreach=foreach)
    got32, opt = run(theta0, grads, dtype=torch.float32, **kw)
    got64, _ = run(theta0, grads, **kw)
    state = opt.state[opt.param_groups[0]["params"][0]]
    for key in ("left_factors", "right_factors", "left_roots", "right_roots"):
        assert all(t.dtype == torch.float32 for t in state[key])
    for a, b in zip(got32[-1], got64[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_errors() -> None:
    p = torch.nn.Parameter(torch.zeros(3, 3))
    opt = Shampoo([p])
    p.grad = torch.zeros(3, 3).to_sparse()
    with pytest.raises(RuntimeError, match="Shampoo does not support sparse gradients"):
        opt.step()
    q = torch.nn.Parameter(torch.zeros(6, 6))
    opt = Shampoo([q], block_size=4)
    q.grad = torch.ones(6, 6)
    opt.step()
    opt.param_groups[0]["block_size"] = 3
    with pytest.raises(RuntimeError, match="block_size"):
        opt.step()
    with pytest.raises(ValueError, match=r"The 'betas' parameter of Shampoo must be a pair of floats"):
        Shampoo([p], betas=(0.9, 1.5))


def test_registered() -> None:
    spec = optim.get("shampoo")
    assert spec.optimizer is Shampoo
    assert spec.supports_foreach and not spec.needs_closure and spec.family == "second-order"
    assert set(spec.search_space()) == {
        "optimizer__lr",
        "optimizer__betas",
        "optimizer__weight_decay",
        "optimizer__matrix_eps",
    }


# --------------------------------------------------------------------------------------------------- other libraries


def np_library_shampoo(
    theta0: np.ndarray,
    grads: list[np.ndarray],
    *,
    lr: float,
    eps: float,
    root: float,
    right_from_left_preconditioned: bool = False,
    momentum: float = 0.0,
) -> list[np.ndarray]:
    """The ``Shampoo`` of pytorch-optimizer / torch-optimizer on a matrix, in numpy: factors start at eps*I and
    sum g g^T, inverse roots every step, no grafting. Their deviations are switches:

    * ``root``: the inverse root of each factor (4 in the paper; torch-optimizer uses the tensor order, 2);
    * ``right_from_left_preconditioned``: R accumulates h^T h with h = L^(-1/root) g instead of g^T g
      (torch-optimizer);
    * ``momentum``: g <- (1 - mu) g + mu * previous update (first "previous update" = g itself), *before*
      the statistics (both libraries).
    """
    theta = theta0.copy()
    m, n = theta.shape
    left, right = eps * np.eye(m), eps * np.eye(n)
    previous = None
    out = []
    for g in grads:
        if momentum > 0:
            g = (1 - momentum) * g + momentum * (g if previous is None else previous)
        left = left + g @ g.T
        w, q = np.linalg.eigh(left)
        h = (q * w ** (-1 / root)) @ q.T @ g
        right = right + (h.T @ h if right_from_left_preconditioned else g.T @ g)
        w, q = np.linalg.eigh(right)
        update = h @ (q * w ** (-1 / root)) @ q.T
        previous = update
        theta = theta - lr * update
        out.append(theta.copy())
    return out


def _library_run(cls, theta0: list[np.ndarray], grads: list[list[np.ndarray]], **kwargs) -> list[list[np.ndarray]]:
    params = [torch.nn.Parameter(torch.tensor(a)) for a in theta0]
    opt = cls(params, **kwargs)
    out = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)  # fresh tensors: the libraries may modify p.grad in place
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


MATRICES = [(5, 4), (3, 6), (4, 4)]


@pytest.mark.parametrize("foreach", FOREACH)
def test_differential_pytorch_optimizer_shampoo(foreach: bool) -> None:
    """pytorch-optimizer's ``Shampoo`` is the paper's Algorithm 1 (factors eps*I + sum g g^T, exponent -1/4 for a
    matrix, no grafting): equal to ours with grafting="none", betas=(0, 1), refresh every step from step 1 and
    the same absolute eps (theirs initialises the factors with it, ours adds it before the root: the same)."""
    po = pytest.importorskip("pytorch_optimizer")
    theta0 = [np.random.default_rng(30 + i).standard_normal(s) for i, s in enumerate(MATRICES)]
    grads = [list(g) for g in zip(*(random_grads(s, 12, seed=40 + i) for i, s in enumerate(MATRICES)))]
    theirs = _library_run(po.Shampoo, theta0, grads, lr=0.05, momentum=0.0, matrix_eps=1e-3,
                          preconditioning_compute_steps=1)  # fmt: skip
    ours, _ = run(theta0, grads, lr=0.05, betas=(0.0, 1.0), grafting="none", matrix_eps=1e-3,
                  precondition_frequency=1, start_preconditioning_step=1, foreach=foreach)  # fmt: skip
    for t in range(12):
        for a, b in zip(ours[t], theirs[t]):
            torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-9, atol=1e-11)


def test_pytorch_optimizer_shampoo_momentum_is_documented_difference() -> None:
    """pytorch-optimizer's ``momentum`` (not in the paper) mixes the previous *preconditioned* update into the
    gradient before the statistics (first step: the gradient itself); its trajectory is exactly that rule."""
    po = pytest.importorskip("pytorch_optimizer")
    theta0 = np.random.default_rng(50).standard_normal((4, 3))
    grads = random_grads((4, 3), 10, seed=51)
    theirs = _library_run(po.Shampoo, [theta0], [[g] for g in grads], lr=0.05, momentum=0.6, matrix_eps=1e-3,
                          preconditioning_compute_steps=1)  # fmt: skip
    model = np_library_shampoo(theta0, grads, lr=0.05, eps=1e-3, root=4, momentum=0.6)
    for t in range(10):
        np.testing.assert_allclose(theirs[t][0], model[t], rtol=1e-9, atol=1e-11)


def test_differential_torch_optimizer_shampoo_documented_difference() -> None:
    """torch-optimizer's ``Shampoo`` deviates from the paper in two ways: the exponent is -1/order (-1/2 for a
    matrix, the paper's is -1/4), and the right factor accumulates h^T h with h = L^(-1/2) g, the gradient
    already preconditioned on the left (the loop reuses the updated ``grad``). Its trajectory is exactly the
    paper's algorithm with those two changes; with them undone, that algorithm is ours."""
    topt = pytest.importorskip("torch_optimizer")
    theta0 = np.random.default_rng(60).standard_normal((4, 3))
    grads = random_grads((4, 3), 10, seed=61)
    theirs = _library_run(topt.Shampoo, [theta0], [[g] for g in grads], lr=0.05, momentum=0.0, epsilon=1e-3,
                          update_freq=1)  # fmt: skip
    deviated = np_library_shampoo(theta0, grads, lr=0.05, eps=1e-3, root=2, right_from_left_preconditioned=True)
    paper = np_library_shampoo(theta0, grads, lr=0.05, eps=1e-3, root=4)
    ours, _ = run([theta0], [[g] for g in grads], lr=0.05, betas=(0.0, 1.0), grafting="none", matrix_eps=1e-3,
                  precondition_frequency=1, start_preconditioning_step=1)  # fmt: skip
    for t in range(10):
        np.testing.assert_allclose(theirs[t][0], deviated[t], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(ours[t][0], paper[t], rtol=1e-9, atol=1e-11)
    assert np.abs(theirs[-1][0] - ours[-1][0]).max() > 1e-2
    # each deviation alone is not enough to explain their trajectory
    for partial in (dict(root=2), dict(root=4, right_from_left_preconditioned=True)):
        alone = np_library_shampoo(theta0, grads, lr=0.05, eps=1e-3, **partial)
        assert np.abs(theirs[-1][0] - alone[-1]).max() > 1e-3


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("nesterov", [False, True])
def test_differential_pytorch_optimizer_scalable_shampoo(foreach: bool, nesterov: bool) -> None:
    """pytorch-optimizer's ``ScalableShampoo`` (a port of Google's scalable_shampoo, Anil et al.) with AdaGrad
    grafting, EMA momentum (``moving_average_for_momentum``) and Nesterov equals ours with grafting="adagrad"
    for matrices and vectors. Their factors start at eps*I and are not bias-corrected (ours are), and they take
    the root without adding eps again; both only rescale L and R by 1 - beta2^t, which the graft cancels, once
    the factors have full rank (square matrices, full-rank gradients) and eps is negligible (1e-30 on both).
    Their grafting is per layer, ours per block: identical here because nothing is blocked."""
    po = pytest.importorskip("pytorch_optimizer")
    from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting

    shapes = [(4, 4), (3, 3), (5,)]
    theta0 = [np.random.default_rng(70 + i).standard_normal(s) for i, s in enumerate(shapes)]
    grads = [list(g) for g in zip(*(random_grads(s, 12, seed=80 + i) for i, s in enumerate(shapes)))]
    theirs = _library_run(
        po.ScalableShampoo, theta0, grads, lr=0.05, betas=(0.9, 0.95), moving_average_for_momentum=True,
        weight_decay=0.0, decoupled_learning_rate=True, inverse_exponent_override=0, start_preconditioning_step=1,
        preconditioning_compute_steps=1, statistics_compute_steps=1, block_size=64, shape_interpretation=False,
        graft_type=LayerWiseGrafting.ADAGRAD, nesterov=nesterov, diagonal_eps=1e-2, matrix_eps=1e-30, use_svd=True,
    )  # fmt: skip
    ours, _ = run(theta0, grads, lr=0.05, betas=(0.9, 0.95), grafting="adagrad", grafting_eps=1e-2,
                  matrix_eps=1e-30, precondition_frequency=1, start_preconditioning_step=1, nesterov=nesterov,
                  foreach=foreach)  # fmt: skip
    for t in range(12):
        for a, b in zip(ours[t], theirs[t]):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
