"""Checkpoints: everything a training run needs to carry on exactly, in one pickle-free file.

A checkpoint holds the model's weights (and gradients, when an accumulation window is open),
the optimizer's state, every callback's `state_dict`, the loaders' positions, the loop's
counters and every RNG, plus the learnloop, torch and format versions. `learn.save` /
`learn.load` write and read one; `fit(..., resume=path)` continues the run it came from, so
that the finished run is bitwise the one that was never interrupted (CPU, fixed seed).
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .events import Callback
from .loop import BaseLearner
from .serialize import CheckpointError, read_state, write_state
from .utils import unwrap_model
from .version import __version__

__all__ = ["save_checkpoint", "load_checkpoint", "learner_state", "restore_state", "Resume", "save_model", "load_model", "latest_checkpoint"]

LATEST = "latest"  # in a checkpoint folder: the name of the newest complete checkpoint


# ---- RNGs ---------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


# ---- the learner's state ------------------------------------------------------------------------


def _loader_state(dl: Any, which: str) -> dict | None:
    if dl is None:
        return None
    if not hasattr(dl, "state_dict"):
        raise TypeError(
            f"The {which} loader ({type(dl).__name__}) cannot record its position, so the run could not resume exactly; "
            "use learnloop's DataLoader (DataLoaders.from_tensors / from_datasets)."
        )
    return dl.state_dict()


def _between_training_pass_and_epoch_end(learn: BaseLearner) -> bool:
    # The training loader has closed its pass, but the epoch is not counted as done: the state
    # has no position that says "this epoch's training is over", so a resume would redo it.
    train = learn.dls.train
    if getattr(train, "mid_pass", False) or not hasattr(train, "__len__"):
        return False
    return learn.epochs_done == learn.epoch and learn.train_batches_done == (learn.epoch + 1) * len(train)


def learner_state(learn: BaseLearner) -> dict[str, Any]:
    """Everything `restore_state` needs to put `learn` back where it is now."""
    if getattr(learn.dls.valid, "mid_pass", False):
        raise RuntimeError("Cannot checkpoint in the middle of validation: save after a training batch or after an epoch.")
    if _between_training_pass_and_epoch_end(learn):
        raise RuntimeError(
            "Cannot checkpoint between an epoch's training pass and the end of the epoch (after_train, validation): "
            "a run resumed from here would train that epoch again. Save after a training batch or in after_epoch (or keep just the weights with save_model)."
        )
    model = unwrap_model(learn.model)  # a compiled model's own keys, without `_orig_mod.`
    return {
        "versions": {"learnloop": __version__, "torch": torch.__version__},
        "model": model.state_dict(),
        "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
        "opt": None if learn.opt is None else {"class": type(learn.opt).__name__, "state": learn.opt.state_dict()},
        "callbacks": {cb.name: {"class": type(cb).__name__, "state": cb.state_dict()} for cb in learn.cbs},
        "loaders": {"train": _loader_state(learn.dls.train, "training"), "valid": _loader_state(learn.dls.valid, "validation")},
        "loop": {
            "epoch": learn.epoch,
            "epochs_done": learn.epochs_done,
            "n_epochs": learn.n_epochs,
            "train_batches_done": learn.train_batches_done,
            "total_train_batches": learn.total_train_batches,
            "mid_epoch": bool(getattr(learn.dls.train, "mid_pass", False)),
        },
        "rng": rng_state(),
    }


def _load_model_state(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict load, with an error that names every missing, unexpected and wrongly shaped entry."""
    model = unwrap_model(model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} (model has {tuple(own[k].shape)})" for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = [f"missing: {missing}" if missing else "", f"unexpected: {unexpected}" if unexpected else "", f"wrong shape: {shapes}" if shapes else ""]
        raise CheckpointError(f"{where} does not fit this model ({'; '.join(p for p in parts if p)}). Build the same architecture it was saved from.")
    model.load_state_dict(state)


