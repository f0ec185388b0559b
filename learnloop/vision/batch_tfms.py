"""Augmentations of whole batches on the training device (the lesson's notebook 10, second half).

Rotating images one by one with Pillow costs a resample per image on the CPU. Here a batch's
rotations, zooms, shifts and flips become one 3x3 matrix per image and the whole batch is
resampled by ONE `F.affine_grid` + `F.grid_sample`, wherever the batch lives.

Each augmentation is a callback (run on training batches after the loaders' own batch
transforms, so on normalised floats) and also a plain function of a batch: `aug(x, generator)`.
Random draws come from a generator seeded by (seed, training step), so a resumed run repeats them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..data.sampler import random_seed
from ..events import Callback
from ..loop import BaseLearner
from ..utils import step_generator
from .augment import _prob

__all__ = ["rotation_matrix", "rotate_batch", "BatchAugment", "RandomAffine", "RandomErasing", "step_generator"]


def rotation_matrix(thetas: torch.Tensor) -> torch.Tensor:
    """(B,) angles in radians -> (B, 3, 3) rotation matrices in homogeneous coordinates."""
    c, s, z, o = thetas.cos(), thetas.sin(), torch.zeros_like(thetas), torch.ones_like(thetas)
    return torch.stack([c, -s, z, s, c, z, z, z, o], 1).view(-1, 3, 3)


def _resample(x: torch.Tensor, m: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    grid = F.affine_grid(m[:, :2].to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def rotate_batch(x: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """Rotate every image of a (B, C, H, W) batch by `degrees` (one number or one per image) in
    one resample; positive angles turn the picture counterclockwise as displayed (like `torch.rot90`)."""
    d = torch.as_tensor(degrees, dtype=torch.float32, device=x.device).expand(x.shape[0])
    return _resample(x, rotation_matrix(d * math.pi / 180))


def _check_batch(name: str, x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} works on a batch tensor (B, C, H, W) on the device, but got a {type(x).__name__}; "
                        "use the Pil* item transforms on Pillow images.")  # fmt: skip
    if x.ndim != 4 or not x.is_floating_point():
        raise TypeError(f"{name} needs a float (B, C, H, W) batch (after FloatNormalize), got {x.dtype} of shape {tuple(x.shape)}.")
    return x


def _range(name: str, what: str, v: Any, symmetric: bool) -> tuple[float, float]:
    """A number v -> (-v, v) (or (1, 1+v)... as the caller wants) or a (lo, hi) pair, checked."""
    if isinstance(v, bool) or isinstance(v, str):
        raise TypeError(f"{name}: {what} must be a number or a (min, max) pair, got {v!r}.")
    if isinstance(v, (int, float)):
        lo, hi = (-float(v), float(v)) if symmetric else (float(v), float(v))
    elif isinstance(v, Sequence) and len(v) == 2 and all(isinstance(u, (int, float)) and not isinstance(u, bool) for u in v):
        lo, hi = float(v[0]), float(v[1])
    else:
        raise TypeError(f"{name}: {what} must be a number or a (min, max) pair, got {v!r}.")
    if lo > hi:
        raise ValueError(f"{name}: {what} range ({lo}, {hi}) has min > max.")
    return lo, hi


class BatchAugment(Callback):
    """Base of the batch augmentations: runs `self(xb, generator)` on training batches (and on
    validation batches when `on_valid=True`) after the loaders' batch transforms."""

    order = -40  # after DeviceCallback (-100) and the loaders' FloatNormalize (-50)

    def __init__(self, seed: int | None = None, on_valid: bool = False):
        self.seed = random_seed() if seed is None else int(seed)
        self.on_valid = on_valid

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def before_batch(self, learn: BaseLearner) -> None:
        if learn.training or self.on_valid:
            step = learn.train_batches_done if learn.training else learn.iter
            learn.xb = self(learn.xb, step_generator(self.seed, step))

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])


