"""Old import path: the LR finder now lives in `learnloop.schedule.lr_finder`."""

from ..schedule.lr_finder import SUGGESTIONS, LRFinder, LRFindResult, plot_lr_find, suggest

__all__ = ["LRFinder", "LRFindResult", "SUGGESTIONS", "plot_lr_find", "suggest"]
