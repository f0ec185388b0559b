"""Recorder: losses, metrics and hyper-parameters of a fit, as numbers and as plots."""

from __future__ import annotations

import math
import operator
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..events import Callback
from ..loop import BaseLearner
from ..metrics import Accumulator, batch_size, metric_name, try_metrics
from ..plots import new_figure, save_figure
from ..schedule.hypers import locations
from ..utils import model_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Recorder", "batch_size"]


def _tuple_getter(keys: list[str]) -> Callable[[dict], tuple]:
    """group -> the tuple of its values at `keys` (this runs on every batch: one C call for several keys)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    return lambda group: tuple(group[k] for k in keys)  # itemgetter of one key returns the bare value, of none fails


class Recorder(Callback):
    """Records, for each fit:

    - `losses`: the training loss of every batch;
    - `hps`: every training batch's hyper-parameters per param group, e.g. `hps['lr'][i][g]`
      (learnloop's names: lr, mom, sqr_mom, wd, eps; Adam's betas give mom and sqr_mom), as in
      effect for that batch's step;
    - `history`: one dict per epoch with `epoch`, `train_loss`, `valid_loss`, each metric, `time`
      (and the epoch mean of each value other callbacks `log`);
    - `last_valid`: the loss and metrics of the latest validation pass;
    - `logs`: per-step values other callbacks hand to `log(name, value)`, e.g. `GradientClip`'s
      pre-clip gradient norm under 'grad_norm';
    - `skipped_steps`: training steps cancelled (`after_cancel_step`): overflow under fp16, or
      held back by gradient accumulation.

    Epoch averages weight every batch by its size, so a short last batch does not skew them.
    On an accelerator, losses and metric sums stay on the device and are read back once per
    phase (no per-batch wait); on the CPU each loss is read as a number as it comes (cheaper).
    """

    order = 50

    def __init__(self, train_metrics: bool = False):
        self.train_metrics = train_metrics
        self.losses: list[float] = []
        self.history: list[dict[str, float]] = []
        self.last_valid: dict[str, float] = {}
        self._acc = Accumulator()
        self._hp_rows: list[list[tuple]] = []
        self._row: dict[str, float] | None = None  # the epoch's history row while it runs
        self._hp_keys: list[str] = []
        self._hp_locs: dict[str, Any] = {}
        self.logs: dict[str, list[float]] = {}
        self._pending_logs: dict[str, list[Any]] = {}
        self.skipped_steps = 0

    def log(self, name: str, value: Any) -> None:
        """Record a per-step value (a tensor stays on its device until the phase ends)."""
        self._pending_logs.setdefault(name, []).append(value.detach() if isinstance(value, torch.Tensor) else value)

    def _flush_logs(self) -> dict[str, float]:
        means = {}
        for name, values in self._pending_logs.items():
            if values:
                device = next((v.device for v in values if isinstance(v, torch.Tensor)), None)
                got = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(()) for v in values]).tolist()
                self.logs.setdefault(name, []).extend(got)
                means[name] = sum(got) / len(got)
        self._pending_logs = {}
        return means

    # ---- events -----------------------------------------------------------------------------

    def before_fit(self, learn: BaseLearner) -> None:
        self.losses, self.history, self._hp_rows = [], [], []
        self.logs, self._pending_logs, self.skipped_steps, self._metrics_tried = {}, {}, 0, False
        # Record raw param-group entries (cheap); `hps` translates them to our names on demand.
        self._hp_locs = locations(learn.opt.param_groups[0])
        self._hp_keys = sorted({loc[0] if isinstance(loc, tuple) else loc for loc in self._hp_locs.values()})
        self._hp_row = _tuple_getter(self._hp_keys)

    def before_epoch(self, learn: BaseLearner) -> None:
        self._row = {"epoch": learn.epoch}
        self._epoch_start = time.perf_counter()

    def before_train(self, learn: BaseLearner) -> None:
        self._acc.start(learn.metrics if self.train_metrics else [], model_device(learn.model))

    def before_validate(self, learn: BaseLearner) -> None:
        self._acc.start(learn.metrics, model_device(learn.model))

    def after_loss(self, learn: BaseLearner) -> None:
        self._acc.add(learn.loss, learn.pred, learn.yb)
        if learn.training:
            if not self._metrics_tried:  # validation metrics, tried once on this batch before the first step
                self._metrics_tried = True
                try_metrics(learn.metrics, learn.pred, learn.yb)
            self._hp_rows.append(list(map(self._hp_row, learn.opt.param_groups)))

    def after_cancel_step(self, learn: BaseLearner) -> None:
        self.skipped_steps += 1

    def after_train(self, learn: BaseLearner) -> None:
        batch_losses, values = self._acc.read()
        self.losses.extend(batch_losses)
        self._row.update({f"train_{k}": v for k, v in values.items()})
        self._row.update(self._flush_logs())

    def after_validate(self, learn: BaseLearner) -> None:
        counted = bool(self._acc.losses)  # a validation cancelled before its first batch has nothing to judge
        _, values = self._acc.read()
        self.last_valid = {"valid_loss": values.pop("loss"), **values}
        if counted and not math.isfinite(self.last_valid["valid_loss"]):
            warnings.warn(
                f"The validation loss is {self.last_valid['valid_loss']} (epoch {learn.epoch}): the model's outputs or the "
                "validation inputs hold NaN or inf, so the metrics mean nothing.",
                stacklevel=2,
            )
        if self._row is not None:
            self._row.update(self.last_valid)

    def after_epoch(self, learn: BaseLearner) -> None:
        row = self._row
        if row is None or row["epoch"] != learn.epoch:
            return  # cancelled before this epoch began for the Recorder: nothing ran, no row
        row["time"] = time.perf_counter() - self._epoch_start
        self.history.append(row)

    def epoch_row(self, learn: BaseLearner) -> dict[str, float] | None:
        """This epoch's history row, or None when the epoch was cancelled before it ran."""
        return self.history[-1] if self.history and self.history[-1]["epoch"] == learn.epoch else None

    def after_fit(self, learn: BaseLearner) -> None:
        if self._acc.losses and learn.training:  # the fit stopped mid-phase: keep what was seen
            self.losses.extend(self._acc.read()[0])
        self._flush_logs()
        self._row = None

    def columns(self, learn: BaseLearner) -> list[str]:
        """The names each epoch's history row will have (besides `epoch` and `time`)."""
        names = [metric_name(m) for m in learn.metrics]
        cols = ["train_loss", *(f"train_{n}" for n in names if self.train_metrics)]
        if learn.dls.valid is not None:
            cols += ["valid_loss", *names]
        return cols

    @property
    def hps(self) -> dict[str, list[list[float]]]:
        """Hyper-parameters per training batch and param group: `hps['lr'][batch][group]`."""
        col = {k: j for j, k in enumerate(self._hp_keys)}
        hps: dict[str, list[list[float]]] = {}
        for name, loc in self._hp_locs.items():
            if isinstance(loc, tuple):
                j, i = col[loc[0]], loc[1]
                hps[name] = [[g[j][i] for g in row] for row in self._hp_rows]
            else:
                j = col[loc]
                hps[name] = [[g[j] for g in row] for row in self._hp_rows]
        return hps

    # ---- plots --------------------------------------------------------------------------------

    def plot_loss(self, skip_start: int = 0, with_valid: bool = True, beta: float = 0.98, path: str | Path | None = None) -> "Figure":
        """Training loss per batch, smoothed (an exponential moving average with weight `beta`,
        debiased) over the raw curve drawn faint; validation loss per epoch; epochs marked."""
        fig = new_figure(6, 4)
        ax = fig.add_subplot()
        xs = range(skip_start, len(self.losses))
        raw = self.losses[skip_start:]
        avg, smooth = 0.0, []
        for i, v in enumerate(raw, 1):
            avg = beta * avg + (1 - beta) * v
            smooth.append(avg / (1 - beta**i))
        ax.plot(xs, raw, color="C0", alpha=0.25, lw=0.8)
        ax.plot(xs, smooth, color="C0", lw=1.5, label="train (smoothed)")
        if self.history and self.losses:
            per_epoch = len(self.losses) / len(self.history)
            ends = [(i + 1) * per_epoch for i in range(len(self.history))]
            for x in ends[:-1]:
                ax.axvline(x, color="0.85", lw=0.8, zorder=0)
            if with_valid:
                ax.plot(ends, [h.get("valid_loss", float("nan")) for h in self.history], "o-", color="C1", label="valid")
        ax.set(xlabel="batch (grey lines: epochs)", ylabel="loss", title="Loss")
        ax.legend()
        return save_figure(fig, path)

    def plot_sched(self, keys: list[str] | None = None, path: str | Path | None = None) -> "Figure":
        """Each hyper-parameter that changed during training, per batch and param group, and each
        logged per-step value (e.g. 'grad_norm'); constant hyper-parameters are listed in the title."""
        hps = self.hps
        if keys is None:
            changing = [k for k, rows in hps.items() if any(r != rows[0] for r in rows)] or [k for k in hps if k == "lr"]
            constant = {k: rows[0] for k, rows in hps.items() if k not in changing and rows}
            keys = [*changing, *self.logs]
        else:
            constant = {}
        n = max(1, len(keys))
        fig = new_figure(4 * n, 3.5)
        for i, key in enumerate(keys):
            ax = fig.add_subplot(1, n, i + 1)
            rows = hps.get(key) or [[v] for v in self.logs.get(key, [])]
            for g in range(len(rows[0]) if rows else 0):
                ax.plot([r[g] for r in rows], label=f"group {g}")
            ax.set(xlabel="batch", title=key)
            if rows and len(rows[0]) > 1:
                ax.legend()
        if constant:
            shown = ", ".join(f"{k} = {v[0]:.3g}" if len(set(v)) == 1 else f"{k} = {[round(x, 4) for x in v]}" for k, v in constant.items())
            fig.suptitle(f"constant: {shown}", fontsize="small")
        return save_figure(fig, path)

    # ---- checkpointing ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "losses": list(self.losses),
            "history": [dict(h) for h in self.history],
            "last_valid": dict(self.last_valid),
            "hp_keys": list(self._hp_keys),
            "hp_locs": dict(self._hp_locs),
            "hp_rows": [list(r) for r in self._hp_rows],
            # mid-epoch: the epoch's row so far and the phase's pending losses
            "row": dict(self._row) if self._row is not None else None,
            "pending": self._acc.state_dict(),
            "logs": {k: list(v) for k, v in self.logs.items()},
            "pending_logs": {k: list(v) for k, v in self._pending_logs.items()},
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = [k for k in ("losses", "history", "hp_keys", "hp_locs", "hp_rows") if k not in state]
        if missing:
            raise KeyError(f"Recorder.load_state_dict: the state lacks {missing}; it was not made by Recorder.state_dict().")
        self.losses, self.history = list(state["losses"]), [dict(h) for h in state["history"]]
        self.last_valid = dict(state.get("last_valid", {}))
        self._hp_keys, self._hp_rows = list(state["hp_keys"]), [list(r) for r in state["hp_rows"]]
        self._hp_locs = dict(state["hp_locs"])
        self._hp_row = _tuple_getter(self._hp_keys)
        if state.get("row") is not None:
            self._row = dict(state["row"])
        if state.get("pending") is not None:
            self._acc.load_state_dict(state["pending"])
        self.logs = {k: list(v) for k, v in state.get("logs", {}).items()}
        self._pending_logs = {k: list(v) for k, v in state.get("pending_logs", {}).items()}
        self.skipped_steps = int(state.get("skipped_steps", 0))
