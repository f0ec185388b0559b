"""Checkpoints: exact resume in a fresh process (also after kill -9), atomic saves, the monitor
callbacks, and every kind of bad file refused by name."""

from __future__ import annotations

import errno
import os
import pickle
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop import serialize
from learnloop.checkpoint import latest_checkpoint, learner_state, restore_state, rng_state, set_rng_state
from learnloop.serialize import CheckpointError, read_state

from . import resume_worker
from .conftest import tiny_dls

ROOT = Path(__file__).resolve().parents[1]


def worker(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.resume_worker", *args], cwd=ROOT, env=env, text=True, **kw)


def run_worker(*args: str) -> None:
    p = worker(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err[-3000:]


def strip_time(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def assert_same_run(reference: ll.Learner, state_path: Path) -> None:
    """The resumed run's end state (saved by the worker) equals the uninterrupted run, bitwise."""
    state = read_state(state_path, "checkpoint")
    ref_model = reference.model.state_dict()
    assert state["model"].keys() == ref_model.keys()
    for k, v in ref_model.items():
        assert torch.equal(state["model"][k], v), k
    ref_opt, opt = reference.opt.state_dict(), state["opt"]["state"]
    assert opt["param_groups"] == ref_opt["param_groups"]
    for i, s in ref_opt["state"].items():
        for k, v in s.items():
            got = opt["state"][i][k]
            assert torch.equal(got, v) if torch.is_tensor(v) else got == v, (i, k)
    rec = state["callbacks"]["recorder"]["state"]
    assert strip_time(rec["history"]) == strip_time(reference.recorder.history)
    assert rec["losses"] == reference.recorder.losses


@pytest.mark.parametrize("config, crash_at", [("mlp", 15), ("cnn", 14), ("accum", 6), ("workers", 13)])
def test_resume_in_a_fresh_process_is_bitwise_the_uninterrupted_run(tmp_path, config, crash_at):
    # 150 samples in batches of 16: 10 steps an epoch, so every crash point is mid-epoch, and the
    # accumulation run's last checkpoint (step 4) falls inside a window of 3.
    folder = tmp_path / "ck"
    p = worker(config, "crash", str(folder), str(crash_at), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=240)
    assert p.returncode == 3, err[-3000:]
    last = crash_at // resume_worker.EVERY * resume_worker.EVERY
    assert (folder / "latest").read_text() == f"ckpt-e{last // 10:04d}-s{last:08d}.safetensors"
    run_worker(config, "resume", str(folder), str(tmp_path / "end.safetensors"))
    assert_same_run(resume_worker.run_full(config), tmp_path / "end.safetensors")


def _kill_at(p: subprocess.Popen, line: str) -> None:
    for got in p.stdout:
        if got.strip() == line:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            return
    raise AssertionError(f"the worker ended before printing {line!r}")


def test_kill_9_at_a_random_step_then_resume_is_exact(tmp_path):
    folder = tmp_path / "ck"
    step = random.Random(12).randint(resume_worker.EVERY + 1, 27)  # after the first checkpoint
    p = worker("mlp", "run", str(folder), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _kill_at(p, f"step {step}")
    assert p.returncode == -signal.SIGKILL
    run_worker("mlp", "resume", str(folder), str(tmp_path / "end.safetensors"))
    assert_same_run(resume_worker.run_full("mlp"), tmp_path / "end.safetensors")


def test_kill_9_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    folder = tmp_path / "ck"
    p = worker("mlp", "slow", str(folder), "8", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _kill_at(p, "writing")  # killed while writing the step-8 checkpoint
    assert (folder / "latest").read_text() == "ckpt-e0000-s00000004.safetensors"
    assert any(f.name.startswith(".ckpt-e0000-s00000008") for f in folder.iterdir())  # the half-written temporary
    assert not (folder / "ckpt-e0000-s00000008.safetensors").exists()
    learn = resume_worker.make("mlp", [ll.Checkpoint(dir=tmp_path / "other")])
    learn.load(folder)
    assert learn.train_batches_done == 4
    run_worker("mlp", "resume", str(folder), str(tmp_path / "end.safetensors"))
    assert_same_run(resume_worker.run_full("mlp"), tmp_path / "end.safetensors")
    assert not any(f.name.startswith(".") for f in folder.iterdir())  # the next run cleared the leftover


def test_save_and_load_round_trip_in_process(tmp_path):
    a = resume_worker.make("mlp")
    a.fit(1)
    a.save(tmp_path / "a.safetensors")
    b = resume_worker.make("mlp")
    b.load(tmp_path / "a.safetensors")
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    assert b.recorder.history == a.recorder.history and b.epochs_done == 1
    assert torch.equal(torch.get_rng_state(), read_state(tmp_path / "a.safetensors", "checkpoint")["rng"]["torch"])


def test_checkpoint_keeps_the_last_n_and_points_at_the_newest(tmp_path):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), progress=False, cbs=[ll.Checkpoint(every_n_steps=3, dir=tmp_path, keep_last=2)])
    learn.fit(2)  # steps 3 and 6 and the epoch ends (4, 8): files at steps 3, 4, 6, 8
    names = sorted(f.name for f in tmp_path.glob("ckpt-*"))
    assert names == ["ckpt-e0001-s00000006.safetensors", "ckpt-e0002-s00000008.safetensors"]
    assert (tmp_path / "latest").read_text() == names[-1]


class _Score:
    """A metric whose value per epoch is scripted (one validation batch per epoch)."""

    def __init__(self, values):
        self.values, self.name = list(values), "score"

    def reset(self):
        pass

    def update(self, pred, target):
        pass

    def compute(self):
        return torch.tensor(self.values.pop(0))


class _WeightsPerEpoch(ll.Callback):
    order = 99  # after SaveBest (95)

    def before_fit(self, learn):
        self.weights = []

    def after_epoch(self, learn):
        self.weights.append(learn.model.weight.detach().clone())


def test_early_stopping_and_save_best(tmp_path):
    spy = _WeightsPerEpoch()
    stop, best = ll.EarlyStopping(monitor="score", patience=2, mode="max"), ll.SaveBest(monitor="score", mode="max", path=tmp_path / "best.safetensors")
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, n_valid=4, bs=2), metrics=[_Score([0.5, 0.7, 0.6, 0.69, 0.9, 1.0])],
                       progress=False, cbs=[stop, best, spy])  # fmt: skip
    learn.fit(6)
    assert [row["score"] for row in learn.recorder.history] == pytest.approx([0.5, 0.7, 0.6, 0.69])  # two epochs without a gain
    assert stop.stopped_epoch == 3 and best.best_epoch == 1
    assert torch.equal(learn.model.weight, spy.weights[1])  # restored at the end
    restored = ll.load_model(nn.Linear(4, 3), tmp_path / "best.safetensors")
    assert torch.equal(restored.weight, spy.weights[1])


def test_unknown_monitor_is_an_error_before_training_naming_the_columns():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), metrics=[ll.accuracy], progress=False, cbs=[ll.EarlyStopping(monitor="val_loss")])
    w0 = learn.model.weight.detach().clone()
    with pytest.raises(ValueError, match=r"'val_loss' is not in the Recorder's history; available: \['train_loss', 'valid_loss', 'accuracy'\]"):
        learn.fit(1)
    assert torch.equal(learn.model.weight, w0)


