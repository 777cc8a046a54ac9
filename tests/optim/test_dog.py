"""DoG and L-DoG against the paper's equations, plus the polynomial-decay averager.

No other installed library implements DoG (pytorch-optimizer 4.1 and torch-optimizer 0.3 do not), so the
reference tests below, written from the paper's equations in plain numpy, carry the weight:

    r_eps = reps_rel (1 + ||x_0||)          (0 when init_eta is given)
    rbar_t = max(rbar_{t-1}, ||x_t - x_0||),  rbar_{-1} = r_eps
    G_t = G_{t-1} + ||g_t||^2,                G_{-1} = eps,   g_t = grad + weight_decay * x_t
    eta_t = lr * rbar_t / sqrt(G_t)          (eta_0 = lr * init_eta when given)
    x_{t+1} = x_t - eta_t g_t

with the norms over the whole param group (DoG) or over each tensor (L-DoG).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

import skopt_nn.optim as optim
from skopt_nn.optim._dog import DoG, LDoG, get_polynomial_decay_multi_avg_fn

SHAPES = [(3, 4), (4,), (2,)]
FOREACH = [False, True]


# --------------------------------------------------------------------------------------------------- reference


def reference(
    x0: list[np.ndarray],
    grads: list[list[np.ndarray | None]],
    *,
    layerwise: bool,
    lr: float = 1.0,
    reps_rel: float = 1e-6,
    weight_decay: float = 0.0,
    eps: float = 1e-8,
    init_eta: float | None = None,
    keep_r_eps: bool = True,
) -> tuple[list[np.ndarray], list[float]]:
    """The paper's DoG / L-DoG in numpy on a list of tensors; returns the iterates and the last rbar per block.

    A ``None`` gradient is a zero gradient. ``keep_r_eps=False`` is the authors' README reading
    (rbar_t = max_{1<=i<=t} ||x_i - x_0|| for t >= 1, without r_eps) used to show the tests tell them apart.
    """
    sizes = [a.size for a in x0]
    start = np.concatenate([a.ravel() for a in x0]).astype(np.float64)
    offsets = np.cumsum([0, *sizes])
    blocks = [slice(offsets[i], offsets[i + 1]) for i in range(len(sizes))] if layerwise else [slice(0, offsets[-1])]
    x = start.copy()
    r_eps = [0.0 if init_eta is not None else reps_rel * (1 + np.linalg.norm(start[b])) for b in blocks]
    rbar = list(r_eps)
    G = [eps] * len(blocks)
    seen = [0.0] * len(blocks)  # max distance over t >= 1 (README reading)
    for t, step_grads in enumerate(grads):
        g = np.concatenate(
            [
                np.zeros(n) if gi is None else np.asarray(gi, dtype=np.float64).ravel()
                for gi, n in zip(step_grads, sizes)
            ]
        )
        g = g + weight_decay * x
        new_x = x.copy()
        for k, b in enumerate(blocks):
            dist = np.linalg.norm(x[b] - start[b])
            if keep_r_eps:
                rbar[k] = max(rbar[k], dist)
            elif t >= 1:
                seen[k] = max(seen[k], dist)
                rbar[k] = seen[k]
            G[k] = G[k] + np.dot(g[b], g[b])
            eta = lr * init_eta if (t == 0 and init_eta is not None) else lr * rbar[k] / np.sqrt(G[k])
            new_x[b] = x[b] - eta * g[b]
        x = new_x
    out = [x[offsets[i] : offsets[i + 1]].reshape(a.shape) for i, a in enumerate(x0)]
    return out, rbar


def run_torch(
    cls: type[torch.optim.Optimizer],
    x0: list[np.ndarray],
    grads: list[list[np.ndarray | None]],
    **kwargs: object,
) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    params = [nn.Parameter(torch.tensor(a, dtype=torch.float64)) for a in x0]
    opt = cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach() for p in params], opt


def problem(seed: int = 0, steps: int = 3) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    rng = np.random.default_rng(seed)
    x0 = [rng.normal(size=s) for s in SHAPES]
    # a persistent direction plus noise, so that the distance from x_0 (and rbar) grows at every step; the
    # scales differ per tensor so that DoG's group norm and L-DoG's per-tensor norms differ
    drift = [rng.normal(size=s) for s in SHAPES]
    grads: list[list[np.ndarray | None]] = [
        [(d + 0.5 * rng.normal(size=s)) * scale for s, d, scale in zip(SHAPES, drift, (1.0, 5.0, 0.2))]
        for _ in range(steps)
    ]
    return x0, grads


def assert_matches(got: list[torch.Tensor], want: list[np.ndarray], x0: list[np.ndarray]) -> None:
    for g, w, s in zip(got, want, x0):
        # the displacement is compared too: it is far smaller than x when reps_rel is small
        np.testing.assert_allclose(g.numpy() - s, w - s, rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=0)


SETTINGS = [
    {},
    {"reps_rel": 0.05},
    {"reps_rel": 0.05, "weight_decay": 0.1},
    {"reps_rel": 1e-3, "lr": 1.5, "eps": 1e-3},
    {"init_eta": 0.02, "weight_decay": 0.01},
    {"init_eta": 0.02, "lr": 2.0},
]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_reference_three_steps(cls, kwargs, foreach) -> None:
    x0, grads = problem()
    want, rbar = reference(x0, grads, layerwise=cls is LDoG, **kwargs)
    first, r_eps = reference(x0, grads[:1], layerwise=cls is LDoG, **kwargs)
    assert all(a > b for a, b in zip(rbar, r_eps)), "the problem must make rbar grow past r_eps"
    got, opt = run_torch(cls, x0, grads, foreach=foreach, **kwargs)
    assert_matches(got, want, x0)
    if cls is DoG:
        np.testing.assert_allclose(float(opt.param_groups[0]["rbar"]), rbar[0], rtol=1e-12)
    else:
        got_rbar = [float(opt.state[p]["rbar"]) for p in opt.param_groups[0]["params"]]
        np.testing.assert_allclose(got_rbar, rbar, rtol=1e-12)


def test_dog_and_ldog_differ_on_several_tensors() -> None:
    """The reference problem separates the group norm from the per-tensor norms (else the tests above could
    not tell DoG from L-DoG)."""
    x0, grads = problem()
    dog, _ = reference(x0, grads, layerwise=False, reps_rel=0.05)
    ldog, _ = reference(x0, grads, layerwise=True, reps_rel=0.05)
    assert max(np.abs(a - b).max() for a, b in zip(dog, ldog)) > 1e-3


# --------------------------------------------------------------------------------------------------- r_eps


@pytest.mark.parametrize("foreach", FOREACH)
def test_first_step_moves_by_r_eps_along_the_gradient(foreach) -> None:
    """Paper: the first step is x_1 = x_0 - r_eps g_0 / ||g_0|| (up to eps), r_eps = reps_rel (1 + ||x_0||),
    norms over the whole group for DoG."""
    x0, grads = problem()
    reps_rel, eps = 1e-3, 1e-8
    got, opt = run_torch(DoG, x0, grads[:1], reps_rel=reps_rel, eps=eps, foreach=foreach)
    x0_flat = np.concatenate([a.ravel() for a in x0])
    g_flat = np.concatenate([g.ravel() for g in grads[0]])  # type: ignore[union-attr]
    r_eps = reps_rel * (1 + np.linalg.norm(x0_flat))
    move = np.concatenate([(p.numpy() - a).ravel() for p, a in zip(got, x0)])
    np.testing.assert_allclose(move, -r_eps * g_flat / np.sqrt(g_flat @ g_flat + eps), rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(move), r_eps, rtol=1e-8)  # eps is negligible here
    np.testing.assert_allclose(float(opt.param_groups[0]["eta"]), r_eps / np.sqrt(g_flat @ g_flat + eps))


@pytest.mark.parametrize("foreach", FOREACH)
def test_ldog_first_step_moves_each_tensor_by_its_own_r_eps(foreach) -> None:
    x0, grads = problem()
    reps_rel = 1e-3
    got, _ = run_torch(LDoG, x0, grads[:1], reps_rel=reps_rel, foreach=foreach)
    for p, a, g in zip(got, x0, grads[0]):
        assert g is not None
        move = p.numpy() - a
        r_eps = reps_rel * (1 + np.linalg.norm(a))
        np.testing.assert_allclose(move, -r_eps * g / np.sqrt(g.ravel() @ g.ravel() + 1e-8), rtol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(move), r_eps, rtol=1e-6)  # eps is small against ||g||^2


def _returning_problem() -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    """Step 1 pushes back towards x_0, so at steps 1 and 2 the distance from x_0 is below r_eps."""
    x0, grads = problem(steps=1)
    g0 = grads[0]
    back = [None if g is None else -g for g in g0]
    return x0, [g0, back, back]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_step_where_the_max_distance_does_not_grow(cls, foreach) -> None:
    """The distance shrinks below r_eps: rbar stays at r_eps (the max keeps r_eps, as in the authors' code and
    optax) and the trajectory follows the reference; the README reading (no r_eps after t=0) differs."""
    x0, grads = _returning_problem()
    kwargs = {"reps_rel": 0.05, "eps": 1e-2}  # a visible eps makes ||x_1 - x_0|| < r_eps
    layerwise = cls is LDoG
    want, rbar = reference(x0, grads, layerwise=layerwise, **kwargs)
    readme, _ = reference(x0, grads, layerwise=layerwise, keep_r_eps=False, **kwargs)
    got, opt = run_torch(cls, x0, grads, foreach=foreach, **kwargs)
    assert_matches(got, want, x0)
    x0_all = np.concatenate([a.ravel() for a in x0])
    if cls is DoG:
        r_eps = [0.05 * (1 + np.linalg.norm(x0_all))]
        got_rbar = [float(opt.param_groups[0]["rbar"])]
    else:
        r_eps = [0.05 * (1 + np.linalg.norm(a)) for a in x0]
        got_rbar = [float(opt.state[p]["rbar"]) for p in opt.param_groups[0]["params"]]
    np.testing.assert_allclose(got_rbar, r_eps, rtol=1e-14)  # never grew
    np.testing.assert_allclose(rbar, r_eps, rtol=1e-14)
    assert max(np.abs(a - b).max() for a, b in zip(want, readme)) > 1e-6


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_init_eta_is_the_first_step_size_and_reps_rel_is_ignored(cls, foreach) -> None:
    x0, grads = problem(steps=2)
    got, _ = run_torch(cls, x0, grads[:1], init_eta=0.1, lr=0.5, reps_rel=123.0, foreach=foreach)
    for p, a, g in zip(got, x0, grads[0]):
        np.testing.assert_allclose(p.numpy(), a - 0.05 * g, rtol=1e-14)
    # second step: rbar = max(0, ||x_1 - x_0||), reps_rel plays no part
    got, _ = run_torch(cls, x0, grads, init_eta=0.1, lr=0.5, reps_rel=123.0, foreach=foreach)
    want, _ = reference(x0, grads, layerwise=cls is LDoG, init_eta=0.1, lr=0.5)
    assert_matches(got, want, x0)


# --------------------------------------------------------------------------------------------------- details


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_weight_decay_leaves_the_gradient_untouched(cls, foreach) -> None:
    p = nn.Parameter(torch.ones(3, dtype=torch.float64))
    p.grad = torch.full((3,), 0.5, dtype=torch.float64)
    cls([p], weight_decay=0.1, foreach=foreach).step()
    assert torch.equal(p.grad, torch.full((3,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_a_missing_gradient_is_a_zero_gradient(cls, foreach) -> None:
    """grad=None gives the trajectory of a zero gradient: the tensor does not move, and for DoG it still counts
    in ||x_0|| and (after it has moved) in ||x_t - x_0||. The reference treats None as zeros."""
    x0, grads = problem(steps=4)
    grads[0][2] = None  # absent at the group's first step (counts in ||x_0|| for DoG)
    grads[2][0] = None  # absent after having moved (its distance counts for DoG)
    grads[3][1] = None
    kwargs = {"reps_rel": 1e-3, "weight_decay": 0.0}  # small enough for rbar to grow at steps 2 and 3
    want, _ = reference(x0, grads, layerwise=cls is LDoG, **kwargs)
    got, _ = run_torch(cls, x0, grads, foreach=foreach, **kwargs)
    assert_matches(got, want, x0)
    zeros = [[np.zeros(s) if g is None else g for g, s in zip(step, SHAPES)] for step in grads]
    got_zeros, _ = run_torch(cls, x0, zeros, foreach=foreach, **kwargs)
    for a, b in zip(got, got_zeros):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


@pytest.mark.parametrize("foreach", FOREACH)
def test_dog_norms_are_per_param_group(foreach) -> None:
    """Two groups run as two independent DoG instances (each its own x_0 norm, distance and G)."""
    x0, grads = problem()
    params = [nn.Parameter(torch.tensor(a)) for a in x0]
    opt = DoG([{"params": params[:1]}, {"params": params[1:], "reps_rel": 0.01}], reps_rel=0.05, foreach=foreach)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        opt.step()
    first, _ = reference(x0[:1], [s[:1] for s in grads], layerwise=False, reps_rel=0.05)
    rest, _ = reference(x0[1:], [s[1:] for s in grads], layerwise=False, reps_rel=0.01)
    assert_matches([p.detach() for p in params], first + rest, x0)


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_lr_zero_freezes_and_lr_scales_the_step(cls, foreach) -> None:
    x0, grads = problem(steps=1)
    frozen, _ = run_torch(cls, x0, grads, lr=0.0, foreach=foreach)
    assert all(np.array_equal(p.numpy(), a) for p, a in zip(frozen, x0))
    one, _ = run_torch(cls, x0, grads, reps_rel=0.01, foreach=foreach)
    three, _ = run_torch(cls, x0, grads, reps_rel=0.01, lr=3.0, foreach=foreach)
    for a, b, s in zip(one, three, x0):
        np.testing.assert_allclose(b.numpy() - s, 3.0 * (a.numpy() - s), rtol=1e-12)


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_complex_parameters_move_like_their_real_view(cls, foreach) -> None:
    torch.manual_seed(0)
    z = nn.Parameter(torch.randn(5, dtype=torch.complex128))
    r = nn.Parameter(torch.view_as_real(z.detach()).clone())
    opt_z = cls([z], reps_rel=0.1, weight_decay=0.01, foreach=foreach)
    opt_r = cls([r], reps_rel=0.1, weight_decay=0.01, foreach=foreach)
    for _ in range(3):
        g = torch.randn(5, dtype=torch.complex128)
        z.grad, r.grad = g, torch.view_as_real(g).clone()
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_mixed_dtypes_in_one_group(cls) -> None:
    """float32 and float64 tensors in one group: both paths agree, and DoG's group state is float64."""
    x0, grads = problem()
    results = []
    for foreach in FOREACH:
        params = [
            nn.Parameter(torch.tensor(a, dtype=dt)) for a, dt in zip(x0, (torch.float32, torch.float64, torch.float32))
        ]
        opt = cls(params, reps_rel=0.05, foreach=foreach)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = torch.tensor(g, dtype=p.dtype)
            opt.step()
        results.append([p.detach() for p in params])
        if cls is DoG:
            assert opt.param_groups[0]["rbar"].dtype == torch.float64
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    want, _ = reference(x0, grads, layerwise=cls is LDoG, reps_rel=0.05)
    for a, w in zip(results[1], want):
        np.testing.assert_allclose(a.double().numpy(), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_sparse_gradients_are_rejected(cls) -> None:
    p = nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match=f"^{cls.__name__} does not support sparse gradients$"):
        cls([p]).step()


