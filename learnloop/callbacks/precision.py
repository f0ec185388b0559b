"""Mixed precision and gradient clipping: callbacks around the step, the loop untouched."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..events import Callback, CancelStepException
from ..loop import BaseLearner
from ..utils import model_device
from .training import GradientAccumulation

__all__ = ["MixedPrecision", "GradientClip"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _grads(learn: BaseLearner) -> list[torch.Tensor]:
    return [p.grad for p in learn.model.parameters() if p.grad is not None]


class MixedPrecision(Callback):
    """Runs `predict` and `get_loss` under `torch.autocast` in `dtype` ('bf16' or 'fp16').

    bf16 needs no loss scaling and works on the CPU and on CUDA. fp16 uses a
    `torch.amp.GradScaler`: the loss is scaled before backward; gradients are unscaled before
    anything reads them (right after backward, or just before the step when gradients
    accumulate over several batches); a step whose gradients overflowed is skipped through
    `CancelStepException` (so `after_cancel_step` fires; `overflow_steps` counts them) and the
    scale shrinks. fp16 on the CPU works but is slow: it is for testing; use bf16 there.

    The prediction is handed on as float32, so metrics, `get_preds` and the Recorder see fp32;
    the loss is float32 because autocast computes losses in fp32. The scaler's state is part of
    the callback's `state_dict`, so checkpoints resume it.
    """

    order = 65  # after GradientAccumulation (60) decides whether a step happens; before clipping (80)

    def __init__(self, dtype: str = "bf16", device_type: str | None = None):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'bf16' or 'fp16', got {dtype!r}.")
        self.dtype, self.device_type = dtype, device_type
        self.scaler: torch.amp.GradScaler | None = None
        self._autocast: Any = None
        self.overflow_steps = 0

    def before_fit(self, learn: BaseLearner) -> None:
        device = self.device_type or (model_device(learn.model) or torch.device("cpu")).type
        if device not in ("cpu", "cuda"):
            raise ValueError(f"MixedPrecision supports the CPU and CUDA, not {device!r}.")
        if self.dtype == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("This GPU does not support bf16; use MixedPrecision('fp16').")
        if self.dtype == "fp16" and device == "cpu":
            warnings.warn("fp16 on the CPU is slow and meant for testing; bf16 is the CPU's mixed precision.", stacklevel=2)
        self._device = device
        if self.dtype == "fp16" and self.scaler is None:
            self.scaler = torch.amp.GradScaler(device)
        # With accumulation the scaled gradients add up over several batches: unscale once, before the step.
        self._defer_unscale = any(isinstance(cb, GradientAccumulation) for cb in learn.cbs)
        self._unscaled = False

    def before_batch(self, learn: BaseLearner) -> None:
        self._autocast = torch.autocast(self._device, dtype=_DTYPES[self.dtype])
        self._autocast.__enter__()

    def after_pred(self, learn: BaseLearner) -> None:
        if isinstance(learn.pred, torch.Tensor) and learn.pred.is_floating_point():
            learn.pred = learn.pred.float()

    def _leave_autocast(self, learn: BaseLearner) -> None:
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    after_loss = _leave_autocast
    after_batch = _leave_autocast  # a batch cancelled, or without targets, before its loss
    after_fit = _leave_autocast  # an error mid-batch

    def before_backward(self, learn: BaseLearner) -> None:
        if self.scaler is not None:
            learn.loss = self.scaler.scale(learn.loss)

    def after_backward(self, learn: BaseLearner) -> None:
        if self.scaler is not None and not self._defer_unscale:
            self._unscale(learn)

    def _unscale(self, learn: BaseLearner) -> None:
        if not self._unscaled:
            self.scaler.unscale_(learn.opt)
            self._unscaled = True

    def before_step(self, learn: BaseLearner) -> None:
        if self.scaler is None:
            return
        self._unscale(learn)
        norm = torch.nn.utils.get_total_norm(_grads(learn), norm_type=math.inf)
        if not torch.isfinite(norm):  # overflow: skip this step, shrink the scale, start clean
            self.scaler.update()
            self._unscaled = False
            learn.opt.zero_grad()
            self.overflow_steps += 1
            raise CancelStepException

    def after_step(self, learn: BaseLearner) -> None:
        if self.scaler is not None and self._unscaled:  # the step ran on unscaled gradients
            self.scaler.update()
            self._unscaled = False

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None, "overflow_steps": self.overflow_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.overflow_steps = int(state["overflow_steps"])
        if state["scaler"] is not None:
            if self.scaler is None:
                self.scaler = torch.amp.GradScaler(self.device_type or "cpu")
            self.scaler.load_state_dict(state["scaler"])


class GradientClip(Callback):
    """Clips gradients just before each optimizer step: to total norm `max_norm` (in `norm_type`)
    or, with `clip_value`, each gradient element to [-clip_value, clip_value].

    It runs after mixed precision has unscaled the gradients and after gradient accumulation has
    decided that this batch steps, so it clips once per real step, on the accumulated, unscaled
    gradients. The pre-clip total norm goes to the Recorder as 'grad_norm' (see
    `recorder.logs`, `plot_sched` and the per-epoch mean in `history`).
    """

    order = 80  # after MixedPrecision (65) unscales

    def __init__(self, max_norm: float | None = 1.0, norm_type: float = 2.0, clip_value: float | None = None):
        if clip_value is not None:
            max_norm = None
        for what, v in (("max_norm", max_norm), ("clip_value", clip_value)):
            if v is not None and (not isinstance(v, (int, float)) or not v > 0):
                raise ValueError(f"{what} must be a positive number, got {v!r}.")
        if max_norm is None and clip_value is None:
            raise ValueError("Give max_norm or clip_value.")
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
            raise ValueError(f"norm_type must be a positive number (2.0: the Euclidean norm, float('inf'): the largest entry), got {norm_type!r}.")
        self.max_norm, self.norm_type, self.clip_value = max_norm, norm_type, clip_value

    def before_step(self, learn: BaseLearner) -> None:
        params = [p for p in learn.model.parameters() if p.grad is not None]
        if not params:
            return
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type=self.norm_type)
        recorder = getattr(learn, "recorder", None)
        if recorder is not None:
            recorder.log("grad_norm", norm)
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
        else:
            torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, norm)
