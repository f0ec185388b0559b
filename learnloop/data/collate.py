"""collate: turn a list of samples into one batch by stacking, recursing through containers."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["collate"]


def _stack(items: list[torch.Tensor], where: str) -> torch.Tensor:
    first = items[0].shape
    for i, t in enumerate(items):
        if t.shape != first:
            raise ValueError(
                f"collate: item {i}{where} has shape {tuple(t.shape)} but item 0 has {tuple(first)}; "
                "all items in a batch must have the same shape (pad or resize them in the dataset, "
                "or pass a custom collate_fn)."
            )
    return torch.stack(items)


def collate(batch: Sequence[Any], _where: str = "") -> Any:
    """Stack a list of samples into a batch.

    Tensors and numpy arrays are stacked along a new first dimension, Python numbers become a
    1-d tensor, strings stay a list, and tuples, lists and dicts are collated field by field
    (a batch of `(x, y)` pairs becomes an `(xs, ys)` pair). Mismatched shapes raise a
    `ValueError` naming the first offending item.
    """
    if len(batch) == 0:
        raise ValueError("collate: got an empty batch.")
    elem = batch[0]
    if isinstance(elem, torch.Tensor):
        return _stack(list(batch), _where)
    if isinstance(elem, np.ndarray):
        return _stack([torch.as_tensor(b) for b in batch], _where)
    if isinstance(elem, (bool, np.bool_)):
        return torch.tensor(batch, dtype=torch.bool)
    if isinstance(elem, numbers.Integral):
        return torch.tensor(batch, dtype=torch.int64)
    if isinstance(elem, numbers.Number):
        return torch.tensor(batch, dtype=torch.get_default_dtype())
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        for i, b in enumerate(batch):
            if b.keys() != elem.keys():
                raise ValueError(f"collate: item {i}{_where} has keys {sorted(b)} but item 0 has {sorted(elem)}.")
        return {k: collate([b[k] for b in batch], f"{_where}[{k!r}]") for k in elem}
    if isinstance(elem, Sequence):
        for i, b in enumerate(batch):
            if len(b) != len(elem):
                raise ValueError(f"collate: item {i}{_where} has {len(b)} fields but item 0 has {len(elem)}.")
        fields = [collate([b[j] for b in batch], f"{_where}[{j}]") for j in range(len(elem))]
        if hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(
        f"collate: don't know how to batch items of type {type(elem).__name__}{_where}; "
        "return tensors, numpy arrays, numbers or containers of them, or pass a custom collate_fn."
    )
