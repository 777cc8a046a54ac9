"""SAM / ASAM (Foret et al. 2021; Kwon et al. 2021): reference steps, pytorch-optimizer's SAM, wrapper behaviour.

pytorch-optimizer 4.1 implements the same paper (``SAM``, driven by hand through its ``first_step`` /
``second_step`` API); its adaptive variant uses :math:`T = |\\theta|`, i.e. ours with ``sam_eta=0``.
torch-optimizer 0.3 has no SAM.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import skopt_nn.optim as optim
from skopt_nn.optim._sam import SAM
from skopt_nn.testing import SmallRegression

A = np.linspace(1.0, 4.0, 8)
C = np.linspace(-1.0, 1.0, 8)
X0 = np.array([0.3, -0.2, 0.5, 0.1, -0.4, 0.8, -0.6, 0.2])


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


class _Split(torch.nn.Module):
    """f(x) = 1/2 sum a (x - c)^2 with x split over two tensors (so the norm must span both)."""

    def __init__(self) -> None:
        super().__init__()
        self.x1 = torch.nn.Parameter(torch.tensor(X0[:3]))
        self.x2 = torch.nn.Parameter(torch.tensor(X0[3:]))
        self.register_buffer("a", torch.tensor(A))
        self.register_buffer("c", torch.tensor(C))

    def forward(self) -> torch.Tensor:
        x = torch.cat([self.x1, self.x2])
        return 0.5 * (self.a * (x - self.c) ** 2).sum()


def _closure(opt: torch.optim.Optimizer, model: torch.nn.Module, counter: list[int] | None = None):
    def closure():
        if counter is not None:
            counter[0] += 1
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    return closure


def _numpy_sam_sgd(steps, *, rho, adaptive, eta, lr, momentum, weight_decay):
    x = X0.copy()
    buf = None
    losses = []
    for _ in range(steps):
        losses.append(0.5 * np.sum(A * (x - C) ** 2))
        g = A * (x - C)
        t = np.abs(x) + eta if adaptive else np.ones_like(x)
        e = rho * t * t * g / (np.linalg.norm(t * g) + 1e-12)
        g_sam = A * (x + e - C)
        d = g_sam + weight_decay * x
        buf = d.copy() if buf is None else momentum * buf + d
        x = x - lr * buf
    return x, losses


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "rho,adaptive,eta,momentum,weight_decay",
    [
        (0.05, False, 0.01, 0.0, 0.0),
        (0.2, False, 0.01, 0.9, 0.1),
        (0.5, True, 0.01, 0.9, 0.0),
        (0.5, True, 0.0, 0.5, 0.05),
    ],
)
def test_matches_hand_computed_steps(foreach, rho, adaptive, eta, momentum, weight_decay):
    model = _Split()
    opt = SAM(
        model.parameters(),
        base="sgd",
        sam_rho=rho,
        sam_eta=eta,
        sam_adaptive=adaptive,
        lr=0.1,
        momentum=momentum,
        weight_decay=weight_decay,
        foreach=foreach,
    )
    losses = [float(opt.step(_closure(opt, model)).detach()) for _ in range(3)]
    expected, expected_losses = _numpy_sam_sgd(
        3, rho=rho, adaptive=adaptive, eta=eta, lr=0.1, momentum=momentum, weight_decay=weight_decay
    )
    np.testing.assert_allclose(_flat(model).numpy(), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)  # the loss at theta, not at theta + e


def test_foreach_and_single_tensor_paths_agree_on_a_network():
    results = []
    for foreach in (False, True):
        model = SmallRegression()
        opt = SAM(model.parameters(), base="adamw", sam_rho=0.1, sam_adaptive=True, lr=0.01, foreach=foreach)
        for _ in range(10):
            opt.step(_closure(opt, model))
        results.append(_flat(model))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("base", ["sgd", "adamw"])
def test_matches_pytorch_optimizer_sam(adaptive, base):
    """Same trajectory as pytorch-optimizer's SAM driven by hand (closure; first_step; closure; second_step).
    Their adaptive SAM uses T = |theta|: we pass sam_eta=0 for it. Their global norm is accumulated in float32
    (``get_global_gradient_norm``), ours in float64 for float64 parameters: the perturbation differs by float32
    rounding (~1e-7 relative), hence rtol 2e-6 instead of 1e-10; a wrong rho, a per-tensor norm or a missing T
    is off by orders of magnitude more."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    kwargs = {"lr": 0.05, "momentum": 0.9} if base == "sgd" else {"lr": 0.01, "weight_decay": 0.01}
    base_cls = torch.optim.SGD if base == "sgd" else torch.optim.AdamW
    ours = SmallRegression()
    theirs = copy.deepcopy(ours)
    opt = SAM(ours.parameters(), base=base, sam_rho=0.1, sam_eta=0.0, sam_adaptive=adaptive, **kwargs)
    ref = pytorch_optimizer.SAM(theirs.parameters(), base_cls, rho=0.1, adaptive=adaptive, **kwargs)
    for _ in range(12):
        opt.step(_closure(opt, ours))
        ref.zero_grad()
        theirs().backward()
        ref.first_step(zero_grad=True)
        theirs().backward()
        ref.second_step(zero_grad=True)
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=2e-6, atol=1e-8)


