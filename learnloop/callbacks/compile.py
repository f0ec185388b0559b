"""CompileModel: the model's forward (and its backward) compiled by `torch.compile`; every
callback and the rest of the step stay in eager Python around it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from typing import Any

import torch

from ..events import Callback
from ..loop import BaseLearner
from ..utils import model_device, unwrap_model

__all__ = ["CompileModel", "compile_blocker"]


def compile_blocker(device: torch.device) -> str | None:
    """Why `torch.compile`'s default backend cannot run here, or None when it can (a cheap
    check of what inductor needs: a C++ compiler on the CPU, Triton on CUDA)."""
    if device.type == "cpu":
        cxx = os.environ.get("CXX")
        if not any(shutil.which(c) for c in ([cxx] if cxx else []) + ["g++", "c++", "clang++"]):
            return "no C++ compiler (g++, c++ or clang++) was found, and the CPU backend needs one"
    elif device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "the CUDA backend needs the triton package, which is not installed"
    return None


class CompileModel(Callback):
    """Replaces `learn.model` with `torch.compile(learn.model, mode=mode, dynamic=dynamic)` at
    the first fit, after the model has moved to its device. The compiled module shares the
    original's parameters; checkpoints, `save_model` and `export` store the original's keys (no
    `_orig_mod.` prefix), so files from compiled and eager runs are interchangeable.

    The first batches are slow while the graphs compile (once for training, once for
    evaluation). Where the backend cannot work (no C++ compiler, no Triton), it warns and the
    model stays eager. Forward hooks (`ActivationStats`, `Hooks`) change the compiled graph:
    look inside an eager model, compile for speed.
    """

    order = -90  # after DeviceCallback (-100) has moved the model

    def __init__(self, mode: str | None = None, dynamic: bool | None = None, **options: Any):
        self.mode, self.dynamic, self.options = mode, dynamic, options
        self.compiled = False

    def before_fit(self, learn: BaseLearner) -> None:
        if self.compiled or hasattr(learn.model, "_orig_mod"):
            return
        blocker = compile_blocker(model_device(learn.model) or torch.device("cpu"))
        if blocker is not None:
            warnings.warn(f"CompileModel: {blocker}; training stays eager (uncompiled).", stacklevel=2)
            return
        # Compile what is there, DistributedDataParallel included (torch compiles DDP models whole).
        learn.model = torch.compile(unwrap_model(learn.model, ddp=False), mode=self.mode, dynamic=self.dynamic, **self.options)
        self.compiled = True
