"""AdaHessian against the paper's equations, pytorch-optimizer and torch-optimizer.

The reference test uses a quadratic ``f(x) = 1/2 x^T A x + b^T x`` over several tensors (1-D, 2-D, 3-D, 4-D)
with a dense symmetric ``A``, so the Hessian-vector product is exactly ``A z`` and couples all tensors. The
probes are drawn in the test the way the optimizer documents it (``randint(0, 2) * 2 - 1`` per parameter, in
param-group order, from the seeded generator), and every step is then computed in plain numpy:

    g = A x + b,  D = |z * (A z)|  (averaged over dims >= 2 for 3-D/4-D tensors)
    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) D^2
    x = x - lr * ( (m / (1 - b1^t)) / ((sqrt(v / (1 - b2^t)))^k + eps) + wd * x )
"""

from __future__ import annotations

import copy
import gc
import io
import pickle
import re
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import skopt_nn.optim as optim
from skopt_nn.optim._adahessian import AdaHessian
from skopt_nn.testing import SmallRegression

# torch warns on every backward(create_graph=True) about the parameter <-> grad cycle; the tests free it
pytestmark = pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")

FOREACH = [False, True]
SHAPES = [(3,), (2, 3), (1, 2, 3), (2, 1, 2, 2)]


# --------------------------------------------------------------------------------------------------- reference


def _quadratic_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(s)) for s in SHAPES)
    M = rng.normal(size=(n, n))
    A = (M + M.T) / 2 + n * np.eye(n) / 4  # symmetric, indefinite directions allowed
    b = rng.normal(size=n)
    x0 = [rng.normal(size=s) for s in SHAPES]
    return A, b, x0


def _probes(seed: int, steps: int) -> list[list[np.ndarray]]:
    """The optimizer's documented draw: each step, one ``randint(0, 2) * 2 - 1`` per parameter in order, from
    one generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return [
        [(torch.randint(0, 2, s, generator=g, dtype=torch.float64) * 2 - 1).numpy() for s in SHAPES]
        for _ in range(steps)
    ]


def reference(
    A: np.ndarray,
    b: np.ndarray,
    x0: list[np.ndarray],
    probes: list[list[np.ndarray]],
    groups: list[dict],
) -> list[np.ndarray]:
    """AdaHessian from the paper's equations; ``groups`` maps tensor indices to hyperparameters."""
    sizes = [a.size for a in x0]
    offsets = np.cumsum([0, *sizes])
    x = np.concatenate([a.ravel() for a in x0])
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, z_list in enumerate(probes, start=1):
        z = np.concatenate([z.ravel() for z in z_list])
        g = A @ x + b
        hz = A @ z
        D = np.abs(z * hz)
        for i, shape in enumerate(SHAPES):
            block = slice(offsets[i], offsets[i + 1])
            if len(shape) >= 3:
                d = D[block].reshape(shape)
                D[block] = np.broadcast_to(d.mean(axis=tuple(range(2, len(shape))), keepdims=True), shape).ravel()
        x_new = x.copy()
        for group in groups:
            lr, (b1, b2) = group["lr"], group["betas"]
            eps, wd, k = group["eps"], group["weight_decay"], group["hessian_power"]
            for i in group["index"]:
                s = slice(offsets[i], offsets[i + 1])
                m[s] = b1 * m[s] + (1 - b1) * g[s]
                v[s] = b2 * v[s] + (1 - b2) * D[s] ** 2
                m_hat = m[s] / (1 - b1**t)
                v_hat = v[s] / (1 - b2**t)
                x_new[s] = x[s] - lr * (m_hat / (np.sqrt(v_hat) ** k + eps) + wd * x[s])
        x = x_new
    return [x[offsets[i] : offsets[i + 1]].reshape(s) for i, s in enumerate(SHAPES)]


