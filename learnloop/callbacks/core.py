"""Old import path: the callback protocol now lives in `learnloop.events`."""

from ..events import (
    ALIASES,
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    event_handlers,
    sort_callbacks,
)

__all__ = [
    "ALIASES",
    "EVENTS",
    "Callback",
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidException",
    "event_handlers",
    "sort_callbacks",
]
