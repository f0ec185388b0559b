"""`learnloop train`: a run folder kept current epoch by epoch, resuming, and launching N processes."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..callbacks.checkpoint import Checkpoint
from ..callbacks.loggers import CSVLogger, TensorBoardLogger
from ..checkpoint import load_checkpoint, save_model
from ..events import Callback
from ..loop import BaseLearner
from ..serialize import CheckpointError, atomic_write
from ..version import __version__
from .parser import UsageError
from .setup import make_learner


class _RunFolder(Callback):
    """Keeps the run folder current: history.json and weights after every epoch, each written
    whole (history.csv comes from a CSVLogger, which appends when the run resumes)."""

    order = 96  # after the Recorder (50) has written the epoch's row
    rank_zero_only = True

    def __init__(self, out: Path):
        self.out = out

    def after_epoch(self, learn: BaseLearner) -> None:
        # Weights first: an epoch in history.json then always has its weights on disk, even when
        # the process is killed between the two writes.
        save_model(learn.model, self.out / "model.safetensors")
        history = learn.recorder.history
        atomic_write(self.out / "history.json", lambda f: f.write(json.dumps(history, indent=2).encode()))


# What --resume takes back from a run's config.json.
_RUN_SETTINGS = ("data", "dataset", "size", "workers", "skip_bad_images", "epochs", "bs", "lr", "opt", "model", "channels", "hidden", "device", "seed", "schedule", "save_every",
                 "precision", "compile", "clip", "nproc", "tensorboard")  # fmt: skip


def resumed_args(args: argparse.Namespace) -> tuple[argparse.Namespace, Path]:
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
    args, out = resumed_args(args) if args.resume else (args, _start_run(args))
    learn, data = make_learner(args, progress=not args.quiet)
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
    cbs = [Checkpoint(every_n_steps=args.save_every, every_n_epochs=1, dir=checkpoints), _RunFolder(out), CSVLogger(out / "history.csv")]
    if args.tensorboard:
        cbs.append(TensorBoardLogger(out / "tensorboard"))
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


def launch(args: argparse.Namespace, argv: list[str]) -> int:
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
