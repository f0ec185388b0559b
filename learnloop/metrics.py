"""Metrics: functions of (pred, target), averaged over an epoch weighted by batch size."""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch

from .distributed import all_reduce_sum

__all__ = ["accuracy", "error_rate", "probabilities", "decoded", "AvgMetric", "resolve_metric", "metric_name", "batch_size", "Accumulator", "METRICS"]


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of rows whose highest-scoring class is the target; for a binary model with one logit
    per row and 0/1 targets of the same shape, of rows whose logit is on the target's side of 0."""
    if pred.shape == target.shape and _one_logit(pred):
        # a regression's targets have this shape too: accuracy of those would be a meaningless number
        if not bool(((target == 0) | (target == 1)).all()):
            raise ValueError("accuracy of one output per row needs 0/1 targets (a binary model); these targets hold other "
                             "values: a regression? Use a regression metric, e.g. lambda p, t: (p - t).abs().mean().")  # fmt: skip
        return ((pred > 0) == (target > 0.5)).float().mean()
    if pred.ndim != target.ndim + 1 or pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"accuracy expects (batch, n_classes) predictions and (batch,) class targets, or one logit per "
            f"row and 0/1 targets of its shape, got {tuple(pred.shape)} and {tuple(target.shape)}."
        )
    return (pred.argmax(dim=-1) == target).float().mean()


def error_rate(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(pred, target)


def _one_logit(preds: torch.Tensor) -> bool:
    # (N,) or (N, 1): a binary model's single logit per row (trained with BCE-with-logits)
    return preds.ndim < 2 or preds.shape[-1] == 1


def probabilities(preds: torch.Tensor) -> torch.Tensor:
    """Class probabilities from model outputs: a softmax over the last dimension, or, for one
    logit per row, its sigmoid (a softmax over a single column would be 1 everywhere)."""
    preds = preds.float()
    return preds.sigmoid() if _one_logit(preds) else preds.softmax(-1)


def decoded(preds: torch.Tensor) -> torch.Tensor:
    """The predicted class index of each row: the argmax, or, for one logit per row, 1 where its
    sigmoid passes 0.5 (the logit passes 0)."""
    return (preds > 0).long().reshape(preds.shape[:1]) if _one_logit(preds) else preds.argmax(-1)


METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "accuracy": accuracy,
    "error_rate": error_rate,
}


class AvgMetric:
    """Turns `func(pred, target) -> batch mean` into an epoch mean, weighting each batch by its size.

    Sums stay on the model's device; nothing is read back until `compute()`.
    """

    def __init__(self, func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str | None = None):
        self.func = func
        self.name = name or getattr(func, "__name__", type(func).__name__)
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        n = target.shape[0] if isinstance(target, torch.Tensor) else len(target)  # Tensor.__len__ runs Python code
        value = self.func(pred, target)  # a scalar tensor or a plain number
        if isinstance(value, torch.Tensor) and value.requires_grad:
            value = value.detach()
        self.total = self.total + value * n
        self.count += n

    def compute(self) -> torch.Tensor | float:
        return self.total / self.count if self.count else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total, self.count = state["total"], state["count"]

    def __repr__(self) -> str:
        return f"AvgMetric({self.name})"


def resolve_metric(m: Any) -> Any:
    """A metric name, function or update/compute/reset object -> an object with that API and a `name`."""
    if isinstance(m, str):
        if m not in METRICS:
            raise ValueError(f"Unknown metric {m!r}; known names: {sorted(METRICS)} (or pass a function f(pred, target)).")
        return AvgMetric(METRICS[m])
    if isinstance(m, type):
        raise TypeError(f"Pass a metric instance or function, not the class {m.__name__}.")
    if all(callable(getattr(m, a, None)) for a in ("update", "compute", "reset")):
        if not isinstance(getattr(m, "name", None), str):
            try:
                m.name = type(m).__name__.lower()
            except AttributeError:
                pass
        return m
    if callable(m):
        return AvgMetric(m)
    raise TypeError(
        f"Unknown metric {m!r}: pass a function f(pred, target) -> tensor, an object with update/compute/reset, "
        f"or one of {sorted(METRICS)}."
    )


def metric_name(m: Any) -> str:
    """The column name of a metric in the history: its `name` attribute, else its function name,
    else its lower-cased class name."""
    if getattr(m, "name", None):
        return m.name
    fn = getattr(m, "__name__", None)
    return fn if fn and fn != "<lambda>" else type(m).__name__.lower()


def _ratio(total: float, count: float) -> float:
    return total / count if count else float("nan")


