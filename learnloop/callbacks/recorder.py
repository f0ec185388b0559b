"""Recorder: losses, metrics and hyper-parameters of a fit, as numbers and as plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..hypers import locations
from ..metrics import metric_name
from .core import Callback

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..learner import Learner

__all__ = ["Recorder", "batch_size"]


def batch_size(b: Any) -> int:
    """Number of samples in a (possibly nested) batch: the first dimension of its first tensor."""
    if isinstance(b, torch.Tensor):
        return b.shape[0] if b.ndim else 1
    if isinstance(b, dict):
        b = list(b.values())
    if isinstance(b, (list, tuple)) and b:
        return batch_size(b[0])
    raise TypeError(f"Cannot tell the batch size of a {type(b).__name__}.")


class Recorder(Callback):
    """Records, for each fit:

    - `losses`: the training loss of every batch;
    - `hps`: every training batch's hyper-parameters per param group, e.g. `hps['lr'][i][g]`
      (learnloop's names: lr, mom, sqr_mom, wd, eps; Adam's betas give mom and sqr_mom), as in
      effect for that batch's step;
    - `history`: one dict per epoch with `epoch`, `train_loss`, `valid_loss`, each metric, `time`.

    Epoch averages weight every batch by its size, so a short last batch does not skew them.
    Losses and metric sums stay on the model's device and are read back once per phase.
    """

    order = 50

    def __init__(self, train_metrics: bool = False):
        self.train_metrics = train_metrics
        self.losses: list[float] = []
        self.history: list[dict[str, float]] = []
        self.last_valid: dict[str, float] = {}
        self._pending: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._hp_rows: list[list[tuple]] = []
        self._hp_keys: list[str] = []
        self._hp_locs: dict[str, Any] = {}

    # ---- events -----------------------------------------------------------------------------

    def before_fit(self, learn: "Learner") -> None:
        self.losses, self.history, self._hp_rows = [], [], []
        # Record raw param-group entries (cheap); `hps` translates them to our names on demand.
        self._hp_locs = locations(learn.opt.param_groups[0])
        self._hp_keys = sorted({loc[0] if isinstance(loc, tuple) else loc for loc in self._hp_locs.values()})
        self._fit_start = time.perf_counter()

    def before_epoch(self, learn: "Learner") -> None:
        self._row: dict[str, float] = {"epoch": learn.epoch}
        self._epoch_start = time.perf_counter()

    def _start_phase(self, learn: "Learner") -> None:
        self._pending, self._sizes = [], []
        if not learn.training or self.train_metrics:
            for m in learn.metrics:
                m.reset()
                if isinstance(m, torch.nn.Module):
                    p = next(learn.model.parameters(), None)
                    if p is not None:
                        m.to(p.device)

    before_train = _start_phase
    before_validate = _start_phase

    def after_loss(self, learn: "Learner") -> None:
        yb = learn.yb
        self._pending.append(learn.loss.detach())
        self._sizes.append(yb.shape[0] if isinstance(yb, torch.Tensor) and yb.ndim else batch_size(yb))
        if learn.training:
            keys = self._hp_keys
            self._hp_rows.append([tuple(map(g.__getitem__, keys)) for g in learn.opt.param_groups])
        if not learn.training or self.train_metrics:
            for m in learn.metrics:
                m.update(learn.pred, learn.yb)

    def _finish_phase(self, learn: "Learner", prefix: str) -> dict[str, float]:
        use_metrics = prefix == "valid" or self.train_metrics
        values = self._read_back(learn.metrics if use_metrics else [])
        if prefix == "train":
            self.losses.extend(values.pop("_batch_losses"))
        else:
            values.pop("_batch_losses")
        out = {f"{prefix}_loss": values.pop("_loss")}
        for name, v in values.items():
            out[name if prefix == "valid" else f"train_{name}"] = v
        return out

    def after_train(self, learn: "Learner") -> None:
        self._row.update(self._finish_phase(learn, "train"))

    def after_validate(self, learn: "Learner") -> None:
        self.last_valid = self._finish_phase(learn, "valid")
        if hasattr(self, "_row"):
            self._row.update(self.last_valid)

    def after_epoch(self, learn: "Learner") -> None:
        self._row["time"] = time.perf_counter() - self._epoch_start
        self.history.append(self._row)

    def after_fit(self, learn: "Learner") -> None:
        if self._pending and learn.training:  # the fit stopped mid-phase: keep what was seen
            self.losses.extend(torch.stack(self._pending).float().cpu().tolist())
            self._pending = []
        self.__dict__.pop("_row", None)

    # ---- reading back -------------------------------------------------------------------------

    def _read_back(self, metrics: list[Any]) -> dict[str, Any]:
        """Loss mean, per-batch losses and metric values in one device-to-host transfer."""
        names = [metric_name(m) for m in metrics]
        if not self._pending:
            return {"_loss": float("nan"), "_batch_losses": [], **{n: float("nan") for n in names}}
        losses = torch.stack(self._pending).float()
        sizes = torch.tensor(self._sizes, dtype=losses.dtype, device=losses.device)
        mean = (losses * sizes).sum() / sizes.sum()
        parts = [losses, mean[None]]
        for m in metrics:
            v = m.compute()
            parts.append(torch.as_tensor(v, dtype=losses.dtype).to(losses.device).reshape(1))
        flat = torch.cat(parts).cpu().tolist()
        n = len(self._pending)
        self._pending, self._sizes = [], []
        return {"_batch_losses": flat[:n], "_loss": flat[n], **dict(zip(names, flat[n + 1 :]))}

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

    def plot_loss(self, skip_start: int = 0, with_valid: bool = True, path: str | Path | None = None) -> "Figure":
        """Training loss per batch (and validation loss per epoch); saved as PNG when `path` is given."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4), layout="tight")
        ax = fig.add_subplot()
        ax.plot(range(skip_start, len(self.losses)), self.losses[skip_start:], label="train", lw=1)
        if with_valid and self.history and self.losses:
            per_epoch = len(self.losses) / len(self.history)
            xs = [(i + 1) * per_epoch for i in range(len(self.history))]
            ax.plot(xs, [h.get("valid_loss", float("nan")) for h in self.history], "o-", label="valid")
        ax.set(xlabel="batch", ylabel="loss", title="Loss")
        ax.legend()
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig

    def plot_sched(self, keys: list[str] | None = None, path: str | Path | None = None) -> "Figure":
        """Each recorded hyper-parameter per batch, one line per param group."""
        from matplotlib.figure import Figure

        keys = keys or list(self.hps)
        fig = Figure(figsize=(4 * max(1, len(keys)), 3.5), layout="tight")
        for i, key in enumerate(keys):
            ax = fig.add_subplot(1, max(1, len(keys)), i + 1)
            rows = self.hps.get(key, [])
            for g in range(len(rows[0]) if rows else 0):
                ax.plot([r[g] for r in rows], label=f"group {g}")
            ax.set(xlabel="batch", title=key)
            if rows and len(rows[0]) > 1:
                ax.legend()
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig

    # ---- checkpointing ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "losses": list(self.losses),
            "history": [dict(h) for h in self.history],
            "hp_keys": list(self._hp_keys),
            "hp_locs": dict(self._hp_locs),
            "hp_rows": [list(r) for r in self._hp_rows],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses, self.history = list(state["losses"]), [dict(h) for h in state["history"]]
        self._hp_keys, self._hp_rows = list(state["hp_keys"]), [list(r) for r in state["hp_rows"]]
        self._hp_locs = dict(state["hp_locs"])
