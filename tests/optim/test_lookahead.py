"""Lookahead (Zhang et al., 2019): reference trajectories, differential tests, composition and the wrapper API."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

import skopt_nn.optim as optim
from skopt_nn.optim._gradient_noise import GradientNoise
from skopt_nn.optim._lookahead import Lookahead, lookahead
from skopt_nn.testing import SmallRegression

# --------------------------------------------------------------------------------------------------- helpers


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


SHAPES = [(3, 2), (4,)]


def _fixed_grads(steps: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(steps)]


def _reference_sgd_lookahead(
    theta0: list[np.ndarray],
    grads: list[list[np.ndarray]],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    k: int,
    alpha: float,
    pullback: str,
) -> list[list[np.ndarray]]:
    """Algorithm 1 of the paper with heavy-ball SGD inside (torch's convention: buf_1 = g_1, buf = mu*buf + g)."""
    theta = [t.copy() for t in theta0]
    phi = [t.copy() for t in theta0]  # slow weights start at theta_0
    buf: list[np.ndarray | None] = [None] * len(theta)
    slow_buf = [np.zeros_like(t) for t in theta]
    trajectory = []
    for step, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            d = g + weight_decay * theta[i]
            if momentum:
                buf[i] = d.copy() if buf[i] is None else momentum * buf[i] + d
                d = buf[i]
            theta[i] = theta[i] - lr * d
        if step % k == 0:
            for i in range(len(theta)):
                phi[i] = phi[i] + alpha * (theta[i] - phi[i])
                theta[i] = phi[i].copy()
                if momentum and pullback == "reset":
                    buf[i] = np.zeros_like(theta[i])
                elif momentum and pullback == "pullback":
                    slow_buf[i] = slow_buf[i] + alpha * (buf[i] - slow_buf[i])
                    buf[i] = slow_buf[i].copy()
        trajectory.append([t.copy() for t in theta])
    return trajectory


# --------------------------------------------------------------------------------------------------- reference


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "hp",
    [
        {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "k": 3, "alpha": 0.5, "pullback": "none"},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "k": 3, "alpha": 0.8, "pullback": "none"},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "k": 2, "alpha": 0.5, "pullback": "reset"},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "k": 3, "alpha": 0.3, "pullback": "pullback"},
    ],
    ids=["plain", "momentum-wd", "reset", "pullback"],
)
def test_reference_two_sync_periods_with_sgd(hp, foreach):
    """Two synchronisation periods (and one step more) against the paper's Algorithm 1 written in numpy."""
    steps = 2 * hp["k"] + 1
    grads = _fixed_grads(steps)
    rng = np.random.default_rng(1)
    theta0 = [rng.standard_normal(shape) for shape in SHAPES]
    expected = _reference_sgd_lookahead(
        theta0,
        grads,
        lr=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        k=hp["k"],
        alpha=hp["alpha"],
        pullback=hp["pullback"],
    )

    params = [torch.nn.Parameter(torch.tensor(t)) for t in theta0]
    opt = Lookahead(
        params,
        base=torch.optim.SGD,
        lookahead_k=hp["k"],
        lookahead_alpha=hp["alpha"],
        pullback_momentum=hp["pullback"],
        lr=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        foreach=foreach,
    )
    for step_grads, want in zip(grads, expected):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        for p, w in zip(params, want):
            np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12, atol=1e-14)


def test_reference_alpha_one_is_the_base_exactly():
    """alpha = 1 moves the slow weights onto the fast ones: the trajectory is the base's, bit for bit."""
    a, b = SmallRegression(), SmallRegression()
    _train(Lookahead(a.parameters(), base="adam", lookahead_k=2, lookahead_alpha=1.0, lr=0.01), a, 9)
    _train(torch.optim.Adam(b.parameters(), lr=0.01), b, 9)
    assert torch.equal(_flat(a), _flat(b))


