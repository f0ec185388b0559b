"""DataLoader: batches from a dataset in sampler order, resumable mid-epoch, with torch's workers when asked."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator

import torch
import torch.utils.data

from ..utils import apply_to_tensors
from .collate import collate
from .dataset import ArrayDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]


def fetch(dataset: Any, indices: torch.Tensor | list[int], collate_fn: Callable | None = None) -> Any:
    """One batch of `dataset` at `indices`.

    An `ArrayDataset` (with no custom `collate_fn`) answers with one gather per array. Any other
    dataset gets one `__getitems__` call when it has one (PyTorch's convention: it returns a
    list of samples, which is then collated) or one `__getitem__` call per index.
    """
    if collate_fn is None and isinstance(dataset, ArrayDataset):
        return dataset.__getitems__(indices)
    idx = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
    # ArrayDataset's __getitems__ returns a ready batch, which would skip a custom collate_fn.
    getitems = None if isinstance(dataset, ArrayDataset) else getattr(dataset, "__getitems__", None)
    samples = getitems(idx) if getitems is not None else [dataset[i] for i in idx]
    if not isinstance(samples, list):  # a __getitems__ that already returns a batch
        return samples
    return (collate_fn or collate)(samples)


class _BatchFetcher(torch.utils.data.Dataset):
    """Adapter for torch's worker machinery: item `(epoch, seed, indices)` is a whole collated
    batch. The epoch travels with the indices because a worker's copy of the dataset does not
    see the main process's `set_epoch` (persistent workers keep their copy across passes)."""

    def __init__(self, dataset: Any, collate_fn: Callable | None):
        self.dataset, self.collate_fn = dataset, collate_fn
        self._epoch: tuple | None = None

    def __getitem__(self, key: tuple) -> Any:
        epoch, seed, indices = key
        if hasattr(self.dataset, "set_epoch") and self._epoch != (epoch, seed):
            self.dataset.set_epoch(epoch, seed)
            self._epoch = (epoch, seed)
        return fetch(self.dataset, indices, self.collate_fn)


class _PassBatches:
    """The sampler of a persistent torch loader: the batches of the pass about to start."""

    def __init__(self, keys: list) -> None:
        self.keys = keys

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _identity(x: Any) -> Any:
    return x


def _pin(t: torch.Tensor) -> torch.Tensor:
    return t.pin_memory()


