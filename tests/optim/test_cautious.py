"""The cautious wrapper against the paper's equations (numpy, by hand) and against pytorch-optimizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch

from skopt_nn import optim
from skopt_nn.optim._cautious import Cautious
from skopt_nn.optim._grams import Grams
from skopt_nn.optim._lion import Lion
from skopt_nn.testing import SmallRegression

FOREACH = pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])

# --------------------------------------------------------------------------------------------------- numpy


def _normalise(phi: np.ndarray, normalizer: str) -> np.ndarray:
    if normalizer == "mean":
        return phi / max(phi.mean(), 1e-3)
    return phi * phi.size / (phi.sum() + 1.0)


def numpy_cadamw(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    normalizer: str = "mean",
) -> list[np.ndarray]:
    """C-AdamW: torch's AdamW update u, phi = 1[u g > 0] normalised per tensor, unmasked decoupled decay."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i]
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            u = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
            phi = _normalise((u * g > 0).astype(np.float64), normalizer)
            theta = theta - lr * (u * phi + weight_decay * theta)
        out.append(theta)
    return out


def numpy_clion(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
    normalizer: str = "mean",
) -> list[np.ndarray]:
    """C-Lion: u = sign(beta1 m + (1 - beta1) g), masked and normalised, unmasked decoupled decay."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        for step_grads in grads:
            g = step_grads[i]
            u = np.sign(beta1 * m + (1 - beta1) * g)
            phi = _normalise((u * g > 0).astype(np.float64), normalizer)
            theta = theta - lr * (u * phi + weight_decay * theta)
            m = beta2 * m + (1 - beta2) * g
        out.append(theta)
    return out


def numpy_cadam_l2(
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> list[np.ndarray]:
    """Cautious Adam with L2 decay ("masked"): u is Adam's whole update on g + wd * theta; the mask uses g."""
    beta1, beta2 = betas
    out = []
    for i, theta_init in enumerate(theta0):
        theta = theta_init.astype(np.float64).copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        for t, step_grads in enumerate(grads, start=1):
            g = step_grads[i]
            g_l2 = g + weight_decay * theta
            m = beta1 * m + (1 - beta1) * g_l2
            v = beta2 * v + (1 - beta2) * g_l2 * g_l2
            u = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
            phi = _normalise((u * g > 0).astype(np.float64), "mean")
            theta = theta - lr * u * phi
        out.append(theta)
    return out


_SHAPES = [(3, 4), (5,)]


def _problem(seed: int, steps: int = 3) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    theta0 = [rng.normal(size=s) for s in _SHAPES]
    grads = [[rng.normal(size=s) for s in _SHAPES] for _ in range(steps)]
    # sign flips against the momentum: those coordinates must be masked at steps 2 and 3
    for t in (1, 2):
        grads[t][0][0, :2] = -2.0 * np.sign(grads[0][0][0, :2]) * 1e-2
        grads[t][1][:3] = -np.sign(grads[0][1][:3]) * 1e-2
    return theta0, grads


def _run_torch(
    opt_factory: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    theta0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
) -> list[np.ndarray]:
    params = [torch.nn.Parameter(torch.tensor(t, dtype=torch.float64)) for t in theta0]
    opt = opt_factory(params)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


def _assert_all_close(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> None:
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------------------------------- reference


@FOREACH
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.1, "weight_decay": 0.0},
        {"lr": 0.05, "weight_decay": 0.2, "betas": (0.8, 0.99)},
        {"lr": 0.05, "weight_decay": 0.1, "normalizer": "nnz_plus_one"},
    ],
    ids=["no-decay", "decay", "nnz-plus-one"],
)
def test_cadamw_matches_paper_equations(hyper: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _problem(0)
    expected = numpy_cadamw(theta0, grads, **hyper)
    kw = dict(hyper)
    normalizer = kw.pop("normalizer", "mean")
    got = _run_torch(
        lambda ps: optim.get("cadamw").optimizer(ps, foreach=foreach, cautious_normalizer=normalizer, **kw),
        theta0,
        grads,
    )
    _assert_all_close(got, expected)
    # the mask did something: plain AdamW differs
    adamw = _run_torch(lambda ps: torch.optim.AdamW(ps, foreach=foreach, **kw), theta0, grads)
    assert not np.allclose(adamw[0], got[0])


@FOREACH
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.01, "weight_decay": 0.0},
        {"lr": 0.01, "weight_decay": 0.5, "betas": (0.5, 0.9)},
        {"lr": 0.01, "weight_decay": 0.5, "normalizer": "nnz_plus_one"},
    ],
    ids=["no-decay", "decay", "nnz-plus-one"],
)
def test_clion_matches_paper_equations(hyper: dict[str, Any], foreach: bool) -> None:
    theta0, grads = _problem(1)
    expected = numpy_clion(theta0, grads, **hyper)
    kw = dict(hyper)
    normalizer = kw.pop("normalizer", "mean")
    got = _run_torch(
        lambda ps: optim.get("clion").optimizer(ps, foreach=foreach, cautious_normalizer=normalizer, **kw),
        theta0,
        grads,
    )
    _assert_all_close(got, expected)