# ---- bad files and places -------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    learn = resume_worker.make("mlp")
    learn.fit(1)
    return learn.save(tmp_path / "good.safetensors")


def test_truncated_random_and_foreign_files_are_refused(tmp_path, saved):
    data = saved.read_bytes()
    (tmp_path / "trunc").write_bytes(data[: len(data) // 2])
    (tmp_path / "random").write_bytes(random.Random(0).randbytes(4096))
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    for name, words in [("trunc", "truncated or corrupt"), ("random", "not a learnloop checkpoint"), ("torch.pt", "torch.save")]:
        with pytest.raises(CheckpointError, match=words):
            resume_worker.make("mlp").load(tmp_path / name)
    ll.save_model(nn.Linear(2, 2), tmp_path / "weights.safetensors")
    with pytest.raises(CheckpointError, match="is a learnloop 'model' file, not a checkpoint"):
        resume_worker.make("mlp").load(tmp_path / "weights.safetensors")
    with pytest.raises(FileNotFoundError, match="No checkpoint at .*missing"):
        resume_worker.make("mlp").fit(3, resume=tmp_path / "missing")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="pickle"):
        resume_worker.make("mlp").load(tmp_path / "evil.pkl")
    with pytest.raises(CheckpointError):
        ll.load_model(nn.Linear(2, 2), tmp_path / "evil.pkl")
    assert not marker.exists()
    pickle.loads((tmp_path / "evil.pkl").read_bytes())  # what unpickling would have done:
    assert marker.exists()


def test_newer_format_version_is_refused(tmp_path, monkeypatch, saved):
    monkeypatch.setattr(serialize, "FORMAT_VERSION", 99)
    resume_worker.make("mlp").save(tmp_path / "future.safetensors")
    monkeypatch.setattr(serialize, "FORMAT_VERSION", 1)
    with pytest.raises(CheckpointError, match="format version 99, newer than this learnloop understands"):
        resume_worker.make("mlp").load(tmp_path / "future.safetensors")


def test_another_architecture_names_missing_unexpected_and_misshapen_keys(saved):
    other = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    learn = ll.Learner(other, resume_worker._data("mlp"), progress=False, metrics=[ll.accuracy])
    with pytest.raises(CheckpointError) as info:
        learn.load(saved)
    msg = str(info.value)
    assert "missing: ['2.bias', '2.weight']" in msg and "unexpected: ['3.bias', '3.weight']" in msg
    assert "0.weight (16, 8) (model has (32, 8))" in msg


def test_another_optimizer_class_is_refused(saved):
    learn = resume_worker.make("mlp")
    learn.opt_func = torch.optim.AdamW
    with pytest.raises(CheckpointError, match="state of a SGD optimizer, but this learner uses AdamW"):
        learn.load(saved)


def test_save_model_load_model_strict(tmp_path):
    a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    path = ll.save_model(a, tmp_path / "m.safetensors")
    b = ll.load_model(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), path)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(CheckpointError, match=r"unexpected: \['1.bias', '1.num_batches_tracked', '1.running_mean'"):
        ll.load_model(nn.Sequential(nn.Linear(3, 4)), path)
    with pytest.raises(CheckpointError, match=r"wrong shape: \['0.bias \(4,\) \(model has \(5,\)\)'"):
        ll.load_model(nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5)), path)


