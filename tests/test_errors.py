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
from learnloop.serialize import CheckpointError

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


def test_a_failing_forward_pass_says_which_batch_and_what_the_inputs_were():
    # torch's own message stays first and its type is kept; the note adds what torch cannot know.
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    wide = ll.Learner(nn.Sequential(nn.Flatten(), nn.Linear(5, 3)), ll.DataLoaders.from_tensors(x, y, batch_size=4), progress=False)
    before = _snapshot(wide.model)
    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        wide.fit(1)
    (note,) = info.value.__notes__
    assert note == (
        "learnloop: the model's forward pass failed at epoch 0, batch 0, on inputs of shape (4, 4) (float32). "
        "The model's first layer with weights is Linear(in_features=5, out_features=3, bias=True)."
    )
    assert _untouched(wide, before)

    # Image bytes fed straight to a float model: the note says what to convert; in validate() too.
    learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(x.to(torch.uint8), y, x.to(torch.uint8), y, batch_size=4), progress=False)
    # (validation batches are twice the training ones)
    for run, where in ((learn.fit, "at epoch 0, batch 0, on inputs of shape (4, 4)"), (learn.validate, "in batch 0 of a validation or inference pass, on inputs of shape (8, 4)")):
        with pytest.raises(RuntimeError) as info:
            run()
        note = info.value.__notes__[0]
        assert f"failed {where} (uint8)" in note and "x.float() / 255" in note

    # An exported model's Predictor notes the same, on the inputs as prepared for the model.
    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        _exported().predict(torch.zeros(12))
    assert "on inputs of shape (12,) (float32). The model's first layer with weights is Linear(in_features=4" in info.value.__notes__[0]

    # A model that embeds integer inputs is not told to convert them when it fails for another reason.
    class Embeds(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(3, 3)

        def forward(self, xb):
            raise KeyError("vocabulary")

    learn = ll.Learner(Embeds(), ll.DataLoaders.from_tensors(y[:, None], y, batch_size=4), progress=False)
    with pytest.raises(KeyError) as info:
        learn.fit(1)
    assert "Embedding(3, 3)" in info.value.__notes__[0] and "convert" not in info.value.__notes__[0]

    # Cancellation from inside the forward pass is steering, not an error: no note, and it still skips the batch.
    class SkipAll(nn.Linear):
        def forward(self, xb):
            raise ll.CancelBatchException()

    learn = ll.Learner(SkipAll(4, 3), ll.DataLoaders.from_tensors(x, y, batch_size=4), progress=False)
    learn.fit(1)
    assert learn.recorder.losses == [] and learn.train_batches_done == 2


def test_a_failing_loss_names_the_dtypes_as_well_as_the_shapes():
    # Float class targets have the right shape for cross-entropy; only the dtype says what is wrong.
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(x, y.float(), batch_size=4), progress=False)
    with pytest.raises(RuntimeError) as info:
        learn.fit(1)
    assert "targets of shape (4,) (float32 and float32)" in info.value.__notes__[0]


def test_a_model_that_returns_several_outputs_is_told_what_the_loss_needs():
    # nn.LSTM returns (output, (h, c)): the loss gets a tuple, and the note says what to change.
    x, y = torch.randn(8, 2, 4), torch.randint(0, 3, (8,))
    learn = ll.Learner(nn.LSTM(4, 3, batch_first=True), ll.DataLoaders.from_tensors(x, y, batch_size=4), progress=False)
    before = _snapshot(learn.model)
    with pytest.raises(TypeError, match="must be Tensor, not tuple") as info:
        learn.fit(1)
    note = info.value.__notes__[0]
    assert "predictions of shape tuple (not a tensor)" in note and "The model returned a tuple of 2" in note and "model(x)[0]" in note
    assert _untouched(learn, before)


