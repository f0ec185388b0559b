"""The other commands: `lr-find`, `show-batch`, `init-report`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..data import ArrayDataset
from ..datasets import MNIST_MEAN, MNIST_STD, mnist, normalize
from ..diagnostics import init_report, matmul_experiment, sqrt5_net
from ..init import init_model, kaiming_uniform_
from ..utils import set_seed
from ..vision import show_batch
from .parser import UsageError
from .setup import make_data, make_learner


def lr_find(args: argparse.Namespace) -> int:
    if args.num_it < 2:
        raise UsageError(f"--num-it must be at least 2 (a sweep needs two learning rates), got {args.num_it}")
    if not Path(args.plot).parent.is_dir():
        raise UsageError(f"--plot {args.plot}: the folder {Path(args.plot).parent} does not exist")
    if not args.start_lr < args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    learn, _ = make_learner(args, progress=True)
    suggestions = learn.lr_find(args.start_lr, args.end_lr, args.num_it)
    for name, lr in suggestions.items():
        print(f"{name:>8}: {lr:.2e}")
    learn.plot_lr_find(path=args.plot)
    print(f"plot saved to {args.plot}")
    return 0


def show_batch_cmd(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    set_seed(args.seed)
    dls, _, data = make_data(argparse.Namespace(**{**vars(args), "model": "cnn", "hidden": 50, "channels": [8]}))
    if isinstance(dls.train.dataset, ArrayDataset):  # MNIST: show the digits as images, with their names
        dls.vocab = dls.meta.get("classes")
    show_batch(dls, n=args.n, path=out)
    print(f"saved {min(args.n, args.bs)} {data.name} images with their labels to {out}")
    return 0


def init_report_cmd(args: argparse.Namespace) -> int:
    if args.matmul:
        print("x <- (scale * randn(512, 512)) @ x, 100 times, from x = randn(512)")
        print(f"{'scale':<22}{'std after 10':>14}{'after 50':>12}{'after 100':>12}   what happens")
        for label, scale in (("1 (plain randn)", 1.0), ("0.01", 0.01), ("1/sqrt(512) = 0.0442", 512**-0.5)):
            stds = matmul_experiment(scale)
            broke = next((i + 1 for i, v in enumerate(stds) if not math.isfinite(v)), None)
            gone = next((i + 1 for i, v in enumerate(stds) if v == 0), None)
            what = f"overflows (inf/nan) at product {broke}" if broke else f"vanishes to 0 at product {gone}" if gone else "stays near 1"
            print(f"{label:<22}{stds[9]:>14.3g}{stds[49]:>12.3g}{stds[99]:>12.3g}   {what}")
        return 0
    data = mnist(args.data, verbose=True)
    n = min(args.n, len(data.x_test))
    xb, yb = normalize(data.x_test[:n], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28), data.y_test[:n].float()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(out.squeeze(-1), y)

    torch.manual_seed(args.seed)
    model = sqrt5_net()
    before = init_report(model, xb, yb, loss)
    init_model(model, kaiming_uniform_, bias=0.0)
    after = init_report(model, xb, yb, loss)
    print(f"{n} normalised MNIST test images, MSE against the digit; seed {args.seed}")
    print(f"{'layer':<7}{'type':<19}{'act std: default':>17}{'kaiming':>10}{'grad std: default':>19}{'kaiming':>10}")
    for a, b in zip(before.stats, after.stats):
        ga = f"{a['grad_std']:.4g}" if a["grad_std"] is not None else ""
        gb = f"{b['grad_std']:.4g}" if b["grad_std"] is not None else ""
        print(f"{a['layer']:<7}{a['type']:<19}{a['act_std']:>17.4g}{b['act_std']:>10.4g}{ga:>19}{gb:>10}")
    for name, rep in (("PyTorch default init (kaiming_uniform_, a=sqrt(5))", before), ("Kaiming-uniform init, zero bias", after)):
        print(f"\n{name}: {'healthy' if rep.ok else f'{len(rep.problems)} problem(s)'}")
        for p in rep.problems:
            print(f"  - {p}")
    return 0