def batch_size(b: Any) -> int:
    """Number of samples in a (possibly nested) batch: the first dimension of its first tensor."""
    if isinstance(b, torch.Tensor):
        return b.shape[0] if b.ndim else 1
    if isinstance(b, dict):
        b = list(b.values())
    if isinstance(b, (list, tuple)) and b:
        return batch_size(b[0])
    raise TypeError(f"Cannot tell the batch size of a {type(b).__name__}.")


class Accumulator:
    """One phase's losses (weighted by batch size) and metrics, read back in one transfer at the
    end. The Recorder and `Learner.validate` both count through it.

    On an accelerator the losses stay there (reading one back would make the host wait for the
    device); on the CPU each is read as a number when it comes, which costs less than keeping a
    detached tensor per batch and stacking them at the end.
    """

    def __init__(self) -> None:
        self.start([])

    def start(self, metrics: list[Any], device: torch.device | None = None) -> None:
        self.metrics, self.losses, self.sizes, self.device = list(metrics), [], [], device
        self.on_host = device is None or device.type == "cpu"
        for m in self.metrics:
            m.reset()
            if isinstance(m, torch.nn.Module) and device is not None:
                m.to(device)

    def add(self, loss: torch.Tensor, pred: Any, target: Any) -> None:
        self.losses.append(loss.item() if self.on_host else loss.detach())
        self.sizes.append(target.shape[0] if isinstance(target, torch.Tensor) and target.ndim else batch_size(target))
        for m in self.metrics:
            m.update(pred, target)

    def _loss_tensor(self) -> torch.Tensor:
        if self.on_host:
            return torch.tensor(self.losses, dtype=torch.float32)
        return torch.stack(self.losses).float() if self.losses else torch.zeros(0, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        """The pending losses and sizes (and `AvgMetric` sums): what a checkpoint taken mid-phase needs."""
        return {
            "losses": self._loss_tensor() if self.losses else None,
            "sizes": list(self.sizes),
            "metrics": [m.state_dict() if hasattr(m, "state_dict") else None for m in self.metrics],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        losses = state["losses"]
        self.losses = [] if losses is None else losses.tolist() if self.on_host else list(losses.unbind())
        self.sizes = list(state["sizes"])
        for m, s in zip(self.metrics, state["metrics"]):
            if s is not None:
                m.load_state_dict(s)

    def read(self) -> tuple[list[float], dict[str, float]]:
        """(each batch's loss, {'loss': size-weighted mean, <metric name>: value, ...}); then empty.

        Under torch.distributed the loss and `AvgMetric`s are exact over all ranks: their sums
        (value x count, count) are added up across ranks in one all-reduce, so every rank reports
        what one process would over the whole data. (Other metric objects, such as torchmetrics',
        synchronise themselves in `compute()`.)"""
        names = [metric_name(m) for m in self.metrics]
        losses = self._loss_tensor()
        device = losses.device
        sizes = torch.tensor(self.sizes, dtype=losses.dtype, device=device)
        sums = [(losses * sizes).sum(), sizes.sum()]
        for m in self.metrics:
            if isinstance(m, AvgMetric):
                sums += [torch.as_tensor(m.total, dtype=losses.dtype, device=device).reshape(()), sizes.new_tensor(m.count)]
        sums = all_reduce_sum(torch.stack(sums))
        others = [torch.as_tensor(m.compute(), dtype=losses.dtype).to(device).reshape(1) for m in self.metrics if not isinstance(m, AvgMetric)]
        flat = torch.cat([losses, sums, *others]).cpu().tolist()
        n = len(self.losses)
        self.losses, self.sizes = [], []
        totals, rest = iter(flat[n + 2 : n + len(sums)]), iter(flat[n + len(sums) :])
        values = {}
        for name, m in zip(names, self.metrics):
            values[name] = _ratio(next(totals), next(totals)) if isinstance(m, AvgMetric) else next(rest)
        return flat[:n], {"loss": _ratio(flat[n], flat[n + 1]), **values}


def try_metrics(metrics: Sequence[Any], pred: torch.Tensor, target: Any) -> None:
    """Run each metric once, on a copy, on one batch: a metric that cannot take the model's
    output fails here, before the first optimizer step, not after an epoch of training."""
    for m in metrics:
        trial = copy.deepcopy(m)
        try:
            trial.reset()
            trial.update(pred.detach(), target)
            trial.compute()
        except Exception as e:
            e.add_note(f"learnloop: metric {metric_name(m)!r} failed on the first training batch (predictions of shape "
                       f"{tuple(pred.shape)}, targets {tuple(getattr(target, 'shape', ()))}), checked before any step; "
                       "a metric is f(predictions, targets) -> a number or a scalar tensor.")  # fmt: skip
            raise
