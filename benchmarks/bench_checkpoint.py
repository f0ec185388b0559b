"""What checkpoints cost: size and save/load time per model, the share of an epoch spent
checkpointing every N steps, and the time to resume mid-epoch (load + reposition the loader).

    python benchmarks/bench_checkpoint.py            # about two minutes
    python benchmarks/bench_checkpoint.py --quick

Models: the lesson's CNN (cnn((8, 16, 32, 32)), 15,682 parameters) and an MLP of 24.2 M
parameters (784-4096-4096-1024-10), both with AdamW state (two moments per weight, so a
checkpoint is about three times the weights). The overhead of checkpointing is reported two
ways: the epoch time against an identical run without checkpoints (noisy on a shared machine)
and the time spent inside the saves as a share of the epoch. One torch thread; medians of 5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import learnloop as ll
from learnloop.layers import cnn

ROOT = Path(__file__).resolve().parent


def big_model() -> nn.Module:
    # 784*4096 + 4096*4096 + 4096*1024 + 1024*10 weights and the biases: 24.2 M parameters.
    return nn.Sequential(nn.Linear(784, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1024), nn.ReLU(), nn.Linear(1024, 10))


_DATA: dict = {}


def learner(model: nn.Module, n: int, flat: bool, bs: int = 64) -> ll.Learner:
    if (n, flat) not in _DATA:  # made once: resume timings must not include making the data
        g = torch.Generator().manual_seed(0)
        _DATA[n, flat] = (torch.randn(n, *((784,) if flat else (1, 28, 28)), generator=g), torch.randint(0, 10, (n,), generator=g))
    x, y = _DATA[n, flat]
    dls = ll.DataLoaders.from_tensors(x, y, x[:256], y[:256], batch_size=bs, seed=0)
    return ll.Learner(model, dls, opt_func=torch.optim.AdamW, lr=1e-3, progress=False)


class TimedCheckpoint(ll.Checkpoint):
    """A Checkpoint that adds up the time its saves take."""

    seconds = 0.0

    def save(self, learn):
        t0 = time.perf_counter()
        try:
            return super().save(learn)
        finally:
            self.seconds += time.perf_counter() - t0


def median_time(f, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def size_and_speed(name: str, learn: ll.Learner, folder: Path, reps: int) -> dict:
    learn.fit(1)  # optimizer state exists
    path = folder / f"{name}.safetensors"
    save = median_time(lambda: learn.save(path), reps)
    load = median_time(lambda: learn.load(path), reps)
    n_params = sum(p.numel() for p in learn.model.parameters())
    return {"params": n_params, "MB": path.stat().st_size / 1e6, "save_s": save, "load_s": load}


def overhead(folder: Path, every: list[int], n: int, reps: int) -> dict:
    """Epoch time of the lesson's CNN with a Checkpoint every N steps, against none, interleaved."""
    runs = {"none": None, **{f"every {k}": k for k in every}}
    times: dict[str, list[float]] = {k: [] for k in runs}
    learners = {}
    for key, k in runs.items():
        torch.manual_seed(0)
        cbs = [] if k is None else [TimedCheckpoint(every_n_steps=k, every_n_epochs=None, dir=folder / key.replace(" ", "-"))]
        learners[key] = learner(cnn((8, 16, 32, 32)), n, flat=False)
        learners[key].add_cbs(cbs)
        learners[key].fit(1)  # warm-up
    saving: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for key, learn in learners.items():
            ckpt = learn.__dict__.get("timed_checkpoint")
            before = ckpt.seconds if ckpt else 0.0
            t0 = time.perf_counter()
            learn.fit(1)
            times[key].append(time.perf_counter() - t0)
            saving[key].append((ckpt.seconds - before) if ckpt else 0.0)
    base = statistics.median(times["none"])
    steps = len(learners["none"].dls.train)
    return {
        key: {"epoch_s": statistics.median(v), "vs_none_pct": 100 * (statistics.median(v) / base - 1),
              "in_saves_pct": 100 * statistics.median(saving[key]) / statistics.median(v), "steps": steps}
        for key, v in times.items()
    }  # fmt: skip


def resume_time(folder: Path, n: int, reps: int) -> dict:
    """Time from a fresh learner to the first resumed batch, mid-epoch, for growing epochs."""
    out = {}
    for size in (n, 4 * n):
        learn = learner(cnn((8, 16, 32, 32)), size, flat=False)
        stop = len(learn.dls.train) // 2

        class StopMid(ll.Callback):
            def after_batch(self, learn):
                if learn.training and learn.train_batches_done == stop:
                    learn.save(folder / f"mid{size}.safetensors")
                    raise ll.CancelFitException

        learn.fit(1, cbs=[StopMid()])

        class FirstBatch(ll.Callback):
            def before_batch(self, learn):
                if learn.training:
                    raise ll.CancelFitException

        def resume() -> None:
            fresh = learner(cnn((8, 16, 32, 32)), size, flat=False)
            fresh.fit(1, cbs=[FirstBatch()], resume=folder / f"mid{size}.safetensors")

        out[f"{size} samples ({stop} batches in)"] = median_time(resume, reps)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    reps = 3 if args.quick else 5
    n = 6400 if args.quick else 25600
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = {
            "lesson CNN": size_and_speed("cnn", learner(cnn((8, 16, 32, 32)), 1024, flat=False), folder, reps),
            "MLP, 24.2 M params": size_and_speed("big", learner(big_model(), 256, flat=True), folder, reps),
        }
        cost = overhead(folder, [50, 200], n, reps)
        resume = resume_time(folder, n, reps)
    print(f"Measured {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, 1 thread; medians of {reps}.\n")
    print("| model | parameters | checkpoint size | save | load |\n|---|---|---|---|---|")
    for name, r in sizes.items():
        print(f"| {name} | {r['params']:,} | {r['MB']:.2f} MB | {r['save_s'] * 1000:.0f} ms | {r['load_s'] * 1000:.0f} ms |")
    steps = cost["none"]["steps"]
    print(f"\n| lesson CNN, one epoch of {n:,} samples ({steps} steps, batch 64) | seconds | vs no checkpoints | time in saves |\n|---|---|---|---|")
    for key, r in cost.items():
        print(f"| {key} | {r['epoch_s']:.3f} | {r['vs_none_pct']:+.1f}% | {r['in_saves_pct']:.2f}% |")
    print("\n| resume mid-epoch (fresh learner, load, first batch) | seconds |\n|---|---|")
    for key, s in resume.items():
        print(f"| {key} | {s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
