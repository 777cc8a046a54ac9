"""AdamP and SGDP (Heo et al., ICLR 2021): reference steps in numpy, the projection rule, and differential tests
against torch-optimizer and pytorch-optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from skopt_nn.optim._adamp import SGDP, AdamP, adamp

# --------------------------------------------------------------------------------------------------- numpy reference


def _np_cosine(x: np.ndarray, y: np.ndarray, eps: float) -> float:
    # torch.nn.functional.cosine_similarity, which the authors' code calls: x.y / (max(|x|, eps) max(|y|, eps))
    return abs(float(x @ y)) / (max(np.linalg.norm(x), eps) * max(np.linalg.norm(y), eps))


def _np_project(w: np.ndarray, g: np.ndarray, u: np.ndarray, delta: float, eps: float) -> tuple[np.ndarray, str]:
    """The paper's projection with the views of the authors' code; returns the new update and the view used."""
    if w.ndim < 2:
        return u, "none"
    rows = w.shape[0]
    W, G, U = w.reshape(rows, -1), g.reshape(rows, -1), u.reshape(rows, -1).copy()
    if max(_np_cosine(G[i], W[i], eps) for i in range(rows)) < delta / math.sqrt(W.shape[1]):
        for i in range(rows):
            unit = W[i] / (np.linalg.norm(W[i]) + eps)
            U[i] -= unit * (unit @ U[i])
        return U.reshape(w.shape), "channel"
    if _np_cosine(G.ravel(), W.ravel(), eps) < delta / math.sqrt(W.size):
        unit = W.ravel() / (np.linalg.norm(W) + eps)
        flat = U.ravel()
        return (flat - unit * (unit @ flat)).reshape(w.shape), "layer"
    return u, "none"


class _NumpyAdamP:
    """Algorithm 2 of the paper (AdamP), with the authors' eps placements and decoupled weight decay."""

    def __init__(self, params: list[np.ndarray], lr, betas, eps, weight_decay, delta, wd_ratio, nesterov) -> None:
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.wd, self.delta, self.wd_ratio, self.nesterov = weight_decay, delta, wd_ratio, nesterov

    def step(self, grads: list[np.ndarray]) -> list[str]:
        self.t += 1
        views = []
        for i, (w, g) in enumerate(zip(self.params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            denom = np.sqrt(self.v[i]) / math.sqrt(1 - self.b2**self.t) + self.eps
            numerator = self.b1 * self.m[i] + (1 - self.b1) * g if self.nesterov else self.m[i]
            u, view = _np_project(w, g, numerator / denom, self.delta, self.eps)
            ratio = self.wd_ratio if view != "none" else 1.0
            self.params[i] = w * (1 - self.lr * self.wd * ratio) - self.lr / (1 - self.b1**self.t) * u
            views.append(view)
        return views


class _NumpySGDP:
    """Algorithm 1 of the paper (SGDP); the buffer is not projected; decay / (1 - momentum) as the authors."""

    def __init__(self, params, lr, momentum, dampening, weight_decay, nesterov, eps, delta, wd_ratio) -> None:
        self.params = params
        self.buf = [np.zeros_like(p) for p in params]
        self.lr, self.mu, self.tau, self.wd, self.nesterov = lr, momentum, dampening, weight_decay, nesterov
        self.eps, self.delta, self.wd_ratio = eps, delta, wd_ratio

    def step(self, grads: list[np.ndarray]) -> list[str]:
        views = []
        for i, (w, g) in enumerate(zip(self.params, grads)):
            self.buf[i] = self.mu * self.buf[i] + (1 - self.tau) * g
            d = g + self.mu * self.buf[i] if self.nesterov else self.buf[i]
            q, view = _np_project(w, g, d, self.delta, self.eps)
            ratio = self.wd_ratio if view != "none" else 1.0
            self.params[i] = w * (1 - self.lr * self.wd * ratio / (1 - self.mu)) - self.lr * q
            views.append(view)
        return views


# Parameters of the reference test and how their gradient is made from the current weight: orthogonal to
# every row ("channel"), orthogonal to the whole tensor only ("layer"), with a radial part ("plain"), 1-D.
_SHAPES = {"channel": (3, 4), "layer": (4, 3), "plain": (2, 5), "conv": (2, 2, 2, 2), "bias": (5,)}
_EXPECTED_VIEW = {"channel": "channel", "layer": "layer", "plain": "none", "conv": "channel", "bias": "none"}


def _gradient(kind: str, w: np.ndarray, raw: np.ndarray) -> np.ndarray:
    if kind == "bias":
        return raw
    rows = w.shape[0]
    W, R = w.reshape(rows, -1), raw.reshape(rows, -1)
    if kind in ("channel", "conv"):
        G = R - W * ((R * W).sum(1, keepdims=True) / (W * W).sum(1, keepdims=True))
    elif kind == "layer":
        # strong radial parts per row (+w_i, -w_i, ...) that cancel over the tensor only after the projection
        signs = np.where(np.arange(rows) % 2 == 0, 1.0, -1.0)[:, None]
        H = R + 3.0 * signs * W
        G = H - W * ((H * W).sum() / (W * W).sum())
    else:
        G = R + W
    return G.reshape(w.shape)


def _reference_run(make_np: Callable[[list[np.ndarray]], Any], make_torch: Callable[..., Any], foreach: bool) -> None:
    rng = np.random.default_rng(0)
    init = {k: rng.standard_normal(s) for k, s in _SHAPES.items()}
    raws = [{k: rng.standard_normal(s) for k, s in _SHAPES.items()} for _ in range(3)]
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
    opt = make_torch(list(params.values()), foreach=foreach)
    ref = make_np([v.copy() for v in init.values()])
    for raw in raws:
        grads = [_gradient(k, w, raw[k]) for k, w in zip(_SHAPES, ref.params)]
        for p, g in zip(params.values(), grads):
            p.grad = torch.tensor(g)
        views = ref.step(grads)
        opt.step()
        assert dict(zip(_SHAPES, views)) == _EXPECTED_VIEW  # every branch of the rule is exercised
        for (name, p), expected in zip(params.items(), ref.params):
            np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-11, atol=1e-13, err_msg=name)


_ADAMP_SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "wd_ratio": 0.5},
    {"lr": 0.1, "weight_decay": 0.05, "nesterov": True, "delta": 0.2},
]
_SGDP_SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1, "wd_ratio": 0.3},
    {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01, "eps": 1e-6},
    {"lr": 0.1, "dampening": 0.5},
]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", _ADAMP_SETTINGS)
def test_adamp_matches_numpy_reference(kwargs: dict[str, Any], foreach: bool) -> None:
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "delta": 0.1, "wd_ratio": 0.1}
    full = {**full, "nesterov": False, **kwargs}
    _reference_run(
        lambda ps: _NumpyAdamP(ps, **full), lambda ps, foreach: AdamP(ps, **kwargs, foreach=foreach), foreach
    )


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", _SGDP_SETTINGS)
def test_sgdp_matches_numpy_reference(kwargs: dict[str, Any], foreach: bool) -> None:
    full = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "eps": 1e-8}
    full = {**full, "delta": 0.1, "wd_ratio": 0.1, **kwargs}
    _reference_run(lambda ps: _NumpySGDP(ps, **full), lambda ps, foreach: SGDP(ps, **kwargs, foreach=foreach), foreach)


