"""Annealed gradient noise (Neelakantan et al., 2015): schedule, noise statistics, reference trajectories.

Neither pytorch-optimizer 4.1 nor torch-optimizer 0.3 implements this paper, so there is no differential test;
the reference test replays the same random draws from torch's generator in a numpy SGD.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

import skopt_nn.optim as optim
from skopt_nn.optim._gradient_noise import GradientNoise, gradient_noise
from skopt_nn.testing import SmallRegression


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train(opt: torch.optim.Optimizer, model: torch.nn.Module, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _sigma2(eta: float, gamma: float, t: int) -> float:
    # the paper's schedule, t = 0 at the first step
    return eta / (1 + t) ** gamma


# --------------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("eta,gamma", [(0.3, 0.55), (1.0, 0.55), (0.01, 0.0)])
def test_noise_variance_follows_the_annealing_schedule(eta, gamma, dtype):
    """The sample variance of the added noise is eta / (1 + t)^gamma at t = 0, 1, 2, 9.

    With n draws the relative standard error of a sample variance is sqrt(2 / (n - 1)) (1.4e-3 for n = 1e6);
    we allow 6 of them (0.85 %). A 1-based counter (factor 2^-0.55 = 0.68 at t = 0) or a std/variance mix-up
    fails by far."""
    torch.manual_seed(0)
    n = 1_000_000
    p = torch.nn.Parameter(torch.zeros(n, dtype=dtype))
    opt = GradientNoise([p], base="sgd", noise_eta=eta, noise_gamma=gamma, lr=0.0)
    rel_tol = 6 * math.sqrt(2 / (n - 1))
    for t in range(10):
        p.grad = torch.zeros_like(p)
        opt.step()
        noise = p.grad.double()
        assert p.grad.dtype == dtype and torch.equal(p.detach(), torch.zeros_like(p))  # lr = 0: frozen
        if t in (0, 1, 2, 9):
            expected = _sigma2(eta, gamma, t)
            assert float(noise.var()) / expected == pytest.approx(1.0, abs=rel_tol), f"t={t}"
            assert abs(float(noise.mean())) <= 6 * math.sqrt(expected / n)
            assert opt.noise_std(t) ** 2 == pytest.approx(expected, rel=1e-12)


def test_complex_gradients_get_the_variance_on_each_part():
    torch.manual_seed(0)
    n = 500_000
    p = torch.nn.Parameter(torch.zeros(n, dtype=torch.complex128))
    opt = GradientNoise([p], base="sgd", noise_eta=0.3, lr=0.0)
    p.grad = torch.zeros_like(p)
    opt.step()
    rel_tol = 6 * math.sqrt(2 / (n - 1))
    assert float(p.grad.real.var()) / 0.3 == pytest.approx(1.0, abs=rel_tol)
    assert float(p.grad.imag.var()) / 0.3 == pytest.approx(1.0, abs=rel_tol)


def test_schedule_values():
    opt = GradientNoise(SmallRegression().parameters(), noise_eta=0.3, noise_gamma=0.55)
    for t in (0, 1, 10, 1000):
        assert opt.noise_std(t) == pytest.approx(math.sqrt(0.3 / (1 + t) ** 0.55), rel=1e-15)
    assert opt.noise_std(0) ** 2 == pytest.approx(0.3)


# --------------------------------------------------------------------------------------------------- reference


SHAPES = [(3, 2), (4,)]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "hp",
    [
        {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "eta": 0.3, "gamma": 0.55},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "eta": 1.0, "gamma": 0.55},
        {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "eta": 0.01, "gamma": 1.0},
    ],
    ids=["plain", "momentum-wd", "gamma1"],
)
def test_reference_three_steps_with_sgd(hp, foreach):
    """Three steps of g + N(0, sigma_t^2) fed to heavy-ball SGD, in numpy; the noise is replayed from torch's
    generator (same seed, one standard-normal draw per gradient in parameter order)."""
    steps, seed = 3, 7
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(steps)]
    theta0 = [rng.standard_normal(shape) for shape in SHAPES]
    gen = torch.Generator().manual_seed(seed)
    eps = [[torch.randn(shape, generator=gen, dtype=torch.float64).numpy() for shape in SHAPES] for _ in range(steps)]

    theta = [t.copy() for t in theta0]
    buf: list[np.ndarray | None] = [None] * len(theta)
    expected = []
    for t in range(steps):
        sigma = math.sqrt(hp["eta"] / (1 + t) ** hp["gamma"])
        for i in range(len(theta)):
            d = grads[t][i] + sigma * eps[t][i] + hp["weight_decay"] * theta[i]
            if hp["momentum"]:
                buf[i] = d.copy() if buf[i] is None else hp["momentum"] * buf[i] + d
                d = buf[i]
            theta[i] = theta[i] - hp["lr"] * d
        expected.append([x.copy() for x in theta])

    params = [torch.nn.Parameter(torch.tensor(x)) for x in theta0]
    opt = GradientNoise(
        params,
        base=torch.optim.SGD,
        noise_eta=hp["eta"],
        noise_gamma=hp["gamma"],
        lr=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        foreach=foreach,
    )
    torch.manual_seed(seed)
    for t in range(steps):
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g)
        opt.step()
        for p, want in zip(params, expected[t]):
            np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_eta_zero_is_the_base_exactly(base):
    """eta = 0: the trajectory is the bare base's, bit for bit, and no random numbers are drawn."""
    kwargs = {"lr": 0.05, "momentum": 0.9} if base == "sgd" else {"lr": 0.01}
    a, b = SmallRegression(), SmallRegression()
    torch.manual_seed(3)
    _train(GradientNoise(a.parameters(), base=base, noise_eta=0.0, **kwargs), a, 12)
    after = torch.get_rng_state()
    torch.manual_seed(3)
    _train(optim.get(base).build(b.parameters(), **kwargs), b, 12)
    assert torch.equal(_flat(a), _flat(b))
    assert torch.equal(after, torch.get_rng_state())


