"""Training runs for the checkpoint tests, run in fresh processes:

    python -m tests.resume_worker CONFIG crash  DIR STEP   # checkpoints into DIR, dies after STEP
    python -m tests.resume_worker CONFIG resume DIR OUT    # resumes from DIR, saves the end state to OUT
    python -m tests.resume_worker CONFIG run    DIR        # checkpoints into DIR, prints each step (to be killed)
    python -m tests.resume_worker CONFIG slow   DIR STEP   # like run, but the save after STEP is very slow

`run_full(config)` is the same run uninterrupted, for the reference.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn

import learnloop as ll
from learnloop import serialize
from learnloop.layers import cnn

EVERY = 4  # checkpoint every EVERY training steps


def _data(config: str) -> ll.DataLoaders:
    g = torch.Generator().manual_seed(0)
    shape = (1, 8, 8) if config == "cnn" else (8,)
    x, y = torch.randn(190, *shape, generator=g), torch.randint(0, 3, (190,), generator=g)
    workers = 2 if config == "workers" else 0
    return ll.DataLoaders.from_tensors(x[:150], y[:150], x[150:], y[150:], batch_size=16, seed=1, num_workers=workers)


def make(config: str, cbs: list | None = None) -> ll.Learner:
    ll.set_seed(0)
    dls = _data(config)
    extra = list(cbs or [])
    if config == "cnn":
        model = cnn((4, 8), n_out=3, norm="batch")
        return ll.Learner(model, dls, opt_func=torch.optim.AdamW, lr=1e-2, metrics=[ll.accuracy], progress=False, cbs=extra)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    if config == "accum":
        extra.append(ll.GradientAccumulation(3))
    return ll.Learner(model, dls, opt_func=torch.optim.SGD, lr=0.05, metrics=[ll.accuracy], progress=False, cbs=extra)


def fit(learn: ll.Learner, config: str, **kw) -> None:
    if config == "cnn":
        learn.fit_one_cycle(3, lr_max=1e-2, **kw)
    else:
        learn.fit(3, **kw)


def run_full(config: str) -> ll.Learner:
    learn = make(config)
    fit(learn, config)
    return learn


class _DieAfter(ll.Callback):
    order = 200  # after the Checkpoint (100) has saved this step

    def __init__(self, step: int):
        self.step = step

    def after_batch(self, learn: ll.Learner) -> None:
        if learn.training and learn.train_batches_done == self.step:
            os._exit(3)  # as abrupt as a crash: no after_fit, no cleanup


class _Announce(ll.Callback):
    order = 200

    def after_batch(self, learn: ll.Learner) -> None:
        if learn.training:
            print(f"step {learn.train_batches_done}", flush=True)
            time.sleep(0.05)  # time for the test to pick its moment


def _slow_saves_after(step_box: list[int], learn_box: list) -> None:
    fast = serialize.atomic_write

    def slow(path, write):
        learn = learn_box[0]
        if learn.train_batches_done >= step_box[0] and path.name.startswith("ckpt"):
            def dawdle(f):
                write(f)
                f.flush()
                print("writing", flush=True)
                time.sleep(60)  # the test kills us here, with the temporary file half-made

            return fast(path, dawdle)
        return fast(path, write)

    serialize.atomic_write = slow


def main(argv: list[str]) -> int:
    config, mode, folder = argv[0], argv[1], argv[2]
    ckpt = ll.Checkpoint(every_n_steps=EVERY, every_n_epochs=None, dir=folder, keep_last=2)
    learn = make(config, [ckpt])
    if mode == "crash":
        fit(learn, config, cbs=[_DieAfter(int(argv[3]))])
    elif mode == "run":
        fit(learn, config, cbs=[_Announce()])
    elif mode == "slow":
        _slow_saves_after([int(argv[3])], [learn])
        fit(learn, config, cbs=[_Announce()])
    elif mode == "resume":
        fit(learn, config, resume=folder)
        learn.save(argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
