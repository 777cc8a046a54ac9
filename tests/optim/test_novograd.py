"""NovoGrad (Ginsburg et al. 2019): hand-computed reference steps, the other libraries, layer-wise properties."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from skopt_nn.optim._novograd import NovoGrad
from skopt_nn.testing import SmallRegression

# --------------------------------------------------------------------------------------------------- reference


def _numpy_novograd(w0, grads, *, lr, beta1, beta2, eps, weight_decay, grad_averaging):
    """The paper's Algorithm 1, written out per layer in numpy: returns the iterates after each step."""
    w = [x.copy() for x in w0]
    m: list[np.ndarray | None] = [None] * len(w)
    v: list[float | None] = [None] * len(w)
    out = []
    for t, step_grads in enumerate(grads, start=1):
        for layer, g in enumerate(step_grads):
            norm_sq = float(np.sum(g * g))
            v[layer] = norm_sq if t == 1 else beta2 * v[layer] + (1 - beta2) * norm_sq
            u = g / (np.sqrt(v[layer]) + eps) + weight_decay * w[layer]
            if t == 1:
                m[layer] = u
            else:
                a = (1 - beta1) if grad_averaging else 1.0
                m[layer] = beta1 * m[layer] + a * u
            w[layer] = w[layer] - lr * m[layer]
        out.append([x.copy() for x in w])
    return out


SETTINGS = [
    {"lr": 0.1, "betas": (0.95, 0.98), "eps": 1e-8, "weight_decay": 0.0, "grad_averaging": False},
    {"lr": 0.05, "betas": (0.9, 0.5), "eps": 1e-3, "weight_decay": 0.01, "grad_averaging": False},
    {"lr": 0.2, "betas": (0.8, 0.25), "eps": 1e-6, "weight_decay": 0.1, "grad_averaging": True},
]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "setting", SETTINGS, ids=lambda s: f"lr{s['lr']}-wd{s['weight_decay']}-ga{s['grad_averaging']}"
)
def test_matches_hand_computed_steps(setting, foreach: bool) -> None:
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    # gradient scales that change a lot between steps and layers, so every term of the update matters
    grads = [[rng.normal(size=(3, 2)) * s, rng.normal(size=4) * s * 0.1] for s in (1.0, 3.0, 0.2)]
    params = [torch.nn.Parameter(torch.tensor(x)) for x in w0]
    opt = NovoGrad(params, foreach=foreach, **setting)
    beta1, beta2 = setting["betas"]
    expected = _numpy_novograd(
        w0,
        grads,
        lr=setting["lr"],
        beta1=beta1,
        beta2=beta2,
        eps=setting["eps"],
        weight_decay=setting["weight_decay"],
        grad_averaging=setting["grad_averaging"],
    )
    for step_grads, step_expected in zip(grads, expected):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        for p, e in zip(params, step_expected):
            np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)
    # the layer-wise second moment is one scalar per tensor
    assert all(opt.state[p]["exp_avg_sq"].shape == () for p in params)


def test_grad_is_not_modified() -> None:
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    g = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    p.grad = g.clone()
    NovoGrad([p], lr=0.1, weight_decay=0.1).step()
    assert torch.equal(p.grad, g)


# --------------------------------------------------------------------------------------------------- layer-wise


