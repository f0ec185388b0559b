"""Item augmentations on Pillow images (the lesson's notebook 10): flips, the dihedral group,
crops that resize in the same resample, perspective tilts, and the fast path to floats.

Work on the 8-bit Pillow image while it is small, in as few resamples as possible: a crop and a
resize are one `Image.transform(..., EXTENT)`, a tilt is one `PERSPECTIVE` transform.

A random transform has `is_random = True` and takes the random generator as its second argument,
`t(img, rng)`. The image datasets pass one seeded from (seed, epoch, item index), so an item's
augmentation does not depend on the number of workers and a resumed run sees the same images.
Called alone, `t(img)` uses Python's global `random`. On validation items a random transform is
replaced by `t.valid_tfm()` (a centre crop, say) or left out when that is None.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

__all__ = [
    "RandomTransform",
    "PilRandomFlip",
    "PilRandomDihedral",
    "GeneralCrop",
    "CenterCrop",
    "RandomResizedCrop",
    "RandomCrop",
    "find_coeffs",
    "warp",
    "PilTiltRandomCrop",
    "np_to_float",
    "split_tfms",
]

Size = int | tuple[int, int]


def _size(name: str, size: Any) -> tuple[int, int]:
    """An int or (width, height) of positive ints, or a clear error naming the transform."""
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)):
        raise ValueError(f"{name}: size must be a positive int or a (width, height) pair of positive ints, got {size!r}.")
    return int(pair[0]), int(pair[1])


def _prob(name: str, p: Any, what: str = "p") -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"{name}: {what} must be a probability in [0, 1], got {p!r}.")
    return float(p)


def _pil(name: str, img: Any) -> Image.Image:
    if not isinstance(img, Image.Image):
        kind = f"a tensor of shape {tuple(img.shape)}" if isinstance(img, torch.Tensor) else f"a {type(img).__name__}"
        raise TypeError(f"{name} works on Pillow images (order 10-19, before to_byte_tensor) but got {kind}; "
                        "give it a lower order or apply it before the image becomes a tensor.")  # fmt: skip
    return img


class RandomTransform:
    """Base of the random item transforms: `order` 11 (after resizing, before tensors), a
    probability `p` of running `apply(img, rng)` (which subclasses define), and `valid_tfm()`
    for what validation items get instead (None: nothing)."""

    order, is_random, p = 11, True, 1.0

    def __call__(self, img: Image.Image, rng: Any = None) -> Image.Image:
        _pil(type(self).__name__, img)
        rng = rng or random  # the module's functions: the global generator when used alone
        return self.apply(img, rng) if self.p >= 1 or rng.random() < self.p else img

    def valid_tfm(self) -> Callable | None:
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class PilRandomFlip(RandomTransform):
    """Mirror left-right with probability `p`."""

    def __init__(self, p: float = 0.5):
        self.p = _prob("PilRandomFlip", p)

    def apply(self, img: Image.Image, rng: random.Random) -> Image.Image:
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


DIHEDRAL = (
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


class PilRandomDihedral(RandomTransform):
    """One of the square's 8 symmetries: with probability `p` a uniform draw from all 8, so each
    of the 7 non-identity ones comes up with probability p/8 and the identity keeps 1 - 7p/8."""

    def __init__(self, p: float = 0.75):
        self.p = _prob("PilRandomDihedral", p)

    def apply(self, img: Image.Image, rng: random.Random) -> Image.Image:
        k = rng.randrange(8)
        return img if k == 7 else img.transpose(DIHEDRAL[k])


def _crop_fits(name: str, w: int, h: int, cw: float, ch: float, padding: int = 0) -> None:
    if cw > w + 2 * padding or ch > h + 2 * padding:
        raise ValueError(f"{name}: the {round(cw)}x{round(ch)} crop is larger than the {w}x{h} image"
                         f"{f' padded by {padding}' if padding else ''}; resize first or give padding=.")  # fmt: skip


class GeneralCrop:
    """Crop a box and resize it to `size` in ONE resample.

    The box is `crop_size` (width, height) centred, or the largest centred square when None.
    Subclasses choose the box in `corners(w, h, rng)`. A box inside the image goes to
    `Image.resize(box=...)`: one resample on Pillow's fast separable path, antialiased when it
    shrinks (1.8x faster here than the lesson's `Image.transform` with EXTENT, which today's
    Pillow runs on a slower generic path). A box reaching outside the image (padded crops) uses
    EXTENT, which fills the outside with black.
    """

    order, is_random = 11, False

    def __init__(self, size: Size, crop_size: Size | None = None, resample: int = Image.BILINEAR):
        name = type(self).__name__
        self.size = _size(name, size)
        self.crop_size = None if crop_size is None else _size(name + " crop_size", crop_size)
        self.resample = resample

    def crop_for(self, w: int, h: int) -> tuple[float, float]:
        if self.crop_size is not None:
            return self.crop_size
        side = min(w, h)
        return side, side

    def corners(self, w: int, h: int, rng: random.Random) -> tuple[float, float, float, float]:
        cw, ch = self.crop_for(w, h)
        _crop_fits(type(self).__name__, w, h, cw, ch)
        left, top = (w - cw) / 2, (h - ch) / 2
        return left, top, left + cw, top + ch

    def __call__(self, img: Image.Image, rng: Any = None) -> Image.Image:
        return self.apply(_pil(type(self).__name__, img), rng or random)

    def apply(self, img: Image.Image, rng: Any) -> Image.Image:
        box = self.corners(*img.size, rng)
        if box[0] >= 0 and box[1] >= 0 and box[2] <= img.size[0] and box[3] <= img.size[1]:
            return img.resize(self.size, self.resample, box=box)
        return img.transform(self.size, Image.Transform.EXTENT, box, resample=self.resample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, crop_size={self.crop_size})"


class CenterCrop(GeneralCrop):
    """The centre 1/`scale` of the image resized to `size`: the validation view of random crops
    (the lesson's scale 1.14 matches the average zoom of its training crops)."""

    def __init__(self, size: Size, scale: float = 1.14, resample: int = Image.BILINEAR):
        super().__init__(size, resample=resample)
        if not isinstance(scale, (int, float)) or scale < 1:
            raise ValueError(f"CenterCrop: scale must be a number >= 1 (1 keeps the whole image), got {scale!r}.")
        self.scale = float(scale)

    def crop_for(self, w: int, h: int) -> tuple[float, float]:
        return w / self.scale, h / self.scale

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size}, scale={self.scale})"


