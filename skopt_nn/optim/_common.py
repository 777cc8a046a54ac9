"""Small pieces shared by several optimizers' functional forms."""

from __future__ import annotations

import math

__all__ = ["adam_bias_terms"]


def adam_bias_terms(
    steps: list[int], lr: float, beta1: float, beta2: float, eps: float
) -> tuple[list[float], list[float]]:
    """Per-tensor ``eps * sqrt(1 - beta2^t)`` and ``-lr * sqrt(1 - beta2^t) / (1 - beta1^t)``.

    With them ``theta -= lr * m_hat / (sqrt(v_hat) + eps)`` is computed as
    ``theta += step * m / (sqrt(v) + eps_t)`` (the same number, two fewer tensor passes).
    """
    cache: dict[int, tuple[float, float]] = {}
    eps_t: list[float] = []
    step_size: list[float] = []
    for t in steps:
        if t not in cache:
            bc2_sqrt = math.sqrt(1.0 - beta2**t)
            cache[t] = (eps * bc2_sqrt, -lr * bc2_sqrt / (1.0 - beta1**t))
        e, s = cache[t]
        eps_t.append(e)
        step_size.append(s)
    return eps_t, step_size
