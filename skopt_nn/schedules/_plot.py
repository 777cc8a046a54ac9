"""Plot a schedule (matplotlib, from the optional ``viz`` extra, is imported only here, when called)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from skopt_nn.schedules._registry import create
from skopt_nn.schedules._schedules import SGDR, Schedule

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot"]


def _import_figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "skopt_nn.schedules.plot needs matplotlib: pip install 'skopt-nn[viz]' (or pip install matplotlib)."
        ) from exc
    return Figure


def plot(
    schedule: str | Schedule = "cosine",
    path: str | os.PathLike[str] | None = None,
    *,
    max_epochs: int = 20,
    steps_per_epoch: int = 50,
    lr: float = 1.0,
    ax: Axes | None = None,
    **params: Any,
) -> Figure:
    """Draw the learning rate at every optimizer step of a run; save it as an image when ``path`` is given.

    Parameters
    ----------
    schedule:
        A registered name (``"sgdr"``) or a schedule object; ``params`` are applied to a copy
        (``plot("sgdr", T_0=2, T_mult=2)``).
    path:
        File to write (the format follows the extension, e.g. ``.png``); ``None``: only return the figure.
    max_epochs, steps_per_epoch:
        The run: ``max_epochs * steps_per_epoch`` optimizer steps.
    lr:
        The optimizer's (peak) lr; the default 1.0 draws the multipliers.
    ax:
        Draw into these axes instead of a new figure.

    Returns the matplotlib ``Figure``. Epoch boundaries are on the top axis; SGDR restarts are marked.
    """
    figure_class = _import_figure()
    obj = create(schedule, **params)
    total = max_epochs * steps_per_epoch
    values = [lr * m for m in obj.multipliers(total, steps_per_epoch)]

    if ax is None:
        fig = figure_class(figsize=(6.0, 3.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.plot(range(total), values, color="tab:blue", linewidth=1.5)
    if isinstance(obj, SGDR):
        from skopt_nn.schedules._functions import sgdr_restart_steps

        warmup = obj.warmup_length(total)
        for step in sgdr_restart_steps(
            total - warmup, steps_per_epoch=steps_per_epoch, T_0=int(obj.T_0), T_mult=float(obj.T_mult)
        ):
            ax.axvline(warmup + step, color="tab:red", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, max(total - 1, 1))
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("optimizer step (batch)")
    ax.set_ylabel("learning rate" if lr != 1.0 else "lr multiplier")
    ax.set_title(repr(obj), fontsize=9)
    ax.grid(True, linewidth=0.3, alpha=0.6)

    def to_epochs(steps: Any) -> Any:
        return steps / steps_per_epoch

    def to_steps(epochs: Any) -> Any:
        return epochs * steps_per_epoch

    top = ax.secondary_xaxis("top", functions=(to_epochs, to_steps))
    top.set_xlabel("epoch")
    if path is not None:
        fig.savefig(os.fspath(path), dpi=110)
    return fig
