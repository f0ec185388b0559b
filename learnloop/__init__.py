"""learnloop: a small, fast, readable PyTorch training library built from the foundations."""

from . import datasets, diagnostics, init, layers, losses, schedule
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
    LRFinder,
    NonFiniteCheck,
    NonFiniteLossError,
    ParamScheduler,
    ProgressBar,
    Recorder,
    TorchScheduler,
)
from .callbacks.transforms import Normalize, Reshape
from .data import (
    ArrayDataset,
    BatchSampler,
    DataLoader,
    DataLoaders,
    RandomSampler,
    SequentialSampler,
    collate,
)
from .diagnostics import init_report, layer_stats
from .init import init_model, lsuv_init
from .learner import Learner
from .metrics import AvgMetric, accuracy, error_rate
from .schedule import (
    combine_scheds,
    cos_1cycle_anneal,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
    sched_poly,
)
from .utils import default_device, set_seed

__version__ = "0.1.0"

__all__ = [
    # submodules
    "datasets",
    "diagnostics",
    "init",
    "layers",
    "losses",
    "schedule",
    # names
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
    "LRFinder",
    "Learner",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "Normalize",
    "ParamScheduler",
    "ProgressBar",
    "RandomSampler",
    "Recorder",
    "Reshape",
    "SequentialSampler",
    "TorchScheduler",
    "accuracy",
    "collate",
    "combine_scheds",
    "cos_1cycle_anneal",
    "default_device",
    "error_rate",
    "init_model",
    "init_report",
    "layer_stats",
    "lsuv_init",
    "sched_cos",
    "sched_exp",
    "sched_lin",
    "sched_no",
    "sched_poly",
    "set_seed",
]
