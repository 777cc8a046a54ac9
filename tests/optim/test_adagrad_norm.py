"""AdaGrad-Norm (Ward, Wu & Bottou 2019): hand-computed reference steps and the one-scalar-per-group rule.

Neither pytorch-optimizer (4.1) nor torch-optimizer (0.3) implements AdaGrad-Norm, so there is no differential
test; the flattened-vector test below checks the rule against its definition on one long vector instead.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from skopt_nn.optim._adagrad_norm import AdaGradNorm
from skopt_nn.testing import SmallRegression


def _numpy_adagrad_norm(x0, grads, *, lr, b0, weight_decay):
    """Algorithm 1 of the paper on the concatenation of all tensors, in numpy; returns the iterates."""
    x = [a.copy() for a in x0]
    b_sq = b0**2
    out = []
    for step_grads in grads:
        g = [gi + weight_decay * xi for gi, xi in zip(step_grads, x)]
        b_sq += sum(float(np.sum(gi * gi)) for gi in g)
        x = [xi - lr / np.sqrt(b_sq) * gi for xi, gi in zip(x, g)]
        out.append([a.copy() for a in x])
    return out


SETTINGS = [
    {"lr": 1.0, "b0": 0.1, "weight_decay": 0.0},
    {"lr": 0.3, "b0": 2.0, "weight_decay": 0.0},
    {"lr": 0.05, "b0": 1e-3, "weight_decay": 0.1},
]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"lr{s['lr']}-b0{s['b0']}-wd{s['weight_decay']}")
def test_matches_hand_computed_steps(setting, foreach: bool) -> None:
    rng = np.random.default_rng(0)
    x0 = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads = [[rng.normal(size=(3, 2)) * s, rng.normal(size=4) * s * 0.1] for s in (1.0, 3.0, 0.2)]
    params = [torch.nn.Parameter(torch.tensor(a)) for a in x0]
    opt = AdaGradNorm(params, foreach=foreach, **setting)
    expected = _numpy_adagrad_norm(x0, grads, **setting)
    for step_grads, step_expected in zip(grads, expected):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        for p, e in zip(params, step_expected):
            np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)
    assert opt.state == {} or all(len(s) == 0 for s in opt.state.values())
    assert opt.param_groups[0]["b_sq"].shape == ()


@pytest.mark.parametrize("foreach", [False, True])
def test_one_step_size_for_the_whole_group_equals_the_flattened_vector(foreach: bool) -> None:
    """b is global: the group's tensors move exactly as one concatenated vector does."""
    torch.manual_seed(0)
    model = SmallRegression()
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    opt = AdaGradNorm(model.parameters(), lr=0.5, b0=0.3, weight_decay=1e-2, foreach=foreach)
    opt_flat = AdaGradNorm([flat], lr=0.5, b0=0.3, weight_decay=1e-2, foreach=foreach)
    for _ in range(10):
        opt.zero_grad()
        model().backward()
        flat.grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        opt.step()
        opt_flat.step()
        torch.testing.assert_close(
            torch.cat([p.detach().reshape(-1) for p in model.parameters()]), flat.detach(), rtol=1e-12, atol=1e-14
        )
    torch.testing.assert_close(opt.param_groups[0]["b_sq"], opt_flat.param_groups[0]["b_sq"])


@pytest.mark.parametrize("foreach", [False, True])
def test_a_parameter_without_gradient_counts_as_a_zero_gradient(foreach: bool) -> None:
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = AdaGradNorm([a, b], lr=0.5, b0=1.0, foreach=foreach)
    a.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    b.grad = torch.tensor([12.0], dtype=torch.float64)
    opt.step()  # b^2 = 1 + 25 + 144 = 170
    a.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
    b.grad = None
    opt.step()  # b^2 = 171
    assert float(opt.param_groups[0]["b_sq"]) == pytest.approx(171.0, rel=1e-15)
    expected_a = torch.tensor([1 - 0.5 * 3 / 170**0.5, 2 - 0.5 * 4 / 170**0.5 - 0.5 / 171**0.5], dtype=torch.float64)
    torch.testing.assert_close(a.detach(), expected_a, rtol=1e-14, atol=0.0)
    torch.testing.assert_close(b.detach(), torch.tensor([3 - 0.5 * 12 / 170**0.5], dtype=torch.float64))


def test_first_step_is_shorter_than_lr_whatever_the_gradient_scale() -> None:
    for scale in (1e-6, 1.0, 1e6):
        p = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
        p.grad = torch.arange(1.0, 6.0, dtype=torch.float64) * scale
        AdaGradNorm([p], lr=0.7, b0=0.1).step()
        length = float(torch.linalg.vector_norm(p.detach()))
        g = float(torch.linalg.vector_norm(p.grad))
        assert length == pytest.approx(0.7 * g / (0.01 + g**2) ** 0.5, rel=1e-12)
        assert length < 0.7


def test_param_groups_have_their_own_accumulator() -> None:
    a = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = AdaGradNorm([{"params": [a]}, {"params": [b], "b0": 2.0}], lr=1.0, b0=1.0)
    a.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    b.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
    opt.step()
    assert float(opt.param_groups[0]["b_sq"]) == pytest.approx(26.0)
    assert float(opt.param_groups[1]["b_sq"]) == pytest.approx(5.0)


def test_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="AdaGradNorm does not support sparse gradients"):
        AdaGradNorm([p]).step()


def test_bfloat16_parameters_accumulate_in_float32() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3).to(torch.bfloat16)
    x = torch.randn(16, 6, dtype=torch.bfloat16)
    opt = AdaGradNorm(model.parameters(), lr=0.1)
    for _ in range(4):
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p.float()).all() for p in model.parameters())
    b_sq = opt.param_groups[0]["b_sq"]
    assert b_sq.dtype == torch.float32 and float(b_sq) > 0.1**2

    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    opt2 = AdaGradNorm(torch.nn.Linear(6, 3).to(torch.bfloat16).parameters(), lr=0.1)
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    assert opt2.param_groups[0]["b_sq"].dtype == torch.float32
    assert torch.equal(opt2.param_groups[0]["b_sq"], b_sq)


def test_float64_parameters_accumulate_in_float64() -> None:
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    p.grad = torch.ones(2, dtype=torch.float64)
    opt = AdaGradNorm([p])
    opt.step()
    assert opt.param_groups[0]["b_sq"].dtype == torch.float64
