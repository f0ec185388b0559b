"""One optimizer step over a model with 100 parameter tensors: learnloop.optim.Adam against
torch.optim.AdamW (its default implementation and foreach=True), interleaved, medians.

    python benchmarks/bench_optim.py
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from learnloop import optim


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(64, 64) for _ in range(50)])  # 50 weights + 50 biases


def main() -> int:
    torch.set_num_threads(1)
    contenders = {
        "torch AdamW (default)": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
        "torch AdamW (foreach)": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01, foreach=True),
        "learnloop Adam": lambda p: optim.Adam(p, lr=1e-3, wd=0.01),
    }
    setups = {}
    for name, make in contenders.items():
        m = model()
        for p in m.parameters():
            p.grad = torch.randn_like(p)
        setups[name] = make(m.parameters())
    times: dict[str, list[float]] = {k: [] for k in setups}
    for rep in range(30):
        for name, opt in setups.items():
            t0 = time.perf_counter()
            for _ in range(20):
                opt.step()
            if rep >= 3:
                times[name].append((time.perf_counter() - t0) / 20)
    base = statistics.median(times["torch AdamW (default)"])
    print(f"{'optimizer':<24}{'median us/step':>16}{'ratio':>8}")
    for name, ts in times.items():
        print(f"{name:<24}{statistics.median(ts) * 1e6:>16.1f}{statistics.median(ts) / base:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
