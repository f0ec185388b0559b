"""NonFiniteCheck: stop at the first NaN or infinite loss, saying where it happened."""

from __future__ import annotations

import math

import torch

from ..events import Callback
from ..loop import BaseLearner
from ..utils import model_device

__all__ = ["NonFiniteCheck", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; `epoch` and `batch` say where."""

    def __init__(self, epoch: int, batch: int, value: float):
        self.epoch, self.batch, self.value = epoch, batch, value
        super().__init__(
            f"Training loss is {value} at epoch {epoch}, batch {batch}. Lower the learning rate, check the "
            "inputs for NaNs, or check the initialisation; the Recorder keeps the losses up to this point."
        )


class NonFiniteCheck(Callback):
    """Raises `NonFiniteLossError` when a training loss is NaN or infinite.

    On the CPU every loss is checked before its backward pass, so the weights are never touched by
    a bad loss. On an accelerator, reading a loss back forces the host to wait, so losses are
    kept on the device and checked every `every` batches (default 32): the error still names
    the first bad batch, but up to `every - 1` steps may have run after it.
    """

    order = 55  # after the Recorder, so the bad loss is recorded too
    run_valid = False

    def __init__(self, every: int | None = None):
        self.every = every

    def before_train(self, learn: BaseLearner) -> None:
        self._window: list[torch.Tensor] = []
        self._iters: list[int] = []  # the batch number of each loss in the window
        device = model_device(learn.model)
        self._n = self.every or (1 if device is None or device.type == "cpu" else 32)

    def after_loss(self, learn: BaseLearner) -> None:
        if self._n == 1:
            value = learn.loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(learn.epoch, learn.iter, value)
            return
        self._window.append(learn.loss.detach())
        self._iters.append(learn.iter)
        if len(self._window) >= self._n:
            self._check()

    def after_train(self, learn: BaseLearner) -> None:
        if self._window:
            self._check()

    def state_dict(self) -> dict:
        # Losses not yet checked (on an accelerator, up to `every - 1` of them).
        return {"window": list(getattr(self, "_window", [])), "iters": list(getattr(self, "_iters", []))}

    def load_state_dict(self, state: dict) -> None:
        self._window, self._iters = list(state["window"]), list(state["iters"])

    def _check(self) -> None:
        losses, iters = torch.stack(self._window).float(), self._iters
        self._window, self._iters = [], []
        bad = ~torch.isfinite(losses)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise NonFiniteLossError(self.learn.epoch, iters[i], float(losses[i]))