def test_slow_weights_start_at_the_first_step_not_at_construction():
    """Weights loaded into the model after the optimizer is built are theta_0 (not the construction-time ones)."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = Lookahead([p], base=torch.optim.SGD, lookahead_k=2, lookahead_alpha=0.5, lr=0.1)
    with torch.no_grad():
        p.copy_(torch.tensor([10.0, 20.0, 30.0]))
    for _ in range(2):
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
    # theta_2 = theta_0 - 0.2, phi = theta_0 + 0.5 * (-0.2)
    torch.testing.assert_close(p.detach(), torch.tensor([9.9, 19.9, 29.9], dtype=torch.float64))


def test_functional_foreach_equals_single_tensor_with_mixed_dtypes():
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(5, 4, generator=g), torch.randn(3, generator=g, dtype=torch.float64)]
    results = []
    for foreach in (False, True):
        params = [t.clone() for t in tensors]
        slow = [t.clone() * 0.5 for t in tensors]
        bufs = [t.clone() * 2 for t in tensors]
        slow_bufs = [t.clone() * -1 for t in tensors]
        lookahead(params, slow, bufs, slow_bufs, alpha=0.3, pullback_momentum="pullback", foreach=foreach)
        results.append(params + slow + bufs + slow_bufs)
    for x, y in zip(*results):
        assert torch.equal(x, y)


# --------------------------------------------------------------------------------------------------- differential


def test_matches_pytorch_optimizer_lookahead_around_adam():
    """pytorch-optimizer's Lookahead (slow weights = theta_0 at construction, sync after k steps) gives our
    trajectory around the same Adam."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours = Lookahead(ours_model.parameters(), base="adam", lookahead_k=5, lookahead_alpha=0.5, lr=0.02)
    theirs = pytorch_optimizer.Lookahead(
        torch.optim.Adam(theirs_model.parameters(), lr=0.02), k=5, alpha=0.5, pullback_momentum="none"
    )
    _train(ours, ours_model, 23)
    _train(theirs, theirs_model, 23)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pullback", ["none", "reset", "pullback"])
