"""Scheduling: hyper-parameters as functions of training progress, the callbacks that apply them,
the fit recipes built on them, and the LR finder.

- `annealers`: `sched_lin`, `sched_cos`, ... and `combine_scheds` (pure functions of `pos`).
- `hypers`: one vocabulary (lr, mom, sqr_mom, wd, eps) over every optimizer's param groups.
- `schedulers`: `ParamScheduler` (our annealers) and `TorchScheduler` (torch's schedulers).
- `lr_finder`: `LRFinder`, its suggestions and plot, and the `Snapshot` that undoes a trial run.
- `recipes`: `FitRecipes` (`fit_one_cycle`, `fit_flat_cos`, `fit_sgdr`, `lr_find`), mixed into `Learner`.
"""

from .annealers import (
    Schedule,
    annealer,
    combine_scheds,
    cos_1cycle_anneal,
    plot_schedule,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
    sched_poly,
)
from .hypers import get_hyper, hyper_names, set_hyper
from .lr_finder import SUGGESTIONS, LRFinder, LRFindResult, plot_lr_find
from .recipes import FitRecipes
from .schedulers import ParamScheduler, TorchScheduler

__all__ = [
    "FitRecipes",
    "LRFindResult",
    "LRFinder",
    "ParamScheduler",
    "SUGGESTIONS",
    "Schedule",
    "TorchScheduler",
    "annealer",
    "combine_scheds",
    "cos_1cycle_anneal",
    "get_hyper",
    "hyper_names",
    "plot_lr_find",
    "plot_schedule",
    "sched_cos",
    "sched_exp",
    "sched_lin",
    "sched_no",
    "sched_poly",
    "set_hyper",
]
