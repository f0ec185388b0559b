"""What every command builds from its options: the device, the data, the model, the Learner."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import torch

from .. import distributed
from ..callbacks.precision import GradientClip, MixedPrecision
from ..data import DataLoaders
from ..datasets import FILES, PRETTY, cifar10, fashion_mnist, mnist, mnist_dataloaders
from ..events import Callback
from ..layers import cnn, cnn_layers, mlp
from ..learner import Learner
from ..metrics import accuracy
from ..utils import default_device, set_seed
from ..vision import folder_dataloaders, get_files, image_extensions
from .parser import OPTIMIZERS, UsageError


def _device(name: str) -> torch.device:
    if name == "auto":
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


class _Data(NamedTuple):
    """What a command trains on, for its messages: a name, the validation size, where from."""

    name: str
    n_valid: int
    source: str


def _image_folder(args: argparse.Namespace) -> Path | None:
    """The folder of images to train on, or None for MNIST / Fashion-MNIST."""
    if getattr(args, "dataset", "mnist") == "cifar10":
        return cifar10(args.data, verbose=distributed.is_main())
    if args.data is None or not Path(args.data).is_dir():
        return None
    folder = Path(args.data)
    if any((d / f"{FILES[0]}{gz}").is_file() for d in (folder, folder / args.dataset) for gz in (".gz", "")):
        return None  # IDX files: the MNIST family
    return folder if get_files(folder, image_extensions) else None


def make_data(args: argparse.Namespace) -> tuple[DataLoaders, torch.nn.Module, _Data]:
    main_rank = distributed.is_main()
    folder = _image_folder(args)
    if folder is not None:
        dls = folder_dataloaders(folder, args.bs, size=getattr(args, "size", None), seed=args.seed, num_workers=getattr(args, "workers", None),
                                 on_error="skip" if getattr(args, "skip_bad_images", False) else "raise", verbose=main_rank)  # fmt: skip
        return dls, cnn_layers(dls.c_in, dls.c_out), _Data(folder.name, len(dls.valid.dataset), str(folder))
    data = (fashion_mnist if args.dataset == "fashion-mnist" else mnist)(args.data, verbose=main_rank)
    dls = mnist_dataloaders(args.bs, flatten=args.model == "mlp", data=data, seed=args.seed)
    model = mlp([784, args.hidden, 10]) if args.model == "mlp" else cnn(args.channels, 10)
    return dls, model, _Data(PRETTY[data.name], len(data.x_test), data.source)


def make_learner(args: argparse.Namespace, progress: bool) -> tuple[Learner, _Data]:
    device = _device(args.device)
    set_seed(args.seed)
    dls, model, data = make_data(args)
    lr = getattr(args, "lr", 1e-3)
    cbs: list[Callback] = []
    if getattr(args, "precision", "fp32") != "fp32":
        cbs.append(MixedPrecision(args.precision))
    if getattr(args, "clip", None):
        cbs.append(GradientClip(max_norm=args.clip))
    learn = Learner(model, dls, lr=lr, opt_func=OPTIMIZERS[args.opt], metrics=[accuracy], device=device, progress=progress,
                    compile=getattr(args, "compile", False), cbs=cbs)  # fmt: skip
    return learn, data
