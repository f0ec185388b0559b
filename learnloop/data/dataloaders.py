"""DataLoaders: a training and a validation `DataLoader` (the lesson's DataBunch), and the ways to build them."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import torch

from .dataset import ArrayDataset
from .loader import DataLoader

__all__ = ["DataLoaders"]


# Other libraries' names for our arguments, so a script ported from them gets pointed at ours.
_OTHER_NAMES = {"bs": "batch_size", "val_bs": "valid_batch_size", "valid_bs": "valid_batch_size", "workers": "num_workers"}
_SET_BY_DATALOADERS = ("shuffle", "sampler", "batch_sampler")  # the pair's own choice: shuffled train, ordered valid


def _check_loader_kwargs(kwargs: dict[str, Any]) -> None:
    fixed = ("dataset", "batch_size", *_SET_BY_DATALOADERS)
    known = ["batch_size", "valid_batch_size", *(n for n in inspect.signature(DataLoader).parameters if n not in fixed)]
    for name in kwargs:
        if name in _SET_BY_DATALOADERS:
            raise TypeError(
                f"DataLoaders.from_datasets/from_tensors choose {name!r} themselves (a shuffled training loader, an ordered "
                "validation loader); for another order build each loader yourself: DataLoaders(DataLoader(...), DataLoader(...))."
            )
        if name not in known:
            close = [_OTHER_NAMES[name]] if name in _OTHER_NAMES else difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"DataLoaders got an unknown argument {name!r}.{hint} Its arguments: {', '.join(known)}.")


class DataLoaders:
    """A training and a validation `DataLoader` (the lesson's DataBunch)."""

    def __init__(self, train: DataLoader, valid: DataLoader | None = None, meta: dict | None = None):
        self.train, self.valid = train, valid
        # What the data is and how it was prepared (dataset, normalisation, input shape, class
        # names), as plain JSON-able values: run folders and `Learner.export` keep it.
        self.meta: dict = dict(meta or {})

    def one_batch(self) -> Any:
        """The first training batch, for a look at shapes and values."""
        return self.train.one_batch()

    @classmethod
    def from_datasets(
        cls,
        train_ds: Any,
        valid_ds: Any = None,
        batch_size: int = 64,
        valid_batch_size: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> "DataLoaders":
        """Shuffled training loader and ordered validation loader (twice the batch size by default).
        Other keyword arguments (`num_workers`, `collate_fn`, ...) go to both `DataLoader`s."""
        _check_loader_kwargs(kwargs)
        train = DataLoader(train_ds, batch_size, shuffle=True, seed=seed, **kwargs)
        valid = None
        if valid_ds is not None:
            valid = DataLoader(valid_ds, valid_batch_size or 2 * batch_size, shuffle=False, **kwargs)
        return cls(train, valid)

    @classmethod
    def from_tensors(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_valid: torch.Tensor | None = None,
        y_valid: torch.Tensor | None = None,
        batch_size: int = 64,
        valid_batch_size: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> "DataLoaders":
        """Loaders over in-memory tensors: the fast path for data that fits in memory."""
        if (x_valid is None) != (y_valid is None):
            raise ValueError("Give both x_valid and y_valid, or neither.")
        valid = ArrayDataset(x_valid, y_valid) if x_valid is not None else None
        return cls.from_datasets(ArrayDataset(x_train, y_train), valid, batch_size, valid_batch_size, seed, **kwargs)

    def state_dict(self) -> dict:
        return {"train": self.train.state_dict(), "valid": self.valid.state_dict() if self.valid else None}

    def load_state_dict(self, state: dict) -> None:
        self.train.load_state_dict(state["train"])
        if self.valid is not None and state.get("valid") is not None:
            self.valid.load_state_dict(state["valid"])

    def __repr__(self) -> str:
        return f"DataLoaders(train={self.train!r}, valid={self.valid!r})"