def test_unwritable_places_fail_clearly_and_leave_nothing(tmp_path, monkeypatch):
    learn = resume_worker.make("mlp")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        learn.save(tmp_path / "no" / "such" / "ckpt.safetensors")

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_open = open

    def open_then_fill(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        if "w" in mode:
            f.write = full_disk
        return f

    monkeypatch.setattr(serialize, "open", open_then_fill, raising=False)
    with pytest.raises(OSError, match="The disk is full: could not write .*ckpt.safetensors"):
        learn.save(tmp_path / "ckpt.safetensors")
    assert list(tmp_path.iterdir()) == []

    def read_only(path, mode="r", *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(serialize, "open", read_only, raising=False)
    with pytest.raises(PermissionError, match="is not writable"):
        learn.save(tmp_path / "ckpt.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_resume_with_another_number_of_epochs_is_refused(tmp_path):
    learn = resume_worker.make("mlp", [ll.Checkpoint(dir=tmp_path)])
    learn.fit(1)
    with pytest.raises(CheckpointError, match="fit of 1 epochs; resume with the same number"):
        resume_worker.make("mlp", [ll.Checkpoint(dir=tmp_path)]).fit(2, resume=True)


# ---- inference export -----------------------------------------------------------------------------


def test_export_rebuilds_a_learnloop_model_and_predicts_from_raw_pixels(fashion_dir, tmp_path):
    from learnloop.datasets import fashion_mnist, mnist_dataloaders
    from learnloop.layers import cnn

    data = fashion_mnist(fashion_dir)
    small = data._replace(x_train=data.x_train[:512], y_train=data.y_train[:512], x_test=data.x_test[:256], y_test=data.y_test[:256])
    ll.set_seed(0)
    dls = mnist_dataloaders(64, flatten=False, data=small, seed=0)
    learn = ll.Learner(cnn((4, 8), norm="batch", leak=0.1, sub=0.4), dls, lr=0.1, progress=False)
    learn.fit(1)
    learn.export(tmp_path / "export.safetensors")
    expected, _ = learn.get_preds()

    predictor = ll.load_learner(tmp_path / "export.safetensors")  # no model given: rebuilt from the file
    outs, targets = predictor.get_preds([(small.x_test[:100], small.y_test[:100]), (small.x_test[100:],)])
    assert torch.allclose(outs, expected, atol=1e-5) and torch.equal(targets, small.y_test[:100])
    labels, probs = predictor.predict(small.x_test[:3])
    assert labels == [data.classes[i] for i in expected[:3].argmax(1).tolist()]
    assert torch.allclose(probs, expected[:3].softmax(1), atol=1e-5)


def test_export_of_a_users_own_model_needs_it_on_loading(tmp_path):
    learn = ll.Learner(nn.Sequential(nn.Linear(4, 3)), tiny_dls(), progress=False)
    learn.export(tmp_path / "e.safetensors")
    with pytest.raises(ValueError, match="pass model=YourModel"):
        ll.load_learner(tmp_path / "e.safetensors")
    p = ll.load_learner(tmp_path / "e.safetensors", model=nn.Sequential(nn.Linear(4, 3)))
    x = torch.randn(5, 4)
    assert torch.equal(p.predict(x)[1], learn.model(x).softmax(1).detach())
    with pytest.raises(CheckpointError, match="is a learnloop 'export' file, not a checkpoint"):
        ll.Learner(nn.Sequential(nn.Linear(4, 3)), tiny_dls()).load(tmp_path / "e.safetensors")


class _Crash(Exception):
    pass


class _CrashAfter(ll.Callback):
    order = 200  # after the Checkpoint has saved this step

    def __init__(self, step: int):
        self.step = step

    def after_batch(self, learn):
        if learn.training and learn.train_batches_done == self.step:
            raise _Crash()


@pytest.mark.parametrize("config, crash_at", [("mlp", 15), ("mlp", 20), ("accum", 6)])
def test_resume_in_process_mid_epoch_and_at_an_epoch_end(tmp_path, config, crash_at):
    # The same contract as the fresh-process test above, in this process, so that mutation
    # testing (which only follows code run in the test's own process) sees what resuming needs.
    # 10 batches an epoch, a checkpoint every 4 steps: crashing at 15 resumes from step 12, at 20
    # from the epoch's last batch (its validation still to come).
    ckpt = ll.Checkpoint(every_n_steps=resume_worker.EVERY, every_n_epochs=None, dir=tmp_path, keep_last=2)
    learn = resume_worker.make(config, [ckpt])
    with pytest.raises(_Crash):
        resume_worker.fit(learn, config, cbs=[_CrashAfter(crash_at)])
    state = read_state(latest_checkpoint(tmp_path), "checkpoint")
    saved_at = crash_at // resume_worker.EVERY * resume_worker.EVERY
    # A save after a batch is inside the training pass, even after its last batch (the pass is
    # still open): the loader records how many batches of the epoch were handed out.
    assert state["loop"]["train_batches_done"] == saved_at and state["loop"]["mid_epoch"] is True
    assert state["loop"]["epoch"] == (saved_at - 1) // 10 and state["loaders"]["train"]["position"] == saved_at - 10 * ((saved_at - 1) // 10)
    assert state["versions"] == {"learnloop": ll.__version__, "torch": torch.__version__}
    assert state["callbacks"]["recorder"]["class"] == "Recorder"
    resumed = resume_worker.make(config, [ll.Checkpoint(every_n_steps=resume_worker.EVERY, every_n_epochs=None, dir=tmp_path / "again")])
    resume_worker.fit(resumed, config, resume=tmp_path)
    resumed.save(tmp_path / "end.safetensors")
    assert_same_run(resume_worker.run_full(config), tmp_path / "end.safetensors")


def test_checkpoint_keeps_the_gradients_that_are_there(tmp_path):
    learn = ll.Learner(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), tiny_dls(n_train=8, bs=4), progress=False)
    learn.model[0].weight.grad = torch.full((3, 4), 0.5)  # gradients held over (accumulating), the rest None
    learn.save(tmp_path / "g.safetensors")
    grads = read_state(tmp_path / "g.safetensors", "checkpoint")["grads"]
    assert list(grads) == ["0.weight"] and torch.equal(grads["0.weight"], torch.full((3, 4), 0.5))


def test_saving_without_validation_data_and_refused_during_validation(tmp_path):
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(x, y, batch_size=4), progress=False)
    learn.fit(1)
    learn.save(tmp_path / "no_valid.safetensors")  # no validation loader: nothing to be in the middle of
    assert read_state(tmp_path / "no_valid.safetensors", "checkpoint")["loaders"]["valid"] is None

    class SaveMidValidation(ll.Callback):
        def after_batch(self, learn):
            if not learn.training:
                learn.save(tmp_path / "mid_valid.safetensors")

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=4, n_valid=4, bs=2), progress=False, cbs=[SaveMidValidation()])
    with pytest.raises(RuntimeError, match="middle of validation"):
        learn.fit(1)
    assert not (tmp_path / "mid_valid.safetensors").exists()