class RandomAffine(BatchAugment):
    """Random rotation (`degrees`), zoom (`scale`, >1 zooms in), shift (`translate`, a fraction of
    the image) applied to each image with probability `p`, and a left-right flip with
    probability `flip`: composed into one matrix per image, one resample per batch.

    Numbers mean symmetric ranges (degrees=10: uniform in [-10, 10]); pairs give (min, max).
    `padding_mode` ('zeros', 'border', 'reflection') fills what comes in from outside.
    """

    def __init__(self, degrees: float | tuple[float, float] = 10.0, scale: float | tuple[float, float] = (1.0, 1.1),
                 translate: float | tuple[float, float] = 0.0, flip: float = 0.5, p: float = 0.75,
                 padding_mode: str = "reflection", mode: str = "bilinear", seed: int | None = None,
                 on_valid: bool = False):  # fmt: skip
        super().__init__(seed, on_valid)
        self.degrees = _range("RandomAffine", "degrees", degrees, symmetric=True)
        self.scale = _range("RandomAffine", "scale", scale, symmetric=False)
        if self.scale[0] <= 0:
            raise ValueError(f"RandomAffine: scale must be > 0 (1 = no zoom), got {scale!r}.")
        self.translate = _range("RandomAffine", "translate", translate, symmetric=True)
        self.flip, self.p = _prob("RandomAffine", flip, "flip"), _prob("RandomAffine", p)
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(f"RandomAffine: padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}.")
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"RandomAffine: mode must be 'bilinear' or 'nearest', got {mode!r}.")
        self.padding_mode, self.mode = padding_mode, mode

    def matrices(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 3, 3) matrices mapping output coordinates to input ones, in [-1, 1] units."""

        def u(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator)

        on = torch.rand(n, generator=generator) < self.p
        theta = torch.where(on, u(*self.degrees) * math.pi / 180, 0.0)
        zoom = torch.where(on, u(*self.scale), 1.0)
        shift = torch.stack([torch.where(on, 2 * u(*self.translate), 0.0) for _ in range(2)], 1)  # [-1, 1] spans the image: x2
        mirror = torch.where(torch.rand(n, generator=generator) < self.flip, -1.0, 1.0)
        m = rotation_matrix(theta)
        m[:, :2, :2] *= (1 / zoom).view(-1, 1, 1)  # zoom in: sample a smaller region
        m[:, :2, 0] *= mirror.view(-1, 1)  # flip: read x from -x
        m[:, :2, 2] = shift
        return m

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch("RandomAffine", x)
        return _resample(x, self.matrices(x.shape[0], generator).to(x.device), self.mode, self.padding_mode)


class RandomErasing(BatchAugment):
    """Cutout: with probability `p` per image, a rectangle covering `area` of it (aspect ratio in
    `ratio`) is replaced by standard-normal noise (`value='random'`, right for normalised
    inputs) or by a constant. All images are erased in one masked write."""

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.25), ratio: tuple[float, float] = (0.3, 3.3),
                 value: float | str = "random", seed: int | None = None, on_valid: bool = False):  # fmt: skip
        super().__init__(seed, on_valid)
        self.p = _prob("RandomErasing", p)
        self.area = _range("RandomErasing", "area", area, symmetric=False)
        if not 0 < self.area[0] <= self.area[1] <= 1:
            raise ValueError(f"RandomErasing: area must be within (0, 1], got {area!r}.")
        self.ratio = _range("RandomErasing", "ratio", ratio, symmetric=False)
        if self.ratio[0] <= 0:
            raise ValueError(f"RandomErasing: ratio must be > 0, got {ratio!r}.")
        if value != "random" and (isinstance(value, (bool, str)) or not isinstance(value, (int, float))):
            raise ValueError(f"RandomErasing: value must be 'random' or a number, got {value!r}.")
        self.value = value

    def masks(self, n: int, h: int, w: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 1, h, w) booleans: True where each image is erased."""
        r = torch.rand(n, 5, generator=generator)
        area = (self.area[0] + (self.area[1] - self.area[0]) * r[:, 0]) * h * w
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        ratio = torch.exp(log_lo + (log_hi - log_lo) * r[:, 1])
        eh = (area / ratio).sqrt().round().clamp(1, h)
        ew = (area * ratio).sqrt().round().clamp(1, w)
        top, left = (r[:, 2] * (h - eh + 1)).floor(), (r[:, 3] * (w - ew + 1)).floor()
        rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + eh).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + ew).view(-1, 1, 1)))  # fmt: skip
        return (inside & (r[:, 4] < self.p).view(-1, 1, 1)).unsqueeze(1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch("RandomErasing", x)
        mask = self.masks(x.shape[0], x.shape[2], x.shape[3], generator).to(x.device)
        if self.value == "random":
            fill = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        else:
            fill = torch.full_like(x, float(self.value))
        return torch.where(mask, fill, x)
