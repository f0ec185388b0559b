"""Old import path: the scheduler callbacks now live in `learnloop.schedule.schedulers`."""

from ..schedule.schedulers import ParamScheduler, TorchScheduler

__all__ = ["ParamScheduler", "TorchScheduler"]