def test_matches_pytorch_optimizer_lookahead_around_sgd_momentum(pullback):
    """The same around heavy-ball SGD, for each ``pullback_momentum`` mode (pytorch-optimizer copies the
    interpolated momentum into its slow copy, as we do)."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours = Lookahead(
        ours_model.parameters(),
        base="sgd",
        lookahead_k=4,
        lookahead_alpha=0.6,
        pullback_momentum=pullback,
        lr=0.05,
        momentum=0.9,
    )
    theirs = pytorch_optimizer.Lookahead(
        torch.optim.SGD(theirs_model.parameters(), lr=0.05, momentum=0.9), k=4, alpha=0.6, pullback_momentum=pullback
    )
    _train(ours, ours_model, 21)
    _train(theirs, theirs_model, 21)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-12, atol=1e-12)


def test_torch_optimizer_lookahead_differs_by_starting_from_theta_1():
    """torch-optimizer 0.3 synchronises right after the first base step (its group counter starts at 0 and
    syncs when it is 0), so its slow weights start at theta_1 and its syncs come after steps 1, k+1, 2k+1, ...
    Documented difference, asserted exactly: its trajectory is one plain Adam step followed by ours around the
    same Adam. And it is not ours from theta_0."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    theirs_model, ours_model, plain_model = SmallRegression(), SmallRegression(), SmallRegression()
    theirs = torch_optimizer.Lookahead(torch.optim.Adam(theirs_model.parameters(), lr=0.02), k=5, alpha=0.5)
    _train(theirs, theirs_model, 23)

    adam = torch.optim.Adam(ours_model.parameters(), lr=0.02)
    _train(adam, ours_model, 1)
    ours = Lookahead(ours_model.parameters(), base=lambda params, **kw: adam, lookahead_k=5, lookahead_alpha=0.5)
    _train(ours, ours_model, 22)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-12, atol=1e-12)

    _train(Lookahead(plain_model.parameters(), base="adam", lr=0.02), plain_model, 23)
    assert not torch.allclose(_flat(plain_model), _flat(theirs_model), rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------------- composition


def test_composition_by_name_builds_and_trains():
    spec = optim.get("lookahead_radam")
    assert spec.name == "lookahead_radam" and not spec.wraps_optimizer
    assert {"optimizer__lr", "optimizer__lookahead_k", "optimizer__lookahead_alpha"} <= set(spec.search_space())
    model = SmallRegression()
    opt = spec.build(model.parameters(), lr=0.05, lookahead_k=4)
    assert isinstance(opt, Lookahead) and isinstance(opt.base_optimizer, torch.optim.RAdam)
    assert opt.param_groups[0]["lookahead_k"] == 4 and opt.param_groups[0]["lr"] == 0.05
    losses = _train(opt, model, 60)
    assert losses[-1] < 0.5 * losses[0]


def test_registered_compositions_and_bare_wrapper_listing():
    names = optim.available()
    assert {"lookahead_adam", "lookahead_sgd"} <= set(names)
    assert "lookahead" not in names and "lookahead" in optim.available(wrappers=True)
    assert optim.get("lookahead_adam").optimizer_class is Lookahead


def test_base_by_class_factory_or_name():
    for base in ("sgd", torch.optim.SGD, lambda params, **kw: torch.optim.SGD(params, **kw), optim.get("sgd")):
        opt = Lookahead(SmallRegression().parameters(), base=base, lr=0.1)
        assert type(opt.base_optimizer) is torch.optim.SGD


def test_nesting_gradient_noise_around_lookahead_sgd():
    """'gradient_noise_lookahead_sgd' composes two wrappers: noise is added to the gradients, then Lookahead runs
    SGD and synchronises. One param_groups list is shared by the three levels."""
    spec = optim.get("gradient_noise_lookahead_sgd")
    model = SmallRegression()
    opt = spec.build(model.parameters(), lr=0.05, momentum=0.9, lookahead_k=3, noise_eta=0.01)
    assert isinstance(opt, GradientNoise)
    inner = opt.base_optimizer
    assert isinstance(inner, Lookahead) and isinstance(inner.base_optimizer, torch.optim.SGD)
    assert opt.param_groups is inner.param_groups is inner.base_optimizer.param_groups
    torch.manual_seed(0)
    losses = _train(opt, model, 30)
    assert losses[-1] < losses[0]

    # with eta = 0 it is exactly lookahead_sgd
    a, b = SmallRegression(), SmallRegression()
    _train(spec.build(a.parameters(), lr=0.05, momentum=0.9, lookahead_k=3, noise_eta=0.0), a, 11)
    _train(optim.get("lookahead_sgd").build(b.parameters(), lr=0.05, momentum=0.9, lookahead_k=3), b, 11)
    assert torch.equal(_flat(a), _flat(b))

    # state round trip through all levels
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    clone_model = copy.deepcopy(model)
    clone = spec.build(clone_model.parameters(), lr=0.05, momentum=0.9, lookahead_k=3, noise_eta=0.01)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    assert clone.param_groups is clone.base_optimizer.param_groups is clone.base_optimizer.base_optimizer.param_groups
    for o, m in ((opt, model), (clone, clone_model)):
        torch.manual_seed(5)
        _train(o, m, 7)
    assert torch.equal(_flat(model), _flat(clone_model))


def test_lookahead_around_lookahead_is_rejected():
    with pytest.raises(ValueError, match="cannot wrap Lookahead"):
        optim.get("lookahead_lookahead_adam").build(SmallRegression().parameters())


# --------------------------------------------------------------------------------------------------- wrapper API


def test_param_groups_are_shared_with_the_base():
    model = SmallRegression()
    opt = Lookahead(
        [{"params": model.fc1.parameters()}, {"params": model.fc2.parameters(), "lr": 0.5, "lookahead_k": 7}],
        base="sgd",
        lr=0.1,
    )
    base = opt.base_optimizer
    assert opt.param_groups is base.param_groups
    assert all(a is b for a, b in zip(opt.param_groups, base.param_groups))
    assert [g["lookahead_k"] for g in base.param_groups] == [5, 7]
    assert {"lookahead_k", "lookahead_alpha", "pullback_momentum", "lr", "momentum"} <= set(opt.defaults)

    opt.param_groups[0]["lr"] = 0.3
    assert base.param_groups[0]["lr"] == 0.3
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _train(opt, model, 1)
    scheduler.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.15) and base.param_groups[1]["lr"] == pytest.approx(0.25)

    opt.add_param_group({"params": list(model.norm.parameters()), "lookahead_alpha": 0.8})
    assert len(base.param_groups) == 3 and opt.param_groups is base.param_groups
    assert base.param_groups[2]["lookahead_alpha"] == 0.8 and base.param_groups[2]["lookahead_k"] == 5
    _train(opt, model, 5)
    assert all(p in opt.state for p in model.norm.parameters())

    with pytest.raises(ValueError, match="'lookahead_k' parameter of Lookahead"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lookahead_k": 0})


def test_per_group_k_and_grad_none_params():
    p1 = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    p2 = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    unused = torch.nn.Parameter(torch.full((2,), 3.0, dtype=torch.float64))
    opt = Lookahead([{"params": [p1, unused]}, {"params": [p2], "lookahead_k": 3}], base="sgd", lookahead_k=2, lr=1.0)
    for _ in range(3):
        p1.grad = torch.ones(2, dtype=torch.float64)
        p2.grad = torch.ones(2, dtype=torch.float64)
        opt.step()
    # p1 synced after step 2 (-2 -> -1), then one more step: -2; p2 synced after step 3: -3 -> -1.5
    torch.testing.assert_close(p1.detach(), torch.full((2,), -2.0, dtype=torch.float64))
    torch.testing.assert_close(p2.detach(), torch.full((2,), -1.5, dtype=torch.float64))
    assert torch.equal(unused.detach(), torch.full((2,), 3.0, dtype=torch.float64))


def test_state_dict_round_trip_mid_period_with_weights_only():
    model = SmallRegression()
    opt = Lookahead(model.parameters(), base="sgd", lookahead_k=4, pullback_momentum="pullback", lr=0.05, momentum=0.9)
    _train(opt, model, 6)
    state = opt.state_dict()
    assert state["wrapper_step"] == 6
    assert set(state["state"][0]) == {"slow_param", "slow_momentum"}
    assert "momentum_buffer" in state["base"]["state"][0]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)

    clone_model = copy.deepcopy(model)
    clone = Lookahead(
        clone_model.parameters(), base="sgd", lookahead_k=4, pullback_momentum="pullback", lr=0.05, momentum=0.9
    )
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    assert clone.param_groups is clone.base_optimizer.param_groups
    assert clone.param_groups[0]["lookahead_k"] == 4
    _train(opt, model, 7)
    _train(clone, clone_model, 7)
    assert torch.equal(_flat(model), _flat(clone_model))