# --------------------------------------------------------------------------------------------------- networks


class _Net(nn.Module):
    """conv -> BatchNorm2d (channel-wise scale-invariant, 4-D weight), linear -> LayerNorm (scale-invariant as a
    whole only), a plain linear head, and 1-D norm parameters and bias."""

    def __init__(self, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(2, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(36, 12, bias=False)
        self.ln = nn.LayerNorm(12)
        self.head = nn.Linear(12, 1)
        self.to(dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
        self.register_buffer("X", torch.randn(16, 2, 5, 5, generator=gen, dtype=dtype))
        self.register_buffer("y", torch.randn(16, 1, generator=gen, dtype=dtype))

    def forward(self) -> torch.Tensor:
        h = torch.tanh(self.bn(self.conv(self.X))).flatten(1)
        h = torch.tanh(self.ln(self.fc(h)))
        return ((self.head(h) - self.y) ** 2).mean()


def _run(model: nn.Module, opt: torch.optim.Optimizer, steps: int, after: Callable[[], None] | None = None) -> None:
    for _ in range(steps):
        opt.zero_grad()
        model().backward()
        opt.step()
        if after is not None:
            after()


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_network_exercises_every_view() -> None:
    """The differential tests below are meaningful: in ``_Net`` the conv weight passes the channel test, the
    linear weight before LayerNorm only the layer test, the head neither (checked with the numpy rule)."""
    model = _Net()
    model().backward()
    views = {}
    for name in ("conv", "fc", "head"):
        w = getattr(model, name).weight
        _, views[name] = _np_project(w.detach().numpy(), w.grad.numpy(), np.ones(w.shape), 0.1, 1e-8)
    assert views == {"conv": "channel", "fc": "layer", "head": "none"}


# --------------------------------------------------------------------------------------------------- differential

_DIFF_ADAMP = [
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1, "wd_ratio": 0.2},
    {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.05, "nesterov": True},
]
_DIFF_SGDP = [
    {"lr": 0.05},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1, "wd_ratio": 0.3},
]


@pytest.mark.parametrize("kwargs", _DIFF_ADAMP)
def test_adamp_matches_torch_optimizer(kwargs: dict[str, Any]) -> None:
    """torch-optimizer's AdamP is the authors' code (eps after the bias correction): same trajectory. Its cosine
    adds eps to each norm instead of max(norm, eps), which is invisible at these norms."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    ours, theirs = _Net(), _Net()
    _run(ours, AdamP(ours.parameters(), **kwargs), 15)
    _run(theirs, torch_optimizer.AdamP(theirs.parameters(), **kwargs), 15)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", _DIFF_ADAMP)
def test_adamp_matches_pytorch_optimizer_with_eps_zero(kwargs: dict[str, Any]) -> None:
    """pytorch-optimizer adds eps before the bias correction (sqrt(v) + eps, then * sqrt(1 - beta2^t)); with
    ``eps=0`` the two formulas coincide and so must the trajectories."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    ours, theirs = _Net(), _Net()
    _run(ours, AdamP(ours.parameters(), **kwargs, eps=0.0), 15)
    _run(theirs, pytorch_optimizer.AdamP(theirs.parameters(), **kwargs, eps=0.0), 15)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-10, atol=1e-12)


