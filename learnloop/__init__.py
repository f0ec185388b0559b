"""learnloop: a small, fast, readable PyTorch training library built from the foundations."""

from .callbacks import (
    BatchTransform,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    DeviceCallback,
    NonFiniteCheck,
    NonFiniteLossError,
    ProgressBar,
    Recorder,
)
from .callbacks.transforms import Normalize, Reshape
from .data import ArrayDataset, BatchSampler, DataLoader, DataLoaders, RandomSampler, SequentialSampler, collate
from .learner import Learner
from .metrics import AvgMetric, accuracy, error_rate
from .utils import default_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "ArrayDataset",
    "AvgMetric",
    "BatchSampler",
    "BatchTransform",
    "Callback",
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidException",
    "DataLoader",
    "DataLoaders",
    "DeviceCallback",
    "Learner",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "Normalize",
    "ProgressBar",
    "RandomSampler",
    "Recorder",
    "Reshape",
    "SequentialSampler",
    "accuracy",
    "collate",
    "default_device",
    "error_rate",
    "set_seed",
]
