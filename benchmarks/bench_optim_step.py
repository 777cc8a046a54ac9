"""Benchmark B3 (BENCHMARKS.md): optimizer step time as a ratio to ``torch.optim.AdamW(foreach=True)``.

Workload: 20 x (Linear 128x128 + LayerNorm 128) parameters, fixed random gradients, 5 warm-up steps, then 200
timed steps per round; rounds interleave every contender (anchor included) so machine noise hits all alike; the
figure is the median over rounds of contender / anchor. Every registry entry is measured with its defaults
(foreach=True where it has the flag) and, where pytorch-optimizer implements the same paper, that implementation
too, in the same run. Shampoo (both) refreshes its preconditioners every 10 steps (amortised figure).

Optimizers that need ``backward(create_graph=True)`` (AdaHessian) cannot step on fixed gradients: their rows time
backward + step on a small loss with a graph, against AdamW doing plain backward + step on the same loss (marked
"incl. backward"). L-BFGS (closure, line search, full batch) has no per-step figure comparable to the others.

Usage: python benchmarks/bench_optim_step.py [--repeats 5] [--steps 200] [--only NAME ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

import torch
from _common import interleaved, median_ratio, setup_threads
from torch import nn

from skopt_nn import optim

# skopt_nn name -> (pytorch-optimizer name, extra kwargs to match the workload)
SAME_PAPER: dict[str, tuple[str, dict[str, Any]]] = {
    "diffgrad": ("diffgrad", {}),
    "adamp": ("adamp", {}),
    "sgdp": ("sgdp", {}),
    "lamb": ("lamb", {}),
    "lars": ("lars", {}),
    "lion": ("lion", {}),
    "shampoo": ("shampoo", {"preconditioning_compute_steps": 10}),
    "adahessian": ("adahessian", {}),
    "novograd": ("novograd", {}),
    "soap": ("soap", {"precondition_frequency": 10}),
    "mars": ("mars", {"optimize_1d": True}),
    "ademamix": ("ademamix", {}),
    "grams": ("grams", {}),
    "gravity": ("gravity", {"lr": 0.1}),
    "clion": ("lion", {"cautious": True}),
}
ELEMENTWISE_BAR, PRECONDITIONED_BAR = 1.3, 3.0
PRECONDITIONED = {"shampoo", "soap", "adahessian"}


def make_parameters() -> list[nn.Parameter]:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(20):
        layers += [nn.Linear(128, 128), nn.LayerNorm(128)]
    return list(nn.Sequential(*layers).parameters())


class Contender:
    """One optimizer on its own copy of the parameters, stepping on fixed gradients (or a graph loss)."""

    def __init__(self, build: Callable[[list[nn.Parameter]], torch.optim.Optimizer], create_graph: bool) -> None:
        self.params = make_parameters()
        generator = torch.Generator().manual_seed(1)
        self.grads = [torch.randn(p.shape, generator=generator) * 1e-2 for p in self.params]
        self.create_graph = create_graph
        self.optimizer = build(self.params)
        if not create_graph:
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad = g.clone()
        self.run(5)

    def _graph_step(self, create_graph: bool) -> None:
        for p in self.params:
            p.grad = None
        # a loss whose gradient is the fixed gradient plus a small curvature term (Hessian 1e-3 I)
        loss = sum((p * g).sum() + 5e-4 * (p * p).sum() for p, g in zip(self.params, self.grads, strict=True))
        loss.backward(create_graph=create_graph)  # type: ignore[union-attr]
        self.optimizer.step()

    def run(self, steps: int) -> None:
        if self.create_graph is None:
            return
        for _ in range(steps):
            if self.create_graph:
                self._graph_step(True)
            elif getattr(self, "with_backward", False):
                self._graph_step(False)
            else:
                self.optimizer.step()


def ours(name: str) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    spec = optim.get(name)
    kwargs = {"foreach": True} if spec.supports_foreach else {}
    return lambda params: spec.build(params, **kwargs)


def theirs(name: str, extra: dict[str, Any]) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None:
    try:
        import pytorch_optimizer
    except ImportError:
        return None
    cls = pytorch_optimizer.load_optimizer(name)
    kwargs = dict(extra)
    if "foreach" in inspect.signature(cls.__init__).parameters:
        kwargs["foreach"] = True
    return lambda params: cls(params, **kwargs)


def anchor() -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    return lambda params: torch.optim.AdamW(params, foreach=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="registry names (default: all)")
    args = parser.parse_args()
    setup_threads(args.threads)

    names = [n for n in optim.available() if args.only is None or n in args.only]
    names = [n for n in names if not optim.get(n).needs_closure]
    contenders: dict[str, Contender] = {"anchor": Contender(anchor(), create_graph=False)}
    graph_anchor = Contender(anchor(), create_graph=False)
    graph_anchor.with_backward = True  # type: ignore[attr-defined]
    contenders["anchor+backward"] = graph_anchor
    for name in names:
        create_graph = optim.get(name).needs_create_graph
        contenders[name] = Contender(ours(name), create_graph)
        if name in SAME_PAPER:
            build = theirs(*SAME_PAPER[name])
            if build is not None:
                # keyed by our name: two of ours may compare with one class under different kwargs (lion, clion)
                contenders[f"pytorch_optimizer[{name}]"] = Contender(build, create_graph)

    steps = args.steps
    times = interleaved({k: (lambda c=c: c.run(steps)) for k, c in contenders.items()}, args.repeats)

    print(
        f"B3 step-time ratio vs torch.optim.AdamW(foreach=True); {args.repeats} rounds x {steps} steps, "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    print(f"{'optimizer':24s} {'ratio':>7s} {'pytorch-opt':>12s} {'ours/theirs':>12s} {'bar':>5s}  verdict")
    for name in names:
        spec = optim.get(name)
        base = "anchor+backward" if spec.needs_create_graph else "anchor"
        ratio = median_ratio(times[name], times[base])
        key = f"pytorch_optimizer[{name}]" if name in SAME_PAPER else None
        their_ratio = median_ratio(times[key], times[base]) if key in times else None
        vs = median_ratio(times[name], times[key]) if key in times else None
        bar = PRECONDITIONED_BAR if name in PRECONDITIONED else ELEMENTWISE_BAR
        ok = ratio <= bar and (vs is None or vs <= 1.0)
        note = " (incl. backward)" if spec.needs_create_graph else ""
        shown_theirs = f"{their_ratio:12.2f}" if their_ratio is not None else f"{'-':>12s}"
        shown_vs = f"{vs:12.2f}" if vs is not None else f"{'-':>12s}"
        print(f"{name:24s} {ratio:7.2f} {shown_theirs} {shown_vs} {bar:5.1f}  {'ok' if ok else 'MISS'}{note}")


if __name__ == "__main__":
    main()
