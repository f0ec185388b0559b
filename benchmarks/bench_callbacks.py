"""What each default callback costs per training batch, timed handler by handler.

    python benchmarks/bench_callbacks.py

Sets up a learner mid-batch (MLP 784-50-10, batch size 64, CPU) and times each per-batch
handler of the default callbacks, plus firing an event with no handler, with timeit (best of 5).
This is the profile behind the Learner's overhead over a hand-written loop: the sum is the
framework's per-batch cost, to compare with the batch's own compute.
"""

from __future__ import annotations

import sys
import timeit

import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll


def main() -> int:
    torch.set_num_threads(1)
    x, y = torch.randn(640, 784), torch.randint(0, 10, (640,))
    dls = ll.DataLoaders.from_tensors(x, y, x, y, batch_size=64)
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    learn = ll.Learner(model, dls, metrics=[ll.accuracy], progress=True)
    learn.progress_bar.table = False
    learn.fit(1)
    # A learner frozen in the middle of a training batch.
    learn.training, learn.dl = True, dls.train
    learn.xb, learn.yb = x[:64], y[:64]
    learn.pred = model(learn.xb)
    learn.loss = F.cross_entropy(learn.pred, learn.yb)
    for cb in (learn.recorder, learn.non_finite_check, learn.progress_bar):
        cb.before_train(learn)
    opt = learn.opt

    def step() -> None:
        loss = F.cross_entropy(model(learn.xb), learn.yb)
        loss.backward()
        opt.step()
        opt.zero_grad()

    n = 5000
    rows = [
        ("DeviceCallback.before_batch", lambda: learn.device_cb.before_batch(learn)),
        ("Recorder.after_loss", lambda: learn.recorder.after_loss(learn)),
        ("NonFiniteCheck.after_loss", lambda: learn.non_finite_check.after_loss(learn)),
        ("ProgressBar.after_batch", lambda: learn.progress_bar.after_batch(learn)),
        ("an event with no handler", lambda: learn("before_step")),
        ("split_batch", lambda: learn.split_batch((learn.xb, learn.yb))),
    ]
    print(f"{'per-batch piece':<30}{'us':>8}")
    total = 0.0
    for name, f in rows:
        us = min(timeit.repeat(f, number=n, repeat=5)) / n * 1e6
        total += us * (6 if name.startswith("an event") else 1)  # six handler-less events a batch
        print(f"{name:<30}{us:>8.2f}")
    compute = min(timeit.repeat(step, number=200, repeat=5)) / 200 * 1e6
    print(f"{'framework total (estimate)':<30}{total:>8.2f}")
    print(f"{'the batch itself (fwd+bwd+step)':<30}{compute:>8.1f}")
    print(f"framework share: {100 * total / compute:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