def test_seeded_reproducibility():
    results = []
    for seed in (0, 0, 1):
        model = SmallRegression()
        opt = GradientNoise(model.parameters(), noise_eta=0.3, lr=0.05)
        torch.manual_seed(seed)
        _train(opt, model, 8)
        results.append(_flat(model))
    assert torch.equal(results[0], results[1])
    assert not torch.allclose(results[0], results[2])


def test_functional_foreach_equals_single_tensor_with_mixed_dtypes():
    base = [torch.ones(5, 4), torch.ones(3, dtype=torch.float64), torch.ones(2, 2)]
    results = []
    for foreach in (False, True):
        grads = [g.clone() for g in base]
        torch.manual_seed(11)
        gradient_noise(grads, std=0.7, foreach=foreach)
        results.append(grads)
    for x, y in zip(*results):
        assert torch.equal(x, y)
    assert not torch.equal(results[0][0], base[0])


def test_closure_path_equals_precomputed_gradients():
    """step(closure) adds the noise after the closure's backward: the same result as backward then step()."""
    a, b = SmallRegression(), SmallRegression()
    opt_a = GradientNoise(a.parameters(), base="adam", noise_eta=0.3, lr=0.01)
    opt_b = GradientNoise(b.parameters(), base="adam", noise_eta=0.3, lr=0.01)

    def closure():
        opt_a.zero_grad()
        loss = a()
        loss.backward()
        return loss

    torch.manual_seed(4)
    for _ in range(5):
        loss = opt_a.step(closure)
        assert isinstance(loss, torch.Tensor)
    torch.manual_seed(4)
    _train(opt_b, b, 5)
    assert torch.equal(_flat(a), _flat(b))


def test_state_dict_round_trip_keeps_the_step_counter():
    model = SmallRegression()
    opt = GradientNoise(model.parameters(), base="sgd", noise_eta=0.3, lr=0.05, momentum=0.9)
    torch.manual_seed(0)
    _train(opt, model, 5)
    state = opt.state_dict()
    assert state["wrapper_step"] == 5 and state["state"] == {}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    clone_model, fresh_model = copy.deepcopy(model), copy.deepcopy(model)
    clone = GradientNoise(clone_model.parameters(), base="sgd", noise_eta=0.3, lr=0.05, momentum=0.9)
    clone.load_state_dict(loaded)
    assert clone.param_groups is clone.base_optimizer.param_groups
    # a copy that gets the base's state but not the counter restarts the schedule at sigma_0
    fresh = GradientNoise(fresh_model.parameters(), base="sgd", noise_eta=0.3, lr=0.05, momentum=0.9)
    fresh.base_optimizer.load_state_dict(loaded["base"])
    for o, m in ((opt, model), (clone, clone_model), (fresh, fresh_model)):
        torch.manual_seed(9)
        _train(o, m, 4)
    assert torch.equal(_flat(model), _flat(clone_model))
    assert not torch.allclose(_flat(model), _flat(fresh_model))


def test_param_groups_are_shared_and_per_group_eta():
    model = SmallRegression()
    opt = GradientNoise(
        [{"params": model.fc1.parameters(), "noise_eta": 0.0}, {"params": model.fc2.parameters()}],
        base="sgd",
        lr=0.0,
        noise_eta=0.5,
    )
    assert opt.param_groups is opt.base_optimizer.param_groups
    assert [g["noise_eta"] for g in opt.param_groups] == [0.0, 0.5]
    model().backward()
    fc1, fc2 = list(model.fc1.parameters()), list(model.fc2.parameters())
    clean1, clean2 = [p.grad.clone() for p in fc1], [p.grad.clone() for p in fc2]
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(fc1, clean1))  # eta = 0 in this group
    assert not any(torch.equal(p.grad, g) for p, g in zip(fc2, clean2))
    with pytest.raises(ValueError, match="'noise_eta' parameter of GradientNoise"):
        opt.add_param_group({"params": list(model.norm.parameters()), "noise_eta": -1.0})


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = GradientNoise(emb.parameters(), base=torch.optim.SparseAdam)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="GradientNoise does not support sparse gradients"):
        opt.step()


def test_composition_by_name_and_repr():
    spec = optim.get("gradient_noise_adam")
    assert spec.stochastic and set(spec.search_space()) >= {"optimizer__noise_eta", "optimizer__lr"}
    assert {"gradient_noise_sgd", "gradient_noise_adam"} <= set(optim.available())
    assert "gradient_noise" not in optim.available()
    model = SmallRegression()
    opt = optim.get("gradient_noise_rmsprop").build(model.parameters(), lr=0.01, noise_eta=0.01)
    assert isinstance(opt.base_optimizer, torch.optim.RMSprop)
    torch.manual_seed(0)
    losses = _train(opt, model, 30)
    assert losses[-1] < losses[0]
    assert repr(opt).startswith("GradientNoise (noise_eta=0.01, noise_gamma=0.55) around\nRMSprop (")
