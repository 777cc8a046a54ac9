"""Coordinate-wise clipping (Pan & Li, 2023): reference steps for both threshold rules and both targets.

Neither pytorch-optimizer 4.1 nor torch-optimizer 0.3 implements this paper, so there is no differential test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skopt_nn.optim._coordinate_clip import CoordinateClip
from skopt_nn.testing import SmallRegression

GRADS = [
    np.array([0.5, -3.0, 0.1, 2.0, -0.2, 0.05, 1.0, -0.7, 4.0, 0.3]),
    np.array([-1.5, 0.4, 2.5, -0.1, 0.6, -3.5, 0.2, 0.9, -0.3, 1.2]),
    np.array([0.2, 0.2, -0.4, 5.0, -2.2, 0.8, -0.9, 0.1, 0.7, -1.1]),
]
X0 = np.linspace(-1.0, 1.0, 10)


def _clip(u, fraction, threshold):
    if threshold is None:
        k = math.floor(fraction * u.size)
        if k == 0:
            return u
        threshold = np.sort(np.abs(u))[u.size - k - 1]  # the largest unclipped magnitude
    return np.clip(u, -threshold, threshold)


def _numpy_run(*, lr, momentum, weight_decay, fraction, threshold, target):
    x = X0.copy()
    buf = None
    for g in GRADS:
        if target == "gradient":
            g = _clip(g, fraction, threshold)
        d = g + weight_decay * x
        buf = d.copy() if buf is None else momentum * buf + d
        step = -lr * buf
        if target == "update":
            step = _clip(step, fraction, None if threshold is None else lr * threshold)
        x = x + step
    return x


def _run(foreach, **kwargs):
    # the 10 coordinates over two tensors, so the quantile must span both
    p1 = torch.nn.Parameter(torch.tensor(X0[:4]))
    p2 = torch.nn.Parameter(torch.tensor(X0[4:]).reshape(2, 3))
    opt = CoordinateClip([p1, p2], base="sgd", foreach=foreach, **kwargs)
    for g in GRADS:
        p1.grad = torch.tensor(g[:4])
        p2.grad = torch.tensor(g[4:]).reshape(2, 3)
        opt.step()
    return torch.cat([p1.detach(), p2.detach().reshape(-1)]).numpy()


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("target", ["update", "gradient"])
@pytest.mark.parametrize(
    "fraction,threshold,momentum,weight_decay",
    [(0.1, None, 0.0, 0.0), (0.3, None, 0.9, 0.1), (0.1, 0.5, 0.9, 0.0), (0.0, 1.5, 0.5, 0.05), (0.0, None, 0.9, 0.0)],
)
def test_matches_hand_computed_steps(foreach, target, fraction, threshold, momentum, weight_decay):
    kwargs = dict(lr=0.1, momentum=momentum, weight_decay=weight_decay)
    got = _run(foreach, clip_fraction=fraction, clip_threshold=threshold, clip_target=target, **kwargs)
    expected = _numpy_run(fraction=fraction, threshold=threshold, target=target, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_fraction_rule_clips_floor_q_n_coordinates_to_the_largest_unclipped_magnitude():
    p = torch.nn.Parameter(torch.zeros(100, dtype=torch.float64))
    opt = CoordinateClip([p], base="sgd", clip_fraction=0.07, lr=1.0)
    g = torch.arange(1, 101, dtype=torch.float64) * torch.tensor([1.0, -1.0]).repeat(50)
    p.grad = g.clone()
    opt.step()
    step = -p.detach()
    clipped = (step != g).sum().item()
    assert clipped == 7  # floor(0.07 * 100)
    assert step.abs().max().item() == 93.0
    assert torch.equal(step[:93], g[:93])


def test_no_clipping_is_the_base_trajectory_bit_for_bit():
    runs = []
    for wrapped in (True, False):
        model = SmallRegression()
        if wrapped:
            opt = CoordinateClip(model.parameters(), base="adam", clip_fraction=0.0, lr=0.01)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(10):
            opt.zero_grad()
            model().backward()
            opt.step()
        runs.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_update_clipping_leaves_the_base_state_unclipped_gradient_clipping_does_not():
    states = {}
    for target in ("update", "gradient"):
        p = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
        opt = CoordinateClip([p], base="sgd", clip_threshold=1.0, clip_target=target, lr=0.1, momentum=0.9)
        p.grad = torch.tensor([0.5, -3.0, 2.0, 0.1], dtype=torch.float64)
        opt.step()
        states[target] = opt.base_optimizer.state[p]["momentum_buffer"].clone()
    assert states["update"].tolist() == [0.5, -3.0, 2.0, 0.1]
    assert states["gradient"].tolist() == [0.5, -1.0, 1.0, 0.1]


def test_gradient_target_with_a_closure_clips_after_the_evaluation():
    model = SmallRegression()
    opt = CoordinateClip(model.parameters(), base="sgd", clip_threshold=1e-3, clip_target="gradient", lr=0.1)

    def closure():
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    opt.step(closure)
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 1e-3


def test_bfloat16_parameters_step_and_keep_their_dtype():
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 4).to(torch.bfloat16)
    opt = CoordinateClip(linear.parameters(), base="adam", clip_fraction=0.1, lr=0.01)
    x = torch.randn(16, 8, dtype=torch.bfloat16)
    for _ in range(3):
        opt.zero_grad()
        linear(x).float().pow(2).mean().backward()
        opt.step()
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() for p in linear.parameters())
    assert len(opt.state) == 0  # the wrapper keeps no per-parameter state
    for state in opt.base_optimizer.state.values():
        assert state["exp_avg"].dtype == torch.bfloat16 and state["exp_avg_sq"].dtype == torch.bfloat16
