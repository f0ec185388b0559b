"""MixUp and CutMix: train on blends of two images and score against both labels.

Each training batch is mixed with a shuffled copy of itself: MixUp blends whole images with
weight `lam` ~ Beta(alpha, alpha); CutMix pastes a box of the other image covering 1 - `lam` of
the area. The loss becomes `lam * loss(pred, y) + (1 - lam) * loss(pred, y_shuffled)`, which
for cross-entropy equals cross-entropy against the mixed (soft) targets. One `lam` per batch, so
any loss function works unchanged; validation batches are not mixed and are scored with the
plain loss. The Learner's `loss_func` is swapped only while fitting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sampler import random_seed
from ..events import Callback
from ..loop import BaseLearner

__all__ = ["MixUp", "CutMix"]


class _Mix(Callback):
    order = -30  # after the batch augmentations (-40): mix what they produced

    def __init__(self, alpha: float, seed: int | None):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be a number > 0 (the Beta distribution's parameter), got {alpha!r}.")
        self.alpha, self.seed = float(alpha), random_seed() if seed is None else int(seed)
        self.lam: float | None = None
        self.y_b: Any = None
        self._loss_func: Any = None

    def before_fit(self, learn: BaseLearner) -> None:
        self._loss_func = learn.loss_func
        learn.loss_func = self.loss

    def after_fit(self, learn: BaseLearner) -> None:
        learn.loss_func, self.lam, self.y_b = self._loss_func, None, None

    def before_batch(self, learn: BaseLearner) -> None:
        self.lam = self.y_b = None
        if not learn.training:
            return
        x, y = learn.xb, learn.yb
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"{type(self).__name__} mixes one input tensor and one target tensor per batch, got {type(x).__name__} and {type(y).__name__}.")
        rng = np.random.default_rng([self.seed, learn.train_batches_done])
        perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
        lam = float(rng.beta(self.alpha, self.alpha))
        learn.xb, self.lam = self.mix(x, x[perm], lam, rng)
        self.y_b = y[perm]

    def mix(self, x: torch.Tensor, other: torch.Tensor, lam: float, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        raise NotImplementedError

    def loss(self, pred: torch.Tensor, yb: Any) -> torch.Tensor:
        """The mixed loss on training batches; the original loss otherwise."""
        if self.lam is None:
            return self._loss_func(pred, yb)
        return self.lam * self._loss_func(pred, yb) + (1 - self.lam) * self._loss_func(pred, self.y_b)

    def soft_targets(self, yb: torch.Tensor, n_classes: int) -> torch.Tensor:
        """The current batch's targets as class probabilities: lam on y, 1 - lam on the other's."""
        if self.lam is None:
            return F.one_hot(yb, n_classes).float()
        return self.lam * F.one_hot(yb, n_classes).float() + (1 - self.lam) * F.one_hot(self.y_b, n_classes).float()

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])


class MixUp(_Mix):
    """Blend each training image with another: x = lam * x + (1 - lam) * x_other, with
    lam ~ Beta(alpha, alpha) folded to >= 0.5 so the original image dominates (as in the lesson)."""

    def __init__(self, alpha: float = 0.4, seed: int | None = None):
        super().__init__(alpha, seed)

    def mix(self, x: torch.Tensor, other: torch.Tensor, lam: float, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        lam = max(lam, 1 - lam)
        return torch.lerp(other, x, lam), lam


class CutMix(_Mix):
    """Paste a box of another training image into each one; the box covers 1 - lam of the area
    (lam ~ Beta(alpha, alpha), corrected for the part of the box clipped at the border)."""

    def __init__(self, alpha: float = 1.0, seed: int | None = None):
        super().__init__(alpha, seed)

    def mix(self, x: torch.Tensor, other: torch.Tensor, lam: float, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        if x.ndim != 4:
            raise TypeError(f"CutMix needs image batches (B, C, H, W), got shape {tuple(x.shape)}.")
        h, w = x.shape[-2:]
        cut = math.sqrt(1 - lam)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - int(h * cut / 2), 0), min(cy + int(h * cut / 2), h)
        x0, x1 = max(cx - int(w * cut / 2), 0), min(cx + int(w * cut / 2), w)
        out = x.clone()
        out[..., y0:y1, x0:x1] = other[..., y0:y1, x0:x1]
        return out, 1 - (y1 - y0) * (x1 - x0) / (h * w)