def test_saving_after_the_training_pass_before_the_epoch_ends_is_refused(tmp_path):
    # The training loader's pass is over but the epoch is not: no state says "this epoch's training
    # is done", and a run resumed from such a file trained the epoch a second time (found 2026-12-06).
    for event in ("after_train", "before_validate", "after_validate"):
        saver = type("Saver", (ll.Callback,), {event: lambda self, learn: learn.save(tmp_path / "x.safetensors") if learn.epoch == 1 else None})
        learn = resume_worker.make("mlp", [saver()])
        with pytest.raises(RuntimeError, match="^Cannot checkpoint between an epoch's training pass and the end of the epoch"):
            learn.fit(2)
        assert not (tmp_path / "x.safetensors").exists()
    # where it is allowed: before the epoch's training, after its last batch, in after_epoch, after the fit
    steps = []
    allowed = {e: (lambda self, learn, e=e: steps.append((e, learn.save(tmp_path / f"{e}.safetensors").exists())))
               for e in ("before_epoch", "after_epoch", "after_fit")}  # fmt: skip
    learn = resume_worker.make("mlp", [type("Saver", (ll.Callback,), allowed)()])
    learn.fit(2)
    assert steps == [("before_epoch", True), ("after_epoch", True), ("before_epoch", True), ("after_epoch", True), ("after_fit", True)]


