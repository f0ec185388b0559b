"""DistributedTrainer: the same training script on N processes, on torch.distributed."""

from __future__ import annotations

import atexit
import datetime as dt
import sys
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import distributed
from ..data.loader import DataLoader
from ..data.sampler import BatchSampler, RandomSampler, SequentialSampler
from ..events import Callback, CancelFitException
from ..loop import BaseLearner
from ..norm import convert_sync_batchnorm
from ..utils import unwrap_model
from .device import DeviceCallback, move_model
from .training import GradientAccumulation

__all__ = ["DistributedTrainer"]


def _shard(dl: Any, which: str, training: bool) -> None:
    """Give this rank its shard of a learnloop DataLoader: training batches disjoint across ranks
    (and of equal count, padding by wrap-around), validation split exactly (no duplicates)."""
    if not isinstance(dl, DataLoader) or not isinstance(dl.batch_sampler, BatchSampler):
        raise TypeError(f"DistributedTrainer shards learnloop DataLoaders; the {which} loader is a {type(dl).__name__}.")
    bs, old = dl.batch_sampler, dl.batch_sampler.sampler
    if getattr(old, "num_replicas", 1) > 1:
        return  # sharded already (a second fit)
    n, r, w = len(dl.dataset), distributed.rank(), distributed.world_size()
    if isinstance(old, RandomSampler):
        sampler = RandomSampler(n, seed=old.seed, num_replicas=w, rank=r, pad=training)
    elif isinstance(old, SequentialSampler):
        sampler = SequentialSampler(n, num_replicas=w, rank=r, pad=training)
    else:
        raise TypeError(f"DistributedTrainer cannot shard the {which} loader's {type(old).__name__}; use shuffle=True/False or a learnloop sampler.")
    sampler.epoch = old.epoch
    dl.batch_sampler = BatchSampler(sampler, bs.batch_size, bs.drop_last)


class DistributedTrainer(Callback):
    """Runs the fit as one of `WORLD_SIZE` processes started by `torchrun` (or
    `learnloop train --nproc N`): initialises the process group if needed (gloo on the CPU, nccl
    on CUDA, one GPU per local rank), wraps the model in DistributedDataParallel, and shards the
    data: each rank trains on its disjoint share of every epoch's permutation (per-rank batch
    size = the loader's; the global batch is world_size times that) and validates on an exact
    share, and losses and metrics are summed across ranks so every rank reports the whole
    validation set's numbers.

    The Learner adds it by itself when the environment says it was launched as one of several
    processes (WORLD_SIZE > 1). `sync_bn=True` converts BatchNorm layers to `SyncBatchNorm`, so
    statistics cover the global batch; without it each rank normalises with its own batch.
    `timeout` bounds how long a rank waits for the others. When one rank fails, it tears its
    process group down so the others fail at their next collective instead of waiting.
    """

    order = -110  # first of all: the device and the process group exist before anything else runs

    def __init__(self, backend: str | None = None, sync_bn: bool = False, timeout: float = 600.0, find_unused_parameters: bool = False):
        self.backend, self.sync_bn, self.timeout, self.find_unused = backend, sync_bn, timeout, find_unused_parameters
        self._no_sync: Any = None
        self._device: torch.device | None = None  # set once the group, device and shards exist

    def before_fit(self, learn: BaseLearner) -> None:
        device = self._setup(learn)
        if not isinstance(unwrap_model(learn.model, ddp=False), DistributedDataParallel):
            model = unwrap_model(learn.model)
            if self.sync_bn:
                convert_sync_batchnorm(model)
            move_model(model, learn.opt, device)
            ids = [device.index] if device.type == "cuda" else None
            learn.model = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=self.find_unused)
        learn.total_train_batches = max(1, learn.n_epochs * len(learn.dls.train))  # schedules run over this rank's batches

    def before_validate(self, learn: BaseLearner) -> None:
        self._setup(learn)  # validate() / get_preds() outside a fit shard too (no DDP needed without gradients)

    def _setup(self, learn: BaseLearner) -> torch.device:
        """Process group, device and shards, made once, whichever event comes first; the device
        this rank trains on."""
        if self._device is not None:
            return self._device
        if not dist.is_initialized():
            if not distributed.launched():
                raise RuntimeError("DistributedTrainer needs several processes: start the script with torchrun --nproc_per_node N (or learnloop train --nproc N).")
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(distributed.local_rank())
            dist.init_process_group(self.backend or ("nccl" if cuda else "gloo"), timeout=dt.timedelta(seconds=self.timeout))
            atexit.register(_finish)
        device = torch.device("cuda", distributed.local_rank()) if torch.cuda.is_available() else torch.device("cpu")
        for cb in learn.cbs:
            if isinstance(cb, DeviceCallback):
                cb.device = device  # one GPU per local rank
        _shard(learn.dls.train, "training", training=True)
        if learn.dls.valid is not None:
            _shard(learn.dls.valid, "validation", training=False)
        learn.callbacks.refresh()  # rank-0-only callbacks fall silent on the other ranks
        self._device = device
        return device

    def _unwrap(self, learn: BaseLearner) -> None:
        # Drop the DDP wrapper after each fit: its reducer holds the process group, and freeing
        # it only at interpreter exit, after the group is gone, aborts the process in gloo's
        # threads ("terminate called without an active exception").
        if isinstance(learn.model, DistributedDataParallel):
            learn.model = learn.model.module

    def before_backward(self, learn: BaseLearner) -> None:
        # Gradients are all-reduced on the batch that steps, not on the accumulation batches before it.
        for cb in learn.cbs:
            if isinstance(cb, GradientAccumulation) and not cb.will_step():
                self._no_sync = learn.model.no_sync()
                self._no_sync.__enter__()

    def after_backward(self, learn: BaseLearner) -> None:
        if self._no_sync is not None:
            self._no_sync.__exit__(None, None, None)
            self._no_sync = None

    def after_fit(self, learn: BaseLearner) -> None:
        self.after_backward(learn)
        self._unwrap(learn)
        failure = sys.exc_info()[1]
        if failure is not None and not isinstance(failure, CancelFitException):
            _destroy()  # the other ranks see the connection close and stop, rather than wait for the timeout


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _finish() -> None:
    # At a normal exit, wait until every rank is done before tearing down: a rank that leaves
    # first would otherwise close connections the others still use.
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
