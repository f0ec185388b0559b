"""Instructions per training batch, counted by valgrind: the framework's cost without timer noise.

    python benchmarks/bench_instructions.py        # about 15 minutes; needs valgrind

Wall-clock ratios on a shared machine move by several percent between identical runs (see the
control rows of bench.py). An instruction count barely moves: each contender runs in a fresh
process under callgrind (`PYTHONHASHSEED=0`), once with N1 and once with N2 training batches of
bench.py's MLP at batch 64, and (count(N2) - count(N1)) / (N2 - N1) is its instructions per
batch, with start-up, imports and the fixed validation pass cancelled out.

What a count cannot see: cache misses, and that the interpreter's code runs at fewer
instructions per cycle than torch's kernels. So the framework's share of instructions is a
floor for its share of the time, not the time itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CONTENDERS = ("hand", "hand-checked", "hand-same-work", "learnloop-bare", "learnloop")


def child(contender: str, n_batches: int) -> None:
    """One epoch of `n_batches` training batches by `contender` (run under callgrind)."""
    from bench import contender_loop, make_mlp

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64 * n_batches, 784, generator=g), torch.randint(0, 10, (64 * n_batches,), generator=g)
    data = (x, y, x[:256], y[:256])  # a fixed validation pass: it cancels out of the difference
    torch.manual_seed(0)
    model = make_mlp()

    def sgd(params):
        return torch.optim.SGD(params, lr=0.01)

    epoch, learn = contender_loop(contender, model, sgd, data, 64, 0)
    if contender.startswith("learnloop-without-"):  # e.g. learnloop-without-recorder: what one default costs
        learn.remove_cbs([getattr(learn, contender.removeprefix("learnloop-without-"))])
        epoch = learn.fit
    epoch()


def count(contender: str, n_batches: int) -> int:
    """Instructions executed by a fresh process running `child(contender, n_batches)`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, "--child", contender, str(n_batches)]
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
        return int(summary.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n1", type=int, default=20)
    p.add_argument("--n2", type=int, default=520)
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help="a comma-separated subset, or learnloop-without-<callback name> (e.g. learnloop-without-recorder); ratios need 'hand'")
    p.add_argument("--child", nargs=2, metavar=("CONTENDER", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("bench_instructions.py needs valgrind (apt install valgrind).", file=sys.stderr)
        return 1
    per_batch = {}
    for name in args.contenders.split(","):
        c1, c2 = count(name, args.n1), count(name, args.n2)
        per_batch[name] = (c2 - c1) / (args.n2 - args.n1)
        print(f"  {name}: {c1:,} and {c2:,} instructions for {args.n1} and {args.n2} batches", file=sys.stderr, flush=True)
    hand = per_batch.get("hand", float("nan"))
    print(f"Instructions per training batch (MLP 784-50-10, batch 64, one thread; {args.n2} - {args.n1} batches)\n")
    print("| contender | instructions per batch | over the hand loop | ratio |\n|---|---|---|---|")
    for name, v in per_batch.items():
        print(f"| {name} | {v:,.0f} | {v - hand:+,.0f} | {v / hand:.4f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
