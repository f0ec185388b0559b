"""Callbacks that change hyper-parameters during training: our annealers or torch's schedulers."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch

from ..events import Callback
from ..loop import BaseLearner
from .annealers import Schedule
from .hypers import hyper_names, set_hyper

__all__ = ["ParamScheduler", "TorchScheduler"]


class ParamScheduler(Callback):
    """Before each training batch, sets each named hyper-parameter from its schedule at the
    current training position `learn.pct_train` (batches done / batches in the whole fit).

    Args:
        scheds: `{'lr': sched, 'mom': sched, ...}`; a value may be one schedule for every param
            group or a list with one per group (discriminative learning rates). Names: lr, mom
            (torch's momentum or betas[0]), sqr_mom (betas[1] or RMSprop's alpha), wd
            (weight_decay), eps.
    """

    order = 20  # before the Recorder (50) reads the values it sets
    run_valid = False

    def __init__(self, scheds: Mapping[str, Schedule | Sequence[Schedule]]):
        if not scheds:
            raise ValueError("ParamScheduler needs at least one schedule, e.g. {'lr': sched_cos(1e-2, 1e-4)}.")
        for name, sched in dict(scheds).items():
            many = isinstance(sched, Sequence) and not isinstance(sched, str)
            if not (callable(sched) or (many and sched and all(callable(s) for s in sched))):
                raise TypeError(
                    f"ParamScheduler: {name!r} must be a schedule, a function of the position in the fit (0 to 1) such as "
                    f"sched_lin(0.1, 0.01), or a list of them, one per param group; got {sched!r}. For a constant, use "
                    "sched_no(v, v), or set it on the optimizer."
                )
        self.scheds = dict(scheds)

    def before_fit(self, learn: BaseLearner) -> None:
        groups = learn.opt.param_groups
        self._per_group: dict[str, list[Schedule]] = {}
        have = hyper_names(groups[0])
        for name, sched in self.scheds.items():
            if name not in have:
                raise ValueError(f"ParamScheduler: the optimizer has no {name!r}; it has {have}.")
            if callable(sched):
                self._per_group[name] = [sched] * len(groups)
            elif len(sched) == len(groups):
                self._per_group[name] = list(sched)
            else:
                raise ValueError(
                    f"ParamScheduler: {name!r} has {len(sched)} schedules but the optimizer has {len(groups)} param groups; "
                    "give one schedule, or one per group."
                )
        self._set(learn)

    def _set(self, learn: BaseLearner) -> None:
        pos = learn.pct_train
        for name, scheds in self._per_group.items():
            for group, sched in zip(learn.opt.param_groups, scheds):
                set_hyper(group, name, sched(pos))

    def before_batch(self, learn: BaseLearner) -> None:
        self._set(learn)

    def state_dict(self) -> dict[str, Any]:
        return {"names": list(self.scheds)}


class TorchScheduler(Callback):
    """Steps a `torch.optim.lr_scheduler` scheduler every batch or every epoch.

    Args:
        scheduler: a scheduler already built on `learn.opt`, or a function or class
            `opt -> scheduler` (the learner creates its optimizer at the first fit, so a
            factory is usually easier).
        interval: 'batch' (after each optimizer step) or 'epoch' (after each epoch).
        monitor: for `ReduceLROnPlateau`, the Recorder's history key it watches (e.g. 'valid_loss').

    The learning rates it sets appear in `learn.recorder.hps` like any other schedule's.
    """

    order = 60  # after the Recorder (50), so an epoch-end step sees the epoch's metrics

    def __init__(self, scheduler: Any | Callable[[torch.optim.Optimizer], Any], interval: str = "batch", monitor: str = "valid_loss"):
        if interval not in ("batch", "epoch"):
            raise ValueError(f"interval must be 'batch' or 'epoch', got {interval!r}.")
        if not (hasattr(scheduler, "step") or callable(scheduler)):
            raise TypeError(f"scheduler must be a scheduler (with step()) or a function opt -> scheduler, got {scheduler!r}.")
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor

    def before_fit(self, learn: BaseLearner) -> None:
        # A class has a `step` attribute too, but it is a factory: build it on learn.opt.
        if isinstance(self.scheduler, type) or not hasattr(self.scheduler, "step"):
            try:
                self.scheduler = self.scheduler(learn.opt)
            except TypeError as e:  # StepLR without its step_size, say
                e.add_note("learnloop: TorchScheduler builds the scheduler as factory(learn.opt); give the other arguments "
                           "with a lambda, e.g. TorchScheduler(lambda opt: StepLR(opt, step_size=10)).")  # fmt: skip
                raise
        if getattr(self.scheduler, "optimizer", learn.opt) is not learn.opt:
            raise ValueError("TorchScheduler: the scheduler drives another optimizer than learn.opt; pass a factory opt -> scheduler.")
        self._plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if self._plateau and self.interval != "epoch":
            raise ValueError("ReduceLROnPlateau watches an epoch metric: use interval='epoch'.")

    def after_step(self, learn: BaseLearner) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def after_epoch(self, learn: BaseLearner) -> None:
        if self.interval != "epoch":
            return
        if self._plateau:
            row = learn.recorder.epoch_row(learn)
            if row is None:
                return  # the epoch was cancelled before it ran: nothing to watch
            if self.monitor not in row:
                raise ValueError(f"TorchScheduler: {self.monitor!r} is not in the Recorder's history; have {list(row)}.")
            self.scheduler.step(row[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()} if hasattr(self.scheduler, "state_dict") else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
