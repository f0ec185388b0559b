"""Callbacks: each tweak of the training loop in its own class."""

from .core import (
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
)
from .device import DeviceCallback
from .guards import NonFiniteCheck, NonFiniteLossError
from .lr_finder import LRFinder
from .progress import ProgressBar
from .recorder import Recorder
from .schedule import ParamScheduler, TorchScheduler
from .telemetry import ActivationStats
from .training import GradientAccumulation
from .transforms import BatchTransform

__all__ = [
    "ALIASES",
    "ActivationStats",
    "EVENTS",
    "BatchTransform",
    "Callback",
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidException",
    "DeviceCallback",
    "GradientAccumulation",
    "LRFinder",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "ParamScheduler",
    "ProgressBar",
    "Recorder",
    "TorchScheduler",
]
