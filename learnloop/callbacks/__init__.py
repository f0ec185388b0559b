"""Callbacks: each tweak of the training loop in its own class, one file per family.

The protocol (`Callback`, the events, the cancellation exceptions) lives in `learnloop.events`
and the scheduling callbacks in `learnloop.schedule`; both are re-exported here.
"""

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
)
from ..schedule import LRFinder, ParamScheduler, TorchScheduler
from .checkpoint import Checkpoint, EarlyStopping, SaveBest
from .compile import CompileModel
from .device import DeviceCallback
from .distributed import DistributedTrainer
from .guards import NonFiniteCheck, NonFiniteLossError
from .loggers import CSVLogger, JSONLinesLogger, TensorBoardLogger
from .mixup import CutMix, MixUp
from .precision import GradientClip, MixedPrecision
from .progress import ProgressBar
from .recorder import Recorder
from .telemetry import ActivationStats
from .training import GradientAccumulation
from .transforms import BatchTransform

__all__ = [
    "ALIASES",
    "ActivationStats",
    "EVENTS",
    "BatchTransform",
    "CSVLogger",
    "Checkpoint",
    "CompileModel",
    "CutMix",
    "Callback",
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidException",
    "DeviceCallback",
    "DistributedTrainer",
    "EarlyStopping",
    "GradientAccumulation",
    "GradientClip",
    "JSONLinesLogger",
    "LRFinder",
    "MixedPrecision",
    "MixUp",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "ParamScheduler",
    "ProgressBar",
    "Recorder",
    "SaveBest",
    "TensorBoardLogger",
    "TorchScheduler",
]
