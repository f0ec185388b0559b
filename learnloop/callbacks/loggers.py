"""Experiment logs on disk: the Recorder's epoch rows as CSV or JSON lines, written as they come,
and TensorBoard event files."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..events import Callback
from ..loop import BaseLearner
from ..schedule.hypers import get_hyper, hyper_names
from ..serialize import atomic_write
from .telemetry import ActivationStats

__all__ = ["CSVLogger", "JSONLinesLogger", "TensorBoardLogger"]


class _EpochFile(Callback):
    """Shared by the loggers: where rows go, and whether this fit starts the file afresh."""

    order = 97  # after the Recorder (50) has written the epoch's row
    rank_zero_only = True

    def __init__(self, path: str | Path, append: bool):
        self.path, self.append = Path(path), append

    def before_fit(self, learn: BaseLearner) -> None:
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: the folder of {self.path} does not exist.")
        if self.path.is_dir():
            raise IsADirectoryError(f"{type(self).__name__}: {self.path} is a folder; give the path of a file to write, inside it or elsewhere.")
        self._first, self._seen = True, 0

    def after_batch(self, learn: BaseLearner) -> None:
        if learn.training:
            self._seen += 1

    def _open(self, learn: BaseLearner) -> Any:
        # A run resumed from a checkpoint (it counts more steps than this fit ran) carries on its
        # file, dropping what the interrupted run wrote after its last checkpoint, since that is
        # written again. A new fit starts the file afresh unless append=True.
        restored = learn.train_batches_done - self._seen
        if self._first and restored > 0 and self.path.is_file():
            lines = self.path.read_text().splitlines(keepends=True)
            atomic_write(self.path, lambda f: f.write("".join(self._kept(lines, learn.epoch, restored)).encode()))
        fresh = self._first and not self.append and restored == 0
        self._first = False
        return open(self.path, "w" if fresh else "a", newline="")

    def _kept(self, lines: list[str], epoch: int, step: int) -> list[str]:
        raise NotImplementedError


class CSVLogger(_EpochFile):
    """One row per epoch with every column of the Recorder's history, flushed each epoch; a run
    resumed from a checkpoint appends to the file instead of starting it again."""

    def __init__(self, path: str | Path = "history.csv", append: bool = False):
        super().__init__(path, append)

    def _kept(self, lines: list[str], epoch: int, step: int) -> list[str]:
        return lines[:1] + [line for row, line in zip(csv.DictReader(lines), lines[1:]) if int(row["epoch"]) < epoch]

    def after_epoch(self, learn: BaseLearner) -> None:
        row = learn.recorder.epoch_row(learn)
        if row is None:
            return
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

    def _kept(self, lines: list[str], epoch: int, step: int) -> list[str]:
        records = [json.loads(line) for line in lines]
        return [line for r, line in zip(records, lines) if (r["epoch"] < epoch if r["type"] == "epoch" else r["step"] <= step)]

    def after_batch(self, learn: BaseLearner) -> None:
        super().after_batch(learn)
        if self.every_n_steps and learn.train_batches_done % self.every_n_steps == 0 and learn.loss is not None:
            lrs = [g["lr"] for g in learn.opt.param_groups]
            self._write(learn, {"type": "step", "epoch": learn.epoch, "step": learn.train_batches_done, "loss": learn.loss.item(), "lr": lrs})

    def after_epoch(self, learn: BaseLearner) -> None:
        row = learn.recorder.epoch_row(learn)
        if row is not None:
            self._write(learn, {"type": "epoch", **row})


class TensorBoardLogger(Callback):
    """Writes a run to TensorBoard (`tensorboard --logdir runs/tb`) through torch's SummaryWriter.

    Every `every_n_steps` training steps: the training loss and each hyper-parameter per param
    group (`hp/lr/group0`, ...). Every epoch: the history row (`epoch/valid_loss`,
    `epoch/accuracy`, ...). With `hist_every_n_steps`: weight histograms, and activation
    histograms when `ActivationStats` is attached. With `log_graph=True`: the model graph.
    Each fit writes its own run folder under `log_dir` (`run_000`, `run_001`, ...); a run
    resumed from a checkpoint carries on its folder and its global step (training steps done).
    The writer is closed after fitting, also when training fails. Rank 0 only.
    """

    order = 97  # after the Recorder (50) has written the epoch's row
    rank_zero_only = True

    def __init__(self, log_dir: str | Path = "runs/tb", every_n_steps: int = 10, hist_every_n_steps: int | None = None, log_graph: bool = False):
        for name, v in (("every_n_steps", every_n_steps), ("hist_every_n_steps", hist_every_n_steps)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"TensorBoardLogger: {name} must be a positive int{' or None' if name.startswith('hist') else ''}, got {v!r}.")
        self.log_dir, self.every_n_steps, self.hist_every_n_steps, self.log_graph = Path(log_dir), every_n_steps, hist_every_n_steps, log_graph
        self.run_dir: Path | None = None
        self.writer: Any = None

    def before_fit(self, learn: BaseLearner) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (fail now, not at the first step)
        except ImportError as e:
            raise ImportError("TensorBoardLogger needs the tensorboard package: pip install tensorboard (requirements.txt pins it).") from e
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"TensorBoardLogger cannot create {self.log_dir}: {e.strerror or e}; pass log_dir= a folder you can write.") from e
        if not os.access(self.log_dir, os.W_OK):
            raise PermissionError(f"TensorBoardLogger cannot write in {self.log_dir}; pass log_dir= a folder you can write.")
        self.run_dir, self._acts_logged, self._seen, self._resumed = None, 0, 0, False
        self._acts = next((cb for cb in learn.cbs if isinstance(cb, ActivationStats)), None)

    def _writer(self, learn: BaseLearner) -> Any:
        # Opened at the first write, after a resumed run has restored `run_dir` (Resume runs last).
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            if self.run_dir is None:
                taken = {p.name for p in self.log_dir.iterdir()}
                self.run_dir = self.log_dir / next(f"run_{i:03d}" for i in range(10**6) if f"run_{i:03d}" not in taken)
            # A resumed run drops the events the interrupted one wrote after its checkpoint: they come again.
            purge = learn.train_batches_done - self._seen + 1 if self._resumed else None
            self.writer = SummaryWriter(str(self.run_dir), purge_step=purge)
            if self.log_graph:
                try:
                    self.writer.add_graph(learn.model, learn.xb)
                except Exception as e:  # tracing fails on some models (data-dependent control flow): say so, keep training
                    warnings.warn(f"TensorBoardLogger could not trace the model graph ({type(e).__name__}: {e}); logging the rest.", stacklevel=2)
        return self.writer

    def after_batch(self, learn: BaseLearner) -> None:
        if not learn.training or learn.loss is None:
            return
        self._seen += 1
        step = learn.train_batches_done
        if step % self.every_n_steps == 0:
            w = self._writer(learn)
            w.add_scalar("train/loss", learn.loss.item(), step)
            for g, group in enumerate(learn.opt.param_groups):
                for name in hyper_names(group):
                    w.add_scalar(f"hp/{name}/group{g}", float(get_hyper(group, name)), step)
        if self.hist_every_n_steps and step % self.hist_every_n_steps == 0:
            self._histograms(learn, step)

    def _histograms(self, learn: BaseLearner, step: int) -> None:
        w = self._writer(learn)
        for name, p in learn.model.named_parameters():
            w.add_histogram(f"weights/{name}", p.detach().float().cpu(), step)
        acts = self._acts  # ActivationStats' newest record, at the step it was taken
        if acts is not None and len(acts.records) > self._acts_logged:
            self._acts_logged, step = len(acts.records), acts.steps[-1]
            s = acts.stats()
            hi, bins = acts.hist_range[1], acts.hist_bins
            limits = [hi * (i + 1) / bins for i in range(bins)]
            centres = torch.tensor([hi * (i + 0.5) / bins for i in range(bins)])
            for i, layer in enumerate(acts.layer_names):
                counts = s["hists"][-1, i]
                num = float(counts.sum())
                if num > 0:
                    w.add_histogram_raw(f"activations/{layer}", 0.0, hi, num, float((counts * centres).sum()),
                                        float((counts * centres**2).sum()), limits, counts.tolist(), step)  # fmt: skip
                w.add_scalar(f"activations/{layer}/std", float(s["stds"][-1, i]), step)

    def after_epoch(self, learn: BaseLearner) -> None:
        row = learn.recorder.epoch_row(learn)
        if row is None:
            return
        w, step = self._writer(learn), learn.train_batches_done
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                w.add_scalar(f"epoch/{key}", value, step)
        w.flush()

    def after_fit(self, learn: BaseLearner) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def state_dict(self) -> dict[str, Any]:
        return {} if self.run_dir is None else {"run_dir": str(self.run_dir)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("run_dir"):
            self.run_dir, self._resumed = Path(state["run_dir"]), True
