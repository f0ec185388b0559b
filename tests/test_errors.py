"""Bad input gets a clear error, early, naming the problem and the fix (or a loud warning where
the result would otherwise be meaningless). Each case also checks that no weights changed."""

from __future__ import annotations

import gzip
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll
from learnloop import optim
from learnloop.cli import main
from learnloop.datasets import DataNotFoundError, mnist

from .conftest import tiny_dls


def _untouched(learn, before):
    return all(torch.equal(p, q) for p, q in zip(learn.model.parameters(), before))


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("lr", [-0.1, 0.0, math.nan, math.inf, "0.1", True])
def test_bad_learning_rates_everywhere(lr):
    with pytest.raises(ValueError, match="lr must be a positive number"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), lr=lr)
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    before = _snapshot(learn.model)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        learn.fit(1, lr=lr)
    with pytest.raises(ValueError, match="lr_max must be a positive number"):
        learn.fit_one_cycle(1, lr_max=lr)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)
    assert _untouched(learn, before)


def test_tensors_instead_of_dataloaders_and_a_loss_class():
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(TypeError, match=r"DataLoaders.from_tensors\(x_train, y_train"):
        ll.Learner(nn.Linear(4, 3), (x, y))
    with pytest.raises(TypeError, match=r"pass an instance, CrossEntropyLoss\(\)"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), loss_func=nn.CrossEntropyLoss)


@pytest.mark.parametrize(
    "loss, kind, words",
    [
        (lambda p, t: F.cross_entropy(p, t, reduction="none"), ValueError, r"tensor of shape \(2,\), not one number"),
        (lambda p, t: F.cross_entropy(p, t).item(), TypeError, "returned a float, not a tensor"),
    ],
)
def test_a_loss_that_is_not_one_number_stops_before_any_step(loss, kind, words):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), loss_func=loss, progress=False)
    before = _snapshot(learn.model)
    with pytest.raises(kind, match=words):
        learn.fit(1)
    assert _untouched(learn, before)


def test_empty_validation_and_empty_evaluation():
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    dls = ll.DataLoaders.from_tensors(x, y, x[:0], y[:0], batch_size=4)
    with pytest.raises(ValueError, match="valid DataLoader yields no batches"):
        ll.Learner(nn.Linear(4, 3), dls)
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    with pytest.raises(ValueError, match="yields no batches"):
        learn.validate(ll.DataLoader(ll.ArrayDataset(x[:0], y[:0])))


def test_nan_in_validation_inputs_warns_loudly():
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    xv = x.clone()
    xv[0, 0] = math.nan
    learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(x, y, xv, y, batch_size=4), progress=False)
    with pytest.warns(UserWarning, match="validation loss is nan .* the metrics mean nothing"):
        learn.fit(1)


def test_infer_batch_size_zero_is_refused():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        learn.infer(torch.randn(3, 4), batch_size=0)


def test_loader_state_from_another_batch_size_or_another_object():
    x = torch.arange(20)
    a = ll.DataLoader(ll.ArrayDataset(x), batch_size=5, shuffle=True, seed=1)
    it = iter(a)
    next(it)
    state = a.state_dict()
    b = ll.DataLoader(ll.ArrayDataset(x), batch_size=4, shuffle=True, seed=1)
    with pytest.raises(ValueError, match="saved by a loader with batch_size=5, but this one has batch_size=4"):
        b.load_state_dict(state)
    with pytest.raises(KeyError, match=r"lacks \['epoch', 'position'\]"):
        b.load_state_dict({"step": 3})
    with pytest.raises(KeyError, match=r"lacks \['losses'"):
        ll.Recorder().load_state_dict({"history": []})


def test_data_places_the_user_named_are_used_or_fail(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("LEARNLOOP_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="LEARNLOOP_DATA=.*nowhere is not a folder"):
        mnist(download=False)
    monkeypatch.delenv("LEARNLOOP_DATA")
    partial = tmp_path / "partial"
    partial.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (partial / f"{stem}.gz").write_bytes((mnist_dir / f"{stem}.gz").read_bytes())
    with pytest.raises(DataNotFoundError, match="not t10k-labels-idx1-ubyte"):
        mnist(partial)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in mnist_dir.glob("*.gz"):
        data = bytearray(f.read_bytes())
        if "t10k-labels" in f.name:
            data[40:60] = b"\xff" * 20  # a damaged deflate stream, not a short file
        (broken / f.name).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        mnist(broken)
    assert gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())  # the original is fine


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["lr-find", "--num-it", "1"], 2, "--num-it must be at least 2"),
        (["lr-find", "--plot", "/no/such/folder/lr.png"], 2, "the folder /no/such/folder does not exist"),
        (["train", "--data", "/no/such/folder"], 1, "is not a folder"),
        (["show-batch", "--out", "/no/such/folder/b.png"], 2, "does not exist"),
    ],
)
def test_cli_user_errors_are_one_line_before_any_work(args, code, words, capsys):
    assert main(args) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_cli_error_from_deeper_down_is_one_line(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "imgs" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "a" / "1.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "b" / "1.png")
    # two images: a random split sends both to one side, and the CLI says so in one line
    assert main(["train", "--data", str(tmp_path / "imgs"), "--workers", "0", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "learnloop: error: The splitter sent no file to the" in err and "Traceback" not in err
