"""Batch size 2: nn.BatchNorm2d against RunningBatchNorm (the lesson's experiment, bounded).

    python examples/tiny_batches.py [steps]

Trains the CNN [8, 16, 32, 64, 64] on MNIST at batch size 2 for `steps` optimizer steps (default
3000) with each normalisation layer, same seed and data order, then reports validation accuracy.
With two images a batch, BatchNorm's per-batch statistics are mostly noise, and its running
statistics (used at evaluation) disagree with what it trained on; RunningBatchNorm normalises
with the same running statistics in training and evaluation.
"""

import sys
import time

import torch

import learnloop as ll
from learnloop.datasets import mnist_dataloaders
from learnloop.init import init_model, kaiming_normal_
from learnloop.layers import cnn

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
torch.set_num_threads(1)


class StopAfter(ll.Callback):
    def __init__(self, n):
        self.n = n

    def after_batch(self, learn):
        if learn.training and learn.train_batches_done >= self.n:
            raise ll.CancelTrainException  # go straight to validation


for norm in ("batch", "running_batch"):
    ll.set_seed(0)
    dls = mnist_dataloaders(batch_size=2, flatten=False, seed=0)
    dls.valid = ll.DataLoader(dls.valid.dataset, batch_size=512)
    model = init_model(cnn((8, 16, 32, 64, 64), norm=norm, leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)
    learn = ll.Learner(model, dls, lr=0.4, opt_func=torch.optim.SGD, metrics=[ll.accuracy], progress=False)
    start = time.perf_counter()
    learn.fit(1, cbs=[StopAfter(steps)])
    h = learn.recorder.history[-1]
    print(f"{norm:>14}: {steps} steps at batch size 2, validation accuracy {h['accuracy']:.4f} ({time.perf_counter() - start:.0f}s)")