@pytest.mark.parametrize("foreach", [False, True])
def test_update_is_invariant_to_each_layers_gradient_scale(foreach: bool) -> None:
    """Multiplying one tensor's gradients by c > 0 at every step leaves every update unchanged (eps=0)."""
    rng = np.random.default_rng(1)
    w0 = [rng.normal(size=(4, 3)), rng.normal(size=3)]
    grads = [[rng.normal(size=(4, 3)), rng.normal(size=3)] for _ in range(6)]
    finals = []
    for scales in ((1.0, 1.0), (1e3, 1e-4)):
        params = [torch.nn.Parameter(torch.tensor(x)) for x in w0]
        opt = NovoGrad(params, lr=0.05, eps=0.0, foreach=foreach)
        for step_grads in grads:
            for p, g, c in zip(params, step_grads, scales):
                p.grad = torch.tensor(g * c)
            opt.step()
        finals.append([p.detach().clone() for p in params])
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("grad_averaging", [False, True])
def test_foreach_matches_single_tensor_when_tensors_start_at_different_steps(grad_averaging: bool) -> None:
    """A tensor that first gets a gradient later initialises its own moments while the others continue."""
    results = []
    for foreach in (False, True):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64)) for _ in range(3)]
        opt = NovoGrad(params, lr=0.03, weight_decay=0.01, grad_averaging=grad_averaging, foreach=foreach)
        gen = torch.Generator().manual_seed(1)
        for step in range(6):
            for i, p in enumerate(params):
                # tensor 2 joins at step 2, tensor 1 at step 4
                joined = i == 0 or (i == 2 and step >= 2) or (i == 1 and step >= 4)
                p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64) if joined else None
            opt.step()
        assert [opt.state[p]["step"] for p in params] == [6, 2, 4]
        results.append(torch.cat([p.detach().reshape(-1) for p in params]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="NovoGrad does not support sparse gradients"):
        NovoGrad([p]).step()


# --------------------------------------------------------------------------------------------------- precision


def test_bfloat16_parameters_keep_a_float32_second_moment() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3).to(torch.bfloat16)
    x = torch.randn(16, 6, dtype=torch.bfloat16)
    opt = NovoGrad(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(4):
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    for p in model.parameters():
        assert p.dtype == torch.bfloat16 and torch.isfinite(p.float()).all()
        assert opt.state[p]["exp_avg"].dtype == torch.bfloat16
        assert opt.state[p]["exp_avg_sq"].dtype == torch.float32

    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    clone = torch.nn.Linear(6, 3).to(torch.bfloat16)
    clone.load_state_dict(model.state_dict())
    opt2 = NovoGrad(clone.parameters(), lr=1e-2, weight_decay=1e-3)
    opt2.load_state_dict(saved)
    for p, q in zip(model.parameters(), clone.parameters()):
        # torch would have cast it to bfloat16; load_state_dict keeps float32 and the exact value
        assert opt2.state[q]["exp_avg_sq"].dtype == torch.float32
        assert torch.equal(opt2.state[q]["exp_avg_sq"], opt.state[p]["exp_avg_sq"])
        assert opt2.state[q]["exp_avg_sq"] is not saved["state"][0]["exp_avg_sq"]


# --------------------------------------------------------------------------------------------------- differential


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _trajectory(build, steps: int = 15) -> list[torch.Tensor]:
    model = SmallRegression()
    opt = build(model.parameters())
    out = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        model().backward()
        opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return out


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("grad_averaging", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_matches_pytorch_optimizer(weight_decay: float, grad_averaging: bool, foreach: bool) -> None:
    """pytorch-optimizer's NovoGrad (weight_decouple=False, its default) is the paper's rule with eps outside the
    root and the paper's initialisation m_1 = u_1, with or without grad_averaging: the same trajectory."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    kwargs = {"lr": 0.01, "betas": (0.9, 0.7), "eps": 1e-8, "weight_decay": weight_decay}
    ours = _trajectory(lambda p: NovoGrad(p, grad_averaging=grad_averaging, foreach=foreach, **kwargs))
    theirs = _trajectory(
        lambda p: pytorch_optimizer.NovoGrad(p, grad_averaging=grad_averaging, foreach=foreach, **kwargs)
    )
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_matches_torch_optimizer_without_grad_averaging(weight_decay: float) -> None:
    """torch-optimizer's NovoGrad keeps v in the default dtype (float32 normally): run it under a float64 default
    so that the comparison is exact; betas are passed explicitly (its default beta2 is 0)."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    kwargs = {"lr": 0.01, "betas": (0.95, 0.98), "eps": 1e-8, "weight_decay": weight_decay}
    ours = _trajectory(lambda p: NovoGrad(p, **kwargs))
    with _default_dtype(torch.float64):
        theirs = _trajectory(lambda p: torch_optimizer.NovoGrad(p, grad_averaging=False, **kwargs))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_torch_optimizer_grad_averaging_starts_the_momentum_at_zero() -> None:
    """With grad_averaging, torch-optimizer starts m at 0, so its first step is exactly (1 - beta1) times the
    paper's (m_1 = u_1); from then on the recursions are the same, but the trajectories stay apart."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    beta1 = 0.9
    kwargs = {"lr": 0.01, "betas": (beta1, 0.98), "eps": 1e-8, "weight_decay": 1e-2}
    start = torch.cat([p.detach().reshape(-1) for p in SmallRegression().parameters()])
    ours = _trajectory(lambda p: NovoGrad(p, grad_averaging=True, **kwargs), steps=10)
    with _default_dtype(torch.float64):
        theirs = _trajectory(lambda p: torch_optimizer.NovoGrad(p, grad_averaging=True, **kwargs), steps=10)
    torch.testing.assert_close(theirs[0] - start, (1 - beta1) * (ours[0] - start), rtol=1e-10, atol=1e-14)
    assert float((ours[-1] - theirs[-1]).abs().max()) > 1e-3
