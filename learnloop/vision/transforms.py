"""Item transforms on Pillow images, and the fast path from a list of images to one batch.

Each transform has an `order`: resizing (10) and other Pillow work (11) happen while the image
is small and 8-bit, then `to_byte_tensor` (20), then, only when asked per item,
`to_float_tensor` (30). The loaders built by `to_dataloaders` stop at bytes: a batch travels as
one uint8 tensor and becomes float, normalised, on the training device (`FloatNormalize`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

__all__ = ["compose", "ResizeFixed", "to_byte_tensor", "to_float_tensor", "collate_images", "FloatNormalize"]


def compose(x: Any, tfms: Sequence[Callable] | None, rng: Any = None) -> Any:
    """Apply `tfms` in increasing `order` (the lesson's `_order`; 0 when absent). Random
    transforms (`is_random`) get `rng` (a `random.Random`; None: the global one)."""
    for t in sorted(tfms or [], key=lambda t: getattr(t, "order", getattr(t, "_order", 0))):
        x = t(x, rng) if getattr(t, "is_random", False) else t(x)
    return x


class ResizeFixed:
    """Resize to `size` x `size` (or (width, height)) with one Pillow resample."""

    order = 10

    def __init__(self, size: int | tuple[int, int], resample: int = Image.BILINEAR):
        pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
        if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
            raise ValueError(f"ResizeFixed: size must be a positive int or a (width, height) pair of them, got {size!r}.")
        self.size = pair
        self.resample = resample

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.size == self.size else img.resize(self.size, self.resample)

    def __repr__(self) -> str:
        return f"ResizeFixed({self.size})"


def to_byte_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> uint8 tensor (channels, height, width)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())  # a copy: Pillow's buffer is read-only


to_byte_tensor.order = 20  # type: ignore[attr-defined]


def to_float_tensor(x: torch.Tensor) -> torch.Tensor:
    """uint8 tensor -> float32 in [0, 1] (per item; the loaders do this per batch instead)."""
    return x.float().div_(255)


to_float_tensor.order = 30  # type: ignore[attr-defined]


def collate_images(samples: Sequence[tuple[Image.Image, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Same-size images and their classes -> one uint8 (N, C, H, W) batch and an int64 vector,
    filled in place (no per-item tensors, no float conversion here)."""
    first = np.asarray(samples[0][0], dtype=np.uint8)
    h, w = first.shape[:2]
    c = 1 if first.ndim == 2 else first.shape[2]
    out = np.empty((len(samples), h, w, c), dtype=np.uint8)
    for i, (img, _) in enumerate(samples):
        a = np.asarray(img, dtype=np.uint8)
        if a.shape[:2] != (h, w):
            raise ValueError(f"Images in one batch must share a size: got {a.shape[1]}x{a.shape[0]} and {w}x{h}; add ResizeFixed(size).")
        out[i] = a.reshape(h, w, c)
    ys = torch.tensor([int(y) for _, y in samples], dtype=torch.long)
    return torch.from_numpy(out).permute(0, 3, 1, 2), ys


class FloatNormalize:
    """A uint8 image batch -> float, standardised per channel: (x / 255 - mean) / std. Runs on
    whatever device the batch is on (the Learner applies it after moving the batch)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self._cache: dict = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.shape[1])
        if key not in self._cache:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(self.mean, device=x.device).view(shape) * 255
            std = torch.tensor(self.std, device=x.device).view(shape) * 255
            self._cache[key] = (mean, std)
        mean, std = self._cache[key]
        return (x.float() - mean) / std

    def __repr__(self) -> str:
        return f"FloatNormalize(mean={[round(m, 4) for m in self.mean]}, std={[round(s, 4) for s in self.std]})"