DEFAULTS = {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4, "weight_decay": 0.0, "hessian_power": 1.0}
SETTINGS = [
    {},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
    {"lr": 0.1, "weight_decay": 0.1},
    {"lr": 0.2, "hessian_power": 0.5, "weight_decay": 0.01, "betas": (0.5, 0.9)},
    {"hessian_power": 0.0, "eps": 0.5},
]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_matches_numpy_reference(setting: dict, foreach: bool) -> None:
    A, b, x0 = _quadratic_problem()
    params = [nn.Parameter(torch.tensor(a)) for a in x0]
    opt = AdaHessian(params, **setting, foreach=foreach, seed=17)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        x = torch.cat([p.reshape(-1) for p in params])
        (0.5 * x @ A_t @ x + b_t @ x).backward(create_graph=True)
        opt.step()
    opt.zero_grad(set_to_none=True)

    expected = reference(A, b, x0, _probes(17, 3), [{**DEFAULTS, **setting, "index": range(len(SHAPES))}])
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("foreach", FOREACH)
def test_reference_with_param_groups(foreach: bool) -> None:
    """One probe spans every group: the product A z couples tensors of different groups."""
    A, b, x0 = _quadratic_problem(seed=3)
    params = [nn.Parameter(torch.tensor(a)) for a in x0]
    second = {"lr": 0.05, "weight_decay": 0.1, "hessian_power": 0.5, "betas": (0.8, 0.99)}
    opt = AdaHessian([{"params": params[:2]}, {"params": params[2:], **second}], foreach=foreach, seed=5)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        x = torch.cat([p.reshape(-1) for p in params])
        (0.5 * x @ A_t @ x + b_t @ x).backward(create_graph=True)
        opt.step()
    opt.zero_grad(set_to_none=True)

    groups = [{**DEFAULTS, "index": [0, 1]}, {**DEFAULTS, **second, "index": [2, 3]}]
    expected = reference(A, b, x0, _probes(5, 3), groups)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)


def test_reference_detects_a_wrong_estimator() -> None:
    """Guard: the same run differs from a reference that uses diag(A) (the true diagonal) instead of |z*Az|."""
    A, b, x0 = _quadratic_problem()
    params = [nn.Parameter(torch.tensor(a)) for a in x0]
    opt = AdaHessian(params, seed=17)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    opt.zero_grad(set_to_none=True)
    x = torch.cat([p.reshape(-1) for p in params])
    (0.5 * x @ A_t @ x + b_t @ x).backward(create_graph=True)
    opt.step()
    # same gradient at x0, but the Hessian replaced by its true diagonal
    x_start = np.concatenate([a.ravel() for a in x0])
    A_diag = np.diag(np.diag(A))
    diag_only = reference(A_diag, b + (A - A_diag) @ x_start, x0, _probes(17, 1), [{**DEFAULTS, "index": range(4)}])
    exact = reference(A, b, x0, _probes(17, 1), [{**DEFAULTS, "index": range(4)}])
    got = np.concatenate([p.detach().numpy().ravel() for p in params])
    np.testing.assert_allclose(got, np.concatenate([e.ravel() for e in exact]), rtol=1e-12, atol=1e-14)
    assert not np.allclose(got, np.concatenate([e.ravel() for e in diag_only]), rtol=1e-6)


def test_closed_form_hessian_diagonal_and_constant_gradients() -> None:
    """``f = sum(c * w) + sum(u^3)``: w's gradient has no graph (its Hessian rows are 0, so D_w = 0 exactly),
    and H_u = diag(6u) gives D_u = 6|u| whatever the probe."""
    w = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    u = nn.Parameter(torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64))
    c = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt = AdaHessian([w, u], betas=(0.9, 0.5), seed=0)
    u0 = u.detach().clone()
    ((c * w).sum() + (u**3).sum()).backward(create_graph=True)
    assert w.grad is not None and not w.grad.requires_grad
    opt.step()
    torch.testing.assert_close(opt.state[w]["exp_hessian_diag_sq"], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(opt.state[u]["exp_hessian_diag_sq"], 0.5 * (6 * u0.abs()) ** 2, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------------------------------- errors


def test_error_without_create_graph() -> None:
    model = SmallRegression()
    opt = AdaHessian(model.parameters())
    model().backward()
    with pytest.raises(RuntimeError) as info:
        opt.step()
    assert str(info.value) == (
        "AdaHessian needs loss.backward(create_graph=True): its Hessian-vector products differentiate the "
        "gradients, but none of them carries a graph (grad_fn is None). Call loss.backward(create_graph=True) "
        "before step(), and optimizer.zero_grad(set_to_none=True) after it to free that graph."
    )
    assert all(len(s) == 0 or float(s["step"]) == 0 for s in opt.state.values())


def test_sparse_gradients_rejected() -> None:
    emb = nn.Embedding(5, 3, sparse=True)
    opt = AdaHessian(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=re.escape("AdaHessian does not support sparse gradients")):
        opt.step()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, "The 'lr' parameter of AdaHessian must be a float in the range [0.0, inf). Got -0.1 instead."),
        (
            {"betas": (0.9, 1.0)},
            "The 'betas' parameter of AdaHessian must be a pair of floats in the range [0.0, 1.0). "
            "Got (0.9, 1.0) instead.",
        ),
        (
            {"hessian_power": -0.5},
            "The 'hessian_power' parameter of AdaHessian must be a float in the range [0.0, 1.0]. Got -0.5 instead.",
        ),
        (
            {"seed": 1.5},
            "The 'seed' parameter of AdaHessian must be an int in the range [0, 18446744073709551615] or None. "
            "Got 1.5 instead.",
        ),
    ],
)
def test_bad_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        AdaHessian(SmallRegression().parameters(), **kwargs)
    assert str(info.value) == message


