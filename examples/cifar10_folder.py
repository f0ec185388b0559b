"""Train the lesson's image CNN on CIFAR-10 straight from its JPEG folders (data blocks).

    python examples/cifar10_folder.py [EPOCHS] [--augment] [--threads N] [--quick]

Reads the images with the data blocks (get the files, split by train/ and test/ folders, label
by class folder, decode and batch), trains `cnn_layers` with one-cycle and reports validation
accuracy and wall time per epoch, and the times to 80% and 85%. `--augment` adds the CIFAR
classics, random flips and 4-pixel padded random crops. `--quick` trains on a twentieth of the
images for one epoch (tests).
"""

import argparse
import time

import torch

import learnloop as ll
from learnloop.datasets import cifar10
from learnloop.layers import cnn_layers
from learnloop.vision import ImageList, PilRandomFlip, RandomCrop, SplitData, grandparent_splitter, label_by_func, parent_labeler

parser = argparse.ArgumentParser(description="CIFAR-10 from its JPEG folders")
parser.add_argument("epochs", type=int, nargs="?", default=None)
parser.add_argument("--augment", action="store_true", help="random flips and 4-pixel padded random crops")
parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
parser.add_argument("--quick", action="store_true", help="a twentieth of the images, one epoch")
opts = parser.parse_args()
quick, augment = opts.quick, opts.augment
epochs = opts.epochs or (1 if quick else 5)
# Decoding 32x32 JPEGs takes a worker a few seconds of each epoch; the convolutions take the rest,
# so training gets every core (two threads ran an epoch in 44 s here, one thread in 84 s).
torch.set_num_threads(opts.threads)
ll.set_seed(0)
il = ImageList.from_files(cifar10(verbose=True))  # get the files
if quick:
    il.items = il.items[::20]
sd = SplitData.split_by_func(il, grandparent_splitter("test"))  # split them: train/ and test/
lsd = label_by_func(sd, parent_labeler)  # label them by their folder
tfms = [PilRandomFlip(), RandomCrop(32, padding=4)] if augment else []
dls = lsd.to_dataloaders(batch_size=128, num_workers=1, seed=0, item_tfms=tfms)  # decode in a worker, batch
print(f"{len(lsd.train):,} training and {len(lsd.valid):,} validation images, classes {dls.vocab}, augmentation: {tfms or 'none'}")


class Clock(ll.Callback):
    order = 95

    def before_fit(self, learn):
        self.start, self.times = time.perf_counter(), []

    def after_epoch(self, learn):
        row = learn.recorder.history[-1]
        self.times.append(time.perf_counter() - self.start)
        print(f"epoch {learn.epoch + 1}/{epochs}: accuracy {row['accuracy']:.4f}, {self.times[-1]:.0f} s so far", flush=True)


sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)  # noqa: E731
# channels_last: oneDNN's convolutions run about 12% faster on this layout (44 vs 50 s an epoch here).
model = cnn_layers(dls.c_in, dls.c_out).to(memory_format=torch.channels_last)
clock = Clock()
learn = ll.Learner(model, dls, opt_func=sgd, lr=0.1, metrics=[ll.accuracy], progress=False, cbs=[clock])
learn.fit_one_cycle(epochs, lr_max=0.1)
hist = learn.recorder.history
print(f"final accuracy {hist[-1]['accuracy']:.4f} after {epochs} epochs")
for goal in (0.80, 0.85):
    reached = next((i for i, r in enumerate(hist) if r["accuracy"] >= goal), None)
    print(f"{goal:.0%}: " + (f"reached at epoch {reached + 1}, {clock.times[reached]:.0f} s" if reached is not None else "not reached"))
