"""Image pipeline throughput: learnloop's data blocks against the loader a user would write by hand.

    python benchmarks/bench_vision.py [CIFAR_FOLDER]     # about two minutes

The hand-written pipeline: a `torch.utils.data.Dataset` that opens each file with Pillow,
converts it to RGB and to a float tensor in [0, 1], batched by `torch.utils.data.DataLoader`
with the same workers. learnloop's: `folder_dataloaders` (decode, uint8 batch collated in the
worker, float conversion left to the device). Both read the same 10,000 CIFAR-10 test JPEGs
(32x32), batch 128, with 0, 1 and 2 workers; images per second, best of 3 passes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from learnloop.datasets import cifar10
from learnloop.vision import ImageList, SplitData, get_files, image_extensions, label_by_func, parent_labeler


class HandDataset(torch.utils.data.Dataset):
    def __init__(self, files: list[Path]):
        self.files = files
        classes = sorted({f.parent.name for f in files})
        self.labels = [classes.index(f.parent.name) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = Image.open(self.files[i]).convert("RGB")
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1), self.labels[i]


def rate(loader, n: int) -> float:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for xb, _ in loader:
            if xb.dtype == torch.uint8:
                xb.float()  # what learnloop leaves for the device; counted here to be fair
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> int:
    torch.set_num_threads(1)
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else cifar10()
    files = get_files(folder / "test", image_extensions)
    il = ImageList(files, folder)
    # every file on the "valid" side, which is read in order, as the hand loader below
    lsd = label_by_func(SplitData(il.new(files), il.new(files)), parent_labeler)
    print(f"{len(files):,} CIFAR-10 test JPEGs from {folder}, batch 128, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n")
    print("| workers | hand-written Dataset + torch DataLoader | learnloop data blocks | ratio |\n|---|---|---|---|")
    for workers in (0, 1, 2):
        hand = torch.utils.data.DataLoader(HandDataset(files), batch_size=128, num_workers=workers, persistent_workers=workers > 0)
        ours = lsd.to_dataloaders(batch_size=64, num_workers=workers, mean=[0.5] * 3, std=[0.25] * 3).valid  # valid batches: 128
        h, o = rate(hand, len(files)), rate(ours, len(files))
        print(f"| {workers} | {h:,.0f} img/s | {o:,.0f} img/s | {o / h:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