class StepCounter(ll.Callback):
    """A callback with state of its own (the number of training batches it saw)."""

    run_valid = False

    def __init__(self):
        self.n = 0

    def after_batch(self, learn):
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def test_different_callbacks_are_named_a_warning_on_load_an_error_on_resume(tmp_path):
    with_counter = resume_worker.make("mlp", [StepCounter()])
    with_counter.fit(1)
    path = with_counter.save(tmp_path / "counter.safetensors")
    where = re.escape(str(path))
    stray = r"saved but not attached: \['step_counter \(StepCounter\)'\]"
    with pytest.warns(UserWarning, match=f"^{where} and this learner have different callbacks: {stray}\\. Attach the callbacks") as record:
        resume_worker.make("mlp").load(path)
    if "mutants" not in Path(ll.__file__).parts:  # (mutmut's trampolines add stack frames)
        assert record[0].filename == __file__  # the warning points at the user's load() call
    fresh = StepCounter()
    resume_worker.make("mlp", [fresh]).load(path)  # the same callbacks: no warning, the state comes back
    assert fresh.n == with_counter.step_counter.n == 10
    plain = resume_worker.make("mlp")
    plain.fit(1)
    plain_path = plain.save(tmp_path / "plain.safetensors")
    unsaved = r"attached but not saved: \['step_counter \(StepCounter\)'\]"
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(plain_path))} and this learner have different callbacks: {unsaved}\\. "):
        resume_worker.make("mlp", [StepCounter()]).fit(1, resume=plain_path)
    with pytest.raises(CheckpointError, match=f"^{where} and this learner have different callbacks: {stray}\\. "):
        resume_worker.make("mlp").fit(1, resume=path)
    with pytest.raises(CheckpointError, match=f"^{where} and this learner have different callbacks: {stray}; attached but not saved: \\['other \\(Other\\)'\\]\\. "):
        resume_worker.make("mlp", [type("Other", (StepCounter,), {})()]).fit(1, resume=path)