def test_a_plot_into_a_missing_folder_names_the_folder(tmp_path):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    learn.fit(1)
    with pytest.raises(FileNotFoundError, match=f"Cannot write {tmp_path}/no/loss.png: the folder {tmp_path}/no does not exist"):
        learn.recorder.plot_loss(path=tmp_path / "no" / "loss.png")
    learn.recorder.plot_loss(path=tmp_path / "loss.png")  # the folder exists: written
    assert (tmp_path / "loss.png").stat().st_size > 0


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


# ---- a table of plausible mistakes: (what the user does, the exception, words of the message) ----


def _learn(**kw):
    ll.set_seed(0)
    return ll.Learner(nn.Linear(4, 3), kw.pop("dls", None) or tiny_dls(n_train=8, bs=2), progress=False, **kw)


def _fit_with(**kw):
    """Fit one epoch; whatever goes wrong must happen before the first optimizer step."""
    fit_kw = kw.pop("fit", {})
    learn = _learn(**kw)
    before = _snapshot(learn.model)
    try:
        learn.fit(1, **fit_kw)
    finally:
        assert _untouched(learn, before), "weights changed before the error"


def _fit_again(replace: bool):
    """A first fit makes the optimizer; then the model changes under it. (reset_opt=True trains the new one.)"""
    learn = _learn()
    learn.fit(1)
    learn.model = nn.Linear(4, 3) if replace else nn.Sequential(learn.model, nn.Linear(3, 3))
    learn.fit(1, reset_opt=True)
    held = {id(p) for g in learn.opt.param_groups for p in g["params"]}
    assert all(id(p) in held for p in learn.model.parameters())
    learn.model = nn.Linear(4, 3) if replace else nn.Sequential(learn.model[0], nn.Linear(3, 3))
    learn.fit(1)


def _labels_out_of_range():
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    y[13] = 5  # deep in the data, not in the first batch
    dls = ll.DataLoaders(ll.DataLoader(ll.ArrayDataset(x, y), batch_size=4), ll.DataLoader(ll.ArrayDataset(x[:4], y[:4].clamp(max=2)), batch_size=4))
    _learn(dls=dls).fit(1)


def _grads_blow_up():
    learn = _learn()
    learn.non_finite_check.check_grads = True

    class Poison(ll.Callback):
        def after_backward(self, learn):
            learn.model.weight.grad[0, 0] = math.inf

    before = _snapshot(learn.model)
    try:
        learn.fit(1, cbs=[Poison()])
    finally:
        assert _untouched(learn, before)


class _Tensorish(ll.Callback):
    def on_epoch_end(self, learn):  # Keras' name: never called by learnloop
        pass


