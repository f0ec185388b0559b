"""Image pipeline throughput: learnloop's data blocks against the loader a user would write by hand.

    python benchmarks/bench_vision.py [CIFAR_FOLDER] [--photos N]     # about four minutes

The hand-written pipeline: a `torch.utils.data.Dataset` that opens each file with Pillow,
converts it to RGB (and resizes it, for the photos) and to a float tensor in [0, 1], batched by
`torch.utils.data.DataLoader` with the same workers, kept between passes. learnloop's:
`to_dataloaders` (decode, at reduced size when shrinking a JPEG; resize; one uint8 batch collated
in the worker; float conversion left to the device, but counted here). Batches of 128, with 0, 1
and 2 workers; images per second, best of the passes.

Two folders: the 10,000 CIFAR-10 test JPEGs (32x32, read at their size), and N photos of about
500 px resized to 128x128 for training. The photos are made from the three photographs that
scikit-learn and matplotlib ship (each cropped, flipped and brightened at random, so no two
files are alike), written once to a cache folder.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from learnloop.datasets import cifar10
from learnloop.vision import ImageList, SplitData, get_files, image_extensions, label_by_func, parent_labeler


class HandDataset(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], size: int | None = None):
        self.files, self.size = files, size
        classes = sorted({f.parent.name for f in files})
        self.labels = [classes.index(f.parent.name) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = Image.open(self.files[i]).convert("RGB")
        if self.size is not None:
            img = img.resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1), self.labels[i]


def sample_photos() -> dict[str, Image.Image]:
    from matplotlib.cbook import get_sample_data
    from sklearn.datasets import load_sample_images

    found = load_sample_images()
    photos = {Path(f).stem: Image.fromarray(a) for f, a in zip(found.filenames, found.images)}
    photos["grace_hopper"] = Image.open(get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    return photos


def photo_folder(n: int) -> Path:
    """n JPEGs of about 500 px in one folder per source photo; made once, then reused."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "learnloop" / f"bench-photos-{n}"
    if (root / "done").is_file():
        return root
    rng = random.Random(0)
    photos = sample_photos()
    for k in range(n):
        name, img = list(photos.items())[k % len(photos)]
        w, h = img.size
        s = rng.uniform(0.7, 1.0)
        cw, ch = int(w * s), int(h * s)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        out = img.crop((x, y, x + cw, y + ch))
        out = out.resize((500, round(500 * ch / cw)), Image.BICUBIC)
        if rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))
        (root / name).mkdir(parents=True, exist_ok=True)
        out.save(root / name / f"{k:05d}.jpg", quality=90)
    (root / "done").write_text("ok")
    return root


def rate(loader, n: int, passes: int) -> float:
    best = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        for xb, _ in loader:
            if xb.dtype == torch.uint8:
                xb.float()  # what learnloop leaves for the device; counted here to be fair
        best = max(best, n / (time.perf_counter() - t0))
    return best


def compare(title: str, files: list[Path], root: Path, size: int | None, passes: int) -> None:
    il = ImageList(files, root)
    # every file on the "valid" side, which is read in order, as the hand loader below
    lsd = label_by_func(SplitData(il.new(files), il.new(files)), parent_labeler)
    print(f"\n{title}\n\n| workers | hand-written Dataset + torch DataLoader | learnloop data blocks | ratio |\n|---|---|---|---|")
    for workers in (0, 1, 2):
        hand = torch.utils.data.DataLoader(HandDataset(files, size), batch_size=128, num_workers=workers, persistent_workers=workers > 0)
        ours = lsd.to_dataloaders(batch_size=64, size=size, num_workers=workers, mean=[0.5] * 3, std=[0.25] * 3).valid  # valid batches: 128
        h, o = rate(hand, len(files), passes), rate(ours, len(files), passes)
        print(f"| {workers} | {h:,.0f} img/s | {o:,.0f} img/s | {o / h:.2f}x |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cifar", nargs="?", help="the unpacked CIFAR-10 folder (default: learnloop.datasets.cifar10())")
    parser.add_argument("--photos", type=int, default=2000, help="how many ~500 px photos to read (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    folder = Path(args.cifar) if args.cifar else cifar10()
    files = get_files(folder / "test", image_extensions)
    compare(f"{len(files):,} CIFAR-10 test JPEGs (32x32) from {folder}, best of 3 passes", files, folder, None, 3)
    if args.photos:
        root = photo_folder(args.photos)
        files = get_files(root, image_extensions)
        compare(f"{len(files):,} photos of about 500x375 px resized to 128x128, from {root}, best of 2 passes", files, root, 128, 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
