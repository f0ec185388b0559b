"""What each default callback's handlers cost where they run: inside the loop, between torch's kernels.

    python benchmarks/bench_handlers.py               # about 10 seconds

Timed alone in a tight loop, a handler runs with its code and data in the CPU's caches; in the
loop, the matrix products before it have pushed them out, and the same call takes several
times longer (reading a loss back: 0.24 us in a tight loop, 2-3 us in place). Here every
handler of the Learner's default callbacks is wrapped in a timer and the learner trains
bench.py's MLP at batch 64 (one thread, real MNIST when present); a do-nothing handler on
`after_batch`, wrapped the same way, prices the timer itself. The fastest of `--epochs`
epochs is reported, per handler, in microseconds per call and milliseconds per epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any, Callable

import torch
from bench import WORKLOADS, contender_loop, load_data

from learnloop.events import BATCH_EVENTS

CONTROL = ("(timer alone)", "after_batch")
CONTROL_KEY = "(timer alone).after_batch (train)"


def timed_handlers(learn: Any) -> tuple[Counter, Counter]:
    """Wrap each handler of `learn`'s callbacks (and a do-nothing control) in a timer; returns
    the (nanoseconds, calls) counters they add to."""
    ns, calls = Counter(), Counter()
    clock = time.perf_counter_ns

    def wrap(name: str, event: str, handler: Callable) -> Callable:
        keys = {True: f"{name}.{event}", False: f"{name}.{event}"}
        if event in BATCH_EVENTS:  # a batch handler's cost differs between the two phases
            keys = {True: f"{name}.{event} (train)", False: f"{name}.{event} (valid)"}

        def timed(learner: Any) -> None:
            t = clock()
            handler(learner)
            key = keys[learner.training]
            ns[key] += clock() - t
            calls[key] += 1

        return timed

    registry = learn.callbacks
    for cb in registry.cbs:  # the registry's resolved handlers, replaced in place for this measurement
        handlers = registry._handlers[id(cb)]
        for event, handler in handlers.items():
            handlers[event] = wrap(type(cb).__name__, event, handler)
    registry.refresh()
    control = wrap(*CONTROL, lambda learner: None)
    for table in registry._tables.values():
        table["after_batch"].append(control)
    return ns, calls


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    data, source = load_data(50_000)
    make, bs, opt_factory = WORKLOADS["mlp-bs64"]
    torch.manual_seed(0)
    epoch, learn = contender_loop("learnloop", make(), opt_factory, data, bs, 0)
    learn.progress_bar.table = False
    ns, calls = timed_handlers(learn)
    best: tuple[float, Counter, Counter] | None = None
    for _ in range(args.epochs + 1):  # the first epoch warms up
        ns.clear()
        calls.clear()
        c0 = time.process_time()
        epoch()
        spent = time.process_time() - c0
        if best is None or spent < best[0]:
            best = (spent, Counter(ns), Counter(calls))
    spent, ns, calls = best
    timer = ns[CONTROL_KEY] / calls[CONTROL_KEY] / 1e3
    print(f"mlp-bs64 on {source}, one thread: fastest epoch {spent * 1e3:.1f} ms; the timer itself costs {timer:.2f} us a call\n")
    print("| handler | calls | us per call | ms per epoch |\n|---|---|---|---|")
    for key, total in sorted(ns.items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {calls[key]} | {total / calls[key] / 1e3:.2f} | {total / 1e6:.2f} |")
    per_epoch = sum(v for k, v in ns.items() if not k.startswith(CONTROL[0])) / 1e6
    n_calls = sum(v for k, v in calls.items() if not k.startswith(CONTROL[0]))
    print(f"\nAll handlers: {per_epoch:.1f} ms an epoch ({per_epoch / (spent * 1e3):.1%}), "
          f"{per_epoch - n_calls * timer / 1e3:.1f} ms without the timer's own cost.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