MISTAKES = [
    # the learner and fit
    ("model is a class", lambda: ll.Learner(nn.Linear, tiny_dls()), TypeError, r"instance, got the class Linear; create one"),
    ("dls is a tensor", lambda: ll.Learner(nn.Linear(4, 3), torch.randn(8, 4)), TypeError, "DataLoaders"),
    ("opt_func is an optimizer instance", lambda: ll.Learner(nn.Linear(4, 3), tiny_dls(), opt_func=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)), TypeError, "opt_func"),
    ("opt_func that takes no lr", lambda: ll.Learner(nn.Linear(4, 3), tiny_dls(), opt_func=lambda p: torch.optim.SGD(p, lr=0.1)), TypeError, r"opt_func\(params, lr=lr\) and takes no lr"),
    ("fit(lr=[...]) with one rate per group", lambda: _fit_with(fit={"lr": [0.1, 0.2]}), TypeError, "one learning rate for every param group"),
    ("fit after replacing learn.model", lambda: _fit_again(replace=True), ValueError, r"does not hold the model's parameters \['weight', 'bias'\] \(all 2: was learn.model replaced\?\)"),
    ("fit after adding a layer", lambda: _fit_again(replace=False), ValueError, r"\['1.weight', '1.bias'\] \(2 of 4: a layer added\?\).*reset_opt=True"),
    ("fit(-1)", lambda: _learn().fit(-1), ValueError, "n_epochs"),
    ("fit('3')", lambda: _learn().fit("3"), (TypeError, ValueError), "n_epochs"),
    ("a single callback not in a list", lambda: _learn().fit(1, cbs=ll.ProgressBar()), None, None),
    ("a callback class", lambda: _learn(cbs=[ll.ProgressBar]), TypeError, "instances, not classes"),
    ("not a callback", lambda: _learn(cbs=[object()]), TypeError, "subclass learnloop.Callback"),
    ("another library's event name", lambda: _learn(cbs=[_Tensorish()]), ValueError, "after_epoch"),
    ("a metric with the wrong signature", lambda: _fit_with(metrics=[lambda p: p.mean()]), TypeError, "checked before any step"),
    ("an unknown metric name", lambda: _learn(metrics=["acuracy"]), ValueError, "accuracy"),
    ("accuracy of a regression", lambda: ll.accuracy(torch.randn(6, 1), torch.randn(6, 1)), ValueError, "needs 0/1 targets .* a regression"),
    ("labels outside the classes, deep in the data", _labels_out_of_range, IndexError, "0..2"),
    ("gradients become inf (check_grads)", _grads_blow_up, FloatingPointError, "gradient of weight"),
    ("fit_one_cycle(pct_start=1.5)", lambda: _learn().fit_one_cycle(1, pct_start=1.5), ValueError, "pct_start"),
    ("a ParamScheduler given a number, not a schedule", lambda: ll.ParamScheduler({"lr": 0.1}), TypeError, r"'lr' must be a schedule.*got 0.1. For a constant, use sched_no"),
    ("a TorchScheduler class that needs more than the optimizer", lambda: _fit_with(cbs=[ll.TorchScheduler(torch.optim.lr_scheduler.StepLR)]), TypeError, "step_size"),
    ("validate(dl=(x, y)) with tensors", lambda: _learn().validate(dl=(torch.zeros(4, 4), torch.zeros(4).long())), TypeError, r"dl must yield \(x, y\) batches, got a tuple of tensors"),
    ("get_preds(dl=x) with a tensor", lambda: _learn().get_preds(dl=torch.zeros(4, 4)), TypeError, "got a tensor"),
    ("a ParamScheduler for a hyper-parameter the optimizer lacks", lambda: _fit_with(fit={"cbs": [ll.ParamScheduler({"beta": ll.sched_lin(0.1, 0.2)})]}), ValueError, "the optimizer has no 'beta'"),
    ("lr_find with too few batches", lambda: _learn().lr_find(num_it=1), ValueError, "num_it"),
    ("GradientAccumulation(0)", lambda: ll.GradientAccumulation(0), ValueError, r"GradientAccumulation: n \(batches per optimizer step\) must be a positive int"),
    ("set_seed('42')", lambda: ll.set_seed("42"), TypeError, r"set_seed takes an int, got '42' \(str\)"),
    ("GradientClip(max_norm=0)", lambda: ll.GradientClip(max_norm=0), ValueError, "max_norm must be a positive number"),
    ("GradientClip(1.0, norm_type='l2')", lambda: ll.GradientClip(1.0, norm_type="l2"), ValueError, r"norm_type must be a positive number \(2.0: the Euclidean norm"),
    ("Learner(device='gpu')", lambda: _learn(device="gpu"), ValueError, "device 'gpu' is not a torch device: use 'cpu', 'cuda'"),
    ("MixedPrecision('fp8')", lambda: ll.MixedPrecision("fp8"), ValueError, "bf16"),
    ("Checkpoint(every_n_steps=0)", lambda: ll.Checkpoint(every_n_steps=0), ValueError, "every_n_steps"),
    ("Checkpoint('runs/ckpt'): the folder given first", lambda: ll.Checkpoint("runs/ckpt"), TypeError, r"first argument is every_n_steps; pass the folder by name: Checkpoint\(dir='runs/ckpt'\)"),
    ("EarlyStopping on a column that does not exist", lambda: _fit_with(cbs=[ll.EarlyStopping(monitor="val_acc")]), ValueError, "available"),
    ("infer(batch_size=0)", lambda: _learn().infer(torch.zeros(2, 4), batch_size=0), ValueError, "batch_size must be a positive int"),
    ("predict on a list", lambda: _learn().predict([1.0, 2.0, 3.0, 4.0]), TypeError, "one item as a tensor"),
    ("predict on a batch", lambda: _learn().predict(torch.zeros(5, 4)), ValueError, r"predict takes one item .* maps \(5, 4\) to \(5, 3\), not to one score per class. For a batch use learn.infer"),
    ("infer on a list of items", lambda: _learn().infer([torch.zeros(4)] * 3), TypeError, r"infer takes the inputs as one tensor.*torch.stack"),
    ("a Predictor's get_preds on a tensor", lambda: _exported().get_preds(torch.zeros(5, 4)), TypeError, r"get_preds takes a loader.*use predict\(x\)"),
    ("load_learner of a checkpoint", lambda: ll.load_learner(_checkpoint()), CheckpointError, "'checkpoint' file, not an export"),
    # data
    ("DataLoader batch_size 0", lambda: ll.DataLoader(ll.ArrayDataset(torch.zeros(4)), batch_size=0), ValueError, "batch_size"),
    ("DataLoader num_workers -1", lambda: ll.DataLoader(ll.ArrayDataset(torch.zeros(4)), num_workers=-1), ValueError, "num_workers"),
    ("ArrayDataset of unequal lengths", lambda: ll.ArrayDataset(torch.zeros(4), torch.zeros(5)), ValueError, "length"),
    ("from_tensors x and y of unequal lengths", lambda: ll.DataLoaders.from_tensors(torch.zeros(4, 2), torch.zeros(5)), ValueError, "length"),
    ("collate of different shapes", lambda: ll.collate([torch.zeros(2), torch.zeros(3)]), ValueError, "shape"),
    ("an empty training set", lambda: ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(torch.zeros(0, 4), torch.zeros(0).long())), ValueError, "empty"),
    ("loader state from a foreign dict", lambda: ll.DataLoader(ll.ArrayDataset(torch.zeros(4))).load_state_dict({"pos": 1}), (KeyError, ValueError), "epoch"),
    # schedules
    ("combine_scheds that do not sum to 1", lambda: ll.combine_scheds([0.3, 0.3], [ll.sched_lin(0, 1), ll.sched_lin(1, 0)]), ValueError, "sum to 1"),
    ("combine_scheds of different lengths", lambda: ll.combine_scheds([0.5, 0.5], [ll.sched_lin(0, 1)]), ValueError, "one fraction per schedule"),
    # vision and augmentation
    ("get_files on a missing folder", lambda: ll.get_files("/no/such/folder"), (FileNotFoundError, ValueError), "/no/such/folder"),
    ("ImageList.from_files on a folder that does not exist", lambda: ll.ImageList.from_files("/no/such/images"), FileNotFoundError, "is not a folder"),
    ("random_splitter(valid_pct=1.5)", lambda: ll.random_splitter(valid_pct=1.5), ValueError, "valid_pct"),
    ("RandomCrop(0)", lambda: ll.RandomCrop(0), ValueError, "size"),
    ("ResizeFixed('64'), a size from a config file", lambda: ll.ResizeFixed("64"), ValueError, r"size must be a positive int or a \(width, height\) pair of them, got '64'"),
    ("ResizeFixed(0)", lambda: ll.ResizeFixed(0), ValueError, "positive int"),
    # models and init
    ("cnn(1): the input's channels where the widths go", lambda: ll.cnn(1), TypeError, "first argument is channels.*in_channels="),
    ("init_model(m, 'kaiming_uniform')", lambda: ll.init_model(nn.Linear(2, 2), "kaiming_uniform"), TypeError, r"torch.nn.init.kaiming_uniform_\?"),
    ("lsuv_init without a batch", lambda: ll.lsuv_init(nn.Linear(2, 2), None), TypeError, "needs a batch of inputs xb"),
    ("layer_stats without a batch", lambda: ll.layer_stats(nn.Linear(2, 2), None), TypeError, "needs a batch of inputs xb"),
    # hooks and transforms
    ("a Hook on a function", lambda: ll.Hook(lambda x: x, lambda *a: None), TypeError, "Hook goes on an nn.Module, got function"),
    ("a Hook without a function", lambda: ll.Hook(nn.Linear(2, 2), None), TypeError, r"Hook needs a function fn\(hook, module, input, output\)"),
    ("find_modules(m, nn.Linear(2, 2)): an instance for the class", lambda: ll.find_modules(nn.Linear(2, 2), nn.Linear(2, 2)), TypeError, "e.g. nn.Linear, not an instance"),
    ("ActivationStats watching a name the model lacks", lambda: _fit_with(cbs=[ll.ActivationStats(modules=["fc"])]), ValueError, "no module named 'fc'"),
    ("BatchTransform(3)", lambda: ll.BatchTransform(3), TypeError, "BatchTransform takes a function"),
    ("Normalize('0.13', 0.31)", lambda: ll.Normalize("0.13", 0.31), TypeError, "mean must be a number or a tensor"),
    ("Normalize(0.13, 0)", lambda: ll.Normalize(0.13, 0), ValueError, "std must be positive"),
    ("RandomAffine(degrees='10')", lambda: ll.RandomAffine(degrees="10"), TypeError, "degrees"),
    ("PilRandomFlip(p=2)", lambda: ll.PilRandomFlip(p=2), ValueError, "probability"),
    ("MixUp(alpha=-1)", lambda: ll.MixUp(alpha=-1), ValueError, "alpha"),
    ("show_batch of loaders that hold no images", lambda: ll.show_batch(tiny_dls()), ValueError, r"draws images.*have shape \(2, 4\)"),
    # loggers and GANs
    ("TensorBoardLogger(every_n_steps=0)", lambda: ll.TensorBoardLogger(every_n_steps=0), ValueError, "every_n_steps"),
    ("CSVLogger given a folder for its file", lambda: _fit_with(cbs=[ll.CSVLogger(".")]), IsADirectoryError, r"CSVLogger: \. is a folder; give the path of a file"),
    ("save_model into a folder's own path", lambda: ll.save_model(nn.Linear(2, 2), "."), IsADirectoryError, "it is a folder; name a file"),
    ("CSVLogger into a folder that does not exist", lambda: _fit_with(cbs=[ll.CSVLogger("/no/such/folder/h.csv")]), FileNotFoundError, "does not exist"),
    ("GANLearner(n_crit=0)", lambda: ll.GANLearner(nn.Linear(2, 2), nn.Linear(2, 1), tiny_dls(), n_crit=0), ValueError, "n_crit"),
    # files
    ("load a checkpoint that does not exist", lambda: _learn().load("/no/such/file.safetensors"), FileNotFoundError, "file.safetensors"),
    ("load_model of another architecture", lambda: ll.load_model(nn.Linear(5, 3), _saved_linear()), ValueError, "shape"),
]


def _exported():
    import tempfile

    learn = _learn()
    learn.fit(1)
    return ll.load_learner(learn.export(tempfile.mkdtemp() + "/m.ll"), model=nn.Linear(4, 3))


def _checkpoint():
    import tempfile

    path = tempfile.mkdtemp() + "/c"
    _learn().save(path)
    return path


def _saved_linear():
    import tempfile

    path = tempfile.mkdtemp() + "/m.safetensors"
    ll.save_model(nn.Linear(4, 3), path)
    return path


@pytest.mark.parametrize("what, action, kind, words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_gets_a_clear_early_error(what, action, kind, words):
    if kind is None:  # accepted on purpose (a lone callback is treated as a list of one)
        action()
        return
    with pytest.raises(kind, match=words):
        action()
