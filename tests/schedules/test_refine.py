"""Schedule refinement (Defazio et al. 2023) on synthetic gradient-norm sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch.history import History

from skopt_nn.schedules import (
    NORM_TYPES,
    Linear,
    Refined,
    gradient_norm,
    median_filter,
    refined_from,
    refined_multipliers,
)
from skopt_nn.schedules._refine import filter_width


@pytest.mark.parametrize("method", ["sgd", "adam"])
@pytest.mark.parametrize("recorded,total", [(10, 10), (10, 37), (200, 50), (1, 5)])
def test_constant_norms_give_linear_decay(method: str, recorded: int, total: int) -> None:
    # the paper: with G_t constant, w_t ~ T - t, the linear-decay schedule (reaching 0 on the last step)
    got = Refined(grad_norms=[3.0] * recorded, method=method).multipliers(total, 1)
    np.testing.assert_allclose(got, [1 - t / (total - 1) for t in range(total)], rtol=0, atol=1e-12)
    # ... which is our `linear` schedule on a horizon one step shorter
    np.testing.assert_allclose(got[:-1], Linear().multipliers(total - 1, 1), rtol=0, atol=1e-12)


def test_sgd_formula_by_hand() -> None:
    # G = (1, 2, 1, 0.5): a = G^-2 = (1, 0.25, 1, 4); w_t = a_t * sum_{p>t} a_p = (5.25, 1.25, 4, 0)
    got = refined_multipliers([1.0, 2.0, 1.0, 0.5], 4, method="sgd", smoothing=0.0)
    np.testing.assert_allclose(got, [1.0, 1.25 / 5.25, 4 / 5.25, 0.0], rtol=0, atol=1e-15)


def test_adam_formula_uses_the_inverse_l1_norm() -> None:
    # a = G^-1 = (1, 0.5, 1, 2): w = (3.5, 1.5, 2, 0)
    got = refined_multipliers([1.0, 2.0, 1.0, 0.5], 4, method="adam", smoothing=0.0)
    np.testing.assert_allclose(got, [1.0, 1.5 / 3.5, 2 / 3.5, 0.0], rtol=0, atol=1e-15)


def test_median_filter_edges() -> None:
    # a spike is removed; the start is padded with the first value, the end mirrored
    np.testing.assert_array_equal(median_filter([1, 9, 1, 1, 1], 3), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(median_filter([1, 2, 3, 4, 5], 3), [1, 2, 3, 4, 4])
    np.testing.assert_array_equal(median_filter([5, 1, 2, 3, 4], 5), [5, 3, 3, 3, 3])
    np.testing.assert_array_equal(median_filter([4.0, 2.0], 1), [4.0, 2.0])
    with pytest.raises(ValueError, match="positive odd"):
        median_filter([1.0, 2.0], 2)


def test_filter_width_is_odd_and_proportional() -> None:
    assert filter_width(100, 0.1) == 11
    assert filter_width(25, 0.1) == 3
    assert filter_width(9, 0.1) == 1
    assert filter_width(1000, 0.0) == 1


def test_smoothing_filters_before_weighting() -> None:
    norms = [1.0, 1.0, 50.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    smoothed = refined_multipliers(norms, 10, smoothing=0.3)  # width 3 removes the outlier
    np.testing.assert_allclose(smoothed, [1 - t / 9 for t in range(10)], atol=1e-12)
    raw = refined_multipliers(norms, 10, smoothing=0.0)
    assert raw[2] < 0.01  # an unfiltered spike would almost stop training on that step


def test_resampling_interpolates_the_filtered_norms() -> None:
    # smoothing=0: the norms are linearly interpolated to the new length, then weighted
    norms = np.linspace(1.0, 2.0, 5)
    got = refined_multipliers(norms, 9, smoothing=0.0)
    g = np.linspace(1.0, 2.0, 9)
    a = g**-2
    w = np.array([a[t] * a[t + 1 :].sum() for t in range(9)])
    np.testing.assert_allclose(got, w / w.max(), rtol=0, atol=1e-15)


def test_refined_schedule_warms_up_and_anneals() -> None:
    # large early norms -> small early steps (a warm-up); rising late norms -> fast annealing
    t = np.arange(400)
    norms = 1.0 + 9.0 * np.exp(-t / 20.0) + np.where(t > 300, (t - 300) / 50.0, 0.0)
    got = np.array(Refined(grad_norms=norms, smoothing=0.05).multipliers(400, 10))
    peak = int(got.argmax())
    assert got[0] < 0.2 and 20 < peak < 150
    assert got.max() == 1.0 and got[-1] == 0.0
    assert got[350] < Linear().multipliers(400, 10)[350]


def test_refined_from_accepts_sequences_nested_lists_tensors_and_history() -> None:
    flat = [4.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    expected = refined_from(flat).multipliers(6, 3)
    assert refined_from([[4.0, 3.0, 2.0], [2.0, 1.0, 1.0]]).multipliers(6, 3) == expected
    assert refined_from(torch.tensor(flat)).multipliers(6, 3) == expected
    assert refined_from(np.array(flat)).multipliers(6, 3) == expected

    history = History()
    for epoch in ([4.0, 3.0, 2.0], [2.0, 1.0, 1.0]):
        history.new_epoch()
        for norm in epoch:
            history.new_batch()
            history.record_batch("train_loss", 0.5)
            history.record_batch("grad_norm", norm)
        history.new_batch()
        history.record_batch("valid_loss", 0.7)  # a validation batch without a gradient norm
    schedule = refined_from(history, key="grad_norm", method="adam", smoothing=0.2, warmup_steps=1)
    assert list(schedule.grad_norms) == flat
    assert schedule.method == "adam" and schedule.smoothing == 0.2 and schedule.warmup_steps == 1


def test_refined_from_validates_immediately() -> None:
    with pytest.raises(ValueError) as info:
        refined_from([1.0, -1.0])
    assert str(info.value) == (
        "The 'grad_norms' parameter of Refined must be a non-empty 1-D sequence of positive finite floats. "
        "Got [1.0, -1.0] instead."
    )
    with pytest.raises(ValueError, match="'method' parameter of Refined"):
        refined_from([1.0], method="sgdm")
    with pytest.raises(TypeError, match="numbers or"):
        refined_from(["a"])


def test_a_long_bad_sequence_is_described_briefly() -> None:
    with pytest.raises(ValueError) as info:
        Refined(grad_norms=np.zeros((30, 4))).build(10, 1)
    assert str(info.value).endswith("Got <ndarray of length 30> instead.")


def test_gradient_norm() -> None:
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1))
    c = torch.nn.Parameter(torch.zeros(1))  # no gradient: skipped
    a.grad = torch.tensor([3.0, -4.0])
    b.grad = torch.tensor([12.0])
    assert gradient_norm([a, b, c]) == pytest.approx(13.0)
    assert gradient_norm([a, b, c], norm_type=1.0) == pytest.approx(19.0)
    assert gradient_norm([c]) == 0.0
    assert NORM_TYPES == {"sgd": 2.0, "adam": 1.0}
    assert Refined(method="adam").norm_type == 1.0
