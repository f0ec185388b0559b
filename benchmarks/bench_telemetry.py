"""Overhead of ActivationStats(every=10) on the MNIST CNN: one epoch with and without, interleaved.

    python benchmarks/bench_telemetry.py [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import learnloop as ll
from learnloop.datasets import mnist_dataloaders
from learnloop.init import init_model, kaiming_normal_
from learnloop.layers import cnn


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--every", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    dls = mnist_dataloaders(64, flatten=False, seed=0)
    learners = {}
    for name in ("plain", "telemetry"):
        torch.manual_seed(0)
        model = init_model(cnn((8, 16, 32, 32), norm=None, leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)
        sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)  # noqa: E731
        cbs = [ll.ActivationStats(every=args.every)] if name == "telemetry" else []
        learners[name] = ll.Learner(model, dls, opt_func=sgd, lr=0.05, metrics=[ll.accuracy], cbs=cbs, progress=False)
    times: dict[str, list[float]] = {k: [] for k in learners}
    for r in range(args.reps + 1):
        for name in (list(learners) if r % 2 else list(learners)[::-1]):
            t0 = time.perf_counter()
            learners[name].fit(1)
            if r:
                times[name].append(time.perf_counter() - t0)
    plain, telem = statistics.median(times["plain"]), statistics.median(times["telemetry"])
    n = len(learners["telemetry"].activation_stats.steps)
    print(f"CNN [8,16,32,32] on MNIST, batch size 64, one thread, {args.reps} epochs each, medians")
    print(f"without telemetry: {plain:.3f} s/epoch; with ActivationStats(every={args.every}): {telem:.3f} s/epoch")
    print(f"overhead: {100 * (telem / plain - 1):+.1f}% (target: at most +10%); {n} steps recorded in the last epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
