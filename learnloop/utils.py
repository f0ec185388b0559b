"""Small helpers shared across the package: seeding, devices, mapping over nested batches."""

from __future__ import annotations

import numbers
import random
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

__all__ = ["writable_path", "set_seed", "step_generator", "default_device", "model_device", "unwrap_model", "to_device", "apply_to_tensors", "snake_case", "evaluating"]


def writable_path(path: str | Path) -> Path:
    """`path` as a Path, once its folder is known to exist: writers fail here with the folder's
    name, not later with an error about a temporary file or none at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    return path


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs (all devices), so a CPU run repeats bitwise.

    learnloop's samplers draw their own seed from torch's RNG when none is given, so this one
    call also fixes the batch order.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"set_seed takes an int, got {seed!r} ({type(seed).__name__}).")
    seed = int(seed)  # numpy's integers too: Python's random.seed takes only int
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for one training step: its draws depend on (seed, step) only, so a resumed
    run repeats them and nothing else's random stream moves."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: torch.nn.Module) -> torch.device | None:
    """The device of the model's first parameter (None for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else None


def unwrap_model(model: torch.nn.Module, ddp: bool = True) -> torch.nn.Module:
    """The user's module inside the wrappers learnloop may put around it: `torch.compile`'s and
    (with `ddp`) DistributedDataParallel's. Its parameters and state_dict keys are the user's."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif ddp and isinstance(model, DistributedDataParallel):
            model = model.module
        else:
            return model


def apply_to_tensors(fn: Callable[[torch.Tensor], Any], obj: Any) -> Any:
    """Apply `fn` to every tensor inside nested tuples, lists and dicts; keep everything else."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: apply_to_tensors(fn, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = [apply_to_tensors(fn, v) for v in obj]
        if hasattr(obj, "_fields"):  # namedtuple
            return type(obj)(*out)
        return type(obj)(out)
    return obj


def to_device(obj: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) batch to `device`."""
    return apply_to_tensors(lambda t: t.to(device, non_blocking=non_blocking), obj)


def snake_case(name: str) -> str:
    """'ProgressBar' -> 'progress_bar', 'LRFinder' -> 'lr_finder'."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` in eval mode without gradients for the block; its own mode comes back after,
    even when the block raises."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