class RandomResizedCrop(RandomTransform, GeneralCrop):
    """A random box covering `scale` of the area with aspect ratio in `ratio`, resized to `size`
    in one resample. After 10 draws that do not fit, the largest centred box whose ratio is in
    range (so the crop always stays inside the image)."""

    order, is_random = 11, True

    def __init__(self, size: Size, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 resample: int = Image.BILINEAR):  # fmt: skip
        GeneralCrop.__init__(self, size, resample=resample)
        if not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"RandomResizedCrop: scale must be (min, max) with 0 < min <= max <= 1, got {scale!r}.")
        if not (len(ratio) == 2 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"RandomResizedCrop: ratio must be (min, max) with 0 < min <= max, got {ratio!r}.")
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def corners(self, w: int, h: int, rng: random.Random) -> tuple[float, float, float, float]:
        area, log_r = w * h, (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            r = math.exp(rng.uniform(*log_r))
            cw, ch = math.sqrt(target * r), math.sqrt(target / r)
            if cw <= w and ch <= h:
                left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
                return left, top, left + cw, top + ch
        r = min(max(w / h, self.ratio[0]), self.ratio[1])  # fallback: the widest in-range box that fits
        cw, ch = (w, w / r) if w / r <= h else (h * r, h)
        left, top = (w - cw) / 2, (h - ch) / 2
        return left, top, left + cw, top + ch

    def valid_tfm(self) -> Callable | None:
        return CenterCrop(self.size, scale=1.14, resample=self.resample)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomCrop(RandomTransform, GeneralCrop):
    """A random `size` crop of the image padded by `padding` black pixels on each side (the CIFAR
    classic: 32 px with padding 4). The padding is never materialised: the box just reaches
    outside the image, where EXTENT fills with black. Integer offsets: no resampling blur."""

    order, is_random = 11, True

    def __init__(self, size: Size, padding: int = 4):
        GeneralCrop.__init__(self, size, resample=Image.NEAREST)
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}.")
        self.padding = padding

    def corners(self, w: int, h: int, rng: random.Random) -> tuple[float, float, float, float]:
        cw, ch = self.size
        _crop_fits("RandomCrop", w, h, cw, ch, self.padding)
        left = rng.randint(-self.padding, w + self.padding - cw)
        top = rng.randint(-self.padding, h + self.padding - ch)
        return left, top, left + cw, top + ch

    def valid_tfm(self) -> Callable | None:
        return CenterCrop(self.size, scale=1.0)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


