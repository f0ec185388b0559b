"""Fit recipes built on `fit`: one-cycle, flat-then-cosine, SGDR, and the LR finder.

They reach the loop only through `fit`, `create_opt` and callbacks; `Learner` inherits them
from `FitRecipes`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..checks import check_lr, check_pct
from ..events import Callback
from ..loop import BaseLearner
from .annealers import Schedule, combine_scheds, sched_cos, sched_no
from .hypers import get_hyper, hyper_names, set_hyper
from .lr_finder import LRFinder, LRFindResult, Snapshot, plot_lr_find
from .lr_finder import suggest as suggest_lrs
from .schedulers import ParamScheduler

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FitRecipes"]


def _per_group(value: float | Sequence[float], n_groups: int, what: str) -> list[float]:
    check_lr(value, what)
    if isinstance(value, (int, float)):
        return [float(value)] * n_groups
    values = [float(v) for v in value]
    if len(values) != n_groups:
        raise ValueError(f"{what}: got {len(values)} values for {n_groups} param groups; give one, or one per group.")
    return values


class FitRecipes:
    """`fit_one_cycle`, `fit_flat_cos`, `fit_sgdr`, `lr_find` and `plot_lr_find`, mixed into `Learner`.

    The `fit_*` recipes take `resume=` as `Learner.fit` does: call the recipe the way the run
    was started and it continues from the checkpoint."""

    def _peak_lrs(self: BaseLearner, lr: float | Sequence[float] | None, reset_opt: bool, what: str) -> list[float]:
        # Schedules are built per param group, so the optimizer must exist first.
        if reset_opt or self.opt is None:
            self.create_opt()
        return _per_group(self.lr if lr is None else lr, len(self.opt.param_groups), what)

    def _schedule_fit(self: BaseLearner, n_epochs: int, scheds: dict[str, Any], wd: float | None, cbs: Iterable[Callback] | None, resume: Any) -> None:
        if wd is not None:
            for group in self.opt.param_groups:
                set_hyper(group, "wd", wd)
        self.fit(n_epochs, cbs=[ParamScheduler(scheds), *(cbs or [])], resume=resume)

    def fit_one_cycle(
        self: BaseLearner,
        n_epochs: int,
        lr_max: float | Sequence[float] | None = None,
        div: float = 25.0,
        div_final: float = 1e5,
        pct_start: float = 0.25,
        moms: tuple[float, float, float] | None = (0.95, 0.85, 0.95),
        wd: float | None = None,
        cbs: Iterable[Callback] | None = None,
        reset_opt: bool = False,
        resume: str | Path | bool | None = None,
    ) -> None:
        """One-cycle training: lr warms up from lr_max/div to lr_max over `pct_start` of the fit
        (cosine), then anneals to lr_max/div_final; momentum moves the opposite way through `moms`.

        `lr_max` may be a list, one per param group. Momentum is scheduled only where the optimizer
        uses it (Adam's betas, or SGD created with momentum > 0); `moms=None` leaves it alone.
        """
        check_pct(pct_start)
        tops = self._peak_lrs(lr_max, reset_opt, "lr_max")
        groups = self.opt.param_groups
        phases = [pct_start, 1 - pct_start]
        scheds: dict[str, Any] = {
            "lr": [combine_scheds(phases, [sched_cos(top / div, top), sched_cos(top, top / div_final)]) for top in tops]
        }
        if moms is not None and "mom" in hyper_names(groups[0]) and get_hyper(groups[0], "mom") > 0:
            scheds["mom"] = combine_scheds(phases, [sched_cos(moms[0], moms[1]), sched_cos(moms[1], moms[2])])
        self._schedule_fit(n_epochs, scheds, wd, cbs, resume)

    def fit_flat_cos(
        self: BaseLearner,
        n_epochs: int,
        lr: float | Sequence[float] | None = None,
        pct_start: float = 0.75,
        wd: float | None = None,
        cbs: Iterable[Callback] | None = None,
        reset_opt: bool = False,
        resume: str | Path | bool | None = None,
    ) -> None:
        """Constant lr for `pct_start` of the fit, then a cosine anneal to zero."""
        check_pct(pct_start)
        tops = self._peak_lrs(lr, reset_opt, "lr")
        lr_scheds: list[Schedule] = [combine_scheds([pct_start, 1 - pct_start], [sched_no(t, t), sched_cos(t, 0.0)]) for t in tops]
        self._schedule_fit(n_epochs, {"lr": lr_scheds}, wd, cbs, resume)

    def fit_sgdr(
        self: BaseLearner,
        n_cycles: int,
        cycle_len: int = 1,
        lr_max: float | Sequence[float] | None = None,
        cycle_mult: int = 2,
        wd: float | None = None,
        cbs: Iterable[Callback] | None = None,
        reset_opt: bool = False,
        resume: str | Path | bool | None = None,
    ) -> None:
        """SGD with warm restarts (Loshchilov & Hutter): `n_cycles` cosine anneals from lr_max to 0,
        the first `cycle_len` epochs long and each next one `cycle_mult` times longer."""
        if n_cycles < 1 or cycle_len < 1 or cycle_mult < 1:
            raise ValueError("n_cycles, cycle_len and cycle_mult must all be at least 1.")
        tops = self._peak_lrs(lr_max, reset_opt, "lr_max")
        lengths = [cycle_len * cycle_mult**i for i in range(n_cycles)]
        total = sum(lengths)
        scheds = [combine_scheds([n / total for n in lengths], [sched_cos(t, 0.0)] * n_cycles) for t in tops]
        self._schedule_fit(total, {"lr": scheds}, wd, cbs, resume)

    def lr_find(
        self: BaseLearner,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_it: int = 100,
        stop_div: bool = True,
        suggest: Sequence[str] = ("valley", "steep", "minimum"),
    ) -> dict[str, float]:
        """Sweep the learning rate exponentially from `start_lr` to `end_lr` over `num_it`
        training batches and return suggested learning rates by name.

        Afterwards the model, optimizer, callbacks' state, RNGs and data-loader positions are
        exactly what they were before. `plot_lr_find()` draws the sweep.
        """
        finder = LRFinder(start_lr, end_lr, num_it, stop_div)
        snapshot = Snapshot(self)
        try:
            self.fit(math.ceil(num_it / len(self.dls.train)), cbs=[finder])
        finally:
            snapshot.restore(self)
        self.lr_find_result = LRFindResult(finder.lrs, finder.losses, suggest_lrs(finder.lrs, finder.losses, suggest))
        return dict(self.lr_find_result.suggestions)

    def plot_lr_find(self: BaseLearner, path: str | Path | None = None) -> "Figure":
        """The last `lr_find` sweep: smoothed loss against learning rate, suggestions marked."""
        result = getattr(self, "lr_find_result", None)
        if result is None:
            raise RuntimeError("Run learn.lr_find() first.")
        return plot_lr_find(result, path)