def test_spec_is_learning_rate_free() -> None:
    for name, cls in (("dog", DoG), ("ldog", LDoG)):
        spec = optim.get(name)
        assert spec.optimizer is cls
        assert spec.lr_free and spec.supports_foreach and not spec.needs_closure and not spec.stochastic
        space = spec.search_space()
        assert "optimizer__lr" not in space
        assert set(space) == {"optimizer__reps_rel", "optimizer__weight_decay"}
        assert all(k.removeprefix("optimizer__") in cls([nn.Parameter(torch.zeros(1))]).defaults for k in space)


def test_no_other_library_implements_dog() -> None:
    """Checked when this file was written; if this fails, add a differential test against that library."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    torch_optimizer = pytest.importorskip("torch_optimizer")
    assert not [n for n in pytorch_optimizer.get_supported_optimizers() if "dog" in n.lower()]
    assert not [n for n in dir(torch_optimizer) if "dog" in n.lower()]


# --------------------------------------------------------------------------------------------------- averaging


def _averaged_reference(iterates: list[np.ndarray], gamma: float) -> np.ndarray:
    avg = iterates[0].copy()
    for t, x in enumerate(iterates[1:], start=2):
        w = (1 + gamma) / (t + gamma)
        avg = (1 - w) * avg + w * x
    return avg


@pytest.mark.parametrize("gamma", [0.0, 1.0, 8.0])
def test_polynomial_decay_averaging_matches_the_recursion(gamma) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    averaged = AveragedModel(model, multi_avg_fn=get_polynomial_decay_multi_avg_fn(gamma))
    iterates = []
    for _ in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        iterates.append(torch.cat([p.detach().ravel() for p in model.parameters()]).numpy().copy())
        averaged.update_parameters(model)
    got = torch.cat([p.detach().ravel() for p in averaged.module.parameters()]).numpy()
    np.testing.assert_allclose(got, _averaged_reference(iterates, gamma), rtol=1e-12)
    if gamma == 0.0:  # the uniform average
        np.testing.assert_allclose(got, np.mean(iterates, axis=0), rtol=1e-12)


def test_polynomial_decay_weights_sum_to_one_and_favour_late_iterates() -> None:
    """The closed-form weights of x_1..x_T: they sum to one and grow with t (gamma = 8, T = 20)."""
    basis = list(np.eye(20))
    weights = _averaged_reference(basis, 8.0)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    assert np.all(np.diff(weights) > 0)


def test_averager_copies_integer_buffers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    averaged = AveragedModel(model, multi_avg_fn=get_polynomial_decay_multi_avg_fn(), use_buffers=True)
    opt = DoG(model.parameters(), reps_rel=1e-3)
    x = torch.randn(16, 3)
    snapshots = []
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        averaged.update_parameters(model)
        snapshots.append(copy.deepcopy(model.state_dict()))
    bn = averaged.module[1]
    assert int(bn.num_batches_tracked) == 3
    want = _averaged_reference([s["1.running_mean"].numpy() for s in snapshots], 8.0)
    np.testing.assert_allclose(bn.running_mean.numpy(), want, rtol=1e-6)


def test_averager_rejects_negative_gamma() -> None:
    with pytest.raises(ValueError) as info:
        get_polynomial_decay_multi_avg_fn(-1.0)
    assert str(info.value) == (
        "The 'gamma' parameter of get_polynomial_decay_multi_avg_fn must be a float in the range [0.0, inf). "
        "Got -1.0 instead."
    )


def test_ldog_scalar_state_is_float32_for_bfloat16_parameters() -> None:
    """A bfloat16 running sum of squared gradient norms stops growing once a term is < 1/256 of it."""
    from skopt_nn import optim as _optim

    p = torch.nn.Parameter(torch.ones(64, dtype=torch.bfloat16))
    opt = _optim.get("ldog").build([p])
    for _ in range(2000):
        p.grad = torch.full_like(p, 0.01)
        opt.step()
    state = opt.state[p]
    assert {state[k].dtype for k in ("rbar", "G", "eta")} == {torch.float32}
    # 2000 equal terms 64 g^2 = 0.0064 (g = 0.01 rounded to bf16): a float32 sum is within 1e-4 of 12.8; a bf16
    # one stops near 3.3, where a term falls below half a unit in the last place
    g = float(torch.tensor(0.01, dtype=torch.bfloat16))
    assert float(state["G"]) == pytest.approx(1e-6 + 2000 * 64 * g * g, rel=1e-4)


@pytest.mark.parametrize("name", ["dog", "ldog"])
def test_reps_rel_floored_at_the_dtype_resolution_for_half_precision(name: str) -> None:
    """With bf16 parameters a first movement of 1e-6 (1 + ||x0||) rounds away and DoG never moves: the floor
    (half bf16's epsilon) makes it train; float32 parameters keep the requested reps_rel."""
    from skopt_nn import optim as _optim
    from skopt_nn.optim._dog import _reps_rel

    half = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    full = torch.nn.Parameter(torch.ones(4))
    assert _reps_rel({"params": [half], "reps_rel": 1e-6}) == torch.finfo(torch.bfloat16).eps / 2
    assert _reps_rel({"params": [full], "reps_rel": 1e-6}) == 1e-6
    assert _reps_rel({"params": [half], "reps_rel": 0.1}) == 0.1
    opt = _optim.get(name).build([half])
    for _ in range(5):
        half.grad = torch.ones_like(half)
        opt.step()
    assert float(half.detach().float().max()) < 1.0  # it moved
