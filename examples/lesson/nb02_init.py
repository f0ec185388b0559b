"""Notebooks 02a (why sqrt(5)) and 02b (initialising): the scale of activations and gradients.

    python examples/lesson/nb02_init.py [--quick]
"""

import math
import statistics

import torch
import torch.nn.functional as F
from common import QUICK, Timer, data, fmt, row
from torch import nn

from learnloop.datasets import MNIST_MEAN, MNIST_STD, normalize
from learnloop.diagnostics import layer_stats, matmul_experiment, sqrt5_net
from learnloop.init import init_model, kaiming_normal_, kaiming_uniform_


def main() -> None:
    d = data()
    xb, yb = normalize(d.x_test[:100], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28), d.y_test[:100].float()
    mse = lambda out, y: F.mse_loss(out.squeeze(-1), y)  # noqa: E731
    seeds = range(3 if QUICK else 20)
    with Timer() as t:
        runs = {"default": [], "kaiming": []}
        for s in seeds:
            torch.manual_seed(s)
            m = sqrt5_net()
            st = layer_stats(m, xb, yb, mse)
            runs["default"].append((st[-1]["act_std"], st[0]["grad_std"]))
            init_model(m, kaiming_uniform_, bias=0.0)
            st = layer_stats(m, xb, yb, mse)
            runs["kaiming"].append((st[-1]["act_std"], st[0]["grad_std"]))
    def spread(k, i):
        vals = [v[i] for v in runs[k]]
        return fmt((statistics.median(vals), min(vals), max(vals)))

    row("02a", "4-layer stride-2 conv net, 100 validation images: output std, default init vs kaiming_uniform + zero bias",
        "0.0065 vs 0.4043", f"{spread('default', 0)} vs {spread('kaiming', 0)}", f"median (range) over {len(seeds)} seeds", t.seconds)  # fmt: skip
    row("02a", "same: first-layer weight-gradient std", "0.0333 vs 0.4231", f"{spread('default', 1)} vs {spread('kaiming', 1)}",
        f"median (range) over {len(seeds)} seeds", t.seconds)  # fmt: skip

    with Timer() as t:
        x = normalize(d.x_train[:100], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28)
        w_std, relu_default, relu_kaiming = [], [], []
        for s in seeds:
            torch.manual_seed(s)
            conv = nn.Conv2d(1, 32, 5)
            w_std.append(conv.weight.std().item())
            relu_default.append(F.relu(conv(x)).std().item())
            kaiming_normal_(conv.weight, a=0.0)
            relu_kaiming.append(F.relu(conv(x)).std().item())
    def stats(v, digits=4):
        return fmt((statistics.median(v), min(v), max(v)), digits)

    row("02a", "one Conv2d(1, 32, 5): default weight std (theory 1/sqrt(75) = 0.11547)", "0.1156", stats(w_std),
        f"median (range) over {len(seeds)} seeds", t.seconds)  # fmt: skip
    row("02a", "ReLU(conv) output std, default vs Kaiming (a=0)", "0.3653 vs 1.0199", f"{stats(relu_default)} vs {stats(relu_kaiming)}",
        f"median (range) over {len(seeds)} seeds, first 100 training images", t.seconds)  # fmt: skip

    with Timer() as t:
        overflow, vanish, final = [], [], []
        for s in seeds:
            overflow.append(next(i + 1 for i, v in enumerate(matmul_experiment(1.0, seed=s)) if not math.isfinite(v)))
            vanish.append(next(i + 1 for i, v in enumerate(matmul_experiment(0.01, seed=s)) if v == 0))
            final.append(matmul_experiment(512**-0.5, seed=s)[-1])
    row("02b", "100 chained 512x512 products: randn overflows after; x0.01 vanishes after; randn/sqrt(512) ends at",
        "about 28 products; exactly 0; 0.927", f"{stats(overflow, 0)} products; 0 after {stats(vanish, 0)}; {stats(final, 3)}",
        f"median (range) over {len(seeds)} seeds", t.seconds)  # fmt: skip


if __name__ == "__main__":
    main()