@FOREACH
def test_masked_mode_masks_adams_whole_l2_update(foreach: bool) -> None:
    """torch's Adam (coupled L2) resolves to "masked" under "auto": its whole update is masked."""
    theta0, grads = _problem(2)
    expected = numpy_cadam_l2(theta0, grads, lr=0.05, weight_decay=0.3)
    got = _run_torch(lambda ps: Cautious(ps, base="adam", lr=0.05, weight_decay=0.3, foreach=foreach), theta0, grads)
    _assert_all_close(got, expected)


def test_decay_mode_resolution() -> None:
    p = [torch.nn.Parameter(torch.zeros(2))]
    cases = [
        ("adamw", {}, True),
        ("adam", {}, False),
        (Lion, {}, True),
        (Grams, {}, True),
        ("sgd", {"lr": 0.1}, False),
        ("adamw", {"cautious_decay": "masked"}, False),
        ("adam", {"cautious_decay": "decoupled"}, True),
    ]
    for base, kw, decoupled in cases:
        opt = Cautious(p, base=base, **kw)
        assert opt._decoupled(opt.param_groups[0]) is decoupled, (base, kw)


def test_weight_decay_restored_after_step() -> None:
    model = SmallRegression()
    opt = Cautious(model.parameters(), base="adamw", lr=1e-2, weight_decay=0.25)
    model().backward()
    opt.step()
    assert opt.param_groups[0]["weight_decay"] == 0.25
    assert opt.base_optimizer.param_groups[0]["weight_decay"] == 0.25

    def failing() -> Any:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        opt.step(failing)
    assert opt.param_groups[0]["weight_decay"] == 0.25


