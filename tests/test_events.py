"""The exact order of events, in a normal fit and under every cancellation exception."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.callbacks import EVENTS

from .conftest import tiny_dls

TRAIN_BATCH = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward", "before_step", "after_step", "after_batch"]
VALID_BATCH = ["before_batch", "after_pred", "after_loss", "after_batch"]


class Trace(ll.Callback):
    """Records every event; raises `exc` at `event` when `when(learn)` holds."""

    def __init__(self, event=None, exc=None, when=lambda learn: True):
        self.events, self.event, self.exc, self.when = [], event, exc, when

    def _on(self, name, learn):
        self.events.append(name)
        if name == self.event and self.when(learn):
            raise self.exc()


def _make_handler(name):
    return lambda self, learn: self._on(name, learn)


for _e in EVENTS:
    setattr(Trace, _e, _make_handler(_e))


def run(trace, n_epochs=1, **kw):
    # 2 training batches, 1 validation batch.
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=4, n_valid=4, bs=2), default_cbs=False, cbs=[trace], **kw)
    learn.fit(n_epochs)
    return trace.events


def normal_epoch():
    return ["before_epoch", "before_train", *TRAIN_BATCH * 2, "after_train", "before_validate", *VALID_BATCH, "after_validate", "after_epoch"]


def test_normal_order():
    assert run(Trace()) == ["before_fit", *normal_epoch(), "after_fit"]


def test_two_epochs():
    assert run(Trace(), n_epochs=2) == ["before_fit", *normal_epoch(), *normal_epoch(), "after_fit"]


def test_cancel_batch_in_after_pred_skips_rest_of_batch_only():
    ev = run(Trace("after_pred", ll.CancelBatchException, lambda l: l.training and l.iter == 0))
    first = ["before_batch", "after_pred", "after_cancel_batch", "after_batch"]
    assert ev == ["before_fit", "before_epoch", "before_train", *first, *TRAIN_BATCH, "after_train", "before_validate", *VALID_BATCH, "after_validate", "after_epoch", "after_fit"]


def test_cancel_step_skips_only_the_step():
    ev = run(Trace("before_step", ll.CancelStepException, lambda l: l.iter == 0))
    batch0 = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward", "before_step", "after_cancel_step", "after_step", "after_batch"]
    assert ev[3 : 3 + len(batch0)] == batch0
    assert ev[3 + len(batch0) :][: len(TRAIN_BATCH)] == TRAIN_BATCH


def test_cancel_step_leaves_weights_and_keeps_gradients():
    # Skipping step also skips zero_grad, so gradients accumulate (gradient accumulation).
    class SkipStep(ll.Callback):
        def before_step(self, learn):
            raise ll.CancelStepException

    model = nn.Linear(4, 3)
    w0 = model.weight.detach().clone()
    learn = ll.Learner(model, tiny_dls(n_train=4, bs=2), default_cbs=False, cbs=[SkipStep()])
    learn.fit(1)
    assert torch.equal(model.weight, w0)
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0


def test_cancel_backward():
    ev = run(Trace("before_backward", ll.CancelBackwardException, lambda l: l.iter == 0))
    batch0 = ["before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward", "after_backward", "before_step", "after_step", "after_batch"]
    assert ev[3 : 3 + len(batch0)] == batch0


def test_cancel_train_still_validates():
    ev = run(Trace("after_batch", ll.CancelTrainException, lambda l: l.training))
    assert ev == ["before_fit", "before_epoch", "before_train", *TRAIN_BATCH, "after_cancel_train", "after_train", "before_validate", *VALID_BATCH, "after_validate", "after_epoch", "after_fit"]


def test_cancel_validate():
    ev = run(Trace("before_validate", ll.CancelValidException))
    assert ev == ["before_fit", "before_epoch", "before_train", *TRAIN_BATCH * 2, "after_train", "before_validate", "after_cancel_validate", "after_validate", "after_epoch", "after_fit"]


def test_cancel_epoch_goes_on_with_next_epoch():
    ev = run(Trace("after_train", ll.CancelEpochException, lambda l: l.epoch == 0), n_epochs=2)
    first = ["before_epoch", "before_train", *TRAIN_BATCH * 2, "after_train", "after_cancel_epoch", "after_epoch"]
    assert ev == ["before_fit", *first, *normal_epoch(), "after_fit"]


def test_cancel_fit():
    ev = run(Trace("after_batch", ll.CancelFitException, lambda l: l.training), n_epochs=3)
    assert ev == ["before_fit", "before_epoch", "before_train", *TRAIN_BATCH, "after_cancel_fit", "after_fit"]


def test_other_exceptions_propagate_after_after_fit():
    trace = Trace("after_loss", KeyError)
    with pytest.raises(KeyError):
        run(trace)
    assert trace.events[-2:] == ["after_loss", "after_fit"]


def test_2019_aliases_are_accepted():
    seen = []

    class Old(ll.Callback):
        def begin_fit(self):
            seen.append("begin_fit")

        def begin_epoch(self):
            seen.append("begin_epoch")

        def begin_batch(self):
            seen.append("begin_batch")

        def begin_validate(self):
            seen.append("begin_validate")

    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=2, n_valid=4, bs=2), default_cbs=False, cbs=[Old()]).fit(1)
    assert seen == ["begin_fit", "begin_epoch", "begin_batch", "begin_validate", "begin_batch"]


def test_misspelt_event_is_an_error_naming_the_closest():
    class Typo(ll.Callback):
        def after_los(self, learn):
            pass

    with pytest.raises(ValueError, match="after_los.*Did you mean 'after_loss'"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[Typo()])


def test_bad_handler_names_name_the_class_and_the_kind_of_mistake():
    def error(**methods):
        cb = type("Mine", (ll.Callback,), {k: (lambda self, learn: None) for k in methods})()
        with pytest.raises(ValueError) as e:
            ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[cb])
        return str(e.value)

    # Foreign-looking but not a name we map: the generic hint about other libraries.
    for name in ("on_warmup_start", "on_warmup_begin", "on_warmup_end"):
        assert error(**{name: 1}).startswith(f"Mine.{name} looks like another library's event handler")
    # A helper whose name merely starts with on_ is not taken for an event handler.
    helper = type("Mine", (ll.Callback,), {"on_click": lambda self: None, "before_fit": lambda self, learn: None})()
    ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[helper])
    # Nothing close enough to suggest: no guess, just the fact.
    msg = error(after_qqqqqqqqqqqqqqqqqqqq=1)
    assert msg == "Mine.after_qqqqqqqqqqqqqqqqqqqq looks like an event handler but 'after_qqqqqqqqqqqqqqqqqqqq' is not an event."
    assert error(before_bach=1).startswith("Mine.before_bach looks like an event handler") and "Did you mean 'before_batch'?" in error(before_bach=1)


def test_alias_and_event_together_is_an_error():
    class Both(ll.Callback):
        def begin_fit(self, learn):
            pass

        def before_fit(self, learn):
            pass

    with pytest.raises(ValueError, match="both"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[Both()])


def test_validation_runs_without_grad_in_eval_mode():
    modes = []

    class Spy(ll.Callback):
        def after_pred(self, learn):
            modes.append((learn.training, learn.model.training, torch.is_grad_enabled()))

    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=2, n_valid=4, bs=2), default_cbs=False, cbs=[Spy()]).fit(1)
    assert modes == [(True, True, True), (False, False, False)]


def test_position_counters():
    seen = []

    class Spy(ll.Callback):
        def before_batch(self, learn):
            if learn.training:
                seen.append((learn.epoch, learn.iter, learn.n_iter, learn.pct_train))

    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=4, bs=2), default_cbs=False, cbs=[Spy()]).fit(2)
    assert seen == [(0, 0, 0, 0.0), (0, 1, 1, 0.25), (1, 0, 2, 0.5), (1, 1, 3, 0.75)]
