"""Callbacks that change how training steps: gradient accumulation."""

from __future__ import annotations

from ..events import Callback, CancelStepException
from ..loop import BaseLearner

__all__ = ["GradientAccumulation"]


class GradientAccumulation(Callback):
    """Steps the optimizer once every `n` training batches, with each loss divided by `n`, so the
    summed gradients are those of one batch `n` times larger: big-batch training in small memory.

    It works by raising `CancelStepException` on the other batches, which skips both the step and
    `zero_grad`, so gradients add up in `.grad`.
    """

    order = 60  # after the Recorder (50) and NonFiniteCheck (55) have seen the unscaled loss
    run_valid = False

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"GradientAccumulation: n (batches per optimizer step) must be a positive int, got {n!r}.")
        self.n = n

    def before_fit(self, learn: BaseLearner) -> None:
        self.count = 0
        learn.opt.zero_grad()  # start from clean gradients

    def after_loss(self, learn: BaseLearner) -> None:
        learn.loss = learn.loss / self.n

    def before_step(self, learn: BaseLearner) -> None:
        self.count += 1
        if self.count % self.n:
            raise CancelStepException

    def will_step(self) -> bool:
        """Whether the current batch completes a window (before_step will let it step)."""
        return (self.count + 1) % self.n == 0

    def state_dict(self) -> dict[str, int]:
        # Where the accumulation window stands (the gradients so far are in the checkpoint too).
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.count = int(state["count"])
