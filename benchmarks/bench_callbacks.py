"""What each default callback costs per training batch: in isolation, and inside the loop.

    python benchmarks/bench_callbacks.py          # about two minutes

1. In isolation: a learner frozen mid-batch (MLP 784-50-10, batch size 64, CPU) and each
   per-batch handler of the default callbacks timed alone with timeit (best of 5), plus firing
   an event with no handler.
2. Inside the loop: one epoch of 400 batches (MLP, batch 64, one thread) by bench.py's hand-written
   loop, by the Learner with no callbacks, with all four defaults, and with each default taken
   out in turn; CPU time, median of 24 interleaved rounds, as microseconds per batch over the
   hand loop. The handlers cost several times more here than alone: between them torch's own
   code runs, and the interpreter's code and data no longer sit in the caches.
"""

from __future__ import annotations

import statistics
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
    in_the_loop()
    return 0


def in_the_loop(n: int = 400, rounds: int = 24) -> None:
    # The contenders and the interleaving of benchmarks/bench.py: the same fair hand loop.
    from bench import from_init, hand_loop, interleave, learnloop_loop, make_mlp

    x, y = torch.randn(64 * n, 784), torch.randint(0, 10, (64 * n,))
    data = (x, y, x[:1280], y[:1280])
    torch.manual_seed(0)
    model = make_mlp()  # shared: see bench.from_init

    def sgd(params):
        return torch.optim.SGD(params, lr=0.01)

    def learner(bare: bool = False, without: str | None = None):
        epoch, learn = learnloop_loop(model, sgd, data, 64, 0, bare=bare)
        if not bare:
            learn.progress_bar.table = False  # the bar's work counted, no table printed
        if without:
            learn.remove_cbs([getattr(learn, without)])
        return epoch

    runs = {
        "hand-written loop": hand_loop(model, sgd, data, 64, 0),
        "hand-written loop, again": hand_loop(model, sgd, data, 64, 0),
        "hand-written, checking each loss": hand_loop(model, sgd, data, 64, 0, check_finite=True),
        "Learner, no callbacks": learner(bare=True),
        "Learner, default callbacks": learner(),
    }
    for name in ("device_cb", "non_finite_check", "progress_bar"):
        runs[f"defaults without {name}"] = learner(without=name)
    _, cpu, _ = interleave(from_init(model, runs)[0], rounds, warmup=1)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"\nInside the loop ({n} batches, CPU time, median of {rounds} interleaved rounds)")
    print(f"{'':<40}{'ms':>8}{'us/batch over hand':>20}{'ratio':>8}")
    for k, v in med.items():
        print(f"{k:<40}{v * 1e3:>8.1f}{(v - med['hand-written loop']) / n * 1e6:>20.1f}{v / med['hand-written loop']:>8.3f}")

if __name__ == "__main__":
    sys.exit(main())
