"""Runs for the distributed tests, started by torch.distributed.run with 2 processes on the CPU:

    python -m torch.distributed.run --nproc_per_node 2 -m tests.dist_worker MODE OUT

Each mode trains with the default Learner (which adds DistributedTrainer by itself under
torchrun) and writes what the test compares into OUT: states with `learn.save` / `save_model`,
numbers as JSON, from rank 0 unless said otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

import learnloop as ll
from learnloop.layers import cnn
from learnloop.norm import convert_sync_batchnorm

N_TRAIN = 64 * 50  # 50 global steps of 64 samples


def data(n_train: int = N_TRAIN, n_valid: int = 64, shape=(8,)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_valid, *shape, generator=g)
    y = torch.randint(0, 3, (n_train + n_valid,), generator=g)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def make(kind: str, bs: int, progress: bool = False, **kw) -> ll.Learner:
    ll.set_seed(0)
    shape = (1, 8, 8) if kind == "cnn" else (8,)
    x, y, xv, yv = data(shape=shape, **kw)
    dls = ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=bs, seed=1)
    model = convert_sync_batchnorm(cnn((4, 8), n_out=3, norm="batch")) if kind == "cnn" else nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    sgd = lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)  # noqa: E731
    return ll.Learner(model, dls, opt_func=sgd, lr=0.05, metrics=[ll.accuracy], progress=progress)


class _Fail(ll.Callback):
    def after_batch(self, learn):
        if learn.rank == 1 and learn.train_batches_done == 3:
            raise RuntimeError("rank 1 broke on purpose at step 3")


class _Die(ll.Callback):
    order = 200

    def after_batch(self, learn):
        if learn.training and learn.train_batches_done == 30:
            import os

            os._exit(3)


def main(mode: str, out: Path) -> int:
    if mode in ("mlp", "cnn"):  # 2 processes x batch 32
        learn = make(mode, 32)
        learn.fit(1)
        if learn.is_main:
            ll.save_model(learn.model, out / f"{mode}-2x32.safetensors")
        if mode == "mlp":  # the LR finder judges the loss averaged over both processes
            learn.lr_find(num_it=20, stop_div=False)
            if learn.is_main:
                (out / "lr_find.json").write_text(json.dumps(learn.lr_find_result.losses))
    elif mode == "metrics":  # validation of 10,001 samples: exact, nothing counted twice
        ll.set_seed(0)
        x, y, xv, yv = data(n_train=64, n_valid=10_001)
        learn = ll.Learner(nn.Linear(8, 3), ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=32), metrics=[ll.accuracy], progress=False)
        counted = []

        class Count(ll.Callback):
            def after_loss(self, learn):
                counted.append(len(learn.yb))

        got = learn.validate(cbs=[Count()])
        preds, targets = learn.get_preds()
        (out / f"counted-{learn.rank}.json").write_text(json.dumps(sum(counted)))
        if learn.is_main:
            (out / "metrics.json").write_text(json.dumps(got))
            from learnloop.serialize import write_state
            from learnloop.utils import unwrap_model

            write_state(out / "preds.safetensors", {"preds": preds, "targets": targets, "weight": unwrap_model(learn.model).weight}, "export")
    elif mode == "rank0":  # progress, history and checkpoints from rank 0 only
        learn = make("mlp", 32, progress=True)
        learn.progress_bar.bar = False  # the epoch table alone: one header per printing rank
        learn.fit(2, cbs=[ll.Checkpoint(every_n_epochs=2, dir=out / f"ck-rank{learn.rank}")])
    elif mode == "fail":
        make("mlp", 32).fit(1, cbs=[_Fail()])
    elif mode == "crash":  # dies at step 30 of 50, with checkpoints every 10 steps
        make("mlp", 32).fit(1, cbs=[ll.Checkpoint(every_n_steps=10, every_n_epochs=None, dir=out / "ck"), _Die()])
    elif mode == "resume":
        learn = make("mlp", 32)
        learn.fit(1, cbs=[ll.Checkpoint(every_n_steps=10, every_n_epochs=None, dir=out / "ck")], resume=out / "ck")
        if learn.is_main:
            ll.save_model(learn.model, out / "resumed.safetensors")
    elif mode == "whole":
        learn = make("mlp", 32)
        learn.fit(1)
        if learn.is_main:
            ll.save_model(learn.model, out / "whole.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
