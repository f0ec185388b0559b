"""The Callback base class, the events it can handle, and how callbacks are put in order."""

from __future__ import annotations

import difflib
import heapq
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..utils import snake_case

if TYPE_CHECKING:
    from ..learner import Learner

__all__ = [
    "Callback",
    "EVENTS",
    "ALIASES",
    "CancelBatchException",
    "CancelStepException",
    "CancelBackwardException",
    "CancelTrainException",
    "CancelValidException",
    "CancelEpochException",
    "CancelFitException",
    "sort_callbacks",
]

# Every event, in the order the loop fires them (cancellation events where they would fire).
EVENTS = (
    "before_fit",
    "before_epoch",
    "before_train",
    "before_batch",
    "after_pred",
    "after_loss",
    "before_backward",
    "after_cancel_backward",
    "after_backward",
    "before_step",
    "after_cancel_step",
    "after_step",
    "after_cancel_batch",
    "after_batch",
    "after_cancel_train",
    "after_train",
    "before_validate",
    "after_cancel_validate",
    "after_validate",
    "after_cancel_epoch",
    "after_epoch",
    "after_cancel_fit",
    "after_fit",
)
# The 2019 lesson's names.
ALIASES = {
    "begin_fit": "before_fit",
    "begin_epoch": "before_epoch",
    "begin_train": "before_train",
    "begin_batch": "before_batch",
    "begin_validate": "before_validate",
}
_EVENT_PREFIXES = ("before_", "after_", "begin_")


class CancelBatchException(Exception):
    """Skip the rest of this batch; `after_cancel_batch` and `after_batch` still fire."""


class CancelStepException(Exception):
    """Skip the optimizer step (and zero_grad); `after_cancel_step` and `after_step` still fire."""


class CancelBackwardException(Exception):
    """Skip the backward pass; `after_cancel_backward` and `after_backward` still fire."""


class CancelTrainException(Exception):
    """Skip the rest of this epoch's training; `after_cancel_train`, `after_train` fire, validation runs."""


class CancelValidException(Exception):
    """Skip the rest of validation; `after_cancel_validate` and `after_validate` still fire."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch; `after_cancel_epoch` and `after_epoch` still fire."""


class CancelFitException(Exception):
    """Stop training; `after_cancel_fit` and `after_fit` still fire."""


class Callback:
    """Base class for callbacks: define methods named after events (see `EVENTS`).

    Each event method receives the learner, `def after_batch(self, learn): ...` (the lesson's
    argument-less form, `def after_batch(self)`, works too), and may read or replace any of its
    state: `learn.model`, `learn.opt`, `learn.xb`, `learn.yb`, `learn.pred`, `learn.loss`,
    `learn.epoch`, `learn.iter`, `learn.n_iter`, `learn.pct_train`, `learn.training`.
    `self.learn` is set too while the callback is attached.

    Ordering: lower `order` runs first (ties keep insertion order); `run_before` and
    `run_after` name other callbacks (classes or names) that must run after / before this one.
    """

    order: int = 0
    run_before: Iterable[type | str] = ()
    run_after: Iterable[type | str] = ()
    learn: "Learner"

    @property
    def name(self) -> str:
        """Attribute name on the learner: class name minus 'Callback', in snake_case (settable)."""
        if "_name" in self.__dict__:
            return self.__dict__["_name"]
        cls = type(self).__name__
        return snake_case(cls[: -len("Callback")] if cls.endswith("Callback") and cls != "Callback" else cls)

    @name.setter
    def name(self, value: str) -> None:
        if not value.isidentifier():
            raise ValueError(f"Callback name must be a Python identifier, got {value!r}.")
        self.__dict__["_name"] = value

    def state_dict(self) -> dict[str, Any]:
        """State worth saving in a checkpoint (override in stateful callbacks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"


def event_handlers(cb: Callback) -> dict[str, Callable[["Learner"], Any]]:
    """Map each event `cb` handles to a callable taking the learner, checking names on the way."""
    handlers: dict[str, Callable] = {}
    for attr in dir(type(cb)):
        if not attr.startswith(_EVENT_PREFIXES):
            continue
        method = getattr(cb, attr)
        if not callable(method):
            continue
        event = ALIASES.get(attr, attr)
        if event not in EVENTS:
            close = difflib.get_close_matches(event, EVENTS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{type(cb).__name__}.{attr} looks like an event handler but {attr!r} is not an event.{hint}")
        if event in handlers:
            raise ValueError(f"{type(cb).__name__} defines both {attr!r} and its alias for {event!r}; keep one.")
        handlers[event] = _adapt(method)
    return handlers


def _adapt(method: Callable) -> Callable[["Learner"], Any]:
    params = [p for p in inspect.signature(method).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if params:
        return method
    return lambda learn: method()


def _matches(cb: Callback, ref: type | str) -> bool:
    if isinstance(ref, str):
        return ref in (cb.name, type(cb).__name__)
    return isinstance(cb, ref)


def sort_callbacks(cbs: list[Callback]) -> list[Callback]:
    """Topologically sort by `run_before`/`run_after`, otherwise by (`order`, insertion)."""
    n = len(cbs)
    after: list[set[int]] = [set() for _ in range(n)]  # after[i]: callbacks that must run after i
    for i, cb in enumerate(cbs):
        for j, other in enumerate(cbs):
            if i == j:
                continue
            if any(_matches(other, r) for r in cb.run_before) or any(_matches(cb, r) for r in other.run_after):
                after[i].add(j)
    indegree = [0] * n
    for i in range(n):
        for j in after[i]:
            indegree[j] += 1
    ready = [(cbs[i].order, i) for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        out.append(i)
        for j in after[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, (cbs[j].order, j))
    if len(out) < n:
        stuck = ", ".join(type(cbs[i]).__name__ for i in range(n) if i not in out)
        raise ValueError(f"Callback ordering has a cycle among: {stuck}. Check their run_before / run_after.")
    return [cbs[i] for i in out]