def test_model_errors_name_the_file(tmp_path):
    path = ll.save_model(nn.Linear(3, 4), tmp_path / "m.safetensors")
    tail = ". Build the same architecture it was saved from."
    cases = [
        (nn.Linear(3, 5), "wrong shape: ['bias (4,) (model has (5,))', 'weight (4, 3) (model has (5, 3))']"),
        (nn.Sequential(nn.Linear(3, 4)), "missing: ['0.bias', '0.weight']; unexpected: ['bias', 'weight']"),
        (nn.Linear(3, 4, bias=False), "unexpected: ['bias']"),
    ]
    for model, parts in cases:  # only the kinds of mismatch there are, joined by '; '
        with pytest.raises(CheckpointError) as err:
            ll.load_model(model, path)
        assert str(err.value) == f"{path} does not fit this model ({parts}){tail}"


def test_cuda_rng_is_saved_and_restored_when_cuda_is_in_use(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.tensor([7], dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append(states))
    for available, initialized in ((True, True), (True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
        state = rng_state()
        assert ("cuda" in state) == (available and initialized)
        calls.clear()
        set_rng_state(state)
        assert len(calls) == (available and initialized)
        assert all(torch.equal(c[0], torch.tensor([7], dtype=torch.uint8)) for c in calls)
    # a checkpoint from a GPU machine loads on a machine without one: its CUDA RNG is skipped
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    set_rng_state({**rng_state(), "cuda": [torch.tensor([7], dtype=torch.uint8)]})
    assert calls == []


class _MaxClass:
    """A metric object without state_dict (the largest predicted class seen): its partial sums cannot be saved."""

    name = "max_class"

    def reset(self):
        self.m = 0

    def update(self, pred, target):
        self.m = max(self.m, int(pred.argmax(-1).max()))

    def compute(self):
        return float(self.m)


def test_training_metrics_partial_sums_resume_exactly(tmp_path):
    def make(cbs):
        ll.set_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        return ll.Learner(model, resume_worker._data("mlp"), lr=0.05, metrics=[ll.accuracy, _MaxClass()], progress=False,
                          default_cbs=False, cbs=[ll.Recorder(train_metrics=True), *cbs])  # fmt: skip

    full = make([])
    full.fit(2)
    learn = make([ll.Checkpoint(every_n_steps=4, every_n_epochs=None, dir=tmp_path)])
    with pytest.raises(_Crash):
        learn.fit(2, cbs=[_CrashAfter(15)])  # the checkpoint at step 12 holds 2 batches of epoch 1's sums
    pending = read_state(latest_checkpoint(tmp_path), "checkpoint")["callbacks"]["recorder"]["state"]["pending"]
    assert set(pending["metrics"][0]) == {"total", "count"} and pending["metrics"][1] is None and pending["sizes"] == [16, 16]
    resumed = make([ll.Checkpoint(every_n_steps=4, every_n_epochs=None, dir=tmp_path / "again")])
    resumed.fit(2, resume=tmp_path)
    assert [h["train_accuracy"] for h in resumed.recorder.history] == [h["train_accuracy"] for h in full.recorder.history]
    assert [h["train_loss"] for h in resumed.recorder.history] == [h["train_loss"] for h in full.recorder.history]


def test_loaders_that_cannot_record_their_position_are_named(tmp_path):
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    torch_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    ours = ll.DataLoaders.from_tensors(x, y, x, y, batch_size=4)
    for train, valid, which in ((torch_dl, ours.valid, "training"), (ours.train, torch_dl, "validation")):
        learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders(train, valid), progress=False)
        with pytest.raises(TypeError, match=f"^The {which} loader \\(DataLoader\\) cannot record its position"):
            learn.save(tmp_path / "x.safetensors")
    learn = ll.Learner(nn.Linear(4, 3), ours, progress=False)
    open_pass = iter(ours.valid)
    next(open_pass)  # a validation pass left open
    with pytest.raises(RuntimeError, match="^Cannot checkpoint in the middle of validation"):
        learn.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_restore_state_puts_back_counters_loaders_gradients_and_an_optimizer(tmp_path):
    a = resume_worker.make("mlp")
    a.fit(2)
    a.model[0].weight.grad = torch.full_like(a.model[0].weight, 0.5)
    state = learner_state(a)
    b = resume_worker.make("mlp")
    b.model.double()  # a float64 model takes the float32 checkpoint: weights and gradients are cast to it
    assert b.opt is None
    restore_state(b, state)  # the public function makes the optimizer it needs
    assert b.opt is not None and b.opt.state_dict()["param_groups"] == a.opt.state_dict()["param_groups"]
    assert b.model[0].weight.grad.dtype == torch.float64 and torch.all(b.model[0].weight.grad == 0.5)
    assert b.model[3].weight.grad is None
    assert (b.epoch, b.epochs_done, b.n_epochs, b.train_batches_done, b.total_train_batches) == (1, 2, 2, 20, 20)
    assert b.pct_train == 1.0
    assert b.dls.train.state_dict() == a.dls.train.state_dict() and b.dls.valid.state_dict() == a.dls.valid.state_dict()
    assert b.dls.valid.state_dict() != resume_worker.make("mlp").dls.valid.state_dict()  # two passes on: not a fresh loader's
    # a checkpoint without a validation loader leaves this learner's alone
    # (and a fit of one batch is done when that batch is)
    no_valid = dict(state, loaders={**state["loaders"], "valid": None}, loop={**state["loop"], "train_batches_done": 1, "total_train_batches": 1})
    c = resume_worker.make("mlp")
    fresh_valid = c.dls.valid.state_dict()
    restore_state(c, no_valid)
    assert c.dls.valid.state_dict() == fresh_valid and c.pct_train == 1.0
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path))} does not fit this model"):
        restore_state(ll.Learner(nn.Linear(8, 3), resume_worker._data("mlp"), progress=False), state, str(tmp_path))


