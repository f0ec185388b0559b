"""The data pipeline: datasets, samplers, collate, DataLoader and DataLoaders."""

from .collate import collate
from .dataloaders import DataLoaders
from .dataset import ArrayDataset
from .loader import DataLoader, fetch
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = [
    "ArrayDataset",
    "BatchSampler",
    "DataLoader",
    "DataLoaders",
    "RandomSampler",
    "SequentialSampler",
    "collate",
    "fetch",
]
