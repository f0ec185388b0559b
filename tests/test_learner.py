"""Learner behaviour: metrics, recorder, seeding, optimizer, step pieces, inference, bad input."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll
from learnloop.metrics import AvgMetric

from .conftest import tiny_dls


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_metrics_weighted_by_batch_size():
    # 10 validation samples in batches of 4, 4, 2: a plain mean of batch means would be wrong.
    dls = tiny_dls(n_train=8, n_valid=10, bs=2, seed=1)
    dls.valid = ll.DataLoader(dls.valid.dataset, batch_size=4)
    learn = ll.Learner(mlp(), dls, metrics=[ll.accuracy], progress=False)
    out = learn.validate()
    x, y = dls.valid.dataset.tensors
    with torch.no_grad():
        pred = learn.model(x)
    assert out["accuracy"] == pytest.approx(ll.accuracy(pred, y).item(), abs=1e-6)
    assert out["valid_loss"] == pytest.approx(F.cross_entropy(pred, y).item(), abs=1e-6)
    batch_means = [ll.accuracy(pred[i : i + 4], y[i : i + 4]).item() for i in range(0, 10, 4)]
    assert sum(batch_means) / 3 != pytest.approx(out["accuracy"])  # the unweighted mean differs here


def test_metric_kinds_and_names():
    class Seen:  # torchmetrics-style object
        name = "seen"

        def reset(self):
            self.n = 0

        def update(self, pred, target):
            self.n += len(target)

        def compute(self):
            return torch.tensor(float(self.n))

    def top2(pred, target):
        return (pred.topk(2, dim=-1).indices == target[:, None]).any(-1).float().mean()

    learn = ll.Learner(mlp(), tiny_dls(n_valid=10), metrics=["accuracy", top2, Seen()], progress=False)
    out = learn.validate()
    assert set(out) == {"valid_loss", "accuracy", "top2", "seen"} and out["seen"] == 10
    assert out["top2"] >= out["accuracy"]


def test_a_metric_function_may_return_a_plain_number():
    # sklearn-style metrics return Python floats; they are weighted by batch size like tensors.
    dls = tiny_dls(n_train=8, n_valid=10, bs=2, seed=1)
    dls.valid = ll.DataLoader(dls.valid.dataset, batch_size=4)

    def share_of_class_0(pred, target):
        return float((target == 0).float().mean())

    learn = ll.Learner(mlp(), dls, metrics=[share_of_class_0], progress=False)
    learn.fit(1)
    y = dls.valid.dataset.tensors[1]
    assert learn.recorder.history[-1]["share_of_class_0"] == pytest.approx((y == 0).float().mean().item())
    assert learn.validate()["share_of_class_0"] == pytest.approx((y == 0).float().mean().item())


def test_accumulator_reads_the_same_whether_losses_are_kept_as_numbers_or_as_tensors():
    # On the CPU each loss is read as a number as it comes; on an accelerator it stays a tensor
    # until the phase ends. Both must give the same result, and a mid-phase state saved by one
    # (a checkpoint taken on a GPU) must load into the other (resumed on a CPU) and back.
    from learnloop.metrics import Accumulator

    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand((), generator=g, dtype=torch.float64) * 3, torch.randn(n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in (4, 4, 2)]
    host, device = Accumulator(), Accumulator()
    host.start([ll.AvgMetric(ll.accuracy)], torch.device("cpu"))
    device.start([ll.AvgMetric(ll.accuracy)], torch.device("meta"))  # any non-CPU device takes the tensor path
    assert host.on_host and not device.on_host
    for loss, pred, y in batches[:2]:
        host.add(loss, pred, y)
        device.add(loss, pred, y)
    assert isinstance(host.losses[0], float) and isinstance(device.losses[0], torch.Tensor)
    saved_host, saved_device = host.state_dict(), device.state_dict()
    host.load_state_dict(saved_device)
    device.load_state_dict(saved_host)
    # each keeps its own form after the exchange: numbers on the host, tensors on the device
    assert [type(v) for v in host.losses] == [float, float] and all(isinstance(v, torch.Tensor) for v in device.losses)
    for acc in (host, device):
        acc.add(*batches[2])
    (h_losses, h_values), (d_losses, d_values) = host.read(), device.read()
    expected = [float(torch.tensor(loss.item(), dtype=torch.float32)) for loss, _, _ in batches]  # kept at float32
    assert h_losses == d_losses == expected
    sizes = torch.tensor([4.0, 4.0, 2.0])
    assert h_values["loss"] == pytest.approx((torch.tensor(expected) * sizes).sum().item() / 10)
    assert h_values == d_values
    assert host.losses == device.losses == []


def test_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="Unknown metric 'acc'"):
        ll.Learner(mlp(), tiny_dls(), metrics=["acc"])
    with pytest.raises(TypeError, match="Unknown metric"):
        ll.Learner(mlp(), tiny_dls(), metrics=[42])


def test_recorder_contents():
    dls = tiny_dls(n_train=10, n_valid=4, bs=4)  # batches of 4, 4, 2
    learn = ll.Learner(mlp(), dls, lr=0.05, opt_func=torch.optim.SGD, metrics=[ll.accuracy], progress=False)
    learn.fit(2)
    rec = learn.recorder
    assert len(rec.losses) == 6 and all(math.isfinite(v) for v in rec.losses)
    assert [h["epoch"] for h in rec.history] == [0, 1]
    assert set(rec.history[0]) == {"epoch", "train_loss", "valid_loss", "accuracy", "time"}
    # train_loss is the size-weighted mean of that epoch's batch losses
    l = rec.losses[:3]
    assert rec.history[0]["train_loss"] == pytest.approx((4 * l[0] + 4 * l[1] + 2 * l[2]) / 10, rel=1e-6)
    assert rec.hps["lr"] == [[0.05]] * 6 and rec.hps["mom"] == [[0]] * 6 and rec.hps["wd"] == [[0]] * 6


def test_recorder_adam_betas_and_param_groups():
    model = mlp()
    opt_func = lambda params, lr: torch.optim.AdamW(
        [{"params": model[0].parameters(), "lr": lr / 10}, {"params": model[2].parameters()}], lr=lr, betas=(0.8, 0.9)
    )
    learn = ll.Learner(model, tiny_dls(n_train=4, bs=2), opt_func=opt_func, lr=1e-2, progress=False)
    learn.fit(1)
    assert learn.recorder.hps["lr"] == [[1e-3, 1e-2]] * 2
    assert learn.recorder.hps["mom"] == [[0.8, 0.8]] * 2 and learn.recorder.hps["sqr_mom"] == [[0.9, 0.9]] * 2


def test_recorder_with_an_optimizer_that_has_only_a_learning_rate():
    # One hyper-parameter per group: the Recorder's row reader must still give a tuple per group.
    class PlainSGD(torch.optim.Optimizer):
        def __init__(self, params, lr):
            super().__init__(params, {"lr": lr})

        def step(self):
            for g in self.param_groups:
                for p in g["params"]:
                    p.data.add_(p.grad, alpha=-g["lr"])

    learn = ll.Learner(mlp(), tiny_dls(n_train=4, bs=2), opt_func=PlainSGD, lr=0.03, progress=False)
    learn.fit(2)
    assert learn.recorder.hps == {"lr": [[0.03]] * 4}


def test_recorder_plots(tmp_path):
    learn = ll.Learner(mlp(), tiny_dls(), progress=False)
    learn.fit(2)
    fig = learn.recorder.plot_loss(path=tmp_path / "loss.png")
    assert len(fig.axes[0].lines) == 4 and (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"  # raw, smoothed, epoch line, valid
    fig = learn.recorder.plot_sched(path=tmp_path / "sched.png")
    assert [ax.get_title() for ax in fig.axes] == ["lr"] and fig._suptitle.get_text() == "constant: mom = 0, wd = 0"  # nothing scheduled: lr shown
    fig = learn.recorder.plot_sched(keys=["lr", "mom", "wd"])
    assert [ax.get_title() for ax in fig.axes] == ["lr", "mom", "wd"]
    assert (tmp_path / "sched.png").stat().st_size > 0


def train_once(seed):
    ll.set_seed(seed)
    dls = ll.DataLoaders.from_tensors(torch.randn(64, 4), torch.randint(0, 3, (64,)), torch.randn(16, 4), torch.randint(0, 3, (16,)), batch_size=8)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    learn = ll.Learner(model, dls, lr=0.1, progress=False)
    learn.fit(2)
    return [p.detach().clone() for p in model.parameters()], learn.recorder.losses


def test_set_seed_makes_runs_bitwise_equal():
    (w1, l1), (w2, l2), (w3, _) = train_once(3), train_once(3), train_once(4)
    assert all(torch.equal(a, b) for a, b in zip(w1, w2)) and l1 == l2
    assert not all(torch.equal(a, b) for a, b in zip(w1, w3))
    # A seed from numpy (a sweep's grid, say) seeds all three generators like the same int.
    ll.set_seed(np.int64(3))
    drawn = torch.rand(3), np.random.rand(), random.random()
    ll.set_seed(3)
    assert torch.equal(drawn[0], torch.rand(3)) and drawn[1:] == (np.random.rand(), random.random())


def test_matches_hand_written_loop_bitwise():
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    dls = ll.DataLoaders.from_tensors(x, y, x[:10], y[:10], batch_size=8, seed=7)
    order = [idx.clone() for idx in dls.train.batch_sampler.batches()]
    model_a, model_b = mlp(1), mlp(1)
    opt = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    for idx in order:
        loss = F.cross_entropy(model_a(x[idx]), y[idx])
        loss.backward()
        opt.step()
        opt.zero_grad()
    learn = ll.Learner(model_b, dls, lr=0.1, opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), progress=False)
    learn.fit(1)
    assert all(torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters()))


def test_optimizer_persists_across_fits_unless_reset():
    learn = ll.Learner(mlp(), tiny_dls(), opt_func=torch.optim.Adam, lr=1e-3, progress=False)
    learn.fit(1)
    opt = learn.opt
    learn.fit(1)
    assert learn.opt is opt and len(opt.state) > 0
    learn.fit(1, reset_opt=True)
    assert learn.opt is not opt


def test_fit_lr_sets_every_group():
    learn = ll.Learner(mlp(), tiny_dls(), lr=0.1, progress=False)
    learn.fit(1, lr=0.01)
    assert [g["lr"] for g in learn.opt.param_groups] == [0.01]
    assert learn.recorder.hps["lr"][0] == [0.01]


def test_opt_func_instance_is_an_error():
    model = mlp()
    with pytest.raises(TypeError, match="not an optimizer"):
        ll.Learner(model, tiny_dls(), opt_func=torch.optim.SGD(model.parameters(), lr=0.1))


def test_step_pieces_can_be_overridden():
    class MomentumLearner(ll.Learner):
        """The lesson's momentum learner: gradients are kept and decayed instead of zeroed."""

        def zero_grad(self):
            with torch.no_grad():
                for p in self.model.parameters():
                    p.grad *= 0.85

    ref_model, model = mlp(2), mlp(2)
    dls = tiny_dls(n_train=4, bs=4)
    learn = MomentumLearner(model, dls, lr=0.1, default_cbs=False)
    learn.fit(2)
    x, y = dls.train.dataset.tensors
    grads = None
    for _ in range(2):
        loss = F.cross_entropy(ref_model(x), y)
        g = torch.autograd.grad(loss, list(ref_model.parameters()))
        grads = g if grads is None else [0.85 * a + b for a, b in zip(grads, g)]
        with torch.no_grad():
            for p, gi in zip(ref_model.parameters(), grads):
                p -= 0.1 * gi
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), ref_model.parameters()))


