"""Mixed precision (bf16 on the CPU for real, fp16's scaler logic with a planted overflow),
gradient clipping, and the compiled step against the eager one."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.events import EVENTS

from .conftest import tiny_dls


def test_bf16_trains_mnist_within_half_a_point_of_fp32(mnist_dir):
    from learnloop.datasets import mnist, mnist_dataloaders
    from learnloop.layers import cnn, mlp

    data = mnist(mnist_dir)
    for flat, make, lr in ((True, lambda: mlp([784, 50, 10]), 0.1), (False, lambda: cnn((8, 16, 32, 32)), 0.4)):
        accs = []
        for cbs in ([], [ll.MixedPrecision("bf16")]):
            ll.set_seed(0)
            learn = ll.Learner(make(), mnist_dataloaders(64, flatten=flat, data=data, seed=0), lr=lr, metrics=[ll.accuracy], progress=False, cbs=cbs)
            learn.fit_one_cycle(1)
            accs.append(learn.recorder.history[-1]["accuracy"])
        assert accs[1] > 0.93 and abs(accs[0] - accs[1]) < 0.005, accs  # trained, and as well as fp32


class _Spy(ll.Callback):
    """Notes, at each event, whether autocast is on and the dtypes of pred and loss."""

    def __init__(self, order):
        self.order, self.seen = order, {}
        self.name = f"spy{order}"

    def _note(self, event, learn):
        pred = learn.pred.dtype if isinstance(learn.pred, torch.Tensor) else None
        loss = learn.loss.dtype if isinstance(learn.loss, torch.Tensor) else None
        self.seen.setdefault(event, (torch.is_autocast_enabled("cpu"), pred, loss))


for _e in ("before_batch", "after_pred", "after_loss", "before_backward"):
    setattr(_Spy, _e, (lambda e: lambda self, learn: self._note(e, learn))(_e))


def test_autocast_covers_exactly_predict_and_loss():
    early, late = _Spy(0), _Spy(100)
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[ll.MixedPrecision("bf16"), early, late])
    learn.fit(1)
    assert early.seen["before_batch"][0] is False  # transforms before it run in fp32
    assert early.seen["after_pred"] == (True, torch.bfloat16, None)  # the first batch: no loss yet
    assert late.seen["after_pred"][:2] == (True, torch.float32)  # handed on as fp32
    assert late.seen["after_loss"] == (False, torch.float32, torch.float32)  # the loss the Recorder sees
    assert late.seen["before_backward"][0] is False


class _PlantInf(ll.Callback):
    """Puts an inf into the first weight's (scaled) gradient at the given training steps."""

    order = 60  # before MixedPrecision (65) unscales

    def __init__(self, steps):
        self.steps = set(steps)

    def after_backward(self, learn):
        if learn.train_batches_done in self.steps:
            next(learn.model.parameters()).grad.view(-1)[0] = math.inf


class _Weights(ll.Callback):
    order = 200

    def before_fit(self, learn):
        self.after_each = []

    def after_step(self, learn):
        self.after_each.append(learn.model.weight.detach().clone())


def test_fp16_overflow_skips_the_step_halves_the_scale_and_goes_on():
    ll.set_seed(0)
    mp, weights = ll.MixedPrecision("fp16"), _Weights()
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), progress=False, cbs=[mp, _PlantInf({1}), weights])
    w0 = learn.model.weight.detach().clone()
    with pytest.warns(UserWarning, match="fp16 on the CPU is slow"):
        learn.fit(1)
    w = weights.after_each
    assert not torch.equal(w[0], w0)  # step 0 went through
    assert torch.equal(w[1], w[0])  # step 1 overflowed: skipped, weights untouched
    assert not torch.equal(w[2], w[1]) and torch.isfinite(w[3]).all()  # and training goes on
    assert mp.overflow_steps == 1 and learn.recorder.skipped_steps == 1
    assert mp.scaler.get_scale() == 65536.0 / 2


def test_fp16_scaler_state_travels_in_checkpoints(tmp_path):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), progress=False, cbs=[ll.MixedPrecision("fp16"), _PlantInf({0, 2})])
    with pytest.warns(UserWarning):
        learn.fit(1)
    learn.save(tmp_path / "c.safetensors")
    fresh = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), progress=False, cbs=[ll.MixedPrecision("fp16")])
    fresh.load(tmp_path / "c.safetensors")
    assert fresh.mixed_precision.scaler.get_scale() == 65536.0 / 4 and fresh.mixed_precision.overflow_steps == 2


