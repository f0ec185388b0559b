"""What the lesson scripts share: the data (whole, or a small subset with --quick), seeds, a
timer, and one way to report a row of the table in docs/lesson.md."""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

import learnloop as ll
from learnloop.datasets import mnist, mnist_dataloaders

QUICK = "--quick" in sys.argv
SEEDS = [0] if QUICK else [0, 1, 2]
torch.set_num_threads(1)  # the same on every machine this runs on, and what the timings mean


def data():
    """MNIST (a 2,000 / 500 subset with --quick, so the tests run every script in seconds)."""
    d = mnist()
    if QUICK:
        d = d._replace(x_train=d.x_train[:2000], y_train=d.y_train[:2000], x_test=d.x_test[:500], y_test=d.y_test[:500])
    return d


def loaders(bs: int, flatten: bool = True, seed: int = 0, **kw: Any) -> ll.DataLoaders:
    return mnist_dataloaders(bs, flatten=flatten, data=data(), seed=seed, **kw)


def lesson_loaders(bs: int, seed: int = 0, normalized: bool = False, flatten: bool = True) -> ll.DataLoaders:
    """MNIST as the lesson had it (mnist.pkl.gz): the first 50,000 training images to train on,
    the last 10,000 to validate on (not the test set), pixels in [0, 1]; normalised with the
    training images' mean and std from notebook 06 on (`normalized=True`), not before."""
    d = mnist()
    n = 2000 if QUICK else 50_000
    split = d._replace(x_train=d.x_train[:n], y_train=d.y_train[:n], x_test=d.x_train[50_000:][: 500 if QUICK else None],
                       y_test=d.y_train[50_000:][: 500 if QUICK else None])  # fmt: skip
    stats = {} if normalized else {"mean": 0.0, "std": 1.0}
    return mnist_dataloaders(bs, flatten=flatten, data=split, seed=seed, **stats)


def over_seeds(run: Callable[[int], float], seeds: list[int] | None = None) -> tuple[float, ...]:
    """median, min and max of `run(seed)` over the seeds (one seed with --quick); a run whose
    loss diverges (NonFiniteLossError) is counted as a fourth number instead."""
    values, diverged = [], 0
    for s in seeds or SEEDS:
        try:
            values.append(run(s))
        except ll.NonFiniteLossError:
            diverged += 1
    if not values:
        return (math.nan, math.nan, math.nan, diverged)
    stats = (statistics.median(values), min(values), max(values))
    return (*stats, diverged) if diverged else stats


def against(lesson: float, stats: tuple[float, float, float], n_seeds: int) -> str:
    """Where the lesson's single run falls when our median is more than 2 points away from it."""
    med, lo, hi = stats[:3]
    if abs(med - lesson) <= 0.02:
        return ""
    where = "inside" if lo <= lesson <= hi else "outside"
    return f"the lesson's {lesson:.4f} lies {where} our range over {n_seeds} seeds ({lo:.4f}-{hi:.4f})"


def fmt(stats: tuple[float, ...], digits: int = 4) -> str:
    med, lo, hi = stats[:3]
    if math.isnan(med):
        return f"all {stats[3]} runs diverged"
    text = f"{med:.{digits}f}" if lo == hi else f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"
    return text + (f", {stats[3]} diverged" if len(stats) > 3 else "")


def note(*parts: str) -> str:
    """The non-empty parts of a row's note, joined."""
    return "; ".join(p for p in parts if p)


ROWS: list[dict] = []
PLOTS: list[tuple[str, str]] = []  # (file name, caption) of each picture, in the order made
_PLOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "images" if "--write-docs" in sys.argv else Path(tempfile.mkdtemp())


def plot(name: str, caption: str) -> Path:
    """Where to save the picture `name` (docs/images with --write-docs); listed under the table."""
    PLOTS.append((name, caption))
    return _PLOT_DIR / name


def row(notebook: str, experiment: str, lesson: str, ours: str, setup: str, seconds: float, note: str = "") -> None:
    """Record one line of the table and print it (run_all.py collects ROWS)."""
    r = {"notebook": notebook, "experiment": experiment, "lesson": lesson, "learnloop": ours, "setup": setup, "seconds": seconds, "note": note}
    ROWS.append(r)
    print(f"{notebook} | {experiment} | lesson {lesson} | learnloop {ours} | {setup} | {seconds:.0f} s" + (f" | {note}" if note else ""), flush=True)


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def accuracy_of(learn: ll.Learner) -> float:
    return learn.recorder.history[-1]["accuracy"]