def test_lr_zero_accepted_and_defaults() -> None:
    opt = AdaHessian(SmallRegression().parameters(), lr=0.0)
    assert opt.defaults == {
        "lr": 0.0,
        "betas": (0.9, 0.999),
        "eps": 1e-4,
        "weight_decay": 0.0,
        "hessian_power": 1.0,
        "foreach": None,
        "seed": None,
    }


# --------------------------------------------------------------------------------------------------- helpers


def _train(opt: torch.optim.Optimizer, model: nn.Module, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        model().backward(create_graph=True)
        opt.step()
    opt.zero_grad(set_to_none=True)


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


class SmallConv(nn.Module):
    """Conv2d (a 4-D kernel, averaged over 3x3) + Linear on fixed data."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(2, 3, 3).double()
        self.fc = nn.Linear(27, 1).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3)
        self.X = torch.randn(8, 2, 5, 5, generator=g, dtype=torch.float64)
        self.y = torch.randn(8, 1, generator=g, dtype=torch.float64)

    def forward(self) -> torch.Tensor:
        h = torch.tanh(self.conv(self.X)).flatten(1)
        return ((self.fc(h) - self.y) ** 2).mean()


# --------------------------------------------------------------------------------------------------- others

PO_SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.05, "hessian_power": 0.5},
]


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("setting", PO_SETTINGS, ids=["lr", "all"])
def test_matches_pytorch_optimizer(setting: dict, foreach: bool) -> None:
    """pytorch-optimizer's AdaHessian draws the same probes (``randint_like(p, 0, 2) * 2 - 1`` per parameter
    from the global RNG) and, with decoupled lr-scaled decay and one probe per step, computes the same
    update: eps is added after the Hessian power in both. Only its defaults differ (lr=0.1, eps=1e-16)."""
    po = pytest.importorskip("pytorch_optimizer")
    kw = {**DEFAULTS, **setting}
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours = AdaHessian(ours_model.parameters(), **kw, foreach=foreach)
    theirs = po.AdaHessian(
        theirs_model.parameters(),
        **kw,
        weight_decouple=True,
        fixed_decay=False,
        update_period=1,
        num_samples=1,
        hessian_distribution="rademacher",
        foreach=foreach,
    )
    for opt, model in ((ours, ours_model), (theirs, theirs_model)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            _train(opt, model, 12)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(_flat(ours_model), _flat(SmallRegression()))
    for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
        for key in ("exp_avg", "exp_hessian_diag_sq"):
            torch.testing.assert_close(ours.state[p][key], theirs.state[q][key], rtol=1e-10, atol=1e-14)


def test_private_generator_equals_seeded_global_rng() -> None:
    """``seed=s`` draws what torch's global RNG draws after ``torch.manual_seed(s)`` (pytorch-optimizer here),
    without touching the global RNG."""
    po = pytest.importorskip("pytorch_optimizer")
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours = AdaHessian(ours_model.parameters(), lr=0.1, seed=31)
    theirs = po.AdaHessian(theirs_model.parameters(), lr=0.1, eps=1e-4, hessian_distribution="rademacher")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(99)
        before = torch.get_rng_state()
        _train(ours, ours_model, 10)
        assert torch.equal(torch.get_rng_state(), before), "a seeded AdaHessian consumed the global RNG"
        torch.manual_seed(31)
        _train(theirs, theirs_model, 10)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-10, atol=1e-12)


def test_conv_kernel_differs_from_pytorch_optimizer_only_by_spatial_averaging() -> None:
    """pytorch-optimizer does no spatial averaging. Fed (through ``step(hessian=...)``) the same probes'
    |Hz| averaged over the 3x3 kernel dims, it follows our trajectory on a Conv2d model; fed the raw |Hz|
    it does not."""
    po = pytest.importorskip("pytorch_optimizer")

    def theirs_run(average: bool) -> torch.Tensor:
        model = SmallConv()
        params = list(model.parameters())
        opt = po.AdaHessian(params, lr=0.1, eps=1e-4)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            for _ in range(10):
                opt.zero_grad(set_to_none=True)
                model().backward(create_graph=True)
                grads = [p.grad for p in params]
                z = [torch.randint_like(p, 0, 2) * 2.0 - 1.0 for p in params]
                hz = torch.autograd.grad(grads, params, grad_outputs=z, retain_graph=True)
                d = [h.abs() for h in hz]
                if average:
                    d = [x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone() if x.ndim == 4 else x for x in d]
                opt.step(hessian=d)
            opt.zero_grad(set_to_none=True)
        return _flat(model)

    ours_model = SmallConv()
    ours = AdaHessian(ours_model.parameters(), lr=0.1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        _train(ours, ours_model, 10)
    torch.testing.assert_close(_flat(ours_model), theirs_run(average=True), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(_flat(ours_model), theirs_run(average=False), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("model_cls", [SmallRegression, SmallConv], ids=["mlp", "conv"])
@pytest.mark.parametrize("setting", PO_SETTINGS, ids=["lr", "all"])
def test_matches_torch_optimizer(setting: dict, model_cls: type) -> None:
    """torch-optimizer's Adahessian copies the authors' CV code: same probes (global RNG, same order), |Hz|,
    kernel-averaged 4-D tensors, decoupled lr-scaled decay. Only its default hessian_power differs (0.5)."""
    to = pytest.importorskip("torch_optimizer")
    kw = {**DEFAULTS, **setting}
    ours_model, theirs_model = model_cls(), model_cls()
    ours = AdaHessian(ours_model.parameters(), **kw)
    theirs = to.Adahessian(theirs_model.parameters(), **kw)
    for opt, model in ((ours, ours_model), (theirs, theirs_model)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(11)
            _train(opt, model, 12)
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-10, atol=1e-12)
    for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
        for key in ("exp_avg", "exp_hessian_diag_sq"):
            torch.testing.assert_close(ours.state[p][key], theirs.state[q][key], rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------------------- randomness


def test_seed_reproducible_and_distinct() -> None:
    runs = []
    for seed in (4, 4, 5):
        model = SmallRegression()
        torch.manual_seed(seed + 100)  # the global RNG must not matter with a seed
        _train(AdaHessian(model.parameters(), lr=0.1, seed=seed), model, 6)
        runs.append(_flat(model))
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def test_seed_none_follows_torch_manual_seed() -> None:
    runs = []
    for seed in (8, 8, 9):
        model = SmallRegression()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            before = torch.get_rng_state()
            _train(AdaHessian(model.parameters(), lr=0.1), model, 6)
            assert not torch.equal(torch.get_rng_state(), before)
        runs.append(_flat(model))
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def _round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("foreach", FOREACH)
def test_state_dict_round_trip_restores_probe_generator(foreach: bool) -> None:
    model_a = SmallRegression()
    opt_a = AdaHessian(model_a.parameters(), lr=0.1, seed=21, foreach=foreach)
    _train(opt_a, model_a, 5)
    saved = opt_a.state_dict()
    assert _round_trip(saved)["probe_rng"]["state"].dtype == torch.uint8

    continued = {}
    for name, keep_rng, seed in (("full", True, 21), ("no_rng", False, 21), ("seed_none", True, None)):
        # a fresh load each time: torch's load_state_dict shares the loaded state tensors with the optimizer
        state = _round_trip(saved)
        if not keep_rng:
            del state["probe_rng"]
        model_b = copy.deepcopy(model_a)
        opt_b = AdaHessian(model_b.parameters(), lr=0.1, seed=seed, foreach=foreach)
        opt_b.load_state_dict(state)
        torch.manual_seed(0)  # the global RNG is not used while a generator state is loaded
        _train(opt_b, model_b, 5)
        continued[name] = _flat(model_b)
    _train(opt_a, model_a, 5)
    assert torch.equal(_flat(model_a), continued["full"])
    assert torch.equal(_flat(model_a), continued["seed_none"]), "a loaded generator state wins over seed=None"
    # without the generator's state the probes restart from the seed: a different trajectory
    assert not torch.allclose(_flat(model_a), continued["no_rng"])


def test_state_dict_before_first_step_and_reloaded_twice() -> None:
    opt = AdaHessian(SmallRegression().parameters(), seed=3)
    assert "probe_rng" not in opt.state_dict()  # created lazily: nothing drawn yet
    model_a = SmallRegression()
    opt_a = AdaHessian(model_a.parameters(), seed=3)
    _train(opt_a, model_a, 2)
    model_b = copy.deepcopy(model_a)
    opt_b = AdaHessian(model_b.parameters(), seed=3)
    opt_b.load_state_dict(_round_trip(opt_a.state_dict()))
    # a pending (not yet used) generator state is saved again as it was loaded
    opt_c = AdaHessian(copy.deepcopy(model_b).parameters(), seed=3)
    opt_c.load_state_dict(_round_trip(opt_b.state_dict()))
    assert torch.equal(opt_c.state_dict()["probe_rng"]["state"], opt_a.state_dict()["probe_rng"]["state"])


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_continue_identically(how: str) -> None:
    model = SmallRegression()
    opt = AdaHessian(model.parameters(), lr=0.1, seed=12)
    _train(opt, model, 3)
    if how == "deepcopy":
        model_b, opt_b = copy.deepcopy((model, opt))
    else:
        model_b, opt_b = pickle.loads(pickle.dumps((model, opt)))
    _train(opt, model, 3)
    _train(opt_b, model_b, 3)
    assert torch.equal(_flat(model), _flat(model_b))


def test_generator_state_for_another_device_warns_and_restarts_from_seed() -> None:
    model_a = SmallRegression()
    opt_a = AdaHessian(model_a.parameters(), seed=6)
    _train(opt_a, model_a, 2)
    saved = opt_a.state_dict()
    foreign = _round_trip(saved)
    foreign["probe_rng"]["device"] = "cuda:0"
    without = _round_trip(saved)
    del without["probe_rng"]
    model_b, model_c = copy.deepcopy(model_a), copy.deepcopy(model_a)
    opt_b = AdaHessian(model_b.parameters(), seed=6)
    opt_b.load_state_dict(foreign)
    with pytest.warns(UserWarning, match=re.escape("the probes restart from seed=6")):
        _train(opt_b, model_b, 1)
    opt_c = AdaHessian(model_c.parameters(), seed=6)
    opt_c.load_state_dict(without)
    _train(opt_c, model_c, 1)
    assert torch.equal(_flat(model_b), _flat(model_c))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_on_parameter_device() -> None:
    model = SmallRegression().cuda()
    opt = AdaHessian(model.parameters(), lr=0.1, seed=1)
    _train(opt, model, 3)
    assert opt.state_dict()["probe_rng"]["device"].startswith("cuda")
    assert torch.isfinite(_flat(model)).all()


# --------------------------------------------------------------------------------------------------- graph


def test_graph_released_by_zero_grad() -> None:
    """The step keeps the gradients' graph (retain_graph=True, as the reference); zero_grad(set_to_none=True)
    frees it, including a tensor that only the graph holds."""
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()
    X = torch.randn(8, 4, dtype=torch.float64)
    opt = AdaHessian(lin.parameters())
    h = torch.tanh(lin(X))  # tanh saves its output for backward
    saved = weakref.ref(h)
    (h**2).mean().backward(create_graph=True)
    del h
    opt.step()
    gc.collect()
    assert saved() is not None, "the graph is retained until the gradients are released"
    opt.zero_grad(set_to_none=True)
    gc.collect()
    assert saved() is None, "zero_grad(set_to_none=True) did not release the graph"


def test_registry_spec() -> None:
    spec = optim.get("adahessian")
    assert spec.optimizer is AdaHessian
    assert spec.needs_create_graph and spec.stochastic and spec.supports_foreach
    assert not spec.needs_closure and not spec.lr_free
    assert set(spec.search_space()) == {
        "optimizer__lr",
        "optimizer__betas",
        "optimizer__weight_decay",
        "optimizer__hessian_power",
    }
