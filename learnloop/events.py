"""The callback protocol: the events, the cancellation exceptions, `Callback`, and the registry
that puts callbacks in order and fires events.

`EVENT_TABLE` is the one place the events are written down, in the order the loop fires them
(each cancellation event where it would fire). The loop's docstring, `Learner.show_order`,
the per-phase event names and docs/events.md are derived from it or checked against it.
"""

from __future__ import annotations

import difflib
import heapq
import inspect
from typing import Any, Callable, Iterable

from .distributed import is_main
from .utils import snake_case

__all__ = [
    "EVENT_TABLE",
    "EVENTS",
    "ALIASES",
    "PHASES",
    "phase_events",
    "Callback",
    "CallbackList",
    "CancelBatchException",
    "CancelStepException",
    "CancelBackwardException",
    "CancelTrainException",
    "CancelValidException",
    "CancelEpochException",
    "CancelFitException",
    "event_handlers",
    "sort_callbacks",
]

EVENT_TABLE: dict[str, str] = {
    "before_fit": "once, before the first epoch (the optimizer exists by now)",
    "before_epoch": "at the start of each epoch",
    "before_train": "before the epoch's training batches (model in train mode)",
    "before_batch": "a batch is in learn.xb, learn.yb; change it here",
    "after_pred": "the forward pass has set learn.pred",
    "after_loss": "learn.loss is set; change it here (training batches continue to backward)",
    "before_backward": "before the backward pass (training only)",
    "after_cancel_backward": "CancelBackwardException skipped the backward pass",
    "after_backward": "gradients are in .grad; read or change them before the step",
    "before_step": "before the optimizer step and zero_grad",
    "after_cancel_step": "CancelStepException skipped the step and zero_grad",
    "after_step": "after the step and zero_grad",
    "after_cancel_batch": "CancelBatchException skipped the rest of the batch",
    "after_batch": "at the end of every batch, cancelled or not",
    "after_cancel_train": "CancelTrainException skipped the rest of the epoch's training",
    "after_train": "after the epoch's training batches",
    "before_validate": "before the validation batches (eval mode, no gradients)",
    "after_cancel_validate": "CancelValidException skipped the rest of validation",
    "after_validate": "after the validation batches",
    "after_cancel_epoch": "CancelEpochException skipped the rest of the epoch",
    "after_epoch": "at the end of each epoch",
    "after_cancel_fit": "CancelFitException stopped training",
    "after_fit": "once at the end, also when an exception escapes",
}
EVENTS = tuple(EVENT_TABLE)

# The 2019 lesson's names.
ALIASES = {
    "begin_fit": "before_fit",
    "begin_epoch": "before_epoch",
    "begin_train": "before_train",
    "begin_batch": "before_batch",
    "begin_validate": "before_validate",
}
# Other libraries' event names, so a callback written for them fails loudly instead of never running.
FOREIGN_EVENTS = {
    "on_train_begin": "before_fit",
    "on_fit_start": "before_fit",
    "on_train_end": "after_fit",
    "on_fit_end": "after_fit",
    "on_epoch_begin": "before_epoch",
    "on_epoch_start": "before_epoch",
    "on_train_epoch_start": "before_epoch",
    "on_epoch_end": "after_epoch",
    "on_train_epoch_end": "after_epoch",
    "on_batch_begin": "before_batch",
    "on_batch_start": "before_batch",
    "on_train_batch_begin": "before_batch",
    "on_train_batch_start": "before_batch",
    "on_batch_end": "after_batch",
    "on_train_batch_end": "after_batch",
    "on_validation_start": "before_validate",
    "on_validation_epoch_start": "before_validate",
    "on_validation_end": "after_validate",
    "on_validation_epoch_end": "after_validate",
    "on_test_begin": "before_validate",
    "on_test_end": "after_validate",
    "on_before_backward": "before_backward",
    "on_after_backward": "after_backward",
    "on_before_optimizer_step": "before_step",
    "on_before_zero_grad": "before_step",
}

# Events fired inside a batch: these honour a callback's run_train / run_valid flags.
BATCH_EVENTS = EVENTS[EVENTS.index("before_batch") : EVENTS.index("after_batch") + 1]
_EVENT_PREFIXES = ("before_", "after_", "begin_")


