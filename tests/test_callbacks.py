"""Callback ordering, names on the learner, fit-only callbacks and registration errors."""

from __future__ import annotations

import pytest
from torch import nn

import learnloop as ll
from learnloop.callbacks.core import sort_callbacks

from .conftest import tiny_dls


def make(name, order=0, before=(), after=()):
    return type(name, (ll.Callback,), {"order": order, "run_before": before, "run_after": after})()


def names(cbs):
    return [type(c).__name__ for c in cbs]


def test_sort_by_order_then_insertion():
    cbs = [make("A", 5), make("B", 0), make("C", 5), make("D", -1)]
    assert names(sort_callbacks(cbs)) == ["D", "B", "A", "C"]


def test_run_before_and_after_override_order():
    a, b, c = make("A", 0, before=("C",)), make("B", 0), make("C", -10, after=("B",))
    assert names(sort_callbacks([a, b, c])) == ["A", "B", "C"]


def test_run_after_accepts_classes():
    a = make("A", 0)
    b = make("B", -5, after=(type(a),))
    assert names(sort_callbacks([a, b])) == ["A", "B"]


def test_cycle_is_a_clear_error():
    a, b = make("A", before=("B",)), make("B", before=("A",))
    with pytest.raises(ValueError, match="cycle.*A.*B"):
        sort_callbacks([a, b])


def test_name_access_and_snake_case():
    class MyFancyCallback(ll.Callback):
        pass

    cb = MyFancyCallback()
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), cbs=[cb])
    assert cb.name == "my_fancy"
    assert learn.my_fancy is cb and cb.learn is learn
    assert learn.recorder is learn.cbs[[type(c) for c in learn.cbs].index(ll.Recorder)]
    assert isinstance(learn.progress_bar, ll.ProgressBar) and isinstance(learn.device_cb, ll.DeviceCallback) and learn.device == learn.device_cb.device


def test_fit_callbacks_live_for_that_fit_only():
    calls = []

    class Once(ll.Callback):
        def after_fit(self, learn):
            calls.append(1)

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    cb = Once()
    learn.fit(1, cbs=[cb])
    assert calls == [1] and cb not in learn.cbs and not hasattr(learn, "once")
    learn.fit(1)
    assert calls == [1]


def test_fit_callbacks_removed_even_on_error():
    class Boom(ll.Callback):
        def before_fit(self, learn):
            raise RuntimeError("boom")

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    with pytest.raises(RuntimeError):
        learn.fit(1, cbs=[Boom()])
    assert not any(isinstance(c, Boom) for c in learn.cbs)


def test_class_instead_of_instance_is_an_error():
    with pytest.raises(TypeError, match=r"Recorder\(\) instead of Recorder"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[ll.Recorder])


def test_non_callback_is_an_error():
    with pytest.raises(TypeError, match="subclass learnloop.Callback"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), cbs=[object()])


def test_name_clash_is_an_error_and_renaming_fixes_it():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[ll.BatchTransform(lambda x: x)])
    with pytest.raises(ValueError, match="batch_transform"):
        learn.add_cbs([ll.BatchTransform(lambda x: x)])
    second = ll.BatchTransform(lambda x: x, name="second_tfm")
    learn.add_cbs([second])
    assert learn.second_tfm is second


def test_name_clashing_with_learner_attribute():
    class Fit(ll.Callback):
        pass

    with pytest.raises(ValueError, match="Learner attribute"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), cbs=[Fit()])


def test_show_order_lists_handlers_in_order(capsys):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls())
    text = learn.show_order()
    line = next(l for l in text.splitlines() if l.startswith("after_epoch"))
    assert line.split(None, 1)[1] == "Recorder, ProgressBar"
    assert "before_batch" in capsys.readouterr().out


def test_argumentless_handlers_see_self_learn():
    seen = []

    class Lesson(ll.Callback):
        def after_fit(self):
            seen.append(self.learn.epoch)

    ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[Lesson()]).fit(2)
    assert seen == [1]


def test_callback_state_dict_round_trip():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False, metrics=["accuracy"])
    learn.fit(2)
    state = learn.recorder.state_dict()
    fresh = ll.Recorder()
    fresh.load_state_dict(state)
    assert fresh.history == learn.recorder.history and fresh.losses == learn.recorder.losses
    assert fresh.hps == learn.recorder.hps


def test_names_of_state_attributes_are_protected_and_lists_are_all_or_nothing():
    class Loss(ll.Callback):  # would shadow learn.loss (None before any batch)
        pass

    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False)
    with pytest.raises(ValueError, match="Learner attribute"):
        learn.add_cbs([Loss()])
    good = make("Good")
    with pytest.raises(TypeError):
        learn.add_cbs([good, ll.Recorder])
    assert good not in learn.cbs and not hasattr(learn, "good")
    with pytest.raises(ValueError, match="Two callbacks named"):
        learn.add_cbs([make("Twin"), make("Twin")])


def test_gradient_accumulation_equals_a_bigger_batch():
    import torch

    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    big = ll.DataLoaders.from_tensors(x, y, batch_size=8, seed=1)
    small = ll.DataLoaders.from_tensors(x, y, batch_size=2, seed=1)
    small.train.batch_sampler.sampler = big.train.batch_sampler.sampler  # same order of samples
    ll.Learner(a, big, lr=0.1, default_cbs=False).fit(2)
    learn = ll.Learner(b, small, lr=0.1, progress=False, cbs=[ll.GradientAccumulation(4)])
    learn.fit(2)
    assert torch.allclose(a.weight, b.weight, atol=1e-6) and torch.allclose(a.bias, b.bias, atol=1e-6)
    assert len(learn.recorder.losses) == 32  # every micro-batch's (unscaled) loss is recorded
    with pytest.raises(ValueError, match="positive int"):
        ll.GradientAccumulation(0)


def test_csv_and_json_lines_loggers_write_each_epoch_and_append_on_resume(tmp_path):
    import csv
    import json

    def make(cbs):
        ll.set_seed(0)
        return ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=8, bs=2), metrics=[ll.accuracy], progress=False, cbs=cbs)

    class Stop(ll.Callback):
        order = 200  # after the loggers and the checkpoint have seen epoch 1 end

        def after_epoch(self, learn):
            if learn.epoch == 1:
                raise KeyboardInterrupt

    csv_path, jl_path = tmp_path / "h.csv", tmp_path / "h.jsonl"
    learn = make([ll.CSVLogger(csv_path), ll.JSONLinesLogger(jl_path, every_n_steps=2), ll.Checkpoint(dir=tmp_path / "ck")])
    with pytest.raises(KeyboardInterrupt):
        learn.fit(3, cbs=[Stop()])
    rows = list(csv.DictReader(open(csv_path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # flushed as each epoch ended
    resumed = make([ll.CSVLogger(csv_path), ll.JSONLinesLogger(jl_path, every_n_steps=2), ll.Checkpoint(dir=tmp_path / "ck")])
    resumed.fit(3, resume=tmp_path / "ck")
    rows = list(csv.DictReader(open(csv_path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[2]["accuracy"]) == pytest.approx(resumed.recorder.history[2]["accuracy"])
    records = [json.loads(line) for line in open(jl_path)]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [0, 1, 2]
    assert [r["step"] for r in records if r["type"] == "step"] == [2, 4, 6, 8, 10, 12]  # 4 steps an epoch
    make([ll.CSVLogger(csv_path)]).fit(1)  # a new fit starts the file again
    assert len(list(csv.DictReader(open(csv_path)))) == 1