@FOREACH
def test_plain_sgd_is_unchanged(foreach: bool) -> None:
    """Momentum-free SGD steps along -g: every coordinate with g != 0 agrees, mean(phi) = 1."""
    ref, ours = SmallRegression(), SmallRegression()
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    opt = Cautious(ours.parameters(), base="sgd", lr=0.1, foreach=foreach)
    for _ in range(10):
        for model, o in ((ref, opt_ref), (ours, opt)):
            o.zero_grad()
            model().backward()
            o.step()
    for a, b in zip(ref.parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_foreach_matches_single_tensor_with_decay() -> None:
    results = []
    for foreach in (False, True):
        model = SmallRegression()
        opt = optim.get("cadamw").optimizer(model.parameters(), lr=0.01, weight_decay=0.1, foreach=foreach)
        for _ in range(10):
            opt.zero_grad()
            model().backward()
            opt.step()
        results.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------------- pytorch-optimizer


def _train_pair(ours_factory: Callable[..., Any], theirs_factory: Callable[..., Any], steps: int = 15) -> None:
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours, theirs = ours_factory(ours_model.parameters()), theirs_factory(theirs_model.parameters())
    for _ in range(steps):
        for model, opt in ((ours_model, ours), (theirs_model, theirs)):
            opt.zero_grad()
            model().backward()
            opt.step()
    return ours_model, theirs_model


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_clion_matches_pytorch_optimizer_with_its_normaliser(weight_decay: float) -> None:
    """pytorch-optimizer's ``Lion(cautious=True)`` scales the mask by d / (nnz + 1) (the paper's first version)
    and does not mask its decoupled decay: with ``cautious_normalizer="nnz_plus_one"`` the trajectories agree."""
    po = pytest.importorskip("pytorch_optimizer")
    kw = {"lr": 3e-3, "betas": (0.9, 0.99), "weight_decay": weight_decay}
    ours_model, theirs_model = _train_pair(
        lambda ps: optim.get("clion").optimizer(ps, cautious_normalizer="nnz_plus_one", **kw),
        lambda ps: po.Lion(ps, cautious=True, **kw),
    )
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_clion_default_normaliser_differs_from_pytorch_optimizer_exactly_by_it() -> None:
    """One step from the same state: per tensor, our update (default "mean") over pytorch-optimizer's is
    (1 / max(nnz/d, 1e-3)) / (d / (nnz + 1)), nothing else."""
    po = pytest.importorskip("pytorch_optimizer")
    ours_model, theirs_model = SmallRegression(), SmallRegression()
    ours = optim.get("clion").optimizer(ours_model.parameters(), lr=1e-2)
    theirs = po.Lion(theirs_model.parameters(), lr=1e-2, cautious=True)
    for model, opt in ((ours_model, ours), (theirs_model, theirs)):
        # a first plain step so that the momentum exists and the mask is not all ones
        opt.zero_grad()
        model().backward()
        opt.step()
    with torch.no_grad():
        for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
            b.copy_(a)
    before = [p.detach().clone() for p in ours_model.parameters()]
    for model, opt in ((ours_model, ours), (theirs_model, theirs)):
        opt.zero_grad()
        model().backward()
        opt.step()
    partial = 0
    for a, b, p0, g in zip(
        ours_model.parameters(), theirs_model.parameters(), before, (p.grad for p in ours_model.parameters())
    ):
        ours_step, theirs_step = a.detach() - p0, b.detach() - p0
        nnz = float((ours_step * g < 0).sum())
        d = p0.numel()
        ratio = (1.0 / max(nnz / d, 1e-3)) / (d / (nnz + 1.0))
        torch.testing.assert_close(ours_step, theirs_step * ratio, rtol=1e-10, atol=1e-14)
        assert abs(ratio - 1.0) > 1e-3  # the normalisers really differ here
        partial += 0 < nnz < d
    assert partial > 0  # and some tensor has a mask that is not all ones


# --------------------------------------------------------------------------------------------------- wrapper


def test_bfloat16_parameters() -> None:
    model = torch.nn.Linear(4, 2).to(torch.bfloat16)
    opt = optim.get("cadamw").optimizer(model.parameters(), lr=1e-2, weight_decay=0.01)
    x = torch.randn(8, 4, dtype=torch.bfloat16)
    for _ in range(3):
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    for p in model.parameters():
        assert p.dtype == torch.bfloat16 and torch.isfinite(p.float()).all()
        assert len(opt.state[p]) == 0  # the wrapper keeps no state of its own
        assert opt.base_optimizer.state[p]["exp_avg"].dtype == torch.bfloat16


def test_composes_by_name_and_rejects_itself() -> None:
    spec = optim.get("cautious_grams")
    assert spec.name == "cautious_grams"
    opt = spec.optimizer(SmallRegression().parameters(), lr=1e-3)
    assert isinstance(opt.base_optimizer, Grams)
    with pytest.raises(ValueError, match="cannot wrap"):
        Cautious(SmallRegression().parameters(), base=Cautious)


def test_closure_gradients_are_used() -> None:
    """With a closure the gradients exist only inside the base's step: the mask still uses them."""
    a, b = SmallRegression(), SmallRegression()
    opt_a = optim.get("cadamw").optimizer(a.parameters(), lr=0.01)
    opt_b = optim.get("cadamw").optimizer(b.parameters(), lr=0.01)
    for _ in range(5):

        def closure() -> Any:
            opt_a.zero_grad(set_to_none=True)
            loss = a()
            loss.backward()
            return loss

        opt_a.step(closure)
        opt_b.zero_grad(set_to_none=True)
        b().backward()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------------- fused path


def _force_generic(opt: Cautious) -> None:
    """A step hook on the base makes the wrapper step the base and read its update off the parameters."""
    opt.base_optimizer.register_step_post_hook(lambda *_: None)


@pytest.mark.parametrize("name", ["cadamw", "clion"])
@pytest.mark.parametrize("normalizer", ["mean", "nnz_plus_one"])
def test_fused_step_equals_generic_step_and_shares_state(name: str, normalizer: str) -> None:
    """With foreach the step is computed from the base's own state in one pass; it must give the generic path's
    numbers, keep the base's state layout (so the two paths can take over from each other mid-run)."""
    theta0, grads = _problem(3, steps=6)

    def build(ps: list[torch.nn.Parameter]) -> Cautious:
        return optim.get(name).optimizer(ps, lr=0.02, weight_decay=0.1, foreach=True, cautious_normalizer=normalizer)

    fused = build([torch.nn.Parameter(torch.tensor(t)) for t in theta0])
    assert fused._fused_kind() == ("lion" if name == "clion" else "adamw")
    generic = build([torch.nn.Parameter(torch.tensor(t)) for t in theta0])
    _force_generic(generic)
    assert generic._fused_kind() is None
    switched = build([torch.nn.Parameter(torch.tensor(t)) for t in theta0])
    for step, step_grads in enumerate(grads):
        if step == 3:
            _force_generic(switched)  # the base takes over the state the fused path built
        for opt in (fused, generic, switched):
            for p, g in zip(opt.param_groups[0]["params"], step_grads):
                p.grad = torch.tensor(g)
            opt.step()
    for opt in (generic, switched):
        for p, q in zip(fused.param_groups[0]["params"], opt.param_groups[0]["params"]):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    fused_state = fused.state_dict()["base"]["state"]
    generic_state = generic.state_dict()["base"]["state"]
    assert fused_state.keys() == generic_state.keys()
    for index, entry in fused_state.items():
        assert entry.keys() == generic_state[index].keys()
        for key, value in entry.items():
            torch.testing.assert_close(value, generic_state[index][key], rtol=1e-12, atol=1e-14)


def test_fused_path_only_where_it_is_exact() -> None:
    params = [torch.nn.Parameter(torch.ones(3))]
    assert Cautious(params, base="adamw", foreach=False)._fused_kind() is None
    assert Cautious(params, base="adamw", amsgrad=True)._fused_kind() is None
    assert Cautious(params, base="adamw", cautious_decay="masked", weight_decay=0.1)._fused_kind() is None
    assert Cautious(params, base="adam", weight_decay=0.1)._fused_kind() is None  # L2 decay: masked mode
    assert Cautious(params, base="adam")._fused_kind() == "adamw"
    assert Cautious(params, base="grams")._fused_kind() is None
    tensor_lr = Cautious(params, base="adamw", lr=torch.tensor(0.01))
    assert tensor_lr._fused_kind() is None
