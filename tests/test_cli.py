"""The `learnloop` command: the main job on a tiny budget, help, and bad arguments."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

import learnloop as ll
from learnloop.cli import main
from learnloop.layers import mlp


def test_train_writes_a_complete_run_folder(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--data", str(mnist_dir), "--model", "mlp", "--epochs", "1", "--lr", "0.1", "--opt", "sgd", "--out", str(out), "--tensorboard"])
    assert rc == 0
    printed = capsys.readouterr()
    assert list((out / "tensorboard" / "run_000").glob("events.out.tfevents.*"))
    assert "final validation accuracy:" in printed.out and "epoch" in printed.out
    assert f"from {mnist_dir}" in printed.err  # says which data it used
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and history[0]["accuracy"] > 0.9
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert float(rows[0]["accuracy"]) == pytest.approx(history[0]["accuracy"])
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 1 and config["model"] == "mlp" and config["data_source"] == str(mnist_dir)
    for png in ("loss.png", "sched.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    model = ll.load_model(mlp([784, 50, 10]), out / "model.safetensors")
    assert model(torch.zeros(1, 784)).shape == (1, 10)
    assert (out / "checkpoints" / "latest").is_file()


def test_train_cnn_quiet_with_env_data(mnist_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEARNLOOP_DATA", str(mnist_dir))
    rc = main(["train", "--epochs", "1", "--channels", "4,8", "--bs", "256", "--quiet", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("final validation accuracy:") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "zero"], "--epochs: expected a positive integer"),
        (["train", "--lr", "-1"], "--lr: expected a positive number"),
        (["train", "--channels", "8,x"], "comma-separated integers"),
        (["train", "--device", "tpu9"], "unknown device"),
        (["train", "--model", "resnet"], "invalid choice"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_missing_data_folder(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_help_runs_as_a_command():
    for args in (["--help"], ["train", "--help"]):
        r = subprocess.run([sys.executable, "-m", "learnloop", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "usage: learnloop" in r.stdout
    assert "--epochs" in r.stdout and "mlxtend" in r.stdout


def test_lr_find_command(mnist_dir, tmp_path, capsys):
    plot = tmp_path / "lr.png"
    rc = main(["lr-find", "--data", str(mnist_dir), "--model", "mlp", "--num-it", "40", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert rc == 0 and plot.read_bytes()[:4] == b"\x89PNG"
    lines = dict(l.split(":", 1) for l in out.splitlines() if ":" in l and not l.startswith("plot"))
    assert {k.strip() for k in lines} == {"valley", "steep", "minimum"}
    assert all(1e-7 <= float(v) <= 10 for v in lines.values())


def test_lr_find_bad_range(capsys):
    assert main(["lr-find", "--start-lr", "1", "--end-lr", "0.1"]) == 2
    assert "--start-lr" in capsys.readouterr().err


def test_init_report_command(mnist_dir, capsys):
    assert main(["init-report", "--data", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "act std: default" in out and "PyTorch default init" in out
    default_part, kaiming_part = out.split("Kaiming-uniform init, zero bias:")
    assert "vanishing" in default_part and kaiming_part.strip().startswith("healthy")


def test_init_report_matmul(capsys):
    assert main(["init-report", "--matmul"]) == 0
    out = capsys.readouterr().out
    assert "overflows (inf/nan) at product 2" in out and "vanishes to 0" in out and "stays near 1" in out


def test_killed_train_keeps_finished_epochs_and_resume_finishes_the_same_run(mnist_dir, tmp_path, capsys):
    import os
    import signal
    import time
    from pathlib import Path

    common = ["--data", str(mnist_dir), "--model", "mlp", "--epochs", "2", "--bs", "256", "--opt", "sgd", "--lr", "0.1", "--save-every", "40", "--quiet"]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen([sys.executable, "-m", "learnloop", "train", *common, "--out", str(killed)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 180
    while not (killed / "history.json").exists():  # the first epoch is written
        assert p.poll() is None and time.monotonic() < deadline, "train ended or stalled before its first epoch"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert len(json.loads((killed / "history.json").read_text())) == 1
    ll.load_model(mlp([784, 50, 10]), killed / "model.safetensors")  # a whole, loadable model
    assert main(["train", "--resume", str(killed), "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(tmp_path / "whole")]) == 0
    a = ll.load_model(mlp([784, 50, 10]), killed / "model.safetensors")
    b = ll.load_model(mlp([784, 50, 10]), tmp_path / "whole" / "model.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(json.loads((killed / "history.json").read_text())) == strip(json.loads((tmp_path / "whole" / "history.json").read_text()))


def test_reusing_a_run_folder_is_refused(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(["train", "--data", str(mnist_dir), "--out", str(out)]) == 2
    assert "holds another run" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no run there" in capsys.readouterr().err


def test_cli_refuses_the_wrong_dataset_and_names_the_one_it_trains_on(mnist_dir, fashion_dir, tmp_path, capsys):
    assert main(["train", "--data", str(fashion_dir), "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "holds Fashion-MNIST, not MNIST" in err and "--dataset fashion-mnist" in err and len(err.strip().splitlines()) == 1
    args = ["train", "--data", str(fashion_dir), "--dataset", "fashion-mnist", "--model", "mlp", "--epochs", "1", "--bs", "512", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    assert "Fashion-MNIST images from" in captured.err and "Fashion-MNIST validation images" in captured.out
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["dataset"] == "fashion-mnist" and config["data_meta"]["classes"][-1] == "Ankle boot"


def test_train_with_bf16_compile_and_clip(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(mnist_dir), "--model", "mlp", "--epochs", "1", "--bs", "512", "--precision", "bf16", "--compile", "--clip", "1.0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    history = json.loads((out / "history.json").read_text())
    assert history[0]["accuracy"] > 0.85 and history[0]["grad_norm"] > 0  # clipping logged its pre-clip norms
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bf16" and config["compile"] is True and config["clip"] == 1.0
    ll.load_model(mlp([784, 50, 10]), out / "model.safetensors")  # saved with the eager model's keys


def test_train_on_two_processes(mnist_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "learnloop", "train", "--nproc", "2", "--data", str(mnist_dir), "--model", "mlp", "--epochs", "1",
           "--bs", "256", "--opt", "sgd", "--lr", "0.1", "--quiet", "--out", str(out)]  # fmt: skip
    import os

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("final validation accuracy") == 1  # rank 0 alone reports
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and history[0]["accuracy"] > 0.85  # a global batch of 512: fewer steps than one process of 256
    assert json.loads((out / "config.json").read_text())["nproc"] == 2


def test_train_and_show_batch_on_a_folder_of_images(tmp_path, capsys):
    from PIL import Image

    for split, n in (("train", 12), ("valid", 4)):
        for cls, color in (("red", (230, 20, 20)), ("blue", (20, 20, 230))):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20, 14), color).save(tmp_path / "imgs" / split / cls / f"{i}.png")
    args = ["--data", str(tmp_path / "imgs"), "--size", "16", "--workers", "0", "--bs", "8"]
    assert main(["train", *args, "--epochs", "2", "--lr", "0.05", "--quiet", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "32 images in" in captured.err and "2 classes (blue, red); 24 train, 8 valid (train/ and valid/ folders)" in captured.err
    assert "8 imgs validation images" in captured.out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data_meta"]["classes"] == ["blue", "red"]
    assert main(["show-batch", *args, "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "imgs" / "train" / "red" / "bad.png").write_bytes(b"not a png")
    assert main(["train", *args, "--epochs", "1", "--quiet", "--out", str(tmp_path / "run2")]) == 1
    assert "Cannot read image" in capsys.readouterr().err  # named, before training
    with pytest.warns(UserWarning, match="skipped 1 of 25 training images"):
        assert main(["train", *args, "--epochs", "1", "--quiet", "--skip-bad-images", "--out", str(tmp_path / "run3")]) == 0
