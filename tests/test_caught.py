"""Tests written to catch bugs a review planted and the suite used to miss (tests/planted_bugs.py
plants each one and checks these fail): every RNG and the model's mode restored by lr_find,
sharded lengths, ActivationStats' gradient std, a device move, norm layers with non-default
affine parameters, the valley suggestion, Normalize."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from learnloop.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from learnloop.schedule.lr_finder import Snapshot, suggest_minimum, suggest_steep, suggest_valley

from .conftest import tiny_dls


def test_lr_find_restores_every_rng_and_the_models_mode():
    class Noise(ll.Callback):  # draws from every global generator during the sweep
        def before_batch(self, learn):
            random.random(), np.random.rand(), torch.rand(1)

    ll.set_seed(0)
    learn = ll.Learner(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), tiny_dls(n_train=64, bs=4), cbs=[Noise()], progress=False)
    for mode in (False, True):
        learn.model.train(mode)
        before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
        learn.lr_find(num_it=20)
        assert random.getstate() == before[0]
        assert np.array_equal(np.random.get_state()[1], before[1])
        assert torch.equal(torch.get_rng_state(), before[2])
        assert learn.model.training is mode and all(m.training is mode for m in learn.model.modules())


@pytest.mark.parametrize("available, initialized", [(True, True), (True, False), (False, True)])
def test_snapshot_saves_and_restores_the_cuda_rng_when_cuda_is_in_use(monkeypatch, available, initialized):
    # No GPU here: a stand-in for torch.cuda's RNG calls shows what the snapshot saves and puts back.
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=16, bs=4), progress=False)
    cuda_state = {"now": [torch.tensor([1, 2, 3], dtype=torch.uint8)], "set": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in cuda_state["now"]])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: cuda_state["set"].append(states))
    snap = Snapshot(learn)
    cuda_state["now"] = [torch.tensor([9, 9, 9], dtype=torch.uint8)]  # the trial run draws from the GPU's generator
    snap.restore(learn)
    if available and initialized:
        assert len(cuda_state["set"]) == 1 and torch.equal(cuda_state["set"][0][0], torch.tensor([1, 2, 3], dtype=torch.uint8))
    else:  # no CUDA in use: nothing to save, and nothing is touched on restore
        assert "cuda" not in snap.rng and cuda_state["set"] == []

@pytest.mark.parametrize("n", [1, 7, 64, 99, 100, 101])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
def test_sharded_lengths_are_what_iteration_yields(n, replicas):
    seen = []
    for rank in range(replicas):
        for sampler in (RandomSampler(n, seed=1, num_replicas=replicas, rank=rank), RandomSampler(n, seed=1, num_replicas=replicas, rank=rank, pad=False)):
            idx = list(sampler)
            assert len(sampler) == len(idx)
            for bs, drop in ((8, False), (8, True), (3, False)):
                bsamp = BatchSampler(sampler, bs, drop_last=drop)
                batches = list(bsamp)
                assert len(bsamp) == len(batches) and sum(map(len, batches)) == (len(idx) // bs * bs if drop else len(idx))
            if sampler.pad:
                seen += idx
        dl = DataLoader(ll.ArrayDataset(torch.arange(n)), batch_size=5, sampler=RandomSampler(n, seed=1, num_replicas=replicas, rank=rank))
        assert len(dl) == len(list(dl)) == math.ceil(math.ceil(n / replicas) / 5)
    assert set(seen) == set(range(n))  # padded shards together cover every item
    assert len(SequentialSampler(n)) == n


def test_activation_stats_gradient_std_is_the_std():
    ll.set_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    grads = []

    class Grab(ll.Callback):
        order = 60

        def after_backward(self, learn):
            grads.append([m.weight.grad.std().item() for m in (model[0], model[2], model[4])])

    stats = ll.ActivationStats(every=1)
    ll.Learner(model, tiny_dls(n_train=24, bs=4), lr=0.1, cbs=[stats, Grab()], progress=False).fit(2)
    got = stats.stats()["grad_stds"]
    assert got.shape == (12, 3)
    assert torch.allclose(got, torch.tensor(grads), rtol=1e-5)


def test_device_callback_really_moves_batches():
    # 'meta' is a device every machine has: a move that does nothing leaves the batch on the CPU.
    cb = ll.DeviceCallback("meta")

    class Stub:
        xb, yb = torch.randn(4, 3), torch.arange(4)

    stub = Stub()
    cb.before_batch(stub)
    assert stub.xb.device.type == "meta" and stub.yb.device.type == "meta"
    nested = ll.utils.to_device({"a": [torch.ones(2), (torch.zeros(1),)]}, "meta")
    assert nested["a"][0].device.type == nested["a"][1][0].device.type == "meta"


def _randomise(*mods):
    with torch.no_grad():
        for m in mods:  # the same draws for each module: equal, non-default weights and biases
            g = torch.Generator().manual_seed(3)
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g))


def test_norm_layers_with_random_affine_parameters_match_torch_in_values_and_gradients():
    pairs = [
        (BatchNorm(6), nn.BatchNorm2d(6)),
        (LayerNorm((6, 5, 5)), nn.LayerNorm((6, 5, 5))),
        (GroupNorm(3, 6), nn.GroupNorm(3, 6)),
        (InstanceNorm(6, affine=True), nn.InstanceNorm2d(6, affine=True)),
    ]
    for ours, theirs in pairs:
        # In double precision, so the comparison is tight and no thread count's summation order
        # matters (in float32, one thread's order moved an InstanceNorm gradient by 1e-3 of 75).
        ours, theirs = ours.double(), theirs.double()
        _randomise(ours, theirs)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(p, q)
        x = torch.randn(4, 6, 5, 5, dtype=torch.float64) * 2 + 1
        out, ref = ours(x), theirs(x)
        assert torch.allclose(out, ref, atol=1e-10), type(ours).__name__
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        (ref * torch.arange(ref.numel()).view_as(ref)).sum().backward()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-9), type(ours).__name__


def test_suggestions_on_a_curve_with_known_answers():
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]  # 1e-6 .. 1
    # flat until index 30, falls linearly to its minimum at index 80, then climbs steeply
    losses = [2.0] * 31 + [2.0 - 1.5 * (i - 30) / 50 for i in range(31, 81)] + [0.5 + 0.3 * (i - 80) for i in range(81, 100)]
    # valley: from where a tenth of the fall is done (index 34) to the minimum (80): the middle, 57
    assert suggest_valley(lrs, losses) == lrs[57]
    assert suggest_minimum(lrs, losses) <= lrs[80]
    assert lrs[31] <= suggest_steep(lrs, losses) <= lrs[80]


def test_normalize_and_reshape():
    x = torch.randn(5, 12)
    assert torch.equal(ll.Normalize(2.0, 4.0)(x), (x - 2.0) / 4.0)
    mean, std = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1), torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)
    img = torch.randn(2, 3, 2, 2)
    assert torch.equal(ll.Normalize(mean, std)(img), (img - mean) / std)
    assert ll.Reshape(3, 2, 2)(x).shape == (5, 3, 2, 2)


# ---- documented behaviours that had no test ------------------------------------------------------


def test_default_device_order_cuda_then_mps_then_cpu(monkeypatch):
    from learnloop.utils import default_device

    mps = getattr(torch.backends, "mps", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: True)
        assert default_device() == torch.device("mps")
        monkeypatch.setattr(mps, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")


def test_recorder_train_metrics_are_the_training_batches_accuracy():
    ll.set_seed(0)
    seen = []

    class Spy(ll.Callback):
        order = 60

        def after_loss(self, learn):
            if learn.training:
                seen.append(((learn.pred.argmax(1) == learn.yb).float().sum().item(), len(learn.yb)))

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=12, bs=4), metrics=[ll.accuracy], progress=False, default_cbs=False,
                       cbs=[ll.Recorder(train_metrics=True), Spy()])  # fmt: skip
    learn.fit(1)
    row = learn.recorder.history[0]
    assert row["train_accuracy"] == pytest.approx(sum(c for c, _ in seen) / sum(n for _, n in seen))
    assert "accuracy" in row and "train_loss" in row


@pytest.mark.parametrize("on", ["x", "y", "both"])
def test_batch_transform_on_x_y_or_both(on):
    got = []

    class Spy(ll.Callback):
        def before_batch(self, learn):
            got.append((learn.xb.clone(), learn.yb.clone()))

    x, y = torch.randn(4, 2), torch.randn(4, 2)
    dls = ll.DataLoaders(ll.DataLoader(ll.ArrayDataset(x, y), batch_size=4))
    learn = ll.Learner(nn.Linear(2, 2), dls, loss_func=nn.functional.mse_loss, progress=False,
                       cbs=[ll.BatchTransform(lambda t: t * 10, on=on), Spy()])  # fmt: skip
    learn.fit(1)
    xb, yb = got[0]
    assert torch.equal(xb, x * 10 if on in ("x", "both") else x) and torch.equal(yb, y * 10 if on in ("y", "both") else y)


def test_remove_cbs_detaches_and_clears_the_reference():
    cb = ll.ProgressBar()
    learn = _plain = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False, cbs=[cb])
    assert learn.progress_bar is cb and cb.learn is learn
    learn.remove_cbs([cb])
    assert cb not in learn.cbs and cb.learn is None and not hasattr(_plain, "progress_bar")


def test_one_cycle_with_a_peak_learning_rate_per_param_group():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    groups = lambda params, lr: torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[1].parameters()}], lr=lr)  # noqa: E731
    learn = ll.Learner(model, tiny_dls(n_train=16, bs=2), opt_func=groups, progress=False)
    learn.fit_one_cycle(2, lr_max=[0.01, 0.1], pct_start=0.25)
    lrs = torch.tensor(learn.recorder.hps["lr"])
    assert lrs[:, 0].max().item() == pytest.approx(0.01) and lrs[:, 1].max().item() == pytest.approx(0.1)
    assert torch.allclose(lrs[:, 1], lrs[:, 0] * 10)


def test_lr_finder_stops_when_the_loss_diverges():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=400, bs=4), progress=False)
    learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100)
    res = learn.lr_find_result
    assert len(res.lrs) < 100  # stopped early
    assert max(res.losses) > 4 * min(res.losses)  # because the loss had blown up


def test_cancelling_from_before_fit_and_before_epoch():
    events = []

    class Rec(ll.Callback):
        order = 0

        def before_fit(self, learn):
            events.append("before_fit")

        def after_cancel_fit(self, learn):
            events.append("after_cancel_fit")

        def after_fit(self, learn):
            events.append("after_fit")

        def before_epoch(self, learn):
            events.append(f"before_epoch {learn.epoch}")

        def before_train(self, learn):
            events.append("before_train")

        def after_cancel_epoch(self, learn):
            events.append("after_cancel_epoch")

    class StopAt(ll.Callback):
        order = 10

        def __init__(self, event):
            self.event = event

        def before_fit(self, learn):
            if self.event == "fit":
                raise ll.CancelFitException

        def before_epoch(self, learn):
            if self.event == "epoch" and learn.epoch == 0:
                raise ll.CancelEpochException

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False, cbs=[Rec()])
    learn.fit(2, cbs=[StopAt("fit")])
    assert events == ["before_fit", "after_cancel_fit", "after_fit"] and learn.recorder.losses == []
    events.clear()
    learn.fit(2, cbs=[StopAt("epoch")])
    assert events == ["before_fit", "before_epoch 0", "after_cancel_epoch", "before_epoch 1", "before_train", "after_fit"]
