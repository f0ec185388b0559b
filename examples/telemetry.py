"""Telemetry: default init with plain ReLU against Kaiming init with GeneralRelu.

    python examples/telemetry.py

Trains the lesson's CNN [8, 16, 32, 64, 64] on MNIST for one epoch (batch size 128, one-cycle
SGD) twice, watching every layer's activations with ActivationStats, and prints each layer's
dead share (activations in the lowest histogram bin) and the validation accuracy. Saves the
colorful-dimension and dead-share plots of both runs as PNG files in the current folder.
"""

import torch
from torch import nn

import learnloop as ll
from learnloop.datasets import mnist_dataloaders
from learnloop.init import init_model, kaiming_normal_
from learnloop.layers import cnn

torch.set_num_threads(1)
runs = {
    "default": lambda: cnn((8, 16, 32, 64, 64), norm=None, act=nn.ReLU),
    "kaiming_generalrelu": lambda: init_model(
        cnn((8, 16, 32, 64, 64), norm=None, leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1
    ),
}
for name, make in runs.items():
    ll.set_seed(0)
    dls = mnist_dataloaders(batch_size=128, flatten=False, seed=0)
    stats = ll.ActivationStats(every=5)
    learn = ll.Learner(make(), dls, opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), metrics=[ll.accuracy],
                       cbs=[stats], progress=False)  # fmt: skip
    learn.fit_one_cycle(1, lr_max=0.2)
    s = stats.stats()
    n = len(stats.steps)
    early, late = s["dead"][: n // 5].mean(0), s["dead"][-n // 5 :].mean(0)
    print(f"{name}: validation accuracy {learn.recorder.history[-1]['accuracy']:.4f}")
    for layer, a, b in zip(stats.layer_names, early.tolist(), late.tolist()):
        print(f"  layer {layer:<6} dead share: first fifth of training {a:.0%}, last fifth {b:.0%}")
    print("  " + stats.summary().replace("\n", "\n  "))
    stats.plot_colorful(path=f"colorful_{name}.png")
    stats.plot_dead(path=f"dead_{name}.png")
