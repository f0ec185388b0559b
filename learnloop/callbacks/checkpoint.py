"""Callbacks that watch the run's progress on disk and in the history: `Checkpoint`, `SaveBest`
and `EarlyStopping`. Monitors are column names of the Recorder's epoch history."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import LATEST, save_checkpoint, save_model
from ..distributed import is_main
from ..events import Callback, CancelFitException
from ..loop import BaseLearner
from ..serialize import atomic_write

__all__ = ["Checkpoint", "SaveBest", "EarlyStopping"]


class _Monitor:
    """One column of the Recorder's history, and when a new value counts as better."""

    def __init__(self, name: str, mode: str, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        if not isinstance(name, str):
            raise TypeError(f"monitor must be a history column name such as 'valid_loss', got {name!r}.")
        self.name, self.mode, self.min_delta = name, mode, abs(min_delta)

    def check(self, learn: BaseLearner, who: str) -> None:
        recorder = getattr(learn, "recorder", None)
        if recorder is None:
            raise ValueError(f"{who} reads the Recorder's history, but no Recorder is attached; keep default_cbs=True.")
        available = recorder.columns(learn)
        if self.name not in available:
            raise ValueError(f"{who}: monitor {self.name!r} is not in the Recorder's history; available: {available}.")

    def value(self, learn: BaseLearner) -> float:
        return float(learn.recorder.history[-1][self.name])

    def better(self, value: float, best: float | None) -> bool:
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


class Checkpoint(Callback):
    """Saves the whole run (see `Learner.save`) into `dir` every `every_n_steps` training batches
    and/or every `every_n_epochs` epochs, keeping the newest `keep_last`; `dir/latest` names the
    newest complete one and changes only after it is fully written, so a run killed at any moment
    resumes with `fit(..., resume=dir)` (or `resume=True`).

    With `monitor` and `save_best=True` it also keeps `dir/best.safetensors`, the checkpoint of
    the best epoch by that history column (`mode='min'` or `'max'`).
    """

    order = 100  # after every callback that changes state at the end of a batch or an epoch
    run_valid = False
    rank_zero_only = True  # one process writes; every rank resumes from the same files

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        dir: str | Path = "checkpoints",
        keep_last: int = 2,
        monitor: str | None = None,
        mode: str = "min",
        save_best: bool = False,
    ):
        if isinstance(every_n_steps, (str, Path)):
            raise TypeError(f"Checkpoint's first argument is every_n_steps; pass the folder by name: Checkpoint(dir={str(every_n_steps)!r}).")
        for what, v in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{what} must be a positive int or None, got {v!r}.")
        if not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last!r}.")
        if save_best and monitor is None:
            raise ValueError("save_best=True needs a monitor, e.g. monitor='valid_loss'.")
        self.every_n_steps, self.every_n_epochs, self.dir, self.keep_last = every_n_steps, every_n_epochs, Path(dir), keep_last
        self.monitor = _Monitor(monitor, mode) if monitor is not None else None
        self.save_best = save_best
        self.saved: list[str] = []
        self.best: float | None = None

    def before_fit(self, learn: BaseLearner) -> None:
        if self.monitor is not None:
            self.monitor.check(learn, "Checkpoint")
        self.dir.mkdir(parents=True, exist_ok=True)  # fails now, not after an epoch, if it cannot be made
        for stale in self.dir.glob(".*.tmp-*"):  # half-written files of a run killed mid-save
            stale.unlink(missing_ok=True)

    def after_batch(self, learn: BaseLearner) -> None:
        if self.every_n_steps and learn.train_batches_done % self.every_n_steps == 0:
            self.save(learn)

    def after_epoch(self, learn: BaseLearner) -> None:
        if self.monitor is not None and self.save_best:
            value = self.monitor.value(learn)
            if self.monitor.better(value, self.best):
                self.best = value
                save_checkpoint(learn, self.dir / "best.safetensors")
        if self.every_n_epochs and learn.epochs_done % self.every_n_epochs == 0:
            self.save(learn)

    def save(self, learn: BaseLearner) -> Path:
        """Write a checkpoint now, point `latest` at it, then drop the oldest beyond `keep_last`."""
        name = f"ckpt-e{learn.epochs_done:04d}-s{learn.train_batches_done:08d}.safetensors"
        if name in self.saved:  # the same position again (the epoch's end after its last step): the newer state wins
            self.saved.remove(name)
        self.saved.append(name)  # before the state is taken, so a resumed run knows this file too
        try:
            path = save_checkpoint(learn, self.dir / name)
        except BaseException:
            self.saved.pop()
            raise
        atomic_write(self.dir / LATEST, lambda f: f.write(name.encode()))
        while len(self.saved) > self.keep_last:
            (self.dir / self.saved.pop(0)).unlink(missing_ok=True)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"saved": list(self.saved), "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved, self.best = list(state["saved"]), state["best"]