def test_adamp_differs_from_pytorch_optimizer_exactly_by_eps_placement() -> None:
    """The documented difference, precisely: pytorch-optimizer's denominator sqrt(v) + eps before the bias
    correction equals ours with eps / sqrt(1 - beta2^t). On a 1-D parameter (no projection) their trajectory is
    ours with that eps set at every step, and differs from ours with a constant eps."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    eps, beta2 = 1e-3, 0.999
    grads = torch.randn(12, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1e-2
    start = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    results = {}
    for name in ("theirs", "ours_mapped", "ours_constant"):
        p = nn.Parameter(start.clone())
        if name == "theirs":
            opt: torch.optim.Optimizer = pytorch_optimizer.AdamP([p], lr=0.01, eps=eps)
        else:
            opt = AdamP([p], lr=0.01, eps=eps)
        for t, g in enumerate(grads, start=1):
            if name == "ours_mapped":
                opt.param_groups[0]["eps"] = eps / math.sqrt(1 - beta2**t)
            p.grad = g.clone()
            opt.step()
        results[name] = p.detach()
    torch.testing.assert_close(results["ours_mapped"], results["theirs"], rtol=1e-12, atol=1e-14)
    assert float((results["ours_constant"] - results["theirs"]).abs().max()) > 1e-4


@pytest.mark.parametrize("kwargs", _DIFF_SGDP)
def test_sgdp_matches_pytorch_optimizer(kwargs: dict[str, Any]) -> None:
    """pytorch-optimizer's SGDP copies the buffer before projecting (as the paper): same trajectory."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    ours, theirs = _Net(), _Net()
    _run(ours, SGDP(ours.parameters(), **kwargs), 15)
    _run(theirs, pytorch_optimizer.SGDP(theirs.parameters(), **kwargs), 15)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{"lr": 0.05}, {"lr": 0.05, "momentum": 0.9, "nesterov": True}])
def test_sgdp_matches_torch_optimizer_when_the_buffer_is_not_aliased(kwargs: dict[str, Any]) -> None:
    """Without momentum, or with Nesterov, torch-optimizer's (= the authors') update is a fresh tensor: same
    trajectory."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    ours, theirs = _Net(), _Net()
    _run(ours, SGDP(ours.parameters(), **kwargs, weight_decay=0.1), 15)
    _run(theirs, torch_optimizer.SGDP(theirs.parameters(), **kwargs, weight_decay=0.1), 15)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-10, atol=1e-12)


def test_sgdp_differs_from_torch_optimizer_exactly_by_the_projected_buffer() -> None:
    """The documented difference: with momentum and ``nesterov=False`` torch-optimizer (and the authors' code)
    set ``d_p = buf`` and project ``d_p`` in place, so their buffer loses its radial part. Their trajectory is
    ours with the buffer overwritten by the applied update ``(w_t - w_{t+1}) / lr`` after every step (no weight
    decay, so that this is exactly the projected buffer); without that overwrite the trajectories differ."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    lr = 0.05
    theirs = _Net()
    _run(theirs, torch_optimizer.SGDP(theirs.parameters(), lr=lr, momentum=0.9), 15)

    plain = _Net()
    _run(plain, SGDP(plain.parameters(), lr=lr, momentum=0.9), 15)
    assert float((_flat(plain) - _flat(theirs)).abs().max()) > 1e-3

    ours = _Net()
    opt = SGDP(ours.parameters(), lr=lr, momentum=0.9)
    before: list[torch.Tensor] = []

    def remember() -> None:
        before[:] = [p.detach().clone() for p in ours.parameters()]

    def overwrite_buffer() -> None:
        for p, old in zip(ours.parameters(), before):
            opt.state[p]["momentum_buffer"].copy_((old - p.detach()) / lr)
        remember()

    remember()
    _run(ours, opt, 15, after=overwrite_buffer)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-9, atol=1e-11)


