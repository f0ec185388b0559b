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

    def __init__(self, epoch: int, batch: int, value: float, what: str = "Training loss"):
        self.epoch, self.batch, self.value = epoch, batch, value
        shown = f"{what} is {value}" if what == "Training loss" else f"{what} is not finite"
        super().__init__(
            f"{shown} at epoch {epoch}, batch {batch}, before the optimizer step (the weights are untouched). Lower the "
            "learning rate, check the inputs for NaNs, or check the initialisation; the Recorder keeps the losses up to this point."
        )


class NonFiniteCheck(Callback):
    """Raises `NonFiniteLossError` when a training loss is NaN or infinite (and, with
    `check_grads=True`, when a gradient is, before the optimizer step).

    On the CPU every loss is checked before its backward pass, so the weights are never touched by
    a bad loss. On an accelerator, reading a loss back forces the host to wait, so losses are
    kept on the device and checked every `every` batches (default 32): the error still names
    the first bad batch, but up to `every - 1` steps may have run after it.
    """

    order = 55  # after the Recorder, so the bad loss is recorded too
    run_valid = False

    def __init__(self, every: int | None = None, check_grads: bool = False):
        self.every, self.check_grads = every, check_grads

    def before_step(self, learn: BaseLearner) -> None:
        # With check_grads: a finite loss can still give inf gradients (an overflow in backward);
        # look before the step so they never reach the weights. One host sync per step.
        if self.check_grads:
            grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
            if grads and not torch.isfinite(torch.stack([g.detach().float().abs().max() for g in grads])).all():
                bad = next(n for n, p in learn.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all())
                raise NonFiniteLossError(learn.epoch, learn.iter, float("nan"), what=f"the gradient of {bad}")

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