class DataLoader:
    """Iterates over `dataset` in batches, in the order its sampler gives.

    Args:
        dataset: an `ArrayDataset` (fastest: one gather per batch), or anything with `__len__`
            and `__getitem__` (torch datasets, dict-returning datasets).
        batch_size: samples per batch.
        shuffle: a new random order each epoch (a `RandomSampler` seeded by `seed`).
        sampler: a custom index sampler (excludes `shuffle`).
        batch_sampler: yields lists or tensors of indices per batch (excludes `batch_size`,
            `shuffle`, `sampler`, `drop_last`).
        collate_fn: turns a list of samples into a batch (default `collate`).
        drop_last: drop the last, short batch.
        num_workers: > 0 loads batches in worker processes with torch.utils.data's machinery;
            batches and their order are the same as with 0.
        persistent_workers: keep the worker processes between passes (saves their start, about
            0.1 s per pass). A dataset that draws from the global RNG in its workers then goes on
            with that stream rather than restarting it from (seed, epoch), so its resumed runs
            are not exact; datasets seeded per item (learnloop's image datasets) are unaffected.
        pin_memory: page-lock batches for faster host-to-GPU copies (only when CUDA is present).
        seed: seed of the shuffling sampler; None draws one from torch's global RNG.

    A dataset may define `set_epoch(epoch, seed)` (called before each pass, e.g. to seed random
    augmentations) and `end_pass()` (called when one ends, e.g. to report skipped items).

    The loader is resumable: `state_dict()` records the epoch, the sampler's seed and the
    position inside the epoch, and after `load_state_dict()` iteration continues with exactly
    the batches the original would have produced next, without replaying earlier ones.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 64,
        shuffle: bool = False,
        sampler: Any = None,
        batch_sampler: Any = None,
        collate_fn: Callable | None = None,
        drop_last: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int | None = None,
        persistent_workers: bool = False,
    ):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__, got {type(dataset).__name__}.")
        if batch_sampler is not None:
            if sampler is not None or shuffle or drop_last:
                raise ValueError("batch_sampler already decides batching: don't also pass sampler, shuffle or drop_last.")
        else:
            if sampler is not None and shuffle:
                raise ValueError("Pass either shuffle=True or a sampler, not both (the sampler decides the order).")
            if sampler is None:
                sampler = RandomSampler(len(dataset), seed=seed) if shuffle else SequentialSampler(len(dataset))
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}.")
        self.dataset, self.batch_sampler, self.collate_fn = dataset, batch_sampler, collate_fn
        self.num_workers, self.pin_memory, self.persistent_workers = num_workers, pin_memory, persistent_workers
        self._workers: tuple | None = None  # (torch loader, _PassBatches) kept alive with persistent_workers
        # Where the next batch comes from: (epoch, batch number inside it).
        self.epoch, self.position = 0, 0
        self._open: object | None = None  # the pass in progress, if any

    @property
    def batch_size(self) -> int | None:
        return getattr(self.batch_sampler, "batch_size", None)

    @property
    def sampler(self) -> Any:
        return getattr(self.batch_sampler, "sampler", None)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    @property
    def mid_pass(self) -> bool:
        """Whether a pass over the data is in progress (a state_dict taken now resumes inside it)."""
        return self._open is not None

    def _batches(self, start: int) -> Iterator[Any]:
        if isinstance(self.batch_sampler, BatchSampler):
            return self.batch_sampler.batches(start)
        return itertools.islice(iter(self.batch_sampler), start, None)

    def __iter__(self) -> Iterator[Any]:
        if self._open is not None:
            self._abandon()  # a new pass while another is still open: that one is over, as with torch
        token = self._open = object()
        epoch, start = self.epoch, self.position
        self._set_epoch(epoch)
        completed = False
        try:
            for i, batch in enumerate(self._fetch_from(start), start + 1):
                if self._open is token:  # a superseded pass no longer moves the loader
                    self.position = i  # the consumer holds batch i-1; the next one is i
                elif self._workers is not None:  # ... and must not take the new pass's batches from shared workers
                    return
                yield batch
            completed = True
        finally:
            if self._open is token:  # this pass still owns the loader's state
                self._open = None
                if completed:
                    self.epoch, self.position = epoch + 1, 0
                    self._end_pass()
                else:
                    self._abandon()

    def _set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):  # datasets with random augmentations: draws per (seed, epoch, item)
            self.dataset.set_epoch(epoch, getattr(self.sampler, "seed", None))

    def _abandon(self) -> None:
        # A pass left mid-epoch (a break, a cancelled training phase) ends that epoch: the next
        # pass starts a fresh one. Only load_state_dict resumes mid-epoch.
        self._open = None
        self.epoch, self.position = self.epoch + 1, 0
        self._end_pass()

    def _end_pass(self) -> None:
        if hasattr(self.dataset, "end_pass"):  # e.g. a report of the images it skipped
            self.dataset.end_pass()

    def _fetch_from(self, start: int) -> Iterator[Any]:
        pin = self.pin_memory and torch.cuda.is_available()
        if self.num_workers == 0:
            if self.collate_fn is None and isinstance(self.dataset, ArrayDataset):
                batches: Iterator[Any] = map(self.dataset.__getitems__, self._batches(start))  # no per-batch frame
            else:
                batches = (fetch(self.dataset, idx, self.collate_fn) for idx in self._batches(start))
            return (apply_to_tensors(_pin, b) for b in batches) if pin else batches
        # Worker seeds come from (sampler seed, epoch, start), not from torch's global RNG, so
        # starting a pass leaves the main process's random stream alone (a resumed run stays exact).
        base = getattr(self.sampler, "seed", None)
        keys = [(self.epoch, base, idx) for idx in self._batches(start)]
        if self._workers is not None:
            self._workers[1].keys = keys
            return iter(self._workers[0])
        seeds = torch.Generator().manual_seed(((base or 0) * 1_000_003 + self.epoch * 10_007 + start) % 2**63)
        sampler = _PassBatches(keys)
        loader = torch.utils.data.DataLoader(
            _BatchFetcher(self.dataset, self.collate_fn),
            sampler=sampler,
            batch_size=None,
            collate_fn=_identity,
            num_workers=self.num_workers,
            pin_memory=pin,
            generator=seeds,
            persistent_workers=self.persistent_workers,
        )
        if self.persistent_workers:
            self._workers = (loader, sampler)
        return iter(loader)

    def one_batch(self) -> Any:
        """The first batch of the current epoch, without moving the loader's position."""
        if len(self) == 0:
            raise ValueError("one_batch: this DataLoader yields no batches (empty dataset, or drop_last with too few items).")
        self._set_epoch(self.epoch)
        idx = next(iter(self._batches(0)))
        return fetch(self.dataset, idx, self.collate_fn)

    def state_dict(self) -> dict:
        """Epoch, position inside it, and the sampler's state (its seed): enough to resume exactly.

        Taken during a pass, it points at the next batch of that pass; taken between passes, at
        the start of the next epoch."""
        state = {"epoch": self.epoch, "position": self.position, "batch_size": self.batch_size}
        if hasattr(self.sampler, "state_dict"):
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Make the next iteration continue at the saved epoch and position."""
        missing = [k for k in ("epoch", "position") if k not in state]
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: the state lacks {missing}; it was not made by DataLoader.state_dict().")
        if state.get("batch_size") not in (None, self.batch_size):
            raise ValueError(
                f"This state was saved by a loader with batch_size={state['batch_size']}, but this one has batch_size={self.batch_size}: "
                "its position would point at other samples. Resume with the same batch size."
            )
        self._open = None  # any pass still open is superseded
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        if "sampler" in state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])

    def __repr__(self) -> str:
        return f"DataLoader({self.dataset!r}, batches={len(self)}, batch_size={self.batch_size})"