def restore_state(learn: BaseLearner, state: dict[str, Any], where: str = "the checkpoint", strict_callbacks: bool = True) -> None:
    """Put `learn` back into `state` (from `learner_state`): weights, gradients, optimizer,
    callbacks, loaders, counters and RNGs. With `strict_callbacks`, the attached callbacks must
    be the ones whose state was saved (as an exact resume needs)."""
    _load_model_state(learn.model, state["model"], where)
    params = dict(unwrap_model(learn.model).named_parameters())
    for name, p in params.items():
        g = state["grads"].get(name)
        p.grad = None if g is None else g.to(p.device, p.dtype).clone()
    saved_opt = state["opt"]
    if saved_opt is not None:
        if learn.opt is None:
            learn.create_opt()
        if type(learn.opt).__name__ != saved_opt["class"]:
            raise CheckpointError(f"{where} holds the state of a {saved_opt['class']} optimizer, but this learner uses {type(learn.opt).__name__}.")
        try:
            learn.opt.load_state_dict(saved_opt["state"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{where}: the optimizer state does not fit this learner's optimizer ({e}).") from e
    _restore_callbacks(learn, state["callbacks"], where, strict_callbacks)
    for which, dl in (("train", learn.dls.train), ("valid", learn.dls.valid)):
        if state["loaders"].get(which) is not None and hasattr(dl, "load_state_dict"):
            dl.load_state_dict(state["loaders"][which])
    loop = state["loop"]
    learn.epoch, learn.epochs_done, learn.n_epochs = loop["epoch"], loop["epochs_done"], loop["n_epochs"]
    learn.train_batches_done, learn.total_train_batches = loop["train_batches_done"], loop["total_train_batches"]
    learn.pct_train = learn.train_batches_done / max(1, learn.total_train_batches)
    set_rng_state(state["rng"])


def _restore_callbacks(learn: BaseLearner, saved: dict[str, Any], where: str, strict: bool) -> None:
    attached = {cb.name: cb for cb in learn.cbs}
    stray = [f"{n} ({s['class']})" for n, s in saved.items() if s["state"] and n not in attached]
    unsaved = [f"{n} ({type(cb).__name__})" for n, cb in attached.items() if n not in saved and cb.state_dict()]
    if stray or unsaved:
        msg = (f"{where} and this learner have different callbacks: "
               + "; ".join(p for p in (f"saved but not attached: {stray}" if stray else "", f"attached but not saved: {unsaved}" if unsaved else "") if p)
               + ". Attach the callbacks the run had (including fit-only ones such as a recipe's ParamScheduler).")  # fmt: skip
        if strict:
            raise CheckpointError(msg)
        warnings.warn(msg, stacklevel=4)  # at the line that called Learner.load
    for name, cb in attached.items():
        if name in saved and saved[name]["state"]:
            cb.load_state_dict(saved[name]["state"])


class Resume(Callback):
    """Attached by `fit(..., resume=...)`: after every other callback has set itself up, puts the
    learner back into the checkpoint's state and makes the loop start where the run stopped (the
    next epoch, or mid-epoch at the training loader's saved position)."""

    order = 10**6  # after every other callback's before_fit / before_train

    def __init__(self, state: dict[str, Any], where: str):
        self.state, self.where = state, where

    def before_fit(self, learn: BaseLearner) -> None:
        loop = self.state["loop"]
        if loop["n_epochs"] != learn.n_epochs:
            raise CheckpointError(
                f"{self.where} comes from a fit of {loop['n_epochs']} epochs; resume with the same number "
                f"(got {learn.n_epochs}), so schedules match. To train further, load() it and fit anew."
            )
        if loop["total_train_batches"] != learn.total_train_batches:
            raise CheckpointError(f"{self.where}: the training loader now has a different number of batches than when it was saved.")
        learn.start_epoch = loop["epoch"] if loop["mid_epoch"] else loop["epochs_done"]
        if not loop["mid_epoch"]:
            self._restore(learn)

    def before_train(self, learn: BaseLearner) -> None:
        if self.state is not None:
            self._restore(learn)

    def _restore(self, learn: BaseLearner) -> None:
        state, self.state = self.state, None
        restore_state(learn, state, self.where)

    def state_dict(self) -> dict[str, Any]:
        return {}


# ---- files --------------------------------------------------------------------------------------


def save_checkpoint(learn: BaseLearner, path: str | Path) -> Path:
    """Write `learn`'s whole state to `path` (one safetensors file), atomically."""
    return write_state(path, learner_state(learn), "checkpoint")


def latest_checkpoint(folder: str | Path) -> Path:
    """The newest complete checkpoint in a folder written by the `Checkpoint` callback."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No checkpoint folder at {folder}.")
    pointer = folder / LATEST
    if not pointer.is_file():
        raise FileNotFoundError(f"{folder} holds no checkpoint yet (no '{LATEST}' file): nothing to resume from.")
    path = folder / pointer.read_text().strip()
    if not path.is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is missing.")
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Read a checkpoint file, or a checkpoint folder's latest one: (state, the file's path)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: no such file or folder.")
    if path.is_dir():
        path = latest_checkpoint(path)
    return read_state(path, "checkpoint"), path


def save_model(model: nn.Module, path: str | Path) -> Path:
    """The model's weights and buffers alone, as a safetensors file (atomic)."""
    return write_state(path, {"model": unwrap_model(model).state_dict()}, "model")


def load_model(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by `save_model` into `model`, strictly: a mismatch names the missing,
    unexpected and wrongly shaped parameters. Returns the model."""
    _load_model_state(model, read_state(path, "model")["model"], str(path))
    return model