def phase_events(phase: str) -> tuple[str, str, str]:
    """(before, cancelled, after) event names of a phase, e.g. 'batch' -> before_batch, ..."""
    return f"before_{phase}", f"after_cancel_{phase}", f"after_{phase}"


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


# Each phase X runs as before_X, body, after_X; its exception skips the rest of the body and
# fires after_cancel_X before after_X.
PHASES: dict[str, type[Exception]] = {
    "fit": CancelFitException,
    "epoch": CancelEpochException,
    "train": CancelTrainException,
    "validate": CancelValidException,
    "batch": CancelBatchException,
    "backward": CancelBackwardException,
    "step": CancelStepException,
}


class Callback:
    """Base class for callbacks: define methods named after events (see `EVENT_TABLE`).

    Each event method receives the learner, `def after_batch(self, learn): ...`, and may read or
    replace any of its state: `learn.model`, `learn.opt`, `learn.xb`, `learn.yb`, `learn.pred`,
    `learn.loss`, `learn.epoch`, `learn.iter`, `learn.train_iter`, `learn.pct_train`,
    `learn.training`. `self.learn` is set too while the callback is attached.

    Ordering: lower `order` runs first (ties keep insertion order); `run_before` and
    `run_after` name other callbacks (classes or names) that must run after / before this one.
    Phase: set `run_valid = False` for a callback whose batch events (before_batch ...
    after_batch) concern training only, `run_train = False` for validation only.
    Distributed: `rank_zero_only = True` for a callback that prints or writes files: it stays
    attached on every rank but runs on rank 0 only.
    """

    order: int = 0
    run_before: Iterable[type | str] = ()
    run_after: Iterable[type | str] = ()
    run_train: bool = True
    run_valid: bool = True
    rank_zero_only: bool = False
    learn: Any = None
    # A class default, not a key looked up in self.__dict__: touching an object's __dict__ makes
    # CPython keep its attributes in a real dict, and every attribute read on it slower.
    _name: str | None = None

    @property
    def name(self) -> str:
        """Attribute name on the learner: class name minus 'Callback', in snake_case (settable)."""
        if self._name is not None:
            return self._name
        cls = type(self).__name__
        return snake_case(cls[: -len("Callback")] if cls.endswith("Callback") and cls != "Callback" else cls)

    @name.setter
    def name(self, value: str) -> None:
        if not value.isidentifier():
            raise ValueError(f"Callback name must be a Python identifier, got {value!r}.")
        self._name = value

    def state_dict(self) -> dict[str, Any]:
        """State worth saving in a checkpoint (override in stateful callbacks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"


def event_handlers(cb: Callback) -> dict[str, Callable[[Any], Any]]:
    """Map each event `cb` handles to a callable taking the learner, checking names on the way."""
    handlers: dict[str, Callable] = {}
    for attr in dir(type(cb)):
        if attr.startswith("on_") and _foreign(attr):
            raise ValueError(_not_an_event(cb, attr))
        if not attr.startswith(_EVENT_PREFIXES):
            continue
        method = getattr(cb, attr)
        if not callable(method):
            continue
        event = ALIASES.get(attr, attr)
        if event not in EVENT_TABLE:
            raise ValueError(_not_an_event(cb, attr))
        if event in handlers:
            raise ValueError(f"{type(cb).__name__} defines both {attr!r} and its alias for {event!r}; keep one.")
        handlers[event] = _with_learn(method)
    return handlers


def _foreign(attr: str) -> bool:
    return attr in FOREIGN_EVENTS or attr.endswith(("_begin", "_start", "_end"))


def _not_an_event(cb: Callback, attr: str) -> str:
    where = f"{type(cb).__name__}.{attr}"
    if attr in FOREIGN_EVENTS:
        return f"{where} is another library's event name, which learnloop never calls; name it {FOREIGN_EVENTS[attr]!r}."
    if attr.startswith("on_"):
        return f"{where} looks like another library's event handler, which learnloop never calls; its events are the before_* / after_* names in learnloop.EVENTS."
    close = difflib.get_close_matches(attr, EVENTS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{where} looks like an event handler but {attr!r} is not an event.{hint}"


def _with_learn(method: Callable) -> Callable[[Any], Any]:
    # The lesson's handlers take no argument (they read self.learn): give them the common signature.
    params = [p for p in inspect.signature(method).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return method if params else (lambda learn: method())


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
            if i != j and (any(_matches(other, r) for r in cb.run_before) or any(_matches(cb, r) for r in other.run_after)):
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


class CallbackList:
    """A learner's callbacks: attaches and detaches them (all or nothing), keeps them in run order,
    and fires events.

    Which handlers each event calls is resolved once per change, in two tables (training and
    validation phases differ only by the callbacks' `run_train` / `run_valid` flags), so firing
    an event is a dictionary lookup and a loop.
    """

    def __init__(self, owner: Any):
        self.owner = owner
        self.cbs: list[Callback] = []
        self._handlers: dict[int, dict[str, Callable]] = {}  # id(cb) -> its handlers, resolved once
        self._tables: dict[bool, dict[str, list[Callable]]] = {True: {}, False: {}}
        self._resolve()
        self.active = self._tables[False]

    def set_phase(self, training: bool) -> None:
        self.active = self._tables[training]

    def __call__(self, event: str) -> None:
        for handler in self.active[event]:
            handler(self.owner)

    def add(self, cbs: Iterable[Callback]) -> None:
        """Check every callback, and the order they make with those attached, before attaching any."""
        cbs = list(cbs)
        if not cbs:  # fit() with no extra callbacks: nothing to re-resolve
            return
        names: set[str] = set()
        handlers = {}
        for cb in cbs:
            handlers[id(cb)] = self._check(cb)
            if cb.name in names:
                raise ValueError(f"Two callbacks named {cb.name!r} in one list; give one a distinct name (cb.name = '...').")
            names.add(cb.name)
        ordered = sort_callbacks(self.cbs + cbs)  # a cycle raises here, before anything is attached
        for cb in cbs:
            cb.learn = self.owner
            setattr(self.owner, cb.name, cb)
        self.cbs = ordered
        self._handlers.update(handlers)
        self._resolve()

    def remove(self, cbs: Iterable[Callback]) -> None:
        """Detach callbacks, their `learn.<name>` attributes and their `learn` references."""
        cbs = [cb for cb in cbs if cb in self.cbs]
        if not cbs:
            return
        for cb in cbs:
            self.cbs.remove(cb)
            del self._handlers[id(cb)]
            if getattr(self.owner, cb.name, None) is cb:
                delattr(self.owner, cb.name)
            cb.learn = None
        self._resolve()

    def _check(self, cb: Any) -> dict[str, Callable]:
        if isinstance(cb, type):
            raise TypeError(f"Pass callback instances, not classes: {cb.__name__}() instead of {cb.__name__}.")
        if not isinstance(cb, Callback):
            raise TypeError(f"Callbacks must subclass learnloop.Callback, got {type(cb).__name__}.")
        if cb in self.cbs:
            raise ValueError(f"{cb!r} is already attached to this learner.")
        handlers = event_handlers(cb)  # validates event names early
        owner = self.owner
        on_class = hasattr(type(owner), cb.name)  # checked first: hasattr(owner, ...) would run a property
        if on_class or hasattr(owner, cb.name):
            what = "another callback" if not on_class and isinstance(getattr(owner, cb.name), Callback) else "a Learner attribute"
            raise ValueError(
                f"Callback name {cb.name!r} is already used by {what}; give this one a distinct name "
                f"(set `cb.name = '...'`) before adding it."
            )
        return handlers

    def refresh(self) -> None:
        """Re-resolve the handler tables (e.g. once the process's rank is known)."""
        self._resolve()

    def _resolve(self) -> None:
        # Update the tables in place: `active` keeps pointing at the right one.
        main = is_main()
        for training, table in self._tables.items():
            table.clear()
            table.update({e: [] for e in EVENTS})
            for cb in self.cbs:
                if cb.rank_zero_only and not main:
                    continue
                skip_batch = not (cb.run_train if training else cb.run_valid)
                for event, handler in self._handlers[id(cb)].items():
                    if not (skip_batch and event in BATCH_EVENTS):
                        table[event].append(handler)

    def order_table(self) -> str:
        """Which callbacks run on which event, in order, one line per event that has any."""
        lines = []
        for event in EVENTS:
            names = [type(cb).__name__ for cb in self.cbs if event in self._handlers[id(cb)]]
            if names:
                lines.append(f"{event:<24}{', '.join(names)}")
        return "\n".join(lines)
