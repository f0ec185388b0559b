"""Looking at images: one image, a batch with its labels, and one item under many random draws."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..data import DataLoaders
from ..plots import new_figure, save_figure
from .transforms import collate_images, compose

__all__ = ["show_image", "show_batch", "show_augmentations"]


def show_image(img: Any, ax: Any = None, title: str | None = None, path: str | Path | None = None) -> Any:
    """Draw one image (PIL, or a (C, H, W) / (H, W) tensor) without axes; a Figure when `ax` is None."""
    fig = None
    if ax is None:
        fig = new_figure(3, 3)
        ax = fig.add_subplot()
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu()
        img = img.permute(1, 2, 0) if img.ndim == 3 else img
        img = img.squeeze(-1) if img.ndim == 3 and img.shape[-1] == 1 else img
        img = img.numpy()
    ax.imshow(img, cmap="gray" if getattr(img, "ndim", 3) == 2 else None)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path) if fig is not None else ax


def _for_display(xb: torch.Tensor, meta: dict) -> torch.Tensor:
    """A batch as it comes from the loaders -> something `show_image` draws faithfully."""
    if xb.is_floating_point() and isinstance(meta.get("mean"), float):  # tensors normalised in memory (MNIST): undo it
        return (xb * meta["std"] + meta["mean"]).reshape(len(xb), 1, *meta.get("input_shape", [28, 28])[-2:]).clamp(0, 1)
    return xb if xb.dtype == torch.uint8 else xb.clamp(0, 1)


def _augment(xb: torch.Tensor, batch_tfms: Sequence[Callable], seed: int) -> torch.Tensor:
    """uint8 images -> floats in [0, 1] through batch augmentations (RandomAffine, ...)."""
    x = xb.float() / 255
    for k, t in enumerate(batch_tfms):
        x = t(x, torch.Generator().manual_seed(seed + k))
    return x.clamp(0, 1)


def _grid(images: Sequence[Any], titles: Sequence[str], ncols: int, path: str | Path | None) -> Any:
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = new_figure(1.6 * ncols, 1.8 * nrows)
    for i, (img, title) in enumerate(zip(images, titles)):
        show_image(img, ax=fig.add_subplot(nrows, ncols, i + 1), title=title)
    return save_figure(fig, path)


def show_batch(dls: DataLoaders, n: int = 16, ncols: int = 8, path: str | Path | None = None,
               batch_tfms: Sequence[Callable] = (), seed: int = 0) -> Any:  # fmt: skip
    """A grid of the first training batch's images with their class names (PNG at `path`).
    Item augmentations show as the loader draws them; `batch_tfms` (e.g. `[RandomAffine()]`)
    are applied on top, as training would."""
    xb, yb = dls.train.one_batch()
    xb = _for_display(xb, getattr(dls, "meta", {}))
    if not (xb.ndim == 3 or (xb.ndim == 4 and xb.shape[1] in (1, 3, 4))):
        raise ValueError(
            f"show_batch draws images, batches of shape (batch, channels, height, width) or (batch, height, width); "
            f"this training batch's inputs have shape {tuple(xb.shape)}. Pass image DataLoaders (folder_dataloaders, "
            "to_dataloaders, or mnist()'s, which record how to reshape their flat rows)."
        )
    if batch_tfms:
        xb = _augment(xb if xb.dtype == torch.uint8 else (xb * 255).round().to(torch.uint8), batch_tfms, seed)
    n = min(n, len(xb))
    vocab = getattr(dls, "vocab", None)
    titles = [vocab[int(y)] if vocab else str(int(y)) for y in yb[:n]]
    return _grid(list(xb[:n]), titles, ncols, path)


def show_augmentations(data: Any, idx: int = 0, n: int = 8, path: str | Path | None = None,
                       batch_tfms: Sequence[Callable] = (), ncols: int = 8, seed: int = 0) -> Any:  # fmt: skip
    """Item `idx` under `n` random draws of the training pipeline (its item transforms, then
    `batch_tfms` if given), so you can see what the model will see. `data`: DataLoaders or an
    `ImageDataset`. The first picture is the item without augmentation."""
    ds = data.train.dataset if isinstance(data, DataLoaders) else data
    if not hasattr(ds, "ld") or not hasattr(ds, "tfms"):
        raise TypeError(f"show_augmentations needs image DataLoaders (from to_dataloaders) or an ImageDataset, got {type(data).__name__}.")
    if not 0 <= idx < len(ds):
        raise IndexError(f"show_augmentations: idx {idx} is outside the dataset's {len(ds)} items.")
    il = ds.ld.x
    img = il.get(il.items[idx])
    plain = compose(img, [t for t in ds.tfms if not getattr(t, "is_random", False)])
    draws = [compose(img, ds.tfms, random.Random(seed * 1_000_003 + k)) for k in range(n)]
    sizes = {d.size for d in draws} | {plain.size}
    if len(sizes) > 1:  # random crops resize: show the plain item at the draws' size too
        plain = plain.resize(draws[0].size)
    xb, _ = collate_images([(im, 0) for im in [plain, *draws]])
    if batch_tfms:
        xb = torch.cat([xb[:1].float() / 255, _augment(xb[1:], batch_tfms, seed)])
    return _grid(list(xb), ["original"] + [f"draw {k + 1}" for k in range(n)], ncols + 1 if n + 1 <= ncols + 1 else ncols, path)
