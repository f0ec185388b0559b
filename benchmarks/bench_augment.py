"""The lesson's augmentation timings (notebook 10) on this machine, plus batch rotation.

    python benchmarks/bench_augment.py [--quick]

Item transforms run on a 500 x 375 photo-like image (the size of a typical ImageNet JPEG, which
the lesson used), written once as a JPEG in a temporary folder. Each row is the median of
several repeats. The batch row rotates a 64 x 3 x 128 x 128 batch: RandomAffine (one
affine_grid + grid_sample) against rotating each image with Pillow.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from learnloop.vision import GeneralCrop, RandomAffine, np_to_float, to_byte_tensor, to_float_tensor, warp

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true")
args = p.parse_args()
reps = 5 if args.quick else 30
torch.set_num_threads(1)


def timed(fn, n=reps):
    fn()  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


yy, xx = np.mgrid[0:375, 0:500]
rng = np.random.default_rng(0)
photo = np.stack([xx * 0.5, yy * 0.6, 128 + 100 * np.sin(xx / 17) * np.cos(yy / 23)], -1) + rng.normal(0, 12, (375, 500, 3))
img = Image.fromarray(photo.clip(0, 255).astype(np.uint8))
tmp = Path(tempfile.mkdtemp())
img.save(tmp / "photo.jpg", quality=90)

rows = []
for name, resample in (("NEAREST", Image.NEAREST), ("BILINEAR", Image.BILINEAR), ("BICUBIC", Image.BICUBIC)):
    rows.append((f"resize to 224 x 224, {name}", timed(lambda r=resample: img.resize((224, 224), r))))
box = (60, 40, 60 + 300, 40 + 300)
rows.append(("crop 300 x 300 then resize to 224 (two resamples)", timed(lambda: img.crop(box).resize((224, 224), Image.BILINEAR))))
rows.append(("crop + resize in one EXTENT transform (the lesson's way)",
             timed(lambda: img.transform((224, 224), Image.Transform.EXTENT, box, resample=Image.BILINEAR))))
crop = GeneralCrop(224, crop_size=300)
rows.append(("GeneralCrop: crop + resize in one resize(box=)", timed(lambda: crop(img))))
corners = [(40, 20), (10, 350), (480, 360), (460, 5)]
rows.append(("perspective warp to 224, BILINEAR", timed(lambda: warp(img, 224, corners, Image.BILINEAR))))
rows.append(("perspective warp to 224, NEAREST", timed(lambda: warp(img, 224, corners, Image.NEAREST))))
small = img.resize((224, 224))
rows.append(("to_float_tensor(to_byte_tensor(img)), 224 px", timed(lambda: to_float_tensor(to_byte_tensor(small)))))
rows.append(("np_to_float(img), 224 px", timed(lambda: np_to_float(small))))


def decode(draft):
    im = Image.open(tmp / "photo.jpg")
    if draft:
        im.draft("RGB", (128, 128))
    return im.convert("RGB").resize((128, 128), Image.BILINEAR)


rows.append(("JPEG decode + resize to 128, full decode", timed(lambda: decode(False))))
rows.append(("JPEG decode + resize to 128, draft mode", timed(lambda: decode(True))))

x = torch.rand(64, 3, 128, 128)
aff = RandomAffine(degrees=30, scale=1.0, flip=0.0, p=1.0, seed=0)
g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
pils = [Image.fromarray((xi.permute(1, 2, 0).numpy() * 255).astype(np.uint8)) for xi in x]
angles = np.random.default_rng(0).uniform(-30, 30, 64)
batch_t = timed(lambda: aff(x, g()), n=max(3, reps // 3))
pil_t = timed(lambda: [im.rotate(a, Image.BILINEAR) for im, a in zip(pils, angles)], n=max(3, reps // 3))
rows.append(("rotate 64 x 3 x 128 x 128: Pillow, image by image", pil_t))
rows.append(("rotate 64 x 3 x 128 x 128: RandomAffine (one grid_sample), CPU", batch_t))
threads = os.cpu_count() or 1
if threads > 1:  # the training process uses every core torch gives it; Pillow's rotate uses one
    torch.set_num_threads(threads)
    rows.append((f"rotate 64 x 3 x 128 x 128: RandomAffine, CPU, {threads} threads", timed(lambda: aff(x, g()), n=max(3, reps // 3))))
    torch.set_num_threads(1)
nearest = RandomAffine(degrees=30, scale=1.0, flip=0.0, p=1.0, seed=0, mode="nearest")
rows.append(("rotate 64 x 3 x 128 x 128: RandomAffine, nearest, CPU", timed(lambda: nearest(x, g()), n=max(3, reps // 3))))

print(f"| operation (1 thread unless said, median of {reps}) | time |\n|---|---|")
for name, t in rows:
    print(f"| {name} | {t * 1e6:,.0f} us |" if t < 0.01 else f"| {name} | {t * 1e3:,.1f} ms |")
print(f"\nRandomAffine vs Pillow per image: {pil_t / batch_t:.1f}x {'faster' if batch_t < pil_t else 'slower'}")
