"""DeviceCallback: put the model and every batch on one device."""

from __future__ import annotations

import torch

from ..events import Callback
from ..loop import BaseLearner
from ..utils import default_device, model_device, to_device

__all__ = ["DeviceCallback", "move_model"]


def _move_state(opt: torch.optim.Optimizer | None, device: torch.device) -> None:
    # Per-parameter state follows its parameter; 0-d entries (torch's step counts) stay on the CPU.
    for state in (opt.state.values() if opt is not None else ()):
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.ndim > 0 and v.device != device:
                state[k] = v.to(device)


def move_model(model: torch.nn.Module, opt: torch.optim.Optimizer | None, device: torch.device) -> None:
    """Move `model` (and `opt`'s state tensors) to `device`, all or nothing.

    If any part fails (out of memory, say), what was moved goes back, so no model is left
    half on one device and half on another.
    """
    src = model_device(model)
    if src is None or src == device:
        return
    try:
        model.to(device)
        _move_state(opt, device)
    except Exception as e:
        model.to(src)
        _move_state(opt, src)
        raise RuntimeError(f"Could not move the model to {device} ({e}); it was left on {src}.") from e


class DeviceCallback(Callback):
    """Moves the model to `device` before fitting or evaluating, and each batch before it is used."""

    order = -100  # before anything that looks at the batch

    def __init__(self, device: torch.device | str | None = None):
        try:
            self.device = torch.device(device) if device is not None else default_device()
        except (RuntimeError, TypeError) as e:  # torch's message lists twenty device types
            raise ValueError(f"device {device!r} is not a torch device: use 'cpu', 'cuda', 'cuda:1', 'mps', or None for the best available.") from e
        self.name = "device_cb"  # `learn.device` is the torch.device itself
        # Host-to-GPU copies can overlap compute; to the CPU there is nothing to overlap.
        self.non_blocking = self.device.type == "cuda"
        self._concrete = self.device

    def before_fit(self, learn: BaseLearner) -> None:
        move_model(learn.model, learn.opt, self.device)
        # 'cuda' means 'cuda:<current>': compare batches against the concrete device.
        self._concrete = model_device(learn.model) or self.device

    before_validate = before_fit

    def before_batch(self, learn: BaseLearner) -> None:
        xb, yb, here = learn.xb, learn.yb, self._concrete
        # The common case, tensors already there, costs two device reads: this runs every batch.
        if isinstance(xb, torch.Tensor) and isinstance(yb, torch.Tensor) and xb.device == here and yb.device == here:
            return
        learn.xb, learn.yb = to_device(xb, self.device, self.non_blocking), to_device(yb, self.device, self.non_blocking)

    def __repr__(self) -> str:
        return f"DeviceCallback({self.device})"
