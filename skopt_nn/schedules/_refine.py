r"""Schedule refinement: a schedule for the next run built from the gradient norms of a previous run.

Defazio, Cutkosky, Mehta & Mishchenko, "When, Why and How Much? Adaptive Learning Rate Scheduling by
Refinement", 2023, arXiv:2310.07831. For the last iterate of SGD-type methods, the step sizes minimising
their bound given the gradient norms :math:`G_1, \dots, G_T` of a run are

.. math:: w_t \propto G_t^{-2} \sum_{p=t+1}^{T} G_p^{-2},

and for coordinate-wise (Adam-type) methods the same form with the :math:`\ell_1` norms to the power
:math:`-1`: :math:`w_t \propto \|g_t\|_1^{-1} \sum_{p > t} \|g_p\|_1^{-1}` (the paper's Adam variant; the
authors' scripts apply it to their ``norm_sequences_l1`` runs). The observed norms are noisy, so the paper first
smooths them with a median filter whose width is a fraction :math:`\tau` of the run, and then normalises the
schedule to peak 1. With constant gradient norms, :math:`w_t \propto T - t`: linear decay (their worst-case
result). This module re-implements the equations (the authors' code is CC-BY-NC and is not used).

How we apply it to a new run of ``T'`` steps:

1. median-filter the recorded sequence (length ``n``) with the odd width
   ``k = 2 * floor(floor(smoothing * n) / 2) + 1``; the left edge is padded with the first value, the right edge
   is mirrored (numpy ``reflect``), as the authors describe, so the end of training is not biased;
2. resample the filtered norms to ``T'`` points by linear interpolation on the normalised time
   ``t / (T' - 1)`` (the authors interpolate the same way); a run of another length gets the same shape;
3. compute :math:`w_t` with power 2 (``method="sgd"``) or 1 (``method="adam"``), divide by its maximum.

The last step's weight is 0 (the sum over :math:`p > T` is empty), as in the paper; a constant sequence gives
exactly ``1 - t/(T' - 1)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from skopt_nn._space import Dimension, Float
from skopt_nn._validation import Interval, check_float, check_option, invalid_param_message
from skopt_nn.schedules._functions import StepFunction, Table
from skopt_nn.schedules._registry import ErrorInput, ScheduleSpec, register
from skopt_nn.schedules._schedules import Schedule, warmup_error_inputs

__all__ = [
    "NORM_TYPES",
    "Refined",
    "gradient_norm",
    "median_filter",
    "refined_from",
    "refined_multipliers",
]

NORM_TYPES: dict[str, float] = {"sgd": 2.0, "adam": 1.0}
"""Which gradient norm each refinement method expects to be recorded: the l2 norm for SGD-type optimizers,
the l1 norm for Adam-type (coordinate-wise) ones."""

_GRAD_NORMS = "a non-empty 1-D sequence of positive finite floats"


class _Described:
    """Shows a long sequence briefly in an error message."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _as_norms(value: Any) -> np.ndarray | None:
    """``value`` as a float64 vector, or ``None`` when it is not a non-empty 1-D numeric sequence."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.ndim != 1 or array.size == 0:
        return None
    return array


def _shown(value: Any) -> Any:
    """``value`` as an error message shows it: short sequences in full (arrays as lists), long ones described."""
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)) and len(value) > 6:
        return _Described(f"<{type(value).__name__} of length {len(value)}>")
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    return value


def check_grad_norms(value: Any, owner: str = "Refined") -> np.ndarray:
    """Validate the recorded gradient norms and return them as a float64 vector."""
    array = _as_norms(value)
    if array is None:
        raise ValueError(invalid_param_message("grad_norms", owner, _GRAD_NORMS, _shown(value)))
    bad = int(np.count_nonzero(~np.isfinite(array) | (array <= 0)))
    if bad:
        shown = (
            _shown(value) if array.size <= 6 else _Described(f"<{array.size} values, {bad} not positive and finite>")
        )
        raise ValueError(invalid_param_message("grad_norms", owner, _GRAD_NORMS, shown))
    return array


def filter_width(length: int, smoothing: float) -> int:
    """Odd median-filter width for a sequence of ``length`` values: ``2 * floor(floor(smoothing * length)/2) + 1``."""
    return 2 * (int(math.floor(smoothing * length)) // 2) + 1


def median_filter(values: Sequence[float] | np.ndarray, width: int) -> np.ndarray:
    """Running median of odd ``width``; the start is padded with the first value, the end mirrored."""
    array = np.asarray(values, dtype=np.float64)
    if width % 2 != 1 or width < 1:
        raise ValueError(f"The median filter width must be a positive odd int; got {width}.")
    half = width // 2
    if half == 0:
        return array.copy()
    from scipy.ndimage import median_filter as _scipy_median_filter

    padded = np.pad(array, (half, 0), mode="edge")
    padded = np.pad(padded, (0, half), mode="reflect")
    return np.asarray(_scipy_median_filter(padded, size=width, mode="nearest")[half : half + array.size])


def _resample(values: np.ndarray, length: int) -> np.ndarray:
    if values.size == length:
        return values
    if values.size == 1:
        return np.full(length, values[0])
    return np.interp(np.linspace(0.0, 1.0, length), np.linspace(0.0, 1.0, values.size), values)


def refined_multipliers(
    grad_norms: Sequence[float] | np.ndarray,
    total_steps: int,
    *,
    method: str = "sgd",
    smoothing: float = 0.1,
) -> np.ndarray:
    r"""The refined schedule for a run of ``total_steps`` steps, normalised to peak 1 (see the module docstring).

    .. math:: w_t = \hat G_t^{-q} \sum_{p=t+1}^{T-1} \hat G_p^{-q}, \qquad q = 2 \;(\text{sgd}),\; 1 \;(\text{adam})
    """
    norms = check_grad_norms(grad_norms)
    smoothed = median_filter(norms, filter_width(norms.size, smoothing))
    # w is normalised to peak 1, so the norms' scale cancels: relative to the smallest, G^-q stays in (0, 1] and
    # cannot overflow (tiny recorded norms such as 1e-300 would otherwise give inf / inf = NaN multipliers)
    with np.errstate(over="ignore"):  # norms spanning > 1e308: the largest become inf, their weights 0
        g = _resample(smoothed / smoothed.min(), total_steps)
        a = g ** (-2.0 if method == "sgd" else -1.0)
    after = np.concatenate([np.cumsum(a[::-1])[::-1][1:], [0.0]])  # sum over p > t
    w = a * after
    peak = float(w.max())
    if peak <= 0.0:  # a one-step run
        return np.ones(total_steps)
    return w / peak


class Refined(Schedule):
    r"""The schedule refined from a previous run's per-step gradient norms (normalised to peak 1).

    .. math:: w_t \propto \hat G_t^{-2} \sum_{p > t} \hat G_p^{-2}
              \quad (\texttt{method="sgd"},\ \ell_2 \text{ norms}),
              \qquad w_t \propto \hat G_t^{-1} \sum_{p > t} \hat G_p^{-1}
              \quad (\texttt{method="adam"},\ \ell_1 \text{ norms})

    with :math:`\hat G` the median-filtered norms, resampled to this run's length. Refined schedules show a
    warm-up and a fast final annealing by themselves; constant norms give linear decay. Defazio, Cutkosky,
    Mehta & Mishchenko, "When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement", 2023,
    arXiv:2310.07831 (Algorithm "schedule refinement"). Build it with :func:`refined_from`.

    Parameters
    ----------
    grad_norms:
        One norm per optimizer step of the previous run: the l2 norm of the whole gradient for
        ``method="sgd"``, the l1 norm for ``method="adam"`` (see :func:`gradient_norm`). Required.
    smoothing:
        Median-filter width as a fraction of the recorded run, in [0, 1) (the paper's :math:`\tau`; 0: no
        filtering).
    method:
        ``"sgd"`` (SGD, SGD with momentum and other non-coordinate-wise methods) or ``"adam"`` (Adam-type).
    warmup_steps, warmup_fraction:
        Optional extra linear warm-up (see :class:`Schedule`); it ramps to the refined schedule's first value.
    """

    def __init__(
        self,
        *,
        grad_norms: Sequence[float] | np.ndarray | None = None,
        smoothing: float = 0.1,
        method: str = "sgd",
        warmup_steps: int = 0,
        warmup_fraction: float = 0.0,
    ) -> None:
        self.grad_norms = grad_norms
        self.smoothing = smoothing
        self.method = method
        super().__init__(warmup_steps=warmup_steps, warmup_fraction=warmup_fraction)

    def _check_params(self) -> None:
        check_grad_norms(self.grad_norms, self._owner)
        check_float(self.smoothing, "smoothing", self._owner, Interval(0.0, 1.0, "left"))
        check_option(self.method, "method", self._owner, tuple(NORM_TYPES))

    @property
    def norm_type(self) -> float:
        """The norm the recorded ``grad_norms`` must be: 2.0 for ``method="sgd"``, 1.0 for ``"adam"``."""
        return NORM_TYPES[self.method]

    def _body(self, total_steps: int, steps_per_epoch: int) -> StepFunction:
        return Table.of(
            refined_multipliers(
                check_grad_norms(self.grad_norms), total_steps, method=self.method, smoothing=float(self.smoothing)
            ).tolist()
        )


def _flatten(value: Any) -> list[float]:
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.detach().cpu().reshape(-1).tolist()]
    if isinstance(value, np.ndarray):
        return [float(v) for v in value.reshape(-1)]
    if isinstance(value, numbers.Real):
        return [float(value)]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        flat: list[float] = []
        for item in value:
            flat.extend(_flatten(item))
        return flat
    raise TypeError(f"Gradient norms must be numbers or (nested) sequences of numbers; got {value!r}.")


def refined_from(
    source: Any,
    *,
    key: str | None = None,
    method: str = "sgd",
    smoothing: float = 0.1,
    warmup_steps: int = 0,
    warmup_fraction: float = 0.0,
) -> Refined:
    """A validated :class:`Refined` schedule from the gradient norms of a previous run.

    Parameters
    ----------
    source:
        The per-step gradient norms: a 1-D sequence, array or tensor; a nested sequence (one list of per-batch
        norms per epoch, flattened in order); or, with ``key``, a skorch ``History``.
    key:
        Read ``source[:, "batches", :, key]`` (skorch's per-batch history; batches without the key, such as
        validation batches, are skipped by skorch).
    method:
        ``"sgd"`` if the norms are l2 norms of an SGD-type run, ``"adam"`` if they are l1 norms of an Adam-type
        run (:data:`NORM_TYPES`).
    smoothing, warmup_steps, warmup_fraction:
        As in :class:`Refined`.

    >>> sched = refined_from([1.0] * 5)
    >>> [round(m, 2) for m in sched.multipliers(total_steps=5, steps_per_epoch=5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if key is not None:
        if not hasattr(source, "to_list"):  # skorch's History (a list subclass with this method)
            raise TypeError(
                f"refined_from(key={key!r}) reads a skorch History (e.g. net.history_); got {type(source).__name__}. "
                "Pass the norms themselves without key."
            )
        try:
            values = source[:, "batches", :, key]
        except KeyError:
            raise ValueError(
                f"The history has no per-batch {key!r} values: record them during the first fit with "
                f"callbacks=[GradientNormLogger(norm_type={NORM_TYPES.get(method, 2.0)})] (key 'grad_norm')."
            ) from None
    else:
        values = source
    norms = np.asarray(_flatten(values), dtype=np.float64)
    schedule = Refined(
        grad_norms=norms,
        smoothing=smoothing,
        method=method,
        warmup_steps=warmup_steps,
        warmup_fraction=warmup_fraction,
    )
    schedule.check_params()
    return schedule


def gradient_norm(parameters: Iterable[torch.Tensor], norm_type: float = 2.0) -> float:
    """The ``norm_type`` norm of all gradients together (parameters without ``.grad`` are skipped); 0 if none.

    Record ``gradient_norm(module.parameters(), Refined(method=...).norm_type)`` after ``backward()`` and before
    ``optimizer.step()``, once per step, to refine the next run.
    """
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or not norm_type > 0:
        expected = "a float in the range (0.0, inf]"
        raise ValueError(invalid_param_message("norm_type", "gradient_norm", expected, norm_type))
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    per_tensor = torch.stack([torch.linalg.vector_norm(g.float(), ord=norm_type) for g in grads])
    return float(torch.linalg.vector_norm(per_tensor, ord=norm_type))


def _refined_space() -> Mapping[str, Dimension]:
    return {"schedule__smoothing": Float(0.0, 0.3)}


register(
    ScheduleSpec(
        name="refined",
        factory=Refined,
        paper="Defazio, Cutkosky, Mehta & Mishchenko, When, Why and How Much? Adaptive Learning Rate Scheduling by "
        "Refinement, 2023 (arXiv:2310.07831)",
        url="https://arxiv.org/abs/2310.07831",
        summary="Schedule refined from a previous run's gradient norms: w_t ~ G_t^-2 * sum_{p>t} G_p^-2.",
        needs_grad_norms=True,
        search_space=_refined_space,
        sample_params={
            # a typical shape: large norms early, then a slow rise (the refined schedule warms up and anneals)
            "grad_norms": tuple(1.0 + 4.0 * math.exp(-t / 4.0) + 0.02 * t for t in range(60)),
            "smoothing": 0.1,
        },
        error_inputs=(
            ErrorInput({}, ValueError, invalid_param_message("grad_norms", "Refined", _GRAD_NORMS, None)),
            ErrorInput(
                {"grad_norms": [1.0, 0.0, 2.0]},
                ValueError,
                invalid_param_message("grad_norms", "Refined", _GRAD_NORMS, [1.0, 0.0, 2.0]),
            ),
            ErrorInput(
                {"grad_norms": [1.0] * 10 + [float("nan")]},
                ValueError,
                "The 'grad_norms' parameter of Refined must be a non-empty 1-D sequence of positive finite floats. "
                "Got <11 values, 1 not positive and finite> instead.",
            ),
            ErrorInput(
                {"grad_norms": [[1.0, 2.0], [3.0, 4.0]]},
                ValueError,
                invalid_param_message("grad_norms", "Refined", _GRAD_NORMS, [[1.0, 2.0], [3.0, 4.0]]),
            ),
            ErrorInput(
                {"grad_norms": [1.0], "smoothing": 1.0},
                ValueError,
                invalid_param_message("smoothing", "Refined", "a float in the range [0.0, 1.0)", 1.0),
            ),
            ErrorInput(
                {"grad_norms": [1.0], "method": "lbfgs"},
                ValueError,
                invalid_param_message("method", "Refined", "one of {'sgd', 'adam'}", "lbfgs"),
            ),
            *(
                ErrorInput({"grad_norms": [1.0], **e.params}, e.error, e.message)
                for e in warmup_error_inputs("Refined")
            ),
        ),
    )
)
