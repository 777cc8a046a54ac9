"""In-memory tensors and the fast batch iterator.

skorch's default ``DataLoader`` collates every batch sample by sample, which makes it about twice as slow as a
hand-written loop on tabular data. Here the whole data set lives in tensors already on the training device, and a
batch is an index slice of them: a view when the order is sequential, one ``index_select`` per tensor when
shuffled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["TensorBatchIterator", "TensorData", "batch_bounds"]


class TensorData(torch.utils.data.Dataset):
    """Features, targets and optional sample weights as tensors of equal length.

    Also a map-style ``torch`` dataset, so a ``DataLoader`` can still be used with it (slowly). ``X`` and
    ``y`` are attributes because skorch's helpers (``skorch.utils.data_from_dataset``) read them.
    """

    def __init__(
        self, X: torch.Tensor, y: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None
    ) -> None:
        n = len(X)
        for name, t in (("y", y), ("sample_weight", sample_weight)):
            if t is not None and len(t) != n:
                raise ValueError(f"{name} has {len(t)} rows but X has {n}.")
        self.X = X
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self) -> int:
        return len(self.X)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """``(X,)``, ``(X, y)`` or ``(X, y, sample_weight)``: what one batch holds."""
        parts = [self.X]
        if self.y is not None:
            parts.append(self.y)
            if self.sample_weight is not None:
                parts.append(self.sample_weight)
        return tuple(parts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = tuple(t[index] for t in self.tensors())
        if self.y is None:  # skorch's iterators expect (X, y) pairs
            return item[0], torch.zeros(())
        return item

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> TensorData:
        """A new ``TensorData`` with the given rows (copied)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=self.X.device)
        pick = lambda t: None if t is None else t.index_select(0, idx)  # noqa: E731
        return TensorData(pick(self.X), pick(self.y), pick(self.sample_weight))  # type: ignore[arg-type]


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` of each batch; a trailing batch of one row joins the previous batch.

    A single-row batch breaks ``BatchNorm1d`` in training and gives a very noisy step; folding it into the
    previous batch keeps every row in every epoch.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
    starts = list(range(0, n, batch_size))
    bounds = [(s, min(s + batch_size, n)) for s in starts]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


class TensorBatchIterator:
    """Iterate over a :class:`TensorData` in batches of tensors already on the device.

    Parameters
    ----------
    dataset:
        The data; anything else is refused (use skorch's ``DataLoader`` as ``iterator_train`` for other
        datasets).
    batch_size:
        Rows per batch (a trailing single row joins the previous batch).
    shuffle:
        Draw a new permutation at every pass (every epoch).
    generator:
        The ``torch.Generator`` the permutations come from (seeded by the estimator's ``random_state``).
    """

    def __init__(
        self,
        dataset: TensorData,
        batch_size: int = 128,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        **ignored: Any,
    ) -> None:
        if not isinstance(dataset, TensorData):
            raise TypeError(
                f"TensorBatchIterator iterates over TensorData; got {type(dataset).__name__}. "
                "Use iterator_train=torch.utils.data.DataLoader for other datasets."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator
        self._bounds = batch_bounds(len(dataset), self.batch_size)

    def __len__(self) -> int:
        return len(self._bounds)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors = self.dataset.tensors()
        if not self.shuffle:
            for start, stop in self._bounds:
                yield tuple(t[start:stop] for t in tensors)
            return
        device = tensors[0].device
        gen_device = self.generator.device if self.generator is not None else torch.device("cpu")
        perm = torch.randperm(len(self.dataset), generator=self.generator, device=gen_device)
        if perm.device != device:
            perm = perm.to(device)
        for start, stop in self._bounds:
            idx = perm[start:stop]
            yield tuple(t.index_select(0, idx) for t in tensors)
