"""Shared fixtures: tiny synthetic loaders and the real MNIST folder (skipped where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import Phase, settings

from learnloop import DataLoaders

# The project's shared data sits beside the checkout; LEARNLOOP_SHARED_DATA points elsewhere.
SHARED = Path(os.environ.get("LEARNLOOP_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
MNIST_DIR = SHARED / "mnist"
FASHION_DIR = SHARED / "fashion-mnist"


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {MNIST_DIR} (the project's ../shared/data); CI provides it")
    return MNIST_DIR


@pytest.fixture
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real Fashion-MNIST not found at {FASHION_DIR}; CI provides it")
    return FASHION_DIR


def tiny_dls(n_train: int = 6, n_valid: int = 4, bs: int = 2, n_in: int = 4, n_out: int = 3, seed: int = 0) -> DataLoaders:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, n_in, generator=g)
    y = torch.randint(0, n_out, (n_train + n_valid,), generator=g)
    return DataLoaders.from_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], batch_size=bs, seed=seed)


# Property tests draw the same examples on every run, so CI cannot flake on a lucky draw;
# run with HYPOTHESIS_PROFILE=explore to search new ones.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=500, deadline=None)
# Mutation runs: a failing example is enough, so no shrinking (which made mutants time out).
settings.register_profile("mutation", derandomize=True, deadline=None, max_examples=25, phases=[Phase.explicit, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
