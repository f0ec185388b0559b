"""Train the lesson's image CNN on CIFAR-10 straight from its JPEG folders (data blocks).

    python examples/cifar10_folder.py [EPOCHS] [--quick]

Reads the images with the data blocks (get the files, split by train/ and test/ folders, label
by class folder, decode and batch), trains `cnn_layers` with one-cycle and reports validation accuracy and wall time per
epoch, and the time to 80%. `--quick` trains on a twentieth of the images for one epoch (tests).
"""

import sys
import time

import torch

import learnloop as ll
from learnloop.datasets import cifar10
from learnloop.layers import cnn_layers
from learnloop.vision import ImageList, SplitData, grandparent_splitter, label_by_func, parent_labeler

quick = "--quick" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
epochs = int(args[0]) if args else (1 if quick else 5)
torch.set_num_threads(1)  # one core trains, the other decodes
ll.set_seed(0)
il = ImageList.from_files(cifar10(verbose=True))  # get the files
if quick:
    il.items = il.items[::20]
sd = SplitData.split_by_func(il, grandparent_splitter("test"))  # split them: train/ and test/
lsd = label_by_func(sd, parent_labeler)  # label them by their folder
dls = lsd.to_dataloaders(batch_size=128, num_workers=1, seed=0)  # decode in a worker, batch
print(f"{len(lsd.train):,} training and {len(lsd.valid):,} validation images, classes {dls.vocab}")


class Clock(ll.Callback):
    order = 95

    def before_fit(self, learn):
        self.start = time.perf_counter()

    def after_epoch(self, learn):
        row = learn.recorder.history[-1]
        print(f"epoch {learn.epoch + 1}/{epochs}: accuracy {row['accuracy']:.4f}, {time.perf_counter() - self.start:.0f} s so far", flush=True)


sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)  # noqa: E731
learn = ll.Learner(cnn_layers(dls.c_in, dls.c_out), dls, opt_func=sgd, lr=0.1, metrics=[ll.accuracy], progress=False, cbs=[Clock()])
learn.fit_one_cycle(epochs, lr_max=0.1)
hist = learn.recorder.history
reached = next((i + 1 for i, r in enumerate(hist) if r["accuracy"] >= 0.80), None)
print(f"final accuracy {hist[-1]['accuracy']:.4f} after {epochs} epochs; 80% " + (f"reached at epoch {reached}" if reached else "not reached"))
