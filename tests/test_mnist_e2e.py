"""End to end on the real MNIST: the lesson's 784-50-10 MLP."""

from __future__ import annotations

from torch import nn

import learnloop as ll
from learnloop.datasets import mnist_dataloaders


def test_mlp_reaches_95_percent_in_two_epochs(mnist_dir):
    ll.set_seed(0)
    dls = mnist_dataloaders(64, flatten=True, path=mnist_dir, seed=0)
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    learn = ll.Learner(model, dls, lr=0.1, metrics=[ll.accuracy], progress=False)
    learn.fit(2)
    history = learn.recorder.history
    assert len(history) == 2 and history[-1]["accuracy"] >= 0.95
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert learn.validate()["accuracy"] == history[-1]["accuracy"]