# ---- perspective --------------------------------------------------------------------------


def find_coeffs(orig_pts: Sequence[Sequence[float]], targ_pts: Sequence[Sequence[float]]) -> list[float]:
    """The 8 coefficients of the perspective map sending each of the 4 `targ_pts` to its
    `orig_pts` (what Pillow's PERSPECTIVE transform wants: output pixel -> input pixel).

    With (x, y) a target point, the source is ((a x + b y + c) / (g x + h y + 1),
    (d x + e y + f) / (g x + h y + 1)); each pair of points gives two linear equations.
    """
    rows, rhs = [], []
    for (x, y), (u, v) in zip(targ_pts, orig_pts):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    if len(rows) != 8:
        raise ValueError(f"find_coeffs needs 4 points on each side, got {len(orig_pts)} and {len(targ_pts)}.")
    a, b = torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64)
    return torch.linalg.solve(a, b).tolist()


def warp(img: Image.Image, size: Size, src_coords: Sequence[Sequence[float]], resample: int = Image.BILINEAR) -> Image.Image:
    """The quadrilateral `src_coords` (top-left, bottom-left, bottom-right, top-right) of `img`
    stretched onto a `size` rectangle, in one resample."""
    w, h = _size("warp", size)
    coeffs = find_coeffs(src_coords, ((0, 0), (0, h), (w, h), (w, 0)))
    return _pil("warp", img).transform((w, h), Image.Transform.PERSPECTIVE, coeffs, resample=resample)


class PilTiltRandomCrop(RandomTransform):
    """A random crop seen at a slight tilt: each side of the crop box moves by up to `magnitude`
    (a fraction of the crop) before the box is warped to `size`. Source corners are kept inside
    the image, so no black borders come in."""

    def __init__(self, size: Size, crop_size: Size | None = None, magnitude: float = 0.0, resample: int = Image.NEAREST):
        self.size = _size("PilTiltRandomCrop", size)
        self.crop_size = None if crop_size is None else _size("PilTiltRandomCrop crop_size", crop_size)
        if not isinstance(magnitude, (int, float)) or not 0 <= magnitude < 0.5:
            raise ValueError(f"PilTiltRandomCrop: magnitude must be in [0, 0.5), got {magnitude!r}.")
        self.magnitude, self.resample = float(magnitude), resample

    def corners(self, w: int, h: int, rng: random.Random) -> list[tuple[float, float]]:
        cw, ch = self.crop_size or (min(w, h),) * 2
        _crop_fits("PilTiltRandomCrop", w, h, cw, ch)
        m = self.magnitude
        up, lr = rng.uniform(-m, m), rng.uniform(-m, m)
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        unit = [(-up, -lr), (up, 1 + lr), (1 - up, 1 - lr), (1 + up, lr)]
        return [(min(max(left + x * cw, 0.0), w), min(max(top + y * ch, 0.0), h)) for x, y in unit]

    def apply(self, img: Image.Image, rng: random.Random) -> Image.Image:
        return warp(img, self.size, self.corners(*img.size, rng), self.resample)

    def valid_tfm(self) -> Callable | None:
        return GeneralCrop(self.size, self.crop_size)


def np_to_float(img: Image.Image) -> torch.Tensor:
    """Pillow image -> float32 (C, H, W) in [0, 1] in one step (one numpy conversion, one
    division), instead of to_byte_tensor then to_float_tensor."""
    arr = np.asarray(_pil("np_to_float", img), dtype=np.float32)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.transpose(2, 0, 1) / np.float32(255)).contiguous()


np_to_float.order = 20  # type: ignore[attr-defined]


def split_tfms(tfms: Sequence[Callable], train: bool) -> list[Callable]:
    """The item transforms one side of the data gets: all of them for training; for validation,
    each random transform replaced by its `valid_tfm()` (or dropped when it has none)."""
    if train:
        return list(tfms)
    out = []
    for t in tfms:
        if getattr(t, "is_random", False):
            t = t.valid_tfm() if hasattr(t, "valid_tfm") else None
        if t is not None:
            out.append(t)
    return out
