"""The lesson's "why sqrt(5)" experiment, over 20 random initialisations instead of one.

    python examples/why_sqrt5.py

For the 4-layer stride-2 conv net on 100 normalised MNIST images, compares PyTorch's default
init with Kaiming-uniform (zero bias): the std of the network's output and of the first
layer's weight gradient (MSE against the digit), as medians over 20 seeds.
"""

import statistics

import torch
import torch.nn.functional as F

from learnloop.datasets import MNIST_MEAN, MNIST_STD, mnist, normalize
from learnloop.diagnostics import layer_stats, sqrt5_net
from learnloop.init import init_model, kaiming_uniform_

data = mnist(verbose=True)
xb, yb = normalize(data.x_test[:100], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28), data.y_test[:100].float()


def mse(out, y):
    return F.mse_loss(out.squeeze(-1), y)


results = {"PyTorch default": [], "Kaiming-uniform": []}
for seed in range(20):
    torch.manual_seed(seed)
    model = sqrt5_net()
    stats = layer_stats(model, xb, yb, mse)
    results["PyTorch default"].append((stats[-1]["act_std"], stats[0]["grad_std"]))
    init_model(model, kaiming_uniform_, bias=0.0)
    stats = layer_stats(model, xb, yb, mse)
    results["Kaiming-uniform"].append((stats[-1]["act_std"], stats[0]["grad_std"]))

print(f"{'init':<18}{'output std':>12}{'first-layer grad std':>22}   (medians over 20 seeds)")
for name, rows in results.items():
    print(f"{name:<18}{statistics.median(r[0] for r in rows):>12.4f}{statistics.median(r[1] for r in rows):>22.4f}")
