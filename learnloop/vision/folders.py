"""A folder of images to DataLoaders in one call, with the layout worked out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..data import DataLoaders
from .blocks import ImageList, SplitData, grandparent_splitter, label_by_func, parent_labeler, random_splitter

__all__ = ["folder_dataloaders"]


def folder_dataloaders(path: str | Path, batch_size: int = 64, size: int | None = None, valid_pct: float = 0.2,
                       seed: int = 42, verbose: bool = False, **kwargs: Any) -> DataLoaders:  # fmt: skip
    """Image classification data from a folder: `train/<class>/...` with `valid/`, `val/` or
    `test/` beside it is split that way; one folder per class is split at random (`valid_pct`,
    the same split every time). Labels are the parent folders' names. `kwargs` go to
    `to_dataloaders` (num_workers, item_tfms, batch_tfms, mean, std, on_error)."""
    il = ImageList.from_files(path)
    layout = {Path(p).parent.parent.name for p in il.items}
    if "train" in layout and layout & {"valid", "val", "test"}:
        held_out = sorted(layout & {"valid", "val", "test"})[0]
        sd, how = SplitData.split_by_func(il, grandparent_splitter(held_out)), f"train/ and {held_out}/ folders"
    else:
        sd, how = SplitData.split_by_func(il, random_splitter(valid_pct, seed)), f"a random {valid_pct:.0%} held out"
    lsd = label_by_func(sd, parent_labeler)
    if verbose:
        vocab = lsd.train.proc_y.vocab
        shown = ", ".join(map(str, vocab[:8])) + (", ..." if len(vocab) > 8 else "")
        print(f"learnloop: {len(il):,} images in {path}: {len(vocab)} classes ({shown}); "
              f"{len(lsd.train):,} train, {len(lsd.valid):,} valid ({how})", file=sys.stderr)  # fmt: skip
    return lsd.to_dataloaders(batch_size, size=size, seed=seed, **kwargs)
