"""learnloop against a hand-written PyTorch loop and torch's DataLoader, measured side by side.

    python benchmarks/bench.py            # full run (a few minutes)
    python benchmarks/bench.py --quick    # under a minute

Every contender trains the same model from the same initial weights on the same data; epochs
are interleaved (hand, torch DL, learnloop, learnloop bare, hand, ...) so machine drift hits all
alike, and we report min / median / max seconds per epoch and the median ratio to the hand loop.
The hand loop computes what the Learner reports (size-weighted train loss, valid loss, accuracy,
accumulated on the device) so the ratio prices only the framework. One thread by default: on a
shared 2-core machine a second thread adds more noise than speed.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import learnloop as ll
from learnloop.data import ArrayDataset, DataLoader, DataLoaders
from learnloop.datasets import DataNotFoundError, mnist, normalize

ROOT = Path(__file__).resolve().parent


# ---- data and models ----------------------------------------------------------------------------


def load_data(n_train: int) -> tuple[tuple[torch.Tensor, ...], str]:
    shared = ROOT.parent.parent / "shared" / "data" / "mnist"
    try:
        d = mnist(shared if shared.is_dir() else None, download=False)
        if len(d.x_train) < n_train:
            raise DataNotFoundError("only the small sample is available")
        xs = (normalize(d.x_train[:n_train]).view(-1, 784), d.y_train[:n_train], normalize(d.x_test).view(-1, 784), d.y_test)
        return xs, f"MNIST ({d.source})"
    except DataNotFoundError:
        g = torch.Generator().manual_seed(0)
        xs = (torch.randn(n_train, 784, generator=g), torch.randint(0, 10, (n_train,), generator=g),
              torch.randn(10000, 784, generator=g), torch.randint(0, 10, (10000,), generator=g))  # fmt: skip
        return xs, "synthetic MNIST-shaped data"


def make_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))


def make_cnn() -> nn.Module:
    def conv(ni: int, nf: int, ks: int = 3) -> nn.Module:
        return nn.Sequential(nn.Conv2d(ni, nf, ks, stride=2, padding=ks // 2), nn.ReLU())

    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        conv(1, 8, 5), conv(8, 16), conv(16, 32), conv(32, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


WORKLOADS = {
    "mlp-bs64": (make_mlp, 64, lambda p: torch.optim.SGD(p, lr=0.1)),
    "mlp-bs512": (make_mlp, 512, lambda p: torch.optim.SGD(p, lr=0.1)),
    "cnn-bs64": (make_cnn, 64, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
}


# ---- contenders: each returns a function that runs one epoch --------------------------------


def hand_loop(
    model: nn.Module, opt_factory: Callable, data: tuple, bs: int, seed: int, check_finite: bool = False, same_work: bool = False
) -> Callable[[], dict]:
    """The floor: slices of a shuffled permutation, the Learner's numbers computed by hand.

    `check_finite`: also stop at a NaN or infinite loss before its backward pass, as the
    Learner's default NonFiniteCheck does (the same work, so the ratio prices the framework).
    `same_work`: all the work of the four default callbacks, written by hand: each batch moved
    to the device, each loss checked, each batch's loss read back as a number and its
    hyper-parameters kept (the Recorder's `losses` and `hps`), a progress bar that hides itself
    where stderr is not a terminal, and a printed row per epoch."""
    x, y, xv, yv = data
    opt = opt_factory(model.parameters())
    sampler = ll.RandomSampler(len(x), seed=seed)  # same batch order as learnloop's loader
    state = {"epoch": 0}
    device = torch.device("cpu")
    check_finite = check_finite or same_work

    def epoch() -> dict:
        sampler.set_epoch(state["epoch"])
        state["epoch"] += 1
        perm = sampler.indices()
        model.train()
        losses, sizes, hps = [], [], []
        bar = tqdm(total=math.ceil(len(x) / bs), leave=False, disable=None) if same_work else None
        if bar is not None and bar.disable:
            bar = None
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            if same_work:
                xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            if check_finite and not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss {loss.item()} at batch {i // bs}")
            if same_work:
                hps.append([(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups])
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach())
            sizes.append(len(yb))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if same_work:
            state["losses"], state["hps"] = torch.stack(losses).tolist(), hps
        model.eval()
        vl, acc, n = 0.0, 0.0, 0
        with torch.no_grad():
            for i in range(0, len(xv), 2 * bs):
                xb, yb = xv[i : i + 2 * bs], yv[i : i + 2 * bs]
                pred = model(xb)
                vl = vl + F.cross_entropy(pred, yb) * len(yb)
                acc = acc + (pred.argmax(-1) == yb).float().mean() * len(yb)
                n += len(yb)
        sz = torch.tensor(sizes, dtype=torch.float32)
        train_loss = (torch.stack(losses) * sz).sum() / sz.sum()
        row = {"train_loss": train_loss.item(), "valid_loss": (vl / n).item(), "accuracy": (acc / n).item()}
        if same_work:
            print(state["epoch"] - 1, *(f"{v:.4f}" for v in row.values()))
        return row

    return epoch


def torch_loader_loop(model: nn.Module, opt_factory: Callable, data: tuple, bs: int, seed: int) -> Callable[[], dict]:
    """The same loop fed by torch.utils.data.DataLoader(TensorDataset) with default collate."""
    x, y, xv, yv = data
    opt = opt_factory(model.parameters())
    g = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=bs, shuffle=True, generator=g)
    valid = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=2 * bs)

    def epoch() -> dict:
        model.train()
        for xb, yb in train:
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in valid:
                correct += (model(xb).argmax(-1) == yb).sum()
        return {"accuracy": (correct / len(xv)).item()}

    return epoch


def learnloop_loop(model: nn.Module, opt_factory: Callable, data: tuple, bs: int, seed: int, bare: bool = False) -> tuple[Callable[[], dict], ll.Learner]:
    """`Learner.fit(1)` per epoch: default callbacks (recorder, metrics, progress bar), or none."""
    x, y, xv, yv = data
    dls = DataLoaders.from_tensors(x, y, xv, yv, batch_size=bs, seed=seed)
    learn = ll.Learner(model, dls, opt_func=lambda p, lr: opt_factory(p), metrics=[] if bare else [ll.accuracy], default_cbs=not bare)
    if not bare:
        learn.progress_bar.bar = True  # the bar hides itself when stderr is not a terminal

    def epoch() -> dict:
        learn.fit(1)
        return dict(learn.recorder.history[-1]) if not bare else {}

    return epoch, learn


def contender_loop(name: str, model: nn.Module, opt_factory: Callable, data: tuple, bs: int, seed: int) -> tuple[Callable[[], dict], ll.Learner | None]:
    """The epoch function of a contender named as in the tables (hand, hand-checked,
    hand-same-work, learnloop, learnloop-bare), and its Learner for the learnloop ones."""
    if name.startswith("hand"):
        return hand_loop(model, opt_factory, data, bs, seed, check_finite=name == "hand-checked", same_work=name == "hand-same-work"), None
    return learnloop_loop(model, opt_factory, data, bs, seed, bare=name == "learnloop-bare")


# ---- measurement --------------------------------------------------------------------------------


def from_init(model: nn.Module, contenders: dict[str, Callable[[], dict]], keep: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Contenders that share `model` each start every epoch from its present weights; the
    second dict gets the weights of those named in `keep` after their latest epoch (to check
    they did the same work; copied only for them, as the copy falls inside the timed run)."""
    init = {k: v.clone() for k, v in model.state_dict().items()}
    final: dict[str, list[torch.Tensor]] = {}

    def wrap(key: str, epoch: Callable[[], dict]) -> Callable[[], dict]:
        def run() -> dict:
            model.load_state_dict(init)
            result = epoch()
            if key in keep:
                final[key] = [p.detach().clone() for p in model.parameters()]
            return result

        return run

    return {k: wrap(k, f) for k, f in contenders.items()}, final


def interleave(contenders: dict[str, Callable[[], dict]], reps: int, warmup: int) -> tuple[dict, dict, dict]:
    """Run each contender once per round, rotating who goes first; wall and CPU seconds per run."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    results: dict[str, dict] = {}
    names = list(contenders)
    for r in range(warmup + reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = contenders[name]()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r >= warmup:
                times[name].append(dt)
                cpu[name].append(dc)
    return times, cpu, results


def summarize(times: dict[str, list[float]], floor: str, cpu: dict[str, list[float]] | None = None) -> dict[str, dict]:
    """min / median / max wall seconds and the median ratio to `floor`; with `cpu`, also the
    ratio of median CPU seconds, which time spent waiting for the other processes on a shared
    machine does not inflate."""
    base = statistics.median(times[floor])
    out = {k: {"min": min(v), "median": statistics.median(v), "max": max(v), "ratio": statistics.median(v) / base} for k, v in times.items()}
    if cpu:
        cbase = statistics.median(cpu[floor])
        for k, v in cpu.items():
            out[k]["cpu_ratio"] = statistics.median(v) / cbase
    return out


def bench_training(data: tuple, workloads: list[str], reps: int, warmup: int, seed: int) -> dict:
    out = {}
    for name in workloads:
        make, bs, opt_factory = WORKLOADS[name]
        torch.manual_seed(seed)
        # One model for all contenders, reset to the same weights before each epoch: where a
        # model's tensors land in memory moves its speed by several percent on this machine, so
        # separate copies made the layout, not the framework, decide the ratio.
        model = make()
        contenders = {
            "hand": hand_loop(model, opt_factory, data, bs, seed),
            # An identical second hand loop: how far apart two equal contenders land is this
            # machine's resolution.
            "hand-again": hand_loop(model, opt_factory, data, bs, seed),
            "hand-checked": hand_loop(model, opt_factory, data, bs, seed, check_finite=True),
            "hand-same-work": hand_loop(model, opt_factory, data, bs, seed, same_work=True),
            "torch-dataloader": torch_loader_loop(model, opt_factory, data, bs, seed),
            "learnloop": learnloop_loop(model, opt_factory, data, bs, seed)[0],
            "learnloop-bare": learnloop_loop(model, opt_factory, data, bs, seed, bare=True)[0],
        }
        runs, final = from_init(model, contenders, keep=("hand", "learnloop"))
        times, cpu, results = interleave(runs, reps, warmup)
        stats = summarize(times, "hand", cpu)
        same = all(torch.equal(a, b) for a, b in zip(final["hand"], final["learnloop"]))
        if not same:  # the comparison is only fair if both loops did exactly the same work
            raise SystemExit(f"{name}: the hand loop and learnloop ended with different weights; the timings compare different work.")
        for k in stats:
            stats[k]["accuracy"] = results[k].get("accuracy")
        out[name] = {"stats": stats, "bitwise_equal_weights_hand_vs_learnloop": same, "hand": results["hand"], "learnloop": results["learnloop"]}
        print(f"  {name}: " + ", ".join(f"{k} {v['median']:.3f}s ({v['ratio']:.3f}x)" for k, v in stats.items()) + f"; weights equal: {same}", file=sys.stderr)
    return out


def bench_loaders(data: tuple, reps: int, warmup: int, seed: int) -> dict:
    x, y = data[0], data[1]
    out = {}
    for bs in (64, 512):
        ours = DataLoader(ArrayDataset(x, y), batch_size=bs, shuffle=True, seed=seed)
        g = torch.Generator().manual_seed(seed)
        theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=bs, shuffle=True, generator=g)
        # torch's batched configuration: a BatchSampler as the sampler, so the dataset is indexed
        # with a list per batch (TensorDataset gathers it in one go) and no per-sample collate runs.
        g2 = torch.Generator().manual_seed(seed)
        batched = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y),
            sampler=torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(x, generator=g2), bs, drop_last=False),
            batch_size=None,
        )

        def hand() -> dict:
            perm = torch.randperm(len(x))
            for i in range(0, len(x), bs):
                idx = perm[i : i + bs]
                x.index_select(0, idx), y.index_select(0, idx)
            return {}

        def run(dl) -> Callable[[], dict]:
            def epoch() -> dict:
                for _ in dl:
                    pass
                return {}

            return epoch

        times, _, _ = interleave({"hand-slicing": hand, "learnloop": run(ours), "torch-dataloader": run(theirs),
                                  "torch-dataloader-batched": run(batched)}, reps, warmup)  # fmt: skip
        stats = summarize(times, "hand-slicing")
        stats["learnloop"]["speedup_vs_torch"] = stats["torch-dataloader"]["median"] / stats["learnloop"]["median"]
        stats["learnloop"]["speedup_vs_torch_batched"] = stats["torch-dataloader-batched"]["median"] / stats["learnloop"]["median"]
        out[f"bs{bs}"] = stats
        print(f"  loader bs{bs}: " + ", ".join(f"{k} {v['median'] * 1000:.1f}ms ({v['ratio']:.2f}x)" for k, v in stats.items()), file=sys.stderr)
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_of(contender: str, n_train: int, seed: int = 0) -> int:
    """Run one contender for two epochs of mlp-bs64 in this process; return its peak RSS (KiB)."""
    data, _ = load_data(n_train)
    make, bs, opt_factory = WORKLOADS["mlp-bs64"]
    torch.manual_seed(seed)
    if contender == "hand":
        epoch = hand_loop(make(), opt_factory, data, bs, seed)
    else:
        epoch, learn = learnloop_loop(make(), opt_factory, data, bs, seed)
        learn.progress_bar.table = False
    for _ in range(2):
        epoch()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_memory(n_train: int, threads: int) -> dict:
    """Peak RSS of each contender, each in a fresh process so neither inherits the other's heap.

    Peak RSS of the same run varies by tens of MiB from process to process (when lazily
    imported torch modules and allocator pools land), so each is run three times, interleaved,
    and the smallest peak kept."""
    runs: dict[str, list[int]] = {"hand": [], "learnloop": []}
    for _ in range(3):
        for contender in runs:
            cmd = [sys.executable, __file__, "--rss-of", contender, "--threads", str(threads), "--n-train", str(n_train)]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[contender].append(int(r.stdout.strip().splitlines()[-1]))
    out: dict = {k: min(v) for k, v in runs.items()}
    out["runs"] = runs
    out["ratio"] = out["learnloop"] / out["hand"]
    print(f"  peak RSS: hand {out['hand'] / 1024:.0f} MiB, learnloop {out['learnloop'] / 1024:.0f} MiB ({out['ratio']:.3f}x)", file=sys.stderr)
    return out


def markdown(report: dict) -> str:
    env = report["env"]
    lines = [
        f"Measured {env['date']} on {env['cpu']} ({env['threads']} torch thread(s)), torch {env['torch']}, "
        f"{env['data']}, {env['n_train']:,} train + 10,000 valid samples per epoch, {env['reps']} timed epochs after {env['warmup']} warm-up.",
        "",
        "| workload | contender | median s/epoch | min | max | ratio to hand loop | CPU-time ratio | accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for wl, r in report["training"].items():
        for k, s in r["stats"].items():
            acc = f"{s['accuracy']:.4f}" if s.get("accuracy") is not None else ""
            lines.append(f"| {wl} | {k} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} | {s['ratio']:.3f}x | {s['cpu_ratio']:.3f}x | {acc} |")
    lines.append("")
    lines += ["| loader (one epoch of batches) | contender | median ms | min | max | ratio to hand slicing |", "|---|---|---|---|---|---|"]
    for bs, stats in report["loaders"].items():
        for k, s in stats.items():
            lines.append(f"| {bs} | {k} | {s['median'] * 1000:.1f} | {s['min'] * 1000:.1f} | {s['max'] * 1000:.1f} | {s['ratio']:.2f}x |")
    lines.append("")
    mem = report.get("memory")
    if mem:
        lines.append(
            f"- peak RSS (mlp-bs64, two epochs, fresh process each, smallest of 3): hand loop {mem['hand'] / 1024:.0f} MiB, "
            f"learnloop {mem['learnloop'] / 1024:.0f} MiB ({mem['ratio']:.3f}x)"
        )
    for wl, r in report["training"].items():
        lines.append(f"- {wl}: resolution check, an identical second hand loop ran at {r['stats']['hand-again']['ratio']:.3f}x the first")
    targets = {"mlp-bs64": 1.03, "cnn-bs64": 1.02}
    for wl, r in report["training"].items():
        ratio, cpu_ratio = r["stats"]["learnloop"]["ratio"], r["stats"]["learnloop"]["cpu_ratio"]
        verdict = f"; target {targets[wl]:.2f}x: {'met' if ratio <= targets[wl] else 'NOT met'}" if wl in targets else ""
        lines.append(f"- {wl}: learnloop with default callbacks at {ratio:.3f}x the hand loop in wall time ({cpu_ratio:.3f}x in CPU time){verdict}")
        checked = r["stats"]["learnloop"]["median"] / r["stats"]["hand-checked"]["median"]
        lines.append(f"- {wl}: learnloop at {checked:.3f}x the hand loop that also checks each loss is finite, as the default NonFiniteCheck does")
        same = r["stats"]["learnloop"]["median"] / r["stats"]["hand-same-work"]["median"]
        lines.append(f"- {wl}: learnloop at {same:.3f}x the hand loop that does all the default callbacks' work (see hand_loop's same_work)")
        lines.append(f"- {wl}: hand loop and learnloop end with bitwise-equal weights: {r['bitwise_equal_weights_hand_vs_learnloop']}")
    for bs, stats in report["loaders"].items():
        speedup, ratio = stats["learnloop"]["speedup_vs_torch"], stats["learnloop"]["ratio"]
        batched = stats["learnloop"]["speedup_vs_torch_batched"]
        met = "met" if speedup >= 5 and ratio <= 1.2 else "NOT met"
        lines.append(
            f"- loader {bs}: learnloop is {speedup:.1f}x faster than torch's DataLoader in its default per-sample configuration "
            f"(TensorDataset, shuffle=True, default collate) and {batched:.1f}x faster than its batched configuration "
            f"(a BatchSampler as the sampler, batch_size=None); {ratio:.2f}x hand slicing (targets: >= 5x the default and <= 1.2x: {met})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer epochs and samples: under a minute")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--out", default=str(ROOT / "results"))
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory comparison")
    p.add_argument("--rss-of", choices=["hand", "learnloop"], help=argparse.SUPPRESS)
    p.add_argument("--n-train", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_train = args.n_train or (10000 if args.quick else 50000)
    if args.rss_of:
        print(peak_rss_of(args.rss_of, n_train))
        return 0
    reps = args.reps or (3 if args.quick else 7)
    warmup = 1
    data, source = load_data(n_train)
    print(f"learnloop benchmark: {source}, {n_train} train samples, {reps} reps", file=sys.stderr)
    report = {
        "env": {
            "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "threads": args.threads,
            "torch": torch.__version__, "python": platform.python_version(), "data": source, "n_train": n_train,
            "reps": reps, "warmup": warmup,
        },  # fmt: skip
        "training": bench_training(data, args.workloads.split(","), reps, warmup, seed=0),
        "loaders": bench_loaders(data, reps * 3, warmup, seed=0),
        "memory": None if args.no_memory else bench_memory(n_train, args.threads),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    md = markdown(report)
    (out / "bench.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
