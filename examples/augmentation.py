"""Does augmentation help? CIFAR-10 from its JPEG folders, the same CNN, epochs and seed, four ways:
no augmentation; flips and padded random crops; those plus RandomAffine on the batch; flips and
crops plus MixUp.

    python examples/augmentation.py [--epochs 6] [--only none,crop] [--pictures DIR] [--quick]

Prints validation accuracy and wall time per variant as a Markdown table, how long the loader
alone takes for one augmented epoch against a full training epoch, and (with --pictures) saves
what the augmentations do to docs-style PNGs. `--quick` uses a fiftieth of the images, 1 epoch.
"""

import argparse
import time
from pathlib import Path

import torch

import learnloop as ll
from learnloop.datasets import cifar10
from learnloop.layers import cnn_layers
from learnloop.vision import ImageList, SplitData, grandparent_splitter, label_by_func, parent_labeler

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=6)
p.add_argument("--only", default="none,crop,affine,mixup")
p.add_argument("--pictures", default=None)
p.add_argument("--quick", action="store_true")
args = p.parse_args()
epochs = 1 if args.quick else args.epochs
torch.set_num_threads(1)  # one core trains, the other decodes and augments

il = ImageList.from_files(cifar10())
if args.quick:
    il.items = il.items[::50]
lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter("test")), parent_labeler)
crop = [ll.PilRandomFlip(), ll.RandomCrop(32, padding=4)]
affine = lambda: ll.RandomAffine(degrees=10, scale=(1.0, 1.1), translate=0.05, flip=0.0, seed=0)  # noqa: E731
variants = {  # name: (item transforms, batch callbacks)
    "none": ([], []),
    "crop": (crop, []),
    "affine": (crop, [affine()]),
    "mixup": (crop, [ll.MixUp(0.4, seed=0)]),
}
labels = {"none": "no augmentation", "crop": "flip + random crop (pad 4)", "affine": "flip + crop + RandomAffine", "mixup": "flip + crop + MixUp(0.4)"}


def dataloaders(tfms):
    return lsd.to_dataloaders(batch_size=128, num_workers=1, seed=0, item_tfms=tfms)


if args.pictures:
    out = Path(args.pictures)
    out.mkdir(parents=True, exist_ok=True)
    dls = dataloaders(crop)
    ll.show_augmentations(dls, idx=7, n=7, path=out / "augment_items.png")
    ll.show_augmentations(dls, idx=7, n=7, batch_tfms=[affine()], path=out / "augment_affine.png")
    print(f"pictures saved in {out}")

sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)  # noqa: E731
rows = []
for name in args.only.split(","):
    tfms, cbs = variants[name]
    ll.set_seed(0)
    dls = dataloaders(tfms)
    learn = ll.Learner(cnn_layers(dls.c_in, dls.c_out), dls, opt_func=sgd, lr=0.1, metrics=[ll.accuracy], progress=False, cbs=cbs)
    start = time.perf_counter()
    learn.fit_one_cycle(epochs, lr_max=0.1)
    wall = time.perf_counter() - start
    acc = learn.recorder.history[-1]["accuracy"]
    rows.append((name, acc, wall))
    print(f"{labels[name]}: accuracy {acc:.4f} after {epochs} epochs, {wall / 60:.1f} min", flush=True)
    if name == "affine":  # is the loader the bottleneck? time it alone for one epoch, with the batch transform
        start = time.perf_counter()
        for xb, _ in dls.train:
            cbs[0](dls.batch_tfms[0](xb))
        print(f"loader alone (decode, flip, crop in 1 worker; RandomAffine in the main process): {time.perf_counter() - start:.1f} s "
              f"per epoch, against {wall / epochs:.1f} s per training epoch", flush=True)  # fmt: skip

print(f"\n| augmentation | accuracy after {epochs} epochs | wall time |\n|---|---|---|")
for name, acc, wall in rows:
    print(f"| {labels[name]} | {acc:.4f} | {wall / 60:.1f} min |")
