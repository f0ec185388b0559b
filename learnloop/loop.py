"""The training loop, driven by events and steered by cancellation exceptions.

    fit:      before_fit, then per epoch:
      epoch:    before_epoch
        train:    before_train, per batch: (batch), after_train
        validate: before_validate, per batch: (batch, no grad, eval mode), after_validate
                after_epoch
              after_fit
    batch:    before_batch, predict, after_pred, get_loss, after_loss,
              [training] backward: before_backward, backward, after_backward
                         step:     before_step, step, zero_grad, after_step
              after_batch

Each phase X above runs as `before_X; body; after_X`. Raising its `CancelXException` from a
callback (or the body) skips the rest of the body and fires `after_cancel_X`; `after_X` still
fires and the enclosing phase carries on. `after_fit` also fires when any other exception
escapes, then the exception propagates. The step is split into `predict`, `get_loss`,
`backward`, `step` and `zero_grad` so a subclass can change one piece without touching the loop.

`BaseLearner` is the loop and nothing else: no default callbacks, no argument checks, no
evaluation helpers (`Learner` adds those). It knows callbacks only through `events`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from .checks import as_list, batch_form_error, batch_note, check_loss_value, forward_note, loss_hint
from .events import PHASES, Callback, CallbackList, phase_events

__all__ = ["BaseLearner"]

# Each phase's (before, after_cancel, after) events and exception, built once.
_PHASES = {phase: (*phase_events(phase), exc) for phase, exc in PHASES.items()}
_CANCELS = tuple(PHASES.values())


class BaseLearner:
    """Trains `model` on `dls` (`.train`, optional `.valid`) with `loss_func` and an optimizer
    `opt_func(params, lr=lr)`, firing events on `cbs`. See `Learner` for the documented arguments."""

    def __init__(
        self,
        model: nn.Module,
        dls: Any,
        loss_func: Callable[..., torch.Tensor],
        opt_func: Callable[..., torch.optim.Optimizer],
        lr: float,
        cbs: Iterable[Callback] | None = None,
        metrics: Iterable[Any] = (),
    ):
        self.model, self.dls, self.loss_func, self.opt_func, self.lr = model, dls, loss_func, opt_func, lr
        self.metrics = list(metrics)
        self.opt: torch.optim.Optimizer | None = None
        self.callbacks = CallbackList(self)
        self.training, self.epoch, self.start_epoch, self.epochs_done, self.n_epochs, self.iter = False, 0, 0, 0, 0, 0
        self.train_batches_done, self.total_train_batches, self.pct_train = 0, 1, 0.0
        self.dl: Any = None
        self.xb: Any = None
        self.yb: Any = None
        self.pred: Any = None
        self.loss: torch.Tensor | None = None
        self._loss_checked = False
        self.add_cbs(cbs or [])

    # ---- callbacks ------------------------------------------------------------------------

    @property
    def cbs(self) -> list[Callback]:
        """The attached callbacks, in the order they run."""
        return self.callbacks.cbs

    def add_cbs(self, cbs: Iterable[Callback]) -> "BaseLearner":
        """Attach callbacks (all or none): each becomes reachable as `learn.<cb.name>`."""
        self.callbacks.add(as_list(cbs))
        return self

    def remove_cbs(self, cbs: Iterable[Callback]) -> "BaseLearner":
        """Detach callbacks (and their `learn.<name>` attributes)."""
        self.callbacks.remove(as_list(cbs))
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback] | None) -> Iterator["BaseLearner"]:
        """Callbacks attached for the duration of a `with` block (as `fit(cbs=...)` does)."""
        cbs = as_list(cbs)
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            self.remove_cbs(cbs)

    def __call__(self, event: str) -> None:
        """Fire `event`: call every callback that handles it, in order."""
        self.callbacks(event)

    def show_order(self) -> str:
        """Which callbacks run on which event, in order (also printed)."""
        text = self.callbacks.order_table()
        print(text)
        return text

    @property
    def n_iter(self) -> int:
        """Alias of `train_batches_done` (the lesson's name)."""
        return self.train_batches_done

    # ---- the step, in overridable pieces -------------------------------------------------

    def split_batch(self, batch: Any) -> tuple[Any, Any]:
        """A batch from the loader -> (xb, yb). Batches with no target give yb = None (inference)."""
        if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
            return batch[0], (batch[1] if len(batch) == 2 else None)
        raise batch_form_error(batch)

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

    def create_opt(self) -> torch.optim.Optimizer:
        """Make the optimizer over the model's parameters with `opt_func(params, lr=self.lr)`."""
        self.opt = self.opt_func(self.model.parameters(), lr=self.lr)
        return self.opt

    # ---- the loop ---------------------------------------------------------------------------

    def _run_phase(self, body: Callable[[], None], phase: str, cleanup: bool = False, done: Callable[[], None] | None = None) -> None:
        before, cancelled, after, cancel = _PHASES[phase]
        try:
            self.callbacks(before)
            body()
        except cancel:
            self.callbacks(cancelled)
        except BaseException:
            if cleanup:  # the fit's after_fit runs even on errors, so callbacks can clean up
                self.callbacks(after)
            raise
        if done is not None:  # bookkeeping that after_X should already see
            done()
        self.callbacks(after)

    def _do_batch(self) -> None:
        try:
            self.predict()
        except Exception as e:  # free unless raised; cancellations pass as is
            raise e if isinstance(e, _CANCELS) else forward_note(e, self.model, self.xb, self.epoch, self.iter, self.training)
        self.callbacks("after_pred")
        if self.yb is None:  # inference: nothing to compare against
            return
        if self._loss_checked:
            try:
                self.get_loss()
            except Exception as e:
                raise e if isinstance(e, _CANCELS) else batch_note(e, self.pred, self.yb, self.epoch, self.iter, self.training)
        else:
            with loss_hint(self.loss_func, self.pred, self.yb):
                self.get_loss()
            check_loss_value(self.loss, self.loss_func)
            self._loss_checked = True
        self.callbacks("after_loss")
        if self.training:
            self._run_phase(self.backward, "backward")
            self._run_phase(self._step_and_zero_grad, "step")

    def _step_and_zero_grad(self) -> None:
        self.step()
        self.zero_grad()

    def _count_train_batch(self) -> None:
        self.train_batches_done += 1
        self.pct_train = self.train_batches_done / self.total_train_batches

    def _run_batches(self) -> None:
        done = self._count_train_batch if self.training else None
        # A loader resumed mid-epoch (see DataLoader.load_state_dict) starts at its position.
        for self.iter, batch in enumerate(self.dl, getattr(self.dl, "position", 0)):
            self.xb, self.yb = self.split_batch(batch)
            self._run_phase(self._do_batch, "batch", done=done)

    def _enter_phase(self, dl: Any, training: bool) -> None:
        self.dl, self.training = dl, training
        self.model.train(training)
        self.callbacks.set_phase(training)

    def _train_phase(self) -> None:
        self._enter_phase(self.dls.train, True)
        self._run_phase(self._run_batches, "train")

    def _valid_phase(self, dl: Any) -> None:
        self._enter_phase(dl, False)
        with torch.no_grad():
            self._run_phase(self._run_batches, "validate")

    def _do_epoch(self) -> None:
        self._train_phase()
        if self.dls.valid is not None:
            self._valid_phase(self.dls.valid)

    def _count_epoch(self) -> None:
        self.epochs_done = self.epoch + 1

    def _do_fit(self) -> None:
        for self.epoch in range(self.start_epoch, self.n_epochs):
            self._run_phase(self._do_epoch, "epoch", done=self._count_epoch)

    def fit(self, n_epochs: int = 1, lr: float | None = None, cbs: Iterable[Callback] | None = None, reset_opt: bool = False) -> None:
        """Train for `n_epochs`, validating after each. `lr` overrides every param group's learning
        rate; `cbs` are attached for this fit only; `reset_opt` makes a new optimizer."""
        with self.added_cbs(cbs):
            if reset_opt or self.opt is None:
                self.create_opt()
            if lr is not None:
                for group in self.opt.param_groups:
                    group["lr"] = lr
            self.n_epochs, self.epoch, self.start_epoch, self.epochs_done = n_epochs, 0, 0, 0
            self.train_batches_done, self.pct_train = 0, 0.0
            self.total_train_batches = max(1, n_epochs * len(self.dls.train))
            self._loss_checked = False
            self._run_phase(self._do_fit, "fit", cleanup=True)

    def _eval_pass(self, dl: Any, cbs: Iterable[Callback] | None = None) -> None:
        """One validation pass over `dl` (no epoch, no optimizer), with `cbs` attached for it."""
        self._loss_checked = False
        with self.added_cbs(cbs):
            self._valid_phase(dl)