def test_asam_offset_eta_changes_the_trajectory():
    """ASAM's T = |theta| + eta (its paper and code) differs from pytorch-optimizer's T = |theta| when eta > 0."""
    runs = []
    for eta in (0.0, 0.01):
        model = SmallRegression()
        opt = SAM(model.parameters(), base="sgd", sam_rho=0.5, sam_eta=eta, sam_adaptive=True, lr=0.05)
        for _ in range(5):
            opt.step(_closure(opt, model))
        runs.append(_flat(model))
    assert not torch.allclose(runs[0], runs[1], rtol=1e-6, atol=0)


def test_rho_zero_is_the_base_trajectory_and_the_closure_runs_twice():
    model, ref = SmallRegression(), SmallRegression()
    opt = SAM(model.parameters(), base="sgd", sam_rho=0.0, lr=0.05, momentum=0.9)
    base = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    calls = [0]
    for step in range(8):
        opt.step(_closure(opt, model, calls))
        assert calls[0] == 2 * (step + 1)
        base.step(_closure(base, ref))
    assert torch.equal(_flat(model), _flat(ref))


def test_global_norm_spans_param_groups():
    """Two groups (same hyperparameters) give the one-group trajectory: the norm is over all groups."""
    one, two = _Split(), _Split()
    opt1 = SAM(one.parameters(), base="sgd", sam_rho=0.3, lr=0.1)
    opt2 = SAM([{"params": [two.x1]}, {"params": [two.x2]}], base="sgd", sam_rho=0.3, lr=0.1)
    for _ in range(3):
        opt1.step(_closure(opt1, one))
        opt2.step(_closure(opt2, two))
    torch.testing.assert_close(_flat(one), _flat(two), rtol=0, atol=0)


def test_needs_a_closure():
    model = _Split()
    opt = SAM(model.parameters(), base="sgd", lr=0.1)
    model().backward()
    with pytest.raises(RuntimeError, match="SAM needs a closure"):
        opt.step()


def test_composes_with_a_base_that_needs_a_closure():
    spec = optim.get("sam_sania")
    assert spec.needs_closure and spec.lr_free
    model = SmallRegression()
    opt = spec.build(model.parameters(), sam_rho=0.01)
    first = float(model().detach())
    for _ in range(10):
        opt.step(_closure(opt, model))
    assert float(model().detach()) < first


def test_bfloat16_parameters_step_and_keep_their_dtype():
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 2).to(torch.bfloat16)
    x = torch.randn(8, 4, dtype=torch.bfloat16)
    opt = SAM(linear.parameters(), base="sgd", sam_rho=0.05, sam_adaptive=True, lr=0.1, momentum=0.9)

    def closure():
        opt.zero_grad()
        loss = linear(x).float().pow(2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() for p in linear.parameters())
    assert len(opt.state) == 0  # SAM keeps no per-parameter state
    buffers = [s["momentum_buffer"] for s in opt.base_optimizer.state.values()]
    assert buffers and all(b.dtype == torch.bfloat16 for b in buffers)