# --------------------------------------------------------------------------------------------------- the projection


def _one_step(model: nn.Module, opt: torch.optim.Optimizer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    w = getattr(model, name).weight
    before = w.detach().clone()
    opt.zero_grad()
    model().backward()
    opt.step()
    return before, w.detach() - before


@pytest.mark.parametrize("cls", [AdamP, SGDP])
@pytest.mark.parametrize("foreach", [False, True])
def test_update_is_orthogonal_to_each_channel_of_a_weight_before_batchnorm(cls: type, foreach: bool) -> None:
    model = _Net()
    opt = cls(model.parameters(), lr=0.1, eps=1e-12, foreach=foreach)
    w, dw = _one_step(model, opt, "conv")
    rows, steps = w.reshape(4, -1), dw.reshape(4, -1)
    cosines = (rows * steps).sum(1) / (rows.norm(dim=1) * steps.norm(dim=1))
    assert float(cosines.abs().max()) < 1e-10
    assert float(steps.norm()) > 1e-3  # it did move


@pytest.mark.parametrize("cls", [AdamP, SGDP])
def test_update_of_a_weight_before_layernorm_is_orthogonal_as_a_whole_only(cls: type) -> None:
    model = _Net()
    opt = cls(model.parameters(), lr=0.1, eps=1e-12)
    w, dw = _one_step(model, opt, "fc")
    assert abs(float((w * dw).sum())) / float(w.norm() * dw.norm()) < 1e-10
    row_cosines = (w * dw).sum(1) / (w.norm(dim=1) * dw.norm(dim=1))
    assert float(row_cosines.abs().max()) > 1e-2  # the channel view was not used


@pytest.mark.parametrize(
    ("ours", "plain", "projected_differs"),
    [
        (lambda ps: AdamP(ps, lr=0.1), lambda ps: torch.optim.Adam(ps, lr=0.1), True),
        # SGD's first update is the gradient, orthogonal to a scale-invariant weight up to the norm layers' eps
        (lambda ps: SGDP(ps, lr=0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), False),
    ],
)
def test_weights_that_are_not_scale_invariant_get_the_plain_update(
    ours: Callable, plain: Callable, projected_differs: bool
) -> None:
    """The head (not followed by a norm layer) and every 1-D parameter move exactly as with Adam / SGD (one
    step: torch's SGD seeds its buffer with g_1, which equals ours after one step without dampening); Adam's
    update of the scale-invariant weights has a radial part, which AdamP removes."""
    a, b = _Net(), _Net()
    _run(a, ours(a.parameters()), 1)
    _run(b, plain(b.parameters()), 1)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if name not in ("conv.weight", "fc.weight"):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14, msg=name)
        elif projected_differs:
            assert not torch.allclose(p, q, rtol=1e-6, atol=1e-8), name


@pytest.mark.parametrize("foreach", [False, True])
def test_wd_ratio_scales_weight_decay_only_on_projected_weights(foreach: bool) -> None:
    """SGDP without momentum: a gradient orthogonal to the weight is projected (a no-op on an orthogonal
    vector) and the decay is scaled by wd_ratio; a gradient parallel to the weight is not projected and gets
    the full decay. Closed forms, one step."""
    lr, wd, ratio = 0.1, 0.5, 0.2
    w0 = torch.tensor([[3.0, 4.0], [1.0, -2.0]], dtype=torch.float64)
    orthogonal = torch.tensor([[4.0, -3.0], [2.0, 1.0]], dtype=torch.float64)
    parallel = 0.5 * w0
    for grad, expected in (
        (orthogonal, w0 * (1 - lr * wd * ratio) - lr * orthogonal),
        (parallel, w0 * (1 - lr * wd) - lr * parallel),
    ):
        p = nn.Parameter(w0.clone())
        p.grad = grad.clone()
        SGDP([p], lr=lr, weight_decay=wd, wd_ratio=ratio, foreach=foreach).step()
        torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=1e-15)


