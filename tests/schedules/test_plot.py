"""The plot helper writes a real, non-empty PNG; a missing matplotlib gives a clear ImportError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skopt_nn import schedules

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", schedules.available())
def test_plot_writes_a_png(name: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / f"{name}.png"
    fig = schedules.plot(name, path, max_epochs=6, steps_per_epoch=10, **schedules.get(name).sample_params)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000
    assert fig.axes and fig.axes[0].lines


def test_plot_with_params_lr_and_given_axes(tmp_path: Path) -> None:
    matplotlib_figure = pytest.importorskip("matplotlib.figure")
    fig = matplotlib_figure.Figure()
    ax = fig.add_subplot()
    out = schedules.plot(schedules.SGDR(T_0=1), ax=ax, lr=0.1, max_epochs=7, steps_per_epoch=5, T_mult=2)
    assert out is fig
    ydata = ax.lines[0].get_ydata()
    assert max(ydata) == pytest.approx(0.1) and len(ydata) == 35
    assert len(ax.lines) == 1 + 2  # the schedule and the restarts at epochs 1 and 3
    assert ax.get_ylabel() == "learning rate"


def test_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError) as info:
        schedules.plot("cosine")
    assert str(info.value) == (
        "skopt_nn.schedules.plot needs matplotlib: pip install 'skopt-nn[viz]' (or pip install matplotlib)."
    )
