"""Experiment logs on disk: the Recorder's epoch rows as CSV or JSON lines, written as they come."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..events import Callback
from ..loop import BaseLearner

__all__ = ["CSVLogger", "JSONLinesLogger"]


class _EpochFile(Callback):
    """Shared by the loggers: where rows go, and whether this fit starts the file afresh."""

    order = 97  # after the Recorder (50) has written the epoch's row
    rank_zero_only = True

    def __init__(self, path: str | Path, append: bool):
        self.path, self.append = Path(path), append

    def before_fit(self, learn: BaseLearner) -> None:
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: the folder of {self.path} does not exist.")
        self._first = True

    def _open(self, learn: BaseLearner) -> Any:
        # A run resumed from a checkpoint (start_epoch > 0) carries on its file; a new fit starts it
        # afresh unless append=True.
        fresh = self._first and not self.append and learn.start_epoch == 0
        self._first = False
        return open(self.path, "w" if fresh else "a", newline="")


class CSVLogger(_EpochFile):
    """One row per epoch with every column of the Recorder's history, flushed each epoch; a run
    resumed from a checkpoint appends to the file instead of starting it again."""

    def __init__(self, path: str | Path = "history.csv", append: bool = False):
        super().__init__(path, append)

    def after_epoch(self, learn: BaseLearner) -> None:
        row = learn.recorder.history[-1]
        with self._open(learn) as f:
            writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if f.tell() == 0:
                writer.writeheader()
            writer.writerow(row)


class JSONLinesLogger(_EpochFile):
    """One JSON object per line: `{"type": "epoch", ...the history row}` after every epoch and,
    with `every_n_steps`, `{"type": "step", "step": n, "loss": ..., "lr": [...]}` every n
    training steps (each costs one read-back of the loss)."""

    run_valid = False

    def __init__(self, path: str | Path = "history.jsonl", every_n_steps: int | None = None, append: bool = False):
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or every_n_steps < 1):
            raise ValueError(f"every_n_steps must be a positive int or None, got {every_n_steps!r}.")
        super().__init__(path, append)
        self.every_n_steps = every_n_steps

    def _write(self, learn: BaseLearner, record: dict[str, Any]) -> None:
        with self._open(learn) as f:
            f.write(json.dumps(record) + "\n")

    def after_batch(self, learn: BaseLearner) -> None:
        if self.every_n_steps and learn.train_batches_done % self.every_n_steps == 0 and learn.loss is not None:
            lrs = [g["lr"] for g in learn.opt.param_groups]
            self._write(learn, {"type": "step", "epoch": learn.epoch, "step": learn.train_batches_done, "loss": learn.loss.item(), "lr": lrs})

    def after_epoch(self, learn: BaseLearner) -> None:
        self._write(learn, {"type": "epoch", **learn.recorder.history[-1]})
