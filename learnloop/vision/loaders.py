"""From labelled image lists to `DataLoaders`."""

from __future__ import annotations

import multiprocessing
import os
import random
import warnings
from typing import Any, Callable, Sequence

import torch

from ..data import DataLoader, DataLoaders, collate
from .augment import split_tfms
from .files import UnreadableImageError
from .transforms import FloatNormalize, ResizeFixed, collate_images, compose

__all__ = ["ImageDataset", "to_dataloaders", "default_workers"]


def default_workers() -> int:
    """Decoding processes to use: one per core but one (the training process needs one), up to 4."""
    return min(4, max(0, (os.cpu_count() or 1) - 1))


class ImageDataset:
    """A `LabeledData` side as a dataset: item i is (its image after `tfms`, its class); a batch
    of images is collated into one uint8 tensor.

    Random transforms draw from a generator seeded by (seed, epoch, i): the loader sets the
    epoch (`set_epoch`), so augmentations repeat exactly on a resumed run and do not depend on
    how many workers decode. A validation dataset (`train=False`) swaps each random transform
    for its `valid_tfm()`.
    """

    def __init__(self, ld: Any, tfms: Sequence[Callable] = (), train: bool = True, seed: int = 0, on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' (stop at the first unreadable image) or 'skip' (leave it out and count it), got {on_error!r}.")
        self.ld, self.train, self.seed, self.epoch = ld, train, seed, 0
        self.tfms = split_tfms(list(tfms), train)
        self._random = any(getattr(t, "is_random", False) for t in self.tfms)
        # Skips happen in the decoding processes: they count into shared memory, which the main
        # process reads when the pass ends (the number skipped, and the first item that failed).
        self._skips = (multiprocessing.Value("q", 0), multiprocessing.Value("q", -1)) if on_error == "skip" else None

    def set_epoch(self, epoch: int, seed: int | None = None) -> None:
        """Called by the loader before each pass: the epoch (and sampler seed) random draws use."""
        self.epoch = epoch
        if seed is not None:
            self.seed = seed

    def end_pass(self) -> int:
        """Called by the loader when a pass ends: warns how many unreadable images were skipped
        in it (`on_error='skip'`), naming the first, and starts the count again; returns it."""
        if self._skips is None or self._skips[0].value == 0:
            return 0
        n, item = self._skips[0].value, self.ld.x.items[self._skips[1].value]
        self.reset_skips()
        try:
            self.ld.x.get(item)
            why = f"the first: {item}"
        except UnreadableImageError as e:  # read it again here: the worker that failed has its own copy of the error
            why = f"the first: {e}"
        side = "training" if self.train else "validation"
        warnings.warn(f"learnloop: skipped {n} of {len(self)} {side} images in this pass because they could not be read "
                      f"({why}). They were left out of their batches; fix or delete them to train on every image.", stacklevel=2)  # fmt: skip
        return n

    def rng(self, i: int) -> random.Random | None:
        """The generator item i's random transforms use in this epoch (None when none are random)."""
        return random.Random((self.seed * 1_000_003 + self.epoch) * 4_294_967_296 + i) if self._random else None

    def __len__(self) -> int:
        return len(self.ld)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        x = self.ld.x
        return compose(x.get(x.items[i]), self.tfms, self.rng(i)), self.ld.y[i]

    def reset_skips(self) -> None:
        """Start the count of skipped images again (to_dataloaders does, after its own reads)."""
        if self._skips is not None:
            self._skips[0].value, self._skips[1].value = 0, -1

    def _skipped(self, i: int) -> None:
        count, first = self._skips
        with count.get_lock():
            count.value += 1
            if first.value < 0:
                first.value = i

    def __getitems__(self, idxs: Sequence[int]) -> Any:
        if self._skips is None:
            samples = [self[i] for i in idxs]
        else:
            samples = []
            for i in idxs:
                try:
                    samples.append(self[i])
                except UnreadableImageError:  # only unreadable files are skipped, not errors in the transforms
                    self._skipped(i)
            if not samples:
                raise ValueError(f"Every image of a batch failed to read (the first: {self.ld.x.items[idxs[0]]}): "
                                 "the folder looks broken, check the files.")  # fmt: skip
        if hasattr(samples[0][0], "getbands"):  # PIL images: one uint8 batch
            return collate_images(samples)
        return collate(samples)


def _channel_stats(ds: ImageDataset, n: int, seed: int) -> tuple[list[float], list[float]]:
    g = torch.Generator().manual_seed(seed)
    idxs = torch.randperm(len(ds), generator=g)[: min(n, len(ds))].tolist()
    xb, _ = ds.__getitems__(idxs)
    x = xb.float().div_(255).transpose(0, 1).reshape(xb.shape[1], -1)
    std = x.std(1)
    # A channel that never varies in the sample (a flat colour) has no scale to divide by: keep it as is.
    return x.mean(1).tolist(), torch.where(std < 1e-3, torch.ones_like(std), std).tolist()


def to_dataloaders(
    sd: Any,
    batch_size: int = 64,
    size: int | None = None,
    num_workers: int | None = None,
    item_tfms: Sequence[Callable] | None = None,
    batch_tfms: Sequence[Callable] | None = None,
    seed: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    stats_sample: int = 512,
    on_error: str = "raise",
    persistent_workers: bool = True,
) -> DataLoaders:
    """`DataLoaders` over a labelled `SplitData`: shuffled training batches, ordered validation
    batches (twice as large), decoded in `num_workers` processes (default: `default_workers()`),
    kept between passes unless `persistent_workers=False`.

    `size` resizes every image (JPEGs decode straight at reduced size). Items stay uint8 up to
    the batch; `FloatNormalize(mean, std)` (per channel, measured on `stats_sample` training
    images unless given) and then `batch_tfms` run per batch on the training device. The result
    carries `c_in` (channels), `c_out` (classes), `vocab` and `meta` (what export needs).

    An image that cannot be read stops training with an error naming the file; with
    `on_error='skip'` it is left out of its batch instead, and each pass ends with a warning
    saying how many were skipped and which was the first.
    """
    if not all(hasattr(getattr(sd, side, None), "proc_y") for side in ("train", "valid")):
        raise TypeError(
            f"to_dataloaders needs labelled split data, got {type(sd).__name__}"
            f"{' of unlabelled items' if hasattr(sd, 'train') else ''}: label it first, e.g. label_by_func(sd, parent_labeler)."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    tfms = list(item_tfms or [])
    if size is not None:
        tfms.append(ResizeFixed(size))
        for side in (sd.train, sd.valid):
            side.x.draft = (size, size)
    train = ImageDataset(sd.train, tfms, train=True, on_error=on_error)
    valid = ImageDataset(sd.valid, tfms, train=False, on_error=on_error)
    if mean is None or std is None:
        m, s = _channel_stats(train, stats_sample, 0 if seed is None else seed)
        mean, std = mean or m, std or s
    workers = default_workers() if num_workers is None else num_workers
    dls = DataLoaders(
        DataLoader(train, batch_size, shuffle=True, seed=seed, num_workers=workers, persistent_workers=persistent_workers),
        DataLoader(valid, 2 * batch_size, shuffle=False, num_workers=workers, persistent_workers=persistent_workers),
    )
    x0 = train.__getitems__(list(range(min(len(train), 64 if on_error == "skip" else 1))))[0][0]  # the first readable image
    train.reset_skips()  # what the statistics and the first image left out is counted in the passes
    dls.batch_tfms = [FloatNormalize(mean, std), *(batch_tfms or [])]
    dls.vocab = list(sd.train.proc_y.vocab)
    dls.c_in, dls.c_out = int(x0.shape[0]), len(dls.vocab)
    dls.meta = {"dataset": "images", "source": str(sd.train.x.path), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                "pixel_scale": 255.0, "size": size, "classes": dls.vocab}  # fmt: skip
    return dls
