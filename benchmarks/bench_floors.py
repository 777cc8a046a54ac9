"""The irreducible work of the B3 misses, as a ratio to the same ``torch.optim.AdamW(foreach=True)`` step.

B3 (``bench_optim_step.py``) leaves a few optimizers above the bar. This script times, on the same workload
(20 x (Linear 128x128 + LayerNorm 128), 2 threads) and interleaved with the AdamW anchor, the part of each step
that the algorithm cannot skip, whatever the implementation:

* ``coordinate_clip`` (fraction rule): one exact order statistic (``kthvalue``) over every coordinate per step;
* ``gradient_noise``: one Gaussian draw per coordinate per step (``randn``);
* ``shampoo``: per weight matrix and step, two factor updates (G Gᵀ, Gᵀ G) and two preconditioner products
  (L^-1/4 G R^-1/4), plus two ``eigh`` of 128x128 SPD factors every 10 steps (float64, as ours); the Adam
  grafting that sets the step's norm (about one AdamW step more) is not included;

A ratio above the bar here means the bar cannot be met on this machine by any implementation of the algorithm;
the figure printed is ``floor / AdamW step`` (median over rounds).

Usage: python benchmarks/bench_floors.py [--repeats 7] [--steps 100] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch
from _common import interleaved, median_ratio, setup_threads
from bench_optim_step import make_parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup_threads(args.threads)
    steps = args.steps

    params = make_parameters()
    generator = torch.Generator().manual_seed(1)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator) * 1e-2
    adamw = torch.optim.AdamW(params, foreach=True)
    for _ in range(5):
        adamw.step()
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    k = flat.numel() - flat.numel() // 10
    matrices = [g for g in grads if g.dim() == 2]
    factors = [torch.eye(128) for _ in matrices]
    roots = [torch.eye(128) for _ in matrices]
    # eigh of an identity (or any diagonal) matrix returns at once: the refresh is timed on real SPD factors
    spd = torch.randn(len(matrices), 128, 128, generator=generator, dtype=torch.float64)
    factors64 = list(spd @ spd.mT + torch.eye(128, dtype=torch.float64))

    def anchor() -> None:
        for _ in range(steps):
            adamw.step()

    def order_statistic() -> None:
        for _ in range(steps):
            magnitudes = torch._foreach_abs(grads)
            torch.kthvalue(torch.cat([m.reshape(-1) for m in magnitudes]), k)

    def gaussian() -> None:
        for _ in range(steps):
            for g in grads:
                torch.randn(g.shape)

    def shampoo() -> None:
        for step in range(steps):
            for g, f, r in zip(matrices, factors, roots, strict=True):
                f.addmm_(g, g.mT)
                f.addmm_(g.mT, g)
                r @ g @ r
            if step % 10 == 0:
                for f in factors64:
                    torch.linalg.eigh(f)
                    torch.linalg.eigh(f)

    contenders = {
        "anchor": anchor,
        "coordinate_clip": order_statistic,
        "gradient_noise": gaussian,
        "shampoo": shampoo,
    }
    times = interleaved(contenders, args.repeats)
    print(f"B3 floors: irreducible work per step / AdamW(foreach=True) step; {args.repeats} rounds x {steps} steps")
    for name in contenders:
        if name != "anchor":
            print(f"{name:18s} {median_ratio(times[name], times['anchor']):6.2f}")


if __name__ == "__main__":
    main()
