"""The LR finder: sweep the learning rate up exponentially over mini-batches, watch the loss,
suggest learning rates; and the snapshot that puts everything back afterwards."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

from ..checkpoint import rng_state, set_rng_state
from ..distributed import all_reduce_sum, world_size
from ..events import Callback, CancelFitException, CancelValidException
from ..loop import BaseLearner
from ..plots import new_figure, save_figure
from .hypers import set_hyper

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LRFinder", "LRFindResult", "SUGGESTIONS", "Snapshot", "plot_lr_find", "suggest", "useful_stretch"]


class LRFinder(Callback):
    """Sets lr = start_lr * (end_lr / start_lr) ** (i / (num_it - 1)) at training batch i (the
    last of the `num_it` batches runs at end_lr), records the exponentially smoothed loss, and
    stops after `num_it` batches, when the smoothed loss exceeds 4 times its minimum
    (`stop_div`), or when it is no longer finite. No validation."""

    order = 30  # sets lr before the Recorder reads it; stops before NonFiniteCheck (55) would raise
    run_valid = False

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True, beta: float = 0.98):
        if not 0 < start_lr < end_lr:
            raise ValueError(f"Need 0 < start_lr < end_lr, got {start_lr} and {end_lr}.")
        if num_it < 2:
            raise ValueError(f"num_it must be at least 2, got {num_it}.")
        self.start_lr, self.end_lr, self.num_it, self.stop_div, self.beta = start_lr, end_lr, num_it, stop_div, beta

    def before_fit(self, learn: BaseLearner) -> None:
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._avg, self._best, self._i = 0.0, math.inf, 0

    def before_batch(self, learn: BaseLearner) -> None:
        lr = self.start_lr * (self.end_lr / self.start_lr) ** (self._i / (self.num_it - 1))
        for group in learn.opt.param_groups:
            set_hyper(group, "lr", lr)
        self._lr = lr

    def after_loss(self, learn: BaseLearner) -> None:
        # The sweep decides per batch whether to stop (one read-back each); with several
        # processes, on the loss averaged over all of them, so every rank stops together.
        loss = (all_reduce_sum(learn.loss.detach()) / world_size()).item()
        if not math.isfinite(loss):
            raise CancelFitException
        self._i += 1
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta**self._i)
        self.lrs.append(self._lr)
        self.losses.append(smooth)
        self._best = min(self._best, smooth)
        if self.stop_div and smooth > 4 * self._best:
            raise CancelFitException

    def after_batch(self, learn: BaseLearner) -> None:
        if self._i >= self.num_it:
            raise CancelFitException

    def before_validate(self, learn: BaseLearner) -> None:
        raise CancelValidException


# ---- suggestions: each maps (lrs, smoothed losses) to one learning rate ----------------------


def useful_stretch(losses: Sequence[float]) -> tuple[int, int]:
    """(start, best): the part of a sweep worth choosing from. It starts after the smoothing
    warm-up (the first tenth of the points, where the running average is still settling and
    slopes are noise) and ends at the lowest loss (past it the loss climbs towards divergence)."""
    best = min(range(len(losses)), key=losses.__getitem__)
    warm = max(1, len(losses) // 10)
    return (warm if warm < best else 0), best


def suggest_minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A tenth of the lr with the lowest loss (the lowest loss is already on the edge of
    diverging), but not below the useful stretch."""
    start, best = useful_stretch(losses)
    return max(lrs[best] / 10, lrs[start])


def suggest_steep(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The lr where the loss falls fastest per unit of log(lr), within the useful stretch."""
    start, best = useful_stretch(losses)
    if best - start < 2:
        return lrs[start]
    logs = [math.log(lr) for lr in lrs]
    i = min(range(start, best), key=lambda i: (losses[i + 1] - losses[i]) / (logs[i + 1] - logs[i]))
    return lrs[i]


def suggest_valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The middle of the downhill stretch, in log(lr).

    The stretch runs from where the loss has fallen a tenth of the way from its value after the
    warm-up to its minimum (the flat start is over) to the minimum (past which it climbs). Its
    middle is well inside the region where training makes fast progress, yet far from the blow-up.
    """
    start, best = useful_stretch(losses)
    threshold = losses[start] - 0.1 * (losses[start] - losses[best])
    down = next(i for i in range(start, best + 1) if losses[i] <= threshold)
    return lrs[(down + best) // 2]


SUGGESTIONS = {"valley": suggest_valley, "steep": suggest_steep, "minimum": suggest_minimum}


class LRFindResult(NamedTuple):
    """The sweep (learning rates and smoothed losses) and the suggested learning rates by name."""

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float]


def suggest(lrs: Sequence[float], losses: Sequence[float], names: Sequence[str]) -> dict[str, float]:
    unknown = [n for n in names if n not in SUGGESTIONS]
    if unknown:
        raise ValueError(f"Unknown suggestion(s) {unknown}; choose from {list(SUGGESTIONS)}.")
    if len(lrs) < 3:
        raise RuntimeError(f"The LR finder saw only {len(lrs)} batches before the loss diverged; lower start_lr.")
    return {n: SUGGESTIONS[n](lrs, losses) for n in names}


def plot_lr_find(result: LRFindResult, path: str | Path | None = None) -> "Figure":
    """Smoothed loss against learning rate (log scale) with the suggestions marked."""
    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="smoothed loss", title="LR finder")
    if result.losses:
        # Zoom on the useful range: the final blow-up would flatten everything else.
        low, first = min(result.losses), result.losses[0]
        ax.set_ylim(low - 0.05 * (first - low + 1e-8), first + 0.5 * (first - low) + 1e-8)
    for (name, lr), marker in zip(result.suggestions.items(), "o^s"):
        i = min(range(len(result.lrs)), key=lambda k: abs(math.log(result.lrs[k] / lr)))
        ax.plot([lr], [result.losses[i]], marker, label=f"{name}: {lr:.2e}")
    if result.suggestions:
        ax.legend()
    return save_figure(fig, path)


class Snapshot:
    """Everything a trial run (the LR finder) may change, so it can be put back bitwise."""

    def __init__(self, learn: BaseLearner):
        self.model = copy.deepcopy(learn.model.state_dict())
        self.opt = copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None
        self.had_opt = learn.opt is not None
        self.cbs = [(cb, copy.deepcopy(cb.state_dict())) for cb in learn.cbs]
        self.loaders = [(dl, dl.state_dict()) for dl in (learn.dls.train, learn.dls.valid) if hasattr(dl, "state_dict")]
        self.rng = rng_state()  # what a checkpoint saves: torch (and CUDA when in use), numpy, Python
        self.training = learn.model.training

    def restore(self, learn: BaseLearner) -> None:
        learn.model.load_state_dict(self.model)
        learn.model.train(self.training)
        if self.had_opt:
            learn.opt.load_state_dict(self.opt)
        else:
            learn.opt = None
        for cb, state in self.cbs:
            cb.load_state_dict(state)
        for dl, state in self.loaders:
            dl.load_state_dict(state)
        set_rng_state(self.rng)
