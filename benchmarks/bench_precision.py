"""Eager, compiled and bf16 training against a hand-written eager loop, side by side.

    python benchmarks/bench_precision.py            # about five minutes
    python benchmarks/bench_precision.py --quick

For the MLP (784-50-10, batch 64) and the lesson's CNN (bench.py's cnn-bs64): seconds per epoch
of the hand loop (eager), learnloop eager, learnloop with `compile=True` and learnloop with
`MixedPrecision('bf16')`, interleaved, medians; the compiled learner's first epoch minus its
median epoch is its compile time, and compile time / (eager epoch - compiled epoch) is the
number of epochs after which compiling has paid for itself. Then the wall time to 98%
validation accuracy of the CNN with one-cycle (2 epochs) for each learnloop variant.
One torch thread, full MNIST (or synthetic data of its shape when MNIST is absent).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared workloads and the hand loop)

import learnloop as ll  # noqa: E402


def variants(make, opt_factory, data, bs: int) -> dict[str, tuple]:
    out = {}
    for name, kw in (("learnloop eager", {}), ("learnloop compiled", {"compile": True}), ("learnloop bf16", {"cbs": [ll.MixedPrecision("bf16")]})):
        torch.manual_seed(0)
        x, y, xv, yv = data
        dls = ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=bs, seed=0)
        learn = ll.Learner(make(), dls, opt_func=lambda p, lr: opt_factory(p), metrics=[ll.accuracy], progress=False, **kw)
        out[name] = (learn, lambda learn=learn: learn.fit(1) or learn.recorder.history[-1])
    return out


def epoch_times(workload: str, data, reps: int) -> dict:
    make, bs, opt_factory = bench.WORKLOADS[workload]
    torch.manual_seed(0)
    learners = variants(make, opt_factory, data, bs)
    first = {}
    for name, (learn, epoch) in learners.items():  # the first epoch: compilation happens here
        t0 = time.perf_counter()
        epoch()
        first[name] = time.perf_counter() - t0
    contenders = {"hand loop (eager)": bench.hand_loop(make(), opt_factory, data, bs, 0), **{k: v[1] for k, v in learners.items()}}
    times, _, results = bench.interleave(contenders, reps, warmup=1)
    stats = bench.summarize(times, "hand loop (eager)")
    compile_s = first["learnloop compiled"] - stats["learnloop compiled"]["median"]
    gain = stats["learnloop eager"]["median"] - stats["learnloop compiled"]["median"]
    return {"stats": stats, "compile_s": compile_s, "break_even_epochs": compile_s / gain if gain > 0 else None,
            "accuracy": {k: r.get("accuracy") for k, r in results.items()}}  # fmt: skip


def time_to_98(data, epochs: int = 2) -> dict:
    make, bs, opt_factory = bench.WORKLOADS["cnn-bs64"]
    out = {}
    for name, kw in (("learnloop eager", {}), ("learnloop compiled", {"compile": True}), ("learnloop bf16", {"cbs": [ll.MixedPrecision("bf16")]})):
        torch.manual_seed(0)
        x, y, xv, yv = data
        dls = ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=bs, seed=0)
        learn = ll.Learner(make(), dls, opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), lr=0.1, metrics=[ll.accuracy], progress=False, **kw)
        clock = []

        class Clock(ll.Callback):
            order = 95

            def before_fit(self, learn):
                self.t0 = time.perf_counter()

            def after_epoch(self, learn):
                clock.append((time.perf_counter() - self.t0, learn.recorder.history[-1]["accuracy"]))

        learn.fit_one_cycle(epochs, lr_max=0.1, cbs=[Clock()])
        reached = next((t for t, acc in clock if acc >= 0.98), None)
        out[name] = {"seconds": reached, "accuracy": [acc for _, acc in clock]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data, source = bench.load_data(10000 if args.quick else 50000)
    reps = 3 if args.quick else 5
    print(f"Measured {time.strftime('%Y-%m-%d')} on {bench.cpu_name()}, torch {torch.__version__}, 1 thread, {source}, "
          f"{len(data[0]):,} train + {len(data[2]):,} valid samples per epoch; medians of {reps} epochs.\n")  # fmt: skip
    print("| workload | contender | s/epoch | vs hand loop | accuracy |\n|---|---|---|---|---|")
    notes = []
    for workload in ("mlp-bs64", "cnn-bs64"):
        r = epoch_times(workload, data, reps)
        for name, s in r["stats"].items():
            acc = r["accuracy"].get(name)
            print(f"| {workload} | {name} | {s['median']:.3f} | {s['ratio']:.3f}x | {acc:.4f} |" if acc is not None else f"| {workload} | {name} | {s['median']:.3f} | {s['ratio']:.3f}x | |")
        be = r["break_even_epochs"]
        notes.append(f"- {workload}: compiling took {r['compile_s']:.1f} s (the first epoch's extra time); "
                     + (f"it pays for itself after {be:.1f} epochs." if be is not None else "the compiled epochs were not faster, so it never pays off here."))  # fmt: skip
    print("\n" + "\n".join(notes))
    if not args.quick:
        print("\n| lesson CNN, one-cycle over 2 epochs | seconds to 98% | accuracy after each epoch |\n|---|---|---|")
        for name, r in time_to_98(data).items():
            t = f"{r['seconds']:.1f}" if r["seconds"] is not None else "not reached"
            print(f"| {name} | {t} | {', '.join(f'{a:.4f}' for a in r['accuracy'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
