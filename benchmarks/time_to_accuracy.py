"""Wall time to 98% and 99% MNIST validation accuracy with the lesson's best recipe, learnloop
against the same recipe in a hand-written loop.

    python benchmarks/time_to_accuracy.py [--budgets 1,2,3]

Recipe: the CNN [8, 16, 32, 32] with Kaiming-normal init (a=0.1), GeneralRelu(0.1, 0.4, 6) and
batch norm, SGD with momentum, one-cycle (lr_max 0.4, 25% warm-up, momentum 0.95-0.85-0.95),
batch size 128, full MNIST. One-cycle needs its length in advance, so each budget (in epochs) is
a separate run from the same initial weights; validation runs after every epoch, and a target's
time is the training wall time up to the end of the first epoch that reached it. The hand loop
uses torch.optim.lr_scheduler.OneCycleLR with the same settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import learnloop as ll
from learnloop.datasets import mnist_dataloaders
from learnloop.init import init_model, kaiming_normal_
from learnloop.layers import cnn

ROOT = Path(__file__).resolve().parent
LR, BS, TARGETS = 0.4, 128, (0.98, 0.99)


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return init_model(cnn((8, 16, 32, 32), norm="batch", leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)


def run_learnloop(dls: ll.DataLoaders, epochs: int, seed: int) -> list[tuple[float, float]]:
    """[(seconds so far, accuracy)] after each epoch."""
    clock: list[tuple[float, float]] = []

    class Clock(ll.Callback):
        order = 95

        def before_fit(self, learn):
            self.start = time.perf_counter()

        def after_epoch(self, learn):
            clock.append((time.perf_counter() - self.start, learn.recorder.history[-1]["accuracy"]))

    sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)  # noqa: E731
    learn = ll.Learner(make_model(seed), dls, opt_func=sgd, metrics=[ll.accuracy], progress=False)
    learn.fit_one_cycle(epochs, lr_max=LR, cbs=[Clock()])
    return clock


def run_hand(dls: ll.DataLoaders, epochs: int, seed: int) -> list[tuple[float, float]]:
    model = make_model(seed)
    x, y = dls.train.dataset.tensors
    xv, yv = dls.valid.dataset.tensors
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    steps = epochs * ((len(x) + BS - 1) // BS)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=steps, pct_start=0.25, div_factor=25, final_div_factor=1e5 / 25, base_momentum=0.85, max_momentum=0.95
    )
    sampler = ll.RandomSampler(len(x), seed=seed)
    clock = []
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        perm = sampler.indices()
        model.train()
        for i in range(0, len(x), BS):
            idx = perm[i : i + BS]
            loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))
            loss.backward()
            opt.step()
            opt.zero_grad()
            sched.step()
        model.eval()
        correct = torch.zeros(())
        with torch.no_grad():
            for i in range(0, len(xv), 2 * BS):
                correct += (model(xv[i : i + 2 * BS]).argmax(-1) == yv[i : i + 2 * BS]).sum()
        clock.append((time.perf_counter() - start, (correct / len(xv)).item()))
    return clock


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", default="1,2,3", help="one-cycle lengths to try, in epochs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dls = mnist_dataloaders(BS, flatten=False, seed=args.seed)
    if len(dls.train.dataset) < 60000:
        print("note: full MNIST not found; timings on the small sample are not comparable", file=sys.stderr)
    results: dict[str, dict[int, list]] = {"learnloop": {}, "hand": {}}
    for budget in [int(b) for b in args.budgets.split(",")]:
        for name, run in (("hand", run_hand), ("learnloop", run_learnloop)):
            ll.set_seed(args.seed)
            results[name][budget] = run(dls, budget, args.seed)
            print(f"  {name} one-cycle over {budget} epoch(s): " + ", ".join(f"{a:.4f} at {t:.1f}s" for t, a in results[name][budget]), file=sys.stderr)

    lines = [f"| target | {' | '.join(results)} |", "|---|" + "---|" * len(results)]
    summary = {}
    for target in TARGETS:
        cells = []
        for name, runs in results.items():
            hits = [(t, b, a) for b, clock in runs.items() for t, a in clock if a >= target]
            best = min(hits) if hits else None
            summary[f"{name}@{target}"] = best
            cells.append(f"{best[0]:.1f} s (one-cycle over {best[1]} epoch(s), acc {best[2]:.4f})" if best else "not reached")
        lines.append(f"| {target:.0%} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "time_to_accuracy.json").write_text(json.dumps({"runs": {k: {str(b): v for b, v in r.items()} for k, r in results.items()}, "best": summary}, indent=2))
    (out / "time_to_accuracy.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
