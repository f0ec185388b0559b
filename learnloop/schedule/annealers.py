"""Annealers: hyper-parameter values as functions of the training position `pos` in [0, 1].

    sched = combine_scheds([0.3, 0.7], [sched_cos(0.3, 0.6), sched_cos(0.6, 0.2)])
    sched(0.0), sched(0.3), sched(1.0)   # 0.3, 0.6, 0.2

Each `sched_*(start, end)` returns a function of `pos`; `annealer` turns any `f(start, end, pos)`
into such a factory, so users can write their own. `combine_scheds` strings schedules into phases.
"""

from __future__ import annotations

import bisect
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..plots import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Schedule",
    "annealer",
    "sched_lin",
    "sched_cos",
    "sched_no",
    "sched_exp",
    "sched_poly",
    "combine_scheds",
    "cos_1cycle_anneal",
    "plot_schedule",
]

Schedule = Callable[[float], float]


def annealer(f: Callable[..., float]) -> Callable[..., Schedule]:
    """Decorator: `f(start, end, pos, *args)` -> a factory `g(start, end, *args)` returning `pos -> value`."""

    @functools.wraps(f)
    def factory(start: float, end: float, *args: float) -> Schedule:
        return functools.partial(_at, f, start, end, args)

    return factory


def _at(f: Callable[..., float], start: float, end: float, args: tuple, pos: float) -> float:
    return f(start, end, pos, *args)


@annealer
def sched_lin(start: float, end: float, pos: float) -> float:
    """Straight line from start to end."""
    return start + pos * (end - start)


@annealer
def sched_cos(start: float, end: float, pos: float) -> float:
    """Half a cosine: flat at both ends, steepest in the middle."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


@annealer
def sched_no(start: float, end: float, pos: float) -> float:
    """Constant at start."""
    return start


@annealer
def sched_exp(start: float, end: float, pos: float) -> float:
    """Geometric: equal ratios in equal steps (start and end must be positive)."""
    if start <= 0 or end <= 0:
        raise ValueError(f"sched_exp needs positive start and end, got {start} and {end}.")
    return start * (end / start) ** pos


@annealer
def sched_poly(start: float, end: float, pos: float, power: float) -> float:
    """start + (end - start) * pos**power."""
    return start + (end - start) * pos**power


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    """Phases: phase i takes fraction `pcts[i]` of training and runs `scheds[i]` from 0 to 1 over it."""
    pcts, scheds = list(pcts), list(scheds)
    if len(pcts) != len(scheds) or not pcts:
        raise ValueError(f"combine_scheds needs one fraction per schedule, got {len(pcts)} fractions and {len(scheds)} schedules.")
    if any(p < 0 for p in pcts):
        raise ValueError(f"combine_scheds: fractions must be >= 0, got {pcts}.")
    if not math.isclose(sum(pcts), 1.0, abs_tol=1e-6):
        raise ValueError(f"combine_scheds: fractions must sum to 1, got {pcts} (sum {sum(pcts)}).")
    bounds = [0.0]
    for p in pcts:
        bounds.append(bounds[-1] + p)
    return functools.partial(_combined, bounds, scheds)


def _combined(bounds: list[float], scheds: list[Schedule], pos: float) -> float:
    if pos >= 1.0:
        return scheds[-1](1.0)
    # The phase whose [start, end) holds pos; zero-length phases are never selected.
    i = min(bisect.bisect_right(bounds, max(pos, 0.0)) - 1, len(scheds) - 1)
    width = bounds[i + 1] - bounds[i]
    return scheds[i]((pos - bounds[i]) / width if width > 0 else 1.0)


def cos_1cycle_anneal(start: float, high: float, end: float) -> list[Schedule]:
    """The two halves of a cosine one-cycle: start -> high, then high -> end."""
    return [sched_cos(start, high), sched_cos(high, end)]


def plot_schedule(sched: Schedule, n: int = 200, path: str | Path | None = None, title: str = "") -> "Figure":
    """The schedule over pos in [0, 1]; saved as PNG when `path` is given."""
    xs = [i / (n - 1) for i in range(n)]
    fig = new_figure(5, 3.5)
    ax = fig.add_subplot()
    ax.plot(xs, [sched(x) for x in xs])
    ax.set(xlabel="training position", title=title)
    return save_figure(fig, path)