def test_state_dict_casts_slow_weights_to_the_parameter_dtype():
    model = SmallRegression()
    opt = Lookahead(model.parameters(), base="adam", lr=0.01)
    _train(opt, model, 2)
    model32 = SmallRegression(dtype=torch.float32)
    opt32 = Lookahead(model32.parameters(), base="adam", lr=0.01)
    opt32.load_state_dict(opt.state_dict())
    assert all(s["slow_param"].dtype == torch.float32 for s in opt32.state.values())


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))], ids=["deepcopy", "pickle"])
def test_copies_keep_the_groups_shared(clone):
    model = SmallRegression()
    opt = Lookahead(model.parameters(), base="adam", lookahead_k=3, lr=0.01)
    _train(opt, model, 4)
    model2, opt2 = clone((model, opt))
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    assert opt2.param_groups[0]["params"][0] is next(model2.parameters())
    _train(opt, model, 5)
    _train(opt2, model2, 5)
    assert torch.equal(_flat(model), _flat(model2))


def test_zero_grad_repr_and_closure():
    model = SmallRegression()
    opt = Lookahead(model.parameters(), base="adam", lr=0.01)
    model().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    text = repr(opt)
    assert text.startswith("Lookahead (lookahead_k=5, lookahead_alpha=0.5") and "Adam (" in text

    def closure():
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0


def test_lbfgs_base_gets_the_closure():
    model = SmallRegression()
    opt = Lookahead(model.parameters(), base="lbfgs", lookahead_k=2, lr=1.0, line_search_fn="strong_wolfe")
    first = float(model().detach())

    def closure():
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    assert float(model().detach()) < first


def test_bad_arguments():
    params = SmallRegression().parameters
    with pytest.raises(ValueError) as info:
        Lookahead(params(), base="adam", pullback_momentum="reset")
    assert str(info.value) == (
        "The 'pullback_momentum' parameter of Lookahead must be 'none' for a base without a momentum buffer (Adam). "
        "Got 'reset' instead."
    )
    with pytest.raises(TypeError, match="must build a torch.optim.Optimizer"):
        Lookahead(params(), base=lambda params, **kw: object())
    with pytest.raises(ValueError, match="Unknown optimizer 'adamm'"):
        Lookahead(params(), base="adamm")
    with pytest.raises(ValueError, match="'lookahead_alpha' parameter of Lookahead must be a float in the range"):
        Lookahead(params(), lookahead_alpha=1.5)
