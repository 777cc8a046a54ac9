"""The optimizer conformance suite: every registry entry must pass every check.

Each check takes an :class:`~skopt_nn.optim.OptimizerSpec` and either returns (pass), raises ``AssertionError``
(fail) or calls :func:`not_applicable` when a capability flag of the spec says the check does not apply. Quirks
are flags on the spec, never names in here.

Use it from pytest::

    @pytest.mark.parametrize("name", skopt_nn.optim.available())
    @pytest.mark.parametrize("check", OPTIMIZER_CHECKS, ids=lambda c: c.__name__)
    def test_conformance(name, check):
        check(skopt_nn.optim.get(name))
"""

from __future__ import annotations

import copy
import inspect
import io
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from skopt_nn.optim._registry import ConvergenceCase, OptimizerSpec

__all__ = [
    "OPTIMIZER_CHECKS",
    "NotApplicable",
    "Quadratic",
    "Rosenbrock",
    "SmallRegression",
    "check_closure_calls",
    "check_converges_quadratic",
    "check_converges_rosenbrock",
    "check_defaults_match_signature",
    "check_descends",
    "check_dtypes",
    "check_bfloat16",
    "check_cuda",
    "check_error_inputs",
    "check_foreach_matches_single_tensor",
    "check_grad_none_skipped",
    "check_param_group_lr",
    "check_repr",
    "check_state_dict_round_trip",
    "make_optimizer",
    "not_applicable",
    "optimizer_step",
]


class NotApplicable(Exception):
    """Raised by a check that does not apply to a spec (when pytest is not installed)."""


def not_applicable(reason: str) -> None:
    """Skip the current check (``pytest.skip`` under pytest)."""
    try:
        import pytest
    except ImportError:  # pragma: no cover - the suite is run by pytest in practice
        raise NotApplicable(reason) from None
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------------- problems


