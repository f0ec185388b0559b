"""TensorBoardLogger, read back with tensorboard's own event reader."""

from __future__ import annotations

import os

import pytest
from torch import nn

import learnloop as ll

from .conftest import tiny_dls

EventAccumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator").EventAccumulator


def _read(run_dir):
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _learner(cbs, seed=0):
    ll.set_seed(seed)
    return ll.Learner(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), tiny_dls(n_train=8, bs=2), metrics=[ll.accuracy],
                      progress=False, cbs=cbs)  # fmt: skip


def test_scalars_land_at_the_right_steps(tmp_path):
    losses = []

    class Spy(ll.Callback):
        order = 60

        def after_batch(self, learn):
            if learn.training:
                losses.append((learn.train_batches_done, learn.loss.item()))

    tb = ll.TensorBoardLogger(tmp_path / "tb", every_n_steps=3, hist_every_n_steps=4)
    learn = _learner([tb, Spy(), ll.ActivationStats(every=4)])
    learn.fit_one_cycle(3, lr_max=0.1)
    assert tb.writer is None and tb.run_dir == tmp_path / "tb" / "run_000"
    acc = _read(tb.run_dir)
    got = _scalars(acc, "train/loss")
    assert [s for s, _ in got] == [3, 6, 9, 12]  # 4 steps an epoch, every 3rd
    assert all(v == pytest.approx(dict(losses)[s], rel=1e-6) for s, v in got)
    lrs = dict(_scalars(acc, "hp/lr/group0"))
    assert lrs[6] == pytest.approx(learn.recorder.hps["lr"][5][0], rel=1e-6)  # the lr that step 6 used
    assert "hp/mom/group0" in acc.Tags()["scalars"]
    valid = _scalars(acc, "epoch/valid_loss")
    assert [s for s, _ in valid] == [4, 8, 12]
    assert [v for _, v in valid] == pytest.approx([h["valid_loss"] for h in learn.recorder.history], rel=1e-6)
    assert [v for _, v in _scalars(acc, "epoch/accuracy")] == pytest.approx([h["accuracy"] for h in learn.recorder.history])
    hists = acc.Tags()["histograms"]
    assert "weights/0.weight" in hists and any(t.startswith("activations/") for t in hists)
    assert [e.step for e in acc.Histograms("weights/0.weight")] == [4, 8, 12]
    learn.fit(1)  # each fit gets its own run folder
    assert tb.run_dir.name == "run_001"


def test_resumed_run_continues_its_folder_and_global_step(tmp_path):
    class Stop(ll.Callback):
        order = 200

        def after_batch(self, learn):
            if learn.train_batches_done == 10:  # two steps after the epoch-2 checkpoint (steps 9, 10 logged)
                raise KeyboardInterrupt

    tb = ll.TensorBoardLogger(tmp_path / "tb", every_n_steps=1)
    learn = _learner([tb, ll.Checkpoint(dir=tmp_path / "ck")])
    with pytest.raises(KeyboardInterrupt):
        learn.fit(3, cbs=[Stop()])
    first = tb.run_dir
    tb2 = ll.TensorBoardLogger(tmp_path / "tb", every_n_steps=1)
    _learner([tb2, ll.Checkpoint(dir=tmp_path / "ck")]).fit(3, resume=tmp_path / "ck")
    assert tb2.run_dir == first and sorted(os.listdir(tmp_path / "tb")) == ["run_000"]
    steps = [s for s, _ in _scalars(_read(first), "train/loss")]
    assert steps == list(range(1, 13))  # steps 9 and 10 of the interrupted run purged, written once again
    assert [s for s, _ in _scalars(_read(first), "epoch/valid_loss")] == [4, 8, 12]


def test_bad_log_folder_and_arguments_fail_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    learn = _learner([ll.TensorBoardLogger(blocker / "tb")])
    with pytest.raises(OSError, match="TensorBoardLogger cannot create"):
        learn.fit(1)
    assert learn.recorder.losses == []  # nothing trained
    with pytest.raises(ValueError, match="every_n_steps must be a positive int"):
        ll.TensorBoardLogger(every_n_steps=0)


def test_rows_written_after_the_last_checkpoint_are_not_repeated_on_resume(tmp_path):
    import csv
    import json

    class Stop(ll.Callback):
        order = 98  # after the loggers wrote epoch 1, before the checkpoint (100) saved it

        def after_epoch(self, learn):
            if learn.epoch == 1:
                raise KeyboardInterrupt

    def loggers():
        return [ll.CSVLogger(tmp_path / "h.csv"), ll.JSONLinesLogger(tmp_path / "h.jsonl", every_n_steps=2), ll.Checkpoint(dir=tmp_path / "ck")]

    with pytest.raises(KeyboardInterrupt):
        _learner(loggers()).fit(3, cbs=[Stop()])
    assert [r["epoch"] for r in csv.DictReader(open(tmp_path / "h.csv"))] == ["0", "1"]
    resumed = _learner(loggers())
    resumed.fit(3, resume=tmp_path / "ck")  # resumes after epoch 0: epoch 1 runs again
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert float(rows[1]["valid_loss"]) == pytest.approx(resumed.recorder.history[1]["valid_loss"])
    records = [json.loads(line) for line in open(tmp_path / "h.jsonl")]
    assert [r["step"] for r in records if r["type"] == "step"] == [2, 4, 6, 8, 10, 12]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [0, 1, 2]
