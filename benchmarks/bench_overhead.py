"""The framework's overhead with each contender alone in its own process.

    python benchmarks/bench_overhead.py                 # 5 contenders x 8 processes, about 5 minutes
    python benchmarks/bench_overhead.py --trials 4      # quicker, wider interval

bench.py runs every contender in one process, which is what makes its side-by-side ratios
immune to drift on a shared machine; but there they also share the heap, the allocator and the
caches, and where one contender's objects happen to land moves another's speed by a few percent
(two identical hand loops land 0-5% apart). Here each run is a fresh process that holds one
contender only (bench.py's MLP at batch 64, one thread, real MNIST when present): one warm-up
epoch, then `--epochs` timed epochs, reporting the fastest epoch's CPU seconds (the other
tenants of a shared machine only ever add time, so the fastest epoch is the cleanest). Processes
alternate between contenders (A B C D, B C D A, ...), so drift spreads evenly; the ratio to the
hand loop (or the `--reference` contender) is the mean over processes with a 95% interval (a
t-interval of the per-process values, each divided by the mean of the reference's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CONTENDERS = ("hand", "hand-checked", "hand-same-work", "learnloop-bare", "learnloop")
# Two-sided 95% t quantiles by degrees of freedom; between entries the next lower one is used (a little wide).
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 15: 2.13, 20: 2.09, 30: 2.04}


def one_process(contender: str, epochs: int) -> float:
    """Run in the child: CPU seconds of the fastest of `epochs` epochs of `contender` (after one warm-up epoch)."""
    import torch
    from bench import WORKLOADS, contender_loop, load_data

    torch.set_num_threads(1)
    data, _ = load_data(50_000)
    make, bs, opt_factory = WORKLOADS["mlp-bs64"]
    torch.manual_seed(0)
    model = make()
    epoch = contender_loop(contender, model, opt_factory, data, bs, 0)[0]
    times = []
    for i in range(epochs + 1):
        c0 = time.process_time()
        epoch()
        if i:
            times.append(time.process_time() - c0)
    return min(times)


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval."""
    n = len(values)
    if n < 2:
        return values[0], float("nan")
    t = T95[max(k for k in T95 if k <= n - 1)]
    return statistics.mean(values), t * statistics.stdev(values) / math.sqrt(n)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=8, help="processes per contender")
    p.add_argument("--epochs", type=int, default=6, help="timed epochs per process")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--reference", default="hand", help="the contender the ratios are to, e.g. hand-same-work (the fair loop for the defaults)")
    p.add_argument("--out", default=str(ROOT / "results"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(one_process(args.child, args.epochs)))
        return 0
    names = args.contenders.split(",")
    if args.reference not in names:
        p.error(f"--contenders must include the reference {args.reference!r}: the ratios are to it.")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.setdefault("LEARNLOOP_DATA", str(ROOT.parent.parent / "shared" / "data"))
    secs: dict[str, list[float]] = {k: [] for k in names}
    started = time.perf_counter()
    for trial in range(args.trials):
        for name in names[trial % len(names) :] + names[: trial % len(names)]:
            cmd = [sys.executable, str(Path(__file__)), "--child", name, "--epochs", str(args.epochs)]
            out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            secs[name].append(json.loads(out.strip().splitlines()[-1]))
        done = trial + 1
        print(f"  trial {done}/{args.trials} ({time.perf_counter() - started:.0f} s): "
              + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in secs.items()), file=sys.stderr)  # fmt: skip
    ref = statistics.mean(secs[args.reference])
    rows = []
    print(f"\nmlp-bs64, one thread, {args.trials} processes per contender, fastest of {args.epochs} epochs each (CPU time)")
    print(f"{'contender':<16}{'ms/epoch':>10}{'ratio to ' + args.reference:>24}{'95% interval':>18}{'paired by round':>22}")
    for name, v in secs.items():
        mean, half = interval([s / ref for s in v])
        # Each round's processes ran minutes apart at most: pairing them takes out the host's slow drifts.
        paired, paired_half = interval([s / r for s, r in zip(v, secs[args.reference])])
        rows.append({"contender": name, "ms_per_epoch": statistics.mean(v) * 1e3, "ratio": mean, "ci95": half,
                     "paired_ratio": paired, "paired_ci95": paired_half, "per_process_s": v})  # fmt: skip
        print(f"{name:<16}{statistics.mean(v) * 1e3:>10.1f}{mean:>23.3f}x{f'+-{half:.3f}':>18}{f'{paired:.3f}x +-{paired_half:.3f}':>22}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps({"trials": args.trials, "epochs": args.epochs, "reference": args.reference, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
