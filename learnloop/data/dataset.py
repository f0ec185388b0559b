"""Datasets: anything with `__len__` and `__getitem__`; `ArrayDataset` adds a batched fast path."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["ArrayDataset"]


class ArrayDataset:
    """Equal-length tensors (or numpy arrays) indexed together along their first dimension.

    `ds[i]` gives one sample `(x[i], y[i], ...)`; `ds.__getitems__(indices)` gives a whole batch
    with one indexing operation per array, which is what makes the `DataLoader` fast on
    in-memory data: no per-item calls and no stacking. (It returns a collated tuple, not
    torch's list of samples: with `torch.utils.data.DataLoader` pass `collate_fn=lambda b: b`.)
    """

    def __init__(self, *arrays: torch.Tensor | np.ndarray):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array, e.g. ArrayDataset(x, y).")
        tensors = tuple(torch.as_tensor(a) for a in arrays)
        lengths = [len(t) if t.ndim else None for t in tensors]
        if None in lengths:
            raise ValueError("ArrayDataset: 0-d arrays have no first dimension to index.")
        if len(set(lengths)) > 1:
            raise ValueError(f"ArrayDataset: arrays must have the same length, got lengths {lengths}.")
        self.tensors = tensors
        self._on_cpu = all(t.device.type == "cpu" for t in tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, ...]:
        """A whole batch at once: `indices` is an int64 tensor or a list of ints."""
        if not isinstance(indices, torch.Tensor):
            indices = torch.as_tensor(indices, dtype=torch.int64)
        # index_select is markedly faster than t[indices] (advanced indexing) on the CPU.
        if self._on_cpu and indices.device.type == "cpu":
            return tuple(t.index_select(0, indices) for t in self.tensors)
        # Tensors kept on a GPU are gathered there, with the indices sent over once.
        idx = {indices.device: indices}
        out = []
        for t in self.tensors:
            if t.device not in idx:
                idx[t.device] = indices.to(t.device, non_blocking=True)
            out.append(t.index_select(0, idx[t.device]))
        return tuple(out)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for t in self.tensors)
        return f"ArrayDataset({shapes})"

