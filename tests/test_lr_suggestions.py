"""The LR finder's suggestions lie in the useful stretch of every sweep (after the smoothing
warm-up, before the loss minimum), over 10 seeds and 3 models, and one-cycle at `valley` trains."""

from __future__ import annotations

import pytest
import torch

import learnloop as ll
from learnloop.datasets import fashion_mnist, mnist, mnist_dataloaders
from learnloop.layers import cnn, mlp


def _subset(data, n_train=6400, n_test=2000):
    return data._replace(x_train=data.x_train[:n_train], y_train=data.y_train[:n_train], x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])


@pytest.fixture(scope="module")
def datas(request):
    from .conftest import FASHION_DIR, MNIST_DIR

    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file() or not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("real MNIST and Fashion-MNIST not found (the project's ../shared/data); CI provides them")
    return {"mnist": _subset(mnist(MNIST_DIR)), "fashion": _subset(fashion_mnist(FASHION_DIR))}


MODELS = {
    "mlp-mnist": ("mnist", True, lambda: mlp([784, 50, 10])),
    "cnn-mnist": ("mnist", False, lambda: cnn((8, 16, 32), 10)),
    "cnn-fashion": ("fashion", False, lambda: cnn((8, 16, 32), 10)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_suggestions_stay_in_the_useful_stretch_over_ten_seeds(datas, name):
    torch.set_num_threads(1)
    which, flat, make = MODELS[name]
    for seed in range(10):
        ll.set_seed(seed)
        dls = mnist_dataloaders(64, flatten=flat, data=datas[which], seed=seed)
        learn = ll.Learner(make(), dls, opt_func=torch.optim.SGD, metrics=[ll.accuracy], progress=False)
        got = learn.lr_find(num_it=100)
        lrs, losses = learn.lr_find_result.lrs, learn.lr_find_result.losses
        # the stretch, worked out here on its own: past the first tenth, up to the lowest loss
        best = min(range(len(losses)), key=losses.__getitem__)
        lo, hi = lrs[len(losses) // 10], lrs[best]
        for key, lr in got.items():
            assert lo <= lr <= hi, (name, seed, key, lr, lo, hi)


def test_one_cycle_at_valley_trains(datas):
    ll.set_seed(0)
    dls = mnist_dataloaders(64, flatten=True, data=datas["mnist"], seed=0)
    learn = ll.Learner(mlp([784, 50, 10]), dls, metrics=[ll.accuracy], progress=False)
    valley = learn.lr_find()["valley"]
    learn.fit_one_cycle(1, lr_max=valley)
    assert learn.recorder.history[-1]["accuracy"] > 0.85, valley
