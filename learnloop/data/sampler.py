"""Samplers decide which items go in which batch, and in what order.

A sampler yields dataset indices; a `BatchSampler` groups them into batches. Ours hand out
whole index tensors (`indices()`), so a loader can slice batches out of one permutation
instead of building a Python list per batch. Shuffling is a pure function of
(seed, epoch): any epoch can be regenerated, which is what makes loaders resumable in O(1).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

__all__ = ["SequentialSampler", "RandomSampler", "BatchSampler", "random_seed"]


def random_seed() -> int:
    """A seed drawn from torch's global RNG, so `set_seed` makes unseeded samplers repeatable."""
    return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())


def _check_shard(num_replicas: int, rank: int) -> None:
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be >= 1, got {num_replicas}.")
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}.")


class _Sampler:
    """Shared machinery: a full-length order for the epoch, then this rank's shard of it."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0, pad: bool = False):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}.")
        _check_shard(num_replicas, rank)
        self.n, self.num_replicas, self.rank, self.pad = n, num_replicas, rank, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order `indices()` returns (shuffling samplers differ per epoch)."""
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        raise NotImplementedError

    def indices(self) -> torch.Tensor:
        """This rank's indices for the current epoch, as an int64 tensor."""
        order = self._order()
        if self.num_replicas == 1:
            return order
        if self.pad and self.n % self.num_replicas:
            # Training shards must have equal length so ranks stay in lockstep: wrap around.
            total = math.ceil(self.n / self.num_replicas) * self.num_replicas
            order = order.repeat(math.ceil(total / self.n))[:total]
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        if self.num_replicas == 1:
            return self.n
        if self.pad:
            return math.ceil(self.n / self.num_replicas)
        return len(range(self.rank, self.n, self.num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]


class SequentialSampler(_Sampler):
    """Indices 0..n-1 in order. Sharded, it gives every sample to exactly one rank (no padding),
    which is what validation needs so that no sample is counted twice in the metrics."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0, pad: bool = False):
        super().__init__(n, num_replicas, rank, pad)

    def _order(self) -> torch.Tensor:
        return torch.arange(self.n)


class RandomSampler(_Sampler):
    """A fresh permutation of 0..n-1 every epoch, a pure function of (seed, epoch).

    Each epoch's permutation comes from its own `torch.Generator` seeded from `seed` and the
    epoch number, so it does not consume or depend on the global RNG. Sharded across
    `num_replicas` processes (all using the same seed), the shards are disjoint and, padded by
    wrapping around (`pad=True`, the default for training), of equal length.
    """

    def __init__(
        self, n: int, seed: int | None = None, num_replicas: int = 1, rank: int = 0, pad: bool = True
    ):
        super().__init__(n, num_replicas, rank, pad)
        self.seed = random_seed() if seed is None else int(seed)

    def _order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        return torch.randperm(self.n, generator=g)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.seed = state["epoch"], state["seed"]


class BatchSampler:
    """Groups a sampler's indices into batches of `batch_size` (the last one shorter unless
    `drop_last`). Works with any iterable of indices; with our samplers it yields int64 tensor
    slices of one permutation, which costs nothing per batch."""

    def __init__(self, sampler: Sequence[int] | _Sampler, batch_size: int, drop_last: bool = False):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def batches(self, start: int = 0) -> Iterator[torch.Tensor | list[int]]:
        """Batches of the current epoch, beginning with batch number `start` (for resuming)."""
        bs, n_batches = self.batch_size, len(self)
        if isinstance(self.sampler, _Sampler):
            yield from self.sampler.indices().split(bs)[start:n_batches]
            return
        batch: list[int] = []
        skip = start * bs
        for i in self.sampler:
            if skip:
                skip -= 1
                continue
            batch.append(i)
            if len(batch) == bs:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self) -> Iterator[torch.Tensor | list[int]]:
        return self.batches()