class _PlainLoader:
    """A loader of the user's own that can record its position but has no `mid_pass` flag."""

    def __init__(self, dl):
        self.dl = dl

    def __iter__(self):
        return iter(self.dl)

    def __len__(self):
        return len(self.dl)

    def state_dict(self):
        return self.dl.state_dict()

    def load_state_dict(self, state):
        self.dl.load_state_dict(state)


def test_a_loader_without_mid_pass_is_taken_as_between_passes(tmp_path):
    dls = resume_worker._data("mlp")
    learn = ll.Learner(nn.Linear(8, 3), ll.DataLoaders(_PlainLoader(dls.train), _PlainLoader(dls.valid)), progress=False)
    learn.fit(1)
    assert learner_state(learn)["loop"]["mid_epoch"] is False
    saver = type("Saver", (ll.Callback,), {"after_train": lambda self, learn: learn.save(tmp_path / "x.safetensors")})
    with pytest.raises(RuntimeError, match="^Cannot checkpoint between an epoch's training pass"):
        learn.fit(1, cbs=[saver()])


def test_restore_state_defaults_name_the_checkpoint_and_are_strict():
    state = learner_state(resume_worker.make("mlp", [StepCounter()]))
    with pytest.raises(CheckpointError, match="^the checkpoint does not fit this model"):
        restore_state(ll.Learner(nn.Linear(8, 3), resume_worker._data("mlp"), progress=False), state)
    with pytest.raises(CheckpointError, match="^the checkpoint and this learner have different callbacks"):
        restore_state(resume_worker.make("mlp"), state)
