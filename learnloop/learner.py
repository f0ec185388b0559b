"""The Learner: a training loop driven by events, steered by cancellation exceptions.

The whole loop, one screen long:

    fit:    before_fit, then per epoch:
    epoch:    before_epoch
    train:      before_train, per batch: (batch), after_train
    validate:   before_validate, per batch: (batch, no grad, eval mode), after_validate
              after_epoch
            after_fit
    batch:  before_batch, predict, after_pred, get_loss, after_loss,
            [training] before_backward, backward, after_backward,
                       before_step, step, zero_grad, after_step,
            after_batch

Each phase X above runs as `before_X; body; after_X`. Raising `CancelXException` from a
callback (or the body) jumps to `after_cancel_X`, then `after_X` still fires and the enclosing
phase carries on. `after_fit` also fires when any other exception escapes, then the exception
propagates. The step is split into `predict`, `get_loss`, `backward`, `step` and `zero_grad`
so a subclass can change one piece without touching the loop.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .callbacks.core import (
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    event_handlers,
    sort_callbacks,
)
from .callbacks.device import DeviceCallback
from .callbacks.guards import NonFiniteCheck
from .callbacks.progress import ProgressBar
from .callbacks.recorder import Recorder
from .data import ArrayDataset, DataLoader, DataLoaders
from .metrics import resolve_metric
from .policies import FitPolicies

__all__ = ["Learner"]

# Losses that compare prediction and target element by element: differing shapes would
# silently broadcast (with only a warning from torch), so they are an error here.
_ELEMENTWISE_FUNCS = (
    F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
)  # fmt: skip
_ELEMENTWISE_MODULES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss)


# Each phase's (before, after_cancel, after) event names, built once rather than per batch.
_PHASE_EVENTS = {p: (f"before_{p}", f"after_cancel_{p}", f"after_{p}") for p in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}


def _shape(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


class Learner(FitPolicies):
    """Trains `model` on `dls` with `loss_func` and an optimizer made by `opt_func`.

    Args:
        model: any `nn.Module`; called as `model(xb)`.
        dls: `DataLoaders` with `.train` and (optionally) `.valid`, each yielding `(x, y)` batches.
        loss_func: `loss_func(pred, y) -> scalar tensor` (default cross-entropy).
        opt_func: an optimizer class or factory called as `opt_func(params, lr=lr)`, e.g.
            `torch.optim.SGD` (default) or `torch.optim.AdamW`. The optimizer is created at
            the first `fit` and kept across fits (`fit(..., reset_opt=True)` makes a new one).
        lr: learning rate for the optimizer.
        cbs: extra callbacks, kept for the learner's lifetime.
        metrics: metrics computed on the validation set: functions `f(pred, y) -> tensor`
            (averaged, weighted by batch size), objects with `update/compute/reset`
            (torchmetrics-style), or names such as `'accuracy'`.
        device: where to train (default: CUDA, then MPS, then CPU).

    Training recipes (`fit_one_cycle`, `fit_flat_cos`, `lr_find`) come from `FitPolicies`.
        default_cbs: add the default callbacks (device, recorder, non-finite check, progress).
        progress: show the progress bar and epoch table (False for quiet scripts).
    """

    def __init__(
        self,
        model: nn.Module,
        dls: DataLoaders,
        loss_func: Callable[..., torch.Tensor] = F.cross_entropy,
        opt_func: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
        lr: float = 0.1,
        cbs: Iterable[Callback] | None = None,
        metrics: Sequence[Any] | Any = None,
        device: torch.device | str | None = None,
        default_cbs: bool = True,
        progress: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if not hasattr(dls, "train"):
            raise TypeError(f"dls must be DataLoaders (with .train and .valid), got {type(dls).__name__}.")
        if not callable(loss_func):
            raise TypeError(f"loss_func must be callable as loss_func(pred, target), got {loss_func!r}.")
        if isinstance(opt_func, torch.optim.Optimizer) or not callable(opt_func):
            raise TypeError(
                "opt_func must be an optimizer class or factory such as torch.optim.SGD (not an optimizer "
                "instance): the Learner creates the optimizer itself with opt_func(params, lr=lr)."
            )
        self.model, self.dls, self.loss_func, self.opt_func, self.lr = model, dls, loss_func, opt_func, lr
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, bytes)) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        self.metrics = [resolve_metric(m) for m in metrics]
        self.opt: torch.optim.Optimizer | None = None
        self.cbs: list[Callback] = []
        self._handlers: dict[str, list[Callable[[Learner], Any]]] = {e: [] for e in EVENTS}
        self.training, self.epoch, self.n_epochs, self.iter, self.n_iter, self.pct_train = False, 0, 0, 0, 0, 0.0
        self.xb: Any = None
        self.yb: Any = None
        self.pred: Any = None
        self.loss: torch.Tensor | None = None
        self._loss_checked = False
        if default_cbs:
            defaults: list[Callback] = [DeviceCallback(device), Recorder(), NonFiniteCheck()]
            if progress:
                defaults.append(ProgressBar())
            self.add_cbs(defaults)
        elif device is not None:
            self.add_cbs([DeviceCallback(device)])
        self.add_cbs(cbs or [])

    # ---- callbacks ------------------------------------------------------------------------

    def add_cbs(self, cbs: Iterable[Callback]) -> "Learner":
        """Attach callbacks: each becomes reachable as `learn.<cb.name>`."""
        cbs = list(cbs)
        names: set[str] = set()
        for cb in cbs:  # check them all before attaching any: no half-added list
            self._check_cb(cb)
            if cb.name in names:
                raise ValueError(f"Two callbacks named {cb.name!r} in one list; give one a distinct name (cb.name = '...').")
            names.add(cb.name)
        for cb in cbs:
            cb.learn = self
            setattr(self, cb.name, cb)
            self.cbs.append(cb)
        self._refresh()
        return self

    def remove_cbs(self, cbs: Iterable[Callback]) -> "Learner":
        """Detach callbacks (and their `learn.<name>` attributes)."""
        for cb in list(cbs):
            if cb in self.cbs:
                self.cbs.remove(cb)
                if self.__dict__.get(cb.name) is cb:
                    delattr(self, cb.name)
        self._refresh()
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback] | None) -> Iterator["Learner"]:
        """Callbacks attached for the duration of a `with` block (as `fit(cbs=...)` does)."""
        cbs = list(cbs or [])
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            self.remove_cbs(cbs)

    def _check_cb(self, cb: Any) -> None:
        if isinstance(cb, type):
            raise TypeError(f"Pass callback instances, not classes: {cb.__name__}() instead of {cb.__name__}.")
        if not isinstance(cb, Callback):
            raise TypeError(f"Callbacks must subclass learnloop.Callback, got {type(cb).__name__}.")
        if cb in self.cbs:
            raise ValueError(f"{cb!r} is already attached to this learner.")
        event_handlers(cb)  # validates event names early
        if cb.name in self.__dict__ or hasattr(type(self), cb.name):
            taken = self.__dict__.get(cb.name)
            what = "another callback" if isinstance(taken, Callback) else "a Learner attribute"
            raise ValueError(
                f"Callback name {cb.name!r} is already used by {what}; give this one a distinct name "
                f"(set `cb.name = '...'`) before adding it."
            )

    def _refresh(self) -> None:
        # Resolve once, not per batch, which callbacks handle which event, in order.
        self.cbs = sort_callbacks(self.cbs)
        self._handlers = {e: [] for e in EVENTS}
        for cb in self.cbs:
            for event, handler in event_handlers(cb).items():
                self._handlers[event].append(handler)

    def __call__(self, event: str) -> None:
        """Fire `event`: call every callback that handles it, in order."""
        for handler in self._handlers[event]:
            handler(self)

    def show_order(self) -> str:
        """Which callbacks run on which event, in order (also printed)."""
        lines = []
        for event in EVENTS:
            names = [type(cb).__name__ for cb in self.cbs if event in event_handlers(cb)]
            if names:
                lines.append(f"{event:<24}{', '.join(names)}")
        text = "\n".join(lines)
        print(text)
        return text

    # ---- the step, in overridable pieces -------------------------------------------------

    def split_batch(self, batch: Any) -> tuple[Any, Any]:
        """A batch from the loader -> (xb, yb). Batches with no target give yb = None (inference)."""
        if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
            return batch[0], (batch[1] if len(batch) == 2 else None)
        raise TypeError(
            f"Expected batches of (x, y), got {type(batch).__name__}"
            f"{f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''}. "
            "Return (x, y) pairs from the dataset, or subclass Learner and override split_batch."
        )

    def predict(self) -> None:
        """Forward pass: sets `self.pred`."""
        self.pred = self.model(self.xb)

    def get_loss(self) -> None:
        """Sets `self.loss` from the prediction and the target."""
        self.loss = self.loss_func(self.pred, self.yb)

    def backward(self) -> None:
        """Gradients of the loss."""
        self.loss.backward()

    def step(self) -> None:
        """One optimizer update."""
        self.opt.step()

    def zero_grad(self) -> None:
        """Clears the gradients after a step (skipped with it when the step is cancelled)."""
        self.opt.zero_grad()

    def _first_loss(self) -> None:
        # Once per run: turn torch's cryptic shape errors into one that says what to fix.
        func = self.loss_func
        elementwise = func in _ELEMENTWISE_FUNCS or isinstance(func, _ELEMENTWISE_MODULES)
        pred, yb = self.pred, self.yb
        hint = (
            f"predictions of shape {_shape(pred)} and targets of shape {_shape(yb)}. Make the model's output "
            "fit the loss (e.g. (batch, n_classes) logits with (batch,) int64 class targets for cross-entropy)."
        )
        if elementwise and isinstance(pred, torch.Tensor) and isinstance(yb, torch.Tensor) and pred.shape != yb.shape:
            raise ValueError(f"{getattr(func, '__name__', type(func).__name__)} got {hint}")
        try:
            self.get_loss()
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise ValueError(f"loss_func failed ({e}) on {hint}") from e
        self._loss_checked = True

    def _do_batch(self) -> None:
        self.predict()
        self("after_pred")
        if self.yb is None:  # inference: nothing to compare against
            return
        if self._loss_checked:
            self.get_loss()
        else:
            self._first_loss()
        self("after_loss")
        if not self.training:
            return
        self._with_events(self.backward, "backward", CancelBackwardException)
        self._with_events(self._step, "step", CancelStepException)

    def _step(self) -> None:
        self.step()
        self.zero_grad()

    # ---- the loop ---------------------------------------------------------------------------

    def _with_events(self, body: Callable[[], None], phase: str, cancel: type[Exception], cleanup: bool = False) -> None:
        before, cancelled, after = _PHASE_EVENTS[phase]
        try:
            self(before)
            body()
        except cancel:
            self(cancelled)
        except BaseException:
            if cleanup:
                self(after)
            raise
        self(after)

    def _run_batches(self) -> None:
        for self.iter, batch in enumerate(self.dl):
            self.xb, self.yb = self.split_batch(batch)
            self._with_events(self._do_batch, "batch", CancelBatchException)
            if self.training:
                self.n_iter += 1
                self.pct_train = self.n_iter / self.total_iters

    def _phase(self, dl: Any, training: bool) -> None:
        self.dl, self.training = dl, training
        self.model.train(training)

    def _train_phase(self) -> None:
        self._phase(self.dls.train, True)
        self._with_events(self._run_batches, "train", CancelTrainException)

    def _valid_phase(self, dl: Any) -> None:
        self._phase(dl, False)
        with torch.no_grad():
            self._with_events(self._run_batches, "validate", CancelValidException)

    def _do_epoch(self) -> None:
        self._train_phase()
        if self.dls.valid is not None:
            self._valid_phase(self.dls.valid)

    def _do_fit(self) -> None:
        for self.epoch in range(self.n_epochs):
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def create_opt(self) -> torch.optim.Optimizer:
        """Make the optimizer over the model's parameters with `opt_func(params, lr=self.lr)`."""
        self.opt = self.opt_func(self.model.parameters(), lr=self.lr)
        return self.opt

    def fit(self, n_epochs: int = 1, lr: float | None = None, cbs: Iterable[Callback] | None = None, reset_opt: bool = False) -> None:
        """Train for `n_epochs`, validating after each. `lr` overrides every param group's learning
        rate; `cbs` are attached for this fit only."""
        if not isinstance(n_epochs, int) or isinstance(n_epochs, bool) or n_epochs < 0:
            raise ValueError(f"n_epochs must be a non-negative int, got {n_epochs!r}.")
        if len(self.dls.train) == 0:
            raise ValueError("The training DataLoader yields no batches (empty dataset, or drop_last with too few items).")
        if lr is not None and (not isinstance(lr, (int, float)) or not lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}.")
        with self.added_cbs(cbs):
            if reset_opt or self.opt is None:
                self.create_opt()
            if lr is not None:
                for group in self.opt.param_groups:
                    group["lr"] = lr
            self.n_epochs, self.n_iter, self.pct_train, self.epoch = n_epochs, 0, 0.0, 0
            self.total_iters = max(1, n_epochs * len(self.dls.train))
            self._loss_checked = False
            self._with_events(self._do_fit, "fit", CancelFitException, cleanup=True)

    # ---- evaluation and inference -----------------------------------------------------------

    def _eval_pass(self, dl: Any, cbs: Iterable[Callback]) -> None:
        if dl is None:
            raise ValueError("No DataLoader to evaluate: dls.valid is None, so pass dl=...")
        self._loss_checked = False
        with self.added_cbs(cbs):
            self._valid_phase(dl)

    def validate(self, dl: Any = None, cbs: Iterable[Callback] | None = None) -> dict[str, float]:
        """Loss and metrics over `dl` (default: the validation loader), e.g. {'valid_loss': .., 'accuracy': ..}."""
        recorder = self.__dict__.get("recorder")
        if not isinstance(recorder, Recorder):
            raise RuntimeError("validate() reports through the Recorder callback; create the Learner with default_cbs=True.")
        self._eval_pass(dl if dl is not None else self.dls.valid, cbs or [])
        return dict(recorder.last_valid)

    def get_preds(self, dl: Any = None, cbs: Iterable[Callback] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model outputs and targets over `dl` (default: validation loader), concatenated on the CPU."""
        gather = _GatherPreds()
        self._eval_pass(dl if dl is not None else self.dls.valid, [gather, *(cbs or [])])
        return gather.result()

    def infer(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Model outputs for raw inputs `x` (no targets), in eval mode, batched, returned on the CPU."""
        bs = batch_size or getattr(self.dls.valid or self.dls.train, "batch_size", None) or 256
        preds, _ = self.get_preds(DataLoader(ArrayDataset(x), batch_size=bs))
        return preds


class _GatherPreds(Callback):
    """Collects predictions and targets of an evaluation pass, on the device, for get_preds."""

    order = 100

    def before_validate(self, learn: Learner) -> None:
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def after_pred(self, learn: Learner) -> None:
        self.preds.append(learn.pred.detach())
        if learn.yb is not None:
            self.targets.append(learn.yb.detach())

    def result(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.preds:
            raise ValueError("get_preds: the DataLoader yielded no batches.")
        preds = torch.cat(self.preds).cpu()
        return preds, (torch.cat(self.targets).cpu() if self.targets else None)