def test_weights_with_different_row_counts_and_steps_batch_like_separate_groups() -> None:
    """The batched decision (rows of all weights side by side, weights with different numbers of rows, a
    parameter that skipped a step) equals one param group per parameter."""
    gen = torch.Generator().manual_seed(5)
    shapes = [(3, 4), (5, 2), (3, 4), (2, 3, 2), (4,)]
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(6)]
    for g in grads[2:]:  # the first weight becomes scale-invariant from the third step on
        g[0] -= init[0] * ((g[0] * init[0]).sum(1, keepdim=True) / (init[0] ** 2).sum(1, keepdim=True))
    results = []
    for separate in (False, True):
        params = [nn.Parameter(x.clone()) for x in init]
        groups = [{"params": [p]} for p in params] if separate else [{"params": params}]
        opt = AdamP(groups, lr=0.05, weight_decay=0.1, delta=0.5)
        for t, step_grads in enumerate(grads):
            for i, (p, g) in enumerate(zip(params, step_grads)):
                p.grad = None if (i == 1 and t == 1) else g.clone()
            opt.step()
        results.append(torch.cat([p.detach().reshape(-1) for p in params]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_channels_last_weight_matches_contiguous() -> None:
    a, b = _Net(), _Net()
    b.conv.weight.data = b.conv.weight.data.contiguous(memory_format=torch.channels_last)
    _run(a, AdamP(a.parameters(), lr=0.05, weight_decay=0.1), 5)
    _run(b, AdamP(b.parameters(), lr=0.05, weight_decay=0.1), 5)
    assert b.conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-12, atol=1e-14)


def test_zero_gradient_and_zero_row_stay_finite() -> None:
    """A zero gradient has cosine 0 (projected); a zero weight row is normalised with eps: no NaN."""
    w = nn.Parameter(torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64))
    w.grad = torch.zeros_like(w)
    opt = AdamP([w], lr=0.1, weight_decay=0.1)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64) * 0.999)
    w.grad = torch.tensor([[1.0, -1.0], [2.0, -1.0]], dtype=torch.float64)
    opt.step()
    assert torch.isfinite(w).all()


def test_functional_form_equals_the_class() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    p = nn.Parameter(w.clone())
    p.grad = g.clone()
    AdamP([p], lr=0.1, weight_decay=0.01).step()
    q, m, v = w.clone(), torch.zeros_like(w), torch.zeros_like(w)
    kwargs: dict[str, Any] = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    adamp([q], [g], [m], [v], [1], **kwargs, delta=0.1, wd_ratio=0.1, nesterov=False)
    torch.testing.assert_close(p.detach(), q, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [AdamP, SGDP])
def test_sparse_gradients_are_rejected(cls: type) -> None:
    p = nn.Parameter(torch.zeros(3, 2))
    p.grad = torch.zeros(3, 2).to_sparse()
    with pytest.raises(RuntimeError, match=f"^{cls.__name__} does not support sparse gradients$"):
        cls([p]).step()


@pytest.mark.parametrize("cls", [AdamP, SGDP])
def test_complex_parameters_are_rejected(cls: type) -> None:
    p = nn.Parameter(torch.zeros(3, 2, dtype=torch.complex64))
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match=f"^{cls.__name__} does not support complex parameters$"):
        cls([p]).step()


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (AdamP, {"wd_ratio": 1.5}, "The 'wd_ratio' parameter of AdamP must be a float in the range [0.0, 1.0]."),
        (AdamP, {"delta": -1}, "The 'delta' parameter of AdamP must be a float in the range [0.0, inf)."),
        (SGDP, {"momentum": 1.0}, "The 'momentum' parameter of SGDP must be a float in the range [0.0, 1.0)."),
        (SGDP, {"dampening": 2.0}, "The 'dampening' parameter of SGDP must be a float in the range [0.0, 1.0]."),
    ],
)
def test_invalid_hyperparameters(cls: type, kwargs: dict[str, Any], message: str) -> None:
    value = next(iter(kwargs.values()))
    with pytest.raises(ValueError) as info:
        cls([nn.Parameter(torch.zeros(2))], **kwargs)
    assert str(info.value) == f"{message} Got {value!r} instead."


def test_defaults() -> None:
    p = [nn.Parameter(torch.zeros(2))]
    assert AdamP(p).defaults == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "delta": 0.1,
        "wd_ratio": 0.1,
        "nesterov": False,
        "foreach": None,
    }
    assert SGDP(p).defaults == {
        "lr": 1e-2,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "eps": 1e-8,
        "delta": 0.1,
        "wd_ratio": 0.1,
        "foreach": None,
    }
