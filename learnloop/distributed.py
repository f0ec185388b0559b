"""torch.distributed, as learnloop uses it: who am I, sums across ranks, gathering in dataset
order. (`SyncBatchNorm`, for statistics over the global batch, lives in `learnloop.norm`.)

torch.distributed is the engine (process groups, DistributedDataParallel, `torchrun`); this
module holds the few functions the Learner, the Recorder and `DistributedTrainer` share.
Outside a distributed run every function is a cheap no-op: rank 0 of a world of 1.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["launched", "rank", "local_rank", "world_size", "is_main", "all_reduce_sum", "gather_shards"]


def launched() -> bool:
    """Whether this process was started as one of several (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank among all processes (0 when not distributed)."""
    return dist.get_rank() if _active() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its machine (LOCAL_RANK, set by torchrun; 0 otherwise): which GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if _active() else int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0: the process that prints, plots and writes files."""
    return rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over all ranks (in one collective), or `t` itself in a single process."""
    if _active() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def gather_shards(t: torch.Tensor) -> torch.Tensor:
    """Rows from every rank back in dataset order, on every rank: rank r holds rows r, r + W,
    r + 2W, ... (a sharded SequentialSampler without padding, so shards differ by one row at
    most); the result interleaves them."""
    if not (_active() and dist.get_world_size() > 1):
        return t
    w = dist.get_world_size()
    sizes = [torch.zeros((), dtype=torch.long, device=t.device) for _ in range(w)]
    dist.all_gather(sizes, torch.tensor(len(t), device=t.device))
    longest = int(max(sizes))
    padded = torch.cat([t, t.new_zeros((longest - len(t), *t.shape[1:]))]) if len(t) < longest else t
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded.contiguous())
    out = t.new_empty((int(sum(sizes)), *t.shape[1:]))
    for r, (part, n) in enumerate(zip(parts, sizes)):
        out[r::w] = part[: int(n)]
    return out
