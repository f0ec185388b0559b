"""Metrics: functions of (pred, target), averaged over an epoch weighted by batch size."""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["accuracy", "error_rate", "AvgMetric", "resolve_metric", "METRICS"]


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of rows whose highest-scoring class is the target."""
    if pred.ndim != target.ndim + 1 or pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"accuracy expects (batch, n_classes) predictions and (batch,) class targets, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}."
        )
    return (pred.argmax(dim=-1) == target).float().mean()


def error_rate(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(pred, target)


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
        n = len(target)
        self.total = self.total + self.func(pred, target).detach() * n
        self.count += n

    def compute(self) -> torch.Tensor | float:
        return self.total / self.count if self.count else float("nan")

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
    return getattr(m, "name", None) or type(m).__name__.lower()
