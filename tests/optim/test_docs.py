"""docs/optimizers.md documents every registered optimizer."""

from __future__ import annotations

from pathlib import Path

import skopt_nn.optim as optim

DOC = Path(__file__).resolve().parents[2] / "docs" / "optimizers.md"


def test_every_registered_name_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in optim.available() if f"| `{name}` |" not in text]
    assert not missing, f"add these to docs/optimizers.md: {missing}"