def test_fp16_with_accumulation_unscales_once_per_real_step():
    ll.set_seed(0)
    mp = ll.MixedPrecision("fp16")
    clip = ll.GradientClip(max_norm=1e9)  # logs the norm of each real step, clips nothing
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=12, bs=2), progress=False, cbs=[mp, ll.GradientAccumulation(3), clip])
    with pytest.warns(UserWarning):
        learn.fit(1)
    assert len(learn.recorder.logs["grad_norm"]) == 2 and learn.recorder.skipped_steps == 4  # 6 batches: 2 steps
    # the logged norms are of unscaled gradients: the same as in fp32 within fp16's precision
    ll.set_seed(0)
    ref = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=12, bs=2), progress=False, cbs=[ll.GradientAccumulation(3), ll.GradientClip(max_norm=1e9)])
    ref.fit(1)
    assert learn.recorder.logs["grad_norm"] == pytest.approx(ref.recorder.logs["grad_norm"], rel=1e-2)


class _NormAtStep(ll.Callback):
    order = 90  # after GradientClip (80)

    def before_fit(self, learn):
        self.norms = []

    def before_step(self, learn):
        self.norms.append(torch.nn.utils.get_total_norm([p.grad for p in learn.model.parameters()]).item())


def test_gradient_clip_to_max_norm_and_untouched_below():
    ll.set_seed(0)
    spy = _NormAtStep()
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), lr=0.01, progress=False, cbs=[ll.GradientClip(max_norm=0.05), spy])
    learn.fit(1)
    before = learn.recorder.logs["grad_norm"]
    assert len(before) == 4 and all(b > 0.05 for b in before)
    assert spy.norms == pytest.approx([0.05] * 4, abs=1e-6)
    ll.set_seed(0)
    spy2 = _NormAtStep()
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), lr=0.01, progress=False, cbs=[ll.GradientClip(max_norm=100.0), spy2])
    learn.fit(1)
    assert spy2.norms == pytest.approx(learn.recorder.logs["grad_norm"], rel=1e-6)  # below max_norm: untouched
    assert learn.recorder.history[0]["grad_norm"] == pytest.approx(sum(spy2.norms) / 4, rel=1e-6)


def test_gradient_clip_by_value():
    seen = []

    class Max(ll.Callback):
        order = 90

        def before_step(self, learn):
            seen.append(max(p.grad.abs().max().item() for p in learn.model.parameters()))

    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), progress=False, cbs=[ll.GradientClip(clip_value=1e-3), Max()]).fit(1)
    assert len(seen) == 4 and all(v <= 1e-3 + 1e-9 for v in seen)  # 1e-3 in float32 is 0.00100000005


def _trace_cls():
    class Trace(ll.Callback):
        order = 200

        def __init__(self):
            self.events = []

    for e in EVENTS:
        setattr(Trace, e, (lambda e: lambda self, learn: self.events.append(e))(e))
    return Trace


def test_compiled_step_matches_eager_and_fires_the_same_events(tmp_path):
    Trace = _trace_cls()
    runs = []
    for compile in (False, True):
        ll.set_seed(0)
        trace = Trace()
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
        learn = ll.Learner(model, tiny_dls(n_train=40, n_valid=8, bs=2), progress=False, compile=compile, cbs=[trace])
        learn.fit(1)
        runs.append((learn, trace))
    (eager, t_eager), (compiled, t_compiled) = runs
    assert hasattr(compiled.model, "_orig_mod") and not hasattr(eager.model, "_orig_mod")
    assert len(eager.recorder.losses) == 20
    assert compiled.recorder.losses == pytest.approx(eager.recorder.losses, abs=1e-5)
    assert t_compiled.events == t_eager.events
    # files from a compiled run carry the original keys
    compiled.save(tmp_path / "c.safetensors")
    ll.save_model(compiled.model, tmp_path / "m.safetensors")
    fresh = ll.load_model(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)), tmp_path / "m.safetensors")
    assert torch.equal(fresh[0].weight, compiled.model._orig_mod[0].weight)
    eager.load(tmp_path / "c.safetensors")
    assert compiled.get_preds()[0].shape == (8, 3)


def test_activation_stats_on_a_compiled_model_says_what_to_do():
    learn = ll.Learner(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), tiny_dls(), progress=False, compile=True, cbs=[ll.ActivationStats()])
    with pytest.raises(ValueError, match="Look inside the eager model"):
        learn.fit(1)
