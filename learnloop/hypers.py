"""Old import path: hyper-parameter access now lives in `learnloop.schedule.hypers`."""

from .schedule.hypers import get_hyper, hyper_names, locations, set_hyper

__all__ = ["hyper_names", "get_hyper", "set_hyper", "locations"]
