"""BatchTransform: change each batch on its way into the model (normalise, reshape, augment)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..events import Callback
from ..loop import BaseLearner

__all__ = ["BatchTransform", "Normalize", "Reshape"]


class BatchTransform(Callback):
    """Applies `tfm` to every batch's inputs (`on='x'`), targets (`'y'`) or both, after the batch
    reaches the device, so the lesson's `view(-1, 1, 28, 28)` needs no custom dataset.

    Example: `BatchTransform(Reshape(1, 28, 28))`, `BatchTransform(Normalize(0.1307, 0.3081))`.
    """

    order = -50  # after DeviceCallback (-100): transforms run on the device

    def __init__(self, tfm: Callable[[Any], Any], on: str = "x", name: str | None = None):
        if not callable(tfm):
            raise TypeError(f"BatchTransform takes a function of the batch's tensor, e.g. Normalize(0.13, 0.31), got {tfm!r}.")
        if on not in ("x", "y", "both"):
            raise ValueError(f"on must be 'x', 'y' or 'both', got {on!r}.")
        self.tfm, self.on = tfm, on
        if name is not None:
            self.name = name

    def before_batch(self, learn: BaseLearner) -> None:
        if self.on in ("x", "both"):
            learn.xb = self.tfm(learn.xb)
        if self.on in ("y", "both") and learn.yb is not None:
            learn.yb = self.tfm(learn.yb)


class Normalize:
    """x -> (x - mean) / std, with scalar or per-channel (broadcastable) statistics."""

    def __init__(self, mean: float | torch.Tensor, std: float | torch.Tensor):
        for what, v in (("mean", mean), ("std", std)):
            if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
                raise TypeError(f"Normalize: {what} must be a number or a tensor that broadcasts over the batch "
                                f"(per channel: torch.tensor([...]).view(-1, 1, 1)), got {v!r}.")  # fmt: skip
        if not bool((torch.as_tensor(std) > 0).all()):
            raise ValueError(f"Normalize: std must be positive (it divides), got {std!r}.")
        self.mean, self.std = mean, std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Reshape:
    """x -> x.view(-1, *shape): e.g. flat 784-pixel rows to (1, 28, 28) images."""

    def __init__(self, *shape: int):
        self.shape = shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, *self.shape)
