"""Warm-up composition: (t + 1)/(w + 1) towards the body's first value, then the body on total - w steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skopt_nn.schedules import (
    Constant,
    ConstantCooldown,
    Cosine,
    Hold,
    Join,
    Linear,
    Refined,
    linear_decay,
    linear_warmup,
)

C45 = (1 + math.cos(math.pi / 4)) / 2


def test_warmup_then_cosine_on_the_remaining_steps() -> None:
    got = Cosine(warmup_steps=3).multipliers(7, 1)
    # warm-up 1/4, 2/4, 3/4, then a 4-step cosine: 1, cos-, 0.5, cos+
    expected = [0.25, 0.5, 0.75, 1.0, C45, 0.5, 1 - C45]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_warmup_then_linear_decay_and_constant() -> None:
    np.testing.assert_allclose(Linear(warmup_steps=1).multipliers(5, 1), [0.5, 1.0, 0.75, 0.5, 0.25], atol=1e-15)
    np.testing.assert_allclose(Constant(warmup_steps=4).multipliers(6, 1), [0.2, 0.4, 0.6, 0.8, 1.0, 1.0], atol=1e-15)


def test_warmup_fraction_is_floored() -> None:
    assert Cosine(warmup_fraction=0.29).warmup_length(100) == 29  # 0.29 * 100 = 28.999999999999996
    assert Cosine(warmup_fraction=0.5).warmup_length(7) == 3
    assert Cosine(warmup_fraction=0.99).warmup_length(10) == 9  # a fraction < 1 always leaves a body step
    np.testing.assert_allclose(
        Linear(warmup_fraction=0.3).multipliers(10, 1), Linear(warmup_steps=3).multipliers(10, 1), atol=0
    )


def test_body_horizon_is_total_minus_warmup() -> None:
    for schedule, body in ((Cosine(warmup_steps=5), Cosine()), (ConstantCooldown(warmup_steps=5), ConstantCooldown())):
        np.testing.assert_allclose(schedule.multipliers(25, 5)[5:], body.multipliers(20, 5), atol=0)


def test_warmup_ramps_to_the_first_value_of_a_body_that_starts_low() -> None:
    # large early gradient norms: the refined schedule starts below its peak; the warm-up joins it continuously
    norms = [8.0, 4.0, 2.0] + [1.0] * 17
    body = Refined(grad_norms=norms, smoothing=0.0).multipliers(16, 4)
    got = Refined(grad_norms=norms, smoothing=0.0, warmup_steps=4).multipliers(20, 4)
    np.testing.assert_allclose(got[:4], [body[0] * (t + 1) / 5 for t in range(4)], atol=1e-15)
    np.testing.assert_allclose(got[4:], body, atol=0)
    assert body[0] < 1.0


def test_composition_objects() -> None:
    from functools import partial

    fn = Hold(
        Join((partial(linear_warmup, warmup_steps=2), partial(linear_decay, total_steps=4)), (2,)),
        last=5,
    )
    assert [fn(t) for t in range(8)] == [1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25, 0.25, 0.25]
    with pytest.raises(ValueError, match="one more piece"):
        Join((linear_warmup,), (2,))
