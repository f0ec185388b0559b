"""learnloop: a small, fast, readable PyTorch training library built from the foundations."""

from . import datasets, diagnostics, hooks, init, layers, losses, norm, optim, schedule
from .callbacks import (
    ActivationStats,
    BatchTransform,
    Checkpoint,
    CompileModel,
    DeviceCallback,
    DistributedTrainer,
    EarlyStopping,
    GradientAccumulation,
    GradientClip,
    MixedPrecision,
    NonFiniteCheck,
    NonFiniteLossError,
    ProgressBar,
    Recorder,
    SaveBest,
)
from .callbacks.transforms import Normalize, Reshape
from .checkpoint import load_model, save_model
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
from .events import (
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
from .export import Predictor, load_learner
from .hooks import Hook, Hooks, find_modules, model_summary
from .init import init_model, lsuv_init
from .layers import GeneralRelu
from .learner import Learner
from .loop import BaseLearner
from .metrics import AvgMetric, accuracy, error_rate
from .schedule import (
    LRFinder,
    ParamScheduler,
    TorchScheduler,
    combine_scheds,
    cos_1cycle_anneal,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
    sched_poly,
)
from .utils import default_device, set_seed
from .version import __version__ as __version__

__all__ = [
    # submodules
    "datasets",
    "diagnostics",
    "hooks",
    "init",
    "layers",
    "losses",
    "norm",
    "optim",
    "schedule",
    # names
    "ActivationStats",
    "ArrayDataset",
    "AvgMetric",
    "BaseLearner",
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
    "Checkpoint",
    "CompileModel",
    "DataLoader",
    "DataLoaders",
    "DeviceCallback",
    "DistributedTrainer",
    "EarlyStopping",
    "EVENTS",
    "GeneralRelu",
    "GradientAccumulation",
    "GradientClip",
    "Hook",
    "Hooks",
    "LRFinder",
    "Learner",
    "MixedPrecision",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "Normalize",
    "ParamScheduler",
    "Predictor",
    "ProgressBar",
    "RandomSampler",
    "Recorder",
    "Reshape",
    "SaveBest",
    "SequentialSampler",
    "TorchScheduler",
    "accuracy",
    "collate",
    "combine_scheds",
    "cos_1cycle_anneal",
    "default_device",
    "error_rate",
    "find_modules",
    "init_model",
    "init_report",
    "layer_stats",
    "load_learner",
    "load_model",
    "lsuv_init",
    "model_summary",
    "sched_cos",
    "sched_exp",
    "sched_lin",
    "sched_no",
    "sched_poly",
    "save_model",
    "set_seed",
]