class Quadratic(nn.Module):
    """``f(x) = 1/2 * sum_i a_i (x_i - c_i)^2`` with curvatures 1..10 (condition number 10); minimiser ``c``."""

    a: torch.Tensor
    c: torch.Tensor

    def __init__(self, dim: int = 8, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.register_buffer("a", torch.linspace(1.0, 10.0, dim, dtype=dtype))
        self.register_buffer("c", torch.linspace(-1.0, 1.0, dim, dtype=dtype))
        self.x = nn.Parameter(torch.zeros(dim, dtype=dtype))

    @property
    def minimiser(self) -> torch.Tensor:
        return self.c

    def distance(self) -> float:
        return float(torch.linalg.vector_norm(self.x.detach() - self.minimiser))

    def forward(self) -> torch.Tensor:
        return 0.5 * (self.a * (self.x - self.c) ** 2).sum()


class Rosenbrock(nn.Module):
    """``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`` from ``(-1.2, 1)``; minimiser ``(1, 1)``."""

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.xy = nn.Parameter(torch.tensor([-1.2, 1.0], dtype=dtype))

    @property
    def minimiser(self) -> torch.Tensor:
        return torch.ones(2, dtype=self.xy.dtype)

    def distance(self) -> float:
        return float(torch.linalg.vector_norm(self.xy.detach() - self.minimiser))

    def forward(self) -> torch.Tensor:
        x, y = self.xy[0], self.xy[1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2


class SmallRegression(nn.Module):
    """A two-layer network (matrices, vectors, a LayerNorm) on fixed data: the multi-tensor problem."""

    X: torch.Tensor
    y: torch.Tensor

    def __init__(self, dtype: torch.dtype = torch.float64, seed: int = 0, unused: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc1 = nn.Linear(6, 12).to(dtype)
        self.norm = nn.LayerNorm(12).to(dtype)
        self.fc2 = nn.Linear(12, 1).to(dtype)
        self.unused = nn.Parameter(torch.ones(3, dtype=dtype)) if unused else None
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
        self.register_buffer("X", torch.randn(32, 6, generator=g, dtype=dtype))
        w = torch.randn(6, 1, generator=g, dtype=dtype)
        self.register_buffer("y", torch.tanh(self.X @ w) + 0.1 * torch.randn(32, 1, generator=g, dtype=dtype))

    def forward(self) -> torch.Tensor:
        h = torch.tanh(self.norm(self.fc1(self.X)))
        return ((self.fc2(h) - self.y) ** 2).mean()


# --------------------------------------------------------------------------------------------------- helpers


def make_optimizer(spec: OptimizerSpec, model: nn.Module, params: Any = None, **kwargs: Any) -> torch.optim.Optimizer:
    """Build ``spec``'s optimizer for ``model`` (its parameters unless ``params`` is given)."""
    kw = {**spec.sample_kwargs, **kwargs}
    return spec.build(model.parameters() if params is None else params, module=model, **kw)


def optimizer_step(spec: OptimizerSpec, optimizer: torch.optim.Optimizer, model: nn.Module) -> float:
    """One step the way the flags say: closure for ``needs_closure``, ``create_graph`` for HVP methods."""

    def closure() -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = model()
        loss.backward(create_graph=spec.needs_create_graph)
        return loss

    loss: Any
    if spec.needs_closure:
        loss = optimizer.step(closure)
    else:
        loss = closure()
        optimizer.step()
    if spec.needs_create_graph:
        optimizer.zero_grad(set_to_none=True)  # free the graph kept alive by create_graph
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


@contextmanager
def _seeded(spec: OptimizerSpec, seed: int = 1234) -> Iterator[None]:
    """Fix torch's global RNG for stochastic optimizers (restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _run(spec: OptimizerSpec, model: nn.Module, steps: int, seed: int = 1234, **kwargs: Any) -> torch.optim.Optimizer:
    opt = make_optimizer(spec, model, **kwargs)
    with _seeded(spec, seed):
        for _ in range(steps):
            optimizer_step(spec, opt, model)
    return opt


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# --------------------------------------------------------------------------------------------------- checks


def check_error_inputs(spec: OptimizerSpec) -> None:
    """The constructor rejects each bad hyperparameter of the spec with its exact message."""
    if not spec.error_inputs:
        not_applicable("the spec lists no error inputs")
    for case in spec.error_inputs:
        model = SmallRegression()
        try:
            spec.build(model.parameters(), module=model, **case.kwargs)
        except case.error as exc:
            assert str(exc) == case.message, f"{case.kwargs}: got {str(exc)!r}, expected {case.message!r}"
        else:
            raise AssertionError(f"{spec.name}({case.kwargs}) did not raise {case.error.__name__}")


def _hyperparameter_names(cls: type) -> set[str]:
    params = inspect.signature(cls).parameters
    return {n for n, p in params.items() if n != "params" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def check_defaults_match_signature(spec: OptimizerSpec) -> None:
    """Every constructor hyperparameter is in ``optimizer.defaults`` and in every param group, so
    ``state_dict``/``add_param_group`` and per-group overrides see all of them."""
    model = SmallRegression()
    opt = make_optimizer(spec, model)
    names = _hyperparameter_names(type(opt)) - {"base", "module"}
    missing = names - set(opt.defaults)
    assert not missing, f"defaults of {type(opt).__name__} miss {sorted(missing)}"
    for group in opt.param_groups:
        assert set(opt.defaults) <= set(group), "every param group carries every default"


def check_repr(spec: OptimizerSpec) -> None:
    """``repr`` names the optimizer class."""
    opt = make_optimizer(spec, SmallRegression())
    assert type(opt).__name__ in repr(opt)


def check_descends(spec: OptimizerSpec) -> None:
    """The loss decreases over 20 steps on a small regression network."""
    model = SmallRegression()
    first = float(model().detach())
    _run(spec, model, 20)
    last = float(model().detach())
    assert math.isfinite(last) and last < first, f"loss {first:.4g} -> {last:.4g}"


def _check_case(spec: OptimizerSpec, case: ConvergenceCase | None, problem: Callable[[], Any], label: str) -> None:
    if case is None:
        not_applicable(f"no {label} case: not expected to converge there with a constant step")
        return
    model = problem()
    opt = spec.build(model.parameters(), module=model, **{**spec.sample_kwargs, **case.kwargs})
    with _seeded(spec):
        for _ in range(case.steps):
            optimizer_step(spec, opt, model)
    dist = model.distance()
    assert dist <= case.tol, f"{label}: distance {dist:.3g} > {case.tol} after {case.steps} steps"


def check_converges_quadratic(spec: OptimizerSpec) -> None:
    """Reaches the minimiser of an ill-conditioned quadratic within the spec's budget."""
    _check_case(spec, spec.quadratic, Quadratic, "quadratic")


def check_converges_rosenbrock(spec: OptimizerSpec) -> None:
    """Reaches (1, 1) on Rosenbrock from (-1.2, 1) within the spec's budget."""
    _check_case(spec, spec.rosenbrock, Rosenbrock, "rosenbrock")


def check_state_dict_round_trip(spec: OptimizerSpec) -> None:
    """A rebuilt optimizer loaded from ``state_dict`` (saved with ``weights_only``) continues identically."""
    model_a = SmallRegression()
    opt_a = _run(spec, model_a, 5, seed=1)
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    model_b = copy.deepcopy(model_a)
    opt_b = make_optimizer(spec, model_b)
    opt_b.load_state_dict(state)
    for model, opt in ((model_a, opt_a), (model_b, opt_b)):
        with _seeded(spec, seed=2):
            for _ in range(5):
                optimizer_step(spec, opt, model)
    # torch's load_state_dict casts floating state to the parameter's dtype (NAdam keeps ``mu_product`` in
    # float32), which moves the float64 trajectory by ~1e-11; anything beyond that is a lost state entry.
    diff = float((_flat(model_a) - _flat(model_b)).abs().max())
    assert diff <= 1e-9, f"trajectories diverge after load_state_dict (max abs diff {diff:.3g})"


def check_grad_none_skipped(spec: OptimizerSpec) -> None:
    """Parameters whose ``grad`` is ``None`` are left untouched."""
    model = SmallRegression(unused=True)
    assert model.unused is not None
    before = model.unused.detach().clone()
    _run(spec, model, 5)
    assert model.unused.grad is None
    assert torch.equal(model.unused.detach(), before), "a parameter without gradient moved"


def check_param_group_lr(spec: OptimizerSpec) -> None:
    """Each param group's ``lr`` is honoured: a group with ``lr=0`` stays put while the other moves, and
    (for deterministic methods) two groups with different ``lr`` match each group optimised alone."""
    if not spec.supports_param_groups:
        not_applicable("supports_param_groups=False")
    model = SmallRegression()
    frozen = list(model.fc2.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("fc2")]
    frozen_before = [p.detach().clone() for p in frozen]
    rest_before = [p.detach().clone() for p in rest]
    opt = make_optimizer(spec, model, params=[{"params": rest}, {"params": frozen, "lr": 0.0}])
    base_lr = float(opt.defaults["lr"])
    with _seeded(spec):
        for _ in range(5):
            optimizer_step(spec, opt, model)
    assert all(torch.equal(p.detach(), b) for p, b in zip(frozen, frozen_before)), "the lr=0 group moved"
    assert not all(torch.equal(p.detach(), b) for p, b in zip(rest, rest_before)), "the lr>0 group did not move"

    if spec.stochastic or spec.needs_closure:
        # random draws are shared across groups; a closure-driven method evaluates the loss at other iterates
        return
    two = SmallRegression()
    a = list(two.fc1.parameters()) + list(two.norm.parameters())
    b = list(two.fc2.parameters())
    opt2 = make_optimizer(spec, two, params=[{"params": a}, {"params": b, "lr": base_lr * 0.5}])
    ref = SmallRegression()
    opt_a = make_optimizer(spec, ref, params=list(ref.fc1.parameters()) + list(ref.norm.parameters()))
    opt_b = make_optimizer(spec, ref, params=list(ref.fc2.parameters()), lr=base_lr * 0.5)
    for _ in range(5):
        optimizer_step(spec, opt2, two)
        for o in (opt_a, opt_b):
            o.zero_grad(set_to_none=True)
        ref().backward(create_graph=spec.needs_create_graph)
        opt_a.step()
        opt_b.step()
        if spec.needs_create_graph:
            for o in (opt_a, opt_b):
                o.zero_grad(set_to_none=True)
    assert torch.allclose(_flat(two), _flat(ref), rtol=1e-10, atol=1e-12), "groups differ from separate runs"


def check_closure_calls(spec: OptimizerSpec) -> None:
    """``step(closure)`` calls the closure once (or, for ``needs_closure``, as often as it needs) and returns
    its loss; without ``needs_closure``, ``step()`` works on precomputed gradients."""
    model = SmallRegression()
    opt = make_optimizer(spec, model)
    calls = 0

    def closure() -> Any:
        nonlocal calls
        calls += 1
        opt.zero_grad(set_to_none=True)
        loss = model()
        loss.backward(create_graph=spec.needs_create_graph)
        return loss

    with _seeded(spec):
        returned = opt.step(closure)
    assert isinstance(returned, torch.Tensor) and returned.ndim == 0, f"step returned {returned!r}"
    if spec.needs_closure:
        assert calls >= 1
    else:
        assert calls == 1, f"closure called {calls} times"
        with _seeded(spec):
            closure()
            assert opt.step() is None


def check_foreach_matches_single_tensor(spec: OptimizerSpec) -> None:
    """The multi-tensor (``foreach=True``) path gives the single-tensor trajectory."""
    if not spec.supports_foreach:
        not_applicable("supports_foreach=False")
    results = []
    for foreach in (False, True):
        model = SmallRegression()
        _run(spec, model, 10, foreach=foreach)
        results.append(_flat(model))
    assert torch.allclose(results[0], results[1], rtol=1e-9, atol=1e-12), (
        f"max abs diff {float((results[0] - results[1]).abs().max()):.3g}"
    )


def check_dtypes(spec: OptimizerSpec) -> None:
    """float32 and float64 parameters train, keep their dtype, and stay finite; state follows the dtype."""
    for dtype in (torch.float32, torch.float64):
        model = SmallRegression(dtype=dtype)
        first = float(model().detach())
        opt = _run(spec, model, 10)
        assert all(p.dtype == dtype for p in model.parameters())
        assert torch.isfinite(_flat(model)).all()
        assert float(model().detach()) < first
        for state in opt.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() > 1:
                    assert value.dtype in (dtype, torch.float64), f"state {key!r} is {value.dtype}"


def check_bfloat16(spec: OptimizerSpec) -> None:
    """bfloat16 parameters train 20 steps, stay bfloat16 and finite; every full-size state tensor is bfloat16 or
    a wider float (float32 where the optimizer needs the precision, documented per optimizer)."""
    model = SmallRegression(dtype=torch.bfloat16)
    first = float(model().detach())
    opt = _run(spec, model, 20)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert torch.isfinite(_flat(model).float()).all()
    assert float(model().detach()) < first
    for state in _states(opt):
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                assert value.dtype in (torch.bfloat16, torch.float32, torch.float64), f"state {key!r}: {value.dtype}"


def check_cuda(spec: OptimizerSpec) -> None:
    """On a CUDA device (skipped without one) the state lives on the parameters' device and ten float32 steps
    follow the CPU trajectory (to float32 kernel differences)."""
    if not torch.cuda.is_available():
        not_applicable("no CUDA device")
    results = []
    for device in ("cpu", "cuda"):
        model = SmallRegression(dtype=torch.float32).to(device)
        opt = _run(spec, model, 10)
        for state in _states(opt):
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.numel() > 1:
                    assert value.device.type == device, f"state {key!r} is on {value.device}"
        results.append(_flat(model).cpu())
    assert torch.allclose(results[0], results[1], rtol=1e-3, atol=1e-5), (
        f"max abs diff {float((results[0] - results[1]).abs().max()):.3g}"
    )


def _states(opt: torch.optim.Optimizer) -> Iterator[Mapping[str, Any]]:
    """Every per-parameter state of ``opt`` and, for a wrapper, of its base optimizer."""
    yield from opt.state.values()
    base = getattr(opt, "base_optimizer", None)
    if isinstance(base, torch.optim.Optimizer):
        yield from _states(base)


OPTIMIZER_CHECKS: tuple[Callable[[OptimizerSpec], None], ...] = (
    check_error_inputs,
    check_defaults_match_signature,
    check_repr,
    check_descends,
    check_converges_quadratic,
    check_converges_rosenbrock,
    check_state_dict_round_trip,
    check_grad_none_skipped,
    check_param_group_lr,
    check_closure_calls,
    check_foreach_matches_single_tensor,
    check_dtypes,
    check_bfloat16,
    check_cuda,
)


def spec_kwargs(spec: OptimizerSpec) -> Mapping[str, Any]:
    """The sample hyperparameters of ``spec`` (a convenience for user tests)."""
    return dict(spec.sample_kwargs)