def test_callback_can_replace_the_loss():
    class DoubleLoss(ll.Callback):
        def after_loss(self, learn):
            if learn.training:
                learn.loss = learn.loss * 0

    model = mlp()
    w0 = [p.detach().clone() for p in model.parameters()]
    ll.Learner(model, tiny_dls(), lr=0.5, default_cbs=False, cbs=[DoubleLoss()]).fit(1)
    assert all(torch.equal(a, b) for a, b in zip(w0, model.parameters()))


def test_get_preds_and_infer():
    dls = tiny_dls(n_valid=7)
    learn = ll.Learner(mlp(), dls, progress=False)
    preds, targets = learn.get_preds()
    x, y = dls.valid.dataset.tensors
    with torch.no_grad():
        expected = learn.model(x)
    assert torch.allclose(preds, expected) and torch.equal(targets, y)
    assert torch.allclose(learn.infer(x, batch_size=3), expected)
    preds, targets, probs, decoded = learn.get_preds(with_probs=True, with_decoded=True)
    assert torch.allclose(probs, F.softmax(expected, -1)) and torch.equal(decoded, expected.argmax(-1))
    assert len(learn.get_preds(with_decoded=True)) == 3
    name, idx, p = learn.predict(x[2])
    assert idx == name == int(expected[2].argmax()) and torch.allclose(p, F.softmax(expected[2], -1))  # no class names: the index
    learn.dls.vocab = ["cat", "dog", "emu"]
    assert learn.predict(x[2])[0] == learn.classes[idx]
    with pytest.raises(TypeError, match="one item as a tensor"):
        learn.predict([1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("squeeze", [False, True])
def test_a_binary_model_with_one_logit_gets_sigmoid_probabilities(squeeze):
    # One logit per row (BCE-with-logits): a softmax over its single column would be 1 for every
    # row and the argmax always class 0. Outputs of shape (N, 1) and (N,) both mean this.
    class OneLogit(nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            return out.squeeze(-1) if squeeze else out

    torch.manual_seed(0)  # the layer's initial weights: some rows fall on each side
    x = torch.randn(12, 4)
    y = (x[:, 0] > 0).float()
    y = y if squeeze else y[:, None]
    learn = ll.Learner(OneLogit(4, 1), ll.DataLoaders.from_tensors(x, y, x, y, batch_size=4), loss_func=F.binary_cross_entropy_with_logits,
                       metrics=[ll.accuracy], progress=False)  # fmt: skip
    with torch.no_grad():
        logits = learn.model(x)
    # accuracy of one logit per row: the share on the target's side of 0 (what a softmax could not say)
    assert learn.validate()["accuracy"] == pytest.approx(((logits > 0) == (y > 0.5)).float().mean().item())
    preds, _, probs, classes = learn.get_preds(with_probs=True, with_decoded=True)
    assert torch.allclose(preds, logits) and torch.allclose(probs, torch.sigmoid(logits))
    assert torch.equal(classes, (torch.sigmoid(logits) > 0.5).long().reshape(12)) and 0 < classes.sum() < 12
    name, idx, p = learn.predict(x[3])
    p1 = torch.sigmoid(logits[3]).reshape(())
    assert torch.allclose(p, torch.stack([1 - p1, p1])) and idx == name == int(p1 > 0.5)


def test_probabilities_and_decoded_against_torch_at_the_boundary():
    from learnloop.metrics import decoded, probabilities

    scores = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    assert torch.equal(probabilities(scores), scores.softmax(-1)) and decoded(scores).tolist() == [0, 2]
    logits = torch.tensor([[-0.5], [0.0], [1e-6]])  # a logit of exactly 0 is a sigmoid of 0.5: not past it
    assert torch.equal(probabilities(logits), logits.sigmoid()) and decoded(logits).tolist() == [0, 0, 1]
    assert decoded(logits[:, 0]).tolist() == [0, 0, 1] and ll.accuracy(logits, torch.tensor([[0.0], [0.0], [1.0]])) == 1


def test_validate_restores_nothing_half_done():
    learn = ll.Learner(mlp(), tiny_dls(), progress=False)
    learn.model.train()
    learn.validate()
    assert learn.recorder.history == []  # validate() is not an epoch


def test_shape_mismatch_is_a_clear_error_before_any_step():
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model = nn.Linear(4, 1)
    w0 = model.weight.detach().clone()
    dls = ll.DataLoaders.from_tensors(x, y.float(), x, y.float(), batch_size=4)
    with pytest.raises(ValueError, match=r"predictions of shape \(4, 1\) and targets of shape \(4,\)"):
        ll.Learner(model, dls, loss_func=F.mse_loss, progress=False).fit(1)
    assert torch.equal(model.weight, w0)
    dls = ll.DataLoaders.from_tensors(x, y, x, y, batch_size=4)
    with pytest.raises(ValueError, match=r"first loss of this run failed on predictions of shape \(4, 3\)"):
        ll.Learner(nn.Linear(4, 3), dls, loss_func=lambda p, t: F.cross_entropy(p, t.float()[:2]), progress=False).fit(1)

    # The same check guards validate() on a learner that has never been fitted, on every call.
    dls = ll.DataLoaders.from_tensors(x, y.float(), x, y.float(), batch_size=4)
    learn = ll.Learner(nn.Linear(4, 1), dls, loss_func=F.mse_loss, progress=False)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"mse_loss got predictions of shape \(8, 1\) and targets of shape \(8,\)"):
            learn.validate()  # the validation loader's batches are twice the training ones


def test_first_loss_hint_keeps_the_exception_type():
    # An out-of-memory error in the first loss must still read as one, with the shapes as a note.
    def oom(pred, target):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    dls = ll.DataLoaders.from_tensors(torch.randn(8, 4), torch.randint(0, 3, (8,)), batch_size=4)
    with pytest.raises(torch.OutOfMemoryError, match="out of memory") as info:
        ll.Learner(nn.Linear(4, 3), dls, loss_func=oom, progress=False).fit(1)
    assert any("predictions of shape (4, 3)" in note for note in info.value.__notes__)


def test_empty_loader_is_an_error():
    dls = ll.DataLoaders.from_tensors(torch.randn(3, 4), torch.zeros(3, dtype=torch.long), batch_size=4, drop_last=True)
    with pytest.raises(ValueError, match="yields no batches"):
        ll.Learner(mlp(), dls).fit(1)


def test_bad_fit_arguments():
    learn = ll.Learner(mlp(), tiny_dls())
    with pytest.raises(ValueError, match="n_epochs"):
        learn.fit(-1)
    with pytest.raises(ValueError, match="lr must be"):
        learn.fit(1, lr=-3)
    with pytest.raises(TypeError, match="nn.Module"):
        ll.Learner(lambda x: x, tiny_dls())


def test_non_finite_loss_stops_with_position_and_keeps_recorder():
    class Poison(ll.Callback):
        def after_loss(self, learn):
            if learn.training and learn.epoch == 1 and learn.iter == 2:
                learn.loss = learn.loss * float("nan")

    model = mlp()
    learn = ll.Learner(model, tiny_dls(n_train=10, bs=2), cbs=[Poison()], progress=False)
    with pytest.raises(ll.NonFiniteLossError, match="epoch 1, batch 2") as info:
        learn.fit(3)
    assert (info.value.epoch, info.value.batch) == (1, 2)
    assert len(learn.recorder.history) == 1 and len(learn.recorder.losses) == 5 + 3
    assert math.isnan(learn.recorder.losses[-1])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_check_in_windows():
    class Poison(ll.Callback):
        def after_loss(self, learn):
            if learn.training and learn.iter == 3:
                learn.loss = learn.loss + float("inf")

    class SkipSecond(ll.Callback):  # a batch without a loss must not shift the reported position
        def before_batch(self, learn):
            if learn.training and learn.iter == 1:
                raise ll.CancelBatchException

    learn = ll.Learner(mlp(), tiny_dls(n_train=20, bs=2), cbs=[Poison(), SkipSecond()], progress=False)
    learn.non_finite_check.every = 4
    with pytest.raises(ll.NonFiniteLossError, match="epoch 0, batch 3"):
        learn.fit(1)


def test_progress_bar_prints_table(capsys):
    learn = ll.Learner(mlp(), tiny_dls(), metrics=[ll.accuracy])
    learn.fit(2)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [l.split()[0] for l in out[1:]] == ["0", "1"]


def test_progress_false_is_quiet(capsys):
    ll.Learner(mlp(), tiny_dls(), progress=False).fit(1)
    assert capsys.readouterr().out == ""


def test_avg_metric_empty_is_nan():
    assert math.isnan(AvgMetric(ll.accuracy).compute())


def test_device_callback_moves_model_and_batches():
    seen = []

    class Spy(ll.Callback):
        order = 0

        def before_batch(self, learn):
            seen.append(learn.xb.device.type)

    learn = ll.Learner(mlp(), tiny_dls(), device="cpu", cbs=[Spy()], progress=False)
    learn.fit(1)
    assert set(seen) == {"cpu"} and learn.device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where moving to CUDA fails")
def test_failed_device_move_leaves_model_where_it_was():
    from learnloop.callbacks.device import move_model

    model = mlp()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="left on cpu"):
        move_model(model, opt, torch.device("cuda"))
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {v.device.type for s in opt.state.values() for v in s.values()} == {"cpu"}


def test_dict_batches_with_split_batch_override():
    """Hugging Face style datasets return dicts; one small override tells the Learner which is which."""

    class Rows:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"pixels": self.x[i], "label": int(self.y[i])}

    class DictLearner(ll.Learner):
        def split_batch(self, batch):
            return batch["pixels"], batch["label"]

    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    dls = ll.DataLoaders.from_datasets(Rows(x, y), Rows(x, y), batch_size=8)
    learn = DictLearner(mlp(), dls, metrics=[ll.accuracy], progress=False)
    learn.fit(1)
    assert len(learn.recorder.losses) == 3
    with pytest.raises(TypeError, match="override split_batch"):
        ll.Learner(mlp(), dls, progress=False).fit(1)