class SaveBest(Callback):
    """Keeps the model weights of the best epoch by `monitor` (a history column; `mode` 'min' or
    'max'), in memory and, when `path` is given, in a safetensors file; with `restore_at_end`
    puts them back into the model when the fit ends (also after early stopping)."""

    order = 95  # after the Recorder has written the epoch's row

    def __init__(self, monitor: str = "valid_loss", mode: str = "min", restore_at_end: bool = True, path: str | Path | None = None):
        self.monitor = _Monitor(monitor, mode)
        self.restore_at_end, self.path = restore_at_end, None if path is None else Path(path)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def before_fit(self, learn: BaseLearner) -> None:
        self.monitor.check(learn, "SaveBest")
        if self.path is not None and not self.path.parent.is_dir():
            raise FileNotFoundError(f"SaveBest: the folder of {self.path} does not exist.")
        self.best, self.best_epoch, self.weights = None, None, None

    def after_epoch(self, learn: BaseLearner) -> None:
        value = self.monitor.value(learn)
        if self.monitor.better(value, self.best):
            self.best, self.best_epoch = value, learn.epoch
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in learn.model.state_dict().items()}
            if self.path is not None and is_main():
                save_model(learn.model, self.path)

    def after_fit(self, learn: BaseLearner) -> None:
        if self.restore_at_end and self.weights is not None:
            learn.model.load_state_dict(self.weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.weights = state["best"], state["best_epoch"], state["weights"]


class EarlyStopping(Callback):
    """Stops the fit when `monitor` (a history column) has not improved by more than `min_delta`
    for `patience` epochs in a row.

    It decides at the end of an epoch and stops by raising `CancelFitException` as the next
    epoch begins, so every callback (a `Checkpoint`, say) still sees the last epoch end, and a
    run resumed from that epoch's checkpoint stops at the same point.
    """

    order = 90  # after the Recorder (50), before Checkpoint (100) saves its state

    def __init__(self, monitor: str = "valid_loss", patience: int = 3, min_delta: float = 0.0, mode: str = "min"):
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int, got {patience!r}.")
        self.monitor, self.patience = _Monitor(monitor, mode, min_delta), patience
        self.best: float | None = None
        self.wait, self.stop, self.stopped_epoch = 0, False, None

    def before_fit(self, learn: BaseLearner) -> None:
        self.monitor.check(learn, "EarlyStopping")
        self.best, self.wait, self.stop, self.stopped_epoch = None, 0, False, None

    def after_epoch(self, learn: BaseLearner) -> None:
        value = self.monitor.value(learn)
        if self.monitor.better(value, self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stop, self.stopped_epoch = True, learn.epoch

    def before_epoch(self, learn: BaseLearner) -> None:
        if self.stop:
            raise CancelFitException

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "stop": self.stop, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.stop, self.stopped_epoch = state["best"], state["wait"], state["stop"], state["stopped_epoch"]
