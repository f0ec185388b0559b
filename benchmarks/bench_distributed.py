"""One process with 2 threads against 2 processes with 1 thread (torch.distributed, gloo), on
this machine's 2 cores, training the lesson's CNN for one epoch of MNIST at a global batch of 64.

    python benchmarks/bench_distributed.py            # about two minutes
    python benchmarks/bench_distributed.py --quick

Reports the epoch time of 1 process x 1 thread, 1 process x 2 threads and 2 processes x 1 thread
(per-rank batch 32), the scaling efficiency T(1x1) / (2 x T(2x1)), and the cost of the
gradient all-reduce DDP does each step (timed alone on a tensor of the model's size).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

import learnloop as ll  # noqa: E402


def epoch_seconds(data, bs: int, reps: int) -> float:
    make, _, opt_factory = bench.WORKLOADS["cnn-bs64"]
    torch.manual_seed(0)
    x, y, xv, yv = data
    learn = ll.Learner(make(), ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=bs, seed=0), opt_func=lambda p, lr: opt_factory(p),
                       metrics=[ll.accuracy], progress=False)  # fmt: skip
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        learn.fit(1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])  # the first epoch warms up


def worker(n_train: int, reps: int, out: Path) -> None:
    """Inside torchrun: the timed epochs, then the all-reduce alone."""
    torch.set_num_threads(1)
    data, _ = bench.load_data(n_train)
    t = epoch_seconds(data, 32, reps)
    n_params = sum(p.numel() for p in bench.WORKLOADS["cnn-bs64"][0]().parameters())
    grads = torch.randn(n_params)
    import torch.distributed as dist

    for _ in range(10):
        dist.all_reduce(grads)
    t0 = time.perf_counter()
    for _ in range(200):
        dist.all_reduce(grads)
    comm = (time.perf_counter() - t0) / 200
    if dist.get_rank() == 0:
        out.write_text(json.dumps({"epoch": t, "allreduce_s": comm, "n_params": n_params}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    n_train, reps = (10000, 2) if args.quick else (50000, 3)
    if args.worker:
        worker(n_train, reps, Path(args.worker))
        return 0
    data, source = bench.load_data(n_train)
    torch.set_num_threads(1)
    one = epoch_seconds(data, 64, reps)
    torch.set_num_threads(2)
    two_threads = epoch_seconds(data, 64, reps)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_distributed_{os.getpid()}.json"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
           __file__, "--worker", str(out)] + (["--quick"] if args.quick else [])  # fmt: skip
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    out.unlink()
    steps = -(-n_train // 64)
    print(f"Measured {time.strftime('%Y-%m-%d')} on {bench.cpu_name()} (2 cores), torch {torch.__version__}, {source}, "
          f"{n_train:,} + 10,000 samples per epoch, the lesson's CNN ({r['n_params']:,} parameters), global batch 64; medians of {reps}.\n")  # fmt: skip
    print("| setup | s/epoch | speed-up over 1 x 1 |\n|---|---|---|")
    for name, t in (("1 process x 1 thread", one), ("1 process x 2 threads", two_threads), ("2 processes x 1 thread (batch 32 each)", r["epoch"])):
        print(f"| {name} | {t:.2f} | {one / t:.2f}x |")
    print(f"\n- scaling efficiency of 2 processes: {one / (2 * r['epoch']):.0%} (100% = twice as fast as one process)")
    print(f"- one gradient all-reduce ({r['n_params']:,} floats, gloo over loopback): {r['allreduce_s'] * 1e6:.0f} us; "
          f"{steps} steps an epoch spend about {steps * r['allreduce_s']:.2f} s in it")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
